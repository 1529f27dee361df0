//! The matching engine at run time (SKELETON — the engine helper replaces the bodies).

use crate::events::EventBus;
use crate::lead_delivery::LeadDelivery;
use std::sync::Arc;
use switchboard_domain::{AccountId, Lead, LeadStore, Post, StoreError};

/// Posts in, leads out (see the module docs of `monitor`).
#[derive(Clone)]
pub struct Engine {
    #[allow(dead_code)]
    store: Arc<dyn LeadStore>,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    delivery: LeadDelivery,
}

impl Engine {
    /// An engine over the lead store.
    pub fn new(store: Arc<dyn LeadStore>, events: EventBus, delivery: LeadDelivery) -> Self {
        Self {
            store,
            events,
            delivery,
        }
    }

    /// Matches `posts` of `account`'s sources, stores the leads, publishes them, wakes delivery
    /// and advances the high-water marks. Returns the new leads.
    pub async fn handle(
        &self,
        _account: AccountId,
        _posts: &[Post],
    ) -> Result<Vec<Lead>, StoreError> {
        Ok(Vec::new())
    }

    /// Rebuilds the matcher from the active tasks, off the hot path.
    pub fn tasks_changed(&self) {}
}
