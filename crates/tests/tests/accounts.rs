//! Personal accounts end to end, through the real server and tgsim over MTProto, on both
//! backends: sign-in by code with 2FA, exactly one live client per account, ingestion, catching
//! up after being stopped, import (valid, revoked, malformed), export, and isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_domain::{Role, Timestamp};
use switchboard_tests::accounts::{
    account, import_session, messages_of, registered_user, telethon_string, wait_for, wait_status,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;

app_tests!(
    code_login_with_2fa_connects_one_client_and_ingests,
    messages_sent_while_stopped_arrive_exactly_once,
    import_validates_before_going_live,
    accounts_are_admin_only_and_isolated,
);

/// Signs `phone` in through the API (code, then 2FA if `password`), returns the account id.
async fn connect_by_code(app: &TestApp, b: &Browser, phone: &str, password: Option<&str>) -> i64 {
    let r = b
        .post("/api/v1/accounts/login/phone", &json!({"phone": phone}))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["status"], "code_sent");
    let flow = started["flow_id"].as_str().unwrap().to_string();
    let code = app
        .sim
        .last_login_code(phone)
        .expect("tgsim delivered a code");
    let r = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut step: Value = r.json().await.unwrap();
    if let Some(pw) = password {
        assert_eq!(step["status"], "password_needed");
        let r = b
            .post(
                &format!("/api/v1/accounts/login/{flow}/password"),
                &json!({"password": pw}),
            )
            .await;
        assert_eq!(r.status(), 200);
        step = r.json().await.unwrap();
    }
    assert_eq!(step["status"], "done", "{step}");
    step["account"]["id"].as_i64().unwrap()
}

fn open_connections(app: &TestApp, user: tgsim::UserId) -> u64 {
    app.sim
        .counters()
        .accounts
        .get(&user.0.to_string())
        .map(|c| c.open_connections)
        .unwrap_or(0)
}

async fn code_login_with_2fa_connects_one_client_and_ingests(app: &TestApp) {
    let owner = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551000".into(),
            first_name: "Ольга".into(),
            password: Some("s3cret-2fa".into()),
            password_hint: Some("usual".into()),
            ..Default::default()
        })
        .unwrap();
    let customer = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551001".into(),
            first_name: "Customer".into(),
            ..Default::default()
        })
        .unwrap();
    let b = app.login("admin", PASSWORD).await;

    // Wrong code, then wrong password, then right: every failure has its code.
    let started: Value = b
        .post(
            "/api/v1/accounts/login/phone",
            &json!({"phone": "+1 555 1000"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let flow = started["flow_id"].as_str().unwrap().to_string();
    let wrong = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": "00000"}),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(error_code(wrong).await, "phone_code_invalid");
    let code = app.sim.last_login_code("+15551000").unwrap();
    let step: Value = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(step["status"], "password_needed");
    assert_eq!(step["hint"], "usual");
    let bad = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "nope"}),
        )
        .await;
    assert_eq!(error_code(bad).await, "password_invalid");
    let done: Value = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "s3cret-2fa"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "done", "{done}");
    let id = done["account"]["id"].as_i64().unwrap();
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["first_name"], "Ольга");
    assert_eq!(a["telegram_user_id"], owner.id.0);
    // The finished flow is gone.
    let again = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(error_code(again).await, "login_flow_not_found");

    // Exactly one live client, however often it is started.
    let start_path = format!("/api/v1/accounts/{id}/start");
    let starts = (0..5).map(|_| b.send(Method::POST, &start_path, None, true));
    for r in futures_util::future::join_all(starts).await {
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        open_connections(app, owner.id),
        1,
        "one connection for one account"
    );

    // A customer writes; the message is stored and visible.
    app.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("Здравствуйте! Есть вопрос"),
        )
        .unwrap();
    let msgs = wait_for("the inbound message", || async {
        let m = messages_of(&b, id).await;
        (!m.is_empty()).then_some(Value::Array(m))
    })
    .await;
    assert_eq!(msgs[0]["text"], "Здравствуйте! Есть вопрос");
    assert_eq!(msgs[0]["direction"], "in");
    let chats: Value = b
        .get(&format!("/api/v1/accounts/{id}/chats"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chats["chats"][0]["title"], "Customer");
    assert_eq!(chats["chats"][0]["unread_count"], 1);

    // Still exactly one connection after ingesting (sealed-key storage is checked in crates/telegram/tests/store.rs).
    assert_eq!(open_connections(app, owner.id), 1);
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    let mine = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(mine["status"], "connected", "{status}");
    assert_eq!(mine["running"], true);
    assert!(mine["worker"]["ingested"].as_u64().unwrap() >= 1);

    // restart_clients: the client is replaced, never doubled.
    let r = b
        .post(
            "/api/v1/system/control",
            &json!({"action": "restart_clients"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    wait_status(&b, id, "connected").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        open_connections(app, owner.id),
        1,
        "still one connection after a restart"
    );
    let bad = b
        .post(
            "/api/v1/system/control",
            &json!({"action": "self_destruct"}),
        )
        .await;
    assert_eq!(bad.status(), 422);
}

async fn messages_sent_while_stopped_arrive_exactly_once(app: &TestApp) {
    let owner = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15552000".into(),
            first_name: "Owner".into(),
            ..Default::default()
        })
        .unwrap();
    let customer = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15552001".into(),
            first_name: "Client".into(),
            ..Default::default()
        })
        .unwrap();
    let b = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &b, "+15552000", None).await;
    wait_status(&b, id, "connected").await;
    app.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("before"),
        )
        .unwrap();
    wait_for("the first message", || async {
        (messages_of(&b, id).await.len() == 1).then_some(Value::Null)
    })
    .await;

    let r = b
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/stop"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(account(&b, id).await["status"], "stopped");
    assert_eq!(
        open_connections(app, owner.id),
        0,
        "stopping closes the connection"
    );
    for i in 0..100 {
        app.sim
            .send_message(
                customer.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text(format!("missed {i}")),
            )
            .unwrap();
    }
    let r = b
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/start"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let all = wait_for("the 100 missed messages", || async {
        let m = messages_of(&b, id).await;
        (m.len() >= 101).then_some(Value::Array(m))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all_again = messages_of(&b, id).await;
    assert_eq!(all_again.len(), 101, "nothing doubled");
    let mut texts: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 101);
    for i in 0..100 {
        assert!(
            texts.contains(&format!("missed {i}")),
            "missed {i} is missing"
        );
    }
}

