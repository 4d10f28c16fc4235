//! The control surface over HTTP, under `/_sim` (JSON in and out, no auth: the simulator is
//! for loopback use). Lets `mpsync sim` users, the demo and benchmarks drive it:
//!
//! | method and path | what |
//! |---|---|
//! | `GET /_sim/info` | seed, reseller id and key, listed customers, hidden customers, totals per user type (`users`, `aliases`, `mailing_lists`, `unlicensed_users`) |
//! | `GET /_sim/keys` | every API key: `[{"role":"reseller","id":188,"key":"..."}, ...]` |
//! | `GET /_sim/requests`, `DELETE /_sim/requests` | request counts (total, per route pattern, per status); reset |
//! | `GET /_sim/faults` | installed faults with ids and fire counts |
//! | `POST /_sim/faults` | add one: a fault object (`{"kind":"status","status":503,"endpoint":"user_groups","rate":0.2}`) or `{"spec":"status=503,rate=0.2"}`; → 201 `{"id":N}` |
//! | `DELETE /_sim/faults`, `DELETE /_sim/faults/{id}` | remove all, or one |
//! | `GET /_sim/expected_counts` | ground truth: `{"<customer id>":{"<product>":users}}`, counting type User (1) only; `?types=1,3,11` counts those user type ids instead |
//! | `POST /_sim/keys/revoke` | `{"key":"..."}`: that key answers 401 from now on |
//! | `/_sim/halopsa/...` | the simulated HaloPSA's credentials, settings, clock, tokens and journal: see [`crate::halopsa::control`] |
//! | `POST /_sim/mutations` | one change: `{"op":"add_users","group":109,"n":5}`, `remove_users` (group, n), `rename_customer` (customer, name), `move_domain` (domain, customer), `set_services` (group, hosting, addons), `add_customer` (name, reseller?), `add_domain` (customer, name, parent?), `add_group` (domain, name, hosting, addons, users), `add_mailing_lists` (group, n), `add_unlicensed_users` (group, n), `hide_customer` (customer), `unhide_customer` (customer) → `{"id":..}`, `{"ids":[..]}` or `{}`; ConnectWise changes made in the PSA behind mpsync's back: `delete_addition` (addition) → the deleted addition, `set_addition_quantity` (addition, quantity) → `{"previous":..}`, `set_edit_rights` (allowed: the API member's role may PATCH or gets 403) → `{}` |

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::control::SimControl;
use super::dataset::{DEFAULT_COUNTED_TYPES, Role, Services, UserKind};
use super::faults::Fault;

