//! Autoposting (`/api/v1/posts/*`): scheduled posts (create, replace, delete, publish now,
//! cancel), their runs (history and upcoming), the chats a sender can post to, and the
//! follow-ups of a published run (edit, delete). Every member reads; owners and admins write
//! (`post_forbidden` for an operator, from the store). Another workspace's post or run is
//! `404`, like one that does not exist. `docs/autoposting.md` describes the model.

use crate::AppState;
use crate::api::inbox::viewer;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, QueryAt, json};
use crate::session::{Member, client_ip};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_domain::{
    AccountId, BotId, Entity, FollowUps, PostAction, PostContent, PostEdit, PostFilter, PostId,
    PostMedia, PostRun, PostRunId, PostSender, PostState, PostTarget, RunFilter, RunStatus,
    Schedule, ScheduledPost, Timestamp,
};
use switchboard_services::monitor::MonitorError;
use switchboard_services::schedule::{PostDraft, ScheduleError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_posts, create_post))
        .routes(routes!(get_post, update_post, delete_post))
        .routes(routes!(publish_post))
        .routes(routes!(cancel_post))
        .routes(routes!(post_runs))
        .routes(routes!(list_runs))
        .routes(routes!(upcoming))
        .routes(routes!(targets))
        .routes(routes!(run_actions))
        .routes(routes!(edit_run))
        .routes(routes!(delete_run))
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Schedule(i) => ApiError::schedule_invalid(QueryAt {
                position: i.position,
                expected: i.reason,
                message: i.to_string(),
            }),
            ScheduleError::Telegram(m) => monitor_error(m),
            ScheduleError::Store(e) => e.into(),
        }
    }
}

/// How a failure to ask Telegram answers (shared with lead monitoring's answers).
pub(crate) fn monitor_error(e: MonitorError) -> ApiError {
    match e {
        MonitorError::AccountOffline => switchboard_domain::ErrorCode::AccountOffline.into(),
        MonitorError::FloodWait { seconds } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "flood_wait")
                .retry_after(u64::from(seconds))
        }
        MonitorError::Telegram(name) => {
            tracing::warn!(error = %name, "Telegram refused a request");
            ApiError::new(StatusCode::BAD_GATEWAY, "telegram_error")
        }
        MonitorError::Store(e) => e.into(),
    }
}

/// A post as the editor sends it (create and replace alike).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostRequest {
    /// Who publishes it: `{"kind":"account","account":1}` or `{"kind":"bot","bot":2}`.
    pub sender: PostSender,
    /// The channel or group, Bot-API style id (`-100…`), one the sender can post to
    /// (`GET /api/v1/posts/targets`).
    pub target_peer_id: i64,
    /// Text, or the media's caption (at most 4,096 characters, 1,024 with media).
    #[serde(default)]
    pub text: String,
    /// Formatting entities (offsets in UTF-16 code units).
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Up to 10 uploaded files (`POST /api/v1/files`); two or more go as one album.
    #[serde(default)]
    pub media: Vec<PostMedia>,
    /// Show a link preview (default true).
    pub link_preview: Option<bool>,
    /// Without a notification sound (default false).
    pub silent: Option<bool>,
    /// When: once, cron, daily, weekdays or weekly (docs/autoposting.md).
    pub schedule: Schedule,
    /// The IANA time zone the schedule is read in, e.g. `Europe/Moscow`.
    pub time_zone: String,
    /// Minutes a run may be late and still be published (0–1440, default 15).
    pub grace_minutes: Option<u32>,
    /// Save as a draft (no runs).
    #[serde(default)]
    pub draft: bool,
    /// Pin when published and unpin after this many hours (1–744).
    pub pin_hours: Option<u32>,
    /// Delete this many hours after publication (1–744).
    pub delete_after_hours: Option<u32>,
}

