//! Bots (Bot API): adding one by token, starting, stopping and deleting it, receiving its
//! updates (long polling, or the webhook handler calling [`BotService::receive_hook`]) and
//! the bot's worker (one per bot, `bot:<id>` under the [`Workers`] supervisor), which turns
//! stored raw updates into inbox messages through the ingest pipeline; plus [`BotTransport`],
//! which sends replies through the Bot API.
//!
//! Raw updates are always stored (deduplicated by `update_id`) before anything else happens
//! to them: before the long-polling offset moves past them, before the webhook answers 200.
//! A processor then maps them and ingests them together with marking them processed, in one
//! transaction, so a crash re-processes rather than loses. The token and the webhook secret
//! are sealed by the vault with AAD bound to the bot, and never logged.

use crate::events::{Audience, EventBus, ServerEvent};
use crate::inbox::Inbox;
use crate::ingest::{Change, Source};
use crate::media::RecordStored;
use crate::outbox::{SendFailure, Sent, Transport};
use crate::workers::{Exit, Tasks, WorkerCtx, WorkerSpec, WorkerStatus, Workers, bot_worker};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    Bot, BotId, BotMode, BotStatus, Chat, Entity, InboxStore, IncomingMessage, IngestOutcome,
    Media, Message, NewBot, OutboxItem, StoreError, Timestamp, WorkspaceId,
};
use switchboard_files::{FileId, FileStore};
use switchboard_telegram::botapi::{
    ALLOWED_UPDATES, BotApi, BotApiError, BotUpdate, MediaKind, Upload, map_update, token_bot_id,
    token_is_well_formed,
};
use switchboard_vault::{Keyring, Sealed};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

/// Updates processed per transaction.
const BATCH: u32 = 100;

/// A `/start <payload>` a user sent to a bot in a private chat (a deep link they opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartCommand {
    /// The Telegram user who sent it.
    pub from_id: i64,
    /// The private chat it came in.
    pub chat_id: i64,
    /// The deep link's payload.
    pub payload: String,
    /// The language of the user's Telegram app, when it says.
    pub language_code: Option<String>,
}

/// Takes `/start` deep-link commands before the inbox sees them: the web sign-in binds a
/// user's chat with the service bot this way, and that traffic is no inbox chat.
#[async_trait::async_trait]
pub trait StartHandler: Send + Sync {
    /// True when the command was the handler's (it is then not stored as a message).
    async fn on_start(&self, bot: &Bot, command: &StartCommand) -> bool;
}

/// Media downloads running at once.
const DOWNLOADS: usize = 4;

/// Why a bot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The token is not shaped like a bot token.
    #[error("malformed bot token")]
    TokenInvalid,
    /// Telegram does not know the token.
    #[error("Telegram rejected the bot token")]
    TokenRejected,
    /// The workspace already has this bot.
    #[error("the bot is already connected")]
    Exists,
    /// No such bot (in this workspace).
    #[error("not found")]
    NotFound,
    /// Telegram failed otherwise.
    #[error("Bot API: {0}")]
    Telegram(BotApiError),
    /// The database failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// Sealing or opening a secret failed.
    #[error("vault: {0}")]
    Vault(&'static str),
}

impl BotError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BotError::TokenInvalid => "bot_token_invalid",
            BotError::TokenRejected => "bot_token_rejected",
            BotError::Exists => "bot_exists",
            BotError::NotFound => "not_found",
            BotError::Telegram(e) => e.code(),
            BotError::Store(_) => "store_error",
            BotError::Vault(_) => "vault_error",
        }
    }

    /// Seconds Telegram asked to wait before the next call (`retry_after`), when that is why
    /// it failed.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            BotError::Telegram(BotApiError::RetryAfter(s)) => Some(*s),
            _ => None,
        }
    }
}

impl From<StoreError> for BotError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => BotError::NotFound,
            StoreError::Conflict(ErrorCode::BotExists) => BotError::Exists,
            other => BotError::Store(other),
        }
    }
}

/// What the webhook handler should answer.
#[derive(Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// Stored (true) or a duplicate `update_id` (false): answer 200.
    Accepted(bool),
    /// No bot has this hook id: 404.
    UnknownHook,
    /// The secret header is missing or wrong: 401.
    BadSecret,
    /// The body is not an update: 400.
    Malformed,
}

