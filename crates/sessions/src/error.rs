//! The one error type of this crate, with a stable snake_case code per variant.
//!
//! Messages name the problem and never carry key bytes, API hashes, passwords or the input itself.

use std::path::PathBuf;

/// Everything that can go wrong while parsing, importing or exporting a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session string is empty (or only whitespace).
    #[error("the session string is empty")]
    StringEmpty,
    /// The session string is not valid base64.
    #[error("the session string is not valid base64")]
    StringInvalidBase64,
    /// The session string decodes, but to a length that the named format does not have.
    #[error("the {format} session string has the wrong length ({len} bytes after decoding)")]
    StringWrongLength {
        /// The format that was expected.
        format: &'static str,
        /// Decoded length in bytes.
        len: usize,
    },
    /// The string matches none of the known session string layouts.
    #[error(
        "the session string matches no known format (Telethon, Pyrogram, Hydrogram, Kurigram, gramjs)"
    )]
    StringUnrecognized,
    /// The session string holds no auth key (Telethon writes an all-zero key for "logged out").
    #[error("the session string holds no auth key")]
    StringNoAuthKey,
    /// The format's version marker is one this crate does not read.
    #[error("unsupported {format} session version {version}")]
    UnsupportedVersion {
        /// The format.
        format: &'static str,
        /// The version found, as text.
        version: String,
    },
    /// The data centre id is out of range (zero, negative or too large for the format).
    #[error("invalid data centre id {dc_id}")]
    InvalidDcId {
        /// The id found.
        dc_id: i64,
    },
    /// A server address or port could not be parsed.
    #[error("invalid server address in the session ({detail})")]
    InvalidAddress {
        /// What was wrong, without the raw bytes.
        detail: &'static str,
    },
    /// The user id is out of range.
    #[error("invalid user id in the session")]
    InvalidUserId,
    /// The input is larger than this crate accepts.
    #[error("the {what} is too large ({len} bytes, at most {max})")]
    TooLarge {
        /// What was too large ("session file", "JSON file", "session string").
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not an SQLite database.
    #[error("the session file is not an SQLite database")]
    FileNotSqlite,
    /// SQLite could not read the file (corrupt, encrypted, or a query failed).
    #[error("the session file could not be read as SQLite: {detail}")]
    FileCorrupt {
        /// SQLite's description of the failure (never row data).
        detail: String,
    },
    /// A table the format needs is missing (or is not a plain table).
    #[error("the session file has no `{table}` table")]
    FileMissingTable {
        /// Table name.
        table: &'static str,
    },
    /// A column the format needs is missing.
    #[error("the session file's `{table}` table has no `{column}` column")]
    FileMissingColumn {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
    },
    /// The `sessions` table is empty.
    #[error("the session file's `sessions` table has no row")]
    FileNoSessionRow,
    /// The session row has no auth key (NULL or empty: the session was never logged in).
    #[error("the session file holds no auth key")]
    FileNoAuthKey,
    /// A value in the file has the wrong type or size.
    #[error("the session file's `{table}.{column}` has an invalid value ({reason})")]
    FileBadValue {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The SQLite file's tables match no known session library.
    #[error("the session file's schema matches no known session library")]
    FileUnknownSchema,
    /// The JSON could not be parsed.
    #[error("the JSON is invalid (line {line}, column {column})")]
    JsonInvalid {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
    /// The JSON is valid but its top level is not an object.
    #[error("the JSON's top level is not an object")]
    JsonNotObject,
    /// A JSON field has a value of the wrong type or shape.
    #[error("the JSON field `{field}` has an invalid value")]
    JsonBadField {
        /// The field's name as found in the file.
        field: String,
    },
    /// The JSON bundle has neither a session string nor a companion `.session` file.
    #[error("the JSON bundle has no session string and no .session file")]
    JsonNoSession,
    /// The JSON and the session disagree (e.g. on the user id).
    #[error("the JSON and the session file disagree on the {field}")]
    BundleMismatch {
        /// Which field disagrees.
        field: &'static str,
    },
    /// A folder holds no usable session file.
    #[error("{} holds no {{phone}}.session file and no JSON with a session string", .dir.display())]
    FolderNoSession {
        /// The folder.
        dir: PathBuf,
    },
    /// An uploaded file is neither a `.session` nor a `.json` file.
    #[error("{name} is neither a .session nor a .json file")]
    UnsupportedFileType {
        /// The file's name as uploaded.
        name: String,
    },
    /// Two uploaded files would be the same account's JSON (or `.session`).
    #[error("{name} was uploaded twice")]
    DuplicateFile {
        /// The file's name as uploaded.
        name: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read {}: {detail}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's description.
        detail: String,
    },
    /// A temporary file for reading SQLite could not be created.
    #[error("cannot create a temporary file to read the session: {detail}")]
    TempFile {
        /// The operating system's description.
        detail: String,
    },
    /// An export needs a field the session does not have.
    #[error("cannot export a {format} session: the {field} is unknown")]
    ExportMissingField {
        /// Target format.
        format: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// An export's field does not fit the target format.
    #[error("cannot export a {format} session: the {field} does not fit the format")]
    ExportOutOfRange {
        /// Target format.
        format: &'static str,
        /// The field.
        field: &'static str,
    },
}

impl SessionError {
    /// The stable snake_case code of this error, for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::StringEmpty => "session_string_empty",
            Self::StringInvalidBase64 => "session_string_invalid_base64",
            Self::StringWrongLength { .. } => "session_string_wrong_length",
            Self::StringUnrecognized => "session_string_unrecognized",
            Self::StringNoAuthKey => "session_string_no_auth_key",
            Self::UnsupportedVersion { .. } => "session_unsupported_version",
            Self::InvalidDcId { .. } => "session_invalid_dc_id",
            Self::InvalidAddress { .. } => "session_invalid_address",
            Self::InvalidUserId => "session_invalid_user_id",
            Self::TooLarge { .. } => "session_too_large",
            Self::FileNotSqlite => "session_file_not_sqlite",
            Self::FileCorrupt { .. } => "session_file_corrupt",
            Self::FileMissingTable { .. } => "session_file_missing_table",
            Self::FileMissingColumn { .. } => "session_file_missing_column",
            Self::FileNoSessionRow => "session_file_no_session_row",
            Self::FileNoAuthKey => "session_file_no_auth_key",
            Self::FileBadValue { .. } => "session_file_bad_value",
            Self::FileUnknownSchema => "session_file_unknown_schema",
            Self::JsonInvalid { .. } => "session_json_invalid",
            Self::JsonNotObject => "session_json_not_object",
            Self::JsonBadField { .. } => "session_json_bad_field",
            Self::JsonNoSession => "session_json_no_session",
            Self::BundleMismatch { .. } => "session_bundle_mismatch",
            Self::FolderNoSession { .. } => "session_folder_no_session",
            Self::UnsupportedFileType { .. } => "session_file_type_unsupported",
            Self::DuplicateFile { .. } => "session_file_duplicate",
            Self::Io { .. } => "session_io",
            Self::TempFile { .. } => "session_temp_file",
            Self::ExportMissingField { .. } => "session_export_missing_field",
            Self::ExportOutOfRange { .. } => "session_export_out_of_range",
        }
    }

    /// Every code this enum can produce, for documentation and tests.
    pub const ALL_CODES: &'static [&'static str] = &[
        "session_string_empty",
        "session_string_invalid_base64",
        "session_string_wrong_length",
        "session_string_unrecognized",
        "session_string_no_auth_key",
        "session_unsupported_version",
        "session_invalid_dc_id",
        "session_invalid_address",
        "session_invalid_user_id",
        "session_too_large",
        "session_file_not_sqlite",
        "session_file_corrupt",
        "session_file_missing_table",
        "session_file_missing_column",
        "session_file_no_session_row",
        "session_file_no_auth_key",
        "session_file_bad_value",
        "session_file_unknown_schema",
        "session_json_invalid",
        "session_json_not_object",
        "session_json_bad_field",
        "session_json_no_session",
        "session_bundle_mismatch",
        "session_folder_no_session",
        "session_file_type_unsupported",
        "session_file_duplicate",
        "session_io",
        "session_temp_file",
        "session_export_missing_field",
        "session_export_out_of_range",
    ];
}

