//! The lead-monitoring API over real HTTP, on both backends: tasks (create, change, pause,
//! resume, delete, sources), a query that does not parse, who may do what (operators, other
//! workspaces), the lead list (filters, search, paging, read flags, CSV export), parallel
//! creates, the "try it" box on a tgsim channel's real posts (matches and their highlights),
//! sources picked from the reading account's dialogs as Telegram lists them, and "write to the
//! author" through a tgsim account.
//!
//! Leads are stored the way the monitor stores them (`LeadStore::insert_leads`), with a source
//! the API created: these tests are about what people do with leads, not about finding them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_domain::{LeadAuthor, LeadId, NewLead, Role, SourceId, TaskId, Timestamp};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::{author_known_to, connect_personal_account, eventually, reply};

app_tests!(
    tasks_are_created_changed_paused_and_deleted,
    a_query_that_does_not_parse_is_refused_with_its_place,
    operators_see_tasks_but_do_not_manage_them,
    another_workspaces_tasks_and_leads_are_not_found,
    leads_are_filtered_searched_paged_and_marked_read,
    the_csv_export_quotes_and_defuses_formulas,
    parallel_creates_with_one_name_give_one_task,
    try_it_checks_the_query_and_needs_a_connected_account,
    writing_to_the_author_opens_their_chat,
    try_it_highlights_the_matches_in_real_posts,
    sources_are_picked_from_the_accounts_dialogs,
);

const HOUR: i64 = 3_600_000;

fn task_body(name: &str, query: &str, account: i64) -> Value {
    json!({
        "name": name,
        "query": query,
        "account_id": account,
        "sources": [{"reference": "@rust_jobs"}, {"reference": "https://t.me/+AbCdEf"}],
    })
}

async fn create(b: &Browser, body: &Value) -> Value {
    let r = b.post("/api/v1/tasks", body).await;
    assert_eq!(r.status(), 201, "create {body}");
    r.json().await.unwrap()
}

async fn put(b: &Browser, path: &str, body: &Value) -> reqwest::Response {
    b.send(reqwest::Method::PUT, path, Some(body), true).await
}

async fn delete(b: &Browser, path: &str) -> reqwest::Response {
    b.send(reqwest::Method::DELETE, path, None, true).await
}

async fn tasks(b: &Browser) -> Vec<Value> {
    let v: Value = b.get("/api/v1/tasks").await.json().await.unwrap();
    v["tasks"].as_array().cloned().unwrap()
}

