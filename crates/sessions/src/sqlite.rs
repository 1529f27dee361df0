//! Opening untrusted `.session` bytes as a read-only, hardened SQLite database, and reading
//! loosely typed values out of it without trusting the schema.

use std::collections::HashSet;
use std::io::Write;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tempfile::NamedTempFile;

use crate::SessionError;

/// Largest `.session` file accepted (real ones are kilobytes to a few megabytes).
pub const MAX_SESSION_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Most rows read from a peer or update-state table.
pub(crate) const MAX_ROWS: usize = 200_000;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const SQLITE_HEADER_LEN: usize = 100;

/// Whether the bytes start like an SQLite database.
pub fn looks_like_sqlite(bytes: &[u8]) -> bool {
    bytes.len() >= SQLITE_HEADER_LEN && bytes.starts_with(SQLITE_MAGIC)
}

/// An uploaded database, copied to a private temp file and opened read-only.
pub(crate) struct SessionDb {
    // Field order matters: the connection must close before the file is deleted.
    conn: Connection,
    _file: NamedTempFile,
}

/// The columns one table has, lower-cased.
pub(crate) struct Columns {
    table: &'static str,
    names: HashSet<String>,
}

impl Columns {
    /// Whether the table has this column.
    pub(crate) fn has(&self, column: &str) -> bool {
        self.names.contains(column)
    }

