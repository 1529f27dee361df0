//! Autoposting's data: scheduled *posts* (who sends what where, and when), their *runs* (one
//! publication each, with its outcome and the link to the published post), the *follow-up
//! actions* of a published run (pin, unpin, delete, edit at a time), and the
//! [`ScheduleStore`] port. The rules both backends share live here as pure functions: the
//! checks of a post ([`check_post_spec`]), the role rule ([`Viewer::check_manage_posts`]), the
//! MTProto `random_id` of a run ([`run_random_id`]) and the follow-ups a publication schedules
//! ([`follow_ups_after`]). When a post runs is [`crate::recurrence`]'s business.
//! `docs/autoposting.md` describes the model.

use crate::content::{Entity, MediaKind};
use crate::error_code::ErrorCode;
use crate::ids::{AccountId, BotId, UserId, WorkspaceId};
use crate::inbox::Viewer;
use crate::instance::InstanceId;
use crate::recurrence::{Recurrence, Schedule, ScheduleInvalid};
use crate::store::{StoreError, StoreResult};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

id_type!(
    /// A scheduled post.
    PostId
);
id_type!(
    /// One publication of a post.
    PostRunId
);
id_type!(
    /// A follow-up action of a published run.
    PostActionId
);

/// Longest text of a post without media (Telegram's message limit), in UTF-16 code units.
pub const MAX_POST_TEXT: usize = 4096;
/// Longest caption of a post with media (Telegram's caption limit), in UTF-16 code units.
pub const MAX_POST_CAPTION: usize = 1024;
/// Most media of one post: an album holds at most 10.
pub const MAX_POST_MEDIA: usize = 10;
/// Most formatting entities of one post (Telegram's limit per message).
pub const MAX_POST_ENTITIES: usize = 100;
/// How late a run may still be published (e.g. after a restart) unless the post says otherwise.
pub const DEFAULT_GRACE_MINUTES: u32 = 15;
/// The longest grace period a post may set: one day.
pub const MAX_GRACE_MINUTES: u32 = 1440;
/// The longest pin or delete-after period: 31 days.
pub const MAX_FOLLOW_UP_HOURS: u32 = 744;
/// Furthest ahead a once post may be scheduled: 366 days (what Telegram's own scheduler allows).
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(366 * 86_400);

/// Who publishes a post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PostSender {
    /// A personal account of the workspace, through its one supervised client (MTProto).
    Account {
        /// The account.
        account: AccountId,
    },
    /// A bot of the workspace (Bot API).
    Bot {
        /// The bot.
        bot: BotId,
    },
}

impl PostSender {
    /// The stored columns: `(kind, account, bot)`.
    pub fn columns(self) -> (&'static str, Option<i64>, Option<i64>) {
        match self {
            PostSender::Account { account } => ("account", Some(account.0), None),
            PostSender::Bot { bot } => ("bot", None, Some(bot.0)),
        }
    }

    /// Reads the stored columns.
    pub fn from_columns(kind: &str, account: Option<i64>, bot: Option<i64>) -> Option<Self> {
        match (kind, account, bot) {
            ("account", Some(a), None) => Some(PostSender::Account {
                account: AccountId(a),
            }),
            ("bot", None, Some(b)) => Some(PostSender::Bot { bot: BotId(b) }),
            _ => None,
        }
    }
}

/// Where a post goes: a channel or group, as Telegram identified it when the post was saved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostTarget {
    /// Bot-API style chat id: `-100…` for channels and supergroups, `-id` for basic groups.
    pub peer_id: i64,
    /// The chat's title.
    pub title: String,
    /// Its public username, without `@`, when it has one (links to posts use it).
    pub username: Option<String>,
    /// The channel's access hash, for an account's requests (not a secret; not shown).
    #[serde(skip)]
    pub access_hash: Option<i64>,
}

impl PostTarget {
    /// The link to a message of this chat: `https://t.me/<username>/<id>` for a public chat,
    /// `https://t.me/c/<channel>/<id>` for a private channel or supergroup, `None` for a basic
    /// group (its messages have no links).
    pub fn message_link(&self, message_id: i64) -> Option<String> {
        if let Some(name) = &self.username {
            return Some(format!("https://t.me/{name}/{message_id}"));
        }
        let channel = -self.peer_id - 1_000_000_000_000;
        (channel > 0).then(|| format!("https://t.me/c/{channel}/{message_id}"))
    }
}

/// One file of a post (an uploaded file of the workspace, from `POST /api/v1/files`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostMedia {
    /// The upload's id (hex SHA-256).
    pub file_id: String,
    /// `photo`, `video`, `audio` or `document` (voice notes cannot be posted in an album and
    /// are not offered).
    pub kind: MediaKind,
    /// File name shown for a document.
    #[serde(default)]
    pub file_name: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// What a post says and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostContent {
    /// Text, or the caption of the media (of the first item of an album).
    pub text: String,
    /// Formatting entities (offsets in UTF-16 code units).
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Up to 10 files; two or more are sent as one album.
    #[serde(default)]
    pub media: Vec<PostMedia>,
    /// Show a preview of the first link (text posts only).
    #[serde(default = "yes")]
    pub link_preview: bool,
    /// Send without a notification sound.
    #[serde(default)]
    pub silent: bool,
}

