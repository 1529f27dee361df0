//! Importing a directory of accounts laid out as `{phone}/{phone}.json` + `{phone}/{phone}.session`
//! (also flat `{phone}.json` + `{phone}.session` pairs at the top level), one result per account.
//!
//! A bad account never stops the others, and a broken JSON next to a usable `.session` only
//! becomes a warning on that account.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::{JsonMeta, MAX_JSON_BYTES};
use crate::detect::parse_session_bytes;
use crate::model::normalize_phone;
use crate::sqlite::MAX_SESSION_FILE_BYTES;
use crate::{ImportedSession, SessionError};

/// One account found in an import folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderEntry {
    /// The sub-folder name, or the file stem for a top-level pair (usually the phone number).
    pub name: String,
    /// The JSON file used, if any.
    pub json_path: Option<PathBuf>,
    /// The `.session` file used, if any.
    pub session_path: Option<PathBuf>,
    /// The imported session, or why this account could not be imported.
    pub result: Result<ImportedSession, SessionError>,
}

/// Parses one account from its JSON and/or `.session` bytes, as an upload of the two files.
///
/// With both present, a JSON that is broken or has a bad field becomes a warning and the
/// `.session` alone is used.
pub fn parse_pair(
    json: Option<&[u8]>,
    session_file: Option<&[u8]>,
) -> Result<ImportedSession, SessionError> {
    match (json, session_file) {
        (Some(json), session_file) => match JsonMeta::parse(json) {
            Ok(meta) => {
                let session = meta.session(session_file)?;
                meta.merge_into(session)
            }
            Err(json_err) => match session_file {
                Some(bytes) => {
                    let mut session = parse_session_bytes(bytes)?;
                    session.warnings.push(json_err);
                    Ok(session)
                }
                None => Err(json_err),
            },
        },
        (None, Some(bytes)) => parse_session_bytes(bytes),
        (None, None) => Err(SessionError::JsonNoSession),
    }
}

/// Walks `root` and imports every account in it, sorted by name. Fails only if `root` itself
/// cannot be listed.
pub fn import_folder(root: &Path) -> Result<Vec<FolderEntry>, SessionError> {
    let mut entries = Vec::new();
    let mut top_level: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    for (name, path) in list(root)? {
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => entries.push(scan_dir(name, &path)),
            Ok(meta) if meta.is_file() => {
                if let Some((stem, kind)) = split_name(&name) {
                    let slot = top_level.entry(stem.to_owned()).or_default();
                    match kind {
                        FileKind::Json => slot.0 = Some(path),
                        FileKind::Session => slot.1 = Some(path),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => entries.push(FolderEntry {
                name,
                json_path: None,
                session_path: None,
                result: Err(io_error(&path, &e)),
            }),
        }
    }
    for (stem, (json_path, session_path)) in top_level {
        entries.push(load(stem, json_path, session_path));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Json,
    Session,
}

/// `("+1555", Json)` for `+1555.json`; `None` for other files.
fn split_name(name: &str) -> Option<(&str, FileKind)> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() {
        return None;
    }
    if ext.eq_ignore_ascii_case("json") {
        Some((stem, FileKind::Json))
    } else if ext.eq_ignore_ascii_case("session") {
        Some((stem, FileKind::Session))
    } else {
        None
    }
}

/// The visible entries of a directory, sorted by name.
fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, SessionError> {
    let read = fs::read_dir(dir).map_err(|e| io_error(dir, &e))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        out.push((name, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// One `{phone}/` folder: prefers `{phone}.json` / `{phone}.session`, else the only file of
/// each kind.
fn scan_dir(name: String, dir: &Path) -> FolderEntry {
    let files = match list(dir) {
        Ok(files) => files,
        Err(e) => {
            return FolderEntry {
                name,
                json_path: None,
                session_path: None,
                result: Err(e),
            };
        }
    };
    let pick = |wanted: FileKind| {
        let candidates: Vec<&(String, PathBuf)> = files
            .iter()
            .filter(|(file, path)| {
                split_name(file).is_some_and(|(_, kind)| kind == wanted) && path.is_file()
            })
            .collect();
        candidates
            .iter()
            .find(|(file, _)| split_name(file).is_some_and(|(stem, _)| stem == name))
            .or_else(|| (candidates.len() == 1).then(|| &candidates[0]))
            .map(|(_, path)| path.clone())
    };
    let json_path = pick(FileKind::Json);
    let session_path = pick(FileKind::Session);
    if json_path.is_none() && session_path.is_none() {
        return FolderEntry {
            name,
            json_path,
            session_path,
            result: Err(SessionError::FolderNoSession {
                dir: dir.to_path_buf(),
            }),
        };
    }
    load(name, json_path, session_path)
}

/// Reads and parses one account's files.
fn load(name: String, json_path: Option<PathBuf>, session_path: Option<PathBuf>) -> FolderEntry {
    let result = (|| {
        let session = session_path
            .as_deref()
            .map(|p| read_capped(p, MAX_SESSION_FILE_BYTES, "session file"))
            .transpose()?;
        let json = match json_path
            .as_deref()
            .map(|p| read_capped(p, MAX_JSON_BYTES, "JSON file"))
        {
            Some(Ok(bytes)) => Some(bytes),
            // An unreadable JSON is as good as a broken one when the .session is there.
            Some(Err(e)) => match session.as_deref() {
                Some(bytes) => {
                    let mut imported = parse_session_bytes(bytes)?;
                    imported.warnings.push(e);
                    return Ok(imported);
                }
                None => return Err(e),
            },
            None => None,
        };
        parse_pair(json.as_deref(), session.as_deref())
    })();
    let result = result.map(|session| phone_from_name(session, &name));
    FolderEntry {
        name,
        json_path,
        session_path,
        result,
    }
}

/// The phone folder layout names folders (and files) after the phone number: a session without a
/// phone takes it from such a name.
pub(crate) fn phone_from_name(mut session: ImportedSession, name: &str) -> ImportedSession {
    if session.phone.is_none() && is_phone_like(name) {
        session.phone = normalize_phone(name);
    }
    session
}

/// Whether a folder name looks like a phone number (`+1 555-0100`, `573025288905`).
fn is_phone_like(name: &str) -> bool {
    let digits = name.chars().filter(char::is_ascii_digit).count();
    digits >= 5
        && name
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
}

/// Reads a file, refusing ones larger than `max`.
fn read_capped(path: &Path, max: usize, what: &'static str) -> Result<Vec<u8>, SessionError> {
    let file = fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() > max {
        let len = fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(SessionError::TooLarge {
            what,
            len,
            max: max as u64,
        });
    }
    Ok(bytes)
}

fn io_error(path: &Path, err: &std::io::Error) -> SessionError {
    SessionError::Io {
        path: path.to_path_buf(),
        detail: err.to_string(),
    }
}
