//! `switchboard demo`: a ready-to-try installation — a demo workspace and an admin with fresh
//! credentials, printed and written to `<data-dir>/demo.json`.

use anyhow::Context;
use base64::Engine;
use serde::Serialize;
use std::path::Path;
use switchboard_domain::{Role, Store, StoreError, Timestamp, Username, WorkspaceId};
use switchboard_services::{AuthService, NewMember};

/// The demo admin's sign-in name.
pub const DEMO_USERNAME: &str = "admin";

/// What `demo.json` holds.
#[derive(Serialize)]
pub struct DemoCredentials {
    /// Where the web app is.
    pub url: String,
    /// Sign-in name.
    pub username: String,
    /// Fresh password for this run.
    pub password: String,
}

/// Ensures the demo workspace and admin exist and gives the admin a fresh random password.
pub async fn prepare(store: &dyn Store, auth: &AuthService) -> anyhow::Result<(String, String)> {
    let password = random_password()?;
    let name = Username::parse(DEMO_USERNAME).map_err(|e| anyhow::anyhow!("{e}"))?;
    match store.find_credentials(&name).await? {
        Some(creds) => {
            auth.set_password(creds.user.id, &password).await?;
        }
        None => {
            let ws = first_workspace(store, "Demo").await?;
            let member = NewMember {
                username: DEMO_USERNAME,
                display_name: Some("Demo Admin"),
                password: &password,
                role: Role::Owner,
                max_chats: 50,
            };
            auth.create_member(ws, member, None).await?;
        }
    }
    Ok((DEMO_USERNAME.to_string(), password))
}

/// The first workspace (id 1 on a fresh database), created with `name` if there is none.
pub async fn first_workspace(store: &dyn Store, name: &str) -> anyhow::Result<WorkspaceId> {
    match store.get_workspace(WorkspaceId(1)).await {
        Ok(ws) => Ok(ws.id),
        Err(StoreError::NotFound) => Ok(store.create_workspace(name, Timestamp::now()).await?.id),
        Err(e) => Err(e.into()),
    }
}

/// Writes `demo.json` (mode 0600 on Unix: it holds a password).
pub fn write_credentials(dir: &Path, creds: &DemoCredentials) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("demo.json");
    let text = serde_json::to_string_pretty(creds)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The first owner (or admin) of a workspace: the actor recorded for offline imports.
pub async fn first_owner(
    store: &dyn Store,
    ws: WorkspaceId,
) -> anyhow::Result<switchboard_domain::UserId> {
    let members = store.list_members(ws).await?;
    members
        .iter()
        .find(|(m, _)| m.role == Role::Owner)
        .or_else(|| members.iter().find(|(m, _)| m.role.is_admin()))
        .map(|(_, u)| u.id)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "workspace {ws} has no owner or admin; create one with `admin create-user`"
            )
        })
}
