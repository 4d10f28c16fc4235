//! Upstream answers through the clients' own reading: the shared interpreter
//! (`UpstreamClient::interpret`) decides what the status means, then each client's decoder for
//! that endpoint (its page reader, paging rules, de-duplication, models and the billed lines
//! ConnectWise answers become). Real clients, built from config without a network call; their
//! only credential is [`FUZZ_SECRET`], so a leak into an error is detectable.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use mpsync::billing::connectwise::models::{Addition, Agreement, Company, Ref, SystemInfo};
use mpsync::billing::connectwise::{self, ConnectwiseClient};
use mpsync::config::{ConnectwiseConfig, MailprotectorConfig, Schedule, Secret, UpstreamLimits};
use mpsync::gradient::{GradientClient, GradientError};
use mpsync::mailprotector::MailprotectorClient;
use mpsync::mailprotector::models::{Customer, Domain, Reseller, User, UserGroup};
use mpsync::mailprotector::pagination::{self, Pager};
use mpsync::upstream::{
    Answer, Endpoint, HasId, Malformed, RetryPolicy, SeenIds, UpstreamResponse,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;

/// The credential of every fuzz client (the Mailprotector key, the ConnectWise clientId, the
/// Gradient vendor key); it must never appear in an error.
pub const FUZZ_SECRET: &str = "sk-fuzz-secret-7f3a";

/// Which answer the bytes stand for: one per response shape the clients decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Mailprotector `GET /resellers/{id}`.
    MailprotectorReseller,
    /// Mailprotector `GET /resellers/{id}/customers` (with `X-Pagination`).
    MailprotectorCustomers,
    /// Mailprotector `GET /resellers/{id}/domains` (with `X-Pagination`).
    MailprotectorDomains,
    /// Mailprotector `GET /domains/{id}/user_groups` (with `X-Pagination`).
    MailprotectorUserGroups,
    /// Mailprotector `GET /user_groups/{id}/services`.
    MailprotectorServices,
    /// Mailprotector `GET /resellers/{id}/users` (with `X-Pagination`).
    MailprotectorUsers,
    /// ConnectWise `GET /system/info`.
    ConnectwiseSystemInfo,
    /// ConnectWise `GET /company/companies` (with `Link`).
    ConnectwiseCompanies,
    /// ConnectWise `GET /finance/agreements` (with `Link`).
    ConnectwiseAgreements,
    /// ConnectWise `GET /finance/agreements/{id}/additions` (with `Link`).
    ConnectwiseAdditions,
    /// Gradient `GET /organization`.
    GradientOrganization,
    /// Gradient `GET /api/vendor-api` (the service catalogue).
    GradientSkus,
    /// Gradient `GET /organization/accounts`.
    GradientAccounts,
}

impl Target {
    /// Every target, in a fixed order (the fuzz input's first byte picks one).
    pub const ALL: [Target; 13] = [
        Target::MailprotectorReseller,
        Target::MailprotectorCustomers,
        Target::MailprotectorDomains,
        Target::MailprotectorUserGroups,
        Target::MailprotectorServices,
        Target::MailprotectorUsers,
        Target::ConnectwiseSystemInfo,
        Target::ConnectwiseCompanies,
        Target::ConnectwiseAgreements,
        Target::ConnectwiseAdditions,
        Target::GradientOrganization,
        Target::GradientSkus,
        Target::GradientAccounts,
    ];

