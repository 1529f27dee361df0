//! The sign-in limits under fire, through the real server over HTTP on both backends: parallel
//! guesses are held to the per-username lock and the per-address limit (counted by the
//! server's own Argon2 counter), spoofed proxy headers change nothing, a trusted proxy's do,
//! IPv6 clients share a limit per /64, a flood is audited once, and old audit events are
//! purged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::future::join_all;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;
use switchboard::Config;
use switchboard_domain::{NewAuditEvent, Timestamp};
use switchboard_tests::app::{PASSWORD, TestApp, error_code};
use switchboard_tests::live::eventually;
use switchboard_tests::{app_tests, restarting_app_tests};

app_tests!(
    parallel_wrong_passwords_are_held_to_the_lock,
    spoofed_forwarding_headers_do_not_dodge_the_address_limit,
    a_trusted_proxy_names_the_client with behind_a_proxy,
);

/// The server sits behind a reverse proxy on the same machine.
fn behind_a_proxy(c: &mut Config) {
    c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// A client whose connections come from `local` (any 127.0.0.0/8 address is this machine).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// One sign-in attempt; returns the HTTP status and the error code (`""` on success).
async fn attempt(
    app: &TestApp,
    http: &reqwest::Client,
    username: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = http
        .post(app.at("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        (status, String::new())
    } else {
        (status, error_code(r).await)
    }
}

/// The server's count of Argon2 password verifications, read from `/metrics`.
async fn password_checks(app: &TestApp) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_auth_password_checks_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no password check counter in /metrics:\n{text}"))
}

async fn throttle_records(app: &TestApp) -> i64 {
    app.stores()
        .unwrap()
        .scalar("SELECT count(*) FROM audit_events WHERE action = 'auth.login_throttled'")
        .await
}

/// One failed sign-in whose proxy header (`name: value`) names the client.
async fn behind_proxy_as(name: &str, value: &str, app: &TestApp) -> (u16, String) {
    attempt(app, &app.http, "nobody", "x", &[(name, value)]).await
}

fn count(answers: &[(u16, String)], code: &str) -> usize {
    answers.iter().filter(|(_, c)| c == code).count()
}

async fn parallel_wrong_passwords_are_held_to_the_lock(app: &TestApp) {
    let lock_after = usize::try_from(app.config.auth.lock_after).unwrap();
    let before = password_checks(app).await;
    let answers = join_all((0..40).map(|i| async move {
        let guess = format!("guess number {i}");
        attempt(app, &app.http, "admin", &guess, &[]).await
    }))
    .await;
    let checks = password_checks(app).await - before;
    let invalid = count(&answers, "invalid_credentials");
    let locked = count(&answers, "account_locked");
    let limited = count(&answers, "rate_limited");
    assert!(
        checks <= lock_after as u64 && invalid <= lock_after,
        "{checks} passwords checked, {invalid} answered invalid_credentials: {answers:?}"
    );
    assert_eq!(invalid + locked + limited, 40, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, c)| c == "invalid_credentials" || *s == 429),
        "{answers:?}"
    );
    // The address took 20 (`auth.ip_max_failures`), the rest were throttled — and the flood
    // left one audit record, not one per refused attempt.
    assert_eq!(limited, 40 - app.config.auth.ip_max_failures, "{answers:?}");
    assert_eq!(throttle_records(app).await, 1);

    // While locked, even the right password is refused (from another address, so that only
    // the lock is in the way) — and not checked.
    let before = password_checks(app).await;
    let elsewhere = client_from("127.0.0.2");
    let (status, code) = attempt(app, &elsewhere, "admin", PASSWORD, &[]).await;
    assert_eq!((status, code.as_str()), (429, "account_locked"));
    assert_eq!(password_checks(app).await, before);
    // Another user signs in from there.
    let (status, _) = attempt(app, &elsewhere, "operator", PASSWORD, &[]).await;
    assert_eq!(status, 200);
}

