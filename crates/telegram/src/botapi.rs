//! A small Telegram Bot API client (`{base}/bot<token>/<method>`) and the mapping of Bot API
//! updates to what ingestion stores.
//!
//! The token is part of every request path, so this module never logs a URL, strips URLs from
//! transport errors ([`reqwest::Error::without_url`]) and scrubs the token from anything it
//! turns into text. `Debug` of [`BotApi`] prints no token.

use crate::botapi_map::json_str;
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;
use switchboard_domain::{Entity, EntityKind};
use zeroize::Zeroizing;

pub use crate::botapi_map::{BotUpdate, map_update, update_id};

mod publish;
pub use publish::AlbumFile;

/// The update kinds Switchboard asks for (always sent explicitly).
pub const ALLOWED_UPDATES: &[&str] = &["message", "edited_message", "channel_post"];

/// The default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// How long a plain request may take (long polls add their timeout to it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A Bot API failure, sorted into what the caller does next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BotApiError {
    /// 429: wait this many seconds.
    #[error("the Bot API asks to retry after {0} s")]
    RetryAfter(u64),
    /// 401/404 on the bot: the token is wrong or revoked.
    #[error("Telegram rejected the bot token")]
    Unauthorized,
    /// 403: the user blocked the bot (or the bot may not write there).
    #[error("the bot may not write to this chat: {0}")]
    Forbidden(String),
    /// 400 chat not found.
    #[error("chat not found")]
    ChatNotFound,
    /// 409: a webhook is set while polling, or another poller runs.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other error answer.
    #[error("Bot API error {code}: {description}")]
    Api {
        /// HTTP / Bot API error code.
        code: u16,
        /// Telegram's description.
        description: String,
    },
    /// The request never reached the Bot API (the connection could not be made): safe to
    /// repeat.
    #[error("the Bot API is unreachable: {0}")]
    Network(String),
    /// The request was sent but its answer never came (a timeout, a connection broken while
    /// waiting or reading): Telegram may have carried it out, so a send must not be repeated
    /// blindly.
    #[error("the Bot API request was sent but its answer was lost: {0}")]
    Uncertain(String),
    /// The answer was not what the Bot API documents.
    #[error("unexpected Bot API answer: {0}")]
    Unexpected(String),
    /// The SOCKS5 proxy (`telegram.proxy`) failed while connecting: the request was never
    /// sent, so it is safe to repeat.
    #[error("{}", .0.describe())]
    Proxy(crate::proxy::ProxyFailure),
}

impl BotApiError {
    /// A stable code for operators and the API.
    pub fn code(&self) -> &'static str {
        match self {
            BotApiError::RetryAfter(_) => "retry_after",
            BotApiError::Unauthorized => "bot_unauthorized",
            BotApiError::Forbidden(d) if d.contains("blocked") => "bot_blocked",
            BotApiError::Forbidden(_) => "bot_forbidden",
            BotApiError::ChatNotFound => "chat_not_found",
            BotApiError::Conflict(_) => "bot_api_conflict",
            BotApiError::Api { code, .. } if *code >= 500 => "bot_api_unavailable",
            BotApiError::Api { .. } => "bot_api_rejected",
            BotApiError::Network(_) => "bot_api_unreachable",
            BotApiError::Uncertain(_) => "send_uncertain",
            BotApiError::Unexpected(_) => "bot_api_unexpected",
            BotApiError::Proxy(p) => p.code(),
        }
    }

    /// True if repeating the same request can never succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            BotApiError::Forbidden(_) | BotApiError::ChatNotFound => true,
            BotApiError::Api { code, .. } => *code < 500 && *code != 429,
            _ => false,
        }
    }
}

/// How a message is sent: without a notification, without a link preview.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostOptions {
    /// `disable_notification`.
    pub silent: bool,
    /// `link_preview_options.is_disabled` (text messages only).
    pub no_webpage: bool,
}

