//! Lead monitoring's data: *tasks* (a query over *sources*, read by one account of the
//! workspace, delivered somewhere), the sources themselves (channels and chats, per reading
//! account), the *leads* found (deduplicated by the database), their delivery queue, and the
//! [`LeadStore`] port. The rules both backends share live here as pure functions: validation of
//! a task ([`check_task_spec`]), the role rule ([`Viewer::check_manage_tasks`]), parsing of
//! source references ([`SourceRef::parse`]), the SimHash near-duplicate test
//! ([`near_duplicate`]), the terms an edit adds ([`new_terms`]) and the words of a search
//! ([`search_terms`]). The data model is described in `docs/leads-data.md`.

use crate::error_code::ErrorCode;
use crate::ids::{AccountId, BotId, ChatId, UserId, WorkspaceId};
use crate::inbox::Viewer;
use crate::rows::{Columns, corrupt};
use crate::store::{StoreError, StoreResult};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

id_type!(
    /// A monitoring task.
    TaskId
);
id_type!(
    /// A monitored channel or chat, per reading account.
    SourceId
);
id_type!(
    /// A post that matched a task.
    LeadId
);
id_type!(
    /// One Telegram message of the lead delivery queue (one lead, or a digest of several).
    LeadDeliveryId
);

/// Longest task name, in characters.
pub const MAX_TASK_NAME: usize = 100;
/// Longest query text, in characters (the query language is the engine's; the store keeps text).
pub const MAX_QUERY: usize = 4096;
/// Longest digest interval: one day.
pub const MAX_DIGEST_MINUTES: u32 = 1440;
/// The default cap of an instant task, in leads per minute, before it falls back to a digest.
pub const DEFAULT_INSTANT_CAP: u32 = 10;
/// Highest instant cap a task may set.
pub const MAX_INSTANT_CAP: u32 = 600;
/// Most sources one task may watch (an account's channel cap).
pub const MAX_TASK_SOURCES: usize = 500;
/// Two leads of one task whose SimHashes differ in at most this many bits are one post.
pub const NEAR_DUPLICATE_BITS: u32 = 3;
/// ... when their posts are at most this far apart.
pub const NEAR_DUPLICATE_WINDOW: Duration = Duration::from_secs(72 * 3600);
/// The window of an instant task's rate cap.
pub const INSTANT_CAP_WINDOW: Duration = Duration::from_secs(60);
/// How often the leads an instant task held back over its cap go out as a digest.
pub const OVERFLOW_DIGEST_EVERY: Duration = Duration::from_secs(60);

text_enum!(
    /// How a source was named.
    SourceKind {
        /// A public `@username` (or `t.me/name`); the key is the lowercased name.
        Username = "username",
        /// An invite link (`t.me/+hash`, `t.me/joinchat/hash`); the key is the hash.
        Invite = "invite",
        /// A `t.me/c/<id>` link; the key is the channel id.
        ChannelId = "channel_id",
        /// Picked from the reading account's dialogs; the key is the Bot-API style peer id.
        Dialog = "dialog",
    }
);

text_enum!(
    /// Where a source is in its life.
    SourceState {
        /// Waiting to be resolved (and joined when allowed).
        Resolving = "resolving",
        /// The account is a member: posts come from its update stream.
        Joined = "joined",
        /// Not joined: read with paced `messages.getHistory`.
        Polled = "polled",
        /// Telegram asked to wait (see `wait_until`) before resolving or joining again.
        FloodWait = "flood_wait",
        /// Cannot be read (see `failure`, a reason code such as `channels_too_much`).
        Failed = "failed",
        /// Was joined by the monitor and left once no active task needed it.
        Left = "left",
    }
);

text_enum!(
    /// How a resolved source is read.
    ReadVia {
        /// From the account's update stream (joined sources).
        Updates = "updates",
        /// With paced `messages.getHistory` (sources that cannot be joined).
        History = "history",
    }
);

text_enum!(
    /// What one lead delivery carries.
    LeadDeliveryKind {
        /// One lead, sent as it is found.
        Instant = "instant",
        /// Several leads in one message.
        Digest = "digest",
    }
);

/// Where a task's leads are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeliveryTarget {
    /// The reading account's own Saved Messages (the default).
    SavedMessages,
    /// A chat of the workspace's inbox, sent by the account or bot that owns it.
    Chat {
        /// The chat.
        chat: ChatId,
    },
    /// A chat a workspace bot can write to (a private chat with it, or a group it is in).
    Bot {
        /// The bot.
        bot: BotId,
        /// The Telegram chat id (Bot API style).
        peer_id: i64,
    },
    /// The chat or bot it named was deleted; nothing is delivered until the task is edited.
    Removed,
}

/// When a task's leads are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum DeliveryMode {
    /// Each lead as it is found (up to the task's cap per minute; the rest as a digest).
    Instant,
    /// One message every `every_minutes` with the leads found since.
    Digest {
        /// The interval.
        every_minutes: u32,
    },
}

/// What an owner or admin sets on a task (create and update alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    /// Unique within the workspace, 1–100 characters.
    pub name: String,
    /// The query text (parsed by the matching engine; the store keeps it as text).
    pub query: String,
    /// The account that reads the sources; must belong to the workspace.
    pub account: AccountId,
    /// Where leads go.
    pub target: DeliveryTarget,
    /// When leads go.
    pub mode: DeliveryMode,
    /// Leads per minute an instant task sends one by one before falling back to a digest.
    pub instant_cap_per_minute: u32,
    /// Forwarded posts are not matched.
    pub ignore_forwards: bool,
    /// The monitor may join the sources (else they are polled).
    pub join_allowed: bool,
    /// Sources the monitor joined are left once no active task needs them.
    pub leave_unused: bool,
}

