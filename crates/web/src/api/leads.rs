//! Lead monitoring (`/api/v1/tasks/*`, `/api/v1/leads/*`): monitoring tasks with their sources
//! and the "try it" box, and the leads they found — filtered, searched, paged, marked read,
//! exported as CSV, and "write to the author", which opens the inbox chat with a lead's author.
//! Every member reads; owners and admins manage tasks (`task_forbidden` for an operator, from
//! the store). Another workspace's task or lead is `404`, like one that does not exist.

use crate::AppState;
use crate::api::inbox::viewer;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, QueryAt, json};
use crate::session::{Member, client_ip};
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use switchboard_domain::{
    AccountId, Chat, ChatId, DEFAULT_INSTANT_CAP, DeliveryMode, DeliveryTarget, ErrorCode, Lead,
    LeadFilter, LeadId, MAX_LEAD_PAGE, Source, SourceId, Task, TaskId, TaskSpec, Timestamp, Viewer,
};
use switchboard_services::leads::{
    CSV_HEADER, Leads, LeadsError, SourceInput, TryMatch, csv_lead, csv_line,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(task_action))
        .routes(routes!(get_sources, set_sources))
        .routes(routes!(try_task))
        .routes(routes!(list_leads))
        .routes(routes!(export_leads))
        .routes(routes!(set_lead_read))
        .routes(routes!(mark_all_read))
        .routes(routes!(write_to_author))
        .routes(routes!(retry_source))
        .routes(routes!(account_dialogs))
}

impl From<LeadsError> for ApiError {
    fn from(e: LeadsError) -> Self {
        match e {
            LeadsError::Query(q) => ApiError::query_invalid(QueryAt {
                position: q.position,
                expected: q.expected,
                message: q.message,
            }),
            LeadsError::AuthorUnknown => ErrorCode::LeadAuthorUnknown.into(),
            LeadsError::Monitor(m) => crate::api::posts::monitor_error(m),
            LeadsError::Store(e) => e.into(),
        }
    }
}

// --- tasks ---

/// A source to watch: a reference, or a group or channel of the reading account's chats.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `@name`, `t.me/name`, `t.me/c/<id>`, `t.me/+hash` or `t.me/joinchat/hash`.
    pub reference: Option<String>,
    /// A group or channel picked from the reading account's chats (`GET
    /// /api/v1/accounts/{id}/chats`): its negative peer id.
    pub dialog_peer_id: Option<i64>,
    /// The picked chat's title, shown.
    pub title: Option<String>,
}

fn source_inputs(list: &[SourceRequest]) -> Result<Vec<SourceInput>, ApiError> {
    list.iter()
        .map(|s| match (&s.reference, s.dialog_peer_id) {
            (Some(r), None) => Ok(SourceInput::Reference(r.clone())),
            (None, Some(peer_id)) => Ok(SourceInput::Dialog {
                peer_id,
                title: s.title.clone().unwrap_or_else(|| peer_id.to_string()),
            }),
            _ => Err(ApiError::from(ErrorCode::ValidationFailed)),
        })
        .collect()
}

/// A task's settings (create and replace alike).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Unique in the workspace, 1–100 characters.
    pub name: String,
    /// The query (see docs/leads.md; `query_invalid` with `position` and `expected` when it
    /// does not parse).
    pub query: String,
    /// The account that reads the sources.
    pub account_id: i64,
    /// Where leads go; default the reading account's Saved Messages.
    pub target: Option<DeliveryTarget>,
    /// When leads go; default instantly.
    pub mode: Option<DeliveryMode>,
    /// Leads per minute an instant task sends one by one (1–600, default 10).
    pub instant_cap_per_minute: Option<u32>,
    /// Forwarded posts are not matched (default false).
    pub ignore_forwards: Option<bool>,
    /// The monitor may join the sources (default true).
    pub join_allowed: Option<bool>,
    /// Sources the monitor joined are left once no active task needs them (default false).
    pub leave_unused: Option<bool>,
    /// Monitoring runs (default true); false saves the task paused.
    pub active: Option<bool>,
    /// The sources; when absent on a replace, they stay as they are.
    pub sources: Option<Vec<SourceRequest>>,
}

impl TaskRequest {
    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: self.name.clone(),
            query: self.query.clone(),
            account: AccountId(self.account_id),
            target: self.target.unwrap_or(DeliveryTarget::SavedMessages),
            mode: self.mode.unwrap_or(DeliveryMode::Instant),
            instant_cap_per_minute: self.instant_cap_per_minute.unwrap_or(DEFAULT_INSTANT_CAP),
            ignore_forwards: self.ignore_forwards.unwrap_or(false),
            join_allowed: self.join_allowed.unwrap_or(true),
            leave_unused: self.leave_unused.unwrap_or(false),
        }
    }
}

