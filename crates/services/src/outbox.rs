//! The durable outbox sender. Replies are written with their outbox item in one transaction
//! ([`crate::inbox::Inbox::reply`]); this worker claims due items, paces them (1 message a
//! second per private chat, 20 a minute per group, 30 a second per bot), hands each to the
//! transport of its chat's owner, and records the outcome: sent, retried later with exponential
//! backoff and jitter (or after Telegram's `FLOOD_WAIT_X` / `retry_after`), or failed with a
//! stable reason. A crash while sending loses nothing: personal-account items go back to the
//! queue and are resent with the same MTProto `random_id` — Telegram answers a repeat with
//! `RANDOM_ID_DUPLICATE`, which counts as sent. A bot send whose answer was lost ends
//! `send_uncertain` for an operator to decide. A sweep returns items left `sending` past a
//! deadline, so one stuck item never blocks its chat.

use crate::inbox::Inbox;
use crate::workers::Tasks;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use switchboard_domain::{
    Chat, ChatOwner, DeliveryStatus, Message, OutboxItem, PeerKind, SEND_UNCERTAIN, StoreError,
    StoreResult, Timestamp,
};
use tokio_util::sync::CancellationToken;

/// What Telegram answered to a successful send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The message's Telegram id.
    pub tg_message_id: i64,
    /// Telegram's date of it.
    pub sent_at: Timestamp,
}

/// Why a send did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// Worth retrying: a network failure, Telegram overloaded, or a wait it asked for.
    Retry {
        /// Stable code shown to operators (e.g. `FLOOD_WAIT`, `account_offline`).
        code: String,
        /// How long Telegram asked to wait, if it did.
        after: Option<Duration>,
    },
    /// Will never work: blocked by the user, no rights to write, the chat is gone.
    Permanent {
        /// Stable code (e.g. `USER_IS_BLOCKED`, `bot_blocked`).
        code: String,
    },
    /// The request reached Telegram but its answer was lost, and nothing guards a repeat (the
    /// Bot API has no `random_id`): the message may or may not have been posted. It ends
    /// `failed` with [`SEND_UNCERTAIN`] for an operator to decide; it is never resent by itself.
    Uncertain,
}

impl SendFailure {
    /// The code.
    pub fn code(&self) -> &str {
        match self {
            SendFailure::Retry { code, .. } | SendFailure::Permanent { code } => code,
            SendFailure::Uncertain => SEND_UNCERTAIN,
        }
    }
}

/// Sends for one kind of chat owner (personal accounts over MTProto, bots over the Bot API).
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends an outbox item's message to its chat.
    async fn send(&self, item: &OutboxItem) -> Result<Sent, SendFailure>;
    /// Tells Telegram the chat was read up to `max_tg_id` (no-op where unsupported).
    async fn mark_read(&self, chat: &Chat, max_tg_id: i64) -> Result<(), SendFailure>;
}

/// The transports, registered once at start (they are built after the inbox).
#[derive(Clone, Default)]
pub struct Transports {
    accounts: Arc<OnceLock<Arc<dyn Transport>>>,
    bots: Arc<OnceLock<Arc<dyn Transport>>>,
}

impl Transports {
    /// Registers the personal-account transport.
    pub fn set_accounts(&self, t: Arc<dyn Transport>) {
        let _ = self.accounts.set(t);
    }

    /// Registers the bot transport.
    pub fn set_bots(&self, t: Arc<dyn Transport>) {
        let _ = self.bots.set(t);
    }

    /// The personal-account transport.
    pub fn accounts(&self) -> Option<Arc<dyn Transport>> {
        self.accounts.get().cloned()
    }

    /// The bot transport.
    pub fn bots(&self) -> Option<Arc<dyn Transport>> {
        self.bots.get().cloned()
    }
}

/// Tuning of the sender.
#[derive(Clone, Debug)]
pub struct OutboxSettings {
    /// Attempts before a retryable failure becomes final.
    pub max_attempts: i32,
    /// First retry delay (doubled per attempt, with ±25% jitter).
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
    /// Items sent at once (different chats).
    pub concurrency: usize,
    /// Gap between messages of one private chat.
    pub private_gap: Duration,
    /// Gap between messages of one group (20 a minute).
    pub group_gap: Duration,
    /// Gap between messages of one bot overall (30 a second).
    pub bot_gap: Duration,
    /// An item `sending` for longer than this is returned by the sweep (resent for accounts,
    /// `send_uncertain` for bots): longer than any send, with its timeouts and the retries of
    /// its bookkeeping, may take.
    pub stuck_after: Duration,
    /// How often the sweep looks for stuck items.
    pub sweep_every: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            concurrency: 16,
            private_gap: Duration::from_secs(1),
            group_gap: Duration::from_secs(3),
            bot_gap: Duration::from_millis(34),
            stuck_after: Duration::from_secs(600),
            sweep_every: Duration::from_secs(60),
        }
    }
}

