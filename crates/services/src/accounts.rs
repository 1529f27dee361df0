//! The account supervisor: exactly one live MTProto client per active account, whatever the
//! callers do. Each account is one worker under the [`Workers`] supervisor (named
//! `account:<id>`), which restarts it with backoff; this module starts every active account at
//! boot, starts, stops and removes accounts while the server runs, waits out FloodWaits, moves
//! revoked sessions to `unauthorized`, and ingests what each client receives through the ingest
//! pipeline ([`crate::ingest`]): messages are stored (idempotently, in batches) before the update
//! state that covers them is saved ([`UpdateCheckpoint`]), so a crash re-fetches rather than
//! loses. Private chats are always ingested, group chats only when the account's
//! `ingest_groups` is on. Posts of the channels and groups that lead monitoring watches go to
//! the matching engine ([`Engine::handle`]) whatever `ingest_groups` says, in the same batch and
//! before the same checkpoint.

use crate::events::{Audience, EventBus, ServerEvent};
use crate::inbox::Inbox;
use crate::ingest::{Change, Source};
use crate::media::{BatchFiles, DownloadReceiver, DownloadSender, MediaDownloads, Recorder};
use crate::monitor::engine::{Engine, WatchedSources};
use crate::workers::{Exit, Tasks, WorkerCtx, WorkerSpec, WorkerStatus, Workers, account_worker};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use switchboard_domain::{
    Account, AccountId, AccountStatus, AccountStore, IncomingMessage, IngestOutcome, Message, Post,
    StoreError, Timestamp, WorkspaceId,
};
use switchboard_telegram::grammers_client::Client;
use switchboard_telegram::grammers_client::sender::UpdatesConfiguration;
use switchboard_telegram::grammers_client::tl;
use switchboard_telegram::grammers_client::update::Update;
use switchboard_telegram::{
    Connection, ConnectionHealth, DbSession, Error as TgError, HealthState, RetryOptions,
    TelegramSettings, UpdateCheckpoint, map_update, update_media_file,
};
use switchboard_vault::Keyring;
use tokio::sync::mpsc;

/// Largest number of updates written in one transaction.
const MAX_BATCH: usize = 1000;

/// A supervised account's worker, for the status page: the supervisor's view of it and what it
/// did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AccountWorker {
    /// The account.
    pub account_id: AccountId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The worker's state under the supervisor.
    #[serde(flatten)]
    pub worker: WorkerStatus,
    /// Connection attempts since the worker started.
    pub connects: u32,
    /// Messages ingested by this worker.
    pub ingested: u64,
}

/// Shortest time between two restarts of one workspace's clients.
pub const RESTART_INTERVAL: Duration = Duration::from_secs(30);

/// Why a workspace's clients were not restarted.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// They were restarted less than [`RESTART_INTERVAL`] ago.
    #[error("restarted too recently; retry in {retry_after_secs} s")]
    TooSoon {
        /// Seconds until a restart is allowed again.
        retry_after_secs: u64,
    },
    /// The accounts could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one account's worker knows about its account, shared with the supervisor.
struct Live {
    id: AccountId,
    ws: WorkspaceId,
    /// The account's `ingest_groups`, read by its worker at every batch.
    ingest_groups: AtomicBool,
    connects: AtomicU32,
    ingested: AtomicU64,
}

struct Inner {
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    settings: TelegramSettings,
    events: EventBus,
    inbox: Inbox,
    /// The live client of each connected account, for sending.
    clients: Mutex<HashMap<AccountId, switchboard_telegram::grammers_client::Client>>,
    media: Option<MediaDownloads>,
    /// The accounts whose worker was started, by id.
    live: Mutex<HashMap<AccountId, Arc<Live>>>,
    /// When each workspace's clients were last restarted on request.
    restarts: Mutex<HashMap<WorkspaceId, std::time::Instant>>,
    workers: Workers,
    /// The update readers of the accounts' connections.
    readers: Tasks,
    /// Lead monitoring's matching engine, which gets the posts of watched channels and groups.
    engine: OnceLock<Engine>,
    /// The Telegram user id of the web sign-in's service bot (0: none). A user's chat with it
    /// holds their sign-in codes, so it is never ingested into an inbox: whoever else sees
    /// that workspace's chats (an admin, an operator) must not be able to read them.
    sign_in_bot: std::sync::atomic::AtomicI64,
}

