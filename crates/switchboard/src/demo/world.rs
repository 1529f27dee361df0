//! The demo's built-in Telegram (the `demo` cargo feature, on by default): tgsim with its demo
//! world, the demo owner's account and the demo bot connected to it, customers who write in,
//! and a lead monitoring task on the demo's job channel.

use super::first_owner;
use anyhow::Context;
use switchboard_domain::{
    DeliveryMode, DeliveryTarget, Role, SourceRef, Task, TaskSpec, Timestamp, Viewer, WorkspaceId,
};

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
    // Anyone may sign up with a simulated phone, and the demo bot sends the sign-in codes.
    config.auth.self_service = "open".to_string();
    if config.auth.service_bot.is_none() {
        config.auth.service_bot = bot.as_ref().and_then(|b| b.username.clone());
    }
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

/// The demo's lead monitoring task: its name, ...
pub const DEMO_TASK_NAME: &str = "Rust or Go vacancies";
/// ... its query (Rust or Go in any form, no post that says "senior"), ...
pub const DEMO_TASK_QUERY: &str = "(rust | go | golang) -senior";
/// ... and the channel it watches, where tgsim's demo poster publishes vacancies for Rust and Go
/// developers (some senior, which the task leaves out) and a few others.
pub const DEMO_TASK_SOURCE: &str = "@rust_go_jobs";

