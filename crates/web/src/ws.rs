//! `/ws`: the real-time channel. Authenticated by the session cookie (and the page's origin),
//! it streams the events the member may see as deltas, replays what a reconnecting client
//! missed (`?last_event_id=N`, re-checked against what the member may see now; an id from
//! before a restart answers `resync_required`), and answers client commands. The session is
//! re-checked periodically without sliding its expiry, so a removed member or an expired
//! session is disconnected, and an open socket alone does not keep a session alive.

use crate::AppState;
use crate::error::ApiError;
use crate::locale::cookie;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use switchboard_domain::{ChatFilter, ChatId, MessageId, StoreError, UserId, Viewer, WorkspaceId};
use switchboard_services::inbox::MEMBER_REMOVED;
use switchboard_services::{Event, Inbox, SessionContext};
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ws))
}

/// Reconnection parameters.
#[derive(Deserialize, IntoParams)]
pub struct WsQuery {
    /// The id of the last event the client processed; missed events are replayed.
    pub last_event_id: Option<u64>,
}

/// Opens the real-time WebSocket. Server frames are JSON `{"id","type","data"}`; client frames
/// are JSON commands such as `{"type":"ping"}`.
#[utoipa::path(get, path = "/ws", tag = "realtime", params(WsQuery), responses(
    (status = 101, description = "Switching to WebSocket"),
    (status = 401, description = "unauthenticated"),
    (status = 403, description = "csrf_failed: cross-origin handshake")))]
async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !state.same_origin(&headers) {
        return ApiError::new(StatusCode::FORBIDDEN, "csrf_failed").into_response();
    }
    let Some(token) = cookie(&headers, state.cookie_name()).map(str::to_string) else {
        return ApiError::unauthenticated().into_response();
    };
    let ctx = match state.auth().authenticate(&token).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, state, ctx, token, q.last_event_id))
}

/// `{"id","type","data"}`, serialized once when the event was published.
fn frame(event: &Event) -> Message {
    Message::Text(event.frame().into())
}

