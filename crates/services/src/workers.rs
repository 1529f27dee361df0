//! The one supervisor of background work. Every long-running job — the outbox, read receipts,
//! the purgers, one worker per account and one per bot — is a named worker started with
//! [`Workers::start`] (or [`Workers::spawn`] for a simple loop): its state is visible
//! ([`WorkerStatus`]: starting, running, backing off until when, stopped, failed, with the last
//! error and the restart count), it is restarted with capped exponential backoff and jitter when
//! it fails, panics or ends early, it is cancelled when stopped by name or at shutdown, and
//! shutdown waits for it only up to a deadline. One-shot tasks that a worker or a request starts
//! (an import, a client's connection pool and update relay, a bot's file download) run in a
//! named [`Tasks`] group, so they too have an owner that shutdown waits for.
//!
//! This is the only module that spawns tokio tasks; `clippy.toml` disallows `tokio::spawn` and
//! its relatives everywhere else.

use crate::retry::jitter;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchboard_domain::{AccountId, BotId, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Started (or restarted), not yet doing its work (an account worker connecting).
    Starting,
    /// Doing its work.
    Running,
    /// Failed; waiting until `next_attempt_at` before the next restart.
    BackingOff,
    /// Ended: stopped by its owner, at shutdown, or finished for good.
    Stopped,
    /// Gave up (an account whose session was revoked); not restarted until started again.
    Failed,
}

impl WorkerState {
    /// The stable name (`backing_off`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Running => "running",
            WorkerState::BackingOff => "backing_off",
            WorkerState::Stopped => "stopped",
            WorkerState::Failed => "failed",
        }
    }
}

/// What a worker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// Server-wide work: the outbox, read receipts, the purgers.
    System,
    /// One Telegram account's client.
    Account,
    /// One bot's updates.
    Bot,
}

/// What the status page and `/readyz` show about a worker. Errors are stable codes or short
/// sentences, never secrets.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    /// Stable name, e.g. `web_session_purger`, `account:7`, `bot:3`.
    pub name: String,
    /// What it does.
    pub kind: WorkerKind,
    /// Whether the server is ready only while it runs (`/readyz`).
    pub required: bool,
    /// Current state.
    pub state: WorkerState,
    /// How many times it was restarted after a failure.
    pub restarts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// While backing off: when the next attempt starts.
    pub next_attempt_at: Option<Timestamp>,
    /// When the state last changed.
    pub since: Timestamp,
}

/// How a failed worker is restarted: the first wait is `initial`, each further failure in a
/// row doubles it up to `max`, each wait is jittered by ±25%, and a worker that reported itself
/// running ([`WorkerCtx::running`]) starts again from `initial`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// For server-wide workers.
    pub const SYSTEM: Backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(60),
    };
    /// For connections to Telegram (accounts, bots).
    pub const CONNECTION: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
}

/// What [`Workers::start`] starts.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    name: String,
    kind: WorkerKind,
    required: bool,
    backoff: Backoff,
}

impl WorkerSpec {
    /// A required server-wide worker.
    pub fn system(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: WorkerKind::System,
            required: true,
            backoff: Backoff::SYSTEM,
        }
    }

    /// An account's worker (not required: one account's trouble does not make the server
    /// unready).
    pub fn account(id: AccountId) -> Self {
        Self {
            name: account_worker(id),
            kind: WorkerKind::Account,
            required: false,
            backoff: Backoff::CONNECTION,
        }
    }

    /// A bot's worker (not required).
    pub fn bot(id: BotId) -> Self {
        Self {
            name: bot_worker(id),
            kind: WorkerKind::Bot,
            required: false,
            backoff: Backoff::CONNECTION,
        }
    }

    /// With another restart policy.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Required or not for readiness.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }
}

/// The worker name of an account.
pub fn account_worker(id: AccountId) -> String {
    format!("account:{id}")
}

/// The worker name of a bot.
pub fn bot_worker(id: BotId) -> String {
    format!("bot:{id}")
}

/// How one run of a worker ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Finished for good (also what a cancelled worker returns): not restarted.
    Stopped,
    /// Failed: restarted after the backoff.
    Retry(String),
    /// Failed: restarted after exactly this wait (a FloodWait, a `retry_after`).
    RetryAfter(Duration, String),
    /// Gave up: stays `failed` with this error, not restarted.
    Failed(String),
}

