//! The store conformance suite: every method of the `Store` port, run against SQLite and
//! PostgreSQL alike (each test once per backend, on a fresh database).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::sync::Arc;
use switchboard_domain::ErrorCode;
use switchboard_domain::team::MemberChange;
use switchboard_domain::{
    AuditEventId, Locale, LoginAttempt, NewAuditEvent, NewUser, NewWebSession, Role, Store,
    StoreError, Timestamp, User, UserId, Username, WorkspaceId,
};
use switchboard_tests::assert_err;
use switchboard_tests::backend_tests;

backend_tests!(
    backend_answers,
    schema_columns_lists_the_application_tables,
    workspaces_are_created_and_read,
    users_are_created_and_read,
    duplicate_username_is_a_conflict_whatever_its_case,
    credentials_are_found_by_normalised_username,
    password_hash_and_locale_are_updated,
    login_failures_are_counted_and_lock_at_the_threshold,
    memberships_are_added_listed_updated_and_removed,
    membership_of_a_missing_user_or_workspace_is_not_found,
    web_session_lifecycle,
    touch_slides_the_expiry_of_a_live_session_only,
    user_sessions_are_deleted_together,
    expired_sessions_are_purged,
    sessions_need_a_membership_and_end_with_it,
    audit_events_round_trip,
    audit_is_paged_newest_first_and_isolated_per_workspace,
    audit_is_listed_by_target,
    audit_events_older_than_the_retention_are_purged,
);

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn name(raw: &str) -> Username {
    Username::parse(raw).unwrap()
}

async fn user(store: &Arc<dyn Store>, username: &str) -> User {
    store
        .create_user(
            &NewUser {
                username: Some(name(username)),
                display_name: format!("{username} (display)"),
                password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1${username}")),
                locale: None,
            },
            t(1_000),
        )
        .await
        .unwrap()
}

fn session(token: u32, user: UserId, workspace: WorkspaceId, expires_at: i64) -> NewWebSession {
    NewWebSession {
        token_hash: format!("{token:064x}"),
        csrf_hash: format!("{:064x}", u64::from(token) + 1_000_000),
        user_id: user,
        workspace_id: workspace,
        created_at: t(1_000),
        expires_at: t(expires_at),
        ip: Some("127.0.0.1".to_string()),
        user_agent: Some("Mozilla/5.0 (test)".to_string()),
    }
}

fn token(n: u32) -> String {
    format!("{n:064x}")
}

fn event(
    workspace: Option<WorkspaceId>,
    action: &str,
    target: Option<&str>,
    at: i64,
) -> NewAuditEvent {
    NewAuditEvent {
        workspace_id: workspace,
        actor_user_id: None,
        action: action.to_string(),
        target: target.map(str::to_string),
        ip: None,
        details: json!({}),
        created_at: t(at),
    }
}

// --- basics ---

async fn backend_answers(store: Arc<dyn Store>) {
    assert!(["sqlite", "postgres"].contains(&store.backend()));
    store.ping().await.unwrap();
}

async fn schema_columns_lists_the_application_tables(store: Arc<dyn Store>) {
    let columns = store.schema_columns().await.unwrap();
    let mut sorted = columns.clone();
    sorted.sort();
    assert_eq!(columns, sorted, "schema_columns must be sorted");
    let mut tables: Vec<&str> = columns.iter().map(|(t, _)| t.as_str()).collect();
    tables.dedup();
    assert_eq!(
        tables,
        [
            "account_channel_states",
            "account_dc_keys",
            "account_peers",
            "account_update_states",
            "accounts",
            "audit_events",
            "bot_updates",
            "bots",
            "chats",
            "installation_settings",
            "lead_deliveries",
            "lead_matched_terms",
            "lead_sources",
            "lead_task_sources",
            "lead_tasks",
            "leads",
            "memberships",
            "message_edits",
            "messages",
            "outbox",
            "post_actions",
            "post_runs",
            "scheduled_posts",
            "signin_bot_links",
            "signin_bot_nonces",
            "signin_codes",
            "signin_invites",
            "trusted_devices",
            "uploads",
            "users",
            "web_sessions",
            "workspaces"
        ]
    );
    for expected in [
        ("users", "username"),
        ("users", "phone"),
        ("users", "telegram_user_id"),
        ("memberships", "max_chats"),
        ("web_sessions", "token_hash"),
        ("audit_events", "details"),
        ("chats", "assignee_id"),
        ("messages", "status"),
        ("outbox", "random_id"),
        ("leads", "simhash"),
        ("lead_sources", "last_message_id"),
    ] {
        assert!(
            columns.contains(&(expected.0.to_string(), expected.1.to_string())),
            "missing {expected:?}"
        );
    }
}

