//! Telegram sign-in for the web app (docs/web-login.md), by the rules of the system it
//! replaces: a new user signs in once over MTProto (one short-lived login client; the session is
//! stored once and the account's supervised client takes over); a returning user gets a
//! one-time code from the installation's **service bot** — no MTProto client is created,
//! connected or asked anything, and no stored session is decrypted; a remembered browser signs
//! in with no code at all.
//!
//! Codes are 6 digits from the OS CSPRNG, live 5 minutes, work once, allow 5 attempts (counted
//! atomically by the store before the comparison), and are stored as HMAC-SHA256 under a key
//! derived from the master key, compared in constant time. Starting a sign-in is limited per
//! phone and per client address ([`StartLimiter`]); checking a code counts against the client
//! address's failure window shared with password sign-ins.

use crate::audit::Audit;
use crate::auth::{AuthError, AuthService, LoginOutcome, SessionContext, random_token, token_hash};
use crate::bots::{BotService, StartCommand, StartHandler};
use crate::connect::{AccountService, ConnectError, SigninStep};
use crate::signin_limits::{Sends, StartLimiter, StartLimits};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::i18n::t;
use switchboard_domain::{
    Bot, BotId, BotLink, CodeRedemption, ErrorCode, InboxStore, Invite, Locale, NewBotNonce,
    NewInvite, NewSigninCode, NewSigninUser, NewTrustedDevice, PhoneUser, Redemption, Role,
    SETTING_SERVICE_BOT, SigninStore, Store, StoreError, Timestamp, TrustedDevice, TrustedDeviceId,
    User, UserId, WorkspaceId,
};
use switchboard_telegram::{CodeSent, LoggedIn, QrToken};
use zeroize::Zeroizing;

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// How long a code is accepted.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);
/// Checks allowed per code.
pub const CODE_MAX_ATTEMPTS: i32 = 5;
/// How long a remembered browser signs in without a code (absolute; never extended).
pub const DEVICE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a binding deep link works.
pub const NONCE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an invite works.
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The start of every binding payload (`t.me/<bot>?start=sb_…`), so the bot tells ours apart.
pub const NONCE_PREFIX: &str = "sb_";
/// The longest a start waits out the Bot API's `retry_after` to send a code (a burst of
/// sign-ins past the bot's 30 messages a second): the user is waiting for the answer, so a
/// longer wait ends `code_not_sent` and they start again.
pub const CODE_SEND_WAIT: Duration = Duration::from_secs(10);

/// Who may sign up by themselves (`auth.self_service`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfService {
    /// Telegram sign-in is off; users sign in with a password.
    Off,
    /// Anyone with a Telegram account may sign up.
    Open,
    /// New users need an invite from an owner of the main workspace.
    Invite,
}

impl SelfService {
    /// The configuration's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SelfService::Off => "off",
            SelfService::Open => "open",
            SelfService::Invite => "invite",
        }
    }

    /// Parses `off`, `open` or `invite`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(SelfService::Off),
            "open" => Some(SelfService::Open),
            "invite" => Some(SelfService::Invite),
            _ => None,
        }
    }
}

/// The sign-in settings from the configuration.
#[derive(Clone, Debug)]
pub struct SigninSettings {
    /// Who may sign up.
    pub self_service: SelfService,
    /// The service bot's username from the configuration (`auth.service_bot`); a choice made
    /// in Settings wins over it.
    pub service_bot: Option<String>,
    /// The limits on starting a sign-in.
    pub limits: StartLimits,
}

impl Default for SigninSettings {
    fn default() -> Self {
        Self {
            self_service: SelfService::Off,
            service_bot: None,
            limits: StartLimits::default(),
        }
    }
}

/// Why a sign-in step was refused.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// A rule of sign-in refused it (the code says which).
    #[error("{0}")]
    Refused(ErrorCode),
    /// Too many starts for this phone or from this address.
    #[error("rate limited")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The Telegram flow failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Opening the session failed (or the address is throttled).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ErrorCode> for SigninError {
    fn from(code: ErrorCode) -> Self {
        SigninError::Refused(code)
    }
}

/// What a request tells about its client.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// Its address.
    pub ip: Option<IpAddr>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// The trusted-device cookie it sent.
    pub device_token: Option<String>,
}

impl Client {
    fn ip_text(&self) -> Option<String> {
        self.ip.map(|a| a.to_string())
    }
}

/// How the user asked to sign in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartMethod {
    /// The service bot's code for a known phone, Telegram's own code for a new one.
    #[default]
    Auto,
    /// Telegram's code (the MTProto flow), also for a known phone.
    Telegram,
    /// A QR code scanned in the Telegram app (the MTProto flow).
    Qr,
}

/// Where a start leads, decided before it takes its place in the limits (which count what it
/// sends to the phone's owner).
enum Route {
    /// The service bot sends a code to the user's bound chat.
    BotCode { user: User, bot: Bot, link: BotLink },
    /// The user's chat with the service bot is not bound: a binding link.
    BindBot { user: User, bot: Bot },
    /// Telegram's own flow (a code, or a QR code).
    Telegram(StartMethod),
}