impl PostRequest {
    fn draft(self) -> PostDraft {
        PostDraft {
            sender: self.sender,
            target_peer_id: self.target_peer_id,
            content: PostContent {
                text: self.text,
                entities: self.entities,
                media: self.media,
                link_preview: self.link_preview.unwrap_or(true),
                silent: self.silent.unwrap_or(false),
            },
            schedule: self.schedule,
            time_zone: self.time_zone,
            grace_minutes: self.grace_minutes,
            draft: self.draft,
            follow_ups: FollowUps {
                pin_hours: self.pin_hours,
                delete_after_hours: self.delete_after_hours,
            },
        }
    }
}

/// One post.
#[derive(Serialize, ToSchema)]
pub struct PostResponse {
    /// The post.
    pub post: ScheduledPost,
}

/// The workspace's posts.
#[derive(Serialize, ToSchema)]
pub struct PostList {
    /// By next run, then newest first.
    pub posts: Vec<ScheduledPost>,
}

/// One run.
#[derive(Serialize, ToSchema)]
pub struct RunResponse {
    /// The run.
    pub run: PostRun,
}

/// Runs, newest first.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    /// The runs.
    pub runs: Vec<PostRun>,
}

/// One upcoming run.
#[derive(Serialize, ToSchema)]
pub struct UpcomingItem {
    /// The post.
    pub post_id: PostId,
    /// When (milliseconds since the epoch).
    pub at: Timestamp,
}

/// The upcoming runs and their posts.
#[derive(Serialize, ToSchema)]
pub struct UpcomingResponse {
    /// In time order.
    pub runs: Vec<UpcomingItem>,
    /// The posts they belong to.
    pub posts: Vec<ScheduledPost>,
}

/// The chats a sender can post to.
#[derive(Serialize, ToSchema)]
pub struct TargetsResponse {
    /// The chats; `null` for a bot (a bot cannot list its chats: give the chat's id, it is
    /// checked when the post is saved).
    pub targets: Option<Vec<PostTarget>>,
}

/// A run's follow-up actions.
#[derive(Serialize, ToSchema)]
pub struct ActionList {
    /// By due time.
    pub actions: Vec<PostAction>,
}

/// One follow-up action.
#[derive(Serialize, ToSchema)]
pub struct ActionResponse {
    /// The action.
    pub action: PostAction,
}

/// Which posts to list.
#[derive(Deserialize, IntoParams)]
pub struct PostsQuery {
    /// Only posts in this state (`active`, `draft`, `finished`, `cancelled`).
    pub state: Option<PostState>,
}

/// Which runs to list.
#[derive(Deserialize, IntoParams)]
pub struct RunsQuery {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs with an id below this (the next page).
    pub before: Option<i64>,
    /// At most this many (1–500, default 100).
    pub limit: Option<u32>,
}

/// How far ahead to look.
#[derive(Deserialize, IntoParams)]
pub struct UpcomingQuery {
    /// Days from now (1–60, default 14).
    pub days: Option<u32>,
}

/// Whose chats to list.
#[derive(Deserialize, IntoParams)]
pub struct TargetsQuery {
    /// `account` or `bot`.
    #[param(inline)]
    pub sender_kind: SenderKind,
    /// The account's or bot's id.
    pub sender_id: i64,
}

/// A sender's kind.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// A personal account.
    Account,
    /// A bot.
    Bot,
}

/// The new text of a published post.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// Text or caption.
    pub text: String,
    /// Formatting entities.
    #[serde(default)]
    pub entities: Vec<Entity>,
}

fn run_filter(q: &RunsQuery, post: Option<PostId>) -> RunFilter {
    RunFilter {
        post,
        statuses: q.status.into_iter().collect(),
        before: q.before.map(PostRunId),
        limit: q.limit.unwrap_or(100),
    }
}

const WRITE_ERRORS: &str = "post_empty, post_text_too_long, too_many_media, album_invalid, grace_invalid, follow_up_invalid, schedule_invalid (with `position` and `expected`), schedule_in_past, sender_not_found, target_not_allowed, file_not_found, validation_failed";

/// The workspace's posts, by next run.
#[utoipa::path(get, path = "/api/v1/posts", tag = "posts", params(PostsQuery), responses(
    (status = 200, description = "Posts", body = PostList)))]
