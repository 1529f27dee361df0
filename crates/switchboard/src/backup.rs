//! `switchboard backup DIR` and `switchboard restore DIR`: a consistent copy of an installation's
//! database and file store, described by a manifest, and its restoration into an empty data
//! directory. The master key is never part of a backup: a backup names the key ids it needs,
//! and a restore refuses to start without them.
//!
//! SQLite is copied online with `VACUUM INTO` (one read transaction: the server goes on
//! writing); PostgreSQL with `pg_dump --format=custom` and `pg_restore`, which must be on the
//! `PATH` (the password goes to them in `PGPASSWORD`, never on a command line). The database is
//! copied before the files: the file store only grows, so every file the copied database names is
//! in the later copy of `files/`.

use crate::config::Config;
use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard_domain::Timestamp;

/// The manifest's file name inside a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The SQLite copy's file name.
const SQLITE_COPY: &str = "switchboard.db";
/// The PostgreSQL dump's file name.
const POSTGRES_DUMP: &str = "switchboard.dump";
/// The file store's directory, in a data directory and in a backup.
const FILES: &str = "files";
/// The manifest format this binary writes and reads.
const FORMAT: u32 = 1;

/// What a backup holds; written last, so a backup without it is incomplete.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format, 1.
    pub format: u32,
    /// The release that took it.
    pub switchboard: String,
    /// When it was taken (milliseconds since the Unix epoch).
    pub created_at_ms: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The database copy's file name in the backup.
    pub database: String,
    /// The newest migration the database had.
    pub migration: i64,
    /// Files copied from the file store, and their bytes.
    pub files: u64,
    /// Their total size.
    pub file_bytes: u64,
    /// The ids of the master keys the sealed secrets need (the key file's at backup time). The
    /// keys themselves are not in the backup.
    pub master_key_ids: Vec<String>,
}

/// What `backup` did.
#[derive(Debug)]
pub struct BackupReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// The master key file the backup needs and does not hold.
    pub master_key: PathBuf,
}

/// Takes a backup of the installation `config` describes into `dir`, which must not exist or
/// be empty. The server may be running.
pub async fn backup(config: &Config, dir: &Path) -> anyhow::Result<BackupReport> {
    ensure!(
        is_empty_dir(dir)?,
        "{} is not empty: a backup goes into a new or empty directory",
        dir.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = config.master_key_path();
    let master_key_ids = match switchboard_vault::Keyring::from_file(&key_path) {
        Ok(ring) => ring
            .key_ids()
            .iter()
            .map(|id| id.as_str().to_string())
            .collect(),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading the master key {} (a backup records which key it needs)",
                    key_path.display()
                )
            });
        }
    };
    let url = config.database_url();
    let (backend, database, migration) = if url.starts_with("sqlite:") {
        let file = sqlite_path(&url);
        ensure!(file.is_file(), "there is no database at {}", file.display());
        let store = switchboard_store_sqlite::connect(&url, &Default::default()).await?;
        let migration = newest(&store.applied_migrations().await?);
        store.backup_into(&dir.join(SQLITE_COPY)).await?;
        store.close().await;
        ("sqlite", SQLITE_COPY, migration)
    } else {
        let store = switchboard_store_postgres::connect(&url, &Default::default()).await?;
        let migration = newest(&store.applied_migrations().await?);
        store.close().await;
        let target = dir.join(POSTGRES_DUMP);
        run_pg_tool(
            "pg_dump",
            &url,
            &[
                "--format=custom",
                "--no-owner",
                "--file",
                path_arg(&target)?,
            ],
        )?;
        ("postgres", POSTGRES_DUMP, migration)
    };
    let (files, file_bytes) = copy_tree(&config.files_dir(), &dir.join(FILES))?;
    let manifest = Manifest {
        format: FORMAT,
        switchboard: env!("CARGO_PKG_VERSION").to_string(),
        created_at_ms: Timestamp::now().0,
        backend: backend.to_string(),
        database: database.to_string(),
        migration,
        files,
        file_bytes,
        master_key_ids,
    };
    write_new(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(BackupReport {
        manifest,
        master_key: key_path,
    })
}

