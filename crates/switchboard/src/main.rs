//! The `switchboard` command line.

use anyhow::Context;
use switchboard::cli::{AdminAction, Cli, Command, ConfigAction, KeysAction, SessionsAction};
use switchboard::config::{Config, Loaded};
use switchboard::demo;
use switchboard_domain::Role;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = switchboard::cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The configuration of every command but `demo`: `--config` (or the file `SWITCHBOARD_CONFIG`
/// names) overlaid by the environment; logging starts with it.
fn load(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let Loaded { config, warnings } = Config::load(file, std::env::vars())?;
    init_logging(&config);
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Loaded by each command that needs it: `demo` never reads the configuration.
    let file = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = load(file)?;
            let mut running = switchboard::start(&config).await?;
            tokio::select! {
                r = running.wait() => r?,
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                    running.shutdown().await?;
                }
            }
        }
        #[cfg(feature = "demo")]
        Command::Demo { listen, data_dir } => {
            anyhow::ensure!(
                file.is_none(),
                "demo reads no configuration file: it runs on its own settings (--listen, --data-dir)"
            );
            run_demo(listen, data_dir).await?;
        }
        Command::Sessions {
            action: SessionsAction::Import { dir },
        } => {
            let config = load(file)?;
            let stores = switchboard::open_stores(&config).await?;
            let ws = demo::first_workspace(&*stores.store, "Main").await?;
            let report =
                switchboard::maintenance::import_folder(&config, &stores, ws, &dir).await?;
            for line in &report {
                say(&format!("{}: {}", line.name, line.outcome));
            }
            say(&format!("{} folder(s) processed", report.len()));
            let failed = report.iter().filter(|l| !l.ok).count();
            anyhow::ensure!(
                failed == 0,
                "{failed} of {} folder(s) failed; nothing was stored for them",
                report.len()
            );
        }
        Command::Keys {
            action: KeysAction::New { file },
        } => {
            let key = switchboard_vault::MasterKey::write_new(&file)
                .with_context(|| format!("creating the master key {}", file.display()))?;
            say(&format!(
                "wrote master key {} to {}; keep it apart from the data directory and its \
                 backups, and back it up on its own: without it no stored session or token \
                 can be read",
                key.id().as_str(),
                file.display()
            ));
        }
        Command::Keys {
            action: KeysAction::Rotate,
        } => {
            let config = load(file)?;
            let stores = switchboard::open_stores(&config).await?;
            let done = switchboard::maintenance::rotate_keys(&config, &*stores.store).await?;
            say(&format!(
                "master key rotated to {} (dropped {}); {} secret(s) re-wrapped",
                done.new_key,
                done.dropped.join(", "),
                done.rewrapped
            ));
        }
        Command::Migrate => {
            let config = load(file)?;
            let store = switchboard::open_store(&config).await?;
            say(&format!("{}: migrations applied", store.backend()));
        }
        Command::Backup { dir } => {
            let config = load(file)?;
            let done = switchboard::backup::backup(&config, &dir).await?;
            let m = &done.manifest;
            say(&format!(
                "backed up the {} database (migration {}) and {} file(s), {} bytes, to {}",
                m.backend,
                m.migration,
                m.files,
                m.file_bytes,
                dir.display()
            ));
            say(&format!(
                "WARNING: the master key is NOT in the backup. It needs key id(s) {} from {}: \
                 keep a copy of that file somewhere else (never next to this backup); without \
                 it the backup's sessions and bot tokens cannot be read",
                m.master_key_ids.join(", "),
                done.master_key.display()
            ));
        }
        Command::Restore { dir } => {
            let config = load(file)?;
            let m = switchboard::backup::restore(&config, &dir).await?;
            say(&format!(
                "restored the {} backup taken by Switchboard {} ({} file(s)) into {}",
                m.backend,
                m.switchboard,
                m.files,
                config.data_dir.display()
            ));
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
            let config = load(file)?;
            say(&format!("configuration OK\n{config:#?}"));
        }
        Command::Admin {
            action:
                AdminAction::CreateUser {
                    username,
                    password_file,
                    role,
                    display_name,
                    max_chats,
                },
        } => {
            let config = load(file)?;
            let role: Role = role
                .parse()
                .map_err(|_| anyhow::anyhow!("role must be owner, admin or operator"))?;
            let password = std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {}", password_file.display()))?;
            let password = password.lines().next().unwrap_or("").to_string();
            let store = switchboard::open_store(&config).await?;
            let auth = switchboard_services::AuthService::new(
                store.clone(),
                switchboard::app::auth_policy(&config),
            )?;
            let ws = demo::first_workspace(&*store, "Main").await?;
            let (user, m) = auth
                .create_member(
                    ws,
                    switchboard_services::NewMember {
                        username: &username,
                        display_name: display_name.as_deref(),
                        password: &password,
                        role,
                        max_chats,
                    },
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            say(&format!(
                "created user {} (id {}) as {} in workspace {}",
                username,
                user.id,
                m.role.as_str(),
                ws
            ));
        }
    }
    Ok(())
}

/// `switchboard demo`: its own configuration (the defaults, with `listen` and `data_dir` from
/// the command line; no file, no environment), in a data directory that is a demo's or new.
#[cfg(feature = "demo")]
async fn run_demo(
    listen: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
) -> anyhow::Result<()> {
    let mut config = Config::default();
    init_logging(&config);
    config.server.listen = listen;
    config.data_dir = data_dir.clone();
    demo::claim_data_dir(&data_dir)?;
    let world = demo::start_world(&mut config).await?;
    let running = switchboard::start(&config).await?;
    let (username, password) = demo::prepare(&*running.store, &running.auth).await?;
    let ws = demo::first_workspace(&*running.store, "Demo").await?;
    demo::connect_owner(&running, &world, ws).await?;
    // Customers start writing once the account listens, so the first message is live.
    demo::wait_connected(&running, ws).await;
    demo::connect_bot(&running, ws).await?;
    demo::create_lead_task(&running, ws).await?;
    demo::create_scheduled_post(&running, ws).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let customers = demo::simulate_customers(
        &world,
        std::time::Duration::from_secs(20),
        stop.clone(),
        &running.workers.tasks("demo_customers"),
    );
    let creds = demo::DemoCredentials {
        url: running.url(),
        username,
        password,
    };
    demo::write_credentials(&data_dir, &creds)?;
    print_demo(&creds, &data_dir, &world.sim.control_url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    let _ = customers.await;
    running.shutdown().await?;
    world.sim.shutdown().await;
    Ok(())
}

#[cfg(feature = "demo")]
fn print_demo(creds: &demo::DemoCredentials, dir: &std::path::Path, phones: &str) {
    say(&format!(
        "\nSwitchboard demo is running.\n\n  URL:      {}\n  Username: {}\n  Password: {}\n\nThe built-in Telegram simulator's phones (write in as a customer): {}\n(also written to {}; press Ctrl-C to stop)\n",
        creds.url,
        creds.username,
        creds.password,
        phones,
        dir.join("demo.json").display()
    ));
}

#[expect(clippy::print_stdout, reason = "CLI output")]
fn say(text: &str) {
    println!("{text}");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
