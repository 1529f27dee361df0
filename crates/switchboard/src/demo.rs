//! `switchboard demo`: a ready-to-try installation — a demo workspace and an admin with fresh
//! credentials, printed and written to `<data-dir>/demo.json`.

use anyhow::Context;
use base64::Engine;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use switchboard_domain::{Role, Store, StoreError, Timestamp, Username, WorkspaceId};
use switchboard_services::{AuthService, NewMember};

#[cfg(feature = "demo")]
mod world;
#[cfg(feature = "demo")]
pub use world::{
    DEMO_BOT_TOKEN, DEMO_OWNER_PHONE, DEMO_TASK_NAME, DEMO_TASK_QUERY, DEMO_TASK_SOURCE, DemoWorld,
    connect_bot, connect_owner, create_lead_task, create_scheduled_post, simulate_customers,
    start_world, wait_connected,
};

/// The file that marks a data directory as the demo's: `demo` writes it before it creates
/// anything else there, and refuses a directory holding an installation without it.
pub const DEMO_MARKER: &str = "demo.marker";

/// What a data directory holds of an installation: the SQLite database (with its WAL files),
/// the master key, the file store.
const INSTALLATION_FILES: &[&str] = &[
    "switchboard.db",
    "switchboard.db-wal",
    "switchboard.db-shm",
    "master.key",
    "files",
];

/// Makes `dir` the demo's, or refuses it: a directory that is new, holds no installation
/// (no database, master key or file store), or is marked as the demo's ([`DEMO_MARKER`], or
/// the `demo.json` of a demo from before the marker) is claimed by writing the marker; one
/// holding an installation without the marker is refused, before anything is opened.
pub fn claim_data_dir(dir: &Path) -> anyhow::Result<()> {
    let marker = dir.join(DEMO_MARKER);
    if marker.is_file() || dir.join("demo.json").is_file() {
        return write_marker(&marker);
    }
    let found: Vec<&str> = INSTALLATION_FILES
        .iter()
        .copied()
        .filter(|name| dir.join(name).exists())
        .collect();
    anyhow::ensure!(
        found.is_empty(),
        "{} holds a Switchboard installation that is not a demo's ({}): the demo would \
         change it, so it refuses. Give the demo a directory of its own with --data-dir \
         (a new or empty one); demo never reads the configuration file or SWITCHBOARD_* \
         variables, so it cannot reach a database elsewhere",
        dir.display(),
        found.join(", ")
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_marker(&marker)
}

fn write_marker(path: &Path) -> anyhow::Result<()> {
    std::fs::write(
        path,
        "This directory belongs to `switchboard demo`: its database, files and key are \
         throwaway demo data. `demo` refuses a data directory without this file that holds \
         a database, a master key or files.\n",
    )
    .with_context(|| format!("writing {}", path.display()))
}

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

/// Writes `demo.json`. It holds a password, so it is never readable by others, not even for a
/// moment: the text goes to a new file created with mode 0600 (on Unix) which then replaces
/// the old one, so a reader that opened an earlier `demo.json` does not see the new password.
pub fn write_credentials(dir: &Path, creds: &DemoCredentials) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("demo.json");
    let text = serde_json::to_string_pretty(creds)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".demo.json.");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    file.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn a_data_dir_is_claimed_when_new_or_the_demos_and_refused_when_it_holds_an_installation() {
        let root = tempfile::tempdir().unwrap();
        let new = root.path().join("new");
        super::claim_data_dir(&new).unwrap();
        assert!(new.join(super::DEMO_MARKER).is_file());
        // Claimed again, with what a demo run leaves there.
        std::fs::write(new.join("switchboard.db"), b"").unwrap();
        std::fs::write(new.join("master.key"), b"").unwrap();
        super::claim_data_dir(&new).unwrap();
        // A demo's directory from before the marker: recognised by its demo.json.
        let old = root.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("switchboard.db"), b"").unwrap();
        std::fs::write(old.join("demo.json"), b"{}").unwrap();
        super::claim_data_dir(&old).unwrap();
        assert!(old.join(super::DEMO_MARKER).is_file());
        // Unrelated files are no installation.
        let other = root.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), b"x").unwrap();
        super::claim_data_dir(&other).unwrap();
        // Each part of an installation alone makes a directory someone else's.
        for part in ["switchboard.db", "master.key", "files"] {
            let real = root.path().join(format!("real-{part}"));
            std::fs::create_dir(&real).unwrap();
            if part == "files" {
                std::fs::create_dir(real.join(part)).unwrap();
            } else {
                std::fs::write(real.join(part), b"x").unwrap();
            }
            let err = super::claim_data_dir(&real).unwrap_err().to_string();
            assert!(err.contains(part) && err.contains("--data-dir"), "{err}");
            assert!(!real.join(super::DEMO_MARKER).exists(), "nothing written");
        }
    }

    #[cfg(unix)]
    #[test]
    fn demo_json_is_never_readable_by_others() {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.json");
        let creds = |password: &str| super::DemoCredentials {
            url: "http://127.0.0.1:8080".into(),
            username: "admin".into(),
            password: password.into(),
        };
        super::write_credentials(dir.path(), &creds("first-password")).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "created owner-only");
        // A file left world-readable (by an older version, or by hand), opened by someone
        // else while it was: the next password must not reach them through that handle.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut earlier_reader = std::fs::File::open(&path).unwrap();
        super::write_credentials(dir.path(), &creds("second-password")).unwrap();
        assert_eq!(mode(&path), 0o600);
        let mut seen = String::new();
        earlier_reader.read_to_string(&mut seen).unwrap();
        assert!(
            !seen.contains("second-password"),
            "the new password was written into the world-readable file: {seen}"
        );
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.contains("second-password"), "{now}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("demo.json")],
            "no temporary file is left"
        );
    }
}