/// Owns every account's client: one worker per account under the [`Workers`] supervisor.
#[derive(Clone)]
pub struct AccountSupervisor {
    inner: Arc<Inner>,
}

impl AccountSupervisor {
    /// A supervisor with nothing running yet; its account workers run under `workers`. With
    /// `media`, the files of ingested messages are downloaded into its file store.
    pub fn new(
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        settings: TelegramSettings,
        events: EventBus,
        inbox: Inbox,
        media: Option<MediaDownloads>,
        workers: Workers,
    ) -> Self {
        let readers = workers.tasks("account_update_readers");
        Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                settings,
                events,
                inbox,
                clients: Mutex::new(HashMap::new()),
                media,
                live: Mutex::new(HashMap::new()),
                restarts: Mutex::new(HashMap::new()),
                workers,
                readers,
                engine: OnceLock::new(),
                sign_in_bot: std::sync::atomic::AtomicI64::new(0),
            }),
        }
    }

    /// Sends the posts of the channels and groups lead monitoring watches to `engine` (set
    /// once, before the accounts start; a second call is ignored).
    pub fn set_engine(&self, engine: Engine) {
        if self.inner.engine.set(engine).is_err() {
            tracing::warn!("the lead engine was already set");
        }
    }

    /// The supervisor the account workers run under.
    pub fn workers(&self) -> &Workers {
        &self.inner.workers
    }

    /// The Telegram settings in force.
    pub fn settings(&self) -> &TelegramSettings {
        &self.inner.settings
    }

    /// Announces a health change that was stored outside the account's worker (an admin
    /// stopped the account or logged it out), so open pages show it without a reload.
    pub fn announce_status(
        &self,
        ws: WorkspaceId,
        id: AccountId,
        status: AccountStatus,
        detail: Option<&str>,
    ) {
        self.inner.events.publish(
            ws,
            Audience::Workspace,
            ServerEvent::AccountStatus {
                account_id: id,
                status,
                detail,
                flood_wait_until: None,
            },
        );
    }

    /// The live client of a connected account.
    pub fn client(&self, id: AccountId) -> Option<switchboard_telegram::grammers_client::Client> {
        let clients = self.inner.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.get(&id).cloned()
    }

    /// The account store.
    pub fn store(&self) -> &Arc<dyn AccountStore> {
        &self.inner.store
    }

    /// Starts every active account; returns how many were started.
    pub async fn start_all(&self) -> Result<usize, StoreError> {
        let accounts = self.inner.store.list_active_accounts().await?;
        let mut n = 0;
        for a in accounts {
            if self.start_loaded(&a) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Starts an account's client unless it already runs; true if it was started now.
    pub async fn start(&self, id: AccountId) -> Result<bool, StoreError> {
        let account = self.inner.store.load_account(id).await?;
        Ok(self.start_loaded(&account))
    }

    fn start_loaded(&self, account: &Account) -> bool {
        let mut live_map = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
        let live = Arc::new(Live {
            id: account.id,
            ws: account.workspace_id,
            ingest_groups: AtomicBool::new(account.ingest_groups),
            connects: AtomicU32::new(0),
            ingested: AtomicU64::new(0),
        });
        // The download queue outlives connections: files queued before a reconnect are
        // fetched after it.
        let (downloads, queue) = crate::media::queue();
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        // Downloads left unfinished before this worker started are looked for once, on its
        // first connection.
        let recover = Arc::new(Mutex::new(Some(Timestamp::now())));
        let inner = Arc::clone(&self.inner);
        let worker = Arc::clone(&live);
        let started = self
            .inner
            .workers
            .start(WorkerSpec::account(account.id), move |ctx| {
                let (inner, worker) = (Arc::clone(&inner), Arc::clone(&worker));
                let (downloads, queue) = (downloads.clone(), Arc::clone(&queue));
                let recover = Arc::clone(&recover);
                async move {
                    let mut queue = queue.lock().await;
                    let attempt = Attempt {
                        downloads: &downloads,
                        queue: &mut queue,
                        recover: &recover,
                    };
                    run_account(&inner, &worker, &ctx, attempt).await
                }
            });
        if started {
            live_map.insert(account.id, live);
        }
        started
    }

    /// The web sign-in's service bot (its Telegram user id), whose chats with users are not
    /// ingested from the next batch on; `None` when there is none.
    pub fn set_sign_in_bot(&self, telegram_id: Option<i64>) {
        self.inner
            .sign_in_bot
            .store(telegram_id.unwrap_or(0), Ordering::Relaxed);
    }

    /// Tells a running account's worker whether to ingest group chats (from its next batch on);
    /// the stored flag is what a later start reads.
    pub fn set_ingest_groups(&self, id: AccountId, on: bool) {
        let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = live.get(&id) {
            l.ingest_groups.store(on, Ordering::Relaxed);
        }
    }

    /// Stops an account's client and waits until its connection is closed.
    pub async fn stop(&self, id: AccountId) {
        self.stop_many(&[id]).await;
    }

    /// Tells every client to stop, then waits for each: closing 1,000 connections one after
    /// another took most of a restart.
    async fn stop_many(&self, ids: &[AccountId]) {
        {
            let mut live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                live.remove(id);
            }
        }
        self.inner
            .workers
            .stop_all(ids.iter().map(|id| account_worker(*id)))
            .await;
    }

    /// Stops then starts every running account of every workspace.
    pub async fn restart_all(&self) -> Result<usize, StoreError> {
        let running: Vec<AccountId> = {
            let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
            live.keys().copied().collect()
        };
        self.stop_many(&running).await;
        self.start_all().await
    }

    /// Stops then starts the active accounts of one workspace (the `restart_clients` control
    /// action); at most once per [`RESTART_INTERVAL`] per workspace, also when asked in
    /// parallel. Returns how many were started.
    pub async fn restart_workspace(&self, workspace: WorkspaceId) -> Result<usize, RestartError> {
        {
            let mut restarts = self
                .inner
                .restarts
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            if let Some(since) = restarts.get(&workspace).map(|at| now.duration_since(*at))
                && since < RESTART_INTERVAL
            {
                let left = RESTART_INTERVAL - since;
                return Err(RestartError::TooSoon {
                    retry_after_secs: left.as_secs().max(1),
                });
            }
            restarts.insert(workspace, now);
        }
        let accounts: Vec<Account> = self
            .inner
            .store
            .list_active_accounts()
            .await?
            .into_iter()
            .filter(|a| a.workspace_id == workspace)
            .collect();
        let ids: Vec<AccountId> = accounts.iter().map(|a| a.id).collect();
        self.stop_many(&ids).await;
        Ok(accounts.iter().filter(|a| self.start_loaded(a)).count())
    }

    /// True while the account's worker runs (or waits to reconnect).
    pub fn is_running(&self, id: AccountId) -> bool {
        self.inner.workers.is_running(&account_worker(id))
    }

    /// An account's worker, if it was started.
    pub fn worker(&self, id: AccountId) -> Option<AccountWorker> {
        let live = {
            let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(live.get(&id)?)
        };
        Some(AccountWorker {
            account_id: id,
            workspace_id: live.ws,
            worker: self.inner.workers.status(&account_worker(id))?,
            connects: live.connects.load(Ordering::Relaxed),
            ingested: live.ingested.load(Ordering::Relaxed),
        })
    }

    /// Every started account worker.
    pub fn account_workers(&self) -> Vec<AccountWorker> {
        let mut ids: Vec<AccountId> = {
            let live = self.inner.live.lock().unwrap_or_else(|p| p.into_inner());
            live.keys().copied().collect()
        };
        ids.sort();
        ids.into_iter().filter_map(|id| self.worker(id)).collect()
    }
}

