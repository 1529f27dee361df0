//! The HTTP Bot API (`/bot<token>/<method>`, `/file/bot<token>/<path>`): JSON, form, query and
//! multipart parameters; per-bot update queues delivered by long polling or by webhook (secret
//! header, per-chat order, Telegram's retry schedule); 429 rate limits with `retry_after`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::channels::SendFlags;
use crate::state::Shared;
use crate::world::{
    self, BoxRef, Entity, Media, MediaKind, NewMessage, Peer, RpcError, UserId, World,
};

/// Messages per second a bot may send to one chat (sustained), with a small burst.
const PER_CHAT_RATE: f64 = 1.0;
const PER_CHAT_BURST: f64 = 3.0;
/// Messages per second a bot may send in total.
const PER_BOT_RATE: f64 = 30.0;
/// Messages per minute a bot may send to one group.
const PER_GROUP_PER_MINUTE: f64 = 20.0;

#[derive(Clone, Debug)]
struct PendingUpdate {
    update_id: i64,
    kind: &'static str,
    chat_id: i64,
    payload: Value,
    expires: i32,
    attempts: u32,
    next_attempt: Instant,
    delay: u64,
}

#[derive(Clone, Debug, Default)]
struct Webhook {
    url: String,
    secret: Option<String>,
    allowed_updates: Vec<String>,
    max_connections: i64,
    last_error_date: Option<i32>,
    last_error_message: Option<String>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(cap: f64) -> Self {
        Bucket {
            tokens: cap,
            at: Instant::now(),
        }
    }

