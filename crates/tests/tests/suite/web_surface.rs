//! The web surface besides the API logic: health, readiness, metrics, the OpenAPI document and
//! the HTML pages, through the real server, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;

app_tests!(
    health_readiness_and_metrics,
    every_metric_is_listed_in_the_readme,
    openapi_documents_every_endpoint,
    every_response_body_has_a_schema,
    pages_need_a_session_and_show_the_shell,
    no_page_may_be_framed,
);

async fn health_readiness_and_metrics(app: &TestApp) {
    let r = app.http.get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r: serde_json::Value = app
        .http
        .get(app.at("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ready"], true);
    assert_eq!(r["database"], true);
    assert_eq!(r["workers"], true);
    let _ = app.http.get(app.at("/api/v1/me")).send().await.unwrap();
    // Methods a client invents are counted as `other`, not as labels of their own.
    for method in ["BREW", "PROPFIND", "X-ANYTHING-1", "X-ANYTHING-2"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .http
            .request(m, app.at("/api/v1/me"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{method}: {}", r.status());
    }
    let m = app
        .http
        .get(app.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("switchboard_http_requests_total"), "{m}");
    assert!(
        m.contains("route=\"/api/v1/me\"") && m.contains("status=\"401\""),
        "{m}"
    );
    let methods: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| l.starts_with("switchboard_http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert!(methods.contains("other") && methods.contains("GET"), "{m}");
    assert!(
        methods.iter().all(|m| ["GET", "POST", "other"].contains(m)),
        "invented methods are not labels of their own: {methods:?}"
    );
}

/// One row of README.md's metrics table: the metric's name and its labels.
fn readme_metrics() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme
        .split("\n## Metrics")
        .nth(1)
        .expect("README.md has a Metrics section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let labels = cells[2]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty() && l != "—")
                .collect();
            (name, labels)
        })
        .collect()
}

/// Every metric family `/metrics` serves (registered, whether or not it has samples yet) is in
/// README.md's table under the name users query (`_total` for counters), and the table names
/// nothing else; every label a served sample carries is listed for its metric.
async fn every_metric_is_listed_in_the_readme(app: &TestApp) {
    // Samples for the labelled families: a request, and a sign-in refused by a lock.
    let _ = app.http.get(app.at("/api/v1/me")).send().await.unwrap();
    for _ in 0..=app.config.auth.lock_after {
        let _ = app
            .post_json_anon(
                "/api/v1/auth/login",
                &serde_json::json!({"username": "operator", "password": "wrong guess"}),
            )
            .await;
    }
    let text = app.metrics().await;
    let documented = readme_metrics();
    let mut served = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = rest.split_once(' ').unwrap();
        let name = if kind == "counter" {
            format!("{family}_total")
        } else {
            family.to_string()
        };
        served.insert(name, family.to_string());
    }
    assert!(
        served.contains_key("switchboard_http_requests_total"),
        "{text}"
    );
    let missing: Vec<&String> = served
        .keys()
        .filter(|n| !documented.contains_key(*n))
        .collect();
    let stale: Vec<&String> = documented
        .keys()
        .filter(|n| !served.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's metrics table and /metrics differ\nserved, not in the README: \
         {missing:?}\nin the README, not served: {stale:?}\n{text}"
    );
    let mut labelled = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, _)) = line.split_once('{') else {
            continue;
        };
        let name = served
            .iter()
            .filter(|(_, family)| series.starts_with(family.as_str()))
            .max_by_key(|(_, family)| family.len())
            .map(|(name, _)| name)
            .unwrap_or_else(|| panic!("{series} belongs to no family"));
        // Up to the last brace: a route label holds braces of its own (`{id}`).
        let labels = line.split_once('{').unwrap().1.rsplit_once('}').unwrap().0;
        for label in labels.split("\",").filter_map(|l| l.split_once('=')) {
            if label.0 == "le" {
                continue;
            }
            labelled += 1;
            assert!(
                documented[name].contains(label.0),
                "{name} carries the label {} that README.md does not list",
                label.0
            );
        }
    }
    assert!(labelled > 0, "no labelled sample was checked: {text}");
    assert!(text.contains("reason=\"account_locked\""), "{text}");
}

