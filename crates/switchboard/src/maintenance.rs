//! Offline maintenance commands: importing a folder of session files and rotating the master
//! key. Both work on the database directly; run `keys rotate` while the server is stopped.

use crate::app::{Stores, load_keyring, telegram_settings};
use crate::config::Config;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{AccountStore, WorkspaceId};
use switchboard_services::EventBus;
use switchboard_services::accounts::AccountSupervisor;
use switchboard_services::connect::AccountService;
use switchboard_vault::Sealed;

/// One line of the import report.
pub struct ImportLine {
    /// Folder or file stem.
    pub name: String,
    /// `ok (status)` or the error code and message.
    pub outcome: String,
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
    let supervisor = AccountSupervisor::new(
        Arc::clone(&stores.accounts),
        Arc::clone(&keyring),
        telegram_settings(config),
        events,
        inbox,
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
            Err(e) => format!("error {}: {e}", e.code()),
            Ok(session) => match service.import(workspace, actor, &session).await {
                Ok(imported) => format!(
                    "ok (account {}, {})",
                    imported.account.id,
                    imported.account.status.as_str()
                ),
                Err(e) => format!("error {}: {e}", e.code()),
            },
        };
        report.push(ImportLine {
            name: entry.name,
            outcome,
        });
    }
    // The server starts the imported accounts; close the validation clients here.
    supervisor.shutdown(Duration::from_secs(10)).await;
    Ok(report)
}

/// Rotates the master key: adds a new current key to the key file, re-wraps every sealed value
/// under it, then drops the old key. A crash at any step leaves every value readable.
pub async fn rotate_keys(
    config: &Config,
    accounts: &dyn AccountStore,
) -> anyhow::Result<(String, usize)> {
    let path = config.master_key_path();
    let mut keyring = load_keyring(config)?;
    let new_id = keyring.rotate().context("generating the new master key")?;
    keyring
        .write(&path)
        .context("writing the key file with the new key")?;
    let mut rewrapped = 0;
    let sealed = accounts.list_all_sealed_dc_keys().await?;
    let mut by_account: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
    for (account, dc, _) in sealed {
        by_account.entry(account).or_default().push(dc);
    }
    for (account, _) in by_account {
        for mut key in accounts.list_dc_keys(account).await? {
            let Some(bytes) = key.auth_key_sealed.as_ref() else {
                continue;
            };
            let sealed = Sealed::from_bytes(bytes)
                .map_err(|e| anyhow::anyhow!("account {account} dc {}: {}", key.dc_id, e.code()))?;
            if !keyring.needs_rewrap(&sealed) {
                continue;
            }
            let fresh = keyring
                .rewrap(&sealed)
                .map_err(|e| anyhow::anyhow!("account {account} dc {}: {}", key.dc_id, e.code()))?;
            key.auth_key_sealed = Some(fresh.to_bytes());
            accounts.upsert_dc_key(account, &key).await?;
            rewrapped += 1;
        }
    }
    keyring.drop_retired();
    keyring
        .write(&path)
        .context("writing the key file without the old key")?;
    Ok((new_id.as_str().to_string(), rewrapped))
}
