//! The conformance suite of the `SigninStore` port (Telegram sign-in), run against SQLite and
//! PostgreSQL alike: self-service users with their personal workspace, codes (newest only,
//! expiry, single use, an attempt limit that holds under parallel checks, a match that writes
//! the session and its audit record with it or nothing at all), trusted devices
//! (absolute expiry, bound to their user), binding nonces (single use, bound to their bot),
//! invites used up with the user they create, and installation settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use switchboard_domain::{
    BotLink, BotMode, CodeRedemption, ErrorCode, Locale, NewAuditEvent, NewBot, NewBotNonce,
    NewInvite, NewSigninCode, NewSigninUser, NewTrustedDevice, NewWebSession, Redemption, Role,
    SETTING_SERVICE_BOT, SigninCodeId, StoreError, Timestamp, UserId, WorkspaceId,
};
use switchboard_services::signin::CODE_MAX_ATTEMPTS;
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::Stores;

account_backend_tests!(
    a_signup_creates_the_user_their_workspace_and_ownership_at_once,
    only_the_newest_code_is_checked_until_it_expires_or_is_used,
    parallel_checks_never_count_more_than_the_limit,
    a_failed_redemption_writes_nothing,
    a_cancelled_write_leaves_no_transaction_behind,
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

async fn signed_up(db: &Stores, phone: &str, tg: i64) -> (UserId, WorkspaceId) {
    let (u, ws, _) = db
        .signin
        .create_signin_user(&new_user(phone, tg), t(0))
        .await
        .unwrap();
    (u.id, ws.id)
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

fn audit(user: UserId, action: &str, at: i64) -> NewAuditEvent {
    NewAuditEvent {
        workspace_id: None,
        actor_user_id: Some(user),
        action: action.into(),
        target: Some(format!("user:{user}")),
        ip: None,
        details: serde_json::json!({}),
        created_at: t(at),
    }
}

async fn issue(db: &Stores, user: UserId, hash: &str, at: i64) -> SigninCodeId {
    db.signin
        .create_signin_code(&code(user, hash, at), &audit(user, "auth.code_sent", at))
        .await
        .unwrap()
}

fn session(user: UserId, ws: WorkspaceId, token: &str, at: i64) -> NewWebSession {
    NewWebSession {
        token_hash: token.into(),
        csrf_hash: format!("csrf-{token}"),
        user_id: user,
        workspace_id: ws,
        created_at: t(at),
        expires_at: t(at + 3_600_000),
        ip: None,
        user_agent: None,
    }
}

/// Presents `hash` as the user's code at `at`, opening `session` on a match.
async fn redeem(
    db: &Stores,
    user: UserId,
    hash: &str,
    at: i64,
    session: Option<&NewWebSession>,
    device: Option<&NewTrustedDevice>,
) -> Result<Redemption, StoreError> {
    db.signin
        .redeem_signin_code(&CodeRedemption {
            user,
            presented_hash: hash,
            now: t(at),
            max_attempts: CODE_MAX_ATTEMPTS,
            session,
            device,
            audit: &audit(user, "auth.login_succeeded", at),
        })
        .await
}

fn mismatch(attempts: i32) -> Redemption {
    Redemption::Mismatch { attempts }
}

async fn count(db: &Stores, table: &str, user: UserId) -> i64 {
    let column = if table == "audit_events" {
        "actor_user_id"
    } else {
        "user_id"
    };
    db.scalar(&format!(
        "SELECT count(*) FROM {table} WHERE {column} = {user}"
    ))
    .await
}

async fn only_the_newest_code_is_checked_until_it_expires_or_is_used(db: Stores) {
    let (u, ws) = signed_up(&db, "79001230001", 1).await;
    let other = user(&db, "79001230002", 2).await;
    assert_eq!(
        redeem(&db, u, "new", 1, None, None).await.unwrap(),
        Redemption::NoLiveCode
    );
    // Each code is stored with its audit record.
    issue(&db, u, "old", 0).await;
    issue(&db, u, "new", 10).await;
    assert_eq!(count(&db, "audit_events", u).await, 2);
    // The older code was retired by the newer one.
    assert_eq!(
        redeem(&db, u, "old", 20, None, None).await.unwrap(),
        mismatch(1)
    );
    // Another user's codes are theirs.
    assert_eq!(
        redeem(&db, other, "new", 20, None, None).await.unwrap(),
        Redemption::NoLiveCode
    );
    // A match uses the code up and writes the session, the device and the audit record.
    let s = session(u, ws, "session-1", 30);
    let device = NewTrustedDevice {
        user_id: u,
        token_hash: "device-1".into(),
        created_at: t(30),
        expires_at: t(1_000_000),
        user_agent: Some("Firefox".into()),
        ip: None,
    };
    let Redemption::Redeemed {
        session: Some(opened),
    } = redeem(&db, u, "new", 30, Some(&s), Some(&device))
        .await
        .unwrap()
    else {
        panic!("the newest code did not match");
    };
    assert_eq!((opened.user_id, opened.workspace_id), (u, ws));
    assert_eq!(count(&db, "web_sessions", u).await, 1);
    assert_eq!(count(&db, "trusted_devices", u).await, 1);
    assert_eq!(count(&db, "audit_events", u).await, 3);
    // Used once, never again.
    assert_eq!(
        redeem(&db, u, "new", 31, None, None).await.unwrap(),
        Redemption::NoLiveCode
    );
    // A new code works until its expiry, not a millisecond after.
    issue(&db, u, "third", 100).await;
    assert_eq!(
        redeem(&db, u, "wrong", 100 + 299_999, None, None)
            .await
            .unwrap(),
        mismatch(1)
    );
    assert_eq!(
        redeem(&db, u, "third", 100 + 300_000, None, None)
            .await
            .unwrap(),
        Redemption::NoLiveCode
    );
    // Five attempts, then none: not even the right code.
    issue(&db, u, "fourth", 1000).await;
    for n in 1..=5 {
        assert_eq!(
            redeem(&db, u, "wrong", 1001, None, None).await.unwrap(),
            mismatch(n)
        );
    }
    assert_eq!(
        redeem(&db, u, "fourth", 1002, None, None).await.unwrap(),
        Redemption::NoLiveCode
    );
    // A match without a session (a user who may not sign in) uses the code up, opens nothing.
    issue(&db, u, "fifth", 2000).await;
    assert_eq!(
        redeem(&db, u, "fifth", 2001, None, None).await.unwrap(),
        Redemption::Redeemed { session: None }
    );
    assert_eq!(count(&db, "web_sessions", u).await, 1);
    assert_eq!(
        redeem(&db, u, "fifth", 2002, None, None).await.unwrap(),
        Redemption::NoLiveCode
    );
}

async fn parallel_checks_never_count_more_than_the_limit(db: Stores) {
    let (u, ws) = signed_up(&db, "79001230003", 3).await;
    issue(&db, u, "h", 0).await;
    let db = Arc::new(db);
    let tries: Vec<_> = (0..40)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(async move { redeem(&db, u, "wrong", 1, None, None).await.unwrap() })
        })
        .collect();
    let mut counted = Vec::new();
    for h in tries {
        match h.await.unwrap() {
            Redemption::Mismatch { attempts } => counted.push(attempts),
            Redemption::NoLiveCode => {}
            other => panic!("{other:?}"),
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
    // Ten parallel checks of the right code: one signs in, once.
    issue(&db, u, "h2", 10).await;
    let checks: Vec<_> = (0..10)
        .map(|i| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                let s = session(u, ws, &format!("parallel-{i}"), 11);
                redeem(&db, u, "h2", 11, Some(&s), None).await.unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for h in checks {
        match h.await.unwrap() {
            Redemption::Redeemed { session: Some(_) } => wins += 1,
            Redemption::NoLiveCode => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(count(&db, "web_sessions", u).await, 1);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM audit_events WHERE actor_user_id = {u} \
             AND action = 'auth.login_succeeded'"
        ))
        .await,
        1
    );
}

/// A check whose writes fail leaves nothing behind: not the session, not the audit record,
/// not even the attempt; the code still works.
async fn a_failed_redemption_writes_nothing(db: Stores) {
    let (u, ws) = signed_up(&db, "79001230012", 12).await;
    db.store
        .create_web_session(&session(u, ws, "taken", 0))
        .await
        .unwrap();
    issue(&db, u, "c", 0).await;
    let audits = count(&db, "audit_events", u).await;
    assert_err!(
        redeem(&db, u, "c", 1, Some(&session(u, ws, "taken", 1)), None).await,
        StoreError::Conflict(ErrorCode::SessionExists)
    );
    assert_eq!(count(&db, "web_sessions", u).await, 1);
    assert_eq!(count(&db, "audit_events", u).await, audits);
    assert_eq!(
        db.scalar(&format!(
            "SELECT CAST(attempts AS BIGINT) FROM signin_codes \
             WHERE user_id = {u} AND used_at IS NULL"
        ))
        .await,
        0
    );
    assert!(matches!(
        redeem(&db, u, "c", 2, Some(&session(u, ws, "fresh", 2)), None)
            .await
            .unwrap(),
        Redemption::Redeemed { session: Some(_) }
    ));
}

/// A write whose caller goes away half-way (an HTTP client that disconnects, a worker being
/// stopped) at any point — before, during or after its `BEGIN` — leaves no transaction open
/// on a pooled connection: the writes after it are committed, and PostgreSQL has no session
/// left idle in a transaction. (sqlx 0.8 leaked one when cancelled during `BEGIN`: later
/// writes on that connection were never committed, and after its first error every query on
/// it failed.)
async fn a_cancelled_write_leaves_no_transaction_behind(db: Stores) {
    let (u, _) = signed_up(&db, "79001230013", 13).await;
    let idle_in_transaction = "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    for i in 0..400_u32 {
        let at = i64::from(i);
        if i % 2 == 0 {
            // Polled a little further each time, then dropped.
            let write = issue(&db, u, "cancelled", at);
            tokio::pin!(write);
            for _ in 0..i / 2 % 50 {
                if futures_util::poll!(write.as_mut()).is_ready() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        } else {
            // Aborted after 0 to 250 µs: before, during or after any of its round trips.
            let signin = Arc::clone(&db.signin);
            let write = tokio::spawn(async move {
                let _ = signin
                    .create_signin_code(&code(u, "cancelled", at), &audit(u, "auth.code_sent", at))
                    .await;
            });
            let abort = write.abort_handle();
            let after = std::time::Duration::from_micros(u64::from(i * 7 % 250));
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                while start.elapsed() < after {
                    std::hint::spin_loop();
                }
                abort.abort();
            });
            let _ = write.await;
        }
        if db.store.backend() == "postgres" {
            // The dropped write's connection goes back to the pool, rolled back, in the
            // background: no session stays in a transaction.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while db.scalar(idle_in_transaction).await > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "write {i}: a pooled connection was left in a transaction"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
    // Every write after them is committed, single statements and transactions alike: seen
    // from another connection.
    for i in 0..20_i64 {
        db.signin
            .create_trusted_device(&NewTrustedDevice {
                user_id: u,
                token_hash: format!("kept-{i}"),
                created_at: t(i),
                expires_at: t(1_000_000),
                user_agent: None,
                ip: None,
            })
            .await
            .unwrap();
        issue(&db, u, "kept", 10_000 + i).await;
    }
    for sql in [
        "SELECT count(*) FROM signin_codes WHERE code_hash = 'kept'",
        "SELECT count(*) FROM trusted_devices WHERE token_hash LIKE 'kept-%'",
    ] {
        assert_eq!(db.scalar(sql).await, 20, "{sql}");
    }
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
    issue(&db, u, "x", 0).await;
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
