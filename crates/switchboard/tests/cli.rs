//! The command line as a user runs it: `config check`, `migrate`, `admin create-user`,
//! `demo` (started, signed in to with the printed credentials, stopped with Ctrl-C), and the
//! maintenance commands `sessions import DIR` and `keys rotate` against tgsim on both backends.
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::{SEALED_COLUMNS, Store, Timestamp, WorkspaceId};
use switchboard_telegram::{DbSession, TelegramSettings, Validation, api_hash_aad, validate};
use switchboard_tests::db::{Backend, TestDb};
use switchboard_vault::{Keyring, Sealed};

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

/// `demo` with a production installation's settings in its environment: a configuration file
/// it must not read (it is not even valid), a database it must not reach, a data directory and
/// a master key it must not touch.
#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_credentials_that_sign_in_ignores_production_settings_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let production = tempfile::tempdir().unwrap();
    let config = production.path().join("switchboard.toml");
    std::fs::write(&config, "this is = not [valid toml\n").unwrap();
    let url_file = production.path().join("db-url");
    std::fs::write(&url_file, "postgres://prod:secret@127.0.0.1:1/prod\n").unwrap();
    let production_data = production.path().join("data");
    let mut child = switchboard(&production_data)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .env("SWITCHBOARD_CONFIG", &config)
        .env("SWITCHBOARD_DATABASE_URL_FILE", &url_file)
        .env(
            "SWITCHBOARD_MASTER_KEY_FILE",
            production.path().join("master.key"),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:1")
        .env("SWITCHBOARD_AUTH_LOCK_AFTER", "not a number")
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
        // A customer's chat, not only Telegram's service notifications.
        let has_chat = chats["chats"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["title"] != "Telegram"));
        if account_up && bot_up && has_chat {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
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
    // Everything stayed in the demo's own directory.
    assert!(dir.path().join("switchboard.db").is_file());
    assert!(dir.path().join("master.key").is_file());
    assert!(dir.path().join("demo.marker").is_file());
    let touched: Vec<_> = std::fs::read_dir(production.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut touched = touched;
    touched.sort();
    assert_eq!(
        touched,
        ["db-url", "switchboard.toml"],
        "nothing of production's was made"
    );
}

#[cfg(feature = "demo")]
#[test]
fn demo_refuses_a_configuration_file_and_a_data_dir_holding_a_real_installation() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, "").unwrap();
    let out = switchboard(dir.path())
        .args(["--config", config.to_str().unwrap(), "demo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("demo reads no configuration file"),
        "{}",
        stderr(&out)
    );

    // A real installation: migrated by `migrate`, with a user.
    let out = switchboard(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = dir.path().join("switchboard.db");
    let before = std::fs::read(&db).unwrap();
    let out = switchboard(dir.path())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the demo started on a real database");
    let err = stderr(&out);
    assert!(
        err.contains("not a demo's")
            && err.contains("switchboard.db")
            && err.contains("--data-dir"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database is untouched"
    );
    for made in ["demo.marker", "demo.json", "master.key", "files"] {
        assert!(!dir.path().join(made).exists(), "{made} was created");
    }
}

#[test]
fn version_names_the_release_and_the_schema_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let release = env!("CARGO_PKG_VERSION");
    let newest = switchboard_store_sqlite::SqliteStore::migrations()
        .last()
        .unwrap()
        .0;
    for flag in ["--version", "-V"] {
        let out = switchboard(dir.path()).arg(flag).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("switchboard {release}")),
            "{flag}: {}",
            stdout(&out)
        );
    }
    let out = switchboard(dir.path()).arg("--version").output().unwrap();
    assert!(
        stdout(&out).contains(&format!("database schema: migration {newest} (")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn keys_new_writes_a_private_key_file_and_never_overwrites_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("etc").join("master.key");
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let out = switchboard(dir.path())
        .args(["keys", "new", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ring = Keyring::from_file(&file).unwrap();
    assert!(
        stdout(&out).contains(ring.current_id().as_str()),
        "{}",
        stdout(&out)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let before = std::fs::read(&file).unwrap();
    let out = switchboard(dir.path())
        .args(["keys", "new", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an existing key was overwritten");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(
        !dir.path().join("master.key").exists(),
        "nothing written to the data dir"
    );
}

#[test]
fn switchboard_config_names_the_file_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    // 7 is only a marker (the default is another value): seeing it proves the named file was
    // read. No feature runs below its default here.
    std::fs::write(&config, "[auth]\nlock_after = 7\n").unwrap();
    let out = switchboard(dir.path())
        .args(["config", "check"])
        .env("SWITCHBOARD_CONFIG", &config)
        .env("SWITCHBOARD_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("lock_after: 7"), "{}", stdout(&out));
    assert!(
        !stderr(&out).contains("unknown environment variable"),
        "{}",
        stderr(&out)
    );
}

// --- maintenance: `sessions import DIR` and `keys rotate`, on both backends ---

/// The part of Telethon's v1 `.session` schema (`CURRENT_VERSION = 7`) a bundle needs.
const TELETHON_SCHEMA: &str = "create table version (version integer primary key);
    insert into version values (7);
    create table sessions (dc_id integer primary key, server_address text, port integer, auth_key blob, takeout_id integer);";

/// Writes a configuration file for the binary: a data dir, a database, tgsim as Telegram.
fn write_config(path: &Path, data_dir: &Path, url: &str, sim: &tgsim::Handle) {
    std::fs::write(
        path,
        format!(
            "data_dir = {:?}\n[database]\nurl = {:?}\n[telegram]\napi_id = 12345\n\
             api_hash = \"0123456789abcdef0123456789abcdef\"\ndc_override = \"{}\"\n\
             sim_control_url = {:?}\n",
            data_dir.display().to_string(),
            url,
            sim.mtproto_addr(),
            sim.control_url(),
        ),
    )
    .unwrap();
}

/// A data dir, a database of one backend, tgsim, and a config file pointing the binary at them.
struct Maintenance {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    db: TestDb,
    sim: tgsim::Handle,
}

impl Maintenance {
    async fn new(backend: Backend) -> Option<Self> {
        let db = TestDb::fresh(backend).await?;
        let sim = tgsim::start(tgsim::Config::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("switchboard.toml");
        write_config(&config, dir.path(), db.url(), &sim);
        let m = Self {
            dir,
            config,
            db,
            sim,
        };
        // The import needs an owner to attribute the accounts to.
        let pw = m.dir.path().join("pw");
        std::fs::write(&pw, "a long enough password\n").unwrap();
        let out = m.run(&[
            "admin",
            "create-user",
            "--username",
            "owner",
            "--password-file",
            pw.to_str().unwrap(),
            "--role",
            "owner",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        Some(m)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        switchboard(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs the binary without blocking the runtime tgsim runs on.
    async fn run_async(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = switchboard(self.dir.path());
        cmd.arg("--config").arg(&self.config).args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    fn key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("master.key")
    }

    /// A tgsim user signed in with a fresh key, written as `{phone}/{phone}.json` + `.session`.
    fn seed_account(&self, folder: &Path, phone: &str, name: &str) -> tgsim::UserInfo {
        let user = self
            .sim
            .create_user(tgsim::NewUser {
                phone: phone.into(),
                first_name: name.into(),
                ..Default::default()
            })
            .unwrap();
        let key = self.sim.issue_auth_key();
        self.sim.register_auth_key(user.id, key).unwrap();
        let dir = folder.join(phone);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{phone}.json")),
            format!(
                r#"{{"app_id": 2040, "app_hash": "b18441a1ff607e10a989891a5462e627", "phone": "{phone}",
                    "id": {}, "first_name": "{name}", "twoFA": null, "session_file": "{phone}"}}"#,
                user.id.0
            ),
        )
        .unwrap();
        let session = dir.join(format!("{phone}.session"));
        let conn = rusqlite::Connection::open(&session).unwrap();
        conn.execute_batch(TELETHON_SCHEMA).unwrap();
        let addr = self.sim.mtproto_addr();
        conn.execute(
            "insert into sessions values (2, ?1, ?2, ?3, null)",
            rusqlite::params![addr.ip().to_string(), addr.port(), &key[..]],
        )
        .unwrap();
        user
    }

    /// The workspace the commands use (`admin create-user` made it, with id 1).
    async fn workspace(&self) -> WorkspaceId {
        self.db
            .store()
            .get_workspace(WorkspaceId(1))
            .await
            .unwrap()
            .id
    }

    async fn stop(self) {
        self.sim.shutdown().await;
        self.db.drop_db().await;
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn telegram_settings(sim: &tgsim::Handle) -> TelegramSettings {
    TelegramSettings::simulator(
        12345,
        "0123456789abcdef0123456789abcdef",
        sim.mtproto_addr(),
        sim.control_url(),
        Arc::new(Detached),
    )
}

/// Runs a client's tasks straight on the test's runtime.
struct Detached;

impl switchboard_telegram::Spawn for Detached {
    fn spawn(
        &self,
        _name: &'static str,
        task: switchboard_telegram::Task,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(task)
    }
}

/// Every sealed value of the accounts in the database: `(the AAD it is bound to, bytes)`.
async fn sealed_values(store: &dyn Store) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for column in SEALED_COLUMNS {
        for v in store.sealed_values(column).await.unwrap() {
            let aad = match (column.table, column.column) {
                ("account_dc_keys", "auth_key_sealed") => {
                    format!("account:{}:dc:{}", v.row[0], v.row[1])
                }
                ("accounts", "api_hash_sealed") => format!("account:{}:api_hash", v.row[0]),
                (table, column) => panic!("this test has no {table}.{column} values"),
            };
            out.push((aad, v.bytes));
        }
    }
    out
}

async fn sessions_import_dir_imports_good_folders_and_reports_bad_ones(backend: Backend) {
    let Some(m) = Maintenance::new(backend).await else {
        return;
    };
    let folder = m.dir.path().join("accounts");
    let ann = m.seed_account(&folder, "15554000", "Ann");
    let ben = m.seed_account(&folder, "15554001", "Ben");
    // A malformed entry: the JSON is fine, the .session is not a session file.
    let bad = folder.join("15554002");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("15554002.json"), r#"{"phone": "15554002"}"#).unwrap();
    std::fs::write(bad.join("15554002.session"), b"this is not SQLite").unwrap();

    let out = m
        .run_async(&["sessions", "import", folder.to_str().unwrap()])
        .await;
    let text = stdout(&out);
    assert!(!out.status.success(), "a failed entry fails the command");
    assert!(
        stderr(&out).contains("1 of 3 folder(s) failed"),
        "{}",
        stderr(&out)
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_string()
    };
    assert!(line("15554000").contains("ok (account"), "{text}");
    assert!(line("15554001").contains("ok (account"), "{text}");
    let bad_line = line("15554002");
    assert!(bad_line.contains("error session_"), "{bad_line}");
    assert!(text.contains("3 folder(s) processed"), "{text}");

    let ws = m.workspace().await;
    let accounts = m.db.accounts().list_accounts(ws).await.unwrap();
    let mut users: Vec<i64> = accounts.iter().filter_map(|a| a.telegram_user_id).collect();
    users.sort_unstable();
    assert_eq!(
        users,
        vec![ann.id.0, ben.id.0],
        "nothing stored for the bad one"
    );
    assert!(
        accounts
            .iter()
            .all(|a| a.phone.as_deref() != Some("15554002"))
    );
    for a in &accounts {
        assert!(a.active, "imported accounts go live");
        assert!(!m.db.accounts().list_dc_keys(a.id).await.unwrap().is_empty());
    }
    // The validation connections were closed before the command exited.
    assert_eq!(m.sim.counters().connections_open, 0);

    // Importing the same folder again stores no duplicates.
    let again = m
        .run_async(&["sessions", "import", folder.to_str().unwrap()])
        .await;
    assert!(!again.status.success());
    assert!(
        stdout(&again).contains("account_exists"),
        "{}",
        stdout(&again)
    );
    assert_eq!(m.db.accounts().list_accounts(ws).await.unwrap().len(), 2);
    m.stop().await;
}

async fn keys_rotate_rewraps_every_secret_and_refuses_a_wrong_key(backend: Backend) {
    let Some(m) = Maintenance::new(backend).await else {
        return;
    };
    let folder = m.dir.path().join("accounts");
    m.seed_account(&folder, "15554100", "Cat");
    m.seed_account(&folder, "15554101", "Dan");
    let out = m
        .run_async(&["sessions", "import", folder.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let store = m.db.accounts();
    let ws = m.workspace().await;
    let accounts = store.list_accounts(ws).await.unwrap();
    assert_eq!(accounts.len(), 2);

    // One account has its own api_hash, sealed under the current key.
    let old = Keyring::from_file(&m.key_file()).unwrap();
    let old_id = old.current_id().clone();
    let with_hash = accounts[0].id;
    let sealed = old
        .seal(
            b"fedcba9876543210fedcba9876543210",
            &api_hash_aad(with_hash),
        )
        .unwrap();
    store
        .set_account_api_hash_sealed(with_hash, Some(&sealed.to_bytes()), Timestamp::now())
        .await
        .unwrap();
    let before = sealed_values(&*m.db.store()).await;
    assert_eq!(
        before.len(),
        3,
        "two auth keys and one api_hash: {before:?}"
    );

    // A missing key file: a clear error, no new key file, nothing changed.
    let key_text = std::fs::read(m.key_file()).unwrap();
    std::fs::remove_file(m.key_file()).unwrap();
    let out = m.run_async(&["keys", "rotate"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!m.key_file().exists(), "no key is made up");
    assert_eq!(sealed_values(&*m.db.store()).await, before);

    // A key file with another key: a clear error, the file and the database unchanged.
    let wrong = m.dir.path().join("wrong.key");
    switchboard_vault::MasterKey::write_new(&wrong).unwrap();
    std::fs::copy(&wrong, m.key_file()).unwrap();
    let wrong_text = std::fs::read(m.key_file()).unwrap();
    let out = m.run_async(&["keys", "rotate"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("vault_unknown_key_id"), "{err}");
    assert!(
        err.contains(old_id.as_str()),
        "names the key it needs: {err}"
    );
    assert_eq!(std::fs::read(m.key_file()).unwrap(), wrong_text);
    assert_eq!(sealed_values(&*m.db.store()).await, before);

    // The right key: every value moves to the new key, the old key is gone.
    std::fs::write(m.key_file(), &key_text).unwrap();
    let out = m.run_async(&["keys", "rotate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 secret(s) re-wrapped"),
        "{}",
        stdout(&out)
    );
    let new = Keyring::from_file(&m.key_file()).unwrap();
    assert_ne!(new.current_id(), &old_id);
    assert_eq!(new.key_ids().len(), 1, "the old key is dropped");
    let after = sealed_values(&*m.db.store()).await;
    assert_eq!(after.len(), before.len());
    for (aad, bytes) in &after {
        let sealed = Sealed::from_bytes(bytes).unwrap();
        assert_eq!(sealed.key_id(), new.current_id(), "{aad}");
        assert!(new.open(&sealed, aad.as_bytes()).is_ok(), "{aad}");
        assert!(old.open(&sealed, aad.as_bytes()).is_err(), "{aad}");
    }
    let hash = store.load_account(with_hash).await.unwrap().api_hash_sealed;
    let hash = new
        .open(
            &Sealed::from_bytes(&hash.unwrap()).unwrap(),
            &api_hash_aad(with_hash),
        )
        .unwrap();
    assert_eq!(&hash[..], b"fedcba9876543210fedcba9876543210");

    // The accounts' sessions load with the new key and still sign in to Telegram.
    let settings = telegram_settings(&m.sim);
    let keyring = Arc::new(new);
    for a in &accounts {
        let session = DbSession::load(&settings, Arc::clone(&store), Arc::clone(&keyring), a.id)
            .await
            .unwrap();
        match validate(&settings, Arc::new(session)).await.unwrap() {
            Validation::Valid(p) => assert_eq!(Some(p.telegram_user_id), a.telegram_user_id),
            other => panic!("account {} after rotation: {other:?}", a.id),
        }
    }

    // Rotating again with nothing left under an old key still works.
    let out = m.run_async(&["keys", "rotate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    m.stop().await;
}

/// `switchboard serve` on a configuration, listening on a free port, its log in `log`.
fn serve(config: &Path, data_dir: &Path, log: &Path) -> std::process::Child {
    switchboard(data_dir)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Stops a server with Ctrl-C and waits for it (at most 30 s).
async fn interrupt(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 60 s) until `check` holds, polling every 50 ms.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files in a file store, leaving out its `tmp/`.
fn stored_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "tmp")
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                stored_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

async fn all_connected(db: &TestDb, ws: WorkspaceId, expected: usize) -> bool {
    db.accounts().list_accounts(ws).await.is_ok_and(|list| {
        list.len() == expected
            && list
                .iter()
                .all(|a| a.status == switchboard_domain::AccountStatus::Connected)
    })
}

const LOAD_COUNT: &str = "SELECT count(*) FROM messages WHERE text LIKE 'load %'";
const LOAD_DISTINCT: &str = "SELECT count(DISTINCT text) FROM messages WHERE text LIKE 'load %'";

/// `backup` while customers write and the server stores, then `restore` into a new data
/// directory and database: every message the database held when the backup began is there,
/// the file store's file too; the accounts connect with their restored sessions, catch up on
/// what arrived after the backup, and receive new messages. The master key is not in the
/// backup, and the restore refuses to run without it or into a directory in use.
async fn a_backup_taken_under_load_restores_every_message_and_working_accounts(backend: Backend) {
    const TOTAL: usize = 2_000;
    let Some(m) = Maintenance::new(backend).await else {
        return;
    };
    let folder = m.dir.path().join("accounts");
    let ann = m.seed_account(&folder, "15554200", "Ann");
    let ben = m.seed_account(&folder, "15554201", "Ben");
    let out = m
        .run_async(&["sessions", "import", folder.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let customer = m
        .sim
        .create_user(tgsim::NewUser {
            phone: "15554299".into(),
            first_name: "Customer".into(),
            ..Default::default()
        })
        .unwrap();
    let ws = m.workspace().await;
    let server = serve(&m.config, m.dir.path(), &m.dir.path().join("serve.log"));
    eventually("the accounts connect", || all_connected(&m.db, ws, 2)).await;

    // A file in the store, then a steady stream of messages to both accounts.
    let document = tgsim::OutgoingMessage {
        text: "the contract".into(),
        media: Some(tgsim::MediaUpload {
            kind: tgsim::MediaKind::Document,
            data: (0..50_000u32).map(|i| (i % 251) as u8).collect(),
            file_name: Some("contract.pdf".into()),
            mime: Some("application/pdf".into()),
        }),
        ..Default::default()
    };
    m.sim
        .send_message(customer.id, tgsim::Peer::User(ann.id), document)
        .unwrap();
    let files_dir = m.dir.path().join("files");
    eventually("the document is stored", || {
        let n = stored_files(&files_dir);
        async move { n == 1 }
    })
    .await;
    let sim = m.sim.clone();
    let (ann_id, ben_id, from) = (ann.id, ben.id, customer.id);
    let load = tokio::spawn(async move {
        for i in 0..TOTAL {
            let to = if i % 2 == 0 { ann_id } else { ben_id };
            sim.send_message(
                from,
                tgsim::Peer::User(to),
                tgsim::OutgoingMessage::text(format!("load {i}")),
            )
            .unwrap();
            // About 1,000 messages a second, for two seconds.
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let stores = m.db.stores();
    eventually("a quarter of the load is stored", || {
        let stores = stores.clone();
        async move { stores.scalar(LOAD_COUNT).await >= (TOTAL / 4) as i64 }
    })
    .await;
    let before = stores.scalar(LOAD_COUNT).await;
    let backup = m.dir.path().join("backup");
    let out = m.run_async(&["backup", backup.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let during = stores.scalar(LOAD_COUNT).await;
    assert!(
        during > before,
        "the backup did not run under load ({before} → {during} stored)"
    );
    load.await.unwrap();
    let key_id = Keyring::from_file(&m.key_file())
        .unwrap()
        .current_id()
        .as_str()
        .to_string();
    let said = stdout(&out);
    assert!(
        said.contains("WARNING: the master key is NOT in the backup") && said.contains(&key_id),
        "{said}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["backend"], backend.name());
    assert_eq!(manifest["files"], 1);
    assert_eq!(manifest["master_key_ids"], serde_json::json!([key_id]));
    let key_text = std::fs::read_to_string(m.key_file()).unwrap();
    let key_line = key_text.lines().find(|l| l.starts_with("sbk1:")).unwrap();
    for entry in walk(&backup) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes
                .windows(key_line.len())
                .any(|w| w == key_line.as_bytes()),
            "{} holds the master key",
            entry.display()
        );
    }
    // A second backup into the same directory is refused.
    let again = m.run_async(&["backup", backup.to_str().unwrap()]).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    eventually("the whole load is stored", || {
        let stores = stores.clone();
        async move { stores.scalar(LOAD_COUNT).await == TOTAL as i64 }
    })
    .await;
    interrupt(server).await;

    // Restoring over the installation in use is refused.
    let out = m.run_async(&["restore", backup.to_str().unwrap()]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    // A new data directory and database, as after the loss of the machine.
    let target_dir = tempfile::tempdir().unwrap();
    let data = target_dir.path().join("data");
    let restored = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(switchboard_tests::db::empty_postgres().await.unwrap()),
    };
    let url = match &restored {
        Some(db) => db.url().to_string(),
        None => switchboard_tests::db::sqlite_url(&data),
    };
    let config = target_dir.path().join("switchboard.toml");
    write_config(&config, &data, &url, &m.sim);
    let restore = || {
        let mut cmd = switchboard(&data);
        cmd.arg("--config")
            .arg(&config)
            .args(["restore", backup.to_str().unwrap()]);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    // Without the master key: refused, naming the key it needs.
    let out = restore().await.unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&key_id), "{}", stderr(&out));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("master.key"), &key_text).unwrap();
    let out = restore().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let db = match restored {
        Some(pg) => TestDb::Postgres(pg),
        None => {
            let store = switchboard_store_sqlite::connect(&url, &Default::default())
                .await
                .unwrap();
            TestDb::Sqlite {
                dir: target_dir,
                url: url.clone(),
                store,
            }
        }
    };
    let back = db.stores();
    let restored_count = back.scalar(LOAD_COUNT).await;
    assert!(
        restored_count >= before && restored_count <= TOTAL as i64,
        "{restored_count} messages restored; {before} were stored when the backup began"
    );
    assert_eq!(
        back.scalar(LOAD_DISTINCT).await,
        restored_count,
        "no duplicate"
    );
    assert_eq!(stored_files(&data.join("files")), 1);
    // A second restore onto the restored installation is refused.
    let out = restore().await.unwrap();
    assert!(!out.status.success());

    // The restored installation works: its accounts connect with their sealed sessions, catch
    // up on what arrived after the backup, and receive what comes next.
    let server = serve(&config, &data, &data.join("serve.log"));
    eventually("the restored accounts connect", || {
        all_connected(&db, ws, 2)
    })
    .await;
    eventually(
        "the restored installation catches up on every message",
        || {
            let back = back.clone();
            async move { back.scalar(LOAD_COUNT).await == TOTAL as i64 }
        },
    )
    .await;
    assert_eq!(back.scalar(LOAD_DISTINCT).await, TOTAL as i64);
    m.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(ben.id),
            tgsim::OutgoingMessage::text("after the restore"),
        )
        .unwrap();
    eventually("a new message reaches the restored installation", || {
        let back = back.clone();
        async move {
            back.scalar("SELECT count(*) FROM messages WHERE text = 'after the restore'")
                .await
                == 1
        }
    })
    .await;
    interrupt(server).await;
    db.drop_db().await;
    m.stop().await;
}

/// Every file under a directory.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// A database that a newer Switchboard migrated (a migration row this binary does not know,
/// written with raw SQL) is refused by `migrate` and by `serve`, with both schema versions and
/// what to do, and nothing is changed.
async fn a_database_migrated_by_a_newer_version_is_refused(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    let stores = db.stores();
    let checksum = match backend {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    stores
        .execute(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101, 'from the future', TRUE, {checksum}, 1)"
        ))
        .await;
    let count = "SELECT count(*) FROM _sqlx_migrations";
    let rows = stores.scalar(count).await;
    let (newest, newest_name) = switchboard_store_sqlite::SqliteStore::migrations()
        .last()
        .cloned()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for command in ["migrate", "serve"] {
        let out = switchboard(dir.path())
            .arg(command)
            .env("SWITCHBOARD_DATABASE_URL", db.url())
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command} accepted a newer schema");
        let err = stderr(&out);
        for part in [
            "migrated by a newer Switchboard".to_string(),
            "migration 99990101 (from the future)".to_string(),
            format!("Switchboard {}", env!("CARGO_PKG_VERSION")),
            format!("up to {newest} ({newest_name})"),
            "restore the backup".to_string(),
        ] {
            assert!(err.contains(&part), "{command}: no {part:?} in {err}");
        }
    }
    assert_eq!(stores.scalar(count).await, rows, "nothing was migrated");
    db.drop_db().await;
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )+
        }
    };
}

on_both_backends!(
    a_backup_taken_under_load_restores_every_message_and_working_accounts,
    a_database_migrated_by_a_newer_version_is_refused,
    sessions_import_dir_imports_good_folders_and_reports_bad_ones,
    keys_rotate_rewraps_every_secret_and_refuses_a_wrong_key,
);