fn yes() -> bool {
    true
}

/// What happens after a publication: the "1/24" formats ads are sold in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FollowUps {
    /// Pin the post when published and unpin it this many hours later.
    #[serde(default)]
    pub pin_hours: Option<u32>,
    /// Delete the post this many hours after it was published.
    #[serde(default)]
    pub delete_after_hours: Option<u32>,
}

/// What an owner or admin sets on a post (create and update alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostSpec {
    /// Who publishes it; must belong to the workspace.
    pub sender: PostSender,
    /// Where (checked by the service with Telegram before it is stored).
    pub target: PostTarget,
    /// What.
    pub content: PostContent,
    /// When, in `time_zone`.
    pub schedule: Schedule,
    /// An IANA time zone name.
    pub time_zone: String,
    /// How late a run may still be published, in minutes (0–1440).
    pub grace_minutes: u32,
    /// A draft has no runs until it is saved as not a draft (or published now).
    pub draft: bool,
    /// Pin and delete-after.
    pub follow_ups: FollowUps,
}

text_enum!(
    /// Where a post is in its life.
    PostState {
        /// Scheduled: its next run is waiting.
        Active = "active",
        /// Saved as a draft: no runs.
        Draft = "draft",
        /// A once post that was published (or missed, or failed): no more runs.
        Finished = "finished",
        /// Cancelled: its waiting runs were cancelled.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// What became of one run.
    RunStatus {
        /// Waiting for its time (or for a retry after a failed attempt).
        Scheduled = "scheduled",
        /// Claimed by the publisher (under a lease).
        Publishing = "publishing",
        /// Telegram accepted it: see the message ids and the link.
        Published = "published",
        /// Gave up (see the error).
        Failed = "failed",
        /// Its time passed by more than the grace period before it could be published (the
        /// server was down).
        Missed = "missed",
        /// A bot's request reached Telegram but its answer was lost: it may or may not have
        /// been posted, and it is not sent again.
        SendUncertain = "send_uncertain",
        /// The post was cancelled, changed or published by hand before this run's time.
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// Why a run exists.
    RunTrigger {
        /// An occurrence of the post's schedule.
        Schedule = "schedule",
        /// "Publish now".
        Manual = "manual",
    }
);

text_enum!(
    /// What a follow-up action does to a published run's messages.
    ActionKind {
        /// Pin the first message (silently).
        Pin = "pin",
        /// Unpin it.
        Unpin = "unpin",
        /// Delete every message of the run (a whole album at once).
        Delete = "delete",
        /// Replace the text (or caption) with the action's content.
        Edit = "edit",
    }
);

text_enum!(
    /// Where a follow-up action is.
    ActionStatus {
        /// Waiting for its time.
        Pending = "pending",
        /// Claimed by the publisher (under a lease).
        Running = "running",
        /// Done.
        Done = "done",
        /// Gave up (see the error).
        Failed = "failed",
        /// Dropped (the run's messages were deleted first).
        Cancelled = "cancelled",
    }
);

/// A scheduled post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduledPost {
    /// Identifier.
    pub id: PostId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Who publishes it.
    pub sender: PostSender,
    /// Where.
    pub target: PostTarget,
    /// What.
    pub content: PostContent,
    /// When.
    pub schedule: Schedule,
    /// The IANA time zone the schedule is read in.
    pub time_zone: String,
    /// Minutes a run may be late and still be published.
    pub grace_minutes: u32,
    /// Pin and delete-after.
    pub follow_ups: FollowUps,
    /// Where it is in its life.
    pub state: PostState,
    /// Counts changes (1 when created); a run records the version it published.
    pub version: i64,
    /// When its next run is due (none for drafts, cancelled and finished posts).
    pub next_run_at: Option<Timestamp>,
    /// Seed of its runs' MTProto `random_id`s ([`run_random_id`]).
    #[serde(skip)]
    pub random_seed: i64,
    /// Who created it (`None` once that user is deleted).
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One publication of a post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostRun {
    /// Identifier.
    pub id: PostRunId,
    /// The post.
    pub post_id: PostId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// When it was due.
    pub due_at: Timestamp,
    /// Why it exists.
    pub trigger: RunTrigger,
    /// What became of it.
    pub status: RunStatus,
    /// Attempts made (claims).
    pub attempts: u32,
    /// When the next attempt may start (a retry after a failure waits here).
    pub attempt_at: Timestamp,
    /// The post's version it published (or will publish: the one current when claimed).
    pub post_version: Option<i64>,
    /// When Telegram accepted it.
    pub published_at: Option<Timestamp>,
    /// Telegram's message ids (one, or one per album item), once published.
    pub message_ids: Vec<i64>,
    /// The link to the published post, when the chat has links.
    pub link: Option<String>,
    /// Why it failed, was missed or is uncertain: a stable code.
    pub error: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A follow-up action of a published run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostAction {
    /// Identifier.
    pub id: PostActionId,
    /// The run whose messages it acts on.
    pub run_id: PostRunId,
    /// The post.
    pub post_id: PostId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// What it does.
    pub kind: ActionKind,
    /// When it is due.
    pub due_at: Timestamp,
    /// Where it is.
    pub status: ActionStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The new text and entities of an `edit`.
    pub edit: Option<PostEdit>,
    /// Why it failed: a stable code.
    pub error: Option<String>,
    /// When it was done.
    pub done_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
}

/// The new text of a published post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostEdit {
    /// Text or caption.
    pub text: String,
    /// Formatting entities.
    #[serde(default)]
    pub entities: Vec<Entity>,
}

/// A run the publisher claimed: the run, the post as it is now (what to publish), and the
/// fencing token every later write about this claim must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedRun {
    /// The run (status `publishing`, `attempts` counting this claim).
    pub run: PostRun,
    /// The post, as current when claimed.
    pub post: ScheduledPost,
    /// The claim's fencing token: [`ScheduleStore::complete_run`] and
    /// [`ScheduleStore::fail_run`] refuse any other (`run_lease_lost`).
    pub token: i64,
    /// An earlier claim's lease expired while it was `publishing` (the server died or hung
    /// mid-send): that attempt may have reached Telegram. An account resends with the same
    /// `random_id` (Telegram drops a repeat); a bot must not resend (`send_uncertain`).
    pub reclaimed: bool,
}

impl ClaimedRun {
    /// The MTProto `random_id` of the run's `index`-th message (0 for a single message; 0–9
    /// for an album's items).
    pub fn random_id(&self, index: usize) -> i64 {
        run_random_id(self.post.random_seed, self.run.id)
            .wrapping_add(i64::try_from(index).unwrap_or(0))
    }
}

/// A follow-up action the publisher claimed, with what it needs to act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedAction {
    /// The action (status `running`).
    pub action: PostAction,
    /// The published run (its message ids).
    pub run: PostRun,
    /// The post (its sender and target).
    pub post: ScheduledPost,
    /// The claim's fencing token (see [`ClaimedRun::token`]).
    pub token: i64,
}

