//! The operator inbox (`/api/v1/chats/*`, `/api/v1/messages/*`, `/api/v1/files`): chats of
//! personal accounts and bots together, scoped by the member's role — an operator sees the
//! chats assigned to them and the unassigned queue; anything else is `404`, exactly like a chat
//! that does not exist. Replies are queued with their outbox item in one transaction and sent
//! in the background (`202`); their delivery state arrives as `message_status` events.

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, json};
use crate::session::Member;
use crate::{AppState, WebSettings};
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    AccountId, AssigneeFilter, BotId, Chat, ChatFilter, ChatId, ChatStatus, Entity, MediaKind,
    Message, MessageEdit, MessageId, NewUpload, Role, Timestamp, UserId, Viewer,
};
use switchboard_files::{FileError, FileId};
use switchboard_services::SessionContext;
use switchboard_services::replies::{
    AttachmentDraft, ReplyDraft, classify_upload, prepare_reply, upload_name,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What a multipart upload may carry besides the file itself (boundaries, part headers).
const UPLOAD_OVERHEAD_BYTES: usize = 64 * 1024;

pub(super) fn routes(settings: &WebSettings) -> OpenApiRouter<AppState> {
    // The upload is streamed to the file store, so its body limit is the file limit (plus the
    // multipart framing), not the JSON limit every other route has.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_file))
        .layer(DefaultBodyLimit::max(
            settings
                .max_upload_bytes
                .saturating_add(UPLOAD_OVERHEAD_BYTES),
        ));
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(list_chats))
        .routes(routes!(get_chat))
        .routes(routes!(chat_messages, send_reply))
        .routes(routes!(mark_read))
        .routes(routes!(set_status))
        .routes(routes!(assign))
        .routes(routes!(message_history))
        .routes(routes!(retry_message))
        .routes(routes!(mark_message_sent))
        .routes(routes!(message_media))
        .routes(routes!(inbox_members))
}

/// The caller as the store sees them.
pub(crate) fn viewer(ctx: &SessionContext) -> Viewer {
    Viewer {
        workspace: ctx.membership.workspace_id,
        user: ctx.user.id,
        role: ctx.membership.role,
    }
}

/// Filters of the chat list.
#[derive(Deserialize, IntoParams)]
pub struct ChatsQuery {
    /// `all` (default), `mine` or `unassigned`.
    pub assignee: Option<String>,
    /// `open`, `pending` or `resolved`.
    pub status: Option<String>,
    /// Only this personal account's chats.
    pub account_id: Option<i64>,
    /// Only this bot's chats.
    pub bot_id: Option<i64>,
    /// Cursor from the previous page: its `next_before_at`.
    pub before_at: Option<i64>,
    /// Cursor from the previous page: its `next_before_id`.
    pub before_id: Option<i64>,
    /// Page size (1–200, default 50).
    pub limit: Option<u32>,
}

fn invalid() -> ApiError {
    ApiError::from(ErrorCode::ValidationFailed)
}

fn parse_status(s: &str) -> Result<ChatStatus, ApiError> {
    s.parse::<ChatStatus>().map_err(|()| invalid())
}

/// Builds the store filter from query parameters; unknown values are `422`.
pub(crate) fn chat_filter(q: &ChatsQuery) -> Result<ChatFilter, ApiError> {
    let assignee = match q.assignee.as_deref() {
        None | Some("all") => AssigneeFilter::All,
        Some("mine") => AssigneeFilter::Mine,
        Some("unassigned") => AssigneeFilter::Unassigned,
        Some(_) => return Err(invalid()),
    };
    let before = match (q.before_at, q.before_id) {
        (Some(at), Some(id)) => Some((Timestamp(at), ChatId(id))),
        (None, None) => None,
        _ => return Err(invalid()),
    };
    Ok(ChatFilter {
        assignee,
        status: q.status.as_deref().map(parse_status).transpose()?,
        account: q.account_id.map(AccountId),
        bot: q.bot_id.map(BotId),
        before,
        limit: q.limit.unwrap_or(50).clamp(1, 200),
    })
}

/// A page of chats with the cursor of the next one.
#[derive(Serialize, ToSchema)]
pub struct ChatPage {
    /// Newest activity first.
    pub chats: Vec<Chat>,
    /// Pass as `before_at` for the next page; null on the last page.
    pub next_before_at: Option<i64>,
    /// Pass as `before_id` for the next page; null on the last page.
    pub next_before_id: Option<i64>,
}

/// One chat.
#[derive(Serialize, ToSchema)]
pub struct ChatResponse {
    /// The chat.
    pub chat: Chat,
}

