//! Telegram sign-in (`/api/v1/auth/start`, `/verify`, `/telegram/*`), the signed-in user's
//! binding with the service bot and remembered browsers (`/api/v1/me/signin`, `/me/bot-link`,
//! `/me/devices`), and the installation's sign-in settings (`/api/v1/auth/settings`,
//! `/auth/invites`). The rules are `switchboard_services::signin`'s; docs/web-login.md
//! describes every answer.

use super::accounts::{CodeView, QrView};
use super::auth::{MeResponse, cookie_header, set_session_cookies};
use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, json};
use crate::locale::cookie;
use crate::openapi::ConnectErrors;
use crate::session::{Admin, Member, client_addr, client_ip};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::{BotId, ErrorCode, Timestamp, TrustedDeviceId};
use switchboard_services::auth::token_hash;
use switchboard_services::signin::{
    CODE_DIGITS, CODE_TTL, Client, DEVICE_TTL, FlowInput, FlowOutcome, NONCE_TTL, SignedIn,
    SigninError, StartMethod, StartOutcome, TelegramStep,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(verify))
        .routes(routes!(telegram_poll, telegram_cancel))
        .routes(routes!(telegram_code))
        .routes(routes!(telegram_resend))
        .routes(routes!(telegram_password))
        .routes(routes!(options))
        .routes(routes!(my_signin))
        .routes(routes!(bot_link))
        .routes(routes!(list_devices, revoke_all_devices))
        .routes(routes!(revoke_device))
        .routes(routes!(settings))
        .routes(routes!(set_service_bot))
        .routes(routes!(create_invite))
}

/// Name of the trusted-device cookie (`__Host-` prefixed when cookies are secure).
fn device_cookie_name(state: &AppState) -> &'static str {
    if state.settings().secure_cookies {
        "__Host-sb_device"
    } else {
        "sb_device"
    }
}

fn client_of(state: &AppState, ext: &axum::http::Extensions, headers: &HeaderMap) -> Client {
    Client {
        ip: client_addr(ext),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        device_token: cookie(headers, device_cookie_name(state))
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    }
}

impl From<SigninError> for ApiError {
    fn from(e: SigninError) -> Self {
        match e {
            SigninError::Refused(code) => code.into(),
            SigninError::RateLimited { retry_after_secs } => {
                ApiError::from(ErrorCode::RateLimited).retry_after(retry_after_secs)
            }
            SigninError::Connect(e) => e.into(),
            SigninError::Auth(e) => e.into(),
            SigninError::Store(e) => e.into(),
        }
    }
}

/// Where a sign-in stands (`status` says which; docs/web-login.md).
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SigninAnswer {
    /// Signed in: the session cookie is set (and the trusted-device cookie when asked).
    SignedIn {
        /// The user, with the CSRF token.
        user: MeResponse,
        /// `trusted_device`, `bot_code` or `telegram`.
        method: String,
        /// True when this sign-in created the user (and their personal workspace).
        new_user: bool,
        /// A link that binds the user's Telegram chat with the service bot (so the next
        /// sign-in needs no Telegram code), when it is not bound yet.
        bot_link: Option<String>,
    },
    /// The service bot sent a code to the user's Telegram; check it at `/api/v1/auth/verify`.
    CodeSent {
        /// `bot`.
        via: String,
        /// The service bot.
        bot_username: String,
        /// Digits in the code (6).
        code_length: u32,
        /// The code works this long.
        expires_in_secs: u64,
        /// A new code may be asked for after this long (start again).
        resend_after_secs: u64,
    },
    /// The user's chat with the service bot is not bound: open `link` in Telegram and press
    /// Start (the bot binds it and sends a code), or start again with `method: "telegram"`
    /// (at once: this answer costs the phone no start).
    BindBot {
        /// `https://t.me/<bot>?start=<nonce>`.
        link: String,
        /// The service bot.
        bot_username: String,
        /// The link works this long.
        expires_in_secs: u64,
    },
    /// Telegram sent a login code (the MTProto flow); submit it to
    /// `/api/v1/auth/telegram/{flow_id}/code`.
    TelegramCodeSent {
        /// The flow.
        flow_id: String,
        /// How Telegram sent it.
        code: CodeView,
    },
    /// The Telegram account has a 2FA password; submit it to
    /// `/api/v1/auth/telegram/{flow_id}/password`.
    PasswordNeeded {
        /// The flow.
        flow_id: String,
        /// The hint the owner set.
        hint: Option<String>,
    },
    /// Waiting for the QR code to be scanned in Telegram; poll
    /// `GET /api/v1/auth/telegram/{flow_id}`.
    QrPending {
        /// The flow.
        flow_id: String,
        /// The token.
        qr: QrView,
        /// The token as an SVG QR code.
        svg: String,
    },
}

