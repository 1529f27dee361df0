//! Telegram sign-in for the web app (docs/web-login.md), end to end against tgsim on both
//! databases, with tgsim's counters and the server's session meter as witnesses of the rules:
//! a returning user's start + verify opens no MTProto connection, makes no MTProto call and
//! decrypts no session, and the code comes from the service bot, never from the user's own
//! account; a new user's sign-in stores one session and leaves one client running. Codes that
//! are wrong, expired, used or past their fifth check are refused, also when checked in
//! parallel; parallel starts respect the limits; remembered browsers sign in without a code
//! until revoked. Self-service is turned on (`open`, or `invite`) where a test needs it; every
//! limit is the default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::app_tests;
use tgsim::world::Peer;

app_tests!(
    a_new_user_signs_up_once_and_their_account_runs_one_client with open,
    a_new_user_signs_up_by_qr_through_their_2fa_password with open,
    a_new_user_with_a_2fa_password_signs_up_by_code_and_a_wrong_one_creates_nothing with open,
    a_returning_user_without_the_bot_chooses_telegrams_code_explicitly with open,
    a_returning_user_gets_the_bots_code_without_any_mtproto with open,
    wrong_expired_used_and_sixth_codes_are_refused with open,
    parallel_checks_cannot_pass_the_attempt_limit with open,
    parallel_starts_respect_the_limits with open,
    a_burst_of_sign_ins_past_the_bots_rate_gets_every_code with open_behind_a_proxy,
    a_remembered_browser_needs_no_code_until_revoked with open,
    the_bot_binds_only_its_telegram_user_and_sign_in_stays_out_of_the_inbox with open,
    invites_admit_new_users_once with invite_only,
    only_owners_of_the_main_workspace_choose_the_service_bot with open,
    telegram_sign_in_is_off_by_default_and_passwords_still_work,
);

fn open(c: &mut switchboard::Config) {
    c.auth.self_service = "open".into();
}

/// Open, behind a trusted reverse proxy: each user comes from an address of their own
/// (`X-Forwarded-For`), so the per-address limits are each user's.
fn open_behind_a_proxy(c: &mut switchboard::Config) {
    open(c);
    c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

fn invite_only(c: &mut switchboard::Config) {
    c.auth.self_service = "invite".into();
}

/// A browser without a session: keeps the cookies it is given, like a real one.
struct Anon {
    base: String,
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

/// One answer: status, `Retry-After`, body, and the cookies it set.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
    set: Vec<String>,
}

impl Anon {
    fn new(app: &TestApp) -> Anon {
        Anon {
            base: app.url.clone(),
            http: app.http.clone(),
            jar: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn post(&mut self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn send(&mut self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header());
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let set: Vec<String> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for c in &set {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        let body = res.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            body,
            set,
        }
    }

    /// Only the trusted-device cookie of this browser (a new visit of the same browser).
    fn device_only(&self) -> Anon {
        let mut jar = BTreeMap::new();
        if let Some(v) = self.jar.get("sb_device") {
            jar.insert("sb_device".to_string(), v.clone());
        }
        Anon {
            base: self.base.clone(),
            http: self.http.clone(),
            jar,
        }
    }

    /// The signed-in session as a [`Browser`].
    fn session(&self, app: &TestApp, answer: &Answer) -> Browser {
        let csrf = answer.body["user"]["csrf_token"]
            .as_str()
            .unwrap()
            .to_string();
        let cookie = self
            .jar
            .iter()
            .filter(|(k, _)| k.as_str() != "sb_device")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        Browser::with_session(app, cookie, csrf, answer.body["user"].clone())
    }
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The service bot: a tgsim bot added to the main workspace and designated in Settings.
struct World {
    admin: Browser,
    bot: tgsim::UserInfo,
}

async fn world(app: &TestApp) -> World {
    let admin = app.login("admin", PASSWORD).await;
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "signin_bot".into(),
            first_name: "Sign-in".into(),
            token: None,
        })
        .unwrap();
    let r = admin
        .post(
            "/api/v1/bots",
            &json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    let r = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/auth/settings/service-bot",
            Some(&json!({"bot_id": id})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["service_bot"]["username"], "signin_bot");
    assert_eq!(view["service_bot"]["source"], "settings");
    assert_eq!(view["can_manage"], true);
    eventually("the service bot to connect", || async {
        let list: Value = admin.get("/api/v1/bots").await.json().await.ok()?;
        (list["bots"][0]["status"] == "connected").then_some(())
    })
    .await;
    World { admin, bot }
}

/// A user who signed up through Telegram's own flow: their Telegram user, their browser and
/// the `signed_in` answer.
async fn sign_up(app: &TestApp, phone: &str, name: &str) -> (tgsim::UserInfo, Anon, Answer) {
    let tg = app
        .sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: name.into(),
            ..Default::default()
        })
        .unwrap();
    let mut anon = Anon::new(app);
    let (_, a) = through_telegrams_code(app, &mut anon, json!({"phone": phone})).await;
    assert_eq!(a.body["status"], "signed_in", "{}", a.body);
    (tg, anon, a)
}

/// Starts Telegram's code flow with `start` (a new phone, or an explicit choice), submits the
/// code tgsim sent to the phone, and returns the flow's id and the answer to the code.
async fn through_telegrams_code(app: &TestApp, anon: &mut Anon, start: Value) -> (String, Answer) {
    let a = anon.post("/api/v1/auth/start", &start).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "telegram_code_sent", "{}", a.body);
    let flow = a.body["flow_id"].as_str().unwrap().to_string();
    let code = app
        .sim
        .last_login_code(start["phone"].as_str().unwrap())
        .unwrap();
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    (flow, a)
}