impl Route {
    fn sends(&self) -> Sends {
        match self {
            Route::BotCode { .. } => Sends::BotCode,
            Route::Telegram(StartMethod::Qr) | Route::BindBot { .. } => Sends::Nothing,
            Route::Telegram(_) => Sends::TelegramCode,
        }
    }
}

/// A finished sign-in.
pub struct SignedIn {
    /// The web session.
    pub login: LoginOutcome,
    /// A new trusted-device token to set as a cookie ("remember this device").
    pub device_token: Option<String>,
    /// A deep link that binds the user's chat with the service bot, when it is not bound yet.
    pub bot_link: Option<String>,
    /// How: `trusted_device`, `bot_code` or `telegram`.
    pub method: &'static str,
    /// True when this sign-in created the user.
    pub new_user: bool,
}

/// Where a Telegram (MTProto) sign-in flow stands.
#[derive(Debug)]
pub enum TelegramStep {
    /// Telegram sent a code.
    CodeSent(CodeSent),
    /// The account's 2FA password is needed.
    PasswordNeeded {
        /// The hint the owner set.
        hint: Option<String>,
    },
    /// Waiting for the QR code to be scanned.
    QrPending(QrToken),
}

/// What `start` led to.
pub enum StartOutcome {
    /// Signed in (a remembered browser).
    SignedIn(Box<SignedIn>),
    /// The service bot sent a code; check it with `verify`.
    CodeSent {
        /// The bot's username.
        bot_username: String,
    },
    /// The user's chat with the service bot is not bound: open this link (the bot then binds
    /// it and sends a code), or choose the Telegram flow.
    BindBot {
        /// `https://t.me/<bot>?start=<nonce>`.
        link: String,
        /// The bot's username.
        bot_username: String,
    },
    /// A Telegram (MTProto) flow started.
    Telegram {
        /// The flow's id (the secret that continues it).
        flow_id: String,
        /// Where it stands.
        step: TelegramStep,
    },
}

