//! Wiring: opens the store chosen by the database URL, builds the services and the web router,
//! starts the background workers and serves HTTP until shut down.

use crate::config::Config;
use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{
    AccountStore, InboxStore, LeadStore, ScheduleStore, SigninStore, Store, Timestamp,
    UserAdminStore,
};
use switchboard_files::FileStore;
use switchboard_services::Inbox;
use switchboard_services::account_transport::AccountTransport;
use switchboard_services::accounts::AccountSupervisor;
use switchboard_services::bots::{BotService, BotSettings};
use switchboard_services::connect::AccountService;
use switchboard_services::lead_delivery::{DeliverySettings, LeadDelivery, LeadSenders};
use switchboard_services::media::MediaDownloads;
use switchboard_services::monitor::Monitor;
use switchboard_services::monitor::engine::Engine;
use switchboard_services::monitor::sources::Sources;
use switchboard_services::outbox::{OutboxSettings, Transports};
use switchboard_services::publisher::{Publisher, PublisherDeps, PublisherSettings};
use switchboard_services::schedule::Scheduler;
use switchboard_services::schedule_targets::TelegramTargets;
use switchboard_services::signin::{SelfService, SigninParts, SigninService, SigninSettings};
use switchboard_services::{AuthPolicy, AuthService, EventBus, Workers};
use switchboard_telegram::{Spawn, TelegramSettings};
use switchboard_vault::{Keyring, MasterKey};
use switchboard_web::WebSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Both ports of one opened database.
#[derive(Clone)]
pub struct Stores {
    /// Workspaces, users, sessions, audit.
    pub store: Arc<dyn Store>,
    /// Accounts, their sessions, chats and messages.
    pub accounts: Arc<dyn AccountStore>,
    /// Bots, the inbox and the outbox.
    pub inbox: Arc<dyn InboxStore>,
    /// Lead monitoring: tasks, sources, leads and their delivery.
    pub leads: Arc<dyn LeadStore>,
    /// Telegram sign-in: codes, trusted devices, the service bot's links, invites.
    pub signin: Arc<dyn SigninStore>,
    /// Autoposting: scheduled posts, their runs and follow-up actions.
    pub schedule: Arc<dyn ScheduleStore>,
    /// The admin's user controls.
    pub users: Arc<dyn UserAdminStore>,
}

/// Opens the database named by the configuration and runs pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_stores(config).await?.store)
}

