//! The inbox page in a real headless Chromium across a server restart, on both backends: the
//! page that was open before the restart reconnects on its own, is told its last event id is
//! of the old process, reloads its list, and shows a chat that starts after the restart live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_domain::ChatId;
use switchboard_services::{Audience, ChatUpdate, ServerEvent};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::browser::Chrome;
use switchboard_tests::live::{connect_personal_account, customer};
use switchboard_tests::restarting_app_tests;
use tgsim::{OutgoingMessage, Peer};

restarting_app_tests!(the_open_page_shows_new_chats_after_a_restart);

async fn the_open_page_shows_new_chats_after_a_restart(app: TestApp) -> TestApp {
    let Some(c) = Chrome::for_app(&app).await else {
        return app;
    };
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(&app, &admin, "+15557600", "Owner").await;
    let nia = customer(&app, "+15557601", "Nia").await;
    let oli = customer(&app, "+15557602", "Oli").await;

    c.sign_in("admin", PASSWORD).await;
    c.open("/inbox").await;
    c.wait_text("#chat-list-empty", "No chats").await;
    // The page has seen many events before the restart (more than the new process will have
    // published when Oli writes).
    for i in 0..500 {
        app.running.events.publish(
            app.workspace,
            Audience::Workspace,
            // A chat the page does not have, by id only: the page ignores it.
            ServerEvent::ChatUpdated(ChatUpdate {
                chat_id: ChatId(1_000_000 + i),
                assignee_id: None,
                chat: None,
                removed: false,
            }),
        );
    }
    app.sim
        .send_message(
            nia.id,
            Peer::User(owner.id),
            OutgoingMessage::text("before"),
        )
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Nia").await;

    let url = app.url.clone();
    let app = app.restart().await;
    assert_eq!(
        app.url, url,
        "the restarted server listens where the page connects"
    );
    app.sim
        .send_message(oli.id, Peer::User(owner.id), OutgoingMessage::text("after"))
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Oli").await;
    c.wait_text("#chat-list .chat-row", "Nia").await;
    c.quit().await;
    app
}
