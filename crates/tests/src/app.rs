//! The test harness that is the product's front door: the real server on port 0 with a fresh
//! database of either backend, and an HTTP client that talks to it like a browser would
//! (cookies, CSRF header, `Origin`).

use crate::db::{Backend, TestDb};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use serde_json::Value;
use std::sync::Arc;
use switchboard::Config;
use switchboard::app::Running;
use switchboard_domain::{Role, Store, Timestamp, WorkspaceId};
use switchboard_services::NewMember;

/// The password every harness-created user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running Switchboard on a fresh database.
pub struct TestApp {
    /// The server.
    pub running: Running,
    /// Its base URL.
    pub url: String,
    /// The store behind it.
    pub store: Arc<dyn Store>,
    /// The workspace created for the test, with `admin` (owner) and `operator` in it.
    pub workspace: WorkspaceId,
    /// The plain HTTP client.
    pub http: reqwest::Client,
    /// The configuration it runs with.
    pub config: Config,
    /// The Telegram simulator the server talks to.
    pub sim: tgsim::Handle,
    db: Option<TestDb>,
}

impl TestApp {
    /// Starts a server on a fresh database of `backend`, with the configuration adjusted by
    /// `tweak`, and creates a workspace with users `admin` (owner) and `operator`. `None` when
    /// PostgreSQL tests are skipped.
    pub async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let db = TestDb::fresh(backend).await?;
        let sim = match tgsim::start(tgsim::Config::default()).await {
            Ok(s) => s,
            Err(e) => panic!("tgsim did not start: {e}"),
        };
        let data_dir = match tempfile::tempdir() {
            Ok(d) => d.keep(),
            Err(e) => panic!("temp dir: {e}"),
        };
        let mut config = Config::default();
        config.database.url = Some(switchboard_services::Secret::new(db.url()));
        config.data_dir = data_dir;
        config.telegram.api_id = Some(12345);
        config.telegram.api_hash = Some(switchboard_services::Secret::new(
            "0123456789abcdef0123456789abcdef",
        ));
        config.telegram.dc_override = Some(sim.mtproto_addr().to_string());
        config.telegram.sim_control_url = Some(sim.control_url());
        config.telegram.bot_api_url = sim.bot_api_url();
        // Bound before the tweak so that it can name the server's own URL (`server.listen`),
        // e.g. as `server.public_url` for bot webhooks.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        config.server.listen = listener.local_addr().ok()?;
        tweak(&mut config);
        let store = db.store();
        let running = serve(&config, &db, listener).await;
        let url = running.url();
        let ws = match store.create_workspace("Test", Timestamp::now()).await {
            Ok(ws) => ws.id,
            Err(e) => panic!("workspace: {e}"),
        };
        let app = TestApp {
            url,
            store,
            workspace: ws,
            http: reqwest::Client::new(),
            config,
            sim,
            running,
            db: Some(db),
        };
        app.add_user(ws, "admin", Role::Owner).await;
        app.add_user(ws, "operator", Role::Operator).await;
        Some(app)
    }

    /// Creates another workspace with `owner` (an owner, with [`PASSWORD`]) and signs them in.
    pub async fn other_workspace(&self, name: &str, owner: &str) -> (WorkspaceId, Browser) {
        let ws = match self.store.create_workspace(name, Timestamp::now()).await {
            Ok(ws) => ws.id,
            Err(e) => panic!("workspace: {e}"),
        };
        self.add_user(ws, owner, Role::Owner).await;
        (ws, self.login(owner, PASSWORD).await)
    }

    /// The database behind the server, with raw SQL for counting rows.
    pub fn stores(&self) -> Option<crate::db::Stores> {
        self.db.as_ref().map(TestDb::stores)
    }

    /// Creates a user with [`PASSWORD`] in a workspace.
    pub async fn add_user(&self, ws: WorkspaceId, username: &str, role: Role) {
        let member = NewMember {
            username,
            display_name: None,
            password: PASSWORD,
            role,
            max_chats: 5,
        };
        if let Err(e) = self.running.auth.create_member(ws, member, None).await {
            panic!("creating {username}: {e}");
        }
    }

    /// An absolute URL of a path.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Signs in through the API and returns a browser-like session.
    pub async fn login(&self, username: &str, password: &str) -> Browser {
        let res = self
            .post_json_anon(
                "/api/v1/auth/login",
                &serde_json::json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(res.status(), 200, "login of {username} failed");
        Browser::from_login(self, res).await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let res = self.http.get(self.at("/metrics")).send().await;
        let res = res.unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        res.text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
    }

    /// POSTs JSON without a session.
    pub async fn post_json_anon(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.at(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Stops the whole server (HTTP, every account client and worker) and starts a new one on
    /// the same database, data directory and tgsim, like an operator restarting the service.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|| async {}).await
    }

    /// [`TestApp::restart`], running `while_down` after the old server stopped and before the
    /// new one starts.
    pub async fn restart_with<F, Fut>(self, while_down: F) -> TestApp
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let TestApp {
            running,
            store,
            workspace,
            http,
            config,
            sim,
            db,
            ..
        } = self;
        shut_down(running).await;
        let Some(db) = db else {
            panic!("the database is gone")
        };
        while_down().await;
        // The same address when it is free again (URLs handed out stay valid), else a new port.
        let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
            Ok(l) => l,
            Err(_) => match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => panic!("cannot listen on 127.0.0.1: {e}"),
            },
        };
        let mut config = config;
        if let Ok(addr) = listener.local_addr() {
            config.server.listen = addr;
        }
        let running = serve(&config, &db, listener).await;
        TestApp {
            url: running.url(),
            running,
            store,
            workspace,
            http,
            config,
            sim,
            db: Some(db),
        }
    }

    /// Stops the server and deletes the database.
    pub async fn stop(mut self) {
        let db = self.db.take();
        shut_down(self.running).await;
        self.sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.config.data_dir);
        if let Some(db) = db {
            db.drop_db().await;
        }
    }
}