fn telegram_answer(flow_id: &str, step: TelegramStep) -> SigninAnswer {
    let flow_id = flow_id.to_string();
    match step {
        TelegramStep::CodeSent(sent) => SigninAnswer::TelegramCodeSent {
            flow_id,
            code: CodeView {
                delivery: sent.delivery.as_str(),
                next: sent.next.map(|n| n.as_str()),
                length: sent.length,
                timeout_secs: sent.timeout_secs,
            },
        },
        TelegramStep::PasswordNeeded { hint } => SigninAnswer::PasswordNeeded { flow_id, hint },
        TelegramStep::QrPending(token) => SigninAnswer::QrPending {
            flow_id,
            svg: crate::qr::svg(&token.url),
            qr: QrView {
                url: token.url,
                expires_at: token.expires_at,
            },
        },
    }
}

/// The answer of a finished sign-in, with its cookies.
fn signed_in(state: &AppState, done: SignedIn) -> Response {
    let SignedIn {
        login,
        device_token,
        bot_link,
        method,
        new_user,
    } = done;
    let mut res = json(SigninAnswer::SignedIn {
        user: MeResponse::new(
            &login.user,
            &login.membership,
            Some(login.csrf_token.clone()),
        ),
        method: method.to_string(),
        new_user,
        bot_link,
    });
    set_session_cookies(state, &login, &mut res);
    if let Some(token) = device_token {
        let age = i64::try_from(DEVICE_TTL.as_secs()).unwrap_or(i64::MAX);
        if let Some(c) = cookie_header(state, device_cookie_name(state), &token, true, Some(age)) {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    res
}

/// Takes one step of a Telegram flow for this browser and answers where the flow stands.
async fn flow_step(
    state: &AppState,
    ext: &axum::http::Extensions,
    headers: &HeaderMap,
    flow_id: &str,
    input: FlowInput<'_>,
    remember_device: bool,
) -> Result<Response, ApiError> {
    let client = client_of(state, ext, headers);
    let outcome = state
        .signin()
        .telegram_step(flow_id, input, remember_device, &client)
        .await?;
    Ok(match outcome {
        FlowOutcome::Pending(step) => json(telegram_answer(flow_id, step)),
        FlowOutcome::SignedIn(done) => signed_in(state, *done),
    })
}

/// Refuses a sign-in request a browser sent from another site (`403 csrf_failed`).
fn from_our_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.same_origin(headers) {
        Ok(())
    } else {
        Err(ErrorCode::CsrfFailed.into())
    }
}

/// How to sign in.
#[derive(Clone, Copy, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MethodParam {
    /// The service bot's code for a known phone (no code at all on a remembered browser),
    /// Telegram's code for a new one.
    #[default]
    Auto,
    /// Telegram's own code (the MTProto flow), also for a known phone.
    Telegram,
    /// A QR code to scan in the Telegram app (the MTProto flow).
    Qr,
}

/// Starts a sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The phone number of the user's Telegram account, international format.
    pub phone: String,
    /// How (default `auto`).
    #[serde(default)]
    pub method: MethodParam,
    /// The invite token (from an invite link) when `auth.self_service` is `invite`.
    #[serde(default)]
    pub invite: Option<String>,
}