/// How many leases [`ScheduleStore::release_leases`] ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleasedLeases {
    /// Runs left `publishing`.
    pub runs: u64,
    /// Follow-up actions left `running`.
    pub actions: u64,
}

/// Every error code a run's history may show: the publisher's own, those of the account and
/// bot transports, and the Telegram refusals a post meets. Each has a catalogue text
/// [`run_error_key`] in English and Russian; a Telegram refusal not listed here (its name is
/// recorded as Telegram gave it) shows `run_error_other`, which names the code.
pub const RUN_ERROR_CODES: &[&str] = &[
    "send_uncertain",
    "send_timeout",
    "account_offline",
    "file_missing",
    "peer_unknown",
    "FLOOD_WAIT",
    "retry_after",
    "missed",
    "post_changed",
    "store_error",
    "telegram_unreachable",
    "telegram_client_crashed",
    "telegram_unexpected_answer",
    "telegram_proxy_unreachable",
    "telegram_proxy_auth_failed",
    "telegram_proxy_failed",
    "session_unauthorized",
    "account_banned",
    "bot_deleted",
    "bot_unauthorized",
    "bot_blocked",
    "bot_forbidden",
    "chat_not_found",
    "bot_api_conflict",
    "bot_api_unavailable",
    "bot_api_rejected",
    "bot_api_unreachable",
    "bot_api_unexpected",
    "CHAT_WRITE_FORBIDDEN",
    "CHAT_ADMIN_REQUIRED",
    "CHANNEL_PRIVATE",
    "CHANNEL_INVALID",
    "PEER_ID_INVALID",
    "USER_BANNED_IN_CHANNEL",
    "CHAT_SEND_MEDIA_FORBIDDEN",
    "MESSAGE_TOO_LONG",
    "MEDIA_CAPTION_TOO_LONG",
    "MEDIA_INVALID",
    "MEDIA_EMPTY",
    "MESSAGE_EMPTY",
];

/// The catalogue key of the text a run's history shows for its error `code`:
/// `run_error_<code in lower case>`, or `run_error_other` for a code not in
/// [`RUN_ERROR_CODES`].
pub fn run_error_key(code: &str) -> String {
    if RUN_ERROR_CODES.contains(&code) {
        format!("run_error_{}", code.to_ascii_lowercase())
    } else {
        "run_error_other".to_string()
    }
}

/// What Telegram answered for a published run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The message ids, in album order.
    pub message_ids: Vec<i64>,
    /// When Telegram dated it.
    pub at: Timestamp,
}

/// How a failed attempt ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// Try again at this time (back to `scheduled`; the grace period no longer applies).
    RetryAt(Timestamp),
    /// Give up: `failed`.
    Failed,
    /// A bot send whose answer was lost: `send_uncertain`, never resent.
    Uncertain,
}

