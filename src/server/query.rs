//! [`ApiQuery`]: the query-string extractor of every route. axum's `Query` refuses a bad query
//! string (`?limit=abc`, a repeated key, broken percent-encoding) with a `text/plain` 400;
//! this one answers with the JSON error body of every other 4xx, naming the path and what
//! could not be read. `clippy.toml` bans `axum::extract::Query` so new routes use this.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::errors::json_error_hint;

/// The query string deserialized into `T`, or a JSON 400 that says what was wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        #[allow(clippy::disallowed_types)] // the one place that wraps it
        let parsed = axum::extract::Query::<T>::try_from_uri(&parts.uri);
        match parsed {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                // axum's text is "Failed to deserialize query string: limit: invalid digit
                // found in string"; the part after the colon names the parameter.
                let text = rejection.body_text();
                let mut detail =
                    text.split_once(": ").map_or(text.as_str(), |(_, rest)| rest).to_owned();
                if detail.ends_with("invalid digit found in string") {
                    detail.push_str(" (expected a whole number)");
                }
                Err(json_error_hint(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the query string of {}: {detail}", parts.uri.path()),
                    "check the parameter's value and give each parameter once (see the \
                     endpoint's parameters in the README)",
                ))
            }
        }
    }
}
