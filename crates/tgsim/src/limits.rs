//! Per-account rate limits on MTProto methods, answered with `420 FLOOD_WAIT_X` as Telegram
//! does. Telegram does not publish its limits; the defaults are the figures monitoring tools
//! observe in practice:
//!
//! * `contacts.resolveUsername`: about 30 a minute per account before Telegram escalates, with
//!   waits of 74–421 s commonly reported once it does; at most about 200 usernames a day
//!   (Telegram-Limits, `search.username_resolve_limit`), after which waits reach many hours.
//! * `channels.joinChannel` and `messages.importChatInvite` (one budget): joining quickly
//!   brings waits of several minutes (348 s observed after a few joins in a row); careful
//!   tools keep to about 3 joins in 5 minutes. The simulator allows 5 in 5 minutes.
//! * `messages.getHistory`: about 3,000 messages within 30 s (30 full pages), past which
//!   clients wait out the rest of the half minute.
//!
//! While an account waits, every call in that budget answers the remaining wait (rounded up),
//! and such refused calls do not count. Tests can change or remove a budget at run time
//! ([`crate::Handle::set_rate_limit`]); the defaults apply otherwise.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::world::UserId;

/// A budget: at most `max` calls of `methods` per account within `window_secs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Name of the budget (`resolve_username`, `resolve_username_daily`, `get_history`,
    /// `join`).
    pub name: String,
    /// TL method names sharing the budget, e.g. `contacts.resolveUsername`.
    pub methods: Vec<String>,
    /// Calls allowed within the window.
    pub max: u32,
    /// Window length in seconds (sliding).
    pub window_secs: u64,
    /// Seconds of `FLOOD_WAIT` once the budget is exceeded; None = until the oldest call in the
    /// window leaves it.
    #[serde(default)]
    pub wait_secs: Option<u64>,
}

/// The budgets a fresh simulator applies (see the module documentation for the figures).
pub fn default_limits() -> Vec<RateLimit> {
    let resolve = vec!["contacts.resolveUsername".to_string()];
    vec![
        RateLimit {
            name: "resolve_username".into(),
            methods: resolve.clone(),
            max: 30,
            window_secs: 60,
            wait_secs: Some(300),
        },
        RateLimit {
            name: "resolve_username_daily".into(),
            methods: resolve,
            max: 200,
            window_secs: 86_400,
            wait_secs: None,
        },
        RateLimit {
            name: "get_history".into(),
            methods: vec!["messages.getHistory".to_string()],
            max: 30,
            window_secs: 30,
            wait_secs: None,
        },
        RateLimit {
            name: "join".into(),
            methods: vec![
                "channels.joinChannel".to_string(),
                "messages.importChatInvite".to_string(),
            ],
            max: 5,
            window_secs: 300,
            wait_secs: Some(300),
        },
    ]
}

#[derive(Default)]
struct Usage {
    calls: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Budgets and what each account used of them.
pub(crate) struct Limiter {
    rules: Vec<RateLimit>,
    usage: HashMap<(UserId, String), Usage>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            rules: default_limits(),
            usage: HashMap::new(),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limiter {
    /// The current budgets.
    pub fn rules(&self) -> Vec<RateLimit> {
        self.rules.clone()
    }

    /// Adds a budget or replaces the one with the same name; usage starts afresh.
    pub fn set(&mut self, rule: RateLimit) {
        self.usage.retain(|(_, name), _| *name != rule.name);
        self.rules.retain(|r| r.name != rule.name);
        self.rules.push(rule);
    }

    /// Removes a budget; false if there was none by that name.
    pub fn remove(&mut self, name: &str) -> bool {
        self.usage.retain(|(_, n), _| n != name);
        let before = self.rules.len();
        self.rules.retain(|r| r.name != name);
        self.rules.len() != before
    }

    /// Counts a call of `method` by `user`, or answers the seconds it must wait instead.
    pub fn check(&mut self, user: UserId, method: &str, now: Instant) -> Option<u64> {
        let rules: Vec<&RateLimit> = self
            .rules
            .iter()
            .filter(|r| r.methods.iter().any(|m| m == method))
            .collect();
        let mut wait: Option<u64> = None;
        for r in &rules {
            let u = self.usage.entry((user, r.name.clone())).or_default();
            if let Some(until) = u.blocked_until {
                if until > now {
                    wait = wait.max(Some(ceil_secs(until - now)));
                    continue;
                }
                u.blocked_until = None;
            }
            let window = Duration::from_secs(r.window_secs);
            while u
                .calls
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                u.calls.pop_front();
            }
            if u.calls.len() >= r.max as usize {
                let secs = match r.wait_secs {
                    Some(s) => s,
                    None => u
                        .calls
                        .front()
                        .map(|t| ceil_secs(window.saturating_sub(now.duration_since(*t))))
                        .unwrap_or(1),
                }
                .max(1);
                u.blocked_until = Some(now + Duration::from_secs(secs));
                wait = wait.max(Some(secs));
            }
        }
        if wait.is_some() {
            return wait;
        }
        for r in rules {
            if let Some(u) = self.usage.get_mut(&(user, r.name.clone())) {
                u.calls.push_back(now);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_past_the_budget_waits_and_waiting_calls_do_not_count() {
        let mut l = Limiter::default();
        let u = UserId(1);
        let t0 = Instant::now();
        for _ in 0..30 {
            assert_eq!(l.check(u, "contacts.resolveUsername", t0), None);
        }
        assert_eq!(l.check(u, "contacts.resolveUsername", t0), Some(300));
        let later = t0 + Duration::from_millis(100_500);
        assert_eq!(l.check(u, "contacts.resolveUsername", later), Some(200));
        // Another account and another method are unaffected.
        assert_eq!(l.check(UserId(2), "contacts.resolveUsername", t0), None);
        assert_eq!(l.check(u, "messages.getHistory", t0), None);
        // After the wait the window has moved on.
        let after = t0 + Duration::from_secs(301);
        assert_eq!(l.check(u, "contacts.resolveUsername", after), None);
    }

    #[test]
    fn history_allows_thirty_pages_in_thirty_seconds() {
        let mut l = Limiter::default();
        let u = UserId(1);
        let t0 = Instant::now();
        for i in 0..30 {
            assert_eq!(
                l.check(
                    u,
                    "messages.getHistory",
                    t0 + Duration::from_millis(i * 100)
                ),
                None
            );
        }
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check(u, "messages.getHistory", t1), Some(20));
        assert_eq!(
            l.check(u, "messages.getHistory", t0 + Duration::from_secs(31)),
            None
        );
    }

    #[test]
    fn a_window_without_fixed_wait_waits_for_its_oldest_call() {
        let mut l = Limiter::default();
        l.set(RateLimit {
            name: "h".into(),
            methods: vec!["messages.getHistory".into()],
            max: 2,
            window_secs: 30,
            wait_secs: None,
        });
        let u = UserId(1);
        let t0 = Instant::now();
        assert_eq!(l.check(u, "messages.getHistory", t0), None);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check(u, "messages.getHistory", t1), None);
        assert_eq!(l.check(u, "messages.getHistory", t1), Some(20));
        assert!(l.remove("h"));
        assert_eq!(l.check(u, "messages.getHistory", t1), None);
    }
}
