//! The JSON API under `/api/v1`.

mod accounts;
mod auth;
mod bots;
mod inbox;
mod system;
mod team;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(auth::routes())
        .merge(bots::routes())
        .merge(inbox::routes())
        .merge(team::routes())
        .merge(system::routes())
}
