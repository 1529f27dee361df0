//! Crash safety of the real binary on both backends: `switchboard serve` is killed with
//! SIGKILL in the middle of a 10,000-message burst, and again in the middle of sending 50
//! replies, and again while media downloads are in flight or failing; after a restart on the
//! same database every inbound message is stored exactly once, every reply reached its customer
//! exactly once and ended `sent`, and every file is stored once with Telegram's exact bytes.
//! A lead being delivered to the owner's Saved Messages when the server dies reaches them
//! exactly once after the restart, and posts made while it was down are found once each. A
//! scheduled post whose answer Telegram still holds when the server dies is published exactly
//! once, within seconds of the restart (the restarted server releases its own leases).

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
    child: Option<Server>,
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
                 api_hash = \"0123456789abcdef0123456789abcdef\"\nbot_api_url = \"{}\"\n",
                sim.control_url(),
                sim.mtproto_addr(),
                sim.bot_api_url()
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
            // `CRASH_TEST_LOG=debug` shows what the server did when a step times out.
            .env(
                "SWITCHBOARD_LOG",
                std::env::var("CRASH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
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
        self.child = Some(Server(child));
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
        child.0.kill().unwrap(); // SIGKILL on Unix
        child.0.wait().unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        self.stores.scalar(sql).await
    }

    async fn finish(mut self) {
        drop(self.child.take());
        self.sim.shutdown().await;
        self.db.drop_db().await;
    }
}

/// The server process; a test that fails mid-way does not leave it running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

const IN_FILES: &str =
    "SELECT count(*) FROM messages WHERE direction = 'in' AND text LIKE 'file %'";
const FETCHED: &str = "SELECT count(*) FROM messages WHERE direction = 'in' AND text LIKE 'file %' \
     AND CAST(media AS TEXT) LIKE '%\"file_id\"%'";

/// Bytes that are not all the same, so a wrong offset changes them.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut d = b"%PDF-1.7\n".to_vec();
    d.extend((0..len).map(|i| {
        (i as u64)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(u64::from(seed)) as u8
    }));
    d
}

/// Every file under `root` but its `tmp` directory, and the files left in `tmp`.
fn stored_files(root: &std::path::Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut stored, mut tmp) = (Vec::new(), Vec::new());
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.starts_with(root.join("tmp")) {
                tmp.push(path);
            } else {
                stored.push(path);
            }
        }
    }
    (stored, tmp)
}

/// Killed while an account's downloads are in flight (tgsim answers slowly) and a bot's fail
/// (tgsim answers 500), then started again with Telegram healthy: every file is fetched and
/// stored exactly once with the bytes Telegram holds, nothing half-written is left.
async fn kill_while_media_downloads_are_pending(backend: Backend) {
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    rig.start().await;
    let api = Api::login(&rig.url).await;
    let owner = connect_account(&rig, &api).await;
    let bot = rig
        .sim
        .create_bot(tgsim::NewBot {
            username: "files_bot".into(),
            first_name: "Files".into(),
            token: None,
        })
        .unwrap();
    let (status, body) = api
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    eventually(30, "the bot to connect", async || {
        api.get("/api/v1/bots").await["bots"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["status"] == "connected"))
    })
    .await;
    let customer = customers(&rig, 1).remove(0);

    // Each account file takes a few slow 512 KiB chunks; every bot download fails for now.
    rig.sim
        .set_latency(Some(owner.id), Duration::from_millis(150));
    rig.sim.rpc_error(
        Some(bot.id),
        "bot.getFile",
        500,
        "Internal Server Error",
        10_000,
    );
    let sent: Vec<(String, tgsim::UserId, Vec<u8>)> = (0..6u8)
        .map(|i| {
            let to = if i < 4 { owner.id } else { bot.id };
            (
                format!("file {i}"),
                to,
                pattern(1_200_000 + usize::from(i), i),
            )
        })
        .collect();
    for (text, to, data) in &sent {
        let m = tgsim::OutgoingMessage {
            text: text.clone(),
            media: Some(tgsim::MediaUpload {
                kind: tgsim::MediaKind::Document,
                data: data.clone(),
                file_name: Some(format!("{text}.pdf")),
                mime: Some("application/pdf".into()),
            }),
            ..Default::default()
        };
        rig.sim
            .send_message(customer.id, tgsim::Peer::User(*to), m)
            .unwrap();
    }
    eventually(60, "every message, and a first file stored", async || {
        rig.count(IN_FILES).await == 6 && rig.count(FETCHED).await >= 1
    })
    .await;
    rig.kill();
    let at_kill = rig.count(FETCHED).await;
    assert!(
        at_kill < 4,
        "the kill came too late to prove anything ({at_kill} of 6 files stored)"
    );
    eprintln!(
        "{}: killed with {at_kill} of 6 files stored",
        backend.name()
    );

    // Telegram is healthy again while the server is down.
    rig.sim.clear_faults();
    rig.start().await;
    eventually(60, "every file after the restart", async || {
        rig.count(FETCHED).await == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.count(IN_FILES).await, 6, "no message stored twice");

    // Each message names the file with its exact bytes, each file is stored once.
    let api = Api::login(&rig.url).await;
    let root = rig.dir.path().join("files");
    let chats = api.get("/api/v1/chats").await;
    let mut named = Vec::new();
    for chat in chats["chats"].as_array().unwrap() {
        let msgs = api
            .get(&format!("/api/v1/chats/{}/messages", chat["id"]))
            .await;
        for m in msgs["messages"].as_array().unwrap() {
            let Some(hex) = m["media"]["file_id"].as_str() else {
                continue;
            };
            let (_, _, data) = sent
                .iter()
                .find(|(text, _, _)| m["text"] == text.as_str())
                .unwrap_or_else(|| panic!("an unexpected message {m}"));
            let path = root.join(&hex[0..2]).join(&hex[2..4]).join(hex);
            assert_eq!(&std::fs::read(&path).unwrap(), data, "{}", m["text"]);
            named.push(path);
        }
    }
    assert_eq!(named.len(), 6);
    let (mut stored, tmp) = stored_files(&root);
    stored.sort();
    named.sort();
    assert_eq!(stored, named, "exactly the six files are stored, once each");
    assert!(tmp.is_empty(), "half-written files left: {tmp:?}");
    rig.finish().await;
}