    /// The endpoint as the client names it (path with placeholder ids, and its pattern).
    pub fn endpoint(self) -> Endpoint {
        use Target::*;
        let (path, pattern) = match self {
            MailprotectorReseller => ("/resellers/1", "/resellers/{id}"),
            MailprotectorCustomers => ("/resellers/1/customers", "/resellers/{id}/customers"),
            MailprotectorDomains => ("/resellers/1/domains", "/resellers/{id}/domains"),
            MailprotectorUserGroups => ("/domains/1/user_groups", "/domains/{id}/user_groups"),
            MailprotectorServices => ("/user_groups/1/services", "/user_groups/{id}/services"),
            MailprotectorUsers => ("/resellers/1/users", "/resellers/{id}/users"),
            ConnectwiseSystemInfo => ("/system/info", "/system/info"),
            ConnectwiseCompanies => ("/company/companies", "/company/companies"),
            ConnectwiseAgreements => ("/finance/agreements", "/finance/agreements"),
            ConnectwiseAdditions => {
                ("/finance/agreements/1/additions", "/finance/agreements/{id}/additions")
            }
            GradientOrganization => ("/organization", "/organization"),
            GradientSkus => ("", "/"),
            GradientAccounts => ("/organization/accounts", "/organization/accounts"),
        };
        Endpoint::get(path, pattern)
    }

    /// The header this answer's paging travels in, if it has one.
    pub fn paging_header(self) -> Option<&'static str> {
        use Target::*;
        match self {
            MailprotectorCustomers
            | MailprotectorDomains
            | MailprotectorUserGroups
            | MailprotectorUsers => Some(pagination::HEADER),
            ConnectwiseCompanies | ConnectwiseAgreements | ConnectwiseAdditions => Some("link"),
            _ => None,
        }
    }
}

/// What a decodable answer gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A 2xx answer: the items kept (distinct ids; 1 for a single object) and the page the
    /// client would fetch next.
    Page {
        /// Items kept.
        items: usize,
        /// The next page to fetch, if any.
        next_page: Option<u64>,
    },
    /// A 429: how long every call pauses (`None`: no usable `Retry-After`; own backoff).
    RateLimited {
        /// The clamped server-given pause.
        pause: Option<Duration>,
    },
    /// A transient failure (408, 5xx) that is retried: the message reported if it persists.
    Transient {
        /// The redacted, one-line error message.
        message: String,
    },
}

/// Why an answer was refused: the error the client (or the billing source) returns, as it
/// shows it.
pub type DecodeError = Box<dyn std::error::Error>;

/// The statuses the second input byte chooses from (2xx weighted: that is where parsing is).
const STATUSES: [u16; 16] =
    [200, 200, 200, 200, 200, 200, 204, 400, 401, 403, 404, 409, 408, 429, 500, 302];

/// Splits fuzz bytes into a target, a status, one header value and a body: byte 0 picks the
/// target, byte 1 the status, then the header runs to the first `\n` and the rest is body.
pub fn split_input(data: &[u8]) -> (Target, u16, &[u8], &[u8]) {
    let target = Target::ALL[usize::from(data.first().copied().unwrap_or(0)) % Target::ALL.len()];
    let status = STATUSES[usize::from(data.get(1).copied().unwrap_or(0)) % STATUSES.len()];
    let rest = data.get(2..).unwrap_or_default();
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    (target, status, header, body)
}

/// [`split_input`] then [`decode`].
pub fn upstream_bytes(data: &[u8]) -> Result<Decoded, DecodeError> {
    let (target, status, header, body) = split_input(data);
    decode(target, status, header, body)
}

/// [`upstream_bytes`] on arbitrary bytes, panicking when an error does not name the endpoint
/// or shows the client's credential anywhere.
pub fn check_upstream(bytes: &[u8]) {
    let (target, ..) = split_input(bytes);
    match upstream_bytes(bytes) {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.contains(target.endpoint().pattern), "no endpoint named: {shown}");
            assert!(!shown.contains(FUZZ_SECRET), "the credential leaked: {shown}");
            assert!(!format!("{e:?}").contains(FUZZ_SECRET), "the credential leaked: {e:?}");
        }
        Ok(Decoded::Transient { message }) => {
            assert!(!message.contains(FUZZ_SECRET), "the credential leaked: {message}");
        }
        Ok(_) => {}
    }
}

