//! The simulated Autotask data: companies, contracts, contract services, their per-period
//! units rows, service bundles and the catalog services, as the API serves them (camelCase
//! JSON rows, reference "Sample payloads"), the API users it accepts, and the ground truth.
//!
//! Generated from the simulated ConnectWise billing of the same dataset and seed, so both
//! PSAs plant every reconciliation status on the same rows: a company per ConnectWise
//! company, a Recurring Service contract per agreement, a contract service per addition with
//! monthly units rows around the generation day (the previous month's and the next month's
//! differ from the current one, so a sum or the first row is wrong). The additions that do
//! not count become what does not count in Autotask: a cancelled agreement an inactive
//! contract, an expired one a contract that ended, an addition taking effect later a
//! service whose only row is next month's, one cancelled in the past a service whose rows
//! ended then, a `DoNotBill` one a service bundle. The company without customers is not a
//! Customer and the deleted one inactive, each with a contract service of its own.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::connectwise::{BillingData, PRODUCTS, Planted};

/// The API users the simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtCredentials {
    /// The API-only user's user name.
    pub username: String,
    /// The integration's tracking identifier (`ApiIntegrationCode`).
    pub integration_code: String,
    /// The user's secret.
    pub secret: String,
    /// A user (name, secret) whose security level has no contract access: contract entities
    /// answer with no rows (F2.6).
    pub no_contracts: (String, String),
}

/// The entities the simulator serves, in the order they are listed.
pub const ENTITIES: [&str; 7] = [
    "Companies",
    "Contracts",
    "ContractServices",
    "ContractServiceUnits",
    "ContractServiceBundles",
    "Services",
    "ServiceBundles",
];

/// The entities a user without contract access sees no rows of.
pub const CONTRACT_ENTITIES: [&str; 4] =
    ["Contracts", "ContractServices", "ContractServiceUnits", "ContractServiceBundles"];

/// The service id of each ConnectWise product identifier (the mapping names these).
pub fn service_id(psa: &str) -> Option<u64> {
    PRODUCTS.iter().position(|p| p.1 == psa).map(|i| 55 + i as u64)
}

/// One adjustment as the simulator recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtAdjustment {
    /// The `itemId` answered.
    pub id: u64,
    /// The contract.
    pub contract_id: u64,
    /// The contract service adjusted.
    pub contract_service_id: u64,
    /// Its service.
    pub service_id: u64,
    /// The day it takes effect.
    pub effective_date: NaiveDate,
    /// The signed change of units.
    pub unit_change: i64,
}

/// Everything the simulated Autotask serves, and the truth about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AtData {
    /// The seed it was generated from.
    pub seed: u64,
    /// The day the units rows were laid out around (the current period holds it).
    pub today: NaiveDate,
    /// Rows per entity (see [`ENTITIES`]), each by ascending id.
    pub rows: BTreeMap<&'static str, Vec<Value>>,
    /// The API users it accepts.
    pub credentials: AtCredentials,
    /// The mapping file (TOML): Autotask company ids and service ids.
    pub mapping_toml: String,
    /// Every row the reconciliation must produce, with its status (account = company id,
    /// PSA product = service id).
    pub planted: Vec<Planted>,
    /// Every contract service adjustment accepted, oldest first (the API cannot read them
    /// back; tests do).
    pub adjustments: Vec<AtAdjustment>,
}

/// The Autotask company id of a ConnectWise company id.
fn company_id(cw: u64) -> u64 {
    29_683_000 + cw
}

/// The Autotask contract id of a ConnectWise agreement id.
fn contract_id(cw: u64) -> u64 {
    29_684_000 + cw
}

