//! The operator guides' walk: a workspace as a support team has it after a while — accounts in
//! several health states, two bots, chats, a new operator, a monitoring task with leads — walked
//! in a real headless Chromium in English and then in Russian, as an admin, on both backends.
//! Each page is checked to show what the guide says of it, and its picture is saved for the
//! guide (`Chrome::guide_shot`, `docs/screenshots/<lang>/`).
//!
//! Four moments are pictured by the tests that reach them anyway, in one language, and here in
//! the other: the inbox, a conversation and an uncertain reply (`inbox_browser`, English), the
//! Leads page (`leads_browser`, English) and the phone-code wizard (`browser_accounts`,
//! Russian). Every other picture is taken here in both languages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::{Chrome, Lang};
use switchboard_tests::live::{
    chat_titled, connect_personal_account, connected_bot, customer, eventually, writes,
};

app_tests!(the_guides_are_walked_in_english_and_russian);

/// The row of the account Telegram asks to wait (see `build_world`).
const WAITING_ACCOUNT: &str = "#accounts tr[data-account]:has(.badge[data-status=flood_wait]), \
                               #accounts tr[data-account]:has(.badge[data-status=reconnecting])";

/// What the walk needs to know about the world it built.
struct World {
    bot: tgsim::UserInfo,
}

