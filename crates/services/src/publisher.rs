//! The autoposting publisher: the worker (`publisher` under [`Workers`]) that turns due runs of
//! scheduled posts into Telegram posts and carries out their follow-up actions (pin, unpin,
//! delete, edit), through the durable queue of `post_runs` / `post_actions`
//! ([`ScheduleStore`]; docs/autoposting.md, "The publisher").
//!
//! - **Claims with a lease.** Due runs are claimed with a lease and a fencing token
//!   (`claim_due_runs`); every outcome is written with the token, so an attempt that outlived
//!   its lease cannot overwrite a newer one. A lease names its holder (the instance id): at
//!   start the publisher releases the leases its own instance still holds — a crash left them —
//!   so that work resumes at once; other instances' leases end only when they expire.
//! - **Never twice.** A personal account posts with the run's own `random_id` (the same on
//!   every attempt): Telegram refuses a repeat with `RANDOM_ID_DUPLICATE`, which counts as
//!   published, with the post found in the chat's history. A bot has no `random_id`: a run a
//!   crash left `publishing` (reclaimed, whether its lease expired or was released) or whose
//!   answer was lost ends `send_uncertain`, never resent.
//! - **Paced and patient.** Posts are paced per account, per bot and per chat (an album counts
//!   as one message per item); `FLOOD_WAIT_X` / `retry_after` is waited out exactly (the run
//!   is retried at that time); other temporary failures back off exponentially with ±25%
//!   jitter; permanent ones end `failed` with a stable code in the run's history.
//! - **Downtime.** The grace period is applied by the store: a run first attempted more than
//!   its post's grace period late is recorded `missed` (`sweep_missed`, at start and on every
//!   pass), one less late is published. Follow-ups are rows with due times, so they survive
//!   restarts.

use crate::account_transport::{self, AccountTransport};
use crate::bots::{self, BotTransport};
use crate::outbox::{SendFailure, backoff_between};
use crate::schedule::Scheduler;
use crate::workers::{Tasks, Workers};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::{
    ActionKind, ClaimedAction, ClaimedRun, InstanceId, PostMedia, PostSender, Published,
    ReleasedLeases, RunFailure, ScheduledPost as Post, StoreError, Timestamp,
};
use switchboard_files::{FileId, FileStore};
use switchboard_telegram::Error as TgError;
use switchboard_telegram::botapi::{
    AlbumFile, BotApiError, MediaKind as BotMediaKind, PostOptions, Upload,
};
use switchboard_telegram::publish::{self, AlbumItem};
use switchboard_telegram::send::{self, Attachment, SendOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The code a run that may or may not have been posted ends with.
const SEND_UNCERTAIN: &str = switchboard_domain::SEND_UNCERTAIN;

/// How long one publication (uploads included) may take before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(90);

/// Tuning of the publisher.
#[derive(Clone, Debug)]
pub struct PublisherSettings {
    /// Runs and actions carried out at once.
    pub concurrency: usize,
    /// How long a claim holds a run or action: longer than a publication may take
    /// ([`PUBLISH_TIMEOUT`], 90 s) with its bookkeeping. A run a killed process left
    /// `publishing` is taken again when its lease ends — at once when the same instance
    /// restarts ([`switchboard_domain::ScheduleStore::release_leases`]).
    pub lease: Duration,
    /// Gap between the posts of one personal account (Telegram publishes no figure; the
    /// monitoring and posting tools keep to about 30 a minute).
    pub account_gap: Duration,
    /// Gap between messages to one channel or group (the Bot API's 20 a minute per group).
    pub chat_gap: Duration,
    /// Gap between a bot's messages overall (30 a second).
    pub bot_gap: Duration,
    /// First retry delay after a failure Telegram did not time (doubled per attempt, ±25%).
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
    /// Attempts before a temporary failure Telegram did not time becomes final.
    pub max_attempts: u32,
    /// Longest sleep between passes when nothing is due.
    pub idle: Duration,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            lease: Duration::from_secs(120),
            account_gap: Duration::from_secs(2),
            chat_gap: Duration::from_secs(3),
            bot_gap: Duration::from_millis(34),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            max_attempts: 8,
            idle: Duration::from_secs(5),
        }
    }
}

