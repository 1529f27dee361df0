//! Lead monitoring's matching engine, pure and I/O-free.
//!
//! - [`query`]: the query language users type (Yandex Direct / TGStat operators), parsed into a
//!   checked [`Query`] or a [`QueryError`] with the stable code `query_invalid`, a position and
//!   what was expected.
//! - [`normalize`]: lowercase, ё→е, invisible characters dropped, words.

pub mod normalize;
pub mod query;

pub use query::{Expected, QUERY_INVALID, Query, QueryError, QueryErrorKind};
