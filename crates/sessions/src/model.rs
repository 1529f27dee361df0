//! The parsed form every importer produces: [`ImportedSession`] and the secret-holding newtypes.

use std::fmt;
use std::net::SocketAddr;

use zeroize::{Zeroize, Zeroizing};

use crate::SessionError;

/// A 2048-bit MTProto auth key. `Debug` never shows it; the bytes are wiped on drop.
#[derive(Clone)]
pub struct AuthKey(Box<[u8; 256]>);

impl AuthKey {
    /// Wraps 256 key bytes.
    pub fn new(bytes: [u8; 256]) -> Self {
        let mut key = Box::new([0u8; 256]);
        key.copy_from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        Self(key)
    }

    /// Copies a key from a slice, which must be exactly 256 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 256 {
            return None;
        }
        let mut key = Box::new([0u8; 256]);
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 256] {
        &self.0
    }

    /// Whether every byte is zero (Telethon's way of writing "no key").
    pub fn is_all_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }
}

impl Drop for AuthKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for AuthKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time, so comparing keys leaks nothing through timing.
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for AuthKey {}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

/// A secret string (API hash, 2FA password, exported session, proxy URL).
/// `Debug` never shows it; the text is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret text; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which library (and which of its layouts) a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionFormat {
    /// Telethon `StringSession` (`'1'` + urlsafe base64).
    TelethonString,
    /// Telethon v1 `.session` SQLite file.
    TelethonFile,
    /// Pyrogram 2.x / Hydrogram / Kurigram string (`>BI?256sQ?`, 362 chars).
    PyrogramString,
    /// Pyrogram 1.x string with a 32-bit user id (`>B?256sI?`, 351 chars).
    PyrogramStringV1,
    /// Pyrogram 1.x string with a 64-bit user id (`>B?256sQ?`, 356 chars).
    PyrogramStringV1Wide,
    /// Pyrogram 2.x / Hydrogram `.session` SQLite file.
    PyrogramFile,
    /// Kurigram `.session` SQLite file (has server address and port).
    KurigramFile,
    /// gramjs `StringSession`.
    GramjsString,
}

impl SessionFormat {
    /// A stable snake_case name, for API responses and audit logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::TelethonString => "telethon_string",
            Self::TelethonFile => "telethon_file",
            Self::PyrogramString => "pyrogram_string",
            Self::PyrogramStringV1 => "pyrogram_string_v1",
            Self::PyrogramStringV1Wide => "pyrogram_string_v1_wide",
            Self::PyrogramFile => "pyrogram_file",
            Self::KurigramFile => "kurigram_file",
            Self::GramjsString => "gramjs_string",
        }
    }
}

impl fmt::Display for SessionFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What kind of peer a cached peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// A user account.
    User,
    /// A bot account.
    Bot,
    /// A basic group.
    Chat,
    /// A broadcast channel, or any channel when the format cannot tell which kind.
    Channel,
    /// A supergroup (megagroup or forum).
    Supergroup,
}

impl PeerKind {
    /// The kind implied by a marked (Bot API) id: users positive, chats `-id`, channels `-(10^12 + id)`.
    pub fn from_marked_id(id: i64) -> Option<Self> {
        const CHANNEL_OFFSET: i64 = 1_000_000_000_000;
        match id {
            1.. => Some(Self::User),
            0 => None,
            _ if id <= -CHANNEL_OFFSET => Some(Self::Channel),
            _ => Some(Self::Chat),
        }
    }
}

/// A peer cached in a session file, keyed by its marked (Bot API) id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPeer {
    /// Marked id: user `+id`, chat `-id`, channel `-(10^12 + id)`.
    pub id: i64,
    /// Access hash, when the file has one.
    pub access_hash: Option<i64>,
    /// Kind of peer.
    pub kind: PeerKind,
    /// Username without `@`.
    pub username: Option<String>,
    /// Phone number, digits only.
    pub phone: Option<String>,
    /// Display name (Telethon only).
    pub name: Option<String>,
}

/// Update state saved in a session file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedUpdateState {
    /// Account-wide pts.
    pub pts: i32,
    /// Account-wide qts.
    pub qts: i32,
    /// Unix time of the last update.
    pub date: i32,
    /// Account-wide seq.
    pub seq: i32,
    /// Per-channel pts, keyed by bare channel id.
    pub channels: Vec<ChannelPts>,
}

/// One channel's pts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPts {
    /// Bare channel id.
    pub channel_id: i64,
    /// The channel's pts.
    pub pts: i32,
}

