//! Lead monitoring at run time, end to end on tgsim: posts of a channel an account reads reach
//! the matching engine through the account's update stream (also with `ingest_groups` off,
//! without the channel entering the inbox), matching posts become one lead each (stored and
//! announced as `lead_found` over the WebSocket), forwards, albums and copy-paste reposts give
//! no second lead, minus words suppress, edits lead only for terms they add, task changes take
//! effect without a restart, and posts made while the server was down are found exactly once
//! after it starts again. Sources are put into the store as joined (what the sources worker
//! does after resolving and joining), so these tests do not depend on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::Arc;
use switchboard_domain::{
    AccountId, DEFAULT_INSTANT_CAP, DeliveryMode, DeliveryTarget, Lead, LeadAuthor, LeadFilter,
    LeadStore, Post, ReadVia, ResolvedSource, Role, Source, SourceRef, SourceState, TaskId,
    TaskSpec, Timestamp, UserId, Viewer,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::live::{connect_personal_account, eventually, open_ws, wait_frame};
use switchboard_tests::{app_tests, restarting_app_tests};
use tgsim::{ChannelId, MediaKind, MediaUpload, NewChannel, OutgoingMessage, Peer};

app_tests!(
    a_post_in_a_joined_source_gives_one_lead_without_entering_the_inbox,
    forwards_albums_and_reposts_give_no_second_lead,
    minus_words_suppress_and_edits_lead_only_for_new_terms,
    task_changes_take_effect_without_a_restart,
    a_post_read_before_the_rebuild_is_matched_by_the_new_task,
);

restarting_app_tests!(posts_made_while_the_server_is_down_are_found_once_after_it_starts);

/// A vacancy of about a hundred words, long enough for SimHash to recognise a copy.
const VACANCY: &str = "Ищем Rust-разработчика в команду платёжной платформы. Удалённо или офис \
    в Москве, полный день. Задачи: развитие сервисов обработки платежей на Rust и Tokio, \
    проектирование API, работа с PostgreSQL и Kafka, код-ревью, участие в дежурствах. \
    Требования: опыт коммерческой разработки от двух лет, уверенное знание Rust, понимание \
    асинхронного программирования, опыт работы с реляционными базами данных, умение писать \
    тесты. Будет плюсом: опыт с Kubernetes, знание Go или C++, open source проекты. Мы \
    предлагаем: зарплату по итогам собеседования, оформление по ТК, гибкий график, \
    компенсацию обучения и конференций, современное оборудование, дружную команду и \
    интересные задачи. Откликайтесь в личные сообщения, пришлите резюме и ссылку на GitHub.";

/// What the tests of one server share: the reading account, the owner as a viewer, the store.
struct Monitored {
    user: tgsim::UserInfo,
    account: AccountId,
    viewer: Viewer,
    leads: Arc<dyn LeadStore>,
    admin: Browser,
}

async fn monitored(app: &TestApp, phone: &str) -> Monitored {
    let admin = app.login("admin", PASSWORD).await;
    let (user, account) = connect_personal_account(app, &admin, phone, "Reader").await;
    let viewer = Viewer {
        workspace: app.workspace,
        user: UserId(admin.me["id"].as_i64().unwrap()),
        role: Role::Owner,
    };
    Monitored {
        user,
        account: AccountId(account),
        viewer,
        leads: Arc::clone(app.running.monitor.store()),
        admin,
    }
}

/// A public channel the reader is a member of; its Bot-API id.
fn channel(app: &TestApp, m: &Monitored, title: &str, username: &str) -> (ChannelId, i64) {
    let info = app
        .sim
        .create_channel(NewChannel {
            title: title.into(),
            username: Some(username.into()),
            members: vec![m.user.id],
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(id) = info.peer else {
        panic!("not a channel: {:?}", info.peer)
    };
    (id, info.bot_api_chat_id)
}

/// Creates an active instant task over the channels `(username, bot api id)`, with its sources
/// resolved as joined, tells the monitor and waits until the matcher has it.
async fn task(
    app: &TestApp,
    m: &Monitored,
    name: &str,
    query: &str,
    channels: &[(&str, i64)],
) -> (TaskId, Vec<Source>) {
    let made = task_told(app, m, name, query, channels).await;
    app.running.monitor.engine().rebuilt().await;
    made
}

/// [`task`] without waiting for the rebuild: the matcher may not have the task yet.
async fn task_told(
    app: &TestApp,
    m: &Monitored,
    name: &str,
    query: &str,
    channels: &[(&str, i64)],
) -> (TaskId, Vec<Source>) {
    let t = m
        .leads
        .create_task(&m.viewer, &spec(m, name, query), Timestamp::now())
        .await
        .unwrap();
    let refs: Vec<SourceRef> = channels
        .iter()
        .map(|(u, _)| SourceRef::parse(&format!("@{u}")).unwrap())
        .collect();
    let sources = m
        .leads
        .set_task_sources(&m.viewer, t.id, &refs, Timestamp::now())
        .await
        .unwrap();
    let mut resolved = Vec::new();
    for s in sources {
        let (_, peer) = channels
            .iter()
            .find(|(u, _)| *u == s.key)
            .expect("a source of the task");
        let r = ResolvedSource {
            channel_id: *peer,
            access_hash: None,
            title: s.key.clone(),
            state: SourceState::Joined,
            read_via: ReadVia::Updates,
            joined_by_us: false,
        };
        resolved.push(
            m.leads
                .set_source_resolved(s.id, &r, Timestamp::now())
                .await
                .unwrap(),
        );
    }
    app.running.monitor.tasks_changed(Some(m.account));
    (t.id, resolved)
}

fn spec(m: &Monitored, name: &str, query: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        query: query.into(),
        account: m.account,
        target: DeliveryTarget::SavedMessages,
        mode: DeliveryMode::Instant,
        instant_cap_per_minute: DEFAULT_INSTANT_CAP,
        ignore_forwards: false,
        join_allowed: true,
        leave_unused: false,
    }
}

fn post(app: &TestApp, channel: ChannelId, text: &str) -> i64 {
    i64::from(
        app.sim
            .post_to_channel(channel, OutgoingMessage::text(text))
            .unwrap()
            .id,
    )
}

/// The leads of a task, oldest first.
async fn leads_of(m: &Monitored, task: TaskId) -> Vec<Lead> {
    let filter = LeadFilter {
        task: Some(task),
        limit: 1000,
        ..Default::default()
    };
    let mut leads = m.leads.list_leads(&m.viewer, &filter).await.unwrap();
    leads.reverse();
    leads
}

/// Waits until the engine handled message `id` of `source` (its high-water mark reached it):
/// whatever it was going to find in it is stored by then.
async fn handled(m: &Monitored, task: TaskId, source: &Source, id: i64) {
    eventually(30, &format!("message {id} to be handled"), || async {
        let sources = m.leads.task_sources(&m.viewer, task).await.ok()?;
        sources
            .iter()
            .any(|s| s.id == source.id && s.last_message_id >= id)
            .then_some(())
    })
    .await;
}

/// Waits until the task has `n` leads and returns them.
async fn wait_leads(m: &Monitored, task: TaskId, n: usize) -> Vec<Lead> {
    eventually(30, &format!("{n} leads"), || async {
        let leads = leads_of(m, task).await;
        (leads.len() >= n).then_some(leads)
    })
    .await
}

async fn a_post_in_a_joined_source_gives_one_lead_without_entering_the_inbox(app: &TestApp) {
    let m = monitored(app, "+15558100").await;
    let (jobs, jobs_peer) = channel(app, &m, "Rust jobs", "rust_jobs_a");
    let (t, sources) = task(
        app,
        &m,
        "Rust",
        "rust (удалённо | remote)",
        &[("rust_jobs_a", jobs_peer)],
    )
    .await;
    // A task of the same account with the same words on another channel: the posts above are
    // not its leads.
    let (elsewhere_chan, elsewhere_peer) = channel(app, &m, "Elsewhere", "elsewhere_a");
    let (elsewhere, _) = task(
        app,
        &m,
        "Elsewhere",
        "rust",
        &[("elsewhere_a", elsewhere_peer)],
    )
    .await;
    let mut ws = open_ws(app, &m.admin, None).await.unwrap();
    wait_frame(&mut ws, "hello", 5, |_| true).await;

    let miss = post(app, jobs, "Ищем Go-разработчика, удалённо");
    let hit = post(app, jobs, "Rust developer, remote, 300k");
    let frame = wait_frame(&mut ws, "lead_found", 30, |_| true).await;
    let lead: &Value = &frame["data"]["lead"];
    assert_eq!(lead["task_id"], t.0);
    assert_eq!(lead["tg_message_id"], hit);
    assert_eq!(lead["link"], format!("https://t.me/rust_jobs_a/{hit}"));
    assert_eq!(lead["terms"], serde_json::json!(["remote", "rust"]));
    assert_eq!(lead["text"], "Rust developer, remote, 300k");
    assert_eq!(lead["author"]["username"], "rust_jobs_a");
    assert!(lead["snippet"].as_str().unwrap().contains("Rust"));

    handled(&m, t, &sources[0], hit).await;
    let leads = leads_of(&m, t).await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0].tg_message_id, hit);
    assert_eq!(leads[0].revision, 0);
    assert!(
        leads[0].delivery_id.is_some(),
        "queued for instant delivery"
    );
    assert!(miss < hit);

    // The account does not store group chats (the default): the channel stays out of the
    // inbox, while its posts were matched above.
    let chats: Value = m
        .admin
        .get(&format!("/api/v1/accounts/{}/chats", m.account.0))
        .await
        .json()
        .await
        .unwrap();
    let chats = chats["chats"].as_array().cloned().unwrap_or_default();
    assert!(
        chats.iter().all(|c| c["title"] != "Rust jobs"),
        "the channel entered the inbox: {chats:?}"
    );
    // A chat no task watches costs nothing and gives nothing.
    let (other, _) = channel(app, &m, "Other", "other_chan_a");
    let _ = post(app, other, "Rust developer, remote");
    let last = post(app, jobs, "nothing to see here");
    handled(&m, t, &sources[0], last).await;
    assert_eq!(leads_of(&m, t).await.len(), 1);
    assert!(
        leads_of(&m, elsewhere).await.is_empty(),
        "a task matched a post of a source it does not watch"
    );
    let _ = post(app, elsewhere_chan, "Rust, elsewhere");
    assert_eq!(wait_leads(&m, elsewhere, 1).await.len(), 1);
}

