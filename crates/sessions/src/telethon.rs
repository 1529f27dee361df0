//! Telethon v1: `StringSession` (parse and export) and the v7 `.session` SQLite file.
//!
//! String: `'1' + urlsafe_b64(pack('>B{4|16}sH256s', dc_id, ip, port, auth_key))`, padded.
//! File: `sessions(dc_id, server_address, port, auth_key, takeout_id)`, `entities` (marked ids;
//! row `id = 0` holds the self user id in `hash`), `update_state`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::Engine;
use zeroize::Zeroizing;

use crate::b64;
use crate::model::check_dc_id;
use crate::sqlite::{self, KeyCell, MAX_ROWS, SessionDb};
use crate::{
    AuthKey, ExportParams, ImportedPeer, ImportedSession, PeerKind, Secret, SessionError,
    SessionFormat,
};

const FORMAT: &str = "Telethon";
const VERSION_CHAR: char = '1';
const RAW_LEN_V4: usize = 1 + 4 + 2 + 256;
const RAW_LEN_V6: usize = 1 + 16 + 2 + 256;

/// Parses a Telethon `StringSession`.
pub fn parse_string(input: &str) -> Result<ImportedSession, SessionError> {
    let cleaned = b64::clean(input)?;
    let mut chars = cleaned.chars();
    match chars.next() {
        Some(VERSION_CHAR) => {}
        Some(other) => {
            return Err(SessionError::UnsupportedVersion {
                format: FORMAT,
                version: other.to_string(),
            });
        }
        None => return Err(SessionError::StringEmpty),
    }
    let raw = b64::decode(chars.as_str())?;
    parse_raw(&raw)
}

/// Whether decoded bytes have one of the two Telethon string lengths.
pub(crate) fn has_raw_len(raw: &[u8]) -> bool {
    raw.len() == RAW_LEN_V4 || raw.len() == RAW_LEN_V6
}