// --- workspaces ---

async fn workspaces_are_created_and_read(store: Arc<dyn Store>) {
    let acme = store
        .create_workspace("Acme", t(1_700_000_000_123))
        .await
        .unwrap();
    let other = store.create_workspace("Рога и копыта", t(5)).await.unwrap();
    assert_ne!(acme.id, other.id);
    assert_eq!(acme.name, "Acme");
    assert_eq!(acme.created_at, t(1_700_000_000_123));

    assert_eq!(store.get_workspace(acme.id).await.unwrap(), acme);
    assert_eq!(
        store.get_workspace(other.id).await.unwrap().name,
        "Рога и копыта"
    );
    assert_err!(
        store.get_workspace(WorkspaceId(other.id.0 + 100)).await,
        StoreError::NotFound
    );
}

// --- users ---

async fn users_are_created_and_read(store: Arc<dyn Store>) {
    let anna = store
        .create_user(
            &NewUser {
                username: Some(name("Anna.K")),
                display_name: "Анна К.".to_string(),
                password_hash: Some("$argon2id$hash".to_string()),
                locale: Some(Locale::Ru),
            },
            t(42),
        )
        .await
        .unwrap();
    assert_eq!(anna.username, Some(name("anna.k")));
    assert_eq!(anna.display_name, "Анна К.");
    assert_eq!(anna.locale, Some(Locale::Ru));
    assert!(!anna.disabled);
    assert_eq!(anna.created_at, t(42));
    assert_eq!(store.get_user(anna.id).await.unwrap(), anna);

    // Usernames are optional (self-service users), and several users may have none.
    let anonymous = NewUser {
        username: None,
        display_name: "Guest".to_string(),
        password_hash: None,
        locale: None,
    };
    let first = store.create_user(&anonymous, t(43)).await.unwrap();
    let second = store.create_user(&anonymous, t(44)).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(store.get_user(second.id).await.unwrap().username, None);

    assert_err!(
        store.get_user(UserId(second.id.0 + 100)).await,
        StoreError::NotFound
    );
}