/// Messages the bot sent the user, oldest first.
fn from_bot(app: &TestApp, tg: &tgsim::UserInfo, bot: &tgsim::UserInfo) -> Vec<String> {
    app.sim
        .received_messages(tg.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == Some(bot.id) && m.peer == Peer::User(bot.id))
        .map(|m| m.text)
        .collect()
}

/// The user opens the binding link in Telegram and presses Start; waits for the bot's answer.
async fn open_link(app: &TestApp, w: &World, tg: &tgsim::UserInfo, link: &str) -> String {
    let payload = link.split("start=").nth(1).unwrap();
    let before = from_bot(app, tg, &w.bot).len();
    app.sim
        .send_message(
            tg.id,
            Peer::User(w.bot.id),
            tgsim::OutgoingMessage::text(format!("/start {payload}")),
        )
        .unwrap();
    eventually("the bot's answer to /start", || async {
        from_bot(app, tg, &w.bot).get(before).cloned()
    })
    .await
}

/// The six digits of the newest code message after the first `after` bot messages.
async fn bot_code(app: &TestApp, w: &World, tg: &tgsim::UserInfo, after: usize) -> String {
    let text = eventually("the bot's code", || async {
        from_bot(app, tg, &w.bot)
            .into_iter()
            .skip(after)
            .rfind(|t| t.contains("sign-in code"))
    })
    .await;
    text.split(|c: char| !c.is_ascii_digit())
        .find(|d| d.len() == 6)
        .unwrap()
        .to_string()
}

/// A user who signed up and bound the service bot.
async fn returning_user(app: &TestApp, w: &World, phone: &str, name: &str) -> tgsim::UserInfo {
    let (tg, _, a) = sign_up(app, phone, name).await;
    let link = a.body["bot_link"].as_str().unwrap().to_string();
    let answer = open_link(app, w, &tg, &link).await;
    assert!(answer.contains("linked"), "{answer}");
    tg
}

/// tgsim's MTProto counters without the transport's own pings.
fn mtproto(app: &TestApp) -> (u64, BTreeMap<String, BTreeMap<String, u64>>) {
    let c = app.sim.counters();
    let calls = c
        .accounts
        .into_iter()
        .map(|(k, a)| {
            let calls = a
                .calls
                .into_iter()
                .filter(|(m, _)| !m.starts_with("ping"))
                .collect();
            (k, calls)
        })
        .collect();
    (c.connections_total, calls)
}

fn sessions_opened(app: &TestApp) -> u64 {
    app.running
        .accounts
        .supervisor()
        .settings()
        .sessions_opened
        .get()
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Rows a sign-up creates: users, workspaces, memberships, accounts, stored sessions (sealed
/// keys), web sessions.
async fn created_rows(app: &TestApp) -> [i64; 6] {
    let db = app.stores().unwrap();
    let mut rows = [0; 6];
    for (n, table) in [
        "users",
        "workspaces",
        "memberships",
        "accounts",
        "account_dc_keys WHERE auth_key_sealed IS NOT NULL",
        "web_sessions",
    ]
    .into_iter()
    .enumerate()
    {
        rows[n] = db.scalar(&format!("SELECT count(*) FROM {table}")).await;
    }
    rows
}

/// The open MTProto connections made with the keys of `tg`'s account.
fn open_connections(app: &TestApp, tg: &tgsim::UserInfo) -> u64 {
    app.sim
        .counters()
        .accounts
        .get(&tg.id.0.to_string())
        .map_or(0, |c| c.open_connections)
}

/// Waits until `tg`'s account has exactly one open connection, and checks it still has one a
/// little later (a login client left open would show by then).
async fn one_client_runs(app: &TestApp, tg: &tgsim::UserInfo) {
    eventually("one open connection of the account", || async {
        (open_connections(app, tg) == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(open_connections(app, tg), 1);
}

/// Checks what a first sign-in creates, from its `signed_in` answer: the user (named after
/// their Telegram profile) owning a personal workspace of their own, a working web session,
/// exactly one account with exactly one stored session, and exactly one client running for it.
/// Returns the user's session.
async fn signed_up_once(app: &TestApp, anon: &Anon, a: &Answer, tg: &tgsim::UserInfo) -> Browser {
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "signed_in", "{}", a.body);
    assert_eq!(a.body["method"], "telegram");
    assert_eq!(a.body["new_user"], true);
    assert_eq!(a.body["user"]["role"], "owner");
    let ws = a.body["user"]["workspace_id"].as_i64().unwrap();
    assert_ne!(ws, app.workspace.0);
    assert!(a.set.iter().any(|c| c.starts_with("sb_session=")));
    let me = anon.session(app, a);
    let r: Value = me.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(r["display_name"], tg.first_name.as_str());
    let db = app.stores().unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM memberships WHERE workspace_id = {ws}"
        ))
        .await,
        1,
        "a personal workspace"
    );
    // The account is theirs, and its one client runs.
    let accounts: Value = me.get("/api/v1/accounts").await.json().await.unwrap();
    let list = accounts["accounts"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_i64().unwrap();
    switchboard_tests::accounts::wait_status(&me, id, "connected").await;
    let tg_id = tg.id.0;
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM accounts WHERE telegram_user_id = {tg_id}"
        ))
        .await,
        1
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM account_dc_keys WHERE account_id = {id} \
             AND auth_key_sealed IS NOT NULL"
        ))
        .await,
        1,
        "one stored session"
    );
    assert_eq!(app.sim.sessions(tg.id), 1, "one authorization at Telegram");
    one_client_runs(app, tg).await;
    me
}