    /// Takes one token or returns the seconds to wait.
    fn take(&mut self, rate: f64, cap: f64) -> Result<(), u64> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(cap);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[derive(Default)]
struct BotQueue {
    next_update_id: i64,
    pending: VecDeque<PendingUpdate>,
    webhook: Option<Webhook>,
    allowed_updates: Vec<String>,
    worker: Option<CancellationToken>,
    chat_buckets: HashMap<i64, Bucket>,
    group_buckets: HashMap<i64, Bucket>,
    bot_bucket: Option<Bucket>,
}

/// All bots' update queues.
#[derive(Default)]
pub(crate) struct BotHub {
    queues: Mutex<HashMap<UserId, BotQueue>>,
    notify: Mutex<HashMap<UserId, Arc<Notify>>>,
}

impl BotHub {
    fn notifier(&self, bot: UserId) -> Arc<Notify> {
        self.notify
            .lock()
            .entry(bot)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Queues an update for a bot.
    pub fn enqueue(&self, bot: UserId, kind: &'static str, message: Value) {
        let chat_id = message
            .pointer("/chat/id")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let date = message.get("date").and_then(Value::as_i64).unwrap_or(0) as i32;
        {
            let mut q = self.queues.lock();
            let q = q.entry(bot).or_default();
            let allowed = match &q.webhook {
                Some(h) => &h.allowed_updates,
                None => &q.allowed_updates,
            };
            if !allowed.is_empty() && !allowed.iter().any(|a| a == kind) {
                return;
            }
            if q.next_update_id == 0 {
                q.next_update_id = rand::Rng::gen_range(&mut rand::thread_rng(), 100_000..900_000);
            }
            q.next_update_id += 1;
            let update_id = q.next_update_id;
            q.pending.push_back(PendingUpdate {
                update_id,
                kind,
                chat_id,
                payload: message,
                expires: date + 86_400,
                attempts: 0,
                next_attempt: Instant::now(),
                delay: 0,
            });
        }
        self.notifier(bot).notify_waiters();
    }

    fn check_rate(&self, bot: UserId, chat_id: i64) -> Result<(), u64> {
        let mut q = self.queues.lock();
        let q = q.entry(bot).or_default();
        q.bot_bucket
            .get_or_insert_with(|| Bucket::full(PER_BOT_RATE))
            .take(PER_BOT_RATE, PER_BOT_RATE)?;
        q.chat_buckets
            .entry(chat_id)
            .or_insert_with(|| Bucket::full(PER_CHAT_BURST))
            .take(PER_CHAT_RATE, PER_CHAT_BURST)?;
        if chat_id < 0 {
            q.group_buckets
                .entry(chat_id)
                .or_insert_with(|| Bucket::full(PER_GROUP_PER_MINUTE))
                .take(PER_GROUP_PER_MINUTE / 60.0, PER_GROUP_PER_MINUTE)?;
        }
        Ok(())
    }
}

fn update_json(u: &PendingUpdate) -> Value {
    let mut m = Map::new();
    m.insert("update_id".into(), json!(u.update_id));
    m.insert(u.kind.into(), u.payload.clone());
    Value::Object(m)
}

// ---------- JSON views of the world ----------

fn user_json(u: &world::User) -> Value {
    let mut v = json!({"id": u.id.0, "is_bot": u.bot.is_some(), "first_name": u.first_name});
    if let Some(l) = &u.last_name {
        v["last_name"] = json!(l);
    }
    if let Some(n) = &u.username {
        v["username"] = json!(n);
    }
    if u.bot.is_none() {
        v["language_code"] = json!("en");
    }
    v
}

fn chat_json(w: &World, p: Peer) -> Value {
    match p {
        Peer::User(u) => match w.users.get(&u) {
            Some(u) => {
                let mut v = json!({"id": u.id.0, "type": "private", "first_name": u.first_name});
                if let Some(l) = &u.last_name {
                    v["last_name"] = json!(l);
                }
                if let Some(n) = &u.username {
                    v["username"] = json!(n);
                }
                v
            }
            None => json!({"id": u.0, "type": "private", "first_name": ""}),
        },
        Peer::Chat(c) => {
            let title = w.chats.get(&c).map(|c| c.title.clone()).unwrap_or_default();
            json!({"id": p.bot_api_id(), "type": "group", "title": title})
        }
        Peer::Channel(c) => {
            let ch = w.channels.get(&c);
            let mut v = json!({
                "id": p.bot_api_id(),
                "type": if ch.is_some_and(|c| c.broadcast) { "channel" } else { "supergroup" },
                "title": ch.map(|c| c.title.clone()).unwrap_or_default(),
            });
            if let Some(n) = ch.and_then(|c| c.username.clone()) {
                v["username"] = json!(n);
            }
            v
        }
    }
}

/// Bot API `file_id` for a stored file.
pub(crate) fn file_id_string(id: i64) -> String {
    format!("BQACAgIAAx{id:016x}")
}

fn parse_file_id(s: &str) -> Option<i64> {
    let hex = s.strip_prefix("BQACAgIAAx")?;
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

fn file_path(f: &world::StoredFile) -> String {
    let ext = match f.mime.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "video/mp4" => "mp4",
        "audio/ogg" => "oga",
        "audio/mpeg" => "mp3",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("documents/file_{:016x}.{ext}", f.id)
}

fn media_json(w: &World, media: &Media, v: &mut Value) {
    let Some(f) = w.files.get(&media.file_id) else {
        return;
    };
    let base = json!({
        "file_id": file_id_string(f.id),
        "file_unique_id": f.unique_id,
        "file_size": f.bytes.len(),
    });
    let mut obj = base.clone();
    match media.kind {
        MediaKind::Photo => {
            let (width, height) = f.dims.unwrap_or((800, 600));
            obj["width"] = json!(width);
            obj["height"] = json!(height);
            v["photo"] = json!([obj]);
        }
        MediaKind::Document => {
            if let Some(n) = &f.name {
                obj["file_name"] = json!(n);
            }
            obj["mime_type"] = json!(f.mime);
            v["document"] = obj;
        }
        MediaKind::Video => {
            let (width, height) = f.dims.unwrap_or((640, 360));
            obj["width"] = json!(width);
            obj["height"] = json!(height);
            obj["duration"] = json!(f.duration.unwrap_or(1));
            obj["mime_type"] = json!(f.mime);
            if let Some(n) = &f.name {
                obj["file_name"] = json!(n);
            }
            v["video"] = obj;
        }
        MediaKind::Voice => {
            obj["duration"] = json!(f.duration.unwrap_or(1));
            obj["mime_type"] = json!(f.mime);
            v["voice"] = obj;
        }
        MediaKind::Audio => {
            obj["duration"] = json!(f.duration.unwrap_or(1));
            obj["mime_type"] = json!(f.mime);
            if let Some(n) = &f.name {
                obj["file_name"] = json!(n);
            }
            v["audio"] = obj;
        }
    }
}

fn message_value(w: &World, owner: BoxRef, m: &world::Message, depth: u8) -> Value {
    let mut v = json!({
        "message_id": m.id,
        "date": m.date,
        "chat": chat_json(w, m.peer),
    });
    match m.from.and_then(|f| w.users.get(&f)) {
        Some(u) => v["from"] = user_json(u),
        None => {
            if let Peer::Channel(_) = m.peer {
                v["sender_chat"] = chat_json(w, m.peer);
            }
        }
    }
    let (text_key, ent_key) = if m.media.is_some() {
        ("caption", "caption_entities")
    } else {
        ("text", "entities")
    };
    if !m.text.is_empty() {
        v[text_key] = json!(m.text);
    }
    if !m.entities.is_empty() {
        v[ent_key] = serde_json::to_value(&m.entities).unwrap_or(Value::Null);
    }
    if let Some(media) = &m.media {
        media_json(w, media, &mut v);
    }
    if let Some(d) = m.edit_date {
        v["edit_date"] = json!(d);
    }
    if let Some(g) = m.grouped_id {
        v["media_group_id"] = json!(g.to_string());
    }
    if let Some(f) = &m.fwd {
        v["forward_origin"] = match f.from {
            Some(Peer::User(u)) => json!({"type": "user", "date": f.date,
                "sender_user": w.users.get(&u).map(user_json).unwrap_or(Value::Null)}),
            Some(p @ Peer::Channel(_)) => json!({"type": "channel", "date": f.date,
                "chat": chat_json(w, p), "message_id": f.channel_post.unwrap_or(0)}),
            _ => json!({"type": "hidden_user", "date": f.date, "sender_user_name": "Hidden"}),
        };
    }
    if depth == 0
        && let Some(r) = m.reply_to
    {
        let target = match owner {
            BoxRef::Channel(c) => w.channels.get(&c).and_then(|ch| ch.mbox.messages.get(&r)),
            BoxRef::User(u) => w.users.get(&u).and_then(|u| u.mbox.messages.get(&r)),
        };
        if let Some(t) = target {
            v["reply_to_message"] = message_value(w, owner, t, 1);
        }
    }
    v
}

/// The Bot API JSON of a message in a box, from `bot`'s point of view.
pub(crate) fn message_json(w: &World, bx: BoxRef, id: i32) -> Option<Value> {
    let m = match bx {
        BoxRef::User(u) => w.users.get(&u)?.mbox.messages.get(&id)?,
        BoxRef::Channel(c) => w.channels.get(&c)?.mbox.messages.get(&id)?,
    };
    Some(message_value(w, bx, m, 0))
}

// ---------- HTTP ----------

struct ApiError {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

/// Largest request the Bot API reads: files up to 50 MB are uploaded with multipart, as on
/// Telegram, plus the framing.
pub(crate) const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024 + 64 * 1024;

impl ApiError {
    /// A body that is too large or not multipart as announced: Telegram answers
    /// `413 Request Entity Too Large` for the first.
    fn multipart(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                code: 413,
                description: "Request Entity Too Large".into(),
                retry_after: None,
            }
        } else {
            ApiError::bad(format!("bad multipart: {e}"))
        }
    }

    fn bad(d: impl Into<String>) -> Self {
        ApiError {
            code: 400,
            description: format!("Bad Request: {}", d.into()),
            retry_after: None,
        }
    }
}

impl From<RpcError> for ApiError {
    fn from(e: RpcError) -> Self {
        let d = match e.name.as_str() {
            "MESSAGE_EMPTY" => "message text is empty".to_string(),
            "MESSAGE_TOO_LONG" => "message is too long".to_string(),
            "MESSAGE_ID_INVALID" => "message to edit not found".to_string(),
            "MESSAGE_NOT_MODIFIED" => "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message".to_string(),
            "PEER_ID_INVALID" | "CHANNEL_INVALID" => "chat not found".to_string(),
            "CHAT_WRITE_FORBIDDEN" => {
                return ApiError {
                    code: 403,
                    description: "Forbidden: bot is not a member of the chat".into(),
                    retry_after: None,
                };
            }
            other => other.to_string(),
        };
        ApiError::bad(d)
    }
}

fn ok(result: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"ok": true, "result": result})),
    )
        .into_response()
}