/// Starts a Telegram sign-in with a phone number: a remembered browser is signed in at once;
/// a known phone gets a code from the service bot (or a link to bind it); a new phone, or
/// `method: "telegram"`/`"qr"`, starts Telegram's own flow.
#[utoipa::path(post, path = "/api/v1/auth/start", tag = "auth", request_body = StartRequest, responses(
    (status = 200, description = "`signed_in` (cookies set), `code_sent`, `bind_bot`, `telegram_code_sent` or `qr_pending`", body = SigninAnswer),
    (status = 403, description = "self_service_off, invite_required, csrf_failed (cross-site request)", body = ErrorBody),
    (status = 409, description = "service_bot_missing", body = ErrorBody),
    (status = 422, description = "phone_invalid", body = ErrorBody),
    (status = 429, description = "rate_limited (per phone, for the bot's codes and Telegram's apart: one start a minute, 5 an hour; per address, whatever is sent: 20 in 15 minutes), with Retry-After", body = ErrorBody),
    (status = 502, description = "code_not_sent (the bot could not deliver the code)", body = ErrorBody),
    ConnectErrors))]
async fn start(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<Response, ApiError> {
    from_our_origin(&state, &headers)?;
    let client = client_of(&state, &ext, &headers);
    let method = match req.method {
        MethodParam::Auto => StartMethod::Auto,
        MethodParam::Telegram => StartMethod::Telegram,
        MethodParam::Qr => StartMethod::Qr,
    };
    let outcome = state
        .signin()
        .start(&req.phone, method, req.invite.as_deref(), &client)
        .await?;
    Ok(match outcome {
        StartOutcome::SignedIn(done) => signed_in(&state, *done),
        StartOutcome::CodeSent { bot_username } => json(SigninAnswer::CodeSent {
            via: "bot".into(),
            bot_username,
            code_length: CODE_DIGITS as u32,
            expires_in_secs: CODE_TTL.as_secs(),
            resend_after_secs: state.signin().resend_after().as_secs(),
        }),
        StartOutcome::BindBot { link, bot_username } => json(SigninAnswer::BindBot {
            link,
            bot_username,
            expires_in_secs: NONCE_TTL.as_secs(),
        }),
        StartOutcome::Telegram { flow_id, step } => json(telegram_answer(&flow_id, step)),
    })
}

/// A code from the service bot.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The phone the sign-in started with.
    pub phone: String,
    /// The 6-digit code.
    pub code: String,
    /// Remember this browser for 30 days (no code at the next sign-ins).
    #[serde(default)]
    pub remember_device: bool,
}

/// Checks the service bot's code and signs in.
#[utoipa::path(post, path = "/api/v1/auth/verify", tag = "auth", request_body = VerifyRequest, responses(
    (status = 200, description = "`signed_in` (cookies set)", body = SigninAnswer),
    (status = 401, description = "code_invalid; code_expired (expired, used, or 5 attempts made: start again for a new one)", body = ErrorBody),
    (status = 403, description = "self_service_off, csrf_failed (cross-site request)", body = ErrorBody),
    (status = 422, description = "phone_invalid", body = ErrorBody),
    (status = 429, description = "rate_limited (20 failed sign-ins from the address in 15 minutes), with Retry-After", body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    from_our_origin(&state, &headers)?;
    let client = client_of(&state, &ext, &headers);
    let done = state
        .signin()
        .verify(&req.phone, &req.code, req.remember_device, &client)
        .await?;
    Ok(signed_in(&state, done))
}

/// Whether to remember this browser when a QR flow finishes.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    /// Remember this browser for 30 days.
    #[serde(default)]
    pub remember_device: bool,
}

/// Polls a QR sign-in (the token is regenerated before it expires).
#[utoipa::path(get, path = "/api/v1/auth/telegram/{flow_id}", tag = "auth", params(("flow_id" = String, Path), PollQuery), responses(
    (status = 200, description = "`qr_pending`, `password_needed` or `signed_in`", body = SigninAnswer),
    (status = 403, description = "self_service_off, invite_required", body = ErrorBody),
    ConnectErrors))]
