//! `switchboard keys rotate` between two runs of the real server, on both backends: every
//! secret at rest — whatever column it is in — ends up under the new key, and what uses the
//! secrets keeps working: personal accounts reconnect, a polling bot still receives and
//! answers, a webhook bot still verifies Telegram's secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::BTreeSet;
use switchboard::Config;
use switchboard_domain::{AccountId, BotId, Timestamp};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::live::{
    chat_titled, connect_personal_account, customer, eventually, reply, writes,
};
use switchboard_vault::{Keyring, Sealed};

/// Webhook mode: the server's own address is its public URL, so tgsim posts to it.
fn webhook_mode(c: &mut Config) {
    c.server.public_url = Some(format!("http://{}", c.server.listen));
}

async fn add_bot(app: &TestApp, admin: &Browser, username: &str) -> (tgsim::UserInfo, i64) {
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: username.into(),
            first_name: "Shop".into(),
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
    let v: Value = r.json().await.unwrap();
    let id = v["bot"]["id"].as_i64().unwrap();
    wait_connected(admin, "bots", id).await;
    (bot, id)
}

/// Waits until `GET /api/v1/{what}` lists `id` as connected (`what`: `bots` or `accounts`).
async fn wait_connected(admin: &Browser, what: &str, id: i64) {
    eventually(20, &format!("{what} {id} to be connected"), || async {
        let list: Value = admin
            .get(&format!("/api/v1/{what}"))
            .await
            .json()
            .await
            .ok()?;
        list[what]
            .as_array()?
            .iter()
            .any(|b| b["id"].as_i64() == Some(id) && b["status"] == "connected")
            .then_some(())
    })
    .await;
}

/// `from` writes `text` to `to` in tgsim, and the message reaches the inbox.
async fn arrives(
    app: &TestApp,
    admin: &Browser,
    from: &tgsim::UserInfo,
    to: &tgsim::UserInfo,
    text: &str,
) -> i64 {
    writes(app, from, to, text);
    eventually(20, &format!("{text:?} in the inbox"), || async {
        let chats: Value = admin.get("/api/v1/chats").await.json().await.ok()?;
        for chat in chats["chats"].as_array()? {
            let id = chat["id"].as_i64()?;
            let msgs: Value = admin
                .get(&format!("/api/v1/chats/{id}/messages"))
                .await
                .json()
                .await
                .ok()?;
            if msgs["messages"]
                .as_array()?
                .iter()
                .any(|m| m["text"] == text)
            {
                return Some(id);
            }
        }
        None
    })
    .await
}

/// Stops the server, runs `keys rotate` on its database and key file, starts it again.
async fn rotate_while_stopped(app: TestApp) -> TestApp {
    let config = app.config.clone();
    let store = app.store.clone();
    app.restart_with(|| async move {
        let done = switchboard::maintenance::rotate_keys(&config, &*store)
            .await
            .unwrap();
        assert_eq!(done.dropped.len(), 1);
    })
    .await
}

/// Every value of every binary column of the schema (not only the listed ones) that is
/// sealed is under the current key (and the old key is gone); returns the `(table, column)`s
/// that hold any value.
async fn every_secret_is_under_the_current_key(app: &TestApp) -> BTreeSet<(String, String)> {
    let keyring = switchboard::app::load_keyring(&app.config).unwrap();
    assert_eq!(keyring.key_ids().len(), 1, "the old key is dropped");
    let stores = app.stores().unwrap();
    let mut seen = BTreeSet::new();
    for (table, column, bytes) in stores.binary_values().await {
        let sealed = Sealed::from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("{table}.{column} holds a value that is not sealed: {e}"));
        assert_eq!(
            sealed.key_id(),
            keyring.current_id(),
            "{table}.{column} was not re-wrapped by the rotation"
        );
        seen.insert((table, column));
    }
    seen
}