/// A monitoring task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    /// Identifier.
    pub id: TaskId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Name.
    pub name: String,
    /// Query text.
    pub query: String,
    /// The reading account.
    pub account_id: AccountId,
    /// Where leads go.
    pub target: DeliveryTarget,
    /// When leads go.
    pub mode: DeliveryMode,
    /// Instant cap per minute.
    pub instant_cap_per_minute: u32,
    /// Forwards are not matched.
    pub ignore_forwards: bool,
    /// Joining is allowed.
    pub join_allowed: bool,
    /// Joined sources are left when unused.
    pub leave_unused: bool,
    /// Monitoring runs (false when paused).
    pub active: bool,
    /// Who created it (`None` once that user is deleted).
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The stored columns of a delivery target: `(kind, chat, bot, peer)`.
pub type TargetColumns = (&'static str, Option<i64>, Option<i64>, Option<i64>);

impl DeliveryTarget {
    /// The stored columns.
    pub fn columns(self) -> TargetColumns {
        match self {
            DeliveryTarget::SavedMessages => ("saved_messages", None, None, None),
            DeliveryTarget::Chat { chat } => ("chat", Some(chat.0), None, None),
            DeliveryTarget::Bot { bot, peer_id } => ("bot", None, Some(bot.0), Some(peer_id)),
            DeliveryTarget::Removed => ("removed", None, None, None),
        }
    }

    /// Reads the stored columns; `None` for a kind this version does not know. A chat or bot
    /// target whose row was deleted (the column set to NULL) reads as [`DeliveryTarget::Removed`].
    pub fn from_columns(
        kind: &str,
        chat: Option<i64>,
        bot: Option<i64>,
        peer: Option<i64>,
    ) -> Option<Self> {
        Some(match (kind, chat, bot, peer) {
            ("saved_messages", ..) => DeliveryTarget::SavedMessages,
            ("chat", Some(chat), ..) => DeliveryTarget::Chat { chat: ChatId(chat) },
            ("bot", _, Some(bot), Some(peer_id)) => DeliveryTarget::Bot {
                bot: BotId(bot),
                peer_id,
            },
            ("chat" | "bot", ..) => DeliveryTarget::Removed,
            _ => return None,
        })
    }
}

impl DeliveryMode {
    /// The stored columns: `(mode, digest minutes)`.
    pub fn columns(self) -> (&'static str, Option<i32>) {
        match self {
            DeliveryMode::Instant => ("instant", None),
            DeliveryMode::Digest { every_minutes } => (
                "digest",
                Some(i32::try_from(every_minutes).unwrap_or(i32::MAX)),
            ),
        }
    }

    /// Reads the stored columns; `None` for anything else.
    pub fn from_columns(mode: &str, minutes: Option<i32>) -> Option<Self> {
        match (mode, minutes) {
            ("instant", None) => Some(DeliveryMode::Instant),
            ("digest", Some(m)) => u32::try_from(m)
                .ok()
                .map(|every_minutes| DeliveryMode::Digest { every_minutes }),
            _ => None,
        }
    }
}

/// Checks what can be checked without the database; each refusal is `Conflict` with a stable
/// code: `task_name_invalid` (empty after trimming, longer than [`MAX_TASK_NAME`], or with
/// control characters), `task_query_invalid` (empty or longer than [`MAX_QUERY`]),
/// `digest_interval_invalid` (outside 1–[`MAX_DIGEST_MINUTES`]), `rate_cap_invalid` (outside
/// 1–[`MAX_INSTANT_CAP`]) and `delivery_target_invalid` ([`DeliveryTarget::Removed`]). That the
/// account, chat or bot belongs to the workspace is checked by the store
/// (`account_not_found`, `delivery_target_not_found`).
pub fn check_task_spec(spec: &TaskSpec) -> StoreResult<()> {
    let name = spec.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_TASK_NAME
        || name.chars().any(char::is_control)
        || name.len() != spec.name.len()
    {
        return Err(StoreError::Conflict(ErrorCode::TaskNameInvalid));
    }
    if spec.query.trim().is_empty() || spec.query.chars().count() > MAX_QUERY {
        return Err(StoreError::Conflict(ErrorCode::TaskQueryInvalid));
    }
    if let DeliveryMode::Digest { every_minutes } = spec.mode
        && !(1..=MAX_DIGEST_MINUTES).contains(&every_minutes)
    {
        return Err(StoreError::Conflict(ErrorCode::DigestIntervalInvalid));
    }
    if !(1..=MAX_INSTANT_CAP).contains(&spec.instant_cap_per_minute) {
        return Err(StoreError::Conflict(ErrorCode::RateCapInvalid));
    }
    if spec.target == DeliveryTarget::Removed {
        return Err(StoreError::Conflict(ErrorCode::DeliveryTargetInvalid));
    }
    Ok(())
}

impl Viewer {
    /// The task rule: owners and admins create, change, pause and delete tasks and their
    /// sources; operators only read them (and the leads). `Conflict(ErrorCode::TaskForbidden)`.
    pub fn check_manage_tasks(&self) -> StoreResult<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(StoreError::Conflict(ErrorCode::TaskForbidden))
        }
    }
}

/// A source as the user named it: what they typed, and the normalised `(kind, key)` that makes
/// two spellings of one reference the same source of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// How it was named.
    pub kind: SourceKind,
    /// The normalised key (see [`SourceKind`]).
    pub key: String,
    /// As typed (or the dialog's title), for display.
    pub input: String,
}

