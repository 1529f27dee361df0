//! The conformance suite of the `SigninStore` port (Telegram sign-in), run against SQLite and
//! PostgreSQL alike: self-service users with their personal workspace, codes (newest only,
//! expiry, single use, an attempt limit that holds under parallel checks), trusted devices
//! (absolute expiry, bound to their user), binding nonces (single use, bound to their bot),
//! invites used up with the user they create, and installation settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use switchboard_domain::{
    BotLink, BotMode, ErrorCode, Locale, NewBot, NewBotNonce, NewInvite, NewSigninCode,
    NewSigninUser, NewTrustedDevice, Role, SETTING_SERVICE_BOT, SigninStore, StoreError, Timestamp,
    UserId,
};
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::Stores;

account_backend_tests!(
    a_signup_creates_the_user_their_workspace_and_ownership_at_once,
    only_the_newest_code_is_checked_until_it_expires_or_is_used,
    parallel_checks_never_count_more_than_the_limit,
    trusted_devices_expire_absolutely_and_belong_to_their_user,
    nonces_work_once_for_their_bot_and_links_replace_each_other,
    invites_are_used_up_with_the_user_they_create,
    settings_are_set_replaced_and_cleared,
    expired_rows_are_purged,
);

fn t(ms: i64) -> Timestamp {
    Timestamp(1_700_000_000_000 + ms)
}

fn new_user(phone: &str, tg: i64) -> NewSigninUser {
    NewSigninUser {
        phone: phone.into(),
        telegram_user_id: tg,
        display_name: format!("User {tg}"),
        workspace_name: format!("Workspace {tg}"),
        locale: Some(Locale::Ru),
        invite_hash: None,
    }
}

async fn user(db: &Stores, phone: &str, tg: i64) -> UserId {
    db.signin
        .create_signin_user(&new_user(phone, tg), t(0))
        .await
        .unwrap()
        .0
        .id
}

fn code(user: UserId, hash: &str, at: i64) -> NewSigninCode {
    NewSigninCode {
        user_id: user,
        code_hash: hash.into(),
        created_at: t(at),
        expires_at: t(at + 300_000),
        ip: Some("192.0.2.1".into()),
    }
}

async fn a_signup_creates_the_user_their_workspace_and_ownership_at_once(db: Stores) {
    let main = db.store.create_workspace("Main", t(0)).await.unwrap();
    let (u, ws, m) = db
        .signin
        .create_signin_user(&new_user("79001234567", 42), t(1))
        .await
        .unwrap();
    assert_eq!(db.signin.main_workspace().await.unwrap(), Some(main.id));
    assert_ne!(ws.id, main.id);
    assert_eq!(
        (m.user_id, m.workspace_id, m.role),
        (u.id, ws.id, Role::Owner)
    );
    assert_eq!(u.username, None);
    assert_eq!(u.locale, Some(Locale::Ru));
    let found = db
        .signin
        .find_user_by_phone("79001234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.user.id, found.telegram_user_id), (u.id, Some(42)));
    let by_tg = db
        .signin
        .find_user_by_telegram_id(42)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tg.user.id, u.id);
    assert!(
        db.signin
            .find_user_by_phone("79000000000")
            .await
            .unwrap()
            .is_none()
    );
    // The same phone, or the same Telegram user, is refused and nothing is written.
    let workspaces = db.scalar("SELECT count(*) FROM workspaces").await;
    assert_err!(
        db.signin
            .create_signin_user(&new_user("79001234567", 43), t(2))
            .await,
        StoreError::Conflict(ErrorCode::PhoneTaken)
    );
    assert_err!(
        db.signin
            .create_signin_user(&new_user("79009999999", 42), t(2))
            .await,
        StoreError::Conflict(ErrorCode::PhoneTaken)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM workspaces").await,
        workspaces
    );
    assert_eq!(db.scalar("SELECT count(*) FROM users").await, 1);
}

async fn only_the_newest_code_is_checked_until_it_expires_or_is_used(db: Stores) {
    let u = user(&db, "79001230001", 1).await;
    let other = user(&db, "79001230002", 2).await;
    assert_eq!(db.signin.take_code_attempt(u, t(1), 5).await.unwrap(), None);
    db.signin
        .create_signin_code(&code(u, "old", 0))
        .await
        .unwrap();
    let newest = db
        .signin
        .create_signin_code(&code(u, "new", 10))
        .await
        .unwrap();
    let a = db
        .signin
        .take_code_attempt(u, t(20), 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.id, a.code_hash.as_str(), a.attempts), (newest, "new", 1));
    // Another user's codes are theirs.
    assert_eq!(
        db.signin.take_code_attempt(other, t(20), 5).await.unwrap(),
        None
    );
    // Used once, never again.
    assert!(db.signin.mark_code_used(newest, t(30)).await.unwrap());
    assert!(!db.signin.mark_code_used(newest, t(31)).await.unwrap());
    assert_eq!(
        db.signin.take_code_attempt(u, t(40), 5).await.unwrap(),
        None
    );
    // A new code works until its expiry, not a millisecond after.
    let c = db
        .signin
        .create_signin_code(&code(u, "third", 100))
        .await
        .unwrap();
    assert!(
        db.signin
            .take_code_attempt(u, t(100 + 299_999), 5)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        db.signin
            .take_code_attempt(u, t(100 + 300_000), 5)
            .await
            .unwrap(),
        None
    );
    let _ = c;
    // Five attempts, then none.
    db.signin
        .create_signin_code(&code(u, "fourth", 1000))
        .await
        .unwrap();
    for n in 1..=5 {
        let a = db
            .signin
            .take_code_attempt(u, t(1001), 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.attempts, n);
    }
    assert_eq!(
        db.signin.take_code_attempt(u, t(1002), 5).await.unwrap(),
        None
    );
}

