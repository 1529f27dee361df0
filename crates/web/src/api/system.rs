//! Administrative views of the running system: audit log and worker status.

use crate::AppState;
use crate::error::{ApiError, ErrorBody, json};
use crate::session::Admin;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::{AuditEvent, AuditEventId};
use switchboard_services::WorkerStatus;
use switchboard_services::accounts::RestartError;
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
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<AuditEvent>,
}

/// The workspace's audit log, newest first (admins only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "system", params(AuditQuery), responses(
    (status = 200, description = "Events", body = AuditResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    Query(q): Query<AuditQuery>,
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
    #[schema(value_type = Vec<Object>)]
    pub workers: Vec<WorkerStatus>,
    /// Every account of the workspace: stored health and its worker, if running.
    #[schema(value_type = Vec<Object>)]
    pub accounts: Vec<serde_json::Value>,
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
        .map(|a| {
            let w = workers.iter().find(|w| w.account_id == a.id);
            serde_json::json!({
                "account_id": a.id.0,
                "status": a.status.as_str(),
                "status_detail": a.status_detail,
                "flood_wait_until": a.flood_wait_until.map(|t| t.0),
                "active": a.active,
                "running": state.accounts().supervisor().is_running(a.id),
                "worker": w,
            })
        })
        .collect();
    Ok(json(StatusResponse {
        backend: state.store().backend().to_string(),
        workers: state.workers().statuses(),
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
    (status = 200, description = "`{action, restarted}`", body = Object),
    (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
    (status = 422, description = "validation_failed: unknown action", body = ErrorBody)))]
async fn control(
    State(state): State<AppState>,
    Admin(ctx): Admin,
    crate::error::ApiJson(req): crate::error::ApiJson<ControlRequest>,
) -> Result<Response, ApiError> {
    if req.action != "restart_clients" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ));
    }
    let n = match state
        .accounts()
        .supervisor()
        .restart_workspace(ctx.membership.workspace_id)
        .await
    {
        Ok(n) => n,
        Err(RestartError::TooSoon { retry_after_secs }) => {
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                .retry_after(retry_after_secs));
        }
        Err(RestartError::Store(e)) => return Err(e.into()),
    };
    switchboard_services::audit::Audit::new("system.restart_clients")
        .workspace(ctx.membership.workspace_id)
        .actor(ctx.user.id)
        .details(serde_json::json!({"restarted": n}))
        .record(state.store())
        .await;
    Ok(json(
        serde_json::json!({"action": req.action, "restarted": n}),
    ))
}
