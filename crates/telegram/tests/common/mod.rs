//! Test harness: an in-process tgsim world, settings pointing every DC at it, and (for tests
//! that persist) a fresh SQLite store in a temp directory with a fresh vault keyring.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use switchboard_telegram::TelegramSettings;

pub const API_ID: i32 = 12345;
pub const API_HASH: &str = "0123456789abcdef0123456789abcdef";

/// A tgsim world held for the duration of one test.
pub struct Sim {
    handle: tgsim::Handle,
}

impl std::ops::Deref for Sim {
    type Target = tgsim::Handle;
    fn deref(&self) -> &tgsim::Handle {
        &self.handle
    }
}

impl Sim {
    /// Stops the world, but never waits more than 5 s (a hang here must not hang the suite).
    pub async fn shutdown(&self) {
        if tokio::time::timeout(Duration::from_secs(5), self.handle.shutdown())
            .await
            .is_err()
        {
            eprintln!("tgsim did not shut down within 5 s");
        }
    }
}

pub async fn sim() -> Sim {
    Sim {
        handle: tgsim::start(tgsim::Config::default()).await.unwrap(),
    }
}

pub fn settings(sim: &tgsim::Handle) -> TelegramSettings {
    TelegramSettings::simulator(
        API_ID,
        API_HASH,
        sim.mtproto_addr(),
        sim.control_url(),
        std::sync::Arc::new(Detached),
    )
}

/// Runs a client's tasks straight on the test's runtime (these tests have no supervisor).
pub struct Detached;

impl switchboard_telegram::Spawn for Detached {
    #[allow(clippy::disallowed_methods, reason = "tests have no supervisor")]
    fn spawn(
        &self,
        _name: &'static str,
        task: switchboard_telegram::Task,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(task)
    }
}

pub fn user(
    sim: &tgsim::Handle,
    phone: &str,
    name: &str,
    password: Option<&str>,
) -> tgsim::UserInfo {
    sim.create_user(tgsim::NewUser {
        phone: phone.into(),
        first_name: name.into(),
        password: password.map(str::to_string),
        password_hint: password.map(|_| "the usual".to_string()),
        ..Default::default()
    })
    .unwrap()
}

/// Waits until tgsim has no open MTProto connection (clients closed theirs).
pub async fn wait_all_closed(sim: &tgsim::Handle) {
    for _ in 0..100 {
        if sim.counters().connections_open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("connections still open: {:?}", sim.counters());
}
