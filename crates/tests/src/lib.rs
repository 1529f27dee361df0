//! Switchboard's test support: fresh databases on both backends ([`db`]), the real server
//! ([`app`]), account helpers ([`accounts`]), a real headless browser ([`browser`]) and session
//! files holding tgsim's keys ([`sessions`]). The suites that use it live in `tests/`.

pub mod accounts;
pub mod app;
pub mod browser;
pub mod db;
pub mod live;
pub mod sessions;
