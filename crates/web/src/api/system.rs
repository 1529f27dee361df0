//! Administrative views of the running system: audit log and worker status.

use crate::AppState;
use crate::error::{ApiError, ErrorBody, json};
use crate::session::Admin;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_domain::{AuditEvent, AuditEventId};
use switchboard_services::WorkerStatus;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(status))
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
}

/// Health of the database and every background worker (admins only).
#[utoipa::path(get, path = "/api/v1/system/status", tag = "system", responses(
    (status = 200, description = "Status", body = StatusResponse),
    (status = 403, description = "forbidden", body = ErrorBody)))]
async fn status(State(state): State<AppState>, Admin(_ctx): Admin) -> Result<Response, ApiError> {
    Ok(json(StatusResponse {
        backend: state.store().backend().to_string(),
        workers: state.workers().statuses(),
    }))
}
