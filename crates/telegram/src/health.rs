//! What a live client's connection is doing, as its requests and its updates show it. grammers
//! reconnects only when a request needs a connection and sleeps through short FloodWaits inside
//! a request, so neither a closed socket nor a wait is visible to the caller on its own: the
//! retry policy and the update relay of [`crate::client`] record them here, and the supervisor
//! reads them ([`ConnectionHealth::state`]) to show the truth and to decide when to restart.

use std::sync::{Arc, Mutex};
use switchboard_domain::Timestamp;
use tokio::sync::Notify;

/// A snapshot of a connection's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthState {
    /// When the connection was seen closed or a request failed on it, unless a request has
    /// succeeded since.
    pub lost_since: Option<Timestamp>,
    /// The end of the last FloodWait Telegram asked for, unless a request has succeeded since
    /// (it may lie in the past).
    pub flood_until: Option<Timestamp>,
    /// Why the connection is lost when the SOCKS5 proxy (`telegram.proxy`) is the cause.
    pub proxy_failure: Option<crate::proxy::ProxyFailure>,
}

impl HealthState {
    /// True while Telegram's wait is not over at `now`.
    pub fn flood_waiting(&self, now: Timestamp) -> bool {
        self.flood_until.is_some_and(|t| t > now)
    }

    /// True when the connection is not known to work: lost, or waiting.
    pub fn troubled(&self) -> bool {
        self.lost_since.is_some() || self.flood_until.is_some()
    }

    /// Since when the client has had no reason to be down: the later of the loss and the end
    /// of the wait. `None` while it is healthy.
    pub fn down_since(&self) -> Option<Timestamp> {
        match (self.lost_since, self.flood_until) {
            (None, None) => None,
            (a, b) => a.max(b),
        }
    }
}

/// Shared, cheap to clone; every change wakes [`ConnectionHealth::changed`].
#[derive(Clone, Debug, Default)]
pub struct ConnectionHealth {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<HealthState>,
    changed: Notify,
}

impl ConnectionHealth {
    /// The current state.
    pub fn state(&self) -> HealthState {
        *self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut HealthState)) {
        let changed = {
            let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            let before = *state;
            f(&mut state);
            *state != before
        };
        if changed {
            self.inner.changed.notify_waiters();
        }
    }

    /// The socket closed, or a request failed for want of a connection.
    pub fn lost(&self) {
        self.update(|s| {
            s.lost_since.get_or_insert_with(Timestamp::now);
        });
    }

    /// A connection could not be made because the SOCKS5 proxy failed.
    pub fn proxy_failed(&self, failure: crate::proxy::ProxyFailure) {
        self.update(|s| {
            s.lost_since.get_or_insert_with(Timestamp::now);
            s.proxy_failure = Some(failure);
        });
    }

    /// Telegram asked to wait `seconds` before the next request.
    pub fn flood_wait(&self, seconds: u32) {
        let until = Timestamp::now().plus(std::time::Duration::from_secs(u64::from(seconds)));
        self.update(|s| s.flood_until = Some(s.flood_until.map_or(until, |t| t.max(until))));
    }

    /// Something arrived on the connection: it is open (a wait still stands).
    pub fn alive(&self) {
        self.update(|s| {
            s.lost_since = None;
            s.proxy_failure = None;
        });
    }

    /// A request succeeded: the connection works and no wait stands.
    pub fn recovered(&self) {
        self.update(|s| *s = HealthState::default());
    }

    /// Waits for the next change.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_waits_are_cleared_by_what_proves_them_over() {
        let h = ConnectionHealth::default();
        assert!(!h.state().troubled());
        h.lost();
        let since = h.state().lost_since;
        h.lost();
        assert_eq!(h.state().lost_since, since, "the first loss counts");
        h.flood_wait(30);
        let s = h.state();
        assert!(s.flood_waiting(Timestamp::now()));
        assert_eq!(s.down_since(), s.flood_until);
        h.flood_wait(1);
        assert_eq!(
            h.state().flood_until,
            s.flood_until,
            "a shorter wait ends nothing"
        );
        h.alive();
        assert_eq!(h.state().lost_since, None);
        assert!(
            h.state().flood_waiting(Timestamp::now()),
            "an update ends no wait"
        );
        h.recovered();
        assert_eq!(h.state(), HealthState::default());
    }
}