impl PostOptions {
    fn apply(self, params: &mut Value, text: bool) {
        if self.silent {
            params["disable_notification"] = json!(true);
        }
        if text && self.no_webpage {
            params["link_preview_options"] = json!({"is_disabled": true});
        }
    }
}

/// A file the bot sends (multipart upload from memory).
#[derive(Clone)]
pub struct Upload {
    /// Which method: `photo`, `document`, `video`, `audio` or `voice`.
    pub kind: MediaKind,
    /// File name shown to the user.
    pub file_name: String,
    /// MIME type.
    pub mime: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Kinds of media the bot can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// `sendPhoto`.
    Photo,
    /// `sendDocument`.
    Document,
    /// `sendVideo`.
    Video,
    /// `sendAudio`.
    Audio,
    /// `sendVoice`.
    Voice,
}

impl MediaKind {
    /// The method for a message's media kind (any other kind is sent as a document).
    pub fn from_kind(kind: switchboard_domain::MediaKind) -> MediaKind {
        use switchboard_domain::MediaKind as K;
        match kind {
            K::Photo => MediaKind::Photo,
            K::Video => MediaKind::Video,
            K::Audio => MediaKind::Audio,
            K::Voice => MediaKind::Voice,
            _ => MediaKind::Document,
        }
    }

    fn method_and_field(self) -> (&'static str, &'static str) {
        match self {
            MediaKind::Photo => ("sendPhoto", "photo"),
            MediaKind::Document => ("sendDocument", "document"),
            MediaKind::Video => ("sendVideo", "video"),
            MediaKind::Audio => ("sendAudio", "audio"),
            MediaKind::Voice => ("sendVoice", "voice"),
        }
    }
}

/// What `getMe` says about the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotInfo {
    /// Telegram id.
    pub id: i64,
    /// Username without `@`.
    pub username: String,
    /// Display name.
    pub first_name: String,
}

/// What `getChat` says of a chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatInfo {
    /// Bot-API id.
    pub id: i64,
    /// `channel`, `supergroup`, `group` or `private`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Public username without `@`.
    pub username: Option<String>,
}

/// What `getChatMember` says of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMemberInfo {
    /// `creator`, `administrator`, `member`, `restricted`, `left` or `kicked`.
    pub status: String,
    /// An administrator of a channel may post.
    pub can_post_messages: bool,
    /// A restricted member may still write.
    pub can_send_messages: bool,
}

impl ChatMemberInfo {
    /// The member may post in a chat of `kind`: in a channel its creator or an administrator
    /// with `can_post_messages`; in a group any member not barred from writing.
    pub fn can_post(&self, kind: &str) -> bool {
        match (kind, self.status.as_str()) {
            (_, "creator") => true,
            ("channel", "administrator") => self.can_post_messages,
            ("channel", _) => false,
            (_, "administrator" | "member") => true,
            (_, "restricted") => self.can_send_messages,
            _ => false,
        }
    }
}

/// A sent message: its id and date (unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// Telegram message id.
    pub message_id: i64,
    /// Unix time.
    pub date: i64,
}

/// Where a file can be downloaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Size, if Telegram says.
    pub file_size: Option<u64>,
    /// Path for the download URL.
    pub file_path: String,
}

/// True if `token` looks like a bot token (`<digits>:<35ish url-safe chars>`).
pub fn token_is_well_formed(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && id.parse::<i64>().is_ok_and(|n| n > 0)
        && (10..=100).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The bot id part of a well-formed token.
pub fn token_bot_id(token: &str) -> Option<i64> {
    token.split_once(':').and_then(|(id, _)| id.parse().ok())
}

/// A Bot API client of one bot.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: std::sync::Arc<Zeroizing<String>>,
}

