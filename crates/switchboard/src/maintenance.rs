//! Offline maintenance commands: importing a folder of session files and rotating the master
//! key. Both work on the database directly; run `keys rotate` while the server is stopped.

use crate::app::{Stores, load_keyring, telegram_settings};
use crate::config::Config;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{SEALED_COLUMNS, SealedReplacement, Store, WorkspaceId};
use switchboard_services::EventBus;
use switchboard_services::accounts::AccountSupervisor;
use switchboard_services::connect::AccountService;
use switchboard_vault::{Keyring, Sealed, VaultError};

/// One line of the import report.
pub struct ImportLine {
    /// Folder or file stem.
    pub name: String,
    /// `ok (status)` or the error code and message.
    pub outcome: String,
    /// Whether this entry was imported.
    pub ok: bool,
}

/// Imports every `{phone}/{phone}.json` + `{phone}.session` under `dir` into `workspace`. Each
/// account is validated with one connection; one bad folder does not stop the others.
pub async fn import_folder(
    config: &Config,
    stores: &Stores,
    workspace: WorkspaceId,
    dir: &Path,
) -> anyhow::Result<Vec<ImportLine>> {
    let entries = switchboard_sessions::import_folder(dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    let keyring = Arc::new(load_keyring(config)?);
    let events = EventBus::default();
    let inbox = switchboard_services::Inbox::new(
        Arc::clone(&stores.inbox),
        events.clone(),
        switchboard_services::Transports::default(),
        false,
    );
    let workers = switchboard_services::Workers::new();
    let supervisor = AccountSupervisor::new(
        Arc::clone(&stores.accounts),
        Arc::clone(&keyring),
        telegram_settings(config, Arc::new(workers.tasks("telegram_clients"))),
        events,
        inbox,
        None,
        workers.clone(),
    );
    let service = AccountService::new(
        Arc::clone(&stores.store),
        Arc::clone(&stores.accounts),
        keyring,
        supervisor.clone(),
    );
    let actor = crate::demo::first_owner(&*stores.store, workspace).await?;
    let mut report = Vec::new();
    for entry in entries {
        let outcome = match entry.result {
            Err(e) => Err(format!("error {}: {e}", e.code())),
            Ok(session) => match service.import(workspace, actor, &session).await {
                Ok(imported) => Ok(format!(
                    "ok (account {}, {})",
                    imported.account.id,
                    imported.account.status.as_str()
                )),
                Err(e) => Err(format!("error {}: {e}", e.code())),
            },
        };
        report.push(ImportLine {
            name: entry.name,
            ok: outcome.is_ok(),
            outcome: outcome.unwrap_or_else(|e| e),
        });
    }
    // The server starts the imported accounts; close the validation clients here.
    service.finish_imports(Duration::from_secs(30)).await;
    workers.shutdown(Duration::from_secs(10)).await;
    Ok(report)
}

/// What `keys rotate` did.
#[derive(Debug)]
pub struct Rotation {
    /// The new current key id.
    pub new_key: String,
    /// The key ids dropped from the key file.
    pub dropped: Vec<String>,
    /// Sealed values re-wrapped under the new key.
    pub rewrapped: usize,
}

/// Rotates the master key: every sealed value of every column of [`SEALED_COLUMNS`] (account
/// auth keys and `api_hash` overrides, bot tokens and webhook secrets, and whatever secret is
/// listed there later) is first re-wrapped in memory under a new key, so a missing or wrong key
/// file fails before anything is written; then the key file gets the new key next to the old
/// one, the values are written, and the old key is dropped. A crash at any step leaves every
/// value readable.
pub async fn rotate_keys(config: &Config, store: &dyn Store) -> anyhow::Result<Rotation> {
    let path = config.master_key_path();
    anyhow::ensure!(
        path.exists(),
        "the master key file {} does not exist; `keys rotate` needs the key that sealed the \
         stored secrets (set master_key_file / SWITCHBOARD_MASTER_KEY_FILE)",
        path.display()
    );
    let mut keyring = Keyring::from_file(&path)
        .map_err(vault_error)
        .with_context(|| format!("reading the master key {}", path.display()))?;
    let old_ids: Vec<String> = keyring
        .key_ids()
        .iter()
        .map(|id| id.as_str().to_string())
        .collect();
    let new_id = keyring.rotate().context("generating the new master key")?;

    let mut plan = Vec::new();
    for column in SEALED_COLUMNS {
        let mut replacements = Vec::new();
        for value in store.sealed_values(column).await? {
            let fresh = rewrapped(&keyring, &value.bytes).with_context(|| {
                format!("{}.{} of row {:?}", column.table, column.column, value.row)
            })?;
            if let Some(new) = fresh {
                replacements.push(SealedReplacement {
                    row: value.row,
                    old: value.bytes,
                    new,
                });
            }
        }
        plan.push((column, replacements));
    }

    keyring
        .write(&path)
        .context("writing the key file with the new key")?;
    let mut count = 0;
    for (column, replacements) in plan {
        let replaced = store.replace_sealed_values(column, &replacements).await?;
        anyhow::ensure!(
            replaced == replacements.len() as u64,
            "{}.{} changed while the key was rotated (is the server running?); run `keys \
             rotate` again with the server stopped",
            column.table,
            column.column
        );
        count += replacements.len();
    }
    keyring.drop_retired();
    keyring
        .write(&path)
        .context("writing the key file without the old key")?;
    Ok(Rotation {
        new_key: new_id.as_str().to_string(),
        dropped: old_ids,
        rewrapped: count,
    })
}

/// The value re-wrapped under the keyring's current key; `None` when it already is.
fn rewrapped(keyring: &Keyring, bytes: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let sealed = Sealed::from_bytes(bytes).map_err(vault_error)?;
    if !keyring.needs_rewrap(&sealed) {
        return Ok(None);
    }
    let fresh = keyring.rewrap(&sealed).map_err(vault_error)?;
    Ok(Some(fresh.to_bytes()))
}

fn vault_error(e: VaultError) -> anyhow::Error {
    anyhow::anyhow!("{e} ({})", e.code())
}