/// A page of messages.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Older messages exist.
    pub has_more: bool,
}

/// One message.
#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    /// The message.
    pub message: Message,
}

/// Earlier versions of a message.
#[derive(Serialize, ToSchema)]
pub struct EditsResponse {
    /// Oldest first.
    pub edits: Vec<MessageEdit>,
}

/// A stored upload, to attach to a reply.
#[derive(Serialize, ToSchema)]
pub struct UploadResponse {
    /// The id to pass as the attachment's `file_id`.
    pub file_id: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type as accepted.
    pub mime_type: String,
    /// The attachment kind it fits: `photo`, `video`, `voice`, `audio` or `document`.
    pub kind: String,
    /// The file name, cleaned.
    pub file_name: String,
}

/// A member as the assignment control shows them.
#[derive(Serialize, ToSchema)]
pub struct InboxMember {
    /// The member.
    pub user_id: UserId,
    /// Name shown.
    pub display_name: String,
    /// Their role.
    pub role: Role,
    /// Has an open connection.
    pub online: bool,
    /// Chats assigned to them that are not resolved (null for members without a load).
    pub open_chats: Option<i32>,
    /// Their cap.
    pub max_chats: i32,
}

/// Members of the workspace with presence and load.
#[derive(Serialize, ToSchema)]
pub struct InboxMembersResponse {
    /// By user id.
    pub members: Vec<InboxMember>,
}

/// The inbox's chats, newest activity first, with the cursor of the next page.
#[utoipa::path(get, path = "/api/v1/chats", tag = "inbox", params(ChatsQuery), responses(
    (status = 200, description = "A page of chats", body = ChatPage),
    (status = 401, description = "unauthenticated", body = ErrorBody),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn list_chats(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiQuery(q): ApiQuery<ChatsQuery>,
) -> Result<Response, ApiError> {
    let filter = chat_filter(&q)?;
    let chats = state.inbox().list(&viewer(&ctx), &filter).await?;
    let next = (chats.len() == filter.limit as usize)
        .then(|| chats.last())
        .flatten()
        .map(|c| (c.last_message_at.map_or(0, |t| t.0), c.id.0));
    Ok(json(ChatPage {
        chats,
        next_before_at: next.map(|n| n.0),
        next_before_id: next.map(|n| n.1),
    }))
}

/// One chat.
#[utoipa::path(get, path = "/api/v1/chats/{id}", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 200, description = "The chat", body = ChatResponse),
    (status = 404, description = "not_found (also another operator's chat)", body = ErrorBody)))]
async fn get_chat(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let chat = state.inbox().chat(&viewer(&ctx), ChatId(id)).await?;
    Ok(json(ChatResponse { chat }))
}

/// Paging of messages.
#[derive(Deserialize, IntoParams)]
pub struct MessagesQuery {
    /// Older than this message id.
    pub before: Option<i64>,
    /// At most this many (1–200, default 50).
    pub limit: Option<u32>,
}

/// A chat's messages, newest first.
#[utoipa::path(get, path = "/api/v1/chats/{id}/messages", tag = "inbox", params(("id" = i64, Path), MessagesQuery), responses(
    (status = 200, description = "A page of messages", body = MessagePage),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn chat_messages(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let messages = state
        .inbox()
        .messages(&viewer(&ctx), ChatId(id), q.before.map(MessageId), limit)
        .await?;
    let has_more = messages.len() == limit as usize;
    Ok(json(MessagePage { messages, has_more }))
}

/// A reply.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// Text (or caption with an attachment); up to 4096 characters.
    #[serde(default)]
    pub text: String,
    /// Formatting entities (Bot API names; offsets in UTF-16 code units).
    #[serde(default)]
    pub entities: Option<Vec<Entity>>,
    /// Telegram id of the message replied to.
    pub reply_to_tg_id: Option<i64>,
    /// An attachment uploaded with `POST /api/v1/files`.
    pub attachment: Option<Attachment>,
}

/// An uploaded file to attach.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The id `POST /api/v1/files` returned.
    pub file_id: String,
    /// `photo`, `video`, `voice`, `audio` or `document` (other kinds are `validation_failed`).
    pub kind: MediaKind,
    /// File name shown.
    pub file_name: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
}

/// Queues a reply; it is sent in the background and its state arrives as `message_status`.
#[utoipa::path(post, path = "/api/v1/chats/{id}/messages", tag = "inbox", params(("id" = i64, Path)), request_body = ReplyRequest, responses(
    (status = 202, description = "The reply (status `queued`)", body = MessageResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 422, description = "validation_failed / file_not_found", body = ErrorBody)))]
