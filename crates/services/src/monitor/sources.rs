//! The per-account source workers: for every reading account that runs and has active tasks,
//! one worker (`lead_sources:<account>`, under [`Workers`]) that, through the account's one
//! live client,
//!
//! - **resolves** `resolving` sources — usernames from the account's dialogs first (one
//!   `messages.getDialogs` read per worker run), else `contacts.resolveUsername`, at most
//!   [`RESOLVES_PER_MINUTE`] a minute, spaced with jitter; `t.me/c/…` and dialog picks from the
//!   account's peer cache; invite links with `messages.checkChatInvite`;
//! - **joins** them when a task watching them allows it, spaced with jitter and within the
//!   account's channel cap ([`MAX_CHANNELS`]); `CHANNELS_TOO_MUCH` ends the source `failed` with
//!   `channels_too_much`, never retried in a loop; a `FLOOD_WAIT` puts it in `flood_wait` until
//!   then, after which it is resolved again; a source that failed for a reason that can pass
//!   (`channel_unknown`, `username_not_occupied`, `channel_private`, a join request not yet
//!   approved, …) is resolved again [`RECHECK_AFTER`] later — never one the user must act on
//!   (`channels_too_much`, an expired invite, joining not allowed), which only the user's retry
//!   (`Leads::retry_source`) sends back to `resolving`;
//! - **polls** sources it cannot join (`polled`) with paced `messages.getHistory` from the
//!   persisted high-water mark;
//! - **sweeps** joined channels with paced `updates.getChannelDifference` from their persisted
//!   `pts` — at start and every [`SWEEP_EVERY`] — which catches what the update stream missed and
//!   what was posted while the hub was down (`TooLong` falls back to history from the mark);
//! - **leaves** sources no active task needs when their tasks allowed it.
//!
//! Every post read goes to [`Engine::handle`]; the high-water mark and `pts` advance only after
//! it returned, so a crash reads a post again rather than loses it (the leads' unique keys make
//! a second read harmless). Every state change is published as `source_updated`.
//!
//! A manager loop (the `lead_sources` worker) starts an account's worker when the account runs
//! and has active tasks, and stops it when either ends. The budgets and what each worker did
//! when (the per-process state) live in one small struct, [`Pacing`].

use super::MonitorError;
use super::engine::Engine;
use crate::accounts::AccountSupervisor;
use crate::events::{Audience, EventBus, ServerEvent};
use crate::retry::jitter;
use crate::workers::{Backoff, Exit, WorkerCtx, WorkerSpec, Workers};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchboard_domain::LeadStore;
use switchboard_domain::{
    AccountId, Post, ReadVia, ResolvedSource, Source, SourceId, SourceKind, SourceState,
    SourceStatus, StoreError, Task, Timestamp, WorkspaceId,
};
use switchboard_telegram::Error as TgError;
use switchboard_telegram::channels::{self, ChatRef, Invite};
use switchboard_telegram::grammers_client::Client;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most `contacts.resolveUsername` calls per account per minute (Telegram answers more with
/// `FLOOD_WAIT`s of minutes; tools that resolve faster get accounts limited).
pub const RESOLVES_PER_MINUTE: u32 = 20;
/// At least this long between two resolutions of one account (60 s / 20), plus 19–31 % jitter.
pub const RESOLVE_GAP: Duration = Duration::from_secs(3);
/// Most joins (`channels.joinChannel` and `messages.importChatInvite` together) per account
/// within [`JOIN_WINDOW`].
pub const JOINS_PER_WINDOW: u32 = 4;
/// The window of [`JOINS_PER_WINDOW`].
pub const JOIN_WINDOW: Duration = Duration::from_secs(300);
/// At least this long between two joins of one account, plus jitter.
pub const JOIN_GAP: Duration = Duration::from_secs(20);
/// Most `messages.getHistory` calls per account within [`HISTORY_WINDOW`] (polls, starting
/// points and the "try it" box together).
pub const HISTORY_PER_WINDOW: u32 = 20;
/// The window of [`HISTORY_PER_WINDOW`].
pub const HISTORY_WINDOW: Duration = Duration::from_secs(30);
/// At least this long between two history reads of one account, plus jitter.
pub const HISTORY_GAP: Duration = Duration::from_millis(500);
/// Most `updates.getChannelDifference` calls per account within [`DIFFERENCE_WINDOW`].
pub const DIFFERENCE_PER_WINDOW: u32 = 30;
/// The window of [`DIFFERENCE_PER_WINDOW`].
pub const DIFFERENCE_WINDOW: Duration = Duration::from_secs(30);
/// At least this long between two difference reads of one account, plus jitter.
pub const DIFFERENCE_GAP: Duration = Duration::from_millis(300);
/// At least this long between two leaves of one account, plus jitter.
pub const LEAVE_GAP: Duration = Duration::from_secs(10);
/// A polled source is read again this long after its last read.
pub const POLL_EVERY: Duration = Duration::from_secs(20);
/// A joined channel is reconciled this long after its last sweep (and at every worker start).
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// The account's channel cap (Telegram's for accounts without Premium).
pub const MAX_CHANNELS: i64 = 500;
/// A source that failed for a reason that can pass (see [`rechecked`]) is resolved again this
/// long after it failed.
pub const RECHECK_AFTER: Duration = Duration::from_secs(3600);
/// Most history pages one poll of a source reads (the rest on the next poll).
const POLL_PAGES: u32 = 3;
/// Most difference calls one sweep of a source makes (the rest on its next sweep).
const SWEEP_CALLS: u32 = 10;
/// The longest a worker sleeps without news.
const IDLE_TICK: Duration = Duration::from_secs(30);
/// How often a worker whose account has no live client looks again.
const NO_CLIENT_TICK: Duration = Duration::from_secs(1);
/// How often the manager looks at which accounts need a worker without news.
const MANAGER_TICK: Duration = Duration::from_secs(5);
/// Most dialogs read to resolve usernames from (five pages).
const DIALOGS: usize = 500;
/// The longest the "try it" box waits for the history budget.
const RECENT_WAIT: Duration = Duration::from_secs(15);
/// A chat's head (newest message, `pts`) from a dialog list read at most this long ago is
/// where a source starts; an older one is read from the history.
const HEAD_FRESH: Duration = Duration::from_secs(60);
/// Sources taken per resolving pass.
const RESOLVE_BATCH: u32 = 50;

/// A rolling-window budget of calls with a minimum, jittered gap between two of them.
#[derive(Debug)]
struct Budget {
    max: u32,
    window: Duration,
    gap: Duration,
    calls: VecDeque<Instant>,
    next: Option<Instant>,
    blocked_until: Option<Instant>,
}

impl Budget {
    fn new(max: u32, window: Duration, gap: Duration) -> Self {
        Self {
            max,
            window,
            gap,
            calls: VecDeque::new(),
            next: None,
            blocked_until: None,
        }
    }

    /// When the next call may go (`now` or earlier if it may now).
    fn available_at(&mut self, now: Instant) -> Instant {
        while self.calls.front().is_some_and(|t| *t + self.window <= now) {
            self.calls.pop_front();
        }
        let mut at = now;
        if let Some(next) = self.next {
            at = at.max(next);
        }
        if let Some(until) = self.blocked_until {
            at = at.max(until);
        }
        let max = usize::try_from(self.max).unwrap_or(usize::MAX).max(1);
        if self.calls.len() >= max
            && let Some(oldest) = self.calls.get(self.calls.len() - max)
        {
            at = at.max(*oldest + self.window);
        }
        at
    }

    /// Takes one call now, or says when one will be available.
    fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        let at = self.available_at(now);
        if at > now {
            return Err(at);
        }
        self.calls.push_back(now);
        // Never shorter than the gap: the jitter only adds (19–31 %).
        self.next = Some(now + self.gap + jitter(self.gap / 4));
        Ok(())
    }

    /// Telegram asked to wait: nothing goes before `until`.
    fn block(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }
}

