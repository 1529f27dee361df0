//! Returning-user web sign-in (start + verify with the service bot's code) on both backends:
//! latency p50/p99 of the two requests with 100 users signing in at once, and the MTProto
//! connections and calls made meanwhile (target in docs/architecture.md, "Targets": 0
//! connections, p99 < 20 ms).
//!
//! The real server (in process, on port 0) and tgsim; `auth.self_service = "open"` and the
//! server behind a trusted proxy (each user comes from an address of their own through
//! `X-Forwarded-For`, as behind a reverse proxy; every limit is the default). The users exist
//! and have bound the service bot (written through the store: how they got there is not what
//! is measured). Each round starts 100 users, arriving at 25 a second — under the Bot API's
//! 30 messages a second per bot, which the service bot must respect — so that all of them are
//! signing in at the same time; each user's start and verify requests are timed (not the time
//! the code takes to reach their Telegram, nor reading it).
//!
//! `cargo bench -p switchboard-tests --bench signin` (`BENCH_SIGNIN_USERS=N`,
//! `BENCH_SIGNIN_ROUNDS=N`; `CI=true` makes PostgreSQL mandatory).
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::BotId;
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::db::Backend;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct User {
    phone: String,
    tg: tgsim::UserInfo,
    ip: String,
}

async fn post(app: &TestApp, path: &str, ip: &str, body: &Value) -> (u16, Value, Duration) {
    let t = Instant::now();
    let r = app
        .http
        .post(app.at(path))
        .header("x-forwarded-for", ip)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v, t.elapsed())
}

async fn code_for(app: &TestApp, user: &User, bot: tgsim::UserId, seen: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let texts: Vec<String> = app
            .sim
            .received_messages(user.tg.id)
            .unwrap()
            .into_iter()
            .filter(|m| m.from == Some(bot))
            .map(|m| m.text)
            .collect();
        if texts.len() > seen
            && let Some(code) = texts[seen..].iter().rev().find_map(|t| {
                t.split(|c: char| !c.is_ascii_digit())
                    .find(|d| d.len() == 6)
                    .map(str::to_string)
            })
        {
            return code;
        }
        assert!(Instant::now() < deadline, "no code for {}", user.phone);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(backend: Backend) {
    let users_per_round = env("BENCH_SIGNIN_USERS", 100);
    let rounds = env("BENCH_SIGNIN_ROUNDS", 3);
    let Some(app) = TestApp::spawn(backend, |c| {
        c.auth.self_service = "open".into();
        c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    let app = Arc::new(app);
    let admin = app.login("admin", PASSWORD).await;
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "bench_signin_bot".into(),
            first_name: "Sign-in".into(),
            token: None,
        })
        .unwrap();
    let r = admin
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    let bot_id = BotId(
        r.json::<Value>().await.unwrap()["bot"]["id"]
            .as_i64()
            .unwrap(),
    );
    let r = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/auth/settings/service-bot",
            Some(&json!({"bot_id": bot_id.0})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let stores = app.stores().unwrap();
    let total = users_per_round * rounds;
    let mut users = Vec::with_capacity(total);
    for i in 0..total {
        let phone = format!("+1555{:07}", 1_000_000 + i);
        let tg = app
            .sim
            .create_user(tgsim::NewUser {
                phone: phone.clone(),
                first_name: format!("User {i}"),
                ..Default::default()
            })
            .unwrap();
        switchboard_tests::accounts::bound_signin_user(&stores, &tg, &phone, bot_id).await;
        users.push(Arc::new(User {
            phone,
            tg,
            ip: format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256),
        }));
    }
    let before = app.sim.counters();
    let opened_before = app
        .running
        .accounts
        .supervisor()
        .settings()
        .sessions_opened
        .get();
    let mut start_ms = Vec::new();
    let mut verify_ms = Vec::new();
    let mut both_ms = Vec::new();
    let started = Instant::now();
    for round in users.chunks(users_per_round) {
        let mut tasks = Vec::new();
        for (n, user) in round.iter().enumerate() {
            let app = Arc::clone(&app);
            let user = Arc::clone(user);
            let bot = bot.id;
            tasks.push(tokio::spawn(async move {
                // Arrivals at 25 a second.
                tokio::time::sleep(Duration::from_millis(40 * n as u64)).await;
                let seen = app
                    .sim
                    .received_messages(user.tg.id)
                    .unwrap()
                    .iter()
                    .filter(|m| m.from == Some(bot))
                    .count();
                let (s, v, start) = post(
                    &app,
                    "/api/v1/auth/start",
                    &user.ip,
                    &json!({"phone": user.phone}),
                )
                .await;
                assert_eq!((s, v["status"].as_str()), (200, Some("code_sent")), "{v}");
                let code = code_for(&app, &user, bot, seen).await;
                let (s, v, verify) = post(
                    &app,
                    "/api/v1/auth/verify",
                    &user.ip,
                    &json!({"phone": user.phone, "code": code}),
                )
                .await;
                assert_eq!((s, v["status"].as_str()), (200, Some("signed_in")), "{v}");
                (start, verify)
            }));
        }
        for t in tasks {
            let (s, v) = t.await.unwrap();
            start_ms.push(s.as_secs_f64() * 1000.0);
            verify_ms.push(v.as_secs_f64() * 1000.0);
            both_ms.push((s + v).as_secs_f64() * 1000.0);
        }
        // The next round's users are others: wait out nothing, the limits are per phone.
    }
    let elapsed = started.elapsed();
    let after = app.sim.counters();
    let opened_after = app
        .running
        .accounts
        .supervisor()
        .settings()
        .sessions_opened
        .get();
    let calls =
        |c: &tgsim::Counters| -> u64 { c.accounts.values().flat_map(|a| a.calls.values()).sum() };
    for v in [&mut start_ms, &mut verify_ms, &mut both_ms] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "signin [{}]: {} sign-ins ({} rounds of {} users at 25/s) in {:.1} s",
        app.store.backend(),
        both_ms.len(),
        rounds,
        users_per_round,
        elapsed.as_secs_f64()
    );
    for (name, v) in [
        ("start", &start_ms),
        ("verify", &verify_ms),
        ("start+verify", &both_ms),
    ] {
        println!(
            "  {name:<13} p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            percentile(v, 0.50),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "  MTProto during the sign-ins: {} connections opened, {} calls; sessions decrypted: {}",
        after.connections_total - before.connections_total,
        calls(&after) - calls(&before),
        opened_after - opened_before
    );
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}

fn main() {
    let rt = switchboard_tests::db::bench_runtime();
    for backend in Backend::ALL {
        rt.block_on(run(backend));
    }
}
