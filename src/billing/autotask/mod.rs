//! Datto Autotask as a billing source: active Customer companies become accounts, every
//! service on a Recurring Service contract becomes a billed line whose quantity is the units
//! row covering the day, counted or not by [`rules`]; service bundles are kept as lines that
//! do not count (their chain is not read). Requests, for N companies and C contracts: ⌈N/500⌉
//! company pages, ⌈C/500⌉ contract pages, and per 500 contracts one query each for their
//! services, their units rows covering the day and their bundles (one page per 500 rows).
//! The source only reads; [`AutotaskWriter`] writes a quantity back by contract service
//! adjustment, on the line identity ([`LineRef::Autotask`]).

mod client;
pub mod models;
pub mod rules;
mod writer;
pub mod zone;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use client::{
    API_VERSION, AutotaskClient, Entity, MAX_IN_VALUES, PAGE_SIZE, THREADS_PER_ENTITY, UPSTREAM,
    cond, day_value, next_path,
};
use models::{
    Company, Contract, ContractService, ContractServiceBundle, ContractServiceUnit, ThresholdInfo,
};
pub use writer::AutotaskWriter;
pub use zone::{CachedZone, ZONE_KEY, ZoneCache};

use super::{Billed, BilledSource, BillingError, FetchReport};
use crate::config::AutotaskConfig;
use crate::model::{Account, BilledLine, LineRef};
use crate::upstream::{RetryPolicy, UpstreamError};

/// Autotask contract services as billed lines.
#[derive(Debug, Clone)]
pub struct AutotaskSource {
    client: AutotaskClient,
}

impl AutotaskSource {
    /// A source for the configured Autotask.
    pub fn new(cfg: &AutotaskConfig) -> Result<AutotaskSource, UpstreamError> {
        Ok(AutotaskSource { client: AutotaskClient::new(cfg)? })
    }

    /// A source with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &AutotaskConfig,
        retry: RetryPolicy,
    ) -> Result<AutotaskSource, UpstreamError> {
        Ok(AutotaskSource { client: AutotaskClient::with_retry(cfg, retry)? })
    }

    /// The same source keeping the looked-up zone in `cache` (the daemon's store).
    pub fn with_zone_cache(self, cache: Arc<dyn ZoneCache>) -> AutotaskSource {
        AutotaskSource { client: self.client.with_zone_cache(cache) }
    }

    /// The client (shares the rate budget and the zone with this source).
    pub fn client(&self) -> &AutotaskClient {
        &self.client
    }
}

impl BilledSource for AutotaskSource {
    fn name(&self) -> &'static str {
        UPSTREAM
    }

    fn fetch<'a>(
        &'a self,
        now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, FetchReport> {
        Box::pin(async move {
            let client = self.client.scoped();
            let outcome = collect(&client, now, cancel).await;
            FetchReport { outcome, stats: client.stats() }
        })
    }
}

/// Everything one read fetched, before it is judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Every company.
    pub companies: Vec<Company>,
    /// Every Recurring Service contract.
    pub contracts: Vec<Contract>,
    /// The services on those contracts.
    pub services: Vec<ContractService>,
    /// Their units rows covering the day.
    pub units: Vec<ContractServiceUnit>,
    /// The service bundles on those contracts.
    pub bundles: Vec<ContractServiceBundle>,
}

