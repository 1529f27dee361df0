//! Lead delivery end to end, on both backends: leads queued through the `LeadStore` (as the
//! engine queues them) reach the reading account's Saved Messages, an inbox chat or a bot's
//! chat in tgsim — once, instantly or as digests, split at Telegram's 4,096 UTF-16 code units,
//! through FLOOD_WAIT and across a restart with a delivery left `sending`. What arrived is read
//! through tgsim's control API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_domain::{
    AccountId, BotId, DeliveryMode, DeliveryTarget, LeadAuthor, LeadOutcome, NewLead, ReadVia,
    ResolvedSource, Role, SourceId, SourceRef, SourceState, Task, TaskSpec, Timestamp, UserId,
    Viewer,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::db::Stores;
use switchboard_tests::live::{
    chat_titled, connect_personal_account, customer, eventually, writes,
};
use switchboard_tests::{app_tests, restarting_app_tests};

app_tests!(
    an_instant_lead_arrives_once_in_saved_messages,
    a_digest_groups_leads_once_per_interval,
    an_instant_task_over_its_cap_falls_back_to_a_digest,
    flood_wait_on_sending_delays_and_loses_nothing,
    a_bot_delivers_to_its_chat,
    an_inbox_chat_gets_leads_through_its_account,
    a_digest_over_4096_characters_arrives_split_with_every_lead_once,
);

restarting_app_tests!(a_restart_while_sending_does_not_post_twice);

/// A connected reading account, the owner acting, and one resolved source.
struct Reader {
    admin: Browser,
    user: tgsim::UserInfo,
    account: AccountId,
    owner: Viewer,
    db: Stores,
}

async fn reader(app: &TestApp, phone: &str) -> Reader {
    let admin = app.login("admin", PASSWORD).await;
    let (user, account) = connect_personal_account(app, &admin, phone, "Reader").await;
    let owner = Viewer {
        workspace: app.workspace,
        user: UserId(admin.me["id"].as_i64().unwrap()),
        role: Role::Owner,
    };
    Reader {
        admin,
        user,
        account: AccountId(account),
        owner,
        db: app.stores().unwrap(),
    }
}

/// A task of the reader's account with one source (`@rust_go_jobs`, resolved). `age` puts its
/// creation in the past, so that its first digest is due at once (the store counts a task's
/// first interval from its creation).
async fn task(
    r: &Reader,
    name: &str,
    target: DeliveryTarget,
    mode: DeliveryMode,
    cap: u32,
    age: Duration,
) -> (Task, SourceId) {
    let created = Timestamp(Timestamp::now().0 - age.as_millis() as i64);
    let spec = TaskSpec {
        name: name.into(),
        query: "rust | вакансия".into(),
        account: r.account,
        target,
        mode,
        instant_cap_per_minute: cap,
        ignore_forwards: false,
        join_allowed: false,
        leave_unused: false,
    };
    let task =
        r.db.leads
            .create_task(&r.owner, &spec, created)
            .await
            .unwrap();
    let sources =
        r.db.leads
            .set_task_sources(
                &r.owner,
                task.id,
                &[SourceRef::parse("@rust_go_jobs").unwrap()],
                created,
            )
            .await
            .unwrap();
    let source =
        r.db.leads
            .set_source_resolved(
                sources[0].id,
                &ResolvedSource {
                    channel_id: -1_009_000_000_001,
                    access_hash: Some(1),
                    title: "Rust & Go Jobs".into(),
                    state: SourceState::Polled,
                    read_via: ReadVia::History,
                    joined_by_us: false,
                },
                created,
            )
            .await
            .unwrap();
    (task, source.id)
}

fn lead(task: &Task, source: SourceId, msg: i64, text: &str) -> NewLead {
    NewLead {
        task: task.id,
        source,
        tg_message_id: msg,
        revision: 0,
        link: Some(format!("https://t.me/rust_go_jobs/{msg}")),
        author: LeadAuthor {
            id: Some(77),
            name: Some("Иван Петров".into()),
            username: Some("ivan_hr".into()),
        },
        text: text.into(),
        snippet: text.into(),
        terms: vec!["rust".into()],
        posted_at: Timestamp::now(),
        forward_origin: None,
        grouped_id: None,
        simhash: None,
        random_id: (task.id.0 << 32) ^ (msg * 0x9E37_79B9) | 1,
    }
}