/// The tasks of the workspace.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    /// By name.
    pub tasks: Vec<Task>,
}

/// One task with its sources.
#[derive(Serialize, ToSchema)]
pub struct TaskResponse {
    /// The task.
    pub task: Task,
    /// Its sources, by id, each with its state.
    pub sources: Vec<Source>,
}

/// A task's sources.
#[derive(Serialize, ToSchema)]
pub struct SourcesResponse {
    /// By id, each with its state.
    pub sources: Vec<Source>,
}

/// New sources of a task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcesRequest {
    /// They replace the task's sources (at most 500).
    pub sources: Vec<SourceRequest>,
}

/// The tasks of the workspace, by name.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "leads", responses(
    (status = 200, description = "Tasks", body = TaskList)))]
async fn list_tasks(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let tasks = state.leads().tasks(&viewer(&ctx)).await?;
    Ok(json(TaskList { tasks }))
}

/// Creates a task (owners and admins).
#[utoipa::path(post, path = "/api/v1/tasks", tag = "leads", request_body = TaskRequest, responses(
    (status = 201, description = "The task with its sources", body = TaskResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 409, description = "task_name_taken", body = ErrorBody),
    (status = 422, description = "query_invalid (with `position` and `expected`), task_name_invalid, task_query_invalid, digest_interval_invalid, rate_cap_invalid, delivery_target_invalid, delivery_target_not_found, account_not_found, source_invalid, too_many_sources, validation_failed", body = ErrorBody)))]
async fn create_task(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiJson(req): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    let v = viewer(&ctx);
    let ip = client_ip(&ext);
    let sources = req.sources.as_deref().map(source_inputs).transpose()?;
    let leads = state.leads();
    let (mut task, sources) = leads
        .create_task(&v, ip.as_deref(), &req.spec(), sources.as_deref())
        .await?;
    if req.active == Some(false) {
        task = leads.set_active(&v, ip.as_deref(), task.id, false).await?;
    }
    Ok((StatusCode::CREATED, json(TaskResponse { task, sources })).into_response())
}

/// One task with its sources.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "leads", params(("id" = i64, Path)), responses(
    (status = 200, description = "The task", body = TaskResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_task(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let (task, sources) = state.leads().task(&viewer(&ctx), TaskId(id)).await?;
    Ok(json(TaskResponse { task, sources }))
}

/// Replaces a task's settings (and its sources, when given).
#[utoipa::path(put, path = "/api/v1/tasks/{id}", tag = "leads", params(("id" = i64, Path)), request_body = TaskRequest, responses(
    (status = 200, description = "The task with its sources", body = TaskResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "task_name_taken", body = ErrorBody),
    (status = 422, description = "query_invalid (with `position` and `expected`), task_name_invalid, task_query_invalid, digest_interval_invalid, rate_cap_invalid, delivery_target_invalid, delivery_target_not_found, account_not_found, source_invalid, too_many_sources, validation_failed", body = ErrorBody)))]
async fn update_task(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    let v = viewer(&ctx);
    let ip = client_ip(&ext);
    let sources = req.sources.as_deref().map(source_inputs).transpose()?;
    let leads = state.leads();
    let (mut task, sources) = leads
        .update_task(
            &v,
            ip.as_deref(),
            TaskId(id),
            &req.spec(),
            sources.as_deref(),
        )
        .await?;
    if let Some(active) = req.active
        && active != task.active
    {
        task = leads.set_active(&v, ip.as_deref(), task.id, active).await?;
    }
    Ok(json(TaskResponse { task, sources }))
}

