//! "JSON + .session" bundles as sold and shared by account vendors, and the JSON files of the
//! phone folder layout (`session_string`, `phone_number`, `api_id`, ...; docs/architecture.md).
//!
//! There is no spec; field names vary, so keys are matched after lower-casing and dropping
//! `_`, `-` and spaces (`twoFA`, `two_fa` and `2FA` all match). Identifying fields (API id,
//! user id, session string) must have a usable value when present; cosmetic fields with an
//! odd type are ignored.

use serde_json::{Map, Value};

use crate::detect::{parse_session_bytes, parse_string};
use crate::model::normalize_phone;
use crate::{ClientProfile, ImportedSession, Secret, SessionError};

/// Largest JSON file accepted.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

const API_ID: &[&str] = &["appid", "apiid"];
const API_HASH: &[&str] = &["apphash", "apihash"];
const PHONE: &[&str] = &["phone", "phonenumber", "phonenum"];
const USER_ID: &[&str] = &["userid", "id", "accountid", "tgid", "telegramid"];
const TWO_FA: &[&str] = &[
    "twofa",
    "2fa",
    "twofapassword",
    "2fapassword",
    "password",
    "cloudpassword",
];
const FIRST_NAME: &[&str] = &["firstname"];
const LAST_NAME: &[&str] = &["lastname"];
const USERNAME: &[&str] = &["username"];
const IS_BOT: &[&str] = &["isbot", "bot"];
const SESSION_STRING: &[&str] = &["sessionstring", "stringsession", "session", "sessionstr"];
const DEVICE: &[&str] = &["device", "devicemodel"];
const SYSTEM_VERSION: &[&str] = &["sdk", "systemversion"];
const APP_VERSION: &[&str] = &["appversion"];
const SYSTEM_LANG: &[&str] = &["systemlangcode", "systemlangpack"];
const LANG_PACK: &[&str] = &["langpack"];
const LANG_CODE: &[&str] = &["langcode"];
const PROXY: &[&str] = &["proxy"];
const IPV6: &[&str] = &["ipv6"];

/// What a bundle's JSON says, before it is merged with the session.
#[derive(Debug, Default)]
pub(crate) struct JsonMeta {
    api_id: Option<i32>,
    api_hash: Option<Secret>,
    phone: Option<String>,
    user_id: Option<i64>,
    two_fa_password: Option<Secret>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    is_bot: Option<bool>,
    session_string: Option<Secret>,
    client: ClientProfile,
}

/// Parses a bundle: its JSON plus, when there is one, the companion `.session` file
/// (SQLite, or a string session in a text file).
///
/// The companion file wins over a `session_string` in the JSON; if the file is unusable and
/// the JSON has a string, the string is used and the file's error kept as a warning.
pub fn parse_json_bundle(
    json: &[u8],
    session_file: Option<&[u8]>,
) -> Result<ImportedSession, SessionError> {
    let meta = JsonMeta::parse(json)?;
    let session = meta.session(session_file)?;
    meta.merge_into(session)
}

impl JsonMeta {
    /// Parses and validates the JSON.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, SessionError> {
        if json.len() > MAX_JSON_BYTES {
            return Err(SessionError::TooLarge {
                what: "JSON file",
                len: json.len() as u64,
                max: MAX_JSON_BYTES as u64,
            });
        }
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let value: Value = serde_json::from_slice(json).map_err(|e| SessionError::JsonInvalid {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(map) = value else {
            return Err(SessionError::JsonNotObject);
        };
        let fields = Fields::new(&map);
        let mut client = ClientProfile {
            device_model: fields.text(DEVICE),
            system_version: fields.text(SYSTEM_VERSION),
            app_version: fields.text(APP_VERSION),
            system_lang_code: fields.text(SYSTEM_LANG),
            lang_pack: fields.text(LANG_PACK),
            lang_code: fields.text(LANG_CODE),
            proxy: None,
            ipv6: fields.flag(IPV6),
        };
        client.proxy = fields.get(PROXY).and_then(|(_, v)| match v {
            Value::Null => None,
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(Secret::new(s.trim())),
            Value::Array(a) if a.is_empty() => None,
            Value::Object(o) if o.is_empty() => None,
            other => Some(Secret::new(other.to_string())),
        });
        Ok(Self {
            api_id: match fields.int(API_ID)? {
                Some(v) => Some(
                    i32::try_from(v)
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| fields.bad(API_ID))?,
                ),
                None => None,
            },
            api_hash: fields.text(API_HASH).map(Secret::new),
            phone: fields.text(PHONE).as_deref().and_then(normalize_phone),
            user_id: match fields.int(USER_ID)? {
                Some(v) if v > 0 => Some(v),
                Some(0) => None,
                Some(_) => return Err(fields.bad(USER_ID)),
                None => None,
            },
            two_fa_password: fields.text(TWO_FA).map(Secret::new),
            first_name: fields.text(FIRST_NAME),
            last_name: fields.text(LAST_NAME),
            username: fields
                .text(USERNAME)
                .map(|u| u.trim_start_matches('@').to_owned())
                .filter(|u| !u.is_empty()),
            is_bot: fields.flag(IS_BOT),
            session_string: fields.session_string(),
            client,
        })
    }