impl From<rusqlite::Error> for SessionError {
    fn from(err: rusqlite::Error) -> Self {
        // rusqlite's Display for conversion errors can quote values; keep only SQLite's own
        // description of the failure.
        let detail = match &err {
            rusqlite::Error::SqliteFailure(e, msg) => match msg {
                Some(m) => format!("{e}: {m}"),
                None => e.to_string(),
            },
            rusqlite::Error::SqlInputError { error, .. } => error.to_string(),
            _ => "query failed".to_owned(),
        };
        Self::FileCorrupt { detail }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::SessionError as E;

    #[test]
    fn every_variant_code_is_listed() {
        let all = [
            E::StringEmpty,
            E::StringInvalidBase64,
            E::StringWrongLength {
                format: "x",
                len: 0,
            },
            E::StringUnrecognized,
            E::StringNoAuthKey,
            E::UnsupportedVersion {
                format: "x",
                version: String::new(),
            },
            E::InvalidDcId { dc_id: 0 },
            E::InvalidAddress { detail: "x" },
            E::InvalidUserId,
            E::TooLarge {
                what: "x",
                len: 0,
                max: 0,
            },
            E::FileNotSqlite,
            E::FileCorrupt {
                detail: String::new(),
            },
            E::FileMissingTable { table: "x" },
            E::FileMissingColumn {
                table: "x",
                column: "y",
            },
            E::FileNoSessionRow,
            E::FileNoAuthKey,
            E::FileBadValue {
                table: "x",
                column: "y",
                reason: "z",
            },
            E::FileUnknownSchema,
            E::JsonInvalid { line: 1, column: 1 },
            E::JsonNotObject,
            E::JsonBadField {
                field: String::new(),
            },
            E::JsonNoSession,
            E::BundleMismatch { field: "x" },
            E::FolderNoSession { dir: "d".into() },
            E::UnsupportedFileType {
                name: String::new(),
            },
            E::DuplicateFile {
                name: String::new(),
            },
            E::Io {
                path: "p".into(),
                detail: String::new(),
            },
            E::TempFile {
                detail: String::new(),
            },
            E::ExportMissingField {
                format: "x",
                field: "y",
            },
            E::ExportOutOfRange {
                format: "x",
                field: "y",
            },
        ];
        let codes: Vec<&str> = all.iter().map(E::code).collect();
        assert_eq!(codes, E::ALL_CODES);
    }
}
