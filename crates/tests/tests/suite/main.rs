//! The cross-crate test suite as one test binary (one link instead of one per file). Each
//! module is one area; nextest names a test `suite <module>::<test>`, so
//! `cargo nextest run -p switchboard-tests -E 'test(/^inbox::/)'` runs one area.
//!
//! To add a file: put it in this directory and add its `mod` line below (keep the order).
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]

mod account_store_conformance;
mod accounts;
mod accounts_upload;
mod api_auth;
mod autoposting_publisher;
mod bots;
mod browser_accounts;
mod browser_guide;
mod browser_inbox_restart;
mod browser_schedule;
mod browser_signin;
mod browser_team;
mod catalogue;
mod copy_db;
mod guide;
mod inbox;
mod inbox_browser;
mod inbox_store_conformance;
mod key_rotation;
mod lead_delivery;
mod lead_store_conformance;
mod leads_api;
mod leads_browser;
mod live_updates;
mod media;
mod monitor_leads;
mod monitor_sources;
mod posts_api;
mod realtime;
mod schedule_store_conformance;
mod schema_parity;
mod sign_in_limits;
mod signin;
mod signin_store_conformance;
mod store_conformance;
mod store_setup;
mod stored_shapes;
mod system;
mod team;
mod telegram_proxy;
mod user_admin;
mod web_surface;
mod workspace_boundaries;
