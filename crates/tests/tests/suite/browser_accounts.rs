//! The Accounts page in a real headless Chromium against the real server and tgsim, on both
//! backends: the phone-code wizard (a wrong code's localized error, 2FA), the QR wizard (SVG,
//! approval, 2FA), the live list (accounts added elsewhere appear without a reload), logout
//! and delete from the list, and the upload of a folder of session files. The Russian guide's
//! pictures of the phone-code wizard are taken here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_tests::accounts::{import_session, telethon_string, wait_status};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::{Chrome, Lang};
use switchboard_tests::sessions::{bundle_json, pyrogram_file, sim_account, telethon_file};

app_tests!(
    phone_wizard_in_russian_with_2fa_then_logout_and_delete,
    qr_wizard_with_2fa_and_a_live_list,
    folder_upload_shows_each_entry,
    flood_wait_counts_down_in_the_wizard,
    a_status_change_during_a_list_refresh_is_not_undone,
);

/// The page refreshes its list (after an upload, or for an account it does not show yet) while
/// status events keep coming: a list the server rendered before a status change, arriving after
/// the change's event, must not put the old status back. (Seen as a flaky
/// `folder_upload_shows_each_entry`: an account stuck at `connecting` in the page while it was
/// connected.) The list's answer is held in the page until the status has changed.
async fn a_status_change_during_a_list_refresh_is_not_undone(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let dana = sim_account(app, "+15557301", "Dana");
    let b = app.login("admin", PASSWORD).await;
    let id = import_session(&b, &telethon_string(&app.sim, dana.key)).await;
    wait_status(&b, id, "connected").await;
    let r = b
        .post(&format!("/api/v1/accounts/{id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    c.sign_in("admin", PASSWORD).await;
    c.open("/accounts").await;
    c.wait_text(
        "#accounts tr[data-account]:has(.badge[data-status=stopped])",
        "Dana",
    )
    .await;
    // A refresh whose list is rendered now (Dana stopped) and handed to the page later.
    c.eval(
        r#"
        const realFetch = window.fetch;
        let release;
        const held = new Promise((r) => { release = r; });
        window.releaseList = () => release();
        window.fetch = async (url, opts) => {
          const res = await realFetch(url, opts);
          if (url === "/accounts") { window.listRendered = true; await held; }
          return res;
        };
        refreshAccounts().then(() => { window.refreshed = true; });
        "#,
        vec![],
    )
    .await;
    wait_for_flag(&c, "listRendered").await;
    let r = b
        .post(&format!("/api/v1/accounts/{id}/start"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    c.wait_text(
        "#accounts tr[data-account]:has(.badge[data-status=connected])",
        "Dana",
    )
    .await;
    c.eval("window.releaseList();", vec![]).await;
    wait_for_flag(&c, "refreshed").await;
    let badge = c.text("#accounts tr[data-account] .badge").await;
    assert_eq!(
        badge, "connected",
        "the list rendered before the account connected undid its status"
    );
    c.quit().await;
}

/// Waits until the page sets `window[flag]`.
async fn wait_for_flag(c: &Chrome, flag: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .eval(&format!("return window.{flag} === true;"), vec![])
        .await
        != json!(true)
    {
        assert!(Instant::now() < deadline, "the page never set {flag}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn flood_wait_counts_down_in_the_wizard(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    app.sim
        .create_user(tgsim::NewUser {
            phone: "+15557100".into(),
            first_name: "Flood".into(),
            ..Default::default()
        })
        .unwrap();
    app.sim.flood_wait(None, "auth.sendCode", 30, 1);
    c.sign_in("admin", PASSWORD).await;
    c.open("/accounts").await;
    c.fill("#phone-form input[name=phone]", "+1 555 7100").await;
    c.click("#phone-form button[type=submit]").await;
    c.wait_text("#connect-phone .error", " s)").await;
    let left = c
        .eval(
            "return Number(document.querySelector('#connect-phone .error').dataset.waitSeconds);",
            vec![],
        )
        .await;
    let left = left.as_i64().unwrap();
    assert!(
        (20..=30).contains(&left),
        "countdown starts near 30 s: {left}"
    );
    let disabled = c
        .eval(
            "return document.querySelector('#phone-form button[type=submit]').disabled;",
            vec![],
        )
        .await;
    assert_eq!(disabled, true, "the form waits out the FloodWait");
    // It counts down.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let later = c
        .eval(
            "return Number(document.querySelector('#connect-phone .error').dataset.waitSeconds);",
            vec![],
        )
        .await
        .as_i64()
        .unwrap();
    assert!(later < left, "{later} < {left}");
    c.quit().await;
}

async fn phone_wizard_in_russian_with_2fa_then_logout_and_delete(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    app.sim
        .create_user(tgsim::NewUser {
            phone: "+15557000".into(),
            first_name: "Вера".into(),
            password: Some("pw-2fa".into()),
            password_hint: Some("usual".into()),
            ..Default::default()
        })
        .unwrap();
    c.sign_in("admin", PASSWORD).await;

    // The admin switches to Russian: the pages and the API's error messages follow.
    c.choose_language(Lang::Ru).await;
    c.open("/accounts").await;
    c.wait_text("#accounts-empty", "Аккаунтов пока нет").await;

    c.fill("#phone-form input[name=phone]", "+1 555 7000").await;
    c.click("#phone-form button[type=submit]").await;
    c.wait_text("#code-info", "Код отправлен через").await;
    c.guide_shot("ru", "connect-code").await;
    c.fill("#code-form input[name=code]", "00000").await;
    c.click("#code-form button[type=submit]").await;
    c.wait_text("#connect-phone .error", "Неверный код").await;

    let code = app.sim.last_login_code("+15557000").unwrap();
    c.fill("#code-form input[name=code]", &code).await;
    c.click("#code-form button[type=submit]").await;
    c.wait_text("#connect-phone .password-form", "(usual)")
        .await;
    c.guide_shot("ru", "connect-2fa").await;
    c.fill(
        "#connect-phone .password-form input[name=password]",
        "pw-2fa",
    )
    .await;
    c.click("#connect-phone .password-form button[type=submit]")
        .await;
    // The account appears and turns connected without a reload.
    let row = c
        .wait_text(
            "#accounts tr[data-account]:has(.badge[data-status=connected])",
            "подключён",
        )
        .await;
    assert!(row.contains("Вера") && row.contains("+15557000"), "{row}");
    c.wait_gone("#code-form:not([hidden])").await;
    c.wait_gone("#connect-phone .password-form:not([hidden])")
        .await;

    // Log out from the list: the session is ended at Telegram and wiped.
    c.click("#accounts button[data-action=logout]").await;
    c.wait_text("#accounts .badge[data-status=unauthorized]", "нужен вход")
        .await;
    let b = app.login("admin", PASSWORD).await;
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(list["accounts"][0]["status"], "unauthorized");
    assert_eq!(list["accounts"][0]["running"], false);

    // Delete, confirming the browser's dialog.
    c.click("#accounts button[data-action=delete]").await;
    accept_dialog(&c).await;
    c.wait_text("#accounts-empty", "Аккаунтов пока нет").await;
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(list["accounts"], json!([]));
    c.quit().await;
}

async fn accept_dialog(c: &Chrome) {
    let start = Instant::now();
    while c.client().accept_alert().await.is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            panic!("{}", c.failure("no confirmation dialog").await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn qr_wizard_with_2fa_and_a_live_list(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let owner = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15557100".into(),
            first_name: "Quinn".into(),
            password: Some("qr-2fa".into()),
            ..Default::default()
        })
        .unwrap();
    c.sign_in("admin", PASSWORD).await;
    c.open("/accounts").await;
    c.click("#qr-start").await;
    c.wait("#qr-image svg").await;
    app.sim.approve_latest_qr_login(owner.id).unwrap();
    // The wizard switches to the 2FA form by itself.
    c.fill("#connect-qr .password-form input[name=password]", "qr-2fa")
        .await;
    c.click("#connect-qr .password-form button[type=submit]")
        .await;
    let row = c
        .wait_text(
            "#accounts tr[data-account]:has(.badge[data-status=connected])",
            "connected",
        )
        .await;
    assert!(row.contains("Quinn"), "{row}");
    c.wait_gone("#qr-image svg").await;

    // Another admin imports an account meanwhile: it shows up in this page, which does not
    // reload.
    c.eval("window.stillTheSamePage = true;", vec![]).await;
    let other = sim_account(app, "+15557101", "Imported");
    let b = app.login("admin", PASSWORD).await;
    let r = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, other.key)}),
        )
        .await;
    assert_eq!(r.status(), 201);
    c.wait_text(
        "#accounts tr[data-account]:has(.badge[data-status=connected])",
        "Imported",
    )
    .await;
    assert_eq!(
        c.eval("return window.stillTheSamePage === true;", vec![])
            .await,
        json!(true)
    );
    c.quit().await;
}

async fn folder_upload_shows_each_entry(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let anna = sim_account(app, "+15557201", "Anna");
    let boris = sim_account(app, "+15557202", "Boris");
    let carl = sim_account(app, "+15557203", "Carl");
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch");
    let put = |rel: &str, bytes: Vec<u8>| {
        let path = batch.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    put(
        "15557201/15557201.json",
        bundle_json("+15557201", "Anna", anna.user.id.0),
    );
    put("15557201/15557201.session", telethon_file(app, anna.key));
    put(
        "15557202/15557202.session",
        pyrogram_file(boris.key, boris.user.id.0),
    );
    put("15557299/15557299.session", b"garbage".to_vec());

    c.sign_in("admin", PASSWORD).await;
    c.open("/accounts").await;
    c.choose_files("#import-folder", &[batch.as_path()]).await;
    let ok = c
        .wait_text(
            "#upload-results li[data-status=imported]",
            "batch/15557201/15557201",
        )
        .await;
    assert!(ok.contains("imported"), "{ok}");
    c.wait_text(
        "#upload-results li[data-status=imported]",
        "batch/15557202/15557202",
    )
    .await;
    let bad = c
        .wait_text(
            "#upload-results li[data-code=session_file_not_sqlite]",
            "batch/15557299/15557299",
        )
        .await;
    assert!(bad.contains("SQLite"), "{bad}");
    for name in ["Anna", "Boris"] {
        c.wait_text(
            "#accounts tr[data-account]:has(.badge[data-status=connected])",
            name,
        )
        .await;
    }
    // Single files through the file picker.
    let single = dir.path().join("carl.session");
    std::fs::write(&single, telethon_file(app, carl.key)).unwrap();
    c.choose_files("#import-files", &[single.as_path()]).await;
    c.wait_text("#upload-results li[data-status=imported]", "carl")
        .await;
    c.wait_text(
        "#accounts tr[data-account]:has(.badge[data-status=connected])",
        "Carl",
    )
    .await;
    let b = app.login("admin", PASSWORD).await;
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 3, "{list}");
    c.quit().await;
}
