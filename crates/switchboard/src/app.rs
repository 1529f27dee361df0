//! Wiring: opens the store chosen by the database URL, builds the services and the web router,
//! starts the background workers and serves HTTP until shut down.

use crate::config::Config;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Store, Timestamp};
use switchboard_services::{AuthPolicy, AuthService, EventBus, Workers};
use switchboard_web::WebSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Opens the database named by the configuration and runs pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    let redacted = crate::config::redact_url(&url);
    if url.starts_with("sqlite:") {
        let opts = switchboard_store_sqlite::SqliteOptions {
            max_connections: config.database.max_connections.max(1),
            ..Default::default()
        };
        let store = switchboard_store_sqlite::connect(&url, &opts)
            .await
            .with_context(|| format!("opening SQLite database {redacted}"))?;
        store
            .migrate()
            .await
            .context("migrating the SQLite database")?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let opts = switchboard_store_postgres::PgOptions {
            max_connections: config.database.max_connections.max(1),
            ..Default::default()
        };
        let store = switchboard_store_postgres::connect(&url, &opts)
            .await
            .with_context(|| format!("connecting to PostgreSQL {redacted}"))?;
        store
            .migrate()
            .await
            .context("migrating the PostgreSQL database")?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("unsupported database URL {redacted}: use sqlite://… or postgres://…")
    }
}

/// The sign-in policy from the configuration.
pub fn auth_policy(config: &Config) -> AuthPolicy {
    AuthPolicy {
        lock_after: config.auth.lock_after.max(1),
        lock_for: Duration::from_secs(config.auth.lock_minutes * 60),
        ip_max_failures: config.auth.ip_max_failures.max(1),
        session_idle: Duration::from_secs(config.auth.session_idle_secs.max(1)),
        session_max_age: Duration::from_secs(config.auth.session_max_age_secs.max(1)),
        ..AuthPolicy::default()
    }
}

/// A running server.
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The store it uses.
    pub store: Arc<dyn Store>,
    /// The sign-in service.
    pub auth: Arc<AuthService>,
    /// The worker supervisor.
    pub workers: Workers,
    /// The event bus.
    pub events: EventBus,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets in-flight ones finish and stops the workers.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let served = self.server.await.context("server task")?;
        served.context("serving HTTP")?;
        if !self.workers.shutdown(Duration::from_secs(10)).await {
            tracing::warn!("some background workers did not stop within 10 s");
        }
        Ok(())
    }

    /// Waits until the server stops on its own (it does not unless shut down).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server)
            .await
            .context("server task")?
            .context("serving HTTP")
    }
}

/// Opens the store, starts the workers and serves on the configured address.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let store = open_store(config).await?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    start_with(config, store, listener).await
}

/// Serves on a given listener with a given store (the test harness uses port 0).
pub async fn start_with(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
) -> anyhow::Result<Running> {
    let auth = Arc::new(AuthService::new(Arc::clone(&store), auth_policy(config))?);
    let workers = Workers::new();
    spawn_session_purger(&workers, Arc::clone(&store));
    let settings = WebSettings {
        secure_cookies: config
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        max_json_bytes: config.server.max_json_bytes,
    };
    let events = EventBus::default();
    let services = switchboard_web::Services {
        store: Arc::clone(&store),
        auth: Arc::clone(&auth),
        workers: workers.clone(),
        events: events.clone(),
    };
    let router =
        switchboard_web::router(services, settings, switchboard_web::metrics::Metrics::new());
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    });
    tracing::info!(%addr, backend = store.backend(), "Switchboard is serving");
    Ok(Running {
        addr,
        store,
        auth,
        workers,
        events,
        shutdown,
        server,
    })
}

fn spawn_session_purger(workers: &Workers, store: Arc<dyn Store>) {
    workers.spawn("web_session_purger", move |cancel| {
        let store = Arc::clone(&store);
        async move {
            loop {
                let purged = store
                    .purge_expired_web_sessions(Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                if purged > 0 {
                    tracing::info!(purged, "expired web sessions removed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                }
            }
        }
    });
}
