//! Lead latency end to end on both backends: posts arrive in 200 monitored channels at 100 a
//! second; for each post a lead task matches, the time from the simulator accepting the post
//! to the lead being stored (its `lead_found` frame on an owner's WebSocket) and to the lead's
//! message appearing in the reading account's Saved Messages in the simulator (p50, p95, max).
//! Target (docs/architecture.md, "Targets"): post → lead delivered p95 < 2 s.
//!
//! The setup is what a user does, minus typing: 200 tgsim channels exist with a tgsim user as
//! a member, the user is connected as a personal account (Telethon session import), and two
//! tasks — `(rust | golang) вакансия` and `kotlin developer` — watch all 200, named by username
//! (the monitor finds them in the account's dialogs, no `contacts.resolveUsername`),
//! delivering instantly to Saved Messages. They are created through the `LeadStore` (the tasks
//! API is not what is measured), then the monitor is told that tasks changed, as the API does.
//! The bench waits until every source is joined; from then on their posts reach the monitor
//! through the account's update stream only (no source is polled).
//!
//! One post in 250 matches a task (a lead every 2.5 s): a personal account sends at most one
//! message every 2 s (the delivery pacing, Telegram's tolerance for accounts), so a faster
//! stream of leads queues by design and its latency measures the pacing, not the monitor. The
//! other posts are matched and dropped, as most posts are. Every post is a different text
//! (random words), so no copy-paste deduplication hides one.
//!
//! Everything (tgsim, the server, the measuring client) runs in this one process on a
//! 2-thread runtime, as in the inbox bench. Run with `CI=true cargo bench -p switchboard-tests
//! --bench leads`; `LEADS_BENCH_SECS` (default 60) sets the seconds of posting,
//! `LEADS_BENCH_RATE` (default 100) the posts per second, `LEADS_BENCH_SOURCES` (default 200)
//! the channels, `LEADS_BENCH_MATCH_EVERY` (default 250) how many posts per matching one.
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
use switchboard_domain::{
    AccountId, DeliveryMode, DeliveryTarget, Role, SourceRef, SourceState, TaskSpec, Timestamp,
    Username, Viewer,
};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::db::Backend;
use switchboard_tests::live::{Ws, connect_user, open_ws, wait_frame};
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: a fixed, dependency-free generator for the post texts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ба", "ве", "ги", "до", "жу", "за", "ки", "ло", "ма", "не", "по", "ру", "са", "ти", "фо", "ха",
    "ша", "ла", "ка", "та", "ra", "te", "lo", "mi", "su", "ne", "pa", "do", "ki", "ze",
];

/// A post of about 40 random words, with `tag` (a word of its own, to find it again) after
/// `lead` (the words that make it match a task, or nothing).
fn post_text(rng: &mut Rng, lead: &str, tag: &str) -> String {
    let mut words = vec![lead.to_string(), tag.to_string()];
    for _ in 0..40 {
        let n = 2 + rng.below(3);
        words.push(
            (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect(),
        );
    }
    words.join(" ").trim().to_string()
}

/// The matching words of post `i`: one in `every` matches a task, alternately the first and
/// the second, in Russian and in English.
fn lead_words(i: usize, every: usize) -> &'static str {
    if !i.is_multiple_of(every) {
        ""
    } else if (i / every).is_multiple_of(2) {
        "Вакансия: Rust-разработчик"
    } else {
        "Kotlin developer wanted"
    }
}

/// The tag word of post `i` of a run.
fn tag(run: &str, i: usize) -> String {
    format!("{run}x{i:06}")
}

/// Arrival times of `lead_found` frames, by the tag in the lead's text.
#[derive(Default)]
struct Seen {
    leads: HashMap<String, Instant>,
    duplicates: usize,
}

/// Reads frames until `expected` leads of this run arrived or nothing came for 30 s.
async fn read_leads(mut ws: Ws, run: String, expected: usize, seen: Arc<Mutex<Seen>>) -> Ws {
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
        if v["type"] != "lead_found" {
            continue;
        }
        let text = v["data"]["lead"]["text"].as_str().unwrap_or_default();
        let Some(found) = text.split_whitespace().find(|w| is_tag(w, &run)) else {
            continue;
        };
        let mut s = seen.lock().unwrap();
        if s.leads.insert(found.to_string(), at).is_some() {
            s.duplicates += 1;
        }
        if s.leads.len() >= expected {
            return ws;
        }
    }
}

