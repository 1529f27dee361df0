//! `telegram.proxy`: every connection to Telegram — the accounts' MTProto and the bots' Bot API
//! — goes through the SOCKS5 proxy and never around it, on both backends. A SOCKS5 server on
//! 127.0.0.1 (`switchboard_tests::socks`) sits between Switchboard and tgsim and counts what it
//! carries: tgsim's every MTProto connection must be one of its tunnels, and the Bot API is
//! reachable only by a host name that only the proxy resolves. A proxy that is down, or that
//! refuses the credentials, shows as a health state and an error code, and its password
//! appears in no log line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use switchboard::Config;
use switchboard_tests::accounts::{account, registered_user, telethon_string};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::db::Backend;
use switchboard_tests::live::{
    chat_messages, chat_titled, connect_personal_account, customer, eventually, reply, sim_bot,
    writes,
};
use switchboard_tests::logs::{captured_logs, logged_text};
use switchboard_tests::socks::TestProxy;

/// The Bot API's host name in these tests: only the proxy resolves it (`.test` is reserved),
/// so a request that went around the proxy could not even find the server.
const BOT_API_HOST: &str = "tgsim.test";
const PROXY_USER: &str = "switchboard";
const PROXY_PASSWORD: &str = "pr0xy-Pa55-7f3e";

macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(switchboard_tests::db::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(switchboard_tests::db::Backend::Postgres).await;
                }
            }
        )+
    };
}

on_both!(
    accounts_and_bots_reach_telegram_only_through_the_proxy,
    a_proxy_that_is_down_is_never_bypassed,
    wrong_proxy_credentials_are_a_clear_error_and_never_logged,
);

/// A proxy that resolves [`BOT_API_HOST`] and wants [`PROXY_USER`]/[`PROXY_PASSWORD`].
async fn proxy() -> TestProxy {
    TestProxy::start(
        Some((PROXY_USER, PROXY_PASSWORD)),
        &[(BOT_API_HOST, IpAddr::V4(Ipv4Addr::LOCALHOST))],
    )
    .await
}

/// The default configuration with `telegram.proxy = url` and the Bot API named by a host only
/// the proxy resolves.
fn through(url: String) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.telegram.proxy = Some(url.parse().unwrap());
        c.telegram.bot_api_url = c
            .telegram
            .bot_api_url
            .replace("127.0.0.1", BOT_API_HOST)
            .replace("localhost", BOT_API_HOST);
        assert!(c.telegram.bot_api_url.contains(BOT_API_HOST));
    }
}

fn mtproto_port(app: &TestApp) -> u16 {
    app.sim.mtproto_addr().port()
}

fn bot_api_port(app: &TestApp) -> u16 {
    url::Url::parse(&app.sim.bot_api_url())
        .unwrap()
        .port()
        .unwrap()
}

async fn add_bot(admin: &Browser, token: &str) -> i64 {
    let r = admin.post("/api/v1/bots", &json!({"token": token})).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    r.json::<Value>().await.unwrap()["bot"]["id"]
        .as_i64()
        .unwrap()
}

/// The bot as `GET /api/v1/bots` lists it.
async fn bot(admin: &Browser, id: i64) -> Value {
    let list: Value = admin.get("/api/v1/bots").await.json().await.unwrap();
    list["bots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_i64() == Some(id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Imports a session holding `key` through the API; the answer.
async fn import_key(app: &TestApp, admin: &Browser, key: [u8; 256]) -> reqwest::Response {
    admin
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, key)}),
        )
        .await
}

/// Waits until `to` received `text` from `from`.
async fn wait_received(app: &TestApp, to: &tgsim::UserInfo, from: &tgsim::UserInfo, text: &str) {
    eventually(20, &format!("{:?} to arrive", text), || async {
        app.sim
            .received_messages(to.id)
            .unwrap()
            .iter()
            .any(|m| m.from == Some(from.id) && m.text == text)
            .then_some(())
    })
    .await;
}

fn bot_api_calls(app: &TestApp) -> u64 {
    app.sim
        .counters()
        .bot_api_calls
        .values()
        .flat_map(|m| m.values())
        .sum()
}