/// Parses the decoded bytes after the version character.
pub(crate) fn parse_raw(raw: &[u8]) -> Result<ImportedSession, SessionError> {
    let ip_len = match raw.len() {
        RAW_LEN_V4 => 4,
        RAW_LEN_V6 => 16,
        len => {
            return Err(SessionError::StringWrongLength {
                format: FORMAT,
                len,
            });
        }
    };
    let dc_id = check_dc_id(i64::from(raw[0]))?;
    let ip_bytes = &raw[1..1 + ip_len];
    let ip = if ip_len == 4 {
        let mut octets = [0u8; 4];
        octets.copy_from_slice(ip_bytes);
        IpAddr::V4(Ipv4Addr::from(octets))
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(ip_bytes);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let port = u16::from_be_bytes([raw[1 + ip_len], raw[2 + ip_len]]);
    if port == 0 {
        return Err(SessionError::InvalidAddress {
            detail: "port is zero",
        });
    }
    let key = AuthKey::from_slice(&raw[3 + ip_len..]).ok_or(SessionError::StringWrongLength {
        format: FORMAT,
        len: raw.len(),
    })?;
    if key.is_all_zero() {
        return Err(SessionError::StringNoAuthKey);
    }
    let mut session = ImportedSession::new(SessionFormat::TelethonString, dc_id, key);
    session.server_addr = Some(SocketAddr::new(ip, port));
    session.test_mode = crate::dc::is_test_dc_ip(ip);
    Ok(session)
}

/// Writes a Telethon `StringSession` (IPv4 or IPv6 by the address).
pub fn export_string(params: &ExportParams<'_>) -> Result<Secret, SessionError> {
    let dc_id = u8::try_from(params.dc_id).ok().filter(|d| *d > 0).ok_or(
        SessionError::ExportOutOfRange {
            format: FORMAT,
            field: "dc id",
        },
    )?;
    let addr = params
        .server_addr
        .or_else(|| crate::dc::dc_address(params.dc_id, params.test_mode, false))
        .ok_or(SessionError::ExportMissingField {
            format: FORMAT,
            field: "server address",
        })?;
    if params.auth_key.is_all_zero() {
        return Err(SessionError::ExportMissingField {
            format: FORMAT,
            field: "auth key",
        });
    }
    let mut raw = Zeroizing::new(Vec::with_capacity(RAW_LEN_V6));
    raw.push(dc_id);
    match addr.ip() {
        IpAddr::V4(ip) => raw.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => raw.extend_from_slice(&ip.octets()),
    }
    raw.extend_from_slice(&addr.port().to_be_bytes());
    raw.extend_from_slice(params.auth_key.as_bytes());
    let mut out = String::with_capacity(1 + raw.len().div_ceil(3) * 4);
    out.push(VERSION_CHAR);
    b64::URL_SAFE_PADDED.encode_string(&*raw, &mut out);
    Ok(Secret::new(out))
}

/// Parses a Telethon v1 `.session` SQLite file.
pub fn parse_file(bytes: &[u8]) -> Result<ImportedSession, SessionError> {
    let db = SessionDb::open(bytes)?;
    read_db(&db)
}

/// Reads an opened Telethon database.
pub(crate) fn read_db(db: &SessionDb) -> Result<ImportedSession, SessionError> {
    let cols = db.columns("sessions")?;
    cols.require(&["dc_id", "server_address", "port", "auth_key"])?;
    let mut stmt = db.conn().prepare(
        "SELECT \"dc_id\", \"server_address\", \"port\", \"auth_key\" FROM \"sessions\" LIMIT 16",
    )?;
    let mut rows = stmt.query([])?;
    let mut any_row = false;
    let mut bad_key = None;
    let mut found = None;
    while let Some(row) = rows.next()? {
        any_row = true;
        match sqlite::key_cell(row.get_ref(3)?) {
            KeyCell::Missing => continue,
            KeyCell::Bad(reason) => {
                bad_key.get_or_insert(reason);
                continue;
            }
            KeyCell::Key(key) => {
                let dc_id = sqlite::int(row.get_ref(0)?).ok_or(SessionError::FileBadValue {
                    table: "sessions",
                    column: "dc_id",
                    reason: "not an integer",
                })?;
                let dc_id = check_dc_id(dc_id)?;
                let addr = read_addr(sqlite::text(row.get_ref(1)?), sqlite::int(row.get_ref(2)?))?;
                found = Some((dc_id, addr, key));
                break;
            }
        }
    }
    drop(rows);
    let (dc_id, addr, key) = match (found, bad_key, any_row) {
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

    let mut session = ImportedSession::new(SessionFormat::TelethonFile, dc_id, key);
    session.server_addr = addr;
    session.test_mode = addr.is_some_and(|a| crate::dc::is_test_dc_ip(a.ip()));
    let (self_id, peers) = read_entities(db)?;
    session.user_id = self_id;
    if let Some(me) = self_id.and_then(|id| peers.iter().find(|p| p.id == id)) {
        session.username.clone_from(&me.username);
        session.phone.clone_from(&me.phone);
    }
    session.peers = peers;
    session.updates = sqlite::read_update_state(db)?;
    Ok(session)
}

/// Parses `server_address` text and `port`; both absent means "use the DC table".
pub(crate) fn read_addr(
    address: Option<String>,
    port: Option<i64>,
) -> Result<Option<SocketAddr>, SessionError> {
    let Some(address) = address else {
        return Ok(None);
    };
    let ip: IpAddr = address
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| SessionError::InvalidAddress {
            detail: "server_address is not an IP address",
        })?;
    let port = port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or(SessionError::InvalidAddress {
            detail: "port is missing or out of range",
        })?;
    Ok(Some(SocketAddr::new(ip, port)))
}

/// Reads `entities`: the self id (row 0) and the cached peers. Rows that do not parse are skipped.
fn read_entities(db: &SessionDb) -> Result<(Option<i64>, Vec<ImportedPeer>), SessionError> {
    let Some(cols) = db.optional_columns("entities")? else {
        return Ok((None, Vec::new()));
    };
    if !cols.has("id") || !cols.has("hash") {
        return Ok((None, Vec::new()));
    }
    let sql = format!(
        "SELECT \"id\", \"hash\", {}, {}, {} FROM \"entities\" LIMIT {MAX_ROWS}",
        cols.select("username"),
        cols.select("phone"),
        cols.select("name"),
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut self_id = None;
    let mut peers = Vec::new();
    while let Some(row) = rows.next()? {
        let Some(id) = sqlite::int(row.get_ref(0)?) else {
            continue;
        };
        let hash = sqlite::int(row.get_ref(1)?);
        if id == 0 {
            self_id = hash.filter(|h| *h > 0);
            continue;
        }
        let Some(kind) = PeerKind::from_marked_id(id) else {
            continue;
        };
        peers.push(ImportedPeer {
            id,
            access_hash: hash,
            kind,
            username: sqlite::text(row.get_ref(2)?),
            phone: sqlite::text(row.get_ref(3)?)
                .as_deref()
                .and_then(crate::model::normalize_phone),
            name: sqlite::text(row.get_ref(4)?),
        });
    }
    Ok((self_id, peers))
}
