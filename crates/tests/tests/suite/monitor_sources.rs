//! Lead monitoring's source workers on tgsim, at the default pacing: sources become `joined` or
//! `polled` as their task allows, a polled source is read from its high-water mark, the channel
//! cap (`CHANNELS_TOO_MUCH`) fails a source once and is never retried in a loop, a flood-waited
//! resolution shows `flood_wait` until its time (in the account's health too) and then resumes,
//! a failed source is resolved again by the user's retry or, when its cause can pass, an hour
//! later (never one at the channel cap), resolutions stay within 20 a minute whatever the
//! wake-ups, the monitor reads through the account's one client, and posts
//! made while the server was down are read by the sweep after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{
    AccountId, DEFAULT_INSTANT_CAP, DeliveryMode, DeliveryTarget, LeadFilter, LeadStore, ReadVia,
    Role, Source, SourceRef, SourceState, Task, TaskSpec, Timestamp, UserId, Viewer,
};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::live::{connect_personal_account, eventually};
use switchboard_tests::{app_tests, restarting_app_tests};

app_tests!(
    sources_are_joined_or_polled_as_their_task_allows,
    a_post_in_a_polled_source_is_read_from_its_mark,
    the_channel_cap_fails_a_source_once,
    a_flood_waited_resolution_waits_and_resumes,
    resolutions_stay_within_twenty_a_minute,
    many_sources_among_the_dialogs_start_at_once_without_a_call_each,
    a_failed_source_is_retried_by_the_user_and_rechecked_when_it_can_pass,
);

restarting_app_tests!(posts_made_while_the_server_was_down_are_swept_after_a_restart);

/// The reading account and who manages its tasks.
struct Reader {
    user: tgsim::UserInfo,
    /// The account's MTProto connections once it was connected (the import's check included).
    connections: u64,
    account: AccountId,
    owner: Viewer,
    leads: Arc<dyn LeadStore>,
}

async fn reader(app: &TestApp, phone: &str) -> Reader {
    let admin = app.login("admin", PASSWORD).await;
    let (user, account) = connect_personal_account(app, &admin, phone, "Reader").await;
    let connections = app.sim.account_counters(user.id).connections;
    Reader {
        user,
        connections,
        account: AccountId(account),
        owner: Viewer {
            workspace: app.workspace,
            user: UserId(admin.me["id"].as_i64().expect("the admin's id")),
            role: Role::Owner,
        },
        leads: Arc::clone(app.running.monitor.store()),
    }
}

fn channel(app: &TestApp, title: &str, username: Option<&str>) -> tgsim::ChatInfo {
    app.sim
        .create_channel(tgsim::NewChannel {
            title: title.into(),
            username: username.map(Into::into),
            ..Default::default()
        })
        .unwrap()
}

fn channel_id(info: &tgsim::ChatInfo) -> tgsim::ChannelId {
    match info.peer {
        tgsim::Peer::Channel(id) => id,
        ref other => panic!("not a channel: {other:?}"),
    }
}

fn post(app: &TestApp, info: &tgsim::ChatInfo, text: &str) -> i64 {
    i64::from(
        app.sim
            .post_to_channel(channel_id(info), tgsim::OutgoingMessage::text(text))
            .unwrap()
            .id,
    )
}

/// Creates a task of the reader's account over `refs` and wakes the monitor.
async fn task(app: &TestApp, r: &Reader, name: &str, join_allowed: bool, refs: &[&str]) -> Task {
    let spec = TaskSpec {
        name: name.into(),
        query: "rust".into(),
        account: r.account,
        target: DeliveryTarget::SavedMessages,
        mode: DeliveryMode::Instant,
        instant_cap_per_minute: DEFAULT_INSTANT_CAP,
        ignore_forwards: false,
        join_allowed,
        leave_unused: false,
    };
    let task = r
        .leads
        .create_task(&r.owner, &spec, Timestamp::now())
        .await
        .unwrap();
    let refs: Vec<SourceRef> = refs.iter().map(|s| SourceRef::parse(s).unwrap()).collect();
    r.leads
        .set_task_sources(&r.owner, task.id, &refs, Timestamp::now())
        .await
        .unwrap();
    app.running.monitor.tasks_changed(Some(r.account));
    task
}

