//! The `switchboard` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use switchboard::config::{Config, Loaded};
use switchboard::demo;
use switchboard_domain::Role;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One hub for many Telegram accounts and bots"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Run a ready-to-try server with an embedded database and print how to sign in.
    #[cfg(feature = "demo")]
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the demo keeps its database and files.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Telegram session files.
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// The master key that protects secrets at rest.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum SessionsAction {
    /// Import every `{phone}/{phone}.json` + `{phone}/{phone}.session` under DIR into the first
    /// workspace; each is validated with one connection.
    Import {
        /// The folder.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Generate a new master key, re-wrap every stored secret under it, drop the old key.
    /// Run while the server is stopped.
    Rotate,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration and print it with secrets redacted.
    Check,
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create a user in the first workspace (created if there is none).
    CreateUser {
        /// Sign-in name.
        #[arg(long)]
        username: String,
        /// File holding the password (first line).
        #[arg(long)]
        password_file: PathBuf,
        /// owner, admin or operator.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Chat capacity.
        #[arg(long, default_value_t = 10)]
        max_chats: i32,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let Loaded { config, warnings } = Config::load(cli.config.as_deref(), std::env::vars())?;
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
    let config = load(&cli)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
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
            let mut config = config;
            config.server.listen = listen;
            config.data_dir = data_dir.clone();
            let world = demo::start_world(&mut config).await?;
            let running = switchboard::start(&config).await?;
            let (username, password) = demo::prepare(&*running.store, &running.auth).await?;
            let ws = demo::first_workspace(&*running.store, "Demo").await?;
            demo::connect_owner(&running, &world, ws).await?;
            // Customers start writing once the account listens, so the first message is live.
            demo::wait_connected(&running, ws).await;
            demo::connect_bot(&running, ws).await?;
            demo::create_lead_task(&running, ws).await?;
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
        }
        Command::Sessions {
            action: SessionsAction::Import { dir },
        } => {
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
            action: KeysAction::Rotate,
        } => {
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
            let store = switchboard::open_store(&config).await?;
            say(&format!("{}: migrations applied", store.backend()));
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
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
