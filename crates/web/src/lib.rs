//! Switchboard's web layer: the JSON API under `/api/v1` (documented by an OpenAPI 3 document
//! generated from the handlers), the HTML pages and their embedded assets, `/healthz`,
//! `/readyz` and `/metrics`.

pub mod api;
pub mod client_addr;
pub mod error;
pub mod health;
mod inbox_page;
mod leads_page;
pub mod locale;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod qr;
mod schedule_page;
pub mod session;
mod signin_page;
mod team_page;
pub mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use std::sync::Arc;
use switchboard_domain::ErrorCode;
use switchboard_domain::{AccountStore, Store};
use switchboard_files::FileStore;
use switchboard_services::bots::BotService;
use switchboard_services::connect::AccountService;
use switchboard_services::leads::Leads;
use switchboard_services::monitor::Monitor;
use switchboard_services::schedule::Scheduler;
use switchboard_services::signin::SigninService;
use switchboard_services::user_admin::UserAdmin;
use switchboard_services::{AuthService, EventBus, Inbox, Team, Workers};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Web settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Mark cookies `Secure` and use the `__Host-` prefix (when served over https).
    pub secure_cookies: bool,
    /// Largest JSON body accepted, in bytes.
    pub max_json_bytes: usize,
    /// Largest uploaded attachment, in bytes.
    pub max_upload_bytes: usize,
    /// The origin of `server.public_url` (see [`session::public_origin`]): when set, the only
    /// origin browsers may write from.
    pub public_origin: Option<String>,
    /// Reverse proxies whose `Forwarded`/`X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            max_json_bytes: 64 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            public_origin: None,
            trusted_proxies: Vec::new(),
        }
    }
}

struct Inner {
    store: Arc<dyn Store>,
    auth: Arc<AuthService>,
    workers: Workers,
    events: EventBus,
    account_store: Arc<dyn AccountStore>,
    accounts: Arc<AccountService>,
    inbox: Inbox,
    bots: BotService,
    files: FileStore,
    leads: Leads,
    signin: SigninService,
    scheduler: Scheduler,
    users: UserAdmin,
    settings: WebSettings,
    metrics: Arc<metrics::Metrics>,
    openapi: String,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.0.store
    }

    /// The sign-in service.
    pub fn auth(&self) -> &AuthService {
        &self.0.auth
    }

    /// The background-work supervisor.
    pub fn workers(&self) -> &Workers {
        &self.0.workers
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.0.events
    }

    /// The account storage.
    pub fn account_store(&self) -> &dyn AccountStore {
        &*self.0.account_store
    }

    /// Account connection and supervision.
    pub fn accounts(&self) -> &AccountService {
        &self.0.accounts
    }

    /// The operator inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.0.inbox
    }

    /// The team service (members, roles, removal).
    pub fn team(&self) -> Team {
        Team::new(
            Arc::clone(&self.0.store),
            Arc::clone(&self.0.auth),
            self.0.inbox.clone(),
        )
    }

    /// Bots (Bot API).
    pub fn bots(&self) -> &BotService {
        &self.0.bots
    }

    /// The file store (attachments and downloaded media).
    pub fn files(&self) -> &FileStore {
        &self.0.files
    }

    /// Lead monitoring: tasks, sources and leads.
    pub fn leads(&self) -> &Leads {
        &self.0.leads
    }

    /// Telegram sign-in.
    pub fn signin(&self) -> &SigninService {
        &self.0.signin
    }

    /// Autoposting: scheduled posts and their runs.
    pub fn scheduler(&self) -> &Scheduler {
        &self.0.scheduler
    }

    /// The admin's user controls.
    pub fn users(&self) -> &UserAdmin {
        &self.0.users
    }

    /// Web settings.
    pub fn settings(&self) -> &WebSettings {
        &self.0.settings
    }

    /// True when a request comes from our own origin (see [`session::same_origin`]).
    pub fn same_origin(&self, headers: &axum::http::HeaderMap) -> bool {
        session::same_origin(headers, self.0.settings.public_origin.as_deref())
    }

    /// Name of the session cookie (`__Host-` prefixed when secure).
    pub fn cookie_name(&self) -> &'static str {
        if self.0.settings.secure_cookies {
            "__Host-sb_session"
        } else {
            "sb_session"
        }
    }
}

/// The OpenAPI document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "JSON API of Switchboard. Cookie-authenticated writes need the `X-CSRF-Token` header. Errors are `{\"error\":{\"code\",\"message\"}}`."
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail))
)]
struct ApiDoc;

/// What the web layer serves from: the store and the services.
pub struct Services {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Sign-in.
    pub auth: Arc<AuthService>,
    /// Background workers.
    pub workers: Workers,
    /// Real-time events.
    pub events: EventBus,
    /// Account storage.
    pub account_store: Arc<dyn AccountStore>,
    /// Account connection and supervision.
    pub accounts: Arc<AccountService>,
    /// The operator inbox.
    pub inbox: Inbox,
    /// Bots.
    pub bots: BotService,
    /// The file store.
    pub files: FileStore,
    /// Lead monitoring.
    pub monitor: Monitor,
    /// Telegram sign-in.
    pub signin: SigninService,
    /// Autoposting.
    pub scheduler: Scheduler,
    /// The admin's user controls.
    pub users: UserAdmin,
}

/// Builds the whole application router.
pub fn router(services: Services, settings: WebSettings, metrics: metrics::Metrics) -> Router {
    let Services {
        store,
        auth,
        workers,
        events,
        account_store,
        accounts,
        inbox,
        bots,
        files,
        monitor,
        signin,
        scheduler,
        users,
    } = services;
    let leads = Leads::new(
        Arc::clone(&store),
        Arc::clone(&account_store),
        monitor,
        inbox.clone(),
    );
    let (api_router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api::routes(&settings))
        .merge(health::routes())
        .merge(ws::routes())
        .split_for_parts();
    openapi::document_common_errors(&mut openapi);
    let openapi_json = openapi.to_pretty_json().unwrap_or_default();
    let metrics = Arc::new(metrics);
    let max_json = settings.max_json_bytes;
    let trusted_proxies = Arc::new(settings.trusted_proxies.clone());
    let state = AppState(Arc::new(Inner {
        store,
        auth,
        workers,
        events,
        account_store,
        accounts,
        inbox,
        bots,
        files,
        leads,
        signin,
        scheduler,
        users,
        settings,
        metrics: Arc::clone(&metrics),
        openapi: openapi_json,
    }));
    Router::new()
        .merge(api_router)
        .merge(pages::routes())
        .route("/api/v1/openapi.json", axum::routing::get(openapi_document))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_json))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::CONTENT_SECURITY_POLICY),
        ))
        .layer(axum::middleware::from_fn(locale::localize_errors))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            client_addr::attach,
        ))
        .with_state(state)
}

async fn openapi_document(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state.0.openapi.clone(),
    )
}

async fn fallback(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        error::ApiError::not_found().into_response()
    } else {
        pages::not_found_page(&headers).into_response()
    }
}

async fn method_not_allowed() -> axum::response::Response {
    error::ApiError::from(ErrorCode::MethodNotAllowed).into_response()
}