fn err(e: ApiError) -> Response {
    let mut body = json!({"ok": false, "error_code": e.code, "description": e.description});
    if let Some(r) = e.retry_after {
        body["parameters"] = json!({"retry_after": r});
    }
    (
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

/// An uploaded file part of a multipart request.
struct Upload {
    name: Option<String>,
    mime: Option<String>,
    bytes: Vec<u8>,
}

struct Params {
    values: Map<String, Value>,
    files: HashMap<String, Upload>,
}

impl Params {
    fn str(&self, k: &str) -> Option<String> {
        match self.values.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn i64(&self, k: &str) -> Option<i64> {
        match self.values.get(k)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn bool(&self, k: &str) -> bool {
        match self.values.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            _ => false,
        }
    }

    /// A JSON-valued parameter that may arrive as a JSON string (form/multipart).
    fn json(&self, k: &str) -> Option<Value> {
        match self.values.get(k)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }
}

async fn read_params(req: Request) -> Result<Params, ApiError> {
    let mut values = Map::new();
    if let Some(q) = req.uri().query() {
        for (k, v) in url_pairs(q) {
            values.insert(k, Value::String(v));
        }
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut files = HashMap::new();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad(format!("bad multipart: {e}")))?;
        while let Some(field) = mp.next_field().await.map_err(ApiError::multipart)? {
            let Some(name) = field.name().map(str::to_string) else {
                continue;
            };
            let file_name = field.file_name().map(str::to_string);
            let mime = field.content_type().map(str::to_string);
            let data = field.bytes().await.map_err(ApiError::multipart)?;
            if file_name.is_some() {
                files.insert(
                    name,
                    Upload {
                        name: file_name,
                        mime,
                        bytes: data.to_vec(),
                    },
                );
            } else {
                values.insert(name, Value::String(String::from_utf8_lossy(&data).into()));
            }
        }
    } else {
        let body: Bytes = axum::body::to_bytes(req.into_body(), MAX_REQUEST_BYTES)
            .await
            .map_err(|_| ApiError::bad("request body too large"))?;
        if ctype.starts_with("application/json") && !body.is_empty() {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(m)) => values.extend(m),
                Ok(_) => {}
                Err(_) => return Err(ApiError::bad("can't parse JSON object")),
            }
        } else if !body.is_empty() {
            for (k, v) in url_pairs(&String::from_utf8_lossy(&body)) {
                values.insert(k, Value::String(v));
            }
        }
    }
    Ok(Params { values, files })
}

fn url_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Entry point for every Bot API request (`/bot…` and `/file/bot…`).
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return download(&shared, rest);
    }
    let Some(rest) = path.strip_prefix("/bot") else {
        return err(ApiError {
            code: 404,
            description: "Not Found".into(),
            retry_after: None,
        });
    };
    let Some((token, method)) = rest.split_once('/') else {
        return err(ApiError {
            code: 404,
            description: "Not Found".into(),
            retry_after: None,
        });
    };
    let token = percent_decode(token);
    let Some(bot) = shared.world.lock().bot_by_token(&token) else {
        return err(ApiError {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
        });
    };
    let method = method.to_string();
    *shared
        .bot_calls
        .lock()
        .entry(bot.0.to_string())
        .or_default()
        .entry(method.clone())
        .or_default() += 1;
    let params = match read_params(req).await {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    debug!(bot = bot.0, method, "bot api call");
    let lose_answer = match injected_fault(&shared, bot, &method) {
        Some(Injected::Answer(e)) => return err(e),
        Some(Injected::LoseAnswer) => true,
        None => false,
    };
    let answer = match call(&shared, bot, &method.to_ascii_lowercase(), params).await {
        Ok(v) => ok(v),
        Err(e) => err(e),
    };
    if lose_answer {
        debug!(bot = bot.0, method, "answer lost by an injected fault");
        return lost_answer();
    }
    answer
}

/// What an injected fault does to a Bot API call.
enum Injected {
    /// Answer with this error instead of carrying the call out.
    Answer(ApiError),
    /// Carry the call out, then lose the answer.
    LoseAnswer,
}

