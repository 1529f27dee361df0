//! Switchboard's test support: fresh databases on both backends ([`db`]). The suites that use
//! it live in `tests/`.

pub mod app;
pub mod db;
pub mod live;
