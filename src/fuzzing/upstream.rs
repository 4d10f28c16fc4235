//! Upstream answers as the clients decode them: the status decides the path (2xx body and
//! pagination header, 429 `Retry-After`, transient error body, other error classification),
//! then the same parse and post-processing functions the Mailprotector, ConnectWise and
//! Gradient clients call. Nothing here opens a connection.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::billing::BillingError;
use crate::billing::connectwise::link::{page_of, parse_link};
use crate::billing::connectwise::models::{Addition, Agreement, Company, Ref, SystemInfo};
use crate::billing::connectwise::{self, ConnectwiseClient};
use crate::config::{ConnectwiseConfig, Secret, UpstreamLimits};
use crate::gradient::models::parse_skus;
use crate::gradient::{self, GradientAccount, GradientError, Integration};
use crate::mailprotector::models::{Customer, Domain, Reseller, User, UserGroup, parse_services};
use crate::mailprotector::pagination::{self, PageInfo, Pager};
use crate::mailprotector::{self, HasId};
use crate::upstream::{
    Endpoint, RetryPolicy, UpstreamClient, UpstreamError, UpstreamResponse, UpstreamSpec,
    error_message, status_is_transient,
};

/// The credential every fuzz client sends; it must never appear in an error.
pub const FUZZ_SECRET: &str = "sk-fuzz-secret-7f3a";

/// Which answer the bytes stand for: one per response shape the clients decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
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

impl Answer {
    /// Every answer, in a fixed order (the fuzz input's first byte picks one).
    pub const ALL: [Answer; 13] = [
        Answer::MailprotectorReseller,
        Answer::MailprotectorCustomers,
        Answer::MailprotectorDomains,
        Answer::MailprotectorUserGroups,
        Answer::MailprotectorServices,
        Answer::MailprotectorUsers,
        Answer::ConnectwiseSystemInfo,
        Answer::ConnectwiseCompanies,
        Answer::ConnectwiseAgreements,
        Answer::ConnectwiseAdditions,
        Answer::GradientOrganization,
        Answer::GradientSkus,
        Answer::GradientAccounts,
    ];

    /// The endpoint as the client names it (path with placeholder ids, and its pattern).
    pub fn endpoint(self) -> Endpoint {
        let (path, pattern) = match self {
            Answer::MailprotectorReseller => ("/resellers/1", "/resellers/{id}"),
            Answer::MailprotectorCustomers => {
                ("/resellers/1/customers", "/resellers/{id}/customers")
            }
            Answer::MailprotectorDomains => ("/resellers/1/domains", "/resellers/{id}/domains"),
            Answer::MailprotectorUserGroups => {
                ("/domains/1/user_groups", "/domains/{id}/user_groups")
            }
            Answer::MailprotectorServices => {
                ("/user_groups/1/services", "/user_groups/{id}/services")
            }
            Answer::MailprotectorUsers => ("/resellers/1/users", "/resellers/{id}/users"),
            Answer::ConnectwiseSystemInfo => ("/system/info", "/system/info"),
            Answer::ConnectwiseCompanies => ("/company/companies", "/company/companies"),
            Answer::ConnectwiseAgreements => ("/finance/agreements", "/finance/agreements"),
            Answer::ConnectwiseAdditions => {
                ("/finance/agreements/1/additions", "/finance/agreements/{id}/additions")
            }
            Answer::GradientOrganization => ("/organization", "/organization"),
            Answer::GradientSkus => ("", "/"),
            Answer::GradientAccounts => ("/organization/accounts", "/organization/accounts"),
        };
        Endpoint::get(path, pattern)
    }