fn err(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

/// Parses a JSON body; the error becomes a 400 with the standard error body.
fn parse<T: serde::de::DeserializeOwned>(raw: &Bytes) -> Result<T, String> {
    serde_json::from_slice(raw).map_err(|e| format!("bad JSON body: {e}"))
}

/// The `/_sim` routes.
pub fn router(control: SimControl) -> Router {
    Router::new()
        .route("/_sim/info", get(info))
        .route("/_sim/keys", get(keys))
        .route("/_sim/requests", get(requests).delete(reset_requests))
        .route("/_sim/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/expected_counts", get(expected))
        .route("/_sim/keys/revoke", post(revoke))
        .route("/_sim/mutations", post(mutate))
        .with_state(control)
}

async fn info(State(c): State<SimControl>) -> Response {
    let ds = c.read();
    let t = ds.user_totals();
    Json(json!({
        "seed": ds.seed(),
        "reseller_id": ds.reseller_id(),
        "reseller_key": ds.reseller_key(),
        "customers": ds.main_customers().len(),
        "hidden_customers": ds.hidden_customers(),
        "users": t.users,
        "aliases": t.aliases,
        "mailing_lists": t.mailing_lists,
        "unlicensed_users": t.unlicensed_users,
    }))
    .into_response()
}

async fn keys(State(c): State<SimControl>) -> Response {
    let ds = c.read();
    let all: Vec<Value> = ds
        .keys()
        .map(|(role, key)| {
            let (kind, id) = match role {
                Role::Reseller(id) => ("reseller", id),
                Role::Customer(id) => ("customer", id),
            };
            json!({"role": kind, "id": id, "key": key})
        })
        .collect();
    Json(Value::Array(all)).into_response()
}

async fn requests(State(c): State<SimControl>) -> Response {
    Json(c.requests()).into_response()
}

async fn reset_requests(State(c): State<SimControl>) -> Response {
    c.reset_requests();
    Json(json!({})).into_response()
}

async fn faults(State(c): State<SimControl>) -> Response {
    Json(c.faults()).into_response()
}

async fn add_fault(State(c): State<SimControl>, raw: Bytes) -> Response {
    let body: Value = match parse(&raw) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let fault = match body.get("spec").and_then(Value::as_str) {
        Some(spec) => Fault::parse(spec).map_err(|e| e.to_string()),
        None => serde_json::from_value::<Fault>(body)
            .map_err(|e| e.to_string())
            .and_then(|f| f.validate().map(|()| f)),
    };
    match fault {
        Ok(f) => (StatusCode::CREATED, Json(json!({"id": c.add_fault(f)}))).into_response(),
        Err(e) => err(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

async fn clear_faults(State(c): State<SimControl>) -> Response {
    c.clear_faults();
    Json(json!({})).into_response()
}

async fn remove_fault(State(c): State<SimControl>, Path(id): Path<u64>) -> Response {
    if c.remove_fault(id) {
        Json(json!({})).into_response()
    } else {
        err(StatusCode::NOT_FOUND, format!("no fault with id {id}"))
    }
}

async fn expected(State(c): State<SimControl>, RawQuery(q): RawQuery) -> Response {
    match counted_types(q.as_deref()) {
        Ok(types) => Json(c.expected_counts_for(&types)).into_response(),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

/// The user type ids `?types=1,3,11` asks to count; type User (1) only without it.
fn counted_types(query: Option<&str>) -> Result<Vec<u64>, String> {
    let known =
        || UserKind::ALL.iter().map(|k| format!("{} ({})", k.id(), k.name())).collect::<Vec<_>>();
    let mut types = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != "types" {
            return Err(format!(
                "/_sim/expected_counts: unknown parameter {k:?}; the only one is types=1,3,11"
            ));
        }
        let mut ids = Vec::new();
        for part in v.split(',').map(str::trim) {
            let id = part.parse::<u64>().ok().filter(|id| UserKind::from_id(*id).is_some());
            match id {
                Some(id) => ids.push(id),
                None => {
                    return Err(format!(
                        "/_sim/expected_counts: types={v:?}: {part:?} is not a user type id; \
                         use comma-separated ids of {}",
                        known().join(", ")
                    ));
                }
            }
        }
        types = Some(ids);
    }
    Ok(types.unwrap_or_else(|| DEFAULT_COUNTED_TYPES.to_vec()))
}

#[derive(Deserialize)]
struct RevokeBody {
    key: String,
}

async fn revoke(State(c): State<SimControl>, raw: Bytes) -> Response {
    let b: RevokeBody = match parse(&raw) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    c.revoke_key(&b.key);
    Json(json!({})).into_response()
}

/// One mutation, as `POST /_sim/mutations` takes it.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Mutation {
    AddUsers {
        group: u64,
        n: u32,
    },
    RemoveUsers {
        group: u64,
        n: u64,
    },
    RenameCustomer {
        customer: u64,
        name: String,
    },
    MoveDomain {
        domain: u64,
        customer: u64,
    },
    SetServices {
        group: u64,
        hosting: Option<String>,
        #[serde(default)]
        addons: Vec<String>,
    },
    AddCustomer {
        name: String,
        reseller: Option<u64>,
    },
    AddDomain {
        customer: u64,
        name: String,
        parent: Option<u64>,
    },
    AddGroup {
        domain: u64,
        name: String,
        hosting: Option<String>,
        #[serde(default)]
        addons: Vec<String>,
        #[serde(default)]
        users: u32,
    },
    AddMailingLists {
        group: u64,
        n: u32,
    },
    AddUnlicensedUsers {
        group: u64,
        n: u32,
    },
    HideCustomer {
        customer: u64,
    },
    UnhideCustomer {
        customer: u64,
    },
    DeleteAddition {
        addition: u64,
    },
    SetAdditionQuantity {
        addition: u64,
        quantity: f64,
    },
    SetEditRights {
        allowed: bool,
    },
}

async fn mutate(State(c): State<SimControl>, raw: Bytes) -> Response {
    let m: Mutation = match parse(&raw) {
        Ok(m) => m,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let done = match m {
        Mutation::AddUsers { group, n } => c.add_users(group, n).map(|ids| json!({"ids": ids})),
        Mutation::RemoveUsers { group, n } => {
            c.remove_users(group, n).map(|n| json!({"removed": n}))
        }
        Mutation::RenameCustomer { customer, name } => {
            c.rename_customer(customer, &name).map(|()| json!({}))
        }
        Mutation::MoveDomain { domain, customer } => {
            c.move_domain(domain, customer).map(|()| json!({}))
        }
        Mutation::SetServices { group, hosting, addons } => {
            c.set_services(group, Services { hosting, addons }).map(|()| json!({}))
        }
        Mutation::AddCustomer { name, reseller } => {
            let r = reseller.unwrap_or_else(|| c.reseller_id());
            c.add_customer(r, &name).map(|id| json!({"id": id}))
        }
        Mutation::AddDomain { customer, name, parent } => {
            c.add_domain(customer, &name, parent).map(|id| json!({"id": id}))
        }
        Mutation::AddGroup { domain, name, hosting, addons, users } => c
            .add_group(domain, &name, Services { hosting, addons }, users)
            .map(|id| json!({"id": id})),
        Mutation::AddMailingLists { group, n } => {
            c.add_mailing_lists(group, n).map(|ids| json!({"ids": ids}))
        }
        Mutation::AddUnlicensedUsers { group, n } => {
            c.add_unlicensed_users(group, n).map(|ids| json!({"ids": ids}))
        }
        Mutation::HideCustomer { customer } => c.hide_customer(customer).map(|()| json!({})),
        Mutation::UnhideCustomer { customer } => c.unhide_customer(customer).map(|()| json!({})),
        Mutation::DeleteAddition { addition } => c
            .connectwise()
            .delete_addition(addition)
            .map(|a| serde_json::to_value(a).unwrap_or_default()),
        Mutation::SetAdditionQuantity { addition, quantity } => c
            .connectwise()
            .set_quantity(addition, quantity)
            .map(|previous| json!({"previous": previous})),
        Mutation::SetEditRights { allowed } => {
            c.connectwise().set_edit_rights(allowed);
            Ok(json!({}))
        }
    };
    match done {
        Ok(v) => Json(v).into_response(),
        Err(e) => err(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