/// Builds the workspace through the API and tgsim, as an admin would over a few days.
async fn build_world(app: &TestApp, admin: &Browser) -> World {
    // A new operator, invited through the team API.
    let r = admin
        .post(
            "/api/v1/team/members",
            &json!({"username": "olga", "display_name": "Olga Petrova", "password": PASSWORD,
                    "role": "operator", "max_chats": 10}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());

    // Personal accounts: one working, one stopped by an admin, one Telegram asked to wait, one
    // whose session was ended.
    let (support, support_id) = connect_personal_account(app, admin, "+15558100", "Support").await;
    let (_, sales) = connect_personal_account(app, admin, "+15558200", "Sales").await;
    let r = admin
        .post(&format!("/api/v1/accounts/{sales}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let (marketing_user, marketing) =
        connect_personal_account(app, admin, "+15558300", "Marketing").await;
    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(marketing_user.id),
        method: None,
        kind: tgsim::FaultKind::FloodWait { seconds: 3600 },
        count: u32::MAX,
    });
    assert!(app.sim.drop_connections(marketing_user.id) > 0);
    let (_, old) = connect_personal_account(app, admin, "+15558400", "Archive").await;
    let r = admin
        .post(&format!("/api/v1/accounts/{old}/logout"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    // The account Telegram asks to wait shows `flood_wait` once a request is refused; on a
    // busy machine it may still be `reconnecting` when the pages are walked. Either is a state
    // the guide explains.
    for (id, statuses) in [
        (sales, &["stopped"][..]),
        (marketing, &["flood_wait", "reconnecting"][..]),
        (old, &["unauthorized"][..]),
    ] {
        eventually(60, &format!("account {id} to be {statuses:?}"), || async {
            let list: Value = admin.get("/api/v1/accounts").await.json().await.ok()?;
            list["accounts"]
                .as_array()?
                .iter()
                .any(|a| a["id"] == id && statuses.iter().any(|s| a["status"] == *s))
                .then_some(())
        })
        .await;
    }

    // Bots: one working, one stopped.
    let bot = connected_bot(app, admin, "shop_help_bot", "Shop help").await;
    connected_bot(app, admin, "shop_news_bot", "Shop news").await;
    let list: Value = admin.get("/api/v1/bots").await.json().await.unwrap();
    let news_id = list["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["username"] == "shop_news_bot")
        .map(|b| b["id"].clone())
        .expect("the news bot is listed");
    let r = admin
        .post(&format!("/api/v1/bots/{news_id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);

    // Customers write to the account and to the bot.
    let anna = customer(app, "+15558101", "Анна").await;
    let boris = customer(app, "+15558102", "Boris").await;
    let carol = customer(app, "+15558103", "Carol").await;
    writes(
        app,
        &anna,
        &support,
        "Здравствуйте! Заказ 1042 уже отправлен?",
    );
    chat_titled(admin, "Анна").await;
    writes(
        app,
        &boris,
        &support,
        "Hi! Could you send the invoice for order 1043?",
    );
    chat_titled(admin, "Boris").await;
    writes(app, &carol, &bot, "Where is my parcel?");
    chat_titled(admin, "Carol").await;

    // A monitoring task on a public channel, read by the support account, and two posts that
    // match it (and one that does not).
    let channel = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Rust & Go jobs".into(),
            username: Some("rust_go_jobs".into()),
            ..Default::default()
        })
        .unwrap();
    let r = admin
        .post(
            "/api/v1/tasks",
            &json!({"name": "Rust or Go vacancies", "query": "(rust | go) -senior",
                    "account_id": support_id, "sources": [{"reference": "@rust_go_jobs"}]}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let task: Value = r.json().await.unwrap();
    let task_id = task["task"]["id"].as_i64().unwrap();
    eventually(60, "the channel to be joined", || async {
        let s: Value = admin
            .get(&format!("/api/v1/tasks/{task_id}/sources"))
            .await
            .json()
            .await
            .ok()?;
        (s["sources"][0]["state"] == "joined").then_some(())
    })
    .await;
    let channel_id = match channel.peer {
        tgsim::Peer::Channel(c) => c,
        other => panic!("a channel's peer is a channel: {other:?}"),
    };
    for text in [
        "Ищем Rust-разработчика в команду платежей, удалённо",
        "Senior Go developer, office in Berlin",
        "Go developer for a logistics startup, remote",
    ] {
        app.sim
            .post_to_channel(channel_id, tgsim::OutgoingMessage::text(text))
            .unwrap();
    }
    eventually(60, "two leads", || async {
        let l: Value = admin.get("/api/v1/leads").await.json().await.ok()?;
        (l["leads"].as_array()?.len() == 2).then_some(())
    })
    .await;
    World { bot }
}

async fn the_guides_are_walked_in_english_and_russian(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let world = build_world(app, &admin).await;
    walk(app, &c, &world, Lang::En).await;
    walk(app, &c, &world, Lang::Ru).await;
    c.quit().await;
}

/// Signs in, picks the language, walks every page and signs out.
async fn walk(app: &TestApp, c: &Chrome, world: &World, lang: Lang) {
    let code = lang.code();
    // The sign-in page, in the language picked on it.
    c.open("/login").await;
    if lang == Lang::Ru {
        c.wait("#lang-select")
            .await
            .select_by_value("ru")
            .await
            .unwrap();
    }
    c.wait_text("#login-form h2", lang.pick("Sign in", "Вход"))
        .await;
    c.guide_shot(code, "sign-in").await;
    c.sign_in("admin", PASSWORD).await;
    c.choose_language(lang).await;

    if lang == Lang::Ru {
        inbox_in_russian(app, c, world).await;
    }

    // Accounts with their health.
    c.open("/accounts").await;
    for (status, label) in [
        ("connected", lang.pick("connected", "подключён")),
        ("stopped", lang.pick("stopped", "остановлен")),
        ("unauthorized", lang.pick("needs sign-in", "нужен вход")),
    ] {
        c.wait_text(
            &format!("#accounts tr[data-account] .badge[data-status={status}]"),
            label,
        )
        .await;
    }
    c.wait_text(WAITING_ACCOUNT, "Marketing").await;
    c.guide_shot(code, "accounts").await;
    if lang == Lang::En {
        phone_wizard_in_english(app, c).await;
    }

    // Bots.
    c.open("/bots").await;
    c.wait_text("#bots tr[data-bot]", "@shop_help_bot").await;
    c.wait_text(
        "#bots tr[data-bot]:has(.badge[data-status=stopped])",
        "@shop_news_bot",
    )
    .await;
    c.guide_shot(code, "bots").await;

    // The team, with the operator invited through the API.
    c.open("/team").await;
    c.wait_text("table.members tbody", "Olga Petrova").await;
    c.guide_shot(code, "team").await;

    // Settings → System: workers and the health of every account and bot.
    c.open("/settings").await;
    c.wait_text("#system-accounts tr[data-account]", "Marketing")
        .await;
    c.wait("#system-bots").await;
    c.scroll_to("#system-accounts").await;
    c.guide_shot(code, "system").await;

    if lang == Lang::Ru {
        leads_in_russian(c).await;
    }

    // Signing out ends the session: the sign-in page again, and the app is closed.
    c.click("#logout").await;
    c.wait("#login-form").await;
    c.open("/inbox").await;
    c.wait("#login-form").await;
}

/// The inbox, a conversation and an uncertain reply, in Russian (`inbox_browser` pictures them
/// in English).
async fn inbox_in_russian(app: &TestApp, c: &Chrome, world: &World) {
    c.open("/inbox").await;
    for name in ["Анна", "Boris", "Carol"] {
        c.wait_text("#chat-list .chat-row", name).await;
    }
    c.guide_shot("ru", "inbox").await;

    c.open_chat("Анна").await;
    c.wait_text(".msg.in .msg-text", "Заказ 1042").await;
    send(
        c,
        "Да, заказ отправлен сегодня утром. Номер для отслеживания пришлю отдельно.",
    )
    .await;
    c.wait_text(".msg.out[data-status=sent] .msg-status", "отправлено")
        .await;
    let mut titles = c.texts("#chat-list .chat-title").await;
    titles.sort();
    assert_eq!(
        titles,
        ["Boris", "Carol", "Анна"],
        "an answered chat keeps its title"
    );
    c.guide_shot("ru", "conversation").await;

    // The bot's answer from Telegram is lost: the reply may have been sent.
    c.open_chat("Carol").await;
    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(world.bot.id),
        method: Some("bot.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    send(c, "It left the warehouse today").await;
    c.wait_text(".msg-status[data-status=uncertain]", "возможно, отправлено")
        .await;
    c.wait_text(".msg.out button.mark-sent", "Отметить как отправленное")
        .await;
    c.guide_shot("ru", "reply-uncertain").await;
}

/// The phone-code wizard up to the 2FA step, in English (`browser_accounts` pictures it in
/// Russian). The sign-in is left unfinished.
async fn phone_wizard_in_english(app: &TestApp, c: &Chrome) {
    app.sim
        .create_user(tgsim::NewUser {
            phone: "+15558500".into(),
            first_name: "Mia".into(),
            password: Some("pw-2fa".into()),
            password_hint: Some("usual".into()),
            ..Default::default()
        })
        .unwrap();
    c.fill("#phone-form input[name=phone]", "+1 555 8500").await;
    c.click("#phone-form button[type=submit]").await;
    c.wait_text("#code-info", "Code sent via").await;
    c.guide_shot("en", "connect-code").await;
    let code = app.sim.last_login_code("+15558500").unwrap();
    c.fill("#code-form input[name=code]", &code).await;
    c.click("#code-form button[type=submit]").await;
    c.wait_text("#connect-phone .password-form", "(usual)")
        .await;
    c.guide_shot("en", "connect-2fa").await;
}

/// The Leads page with the task open and its leads, in Russian (`leads_browser` pictures it in
/// English).
async fn leads_in_russian(c: &Chrome) {
    c.open("/leads").await;
    c.wait_text("#task-list .task-name", "Rust or Go vacancies")
        .await;
    c.click("#task-list [data-open]").await;
    c.wait_text("#task-source-states .source-state", "вступили")
        .await;
    c.wait_text("#lead-list .lead-text", "Rust-разработчика")
        .await;
    c.wait_text("#lead-list .lead-text", "logistics startup")
        .await;
    assert_eq!(c.texts("#lead-list .lead").await.len(), 2);
    c.scroll_to("#task-form").await;
    c.guide_shot("ru", "leads-task").await;
    c.scroll_to(".leads-list").await;
    c.guide_shot("ru", "leads").await;
}

/// Types `text` in the composer and sends it with Enter.
async fn send(c: &Chrome, text: &str) {
    c.fill("#composer-text", &format!("{text}\u{e007}")).await;
    c.wait_text(".msg.out .msg-text", text).await;
}
