//! The control API (HTTP JSON) and the "simulated phones" page. Every endpoint calls the same
//! [`Handle`] method a test would call in-process.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
#[cfg(test)]
use serde_json::Value;
use serde_json::json;

use crate::{
    AdminRights, ChannelId, ChannelOptions, Entity, Error, FaultRule, Handle, NewBot, NewChannel,
    NewGroup, NewInvite, NewUser, OutgoingMessage, Peer, RateLimit, UserId,
};

/// Builds the control router.
pub(crate) fn router(handle: Handle) -> Router {
    Router::new()
        .route("/", get(phones_page))
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/bots", post(create_bot))
        .route("/api/groups", post(create_group))
        .route("/api/channels", post(create_channel))
        .route("/api/channels/{id}/members", post(join_channel))
        .route("/api/channels/{id}", get(channel).patch(channel_options))
        .route(
            "/api/channels/{id}/posts",
            get(channel_posts).post(post_to_channel),
        )
        .route(
            "/api/channels/{id}/posts/{msg_id}",
            patch(edit_post).delete(delete_post),
        )
        .route("/api/channels/{id}/albums", post(post_album))
        .route("/api/channels/{id}/admins", post(set_admin))
        .route("/api/channels/{id}/admins/{user_id}", delete(remove_admin))
        .route(
            "/api/channels/{id}/pins/{msg_id}",
            post(pin_post).delete(unpin_post),
        )
        .route("/api/channels/{id}/forwards", post(forward_post))
        .route("/api/channels/{id}/invites", post(create_invite))
        .route(
            "/api/channels/{id}/invites/{hash}/revoke",
            post(revoke_invite),
        )
        .route(
            "/api/channels/{id}/join_requests/approve",
            post(approve_join_request),
        )
        .route(
            "/api/users/{id}/channels",
            get(channel_count).post(set_channel_count),
        )
        .route("/api/users/{id}/counters", get(account_counters))
        .route("/api/users/{id}/sessions", get(user_sessions))
        .route("/api/users/{id}/open_link", post(open_link))
        .route("/api/limits", get(rate_limits).post(set_rate_limit))
        .route("/api/limits/{name}", delete(remove_rate_limit))
        .route("/api/auth_keys", post(issue_key))
        .route("/api/auth_keys/register", post(register_key))
        .route("/api/users/{id}/send", post(send_message))
        .route("/api/users/{id}/messages", get(user_messages))
        .route("/api/users/{id}/received", get(user_received))
        .route("/api/phones", get(phones))
        .route("/api/phones/{phone}/code", get(last_code))
        .route("/api/phones/{phone}/notices", get(notices))
        .route("/api/qr_logins", get(qr_logins))
        .route("/api/qr_logins/approve", post(approve_qr))
        .route("/api/faults", get(list_faults).post(add_fault))
        .route("/api/faults", delete(clear_faults))
        .route("/api/faults/drop_connections", post(drop_connections))
        .route("/api/faults/latency", post(set_latency))
        .route("/api/counters", get(counters))
        .route("/api/files/{file_id}", get(file))
        .with_state(handle)
}

fn error_response(e: Error) -> Response {
    let (status, code) = match &e {
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found".to_string()),
        Error::Rejected(r) => (StatusCode::BAD_REQUEST, r.name.to_ascii_lowercase()),
        Error::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input".to_string()),
        Error::Bind { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal".to_string()),
    };
    (
        status,
        Json(json!({"error": {"code": code, "message": e.to_string()}})),
    )
        .into_response()
}

fn reply<T: serde::Serialize>(r: Result<T, Error>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error_response(e),
    }
}

async fn list_users(State(h): State<Handle>) -> Response {
    Json(h.users()).into_response()
}

async fn create_user(State(h): State<Handle>, Json(b): Json<NewUser>) -> Response {
    reply(h.create_user(b))
}

async fn create_bot(State(h): State<Handle>, Json(b): Json<NewBot>) -> Response {
    reply(h.create_bot(b))
}

async fn create_group(State(h): State<Handle>, Json(b): Json<NewGroup>) -> Response {
    reply(h.create_group(b))
}

async fn create_channel(State(h): State<Handle>, Json(b): Json<NewChannel>) -> Response {
    reply(h.create_channel(b))
}

#[derive(Deserialize)]
struct UserRef {
    user_id: UserId,
}

async fn join_channel(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<UserRef>,
) -> Response {
    reply(
        h.join_channel(b.user_id, crate::ChannelId(id))
            .map(|_| json!({"ok": true})),
    )
}