/// Records and announces a health change.
async fn report(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    status: AccountStatus,
    detail: Option<String>,
    flood_until: Option<Timestamp>,
) {
    if let Err(e) = inner
        .store
        .set_account_status(id, status, detail.as_deref(), flood_until, Timestamp::now())
        .await
    {
        tracing::error!(account_id = %id, error = %e, "could not save account status");
    }
    inner.events.publish(
        ws,
        Audience::Workspace,
        ServerEvent::AccountStatus {
            account_id: id,
            status,
            detail: detail.as_deref(),
            flood_wait_until: flood_until,
        },
    );
}

enum End {
    Cancelled,
}

/// What one run of an account's worker keeps between connections.
struct Attempt<'a> {
    downloads: &'a DownloadSender,
    queue: &'a mut DownloadReceiver,
    recover: &'a Mutex<Option<Timestamp>>,
}

/// One run of an account's worker: reports the account connecting, runs one connection, and
/// tells the supervisor how it ended — a FloodWait is waited out, a revoked or banned account
/// is given up (and made inactive), anything else is retried with backoff.
#[tracing::instrument(skip_all, fields(account_id = %worker.id))]
async fn run_account(inner: &Inner, worker: &Live, ctx: &WorkerCtx, attempt: Attempt<'_>) -> Exit {
    let (id, ws) = (worker.id, worker.ws);
    let status = if ctx.attempt() == 0 {
        AccountStatus::Connecting
    } else {
        AccountStatus::Reconnecting
    };
    report(inner, id, ws, status, None, None).await;
    worker.connects.fetch_add(1, Ordering::Relaxed);
    match cycle(inner, worker, ctx, attempt).await {
        Ok(End::Cancelled) => Exit::Stopped,
        Err(TgError::Unauthorized) => {
            report(
                inner,
                id,
                ws,
                AccountStatus::Unauthorized,
                Some("session revoked; sign in again".into()),
                None,
            )
            .await;
            let _ = inner
                .store
                .set_account_active(id, false, Timestamp::now())
                .await;
            Exit::Failed("unauthorized".into())
        }
        Err(TgError::Banned) => {
            report(
                inner,
                id,
                ws,
                AccountStatus::Banned,
                Some("account banned or deactivated".into()),
                None,
            )
            .await;
            let _ = inner
                .store
                .set_account_active(id, false, Timestamp::now())
                .await;
            Exit::Failed("banned".into())
        }
        Err(TgError::FloodWait { seconds }) => {
            let wait = Duration::from_secs(u64::from(seconds.max(1)));
            let until = Timestamp::now().plus(wait);
            let code = format!("FLOOD_WAIT_{seconds}");
            report(
                inner,
                id,
                ws,
                AccountStatus::FloodWait,
                Some(code.clone()),
                Some(until),
            )
            .await;
            Exit::RetryAfter(wait, code)
        }
        Err(e) => {
            tracing::warn!(error = %e, code = e.code(), "account connection failed");
            report(
                inner,
                id,
                ws,
                AccountStatus::Reconnecting,
                Some(e.code().to_string()),
                None,
            )
            .await;
            Exit::Retry(e.code().to_string())
        }
    }
}