/// Settings of the bot side.
#[derive(Clone, Debug)]
pub struct BotSettings {
    /// Bot API base URL.
    pub api_url: String,
    /// Public base URL of this server: webhook mode when set.
    pub public_url: Option<String>,
    /// Long-poll timeout.
    pub poll_timeout: Duration,
    /// Largest media file downloaded.
    pub max_download_bytes: u64,
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            api_url: switchboard_telegram::botapi::DEFAULT_BASE_URL.into(),
            public_url: None,
            poll_timeout: Duration::from_secs(25),
            max_download_bytes: 20 * 1024 * 1024,
        }
    }
}

struct Inner {
    store: Arc<dyn InboxStore>,
    keyring: Arc<Keyring>,
    inbox: Inbox,
    events: EventBus,
    files: FileStore,
    http: reqwest::Client,
    settings: BotSettings,
    /// The wake-up of each started bot's worker (a webhook delivery arrived).
    wakes: Mutex<HashMap<BotId, Arc<Notify>>>,
    downloads: Arc<tokio::sync::Semaphore>,
    workers: Workers,
    /// The bots' media downloads.
    fetches: Tasks,
    /// Who takes `/start` deep links first (the web sign-in), once set.
    start_handler: std::sync::OnceLock<Arc<dyn StartHandler>>,
}

/// Bots and their workers. Cloning shares it.
#[derive(Clone)]
pub struct BotService {
    inner: Arc<Inner>,
}

fn random_hex(n: usize) -> Result<String, BotError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|_| BotError::Vault("no randomness"))?;
    Ok(hex::encode(b))
}

fn aad(workspace: WorkspaceId, telegram_bot_id: i64, hook_id: &str, what: &str) -> Vec<u8> {
    format!("bot:{}:{telegram_bot_id}:{hook_id}:{what}", workspace.0).into_bytes()
}