/// Response headers, then a broken connection instead of the body.
fn lost_answer() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("answer lost"))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// A fault rule for `bot.<method>` (and this bot, or any) answers the call: `rpc_error` with
/// its code and message as the description, `flood_wait` with 429 and `retry_after`;
/// `lose_answer` lets the call happen and loses its answer.
fn injected_fault(shared: &Shared, bot: UserId, method: &str) -> Option<Injected> {
    let name = format!("bot.{method}");
    if !shared
        .faults
        .lock()
        .iter()
        .any(|f| f.method.as_deref() == Some(name.as_str()))
    {
        return None;
    }
    Some(match shared.take_fault(Some(bot), &name)? {
        crate::state::FaultKind::FloodWait { seconds } => Injected::Answer(ApiError {
            code: 429,
            description: format!("Too Many Requests: retry after {seconds}"),
            retry_after: Some(u64::from(seconds)),
        }),
        crate::state::FaultKind::RpcError { code, message } => Injected::Answer(ApiError {
            code: u16::try_from(code).unwrap_or(400),
            description: message,
            retry_after: None,
        }),
        crate::state::FaultKind::LoseAnswer => Injected::LoseAnswer,
    })
}

fn download(shared: &Shared, rest: &str) -> Response {
    let Some((token, path)) = rest.split_once('/') else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let w = shared.world.lock();
    if w.bot_by_token(&percent_decode(token)).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let id = path
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_prefix("file_"))
        .and_then(|f| f.split('.').next())
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map(|v| v as i64);
    match id.and_then(|id| w.files.get(&id)) {
        Some(f) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, f.mime.clone())],
            f.bytes.as_ref().clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn resolve_chat(w: &World, p: &Params) -> Result<Peer, ApiError> {
    if let Some(id) = p.i64("chat_id") {
        return Ok(Peer::from_bot_api_id(id));
    }
    match p.str("chat_id") {
        Some(s) if s.starts_with('@') => w
            .resolve_username(&s)
            .ok_or_else(|| ApiError::bad("chat not found")),
        Some(_) => Err(ApiError::bad("chat not found")),
        None => Err(ApiError::bad("chat_id is empty")),
    }
}

