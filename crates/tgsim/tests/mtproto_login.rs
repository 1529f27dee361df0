//! Login flows against tgsim with the real grammers-client 0.11.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use grammers_client::SignInError;
use grammers_client::tl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_login_with_wrong_code_then_wrong_and_right_2fa_password() {
    let sim = sim().await;
    let alice = sim
        .create_user(tgsim::NewUser {
            phone: "+15550100".into(),
            first_name: "Alice".into(),
            password: Some("correct horse".into()),
            password_hint: Some("horse".into()),
            ..Default::default()
        })
        .unwrap();
    let key = sim.issue_auth_key();
    let c = TestClient::connect(TestSession::new(sim.mtproto_addr().port(), key));
    assert!(!c.client.is_authorized().await.unwrap());

    let token = c
        .client
        .request_login_code("+15550100", API_HASH)
        .await
        .unwrap();
    let code = sim.last_login_code("+15550100").expect("a code was sent");
    let wrong = if code == "00000" { "11111" } else { "00000" };
    assert!(matches!(
        c.client.sign_in(&token, wrong).await,
        Err(SignInError::InvalidCode)
    ));
    let pw = match c.client.sign_in(&token, &code).await {
        Err(SignInError::PasswordRequired(pw)) => pw,
        other => panic!("expected PasswordRequired, got {other:?}"),
    };
    assert_eq!(pw.hint(), Some("horse"));
    let pw = match c.client.check_password(pw, "wrong").await {
        Err(SignInError::InvalidPassword(pw)) => pw,
        other => panic!("expected InvalidPassword, got {other:?}"),
    };
    let me = c.client.check_password(pw, "correct horse").await.unwrap();
    assert_eq!(me.id().bare_id_unchecked(), alice.id.0);
    assert_eq!(sim.auth_key_user(&key), Some(alice.id));
    assert!(c.client.is_authorized().await.unwrap());
    // The in-app code also arrived as a message from Telegram (777000).
    let received = sim.received_messages(alice.id).unwrap();
    assert!(received.iter().any(|m| m.text.contains(&code)));

    assert_eq!(sim.sessions(alice.id), 1);
    c.client.sign_out().await.unwrap();
    assert!(!c.client.is_authorized().await.unwrap());
    assert_eq!(sim.auth_key_user(&key), None);
    assert_eq!(sim.sessions(alice.id), 0);
    // The key is destroyed, as on Telegram: not even a new sign-in goes through with it.
    let again = c.client.request_login_code("+15550100", API_HASH).await;
    assert!(
        matches!(&again, Err(grammers_client::InvocationError::Rpc(e)) if e.name == "AUTH_KEY_UNREGISTERED"),
        "{:?}",
        again.err()
    );
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_code_moves_app_sms_call() {
    let sim = sim().await;
    let bob = user(&sim, "+15550101", "Bob", None);
    let key = sim.issue_auth_key();
    let c = TestClient::connect(TestSession::new(sim.mtproto_addr().port(), key));
    let sent = c
        .client
        .invoke(&tl::functions::auth::SendCode {
            phone_number: "+15550101".into(),
            api_id: API_ID,
            api_hash: API_HASH.into(),
            settings: tl::types::CodeSettings {
                allow_flashcall: false,
                current_number: false,
                allow_app_hash: false,
                allow_missed_call: false,
                allow_firebase: false,
                unknown_number: false,
                logout_tokens: None,
                token: None,
                app_sandbox: None,
            }
            .into(),
        })
        .await
        .unwrap();
    let tl::enums::auth::SentCode::Code(sent) = sent else {
        panic!("unexpected {sent:?}")
    };
    assert!(matches!(sent.r#type, tl::enums::auth::SentCodeType::App(_)));
    assert!(matches!(
        sent.next_type,
        Some(tl::enums::auth::CodeType::Sms)
    ));
    let resend = |hash: String| tl::functions::auth::ResendCode {
        phone_number: "+15550101".into(),
        phone_code_hash: hash,
        reason: None,
    };
    let tl::enums::auth::SentCode::Code(sms) = c
        .client
        .invoke(&resend(sent.phone_code_hash.clone()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(matches!(sms.r#type, tl::enums::auth::SentCodeType::Sms(_)));
    let tl::enums::auth::SentCode::Code(call) = c
        .client
        .invoke(&resend(sent.phone_code_hash.clone()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        call.r#type,
        tl::enums::auth::SentCodeType::Call(_)
    ));
    let err = c
        .client
        .invoke(&resend(sent.phone_code_hash.clone()))
        .await
        .unwrap_err();
    assert!(err.is("SEND_CODE_UNAVAILABLE"), "{err}");
    let notices = sim.phone_notices("+15550101");
    assert_eq!(
        notices.iter().map(|n| n.via).collect::<Vec<_>>(),
        vec![
            tgsim::CodeKind::App,
            tgsim::CodeKind::Sms,
            tgsim::CodeKind::Call
        ]
    );
    let code = sim.last_login_code("+15550101").unwrap();
    let auth = c
        .client
        .invoke(&tl::functions::auth::SignIn {
            phone_number: "+15550101".into(),
            phone_code_hash: sent.phone_code_hash,
            phone_code: Some(code),
            email_verification: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        auth,
        tl::enums::auth::Authorization::Authorization(_)
    ));
    assert_eq!(sim.auth_key_user(&key), Some(bob.id));
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_approved_from_the_phone_then_2fa() {
    let sim = sim().await;
    let carol = sim
        .create_user(tgsim::NewUser {
            phone: "+15550102".into(),
            first_name: "Carol".into(),
            password: Some("s3cret".into()),
            ..Default::default()
        })
        .unwrap();
    let key = sim.issue_auth_key();
    let mut c = TestClient::connect(TestSession::new(sim.mtproto_addr().port(), key));
    let mut stream = c.stream(false).await;
    let export = tl::functions::auth::ExportLoginToken {
        api_id: API_ID,
        api_hash: API_HASH.into(),
        except_ids: vec![],
    };
    let tl::enums::auth::LoginToken::Token(t) = c.client.invoke(&export).await.unwrap() else {
        panic!("expected a token")
    };
    assert_eq!(sim.qr_logins().len(), 1);
    sim.approve_qr_login(carol.id, &t.token).unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let grammers_client::update::Update::Raw(r) = stream.next().await.unwrap()
                && matches!(r.raw, tl::enums::Update::LoginToken)
            {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "updateLoginToken was not pushed");
    let err = c.client.invoke(&export).await.unwrap_err();
    assert!(err.is("SESSION_PASSWORD_NEEDED"), "{err}");
    let tl::enums::account::Password::Password(p) = c
        .client
        .invoke(&tl::functions::account::GetPassword {})
        .await
        .unwrap();
    let me = c
        .client
        .check_password(grammers_client::client::PasswordToken::new(p), "s3cret")
        .await
        .unwrap();
    assert_eq!(me.id().bare_id_unchecked(), carol.id.0);
    assert_eq!(sim.auth_key_user(&key), Some(carol.id));
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_refused_without_dh_and_unknown_method_is_an_rpc_error() {
    let sim = sim().await;
    let alice = user(&sim, "+15550103", "Alice", None);
    let c = logged_in(&sim, alice.id).await;
    // A method the simulator does not implement answers 400 INPUT_METHOD_INVALID.
    let err = c
        .client
        .invoke(&tl::functions::help::GetPremiumPromo {})
        .await
        .unwrap_err();
    assert!(err.is("INPUT_METHOD_INVALID"), "{err}");
    assert!(c.client.get_me().await.is_ok());
    c.quit().await;

    // A key the data center never saw: the connection is closed (no -404, so no DH attempt).
    let stranger = TestClient::connect(TestSession::new(sim.mtproto_addr().port(), [7u8; 256]));
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stranger.client.is_authorized(),
    )
    .await;
    assert!(!matches!(r, Ok(Ok(true))));
    stranger.quit().await;

    // Garbage on the wire only closes that connection; the data center keeps serving.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(sim.mtproto_addr())
        .await
        .unwrap();
    raw.write_all(&[12, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "connection closed without a reply");
    let again = logged_in(&sim, alice.id).await;
    assert!(again.client.get_me().await.is_ok());
    again.quit().await;
    sim.shutdown().await;
}
