//! The supervisor of background work: every worker has a name, a visible state, is restarted
//! with exponential backoff when it fails or panics, and stops when the supervisor is cancelled
//! (with a deadline for the whole shutdown).

use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::Timestamp;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Doing its work.
    Running,
    /// Failed; waiting before the next restart.
    Backoff,
    /// Finished after cancellation.
    Stopped,
}

/// What the status page and `/readyz` show about a worker.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    /// Stable name, e.g. `web_session_purger`.
    pub name: String,
    /// Current state.
    pub state: WorkerState,
    /// How many times it was restarted after a failure.
    pub restarts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the state last changed.
    pub since: Timestamp,
}

/// Owns all background workers.
#[derive(Clone)]
pub struct Workers {
    cancel: CancellationToken,
    tracker: TaskTracker,
    statuses: Arc<Mutex<BTreeMap<String, WorkerStatus>>>,
    max_backoff: Duration,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    /// An empty supervisor.
    pub fn new() -> Self {
        Self {
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            statuses: Arc::new(Mutex::new(BTreeMap::new())),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// The token cancelled at shutdown; workers select on it.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Starts a named worker. `run` is called again after each failure (with backoff); a
    /// worker that returns `Ok` before cancellation is also restarted, since workers are meant
    /// to run until shutdown.
    pub fn spawn<F, Fut>(&self, name: &str, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let name = name.to_string();
        let statuses = Arc::clone(&self.statuses);
        let cancel = self.cancel.clone();
        let max_backoff = self.max_backoff;
        set_state(&statuses, &name, WorkerState::Running, None, false);
        self.tracker.spawn(async move {
            let mut delay = Duration::from_millis(500);
            loop {
                let attempt = tokio::spawn(run(cancel.child_token()));
                let outcome = match attempt.await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(join) if join.is_panic() => Some("worker panicked".to_string()),
                    Err(_) => Some("worker was aborted".to_string()),
                };
                if cancel.is_cancelled() {
                    set_state(&statuses, &name, WorkerState::Stopped, outcome, false);
                    return;
                }
                let error = outcome.unwrap_or_else(|| "worker exited early".to_string());
                tracing::warn!(worker = %name, error = %error, delay_ms = delay.as_millis() as u64, "worker failed; restarting");
                set_state(&statuses, &name, WorkerState::Backoff, Some(error), false);
                tokio::select! {
                    _ = cancel.cancelled() => {
                        set_state(&statuses, &name, WorkerState::Stopped, None, false);
                        return;
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(max_backoff);
                set_state(&statuses, &name, WorkerState::Running, None, true);
            }
        });
    }

    /// Every worker's status, by name.
    pub fn statuses(&self) -> Vec<WorkerStatus> {
        self.statuses
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// True when no worker is in backoff.
    pub fn healthy(&self) -> bool {
        self.statuses()
            .iter()
            .all(|s| s.state != WorkerState::Backoff)
    }

    /// Cancels every worker and waits up to `deadline` for them to finish; false on timeout.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
    }
}

fn set_state(
    statuses: &Mutex<BTreeMap<String, WorkerStatus>>,
    name: &str,
    state: WorkerState,
    error: Option<String>,
    restarted: bool,
) {
    let Ok(mut map) = statuses.lock() else { return };
    let entry = map.entry(name.to_string()).or_insert_with(|| WorkerStatus {
        name: name.to_string(),
        state,
        restarts: 0,
        last_error: None,
        since: Timestamp::now(),
    });
    entry.state = state;
    entry.since = Timestamp::now();
    if error.is_some() {
        entry.last_error = error;
    }
    if restarted {
        entry.restarts += 1;
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(s.state, WorkerState::Backoff);
        assert_eq!(s.last_error.as_deref(), Some("worker panicked"));
        assert!(workers.shutdown(Duration::from_secs(1)).await);
    }
}
