//! Delivery of leads: the worker that turns the lead delivery queue (`lead_deliveries`, see
//! `docs/leads.md`, "Delivery") into Telegram messages — to the reading account's Saved
//! Messages through its live client (the default), to a chat of the inbox through the account
//! or bot that owns it, or through a workspace bot — instantly or as digests, FloodWait waited
//! out, never dropped, never doubled.
//!
//! The worker: at start returns deliveries a crash left `sending` (`recover_lead_deliveries`:
//! an account's go back to the queue and are resent with the same `random_id`, which Telegram
//! refuses as a repeat; a bot's end `send_uncertain`); then, on every [`LeadDelivery::wake`]
//! (a lead was queued), when the next delivery is due, and at least every
//! [`DeliverySettings::digest_check_every`], it composes the digests that are due (cut into
//! messages of at most 4,096 UTF-16 code units between leads, one delivery row per message)
//! and sends what is due, paced per destination.

pub mod format;

use crate::account_transport::AccountTransport;
use crate::bots::BotTransport;
use crate::outbox::{SendFailure, Sent};
use crate::workers::{Tasks, Workers};
use format::{LeadView, Rendered, SourceLabel};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::{
    AccountId, BotId, DeliveryTarget, InboxStore, Lead, LeadDeliveryItem, LeadDeliveryKind,
    LeadStore, Locale, MAX_LEAD_PAGE, Role, SEND_UNCERTAIN, SourceId, SourceKind, Store,
    StoreError, Task, TaskId, Timestamp, UserId, Viewer,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The delivery worker's handle: the engine wakes it when it queued leads.
#[derive(Clone, Default)]
pub struct LeadDelivery {
    wake: Arc<Notify>,
}

/// What the worker sends with and reads from.
#[derive(Clone)]
pub struct LeadSenders {
    /// The lead store (the queue).
    pub leads: Arc<dyn LeadStore>,
    /// Users (the owner's language).
    pub users: Arc<dyn Store>,
    /// Inbox chats (the `chat` target) and bots.
    pub inbox: Arc<dyn InboxStore>,
    /// Personal accounts: their live clients.
    pub accounts: AccountTransport,
    /// Workspace bots: the Bot API.
    pub bots: BotTransport,
}

/// Tuning of the delivery worker.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Deliveries sent at once (different tasks).
    pub concurrency: usize,
    /// Gap between messages one personal account sends (Telegram publishes no limit for
    /// accounts; monitoring tools keep to about 30 a minute).
    pub account_gap: Duration,
    /// Gap between a bot's messages to one private chat (Bot API: 1 a second).
    pub bot_private_gap: Duration,
    /// Gap between a bot's messages to one group (Bot API: 20 a minute).
    pub bot_group_gap: Duration,
    /// First retry delay after a failure Telegram did not time (doubled per attempt, ±25%).
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
    /// How often due digests are looked for when nothing wakes the worker.
    pub digest_check_every: Duration,
    /// A delivery `sending` for longer than this is returned by the sweep.
    pub stuck_after: Duration,
    /// How often the sweep looks for stuck deliveries.
    pub sweep_every: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            account_gap: Duration::from_secs(2),
            bot_private_gap: Duration::from_secs(1),
            bot_group_gap: Duration::from_secs(3),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            digest_check_every: Duration::from_secs(10),
            stuck_after: Duration::from_secs(600),
            sweep_every: Duration::from_secs(60),
        }
    }
}

impl LeadDelivery {
    /// A handle; the worker starts with [`LeadDelivery::start`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Something was queued: look at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the delivery worker (`lead_delivery`) under `workers`; its sends run in the
    /// task group `lead_delivery_sends`.
    pub fn start(&self, workers: &Workers, senders: LeadSenders, settings: DeliverySettings) {
        let sends = workers.tasks("lead_delivery_sends");
        let wake = Arc::clone(&self.wake);
        workers.spawn("lead_delivery", move |cancel| {
            let ctx = Arc::new(Ctx {
                s: senders.clone(),
                settings: settings.clone(),
                wake: Arc::clone(&wake),
                pacer: Pacer::default(),
            });
            let sends = sends.clone();
            async move {
                run(ctx, cancel, sends).await;
                Ok(())
            }
        });
    }
}