fn photo(name: &str, caption: &str) -> OutgoingMessage {
    OutgoingMessage {
        text: caption.into(),
        media: Some(MediaUpload {
            kind: MediaKind::Photo,
            data: vec![0xff, 0xd8, 0xff, 0xe0, name.len() as u8],
            file_name: Some(name.into()),
            mime: None,
        }),
        ..Default::default()
    }
}

async fn forwards_albums_and_reposts_give_no_second_lead(app: &TestApp) {
    let m = monitored(app, "+15558200").await;
    let (a, a_peer) = channel(app, &m, "Jobs A", "jobs_a_fwd");
    let (b, b_peer) = channel(app, &m, "Jobs B", "jobs_b_fwd");
    let (t, sources) = task(
        app,
        &m,
        "Rust",
        "rust",
        &[("jobs_a_fwd", a_peer), ("jobs_b_fwd", b_peer)],
    )
    .await;
    let source_b = sources.iter().find(|s| s.key == "jobs_b_fwd").unwrap();

    let original = post(app, a, VACANCY);
    let leads = wait_leads(&m, t, 1).await;
    assert_eq!(leads[0].tg_message_id, original);

    // The same post forwarded to the second channel.
    let fwd = app
        .sim
        .forward_post(b, a, i32::try_from(original).unwrap())
        .unwrap();
    // An album: every item carries the caption.
    let album = app
        .sim
        .post_album(
            b,
            vec![
                photo("a.jpg", "Rust meetup photos, part one"),
                photo("b.jpg", "Rust meetup photos, part two"),
            ],
        )
        .unwrap();
    // A copy-paste repost with a prefix and different punctuation.
    let repost = post(app, b, &format!("🔥🔥 {} 🔥", VACANCY.replace(", ", " , ")));
    handled(&m, t, source_b, repost).await;

    let leads = leads_of(&m, t).await;
    let ids: Vec<(i64, i64)> = leads
        .iter()
        .map(|l| (l.source_id.0, l.tg_message_id))
        .collect();
    assert_eq!(
        leads.len(),
        2,
        "the original and one album item only: {ids:?} (forward {}, album {:?}, repost {repost})",
        fwd.id,
        album.messages
    );
    assert_eq!(leads[1].source_id, source_b.id);
    assert_eq!(leads[1].grouped_id, Some(album.grouped_id));
    assert_eq!(
        i32::try_from(leads[1].tg_message_id).unwrap(),
        album.messages[0].id
    );
}

