//! The connect flows against tgsim: code login with wrong codes and 2FA, resend through every
//! delivery method, FloodWait and other typed errors, QR login with and without 2FA, and a step
//! Telegram does not answer in time. The tests run in parallel in one process, like the flows of
//! one server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchboard_telegram::login::QR_REFRESH_MARGIN;
use switchboard_telegram::{
    CodeDelivery, Error, LoginStep, PhoneLogin, QrLogin, QrStatus, Validation, validate,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_login_with_wrong_code_then_wrong_and_right_password() {
    let sim = sim().await;
    let alice = user(&sim, "+15550100", "Alice", Some("correct horse"));
    let settings = settings(&sim);

    let (mut flow, sent) = PhoneLogin::start(&settings, "+1 555 0100").await.unwrap();
    assert_eq!(sent.delivery, CodeDelivery::App);
    assert_eq!(sent.next, Some(CodeDelivery::Sms));
    assert_eq!(sent.length, Some(5));

    let code = sim.last_login_code("+15550100").unwrap();
    let wrong = if code == "00000" { "11111" } else { "00000" };
    let err = flow.submit_code(wrong).await.unwrap_err();
    assert_eq!(err.code(), "phone_code_invalid");
    assert!(
        matches!(err, Error::InvalidCode { attempts_left: 4 }),
        "{err:?}"
    );
    let err = flow.submit_code(wrong).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidCode { attempts_left: 3 }),
        "{err:?}"
    );
    // Asking for the password before the code was accepted is the wrong step.
    assert_eq!(
        flow.submit_password("x").await.unwrap_err().code(),
        "login_wrong_step"
    );

    match flow.submit_code(&code).await.unwrap() {
        LoginStep::PasswordNeeded { hint } => assert_eq!(hint.as_deref(), Some("the usual")),
        other => panic!("expected PasswordNeeded, got {other:?}"),
    }
    assert_eq!(
        flow.submit_code(&code).await.unwrap_err().code(),
        "login_wrong_step"
    );
    let err = flow.submit_password("wrong").await.unwrap_err();
    assert_eq!(err.code(), "password_invalid");
    let done = match flow.submit_password("correct horse").await.unwrap() {
        LoginStep::Done(done) => done,
        other => panic!("expected Done, got {other:?}"),
    };
    assert_eq!(done.profile.telegram_user_id, alice.id.0);
    assert_eq!(done.profile.first_name, "Alice");
    assert_eq!(done.profile.phone.as_deref(), Some("15550100"));
    // grammers' complete_login ran against our session: self user and update state are cached.
    assert_eq!(done.session.self_user_id(), Some(alice.id.0));
    assert!(done.session.saved_update_state().is_some());
    assert!(done.session.has_auth_key());
    assert_eq!(
        flow.submit_code(&code).await.unwrap_err().code(),
        "login_finished"
    );

    // The flow's one client is closed before Done is returned.
    wait_all_closed(&sim).await;
    let counters = sim.counters();
    let mine = &counters.accounts[&alice.id.0.to_string()];
    assert_eq!(
        mine.connections, 1,
        "one client for the whole flow: {counters:?}"
    );

    // The session works on a new connection without a new login.
    let session = Arc::clone(&done.session);
    let v = validate(&settings, session).await.unwrap();
    assert_eq!(v, Validation::Valid(done.profile.clone()));
    wait_all_closed(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_login_without_password_is_done_at_the_code() {
    let sim = sim().await;
    let bob = user(&sim, "+15550101", "Bob", None);
    let settings = settings(&sim);
    let (mut flow, _) = PhoneLogin::start(&settings, "15550101").await.unwrap();
    let code = sim.last_login_code("15550101").unwrap();
    let LoginStep::Done(done) = flow.submit_code(&code).await.unwrap() else {
        panic!("expected Done")
    };
    assert_eq!(done.profile.telegram_user_id, bob.id.0);
    assert_eq!(done.session.self_user_id(), Some(bob.id.0));
    assert!(done.session.saved_update_state().is_some());
    wait_all_closed(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_moves_app_to_sms_to_call_then_reports_unavailable() {
    let sim = sim().await;
    let carol = user(&sim, "+15550102", "Carol", None);
    let settings = settings(&sim);
    let (mut flow, sent) = PhoneLogin::start(&settings, "+15550102").await.unwrap();
    assert_eq!(sent.delivery, CodeDelivery::App);
    let sms = flow.resend().await.unwrap();
    assert_eq!(sms.delivery, CodeDelivery::Sms);
    assert_eq!(sms.next, Some(CodeDelivery::Call));
    let call = flow.resend().await.unwrap();
    assert_eq!(call.delivery, CodeDelivery::Call);
    assert_eq!(call.next, None);
    let err = flow.resend().await.unwrap_err();
    assert_eq!(err.code(), "send_code_unavailable");
    let notices = sim.phone_notices("+15550102");
    assert_eq!(
        notices.iter().map(|n| n.via).collect::<Vec<_>>(),
        vec![
            tgsim::CodeKind::App,
            tgsim::CodeKind::Sms,
            tgsim::CodeKind::Call
        ]
    );
    // The code still signs in after resending.
    let code = sim.last_login_code("+15550102").unwrap();
    let LoginStep::Done(done) = flow.submit_code(&code).await.unwrap() else {
        panic!("expected Done")
    };
    assert_eq!(done.profile.telegram_user_id, carol.id.0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_code_errors_are_typed_and_flood_wait_carries_seconds() {
    let sim = sim().await;
    user(&sim, "+15550103", "Dave", None);
    let settings = settings(&sim);

    sim.flood_wait(None, "auth.sendCode", 42, 1);
    let err = PhoneLogin::start(&settings, "+15550103").await.unwrap_err();
    assert_eq!(err.code(), "flood_wait");
    assert_eq!(err.flood_wait_seconds(), Some(42));

    let err = PhoneLogin::start(&settings, "+12").await.unwrap_err();
    assert_eq!(err.code(), "phone_number_invalid");
    let err = PhoneLogin::start(&settings, "no digits").await.unwrap_err();
    assert_eq!(err.code(), "phone_number_invalid");

    sim.rpc_error(None, "auth.sendCode", 400, "PHONE_NUMBER_BANNED", 1);
    let err = PhoneLogin::start(&settings, "+15550103").await.unwrap_err();
    assert_eq!(err.code(), "phone_number_banned");

    // A phone with no Telegram account gets a code, but signing in needs an official app.
    let (mut flow, _) = PhoneLogin::start(&settings, "+15559999").await.unwrap();
    let code = sim.last_login_code("+15559999").unwrap();
    let err = flow.submit_code(&code).await.unwrap_err();
    assert_eq!(err.code(), "phone_number_unoccupied");

    // An expired code, and a FloodWait on signIn.
    let (mut flow, _) = PhoneLogin::start(&settings, "+15550103").await.unwrap();
    sim.rpc_error(None, "auth.signIn", 400, "PHONE_CODE_EXPIRED", 1);
    let err = flow.submit_code("12345").await.unwrap_err();
    assert_eq!(err.code(), "phone_code_expired");
    sim.flood_wait(None, "auth.signIn", 7, 1);
    let err = flow.submit_code("12345").await.unwrap_err();
    assert_eq!(err.flood_wait_seconds(), Some(7));
    flow.abort().await;
    wait_all_closed(&sim).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_run_out_of_attempts_and_resend_restores_them() {
    let sim = sim().await;
    user(&sim, "+15550104", "Erin", None);
    let settings = settings(&sim);
    let (mut flow, _) = PhoneLogin::start(&settings, "+15550104").await.unwrap();
    let code = sim.last_login_code("+15550104").unwrap();
    let wrong = if code == "00000" { "11111" } else { "00000" };
    for left in (0..5).rev() {
        let err = flow.submit_code(wrong).await.unwrap_err();
        assert!(matches!(err, Error::InvalidCode { attempts_left } if attempts_left == left));
    }
    let err = flow.submit_code(&code).await.unwrap_err();
    assert_eq!(err.code(), "phone_code_attempts_exceeded");
    flow.resend().await.unwrap();
    assert!(matches!(
        flow.submit_code(&code).await.unwrap(),
        LoginStep::Done(_)
    ));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_approved_on_the_phone_then_2fa() {
    let sim = sim().await;
    let frank = user(&sim, "+15550105", "Frank", Some("s3cret"));
    let settings = settings(&sim);
    let (mut flow, token) = QrLogin::start(&settings).await.unwrap();
    assert!(token.url.starts_with("tg://login?token="), "{}", token.url);
    let pending = sim.qr_logins();
    assert_eq!(pending.len(), 1);
    assert_eq!(token.url, format!("tg://login?token={}", pending[0].token));
    assert_eq!(token.expires_at, i64::from(pending[0].expires));

    // Nothing happens until the phone approves.
    assert!(matches!(flow.poll().await.unwrap(), QrStatus::Pending(_)));
    sim.approve_latest_qr_login(frank.id).unwrap();
    match flow.wait(Duration::from_secs(10)).await.unwrap() {
        QrStatus::PasswordNeeded { hint } => assert_eq!(hint.as_deref(), Some("the usual")),
        other => panic!("expected PasswordNeeded, got {other:?}"),
    }
    assert_eq!(
        flow.submit_password("nope").await.unwrap_err().code(),
        "password_invalid"
    );
    let LoginStep::Done(done) = flow.submit_password("s3cret").await.unwrap() else {
        panic!("expected Done")
    };
    assert_eq!(done.profile.telegram_user_id, frank.id.0);
    assert_eq!(done.session.self_user_id(), Some(frank.id.0));
    wait_all_closed(&sim).await;
    let counters = sim.counters();
    assert_eq!(counters.accounts[&frank.id.0.to_string()].connections, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_without_password_and_token_refresh() {
    let sim = sim().await;
    let gina = user(&sim, "+15550106", "Gina", None);
    let settings = settings(&sim);
    let (mut flow, first) = QrLogin::start(&settings).await.unwrap();
    let QrStatus::Pending(second) = flow.refresh().await.unwrap() else {
        panic!("expected a new token")
    };
    assert_ne!(first.url, second.url);
    assert_eq!(flow.token(), &second);
    sim.approve_latest_qr_login(gina.id).unwrap();
    let QrStatus::Done(done) = flow.wait(Duration::from_secs(10)).await.unwrap() else {
        panic!("expected Done")
    };
    assert_eq!(done.profile.telegram_user_id, gina.id.0);
    assert_eq!(done.profile.first_name, "Gina");
    assert!(done.session.saved_update_state().is_some());
    assert_eq!(flow.poll().await.unwrap_err().code(), "login_finished");
    sim.shutdown().await;
}

/// A QR token close to expiry is regenerated by the next poll (the QR code to show changes),
/// and the new one still logs in; a token with time left is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_token_is_regenerated_before_it_expires() {
    let sim = sim().await;
    let ivy = user(&sim, "+15550108", "Ivy", None);
    let settings = settings(&sim);
    // Valid for one second more than the refresh margin: fresh at first, expiring soon after.
    sim.set_qr_token_ttl(QR_REFRESH_MARGIN + Duration::from_secs(2));
    let (mut flow, first) = QrLogin::start(&settings).await.unwrap();
    let QrStatus::Pending(same) = flow.poll().await.unwrap() else {
        panic!("expected the token to be kept")
    };
    assert_eq!(same.url, first.url, "a token with time left is kept");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let QrStatus::Pending(second) = flow.poll().await.unwrap() else {
        panic!("expected a regenerated token")
    };
    assert_ne!(second.url, first.url, "the expiring token was replaced");
    assert!(second.expires_at > first.expires_at);
    sim.approve_latest_qr_login(ivy.id).unwrap();
    let QrStatus::Done(done) = flow.wait(Duration::from_secs(10)).await.unwrap() else {
        panic!("expected Done")
    };
    assert_eq!(done.profile.telegram_user_id, ivy.id.0);
    sim.shutdown().await;
}

/// A login step that Telegram does not answer in time fails as `telegram_unreachable` and leaves
/// no client behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_telegram_does_not_answer_in_time_fails_as_unreachable() {
    let sim = sim().await;
    user(&sim, "+15550107", "Hank", None);
    let mut settings = settings(&sim);
    settings.step_timeout = Duration::from_millis(500);
    sim.set_latency(None, Duration::from_secs(3));
    let err = PhoneLogin::start(&settings, "+15550107").await.unwrap_err();
    assert_eq!(err.code(), "telegram_unreachable");
    sim.set_latency(None, Duration::ZERO);
    // The abandoned client was stopped: nothing stays connected.
    wait_all_closed(&sim).await;
    sim.shutdown().await;
}