struct Ctx {
    s: LeadSenders,
    settings: DeliverySettings,
    wake: Arc<Notify>,
    pacer: Pacer,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run(ctx: Arc<Ctx>, cancel: CancellationToken, sends: Tasks) {
    sweep(&ctx, Timestamp::now(), "restart").await;
    let mut next_sweep = Instant::now() + ctx.settings.sweep_every;
    let mut next_digests = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(ctx.settings.concurrency.max(1)));
    let mut woken = true;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if Instant::now() >= next_sweep {
            let stuck_since = Timestamp(
                Timestamp::now()
                    .0
                    .saturating_sub(millis(ctx.settings.stuck_after)),
            );
            sweep(&ctx, stuck_since, "deadline").await;
            next_sweep = Instant::now() + ctx.settings.sweep_every;
        }
        if woken || Instant::now() >= next_digests {
            compose_digests(&ctx).await;
            next_digests = Instant::now() + ctx.settings.digest_check_every;
        }
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            let limit = u32::try_from(free).unwrap_or(1);
            match ctx
                .s
                .leads
                .claim_lead_deliveries(Timestamp::now(), limit)
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim lead deliveries");
                    Vec::new()
                }
            }
        };
        for item in claimed {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let ctx = Arc::clone(&ctx);
            sends.spawn(async move {
                deliver(&ctx, item).await;
                drop(permit);
                // The task's next delivery may go now.
                ctx.wake.notify_one();
            });
        }
        let now = Timestamp::now();
        let until_digests = next_digests.saturating_duration_since(Instant::now());
        let pause = match ctx.s.leads.next_lead_delivery_due().await {
            // Due now but not claimed: it waits for its task's delivery in flight, whose end
            // wakes the loop.
            Ok(Some(due)) if due.0 > now.0 => {
                Duration::from_millis(u64::try_from(due.0 - now.0).unwrap_or(0))
            }
            _ => until_digests,
        }
        .clamp(
            Duration::from_millis(20),
            until_digests.max(Duration::from_millis(20)),
        );
        woken = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.wake.notified() => true,
            _ = tokio::time::sleep(pause) => false,
        };
    }
    // Sends in flight finish (bounded by the transports' own timeouts).
    sends.drain(Duration::from_secs(10)).await;
}

/// Returns deliveries `sending` since `stuck_since` or earlier (see
/// [`LeadStore::recover_lead_deliveries`]).
async fn sweep(ctx: &Ctx, stuck_since: Timestamp, why: &'static str) {
    match ctx
        .s
        .leads
        .recover_lead_deliveries(stuck_since, Timestamp::now())
        .await
    {
        Ok(changed) if changed.is_empty() => {}
        Ok(changed) => {
            let requeued = changed.iter().filter(|r| r.state == "queued").count();
            tracing::warn!(
                requeued,
                uncertain = changed.len() - requeued,
                why,
                "returned lead deliveries left sending"
            );
        }
        Err(e) => tracing::error!(error = %e, why, "could not return lead deliveries left sending"),
    }
}

/// A viewer acting for the worker inside one task's workspace (reads only: the task's sources
/// and the chat it delivers to, both already tied to the workspace by the database).
fn worker_viewer(task: &Task) -> Viewer {
    Viewer {
        workspace: task.workspace_id,
        user: task.created_by.unwrap_or(UserId(0)),
        role: Role::Owner,
    }
}

/// The language of a task's messages: its creator's, else English.
async fn locale_of(ctx: &Ctx, task: &Task) -> Locale {
    match task.created_by {
        Some(user) => match ctx.s.users.get_user(user).await {
            Ok(u) => u.locale.unwrap_or(Locale::En),
            Err(_) => Locale::En,
        },
        None => Locale::En,
    }
}

