//! Delivery of leads (SKELETON — the delivery helper replaces the bodies): the lead delivery
//! queue sent through the reading account (Saved Messages, a chat) or a workspace bot, instant
//! or as digests, FloodWait waited out, never dropped, never doubled.

use std::sync::Arc;
use tokio::sync::Notify;

/// The delivery worker's handle.
#[derive(Clone, Default)]
pub struct LeadDelivery {
    wake: Arc<Notify>,
}

impl LeadDelivery {
    /// Something was queued: look at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
