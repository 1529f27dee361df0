//! The inbox end to end on both backends: tgsim customers write to connected personal accounts
//! while an operator's WebSocket is open.
//!
//! * Throughput: a burst of 20,000 messages from 20 customers, first all to one account, then
//!   spread over four; the time until all are stored (counted in the database) and until all
//!   `new_message` frames reached the WebSocket, as messages per second, with a check that
//!   none is lost or duplicated, and the CPU this process and PostgreSQL used meanwhile.
//! * Latency: 100 and 1,000 messages a second (spread over the four accounts) for 10 s each;
//!   the time from the simulator accepting a message to its frame arriving on the WebSocket
//!   (p50, p99, max).
//!
//! Everything (tgsim, the server, the client) runs in this one process on a 2-thread runtime.
//! Run with `cargo bench -p switchboard-tests --bench inbox`; `INBOX_BENCH_BURST` and
//! `INBOX_BENCH_SECS` shrink it for a quick pass.
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::db::{Backend, Stores};
use switchboard_tests::live::{Ws, connect_personal_account, open_ws, wait_frame};
use tokio_tungstenite::tungstenite::Message;

const CUSTOMERS: usize = 20;
/// Personal accounts connected; the throughput is measured into one of them, then into all.
const ACCOUNTS: usize = 4;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time in a `/proc/<pid>/stat` line, with the process's command name
/// (Linux; clock ticks are 1/100 s).
fn cpu_in_stat(stat: &str) -> Option<(&str, Duration)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    // After the command name: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
    Some((&stat[open + 1..close], Duration::from_millis(ticks * 10)))
}

/// CPU used so far by this process (tgsim, the server and the measuring client) and by the
/// PostgreSQL server's processes (zero where `/proc` is missing).
fn cpu_now() -> (Duration, Duration) {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let own = cpu_in_stat(&read("/proc/self/stat".into())).map_or(Duration::ZERO, |c| c.1);
    let mut postgres = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some((comm, cpu)) = cpu_in_stat(&read(entry.path().join("stat")))
            && comm == "postgres"
        {
            postgres += cpu;
        }
    }
    (own, postgres)
}

/// What the WebSocket reader saw: arrival time of each inbound message's text.
#[derive(Default)]
struct Seen {
    arrivals: HashMap<String, Instant>,
    duplicates: usize,
    resyncs: usize,
}

/// Reads frames until `expected` inbound `new_message` frames with texts starting with
/// `prefix` arrived or nothing came for 30 s.
async fn read_frames(mut ws: Ws, prefix: String, expected: usize, seen: Arc<Mutex<Seen>>) -> Ws {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        let Ok(Some(Ok(Message::Text(t)))) = next else {
            match next {
                Ok(Some(Ok(_))) => continue,
                _ => return ws,
            }
        };
        let at = Instant::now();
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        let mut s = seen.lock().unwrap();
        if v["type"] == "resync_required" {
            s.resyncs += 1;
        }
        if v["type"] != "new_message" {
            continue;
        }
        let Some(text) = v["data"]["message"]["text"].as_str() else {
            continue;
        };
        if !text.starts_with(&prefix) {
            continue;
        }
        if s.arrivals.insert(text.to_string(), at).is_some() {
            s.duplicates += 1;
        }
        if s.arrivals.len() >= expected {
            return ws;
        }
    }
}

async fn stored(stores: &Stores, prefix: &str) -> (i64, i64) {
    let total = stores
        .scalar(&format!(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND text LIKE '{prefix}%'"
        ))
        .await;
    let distinct = stores
        .scalar(&format!(
            "SELECT count(DISTINCT text) FROM messages WHERE direction = 'in' AND text LIKE '{prefix}%'"
        ))
        .await;
    (total, distinct)
}

struct World {
    app: TestApp,
    /// The connected personal accounts' tgsim users.
    owners: Vec<tgsim::UserId>,
    customers: Vec<tgsim::UserInfo>,
    ws: Option<Ws>,
    stores: Stores,
    backend: &'static str,
}