/// How each source of a task is named in its messages.
async fn source_labels(ctx: &Ctx, task: &Task) -> HashMap<SourceId, SourceLabel> {
    let sources = ctx
        .s
        .leads
        .task_sources(&worker_viewer(task), task.id)
        .await
        .unwrap_or_default();
    sources
        .into_iter()
        .map(|s| {
            let link = match s.kind {
                SourceKind::Username => Some(format!("https://t.me/{}", s.key)),
                _ => None,
            };
            let title = s.title.clone().unwrap_or_else(|| s.input.clone());
            (s.id, SourceLabel { title, link })
        })
        .collect()
}

fn views<'a>(leads: &'a [Lead], labels: &HashMap<SourceId, SourceLabel>) -> Vec<LeadView<'a>> {
    leads
        .iter()
        .map(|lead| LeadView {
            lead,
            source: labels.get(&lead.source_id).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Most leads one composition takes from a task (the rest go in the next digest round).
const DIGEST_ROUND: u32 = MAX_LEAD_PAGE;

/// Queues the digests that are due: each task's pending leads, cut into messages that fit.
async fn compose_digests(ctx: &Ctx) {
    let due = match ctx.s.leads.due_digests(Timestamp::now()).await {
        Ok(due) => due,
        Err(e) => return tracing::warn!(error = %e, "could not list due digests"),
    };
    for task in due {
        if let Err(e) = compose_digest(ctx, task).await {
            tracing::warn!(task_id = %task, error = %e, "could not compose a digest");
        }
    }
}

async fn compose_digest(ctx: &Ctx, task_id: TaskId) -> Result<(), StoreError> {
    let leads = ctx.s.leads.pending_leads(task_id, DIGEST_ROUND).await?;
    let Some(first) = leads.first() else {
        return Ok(());
    };
    let viewer = Viewer {
        workspace: first.workspace_id,
        user: UserId(0),
        role: Role::Owner,
    };
    let task = ctx.s.leads.get_task(&viewer, task_id).await?;
    let locale = locale_of(ctx, &task).await;
    let labels = source_labels(ctx, &task).await;
    let all = views(&leads, &labels);
    let mut at = 0;
    let mut queued = 0;
    while at < all.len() {
        let n = format::digest_fit(&task.name, &all[at..], locale, format::MESSAGE_LIMIT);
        let ids: Vec<_> = all[at..at + n].iter().map(|v| v.lead.id).collect();
        if ctx
            .s
            .leads
            .create_digest(task_id, &ids, crate::outbox::random_id(), Timestamp::now())
            .await?
            .is_some()
        {
            queued += 1;
        }
        at += n;
    }
    tracing::debug!(task_id = %task_id, leads = leads.len(), messages = queued, "digest queued");
    Ok(())
}

/// Where a delivery goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Through the account's client: to its Saved Messages (`None`) or a peer.
    Account {
        account: AccountId,
        peer: Option<i64>,
    },
    /// Through a bot, to a Telegram chat.
    Bot { bot: BotId, chat: i64 },
}

async fn route(ctx: &Ctx, task: &Task) -> Result<Route, SendFailure> {
    match task.target {
        DeliveryTarget::SavedMessages => Ok(Route::Account {
            account: task.account_id,
            peer: None,
        }),
        DeliveryTarget::Bot { bot, peer_id } => Ok(Route::Bot { bot, chat: peer_id }),
        DeliveryTarget::Chat { chat } => {
            let chat = match ctx.s.inbox.get_chat(&worker_viewer(task), chat).await {
                Ok(c) => c,
                Err(StoreError::NotFound) => {
                    return Err(SendFailure::Permanent {
                        code: "delivery_target_not_found".into(),
                    });
                }
                Err(_) => {
                    return Err(SendFailure::Retry {
                        code: "store_error".into(),
                        after: None,
                    });
                }
            };
            match (chat.account_id, chat.bot_id) {
                (Some(account), _) => Ok(Route::Account {
                    account,
                    peer: Some(chat.peer_id),
                }),
                (None, Some(bot)) => Ok(Route::Bot {
                    bot,
                    chat: chat.peer_id,
                }),
                (None, None) => Err(SendFailure::Permanent {
                    code: "delivery_target_not_found".into(),
                }),
            }
        }
        DeliveryTarget::Removed => Err(SendFailure::Permanent {
            code: "delivery_target_not_found".into(),
        }),
    }
}

/// The `random_id` of part `index` of a delivery's message: the delivery's own for the first
/// (and usually only) part, a fixed mix of it and the index for the others, so a resend of the
/// delivery repeats every part's id and Telegram refuses the parts already posted.
pub fn part_random_id(random_id: i64, index: usize) -> i64 {
    if index == 0 {
        return random_id;
    }
    // SplitMix64's finaliser over the id and the index.
    let mut z = (random_id as u64) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z as i64) | 1
}