/// Gives the account its own `api_hash` (the same value as the configuration's, so that it
/// still signs in), sealed as the server seals it.
async fn give_own_api_hash(app: &TestApp, account: i64) {
    let keyring = switchboard::app::load_keyring(&app.config).unwrap();
    let id = AccountId(account);
    let hash = app.config.telegram.api_hash.as_ref().unwrap().expose();
    let sealed = keyring
        .seal(hash.as_bytes(), &switchboard_telegram::api_hash_aad(id))
        .unwrap();
    app.running
        .account_store
        .set_account_api_hash_sealed(id, Some(&sealed.to_bytes()), Timestamp::now())
        .await
        .unwrap();
}

async fn accounts_and_a_polling_bot_work_after_a_rotation(app: TestApp) -> TestApp {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, account) = connect_personal_account(&app, &admin, "+15553100", "Owner").await;
    give_own_api_hash(&app, account).await;
    let (bot, bot_id) = add_bot(&app, &admin, "rotated_poll_bot").await;
    let eve = customer(&app, "+15553101", "Eve").await;
    arrives(&app, &admin, &eve, &bot, "to the bot, before").await;
    arrives(&app, &admin, &eve, &owner, "to the account, before").await;
    let before = Keyring::from_file(&app.config.master_key_path()).unwrap();

    let app = rotate_while_stopped(app).await;
    let listed: BTreeSet<(String, String)> = switchboard_domain::SEALED_COLUMNS
        .iter()
        .map(|c| (c.table.to_string(), c.column.to_string()))
        .collect();
    assert_eq!(
        every_secret_is_under_the_current_key(&app).await,
        listed,
        "the test stores a value in every sealed column"
    );
    let after = switchboard::app::load_keyring(&app.config).unwrap();
    assert_ne!(after.current_id(), before.current_id());

    let admin = app.login("admin", PASSWORD).await;
    wait_connected(&admin, "accounts", account).await;
    wait_connected(&admin, "bots", bot_id).await;
    arrives(&app, &admin, &eve, &owner, "to the account, after").await;
    let chat = arrives(&app, &admin, &eve, &bot, "to the bot, after").await;
    // The bot answers with its token too.
    reply(&admin, chat, "answered after the rotation").await;
    eventually(20, "the bot's answer to reach the customer", || async {
        let received = app.sim.received_messages(eve.id).ok()?;
        let sent = received
            .iter()
            .any(|r| r.from == Some(bot.id) && r.text == "answered after the rotation");
        sent.then_some(())
    })
    .await;
    let stored = app
        .running
        .inbox
        .store()
        .load_bot(BotId(bot_id))
        .await
        .unwrap();
    assert!(stored.last_update_id.is_some());
    app
}

async fn a_webhook_bot_verifies_its_secret_after_a_rotation(app: TestApp) -> TestApp {
    let admin = app.login("admin", PASSWORD).await;
    let (bot, bot_id) = add_bot(&app, &admin, "rotated_hook_bot").await;
    let fay = customer(&app, "+15553201", "Fay").await;
    arrives(&app, &admin, &fay, &bot, "through the hook, before").await;

    let app = rotate_while_stopped(app).await;
    let seen = every_secret_is_under_the_current_key(&app).await;
    assert!(seen.contains(&("bots".to_string(), "hook_secret_sealed".to_string())));

    let admin = app.login("admin", PASSWORD).await;
    wait_connected(&admin, "bots", bot_id).await;
    // tgsim delivers through the webhook with the secret; the server still checks it.
    arrives(&app, &admin, &fay, &bot, "through the hook, after").await;
    let chat = chat_titled(&admin, "Fay").await;
    assert_eq!(chat["bot_id"].as_i64(), Some(bot_id));
    let stored = app
        .running
        .inbox
        .store()
        .load_bot(BotId(bot_id))
        .await
        .unwrap();
    let r = app
        .http
        .post(app.at(&format!("/tg/hook/{}", stored.hook_id)))
        .header("content-type", "application/json")
        .header("X-Telegram-Bot-Api-Secret-Token", "not-the-secret")
        .body(json!({"update_id": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong secret is still refused");
    app
}

switchboard_tests::restarting_app_tests!(
    accounts_and_a_polling_bot_work_after_a_rotation,
    a_webhook_bot_verifies_its_secret_after_a_rotation with webhook_mode,
);
