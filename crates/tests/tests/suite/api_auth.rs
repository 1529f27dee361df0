//! Sign-in, sessions, CSRF, roles and bad input, through the real server over HTTP, on both
//! database backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use switchboard::Config;
use switchboard_domain::{Role, Timestamp, UserId, WorkspaceId};
use switchboard_tests::app::{PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;

app_tests!(
    sign_in_sets_a_hardened_cookie_and_me_answers,
    wrong_password_and_unknown_user_are_refused_alike,
    repeated_failures_lock_the_username,
    repeated_failures_throttle_the_client_address with few_ip_failures,
    logout_ends_the_session,
    idle_sessions_expire with short_sessions,
    writes_without_the_csrf_token_are_refused,
    cross_site_sign_in_is_refused,
    behind_a_proxy_the_origin_is_the_public_url with behind_a_proxy,
    operator_gets_403_from_admin_endpoints,
    admin_manages_members_only_in_their_own_workspace,
    malformed_wrong_type_and_oversized_bodies_write_nothing,
    errors_and_pages_follow_the_language,
    sign_in_and_failures_are_audited,
);

fn few_ip_failures(c: &mut Config) {
    c.auth.ip_max_failures = 3;
}

/// Served at `https://hub.example.test` through a reverse proxy that forwards to our
/// 127.0.0.1 address (so `Host` is not the browser's).
fn behind_a_proxy(c: &mut Config) {
    c.server.public_url = Some("https://hub.example.test/".into());
}

fn short_sessions(c: &mut Config) {
    c.auth.session_idle_secs = 1;
}

async fn sign_in_sets_a_hardened_cookie_and_me_answers(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    let session_cookie = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sb_session="))
        .expect("session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(
        session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("Secure"),
        "plain http test server must not set Secure"
    );
    assert_eq!(b.me["username"], "admin");
    assert_eq!(b.me["role"], "owner");
    assert!(b.csrf.len() >= 40);

    let me = b.get("/api/v1/me").await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert!(
        me.get("csrf_token").is_none(),
        "CSRF token is only handed out at sign-in"
    );

    // The token is stored hashed: the raw cookie value appears nowhere in the sessions table.
    let token = session_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("sb_session=");
    let stored = app
        .store
        .find_web_session(token, Timestamp::now())
        .await
        .unwrap();
    assert!(stored.is_none(), "raw token must not be a stored key");

    // Without a cookie, /me is 401 with a code.
    let anon = app.http.get(app.at("/api/v1/me")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert_eq!(error_code(anon).await, "unauthenticated");
}

async fn wrong_password_and_unknown_user_are_refused_alike(app: &TestApp) {
    let wrong = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "nope nope nope"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert_eq!(error_code(wrong).await, "invalid_credentials");
    let unknown = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "ghost", "password": PASSWORD}),
        )
        .await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(error_code(unknown).await, "invalid_credentials");
    let invalid_name = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "x", "password": PASSWORD}),
        )
        .await;
    assert_eq!(error_code(invalid_name).await, "invalid_credentials");
}