async fn telegram_poll(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiPath(flow): ApiPath<String>,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Response, ApiError> {
    flow_step(
        &state,
        &ext,
        &headers,
        &flow,
        FlowInput::Poll,
        q.remember_device,
    )
    .await
}

/// Cancels a Telegram sign-in flow (its connection is closed).
#[utoipa::path(delete, path = "/api/v1/auth/telegram/{flow_id}", tag = "auth", params(("flow_id" = String, Path)), responses(
    (status = 204, description = "Cancelled"),
    (status = 403, description = "self_service_off, csrf_failed (cross-site request)", body = ErrorBody),
    ConnectErrors))]
async fn telegram_cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(flow): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    from_our_origin(&state, &headers)?;
    state.signin().telegram_cancel(&flow).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Telegram's login code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowCodeRequest {
    /// The code Telegram sent.
    pub code: String,
    /// Remember this browser for 30 days.
    #[serde(default)]
    pub remember_device: bool,
}

/// Submits Telegram's login code.
#[utoipa::path(post, path = "/api/v1/auth/telegram/{flow_id}/code", tag = "auth", params(("flow_id" = String, Path)), request_body = FlowCodeRequest, responses(
    (status = 200, description = "`password_needed` or `signed_in`", body = SigninAnswer),
    (status = 403, description = "self_service_off, invite_required, csrf_failed (cross-site request)", body = ErrorBody),
    ConnectErrors))]
async fn telegram_code(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiPath(flow): ApiPath<String>,
    ApiJson(req): ApiJson<FlowCodeRequest>,
) -> Result<Response, ApiError> {
    from_our_origin(&state, &headers)?;
    let input = FlowInput::Code(&req.code);
    flow_step(&state, &ext, &headers, &flow, input, req.remember_device).await
}

/// Asks Telegram to send the code again by the next method (app → SMS → call).
#[utoipa::path(post, path = "/api/v1/auth/telegram/{flow_id}/resend", tag = "auth", params(("flow_id" = String, Path)), responses(
    (status = 200, description = "`telegram_code_sent`", body = SigninAnswer),
    (status = 403, description = "self_service_off, csrf_failed (cross-site request)", body = ErrorBody),
    ConnectErrors))]
async fn telegram_resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(flow): ApiPath<String>,
) -> Result<Response, ApiError> {
    from_our_origin(&state, &headers)?;
    let sent = state.signin().telegram_resend(&flow).await?;
    Ok(json(telegram_answer(&flow, TelegramStep::CodeSent(sent))))
}

/// The Telegram account's 2FA password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowPasswordRequest {
    /// The cloud password.
    pub password: String,
    /// Remember this browser for 30 days.
    #[serde(default)]
    pub remember_device: bool,
}

/// Submits the Telegram account's 2FA password.
#[utoipa::path(post, path = "/api/v1/auth/telegram/{flow_id}/password", tag = "auth", params(("flow_id" = String, Path)), request_body = FlowPasswordRequest, responses(
    (status = 200, description = "`signed_in`", body = SigninAnswer),
    (status = 403, description = "self_service_off, invite_required, csrf_failed (cross-site request)", body = ErrorBody),
    ConnectErrors))]
async fn telegram_password(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    ApiPath(flow): ApiPath<String>,
    ApiJson(req): ApiJson<FlowPasswordRequest>,
) -> Result<Response, ApiError> {
    from_our_origin(&state, &headers)?;
    let input = FlowInput::Password(&req.password);
    flow_step(&state, &ext, &headers, &flow, input, req.remember_device).await
}

/// What the sign-in page offers.
#[derive(Serialize, ToSchema)]
pub struct SigninOptions {
    /// `off`, `open` or `invite`.
    pub self_service: String,
    /// The service bot's username, when there is one.
    pub service_bot_username: Option<String>,
}

/// What the sign-in page offers (no session needed).
#[utoipa::path(get, path = "/api/v1/auth/options", tag = "auth", responses(
    (status = 200, description = "The sign-in options", body = SigninOptions)))]