/// Restores the backup in `dir` into the installation `config` describes: its data directory
/// must hold nothing but the master key, its database must be new (no SQLite file; no table in
/// PostgreSQL), and the master key file must hold every key the backup names. Then the
/// database is opened and migrated, as the server would at start.
pub async fn restore(config: &Config, dir: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(dir.join(MANIFEST)).with_context(|| {
        format!(
            "reading {} (a backup without it is incomplete)",
            dir.join(MANIFEST).display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text).context("reading the manifest")?;
    ensure!(
        manifest.format == FORMAT,
        "the backup's manifest has format {}; this Switchboard reads format {FORMAT}",
        manifest.format
    );
    let known = switchboard_store_sqlite::SqliteStore::migrations();
    switchboard_domain::schema::check_applied(
        &[(
            manifest.migration,
            format!("of Switchboard {}", manifest.switchboard),
        )],
        &known,
        env!("CARGO_PKG_VERSION"),
    )?;
    let key_path = config.master_key_path();
    let ring = switchboard_vault::Keyring::from_file(&key_path).with_context(|| {
        format!(
            "reading the master key {}: put the key the backup needs ({}) there first; it is \
             not part of the backup",
            key_path.display(),
            manifest.master_key_ids.join(", ")
        )
    })?;
    let held: Vec<&str> = ring.key_ids().iter().map(|id| id.as_str()).collect();
    let missing: Vec<&String> = manifest
        .master_key_ids
        .iter()
        .filter(|id| !held.contains(&id.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "the master key file {} lacks the key(s) {missing:?} the backup was sealed with (it \
         holds {held:?}); restore the key file of that time",
        key_path.display()
    );
    let data_dir = &config.data_dir;
    let strangers = data_dir_contents(data_dir, &key_path)?;
    ensure!(
        strangers.is_empty(),
        "the data directory {} is not empty ({}): restore only into an empty one (the master \
         key may be there)",
        data_dir.display(),
        strangers.join(", ")
    );
    let url = config.database_url();
    match manifest.backend.as_str() {
        "sqlite" => {
            ensure!(
                url.starts_with("sqlite:"),
                "the backup is of a SQLite database, and the configuration names PostgreSQL"
            );
            let target = sqlite_path(&url);
            ensure!(
                !target.exists(),
                "{} exists: restore only into a new database",
                target.display()
            );
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let source = dir.join(&manifest.database);
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
        }
        "postgres" => {
            ensure!(
                url.starts_with("postgres"),
                "the backup is of a PostgreSQL database, and the configuration names SQLite"
            );
            let store = switchboard_store_postgres::connect(&url, &Default::default()).await?;
            let tables = store.table_count().await?;
            store.close().await;
            ensure!(
                tables == 0,
                "the PostgreSQL database holds {tables} table(s): restore only into a new, empty \
                 database (createdb)"
            );
            let source = dir.join(&manifest.database);
            run_pg_tool(
                "pg_restore",
                &url,
                &[
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                    path_arg(&source)?,
                ],
            )?;
        }
        other => bail!("the backup's manifest names an unknown database backend {other:?}"),
    }
    copy_tree(&dir.join(FILES), &config.files_dir())?;
    crate::app::open_stores(config)
        .await
        .context("opening the restored database")?;
    Ok(manifest)
}

/// The newest migration of a list (0 for none).
fn newest(applied: &[(i64, String)]) -> i64 {
    applied.iter().map(|(v, _)| *v).max().unwrap_or(0)
}

/// The file a `sqlite://path[?options]` URL names.
pub(crate) fn sqlite_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

fn path_arg(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Runs `pg_dump` or `pg_restore` on the database at `url`: the URL without its password as
/// `--dbname`, the password in `PGPASSWORD`.
fn run_pg_tool(tool: &str, url: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut parsed = url::Url::parse(url).context("parsing the database URL")?;
    let password = parsed
        .password()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .map(|p| p.into_owned())
                .context("the database URL's password is not valid UTF-8")
        })
        .transpose()?;
    let _ = parsed.set_password(None);
    let mut command = Command::new(tool);
    command.args(args).arg("--dbname").arg(parsed.as_str());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let out = command.output().with_context(|| {
        format!("running {tool} (install the PostgreSQL client tools of your server's version)")
    })?;
    ensure!(
        out.status.success(),
        "{tool} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// The names in the data directory other than the master key (and an empty file store).
fn data_dir_contents(dir: &Path, key: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        if path == key || (path.file_name() == Some(FILES.as_ref()) && is_empty_dir(&path)?) {
            continue;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Copies every file under `from` (none if it does not exist) to the same place under `to`,
/// leaving out the file store's `tmp/` (downloads in progress); returns the count and bytes.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    let mut count = 0;
    let mut bytes = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let source = from.join(&relative);
        let entries = match std::fs::read_dir(&source) {
            Ok(entries) => entries,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && relative.as_os_str().is_empty() =>
            {
                return Ok((0, 0));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", source.display())),
        };
        std::fs::create_dir_all(to.join(&relative))
            .with_context(|| format!("creating {}", to.join(&relative).display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", source.display()))?;
            let name = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if name.as_os_str() != "tmp" {
                    pending.push(name);
                }
            } else if kind.is_file() {
                let target = to.join(&name);
                bytes += std::fs::copy(entry.path(), &target).with_context(|| {
                    format!("copying {} to {}", entry.path().display(), target.display())
                })?;
                count += 1;
            }
        }
    }
    Ok((count, bytes))
}

/// Writes a new file (never replacing one) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            super::sqlite_path("sqlite:///var/lib/sb/switchboard.db?mode=rwc"),
            std::path::PathBuf::from("/var/lib/sb/switchboard.db")
        );
        assert_eq!(
            super::sqlite_path("sqlite://data/switchboard.db"),
            std::path::PathBuf::from("data/switchboard.db")
        );
    }
}