async fn send_reply(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReplyRequest>,
) -> Result<Response, ApiError> {
    let draft = ReplyDraft {
        text: req.text,
        entities: req.entities,
        reply_to_tg_id: req.reply_to_tg_id,
        attachment: req.attachment.map(|a| AttachmentDraft {
            file_id: a.file_id,
            kind: a.kind,
            file_name: a.file_name,
            mime_type: a.mime_type,
        }),
    };
    let reply = prepare_reply(draft, state.files()).await?;
    let (message, _) = state
        .inbox()
        .reply(&viewer(&ctx), ChatId(id), &reply)
        .await?;
    Ok((StatusCode::ACCEPTED, json(MessageResponse { message })).into_response())
}

/// Marks a chat read (also on Telegram for personal accounts).
#[utoipa::path(post, path = "/api/v1/chats/{id}/read", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 200, description = "The chat", body = ChatResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let chat = state.inbox().mark_read(&viewer(&ctx), ChatId(id)).await?;
    Ok(json(ChatResponse { chat }))
}

/// A new status.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `open`, `pending` or `resolved`.
    pub status: String,
}

/// Sets a chat's status.
#[utoipa::path(post, path = "/api/v1/chats/{id}/status", tag = "inbox", params(("id" = i64, Path)), request_body = StatusRequest, responses(
    (status = 200, description = "The chat", body = ChatResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn set_status(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> Result<Response, ApiError> {
    let status = parse_status(&req.status)?;
    let chat = state
        .inbox()
        .set_status(&viewer(&ctx), ChatId(id), status)
        .await?;
    Ok(json(ChatResponse { chat }))
}

/// A new assignee.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// The member to assign, or null to unassign.
    pub user_id: Option<i64>,
}

/// Assigns a chat. Admins assign anyone of the workspace; an operator may take an unassigned
/// chat or hand back their own.
#[utoipa::path(post, path = "/api/v1/chats/{id}/assign", tag = "inbox", params(("id" = i64, Path)), request_body = AssignRequest, responses(
    (status = 200, description = "The chat", body = ChatResponse),
    (status = 403, description = "assign_forbidden", body = ErrorBody),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 422, description = "not_a_member", body = ErrorBody)))]
async fn assign(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Response, ApiError> {
    let chat = state
        .inbox()
        .assign(&viewer(&ctx), ChatId(id), req.user_id.map(UserId))
        .await?;
    Ok(json(ChatResponse { chat }))
}

/// Earlier versions of an edited message, oldest first.
#[utoipa::path(get, path = "/api/v1/messages/{id}/history", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 200, description = "Earlier versions", body = EditsResponse),
    (status = 404, description = "not_found", body = ErrorBody)))]
async fn message_history(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let edits = state.inbox().history(&viewer(&ctx), MessageId(id)).await?;
    Ok(json(EditsResponse { edits }))
}

/// Sends a failed reply again.
#[utoipa::path(post, path = "/api/v1/messages/{id}/retry", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 202, description = "The reply (queued again)", body = MessageResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "not_failed", body = ErrorBody)))]
async fn retry_message(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let message = state.inbox().retry(&viewer(&ctx), MessageId(id)).await?;
    Ok((StatusCode::ACCEPTED, json(MessageResponse { message })).into_response())
}

/// Records that a reply whose sending was uncertain (`send_uncertain`) did reach the chat.
#[utoipa::path(post, path = "/api/v1/messages/{id}/mark_sent", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 200, description = "The reply (sent)", body = MessageResponse),
    (status = 404, description = "not_found", body = ErrorBody),
    (status = 409, description = "not_uncertain", body = ErrorBody)))]
async fn mark_message_sent(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let message = state
        .inbox()
        .mark_sent(&viewer(&ctx), MessageId(id))
        .await?;
    Ok(json(MessageResponse { message }))
}

/// The media file of a message the member may see.
#[utoipa::path(get, path = "/api/v1/messages/{id}/media", tag = "inbox", params(("id" = i64, Path)), responses(
    (status = 200, description = "the file, with its MIME type"),
    (status = 404, description = "not_found (no such message, not visible, or no file yet)", body = ErrorBody)))]
