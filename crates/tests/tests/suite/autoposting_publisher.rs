//! The autoposting publisher end to end, on both backends: posts saved through the
//! `ScheduleStore` (as the API saves them) are published by the server's `publisher` worker to
//! a channel in tgsim — once, with their media, albums grouped, through a bot's `retry_after`
//! and an account's `FLOOD_WAIT` (short ones slept through, long ones rescheduled), refused
//! with a clear code for a bot without rights, a recurring post once per tick — and missed or
//! published after a restart depending on their grace period; a restart takes up at once the
//! runs its own crashed process left `publishing`, posting nothing twice; follow-ups pin,
//! unpin and delete the post. What the channel holds is read through tgsim's control API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_domain::{
    AccountId, BotId, FollowUps, MediaKind, PostContent, PostMedia, PostRun, PostSender, PostSpec,
    PostTarget, Role, RunFilter, RunStatus, Schedule, ScheduledPost, Timestamp, UserId, Viewer,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::db::Stores;
use switchboard_tests::live::{
    connect_personal_account, eventually, noise_png, upload_file, utc_in,
};
use switchboard_tests::{app_tests, restarting_app_tests};
use tgsim::{AdminRights, ChannelId, Peer};

app_tests!(
    a_post_scheduled_ahead_appears_once_with_its_media,
    an_album_arrives_grouped,
    a_bot_without_rights_fails_with_a_clear_error,
    a_bots_retry_after_delays_without_loss,
    an_accounts_flood_wait_delays_without_loss,
    a_recurring_post_runs_on_each_tick,
    pin_for_n_hours_unpins_and_delete_after_n_hours_removes,
);

restarting_app_tests!(
    a_run_missed_past_its_grace_is_missed_and_within_it_published,
    a_restart_in_the_middle_of_publishing_posts_once,
    a_bots_run_cut_off_by_a_crash_ends_send_uncertain_at_once,
);

/// The admin signed in, as a viewer of the workspace.
struct Owner {
    admin: Browser,
    viewer: Viewer,
    db: Stores,
}

async fn owner(app: &TestApp) -> Owner {
    let admin = app.login("admin", PASSWORD).await;
    let viewer = Viewer {
        workspace: app.workspace,
        user: UserId(admin.me["id"].as_i64().unwrap()),
        role: Role::Owner,
    };
    Owner {
        admin,
        viewer,
        db: app.stores().unwrap(),
    }
}

/// A public channel in tgsim where `poster` may post (and edit and pin).
fn channel(app: &TestApp, username: &str, poster: tgsim::UserId) -> (ChannelId, PostTarget) {
    let info = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: format!("Channel {username}"),
            username: Some(username.into()),
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(id) = info.peer else {
        panic!("not a channel")
    };
    let view = app
        .sim
        .set_channel_admin(
            id,
            poster,
            Some(AdminRights {
                post_messages: true,
                edit_messages: true,
                ..Default::default()
            }),
        )
        .unwrap();
    let target = PostTarget {
        peer_id: Peer::Channel(id).bot_api_id(),
        title: view.title,
        username: view.username,
        access_hash: Some(view.access_hash),
    };
    (id, target)
}

/// A connected personal account and its tgsim user.
async fn account(app: &TestApp, o: &Owner, phone: &str) -> (tgsim::UserInfo, PostSender) {
    let (user, id) = connect_personal_account(app, &o.admin, phone, "Poster").await;
    (
        user,
        PostSender::Account {
            account: AccountId(id),
        },
    )
}

/// A bot of the workspace and its tgsim user.
async fn bot(app: &TestApp, o: &Owner, username: &str) -> (tgsim::UserInfo, PostSender) {
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: username.into(),
            first_name: "Poster bot".into(),
            token: None,
        })
        .unwrap();
    let res = o
        .admin
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    (bot, PostSender::Bot { bot: BotId(id) })
}

/// A once schedule `secs` from now (in the `UTC` zone).
fn in_secs(secs: i64) -> Schedule {
    Schedule::Once { at: utc_in(secs) }
}

