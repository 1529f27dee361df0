//! `/ws`: the real-time channel. Authenticated by the session cookie (and the page's origin),
//! it streams the events the member may see as deltas, replays what a reconnecting client
//! missed (`?last_event_id=N`), and answers client commands. The session is re-checked
//! periodically, so a removed member or an expired session is disconnected.

use crate::AppState;
use crate::error::ApiError;
use crate::locale::cookie;
use crate::session::same_origin;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use switchboard_services::{Event, SessionContext};
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
    if !same_origin(&headers) {
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

fn frame(event: &Event) -> Message {
    Message::Text(
        json!({"id": event.id, "type": event.name, "data": event.data})
            .to_string()
            .into(),
    )
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
                for e in missed.iter().filter(|e| e.visible_to(ws_id, user, role)) {
                    if socket.send(frame(e)).await.is_err() {
                        return;
                    }
                }
                sent_up_to = missed.last().map(|e| e.id).unwrap_or(last);
            }
            None => {
                if socket
                    .send(control("resync_required", json!({})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let mut recheck = tokio::time::interval(Duration::from_secs(30));
    recheck.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let reply = match msg {
                    Message::Text(text) => command(&text),
                    Message::Close(_) => return,
                    _ => None,
                };
                if let Some(reply) = reply && socket.send(reply).await.is_err() {
                    return;
                }
            }
            event = rx.recv() => {
                match event {
                    Ok(e) => {
                        if e.id <= sent_up_to || !e.visible_to(ws_id, user, role) {
                            continue;
                        }
                        sent_up_to = e.id;
                        if socket.send(frame(&e)).await.is_err() {
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
            _ = recheck.tick() => {
                match state.auth().authenticate(&token).await {
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

fn command(text: &str) -> Option<Message> {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Some(control("error", json!({"code": "invalid_json"}))),
    };
    match v.get("type").and_then(|t| t.as_str()) {
        Some("ping") => Some(control(
            "pong",
            json!({"ts": switchboard_domain::Timestamp::now().0}),
        )),
        Some(_) | None => Some(control("error", json!({"code": "unknown_command"}))),
    }
}