async fn audit_actions(b: &Browser) -> Vec<String> {
    let v: Value = b.get("/api/v1/audit?limit=200").await.json().await.unwrap();
    v["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect()
}

/// An account of the workspace, connected to tgsim.
async fn account(app: &TestApp, admin: &Browser, phone: &str) -> (tgsim::UserInfo, i64) {
    connect_personal_account(app, admin, phone, "Reader").await
}

async fn tasks_are_created_changed_paused_and_deleted(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551000").await;
    let created = create(&admin, &task_body("Rust jobs", "rust -senior", acc)).await;
    let task = &created["task"];
    let id = task["id"].as_i64().unwrap();
    assert_eq!(task["name"], "Rust jobs");
    assert_eq!(task["active"], true);
    assert_eq!(task["target"], json!({"kind": "saved_messages"}));
    assert_eq!(task["mode"], json!({"mode": "instant"}));
    assert_eq!(task["instant_cap_per_minute"], 10);
    let sources = created["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert!(sources.iter().all(|s| s["state"] == "resolving"));
    assert!(
        sources.iter().all(|s| s.get("access_hash").is_none()),
        "the access hash never leaves"
    );
    let kinds: Vec<&str> = sources
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"username") && kinds.contains(&"invite"));

    // Read back, listed.
    let got: Value = admin
        .get(&format!("/api/v1/tasks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["task"], created["task"]);
    assert_eq!(tasks(&admin).await.len(), 1);

    // Replace: a digest every 15 minutes, sources kept when not given.
    let r = put(
        &admin,
        &format!("/api/v1/tasks/{id}"),
        &json!({"name": "Rust or Go", "query": "(rust | go) вакансия", "account_id": acc,
                "mode": {"mode": "digest", "every_minutes": 15}, "ignore_forwards": true,
                "leave_unused": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["task"]["name"], "Rust or Go");
    assert_eq!(
        v["task"]["mode"],
        json!({"mode": "digest", "every_minutes": 15})
    );
    assert_eq!(v["task"]["ignore_forwards"], true);
    assert_eq!(v["sources"].as_array().unwrap().len(), 2);

    // A digest interval out of range changes nothing.
    let r = put(
        &admin,
        &format!("/api/v1/tasks/{id}"),
        &json!({"name": "Rust or Go", "query": "go", "account_id": acc,
                "mode": {"mode": "digest", "every_minutes": 0}}),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "digest_interval_invalid");

    // Pause and resume.
    let r = admin
        .post(&format!("/api/v1/tasks/{id}/pause"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["task"]["active"], false);
    let r = admin
        .post(&format!("/api/v1/tasks/{id}/resume"), &json!({}))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["task"]["active"], true);

    // Sources: replaced, read back, one picked from the account's chats.
    let r = put(
        &admin,
        &format!("/api/v1/tasks/{id}/sources"),
        &json!({"sources": [{"reference": "t.me/c/1234567/5"},
                            {"dialog_peer_id": -1001234, "title": "Jobs chat"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = admin
        .get(&format!("/api/v1/tasks/{id}/sources"))
        .await
        .json()
        .await
        .unwrap();
    let mut keys: Vec<(String, String)> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().into(),
                s["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            ("channel_id".to_string(), "1234567".to_string()),
            ("dialog".to_string(), "-1001234".to_string())
        ]
    );
    // A person is not a source; a reference and a dialog at once is not one source.
    for bad in [
        json!({"sources": [{"dialog_peer_id": 777, "title": "Bob"}]}),
        json!({"sources": [{"reference": "@rust_jobs", "dialog_peer_id": -5}]}),
        json!({"sources": [{"reference": "not a link/at all"}]}),
    ] {
        let r = put(&admin, &format!("/api/v1/tasks/{id}/sources"), &bad).await;
        assert_eq!(r.status(), 422, "{bad}");
    }
    let v: Value = admin
        .get(&format!("/api/v1/tasks/{id}/sources"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["sources"].as_array().unwrap().len(),
        2,
        "refusals change nothing"
    );

    // Saved paused from the start.
    let mut body = task_body("Paused from the start", "kotlin", acc);
    body["active"] = json!(false);
    let v = create(&admin, &body).await;
    assert_eq!(v["task"]["active"], false);

    // Delete.
    let r = delete(&admin, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(r.status(), 204);
    let r = admin.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(r.status(), 404);

    let actions = audit_actions(&admin).await;
    for a in [
        "leads.task_created",
        "leads.task_updated",
        "leads.task_paused",
        "leads.task_resumed",
        "leads.sources_set",
        "leads.task_deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

async fn a_query_that_does_not_parse_is_refused_with_its_place(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551010").await;
    let r = admin
        .post("/api/v1/tasks", &task_body("Broken", "(rust | go", acc))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "query_invalid");
    assert_eq!(v["error"]["position"], 10);
    assert_eq!(v["error"]["expected"], ")");
    assert_eq!(v["error"]["message"], "expected \")\" at 10");
    assert!(tasks(&admin).await.is_empty(), "nothing written");

    // In Russian the message is translated; the place stays.
    let r = app
        .http
        .post(app.at("/api/v1/tasks"))
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .header("accept-language", "ru")
        .json(&task_body("Broken", "rust /(/", acc))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "query_invalid");
    assert_eq!(v["error"]["expected"], "valid_regex");
    assert_eq!(v["error"]["position"], 5);
    assert!(v["error"]["message"].as_str().unwrap().contains("Запрос"));

    // A bad source refuses the whole create: no task without its sources.
    let mut body = task_body("Bad source", "rust", acc);
    body["sources"] = json!([{"reference": "@rust_jobs"}, {"reference": "example.com/x"}]);
    let r = admin.post("/api/v1/tasks", &body).await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "source_invalid");
    assert!(tasks(&admin).await.is_empty(), "nothing written");

    // On a replace, the task keeps its query.
    let v = create(&admin, &task_body("Good", "rust", acc)).await;
    let id = v["task"]["id"].as_i64().unwrap();
    let r = put(
        &admin,
        &format!("/api/v1/tasks/{id}"),
        &json!({"name": "Good", "query": "rust -", "account_id": acc}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["error"]["position"].as_i64(),
            v["error"]["expected"].as_str()
        ),
        (Some(6), Some("term"))
    );
    let v: Value = admin
        .get(&format!("/api/v1/tasks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["task"]["query"], "rust");
    let audit = audit_actions(&admin).await;
    assert_eq!(
        audit.iter().filter(|a| a.starts_with("leads.")).count(),
        1,
        "only the good create is audited: {audit:?}"
    );
}

async fn operators_see_tasks_but_do_not_manage_them(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let operator = app.login("operator", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551020").await;
    let v = create(&admin, &task_body("Rust jobs", "rust", acc)).await;
    let id = v["task"]["id"].as_i64().unwrap();

    let r = operator
        .post("/api/v1/tasks", &task_body("Mine", "go", acc))
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "task_forbidden");
    let r = put(
        &operator,
        &format!("/api/v1/tasks/{id}"),
        &task_body("Renamed", "go", acc),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "task_forbidden");
    for path in [
        format!("/api/v1/tasks/{id}/pause"),
        format!("/api/v1/tasks/{id}/resume"),
    ] {
        let r = operator.post(&path, &json!({})).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(error_code(r).await, "task_forbidden");
    }
    let r = put(
        &operator,
        &format!("/api/v1/tasks/{id}/sources"),
        &json!({"sources": []}),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = delete(&operator, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(r.status(), 403);

    // Nothing changed, and the operator reads it all.
    let v: Value = operator
        .get(&format!("/api/v1/tasks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["task"]["name"], "Rust jobs");
    assert_eq!(v["task"]["active"], true);
    assert_eq!(v["sources"].as_array().unwrap().len(), 2);
    assert_eq!(tasks(&operator).await.len(), 1);
    // An owner-added admin manages.
    app.add_user(app.workspace, "second_admin", Role::Admin)
        .await;
    let second = app.login("second_admin", PASSWORD).await;
    let r = second
        .post(&format!("/api/v1/tasks/{id}/pause"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
}

async fn another_workspaces_tasks_and_leads_are_not_found(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551030").await;
    let v = create(&admin, &task_body("Rust jobs", "rust", acc)).await;
    let id = v["task"]["id"].as_i64().unwrap();
    let source = SourceId(v["sources"][0]["id"].as_i64().unwrap());
    let lead = seed(app, TaskId(id), source, &[(1, "Rust developer wanted", 0)]).await[0];

    let (_, other) = app.other_workspace("Other", "intruder").await;
    for path in [
        format!("/api/v1/tasks/{id}"),
        format!("/api/v1/tasks/{id}/sources"),
    ] {
        let r = other.get(&path).await;
        assert_eq!(r.status(), 404, "GET {path}");
        assert_eq!(error_code(r).await, "not_found");
    }
    for path in [
        format!("/api/v1/tasks/{id}/pause"),
        format!("/api/v1/tasks/{id}/resume"),
        format!("/api/v1/tasks/{id}/try"),
        format!("/api/v1/leads/{}/write", lead.0),
    ] {
        let r = other.post(&path, &json!({})).await;
        assert_eq!(r.status(), 404, "POST {path}");
    }
    let r = put(
        &other,
        &format!("/api/v1/tasks/{id}"),
        &task_body("Stolen", "go", acc),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = put(
        &other,
        &format!("/api/v1/tasks/{id}/sources"),
        &json!({"sources": []}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = delete(&other, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(r.status(), 404);
    let r = other
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/leads/{}", lead.0),
            Some(&json!({"read": true})),
            true,
        )
        .await;
    assert_eq!(r.status(), 404);
    // Its own task naming the first workspace's account is refused.
    let r = other
        .post("/api/v1/tasks", &task_body("Borrowed", "go", acc))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "account_not_found");
    // Lists and exports hold nothing of the first workspace.
    assert!(tasks(&other).await.is_empty());
    let v: Value = other.get("/api/v1/leads").await.json().await.unwrap();
    assert!(v["leads"].as_array().unwrap().is_empty());
    let v: Value = other
        .get(&format!("/api/v1/leads?task_id={id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(v["leads"].as_array().unwrap().is_empty());
    let csv = other
        .get("/api/v1/leads/export.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1, "the header only: {csv}");
    let r = other.post("/api/v1/leads/read-all", &json!({})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["changed"], 0);

    // Everything is still there, unread.
    let v: Value = admin
        .get(&format!("/api/v1/tasks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["task"]["name"], "Rust jobs");
    let v: Value = admin.get("/api/v1/leads").await.json().await.unwrap();
    assert_eq!(v["leads"][0]["read"], false);
}

/// Stores leads for a task's source as the monitor does: `(message id, text, hours after the
/// epoch of the test)`. Returns their ids.
async fn seed(
    app: &TestApp,
    task: TaskId,
    source: SourceId,
    posts: &[(i64, &str, i64)],
) -> Vec<LeadId> {
    seed_by(app, task, source, posts, Some(4242)).await
}

async fn seed_by(
    app: &TestApp,
    task: TaskId,
    source: SourceId,
    posts: &[(i64, &str, i64)],
    author: Option<i64>,
) -> Vec<LeadId> {
    let base = Timestamp::now().0 - 48 * HOUR;
    let batch: Vec<NewLead> = posts
        .iter()
        .map(|(id, text, hours)| NewLead {
            task,
            source,
            tg_message_id: *id,
            revision: 0,
            link: Some(format!("https://t.me/rust_jobs/{id}")),
            author: LeadAuthor {
                id: author,
                name: Some("Мария Петрова".into()),
                username: Some("maria_p".into()),
            },
            text: (*text).to_string(),
            snippet: text.chars().take(60).collect(),
            terms: vec!["rust".into()],
            posted_at: Timestamp(base + hours * HOUR),
            forward_origin: None,
            grouped_id: None,
            simhash: None,
            random_id: id * 7919 + task.0,
        })
        .collect();
    let out = app
        .running
        .monitor
        .store()
        .insert_leads(&batch, Timestamp::now())
        .await
        .unwrap();
    out.iter()
        .map(|o| o.new_lead().expect("a new lead").id)
        .collect()
}

async fn lead_ids(b: &Browser, query: &str) -> Vec<i64> {
    let r = b.get(&format!("/api/v1/leads{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    let v: Value = r.json().await.unwrap();
    v["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect()
}

async fn leads_are_filtered_searched_paged_and_marked_read(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let operator = app.login("operator", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551040").await;
    let a = create(&admin, &task_body("Rust", "rust", acc)).await;
    let b = create(&admin, &task_body("Go", "go", acc)).await;
    let ta = TaskId(a["task"]["id"].as_i64().unwrap());
    let tb = TaskId(b["task"]["id"].as_i64().unwrap());
    let sa = SourceId(a["sources"][0]["id"].as_i64().unwrap());
    let sa2 = SourceId(a["sources"][1]["id"].as_i64().unwrap());
    let la = seed(
        app,
        ta,
        sa,
        &[
            (1, "Rust разработчик, удалённо", 1),
            (2, "Senior Rust engineer in Berlin", 2),
            (3, "Ищем Rust-программиста в офис", 3),
        ],
    )
    .await;
    let la2 = seed(app, ta, sa2, &[(10, "Rust contract, remote", 4)]).await;
    let lb = seed(app, tb, sa, &[(20, "Go developer, удаленно", 5)]).await;
    let mut newest_first: Vec<i64> = [&la[..], &la2[..], &lb[..]]
        .concat()
        .iter()
        .map(|l| l.0)
        .collect();
    newest_first.sort_unstable_by(|x, y| y.cmp(x));

    assert_eq!(lead_ids(&admin, "").await, newest_first);
    // Operators read leads too.
    assert_eq!(lead_ids(&operator, "").await, newest_first);
    // Task, source, read flag, time range.
    assert_eq!(
        lead_ids(&admin, &format!("?task_id={}", tb.0)).await,
        vec![lb[0].0]
    );
    assert_eq!(
        lead_ids(&admin, &format!("?task_id={}&source_id={}", ta.0, sa2.0)).await,
        vec![la2[0].0]
    );
    // Half an hour before the second and the fourth post (the seed's clock read a little earlier).
    let base = Timestamp::now().0 - 48 * HOUR;
    let (from, to) = (base + 2 * HOUR - HOUR / 2, base + 4 * HOUR - HOUR / 2);
    assert_eq!(
        lead_ids(&admin, &format!("?from={from}&to={to}")).await,
        vec![la[2].0, la[1].0],
        "posted within the range"
    );
    // Search: words in any case, ё as е, every word must match.
    assert_eq!(
        lead_ids(
            &admin,
            "?q=%D0%A3%D0%94%D0%90%D0%9B%D0%81%D0%9D%D0%9D%D0%9E"
        )
        .await,
        vec![lb[0].0, la[0].0],
        "УДАЛЁННО finds удалённо and удаленно"
    );
    assert_eq!(lead_ids(&admin, "?q=rust%20berlin").await, vec![la[1].0]);
    assert!(lead_ids(&admin, "?q=python").await.is_empty());
    // Paging: two at a time, the cursor from each page, every lead once.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let v: Value = admin
            .get(&format!("/api/v1/leads?limit=2{q}"))
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            v["leads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_i64().unwrap()),
        );
        match v["next_before"].as_i64() {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    // Out of range pages are refused.
    for bad in ["?limit=0", "?limit=201", "?read=maybe", "?task_id=x"] {
        let r = admin.get(&format!("/api/v1/leads{bad}")).await;
        assert_eq!(r.status(), 422, "{bad}");
        assert_eq!(error_code(r).await, "validation_failed");
    }

    // Read and unread (an operator may).
    let r = operator
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/leads/{}", la[0].0),
            Some(&json!({"read": true})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["lead"]["read"], true);
    assert_eq!(lead_ids(&admin, "?read=true").await, vec![la[0].0]);
    assert_eq!(lead_ids(&admin, "?read=false").await.len(), 4);
    // All of one task, then everything.
    let r = admin
        .post("/api/v1/leads/read-all", &json!({"task_id": ta.0}))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["changed"], 3);
    assert_eq!(lead_ids(&admin, "?read=false").await, vec![lb[0].0]);
    let v: Value = admin
        .post("/api/v1/leads/read-all", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["changed"], 1);
    assert!(lead_ids(&admin, "?read=false").await.is_empty());
    let r = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/leads/{}", lb[0].0),
            Some(&json!({"read": false})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(lead_ids(&admin, "?read=false").await, vec![lb[0].0]);
    let r = admin
        .send(
            reqwest::Method::PATCH,
            "/api/v1/leads/999999",
            Some(&json!({"read": true})),
            true,
        )
        .await;
    assert_eq!(r.status(), 404);
}

/// RFC 4180 records of a CSV text.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CRLF line ends");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the file ends with a line end"
    );
    rows
}

async fn the_csv_export_quotes_and_defuses_formulas(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551050").await;
    let a = create(&admin, &task_body("Rust, \"remote\"", "rust", acc)).await;
    let ta = TaskId(a["task"]["id"].as_i64().unwrap());
    let sa = SourceId(a["sources"][0]["id"].as_i64().unwrap());
    let texts = [
        "=HYPERLINK(\"http://evil\",\"click\") rust",
        "+7 999 rust",
        "-rust- \"quoted\", with comma",
        "@channel rust\nsecond line",
        "Обычный текст про Rust",
    ];
    let posts: Vec<(i64, &str, i64)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (i as i64 + 1, *t, i as i64))
        .collect();
    let ids = seed(app, ta, sa, &posts).await;
    // More than one page of the export (1,000 leads) is exported whole.
    let many: Vec<String> = (0..1_100)
        .map(|i| format!("Rust post number {i}"))
        .collect();
    let many_posts: Vec<(i64, &str, i64)> = many
        .iter()
        .enumerate()
        .map(|(i, t)| (100 + i as i64, t.as_str(), 10))
        .collect();
    seed(app, ta, sa, &many_posts).await;

    let r = admin.get("/api/v1/leads/export.csv").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "a CSV"
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("leads.csv")
    );
    let text = r.text().await.unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows[0][0], "id");
    assert_eq!(rows.len(), 1 + 5 + 1_100);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[col("task")], "Rust, \"remote\"");
    }
    let by_id = |id: LeadId| {
        rows.iter()
            .find(|r| r[0] == id.0.to_string())
            .unwrap_or_else(|| panic!("lead {} exported", id.0))
            .clone()
    };
    assert_eq!(
        by_id(ids[0])[col("text")],
        "'=HYPERLINK(\"http://evil\",\"click\") rust"
    );
    assert_eq!(by_id(ids[1])[col("text")], "'+7 999 rust");
    assert_eq!(by_id(ids[2])[col("text")], "'-rust- \"quoted\", with comma");
    assert_eq!(by_id(ids[3])[col("text")], "'@channel rust\nsecond line");
    assert_eq!(by_id(ids[4])[col("text")], "Обычный текст про Rust");
    assert_eq!(by_id(ids[4])[col("author_username")], "maria_p");
    assert!(by_id(ids[4])[col("posted_at")].ends_with('Z'));
    // No cell starts a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "formula cell {cell:?}"
            );
        }
    }
    // Filters apply to the export.
    let text = admin
        .get("/api/v1/leads/export.csv?q=hyperlink")
        .await
        .text()
        .await
        .unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], ids[0].0.to_string());
}

async fn parallel_creates_with_one_name_give_one_task(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551060").await;
    let body = task_body("Same name", "rust", acc);
    let results =
        futures_util::future::join_all((0..8).map(|_| admin.post("/api/v1/tasks", &body))).await;
    let mut created = 0;
    for r in results {
        match r.status().as_u16() {
            201 => created += 1,
            409 => assert_eq!(error_code(r).await, "task_name_taken"),
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(created, 1);
    let list = tasks(&admin).await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_i64().unwrap();
    let v: Value = admin
        .get(&format!("/api/v1/tasks/{id}/sources"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["sources"].as_array().unwrap().len(), 2);
}

async fn try_it_checks_the_query_and_needs_a_connected_account(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (_, acc) = account(app, &admin, "+15551070").await;
    let v = create(&admin, &task_body("Rust", "rust", acc)).await;
    let id = v["task"]["id"].as_i64().unwrap();
    let r = admin
        .post(
            &format!("/api/v1/tasks/{id}/try"),
            &json!({"query": "[rust go"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "query_invalid");
    assert_eq!(v["error"]["expected"], "]");
    // The account stopped: a clear code, not an error page.
    let r = admin
        .post(&format!("/api/v1/accounts/{acc}/stop"), &json!({}))
        .await;
    assert!(r.status().is_success(), "stop: {}", r.status());
    let r = admin
        .post(&format!("/api/v1/tasks/{id}/try"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "account_offline");
}

async fn writing_to_the_author_opens_their_chat(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, acc) = account(app, &admin, "+15551080").await;
    // The author writes in a group the reading account is in: the account learns them (its
    // peer cache), without any private chat with them.
    let author = author_known_to(app, &owner, acc, "+15551082", "Мария").await;

    let v = create(&admin, &task_body("Rust", "rust", acc)).await;
    let task = TaskId(v["task"]["id"].as_i64().unwrap());
    let source = SourceId(v["sources"][0]["id"].as_i64().unwrap());
    let lead = seed_by(
        app,
        task,
        source,
        &[(1, "Ищу Rust-разработчика", 0)],
        Some(author.id.0),
    )
    .await[0];
    let unknown = seed_by(
        app,
        task,
        source,
        &[(2, "Rust, anonymous", 0)],
        Some(987_654_321),
    )
    .await[0];
    let nobody = seed_by(app, task, source, &[(3, "Rust channel post", 0)], None).await[0];

    let operator = app.login("operator", PASSWORD).await;
    let r = operator
        .post(&format!("/api/v1/leads/{}/write", lead.0), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["created"], true);
    let chat = v["chat_id"].as_i64().unwrap();
    assert_eq!(v["chat"]["peer_id"], author.id.0);
    assert_eq!(v["chat"]["account_id"], acc);
    assert_eq!(v["chat"]["peer_kind"], "user");
    // Once more: the same chat.
    let v: Value = admin
        .post(&format!("/api/v1/leads/{}/write", lead.0), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["created"].as_bool(), v["chat_id"].as_i64()),
        (Some(false), Some(chat))
    );
    // The inbox has it, and a reply reaches the author on Telegram.
    let r = operator.get(&format!("/api/v1/chats/{chat}")).await;
    assert_eq!(r.status(), 200);
    reply(&operator, chat, "Здравствуйте! Пишу по вашей вакансии").await;
    eventually(20, "the author to receive the reply", || async {
        app.sim
            .received_messages(author.id)
            .ok()?
            .into_iter()
            .find(|m| m.from == Some(owner.id) && m.text.contains("по вашей вакансии"))
    })
    .await;

    for id in [unknown, nobody] {
        let r = admin
            .post(&format!("/api/v1/leads/{}/write", id.0), &json!({}))
            .await;
        assert_eq!(r.status(), 409);
        assert_eq!(error_code(r).await, "lead_author_unknown");
    }
    let r = admin.post("/api/v1/leads/999999/write", &json!({})).await;
    assert_eq!(r.status(), 404);
}

/// A tgsim channel the user is a member of; its peer as tgsim and Bot-API ids.
fn member_channel(
    app: &TestApp,
    user: &tgsim::UserInfo,
    title: &str,
    username: Option<&str>,
) -> (tgsim::ChannelId, i64) {
    let info = app
        .sim
        .create_channel(tgsim::NewChannel {
            title: title.into(),
            username: username.map(Into::into),
            members: vec![user.id],
            ..Default::default()
        })
        .unwrap();
    let tgsim::Peer::Channel(id) = info.peer else {
        panic!("not a channel: {:?}", info.peer)
    };
    (id, info.bot_api_chat_id)
}

/// `needle`'s place in `text` as a highlight: UTF-16 code units (JavaScript string indices).
fn utf16_span(text: &str, needle: &str) -> Value {
    let at = text.find(needle).unwrap();
    let start = text[..at].encode_utf16().count();
    json!({"start": start, "end": start + needle.encode_utf16().count()})
}

/// Waits until every source of the task is resolved (`joined` or `polled`).
async fn resolved(admin: &Browser, task: i64) -> Vec<Value> {
    eventually(60, "the sources to be resolved", || async {
        let v: Value = admin
            .get(&format!("/api/v1/tasks/{task}/sources"))
            .await
            .json()
            .await
            .ok()?;
        let sources = v["sources"].as_array()?.clone();
        if let Some(failed) = sources.iter().find(|s| s["state"] == "failed") {
            panic!("a source failed: {failed}");
        }
        sources
            .iter()
            .all(|s| s["state"] == "joined" || s["state"] == "polled")
            .then_some(sources)
    })
    .await
}

async fn try_it_highlights_the_matches_in_real_posts(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, acc) = account(app, &admin, "+15551090").await;
    let (channel, _) = member_channel(app, &owner, "Try jobs", Some("try_jobs"));
    let posts = [
        "Вакансия: Rust-разработчик 🦀, удалённо",
        "Senior Rust developer, office",
        "Python developer wanted",
        "Ищем вакансии для стажёров, Go",
    ];
    for text in posts {
        app.sim
            .post_to_channel(channel, tgsim::OutgoingMessage::text(text))
            .unwrap();
    }
    let v = create(
        &admin,
        &json!({"name": "Try", "query": "(rust | вакансия) -senior", "account_id": acc,
                "sources": [{"reference": "@try_jobs"}]}),
    )
    .await;
    let id = v["task"]["id"].as_i64().unwrap();
    resolved(&admin, id).await;

    // The task's own query over the channel's real posts, newest first.
    let r = admin
        .post(&format!("/api/v1/tasks/{id}/try"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["checked"].as_u64().unwrap() >= 4, "{v}");
    let matches = v["matches"].as_array().unwrap();
    let texts: Vec<&str> = matches
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![posts[3], posts[0]],
        "minus word and no match left out"
    );
    // "вакансии" is a form of "вакансия"; the highlights are JavaScript string indices (the
    // crab emoji before "удалённо" is two of them).
    assert_eq!(matches[0]["terms"], json!(["вакансия"]));
    assert_eq!(
        matches[0]["highlights"],
        json!([utf16_span(posts[3], "вакансии")])
    );
    assert_eq!(matches[1]["terms"], json!(["rust", "вакансия"]));
    assert_eq!(
        matches[1]["highlights"],
        json!([
            utf16_span(posts[0], "Вакансия"),
            utf16_span(posts[0], "Rust")
        ])
    );
    assert!(
        matches
            .iter()
            .all(|m| m["tg_message_id"].as_i64().is_some())
    );

    // Another query, before it is saved: a phrase and an exact form.
    let r = admin
        .post(
            &format!("/api/v1/tasks/{id}/try"),
            &json!({"query": "\"python developer\" | !стажёров"}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{v}");
    assert_eq!(
        matches[0]["highlights"],
        json!([utf16_span(posts[3], "стажёров")])
    );
    assert_eq!(
        matches[1]["highlights"],
        json!([utf16_span(posts[2], "Python developer")])
    );
}

async fn sources_are_picked_from_the_accounts_dialogs(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, acc) = account(app, &admin, "+15551095").await;
    // A private channel (no username: it can only be picked) and a group, both in the
    // account's dialogs; the inbox stores neither (groups are not ingested by default).
    let (channel, channel_peer) = member_channel(app, &owner, "Closed jobs", None);
    let friend = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551096".into(),
            first_name: "Friend".into(),
            ..Default::default()
        })
        .unwrap();
    let group = app
        .sim
        .create_group(tgsim::NewGroup {
            title: "Kotlin chat".into(),
            creator: friend.id,
            members: vec![owner.id],
            ..Default::default()
        })
        .unwrap();

    let r = admin.get(&format!("/api/v1/accounts/{acc}/dialogs")).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let dialogs = v["dialogs"].as_array().unwrap();
    let closed = dialogs
        .iter()
        .find(|d| d["title"] == "Closed jobs")
        .unwrap_or_else(|| panic!("the channel is listed: {v}"));
    assert_eq!(closed["peer_id"], channel_peer);
    assert_eq!(closed["broadcast"], true);
    assert_eq!(closed["username"], Value::Null);
    let kotlin = dialogs
        .iter()
        .find(|d| d["title"] == "Kotlin chat")
        .unwrap();
    assert_eq!(kotlin["peer_id"], group.bot_api_chat_id);
    assert_eq!(kotlin["broadcast"], false);
    assert!(
        dialogs.iter().all(|d| d["peer_id"].as_i64().unwrap() < 0),
        "people are not sources: {v}"
    );
    let chats: Value = admin
        .get(&format!("/api/v1/accounts/{acc}/chats"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        chats["chats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["title"] != "Closed jobs" && c["title"] != "Kotlin chat"),
        "the inbox does not store them, the dialogs list has them: {chats}"
    );

    // Operators do not pick sources; another workspace does not see the account.
    let operator = app.login("operator", PASSWORD).await;
    let r = operator
        .get(&format!("/api/v1/accounts/{acc}/dialogs"))
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "task_forbidden");
    let (_, other) = app.other_workspace("Other dialogs", "other_dialogs").await;
    let r = other.get(&format!("/api/v1/accounts/{acc}/dialogs")).await;
    assert_eq!(r.status(), 404);

    // A picked channel becomes a source that is read: a post in it is a lead.
    let v = create(
        &admin,
        &json!({"name": "Picked", "query": "kotlin | rust", "account_id": acc,
                "sources": [{"dialog_peer_id": channel_peer, "title": "Closed jobs"},
                            {"dialog_peer_id": group.bot_api_chat_id, "title": "Kotlin chat"}]}),
    )
    .await;
    let id = v["task"]["id"].as_i64().unwrap();
    let sources = resolved(&admin, id).await;
    assert!(sources.iter().all(|s| s["kind"] == "dialog"), "{sources:?}");
    app.sim
        .post_to_channel(
            channel,
            tgsim::OutgoingMessage::text("Rust developer, closed channel"),
        )
        .unwrap();
    eventually(30, "the lead of the picked channel", || async {
        let v: Value = admin
            .get(&format!("/api/v1/leads?task_id={id}"))
            .await
            .json()
            .await
            .ok()?;
        let leads = v["leads"].as_array()?;
        (leads.len() == 1 && leads[0]["text"] == "Rust developer, closed channel").then_some(())
    })
    .await;

    // With the account stopped, the list cannot be read: a clear code.
    let r = admin
        .post(&format!("/api/v1/accounts/{acc}/stop"), &json!({}))
        .await;
    assert!(r.status().is_success());
    let r = admin.get(&format!("/api/v1/accounts/{acc}/dialogs")).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "account_offline");
}
