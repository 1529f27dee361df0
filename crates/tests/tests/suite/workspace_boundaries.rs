//! Workspace boundaries tried from the outside: `restart_clients` restarts only the caller's
//! workspace's accounts (and at most once per interval, also when asked in parallel), an
//! upload of one workspace can be neither attached nor probed by another, and a removed
//! member's chats return to the queue and are assigned again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard_domain::Role;
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::{
    chat_titled, connect_personal_account, customer, eventually, open_ws, wait_frame,
};

app_tests!(
    restart_clients_restarts_only_the_callers_workspace,
    another_workspace_can_neither_attach_nor_probe_an_upload,
    a_removed_members_chats_return_to_the_queue,
);

/// A second workspace with its owner `outsider`, signed in.
async fn other_workspace(app: &TestApp) -> Browser {
    app.other_workspace("Other", "outsider").await.1
}

/// MTProto connections tgsim has seen for `user`'s account.
fn connections(app: &TestApp, user: &tgsim::UserInfo) -> u64 {
    app.sim
        .counters()
        .accounts
        .get(&user.id.0.to_string())
        .map_or(0, |c| c.connections)
}

async fn restart(b: &Browser) -> reqwest::Response {
    b.post(
        "/api/v1/system/control",
        &json!({"action": "restart_clients"}),
    )
    .await
}

async fn restarts_audited(b: &Browser) -> usize {
    let audit: Value = b.get("/api/v1/audit").await.json().await.unwrap();
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "system.restart_clients")
        .count()
}

async fn restart_clients_restarts_only_the_callers_workspace(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let outsider = other_workspace(app).await;
    let (ours, _) = connect_personal_account(app, &admin, "+15557300", "Ours").await;
    let (theirs, _) = connect_personal_account(app, &outsider, "+15557301", "Theirs").await;
    let (ours_before, theirs_before) = (connections(app, &ours), connections(app, &theirs));

    // Operators may not.
    let op = app.login("operator", PASSWORD).await;
    assert_eq!(restart(&op).await.status(), 403);

    // The other workspace asks four times at once: one restart, of its own account only.
    let answers = join_all((0..4).map(|_| restart(&outsider))).await;
    let mut ok = 0;
    for r in answers {
        match r.status().as_u16() {
            200 => {
                ok += 1;
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["restarted"], 1, "{body}");
            }
            429 => {
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(error_code(r).await, "rate_limited");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "one restart per interval");
    eventually(20, "their account to reconnect", || async {
        (connections(app, &theirs) > theirs_before).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        connections(app, &ours),
        ours_before,
        "another workspace's restart left our account alone"
    );
    assert_eq!(restarts_audited(&outsider).await, 1);

    // Our own restart is not limited by theirs, and restarts only ours.
    let theirs_now = connections(app, &theirs);
    let r = restart(&admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["restarted"], 1);
    eventually(20, "our account to reconnect", || async {
        (connections(app, &ours) > ours_before).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(connections(app, &theirs), theirs_now);
    assert_eq!(restarts_audited(&admin).await, 1);
}

/// Uploads `bytes` as the multipart field `file`.
async fn upload(b: &Browser, name: &str, mime: &str, bytes: Vec<u8>) -> Value {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let r = b
        .upload(
            "/api/v1/files",
            reqwest::multipart::Form::new().part("file", part),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn attach(b: &Browser, chat: i64, file_id: &str) -> reqwest::Response {
    b.post(
        &format!("/api/v1/chats/{chat}/messages"),
        &json!({"text": "here you go", "attachment": {"file_id": file_id, "kind": "document",
            "file_name": "plan.txt", "mime_type": "text/plain"}}),
    )
    .await
}

async fn another_workspace_can_neither_attach_nor_probe_an_upload(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let outsider = other_workspace(app).await;
    let secret_plan = b"The floor plan of our office, for our customers only.".to_vec();
    let ours = upload(&admin, "plan.txt", "text/plain", secret_plan.clone()).await;
    let file_id = ours["file_id"].as_str().unwrap().to_string();

    let (owner, _) = connect_personal_account(app, &outsider, "+15557400", "Theirs").await;
    let kim = customer(app, "+15557401", "Kim").await;
    app.sim
        .send_message(
            kim.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("can I see a plan?"),
        )
        .unwrap();
    let chat = chat_titled(&outsider, "Kim").await["id"].as_i64().unwrap();

    // Their id and one nobody uploaded get the same answer: nothing to learn, nothing sent.
    let foreign = attach(&outsider, chat, &file_id).await;
    let nobody = attach(&outsider, chat, &"0f".repeat(32)).await;
    assert_eq!(
        (foreign.status().as_u16(), nobody.status().as_u16()),
        (422, 422)
    );
    let foreign: Value = foreign.json().await.unwrap();
    let nobody: Value = nobody.json().await.unwrap();
    assert_eq!(foreign, nobody);
    assert_eq!(foreign["error"]["code"], "file_not_found");
    let msgs: Value = outsider
        .get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        msgs["messages"].as_array().unwrap().len(),
        1,
        "no reply was queued: {msgs}"
    );

    // Uploading the same bytes makes the file theirs too; then the reply goes out.
    let theirs = upload(&outsider, "plan.txt", "text/plain", secret_plan).await;
    assert_eq!(theirs["file_id"], file_id.as_str());
    assert_eq!(attach(&outsider, chat, &file_id).await.status(), 202);
}

async fn a_removed_members_chats_return_to_the_queue(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    app.add_user(app.workspace, "operator2", Role::Operator)
        .await;
    let op = app.login("operator", PASSWORD).await;
    let op_id = op.me["id"].as_i64().unwrap();
    let (owner, _) = connect_personal_account(app, &admin, "+15557500", "Owner").await;
    let lea = customer(app, "+15557501", "Lea").await;

    // Only `operator` is online: Lea's chat is given to them.
    let mut op_ws = open_ws(app, &op, None).await.unwrap();
    wait_frame(&mut op_ws, "hello", 5, |_| true).await;
    app.sim
        .send_message(
            lea.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("hi, anyone there?"),
        )
        .unwrap();
    let chat = eventually(20, "the chat to be assigned", || async {
        let c = chat_titled(&admin, "Lea").await;
        (c["assignee_id"] == op_id).then_some(c["id"].as_i64()?)
    })
    .await;

    // Then operator2 comes online, and `operator` is removed.
    let op2 = app.login("operator2", PASSWORD).await;
    let op2_id = op2.me["id"].as_i64().unwrap();
    let mut op2_ws = open_ws(app, &op2, None).await.unwrap();
    wait_frame(&mut op2_ws, "hello", 5, |_| true).await;
    let r = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/team/members/{op_id}"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 204);

    // The chat went back to the queue and to the operator who is online.
    let got = wait_frame(&mut op2_ws, "chat_updated", 10, |f| {
        f["data"]["chat"]["id"] == chat && f["data"]["chat"]["assignee_id"] == op2_id
    })
    .await;
    assert_eq!(got["data"]["chat"]["assignee_id"], op2_id);
    let now: Value = admin
        .get(&format!("/api/v1/chats/{chat}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["chat"]["assignee_id"], op2_id, "{now}");
    // The removed operator's session is gone with the membership, and their open socket is
    // ended at once (not at its next periodic check, 30 s later).
    wait_frame(&mut op_ws, "session_ended", 5, |_| true).await;
    assert_eq!(op.get("/api/v1/chats").await.status(), 401);
}