/// Stores leads as the engine does, and wakes the delivery worker.
async fn insert(app: &TestApp, r: &Reader, leads: &[NewLead]) -> Vec<LeadOutcome> {
    let out =
        r.db.leads
            .insert_leads(leads, Timestamp::now())
            .await
            .unwrap();
    app.running.lead_delivery.wake();
    out
}

/// The messages of a tgsim user's Saved Messages, oldest first, through the control API.
async fn saved_messages(app: &TestApp, user: &tgsim::UserInfo) -> Vec<Value> {
    let url = format!("{}/api/users/{}/messages", app.sim.control_url(), user.id.0);
    let all: Vec<Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let me = json!({"type": "user", "id": user.id.0});
    let mut saved: Vec<Value> = all
        .into_iter()
        .filter(|m| m["peer"] == me && m["out"] == true)
        .collect();
    saved.sort_by_key(|m| m["id"].as_i64());
    saved
}

fn text_of(m: &Value) -> &str {
    m["text"].as_str().unwrap_or("")
}

/// How many messages hold `needle`, and how often in all.
fn occurrences(messages: &[Value], needle: &str) -> usize {
    messages
        .iter()
        .map(|m| text_of(m).matches(needle).count())
        .sum()
}

async fn wait_saved(app: &TestApp, user: &tgsim::UserInfo, n: usize, secs: u64) -> Vec<Value> {
    eventually(secs, &format!("{n} messages in Saved Messages"), || async {
        let saved = saved_messages(app, user).await;
        (saved.len() >= n).then_some(saved)
    })
    .await
}

/// `(kind, state)` of every delivery, oldest first.
async fn delivery_states(db: &Stores) -> Vec<(String, String)> {
    let n = db.scalar("SELECT count(*) FROM lead_deliveries").await;
    let mut out = Vec::new();
    for i in 0..n {
        let nth = format!(
            "(SELECT kind, state FROM lead_deliveries ORDER BY id LIMIT 1 OFFSET {i}) AS d"
        );
        let mut kind = String::new();
        for k in ["instant", "digest"] {
            if db
                .scalar(&format!("SELECT count(*) FROM {nth} WHERE kind = '{k}'"))
                .await
                == 1
            {
                kind = k.into();
            }
        }
        let mut state = String::new();
        for s in ["queued", "sending", "sent", "failed"] {
            if db
                .scalar(&format!("SELECT count(*) FROM {nth} WHERE state = '{s}'"))
                .await
                == 1
            {
                state = s.into();
            }
        }
        out.push((kind, state));
    }
    out
}

async fn wait_all_sent(db: &Stores, secs: u64) {
    eventually(secs, "every delivery sent", || async {
        let states = delivery_states(db).await;
        (!states.is_empty() && states.iter().all(|(_, s)| s == "sent")).then_some(())
    })
    .await;
}

fn send_calls(app: &TestApp, user: &tgsim::UserInfo) -> i64 {
    let counters = serde_json::to_value(app.sim.counters()).unwrap();
    counters["accounts"][user.id.0.to_string()]["calls"]["messages.sendMessage"]
        .as_i64()
        .unwrap_or(0)
}