/// What a step of a Telegram flow brings (no `Debug`: it may hold the 2FA password).
#[derive(Clone, Copy)]
pub enum FlowInput<'a> {
    /// The code Telegram sent.
    Code(&'a str),
    /// The account's 2FA password.
    Password(&'a str),
    /// Nothing: a QR flow is checked (its token regenerated before it expires).
    Poll,
}

/// What a Telegram flow's step led to.
pub enum FlowOutcome {
    /// More is needed.
    Pending(TelegramStep),
    /// Signed in.
    SignedIn(Box<SignedIn>),
}

/// A binding link for Settings.
#[derive(Clone, Debug)]
pub struct BotLinkOffer {
    /// `https://t.me/<bot>?start=<nonce>`.
    pub link: String,
    /// The bot's username.
    pub bot_username: String,
    /// When the link stops working.
    pub expires_at: Timestamp,
}

/// The installation's sign-in settings as Settings shows them.
#[derive(Clone, Debug)]
pub struct SigninView {
    /// `auth.self_service`.
    pub self_service: SelfService,
    /// The service bot in force.
    pub service_bot: Option<Bot>,
    /// Where it was chosen: `settings`, `config`, or `None` without one.
    pub service_bot_source: Option<&'static str>,
}

#[derive(Default)]
struct Pending {
    /// Telegram flows of web sign-ins: the phone typed and the invite given.
    flows: HashMap<String, (Instant, String, Option<String>)>,
    /// Binding nonces made by a sign-in waiting for its code: who asked.
    binds: HashMap<String, (Instant, Client)>,
}

struct Inner {
    store: Arc<dyn Store>,
    signin: Arc<dyn SigninStore>,
    bots_store: Arc<dyn InboxStore>,
    auth: Arc<AuthService>,
    accounts: Arc<AccountService>,
    bots: BotService,
    code_key: Zeroizing<[u8; 32]>,
    limiter: StartLimiter,
    settings: SigninSettings,
    /// Per-process state of flows in progress.
    pending: Mutex<Pending>,
}

/// Telegram sign-in. Cloning shares it.
#[derive(Clone)]
pub struct SigninService {
    inner: Arc<Inner>,
}

/// What a new sign-in service is built from.
pub struct SigninParts {
    /// Users, sessions, audit.
    pub store: Arc<dyn Store>,
    /// Sign-in's own storage.
    pub signin: Arc<dyn SigninStore>,
    /// Bots.
    pub bots_store: Arc<dyn InboxStore>,
    /// Web sessions.
    pub auth: Arc<AuthService>,
    /// The Telegram flows and the supervisor.
    pub accounts: Arc<AccountService>,
    /// The bots (to send codes).
    pub bots: BotService,
    /// The key codes are hashed with (derived from the master key).
    pub code_key: Zeroizing<[u8; 32]>,
}

/// The phone's digits, if it looks like an international number (7–15 digits).
pub fn normalize_phone(phone: &str) -> Option<String> {
    if phone.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (7..=15).contains(&digits.len()).then_some(digits)
}

/// A uniformly drawn code of [`CODE_DIGITS`] digits from the OS CSPRNG.
fn new_code() -> Result<String, SigninError> {
    const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
    loop {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|_| AuthError::Hash)?;
        let n = u32::from_le_bytes(b);
        if n < LIMIT {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// A short name of the browser for the bot's message.
fn browser_of(user_agent: Option<&str>) -> Option<&'static str> {
    let ua = user_agent?;
    let known = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("YaBrowser/", "Yandex Browser"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    known.iter().find(|(k, _)| ua.contains(k)).map(|(_, n)| *n)
}

fn locale_of(language_code: Option<&str>) -> Option<Locale> {
    let code = language_code?.get(..2)?.to_ascii_lowercase();
    code.parse().ok()
}

impl SigninService {
    /// Creates the service.
    pub fn new(parts: SigninParts, settings: SigninSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                signin: parts.signin,
                bots_store: parts.bots_store,
                auth: parts.auth,
                accounts: parts.accounts,
                bots: parts.bots,
                code_key: parts.code_key,
                limiter: StartLimiter::new(settings.limits),
                settings,
                pending: Mutex::new(Pending::default()),
            }),
        }
    }

    /// How long a phone waits between two codes (the page's resend countdown).
    pub fn resend_after(&self) -> Duration {
        self.inner.limiter.limits().phone_interval
    }

    /// `auth.self_service`.
    pub fn self_service(&self) -> SelfService {
        self.inner.settings.self_service
    }

    fn code_hash(&self, user: UserId, code: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.code_key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("signin-code:{}:{code}", user.0).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn check_on(&self) -> Result<(), SigninError> {
        if self.inner.settings.self_service == SelfService::Off {
            return Err(ErrorCode::SelfServiceOff.into());
        }
        Ok(())
    }

    /// The service bot in force: the one chosen in Settings, else the one `auth.service_bot`
    /// names; `None` when neither names an active bot.
    pub async fn service_bot(&self) -> Result<Option<Bot>, StoreError> {
        Ok(self.service_bot_with_source().await?.map(|(b, _)| b))
    }

    async fn service_bot_with_source(&self) -> Result<Option<(Bot, &'static str)>, StoreError> {
        let found = self.find_service_bot().await?;
        // Its chats with users carry sign-in codes: no account ingests them into an inbox.
        self.inner
            .accounts
            .supervisor()
            .set_sign_in_bot(found.as_ref().map(|(b, _)| b.telegram_bot_id));
        Ok(found)
    }

    /// Looks up the service bot in force (see [`Signin::service_bot`]); at start, the server
    /// calls [`Signin::service_bot`] once so the accounts know it before they connect.
    async fn find_service_bot(&self) -> Result<Option<(Bot, &'static str)>, StoreError> {
        let inner = &self.inner;
        if let Some(id) = inner.signin.get_setting(SETTING_SERVICE_BOT).await?
            && let Ok(id) = id.parse::<i64>()
        {
            return match inner.bots_store.load_bot(BotId(id)).await {
                Ok(bot) if bot.active => Ok(Some((bot, "settings"))),
                Ok(_) | Err(StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            };
        }
        let Some(name) = inner.settings.service_bot.as_deref() else {
            return Ok(None);
        };
        let name = name.trim_start_matches('@');
        Ok(inner
            .bots_store
            .list_active_bots()
            .await?
            .into_iter()
            .find(|b| b.username.eq_ignore_ascii_case(name))
            .map(|b| (b, "config")))
    }

    // --- start and verify ---

    /// Starts a sign-in with a phone number (see the module's rules).
    pub async fn start(
        &self,
        phone: &str,
        method: StartMethod,
        invite: Option<&str>,
        client: &Client,
    ) -> Result<StartOutcome, SigninError> {
        self.check_on()?;
        let phone = normalize_phone(phone).ok_or(ErrorCode::PhoneInvalid)?;
        let inner = &self.inner;
        let known = inner.signin.find_user_by_phone(&phone).await?;
        if let (Some(known), Some(token)) = (&known, client.device_token.as_deref())
            && !known.user.disabled
            && inner
                .signin
                .use_trusted_device(known.user.id, &token_hash(token), Timestamp::now())
                .await?
                .is_some()
        {
            let done = self
                .signed_in(known.user.clone(), "trusted_device", false, false, client)
                .await?;
            return Ok(StartOutcome::SignedIn(Box::new(done)));
        }
        // A new user's invite is checked first: a refusal costs the phone no start.
        let invite_hash = match (known.is_some(), inner.settings.self_service) {
            (false, SelfService::Invite) => {
                let hash = invite.map(token_hash);
                let valid = match &hash {
                    Some(h) => inner.signin.invite_is_valid(h, Timestamp::now()).await?,
                    None => false,
                };
                if !valid {
                    return Err(ErrorCode::InviteRequired.into());
                }
                hash
            }
            _ => None,
        };
        let route = match (known, method) {
            (Some(known), StartMethod::Auto) => self.returning_route(known).await?,
            _ => Route::Telegram(method),
        };
        inner
            .limiter
            .admit(&phone, route.sends(), client.ip)
            .map_err(|retry_after_secs| SigninError::RateLimited { retry_after_secs })?;
        match route {
            Route::BotCode { user, bot, link } => {
                if !user.disabled {
                    self.send_code(&user, &bot, &link, client).await?;
                }
                Ok(StartOutcome::CodeSent {
                    bot_username: bot.username,
                })
            }
            Route::BindBot { user, bot } => {
                let offer = self.new_nonce(user.id, &bot, Some(client)).await?;
                Ok(StartOutcome::BindBot {
                    link: offer.link,
                    bot_username: offer.bot_username,
                })
            }
            Route::Telegram(method) => self.start_telegram(&phone, method, invite_hash).await,
        }
    }

    /// How a known phone's user signs in when they made no choice: the service bot's code when
    /// their chat with it is bound, its binding link when not; Telegram's own code when there
    /// is no service bot (the only way in then).
    async fn returning_route(&self, known: PhoneUser) -> Result<Route, SigninError> {
        let Some(bot) = self.service_bot().await? else {
            return Ok(Route::Telegram(StartMethod::Telegram));
        };
        let user = known.user;
        Ok(match self.inner.signin.get_bot_link(user.id).await? {
            Some(link) if link.bot_id == bot.id => Route::BotCode { user, bot, link },
            _ => Route::BindBot { user, bot },
        })
    }

    async fn start_telegram(
        &self,
        phone: &str,
        method: StartMethod,
        invite_hash: Option<String>,
    ) -> Result<StartOutcome, SigninError> {
        let accounts = &self.inner.accounts;
        let (flow_id, step) = if method == StartMethod::Qr {
            let (id, token) = accounts.signin_start_qr().await?;
            (id, TelegramStep::QrPending(token))
        } else {
            let (id, sent) = accounts.signin_start_phone(phone).await?;
            (id, TelegramStep::CodeSent(sent))
        };
        let mut pending = self.pending();
        pending
            .flows
            .retain(|_, (at, _, _)| at.elapsed() < Duration::from_secs(15 * 60));
        pending.flows.insert(
            flow_id.clone(),
            (Instant::now(), phone.to_string(), invite_hash),
        );
        Ok(StartOutcome::Telegram { flow_id, step })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send_code(
        &self,
        user: &User,
        bot: &Bot,
        link: &BotLink,
        client: &Client,
    ) -> Result<(), SigninError> {
        let inner = &self.inner;
        let code = Zeroizing::new(new_code()?);
        let now = Timestamp::now();
        let ip = client.ip_text();
        // The audit record is written with the code, in one transaction; a code that does
        // not reach Telegram gets a second record.
        let audit = Audit::new("auth.code_sent")
            .actor(user.id)
            .target(format!("user:{}", user.id))
            .ip(ip.as_deref())
            .details(serde_json::json!({"bot_id": bot.id}));
        inner
            .signin
            .create_signin_code(
                &NewSigninCode {
                    user_id: user.id,
                    code_hash: self.code_hash(user.id, &code),
                    created_at: now,
                    expires_at: now.plus(CODE_TTL),
                    ip: ip.clone(),
                },
                &audit.into_event(),
            )
            .await?;
        let locale = link.locale.or(user.locale).unwrap_or(Locale::En);
        let text = Zeroizing::new(
            t(locale, "signin_bot_code")
                .replace("{code}", &code)
                .replace(
                    "{ip}",
                    ip.as_deref().unwrap_or(t(locale, "signin_unknown_address")),
                )
                .replace(
                    "{browser}",
                    browser_of(client.user_agent.as_deref())
                        .unwrap_or(t(locale, "signin_unknown_browser")),
                ),
        );
        if send_code_message(inner, bot.id, link.chat_id, &text).await {
            return Ok(());
        }
        Audit::new("auth.code_not_delivered")
            .actor(user.id)
            .target(format!("user:{}", user.id))
            .ip(ip.as_deref())
            .details(serde_json::json!({"bot_id": bot.id}))
            .record(&*inner.store)
            .await;
        Err(ErrorCode::CodeNotSent.into())
    }

    /// Checks a code the service bot sent and signs in. The client address's failure window
    /// (shared with password sign-ins) is taken first. The check is one transaction: the
    /// attempt is counted, the keyed hashes compared and, on a match, the code used up, the
    /// session opened (the browser remembered, when asked) and the sign-in audited together
    /// — one commit.
    pub async fn verify(
        &self,
        phone: &str,
        code: &str,
        remember_device: bool,
        client: &Client,
    ) -> Result<SignedIn, SigninError> {
        self.check_on()?;
        let inner = &self.inner;
        let ticket = inner.auth.admit_address(client.ip).await?;
        let phone = normalize_phone(phone).ok_or(ErrorCode::PhoneInvalid)?;
        let code = code.trim();
        if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ErrorCode::CodeInvalid.into());
        }
        let Some(known) = inner.signin.find_user_by_phone(&phone).await? else {
            return Err(ErrorCode::CodeInvalid.into());
        };
        let user = known.user;
        let id = user.id;
        let now = Timestamp::now();
        let ip = client.ip_text();
        // What a match writes is made ready first: a user who may not sign in (disabled, or
        // in no workspace) still uses the code up, and nothing else is written.
        let (session, login, audit) = match inner.auth.first_membership(&user).await {
            Ok(membership) => {
                let (session, login) = inner.auth.prepare_session(
                    user,
                    membership,
                    ip.as_deref(),
                    client.user_agent.as_deref(),
                    now,
                )?;
                let audit = AuthService::login_audit(&login, "bot_code", ip.as_deref());
                (Some(session), Ok(login), audit)
            }
            Err(e @ (AuthError::InvalidCredentials | AuthError::NoWorkspace)) => {
                let reason = if matches!(e, AuthError::NoWorkspace) {
                    "no_workspace"
                } else {
                    "disabled"
                };
                let audit = Audit::new("auth.login_refused")
                    .actor(id)
                    .target(format!("user:{id}"))
                    .ip(ip.as_deref())
                    .details(serde_json::json!({"method": "bot_code", "reason": reason}));
                (None, Err(e), audit)
            }
            Err(e) => return Err(e.into()),
        };
        let device = (remember_device && session.is_some())
            .then(|| self.new_device(id, client, now))
            .transpose()?;
        let redemption = inner
            .signin
            .redeem_signin_code(&CodeRedemption {
                user: id,
                presented_hash: &self.code_hash(id, code),
                now,
                max_attempts: CODE_MAX_ATTEMPTS,
                session: session.as_ref(),
                device: device.as_ref().map(|(d, _)| d),
                audit: &audit.into_event(),
            })
            .await?;
        match redemption {
            Redemption::NoLiveCode => Err(ErrorCode::CodeExpired.into()),
            Redemption::Mismatch { attempts } => {
                Audit::new("auth.code_failed")
                    .actor(id)
                    .target(format!("user:{id}"))
                    .ip(ip.as_deref())
                    .details(serde_json::json!({"attempt": attempts}))
                    .record(&*inner.store)
                    .await;
                Err(ErrorCode::CodeInvalid.into())
            }
            Redemption::Redeemed { .. } => match login {
                Ok(login) => {
                    inner.auth.release_address(ticket);
                    inner.limiter.signed_in(&phone);
                    self.finish(login, device.map(|(_, token)| token), "bot_code", false)
                        .await
                }
                Err(AuthError::NoWorkspace) => Err(AuthError::NoWorkspace.into()),
                Err(_) => Err(ErrorCode::CodeInvalid.into()),
            },
        }
    }

    async fn signed_in(
        &self,
        user: User,
        method: &'static str,
        remember_device: bool,
        new_user: bool,
        client: &Client,
    ) -> Result<SignedIn, SigninError> {
        let inner = &self.inner;
        let ip = client.ip_text();
        let id = user.id;
        let login = inner
            .auth
            .sign_in_as(user, method, ip.as_deref(), client.user_agent.as_deref())
            .await?;
        let device_token = if remember_device {
            let (device, token) = self.new_device(id, client, Timestamp::now())?;
            inner.signin.create_trusted_device(&device).await?;
            Some(token)
        } else {
            None
        };
        self.finish(login, device_token, method, new_user).await
    }

    /// A signed-in user's answer: with the service bot's binding link when their chat with it
    /// is not bound yet.
    async fn finish(
        &self,
        login: LoginOutcome,
        device_token: Option<String>,
        method: &'static str,
        new_user: bool,
    ) -> Result<SignedIn, SigninError> {
        let id = login.user.id;
        let bot_link = match self.service_bot().await? {
            Some(bot)
                if self
                    .inner
                    .signin
                    .get_bot_link(id)
                    .await?
                    .is_none_or(|l| l.bot_id != bot.id) =>
            {
                Some(self.new_nonce(id, &bot, None).await?.link)
            }
            _ => None,
        };
        Ok(SignedIn {
            login,
            device_token,
            bot_link,
            method,
            new_user,
        })
    }

    // --- the Telegram (MTProto) flow of a sign-in ---

    /// Takes one step of a Telegram flow: the code Telegram sent, the 2FA password, or a
    /// check of a QR flow.
    pub async fn telegram_step(
        &self,
        flow_id: &str,
        input: FlowInput<'_>,
        remember_device: bool,
        client: &Client,
    ) -> Result<FlowOutcome, SigninError> {
        self.check_on()?;
        let accounts = &self.inner.accounts;
        let step = match input {
            FlowInput::Code(code) => accounts.signin_code(flow_id, code).await?,
            FlowInput::Password(password) => accounts.signin_password(flow_id, password).await?,
            FlowInput::Poll => accounts.signin_poll(flow_id).await?,
        };
        self.after(flow_id, step, remember_device, client).await
    }

    /// Sends Telegram's code again by the next method.
    pub async fn telegram_resend(&self, flow_id: &str) -> Result<CodeSent, SigninError> {
        self.check_on()?;
        Ok(self.inner.accounts.signin_resend(flow_id).await?)
    }

    /// Cancels a flow (its client is closed).
    pub async fn telegram_cancel(&self, flow_id: &str) -> Result<(), SigninError> {
        self.check_on()?;
        self.pending().flows.remove(flow_id);
        Ok(self.inner.accounts.signin_cancel(flow_id).await?)
    }

    async fn after(
        &self,
        flow_id: &str,
        step: SigninStep,
        remember_device: bool,
        client: &Client,
    ) -> Result<FlowOutcome, SigninError> {
        match step {
            SigninStep::PasswordNeeded { hint } => {
                Ok(FlowOutcome::Pending(TelegramStep::PasswordNeeded { hint }))
            }
            SigninStep::QrPending(token) => {
                Ok(FlowOutcome::Pending(TelegramStep::QrPending(token)))
            }
            SigninStep::Done(done) => {
                let (phone, invite) = self
                    .pending()
                    .flows
                    .remove(flow_id)
                    .map(|(_, p, i)| (Some(p), i))
                    .unwrap_or((None, None));
                let signed = self
                    .complete(done, phone, invite, remember_device, client)
                    .await?;
                Ok(FlowOutcome::SignedIn(Box::new(signed)))
            }
        }
    }

    /// A finished Telegram sign-in: the user (created with their personal workspace when new),
    /// the account with the session stored once (its supervised client started after the
    /// login client closed), then the web session.
    async fn complete(
        &self,
        done: LoggedIn,
        typed_phone: Option<String>,
        invite_hash: Option<String>,
        remember_device: bool,
        client: &Client,
    ) -> Result<SignedIn, SigninError> {
        let inner = &self.inner;
        let profile = done.profile.clone();
        if let Some(typed) = &typed_phone {
            inner.limiter.signed_in(typed);
        }
        let phone = profile.phone.clone().or(typed_phone);
        let mut existing = inner
            .signin
            .find_user_by_telegram_id(profile.telegram_user_id)
            .await?;
        if existing.is_none()
            && let Some(p) = &phone
        {
            existing = inner.signin.find_user_by_phone(p).await?;
        }
        let (user, workspace, new_user) = match existing {
            Some(known) => {
                let memberships = inner.store.list_user_memberships(known.user.id).await?;
                let ws = memberships
                    .iter()
                    .find(|m| m.role == Role::Owner)
                    .or(memberships.first())
                    .map(|m| m.workspace_id)
                    .ok_or(AuthError::NoWorkspace)?;
                (known.user, ws, false)
            }
            None => {
                let phone = phone.ok_or(ErrorCode::PhoneInvalid)?;
                if inner.settings.self_service == SelfService::Invite && invite_hash.is_none() {
                    return Err(ErrorCode::InviteRequired.into());
                }
                let name = format!(
                    "{} {}",
                    profile.first_name,
                    profile.last_name.clone().unwrap_or_default()
                )
                .trim()
                .to_string();
                let display_name = if name.is_empty() { phone.clone() } else { name };
                let (user, ws, _) = inner
                    .signin
                    .create_signin_user(
                        &NewSigninUser {
                            phone,
                            telegram_user_id: profile.telegram_user_id,
                            workspace_name: display_name.clone(),
                            display_name,
                            locale: None,
                            invite_hash,
                        },
                        Timestamp::now(),
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(code) => SigninError::Refused(code),
                        other => SigninError::Store(other),
                    })?;
                Audit::new("auth.signed_up")
                    .workspace(ws.id)
                    .actor(user.id)
                    .target(format!("user:{}", user.id))
                    .ip(client.ip_text().as_deref())
                    .record(&*inner.store)
                    .await;
                (user, ws.id, true)
            }
        };
        inner
            .accounts
            .finish_signin(workspace, user.id, done)
            .await?;
        self.signed_in(user, "telegram", remember_device, new_user, client)
            .await
    }

    // --- the service bot's binding ---

    async fn new_nonce(
        &self,
        user: UserId,
        bot: &Bot,
        waiting: Option<&Client>,
    ) -> Result<BotLinkOffer, SigninError> {
        let nonce = format!("{NONCE_PREFIX}{}", random_token()?);
        let hash = token_hash(&nonce);
        let now = Timestamp::now();
        let expires_at = now.plus(NONCE_TTL);
        self.inner
            .signin
            .create_bot_nonce(&NewBotNonce {
                nonce_hash: hash.clone(),
                user_id: user,
                bot_id: bot.id,
                created_at: now,
                expires_at,
            })
            .await?;
        if let Some(client) = waiting {
            let mut pending = self.pending();
            pending.binds.retain(|_, (at, _)| at.elapsed() < NONCE_TTL);
            pending.binds.insert(hash, (Instant::now(), client.clone()));
        }
        Ok(BotLinkOffer {
            link: format!("https://t.me/{}?start={nonce}", bot.username),
            bot_username: bot.username.clone(),
            expires_at,
        })
    }

    /// A new binding link for a signed-in user (Settings).
    pub async fn bot_link(&self, user: UserId) -> Result<BotLinkOffer, SigninError> {
        let bot = self
            .service_bot()
            .await?
            .ok_or(ErrorCode::ServiceBotMissing)?;
        self.new_nonce(user, &bot, None).await
    }

    /// The user's binding with the service bot in force, if any.
    pub async fn binding(&self, user: UserId) -> Result<Option<BotLink>, SigninError> {
        let Some(bot) = self.service_bot().await? else {
            return Ok(None);
        };
        Ok(self
            .inner
            .signin
            .get_bot_link(user)
            .await?
            .filter(|l| l.bot_id == bot.id))
    }

    async fn bind(&self, bot: &Bot, command: &StartCommand) -> Result<bool, SigninError> {
        let inner = &self.inner;
        let hash = token_hash(&command.payload);
        let now = Timestamp::now();
        let user = inner.signin.claim_bot_nonce(&hash, bot.id, now).await?;
        let waiting = self.pending().binds.remove(&hash).map(|(_, c)| c);
        let owner = inner
            .signin
            .find_user_by_telegram_id(command.from_id)
            .await?;
        let locale = locale_of(command.language_code.as_deref());
        let Some(user) = user.filter(|u| owner.as_ref().is_some_and(|o| o.user.id == *u)) else {
            return Ok(false);
        };
        let link = BotLink {
            user_id: user,
            bot_id: bot.id,
            chat_id: command.chat_id,
            telegram_user_id: command.from_id,
            locale,
            bound_at: now,
        };
        inner.signin.set_bot_link(&link).await?;
        let loc = locale.unwrap_or(Locale::En);
        if let Err(e) = inner
            .bots
            .transport()
            .send_text(bot.id, command.chat_id, t(loc, "signin_bot_bound"), &[])
            .await
        {
            tracing::warn!(bot_id = %bot.id, error = ?e, "could not confirm a binding");
        }
        Audit::new("auth.bot_bound")
            .actor(user)
            .target(format!("user:{user}"))
            .details(serde_json::json!({"bot_id": bot.id}))
            .record(&*inner.store)
            .await;
        if let (Some(client), Some(owner)) = (waiting, owner)
            && !owner.user.disabled
        {
            self.send_code(&owner.user, bot, &link, &client).await?;
        }
        Ok(true)
    }

    // --- trusted devices ---

    /// A browser to remember ("remember this device") and its cookie token; only the
    /// token's hash is stored.
    fn new_device(
        &self,
        user: UserId,
        client: &Client,
        now: Timestamp,
    ) -> Result<(NewTrustedDevice, String), SigninError> {
        let token = random_token()?;
        let device = NewTrustedDevice {
            user_id: user,
            token_hash: token_hash(&token),
            created_at: now,
            expires_at: now.plus(DEVICE_TTL),
            user_agent: client
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(256).collect()),
            ip: client.ip_text(),
        };
        Ok((device, token))
    }

    /// The user's remembered browsers, newest first.
    pub async fn devices(&self, user: UserId) -> Result<Vec<TrustedDevice>, SigninError> {
        Ok(self
            .inner
            .signin
            .list_trusted_devices(user, Timestamp::now())
            .await?)
    }

    /// Forgets one of the user's browsers (audited); `NotFound` if they have no such one.
    pub async fn revoke_device(
        &self,
        ctx: &SessionContext,
        id: TrustedDeviceId,
        ip: Option<&str>,
    ) -> Result<(), SigninError> {
        if !self
            .inner
            .signin
            .delete_trusted_device(ctx.user.id, id)
            .await?
        {
            return Err(SigninError::Store(StoreError::NotFound));
        }
        Audit::new("auth.device_revoked")
            .workspace(ctx.membership.workspace_id)
            .actor(ctx.user.id)
            .target(format!("user:{}", ctx.user.id))
            .ip(ip)
            .details(serde_json::json!({"device_id": id}))
            .record(&*self.inner.store)
            .await;
        Ok(())
    }

    /// Forgets every remembered browser of `user` (their own choice, an admin's action or a
    /// Telegram logout; audited with the actor); how many.
    pub async fn revoke_all_devices(
        &self,
        user: UserId,
        actor: Option<(WorkspaceId, UserId)>,
        ip: Option<&str>,
    ) -> Result<u64, SigninError> {
        let n = self.inner.signin.delete_user_trusted_devices(user).await?;
        let mut audit = Audit::new("auth.devices_revoked")
            .target(format!("user:{user}"))
            .ip(ip)
            .details(serde_json::json!({"count": n}));
        if let Some((ws, actor)) = actor {
            audit = audit.workspace(ws).actor(actor);
        }
        audit.record(&*self.inner.store).await;
        Ok(n)
    }

    // --- installation settings (owners of the main workspace) ---

    /// True when the member is an owner of the main workspace.
    pub async fn is_installation_owner(&self, ctx: &SessionContext) -> Result<bool, SigninError> {
        let main = self.inner.signin.main_workspace().await?;
        Ok(ctx.membership.role == Role::Owner && main == Some(ctx.membership.workspace_id))
    }

    async fn require_installation_owner(&self, ctx: &SessionContext) -> Result<(), SigninError> {
        if self.is_installation_owner(ctx).await? {
            Ok(())
        } else {
            Err(ErrorCode::Forbidden.into())
        }
    }

    /// The sign-in settings in force.
    pub async fn view(&self) -> Result<SigninView, SigninError> {
        let found = self.service_bot_with_source().await?;
        Ok(SigninView {
            self_service: self.inner.settings.self_service,
            service_bot_source: found.as_ref().map(|(_, s)| *s),
            service_bot: found.map(|(b, _)| b),
        })
    }

    /// Designates (or, with `None`, stops designating in Settings) the service bot: a bot of
    /// the main workspace, chosen by one of its owners (audited).
    pub async fn set_service_bot(
        &self,
        ctx: &SessionContext,
        bot: Option<BotId>,
        ip: Option<&str>,
    ) -> Result<SigninView, SigninError> {
        self.require_installation_owner(ctx).await?;
        let inner = &self.inner;
        let ws = ctx.membership.workspace_id;
        if let Some(id) = bot {
            match inner.bots_store.get_bot(ws, id).await {
                Ok(_) => {}
                Err(StoreError::NotFound) => return Err(ErrorCode::ServiceBotInvalid.into()),
                Err(e) => return Err(e.into()),
            }
        }
        let value = bot.map(|b| b.0.to_string());
        inner
            .signin
            .set_setting(
                SETTING_SERVICE_BOT,
                value.as_deref(),
                Some(ctx.user.id),
                Timestamp::now(),
            )
            .await?;
        Audit::new("auth.service_bot_set")
            .workspace(ws)
            .actor(ctx.user.id)
            .ip(ip)
            .details(serde_json::json!({"bot_id": bot}))
            .record(&*inner.store)
            .await;
        self.view().await
    }

    /// Creates a single-use invite (owners of the main workspace; audited); returns its token
    /// (shown once) and the invite.
    pub async fn create_invite(
        &self,
        ctx: &SessionContext,
        ip: Option<&str>,
    ) -> Result<(String, Invite), SigninError> {
        self.require_installation_owner(ctx).await?;
        let token = random_token()?;
        let now = Timestamp::now();
        let invite = self
            .inner
            .signin
            .create_invite(&NewInvite {
                token_hash: token_hash(&token),
                created_by: ctx.user.id,
                created_at: now,
                expires_at: now.plus(INVITE_TTL),
            })
            .await?;
        Audit::new("auth.invite_created")
            .workspace(ctx.membership.workspace_id)
            .actor(ctx.user.id)
            .ip(ip)
            .details(serde_json::json!({"invite_id": invite.id}))
            .record(&*self.inner.store)
            .await;
        Ok((token, invite))
    }
}

