//! The one worker model seen from outside, on both backends: an account worker that fails is
//! `backing_off` in `GET /api/v1/system/status` and recovers; `/readyz` turns unready (and says
//! which worker) when a required worker fails; operators get neither the status nor the
//! Settings page's System section; and in headless Chromium an admin sees the workers and an
//! account's health on Settings and restarts the clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use switchboard_tests::accounts::{import_session, telethon_string, wait_for, wait_status};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::Chrome;
use switchboard_tests::sessions::sim_account;

app_tests!(
    a_failing_account_worker_backs_off_then_recovers,
    readyz_turns_unready_while_a_required_worker_fails,
    stopping_an_account_or_a_bot_stops_its_worker,
    operators_see_no_system_section_and_cannot_restart,
    settings_shows_the_system_to_admins_in_a_browser,
);

/// The account's entry in the system status.
async fn account_entry(b: &switchboard_tests::app::Browser, id: i64) -> Value {
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Telegram answers the account's first `users.getUsers` calls (the worker's sign-in check)
/// with an internal error after a restart: the worker backs off (with the time of its next
/// attempt and the error code), is restarted, and runs again once Telegram answers.
async fn a_failing_account_worker_backs_off_then_recovers(app: &TestApp) {
    let owner = sim_account(app, "+15558101", "Olga");
    let b = app.login("admin", PASSWORD).await;
    let id = import_session(&b, &telethon_string(&app.sim, owner.key)).await;
    wait_status(&b, id, "connected").await;
    let entry = account_entry(&b, id).await;
    assert_eq!(entry["worker"]["state"], "running", "{entry}");
    assert_eq!(entry["worker"]["name"], format!("account:{id}"));
    assert_eq!(entry["worker"]["kind"], "account");

    app.sim
        .rpc_error(Some(owner.user.id), "users.getUsers", 500, "INTERNAL", 2);
    let r = b
        .post(
            "/api/v1/system/control",
            &json!({"action": "restart_clients"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let backing_off = wait_for("the worker to back off", || async {
        let e = account_entry(&b, id).await;
        (e["worker"]["state"] == "backing_off").then_some(e)
    })
    .await;
    let w = &backing_off["worker"];
    assert!(w["next_attempt_at"].as_i64().unwrap() > 0, "{backing_off}");
    let error = w["last_error"].as_str().unwrap();
    assert!(!error.is_empty() && error.len() < 64, "a code: {error}");
    assert_eq!(backing_off["running"], true, "backing off still counts");

    let recovered = wait_for("the worker to run again", || async {
        let e = account_entry(&b, id).await;
        (e["worker"]["state"] == "running" && e["status"] == "connected").then_some(e)
    })
    .await;
    assert_eq!(recovered["worker"]["restarts"], 2, "{recovered}");
    assert!(recovered["worker"]["next_attempt_at"].is_null());
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    assert_eq!(status["ready"], true, "accounts are not required: {status}");
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["kind"], "system", "only server-wide workers: {w}");
    }
}

/// A required worker that keeps failing makes `/readyz` answer 503 and name it (with its
/// error, no more); once it is stopped the server is ready again.
async fn readyz_turns_unready_while_a_required_worker_fails(app: &TestApp) {
    let ready = app.http.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.running.workers.spawn("failing_probe", |_cancel| async {
        Err("probe_failed".into())
    });
    let body = wait_for("/readyz to turn unready", || async {
        let r = app.http.get(app.at("/readyz")).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], true);
    assert_eq!(body["workers"], false);
    let failing = body["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{body}");
    assert_eq!(failing[0]["name"], "failing_probe");
    assert_eq!(failing[0]["last_error"], "probe_failed");
    assert!(
        ["backing_off", "starting", "running"].contains(&failing[0]["state"].as_str().unwrap())
    );
    let b = app.login("admin", PASSWORD).await;
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    assert_eq!(status["ready"], false);
    let probe = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "failing_probe")
        .cloned()
        .unwrap();
    assert_eq!(probe["required"], true);

    app.running.workers.stop("failing_probe").await;
    let r = app.http.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The bot's entry in the system status.
async fn bot_entry(b: &switchboard_tests::app::Browser, id: i64) -> Value {
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    status["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["bot_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Accounts and bots each have a worker while they run, shown with their health; stopping one
/// stops its worker, which leaves the status.
async fn stopping_an_account_or_a_bot_stops_its_worker(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "status_bot".into(),
            first_name: "Shop".into(),
            token: None,
        })
        .unwrap();
    let r = b
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let bot_id = r.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    let entry = wait_for("the bot's worker to run", || async {
        let e = bot_entry(&b, bot_id).await;
        (e["worker"]["state"] == "running" && e["status"] == "connected").then_some(e)
    })
    .await;
    assert_eq!(entry["worker"]["name"], format!("bot:{bot_id}"));
    assert_eq!(entry["worker"]["required"], false);
    assert_eq!(entry["running"], true);
    assert!(!entry.to_string().contains(&bot.token.clone().unwrap()));

    let owner = sim_account(app, "+15558111", "Oleg");
    let id = import_session(&b, &telethon_string(&app.sim, owner.key)).await;
    wait_status(&b, id, "connected").await;
    assert_eq!(account_entry(&b, id).await["running"], true);

    let r = b
        .post(&format!("/api/v1/bots/{bot_id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let entry = bot_entry(&b, bot_id).await;
    assert!(entry["worker"].is_null(), "{entry}");
    assert_eq!(entry["running"], false);
    assert_eq!(entry["status"], "stopped");

    let r = b
        .post(&format!("/api/v1/accounts/{id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let entry = account_entry(&b, id).await;
    assert!(entry["worker"].is_null(), "{entry}");
    assert_eq!(entry["running"], false);
    assert_eq!(entry["status"], "stopped");
}

/// Operators: no System section on Settings, 403 from the status and the control action.
async fn operators_see_no_system_section_and_cannot_restart(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let page = admin.get("/settings").await.text().await.unwrap();
    assert!(page.contains(r#"id="system""#), "admins see it");
    assert!(page.contains("outbox"), "with the workers");

    let op = app.login("operator", PASSWORD).await;
    let page = op.get("/settings").await.text().await.unwrap();
    assert!(
        page.contains(r#"id="lang-select""#),
        "the language is there"
    );
    assert!(!page.contains(r#"id="system""#), "no System section");
    assert!(!page.contains("restart-clients"));
    let r = op.get("/api/v1/system/status").await;
    assert_eq!(r.status(), 403);
    let r = op
        .post(
            "/api/v1/system/control",
            &json!({"action": "restart_clients"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
}

/// An admin opens Settings: the server-wide workers run, the connected account shows its
/// health and its worker; pressing "Restart account clients" says how many were restarted,
/// and pressing it again at once says to wait (the 30 s limit), in the page's language.
async fn settings_shows_the_system_to_admins_in_a_browser(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let dana = sim_account(app, "+15558201", "Dana");
    let b = app.login("admin", PASSWORD).await;
    let id = import_session(&b, &telethon_string(&app.sim, dana.key)).await;
    wait_status(&b, id, "connected").await;
    wait_for("the account worker to run", || async {
        let e = account_entry(&b, id).await;
        (e["worker"]["state"] == "running").then_some(e)
    })
    .await;

    c.sign_in("admin", PASSWORD).await;
    c.open("/settings").await;
    c.wait_text("#system h2", "System").await;
    c.wait_text(
        r#"#system-workers tr[data-worker="outbox"] .badge[data-state=running]"#,
        "running",
    )
    .await;
    c.wait_text(
        r#"#system-workers tr[data-worker="read_receipts"] .badge"#,
        "running",
    )
    .await;
    let row = format!(r#"#system-accounts tr[data-account="{id}"]"#);
    c.wait_text(&row, "Dana").await;
    c.wait_text(
        &format!("{row} .health .badge[data-status=connected]"),
        "connected",
    )
    .await;
    c.wait_text(
        &format!("{row} .state .badge[data-state=running]"),
        "running",
    )
    .await;
    c.wait_text("#system-ready[data-ready=true]", "Ready").await;

    c.click("#restart-clients").await;
    c.wait_text("#restart-result.ok", "Clients restarted: 1.")
        .await;
    wait_status(&b, id, "connected").await;
    c.click("#restart-clients").await;
    let text = c.wait_text("#restart-result.error", "Too many").await;
    assert!(text.contains(" s)"), "with the wait: {text}");
    // The page refreshes itself: the account is connected again after the restart.
    c.wait_text(
        &format!("{row} .health .badge[data-status=connected]"),
        "connected",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.quit().await;
}
