//! The account supervisor: exactly one live MTProto client per active account, whatever the
//! callers do. It starts every active account at boot, starts, stops and removes accounts while
//! the server runs, reconnects with backoff, waits out FloodWaits, moves revoked sessions to
//! `unauthorized`, and ingests what each client receives: messages are stored (idempotently,
//! in batches) before the update state that covers them is saved, so a crash re-fetches rather
//! than loses. Private chats are always ingested, group chats only when the account's
//! `ingest_groups` is on.

use crate::events::{Audience, EventBus, ServerEvent};
use crate::inbox::Inbox;
use crate::media::{BatchFiles, DownloadReceiver, DownloadSender, MediaDownloads, Recorder};
use crate::retry::{jitter, sleep_or_cancel};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::{
    Account, AccountId, AccountStatus, AccountStore, IncomingMessage, StoreError, Timestamp,
    WorkspaceId,
};
use switchboard_telegram::grammers_client::Client;
use switchboard_telegram::grammers_client::sender::UpdatesConfiguration;
use switchboard_telegram::grammers_client::session::updates::MessageBox;
use switchboard_telegram::grammers_client::tl;
use switchboard_telegram::grammers_client::update::Update;
use switchboard_telegram::{
    Connection, ConnectionHealth, DbSession, Error as TgError, HealthState, MappedUpdate,
    RetryOptions, TelegramSettings, map_update, update_media_file,
};
use switchboard_vault::Keyring;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest number of updates written in one transaction.
const MAX_BATCH: usize = 1000;

/// A supervised account's worker state, for the status page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AccountWorker {
    /// The account.
    pub account_id: AccountId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Current health.
    pub status: AccountStatus,
    /// Why.
    pub detail: Option<String>,
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

/// Tells every client to stop, then waits for each: closing 1,000 connections one after
/// another took most of a restart.
async fn stop_all(stopping: Vec<Running>) {
    for r in &stopping {
        r.cancel.cancel();
    }
    for Running { mut done, .. } in stopping {
        let _ = done.wait_for(|d| *d).await;
    }
}

struct Running {
    cancel: CancellationToken,
    done: tokio::sync::watch::Receiver<bool>,
    /// The account's `ingest_groups`, read by its worker at every batch.
    ingest_groups: Arc<AtomicBool>,
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
    running: Mutex<HashMap<AccountId, Running>>,
    /// When each workspace's clients were last restarted on request.
    restarts: Mutex<HashMap<WorkspaceId, std::time::Instant>>,
    workers: Mutex<HashMap<AccountId, AccountWorker>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Owns every account's client.
#[derive(Clone)]
pub struct AccountSupervisor {
    inner: Arc<Inner>,
}

impl AccountSupervisor {
    /// A supervisor with nothing running yet; with `media`, the files of ingested messages are
    /// downloaded into its file store.
    pub fn new(
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        settings: TelegramSettings,
        events: EventBus,
        inbox: Inbox,
        media: Option<MediaDownloads>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                settings,
                events,
                inbox,
                clients: Mutex::new(HashMap::new()),
                media,
                running: Mutex::new(HashMap::new()),
                restarts: Mutex::new(HashMap::new()),
                workers: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The Telegram settings in force.
    pub fn settings(&self) -> &TelegramSettings {
        &self.inner.settings
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
        let (id, ws) = (account.id, account.workspace_id);
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(&id)
            && !*r.done.borrow()
        {
            return false;
        }
        if self.inner.shutdown.is_cancelled() {
            return false;
        }
        let cancel = self.inner.shutdown.child_token();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let ingest_groups = Arc::new(AtomicBool::new(account.ingest_groups));
        running.insert(
            id,
            Running {
                cancel: cancel.clone(),
                done: done_rx,
                ingest_groups: Arc::clone(&ingest_groups),
            },
        );
        self.set_worker(id, ws, AccountStatus::Connecting, None);
        let inner = Arc::clone(&self.inner);
        let worker = Worker {
            id,
            ws,
            ingest_groups,
        };
        self.inner.tracker.spawn(async move {
            run_account(&inner, &worker, cancel).await;
            let _ = done_tx.send(true);
        });
        true
    }

    /// Tells a running account's worker whether to ingest group chats (from its next batch on);
    /// the stored flag is what a later start reads.
    pub fn set_ingest_groups(&self, id: AccountId, on: bool) {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(&id) {
            r.ingest_groups.store(on, Ordering::Relaxed);
        }
    }

    /// Stops an account's client and waits until its connection is closed.
    pub async fn stop(&self, id: AccountId) {
        let entry = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&id)
        };
        if let Some(Running {
            cancel, mut done, ..
        }) = entry
        {
            cancel.cancel();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Stops then starts every running account of every workspace.
    pub async fn restart_all(&self) -> Result<usize, StoreError> {
        let stopping: Vec<Running> = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.drain().map(|(_, r)| r).collect()
        };
        stop_all(stopping).await;
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
        let stopping: Vec<Running> = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            accounts
                .iter()
                .filter_map(|a| running.remove(&a.id))
                .collect()
        };
        stop_all(stopping).await;
        Ok(accounts.iter().filter(|a| self.start_loaded(a)).count())
    }

