//! The Schedule page in a real headless Chromium against the real server and tgsim, on both
//! backends: an admin opens the page, writes a post from a connected account to the channel it
//! created (the page offers the chats Telegram says the account may post to), schedules it once
//! a few seconds ahead in Europe/Moscow, sees it in the upcoming list, then sees it published in
//! the history with a link to the post — and the channel in tgsim holds it once. The guides'
//! pictures of the Schedule page (the editor with the upcoming list, and the history) are taken
//! here, in English and then in Russian. Runs that ended with an error show, in the history,
//! the catalogue's text for their code in the member's language.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::{Chrome, Lang};
use switchboard_tests::live::{connect_personal_account, eventually};
use tgsim::{ChannelId, Peer};

app_tests!(
    a_post_made_on_the_schedule_page_is_published_once,
    the_history_explains_each_failure_in_the_members_language,
);

/// How far ahead the posts are scheduled: enough for the page to save the post and show it
/// as upcoming first.
const AHEAD_SECS: i64 = 20;

/// The channel the account posts to, as tgsim and the page know it.
struct Channel {
    id: ChannelId,
    peer_id: i64,
    username: &'static str,
    title: &'static str,
}

/// `secs` from now as a local date and time in Europe/Moscow (`YYYY-MM-DDTHH:MM:SS`), as a
/// once schedule is written.
fn moscow_in(secs: i64) -> String {
    let zone = jiff::tz::TimeZone::get("Europe/Moscow").expect("the tz database has Moscow");
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .expect("a time ahead")
        .to_zoned(zone)
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// The channel's posts with text (not the service message of its creation).
fn posts_with(app: &TestApp, ch: ChannelId, text: &str) -> Vec<tgsim::MessageView> {
    app.sim
        .channel_posts(ch)
        .unwrap()
        .into_iter()
        .filter(|m| m.text == text)
        .collect()
}

async fn a_post_made_on_the_schedule_page_is_published_once(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let (user, _) = connect_personal_account(app, &admin, "+15557300", "Newsroom").await;
    let (username, title) = ("city_news_daily", "City news");
    let info = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: title.into(),
            username: Some(username.into()),
            creator: Some(user.id),
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(id) = info.peer else {
        panic!("not a channel")
    };
    let channel = Channel {
        id,
        peer_id: info.peer.bot_api_id(),
        username,
        title,
    };
    // A channel the account only reads is not offered.
    app.sim
        .create_channel(tgsim::NewChannel {
            title: "Someone else's channel".into(),
            members: vec![user.id],
            ..Default::default()
        })
        .unwrap();

    c.sign_in("admin", PASSWORD).await;
    for lang in [Lang::En, Lang::Ru] {
        c.choose_language(lang).await;
        post_on_the_page(app, &c, &admin, &channel, lang).await;
    }
    c.quit().await;
}

/// Lets the page take in the live updates that follow a change (it reloads its lists on each,
/// after a short pause) and scrolls it to the top, so a guide's picture shows the page as it
/// stays.
async fn settle(c: &Chrome) {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    c.eval("window.scrollTo(0, 0);", vec![]).await;
}

/// Writes a post on the Schedule page, schedules it `AHEAD_SECS` ahead, and follows it from
/// the upcoming list to the history; checks the channel holds it once.
async fn post_on_the_page(app: &TestApp, c: &Chrome, admin: &Browser, ch: &Channel, lang: Lang) {
    let text = lang.pick(
        "The embankment is closed to traffic on Saturday from 10:00 to 18:00 for the city run.",
        "В субботу с 10:00 до 18:00 набережная закрыта для машин: городской забег.",
    );
    let before: Value = admin.get("/api/v1/posts").await.json().await.unwrap();
    let known = before["posts"].as_array().unwrap().len();

    c.open("/schedule").await;
    c.wait("#schedule[data-ready=true]").await;
    c.wait_text(
        "#upcoming-empty",
        lang.pick("Nothing is scheduled", "Ничего не запланировано"),
    )
    .await;
    c.click("#post-new").await;
    c.wait_text("#post-form-title", lang.pick("Post", "Публикация"))
        .await;
    // The account's chats, as Telegram lists them: only the channel it may post to.
    let target = format!("#post-target option[value='{}']", ch.peer_id);
    c.wait_text(&target, ch.title).await;
    let offered = c.texts("#post-target option").await;
    assert_eq!(
        offered.len(),
        2,
        "the placeholder and the one channel: {offered:?}"
    );
    c.wait("#post-target")
        .await
        .select_by_value(&ch.peer_id.to_string())
        .await
        .unwrap();
    c.fill("#post-text", text).await;
    c.fill("#post-zone", "Europe/Moscow").await;
    c.wait_text("#post-preview .preview-text", "18:00").await;
    // Once, a few seconds ahead (the picker shows minutes; the field takes seconds too).
    let at = moscow_in(AHEAD_SECS);
    c.eval(
        "const i = document.getElementById('post-at'); i.value = arguments[0]; \
         i.dispatchEvent(new Event('change'));",
        vec![json!(at)],
    )
    .await;
    c.click("#post-save").await;
    c.wait_text("#post-status", lang.pick("Saved", "Сохранено"))
        .await;

    // Saved as the form said, and waiting in the upcoming list.
    let posts: Value = admin.get("/api/v1/posts").await.json().await.unwrap();
    let list = posts["posts"].as_array().unwrap();
    assert_eq!(list.len(), known + 1, "one post saved");
    let post = list
        .iter()
        .find(|p| p["content"]["text"] == text)
        .expect("the post is listed");
    let post_id = post["id"].as_i64().unwrap();
    assert_eq!(post["schedule"], json!({"kind": "once", "at": at}));
    assert_eq!(post["time_zone"], "Europe/Moscow");
    assert_eq!(post["target"]["peer_id"], ch.peer_id);
    assert_eq!(post["state"], "active");
    let upcoming = format!("#upcoming-list .upcoming-run[data-post-id='{post_id}']");
    c.wait_text(&upcoming, ch.title).await;
    c.wait_text(
        &format!("#post-list li[data-post-id='{post_id}'] .chip"),
        lang.pick("scheduled", "запланирована"),
    )
    .await;
    assert!(
        posts_with(app, ch.id, text).is_empty(),
        "not published before its time"
    );
    settle(c).await;
    c.guide_shot(lang.code(), "schedule").await;

    // Published at its time: in the history with its link; gone from the upcoming list.
    let published = eventually(AHEAD_SECS as u64 + 60, "the post published", || async {
        let runs: Value = admin
            .get(&format!("/api/v1/posts/{post_id}/runs"))
            .await
            .json()
            .await
            .ok()?;
        let run = runs["runs"].as_array()?.first()?.clone();
        (run["status"] == "published").then_some(run)
    })
    .await;
    let in_channel = posts_with(app, ch.id, text);
    assert_eq!(in_channel.len(), 1, "posted once");
    let message = &in_channel[0];
    let link = format!("https://t.me/{}/{}", ch.username, message.id);
    assert_eq!(published["link"], json!(link));
    assert_eq!(published["message_ids"], json!([message.id]));
    // Telegram dates a message to the second.
    assert!(
        published["published_at"].as_i64().unwrap()
            >= published["due_at"].as_i64().unwrap() / 1000 * 1000,
        "not before its time: {published}"
    );
    let row = format!("#history-list tr[data-run-id='{}']", published["id"]);
    c.wait_text(
        &format!("{row}[data-status=published]"),
        lang.pick("published", "опубликована"),
    )
    .await;
    let href = c
        .eval(
            "const a = document.querySelector(arguments[0]); return a && a.getAttribute('href');",
            vec![json!(format!("{row} a"))],
        )
        .await;
    assert_eq!(href, json!(link));
    assert_eq!(
        c.text(&format!("{row} a")).await,
        lang.pick("Open", "Открыть")
    );
    c.wait_gone(&upcoming).await;
    c.wait_text(
        &format!("#post-list li[data-post-id='{post_id}'] .chip"),
        lang.pick("finished", "завершена"),
    )
    .await;
    c.click("#post-close").await;
    settle(c).await;
    c.guide_shot(lang.code(), "schedule-history").await;

    // Nothing follows: a once post is posted once.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(posts_with(app, ch.id, text).len(), 1);
}

/// Runs that failed with a refusal, a lost answer and a Telegram refusal this version does not
/// know: the history row of each shows the catalogue's text for its code, in English and in
/// Russian, with the code itself in the row's tooltip.
async fn the_history_explains_each_failure_in_the_members_language(app: &TestApp) {
    use switchboard_domain::{
        FollowUps, InstanceId, PostContent, PostSender, PostSpec, PostTarget, Role, RunFailure,
        Schedule, Timestamp, UserId, Viewer, i18n, run_error_key,
    };
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let db = app.stores().unwrap();
    let admin = app.login("admin", PASSWORD).await;
    let viewer = Viewer {
        workspace: app.workspace,
        user: UserId(admin.me["id"].as_i64().unwrap()),
        role: Role::Owner,
    };
    let account = db
        .accounts
        .create_account(
            &switchboard_tests::db::stopped_account(
                app.workspace,
                "79005550101",
                5_550_101,
                "Poster",
            ),
            Timestamp::now(),
        )
        .await
        .unwrap()
        .id;
    let now = Timestamp::now();
    let mut rows = Vec::new();
    for (i, (code, failure)) in [
        ("CHAT_ADMIN_REQUIRED", RunFailure::Failed),
        ("send_uncertain", RunFailure::Uncertain),
        ("SOMETHING_NEW_FROM_TELEGRAM", RunFailure::Failed),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = PostSpec {
            sender: PostSender::Account { account },
            target: PostTarget {
                peer_id: -1_000_000_000_777,
                title: "Ads".into(),
                username: Some("ads_channel".into()),
                access_hash: Some(1),
            },
            content: PostContent {
                text: format!("Ad {i}"),
                ..Default::default()
            },
            schedule: Schedule::Once {
                at: switchboard_tests::live::utc_in(3600),
            },
            time_zone: "UTC".into(),
            grace_minutes: 15,
            draft: false,
            follow_ups: FollowUps::default(),
        };
        let post = db
            .schedule
            .create_post(&viewer, &spec, i as i64, now)
            .await
            .unwrap();
        // Claimed as if its hour had come (by a claimer of its own), and ended with the code.
        let due = post.next_run_at.unwrap();
        let claimed = db
            .schedule
            .claim_due_runs(
                due,
                std::time::Duration::from_secs(60),
                1,
                &InstanceId::parse("test").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let run = db
            .schedule
            .fail_run(claimed[0].run.id, claimed[0].token, code, failure, due)
            .await
            .unwrap();
        rows.push((code, run.id.0));
    }

    c.sign_in("admin", PASSWORD).await;
    for lang in [Lang::En, Lang::Ru] {
        c.choose_language(lang).await;
        c.open("/schedule").await;
        c.wait("#schedule[data-ready=true]").await;
        let locale = match lang {
            Lang::En => switchboard_domain::Locale::En,
            Lang::Ru => switchboard_domain::Locale::Ru,
        };
        for (code, run) in &rows {
            let cell = format!("#history-list tr[data-run-id='{run}'] .run-error");
            let expected = i18n::t(locale, &run_error_key(code)).replace("{code}", code);
            assert_eq!(
                c.wait_text(&cell, &expected).await.trim(),
                expected,
                "{code}"
            );
            let title = c
                .eval(
                    "return document.querySelector(arguments[0]).getAttribute('title');",
                    vec![json!(cell)],
                )
                .await;
            assert_eq!(title, json!(code));
        }
    }
    c.quit().await;
}
