//! Telegram session formats: parse Telethon, Pyrogram/Hydrogram/Kurigram and gramjs sessions
//! (strings, `.session` SQLite files, JSON bundles, folders of accounts, uploaded files) into one
//! [`ImportedSession`], and export Telethon and Pyrogram strings.
//!
//! Pure: no async runtime, no network. Each format's byte layout is stated in its module
//! ([`telethon`], [`pyrogram`], [`gramjs`]) and in this crate's README.

mod b64;
pub mod bundle;
pub mod dc;
mod detect;
mod error;
pub mod folder;
pub mod gramjs;
mod model;
pub mod pyrogram;
mod sqlite;
pub mod telethon;
pub mod upload;

pub use bundle::{MAX_JSON_BYTES, parse_json_bundle};
pub use detect::{parse_any, parse_session_bytes, parse_session_file, parse_string};
pub use error::SessionError;
pub use folder::{FolderEntry, import_folder, parse_pair};
pub use model::{
    AuthKey, ChannelPts, ClientProfile, ExportParams, ImportedPeer, ImportedSession,
    ImportedUpdateState, PeerKind, Secret, SessionFormat,
};
pub use sqlite::{MAX_SESSION_FILE_BYTES, looks_like_sqlite};
pub use upload::{UploadEntry, UploadedFile, group_uploads};