async fn minus_words_suppress_and_edits_lead_only_for_new_terms(app: &TestApp) {
    let m = monitored(app, "+15558300").await;
    let (c, peer) = channel(app, &m, "Jobs", "jobs_edits");
    let (t, sources) = task(
        app,
        &m,
        "Rust or Go",
        "(rust | go) -senior",
        &[("jobs_edits", peer)],
    )
    .await;
    let source = &sources[0];

    let senior = post(app, c, "Senior Rust developer");
    let python = post(app, c, "Python developer wanted");
    handled(&m, t, source, python).await;
    assert!(
        leads_of(&m, t).await.is_empty(),
        "the minus word suppressed it"
    );

    // An edit that makes a post match gives a lead (a revision of the message).
    app.sim
        .edit_post(
            c,
            i32::try_from(python).unwrap(),
            "Rust developer wanted".into(),
            None,
        )
        .unwrap();
    let leads = wait_leads(&m, t, 1).await;
    assert_eq!(leads[0].tg_message_id, python);
    assert!(
        leads[0].revision > 0,
        "an edit's lead carries its edit date"
    );
    assert_eq!(leads[0].terms, vec!["rust"]);

    // An edit that matches nothing new gives none.
    app.sim
        .edit_post(
            c,
            i32::try_from(python).unwrap(),
            "Rust developer wanted, remote".into(),
            None,
        )
        .unwrap();
    // An edit that adds a term gives a lead with that term only.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.sim
        .edit_post(
            c,
            i32::try_from(python).unwrap(),
            "Rust or Go developer wanted, remote".into(),
            None,
        )
        .unwrap();
    let leads = wait_leads(&m, t, 2).await;
    assert_eq!(leads[1].terms, vec!["go"]);
    // A later post, handled after the edits, shows nothing else came of them.
    let last = post(app, c, "senior go");
    handled(&m, t, source, last).await;
    let leads = leads_of(&m, t).await;
    assert_eq!(leads.len(), 2, "{leads:?}");
    assert!(leads.iter().all(|l| l.tg_message_id != senior));
    // Removing the minus word by an edit lets the senior post through.
    app.sim
        .edit_post(
            c,
            i32::try_from(senior).unwrap(),
            "Rust developer".into(),
            None,
        )
        .unwrap();
    let leads = wait_leads(&m, t, 3).await;
    assert_eq!(leads[2].tg_message_id, senior);
}