fn entities_param(p: &Params, key: &str) -> Vec<Entity> {
    p.json(key)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Text and entities of `text_key`, honouring `parse_mode` (HTML) or explicit entities.
fn formatted(
    p: &Params,
    text_key: &str,
    entities_key: &str,
) -> Result<(String, Vec<Entity>), ApiError> {
    let text = p.str(text_key).unwrap_or_default();
    match p.str("parse_mode").as_deref() {
        Some(m) if m.eq_ignore_ascii_case("html") => {
            crate::formatting::parse_html(&text).map_err(ApiError::bad)
        }
        _ => Ok((text, entities_param(p, entities_key))),
    }
}

fn reply_param(p: &Params) -> Option<i32> {
    p.json("reply_parameters")
        .and_then(|v| v.get("message_id").and_then(Value::as_i64))
        .or_else(|| p.i64("reply_to_message_id"))
        .map(|v| v as i32)
}

async fn call(
    shared: &Arc<Shared>,
    bot: UserId,
    method: &str,
    p: Params,
) -> Result<Value, ApiError> {
    match method {
        "getme" => {
            let w = shared.world.lock();
            let u = w
                .users
                .get(&bot)
                .ok_or_else(|| ApiError::bad("bot not found"))?;
            let mut v = user_json(u);
            // Every boolean getMe returns as of Bot API 10.3.
            for (k, val) in [
                ("can_join_groups", true),
                ("can_read_all_group_messages", false),
                ("supports_inline_queries", false),
                ("can_connect_to_business", false),
                ("has_main_web_app", false),
                ("allows_users_to_create_topics", false),
                ("can_manage_bots", false),
                ("has_topics_enabled", false),
                ("supports_guest_queries", false),
                ("supports_join_request_queries", false),
            ] {
                v[k] = json!(val);
            }
            Ok(v)
        }
        "logout" | "close" => Ok(json!(true)),
        "setwebhook" => set_webhook(shared, bot, &p),
        "deletewebhook" => {
            let mut q = shared.bots.queues.lock();
            let q = q.entry(bot).or_default();
            q.webhook = None;
            if let Some(t) = q.worker.take() {
                t.cancel();
            }
            if p.bool("drop_pending_updates") {
                q.pending.clear();
            }
            Ok(json!(true))
        }
        "getwebhookinfo" => {
            let q = shared.bots.queues.lock();
            let q = q.get(&bot);
            let pending = q.map(|q| q.pending.len()).unwrap_or(0);
            let mut v = json!({"url": "", "has_custom_certificate": false, "pending_update_count": pending});
            if let Some(h) = q.and_then(|q| q.webhook.as_ref()) {
                v["url"] = json!(h.url);
                v["max_connections"] = json!(h.max_connections);
                if !h.allowed_updates.is_empty() {
                    v["allowed_updates"] = json!(h.allowed_updates);
                }
                if let Some(d) = h.last_error_date {
                    v["last_error_date"] = json!(d);
                }
                if let Some(m) = &h.last_error_message {
                    v["last_error_message"] = json!(m);
                }
                v["ip_address"] = json!("127.0.0.1");
            }
            Ok(v)
        }
        "getupdates" => get_updates(shared, bot, &p).await,
        "sendmessage" => {
            let (text, entities) = formatted(&p, "text", "entities")?;
            if text.is_empty() {
                return Err(ApiError::bad("message text is empty"));
            }
            let msg = NewMessage {
                text,
                entities,
                reply_to: reply_param(&p),
                flags: send_flags(&p),
                ..Default::default()
            };
            send(shared, bot, &p, msg)
        }
        "sendphoto" => send_media(shared, bot, &p, "photo", MediaKind::Photo),
        "senddocument" => send_media(shared, bot, &p, "document", MediaKind::Document),
        "sendvideo" => send_media(shared, bot, &p, "video", MediaKind::Video),
        "sendvoice" => send_media(shared, bot, &p, "voice", MediaKind::Voice),
        "sendaudio" => send_media(shared, bot, &p, "audio", MediaKind::Audio),
        "sendmediagroup" => send_media_group(shared, bot, &p),
        "pinchatmessage" => pin(shared, bot, &p, true),
        "unpinchatmessage" => pin(shared, bot, &p, false),
        "editmessagecaption" => {
            let mut w = shared.world.lock();
            let peer = resolve_chat(&w, &p)?;
            let id = p
                .i64("message_id")
                .ok_or_else(|| ApiError::bad("message identifier is not specified"))?
                as i32;
            let (caption, entities) = formatted(&p, "caption", "caption_entities")?;
            if !has_media(&w, bot, peer, id) {
                return Err(ApiError::bad("there is no caption in the message to edit"));
            }
            let (bx, id, effects) = w
                .edit_message(bot, peer, id, Some(caption), Some(entities), None)
                .map_err(edit_error)?;
            shared.dispatch(&w, effects);
            message_json(&w, bx, id).ok_or_else(|| ApiError::bad("message not found"))
        }
        "editmessagetext" => {
            let mut w = shared.world.lock();
            let peer = resolve_chat(&w, &p)?;
            let id = p
                .i64("message_id")
                .ok_or_else(|| ApiError::bad("message identifier is not specified"))?
                as i32;
            let (text, entities) = formatted(&p, "text", "entities")?;
            if text.is_empty() {
                return Err(ApiError::bad("message text is empty"));
            }
            let entities = Some(entities);
            if has_media(&w, bot, peer, id) {
                return Err(ApiError::bad("there is no text in the message to edit"));
            }
            let (bx, id, effects) = w
                .edit_message(bot, peer, id, Some(text), entities, None)
                .map_err(edit_error)?;
            shared.dispatch(&w, effects);
            message_json(&w, bx, id).ok_or_else(|| ApiError::bad("message not found"))
        }
        "deletemessage" => {
            let mut w = shared.world.lock();
            let peer = resolve_chat(&w, &p)?;
            let id = p
                .i64("message_id")
                .ok_or_else(|| ApiError::bad("message identifier is not specified"))?
                as i32;
            let channel = match peer {
                Peer::Channel(c) => Some(c),
                _ => None,
            };
            let (ev, effects) =
                w.delete_messages(bot, channel, &[id], None).map_err(|e| {
                    match e.name.as_str() {
                        "MESSAGE_DELETE_FORBIDDEN" => ApiError::bad("message can't be deleted"),
                        _ => ApiError::from(e),
                    }
                })?;
            shared.dispatch(&w, effects);
            if ev.is_none() {
                return Err(ApiError::bad("message to delete not found"));
            }
            Ok(json!(true))
        }
        "getfile" => {
            let fid = p
                .str("file_id")
                .ok_or_else(|| ApiError::bad("file_id is empty"))?;
            let w = shared.world.lock();
            let f = parse_file_id(&fid)
                .and_then(|id| w.files.get(&id))
                .ok_or_else(|| ApiError::bad("invalid file_id"))?;
            Ok(json!({
                "file_id": fid,
                "file_unique_id": f.unique_id,
                "file_size": f.bytes.len(),
                "file_path": file_path(f),
            }))
        }
        "answercallbackquery" => {
            if p.str("callback_query_id").is_none() {
                return Err(ApiError::bad(
                    "query is too old and response timeout expired or query ID is invalid",
                ));
            }
            Ok(json!(true))
        }
        "getchat" => {
            let w = shared.world.lock();
            let peer = resolve_chat(&w, &p)?;
            get_chat_json(&w, bot, peer)
        }
        "getchatmember" => {
            let w = shared.world.lock();
            let peer = resolve_chat(&w, &p)?;
            get_chat_json(&w, bot, peer)?;
            let user = UserId(
                p.i64("user_id")
                    .ok_or_else(|| ApiError::bad("user_id is empty"))?,
            );
            let (creator, member) = match peer {
                Peer::Channel(c) => w
                    .channels
                    .get(&c)
                    .map(|ch| (ch.creator == Some(user), ch.members.contains(&user)))
                    .unwrap_or_default(),
                Peer::Chat(c) => w
                    .chats
                    .get(&c)
                    .map(|g| (g.creator == user, g.members.contains(&user)))
                    .unwrap_or_default(),
                Peer::User(u) => (false, u == user || u == bot),
            };
            let admin = match peer {
                Peer::Channel(c) => w
                    .channels
                    .get(&c)
                    .and_then(|ch| ch.posting.admins.get(&user).copied()),
                _ => None,
            };
            let status = if creator {
                "creator"
            } else if admin.is_some() {
                "administrator"
            } else if member {
                "member"
            } else {
                "left"
            };
            let mut v = json!({"status": status, "user": {"id": user.0}});
            if let Some(r) = admin {
                v["can_post_messages"] = json!(r.post_messages);
                v["can_edit_messages"] = json!(r.edit_messages);
                v["can_delete_messages"] = json!(r.delete_messages);
                v["can_pin_messages"] = json!(r.pin_messages);
            }
            Ok(v)
        }
        _ => Err(ApiError {
            code: 404,
            description: "Not Found: method not found".into(),
            retry_after: None,
        }),
    }
}

/// Whether message `id` of `peer` (as `bot` sees it) carries media.
fn has_media(w: &World, bot: UserId, peer: Peer, id: i32) -> bool {
    let m = match peer {
        Peer::Channel(c) => w.channels.get(&c).and_then(|ch| ch.mbox.messages.get(&id)),
        _ => w.users.get(&bot).and_then(|u| u.mbox.messages.get(&id)),
    };
    m.is_some_and(|m| m.media.is_some())
}

fn edit_error(e: RpcError) -> ApiError {
    match e.name.as_str() {
        "MESSAGE_AUTHOR_REQUIRED" => ApiError::bad("message can't be edited"),
        _ => ApiError::from(e),
    }
}

/// `getChat`: a chat the bot is in (Telegram answers "chat not found" for one it is not in,
/// unless it is public).
fn get_chat_json(w: &World, bot: UserId, peer: Peer) -> Result<Value, ApiError> {
    let missing = || ApiError::bad("chat not found");
    let id = peer.bot_api_id();
    match peer {
        Peer::Channel(c) => {
            let ch = w.channels.get(&c).ok_or_else(missing)?;
            let visible =
                ch.members.contains(&bot) || ch.creator == Some(bot) || ch.username.is_some();
            if !visible {
                return Err(missing());
            }
            let kind = if ch.broadcast {
                "channel"
            } else {
                "supergroup"
            };
            let mut v = json!({"id": id, "type": kind, "title": ch.title});
            if let Some(u) = &ch.username {
                v["username"] = json!(u);
            }
            Ok(v)
        }
        Peer::Chat(c) => {
            let g = w.chats.get(&c).ok_or_else(missing)?;
            if !g.members.contains(&bot) {
                return Err(missing());
            }
            Ok(json!({"id": id, "type": "group", "title": g.title}))
        }
        Peer::User(u) => {
            let user = w.users.get(&u).ok_or_else(missing)?;
            Ok(json!({"id": id, "type": "private", "first_name": user.first_name}))
        }
    }
}

fn send(shared: &Arc<Shared>, bot: UserId, p: &Params, msg: NewMessage) -> Result<Value, ApiError> {
    let mut w = shared.world.lock();
    let peer = resolve_chat(&w, p)?;
    check_can_post(&w, bot, peer)?;
    rate_checked(shared, bot, peer)?;
    let (bx, id, effects) = w
        .send_message(bot, peer, msg, None, None)
        .map_err(|e| rights_error(&w, peer, e))?;
    shared.dispatch(&w, effects);
    message_json(&w, bx, id).ok_or_else(|| ApiError::bad("message not found"))
}

fn send_media(
    shared: &Arc<Shared>,
    bot: UserId,
    p: &Params,
    field: &str,
    kind: MediaKind,
) -> Result<Value, ApiError> {
    let file_id = stored_file(shared, p, p.files.get(field), p.str(field), field, kind)?;
    let (caption, caption_entities) = formatted(p, "caption", "caption_entities")?;
    let msg = NewMessage {
        text: caption,
        entities: caption_entities,
        reply_to: reply_param(p),
        media: Some(Media { kind, file_id }),
        flags: send_flags(p),
        ..Default::default()
    };
    send(shared, bot, p, msg)
}

/// The file a media parameter names: an uploaded part, a known `file_id`, or
/// `attach://<part>`.
fn stored_file(
    shared: &Arc<Shared>,
    p: &Params,
    upload: Option<&Upload>,
    reference: Option<String>,
    field: &str,
    kind: MediaKind,
) -> Result<i64, ApiError> {
    let default_mime = match kind {
        MediaKind::Photo => "image/jpeg",
        MediaKind::Video => "video/mp4",
        MediaKind::Voice => "audio/ogg",
        MediaKind::Audio => "audio/mpeg",
        MediaKind::Document => "application/octet-stream",
    };
    let store = |up: &Upload| {
        let mime = match (&up.mime, kind) {
            (Some(m), MediaKind::Document | MediaKind::Audio)
                if m != "application/octet-stream" =>
            {
                m.clone()
            }
            _ => default_mime.to_string(),
        };
        let dims = match kind {
            MediaKind::Photo => Some((800, 600)),
            MediaKind::Video => Some((640, 360)),
            _ => None,
        };
        let duration = p.i64("duration").map(|d| d as i32);
        shared.world.lock().store_file(
            up.bytes.clone(),
            &mime,
            up.name.as_deref(),
            dims,
            duration.or(
                matches!(kind, MediaKind::Video | MediaKind::Voice | MediaKind::Audio).then_some(1),
            ),
        )
    };
    if let Some(up) = upload {
        return Ok(store(up));
    }
    let Some(s) = reference else {
        return Err(ApiError::bad(format!("there is no {field} in the request")));
    };
    if let Some(id) = parse_file_id(&s).filter(|id| shared.world.lock().files.contains_key(id)) {
        return Ok(id);
    }
    if let Some(name) = s.strip_prefix("attach://") {
        let up = p
            .files
            .get(name)
            .ok_or_else(|| ApiError::bad("wrong remote file identifier specified"))?;
        return Ok(store(up));
    }
    Err(ApiError::bad(
        "wrong remote file identifier specified: Wrong character in the string",
    ))
}

/// `disable_notification` and the link preview switches (`link_preview_options.is_disabled`,
/// the older `disable_web_page_preview`).
fn send_flags(p: &Params) -> SendFlags {
    SendFlags {
        silent: p.bool("disable_notification"),
        no_webpage: p.bool("disable_web_page_preview")
            || p.json("link_preview_options")
                .and_then(|v| v.get("is_disabled").and_then(Value::as_bool))
                .unwrap_or(false),
    }
}

/// `sendMediaGroup`: 2–10 photos and videos, or only documents, posted as one album (one
/// `grouped_id`); answers the array of sent messages. Each item counts against the rate
/// limits as one message, as on Telegram.
fn send_media_group(shared: &Arc<Shared>, bot: UserId, p: &Params) -> Result<Value, ApiError> {
    let items = match p.json("media") {
        Some(Value::Array(items)) => items,
        _ => return Err(ApiError::bad("can't parse media JSON object")),
    };
    if items.len() < 2 {
        return Err(ApiError::bad(
            "there must be at least 2 media in a media group",
        ));
    }
    if items.len() > 10 {
        return Err(ApiError::bad("too many messages to send as an album"));
    }
    let mut messages = Vec::new();
    let grouped_id: i64 = rand::random::<i64>().abs().max(1);
    let mut documents = 0;
    for item in &items {
        let kind = match item.get("type").and_then(Value::as_str) {
            Some("photo") => MediaKind::Photo,
            Some("video") => MediaKind::Video,
            Some("document") => {
                documents += 1;
                MediaKind::Document
            }
            Some("audio") => MediaKind::Audio,
            _ => {
                return Err(ApiError::bad(
                    "can't parse InputMedia: media type is invalid",
                ));
            }
        };
        let reference = item
            .get("media")
            .and_then(Value::as_str)
            .map(str::to_string);
        let file_id = stored_file(shared, p, None, reference, "media", kind)?;
        let caption = item
            .get("caption")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let entities = item
            .get("caption_entities")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        messages.push(NewMessage {
            text: caption,
            entities,
            reply_to: reply_param(p),
            media: Some(Media { kind, file_id }),
            grouped_id: Some(grouped_id),
            flags: send_flags(p),
            ..Default::default()
        });
    }
    if documents != 0 && documents != items.len() {
        return Err(ApiError::bad(
            "document can't be mixed with other media types",
        ));
    }
    let mut w = shared.world.lock();
    let peer = resolve_chat(&w, p)?;
    check_can_post(&w, bot, peer)?;
    for _ in &messages {
        rate_checked(shared, bot, peer)?;
    }
    let mut out = Vec::new();
    for msg in messages {
        let (bx, id, effects) = w
            .send_message(bot, peer, msg, None, None)
            .map_err(|e| rights_error(&w, peer, e))?;
        shared.dispatch(&w, effects);
        out.push(message_json(&w, bx, id).ok_or_else(|| ApiError::bad("message not found"))?);
    }
    Ok(Value::Array(out))
}

/// The Bot API's words for what a bot may not do in a chat.
fn rights_error(w: &World, peer: Peer, e: RpcError) -> ApiError {
    let kind = match peer {
        Peer::Channel(c) if w.channels.get(&c).is_some_and(|ch| ch.broadcast) => "channel",
        Peer::Channel(_) => "supergroup",
        Peer::Chat(_) => "group",
        Peer::User(_) => "private",
    };
    match e.name.as_str() {
        "CHAT_WRITE_FORBIDDEN" => ApiError {
            code: 403,
            description: format!("Forbidden: bot is not a member of the {kind} chat"),
            retry_after: None,
        },
        "CHAT_ADMIN_REQUIRED" => {
            ApiError::bad(format!("need administrator rights in the {kind} chat"))
        }
        _ => ApiError::from(e),
    }
}

/// Refuses a post the bot may not make there, before anything is stored.
fn check_can_post(w: &World, bot: UserId, peer: Peer) -> Result<(), ApiError> {
    if let Peer::Channel(c) = peer {
        let ch = w
            .channels
            .get(&c)
            .ok_or_else(|| ApiError::bad("chat not found"))?;
        ch.check_post(bot).map_err(|e| rights_error(w, peer, e))?;
    }
    Ok(())
}

fn rate_checked(shared: &Arc<Shared>, bot: UserId, peer: Peer) -> Result<(), ApiError> {
    shared
        .bots
        .check_rate(bot, peer.bot_api_id())
        .map_err(|retry| ApiError {
            code: 429,
            description: format!("Too Many Requests: retry after {retry}"),
            retry_after: Some(retry),
        })
}

/// `pinChatMessage` / `unpinChatMessage` in a channel or supergroup.
fn pin(shared: &Arc<Shared>, bot: UserId, p: &Params, pinned: bool) -> Result<Value, ApiError> {
    let mut w = shared.world.lock();
    let peer = resolve_chat(&w, p)?;
    let Peer::Channel(c) = peer else {
        return Err(ApiError::bad("chat not found"));
    };
    let ch = w
        .channels
        .get(&c)
        .ok_or_else(|| ApiError::bad("chat not found"))?;
    if !ch.members.contains(&bot) {
        return Err(rights_error(
            &w,
            peer,
            RpcError::new(403, "CHAT_WRITE_FORBIDDEN"),
        ));
    }
    if ch.check_pin(bot).is_err() {
        return Err(ApiError::bad(
            "not enough rights to manage pinned messages in the chat",
        ));
    }
    let id = match p.i64("message_id") {
        Some(id) => id as i32,
        None if !pinned => match ch.posting.pinned.iter().next_back() {
            Some(id) => *id,
            None => return Ok(json!(true)),
        },
        None => return Err(ApiError::bad("message identifier is not specified")),
    };
    let (_, effects) = w
        .pin_messages(c, Some(bot), &[id], pinned, None)
        .map_err(|e| match e.name.as_str() {
            "MESSAGE_ID_INVALID" if pinned => ApiError::bad("message to pin not found"),
            "MESSAGE_ID_INVALID" => ApiError::bad("message to unpin not found"),
            _ => rights_error(&w, peer, e),
        })?;
    shared.dispatch(&w, effects);
    Ok(json!(true))
}

async fn get_updates(shared: &Arc<Shared>, bot: UserId, p: &Params) -> Result<Value, ApiError> {
    let offset = p.i64("offset").unwrap_or(0);
    let limit = p.i64("limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = p.i64("timeout").unwrap_or(0).clamp(0, 50) as u64;
    let allowed: Option<Vec<String>> = p
        .json("allowed_updates")
        .and_then(|v| serde_json::from_value(v).ok());
    let notify = shared.bots.notifier(bot);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = notify.notified();
        {
            let mut q = shared.bots.queues.lock();
            let q = q.entry(bot).or_default();
            if q.webhook.is_some() {
                return Err(ApiError {
                    code: 409,
                    description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into(),
                    retry_after: None,
                });
            }
            if let Some(a) = &allowed {
                q.allowed_updates = a.clone();
            }
            if offset != 0 {
                if offset > 0 {
                    q.pending.retain(|u| u.update_id >= offset);
                } else {
                    let keep = (-offset) as usize;
                    while q.pending.len() > keep {
                        q.pending.pop_front();
                    }
                }
            }
            if !q.pending.is_empty() {
                let list: Vec<Value> = q.pending.iter().take(limit).map(update_json).collect();
                return Ok(Value::Array(list));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(json!([]));
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(deadline - now) => {}
            _ = shared.cancel.cancelled() => return Ok(json!([])),
        }
    }
}

fn set_webhook(shared: &Arc<Shared>, bot: UserId, p: &Params) -> Result<Value, ApiError> {
    let url = p.str("url").unwrap_or_default();
    let mut q = shared.bots.queues.lock();
    let q = q.entry(bot).or_default();
    if let Some(t) = q.worker.take() {
        t.cancel();
    }
    if p.bool("drop_pending_updates") {
        q.pending.clear();
    }
    if url.is_empty() {
        q.webhook = None;
        return Ok(json!(true));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad(
            "bad webhook: An HTTPS URL must be provided for webhook",
        ));
    }
    let secret = p.str("secret_token").filter(|s| !s.is_empty());
    if let Some(s) = &secret
        && (s.len() > 256
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(ApiError::bad("secret token contains unallowed characters"));
    }
    let allowed: Vec<String> = p
        .json("allowed_updates")
        .and_then(|v| serde_json::from_value(v).ok())
        .or_else(|| q.webhook.as_ref().map(|h| h.allowed_updates.clone()))
        .unwrap_or_default();
    q.webhook = Some(Webhook {
        url,
        secret,
        allowed_updates: allowed,
        max_connections: p.i64("max_connections").unwrap_or(40),
        last_error_date: None,
        last_error_message: None,
    });
    let token = shared.cancel.child_token();
    q.worker = Some(token.clone());
    let s = shared.clone();
    shared
        .tasks
        .spawn(async move { webhook_worker(s, bot, token).await });
    Ok(json!(true))
}

/// Delivers a bot's pending updates to its webhook, one at a time, keeping per-chat order.
async fn webhook_worker(shared: Arc<Shared>, bot: UserId, cancel: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build webhook client");
            return;
        }
    };
    let notify = shared.bots.notifier(bot);
    loop {
        let notified = notify.notified();
        // Pick the first update whose chat has nothing earlier pending and whose time has come.
        let next = {
            let mut qs = shared.bots.queues.lock();
            let q = qs.entry(bot).or_default();
            let Some(hook) = q.webhook.clone() else {
                return;
            };
            let now = Instant::now();
            let today = world::now();
            q.pending.retain(|u| u.expires > today);
            let mut seen = std::collections::HashSet::new();
            let mut pick = None;
            let mut wake = None::<Instant>;
            for u in &q.pending {
                if !seen.insert(u.chat_id) {
                    continue;
                }
                if u.next_attempt <= now {
                    pick = Some(u.clone());
                    break;
                }
                wake = Some(wake.map_or(u.next_attempt, |w: Instant| w.min(u.next_attempt)));
            }
            (hook, pick, wake)
        };
        let (hook, pick, wake) = next;
        let Some(u) = pick else {
            let sleep = wake
                .map(|w| w.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(sleep) => {}
            }
            continue;
        };
        let mut req = client
            .post(&hook.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(update_json(&u).to_string());
        if let Some(s) = &hook.secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = req.send() => r,
        };
        let (success, retry_after, error) = match result {
            Ok(resp) if resp.status().is_success() => (true, None, String::new()),
            Ok(resp) => {
                let ra = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|v| v.min(3600));
                let status = resp.status();
                (
                    false,
                    ra,
                    format!("Wrong response from the webhook: {status}"),
                )
            }
            Err(e) => (false, None, format!("Connection failed: {e}")),
        };
        let mut qs = shared.bots.queues.lock();
        let q = qs.entry(bot).or_default();
        if success {
            q.pending.retain(|p| p.update_id != u.update_id);
            continue;
        }
        if let Some(h) = q.webhook.as_mut() {
            h.last_error_date = Some(world::now());
            h.last_error_message = Some(error);
        }
        if let Some(p) = q.pending.iter_mut().find(|p| p.update_id == u.update_id) {
            p.attempts += 1;
            // Telegram: the first failure retries at once, then 2, 4, 8 … s, capped at 60–120 s.
            let delay = match retry_after {
                Some(r) => r,
                None if p.attempts == 1 => 0,
                None => {
                    let d = if p.delay == 0 { 2 } else { p.delay * 2 };
                    d.min(rand::Rng::gen_range(&mut rand::thread_rng(), 60..=120))
                }
            };
            p.delay = delay.max(p.delay);
            if world::now() as i64 + delay as i64 > p.expires as i64 {
                let id = p.update_id;
                q.pending.retain(|x| x.update_id != id);
            } else if let Some(p) = q.pending.iter_mut().find(|p| p.update_id == u.update_id) {
                p.next_attempt = Instant::now() + Duration::from_secs(delay);
            }
        }
    }
}
