//! The operator inbox end to end, on both backends: tgsim customers write to a connected
//! personal account, chats reach operators over the API and `/ws`, replies leave through the
//! outbox and reach the customers; who may see what is tried from the outside.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_domain::Role;
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::{
    Ws, chat_titled, connect_personal_account, customer, eventually, frames_within, noise_png,
    open_ws, open_ws_ready, reply, reply_with_file, upload_file, wait_frame,
};

app_tests!(
    a_customer_message_reaches_the_inbox_and_the_reply_reaches_the_customer,
    operators_reach_only_their_own_and_unassigned_chats,
    other_workspaces_are_invisible,
    automatic_assignment_is_fair_and_respects_capacity,
    a_permanent_error_fails_the_reply_and_retry_resends_it,
    flood_wait_is_waited_out_and_the_reply_sent_once,
    a_reply_whose_answer_was_lost_ends_sent_once,
    replies_of_one_chat_leave_in_order,
    status_read_and_history_work,
    read_receipts_go_once_per_chat_and_only_when_something_is_unread,
    attachments_are_checked_and_sent,
);

async fn attachments_are_checked_and_sent(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550900", "Owner").await;
    let hal = customer(app, "+15550901", "Hal").await;
    customer_writes(app, &hal, &owner, "send me the floor plan please");
    let chat = chat_titled(&admin, "Hal").await;
    let chat_id = chat["id"].as_i64().unwrap();
    let files_dir = app.config.data_dir.join("files");
    let count_files = || {
        walk(&files_dir)
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains("/tmp/"))
            .count()
    };

    // Refused uploads leave nothing behind.
    let r = upload_file(
        &admin,
        "fake.png",
        "image/png",
        b"not a picture at all".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 415);
    assert_eq!(error_code(r).await, "file_type_not_allowed");
    let r = upload_file(
        &admin,
        "page.html",
        "text/html",
        b"<script>x</script>".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 415);
    // At the default configuration: one byte over `server.max_upload_bytes` is refused.
    let limit = switchboard::Config::default().server.max_upload_bytes;
    assert_eq!(app.config.server.max_upload_bytes, limit);
    let r = upload_file(&admin, "big.txt", "text/plain", vec![b'a'; limit + 1]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "file_too_large");
    assert_eq!(count_files(), 0, "nothing stored for refused uploads");

    // A 5 MiB photo (far above the JSON body limit) and a document go out as media.
    let picture = noise_png(5 * 1024 * 1024);
    let r = upload_file(&admin, "plan.png", "image/png", picture.clone()).await;
    assert_eq!(r.status(), 201);
    let photo: Value = r.json().await.unwrap();
    assert_eq!(photo["kind"], "photo");
    assert_eq!(photo["mime_type"], "image/png");
    assert_eq!(photo["size"].as_u64(), Some(picture.len() as u64));
    let r = upload_file(
        &admin,
        "terms.txt",
        "text/plain",
        b"Rent is due on the 1st.".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["kind"], "document");

    for (file, caption) in [(&photo, "the plan"), (&doc, "the terms")] {
        let id = reply_with_file(&admin, chat_id, file, caption).await;
        let sent = wait_status(&admin, chat_id, id, "sent", 20).await;
        // The sender of the reply can fetch its own attachment back.
        let media = admin.get(&format!("/api/v1/messages/{id}/media")).await;
        assert_eq!(media.status(), 200, "{sent}");
        assert_eq!(
            media.headers()["x-content-type-options"].to_str().unwrap(),
            "nosniff"
        );
    }
    let received: Vec<tgsim::MessageView> = app
        .sim
        .received_messages(hal.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == Some(owner.id))
        .collect();
    let photo_media = received[0]
        .media
        .clone()
        .expect("the photo arrived as media");
    let (_, photo_bytes) = app.sim.file(&photo_media.file_id).unwrap();
    assert!(
        photo_bytes == picture,
        "the customer received the whole photo"
    );
    let got: Vec<(String, Option<String>)> = received
        .into_iter()
        .map(|m| (m.text, m.media.map(|x| x.mime)))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "the plan");
    assert_eq!(
        got[1],
        ("the terms".to_string(), Some("text/plain".to_string()))
    );

    // An unknown file id and a malformed one are refused without writing anything.
    let before = message_count(&admin, chat_id).await;
    for bad in ["0".repeat(64), "../../etc/passwd".to_string()] {
        let r = admin
            .post(
                &format!("/api/v1/chats/{chat_id}/messages"),
                &json!({"text": "x", "attachment": {"file_id": bad, "kind": "document"}}),
            )
            .await;
        assert_eq!(r.status(), 422);
    }
    assert_eq!(message_count(&admin, chat_id).await, before);
}

