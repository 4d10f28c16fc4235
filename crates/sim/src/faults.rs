//! Faults the simulator can inject, per endpoint: latency, a server-side rate limit, 429
//! storms, 5xx at a rate, hangs (before or after the request is handled), truncated or malformed JSON, wrong field types, a key revoked
//! after N requests, and the reference's §12 "client must also accept" variants ([`Variant`]).
//! The `--fault SPEC` syntax ([`Fault::parse`]) and the `/_sim/faults` JSON share these types.

mod plan;
mod variant;

use serde::{Deserialize, Serialize};

use crate::endpoints;

pub use plan::FaultStatus;
pub(crate) use plan::{FaultSet, Plan, Post, Pre, SideEffect};
pub use variant::{Variant, variant_lines};

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests: `*` (default), a route pattern (`GET /domains/{id}/user_groups` or
    /// `/domains/{id}/user_groups`), or the last literal path segment (`user_groups` matches
    /// `/domains/{id}/user_groups` and `/user_groups/{id}`; `services`, `customers`, ...).
    #[serde(default = "any_endpoint")]
    pub endpoint: String,
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability (0..=1) that a matching request is affected (seeded; default 1).
    #[serde(default = "always")]
    pub rate: f64,
    /// Let this many matching requests through unaffected first (default 0).
    #[serde(default)]
    pub after: u64,
    /// Affect at most this many requests, then stop (default: no limit).
    #[serde(default)]
    pub times: Option<u64>,
}

fn any_endpoint() -> String {
    "*".into()
}

fn always() -> f64 {
    1.0
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay the answer by `ms` plus a uniform 0..=`jitter_ms`.
    Latency {
        /// Fixed delay in milliseconds.
        ms: u64,
        /// Extra random delay up to this many milliseconds.
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Token bucket: `rps` per second, `burst` deep (default max(1, ceil(rps))). Excess → 429
    /// with `Retry-After: <seconds ≥ 1>` and `{"error":"rate limit exceeded"}`.
    RateLimit {
        /// Sustained requests per second.
        rps: f64,
        /// Bucket depth.
        #[serde(default)]
        burst: Option<u32>,
    },
    /// Every affected request gets 429 with `Retry-After: retry_after` (default 1).
    Storm {
        /// Seconds in `Retry-After`.
        #[serde(default = "one_second")]
        retry_after: u64,
    },
    /// Answer with this status (e.g. 503) and an error body.
    Status {
        /// HTTP status.
        status: u16,
    },
    /// Never answer (until the client gives up or the simulator stops).
    Hang,
    /// Handle the request — a write is made and journalled — then never answer (until the
    /// client gives up or the simulator stops): a write whose answer is lost.
    HangAfter,
    /// Cut the JSON body in half (Content-Length matches the cut body).
    Truncate,
    /// Start the answer, then drop the connection before the body is complete (the client
    /// sees an incomplete message: a transport error, not a status).
    Disconnect,
    /// Serve a body that is not JSON at all.
    Malformed,
    /// Serve well-formed JSON with wrong types (`user_count` and `id` as strings, a service
    /// record's `service_type` as a list, `addons` as a string).
    WrongTypes,
    /// Revoke the caller's key (or `key`) when the fault fires: 401 from then on. Use with
    /// `after=N` for "revoked mid-run".
    Revoke {
        /// A specific key to revoke instead of the caller's.
        #[serde(default)]
        key: Option<String>,
    },
    /// HaloPSA recurring-invoice writes only: the write is made, and another line of the
    /// same invoice (the first the write did not change) gains one unit — a PSA bug the
    /// client's re-read after the write must notice.
    ChangeOtherLine,
    /// HaloPSA recurring-invoice writes only: the write is made, and another line of the same
    /// invoice disappears.
    DropOtherLine,
    /// Serve one of the shapes the client must tolerate.
    Variant {
        /// Which one.
        variant: Variant,
    },
}

fn one_second() -> u64 {
    1
}

/// The kinds and common keys of a `--fault` spec, before the variant list.
const SPEC_KINDS: &str = "\
fault SPEC forms (comma-separated key=value; endpoint=*|<segment>|\"GET /path\",
rate=0..1, after=N, times=N apply to every kind):
  status=503[,rate=0.2]               answer with an error status
  kind=latency,ms=200[,jitter_ms=50]  delay answers
  kind=rate_limit,rps=5[,burst=5]     token bucket; excess -> 429 + Retry-After
  kind=storm[,retry_after=2]          every request -> 429
  kind=hang | kind=truncate | kind=disconnect | kind=malformed | kind=wrong_types
  kind=hang_after                     handle the request (a write is made), never answer
  kind=revoke,after=100[,key=KEY]     the key answers 401 after 100 requests
  kind=change_other_line | kind=drop_other_line
                                      HaloPSA invoice writes also change/remove another line
  variant=NAME                        serve an alternative the client must accept:";

