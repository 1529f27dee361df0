//! The per-process limits on starting a Telegram sign-in (docs/web-login.md): per phone and
//! channel (a cooldown between codes and a ceiling per hour, counted apart for the service
//! bot's codes and Telegram's own, so choosing the other way is not made to wait) and per
//! client address (a ceiling per window, an IPv6 client by its /64; every start counts,
//! also one that sends nothing). One struct, so it could move to the database later. A start
//! takes its place in both before any work, under one lock, so parallel starts cannot pass
//! together.

use crate::throttle::ClientKey;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many tracked keys, idle ones are forgotten (bounds memory under a spray).
const MAX_TRACKED: usize = 100_000;

/// The limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartLimits {
    /// Shortest time between two starts for one phone (the resend countdown).
    pub phone_interval: Duration,
    /// Starts per phone within `phone_window`.
    pub phone_max: usize,
    /// The window of `phone_max`.
    pub phone_window: Duration,
    /// Starts per client address within `address_window`.
    pub address_max: usize,
    /// The window of `address_max`.
    pub address_window: Duration,
}

impl Default for StartLimits {
    fn default() -> Self {
        Self {
            phone_interval: Duration::from_secs(60),
            phone_max: 5,
            phone_window: Duration::from_secs(3600),
            address_max: 20,
            address_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What a start sends to the phone's owner: the per-phone limits count each kind apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sends {
    /// A code from the service bot.
    BotCode,
    /// Telegram's own login code.
    TelegramCode,
    /// Nothing (a binding link, a QR code): only the address's limit applies.
    Nothing,
}

#[derive(Default)]
struct Windows {
    phones: HashMap<(Sends, String), VecDeque<Instant>>,
    addresses: HashMap<ClientKey, VecDeque<Instant>>,
}

/// Starts per phone and per client address.
pub struct StartLimiter {
    limits: StartLimits,
    windows: Mutex<Windows>,
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

/// Seconds until the oldest entry leaves the window (at least 1).
fn wait(q: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    let oldest = q.front().copied().unwrap_or(now);
    window.saturating_sub(now.duration_since(oldest)).as_secs() + 1
}

impl StartLimiter {
    /// A limiter with these limits.
    pub fn new(limits: StartLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> StartLimits {
        self.limits
    }

    /// Takes a start for `phone` from `ip` that `sends` something (or nothing) to the phone's
    /// owner, or says how many seconds to wait.
    pub fn admit(&self, phone: &str, sends: Sends, ip: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let l = self.limits;
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.phones.len() >= MAX_TRACKED {
            w.phones
                .retain(|_, q| q.back().is_some_and(|t| t.elapsed() < l.phone_window));
        }
        if w.addresses.len() >= MAX_TRACKED {
            w.addresses
                .retain(|_, q| q.back().is_some_and(|t| t.elapsed() < l.address_window));
        }
        let key = ip.map(ClientKey::of);
        if let Some(key) = key {
            let q = w.addresses.entry(key).or_default();
            prune(q, now, l.address_window);
            if q.len() >= l.address_max {
                return Err(wait(q, now, l.address_window));
            }
        }
        if sends != Sends::Nothing {
            let q = w.phones.entry((sends, phone.to_string())).or_default();
            prune(q, now, l.phone_window);
            if let Some(last) = q.back() {
                let since = now.duration_since(*last);
                if since < l.phone_interval {
                    return Err((l.phone_interval - since).as_secs() + 1);
                }
            }
            if q.len() >= l.phone_max {
                return Err(wait(q, now, l.phone_window));
            }
            q.push_back(now);
        }
        if let Some(key) = key {
            w.addresses.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

impl StartLimiter {
    /// Forgets a phone's starts: its user signed in, so they were no abuse (the next code can
    /// be asked for at once, e.g. the first return right after signing up).
    pub fn signed_in(&self, phone: &str) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        for sends in [Sends::BotCode, Sends::TelegramCode] {
            w.phones.remove(&(sends, phone.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_phone_waits_between_starts_and_an_address_has_a_ceiling() {
        let limiter = StartLimiter::new(StartLimits {
            address_max: 3,
            ..StartLimits::default()
        });
        let bot = Sends::BotCode;
        assert!(limiter.admit("100", bot, ip("192.0.2.1")).is_ok());
        let wait = limiter.admit("100", bot, ip("192.0.2.9")).unwrap_err();
        assert!((59..=61).contains(&wait), "{wait}");
        assert!(limiter.admit("101", bot, ip("192.0.2.1")).is_ok());
        assert!(limiter.admit("102", bot, ip("192.0.2.1")).is_ok());
        assert!(limiter.admit("103", bot, ip("192.0.2.1")).is_err());
        // Another address is not affected.
        assert!(limiter.admit("103", bot, ip("192.0.2.2")).is_ok());
        // A sign-in clears the phone's wait.
        limiter.signed_in("103");
        assert!(limiter.admit("103", bot, ip("192.0.2.3")).is_ok());
    }

    #[test]
    fn each_channel_waits_apart_and_sending_nothing_takes_only_the_address() {
        let limiter = StartLimiter::new(StartLimits {
            address_max: 4,
            ..StartLimits::default()
        });
        let a = ip("192.0.2.1");
        assert!(limiter.admit("100", Sends::Nothing, a).is_ok());
        assert!(limiter.admit("100", Sends::BotCode, a).is_ok());
        assert!(limiter.admit("100", Sends::Nothing, a).is_ok());
        assert!(limiter.admit("100", Sends::TelegramCode, a).is_ok());
        assert!(
            limiter
                .admit("100", Sends::TelegramCode, ip("192.0.2.2"))
                .is_err()
        );
        assert!(
            limiter
                .admit("100", Sends::BotCode, ip("192.0.2.2"))
                .is_err()
        );
        // The four starts filled the address's window, whatever they sent.
        assert!(limiter.admit("101", Sends::Nothing, a).is_err());
        limiter.signed_in("100");
        assert!(
            limiter
                .admit("100", Sends::TelegramCode, ip("192.0.2.2"))
                .is_ok()
        );
        assert!(
            limiter
                .admit("100", Sends::BotCode, ip("192.0.2.2"))
                .is_ok()
        );
    }
}