async fn an_instant_lead_arrives_once_in_saved_messages(app: &TestApp) {
    let r = reader(app, "+15557000001").await;
    let (t, src) = task(
        &r,
        "Rust jobs",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Instant,
        10,
        Duration::ZERO,
    )
    .await;
    let started = Instant::now();
    let one = lead(&t, src, 101, "Ищем Rust-разработчика 🦀, удалённо");
    let out = insert(app, &r, std::slice::from_ref(&one)).await;
    assert!(out[0].new_lead().unwrap().delivery_id.is_some());
    let saved = wait_saved(app, &r.user, 1, 20).await;
    let took = started.elapsed();
    let m = &saved[0];
    let text = text_of(m);
    assert!(text.contains("Rust jobs"), "{text}");
    assert!(text.contains("Rust & Go Jobs"), "{text}");
    assert!(text.contains("Иван Петров (@ivan_hr)"), "{text}");
    assert!(
        text.contains("Ищем Rust-разработчика 🦀, удалённо"),
        "{text}"
    );
    // The matched term is bold (UTF-16 offsets) and the post is linked.
    let units: Vec<u16> = text.encode_utf16().collect();
    let covered = |e: &Value| {
        let (o, l) = (
            e["offset"].as_u64().unwrap() as usize,
            e["length"].as_u64().unwrap() as usize,
        );
        String::from_utf16(&units[o..o + l]).unwrap()
    };
    let entities = m["entities"].as_array().unwrap();
    let bold: Vec<String> = entities
        .iter()
        .filter(|e| e["type"] == "bold")
        .map(covered)
        .collect();
    assert_eq!(bold, vec!["Rust jobs", "Rust"], "{m}");
    assert!(
        entities
            .iter()
            .any(|e| e["type"] == "text_link" && e["url"] == "https://t.me/rust_go_jobs/101"),
        "{m}"
    );
    wait_all_sent(&r.db, 10).await;
    // Woken by the insert, not by a poll: within seconds.
    assert!(took < Duration::from_secs(10), "arrived after {took:?}");

    // The same post again is a duplicate: nothing more is sent.
    let again = insert(
        app,
        &r,
        &[lead(&t, src, 101, "Ищем Rust-разработчика 🦀, удалённо")],
    )
    .await;
    assert!(again[0].new_lead().is_none());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(saved_messages(app, &r.user).await.len(), 1);
    assert_eq!(send_calls(app, &r.user), 1);
}

async fn a_digest_groups_leads_once_per_interval(app: &TestApp) {
    let r = reader(app, "+15557000002").await;
    // Its first interval (1 minute, the shortest) began two minutes ago: the digest is due.
    let (t, src) = task(
        &r,
        "Digest",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Digest { every_minutes: 1 },
        10,
        Duration::from_secs(120),
    )
    .await;
    let batch: Vec<NewLead> = (0..3)
        .map(|i| lead(&t, src, 200 + i, &format!("Rust вакансия номер {i}")))
        .collect();
    let out = insert(app, &r, &batch).await;
    assert!(
        out.iter()
            .all(|o| o.new_lead().unwrap().delivery_id.is_none())
    );
    let saved = wait_saved(app, &r.user, 1, 30).await;
    let first_at = Instant::now();
    assert_eq!(saved.len(), 1, "one message for the three leads");
    for i in 0..3 {
        assert_eq!(occurrences(&saved, &format!("Rust вакансия номер {i}")), 1);
    }
    assert!(
        text_of(&saved[0]).contains("leads: 3"),
        "{}",
        text_of(&saved[0])
    );
    wait_all_sent(&r.db, 10).await;
    assert_eq!(
        delivery_states(&r.db).await,
        vec![("digest".into(), "sent".into())]
    );

    // Leads found now wait for the next interval, then go together.
    let later: Vec<NewLead> = (3..5)
        .map(|i| lead(&t, src, 200 + i, &format!("Rust вакансия номер {i}")))
        .collect();
    insert(app, &r, &later).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        saved_messages(app, &r.user).await.len(),
        1,
        "not before the interval"
    );
    let saved = wait_saved(app, &r.user, 2, 90).await;
    assert!(
        first_at.elapsed() >= Duration::from_secs(50),
        "the second digest came {:?} after the first",
        first_at.elapsed()
    );
    assert_eq!(saved.len(), 2);
    for i in 0..5 {
        assert_eq!(occurrences(&saved, &format!("Rust вакансия номер {i}")), 1);
    }
    assert!(text_of(&saved[1]).contains("leads: 2"));
}