/// An account and a bot, each receiving a customer's message and sending the operator's
/// answer, with tgsim seeing no MTProto connection the proxy did not carry.
async fn accounts_and_bots_reach_telegram_only_through_the_proxy(backend: Backend) {
    let proxy = proxy().await;
    let Some(app) = TestApp::spawn(backend, through(proxy.url())).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;

    // An account: imported (validated with one connection), connected, receiving, sending.
    let (owner, account_id) = connect_personal_account(&app, &admin, "+15553101", "Owner").await;
    let alice = customer(&app, "+15553102", "Alice").await;
    writes(&app, &alice, &owner, "hello account, via the proxy");
    let chat = chat_titled(&admin, "Alice").await;
    assert_eq!(chat["account_id"].as_i64(), Some(account_id));
    let chat_id = chat["id"].as_i64().unwrap();
    eventually(20, "the account's message", || async {
        chat_messages(&admin, chat_id)
            .await
            .iter()
            .any(|m| m["text"] == "hello account, via the proxy")
            .then_some(())
    })
    .await;
    reply(&admin, chat_id, "answered by the account").await;
    eventually(
        20,
        "the customer to receive the account's answer",
        || async {
            app.sim
                .received_messages(alice.id)
                .unwrap()
                .iter()
                .any(|m| m.from == Some(owner.id) && m.text == "answered by the account")
                .then_some(())
        },
    )
    .await;

    // A bot: added (getMe), polling, receiving, sending — all by a host name only the proxy
    // resolves.
    let shop = sim_bot(&app, "proxied_bot");
    let bot_id = add_bot(&admin, shop.token.as_deref().unwrap()).await;
    eventually(20, "the bot to connect", || async {
        (bot(&admin, bot_id).await["status"] == "connected").then_some(())
    })
    .await;
    let bob = customer(&app, "+15553103", "Bob").await;
    writes(&app, &bob, &shop, "hello bot, via the proxy");
    let bot_chat = chat_titled(&admin, "Bob").await;
    assert_eq!(bot_chat["bot_id"].as_i64(), Some(bot_id));
    let bot_chat_id = bot_chat["id"].as_i64().unwrap();
    let (up_before, down_before) = proxy.bytes();
    reply(&admin, bot_chat_id, "answered by the bot").await;
    wait_received(&app, &bob, &shop, "answered by the bot").await;

    // What went where: every MTProto connection tgsim ever accepted is a tunnel of the proxy,
    // the Bot API was reached by its name through the proxy, and the answers crossed it.
    let mtproto_tunnels = proxy.tunnels_to_port(mtproto_port(&app));
    let sim_connections = app.sim.counters().connections_total;
    assert!(sim_connections >= 2, "validation and the live client");
    assert_eq!(
        mtproto_tunnels,
        sim_connections,
        "tgsim saw {sim_connections} MTProto connections, the proxy carried {mtproto_tunnels}: {:?}",
        proxy.tunnels()
    );
    let bot_target = format!("{BOT_API_HOST}:{}", bot_api_port(&app));
    assert!(
        proxy.tunnels().contains(&bot_target),
        "no tunnel to {bot_target}: {:?}",
        proxy.tunnels()
    );
    let (up, down) = proxy.bytes();
    assert!(
        up > up_before && down > down_before,
        "the bot's answer did not cross the proxy"
    );
    assert_eq!(proxy.rejected(), 0);
    app.stop().await;
}

