//! gramjs (`telegram` on npm) `StringSession`: `'1' + base64(dc_id:u8 | addr_len:i16 BE |
//! address text | port:i16 BE | auth_key)`.

use std::net::{IpAddr, SocketAddr};

use crate::model::check_dc_id;
use crate::{AuthKey, ImportedSession, SessionError, SessionFormat, b64};

const FORMAT: &str = "gramjs";
const VERSION_CHAR: char = '1';
/// dc_id + address length + port + key.
const FIXED_LEN: usize = 1 + 2 + 2 + 256;

/// Parses a gramjs `StringSession`.
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

/// The address length field, when the bytes are long enough to hold it.
fn addr_len(raw: &[u8]) -> Option<usize> {
    let len = i16::from_be_bytes([*raw.get(1)?, *raw.get(2)?]);
    usize::try_from(len).ok()
}

/// Whether decoded bytes have gramjs's shape: a consistent length field followed by an IP
/// address in text. Telethon strings can have the same length, but their bytes 1..3 are the
/// start of a binary address, which never passes both checks.
pub(crate) fn looks_like(raw: &[u8]) -> bool {
    match addr_len(raw) {
        Some(len) if len > 0 && FIXED_LEN + len == raw.len() => parse_ip(&raw[3..3 + len]).is_ok(),
        _ => false,
    }
}

/// Whether the length field agrees with the total length (the address may still be bad).
pub(crate) fn has_consistent_len(raw: &[u8]) -> bool {
    addr_len(raw).is_some_and(|len| len > 0 && FIXED_LEN + len == raw.len())
}

fn parse_ip(address: &[u8]) -> Result<IpAddr, SessionError> {
    let address = std::str::from_utf8(address).map_err(|_| SessionError::InvalidAddress {
        detail: "address is not text",
    })?;
    address
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| SessionError::InvalidAddress {
            detail: "address is not an IP address",
        })
}

/// Parses the decoded bytes after the version character.
pub(crate) fn parse_raw(raw: &[u8]) -> Result<ImportedSession, SessionError> {
    let len = match addr_len(raw) {
        Some(len) if FIXED_LEN + len == raw.len() => len,
        _ => {
            return Err(SessionError::StringWrongLength {
                format: FORMAT,
                len: raw.len(),
            });
        }
    };
    let dc_id = check_dc_id(i64::from(raw[0]))?;
    let ip = parse_ip(&raw[3..3 + len])?;
    let port = u16::from_be_bytes([raw[3 + len], raw[4 + len]]);
    if port == 0 {
        return Err(SessionError::InvalidAddress {
            detail: "port is zero",
        });
    }
    let key = AuthKey::from_slice(&raw[5 + len..]).ok_or(SessionError::StringWrongLength {
        format: FORMAT,
        len: raw.len(),
    })?;
    if key.is_all_zero() {
        return Err(SessionError::StringNoAuthKey);
    }
    let mut session = ImportedSession::new(SessionFormat::GramjsString, dc_id, key);
    session.server_addr = Some(SocketAddr::new(ip, port));
    session.test_mode = crate::dc::is_test_dc_ip(ip);
    Ok(session)
}
