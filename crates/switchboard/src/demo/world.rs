//! The demo's built-in Telegram (the `demo` cargo feature, on by default): tgsim with its demo
//! world, the demo owner's account and the demo bot connected to it, and customers who write in.

use super::first_owner;
use anyhow::Context;
use switchboard_domain::WorkspaceId;

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
/// account and the bot, until `stop` fires; the loop runs in `tasks`.
pub fn simulate_customers(
    world: &DemoWorld,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
    tasks: &switchboard_services::Tasks,
) -> tokio::task::JoinHandle<()> {
    let sim = world.sim.clone();
    let owner = world.owner.id;
    let bot = world.bot.as_ref().map(|b| b.id);
    let customers: Vec<tgsim::UserId> = world.customers.iter().map(|c| c.id).collect();
    tasks.spawn(async move {
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