impl SourceRef {
    /// Parses `@name`, `name`, `t.me/name` (also `/s/name`, with or without `https://` and a
    /// post number), `t.me/+hash`, `t.me/joinchat/hash` and `t.me/c/<id>` (with or without a post
    /// number). Anything else is `Conflict(ErrorCode::SourceInvalid)`.
    pub fn parse(input: &str) -> StoreResult<SourceRef> {
        let invalid = || StoreError::Conflict(ErrorCode::SourceInvalid);
        let typed = input.trim();
        let mut rest = typed;
        for scheme in ["https://", "http://"] {
            if let Some(r) = strip_prefix_ci(rest, scheme) {
                rest = r;
            }
        }
        if let Some(r) = strip_prefix_ci(rest, "www.") {
            rest = r;
        }
        let host_path = ["t.me/", "telegram.me/", "telegram.dog/"]
            .iter()
            .find_map(|h| strip_prefix_ci(rest, h));
        let (kind, key) = match host_path {
            Some(path) => {
                let mut parts = path.trim_end_matches('/').split('/');
                let first = parts.next().unwrap_or("");
                let second = parts.next();
                if let Some(hash) = first.strip_prefix('+') {
                    (SourceKind::Invite, invite_hash(hash).ok_or_else(invalid)?)
                } else if first == "joinchat" {
                    let hash = second.ok_or_else(invalid)?;
                    (SourceKind::Invite, invite_hash(hash).ok_or_else(invalid)?)
                } else if first == "c" {
                    let id: i64 = second.and_then(|s| s.parse().ok()).ok_or_else(invalid)?;
                    if id <= 0 {
                        return Err(invalid());
                    }
                    (SourceKind::ChannelId, id.to_string())
                } else if first == "s" {
                    (
                        SourceKind::Username,
                        username(second.unwrap_or("")).ok_or_else(invalid)?,
                    )
                } else {
                    (SourceKind::Username, username(first).ok_or_else(invalid)?)
                }
            }
            None if rest.contains('/') => return Err(invalid()),
            None => (
                SourceKind::Username,
                username(rest.strip_prefix('@').unwrap_or(rest)).ok_or_else(invalid)?,
            ),
        };
        Ok(SourceRef {
            kind,
            key,
            input: typed.to_string(),
        })
    }

    /// A chat picked from the reading account's dialogs, by its Bot-API style peer id.
    pub fn dialog(peer_id: i64, title: &str) -> SourceRef {
        SourceRef {
            kind: SourceKind::Dialog,
            key: peer_id.to_string(),
            input: title.to_string(),
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A Telegram username, lowercased: a letter, then letters, digits and underscores, 4–32 in all.
fn username(name: &str) -> Option<String> {
    let ok = (4..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| name.to_ascii_lowercase())
}

/// An invite hash: case-sensitive letters, digits, `-` and `_`.
fn invite_hash(hash: &str) -> Option<String> {
    let ok = (1..=64).contains(&hash.len())
        && hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| hash.to_string())
}

/// A monitored channel or chat of one reading account. The `access_hash` is not a secret, but
/// it is the monitor's business and never part of a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    /// Identifier.
    pub id: SourceId,
    /// The reading account.
    pub account_id: AccountId,
    /// How it was named.
    pub kind: SourceKind,
    /// The normalised reference.
    pub key: String,
    /// As typed.
    pub input: String,
    /// The chat's Bot-API style peer id (`-100…` for a channel or supergroup, `-id` for a basic
    /// group), once resolved; [`Post::peer_id`] has the same form.
    pub channel_id: Option<i64>,
    /// For the monitor's requests.
    #[serde(skip)]
    pub access_hash: Option<i64>,
    /// Title, once resolved.
    pub title: Option<String>,
    /// Where it is in its life.
    pub state: SourceState,
    /// Until when Telegram asked to wait (`flood_wait`).
    pub wait_until: Option<Timestamp>,
    /// Why it failed (`failed`), a reason code.
    pub failure: Option<String>,
    /// How it is read, once resolved.
    pub read_via: Option<ReadVia>,
    /// The monitor joined it (it is never left otherwise).
    pub joined_by_us: bool,
    /// The tasks that linked it last allow leaving it once unused.
    pub leave_allowed: bool,
    /// The newest Telegram message id seen (the high-water mark).
    pub last_message_id: i64,
    /// The channel's `pts` the reconciling sweep reached.
    pub pts: Option<i64>,
    /// When it was last read or reconciled.
    pub checked_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// What resolving a source found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSource {
    /// The chat's Bot-API style peer id (see [`Source::channel_id`]).
    pub channel_id: i64,
    /// Its access hash.
    pub access_hash: Option<i64>,
    /// Title.
    pub title: String,
    /// `Joined` or `Polled`.
    pub state: SourceState,
    /// How it will be read.
    pub read_via: ReadVia,
    /// The monitor joined it just now.
    pub joined_by_us: bool,
}

/// A state change of a source that is not a resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Resolve (and join) again.
    Resolving,
    /// Telegram asked to wait until then.
    FloodWait(Timestamp),
    /// Cannot be read; a reason code.
    Failed(String),
    /// The monitor left it.
    Left,
}

/// A source with the active tasks that watch it (what the monitor of an account reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedSource {
    /// The source.
    pub source: Source,
    /// Active tasks linking it, by id.
    pub tasks: Vec<TaskId>,
}