/// Deletes a task with its leads.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "leads", params(("id" = i64, Path)), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn delete_task(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    state
        .leads()
        .delete_task(&viewer(&ctx), ip.as_deref(), TaskId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pauses (`pause`: its sources are no longer matched) or resumes (`resume`) a task.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/{action}", tag = "leads",
    params(("id" = i64, Path), ("action" = String, Path, description = "pause or resume")), responses(
    (status = 200, description = "The task (active false after pause, true after resume)", body = TaskResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found (also an action other than pause and resume)", body = ErrorBody)))]
async fn task_action(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> Result<Response, ApiError> {
    let active = match action.as_str() {
        "pause" => false,
        "resume" => true,
        _ => return Err(ApiError::not_found()),
    };
    let (v, ip) = (viewer(&ctx), client_ip(&ext));
    let leads = state.leads();
    let task = leads
        .set_active(&v, ip.as_deref(), TaskId(id), active)
        .await?;
    let sources = leads.sources(&v, task.id).await?;
    Ok(json(TaskResponse { task, sources }))
}

/// A task's sources, each with its state (`resolving`, `joined`, `polled`, `flood_wait` with
/// `wait_until`, `failed` with `failure`, `left`).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/sources", tag = "leads", params(("id" = i64, Path)), responses(
    (status = 200, description = "The sources", body = SourcesResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn get_sources(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let sources = state.leads().sources(&viewer(&ctx), TaskId(id)).await?;
    Ok(json(SourcesResponse { sources }))
}

/// Replaces a task's sources; new ones start `resolving`.
#[utoipa::path(put, path = "/api/v1/tasks/{id}/sources", tag = "leads", params(("id" = i64, Path)), request_body = SourcesRequest, responses(
    (status = 200, description = "The sources", body = SourcesResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 422, description = "source_invalid, too_many_sources, validation_failed", body = ErrorBody)))]
async fn set_sources(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<SourcesRequest>,
) -> Result<Response, ApiError> {
    let inputs = source_inputs(&req.sources)?;
    let ip = client_ip(&ext);
    let sources = state
        .leads()
        .set_sources(&viewer(&ctx), ip.as_deref(), TaskId(id), &inputs)
        .await?;
    Ok(json(SourcesResponse { sources }))
}

/// One source of a task.
#[derive(Serialize, ToSchema)]
pub struct SourceResponse {
    /// The source, with its state.
    pub source: Source,
}

/// Resolves a `failed` source again (after the cause was dealt with, e.g. room freed under the
/// channel cap); it goes back to `resolving`. A source in another state is answered as it is.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/sources/{source_id}/retry", tag = "leads",
    params(("id" = i64, Path), ("source_id" = i64, Path)), responses(
    (status = 200, description = "The source (resolving when it had failed)", body = SourceResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found (also a source of another task)", body = ErrorBody)))]
async fn retry_source(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath((id, source_id)): ApiPath<(i64, i64)>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let source = state
        .leads()
        .retry_source(
            &viewer(&ctx),
            ip.as_deref(),
            TaskId(id),
            SourceId(source_id),
        )
        .await?;
    Ok(json(SourceResponse { source }))
}

/// A group or channel of the reading account's dialogs.
#[derive(Serialize, ToSchema)]
pub struct DialogView {
    /// Bot-API style peer id (negative): what a source's `dialog_peer_id` takes.
    pub peer_id: i64,
    /// Title.
    pub title: String,
    /// Public username, if any.
    pub username: Option<String>,
    /// A broadcast channel (else a group).
    pub broadcast: bool,
}

/// The groups and channels of an account's dialogs.
#[derive(Serialize, ToSchema)]
pub struct DialogsResponse {
    /// In the order of the account's chat list (most recent first).
    pub dialogs: Vec<DialogView>,
}

/// The groups and channels of a reading account's dialogs, read from Telegram through its live
/// client, to pick a task's sources from (owners and admins).
#[utoipa::path(get, path = "/api/v1/accounts/{id}/dialogs", tag = "leads", params(("id" = i64, Path)), responses(
    (status = 200, description = "The dialogs", body = DialogsResponse),
    (status = 403, description = "task_forbidden (an operator)", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "account_offline", body = ErrorBody),
    (status = 429, description = "flood_wait (with Retry-After)", body = ErrorBody),
    (status = 502, description = "telegram_error", body = ErrorBody)))]
async fn account_dialogs(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let dialogs = state
        .leads()
        .dialogs(&viewer(&ctx), AccountId(id))
        .await?
        .into_iter()
        .map(|d| DialogView {
            peer_id: d.peer_id,
            title: d.title,
            username: d.username,
            broadcast: d.broadcast,
        })
        .collect();
    Ok(json(DialogsResponse { dialogs }))
}

/// The "try it" box's question.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryRequest {
    /// The query to try; the task's own when absent.
    pub query: Option<String>,
}

/// A highlighted part of a post, in UTF-16 code units (JavaScript string indices).
#[derive(Serialize, ToSchema)]
pub struct Highlight {
    /// Start (inclusive).
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
}