/// Midnight UTC of `d`, as the API writes a date-only field (C4).
pub fn at_date(d: NaiveDate) -> String {
    format!("{}T00:00:00.000Z", d.format("%Y-%m-%d"))
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// `[first, last]` of the month `k` months after the one holding `d` (negative: before).
fn month(d: NaiveDate, k: i32) -> (NaiveDate, NaiveDate) {
    let first = month_start(d);
    let first = if k >= 0 {
        first.checked_add_months(Months::new(k as u32))
    } else {
        first.checked_sub_months(Months::new(k.unsigned_abs()))
    }
    .unwrap_or(first);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (first, next.pred_opt().unwrap_or(first))
}

struct Gen {
    today: NaiveDate,
    rows: BTreeMap<&'static str, Vec<Value>>,
    next_service: u64,
    next_unit: u64,
    next_bundle: u64,
}

impl Gen {
    fn push(&mut self, entity: &'static str, row: Value) {
        self.rows.entry(entity).or_default().push(row);
    }

    fn contract(&mut self, id: u64, company: u64, name: &str, status: u8, end: NaiveDate) {
        self.push(
            "Contracts",
            json!({
                "id": id, "companyID": company, "contractName": name,
                "contractNumber": format!("MS-{id}"), "contractType": 7, "contractCategory": 15,
                "contractPeriodType": 1, "status": status, "isDefaultContract": false,
                "billingPreference": 2, "startDate": "2019-01-01T00:00:00.000Z",
                "endDate": at_date(end), "setupFee": 0.0, "estimatedRevenue": 0.0,
                "lastModifiedDateTime": "2024-06-02T10:11:12.000Z", "userDefinedFields": [],
            }),
        );
    }

    /// A contract service with units rows for the months `periods` (offsets from the current
    /// month, units each); returns its id.
    fn service(&mut self, contract: u64, service: u64, price: f64, periods: &[(i32, f64)]) -> u64 {
        let id = self.next_service;
        self.next_service += 1;
        // Every third line has a contract price of its own.
        let adjusted = id.is_multiple_of(3).then(|| ((price * 0.9) * 100.0).round() / 100.0);
        self.push(
            "ContractServices",
            json!({
                "id": id, "contractID": contract, "serviceID": service, "unitPrice": price,
                "unitCost": ((price * 0.6) * 100.0).round() / 100.0, "adjustedPrice": adjusted,
                "internalCurrencyUnitPrice": price, "internalCurrencyAdjustedPrice": adjusted,
                "invoiceDescription": format!("Mailprotector service {service}"),
                "internalDescription": null, "quoteItemID": null, "userDefinedFields": [],
            }),
        );
        for &(k, units) in periods {
            let (start, end) = month(self.today, k);
            self.unit(contract, Some(id), service, start, end, units, adjusted.unwrap_or(price));
        }
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn unit(
        &mut self,
        contract: u64,
        contract_service: Option<u64>,
        service: u64,
        start: NaiveDate,
        end: NaiveDate,
        units: f64,
        price: f64,
    ) {
        let id = self.next_unit;
        self.next_unit += 1;
        self.push(
            "ContractServiceUnits",
            json!({
                "id": id, "contractID": contract, "contractServiceID": contract_service,
                "serviceID": service, "startDate": at_date(start), "endDate": at_date(end),
                "units": units, "price": units * price, "cost": units * price * 0.6,
                "internalCurrencyPrice": units * price, "approveAndPostDate": null,
                "organizationalLevelAssociationID": null, "vendorCompanyID": null,
            }),
        );
    }

    fn bundle(&mut self, contract: u64, bundle: u64, price: f64) {
        let id = self.next_bundle;
        self.next_bundle += 1;
        self.push(
            "ContractServiceBundles",
            json!({
                "id": id, "contractID": contract, "serviceBundleID": bundle, "unitPrice": price,
                "adjustedPrice": null, "unitDiscount": 0.0, "userDefinedFields": [],
            }),
        );
    }
}

impl AtData {
    /// Autotask billing carrying the same truth as `cw`, laid out around `today`.
    pub fn from_connectwise(cw: &BillingData, today: NaiveDate) -> AtData {
        let mut g = Gen {
            today,
            rows: ENTITIES.iter().map(|e| (*e, Vec::new())).collect(),
            next_service: 3001,
            next_unit: 900_001,
            next_bundle: 7001,
        };
        let past_end = NaiveDate::from_ymd_opt(2021, 12, 31).unwrap_or(today);
        let far_end = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap_or(today);
        for (i, c) in cw.companies.iter().enumerate() {
            let noise = c.deleted_flag || !cw.agreements.iter().any(|a| a.company.id == c.id);
            // The company without customers is a vendor (type 3), the deleted one inactive.
            let kind = if noise && !c.deleted_flag { 3 } else { 1 };
            g.push(
                "Companies",
                json!({
                    "id": company_id(c.id), "companyName": c.name,
                    "companyNumber": format!("C-{}", 1000 + i), "companyType": kind,
                    "isActive": !c.deleted_flag, "parentCompanyID": null, "classification": null,
                    "ownerResourceID": 29682885, "phone": null, "webAddress": null,
                    "createDate": "2021-03-04T15:22:10.000Z",
                    "lastActivityDate": "2024-05-01T09:00:00.000Z", "userDefinedFields": [],
                }),
            );
            if noise {
                // A line of its own, which does not count because of its company.
                let contract = contract_id(90_000 + c.id);
                g.contract(contract, company_id(c.id), "Managed Services", 1, far_end);
                g.service(contract, 55, 2.5, &[(-1, 3.0), (0, 3.0), (1, 3.0)]);
            }
        }
        for a in &cw.agreements {
            let expired = a.agreement_status.as_deref() == Some("Expired");
            let status = if a.cancelled_flag { 0 } else { 1 };
            let end = if expired { past_end } else { far_end };
            g.contract(contract_id(a.id), company_id(a.company.id), &a.name, status, end);
        }
        for add in &cw.additions {
            let contract = contract_id(add.agreement_id);
            let psa = add.product.identifier.as_deref().unwrap_or("");
            let service = service_id(psa).unwrap_or(55);
            let q = add.quantity;
            if add.bill_customer != "Billable" {
                g.bundle(contract, 12, add.unit_price * q);
                continue;
            }
            let later = add.effective_date.as_deref().is_some_and(|e| e.starts_with("2099"));
            let ended = add.cancelled_date.as_deref().filter(|c| !c.starts_with("2099"));
            if later {
                g.service(contract, service, add.unit_price, &[(1, q)]);
            } else if let Some(c) = ended {
                let end = NaiveDate::parse_from_str(&c[..10], "%Y-%m-%d").unwrap_or(past_end);
                let id = g.service(contract, service, add.unit_price, &[]);
                let (start, _) = month(end, 0);
                g.unit(contract, Some(id), service, start, end, q, add.unit_price);
            } else {
                // The neighbouring periods differ: a sum or the first row would be wrong.
                let before = q + 2.0 + (add.id % 4) as f64;
                let after = if add.id.is_multiple_of(2) { q } else { q + 5.0 };
                g.service(contract, service, add.unit_price, &[(-1, before), (0, q), (1, after)]);
            }
        }
        let mut services = Vec::new();
        for (i, p) in PRODUCTS.iter().enumerate() {
            services.push(json!({
                "id": 55 + i as u64, "name": format!("Mailprotector {}", p.0),
                "description": null, "invoiceDescription": p.0, "isActive": true, "periodType": 1,
                "unitPrice": p.2, "unitCost": ((p.2 * 0.6) * 100.0).round() / 100.0,
                "markupRate": null, "billingCodeID": 29682801, "vendorCompanyID": null,
                "createDate": "2020-01-01T00:00:00.000Z",
                "lastModifiedDate": "2024-01-01T00:00:00.000Z", "userDefinedFields": [],
            }));
        }
        g.rows.insert("Services", services);
        g.rows.insert(
            "ServiceBundles",
            vec![json!({
                "id": 12, "name": "Mailprotector bundle", "isActive": true, "periodType": 1,
                "unitPrice": 8.0, "unitCost": 3.0, "unitDiscount": 0.0,
                "percentageDiscount": 0.0, "billingCodeID": 29682801, "userDefinedFields": [],
            })],
        );
        for rows in g.rows.values_mut() {
            rows.sort_by_key(|r| r["id"].as_u64().unwrap_or(0));
        }
        let mut mapping = cw.mapping.clone();
        for account in mapping.customers.values_mut() {
            *account = company_id(*account);
        }
        for p in &mut mapping.products {
            p.psa = SERVICE_IDS[service_id(p.psa).map_or(0, |s| (s - 55) as usize)];
        }
        let planted = cw
            .planted
            .iter()
            .map(|p| Planted {
                account_id: p.account_id.as_ref().map(|a| {
                    a.parse::<u64>().map_or_else(|_| a.clone(), |id| company_id(id).to_string())
                }),
                psa_product: p
                    .psa_product
                    .as_deref()
                    .map(|s| service_id(s).map_or_else(|| s.to_owned(), |id| id.to_string())),
                ..p.clone()
            })
            .collect();
        AtData {
            seed: cw.seed,
            today,
            rows: g.rows,
            credentials: credentials(cw.seed),
            mapping_toml: mapping.render(cw.seed),
            planted,
            adjustments: Vec::new(),
        }
    }

    /// [`AtData::from_connectwise`] laid out around today (UTC).
    pub fn generate(cw: &BillingData) -> AtData {
        AtData::from_connectwise(cw, Utc::now().date_naive())
    }

    /// The planted rows with one status.
    pub fn planted_with(&self, status: &str) -> Vec<&Planted> {
        self.planted.iter().filter(|p| p.expected_status == status).collect()
    }

    /// The rows of `entity` (case-insensitive), if it is one the simulator serves.
    pub fn entity(&self, entity: &str) -> Option<(&'static str, &Vec<Value>)> {
        self.rows.iter().find(|(k, _)| k.eq_ignore_ascii_case(entity)).map(|(k, v)| (*k, v))
    }
}

/// Service ids as mapping text (the mapping names PSA products by string).
const SERVICE_IDS: [&str; 8] = ["55", "56", "57", "58", "59", "60", "61", "62"];

fn credentials(seed: u64) -> AtCredentials {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xa7a5_c0de);
    let mut code = |n: usize| -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
    };
    AtCredentials {
        username: "mpsync-api@mpsim.example".into(),
        integration_code: code(27),
        secret: format!("at{}", code(20).to_lowercase()),
        no_contracts: ("mpsync-nocontracts@mpsim.example".into(), format!("ro{}", code(18))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_whole_calendar_months() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(month(d, -1).0.to_string(), "2025-12-01");
        assert_eq!(month(d, -1).1.to_string(), "2025-12-31");
        assert_eq!(month(d, 1).1.to_string(), "2026-02-28");
        assert_eq!(service_id("MP-CF"), Some(55));
    }
}