    /// The header this answer's pagination travels in, if it has one.
    pub fn paging_header(self) -> Option<&'static str> {
        use Answer::*;
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
    /// pagination header (or the stop rule) says comes next.
    Page {
        /// Items read.
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

/// Why an answer was refused: the error the client (or billing source) would return.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Mailprotector, ConnectWise listing or shared-plumbing error.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A ConnectWise answer that parsed but could not become billed lines.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// A Gradient error as the Gradient client lifts it.
    #[error(transparent)]
    Gradient(#[from] GradientError),
}

/// The statuses the second input byte chooses from (2xx weighted: that is where parsing is).
const STATUSES: [u16; 16] =
    [200, 200, 200, 200, 200, 200, 204, 400, 401, 403, 404, 409, 408, 429, 500, 302];

/// Splits fuzz bytes into an answer, a status, one header value and a body: byte 0 picks the
/// answer, byte 1 the status, then the header runs to the first `\n` and the rest is body.
pub fn split_input(data: &[u8]) -> (Answer, u16, &[u8], &[u8]) {
    let answer = Answer::ALL[usize::from(data.first().copied().unwrap_or(0)) % Answer::ALL.len()];
    let status = STATUSES[usize::from(data.get(1).copied().unwrap_or(0)) % STATUSES.len()];
    let rest = data.get(2..).unwrap_or_default();
    let (header, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    (answer, status, header, body)
}

/// [`split_input`] then [`decode`].
pub fn upstream_bytes(data: &[u8]) -> Result<Decoded, DecodeError> {
    let (answer, status, header, body) = split_input(data);
    decode(answer, status, header, body)
}

/// Decodes one answer of `status` whose paging (or `Retry-After`) header holds `header`
/// (ignored when it is not a valid header value, as the HTTP stack would refuse it).
pub fn decode(
    answer: Answer,
    status: u16,
    header: &[u8],
    body: &[u8],
) -> Result<Decoded, DecodeError> {
    let c = clients();
    let http = match answer {
        a if is_connectwise(a) => &c.connectwise,
        a if is_gradient(a) => &c.gradient,
        _ => &c.mailprotector,
    };
    let ep = answer.endpoint();
    let name = match status {
        429 => RETRY_AFTER,
        _ => HeaderName::from_static(answer.paging_header().unwrap_or("x-unused")),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert(name, v);
    }
    let lift = |e: UpstreamError| -> DecodeError {
        if is_gradient(answer) {
            GradientError::from_upstream(e, GRADIENT_KEYS, 20.0).into()
        } else {
            e.into()
        }
    };
    match status {
        200..=299 => {}
        429 => {
            let pause = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::upstream::parse_retry_after(v, fixed_now().into()))
                .map(|d| RetryPolicy::default().clamp_retry_after(d));
            return Ok(Decoded::RateLimited { pause });
        }
        s if status_is_transient(s) => {
            return Ok(Decoded::Transient { message: error_message(body, http.scrubber()) });
        }
        s => return Err(lift(http.classify(&ep, s, body))),
    }
    let resp = UpstreamResponse {
        status,
        headers,
        body: bytes::Bytes::copy_from_slice(body),
        endpoint: ep.label(),
    };
    match answer {
        Answer::MailprotectorReseller => one::<Reseller>(http, &resp).map_err(lift),
        Answer::MailprotectorCustomers => mp_list::<Customer>(http, &resp, |_| Ok(())),
        Answer::MailprotectorDomains => mp_list::<Domain>(http, &resp, |d| {
            let _ = (d.customer_id(), d.is_alias());
            Ok(())
        }),
        Answer::MailprotectorUserGroups => {
            mp_list::<UserGroup>(http, &resp, |g| g.user_count().map(drop))
        }
        Answer::MailprotectorUsers => mp_list::<User>(http, &resp, |u| u.user_type_ref().map(drop)),
        Answer::MailprotectorServices => {
            let v: serde_json::Value = http.parse_json(&resp)?;
            let names = parse_services(&v)
                .map_err(|reason| http.bad_response(&resp.endpoint, reason, &resp.body))?;
            Ok(Decoded::Page { items: names.len(), next_page: None })
        }
        Answer::ConnectwiseSystemInfo => {
            let info: SystemInfo = http.parse_json(&resp)?;
            let _ = info.describe();
            Ok(Decoded::Page { items: 1, next_page: None })
        }
        Answer::ConnectwiseCompanies => cw_list::<Company>(http, &resp, |companies| {
            connectwise::build(&c.cw_client, &companies, &[], fixed_now()).map(drop)
        }),
        Answer::ConnectwiseAgreements => cw_list::<Agreement>(http, &resp, |agreements| {
            let with: Vec<_> = agreements.into_iter().map(|a| (a, Vec::new())).collect();
            connectwise::build(&c.cw_client, &[], &with, fixed_now()).map(drop)
        }),
        Answer::ConnectwiseAdditions => cw_list::<Addition>(http, &resp, |adds| {
            let company =
                Company { id: 1, identifier: None, name: Some("Acme".into()), deleted_flag: None };
            let agreement = Agreement {
                id: 1,
                name: None,
                company: Some(Ref { id: Some(1), ..Ref::default() }),
                cancelled_flag: None,
                agreement_status: None,
            };
            connectwise::build(&c.cw_client, &[company], &[(agreement, adds)], fixed_now())
                .map(drop)
        }),
        Answer::GradientOrganization => one::<Integration>(http, &resp).map_err(lift),
        Answer::GradientSkus => {
            let v: serde_json::Value = http.parse_json(&resp).map_err(lift)?;
            let skus = parse_skus(&v)
                .map_err(|r| lift(http.bad_response(&resp.endpoint, r, &resp.body)))?;
            Ok(Decoded::Page { items: skus.len(), next_page: None })
        }
        Answer::GradientAccounts => {
            let accounts: Vec<GradientAccount> = http.parse_json(&resp).map_err(lift)?;
            Ok(Decoded::Page { items: accounts.len(), next_page: None })
        }
    }
}

fn one<T: DeserializeOwned>(
    http: &UpstreamClient,
    resp: &UpstreamResponse,
) -> Result<Decoded, UpstreamError> {
    http.parse_json::<T>(resp).map(|_| Decoded::Page { items: 1, next_page: None })
}

/// Page 1 of a Mailprotector listing: 204 is empty, `X-Pagination` or the stop rule decides
/// whether page 2 is fetched, repeated ids are dropped, each item is checked by `check`.
fn mp_list<T: DeserializeOwned + HasId>(
    http: &UpstreamClient,
    resp: &UpstreamResponse,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<Decoded, DecodeError> {
    let info = resp
        .headers
        .get(pagination::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(PageInfo::parse);
    let items: Vec<T> = if resp.status == 204 { Vec::new() } else { http.parse_json(resp)? };
    let more = Pager::new().more_after(1, items.len(), info);
    let mut seen = HashSet::new();
    let mut kept = 0;
    for item in items.iter().filter(|i| seen.insert(i.id())) {
        check(item).map_err(|reason| http.bad_response(&resp.endpoint, reason, &resp.body))?;
        kept += 1;
    }
    Ok(Decoded::Page { items: kept, next_page: more.then_some(2) })
}

/// Page 1 of a ConnectWise listing: 204 is empty, a usable `Link` header alone decides the
/// next page (its `next` target must name a later page), else a non-empty page asks for
/// page 2. `build` turns the items into billed lines as the billing source does.
fn cw_list<T: DeserializeOwned>(
    http: &UpstreamClient,
    resp: &UpstreamResponse,
    build: impl FnOnce(Vec<T>) -> Result<(), BillingError>,
) -> Result<Decoded, DecodeError> {
    let items: Vec<T> = if resp.status == 204 { Vec::new() } else { http.parse_json(resp)? };
    let n = items.len();
    let link = resp.headers.get("link").and_then(|v| v.to_str().ok()).map(parse_link);
    let next_page = match link.filter(|l| !l.is_empty()) {
        Some(l) => match l.get("next") {
            None => None,
            Some(url) => match page_of(url) {
                Some(p) if p > 1 => Some(p),
                _ => {
                    let reason = format!("the Link rel=\"next\" target {url:?} has no later page");
                    return Err(http.bad_response(&resp.endpoint, reason, b"").into());
                }
            },
        },
        None if n == 0 => None,
        None => Some(2),
    };
    build(items)?;
    Ok(Decoded::Page { items: n, next_page })
}

fn is_connectwise(a: Answer) -> bool {
    matches!(
        a,
        Answer::ConnectwiseSystemInfo
            | Answer::ConnectwiseCompanies
            | Answer::ConnectwiseAgreements
            | Answer::ConnectwiseAdditions
    )
}

fn is_gradient(a: Answer) -> bool {
    matches!(a, Answer::GradientOrganization | Answer::GradientSkus | Answer::GradientAccounts)
}

/// "Now" for date rules: fixed, so a fuzz input behaves the same on every run.
fn fixed_now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000))
}

const GRADIENT_KEYS: &str = "the fuzz partner and vendor keys";

struct Clients {
    mailprotector: UpstreamClient,
    connectwise: UpstreamClient,
    gradient: UpstreamClient,
    cw_client: ConnectwiseClient,
}

/// One client per upstream, built once (building a reqwest client is not free). Their only
/// credential is [`FUZZ_SECRET`], so a leak into an error message is detectable.
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
        let base: url::Url = "http://127.0.0.1:9/".parse().expect("a literal URL parses");
        let client = |name: &str| {
            UpstreamClient::new(UpstreamSpec {
                name: name.into(),
                base_url: base.clone(),
                limits: limits.clone(),
                auth_headers: vec![("x-fuzz-key".into(), Secret::new(FUZZ_SECRET, "fuzz"))],
                credential: "the fuzz key".into(),
                retry: RetryPolicy::default(),
                redact: Vec::new(),
            })
            .expect("a client without a network call builds")
        };
        let cw = ConnectwiseConfig {
            base_url: base.clone(),
            company_id: "fuzz".into(),
            public_key: Secret::new("pub", "fuzz"),
            private_key: Secret::new("private", "fuzz"),
            // The client holds its clientId as a credential: the one to watch for here.
            client_id: FUZZ_SECRET.into(),
            limits: limits.clone(),
        };
        Clients {
            mailprotector: client(mailprotector::UPSTREAM),
            connectwise: client(connectwise::UPSTREAM),
            gradient: client(gradient::UPSTREAM),
            cw_client: ConnectwiseClient::new(&cw).expect("a client without a network call builds"),
        }
    })
}
