//! The per-client-address limit on failed sign-ins: a sliding window of attempts kept in
//! memory, keyed by the address — an IPv6 client by its /64, which one subscriber usually owns
//! whole. An attempt takes its place in the window before its password is checked and gives it
//! back when it succeeds, so parallel guesses cannot all pass the check together. Refused
//! attempts are only counted, never stored one by one.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many tracked addresses, idle ones are forgotten (bounds memory under a spray).
const MAX_TRACKED: usize = 100_000;

/// What is limited as one client: an IPv4 address, or the /64 network of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client address (an IPv4-mapped IPv6 address counts as the IPv4 one).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !u128::from(u64::MAX);
                ClientKey(IpAddr::V6(Ipv6Addr::from(network)))
            }
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The answer to an attempt.
#[derive(Debug)]
pub enum Admission {
    /// The attempt may go on; give the ticket back with [`AddressLimiter::release`] if it
    /// succeeds.
    Allowed(Ticket),
    /// Too many attempts from this client in the window.
    Refused {
        /// Seconds until a place frees up.
        retry_after_secs: u64,
        /// True for the first refusal since the client was last allowed (worth one audit
        /// record; the ones after it are only counted).
        first: bool,
    },
}

/// A place taken in a client's window.
#[derive(Debug)]
pub struct Ticket {
    key: ClientKey,
    at: Instant,
}

#[derive(Default)]
struct Window {
    attempts: VecDeque<Instant>,
    refused: u64,
}

/// Failed sign-ins per client within a sliding window.
pub struct AddressLimiter {
    max: usize,
    window: Duration,
    clients: Mutex<HashMap<ClientKey, Window>>,
}

impl AddressLimiter {
    /// At most `max` attempts per client within `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a place for an attempt from `ip`, or refuses it.
    pub fn admit(&self, ip: IpAddr) -> Admission {
        let key = ClientKey::of(ip);
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_TRACKED && !clients.contains_key(&key) {
            let window = self.window;
            clients.retain(|_, w| w.attempts.back().is_some_and(|t| t.elapsed() < window));
        }
        let w = clients.entry(key).or_default();
        while w
            .attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            w.attempts.pop_front();
        }
        if w.attempts.len() >= self.max {
            let oldest = w.attempts.front().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            w.refused += 1;
            return Admission::Refused {
                retry_after_secs: wait.as_secs() + 1,
                first: w.refused == 1,
            };
        }
        w.refused = 0;
        w.attempts.push_back(now);
        Admission::Allowed(Ticket { key, at: now })
    }

    /// Gives a place back: the attempt succeeded, so it was no failure.
    pub fn release(&self, ticket: Ticket) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = clients.get_mut(&ticket.key)
            && let Some(i) = w.attempts.iter().rposition(|t| *t == ticket.at)
        {
            w.attempts.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.7")),
            ClientKey::of(ip("192.0.2.7"))
        );
        assert_ne!(
            ClientKey::of(ip("192.0.2.7")),
            ClientKey::of(ip("192.0.2.8"))
        );
    }

    #[test]
    fn attempts_take_places_and_successes_give_them_back() {
        let limiter = AddressLimiter::new(2, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        let Admission::Allowed(first) = limiter.admit(a) else {
            panic!("refused")
        };
        assert!(matches!(limiter.admit(a), Admission::Allowed(_)));
        assert!(matches!(
            limiter.admit(a),
            Admission::Refused { first: true, .. }
        ));
        assert!(matches!(
            limiter.admit(a),
            Admission::Refused { first: false, .. }
        ));
        // Another client is not affected; a success frees its place.
        assert!(matches!(
            limiter.admit(ip("192.0.2.2")),
            Admission::Allowed(_)
        ));
        limiter.release(first);
        assert!(matches!(limiter.admit(a), Admission::Allowed(_)));
        assert!(matches!(
            limiter.admit(a),
            Admission::Refused { first: true, .. }
        ));
    }
}