async fn options(State(state): State<AppState>) -> Result<Response, ApiError> {
    let bot = state
        .signin()
        .service_bot()
        .await
        .map_err(SigninError::from)?;
    Ok(json(SigninOptions {
        self_service: state.signin().self_service().as_str().to_string(),
        service_bot_username: bot.map(|b| b.username),
    }))
}

/// The signed-in user's Telegram sign-in.
#[derive(Serialize, ToSchema)]
pub struct MySignin {
    /// The service bot, when there is one.
    pub service_bot_username: Option<String>,
    /// True when the user's chat with the service bot is bound (codes come there).
    pub bound: bool,
    /// When it was bound.
    pub bound_at: Option<Timestamp>,
}

/// The signed-in user's binding with the service bot.
#[utoipa::path(get, path = "/api/v1/me/signin", tag = "auth", responses(
    (status = 200, description = "The binding", body = MySignin)))]
async fn my_signin(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let signin = state.signin();
    let bot = signin.service_bot().await.map_err(SigninError::from)?;
    let link = signin.binding(ctx.user.id).await?;
    Ok(json(MySignin {
        service_bot_username: bot.map(|b| b.username),
        bound: link.is_some(),
        bound_at: link.map(|l| l.bound_at),
    }))
}

/// A link that binds the user's Telegram chat with the service bot.
#[derive(Serialize, ToSchema)]
pub struct BotLinkResponse {
    /// `https://t.me/<bot>?start=<nonce>`: single use.
    pub link: String,
    /// The service bot.
    pub bot_username: String,
    /// When it stops working (10 minutes).
    pub expires_at: Timestamp,
}

/// A new link that binds the signed-in user's Telegram chat with the service bot (the bot
/// confirms in Telegram; only the Telegram account the user signed in with can use it).
#[utoipa::path(post, path = "/api/v1/me/bot-link", tag = "auth", responses(
    (status = 200, description = "The link", body = BotLinkResponse),
    (status = 409, description = "service_bot_missing", body = ErrorBody)))]
async fn bot_link(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let offer = state.signin().bot_link(ctx.user.id).await?;
    Ok(json(BotLinkResponse {
        link: offer.link,
        bot_username: offer.bot_username,
        expires_at: offer.expires_at,
    }))
}

/// A remembered browser.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    /// Identifier.
    pub id: TrustedDeviceId,
    /// First seen (remembered).
    pub created_at: Timestamp,
    /// Last signed in with.
    pub last_used_at: Timestamp,
    /// Forgotten at (30 days after it was remembered; never extended).
    pub expires_at: Timestamp,
    /// The browser's `User-Agent`.
    pub browser: Option<String>,
    /// The address it was remembered from.
    pub ip: Option<String>,
    /// True for the browser making this request.
    pub current: bool,
}

/// The signed-in user's remembered browsers.
#[derive(Serialize, ToSchema)]
pub struct DevicesResponse {
    /// Newest first.
    pub devices: Vec<DeviceView>,
}

/// The signed-in user's remembered browsers.
#[utoipa::path(get, path = "/api/v1/me/devices", tag = "auth", responses(
    (status = 200, description = "The devices", body = DevicesResponse)))]
async fn list_devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let current = cookie(&headers, device_cookie_name(&state)).map(token_hash);
    let devices = state.signin().devices(ctx.user.id).await?;
    Ok(json(DevicesResponse {
        devices: devices
            .into_iter()
            .map(|d| DeviceView {
                current: current.as_deref() == Some(d.token_hash.as_str()),
                id: d.id,
                created_at: d.created_at,
                last_used_at: d.last_used_at,
                expires_at: d.expires_at,
                browser: d.user_agent,
                ip: d.ip,
            })
            .collect(),
    }))
}

/// How many devices were forgotten.
#[derive(Serialize, ToSchema)]
pub struct RevokedResponse {
    /// Devices forgotten.
    pub revoked: u64,
}

/// Forgets every remembered browser of the signed-in user (each needs a code again).
#[utoipa::path(delete, path = "/api/v1/me/devices", tag = "auth", responses(
    (status = 200, description = "Forgotten", body = RevokedResponse)))]