/// Reads every company, Recurring Service contract, contract service, units row covering
/// the day and service bundle, and judges them.
pub async fn collect(
    client: &AutotaskClient,
    now: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<Billed, BillingError> {
    let on = now.date_naive();
    let companies = client.query(Entity::Companies, vec![cond("gt", "id", json!(0))], cancel);
    // Only Recurring Service contracts carry contract services (F4.8).
    let recurring = vec![cond("eq", "contractType", json!(rules::RECURRING_SERVICE))];
    let contracts = client.query(Entity::Contracts, recurring, cancel);
    let (companies, contracts) = tokio::try_join!(companies, contracts)?;
    let ids: Vec<u64> = contracts.iter().map(|c: &Contract| c.id).collect();
    let covering = [cond("lte", "startDate", day_value(on)), cond("gte", "endDate", day_value(on))];
    let (services, units, bundles) = tokio::try_join!(
        client.query_in(Entity::ContractServices, "contractID", &ids, &[], cancel),
        client.query_in(Entity::ContractServiceUnits, "contractID", &ids, &covering, cancel),
        client.query_in(Entity::ContractServiceBundles, "contractID", &ids, &[], cancel),
    )?;
    let fetched = Fetched { companies, contracts, services, units, bundles };
    build(client, &fetched, on)
}

/// What the source makes of what it read, as of day `on`: accounts from the active Customer
/// companies; one line per contract service, counted or not by [`rules`]; one line that does
/// not count per service bundle. Refuses (naming the record) a contract without a company, a
/// contract service without a service, or a date it cannot read.
pub fn build(client: &AutotaskClient, f: &Fetched, on: NaiveDate) -> Result<Billed, BillingError> {
    let bad =
        |endpoint: &str, reason: String| client.upstream().bad_response(endpoint, reason, b"");
    let companies: HashMap<u64, &Company> = f.companies.iter().map(|c| (c.id, c)).collect();
    let mut accounts: Vec<Account> = f
        .companies
        .iter()
        .filter(|c| rules::company_reasons(c.id, Some(c)).is_empty())
        .map(|c| Account { id: c.id.to_string(), name: company_name(c) })
        .collect();
    accounts.sort();
    let contracts: HashMap<u64, &Contract> = f.contracts.iter().map(|c| (c.id, c)).collect();
    // Units rows by contract service; rows without one by (contract, service) (F4.15).
    let mut by_service: HashMap<u64, Vec<&ContractServiceUnit>> = HashMap::new();
    let mut loose: HashMap<(u64, u64), Vec<&ContractServiceUnit>> = HashMap::new();
    for u in &f.units {
        match (u.contract_service_id, u.contract_id, u.service_id) {
            (Some(cs), _, _) => by_service.entry(cs).or_default().push(u),
            (None, Some(c), Some(s)) => loose.entry((c, s)).or_default().push(u),
            _ => {}
        }
    }
    let mut pairs: HashMap<(u64, u64), usize> = HashMap::new();
    for s in &f.services {
        if let (Some(c), Some(v)) = (s.contract_id, s.service_id) {
            *pairs.entry((c, v)).or_default() += 1;
        }
    }
    let owner = |contract_id: Option<u64>,
                 what: String|
     -> Result<(&Contract, u64), BillingError> {
        let contract = contract_id.and_then(|id| contracts.get(&id).copied()).ok_or_else(|| {
            bad("POST /ContractServices/query", format!("{what} names no contract that was read"))
        })?;
        let company = contract.company_id.ok_or_else(|| {
            bad("POST /Contracts/query", format!("contract {} names no company", contract.id))
        })?;
        Ok((contract, company))
    };
    let mut judged: HashMap<u64, Vec<String>> = HashMap::new();
    let mut lines = Vec::new();
    let mut services: Vec<&ContractService> = f.services.iter().collect();
    services.sort_by_key(|s| s.id);
    for s in services {
        let (contract, company) = owner(s.contract_id, format!("contract service {}", s.id))?;
        let service = s.service_id.ok_or_else(|| {
            bad(
                "POST /ContractServices/query",
                format!("contract service {} names no service", s.id),
            )
        })?;
        let contract_why = match judged.get(&contract.id) {
            Some(w) => w.clone(),
            None => {
                let w = rules::contract_reasons(contract, on)
                    .map_err(|e| bad("POST /Contracts/query", e.to_string()))?;
                judged.insert(contract.id, w.clone());
                w
            }
        };
        let company_why = rules::company_reasons(company, companies.get(&company).copied());
        let mut rows: Vec<&ContractServiceUnit> =
            by_service.get(&s.id).cloned().unwrap_or_default();
        let mut extra = None;
        if let Some(l) = loose.get(&(contract.id, service)) {
            if pairs.get(&(contract.id, service)).copied() == Some(1) {
                rows.extend(l.iter().copied());
            } else {
                let ids: Vec<String> = l.iter().map(|r| r.id.to_string()).collect();
                extra = Some(format!(
                    "units rows {} name no contract service and this contract has several lines \
                     of service {service}: they are not counted",
                    ids.join(", ")
                ));
            }
        }
        let j = rules::judge(&company_why, &contract_why, &rows, on)
            .map_err(|e| bad("POST /ContractServiceUnits/query", e.to_string()))?;
        let note = match (j.note, extra) {
            (n, None) => n,
            (None, Some(x)) => Some(x),
            (Some(n), Some(x)) => Some(format!("{n}; {x}")),
        };
        let narrow = |what: &str, id: u64| {
            u32::try_from(id).map_err(|_| {
                let reason = format!("contract service {} names {what} {id}, beyond 32 bits", s.id);
                bad("POST /ContractServices/query", reason)
            })
        };
        let line = LineRef::Autotask {
            contract: narrow("contract", contract.id)?,
            service: narrow("service", service)?,
            contract_service: s.id,
        };
        lines.push(BilledLine {
            account_id: company.to_string(),
            product_id: service.to_string(),
            quantity: j.quantity,
            unit_price: rules::unit_price(s),
            counted: note.is_none(),
            note,
            source_ref: format!(
                "contract {} service {service} (contract service {})",
                contract.id, s.id
            ),
            line: Some(line),
        });
    }
    let mut bundles: Vec<&ContractServiceBundle> = f.bundles.iter().collect();
    bundles.sort_by_key(|b| b.id);
    for b in bundles {
        let (contract, company) =
            owner(b.contract_id, format!("contract service bundle {}", b.id))?;
        let bundle = b.service_bundle_id.map_or_else(|| "none".to_owned(), |id| id.to_string());
        lines.push(BilledLine {
            account_id: company.to_string(),
            product_id: format!("bundle-{bundle}"),
            quantity: 0.0,
            unit_price: b.adjusted_price.or(b.unit_price).filter(|p| p.is_finite()),
            counted: false,
            note: Some(rules::bundle_note(b)),
            source_ref: format!(
                "contract {} service bundle {bundle} (contract service bundle {})",
                contract.id, b.id
            ),
            line: None,
        });
    }
    Ok(Billed { accounts, lines })
}

/// A company's name as the PSA shows it: `companyName`, else its number, else its id.
fn company_name(c: &Company) -> String {
    c.company_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| c.company_number.clone().filter(|n| !n.trim().is_empty()))
        .unwrap_or_else(|| c.id.to_string())
}