/// Which budget a call spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Resolve,
    Join,
    History,
    Difference,
    Leave,
}

/// One account's budgets and what its worker did when.
#[derive(Debug)]
struct AccountPacing {
    resolve: Budget,
    join: Budget,
    history: Budget,
    difference: Budget,
    leave: Budget,
    /// Usernames (lowercased) the account resolved or has among its dialogs.
    usernames: HashMap<String, ChatRef>,
    /// Chats of the account's dialogs and resolutions, by Bot-API id.
    chats: HashMap<i64, ChatRef>,
    /// When the dialogs were read in this run of the worker.
    dialogs_read: Option<Instant>,
    /// When each polled source was last read.
    polled_at: HashMap<SourceId, Instant>,
    /// When each joined channel was last swept.
    swept_at: HashMap<SourceId, Instant>,
}

impl AccountPacing {
    fn new() -> Self {
        Self {
            resolve: Budget::new(RESOLVES_PER_MINUTE, Duration::from_secs(60), RESOLVE_GAP),
            join: Budget::new(JOINS_PER_WINDOW, JOIN_WINDOW, JOIN_GAP),
            history: Budget::new(HISTORY_PER_WINDOW, HISTORY_WINDOW, HISTORY_GAP),
            difference: Budget::new(DIFFERENCE_PER_WINDOW, DIFFERENCE_WINDOW, DIFFERENCE_GAP),
            leave: Budget::new(6, Duration::from_secs(60), LEAVE_GAP),
            usernames: HashMap::new(),
            chats: HashMap::new(),
            dialogs_read: None,
            polled_at: HashMap::new(),
            swept_at: HashMap::new(),
        }
    }

    fn budget(&mut self, call: Call) -> &mut Budget {
        match call {
            Call::Resolve => &mut self.resolve,
            Call::Join => &mut self.join,
            Call::History => &mut self.history,
            Call::Difference => &mut self.difference,
            Call::Leave => &mut self.leave,
        }
    }

    fn remember(&mut self, chat: &ChatRef) {
        if let Some(name) = &chat.username {
            self.usernames
                .insert(name.to_ascii_lowercase(), chat.clone());
        }
        self.chats.insert(chat.peer_id, chat.clone());
    }
}

/// The per-process state of the source workers: every account's budgets (so that the worker,
/// a restarted worker and the "try it" box share them) and wake-ups. One small struct, so that
/// it can later move into the database.
#[derive(Default)]
pub struct Pacing {
    accounts: Mutex<HashMap<AccountId, AccountPacing>>,
}