/// What a worker's run gets: its cancellation, which attempt this is, and a way to say it is
/// doing its work.
pub struct WorkerCtx {
    cancel: CancellationToken,
    attempt: u32,
    status: Arc<Mutex<WorkerStatus>>,
    ready: Arc<AtomicBool>,
}

impl WorkerCtx {
    /// Fires when the worker is stopped or the server shuts down.
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// 0 for the first run, then 1, 2, … for each restart.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The worker is doing its work (an account connected): its state becomes `running` and
    /// the backoff starts again from the beginning after its next failure.
    pub fn running(&self) {
        self.ready.store(true, Ordering::Relaxed);
        set(&self.status, WorkerState::Running, None, None);
    }
}

struct Slot {
    status: Arc<Mutex<WorkerStatus>>,
    cancel: CancellationToken,
    done: watch::Receiver<bool>,
}

struct Shared {
    cancel: CancellationToken,
    tracker: TaskTracker,
    slots: Mutex<BTreeMap<String, Slot>>,
    groups: Mutex<Vec<Tasks>>,
}

/// Owns all background work. Cloning shares it.
#[derive(Clone)]
pub struct Workers {
    shared: Arc<Shared>,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the server is ready, as far as its workers go.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// Every required worker is running.
    pub ready: bool,
    /// The required workers that are not running.
    pub failing: Vec<WorkerStatus>,
}

