//! Bots (`/api/v1/bots/*`): list, add by token, start, stop, delete (admins; audited), and the
//! Bot API webhook `POST /tg/hook/{hook_id}` (no cookie: authenticated by the per-bot secret
//! header, compared in constant time). The token is never part of any answer.

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody, json};
use crate::session::Admin;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json as j;
use switchboard_domain::ErrorCode;
use switchboard_domain::{Bot, BotId, BotMode, BotStatus, Timestamp};
use switchboard_services::audit::Audit;
use switchboard_services::bots::{BotError, HookOutcome};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest webhook update accepted: a long message with its entities and the quoted message
/// it replies to is well over the JSON limit of the rest of the API.
pub(crate) const WEBHOOK_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    let hook = OpenApiRouter::new()
        .routes(routes!(webhook))
        .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY_BYTES));
    OpenApiRouter::new()
        .merge(hook)
        .routes(routes!(list_bots, add_bot))
        .routes(routes!(bot_action))
        .routes(routes!(delete_bot))
}

impl From<BotError> for ApiError {
    fn from(e: BotError) -> Self {
        let code = e.code();
        if let Some(s) = e.retry_after() {
            return ApiError::from(ErrorCode::FloodWait).retry_after(s);
        }
        match &e {
            BotError::TokenInvalid | BotError::TokenRejected => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
            }
            BotError::Exists => ApiError::new(StatusCode::CONFLICT, code),
            BotError::NotFound => ApiError::not_found(),
            // The proxy, not Telegram, failed: say which (`telegram_proxy_*`), as accounts do.
            BotError::Telegram(_) if e.is_proxy_failure() => {
                ApiError::new(StatusCode::BAD_GATEWAY, code)
            }
            BotError::Telegram(_) => ApiError::from(ErrorCode::BotApiFailed),
            BotError::Store(_) | BotError::Vault(_) => ApiError::internal(),
        }
    }
}

/// A bot as the API shows it (never its token).
#[derive(Serialize, ToSchema)]
pub struct BotView {
    /// Identifier.
    pub id: BotId,
    /// Telegram's id of the bot.
    pub telegram_bot_id: i64,
    /// `@username` without the `@`.
    pub username: String,
    /// Display name.
    pub first_name: String,
    /// How updates arrive.
    pub mode: BotMode,
    /// Health.
    pub status: BotStatus,
    /// Why, for `reconnecting` and `unauthorized`.
    pub status_detail: Option<String>,
    /// Supervised (false when stopped).
    pub active: bool,
    /// Its worker is running now.
    pub running: bool,
    /// Highest `update_id` stored.
    pub last_update_id: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
}

impl BotView {
    fn new(state: &AppState, b: Bot) -> Self {
        Self {
            running: state.bots().is_running(b.id),
            id: b.id,
            telegram_bot_id: b.telegram_bot_id,
            username: b.username,
            first_name: b.first_name,
            mode: b.mode,
            status: b.status,
            status_detail: b.status_detail,
            active: b.active,
            last_update_id: b.last_update_id,
            created_at: b.created_at,
        }
    }
}

/// The bots of the workspace.
#[derive(Serialize, ToSchema)]
pub struct BotsResponse {
    /// By id.
    pub bots: Vec<BotView>,
}

/// One bot.
#[derive(Serialize, ToSchema)]
pub struct BotResponse {
    /// The bot.
    pub bot: BotView,
}

/// The webhook's answer to Telegram.
#[derive(Serialize, ToSchema)]
pub struct HookAck {
    /// Always true.
    pub ok: bool,
}

/// Bots of the workspace with their health.
#[utoipa::path(get, path = "/api/v1/bots", tag = "bots", responses(
    (status = 200, description = "The bots", body = BotsResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn list_bots(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    let bots = state.bots().list(ctx.membership.workspace_id).await?;
    Ok(json(BotsResponse {
        bots: bots.into_iter().map(|b| BotView::new(&state, b)).collect(),
    }))
}

/// A bot token from @BotFather.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBotRequest {
    /// `<bot id>:<secret>`; never echoed back.
    pub token: String,
}

