//! Helpers for end-to-end tests of the live product: connecting a personal account of a tgsim
//! user without an interactive sign-in, the WebSocket as the browser opens it, and waiting for
//! a condition with a deadline.

use crate::accounts::telethon_string;
use crate::app::{Browser, TestApp};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// A WebSocket connection to `/ws`.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `from` writes `text` to `to` (a personal account or a bot) in tgsim.
pub fn writes(app: &TestApp, from: &tgsim::UserInfo, to: &tgsim::UserInfo, text: &str) {
    app.sim
        .send_message(
            from.id,
            tgsim::Peer::User(to.id),
            tgsim::OutgoingMessage::text(text),
        )
        .unwrap_or_else(|e| panic!("tgsim send: {e}"));
}

/// Creates a bot named `username` in tgsim (its token is in the answer).
pub fn sim_bot(app: &TestApp, username: &str) -> tgsim::UserInfo {
    app.sim
        .create_bot(tgsim::NewBot {
            username: username.into(),
            first_name: "Shop".into(),
            token: None,
        })
        .unwrap_or_else(|e| panic!("tgsim bot: {e}"))
}

/// Polls `check` every 50 ms until it returns `Some`, panicking with `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a tgsim user and connects it as a personal account through the import API (as an
/// admin), then waits until the account is `connected`. Returns the tgsim user and the
/// account id.
pub async fn connect_personal_account(
    app: &TestApp,
    admin: &Browser,
    phone: &str,
    first_name: &str,
) -> (tgsim::UserInfo, i64) {
    let user = app
        .sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: first_name.into(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("tgsim user: {e}"));
    let id = connect_user(app, admin, &user).await;
    (user, id)
}

/// Connects an existing tgsim user as a personal account (Telethon session import) and waits
/// until it is connected; the account's id.
pub async fn connect_user(app: &TestApp, admin: &Browser, user: &tgsim::UserInfo) -> i64 {
    let key = app.sim.issue_auth_key();
    app.sim
        .register_auth_key(user.id, key)
        .unwrap_or_else(|e| panic!("tgsim key: {e}"));
    let res = admin
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, key)}),
        )
        .await;
    assert!(res.status().is_success(), "import failed: {}", res.status());
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let id = body["account"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("import answer without an account id: {body}"));
    eventually(20, "the account to connect", || async {
        let list: Value = admin.get("/api/v1/accounts").await.json().await.ok()?;
        let accounts = list["accounts"].as_array()?;
        accounts
            .iter()
            .any(|a| a["id"].as_i64() == Some(id) && a["status"] == "connected")
            .then_some(())
    })
    .await;
    id
}

/// Opens `/ws` with the browser's cookie and the page's origin; `last_event_id` resumes.
pub async fn open_ws(
    app: &TestApp,
    b: &Browser,
    last_event_id: Option<u64>,
) -> Result<Ws, tungstenite::Error> {
    let query = last_event_id.map_or(String::new(), |id| format!("?last_event_id={id}"));
    let url = format!("{}/ws{}", app.url.replace("http://", "ws://"), query);
    let mut req = url.into_client_request()?;
    if let Ok(v) = b.cookie.parse() {
        req.headers_mut().insert("cookie", v);
    }
    if let Ok(v) = app.url.parse() {
        req.headers_mut().insert("origin", v);
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// [`open_ws`] that returns once the server has sent its `hello`: the server subscribes to
/// events and registers the member's presence before it, so an event caused after this
/// returns reaches the socket (right after the handshake it may not yet).
pub async fn open_ws_ready(app: &TestApp, b: &Browser) -> Ws {
    let mut ws = open_ws(app, b, None)
        .await
        .unwrap_or_else(|e| panic!("the WebSocket does not open: {e}"));
    wait_frame(&mut ws, "hello", 5, |_| true).await;
    ws
}

/// The next JSON frame, or `None` if none arrives within `ms`.
pub async fn next_frame(ws: &mut Ws, ms: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Waits for a frame of type `ty` for which `pred` holds, skipping others; panics after
/// `secs`.
pub async fn wait_frame(ws: &mut Ws, ty: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            panic!("no `{ty}` frame within {secs} s");
        }
        let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        if let Some(v) = next_frame(ws, ms).await
            && v["type"] == ty
            && pred(&v)
        {
            return v;
        }
    }
}

/// Collects every frame arriving within `ms`.
pub async fn frames_within(ws: &mut Ws, ms: u64) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return out;
        }
        let ms = u64::try_from(left.as_millis()).unwrap_or(0);
        match next_frame(ws, ms).await {
            Some(v) => out.push(v),
            None => return out,
        }
    }
}

/// Creates a tgsim user (a customer).
pub async fn customer(app: &TestApp, phone: &str, name: &str) -> tgsim::UserInfo {
    app.sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: name.into(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("tgsim user: {e}"))
}

/// The newest page of a chat's messages as `b` sees them (newest first).
pub async fn chat_messages(b: &Browser, chat: i64) -> Vec<Value> {
    let v: Value = b
        .get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .json()
        .await
        .unwrap_or(Value::Null);
    v["messages"].as_array().cloned().unwrap_or_default()
}

