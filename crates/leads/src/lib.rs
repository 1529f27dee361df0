//! Lead monitoring's matching engine, pure and I/O-free.
//!
//! - [`query`]: the query language users type (Yandex Direct / TGStat operators), parsed into a
//!   checked [`Query`] or a [`QueryError`] with the stable code `query_invalid`, a position and
//!   what was expected.
//! - [`normalize`]: lowercase, ё→е, invisible characters dropped, words.
//! - [`matcher`]: [`Matcher`], one Aho-Corasick automaton over every task's terms plus a tree
//!   per task; [`Matcher::match_post`] gives each matching task with its terms and spans in the
//!   original text; [`new_terms`] tells what an edit newly matched.
//! - [`handle`]: [`MatcherHandle`], the current engine behind an atomic swap.
//! - [`mod@simhash`]: the 64-bit SimHash of a post's normalised words, for copy-paste reposts.
//! - [`mod@snippet`]: a window of the post around the first match.
//!
//! The monitor service (sources, reading, delivery) builds on this crate; see `docs/leads.md`.

pub mod handle;
pub mod matcher;
pub mod normalize;
pub mod query;
pub mod simhash;
pub mod snippet;

#[cfg(test)]
mod tests;

pub use handle::MatcherHandle;
pub use matcher::{BuildError, MatchSpan, Matcher, TaskMatch, TaskSpec, new_terms};
pub use query::{Expected, QUERY_INVALID, Query, QueryError, QueryErrorKind};
pub use simhash::{NEAR_DUPLICATE_DISTANCE, hamming, is_near_duplicate, simhash64};
pub use snippet::{Snippet, snippet};