async fn repeated_failures_lock_the_username(app: &TestApp) {
    for _ in 0..5 {
        let r = app
            .post_json_anon(
                "/api/v1/auth/login",
                &json!({"username": "operator", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    // Now even the right password is refused, with a Retry-After.
    let r = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "operator", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 60 && retry <= 15 * 60 + 1, "retry-after {retry}");
    assert_eq!(error_code(r).await, "account_locked");
    // Other users are not affected.
    app.login("admin", PASSWORD).await;
}

async fn repeated_failures_throttle_the_client_address(app: &TestApp) {
    for name in ["ghost1", "ghost2", "ghost3"] {
        let r = app
            .post_json_anon(
                "/api/v1/auth/login",
                &json!({"username": name, "password": "whatever123"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(error_code(r).await, "rate_limited");
}

async fn logout_ends_the_session(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    let r = b.post("/api/v1/auth/logout", &json!({})).await;
    assert_eq!(r.status(), 204);
    let cleared: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("sb_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(
        b.get("/api/v1/me").await.status(),
        401,
        "the old cookie is dead"
    );
    // A second session of the same user is independent.
    let other = app.login("admin", PASSWORD).await;
    assert_eq!(other.get("/api/v1/me").await.status(), 200);
}

async fn idle_sessions_expire(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    assert_eq!(b.get("/api/v1/me").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = b.get("/api/v1/me").await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "unauthenticated");
    // Pages send an expired session back to sign-in.
    let page = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.at("/inbox"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
}

async fn writes_without_the_csrf_token_are_refused(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    let body = json!({"username": "newbie", "password": PASSWORD, "role": "operator"});
    let no_token = b
        .send(Method::POST, "/api/v1/team/members", Some(&body), false)
        .await;
    assert_eq!(no_token.status(), 403);
    assert_eq!(error_code(no_token).await, "csrf_failed");
    let wrong = reqwest::Client::new()
        .post(app.at("/api/v1/team/members"))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", "forged-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(error_code(wrong).await, "csrf_failed");
    let cross = reqwest::Client::new()
        .post(app.at("/api/v1/team/members"))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", &b.csrf)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross.status(),
        403,
        "a right token from a foreign origin is still refused"
    );
    // Nothing was created by the refused requests.
    let members = app.store.list_members(app.workspace).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        b.get("/api/v1/me").await.status(),
        200,
        "the session survives"
    );
    // Logout is a write too.
    let r = b
        .send(Method::POST, "/api/v1/auth/logout", None, false)
        .await;
    assert_eq!(r.status(), 403);
    // With the token, the write goes through.
    let ok = b.post("/api/v1/team/members", &body).await;
    assert_eq!(ok.status(), 201);
}

async fn cross_site_sign_in_is_refused(app: &TestApp) {
    let r = app
        .http
        .post(app.at("/api/v1/auth/login"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(error_code(r).await, "csrf_failed");
}

async fn behind_a_proxy_the_origin_is_the_public_url(app: &TestApp) {
    let login = |origin: &str| {
        app.http
            .post(app.at("/api/v1/auth/login"))
            .header("origin", origin)
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
    };
    let ours = login("https://hub.example.test").await.unwrap();
    assert_eq!(ours.status(), 200, "the public URL's origin signs in");
    for foreign in [
        app.url.as_str(),
        "http://hub.example.test",
        "https://hub.example.test:8443",
        "https://evil.example",
    ] {
        let r = login(foreign).await.unwrap();
        assert_eq!(r.status(), 403, "{foreign}");
        assert!(r.headers().get("set-cookie").is_none());
        assert_eq!(error_code(r).await, "csrf_failed", "{foreign}");
    }
    let b = app.login("admin", PASSWORD).await;
    let add = |origin: &str, username: &str| {
        reqwest::Client::new()
            .post(app.at("/api/v1/team/members"))
            .header("cookie", &b.cookie)
            .header("x-csrf-token", &b.csrf)
            .header("origin", origin)
            .json(&json!({"username": username, "password": PASSWORD, "role": "operator"}))
            .send()
    };
    assert_eq!(add(&app.url, "via_host").await.unwrap().status(), 403);
    assert_eq!(
        add("https://hub.example.test", "via_proxy")
            .await
            .unwrap()
            .status(),
        201
    );
    let members = app.store.list_members(app.workspace).await.unwrap();
    assert_eq!(
        members.len(),
        3,
        "only the write from the public origin went through"
    );
}

async fn operator_gets_403_from_admin_endpoints(app: &TestApp) {
    let op = app.login("operator", PASSWORD).await;
    assert_eq!(op.me["role"], "operator");
    let create = op
        .post(
            "/api/v1/team/members",
            &json!({"username": "sneaky", "password": PASSWORD, "role": "admin"}),
        )
        .await;
    assert_eq!(create.status(), 403);
    assert_eq!(error_code(create).await, "forbidden");
    for path in ["/api/v1/audit", "/api/v1/system/status"] {
        let r = op.get(path).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(error_code(r).await, "forbidden");
    }
    let admin_id = app.store.list_members(app.workspace).await.unwrap()[0]
        .1
        .id
        .0;
    let patch = op
        .send(
            Method::PATCH,
            &format!("/api/v1/team/members/{admin_id}"),
            Some(&json!({"role": "operator"})),
            true,
        )
        .await;
    assert_eq!(patch.status(), 403);
    let del = op
        .send(
            Method::DELETE,
            &format!("/api/v1/team/members/{admin_id}"),
            None,
            true,
        )
        .await;
    assert_eq!(del.status(), 403);
    // Nothing changed.
    let members = app.store.list_members(app.workspace).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].0.role, Role::Owner);
    // Operators may read the team list.
    assert_eq!(op.get("/api/v1/team/members").await.status(), 200);
}

async fn admin_manages_members_only_in_their_own_workspace(app: &TestApp) {
    let other: WorkspaceId = app
        .store
        .create_workspace("Other", Timestamp::now())
        .await
        .unwrap()
        .id;
    app.add_user(other, "stranger", Role::Operator).await;
    let stranger_id = app.store.list_members(other).await.unwrap()[0].1.id;
    let b = app.login("admin", PASSWORD).await;
    let r = b
        .send(
            Method::PATCH,
            &format!("/api/v1/team/members/{}", stranger_id.0),
            Some(&json!({"max_chats": 99})),
            true,
        )
        .await;
    assert_eq!(r.status(), 404, "another workspace's member is invisible");
    let r = b
        .send(
            Method::DELETE,
            &format!("/api/v1/team/members/{}", stranger_id.0),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 404);
    let m = app.store.get_membership(other, stranger_id).await.unwrap();
    assert_eq!(m.max_chats, 5);
    let list: serde_json::Value = b.get("/api/v1/team/members").await.json().await.unwrap();
    let names: Vec<_> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["admin", "operator"]);

    // Within the workspace: create, update, remove.
    let created = b
        .post(
            "/api/v1/team/members",
            &json!({"username": "Olga", "password": PASSWORD, "role": "operator", "max_chats": 7}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["username"], "olga");
    let id = created["user_id"].as_i64().unwrap();
    let dup = b
        .post(
            "/api/v1/team/members",
            &json!({"username": "olga", "password": PASSWORD, "role": "operator"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    assert_eq!(error_code(dup).await, "username_taken");
    let weak = b
        .post(
            "/api/v1/team/members",
            &json!({"username": "pavel", "password": "short", "role": "operator"}),
        )
        .await;
    assert_eq!(error_code(weak).await, "weak_password");
    let upd = b
        .send(
            Method::PATCH,
            &format!("/api/v1/team/members/{id}"),
            Some(&json!({"role": "admin", "max_chats": 12})),
            true,
        )
        .await;
    assert_eq!(upd.status(), 200);
    let m = app
        .store
        .get_membership(app.workspace, UserId(id))
        .await
        .unwrap();
    assert_eq!((m.role, m.max_chats), (Role::Admin, 12));
    let olga = app.login("olga", PASSWORD).await;
    let del = b
        .send(
            Method::DELETE,
            &format!("/api/v1/team/members/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(del.status(), 204);
    assert_eq!(
        olga.get("/api/v1/me").await.status(),
        401,
        "removal ends the member's sessions"
    );
    let me_id = b.me["id"].as_i64().unwrap();
    let self_delete = b
        .send(
            Method::DELETE,
            &format!("/api/v1/team/members/{me_id}"),
            None,
            true,
        )
        .await;
    assert_eq!(self_delete.status(), 403);
}

async fn malformed_wrong_type_and_oversized_bodies_write_nothing(app: &TestApp) {
    let b = app.login("admin", PASSWORD).await;
    let before_audit = app
        .store
        .list_audit(app.workspace, None, 200)
        .await
        .unwrap()
        .len();
    let raw = |content_type: &'static str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(app.at("/api/v1/team/members"))
            .header("cookie", &b.cookie)
            .header("x-csrf-token", &b.csrf)
            .header("content-type", content_type)
            .body(body)
    };
    let r = raw("application/json", b"{\"username\": \"x\",".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_json");
    let r = raw("application/json", br#"{"username": 5}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "invalid_json");
    let r = raw(
        "application/json",
        br#"{"username":"zed","password":"correct horse battery","role":"operator","extra":1}"#
            .to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 422, "unknown fields are refused");
    let r = raw(
        "text/plain",
        br#"{"username":"zed","password":"correct horse battery","role":"operator"}"#.to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(error_code(r).await, "unsupported_media_type");
    let mut big = br#"{"username":"zed","password":"correct horse battery","role":"operator","display_name":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 200 * 1024));
    big.extend(br#""}"#);
    let r = raw("application/json", big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "payload_too_large");
    let r = b
        .post(
            "/api/v1/team/members",
            &json!({"username": "zed", "password": PASSWORD, "role": "emperor"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "validation_failed");
    // Oversized sign-in body too.
    let r = app
        .http
        .post(app.at("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Nothing was written.
    assert_eq!(
        app.store.list_members(app.workspace).await.unwrap().len(),
        2
    );
    assert_eq!(
        app.store
            .list_audit(app.workspace, None, 200)
            .await
            .unwrap()
            .len(),
        before_audit
    );
    // Unknown API path and wrong method have codes too.
    let r = b.get("/api/v1/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    let r = b.send(Method::PUT, "/api/v1/auth/login", None, true).await;
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(r).await, "method_not_allowed");
}

async fn errors_and_pages_follow_the_language(app: &TestApp) {
    let r = app
        .http
        .post(app.at("/api/v1/auth/login"))
        .header("accept-language", "ru-RU,ru;q=0.9")
        .json(&json!({"username": "admin", "password": "wrong wrong"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_credentials");
    assert_eq!(
        v["error"]["message"],
        "Неверное имя пользователя или пароль."
    );
    let page = app
        .http
        .get(app.at("/login"))
        .header("accept-language", "ru")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Войти") && page.contains("lang=\"ru\""),
        "{page}"
    );
    let page = app
        .http
        .get(app.at("/login"))
        .header("accept-language", "en-GB")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign in") && !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    // A user's saved choice wins over the browser.
    let b = app.login("admin", PASSWORD).await;
    let r = b
        .send(
            Method::PUT,
            "/api/v1/me/locale",
            Some(&json!({"locale": "ru"})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let inbox = reqwest::Client::new()
        .get(app.at("/inbox"))
        .header("cookie", &b.cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let html = inbox.text().await.unwrap();
    assert!(
        html.contains("Входящие") && html.contains("Аккаунты") && html.contains("Лиды"),
        "{html}"
    );
    let bad = b
        .send(
            Method::PUT,
            "/api/v1/me/locale",
            Some(&json!({"locale": "de"})),
            true,
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(error_code(bad).await, "invalid_locale");
}

async fn sign_in_and_failures_are_audited(app: &TestApp) {
    let _ = app
        .post_json_anon(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "wrong password"}),
        )
        .await;
    let b = app.login("admin", PASSWORD).await;
    let r: serde_json::Value = b.get("/api/v1/audit").await.json().await.unwrap();
    let actions: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"auth.login_succeeded"), "{actions:?}");
    let failures = app
        .store
        .list_audit_for_target("username:admin", 10)
        .await
        .unwrap();
    assert!(failures.iter().any(|e| e.action == "auth.login_failed"));
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong password") && !text.contains(&b.csrf)
    );
}
