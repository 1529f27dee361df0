//! The Telegram sign-in page in a real headless Chromium against the real server and tgsim, on
//! both backends, at the demo's settings (`auth.self_service = "open"`, a service bot): a new
//! user signs up with Telegram's code (read from tgsim, as a phone shows it) and is offered the
//! service bot's binding link; a returning user signs in with the code the service bot sent
//! (read from tgsim's side of the bot chat), a browser remembered at that sign-in then signs in
//! with no code, and after it is forgotten in Settings the same browser is asked for a code
//! again. A new user who switches from Telegram's code to a QR code sees the QR code, the
//! phone approves it, and the page asks for the 2FA password (a wrong one shows its stable
//! code); the code flow the page left is closed, so one MTProto connection is open at the end.
//! A returning user whose bot chat is not bound sees the binding link and chooses Telegram's
//! code instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard::Config;
use switchboard_tests::app::TestApp;
use switchboard_tests::app_tests;
use switchboard_tests::browser::Chrome;
use switchboard_tests::live::eventually;

app_tests!(
    a_new_user_signs_up_with_telegrams_code with self_service,
    a_new_user_switches_to_a_qr_code_and_gives_their_2fa_password with self_service,
    a_returning_user_signs_in_with_the_bots_code_then_as_a_trusted_device with self_service,
    a_returning_user_without_the_bot_chooses_telegrams_code with self_service,
);

const BOT: &str = "signin_test_bot";

/// Self-service sign-up open, the service bot named in the configuration (as the demo does).
fn self_service(c: &mut Config) {
    c.auth.self_service = "open".into();
    c.auth.service_bot = Some(BOT.into());
}

/// Creates the service bot in tgsim and adds it to the main workspace; returns its tgsim user.
async fn service_bot(app: &TestApp) -> tgsim::UserInfo {
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: BOT.into(),
            first_name: "Sign-in".into(),
            token: None,
        })
        .unwrap();
    let admin = app.login("admin", switchboard_tests::app::PASSWORD).await;
    let r = admin
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(r.status(), 201, "adding the service bot");
    let id = r.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    eventually(20, "the service bot to run", || async {
        let list: Value = admin.get("/api/v1/bots").await.json().await.ok()?;
        list["bots"]
            .as_array()?
            .iter()
            .any(|b| b["id"].as_i64() == Some(id) && b["status"] == "connected")
            .then_some(())
    })
    .await;
    bot
}

/// A Telegram user, with a 2FA `password` (hint "the usual") when given.
fn person(app: &TestApp, phone: &str, name: &str, password: Option<&str>) -> tgsim::UserInfo {
    app.sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: name.into(),
            password: password.map(str::to_string),
            password_hint: password.map(|_| "the usual".to_string()),
            ..Default::default()
        })
        .unwrap()
}

/// The welcome step of a first sign-in offers the service bot's binding link once; then on
/// to the app.
async fn welcomed_with_the_bot_link(c: &Chrome) {
    c.wait("#tg-welcome").await;
    let link = c.text("#tg-welcome-link").await;
    assert!(
        link.starts_with(&format!("https://t.me/{BOT}?start=")),
        "{link}"
    );
    c.click("#tg-go").await;
    c.wait("header.top nav").await;
}

/// The messages `user` received from `bot`, oldest first.
fn from_bot(app: &TestApp, user: &tgsim::UserInfo, bot: &tgsim::UserInfo) -> Vec<String> {
    app.sim
        .received_messages(user.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == Some(bot.id))
        .map(|m| m.text)
        .collect()
}

/// The 6-digit code in the newest message of the bot.
fn bot_code(texts: &[String]) -> Option<String> {
    let text = texts.last()?;
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_string)
}