    /// Fails with `session_file_missing_column` unless every column exists.
    pub(crate) fn require(&self, columns: &[&'static str]) -> Result<(), SessionError> {
        match columns.iter().find(|c| !self.has(c)) {
            Some(column) => Err(SessionError::FileMissingColumn {
                table: self.table,
                column,
            }),
            None => Ok(()),
        }
    }

    /// A select-list item: the column, or `NULL` when the table lacks it.
    pub(crate) fn select(&self, column: &str) -> String {
        if self.has(column) {
            format!("\"{column}\"")
        } else {
            "NULL".to_owned()
        }
    }
}

impl SessionDb {
    /// Copies the bytes to a temp file and opens it read-only with SQLite's defensive settings.
    pub(crate) fn open(bytes: &[u8]) -> Result<Self, SessionError> {
        if bytes.len() > MAX_SESSION_FILE_BYTES {
            return Err(SessionError::TooLarge {
                what: "session file",
                len: bytes.len() as u64,
                max: MAX_SESSION_FILE_BYTES as u64,
            });
        }
        if !looks_like_sqlite(bytes) {
            return Err(SessionError::FileNotSqlite);
        }
        let temp_err = |e: std::io::Error| SessionError::TempFile {
            detail: e.to_string(),
        };
        let mut file = tempfile::Builder::new()
            .prefix("switchboard-session-")
            .suffix(".sqlite")
            .tempfile()
            .map_err(temp_err)?;
        // Bytes 18 and 19 are the read and write format versions; 2 means WAL. Only the main
        // file was uploaded, so mark it as a rollback-journal database: SQLite then opens it
        // read-only without needing `-wal` and `-shm` companions.
        let mut header = [0u8; SQLITE_HEADER_LEN];
        header.copy_from_slice(&bytes[..SQLITE_HEADER_LEN]);
        for b in &mut header[18..20] {
            if *b == 2 {
                *b = 1;
            }
        }
        file.write_all(&header).map_err(temp_err)?;
        file.write_all(&bytes[SQLITE_HEADER_LEN..])
            .map_err(temp_err)?;
        file.flush().map_err(temp_err)?;

        let conn = Connection::open_with_flags(
            file.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The schema comes from an untrusted upload: no triggers, no views, no functions with
        // side effects, and bounded value sizes.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 1024 * 1024);
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
        conn.pragma_update(None, "cell_size_check", true)?;
        conn.pragma_update(None, "mmap_size", 0)?;
        // Reading the schema forces SQLite to parse the header: "file is not a database"
        // (an encrypted or truncated file) surfaces here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })?;
        Ok(Self { conn, _file: file })
    }

    /// The connection, for queries.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Whether a plain (not virtual) table of this name exists.
    pub(crate) fn has_table(&self, table: &str) -> Result<bool, SessionError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT type, sql FROM sqlite_master WHERE name = ?1 COLLATE NOCASE LIMIT 1",
                [table],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((kind, sql)) => {
                let is_virtual = sql
                    .as_deref()
                    .map(|s| {
                        s.trim_start()
                            .to_ascii_uppercase()
                            .starts_with("CREATE VIRTUAL")
                    })
                    .unwrap_or(false);
                kind == "table" && !is_virtual
            }
            None => false,
        })
    }

    /// The columns of a table, or `session_file_missing_table`.
    pub(crate) fn columns(&self, table: &'static str) -> Result<Columns, SessionError> {
        if !self.has_table(table)? {
            return Err(SessionError::FileMissingTable { table });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?;
        let names = stmt
            .query_map([table], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        Ok(Columns { table, names })
    }

    /// The columns of a table if it exists.
    pub(crate) fn optional_columns(
        &self,
        table: &'static str,
    ) -> Result<Option<Columns>, SessionError> {
        match self.columns(table) {
            Ok(cols) => Ok(Some(cols)),
            Err(SessionError::FileMissingTable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The largest value of an integer column in a one-column version table, if any.
    pub(crate) fn version(
        &self,
        table: &'static str,
        column: &'static str,
    ) -> Result<Option<i64>, SessionError> {
        let Some(cols) = self.optional_columns(table)? else {
            return Ok(None);
        };
        if !cols.has(column) {
            return Ok(None);
        }
        let sql = format!("SELECT \"{column}\" FROM \"{table}\" LIMIT 16");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut best = None;
        while let Some(row) = rows.next()? {
            if let Some(v) = int(row.get_ref(0)?) {
                best = Some(best.map_or(v, |b: i64| b.max(v)));
            }
        }
        Ok(best)
    }
}

/// An integer from a loosely typed SQLite value (integer, integral real, or numeric text).
pub(crate) fn int(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        // In range and integral, so the conversion is exact.
        ValueRef::Real(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => {
            Some(f as i64)
        }
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// An `i32` from a loosely typed value, `None` when absent or out of range.
pub(crate) fn int32(value: ValueRef<'_>) -> Option<i32> {
    int(value).and_then(|v| i32::try_from(v).ok())
}

/// Non-empty text from a loosely typed value (integers become their decimal form).
pub(crate) fn text(value: ValueRef<'_>) -> Option<String> {
    let s = match value {
        ValueRef::Text(t) => String::from_utf8_lossy(t).trim().to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// Truthiness the way Python's `bool()` reads an SQLite integer.
pub(crate) fn flag(value: ValueRef<'_>) -> Option<bool> {
    int(value).map(|v| v != 0)
}

/// What the `auth_key` cell of a session row holds.
pub(crate) enum KeyCell {
    /// NULL, an empty blob, or all zeros: never logged in.
    Missing,
    /// Something that is not a 256-byte blob.
    Bad(&'static str),
    /// A usable key.
    Key(crate::AuthKey),
}

/// Reads an `auth_key` cell.
pub(crate) fn key_cell(value: ValueRef<'_>) -> KeyCell {
    match value {
        ValueRef::Null => KeyCell::Missing,
        ValueRef::Blob([]) => KeyCell::Missing,
        ValueRef::Blob(b) => match crate::AuthKey::from_slice(b) {
            Some(key) if key.is_all_zero() => KeyCell::Missing,
            Some(key) => KeyCell::Key(key),
            None => KeyCell::Bad("not 256 bytes"),
        },
        _ => KeyCell::Bad("not a blob"),
    }
}

/// Reads `update_state(id, pts, qts, date, seq)`: row 0 is account-wide, other ids are bare
/// channel ids holding that channel's pts (Telethon v7 and Kurigram).
pub(crate) fn read_update_state(
    db: &SessionDb,
) -> Result<Option<crate::ImportedUpdateState>, SessionError> {
    let Some(cols) = db.optional_columns("update_state")? else {
        return Ok(None);
    };
    if !cols.has("id") || !cols.has("pts") {
        return Ok(None);
    }
    let sql = format!(
        "SELECT \"id\", \"pts\", {}, {}, {} FROM \"update_state\" LIMIT {MAX_ROWS}",
        cols.select("qts"),
        cols.select("date"),
        cols.select("seq"),
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut state = crate::ImportedUpdateState::default();
    let mut seen = false;
    while let Some(row) = rows.next()? {
        let (Some(id), Some(pts)) = (int(row.get_ref(0)?), int32(row.get_ref(1)?)) else {
            continue;
        };
        seen = true;
        if id == 0 {
            state.pts = pts;
            state.qts = int32(row.get_ref(2)?).unwrap_or(0);
            state.date = int32(row.get_ref(3)?).unwrap_or(0);
            state.seq = int32(row.get_ref(4)?).unwrap_or(0);
        } else if id > 0 {
            state.channels.push(crate::ChannelPts {
                channel_id: id,
                pts,
            });
        }
    }
    Ok(seen.then_some(state))
}
