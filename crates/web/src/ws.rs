//! `/ws`: the real-time channel. Authenticated by the session cookie (and the page's origin),
//! it streams the events the member may see as deltas, replays what a reconnecting client
//! missed (`?last_event_id=N`, re-checked against what the member may see now; an id from
//! before a restart answers `resync_required`), and answers client commands. The session is
//! re-checked periodically without sliding its expiry, so a removed member or an expired
//! session is disconnected, and an open socket alone does not keep a session alive.

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::locale::cookie;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    Chat, ChatFilter, ChatId, Message as ChatMessage, MessageId, Role, StoreError, Timestamp,
    UserId, Viewer, WorkspaceId,
};
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

/// Opens the real-time WebSocket. Events are JSON `{"id","type","data"}` (`ServerEvent` in
/// `services`); replies to the connection itself are `{"type", …}` without an id ([`Control`]);
/// client frames are JSON commands such as `{"type":"ping"}` ([`Command`]).
#[utoipa::path(get, path = "/ws", tag = "realtime", params(WsQuery), responses(
    (status = 101, description = "Switching to WebSocket"),
    (status = 401, description = "unauthenticated", body = ErrorBody),
    (status = 403, description = "csrf_failed: cross-origin handshake", body = ErrorBody),
    (status = 426, description = "upgrade_required: not a WebSocket handshake", body = ErrorBody)))]
async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !state.same_origin(&headers) {
        return ApiError::from(ErrorCode::CsrfFailed).into_response();
    }
    let Some(token) = cookie(&headers, state.cookie_name()).map(str::to_string) else {
        return ApiError::unauthenticated().into_response();
    };
    let ctx = match state.auth().authenticate(&token).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Ok(upgrade) = upgrade else {
        return ApiError::from(ErrorCode::UpgradeRequired).into_response();
    };
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, state, ctx, token, q.last_event_id))
}

/// `{"id","type","data"}`, serialized once when the event was published.
fn frame(event: &Event) -> Message {
    Message::Text(event.frame().into())
}

/// A frame for this connection alone (no event id): `{"type": …, …fields}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Control<'a> {
    /// The first frame: the newest event id, and who the socket belongs to.
    Hello {
        /// The newest event's id (a fresh client continues from it).
        last_event_id: u64,
        /// The member.
        user_id: UserId,
        /// Their role.
        role: Role,
    },
    /// The client must reload its state; event ids continue from `last_event_id` when given.
    ResyncRequired {
        /// The id to continue from.
        #[serde(skip_serializing_if = "Option::is_none")]
        last_event_id: Option<u64>,
    },
    /// A fresh client's first page of chats, and who is online.
    InitialChats {
        /// Newest activity first.
        chats: &'a [Chat],
        /// Members with an open connection.
        online: &'a [UserId],
    },
    /// One chunk of the answer to `get_chat_messages`.
    ChatMessages {
        /// The chat.
        chat_id: ChatId,
        /// Newest first.
        messages: &'a [ChatMessage],
        /// Older messages exist.
        has_more: bool,
        /// This chunk's index.
        chunk: usize,
        /// How many chunks the answer has.
        chunks: usize,
    },
    /// The answer to `ping`.
    Pong {
        /// The server's time.
        ts: Timestamp,
    },
    /// A command succeeded.
    Ok {
        /// The command.
        command: &'static str,
        /// Its chat.
        chat_id: ChatId,
    },
    /// A command failed, with a stable code: `invalid_json` (not JSON), `unknown_command` (no
    /// or an unknown `type`), `validation_failed` (a known command with missing or malformed
    /// fields), or the store's (`not_found`, …).
    Error {
        /// The code.
        code: &'a str,
    },
    /// The session ended (signed out, expired, or the member was removed); the socket closes.
    SessionEnded,
}

impl Control<'_> {
    fn frame(&self) -> Message {
        match serde_json::to_string(self) {
            Ok(text) => Message::Text(text.into()),
            Err(e) => {
                tracing::error!(error = %e, "a control frame failed to serialize");
                Message::Text(r#"{"type":"error","code":"internal"}"#.into())
            }
        }
    }
}

/// A command a client sends: `{"type": …, …fields}`.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Command {
    /// Answered with `pong`.
    Ping,
    /// A chat's messages, newest first, answered with `chat_messages` chunks.
    GetChatMessages {
        /// The chat.
        chat_id: ChatId,
        /// Older than this message id.
        #[serde(default)]
        before: Option<MessageId>,
        /// At most this many (1–200, default 50).
        #[serde(default)]
        limit: Option<u64>,
    },
    /// Marks a chat read, answered with `ok`.
    MarkAsRead {
        /// The chat.
        chat_id: ChatId,
    },
}