/// The message(s) of a claimed delivery.
async fn render(ctx: &Ctx, item: &LeadDeliveryItem) -> Vec<Rendered> {
    let locale = locale_of(ctx, &item.task).await;
    let labels = source_labels(ctx, &item.task).await;
    let all = views(&item.leads, &labels);
    let message = match (item.kind, all.as_slice()) {
        (LeadDeliveryKind::Instant, [one]) => format::instant(&item.task.name, one, locale),
        _ => format::digest(&item.task.name, &all, locale),
    };
    // A digest is cut to fit when it is queued; a text that grew since (a source renamed)
    // is split here, between leads.
    format::split(&message, format::MESSAGE_LIMIT)
}

/// Sends one delivery and records the outcome.
async fn deliver(ctx: &Ctx, item: LeadDeliveryItem) {
    let result = send(ctx, &item).await;
    let mut attempt = 0;
    loop {
        match record(ctx, &item, &result).await {
            Ok(()) | Err(StoreError::NotFound) => return,
            Err(e) if attempt < RECORD_ATTEMPTS => {
                attempt += 1;
                tracing::warn!(delivery_id = %item.id, error = %e, attempt,
                    "could not record a lead delivery; retrying");
                tokio::time::sleep(backoff(&ctx.settings, attempt)).await;
            }
            Err(e) => {
                return tracing::error!(delivery_id = %item.id, error = %e,
                    "could not record a lead delivery; the sweep will return it");
            }
        }
    }
}

/// Times the outcome of a send is written before the delivery is left to the sweep.
const RECORD_ATTEMPTS: i32 = 6;

async fn send(ctx: &Ctx, item: &LeadDeliveryItem) -> Result<Sent, SendFailure> {
    if item.leads.is_empty() {
        return Err(SendFailure::Permanent {
            code: "delivery_empty".into(),
        });
    }
    let route = route(ctx, &item.task).await?;
    let parts = render(ctx, item).await;
    let mut first = None;
    for (index, part) in parts.iter().enumerate() {
        let key = pace_key(route);
        ctx.pacer.wait(key, gap(&ctx.settings, route)).await;
        let result = match route {
            Route::Account { account, peer } => {
                ctx.s
                    .accounts
                    .send_text(
                        account,
                        peer,
                        &part.text,
                        &part.entities,
                        part_random_id(item.random_id, index),
                    )
                    .await
            }
            Route::Bot { bot, chat } => {
                ctx.s
                    .bots
                    .send_text(bot, chat, &part.text, &part.entities)
                    .await
            }
        };
        match result {
            Ok(sent) => {
                first.get_or_insert(sent);
            }
            Err(failure) => {
                if let SendFailure::Retry {
                    after: Some(wait), ..
                } = &failure
                {
                    // Nothing else goes out this way until Telegram's wait is over.
                    ctx.pacer.hold(key, *wait);
                }
                return Err(failure);
            }
        }
    }
    first.ok_or(SendFailure::Permanent {
        code: "delivery_empty".into(),
    })
}

