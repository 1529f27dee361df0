//! The engine behind an atomic pointer: matching loads the current [`Matcher`] without a lock,
//! a rebuild happens elsewhere and is swapped in whole.

use crate::matcher::{Matcher, TaskMatch};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// Holds the current [`Matcher`]. `match_post` never waits: a rebuild (`Matcher::build`, run by
/// the caller on a blocking thread) produces a new engine, and [`MatcherHandle::replace`] swaps
/// it in atomically; matches already running finish on the engine they loaded.
pub struct MatcherHandle<K> {
    current: ArcSwap<Matcher<K>>,
}

impl<K> MatcherHandle<K> {
    /// A handle holding `matcher`.
    pub fn new(matcher: Matcher<K>) -> Self {
        MatcherHandle {
            current: ArcSwap::from_pointee(matcher),
        }
    }

    /// The current engine (kept alive as long as the caller holds it).
    pub fn load(&self) -> Arc<Matcher<K>> {
        self.current.load_full()
    }

    /// Swaps in `matcher`; returns the previous engine.
    pub fn replace(&self, matcher: Matcher<K>) -> Arc<Matcher<K>> {
        self.current.swap(Arc::new(matcher))
    }
}

impl<K: Clone> MatcherHandle<K> {
    /// Matches `text` with the current engine.
    pub fn match_post(&self, text: &str) -> Vec<TaskMatch<K>> {
        self.current.load().match_post(text)
    }
}

impl<K> std::fmt::Debug for MatcherHandle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MatcherHandle")
            .field(&*self.current.load())
            .finish()
    }
}