async fn a_new_user_signs_up_once_and_their_account_runs_one_client(app: &TestApp) {
    let w = world(app).await;
    let (tg, anon, a) = sign_up(app, "+15550200001", "Dana").await;
    assert!(
        a.body["bot_link"]
            .as_str()
            .unwrap()
            .starts_with("https://t.me/signin_bot?start=sb_")
    );
    signed_up_once(app, &anon, &a, &tg).await;
    // The admin's workspace did not get the account.
    let admin_accounts: Value = w.admin.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(admin_accounts["accounts"].as_array().unwrap().len(), 0);
}

/// A Telegram user with a 2FA password.
fn guarded(app: &TestApp, phone: &str, name: &str, password: &str) -> tgsim::UserInfo {
    app.sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: name.into(),
            password: Some(password.into()),
            password_hint: Some("the usual".into()),
            ..Default::default()
        })
        .unwrap()
}

/// Submits a wrong 2FA password to a flow waiting for it: refused with its stable code, and
/// nothing is created (no user, workspace, account, stored session or web session).
async fn a_wrong_password_creates_nothing(app: &TestApp, anon: &mut Anon, flow: &str) {
    let before = created_rows(app).await;
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/password"),
            &json!({"password": "not-the-password"}),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (400, Some("password_invalid")),
        "{}",
        a.body
    );
    assert!(a.set.is_empty(), "no cookie: {:?}", a.set);
    assert_eq!(created_rows(app).await, before);
}

async fn a_new_user_signs_up_by_qr_through_their_2fa_password(app: &TestApp) {
    world(app).await;
    let tg = guarded(app, "+15550200081", "Kira", "qr-signup-2fa");
    let mut anon = Anon::new(app);
    let a = anon
        .post(
            "/api/v1/auth/start",
            &json!({"phone": "+15550200081", "method": "qr"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "qr_pending", "{}", a.body);
    let flow = a.body["flow_id"].as_str().unwrap().to_string();
    let pending = app.sim.qr_logins();
    let latest = pending.last().expect("tgsim has the pending login");
    assert_eq!(
        a.body["qr"]["url"],
        format!("tg://login?token={}", latest.token)
    );
    assert!(a.body["svg"].as_str().unwrap().contains("<svg"));
    // Not scanned yet.
    let a = anon.get(&format!("/api/v1/auth/telegram/{flow}")).await;
    assert_eq!(a.body["status"], "qr_pending", "{}", a.body);
    // The phone approves; the flow asks for the 2FA password.
    app.sim.approve_latest_qr_login(tg.id).unwrap();
    let step = eventually("the QR approval", || async {
        let a = Anon::new(app)
            .get(&format!("/api/v1/auth/telegram/{flow}"))
            .await;
        (a.body["status"] != "qr_pending").then_some(a.body)
    })
    .await;
    assert_eq!(step["status"], "password_needed", "{step}");
    assert_eq!(step["hint"], "the usual");
    a_wrong_password_creates_nothing(app, &mut anon, &flow).await;
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/password"),
            &json!({"password": "qr-signup-2fa"}),
        )
        .await;
    signed_up_once(app, &anon, &a, &tg).await;
    let db = app.stores().unwrap();
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM audit_events WHERE CAST(details AS TEXT) LIKE '%qr-signup-2fa%'"
        )
        .await,
        0,
        "the password is never audited"
    );
}