/// Waits until a chat titled `title` is in `b`'s list and returns it.
pub async fn chat_titled(b: &Browser, title: &str) -> Value {
    eventually(20, "the chat to appear", || async {
        let list: Value = b.get("/api/v1/chats").await.json().await.ok()?;
        list["chats"]
            .as_array()?
            .iter()
            .find(|c| c["title"] == title)
            .cloned()
    })
    .await
}

/// Posts a text reply to a chat; checks it is accepted and `queued`, returns the message.
pub async fn reply(b: &Browser, chat: i64, text: &str) -> Value {
    let r = b
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            &json!({"text": text}),
        )
        .await;
    assert_eq!(r.status(), 202, "reply refused");
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(v["message"]["status"], "queued");
    v["message"].clone()
}

/// A real PNG of random pixels (incompressible) of at least `min_bytes`, as a phone camera's
/// picture is: a valid image whose size comes from its content.
pub fn noise_png(min_bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let width: u32 = 1024;
    let row = 1 + 3 * width as usize;
    let height = u32::try_from(min_bytes / row + 1).unwrap_or(u32::MAX);
    let mut raw = Vec::with_capacity(row * height as usize);
    for _ in 0..height {
        raw.push(0); // filter: none
        raw.extend(std::iter::repeat_with(|| fastrand::u8(..)).take(row - 1));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
    z.write_all(&raw).unwrap_or_else(|e| panic!("deflate: {e}"));
    let idat = z.finish().unwrap_or_else(|e| panic!("deflate: {e}"));
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(&data);
        png.extend_from_slice(kind);
        png.extend_from_slice(&data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    png
}

/// Uploads `bytes` to `POST /api/v1/files` as the multipart field `file`.
pub async fn upload_file(b: &Browser, name: &str, mime: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap_or_else(|e| panic!("mime {mime}: {e}"));
    b.upload(
        "/api/v1/files",
        reqwest::multipart::Form::new().part("file", part),
    )
    .await
}

/// Replies to a chat with an uploaded file (the answer of [`upload_file`]) and a caption;
/// checks it is accepted and returns the message's id.
pub async fn reply_with_file(b: &Browser, chat: i64, file: &Value, caption: &str) -> i64 {
    let r = b
        .post(
            &format!("/api/v1/chats/{chat}/messages"),
            &json!({"text": caption, "attachment": {
                "file_id": file["file_id"], "kind": file["kind"],
                "file_name": file["file_name"], "mime_type": file["mime_type"]}}),
        )
        .await;
    assert_eq!(r.status(), 202, "reply with a file refused");
    let v: Value = r.json().await.unwrap_or(Value::Null);
    v["message"]["id"].as_i64().unwrap_or_default()
}

/// A tgsim user the personal account `account` (of tgsim user `reader`) has learnt without a
/// private chat: they post in a supergroup both are in, so the account's peer cache holds them
/// with an access hash (as a lead's author is known). Waits until it does.
pub async fn author_known_to(
    app: &TestApp,
    reader: &tgsim::UserInfo,
    account: i64,
    phone: &str,
    name: &str,
) -> tgsim::UserInfo {
    let moderator = customer(app, &format!("{phone}9"), "Mod").await;
    let author = customer(app, phone, name).await;
    let group = app
        .sim
        .create_group(tgsim::NewGroup {
            title: format!("{name}'s group"),
            creator: moderator.id,
            members: vec![reader.id, author.id],
            supergroup: true,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("tgsim group: {e}"));
    app.sim
        .send_message(
            author.id,
            group.peer,
            tgsim::OutgoingMessage::text("Ищу Rust-разработчика, пишите в личку"),
        )
        .unwrap_or_else(|e| panic!("tgsim send: {e}"));
    let accounts = app.running.account_store.clone();
    let author_id = author.id.0;
    eventually(20, "the account to learn the author", || {
        let accounts = accounts.clone();
        async move {
            accounts
                .get_cached_peer(switchboard_domain::AccountId(account), author_id)
                .await
                .ok()
                .flatten()
                .filter(|p| p.access_hash.is_some())
        }
    })
    .await;
    author
}

/// Adds a tgsim bot `@username` named `name` through the API (as an admin) and waits until it
/// is connected.
pub async fn connected_bot(
    app: &TestApp,
    admin: &Browser,
    username: &str,
    name: &str,
) -> tgsim::UserInfo {
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: username.into(),
            first_name: name.into(),
            token: None,
        })
        .unwrap_or_else(|e| panic!("tgsim bot: {e}"));
    let token = bot
        .token
        .clone()
        .unwrap_or_else(|| panic!("tgsim gave @{username} no token"));
    let r = admin.post("/api/v1/bots", &json!({"token": token})).await;
    assert_eq!(r.status(), 201, "adding @{username}");
    let added: Value = r.json().await.unwrap_or(Value::Null);
    let id = added["bot"]["id"].clone();
    eventually(20, "the bot to connect", || async {
        let list: Value = admin.get("/api/v1/bots").await.json().await.ok()?;
        list["bots"]
            .as_array()?
            .iter()
            .any(|b| b["id"] == id && b["status"] == "connected")
            .then_some(())
    })
    .await;
    bot
}

/// The local date and time `secs` seconds from now in UTC, `YYYY-MM-DDTHH:MM:SS`, as a once
/// schedule in the `UTC` zone reads it.
pub fn utc_in(secs: i64) -> String {
    let now = jiff::Timestamp::now();
    let at = now
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or_else(|e| panic!("{secs} s from now: {e}"));
    at.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}
