//! The Switchboard binary's library half: configuration, wiring of store, services and web
//! layer into a running server, and the command-line actions (demo, migrate, admin).

pub mod app;
pub mod config;
pub mod demo;

pub use app::{Running, open_store, start};
pub use config::Config;
