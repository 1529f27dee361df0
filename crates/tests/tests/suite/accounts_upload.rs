//! Uploading session files (`POST /api/v1/accounts/import/upload`) through the real server
//! and tgsim, on both backends: `.session` files of Telethon and Pyrogram, JSON + `.session`
//! bundles, the phone folder layout `{phone}/{phone}.json|.session`; malformed entries
//! rejected with their codes and nothing stored; size limits and access control.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::sessions::{bundle_json, pyrogram_file, sim_account, telethon_file};

app_tests!(
    upload_imports_files_bundles_and_folders,
    upload_refuses_oversized_and_foreign_requests,
);

const UPLOAD: &str = "/api/v1/accounts/import/upload";
/// The endpoint's documented limits (docs/accounts.md).
const MAX_FILE: usize = 10 * 1024 * 1024;
const MAX_TOTAL: usize = 50 * 1024 * 1024;

fn form(files: Vec<(&str, Vec<u8>)>) -> Form {
    files.into_iter().fold(Form::new(), |f, (name, bytes)| {
        f.part("files", Part::bytes(bytes).file_name(name.to_string()))
    })
}

async fn accounts(b: &Browser) -> Vec<Value> {
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    list["accounts"].as_array().unwrap().clone()
}

async fn wait_all_connected(b: &Browser, ids: &[i64]) {
    let start = Instant::now();
    loop {
        let list = accounts(b).await;
        let connected = ids.iter().all(|id| {
            list.iter()
                .any(|a| a["id"] == *id && a["status"] == "connected")
        });
        if connected {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not all of {ids:?} connected: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn upload_imports_files_bundles_and_folders(app: &TestApp) {
    let tele = sim_account(app, "+15556001", "Tele");
    let pyro = sim_account(app, "+15556002", "Pyro");
    let bundle = sim_account(app, "+15556003", "Bundle");
    let seed_a = sim_account(app, "+15556004", "SeedA");
    let seed_b = sim_account(app, "+15556005", "SeedB");
    let other = sim_account(app, "+15556006", "Other");
    let revoked_key = app.sim.issue_auth_key();
    let b = app.login("admin", PASSWORD).await;

    let r = b
        .upload(
            UPLOAD,
            form(vec![
                ("tele.session", telethon_file(app, tele.key)),
                ("pyro.session", pyrogram_file(pyro.key, pyro.user.id.0)),
                (
                    "bundle.json",
                    bundle_json("+15556003", "Bundle", bundle.user.id.0),
                ),
                ("bundle.session", telethon_file(app, bundle.key)),
                (
                    "batch/15556004/15556004.json",
                    bundle_json("+15556004", "SeedA", seed_a.user.id.0),
                ),
                (
                    "batch/15556004/15556004.session",
                    telethon_file(app, seed_a.key),
                ),
                (
                    "batch/15556005/15556005.session",
                    pyrogram_file(seed_b.key, seed_b.user.id.0),
                ),
                ("batch/.DS_Store", b"\0\0\0\x01Bud1".to_vec()),
                ("revoked.session", telethon_file(app, revoked_key)),
                // Malformed entries: each gets its code, none is stored.
                ("broken.session", b"this is not SQLite".to_vec()),
                ("notes.txt", b"passwords: hunter2".to_vec()),
                ("lonely/lonely.json", br#"{"phone": "+15550000"}"#.to_vec()),
                ("bad.json", b"{not json".to_vec()),
                // The JSON names another user than the session: a mismatch.
                ("mismatch.json", bundle_json("+15556006", "Other", 424242)),
                (
                    "mismatch.session",
                    pyrogram_file(other.key, other.user.id.0),
                ),
            ]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let entries: BTreeMap<String, Value> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bad",
            "batch/15556004/15556004",
            "batch/15556005/15556005",
            "broken",
            "bundle",
            "lonely/lonely",
            "mismatch",
            "notes.txt",
            "pyro",
            "revoked",
            "tele",
        ],
        "{body}"
    );
    let code = |name: &str| entries[name]["error"]["code"].as_str().unwrap().to_string();
    assert_eq!(code("broken"), "session_file_not_sqlite");
    assert_eq!(code("notes.txt"), "session_file_type_unsupported");
    assert_eq!(code("lonely/lonely"), "session_json_no_session");
    assert_eq!(code("bad"), "session_json_invalid");
    assert_eq!(code("mismatch"), "session_bundle_mismatch");
    assert!(
        entries["broken"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SQLite")
    );
    assert_eq!(body["failed"], 5);
    assert_eq!(body["imported"], 6);
    assert_eq!(
        entries["bundle"]["files"],
        serde_json::json!(["bundle.json", "bundle.session"])
    );

    let account = |name: &str| {
        let e = &entries[name];
        assert_eq!(e["status"], "imported", "{name}: {e}");
        e["account"].clone()
    };
    let imported: Vec<i64> = ["tele", "pyro", "bundle", "batch/15556004/15556004"]
        .iter()
        .chain(&["batch/15556005/15556005"])
        .map(|n| account(n)["id"].as_i64().unwrap())
        .collect();
    wait_all_connected(&b, &imported).await;
    let list = accounts(&b).await;
    let by_user = |uid: i64| {
        list.iter()
            .find(|a| a["telegram_user_id"] == uid)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_user(tele.user.id.0)["first_name"], "Tele");
    assert_eq!(by_user(pyro.user.id.0)["first_name"], "Pyro");
    assert_eq!(by_user(bundle.user.id.0)["phone"], "15556003");
    assert_eq!(by_user(seed_a.user.id.0)["phone"], "15556004");
    // A .session alone in a phone folder takes its phone from the folder's name.
    assert_eq!(by_user(seed_b.user.id.0)["phone"], "15556005");
    // A key Telegram does not know is kept as unauthorized, not started.
    assert_eq!(account("revoked")["status"], "unauthorized");
    assert_eq!(account("revoked")["running"], false);
    // Nothing of the malformed entries was stored: six accounts in all.
    assert_eq!(list.len(), 6, "{list:?}");
    assert!(by_user(other.user.id.0).is_null());
    // Validation closed its connection: one live client per account.
    let counters = app.sim.counters();
    for user in [&tele, &pyro, &bundle, &seed_a, &seed_b] {
        let open = counters
            .accounts
            .get(&user.user.id.0.to_string())
            .map(|c| c.open_connections)
            .unwrap_or(0);
        assert_eq!(open, 1, "{:?}", user.user.phone);
    }
    let audit = app.store.list_audit(app.workspace, None, 50).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "account.imported")
            .count(),
        6
    );

    // The same file again: the account exists already, nothing new is stored.
    let again = b
        .upload(
            UPLOAD,
            form(vec![("tele.session", telethon_file(app, tele.key))]),
        )
        .await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["entries"][0]["error"]["code"], "account_exists");
    assert_eq!(accounts(&b).await.len(), 6);

    // Per-entry messages follow the request's language.
    let ru = reqwest::Client::new()
        .post(app.at(UPLOAD))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", &b.csrf)
        .header("accept-language", "ru")
        .multipart(form(vec![("x.txt", b"x".to_vec())]))
        .send()
        .await
        .unwrap();
    let ru: Value = ru.json().await.unwrap();
    assert_eq!(
        ru["entries"][0]["error"]["message"],
        "Импортировать можно только файлы .session и .json."
    );
}

async fn upload_refuses_oversized_and_foreign_requests(app: &TestApp) {
    let good = sim_account(app, "+15556101", "Good");
    let b = app.login("admin", PASSWORD).await;
    let good_file = || ("good.session", telethon_file(app, good.key));

    // One file over the per-file limit: nothing is imported, not even the good one.
    let r = b
        .upload(
            UPLOAD,
            form(vec![good_file(), ("huge.session", vec![0u8; MAX_FILE + 1])]),
        )
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "upload_file_too_large");
    // Files each under the limit but over the total.
    // Files of the per-file limit, one more than fit in the total.
    let names: Vec<String> = (0..=MAX_TOTAL / MAX_FILE)
        .map(|i| format!("{i}.session"))
        .collect();
    let mut files = vec![good_file()];
    files.extend(names.iter().map(|n| (n.as_str(), vec![0u8; MAX_FILE])));
    let big = form(files);
    let r = b.upload(UPLOAD, big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "upload_too_large");
    assert!(accounts(&b).await.is_empty(), "nothing stored");
    assert_eq!(
        app.sim
            .counters()
            .accounts
            .get(&good.user.id.0.to_string())
            .map(|c| c.open_connections)
            .unwrap_or(0),
        0,
        "no validation connection for a refused upload"
    );

    // No file at all, or not multipart.
    let r = b
        .upload(UPLOAD, Form::new().text("note", "no files here"))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "upload_empty");
    let r = b
        .post(UPLOAD, &serde_json::json!({"session_string": "x"}))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "upload_invalid");

    // Admins only, with the CSRF token.
    let op = app.login("operator", PASSWORD).await;
    let r = op.upload(UPLOAD, form(vec![good_file()])).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "forbidden");
    let r = reqwest::Client::new()
        .post(app.at(UPLOAD))
        .header("cookie", &b.cookie)
        .multipart(form(vec![good_file()]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(r).await, "csrf_failed");
    assert!(accounts(&b).await.is_empty(), "nothing stored");

    // Path-like names are only names: nothing is written outside the database.
    let r = b
        .upload(
            UPLOAD,
            form(vec![("../../../tmp/good.session", good_file().1)]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["entries"][0]["name"], "tmp/good");
    assert_eq!(body["entries"][0]["status"], "imported");
}