/// The text of the post the publishing crash test schedules.
const POST_TEXT: &str = "Scheduled post, published once";

/// `switchboard serve` is killed while it publishes a scheduled post: Telegram has taken the
/// post, its answer is lost (and the retry is held back), the process dies before anything is
/// recorded. After a restart the run is taken again when its lease ends, resent with the same
/// `random_id`, refused by Telegram as a repeat and recorded as published: one post.
async fn kill_while_publishing(backend: Backend) {
    use switchboard_domain::{
        AccountId, FollowUps, PostContent, PostSender, PostSpec, PostTarget, Role, RunFilter,
        RunStatus, Schedule, Timestamp, UserId, Viewer, WorkspaceId,
    };
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    rig.start().await;
    let api = Api::login(&rig.url).await;
    let owner = connect_account(&rig, &api).await;
    let info = rig
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Crash ads".into(),
            username: Some("crash_ads".into()),
            ..Default::default()
        })
        .unwrap();
    let tgsim::Peer::Channel(channel) = info.peer else {
        panic!("not a channel")
    };
    let view = rig
        .sim
        .set_channel_admin(
            channel,
            owner.id,
            Some(tgsim::AdminRights {
                post_messages: true,
                ..Default::default()
            }),
        )
        .unwrap();
    let accounts = api.get("/api/v1/accounts").await;
    let account = AccountId(accounts["accounts"][0]["id"].as_i64().unwrap());
    let viewer = Viewer {
        workspace: WorkspaceId(rig.count("SELECT min(id) FROM workspaces").await),
        user: UserId(rig.count("SELECT min(id) FROM users").await),
        role: Role::Owner,
    };
    // Telegram takes the post but its answer is lost; every call then waits 4 s, so the
    // client's retry is still waiting when the process is killed.
    rig.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(owner.id),
        method: Some("messages.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    rig.sim.set_latency(Some(owner.id), Duration::from_secs(4));
    let spec = PostSpec {
        sender: PostSender::Account { account },
        target: PostTarget {
            peer_id: tgsim::Peer::Channel(channel).bot_api_id(),
            title: view.title.clone(),
            username: view.username.clone(),
            access_hash: Some(view.access_hash),
        },
        content: PostContent {
            text: POST_TEXT.into(),
            ..Default::default()
        },
        schedule: Schedule::Once {
            at: switchboard_tests::live::utc_in(2),
        },
        time_zone: "UTC".into(),
        grace_minutes: 15,
        draft: false,
        follow_ups: FollowUps::default(),
    };
    let post = rig
        .stores
        .schedule
        .create_post(&viewer, &spec, 0x5eed, Timestamp::now())
        .await
        .unwrap();
    let posted = |rig: &Rig| {
        rig.sim
            .channel_posts(channel)
            .unwrap()
            .into_iter()
            .filter(|m| m.text == POST_TEXT)
            .collect::<Vec<_>>()
    };
    eventually(30, "Telegram to take the post", async || {
        !posted(&rig).is_empty()
    })
    .await;
    rig.kill();
    let runs = |rig: &Rig| {
        let schedule = rig.stores.schedule.clone();
        async move {
            schedule
                .list_runs(
                    &viewer,
                    &RunFilter {
                        post: Some(post.id),
                        limit: 10,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    let left = runs(&rig).await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].status,
        RunStatus::Publishing,
        "killed in the middle of publishing"
    );
    rig.sim.clear_faults();
    rig.sim.set_latency(Some(owner.id), Duration::ZERO);
    let sends = |rig: &Rig| {
        rig.sim
            .account_counters(owner.id)
            .calls
            .get("messages.sendMessage")
            .copied()
            .unwrap_or(0)
    };
    let sent_before = sends(&rig);

    rig.start().await;
    // The restarted server (the same data directory, so the same instance id) releases the
    // lease its dead process held and takes the run up at once — long before the 2-minute
    // lease would have ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let list = runs(&rig).await;
        if list[0].status == RunStatus::Published {
            break list[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "not published within 30 s of the restart: {:?}",
            list[0]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let list = posted(&rig);
    assert_eq!(list.len(), 1, "posted exactly once");
    assert_eq!(run.message_ids, vec![i64::from(list[0].id)]);
    // It was sent again after the restart, with the same random_id: Telegram refused the
    // repeat (RANDOM_ID_DUPLICATE) and the run recorded the first send's post.
    // (More than 2 attempts when the account was not connected yet on the first one.)
    assert!(run.attempts >= 2, "{run:?}");
    assert!(sends(&rig) > sent_before, "resent after the restart");
    rig.finish().await;
}

/// The messages of `owner`'s Saved Messages in tgsim that contain `needle`.
fn in_saved_messages(rig: &Rig, owner: &tgsim::UserInfo, needle: &str) -> usize {
    rig.sim
        .messages(owner.id)
        .unwrap()
        .iter()
        .filter(|m| m.peer == tgsim::Peer::User(owner.id) && m.text.contains(needle))
        .count()
}

const LEADS: &str = "SELECT count(*) FROM leads";
const DELIVERIES_SENDING: &str = "SELECT count(*) FROM lead_deliveries WHERE state = 'sending'";

/// A lead's message is in the owner's Saved Messages, but Telegram's answer never came back
/// (tgsim loses it), so the delivery is still `sending` when the server is killed with SIGKILL;
/// more posts arrive while it is down. After the restart, every matching post is a lead once
/// and its message is in Saved Messages once: the interrupted delivery is resent with its
/// `random_id`, which Telegram refuses as a duplicate, and the posts made meanwhile are read by
/// the sources' sweep.
async fn kill_while_delivering_a_lead(backend: Backend) {
    let Some(mut rig) = Rig::new(backend).await else {
        return;
    };
    rig.start().await;
    let api = Api::login(&rig.url).await;
    let owner = connect_account(&rig, &api).await;
    let account = api.get("/api/v1/accounts").await["accounts"][0]["id"]
        .as_i64()
        .unwrap();
    let info = rig
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Jobs".into(),
            username: Some("jobs_kill".into()),
            members: vec![owner.id],
            ..Default::default()
        })
        .unwrap();
    let tgsim::Peer::Channel(channel) = info.peer else {
        panic!("not a channel: {:?}", info.peer)
    };
    let (status, body) = api
        .post(
            "/api/v1/tasks",
            &json!({"name": "Rust", "query": "rust -senior", "account_id": account,
                    "sources": [{"reference": "@jobs_kill"}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task = body["task"]["id"].as_i64().unwrap();
    eventually(60, "the source to be joined", async || {
        api.get(&format!("/api/v1/tasks/{task}/sources")).await["sources"][0]["state"] == "joined"
    })
    .await;
    let sim = rig.sim.clone();
    let post = |text: &str| {
        sim.post_to_channel(channel, tgsim::OutgoingMessage::text(text))
            .unwrap();
    };
    // A first lead goes through, so the channel's update state is saved past it.
    post("Rust developer, first");
    eventually(60, "the first lead delivered", async || {
        in_saved_messages(&rig, &owner, "Rust developer, first") == 1
    })
    .await;

    // The next send reaches Telegram, but its answer is lost.
    rig.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(owner.id),
        method: Some("messages.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    post("Rust developer, in flight");
    eventually(
        30,
        "the lead posted and its delivery still sending",
        async || {
            in_saved_messages(&rig, &owner, "Rust developer, in flight") == 1
                && rig.count(DELIVERIES_SENDING).await == 1
        },
    )
    .await;
    rig.kill();
    assert_eq!(
        rig.count(DELIVERIES_SENDING).await,
        1,
        "killed mid-delivery"
    );
    eprintln!("{}: killed with a lead delivery in flight", backend.name());

    // While the server is down: two matching posts, a minus word, and one that does not match.
    post("Rust developer, while down 1");
    post("Senior Rust developer, while down");
    post("Go developer, while down");
    post("Rust developer, while down 2");

    rig.start().await;
    let want = [
        "Rust developer, first",
        "Rust developer, in flight",
        "Rust developer, while down 1",
        "Rust developer, while down 2",
    ];
    eventually(60, "every lead delivered after the restart", async || {
        rig.count("SELECT count(*) FROM lead_deliveries WHERE state = 'sent'")
            .await
            == 4
            && want.iter().all(|w| in_saved_messages(&rig, &owner, w) >= 1)
    })
    .await;
    // Anything delivered or found twice would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for w in want {
        assert_eq!(in_saved_messages(&rig, &owner, w), 1, "{w} delivered once");
    }
    assert_eq!(in_saved_messages(&rig, &owner, "while down"), 2);
    assert_eq!(rig.count(LEADS).await, 4, "each matching post is one lead");
    assert_eq!(
        rig.count("SELECT count(*) FROM lead_deliveries").await,
        4,
        "one delivery per lead"
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

on_both_backends!(
    kill_during_a_burst,
    kill_while_sending_replies,
    kill_while_media_downloads_are_pending,
    kill_while_publishing,
    kill_while_delivering_a_lead,
);