impl fmt::Debug for BotApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotApi")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl BotApi {
    /// A client of the bot with `token` at `base` (e.g. `https://api.telegram.org`).
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: std::sync::Arc::new(Zeroizing::new(token.to_string())),
        }
    }

    /// The HTTP client every bot shares (no redirects: they would carry the token elsewhere),
    /// connecting through `proxy` when one is set — only through it: a client that cannot be
    /// built with the proxy is an error, never a direct client.
    pub fn http_client(
        proxy: Option<&crate::proxy::Socks5Proxy>,
    ) -> Result<reqwest::Client, crate::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10));
        if let Some(proxy) = proxy {
            builder = builder.proxy(
                proxy
                    .http_proxy()
                    .map_err(|_| crate::Error::Config("telegram.proxy is not a usable proxy"))?,
            );
        }
        builder
            .build()
            .map_err(|_| crate::Error::Config("the Bot API's HTTP client could not be built"))
    }

    fn url(&self, method: &str) -> String {
        format!("{}/bot{}/{}", self.base, self.token.as_str(), method)
    }

    /// Removes the token from text that may have picked it up.
    fn scrub(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_string()
        } else {
            text.replace(self.token.as_str(), "<token>")
        }
    }

    /// Sorts a transport failure: only a failed connect proves the request was never sent.
    fn network(&self, e: reqwest::Error) -> BotApiError {
        if let Some(failure) = crate::proxy::ProxyFailure::of_http(&e) {
            return BotApiError::Proxy(failure);
        }
        let connect = e.is_connect();
        let text = self.scrub(&e.without_url().to_string());
        if connect {
            BotApiError::Network(text)
        } else {
            BotApiError::Uncertain(text)
        }
    }

    /// Calls a method with JSON parameters and returns its `result`.
    pub async fn call(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, BotApiError> {
        let res = self
            .http
            .post(self.url(method))
            .timeout(timeout)
            .json(params)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        self.answer(res).await
    }

    async fn answer(&self, res: reqwest::Response) -> Result<Value, BotApiError> {
        let status = res.status();
        let body = res.bytes().await.map_err(|e| self.network(e))?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            BotApiError::Unexpected(format!("HTTP {} without a JSON body", status.as_u16()))
        })?;
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(v.get("result").cloned().unwrap_or(Value::Null));
        }
        let code = v
            .get("error_code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status.as_u16());
        let description = self.scrub(json_str(&v, "description").unwrap_or(""));
        let retry_after = v.pointer("/parameters/retry_after").and_then(Value::as_u64);
        Err(classify(code, description, retry_after))
    }

    /// `getMe`.
    pub async fn get_me(&self) -> Result<BotInfo, BotApiError> {
        let v = self.call("getMe", &json!({}), REQUEST_TIMEOUT).await?;
        let id = v
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| BotApiError::Unexpected("getMe without id".into()))?;
        Ok(BotInfo {
            id,
            username: json_str(&v, "username").unwrap_or_default().to_string(),
            first_name: json_str(&v, "first_name").unwrap_or_default().to_string(),
        })
    }

    /// `getUpdates` (raw updates, oldest first); waits up to `timeout` for the first.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
        allowed_updates: &[&str],
    ) -> Result<Vec<Value>, BotApiError> {
        let mut params =
            json!({"timeout": timeout.as_secs(), "allowed_updates": allowed_updates, "limit": 100});
        if let Some(o) = offset {
            params["offset"] = json!(o);
        }
        let v = self
            .call("getUpdates", &params, timeout + REQUEST_TIMEOUT)
            .await?;
        match v {
            Value::Array(a) => Ok(a),
            _ => Err(BotApiError::Unexpected("getUpdates without a list".into())),
        }
    }

    /// `setWebhook` with a secret header and explicit update kinds (pending updates are kept).
    pub async fn set_webhook(
        &self,
        url: &str,
        secret_token: &str,
        allowed_updates: &[&str],
    ) -> Result<(), BotApiError> {
        let params = json!({
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": allowed_updates,
            "drop_pending_updates": false,
        });
        self.call("setWebhook", &params, REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// `deleteWebhook` (pending updates are kept).
    pub async fn delete_webhook(&self) -> Result<(), BotApiError> {
        self.call(
            "deleteWebhook",
            &json!({"drop_pending_updates": false}),
            REQUEST_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// `sendMessage` with entities and an optional reply.
    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        entities: &[Entity],
        reply_to: Option<i64>,
    ) -> Result<SentMessage, BotApiError> {
        self.send_message_with(chat_id, text, entities, reply_to, PostOptions::default())
            .await
    }

    /// [`BotApi::send_message`] with [`PostOptions`].
    pub async fn send_message_with(
        &self,
        chat_id: i64,
        text: &str,
        entities: &[Entity],
        reply_to: Option<i64>,
        options: PostOptions,
    ) -> Result<SentMessage, BotApiError> {
        let mut params = json!({"chat_id": chat_id, "text": text});
        options.apply(&mut params, true);
        let entities = sendable(entities);
        if !entities.is_empty() {
            params["entities"] = json!(entities);
        }
        if let Some(r) = reply_to {
            params["reply_parameters"] =
                json!({"message_id": r, "allow_sending_without_reply": true});
        }
        let v = self.call("sendMessage", &params, REQUEST_TIMEOUT).await?;
        sent(&v)
    }

    /// `sendPhoto`/`sendDocument`/`sendVideo`/`sendAudio`/`sendVoice` uploading `file`.
    pub async fn send_media(
        &self,
        chat_id: i64,
        file: &Upload,
        caption: &str,
        caption_entities: &[Entity],
        reply_to: Option<i64>,
    ) -> Result<SentMessage, BotApiError> {
        self.send_media_with(
            chat_id,
            file,
            caption,
            caption_entities,
            reply_to,
            PostOptions::default(),
        )
        .await
    }

    /// [`BotApi::send_media`] with [`PostOptions`].
    pub async fn send_media_with(
        &self,
        chat_id: i64,
        file: &Upload,
        caption: &str,
        caption_entities: &[Entity],
        reply_to: Option<i64>,
        options: PostOptions,
    ) -> Result<SentMessage, BotApiError> {
        let (method, field) = file.kind.method_and_field();
        let mut form = Multipart::new();
        form.text("chat_id", &chat_id.to_string());
        if options.silent {
            form.text("disable_notification", "true");
        }
        if !caption.is_empty() {
            form.text("caption", caption);
        }
        let caption_entities = sendable(caption_entities);
        if !caption_entities.is_empty() {
            form.text("caption_entities", &json!(caption_entities).to_string());
        }
        if let Some(r) = reply_to {
            form.text(
                "reply_parameters",
                &json!({"message_id": r, "allow_sending_without_reply": true}).to_string(),
            );
        }
        form.file(field, &file.file_name, &file.mime, &file.bytes);
        let v = self.send_form(method, form).await?;
        sent(&v)
    }

    /// Posts a multipart form (uploads take longer than plain calls).
    async fn send_form(&self, method: &str, form: Multipart) -> Result<Value, BotApiError> {
        let (content_type, body) = form.finish();
        let res = self
            .http
            .post(self.url(method))
            .timeout(REQUEST_TIMEOUT * 4)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        self.answer(res).await
    }

    /// `getChat`: a chat's type (`channel`, `supergroup`, `group`, `private`), title and
    /// username.
    pub async fn get_chat(&self, chat_id: i64) -> Result<ChatInfo, BotApiError> {
        let v = self
            .call("getChat", &json!({"chat_id": chat_id}), REQUEST_TIMEOUT)
            .await?;
        Ok(ChatInfo {
            id: v.get("id").and_then(Value::as_i64).unwrap_or(chat_id),
            kind: json_str(&v, "type").unwrap_or_default().to_string(),
            title: json_str(&v, "title").unwrap_or_default().to_string(),
            username: json_str(&v, "username").map(str::to_string),
        })
    }

    /// `getChatMember`: a user's status in a chat (`creator`, `administrator`, `member`,
    /// `restricted`, `left`, `kicked`) and an administrator's right to post.
    pub async fn get_chat_member(
        &self,
        chat_id: i64,
        user_id: i64,
    ) -> Result<ChatMemberInfo, BotApiError> {
        let v = self
            .call(
                "getChatMember",
                &json!({"chat_id": chat_id, "user_id": user_id}),
                REQUEST_TIMEOUT,
            )
            .await?;
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        Ok(ChatMemberInfo {
            status: json_str(&v, "status").unwrap_or_default().to_string(),
            can_post_messages: flag("can_post_messages"),
            can_send_messages: flag("can_send_messages"),
        })
    }

    /// `sendChatAction` (e.g. `typing`).
    pub async fn send_chat_action(&self, chat_id: i64, action: &str) -> Result<(), BotApiError> {
        self.call(
            "sendChatAction",
            &json!({"chat_id": chat_id, "action": action}),
            REQUEST_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// `getFile`.
    pub async fn get_file(&self, file_id: &str) -> Result<FileInfo, BotApiError> {
        let v = self
            .call("getFile", &json!({"file_id": file_id}), REQUEST_TIMEOUT)
            .await?;
        let file_path = json_str(&v, "file_path")
            .ok_or_else(|| BotApiError::Unexpected("getFile without file_path".into()))?
            .to_string();
        Ok(FileInfo {
            file_size: v.get("file_size").and_then(Value::as_u64),
            file_path,
        })
    }

    /// Downloads a file found with [`BotApi::get_file`], refusing more than `max_bytes`.
    pub async fn download(&self, file: &FileInfo, max_bytes: u64) -> Result<Vec<u8>, BotApiError> {
        if file.file_size.is_some_and(|s| s > max_bytes) {
            return Err(BotApiError::Api {
                code: 400,
                description: "file is too big".into(),
            });
        }
        let url = format!(
            "{}/file/bot{}/{}",
            self.base,
            self.token.as_str(),
            file.file_path
        );
        let mut res = self
            .http
            .get(url)
            .timeout(REQUEST_TIMEOUT * 4)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        if !res.status().is_success() {
            return Err(classify(
                res.status().as_u16(),
                "download failed".into(),
                None,
            ));
        }
        let mut out = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| self.network(e))? {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max_bytes {
                return Err(BotApiError::Api {
                    code: 400,
                    description: "file is too big".into(),
                });
            }
        }
        Ok(out)
    }
}

fn sent(v: &Value) -> Result<SentMessage, BotApiError> {
    let message_id = v
        .get("message_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| BotApiError::Unexpected("sent message without message_id".into()))?;
    Ok(SentMessage {
        message_id,
        date: v.get("date").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// Sorts an error answer.
pub fn classify(code: u16, description: String, retry_after: Option<u64>) -> BotApiError {
    match code {
        429 => BotApiError::RetryAfter(retry_after.unwrap_or(1).max(1)),
        401 => BotApiError::Unauthorized,
        404 if description.to_ascii_lowercase().contains("not found")
            && !description.contains("method") =>
        {
            BotApiError::Unauthorized
        }
        403 => BotApiError::Forbidden(description),
        409 => BotApiError::Conflict(description),
        400 if description.to_ascii_lowercase().contains("chat not found") => {
            BotApiError::ChatNotFound
        }
        _ => BotApiError::Api { code, description },
    }
}

/// A `multipart/form-data` body built in memory.
struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    fn new() -> Self {
        let mut b = [0u8; 12];
        let _ = getrandom::fill(&mut b);
        let boundary = format!(
            "sbboundary{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        Self {
            boundary,
            body: Vec::new(),
        }
    }

    fn text(&mut self, name: &str, value: &str) {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                self.boundary,
                quote(name)
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    fn file(&mut self, name: &str, file_name: &str, mime: &str, bytes: &[u8]) {
        let mime = if mime.bytes().all(|b| b.is_ascii_graphic()) && !mime.is_empty() {
            mime
        } else {
            "application/octet-stream"
        };
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                self.boundary,
                quote(name),
                quote(file_name),
                mime
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// Makes a header parameter value safe: no quotes, CR or LF.
fn quote(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// The entities a message may carry when sent (an `unknown` one would make Telegram refuse the
/// whole message).
fn sendable(entities: &[Entity]) -> Vec<&Entity> {
    entities
        .iter()
        .filter(|e| e.kind != EntityKind::Unknown)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_for_shape() {
        assert!(token_is_well_formed(
            "5000000001:AAE-demo-switchboard-token"
        ));
        assert!(token_is_well_formed(
            "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
        ));
        assert!(!token_is_well_formed("not a token"));
        assert!(!token_is_well_formed("12345:short"));
        assert!(!token_is_well_formed(":AAE-demo-switchboard-token"));
        assert!(!token_is_well_formed("12a45:AAE-demo-switchboard-token"));
        assert!(!token_is_well_formed("12345:AAE demo/switchboard-token"));
        assert_eq!(
            token_bot_id("5000000001:AAE-demo-switchboard-token"),
            Some(5_000_000_001)
        );
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(
            classify(429, "Too Many Requests: retry after 3".into(), Some(3)),
            BotApiError::RetryAfter(3)
        );
        assert_eq!(
            classify(401, "Unauthorized".into(), None),
            BotApiError::Unauthorized
        );
        assert_eq!(
            classify(404, "Not Found".into(), None),
            BotApiError::Unauthorized
        );
        let blocked = classify(403, "Forbidden: bot was blocked by the user".into(), None);
        assert_eq!(blocked.code(), "bot_blocked");
        assert!(blocked.is_permanent());
        let gone = classify(400, "Bad Request: chat not found".into(), None);
        assert_eq!(gone, BotApiError::ChatNotFound);
        assert!(gone.is_permanent());
        assert!(!classify(502, "Bad Gateway".into(), None).is_permanent());
        assert!(!BotApiError::RetryAfter(1).is_permanent());
    }

    #[test]
    fn debug_and_errors_never_show_the_token() {
        let token = "5000000001:AAE-very-secret-token-value";
        let api = BotApi::new(reqwest::Client::new(), "http://127.0.0.1:9", token);
        assert!(!format!("{api:?}").contains("very-secret"));
        assert_eq!(
            api.scrub(&format!("GET /bot{token}/getMe")),
            "GET /bot<token>/getMe"
        );
    }

    #[tokio::test]
    async fn transport_errors_never_show_the_token() {
        // Nothing listens on port 9 (discard) of 127.0.0.1 in the test environment.
        let token = "5000000001:AAE-very-secret-token-value";
        let api = BotApi::new(
            BotApi::http_client(None).unwrap_or_default(),
            "http://127.0.0.1:9",
            token,
        );
        let e = api.get_me().await.err();
        let text = format!(
            "{e:?} {}",
            e.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        assert!(matches!(e, Some(BotApiError::Network(_))), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
        assert!(!text.contains("5000000001"), "{text}");
    }

    #[test]
    fn multipart_body_has_fields_and_file() {
        let mut m = Multipart::new();
        m.text("chat_id", "42");
        m.file("photo", "a\"b.jpg", "image/jpeg", b"\xff\xd8data");
        let (ct, body) = m.finish();
        let boundary = ct.split("boundary=").nth(1).unwrap_or_default().to_string();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"chat_id\"\r\n\r\n42\r\n"));
        assert!(text.contains("filename=\"a'b.jpg\"\r\nContent-Type: image/jpeg"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