/// A channel or group post as the monitor sees it: from the account's update stream, from a
/// polled source's `messages.getHistory`, or from the reconciling sweep
/// (`updates.getChannelDifference`). The telegram crate maps MTProto messages to it; the
/// matching engine turns it into [`NewLead`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    /// The chat it is in, Bot-API style (`-100…` for channels and supergroups, `-id` for basic
    /// groups) — the same form as [`Source::channel_id`].
    pub peer_id: i64,
    /// Telegram's message id.
    pub tg_message_id: i64,
    /// `None` for the post as first seen; the `edit_date` (seconds) of an edit.
    pub edit_date: Option<i64>,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// Its text (or media caption).
    pub text: String,
    /// Who wrote it (the channel itself for a broadcast post without a signature).
    pub author: LeadAuthor,
    /// It is a forward.
    pub is_forward: bool,
    /// `(channel id, post id)` of the forwarded original, when Telegram says.
    pub forward_origin: Option<(i64, i64)>,
    /// The album it belongs to.
    pub grouped_id: Option<i64>,
}

/// Who wrote a post.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadAuthor {
    /// Telegram user (or channel) id.
    pub id: Option<i64>,
    /// Display name.
    pub name: Option<String>,
    /// Username without `@`.
    pub username: Option<String>,
}

/// A match the monitor found, to store with [`LeadStore::insert_leads`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLead {
    /// The task that matched.
    pub task: TaskId,
    /// Where the post is.
    pub source: SourceId,
    /// The post's Telegram message id.
    pub tg_message_id: i64,
    /// 0 for the post as first seen; an edit's `edit_date` (seconds) for a match of an edit.
    pub revision: i64,
    /// Link to the post, when it has one.
    pub link: Option<String>,
    /// Its author.
    pub author: LeadAuthor,
    /// The post's text (searched, exported).
    pub text: String,
    /// The part shown, around the matched terms.
    pub snippet: String,
    /// The terms that matched.
    pub terms: Vec<String>,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// `(channel id, post id)` of the original when it is a forward.
    pub forward_origin: Option<(i64, i64)>,
    /// The album it belongs to.
    pub grouped_id: Option<i64>,
    /// SimHash of the normalised text; `None` when the text is too short for one.
    pub simhash: Option<i64>,
    /// The MTProto `random_id` of its instant delivery, if one is queued.
    pub random_id: i64,
}

/// A stored lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lead {
    /// Identifier.
    pub id: LeadId,
    /// Workspace (of its task).
    pub workspace_id: WorkspaceId,
    /// Task.
    pub task_id: TaskId,
    /// Source.
    pub source_id: SourceId,
    /// The post's Telegram message id.
    pub tg_message_id: i64,
    /// 0, or the `edit_date` of the edit that matched.
    pub revision: i64,
    /// The source's Telegram channel id when the lead was found.
    pub channel_id: Option<i64>,
    /// Link to the post.
    pub link: Option<String>,
    /// Author.
    pub author: LeadAuthor,
    /// The post's text.
    pub text: String,
    /// The part shown.
    pub snippet: String,
    /// Matched terms (for an edit: only those the edit added).
    pub terms: Vec<String>,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// The forwarded original: `[channel id, post id]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<i64>>))]
    pub forward_origin: Option<(i64, i64)>,
    /// Album.
    pub grouped_id: Option<i64>,
    /// SimHash.
    #[serde(skip)]
    pub simhash: Option<i64>,
    /// Read in the Leads page.
    pub read: bool,
    /// The delivery it went (or goes) out with; `None` while waiting for a digest.
    pub delivery_id: Option<LeadDeliveryId>,
    /// Found.
    pub created_at: Timestamp,
}

/// Why a lead of a batch was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// The task has this message (same source, same revision).
    Message,
    /// The task has the same original post (a forward of it, or the post itself).
    Origin,
    /// The task has a post of this album from this source.
    Album,
    /// The task has a post with nearly the same text within 72 hours.
    NearDuplicate(LeadId),
    /// An edit that matched no term the message had not matched already.
    NoNewTerms,
}

/// What [`LeadStore::insert_leads`] did with one lead of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadOutcome {
    /// Stored (and queued for instant delivery when the task's cap allowed).
    New(Box<Lead>),
    /// Not stored.
    Duplicate(Duplicate),
}

impl LeadOutcome {
    /// The lead, if it was new.
    pub fn new_lead(&self) -> Option<&Lead> {
        match self {
            LeadOutcome::New(lead) => Some(lead),
            LeadOutcome::Duplicate(_) => None,
        }
    }
}

/// True if two SimHashes are the same text give or take a few words.
pub fn near_duplicate(a: i64, b: i64) -> bool {
    (a ^ b).count_ones() <= NEAR_DUPLICATE_BITS
}

/// The terms of `matched` that `seen` does not have, in `matched`'s order, without repeats.
pub fn new_terms(seen: &[String], matched: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for term in matched {
        if !seen.contains(term) && !out.contains(term) {
            out.push(term.clone());
        }
    }
    out
}

/// Most words of a search.
pub const MAX_SEARCH_TERMS: usize = 8;

/// The words of a lead search: runs of letters and digits, lowercased, `ё` as `е` (as the
/// search indexes store them), at most [`MAX_SEARCH_TERMS`] of at most 64 characters. Each
/// matches words that start with it; all must match.
pub fn search_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .map(|c| if c == 'ё' { 'е' } else { c })
                .take(64)
                .collect::<String>()
        })
        .take(MAX_SEARCH_TERMS)
        .collect()
}

