//! Pyrogram, Hydrogram and Kurigram: string sessions (all three historic layouts; export of the
//! current one) and `.session` SQLite files (Pyrogram 2.x / Hydrogram v3 and Kurigram v7).
//!
//! Strings are `urlsafe_b64(..)` without padding:
//! current `>BI?256sQ?` (271 bytes), 1.x `>B?256sI?` (263), 1.x wide ids `>B?256sQ?` (267).

use std::collections::HashMap;

use base64::Engine;
use zeroize::Zeroizing;

use crate::model::check_dc_id;
use crate::sqlite::{self, KeyCell, MAX_ROWS, SessionDb};
use crate::{
    AuthKey, ExportParams, ImportedPeer, ImportedSession, PeerKind, Secret, SessionError,
    SessionFormat, b64,
};

const FORMAT: &str = "Pyrogram";
const RAW_LEN_CURRENT: usize = 1 + 4 + 1 + 256 + 8 + 1;
const RAW_LEN_V1: usize = 1 + 1 + 256 + 4 + 1;
const RAW_LEN_V1_WIDE: usize = 1 + 1 + 256 + 8 + 1;

/// Parses a Pyrogram, Hydrogram or Kurigram string session of any historic layout.
pub fn parse_string(input: &str) -> Result<ImportedSession, SessionError> {
    let cleaned = b64::clean(input)?;
    let raw = b64::decode(&cleaned)?;
    parse_raw(&raw)
}

/// Whether decoded bytes have one of the Pyrogram string lengths.
pub(crate) fn has_raw_len(raw: &[u8]) -> bool {
    matches!(raw.len(), RAW_LEN_CURRENT | RAW_LEN_V1 | RAW_LEN_V1_WIDE)
}

/// Parses decoded string bytes, choosing the layout by length as Pyrogram's loader does.
pub(crate) fn parse_raw(raw: &[u8]) -> Result<ImportedSession, SessionError> {
    let be_u32 = |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
    let be_u64 = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[at..at + 8]);
        u64::from_be_bytes(b)
    };
    // (format, api_id, test_mode, key offset, user id, is_bot)
    let (format, api_id, test_mode, key_at, user_id, is_bot) = match raw.len() {
        RAW_LEN_CURRENT => (
            SessionFormat::PyrogramString,
            Some(be_u32(1)),
            raw[5] != 0,
            6,
            be_u64(262),
            raw[270] != 0,
        ),
        RAW_LEN_V1 => (
            SessionFormat::PyrogramStringV1,
            None,
            raw[1] != 0,
            2,
            u64::from(be_u32(258)),
            raw[262] != 0,
        ),
        RAW_LEN_V1_WIDE => (
            SessionFormat::PyrogramStringV1Wide,
            None,
            raw[1] != 0,
            2,
            be_u64(258),
            raw[266] != 0,
        ),
        len => {
            return Err(SessionError::StringWrongLength {
                format: FORMAT,
                len,
            });
        }
    };
    let dc_id = check_dc_id(i64::from(raw[0]))?;
    let key =
        AuthKey::from_slice(&raw[key_at..key_at + 256]).ok_or(SessionError::StringWrongLength {
            format: FORMAT,
            len: raw.len(),
        })?;
    if key.is_all_zero() {
        return Err(SessionError::StringNoAuthKey);
    }
    let user_id = i64::try_from(user_id).map_err(|_| SessionError::InvalidUserId)?;
    let mut session = ImportedSession::new(format, dc_id, key);
    session.test_mode = test_mode;
    session.user_id = (user_id > 0).then_some(user_id);
    session.is_bot = Some(is_bot);
    session.api_id = api_id
        .and_then(|a| i32::try_from(a).ok())
        .filter(|a| *a > 0);
    Ok(session)
}

