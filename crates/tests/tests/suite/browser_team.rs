//! The Team page's user controls in a real headless Chromium, on both backends: an owner sees a
//! self-service user with their Telegram account, logs their Telegram out and deletes them, each
//! through the confirmation step in the row (cancelling it changes nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_domain::UserId;
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::Chrome;
use switchboard_tests::live::connect_personal_account;

app_tests!(an_owner_logs_out_and_deletes_a_user_after_confirming);

async fn an_owner_logs_out_and_deletes_a_user_after_confirming(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    // Sam signed up by phone: a personal workspace with their own account.
    let (personal, sam) = app.other_workspace("Sam's workspace", "sam").await;
    let id = sam.me["id"].as_i64().unwrap();
    let (tg, _) = connect_personal_account(app, &sam, "+15557801", "Sam").await;
    app.stores()
        .unwrap()
        .execute(&format!(
            "UPDATE users SET phone = '15557801', telegram_user_id = {} WHERE id = {id}",
            tg.id.0
        ))
        .await;
    c.sign_in("admin", PASSWORD).await;
    c.open("/team").await;
    let row = format!("#users-table tr[data-user=\"{id}\"]");
    c.wait_text(&format!("{row} td.telegram"), "+15557801")
        .await;

    // Log out of Telegram: asked first; confirmed, the account is logged out.
    c.click(&format!("{row} button[data-user-action=logout]"))
        .await;
    c.wait(&format!("{row} .confirm")).await;
    c.click(&format!("{row} .confirm-yes")).await;
    c.wait("#users-status").await;
    c.wait(&format!(
        "{row} td.telegram .badge[data-status=unauthorized]"
    ))
    .await;
    assert_eq!(app.sim.sessions(tg.id), 0);

    // Delete: cancelling changes nothing; confirming deletes the user and their workspace.
    c.click(&format!("{row} button[data-user-action=delete]"))
        .await;
    c.wait_text(&format!("{row} .confirm-text"), "sam").await;
    c.click(&format!("{row} .confirm-no")).await;
    c.wait_gone(&format!("{row} .confirm:not([hidden])")).await;
    assert!(app.store.get_user(UserId(id)).await.is_ok());
    c.click(&format!("{row} button[data-user-action=delete]"))
        .await;
    c.click(&format!("{row} .confirm-yes")).await;
    c.wait_gone(&row).await;
    assert!(app.store.get_user(UserId(id)).await.is_err());
    assert!(app.store.get_workspace(personal).await.is_err());
    c.quit().await;
}