fn spec(
    sender: PostSender,
    target: &PostTarget,
    text: &str,
    media: Vec<PostMedia>,
    schedule: Schedule,
) -> PostSpec {
    PostSpec {
        sender,
        target: target.clone(),
        content: PostContent {
            text: text.into(),
            entities: Vec::new(),
            media,
            link_preview: false,
            silent: true,
        },
        schedule,
        time_zone: "UTC".into(),
        grace_minutes: 15,
        draft: false,
        follow_ups: FollowUps::default(),
    }
}

async fn create(o: &Owner, spec: &PostSpec) -> ScheduledPost {
    o.db.schedule
        .create_post(&o.viewer, spec, rand_seed(), Timestamp::now())
        .await
        .unwrap()
}

fn rand_seed() -> i64 {
    fastrand::i64(..)
}

/// A photo uploaded to the workspace's file store.
async fn photo(o: &Owner, name: &str, seed: usize) -> PostMedia {
    let res = upload_file(&o.admin, name, "image/png", noise_png(1000 + seed)).await;
    assert_eq!(res.status(), 201, "upload");
    let file: Value = res.json().await.unwrap();
    PostMedia {
        file_id: file["file_id"].as_str().unwrap().to_string(),
        kind: MediaKind::Photo,
        file_name: Some(name.into()),
        mime_type: Some("image/png".into()),
    }
}

async fn runs(db: &Stores, viewer: &Viewer, post: &ScheduledPost) -> Vec<PostRun> {
    db.schedule
        .list_runs(
            viewer,
            &RunFilter {
                post: Some(post.id),
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// Waits until a run of `post` has `status`.
async fn run_with(o: &Owner, post: &ScheduledPost, status: RunStatus, secs: u64) -> PostRun {
    eventually(secs, &format!("a run {status:?}"), || async {
        runs(&o.db, &o.viewer, post)
            .await
            .into_iter()
            .find(|r| r.status == status)
    })
    .await
}

/// The channel's posts with text or media (not the service message of its creation).
fn posts(app: &TestApp, ch: ChannelId) -> Vec<tgsim::MessageView> {
    app.sim
        .channel_posts(ch)
        .unwrap()
        .into_iter()
        .filter(|m| !m.text.is_empty() || m.media.is_some())
        .collect()
}

async fn a_post_scheduled_ahead_appears_once_with_its_media(app: &TestApp) {
    let o = owner(app).await;
    let (user, sender) = account(app, &o, "+15558100001").await;
    let (ch, target) = channel(app, "pub_once1", user.id);
    let media = vec![photo(&o, "offer.png", 1).await];
    let started = Instant::now();
    let post = create(
        &o,
        &spec(sender, &target, "Offer of the day", media, in_secs(3)),
    )
    .await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "published at its time, not before ({:?})",
        started.elapsed()
    );
    let list = posts(app, ch);
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(m.text, "Offer of the day");
    assert!(m.silent && m.media.is_some());
    assert_eq!(run.message_ids, vec![i64::from(m.id)]);
    assert_eq!(
        run.link.as_deref(),
        Some(format!("https://t.me/pub_once1/{}", m.id).as_str())
    );
    // Nothing else follows: a once post is finished and posted once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(posts(app, ch).len(), 1);
    let calls = app.sim.account_counters(user.id).calls;
    assert_eq!(calls.get("messages.sendMedia").copied(), Some(1));
}

async fn an_album_arrives_grouped(app: &TestApp) {
    let o = owner(app).await;
    let (user, sender) = account(app, &o, "+15558100002").await;
    let (ch, target) = channel(app, "pub_album1", user.id);
    let mut media = Vec::new();
    for i in 0..3 {
        media.push(photo(&o, &format!("p{i}.png"), i).await);
    }
    let post = create(
        &o,
        &spec(sender, &target, "Three photos", media, in_secs(1)),
    )
    .await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    let list = posts(app, ch);
    assert_eq!(list.len(), 3);
    let group = list[0].grouped_id.expect("an album");
    assert!(
        list.iter()
            .all(|m| m.grouped_id == Some(group) && m.media.is_some())
    );
    assert_eq!(
        list[0].text, "Three photos",
        "the caption on the first item"
    );
    assert_eq!(
        run.message_ids,
        list.iter().map(|m| i64::from(m.id)).collect::<Vec<_>>()
    );
}

async fn a_bot_without_rights_fails_with_a_clear_error(app: &TestApp) {
    let o = owner(app).await;
    let (bot_user, sender) = bot(app, &o, "pub_norights_bot").await;
    let (ch, target) = channel(app, "pub_norights1", bot_user.id);
    // The bot stays an administrator, without the right to post.
    app.sim
        .set_channel_admin(ch, bot_user.id, Some(AdminRights::default()))
        .unwrap();
    let post = create(
        &o,
        &spec(sender, &target, "Not allowed", vec![], in_secs(1)),
    )
    .await;
    let run = run_with(&o, &post, RunStatus::Failed, 30).await;
    assert_eq!(run.error.as_deref(), Some("CHAT_ADMIN_REQUIRED"));
    assert_eq!(run.attempts, 1, "a refusal is not retried");
    assert!(posts(app, ch).is_empty());
}

async fn a_bots_retry_after_delays_without_loss(app: &TestApp) {
    let o = owner(app).await;
    let (bot_user, sender) = bot(app, &o, "pub_flood_bot").await;
    let (ch, target) = channel(app, "pub_flood1", bot_user.id);
    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(bot_user.id),
        method: Some("bot.sendMessage".into()),
        kind: tgsim::FaultKind::FloodWait { seconds: 5 },
        count: 1,
    });
    let started = Instant::now();
    let post = create(
        &o,
        &spec(sender, &target, "After the wait", vec![], in_secs(1)),
    )
    .await;
    let waiting = eventually(20, "the run to wait for retry_after", || async {
        runs(&o.db, &o.viewer, &post)
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Scheduled && r.error.as_deref() == Some("retry_after"))
    })
    .await;
    // Retried exactly when Telegram said: 5 s after the refused attempt.
    assert!(waiting.attempt_at.0 - Timestamp::now().0 <= 5_000);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(posts(app, ch).is_empty(), "nothing sent during the wait");
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(run.attempts, 2);
    let list = posts(app, ch);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].text, "After the wait");
}

