//! Bearer keys modelled as (manager, role → entity): a reseller key sees its subtree, nested
//! resellers included; a customer key sees only its customer's domains, groups and users.
//! Missing or unknown keys get 401; a known key outside its subtree gets 403.

use axum::http::{HeaderMap, StatusCode};

use super::ApiError;
use crate::dataset::{Dataset, Role};

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The bearer key as sent (needed to revoke it mid-run).
    pub(crate) key: String,
    /// What the key's role is attached to.
    pub(crate) role: Role,
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Resolves the caller or answers 401.
pub(crate) fn authenticate(ds: &Dataset, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = bearer(headers).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing API key: send Authorization: Bearer <key>")
    })?;
    let found = ds
        .lookup_key(key)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked API key"))?;
    Ok(Caller { key: key.to_owned(), role: found.role })
}

impl Caller {
    pub(crate) fn sees_reseller(&self, ds: &Dataset, reseller: u64) -> bool {
        match self.role {
            Role::Reseller(own) => ds.reseller_within(reseller, own),
            Role::Customer(_) => false,
        }
    }

    pub(crate) fn sees_customer(&self, ds: &Dataset, customer: u64) -> bool {
        match self.role {
            Role::Reseller(own) => ds
                .customers()
                .get(&customer)
                .is_some_and(|c| ds.reseller_within(c.reseller_id, own)),
            Role::Customer(own) => own == customer,
        }
    }

    pub(crate) fn sees_domain(&self, ds: &Dataset, domain: u64) -> bool {
        ds.domains().get(&domain).is_some_and(|d| self.sees_customer(ds, d.customer_id))
    }

    pub(crate) fn sees_group(&self, ds: &Dataset, group: u64) -> bool {
        ds.customer_of_group(group).is_some_and(|c| self.sees_customer(ds, c))
    }
}

/// 403 with the standard body.
pub(crate) fn forbidden(what: &str, id: u64) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("this API key's role does not have access to {what} {id}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