impl BotService {
    /// A service with nothing running yet; its bot workers run under `workers`.
    pub fn new(
        store: Arc<dyn InboxStore>,
        keyring: Arc<Keyring>,
        inbox: Inbox,
        files: FileStore,
        settings: BotSettings,
        workers: Workers,
    ) -> Self {
        let events = inbox.events().clone();
        let fetches = workers.tasks("bot_media_downloads");
        Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                inbox,
                events,
                files,
                http: BotApi::http_client(),
                settings,
                wakes: Mutex::new(HashMap::new()),
                downloads: Arc::new(tokio::sync::Semaphore::new(DOWNLOADS)),
                workers,
                fetches,
                start_handler: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Sets who takes `/start` deep links before the inbox (once; later calls are ignored).
    pub fn set_start_handler(&self, handler: Arc<dyn StartHandler>) {
        let _ = self.inner.start_handler.set(handler);
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn InboxStore> {
        &self.inner.store
    }

    /// Adds a bot by token: checks it with `getMe`, seals it, and starts the bot.
    pub async fn add(&self, workspace: WorkspaceId, token: &str) -> Result<Bot, BotError> {
        let token = token.trim();
        if !token_is_well_formed(token) {
            return Err(BotError::TokenInvalid);
        }
        let api = BotApi::new(self.inner.http.clone(), &self.inner.settings.api_url, token);
        let me = match api.get_me().await {
            Ok(me) => me,
            Err(BotApiError::Unauthorized) => return Err(BotError::TokenRejected),
            Err(e) => return Err(BotError::Telegram(e)),
        };
        if token_bot_id(token) != Some(me.id) {
            return Err(BotError::TokenRejected);
        }
        let hook_id = random_hex(16)?;
        let secret = Zeroizing::new(random_hex(32)?);
        let seal = |plain: &[u8], what: &str| {
            self.inner
                .keyring
                .seal(plain, &aad(workspace, me.id, &hook_id, what))
                .map(|s| s.to_bytes())
                .map_err(|_| BotError::Vault("sealing failed"))
        };
        let new = NewBot {
            workspace_id: workspace,
            telegram_bot_id: me.id,
            username: me.username,
            first_name: me.first_name,
            mode: if self.inner.settings.public_url.is_some() {
                BotMode::Webhook
            } else {
                BotMode::Polling
            },
            token_sealed: seal(token.as_bytes(), "token")?,
            hook_secret_sealed: seal(secret.as_bytes(), "secret")?,
            hook_id: hook_id.clone(),
        };
        let bot = self.inner.store.create_bot(&new, Timestamp::now()).await?;
        tracing::info!(bot_id = %bot.id, telegram_bot_id = bot.telegram_bot_id, mode = bot.mode.as_str(), "bot added");
        self.start_worker(&bot);
        Ok(bot)
    }

    /// Bots of a workspace.
    pub async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Bot>, BotError> {
        Ok(self.inner.store.list_bots(workspace).await?)
    }

    /// True while the bot's worker runs (or waits to reconnect).
    pub fn is_running(&self, id: BotId) -> bool {
        self.inner.workers.is_running(&bot_worker(id))
    }

    /// The bot's worker under the supervisor, if it was started.
    pub fn worker(&self, id: BotId) -> Option<WorkerStatus> {
        self.inner.workers.status(&bot_worker(id))
    }

    /// Starts a stopped bot.
    pub async fn start(&self, workspace: WorkspaceId, id: BotId) -> Result<Bot, BotError> {
        let bot = self.inner.store.get_bot(workspace, id).await?;
        self.inner
            .store
            .set_bot_active(id, true, Timestamp::now())
            .await?;
        self.start_worker(&bot);
        Ok(self.inner.store.get_bot(workspace, id).await?)
    }

    /// Stops a bot (its webhook is removed so Telegram keeps the updates).
    pub async fn stop(&self, workspace: WorkspaceId, id: BotId) -> Result<Bot, BotError> {
        let bot = self.inner.store.get_bot(workspace, id).await?;
        self.inner
            .store
            .set_bot_active(id, false, Timestamp::now())
            .await?;
        self.stop_worker(id).await;
        if bot.mode == BotMode::Webhook
            && let Ok(api) = api_of(&self.inner, &bot)
            && let Err(e) = api.delete_webhook().await
        {
            tracing::warn!(bot_id = %id, code = e.code(), "could not remove the webhook");
        }
        report(&self.inner, &bot, BotStatus::Stopped, None).await;
        Ok(self.inner.store.get_bot(workspace, id).await?)
    }

    /// Deletes a bot with its chats (the webhook is removed, best effort).
    pub async fn delete(&self, workspace: WorkspaceId, id: BotId) -> Result<(), BotError> {
        let bot = self.inner.store.get_bot(workspace, id).await?;
        self.stop_worker(id).await;
        if let Ok(api) = api_of(&self.inner, &bot)
            && let Err(e) = api.delete_webhook().await
        {
            tracing::warn!(bot_id = %id, code = e.code(), "could not remove the webhook");
        }
        self.inner.store.delete_bot(workspace, id).await?;
        self.inner.events.publish(
            workspace,
            Audience::Workspace,
            ServerEvent::BotStatus {
                bot_id: id,
                status: "deleted",
                detail: None,
            },
        );
        Ok(())
    }

    /// Starts every active bot; returns how many.
    pub async fn start_all(&self) -> Result<usize, StoreError> {
        let bots = self.inner.store.list_active_bots().await?;
        let n = bots.len();
        for b in &bots {
            self.start_worker(b);
        }
        Ok(n)
    }

    /// Handles a webhook delivery: checks the secret in constant time, stores the raw update
    /// (a repeated `update_id` is dropped) and wakes the processor.
    pub async fn receive_hook(
        &self,
        hook_id: &str,
        secret: Option<&[u8]>,
        body: &[u8],
    ) -> Result<HookOutcome, BotError> {
        if hook_id.len() > 64 || !hook_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(HookOutcome::UnknownHook);
        }
        let Some(bot) = self.inner.store.find_bot_by_hook(hook_id).await? else {
            return Ok(HookOutcome::UnknownHook);
        };
        let expected = open(&self.inner, &bot, &bot.hook_secret_sealed, "secret")?;
        let given = secret.unwrap_or_default();
        if given.is_empty() || !bool::from(given.ct_eq(expected.as_slice())) {
            return Ok(HookOutcome::BadSecret);
        }
        let Ok(update) = serde_json::from_slice::<Value>(body) else {
            return Ok(HookOutcome::Malformed);
        };
        let Some(update_id) = update.get("update_id").and_then(Value::as_i64) else {
            return Ok(HookOutcome::Malformed);
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(HookOutcome::Malformed);
        };
        let n = self
            .inner
            .store
            .store_bot_updates(bot.id, &[(update_id, text.to_string())], Timestamp::now())
            .await?;
        self.wake(bot.id);
        Ok(HookOutcome::Accepted(n > 0))
    }

    fn wake(&self, id: BotId) {
        let wakes = self.inner.wakes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = wakes.get(&id) {
            w.notify_one();
        }
    }

    fn start_worker(&self, bot: &Bot) {
        let mut wakes = self.inner.wakes.lock().unwrap_or_else(|p| p.into_inner());
        let wake = Arc::new(Notify::new());
        // Downloads left unfinished before this worker started are looked for once, when its
        // token is first accepted.
        let recover = Arc::new(Mutex::new(Some(Timestamp::now())));
        let inner = Arc::clone(&self.inner);
        let id = bot.id;
        let w = Arc::clone(&wake);
        let started = self.inner.workers.start(WorkerSpec::bot(id), move |ctx| {
            let (inner, wake, recover) = (Arc::clone(&inner), Arc::clone(&w), Arc::clone(&recover));
            async move { run_bot(&inner, id, &ctx, &wake, &recover).await }
        });
        if started {
            wakes.insert(id, wake);
        }
    }

    async fn stop_worker(&self, id: BotId) {
        self.inner
            .wakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.inner.workers.stop(&bot_worker(id)).await;
    }

    /// The transport that sends replies of bot chats.
    pub fn transport(&self) -> BotTransport {
        BotTransport {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn open(
    inner: &Inner,
    bot: &Bot,
    sealed: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, BotError> {
    let sealed = Sealed::from_bytes(sealed).map_err(|_| BotError::Vault("corrupt sealed value"))?;
    inner
        .keyring
        .open(
            &sealed,
            &aad(bot.workspace_id, bot.telegram_bot_id, &bot.hook_id, what),
        )
        .map_err(|_| BotError::Vault("cannot open sealed value"))
}

fn api_of(inner: &Inner, bot: &Bot) -> Result<BotApi, BotError> {
    let token = open(inner, bot, &bot.token_sealed, "token")?;
    let token = std::str::from_utf8(&token).map_err(|_| BotError::Vault("token is not text"))?;
    Ok(BotApi::new(
        inner.http.clone(),
        &inner.settings.api_url,
        token,
    ))
}

/// Saves and announces a bot's health.
async fn report(inner: &Inner, bot: &Bot, status: BotStatus, detail: Option<String>) {
    if let Err(e) = inner
        .store
        .set_bot_status(bot.id, status, detail.as_deref(), Timestamp::now())
        .await
    {
        tracing::error!(bot_id = %bot.id, error = %e, "could not save bot status");
    }
    inner.events.publish(
        bot.workspace_id,
        Audience::Workspace,
        ServerEvent::BotStatus {
            bot_id: bot.id,
            status: status.as_str(),
            detail: detail.as_deref(),
        },
    );
}

enum Stop {
    Cancelled,
    Unauthorized,
}

/// One run of a bot's worker: reports the bot connecting, runs one connection, and tells the
/// supervisor how it ended — a `retry_after` is waited out, a rejected token is given up (and
/// the bot made inactive), anything else is retried with backoff.
async fn run_bot(
    inner: &Inner,
    id: BotId,
    ctx: &WorkerCtx,
    wake: &Notify,
    recover: &Mutex<Option<Timestamp>>,
) -> Exit {
    let bot = match inner.store.load_bot(id).await {
        Ok(b) => b,
        Err(StoreError::NotFound) => return Exit::Stopped,
        Err(e) => {
            tracing::error!(bot_id = %id, error = %e, "could not load bot");
            return Exit::Retry("store_error".into());
        }
    };
    let status = if ctx.attempt() == 0 {
        BotStatus::Connecting
    } else {
        BotStatus::Reconnecting
    };
    if bot.status != status || status == BotStatus::Connecting {
        report(
            inner,
            &bot,
            status,
            bot.status_detail
                .clone()
                .filter(|_| status == BotStatus::Reconnecting),
        )
        .await;
    }
    match cycle(inner, &bot, ctx, wake, recover).await {
        Ok(Stop::Cancelled) => Exit::Stopped,
        Ok(Stop::Unauthorized) => {
            report(
                inner,
                &bot,
                BotStatus::Unauthorized,
                Some("Telegram rejected the bot token".into()),
            )
            .await;
            let _ = inner
                .store
                .set_bot_active(id, false, Timestamp::now())
                .await;
            Exit::Failed("bot_token_rejected".into())
        }
        Err(e) => {
            tracing::warn!(bot_id = %id, code = e.code(), error = %e, "bot connection failed");
            report(inner, &bot, BotStatus::Reconnecting, Some(e.code().into())).await;
            match &e {
                BotError::Telegram(BotApiError::RetryAfter(s)) => {
                    Exit::RetryAfter(Duration::from_secs(*s), e.code().into())
                }
                _ => Exit::Retry(e.code().into()),
            }
        }
    }
}

fn api_result<T>(r: Result<T, BotApiError>) -> Result<Result<T, Stop>, BotError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(BotApiError::Unauthorized) => Ok(Err(Stop::Unauthorized)),
        Err(e) => Err(BotError::Telegram(e)),
    }
}

/// One connection's life: check the token, set up webhook or polling, then receive and
/// process until cancelled or the Bot API fails.
async fn cycle(
    inner: &Inner,
    bot: &Bot,
    ctx: &WorkerCtx,
    wake: &Notify,
    recover: &Mutex<Option<Timestamp>>,
) -> Result<Stop, BotError> {
    let cancel = ctx.cancel();
    let api = api_of(inner, bot)?;
    let checked = tokio::select! {
        _ = cancel.cancelled() => return Ok(Stop::Cancelled),
        r = api.get_me() => r,
    };
    if let Err(stop) = api_result(checked)? {
        return Ok(stop);
    }
    let started = recover.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(started) = started {
        spawn_recovery(inner, bot, &api, started, cancel.child_token());
    }
    match bot.mode {
        BotMode::Webhook => {
            let public = inner.settings.public_url.as_deref().unwrap_or_default();
            let url = format!("{}/tg/hook/{}", public.trim_end_matches('/'), bot.hook_id);
            let secret = open(inner, bot, &bot.hook_secret_sealed, "secret")?;
            let secret = std::str::from_utf8(&secret).map_err(|_| BotError::Vault("secret"))?;
            if let Err(stop) = api_result(api.set_webhook(&url, secret, ALLOWED_UPDATES).await)? {
                return Ok(stop);
            }
            report(inner, bot, BotStatus::Connected, None).await;
            ctx.running();
            loop {
                let notified = wake.notified();
                process_pending(inner, bot, &api).await?;
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(Stop::Cancelled),
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        }
        BotMode::Polling => {
            // A webhook left from an earlier mode would make getUpdates fail with 409.
            if let Err(e) = api.delete_webhook().await {
                tracing::debug!(bot_id = %bot.id, code = e.code(), "deleteWebhook failed");
            }
            report(inner, bot, BotStatus::Connected, None).await;
            ctx.running();
            let mut offset = bot.last_update_id.map(|u| u + 1);
            loop {
                process_pending(inner, bot, &api).await?;
                let got = tokio::select! {
                    _ = cancel.cancelled() => return Ok(Stop::Cancelled),
                    r = api.get_updates(offset, inner.settings.poll_timeout, ALLOWED_UPDATES) => r,
                };
                let updates = match api_result(got)? {
                    Ok(u) => u,
                    Err(stop) => return Ok(stop),
                };
                let raw: Vec<(i64, String)> = updates
                    .iter()
                    .filter_map(|u| {
                        u.get("update_id")
                            .and_then(Value::as_i64)
                            .map(|id| (id, u.to_string()))
                    })
                    .collect();
                if raw.is_empty() {
                    continue;
                }
                // Stored before the offset moves past them: a crash here re-fetches.
                inner
                    .store
                    .store_bot_updates(bot.id, &raw, Timestamp::now())
                    .await?;
                if let Some(max) = raw.iter().map(|(id, _)| *id).max() {
                    offset = Some(max + 1);
                }
            }
        }
    }
}

/// Maps and ingests every stored, unprocessed update of the bot through the ingest pipeline.
async fn process_pending(inner: &Inner, bot: &Bot, api: &BotApi) -> Result<(), BotError> {
    loop {
        let pending = inner.store.pending_bot_updates(bot.id, BATCH).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let consumed = take_start_commands(inner, bot, &pending).await;
        let mut source = BotSource {
            inner,
            bot,
            api,
            processed: Vec::new(),
            consumed,
        };
        crate::ingest::ingest(&mut source, &inner.inbox, bot.workspace_id, &pending).await?;
    }
}

/// Hands the `/start <payload>` commands among `pending` to the start handler; the update ids
/// it took (they are marked processed but not stored as messages).
async fn take_start_commands(
    inner: &Inner,
    bot: &Bot,
    pending: &[(i64, String)],
) -> std::collections::HashSet<i64> {
    let mut taken = std::collections::HashSet::new();
    let Some(handler) = inner.start_handler.get() else {
        return taken;
    };
    for (update_id, payload) in pending {
        let update: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        if let Some(command) = start_command(&update)
            && handler.on_start(bot, &command).await
        {
            taken.insert(*update_id);
        }
    }
    taken
}

/// The `/start <payload>` of a private-chat message update, if it is one.
fn start_command(update: &Value) -> Option<StartCommand> {
    let message = update.get("message")?;
    let chat = message.get("chat")?;
    if chat.get("type").and_then(Value::as_str) != Some("private") {
        return None;
    }
    let text = message.get("text").and_then(Value::as_str)?;
    let payload = text.strip_prefix("/start ")?.trim();
    if payload.is_empty() {
        return None;
    }
    let from = message.get("from")?;
    Some(StartCommand {
        from_id: from.get("id").and_then(Value::as_i64)?,
        chat_id: chat.get("id").and_then(Value::as_i64)?,
        payload: payload.to_string(),
        language_code: from
            .get("language_code")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A bot's side of the ingest pipeline: stored raw Bot API updates (marked processed in the
/// transaction that stores their messages), the bot's store methods, `getFile` downloads.
struct BotSource<'a> {
    inner: &'a Inner,
    bot: &'a Bot,
    api: &'a BotApi,
    processed: Vec<i64>,
    /// Updates the start handler took: processed, never stored as messages.
    consumed: std::collections::HashSet<i64>,
}

impl Source for BotSource<'_> {
    type Update = (i64, String);

    fn map(&mut self, (update_id, payload): &(i64, String)) -> Option<Change> {
        if self.consumed.contains(update_id) {
            return None;
        }
        let update: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        match map_update(&update, self.bot.telegram_bot_id) {
            BotUpdate::New(m) => Some(Change::New(m)),
            BotUpdate::Edited { message, edited_at } => Some(Change::Edited { message, edited_at }),
            BotUpdate::Ignored => None,
        }
    }

    fn mapped(&mut self, (update_id, _): &(i64, String)) {
        self.processed.push(*update_id);
    }

    fn has_uncommitted(&self) -> bool {
        !self.processed.is_empty()
    }

    async fn store(
        &mut self,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> Result<IngestOutcome, StoreError> {
        let outcome = self
            .inner
            .store
            .ingest_bot_messages(self.bot.id, batch, &self.processed, now)
            .await?;
        self.processed.clear();
        Ok(outcome)
    }

    async fn edit(
        &self,
        m: &IncomingMessage,
        edited_at: Timestamp,
    ) -> Result<Option<Message>, StoreError> {
        self.inner
            .store
            .apply_bot_message_edit(
                self.bot.id,
                m.peer_id,
                m.tg_message_id,
                &m.text,
                &m.entities,
                edited_at,
            )
            .await
    }

    async fn delete(&self, _: Option<i64>, _: &[i64]) -> Result<Vec<Message>, StoreError> {
        // The Bot API does not tell bots about deletions.
        Ok(Vec::new())
    }

    fn files(&mut self, inserted: &[Message]) {
        for m in inserted {
            if let Some(media) = &m.media
                && media.tg_file_id.is_some()
                && media.file_id.is_none()
            {
                spawn_download(self.inner, self.bot, self.api, m.id, media.clone());
            }
        }
    }
}

/// Fetches a message's file with `getFile` into the file store in the background (at most
/// [`DOWNLOADS`] at once), then records its id (`file_id`, SHA-256 hex) in the message's media.
fn spawn_download(
    inner: &Inner,
    bot: &Bot,
    api: &BotApi,
    message: switchboard_domain::MessageId,
    media: Media,
) {
    let downloader = Downloader::new(inner, bot, api);
    inner
        .fetches
        .spawn(async move { downloader.fetch(message, media).await });
}

/// Messages looked at per page when finding downloads anew.
const RECOVER_PAGE: u32 = 100;

/// Finds the bot's messages stored before `started` whose file was never stored (a download
/// that failed, or was still running when the server stopped or crashed) and fetches them
/// again, one after the other, in the background, until `cancel` fires.
fn spawn_recovery(
    inner: &Inner,
    bot: &Bot,
    api: &BotApi,
    started: Timestamp,
    cancel: CancellationToken,
) {
    let downloader = Downloader::new(inner, bot, api);
    inner.fetches.spawn(async move {
        let owner = switchboard_domain::ChatOwner::Bot(downloader.bot);
        let mut after = None;
        let mut fetched = 0usize;
        loop {
            let page = match downloader
                .store
                .messages_missing_files(owner, started, after, RECOVER_PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(bot_id = %downloader.bot, error = %e, "could not look for unfinished downloads");
                    return;
                }
            };
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id);
            for m in page {
                let Some(media) = m.media else { continue };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    () = downloader.fetch(m.id, media) => fetched += 1,
                }
            }
        }
        if fetched > 0 {
            tracing::info!(bot_id = %downloader.bot, fetched, "unfinished media downloads tried again");
        }
    });
}

/// What fetching one file of a bot's message needs.
struct Downloader {
    store: Arc<dyn InboxStore>,
    files: FileStore,
    inbox: Inbox,
    slots: Arc<tokio::sync::Semaphore>,
    api: BotApi,
    bot: BotId,
    workspace: WorkspaceId,
    max_bytes: u64,
}

impl Downloader {
    fn new(inner: &Inner, bot: &Bot, api: &BotApi) -> Self {
        Self {
            store: Arc::clone(&inner.store),
            files: inner.files.clone(),
            inbox: inner.inbox.clone(),
            slots: Arc::clone(&inner.downloads),
            api: api.clone(),
            bot: bot.id,
            workspace: bot.workspace_id,
            max_bytes: inner.settings.max_download_bytes,
        }
    }

    /// Downloads the file named by the media's `tg_file_id` and records it.
    async fn fetch(&self, message: switchboard_domain::MessageId, mut media: Media) {
        let Ok(_slot) = self.slots.acquire().await else {
            return;
        };
        let Some(tg_file_id) = media.tg_file_id.as_deref() else {
            return;
        };
        let bytes = match self.api.get_file(tg_file_id).await {
            Ok(info) => self.api.download(&info, self.max_bytes).await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(bot_id = %self.bot, message_id = %message, code = e.code(), "media download failed");
                return;
            }
        };
        let stored = match self.files.put_bytes(&bytes).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(message_id = %message, error = %e, "could not store media");
                return;
            }
        };
        media.record_stored(&stored);
        match self
            .store
            .set_bot_message_media(self.bot, message, &media)
            .await
        {
            Ok(Some(m)) => self.inbox.message_changed(self.workspace, &m).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(message_id = %message, error = %e, "could not record media"),
        }
    }
}