/// Signs `phone` up through the API with Telegram's code; the `signed_in` answer.
async fn sign_up_by_api(app: &TestApp, phone: &str) -> Value {
    let r = app
        .post_json_anon("/api/v1/auth/start", &json!({"phone": phone}))
        .await;
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["status"], "telegram_code_sent", "{started}");
    let flow = started["flow_id"].as_str().unwrap().to_string();
    let code = app.sim.last_login_code(phone).unwrap();
    let r = app
        .post_json_anon(
            &format!("/api/v1/auth/telegram/{flow}/code"),
            &json!({"code": code, "remember_device": false}),
        )
        .await;
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["status"], "signed_in", "{done}");
    done
}

/// Waits until exactly `n` MTProto connections are open at tgsim, and checks there are still
/// `n` a little later (a login client left open would show by then).
async fn open_connections_settle_at(app: &TestApp, n: u64) {
    eventually(20, "the open MTProto connections to settle", || async {
        (app.sim.counters().connections_open == n).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.sim.counters().connections_open, n);
}

async fn a_new_user_signs_up_with_telegrams_code(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    service_bot(app).await;
    person(app, "+15557701", "Nina", None);
    c.open("/login").await;
    c.wait("#tg-signin").await;
    // The username/password sign-in is still there.
    c.wait("#login-form input[name=username]").await;
    c.fill("#tg-phone-form input[name=phone]", "+1 555 770 1")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    c.wait("#tg-code-form").await;
    c.wait("#tg-resend[data-left]").await;
    // A wrong code: a clear error, with its stable code.
    let code = app.sim.last_login_code("+15557701").unwrap();
    let wrong = if code == "00000" { "11111" } else { "00000" };
    c.fill("#tg-code-form input[name=code]", wrong).await;
    c.click("#tg-code-form button[type=submit]").await;
    c.wait("#tg-error[data-code=phone_code_invalid]").await;
    c.fill("#tg-code-form input[name=code]", &code).await;
    c.click("#tg-code-form button[type=submit]").await;
    // Signed up: the page offers the service bot's binding link once.
    welcomed_with_the_bot_link(&c).await;
    c.quit().await;
}

async fn a_returning_user_signs_in_with_the_bots_code_then_as_a_trusted_device(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let bot = service_bot(app).await;
    let olga = person(app, "+15557702", "Olga", None);
    // Olga signed up earlier (through the API) and bound the bot from its link.
    let done = sign_up_by_api(app, "+15557702").await;
    // Olga opens the link in her Telegram and presses Start.
    let link = done["bot_link"].as_str().unwrap().to_string();
    app.sim.open_bot_link(olga.id, &link).unwrap();
    let bound = eventually(20, "the bot to confirm the binding", || async {
        let texts = from_bot(app, &olga, &bot);
        (!texts.is_empty()).then_some(texts.len())
    })
    .await;

    // The returning user: phone → the bot's code, remembered.
    c.open("/login").await;
    c.wait("#tg-signin").await;
    c.click("#tg-remember").await;
    c.fill("#tg-phone-form input[name=phone]", "+15557702")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    c.wait("#tg-verify-form").await;
    c.wait("#tg-resend[data-left]").await;
    c.wait("#tg-use-telegram").await;
    let code = eventually(20, "the bot's code", || async {
        let texts = from_bot(app, &olga, &bot);
        (texts.len() > bound).then(|| bot_code(&texts)).flatten()
    })
    .await;
    c.fill("#tg-verify-form input[name=code]", &code).await;
    c.click("#tg-verify-form button[type=submit]").await;
    c.wait("header.top nav").await;
    let codes_sent = from_bot(app, &olga, &bot).len();

    // Signed out, the remembered browser comes back with no code at all.
    c.click("#logout").await;
    c.wait("#tg-signin").await;
    c.fill("#tg-phone-form input[name=phone]", "+15557702")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    c.wait("header.top nav").await;
    assert_eq!(
        from_bot(app, &olga, &bot).len(),
        codes_sent,
        "no code was sent"
    );

    // Settings lists the device; forgotten there, the browser is asked for a code again.
    c.open("/settings").await;
    c.wait("#devices tr[data-device]").await;
    c.click("#devices button[data-revoke]").await;
    c.wait("#devices-none").await;
    c.click("#logout").await;
    c.wait("#tg-signin").await;
    c.fill("#tg-phone-form input[name=phone]", "+15557702")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    c.wait("#tg-verify-form").await;
    c.quit().await;
}

async fn a_new_user_switches_to_a_qr_code_and_gives_their_2fa_password(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    service_bot(app).await;
    let pia = person(app, "+15557703", "Pia", Some("qr-page-2fa"));
    c.open("/login").await;
    c.wait("#tg-signin").await;
    c.fill("#tg-phone-form input[name=phone]", "+15557703")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    c.wait("#tg-code-form").await;
    // She would rather scan a QR code: the page shows it at once.
    c.click("#tg-use-qr").await;
    c.wait("#tg-qr #tg-qr-image svg").await;
    assert!(app.sim.qr_logins().iter().any(|q| !q.approved));
    // Her phone approves it; the page asks for the 2FA password, with its hint.
    app.sim.approve_latest_qr_login(pia.id).unwrap();
    c.wait("#tg-password-form input[name=password]").await;
    c.wait_text("#tg-password-form .hint-text", "the usual")
        .await;
    c.fill("#tg-password-form input[name=password]", "wrong")
        .await;
    c.click("#tg-password-form button[type=submit]").await;
    c.wait("#tg-error[data-code=password_invalid]").await;
    c.fill("#tg-password-form input[name=password]", "qr-page-2fa")
        .await;
    c.click("#tg-password-form button[type=submit]").await;
    // Signed up: the welcome step, then the app.
    welcomed_with_the_bot_link(&c).await;
    // Her account's client is the one MTProto connection left: the code flow the page left
    // and the QR flow's login client are both closed.
    open_connections_settle_at(app, 1).await;
    let mine = app.sim.counters().accounts[&pia.id.0.to_string()].open_connections;
    assert_eq!(mine, 1);
    c.quit().await;
}

async fn a_returning_user_without_the_bot_chooses_telegrams_code(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let bot = service_bot(app).await;
    let rosa = person(app, "+15557704", "Rosa", None);
    // Rosa signed up earlier and never opened the binding link.
    let first = sign_up_by_api(app, "+15557704").await;
    let user_id = first["user"]["id"].as_i64().unwrap();
    open_connections_settle_at(app, 1).await;
    let db = app.stores().unwrap();
    let count = |table: &'static str| {
        let db = &db;
        async move { db.scalar(&format!("SELECT count(*) FROM {table}")).await }
    };
    let (users, workspaces) = (count("users").await, count("workspaces").await);

    c.open("/login").await;
    c.wait("#tg-signin").await;
    c.fill("#tg-phone-form input[name=phone]", "+15557704")
        .await;
    c.click("#tg-phone-form button[type=submit]").await;
    // Told how to bind the bot, and offered Telegram's code instead.
    c.wait_text("#tg-bind-text", &format!("@{BOT}")).await;
    let link = c.text("#tg-bind-link").await;
    assert!(
        link.starts_with(&format!("https://t.me/{BOT}?start=sb_")),
        "{link}"
    );
    c.wait_text("#tg-use-telegram", "Use a Telegram code instead")
        .await;
    c.click("#tg-use-telegram").await;
    c.wait("#tg-code-form").await;
    let code = app.sim.last_login_code("+15557704").unwrap();
    c.fill("#tg-code-form input[name=code]", &code).await;
    c.click("#tg-code-form button[type=submit]").await;
    // Signed in as herself, straight to the app (no welcome: she is no new user).
    c.wait("header.top nav").await;
    // Her second web session: no second user or workspace.
    let sessions = db
        .scalar(&format!(
            "SELECT count(*) FROM web_sessions WHERE user_id = {user_id}"
        ))
        .await;
    assert_eq!(sessions, 2);
    assert_eq!(
        (count("users").await, count("workspaces").await),
        (users, workspaces)
    );
    assert!(
        from_bot(app, &rosa, &bot).is_empty(),
        "the bot sent nothing"
    );
    // Her account's supervised client is the only MTProto connection.
    open_connections_settle_at(app, 1).await;
    c.quit().await;
}