    /// True while the account's worker runs.
    pub fn is_running(&self, id: AccountId) -> bool {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(&id).is_some_and(|r| !*r.done.borrow())
    }

    /// Every account worker's state.
    pub fn workers(&self) -> Vec<AccountWorker> {
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = workers.values().cloned().collect();
        v.sort_by_key(|w| w.account_id);
        v
    }

    /// Stops every client; false if they did not all stop within `deadline`.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_ok()
    }

    fn set_worker(
        &self,
        id: AccountId,
        ws: WorkspaceId,
        status: AccountStatus,
        detail: Option<String>,
    ) {
        set_worker(&self.inner, id, ws, status, detail);
    }
}

fn set_worker(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    status: AccountStatus,
    detail: Option<String>,
) {
    let mut workers = inner.workers.lock().unwrap_or_else(|p| p.into_inner());
    let w = workers.entry(id).or_insert(AccountWorker {
        account_id: id,
        workspace_id: ws,
        status,
        detail: None,
        connects: 0,
        ingested: 0,
    });
    w.status = status;
    w.detail = detail;
}

fn bump_worker(inner: &Inner, id: AccountId, connects: u32, ingested: u64) {
    let mut workers = inner.workers.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(w) = workers.get_mut(&id) {
        w.connects += connects;
        w.ingested += ingested;
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
    set_worker(inner, id, ws, status, detail.clone());
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

/// What one account's worker task knows about its account.
struct Worker {
    id: AccountId,
    ws: WorkspaceId,
    ingest_groups: Arc<AtomicBool>,
}

#[tracing::instrument(skip_all, fields(account_id = %worker.id))]
async fn run_account(inner: &Inner, worker: &Worker, cancel: CancellationToken) {
    let (id, ws) = (worker.id, worker.ws);
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    // The download queue outlives connections: files queued before a reconnect are fetched
    // after it.
    let (downloads, mut download_queue) = crate::media::queue();
    // Downloads left unfinished before this worker started are looked for once, on its first
    // connection.
    let mut recover = Some(Timestamp::now());
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let status = if first {
            AccountStatus::Connecting
        } else {
            AccountStatus::Reconnecting
        };
        report(inner, id, ws, status, None, None).await;
        first = false;
        bump_worker(inner, id, 1, 0);
        let queue = (&downloads, &mut download_queue);
        match cycle(inner, worker, &cancel, &mut backoff, queue, &mut recover).await {
            Ok(End::Cancelled) => return,
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
                return;
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
                return;
            }
            Err(TgError::FloodWait { seconds }) => {
                let wait = Duration::from_secs(u64::from(seconds.max(1)));
                let until = Timestamp::now().plus(wait);
                report(
                    inner,
                    id,
                    ws,
                    AccountStatus::FloodWait,
                    Some(format!("FLOOD_WAIT_{seconds}")),
                    Some(until),
                )
                .await;
                if !sleep_or_cancel(&cancel, wait).await {
                    return;
                }
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
                if !sleep_or_cancel(&cancel, jitter(backoff)).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// One connection's life: connect, check authorization, stream and ingest until cancelled or
/// the connection fails. The connection is always closed before returning.
async fn cycle(
    inner: &Inner,
    worker: &Worker,
    cancel: &CancellationToken,
    backoff: &mut Duration,
    (downloads, download_queue): (&DownloadSender, &mut DownloadReceiver),
    recover: &mut Option<Timestamp>,
) -> Result<End, TgError> {
    let (id, ws) = (worker.id, worker.ws);
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
        *backoff = Duration::from_secs(1);
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
        let mut reader = tokio::spawn(async move {
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
                bump_worker(inner, id, 0, n);
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
                    if let Some(started) = *recover {
                        crate::media::recover_downloads(
                            media, &client, downloads, &recorder, started,
                        )
                        .await;
                        *recover = None;
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
    worker: &Worker,
    client: &Client,
    health: &ConnectionHealth,
) -> TgError {
    let (id, ws) = (worker.id, worker.ws);
    let mut shown = (AccountStatus::Connected, None);
    let mut probe: Option<Pin<Box<dyn Future<Output = bool> + Send>>> = None;
    let mut next_probe = tokio::time::Instant::now();
    loop {
        let state = health.state();
        let now = Timestamp::now();
        let wanted = shown_status(&state, now);
        if wanted != shown {
            let detail = match wanted.0 {
                AccountStatus::Reconnecting => Some("connection lost".to_string()),
                AccountStatus::FloodWait => Some("FLOOD_WAIT".to_string()),
                _ => None,
            };
            tracing::info!(status = wanted.0.as_str(), "account connection changed");
            report(inner, id, ws, wanted.0, detail, wanted.1).await;
            shown = wanted;
        }
        if let Some(since) = state.down_since()
            && !state.flood_waiting(now)
            && now.0.saturating_sub(since.0) > millis(RECOVERY_BOUND)
        {
            tracing::warn!("the connection did not recover; starting a new client");
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

fn update_state(
    u: &Update,
) -> Option<&switchboard_telegram::grammers_client::session::updates::State> {
    match u {
        Update::NewMessage(m) | Update::MessageEdited(m) => Some(&m.state),
        Update::MessageDeleted(d) => Some(&d.state),
        Update::Raw(r) => Some(&r.state),
        _ => None,
    }
}

/// Stores a batch in order (consecutive new messages in one transaction), publishes the
/// changes, then saves the update state the batch reached. New messages of group chats are
/// skipped unless `ingest_groups`. Returns messages inserted.
async fn ingest(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    self_id: Option<i64>,
    ingest_groups: bool,
    batch: &[Box<Update>],
    downloads: &DownloadSender,
) -> Result<u64, StoreError> {
    let now = Timestamp::now();
    let mut inserted = 0u64;
    let mut pending: Vec<IncomingMessage> = Vec::new();
    let mut files = BatchFiles::default();
    for u in batch {
        match map_update(u, self_id) {
            Some(MappedUpdate::New(mut m)) if ingest_groups || m.peer_kind.is_private() => {
                if let (Some(media), Some((tg_id, file))) = (&inner.media, update_media_file(u)) {
                    files.offer(&mut m.media, tg_id, file, media.files().max_bytes());
                }
                pending.push(m);
            }
            Some(MappedUpdate::New(_)) => {}
            Some(MappedUpdate::Edited { message, edited_at }) => {
                inserted += flush(inner, id, ws, &mut pending, now, (&files, downloads)).await?;
                if let Some(m) = inner
                    .store
                    .apply_message_edit(
                        id,
                        message.peer_id,
                        message.tg_message_id,
                        &message.text,
                        &message.entities,
                        edited_at,
                    )
                    .await?
                {
                    inner.inbox.message_changed(ws, &m).await;
                }
            }
            Some(MappedUpdate::Deleted {
                peer_id,
                tg_message_ids,
            }) => {
                inserted += flush(inner, id, ws, &mut pending, now, (&files, downloads)).await?;
                for m in inner
                    .store
                    .mark_messages_deleted(id, peer_id, &tg_message_ids)
                    .await?
                {
                    inner.inbox.message_changed(ws, &m).await;
                }
            }
            None => {}
        }
    }
    inserted += flush(inner, id, ws, &mut pending, now, (&files, downloads)).await?;
    save_state(inner, id, batch).await?;
    Ok(inserted)
}

async fn flush(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    pending: &mut Vec<IncomingMessage>,
    now: Timestamp,
    (files, downloads): (&BatchFiles, &DownloadSender),
) -> Result<u64, StoreError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let outcome = inner.store.ingest_messages(id, pending, now).await?;
    pending.clear();
    files.enqueue(id, &outcome.inserted, downloads);
    inner.inbox.after_ingest(ws, &outcome).await;
    Ok(outcome.inserted.len() as u64)
}

/// Saves the highest state per message box reached by the batch, except the state of the
/// batch's trailing run of updates that share one state: every message of one `getDifference`
/// (slice) carries the difference's final state, so that run may be only the first part of a
/// difference whose rest has not been committed yet. Its state is saved with the next batch;
/// until then a restart fetches the run again (and the store drops the duplicates).
async fn save_state(inner: &Inner, id: AccountId, batch: &[Box<Update>]) -> Result<(), StoreError> {
    let states: Vec<_> = batch.iter().filter_map(|u| update_state(u)).collect();
    let complete = match states.last() {
        Some(last) => states.len() - states.iter().rev().take_while(|s| *s == last).count(),
        None => 0,
    };
    let mut common: Option<(i32, i32, i32)> = None;
    let mut qts: Option<i32> = None;
    let mut channels: HashMap<i64, i32> = HashMap::new();
    for s in states.into_iter().take(complete) {
        match s.message_box {
            Some(MessageBox::Common { pts }) if common.is_none_or(|(p, _, _)| pts >= p) => {
                common = Some((pts, s.date, s.seq));
            }
            Some(MessageBox::Common { .. }) => {}
            Some(MessageBox::Secondary { qts: q }) => qts = Some(qts.map_or(q, |old| old.max(q))),
            Some(MessageBox::Channel { channel_id, pts }) => {
                let e = channels.entry(channel_id).or_insert(pts);
                *e = (*e).max(pts);
            }
            None => {}
        }
    }
    if let Some((pts, date, seq)) = common {
        inner.store.set_update_primary(id, pts, date, seq).await?;
    }
    if let Some(q) = qts {
        inner.store.set_update_qts(id, q).await?;
    }
    for (channel, pts) in channels {
        inner.store.set_channel_pts(id, channel, pts).await?;
    }
    Ok(())
}
