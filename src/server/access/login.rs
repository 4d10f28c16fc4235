//! `/login`: how a person reaches the dashboard when an access token is required. The form
//! posts the token; if it is right, the answer sets a session cookie (`HttpOnly`,
//! `SameSite=Strict`, holding a digest of the token, never the token) and goes to `/`. The
//! token never appears in a URL, so it stays out of browser history and proxy logs.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Access, SESSION_COOKIE};

/// The path of the login form.
pub const PATH: &str = "/login";

/// What the form posts.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `GET /login`: the form, or straight to the dashboard when no token is configured.
pub async fn page(State(access): State<Arc<Access>>) -> Response {
    if !access.needs_token() {
        return see_other("/");
    }
    form(StatusCode::OK, None)
}

/// `POST /login`: sets the session cookie when the token is right (401 and the form again
/// otherwise). `Secure` is added when a TLS reverse proxy says it forwarded https.
pub async fn submit(
    State(access): State<Arc<Access>>,
    headers: HeaderMap,
    login: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(login)) = login else {
        return form(StatusCode::BAD_REQUEST, Some("Type the access token into the field."));
    };
    let (true, Some(session)) = (access.admits_token(login.token.trim()), access.cookie_value())
    else {
        if !access.needs_token() {
            return see_other("/");
        }
        tracing::info!("a login at /login gave a wrong access token");
        return form(StatusCode::UNAUTHORIZED, Some("That is not the access token."));
    };
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict{}",
        if https { "; Secure" } else { "" }
    );
    let mut resp = see_other("/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static(to))]).into_response()
}

/// The login page with `status`, and `problem` above the form.
pub fn form(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem.map(|p| format!("<p role=\"alert\"><b>{p}</b></p>")).unwrap_or_default();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>mpsync: log in</title>\
         </head><body><h1>mpsync</h1>{problem}\
         <p>This dashboard needs the access token (the contents of <code>daemon.access_token_file</code>).</p>\
         <form method=\"post\" action=\"{PATH}\"><label>Access token \
         <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus>\
         </label> <button type=\"submit\">Log in</button></form></body></html>"
    );
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    (status, headers, body).into_response()
}