async fn shut_down(running: Running) {
    if let Err(e) = running.shutdown().await {
        panic!("shutdown: {e:#}");
    }
}

/// Starts the real server on port 0 over `db`.
async fn serve(config: &Config, db: &TestDb, listener: tokio::net::TcpListener) -> Running {
    let stores = match db {
        TestDb::Sqlite { store, .. } => switchboard::Stores {
            store: Arc::new(store.clone()),
            accounts: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
            leads: Arc::new(store.clone()),
            signin: Arc::new(store.clone()),
            schedule: Arc::new(store.clone()),
            users: Arc::new(store.clone()),
        },
        TestDb::Postgres(pg) => switchboard::Stores {
            store: Arc::new(pg.store().clone()),
            accounts: Arc::new(pg.store().clone()),
            inbox: Arc::new(pg.store().clone()),
            leads: Arc::new(pg.store().clone()),
            signin: Arc::new(pg.store().clone()),
            schedule: Arc::new(pg.store().clone()),
            users: Arc::new(pg.store().clone()),
        },
    };
    match switchboard::app::start_with(config, stores, listener).await {
        Ok(r) => r,
        Err(e) => panic!("server did not start: {e:#}"),
    }
}

/// A signed-in client: session cookie plus the CSRF token, as a browser page holds them.
pub struct Browser {
    /// Base URL.
    pub base: String,
    /// The `Cookie` header value.
    pub cookie: String,
    /// The CSRF token.
    pub csrf: String,
    /// The sign-in response body.
    pub me: Value,
    /// The `Set-Cookie` headers of the sign-in response.
    pub set_cookies: Vec<String>,
    http: reqwest::Client,
}

impl Browser {
    /// Signs in to the server at `base` (one not started by [`TestApp`], e.g. a server started
    /// with `switchboard::start`); panics unless it answers 200.
    pub async fn sign_in(base: &str, username: &str, password: &str) -> Browser {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("sign-in to {base}: {e}"));
        assert_eq!(res.status(), 200, "sign-in of {username} to {base} failed");
        Browser::from_response(base, http, res).await
    }

    /// A browser holding a session set another way (e.g. a Telegram sign-in): its `Cookie`
    /// header, CSRF token and the answer that signed it in.
    pub fn with_session(app: &TestApp, cookie: String, csrf: String, me: Value) -> Browser {
        Browser {
            base: app.url.clone(),
            cookie,
            csrf,
            me,
            set_cookies: Vec::new(),
            http: app.http.clone(),
        }
    }

    async fn from_login(app: &TestApp, res: reqwest::Response) -> Browser {
        Browser::from_response(&app.url, app.http.clone(), res).await
    }

    async fn from_response(base: &str, http: reqwest::Client, res: reqwest::Response) -> Browser {
        let set_cookies: Vec<String> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let cookie = set_cookies
            .iter()
            .filter_map(|c| c.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let me: Value = res.json().await.unwrap_or(Value::Null);
        let csrf = me["csrf_token"].as_str().unwrap_or_default().to_string();
        Browser {
            base: base.to_string(),
            cookie,
            csrf,
            me,
            set_cookies,
            http,
        }
    }

    fn headers(&self, with_csrf: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&self.cookie) {
            h.insert(COOKIE, v);
        }
        if with_csrf && let Ok(v) = HeaderValue::from_str(&self.csrf) {
            h.insert("x-csrf-token", v);
        }
        h
    }

    /// GET with the session.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, path))
            .headers(self.headers(false))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A request with the session and (if `csrf`) the CSRF header, JSON body if given.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        csrf: bool,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .headers(self.headers(csrf));
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// POSTs a multipart form with the session and CSRF token.
    pub async fn upload(&self, path: &str, form: reqwest::multipart::Form) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, path))
            .headers(self.headers(true))
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload to {path}: {e}"))
    }

    /// POST JSON with session and CSRF token.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(body), true)
            .await
    }
}

/// Reads an error response's code (and checks the body has the documented shape).
pub async fn error_code(res: reqwest::Response) -> String {
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(
        v["error"]["message"].is_string(),
        "error body without message: {v}"
    );
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// Turns each `async fn(&TestApp)` into `<name>::sqlite` and `<name>::postgres` tests, each on
/// a fresh server and database. An optional `with tweak_fn` adjusts the configuration.
#[macro_export]
macro_rules! app_tests {
    ($($name:ident $(with $tweak:ident)?),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let Some(app) = $crate::app::TestApp::spawn($crate::db::Backend::Sqlite, |_c| { $(super::$tweak(_c);)? }).await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) = $crate::app::TestApp::spawn($crate::db::Backend::Postgres, |_c| { $(super::$tweak(_c);)? }).await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        )+
    };
}

/// Like [`app_tests!`], for tests that restart the server: each `async fn(TestApp) -> TestApp`
/// gets the app by value (for [`TestApp::restart`]) and hands back the one to stop.
#[macro_export]
macro_rules! restarting_app_tests {
    ($($name:ident $(with $tweak:ident)?),+ $(,)?) => {
        $(
            mod $name {
                async fn run(backend: $crate::db::Backend) {
                    let Some(app) = $crate::app::TestApp::spawn(backend, |_c| { $(super::$tweak(_c);)? }).await else { return };
                    super::$name(app).await.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::db::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run($crate::db::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// Role helper for tests reading `/me`.
pub fn role_of(me: &Value) -> Option<Role> {
    me["role"].as_str().and_then(|r| r.parse().ok())
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("url", &self.url).finish()
    }
}