/// Moves a run's follow-ups that are due later to now, as if the hours had passed.
async fn hours_pass(db: &Stores, run: &PostRun) {
    let now = Timestamp::now().0;
    let changed = db
        .execute(&format!(
            "UPDATE post_actions SET due_at = {now}, attempt_at = {now} \
             WHERE run_id = {} AND status = 'pending'",
            run.id.0
        ))
        .await;
    assert!(changed > 0, "follow-ups were scheduled");
}

async fn pin_for_n_hours_unpins_and_delete_after_n_hours_removes(app: &TestApp) {
    let o = owner(app).await;
    let (user, sender) = account(app, &o, "+15558100003").await;
    let (ch, target) = channel(app, "pub_follow1", user.id);
    let mut s = spec(sender, &target, "1/24 ad", vec![], in_secs(1));
    s.follow_ups = FollowUps {
        pin_hours: Some(1),
        delete_after_hours: Some(24),
    };
    let post = create(&o, &s).await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    let id = i32::try_from(run.message_ids[0]).unwrap();
    // Pinned at once; the unpin is due an hour after publishing, the delete 24 hours after.
    eventually(20, "the post to be pinned", || async {
        (app.sim.channel(ch).unwrap().pinned == vec![id]).then_some(())
    })
    .await;
    let actions = o.db.schedule.list_actions(&o.viewer, run.id).await.unwrap();
    let published = run.published_at.unwrap().0;
    let due = |kind: &str| {
        actions
            .iter()
            .find(|a| a.kind.as_str() == kind)
            .map(|a| a.due_at.0 - published)
    };
    assert_eq!(due("unpin"), Some(3_600_000));
    assert_eq!(due("delete"), Some(24 * 3_600_000));
    assert_eq!(posts(app, ch).len(), 1, "still there before its time");

    hours_pass(&o.db, &run).await;
    eventually(20, "the post to be unpinned and deleted", || async {
        let view = app.sim.channel(ch).unwrap();
        (view.pinned.is_empty() && view.deleted == vec![id]).then_some(())
    })
    .await;
    assert!(posts(app, ch).is_empty());
}

