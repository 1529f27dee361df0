//! Real headless Chromium for tests that check what a person sees: the harness starts
//! `chromedriver` on a free loopback port, opens one browser session over WebDriver
//! (`fantoccini`), and offers the few steps a test needs (sign in through the login page, wait
//! for a selector or a text, click, type, read). A step that times out saves a screenshot and
//! the page's HTML under `<target>/browser-screenshots/` before it panics.
//!
//! [`Chrome::guide_shot`] saves the page as `docs/screenshots/<lang>/<name>.png` in the
//! repository: the operator guides (`docs/guide.en.md`, `docs/guide.ru.md`) show these pictures,
//! and the tests that walk the UI take them, so they show the UI as it is.
//!
//! Without `/usr/bin/chromedriver` (or `SWITCHBOARD_CHROMEDRIVER`) a browser test is skipped
//! with a printed reason, unless `CI` is set: then it fails. `.ci/run` installs Chromium.

use crate::app::TestApp;
use crate::db::{ci_is_set, note};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The driver used unless `SWITCHBOARD_CHROMEDRIVER` names another.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser used unless `SWITCHBOARD_CHROMIUM` names another.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a wait step lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);
/// The window (and so the picture) size of the guides' screenshots, in CSS pixels.
pub const GUIDE_WINDOW: (u32, u32) = (1200, 750);
/// The moment every time shown on a guide's screenshot is set to (10:30 local time), so a
/// picture changes only when the UI does.
const GUIDE_TIME: &str = "2026-03-02T10:30:00";

/// The language of a page and of its guide, with the texts a test waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English (`guide.en.md`).
    En,
    /// Russian (`guide.ru.md`).
    Ru,
}