async fn list_posts(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<PostsQuery>,
) -> Result<Response, ApiError> {
    let posts = state
        .scheduler()
        .posts(&viewer(&ctx), &PostFilter { state: q.state })
        .await?;
    Ok(json(PostList { posts }))
}

/// Creates a post (owners and admins); its target is checked with Telegram.
#[utoipa::path(post, path = "/api/v1/posts", tag = "posts", request_body = PostRequest, responses(
    (status = 201, description = "The post", body = PostResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 409, description = "account_offline (the sending account is not connected)", body = ErrorBody),
    (status = 422, description = WRITE_ERRORS, body = ErrorBody),
    (status = 429, description = "flood_wait (Telegram asked to wait)", body = ErrorBody),
    (status = 502, description = "telegram_error, bot_api_failed", body = ErrorBody)))]
async fn create_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiJson(req): ApiJson<PostRequest>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let post = state
        .scheduler()
        .create(&viewer(&ctx), req.draft(), ip.as_deref())
        .await?;
    Ok((StatusCode::CREATED, json(PostResponse { post })).into_response())
}

/// One post.
#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = i64, Path)), responses(
    (status = 200, description = "The post", body = PostResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_post(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let post = state.scheduler().post(&viewer(&ctx), PostId(id)).await?;
    Ok(json(PostResponse { post }))
}

/// Replaces a post's settings: its time and content can change any time before it is
/// published (its waiting run moves to the new time).
#[utoipa::path(put, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = i64, Path)), request_body = PostRequest, responses(
    (status = 200, description = "The post", body = PostResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "post_publishing (try again in a moment), post_finished, account_offline", body = ErrorBody),
    (status = 422, description = WRITE_ERRORS, body = ErrorBody),
    (status = 429, description = "flood_wait", body = ErrorBody),
    (status = 502, description = "telegram_error, bot_api_failed", body = ErrorBody)))]
async fn update_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<PostRequest>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let post = state
        .scheduler()
        .update(&viewer(&ctx), PostId(id), req.draft(), ip.as_deref())
        .await?;
    Ok(json(PostResponse { post }))
}

/// Deletes a post with its history (published messages stay in Telegram).
#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "post_publishing", body = ErrorBody)))]
async fn delete_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    state
        .scheduler()
        .delete(&viewer(&ctx), PostId(id), ip.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Publishes a post now (a run due now; a once post's waiting run is replaced).
#[utoipa::path(post, path = "/api/v1/posts/{id}/publish", tag = "posts", params(("id" = i64, Path)), responses(
    (status = 201, description = "The run", body = RunResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "post_publishing, post_finished", body = ErrorBody)))]
async fn publish_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let run = state
        .scheduler()
        .publish_now(&viewer(&ctx), PostId(id), ip.as_deref())
        .await?;
    Ok((StatusCode::CREATED, json(RunResponse { run })).into_response())
}

/// Cancels a post: its waiting runs end `cancelled`.
#[utoipa::path(post, path = "/api/v1/posts/{id}/cancel", tag = "posts", params(("id" = i64, Path)), responses(
    (status = 200, description = "The post", body = PostResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn cancel_post(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let post = state
        .scheduler()
        .cancel(&viewer(&ctx), PostId(id), ip.as_deref())
        .await?;
    Ok(json(PostResponse { post }))
}

/// A post's runs, newest first.
#[utoipa::path(get, path = "/api/v1/posts/{id}/runs", tag = "posts", params(("id" = i64, Path), RunsQuery), responses(
    (status = 200, description = "Runs", body = RunList),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn post_runs(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    let runs = state
        .scheduler()
        .runs(&viewer(&ctx), &run_filter(&q, Some(PostId(id))))
        .await?;
    Ok(json(RunList { runs }))
}

/// The workspace's runs (the history), newest first.
#[utoipa::path(get, path = "/api/v1/posts/runs", tag = "posts", params(RunsQuery), responses(
    (status = 200, description = "Runs", body = RunList)))]
async fn list_runs(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    let runs = state
        .scheduler()
        .runs(&viewer(&ctx), &run_filter(&q, None))
        .await?;
    Ok(json(RunList { runs }))
}

