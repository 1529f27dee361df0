//! The Leads page in a real headless Chromium against the real server and tgsim, on both
//! backends: an admin creates a task on the page (a query that does not parse is pointed at
//! first), picks a source from the reading account's dialogs, sees its sources' states, runs
//! the "try it" box over the channel's real posts and sees the matches highlighted, sees a lead
//! appear live, filters and searches the list, and "writes to the author", which opens the
//! author's new chat in the inbox. An operator sees the same page read-only. The English
//! guide's pictures of the Leads page (a task, and the leads) are taken here.
//!
//! The lead is stored and announced the way the monitor's engine does it
//! (`LeadStore::insert_leads`, then `lead_found` on the event bus to the workspace): this test is
//! about the page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_domain::{LeadAuthor, NewLead, SourceId, TaskId, Timestamp};
use switchboard_services::{Audience, ServerEvent};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::Chrome;
use switchboard_tests::live::{author_known_to, connect_personal_account, eventually};

app_tests!(a_task_is_made_on_the_leads_page_and_its_leads_arrive_live);

/// Stores a lead and announces it as the engine does.
async fn found(app: &TestApp, task: TaskId, source: SourceId, id: i64, text: &str, author: i64) {
    let lead = NewLead {
        task,
        source,
        tg_message_id: id,
        revision: 0,
        link: Some(format!("https://t.me/rust_jobs/{id}")),
        author: LeadAuthor {
            id: Some(author),
            name: Some("Мария".into()),
            username: None,
        },
        text: text.into(),
        snippet: text.into(),
        terms: vec!["rust".into()],
        posted_at: Timestamp::now(),
        forward_origin: None,
        grouped_id: None,
        simhash: None,
        random_id: id * 31 + task.0,
    };
    let out = app
        .running
        .monitor
        .store()
        .insert_leads(&[lead], Timestamp::now())
        .await
        .unwrap();
    let lead = out[0].new_lead().expect("stored").clone();
    app.running.events.publish(
        lead.workspace_id,
        Audience::Workspace,
        ServerEvent::LeadFound { lead: &lead },
    );
}

