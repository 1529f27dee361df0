//! Switchboard's test support: fresh databases on both backends ([`db`]), the real server
//! ([`app`]), account helpers ([`accounts`]), a real headless browser ([`browser`]), session
//! files holding tgsim's keys ([`sessions`]), log capture ([`logs`]) and a SOCKS5 proxy that
//! counts what it carries ([`socks`]). The suites that use it live in `tests/`.

pub mod accounts;
pub mod app;
pub mod browser;
pub mod db;
pub mod live;
pub mod logs;
pub mod sessions;
pub mod socks;

/// A local TCP port that was free a moment ago (for a child process to listen on).
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free local port: {e}"),
    }
}