impl Lang {
    /// The language's code: `en` or `ru`.
    pub fn code(self) -> &'static str {
        self.pick("en", "ru")
    }

    /// English or Russian.
    pub fn pick(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

/// One headless Chromium session and the chromedriver process behind it (killed on drop,
/// with the browser it started).
pub struct Chrome {
    client: Client,
    _driver: DriverGuard,
    base: String,
    _profile: tempfile::TempDir,
    /// Whether [`Chrome::guide_shot`] writes its picture (see [`Chrome::for_app`]).
    saves_guide_shots: bool,
    /// Whether the window has been set to [`GUIDE_WINDOW`].
    guide_window: AtomicBool,
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium that can reach only loopback addresses,
    /// with `base` (the app's URL) as the base of [`Chrome::open`]. `None`, after printing
    /// why, when chromedriver is missing and `CI` is not set.
    pub async fn launch(base: &str) -> Option<Chrome> {
        let driver_path = std::env::var("SWITCHBOARD_CHROMEDRIVER")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| CHROMEDRIVER.to_string());
        let browser_path = std::env::var("SWITCHBOARD_CHROMIUM")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| CHROMIUM.to_string());
        for path in [&driver_path, &browser_path] {
            if !Path::new(path).exists() {
                let why = format!("{path} is missing (apt-get install chromium chromium-driver)");
                if ci_is_set() {
                    panic!("{why}; CI is set, so browser tests are mandatory");
                }
                note(&format!("skipping a browser test: {why}"));
                return None;
            }
        }
        let port = crate::free_port();
        let driver = match Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!("starting {driver_path}: {e}"),
        };
        let profile = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("browser profile dir: {e}"),
        };
        let driver = DriverGuard(driver);
        wait_for_port(port).await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser_path,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                    // Nothing beyond loopback: every other host goes to a closed proxy port.
                    "--proxy-server=http://127.0.0.1:9",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--disable-extensions",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--no-pings",
                    "--disable-breakpad",
                    "--disable-crash-reporter",
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => c,
            Err(e) => panic!("opening a Chromium session: {e}"),
        };
        Some(Chrome {
            client,
            _driver: driver,
            base: base.trim_end_matches('/').to_string(),
            _profile: profile,
            saves_guide_shots: true,
            guide_window: AtomicBool::new(false),
        })
    }

    /// Starts a browser for `app` (see [`Chrome::launch`]). Every browser test runs on both
    /// databases, and the two runs would race to write the same pictures: only the run on
    /// SQLite writes the guides' screenshots (the PostgreSQL run still checks the page's
    /// language at each of them).
    pub async fn for_app(app: &TestApp) -> Option<Chrome> {
        let mut chrome = Chrome::launch(&app.url).await?;
        chrome.saves_guide_shots = app
            .config
            .database
            .url
            .as_ref()
            .is_some_and(|u| u.expose().starts_with("sqlite:"));
        Some(chrome)
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens a path of the app (or an absolute URL).
    pub async fn open(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        if let Err(e) = self.client.goto(&url).await {
            panic!("{}", self.failure(&format!("opening {url}: {e}")).await);
        }
    }

    /// Signs in through the real login page and waits for the app's shell.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.open("/login").await;
        self.fill("#login-form input[name=username]", username)
            .await;
        self.fill("#login-form input[name=password]", password)
            .await;
        self.click("#login-form button[type=submit]").await;
        self.wait("header.top nav").await;
    }

    /// Picks the signed-in member's language under Settings and waits for the app to show it.
    pub async fn choose_language(&self, lang: Lang) {
        self.open("/settings").await;
        if let Err(e) = self
            .wait("#lang-select")
            .await
            .select_by_value(lang.code())
            .await
        {
            panic!("{}", self.failure(&format!("choosing {lang:?}: {e}")).await);
        }
        self.wait_text("header.top nav", lang.pick("Accounts", "Аккаунты"))
            .await;
    }

    /// Waits until `css` matches a displayed element and returns the first one.
    pub async fn wait(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Ok(found) = self.client.find_all(Locator::Css(css)).await {
                for el in found {
                    if el.is_displayed().await.unwrap_or(false) {
                        return el;
                    }
                }
            }
            if start.elapsed() > WAIT {
                panic!(
                    "{}",
                    self.failure(&format!("no visible element matches `{css}`"))
                        .await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until an element matching `css` shows a text containing `text`; returns that
    /// element's whole text.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let start = Instant::now();
        loop {
            let texts = self.texts(css).await;
            if let Some(t) = texts.iter().find(|t| t.contains(text)) {
                return t.clone();
            }
            if start.elapsed() > WAIT {
                panic!(
                    "{}",
                    self.failure(&format!(
                        "no element matching `{css}` shows {text:?} (they show {texts:?})"
                    ))
                    .await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let start = Instant::now();
        while !self.texts(css).await.is_empty() {
            if start.elapsed() > WAIT {
                panic!("{}", self.failure(&format!("`{css}` is still there")).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rendered texts of every element matching `css` (hidden ones give "").
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let v = self
            .eval(
                "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);",
                vec![json!(css)],
            )
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// The text of the first visible element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        let el = self.wait(css).await;
        match el.text().await {
            Ok(t) => t,
            Err(e) => panic!("{}", self.failure(&format!("reading `{css}`: {e}")).await),
        }
    }

    /// Clicks the first visible element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) {
        let el = self.wait(css).await;
        if let Err(e) = el.click().await {
            panic!("{}", self.failure(&format!("clicking `{css}`: {e}")).await);
        }
    }

    /// Replaces the value of the first visible input matching `css` by typing `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait(css).await;
        if let Err(e) = el.clear().await {
            panic!("{}", self.failure(&format!("clearing `{css}`: {e}")).await);
        }
        if let Err(e) = el.send_keys(text).await {
            panic!(
                "{}",
                self.failure(&format!("typing into `{css}`: {e}")).await
            );
        }
    }

    /// Chooses local files (or, for a `webkitdirectory` input, one folder) in the file input
    /// matching `css`; the input may be hidden.
    pub async fn choose_files(&self, css: &str, paths: &[&Path]) {
        let el = match self.client.find(Locator::Css(css)).await {
            Ok(el) => el,
            Err(e) => panic!(
                "{}",
                self.failure(&format!("no file input `{css}`: {e}")).await
            ),
        };
        let list = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        if let Err(e) = el.send_keys(&list).await {
            panic!(
                "{}",
                self.failure(&format!("choosing files in `{css}`: {e}"))
                    .await
            );
        }
    }

    /// Scrolls the page so that the first element matching `css` is at the top (waiting for it).
    pub async fn scroll_to(&self, css: &str) {
        self.wait(css).await;
        self.eval(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'start'});",
            vec![json!(css)],
        )
        .await;
    }

    /// Opens the chat titled `title` in the inbox's chat list and waits until it is shown.
    pub async fn open_chat(&self, title: &str) {
        let rows = self.texts("#chat-list .chat-title").await;
        let Some(index) = rows.iter().position(|t| t == title) else {
            panic!(
                "{}",
                self.failure(&format!("no chat {title:?} in the list {rows:?}"))
                    .await
            );
        };
        self.click(&format!("#chat-list li:nth-child({}) button", index + 1))
            .await;
        self.wait_text("#chat-title", title).await;
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute(script, args).await {
            Ok(v) => v,
            Err(e) => panic!("{}", self.failure(&format!("running script: {e}")).await),
        }
    }

    /// Saves a screenshot and the page's HTML as `<target>/browser-screenshots/<name>.*` and
    /// returns the PNG's path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        let png = dir.join(format!("{name}.png"));
        if let Ok(bytes) = self.client.screenshot().await {
            let _ = std::fs::write(&png, bytes);
        }
        if let Ok(html) = self.client.source().await {
            let _ = std::fs::write(dir.join(format!("{name}.html")), html);
        }
        png
    }

    /// Saves the page, as it is now, as `docs/screenshots/<lang>/<name>.png` for the operator
    /// guides; call it once the page shows what the picture is for (wait for that first). The
    /// page must be in `lang` (checked). The window is set to [`GUIDE_WINDOW`] (and stays so),
    /// the text cursor is hidden, the times on the page and the values of date-and-time fields
    /// are set to one fixed moment (so take the picture of a form after saving it), the fonts
    /// are awaited and two frames are drawn before the picture is taken; the file is written
    /// only when its bytes change. Guide pictures are names of lowercase letters, digits and
    /// `-`, in `en` or `ru`; `guide::` tests check that each is shown by its guide.
    pub async fn guide_shot(&self, lang: &str, name: &str) {
        assert!(
            lang == "en" || lang == "ru",
            "a guide's language is en or ru, not {lang:?}"
        );
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "a guide screenshot's name is lowercase letters, digits and '-': {name:?}"
        );
        let page_lang = self
            .eval("return document.documentElement.lang;", vec![])
            .await;
        if page_lang != json!(lang) {
            panic!(
                "{}",
                self.failure(&format!(
                    "the screenshot {lang}/{name} is of a page in {page_lang}"
                ))
                .await
            );
        }
        if !self.saves_guide_shots {
            return;
        }
        if !self.guide_window.swap(true, Ordering::Relaxed) {
            self.size_viewport(GUIDE_WINDOW).await;
        }
        let settled = self
            .client
            .execute_async(
                r#"
                const [fixed, done] = arguments;
                if (!document.getElementById("guide-shot-style")) {
                  const style = document.createElement("style");
                  style.id = "guide-shot-style";
                  style.textContent = "*{caret-color:transparent!important;transition:none!important;animation:none!important}";
                  document.head.append(style);
                }
                if (document.activeElement && document.activeElement !== document.body) {
                  document.activeElement.blur();
                }
                const at = new Date(fixed);
                const lang = document.documentElement.lang;
                const short = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
                const full = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
                for (const t of document.querySelectorAll("time, .lead-time, .run-time")) {
                  t.textContent = t.matches(".lead-time, .run-time") ? full.format(at) : short.format(at);
                }
                for (const i of document.querySelectorAll("input[type=datetime-local]")) {
                  if (i.value) i.value = fixed.slice(0, 16);
                }
                document.fonts.ready.then(() =>
                  requestAnimationFrame(() => requestAnimationFrame(() => done(true))));
                "#,
                vec![json!(GUIDE_TIME)],
            )
            .await;
        if let Err(e) = settled {
            panic!("{}", self.failure(&format!("settling the page: {e}")).await);
        }
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("{}", self.failure(&format!("taking {name}: {e}")).await),
        };
        let dir = guide_screenshot_dir(lang);
        let path = dir.join(format!("{name}.png"));
        if std::fs::read(&path).is_ok_and(|old| old == png) {
            return;
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("creating {}: {e}", dir.display());
        }
        // Written whole, then renamed: a reader never sees half a picture.
        let tmp = dir.join(format!(".{name}.png.tmp"));
        if let Err(e) = std::fs::write(&tmp, &png).and_then(|()| std::fs::rename(&tmp, &path)) {
            panic!("writing {}: {e}", path.display());
        }
    }

    /// Sets the window so that the page's viewport is `(width, height)` CSS pixels: a headless
    /// window's size includes a frame the page does not get.
    async fn size_viewport(&self, (width, height): (u32, u32)) {
        for _ in 0..2 {
            let inner = self
                .eval("return [window.innerWidth, window.innerHeight];", vec![])
                .await;
            let (iw, ih) = (
                inner[0].as_u64().unwrap_or(0),
                inner[1].as_u64().unwrap_or(0),
            );
            if (iw, ih) == (u64::from(width), u64::from(height)) {
                return;
            }
            let rect = match self.client.get_window_size().await {
                Ok(r) => r,
                Err(e) => panic!("{}", self.failure(&format!("window size: {e}")).await),
            };
            let outer = |o: u64, i: u64, want: u32| {
                u32::try_from((o + u64::from(want)).saturating_sub(i)).unwrap_or(want)
            };
            let (w, h) = (outer(rect.0, iw, width), outer(rect.1, ih, height));
            if let Err(e) = self.client.set_window_size(w, h).await {
                panic!(
                    "{}",
                    self.failure(&format!("resizing the window: {e}")).await
                );
            }
        }
    }

    /// Saves a screenshot of the page and returns the message to fail the test with:
    /// `panic!("{}", chrome.failure("why").await)`.
    pub async fn failure(&self, why: &str) -> String {
        let name = format!(
            "{}-{}",
            std::thread::current()
                .name()
                .unwrap_or("test")
                .replace("::", "-"),
            switchboard_domain::Timestamp::now().0
        );
        let url = match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(_) => "?".into(),
        };
        let png = self.screenshot(&name).await;
        format!("browser: {why} (at {url}; screenshot {})", png.display())
    }

    /// Closes the browser session and stops chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Owns the chromedriver process: dropping it kills the driver's process group (the driver
/// and the browser it started), also when a launch fails half-way or a test panics.
struct DriverGuard(Child);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        stop_group(&mut self.0);
    }
}

/// Kills the process group led by `child` (started with `process_group(0)`), then reaps it.
/// The group is killed before the driver is reaped: until then its pid, and so the group id,
/// cannot belong to anyone else.
fn stop_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < WAIT,
            "chromedriver did not listen on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `docs/screenshots/<lang>` in the repository: where [`Chrome::guide_shot`] saves the guides'
/// pictures.
pub fn guide_screenshot_dir(lang: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/screenshots")
        .join(lang)
}

/// `<target>/browser-screenshots`, next to the test binary's profile directory.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("browser-screenshots")
}