/// Decodes one answer to `target` of `status` whose paging (or, for a 429, `Retry-After`)
/// header holds `header` (left out when it is not a valid header value, as the HTTP stack
/// would refuse it): the client's interpreter, then its decoder for that endpoint.
pub fn decode(
    target: Target,
    status: u16,
    header: &[u8],
    body: &[u8],
) -> Result<Decoded, DecodeError> {
    let c = clients();
    let http = match target {
        t if is_connectwise(t) => c.connectwise.upstream(),
        t if is_gradient(t) => c.gradient.upstream(),
        _ => c.mailprotector.upstream(),
    };
    let name = match status {
        429 => RETRY_AFTER,
        _ => HeaderName::from_static(target.paging_header().unwrap_or("x-unused")),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert(name, v);
    }
    let body = bytes::Bytes::copy_from_slice(body);
    let resp = match http.interpret(&target.endpoint(), status, headers, body, fixed_now().into()) {
        Answer::Success { response, .. } => response,
        Answer::RateLimited { retry_after } => {
            return Ok(Decoded::RateLimited { pause: retry_after });
        }
        Answer::Transient { message, .. } => return Ok(Decoded::Transient { message }),
        // The Gradient client lifts every error it gets (401 and 403 are its own kinds).
        Answer::Fatal(e) if is_gradient(target) => {
            return Err(GradientError::from_upstream(e, GRADIENT_KEYS, 20.0).into());
        }
        Answer::Fatal(e) => return Err(e.into()),
    };
    let (mp, cw, gradient) = (&c.mailprotector, &c.connectwise, &c.gradient);
    let one = Decoded::Page { items: 1, next_page: None };
    let listed = |items: usize| Decoded::Page { items, next_page: None };
    Ok(match target {
        Target::MailprotectorReseller => {
            mp.upstream().parse_json::<Reseller>(&resp).map(|_| one)?
        }
        Target::MailprotectorCustomers => mp_page::<Customer>(mp, &resp, |_| Ok(()))?,
        Target::MailprotectorDomains => mp_page::<Domain>(mp, &resp, |d| {
            let _ = (d.customer_id(), d.is_alias());
            Ok(())
        })?,
        Target::MailprotectorUserGroups => {
            mp_page::<UserGroup>(mp, &resp, |g| g.user_count().map(drop))?
        }
        Target::MailprotectorUsers => mp_page::<User>(mp, &resp, |u| u.user_type_ref().map(drop))?,
        Target::MailprotectorServices => listed(mp.read_services(&resp)?.len()),
        Target::ConnectwiseSystemInfo => {
            let info: SystemInfo = cw.upstream().parse_json(&resp)?;
            let _ = info.describe();
            one
        }
        Target::ConnectwiseCompanies => cw_page::<Company>(cw, &resp, |companies| {
            connectwise::build(cw, &companies, &[], fixed_now()).map(drop)
        })?,
        Target::ConnectwiseAgreements => cw_page::<Agreement>(cw, &resp, |agreements| {
            let with: Vec<_> = agreements.into_iter().map(|a| (a, Vec::new())).collect();
            connectwise::build(cw, &[], &with, fixed_now()).map(drop)
        })?,
        Target::ConnectwiseAdditions => cw_page::<Addition>(cw, &resp, |additions| {
            let company =
                Company { id: 1, identifier: None, name: Some("Acme".into()), deleted_flag: None };
            let agreement = Agreement {
                id: 1,
                name: None,
                company: Some(Ref { id: Some(1), ..Ref::default() }),
                cancelled_flag: None,
                agreement_status: None,
            };
            connectwise::build(cw, &[company], &[(agreement, additions)], fixed_now()).map(drop)
        })?,
        Target::GradientOrganization => gradient.read_integration(&resp).map(|_| one)?,
        Target::GradientSkus => listed(gradient.read_skus(&resp)?.len()),
        Target::GradientAccounts => listed(gradient.read_accounts(&resp)?.len()),
    })
}

