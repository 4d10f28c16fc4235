//! The generator of the simulated HaloPSA data ([`HaloData::from_connectwise`]).
//!
//! Generated from the simulated ConnectWise billing of the same dataset and seed (as the
//! Autotask data is), so every PSA plants every reconciliation status on the same rows: a
//! client per ConnectWise company, a contract and a recurring invoice per agreement, a line
//! per addition. What does not count in ConnectWise becomes what does not count in Halo: a
//! cancelled agreement a disabled invoice (inactive contract), an expired one an invoice whose
//! `enddate` has passed, an addition taking effect later a line whose `startdate` is in 2099,
//! one cancelled in the past a line whose `enddate` passed, a `DoNotBill` one an inactive
//! line (`isinactive`). The split row's second addition is a line of the same item on a
//! second recurring invoice of the client (no contract, a negative id): the two are summed.
//!
//! Halo-specific plants ([`HaloPlant`], listed in [`HaloData::plants`]): the deleted
//! company is an inactive client with an invoice of its own; one matching row's only line is
//! auto-calculated (`recurring_invoice_quantity_type` 1) and bills more than is used (its row
//! becomes `over_billed`, and a write-back must never plan it); lines of items that are not
//! Mailprotector products (Microsoft 365, managed users) on some invoices; an inactive item
//! (`status` 1) nobody bills; negative recurring-invoice ids.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, Utc};
use serde_json::{Value, json};

use super::data::{
    DEFAULT_TENANT, FOREIGN_ITEMS, HaloCredentials, HaloData, HaloPlant, INACTIVE_ITEM, ITEM_IDS,
    Resource, cents, client_id, halo_date, item_id, recompute,
};
use crate::connectwise::{BillingData, PRODUCTS, Planted};

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The fields of one line, before it is JSON.
/// An item as a line names it: (id, code, name, unit price, unit cost).
type ItemRef = (i64, &'static str, &'static str, f64, f64);

struct LineSpec {
    item: ItemRef,
    qty: f64,
    contract: i64,
    quantity_type: u8,
    inactive: bool,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
}

impl LineSpec {
    fn manual(item: ItemRef, qty: f64, contract: i64) -> LineSpec {
        LineSpec { item, qty, contract, quantity_type: 0, inactive: false, start: None, end: None }
    }
}

/// A line object (F29, §3.1).
fn line_json(id: i64, ihid: i64, s: &LineSpec) -> Value {
    let (item, code, name, price, cost) = s.item;
    json!({
        "id": id, "ihid": ihid, "_itemid": item, "item_code": code,
        "item_shortdescription": name, "item_longdescription": "",
        "qty_order": s.qty, "unit_price": price, "unit_cost": cost,
        "net_amount": cents(s.qty * price), "nominal_code": "4000", "tax_code": 1,
        "isinactive": s.inactive, "startdate": s.start.map(halo_date),
        "enddate": s.end.map(halo_date), "contract_id": s.contract,
        "recurring_invoice_quantity_type": s.quantity_type,
        "calculate_price_from_users": false, "calculate_price_from_assets": false,
        "quantity_users": [], "quantity_licences": [], "quantity_subscriptions": [],
        "_warning": null, "customfields": [],
    })
}

struct Gen {
    today: NaiveDate,
    rows: BTreeMap<Resource, Vec<Value>>,
    /// Recurring invoice id → its position in `rows` (lines are added by invoice id).
    position: BTreeMap<i64, usize>,
    plants: Vec<HaloPlant>,
    next_line: i64,
    next_invoice: i64,
}

impl Gen {
    fn push(&mut self, r: Resource, row: Value) {
        self.rows.entry(r).or_default().push(row);
    }

    fn header_mut(&mut self, id: i64) -> Option<&mut Value> {
        let i = *self.position.get(&id)?;
        self.rows.get_mut(&Resource::RecurringInvoice)?.get_mut(i)
    }

    fn contract(&mut self, id: i64, client: (i64, &str), status: &str, end: Option<NaiveDate>) {
        let active = status == "Active";
        self.push(
            Resource::ClientContract,
            json!({
                "id": id, "client_id": client.0, "client_name": client.1,
                "ref": format!("MS-{id}"), "start_date": "2019-01-01T00:00:00",
                "end_date": end.map(halo_date), "started": true, "expired": status == "Expired",
                "active": active, "status": if active { 0 } else { 1 },
                "contract_status": status, "billingperiod": 1, "periodchargeamount": 0.0,
                "next_invoice_date": halo_date(self.month(1)), "site_id": 0,
                "_warning": null, "customfields": [],
            }),
        );
    }

