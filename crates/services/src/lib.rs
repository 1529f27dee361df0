//! Switchboard's services layer: the business rules that sit between the web layer and the
//! store — operator sign-in with lockout, web sessions and CSRF tokens, the audit trail, and
//! the supervisor that owns every background worker.

pub mod account_transport;
pub mod accounts;
pub mod audit;
pub mod auth;
pub mod bots;
pub mod connect;
pub mod events;
pub mod inbox;
mod ingest;
pub mod lead_delivery;
pub mod leads;
pub mod media;
pub mod monitor;
pub mod outbox;
pub mod publisher;
pub mod read_receipts;
pub mod replies;
mod retry;
pub mod schedule;
pub mod schedule_targets;
pub mod secret;
pub mod signin;
pub mod signin_limits;
pub mod team;
pub mod throttle;
pub mod user_admin;
pub mod workers;

pub use auth::{AuthError, AuthPolicy, AuthService, LoginOutcome, NewMember, SessionContext};
pub use events::{Audience, ChatUpdate, Event, EventBus, ServerEvent};
pub use inbox::Inbox;
pub use outbox::{OutboxSettings, SendFailure, Sent, Transport, Transports};
pub use secret::Secret;
pub use team::{Team, TeamActor, TeamError};
pub use workers::{
    Backoff, Exit, Readiness, Tasks, WorkerCtx, WorkerKind, WorkerSpec, WorkerState, WorkerStatus,
    Workers,
};
