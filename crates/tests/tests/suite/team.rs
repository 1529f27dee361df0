//! The team rules through the real server, on both backends: owners are changed and made
//! only by owners, nobody removes themselves, the last owner cannot step down (even when two
//! owners step down at the same moment), and a refused change writes nothing — no membership
//! change, no audit event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::json;
use switchboard_domain::{Role, UserId};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;

app_tests!(
    the_last_owner_cannot_step_down_or_leave,
    two_owners_stepping_down_at_once_leave_one,
    admins_cannot_change_make_or_remove_owners,
    out_of_range_capacities_are_refused,
);

/// How many audit events of `action` the test workspace has.
async fn audited(app: &TestApp, action: &str) -> usize {
    app.store
        .list_audit(app.workspace, None, 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

async fn role_of(app: &TestApp, user: i64) -> Role {
    app.store
        .get_membership(app.workspace, UserId(user))
        .await
        .unwrap()
        .role
}

async fn owners(app: &TestApp) -> Vec<i64> {
    app.store
        .list_members(app.workspace)
        .await
        .unwrap()
        .iter()
        .filter(|(m, _)| m.role == Role::Owner)
        .map(|(m, _)| m.user_id.0)
        .collect()
}

async fn patch(b: &Browser, user: i64, body: serde_json::Value) -> reqwest::Response {
    b.send(
        Method::PATCH,
        &format!("/api/v1/team/members/{user}"),
        Some(&body),
        true,
    )
    .await
}

async fn delete(b: &Browser, user: i64) -> reqwest::Response {
    b.send(
        Method::DELETE,
        &format!("/api/v1/team/members/{user}"),
        None,
        true,
    )
    .await
}

/// Signs in `username`, created by the owner `by` with `role`; returns the session and the id.
async fn new_member(app: &TestApp, by: &Browser, username: &str, role: &str) -> (Browser, i64) {
    let r = by
        .post(
            "/api/v1/team/members",
            &json!({"username": username, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(r.status(), 201, "creating {username}");
    let id = r.json::<serde_json::Value>().await.unwrap()["user_id"]
        .as_i64()
        .unwrap();
    (app.login(username, PASSWORD).await, id)
}

async fn the_last_owner_cannot_step_down_or_leave(app: &TestApp) {
    let owner = app.login("admin", PASSWORD).await;
    let me = owner.me["id"].as_i64().unwrap();
    let (updated, removed) = (
        audited(app, "admin.member_updated").await,
        audited(app, "admin.member_removed").await,
    );

    let r = patch(&owner, me, json!({"role": "admin"})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "last_owner");
    let r = delete(&owner, me).await;
    assert_eq!(r.status(), 403, "nobody removes themselves");
    assert_eq!(error_code(r).await, "forbidden");

    assert_eq!(role_of(app, me).await, Role::Owner, "still the owner");
    assert_eq!(
        owner.get("/api/v1/me").await.status(),
        200,
        "still signed in"
    );
    assert_eq!(audited(app, "admin.member_updated").await, updated);
    assert_eq!(audited(app, "admin.member_removed").await, removed);

    // Keeping the role while changing the capacity is allowed.
    let r = patch(&owner, me, json!({"role": "owner", "max_chats": 3})).await;
    assert_eq!(r.status(), 200);
    // With a second owner, the first may step down.
    let (_, second) = new_member(app, &owner, "second", "owner").await;
    let r = patch(&owner, me, json!({"role": "admin"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(owners(app).await, [second]);
}

async fn two_owners_stepping_down_at_once_leave_one(app: &TestApp) {
    let first = app.login("admin", PASSWORD).await;
    let first_id = first.me["id"].as_i64().unwrap();
    let (second, second_id) = new_member(app, &first, "second", "owner").await;
    // Twenty rounds: without the store's lock, PostgreSQL lets both through within the first.
    for round in 0..20 {
        let (a, b) = if round % 2 == 0 {
            // Each demotes the other.
            tokio::join!(
                patch(&first, second_id, json!({"role": "admin"})),
                patch(&second, first_id, json!({"role": "admin"})),
            )
        } else {
            // Each steps down.
            tokio::join!(
                patch(&first, first_id, json!({"role": "admin"})),
                patch(&second, second_id, json!({"role": "admin"})),
            )
        };
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        let left = owners(app).await;
        assert_eq!(
            left.len(),
            1,
            "round {round}: {statuses:?}, owners {left:?}"
        );
        assert_eq!(statuses[0], 200, "round {round}: one change goes through");
        assert!(
            [403, 409].contains(&statuses[1]),
            "round {round}: the other is refused, not {statuses:?}"
        );
        // The remaining owner makes the other one an owner again for the next round.
        let remaining = if left[0] == first_id { &first } else { &second };
        let other = if left[0] == first_id {
            second_id
        } else {
            first_id
        };
        let r = patch(remaining, other, json!({"role": "owner"})).await;
        assert_eq!(r.status(), 200, "round {round}");
    }
}

async fn admins_cannot_change_make_or_remove_owners(app: &TestApp) {
    let owner = app.login("admin", PASSWORD).await;
    let owner_id = owner.me["id"].as_i64().unwrap();
    let (admin, admin_id) = new_member(app, &owner, "ada", "admin").await;
    let operator_id = app
        .store
        .list_members(app.workspace)
        .await
        .unwrap()
        .iter()
        .find(|(_, u)| {
            u.username
                .as_ref()
                .is_some_and(|n| n.as_str() == "operator")
        })
        .unwrap()
        .1
        .id
        .0;
    let (updated, removed) = (
        audited(app, "admin.member_updated").await,
        audited(app, "admin.member_removed").await,
    );
    let members = app.store.list_members(app.workspace).await.unwrap().len();

    for r in [
        patch(&admin, owner_id, json!({"role": "admin"})).await,
        patch(&admin, owner_id, json!({"max_chats": 1})).await,
        patch(&admin, operator_id, json!({"role": "owner"})).await,
        patch(&admin, admin_id, json!({"role": "owner"})).await,
        delete(&admin, owner_id).await,
        delete(&admin, admin_id).await,
        admin
            .post(
                "/api/v1/team/members",
                &json!({"username": "usurper", "password": PASSWORD, "role": "owner"}),
            )
            .await,
    ] {
        assert_eq!(r.status(), 403);
        assert_eq!(error_code(r).await, "forbidden");
    }
    assert_eq!(owners(app).await, [owner_id]);
    assert_eq!(role_of(app, operator_id).await, Role::Operator);
    assert_eq!(role_of(app, admin_id).await, Role::Admin);
    let m = app
        .store
        .get_membership(app.workspace, UserId(owner_id))
        .await
        .unwrap();
    assert_eq!(m.max_chats, 5, "the owner's capacity is unchanged");
    assert_eq!(
        app.store.list_members(app.workspace).await.unwrap().len(),
        members
    );
    assert_eq!(audited(app, "admin.member_updated").await, updated);
    assert_eq!(audited(app, "admin.member_removed").await, removed);

    // What an admin may do: change and remove operators.
    let r = patch(
        &admin,
        operator_id,
        json!({"role": "admin", "max_chats": 4}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(audited(app, "admin.member_updated").await, updated + 1);
    let r = delete(&admin, operator_id).await;
    assert_eq!(r.status(), 204);
    assert_eq!(audited(app, "admin.member_removed").await, removed + 1);
}

async fn out_of_range_capacities_are_refused(app: &TestApp) {
    let owner = app.login("admin", PASSWORD).await;
    let operator_id = app.store.list_members(app.workspace).await.unwrap()[1]
        .1
        .id
        .0;
    let updated = audited(app, "admin.member_updated").await;
    for max_chats in [-1, 10_001] {
        let r = patch(&owner, operator_id, json!({"max_chats": max_chats})).await;
        assert_eq!(r.status(), 422, "{max_chats}");
        assert_eq!(error_code(r).await, "validation_failed");
        let r = owner
            .post(
                "/api/v1/team/members",
                &json!({"username": "cap", "password": PASSWORD, "role": "operator",
                        "max_chats": max_chats}),
            )
            .await;
        assert_eq!(r.status(), 422, "{max_chats}");
        assert_eq!(error_code(r).await, "validation_failed");
    }
    let m = app
        .store
        .get_membership(app.workspace, UserId(operator_id))
        .await
        .unwrap();
    assert_eq!(m.max_chats, 5);
    assert_eq!(
        app.store.list_members(app.workspace).await.unwrap().len(),
        2
    );
    assert_eq!(audited(app, "admin.member_updated").await, updated);
    let r = patch(&owner, operator_id, json!({"max_chats": 10_000})).await;
    assert_eq!(r.status(), 200);
}