async fn revoke_all_devices(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let revoked = state
        .signin()
        .revoke_all_devices(
            ctx.user.id,
            Some((ctx.membership.workspace_id, ctx.user.id)),
            client_ip(&ext).as_deref(),
        )
        .await?;
    Ok(json(RevokedResponse { revoked }))
}

/// Forgets one remembered browser of the signed-in user.
#[utoipa::path(delete, path = "/api/v1/me/devices/{id}", tag = "auth", params(("id" = i64, Path)), responses(
    (status = 204, description = "Forgotten")))]
async fn revoke_device(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .signin()
        .revoke_device(&ctx, TrustedDeviceId(id), client_ip(&ext).as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The service bot in force.
#[derive(Serialize, ToSchema)]
pub struct ServiceBotView {
    /// The bot.
    pub id: BotId,
    /// Its username.
    pub username: String,
    /// `settings` (chosen in Settings) or `config` (`auth.service_bot`).
    pub source: String,
}

/// The installation's sign-in settings.
#[derive(Serialize, ToSchema)]
pub struct SigninSettingsView {
    /// `auth.self_service`: `off`, `open` or `invite`.
    pub self_service: String,
    /// The service bot in force, if any.
    pub service_bot: Option<ServiceBotView>,
    /// True when the caller may change them (an owner of the main workspace).
    pub can_manage: bool,
}

async fn settings_view(
    state: &AppState,
    ctx: &switchboard_services::SessionContext,
) -> Result<Response, ApiError> {
    let signin = state.signin();
    let view = signin.view().await?;
    Ok(json(SigninSettingsView {
        self_service: view.self_service.as_str().to_string(),
        service_bot: view.service_bot.map(|b| ServiceBotView {
            id: b.id,
            username: b.username,
            source: view.service_bot_source.unwrap_or("config").to_string(),
        }),
        can_manage: signin.is_installation_owner(ctx).await?,
    }))
}

/// The installation's sign-in settings (owners and admins).
#[utoipa::path(get, path = "/api/v1/auth/settings", tag = "auth", responses(
    (status = 200, description = "The settings", body = SigninSettingsView)))]
async fn settings(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    settings_view(&state, &ctx).await
}

/// Which bot sends sign-in codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceBotRequest {
    /// A bot of the main workspace, or null to fall back to `auth.service_bot`.
    pub bot_id: Option<BotId>,
}

/// Designates the service bot (owners of the main workspace; audited).
#[utoipa::path(put, path = "/api/v1/auth/settings/service-bot", tag = "auth", request_body = ServiceBotRequest, responses(
    (status = 200, description = "The settings", body = SigninSettingsView),
    (status = 422, description = "service_bot_invalid (not a bot of the main workspace)", body = ErrorBody)))]
async fn set_service_bot(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<ServiceBotRequest>,
) -> Result<Response, ApiError> {
    state
        .signin()
        .set_service_bot(&ctx, req.bot_id, client_ip(&ext).as_deref())
        .await?;
    settings_view(&state, &ctx).await
}

/// A new invite.
#[derive(Serialize, ToSchema)]
pub struct InviteResponse {
    /// The sign-in page with the invite (`/login?invite=<token>`), to send to the person.
    pub link: String,
    /// The token (shown once; single use).
    pub token: String,
    /// When it stops working (7 days).
    pub expires_at: Timestamp,
}

/// Creates a single-use sign-up invite (owners of the main workspace; audited).
#[utoipa::path(post, path = "/api/v1/auth/invites", tag = "auth", responses(
    (status = 201, description = "The invite", body = InviteResponse)))]
async fn create_invite(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Admin(ctx): Admin,
) -> Result<Response, ApiError> {
    let (token, invite) = state
        .signin()
        .create_invite(&ctx, client_ip(&ext).as_deref())
        .await?;
    let mut res = json(InviteResponse {
        link: format!("/login?invite={token}"),
        token,
        expires_at: invite.expires_at,
    });
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}