/// Opens the database named by the configuration (both ports) and runs pending migrations.
pub async fn open_stores(config: &Config) -> anyhow::Result<Stores> {
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
        Ok(Stores {
            store: Arc::new(store.clone()),
            accounts: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
            leads: Arc::new(store.clone()),
            signin: Arc::new(store.clone()),
            schedule: Arc::new(store.clone()),
            users: Arc::new(store),
        })
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
        Ok(Stores {
            store: Arc::new(store.clone()),
            accounts: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
            leads: Arc::new(store.clone()),
            signin: Arc::new(store.clone()),
            schedule: Arc::new(store.clone()),
            users: Arc::new(store),
        })
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

/// The Telegram sign-in settings from the configuration.
pub fn signin_settings(config: &Config) -> anyhow::Result<SigninSettings> {
    use crate::config::SelfServiceMode;
    Ok(SigninSettings {
        self_service: match config.auth.self_service_mode()? {
            SelfServiceMode::Off => SelfService::Off,
            SelfServiceMode::Open => SelfService::Open,
            SelfServiceMode::Invite => SelfService::Invite,
        },
        service_bot: config
            .auth
            .service_bot
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ..SigninSettings::default()
    })
}

/// How long shutdown waits for the workers (accounts, bots, the outbox, …) to stop.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

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
    /// Account storage.
    pub account_store: Arc<dyn AccountStore>,
    /// Account connection and supervision.
    pub accounts: Arc<AccountService>,
    /// The operator inbox.
    pub inbox: Inbox,
    /// Bots and their workers.
    pub bots: BotService,
    /// Lead monitoring.
    pub monitor: Monitor,
    /// The lead delivery worker's handle (wake it after queueing leads).
    pub lead_delivery: LeadDelivery,
    /// Telegram sign-in.
    pub signin: SigninService,
    /// Autoposting: scheduled posts and their runs.
    pub scheduler: Scheduler,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The SQLite database's lock, held while the server runs (started by [`start`]).
    data_lock: Option<crate::data_lock::DataLock>,
    /// This server's instance id, its file locked while the server runs.
    instance: crate::instance::Instance,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// This server's instance id (the holder its publisher's claims name).
    pub fn instance_id(&self) -> &switchboard_domain::InstanceId {
        self.instance.id()
    }

    /// Stops accepting requests, lets in-flight ones finish (and imports in progress), then
    /// stops every worker under the supervisor, waiting at most [`SHUTDOWN_DEADLINE`].
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        // Open WebSockets are not requests the graceful shutdown waits for: they are closed.
        self.events.close();
        let served = self.server.await.context("server task")?;
        served.context("serving HTTP")?;
        if !self.accounts.finish_imports(Duration::from_secs(30)).await {
            tracing::warn!("some session imports did not finish within 30 s");
        }
        self.accounts.close_flows().await;
        // Account clients, bots and the other workers are cancelled together; each account
        // closes its connection before its worker ends.
        if !self.workers.shutdown(SHUTDOWN_DEADLINE).await {
            tracing::warn!("some background work did not stop within {SHUTDOWN_DEADLINE:?}");
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

/// Opens the store, starts the workers and serves on the configured address. On SQLite the
/// database's lock is taken first and held until the server stops: a second server, or
/// `copy-db`, on the same database is refused.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let data_lock = crate::data_lock::DataLock::acquire(config, "serve")?;
    let store = open_stores(config).await?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let mut running = start_with(config, store, listener).await?;
    running.data_lock = data_lock;
    Ok(running)
}

/// Serves on a given listener with a given store (the test harness uses port 0).
pub async fn start_with(
    config: &Config,
    stores: Stores,
    listener: TcpListener,
) -> anyhow::Result<Running> {
    let Stores {
        store,
        accounts: account_store,
        inbox: inbox_store,
        leads: lead_store,
        signin: signin_store,
        schedule: schedule_store,
        users: user_admin_store,
    } = stores;
    let instance = crate::instance::Instance::acquire(config)?;
    let keyring = Arc::new(load_keyring(config)?);
    let auth = Arc::new(AuthService::new(Arc::clone(&store), auth_policy(config))?);
    let workers = Workers::new();
    spawn_session_purger(&workers, Arc::clone(&store), Arc::clone(&signin_store));
    let public_origin = match config.server.public_url.as_deref() {
        Some(url) => Some(
            switchboard_web::session::public_origin(url).with_context(|| {
                format!("server.public_url {url:?} is not an absolute http(s) URL")
            })?,
        ),
        None => None,
    };
    spawn_audit_purger(&workers, Arc::clone(&store), config.audit.retention_days);
    let settings = WebSettings {
        secure_cookies: config
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        max_json_bytes: config.server.max_json_bytes,
        max_upload_bytes: config.server.max_upload_bytes,
        public_origin,
        trusted_proxies: config.server.trusted_proxies.clone(),
    };
    let events = EventBus::default();
    let files = FileStore::new(config.files_dir(), config.server.max_upload_bytes as u64);
    let transports = Transports::default();
    let lead_delivery = LeadDelivery::new();
    let engine = Engine::new(
        Arc::clone(&lead_store),
        events.clone(),
        lead_delivery.clone(),
    );
    let inbox = Inbox::new(
        inbox_store,
        events.clone(),
        transports.clone(),
        config.inbox.auto_assign,
    );
    let supervisor = AccountSupervisor::new(
        Arc::clone(&account_store),
        Arc::clone(&keyring),
        telegram_settings(config, Arc::new(workers.tasks("telegram_clients"))),
        events.clone(),
        inbox.clone(),
        Some(media_downloads(config).await),
        workers.clone(),
    );
    let sources = Sources::new(
        Arc::clone(&lead_store),
        supervisor.clone(),
        engine.clone(),
        events.clone(),
        workers.clone(),
    );
    let monitor = Monitor::new(engine, sources.clone(), Arc::clone(&lead_store));
    let account_transport = AccountTransport::new(supervisor.clone(), files.clone());
    transports.set_accounts(Arc::new(account_transport.clone()));
    let bots = BotService::new(
        inbox.store().clone(),
        Arc::clone(&keyring),
        inbox.clone(),
        files.clone(),
        BotSettings {
            api_url: config.telegram.bot_api_url.clone(),
            public_url: config.server.public_url.clone(),
            max_download_bytes: config.server.max_upload_bytes as u64,
            proxy: config.telegram.proxy.clone(),
            ..BotSettings::default()
        },
        workers.clone(),
    )
    .context("building the Bot API client")?;
    transports.set_bots(Arc::new(bots.transport()));
    lead_delivery.start(
        &workers,
        LeadSenders {
            leads: Arc::clone(&lead_store),
            users: Arc::clone(&store),
            inbox: inbox.store().clone(),
            accounts: account_transport.clone(),
            bots: bots.transport(),
        },
        DeliverySettings::default(),
    );
    spawn_outbox(&workers, inbox.clone(), &config.inbox);
    spawn_read_receipts(&workers, inbox.clone());
    let code_key = keyring.derive_key(b"signin-codes");
    let accounts = Arc::new(AccountService::new(
        Arc::clone(&store),
        Arc::clone(&account_store),
        keyring,
        supervisor.clone(),
    ));
    let signin = SigninService::new(
        SigninParts {
            store: Arc::clone(&store),
            signin: signin_store,
            bots_store: inbox.store().clone(),
            auth: Arc::clone(&auth),
            accounts: Arc::clone(&accounts),
            bots: bots.clone(),
            code_key,
        },
        signin_settings(config)?,
    );
    // Before any bot starts: sign-in's `/start` links never reach the inbox.
    bots.set_start_handler(Arc::new(signin.clone()));
    spawn_flow_purger(&workers, Arc::clone(&accounts));
    // The matcher is built before the accounts start, so their first posts meet every task.
    monitor
        .engine()
        .start(&workers)
        .await
        .context("building the lead matcher")?;
    supervisor.set_engine(monitor.engine().clone());
    // The accounts learn the sign-in's service bot before they connect: its chats with users
    // (their sign-in codes) are never ingested into an inbox.
    signin
        .service_bot()
        .await
        .context("reading the sign-in's service bot")?;
    let started = supervisor.start_all().await.context("starting accounts")?;
    tracing::info!(accounts = started, "account clients started");
    // After the accounts: the source workers start for accounts that run.
    sources.start();
    let started = bots.start_all().await.context("starting bots")?;
    tracing::info!(bots = started, "bot workers started");
    let scheduler = Scheduler::new(
        schedule_store,
        Arc::clone(&store),
        events.clone(),
        Arc::new(TelegramTargets::new(supervisor.clone(), bots.clone())),
    );
    // Autoposting's publisher: due runs and their follow-ups, through the same clients.
    Publisher::start(
        &workers,
        PublisherDeps {
            scheduler: scheduler.clone(),
            accounts: account_transport,
            bots: bots.transport(),
            files: files.clone(),
            instance: instance.id().clone(),
        },
        PublisherSettings::default(),
    );
    let services = switchboard_web::Services {
        store: Arc::clone(&store),
        auth: Arc::clone(&auth),
        workers: workers.clone(),
        events: events.clone(),
        account_store: Arc::clone(&account_store),
        accounts: Arc::clone(&accounts),
        inbox: inbox.clone(),
        bots: bots.clone(),
        files,
        monitor: monitor.clone(),
        signin: signin.clone(),
        scheduler: scheduler.clone(),
        users: switchboard_services::user_admin::UserAdmin::new(
            Arc::clone(&store),
            user_admin_store,
            Arc::clone(&accounts),
            bots.clone(),
            inbox.clone(),
            monitor.clone(),
            signin.clone(),
        ),
    };
    let mut metrics = switchboard_web::metrics::Metrics::new();
    auth.register_metrics(metrics.registry_mut());
    let router = switchboard_web::router(services, settings, metrics);
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    // Without TCP_NODELAY a small WebSocket frame waits for the browser's delayed ACK (up to
    // 40 ms) whenever the previous one is unacknowledged: the whole latency budget.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let server = workers.tasks("http_server").spawn(async move {
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
        account_store,
        accounts,
        inbox,
        bots,
        monitor,
        lead_delivery,
        signin,
        scheduler,
        shutdown,
        server,
        data_lock: None,
        instance,
    })
}

