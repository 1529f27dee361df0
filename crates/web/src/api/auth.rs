//! Sign-in, sign-out and the signed-in user (`/api/v1/auth/*`, `/api/v1/me`).

use crate::AppState;
use crate::error::{ApiError, ApiJson, ErrorBody, json};
use crate::locale::LANG_COOKIE;
use crate::session::{Member, client_addr, client_ip};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::{Locale, Membership, User};
use switchboard_services::LoginOutcome;
use switchboard_services::audit::Audit;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(set_locale))
}

/// Sign-in request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// The signed-in user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// User id.
    pub id: i64,
    /// Username.
    pub username: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Preferred language, if set.
    #[schema(value_type = Option<String>)]
    pub locale: Option<Locale>,
    /// Current workspace id.
    pub workspace_id: i64,
    /// Role in that workspace: owner, admin or operator.
    pub role: String,
    /// Chat capacity.
    pub max_chats: i32,
    /// Token to send as `X-CSRF-Token` on writes (only in the sign-in response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

impl MeResponse {
    /// The user as the API shows them, with the CSRF token in a sign-in answer.
    pub(super) fn new(user: &User, m: &Membership, csrf_token: Option<String>) -> Self {
        Self {
            id: user.id.0,
            username: user.username.as_ref().map(|u| u.to_string()),
            display_name: user.display_name.clone(),
            locale: user.locale,
            workspace_id: m.workspace_id.0,
            role: m.role.as_str().to_string(),
            max_chats: m.max_chats,
            csrf_token,
        }
    }
}

pub(super) fn cookie_header(
    state: &AppState,
    name: &str,
    value: &str,
    http_only: bool,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if state.settings().secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).ok()
}

/// Signs in with username and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = MeResponse),
    (status = 401, description = "invalid_credentials", body = ErrorBody),
    (status = 403, description = "csrf_failed (cross-site request) or no_workspace", body = ErrorBody),
    (status = 429, description = "account_locked or rate_limited, with Retry-After", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if !state.same_origin(&headers) {
        return Err(ApiError::from(ErrorCode::CsrfFailed));
    }
    let ip = client_addr(&ext);
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let out = state
        .auth()
        .login(&req.username, &req.password, ip, ua)
        .await?;
    let mut res = json(MeResponse::new(
        &out.user,
        &out.membership,
        Some(out.csrf_token.clone()),
    ));
    set_session_cookies(&state, &out, &mut res);
    Ok(res)
}

/// Sets the cookies of a new session (session, CSRF, and the user's language) on a response.
pub(super) fn set_session_cookies(state: &AppState, out: &LoginOutcome, res: &mut Response) {
    let max_age = (out.expires_at.0 - switchboard_domain::Timestamp::now().0) / 1000;
    let h = res.headers_mut();
    for v in [
        cookie_header(state, state.cookie_name(), &out.session_token, true, None),
        cookie_header(state, "sb_csrf", &out.csrf_token, false, None),
        out.user.locale.and_then(|l| {
            cookie_header(
                state,
                LANG_COOKIE,
                l.code(),
                false,
                Some(max_age.max(0) * 30),
            )
        }),
    ]
    .into_iter()
    .flatten()
    {
        h.append(header::SET_COOKIE, v);
    }
}

/// Signs out: deletes the session and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses(
    (status = 204, description = "Signed out"),
    (status = 401, description = "unauthenticated", body = ErrorBody),
    (status = 403, description = "csrf_failed", body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    state
        .auth()
        .logout(&ctx, client_ip(&ext).as_deref())
        .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    for v in [
        cookie_header(&state, state.cookie_name(), "", true, Some(0)),
        cookie_header(&state, "sb_csrf", "", false, Some(0)),
    ]
    .into_iter()
    .flatten()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// The signed-in user and their role in the current workspace.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses(
    (status = 200, description = "The signed-in user", body = MeResponse),
    (status = 401, description = "unauthenticated", body = ErrorBody)))]
async fn me(Member(ctx): Member) -> Response {
    json(MeResponse::new(&ctx.user, &ctx.membership, None))
}

/// Language choice.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocaleRequest {
    /// `en`, `ru`, or null to follow the browser.
    pub locale: Option<String>,
}

/// Sets the signed-in user's interface language.
#[utoipa::path(put, path = "/api/v1/me/locale", tag = "auth", request_body = LocaleRequest, responses(
    (status = 200, description = "Saved", body = MeResponse),
    (status = 422, description = "invalid_locale", body = ErrorBody)))]
async fn set_locale(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiJson(req): ApiJson<LocaleRequest>,
) -> Result<Response, ApiError> {
    let locale = match req.locale.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<Locale>()
                .map_err(|_| ApiError::from(ErrorCode::InvalidLocale))?,
        ),
    };
    state.store().set_user_locale(ctx.user.id, locale).await?;
    Audit::new("user.locale_changed")
        .workspace(ctx.membership.workspace_id)
        .actor(ctx.user.id)
        .target(format!("user:{}", ctx.user.id))
        .details(serde_json::json!({"locale": locale.map(|l| l.code())}))
        .record(state.store())
        .await;
    let mut user = ctx.user.clone();
    user.locale = locale;
    let mut res = json(MeResponse::new(&user, &ctx.membership, None));
    let cookie = match locale {
        Some(l) => cookie_header(&state, LANG_COOKIE, l.code(), false, Some(365 * 24 * 3600)),
        None => cookie_header(&state, LANG_COOKIE, "", false, Some(0)),
    };
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}