async fn a_run_missed_past_its_grace_is_missed_and_within_it_published(app: TestApp) -> TestApp {
    let o = owner(&app).await;
    let (user, sender) = account(&app, &o, "+15558100004").await;
    let (ch, target) = channel(&app, "pub_grace1", user.id);
    // Two posts due in 3 s: one with a grace of 1 minute, one with the default 15 minutes.
    let mut short = spec(sender, &target, "short grace", vec![], in_secs(3));
    short.grace_minutes = 1;
    let short = create(&o, &short).await;
    let long = create(
        &o,
        &spec(sender, &target, "default grace", vec![], in_secs(3)),
    )
    .await;
    let (db, viewer) = (o.db.clone(), o.viewer);
    // The server is down from before they are due until 65 s after.
    let app = app
        .restart_with(|| async {
            tokio::time::sleep(Duration::from_secs(68)).await;
        })
        .await;
    let o = Owner {
        admin: app.login("admin", PASSWORD).await,
        viewer,
        db,
    };
    let missed = run_with(&o, &short, RunStatus::Missed, 30).await;
    assert!(missed.message_ids.is_empty());
    run_with(&o, &long, RunStatus::Published, 30).await;
    let list = posts(&app, ch);
    assert_eq!(
        list.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["default grace"]
    );
    app
}

async fn a_restart_in_the_middle_of_publishing_posts_once(app: TestApp) -> TestApp {
    let o = owner(&app).await;
    let (user, sender) = account(&app, &o, "+15558100005").await;
    let (ch, target) = channel(&app, "pub_restart1", user.id);
    let post = create(
        &o,
        &spec(sender, &target, "Exactly once", vec![], in_secs(1)),
    )
    .await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    // The process died after Telegram took the post and before the outcome was written.
    let (app, o) = crash_and_restart(app, o, &run).await;
    // Released at start and taken again at once (within half the lease), resent with the
    // same random_id, refused by Telegram as a repeat and recorded as published with the
    // post's id.
    let again = run_with(&o, &post, RunStatus::Published, HALF_LEASE).await;
    // (More attempts when the account was not connected yet on the first one.)
    assert!(again.attempts >= 2, "{again:?}");
    let list = posts(&app, ch);
    assert_eq!(list.len(), 1, "posted once");
    assert_eq!(again.message_ids, vec![i64::from(list[0].id)]);
    assert_eq!(
        app.sim
            .account_counters(user.id)
            .calls
            .get("messages.sendMessage")
            .copied(),
        Some(2),
        "the post and its refused repeat"
    );
    app
}

/// Half the publisher's lease, in seconds: a run taken up after a restart within this was
/// released, not expired.
const HALF_LEASE: u64 = 60;

/// Puts a published run back as a crash leaves it — `publishing`, held by `app`'s instance
/// under a lease with two minutes to go, its outcome not written — and restarts the server;
/// returns it with the owner signed in again.
async fn crash_and_restart(app: TestApp, o: Owner, run: &PostRun) -> (TestApp, Owner) {
    let lease_end = Timestamp::now().0 + 2 * HALF_LEASE as i64 * 1000;
    assert_eq!(
        o.db.execute(&format!(
            "UPDATE post_runs SET status = 'publishing', published_at = NULL, \
             message_ids = '[]', link = NULL, attempt_at = {lease_end}, \
             lease_owner = '{}' WHERE id = {}",
            app.running.instance_id(),
            run.id.0
        ))
        .await,
        1
    );
    let app = app.restart().await;
    let o = Owner {
        admin: app.login("admin", PASSWORD).await,
        ..o
    };
    (app, o)
}