/// A new task's source can be read before the matcher that knows the task is swapped in (the
/// rebuild coalesces for 50 ms; resolving a source from the dialogs is faster). A post read in
/// that window is matched by the new task, not passed over (its high-water mark would move past
/// it for good).
async fn a_post_read_before_the_rebuild_is_matched_by_the_new_task(app: &TestApp) {
    let m = monitored(app, "+15558140").await;
    let (_, peer) = channel(app, &m, "Fresh jobs", "fresh_jobs_r");
    let engine = app.running.monitor.engine();
    let (t, _) = task_told(app, &m, "Fresh", "rust", &[("fresh_jobs_r", peer)]).await;
    let post = Post {
        peer_id: peer,
        tg_message_id: 7,
        edit_date: None,
        posted_at: Timestamp::now(),
        text: "Rust developer wanted".into(),
        author: LeadAuthor::default(),
        is_forward: false,
        forward_origin: None,
        grouped_id: None,
    };
    let leads = engine.handle(m.account, &[post]).await.unwrap();
    assert_eq!(leads.len(), 1, "the post read before the rebuild is a lead");
    assert_eq!(leads[0].task_id, t);
    assert_eq!(leads_of(&m, t).await.len(), 1);
}

async fn task_changes_take_effect_without_a_restart(app: &TestApp) {
    let m = monitored(app, "+15558400").await;
    let (c, peer) = channel(app, &m, "Jobs", "jobs_changes");
    let (t, sources) = task(app, &m, "Rust", "rust", &[("jobs_changes", peer)]).await;
    // A second task keeps the channel watched while the first is paused, so its high-water
    // mark shows when a post was handled.
    let (kotlin, _) = task(app, &m, "Kotlin", "kotlin", &[("jobs_changes", peer)]).await;
    let source = &sources[0];
    let first = post(app, c, "Rust developer");
    wait_leads(&m, t, 1).await;

    // Paused: nothing is found.
    m.leads
        .set_task_active(&m.viewer, t, false, Timestamp::now())
        .await
        .unwrap();
    app.running.monitor.tasks_changed(Some(m.account));
    app.running.monitor.engine().rebuilt().await;
    let paused = post(app, c, "Rust developer, paused");
    handled(&m, kotlin, source, paused).await;
    assert_eq!(leads_of(&m, t).await.len(), 1, "a paused task found a lead");
    m.leads
        .set_task_active(&m.viewer, t, true, Timestamp::now())
        .await
        .unwrap();
    app.running.monitor.tasks_changed(Some(m.account));
    app.running.monitor.engine().rebuilt().await;
    let resumed = post(app, c, "Rust developer, resumed");
    let leads = wait_leads(&m, t, 2).await;
    assert_eq!(
        leads.iter().map(|l| l.tg_message_id).collect::<Vec<_>>(),
        vec![first, resumed],
        "the post made while paused ({paused}) gave no lead"
    );

    // The query changes from rust to go.
    m.leads
        .update_task(&m.viewer, t, &spec(&m, "Rust", "go"), Timestamp::now())
        .await
        .unwrap();
    app.running.monitor.tasks_changed(Some(m.account));
    app.running.monitor.engine().rebuilt().await;
    let old_term = post(app, c, "Rust developer, after the change");
    let new_term = post(app, c, "Go developer, after the change");
    let leads = wait_leads(&m, t, 3).await;
    handled(&m, t, source, new_term).await;
    let leads_now = leads_of(&m, t).await;
    assert_eq!(leads_now.len(), 3, "{leads_now:?}");
    assert_eq!(leads[2].tg_message_id, new_term);
    assert_eq!(leads[2].terms, vec!["go"]);
    assert!(old_term < new_term);
}

