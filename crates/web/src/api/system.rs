//! Administrative views of the running system: audit log, the supervisor's workers with the
//! workspace's accounts and bots and their health, and control actions.

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody, json};
use crate::session::Admin;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::{AuditEvent, AuditEventId, ErrorCode};
use switchboard_services::accounts::RestartError;
use switchboard_services::{WorkerKind, WorkerState, WorkerStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(status))
        .routes(routes!(control))
}

/// Paging of the audit log.
#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Return events older than this id.
    pub before: Option<i64>,
    /// At most this many (1–200, default 50).
    pub limit: Option<u32>,
}

/// A page of audit events.
#[derive(Serialize, ToSchema)]
pub struct AuditResponse {
    /// Events, newest first.
    pub events: Vec<AuditEvent>,
}

/// The workspace's audit log, newest first (admins only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "system", params(AuditQuery), responses(
    (status = 200, description = "Events", body = AuditResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let events = state
        .store()
        .list_audit(
            ctx.membership.workspace_id,
            q.before.map(AuditEventId),
            limit,
        )
        .await?;
    Ok(json(AuditResponse { events }))
}

/// A worker's state (`backing_off`: waiting until `next_attempt_at` before a restart).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStateView {
    /// Started, not yet doing its work.
    Starting,
    /// Doing its work.
    Running,
    /// Failed; waiting before the next restart.
    BackingOff,
    /// Ended.
    Stopped,
    /// Gave up; not restarted until started again.
    Failed,
}

/// What a worker does.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKindView {
    /// Server-wide work: the outbox, read receipts, the purgers.
    System,
    /// One Telegram account's client.
    Account,
    /// One bot's updates.
    Bot,
}

/// A background worker under the supervisor.
#[derive(Serialize, ToSchema)]
pub struct WorkerView {
    /// Stable name, e.g. `outbox`, `account:7`.
    pub name: String,
    /// What it does.
    pub kind: WorkerKindView,
    /// Whether `/readyz` needs it running.
    pub required: bool,
    /// Where it is in its life.
    pub state: WorkerStateView,
    /// Restarts after failures.
    pub restarts: u32,
    /// The last failure (a stable code or a short sentence, never a secret).
    pub last_error: Option<String>,
    /// While backing off: when the next attempt starts (ms since the epoch).
    pub next_attempt_at: Option<i64>,
    /// When the state last changed (ms since the epoch).
    pub since: i64,
}

impl From<WorkerStatus> for WorkerView {
    fn from(w: WorkerStatus) -> Self {
        Self {
            name: w.name,
            kind: match w.kind {
                WorkerKind::System => WorkerKindView::System,
                WorkerKind::Account => WorkerKindView::Account,
                WorkerKind::Bot => WorkerKindView::Bot,
            },
            required: w.required,
            state: match w.state {
                WorkerState::Starting => WorkerStateView::Starting,
                WorkerState::Running => WorkerStateView::Running,
                WorkerState::BackingOff => WorkerStateView::BackingOff,
                WorkerState::Stopped => WorkerStateView::Stopped,
                WorkerState::Failed => WorkerStateView::Failed,
            },
            restarts: w.restarts,
            last_error: w.last_error,
            next_attempt_at: w.next_attempt_at.map(|t| t.0),
            since: w.since.0,
        }
    }
}

/// An account's worker, with what it did.
#[derive(Serialize, ToSchema)]
pub struct AccountWorkerView {
    /// The worker under the supervisor.
    #[serde(flatten)]
    pub worker: WorkerView,
    /// Connection attempts since the worker started.
    pub connects: u32,
    /// Messages ingested by this worker.
    pub ingested: u64,
}

/// An account of the workspace and its health.
#[derive(Serialize, ToSchema)]
pub struct AccountHealth {
    /// The account.
    pub account_id: i64,
    /// Its name in Telegram.
    pub name: String,
    /// Its phone number, if known.
    pub phone: Option<String>,
    /// Connection health: `connecting`, `connected`, `reconnecting`, `flood_wait`,
    /// `unauthorized`, `banned`, `stopped`.
    pub status: String,
    /// Why (a stable code or a short sentence).
    pub status_detail: Option<String>,
    /// While `flood_wait`: until when (ms since the epoch).
    pub flood_wait_until: Option<i64>,
    /// Whether it should run.
    pub active: bool,
    /// Whether its worker runs (or waits to reconnect).
    pub running: bool,
    /// Its worker, if started.
    pub worker: Option<AccountWorkerView>,
}