/// What the Schedule page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostFilter {
    /// Only posts in this state.
    pub state: Option<PostState>,
}

/// Which runs the history lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only the runs of this post.
    pub post: Option<PostId>,
    /// Only runs with one of these statuses (all when empty).
    pub statuses: Vec<RunStatus>,
    /// Only runs with an id below this (paging, newest first).
    pub before: Option<PostRunId>,
    /// At most this many (1–500).
    pub limit: u32,
}

/// Checks what can be checked without the database; each refusal is `Conflict` with a stable
/// code: `post_empty` (no text and no media), `post_text_too_long` (over 4,096 UTF-16 units
/// of text, or 1,024 of caption), `too_many_media` (over 10), `album_invalid` (voice notes, or
/// audio or documents mixed with other kinds in one album), `validation_failed` (entities out of
/// the text or over 100; a file id that is not hex SHA-256), `grace_invalid`,
/// `follow_up_invalid` (0 or over 744 hours, or delete before unpin), and
/// `schedule_invalid` / `schedule_in_past` from [`check_schedule`]. That the sender, the media
/// and the target belong to the workspace is checked by the store and the service.
pub fn check_post_spec(spec: &PostSpec, now: Timestamp) -> StoreResult<Recurrence> {
    let c = &spec.content;
    let conflict = |code| Err(StoreError::Conflict(code));
    if c.text.trim().is_empty() && c.media.is_empty() {
        return conflict(ErrorCode::PostEmpty);
    }
    let units = c.text.encode_utf16().count();
    let limit = if c.media.is_empty() {
        MAX_POST_TEXT
    } else {
        MAX_POST_CAPTION
    };
    if units > limit {
        return conflict(ErrorCode::PostTextTooLong);
    }
    if c.media.len() > MAX_POST_MEDIA {
        return conflict(ErrorCode::TooManyMedia);
    }
    if !album_fits(&c.media) {
        return conflict(ErrorCode::AlbumInvalid);
    }
    if c.media.iter().any(|m| !is_file_id(&m.file_id)) || !entities_fit(&c.entities, units) {
        return conflict(ErrorCode::ValidationFailed);
    }
    if spec.grace_minutes > MAX_GRACE_MINUTES {
        return conflict(ErrorCode::GraceInvalid);
    }
    let hours_ok = |h: Option<u32>| h.is_none_or(|h| (1..=MAX_FOLLOW_UP_HOURS).contains(&h));
    let f = spec.follow_ups;
    if !hours_ok(f.pin_hours) || !hours_ok(f.delete_after_hours) {
        return conflict(ErrorCode::FollowUpInvalid);
    }
    if let (Some(pin), Some(delete)) = (f.pin_hours, f.delete_after_hours)
        && pin > delete
    {
        return conflict(ErrorCode::FollowUpInvalid);
    }
    check_schedule(&spec.schedule, &spec.time_zone, spec.draft, now)
        .map_err(|e| StoreError::Conflict(e.code()))
}

/// Why a schedule was refused: a code for the store, the details for the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleRefusal {
    /// `schedule_invalid`, with where and why.
    Invalid(ScheduleInvalid),
    /// `schedule_in_past`: a once post whose time has passed (or is over 366 days ahead).
    InPast,
}

impl ScheduleRefusal {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ScheduleRefusal::Invalid(_) => ErrorCode::ScheduleInvalid,
            ScheduleRefusal::InPast => ErrorCode::ScheduleInPast,
        }
    }
}

/// Compiles a post's schedule; a once post must lie ahead of `now` (drafts excepted) and within
/// [`MAX_SCHEDULE_AHEAD`].
pub fn check_schedule(
    schedule: &Schedule,
    time_zone: &str,
    draft: bool,
    now: Timestamp,
) -> Result<Recurrence, ScheduleRefusal> {
    let r = Recurrence::new(schedule, time_zone, now).map_err(ScheduleRefusal::Invalid)?;
    if let Some(at) = r.once_at()
        && !draft
        && (at <= now || at > now.plus(MAX_SCHEDULE_AHEAD))
    {
        return Err(ScheduleRefusal::InPast);
    }
    Ok(r)
}

/// Telegram's album rules: photos and videos mix; audio files only with audio; documents only
/// with documents; no voice notes, stickers or other kinds.
fn album_fits(media: &[PostMedia]) -> bool {
    let allowed = |k: MediaKind| {
        matches!(
            k,
            MediaKind::Photo | MediaKind::Video | MediaKind::Audio | MediaKind::Document
        )
    };
    if !media.iter().all(|m| allowed(m.kind)) {
        return false;
    }
    if media.len() < 2 {
        return true;
    }
    let visual = |k| matches!(k, MediaKind::Photo | MediaKind::Video);
    let first = media[0].kind;
    media.iter().all(|m| {
        if visual(first) {
            visual(m.kind)
        } else {
            m.kind == first
        }
    })
}

fn is_file_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn entities_fit(entities: &[Entity], units: usize) -> bool {
    entities.len() <= MAX_POST_ENTITIES
        && entities.iter().all(|e| {
            e.offset >= 0
                && e.length > 0
                && usize::try_from(i64::from(e.offset) + i64::from(e.length))
                    .is_ok_and(|end| end <= units)
        })
}