    /// The first day of the month `k` months from this one.
    fn month(&self, k: u32) -> NaiveDate {
        let first = self.today.with_day(1).unwrap_or(self.today);
        first.checked_add_months(Months::new(k)).unwrap_or(first)
    }

    /// A recurring invoice; its id is the next one, negated when `negative` and for every
    /// seventh invoice.
    fn invoice(
        &mut self,
        client: (i64, &str),
        contract: Option<(i64, String)>,
        disabled: bool,
        end: Option<NaiveDate>,
        negative: bool,
    ) -> i64 {
        let n = self.next_invoice;
        self.next_invoice += 1;
        let id = if negative || n % 7 == 3 { -(n - 10) } else { n };
        let (contract_id, contract_ref) = contract.unwrap_or((0, String::new()));
        let at = self.rows.get(&Resource::RecurringInvoice).map_or(0, Vec::len);
        self.position.insert(id, at);
        let last = halo_date(self.month(0));
        let next = halo_date(self.month(1));
        self.push(
            Resource::RecurringInvoice,
            json!({
                "id": id, "client_id": client.0, "client_name": client.1,
                "contract_id": contract_id, "contract_ref": contract_ref, "disabled": disabled,
                "period": 1, "lastcreated": last, "nextcreationdate": next,
                "startdate": "2019-01-01T00:00:00", "enddate": end.map(halo_date),
                "invoice_date": last, "total": 0.0, "currency": "$",
                "is_recurring_invoice": true, "lines": [], "_warning": null, "customfields": [],
            }),
        );
        if id < 0 {
            self.plant("negative_invoice_id", client.0, Some(id), None, None);
        }
        id
    }

    fn line(&mut self, ihid: i64, spec: &LineSpec) -> i64 {
        let id = self.next_line;
        self.next_line += 1;
        let row = line_json(id, ihid, spec);
        if let Some(h) = self.header_mut(ihid)
            && let Some(lines) = h["lines"].as_array_mut()
        {
            lines.push(row);
        }
        id
    }

    fn plant(
        &mut self,
        kind: &'static str,
        client_id: i64,
        invoice_id: Option<i64>,
        line_id: Option<i64>,
        item_id: Option<i64>,
    ) {
        self.plants.push(HaloPlant { kind, client_id, invoice_id, line_id, item_id });
    }
}

fn mp_item(psa: &str) -> ItemRef {
    let i = PRODUCTS.iter().position(|p| p.1 == psa).unwrap_or(0);
    let p = &PRODUCTS[i];
    (17 + i as i64, p.1, ITEM_NAMES[i], p.2, cents(p.2 * 0.6))
}

/// The item names (`Mailprotector <product>`).
const ITEM_NAMES: [&str; 8] = [
    "Mailprotector CloudFilter",
    "Mailprotector SafeSend",
    "Mailprotector Bracket",
    "Mailprotector XtraMail",
    "Mailprotector SecureStore",
    "Mailprotector CloudMail",
    "Mailprotector ContinuityBundle",
    "Mailprotector BracketBundle",
];

