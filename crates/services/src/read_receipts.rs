//! Read receipts to Telegram: when an operator reads a chat that had unread messages, Telegram
//! is told (`messages.readHistory` through the account's own client), at most once per chat per
//! [`READ_RECEIPT_INTERVAL`]. Reads within the interval are merged into one receipt up to the
//! newest message, sent when the interval is over, so a client that marks a chat read on every
//! new message does not flood Telegram (which answers that with `FLOOD_WAIT`).

use crate::inbox::Inbox;
use crate::workers::Tasks;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use switchboard_domain::{Chat, ChatId};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Shortest time between two read receipts of one chat.
pub const READ_RECEIPT_INTERVAL: Duration = Duration::from_secs(3);

/// How long one receipt may take before it is given up.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Default)]
struct State {
    /// Receipts to send: the chat and the newest Telegram message id read.
    pending: HashMap<ChatId, (Chat, i64)>,
    /// When each chat's last receipt went out.
    last_sent: HashMap<ChatId, Instant>,
}

/// The queue of read receipts, drained by [`run`].
#[derive(Default)]
pub struct ReadReceipts {
    state: Mutex<State>,
    wake: Notify,
}

impl ReadReceipts {
    /// Queues a receipt for `chat` up to `max_tg_id` (merged with one already queued).
    pub fn queue(&self, chat: &Chat, max_tg_id: i64) {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let entry = state
                .pending
                .entry(chat.id)
                .or_insert_with(|| (chat.clone(), max_tg_id));
            entry.0 = chat.clone();
            entry.1 = entry.1.max(max_tg_id);
        }
        self.wake.notify_one();
    }

    /// Takes the receipts that are due at `now` (marking them sent) and tells when the next
    /// one left waiting is due.
    fn take_due(&self, now: Instant) -> (Vec<(Chat, i64)>, Option<Instant>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { pending, last_sent } = &mut *state;
        last_sent.retain(|_, at| now.duration_since(*at) < READ_RECEIPT_INTERVAL);
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        pending.retain(|chat, receipt| match last_sent.get(chat) {
            Some(at) => {
                let at = *at + READ_RECEIPT_INTERVAL;
                next = Some(next.map_or(at, |n| n.min(at)));
                true
            }
            None => {
                due.push(receipt.clone());
                false
            }
        });
        for (chat, _) in &due {
            last_sent.insert(chat.id, now);
        }
        (due, next)
    }
}

/// The `read_receipts` worker: sends queued receipts through each chat's transport until
/// `cancel` fires (each in its own task of `sending`, so a slow account does not hold up the
/// others).
pub async fn run(inbox: Inbox, cancel: CancellationToken, sending: Tasks) {
    let receipts = inbox.read_receipts();
    loop {
        let (due, next) = receipts.take_due(Instant::now());
        for (chat, max_id) in due {
            let Some(transport) = inbox.transport_for(&chat) else {
                continue;
            };
            sending.spawn(async move {
                match tokio::time::timeout(RECEIPT_TIMEOUT, transport.mark_read(&chat, max_id))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::info!(chat_id = %chat.id, code = e.code(), "read receipt not sent");
                    }
                    Err(_) => tracing::info!(chat_id = %chat.id, "read receipt timed out"),
                }
            });
        }
        let wait_until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = receipts.wake.notified() => {}
            _ = tokio::time::sleep_until(wait_until) => {}
        }
    }
}
