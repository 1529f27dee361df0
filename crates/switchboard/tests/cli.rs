//! The command line as a user runs it: `config check`, `migrate`, `admin create-user` and
//! `demo` (started, signed in to with the printed credentials, stopped with Ctrl-C).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn switchboard(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHBOARD_DATA_DIR", dir)
        .env("SWITCHBOARD_LOG", "warn");
    c
}

#[test]
fn config_check_rejects_unknown_keys_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:1\"\nlistne = 1\n").unwrap();
    let out = switchboard(dir.path())
        .args(["--config", bad.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listne"));

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[database]\nurl = \"postgres://sb:pa55w0rd-xyz@db:5432/sb\"\n",
    )
    .unwrap();
    let hash = dir.path().join("hash");
    std::fs::write(&hash, "0123456789abcdef-api-hash\n").unwrap();
    let out = switchboard(dir.path())
        .args(["--config", good.to_str().unwrap(), "config", "check"])
        .env("SWITCHBOARD_TELEGRAM_API_HASH_FILE", &hash)
        .env("SWITCHBOARD_UNKNOWN_THING", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("configuration OK"));
    assert!(stdout.contains("postgres://sb:***@db:5432/sb"), "{stdout}");
    assert!(
        !stdout.contains("pa55w0rd-xyz") && !stdout.contains("0123456789abcdef-api-hash"),
        "{stdout}"
    );
    assert!(
        stderr.contains("SWITCHBOARD_UNKNOWN_THING"),
        "unknown variables are warned about: {stderr}"
    );
}

#[test]
fn migrate_and_create_user_then_sign_in_is_possible() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sqlite: migrations applied"));
    assert!(dir.path().join("switchboard.db").exists());

    let pw = dir.path().join("pw");
    let mut f = std::fs::File::create(&pw).unwrap();
    writeln!(f, "a long enough password").unwrap();
    let out = switchboard(dir.path())
        .args([
            "admin",
            "create-user",
            "--username",
            "Alice",
            "--password-file",
            pw.to_str().unwrap(),
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user Alice"));
    // The same name again is refused with its code, and a bad role is refused.
    let out = switchboard(dir.path())
        .args([
            "admin",
            "create-user",
            "--username",
            "alice",
            "--password-file",
            pw.to_str().unwrap(),
            "--role",
            "admin",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("username_taken"));
    let out = switchboard(dir.path())
        .args([
            "admin",
            "create-user",
            "--username",
            "bob",
            "--password-file",
            pw.to_str().unwrap(),
            "--role",
            "king",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_credentials_that_sign_in_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = switchboard(dir.path())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let demo_json = dir.path().join("demo.json");
    let start = Instant::now();
    while !demo_json.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "demo.json never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&demo_json).unwrap()).unwrap();
    let url = creds["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"));
    let page = reqwest::get(format!("{url}/login")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("login-form"));
    let res = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": creds["username"], "password": creds["password"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie: String = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect::<Vec<_>>()
        .join("; ");
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["role"], "owner");

    // The inbox is alive: the demo account and bot are connected and customers write in.
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{url}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    let start = Instant::now();
    loop {
        let accounts: serde_json::Value =
            get("/api/v1/accounts").await.unwrap().json().await.unwrap();
        let bots: serde_json::Value = get("/api/v1/bots").await.unwrap().json().await.unwrap();
        let chats: serde_json::Value = get("/api/v1/chats").await.unwrap().json().await.unwrap();
        let account_up = accounts["accounts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["status"] == "connected"));
        let bot_up = bots["bots"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["status"] == "connected"));
        let has_chat = chats["chats"].as_array().is_some_and(|c| !c.is_empty());
        if account_up && bot_up && has_chat {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the demo inbox did not come alive: {accounts} {bots} {chats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo did not stop on Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean shutdown exits 0");
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains(url) && stdout.contains(creds["password"].as_str().unwrap()),
        "{stdout}"
    );
}
