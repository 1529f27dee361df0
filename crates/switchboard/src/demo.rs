//! `switchboard demo`: a ready-to-try installation — a demo workspace and an admin with fresh
//! credentials, printed and written to `<data-dir>/demo.json`.

use anyhow::Context;
use base64::Engine;
use serde::Serialize;
use std::io::Write;
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

/// The built-in Telegram of the demo: tgsim with its demo world, and who plays which part.
pub struct DemoWorld {
    /// The simulator.
    pub sim: tgsim::Handle,
    /// The person whose personal account the demo connects.
    pub owner: tgsim::UserInfo,
    /// People who write in.
    pub customers: Vec<tgsim::UserInfo>,
    /// The demo bot's Telegram user, if the world has one.
    pub bot: Option<tgsim::UserInfo>,
}

/// The demo owner's phone in tgsim's demo world (Алексей Смирнов).
pub const DEMO_OWNER_PHONE: &str = "+79001234567";
/// The demo bot's token in tgsim's demo world.
pub const DEMO_BOT_TOKEN: &str = "5000000001:AAE-demo-switchboard-token";

/// Starts tgsim with its demo world on free local ports and points `config` at it.
pub async fn start_world(config: &mut crate::Config) -> anyhow::Result<DemoWorld> {
    let sim = tgsim::start(tgsim::Config {
        demo_world: true,
        ..tgsim::Config::default()
    })
    .await
    .context("starting the built-in Telegram simulator")?;
    config.telegram.dc_override = Some(sim.mtproto_addr().to_string());
    config.telegram.sim_control_url = Some(sim.control_url());
    config.telegram.bot_api_url = sim.bot_api_url();
    if config.telegram.api_id.is_none() {
        config.telegram.api_id = Some(12345);
        config.telegram.api_hash = Some(switchboard_services::Secret::new(
            "0123456789abcdef0123456789abcdef",
        ));
    }
    let owner = sim
        .user_by_phone(DEMO_OWNER_PHONE)
        .context("the demo world has no owner account")?;
    let users = sim.users();
    let bot = users.iter().find(|u| u.bot).cloned();
    // People only: not bots, not the owner, not Telegram's service-notifications account.
    let customers = users
        .into_iter()
        .filter(|u| !u.bot && u.id != owner.id && u.id != tgsim::world::SERVICE_USER)
        .collect();
    Ok(DemoWorld {
        sim,
        owner,
        customers,
        bot,
    })
}

/// Connects the demo owner's personal account (with a fresh session from the simulator, whose
/// world starts anew on every run; an account left from an earlier run is replaced).
pub async fn connect_owner(
    running: &crate::app::Running,
    world: &DemoWorld,
    ws: WorkspaceId,
) -> anyhow::Result<()> {
    let actor = first_owner(&*running.store, ws).await?;
    let phone: String = DEMO_OWNER_PHONE
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if let Some(old) = running
        .account_store
        .find_account_by_phone(ws, &phone)
        .await?
    {
        running.accounts.delete(ws, actor, old.id).await?;
    }
    let key = world.sim.issue_auth_key();
    world
        .sim
        .register_auth_key(world.owner.id, key)
        .context("registering the demo session")?;
    let auth_key = switchboard_sessions::AuthKey::new(key);
    let string =
        switchboard_sessions::telethon::export_string(&switchboard_sessions::ExportParams {
            dc_id: 2,
            server_addr: Some(world.sim.mtproto_addr()),
            auth_key: &auth_key,
            user_id: None,
            is_bot: None,
            api_id: None,
            test_mode: false,
        })?;
    let mut imported = switchboard_sessions::parse_string(string.expose())?;
    imported.phone = Some(phone);
    running.accounts.import(ws, actor, &imported).await?;
    Ok(())
}

/// Waits (up to 15 s) until the workspace's accounts are connected.
pub async fn wait_connected(running: &crate::app::Running, ws: WorkspaceId) {
    for _ in 0..150 {
        let connected = running
            .account_store
            .list_accounts(ws)
            .await
            .is_ok_and(|list| {
                list.iter()
                    .all(|a| a.status == switchboard_domain::AccountStatus::Connected)
            });
        if connected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::warn!("the demo account is not connected yet; customers write anyway");
}

/// Connects the demo bot (replacing one left from an earlier run: the simulator's update ids
/// start anew with its world).
pub async fn connect_bot(running: &crate::app::Running, ws: WorkspaceId) -> anyhow::Result<()> {
    let bot_id: i64 = DEMO_BOT_TOKEN
        .split(':')
        .next()
        .and_then(|id| id.parse().ok())
        .context("the demo bot token has no id")?;
    for old in running.bots.list(ws).await? {
        if old.telegram_bot_id == bot_id {
            running.bots.delete(ws, old.id).await?;
        }
    }
    running.bots.add(ws, DEMO_BOT_TOKEN).await?;
    Ok(())
}

const CUSTOMER_LINES: &[&str] = &[
    "Здравствуйте! Квартира на Лесной ещё сдаётся?",
    "Hi! Is the 2-bedroom flat still available?",
    "Можно посмотреть завтра после 18:00?",
    "What is the deposit, and are pets allowed?",
    "Спасибо, а коммунальные платежи включены в цену?",
    "Could you send a few more photos of the kitchen?",
    "Добрый день! Подскажите, пожалуйста, есть ли парковка?",
    "Great, I'll take it. How do we sign the contract?",
];

/// Has the demo customers write in every `every`, alternating between the owner's personal
/// account and the bot, until `stop` fires.
pub fn simulate_customers(
    world: &DemoWorld,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sim = world.sim.clone();
    let owner = world.owner.id;
    let bot = world.bot.as_ref().map(|b| b.id);
    let customers: Vec<tgsim::UserId> = world.customers.iter().map(|c| c.id).collect();
    tokio::spawn(async move {
        let mut n: usize = 0;
        loop {
            if n > 0 {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
            let Some(from) = customers.get(n % customers.len().max(1)).copied() else {
                return;
            };
            let to = match bot {
                Some(bot) if n % 2 == 1 => bot,
                _ => owner,
            };
            let line = CUSTOMER_LINES[n % CUSTOMER_LINES.len()];
            if let Err(e) = sim.send_message(
                from,
                tgsim::Peer::User(to),
                tgsim::OutgoingMessage::text(line),
            ) {
                tracing::debug!(error = %e, "a demo customer could not write");
            }
            n += 1;
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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

    #[tokio::test]
    async fn demo_customers_are_people_other_than_the_owner() {
        let mut config = crate::Config::default();
        let world = super::start_world(&mut config).await.unwrap();
        assert!(!world.customers.is_empty());
        for c in &world.customers {
            assert!(!c.bot, "{} is a bot", c.first_name);
            assert_ne!(c.id, world.owner.id);
            assert_ne!(
                c.id,
                tgsim::world::SERVICE_USER,
                "Telegram's service account does not write in as a customer"
            );
        }
        world.sim.shutdown().await;
    }
}