/// Next allowed send time per key: a chat, or a whole bot.
#[derive(Default)]
struct Pacer {
    next: Mutex<HashMap<PaceKey, Instant>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PaceKey {
    Chat(switchboard_domain::ChatId),
    Bot(switchboard_domain::BotId),
}

impl Pacer {
    /// Reserves the next slot of `key` and returns when it starts.
    fn reserve(&self, key: PaceKey, gap: Duration) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let slot = next.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
        next.insert(key, slot + gap);
        slot
    }

    /// Waits until both the chat and (for bots) the bot allow a message.
    async fn wait(&self, chat: &Chat, settings: &OutboxSettings) {
        let gap = match chat.peer_kind {
            PeerKind::Group | PeerKind::Supergroup | PeerKind::Channel => settings.group_gap,
            PeerKind::User | PeerKind::Bot => settings.private_gap,
        };
        let mut at = self.reserve(PaceKey::Chat(chat.id), gap);
        if let Some(ChatOwner::Bot(bot)) = ChatOwner::of(chat) {
            at = at.max(self.reserve(PaceKey::Bot(bot), settings.bot_gap));
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A random non-zero MTProto `random_id` for a new outbox item.
pub fn random_id() -> i64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    i64::from_le_bytes(b) | 1
}

/// The delay before retry number `attempt` (1-based): exponential, capped, with ±25% jitter.
pub fn backoff(settings: &OutboxSettings, attempt: i32) -> Duration {
    backoff_between(settings.base_delay, settings.max_delay, attempt)
}

/// The delay before retry number `attempt` (1-based): `base` doubled per attempt, at most
/// `max`, with ±25% jitter.
pub fn backoff_between(base: Duration, max: Duration, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    crate::retry::jitter(base.saturating_mul(2u32.saturating_pow(exp)).min(max))
}

/// Returns items `sending` since `stuck_since` or earlier (see
/// [`switchboard_domain::InboxStore::recover_outbox`]) and announces each reply's new state
/// (`message_status`), as a send does, so open inbox pages stop showing it `sending`.
async fn sweep(inbox: &Inbox, stuck_since: Timestamp, why: &'static str) {
    match inbox
        .store()
        .recover_outbox(stuck_since, Timestamp::now())
        .await
    {
        Ok(changed) if changed.is_empty() => {}
        Ok(changed) => {
            let requeued = changed
                .iter()
                .filter(|r| r.message.status == DeliveryStatus::Queued)
                .count();
            tracing::warn!(
                requeued,
                uncertain = changed.len() - requeued,
                why,
                "returned outbox items left sending"
            );
            for r in &changed {
                inbox.delivery_changed(&r.message, r.workspace).await;
            }
            inbox.outbox_wake().notify_one();
        }
        Err(e) => tracing::error!(error = %e, why, "could not return outbox items left sending"),
    }
}

/// Runs the sender until `cancel` fires.
/// Each send runs in its own task of `sends`, so one slow chat does not hold up the others.
pub async fn run(inbox: Inbox, settings: OutboxSettings, cancel: CancellationToken, sends: Tasks) {
    let store = Arc::clone(inbox.store());
    sweep(&inbox, Timestamp::now(), "restart").await;
    let mut next_sweep = Instant::now() + settings.sweep_every;
    let wake = inbox.outbox_wake();
    let pacer = Arc::new(Pacer::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    let settings = Arc::new(settings);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if Instant::now() >= next_sweep {
            let stuck_ms = i64::try_from(settings.stuck_after.as_millis()).unwrap_or(i64::MAX);
            let stuck_since = Timestamp(Timestamp::now().0.saturating_sub(stuck_ms));
            sweep(&inbox, stuck_since, "deadline").await;
            next_sweep = Instant::now() + settings.sweep_every;
        }
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match store
                .claim_outbox(Timestamp::now(), u32::try_from(free).unwrap_or(1))
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim outbox items");
                    Vec::new()
                }
            }
        };
        let busy = !claimed.is_empty();
        for item in claimed {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (inbox, pacer, settings) =
                (inbox.clone(), Arc::clone(&pacer), Arc::clone(&settings));
            sends.spawn(async move {
                deliver(&inbox, &pacer, &settings, item).await;
                drop(permit);
            });
        }
        if busy {
            continue;
        }
        let pause = match store.next_outbox_due().await {
            Ok(Some(due)) => Duration::from_millis(
                u64::try_from(due.0.saturating_sub(Timestamp::now().0)).unwrap_or(0),
            )
            .clamp(Duration::from_millis(20), Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    // Sends in flight finish (bounded by the transports' own timeouts).
    sends.drain(Duration::from_secs(10)).await;
}

/// Sends one item and records the outcome.
async fn deliver(inbox: &Inbox, pacer: &Pacer, settings: &OutboxSettings, item: OutboxItem) {
    let workspace = item.chat.workspace_id;
    inbox.delivery_changed(&item.message, workspace).await;
    let result = match inbox.transport_for(&item.chat) {
        Some(t) => {
            pacer.wait(&item.chat, settings).await;
            t.send(&item).await
        }
        None => Err(SendFailure::Retry {
            code: "transport_unavailable".into(),
            after: None,
        }),
    };
    // The outcome is recorded even if the database fails for a while: an item left `sending`
    // would hold back every later reply of its chat until the sweep's deadline.
    let mut attempt = 0;
    loop {
        match record(inbox, settings, &item, &result).await {
            Ok(message) => return inbox.delivery_changed(&message, workspace).await,
            Err(StoreError::NotFound) => return, // the chat was deleted meanwhile
            Err(e) if attempt < RECORD_ATTEMPTS => {
                attempt += 1;
                tracing::warn!(outbox_id = %item.id, error = %e, attempt, "could not record a send; retrying");
                tokio::time::sleep(backoff(settings, attempt)).await;
            }
            Err(e) => {
                return tracing::error!(outbox_id = %item.id, error = %e,
                    "could not record a send; the sweep will return the item");
            }
        }
    }
}

/// Times the outcome of a send is written before the item is left to the sweep.
const RECORD_ATTEMPTS: i32 = 6;

/// Writes the outcome of a send.
async fn record(
    inbox: &Inbox,
    settings: &OutboxSettings,
    item: &OutboxItem,
    result: &Result<Sent, SendFailure>,
) -> StoreResult<Message> {
    let store = inbox.store();
    let now = Timestamp::now();
    match result {
        Ok(sent) => store
            .complete_outbox(item.id, sent.tg_message_id, sent.sent_at, now)
            .await
            .map(|(message, echo)| {
                if let Some(echo) = echo {
                    tracing::debug!(message_id = %echo, "dropped the echo of a sent reply");
                }
                message
            }),
        Err(SendFailure::Permanent { code }) => store.fail_outbox(item.id, code, None, now).await,
        Err(SendFailure::Uncertain) => {
            tracing::warn!(outbox_id = %item.id, "a send may have reached Telegram; the operator decides");
            store.fail_outbox(item.id, SEND_UNCERTAIN, None, now).await
        }
        Err(SendFailure::Retry { code, after }) => {
            let retry_at = if item.attempts >= settings.max_attempts && after.is_none() {
                None
            } else {
                Some(now.plus(after.unwrap_or_else(|| backoff(settings, item.attempts))))
            };
            store.fail_outbox(item.id, code, retry_at, now).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = OutboxSettings::default();
        let first = backoff(&s, 1);
        assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250));
        let fourth = backoff(&s, 4);
        assert!(fourth >= Duration::from_secs(6) && fourth <= Duration::from_secs(10));
        assert!(backoff(&s, 40) <= s.max_delay.mul_f64(1.25));
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_one_key_and_not_others() {
        let p = Pacer::default();
        let key = PaceKey::Chat(switchboard_domain::ChatId(1));
        let a = p.reserve(key, Duration::from_secs(1));
        let b = p.reserve(key, Duration::from_secs(1));
        let other = p.reserve(
            PaceKey::Chat(switchboard_domain::ChatId(2)),
            Duration::from_secs(1),
        );
        assert_eq!(b - a, Duration::from_secs(1));
        assert!(other <= a + Duration::from_millis(1));
    }
}