/// Waits until the task's source typed as `input` satisfies `done`.
async fn source_when(
    r: &Reader,
    task: &Task,
    input: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Source) -> bool,
) -> Source {
    eventually(secs, what, || async {
        let sources = r.leads.task_sources(&r.owner, task.id).await.ok()?;
        sources.into_iter().find(|s| s.input == input && done(s))
    })
    .await
}

fn calls(app: &TestApp, user: &tgsim::UserInfo, method: &str) -> u64 {
    app.sim
        .account_counters(user.id)
        .calls
        .get(method)
        .copied()
        .unwrap_or(0)
}

/// Still one live MTProto connection for the account, and none opened since it connected: the
/// monitor reads through the account's client.
fn one_client(app: &TestApp, r: &Reader) {
    let c = app.sim.account_counters(r.user.id);
    assert_eq!(
        (c.connections, c.open_connections),
        (r.connections, 1),
        "the monitor opened no second client"
    );
}

async fn sources_are_joined_or_polled_as_their_task_allows(app: &TestApp) {
    let r = reader(app, "+15557000001").await;
    let open = channel(app, "Rust вакансии", Some("rust_vacancies"));
    let watched = channel(app, "Go jobs", Some("go_jobs_feed"));
    let private = channel(app, "Closed club", None);
    post(app, &open, "old post");
    let joining = task(
        app,
        &r,
        "Joining",
        true,
        &["@rust_vacancies", "t.me/nobody_here_at_all"],
    )
    .await;
    let reading = task(
        app,
        &r,
        "Reading",
        false,
        &[
            "https://t.me/go_jobs_feed",
            &format!("t.me/+{}", private.invite_hash.clone().unwrap()),
        ],
    )
    .await;

    let joined = source_when(
        &r,
        &joining,
        "@rust_vacancies",
        30,
        "a joined source",
        |s| s.state == SourceState::Joined && s.checked_at.is_some(),
    )
    .await;
    assert_eq!(joined.read_via, Some(ReadVia::Updates));
    assert!(joined.joined_by_us);
    assert_eq!(joined.channel_id, Some(open.bot_api_chat_id));
    assert_eq!(joined.title.as_deref(), Some("Rust вакансии"));
    assert!(joined.pts.is_some(), "a joined channel starts at its pts");
    assert!(
        joined.last_message_id >= 1,
        "it starts at its newest message, not its first"
    );
    let view = app.sim.channel(channel_id(&open)).unwrap();
    assert!(view.members.contains(&r.user.id), "tgsim has the member");

    let polled = source_when(
        &r,
        &reading,
        "https://t.me/go_jobs_feed",
        30,
        "a polled source",
        |s| s.state == SourceState::Polled && s.checked_at.is_some(),
    )
    .await;
    assert_eq!(polled.read_via, Some(ReadVia::History));
    assert!(!polled.joined_by_us);
    let view = app.sim.channel(channel_id(&watched)).unwrap();
    assert!(
        !view.members.contains(&r.user.id),
        "not joined without leave"
    );

    let unknown = source_when(
        &r,
        &joining,
        "t.me/nobody_here_at_all",
        30,
        "an unknown username to fail",
        |s| s.state == SourceState::Failed,
    )
    .await;
    assert_eq!(unknown.failure.as_deref(), Some("username_not_occupied"));
    let invite = format!("t.me/+{}", private.invite_hash.clone().unwrap());
    let refused = source_when(&r, &reading, &invite, 30, "a private invite to fail", |s| {
        s.state == SourceState::Failed
    })
    .await;
    assert_eq!(refused.failure.as_deref(), Some("join_not_allowed"));
    assert_eq!(calls(app, &r.user, "messages.importChatInvite"), 0);
    one_client(app, &r);
}

