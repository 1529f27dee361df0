//! Switchboard's domain layer: identifiers, models, errors, the string catalogue and the ports
//! (traits) that the storage and Telegram layers implement. Nothing here performs I/O.

pub mod account;
pub mod content;
pub mod error_code;
pub mod i18n;
#[macro_use]
pub mod ids;
#[macro_use]
pub mod inbox;
pub mod ingest;
pub mod instance;
pub mod leads;
pub mod model;
pub mod nul;
pub mod recurrence;
pub mod rows;
pub mod schedule;
pub mod schema;
pub mod sealed;
pub mod signin;
pub mod store;
pub mod table_copy;
pub mod team;
pub mod time;
pub mod user_admin;

pub use account::*;
pub use content::{Entity, EntityKind, Media, MediaKind};
pub use error_code::ErrorCode;
pub use ids::{
    AccountId, AuditEventId, BotId, ChatId, MessageId, OutboxId, UserId, WebSessionId, WorkspaceId,
};
pub use inbox::*;
pub use instance::InstanceId;
pub use leads::*;
pub use model::*;
pub use recurrence::{Recurrence, Schedule, ScheduleInvalid};
pub use schedule::*;
pub use sealed::{SEALED_COLUMNS, SealedColumn, SealedReplacement, SealedValue};
pub use signin::*;
pub use store::{Store, StoreError, StoreResult};
pub use time::Timestamp;
pub use user_admin::UserAdminStore;
