//! The account supervisor: exactly one live MTProto client per active account, whatever the
//! callers do. It starts every active account at boot, starts, stops and removes accounts while
//! the server runs, reconnects with backoff, waits out FloodWaits, moves revoked sessions to
//! `unauthorized`, and ingests what each client receives: messages are stored (idempotently,
//! in batches) before the update state that covers them is saved, so a crash re-fetches rather
//! than loses.

use crate::events::{Audience, EventBus};
use crate::inbox::Inbox;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::{
    AccountId, AccountStatus, AccountStore, IncomingMessage, StoreError, Timestamp, WorkspaceId,
};
use switchboard_telegram::grammers_client::sender::UpdatesConfiguration;
use switchboard_telegram::grammers_client::session::updates::MessageBox;
use switchboard_telegram::grammers_client::update::Update;
use switchboard_telegram::{
    Connection, DbSession, Error as TgError, MappedUpdate, RetryOptions, TelegramSettings,
    map_update,
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

struct Running {
    cancel: CancellationToken,
    done: tokio::sync::watch::Receiver<bool>,
}

struct Inner {
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    settings: TelegramSettings,
    events: EventBus,
    inbox: Inbox,
    /// The live client of each connected account, for sending.
    clients: Mutex<HashMap<AccountId, switchboard_telegram::grammers_client::Client>>,
    running: Mutex<HashMap<AccountId, Running>>,
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
    /// A supervisor with nothing running yet.
    pub fn new(
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        settings: TelegramSettings,
        events: EventBus,
        inbox: Inbox,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                settings,
                events,
                inbox,
                clients: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
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
            if self.start(a.id).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Starts an account's client unless it already runs; true if it was started now.
    pub async fn start(&self, id: AccountId) -> Result<bool, StoreError> {
        let account = self.inner.store.load_account(id).await?;
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get(&id)
            && !*r.done.borrow()
        {
            return Ok(false);
        }
        if self.inner.shutdown.is_cancelled() {
            return Ok(false);
        }
        let cancel = self.inner.shutdown.child_token();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        running.insert(
            id,
            Running {
                cancel: cancel.clone(),
                done: done_rx,
            },
        );
        self.set_worker(id, account.workspace_id, AccountStatus::Connecting, None);
        let inner = Arc::clone(&self.inner);
        let ws = account.workspace_id;
        self.inner.tracker.spawn(async move {
            run_account(&inner, id, ws, cancel).await;
            let _ = done_tx.send(true);
        });
        Ok(true)
    }

    /// Stops an account's client and waits until its connection is closed.
    pub async fn stop(&self, id: AccountId) {
        let entry = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&id)
        };
        if let Some(Running { cancel, mut done }) = entry {
            cancel.cancel();
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Stops then starts every running account (the `restart_clients` control action).
    pub async fn restart_all(&self) -> Result<usize, StoreError> {
        let ids: Vec<AccountId> = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.keys().copied().collect()
        };
        for id in &ids {
            self.stop(*id).await;
        }
        self.start_all().await
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
        "account_status",
        json!({"account_id": id.0, "status": status.as_str(), "detail": detail, "flood_wait_until": flood_until.map(|t| t.0)}),
    );
}

enum End {
    Cancelled,
}

async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac * 0.5)
}

#[tracing::instrument(skip(inner, cancel), fields(account_id = %id))]
async fn run_account(inner: &Inner, id: AccountId, ws: WorkspaceId, cancel: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
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
        match cycle(inner, id, ws, &cancel, &mut backoff).await {
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
    id: AccountId,
    ws: WorkspaceId,
    cancel: &CancellationToken,
    backoff: &mut Duration,
) -> Result<End, TgError> {
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
        let (tx, mut rx) = mpsc::channel::<Update>(4 * MAX_BATCH);
        let reader = async move {
            loop {
                let u = stream.next().await.map_err(TgError::from)?;
                if tx.send(u).await.is_err() {
                    return Ok::<(), TgError>(());
                }
            }
        };
        let writer = async {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let n = ingest(inner, id, ws, self_id, &batch)
                    .await
                    .map_err(|e| TgError::Unexpected(store_failure(&e)))?;
                bump_worker(inner, id, 0, n);
                batch.clear();
            }
            Ok::<(), TgError>(())
        };
        tokio::select! {
            _ = cancel.cancelled() => Ok(End::Cancelled),
            r = reader => r.map(|()| End::Cancelled),
            r = writer => r.map(|()| End::Cancelled),
        }
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
/// changes, then saves the update state the batch reached. Returns messages inserted.
async fn ingest(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    self_id: Option<i64>,
    batch: &[Update],
) -> Result<u64, StoreError> {
    let now = Timestamp::now();
    let mut inserted = 0u64;
    let mut pending: Vec<IncomingMessage> = Vec::new();
    for u in batch {
        match map_update(u, self_id) {
            Some(MappedUpdate::New(m)) => pending.push(m),
            Some(MappedUpdate::Edited { message, edited_at }) => {
                inserted += flush(inner, id, ws, &mut pending, now).await?;
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
                inserted += flush(inner, id, ws, &mut pending, now).await?;
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
    inserted += flush(inner, id, ws, &mut pending, now).await?;
    save_state(inner, id, batch).await?;
    Ok(inserted)
}

async fn flush(
    inner: &Inner,
    id: AccountId,
    ws: WorkspaceId,
    pending: &mut Vec<IncomingMessage>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let outcome = inner.store.ingest_messages(id, pending, now).await?;
    pending.clear();
    inner.inbox.after_ingest(ws, &outcome).await;
    Ok(outcome.inserted.len() as u64)
}

/// Saves the highest state per message box reached by the batch, except the state of the
/// batch's trailing run of updates that share one state: every message of one `getDifference`
/// (slice) carries the difference's final state, so that run may be only the first part of a
/// difference whose rest has not been committed yet. Its state is saved with the next batch;
/// until then a restart fetches the run again (and the store drops the duplicates).
async fn save_state(inner: &Inner, id: AccountId, batch: &[Update]) -> Result<(), StoreError> {
    let states: Vec<_> = batch.iter().filter_map(update_state).collect();
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