/// Filters and paging of the lead list (newest first, by id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Only this task's.
    pub task: Option<TaskId>,
    /// Only from this source.
    pub source: Option<SourceId>,
    /// Posted at or after.
    pub posted_from: Option<Timestamp>,
    /// Posted before.
    pub posted_to: Option<Timestamp>,
    /// Only read (`Some(true)`) or unread (`Some(false)`).
    pub read: Option<bool>,
    /// Full-text search (see [`search_terms`]).
    pub search: Option<String>,
    /// Only leads older than this one (the cursor).
    pub before: Option<LeadId>,
    /// At most this many (the store caps it at [`MAX_LEAD_PAGE`]).
    pub limit: u32,
}

/// Largest page of leads (also the page of a CSV export).
pub const MAX_LEAD_PAGE: u32 = 1000;

/// One claimed lead delivery, with what the sender needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadDeliveryItem {
    /// Identifier.
    pub id: LeadDeliveryId,
    /// One lead or a digest.
    pub kind: LeadDeliveryKind,
    /// The task (its target and reading account).
    pub task: Task,
    /// The leads it carries, oldest first.
    pub leads: Vec<Lead>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// The `random_id` to send with.
    pub random_id: i64,
}

/// A lead delivery the sweep of [`LeadStore::recover_lead_deliveries`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredDelivery {
    /// The delivery.
    pub id: LeadDeliveryId,
    /// Its task.
    pub task: TaskId,
    /// `queued` again (an account sends it: the same `random_id` makes the resend safe) or
    /// `failed` with [`crate::SEND_UNCERTAIN`] (a bot sends it, or its target is gone).
    pub state: String,
}