async fn a_post_in_a_polled_source_is_read_from_its_mark(app: &TestApp) {
    let r = reader(app, "+15557000002").await;
    let feed = channel(app, "Rust feed", Some("rust_feed_polled"));
    let before = post(app, &feed, "before the task: not read");
    let t = task(app, &r, "Polled", false, &["@rust_feed_polled"]).await;
    let s = source_when(&r, &t, "@rust_feed_polled", 30, "a polled source", |s| {
        s.state == SourceState::Polled && s.checked_at.is_some()
    })
    .await;
    assert_eq!(s.last_message_id, before, "it starts at the newest post");
    let first = post(app, &feed, "Ищем Rust-разработчика, удалённо");
    let second = post(app, &feed, "Rust developer wanted");
    // Read by the next poll (every 20 s), from the mark: both posts, in one read.
    let s = source_when(
        &r,
        &t,
        "@rust_feed_polled",
        45,
        "the poll to read the posts",
        |s| s.last_message_id >= second,
    )
    .await;
    assert!(first < second && s.last_message_id == second);
    assert!(s.checked_at.is_some());
    // The engine matched them ("rust"): leads of the polled source.
    let found = eventually(10, "leads of the polled posts", || async {
        let filter = LeadFilter {
            task: Some(t.id),
            limit: 10,
            ..Default::default()
        };
        let leads = r.leads.list_leads(&r.owner, &filter).await.ok()?;
        (leads.len() == 2).then_some(leads)
    })
    .await;
    assert!(found.iter().all(|l| l.source_id == s.id));
    let mut ids: Vec<i64> = found.iter().map(|l| l.tg_message_id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![first, second],
        "the post before the task is not read"
    );
    assert!(
        calls(app, &r.user, "messages.getHistory") <= 4,
        "a starting point and a poll or two, not a loop"
    );
    one_client(app, &r);
}

async fn the_channel_cap_fails_a_source_once(app: &TestApp) {
    let r = reader(app, "+15557000003").await;
    channel(app, "Popular", Some("popular_jobs"));
    app.sim.set_channel_count(r.user.id, 500).unwrap();
    let t = task(app, &r, "Capped", true, &["@popular_jobs"]).await;
    let s = source_when(
        &r,
        &t,
        "@popular_jobs",
        30,
        "the capped source to fail",
        |s| s.state == SourceState::Failed,
    )
    .await;
    assert_eq!(s.failure.as_deref(), Some("channels_too_much"));
    // Wake-ups in parallel, and time: no second join.
    let wakes = (0..20).map(|_| async { app.running.monitor.tasks_changed(Some(r.account)) });
    futures_util::future::join_all(wakes).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.running.monitor.tasks_changed(Some(r.account));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls(app, &r.user, "channels.joinChannel"), 1);
    let s = r.leads.task_sources(&r.owner, t.id).await.unwrap();
    assert_eq!(s[0].state, SourceState::Failed);
}

async fn a_flood_waited_resolution_waits_and_resumes(app: &TestApp) {
    let r = reader(app, "+15557000004").await;
    channel(app, "Slow", Some("slow_channel_jobs"));
    // grammers sleeps through the first short wait once; the second reaches the monitor.
    app.sim
        .flood_wait(Some(r.user.id), "contacts.resolveUsername", 6, 2);
    let asked = Timestamp::now();
    let t = task(app, &r, "Flooded", false, &["@slow_channel_jobs"]).await;
    let s = source_when(&r, &t, "@slow_channel_jobs", 30, "flood_wait", |s| {
        s.state == SourceState::FloodWait
    })
    .await;
    let until = s.wait_until.expect("flood_wait has its time");
    assert!(
        until.0 >= asked.0 + 5_000 && until.0 <= Timestamp::now().0 + 7_000,
        "waits about 6 s: {until:?}"
    );
    // The account's health shows the wait too (the monitor reads through its one client).
    let admin = app.login("admin", PASSWORD).await;
    let health = eventually(5, "the account's health to show the wait", || async {
        let v: serde_json::Value = admin.get("/api/v1/accounts").await.json().await.ok()?;
        let a = v["accounts"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == r.account.0)?
            .clone();
        (a["status"] == "flood_wait").then_some(a)
    })
    .await;
    assert!(
        health["flood_wait_until"].as_i64().unwrap() >= until.0 - 1_000,
        "{health}"
    );
    let s = source_when(
        &r,
        &t,
        "@slow_channel_jobs",
        30,
        "the source to resume",
        |s| s.state == SourceState::Polled,
    )
    .await;
    assert!(s.wait_until.is_none());
    assert!(
        Timestamp::now().0 >= until.0,
        "not resolved again before the wait ended"
    );
    assert_eq!(calls(app, &r.user, "contacts.resolveUsername"), 3);
}