/// What `mpsync check` found: the zone, the threshold use and the contracts the API user
/// sees.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The zone's REST root used.
    pub zone: String,
    /// The database's use of its hourly threshold.
    pub threshold: ThresholdInfo,
    /// Whether the API user sees at least one contract.
    pub sees_contracts: bool,
}

impl CheckReport {
    /// One line for `mpsync check`.
    pub fn describe(&self) -> String {
        format!(
            "Autotask at {} answers with these credentials and the API user sees contracts; {}",
            self.zone,
            self.threshold.describe()
        )
    }
}

/// The connection test: the zone, the credentials (`ThresholdInformation`, which also shows
/// the hourly use) and the API user's contract visibility (one contract asked for). A user
/// whose security level hides contracts gets an empty answer, not an error (F2.6): that is
/// reported as [`BillingError::NothingVisible`].
pub async fn check_connection(cfg: &AutotaskConfig) -> Result<CheckReport, BillingError> {
    let client = AutotaskClient::new(cfg)?;
    let threshold = client.threshold().await?;
    let zone = client.zone_url(None).await?.to_string();
    let cancel = CancellationToken::new();
    let first: Vec<Contract> =
        client.query_first(Entity::Contracts, vec![cond("gt", "id", json!(0))], &cancel).await?;
    if first.is_empty() {
        return Err(BillingError::NothingVisible {
            source_name: UPSTREAM,
            what: format!(
                "the API user {} sees no contracts: its security level lacks contract access \
                 (Autotask answers such queries with no rows rather than an error), or the \
                 database has none; give it API User (API-only) or a copy that can see \
                 Contracts",
                cfg.username
            ),
        });
    }
    Ok(CheckReport { zone, threshold, sees_contracts: true })
}
