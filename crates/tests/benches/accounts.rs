//! Idle accounts at scale, on both backends: resident memory per connected idle account with
//! 1,000 accounts on tgsim, and the time to bring them all up after a restart (target in
//! docs/architecture.md, "Targets": ≤ 1 MiB per account).
//!
//! tgsim runs as its own process (`target/release/tgsim`, or `TGSIM_BIN`), so its memory is
//! not counted. The bench process creates the tgsim users and their registered auth keys through
//! tgsim's control API, imports them as Telethon strings (each validated with one connection,
//! as `POST /api/v1/accounts/import` does), and stops. A fresh child process — the server
//! coming back after a restart — then measures: resident memory (`VmRSS`) before the server
//! starts, the time until every account is `connected`, memory once they are idle, and finally
//! the time of an in-process restart (`restart_clients`: stop every client, start them again).
//!
//! `cargo build --release -p tgsim && cargo bench -p switchboard-tests --bench accounts`
//! (`BENCH_ACCOUNTS=N` changes the count; `CI=true` makes PostgreSQL mandatory).
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::Config;
use switchboard_domain::{Role, Timestamp};
use switchboard_services::{NewMember, Secret};
use switchboard_sessions::{AuthKey, ExportParams};
use switchboard_tests::db::{Backend, TestDb};
use switchboard_tests::free_port;

/// How long accounts are left alone before their memory is read.
const SETTLE: Duration = Duration::from_secs(10);
/// Imports running at once during set-up.
const IMPORT_PARALLELISM: usize = 16;

