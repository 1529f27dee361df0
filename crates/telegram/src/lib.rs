//! Switchboard's Telegram layer (MTProto through grammers 0.11): the database-backed grammers
//! session ([`DbSession`]), building one client per session ([`connect`]), the connect flows
//! ([`PhoneLogin`], [`QrLogin`]), session import, validation and export, and the mapping of
//! updates to what ingestion stores ([`mapping`]).
//!
//! It depends on the domain's ports only; the supervisor (services) owns the live clients.

pub mod botapi;
mod botapi_map;
pub mod channels;
pub mod client;
pub mod error;
pub mod health;
pub mod import;
pub mod login;
pub mod mapping;
pub mod media;
pub mod posts;
pub mod send;
pub mod session;
pub mod settings;
pub mod spawn;
#[cfg(test)]
mod testutil;
pub mod update_state;

pub use client::{Connection, PoolTask, RetryOptions, UpdatesReceiver, connect, connect_account};
pub use error::Error;
pub use health::{ConnectionHealth, HealthState};
pub use import::{Validation, export_account, import_into_account, validate};
pub use login::{
    CodeDelivery, CodeSent, LoggedIn, LoginStep, PhoneLogin, QrLogin, QrStatus, QrToken,
};
pub use mapping::{MappedUpdate, PeerDirectory, map_update};
pub use media::{MediaFile, media_file, refetch_files, update_media_file};
pub use posts::{post_from_message, post_from_raw_update, post_from_update, posts_from_messages};
pub use session::{DbSession, DcRouting, ExportFormat, SessionStoreError, api_hash_aad};
pub use settings::{ClientInfo, SessionMeter, TelegramSettings};
pub use spawn::{Spawn, Task};
pub use update_state::UpdateCheckpoint;

/// grammers' client crate, re-exported so callers use exactly the pinned version.
pub use grammers_client;