/// Creates (or, after an earlier run, points at the new demo account) the demo's lead task:
/// [`DEMO_TASK_QUERY`] over [`DEMO_TASK_SOURCE`], read by the demo owner's account (which may
/// join the channel), each lead sent at once to that account's Saved Messages. Call it after
/// [`connect_owner`].
pub async fn create_lead_task(
    running: &crate::app::Running,
    ws: WorkspaceId,
) -> anyhow::Result<Task> {
    let actor = first_owner(&*running.store, ws).await?;
    let phone: String = DEMO_OWNER_PHONE
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let account = running
        .account_store
        .find_account_by_phone(ws, &phone)
        .await?
        .context("the demo account is not connected")?;
    let viewer = Viewer {
        workspace: ws,
        user: actor,
        role: Role::Owner,
    };
    let spec = TaskSpec {
        name: DEMO_TASK_NAME.to_string(),
        query: DEMO_TASK_QUERY.to_string(),
        account: account.id,
        target: DeliveryTarget::SavedMessages,
        mode: DeliveryMode::Instant,
        instant_cap_per_minute: 10,
        ignore_forwards: false,
        join_allowed: true,
        leave_unused: false,
    };
    let leads = running.monitor.store();
    let now = Timestamp::now();
    let existing = leads
        .list_tasks(&viewer)
        .await?
        .into_iter()
        .find(|t| t.name == DEMO_TASK_NAME);
    let task = match existing {
        Some(task) => leads.update_task(&viewer, task.id, &spec, now).await?,
        None => leads.create_task(&viewer, &spec, now).await?,
    };
    let source = SourceRef::parse(DEMO_TASK_SOURCE).map_err(|e| anyhow::anyhow!("{e}"))?;
    leads
        .set_task_sources(&viewer, task.id, &[source], now)
        .await?;
    running.monitor.tasks_changed(Some(account.id));
    Ok(task)
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

    use switchboard_domain::{DeliveryMode, DeliveryTarget, Role, SourceKind, Username, Viewer};

    /// The demo as `switchboard demo` sets it up, on a fresh SQLite file (the demo's database).
    struct Demo {
        running: crate::app::Running,
        world: super::DemoWorld,
        ws: switchboard_domain::WorkspaceId,
        _dir: tempfile::TempDir,
    }

    async fn demo() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        let world = super::start_world(&mut config).await.unwrap();
        let running = crate::start(&config).await.unwrap();
        super::super::prepare(&*running.store, &running.auth)
            .await
            .unwrap();
        let ws = super::super::first_workspace(&*running.store, "Demo")
            .await
            .unwrap();
        Demo {
            running,
            world,
            ws,
            _dir: dir,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_has_a_lead_task_on_its_job_channel_read_by_the_owner() {
        let d = demo().await;
        let admin = d
            .running
            .store
            .find_credentials(&Username::parse(crate::demo::DEMO_USERNAME).unwrap())
            .await
            .unwrap()
            .unwrap()
            .user
            .id;
        let viewer = Viewer {
            workspace: d.ws,
            user: admin,
            role: Role::Owner,
        };
        let leads = d.running.monitor.store();
        // A second run of the demo replaces the owner's account (the simulator starts anew):
        // the task follows the new account, and there is still one.
        for _ in 0..2 {
            super::connect_owner(&d.running, &d.world, d.ws)
                .await
                .unwrap();
            super::create_lead_task(&d.running, d.ws).await.unwrap();
            let account = d
                .running
                .account_store
                .find_account_by_phone(d.ws, "79001234567")
                .await
                .unwrap()
                .unwrap();
            let tasks = leads.list_tasks(&viewer).await.unwrap();
            assert_eq!(tasks.len(), 1, "{tasks:?}");
            let task = &tasks[0];
            assert_eq!(task.name, super::DEMO_TASK_NAME);
            assert_eq!(task.query, "(rust | go | golang) -senior");
            assert_eq!(task.account_id, account.id, "read by Алексей's account");
            assert_eq!(task.target, DeliveryTarget::SavedMessages);
            assert_eq!(task.mode, DeliveryMode::Instant);
            assert!(task.active && task.join_allowed);
            let sources = leads.task_sources(&viewer, task.id).await.unwrap();
            assert_eq!(sources.len(), 1, "{sources:?}");
            assert_eq!(sources[0].kind, SourceKind::Username);
            assert_eq!(sources[0].key, "rust_go_jobs");
            assert_eq!(sources[0].account_id, account.id);
        }
        // The channel exists in the simulator's demo world, and its poster writes both kinds
        // of vacancy, in Russian and in English.
        assert!(matches!(
            d.world.sim.resolve_username("rust_go_jobs"),
            Some(tgsim::Peer::Channel(_))
        ));
        let ads = tgsim::demo_channel_ads("rust_go_jobs");
        let query = switchboard_leads::Query::parse(super::DEMO_TASK_QUERY).unwrap();
        let matcher = switchboard_leads::Matcher::build([switchboard_leads::TaskSpec {
            id: 0,
            query,
            ignore_forwards: false,
        }])
        .unwrap();
        let cyrillic = |t: &str| {
            t.chars()
                .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c)))
        };
        let taken: Vec<&str> = ads
            .iter()
            .copied()
            .filter(|ad| !matcher.match_post(ad).is_empty())
            .collect();
        let left: Vec<&str> = ads
            .iter()
            .copied()
            .filter(|ad| !taken.contains(ad))
            .collect();
        for (kind, list) in [("matching", &taken), ("non-matching", &left)] {
            assert!(
                list.iter().any(|t| cyrillic(t)),
                "no Russian {kind} ad: {list:?}"
            );
            assert!(
                list.iter().any(|t| !cyrillic(t)),
                "no English {kind} ad: {list:?}"
            );
        }
        assert!(left.iter().any(|t| t.contains("Senior")), "{left:?}");
        d.running.shutdown().await.unwrap();
        d.world.sim.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rust_vacancy_posted_in_the_demo_channel_becomes_a_lead_in_alexeys_saved_messages() {
        let d = demo().await;
        super::connect_owner(&d.running, &d.world, d.ws)
            .await
            .unwrap();
        super::wait_connected(&d.running, d.ws).await;
        let task = super::create_lead_task(&d.running, d.ws).await.unwrap();
        let leads = d.running.monitor.store();
        let viewer = Viewer {
            workspace: d.ws,
            user: task.created_by.unwrap(),
            role: Role::Owner,
        };
        let filter = switchboard_domain::LeadFilter {
            task: Some(task.id),
            limit: 100,
            ..Default::default()
        };
        // The monitor resolves the channel and joins it (or reads it with getHistory).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let sources = leads.task_sources(&viewer, task.id).await.unwrap();
            if sources.iter().all(|s| {
                matches!(
                    s.state,
                    switchboard_domain::SourceState::Joined
                        | switchboard_domain::SourceState::Polled
                )
            }) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the demo channel was not resolved: {sources:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let Some(tgsim::Peer::Channel(channel)) = d.world.sim.resolve_username("rust_go_jobs")
        else {
            panic!("no demo channel")
        };
        let wanted = "Ищем Rust-разработчика в демо: удалёнка, 300 000 ₽, код-ревью 7d3f";
        let senior = "Senior Rust developer for the demo, remote, 9c1e";
        for text in [senior, wanted] {
            d.world
                .sim
                .post_to_channel(channel, tgsim::OutgoingMessage::text(text))
                .unwrap();
        }
        let owner = d.world.owner.id;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let (lead, saved) = loop {
            let found = leads.list_leads(&viewer, &filter).await.unwrap();
            let lead = found.iter().find(|l| l.text == wanted).cloned();
            let saved = d
                .world
                .sim
                .messages(owner)
                .unwrap()
                .into_iter()
                .find(|m| m.peer == tgsim::Peer::User(owner) && m.text.contains("7d3f"));
            if let (Some(lead), Some(saved)) = (&lead, &saved) {
                break (lead.clone(), saved.clone());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no lead in Saved Messages within 60 s: lead {lead:?}, saved {saved:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert!(lead.terms.iter().any(|t| t == "rust"), "{:?}", lead.terms);
        assert!(
            saved.out,
            "Алексей's own account wrote it to his Saved Messages"
        );
        let all = leads.list_leads(&viewer, &filter).await.unwrap();
        assert!(
            all.iter().all(|l| !l.text.contains("9c1e")),
            "the senior vacancy is left out: {all:?}"
        );
        d.running.shutdown().await.unwrap();
        d.world.sim.shutdown().await;
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