async fn openapi_document(app: &TestApp) -> serde_json::Value {
    app.http
        .get(app.at("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every response body the document lists has a schema that says what it holds: no operation
/// answers a bare `object` (no properties, no typed values) or an any-typed value, however deep.
async fn every_response_body_has_a_schema(app: &TestApp) {
    let doc = openapi_document(app).await;
    let schemas = &doc["components"]["schemas"];
    let mut vague = Vec::new();
    let mut responses = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(answers) = op.get("responses").and_then(|r| r.as_object()) else {
                continue;
            };
            for (status, answer) in answers {
                let Some(content) = answer.get("content").and_then(|c| c.as_object()) else {
                    continue;
                };
                for (content_type, media) in content {
                    responses += 1;
                    let at = format!("{method} {path} {status} {content_type}");
                    match media.get("schema") {
                        None => vague.push(format!("{at}: no schema")),
                        Some(schema) => {
                            let mut seen = std::collections::HashSet::new();
                            check_schema(schema, schemas, &mut seen, &at, &mut vague);
                        }
                    }
                }
            }
        }
    }
    assert!(
        responses > 100,
        "the document lists response bodies ({responses})"
    );
    assert!(
        vague.is_empty(),
        "response schemas that do not say what they hold:\n{}",
        vague.join("\n")
    );
}

/// Pushes onto `vague` every place in `schema` (following `$ref`s into `schemas`) that is an
/// object without properties or typed values, an array without item schema, or untyped.
fn check_schema(
    schema: &serde_json::Value,
    schemas: &serde_json::Value,
    seen: &mut std::collections::HashSet<String>,
    at: &str,
    vague: &mut Vec<String>,
) {
    if let Some(reference) = schema.get("$ref").and_then(|r| r.as_str()) {
        let name = reference.rsplit('/').next().unwrap().to_string();
        let target = &schemas[&name];
        assert!(!target.is_null(), "{at}: dangling reference {reference}");
        if seen.insert(name.clone()) {
            check_schema(target, schemas, seen, &format!("{at} > {name}"), vague);
        }
        return;
    }
    let mut composed = false;
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema.get(key).and_then(|p| p.as_array()) {
            composed = true;
            for part in parts {
                check_schema(part, schemas, seen, at, vague);
            }
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        if !composed && schema.get("enum").is_none() && schema.get("const").is_none() {
            vague.push(format!("{at}: any-typed"));
        }
        return;
    }
    if types.contains(&"object") {
        let properties = schema.get("properties").and_then(|p| p.as_object());
        let values = schema
            .get("additionalProperties")
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        if properties.is_none_or(|p| p.is_empty()) && values.is_none() {
            vague.push(format!("{at}: bare object"));
        }
        for (name, property) in properties.into_iter().flatten() {
            check_schema(property, schemas, seen, &format!("{at}.{name}"), vague);
        }
        if let Some(values) = values {
            check_schema(values, schemas, seen, &format!("{at}.*"), vague);
        }
    }
    if types.contains(&"array") {
        match schema.get("items") {
            Some(items) => check_schema(items, schemas, seen, &format!("{at}[]"), vague),
            None => vague.push(format!("{at}: array of anything")),
        }
    }
}

async fn openapi_documents_every_endpoint(app: &TestApp) {
    let doc = openapi_document(app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/locale", "put"),
        ("/api/v1/team/members", "get"),
        ("/api/v1/team/members", "post"),
        ("/api/v1/team/members/{user_id}", "patch"),
        ("/api/v1/team/members/{user_id}", "delete"),
        ("/api/v1/audit", "get"),
        ("/api/v1/system/status", "get"),
        ("/api/v1/system/control", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/ws", "get"),
        ("/api/v1/accounts", "get"),
        ("/api/v1/accounts/login/phone", "post"),
        ("/api/v1/accounts/login/qr", "post"),
        ("/api/v1/accounts/login/{flow_id}", "get"),
        ("/api/v1/accounts/login/{flow_id}", "delete"),
        ("/api/v1/accounts/login/{flow_id}/resend", "post"),
        ("/api/v1/accounts/login/{flow_id}/code", "post"),
        ("/api/v1/accounts/login/{flow_id}/password", "post"),
        ("/api/v1/accounts/import", "post"),
        ("/api/v1/accounts/import/upload", "post"),
        ("/api/v1/sessions/get-code", "post"),
        ("/api/v1/accounts/{id}/{action}", "post"),
        ("/api/v1/accounts/{id}", "patch"),
        ("/api/v1/accounts/{id}", "delete"),
        ("/api/v1/accounts/{id}/export", "post"),
        ("/api/v1/accounts/{id}/chats", "get"),
        ("/api/v1/chats", "get"),
        ("/api/v1/chats/{id}", "get"),
        ("/api/v1/chats/{id}/messages", "get"),
        ("/api/v1/chats/{id}/messages", "post"),
        ("/api/v1/chats/{id}/read", "post"),
        ("/api/v1/chats/{id}/status", "post"),
        ("/api/v1/chats/{id}/assign", "post"),
        ("/api/v1/messages/{id}/history", "get"),
        ("/api/v1/messages/{id}/retry", "post"),
        ("/api/v1/messages/{id}/mark_sent", "post"),
        ("/api/v1/messages/{id}/media", "get"),
        ("/api/v1/files", "post"),
        ("/api/v1/inbox/members", "get"),
        ("/api/v1/bots", "get"),
        ("/api/v1/bots", "post"),
        ("/api/v1/bots/{id}/{action}", "post"),
        ("/api/v1/bots/{id}", "delete"),
        ("/tg/hook/{hook_id}", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}", "put"),
        ("/api/v1/tasks/{id}", "delete"),
        ("/api/v1/tasks/{id}/{action}", "post"),
        ("/api/v1/tasks/{id}/sources", "get"),
        ("/api/v1/tasks/{id}/sources", "put"),
        ("/api/v1/tasks/{id}/try", "post"),
        ("/api/v1/leads", "get"),
        ("/api/v1/leads/export.csv", "get"),
        ("/api/v1/leads/{id}", "patch"),
        ("/api/v1/leads/read-all", "post"),
        ("/api/v1/leads/{id}/write", "post"),
        ("/api/v1/auth/start", "post"),
        ("/api/v1/auth/verify", "post"),
        ("/api/v1/auth/options", "get"),
        ("/api/v1/auth/telegram/{flow_id}", "get"),
        ("/api/v1/auth/telegram/{flow_id}", "delete"),
        ("/api/v1/auth/telegram/{flow_id}/code", "post"),
        ("/api/v1/auth/telegram/{flow_id}/resend", "post"),
        ("/api/v1/auth/telegram/{flow_id}/password", "post"),
        ("/api/v1/me/signin", "get"),
        ("/api/v1/me/bot-link", "post"),
        ("/api/v1/me/devices", "get"),
        ("/api/v1/me/devices", "delete"),
        ("/api/v1/me/devices/{id}", "delete"),
        ("/api/v1/auth/settings", "get"),
        ("/api/v1/auth/settings/service-bot", "put"),
        ("/api/v1/auth/invites", "post"),
        ("/api/v1/posts", "get"),
        ("/api/v1/posts", "post"),
        ("/api/v1/posts/{id}", "get"),
        ("/api/v1/posts/{id}", "put"),
        ("/api/v1/posts/{id}", "delete"),
        ("/api/v1/posts/{id}/publish", "post"),
        ("/api/v1/posts/{id}/cancel", "post"),
        ("/api/v1/posts/{id}/runs", "get"),
        ("/api/v1/posts/runs", "get"),
        ("/api/v1/posts/upcoming", "get"),
        ("/api/v1/posts/targets", "get"),
        ("/api/v1/posts/runs/{run_id}/actions", "get"),
        ("/api/v1/posts/runs/{run_id}/edit", "post"),
        ("/api/v1/posts/runs/{run_id}/delete", "post"),
        ("/api/v1/team/users", "get"),
        ("/api/v1/team/users/{user_id}/telegram/logout", "post"),
        ("/api/v1/team/users/{user_id}", "delete"),
        ("/api/v1/tasks/{id}/sources/{source_id}/retry", "post"),
        ("/api/v1/accounts/{id}/dialogs", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
    // Every documented API operation is actually served (no 404 from the router).
    for (path, ops) in paths {
        let concrete = path
            .replace("{user_id}", "1")
            .replace("{flow_id}", "x")
            .replace("{hook_id}", "00")
            .replace("{run_id}", "1")
            .replace("{id}", "1")
            .replace("{source_id}", "1")
            .replace("{action}", "start");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app.http.request(m, app.at(&concrete)).send().await.unwrap();
            assert_ne!(
                r.status(),
                404,
                "{method} {path} is documented but not routed"
            );
            assert_ne!(
                r.status(),
                405,
                "{method} {path} is documented but not routed"
            );
        }
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "a new endpoint needs adding to the expected list above: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

async fn pages_need_a_session_and_show_the_shell(app: &TestApp) {
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/inbox",
        "/accounts",
        "/bots",
        "/leads",
        "/team",
        "/settings",
    ] {
        let r = no_redirect.get(app.at(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login");
    }
    let login = app
        .http
        .get(app.at("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains("id=\"login-form\"") && html.contains("/assets/app.js"));
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let r = app.http.get(app.at(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            !r.text().await.unwrap().contains("https://"),
            "{asset} must not reference external resources"
        );
    }
    let b = app.login("operator", PASSWORD).await;
    let page = |p: &'static str| {
        let c = b.cookie.clone();
        let url = app.at(p);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", c)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let inbox = page("/inbox").await;
    for label in [
        "Inbox", "Accounts", "Bots", "Leads", "Team", "Settings", "Sign out",
    ] {
        assert!(inbox.contains(label), "{label} missing");
    }
    assert!(
        inbox.contains("/assets/inbox.js") && inbox.contains("id=\"chat-list-empty\""),
        "the inbox page carries its layout and script"
    );
    let team = page("/team").await;
    assert!(team.contains("admin") && team.contains("operator"));
    let missing = app.http.get(app.at("/no-such-page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("<html"));
}

async fn no_page_may_be_framed(app: &TestApp) {
    let b = app.login("operator", PASSWORD).await;
    for path in [
        "/login",
        "/inbox",
        "/accounts",
        "/settings",
        "/no-such-page",
        "/api/v1/me",
    ] {
        let r = app
            .http
            .get(app.at(path))
            .header("cookie", &b.cookie)
            .send()
            .await
            .unwrap();
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
}