/// What the publisher reads and sends with.
#[derive(Clone)]
pub struct PublisherDeps {
    /// The schedule service: its store (runs and actions), its wake-up and its events.
    pub scheduler: Scheduler,
    /// Personal accounts: their live clients.
    pub accounts: AccountTransport,
    /// Workspace bots: the Bot API.
    pub bots: BotTransport,
    /// Where the posts' files are.
    pub files: FileStore,
    /// This server instance: the holder its claims name.
    pub instance: InstanceId,
}

/// The publisher; the schedule service wakes it ([`Scheduler::wakeup`]) when a post changed.
pub struct Publisher;

impl Publisher {
    /// Starts the worker `publisher` under `workers`; publications and actions run in the task
    /// group `publisher_sends`.
    pub fn start(workers: &Workers, deps: PublisherDeps, settings: PublisherSettings) {
        let sends = workers.tasks("publisher_sends");
        let wake = deps.scheduler.wakeup();
        // Once per process, not per restart of the worker: a restarted worker's predecessor
        // may still have publications in flight under this instance's leases.
        let released = Arc::new(AtomicBool::new(false));
        workers.spawn("publisher", move |cancel| {
            let ctx = Arc::new(Ctx {
                deps: deps.clone(),
                settings: settings.clone(),
                wake: Arc::clone(&wake),
                pacer: Pacer::default(),
            });
            let (sends, released) = (sends.clone(), Arc::clone(&released));
            async move {
                if !released.load(Ordering::Acquire) {
                    if !release_own_leases(&ctx, &cancel).await {
                        return Ok(());
                    }
                    released.store(true, Ordering::Release);
                }
                run(ctx, cancel, sends).await;
                Ok(())
            }
        });
    }
}

struct Ctx {
    deps: PublisherDeps,
    settings: PublisherSettings,
    wake: Arc<Notify>,
    pacer: Pacer,
}

/// Next allowed send time per account, bot and chat: the publisher's per-process pacing state
/// (one struct, so it could move to the database).
#[derive(Default)]
struct Pacer {
    next: Mutex<HashMap<PaceKey, Instant>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PaceKey {
    Account(i64),
    Bot(i64),
    Chat(i64),
}

impl Pacer {
    /// Reserves `count` messages' worth of `key` and returns when the first may go.
    fn reserve(&self, key: PaceKey, gap: Duration, count: u32) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let slot = next.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
        next.insert(key, slot + gap * count.max(1));
        slot
    }

    /// Waits until the sender and the chat allow `count` more messages.
    async fn wait(&self, post: &Post, settings: &PublisherSettings, count: u32) {
        let chat = self.reserve(PaceKey::Chat(post.target.peer_id), settings.chat_gap, count);
        let sender = match post.sender {
            PostSender::Account { account } => {
                self.reserve(PaceKey::Account(account.0), settings.account_gap, count)
            }
            PostSender::Bot { bot } => self.reserve(PaceKey::Bot(bot.0), settings.bot_gap, count),
        };
        tokio::time::sleep_until(chat.max(sender).into()).await;
    }
}