async fn a_new_user_with_a_2fa_password_signs_up_by_code_and_a_wrong_one_creates_nothing(
    app: &TestApp,
) {
    world(app).await;
    let tg = guarded(app, "+15550200082", "Lena", "code-signup-2fa");
    let mut anon = Anon::new(app);
    let (flow, a) = through_telegrams_code(app, &mut anon, json!({"phone": "+15550200082"})).await;
    assert_eq!(a.body["status"], "password_needed", "{}", a.body);
    assert_eq!(a.body["flow_id"], flow.as_str());
    assert_eq!(a.body["hint"], "the usual");
    assert!(a.set.is_empty(), "not signed in yet");
    a_wrong_password_creates_nothing(app, &mut anon, &flow).await;
    // The same flow takes the right password.
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/password"),
            &json!({"password": "code-signup-2fa", "remember_device": true}),
        )
        .await;
    signed_up_once(app, &anon, &a, &tg).await;
    assert!(a.set.iter().any(|c| c.starts_with("sb_device=")));
    // The finished flow is gone.
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/password"),
            &json!({"password": "code-signup-2fa"}),
        )
        .await;
    assert_eq!(a.body["error"]["code"], "login_flow_not_found");
}

async fn a_returning_user_without_the_bot_chooses_telegrams_code_explicitly(app: &TestApp) {
    let w = world(app).await;
    // Lev signed up and never opened the binding link.
    let (tg, first_browser, first) = sign_up(app, "+15550200091", "Lev").await;
    let user_id = first.body["user"]["id"].clone();
    let ws = first.body["user"]["workspace_id"].clone();
    // Their account's client runs (it is what monitoring uses); let it settle.
    let lev = first_browser.session(app, &first);
    let accounts: Value = lev.get("/api/v1/accounts").await.json().await.unwrap();
    let account = accounts["accounts"][0]["id"].as_i64().unwrap();
    switchboard_tests::accounts::wait_status(&lev, account, "connected").await;
    one_client_runs(app, &tg).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = created_rows(app).await;
    let before = mtproto(app);
    let opened = sessions_opened(app);

    // Told how to bind the bot, with no MTProto and no message.
    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200091"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "bind_bot", "{}", a.body);
    assert_eq!(a.body["bot_username"], "signin_bot");
    assert_eq!(a.body["expires_in_secs"], 600);
    assert!(
        a.body["link"]
            .as_str()
            .unwrap()
            .starts_with("https://t.me/signin_bot?start=sb_"),
        "{}",
        a.body
    );
    assert_eq!((mtproto(app), sessions_opened(app)), (before, opened));
    assert!(from_bot(app, &tg, &w.bot).is_empty());
    let connections = app.sim.counters().connections_total;

    // They choose Telegram's code instead, at once: one login client for the flow.
    let a = anon
        .post(
            "/api/v1/auth/start",
            &json!({"phone": "+15550200091", "method": "telegram"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "telegram_code_sent", "{}", a.body);
    assert_eq!(
        app.sim.counters().connections_total,
        connections + 1,
        "one login client"
    );
    let flow = a.body["flow_id"].as_str().unwrap().to_string();
    let code = app.sim.last_login_code("+15550200091").unwrap();
    let a = anon
        .post(
            &format!("/api/v1/auth/telegram/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "signed_in", "{}", a.body);
    assert_eq!(a.body["method"], "telegram");
    assert_eq!(a.body["new_user"], false);
    assert_eq!(a.body["user"]["id"], user_id, "their existing user");
    assert_eq!(a.body["user"]["workspace_id"], ws);
    assert!(
        a.body["bot_link"]
            .as_str()
            .unwrap()
            .starts_with("https://t.me/signin_bot?start=sb_"),
        "still not bound: the link is offered again"
    );
    let me = anon.session(app, &a);
    assert_eq!(me.get("/api/v1/me").await.status(), 200);
    // No second user, workspace, account or stored session; one more web session.
    let mut expected = rows;
    expected[5] += 1;
    assert_eq!(created_rows(app).await, expected);
    // The account (the same one) runs again, and its supervised client is its only client.
    let accounts: Value = me.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(accounts["accounts"][0]["id"], account);
    switchboard_tests::accounts::wait_status(&me, account, "connected").await;
    one_client_runs(app, &tg).await;
    // The session it replaced was logged out at Telegram: no orphaned authorization is left.
    assert_eq!(app.sim.sessions(tg.id), 1);
}

async fn a_returning_user_gets_the_bots_code_without_any_mtproto(app: &TestApp) {
    let w = world(app).await;
    let tg = returning_user(app, &w, "+15550200002", "Egor").await;
    // Their account's client runs (it is what monitoring uses); let it settle.
    eventually("the account's client to run", || async {
        let c = app.sim.counters();
        (c.accounts.get(&tg.id.0.to_string())?.open_connections == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mtproto(app);
    let opened = sessions_opened(app);
    let sent_before = from_bot(app, &tg, &w.bot).len();

    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+1 555 020-0002"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "code_sent");
    assert_eq!(a.body["via"], "bot");
    assert_eq!(a.body["bot_username"], "signin_bot");
    assert_eq!(a.body["code_length"], 6);
    let code = bot_code(app, &w, &tg, sent_before).await;
    let a = anon
        .post(
            "/api/v1/auth/verify",
            &json!({"phone": "+15550200002", "code": code}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "signed_in");
    assert_eq!(a.body["method"], "bot_code");
    assert_eq!(a.body["new_user"], false);
    assert_eq!(a.body["bot_link"], Value::Null, "already bound");
    let me = anon.session(app, &a);
    assert_eq!(me.get("/api/v1/me").await.status(), 200);

    // No connection opened, no MTProto call made, no session decrypted.
    assert_eq!(mtproto(app), before);
    assert_eq!(sessions_opened(app), opened);
    // The code came from the bot; the user's own account sent nothing.
    let own: Vec<String> = app
        .sim
        .messages(tg.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.out && m.text.contains(&code))
        .map(|m| m.text)
        .collect();
    assert!(own.is_empty(), "{own:?}");
    let from_service = app
        .sim
        .received_messages(tg.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.text.contains(&code))
        .map(|m| m.from)
        .collect::<Vec<_>>();
    assert_eq!(from_service, vec![Some(w.bot.id)]);
    // Nothing of it was stored.
    let db = app.stores().unwrap();
    let stored = db
        .scalar(&format!(
            "SELECT count(*) FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
             WHERE c.bot_id IS NOT NULL AND m.text LIKE '%{code}%'"
        ))
        .await;
    assert_eq!(stored, 0, "the code is no message of the bot's workspace");
}

async fn wrong_expired_used_and_sixth_codes_are_refused(app: &TestApp) {
    let w = world(app).await;
    let db = app.stores().unwrap();
    // Wrong, then right, then the same again.
    let a_tg = returning_user(app, &w, "+15550200011", "Anna").await;
    let mut anon = Anon::new(app);
    let n = from_bot(app, &a_tg, &w.bot).len();
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200011"}))
        .await;
    assert_eq!(a.body["status"], "code_sent");
    let code = bot_code(app, &w, &a_tg, n).await;
    let verify = |code: String| json!({"phone": "+15550200011", "code": code});
    let a = anon
        .post("/api/v1/auth/verify", &verify(wrong(&code)))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (401, Some("code_invalid"))
    );
    assert!(!a.set.iter().any(|c| c.starts_with("sb_session=")));
    let a = anon
        .post("/api/v1/auth/verify", &verify(code.clone()))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = anon
        .post("/api/v1/auth/verify", &verify(code.clone()))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (401, Some("code_expired"))
    );
    let a = anon
        .post("/api/v1/auth/verify", &verify("12ab56".into()))
        .await;
    assert_eq!(a.body["error"]["code"], "code_invalid");

    // Five wrong checks end the code: the right one is refused after them.
    let b_tg = returning_user(app, &w, "+15550200012", "Boris").await;
    let n = from_bot(app, &b_tg, &w.bot).len();
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200012"}))
        .await;
    assert_eq!(a.body["status"], "code_sent");
    let code = bot_code(app, &w, &b_tg, n).await;
    let verify = |code: String| json!({"phone": "+15550200012", "code": code});
    for _ in 0..5 {
        let a = anon
            .post("/api/v1/auth/verify", &verify(wrong(&code)))
            .await;
        assert_eq!(a.body["error"]["code"], "code_invalid");
    }
    let a = anon
        .post("/api/v1/auth/verify", &verify(code.clone()))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (401, Some("code_expired"))
    );

    // An expired code (its five minutes over) is refused.
    let c_tg = returning_user(app, &w, "+15550200013", "Clara").await;
    let n = from_bot(app, &c_tg, &w.bot).len();
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200013"}))
        .await;
    assert_eq!(a.body["status"], "code_sent");
    let code = bot_code(app, &w, &c_tg, n).await;
    let moved = db
        .execute(&format!(
            "UPDATE signin_codes SET expires_at = {} WHERE used_at IS NULL \
             AND user_id = (SELECT id FROM users WHERE phone = '15550200013')",
            switchboard_domain::Timestamp::now().0 - 1
        ))
        .await;
    assert_eq!(moved, 1);
    let a = anon
        .post(
            "/api/v1/auth/verify",
            &json!({"phone": "+15550200013", "code": code}),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (401, Some("code_expired"))
    );
    // An unknown phone learns nothing more than a wrong code.
    let a = anon
        .post(
            "/api/v1/auth/verify",
            &json!({"phone": "+15550209999", "code": "123456"}),
        )
        .await;
    assert_eq!(a.body["error"]["code"], "code_invalid");
    // Codes are stored only as keyed hashes.
    let plain = db
        .scalar(&format!(
            "SELECT count(*) FROM signin_codes WHERE code_hash = '{code}'"
        ))
        .await;
    assert_eq!(plain, 0);
}

async fn parallel_checks_cannot_pass_the_attempt_limit(app: &TestApp) {
    let w = world(app).await;
    let tg = returning_user(app, &w, "+15550200021", "Dmitry").await;
    let n = from_bot(app, &tg, &w.bot).len();
    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200021"}))
        .await;
    assert_eq!(a.body["status"], "code_sent");
    let code = bot_code(app, &w, &tg, n).await;
    let n: u32 = code.parse().unwrap();
    // Twenty different wrong guesses at once (the address's failure window holds 20).
    let guesses: Vec<_> = (1..=20)
        .map(|i| {
            let http = app.http.clone();
            let url = app.at("/api/v1/auth/verify");
            let guess = format!("{:06}", (n + i) % 1_000_000);
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&json!({"phone": "+15550200021", "code": guess}))
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                v["error"]["code"].as_str().unwrap_or("none").to_string()
            })
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in guesses {
        *counts.entry(g.await.unwrap()).or_default() += 1;
    }
    assert_eq!(counts.get("code_invalid"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("code_expired"), Some(&15), "{counts:?}");
    let db = app.stores().unwrap();
    assert_eq!(
        db.scalar("SELECT CAST(max(attempts) AS BIGINT) FROM signin_codes")
            .await,
        5
    );
}

async fn parallel_starts_respect_the_limits(app: &TestApp) {
    let w = world(app).await;
    let tg = returning_user(app, &w, "+15550200031", "Elena").await;
    let n = from_bot(app, &tg, &w.bot).len();
    // Ten starts for one phone at once: one code, nine refusals with a wait.
    let starts: Vec<_> = (0..10)
        .map(|_| {
            let http = app.http.clone();
            let url = app.at("/api/v1/auth/start");
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&json!({"phone": "+15550200031"}))
                    .send()
                    .await
                    .unwrap();
                let wait = r.headers().get("retry-after").is_some();
                let v: Value = r.json().await.unwrap();
                let status = v["status"]
                    .as_str()
                    .or(v["error"]["code"].as_str())
                    .unwrap()
                    .to_string();
                (status, wait)
            })
        })
        .collect();
    let mut sent = 0;
    let mut limited = 0;
    for s in starts {
        match s.await.unwrap() {
            (s, false) if s == "code_sent" => sent += 1,
            (s, true) if s == "rate_limited" => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((sent, limited), (1, 9));
    // The wait is the rest of the minute between two codes.
    let a = Anon::new(app)
        .post("/api/v1/auth/start", &json!({"phone": "+15550200031"}))
        .await;
    assert_eq!(a.status, 429);
    assert!(matches!(a.retry_after, Some(1..=60)), "{:?}", a.retry_after);
    bot_code(app, &w, &tg, n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(from_bot(app, &tg, &w.bot).len(), n + 1, "one code sent");
    // One client address: 20 starts in 15 minutes. Two were taken (the sign-up and the code
    // above; refused starts take none), so of 25 new phones at once 18 go on and 7 wait.
    let starts: Vec<_> = (0..25)
        .map(|i| {
            let http = app.http.clone();
            let url = app.at("/api/v1/auth/start");
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&json!({"phone": format!("+1555030{i:04}")}))
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                v["error"]["code"].as_str() == Some("rate_limited")
            })
        })
        .collect();
    let mut refused = 0;
    for s in starts {
        refused += usize::from(s.await.unwrap());
    }
    assert_eq!(refused, 7);
}

/// More returning users start at once than the service bot may message in a second (the Bot
/// API's 30; tgsim answers 429 with `retry_after` past it): every one still gets their code,
/// the start waiting out `retry_after`, and signs in with it.
async fn a_burst_of_sign_ins_past_the_bots_rate_gets_every_code(app: &TestApp) {
    const USERS: usize = 45;
    let w = world(app).await;
    let list: Value = w.admin.get("/api/v1/bots").await.json().await.unwrap();
    let bot_id = switchboard_domain::BotId(list["bots"][0]["id"].as_i64().unwrap());
    let stores = app.stores().unwrap();
    let mut users = Vec::new();
    for i in 0..USERS {
        let phone = format!("+1555{:07}", 3_000_000 + i);
        let tg = app
            .sim
            .create_user(tgsim::NewUser {
                phone: phone.clone(),
                first_name: format!("Burst {i}"),
                ..Default::default()
            })
            .unwrap();
        // Signed up and bound before (how they got there is the other tests' subject).
        switchboard_tests::accounts::bound_signin_user(&stores, &tg, &phone, bot_id).await;
        users.push((phone, tg, format!("10.7.0.{}", i + 1)));
    }
    let start = |phone: String, ip: String| {
        let http = app.http.clone();
        let url = app.at("/api/v1/auth/start");
        async move {
            let r = http
                .post(url)
                .header("x-forwarded-for", ip)
                .json(&json!({"phone": phone}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let answers = futures_util::future::join_all(
        users
            .iter()
            .map(|(phone, _, ip)| start(phone.clone(), ip.clone())),
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "code_sent", "{body}");
    }
    for (phone, tg, ip) in &users {
        let code = bot_code(app, &w, tg, 0).await;
        let r = app
            .http
            .post(app.at("/api/v1/auth/verify"))
            .header("x-forwarded-for", ip)
            .json(&json!({"phone": phone, "code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "signed_in", "{body}");
    }
}

async fn a_remembered_browser_needs_no_code_until_revoked(app: &TestApp) {
    let w = world(app).await;
    let tg = returning_user(app, &w, "+15550200041", "Fedor").await;
    let n = from_bot(app, &tg, &w.bot).len();
    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200041"}))
        .await;
    assert_eq!(a.body["status"], "code_sent");
    let code = bot_code(app, &w, &tg, n).await;
    let a = anon
        .post(
            "/api/v1/auth/verify",
            &json!({"phone": "+15550200041", "code": code, "remember_device": true}),
        )
        .await;
    assert_eq!(a.status, 200);
    let device = a
        .set
        .iter()
        .find(|c| c.starts_with("sb_device="))
        .expect("a device cookie")
        .clone();
    assert!(
        device.contains("HttpOnly") && device.contains("Max-Age=2592000"),
        "{device}"
    );
    let token = anon.jar["sb_device"].clone();
    let db = app.stores().unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM trusted_devices WHERE token_hash = '{token}'"
        ))
        .await,
        0,
        "only the hash is stored"
    );
    let first = anon.session(app, &a);

    // The same browser comes back: signed in with no code and no MTProto.
    let before = mtproto(app);
    let opened = sessions_opened(app);
    let sent = from_bot(app, &tg, &w.bot).len();
    let mut again = anon.device_only();
    let a = again
        .post("/api/v1/auth/start", &json!({"phone": "+15550200041"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "signed_in");
    assert_eq!(a.body["method"], "trusted_device");
    assert_eq!((mtproto(app), sessions_opened(app)), (before, opened));
    assert_eq!(from_bot(app, &tg, &w.bot).len(), sent, "no code was sent");
    let second = again.session(app, &a);
    // The device is listed, with this browser marked.
    let r: Value = app
        .http
        .get(app.at("/api/v1/me/devices"))
        .header(
            COOKIE,
            format!("{}; sb_device={}", second.cookie, again.jar["sb_device"]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let devices = r["devices"].as_array().unwrap().clone();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["current"], true);
    let id = devices[0]["id"].as_i64().unwrap();
    // Someone else cannot revoke it.
    let other = w
        .admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/me/devices/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(other.status(), 404);
    // Revoked: the browser needs a code again.
    let r = first
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/me/devices/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 204);
    let mut third = anon.device_only();
    let a = third
        .post("/api/v1/auth/start", &json!({"phone": "+15550200041"}))
        .await;
    assert_ne!(a.body["status"], "signed_in", "{}", a.body);
    assert!(!a.set.iter().any(|c| c.starts_with("sb_session=")));
    let listed: Value = first.get("/api/v1/me/devices").await.json().await.unwrap();
    assert_eq!(listed["devices"].as_array().unwrap().len(), 0);
}

async fn the_bot_binds_only_its_telegram_user_and_sign_in_stays_out_of_the_inbox(app: &TestApp) {
    let w = world(app).await;
    let (a_tg, a_anon, a) = sign_up(app, "+15550200051", "Galina").await;
    let (b_tg, _, _) = sign_up(app, "+15550200052", "Ivan").await;
    let link = a.body["bot_link"].as_str().unwrap().to_string();
    // Ivan opens Galina's link: refused, and the link is used up.
    let answer = open_link(app, &w, &b_tg, &link).await;
    assert!(answer.contains("not valid"), "{answer}");
    let galina = a_anon.session(app, &a);
    let mine: Value = galina.get("/api/v1/me/signin").await.json().await.unwrap();
    assert_eq!(mine["bound"], false);
    assert_eq!(mine["service_bot_username"], "signin_bot");
    let answer = open_link(app, &w, &a_tg, &link).await;
    assert!(answer.contains("not valid"), "a used link: {answer}");
    // A fresh link from Settings works, once.
    let r: Value = galina
        .post("/api/v1/me/bot-link", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let fresh = r["link"].as_str().unwrap().to_string();
    let answer = open_link(app, &w, &a_tg, &fresh).await;
    assert!(answer.contains("linked"), "{answer}");
    let mine: Value = galina.get("/api/v1/me/signin").await.json().await.unwrap();
    assert_eq!(mine["bound"], true);
    // None of it became an inbox chat of the bot's workspace; an ordinary message does.
    let chats: Value = w.admin.get("/api/v1/chats").await.json().await.unwrap();
    assert_eq!(chats["chats"].as_array().unwrap().len(), 0, "{chats}");
    app.sim
        .send_message(
            a_tg.id,
            Peer::User(w.bot.id),
            tgsim::OutgoingMessage::text("hello"),
        )
        .unwrap();
    eventually("the ordinary message in the inbox", || async {
        let chats: Value = w.admin.get("/api/v1/chats").await.json().await.ok()?;
        (chats["chats"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // Galina's own account (her workspace's inbox) does not ingest her chat with the service
    // bot either: a code the bot sends her, her binding and her "hello" stay out of it, or an
    // admin or operator of her workspace could read her codes and sign in as her.
    let n = from_bot(app, &a_tg, &w.bot).len();
    let mut anon = Anon::new(app);
    let s = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200051"}))
        .await;
    assert_eq!(s.body["status"], "code_sent", "{}", s.body);
    bot_code(app, &w, &a_tg, n).await;
    app.sim
        .send_message(
            b_tg.id,
            Peer::User(a_tg.id),
            tgsim::OutgoingMessage::text("from Ivan"),
        )
        .unwrap();
    let chats = eventually("Ivan's message in Galina's inbox", || async {
        let chats: Value = galina.get("/api/v1/chats").await.json().await.ok()?;
        let list = chats["chats"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(chats.len(), 1, "only Ivan's chat: {chats:?}");
    let Some(stored) = app.stores() else { return };
    let with_bot = stored
        .scalar(&format!(
            "SELECT count(*) FROM chats WHERE peer_id = {}",
            w.bot.id.0
        ))
        .await;
    assert_eq!(
        with_bot, 0,
        "no account's inbox has a chat with the service bot"
    );
}

async fn invites_admit_new_users_once(app: &TestApp) {
    let w = world(app).await;
    for phone in ["+15550200061", "+15550200062"] {
        app.sim
            .create_user(tgsim::NewUser {
                phone: phone.into(),
                first_name: "Invited".into(),
                ..Default::default()
            })
            .unwrap();
    }
    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200061"}))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (403, Some("invite_required"))
    );
    // Operators cannot invite.
    let op = app.login("operator", PASSWORD).await;
    assert_eq!(
        op.post("/api/v1/auth/invites", &json!({})).await.status(),
        403
    );
    let r = w.admin.post("/api/v1/auth/invites", &json!({})).await;
    assert_eq!(r.status(), 201);
    let invite: Value = r.json().await.unwrap();
    let token = invite["token"].as_str().unwrap().to_string();
    assert_eq!(invite["link"], format!("/login?invite={token}"));
    let start = json!({"phone": "+15550200061", "invite": token});
    let (_, a) = through_telegrams_code(app, &mut anon, start).await;
    assert_eq!(a.body["status"], "signed_in", "{}", a.body);
    assert_eq!(a.body["new_user"], true);
    // Used up.
    let mut other = Anon::new(app);
    let a = other
        .post(
            "/api/v1/auth/start",
            &json!({"phone": "+15550200062", "invite": token}),
        )
        .await;
    assert_eq!(a.body["error"]["code"], "invite_required");
}

async fn put(b: &Browser, body: Value) -> reqwest::Response {
    b.send(
        reqwest::Method::PUT,
        "/api/v1/auth/settings/service-bot",
        Some(&body),
        true,
    )
    .await
}

async fn only_owners_of_the_main_workspace_choose_the_service_bot(app: &TestApp) {
    let w = world(app).await;
    let (_, other_owner) = app.other_workspace("Other", "carol").await;
    let bot_id = {
        let list: Value = w.admin.get("/api/v1/bots").await.json().await.unwrap();
        list["bots"][0]["id"].as_i64().unwrap()
    };
    // An owner of another workspace may not, nor an operator.
    assert_eq!(
        put(&other_owner, json!({"bot_id": bot_id})).await.status(),
        403
    );
    let op = app.login("operator", PASSWORD).await;
    assert_eq!(put(&op, json!({"bot_id": bot_id})).await.status(), 403);
    let view: Value = other_owner
        .get("/api/v1/auth/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["can_manage"], false);
    // A bot of another workspace cannot be chosen.
    let sim_bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "carols_bot".into(),
            first_name: "Carol".into(),
            token: None,
        })
        .unwrap();
    let r = other_owner
        .post("/api/v1/bots", &json!({"token": sim_bot.token.unwrap()}))
        .await;
    let carols: i64 = r.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap();
    let r = put(&w.admin, json!({"bot_id": carols})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        switchboard_tests::app::error_code(r).await,
        "service_bot_invalid"
    );
    // Cleared: no service bot (the configuration names none).
    let r = put(&w.admin, json!({"bot_id": null})).await;
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["service_bot"], Value::Null);
    let options: Value = app
        .http
        .get(app.at("/api/v1/auth/options"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        options,
        json!({"self_service": "open", "service_bot_username": null})
    );
}

async fn telegram_sign_in_is_off_by_default_and_passwords_still_work(app: &TestApp) {
    let mut anon = Anon::new(app);
    let a = anon
        .post("/api/v1/auth/start", &json!({"phone": "+15550200071"}))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].as_str()),
        (403, Some("self_service_off"))
    );
    let a = anon
        .post(
            "/api/v1/auth/verify",
            &json!({"phone": "+15550200071", "code": "123456"}),
        )
        .await;
    assert_eq!(a.body["error"]["code"], "self_service_off");
    let admin = app.login("admin", PASSWORD).await;
    assert_eq!(admin.get("/api/v1/me").await.status(), 200);
    let view: Value = admin
        .get("/api/v1/auth/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["self_service"], "off");
}