async fn import_validates_before_going_live(app: &TestApp) {
    let (user, key) = registered_user(&app.sim, "+15553000", "Imported");
    let b = app.login("admin", PASSWORD).await;

    let r = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": "definitely not a session"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let code = error_code(r).await;
    assert!(code.starts_with("session_string_"), "{code}");
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(
        list["accounts"].as_array().unwrap().len(),
        0,
        "nothing stored for bad input"
    );

    let id = import_session(&b, &telethon_string(&app.sim, key)).await;
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["first_name"], "Imported");
    assert_eq!(
        open_connections(app, user.id),
        1,
        "validation closed its connection; one live client"
    );
    let dup = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, key)}),
        )
        .await;
    assert_eq!(dup.status(), 409);

    // Export is an audited admin action that yields a working string.
    let r = b
        .post(
            &format!("/api/v1/accounts/{id}/export"),
            &json!({"format": "telethon"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let exported: Value = r.json().await.unwrap();
    assert!(exported["session_string"].as_str().unwrap().len() > 300);
    let audit = app.store.list_audit(app.workspace, None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "account.session_exported"));
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains(exported["session_string"].as_str().unwrap())
    );

    // A key Telegram does not know ends unauthorized, and is not started.
    let unknown = app.sim.issue_auth_key();
    let r = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, unknown)}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["account"]["status"], "unauthorized");
    assert_eq!(body["account"]["running"], false);
}

async fn accounts_are_admin_only_and_isolated(app: &TestApp) {
    app.sim
        .create_user(tgsim::NewUser {
            phone: "+15554000".into(),
            first_name: "Mine".into(),
            ..Default::default()
        })
        .unwrap();
    let admin = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &admin, "+15554000", None).await;
    let op = app.login("operator", PASSWORD).await;
    let r = op
        .post(
            "/api/v1/accounts/login/phone",
            &json!({"phone": "+15554000"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = op
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/stop"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 403);
    let other = app
        .store
        .create_workspace("Other", Timestamp::now())
        .await
        .unwrap()
        .id;
    app.add_user(other, "rival", Role::Owner).await;
    let rival = app.login("rival", PASSWORD).await;
    let list: Value = rival.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(
        list["accounts"].as_array().unwrap().len(),
        0,
        "another workspace sees none"
    );
    for (m, path) in [
        (Method::POST, format!("/api/v1/accounts/{id}/stop")),
        (Method::POST, format!("/api/v1/accounts/{id}/logout")),
        (Method::DELETE, format!("/api/v1/accounts/{id}")),
        (Method::GET, format!("/api/v1/accounts/{id}/chats")),
    ] {
        let r = rival.send(m, &path, None, true).await;
        assert!(
            r.status() == 404 || r.status() == 200,
            "{path}: {}",
            r.status()
        );
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["chats"].as_array().map(|c| c.len()), Some(0), "{path}");
        }
    }
    assert_eq!(
        account(&admin, id).await["active"],
        true,
        "the rival changed nothing"
    );
    // Logout wipes the session and says so.
    let r = admin
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/logout"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let a = account(&admin, id).await;
    assert_eq!(
        (a["status"].as_str(), a["active"].as_bool()),
        (Some("unauthorized"), Some(false))
    );
    let r = admin
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(account(&admin, id).await, Value::Null);
}