fn accounts_wanted() -> usize {
    std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// Resident memory of a process, in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The simulator as a separate process.
struct Sim {
    child: Child,
    mtproto: SocketAddr,
    control: String,
}

impl Sim {
    fn start() -> Sim {
        let bin = std::env::var_os("TGSIM_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                // target/<profile>/deps/accounts-… → target/<profile>/tgsim
                let exe = std::env::current_exe().unwrap();
                exe.parent().unwrap().parent().unwrap().join("tgsim")
            });
        assert!(
            bin.exists(),
            "{} not found: run `cargo build --release -p tgsim` first (or set TGSIM_BIN)",
            bin.display()
        );
        let mtproto: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let control = format!("127.0.0.1:{}", free_port());
        let bot_api = format!("127.0.0.1:{}", free_port());
        let child = Command::new(&bin)
            .args(["--mtproto", &mtproto.to_string(), "--bot-api", &bot_api])
            .args(["--control", &control])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Sim {
            child,
            mtproto,
            control: format!("http://{control}"),
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let start = Instant::now();
        while http
            .get(format!("{}/api/users", self.control))
            .send()
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "tgsim did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, http: &reqwest::Client, path: &str, body: Value) -> Value {
        let res = http
            .post(format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(&self.child.id().to_string())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn config(db_url: &str, data_dir: &Path, mtproto: SocketAddr, control: &str) -> Config {
    let mut config = Config::default();
    config.database.url = Some(Secret::new(db_url));
    config.data_dir = data_dir.to_path_buf();
    config.telegram.api_id = Some(12345);
    config.telegram.api_hash = Some(Secret::new("0123456789abcdef0123456789abcdef"));
    config.telegram.dc_override = Some(mtproto.to_string());
    config.telegram.sim_control_url = Some(control.to_string());
    config.log.level = "warn".into();
    config
}

/// Creates `n` tgsim users with registered keys and imports them; returns when all are stored.
async fn set_up(config: &Config, sim: &Sim, n: usize) {
    let http = reqwest::Client::new();
    sim.wait_ready(&http).await;
    let stores = switchboard::app::open_stores(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = switchboard::app::start_with(config, stores, listener)
        .await
        .unwrap();
    let ws = running
        .store
        .create_workspace("Bench", Timestamp::now())
        .await
        .unwrap()
        .id;
    let (owner, _) = running
        .auth
        .create_member(
            ws,
            NewMember {
                username: "owner",
                display_name: None,
                password: "correct horse battery staple",
                role: Role::Owner,
                max_chats: 5,
            },
            None,
        )
        .await
        .unwrap();
    let started = Instant::now();
    let accounts = Arc::clone(&running.accounts);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let user = sim
            .post(
                &http,
                "/api/users",
                json!({"phone": format!("+1666{i:07}"), "first_name": format!("Idle {i}")}),
            )
            .await;
        let key = sim.post(&http, "/api/auth_keys", json!({})).await;
        let key_hex = key["auth_key"].as_str().unwrap().to_string();
        sim.post(
            &http,
            "/api/auth_keys/register",
            json!({"user_id": user["id"], "auth_key": key_hex}),
        )
        .await;
        let key: [u8; 256] = unhex(&key_hex).try_into().unwrap();
        let string = switchboard_sessions::telethon::export_string(&ExportParams {
            dc_id: 2,
            server_addr: Some(sim.mtproto),
            auth_key: &AuthKey::new(key),
            user_id: None,
            is_bot: None,
            api_id: None,
            test_mode: false,
        })
        .unwrap();
        let session = switchboard_sessions::telethon::parse_string(string.expose()).unwrap();
        let accounts = Arc::clone(&accounts);
        if tasks.len() >= IMPORT_PARALLELISM {
            tasks.join_next().await.unwrap().unwrap();
        }
        tasks.spawn(async move {
            let imported = accounts.import(ws, owner.id, &session).await.unwrap();
            assert!(imported.account.active, "{:?}", imported.account.status);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    println!(
        "  set-up: {n} tgsim users, keys and imports in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    running.shutdown().await.unwrap();
}

/// Waits until `n` accounts are connected; the time it took.
async fn until_connected(running: &switchboard::app::Running, n: usize, since: Instant) -> f64 {
    loop {
        let workers = running.accounts.supervisor().account_workers();
        let connected = workers
            .iter()
            .filter(|w| w.worker.state == switchboard_services::WorkerState::Running)
            .count();
        if connected >= n {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            since.elapsed() < Duration::from_secs(600),
            "only {connected} of {n} connected after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The measured side, run in a fresh process: the server after a restart.
async fn measure(config: &Config, n: usize) -> Value {
    let stores = switchboard::app::open_stores(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib("self");
    let started = Instant::now();
    let running = switchboard::app::start_with(config, stores, listener)
        .await
        .unwrap();
    let up = until_connected(&running, n, started).await;
    let at_up = rss_kib("self");
    tokio::time::sleep(SETTLE).await;
    let idle = rss_kib("self");
    let restart = Instant::now();
    running.accounts.supervisor().restart_all().await.unwrap();
    let again = until_connected(&running, n, restart).await;
    running.shutdown().await.unwrap();
    json!({
        "rss_before_kib": before, "rss_connected_kib": at_up, "rss_idle_kib": idle,
        "bring_up_s": up, "restart_clients_s": again,
    })
}

async fn bench(backend: Backend, n: usize) {
    let Some(db) = TestDb::fresh(backend).await else {
        println!("{}: skipped (no server)", backend.name());
        return;
    };
    let sim = Sim::start();
    let data_dir = tempfile::tempdir().unwrap();
    let config = config(db.url(), data_dir.path(), sim.mtproto, &sim.control);
    println!("{} ({n} accounts):", backend.name());
    set_up(&config, &sim, n).await;

    let out = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_PHASE", "measure")
        .env("BENCH_DB_URL", db.url())
        .env("BENCH_DATA_DIR", data_dir.path())
        .env("BENCH_MTPROTO", sim.mtproto.to_string())
        .env("BENCH_CONTROL", &sim.control)
        .env("BENCH_ACCOUNTS", n.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "the measuring process failed");
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kib = |k: &str| m[k].as_u64().unwrap();
    let per_account = |k: &str| (kib(k) - kib("rss_before_kib")) as f64 / n as f64;
    println!(
        "  restart (fresh process): all {n} connected in {:.2} s",
        m["bring_up_s"].as_f64().unwrap()
    );
    println!(
        "  RSS: {} MiB before start, {} MiB when all connected, {} MiB after {} s idle",
        kib("rss_before_kib") / 1024,
        kib("rss_connected_kib") / 1024,
        kib("rss_idle_kib") / 1024,
        SETTLE.as_secs()
    );
    println!(
        "  per connected idle account: {:.0} KiB (at bring-up {:.0} KiB); tgsim process {} MiB",
        per_account("rss_idle_kib"),
        per_account("rss_connected_kib"),
        sim.rss_kib() / 1024
    );
    println!(
        "  restart_clients (in process): all {n} connected again in {:.2} s",
        m["restart_clients_s"].as_f64().unwrap()
    );
    drop(sim);
    db.drop_db().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = accounts_wanted();
    if std::env::var("BENCH_PHASE").as_deref() == Ok("measure") {
        let var = |k: &str| std::env::var(k).unwrap();
        let config = config(
            &var("BENCH_DB_URL"),
            Path::new(&var("BENCH_DATA_DIR")),
            var("BENCH_MTPROTO").parse().unwrap(),
            &var("BENCH_CONTROL"),
        );
        let figures = rt.block_on(measure(&config, n));
        println!("{figures}");
        return;
    }
    rt.block_on(async {
        bench(Backend::Sqlite, n).await;
        bench(Backend::Postgres, n).await;
    });
}
