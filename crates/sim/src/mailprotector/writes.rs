//! The write endpoints mpsync's tests and demo use: customer create/update/delete and the
//! services PUT, with the §12 #7 success codes (201 create, 200 PUT with the object, 204 with no
//! body for DELETE — revised 2026-12; the `ok_delete` variant serves 200 with an empty body)
//! and 400/422 for bad bodies.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Caller, forbidden};
use super::layer::ActiveVariants;
use super::{ApiError, models, services};
use crate::control::SimControl;
use crate::dataset::{Role, Services, SimError};

type Res = Result<Response, ApiError>;

fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid body: {e}")))
}

fn id_of(raw: &str, what: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("{what} {raw} not found")))
}

fn sim_error(e: SimError) -> ApiError {
    match e {
        SimError::NotFound { kind, id } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("{kind} {id} not found"))
        }
        SimError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
    }
}

#[derive(Deserialize)]
struct CustomerBody {
    name: Option<String>,
    #[allow(dead_code)] // accepted but never returned (§5)
    email: Option<String>,
}

/// `POST /resellers/{id}/customers` → 201 + Customer.
pub(crate) async fn create_customer(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Res {
    let rid = id_of(&id, "reseller")?;
    let b: CustomerBody = body(&raw)?;
    let name = b
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "name can't be blank"))?;
    let cid = c.mutate(|ds| {
        if !ds.resellers().contains_key(&rid) {
            return Err(sim_error(SimError::NotFound { kind: "reseller", id: rid }));
        }
        if !who.sees_reseller(ds, rid) {
            return Err(forbidden("reseller", rid));
        }
        ds.add_customer(rid, &name).map_err(sim_error)
    })?;
    Ok((StatusCode::CREATED, axum::Json(models::customer(&c.read(), cid))).into_response())
}

/// `PUT /customers/{id}` → 200 + Customer (a new `name` renames it).
pub(crate) async fn update_customer(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Res {
    let cid = id_of(&id, "customer")?;
    let b: CustomerBody = body(&raw)?;
    c.mutate(|ds| {
        if !ds.customers().contains_key(&cid) {
            return Err(sim_error(SimError::NotFound { kind: "customer", id: cid }));
        }
        if !who.sees_customer(ds, cid) {
            return Err(forbidden("customer", cid));
        }
        match b.name {
            Some(n) if n.trim().is_empty() => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "name can't be blank"))
            }
            Some(n) => ds.rename_customer(cid, &n).map_err(sim_error),
            None => Ok(()),
        }
    })?;
    Ok(axum::Json(models::customer(&c.read(), cid)).into_response())
}

/// `DELETE /customers/{id}` → 204 with no body. Customer keys may not delete.
pub(crate) async fn delete_customer(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Res {
    let cid = id_of(&id, "customer")?;
    c.mutate(|ds| {
        if !ds.customers().contains_key(&cid) {
            return Err(sim_error(SimError::NotFound { kind: "customer", id: cid }));
        }
        if !who.sees_customer(ds, cid) || matches!(who.role, Role::Customer(_)) {
            return Err(forbidden("customer", cid));
        }
        ds.remove_customer(cid).map_err(sim_error)
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct ServicesBody {
    service_types: ServiceTypes,
}

#[derive(Deserialize)]
struct ServiceTypes {
    hosting: Option<String>,
    #[serde(default)]
    addons: Vec<String>,
}

/// `PUT /user_groups/{id}/services` with `{"service_types":{"hosting":..,"addons":[..]}}` →
/// 200 + the group's services as `GET` now serves them (the records by default).
pub(crate) async fn put_services(
    State(c): State<SimControl>,
    Extension(who): Extension<Caller>,
    Extension(v): Extension<ActiveVariants>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Res {
    let gid = id_of(&id, "user group")?;
    let b: ServicesBody = body(&raw)?;
    c.mutate(|ds| {
        if !ds.groups().contains_key(&gid) {
            return Err(sim_error(SimError::NotFound { kind: "user group", id: gid }));
        }
        if !who.sees_group(ds, gid) {
            return Err(forbidden("user group", gid));
        }
        let s = Services { hosting: b.service_types.hosting, addons: b.service_types.addons };
        ds.set_services(gid, s).map_err(sim_error)
    })?;
    Ok(axum::Json(services::services(&c.read(), gid, &v)).into_response())
}