async fn an_instant_task_over_its_cap_falls_back_to_a_digest(app: &TestApp) {
    let r = reader(app, "+15557000003").await;
    // A cap of 2 a minute (lowered to test it); the task is old enough for its overflow digest.
    let (t, src) = task(
        &r,
        "Capped",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Instant,
        2,
        Duration::from_secs(120),
    )
    .await;
    let batch: Vec<NewLead> = (0..5)
        .map(|i| lead(&t, src, 300 + i, &format!("Rust lead {i} of five")))
        .collect();
    let out = insert(app, &r, &batch).await;
    let queued = out
        .iter()
        .filter(|o| o.new_lead().unwrap().delivery_id.is_some())
        .count();
    assert_eq!(queued, 2, "only the cap goes instantly");
    let saved = wait_saved(app, &r.user, 3, 30).await;
    wait_all_sent(&r.db, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let saved_now = saved_messages(app, &r.user).await;
    assert_eq!(saved_now.len(), 3, "two instant messages and one digest");
    assert_eq!(saved.len(), 3);
    for i in 0..5 {
        assert_eq!(
            occurrences(&saved_now, &format!("Rust lead {i} of five")),
            1
        );
    }
    let kinds: Vec<String> = delivery_states(&r.db)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds, vec!["instant", "instant", "digest"]);
    assert!(text_of(&saved_now[2]).contains("leads: 3"));
}

async fn flood_wait_on_sending_delays_and_loses_nothing(app: &TestApp) {
    let r = reader(app, "+15557000004").await;
    let (t, src) = task(
        &r,
        "Flooded",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Instant,
        10,
        Duration::ZERO,
    )
    .await;
    // Longer than the 60 s the client sleeps through by itself: the worker must wait it out.
    let res = reqwest::Client::new()
        .post(format!("{}/api/faults", app.sim.control_url()))
        .json(
            &json!({"user_id": r.user.id.0, "method": "messages.sendMessage",
            "type": "flood_wait", "seconds": 61, "count": 1}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let started = Instant::now();
    insert(app, &r, &[lead(&t, src, 401, "Rust, after the flood")]).await;
    eventually(20, "the delivery to wait for the flood", || async {
        let waiting =
            r.db.scalar(
                "SELECT count(*) FROM lead_deliveries WHERE state = 'queued' \
                 AND last_error = 'FLOOD_WAIT' AND attempts = 1",
            )
            .await;
        (waiting == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        saved_messages(app, &r.user).await.is_empty(),
        "not sent during the wait"
    );
    let saved = wait_saved(app, &r.user, 1, 100).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(60), "sent after {took:?}");
    wait_all_sent(&r.db, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(saved_messages(app, &r.user).await.len(), 1);
    assert_eq!(occurrences(&saved, "Rust, after the flood"), 1);
    assert_eq!(
        send_calls(app, &r.user),
        2,
        "the refused call and the one after the wait"
    );
}

async fn a_restart_while_sending_does_not_post_twice(app: TestApp) -> TestApp {
    let r = reader(&app, "+15557000005").await;
    let (t, src) = task(
        &r,
        "Restarted",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Instant,
        10,
        Duration::ZERO,
    )
    .await;
    insert(
        &app,
        &r,
        &[lead(&t, src, 501, "Rust, sent just before the crash")],
    )
    .await;
    wait_saved(&app, &r.user, 1, 20).await;
    wait_all_sent(&r.db, 10).await;
    // The process died after Telegram took the message and before the outcome was written:
    // the row is left `sending`.
    assert_eq!(
        r.db.execute("UPDATE lead_deliveries SET state = 'sending', tg_message_id = NULL")
            .await,
        1
    );
    let user = r.user.clone();
    let app = app.restart().await;
    let db = app.stores().unwrap();
    // Recovered at start, resent with the same random_id, refused by Telegram as a repeat and
    // recorded as sent with the message's id.
    wait_all_sent(&db, 60).await;
    let saved = saved_messages(&app, &user).await;
    assert_eq!(saved.len(), 1, "posted once");
    assert_eq!(
        send_calls(&app, &user),
        2,
        "the send and its refused repeat"
    );
    let recorded = db.scalar("SELECT tg_message_id FROM lead_deliveries").await;
    assert_eq!(recorded, saved[0]["id"].as_i64().unwrap());
    app
}

async fn a_bot_delivers_to_its_chat(app: &TestApp) {
    let r = reader(app, "+15557000006").await;
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "leads_bot".into(),
            first_name: "Leads".into(),
            token: None,
        })
        .unwrap();
    let res = r
        .admin
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let bot_id = res.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    let boss = customer(app, "+15557000106", "Boss").await;
    writes(app, &boss, &bot, "/start");
    let (t, src) = task(
        &r,
        "Via bot",
        DeliveryTarget::Bot {
            bot: BotId(bot_id),
            peer_id: boss.id.0,
        },
        DeliveryMode::Instant,
        10,
        Duration::ZERO,
    )
    .await;
    insert(app, &r, &[lead(&t, src, 601, "Rust lead for the bot")]).await;
    let got = eventually(20, "the bot's message", || async {
        let from_bot: Vec<tgsim::MessageView> = app
            .sim
            .received_messages(boss.id)
            .unwrap()
            .into_iter()
            .filter(|m| m.from == Some(bot.id))
            .collect();
        (!from_bot.is_empty()).then_some(from_bot)
    })
    .await;
    wait_all_sent(&r.db, 10).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].text.contains("Rust lead for the bot"));
    assert!(got[0].text.contains("Via bot"));
    assert!(saved_messages(app, &r.user).await.is_empty());
}

