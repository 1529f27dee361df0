//! Imported sessions against tgsim: Telethon and Pyrogram strings made from keys tgsim knows are
//! validated with one connection; unbound, unknown and banned keys get typed results; exports
//! parse back to the same session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use switchboard_sessions::{AuthKey, ExportParams};
use switchboard_telegram::{DbSession, ExportFormat, Validation, validate};

fn telethon_string(sim: &tgsim::Handle, key: [u8; 256], dc_id: i32) -> String {
    let key = AuthKey::new(key);
    switchboard_sessions::telethon::export_string(&ExportParams {
        dc_id,
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

fn pyrogram_string(key: [u8; 256], dc_id: i32, user_id: i64) -> String {
    let key = AuthKey::new(key);
    switchboard_sessions::pyrogram::export_string(&ExportParams {
        dc_id,
        server_addr: None,
        auth_key: &key,
        user_id: Some(user_id),
        is_bot: Some(false),
        api_id: Some(API_ID),
        test_mode: false,
    })
    .unwrap()
    .expose()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telethon_string_of_a_registered_key_validates_to_the_right_profile() {
    let sim = sim().await;
    let alice = sim
        .create_user(tgsim::NewUser {
            phone: "+15550200".into(),
            first_name: "Alice".into(),
            last_name: Some("Liddell".into()),
            username: Some("alice".into()),
            ..Default::default()
        })
        .unwrap();
    let key = sim.issue_auth_key();
    sim.register_auth_key(alice.id, key).unwrap();
    let settings = settings(&sim);

    let imported = switchboard_sessions::parse_string(&telethon_string(&sim, key, 4)).unwrap();
    let session = Arc::new(DbSession::from_imported(&settings, &imported));
    assert_eq!(session.home_dc(), 4);
    assert_eq!(session.self_user_id(), None);
    let v = validate(&settings, Arc::clone(&session)).await.unwrap();
    let Validation::Valid(profile) = v else {
        panic!("expected Valid, got {v:?}")
    };
    assert_eq!(profile.telegram_user_id, alice.id.0);
    assert_eq!(profile.first_name, "Alice");
    assert_eq!(profile.last_name.as_deref(), Some("Liddell"));
    assert_eq!(profile.username.as_deref(), Some("alice"));
    assert_eq!(profile.phone.as_deref(), Some("15550200"));
    // Validation cached the self user and the initial update state.
    assert_eq!(session.self_user_id(), Some(alice.id.0));
    assert!(session.saved_update_state().is_some());
    // Exactly one connection, closed before validate returned.
    wait_all_closed(&sim).await;
    assert_eq!(
        sim.counters().accounts[&alice.id.0.to_string()].connections,
        1
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyrogram_string_of_a_registered_key_validates() {
    let sim = sim().await;
    let bob = user(&sim, "+15550201", "Bob", None);
    let key = sim.issue_auth_key();
    sim.register_auth_key(bob.id, key).unwrap();
    let settings = settings(&sim);
    let imported = switchboard_sessions::parse_string(&pyrogram_string(key, 2, bob.id.0)).unwrap();
    assert_eq!(imported.api_id, Some(API_ID));
    let session = Arc::new(DbSession::from_imported(&settings, &imported));
    assert_eq!(session.self_user_id(), Some(bob.id.0));
    let v = validate(&settings, session).await.unwrap();
    assert!(
        matches!(&v, Validation::Valid(p) if p.telegram_user_id == bob.id.0 && p.first_name == "Bob"),
        "{v:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_unknown_and_banned_sessions_get_typed_results() {
    let sim = sim().await;
    let carol = user(&sim, "+15550202", "Carol", None);
    let settings = settings(&sim);

    // A key the data center knows but that is signed in as nobody (revoked / logged out).
    let unbound = sim.issue_auth_key();
    let imported = switchboard_sessions::parse_string(&telethon_string(&sim, unbound, 2)).unwrap();
    let v = validate(
        &settings,
        Arc::new(DbSession::from_imported(&settings, &imported)),
    )
    .await
    .unwrap();
    assert_eq!(
        v,
        Validation::Unauthorized {
            reason: "AUTH_KEY_UNREGISTERED".into()
        }
    );

    // A key that was signed in and then logged out elsewhere.
    let key = sim.issue_auth_key();
    sim.register_auth_key(carol.id, key).unwrap();
    sim.rpc_error(Some(carol.id), "users.getUsers", 401, "SESSION_REVOKED", 1);
    let imported = switchboard_sessions::parse_string(&telethon_string(&sim, key, 2)).unwrap();
    let session = Arc::new(DbSession::from_imported(&settings, &imported));
    let v = validate(&settings, Arc::clone(&session)).await.unwrap();
    assert_eq!(
        v,
        Validation::Unauthorized {
            reason: "SESSION_REVOKED".into()
        }
    );

    // A banned account.
    sim.rpc_error(
        Some(carol.id),
        "users.getUsers",
        401,
        "USER_DEACTIVATED_BAN",
        1,
    );
    let v = validate(&settings, Arc::clone(&session)).await.unwrap();
    assert_eq!(
        v,
        Validation::Banned {
            reason: "USER_DEACTIVATED_BAN".into()
        }
    );

    // A key tgsim never saw: it closes the connection (it cannot run DH), so the session
    // cannot be validated; the error says Telegram is unreachable and nothing is marked.
    let imported =
        switchboard_sessions::parse_string(&telethon_string(&sim, [7u8; 256], 2)).unwrap();
    let err = validate(
        &settings,
        Arc::new(DbSession::from_imported(&settings, &imported)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "telegram_unreachable");
    wait_all_closed(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_parse_back_to_the_same_session() {
    let sim = sim().await;
    let dave = user(&sim, "+15550203", "Dave", None);
    let key = sim.issue_auth_key();
    sim.register_auth_key(dave.id, key).unwrap();
    let settings = settings(&sim);
    let imported = switchboard_sessions::parse_string(&telethon_string(&sim, key, 2)).unwrap();
    let session = Arc::new(DbSession::from_imported(&settings, &imported));
    assert!(matches!(
        validate(&settings, Arc::clone(&session)).await.unwrap(),
        Validation::Valid(_)
    ));

    let telethon = session
        .export_string(ExportFormat::Telethon, API_ID)
        .unwrap();
    let back = switchboard_sessions::telethon::parse_string(telethon.expose()).unwrap();
    assert_eq!(back.dc_id, 2);
    assert_eq!(back.auth_key.as_bytes(), &key);
    assert_eq!(back.server_addr, Some(sim.mtproto_addr()));

    let pyrogram = session
        .export_string(ExportFormat::Pyrogram, API_ID)
        .unwrap();
    let back = switchboard_sessions::pyrogram::parse_string(pyrogram.expose()).unwrap();
    assert_eq!(back.dc_id, 2);
    assert_eq!(back.auth_key.as_bytes(), &key);
    assert_eq!(back.user_id, Some(dave.id.0));
    assert_eq!(back.api_id, Some(API_ID));
    assert_eq!(back.is_bot, Some(false));

    // The exported string is itself importable and valid.
    let again = Arc::new(DbSession::from_imported(&settings, &back));
    assert!(matches!(
        validate(&settings, again).await.unwrap(),
        Validation::Valid(p) if p.telegram_user_id == dave.id.0
    ));
    sim.shutdown().await;
}
