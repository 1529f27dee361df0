//! The Switchboard binary's library half: configuration, wiring of store, services and web
//! layer into a running server, and the command-line actions (demo, migrate, admin).

pub mod app;
pub mod config;
pub mod demo;
pub mod maintenance;

pub use app::{Running, Stores, open_store, open_stores, start};
pub use config::Config;