#[async_trait::async_trait]
impl StartHandler for SigninService {
    async fn on_start(&self, bot: &Bot, command: &StartCommand) -> bool {
        if !command.payload.starts_with(NONCE_PREFIX) {
            return false;
        }
        match self.service_bot().await {
            Ok(Some(service)) if service.id == bot.id => {}
            _ => return false,
        }
        let bound = match self.bind(bot, command).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(bot_id = %bot.id, error = %e, "binding the service bot failed");
                false
            }
        };
        if !bound {
            let loc = locale_of(command.language_code.as_deref()).unwrap_or(Locale::En);
            if let Err(e) = self
                .inner
                .bots
                .transport()
                .send_text(
                    bot.id,
                    command.chat_id,
                    t(loc, "signin_bot_bind_refused"),
                    &[],
                )
                .await
            {
                tracing::warn!(bot_id = %bot.id, error = ?e, "could not refuse a binding");
            }
        }
        true
    }
}

/// Sends a code message through the service bot; a `retry_after` the Bot API answers (the
/// bot's 30 messages a second, exceeded by a burst of sign-ins) is waited out as long as the
/// waits stay within [`CODE_SEND_WAIT`] in all. True when the message was delivered.
async fn send_code_message(inner: &Inner, bot: BotId, chat_id: i64, text: &str) -> bool {
    let deadline = Instant::now() + CODE_SEND_WAIT;
    loop {
        match inner
            .bots
            .transport()
            .send_text(bot, chat_id, text, &[])
            .await
        {
            Ok(_) => return true,
            Err(crate::outbox::SendFailure::Retry {
                after: Some(wait), ..
            }) if Instant::now() + wait <= deadline => tokio::time::sleep(wait).await,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn phones_are_digits_of_an_international_number() {
        assert_eq!(
            normalize_phone("+7 900 123-45-67").as_deref(),
            Some("79001234567")
        );
        assert_eq!(normalize_phone("123"), None);
        assert_eq!(normalize_phone("+1 555 CALL NOW"), None);
        assert_eq!(normalize_phone("1234567890123456"), None);
    }

    #[test]
    fn codes_have_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..50).map(|_| new_code().unwrap()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.len() > 40);
    }

    #[test]
    fn the_browser_and_the_language_are_read_loosely() {
        assert_eq!(
            browser_of(Some("Mozilla/5.0 … Chrome/120.0 Safari/537.36")),
            Some("Chrome")
        );
        assert_eq!(browser_of(Some("curl/8")), None);
        assert_eq!(locale_of(Some("ru-RU")), Some(Locale::Ru));
        assert_eq!(locale_of(Some("de")), None);
    }
}
