//! The OpenAPI document's shared parts: the error answers every operation can give because of
//! how it is reached rather than what it does — a missing session, a CSRF check, a body or a
//! parameter the extractors refuse ([`crate::error::ApiJson`], [`crate::error::ApiPath`],
//! [`crate::error::ApiQuery`]). [`document_common_errors`] adds them to every operation from
//! what the operation declares (its parameters and body), so no handler lists them by hand.

use crate::error::ErrorBody;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

/// The routes that need no session: everything outside `/api/v1`, these, and the Telegram
/// sign-in flows under [`PUBLIC_PREFIX`].
const PUBLIC: [&str; 5] = [
    "/api/v1/auth/login",
    "/api/v1/openapi.json",
    "/api/v1/auth/start",
    "/api/v1/auth/verify",
    "/api/v1/auth/options",
];

/// Sign-in flows continued by their flow id, without a session.
const PUBLIC_PREFIX: &str = "/api/v1/auth/telegram/";

/// Adds the common error answers to every operation of `doc` (appending to the description of
/// an answer the operation already documents with the same status).
pub fn document_common_errors(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let authenticated = path.starts_with("/api/v1/")
            && !PUBLIC.contains(&path.as_str())
            && !path.starts_with(PUBLIC_PREFIX);
        let operations = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        for (op, writes) in operations {
            if let Some(op) = op.as_mut() {
                for (status, codes) in common_errors(op, authenticated, writes) {
                    add_error(op, status, &codes);
                }
            }
        }
    }
}

/// The statuses and codes an operation can answer before its handler runs.
fn common_errors(
    op: &Operation,
    authenticated: bool,
    writes: bool,
) -> Vec<(u16, Vec<&'static str>)> {
    let mut out: Vec<(u16, Vec<&'static str>)> = Vec::new();
    let mut add = |status: u16, code: &'static str| match out.iter_mut().find(|(s, _)| *s == status)
    {
        Some((_, codes)) => codes.push(code),
        None => out.push((status, vec![code])),
    };
    if authenticated {
        add(401, "unauthenticated");
        add(403, "forbidden");
        if writes {
            add(403, "csrf_failed");
        }
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params.iter().any(|p| p.parameter_in == ParameterIn::Path) {
        add(404, "not_found");
    }
    if params.iter().any(|p| p.parameter_in == ParameterIn::Query) {
        add(422, "validation_failed");
    }
    if op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"))
    {
        add(400, "invalid_json");
        add(400, "bad_request");
        add(413, "payload_too_large");
        add(415, "unsupported_media_type");
        add(422, "invalid_json");
    }
    out
}

fn add_error(op: &mut Operation, status: u16, codes: &[&str]) {
    let list = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let key = status.to_string();
    match op.responses.responses.get_mut(&key) {
        Some(RefOr::T(existing)) => {
            let missing: Vec<&&str> = codes
                .iter()
                .filter(|c| !existing.description.contains(**c))
                .collect();
            if !missing.is_empty() {
                let more = missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                existing.description = format!("{}; also {more}", existing.description);
            }
            if existing.content.is_empty() {
                existing
                    .content
                    .insert("application/json".into(), error_content());
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut response = Response::new(list);
            response
                .content
                .insert("application/json".into(), error_content());
            op.responses.responses.insert(key, RefOr::T(response));
        }
    }
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("ErrorBody")))
}

/// The answers a Telegram step — a sign-in, a code, a password, an import — can give besides
/// success (`impl From<ConnectError> for ApiError`); listed with `responses(…, ConnectErrors)`.
#[derive(utoipa::IntoResponses)]
pub enum ConnectErrors {
    /// Telegram refused: `phone_number_invalid`, `phone_number_banned`, `phone_code_invalid`,
    /// `phone_code_expired`, `password_invalid`, `send_code_unavailable`, …
    #[response(status = 400)]
    Refused(ErrorBody),
    /// `login_flow_not_found` (or `not_found`)
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `login_wrong_step`, `login_finished`, `account_exists`
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `session_*`: the session cannot be used; `validation_failed`
    #[response(status = 422)]
    Session(ErrorBody),
    /// `flood_wait`, with Retry-After
    #[response(status = 429)]
    FloodWait(ErrorBody),
    /// `telegram_unreachable`, `telegram_client_crashed`, `telegram_unexpected_answer`,
    /// `auth_key_provisioning_failed`
    #[response(status = 502)]
    Upstream(ErrorBody),
}