async fn a_task_is_made_on_the_leads_page_and_its_leads_arrive_live(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let (owner, acc) = connect_personal_account(app, &admin, "+15554000", "Reader").await;
    // The author is in a group with the reading account, so the account can write to them.
    let author = author_known_to(app, &owner, acc, "+15554002", "Мария").await;

    // The source is a real (simulated) public channel, so the sources worker resolves and
    // joins it while the page watches.
    let info = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: "Rust jobs".into(),
            username: Some("rust_jobs".into()),
            ..Default::default()
        })
        .unwrap();
    let tgsim::Peer::Channel(channel) = info.peer else {
        panic!("not a channel")
    };

    c.sign_in("admin", PASSWORD).await;
    c.open("/leads").await;
    c.wait_text("#task-list-empty", "No monitoring tasks").await;

    // A new task; the query does not parse at first and the form says where.
    c.click("#task-new").await;
    c.fill("#task-name", "Rust jobs").await;
    c.fill("#task-query", "(rust | go").await;
    c.fill("#task-sources", "@rust_jobs").await;
    // The account's dialogs (as Telegram lists them) offer its group with the author.
    c.wait_text("#task-pick option:last-child", "Мария's group")
        .await;
    c.click("#task-save").await;
    c.wait_text("#task-query-error", "11").await;
    let tasks: Value = admin.get("/api/v1/tasks").await.json().await.unwrap();
    assert!(
        tasks["tasks"].as_array().unwrap().is_empty(),
        "nothing saved"
    );
    c.fill("#task-query", "rust -senior").await;
    // Picked from the dialogs: shown as a line of the sources until saved.
    c.eval(
        "const s = document.getElementById('task-pick'); s.value = s.options[s.options.length - 1].value; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await;
    c.wait_text("#task-source-states li.picked", "Мария's group")
        .await;
    c.click("#task-save").await;
    c.wait_text("#task-status", "Saved").await;
    c.wait_text("#task-list .task-name", "Rust jobs").await;
    // Resolved and joined by the account's sources worker, shown live (`source_updated`) with
    // the channel's title.
    eventually(60, "both sources joined", || async {
        let states = c.texts("#task-source-states .source-state").await;
        (states.len() == 2 && states.iter().all(|s| s.contains("joined"))).then_some(())
    })
    .await;
    c.wait_text("#task-source-states li", "Rust jobs").await;

    // "Try it" over the channel's real posts, with another query than the task's: the matching
    // posts with the matched words highlighted (in every form they matched).
    for text in [
        "Вакансии: Kotlin-разработчик",
        "Python developer wanted",
        "Kotlin, senior",
    ] {
        app.sim
            .post_to_channel(channel, tgsim::OutgoingMessage::text(text))
            .unwrap();
    }
    c.fill("#task-query", "(kotlin | вакансия) -senior").await;
    c.click("#try-run").await;
    c.wait_text("#try-results .try-list .lead-text", "Kotlin-разработчик")
        .await;
    assert_eq!(c.texts("#try-results .try-list li").await.len(), 1);
    assert_eq!(
        c.texts("#try-results mark").await,
        vec!["Вакансии".to_string(), "Kotlin".to_string()]
    );
    c.fill("#task-query", "rust -senior").await;
    let tasks: Value = admin.get("/api/v1/tasks").await.json().await.unwrap();
    let task = &tasks["tasks"][0];
    assert_eq!(task["query"], "rust -senior");
    assert_eq!(task["account_id"], acc);
    let task_id = TaskId(task["id"].as_i64().unwrap());
    let sources: Value = admin
        .get(&format!("/api/v1/tasks/{}/sources", task_id.0))
        .await
        .json()
        .await
        .unwrap();
    let source = SourceId(
        sources["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "username")
            .unwrap()["id"]
            .as_i64()
            .unwrap(),
    );

    // Leads arrive without a reload.
    c.wait_text("#lead-list-empty", "No leads").await;
    found(
        app,
        task_id,
        source,
        1,
        "Go developer in Berlin",
        author.id.0,
    )
    .await;
    c.wait_text("#lead-list .lead-text", "Go developer in Berlin")
        .await;
    found(
        app,
        task_id,
        source,
        2,
        "Rust developer, remote",
        author.id.0,
    )
    .await;
    c.wait_text(
        "#lead-list .lead.fresh .lead-text",
        "Rust developer, remote",
    )
    .await;
    assert_eq!(c.texts("#lead-list .lead").await.len(), 2);
    c.scroll_to("#task-form").await;
    c.guide_shot("en", "leads-task").await;
    c.scroll_to(".leads-list").await;
    c.guide_shot("en", "leads").await;

    // Search and the read filter.
    c.fill("#lf-q", "remote").await;
    eventually(10, "the search to leave one lead", || async {
        let rows = c.texts("#lead-list .lead-text").await;
        (rows.len() == 1 && rows[0].contains("Rust developer")).then_some(())
    })
    .await;
    let href = c
        .eval(
            "return document.getElementById('leads-export').getAttribute('href');",
            vec![],
        )
        .await;
    assert_eq!(href, json!("/api/v1/leads/export.csv?q=remote"));
    c.fill("#lf-q", "").await;
    c.click("#lead-list li:first-child [data-read]").await;
    c.wait("#lead-list .lead.read").await;
    c.eval(
        "const s = document.getElementById('lf-read'); s.value = 'false'; s.dispatchEvent(new Event('change'));",
        vec![],
    )
    .await;
    eventually(10, "the unread filter", || async {
        let rows = c.texts("#lead-list .lead-text").await;
        (rows.len() == 1).then_some(rows)
    })
    .await;

    // "Write to the author" opens their new chat in the inbox.
    c.click("#lead-list [data-write]").await;
    c.wait_text("#chat-title", "Мария").await;
    let url = c.client().current_url().await.unwrap();
    assert!(url.as_str().contains("/inbox#chat-"), "{url}");

    // An operator sees the task and the leads, read-only.
    c.quit().await;
    let op = Chrome::for_app(app).await.unwrap();
    op.sign_in("operator", PASSWORD).await;
    op.open("/leads").await;
    op.wait_text("#task-list .task-name", "Rust jobs").await;
    assert!(op.texts("#task-new").await.is_empty(), "no create button");
    op.click("#task-list [data-open]").await;
    op.wait_text("#task-form", "Only owners and admins").await;
    let disabled = op
        .eval(
            "return document.getElementById('task-fields').disabled;",
            vec![],
        )
        .await;
    assert_eq!(disabled, json!(true));
    op.wait_text("#lead-list .lead-text", "Rust developer")
        .await;
    op.quit().await;
}
