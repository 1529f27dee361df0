//! The command line's shape: every command, its arguments and its help text. `main.rs` runs
//! them; README.md's command table is checked against this (see `cli/readme_tests.rs`).

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

/// `switchboard [--config FILE] <command>`.
#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One hub for many Telegram accounts and bots"
)]
pub struct Cli {
    /// TOML configuration file (default: the file SWITCHBOARD_CONFIG names, else none).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Run a ready-to-try server with an embedded database and print how to sign in.
    ///
    /// Reads no configuration file and no SWITCHBOARD_* variable, and refuses a data
    /// directory that holds a real installation.
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
    /// Write a consistent backup of the database and the file store into DIR.
    ///
    /// DIR must be new or empty; a manifest.json describes the backup. The master key is not included: back it up on its own. The server
    /// may be running.
    Backup {
        /// The backup's directory.
        dir: PathBuf,
    },
    /// Restore the backup in DIR into an empty data directory and a new database.
    ///
    /// The master key it names must already be at master_key_file. Run while the server is
    /// stopped.
    Restore {
        /// The backup's directory.
        dir: PathBuf,
    },
    /// Configuration tools.
    Config {
        /// The action.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Administration.
    Admin {
        /// The action.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Telegram session files.
    Sessions {
        /// The action.
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// The master key that protects secrets at rest.
    Keys {
        /// The action.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Copy this SQLite installation into an empty PostgreSQL database.
    ///
    /// Run while the server is stopped. Every table is copied in one transaction, sealed
    /// secrets unchanged; then point database.url at the PostgreSQL database and keep data_dir
    /// (files, master key) as it is.
    CopyDb {
        /// The PostgreSQL database: postgres://user:password@host:port/database.
        #[arg(long, required_unless_present = "to_file", conflicts_with = "to_file")]
        to: Option<String>,
        /// A file holding that URL (its first line), to keep the password off the command line.
        #[arg(long)]
        to_file: Option<PathBuf>,
    },
}

/// `sessions …`.
#[derive(Subcommand)]
pub enum SessionsAction {
    /// Import every `{phone}/{phone}.json` + `{phone}/{phone}.session` under DIR into the first
    /// workspace; each is validated with one connection.
    Import {
        /// The folder.
        dir: PathBuf,
    },
}

/// `keys …`.
#[derive(Subcommand)]
pub enum KeysAction {
    /// Write a new master key to FILE, to keep it apart from the data directory.
    ///
    /// The file is readable by its owner only and never overwritten; point master_key_file at
    /// it.
    New {
        /// The key file to create.
        file: PathBuf,
    },
    /// Generate a new master key, re-wrap every stored secret under it, drop the old key.
    /// Run while the server is stopped.
    Rotate,
}

/// `config …`.
#[derive(Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and print it with secrets redacted.
    Check,
}

/// `admin …`.
#[derive(Subcommand)]
pub enum AdminAction {
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

/// What `--version` prints after the name: the release, and the newest database migration this
/// binary knows (a database migrated past it is refused; see docs/deploy.md, "Upgrading").
pub fn long_version() -> String {
    let newest = switchboard_store_sqlite::SqliteStore::migrations()
        .last()
        .map(|(v, d)| format!("{v} ({d})"))
        .unwrap_or_else(|| "none".to_string());
    format!(
        "{}\ndatabase schema: migration {newest}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The command line definition, with the long version filled in.
pub fn command() -> clap::Command {
    // clap keeps `'static` strings; this one is made once per process.
    let version: &'static str = Box::leak(long_version().into_boxed_str());
    Cli::command().long_version(version)
}

/// Parses the process's arguments (exits with clap's message on an error, `--help` or
/// `--version`).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod readme_tests;