impl Pacing {
    fn lock(&self) -> MutexGuard<'_, HashMap<AccountId, AccountPacing>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, account: AccountId, f: impl FnOnce(&mut AccountPacing) -> T) -> T {
        let mut all = self.lock();
        f(all.entry(account).or_insert_with(AccountPacing::new))
    }

    fn try_take(&self, account: AccountId, call: Call) -> Result<(), Instant> {
        self.with(account, |p| p.budget(call).try_take(Instant::now()))
    }

    /// Waits for one call of the budget, up to `deadline`; false when the deadline came first.
    async fn take(&self, account: AccountId, call: Call, deadline: Instant) -> bool {
        loop {
            match self.try_take(account, call) {
                Ok(()) => return true,
                Err(at) if at > deadline => return false,
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    fn block(&self, account: AccountId, call: Call, seconds: u32) {
        let until = Instant::now() + Duration::from_secs(u64::from(seconds.max(1)));
        self.with(account, |p| p.budget(call).block(until));
    }
}

/// A channel or group of the reading account's dialogs (the "pick from dialogs" list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DialogChat {
    /// Bot-API style id (what `SourceRef::dialog` takes).
    pub peer_id: i64,
    /// Title.
    pub title: String,
    /// Public username, if any.
    pub username: Option<String>,
    /// A broadcast channel (else a group).
    pub broadcast: bool,
}

struct Inner {
    store: Arc<dyn LeadStore>,
    accounts: AccountSupervisor,
    engine: Engine,
    events: EventBus,
    workers: Workers,
    pacing: Pacing,
    /// Wake-ups of the account workers.
    wakes: Mutex<HashMap<AccountId, Arc<Notify>>>,
    /// Wakes the manager (a task changed: an account may need a worker now).
    manager: Notify,
    /// Accounts whose worker the manager started.
    started: Mutex<BTreeSet<AccountId>>,
}

/// One worker per reading account: resolves, joins, polls, reconciles and leaves sources.
#[derive(Clone)]
pub struct Sources {
    inner: Arc<Inner>,
}

/// The worker name of an account's sources.
pub fn sources_worker(account: AccountId) -> String {
    format!("lead_sources:{account}")
}

/// Why one pass of a worker stopped.
enum StepError {
    /// The store failed.
    Store(StoreError),
    /// Telegram asked the account to wait (a read all sources share).
    FloodWait(u32),
    /// The connection failed; the worker is restarted with backoff.
    Telegram(TgError),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

impl From<TgError> for MonitorError {
    fn from(e: TgError) -> Self {
        match e {
            TgError::FloodWait { seconds } => MonitorError::FloodWait { seconds },
            TgError::Rpc { name, .. } => MonitorError::Telegram(name),
            other => MonitorError::Telegram(other.code().to_string()),
        }
    }
}

/// Where a source's resolution got.
enum Resolution {
    /// Done with this source for now (resolved, failed, or waiting).
    Done,
    /// A budget is spent: the pass stops and looks again then.
    Later(Instant),
}

/// A reason code for a source that failed with a Telegram refusal: its name, lowercased
/// (`channels_too_much`, `username_not_occupied`, `invite_hash_expired`, `channel_private`).
fn reason(name: &str) -> String {
    match name {
        "INVITE_REQUEST_SENT" => "join_request_sent".to_string(),
        other => other.to_ascii_lowercase(),
    }
}

/// Whether a source that failed with `reason` is resolved again by itself after
/// [`RECHECK_AFTER`]: not when the user must act first — free room under the channel cap (so
/// `CHANNELS_TOO_MUCH` is never retried in a loop), a new invite, a valid reference, allow
/// joining — only when the cause can pass by itself (the channel appears in the account's
/// dialogs, a username is taken, a join request is approved, a private channel opens).
pub fn rechecked(reason: &str) -> bool {
    !matches!(
        reason,
        "channels_too_much"
            | "source_invalid"
            | "join_not_allowed"
            | "join_request_needed"
            | "invite_hash_expired"
            | "invite_hash_invalid"
            | "username_invalid"
            | "user_banned_in_channel"
    )
}

fn wait_instant(until: Timestamp) -> Instant {
    let left = until.0.saturating_sub(Timestamp::now().0).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

fn wait_for(d: u32) -> Duration {
    Duration::from_secs(u64::from(d.max(1)))
}

impl Sources {
    /// The source workers of the accounts `accounts` supervises; they hand posts to `engine`
    /// and run under `workers`. Nothing runs until [`Sources::start`].
    pub fn new(
        store: Arc<dyn LeadStore>,
        accounts: AccountSupervisor,
        engine: Engine,
        events: EventBus,
        workers: Workers,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                accounts,
                engine,
                events,
                workers,
                pacing: Pacing::default(),
                wakes: Mutex::new(HashMap::new()),
                manager: Notify::new(),
                started: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Starts the manager (the `lead_sources` worker): it starts and stops the account workers.
    pub fn start(&self) {
        let inner = Arc::clone(&self.inner);
        self.inner.workers.spawn("lead_sources", move |cancel| {
            let inner = Arc::clone(&inner);
            async move {
                loop {
                    if let Err(e) = manage(&inner).await {
                        tracing::warn!(error = %e, "lead sources: could not read the tasks");
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok::<(), String>(()),
                        () = inner.manager.notified() => {}
                        () = tokio::time::sleep(MANAGER_TICK) => {}
                    }
                }
            }
        });
    }

    /// Looks at `account`'s sources again now (a task or its sources changed).
    pub fn wake(&self, account: AccountId) {
        wake_of(&self.inner, account).notify_one();
        self.inner.manager.notify_one();
    }

    /// A source's state was changed outside its worker (the user retried it): announced, and
    /// its account's worker looks at its sources again.
    pub fn source_changed(&self, ws: WorkspaceId, source: &Source) {
        announce(&self.inner, ws, source);
        self.wake(source.account_id);
    }

    /// True while `account`'s source worker runs.
    pub fn is_running(&self, account: AccountId) -> bool {
        self.inner.workers.is_running(&sources_worker(account))
    }

    /// The last `per_source` posts (at most 100) of each resolved source, newest first, read
    /// through the account's client within its history budget (shared with the worker).
    /// Sources not resolved yet are skipped. `FloodWait` when the budget does not allow the
    /// reads within 15 s.
    pub async fn recent_posts(
        &self,
        account: AccountId,
        sources: &[Source],
        per_source: u32,
    ) -> Result<Vec<Post>, MonitorError> {
        let client = self
            .inner
            .accounts
            .client(account)
            .ok_or(MonitorError::AccountOffline)?;
        let deadline = Instant::now() + RECENT_WAIT;
        let limit = i32::try_from(per_source.clamp(1, 100)).unwrap_or(100);
        let mut posts = Vec::new();
        for source in sources.iter().filter(|s| s.account_id == account) {
            let Some(peer_id) = source.channel_id else {
                continue;
            };
            if !self
                .inner
                .pacing
                .take(account, Call::History, deadline)
                .await
            {
                return Err(MonitorError::FloodWait {
                    seconds: u32::try_from(RECENT_WAIT.as_secs()).unwrap_or(15),
                });
            }
            let chat = ChatRef::stored(peer_id, source.access_hash);
            match channels::latest(&client, &chat, limit).await {
                Ok(h) => posts.extend(h.posts.into_iter().rev()),
                Err(TgError::FloodWait { seconds }) => {
                    self.inner.pacing.block(account, Call::History, seconds);
                    return Err(MonitorError::FloodWait { seconds });
                }
                Err(TgError::Rpc { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(posts)
    }

    /// The channels and groups of the account's dialogs (for picking sources).
    pub async fn dialogs(&self, account: AccountId) -> Result<Vec<DialogChat>, MonitorError> {
        let client = self
            .inner
            .accounts
            .client(account)
            .ok_or(MonitorError::AccountOffline)?;
        let chats = channels::chat_dialogs(&client, DIALOGS).await?;
        self.inner.pacing.with(account, |p| {
            for c in &chats {
                p.remember(c);
            }
        });
        Ok(chats
            .into_iter()
            .map(|c| DialogChat {
                peer_id: c.peer_id,
                title: c.title,
                username: c.username,
                broadcast: c.broadcast,
            })
            .collect())
    }
}

/// A source's state changed: the engine reads the account's sources again (it finds a post's
/// source by its chat) and open pages are told (`source_updated`).
fn announce(inner: &Inner, ws: WorkspaceId, source: &Source) {
    inner.engine.sources_changed(source.account_id);
    inner.events.publish(
        ws,
        Audience::Workspace,
        ServerEvent::SourceUpdated { source },
    );
}

fn wake_of(inner: &Inner, account: AccountId) -> Arc<Notify> {
    let mut wakes = inner.wakes.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(wakes.entry(account).or_default())
}

/// Starts the worker of every running account with active tasks; stops the others.
async fn manage(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let tasks = inner.store.active_tasks().await?;
    let wanted: BTreeSet<AccountId> = tasks
        .iter()
        .map(|t| t.account_id)
        .filter(|a| inner.accounts.is_running(*a))
        .collect();
    for account in &wanted {
        let worker = Arc::clone(inner);
        let account = *account;
        let spec = WorkerSpec::system(&sources_worker(account))
            .required(false)
            .backoff(Backoff::CONNECTION);
        inner.workers.start(spec, move |ctx| {
            let inner = Arc::clone(&worker);
            async move { run_account(&inner, account, &ctx).await }
        });
    }
    let gone: Vec<AccountId> = {
        let mut started = inner.started.lock().unwrap_or_else(|p| p.into_inner());
        let gone = started.difference(&wanted).copied().collect();
        *started = wanted;
        gone
    };
    for account in gone {
        inner.workers.stop(&sources_worker(account)).await;
        // The next run reads the dialogs and sweeps again.
        inner.pacing.with(account, |p| {
            p.dialogs_read = None;
            p.swept_at.clear();
        });
    }
    Ok(())
}

/// One run of an account's worker: passes over its sources until cancelled, sleeping until the
/// next thing is due or a wake-up.
async fn run_account(inner: &Inner, account: AccountId, ctx: &WorkerCtx) -> Exit {
    let ws = match inner.accounts.store().load_account(account).await {
        Ok(a) => a.workspace_id,
        Err(StoreError::NotFound) => return Exit::Stopped,
        Err(e) => return Exit::Retry(e.to_string()),
    };
    let wake = wake_of(inner, account);
    // A new run sweeps every joined channel once: posts made while it was not running.
    inner.pacing.with(account, |p| {
        p.dialogs_read = None;
        p.swept_at.clear();
    });
    ctx.running();
    let cancel = ctx.cancel();
    loop {
        let Some(client) = inner.accounts.client(account) else {
            tokio::select! {
                () = cancel.cancelled() => return Exit::Stopped,
                () = tokio::time::sleep(NO_CLIENT_TICK) => {}
                () = wake.notified() => {}
            }
            continue;
        };
        let worker = Worker {
            inner,
            account,
            ws,
            client: &client,
        };
        let next = tokio::select! {
            () = cancel.cancelled() => return Exit::Stopped,
            r = worker.pass() => r,
        };
        let next = match next {
            Ok(next) => next,
            Err(StepError::FloodWait(s)) => {
                return Exit::RetryAfter(wait_for(s), format!("FLOOD_WAIT_{s}"));
            }
            Err(StepError::Store(e)) => {
                tracing::warn!(account_id = %account, error = %e, "lead sources: store failed");
                return Exit::Retry("store_error".into());
            }
            Err(StepError::Telegram(e)) => {
                tracing::info!(account_id = %account, code = e.code(), "lead sources: Telegram failed");
                return Exit::Retry(e.code().to_string());
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return Exit::Stopped,
            () = wake.notified() => {}
            () = tokio::time::sleep_until(next) => {}
        }
    }
}

/// One account's worker during one pass.
struct Worker<'a> {
    inner: &'a Inner,
    account: AccountId,
    ws: WorkspaceId,
    client: &'a Client,
}

impl Worker<'_> {
    fn publish(&self, source: &Source) {
        announce(self.inner, self.ws, source);
    }

    async fn set_status(&self, source: SourceId, status: SourceStatus) -> Result<(), StepError> {
        match self
            .inner
            .store
            .set_source_status(source, &status, Timestamp::now())
            .await
        {
            Ok(s) => {
                self.publish(&s);
                Ok(())
            }
            // Deleted meanwhile (its tasks moved it to another account, or it merged).
            Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One pass: resolve, leave, poll and sweep what is due; returns when to look again.
    async fn pass(&self) -> Result<Instant, StepError> {
        let mut next = Instant::now() + IDLE_TICK;
        let tasks: Vec<Task> = self
            .inner
            .store
            .active_tasks()
            .await?
            .into_iter()
            .filter(|t| t.account_id == self.account)
            .collect();
        let watched = self.inner.store.watched_sources(self.account).await?;
        let joinable: HashSet<SourceId> = watched
            .iter()
            .filter(|w| {
                w.tasks
                    .iter()
                    .any(|id| tasks.iter().any(|t| t.id == *id && t.join_allowed))
            })
            .map(|w| w.source.id)
            .collect();

        // 0. Failures that can pass are looked at again once they are old enough.
        let recheck_ms = i64::try_from(RECHECK_AFTER.as_millis()).unwrap_or(i64::MAX);
        for w in &watched {
            let s = &w.source;
            let Some(why) = s.failure.as_deref() else {
                continue;
            };
            if s.state != SourceState::Failed || !rechecked(why) {
                continue;
            }
            let due = s.updated_at.0.saturating_add(recheck_ms);
            if due <= Timestamp::now().0 {
                tracing::info!(account_id = %self.account, source_id = %s.id, failure = why,
                    "lead source: resolving a failed source again");
                self.set_status(s.id, SourceStatus::Resolving).await?;
            } else {
                next = next.min(wait_instant(Timestamp(due)));
            }
        }

        // 1. Resolve (and join).
        let pending = self
            .inner
            .store
            .sources_needing_work(self.account, Timestamp::now(), RESOLVE_BATCH)
            .await?;
        let mut waiting = false;
        for source in &pending {
            match self.resolve(source, joinable.contains(&source.id)).await? {
                Resolution::Done => {}
                Resolution::Later(at) => {
                    next = next.min(at);
                    waiting = true;
                    break;
                }
            }
        }
        if !waiting && pending.len() >= RESOLVE_BATCH as usize {
            // A full batch went through and more may wait: the next pass comes at once, while
            // the dialogs just read still give their start points (no history read each).
            next = Instant::now();
        }
        for w in &watched {
            if w.source.state == SourceState::FloodWait
                && let Some(until) = w.source.wait_until
            {
                next = next.min(wait_instant(until));
            }
        }

        // 2. Leave what no active task needs.
        for source in self.inner.store.unused_sources(self.account).await? {
            if let Err(at) = self.inner.pacing.try_take(self.account, Call::Leave) {
                next = next.min(at);
                break;
            }
            self.leave(&source).await?;
        }

        // 3. Poll and 4. sweep.
        for w in &watched {
            let s = &w.source;
            let Some(peer_id) = s.channel_id else {
                continue;
            };
            let chat = ChatRef::stored(peer_id, s.access_hash);
            let (call, every) = match s.state {
                SourceState::Polled => (Call::History, POLL_EVERY),
                SourceState::Joined if chat.is_channel() => (Call::Difference, SWEEP_EVERY),
                _ => continue,
            };
            let last = self.inner.pacing.with(self.account, |p| match call {
                Call::History => p.polled_at.get(&s.id).copied(),
                _ => p.swept_at.get(&s.id).copied(),
            });
            if let Some(last) = last
                && last + every > Instant::now()
            {
                next = next.min(last + every);
                continue;
            }
            let done = match call {
                Call::History => self.poll(s, &chat).await?,
                _ => self.sweep(s, &chat).await?,
            };
            match done {
                Ok(()) => {
                    let now = Instant::now();
                    self.inner.pacing.with(self.account, |p| match call {
                        Call::History => p.polled_at.insert(s.id, now),
                        _ => p.swept_at.insert(s.id, now),
                    });
                    next = next.min(now + every);
                }
                Err(at) => next = next.min(at),
            }
        }
        Ok(next)
    }

    /// A Telegram refusal of a resolution or join: `flood_wait` until then (and the budget
    /// blocked), `failed` with the reason for a refusal; a broken connection ends the pass.
    async fn refused(&self, source: &Source, call: Call, e: TgError) -> Result<(), StepError> {
        match e {
            TgError::FloodWait { seconds: s } => {
                self.inner.pacing.block(self.account, call, s);
                let until = Timestamp::now().plus(wait_for(s));
                self.set_status(source.id, SourceStatus::FloodWait(until))
                    .await
            }
            TgError::Rpc { name, .. } => {
                self.set_status(source.id, SourceStatus::Failed(reason(&name)))
                    .await
            }
            other => Err(StepError::Telegram(other)),
        }
    }

    /// Reads the account's dialogs once per worker run (one `messages.getDialogs` walk): the
    /// chats, with their access hashes, that usernames and dialog picks are found among.
    async fn read_dialogs_once(&self) -> Result<(), StepError> {
        if self
            .inner
            .pacing
            .with(self.account, |p| p.dialogs_read.is_some())
        {
            return Ok(());
        }
        match channels::chat_dialogs(self.client, DIALOGS).await {
            Ok(chats) => self.inner.pacing.with(self.account, |p| {
                for c in &chats {
                    p.remember(c);
                }
                p.dialogs_read = Some(Instant::now());
            }),
            Err(TgError::FloodWait { seconds }) => return Err(StepError::FloodWait(seconds)),
            Err(e @ TgError::Rpc { .. }) => {
                tracing::debug!(code = e.code(), "lead sources: dialogs not read");
                self.inner
                    .pacing
                    .with(self.account, |p| p.dialogs_read = Some(Instant::now()));
            }
            Err(e) => return Err(StepError::Telegram(e)),
        }
        Ok(())
    }

    /// The chat of a username: from the dialogs and earlier resolutions, else resolved.
    async fn username(&self, source: &Source) -> Result<Result<ChatRef, Resolution>, StepError> {
        let key = source.key.to_ascii_lowercase();
        self.read_dialogs_once().await?;
        if let Some(chat) = self
            .inner
            .pacing
            .with(self.account, |p| p.usernames.get(&key).cloned())
        {
            return Ok(Ok(chat));
        }
        if let Err(at) = self.inner.pacing.try_take(self.account, Call::Resolve) {
            return Ok(Err(Resolution::Later(at)));
        }
        match channels::resolve_username(self.client, &key).await {
            Ok(chat) => {
                self.inner.pacing.with(self.account, |p| {
                    p.remember(&chat);
                    p.usernames.insert(key, chat.clone());
                });
                Ok(Ok(chat))
            }
            Err(e) => {
                self.refused(source, Call::Resolve, e).await?;
                Ok(Err(Resolution::Done))
            }
        }
    }

    /// The chat of a `t.me/c/…` link or a dialog pick: its access hash from the account's
    /// dialogs or peer cache, its title from Telegram.
    async fn by_id(&self, source: &Source) -> Result<Result<ChatRef, Resolution>, StepError> {
        let peer_id = match source.kind {
            SourceKind::ChannelId => source
                .key
                .parse::<i64>()
                .ok()
                .and_then(switchboard_telegram::posts::channel_bot_api_id),
            _ => source.key.parse::<i64>().ok(),
        };
        let Some(peer_id) = peer_id else {
            self.set_status(source.id, SourceStatus::Failed("source_invalid".into()))
                .await?;
            return Ok(Err(Resolution::Done));
        };
        let mut known = self
            .inner
            .pacing
            .with(self.account, |p| p.chats.get(&peer_id).cloned());
        if known.is_none() {
            // A chat picked from the dialogs (or joined since the account connected) is found
            // there with its access hash.
            self.read_dialogs_once().await?;
            known = self
                .inner
                .pacing
                .with(self.account, |p| p.chats.get(&peer_id).cloned());
        }
        let hash = match known.as_ref().and_then(|c| c.access_hash) {
            Some(h) => Some(h),
            None => self
                .inner
                .accounts
                .store()
                .get_cached_peer(self.account, peer_id)
                .await?
                .and_then(|p| p.access_hash),
        };
        if let Some(chat) = known.filter(|c| c.head.is_some() && c.member) {
            // Listed among the account's dialogs: title, access hash and where it stands are
            // known, no call needed.
            return Ok(Ok(chat));
        }
        let stored = ChatRef::stored(peer_id, hash);
        if stored.is_channel() && hash.is_none() {
            // Without an access hash the account cannot name the channel: it is not one of its
            // chats.
            self.set_status(source.id, SourceStatus::Failed("channel_unknown".into()))
                .await?;
            return Ok(Err(Resolution::Done));
        }
        match channels::get_chat(self.client, &stored).await {
            Ok(chat) => {
                self.inner.pacing.with(self.account, |p| p.remember(&chat));
                Ok(Ok(chat))
            }
            Err(e) => {
                self.refused(source, Call::Resolve, e).await?;
                Ok(Err(Resolution::Done))
            }
        }
    }

    /// Resolves one source, joins it when allowed, and records where it starts.
    async fn resolve(&self, source: &Source, join_allowed: bool) -> Result<Resolution, StepError> {
        let mut joined_by_us = false;
        let found = match source.kind {
            SourceKind::Username => self.username(source).await?,
            SourceKind::ChannelId | SourceKind::Dialog => self.by_id(source).await?,
            SourceKind::Invite => {
                if let Err(at) = self.inner.pacing.try_take(self.account, Call::Resolve) {
                    return Ok(Resolution::Later(at));
                }
                match channels::check_invite(self.client, &source.key).await {
                    Ok(Invite::Known(chat)) => Ok(chat),
                    Ok(Invite::Joinable { request_needed, .. }) => {
                        if !join_allowed {
                            self.set_status(
                                source.id,
                                SourceStatus::Failed("join_not_allowed".into()),
                            )
                            .await?;
                            return Ok(Resolution::Done);
                        }
                        if request_needed {
                            self.set_status(
                                source.id,
                                SourceStatus::Failed("join_request_needed".into()),
                            )
                            .await?;
                            return Ok(Resolution::Done);
                        }
                        if let Some(r) = self.before_join(source).await? {
                            return Ok(r);
                        }
                        match channels::import_invite(self.client, &source.key).await {
                            Ok(chat) => {
                                joined_by_us = true;
                                Ok(chat)
                            }
                            Err(e) => {
                                self.refused(source, Call::Join, e).await?;
                                return Ok(Resolution::Done);
                            }
                        }
                    }
                    Err(e) => {
                        self.refused(source, Call::Resolve, e).await?;
                        return Ok(Resolution::Done);
                    }
                }
            }
        };
        let mut chat = match found {
            Ok(chat) => chat,
            Err(r) => return Ok(r),
        };
        let state = if chat.member {
            SourceState::Joined
        } else if join_allowed && chat.is_channel() {
            if let Some(r) = self.before_join(source).await? {
                return Ok(r);
            }
            match channels::join(self.client, &chat).await {
                Ok(joined) => {
                    chat = joined;
                    joined_by_us = true;
                    SourceState::Joined
                }
                Err(e) => {
                    self.refused(source, Call::Join, e).await?;
                    return Ok(Resolution::Done);
                }
            }
        } else {
            SourceState::Polled
        };
        self.inner.pacing.with(self.account, |p| p.remember(&chat));
        // Where it starts: its newest message and `pts` (posts before it are not matched) —
        // from the dialogs when they were read a moment ago (no call per source: 200 sources
        // would take minutes of the history budget), else from its history.
        let fresh = self.inner.pacing.with(self.account, |p| {
            p.dialogs_read.is_some_and(|at| at.elapsed() < HEAD_FRESH)
        });
        let (start_id, start_pts) = match chat.head {
            Some(h) if fresh && chat.member => (h.top_message, h.pts),
            _ => {
                if !self
                    .inner
                    .pacing
                    .take(self.account, Call::History, Instant::now() + HISTORY_WINDOW)
                    .await
                {
                    return Ok(Resolution::Later(Instant::now() + HISTORY_GAP));
                }
                match channels::latest(self.client, &chat, 1).await {
                    Ok(h) => (h.last_message_id, h.pts),
                    Err(TgError::FloodWait { seconds }) => {
                        self.inner
                            .pacing
                            .block(self.account, Call::History, seconds);
                        return Ok(Resolution::Later(Instant::now() + wait_for(seconds)));
                    }
                    Err(e) => {
                        self.refused(source, Call::History, e).await?;
                        return Ok(Resolution::Done);
                    }
                }
            }
        };
        let resolved = ResolvedSource {
            channel_id: chat.peer_id,
            access_hash: chat.access_hash,
            title: chat.title.clone(),
            state,
            read_via: if state == SourceState::Joined {
                ReadVia::Updates
            } else {
                ReadVia::History
            },
            joined_by_us: joined_by_us || (source.joined_by_us && state == SourceState::Joined),
        };
        let now = Timestamp::now();
        let mut stored = match self
            .inner
            .store
            .set_source_resolved(source.id, &resolved, now)
            .await
        {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(Resolution::Done),
            Err(e) => return Err(e.into()),
        };
        if stored.last_message_id == 0 && stored.pts.is_none() {
            stored = self
                .inner
                .store
                .advance_source(stored.id, start_id, start_pts, now)
                .await?;
        }
        let at = Instant::now();
        self.inner.pacing.with(self.account, |p| {
            p.polled_at.insert(stored.id, at);
            p.swept_at.insert(stored.id, at);
        });
        tracing::info!(
            account_id = %self.account,
            source_id = %stored.id,
            state = stored.state.as_str(),
            "lead source resolved"
        );
        self.publish(&stored);
        Ok(Resolution::Done)
    }

    /// Before a join: the account's cap (`failed`/`channels_too_much` at [`MAX_CHANNELS`]
    /// joined sources) and the join budget (`Some(Later)` when spent).
    async fn before_join(&self, source: &Source) -> Result<Option<Resolution>, StepError> {
        if self.inner.store.joined_source_count(self.account).await? >= MAX_CHANNELS {
            self.set_status(source.id, SourceStatus::Failed("channels_too_much".into()))
                .await?;
            return Ok(Some(Resolution::Done));
        }
        if let Err(at) = self.inner.pacing.try_take(self.account, Call::Join) {
            return Ok(Some(Resolution::Later(at)));
        }
        Ok(None)
    }

    async fn leave(&self, source: &Source) -> Result<(), StepError> {
        if let Some(peer_id) = source.channel_id {
            let chat = ChatRef::stored(peer_id, source.access_hash);
            if chat.is_channel() {
                match channels::leave(self.client, &chat).await {
                    Ok(()) | Err(TgError::Rpc { .. }) => {}
                    Err(TgError::FloodWait { seconds }) => {
                        self.inner.pacing.block(self.account, Call::Leave, seconds);
                        return Ok(());
                    }
                    Err(e) => return Err(StepError::Telegram(e)),
                }
            }
        }
        self.set_status(source.id, SourceStatus::Left).await
    }

    /// Hands posts to the engine, then advances the source's mark and `pts`.
    async fn deliver(
        &self,
        source: &Source,
        posts: &[Post],
        last_message_id: i64,
        pts: Option<i64>,
    ) -> Result<(), StepError> {
        if !posts.is_empty() {
            self.inner.engine.handle(self.account, posts).await?;
        }
        match self
            .inner
            .store
            .advance_source(source.id, last_message_id, pts, Timestamp::now())
            .await
        {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a polled source above its mark. `Err(at)` when the history budget is spent.
    async fn poll(
        &self,
        source: &Source,
        chat: &ChatRef,
    ) -> Result<Result<(), Instant>, StepError> {
        if let Err(at) = self.inner.pacing.try_take(self.account, Call::History) {
            return Ok(Err(at));
        }
        // One budgeted call per page: a poll reads more pages only while the budget allows.
        let mut mark = source.last_message_id;
        for page in 0..POLL_PAGES {
            if page > 0
                && self
                    .inner
                    .pacing
                    .try_take(self.account, Call::History)
                    .is_err()
            {
                break;
            }
            match channels::history(self.client, chat, mark, 1).await {
                Ok(h) => {
                    self.deliver(source, &h.posts, h.last_message_id, None)
                        .await?;
                    mark = h.last_message_id;
                    if !h.more {
                        break;
                    }
                }
                Err(e) => return self.read_failed(source, Call::History, e).await.map(Ok),
            }
        }
        Ok(Ok(()))
    }

    /// Reconciles a joined channel from its `pts`. `Err(at)` when the budget is spent.
    async fn sweep(
        &self,
        source: &Source,
        chat: &ChatRef,
    ) -> Result<Result<(), Instant>, StepError> {
        let Some(mut pts) = source.pts else {
            // Never read: where it starts is set now.
            if let Err(at) = self.inner.pacing.try_take(self.account, Call::History) {
                return Ok(Err(at));
            }
            return match channels::latest(self.client, chat, 1).await {
                Ok(h) => {
                    self.deliver(source, &[], h.last_message_id, h.pts).await?;
                    Ok(Ok(()))
                }
                Err(e) => self.read_failed(source, Call::History, e).await.map(Ok),
            };
        };
        let mut mark = source.last_message_id;
        for _ in 0..SWEEP_CALLS {
            if let Err(at) = self.inner.pacing.try_take(self.account, Call::Difference) {
                return Ok(Err(at));
            }
            let d = match channels::channel_difference(self.client, chat, pts).await {
                Ok(d) => d,
                Err(e) => return self.read_failed(source, Call::Difference, e).await.map(Ok),
            };
            if d.too_long {
                // Too far behind for a difference: history from the mark, then the new pts.
                if let Err(at) = self.inner.pacing.try_take(self.account, Call::History) {
                    return Ok(Err(at));
                }
                match channels::history(self.client, chat, mark, POLL_PAGES).await {
                    Ok(h) => {
                        self.deliver(source, &h.posts, h.last_message_id, Some(d.pts))
                            .await?;
                    }
                    Err(e) => return self.read_failed(source, Call::History, e).await.map(Ok),
                }
                return Ok(Ok(()));
            }
            self.deliver(source, &d.posts, d.last_message_id.max(mark), Some(d.pts))
                .await?;
            pts = d.pts;
            mark = mark.max(d.last_message_id);
            if d.done {
                break;
            }
        }
        Ok(Ok(()))
    }

    /// A read that Telegram refused: a FloodWait blocks the budget (a long one restarts the
    /// worker after it); `CHANNEL_PRIVATE` and the like fail the source; a broken connection
    /// ends the pass.
    async fn read_failed(&self, source: &Source, call: Call, e: TgError) -> Result<(), StepError> {
        match e {
            TgError::FloodWait { seconds } => {
                self.inner.pacing.block(self.account, call, seconds);
                Err(StepError::FloodWait(seconds))
            }
            TgError::Rpc { name, .. } => {
                tracing::info!(source_id = %source.id, error = %name, "lead source unreadable");
                self.set_status(source.id, SourceStatus::Failed(reason(&name)))
                    .await
            }
            other => Err(StepError::Telegram(other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_keeps_its_gap_and_its_window() {
        let mut b = Budget::new(3, Duration::from_secs(60), Duration::from_secs(3));
        let t0 = Instant::now();
        assert!(b.try_take(t0).is_ok());
        let at = b.try_take(t0).unwrap_err();
        assert!(at >= t0 + Duration::from_secs(3) && at <= t0 + Duration::from_secs(4));
        let t1 = t0 + Duration::from_secs(4);
        assert!(b.try_take(t1).is_ok());
        let t2 = t1 + Duration::from_secs(4);
        assert!(b.try_take(t2).is_ok());
        // Three calls within the minute: the fourth waits for the first to leave the window.
        let at = b.try_take(t2 + Duration::from_secs(4)).unwrap_err();
        assert_eq!(at, t0 + Duration::from_secs(60));
        assert!(b.try_take(t0 + Duration::from_secs(60)).is_ok());
        b.block(t0 + Duration::from_secs(500));
        assert_eq!(
            b.try_take(t0 + Duration::from_secs(100)).unwrap_err(),
            t0 + Duration::from_secs(500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_resolutions_take_at_least_a_minute() {
        let pacing = Pacing::default();
        let a = AccountId(1);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(3600);
        for _ in 0..21 {
            assert!(pacing.take(a, Call::Resolve, deadline).await);
        }
        // 21 calls: the 21st waits for the first to leave the 60 s window, and the gaps alone
        // are at least 20 × 3 s.
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }

    #[test]
    fn refusals_become_reason_codes() {
        assert_eq!(reason("CHANNELS_TOO_MUCH"), "channels_too_much");
        assert_eq!(reason("USERNAME_NOT_OCCUPIED"), "username_not_occupied");
        assert_eq!(reason("INVITE_REQUEST_SENT"), "join_request_sent");
    }
}