/// Whether `word` is a tag of `run` (see [`tag`]).
fn is_tag(word: &str, run: &str) -> bool {
    word.len() == run.len() + 7 && word.starts_with(run) && word[run.len()..].starts_with('x')
}

/// Polls the reading account's Saved Messages in tgsim (its control API, in process) every
/// 10 ms and stamps the first sight of each tag of this run, with the most messages it was
/// seen in at once, until `expected` were seen and nothing new came for 1 s, or nothing new
/// came for 30 s.
fn watch_saved(
    sim: tgsim::Handle,
    owner: tgsim::UserId,
    run: String,
    expected: usize,
) -> HashMap<String, (Instant, usize)> {
    let mut seen: HashMap<String, (Instant, usize)> = HashMap::new();
    let mut last_new = Instant::now();
    loop {
        let quiet = last_new.elapsed();
        if quiet > Duration::from_secs(30)
            || (seen.len() >= expected && quiet > Duration::from_secs(1))
        {
            return seen;
        }
        let now = Instant::now();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for m in sim.messages(owner).unwrap_or_default() {
            if m.peer != tgsim::Peer::User(owner) {
                continue;
            }
            for word in m.text.split(|c: char| !c.is_alphanumeric()) {
                if is_tag(word, &run) {
                    *counts.entry(word.to_string()).or_insert(0) += 1;
                }
            }
        }
        for (word, count) in counts {
            let entry = seen.entry(word).or_insert_with(|| {
                last_new = now;
                (now, 0)
            });
            entry.1 = entry.1.max(count);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(label: &str, mut lat: Vec<Duration>, expected: usize) -> String {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    format!(
        "{label}: p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} of {expected})",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.95)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len(),
    )
}

async fn bench(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, |_| {}).await else {
        println!("{}: skipped (no server)", backend.name());
        return;
    };
    let name = backend.name();
    let sources = env_or("LEADS_BENCH_SOURCES", 200);
    let rate = env_or("LEADS_BENCH_RATE", 100);
    let secs = env_or("LEADS_BENCH_SECS", 60);
    let every = env_or("LEADS_BENCH_MATCH_EVERY", 250).max(1);
    let admin = app.login("admin", PASSWORD).await;
    // The monitored channels exist, with the account as a member, before it connects (as
    // channels someone wants to monitor usually do): they are in its dialogs from the start.
    let owner = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15559700001".into(),
            first_name: "Reader".into(),
            ..Default::default()
        })
        .unwrap();
    let mut channels = Vec::with_capacity(sources);
    for i in 0..sources {
        let info = app
            .sim
            .create_channel(tgsim::NewChannel {
                title: format!("Bench jobs {i:03}"),
                username: Some(format!("bench_jobs_{i:03}")),
                about: "Vacancies".into(),
                members: vec![owner.id],
                ..Default::default()
            })
            .unwrap();
        let tgsim::Peer::Channel(id) = info.peer else {
            panic!("not a channel")
        };
        channels.push(id);
    }
    let account = AccountId(connect_user(&app, &admin, &owner).await);

    // The tasks, through the lead store, as the tasks API creates them.
    let leads = app.running.monitor.store();
    let admin_id = app
        .store
        .find_credentials(&Username::parse("admin").unwrap())
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    let viewer = Viewer {
        workspace: app.workspace,
        user: admin_id,
        role: Role::Owner,
    };
    // By username: the monitor finds them in the account's dialogs (one `messages.getDialogs`),
    // without `contacts.resolveUsername`, which Telegram allows only a few dozen times a minute.
    let refs: Vec<SourceRef> = (0..sources)
        .map(|i| SourceRef::parse(&format!("@bench_jobs_{i:03}")).unwrap())
        .collect();
    let mut task_ids = Vec::new();
    for (task_name, query) in [
        ("Rust or Go", "(rust | golang) вакансия"),
        ("Kotlin", "kotlin developer"),
    ] {
        let spec = TaskSpec {
            name: task_name.into(),
            query: query.into(),
            account,
            target: DeliveryTarget::SavedMessages,
            mode: DeliveryMode::Instant,
            instant_cap_per_minute: 600,
            ignore_forwards: false,
            join_allowed: false,
            leave_unused: false,
        };
        let task = leads
            .create_task(&viewer, &spec, Timestamp::now())
            .await
            .unwrap();
        leads
            .set_task_sources(&viewer, task.id, &refs, Timestamp::now())
            .await
            .unwrap();
        task_ids.push(task.id);
    }
    app.running.monitor.tasks_changed(Some(account));
    let ready_since = Instant::now();
    let mut states = HashMap::new();
    loop {
        states.clear();
        for source in leads.task_sources(&viewer, task_ids[0]).await.unwrap() {
            let state = match &source.failure {
                Some(why) => format!("{:?} ({why})", source.state),
                None => format!("{:?}", source.state),
            };
            *states.entry(state).or_insert(0usize) += 1;
        }
        let joined = states
            .get(&format!("{:?}", SourceState::Joined))
            .copied()
            .unwrap_or(0);
        if joined == sources || ready_since.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{name:<10} {sources} sources, 2 tasks; source states after {:.1} s: {states:?}",
        ready_since.elapsed().as_secs_f64()
    );

    let mut ws = open_ws(&app, &admin, None).await.unwrap();
    wait_frame(&mut ws, "initial_chats", 5, |_| true).await;

    // Warm-up (the first posts of each channel, the delivery path), then the measured run.
    for (run, rate, secs) in [("warm", 20, 2), ("lb", rate, secs)] {
        let total = rate * secs;
        let expected = (0..total)
            .filter(|&i| !lead_words(i, every).is_empty())
            .count();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = tokio::spawn(read_leads(ws, run.to_string(), expected, Arc::clone(&seen)));
        let saved = tokio::task::spawn_blocking({
            let (sim, run) = (app.sim.clone(), run.to_string());
            move || watch_saved(sim, owner.id, run, expected)
        });
        let sim = app.sim.clone();
        let channel_ids = channels.clone();
        let run_name = run.to_string();
        // Posts on a fixed schedule (post i at i / rate), round robin over the channels; each
        // stamped when tgsim accepted it.
        let sent = tokio::task::spawn_blocking(move || {
            let mut rng = Rng(0x1EAD_5EED);
            let mut stamps = HashMap::with_capacity(total);
            let start = Instant::now();
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let t = tag(&run_name, i);
                let text = post_text(&mut rng, lead_words(i, every), &t);
                sim.post_to_channel(
                    channel_ids[i % channel_ids.len()],
                    tgsim::OutgoingMessage::text(text),
                )
                .unwrap();
                if !lead_words(i, every).is_empty() {
                    stamps.insert(t, Instant::now());
                }
            }
            (stamps, start.elapsed())
        })
        .await
        .unwrap();
        let (stamps, posting) = sent;
        ws = reader.await.unwrap();
        let delivered = saved.await.unwrap();
        let s = seen.lock().unwrap();
        let stored: Vec<Duration> = stamps
            .iter()
            .filter_map(|(t, at)| s.leads.get(t).map(|got| got.saturating_duration_since(*at)))
            .collect();
        let saved_lat: Vec<Duration> = stamps
            .iter()
            .filter_map(|(t, at)| {
                delivered
                    .get(t)
                    .map(|(got, _)| got.saturating_duration_since(*at))
            })
            .collect();
        let doubled = delivered.values().filter(|(_, n)| *n > 1).count();
        if run == "warm" {
            println!(
                "{name:<10} warm-up: {} of {expected} leads stored, {} delivered",
                stored.len(),
                saved_lat.len()
            );
            continue;
        }
        println!(
            "{name:<10} {total} posts at {rate}/s over {sources} sources in {:.1} s, {expected} matching (one in {every})",
            posting.as_secs_f64()
        );
        println!(
            "{name:<10}   {} (duplicate frames {})",
            summary("post → lead stored   ", stored, expected),
            s.duplicates
        );
        println!(
            "{name:<10}   {} (delivered twice {doubled})",
            summary("post → lead delivered", saved_lat, expected),
        );
    }
    app.stop().await;
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