/// Adds a bot by token (checked with `getMe`; stored sealed) and starts receiving its updates.
#[utoipa::path(post, path = "/api/v1/bots", tag = "bots", request_body = AddBotRequest, responses(
    (status = 201, description = "The bot", body = BotResponse),
    (status = 409, description = "bot_exists", body = ErrorBody),
    (status = 422, description = "bot_token_invalid, bot_token_rejected", body = ErrorBody),
    (status = 502, description = "bot_api_failed; telegram_proxy_unreachable, telegram_proxy_auth_failed, telegram_proxy_failed when the SOCKS5 proxy failed", body = ErrorBody)))]
async fn add_bot(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiJson(req): ApiJson<AddBotRequest>,
) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let bot = state.bots().add(ws, &req.token).await?;
    Audit::new("bot.add")
        .workspace(ws)
        .actor(ctx.user.id)
        .target(format!("bot:{}", bot.id.0))
        .details(j!({"username": bot.username, "mode": bot.mode.as_str()}))
        .record(state.store())
        .await;
    Ok((
        StatusCode::CREATED,
        json(BotResponse {
            bot: BotView::new(&state, bot),
        }),
    )
        .into_response())
}

/// Starts or stops a bot (`action` is `start` or `stop`).
#[utoipa::path(post, path = "/api/v1/bots/{id}/{action}", tag = "bots",
    params(("id" = i64, Path), ("action" = String, Path, description = "start or stop")), responses(
    (status = 200, description = "The bot", body = BotResponse), (status = 404, description = "not_found", body = ErrorBody)))]
async fn bot_action(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> Result<Response, ApiError> {
    let (ws, id) = (ctx.membership.workspace_id, BotId(id));
    let bot = match action.as_str() {
        "start" => state.bots().start(ws, id).await?,
        "stop" => state.bots().stop(ws, id).await?,
        _ => return Err(ApiError::not_found()),
    };
    Audit::new(if action == "start" {
        "bot.start"
    } else {
        "bot.stop"
    })
    .workspace(ws)
    .actor(ctx.user.id)
    .target(format!("bot:{}", id.0))
    .record(state.store())
    .await;
    Ok(json(BotResponse {
        bot: BotView::new(&state, bot),
    }))
}

/// Deletes a bot with its chats and messages (its webhook is removed).
#[utoipa::path(delete, path = "/api/v1/bots/{id}", tag = "bots", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_bot(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let ws = ctx.membership.workspace_id;
    state.bots().delete(ws, BotId(id)).await?;
    Audit::new("bot.delete")
        .workspace(ws)
        .actor(ctx.user.id)
        .target(format!("bot:{id}"))
        .record(state.store())
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The Bot API webhook. Telegram sends `X-Telegram-Bot-Api-Secret-Token`; the raw update is
/// stored before the 200 answer, and a repeated `update_id` is acknowledged without storing.
/// The body may be up to 2 MiB.
#[utoipa::path(post, path = "/tg/hook/{hook_id}", tag = "bots", params(("hook_id" = String, Path)),
    request_body(content = Object, description = "a Bot API `Update`"), responses(
    (status = 200, description = "Stored (or a duplicate)", body = HookAck),
    (status = 400, description = "malformed_update", body = ErrorBody),
    (status = 401, description = "unauthenticated: unknown hook, wrong or missing secret", body = ErrorBody),
    (status = 413, description = "payload_too_large: over 2 MiB", body = ErrorBody)))]
async fn webhook(
    State(state): State<AppState>,
    ApiPath(hook_id): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(ErrorCode::PayloadTooLarge)
        } else {
            ApiError::from(ErrorCode::MalformedUpdate)
        }
    })?;
    let secret = headers
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes());
    match state.bots().receive_hook(&hook_id, secret, &body).await? {
        HookOutcome::Accepted(_) => Ok(json(HookAck { ok: true })),
        // The same answer for an unknown hook and a wrong secret: hooks cannot be probed.
        HookOutcome::UnknownHook | HookOutcome::BadSecret => Err(ApiError::unauthenticated()),
        HookOutcome::Malformed => Err(ApiError::from(ErrorCode::MalformedUpdate)),
    }
}