/// Sends replies of bot chats through the Bot API.
#[derive(Clone)]
pub struct BotTransport {
    inner: Arc<Inner>,
}

/// Sorts a Bot API error into retry-later or give-up.
pub fn failure(e: &BotApiError) -> SendFailure {
    match e {
        BotApiError::RetryAfter(s) => SendFailure::Retry {
            code: "retry_after".into(),
            after: Some(Duration::from_secs(*s)),
        },
        BotApiError::Uncertain(_) => SendFailure::Uncertain,
        e if e.is_permanent() => SendFailure::Permanent {
            code: e.code().into(),
        },
        e => SendFailure::Retry {
            code: e.code().into(),
            after: None,
        },
    }
}

impl BotTransport {
    async fn api(&self, chat: &Chat) -> Result<BotApi, SendFailure> {
        let id = chat.bot_id.ok_or_else(|| SendFailure::Permanent {
            code: "not_a_bot_chat".into(),
        })?;
        self.api_of_bot(id).await
    }

    async fn api_of_bot(&self, id: BotId) -> Result<BotApi, SendFailure> {
        let bot = match self.inner.store.load_bot(id).await {
            Ok(b) => b,
            Err(StoreError::NotFound) => {
                return Err(SendFailure::Permanent {
                    code: "bot_deleted".into(),
                });
            }
            Err(_) => {
                return Err(SendFailure::Retry {
                    code: "store_error".into(),
                    after: None,
                });
            }
        };
        api_of(&self.inner, &bot).map_err(|e| SendFailure::Permanent {
            code: e.code().into(),
        })
    }