async fn message_media(
    State(state): State<AppState>,
    Member(ctx): Member,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let message = state.inbox().message(&viewer(&ctx), MessageId(id)).await?;
    let media = message.media.as_ref().ok_or_else(ApiError::not_found)?;
    let file: FileId = media
        .file_id
        .as_deref()
        .and_then(|f| f.parse().ok())
        .ok_or_else(ApiError::not_found)?;
    let bytes = match tokio::fs::read(state.files().path(&file)).await {
        Ok(b) => b,
        Err(_) => return Err(ApiError::not_found()),
    };
    let mime = media
        .mime_type
        .as_deref()
        .filter(|m| is_safe_inline_mime(m))
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// MIME types the browser may render inline; anything else is served as a download.
fn is_safe_inline_mime(m: &str) -> bool {
    matches!(
        m,
        "image/jpeg"
            | "image/png"
            | "image/gif"
            | "image/webp"
            | "video/mp4"
            | "video/webm"
            | "audio/mpeg"
            | "audio/ogg"
            | "audio/mp4"
            | "application/pdf"
            | "text/plain"
    )
}

/// Uploads an attachment (multipart field `file`), streamed to the file store. The type must be
/// one Telegram accepts and the bytes must look like it; above `server.max_upload_bytes` it is
/// `file_too_large` and nothing is kept.
#[utoipa::path(post, path = "/api/v1/files", tag = "inbox", responses(
    (status = 201, description = "The stored file", body = UploadResponse),
    (status = 413, description = "file_too_large", body = ErrorBody),
    (status = 415, description = "file_type_not_allowed", body = ErrorBody),
    (status = 422, description = "validation_failed", body = ErrorBody)))]
async fn upload_file(
    State(state): State<AppState>,
    Member(ctx): Member,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(|_| invalid())?;
    while let Some(mut field) = form.next_field().await.map_err(upload_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field
            .file_name()
            .map(upload_name)
            .unwrap_or_else(|| "file".into());
        let declared = field.content_type().unwrap_or("").to_string();
        let mut writer = state.files().writer().await.map_err(file_error)?;
        let mut head: Vec<u8> = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(upload_error)? {
            if head.len() < 64 {
                head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
            }
            if let Err(e) = writer.write(&chunk).await {
                // Read what is left (the body limit bounds it), so that a client still
                // sending receives the answer instead of a reset connection.
                while let Ok(Some(_)) = field.chunk().await {}
                return Err(file_error(e));
            }
        }
        if writer.size() == 0 {
            return Err(invalid());
        }
        let (mime, kind) = classify_upload(&declared, &head, &file_name)?;
        let stored = writer.commit().await.map_err(file_error)?;
        record_upload(&state, &ctx, &stored, &mime).await?;
        return Ok((
            StatusCode::CREATED,
            json(UploadResponse {
                file_id: stored.sha256.to_hex(),
                size: stored.size,
                mime_type: mime,
                kind: kind.to_string(),
                file_name,
            }),
        )
            .into_response());
    }
    Err(invalid())
}

/// Records the upload as its workspace's, the only one whose replies may attach it.
async fn record_upload(
    state: &AppState,
    ctx: &SessionContext,
    stored: &switchboard_files::StoredFile,
    mime: &str,
) -> Result<(), ApiError> {
    let upload = NewUpload {
        workspace: ctx.membership.workspace_id,
        file_id: stored.sha256.to_hex(),
        size: i64::try_from(stored.size).unwrap_or(i64::MAX),
        mime_type: mime.to_string(),
        uploaded_by: ctx.user.id,
    };
    Ok(state.inbox().record_upload(&upload).await?)
}

/// A broken upload body: over the route's limit is `file_too_large`, anything else malformed.
fn upload_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from(ErrorCode::FileTooLarge)
    } else {
        invalid()
    }
}

fn file_error(e: FileError) -> ApiError {
    match e {
        FileError::TooLarge { .. } => ApiError::from(ErrorCode::FileTooLarge),
        other => {
            tracing::error!(error = %other, "file store failure");
            ApiError::internal()
        }
    }
}

/// Members of the workspace with presence and load (for the assignment control).
#[utoipa::path(get, path = "/api/v1/inbox/members", tag = "inbox", responses(
    (status = 200, description = "Members with presence and load", body = InboxMembersResponse)))]
async fn inbox_members(
    State(state): State<AppState>,
    Member(ctx): Member,
) -> Result<Response, ApiError> {
    let ws = ctx.membership.workspace_id;
    let members = state.store().list_members(ws).await?;
    let online = state.inbox().online(ws);
    let loads = state.inbox().store().operator_loads(ws).await?;
    let members = members
        .into_iter()
        .map(|(membership, user)| {
            let load = loads.iter().find(|l| l.user == user.id);
            InboxMember {
                user_id: user.id,
                online: online.contains(&user.id),
                display_name: user.display_name,
                role: membership.role,
                open_chats: load.map(|l| l.open_chats),
                max_chats: membership.max_chats,
            }
        })
        .collect();
    Ok(json(InboxMembersResponse { members }))
}
