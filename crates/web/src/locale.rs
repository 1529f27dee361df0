//! Choosing the interface language of a request and translating error bodies into it.

use crate::error::{ErrorMark, QueryAt, error_json};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use switchboard_domain::Locale;

/// Name of the cookie holding an explicit language choice.
pub const LANG_COOKIE: &str = "sb_lang";

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language for a request without a signed-in user's preference: the `sb_lang` cookie,
/// then `Accept-Language`, then English.
pub fn request_locale(headers: &HeaderMap) -> Locale {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| v.parse().ok()) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Locale::from_accept_language)
        .unwrap_or(Locale::En)
}

/// Middleware: rewrites API error bodies into the request's language.
pub async fn localize_errors(req: Request, next: Next) -> Response {
    let locale = request_locale(req.headers());
    let mut res = next.run(req).await;
    if locale != Locale::En
        && let Some(ErrorMark(code)) = res.extensions().get::<ErrorMark>().copied()
    {
        res.headers_mut().remove(header::CONTENT_LENGTH);
        let query = res.extensions().get::<QueryAt>().cloned();
        *res.body_mut() = Body::from(error_json(code, locale, query.as_ref()));
    }
    res
}