async fn post_to_channel(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<OutgoingMessage>,
) -> Response {
    reply(h.post_to_channel(crate::ChannelId(id), b))
}

async fn channel(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    reply(h.channel(ChannelId(id)))
}

async fn channel_options(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<ChannelOptions>,
) -> Response {
    reply(h.set_channel_options(ChannelId(id), b))
}

async fn channel_posts(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    reply(h.channel_posts(ChannelId(id)))
}

#[derive(Deserialize)]
struct EditBody {
    text: String,
    #[serde(default)]
    entities: Option<Vec<Entity>>,
}

async fn edit_post(
    State(h): State<Handle>,
    Path((id, msg_id)): Path<(i64, i32)>,
    Json(b): Json<EditBody>,
) -> Response {
    reply(
        h.edit_post(ChannelId(id), msg_id, b.text, b.entities)
            .map(|_| json!({"ok": true})),
    )
}

#[derive(Deserialize)]
struct AdminBody {
    user_id: i64,
    #[serde(default)]
    rights: AdminRights,
}

async fn set_admin(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<AdminBody>,
) -> Response {
    reply(h.set_channel_admin(ChannelId(id), UserId(b.user_id), Some(b.rights)))
}

async fn remove_admin(State(h): State<Handle>, Path((id, user)): Path<(i64, i64)>) -> Response {
    reply(h.set_channel_admin(ChannelId(id), UserId(user), None))
}

async fn pin_post(State(h): State<Handle>, Path((id, msg_id)): Path<(i64, i32)>) -> Response {
    reply(
        h.pin_post(ChannelId(id), msg_id, true)
            .map(|_| json!({"ok": true})),
    )
}

async fn unpin_post(State(h): State<Handle>, Path((id, msg_id)): Path<(i64, i32)>) -> Response {
    reply(
        h.pin_post(ChannelId(id), msg_id, false)
            .map(|_| json!({"ok": true})),
    )
}

async fn delete_post(State(h): State<Handle>, Path((id, msg_id)): Path<(i64, i32)>) -> Response {
    reply(
        h.delete_posts(ChannelId(id), &[msg_id])
            .and_then(|gone| match gone.is_empty() {
                true => Err(Error::NotFound(format!("post {msg_id}"))),
                false => Ok(json!({"ok": true})),
            }),
    )
}

#[derive(Deserialize)]
struct AlbumBody {
    items: Vec<OutgoingMessage>,
}

async fn post_album(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<AlbumBody>,
) -> Response {
    reply(h.post_album(ChannelId(id), b.items))
}

#[derive(Deserialize)]
struct ForwardBody {
    from_channel: i64,
    id: i32,
}

async fn forward_post(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<ForwardBody>,
) -> Response {
    reply(h.forward_post(ChannelId(id), ChannelId(b.from_channel), b.id))
}

async fn create_invite(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<NewInvite>,
) -> Response {
    reply(h.create_invite(ChannelId(id), b))
}

async fn revoke_invite(State(h): State<Handle>, Path((id, hash)): Path<(i64, String)>) -> Response {
    reply(
        h.revoke_invite(ChannelId(id), &hash)
            .map(|_| json!({"ok": true})),
    )
}

async fn approve_join_request(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<UserRef>,
) -> Response {
    reply(
        h.approve_join_request(ChannelId(id), b.user_id)
            .map(|_| json!({"ok": true})),
    )
}

async fn channel_count(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    reply(h.channel_count(UserId(id)))
}

#[derive(Deserialize)]
struct CountBody {
    count: usize,
}

async fn set_channel_count(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<CountBody>,
) -> Response {
    reply(h.set_channel_count(UserId(id), b.count))
}

async fn account_counters(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    Json(h.account_counters(UserId(id))).into_response()
}

async fn user_sessions(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    Json(json!({"sessions": h.sessions(UserId(id))})).into_response()
}

#[derive(Deserialize)]
struct LinkBody {
    link: String,
}

async fn open_link(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<LinkBody>,
) -> Response {
    reply(h.open_bot_link(UserId(id), &b.link))
}

async fn rate_limits(State(h): State<Handle>) -> Response {
    Json(h.rate_limits()).into_response()
}

async fn set_rate_limit(State(h): State<Handle>, Json(b): Json<RateLimit>) -> Response {
    reply(h.set_rate_limit(b).map(|_| json!({"ok": true})))
}