impl Workers {
    /// An empty supervisor.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                cancel: CancellationToken::new(),
                tracker: TaskTracker::new(),
                slots: Mutex::new(BTreeMap::new()),
                groups: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The token cancelled at shutdown.
    pub fn cancel_token(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Starts a required server-wide worker that runs a loop until `cancel` fires. It is
    /// `running` from the start; an `Err`, a panic or an early `Ok` restarts it with backoff.
    pub fn spawn<F, Fut>(&self, name: &str, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.start_with(WorkerSpec::system(name), true, move |ctx: WorkerCtx| {
            let cancel = ctx.cancel().clone();
            let run = run(cancel.clone());
            async move {
                match run.await {
                    Ok(()) if cancel.is_cancelled() => Exit::Stopped,
                    Ok(()) => Exit::Retry("worker exited early".into()),
                    Err(e) => Exit::Retry(e),
                }
            }
        });
    }

    /// Starts a worker unless one of that name runs (or backs off); true if started now. The
    /// worker is `starting` until it calls [`WorkerCtx::running`]; `run` is called again for
    /// each restart. A stopped or failed worker of that name is replaced.
    pub fn start<F, Fut>(&self, spec: WorkerSpec, run: F) -> bool
    where
        F: Fn(WorkerCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Exit> + Send + 'static,
    {
        self.start_with(spec, false, run)
    }

    fn start_with<F, Fut>(&self, spec: WorkerSpec, running_at_start: bool, run: F) -> bool
    where
        F: Fn(WorkerCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Exit> + Send + 'static,
    {
        let mut slots = self.slots();
        if slots.get(&spec.name).is_some_and(|s| !*s.done.borrow()) {
            return false;
        }
        if self.shared.cancel.is_cancelled() {
            return false;
        }
        let first = if running_at_start {
            WorkerState::Running
        } else {
            WorkerState::Starting
        };
        let status = Arc::new(Mutex::new(WorkerStatus {
            name: spec.name.clone(),
            kind: spec.kind,
            required: spec.required,
            state: first,
            restarts: 0,
            last_error: None,
            next_attempt_at: None,
            since: Timestamp::now(),
        }));
        let cancel = self.shared.cancel.child_token();
        let (done_tx, done) = watch::channel(false);
        slots.insert(
            spec.name.clone(),
            Slot {
                status: Arc::clone(&status),
                cancel: cancel.clone(),
                done,
            },
        );
        drop(slots);
        let supervised = Supervised {
            run,
            backoff: spec.backoff,
            first,
            status,
            cancel,
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "the supervisor is the one place that spawns tasks"
        )]
        self.shared.tracker.spawn(async move {
            supervised.run().await;
            let _ = done_tx.send(true);
        });
        true
    }

    /// True while the named worker runs or backs off.
    pub fn is_running(&self, name: &str) -> bool {
        self.slots().get(name).is_some_and(|s| !*s.done.borrow())
    }

    /// Stops the named worker, waits until it ended, and forgets it.
    pub async fn stop(&self, name: &str) {
        self.stop_all([name.to_string()]).await;
    }

    /// Stops the named workers together (all are told first, then each is waited for) and
    /// forgets them.
    pub async fn stop_all(&self, names: impl IntoIterator<Item = String>) {
        let stopping: Vec<Slot> = {
            let mut slots = self.slots();
            names.into_iter().filter_map(|n| slots.remove(&n)).collect()
        };
        for s in &stopping {
            s.cancel.cancel();
        }
        for Slot { mut done, .. } in stopping {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// The named worker's status.
    pub fn status(&self, name: &str) -> Option<WorkerStatus> {
        self.slots().get(name).map(|s| lock(&s.status).clone())
    }

    /// Every worker's status, by name.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        self.slots()
            .values()
            .map(|s| lock(&s.status).clone())
            .collect()
    }

    /// Ready when every required worker runs; lists those that do not.
    pub fn readiness(&self) -> Readiness {
        let failing: Vec<WorkerStatus> = self
            .statuses()
            .into_iter()
            .filter(|s| s.required && s.state != WorkerState::Running)
            .collect();
        Readiness {
            ready: failing.is_empty(),
            failing,
        }
    }

    /// True when every required worker runs.
    pub fn healthy(&self) -> bool {
        self.readiness().ready
    }

    /// A named group of one-shot tasks owned by this supervisor: shutdown waits for them.
    pub fn tasks(&self, name: &'static str) -> Tasks {
        let tasks = Tasks {
            name,
            tracker: TaskTracker::new(),
        };
        lock(&self.shared.groups).push(tasks.clone());
        tasks
    }

    /// Cancels every worker and waits up to `deadline` for them and for every task group to
    /// finish; false on timeout.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let groups: Vec<Tasks> = lock(&self.shared.groups).clone();
        let all = async {
            self.shared.tracker.wait().await;
            for g in &groups {
                g.tracker.close();
                g.tracker.wait().await;
            }
        };
        let finished = tokio::time::timeout(deadline, all).await.is_ok();
        if !finished {
            let late: Vec<String> = self
                .statuses()
                .into_iter()
                .filter(|s| s.state != WorkerState::Stopped && s.state != WorkerState::Failed)
                .map(|s| s.name)
                .collect();
            tracing::warn!(?late, "background work did not stop in time");
        }
        finished
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        lock(&self.shared.slots)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn set(
    status: &Mutex<WorkerStatus>,
    state: WorkerState,
    error: Option<String>,
    next_attempt_at: Option<Timestamp>,
) {
    let mut s = lock(status);
    if s.state != state {
        s.since = Timestamp::now();
    }
    s.state = state;
    s.next_attempt_at = next_attempt_at;
    if error.is_some() {
        s.last_error = error;
    }
}

/// One worker's restart loop.
struct Supervised<F> {
    run: F,
    backoff: Backoff,
    first: WorkerState,
    status: Arc<Mutex<WorkerStatus>>,
    cancel: CancellationToken,
}

impl<F, Fut> Supervised<F>
where
    F: Fn(WorkerCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Exit> + Send + 'static,
{
    async fn run(self) {
        let name = lock(&self.status).name.clone();
        let mut delay = self.backoff.initial;
        let mut attempt = 0u32;
        loop {
            let ready = Arc::new(AtomicBool::new(false));
            let ctx = WorkerCtx {
                cancel: self.cancel.clone(),
                attempt,
                status: Arc::clone(&self.status),
                ready: Arc::clone(&ready),
            };
            // A task of its own, so a panic is caught and reported like a failure.
            #[expect(
                clippy::disallowed_methods,
                reason = "the supervisor is the one place that spawns tasks"
            )]
            let exit = match tokio::spawn((self.run)(ctx)).await {
                Ok(exit) => exit,
                Err(join) if join.is_panic() => Exit::Retry("worker panicked".into()),
                Err(_) => Exit::Retry("worker was aborted".into()),
            };
            let (wait, error) = match exit {
                _ if self.cancel.is_cancelled() => {
                    set(&self.status, WorkerState::Stopped, None, None);
                    return;
                }
                Exit::Stopped => {
                    set(&self.status, WorkerState::Stopped, None, None);
                    return;
                }
                Exit::Failed(e) => {
                    tracing::warn!(worker = %name, error = %e, "worker gave up");
                    set(&self.status, WorkerState::Failed, Some(e), None);
                    return;
                }
                Exit::Retry(e) => {
                    if ready.load(Ordering::Relaxed) {
                        delay = self.backoff.initial;
                    }
                    let wait = jitter(delay);
                    delay = (delay * 2).min(self.backoff.max);
                    (wait, e)
                }
                Exit::RetryAfter(wait, e) => {
                    if ready.load(Ordering::Relaxed) {
                        delay = self.backoff.initial;
                    }
                    (wait, e)
                }
            };
            tracing::warn!(worker = %name, error = %error, wait_ms = wait.as_millis() as u64, "worker failed; restarting");
            set(
                &self.status,
                WorkerState::BackingOff,
                Some(error),
                Some(Timestamp::now().plus(wait)),
            );
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    set(&self.status, WorkerState::Stopped, None, None);
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            attempt += 1;
            lock(&self.status).restarts += 1;
            set(&self.status, self.first, None, None);
        }
    }
}

/// A named group of one-shot tasks owned by the supervisor ([`Workers::tasks`]): imports,
/// a worker's helpers, a client's connection pool and update relay. Cloning shares it.
#[derive(Clone)]
pub struct Tasks {
    name: &'static str,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("name", &self.name)
            .field("running", &self.tracker.len())
            .finish()
    }
}

impl Tasks {
    /// Runs `task` in the group; its handle gives its result (or its panic).
    #[expect(
        clippy::disallowed_methods,
        reason = "the supervisor is the one place that spawns tasks"
    )]
    pub fn spawn<T>(&self, task: T) -> JoinHandle<T::Output>
    where
        T: Future + Send + 'static,
        T::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Tasks of the group still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// True when no task of the group runs.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Waits up to `deadline` for the tasks running now (and any they start meanwhile) to
    /// finish; true when none is left. The group stays usable.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.tracker.close();
        let done = tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok();
        self.tracker.reopen();
        done
    }
}