    async fn upload(&self, media: Option<&Media>) -> Result<Option<Upload>, SendFailure> {
        let Some((media, file_id)) = media.and_then(|m| Some((m, m.file_id.as_deref()?))) else {
            return Ok(None);
        };
        let missing = || SendFailure::Permanent {
            code: "file_missing".into(),
        };
        let id: FileId = file_id.parse().map_err(|_| missing())?;
        let bytes = tokio::fs::read(self.inner.files.path(&id))
            .await
            .map_err(|_| missing())?;
        Ok(Some(Upload {
            kind: MediaKind::from_kind(media.kind),
            file_name: media.file_name.as_deref().unwrap_or("file").to_string(),
            mime: media
                .mime_type
                .as_deref()
                .unwrap_or("application/octet-stream")
                .to_string(),
            bytes,
        }))
    }
}

/// What the Bot API answered to a send, as the outbox records it.
fn sent_of(sent: &switchboard_telegram::botapi::SentMessage) -> Sent {
    Sent {
        tg_message_id: sent.message_id,
        sent_at: if sent.date > 0 {
            Timestamp(sent.date * 1000)
        } else {
            Timestamp::now()
        },
    }
}

impl BotTransport {
    /// Sends a text message with entities from bot `bot` to the Telegram chat `chat_id`
    /// (Bot API `sendMessage`), e.g. a lead notification. A lost answer is
    /// [`SendFailure::Uncertain`]: the Bot API has no `random_id`, so it is never repeated.
    pub async fn send_text(
        &self,
        bot: BotId,
        chat_id: i64,
        text: &str,
        entities: &[Entity],
    ) -> Result<Sent, SendFailure> {
        let api = self.api_of_bot(bot).await?;
        let sent = api
            .send_message(chat_id, text, entities, None)
            .await
            .map_err(|e| failure(&e))?;
        Ok(sent_of(&sent))
    }
}

