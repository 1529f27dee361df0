//! The Switchboard binary's library half: configuration, wiring of store, services and web
//! layer into a running server, and the command line and its actions (demo, migrate, admin, backup and restore, copy-db).

pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod copy_db;
pub mod data_lock;
pub mod demo;
pub mod instance;
pub mod maintenance;

pub use app::{Running, Stores, open_store, open_stores, start};
pub use config::Config;
