//! The database schema's version, as the numbered migrations of each backend give it, and the
//! refusal of a database that a newer Switchboard migrated: migrations only go forward, so an
//! older binary cannot know what a newer one changed and must not write to it.

/// A migration: its number and its description (the file name's words).
pub type Migration = (i64, String);

/// The database holds migrations this binary does not know: a newer Switchboard migrated it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database was migrated by a newer Switchboard: it has migration {} ({}), and this \
     Switchboard {release} knows migrations up to {} ({}). Run the newer Switchboard again, \
     or restore the backup taken before the upgrade: an older version cannot use a newer schema \
     (docs/deploy.md, \"Upgrading\")",
    found.0, found.1, known.0, known.1
)]
pub struct NewerSchema {
    /// The newest migration in the database that this binary does not know.
    pub found: Migration,
    /// The newest migration this binary knows.
    pub known: Migration,
    /// This binary's release, e.g. `0.1.0`.
    pub release: &'static str,
}

/// Checks the migrations a database records (`applied`, any order) against those this binary
/// carries (`known`, in order): every applied one must be known.
pub fn check_applied(
    applied: &[Migration],
    known: &[Migration],
    release: &'static str,
) -> Result<(), NewerSchema> {
    let unknown = applied
        .iter()
        .filter(|(v, _)| !known.iter().any(|(k, _)| k == v))
        .max_by_key(|(v, _)| *v);
    match unknown {
        None => Ok(()),
        Some(found) => Err(NewerSchema {
            found: found.clone(),
            known: known
                .last()
                .cloned()
                .unwrap_or_else(|| (0, "none".to_string())),
            release,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(v: i64, d: &str) -> Migration {
        (v, d.to_string())
    }

    #[test]
    fn known_migrations_pass_and_the_newest_unknown_one_is_named() {
        let known = [m(1, "foundation"), m(2, "accounts")];
        assert!(check_applied(&[], &known, "1.0.0").is_ok());
        assert!(check_applied(&[m(1, "foundation")], &known, "1.0.0").is_ok());
        let err = check_applied(
            &[
                m(1, "foundation"),
                m(9, "later"),
                m(2, "accounts"),
                m(8, "next"),
            ],
            &known,
            "1.0.0",
        )
        .unwrap_err();
        assert_eq!(err.found, m(9, "later"));
        let text = err.to_string();
        assert!(
            text.contains("migration 9 (later)")
                && text.contains("Switchboard 1.0.0")
                && text.contains("up to 2 (accounts)")
                && text.contains("backup"),
            "{text}"
        );
    }
}