/// The Telegram settings from the configuration. Without `api_id`/`api_hash` (fine for tgsim),
/// Telegram itself would refuse sign-ins.
/// The clients' tasks run in `tasks`.
pub fn telegram_settings(config: &Config, tasks: Arc<dyn Spawn>) -> TelegramSettings {
    let t = &config.telegram;
    let mut s = TelegramSettings::new(
        t.api_id.unwrap_or(0),
        t.api_hash
            .as_ref()
            .map(|h| h.expose().to_string())
            .unwrap_or_default(),
        tasks,
    );
    s.dc_override = t.dc_override.as_deref().and_then(|a| a.parse().ok());
    s.sim_control_url = t.sim_control_url.clone();
    s.proxy = t.proxy.clone();
    s
}

/// The file store under `<data_dir>/files` and the download limits; stale temporary files of a
/// crash are swept first.
pub async fn media_downloads(config: &Config) -> MediaDownloads {
    let files = FileStore::new(config.files_dir(), config.media.max_file_bytes);
    match files.remove_stale_temporaries().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "partial downloads of an earlier run removed"),
        Err(e) => tracing::warn!(error = %e, "could not sweep the file store's temporary files"),
    }
    MediaDownloads::new(files, config.media.max_concurrent_downloads)
}

/// Loads the master keyring; creates a new key file on first start (logged loudly: losing it
/// makes every stored session unreadable).
pub fn load_keyring(config: &Config) -> anyhow::Result<Keyring> {
    let path = config.master_key_path();
    if path.exists() {
        return Keyring::from_file(&path)
            .with_context(|| format!("reading the master key {}", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = MasterKey::write_new(&path)
        .with_context(|| format!("creating the master key {}", path.display()))?;
    tracing::warn!(path = %path.display(), "created a new master key; back it up — without it stored sessions cannot be read");
    Ok(Keyring::new(key))
}

fn spawn_outbox(workers: &Workers, inbox: Inbox, config: &crate::config::InboxConfig) {
    let settings = OutboxSettings {
        stuck_after: Duration::from_secs(config.outbox_stuck_after_secs),
        sweep_every: Duration::from_secs(config.outbox_sweep_secs.max(1)),
        ..OutboxSettings::default()
    };
    let sends = workers.tasks("outbox_sends");
    workers.spawn("outbox", move |cancel| {
        let (inbox, settings, sends) = (inbox.clone(), settings.clone(), sends.clone());
        async move {
            switchboard_services::outbox::run(inbox, settings, cancel, sends).await;
            Ok(())
        }
    });
}

fn spawn_read_receipts(workers: &Workers, inbox: Inbox) {
    let sending = workers.tasks("read_receipt_sends");
    workers.spawn("read_receipts", move |cancel| {
        let (inbox, sending) = (inbox.clone(), sending.clone());
        async move {
            switchboard_services::read_receipts::run(inbox, cancel, sending).await;
            Ok(())
        }
    });
}

fn spawn_flow_purger(workers: &Workers, accounts: Arc<AccountService>) {
    workers.spawn("login_flow_purger", move |cancel| {
        let accounts = Arc::clone(&accounts);
        async move {
            loop {
                let n = accounts.purge_expired_flows().await;
                if n > 0 {
                    tracing::info!(expired = n, "abandoned sign-in flows closed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
            }
        }
    });
}

fn spawn_session_purger(workers: &Workers, store: Arc<dyn Store>, signin: Arc<dyn SigninStore>) {
    workers.spawn("web_session_purger", move |cancel| {
        let (store, signin) = (Arc::clone(&store), Arc::clone(&signin));
        async move {
            loop {
                let purged = store
                    .purge_expired_web_sessions(Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                if purged > 0 {
                    tracing::info!(purged, "expired web sessions removed");
                }
                // Expired sign-in codes, binding links and remembered browsers go too.
                let gone = signin
                    .purge_signin(Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                if gone.devices > 0 {
                    tracing::info!(devices = gone.devices, "expired trusted devices removed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                }
            }
        }
    });
}

/// How often old audit events are looked for.
const AUDIT_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes audit events older than `retention_days` (0 keeps them), at start and hourly.
fn spawn_audit_purger(workers: &Workers, store: Arc<dyn Store>, retention_days: u32) {
    if retention_days == 0 {
        return;
    }
    let retention = Duration::from_secs(u64::from(retention_days) * 86_400);
    workers.spawn("audit_purger", move |cancel| {
        let store = Arc::clone(&store);
        async move {
            loop {
                let cutoff = Timestamp::now().minus(retention);
                let purged = store
                    .purge_audit_before(cutoff)
                    .await
                    .map_err(|e| e.to_string())?;
                if purged > 0 {
                    tracing::info!(purged, retention_days, "old audit events removed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(AUDIT_PURGE_EVERY) => {}
                }
            }
        }
    });
}