/// A post the query matches.
#[derive(Serialize, ToSchema)]
pub struct TriedPost {
    /// The chat it is in (Bot-API style id).
    pub peer_id: i64,
    /// Telegram's message id.
    pub tg_message_id: i64,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// Its text.
    pub text: String,
    /// The terms that matched.
    pub terms: Vec<String>,
    /// Where they are in `text`.
    pub highlights: Vec<Highlight>,
}

/// What the query matched among the sources' last posts.
#[derive(Serialize, ToSchema)]
pub struct TryResponse {
    /// Posts read (the last 20 of each source).
    pub checked: u64,
    /// The matching posts, newest first (at most 50).
    pub matches: Vec<TriedPost>,
}

fn utf16_at(text: &str, byte: usize) -> u64 {
    text.get(..byte)
        .map_or(0, |s| s.encode_utf16().count() as u64)
}

impl From<TryMatch> for TriedPost {
    fn from(m: TryMatch) -> Self {
        let highlights = m
            .highlights
            .iter()
            .map(|r| Highlight {
                start: utf16_at(&m.text, r.start),
                end: utf16_at(&m.text, r.end),
            })
            .collect();
        TriedPost {
            peer_id: m.peer_id,
            tg_message_id: m.tg_message_id,
            posted_at: m.posted_at,
            text: m.text,
            terms: m.terms,
            highlights,
        }
    }
}

/// The "try it" box: the query (the task's own when none is given) run against the last 20
/// posts of each of the task's sources, read now through the task's account.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/try", tag = "leads", params(("id" = i64, Path)), request_body = TryRequest, responses(
    (status = 200, description = "The matching posts with highlights", body = TryResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "account_offline: the reading account is not connected", body = ErrorBody),
    (status = 422, description = "query_invalid (with `position` and `expected`)", body = ErrorBody),
    (status = 429, description = "flood_wait, with Retry-After", body = ErrorBody),
    (status = 502, description = "telegram_error", body = ErrorBody)))]
async fn try_task(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<TryRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .leads()
        .try_query(&viewer(&ctx), TaskId(id), req.query.as_deref())
        .await?;
    Ok(json(TryResponse {
        checked: outcome.checked as u64,
        matches: outcome.matches.into_iter().map(TriedPost::from).collect(),
    }))
}

// --- leads ---

/// Filters and paging of the lead list.
#[derive(Deserialize, IntoParams)]
pub struct LeadsQuery {
    /// Only this task's.
    pub task_id: Option<i64>,
    /// Only from this source.
    pub source_id: Option<i64>,
    /// Posted at or after (milliseconds since the epoch).
    pub from: Option<i64>,
    /// Posted before (milliseconds since the epoch).
    pub to: Option<i64>,
    /// Only read (`true`) or unread (`false`).
    pub read: Option<bool>,
    /// Full-text search: every word must start a word of the post.
    pub q: Option<String>,
    /// Cursor: the previous page's `next_before`.
    pub before: Option<i64>,
    /// Page size (1–200, default 50).
    pub limit: Option<u32>,
}

impl LeadsQuery {
    fn filter(&self, limit: u32) -> LeadFilter {
        LeadFilter {
            task: self.task_id.map(TaskId),
            source: self.source_id.map(SourceId),
            posted_from: self.from.map(Timestamp),
            posted_to: self.to.map(Timestamp),
            read: self.read,
            search: self.q.clone().filter(|q| !q.trim().is_empty()),
            before: self.before.map(LeadId),
            limit,
        }
    }
}

/// A page of leads.
#[derive(Serialize, ToSchema)]
pub struct LeadPage {
    /// Newest first.
    pub leads: Vec<Lead>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// One lead.
#[derive(Serialize, ToSchema)]
pub struct LeadResponse {
    /// The lead.
    pub lead: Lead,
}

/// The leads of the workspace, newest first, filtered, searched and paged.
#[utoipa::path(get, path = "/api/v1/leads", tag = "leads", params(LeadsQuery), responses(
    (status = 200, description = "A page of leads", body = LeadPage),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn list_leads(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<LeadsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ErrorCode::ValidationFailed.into());
    }
    let leads = state.leads().list(&viewer(&ctx), &q.filter(limit)).await?;
    let next_before = (leads.len() == limit as usize)
        .then(|| leads.last().map(|l| l.id.0))
        .flatten();
    Ok(json(LeadPage { leads, next_before }))
}