async fn a_bots_run_cut_off_by_a_crash_ends_send_uncertain_at_once(app: TestApp) -> TestApp {
    let o = owner(&app).await;
    let (bot_user, sender) = bot(&app, &o, "pub_crash_bot").await;
    let (ch, target) = channel(&app, "pub_crash1", bot_user.id);
    let post = create(&o, &spec(sender, &target, "Bot, once", vec![], in_secs(1))).await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    let (app, o) = crash_and_restart(app, o, &run).await;
    // Taken up at once; the Bot API cannot tell whether the cut-off send got through: the run
    // is not resent.
    let uncertain = run_with(&o, &post, RunStatus::SendUncertain, HALF_LEASE).await;
    assert_eq!(uncertain.error.as_deref(), Some("send_uncertain"));
    assert_eq!(uncertain.attempts, 2);
    assert_eq!(posts(&app, ch).len(), 1, "posted once, not resent");
    let sends = app.sim.counters().bot_api_calls;
    let sends = sends
        .get(&bot_user.id.0.to_string())
        .and_then(|m| m.get("sendMessage"))
        .copied();
    assert_eq!(sends, Some(1), "one sendMessage in all");
    app
}

/// Lets the time of a post's waiting run come now, as if the hours had passed: the run keeps its
/// due time (the next occurrence follows from it), only the time it may be taken moves.
async fn tick_comes(app: &TestApp, db: &Stores, post: &ScheduledPost) {
    let now = Timestamp::now().0;
    let changed = db
        .execute(&format!(
            "UPDATE post_runs SET attempt_at = {now} \
             WHERE post_id = {} AND status = 'scheduled'",
            post.id.0
        ))
        .await;
    assert_eq!(changed, 1, "one waiting run");
    app.running.scheduler.wakeup().notify_one();
}

async fn a_recurring_post_runs_on_each_tick(app: &TestApp) {
    let o = owner(app).await;
    let (user, sender) = account(app, &o, "+15558100007").await;
    // A preset (daily at 09:30 in Moscow, which keeps no DST: a tick every 24 h) and a cron
    // expression (every 6 hours at :15, UTC).
    let (daily_ch, daily_target) = channel(app, "pub_daily1", user.id);
    let mut daily = spec(
        sender,
        &daily_target,
        "Daily digest",
        vec![],
        Schedule::Daily {
            time: "09:30".into(),
        },
    );
    daily.time_zone = "Europe/Moscow".into();
    let (cron_ch, cron_target) = channel(app, "pub_cron1", user.id);
    let cron = spec(
        sender,
        &cron_target,
        "Every six hours",
        vec![],
        Schedule::Cron {
            expression: "15 */6 * * *".into(),
        },
    );
    for (spec, ch, period) in [
        (daily, daily_ch, 24 * 3_600_000),
        (cron, cron_ch, 6 * 3_600_000),
    ] {
        let post = create(&o, &spec).await;
        let first = post.next_run_at.expect("a first run").0;
        for tick in 1..=2_usize {
            tick_comes(app, &o.db, &post).await;
            let history = eventually(30, &format!("tick {tick} published"), || async {
                let list = runs(&o.db, &o.viewer, &post).await;
                let published = list
                    .iter()
                    .filter(|r| r.status == RunStatus::Published)
                    .count();
                (published == tick).then_some(list)
            })
            .await;
            // One run per tick, each at its own due time, and the next one waiting.
            let tick_i64 = i64::try_from(tick).unwrap();
            let mut dues: Vec<(i64, RunStatus)> =
                history.iter().map(|r| (r.due_at.0, r.status)).collect();
            dues.sort_unstable_by_key(|d| d.0);
            let mut expected: Vec<(i64, RunStatus)> = (0..tick_i64)
                .map(|k| (first + k * period, RunStatus::Published))
                .collect();
            expected.push((first + tick_i64 * period, RunStatus::Scheduled));
            assert_eq!(dues, expected, "{}: {history:?}", spec.content.text);
            let published: Vec<&PostRun> = history
                .iter()
                .filter(|r| r.status == RunStatus::Published)
                .collect();
            assert!(
                published
                    .iter()
                    .all(|r| r.attempts == 1 && r.message_ids.len() == 1)
            );
            // Each tick posted once.
            let list = posts(app, ch);
            assert_eq!(list.len(), tick, "{}", spec.content.text);
            assert!(list.iter().all(|m| m.text == spec.content.text));
            let mut ids: Vec<i64> = published.iter().map(|r| r.message_ids[0]).collect();
            ids.sort_unstable();
            assert_eq!(
                ids,
                list.iter().map(|m| i64::from(m.id)).collect::<Vec<_>>()
            );
        }
        let post = o.db.schedule.get_post(&o.viewer, post.id).await.unwrap();
        assert_eq!(post.state, switchboard_domain::PostState::Active);
        assert_eq!(post.next_run_at, Some(Timestamp(first + 2 * period)));
    }
    // Nothing more is posted until the next tick comes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(posts(app, daily_ch).len(), 2);
    assert_eq!(posts(app, cron_ch).len(), 2);
    let calls = app.sim.account_counters(user.id).calls;
    assert_eq!(calls.get("messages.sendMessage").copied(), Some(4));
}