/// One connection's life: connect, check authorization, stream and ingest until cancelled or
/// the connection fails. The connection is always closed before returning.
async fn cycle(
    inner: &Inner,
    worker: &Live,
    ctx: &WorkerCtx,
    Attempt {
        downloads,
        queue: download_queue,
        recover,
    }: Attempt<'_>,
) -> Result<End, TgError> {
    let (id, ws) = (worker.id, worker.ws);
    let cancel = ctx.cancel();
    let session = Arc::new(
        DbSession::load(
            &inner.settings,
            Arc::clone(&inner.store),
            Arc::clone(&inner.keyring),
            id,
        )
        .await?,
    );
    let Connection {
        client,
        updates,
        pool,
        session: _,
        health,
    } = switchboard_telegram::connect(
        &inner.settings,
        Arc::clone(&session),
        RetryOptions::live(&inner.settings),
    );
    let result = async {
        let me = tokio::select! {
            _ = cancel.cancelled() => return Ok(End::Cancelled),
            me = client.get_me() => me.map_err(TgError::from)?,
        };
        let self_id = me.id().bot_api_dialog_id();
        inner
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, client.clone());
        report(inner, id, ws, AccountStatus::Connected, None, None).await;
        ctx.running();
        let mut stream = client
            .stream_updates(updates, UpdatesConfiguration { catch_up: true })
            .await
            .map_err(|e| TgError::Unreachable(e.to_string()))?;
        // The reader only pulls updates; the writer stores them in batches. Updates the reader
        // pulled but the writer has not committed are fetched again after a restart, because
        // the saved update state only advances after a commit.
        // Boxed: an update is large, and it is moved into the channel, out of it and into
        // the batch.
        let (tx, mut rx) = mpsc::channel::<Box<Update>>(4 * MAX_BATCH);
        // A task of its own, so grammers' update bookkeeping runs on one core while the
        // writer maps, stores and publishes on the other.
        let mut reader = inner.readers.spawn(async move {
            loop {
                let u = Box::new(stream.next().await.map_err(TgError::from)?);
                if tx.send(u).await.is_err() {
                    return Ok::<(), TgError>(());
                }
            }
        });
        let writer = async {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let groups = worker.ingest_groups.load(Ordering::Relaxed);
                let n = ingest(inner, id, ws, self_id, groups, &batch, downloads)
                    .await
                    .map_err(|e| TgError::Unexpected(store_failure(&e)))?;
                worker.ingested.fetch_add(n, Ordering::Relaxed);
                batch.clear();
            }
            Ok::<(), TgError>(())
        };
        let recorder = Recorder {
            store: &inner.store,
            inbox: &inner.inbox,
            account: id,
            workspace: ws,
        };
        let fetcher = async {
            if let Some(media) = &inner.media {
                let recovering = async {
                    let started = *recover.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(started) = started {
                        crate::media::recover_downloads(
                            media, &client, downloads, &recorder, started,
                        )
                        .await;
                        *recover.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    }
                };
                let downloading =
                    crate::media::run_downloads(media, &client, download_queue, &recorder);
                tokio::join!(recovering, downloading);
            }
            std::future::pending::<()>().await
        };
        // Only a cancellation ends the cycle well. The writer also ends when the reader failed
        // (the channel closes): then the reader's error is the end, never a quiet stop that
        // would leave the account without a client while it still shows `connected`.
        let end = tokio::select! {
            _ = cancel.cancelled() => Ok(End::Cancelled),
            r = &mut reader => reader_end(r),
            r = writer => match r {
                Ok(()) => reader_end((&mut reader).await),
                Err(e) => Err(e),
            },
            () = fetcher => Ok(End::Cancelled),
            e = watch_connection(inner, worker, &client, &health) => Err(e),
        };
        // The stream (and its client) is gone before the connection is closed below.
        if !reader.is_finished() {
            reader.abort();
            let _ = reader.await;
        }
        end
    }
    .await;
    inner
        .clients
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    drop(client);
    if let Err(e) = pool.quit().await {
        tracing::debug!(error = %e, "pool stopped with an error");
    }
    result
}