/// Storage of lead monitoring. Reads and writes that a person makes take a [`Viewer`]: any
/// member reads the tasks, sources and leads of their workspace; owners and admins manage
/// tasks (`Conflict(ErrorCode::TaskForbidden)` for an operator). Another workspace's task or lead is
/// `NotFound`. The monitor's methods (no viewer) act by id.
#[async_trait::async_trait]
pub trait LeadStore: Send + Sync + 'static {
    // --- tasks (people) ---

    /// Creates a task (active). `task_name_taken`, `account_not_found`,
    /// `delivery_target_not_found` and the codes of [`check_task_spec`].
    async fn create_task(
        &self,
        viewer: &Viewer,
        spec: &TaskSpec,
        now: Timestamp,
    ) -> StoreResult<Task>;
    /// Replaces a task's settings. A new reading account takes the task's sources with it: the
    /// same references, as sources of the new account.
    async fn update_task(
        &self,
        viewer: &Viewer,
        task: TaskId,
        spec: &TaskSpec,
        now: Timestamp,
    ) -> StoreResult<Task>;
    /// Pauses (`false`) or resumes (`true`) a task.
    async fn set_task_active(
        &self,
        viewer: &Viewer,
        task: TaskId,
        active: bool,
        now: Timestamp,
    ) -> StoreResult<Task>;
    /// Deletes a task with its leads and deliveries (its sources stay, for other tasks and for
    /// leaving).
    async fn delete_task(&self, viewer: &Viewer, task: TaskId) -> StoreResult<()>;
    /// One task of the viewer's workspace.
    async fn get_task(&self, viewer: &Viewer, task: TaskId) -> StoreResult<Task>;
    /// The tasks of the viewer's workspace, by name.
    async fn list_tasks(&self, viewer: &Viewer) -> StoreResult<Vec<Task>>;
    /// Replaces the sources of a task (at most [`MAX_TASK_SOURCES`], else `too_many_sources`):
    /// each reference becomes (or stays) a source of the task's account, new ones `resolving`.
    /// Returns the task's sources, by id.
    async fn set_task_sources(
        &self,
        viewer: &Viewer,
        task: TaskId,
        sources: &[SourceRef],
        now: Timestamp,
    ) -> StoreResult<Vec<Source>>;
    /// The sources of a task of the viewer's workspace, by id.
    async fn task_sources(&self, viewer: &Viewer, task: TaskId) -> StoreResult<Vec<Source>>;

    // --- the monitor ---

    /// Every active task, all workspaces, by id (what the matching engine is built from).
    async fn active_tasks(&self) -> StoreResult<Vec<Task>>;
    /// The sources of an account that active tasks link, with those tasks, by id.
    async fn watched_sources(&self, account: AccountId) -> StoreResult<Vec<WatchedSource>>;
    /// Sources of an account that need resolving: `resolving`, or `flood_wait` until `now` or
    /// earlier, and linked by an active task; oldest first.
    async fn sources_needing_work(
        &self,
        account: AccountId,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Source>>;
    /// Sources of an account the monitor joined, that no active task links and whose tasks
    /// allowed leaving them: to leave, then mark [`SourceStatus::Left`].
    async fn unused_sources(&self, account: AccountId) -> StoreResult<Vec<Source>>;
    /// How many sources of an account are `joined` (against the account's channel cap).
    async fn joined_source_count(&self, account: AccountId) -> StoreResult<i64>;
    /// Records what resolving found. If another source of the account already is that channel
    /// (two spellings of one channel), the tasks of this one move to it and this one is
    /// deleted; the surviving source is returned.
    async fn set_source_resolved(
        &self,
        source: SourceId,
        resolved: &ResolvedSource,
        now: Timestamp,
    ) -> StoreResult<Source>;
    /// Sets a source's state.
    async fn set_source_status(
        &self,
        source: SourceId,
        status: &SourceStatus,
        now: Timestamp,
    ) -> StoreResult<Source>;
    /// Advances a source's high-water mark and `pts` (never backwards) and records the check.
    async fn advance_source(
        &self,
        source: SourceId,
        last_message_id: i64,
        pts: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<Source>;

    // --- leads ---

    /// Stores a batch in one transaction; the database drops duplicates (see [`Duplicate`]):
    /// the same message, the same original post, the same album, a near-duplicate text of the
    /// same task within [`NEAR_DUPLICATE_WINDOW`], and edits that add no term. Every match's
    /// terms are remembered, so an edit yields a lead only for terms it adds. A new lead of an
    /// instant task is queued for delivery while the task is under its cap. `NotFound` (nothing
    /// written) when a task or source is unknown or the source is not the task's account's.
    /// One outcome per lead, in order.
    async fn insert_leads(
        &self,
        batch: &[NewLead],
        now: Timestamp,
    ) -> StoreResult<Vec<LeadOutcome>>;
    /// Leads of the viewer's workspace, newest first.
    async fn list_leads(&self, viewer: &Viewer, filter: &LeadFilter) -> StoreResult<Vec<Lead>>;
    /// One lead of the viewer's workspace.
    async fn get_lead(&self, viewer: &Viewer, lead: LeadId) -> StoreResult<Lead>;
    /// Marks one lead read or unread.
    async fn set_lead_read(&self, viewer: &Viewer, lead: LeadId, read: bool) -> StoreResult<Lead>;
    /// Marks every lead of the workspace (of one task when given) read; returns how many
    /// changed.
    async fn mark_all_leads_read(&self, viewer: &Viewer, task: Option<TaskId>) -> StoreResult<u64>;

    // --- delivery ---

    /// Leads of a task not yet given to a delivery, oldest first (what a digest carries).
    async fn pending_leads(&self, task: TaskId, limit: u32) -> StoreResult<Vec<Lead>>;
    /// Tasks whose digest is due at `now`: with pending leads, and either digest tasks whose
    /// interval has passed since their last digest, or instant tasks whose leads over the cap
    /// waited [`OVERFLOW_DIGEST_EVERY`].
    async fn due_digests(&self, now: Timestamp) -> StoreResult<Vec<TaskId>>;
    /// Queues one digest message with those of `leads` that are still pending for the task;
    /// `None` (nothing written) when none is.
    async fn create_digest(
        &self,
        task: TaskId,
        leads: &[LeadId],
        random_id: i64,
        now: Timestamp,
    ) -> StoreResult<Option<LeadDeliveryId>>;
    /// Claims up to `limit` deliveries due at `now` (only the oldest unsent one of each task:
    /// leads go out in order), marking them `sending` and counting the attempt.
    async fn claim_lead_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<LeadDeliveryItem>>;
    /// Records a sent delivery and Telegram's message id.
    async fn complete_lead_delivery(
        &self,
        delivery: LeadDeliveryId,
        tg_message_id: i64,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Records a failed attempt: retried at `retry_at`, or `failed` with `error` when `None`.
    async fn fail_lead_delivery(
        &self,
        delivery: LeadDeliveryId,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Deliveries left `sending` since `stuck_since` or earlier (all of them after a restart):
    /// those an account sends go back to `queued` (same `random_id`: Telegram drops a repeat),
    /// the others end `failed` with [`crate::SEND_UNCERTAIN`]. By id.
    async fn recover_lead_deliveries(
        &self,
        stuck_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<RecoveredDelivery>>;
    /// The earliest time a queued delivery is due.
    async fn next_lead_delivery_due(&self) -> StoreResult<Option<Timestamp>>;
    /// Forgets the matched terms of posts seen before `before` (edits of older posts then count
    /// as new posts); returns how many were forgotten.
    async fn prune_matched_terms(&self, before: Timestamp) -> StoreResult<u64>;

    // --- retrying a failed source (people) ---

    /// Sends a `failed` source of a task back to `resolving` (the user's "retry": after freeing
    /// room under the channel cap, say). Owners and admins (`task_forbidden` for an operator);
    /// a task of another workspace, or a source that is not the task's, is `NotFound`. A source
    /// in any other state is returned as it is. Built on the viewer-scoped reads above, so every
    /// backend checks it the same way.
    async fn retry_source(
        &self,
        viewer: &Viewer,
        task: TaskId,
        source: SourceId,
        now: Timestamp,
    ) -> StoreResult<Source> {
        viewer.check_manage_tasks()?;
        let found = self
            .task_sources(viewer, task)
            .await?
            .into_iter()
            .find(|s| s.id == source)
            .ok_or(StoreError::NotFound)?;
        if found.state != SourceState::Failed {
            return Ok(found);
        }
        self.set_source_status(source, &SourceStatus::Resolving, now)
            .await
    }
}

/// Reads a stored enum column, naming it when the value is unknown.
pub fn parse_column<T: FromStr>(value: &str, column: &'static str) -> Result<T, &'static str> {
    value.parse::<T>().map_err(|_| column)
}

/// A task from its `lead_tasks` row (both store backends).
pub fn read_task(op: &'static str, row: &impl Columns) -> StoreResult<Task> {
    let target: String = row.get(op, "target")?;
    let mode: String = row.get(op, "mode")?;
    let cap: i32 = row.get(op, "instant_cap_per_minute")?;
    Ok(Task {
        id: TaskId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        name: row.get(op, "name")?,
        query: row.get(op, "query")?,
        account_id: AccountId(row.get(op, "account_id")?),
        target: DeliveryTarget::from_columns(
            &target,
            row.get(op, "target_chat_id")?,
            row.get(op, "target_bot_id")?,
            row.get(op, "target_peer_id")?,
        )
        .ok_or_else(|| corrupt(op, "lead_tasks.target"))?,
        mode: DeliveryMode::from_columns(&mode, row.get(op, "digest_minutes")?)
            .ok_or_else(|| corrupt(op, "lead_tasks.mode"))?,
        instant_cap_per_minute: u32::try_from(cap)
            .map_err(|_| corrupt(op, "lead_tasks.instant_cap_per_minute"))?,
        ignore_forwards: row.get(op, "ignore_forwards")?,
        join_allowed: row.get(op, "join_allowed")?,
        leave_unused: row.get(op, "leave_unused")?,
        active: row.get(op, "active")?,
        created_by: row.get::<Option<i64>>(op, "created_by")?.map(UserId),
        created_at: Timestamp(row.get(op, "created_at")?),
        updated_at: Timestamp(row.get(op, "updated_at")?),
    })
}

/// A source from its `lead_sources` row (both store backends).
pub fn read_source(op: &'static str, row: &impl Columns) -> StoreResult<Source> {
    let kind: String = row.get(op, "kind")?;
    let state: String = row.get(op, "state")?;
    let read_via: Option<String> = row.get(op, "read_via")?;
    Ok(Source {
        id: SourceId(row.get(op, "id")?),
        account_id: AccountId(row.get(op, "account_id")?),
        kind: parse_column::<SourceKind>(&kind, "lead_sources.kind").map_err(|c| corrupt(op, c))?,
        key: row.get(op, "ref_key")?,
        input: row.get(op, "input")?,
        channel_id: row.get(op, "channel_id")?,
        access_hash: row.get(op, "access_hash")?,
        title: row.get(op, "title")?,
        state: parse_column::<SourceState>(&state, "lead_sources.state")
            .map_err(|c| corrupt(op, c))?,
        wait_until: row.get::<Option<i64>>(op, "wait_until")?.map(Timestamp),
        failure: row.get(op, "failure")?,
        read_via: read_via
            .map(|v| parse_column::<ReadVia>(&v, "lead_sources.read_via"))
            .transpose()
            .map_err(|c| corrupt(op, c))?,
        joined_by_us: row.get(op, "joined_by_us")?,
        leave_allowed: row.get(op, "leave_allowed")?,
        last_message_id: row.get(op, "last_message_id")?,
        pts: row.get(op, "pts")?,
        checked_at: row.get::<Option<i64>>(op, "checked_at")?.map(Timestamp),
        created_at: Timestamp(row.get(op, "created_at")?),
        updated_at: Timestamp(row.get(op, "updated_at")?),
    })
}

/// A lead from its `leads` row (both store backends).
pub fn read_lead(op: &'static str, row: &impl Columns) -> StoreResult<Lead> {
    let terms: String = row.get(op, "terms")?;
    let fwd_channel: Option<i64> = row.get(op, "fwd_channel_id")?;
    let fwd_post: Option<i64> = row.get(op, "fwd_post_id")?;
    Ok(Lead {
        id: LeadId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        task_id: TaskId(row.get(op, "task_id")?),
        source_id: SourceId(row.get(op, "source_id")?),
        tg_message_id: row.get(op, "tg_message_id")?,
        revision: row.get(op, "revision")?,
        channel_id: row.get(op, "channel_id")?,
        link: row.get(op, "link")?,
        author: LeadAuthor {
            id: row.get(op, "author_id")?,
            name: row.get(op, "author_name")?,
            username: row.get(op, "author_username")?,
        },
        text: row.get(op, "text")?,
        snippet: row.get(op, "snippet")?,
        terms: serde_json::from_str(&terms).map_err(|_| corrupt(op, "leads.terms"))?,
        posted_at: Timestamp(row.get(op, "posted_at")?),
        forward_origin: fwd_channel.zip(fwd_post),
        grouped_id: row.get(op, "grouped_id")?,
        simhash: row.get(op, "simhash")?,
        read: row.get(op, "read")?,
        delivery_id: row
            .get::<Option<i64>>(op, "delivery_id")?
            .map(LeadDeliveryId),
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn spec() -> TaskSpec {
        TaskSpec {
            name: "Rust jobs".into(),
            query: "rust -senior".into(),
            account: AccountId(1),
            target: DeliveryTarget::SavedMessages,
            mode: DeliveryMode::Instant,
            instant_cap_per_minute: DEFAULT_INSTANT_CAP,
            ignore_forwards: false,
            join_allowed: true,
            leave_unused: false,
        }
    }

    fn code(r: StoreResult<()>) -> Option<&'static str> {
        match r {
            Err(StoreError::Conflict(c)) => Some(c.code()),
            _ => None,
        }
    }

    #[test]
    fn a_valid_spec_passes_and_each_bad_field_has_its_code() {
        assert!(check_task_spec(&spec()).is_ok());
        for (name, want) in [
            ("", "task_name_invalid"),
            ("  ", "task_name_invalid"),
            (" padded", "task_name_invalid"),
            ("tab\there", "task_name_invalid"),
        ] {
            let s = TaskSpec {
                name: name.into(),
                ..spec()
            };
            assert_eq!(code(check_task_spec(&s)), Some(want), "{name:?}");
        }
        let long = TaskSpec {
            name: "я".repeat(MAX_TASK_NAME + 1),
            ..spec()
        };
        assert_eq!(code(check_task_spec(&long)), Some("task_name_invalid"));
        let ok = TaskSpec {
            name: "я".repeat(MAX_TASK_NAME),
            ..spec()
        };
        assert!(check_task_spec(&ok).is_ok());
        let q = TaskSpec {
            query: " ".into(),
            ..spec()
        };
        assert_eq!(code(check_task_spec(&q)), Some("task_query_invalid"));
        for m in [0, MAX_DIGEST_MINUTES + 1] {
            let d = TaskSpec {
                mode: DeliveryMode::Digest { every_minutes: m },
                ..spec()
            };
            assert_eq!(code(check_task_spec(&d)), Some("digest_interval_invalid"));
        }
        for c in [0, MAX_INSTANT_CAP + 1] {
            let d = TaskSpec {
                instant_cap_per_minute: c,
                ..spec()
            };
            assert_eq!(code(check_task_spec(&d)), Some("rate_cap_invalid"));
        }
        let r = TaskSpec {
            target: DeliveryTarget::Removed,
            ..spec()
        };
        assert_eq!(code(check_task_spec(&r)), Some("delivery_target_invalid"));
    }

    #[test]
    fn only_owners_and_admins_manage_tasks() {
        for (role, ok) in [
            (Role::Owner, true),
            (Role::Admin, true),
            (Role::Operator, false),
        ] {
            let v = Viewer {
                workspace: WorkspaceId(1),
                user: UserId(1),
                role,
            };
            assert_eq!(v.check_manage_tasks().is_ok(), ok, "{role:?}");
        }
    }

    #[test]
    fn references_are_normalised() {
        let cases = [
            ("@Durov", SourceKind::Username, "durov"),
            ("durov", SourceKind::Username, "durov"),
            ("https://t.me/Durov", SourceKind::Username, "durov"),
            ("t.me/durov/123", SourceKind::Username, "durov"),
            (
                "HTTPS://WWW.T.ME/s/rust_jobs",
                SourceKind::Username,
                "rust_jobs",
            ),
            ("telegram.me/durov/", SourceKind::Username, "durov"),
            ("t.me/+AbC-d_9", SourceKind::Invite, "AbC-d_9"),
            ("https://t.me/joinchat/XyZ", SourceKind::Invite, "XyZ"),
            ("t.me/c/1234567890/55", SourceKind::ChannelId, "1234567890"),
            (" t.me/c/42 ", SourceKind::ChannelId, "42"),
        ];
        for (input, kind, key) in cases {
            let Ok(r) = SourceRef::parse(input) else {
                panic!("{input} was refused");
            };
            assert_eq!((r.kind, r.key.as_str()), (kind, key), "{input}");
            assert_eq!(r.input, input.trim());
        }
        for bad in [
            "",
            "@",
            "@ab",
            "1durov",
            "t.me/",
            "t.me/+",
            "t.me/joinchat",
            "t.me/c/abc",
            "t.me/c/-5",
            "example.com/durov",
            "du rov",
            "t.me/+a b",
            "дуров",
        ] {
            assert_eq!(
                SourceRef::parse(bad).err().map(|e| e.to_string()),
                Some("conflict: source_invalid".to_string()),
                "{bad:?}"
            );
        }
        let d = SourceRef::dialog(-1001234, "Jobs");
        assert_eq!((d.kind, d.key.as_str()), (SourceKind::Dialog, "-1001234"));
    }

    #[test]
    fn near_duplicates_differ_in_at_most_three_bits() {
        assert!(near_duplicate(0, 0));
        assert!(near_duplicate(0, 0b111));
        assert!(!near_duplicate(0, 0b1111));
        assert!(near_duplicate(i64::MIN, i64::MIN | 0b11));
        assert!(!near_duplicate(-1, 0));
    }

    #[test]
    fn an_edit_adds_only_unseen_terms() {
        let s = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            new_terms(&s(&["rust"]), &s(&["rust", "go", "go"])),
            s(&["go"])
        );
        assert!(new_terms(&s(&["rust", "go"]), &s(&["go"])).is_empty());
    }

    #[test]
    fn search_terms_are_words_lowercased_with_yo_as_ye() {
        assert_eq!(
            search_terms("Удалённо, RUST-dev   c++ \"x\""),
            vec!["удаленно", "rust", "dev", "c", "x"]
        );
        assert!(search_terms(" -- ").is_empty());
        assert_eq!(search_terms(&"a ".repeat(20)).len(), MAX_SEARCH_TERMS);
    }

    #[test]
    fn targets_and_modes_round_trip_through_their_columns() {
        for t in [
            DeliveryTarget::SavedMessages,
            DeliveryTarget::Chat { chat: ChatId(5) },
            DeliveryTarget::Bot {
                bot: BotId(2),
                peer_id: -100,
            },
        ] {
            let (k, c, b, p) = t.columns();
            assert_eq!(DeliveryTarget::from_columns(k, c, b, p), Some(t));
        }
        assert_eq!(
            DeliveryTarget::from_columns("chat", None, None, None),
            Some(DeliveryTarget::Removed)
        );
        assert_eq!(
            DeliveryTarget::from_columns("bot", None, None, Some(5)),
            Some(DeliveryTarget::Removed)
        );
        assert_eq!(DeliveryTarget::from_columns("x", None, None, None), None);
        for m in [
            DeliveryMode::Instant,
            DeliveryMode::Digest { every_minutes: 15 },
        ] {
            let (k, n) = m.columns();
            assert_eq!(DeliveryMode::from_columns(k, n), Some(m));
        }
        assert_eq!(DeliveryMode::from_columns("instant", Some(3)), None);
    }
}