async fn duplicate_username_is_a_conflict_whatever_its_case(store: Arc<dyn Store>) {
    let anna = user(&store, "anna").await;
    let again = NewUser {
        username: Some(name(" ANNA ")),
        display_name: "Another Anna".to_string(),
        password_hash: None,
        locale: None,
    };
    assert_err!(
        store.create_user(&again, t(2_000)).await,
        StoreError::Conflict(ErrorCode::UsernameTaken)
    );
    // The failed insert left nothing behind.
    let found = store
        .find_credentials(&name("anna"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user, anna);
}

async fn credentials_are_found_by_normalised_username(store: Arc<dyn Store>) {
    let anna = user(&store, "anna").await;
    let creds = store
        .find_credentials(&name(" Anna "))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.user, anna);
    assert_eq!(
        creds.password_hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$anna")
    );
    assert_eq!(creds.failed_logins, 0);
    assert_eq!(creds.locked_until, None);

    assert!(
        store
            .find_credentials(&name("boris"))
            .await
            .unwrap()
            .is_none()
    );

    let nopass = store
        .create_user(
            &NewUser {
                username: Some(name("nopass")),
                display_name: "No password".to_string(),
                password_hash: None,
                locale: None,
            },
            t(1),
        )
        .await
        .unwrap();
    let creds = store
        .find_credentials(&name("nopass"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.user.id, nopass.id);
    assert_eq!(creds.password_hash, None);
}

async fn password_hash_and_locale_are_updated(store: Arc<dyn Store>) {
    let anna = user(&store, "anna").await;
    store
        .set_password_hash(anna.id, "$argon2id$new")
        .await
        .unwrap();
    let creds = store
        .find_credentials(&name("anna"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.password_hash.as_deref(), Some("$argon2id$new"));

    store
        .set_user_locale(anna.id, Some(Locale::Ru))
        .await
        .unwrap();
    assert_eq!(
        store.get_user(anna.id).await.unwrap().locale,
        Some(Locale::Ru)
    );
    store
        .set_user_locale(anna.id, Some(Locale::En))
        .await
        .unwrap();
    assert_eq!(
        store.get_user(anna.id).await.unwrap().locale,
        Some(Locale::En)
    );
    store.set_user_locale(anna.id, None).await.unwrap();
    assert_eq!(store.get_user(anna.id).await.unwrap().locale, None);

    let missing = UserId(anna.id.0 + 100);
    assert_err!(
        store.set_password_hash(missing, "$x").await,
        StoreError::NotFound
    );
    assert_err!(
        store.set_user_locale(missing, None).await,
        StoreError::NotFound
    );
}

/// Anna's consecutive failures and lock.
async fn lock_state(store: &Arc<dyn Store>) -> (i32, Option<Timestamp>) {
    let creds = store
        .find_credentials(&name("anna"))
        .await
        .unwrap()
        .unwrap();
    (creds.failed_logins, creds.locked_until)
}

async fn login_failures_are_counted_and_lock_at_the_threshold(store: Arc<dyn Store>) {
    let anna = user(&store, "anna").await;
    let now = t(5_000);
    let lock_until = t(9_000);
    let attempt = |now: Timestamp, until: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            store
                .begin_login_attempt(anna.id, 3, now, until)
                .await
                .unwrap()
        }
    };
    let counted = |failures| LoginAttempt::Counted { failures };
    assert_eq!(attempt(now, lock_until).await, counted(1));
    assert_eq!(attempt(now, lock_until).await, counted(2));
    assert_eq!(lock_state(&store).await, (2, None));

    // The attempt that reaches the threshold is counted (it may check its password) and locks.
    assert_eq!(attempt(now, lock_until).await, counted(3));
    assert_eq!(lock_state(&store).await, (3, Some(lock_until)));

    // While locked, attempts are refused and change nothing.
    assert_eq!(
        attempt(t(8_999), t(20_000)).await,
        LoginAttempt::Locked { until: lock_until }
    );
    assert_eq!(lock_state(&store).await, (3, Some(lock_until)));

    // Once the lock has run out, the count starts anew.
    assert_eq!(attempt(t(9_000), t(20_000)).await, counted(1));
    assert_eq!(lock_state(&store).await, (1, None));

    // A success clears the count and any lock.
    attempt(now, lock_until).await;
    attempt(now, lock_until).await;
    store.reset_login_failures(anna.id).await.unwrap();
    assert_eq!(lock_state(&store).await, (0, None));
    assert_eq!(attempt(now, lock_until).await, counted(1));

    // Parallel attempts are counted one by one: exactly `lock_after` get through, the rest
    // find the user locked (the pool runs them on several connections).
    store.reset_login_failures(anna.id).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|_| tokio::spawn(attempt(now, lock_until)))
        .collect();
    let mut counts = Vec::new();
    let mut locked = 0;
    for task in tasks {
        match task.await.unwrap() {
            LoginAttempt::Counted { failures } => counts.push(failures),
            LoginAttempt::Locked { until } => {
                assert_eq!(until, lock_until);
                locked += 1;
            }
        }
    }
    counts.sort_unstable();
    assert_eq!((counts, locked), (vec![1, 2, 3], 9));

    let missing = UserId(anna.id.0 + 100);
    assert_err!(
        store.begin_login_attempt(missing, 3, now, lock_until).await,
        StoreError::NotFound
    );
    assert_err!(
        store.reset_login_failures(missing).await,
        StoreError::NotFound
    );
}