async fn message_count(b: &Browser, chat: i64) -> usize {
    let v: Value = b
        .get(&format!("/api/v1/chats/{chat}/messages?limit=200"))
        .await
        .json()
        .await
        .unwrap();
    v["messages"].as_array().unwrap().len()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn tg(user: &tgsim::UserInfo) -> tgsim::Peer {
    tgsim::Peer::User(user.id)
}

/// The customer writes `text` to the account's owner.
fn customer_writes(app: &TestApp, customer: &tgsim::UserInfo, owner: &tgsim::UserInfo, text: &str) {
    app.sim
        .send_message(customer.id, tg(owner), tgsim::OutgoingMessage::text(text))
        .unwrap();
}

/// Texts the customer has received from `from`.
fn received_from(app: &TestApp, customer: &tgsim::UserInfo, from: &tgsim::UserInfo) -> Vec<String> {
    app.sim
        .received_messages(customer.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == Some(from.id))
        .map(|m| m.text)
        .collect()
}

async fn message_state(b: &Browser, chat: i64, id: i64) -> Value {
    let list: Value = b
        .get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .json()
        .await
        .unwrap();
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_i64() == Some(id))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_status(b: &Browser, chat: i64, id: i64, status: &str, secs: u64) -> Value {
    eventually(secs, &format!("message {id} to be {status}"), || async {
        let m = message_state(b, chat, id).await;
        (m["status"] == status).then_some(m)
    })
    .await
}

async fn a_customer_message_reaches_the_inbox_and_the_reply_reaches_the_customer(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _account) = connect_personal_account(app, &admin, "+15550100", "Owner").await;
    let op = app.login("operator", PASSWORD).await;
    let mut ws = open_ws(app, &op, None).await.unwrap();
    let initial = wait_frame(&mut ws, "initial_chats", 5, |_| true).await;
    assert_eq!(initial["chats"].as_array().unwrap().len(), 0);

    let alice = customer(app, "+15550101", "Alice").await;
    customer_writes(app, &alice, &owner, "Hello, is the flat still available?");

    // The message arrives live, and the chat (assigned to the only online operator).
    let new = wait_frame(&mut ws, "new_message", 20, |_| true).await;
    assert_eq!(
        new["data"]["message"]["text"],
        "Hello, is the flat still available?"
    );
    assert_eq!(new["data"]["message"]["direction"], "in");
    let chat = chat_titled(&op, "Alice").await;
    let chat_id = chat["id"].as_i64().unwrap();
    assert_eq!(chat["unread_count"], 1);
    assert_eq!(
        chat["assignee_id"], op.me["id"],
        "the only online operator gets the chat"
    );

    let sent = reply(&op, chat_id, "Yes, it is. When would you like to see it?").await;
    let id = sent["id"].as_i64().unwrap();
    let status = wait_frame(&mut ws, "message_status", 20, |f| {
        f["data"]["message"]["id"].as_i64() == Some(id) && f["data"]["message"]["status"] == "sent"
    })
    .await;
    assert!(status["data"]["message"]["tg_message_id"].is_i64());
    eventually(10, "the customer to receive the reply", || async {
        let got = received_from(app, &alice, &owner);
        got.contains(&"Yes, it is. When would you like to see it?".to_string())
            .then_some(())
    })
    .await;
    // Exactly once, even after the echo of the sent message has been ingested.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received_from(app, &alice, &owner);
    assert_eq!(
        got.iter()
            .filter(|t| *t == "Yes, it is. When would you like to see it?")
            .count(),
        1
    );
    let list: Value = op
        .get(&format!("/api/v1/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let outs: Vec<&Value> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .collect();
    assert_eq!(
        outs.len(),
        1,
        "no duplicate of the reply in the chat: {list}"
    );
    assert_eq!(outs[0]["author_id"], op.me["id"]);
}

/// A second operator, signed in.
async fn second_operator(app: &TestApp) -> Browser {
    app.add_user(app.workspace, "operator2", Role::Operator)
        .await;
    app.login("operator2", PASSWORD).await
}

async fn operators_reach_only_their_own_and_unassigned_chats(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550200", "Owner").await;
    let op1 = app.login("operator", PASSWORD).await;
    let op2 = second_operator(app).await;
    let bob = customer(app, "+15550201", "Bob").await;
    customer_writes(app, &bob, &owner, "hi");
    // Nobody is online: the chat waits unassigned and both operators see it.
    let chat = chat_titled(&op2, "Bob").await;
    let chat_id = chat["id"].as_i64().unwrap();
    assert!(chat["assignee_id"].is_null());
    chat_titled(&op1, "Bob").await;

    // The admin gives it to operator 1; operator 2, who saw it in the queue, is told to drop it
    // (only its id and new assignee).
    let mut watch2 = open_ws(app, &op2, None).await.unwrap();
    wait_frame(&mut watch2, "initial_chats", 5, |f| {
        f["chats"].as_array().is_some_and(|c| c.len() == 1)
    })
    .await;
    let r = admin
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": op1.me["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let dropped = wait_frame(&mut watch2, "chat_updated", 5, |f| {
        f["data"]["removed"] == true
    })
    .await;
    assert_eq!(dropped["data"]["chat_id"].as_i64(), Some(chat_id));
    assert_eq!(dropped["data"]["assignee_id"], op1.me["id"]);
    assert!(
        dropped["data"]["chat"].is_null(),
        "no chat details leak: {dropped}"
    );

    // Operator 2 can no longer reach it in any way.
    let list: Value = op2.get("/api/v1/chats").await.json().await.unwrap();
    assert!(list["chats"].as_array().unwrap().is_empty(), "{list}");
    for path in [
        format!("/api/v1/chats/{chat_id}"),
        format!("/api/v1/chats/{chat_id}/messages"),
    ] {
        let r = op2.get(&path).await;
        assert_eq!(r.status(), 404, "GET {path}");
    }
    let before: Value = op1
        .get(&format!("/api/v1/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let first_message = before["messages"][0]["id"].as_i64().unwrap();
    for (path, body) in [
        (
            format!("/api/v1/chats/{chat_id}/messages"),
            json!({"text": "sneaky"}),
        ),
        (format!("/api/v1/chats/{chat_id}/read"), json!({})),
        (
            format!("/api/v1/chats/{chat_id}/status"),
            json!({"status": "resolved"}),
        ),
        (
            format!("/api/v1/chats/{chat_id}/assign"),
            json!({"user_id": op2.me["id"]}),
        ),
        (format!("/api/v1/messages/{first_message}/retry"), json!({})),
    ] {
        let r = op2.post(&path, &body).await;
        assert_eq!(r.status(), 404, "POST {path}");
        assert_eq!(error_code(r).await, "not_found");
    }
    for path in [
        format!("/api/v1/messages/{first_message}/history"),
        format!("/api/v1/messages/{first_message}/media"),
    ] {
        assert_eq!(op2.get(&path).await.status(), 404, "GET {path}");
    }
    // Nothing was written by those attempts.
    let after: Value = op1
        .get(&format!("/api/v1/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let still: Value = op1
        .get(&format!("/api/v1/chats/{chat_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["chat"]["status"], "open");
    assert_eq!(still["chat"]["assignee_id"], op1.me["id"]);

    // Over the WebSocket: commands fail, and its events never arrive.
    let mut ws2 = open_ws(app, &op2, None).await.unwrap();
    let init = wait_frame(&mut ws2, "initial_chats", 5, |_| true).await;
    assert!(init["chats"].as_array().unwrap().is_empty());
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    for cmd in [
        json!({"type": "get_chat_messages", "chat_id": chat_id}),
        json!({"type": "mark_as_read", "chat_id": chat_id}),
    ] {
        ws2.send(Message::Text(cmd.to_string().into()))
            .await
            .unwrap();
        let err = wait_frame(&mut ws2, "error", 5, |_| true).await;
        assert_eq!(err["code"], "not_found", "{cmd}");
    }
    let mut ws1 = open_ws_ready(app, &op1).await;
    customer_writes(app, &bob, &owner, "are you there?");
    let seen = wait_frame(&mut ws1, "new_message", 20, |_| true).await;
    assert_eq!(seen["data"]["message"]["text"], "are you there?");
    let leaked: Vec<Value> = frames_within(&mut ws2, 1500).await;
    assert!(
        leaked.iter().all(
            |f| !f.to_string().contains("are you there?") && f["data"]["chat"]["id"] != chat_id
        ),
        "operator 2 received another operator's chat: {leaked:?}"
    );

    // Operator 1 may hand it back; then operator 2 may take it; operators cannot assign others.
    let r = op1
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": null}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = op1
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": op2.me["id"]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "assign_forbidden");
    let r = op2
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": op2.me["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        op1.get(&format!("/api/v1/chats/{chat_id}")).await.status(),
        404
    );
}

async fn other_workspaces_are_invisible(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550300", "Owner").await;
    let carol = customer(app, "+15550301", "Carol").await;
    customer_writes(app, &carol, &owner, "hello");
    let chat = chat_titled(&admin, "Carol").await;
    let chat_id = chat["id"].as_i64().unwrap();

    let other = app
        .store
        .create_workspace("Other", switchboard_domain::Timestamp::now())
        .await
        .unwrap();
    app.add_user(other.id, "stranger", Role::Owner).await;
    let stranger = app.login("stranger", PASSWORD).await;
    let list: Value = stranger.get("/api/v1/chats").await.json().await.unwrap();
    assert!(list["chats"].as_array().unwrap().is_empty());
    assert_eq!(
        stranger
            .get(&format!("/api/v1/chats/{chat_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        stranger
            .get(&format!("/api/v1/chats/{chat_id}/messages"))
            .await
            .status(),
        404
    );
    let r = stranger
        .post(
            &format!("/api/v1/chats/{chat_id}/messages"),
            &json!({"text": "x"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = stranger
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": stranger.me["id"]}),
        )
        .await;
    assert_eq!(r.status(), 404);
    // An admin cannot assign a chat to someone outside the workspace.
    let r = admin
        .post(
            &format!("/api/v1/chats/{chat_id}/assign"),
            &json!({"user_id": stranger.me["id"]}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "not_a_member");
    let mut ws = open_ws(app, &stranger, None).await.unwrap();
    wait_frame(&mut ws, "initial_chats", 5, |f| {
        f["chats"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    customer_writes(app, &carol, &owner, "second");
    let frames = frames_within(&mut ws, 2000).await;
    assert!(
        frames.iter().all(|f| !f.to_string().contains("second")),
        "{frames:?}"
    );
}

async fn automatic_assignment_is_fair_and_respects_capacity(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550400", "Owner").await;
    let op1 = app.login("operator", PASSWORD).await;
    let op2 = second_operator(app).await;
    // operator3 exists but is offline: never assigned.
    app.add_user(app.workspace, "operator3", Role::Operator)
        .await;
    let mut ws1 = open_ws_ready(app, &op1).await;
    let _ws2 = open_ws_ready(app, &op2).await;
    wait_frame(&mut ws1, "initial_chats", 5, |_| true).await;
    let op1_id = op1.me["id"].as_i64().unwrap();
    let op2_id = op2.me["id"].as_i64().unwrap();

    let mut assignees = Vec::new();
    for i in 0..4 {
        let c = customer(app, &format!("+1555041{i}"), &format!("Customer{i}")).await;
        customer_writes(app, &c, &owner, "hello");
        let chat = eventually(20, "assignment", || async {
            let list: Value = admin.get("/api/v1/chats").await.json().await.ok()?;
            list["chats"]
                .as_array()?
                .iter()
                .find(|ch| ch["title"] == format!("Customer{i}") && ch["assignee_id"].is_i64())
                .cloned()
        })
        .await;
        assignees.push(chat["assignee_id"].as_i64().unwrap());
    }
    let by1 = assignees.iter().filter(|a| **a == op1_id).count();
    let by2 = assignees.iter().filter(|a| **a == op2_id).count();
    assert_eq!(
        (by1, by2),
        (2, 2),
        "round robin between the two online: {assignees:?}"
    );

    // Capacity: operators have max_chats 5 in the harness; fill operator 1 up to it and check
    // that the next chats all go to operator 2.
    let members: Value = admin
        .get("/api/v1/inbox/members")
        .await
        .json()
        .await
        .unwrap();
    let online: Vec<i64> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["online"] == true)
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(online.len(), 2, "{members}");
    for i in 4..10 {
        let c = customer(app, &format!("+1555042{i}"), &format!("Later{i}")).await;
        customer_writes(app, &c, &owner, "hello");
        eventually(20, "the chat to arrive", || async {
            let list: Value = admin.get("/api/v1/chats").await.json().await.ok()?;
            list["chats"]
                .as_array()?
                .iter()
                .any(|ch| ch["title"] == format!("Later{i}"))
                .then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let members: Value = admin
        .get("/api/v1/inbox/members")
        .await
        .json()
        .await
        .unwrap();
    for m in members["members"].as_array().unwrap() {
        if m["role"] == "operator" {
            assert!(
                m["open_chats"].as_i64().unwrap() <= m["max_chats"].as_i64().unwrap(),
                "over capacity: {m}"
            );
        }
    }
    let list: Value = admin
        .get("/api/v1/chats?assignee=unassigned")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["chats"].as_array().unwrap().len(),
        0,
        "10 chats fit in 2 × 5"
    );
    let c = customer(app, "+15550499", "Overflow").await;
    customer_writes(app, &c, &owner, "hello");
    let overflow = chat_titled(&admin, "Overflow").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh: Value = admin
        .get(&format!("/api/v1/chats/{}", overflow["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        fresh["chat"]["assignee_id"].is_null(),
        "everyone is full: the chat waits in the queue"
    );
}

async fn a_permanent_error_fails_the_reply_and_retry_resends_it(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550500", "Owner").await;
    let dave = customer(app, "+15550501", "Dave").await;
    customer_writes(app, &dave, &owner, "hi");
    let chat = chat_titled(&admin, "Dave").await;
    let chat_id = chat["id"].as_i64().unwrap();
    app.sim.rpc_error(
        Some(owner.id),
        "messages.sendMessage",
        400,
        "USER_IS_BLOCKED",
        1,
    );
    let m = reply(&admin, chat_id, "first try").await;
    let id = m["id"].as_i64().unwrap();
    let failed = wait_status(&admin, chat_id, id, "failed", 20).await;
    assert_eq!(failed["error"], "USER_IS_BLOCKED");
    assert!(received_from(app, &dave, &owner).is_empty());

    // Retrying a message that has not failed is refused; the failed one is really resent.
    let r = admin
        .post(
            &format!(
                "/api/v1/messages/{}/retry",
                first_inbound(&admin, chat_id).await
            ),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 404, "an inbound message has no outbox item");
    let r = admin
        .post(&format!("/api/v1/messages/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    wait_status(&admin, chat_id, id, "sent", 20).await;
    assert_eq!(
        received_from(app, &dave, &owner),
        vec!["first try".to_string()]
    );
    let r = admin
        .post(&format!("/api/v1/messages/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "not_failed");
}

async fn first_inbound(b: &Browser, chat: i64) -> i64 {
    let list: Value = b
        .get(&format!("/api/v1/chats/{chat}/messages"))
        .await
        .json()
        .await
        .unwrap();
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "in")
        .and_then(|m| m["id"].as_i64())
        .unwrap()
}

async fn flood_wait_is_waited_out_and_the_reply_sent_once(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550600", "Owner").await;
    let erin = customer(app, "+15550601", "Erin").await;
    customer_writes(app, &erin, &owner, "hi");
    let chat = chat_titled(&admin, "Erin").await;
    let chat_id = chat["id"].as_i64().unwrap();
    app.sim
        .flood_wait(Some(owner.id), "messages.sendMessage", 2, 1);
    let started = Instant::now();
    let m = reply(&admin, chat_id, "after the wait").await;
    let id = m["id"].as_i64().unwrap();
    let sent = wait_status(&admin, chat_id, id, "sent", 30).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "sent before the FloodWait ended"
    );
    assert!(sent["error"].is_null());
    assert_eq!(
        received_from(app, &erin, &owner),
        vec!["after the wait".to_string()]
    );
}

/// Telegram carries out the first `messages.sendMessage` but the connection closes before its
/// answer: the outbox resends with the same `random_id`, Telegram answers
/// `RANDOM_ID_DUPLICATE`, and the reply ends `sent` with the id of the one message posted.
async fn a_reply_whose_answer_was_lost_ends_sent_once(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550650", "Owner").await;
    let hal = customer(app, "+15550651", "Hal").await;
    customer_writes(app, &hal, &owner, "hi");
    let chat_id = chat_titled(&admin, "Hal").await["id"].as_i64().unwrap();
    // An earlier identical reply, sent normally, must not be taken for the lost one.
    let first = reply(&admin, chat_id, "on my way").await["id"]
        .as_i64()
        .unwrap();
    let first = wait_status(&admin, chat_id, first, "sent", 30).await;
    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(owner.id),
        method: Some("messages.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    let m = reply(&admin, chat_id, "on my way").await["id"]
        .as_i64()
        .unwrap();
    let sent = wait_status(&admin, chat_id, m, "sent", 60).await;
    assert!(sent["error"].is_null(), "{sent}");

    let posted: Vec<tgsim::MessageView> = app
        .sim
        .messages(owner.id)
        .unwrap()
        .into_iter()
        .filter(|v| v.out && v.text == "on my way")
        .collect();
    assert_eq!(posted.len(), 2, "each reply posted exactly once");
    assert_eq!(first["tg_message_id"], i64::from(posted[0].id));
    assert_eq!(sent["tg_message_id"], i64::from(posted[1].id));
    let calls = app.sim.counters().accounts[&owner.id.0.to_string()].calls["messages.sendMessage"];
    assert_eq!(
        calls, 3,
        "one send, then the lost one and its refused repeat"
    );
    // The chat holds the two replies and no separate echo of either.
    let list: Value = admin
        .get(&format!("/api/v1/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let outs = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .count();
    assert_eq!(outs, 2, "{list}");
}

async fn replies_of_one_chat_leave_in_order(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550700", "Owner").await;
    let fay = customer(app, "+15550701", "Fay").await;
    customer_writes(app, &fay, &owner, "hi");
    let chat = chat_titled(&admin, "Fay").await;
    let chat_id = chat["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            reply(&admin, chat_id, &format!("part {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in &ids {
        wait_status(&admin, chat_id, *id, "sent", 30).await;
    }
    assert_eq!(
        received_from(app, &fay, &owner),
        vec!["part 0".to_string(), "part 1".into(), "part 2".into()]
    );
}

async fn status_read_and_history_work(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550800", "Owner").await;
    let gus = customer(app, "+15550801", "Gus").await;
    customer_writes(app, &gus, &owner, "one");
    customer_writes(app, &gus, &owner, "two");
    let chat = eventually(20, "two unread", || async {
        let c = chat_titled(&admin, "Gus").await;
        (c["unread_count"] == 2).then_some(c)
    })
    .await;
    let chat_id = chat["id"].as_i64().unwrap();
    let mut ws: Ws = open_ws(app, &admin, None).await.unwrap();
    wait_frame(&mut ws, "initial_chats", 5, |_| true).await;

    let r = admin
        .post(&format!("/api/v1/chats/{chat_id}/read"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["chat"]["unread_count"], 0);
    wait_frame(&mut ws, "chat_updated", 5, |f| {
        f["data"]["chat"]["id"].as_i64() == Some(chat_id) && f["data"]["chat"]["unread_count"] == 0
    })
    .await;
    // Telegram is told too, through the account's own client.
    eventually(10, "messages.readHistory to reach Telegram", || async {
        let counters = app.sim.counters();
        let calls = counters.accounts.get(&owner.id.0.to_string())?;
        (calls
            .calls
            .get("messages.readHistory")
            .copied()
            .unwrap_or(0)
            >= 1)
            .then_some(())
    })
    .await;

    // A reply to a customer's message arrives as a reply.
    let first: Value = admin
        .get(&format!("/api/v1/chats/{chat_id}/messages"))
        .await
        .json()
        .await
        .unwrap();
    let one = first["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "one")
        .unwrap()
        .clone();
    let r = admin
        .post(
            &format!("/api/v1/chats/{chat_id}/messages"),
            &json!({"text": "about that", "reply_to_tg_id": one["tg_message_id"]}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let answer = eventually(20, "the reply to arrive", || async {
        app.sim
            .received_messages(gus.id)
            .ok()?
            .into_iter()
            .find(|m| m.text == "about that")
    })
    .await;
    assert!(answer.reply_to.is_some(), "{answer:?}");

    for (status, code) in [("pending", 200), ("resolved", 200), ("closed", 422)] {
        let r = admin
            .post(
                &format!("/api/v1/chats/{chat_id}/status"),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(r.status(), code, "{status}");
    }
    // A new inbound message reopens a resolved chat.
    customer_writes(app, &gus, &owner, "three");
    eventually(20, "the chat to reopen", || async {
        let v: Value = admin
            .get(&format!("/api/v1/chats/{chat_id}"))
            .await
            .json()
            .await
            .ok()?;
        (v["chat"]["status"] == "open").then_some(())
    })
    .await;

    // Paging: two pages of messages cover all three, newest first.
    let page: Value = admin
        .get(&format!("/api/v1/chats/{chat_id}/messages?limit=2"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["has_more"], true);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["three", "about that"]);
    let oldest = page["messages"][1]["id"].as_i64().unwrap();
    let rest: Value = admin
        .get(&format!(
            "/api/v1/chats/{chat_id}/messages?limit=2&before={oldest}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let rest: Vec<&str> = rest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["two", "one"]);

    // Bad filters are refused.
    let r = admin.get("/api/v1/chats?assignee=everyone").await;
    assert_eq!(r.status(), 422);
    let r = admin.get("/api/v1/chats?before_at=5").await;
    assert_eq!(r.status(), 422);
    let history: Value = admin
        .get(&format!("/api/v1/messages/{oldest}/history"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["edits"], json!([]));
}

/// `messages.readHistory` calls of the account of `owner` that tgsim counted.
fn read_history_calls(app: &TestApp, owner: &tgsim::UserInfo) -> u64 {
    app.sim
        .counters()
        .accounts
        .get(&owner.id.0.to_string())
        .and_then(|c| c.calls.get("messages.readHistory").copied())
        .unwrap_or(0)
}

async fn read_receipts_go_once_per_chat_and_only_when_something_is_unread(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(app, &admin, "+15550810", "Owner").await;
    let ida = customer(app, "+15550811", "Ida").await;
    let unread = |n: i64| {
        let admin = &admin;
        async move {
            eventually(20, &format!("{n} unread"), || async {
                let c = chat_titled(admin, "Ida").await;
                (c["unread_count"] == n).then(|| c["id"].as_i64().unwrap())
            })
            .await
        }
    };
    let read_all = |times: usize, chat_id: i64| {
        let admin = &admin;
        async move {
            let path = format!("/api/v1/chats/{chat_id}/read");
            let body = json!({});
            let reads = (0..times).map(|_| admin.post(&path, &body));
            for r in futures_util::future::join_all(reads).await {
                assert_eq!(r.status(), 200);
            }
        }
    };
    let newest_received = || {
        app.sim
            .messages(owner.id)
            .unwrap()
            .into_iter()
            .filter(|m| m.from == Some(ida.id))
            .map(|m| m.id)
            .max()
    };
    let read_on_telegram = || app.sim.read_inbox_max_id(owner.id, tg(&ida));

    let calls = || read_history_calls(app, &owner);
    let interval = switchboard_services::read_receipts::READ_RECEIPT_INTERVAL;

    customer_writes(app, &ida, &owner, "one");
    let chat_id = unread(1).await;
    // A burst of parallel reads of one unread chat tells Telegram once.
    read_all(8, chat_id).await;
    eventually(10, "the read receipt", || async {
        (read_on_telegram() == newest_received()).then_some(())
    })
    .await;
    tokio::time::sleep(interval + Duration::from_millis(500)).await;
    assert_eq!(calls(), 1, "one receipt for a burst of reads");
    // Nothing unread: nothing to tell.
    read_all(3, chat_id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(calls(), 1, "no receipt for reading a read chat");
    // New messages read one by one: the first receipt goes at once, the next ones within the
    // interval are merged into one, sent when the interval is over, up to the newest message.
    for text in ["two", "three", "four"] {
        customer_writes(app, &ida, &owner, text);
        unread(1).await;
        read_all(1, chat_id).await;
    }
    eventually(15, "the merged read receipt", || async {
        (read_on_telegram() == newest_received()).then_some(())
    })
    .await;
    tokio::time::sleep(interval + Duration::from_millis(500)).await;
    assert_eq!(
        calls(),
        3,
        "one receipt for \"two\", one for \"three\" and \"four\""
    );
}