/// Releases the leases this instance held when its previous process died, before anything is
/// claimed (so none of this life's claims is released); retried until the database answers.
/// False when cancelled first.
async fn release_own_leases(ctx: &Ctx, cancel: &CancellationToken) -> bool {
    let store = ctx.deps.scheduler.store();
    let mut attempt = 0;
    loop {
        match store
            .release_leases(&ctx.deps.instance, Timestamp::now())
            .await
        {
            Ok(released) => {
                if released != ReleasedLeases::default() {
                    tracing::warn!(runs = released.runs, actions = released.actions,
                        instance = %ctx.deps.instance,
                        "work this instance held when it stopped is taken up again");
                }
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release this instance's earlier leases")
            }
        }
        attempt += 1;
        let wait = backoff_between(ctx.settings.base_delay, ctx.settings.max_delay, attempt);
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// A claimed piece of work.
enum Job {
    Run(ClaimedRun),
    Action(ClaimedAction),
}

async fn run(ctx: Arc<Ctx>, cancel: CancellationToken, sends: Tasks) {
    let slots = Arc::new(tokio::sync::Semaphore::new(ctx.settings.concurrency.max(1)));
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = Timestamp::now();
        match ctx.deps.scheduler.store().sweep_missed(now).await {
            Ok(missed) => {
                for r in &missed {
                    tracing::warn!(run_id = %r.id.0, post_id = %r.post_id.0,
                        "a run was missed: the server was down past its grace period");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not sweep missed runs"),
        }
        let mut jobs: Vec<Job> = Vec::new();
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        if free > 0 {
            let store = ctx.deps.scheduler.store();
            match store
                .claim_due_runs(now, ctx.settings.lease, free, &ctx.deps.instance)
                .await
            {
                Ok(runs) => jobs.extend(runs.into_iter().map(Job::Run)),
                Err(e) => tracing::warn!(error = %e, "could not claim due runs"),
            }
            let free = free.saturating_sub(u32::try_from(jobs.len()).unwrap_or(free));
            if free > 0 {
                match store
                    .claim_due_actions(now, ctx.settings.lease, free, &ctx.deps.instance)
                    .await
                {
                    Ok(actions) => jobs.extend(actions.into_iter().map(Job::Action)),
                    Err(e) => tracing::warn!(error = %e, "could not claim due actions"),
                }
            }
        }
        let busy = !jobs.is_empty();
        for job in jobs {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let ctx = Arc::clone(&ctx);
            sends.spawn(async move {
                match job {
                    Job::Run(claimed) => publish_run(&ctx, claimed).await,
                    Job::Action(claimed) => run_action(&ctx, claimed).await,
                }
                drop(permit);
            });
        }
        if busy {
            continue;
        }
        let now = Timestamp::now();
        let pause = match ctx.deps.scheduler.store().next_schedule_wakeup().await {
            Ok(Some(due)) => Duration::from_millis(u64::try_from(due.0 - now.0).unwrap_or(0)),
            _ => ctx.settings.idle,
        }
        .clamp(Duration::from_millis(20), ctx.settings.idle);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    // Publications in flight finish (bounded by their timeouts); an unfinished one is taken
    // again when its lease ends, or at once when this instance starts again.
    sends.drain(Duration::from_secs(10)).await;
}

/// Publishes one claimed run and records the outcome.
async fn publish_run(ctx: &Ctx, claimed: ClaimedRun) {
    let run = claimed.run.id;
    let result = if claimed.reclaimed && matches!(claimed.post.sender, PostSender::Bot { .. }) {
        // An earlier attempt was cut off mid-send; the Bot API cannot tell whether it posted.
        tracing::warn!(run_id = %run.0, "a bot's run was cut off mid-send; it is not resent");
        Err(SendFailure::Uncertain)
    } else {
        let count = u32::try_from(claimed.post.content.media.len().max(1)).unwrap_or(1);
        ctx.pacer.wait(&claimed.post, &ctx.settings, count).await;
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish(ctx, &claimed)).await {
            Ok(r) => r,
            Err(_) => Err(match claimed.post.sender {
                PostSender::Account { .. } => SendFailure::Retry {
                    code: "send_timeout".into(),
                    after: None,
                },
                PostSender::Bot { .. } => SendFailure::Uncertain,
            }),
        }
    };
    let now = Timestamp::now();
    let store = ctx.deps.scheduler.store();
    let written = match &result {
        Ok(published) => store
            .complete_run(run, claimed.token, published, now)
            .await
            .inspect(|r| {
                tracing::info!(run_id = %run.0, link = ?r.link, "published a scheduled post");
            }),
        Err(failure) => {
            let (code, how) = outcome(&ctx.settings, &claimed, failure, now);
            tracing::warn!(run_id = %run.0, code, "a scheduled post was not published");
            store.fail_run(run, claimed.token, code, how, now).await
        }
    };
    match written {
        Ok(r) => ctx.deps.scheduler.run_changed(&r),
        Err(StoreError::Conflict(code)) => {
            tracing::warn!(run_id = %run.0, code = code.code(), "a newer claim owns the run");
        }
        Err(e) => tracing::error!(run_id = %run.0, error = %e,
            "could not record a publication; the run is taken again when its lease ends"),
    }
    // Follow-ups or the next occurrence may be due now.
    ctx.wake.notify_one();
}

/// The history's code and the run's next state for a failed attempt.
fn outcome<'a>(
    settings: &PublisherSettings,
    claimed: &ClaimedRun,
    failure: &'a SendFailure,
    now: Timestamp,
) -> (&'a str, RunFailure) {
    match failure {
        SendFailure::Uncertain => (SEND_UNCERTAIN, RunFailure::Uncertain),
        SendFailure::Permanent { code } => (code, RunFailure::Failed),
        SendFailure::Retry {
            code,
            after: Some(wait),
        } => (code, RunFailure::RetryAt(now.plus(*wait))),
        SendFailure::Retry { code, after: None } => {
            let attempt = i32::try_from(claimed.run.attempts).unwrap_or(i32::MAX);
            if claimed.run.attempts >= settings.max_attempts {
                (code, RunFailure::Failed)
            } else {
                let wait = backoff_between(settings.base_delay, settings.max_delay, attempt);
                (code, RunFailure::RetryAt(now.plus(wait)))
            }
        }
    }
}

/// Sends the post of a claimed run through its sender.
async fn publish(ctx: &Ctx, claimed: &ClaimedRun) -> Result<Published, SendFailure> {
    match claimed.post.sender {
        PostSender::Account { account } => publish_as_account(ctx, claimed, account).await,
        PostSender::Bot { bot } => publish_as_bot(ctx, claimed, bot).await,
    }
}

async fn read_file(files: &FileStore, media: &PostMedia) -> Result<Vec<u8>, SendFailure> {
    let missing = || SendFailure::Permanent {
        code: "file_missing".into(),
    };
    let id: FileId = media.file_id.parse().map_err(|_| missing())?;
    tokio::fs::read(files.path(&id))
        .await
        .map_err(|_| missing())
}

fn file_name(media: &PostMedia) -> String {
    media.file_name.clone().unwrap_or_else(|| "file".into())
}

fn mime(media: &PostMedia) -> String {
    media
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// The Telegram chat of a post, as the account's requests name it.
fn target_peer(
    post: &Post,
) -> Result<switchboard_telegram::grammers_client::session::types::PeerRef, SendFailure> {
    send::peer_ref(&switchboard_domain::CachedPeer {
        peer_id: post.target.peer_id,
        access_hash: post.target.access_hash,
        subtype: 0,
    })
    .ok_or_else(|| SendFailure::Permanent {
        code: "peer_unknown".into(),
    })
}

async fn account_client(
    ctx: &Ctx,
    account: switchboard_domain::AccountId,
) -> Result<switchboard_telegram::grammers_client::Client, SendFailure> {
    ctx.deps
        .accounts
        .client(account)
        .ok_or_else(|| SendFailure::Retry {
            code: "account_offline".into(),
            after: None,
        })
}

/// A Telegram error of a publication as the run's history records it.
fn account_failure(e: &TgError) -> SendFailure {
    account_transport::failure(e)
}

async fn publish_as_account(
    ctx: &Ctx,
    claimed: &ClaimedRun,
    account: switchboard_domain::AccountId,
) -> Result<Published, SendFailure> {
    let client = account_client(ctx, account).await?;
    let peer = target_peer(&claimed.post)?;
    let content = &claimed.post.content;
    let options = SendOptions {
        silent: content.silent,
        no_webpage: !content.link_preview,
    };
    let random_id = claimed.random_id(0);
    let mut attachments = Vec::with_capacity(content.media.len());
    for m in &content.media {
        let bytes = read_file(&ctx.deps.files, m).await?;
        let file = send::upload(&client, &bytes, &file_name(m))
            .await
            .map_err(|e| account_failure(&e))?;
        attachments.push(Attachment {
            file,
            as_photo: m.kind == switchboard_domain::MediaKind::Photo,
            mime_type: mime(m),
            file_name: file_name(m),
        });
    }
    let count = attachments.len();
    let sent = if count > 1 {
        // The caption goes with the first item, as Telegram's apps do.
        let items = attachments
            .into_iter()
            .enumerate()
            .map(|(i, attachment)| AlbumItem {
                attachment,
                caption: if i == 0 {
                    content.text.clone()
                } else {
                    String::new()
                },
                entities: if i == 0 {
                    content.entities.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
        publish::post_album(&client, peer, items, options, random_id).await
    } else {
        publish::post(
            &client,
            peer,
            &content.text,
            &content.entities,
            attachments.pop(),
            options,
            random_id,
        )
        .await
        .map(|m| vec![m])
    };
    match sent {
        Ok(list) => Ok(published(
            list.iter().map(|m| (i64::from(m.id), i64::from(m.date))),
        )),
        // An earlier attempt got through (its answer was lost, or the server stopped before
        // recording it): Telegram dropped the repeat. Find what it posted.
        Err(TgError::Rpc { name, .. }) if name == "RANDOM_ID_DUPLICATE" => {
            already_posted(&client, peer, claimed, count.max(1)).await
        }
        Err(e) => Err(account_failure(&e)),
    }
}

/// How far Telegram's clock may be behind ours when looking for an earlier attempt's post.
const CLOCK_SLACK_SECS: i64 = 60;

/// The post an earlier attempt of `claimed` published, from the chat's newest messages; if it
/// is not there (deleted meanwhile), the run is still published — Telegram said so — without
/// message ids.
async fn already_posted(
    client: &switchboard_telegram::grammers_client::Client,
    peer: switchboard_telegram::grammers_client::session::types::PeerRef,
    claimed: &ClaimedRun,
    count: usize,
) -> Result<Published, SendFailure> {
    let since = claimed.run.due_at.0 / 1000 - CLOCK_SLACK_SECS;
    let since = i32::try_from(since).unwrap_or(0);
    let found = publish::find_post(client, peer, &claimed.post.content.text, since, &[])
        .await
        .map_err(|e| account_failure(&e))?;
    tracing::info!(run_id = %claimed.run.id.0, tg_message_id = found.map(|m| m.id),
        "a repeated publication was already posted; recorded as published");
    Ok(match found {
        Some(first) => published((0..count).map(|i| {
            (
                i64::from(first.id) + i64::try_from(i).unwrap_or(0),
                i64::from(first.date),
            )
        })),
        None => Published {
            message_ids: Vec::new(),
            at: Timestamp::now(),
        },
    })
}

/// `(message id, Unix date)` pairs as a publication.
fn published(list: impl Iterator<Item = (i64, i64)>) -> Published {
    let list: Vec<(i64, i64)> = list.collect();
    let date = list.first().map(|m| m.1).unwrap_or(0);
    Published {
        message_ids: list.iter().map(|m| m.0).collect(),
        at: if date > 0 {
            Timestamp(date * 1000)
        } else {
            Timestamp::now()
        },
    }
}

/// A Bot API error of a publication as the run's history records it: the rights refusals get
/// the codes MTProto gives them, so the history reads the same for accounts and bots.
fn bot_failure(e: &BotApiError) -> SendFailure {
    let lower = |d: &str| d.to_ascii_lowercase();
    match e {
        BotApiError::Forbidden(d) if lower(d).contains("not a member") => SendFailure::Permanent {
            code: "CHAT_WRITE_FORBIDDEN".into(),
        },
        BotApiError::Api { description, .. }
            if lower(description).contains("need administrator rights")
                || lower(description).contains("not enough rights") =>
        {
            SendFailure::Permanent {
                code: "CHAT_ADMIN_REQUIRED".into(),
            }
        }
        e => bots::failure(e),
    }
}

fn bot_upload(media: &PostMedia, bytes: Vec<u8>) -> Upload {
    Upload {
        kind: BotMediaKind::from_kind(media.kind),
        file_name: file_name(media),
        mime: mime(media),
        bytes,
    }
}

async fn publish_as_bot(
    ctx: &Ctx,
    claimed: &ClaimedRun,
    bot: switchboard_domain::BotId,
) -> Result<Published, SendFailure> {
    let api = ctx.deps.bots.api_for_bot(bot).await?;
    let content = &claimed.post.content;
    let chat = claimed.post.target.peer_id;
    let options = PostOptions {
        silent: content.silent,
        no_webpage: !content.link_preview,
    };
    let mut uploads = Vec::with_capacity(content.media.len());
    for m in &content.media {
        uploads.push(bot_upload(m, read_file(&ctx.deps.files, m).await?));
    }
    let sent = match uploads.len() {
        0 => api
            .send_message_with(chat, &content.text, &content.entities, None, options)
            .await
            .map(|m| vec![m]),
        1 => {
            let file = uploads.remove(0);
            api.send_media_with(chat, &file, &content.text, &content.entities, None, options)
                .await
                .map(|m| vec![m])
        }
        _ => {
            let files: Vec<AlbumFile> = uploads
                .into_iter()
                .enumerate()
                .map(|(i, file)| AlbumFile {
                    file,
                    caption: if i == 0 {
                        content.text.clone()
                    } else {
                        String::new()
                    },
                    entities: if i == 0 {
                        content.entities.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            api.send_media_group(chat, &files, options).await
        }
    }
    .map_err(|e| bot_failure(&e))?;
    Ok(published(sent.iter().map(|m| (m.message_id, m.date))))
}

/// Carries out one claimed follow-up action and records the outcome.
async fn run_action(ctx: &Ctx, claimed: ClaimedAction) {
    let id = claimed.action.id;
    let result = match tokio::time::timeout(PUBLISH_TIMEOUT, act(ctx, &claimed)).await {
        Ok(r) => r,
        Err(_) => Err(SendFailure::Retry {
            code: "send_timeout".into(),
            after: None,
        }),
    };
    let now = Timestamp::now();
    let store = ctx.deps.scheduler.store();
    let written = match &result {
        Ok(()) => store
            .complete_action(id, claimed.token, now)
            .await
            .map(|_| ()),
        Err(failure) => {
            let retry_at = match failure {
                SendFailure::Retry { after: Some(w), .. } => Some(now.plus(*w)),
                SendFailure::Retry { after: None, .. }
                    if claimed.action.attempts < ctx.settings.max_attempts =>
                {
                    let attempt = i32::try_from(claimed.action.attempts).unwrap_or(i32::MAX);
                    Some(now.plus(backoff_between(
                        ctx.settings.base_delay,
                        ctx.settings.max_delay,
                        attempt,
                    )))
                }
                _ => None,
            };
            tracing::warn!(action_id = %id.0, code = failure.code(), "a follow-up action failed");
            store
                .fail_action(id, claimed.token, failure.code(), retry_at, now)
                .await
                .map(|_| ())
        }
    };
    if let Err(e) = written {
        tracing::warn!(action_id = %id.0, error = %e, "could not record a follow-up action");
    }
    ctx.wake.notify_one();
}

/// Names of Telegram's answers that mean the message is already gone (an action on it is
/// done: there is nothing left to unpin or delete).
fn already_gone(e: &SendFailure) -> bool {
    matches!(e, SendFailure::Permanent { code }
        if code == "MESSAGE_ID_INVALID" || code == "message_gone")
}

fn edit_of(claimed: &ClaimedAction) -> Result<switchboard_domain::PostEdit, SendFailure> {
    claimed
        .action
        .edit
        .clone()
        .ok_or_else(|| SendFailure::Permanent {
            code: "edit_missing".into(),
        })
}

async fn act(ctx: &Ctx, claimed: &ClaimedAction) -> Result<(), SendFailure> {
    let ids: Vec<i64> = claimed.run.message_ids.clone();
    let Some(&first) = ids.first() else {
        // The run's messages are not known (an earlier attempt's post was not found).
        return Err(SendFailure::Permanent {
            code: "message_ids_unknown".into(),
        });
    };
    let post = &claimed.post;
    let kind = claimed.action.kind;
    let r = match post.sender {
        PostSender::Account { account } => {
            let client = account_client(ctx, account).await?;
            let peer = target_peer(post)?;
            let first = i32::try_from(first).unwrap_or(0);
            let r = match kind {
                ActionKind::Pin => publish::pin(&client, peer, first, true, true).await,
                ActionKind::Unpin => publish::pin(&client, peer, first, false, true).await,
                ActionKind::Delete => {
                    let ids: Vec<i32> = ids.iter().filter_map(|i| i32::try_from(*i).ok()).collect();
                    publish::delete(&client, peer, &ids).await
                }
                ActionKind::Edit => {
                    let edit = edit_of(claimed)?;
                    let options = SendOptions {
                        silent: false,
                        no_webpage: !post.content.link_preview,
                    };
                    publish::edit(&client, peer, first, &edit.text, &edit.entities, options).await
                }
            };
            r.map_err(|e| match &e {
                TgError::Rpc { name, .. } if name == "MESSAGE_NOT_MODIFIED" => {
                    SendFailure::Permanent {
                        code: "message_gone".into(),
                    }
                }
                e => account_failure(e),
            })
        }
        PostSender::Bot { bot } => {
            let api = ctx.deps.bots.api_for_bot(bot).await?;
            let chat = post.target.peer_id;
            let r = match kind {
                ActionKind::Pin => api.pin_message(chat, first, true, true).await,
                ActionKind::Unpin => api.pin_message(chat, first, false, true).await,
                ActionKind::Delete => {
                    let mut r = Ok(());
                    for id in &ids {
                        match api.delete_message(chat, *id).await {
                            Err(BotApiError::Api { description, .. })
                                if description.contains("not found") => {}
                            Err(e) => {
                                r = Err(e);
                                break;
                            }
                            Ok(()) => {}
                        }
                    }
                    r
                }
                ActionKind::Edit => {
                    let edit = edit_of(claimed)?;
                    let options = PostOptions {
                        silent: false,
                        no_webpage: !post.content.link_preview,
                    };
                    api.edit_post(
                        chat,
                        first,
                        &edit.text,
                        &edit.entities,
                        !post.content.media.is_empty(),
                        options,
                    )
                    .await
                }
            };
            r.map_err(|e| match &e {
                BotApiError::Api { description, .. }
                    if description.contains("not found")
                        || description.contains("not modified") =>
                {
                    SendFailure::Permanent {
                        code: "message_gone".into(),
                    }
                }
                // A lost answer: pin, unpin, delete and edit are safe to repeat.
                BotApiError::Uncertain(_) => SendFailure::Retry {
                    code: SEND_UNCERTAIN.into(),
                    after: None,
                },
                e => bot_failure(e),
            })
        }
    };
    match r {
        Err(e) if already_gone(&e) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_counts_an_album_as_its_items() {
        let p = Pacer::default();
        let key = PaceKey::Chat(-100);
        let a = p.reserve(key, Duration::from_secs(3), 4);
        let b = p.reserve(key, Duration::from_secs(3), 1);
        assert_eq!(b - a, Duration::from_secs(12));
        let other = p.reserve(PaceKey::Chat(-200), Duration::from_secs(3), 1);
        assert!(other <= a + Duration::from_millis(5));
    }

    /// Every code the publisher records for a run — its own, and what the account and bot
    /// transports make of each kind of failure — has a text in the run history
    /// (`RUN_ERROR_CODES`); only Telegram's own refusal names pass through unlisted.
    #[test]
    fn every_code_a_run_can_end_with_has_a_history_text() {
        use switchboard_domain::RUN_ERROR_CODES;
        use switchboard_telegram::proxy::ProxyFailure;
        let proxies = [
            ProxyFailure::Unreachable,
            ProxyFailure::AuthFailed,
            ProxyFailure::Refused,
        ];
        let mut failures: Vec<SendFailure> = [
            TgError::FloodWait { seconds: 90 },
            TgError::Unreachable("reset".into()),
            TgError::ClientCrashed,
            TgError::Store(StoreError::Backend("down".into())),
            TgError::Unauthorized,
            TgError::Banned,
            TgError::Unexpected("an answer"),
        ]
        .iter()
        .chain(proxies.map(TgError::Proxy).iter())
        .map(account_failure)
        .collect();
        let bot_errors = [
            BotApiError::RetryAfter(3),
            BotApiError::Unauthorized,
            BotApiError::Forbidden("Forbidden: bot was blocked by the user".into()),
            BotApiError::Forbidden("Forbidden: bot is not a member of the channel chat".into()),
            BotApiError::Forbidden("Forbidden: bot was kicked".into()),
            BotApiError::ChatNotFound,
            BotApiError::Conflict("webhook".into()),
            BotApiError::Api {
                code: 502,
                description: "Bad Gateway".into(),
            },
            BotApiError::Api {
                code: 400,
                description: "Bad Request: need administrator rights in the channel chat".into(),
            },
            BotApiError::Api {
                code: 400,
                description: "Bad Request: something else".into(),
            },
            BotApiError::Network("refused".into()),
            BotApiError::Uncertain("timeout".into()),
            BotApiError::Unexpected("html".into()),
        ];
        failures.extend(bot_errors.iter().map(bot_failure));
        failures.extend(proxies.map(BotApiError::Proxy).iter().map(bot_failure));
        let mut codes: Vec<String> = failures.iter().map(|f| f.code().to_string()).collect();
        // The publisher's own codes, and the store's for runs it ends.
        codes.extend(
            [
                SEND_UNCERTAIN,
                "send_timeout",
                "account_offline",
                "file_missing",
                "peer_unknown",
                "bot_deleted",
                "missed",
                "post_changed",
            ]
            .map(String::from),
        );
        // The refusals the publisher gives its own meaning.
        codes.extend(["CHAT_WRITE_FORBIDDEN", "CHAT_ADMIN_REQUIRED"].map(String::from));
        let missing: Vec<&String> = codes
            .iter()
            .filter(|c| !RUN_ERROR_CODES.contains(&c.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "codes without a history text: {missing:?}"
        );
        // A Telegram refusal passes through under its own name.
        let other = account_failure(&TgError::Rpc {
            code: 400,
            name: "SOMETHING_NEW".into(),
        });
        assert_eq!(other.code(), "SOMETHING_NEW");
        assert_eq!(
            switchboard_domain::run_error_key("SOMETHING_NEW"),
            "run_error_other"
        );
    }

    #[test]
    fn a_bot_without_rights_gets_the_mtproto_code() {
        let e = BotApiError::Api {
            code: 400,
            description: "Bad Request: need administrator rights in the channel chat".into(),
        };
        assert_eq!(
            bot_failure(&e),
            SendFailure::Permanent {
                code: "CHAT_ADMIN_REQUIRED".into()
            }
        );
        let e = BotApiError::Forbidden("Forbidden: bot is not a member of the channel chat".into());
        assert_eq!(bot_failure(&e).code(), "CHAT_WRITE_FORBIDDEN");
        assert_eq!(
            bot_failure(&BotApiError::RetryAfter(7)),
            SendFailure::Retry {
                code: "retry_after".into(),
                after: Some(Duration::from_secs(7))
            }
        );
    }
}
