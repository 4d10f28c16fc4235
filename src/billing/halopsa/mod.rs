//! HaloPSA as a billing source: active clients become accounts, every line of every
//! recurring invoice becomes a billed line of (client, item) with the line's quantity and
//! unit price, counted or not by [`rules`] (lines of one item on several invoices are summed
//! by the reconciliation). Requests, for N clients, C contracts and R recurring invoices:
//! ⌈N/1000⌉ client pages, ⌈C/1000⌉ contract pages and ⌈R/1000⌉ invoice pages asked for with
//! `includelines=true`; an invoice whose list row does not carry whole lines is read again
//! alone (`GET /RecurringInvoice/{id}`, F19). Items are not read: each line names its item.
//! The source only reads; each line keeps what a writer needs to find it again
//! ([`LineRef::Halopsa`]: invoice `ihid`, line id, item id, and whether Halo computes its
//! quantity). [`HalopsaWriter`] writes a line back, verified by re-reading its invoice
//! ([`verify`]).

mod client;
pub mod models;
pub mod rules;
pub mod token;
pub mod verify;
mod writer;

#[cfg(test)]
mod collect_tests;
#[cfg(test)]
mod stub_tests;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use client::{
    HaloClient, PAGE_SIZE, Resource, UPSTREAM, WHERE_SCOPES, retry_policy, unwrap_list,
};
use models::{Client, Contract, Line, RecurringInvoice};
pub use writer::HalopsaWriter;

use super::{Billed, BilledSource, BillingError, FetchReport};
use crate::config::{HALOPSA_WRITE_SCOPE, HalopsaConfig};
use crate::model::{Account, BilledLine, LineRef};
use crate::upstream::{Endpoint, RetryPolicy, UpstreamError};

/// HaloPSA recurring-invoice lines as billed lines.
#[derive(Debug, Clone)]
pub struct HalopsaSource {
    client: HaloClient,
}

impl HalopsaSource {
    /// A source for the configured HaloPSA (read scopes).
    pub fn new(cfg: &HalopsaConfig) -> Result<HalopsaSource, UpstreamError> {
        Ok(HalopsaSource { client: HaloClient::new(cfg)? })
    }

    /// A source with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &HalopsaConfig,
        retry: RetryPolicy,
    ) -> Result<HalopsaSource, UpstreamError> {
        let client = HaloClient::build(cfg, false, retry, token::system_clock())?;
        Ok(HalopsaSource { client })
    }

    /// The client (shares the rate budget and the token with this source).
    pub fn client(&self) -> &HaloClient {
        &self.client
    }
}

impl BilledSource for HalopsaSource {
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
    /// Every client, inactive ones included.
    pub clients: Vec<Client>,
    /// Every client contract, inactive ones included.
    pub contracts: Vec<Contract>,
    /// Every recurring invoice, each with its lines.
    pub invoices: Vec<RecurringInvoice>,
}

/// Recurring invoices read alone at once when the list does not carry whole lines.
const SINGLE_READS_IN_FLIGHT: usize = 4;