// --- memberships ---

async fn memberships_are_added_listed_updated_and_removed(store: Arc<dyn Store>) {
    let acme = store.create_workspace("Acme", t(1)).await.unwrap();
    let beta = store.create_workspace("Beta", t(2)).await.unwrap();
    let anna = user(&store, "anna").await;
    let boris = user(&store, "boris").await;

    // Anna joins Beta before Acme: "oldest first" follows the join time, not the workspace id.
    let anna_beta = store
        .add_membership(beta.id, anna.id, Role::Admin, 0, t(100))
        .await
        .unwrap();
    let anna_acme = store
        .add_membership(acme.id, anna.id, Role::Owner, 0, t(200))
        .await
        .unwrap();
    let boris_acme = store
        .add_membership(acme.id, boris.id, Role::Operator, 5, t(300))
        .await
        .unwrap();
    assert_eq!(anna_acme.workspace_id, acme.id);
    assert_eq!(anna_acme.user_id, anna.id);
    assert_eq!(anna_acme.role, Role::Owner);
    assert_eq!(anna_acme.created_at, t(200));
    assert_eq!((boris_acme.role, boris_acme.max_chats), (Role::Operator, 5));

    assert_err!(
        store
            .add_membership(acme.id, boris.id, Role::Admin, 1, t(400))
            .await,
        StoreError::Conflict(ErrorCode::AlreadyMember)
    );

    assert_eq!(
        store.get_membership(acme.id, boris.id).await.unwrap(),
        boris_acme
    );
    assert_eq!(
        store.get_membership(beta.id, anna.id).await.unwrap(),
        anna_beta
    );
    assert_err!(
        store.get_membership(beta.id, boris.id).await,
        StoreError::NotFound
    );

    assert_eq!(
        store.list_user_memberships(anna.id).await.unwrap(),
        vec![anna_beta.clone(), anna_acme.clone()]
    );
    assert_eq!(
        store.list_user_memberships(boris.id).await.unwrap(),
        vec![boris_acme.clone()]
    );

    assert_eq!(
        store.list_members(acme.id).await.unwrap(),
        vec![
            (anna_acme.clone(), anna.clone()),
            (boris_acme.clone(), boris.clone())
        ]
    );
    assert_eq!(
        store.list_members(beta.id).await.unwrap(),
        vec![(anna_beta.clone(), anna.clone())]
    );

    let promoted = store
        .update_membership(
            acme.id,
            anna.id,
            boris.id,
            change(Some(Role::Admin), Some(9)),
        )
        .await
        .unwrap();
    assert_eq!((promoted.role, promoted.max_chats), (Role::Admin, 9));
    assert_eq!(promoted.created_at, boris_acme.created_at);
    assert_eq!(
        store.get_membership(acme.id, boris.id).await.unwrap(),
        promoted
    );
    assert_err!(
        store
            .update_membership(
                beta.id,
                anna.id,
                boris.id,
                change(Some(Role::Admin), Some(1))
            )
            .await,
        StoreError::NotFound
    );

    // The team rules, checked in the writing transaction: nothing changes when refused.
    assert_err!(
        store
            .update_membership(acme.id, anna.id, anna.id, change(Some(Role::Admin), None))
            .await,
        StoreError::Conflict(ErrorCode::LastOwner)
    );
    assert_err!(
        store
            .remove_membership(acme.id, anna.id, anna.id, t(9_000))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    assert_err!(
        store
            .update_membership(acme.id, boris.id, anna.id, change(None, Some(1)))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    assert_err!(
        store
            .update_membership(acme.id, boris.id, boris.id, change(Some(Role::Owner), None))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    assert_err!(
        store
            .remove_membership(acme.id, boris.id, anna.id, t(9_000))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    assert_err!(
        store
            .remove_membership(acme.id, boris.id, boris.id, t(9_000))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    let outsider = user(&store, "outsider").await;
    assert_err!(
        store
            .update_membership(acme.id, outsider.id, boris.id, change(None, Some(1)))
            .await,
        StoreError::Conflict(ErrorCode::Forbidden)
    );
    assert_eq!(
        store.get_membership(acme.id, anna.id).await.unwrap(),
        anna_acme
    );
    assert_eq!(
        store.get_membership(acme.id, boris.id).await.unwrap(),
        promoted
    );
    // Keeping the role, a capacity change of the last owner is fine.
    let kept = store
        .update_membership(acme.id, anna.id, anna.id, change(None, Some(4)))
        .await
        .unwrap();
    assert_eq!((kept.role, kept.max_chats), (Role::Owner, 4));
    store
        .update_membership(acme.id, anna.id, anna.id, change(None, Some(0)))
        .await
        .unwrap();

    assert!(
        store
            .remove_membership(acme.id, anna.id, boris.id, t(9_000))
            .await
            .unwrap()
            .is_empty(),
        "boris had no chats"
    );
    assert_err!(
        store.get_membership(acme.id, boris.id).await,
        StoreError::NotFound
    );
    assert_err!(
        store
            .remove_membership(acme.id, anna.id, boris.id, t(9_000))
            .await,
        StoreError::NotFound
    );
    assert_eq!(
        store.list_members(acme.id).await.unwrap(),
        vec![(anna_acme.clone(), anna.clone())]
    );
    assert!(
        store
            .list_user_memberships(boris.id)
            .await
            .unwrap()
            .is_empty()
    );
    // The user and the other memberships are untouched.
    assert_eq!(store.get_user(boris.id).await.unwrap(), boris);
    assert_eq!(store.list_user_memberships(anna.id).await.unwrap().len(), 2);
}

async fn membership_of_a_missing_user_or_workspace_is_not_found(store: Arc<dyn Store>) {
    let acme = store.create_workspace("Acme", t(1)).await.unwrap();
    let anna = user(&store, "anna").await;
    assert_err!(
        store
            .add_membership(acme.id, UserId(anna.id.0 + 100), Role::Operator, 1, t(2))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        store
            .add_membership(
                WorkspaceId(acme.id.0 + 100),
                anna.id,
                Role::Operator,
                1,
                t(2)
            )
            .await,
        StoreError::NotFound
    );
    assert!(store.list_members(acme.id).await.unwrap().is_empty());
    assert!(
        store
            .list_members(WorkspaceId(acme.id.0 + 100))
            .await
            .unwrap()
            .is_empty()
    );
}

// --- web sessions ---

/// A workspace with a member, ready for sessions.
fn change(role: Option<Role>, max_chats: Option<i32>) -> MemberChange {
    MemberChange { role, max_chats }
}

async fn member(store: &Arc<dyn Store>, username: &str) -> (WorkspaceId, UserId) {
    let ws = store.create_workspace("Acme", t(1)).await.unwrap();
    let u = user(store, username).await;
    store
        .add_membership(ws.id, u.id, Role::Operator, 3, t(1))
        .await
        .unwrap();
    (ws.id, u.id)
}

async fn web_session_lifecycle(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    let created = store
        .create_web_session(&session(1, anna, ws, 5_000))
        .await
        .unwrap();
    assert_eq!(created.token_hash, token(1));
    assert_eq!(created.csrf_hash, format!("{:064x}", 1_000_001));
    assert_eq!((created.user_id, created.workspace_id), (anna, ws));
    assert_eq!(created.created_at, t(1_000));
    assert_eq!(created.last_seen_at, t(1_000));
    assert_eq!(created.expires_at, t(5_000));
    assert_eq!(created.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(created.user_agent.as_deref(), Some("Mozilla/5.0 (test)"));

    assert_eq!(
        store.find_web_session(&token(1), t(1_000)).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.find_web_session(&token(1), t(4_999)).await.unwrap(),
        Some(created.clone())
    );
    // A session is valid while now < expires_at.
    assert_eq!(
        store.find_web_session(&token(1), t(5_000)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_web_session(&token(2), t(1_000)).await.unwrap(),
        None
    );

    let mut no_client = session(2, anna, ws, 5_000);
    no_client.ip = None;
    no_client.user_agent = None;
    let bare = store.create_web_session(&no_client).await.unwrap();
    assert_ne!(bare.id, created.id);
    assert_eq!((bare.ip, bare.user_agent), (None, None));

    assert_err!(
        store.create_web_session(&session(1, anna, ws, 9_000)).await,
        StoreError::Conflict(ErrorCode::SessionExists)
    );

    assert!(store.delete_web_session(&token(1)).await.unwrap());
    assert!(!store.delete_web_session(&token(1)).await.unwrap());
    assert_eq!(
        store.find_web_session(&token(1), t(1_000)).await.unwrap(),
        None
    );
    assert!(
        store
            .find_web_session(&token(2), t(1_000))
            .await
            .unwrap()
            .is_some()
    );
}

async fn touch_slides_the_expiry_of_a_live_session_only(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    store
        .create_web_session(&session(1, anna, ws, 5_000))
        .await
        .unwrap();

    store
        .touch_web_session(&token(1), t(4_000), t(8_000))
        .await
        .unwrap();
    let touched = store
        .find_web_session(&token(1), t(6_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_seen_at, t(4_000));
    assert_eq!(touched.expires_at, t(8_000));
    assert_eq!(touched.created_at, t(1_000));

    // Once expired, a session cannot be revived.
    assert_err!(
        store
            .touch_web_session(&token(1), t(8_000), t(20_000))
            .await,
        StoreError::NotFound
    );
    assert_eq!(
        store.find_web_session(&token(1), t(8_000)).await.unwrap(),
        None
    );
    assert_err!(
        store
            .touch_web_session(&token(9), t(1_000), t(20_000))
            .await,
        StoreError::NotFound
    );
}

async fn user_sessions_are_deleted_together(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    let boris = user(&store, "boris").await.id;
    store
        .add_membership(ws, boris, Role::Operator, 1, t(1))
        .await
        .unwrap();
    let other_ws = store.create_workspace("Other", t(1)).await.unwrap().id;
    store
        .add_membership(other_ws, anna, Role::Admin, 1, t(1))
        .await
        .unwrap();

    store
        .create_web_session(&session(1, anna, ws, 5_000))
        .await
        .unwrap();
    store
        .create_web_session(&session(2, anna, other_ws, 5_000))
        .await
        .unwrap();
    store
        .create_web_session(&session(3, boris, ws, 5_000))
        .await
        .unwrap();

    assert_eq!(store.delete_user_web_sessions(anna).await.unwrap(), 2);
    assert_eq!(
        store.find_web_session(&token(1), t(1_000)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_web_session(&token(2), t(1_000)).await.unwrap(),
        None
    );
    assert!(
        store
            .find_web_session(&token(3), t(1_000))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.delete_user_web_sessions(anna).await.unwrap(), 0);
}

async fn expired_sessions_are_purged(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    for (n, expires) in [(1, 100), (2, 200), (3, 300)] {
        store
            .create_web_session(&session(n, anna, ws, expires))
            .await
            .unwrap();
    }
    assert_eq!(store.purge_expired_web_sessions(t(50)).await.unwrap(), 0);
    assert_eq!(store.purge_expired_web_sessions(t(200)).await.unwrap(), 2);
    assert!(!store.delete_web_session(&token(1)).await.unwrap());
    assert!(!store.delete_web_session(&token(2)).await.unwrap());
    assert!(
        store
            .find_web_session(&token(3), t(250))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.purge_expired_web_sessions(t(200)).await.unwrap(), 0);
}

async fn sessions_need_a_membership_and_end_with_it(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    let outsider = user(&store, "outsider").await.id;
    assert_err!(
        store
            .create_web_session(&session(1, outsider, ws, 5_000))
            .await,
        StoreError::NotFound
    );

    store
        .create_web_session(&session(2, anna, ws, 5_000))
        .await
        .unwrap();
    let boss = user(&store, "boss").await.id;
    store
        .add_membership(ws, boss, Role::Owner, 3, t(1))
        .await
        .unwrap();
    store
        .remove_membership(ws, boss, anna, t(1_000))
        .await
        .unwrap();
    assert_eq!(
        store.find_web_session(&token(2), t(1_000)).await.unwrap(),
        None
    );
    assert_eq!(store.delete_user_web_sessions(anna).await.unwrap(), 0);
}

// --- audit ---

async fn audit_events_round_trip(store: Arc<dyn Store>) {
    let (ws, anna) = member(&store, "anna").await;
    let details = json!({
        "reason": "wrong_password",
        "attempt": 3,
        "nested": {"ok": false, "list": [1, 2.5, null, "ё"]},
    });
    let appended = store
        .append_audit(&NewAuditEvent {
            workspace_id: Some(ws),
            actor_user_id: Some(anna),
            action: "auth.login_failed".to_string(),
            target: Some(format!("user:{}", anna.0)),
            ip: Some("::1".to_string()),
            details: details.clone(),
            created_at: t(1_234),
        })
        .await
        .unwrap();
    assert_eq!(appended.workspace_id, Some(ws));
    assert_eq!(appended.actor_user_id, Some(anna));
    assert_eq!(appended.action, "auth.login_failed");
    assert_eq!(appended.target, Some(format!("user:{}", anna.0)));
    assert_eq!(appended.ip.as_deref(), Some("::1"));
    assert_eq!(appended.details, details);
    assert_eq!(appended.created_at, t(1_234));
    assert_eq!(
        store.list_audit(ws, None, 10).await.unwrap(),
        vec![appended.clone()]
    );

    // An event without workspace, actor or target (e.g. a sign-in attempt for no one).
    let bare = store
        .append_audit(&event(None, "auth.login_failed", None, 1_300))
        .await
        .unwrap();
    assert!(bare.id > appended.id);
    assert_eq!(
        (bare.workspace_id, bare.actor_user_id, bare.target),
        (None, None, None)
    );
    assert_eq!(bare.details, json!({}));
    assert_eq!(
        store.list_audit(ws, None, 10).await.unwrap(),
        vec![appended]
    );

    assert_err!(
        store
            .append_audit(&event(Some(WorkspaceId(ws.0 + 100)), "x", None, 1))
            .await,
        StoreError::NotFound
    );
}

async fn audit_is_paged_newest_first_and_isolated_per_workspace(store: Arc<dyn Store>) {
    let acme = store.create_workspace("Acme", t(1)).await.unwrap().id;
    let beta = store.create_workspace("Beta", t(1)).await.unwrap().id;
    let mut acme_ids = Vec::new();
    for i in 0..5 {
        let e = store
            .append_audit(&event(Some(acme), &format!("acme.{i}"), None, 100 + i))
            .await
            .unwrap();
        acme_ids.push(e.id);
        store
            .append_audit(&event(Some(beta), &format!("beta.{i}"), None, 100 + i))
            .await
            .unwrap();
    }
    store
        .append_audit(&event(None, "global", None, 200))
        .await
        .unwrap();
    acme_ids.reverse();

    let ids = |events: Vec<switchboard_domain::AuditEvent>| -> Vec<AuditEventId> {
        events.into_iter().map(|e| e.id).collect()
    };
    let all = store.list_audit(acme, None, 100).await.unwrap();
    assert!(
        all.iter()
            .all(|e| e.workspace_id == Some(acme) && e.action.starts_with("acme."))
    );
    assert_eq!(ids(all), acme_ids);

    let page1 = ids(store.list_audit(acme, None, 2).await.unwrap());
    assert_eq!(page1, acme_ids[0..2]);
    let page2 = ids(store.list_audit(acme, Some(page1[1]), 2).await.unwrap());
    assert_eq!(page2, acme_ids[2..4]);
    let page3 = ids(store.list_audit(acme, Some(page2[1]), 2).await.unwrap());
    assert_eq!(page3, acme_ids[4..5]);
    assert!(
        store
            .list_audit(acme, Some(page3[0]), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_audit(acme, None, 0).await.unwrap().is_empty());

    let beta_events = store.list_audit(beta, None, 100).await.unwrap();
    assert_eq!(beta_events.len(), 5);
    assert!(beta_events.iter().all(|e| e.workspace_id == Some(beta)));
    assert_eq!(beta_events[0].action, "beta.4");
    // A cursor from another workspace does not leak that workspace's events.
    let cursor = store.list_audit(acme, None, 1).await.unwrap()[0].id;
    assert!(
        store
            .list_audit(beta, Some(cursor), 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.workspace_id == Some(beta))
    );
    let nobody = WorkspaceId(beta.0 + 100);
    assert!(
        store
            .list_audit(nobody, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_is_listed_by_target(store: Arc<dyn Store>) {
    let acme = store.create_workspace("Acme", t(1)).await.unwrap().id;
    let a = store
        .append_audit(&event(None, "auth.login_failed", Some("username:ghost"), 1))
        .await
        .unwrap();
    let b = store
        .append_audit(&event(
            Some(acme),
            "auth.login_failed",
            Some("username:ghost"),
            2,
        ))
        .await
        .unwrap();
    store
        .append_audit(&event(
            Some(acme),
            "auth.login_failed",
            Some("username:other"),
            3,
        ))
        .await
        .unwrap();
    let c = store
        .append_audit(&event(None, "auth.locked", Some("username:ghost"), 4))
        .await
        .unwrap();

    let found = store
        .list_audit_for_target("username:ghost", 10)
        .await
        .unwrap();
    assert_eq!(found, vec![c.clone(), b.clone(), a]);
    assert_eq!(
        store
            .list_audit_for_target("username:ghost", 2)
            .await
            .unwrap(),
        vec![c, b]
    );
    assert!(
        store
            .list_audit_for_target("username:nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_events_older_than_the_retention_are_purged(store: Arc<dyn Store>) {
    let acme = store.create_workspace("Acme", t(1)).await.unwrap().id;
    for at in [100, 200, 299] {
        store
            .append_audit(&event(Some(acme), "old", None, at))
            .await
            .unwrap();
    }
    let kept_at_cutoff = store
        .append_audit(&event(Some(acme), "at_cutoff", None, 300))
        .await
        .unwrap();
    let kept_global = store
        .append_audit(&event(None, "new", Some("username:ghost"), 400))
        .await
        .unwrap();
    store
        .append_audit(&event(None, "old_global", Some("username:ghost"), 50))
        .await
        .unwrap();

    assert_eq!(store.purge_audit_before(t(300)).await.unwrap(), 4);
    assert_eq!(
        store.list_audit(acme, None, 10).await.unwrap(),
        vec![kept_at_cutoff]
    );
    assert_eq!(
        store
            .list_audit_for_target("username:ghost", 10)
            .await
            .unwrap(),
        vec![kept_global]
    );
    assert_eq!(store.purge_audit_before(t(300)).await.unwrap(), 0);
}