impl Viewer {
    /// The autoposting rule: owners and admins create, change, publish, cancel and delete
    /// posts; operators only read them and their runs. `Conflict(ErrorCode::PostForbidden)`.
    pub fn check_manage_posts(&self) -> StoreResult<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(StoreError::Conflict(ErrorCode::PostForbidden))
        }
    }
}

/// The MTProto `random_id` of a run's first message: the post's random seed mixed with the
/// run id, the same on every attempt (so Telegram drops a repeat of an attempt that got
/// through) and different for every run.
pub fn run_random_id(seed: i64, run: PostRunId) -> i64 {
    // A multiplicative mix (the golden-ratio constant) so that consecutive runs differ widely;
    // album items add 0–9 to it.
    seed ^ (run.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64
}

/// The follow-up actions a publication at `at` schedules: pin at once and unpin after
/// `pin_hours`; delete after `delete_after_hours`. `(kind, due)` in due order.
pub fn follow_ups_after(f: FollowUps, at: Timestamp) -> Vec<(ActionKind, Timestamp)> {
    let hours = |h: u32| Duration::from_secs(u64::from(h) * 3600);
    let mut out = Vec::new();
    if let Some(h) = f.pin_hours {
        out.push((ActionKind::Pin, at));
        out.push((ActionKind::Unpin, at.plus(hours(h))));
    }
    if let Some(h) = f.delete_after_hours {
        out.push((ActionKind::Delete, at.plus(hours(h))));
    }
    out.sort_by_key(|a| a.1);
    out
}

/// The grace period of a post as a duration.
pub fn grace(minutes: u32) -> Duration {
    Duration::from_secs(u64::from(minutes) * 60)
}

/// Storage of autoposting. Reads and writes that a person makes take a [`Viewer`]: every member
/// reads the posts and runs of their workspace; owners and admins write
/// (`Conflict(ErrorCode::PostForbidden)` for an operator). Another workspace's post or run is
/// `NotFound`. The publisher's methods (no viewer) act by id and fence every write with the
/// claim's token.
///
/// A post that is `active` always has exactly one waiting run of its schedule (status
/// `scheduled`, trigger `schedule`): created with the post, replaced when the post changes, and
/// followed by the next occurrence as soon as it is claimed or missed (computed inside the same
/// transaction with [`Recurrence::next_after`]). A once post becomes `finished` when its run
/// ends (published, failed, missed, uncertain).
#[async_trait::async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    // --- posts (people) ---

    /// Creates a post (with its first run unless it is a draft). `random_seed` seeds its runs'
    /// `random_id`s. Refusals: the codes of [`check_post_spec`], `sender_not_found` (an account
    /// or bot not of the workspace), `file_not_found` (a media id not uploaded in the
    /// workspace), `post_forbidden`.
    async fn create_post(
        &self,
        viewer: &Viewer,
        spec: &PostSpec,
        random_seed: i64,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost>;
    /// Replaces a post's settings (any time before it is published: its waiting run is
    /// replaced by one at the new time). `post_publishing` while a run is being published;
    /// `post_finished` for a finished once post; a cancelled post becomes active (or a draft)
    /// again.
    async fn update_post(
        &self,
        viewer: &Viewer,
        post: PostId,
        spec: &PostSpec,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost>;
    /// Cancels a post: its waiting runs end `cancelled`; follow-ups of published runs stay.
    async fn cancel_post(
        &self,
        viewer: &Viewer,
        post: PostId,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost>;
    /// Deletes a post with its runs and actions (`post_publishing` while a run is being
    /// published). Published messages stay in Telegram.
    async fn delete_post(&self, viewer: &Viewer, post: PostId) -> StoreResult<()>;
    /// Adds a run due now ("publish now"). A once post's waiting run is cancelled (it is
    /// published now instead); a recurring post keeps its schedule. `post_publishing` while
    /// a run is being published; `post_finished` for a finished or cancelled post.
    async fn publish_now(
        &self,
        viewer: &Viewer,
        post: PostId,
        now: Timestamp,
    ) -> StoreResult<PostRun>;
    /// One post of the viewer's workspace.
    async fn get_post(&self, viewer: &Viewer, post: PostId) -> StoreResult<ScheduledPost>;
    /// Posts of the viewer's workspace, by next run (then newest first).
    async fn list_posts(
        &self,
        viewer: &Viewer,
        filter: &PostFilter,
    ) -> StoreResult<Vec<ScheduledPost>>;
    /// Runs of the viewer's workspace, newest first.
    async fn list_runs(&self, viewer: &Viewer, filter: &RunFilter) -> StoreResult<Vec<PostRun>>;
    /// One run of the viewer's workspace.
    async fn get_run(&self, viewer: &Viewer, run: PostRunId) -> StoreResult<PostRun>;
    /// Schedules an action on a published run's messages (`edit` with its new text, or
    /// `delete`, `pin`, `unpin`) due at `due_at`. `run_not_published` unless the run is
    /// `published`.
    async fn add_action(
        &self,
        viewer: &Viewer,
        run: PostRunId,
        kind: ActionKind,
        edit: Option<&PostEdit>,
        due_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<PostAction>;
    /// The actions of one run, by due time.
    async fn list_actions(&self, viewer: &Viewer, run: PostRunId) -> StoreResult<Vec<PostAction>>;

    // --- the publisher ---

    /// Claims up to `limit` runs due at `now` for the instance `owner`, oldest first:
    /// `scheduled` runs whose `attempt_at` has come (a first attempt only while within its
    /// post's grace period), and `publishing` runs whose lease expired or was released
    /// (`reclaimed`). Each becomes `publishing` until `now + lease`, held by `owner`, its
    /// attempts counted; the next occurrence of a recurring post is created when its scheduled
    /// run is first claimed. Two claimers never claim one run.
    async fn claim_due_runs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        owner: &InstanceId,
    ) -> StoreResult<Vec<ClaimedRun>>;
    /// Ends at `now` the leases `owner` still holds on runs (`publishing`) and actions
    /// (`running`): they are from its previous life (a process of that id died holding them),
    /// so they are claimed again at once — still as `reclaimed` runs, never as fresh ones.
    /// Leases of other instances are untouched. Called once when an instance starts, before
    /// it claims anything.
    async fn release_leases(
        &self,
        owner: &InstanceId,
        now: Timestamp,
    ) -> StoreResult<ReleasedLeases>;
    /// Records a publication: the run `published` with its message ids and link, its post's
    /// follow-ups scheduled ([`follow_ups_after`]), a once post `finished`. `run_lease_lost`
    /// when the token is not the run's current claim.
    async fn complete_run(
        &self,
        run: PostRunId,
        token: i64,
        published: &Published,
        now: Timestamp,
    ) -> StoreResult<PostRun>;
    /// Records a failed attempt with a stable error code. `run_lease_lost` as above.
    async fn fail_run(
        &self,
        run: PostRunId,
        token: i64,
        error: &str,
        failure: RunFailure,
        now: Timestamp,
    ) -> StoreResult<PostRun>;
    /// Marks `missed` every waiting run whose first attempt did not start within its post's
    /// grace period (the server was down), scheduling each recurring post's next occurrence
    /// after `now - grace`; returns them.
    async fn sweep_missed(&self, now: Timestamp) -> StoreResult<Vec<PostRun>>;
    /// The earliest time a run or an action may be claimed (for the publisher's sleep).
    async fn next_schedule_wakeup(&self) -> StoreResult<Option<Timestamp>>;
    /// Claims up to `limit` follow-up actions due at `now` for `owner` (and `running` ones
    /// whose lease expired or was released), like [`ScheduleStore::claim_due_runs`].
    async fn claim_due_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        owner: &InstanceId,
    ) -> StoreResult<Vec<ClaimedAction>>;
    /// Records an action done; a `delete` cancels the run's other pending actions.
    /// `run_lease_lost` when the token is not the action's current claim.
    async fn complete_action(
        &self,
        action: PostActionId,
        token: i64,
        now: Timestamp,
    ) -> StoreResult<PostAction>;
    /// Records a failed action: retried at `retry_at`, or `failed` with `error` when `None`.
    async fn fail_action(
        &self,
        action: PostActionId,
        token: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<PostAction>;
}

/// Reads a stored text enum, naming the column when the value is unknown.
fn parse<T: FromStr>(value: &str, op: &'static str, column: &'static str) -> StoreResult<T> {
    value
        .parse::<T>()
        .map_err(|_| crate::rows::corrupt(op, column))
}

/// A post from its `scheduled_posts` row and the `next_run_at` the query joined (both backends).
pub fn read_post(op: &'static str, row: &impl crate::rows::Columns) -> StoreResult<ScheduledPost> {
    use crate::rows::corrupt;
    let sender: String = row.get(op, "sender")?;
    let state: String = row.get(op, "state")?;
    let content = PostContent {
        text: row.get(op, "text")?,
        entities: Entity::list_from_stored(&row.get::<String>(op, "entities")?),
        media: serde_json::from_str(&row.get::<String>(op, "media")?)
            .map_err(|_| corrupt(op, "scheduled_posts.media"))?,
        link_preview: row.get(op, "link_preview")?,
        silent: row.get(op, "silent")?,
    };
    let hours = |v: Option<i32>| v.and_then(|h| u32::try_from(h).ok());
    Ok(ScheduledPost {
        id: PostId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        sender: PostSender::from_columns(
            &sender,
            row.get(op, "account_id")?,
            row.get(op, "bot_id")?,
        )
        .ok_or_else(|| corrupt(op, "scheduled_posts.sender"))?,
        target: PostTarget {
            peer_id: row.get(op, "target_peer_id")?,
            title: row.get(op, "target_title")?,
            username: row.get(op, "target_username")?,
            access_hash: row.get(op, "target_access_hash")?,
        },
        content,
        schedule: serde_json::from_str(&row.get::<String>(op, "schedule")?)
            .map_err(|_| corrupt(op, "scheduled_posts.schedule"))?,
        time_zone: row.get(op, "time_zone")?,
        grace_minutes: u32::try_from(row.get::<i32>(op, "grace_minutes")?)
            .map_err(|_| corrupt(op, "scheduled_posts.grace_minutes"))?,
        follow_ups: FollowUps {
            pin_hours: hours(row.get(op, "pin_hours")?),
            delete_after_hours: hours(row.get(op, "delete_after_hours")?),
        },
        state: parse(&state, op, "scheduled_posts.state")?,
        version: row.get(op, "version")?,
        next_run_at: row.get::<Option<i64>>(op, "next_run_at")?.map(Timestamp),
        random_seed: row.get(op, "random_seed")?,
        created_by: row.get::<Option<i64>>(op, "created_by")?.map(UserId),
        created_at: Timestamp(row.get(op, "created_at")?),
        updated_at: Timestamp(row.get(op, "updated_at")?),
    })
}

/// A run from its `post_runs` row (both backends).
pub fn read_run(op: &'static str, row: &impl crate::rows::Columns) -> StoreResult<PostRun> {
    use crate::rows::corrupt;
    let trigger: String = row.get(op, "trigger_kind")?;
    let status: String = row.get(op, "status")?;
    let ids: String = row.get(op, "message_ids")?;
    Ok(PostRun {
        id: PostRunId(row.get(op, "id")?),
        post_id: PostId(row.get(op, "post_id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        due_at: Timestamp(row.get(op, "due_at")?),
        trigger: parse(&trigger, op, "post_runs.trigger_kind")?,
        status: parse(&status, op, "post_runs.status")?,
        attempts: u32::try_from(row.get::<i32>(op, "attempts")?)
            .map_err(|_| corrupt(op, "post_runs.attempts"))?,
        attempt_at: Timestamp(row.get(op, "attempt_at")?),
        post_version: row.get(op, "post_version")?,
        published_at: row.get::<Option<i64>>(op, "published_at")?.map(Timestamp),
        message_ids: serde_json::from_str(&ids)
            .map_err(|_| corrupt(op, "post_runs.message_ids"))?,
        link: row.get(op, "link")?,
        error: row.get(op, "error")?,
        created_at: Timestamp(row.get(op, "created_at")?),
        updated_at: Timestamp(row.get(op, "updated_at")?),
    })
}

/// An action from its `post_actions` row (both backends).
pub fn read_action(op: &'static str, row: &impl crate::rows::Columns) -> StoreResult<PostAction> {
    use crate::rows::corrupt;
    let kind: String = row.get(op, "kind")?;
    let status: String = row.get(op, "status")?;
    let edit: Option<String> = row.get(op, "edit")?;
    Ok(PostAction {
        id: PostActionId(row.get(op, "id")?),
        run_id: PostRunId(row.get(op, "run_id")?),
        post_id: PostId(row.get(op, "post_id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        kind: parse(&kind, op, "post_actions.kind")?,
        due_at: Timestamp(row.get(op, "due_at")?),
        status: parse(&status, op, "post_actions.status")?,
        attempts: u32::try_from(row.get::<i32>(op, "attempts")?)
            .map_err(|_| corrupt(op, "post_actions.attempts"))?,
        edit: edit
            .map(|e| serde_json::from_str(&e))
            .transpose()
            .map_err(|_| corrupt(op, "post_actions.edit"))?,
        error: row.get(op, "error")?,
        done_at: row.get::<Option<i64>>(op, "done_at")?.map(Timestamp),
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::content::EntityKind;

    fn spec() -> PostSpec {
        PostSpec {
            sender: PostSender::Account {
                account: AccountId(1),
            },
            target: PostTarget {
                peer_id: -1_000_000_000_042,
                title: "News".into(),
                username: None,
                access_hash: Some(7),
            },
            content: PostContent {
                text: "Hello".into(),
                ..Default::default()
            },
            schedule: Schedule::Daily {
                time: "09:00".into(),
            },
            time_zone: "Europe/Moscow".into(),
            grace_minutes: DEFAULT_GRACE_MINUTES,
            draft: false,
            follow_ups: FollowUps::default(),
        }
    }

    fn code(s: &PostSpec) -> Option<&'static str> {
        match check_post_spec(s, Timestamp(1_800_000_000_000)) {
            Err(StoreError::Conflict(c)) => Some(c.code()),
            _ => None,
        }
    }

    fn media(kind: MediaKind) -> PostMedia {
        PostMedia {
            file_id: "a".repeat(64),
            kind,
            file_name: None,
            mime_type: None,
        }
    }

    #[test]
    fn text_and_caption_limits_count_utf16_units() {
        let mut s = spec();
        assert_eq!(code(&s), None);
        s.content.text = "я".repeat(MAX_POST_TEXT);
        assert_eq!(code(&s), None);
        s.content.text = "😀".repeat(MAX_POST_TEXT / 2 + 1);
        assert_eq!(code(&s), Some("post_text_too_long"));
        s.content.text = "x".repeat(MAX_POST_CAPTION + 1);
        s.content.media = vec![media(MediaKind::Photo)];
        assert_eq!(code(&s), Some("post_text_too_long"));
        s.content.text = "x".repeat(MAX_POST_CAPTION);
        assert_eq!(code(&s), None);
        s.content.text = " ".into();
        s.content.media.clear();
        assert_eq!(code(&s), Some("post_empty"));
    }

    #[test]
    fn albums_hold_ten_items_of_kinds_telegram_groups() {
        let mut s = spec();
        s.content.media = vec![media(MediaKind::Photo); MAX_POST_MEDIA];
        s.content.media[3] = media(MediaKind::Video);
        assert_eq!(code(&s), None);
        s.content.media.push(media(MediaKind::Photo));
        assert_eq!(code(&s), Some("too_many_media"));
        s.content.media = vec![media(MediaKind::Photo), media(MediaKind::Document)];
        assert_eq!(code(&s), Some("album_invalid"));
        s.content.media = vec![media(MediaKind::Document), media(MediaKind::Document)];
        assert_eq!(code(&s), None);
        s.content.media = vec![media(MediaKind::Voice)];
        assert_eq!(code(&s), Some("album_invalid"));
        s.content.media = vec![PostMedia {
            file_id: "../etc/passwd".into(),
            ..media(MediaKind::Photo)
        }];
        assert_eq!(code(&s), Some("validation_failed"));
    }

    #[test]
    fn entities_grace_and_follow_ups_are_bounded() {
        let mut s = spec();
        s.content.entities = vec![Entity::new(EntityKind::Bold, 0, 5)];
        assert_eq!(code(&s), None);
        s.content.entities = vec![Entity::new(EntityKind::Bold, 1, 5)];
        assert_eq!(code(&s), Some("validation_failed"));
        let mut s = spec();
        s.grace_minutes = MAX_GRACE_MINUTES + 1;
        assert_eq!(code(&s), Some("grace_invalid"));
        let mut s = spec();
        s.follow_ups.pin_hours = Some(0);
        assert_eq!(code(&s), Some("follow_up_invalid"));
        s.follow_ups = FollowUps {
            pin_hours: Some(24),
            delete_after_hours: Some(1),
        };
        assert_eq!(code(&s), Some("follow_up_invalid"));
        s.follow_ups = FollowUps {
            pin_hours: Some(1),
            delete_after_hours: Some(24),
        };
        assert_eq!(code(&s), None);
    }

    #[test]
    fn once_posts_must_lie_ahead_unless_drafted() {
        let now = Timestamp(1_800_000_000_000); // 2027-01-15 08:00 UTC
        let mut s = spec();
        s.schedule = Schedule::Once {
            at: "2027-01-15T10:00".into(),
        };
        assert_eq!(
            code(&s),
            Some("schedule_in_past"),
            "10:00 Moscow is 07:00 UTC"
        );
        s.draft = true;
        assert_eq!(code(&s), None);
        s.draft = false;
        s.schedule = Schedule::Once {
            at: "2027-01-15T12:00".into(),
        };
        assert!(check_post_spec(&s, now).is_ok());
        s.schedule = Schedule::Once {
            at: "2028-02-15T12:00".into(),
        };
        assert_eq!(code(&s), Some("schedule_in_past"));
        s.schedule = Schedule::Cron {
            expression: "0 25 * * *".into(),
        };
        assert_eq!(code(&s), Some("schedule_invalid"));
    }

    #[test]
    fn follow_ups_and_random_ids() {
        let at = Timestamp(1_000);
        let f = FollowUps {
            pin_hours: Some(1),
            delete_after_hours: Some(24),
        };
        assert_eq!(
            follow_ups_after(f, at),
            vec![
                (ActionKind::Pin, at),
                (ActionKind::Unpin, Timestamp(1_000 + 3_600_000)),
                (ActionKind::Delete, Timestamp(1_000 + 86_400_000)),
            ]
        );
        assert!(follow_ups_after(FollowUps::default(), at).is_empty());
        let a = run_random_id(42, PostRunId(1));
        assert_eq!(a, run_random_id(42, PostRunId(1)));
        assert_ne!(a, run_random_id(42, PostRunId(2)));
        assert_ne!(a, run_random_id(43, PostRunId(1)));
    }

    #[test]
    fn links_of_public_and_private_chats() {
        let mut t = spec().target;
        assert_eq!(t.message_link(5).as_deref(), Some("https://t.me/c/42/5"));
        t.username = Some("news".into());
        assert_eq!(t.message_link(5).as_deref(), Some("https://t.me/news/5"));
        let group = PostTarget {
            peer_id: -555,
            title: "g".into(),
            username: None,
            access_hash: None,
        };
        assert_eq!(group.message_link(5), None);
    }

    #[test]
    fn only_owners_and_admins_manage_posts() {
        use crate::model::Role;
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
            assert_eq!(v.check_manage_posts().is_ok(), ok);
        }
    }
}