/// Reads every client, contract and recurring invoice with its lines, and judges them.
pub async fn collect(
    client: &HaloClient,
    now: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<Billed, BillingError> {
    let all = [("includeinactive", "true".to_owned())];
    let lines = [("includelines", "true".to_owned())];
    let (clients, contracts, listed) = tokio::try_join!(
        client.list::<Client>(Resource::Client, &all, cancel),
        client.list::<Contract>(Resource::ClientContract, &all, cancel),
        client.list::<RecurringInvoice>(Resource::RecurringInvoice, &lines, cancel),
    )?;
    let invoices = with_lines(client, listed, cancel).await?;
    build(client, &Fetched { clients, contracts, invoices }, now.date_naive())
}

/// The invoices with whole lines: as listed when every line carries the fields mpsync
/// judges ([`Line::NEEDED`]), else read alone.
pub async fn with_lines(
    client: &HaloClient,
    listed: Vec<RecurringInvoice>,
    cancel: &CancellationToken,
) -> Result<Vec<RecurringInvoice>, BillingError> {
    let whole =
        |i: &RecurringInvoice| i.lines.as_ref().is_some_and(|l| l.iter().all(Line::is_whole));
    let (mut ready, partial): (Vec<_>, Vec<_>) = listed.into_iter().partition(whole);
    if !partial.is_empty() {
        tracing::debug!(
            invoices = partial.len(),
            "halopsa: the invoice list did not carry whole lines; reading those invoices alone"
        );
    }
    let read: Vec<RecurringInvoice> = futures_util::stream::iter(partial)
        .map(|listed| async move {
            if cancel.is_cancelled() {
                return Err(BillingError::Cancelled);
            }
            let mut one: RecurringInvoice =
                client.get_one(Resource::RecurringInvoice, listed.id).await?;
            // The header as listed fills what the single answer leaves out.
            one.client_id = one.client_id.or(listed.client_id);
            one.client_name = one.client_name.or(listed.client_name);
            one.contract_id = one.contract_id.or(listed.contract_id);
            one.disabled = one.disabled.or(listed.disabled);
            one.startdate = one.startdate.or(listed.startdate);
            one.enddate = one.enddate.or(listed.enddate);
            if one.lines.is_none() {
                one.lines = Some(Vec::new());
            }
            Ok(one)
        })
        .buffer_unordered(SINGLE_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    ready.extend(read);
    Ok(ready)
}

/// What the source makes of what it read, as of day `on`: accounts from the active
/// clients; one line per recurring-invoice line, counted or not by [`rules`]. Refuses
/// (naming the record) a line it cannot read or a date that is none.
pub fn build(client: &HaloClient, f: &Fetched, on: NaiveDate) -> Result<Billed, BillingError> {
    let bad = |endpoint: &str, reason: String| -> BillingError {
        client.upstream().bad_response(endpoint, reason, b"").into()
    };
    let clients: HashMap<i64, &Client> = f.clients.iter().map(|c| (c.id, c)).collect();
    let contracts: HashMap<i64, &Contract> = f.contracts.iter().map(|c| (c.id, c)).collect();
    let mut accounts: Vec<Account> = f
        .clients
        .iter()
        .filter(|c| c.inactive != Some(true))
        .map(|c| Account { id: c.id.to_string(), name: client_name(c) })
        .collect();
    accounts.sort();
    let mut invoices: Vec<&RecurringInvoice> = f.invoices.iter().collect();
    invoices.sort_by_key(|i| i.id);
    let mut out = Vec::new();
    for inv in invoices {
        let ep = "GET /RecurringInvoice/{id}";
        let contract = inv.contract_id.filter(|c| *c != 0).and_then(|c| contracts.get(&c).copied());
        let mut why = rules::client_reasons(
            inv.client_id,
            inv.client_id.and_then(|c| clients.get(&c).copied()),
        );
        why.extend(
            rules::contract_reasons(contract, on)
                .map_err(|e| bad("GET /ClientContract", e.to_string()))?,
        );
        why.extend(rules::invoice_reasons(inv, on).map_err(|e| bad(ep, e.to_string()))?);
        let mut lines: Vec<Line> = Vec::new();
        for (i, raw) in inv.lines.iter().flatten().enumerate() {
            let line: Line = serde_json::from_value(raw.clone()).map_err(|e| {
                bad(ep, format!("recurring invoice {} line {}: {e}", inv.id, i + 1))
            })?;
            lines.push(line);
        }
        lines.sort_by_key(|l| l.id);
        let account = inv.client_id.map_or_else(|| "none".to_owned(), |c| c.to_string());
        let contract_ref = inv
            .contract_ref
            .as_deref()
            .or(contract.and_then(|c| c.r#ref.as_deref()))
            .filter(|r| !r.trim().is_empty());
        for line in lines {
            let j = rules::judge(&why, &line, on).map_err(|e| bad(ep, e.to_string()))?;
            let item = line.item_id.filter(|i| *i != 0);
            let narrow = |what: &str, id: i64| {
                i32::try_from(id).map_err(|_| {
                    let reason = format!(
                        "recurring invoice {} line {} names {what} {id}, beyond 32 bits",
                        inv.id, line.id
                    );
                    bad(ep, reason)
                })
            };
            let line_ref = match item {
                Some(item) => Some(LineRef::Halopsa {
                    invoice: narrow("invoice", inv.id)?,
                    line: narrow("line", line.id)?,
                    item: narrow("item", item)?,
                    computed: j.computed,
                }),
                None => None,
            };
            let on_contract = contract_ref.map(|r| format!(" (contract {r})")).unwrap_or_default();
            out.push(BilledLine {
                account_id: account.clone(),
                product_id: item.map_or_else(|| "none".to_owned(), |i| i.to_string()),
                quantity: j.quantity,
                unit_price: line.unit_price,
                counted: j.counted,
                note: j.note,
                source_ref: format!(
                    "recurring invoice {}{on_contract} line {} item {}",
                    inv.id,
                    line.id,
                    describe_item(&line)
                ),
                line: line_ref,
            });
        }
    }
    Ok(Billed { accounts, lines: out })
}

/// The item as the line names it: `17 (M365-BP)`.
fn describe_item(line: &Line) -> String {
    let id = line.item_id.map_or_else(|| "none".to_owned(), |i| i.to_string());
    match line.item_code.as_deref().or(line.item_shortdescription.as_deref()) {
        Some(code) if !code.trim().is_empty() => format!("{id} ({})", code.trim()),
        _ => id,
    }
}

/// A client's name: `name`, else its id.
fn client_name(c: &Client) -> String {
    c.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| c.id.to_string())
}

/// One probe of `mpsync check`: a route, the scope it needs, and what the API answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `GET /Client` and so on.
    pub route: String,
    /// The scope it needs.
    pub scope: &'static str,
    /// How many records Halo counts there (`record_count`), when it says.
    pub records: Option<u64>,
}

/// What `mpsync check` found: the token (its scopes) and each route the configuration
/// needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The API root used.
    pub api: String,
    /// The scopes the token was asked for.
    pub scope: String,
    /// The routes probed, all answered.
    pub probes: Vec<Probe>,
    /// Whether write-back's scope was tested too.
    pub write: bool,
}

impl CheckReport {
    /// One line for `mpsync check`.
    pub fn describe(&self) -> String {
        let routes: Vec<String> = self
            .probes
            .iter()
            .map(|p| match p.records {
                Some(n) => format!("{} ({}, {n} records)", p.route, p.scope),
                None => format!("{} ({})", p.route, p.scope),
            })
            .collect();
        let write = if self.write {
            format!("; the token carries {HALOPSA_WRITE_SCOPE} for write-back")
        } else {
            String::new()
        };
        format!(
            "HaloPSA at {} grants a token for \"{}\" and answers {}{write}",
            self.api,
            self.scope,
            routes.join(", ")
        )
    }
}

/// The connection test: a token with the scopes the configuration needs (`write`: a
/// write-back is enabled for some product, so `edit:invoices` too), then one cheap page (one
/// row) of each route a read uses. A refused scope at the token endpoint, or a 403 on a
/// route, names the scope missing (and that the agent's role may deny it, F7).
pub async fn check_connection(
    cfg: &HalopsaConfig,
    write: bool,
) -> Result<CheckReport, BillingError> {
    let client = if write { HaloClient::for_writing(cfg)? } else { HaloClient::new(cfg)? };
    client.token().await?;
    let mut probes = Vec::new();
    for r in Resource::ALL {
        let (_, records) = client.page::<Value>(r, &[], 1, 1).await?;
        probes.push(Probe { route: format!("GET {}", r.path()), scope: r.scope(), records });
    }
    Ok(CheckReport {
        api: cfg.api_url().to_string(),
        scope: client.scope().to_owned(),
        probes,
        write,
    })
}

/// The endpoint of the single recurring-invoice read (for a writer's re-read).
pub fn invoice_endpoint(id: i64) -> Endpoint {
    Endpoint::get(format!("/RecurringInvoice/{id}"), "/RecurringInvoice/{id}")
}