fn date_of(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

impl HaloData {
    /// HaloPSA billing carrying the same truth as `cw`, laid out around `today`.
    pub fn from_connectwise(cw: &BillingData, today: NaiveDate) -> HaloData {
        let mut g = Gen {
            today,
            rows: Resource::ALL.iter().map(|r| (*r, Vec::new())).collect(),
            position: BTreeMap::new(),
            plants: Vec::new(),
            next_line: 24_001,
            next_invoice: 101,
        };
        let past_end = ymd(2021, 12, 31);
        let mut name_of = BTreeMap::new();
        for (i, c) in cw.companies.iter().enumerate() {
            let id = client_id(c.id);
            name_of.insert(c.id, c.name.clone());
            g.push(
                Resource::Client,
                json!({
                    "id": id, "name": c.name, "inactive": c.deleted_flag, "toplevel_id": 1,
                    "toplevel_name": "Clients", "accountsid": format!("C{:05}", 1000 + i),
                    "_warning": null, "customfields": [],
                }),
            );
            if c.deleted_flag {
                // A line of its own, which does not count because of its client.
                let contract = 9_000 + id;
                g.contract(contract, (id, &c.name), "Active", None);
                let ref_ = Some((contract, format!("MS-{contract}")));
                let inv = g.invoice((id, &c.name), ref_, false, None, false);
                let line = g.line(inv, &LineSpec::manual(mp_item("MP-CF"), 3.0, contract));
                g.plant("inactive_client", id, Some(inv), Some(line), item_id("MP-CF"));
            }
        }
        // Contract and recurring invoice per agreement.
        let mut invoice_of = BTreeMap::new();
        let mut contract_of = BTreeMap::new();
        for a in &cw.agreements {
            let client = client_id(a.company.id);
            let name = name_of.get(&a.company.id).cloned().unwrap_or_default();
            let contract = a.id as i64 - 1000 + 31;
            let expired = a.agreement_status.as_deref() == Some("Expired");
            let status = if a.cancelled_flag {
                "Cancelled"
            } else if expired {
                "Expired"
            } else {
                "Active"
            };
            let end = expired.then_some(past_end);
            g.contract(contract, (client, &name), status, end);
            let inv = g.invoice(
                (client, &name),
                Some((contract, format!("MS-{contract}"))),
                a.cancelled_flag,
                end,
                false,
            );
            if a.cancelled_flag {
                g.plant("disabled_invoice", client, Some(inv), None, None);
            } else if expired {
                g.plant("out_of_date_invoice", client, Some(inv), None, None);
            }
            invoice_of.insert(a.id, inv);
            contract_of.insert(a.id, (contract, client, name));
        }
        // A line per addition; a second counting line of the same item goes on a second
        // invoice of the client (summed).
        let mut counted: BTreeMap<(u64, String), i64> = BTreeMap::new();
        let mut second_invoice: BTreeMap<i64, i64> = BTreeMap::new();
        for add in &cw.additions {
            let (Some(&inv), Some((contract, client, name))) =
                (invoice_of.get(&add.agreement_id), contract_of.get(&add.agreement_id).cloned())
            else {
                continue;
            };
            let psa = add.product.identifier.as_deref().unwrap_or("MP-CF");
            let mut spec = LineSpec::manual(mp_item(psa), add.quantity, contract);
            spec.item.3 = add.unit_price;
            let item = Some(spec.item.0);
            if add.bill_customer != "Billable" {
                spec.inactive = true;
                let line = g.line(inv, &spec);
                g.plant("inactive_line", client, Some(inv), Some(line), item);
                continue;
            }
            let later = add.effective_date.as_deref().is_some_and(|e| e.starts_with("2099"));
            let cancelled = add.cancelled_date.as_deref().and_then(date_of);
            if later {
                spec.start = Some(ymd(2099, 1, 1));
                let line = g.line(inv, &spec);
                g.plant("future_line", client, Some(inv), Some(line), item);
                continue;
            }
            spec.end = cancelled;
            let ended = cancelled.is_some_and(|c| c < today);
            let key = (add.agreement_id, psa.to_owned());
            if !ended && counted.contains_key(&key) {
                let second = match second_invoice.get(&client) {
                    Some(&s) => s,
                    None => {
                        // Negative, as some Halo ids are (F31), and without a contract.
                        let s = g.invoice((client, &name), None, false, None, true);
                        second_invoice.insert(client, s);
                        s
                    }
                };
                spec.contract = 0;
                let line = g.line(second, &spec);
                g.plant("second_invoice_line", client, Some(second), Some(line), item);
                continue;
            }
            let line = g.line(inv, &spec);
            if ended {
                g.plant("ended_line", client, Some(inv), Some(line), item);
            } else {
                counted.insert(key, line);
            }
        }
        // Lines of items that are not Mailprotector products, on every third active invoice.
        let actives: Vec<(i64, i64, i64)> = g.rows[&Resource::RecurringInvoice]
            .iter()
            .filter(|h| h["disabled"] == false && h["enddate"].is_null())
            .map(|h| {
                (
                    h["id"].as_i64().unwrap_or(0),
                    h["client_id"].as_i64().unwrap_or(0),
                    h["contract_id"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        for (k, &(inv, client, contract)) in actives.iter().enumerate() {
            if k % 3 == 0 {
                let f = FOREIGN_ITEMS[k / 3 % 2];
                let line = g.line(inv, &LineSpec::manual(f, 5.0 + (k % 11) as f64, contract));
                g.plant("foreign_item_line", client, Some(inv), Some(line), Some(f.0));
            }
        }
        let mut planted: Vec<Planted> = cw
            .planted
            .iter()
            .map(|p| Planted {
                account_id: p.account_id.as_ref().map(|a| {
                    a.parse::<u64>().map_or_else(|_| a.clone(), |id| client_id(id).to_string())
                }),
                psa_product: p
                    .psa_product
                    .as_deref()
                    .map(|s| item_id(s).map_or_else(|| s.to_owned(), |id| id.to_string())),
                ..p.clone()
            })
            .collect();
        let mut computed = BTreeMap::new();
        plant_auto_line(&mut g, &mut planted, &counted, &mut computed);
        items(&mut g);
        for h in g.rows.get_mut(&Resource::RecurringInvoice).into_iter().flatten() {
            recompute(h);
        }
        posted_invoices(&mut g);
        for rows in g.rows.values_mut() {
            rows.sort_by_key(|r| r["id"].as_i64().unwrap_or(0));
        }
        let mut mapping = cw.mapping.clone();
        for account in mapping.customers.values_mut() {
            *account = client_id(*account) as u64;
        }
        for p in &mut mapping.products {
            p.psa = ITEM_IDS[item_id(p.psa).map_or(0, |s| (s - 17) as usize)];
        }
        HaloData {
            seed: cw.seed,
            today,
            rows: g.rows,
            computed,
            credentials: credentials(cw.seed),
            mapping_toml: mapping.render(cw.seed),
            planted,
            plants: g.plants,
            next_line: g.next_line,
        }
    }

    /// [`HaloData::from_connectwise`] laid out around today (UTC).
    pub fn generate(cw: &BillingData) -> HaloData {
        HaloData::from_connectwise(cw, Utc::now().date_naive())
    }
}

/// Makes the only line of one matching row (not CloudFilter, whose tolerance would hide a
/// small difference) auto-calculated, billing more than is used: the row becomes over_billed.
fn plant_auto_line(
    g: &mut Gen,
    planted: &mut [Planted],
    counted: &BTreeMap<(u64, String), i64>,
    computed: &mut BTreeMap<i64, f64>,
) {
    let mut per_row: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for h in &g.rows[&Resource::RecurringInvoice] {
        for l in h["lines"].as_array().into_iter().flatten() {
            let key = (h["client_id"].as_i64().unwrap_or(0), l["_itemid"].as_i64().unwrap_or(0));
            per_row.entry(key).or_default().push(l["id"].as_i64().unwrap_or(0));
        }
    }
    let counting: std::collections::BTreeSet<i64> = counted.values().copied().collect();
    let pick = planted.iter_mut().find(|p| {
        let (Some(a), Some(i)) = (&p.account_id, &p.psa_product) else { return false };
        let key = (a.parse().unwrap_or(0), i.parse().unwrap_or(0));
        p.expected_status == "match"
            && p.customer_ids.len() == 1
            && key.1 != 17
            && per_row.get(&key).is_some_and(|ls| ls.len() == 1 && counting.contains(&ls[0]))
    });
    let Some(p) = pick else { return };
    let client: i64 = p.account_id.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let item: i64 = p.psa_product.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let line = per_row[&(client, item)][0];
    let v = p.vendor_qty;
    let qty = (v + 2 + v / 5) as f64;
    p.expected_status = "over_billed";
    p.billed_qty = qty;
    computed.insert(line, qty);
    let mut invoice = None;
    for h in g.rows.get_mut(&Resource::RecurringInvoice).into_iter().flatten() {
        let hid = h["id"].as_i64();
        for l in h["lines"].as_array_mut().into_iter().flatten() {
            if l["id"] == line {
                l["recurring_invoice_quantity_type"] = json!(1);
                l["calculate_price_from_users"] = json!(true);
                l["qty_order"] = json!(qty);
                invoice = hid;
            }
        }
    }
    g.plant("auto_calculated_line", client, invoice, Some(line), Some(item));
}

fn items(g: &mut Gen) {
    let mut rows = Vec::new();
    let item = |id: i64, code: &str, name: &str, price: f64, cost: f64, status: u8| {
        json!({
            "id": id, "name": name, "description": "Per user / month", "baseprice": price,
            "costprice": cost, "recurringprice": price, "isrecurringitem": true,
            "internalreference": code, "externalreference": "", "supplier_part_code": code,
            "nominalcode": "4000", "accountsid": "", "status": status,
            "_warning": null, "customfields": [],
        })
    };
    for p in PRODUCTS {
        let (id, code, name, price, cost) = mp_item(p.1);
        rows.push(item(id, code, name, price, cost, 0));
    }
    for (id, code, name, price, cost) in FOREIGN_ITEMS {
        rows.push(item(id, code, name, price, cost, 0));
    }
    rows.push(item(INACTIVE_ITEM, "MP-ARCH-OLD", "Mailprotector Archive (retired)", 1.25, 0.5, 1));
    g.plant("inactive_item", 0, None, None, Some(INACTIVE_ITEM));
    g.rows.insert(Resource::Item, rows);
}

/// Last month's posted invoice of every active recurring invoice.
fn posted_invoices(g: &mut Gen) {
    let date = halo_date(g.month(0));
    let posted: Vec<Value> = g.rows[&Resource::RecurringInvoice]
        .iter()
        .filter(|h| h["disabled"] == false && h["enddate"].is_null())
        .enumerate()
        .map(|(k, h)| {
            let id = 5_001 + k as i64;
            json!({
                "id": id, "client_id": h["client_id"], "client_name": h["client_name"],
                "invoicenumber": format!("INV-{id:06}"), "invoice_date": date,
                "recurring_invoice_id": h["id"], "contract_id": h["contract_id"],
                "posted": true, "total": h["total"], "amountdue": 0.0,
                "_warning": null, "customfields": [],
            })
        })
        .collect();
    g.rows.insert(Resource::Invoice, posted);
}

fn credentials(seed: u64) -> HaloCredentials {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x4a10_c0de);
    let mut hex = |n: usize| -> String {
        (0..n).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
    };
    HaloCredentials {
        tenant: Some(DEFAULT_TENANT.to_owned()),
        client_id: format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12)),
        client_secret: format!("{}-{}", hex(32), hex(36)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> HaloData {
        let cw = BillingData::generate(&crate::Dataset::generate(3, 40), 3);
        HaloData::from_connectwise(&cw, ymd(2026, 6, 15))
    }

    #[test]
    fn every_halo_specific_object_is_planted() {
        let d = data();
        for kind in [
            "auto_calculated_line",
            "inactive_line",
            "disabled_invoice",
            "out_of_date_invoice",
            "future_line",
            "ended_line",
            "second_invoice_line",
            "inactive_client",
            "foreign_item_line",
            "inactive_item",
            "negative_invoice_id",
        ] {
            assert!(!d.plants_of(kind).is_empty(), "{kind} planted");
        }
        let auto = d.plants_of("auto_calculated_line")[0];
        let (_, line) = d.line(auto.line_id.unwrap()).unwrap();
        assert_eq!(line["recurring_invoice_quantity_type"], 1);
        assert_eq!(d.computed[&auto.line_id.unwrap()], line["qty_order"].as_f64().unwrap());
        let second = d.plants_of("second_invoice_line")[0];
        assert!(second.invoice_id.unwrap() < 0, "the second invoice has a negative id");
    }

    #[test]
    fn totals_are_the_active_lines_and_ids_ascend() {
        let d = data();
        for h in &d.rows[&Resource::RecurringInvoice] {
            let sum: f64 = h["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["isinactive"] == false)
                .map(|l| l["qty_order"].as_f64().unwrap() * l["unit_price"].as_f64().unwrap())
                .sum();
            assert!((h["total"].as_f64().unwrap() - sum).abs() < 0.01, "{h}");
        }
        for rows in d.rows.values() {
            let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        }
        assert_eq!(client_id(250), 12);
        assert_eq!(item_id("MP-CF"), Some(17));
    }
}