async fn remove_rate_limit(State(h): State<Handle>, Path(name): Path<String>) -> Response {
    reply(h.remove_rate_limit(&name).map(|_| json!({"ok": true})))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn issue_key(State(h): State<Handle>) -> Response {
    let key = h.issue_auth_key();
    Json(json!({
        "auth_key": hex(&key),
        "auth_key_id": crate::crypto::auth_key_id(&key).to_string(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct RegisterKey {
    user_id: UserId,
    /// 512 hex characters.
    auth_key: String,
}

fn parse_key(s: &str) -> Result<[u8; 256], Error> {
    let s = s.trim();
    if s.len() != 512 {
        return Err(Error::Invalid("auth_key must be 512 hex characters".into()));
    }
    let mut key = [0u8; 256];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16)
            .map_err(|_| Error::Invalid("auth_key is not hex".into()))?;
    }
    Ok(key)
}

async fn register_key(State(h): State<Handle>, Json(b): Json<RegisterKey>) -> Response {
    reply(parse_key(&b.auth_key).and_then(|k| {
        h.register_auth_key(b.user_id, k)?;
        Ok(json!({"auth_key_id": crate::crypto::auth_key_id(&k).to_string()}))
    }))
}

#[derive(Deserialize)]
struct SendBody {
    to: Peer,
    #[serde(flatten)]
    message: OutgoingMessage,
}

async fn send_message(
    State(h): State<Handle>,
    Path(id): Path<i64>,
    Json(b): Json<SendBody>,
) -> Response {
    reply(h.send_message(UserId(id), b.to, b.message))
}

async fn user_messages(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    reply(h.messages(UserId(id)))
}

async fn user_received(State(h): State<Handle>, Path(id): Path<i64>) -> Response {
    reply(h.received_messages(UserId(id)))
}

async fn last_code(State(h): State<Handle>, Path(phone): Path<String>) -> Response {
    match h.last_login_code(&phone) {
        Some(code) => Json(json!({"phone": phone, "code": code})).into_response(),
        None => error_response(Error::NotFound(format!("login code for {phone}"))),
    }
}

async fn notices(State(h): State<Handle>, Path(phone): Path<String>) -> Response {
    Json(h.phone_notices(&phone)).into_response()
}

async fn qr_logins(State(h): State<Handle>) -> Response {
    Json(h.qr_logins()).into_response()
}

#[derive(Deserialize)]
struct ApproveQr {
    user_id: UserId,
    /// base64url token; the newest pending one when absent.
    #[serde(default)]
    token: Option<String>,
}

async fn approve_qr(State(h): State<Handle>, Json(b): Json<ApproveQr>) -> Response {
    let r = match b.token {
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.trim_end_matches('=').as_bytes())
            .map_err(|_| Error::Invalid("token is not base64url".into()))
            .and_then(|tok| h.approve_qr_login(b.user_id, &tok)),
        None => h.approve_latest_qr_login(b.user_id),
    };
    reply(r.map(|_| json!({"ok": true})))
}

async fn list_faults(State(h): State<Handle>) -> Response {
    Json(h.faults()).into_response()
}

async fn add_fault(State(h): State<Handle>, Json(b): Json<FaultRule>) -> Response {
    h.inject_fault(b);
    Json(json!({"ok": true})).into_response()
}

async fn clear_faults(State(h): State<Handle>) -> Response {
    h.clear_faults();
    Json(json!({"ok": true})).into_response()
}

async fn drop_connections(State(h): State<Handle>, Json(b): Json<UserRef>) -> Response {
    let n = h.drop_connections(b.user_id);
    Json(json!({"dropped": n})).into_response()
}

#[derive(Deserialize)]
struct Latency {
    #[serde(default)]
    user_id: Option<UserId>,
    ms: u64,
}

async fn set_latency(State(h): State<Handle>, Json(b): Json<Latency>) -> Response {
    h.set_latency(b.user_id, std::time::Duration::from_millis(b.ms));
    Json(json!({"ok": true})).into_response()
}

async fn counters(State(h): State<Handle>) -> Response {
    Json(h.counters()).into_response()
}

async fn file(State(h): State<Handle>, Path(file_id): Path<String>) -> Response {
    match h.file(&file_id) {
        Some((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => error_response(Error::NotFound(format!("file {file_id}"))),
    }
}

/// Overview for the phones page: every user with phone, codes, notices, recent messages.
async fn phones(State(h): State<Handle>) -> Response {
    let mut list = Vec::new();
    for u in h.users() {
        let Some(phone) = u.phone.clone() else {
            continue;
        };
        if u.id == crate::world::SERVICE_USER {
            continue;
        }
        let received = h.received_messages(u.id).unwrap_or_default();
        let recent: Vec<_> = received.iter().rev().take(15).cloned().collect();
        list.push(json!({
            "user": u,
            "last_code": h.last_login_code(&phone),
            "notices": h.phone_notices(&phone),
            "received": recent,
        }));
    }
    Json(json!({"phones": list, "qr_logins": h.qr_logins()})).into_response()
}

async fn phones_page() -> Html<&'static str> {
    Html(PHONES_HTML)
}

const PHONES_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tgsim — simulated phones</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;background:#eef1f5;color:#1b1f24}
h1{font-size:1.3rem}.grid{display:flex;flex-wrap:wrap;gap:1rem}
.phone{background:#fff;border-radius:18px;box-shadow:0 2px 8px #0002;width:320px;padding:1rem}
.phone h2{font-size:1rem;margin:0 0 .2rem}.num{color:#667;font-size:.85rem}
.code{font-size:1.6rem;letter-spacing:.2rem;font-weight:bold;margin:.4rem 0;color:#2a6}
.msg{border-top:1px solid #eee;padding:.35rem 0;font-size:.85rem;white-space:pre-wrap}
.meta{color:#889;font-size:.72rem}.qr{background:#fff8e1;padding:.6rem;border-radius:10px;margin:.5rem 0}
button{background:#2a7de1;color:#fff;border:0;border-radius:8px;padding:.35rem .7rem;cursor:pointer}
</style></head><body>
<h1>tgsim — simulated phones</h1>
<p>What each simulated account received (login codes included). Pending QR logins can be approved from a phone. A bot's <code>t.me/…?start=…</code> link pasted on a phone is opened there: the phone presses Start, sending the bot <code>/start …</code>.</p>
<div id="qr"></div><div class="grid" id="phones"></div>
<script>
function esc(s){return String(s??'').replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
async function approve(uid,token){
  const r=await fetch('/api/qr_logins/approve',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user_id:uid,token})});
  alert(r.ok?'Approved':'Failed: '+await r.text()); load();
}
async function openLink(uid){
  const input=document.getElementById('link-'+uid);
  const r=await fetch('/api/users/'+uid+'/open_link',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({link:input.value})});
  if(r.ok){input.value='';load();}else{alert('Failed: '+await r.text());}
}
async function load(){
  const focused=document.activeElement&&document.activeElement.id.startsWith('link-');
  if(focused)return;
  const d=await (await fetch('/api/phones')).json();
  const pending=d.qr_logins.filter(q=>!q.approved);
  document.getElementById('phones').innerHTML=d.phones.map(p=>{
    const u=p.user;
    const qr=pending.map(q=>`<div class="qr">QR login request <span class="meta">${esc(q.token.slice(0,10))}…</span><br><button onclick="approve(${u.id},'${q.token}')">Approve on this phone</button></div>`).join('');
    const notes=(p.notices||[]).slice(-3).reverse().map(n=>`<div class="msg"><span class="meta">${n.via} · ${new Date(n.date*1000).toLocaleTimeString()}</span><br>${esc(n.text)}</div>`).join('');
    const msgs=(p.received||[]).map(m=>`<div class="msg"><span class="meta">${esc(m.peer.type)} ${m.peer.id} · ${new Date(m.date*1000).toLocaleTimeString()}</span><br>${esc(m.text)}${m.media?' ['+m.media.kind+']':''}</div>`).join('');
    return `<div class="phone"><h2>${esc(u.first_name)} ${esc(u.last_name||'')}</h2><div class="num">+${esc(u.phone)} · id ${u.id}${u.username?' · @'+esc(u.username):''}</div>
      <div class="code">${p.last_code?esc(p.last_code):'—'}</div>${qr}
      <div class="link"><input id="link-${u.id}" placeholder="https://t.me/…?start=…" size="26"> <button onclick="openLink(${u.id})">Open in Telegram</button></div>${notes}${msgs}</div>`;
  }).join('');
}
load(); setInterval(load,2000);
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_key_rejects_short_and_non_hex() {
        assert!(parse_key("00").is_err());
        assert!(parse_key(&"zz".repeat(256)).is_err());
        assert!(parse_key(&"ab".repeat(256)).is_ok_and(|k| k[0] == 0xab));
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }

    #[test]
    fn send_body_accepts_flattened_message() {
        let v: Value = json!({"to": {"type": "user", "id": 5}, "text": "hi"});
        let b: Result<SendBody, _> = serde_json::from_value(v);
        assert!(b.is_ok_and(|b| b.message.text == "hi" && b.to == Peer::User(UserId(5))));
    }
}
