//! Administrative views of the running system: audit log and worker status.

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody, json};
use crate::session::Admin;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::{AccountId, AccountStatus, AuditEvent, AuditEventId, Timestamp};
use switchboard_services::accounts::RestartError;
use switchboard_services::{WorkerState, WorkerStatus};
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

/// System status.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// Database backend.
    pub backend: String,
    /// Background workers.
    pub workers: Vec<WorkerView>,
    /// Every account of the workspace: stored health and its worker, if running.
    pub accounts: Vec<AccountHealth>,
}

/// A background worker's status.
#[derive(Serialize, ToSchema)]
pub struct WorkerView {
    /// Stable name, e.g. `web_session_purger`.
    pub name: String,
    /// `running`, `backoff` or `stopped`.
    #[schema(value_type = String)]
    pub state: WorkerState,
    /// How many times it was restarted after a failure.
    pub restarts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the state last changed.
    pub since: Timestamp,
}

impl From<WorkerStatus> for WorkerView {
    fn from(w: WorkerStatus) -> Self {
        Self {
            name: w.name,
            state: w.state,
            restarts: w.restarts,
            last_error: w.last_error,
            since: w.since,
        }
    }
}

/// An account's stored health and its worker.
#[derive(Serialize, ToSchema)]
pub struct AccountHealth {
    /// The account.
    pub account_id: AccountId,
    /// Stored health.
    pub status: AccountStatus,
    /// Why.
    pub status_detail: Option<String>,
    /// End of a FloodWait.
    pub flood_wait_until: Option<Timestamp>,
    /// Supervised.
    pub active: bool,
    /// Its client is running now.
    pub running: bool,
    /// Its worker, if running.
    pub worker: Option<AccountWorkerView>,
}

/// The live state of an account's worker.
#[derive(Serialize, ToSchema)]
pub struct AccountWorkerView {
    /// The account.
    pub account_id: AccountId,
    /// Its workspace.
    pub workspace_id: switchboard_domain::WorkspaceId,
    /// Current health.
    pub status: AccountStatus,
    /// Why.
    pub detail: Option<String>,
    /// Connection attempts since the worker started.
    pub connects: u32,
    /// Messages ingested by this worker.
    pub ingested: u64,
}

/// What a control action did.
#[derive(Serialize, ToSchema)]
pub struct ControlResponse {
    /// The action.
    pub action: String,
    /// Account clients restarted.
    pub restarted: usize,
}

/// Health of the database and every background worker (admins only).
#[utoipa::path(get, path = "/api/v1/system/status", tag = "system", responses(
    (status = 200, description = "Status", body = StatusResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn status(State(state): State<AppState>, Admin(ctx): Admin) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let workers = state.accounts().supervisor().workers();
    let accounts = state
        .account_store()
        .list_accounts(ws)
        .await?
        .into_iter()
        .map(|a| AccountHealth {
            running: state.accounts().supervisor().is_running(a.id),
            worker: workers
                .iter()
                .find(|w| w.account_id == a.id)
                .map(|w| AccountWorkerView {
                    account_id: w.account_id,
                    workspace_id: w.workspace_id,
                    status: w.status,
                    detail: w.detail.clone(),
                    connects: w.connects,
                    ingested: w.ingested,
                }),
            account_id: a.id,
            status: a.status,
            status_detail: a.status_detail,
            flood_wait_until: a.flood_wait_until,
            active: a.active,
        })
        .collect();
    Ok(json(StatusResponse {
        backend: state.store().backend().to_string(),
        workers: state
            .workers()
            .statuses()
            .into_iter()
            .map(WorkerView::from)
            .collect(),
        accounts,
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
