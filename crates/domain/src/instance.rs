//! The identity of one running server instance: which process holds a claim (a lease) on a
//! piece of durable work. An instance keeps its id across restarts (the binary stores it in its
//! data directory), so that after a crash it recognises — and releases at once — the claims of
//! its previous life, while the claims of other instances on the same database end only when
//! their leases do. docs/autoposting.md, "Restarts and leases".

use std::fmt;

/// Longest instance id.
pub const MAX_INSTANCE_ID: usize = 64;

/// A server instance's id: 1–64 ASCII letters, digits, `-` or `_`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Parses an id (surrounding whitespace ignored); `None` when it is not one.
    pub fn parse(s: &str) -> Option<InstanceId> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= MAX_INSTANCE_ID
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| InstanceId(s.to_string()))
    }

    /// A new id from 16 random bytes (32 lowercase hex digits).
    pub fn from_random(bytes: [u8; 16]) -> InstanceId {
        InstanceId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_short_plain_words() {
        let id = InstanceId::from_random([0xab; 16]);
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(InstanceId::parse(&format!(" {id}\n")), Some(id));
        assert_eq!(InstanceId::parse("web-1_a").unwrap().as_str(), "web-1_a");
        for bad in ["", "  ", "a b", "é", "a;b", &"x".repeat(65)] {
            assert_eq!(InstanceId::parse(bad), None, "{bad:?}");
        }
    }
}