async fn parallel_checks_never_count_more_than_the_limit(db: Stores) {
    let u = user(&db, "79001230003", 3).await;
    db.signin
        .create_signin_code(&code(u, "h", 0))
        .await
        .unwrap();
    let store: Arc<dyn SigninStore> = Arc::clone(&db.signin);
    let tries: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_code_attempt(u, t(1), 5).await.unwrap() })
        })
        .collect();
    let mut counted = Vec::new();
    for h in tries {
        if let Some(a) = h.await.unwrap() {
            counted.push(a.attempts);
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
    // Two parallel successes: one uses the code.
    let id = db
        .signin
        .create_signin_code(&code(u, "h2", 10))
        .await
        .unwrap();
    let marks: Vec<_> = (0..10)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.mark_code_used(id, t(11)).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for h in marks {
        wins += usize::from(h.await.unwrap());
    }
    assert_eq!(wins, 1);
}

async fn trusted_devices_expire_absolutely_and_belong_to_their_user(db: Stores) {
    let u = user(&db, "79001230004", 4).await;
    let other = user(&db, "79001230005", 5).await;
    let d = db
        .signin
        .create_trusted_device(&NewTrustedDevice {
            user_id: u,
            token_hash: "hash-a".into(),
            created_at: t(0),
            expires_at: t(1000),
            user_agent: Some("Firefox/120".into()),
            ip: Some("192.0.2.7".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (d.created_at, d.last_used_at, d.expires_at),
        (t(0), t(0), t(1000))
    );
    // Another user cannot use or delete it.
    assert!(
        db.signin
            .use_trusted_device(other, "hash-a", t(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!db.signin.delete_trusted_device(other, d.id).await.unwrap());
    // Use records the time and does not move the expiry.
    let used = db
        .signin
        .use_trusted_device(u, "hash-a", t(500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((used.last_used_at, used.expires_at), (t(500), t(1000)));
    assert!(
        db.signin
            .use_trusted_device(u, "hash-a", t(1000))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.signin
            .use_trusted_device(u, "wrong", t(2))
            .await
            .unwrap()
            .is_none()
    );
    let listed = db.signin.list_trusted_devices(u, t(999)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_agent.as_deref(), Some("Firefox/120"));
    assert!(
        db.signin
            .list_trusted_devices(u, t(1000))
            .await
            .unwrap()
            .is_empty()
    );
    for (n, hash) in ["b", "c"].iter().enumerate() {
        db.signin
            .create_trusted_device(&NewTrustedDevice {
                user_id: u,
                token_hash: (*hash).into(),
                created_at: t(n as i64),
                expires_at: t(10_000),
                user_agent: None,
                ip: None,
            })
            .await
            .unwrap();
    }
    assert!(db.signin.delete_trusted_device(u, d.id).await.unwrap());
    assert_eq!(db.signin.delete_user_trusted_devices(u).await.unwrap(), 2);
    assert!(
        db.signin
            .list_trusted_devices(u, t(0))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bot(db: &Stores, telegram_bot_id: i64) -> switchboard_domain::Bot {
    let ws = db.store.create_workspace("Bots", t(0)).await.unwrap();
    db.inbox
        .create_bot(
            &NewBot {
                workspace_id: ws.id,
                telegram_bot_id,
                username: format!("b{telegram_bot_id}_bot"),
                first_name: "B".into(),
                mode: BotMode::Polling,
                hook_id: format!("hook{telegram_bot_id}"),
                token_sealed: vec![1],
                hook_secret_sealed: vec![2],
            },
            t(0),
        )
        .await
        .unwrap()
}

async fn nonces_work_once_for_their_bot_and_links_replace_each_other(db: Stores) {
    let u = user(&db, "79001230006", 6).await;
    let b1 = bot(&db, 501).await;
    let b2 = bot(&db, 502).await;
    db.signin
        .create_bot_nonce(&NewBotNonce {
            nonce_hash: "n1".into(),
            user_id: u,
            bot_id: b1.id,
            created_at: t(0),
            expires_at: t(600_000),
        })
        .await
        .unwrap();
    assert_eq!(
        db.signin.claim_bot_nonce("n1", b2.id, t(1)).await.unwrap(),
        None
    );
    assert_eq!(
        db.signin
            .claim_bot_nonce("n1", b1.id, t(600_000))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.signin.claim_bot_nonce("n1", b1.id, t(2)).await.unwrap(),
        Some(u)
    );
    assert_eq!(
        db.signin.claim_bot_nonce("n1", b1.id, t(3)).await.unwrap(),
        None
    );
    assert_eq!(db.signin.get_bot_link(u).await.unwrap(), None);
    let mut link = BotLink {
        user_id: u,
        bot_id: b1.id,
        chat_id: 6,
        telegram_user_id: 6,
        locale: Some(Locale::Ru),
        bound_at: t(4),
    };
    db.signin.set_bot_link(&link).await.unwrap();
    assert_eq!(db.signin.get_bot_link(u).await.unwrap(), Some(link.clone()));
    link.bot_id = b2.id;
    link.locale = None;
    db.signin.set_bot_link(&link).await.unwrap();
    assert_eq!(db.signin.get_bot_link(u).await.unwrap(), Some(link));
    assert!(db.signin.delete_bot_link(u).await.unwrap());
    assert!(!db.signin.delete_bot_link(u).await.unwrap());
}

async fn invites_are_used_up_with_the_user_they_create(db: Stores) {
    let owner = user(&db, "79001230007", 7).await;
    let invite = db
        .signin
        .create_invite(&NewInvite {
            token_hash: "inv".into(),
            created_by: owner,
            created_at: t(0),
            expires_at: t(1000),
        })
        .await
        .unwrap();
    assert_eq!((invite.created_by, invite.used_at), (Some(owner), None));
    assert!(db.signin.invite_is_valid("inv", t(1)).await.unwrap());
    assert!(!db.signin.invite_is_valid("other", t(1)).await.unwrap());
    assert!(!db.signin.invite_is_valid("inv", t(1000)).await.unwrap());
    let users = db.scalar("SELECT count(*) FROM users").await;
    let mut with = new_user("79001230008", 8);
    with.invite_hash = Some("missing".into());
    assert_err!(
        db.signin.create_signin_user(&with, t(2)).await,
        StoreError::Conflict(ErrorCode::InviteRequired)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").await,
        users,
        "nothing written"
    );
    with.invite_hash = Some("inv".into());
    db.signin.create_signin_user(&with, t(2)).await.unwrap();
    assert!(!db.signin.invite_is_valid("inv", t(3)).await.unwrap());
    let mut again = new_user("79001230009", 9);
    again.invite_hash = Some("inv".into());
    assert_err!(
        db.signin.create_signin_user(&again, t(3)).await,
        StoreError::Conflict(ErrorCode::InviteRequired)
    );
}

async fn settings_are_set_replaced_and_cleared(db: Stores) {
    let u = user(&db, "79001230010", 10).await;
    assert_eq!(
        db.signin.get_setting(SETTING_SERVICE_BOT).await.unwrap(),
        None
    );
    db.signin
        .set_setting(SETTING_SERVICE_BOT, Some("12"), Some(u), t(1))
        .await
        .unwrap();
    db.signin
        .set_setting(SETTING_SERVICE_BOT, Some("13"), None, t(2))
        .await
        .unwrap();
    assert_eq!(
        db.signin
            .get_setting(SETTING_SERVICE_BOT)
            .await
            .unwrap()
            .as_deref(),
        Some("13")
    );
    db.signin
        .set_setting(SETTING_SERVICE_BOT, None, Some(u), t(3))
        .await
        .unwrap();
    assert_eq!(
        db.signin.get_setting(SETTING_SERVICE_BOT).await.unwrap(),
        None
    );
}

async fn expired_rows_are_purged(db: Stores) {
    let u = user(&db, "79001230011", 11).await;
    let b = bot(&db, 503).await;
    db.signin
        .create_signin_code(&code(u, "x", 0))
        .await
        .unwrap();
    db.signin
        .create_trusted_device(&NewTrustedDevice {
            user_id: u,
            token_hash: "d".into(),
            created_at: t(0),
            expires_at: t(100),
            user_agent: None,
            ip: None,
        })
        .await
        .unwrap();
    db.signin
        .create_bot_nonce(&NewBotNonce {
            nonce_hash: "n".into(),
            user_id: u,
            bot_id: b.id,
            created_at: t(0),
            expires_at: t(100),
        })
        .await
        .unwrap();
    let none = db.signin.purge_signin(t(99)).await.unwrap();
    assert_eq!((none.codes, none.devices, none.nonces), (0, 0, 0));
    let gone = db.signin.purge_signin(t(300_000)).await.unwrap();
    assert_eq!((gone.codes, gone.devices, gone.nonces), (1, 1, 1));
}