/// Writes a current-layout Pyrogram string (also read by Hydrogram and Kurigram).
/// Needs the API id and the user id: Pyrogram treats a session without a user id as logged out.
pub fn export_string(params: &ExportParams<'_>) -> Result<Secret, SessionError> {
    let out_of_range = |field| SessionError::ExportOutOfRange {
        format: FORMAT,
        field,
    };
    let missing = |field| SessionError::ExportMissingField {
        format: FORMAT,
        field,
    };
    let dc_id = u8::try_from(params.dc_id)
        .ok()
        .filter(|d| *d > 0)
        .ok_or(out_of_range("dc id"))?;
    let api_id = params.api_id.ok_or(missing("API id"))?;
    let api_id = u32::try_from(api_id)
        .ok()
        .filter(|a| *a > 0)
        .ok_or(out_of_range("API id"))?;
    let user_id = params.user_id.ok_or(missing("user id"))?;
    let user_id = u64::try_from(user_id)
        .ok()
        .filter(|u| *u > 0)
        .ok_or(out_of_range("user id"))?;
    if params.auth_key.is_all_zero() {
        return Err(missing("auth key"));
    }
    let mut raw = Zeroizing::new(Vec::with_capacity(RAW_LEN_CURRENT));
    raw.push(dc_id);
    raw.extend_from_slice(&api_id.to_be_bytes());
    raw.push(u8::from(params.test_mode));
    raw.extend_from_slice(params.auth_key.as_bytes());
    raw.extend_from_slice(&user_id.to_be_bytes());
    raw.push(u8::from(params.is_bot.unwrap_or(false)));
    Ok(Secret::new(b64::URL_SAFE_UNPADDED.encode(&*raw)))
}

/// Parses a Pyrogram 2.x, Hydrogram or Kurigram `.session` SQLite file.
pub fn parse_file(bytes: &[u8]) -> Result<ImportedSession, SessionError> {
    let db = SessionDb::open(bytes)?;
    read_db(&db)
}