/// Page 1 of a Mailprotector listing as the client walks it: its page reader, the paging
/// rule, de-duplication; then `check` on each item kept (what collection reads of it).
fn mp_page<T: DeserializeOwned + HasId>(
    mp: &MailprotectorClient,
    resp: &UpstreamResponse,
    check: impl Fn(&T) -> Result<(), Malformed>,
) -> Result<Decoded, DecodeError> {
    let bad = |reason: Malformed| mp.upstream().bad_response(&resp.endpoint, reason, &resp.body);
    let (items, info) = mp.read_page::<T>(resp)?;
    let more = Pager::new().more_after(1, items.len(), info);
    let kept = SeenIds::new().fresh(1, items).map_err(bad)?;
    for item in &kept {
        check(item).map_err(bad)?;
    }
    Ok(Decoded::Page { items: kept.len(), next_page: more.then_some(2) })
}

/// Page 1 of a ConnectWise listing as the client walks it: its page reader, de-duplication,
/// the `Link`-next rule; then `build` turns the items into billed lines.
fn cw_page<T: DeserializeOwned + HasId>(
    cw: &ConnectwiseClient,
    resp: &UpstreamResponse,
    build: impl FnOnce(Vec<T>) -> Result<(), mpsync::billing::BillingError>,
) -> Result<Decoded, DecodeError> {
    let items: Vec<T> = cw.read_page(resp)?;
    let len = items.len();
    let kept = SeenIds::new()
        .fresh(1, items)
        .map_err(|reason| cw.upstream().bad_response(&resp.endpoint, reason, &resp.body))?;
    let next_page = cw.next_page(resp, 1, len, len)?;
    let items = kept.len();
    build(kept)?;
    Ok(Decoded::Page { items, next_page })
}

fn is_connectwise(t: Target) -> bool {
    use Target::*;
    matches!(
        t,
        ConnectwiseSystemInfo | ConnectwiseCompanies | ConnectwiseAgreements | ConnectwiseAdditions
    )
}

fn is_gradient(t: Target) -> bool {
    matches!(t, Target::GradientOrganization | Target::GradientSkus | Target::GradientAccounts)
}

/// "Now" for date rules: fixed, so a fuzz input behaves the same on every run.
fn fixed_now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000))
}

/// Where the Gradient errors say the keys come from.
const GRADIENT_KEYS: &str = "the fuzz partner and vendor keys";

struct Clients {
    mailprotector: MailprotectorClient,
    connectwise: ConnectwiseClient,
    gradient: GradientClient,
}

/// One client per upstream, built once (building a reqwest client is not free).
fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let limits = UpstreamLimits {
            rate_limit: 1000.0,
            burst: 1000,
            max_in_flight: 1,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        };
        // Nothing listens there, and nothing is sent: answers are handed to the clients.
        let base: url::Url = "http://127.0.0.1:9/".parse().expect("a literal URL parses");
        let secret = || Secret::new(FUZZ_SECRET, "fuzz");
        let mailprotector = MailprotectorConfig {
            base_url: base.clone(),
            api_key: secret(),
            reseller_id: 1,
            schedule: Schedule::parse("0 0 0 1 1 *").expect("a literal schedule parses"),
            limits: limits.clone(),
            services_refresh: Duration::from_secs(3600),
            count_each_product: true,
            count_user_types: Default::default(),
            counts: Vec::new(),
        };
        let connectwise = ConnectwiseConfig {
            base_url: base.clone(),
            company_id: "fuzz".into(),
            public_key: Secret::new("public-fuzz", "fuzz"),
            private_key: Secret::new("private-fuzz", "fuzz"),
            // The client holds its clientId as a credential: the one to watch for here.
            client_id: FUZZ_SECRET.into(),
            limits: limits.clone(),
        };
        let partner = Secret::new("partner-fuzz", "fuzz");
        let built = "a client builds without a network call";
        Clients {
            mailprotector: MailprotectorClient::new(&mailprotector).expect(built),
            connectwise: ConnectwiseClient::new(&connectwise).expect(built),
            gradient: GradientClient::from_keys(
                &base,
                &secret(),
                &partner,
                limits,
                RetryPolicy::default(),
            )
            .expect(built),
        }
    })
}