async fn an_inbox_chat_gets_leads_through_its_account(app: &TestApp) {
    let r = reader(app, "+15557000007").await;
    let colleague = customer(app, "+15557000107", "Colleague").await;
    writes(app, &colleague, &r.user, "send me the leads here");
    let chat = chat_titled(&r.admin, "Colleague").await["id"]
        .as_i64()
        .unwrap();
    let (t, src) = task(
        &r,
        "To a chat",
        DeliveryTarget::Chat {
            chat: switchboard_domain::ChatId(chat),
        },
        DeliveryMode::Instant,
        10,
        Duration::ZERO,
    )
    .await;
    insert(app, &r, &[lead(&t, src, 701, "Rust lead for a colleague")]).await;
    let got = eventually(20, "the colleague's message", || async {
        let from_reader: Vec<tgsim::MessageView> = app
            .sim
            .received_messages(colleague.id)
            .unwrap()
            .into_iter()
            .filter(|m| m.from == Some(r.user.id))
            .collect();
        (!from_reader.is_empty()).then_some(from_reader)
    })
    .await;
    wait_all_sent(&r.db, 10).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].text.contains("Rust lead for a colleague"));
}

async fn a_digest_over_4096_characters_arrives_split_with_every_lead_once(app: &TestApp) {
    let r = reader(app, "+15557000008").await;
    let (t, src) = task(
        &r,
        "Big digest",
        DeliveryTarget::SavedMessages,
        DeliveryMode::Digest { every_minutes: 60 },
        10,
        Duration::from_secs(3700),
    )
    .await;
    // 30 leads of about 400 characters, emoji and Cyrillic: about 13,000 UTF-16 code units.
    let batch: Vec<NewLead> = (0..30)
        .map(|i| {
            lead(
                &t,
                src,
                800 + i,
                &format!("[lead-{i:02}] Rust 🦀 вакансия {}", "удалённо ".repeat(40)),
            )
        })
        .collect();
    insert(app, &r, &batch).await;
    wait_all_sent(&r.db, 60).await;
    let deliveries = delivery_states(&r.db).await;
    let saved = saved_messages(app, &r.user).await;
    assert!(saved.len() >= 4, "{} messages", saved.len());
    assert_eq!(
        saved.len(),
        deliveries.len(),
        "one message per queued digest part"
    );
    for m in &saved {
        let units = text_of(m).encode_utf16().count();
        assert!(units <= 4096, "{units} UTF-16 code units");
    }
    // Every lead once, in order, each whole in one message.
    let mut last = None;
    for i in 0..30 {
        let marker = format!("[lead-{i:02}]");
        assert_eq!(occurrences(&saved, &marker), 1, "{marker}");
        let at = saved
            .iter()
            .position(|m| text_of(m).contains(&marker))
            .unwrap();
        assert!(text_of(&saved[at]).contains(&format!("{marker} Rust 🦀 вакансия")));
        assert!(last.is_none_or(|l| l <= at));
        last = Some(at);
    }
}
