//! The lock that marks a SQLite database as in use: the server holds an exclusive advisory
//! lock (`flock`) on `<database>.lock` while it runs, and the offline commands that must not
//! run beside it (`copy-db`) take the same lock or refuse. The kernel releases it when the
//! process ends, however it ends (kill -9 included), so a crash never leaves a stale lock; the
//! file itself stays, naming the last holder. PostgreSQL needs none: several servers may share
//! it.

use crate::config::Config;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataLock {
    /// Takes the lock of the SQLite database `config` names, for `holder` (`serve`,
    /// `copy-db`); `None` for PostgreSQL and in-memory databases. Fails at once, never waits,
    /// when another process holds it.
    pub fn acquire(config: &Config, holder: &str) -> anyhow::Result<Option<DataLock>> {
        let url = config.database_url();
        if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(None);
        }
        let database = crate::backup::sqlite_path(&url);
        let path = lock_path(&database);
        let Some(mut file) = lock_file(&path)? else {
            let held_by = std::fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!(
                "the SQLite database {} is in use: a running Switchboard holds its lock {} \
                 ({}). Stop the server first",
                database.display(),
                path.display(),
                held_by.trim()
            );
        };
        // Only the holder writes the file, and only once it holds the lock.
        file.set_len(0)
            .and_then(|()| writeln!(file, "switchboard {holder}, process {}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Some(DataLock { _file: file, path }))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating it) the file at `path` and takes an exclusive advisory lock on it without
/// waiting: `None` when another process holds it. The lock lasts as long as the file is open.
pub(crate) fn lock_file(path: &Path) -> anyhow::Result<Option<std::fs::File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => {
            Err(std::io::Error::from(e)).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// `<database>.lock` next to the database file.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_none_for_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let held = DataLock::acquire(&config, "serve").unwrap().unwrap();
        assert_eq!(held.path(), dir.path().join("switchboard.db.lock"));
        let err = DataLock::acquire(&config, "copy-db")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in use") && err.contains("switchboard serve"),
            "{err}"
        );
        drop(held);
        assert!(DataLock::acquire(&config, "copy-db").unwrap().is_some());
        config.database.url = Some(switchboard_services::Secret::new(
            "postgres://u@127.0.0.1/db".to_string(),
        ));
        assert!(DataLock::acquire(&config, "serve").unwrap().is_none());
    }
}
