//! The admin's user controls through the real server and tgsim, on both backends: the users
//! list (Telegram identity, accounts, last sign-in) is for owners and admins of the workspace
//! only, and neither the API nor the store reaches a user of another workspace; logging a
//! user's Telegram out ends the session at Telegram (through the account's supervised client,
//! no second connection) and wipes it; deleting a user leaves no row of theirs in any table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::Value;
use switchboard_domain::user_admin::UserAction;
use switchboard_domain::{
    AccountId, DeliveryMode, DeliveryTarget, LeadAuthor, NewLead, NewTrustedDevice, Role,
    SourceRef, StoreError, TaskSpec, Timestamp, UserId, Viewer, WorkspaceId,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::{connect_personal_account, customer, eventually, writes};

app_tests!(
    admins_see_members_with_their_telegram_and_nobody_crosses_workspaces,
    logging_a_users_telegram_out_ends_the_session_at_telegram,
    deleting_a_user_leaves_nothing_of_theirs,
);

/// A self-service user as sign-up leaves them: `sam`, owner of a personal workspace with their
/// own Telegram account connected (phone and Telegram id on the user); with `member`, also an
/// operator of the test workspace (the main one: created first).
struct Sam {
    id: i64,
    browser: Browser,
    personal: WorkspaceId,
    tg: tgsim::UserInfo,
    account: i64,
}

async fn sam(app: &TestApp, member: bool) -> Sam {
    let (personal, browser) = app.other_workspace("Sam's workspace", "sam").await;
    let id = browser.me["id"].as_i64().unwrap();
    let (tg, account) = connect_personal_account(app, &browser, "+15550177", "Sam").await;
    let db = app.stores().unwrap();
    db.execute(&format!(
        "UPDATE users SET phone = '15550177', telegram_user_id = {} WHERE id = {id}",
        tg.id.0
    ))
    .await;
    if member {
        app.store
            .add_membership(
                app.workspace,
                UserId(id),
                Role::Operator,
                5,
                Timestamp::now(),
            )
            .await
            .unwrap();
    }
    Sam {
        id,
        browser,
        personal,
        tg,
        account,
    }
}

async fn users(b: &Browser) -> Vec<Value> {
    let r = b.get("/api/v1/team/users").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["users"].as_array().cloned().unwrap()
}

async fn log_out(b: &Browser, user: i64) -> reqwest::Response {
    b.send(
        Method::POST,
        &format!("/api/v1/team/users/{user}/telegram/logout"),
        None,
        true,
    )
    .await
}

async fn delete(b: &Browser, user: i64) -> reqwest::Response {
    b.send(
        Method::DELETE,
        &format!("/api/v1/team/users/{user}"),
        None,
        true,
    )
    .await
}

async fn audited(app: &TestApp, action: &str) -> usize {
    app.store
        .list_audit(app.workspace, None, 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

async fn admins_see_members_with_their_telegram_and_nobody_crosses_workspaces(app: &TestApp) {
    let sam = sam(app, false).await;
    let admin = app.login("admin", PASSWORD).await;
    let admin_id = UserId(admin.me["id"].as_i64().unwrap());
    let list = users(&admin).await;
    assert_eq!(list.len(), 3, "admin, operator and sam: {list:?}");
    let row = list.iter().find(|u| u["user_id"] == sam.id).unwrap();
    assert_eq!(
        row["role"],
        Value::Null,
        "a self-service user, not a member"
    );
    assert_eq!(row["phone"], "+15550177");
    assert_eq!(row["telegram_user_id"], sam.tg.id.0);
    assert_eq!(
        row["personal_workspaces"],
        serde_json::json!([sam.personal.0])
    );
    let accounts = row["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{row}");
    assert_eq!(accounts[0]["account_id"], sam.account);
    assert_eq!(accounts[0]["personal"], true);
    assert_eq!(accounts[0]["status"], "connected");
    assert!(
        row["last_sign_in_at"].as_i64().is_some(),
        "sam signed in: {row}"
    );
    let operator = list.iter().find(|u| u["username"] == "operator").unwrap();
    assert!(operator["accounts"].as_array().unwrap().is_empty());
    // The page shows the same to admins, with the actions.
    let page = admin.get("/team").await.text().await.unwrap();
    assert!(page.contains("data-user-action=\"logout\""), "{page}");
    assert!(page.contains("+15550177"));

    // Operators may not see it or act.
    let op = app.login("operator", PASSWORD).await;
    assert_eq!(op.get("/api/v1/team/users").await.status(), 403);
    assert_eq!(log_out(&op, sam.id).await.status(), 403);
    assert_eq!(delete(&op, sam.id).await.status(), 403);

    // The owner of another workspace sees only their own and reaches nobody here.
    let (rival_ws, rival) = app.other_workspace("Rival", "rival").await;
    let rival_id = UserId(rival.me["id"].as_i64().unwrap());
    let theirs = users(&rival).await;
    assert_eq!(
        theirs.len(),
        1,
        "only the rival, no self-service user: {theirs:?}"
    );
    for user in [sam.id, admin_id.0] {
        assert_eq!(error_code(log_out(&rival, user).await).await, "not_found");
        assert_eq!(error_code(delete(&rival, user).await).await, "not_found");
    }
    // The store itself refuses the crossing, whatever the caller passes.
    let db = app.stores().unwrap();
    assert!(matches!(
        db.users.list_managed_users(app.workspace, rival_id).await,
        Err(StoreError::Conflict(c)) if c.code() == "forbidden"
    ));
    for action in [UserAction::LogOutTelegram, UserAction::Delete] {
        assert!(matches!(
            db.users
                .user_action_target(rival_ws, rival_id, UserId(sam.id), action)
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            db.users
                .user_action_target(app.workspace, rival_id, UserId(sam.id), action)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(matches!(
        db.users
            .delete_user(rival_ws, rival_id, UserId(sam.id), Timestamp::now())
            .await,
        Err(StoreError::NotFound)
    ));
    // Nothing changed: sam's Telegram still runs and sam still signs in.
    assert_eq!(app.sim.sessions(sam.tg.id), 1);
    assert_eq!(sam.browser.get("/api/v1/me").await.status(), 200);
}

async fn logging_a_users_telegram_out_ends_the_session_at_telegram(app: &TestApp) {
    let sam = sam(app, false).await;
    let admin = app.login("admin", PASSWORD).await;
    // An admin (not an owner) cannot log an owner out; sam, an operator here, they can.
    app.add_user(app.workspace, "deputy", Role::Admin).await;
    let deputy = app.login("deputy", PASSWORD).await;
    let admin_id = admin.me["id"].as_i64().unwrap();
    assert_eq!(
        error_code(log_out(&deputy, admin_id).await).await,
        "forbidden"
    );
    assert_eq!(
        error_code(log_out(&deputy, deputy.me["id"].as_i64().unwrap()).await).await,
        "no_telegram_account"
    );
    assert_eq!(app.sim.sessions(sam.tg.id), 1);
    // Sam remembered a browser at a sign-in: the list shows it.
    let db = app.stores().unwrap();
    db.signin
        .create_trusted_device(&NewTrustedDevice {
            user_id: UserId(sam.id),
            token_hash: "00".repeat(32),
            created_at: Timestamp::now(),
            expires_at: Timestamp(Timestamp::now().0 + 86_400_000),
            user_agent: Some("Firefox".into()),
            ip: None,
        })
        .await
        .unwrap();
    let listed = users(&admin).await;
    let row = listed.iter().find(|u| u["user_id"] == sam.id).unwrap();
    assert_eq!(row["devices"].as_array().unwrap().len(), 1, "{row}");
    let before = app.sim.account_counters(sam.tg.id);
    assert_eq!(before.open_connections, 1, "one supervised client");

    let r = log_out(&deputy, sam.id).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accounts_logged_out"], 1);
    // Dead at Telegram, through the client that ran: no second connection with the key.
    assert_eq!(app.sim.sessions(sam.tg.id), 0);
    let after = app.sim.account_counters(sam.tg.id);
    assert_eq!(after.connections, before.connections, "no new connection");
    assert_eq!(after.calls.get("auth.logOut"), Some(&1));
    // Wiped here, and the account waits for a new connection; no browser is trusted.
    assert!(
        db.signin
            .list_trusted_devices(UserId(sam.id), Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM account_dc_keys WHERE account_id = {} AND auth_key_sealed IS NOT NULL",
            sam.account
        ))
        .await,
        0
    );
    let account = app
        .running
        .account_store
        .get_account(sam.personal, AccountId(sam.account))
        .await
        .unwrap();
    assert_eq!(
        (account.status.as_str(), account.active),
        ("unauthorized", false)
    );
    assert!(
        !app.running
            .accounts
            .supervisor()
            .is_running(AccountId(sam.account))
    );
    assert_eq!(audited(app, "admin.user_telegram_logged_out").await, 1);
    let row = users(&admin).await;
    let row = row.iter().find(|u| u["user_id"] == sam.id).unwrap();
    assert_eq!(row["accounts"][0]["status"], "unauthorized");
    // Signed out here too; the user is not deleted: they sign in and connect again.
    assert_eq!(sam.browser.get("/api/v1/me").await.status(), 401);
    assert!(app.store.get_user(UserId(sam.id)).await.is_ok());
    // A self-service user is deleted with their workspace by the main workspace's admins.
    assert_eq!(delete(&deputy, sam.id).await.status(), 204);
    assert!(app.store.get_workspace(sam.personal).await.is_err());
    assert!(app.store.get_user(UserId(sam.id)).await.is_err());
}

async fn deleting_a_user_leaves_nothing_of_theirs(app: &TestApp) {
    let sam = sam(app, true).await;
    let admin = app.login("admin", PASSWORD).await;
    let admin_id = admin.me["id"].as_i64().unwrap();
    let db = app.stores().unwrap();
    // Sam's own things: a task with a lead in their workspace, a chat assigned to them here.
    let viewer = Viewer {
        workspace: sam.personal,
        user: UserId(sam.id),
        role: Role::Owner,
    };
    let task = db
        .leads
        .create_task(
            &viewer,
            &TaskSpec {
                name: "Rust".into(),
                query: "rust".into(),
                account: AccountId(sam.account),
                target: DeliveryTarget::SavedMessages,
                mode: DeliveryMode::Instant,
                instant_cap_per_minute: 10,
                ignore_forwards: false,
                join_allowed: false,
                leave_unused: false,
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let sources = db
        .leads
        .set_task_sources(
            &viewer,
            task.id,
            &[SourceRef::parse("@rust_go_jobs").unwrap()],
            Timestamp::now(),
        )
        .await
        .unwrap();
    db.leads
        .insert_leads(
            &[NewLead {
                task: task.id,
                source: sources[0].id,
                tg_message_id: 1,
                revision: 0,
                link: None,
                author: LeadAuthor {
                    id: None,
                    name: None,
                    username: None,
                },
                text: "Rust developer".into(),
                snippet: "Rust developer".into(),
                terms: vec!["rust".into()],
                posted_at: Timestamp::now(),
                forward_origin: None,
                grouped_id: None,
                simhash: None,
                random_id: 7,
            }],
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM leads WHERE task_id = {}",
            task.id.0
        ))
        .await,
        1
    );
    let (_, team_account) = connect_personal_account(app, &admin, "+15550178", "Team").await;
    let client = customer(app, "+15550179", "Customer").await;
    let team_tg = app.sim.user_by_phone("+15550178").unwrap();
    writes(app, &client, &team_tg, "hello");
    let chat = eventually(20, "the customer's chat", || async {
        let n = db
            .scalar(&format!(
                "SELECT coalesce(max(id), 0) FROM chats WHERE account_id = {team_account}"
            ))
            .await;
        (n > 0).then_some(n)
    })
    .await;
    db.execute(&format!(
        "UPDATE chats SET assignee_id = {} WHERE id = {chat}",
        sam.id
    ))
    .await;

    // Refusals change nothing: not yourself; not a user who is in another team too.
    assert_eq!(
        error_code(delete(&admin, admin_id).await).await,
        "forbidden"
    );
    let (shared, _) = app.other_workspace("Shared", "carol").await;
    app.store
        .add_membership(shared, UserId(sam.id), Role::Operator, 5, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        error_code(delete(&admin, sam.id).await).await,
        "user_in_other_workspace"
    );
    assert_eq!(app.sim.sessions(sam.tg.id), 1, "nothing was logged out");
    db.execute(&format!(
        "DELETE FROM memberships WHERE workspace_id = {} AND user_id = {}",
        shared.0, sam.id
    ))
    .await;

    let r = delete(&admin, sam.id).await;
    assert_eq!(r.status(), 204);
    assert_eq!(sam.browser.get("/api/v1/me").await.status(), 401);
    assert_eq!(app.sim.sessions(sam.tg.id), 0, "logged out at Telegram");
    assert!(
        !app.running
            .accounts
            .supervisor()
            .is_running(AccountId(sam.account))
    );
    // No row of theirs in any table: by user, by their workspace, by their account, by task.
    let mut checked = 0;
    for (table, column) in app.store.schema_columns().await.unwrap() {
        let value = match (table.as_str(), column.as_str()) {
            ("users", "id")
            | (
                _,
                "user_id" | "actor_user_id" | "assignee_id" | "author_id" | "created_by"
                | "uploaded_by",
            ) => sam.id,
            ("workspaces", "id") | (_, "workspace_id") => sam.personal.0,
            ("accounts", "id") | (_, "account_id") => sam.account,
            ("lead_tasks", "id") | (_, "task_id") => task.id.0,
            _ => continue,
        };
        checked += 1;
        let n = db
            .scalar(&format!(
                "SELECT count(*) FROM {table} WHERE {column} = {value}"
            ))
            .await;
        assert_eq!(n, 0, "{table}.{column} still holds {value}");
    }
    assert!(checked > 20, "only {checked} columns checked");
    // The chat is back in the queue; the team, its account and the audit trail stay.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM chats WHERE id = {chat} AND assignee_id IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(users(&admin).await.len(), 2);
    assert_eq!(audited(app, "admin.user_deleted").await, 1);
    assert_eq!(
        app.sim.sessions(team_tg.id),
        1,
        "the team's account runs on"
    );
}
