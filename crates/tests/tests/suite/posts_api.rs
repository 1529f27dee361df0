//! The autoposting API over real HTTP, on both backends, with a tgsim account: the chats an
//! account can post to (a channel it created, not one it only reads), creating and changing a
//! post (the waiting run follows the new time), upcoming runs, a target the sender cannot post
//! to, a schedule that does not parse (with its place), and who may do what.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_tests::app::{PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::connect_personal_account;

app_tests!(posts_are_checked_with_telegram_scheduled_and_listed);

fn body(account: i64, peer: i64, schedule: Value) -> Value {
    json!({
        "sender": {"kind": "account", "account": account},
        "target_peer_id": peer,
        "text": "Hello from the schedule",
        "schedule": schedule,
        "time_zone": "Europe/Moscow",
    })
}

async fn posts_are_checked_with_telegram_scheduled_and_listed(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (user, acc) = connect_personal_account(app, &admin, "+15552000", "Poster").await;
    let own = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Poster's channel".into(),
            username: Some("posters_channel".into()),
            creator: Some(user.id),
            ..Default::default()
        })
        .unwrap();
    let read_only = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Someone else's".into(),
            members: vec![user.id],
            ..Default::default()
        })
        .unwrap();
    let own_id = own.peer.bot_api_id();
    let other_id = read_only.peer.bot_api_id();

    let r = admin
        .get(&format!(
            "/api/v1/posts/targets?sender_kind=account&sender_id={acc}"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let ids: Vec<i64> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["peer_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![own_id], "only the channel it may post to");

    // A channel it only reads is refused; nothing is written.
    let r = admin
        .post(
            "/api/v1/posts",
            &body(acc, other_id, json!({"kind": "daily", "time": "09:00"})),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "target_not_allowed");
    // A schedule that does not parse names its place.
    let r = admin
        .post(
            "/api/v1/posts",
            &body(
                acc,
                own_id,
                json!({"kind": "cron", "expression": "0 25 * * *"}),
            ),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "schedule_invalid");
    assert_eq!(
        (
            e["error"]["position"].as_i64(),
            e["error"]["expected"].as_str()
        ),
        (Some(2), Some("hour"))
    );
    let posts: Value = admin.get("/api/v1/posts").await.json().await.unwrap();
    assert_eq!(posts["posts"].as_array().unwrap().len(), 0);

    let r = admin
        .post(
            "/api/v1/posts",
            &body(acc, own_id, json!({"kind": "daily", "time": "09:00"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let post: Value = r.json().await.unwrap();
    let id = post["post"]["id"].as_i64().unwrap();
    assert_eq!(post["post"]["target"]["title"], "Poster's channel");
    assert_eq!(post["post"]["grace_minutes"], 15);
    let first = post["post"]["next_run_at"].as_i64().unwrap();
    assert_eq!(
        first % 86_400_000,
        6 * 3_600_000,
        "09:00 Moscow is 06:00 UTC"
    );

    let up: Value = admin
        .get("/api/v1/posts/upcoming?days=3")
        .await
        .json()
        .await
        .unwrap();
    let ats: Vec<i64> = up["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at"].as_i64().unwrap())
        .collect();
    assert!((3..=4).contains(&ats.len()), "{ats:?}");
    assert_eq!(ats[0], first);
    assert!(ats.windows(2).all(|w| w[1] - w[0] == 86_400_000));

    // The time changes before publication: the waiting run moves.
    let r = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/posts/{id}"),
            Some(&body(
                acc,
                own_id,
                json!({"kind": "daily", "time": "21:15"}),
            )),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.unwrap();
    let next = changed["post"]["next_run_at"].as_i64().unwrap();
    assert_eq!(next % 86_400_000, 18 * 3_600_000 + 15 * 60_000);
    let runs: Value = admin
        .get(&format!("/api/v1/posts/{id}/runs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    // Operators read, but do not write.
    let operator = app.login("operator", PASSWORD).await;
    let r = operator.get(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(r.status(), 200);
    let r = operator
        .post(
            "/api/v1/posts",
            &body(acc, own_id, json!({"kind": "daily", "time": "09:00"})),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "post_forbidden");
    let r = operator
        .post(&format!("/api/v1/posts/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 403);
    // Another workspace does not see it.
    let (_, outsider) = app.other_workspace("Other", "outsider").await;
    let r = outsider.get(&format!("/api/v1/posts/{id}")).await;
    assert_eq!(r.status(), 404);
    let r = admin
        .post(&format!("/api/v1/posts/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["post"]["state"], "cancelled");
}
