//! The JSON API under `/api/v1`.

mod accounts;
mod auth;
mod bots;
mod inbox;
mod leads;
mod posts;
mod signin;
pub(crate) mod system;
mod team;
mod users;

use crate::{AppState, WebSettings};
use utoipa_axum::router::OpenApiRouter;

/// Every API route; routes that take more than a JSON body set their own body limit.
pub(crate) fn routes(settings: &WebSettings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(auth::routes())
        .merge(bots::routes())
        .merge(inbox::routes(settings))
        .merge(leads::routes())
        .merge(team::routes())
        .merge(system::routes())
        .merge(signin::routes())
        .merge(posts::routes())
        .merge(users::routes())
}
