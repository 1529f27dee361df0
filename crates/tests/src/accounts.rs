//! Helpers of the personal-account suites: waiting for a condition, reading an account and its
//! messages through the API, and making the Telethon string of a tgsim auth key.

#![expect(
    clippy::unwrap_used,
    reason = "test support: a failed request fails the test"
)]

use crate::app::Browser;
use serde_json::Value;
use std::time::{Duration, Instant};
use switchboard_sessions::{AuthKey, ExportParams};

/// Polls `check` every 100 ms until it yields a value; panics after 30 s.
pub async fn wait_for<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
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

/// The account as `GET /api/v1/accounts` lists it (`null` if absent).
pub async fn account(b: &Browser, id: i64) -> Value {
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until the account has `status`.
pub async fn wait_status(b: &Browser, id: i64, status: &str) -> Value {
    wait_for(&format!("account {id} {status}"), || async {
        Some(account(b, id).await).filter(|a| a["status"] == status)
    })
    .await
}

/// Every message of every chat of the account, through the API, newest first per chat.
pub async fn messages_of(b: &Browser, account_id: i64) -> Vec<Value> {
    let chats: Value = b
        .get(&format!("/api/v1/accounts/{account_id}/chats"))
        .await
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for chat in chats["chats"].as_array().cloned().unwrap_or_default() {
        let mut before: Option<i64> = None;
        loop {
            let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
            let page: Value = b
                .get(&format!(
                    "/api/v1/chats/{}/messages?limit=200{q}",
                    chat["id"]
                ))
                .await
                .json()
                .await
                .unwrap();
            let msgs = page["messages"].as_array().cloned().unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            before = msgs.last().and_then(|m| m["id"].as_i64());
            out.extend(msgs);
        }
    }
    out
}

/// A Telethon string session holding `key` for tgsim's data center.
pub fn telethon_string(sim: &tgsim::Handle, key: [u8; 256]) -> String {
    let key = AuthKey::new(key);
    switchboard_sessions::telethon::export_string(&ExportParams {
        dc_id: 2,
        server_addr: Some(sim.mtproto_addr()),
        auth_key: &key,
        user_id: None,
        is_bot: None,
        api_id: None,
        test_mode: false,
    })
    .unwrap()
    .expose()
    .to_string()
}

/// A tgsim user with an auth key already signed in (what an imported session holds).
pub fn registered_user(
    sim: &tgsim::Handle,
    phone: &str,
    first_name: &str,
) -> (tgsim::UserInfo, [u8; 256]) {
    let user = sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: first_name.into(),
            ..Default::default()
        })
        .unwrap();
    let key = sim.issue_auth_key();
    sim.register_auth_key(user.id, key).unwrap();
    (user, key)
}

/// Imports a session string through the API (expecting `201 Created`); the new account's id.
pub async fn import_session(b: &Browser, session_string: &str) -> i64 {
    let r = b
        .post(
            "/api/v1/accounts/import",
            &serde_json::json!({"session_string": session_string}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["account"]["id"]
        .as_i64()
        .unwrap()
}

/// A self-service user who signed up with `tg`'s phone and bound the service bot `bot`,
/// written through the stores (for tests and benches whose subject is what comes after).
pub async fn bound_signin_user(
    stores: &crate::db::Stores,
    tg: &tgsim::UserInfo,
    phone: &str,
    bot: switchboard_domain::BotId,
) -> switchboard_domain::UserId {
    use switchboard_domain::{BotLink, NewSigninUser, Timestamp};
    let name = tg.first_name.clone();
    let (user, _, _) = stores
        .signin
        .create_signin_user(
            &NewSigninUser {
                phone: phone.trim_start_matches('+').to_string(),
                telegram_user_id: tg.id.0,
                display_name: name.clone(),
                workspace_name: name,
                locale: None,
                invite_hash: None,
            },
            Timestamp::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("create the sign-in user: {e}"));
    stores
        .signin
        .set_bot_link(&BotLink {
            user_id: user.id,
            bot_id: bot,
            chat_id: tg.id.0,
            telegram_user_id: tg.id.0,
            locale: None,
            bound_at: Timestamp::now(),
        })
        .await
        .unwrap_or_else(|e| panic!("bind the service bot: {e}"));
    user.id
}