fn control(kind: &str, extra: serde_json::Value) -> Message {
    let mut v = json!({"type": kind});
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    Message::Text(v.to_string().into())
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    ctx: SessionContext,
    token: String,
    last: Option<u64>,
) {
    let ws_id = ctx.membership.workspace_id;
    let user = ctx.user.id;
    let mut role = ctx.membership.role;
    let _presence = PresenceGuard::new(state.inbox().clone(), ws_id, user);
    // Subscribe before replaying so nothing falls between the two.
    let mut rx = state.events().subscribe();
    let mut sent_up_to = last.unwrap_or_else(|| state.events().last_id());
    if socket
        .send(control("hello", json!({"last_event_id": state.events().last_id(), "user_id": user.0, "role": role.as_str()})))
        .await
        .is_err()
    {
        return;
    }
    if let Some(last) = last {
        match state.events().since(last) {
            Some(missed) => {
                sent_up_to = missed.last().map_or(last, |e| e.id);
                // Visibility is that of now, not of when the events were published: a chat
                // reassigned meanwhile is not replayed to the operator who lost it.
                let viewer = Viewer {
                    workspace: ws_id,
                    user,
                    role,
                };
                for e in state.inbox().still_visible(&viewer, missed).await {
                    if socket.send(frame(&e)).await.is_err() {
                        return;
                    }
                }
            }
            None => {
                // The id is from another process (a restart) or too old: the client reloads,
                // and every event from the subscription on is sent.
                sent_up_to = 0;
                let now = state.events().last_id();
                if socket
                    .send(control("resync_required", json!({"last_event_id": now})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    // A fresh client gets its first page of chats; a reconnecting one only the deltas.
    if last.is_none() {
        let viewer = Viewer {
            workspace: ws_id,
            user,
            role,
        };
        let filter = ChatFilter {
            limit: INITIAL_CHATS,
            ..ChatFilter::default()
        };
        match state.inbox().list(&viewer, &filter).await {
            Ok(chats) => {
                let msg = control(
                    "initial_chats",
                    json!({"chats": chats, "online": state.inbox().online(ws_id)}),
                );
                if socket.send(msg).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list the initial chats"),
        }
    }
    // Often enough that a session is ended within a quarter of its idle timeout.
    let idle = state.auth().policy().session_idle;
    let mut recheck = tokio::time::interval((idle / 4).clamp(RECHECK_MIN, RECHECK_MAX));
    recheck.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let replies = match msg {
                    Message::Text(text) => {
                        let viewer = Viewer { workspace: ws_id, user, role };
                        command(&state, &viewer, &text).await
                    }
                    Message::Close(_) => return,
                    _ => Vec::new(),
                };
                for reply in replies {
                    if socket.send(reply).await.is_err() {
                        return;
                    }
                }
            }
            event = rx.recv() => {
                match event {
                    Ok(e) => {
                        // Events already waiting go out together, with one flush.
                        let mut next = Some(e);
                        let mut fed = 0;
                        while let Some(e) = next.take() {
                            if e.id > sent_up_to && e.visible_to(ws_id, user, role) {
                                sent_up_to = e.id;
                                if e.name == MEMBER_REMOVED {
                                    recheck.reset_immediately();
                                }
                                if socket.feed(frame(&e)).await.is_err() {
                                    return;
                                }
                                fed += 1;
                            }
                            if fed < MAX_FEED {
                                next = rx.try_recv().ok();
                            }
                        }
                        if socket.flush().await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        if socket.send(control("resync_required", json!({}))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
            () = state.events().closed() => {
                // The server is stopping: the client reconnects to the next process.
                let close = CloseFrame { code: close_code::RESTART, reason: "restarting".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
            _ = recheck.tick() => {
                // A check, not a use: an open socket does not keep the session alive.
                match state.auth().check(&token).await {
                    Ok(Some(fresh)) => role = fresh.membership.role,
                    _ => {
                        let _ = socket.send(control("session_ended", json!({}))).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Bounds of the interval at which an open socket re-checks its session.
const RECHECK_MIN: Duration = Duration::from_millis(250);
const RECHECK_MAX: Duration = Duration::from_secs(30);
/// Most frames written before one flush.
const MAX_FEED: usize = 64;
/// Chats sent on connect.
const INITIAL_CHATS: u32 = 50;
/// Messages per frame of a `chat_messages` answer.
const CHUNK: usize = 50;

/// Marks the member online while the socket lives.
struct PresenceGuard {
    inbox: Inbox,
    workspace: WorkspaceId,
    user: UserId,
}

impl PresenceGuard {
    fn new(inbox: Inbox, workspace: WorkspaceId, user: UserId) -> Self {
        inbox.connected(workspace, user);
        Self {
            inbox,
            workspace,
            user,
        }
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.inbox.disconnected(self.workspace, self.user);
    }
}

fn store_error(e: &StoreError) -> Message {
    let code = match e {
        StoreError::NotFound => "not_found",
        StoreError::Conflict(c) => c,
        StoreError::Backend(_) => "internal",
    };
    control("error", json!({"code": code}))
}

/// Answers one client command. Every store call carries the member's viewer, so a command
/// naming another operator's chat fails exactly like a missing one.
async fn command(state: &AppState, viewer: &Viewer, text: &str) -> Vec<Message> {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return vec![control("error", json!({"code": "invalid_json"}))],
    };
    let chat_id = v.get("chat_id").and_then(|c| c.as_i64()).map(ChatId);
    match (v.get("type").and_then(|t| t.as_str()), chat_id) {
        (Some("ping"), _) => vec![control(
            "pong",
            json!({"ts": switchboard_domain::Timestamp::now().0}),
        )],
        (Some("get_chat_messages"), Some(chat)) => {
            let before = v.get("before").and_then(|b| b.as_i64()).map(MessageId);
            let limit = v
                .get("limit")
                .and_then(|l| l.as_u64())
                .map_or(50, |l| u32::try_from(l.clamp(1, 200)).unwrap_or(50));
            match state.inbox().messages(viewer, chat, before, limit).await {
                Ok(messages) => {
                    let has_more = messages.len() == limit as usize;
                    let chunks: Vec<&[switchboard_domain::Message]> =
                        messages.chunks(CHUNK).collect();
                    let total = chunks.len().max(1);
                    if chunks.is_empty() {
                        return vec![control(
                            "chat_messages",
                            json!({"chat_id": chat.0, "messages": [], "has_more": false, "chunk": 0, "chunks": 1}),
                        )];
                    }
                    chunks
                        .into_iter()
                        .enumerate()
                        .map(|(i, part)| {
                            control(
                                "chat_messages",
                                json!({"chat_id": chat.0, "messages": part, "has_more": has_more, "chunk": i, "chunks": total}),
                            )
                        })
                        .collect()
                }
                Err(e) => vec![store_error(&e)],
            }
        }
        (Some("mark_as_read"), Some(chat)) => match state.inbox().mark_read(viewer, chat).await {
            Ok(_) => vec![control(
                "ok",
                json!({"command": "mark_as_read", "chat_id": chat.0}),
            )],
            Err(e) => vec![store_error(&e)],
        },
        (Some("get_chat_messages" | "mark_as_read"), None) => {
            vec![control("error", json!({"code": "validation_failed"}))]
        }
        (Some(_) | None, _) => vec![control("error", json!({"code": "unknown_command"}))],
    }
}