/// A bot of the workspace and its health.
#[derive(Serialize, ToSchema)]
pub struct BotHealth {
    /// The bot.
    pub bot_id: i64,
    /// Its @username.
    pub username: String,
    /// Health: `connecting`, `connected`, `reconnecting`, `unauthorized`, `stopped`.
    pub status: String,
    /// Why (a stable code or a short sentence).
    pub status_detail: Option<String>,
    /// Whether it should run.
    pub active: bool,
    /// Whether its worker runs (or waits to reconnect).
    pub running: bool,
    /// Its worker, if started.
    pub worker: Option<WorkerView>,
}

/// System status.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// Database backend.
    pub backend: String,
    /// True when every required worker runs (what `/readyz` reports for the workers).
    pub ready: bool,
    /// The server-wide workers.
    pub workers: Vec<WorkerView>,
    /// Every account of the workspace: stored health and its worker, if started.
    pub accounts: Vec<AccountHealth>,
    /// Every bot of the workspace: stored health and its worker, if started.
    pub bots: Vec<BotHealth>,
}

/// What a control action did.
#[derive(Serialize, ToSchema)]
pub struct ControlResponse {
    /// The action.
    pub action: String,
    /// Account clients restarted.
    pub restarted: usize,
}

/// The server-wide workers, the workspace's accounts and bots with their health (admins only).
#[utoipa::path(get, path = "/api/v1/system/status", tag = "system", responses(
    (status = 200, description = "Status", body = StatusResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn status(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let supervisor = state.accounts().supervisor();
    let accounts = state
        .account_store()
        .list_accounts(ws)
        .await?
        .into_iter()
        .map(|a| {
            let name = match &a.last_name {
                Some(last) if !last.is_empty() => format!("{} {last}", a.first_name),
                _ => a.first_name.clone(),
            };
            AccountHealth {
                account_id: a.id.0,
                name,
                phone: a.phone.clone(),
                status: a.status.as_str().to_string(),
                status_detail: a.status_detail.clone(),
                flood_wait_until: a.flood_wait_until.map(|t| t.0),
                active: a.active,
                running: supervisor.is_running(a.id),
                worker: supervisor.worker(a.id).map(|w| AccountWorkerView {
                    worker: w.worker.into(),
                    connects: w.connects,
                    ingested: w.ingested,
                }),
            }
        })
        .collect();
    let bots = state
        .bots()
        .list(ws)
        .await?
        .into_iter()
        .map(|b| BotHealth {
            bot_id: b.id.0,
            username: b.username.clone(),
            status: b.status.as_str().to_string(),
            status_detail: b.status_detail.clone(),
            active: b.active,
            running: state.bots().is_running(b.id),
            worker: state.bots().worker(b.id).map(WorkerView::from),
        })
        .collect();
    let workers = state.workers();
    Ok(json(StatusResponse {
        backend: state.store().backend().to_string(),
        ready: workers.healthy(),
        workers: workers
            .statuses()
            .into_iter()
            .filter(|w| w.kind == WorkerKind::System)
            .map(WorkerView::from)
            .collect(),
        accounts,
        bots,
    }))
}

/// A control action.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// `restart_clients`: stop and start the account clients of the caller's workspace.
    pub action: String,
}

/// Runs a control action on the caller's workspace (owners and admins only, audited, at most
/// once per 30 seconds per workspace).
#[utoipa::path(post, path = "/api/v1/system/control", tag = "system", request_body = ControlRequest, responses(
    (status = 200, description = "What was done", body = ControlResponse),
    (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
    (status = 422, description = "validation_failed: unknown action", body = ErrorBody)))]
async fn control(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    crate::error::ApiJson(req): crate::error::ApiJson<ControlRequest>,
) -> Result<Response, ApiError> {
    if req.action != "restart_clients" {
        return Err(ApiError::from(ErrorCode::ValidationFailed));
    }
    let n = match state
        .accounts()
        .supervisor()
        .restart_workspace(ctx.membership.workspace_id)
        .await
    {
        Ok(n) => n,
        Err(RestartError::TooSoon { retry_after_secs }) => {
            return Err(ApiError::from(ErrorCode::RateLimited).retry_after(retry_after_secs));
        }
        Err(RestartError::Store(e)) => return Err(e.into()),
    };
    switchboard_services::audit::Audit::new("system.restart_clients")
        .workspace(ctx.membership.workspace_id)
        .actor(ctx.user.id)
        .details(serde_json::json!({"restarted": n}))
        .record(state.store())
        .await;
    Ok(json(ControlResponse {
        action: req.action,
        restarted: n,
    }))
}
