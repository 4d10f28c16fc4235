//! ConnectWise Manage as a billing source: companies become accounts, the additions of every
//! agreement that is not cancelled become billed lines, counted or not by the §7 rules
//! ([`rules`]). Requests: one company listing, one agreement listing, one additions listing
//! per agreement (fetched `max_in_flight` at a time). The source only reads; writing a
//! quantity back is [`ConnectwiseWriter`]'s (§3.4), on the same client.

mod client;
pub mod link;
pub mod models;
pub mod rules;
mod writer;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio_util::sync::CancellationToken;

pub use client::{AGREEMENT_CONDITIONS, API_PREFIX, ConnectwiseClient, PAGE_SIZE, UPSTREAM};
use models::{Addition, Agreement, Company};
pub use writer::ConnectwiseWriter;

use super::{Billed, BilledSource, BillingError, FetchReport};
use crate::config::ConnectwiseConfig;
use crate::model::{Account, BilledLine, LineRef};
use crate::upstream::{RetryPolicy, UpstreamError};

/// ConnectWise Manage agreement additions as billed lines.
#[derive(Debug, Clone)]
pub struct ConnectwiseSource {
    client: ConnectwiseClient,
}

impl ConnectwiseSource {
    /// A source for the configured ConnectWise.
    pub fn new(cfg: &ConnectwiseConfig) -> Result<ConnectwiseSource, UpstreamError> {
        Ok(ConnectwiseSource { client: ConnectwiseClient::new(cfg)? })
    }

    /// A source with a specific retry policy (tests shorten the waits).
    pub fn with_retry(
        cfg: &ConnectwiseConfig,
        retry: RetryPolicy,
    ) -> Result<ConnectwiseSource, UpstreamError> {
        Ok(ConnectwiseSource { client: ConnectwiseClient::with_retry(cfg, retry)? })
    }

    /// The client (shares the rate budget with this source).
    pub fn client(&self) -> &ConnectwiseClient {
        &self.client
    }

    /// A writer for the same ConnectWise sharing this source's rate budget (its requests
    /// counted afresh): for a write-back inside the daemon, beside the billing poll.
    pub fn writer(&self) -> ConnectwiseWriter {
        ConnectwiseWriter::from_client(&self.client)
    }
}

impl BilledSource for ConnectwiseSource {
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
            FetchReport { outcome, stats: vec![client.stats()] }
        })
    }
}

/// Reads every company, agreement and addition and turns them into accounts and lines. Each
/// agreement's additions become lines as they arrive, so the read never holds every
/// addition as ConnectWise sent it (at 10,000 agreements that was most of its memory).
pub async fn collect(
    client: &ConnectwiseClient,
    now: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<Billed, BillingError> {
    let companies = client.companies(cancel).await?;
    let mut lines = Lines::new(client, &companies, now);
    let accounts = accounts(companies);
    let agreements = client.agreements(cancel).await?;
    let mut additions = stream::iter(agreements)
        .map(|a| async move {
            let adds = client.additions(a.id, cancel).await?;
            Ok::<_, BillingError>((a, adds))
        })
        .buffered(client.concurrency());
    while let Some((agreement, adds)) = additions.try_next().await? {
        lines.add(&agreement, &adds)?;
    }
    Ok(Billed { accounts, lines: lines.done() })
}

/// What the billing source makes of what it read: accounts from the non-deleted companies,
/// one billed line per addition, counted or not by the §7 [`rules`] as of `now`. Refuses
/// (naming the agreement) an agreement without a company, or an addition without a product
/// or a quantity.
pub fn build(
    client: &ConnectwiseClient,
    companies: &[Company],
    additions: &[(Agreement, Vec<Addition>)],
    now: DateTime<Utc>,
) -> Result<Billed, BillingError> {
    let mut lines = Lines::new(client, companies, now);
    for (agreement, adds) in additions {
        lines.add(agreement, adds)?;
    }
    Ok(Billed { accounts: accounts(companies.to_vec()), lines: lines.done() })
}

/// The non-deleted companies as accounts, sorted by id.
fn accounts(companies: Vec<Company>) -> Vec<Account> {
    let mut accounts: Vec<Account> = companies
        .into_iter()
        .filter(|c| c.deleted_flag != Some(true))
        .map(|c| Account {
            id: c.id.to_string(),
            name: c
                .name
                .filter(|n| !n.trim().is_empty())
                .or(c.identifier)
                .unwrap_or_else(|| c.id.to_string()),
        })
        .collect();
    accounts.sort();
    accounts
}

/// Billed lines, built one agreement at a time.
struct Lines<'a> {
    client: &'a ConnectwiseClient,
    /// Company id → soft-deleted.
    deleted: HashMap<u64, bool>,
    now: DateTime<Utc>,
    lines: Vec<BilledLine>,
}

impl<'a> Lines<'a> {
    fn new(client: &'a ConnectwiseClient, companies: &[Company], now: DateTime<Utc>) -> Lines<'a> {
        let deleted = companies.iter().map(|c| (c.id, c.deleted_flag == Some(true))).collect();
        Lines { client, deleted, now, lines: Vec::new() }
    }

    /// One line per addition of `agreement`.
    fn add(&mut self, agreement: &Agreement, adds: &[Addition]) -> Result<(), BillingError> {
        let client = self.client;
        let ep = "GET /finance/agreements/{id}/additions";
        let Some(company) = agreement.company.as_ref().and_then(|c| c.id) else {
            let reason = format!("agreement {} names no company id", agreement.id);
            return Err(client.bad("GET /finance/agreements", reason).into());
        };
        for add in adds {
            let product_id = add.product_id().ok_or_else(|| {
                client.bad(
                    ep,
                    format!("addition {} of agreement {} names no product", add.id, agreement.id),
                )
            })?;
            let quantity = add.quantity.filter(|q| q.is_finite()).ok_or_else(|| {
                client.bad(
                    ep,
                    format!("addition {} of agreement {} has no quantity", add.id, agreement.id),
                )
            })?;
            let is_deleted = self.deleted.get(&company).copied().unwrap_or(false);
            let note = rules::judge(agreement, add, is_deleted, self.now).map_err(|reason| {
                client.bad(ep, format!("{reason} (agreement {})", agreement.id))
            })?;
            self.lines.push(BilledLine {
                account_id: company.to_string(),
                product_id,
                quantity,
                unit_price: add.unit_price.filter(|p| p.is_finite()),
                counted: note.is_none(),
                note,
                source_ref: format!("agreement {} addition {}", agreement.id, add.id),
                line: Some(LineRef::Connectwise { agreement: agreement.id, addition: add.id }),
            });
        }
        Ok(())
    }

    fn done(mut self) -> Vec<BilledLine> {
        self.lines.shrink_to_fit();
        self.lines
    }
}

/// The "Check Connection" step: `GET /system/info` with the configured keys and clientId.
/// A 401 names the company id and key files, a 403 the role's rights.
pub async fn check_connection(
    cfg: &ConnectwiseConfig,
) -> Result<models::SystemInfo, UpstreamError> {
    ConnectwiseClient::new(cfg)?.system_info().await
}