/// Upcoming runs of every active post, computed from their schedules (at most 500).
#[utoipa::path(get, path = "/api/v1/posts/upcoming", tag = "posts", params(UpcomingQuery), responses(
    (status = 200, description = "Upcoming runs", body = UpcomingResponse)))]
async fn upcoming(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<UpcomingQuery>,
) -> Result<Response, ApiError> {
    let (runs, posts) = state
        .scheduler()
        .upcoming(&viewer(&ctx), q.days.unwrap_or(14))
        .await?;
    let runs = runs
        .into_iter()
        .map(|r| UpcomingItem {
            post_id: r.post,
            at: r.at,
        })
        .collect();
    Ok(json(UpcomingResponse { runs, posts }))
}

/// The channels and groups a sender can post to, asked from Telegram (owners and admins).
#[utoipa::path(get, path = "/api/v1/posts/targets", tag = "posts", params(TargetsQuery), responses(
    (status = 200, description = "The chats", body = TargetsResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 409, description = "account_offline", body = ErrorBody),
    (status = 422, description = "sender_not_found", body = ErrorBody),
    (status = 429, description = "flood_wait", body = ErrorBody),
    (status = 502, description = "telegram_error", body = ErrorBody)))]
async fn targets(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<TargetsQuery>,
) -> Result<Response, ApiError> {
    let v = viewer(&ctx);
    let (sender, owned) = match q.sender_kind {
        SenderKind::Account => {
            let account = AccountId(q.sender_id);
            let owned = state
                .account_store()
                .get_account(v.workspace, account)
                .await
                .is_ok();
            (PostSender::Account { account }, owned)
        }
        SenderKind::Bot => {
            let bot = BotId(q.sender_id);
            let owned = state
                .inbox()
                .store()
                .get_bot(v.workspace, bot)
                .await
                .is_ok();
            (PostSender::Bot { bot }, owned)
        }
    };
    let targets = state.scheduler().targets(&v, sender, owned).await?;
    Ok(json(TargetsResponse { targets }))
}

/// A run's follow-up actions (pin, unpin, delete, edit), by due time.
#[utoipa::path(get, path = "/api/v1/posts/runs/{run_id}/actions", tag = "posts", params(("run_id" = i64, Path)), responses(
    (status = 200, description = "Actions", body = ActionList),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn run_actions(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(run_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let actions = state
        .scheduler()
        .actions(&viewer(&ctx), PostRunId(run_id))
        .await?;
    Ok(json(ActionList { actions }))
}

/// Replaces a published run's text now (an `edit` action).
#[utoipa::path(post, path = "/api/v1/posts/runs/{run_id}/edit", tag = "posts", params(("run_id" = i64, Path)), request_body = EditRequest, responses(
    (status = 201, description = "The action", body = ActionResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "run_not_published", body = ErrorBody),
    (status = 422, description = "post_empty, post_text_too_long, validation_failed", body = ErrorBody)))]
async fn edit_run(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(run_id): ApiPath<i64>,
    ApiJson(req): ApiJson<EditRequest>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let edit = PostEdit {
        text: req.text,
        entities: req.entities,
    };
    let action = state
        .scheduler()
        .edit_published(&viewer(&ctx), PostRunId(run_id), edit, ip.as_deref())
        .await?;
    Ok((StatusCode::CREATED, json(ActionResponse { action })).into_response())
}

/// Deletes a published run's messages now (a `delete` action; a whole album at once).
#[utoipa::path(post, path = "/api/v1/posts/runs/{run_id}/delete", tag = "posts", params(("run_id" = i64, Path)), responses(
    (status = 201, description = "The action", body = ActionResponse),
    (status = 403, description = "post_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "run_not_published", body = ErrorBody)))]
async fn delete_run(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(run_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let action = state
        .scheduler()
        .delete_published(&viewer(&ctx), PostRunId(run_id), ip.as_deref())
        .await?;
    Ok((StatusCode::CREATED, json(ActionResponse { action })).into_response())
}
