//! Uploaded files (a browser's file or folder picker) grouped into accounts: `.session` files
//! alone, JSON + `.session` pairs sharing a folder and a stem, and the phone folder layout
//! `{phone}/{phone}.json` + `{phone}/{phone}.session` sent with relative paths as file names.
//!
//! Like [`crate::import_folder`], one bad account never stops the others; unlike it, nothing
//! touches the file system.

use std::collections::BTreeMap;

use crate::folder::{parse_pair, phone_from_name};
use crate::{ImportedSession, SessionError};

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The name the client sent: a base name, or a relative path for a folder upload.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// One account found among the uploaded files.
#[derive(Debug)]
pub struct UploadEntry {
    /// The account's relative path without extension (`batch/+1555/+1555`), or the file name
    /// of a file that belongs to no account.
    pub name: String,
    /// The uploaded names that make up this entry.
    pub files: Vec<String>,
    /// The imported session, or why this entry cannot be imported.
    pub result: Result<ImportedSession, SessionError>,
}

#[derive(Default)]
struct Group {
    dir: String,
    json: Option<(String, Vec<u8>)>,
    session: Option<(String, Vec<u8>)>,
    duplicate: Option<String>,
}

/// Groups uploaded files into accounts, by folder and stem, and parses each account. Hidden
/// files (`.DS_Store`, …) are skipped; any other file that is neither `.json` nor `.session`
/// becomes an entry of its own with `session_file_type_unsupported`. Entries come sorted by
/// name.
pub fn group_uploads(files: Vec<UploadedFile>) -> Vec<UploadEntry> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut entries = Vec::new();
    for file in files {
        let parts: Vec<&str> = file
            .name
            .split(['/', '\\'])
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
            .collect();
        let Some((base, dirs)) = parts.split_last() else {
            entries.push(unsupported(file.name));
            continue;
        };
        if base.starts_with('.') {
            continue;
        }
        let shown = parts.join("/");
        let Some((stem, ext)) = base.rsplit_once('.').filter(|(s, _)| !s.is_empty()) else {
            entries.push(unsupported(shown));
            continue;
        };
        let is_json = ext.eq_ignore_ascii_case("json");
        if !is_json && !ext.eq_ignore_ascii_case("session") {
            entries.push(unsupported(shown));
            continue;
        }
        let key = dirs
            .iter()
            .chain([&stem])
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        let group = groups.entry(key).or_insert_with(|| Group {
            dir: dirs.join("/"),
            ..Group::default()
        });
        let slot = if is_json {
            &mut group.json
        } else {
            &mut group.session
        };
        if slot.is_some() {
            group.duplicate = Some(shown.clone());
        }
        *slot = Some((shown, file.bytes));
    }
    for (name, group) in pair_lone_files(groups) {
        entries.push(parse_group(name, group));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Like [`crate::import_folder`]: in a sub-folder whose only files are one JSON and one
/// `.session` with different stems (`+1555.json`, `1555.session`), the two are one account,
/// named after the folder.
fn pair_lone_files(groups: BTreeMap<String, Group>) -> BTreeMap<String, Group> {
    let mut by_dir: BTreeMap<String, Vec<(String, Group)>> = BTreeMap::new();
    for (name, group) in groups {
        by_dir
            .entry(group.dir.clone())
            .or_default()
            .push((name, group));
    }
    let mut out = BTreeMap::new();
    for (dir, mut list) in by_dir {
        let lone = |g: &Group| g.duplicate.is_none() && g.json.is_some() != g.session.is_some();
        if !dir.is_empty()
            && list.iter().all(|(_, g)| lone(g))
            && let [(_, a), (_, b)] = &mut list[..]
            && a.json.is_some() != b.json.is_some()
        {
            let merged = Group {
                json: a.json.take().or(b.json.take()),
                session: a.session.take().or(b.session.take()),
                dir: dir.clone(),
                duplicate: None,
            };
            out.insert(dir, merged);
            continue;
        }
        out.extend(list);
    }
    out
}

fn unsupported(name: String) -> UploadEntry {
    UploadEntry {
        files: vec![name.clone()],
        result: Err(SessionError::UnsupportedFileType { name: name.clone() }),
        name,
    }
}

fn parse_group(name: String, group: Group) -> UploadEntry {
    let files: Vec<String> = [&group.json, &group.session]
        .into_iter()
        .flatten()
        .map(|(n, _)| n.clone())
        .collect();
    let result = match group.duplicate {
        Some(dup) => Err(SessionError::DuplicateFile { name: dup }),
        None => parse_pair(
            group.json.as_ref().map(|(_, b)| b.as_slice()),
            group.session.as_ref().map(|(_, b)| b.as_slice()),
        ),
    };
    let last = name.rsplit('/').next().unwrap_or(&name);
    let result = result.map(|session| phone_from_name(session, last));
    UploadEntry {
        name,
        files,
        result,
    }
}
