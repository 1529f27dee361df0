//! This server's instance id, kept in `<data_dir>/instance.id`: made once, on the first start,
//! and the same after every restart. The publisher's claims name it, so a restarted server
//! releases at once the claims its previous process died holding (docs/autoposting.md,
//! "Restarts and leases"). The server holds an exclusive advisory lock (`flock`) on the file
//! while it runs, so no two live processes ever share an id — on PostgreSQL too, where the
//! database itself takes no lock. A copy of the data directory made to run a second instance
//! must leave `instance.id` behind.

use crate::config::Config;
use anyhow::Context;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use switchboard_domain::InstanceId;

/// The instance id of a running server, its file locked while this lives.
#[derive(Debug)]
pub struct Instance {
    id: InstanceId,
    _file: std::fs::File,
}

impl Instance {
    /// Locks `<data_dir>/instance.id` and reads the id in it, writing a new random one on the
    /// first start (or when the file holds none). Fails at once, never waits, when another
    /// running server holds the file.
    pub fn acquire(config: &Config) -> anyhow::Result<Instance> {
        let path = path(config);
        let Some(mut file) = crate::data_lock::lock_file(&path)? else {
            anyhow::bail!(
                "the data directory {} is in use: another running Switchboard holds {}. Stop \
                 it first, or give this server its own data directory",
                config.data_dir.display(),
                path.display()
            );
        };
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        let id = match InstanceId::parse(&text) {
            Some(id) => id,
            None => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes)
                    .map_err(|e| anyhow::anyhow!("no randomness for the instance id: {e}"))?;
                let id = InstanceId::from_random(bytes);
                // Only the holder writes the file, and only once it holds the lock.
                file.set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| writeln!(file, "{id}"))
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(instance = %id, path = %path.display(), "made this server's instance id");
                id
            }
        };
        Ok(Instance { id, _file: file })
    }

    /// The id.
    pub fn id(&self) -> &InstanceId {
        &self.id
    }
}

/// `<data_dir>/instance.id`.
pub fn path(config: &Config) -> PathBuf {
    config.data_dir.join("instance.id")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_id_is_kept_across_starts_and_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let first = Instance::acquire(&config).unwrap();
        let id = first.id().clone();
        assert_eq!(id.as_str().len(), 32);
        let err = Instance::acquire(&config).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
        drop(first);
        let again = Instance::acquire(&config).unwrap();
        assert_eq!(again.id(), &id, "the same id after a restart");
        drop(again);
        // Another data directory is another instance.
        let other = Config {
            data_dir: dir.path().join("other"),
            ..Config::default()
        };
        assert_ne!(Instance::acquire(&other).unwrap().id(), &id);
    }
}