async fn record(
    ctx: &Ctx,
    item: &LeadDeliveryItem,
    result: &Result<Sent, SendFailure>,
) -> Result<(), StoreError> {
    let store = &ctx.s.leads;
    let now = Timestamp::now();
    match result {
        Ok(sent) => {
            store
                .complete_lead_delivery(item.id, sent.tg_message_id, now)
                .await
        }
        Err(SendFailure::Permanent { code }) => {
            tracing::warn!(delivery_id = %item.id, code = %code, "a lead delivery failed");
            store.fail_lead_delivery(item.id, code, None, now).await
        }
        Err(SendFailure::Uncertain) => {
            tracing::warn!(delivery_id = %item.id,
                "a lead message may have reached Telegram through a bot; not resent");
            store
                .fail_lead_delivery(item.id, SEND_UNCERTAIN, None, now)
                .await
        }
        Err(SendFailure::Retry { code, after }) => {
            // Never dropped: a wait Telegram asked for is waited out, anything else is retried
            // with a capped backoff for as long as it takes.
            let wait = after.unwrap_or_else(|| backoff(&ctx.settings, item.attempts));
            tracing::info!(delivery_id = %item.id, code = %code, wait_ms = millis(wait),
                "a lead delivery will be retried");
            store
                .fail_lead_delivery(item.id, code, Some(now.plus(wait)), now)
                .await
        }
    }
}

/// The delay before retry number `attempt` (1-based): exponential, capped, with ±25% jitter.
fn backoff(settings: &DeliverySettings, attempt: i32) -> Duration {
    crate::outbox::backoff_between(settings.base_delay, settings.max_delay, attempt)
}

/// What one destination's pace is kept by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PaceKey {
    /// Everything a personal account sends.
    Account(AccountId),
    /// A bot's messages to one chat.
    BotChat(BotId, i64),
}

fn pace_key(route: Route) -> PaceKey {
    match route {
        Route::Account { account, .. } => PaceKey::Account(account),
        Route::Bot { bot, chat } => PaceKey::BotChat(bot, chat),
    }
}

fn gap(settings: &DeliverySettings, route: Route) -> Duration {
    match route {
        Route::Account { .. } => settings.account_gap,
        Route::Bot { chat, .. } if chat > 0 => settings.bot_private_gap,
        Route::Bot { .. } => settings.bot_group_gap,
    }
}

/// Next allowed send time per destination.
#[derive(Default)]
struct Pacer {
    next: Mutex<HashMap<PaceKey, tokio::time::Instant>>,
}

impl Pacer {
    /// Reserves the next slot of `key` and waits for it.
    async fn wait(&self, key: PaceKey, gap: Duration) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let slot = next.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(key, slot + gap);
            slot
        };
        tokio::time::sleep_until(at).await;
    }

    /// Keeps `key` quiet for `wait`.
    fn hold(&self, key: PaceKey, wait: Duration) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let until = tokio::time::Instant::now() + wait;
        let slot = next.entry(key).or_insert(until);
        *slot = (*slot).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ids_are_fixed_distinct_and_the_first_is_the_deliverys() {
        let id = 0x1234_5678_9abc_def1;
        assert_eq!(part_random_id(id, 0), id);
        let parts: Vec<i64> = (0..50).map(|i| part_random_id(id, i)).collect();
        let again: Vec<i64> = (0..50).map(|i| part_random_id(id, i)).collect();
        assert_eq!(parts, again);
        let mut unique = parts.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), parts.len());
        assert!(parts.iter().all(|p| *p != 0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_a_destination_and_holds_it_through_a_flood_wait() {
        let p = Pacer::default();
        let key = PaceKey::Account(AccountId(1));
        let start = tokio::time::Instant::now();
        p.wait(key, Duration::from_secs(2)).await;
        p.wait(key, Duration::from_secs(2)).await;
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert!(start.elapsed() < Duration::from_secs(3));
        p.hold(key, Duration::from_secs(90));
        p.wait(PaceKey::Account(AccountId(2)), Duration::from_secs(2))
            .await;
        assert!(start.elapsed() < Duration::from_secs(3), "others go on");
        p.wait(key, Duration::from_secs(2)).await;
        assert!(start.elapsed() >= Duration::from_secs(92));
    }
}
