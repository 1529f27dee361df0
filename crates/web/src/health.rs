//! Liveness, readiness and metrics endpoints.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Process up", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness report.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// True when everything below is fine.
    pub ready: bool,
    /// Database reachable.
    pub database: bool,
    /// Database backend name.
    pub backend: String,
    /// Every required background worker runs.
    pub workers: bool,
    /// The required workers that do not run (no secrets: names, states, error codes).
    pub failing: Vec<crate::api::system::WorkerView>,
}

/// The database answers and every required background worker runs (the supervisor's view).
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store().ping().await.is_ok();
    let workers = state.workers().readiness();
    let ready = database && workers.ready;
    let body = Readiness {
        ready,
        database,
        backend: state.store().backend().to_string(),
        workers: workers.ready,
        failing: workers.failing.into_iter().map(Into::into).collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", body = String,
    content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.0.metrics.render(),
    )
        .into_response()
}