    /// Whether the JSON carries a session string of its own.
    pub(crate) fn has_session_string(&self) -> bool {
        self.session_string.is_some()
    }

    /// The session the bundle describes: the companion file, else the JSON's string.
    pub(crate) fn session(
        &self,
        session_file: Option<&[u8]>,
    ) -> Result<ImportedSession, SessionError> {
        let from_string = || match &self.session_string {
            Some(s) => parse_string(s.expose()),
            None => Err(SessionError::JsonNoSession),
        };
        match session_file {
            Some(bytes) => match parse_session_bytes(bytes) {
                Ok(session) => Ok(session),
                Err(file_err) if self.has_session_string() => {
                    let mut session = from_string().map_err(|_| file_err.clone())?;
                    session.warnings.push(file_err);
                    Ok(session)
                }
                Err(file_err) => Err(file_err),
            },
            None => from_string(),
        }
    }

    /// Adds the JSON's fields to a parsed session; the session's own values win, except that
    /// a user id both sides know must agree.
    pub(crate) fn merge_into(
        self,
        mut session: ImportedSession,
    ) -> Result<ImportedSession, SessionError> {
        if let (Some(a), Some(b)) = (session.user_id, self.user_id)
            && a != b
        {
            return Err(SessionError::BundleMismatch { field: "user id" });
        }
        session.from_json_bundle = true;
        session.user_id = session.user_id.or(self.user_id);
        session.api_id = session.api_id.or(self.api_id);
        session.api_hash = session.api_hash.or(self.api_hash);
        session.is_bot = session.is_bot.or(self.is_bot);
        session.phone = self.phone.or(session.phone);
        session.two_fa_password = self.two_fa_password.or(session.two_fa_password);
        session.first_name = self.first_name.or(session.first_name);
        session.last_name = self.last_name.or(session.last_name);
        session.username = self.username.or(session.username);
        if self.client != ClientProfile::default() {
            session.client = Some(self.client);
        }
        Ok(session)
    }
}

/// The JSON object with normalised keys.
struct Fields<'a> {
    entries: Vec<(String, &'a str, &'a Value)>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        let entries = map
            .iter()
            .map(|(k, v)| {
                let norm: String = k
                    .chars()
                    .filter(|c| !matches!(c, '_' | '-' | ' '))
                    .flat_map(char::to_lowercase)
                    .collect();
                (norm, k.as_str(), v)
            })
            .collect();
        Self { entries }
    }

    /// The first present, non-null field among the aliases, in alias order.
    fn get(&self, aliases: &[&str]) -> Option<(&'a str, &'a Value)> {
        aliases.iter().find_map(|alias| {
            self.entries
                .iter()
                .find(|(norm, _, v)| norm == alias && !v.is_null())
                .map(|(_, raw, v)| (*raw, *v))
        })
    }

    fn bad(&self, aliases: &[&str]) -> SessionError {
        let field = self
            .get(aliases)
            .map_or_else(|| aliases.first().copied().unwrap_or(""), |(raw, _)| raw);
        SessionError::JsonBadField {
            field: field.to_owned(),
        }
    }

    /// Non-empty text; numbers become their decimal form, other types are ignored.
    fn text(&self, aliases: &[&str]) -> Option<String> {
        let s = match self.get(aliases)?.1 {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!s.is_empty()).then_some(s)
    }

    /// A boolean, also from 0/1 and "true"/"false".
    fn flag(&self, aliases: &[&str]) -> Option<bool> {
        match self.get(aliases)?.1 {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|v| v != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// An integer (number or numeric string); an empty string counts as absent, anything
    /// else that is not an integer is `session_json_bad_field`.
    fn int(&self, aliases: &[&str]) -> Result<Option<i64>, SessionError> {
        let Some((raw, value)) = self.get(aliases) else {
            return Ok(None);
        };
        let bad = || SessionError::JsonBadField {
            field: raw.to_owned(),
        };
        match value {
            Value::Number(n) => n.as_i64().map(Some).ok_or_else(bad),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s.trim().parse().map(Some).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// The session string field, if present as a non-empty string (other types are ignored:
    /// some tools use `session` for a nested object).
    fn session_string(&self) -> Option<Secret> {
        SESSION_STRING
            .iter()
            .find_map(|alias| match self.get(&[alias])?.1 {
                Value::String(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                _ => None,
            })
    }
}