async fn posts_made_while_the_server_is_down_are_found_once_after_it_starts(
    app: TestApp,
) -> TestApp {
    let m = monitored(&app, "+15558500").await;
    let (c, peer) = channel(&app, &m, "Jobs", "jobs_restart");
    // Here the sources worker resolves the channel: its sweep reads what was posted while the
    // server was down, from the channel's `pts` it records.
    let _ = peer;
    let t = m
        .leads
        .create_task(&m.viewer, &spec(&m, "Rust", "rust"), Timestamp::now())
        .await
        .unwrap()
        .id;
    m.leads
        .set_task_sources(
            &m.viewer,
            t,
            &[SourceRef::parse("@jobs_restart").unwrap()],
            Timestamp::now(),
        )
        .await
        .unwrap();
    app.running.monitor.tasks_changed(Some(m.account));
    app.running.monitor.engine().rebuilt().await;
    let sources = eventually(60, "the source to be joined", || async {
        let s = m.leads.task_sources(&m.viewer, t).await.ok()?;
        (s[0].state == SourceState::Joined && s[0].pts.is_some()).then_some(s)
    })
    .await;
    let before = post(&app, c, "Rust developer, before the stop");
    wait_leads(&m, t, 1).await;
    handled(&m, t, &sources[0], before).await;
    // A second batch: the account's saved update state covers the channel from here on (a
    // batch's own trailing state is saved with the next one).
    let second = post(&app, c, "Go developer, before the stop");
    handled(&m, t, &sources[0], second).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let sim = app.sim.clone();
    let posted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&posted);
    let app = app
        .restart_with(move || async move {
            for i in 0..50 {
                let text = if i % 2 == 0 {
                    format!("Rust developer #{i}")
                } else {
                    format!("Go developer #{i}")
                };
                let id = sim
                    .post_to_channel(c, OutgoingMessage::text(text))
                    .unwrap()
                    .id;
                record.lock().unwrap().push(i64::from(id));
            }
        })
        .await;
    let posted = posted.lock().unwrap().clone();
    let m = Monitored {
        leads: Arc::clone(app.running.monitor.store()),
        ..m
    };
    let last = *posted.last().unwrap();
    handled(&m, t, &sources[0], last).await;
    let leads = wait_leads(&m, t, 26).await;
    let mut ids: Vec<i64> = leads.iter().map(|l| l.tg_message_id).collect();
    ids.sort_unstable();
    let mut want: Vec<i64> = std::iter::once(before)
        .chain(posted.iter().step_by(2).copied())
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want, "each matching post exactly once");
    // And once more: another restart finds nothing new.
    let app = app.restart().await;
    let m = Monitored {
        leads: Arc::clone(app.running.monitor.store()),
        ..m
    };
    let after = post(&app, c, "Go developer, after the second restart");
    handled(&m, t, &sources[0], after).await;
    assert_eq!(leads_of(&m, t).await.len(), 26);
    app
}