async fn throughput(w: &mut World, burst: usize, accounts: usize) {
    let prefix = format!("burst{accounts} ");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ws = w.ws.take().unwrap();
    let reader = tokio::spawn(read_frames(ws, prefix.clone(), burst, Arc::clone(&seen)));
    // Rows after this id are the burst's (the warm-up is stored already); counting them by the
    // key keeps the polling cheap, the full check by text runs once at the end.
    let base = w
        .stores
        .scalar("SELECT coalesce(max(id), 0) FROM messages")
        .await;
    let cpu_before = cpu_now();
    let start = Instant::now();
    let sim = w.app.sim.clone();
    let (owners, customers) = (w.owners[..accounts].to_vec(), w.customers.clone());
    let text_prefix = prefix.clone();
    let sending = tokio::task::spawn_blocking(move || {
        for i in 0..burst {
            let c = &customers[i % customers.len()];
            sim.send_message(
                c.id,
                tgsim::Peer::User(owners[i % owners.len()]),
                tgsim::OutgoingMessage::text(format!("{text_prefix}{i:06} from {}", c.first_name)),
            )
            .unwrap();
        }
        start.elapsed()
    });
    // Count what is stored until everything is (or nothing moves for 30 s).
    let mut last = (0, Instant::now());
    let stored_at = loop {
        let n = w
            .stores
            .scalar(&format!(
                "SELECT count(*) FROM messages WHERE id > {base} AND direction = 'in'"
            ))
            .await;
        if n as usize >= burst {
            break Some((start.elapsed(), cpu_now()));
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let sent_in = sending.await.unwrap();
    w.ws = Some(reader.await.unwrap());
    let (total, distinct) = stored(&w.stores, &prefix).await;
    let s = seen.lock().unwrap();
    let pushed_at = s.arrivals.values().max().map(|t| t.duration_since(start));
    let backend = w.backend;
    println!(
        "{backend:<8} burst {burst} msgs from {CUSTOMERS} customers to {accounts} account(s): sent by tgsim in {:.2} s",
        sent_in.as_secs_f64()
    );
    match stored_at {
        Some((t, cpu_after)) => {
            println!(
                "{backend:<8}   stored  {burst} in {:>6.2} s = {:>8.0} msg/s (rows {total}, distinct {distinct})",
                t.as_secs_f64(),
                burst as f64 / t.as_secs_f64()
            );
            let own = (cpu_after.0 - cpu_before.0).as_secs_f64();
            let pg = (cpu_after.1 - cpu_before.1).as_secs_f64();
            println!(
                "{backend:<8}   cpu     {own:.2} s in this process + {pg:.2} s in PostgreSQL = {:.2} of 2 cores busy",
                (own + pg) / t.as_secs_f64()
            );
        }
        None => println!("{backend:<8}   stored  only {total} of {burst}: LOST"),
    }
    match pushed_at {
        Some(t) if s.arrivals.len() == burst => println!(
            "{backend:<8}   pushed  {burst} in {:>6.2} s = {:>8.0} msg/s (duplicate frames {}, resyncs {})",
            t.as_secs_f64(),
            burst as f64 / t.as_secs_f64(),
            s.duplicates,
            s.resyncs
        ),
        _ => println!(
            "{backend:<8}   pushed  only {} of {burst} frames (resyncs {}): LOST",
            s.arrivals.len(),
            s.resyncs
        ),
    }
    assert_eq!(total as usize, burst, "every message stored once");
    assert_eq!(distinct as usize, burst, "no message stored twice");
    assert_eq!(s.arrivals.len(), burst, "every message pushed");
    assert_eq!(s.duplicates, 0, "no message pushed twice");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(w: &mut World, label: &str, rate: usize, secs: usize) {
    let total = rate * secs;
    let prefix = format!("{label} ");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ws = w.ws.take().unwrap();
    let reader = tokio::spawn(read_frames(ws, prefix.clone(), total, Arc::clone(&seen)));
    let sim = w.app.sim.clone();
    let (owners, customers) = (w.owners.clone(), w.customers.clone());
    let send_prefix = prefix.clone();
    // Sends on a fixed schedule (message i at i / rate), in ticks of 1 ms, and stamps each.
    let sends = tokio::task::spawn_blocking(move || {
        let mut stamps = HashMap::with_capacity(total);
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let c = &customers[i % customers.len()];
            let text = format!("{send_prefix}{i:06}");
            sim.send_message(
                c.id,
                tgsim::Peer::User(owners[i % owners.len()]),
                tgsim::OutgoingMessage::text(text.clone()),
            )
            .unwrap();
            stamps.insert(text, Instant::now());
        }
        stamps
    })
    .await
    .unwrap();
    w.ws = Some(reader.await.unwrap());
    let s = seen.lock().unwrap();
    let mut lat: Vec<Duration> = sends
        .iter()
        .filter_map(|(text, sent)| {
            s.arrivals
                .get(text)
                .map(|got| got.saturating_duration_since(*sent))
        })
        .collect();
    lat.sort();
    let backend = w.backend;
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    println!(
        "{backend:<8} {label:<8} latency at {rate:>5} msg/s for {secs} s: p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} of {total} arrived, resyncs {})",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap()),
        lat.len(),
        s.resyncs
    );
    assert_eq!(lat.len(), total, "every message pushed");
}

async fn bench(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, |_| {}).await else {
        println!("{}: skipped (no server)", backend.name());
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let mut owners = Vec::new();
    for i in 0..ACCOUNTS {
        let phone = format!("+1555900{i:04}");
        let (owner, _) = connect_personal_account(&app, &admin, &phone, &format!("Owner{i}")).await;
        owners.push(owner.id);
    }
    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        customers.push(
            app.sim
                .create_user(tgsim::NewUser {
                    phone: format!("+1555800{i:04}"),
                    first_name: format!("Customer{i}"),
                    ..Default::default()
                })
                .unwrap(),
        );
    }
    let op = app.login("operator", PASSWORD).await;
    let mut ws = open_ws(&app, &op, None).await.unwrap();
    wait_frame(&mut ws, "initial_chats", 5, |_| true).await;
    let stores = app.stores().unwrap();
    let mut w = World {
        app,
        owners,
        customers,
        ws: Some(ws),
        stores,
        backend: backend.name(),
    };
    // Warm-up: every customer's chat exists before measuring.
    latency(&mut w, "warm-up", 100, 1).await;
    let burst = env_or("INBOX_BENCH_BURST", 20_000);
    throughput(&mut w, burst, 1).await;
    throughput(&mut w, burst, ACCOUNTS).await;
    let secs = env_or("INBOX_BENCH_SECS", 10);
    for rate in [100, 1_000] {
        latency(&mut w, &format!("rate{rate}"), rate, secs).await;
    }
    w.app.stop().await;
}

fn main() {
    // `RUST_LOG=info` (or finer) shows what the server logs while it is measured.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    switchboard_tests::db::bench_runtime().block_on(async {
        for backend in Backend::ALL {
            bench(backend).await;
        }
    });
}