async fn spoofed_forwarding_headers_do_not_dodge_the_address_limit(app: &TestApp) {
    // No trusted proxy (the default): each request claims another client, in vain.
    let limit = app.config.auth.ip_max_failures;
    let answers = join_all((0..30).map(|i| async move {
        let xff = format!("198.51.100.{i}");
        let fwd = format!("for=203.0.113.{i}");
        attempt(
            app,
            &app.http,
            &format!("ghost{i}"),
            "not the password",
            &[
                ("x-forwarded-for", xff.as_str()),
                ("forwarded", fwd.as_str()),
            ],
        )
        .await
    }))
    .await;
    assert_eq!(count(&answers, "invalid_credentials"), limit, "{answers:?}");
    assert_eq!(count(&answers, "rate_limited"), 30 - limit, "{answers:?}");
    // The audit names the real peer.
    let failed = app
        .store
        .list_audit_for_target("username:ghost0", 5)
        .await
        .unwrap();
    assert!(
        failed.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")),
        "{failed:?}"
    );
}

async fn a_trusted_proxy_names_the_client(app: &TestApp) {
    let limit = app.config.auth.ip_max_failures;
    let fail_from = |header: &'static str, client: String, n: usize| async move {
        join_all((0..n).map(|i| {
            let client = client.clone();
            async move {
                attempt(
                    app,
                    &app.http,
                    &format!("nobody{i}"),
                    "not the password",
                    &[(header, client.as_str())],
                )
                .await
            }
        }))
        .await
    };

    // The proxy reports the client in X-Forwarded-For: the limit is that client's...
    let answers = fail_from("x-forwarded-for", "198.51.100.7".into(), limit + 5).await;
    assert_eq!(count(&answers, "rate_limited"), 5, "{answers:?}");
    let (_, code) = behind_proxy_as("forwarded", "for=198.51.100.7;proto=https", app).await;
    assert_eq!(code, "rate_limited", "Forwarded names the same client");
    // ... not the proxy's: another client behind it is not limited.
    let (status, code) = behind_proxy_as("x-forwarded-for", "198.51.100.8", app).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    let failed = app
        .store
        .list_audit_for_target("username:nobody0", 5)
        .await
        .unwrap();
    assert_eq!(failed[0].ip.as_deref(), Some("198.51.100.7"));

    // An untrusted peer's header is ignored: 127.0.0.3 is limited as itself.
    let outsider = client_from("127.0.0.3");
    let answers = join_all((0..limit + 1).map(|i| {
        let outsider = outsider.clone();
        async move {
            let xff = format!("192.0.2.{i}");
            attempt(
                app,
                &outsider,
                "nobody",
                "x",
                &[("x-forwarded-for", xff.as_str())],
            )
            .await
        }
    }))
    .await;
    assert_eq!(count(&answers, "rate_limited"), 1, "{answers:?}");

    // IPv6 clients share one limit per /64.
    let answers = fail_from("x-forwarded-for", "2001:db8:1:2::1".into(), limit).await;
    assert_eq!(count(&answers, "invalid_credentials"), limit, "{answers:?}");
    let (_, code) = behind_proxy_as("forwarded", "for=\"[2001:db8:1:2:ffff::9]:443\"", app).await;
    assert_eq!(code, "rate_limited", "same /64");
    let (_, code) = behind_proxy_as("x-forwarded-for", "2001:db8:1:3::1", app).await;
    assert_eq!(code, "invalid_credentials", "another /64");

    // Three clients were throttled, each audited once however many attempts it made.
    assert_eq!(throttle_records(app).await, 3);
}

/// Events older than `audit.retention_days` (default 180) are deleted when the server
/// starts (and hourly after); younger ones stay.
async fn old_audit_events_are_purged_at_start(app: TestApp) -> TestApp {
    assert_eq!(
        app.config.audit.retention_days, 180,
        "the default retention"
    );
    let retention = Duration::from_secs(180 * 86_400);
    let day = Duration::from_secs(86_400);
    for (action, age) in [
        ("test.too_old", retention + day),
        ("test.recent", retention - day),
    ] {
        app.store
            .append_audit(&NewAuditEvent {
                workspace_id: Some(app.workspace),
                actor_user_id: None,
                action: action.to_string(),
                target: None,
                ip: None,
                details: json!({}),
                created_at: Timestamp::now().minus(age),
            })
            .await
            .unwrap();
    }
    let app = app.restart().await;
    let actions = eventually(20, "the old event to be purged", || async {
        let events = app.store.list_audit(app.workspace, None, 100).await.ok()?;
        let actions: Vec<String> = events.into_iter().map(|e| e.action).collect();
        (!actions.iter().any(|a| a == "test.too_old")).then_some(actions)
    })
    .await;
    assert!(actions.iter().any(|a| a == "test.recent"), "{actions:?}");
    app
}

restarting_app_tests!(old_audit_events_are_purged_at_start);
