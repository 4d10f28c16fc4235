//! The read endpoints: single resources (404 for unknown ids, 403 outside the key's subtree)
//! and lists (ascending id, paged, filtered). Reseller-scope lists cover the whole subtree,
//! sub-resellers included; an alias domain lists its primary domain's groups and users.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{Caller, forbidden};
use super::layer::ActiveVariants;
use super::pagination::ListQuery;
use super::{ApiError, models, services};
use crate::control::SimControl;
use crate::dataset::{Dataset, Scope, UserRef};

pub(crate) type Res = Result<Response, ApiError>;
type Exists = fn(&Dataset, u64) -> bool;
type Sees = fn(&Caller, &Dataset, u64) -> bool;

fn parse_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| not_found(what, raw))
}

fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("{what} {id} not found"))
}

/// Checks existence (404) then visibility (403).
pub(crate) fn check(
    ds: &Dataset,
    caller: &Caller,
    scope: Scope,
    raw: &str,
) -> Result<u64, ApiError> {
    let (what, exists, sees): (&str, Exists, Sees) = match scope {
        Scope::Reseller => {
            ("reseller", |d, i| d.resellers().contains_key(&i), Caller::sees_reseller)
        }
        Scope::Customer => {
            ("customer", |d, i| d.customers().contains_key(&i), Caller::sees_customer)
        }
        Scope::Domain => ("domain", |d, i| d.domains().contains_key(&i), Caller::sees_domain),
        Scope::UserGroup => ("user group", |d, i| d.groups().contains_key(&i), Caller::sees_group),
    };
    let id = parse_id(raw, what)?;
    if !exists(ds, id) {
        return Err(not_found(what, id));
    }
    if !sees(caller, ds, id) {
        return Err(forbidden(what, id));
    }
    Ok(id)
}

fn one(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// `GET /resellers/{id}`.
pub(crate) async fn get_reseller(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let id = check(&ds, &who, Scope::Reseller, &id)?;
    Ok(one(models::reseller(&ds, id)))
}

/// `GET /customers/{id}`.
pub(crate) async fn get_customer(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let id = check(&ds, &who, Scope::Customer, &id)?;
    Ok(one(models::customer(&ds, id)))
}

/// `GET /domains/{id}`.
pub(crate) async fn get_domain(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let id = check(&ds, &who, Scope::Domain, &id)?;
    Ok(one(models::domain(&ds, id)))
}

/// `GET /user_groups/{id}`.
pub(crate) async fn get_user_group(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Extension(v): Extension<ActiveVariants>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let id = check(&ds, &who, Scope::UserGroup, &id)?;
    Ok(one(models::user_group(&ds, id, &v)))
}

/// `GET /user_groups/{id}/services`.
pub(crate) async fn group_services(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Extension(v): Extension<ActiveVariants>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let id = check(&ds, &who, Scope::UserGroup, &id)?;
    Ok(one(services::services(&ds, id, &v)))
}

/// `GET /users/{id}`.
pub(crate) async fn get_user(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Res {
    let ds = c.read();
    let uid = parse_id(&id, "user")?;
    let u = ds.find_user(uid).ok_or_else(|| not_found("user", uid))?;
    if !who.sees_group(&ds, u.group_id) {
        return Err(forbidden("user", uid));
    }
    Ok(one(models::user(&ds, &u)))
}

/// `GET /resellers/{id}/customers`: the whole subtree's customers, hidden ones left out.
pub(crate) async fn reseller_customers(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, &who, Scope::Reseller, &id)?;
    let ids = ds.listed_customers_in_reseller(id);
    Ok(q.respond(&ids, |i| models::customer(&ds, i)))
}

/// `GET /resellers/{id}/domains`: every domain of the subtree, aliases and hidden customers'
/// domains included.
pub(crate) async fn reseller_domains(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, &who, Scope::Reseller, &id)?;
    let mut ids: Vec<u64> =
        ds.customers_in_reseller(id).into_iter().flat_map(|c| ds.domains_of_customer(c)).collect();
    ids.sort_unstable();
    Ok(q.respond(&ids, |i| models::domain(&ds, i)))
}

/// `GET /customers/{id}/domains`.
pub(crate) async fn customer_domains(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, &who, Scope::Customer, &id)?;
    Ok(q.respond(&ds.domains_of_customer(id), |i| models::domain(&ds, i)))
}

/// `GET /domains/{id}/aliases`.
pub(crate) async fn domain_aliases(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, &who, Scope::Domain, &id)?;
    Ok(q.respond(&ds.aliases_of_domain(id), |i| models::domain(&ds, i)))
}

/// `GET /domains/{id}/user_groups`.
pub(crate) async fn domain_groups(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Extension(v): Extension<ActiveVariants>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, &who, Scope::Domain, &id)?;
    Ok(q.respond(&ds.groups_of_domain(id), |i| models::user_group(&ds, i, &v)))
}

fn users(c: &SimControl, who: &Caller, scope: Scope, id: &str, q: Option<String>) -> Res {
    let q = ListQuery::parse(q.as_deref())?;
    let ds = c.read();
    let id = check(&ds, who, scope, id)?;
    let index = ds.scope_users(scope, id);
    let render =
        |u: UserRef| models::user(&ds, &ds.materialise_user(u.id, u.group, u.kind, u.parent));
    if q.has_filters() {
        let all = index.slice(0, index.total());
        return Ok(q.respond(&all, render));
    }
    let page = index.slice(q.offset(), q.per_page);
    Ok(q.page_response(index.total(), page.into_iter().map(render).collect()))
}

/// `GET /resellers/{id}/users`.
pub(crate) async fn reseller_users(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    users(&c, &who, Scope::Reseller, &id, q)
}

/// `GET /customers/{id}/users`.
pub(crate) async fn customer_users(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    users(&c, &who, Scope::Customer, &id, q)
}

/// `GET /domains/{id}/users`.
pub(crate) async fn domain_users(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    users(&c, &who, Scope::Domain, &id, q)
}

/// `GET /user_groups/{id}/users`.
pub(crate) async fn group_users(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Res {
    users(&c, &who, Scope::UserGroup, &id, q)
}