impl Command {
    /// The `type` of every command.
    const NAMES: [&'static str; 3] = ["ping", "get_chat_messages", "mark_as_read"];

    /// Parses a client frame, or the stable code of why it is refused.
    fn parse(text: &str) -> Result<Command, &'static str> {
        serde_json::from_str(text).map_err(|_| {
            match serde_json::from_str::<serde_json::Value>(text) {
                Err(_) => "invalid_json",
                Ok(v) => match v.get("type").and_then(|t| t.as_str()) {
                    Some(name) if Command::NAMES.contains(&name) => "validation_failed",
                    _ => "unknown_command",
                },
            }
        })
    }
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
        .send(
            Control::Hello {
                last_event_id: state.events().last_id(),
                user_id: user,
                role,
            }
            .frame(),
        )
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
                    .send(
                        Control::ResyncRequired {
                            last_event_id: Some(now),
                        }
                        .frame(),
                    )
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
                let msg = Control::InitialChats {
                    chats: &chats,
                    online: &state.inbox().online(ws_id),
                }
                .frame();
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
                        if socket.send(Control::ResyncRequired { last_event_id: None }.frame()).await.is_err() {
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
                        let _ = socket.send(Control::SessionEnded.frame()).await;
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
        StoreError::Conflict(c) => c.code(),
        StoreError::Backend(_) => "internal",
    };
    Control::Error { code }.frame()
}

/// Answers one client command. Every store call carries the member's viewer, so a command
/// naming another operator's chat fails exactly like a missing one.
async fn command(state: &AppState, viewer: &Viewer, text: &str) -> Vec<Message> {
    let command = match Command::parse(text) {
        Ok(c) => c,
        Err(code) => return vec![Control::Error { code }.frame()],
    };
    match command {
        Command::Ping => vec![
            Control::Pong {
                ts: Timestamp::now(),
            }
            .frame(),
        ],
        Command::GetChatMessages {
            chat_id,
            before,
            limit,
        } => {
            let limit = limit.map_or(50, |l| u32::try_from(l.clamp(1, 200)).unwrap_or(50));
            match state.inbox().messages(viewer, chat_id, before, limit).await {
                Ok(messages) => {
                    let has_more = messages.len() == limit as usize;
                    if messages.is_empty() {
                        return vec![
                            Control::ChatMessages {
                                chat_id,
                                messages: &[],
                                has_more: false,
                                chunk: 0,
                                chunks: 1,
                            }
                            .frame(),
                        ];
                    }
                    let chunks = messages.len().div_ceil(CHUNK);
                    messages
                        .chunks(CHUNK)
                        .enumerate()
                        .map(|(chunk, part)| {
                            Control::ChatMessages {
                                chat_id,
                                messages: part,
                                has_more,
                                chunk,
                                chunks,
                            }
                            .frame()
                        })
                        .collect()
                }
                Err(e) => vec![store_error(&e)],
            }
        }
        Command::MarkAsRead { chat_id } => match state.inbox().mark_read(viewer, chat_id).await {
            Ok(_) => vec![
                Control::Ok {
                    command: "mark_as_read",
                    chat_id,
                }
                .frame(),
            ],
            Err(e) => vec![store_error(&e)],
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commands_parse_or_get_a_stable_code() {
        assert_eq!(Command::parse(r#"{"type":"ping"}"#), Ok(Command::Ping));
        assert_eq!(
            Command::parse(r#"{"type":"get_chat_messages","chat_id":5,"limit":500}"#),
            Ok(Command::GetChatMessages {
                chat_id: ChatId(5),
                before: None,
                limit: Some(500),
            })
        );
        assert_eq!(
            Command::parse(r#"{"type":"mark_as_read","chat_id":7}"#),
            Ok(Command::MarkAsRead { chat_id: ChatId(7) })
        );
        assert_eq!(Command::parse("{nope"), Err("invalid_json"));
        assert_eq!(
            Command::parse(r#"{"type":"dance"}"#),
            Err("unknown_command")
        );
        assert_eq!(Command::parse(r#"{"chat_id":1}"#), Err("unknown_command"));
        assert_eq!(Command::parse("[1,2]"), Err("unknown_command"));
        assert_eq!(
            Command::parse(r#"{"type":"mark_as_read"}"#),
            Err("validation_failed")
        );
        assert_eq!(
            Command::parse(r#"{"type":"get_chat_messages","chat_id":"x"}"#),
            Err("validation_failed")
        );
    }

    #[test]
    fn control_frames_keep_their_wire_shape() {
        let text = |c: Control<'_>| match c.frame() {
            Message::Text(t) => t.to_string(),
            _ => unreachable!(),
        };
        assert_eq!(
            text(Control::Error { code: "not_found" }),
            r#"{"type":"error","code":"not_found"}"#
        );
        assert_eq!(
            text(Control::ResyncRequired {
                last_event_id: None
            }),
            r#"{"type":"resync_required"}"#
        );
        assert_eq!(text(Control::SessionEnded), r#"{"type":"session_ended"}"#);
        assert_eq!(
            text(Control::Hello {
                last_event_id: 3,
                user_id: UserId(2),
                role: Role::Admin
            }),
            r#"{"type":"hello","last_event_id":3,"user_id":2,"role":"admin"}"#
        );
    }
}