/// The leads the filters select as CSV (RFC 4180, UTF-8, CRLF lines, a header row), streamed
/// page by page. Cells starting with `=`, `+`, `-`, `@`, a tab or a carriage return get a
/// leading `'` so spreadsheets do not run them as formulas. `before` and `limit` are ignored.
#[utoipa::path(get, path = "/api/v1/leads/export.csv", tag = "leads", params(LeadsQuery), responses(
    (status = 200, description = "The leads as CSV", body = String, content_type = "text/csv"),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn export_leads(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<LeadsQuery>,
) -> Result<Response, ApiError> {
    let v = viewer(&ctx);
    let leads = state.leads().clone();
    let names: HashMap<TaskId, String> = leads
        .tasks(&v)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut filter = q.filter(MAX_LEAD_PAGE);
    filter.before = None;
    // The first page is read before answering, so a failure is an error status, not a cut file.
    let first = leads.list(&v, &filter).await?;
    let export = Export {
        leads,
        viewer: v,
        filter,
        names,
        head: Some(csv_line(CSV_HEADER)),
        first: Some(first),
        done: false,
    };
    let stream = futures_util::stream::unfold(export, |mut e| async move {
        if let Some(head) = e.head.take() {
            return Some((Ok(head), e));
        }
        if e.done {
            return None;
        }
        let page = match e.first.take() {
            Some(p) => p,
            None => match e.leads.list(&e.viewer, &e.filter).await {
                Ok(p) => p,
                Err(err) => {
                    tracing::error!(error = %err, "lead export stopped");
                    e.done = true;
                    return Some((Err(std::io::Error::other("lead export failed")), e));
                }
            },
        };
        if page.len() < e.filter.limit as usize {
            e.done = true;
        }
        if page.is_empty() {
            return None;
        }
        e.filter.before = page.last().map(|l| l.id);
        let mut chunk = String::new();
        for lead in &page {
            let name = e.names.get(&lead.task_id).map_or("", String::as_str);
            chunk.push_str(&csv_lead(lead, name));
        }
        Some((Ok(chunk), e))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"leads.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A CSV export in progress: the header, then page after page with the last id as the cursor.
struct Export {
    leads: Leads,
    viewer: Viewer,
    filter: LeadFilter,
    names: HashMap<TaskId, String>,
    head: Option<String>,
    first: Option<Vec<Lead>>,
    done: bool,
}

/// The read flag.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Read (`true`) or unread (`false`).
    pub read: bool,
}

/// Marks a lead read or unread.
#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = "leads", params(("id" = i64, Path)), request_body = ReadRequest, responses(
    (status = 200, description = "The lead", body = LeadResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn set_lead_read(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> Result<Response, ApiError> {
    let lead = state
        .leads()
        .set_read(&viewer(&ctx), LeadId(id), req.read)
        .await?;
    Ok(json(LeadResponse { lead }))
}

/// Which leads to mark read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAllRequest {
    /// Only this task's; every lead of the workspace when absent.
    pub task_id: Option<i64>,
}

/// How many leads changed.
#[derive(Serialize, ToSchema)]
pub struct ReadAllResponse {
    /// Leads that were unread.
    pub changed: u64,
}

/// Marks every lead (of one task) read.
#[utoipa::path(post, path = "/api/v1/leads/read-all", tag = "leads", request_body = ReadAllRequest, responses(
    (status = 200, description = "How many changed", body = ReadAllResponse),
    (status = 404, description = "not_found (the task)", body = ErrorBody)))]
async fn mark_all_read(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiJson(req): ApiJson<ReadAllRequest>,
) -> Result<Response, ApiError> {
    let changed = state
        .leads()
        .mark_all_read(&viewer(&ctx), req.task_id.map(TaskId))
        .await?;
    Ok(json(ReadAllResponse { changed }))
}

/// The chat opened with a lead's author.
#[derive(Serialize, ToSchema)]
pub struct AuthorChatResponse {
    /// Its id (the inbox opens it at `/inbox#chat-<id>`).
    pub chat_id: ChatId,
    /// It did not exist before.
    pub created: bool,
    /// The chat.
    pub chat: Chat,
}

/// "Write to the author": opens (or creates) the inbox chat of the task's reading account with
/// the lead's author.
#[utoipa::path(post, path = "/api/v1/leads/{id}/write", tag = "leads", params(("id" = i64, Path)), responses(
    (status = 200, description = "The chat", body = AuthorChatResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "lead_author_unknown: the reading account does not know the author", body = ErrorBody)))]
async fn write_to_author(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ext);
    let (chat, created) = state
        .leads()
        .open_author_chat(&viewer(&ctx), ip.as_deref(), LeadId(id))
        .await?;
    Ok(json(AuthorChatResponse {
        chat_id: chat.id,
        created,
        chat,
    }))
}