async fn resolutions_stay_within_twenty_a_minute(app: &TestApp) {
    let r = reader(app, "+15557000005").await;
    let names: Vec<String> = (0..25).map(|i| format!("paced_jobs_{i:02}")).collect();
    for n in &names {
        channel(app, n, Some(n));
    }
    let refs: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let started = tokio::time::Instant::now();
    task(app, &r, "Many", false, &refs).await;
    // Wake the worker from many places at once, again and again, for 12 s.
    while started.elapsed() < Duration::from_secs(12) {
        let wakes = (0..10).map(|_| async { app.running.monitor.tasks_changed(Some(r.account)) });
        futures_util::future::join_all(wakes).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let n = calls(app, &r.user, "contacts.resolveUsername");
    // At least 3 s between two resolutions: at most 5 in 12 s (20 a minute), whatever the
    // wake-ups.
    assert!((2..=5).contains(&n), "{n} resolutions in 12 s");
    let sources = r.leads.watched_sources(r.account).await.unwrap();
    let resolved = sources
        .iter()
        .filter(|w| w.source.state == SourceState::Polled)
        .count();
    // A resolution in flight is counted by tgsim before it is stored.
    let resolved = u64::try_from(resolved).unwrap();
    assert!(resolved <= n && resolved + 1 >= n, "{resolved} of {n}");
    one_client(app, &r);
}

/// 120 channels the account is a member of (more than two resolving batches of 50): all are
/// found in its dialogs, so they are all `joined` within seconds, with no
/// `contacts.resolveUsername` and no `messages.getHistory` for their start points — the next
/// batch is taken at once while the dialog list just read is fresh, not a pass (30 s) later.
async fn many_sources_among_the_dialogs_start_at_once_without_a_call_each(app: &TestApp) {
    let r = reader(app, "+15557000009").await;
    let names: Vec<String> = (0..120).map(|i| format!("member_jobs_{i:03}")).collect();
    for n in &names {
        app.sim
            .create_channel(tgsim::NewChannel {
                title: n.clone(),
                username: Some(n.clone()),
                members: vec![r.user.id],
                ..Default::default()
            })
            .unwrap();
    }
    let refs: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let task = task(app, &r, "Members", false, &refs).await;
    eventually(20, "every source joined", || async {
        let sources = r.leads.task_sources(&r.owner, task.id).await.ok()?;
        (sources.len() == 120 && sources.iter().all(|s| s.state == SourceState::Joined))
            .then_some(())
    })
    .await;
    assert_eq!(calls(app, &r.user, "contacts.resolveUsername"), 0);
    assert_eq!(calls(app, &r.user, "messages.getHistory"), 0);
    one_client(app, &r);
}

async fn posts_made_while_the_server_was_down_are_swept_after_a_restart(app: TestApp) -> TestApp {
    let r = reader(&app, "+15557000006").await;
    let feed = channel(&app, "Quiet", Some("quiet_rust_jobs"));
    // A large channel: Telegram pushes none of its posts.
    app.sim
        .set_channel_options(
            channel_id(&feed),
            tgsim::ChannelOptions {
                push_every: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    let t = task(&app, &r, "Swept", true, &["@quiet_rust_jobs"]).await;
    let s = source_when(&r, &t, "@quiet_rust_jobs", 30, "a joined source", |s| {
        s.state == SourceState::Joined && s.checked_at.is_some()
    })
    .await;
    let start_pts = s.pts.expect("a pts");
    let leads = Arc::clone(&r.leads);
    let (owner, task_id) = (r.owner, t.id);
    let (sim, feed_id) = (app.sim.clone(), channel_id(&feed));
    let app = app
        .restart_with(|| async move {
            for i in 0..3 {
                sim.post_to_channel(
                    feed_id,
                    tgsim::OutgoingMessage::text(format!("Rust job {i}")),
                )
                .unwrap();
            }
        })
        .await;
    let last = i64::from(app.sim.channel(feed_id).unwrap().last_id);
    let s = eventually(30, "the sweep to read the posts", || async {
        let sources = leads.task_sources(&owner, task_id).await.ok()?;
        sources
            .into_iter()
            .find(|s| s.last_message_id >= last && s.pts.is_some_and(|p| p > start_pts))
    })
    .await;
    assert_eq!(s.last_message_id, last);
    assert_eq!(s.state, SourceState::Joined);
    assert!(calls(&app, &r.user, "updates.getChannelDifference") >= 1);
    app
}

/// Moves a source's last change back by two hours, as if it had failed that long ago (the
/// re-check waits an hour; the test does not).
async fn fail_long_ago(app: &TestApp, source: &Source) {
    let stores = app.stores().expect("the test's database");
    let n = stores
        .execute(&format!(
            "UPDATE lead_sources SET updated_at = updated_at - 7200000 WHERE id = {}",
            source.id.0
        ))
        .await;
    assert_eq!(n, 1);
}

async fn a_failed_source_is_retried_by_the_user_and_rechecked_when_it_can_pass(app: &TestApp) {
    let r = reader(app, "+15557000006").await;
    let admin = app.login("admin", PASSWORD).await;
    app.sim.set_channel_count(r.user.id, 500).unwrap();
    channel(app, "Capped", Some("capped_jobs_r"));
    let t = task(app, &r, "Retry", true, &["@capped_jobs_r"]).await;
    // Read without joining (the account is at its cap).
    let t_later = task(app, &r, "Later", false, &["@later_jobs_r"]).await;
    let capped = source_when(&r, &t, "@capped_jobs_r", 30, "the cap", |s| {
        s.failure.as_deref() == Some("channels_too_much")
    })
    .await;
    let later = source_when(
        &r,
        &t_later,
        "@later_jobs_r",
        30,
        "an unknown username",
        |s| s.failure.as_deref() == Some("username_not_occupied"),
    )
    .await;
    assert_eq!(calls(app, &r.user, "channels.joinChannel"), 1);

    // An hour later (as far as the monitor can tell): the username that can be taken is
    // resolved again, and is now a channel; the cap is not tried again.
    channel(app, "Later", Some("later_jobs_r"));
    fail_long_ago(app, &capped).await;
    fail_long_ago(app, &later).await;
    app.running.monitor.tasks_changed(Some(r.account));
    let later = source_when(&r, &t_later, "@later_jobs_r", 60, "the re-check", |s| {
        s.state == SourceState::Polled
    })
    .await;
    assert!(later.failure.is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = r.leads.task_sources(&r.owner, t.id).await.unwrap();
    let still = s.iter().find(|s| s.id == capped.id).unwrap();
    assert_eq!(still.failure.as_deref(), Some("channels_too_much"));
    assert_eq!(
        calls(app, &r.user, "channels.joinChannel"),
        1,
        "the cap is never retried by itself"
    );

    // The user makes room and retries: an operator may not, another task's id does not name
    // it, parallel retries join it once.
    app.sim.set_channel_count(r.user.id, 10).unwrap();
    let path = format!("/api/v1/tasks/{}/sources/{}/retry", t.id.0, capped.id.0);
    let operator = app.login("operator", PASSWORD).await;
    let res = operator.post(&path, &serde_json::json!({})).await;
    assert_eq!(res.status(), 403);
    let other = task(app, &r, "Other", false, &["@later_jobs_r"]).await;
    let res = admin
        .post(
            &format!("/api/v1/tasks/{}/sources/{}/retry", other.id.0, capped.id.0),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 404);
    let empty = serde_json::json!({});
    let retries = (0..4).map(|_| admin.post(&path, &empty));
    for res in futures_util::future::join_all(retries).await {
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["source"]["id"], capped.id.0);
    }
    source_when(
        &r,
        &t,
        "@capped_jobs_r",
        60,
        "the retried source to join",
        |s| s.state == SourceState::Joined,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        calls(app, &r.user, "channels.joinChannel"),
        2,
        "joined once"
    );
    let v: serde_json::Value = admin
        .get("/api/v1/audit?limit=50")
        .await
        .json()
        .await
        .unwrap();
    let retried = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "leads.source_retried")
        .count();
    assert!(
        (1..=4).contains(&retried),
        "each retry that found it failed is audited: {retried}"
    );
    one_client(app, &r);
}