#[async_trait::async_trait]
impl Transport for BotTransport {
    async fn send(&self, item: &OutboxItem) -> Result<Sent, SendFailure> {
        let api = self.api(&item.chat).await?;
        let m = &item.message;
        let result = match self.upload(m.media.as_ref()).await? {
            Some(file) => {
                api.send_media(
                    item.chat.peer_id,
                    &file,
                    &m.text,
                    &m.entities,
                    m.reply_to_tg_id,
                )
                .await
            }
            None => {
                api.send_message(item.chat.peer_id, &m.text, &m.entities, m.reply_to_tg_id)
                    .await
            }
        };
        let sent = result.map_err(|e| failure(&e))?;
        Ok(sent_of(&sent))
    }

    async fn mark_read(&self, _chat: &Chat, _max_tg_id: i64) -> Result<(), SendFailure> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_api_errors_become_send_failures() {
        assert_eq!(
            failure(&BotApiError::RetryAfter(3)),
            SendFailure::Retry {
                code: "retry_after".into(),
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            failure(&BotApiError::Forbidden(
                "Forbidden: bot was blocked by the user".into()
            )),
            SendFailure::Permanent {
                code: "bot_blocked".into()
            }
        );
        assert_eq!(
            failure(&BotApiError::ChatNotFound),
            SendFailure::Permanent {
                code: "chat_not_found".into()
            }
        );
        assert!(matches!(
            failure(&BotApiError::Network("x".into())),
            SendFailure::Retry { .. }
        ));
        assert_eq!(
            failure(&BotApiError::Uncertain("timed out".into())),
            SendFailure::Uncertain
        );
    }
}