/// Reads an opened Pyrogram-family database. Columns are selected by name because migrations
/// appended `api_id` (Pyrogram v3) and `server_address`/`port` (Kurigram) at the end.
pub(crate) fn read_db(db: &SessionDb) -> Result<ImportedSession, SessionError> {
    let cols = db.columns("sessions")?;
    cols.require(&["dc_id", "auth_key"])?;
    let version = db.version("version", "number")?;
    let format = if cols.has("server_address") || version.is_some_and(|v| v >= 4) {
        SessionFormat::KurigramFile
    } else {
        SessionFormat::PyrogramFile
    };
    let sql = format!(
        "SELECT \"dc_id\", \"auth_key\", {}, {}, {}, {}, {}, {} FROM \"sessions\" LIMIT 16",
        cols.select("api_id"),
        cols.select("test_mode"),
        cols.select("user_id"),
        cols.select("is_bot"),
        cols.select("server_address"),
        cols.select("port"),
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut any_row = false;
    let mut bad_key = None;
    let mut found = None;
    while let Some(row) = rows.next()? {
        any_row = true;
        let key = match sqlite::key_cell(row.get_ref(1)?) {
            KeyCell::Missing => continue,
            KeyCell::Bad(reason) => {
                bad_key.get_or_insert(reason);
                continue;
            }
            KeyCell::Key(key) => key,
        };
        let dc_id = sqlite::int(row.get_ref(0)?).ok_or(SessionError::FileBadValue {
            table: "sessions",
            column: "dc_id",
            reason: "not an integer",
        })?;
        let mut session = ImportedSession::new(format, check_dc_id(dc_id)?, key);
        session.api_id = sqlite::int32(row.get_ref(2)?).filter(|a| *a > 0);
        session.test_mode = sqlite::flag(row.get_ref(3)?).unwrap_or(false);
        session.user_id = match sqlite::int(row.get_ref(4)?) {
            Some(id) if id < 0 => return Err(SessionError::InvalidUserId),
            Some(id) => (id > 0).then_some(id),
            None => None,
        };
        session.is_bot = sqlite::flag(row.get_ref(5)?);
        session.server_addr = crate::telethon::read_addr(
            sqlite::text(row.get_ref(6)?),
            sqlite::int(row.get_ref(7)?),
        )?;
        found = Some(session);
        break;
    }
    drop(rows);
    let mut session = match (found, bad_key, any_row) {
        (Some(found), _, _) => found,
        (None, Some(reason), _) => {
            return Err(SessionError::FileBadValue {
                table: "sessions",
                column: "auth_key",
                reason,
            });
        }
        (None, None, true) => return Err(SessionError::FileNoAuthKey),
        (None, None, false) => return Err(SessionError::FileNoSessionRow),
    };

    session.peers = read_peers(db)?;
    if let Some(me) = session
        .user_id
        .and_then(|id| session.peers.iter().find(|p| p.id == id))
    {
        session.username.clone_from(&me.username);
        session.phone.clone_from(&me.phone);
        if session.is_bot.is_none() {
            session.is_bot = Some(me.kind == PeerKind::Bot);
        }
    }
    session.updates = sqlite::read_update_state(db)?;
    Ok(session)
}

/// Reads `peers` (and Kurigram's `usernames`). Rows that do not parse are skipped.
fn read_peers(db: &SessionDb) -> Result<Vec<ImportedPeer>, SessionError> {
    let Some(cols) = db.optional_columns("peers")? else {
        return Ok(Vec::new());
    };
    if !cols.has("id") {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT \"id\", {}, {}, {}, {} FROM \"peers\" LIMIT {MAX_ROWS}",
        cols.select("access_hash"),
        cols.select("type"),
        cols.select("username"),
        cols.select("phone_number"),
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut peers = Vec::new();
    while let Some(row) = rows.next()? {
        let Some(id) = sqlite::int(row.get_ref(0)?) else {
            continue;
        };
        let kind = sqlite::text(row.get_ref(2)?)
            .and_then(|t| kind_from_type(&t))
            .or_else(|| PeerKind::from_marked_id(id));
        let Some(kind) = kind else {
            continue;
        };
        peers.push(ImportedPeer {
            id,
            access_hash: sqlite::int(row.get_ref(1)?),
            kind,
            username: sqlite::text(row.get_ref(3)?),
            phone: sqlite::text(row.get_ref(4)?)
                .as_deref()
                .and_then(crate::model::normalize_phone),
            name: None,
        });
    }
    drop(rows);
    drop(stmt);

    let usernames = read_usernames(db)?;
    for peer in &mut peers {
        if peer.username.is_none() {
            peer.username = usernames.get(&peer.id).cloned();
        }
    }
    Ok(peers)
}

/// Kurigram keeps usernames in their own table; the first one per peer wins.
fn read_usernames(db: &SessionDb) -> Result<HashMap<i64, String>, SessionError> {
    let mut map = HashMap::new();
    let Some(cols) = db.optional_columns("usernames")? else {
        return Ok(map);
    };
    if !cols.has("id") || !cols.has("username") {
        return Ok(map);
    }
    let sql = format!("SELECT \"id\", \"username\" FROM \"usernames\" LIMIT {MAX_ROWS}");
    let mut stmt = db.conn().prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let (Some(id), Some(name)) =
            (sqlite::int(row.get_ref(0)?), sqlite::text(row.get_ref(1)?))
        {
            map.entry(id).or_insert(name);
        }
    }
    Ok(map)
}

/// Pyrogram's `peers.type` text.
fn kind_from_type(kind: &str) -> Option<PeerKind> {
    Some(match kind {
        "user" => PeerKind::User,
        "bot" => PeerKind::Bot,
        "group" => PeerKind::Chat,
        "channel" | "community" => PeerKind::Channel,
        "supergroup" | "forum" => PeerKind::Supergroup,
        _ => return None,
    })
}