impl switchboard_telegram::Spawn for Tasks {
    fn spawn(
        &self,
        name: &'static str,
        task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
    ) -> JoinHandle<()> {
        tracing::trace!(group = self.name, task = name, "task started");
        Tasks::spawn(self, task)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn failing_worker_is_restarted_with_backoff_and_stops_on_shutdown() {
        let workers = Workers::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = Arc::clone(&runs);
        workers.spawn("flaky", move |cancel| {
            let r = Arc::clone(&r);
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst);
                if n < 2 {
                    return Err(format!("boom {n}"));
                }
                cancel.cancelled().await;
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!workers.healthy(), "first failure puts it in backoff");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let status = workers.statuses();
        assert_eq!(status[0].state, WorkerState::Running);
        assert_eq!(status[0].restarts, 2);
        assert_eq!(status[0].last_error.as_deref(), Some("boom 1"));
        assert!(workers.healthy());
        assert!(workers.shutdown(Duration::from_secs(5)).await);
        assert_eq!(workers.statuses()[0].state, WorkerState::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn panicking_worker_is_reported() {
        let workers = Workers::new();
        workers.spawn("panicky", |_cancel| async move {
            if Timestamp::now().0 > 0 {
                panic!("bad state");
            }
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = &workers.statuses()[0];
        assert_eq!(s.state, WorkerState::BackingOff);
        assert_eq!(s.last_error.as_deref(), Some("worker panicked"));
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }

    /// Records each state a worker passes through, as a status poller would see it.
    async fn states_until(workers: &Workers, name: &str, last: WorkerState) -> Vec<WorkerState> {
        let mut seen: Vec<WorkerState> = Vec::new();
        for _ in 0..10_000 {
            if let Some(s) = workers.status(name)
                && seen.last() != Some(&s.state)
            {
                seen.push(s.state);
                if s.state == last {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} never reached {last:?}; saw {seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_goes_through_starting_running_backing_off_and_back() {
        let workers = Workers::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = Arc::clone(&runs);
        let started = workers.start(WorkerSpec::system("conn"), move |ctx| {
            let r = Arc::clone(&r);
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                if n == 0 {
                    ctx.running();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Exit::Retry("connection_lost".into());
                }
                if n < 4 {
                    return Exit::Retry(format!("refused {n}"));
                }
                ctx.running();
                ctx.cancel().cancelled().await;
                Exit::Stopped
            }
        });
        assert!(started);
        assert!(
            !workers.start(WorkerSpec::system("conn"), |_| async { Exit::Stopped }),
            "one worker per name"
        );
        let seen = states_until(&workers, "conn", WorkerState::BackingOff).await;
        assert_eq!(
            seen,
            [
                WorkerState::Starting,
                WorkerState::Running,
                WorkerState::BackingOff
            ]
        );
        let s = workers.status("conn").unwrap();
        assert_eq!(s.last_error.as_deref(), Some("connection_lost"));
        let next = s.next_attempt_at.unwrap().0 - Timestamp::now().0;
        assert!((300..=1_300).contains(&next), "first wait ~1 s: {next}");
        assert!(!workers.healthy(), "a required worker backing off");
        let readiness = workers.readiness();
        assert_eq!(readiness.failing[0].name, "conn");

        // Three refusals in a row: the waits grow (0.5, 1, 2, 4 s, each ±25%), each run
        // taking 0.2 s.
        let t0 = tokio::time::Instant::now();
        let seen = states_until(&workers, "conn", WorkerState::Running).await;
        assert!(seen.contains(&WorkerState::Starting), "{seen:?}");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(6_300) && took <= Duration::from_millis(10_300),
            "{took:?}"
        );
        let s = workers.status("conn").unwrap();
        assert_eq!(s.restarts, 4);
        assert_eq!(s.last_error.as_deref(), Some("refused 3"));
        assert!(s.next_attempt_at.is_none());
        assert!(workers.healthy());

        workers.stop("conn").await;
        assert!(
            workers.status("conn").is_none(),
            "a stopped worker is forgotten"
        );
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_capped() {
        let workers = Workers::new();
        let spec = WorkerSpec::system("down").backoff(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
        });
        workers.start(spec, |_| async { Exit::Retry("down".into()) });
        tokio::time::sleep(Duration::from_secs(60)).await;
        let s = workers.status("down").unwrap();
        // 1 + 2 + 4 + 4 + … s (±25%): about 15 restarts in a minute, never a longer wait.
        assert!((11..=20).contains(&s.restarts), "{}", s.restarts);
        let next = s.next_attempt_at.unwrap().0 - Timestamp::now().0;
        assert!(next <= 5_000, "{next}");
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_workers_stay_failed_and_retry_after_waits_as_told() {
        let workers = Workers::new();
        workers.start(WorkerSpec::system("revoked"), |_| async {
            Exit::Failed("session revoked".into())
        });
        let runs = Arc::new(AtomicU32::new(0));
        let r = Arc::clone(&runs);
        workers.start(WorkerSpec::system("flood"), move |ctx| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Exit::RetryAfter(Duration::from_secs(30), "FLOOD_WAIT_30".into())
                } else {
                    ctx.cancel().cancelled().await;
                    Exit::Stopped
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = workers.status("revoked").unwrap();
        assert_eq!(s.state, WorkerState::Failed);
        assert_eq!(s.last_error.as_deref(), Some("session revoked"));
        assert!(!workers.is_running("revoked"));
        let s = workers.status("flood").unwrap();
        assert_eq!(s.state, WorkerState::BackingOff);
        tokio::time::sleep(Duration::from_secs(28)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "still waiting");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A failed worker can be started again.
        assert!(
            workers.start(WorkerSpec::system("revoked"), |ctx| async move {
                ctx.running();
                ctx.cancel().cancelled().await;
                Exit::Stopped
            })
        );
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_workers_and_tasks_only_up_to_its_deadline() {
        let workers = Workers::new();
        workers.spawn("polite", |cancel| async move {
            cancel.cancelled().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        });
        let tasks = workers.tasks("uploads");
        let finished = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&finished);
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            f.store(true, Ordering::SeqCst);
        });
        let t0 = tokio::time::Instant::now();
        assert!(workers.shutdown(Duration::from_secs(5)).await);
        assert!(finished.load(Ordering::SeqCst), "tasks are waited for");
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(workers.statuses()[0].state, WorkerState::Stopped);

        let workers = Workers::new();
        workers.spawn("stubborn", |_cancel| async move {
            std::future::pending::<()>().await;
            Ok(())
        });
        let t0 = tokio::time::Instant::now();
        assert!(!workers.shutdown(Duration::from_secs(2)).await);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_millis(2_100),
            "{took:?}"
        );
    }
}
