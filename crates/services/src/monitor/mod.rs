//! Lead monitoring at run time: the matching [`engine`] (posts in, leads out), the per-account
//! [`sources`] workers (resolve, join, poll, reconcile, leave) and the facade the web layer and
//! the binary hold, [`Monitor`]. Delivery of the leads found is `crate::lead_delivery`.
//!
//! CONTRACT (session 6 skeleton; each helper replaces its part):
//! - `engine::Engine::handle` — matches posts of one account against the active tasks that watch
//!   their source, stores the leads (`LeadStore::insert_leads`), publishes `lead_found`, wakes the
//!   delivery worker and advances each source's high-water mark. Called by the account's update
//!   writer (live posts), by the sources worker (polled and swept posts) and never blocks
//!   matching on a rebuild.
//! - `engine::Engine::tasks_changed` — rebuilds the matcher off the hot path.
//! - `sources::Sources` — one worker per reading account under `Workers`.
//! - `Monitor::recent_posts` — the "try it" box: the last posts of some sources.

pub mod engine;
pub mod sources;

use crate::lead_delivery::LeadDelivery;
use std::sync::Arc;
use switchboard_domain::{AccountId, LeadStore, Post, Source, WorkspaceId};

/// Why the monitor could not do what was asked (a stable code, never a secret).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The reading account has no live client now.
    #[error("the reading account is not connected")]
    AccountOffline,
    /// Telegram asked to wait.
    #[error("Telegram asked to wait {seconds} s")]
    FloodWait {
        /// Seconds.
        seconds: u32,
    },
    /// Telegram refused; its error name.
    #[error("Telegram refused: {0}")]
    Telegram(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] switchboard_domain::StoreError),
}

/// What the web layer and the binary hold.
#[derive(Clone)]
pub struct Monitor {
    engine: engine::Engine,
    sources: sources::Sources,
    store: Arc<dyn LeadStore>,
}

impl Monitor {
    /// The monitor over its parts.
    pub fn new(
        engine: engine::Engine,
        sources: sources::Sources,
        store: Arc<dyn LeadStore>,
    ) -> Self {
        Self {
            engine,
            sources,
            store,
        }
    }

    /// The matching engine.
    pub fn engine(&self) -> &engine::Engine {
        &self.engine
    }

    /// The per-account source workers.
    pub fn sources(&self) -> &sources::Sources {
        &self.sources
    }

    /// The lead store.
    pub fn store(&self) -> &Arc<dyn LeadStore> {
        &self.store
    }

    /// A task was created, changed, paused, resumed or deleted, or its sources changed: the
    /// matcher is rebuilt and the account's source worker looks at its sources again.
    pub fn tasks_changed(&self, account: Option<AccountId>) {
        self.engine.tasks_changed();
        if let Some(account) = account {
            self.sources.wake(account);
        }
    }

    /// A source's state was changed outside its worker (the user retried it): it is announced
    /// (`source_updated`) and the account's worker looks at its sources again.
    pub fn source_changed(&self, ws: WorkspaceId, source: &Source) {
        self.sources.source_changed(ws, source);
    }

    /// The last `per_source` posts of each of `sources` (the "try it" box), newest first.
    pub async fn recent_posts(
        &self,
        account: AccountId,
        sources: &[Source],
        per_source: u32,
    ) -> Result<Vec<Post>, MonitorError> {
        self.sources
            .recent_posts(account, sources, per_source)
            .await
    }
}

/// Kept so the skeleton names the delivery type the engine wakes.
pub type Delivery = LeadDelivery;
