//! Per-account source workers (SKELETON — the sources helper replaces the bodies).

use super::MonitorError;
use switchboard_domain::{AccountId, Post, Source};

/// One worker per reading account: resolves, joins, polls, reconciles and leaves sources.
#[derive(Clone, Default)]
pub struct Sources {}

impl Sources {
    /// Looks at `account`'s sources again now (a task or its sources changed).
    pub fn wake(&self, _account: AccountId) {}

    /// The last `per_source` posts of each source, newest first.
    pub async fn recent_posts(
        &self,
        _account: AccountId,
        _sources: &[Source],
        _per_source: u32,
    ) -> Result<Vec<Post>, MonitorError> {
        Err(MonitorError::AccountOffline)
    }
}