/// The client fingerprint a JSON bundle records (`initConnection` parameters and friends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientProfile {
    /// `device` → `device_model`.
    pub device_model: Option<String>,
    /// `sdk` → `system_version`.
    pub system_version: Option<String>,
    /// `app_version`.
    pub app_version: Option<String>,
    /// `system_lang_pack` / `system_lang_code`.
    pub system_lang_code: Option<String>,
    /// `lang_pack` ("tdesktop", "android", ...).
    pub lang_pack: Option<String>,
    /// `lang_code`.
    pub lang_code: Option<String>,
    /// `proxy`, which may hold credentials.
    pub proxy: Option<Secret>,
    /// `ipv6`.
    pub ipv6: Option<bool>,
}

/// A session read from any supported format, ready to become grammers' `DcOption` + self user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSession {
    /// Where it came from.
    pub format: SessionFormat,
    /// Whether it came from a JSON bundle (the JSON's fields were merged in).
    pub from_json_bundle: bool,
    /// Home data centre id.
    pub dc_id: i32,
    /// The address stored with the session; `None` when the format has none
    /// (see [`ImportedSession::resolved_addr`]).
    pub server_addr: Option<SocketAddr>,
    /// The auth key for `dc_id`.
    pub auth_key: AuthKey,
    /// The logged-in user's id, when the format stores it.
    pub user_id: Option<i64>,
    /// Whether the account is a bot, when the format stores it.
    pub is_bot: Option<bool>,
    /// Whether the session is for Telegram's test servers.
    pub test_mode: bool,
    /// API id the session was created with.
    pub api_id: Option<i32>,
    /// API hash from a JSON bundle.
    pub api_hash: Option<Secret>,
    /// Phone number, digits only.
    pub phone: Option<String>,
    /// The account's 2FA password, from a JSON bundle.
    pub two_fa_password: Option<Secret>,
    /// First name, from a JSON bundle.
    pub first_name: Option<String>,
    /// Last name, from a JSON bundle.
    pub last_name: Option<String>,
    /// Username without `@`.
    pub username: Option<String>,
    /// Client fingerprint, from a JSON bundle.
    pub client: Option<ClientProfile>,
    /// Peers cached in a `.session` file.
    pub peers: Vec<ImportedPeer>,
    /// Update state saved in a `.session` file.
    pub updates: Option<ImportedUpdateState>,
    /// Problems that did not stop the import (e.g. a broken JSON next to a good `.session`).
    pub warnings: Vec<SessionError>,
}

impl ImportedSession {
    /// A session with only the core fields set.
    pub fn new(format: SessionFormat, dc_id: i32, auth_key: AuthKey) -> Self {
        Self {
            format,
            from_json_bundle: false,
            dc_id,
            server_addr: None,
            auth_key,
            user_id: None,
            is_bot: None,
            test_mode: false,
            api_id: None,
            api_hash: None,
            phone: None,
            two_fa_password: None,
            first_name: None,
            last_name: None,
            username: None,
            client: None,
            peers: Vec::new(),
            updates: None,
            warnings: Vec::new(),
        }
    }

    /// The stored address, or Telegram's well-known IPv4 address for `dc_id` when none is stored.
    pub fn resolved_addr(&self) -> Option<SocketAddr> {
        self.server_addr
            .or_else(|| crate::dc::dc_address(self.dc_id, self.test_mode, false))
    }

    /// The fields an exporter needs, borrowed from this session.
    pub fn export_params(&self) -> ExportParams<'_> {
        ExportParams {
            dc_id: self.dc_id,
            server_addr: self.server_addr,
            auth_key: &self.auth_key,
            user_id: self.user_id,
            is_bot: self.is_bot,
            api_id: self.api_id,
            test_mode: self.test_mode,
        }
    }
}

/// What the exporters need; build it from a stored account or with [`ImportedSession::export_params`].
#[derive(Debug, Clone, Copy)]
pub struct ExportParams<'a> {
    /// Home data centre id.
    pub dc_id: i32,
    /// Server address; Telegram's well-known address for `dc_id` is used when `None`.
    pub server_addr: Option<SocketAddr>,
    /// The auth key.
    pub auth_key: &'a AuthKey,
    /// The logged-in user's id (Pyrogram needs it).
    pub user_id: Option<i64>,
    /// Whether the account is a bot.
    pub is_bot: Option<bool>,
    /// API id (Pyrogram needs it).
    pub api_id: Option<i32>,
    /// Whether the session is for Telegram's test servers.
    pub test_mode: bool,
}

/// Checks a data centre id read from a file or string.
pub(crate) fn check_dc_id(dc_id: i64) -> Result<i32, SessionError> {
    match i32::try_from(dc_id) {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(SessionError::InvalidDcId { dc_id }),
    }
}

/// Keeps the digits of a phone number; `None` when there are none.
pub(crate) fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}
