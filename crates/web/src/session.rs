//! The authenticated-request extractors: the session cookie resolves to a [`SessionContext`];
//! every state-changing request authenticated by cookie must carry the session's CSRF token.

use crate::AppState;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::locale::cookie;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use std::net::IpAddr;
use switchboard_domain::ErrorCode;
use switchboard_services::SessionContext;

/// Header carrying the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in member of the request.
pub struct Member(pub SessionContext);

/// A signed-in member whose role is owner or admin.
pub struct Admin(pub SessionContext);

/// Client address of the request, when known (behind trusted proxies, the one they report).
pub fn client_addr(parts_ext: &axum::http::Extensions) -> Option<IpAddr> {
    parts_ext.get::<ClientAddr>().map(|c| c.0)
}

/// [`client_addr`] as text, for audit records.
pub fn client_ip(parts_ext: &axum::http::Extensions) -> Option<String> {
    client_addr(parts_ext).map(|ip| ip.to_string())
}

/// True when the request comes from our own origin (or a non-browser client). Browsers send
/// `Sec-Fetch-Site` and `Origin`; a cross-site value is refused. Our origin is the one of
/// `server.public_url` when it is set (`ours`, see [`public_origin`]): behind a
/// reverse proxy the `Host` header need not be the browser's; otherwise the `Host` header.
pub fn same_origin(headers: &HeaderMap, ours: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if let Some(ours) = ours {
        return public_origin(origin).is_some_and(|o| o == ours);
    }
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            origin_host.eq_ignore_ascii_case(host)
        }
        None => false,
    }
}

/// The origin (`scheme://host[:port]`, as browsers send it in `Origin`) of a public URL such as
/// `server.public_url`; `None` when it is not an absolute http(s) URL.
pub fn public_origin(public_url: &str) -> Option<String> {
    let url = url::Url::parse(public_url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

async fn resolve(parts: &mut Parts, state: &AppState) -> Result<SessionContext, ApiError> {
    let token = cookie(&parts.headers, state.cookie_name())
        .ok_or_else(ApiError::unauthenticated)?
        .to_string();
    let ctx = state
        .auth()
        .authenticate(&token)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if presented.is_empty()
            || !state.auth().csrf_matches(&ctx, presented)
            || !state.same_origin(&parts.headers)
        {
            return Err(ApiError::from(ErrorCode::CsrfFailed));
        }
    }
    Ok(ctx)
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        resolve(parts, state).await.map(Member)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = resolve(parts, state).await?;
        if ctx.membership.role.is_admin() {
            Ok(Admin(ctx))
        } else {
            Err(ApiError::forbidden())
        }
    }
}