/// The forms `--fault` accepts with every variant, shown when a spec does not parse (and,
/// from the same text, in `mpsync sim --help`).
pub fn spec_forms() -> String {
    format!("{SPEC_KINDS}\n{}", variant_lines())
}

/// Why a `--fault` spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec {spec:?}: {reason}\n{}", spec_forms())]
pub struct FaultSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Fault {
    /// A fault of `kind` on every endpoint, always.
    pub fn new(kind: FaultKind) -> Fault {
        Fault { endpoint: any_endpoint(), kind, rate: 1.0, after: 0, times: None }
    }

    /// Restricts the fault to an endpoint (see [`Fault::endpoint`]).
    pub fn on(mut self, endpoint: &str) -> Fault {
        self.endpoint = endpoint.to_owned();
        self
    }

    /// Sets the probability.
    pub fn rate(mut self, rate: f64) -> Fault {
        self.rate = rate;
        self
    }

    /// Lets `n` matching requests through first.
    pub fn after(mut self, n: u64) -> Fault {
        self.after = n;
        self
    }

    /// Fires at most `n` times.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }

    /// Parses a `--fault` spec (forms in [`spec_forms`]).
    pub fn parse(spec: &str) -> Result<Fault, FaultSpecError> {
        let err = |reason: String| FaultSpecError { spec: spec.to_owned(), reason };
        let mut map = serde_json::Map::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) =
                part.split_once('=').ok_or_else(|| err(format!("{part:?} is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            let value = match k {
                "rate" | "ms" | "jitter_ms" | "rps" => serde_json::Value::from(
                    v.parse::<f64>().map_err(|_| err(format!("{k}={v:?} is not a number")))?,
                ),
                "after" | "times" | "status" | "burst" | "retry_after" => serde_json::Value::from(
                    v.parse::<u64>()
                        .map_err(|_| err(format!("{k}={v:?} is not a whole number")))?,
                ),
                "kind" | "endpoint" | "variant" | "key" => serde_json::Value::from(v),
                other => return Err(err(format!("unknown key {other:?}"))),
            };
            if map.insert(k.to_owned(), value).is_some() {
                return Err(err(format!("{k} given twice")));
            }
        }
        if !map.contains_key("kind") {
            let inferred = if map.contains_key("status") {
                "status"
            } else if map.contains_key("variant") {
                "variant"
            } else if map.contains_key("ms") {
                "latency"
            } else if map.contains_key("rps") {
                "rate_limit"
            } else {
                return Err(err("no kind=, status= or variant=".into()));
            };
            map.insert("kind".into(), inferred.into());
        }
        // Integral floats must become integers for the u64 fields of the kinds.
        for k in ["ms", "jitter_ms"] {
            if let Some(v) = map.get(k).and_then(serde_json::Value::as_f64) {
                if v < 0.0 || v.fract() != 0.0 {
                    return Err(err(format!("{k} must be a whole number of milliseconds")));
                }
                map.insert(k.into(), serde_json::Value::from(v as u64));
            }
        }
        let fault: Fault = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| err(e.to_string()))?;
        fault.validate().map_err(err)?;
        Ok(fault)
    }

    /// Checks values a type cannot: an endpoint that matches a route, rates, statuses,
    /// positive rps.
    pub fn validate(&self) -> Result<(), String> {
        let routes = endpoints::MAILPROTECTOR
            .iter()
            .chain(&endpoints::CONNECTWISE)
            .chain(&endpoints::AUTOTASK)
            .chain(&endpoints::HALOPSA);
        if !routes.clone().any(|r| plan::endpoint_matches(&self.endpoint, r)) {
            return Err(format!(
                "endpoint {:?} matches no route; use *, a path segment (customers, domains, \
                 user_groups, services, users, ...) or a pattern like \"GET /domains/{{id}}/user_groups\"",
                self.endpoint
            ));
        }
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("rate {} is outside 0..=1", self.rate));
        }
        match &self.kind {
            FaultKind::Status { status } if !(400..=599).contains(status) => {
                Err(format!("status {status} is not an error status (400..=599)"))
            }
            FaultKind::RateLimit { rps, .. } if !(*rps > 0.0 && rps.is_finite()) => {
                Err(format!("rps {rps} must be above 0"))
            }
            FaultKind::Storm { retry_after: 0 } => Err("retry_after must be at least 1".into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_faults() {
        let f = Fault::parse("endpoint=user_groups,status=503,rate=0.2").unwrap();
        assert_eq!(f, Fault::new(FaultKind::Status { status: 503 }).on("user_groups").rate(0.2));
        assert_eq!(Fault::parse("kind=hang").unwrap().kind, FaultKind::Hang);
        assert_eq!(Fault::parse("kind=hang_after").unwrap().kind, FaultKind::HangAfter);
        assert_eq!(Fault::parse("kind=truncate").unwrap().kind, FaultKind::Truncate);
        assert_eq!(Fault::parse("kind=disconnect").unwrap().kind, FaultKind::Disconnect);
        let f = Fault::parse("kind=drop_other_line,endpoint=POST /RecurringInvoice").unwrap();
        assert_eq!(
            (f.kind, f.endpoint.as_str()),
            (FaultKind::DropOtherLine, "POST /RecurringInvoice")
        );
        let l = Fault::parse("kind=latency,ms=200,jitter_ms=50").unwrap();
        assert_eq!(l.kind, FaultKind::Latency { ms: 200, jitter_ms: 50 });
        let r = Fault::parse("kind=revoke,after=100").unwrap();
        assert_eq!((r.kind, r.after), (FaultKind::Revoke { key: None }, 100));
        let v = Fault::parse("variant=services_array").unwrap();
        assert_eq!(v.kind, FaultKind::Variant { variant: Variant::ServicesArray });
        let rl = Fault::parse("rps=2.5,burst=3").unwrap();
        assert_eq!(rl.kind, FaultKind::RateLimit { rps: 2.5, burst: Some(3) });
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_show_the_forms() {
        for bad in [
            "",
            "status",
            "status=abc",
            "kind=explode",
            "frobnicate=1",
            "status=200",
            "rate=2,status=503",
            "variant=sideways",
            "status=503,status=500",
        ] {
            let e = Fault::parse(bad).unwrap_err().to_string();
            assert!(e.contains("fault SPEC forms"), "{bad}: {e}");
            for v in Variant::ALL {
                assert!(e.contains(v.name()), "{bad}: the forms list {v:?}: {e}");
            }
        }
    }

    #[test]
    fn the_removed_delete_variant_points_at_its_replacement() {
        let e = Fault::parse("variant=no_content_delete").unwrap_err();
        assert!(e.reason.contains("removed") && e.reason.contains("variant=ok_delete"), "{e}");
        let v = Fault::parse("variant=ok_delete").unwrap();
        assert_eq!(v.kind, FaultKind::Variant { variant: Variant::OkDelete });
        for name in ["services_object", "user_count_users", "user_count_all"] {
            let f = Fault::parse(&format!("variant={name}")).unwrap();
            assert!(matches!(f.kind, FaultKind::Variant { variant } if variant.name() == name));
        }
    }
}