/// How the update reader ended: it only ends with an error (or a crash).
fn reader_end(r: Result<Result<(), TgError>, tokio::task::JoinError>) -> Result<End, TgError> {
    match r {
        Ok(Ok(())) => Err(TgError::Unexpected("the update stream ended")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(TgError::Unexpected("the update reader stopped")),
    }
}

/// How long a client may stay down after its connection was lost, or after the FloodWait it
/// was given ended, before it is replaced by a new client (which catches up with
/// `updates.getDifference`).
pub const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// How often a lost connection is probed while no wait stands.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the watch looks again without news.
const WATCH_TICK: Duration = Duration::from_secs(1);

/// What the account shows for a connection's health at `now`.
fn shown_status(state: &HealthState, now: Timestamp) -> (AccountStatus, Option<Timestamp>) {
    if state.flood_waiting(now) {
        (AccountStatus::FloodWait, state.flood_until)
    } else if state.lost_since.is_some() {
        (AccountStatus::Reconnecting, None)
    } else {
        (AccountStatus::Connected, None)
    }
}

/// Watches a connected client's real connection for as long as it runs: shows `reconnecting`
/// when its socket closed or a request failed for want of one, `flood_wait` (until when) while
/// Telegram's wait stands, and `connected` again once a request succeeds. A lost connection is
/// probed (`updates.getState`: grammers reconnects only for a request) every
/// [`PROBE_EVERY`] once no wait stands. Returns — so the client is replaced — when it has not
/// recovered [`RECOVERY_BOUND`] after the loss or the end of the wait.
async fn watch_connection(
    inner: &Inner,
    worker: &Live,
    client: &Client,
    health: &ConnectionHealth,
) -> TgError {
    let (id, ws) = (worker.id, worker.ws);
    let mut shown = (AccountStatus::Connected, None, None);
    let mut probe: Option<Pin<Box<dyn Future<Output = bool> + Send>>> = None;
    let mut next_probe = tokio::time::Instant::now();
    loop {
        let state = health.state();
        let now = Timestamp::now();
        let (status, until) = shown_status(&state, now);
        // A failing proxy is named (`telegram_proxy_*`): it is the operator's to fix.
        let detail = match status {
            AccountStatus::Reconnecting => Some(
                state
                    .proxy_failure
                    .map_or("connection lost", |p| p.code())
                    .to_string(),
            ),
            AccountStatus::FloodWait => Some("FLOOD_WAIT".to_string()),
            _ => None,
        };
        let wanted = (status, until, detail);
        if wanted != shown {
            tracing::info!(status = status.as_str(), "account connection changed");
            report(inner, id, ws, status, wanted.2.clone(), until).await;
            shown = wanted;
        }
        if let Some(since) = state.down_since()
            && !state.flood_waiting(now)
            && now.0.saturating_sub(since.0) > millis(RECOVERY_BOUND)
        {
            tracing::warn!("the connection did not recover; starting a new client");
            if let Some(failure) = state.proxy_failure {
                return TgError::Proxy(failure);
            }
            return TgError::Unreachable("the connection did not recover in time".into());
        }
        if state.troubled()
            && !state.flood_waiting(now)
            && probe.is_none()
            && tokio::time::Instant::now() >= next_probe
        {
            let client = client.clone();
            tracing::debug!("probing the connection");
            probe = Some(Box::pin(async move {
                let call = client.invoke(&tl::functions::updates::GetState {});
                matches!(tokio::time::timeout(PROBE_TIMEOUT, call).await, Ok(Ok(_)))
            }));
        }
        tokio::select! {
            () = health.changed() => {}
            () = tokio::time::sleep(WATCH_TICK) => {}
            ok = async { if let Some(p) = probe.as_mut() { p.await } else { std::future::pending().await } } => {
                probe = None;
                next_probe = tokio::time::Instant::now() + PROBE_EVERY;
                if ok {
                    health.recovered();
                }
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn store_failure(e: &StoreError) -> &'static str {
    tracing::error!(error = %e, "ingestion failed to write");
    "the database failed during ingestion"
}

/// Runs a batch through the ingest pipeline and, at the same time, gives the posts of watched
/// channels and groups to the lead engine; then saves the update state the batch reached —
/// only after both committed, so a crash re-fetches the batch (the stores drop what they
/// already have). New messages of group chats are skipped by the inbox unless `ingest_groups`.
/// Returns messages inserted.
async fn ingest(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    self_id: Option<i64>,
    ingest_groups: bool,
    batch: &[Box<Update>],
    downloads: &DownloadSender,
) -> Result<u64, StoreError> {
    let mut source = AccountSource {
        inner,
        id,
        self_id,
        ingest_groups,
        files: BatchFiles::default(),
        downloads,
    };
    let posts = match inner.engine.get() {
        Some(engine) => watched_posts(&*engine.watching(id).await?, batch),
        None => Vec::new(),
    };
    let matching = async {
        match inner.engine.get() {
            Some(engine) if !posts.is_empty() => engine.handle(id, &posts).await.map(|_| ()),
            _ => Ok(()),
        }
    };
    let (inserted, ()) = tokio::try_join!(
        crate::ingest::ingest(&mut source, &inner.inbox, ws, batch),
        matching
    )?;
    UpdateCheckpoint::after(batch)
        .save(&*inner.store, id)
        .await?;
    Ok(inserted)
}

/// The posts of the batch in chats the account's tasks watch. Any other update costs one
/// look at its raw message's chat and a hash lookup.
fn watched_posts(watched: &WatchedSources, batch: &[Box<Update>]) -> Vec<Post> {
    if watched.is_empty() {
        return Vec::new();
    }
    batch
        .iter()
        .filter(|u| update_chat(u).is_some_and(|chat| watched.contains(chat)))
        .filter_map(|u| switchboard_telegram::post_from_update(u))
        .collect()
}

/// The Bot-API id of the channel or group of a new or edited message, without mapping it.
fn update_chat(update: &Update) -> Option<i64> {
    use tl::enums::Update as U;
    let (Update::NewMessage(m) | Update::MessageEdited(m)) = update else {
        return None;
    };
    let message = match &m.raw {
        U::NewMessage(u) => &u.message,
        U::NewChannelMessage(u) => &u.message,
        U::EditMessage(u) => &u.message,
        U::EditChannelMessage(u) => &u.message,
        _ => return None,
    };
    match message {
        tl::enums::Message::Message(tl::types::Message {
            peer_id: peer @ (tl::enums::Peer::Channel(_) | tl::enums::Peer::Chat(_)),
            ..
        }) => Some(switchboard_telegram::mapping::bot_api_id(peer)),
        _ => None,
    }
}

/// An account's side of the ingest pipeline: grammers updates, the account's store methods,
/// its download queue.
struct AccountSource<'a> {
    inner: &'a Inner,
    id: AccountId,
    self_id: Option<i64>,
    ingest_groups: bool,
    files: BatchFiles,
    downloads: &'a DownloadSender,
}

impl Source for AccountSource<'_> {
    type Update = Box<Update>;

    fn map(&mut self, u: &Box<Update>) -> Option<Change> {
        let change = map_update(u, self.self_id)?;
        let sign_in_bot = self.inner.sign_in_bot.load(Ordering::Relaxed);
        if let Change::New(m) = &change
            && sign_in_bot != 0
            && m.peer_id == sign_in_bot
        {
            return None;
        }
        match change {
            Change::New(mut m) if self.ingest_groups || m.peer_kind.is_private() => {
                if let (Some(media), Some((tg_id, file))) =
                    (&self.inner.media, update_media_file(u))
                {
                    self.files
                        .offer(&mut m.media, tg_id, file, media.files().max_bytes());
                }
                Some(Change::New(m))
            }
            Change::New(_) => None,
            other => Some(other),
        }
    }

    async fn store(
        &mut self,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> Result<IngestOutcome, StoreError> {
        self.inner.store.ingest_messages(self.id, batch, now).await
    }

    async fn edit(
        &self,
        m: &IncomingMessage,
        edited_at: Timestamp,
    ) -> Result<Option<Message>, StoreError> {
        self.inner
            .store
            .apply_message_edit(
                self.id,
                m.peer_id,
                m.tg_message_id,
                &m.text,
                &m.entities,
                edited_at,
            )
            .await
    }

    async fn delete(
        &self,
        peer_id: Option<i64>,
        tg_message_ids: &[i64],
    ) -> Result<Vec<Message>, StoreError> {
        self.inner
            .store
            .mark_messages_deleted(self.id, peer_id, tg_message_ids)
            .await
    }

    fn files(&mut self, inserted: &[Message]) {
        self.files.enqueue(self.id, inserted, self.downloads);
    }
}
