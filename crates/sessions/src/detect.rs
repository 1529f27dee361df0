//! Format auto-detection: which parser a string, a `.session` file or an uploaded blob goes to.

use crate::sqlite::{self, SessionDb};
use crate::{ImportedSession, SessionError, b64, gramjs, pyrogram, telethon};

/// Parses a session string of any supported library.
///
/// Strings starting with `'1'` are Telethon or gramjs (told apart by their decoded layout);
/// others are Pyrogram/Hydrogram/Kurigram, whose layout follows from the length.
pub fn parse_string(input: &str) -> Result<ImportedSession, SessionError> {
    let cleaned = b64::clean(input)?;
    if let Some(body) = cleaned.strip_prefix('1') {
        // A Pyrogram string would need dc_id >= 212 to start with '1', so a prefixed string
        // that decodes to a Telethon or gramjs layout is one.
        if let Ok(raw) = b64::decode(body) {
            if gramjs::looks_like(&raw) {
                return gramjs::parse_raw(&raw);
            }
            if telethon::has_raw_len(&raw) {
                return telethon::parse_raw(&raw);
            }
            if gramjs::has_consistent_len(&raw) {
                return gramjs::parse_raw(&raw);
            }
        }
    }
    let raw = b64::decode(&cleaned)?;
    if pyrogram::has_raw_len(&raw) {
        return pyrogram::parse_raw(&raw);
    }
    Err(SessionError::StringUnrecognized)
}

/// Parses a `.session` SQLite file of any supported library (Telethon v1, Pyrogram 2.x,
/// Hydrogram, Kurigram), telling them apart by their `sessions` columns.
pub fn parse_session_file(bytes: &[u8]) -> Result<ImportedSession, SessionError> {
    let db = SessionDb::open(bytes)?;
    if !db.has_table("sessions")? {
        if db.has_table("datacenter")? {
            let version = db
                .version("version", "version")?
                .map_or_else(|| "2".to_owned(), |v| v.to_string());
            return Err(SessionError::UnsupportedVersion {
                format: "Telethon",
                version,
            });
        }
        return Err(SessionError::FileMissingTable { table: "sessions" });
    }
    let cols = db.columns("sessions")?;
    let pyrogram_like = ["user_id", "test_mode", "api_id", "is_bot"]
        .iter()
        .any(|c| cols.has(c));
    if pyrogram_like {
        pyrogram::read_db(&db)
    } else if cols.has("server_address") {
        telethon::read_db(&db)
    } else {
        Err(SessionError::FileUnknownSchema)
    }
}

/// Parses a `.session` companion that may be SQLite or, from some vendors, a string session in
/// a text file.
pub fn parse_session_bytes(bytes: &[u8]) -> Result<ImportedSession, SessionError> {
    if sqlite::looks_like_sqlite(bytes) {
        return parse_session_file(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.trim().is_empty() && text.len() <= b64::MAX_STRING_CHARS * 4 => {
            parse_string(text).map_err(|_| SessionError::FileNotSqlite)
        }
        _ => Err(SessionError::FileNotSqlite),
    }
}

/// Parses an uploaded blob of unknown kind: an SQLite `.session`, a JSON bundle without a
/// companion file, or a session string.
pub fn parse_any(bytes: &[u8]) -> Result<ImportedSession, SessionError> {
    if sqlite::looks_like_sqlite(bytes) {
        return parse_session_file(bytes);
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return crate::bundle::parse_json_bundle(bytes, None);
    }
    match std::str::from_utf8(body) {
        Ok(text) => parse_string(text),
        Err(_) => Err(SessionError::FileNotSqlite),
    }
}