/// With the proxy gone, the account and the bot show `telegram_proxy_unreachable` instead of
/// connecting directly; new accounts and bots are refused with that code; tgsim sees nothing.
async fn a_proxy_that_is_down_is_never_bypassed(backend: Backend) {
    let proxy = proxy().await;
    let Some(app) = TestApp::spawn(backend, through(proxy.url())).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let (owner, account_id) = connect_personal_account(&app, &admin, "+15553201", "Owner").await;
    let shop = sim_bot(&app, "proxied_down_bot");
    let bot_id = add_bot(&admin, shop.token.as_deref().unwrap()).await;
    eventually(20, "the bot to connect", || async {
        (bot(&admin, bot_id).await["status"] == "connected").then_some(())
    })
    .await;

    proxy.stop().await;
    let connections = app.sim.counters().connections_total;
    let calls = bot_api_calls(&app);
    // tgsim closes the account's connection, as Telegram would on a network change; the
    // client must come back through the proxy, which is gone.
    app.sim.drop_connections(owner.id);
    let down = eventually(40, "the account to show the proxy down", || async {
        let a = account(&admin, account_id).await;
        (a["status_detail"] == "telegram_proxy_unreachable").then_some(a)
    })
    .await;
    assert_eq!(down["status"], "reconnecting", "{down}");
    let down = eventually(40, "the bot to show the proxy down", || async {
        let b = bot(&admin, bot_id).await;
        (b["status_detail"] == "telegram_proxy_unreachable").then_some(b)
    })
    .await;
    assert_eq!(down["status"], "reconnecting", "{down}");

    // A new account or bot cannot be validated either, and says why.
    let (_, key) = registered_user(&app.sim, "+15553202", "Later");
    let r = import_key(&app, &admin, key).await;
    assert_eq!(r.status(), 502);
    assert_eq!(error_code(r).await, "telegram_proxy_unreachable");
    let other = sim_bot(&app, "later_bot");
    let r = admin
        .post("/api/v1/bots", &json!({"token": other.token.unwrap()}))
        .await;
    assert_eq!(r.status(), 502);
    assert_eq!(error_code(r).await, "telegram_proxy_unreachable");

    // Long enough for the workers to retry: still nothing reached tgsim around the proxy.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        app.sim.counters().connections_total,
        connections,
        "an MTProto connection went around the proxy"
    );
    assert_eq!(
        bot_api_calls(&app),
        calls,
        "a Bot API call went around the proxy"
    );
    assert_eq!(account(&admin, account_id).await["status"], "reconnecting");
    app.stop().await;
}

/// A wrong password: the proxy refuses every handshake, the API and the health say
/// `telegram_proxy_auth_failed`, nothing reaches tgsim, and neither password is in a log line,
/// an answer or `config check`'s output.
async fn wrong_proxy_credentials_are_a_clear_error_and_never_logged(backend: Backend) {
    captured_logs();
    let proxy = proxy().await;
    let wrong = "Wr0ng-Pa55-c41d";
    let Some(app) = TestApp::spawn(backend, through(proxy.url_with(PROXY_USER, wrong))).await
    else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;

    let (_, key) = registered_user(&app.sim, "+15553301", "Owner");
    let r = import_key(&app, &admin, key).await;
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains(wrong) && !body.contains(PROXY_PASSWORD),
        "{body}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"]["code"], "telegram_proxy_auth_failed",
        "{body}"
    );
    let listed: Value = admin.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(
        listed["accounts"].as_array().map(Vec::len),
        Some(0),
        "nothing stored"
    );

    let shop = sim_bot(&app, "wrong_pw_bot");
    let r = admin
        .post("/api/v1/bots", &json!({"token": shop.token.unwrap()}))
        .await;
    assert_eq!(r.status(), 502);
    assert_eq!(error_code(r).await, "telegram_proxy_auth_failed");

    assert!(proxy.rejected() >= 2, "the proxy saw the handshakes");
    assert!(proxy.tunnels().is_empty());
    assert_eq!(app.sim.counters().connections_total, 0);
    assert_eq!(bot_api_calls(&app), 0);

    let shown = format!("{:?}", app.config);
    assert!(
        shown.contains(&format!("socks5://{PROXY_USER}:***@")),
        "{shown}"
    );
    let logged = logged_text();
    assert!(!logged.is_empty(), "no logs were captured");
    for secret in [wrong, PROXY_PASSWORD] {
        assert!(
            !logged.contains(secret),
            "a log line shows a proxy password"
        );
        assert!(
            !shown.contains(secret),
            "the configuration's Debug shows it"
        );
    }
    app.stop().await;
}
