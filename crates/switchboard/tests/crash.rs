//! Crash safety of the real binary on both backends: `switchboard serve` is killed with
//! SIGKILL in the middle of a 10,000-message burst, and again in the middle of sending 50
//! replies; after a restart on the same database every inbound message is stored exactly once
//! and every reply reached its customer exactly once and ended `sent`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_tests::db::{Backend, Stores, TestDb};
use switchboard_tests::free_port;

const BURST: usize = 10_000;
const CUSTOMERS: usize = 10;
const REPLIES: usize = 50;

/// The simulator, a database, a data dir, and the server process running on them.
struct Rig {
    sim: tgsim::Handle,
    db: TestDb,
    stores: Stores,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    url: String,
}

impl Rig {
    async fn new(backend: Backend) -> Option<Rig> {
        let db = TestDb::fresh(backend).await?;
        let stores = db.stores();
        let sim = tgsim::start(tgsim::Config::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("switchboard.toml");
        std::fs::write(
            &config,
            format!(
                "[telegram]\nsim_control_url = \"{}\"\ndc_override = \"{}\"\napi_id = 12345\n\
                 api_hash = \"0123456789abcdef0123456789abcdef\"\n",
                sim.control_url(),
                sim.mtproto_addr()
            ),
        )
        .unwrap();
        let rig = Rig {
            sim,
            db,
            stores,
            dir,
            config,
            child: None,
            url: String::new(),
        };
        let pw = rig.dir.path().join("pw");
        std::fs::write(&pw, "a long enough password\n").unwrap();
        let out = rig
            .command()
            .args([
                "admin",
                "create-user",
                "--username",
                "admin",
                "--role",
                "admin",
            ])
            .arg("--password-file")
            .arg(&pw)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(rig)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHBOARD_DATA_DIR", self.dir.path())
            .env("SWITCHBOARD_DATABASE_URL", self.db.url())
            .env("SWITCHBOARD_LOG", "warn")
            .arg("--config")
            .arg(&self.config);
        c
    }

    /// Starts `switchboard serve` and waits until it answers.
    async fn start(&mut self) {
        let port = free_port();
        let child = self
            .command()
            .arg("serve")
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while reqwest::get(format!("{}/login", self.url)).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then waits for the process to be gone.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        self.stores.scalar(sql).await
    }

    async fn finish(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.sim.shutdown().await;
        self.db.drop_db().await;
    }
}

/// A signed-in API client (cookie and CSRF token).
struct Api {
    http: reqwest::Client,
    url: String,
    cookie: String,
    csrf: String,
}

impl Api {
    async fn login(url: &str) -> Api {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "a long enough password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
            .collect::<Vec<_>>()
            .join("; ");
        let me: Value = res.json().await.unwrap();
        Api {
            http,
            url: url.to_string(),
            cookie,
            csrf: me["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects a tgsim user as a personal account by importing a Telethon session.
async fn connect_account(rig: &Rig, api: &Api) -> tgsim::UserInfo {
    let owner = rig
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15557000000".into(),
            first_name: "Owner".into(),
            ..Default::default()
        })
        .unwrap();
    let key = rig.sim.issue_auth_key();
    rig.sim.register_auth_key(owner.id, key).unwrap();
    let session = switchboard_tests::accounts::telethon_string(&rig.sim, key);
    let (status, body) = api
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": session}),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "import failed: {status} {body}"
    );
    eventually(30, "the account to connect", async || {
        let list = api.get("/api/v1/accounts").await;
        list["accounts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["status"] == "connected"))
    })
    .await;
    owner
}

fn customers(rig: &Rig, n: usize) -> Vec<tgsim::UserInfo> {
    (0..n)
        .map(|i| {
            rig.sim
                .create_user(tgsim::NewUser {
                    phone: format!("+1555710{i:04}"),
                    first_name: format!("Customer{i}"),
                    ..Default::default()
                })
                .unwrap()
        })
        .collect()
}

const STORED: &str = "SELECT count(*) FROM messages WHERE direction = 'in' AND text LIKE 'burst %'";
const DISTINCT: &str =
    "SELECT count(DISTINCT text) FROM messages WHERE direction = 'in' AND text LIKE 'burst %'";

async fn kill_during_a_burst(backend: Backend) {
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    rig.start().await;
    let api = Api::login(&rig.url).await;
    let owner = connect_account(&rig, &api).await;
    let customers = customers(&rig, CUSTOMERS);
    let sim = rig.sim.clone();
    let sending = std::thread::spawn(move || {
        for i in 0..BURST {
            let c = &customers[i % customers.len()];
            sim.send_message(
                c.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text(format!("burst {i:05}")),
            )
            .unwrap();
        }
    });
    // Kill once some, but not all, of the burst is stored.
    eventually(30, "a quarter of the burst to be stored", async || {
        rig.count(STORED).await as usize >= BURST / 4
    })
    .await;
    rig.kill();
    sending.join().unwrap();
    let after_kill = rig.count(STORED).await;
    assert!(
        (after_kill as usize) < BURST,
        "the kill came too late to prove anything ({after_kill} stored)"
    );
    eprintln!(
        "{}: killed with {after_kill} of {BURST} stored",
        backend.name()
    );

    rig.start().await;
    let mut stored = 0;
    let deadline = Instant::now() + Duration::from_secs(45);
    while stored < BURST {
        assert!(
            Instant::now() < deadline,
            "only {stored} of {BURST} stored 45 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        stored = rig.count(STORED).await as usize;
    }
    // Anything re-fetched twice would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rig.count(STORED).await as usize,
        BURST,
        "stored exactly once"
    );
    assert_eq!(rig.count(DISTINCT).await as usize, BURST, "no message lost");
    rig.finish().await;
}

fn received_replies(rig: &Rig, customer: &tgsim::UserInfo, owner: &tgsim::UserInfo) -> usize {
    rig.sim
        .received_messages(customer.id)
        .unwrap()
        .iter()
        .filter(|m| m.from == Some(owner.id) && m.text.starts_with("reply "))
        .count()
}

async fn kill_while_sending_replies(backend: Backend) {
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    rig.start().await;
    let api = Api::login(&rig.url).await;
    let owner = connect_account(&rig, &api).await;
    let customers = customers(&rig, REPLIES);
    for c in &customers {
        rig.sim
            .send_message(
                c.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text("hello"),
            )
            .unwrap();
    }
    let chat_ids = |list: &Value| -> Vec<i64> {
        list["chats"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    eventually(30, "every customer's chat", async || {
        chat_ids(&api.get("/api/v1/chats?limit=200").await).len() == REPLIES
    })
    .await;
    let chats = chat_ids(&api.get("/api/v1/chats?limit=200").await);
    // Slow answers from Telegram so that sends are in flight when the server dies.
    rig.sim
        .set_latency(Some(owner.id), Duration::from_millis(150));
    for (i, chat) in chats.iter().enumerate() {
        let (status, body) = api
            .post(
                &format!("/api/v1/chats/{chat}/messages"),
                &json!({"text": format!("reply {i:02}")}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let delivered = |rig: &Rig| -> usize {
        customers
            .iter()
            .map(|c| received_replies(rig, c, &owner))
            .sum()
    };
    eventually(30, "the first replies to leave", async || {
        delivered(&rig) >= REPLIES / 5
    })
    .await;
    rig.kill();
    let at_kill = delivered(&rig);
    assert!(
        at_kill < REPLIES,
        "the kill came too late to prove anything ({at_kill} delivered)"
    );
    eprintln!(
        "{}: killed with {at_kill} of {REPLIES} replies delivered",
        backend.name()
    );

    rig.start().await;
    eventually(45, "every reply to end sent", async || {
        rig.count("SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'sent'")
            .await as usize
            == REPLIES
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &customers {
        assert_eq!(
            received_replies(&rig, c, &owner),
            1,
            "customer {} got their reply exactly once",
            c.first_name
        );
    }
    assert_eq!(
        rig.count("SELECT count(*) FROM messages WHERE direction = 'out'")
            .await as usize,
        REPLIES,
        "no reply stored twice (echoes are merged)"
    );
    rig.finish().await;
}

macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn sqlite() {
                    super::$name(switchboard_tests::db::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn postgres() {
                    super::$name(switchboard_tests::db::Backend::Postgres).await;
                }
            }
        )+
    };
}

on_both_backends!(kill_during_a_burst, kill_while_sending_replies);