/// The runs of `post` waiting for a retry that Telegram timed with `code`.
async fn waiting_with(o: &Owner, post: &ScheduledPost, code: &str) -> PostRun {
    eventually(30, &format!("the run to wait for {code}"), || async {
        runs(&o.db, &o.viewer, post)
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Scheduled && r.error.as_deref() == Some(code))
    })
    .await
}

async fn an_accounts_flood_wait_delays_without_loss(app: &TestApp) {
    let o = owner(app).await;
    let (user, sender) = account(app, &o, "+15558100006").await;
    let (ch, target) = channel(app, "pub_flood2", user.id);
    let flood = |seconds: u32| {
        app.sim.inject_fault(tgsim::FaultRule {
            user_id: Some(user.id),
            method: Some("messages.sendMessage".into()),
            kind: tgsim::FaultKind::FloodWait { seconds },
            count: 1,
        });
    };
    let send_calls = || {
        app.sim
            .account_counters(user.id)
            .calls
            .get("messages.sendMessage")
            .copied()
            .unwrap_or(0)
    };

    // A short wait is slept through by the client inside the one attempt.
    flood(3);
    let post = create(
        &o,
        &spec(sender, &target, "After a short wait", vec![], in_secs(1)),
    )
    .await;
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    assert_eq!((run.attempts, run.error.as_deref()), (1, None));
    assert!(
        run.published_at.unwrap().0 - run.due_at.0 >= 3_000,
        "published after the wait"
    );
    assert_eq!(
        send_calls(),
        2,
        "the refused send and the one after the wait"
    );
    assert_eq!(posts(app, ch).len(), 1);

    // A wait longer than the client sleeps through comes back to the publisher: the run is
    // rescheduled for exactly when it ends, and the history shows why.
    let long = switchboard_telegram::settings::FLOOD_SLEEP_THRESHOLD.as_secs() * 2;
    flood(u32::try_from(long).unwrap());
    let post = create(
        &o,
        &spec(sender, &target, "After a long wait", vec![], in_secs(1)),
    )
    .await;
    let waiting = waiting_with(&o, &post, "FLOOD_WAIT").await;
    assert_eq!(waiting.attempts, 1);
    assert_eq!(
        waiting.attempt_at.0 - waiting.updated_at.0,
        i64::try_from(long).unwrap() * 1000,
        "retried when the wait ends"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts(app, ch).len(), 1, "nothing sent during the wait");
    assert_eq!(send_calls(), 3);
    let still = runs(&o.db, &o.viewer, &post).await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].status, RunStatus::Scheduled);
    assert_eq!(still[0].attempt_at, waiting.attempt_at, "not retried early");

    // The wait ends (moved to now rather than waited out).
    let now = Timestamp::now().0;
    assert_eq!(
        o.db.execute(&format!(
            "UPDATE post_runs SET attempt_at = {now} WHERE id = {}",
            waiting.id.0
        ))
        .await,
        1
    );
    app.running.scheduler.wakeup().notify_one();
    let run = run_with(&o, &post, RunStatus::Published, 30).await;
    assert_eq!(run.attempts, 2);
    assert_eq!(run.id, waiting.id, "the same run, not a new one");
    let list = posts(app, ch);
    assert_eq!(
        list.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["After a short wait", "After a long wait"]
    );
    assert_eq!(send_calls(), 4);
}
