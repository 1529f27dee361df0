//! The connect flows: [`PhoneLogin`] (code, resend, 2FA) and [`QrLogin`] (token, approval,
//! DC migration, 2FA). Each flow owns one temporary client for its whole life and closes it
//! before reporting success, so the supervisor can then start the account's one live client.
//!
//! A flow works on a session that is not yet an account ([`DbSession::new_login`]); on success
//! the caller creates or updates the account and calls [`LoggedIn::persist_into`]. Nothing is
//! written for a login that never finishes, and re-login of an `unauthorized` account replaces
//! its session only once the new one works. Codes and passwords are never logged.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use grammers_client::Client;
use grammers_client::SignInError;
use grammers_client::client::PasswordToken;
use grammers_client::tl;
use grammers_mtsender::InvocationError;
use grammers_session::Session;
use grammers_session::types::{PeerAuth, PeerInfo, UpdateState, UpdatesState};
use grammers_session::updates::UpdatesLike;
use switchboard_domain::{AccountId, AccountProfile, AccountStore};
use switchboard_vault::Keyring;

use crate::client::{Connection, RetryOptions, connect};
use crate::error::Error;
use crate::session::DbSession;
use crate::settings::TelegramSettings;

/// Wrong codes accepted before a new code must be requested.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// A QR token is regenerated when it has less than this left.
pub const QR_REFRESH_MARGIN: Duration = Duration::from_secs(5);

/// How Telegram delivered (or will deliver) a login code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeDelivery {
    /// A message in another Telegram app of the account.
    App,
    /// A text message.
    Sms,
    /// A phone call reading the code.
    Call,
    /// A flash call (the code is in the caller's number).
    FlashCall,
    /// A missed call (the code is the end of the caller's number).
    MissedCall,
    /// An e-mail.
    Email,
    /// Something else (Fragment, Firebase, ...).
    Other,
}

impl CodeDelivery {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Sms => "sms",
            Self::Call => "call",
            Self::FlashCall => "flash_call",
            Self::MissedCall => "missed_call",
            Self::Email => "email",
            Self::Other => "other",
        }
    }

    fn from_sent(t: &tl::enums::auth::SentCodeType) -> Self {
        use tl::enums::auth::SentCodeType as T;
        match t {
            T::App(_) => Self::App,
            T::Sms(_) | T::SmsWord(_) | T::SmsPhrase(_) => Self::Sms,
            T::Call(_) => Self::Call,
            T::FlashCall(_) => Self::FlashCall,
            T::MissedCall(_) => Self::MissedCall,
            T::EmailCode(_) | T::SetUpEmailRequired(_) => Self::Email,
            _ => Self::Other,
        }
    }

    fn from_next(t: &tl::enums::auth::CodeType) -> Self {
        use tl::enums::auth::CodeType as T;
        match t {
            T::Sms => Self::Sms,
            T::Call => Self::Call,
            T::FlashCall => Self::FlashCall,
            T::MissedCall => Self::MissedCall,
            T::FragmentSms => Self::Other,
        }
    }
}

/// Where a code went and what comes next.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CodeSent {
    /// How this code was delivered.
    pub delivery: CodeDelivery,
    /// How [`PhoneLogin::resend`] would deliver the next one, if it can.
    pub next: Option<CodeDelivery>,
    /// Digits in the code, when Telegram says.
    pub length: Option<i32>,
    /// Seconds before a resend is allowed, when Telegram says.
    pub timeout_secs: Option<i32>,
}

impl CodeSent {
    fn from_tl(code: &tl::types::auth::SentCode) -> Self {
        use tl::enums::auth::SentCodeType as T;
        let length = match &code.r#type {
            T::App(t) => Some(t.length),
            T::Sms(t) => Some(t.length),
            T::Call(t) => Some(t.length),
            T::MissedCall(t) => Some(t.length),
            T::EmailCode(t) => Some(t.length),
            _ => None,
        };
        Self {
            delivery: CodeDelivery::from_sent(&code.r#type),
            next: code.next_type.as_ref().map(CodeDelivery::from_next),
            length,
            timeout_secs: code.timeout,
        }
    }
}

/// A finished login: the profile and the session, still in memory (or wherever it was).
#[derive(Debug)]
pub struct LoggedIn {
    /// Who signed in.
    pub profile: AccountProfile,
    /// The signed-in session; its client is already closed.
    pub session: Arc<DbSession>,
}

impl LoggedIn {
    /// Writes the session into an account (replacing its old session) and attaches it.
    pub async fn persist_into(
        &self,
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        account: AccountId,
    ) -> Result<(), Error> {
        self.session.persist_into(store, keyring, account).await
    }
}

/// What a login step led to.
#[derive(Debug)]
pub enum LoginStep {
    /// Signed in.
    Done(LoggedIn),
    /// The account has a 2FA password: call `submit_password`.
    PasswordNeeded {
        /// The password hint the owner set.
        hint: Option<String>,
    },
}

/// A profile from Telegram's user object.
pub(crate) fn profile_of(user: &tl::enums::User) -> Result<AccountProfile, Error> {
    match user {
        tl::enums::User::User(u) => Ok(AccountProfile {
            telegram_user_id: u.id,
            phone: u
                .phone
                .as_deref()
                .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
                .filter(|p| !p.is_empty()),
            first_name: u.first_name.clone().unwrap_or_default(),
            last_name: u.last_name.clone().filter(|s| !s.is_empty()),
            username: u.username.clone(),
        }),
        tl::enums::User::Empty(_) => Err(Error::Unexpected("an empty self user")),
    }
}

/// What grammers' private `complete_login` does: caches the self user with its access hash and
/// stores `updates.getState` as the initial update state. Returns the profile.
pub(crate) async fn complete_login(
    client: &Client,
    session: &DbSession,
    user: &tl::enums::User,
) -> Result<AccountProfile, Error> {
    let profile = profile_of(user)?;
    let tl::enums::User::User(u) = user else {
        return Err(Error::Unexpected("an empty self user"));
    };
    let access_hash = u
        .access_hash
        .ok_or(Error::Unexpected("a self user without an access hash"))?;
    session
        .cache_peer(PeerInfo::User {
            id: u.id,
            auth: Some(PeerAuth::from_hash(access_hash)),
            bot: Some(u.bot),
            is_self: Some(true),
        })
        .await?;
    store_initial_state(client, session).await?;
    Ok(profile)
}

/// Saves `updates.getState` as the session's whole update state.
pub(crate) async fn store_initial_state(client: &Client, session: &DbSession) -> Result<(), Error> {
    let tl::enums::updates::State::State(s) =
        client.invoke(&tl::functions::updates::GetState {}).await?;
    session
        .set_update_state(UpdateState::All(UpdatesState {
            pts: s.pts,
            qts: s.qts,
            date: s.date,
            seq: s.seq,
            channels: Vec::new(),
        }))
        .await?;
    Ok(())
}

/// Bounds one step by the settings' `step_timeout` (grammers has no request timeout).
pub(crate) async fn bounded<T>(
    limit: Duration,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limit, step)
        .await
        .unwrap_or_else(|_| Err(Error::Unreachable("Telegram did not answer in time".into())))
}

/// `*_MIGRATE_X`: the DC to move the home to.
fn migrate_dc(e: &InvocationError) -> Option<i32> {
    match e {
        InvocationError::Rpc(rpc) if rpc.code == 303 => {
            rpc.value.and_then(|v| i32::try_from(v).ok())
        }
        _ => None,
    }
}

/// Moves the session's home DC (the next call goes there).
async fn migrate_home(conn: &Connection, dc_id: i32) -> Result<(), Error> {
    let old = conn.session.home_dc();
    conn.session.set_home_dc_id(dc_id).await?;
    conn.pool.disconnect_from_dc(old);
    tracing::info!(from = old, to = dc_id, "login moved to another data center");
    Ok(())
}

/// Calls on the home DC, following one `*_MIGRATE_X`.
async fn invoke_following_migration<R: tl::RemoteCall>(
    conn: &Connection,
    request: &R,
) -> Result<R::Return, InvocationError> {
    match conn.client.invoke(request).await {
        Err(e) if migrate_dc(&e).is_some() => {
            let dc = migrate_dc(&e).unwrap_or(0);
            if migrate_home(conn, dc).await.is_err() {
                return Err(e);
            }
            conn.client.invoke(request).await
        }
        other => other,
    }
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

enum PhoneStage {
    AwaitingCode,
    AwaitingPassword { token: Option<PasswordToken> },
    Finished,
}

/// Sign-in with a login code (and the 2FA password when the account has one).
pub struct PhoneLogin {
    conn: Option<Connection>,
    session: Arc<DbSession>,
    settings: TelegramSettings,
    phone: String,
    phone_code_hash: String,
    attempts_left: u32,
    stage: PhoneStage,
}

impl std::fmt::Debug for PhoneLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneLogin")
            .field("phone", &self.phone)
            .field("attempts_left", &self.attempts_left)
            .finish_non_exhaustive()
    }
}

fn code_settings() -> tl::enums::CodeSettings {
    tl::types::CodeSettings {
        allow_flashcall: false,
        current_number: false,
        allow_app_hash: false,
        allow_missed_call: false,
        allow_firebase: false,
        unknown_number: false,
        logout_tokens: None,
        token: None,
        app_sandbox: None,
    }
    .into()
}

fn sent_code(r: tl::enums::auth::SentCode) -> Result<tl::types::auth::SentCode, Error> {
    match r {
        tl::enums::auth::SentCode::Code(c) => Ok(c),
        tl::enums::auth::SentCode::Success(_) => Err(Error::Unexpected("a sign-in without a code")),
        tl::enums::auth::SentCode::PaymentRequired(_) => {
            Err(Error::Unexpected("a payment request for the code"))
        }
    }
}

impl PhoneLogin {
    /// Starts a login: opens the flow's client and asks Telegram to send a code (`auth.sendCode`).
    pub async fn start(
        settings: &TelegramSettings,
        phone: &str,
    ) -> Result<(Self, CodeSent), Error> {
        bounded(settings.step_timeout, Self::start_inner(settings, phone)).await
    }

    async fn start_inner(
        settings: &TelegramSettings,
        phone: &str,
    ) -> Result<(Self, CodeSent), Error> {
        let phone = digits(phone);
        if phone.is_empty() {
            return Err(Error::PhoneNumberInvalid);
        }
        let session = Arc::new(DbSession::new_login(settings).await?);
        let conn = connect(settings, Arc::clone(&session), RetryOptions::interactive());
        let request = tl::functions::auth::SendCode {
            phone_number: phone.clone(),
            api_id: settings.api_id,
            api_hash: settings.api_hash.clone(),
            settings: code_settings(),
        };
        let sent = match invoke_following_migration(&conn, &request).await {
            Ok(r) => sent_code(r),
            Err(e) => Err(Error::from(e)),
        };
        let sent = match sent {
            Ok(s) => s,
            Err(e) => {
                let _ = conn.quit().await;
                return Err(e);
            }
        };
        let info = CodeSent::from_tl(&sent);
        Ok((
            Self {
                conn: Some(conn),
                session,
                settings: settings.clone(),
                phone,
                phone_code_hash: sent.phone_code_hash,
                attempts_left: MAX_CODE_ATTEMPTS,
                stage: PhoneStage::AwaitingCode,
            },
            info,
        ))
    }

    /// The phone number (digits) this flow signs in.
    pub fn phone(&self) -> &str {
        &self.phone
    }

    fn conn(&self) -> Result<&Connection, Error> {
        self.conn.as_ref().ok_or(Error::LoginFinished)
    }

    /// Asks for the code again through the next method (`auth.resendCode`): app → SMS → call.
    pub async fn resend(&mut self) -> Result<CodeSent, Error> {
        bounded(self.settings.step_timeout, self.resend_inner()).await
    }

    async fn resend_inner(&mut self) -> Result<CodeSent, Error> {
        if !matches!(self.stage, PhoneStage::AwaitingCode) {
            return Err(self.wrong_step());
        }
        let request = tl::functions::auth::ResendCode {
            phone_number: self.phone.clone(),
            phone_code_hash: self.phone_code_hash.clone(),
            reason: None,
        };
        let sent = sent_code(self.conn()?.client.invoke(&request).await?)?;
        self.phone_code_hash = sent.phone_code_hash.clone();
        self.attempts_left = MAX_CODE_ATTEMPTS;
        Ok(CodeSent::from_tl(&sent))
    }

    fn wrong_step(&self) -> Error {
        match self.stage {
            PhoneStage::AwaitingCode => Error::WrongStep { expected: "code" },
            PhoneStage::AwaitingPassword { .. } => Error::WrongStep {
                expected: "password",
            },
            PhoneStage::Finished => Error::LoginFinished,
        }
    }

    /// Submits the code: `Done`, `PasswordNeeded`, or `InvalidCode` (attempts left),
    /// `CodeExpired`, `FloodWait`, ...
    pub async fn submit_code(&mut self, code: &str) -> Result<LoginStep, Error> {
        bounded(self.settings.step_timeout, self.submit_code_inner(code)).await
    }

    async fn submit_code_inner(&mut self, code: &str) -> Result<LoginStep, Error> {
        if !matches!(self.stage, PhoneStage::AwaitingCode) {
            return Err(self.wrong_step());
        }
        if self.attempts_left == 0 {
            return Err(Error::CodeAttemptsExceeded);
        }
        let code = code.trim();
        if code.is_empty() {
            return Err(Error::InvalidCode {
                attempts_left: self.attempts_left,
            });
        }
        let request = tl::functions::auth::SignIn {
            phone_number: self.phone.clone(),
            phone_code_hash: self.phone_code_hash.clone(),
            phone_code: Some(code.to_string()),
            email_verification: None,
        };
        let result = invoke_following_migration(self.conn()?, &request).await;
        match result {
            Ok(tl::enums::auth::Authorization::Authorization(auth)) => {
                self.finish_with_user(&auth.user).await
            }
            Ok(tl::enums::auth::Authorization::SignUpRequired(_)) => {
                self.abort().await;
                Err(Error::SignUpRequired)
            }
            Err(e) if e.is("PHONE_CODE_INVALID") || e.is("PHONE_CODE_EMPTY") => {
                self.attempts_left = self.attempts_left.saturating_sub(1);
                Err(Error::InvalidCode {
                    attempts_left: self.attempts_left,
                })
            }
            Err(e) if e.is("SESSION_PASSWORD_NEEDED") => {
                let token = self.fetch_password_token().await?;
                let hint = token.hint().map(str::to_string);
                self.stage = PhoneStage::AwaitingPassword { token: Some(token) };
                Ok(LoginStep::PasswordNeeded { hint })
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    async fn fetch_password_token(&self) -> Result<PasswordToken, Error> {
        fetch_password_token(self.conn()?).await
    }

    /// Submits the 2FA password: `Done`, or `InvalidPassword`, `FloodWait`, ...
    pub async fn submit_password(&mut self, password: &str) -> Result<LoginStep, Error> {
        bounded(
            self.settings.step_timeout,
            self.submit_password_inner(password),
        )
        .await
    }

    async fn submit_password_inner(&mut self, password: &str) -> Result<LoginStep, Error> {
        let token = match &mut self.stage {
            PhoneStage::AwaitingPassword { token, .. } => token.take(),
            _ => return Err(self.wrong_step()),
        };
        let token = match token {
            Some(t) => t,
            None => self.fetch_password_token().await?,
        };
        match check_password(self.conn()?, token, password).await {
            Ok(profile) => self.finish(profile).await,
            Err((e, token)) => {
                if let PhoneStage::AwaitingPassword { token: slot, .. } = &mut self.stage {
                    *slot = token;
                }
                Err(e)
            }
        }
    }

    async fn finish_with_user(&mut self, user: &tl::enums::User) -> Result<LoginStep, Error> {
        let profile = complete_login(&self.conn()?.client, &self.session, user).await?;
        self.finish(profile).await
    }

    async fn finish(&mut self, mut profile: AccountProfile) -> Result<LoginStep, Error> {
        if profile.phone.is_none() {
            profile.phone = Some(self.phone.clone());
        }
        self.abort().await;
        Ok(LoginStep::Done(LoggedIn {
            profile,
            session: Arc::clone(&self.session),
        }))
    }

    /// Closes the flow's client (the flow cannot continue afterwards).
    pub async fn abort(&mut self) {
        self.stage = PhoneStage::Finished;
        if let Some(conn) = self.conn.take()
            && let Err(e) = conn.quit().await
        {
            tracing::warn!(error = %e, "login client stopped badly");
        }
    }

    /// The settings this flow runs with.
    pub fn settings(&self) -> &TelegramSettings {
        &self.settings
    }
}

/// `account.getPassword`, checked for what grammers' `check_password` would otherwise panic on.
async fn fetch_password_token(conn: &Connection) -> Result<PasswordToken, Error> {
    let tl::enums::account::Password::Password(p) = conn
        .client
        .invoke(&tl::functions::account::GetPassword {})
        .await?;
    if p.current_algo.is_none() || p.srp_b.is_none() || p.srp_id.is_none() {
        return Err(Error::Unexpected("a 2FA request without SRP parameters"));
    }
    Ok(PasswordToken::new(p))
}

/// Runs grammers' SRP `check_password` (which itself does `complete_login`); on failure gives the
/// token back when it can be reused.
async fn check_password(
    conn: &Connection,
    token: PasswordToken,
    password: &str,
) -> Result<AccountProfile, (Error, Option<PasswordToken>)> {
    match conn.client.check_password(token, password.as_bytes()).await {
        Ok(user) => profile_of(&user.raw).map_err(|e| (e, None)),
        Err(SignInError::InvalidPassword(token)) => Err((Error::InvalidPassword, Some(token))),
        Err(SignInError::Other(e)) => Err((Error::from(e), None)),
        Err(SignInError::SignUpRequired) => Err((Error::SignUpRequired, None)),
        Err(SignInError::InvalidCode) => Err((Error::CodeExpired, None)),
        Err(SignInError::PasswordRequired(token)) => Err((Error::PasswordNeeded, Some(token))),
    }
}

/// A QR login token to show (as `tg://login?token=…`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QrToken {
    /// `tg://login?token=<base64url>`.
    pub url: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

/// What a QR login is waiting for.
#[derive(Debug)]
pub enum QrStatus {
    /// Not scanned yet; show this token (it changes when regenerated).
    Pending(QrToken),
    /// Signed in.
    Done(LoggedIn),
    /// Approved, and the account has a 2FA password: call [`QrLogin::submit_password`].
    PasswordNeeded {
        /// The password hint.
        hint: Option<String>,
    },
}

enum QrStage {
    AwaitingScan,
    AwaitingPassword {
        token: Option<PasswordToken>,
        hint: Option<String>,
    },
    Finished,
}

/// Sign-in by scanning a QR code with a phone where the account is already signed in.
pub struct QrLogin {
    conn: Option<Connection>,
    session: Arc<DbSession>,
    settings: TelegramSettings,
    token: QrToken,
    stage: QrStage,
    /// `updateLoginToken` arrived and the re-export has not succeeded yet.
    approved: bool,
}

impl std::fmt::Debug for QrLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrLogin")
            .field("expires_at", &self.token.expires_at)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn qr_token(token: &[u8], expires: i32) -> QrToken {
    QrToken {
        url: format!(
            "tg://login?token={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
        ),
        expires_at: i64::from(expires),
    }
}

/// Whether raw updates carry `updateLoginToken`.
fn has_login_token(updates: &UpdatesLike) -> bool {
    let is_token = |u: &tl::enums::Update| matches!(u, tl::enums::Update::LoginToken);
    match updates {
        UpdatesLike::Updates(tl::enums::Updates::UpdateShort(s)) => is_token(&s.update),
        UpdatesLike::Updates(tl::enums::Updates::Updates(u)) => u.updates.iter().any(is_token),
        UpdatesLike::Updates(tl::enums::Updates::Combined(u)) => u.updates.iter().any(is_token),
        _ => false,
    }
}

/// What one `auth.exportLoginToken` (or import after migration) led to.
enum Exported {
    Token(QrToken),
    Done(AccountProfile),
    PasswordNeeded(PasswordToken),
}

impl QrLogin {
    /// Starts a QR login: opens the flow's client and exports the first token.
    pub async fn start(settings: &TelegramSettings) -> Result<(Self, QrToken), Error> {
        bounded(settings.step_timeout, Self::start_inner(settings)).await
    }

    async fn start_inner(settings: &TelegramSettings) -> Result<(Self, QrToken), Error> {
        let session = Arc::new(DbSession::new_login(settings).await?);
        let conn = connect(settings, Arc::clone(&session), RetryOptions::interactive());
        let mut flow = Self {
            conn: Some(conn),
            session,
            settings: settings.clone(),
            token: QrToken {
                url: String::new(),
                expires_at: 0,
            },
            stage: QrStage::AwaitingScan,
            approved: false,
        };
        match flow.export().await {
            Ok(Exported::Token(t)) => {
                flow.token = t.clone();
                Ok((flow, t))
            }
            Ok(_) => {
                flow.abort().await;
                Err(Error::Unexpected(
                    "a QR login that finished before it started",
                ))
            }
            Err(e) => {
                flow.abort().await;
                Err(e)
            }
        }
    }

    /// The current token.
    pub fn token(&self) -> &QrToken {
        &self.token
    }

    fn conn(&self) -> Result<&Connection, Error> {
        self.conn.as_ref().ok_or(Error::LoginFinished)
    }

    async fn export(&self) -> Result<Exported, Error> {
        bounded(self.settings.step_timeout, self.export_inner()).await
    }

    async fn export_inner(&self) -> Result<Exported, Error> {
        let conn = self.conn()?;
        let request = tl::functions::auth::ExportLoginToken {
            api_id: self.settings.api_id,
            api_hash: self.settings.api_hash.clone(),
            except_ids: Vec::new(),
        };
        let mut answer = conn.client.invoke(&request).await;
        for _ in 0..2 {
            match answer {
                Ok(tl::enums::auth::LoginToken::MigrateTo(m)) => {
                    migrate_home(conn, m.dc_id).await?;
                    answer = conn
                        .client
                        .invoke(&tl::functions::auth::ImportLoginToken { token: m.token })
                        .await;
                }
                other => {
                    answer = other;
                    break;
                }
            }
        }
        match answer {
            Ok(tl::enums::auth::LoginToken::Token(t)) => {
                Ok(Exported::Token(qr_token(&t.token, t.expires)))
            }
            Ok(tl::enums::auth::LoginToken::Success(s)) => match s.authorization {
                tl::enums::auth::Authorization::Authorization(a) => Ok(Exported::Done(
                    complete_login(&conn.client, &self.session, &a.user).await?,
                )),
                tl::enums::auth::Authorization::SignUpRequired(_) => Err(Error::SignUpRequired),
            },
            Ok(tl::enums::auth::LoginToken::MigrateTo(_)) => {
                Err(Error::Unexpected("repeated QR login migrations"))
            }
            Err(e) if e.is("SESSION_PASSWORD_NEEDED") => {
                Ok(Exported::PasswordNeeded(fetch_password_token(conn).await?))
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    async fn on_exported(&mut self, exported: Exported) -> Result<QrStatus, Error> {
        match exported {
            Exported::Token(t) => {
                self.token = t.clone();
                Ok(QrStatus::Pending(t))
            }
            Exported::Done(profile) => Ok(QrStatus::Done(self.finish(profile).await)),
            Exported::PasswordNeeded(token) => {
                let hint = token.hint().map(str::to_string);
                self.stage = QrStage::AwaitingPassword {
                    token: Some(token),
                    hint: hint.clone(),
                };
                Ok(QrStatus::PasswordNeeded { hint })
            }
        }
    }

    fn check_scan_stage(&self) -> Result<Option<QrStatus>, Error> {
        match &self.stage {
            QrStage::AwaitingScan => Ok(None),
            QrStage::AwaitingPassword { hint, .. } => {
                Ok(Some(QrStatus::PasswordNeeded { hint: hint.clone() }))
            }
            QrStage::Finished => Err(Error::LoginFinished),
        }
    }

    /// Checks without waiting whether the token was approved; regenerates it when it is about
    /// to expire.
    pub async fn poll(&mut self) -> Result<QrStatus, Error> {
        self.wait(Duration::ZERO).await
    }

    /// Waits up to `timeout` for the approval (`updateLoginToken`), then re-exports to finish;
    /// regenerates the token when it is about to expire.
    pub async fn wait(&mut self, timeout: Duration) -> Result<QrStatus, Error> {
        if let Some(status) = self.check_scan_stage()? {
            return Ok(status);
        }
        if !self.approved {
            self.approved = self.wait_for_approval(timeout).await?;
        }
        let approved = self.approved;
        let margin = i64::try_from(QR_REFRESH_MARGIN.as_secs()).unwrap_or(5);
        let expiring = self.token.expires_at - unix_now() <= margin;
        if !approved && !expiring {
            return Ok(QrStatus::Pending(self.token.clone()));
        }
        let result = self.export().await;
        match result {
            Ok(exported) => {
                self.approved = false;
                self.on_exported(exported).await
            }
            Err(e) => {
                if !matches!(e, Error::FloodWait { .. } | Error::Unreachable(_)) {
                    self.abort().await;
                }
                Err(e)
            }
        }
    }

    async fn wait_for_approval(&mut self, timeout: Duration) -> Result<bool, Error> {
        let margin = i64::try_from(QR_REFRESH_MARGIN.as_secs()).unwrap_or(5);
        let until_refresh = u64::try_from(self.token.expires_at - unix_now() - margin).unwrap_or(0);
        let deadline =
            tokio::time::Instant::now() + timeout.min(Duration::from_secs(until_refresh));
        let rx = &mut self.conn.as_mut().ok_or(Error::LoginFinished)?.updates;
        loop {
            while let Ok(u) = rx.try_recv() {
                if has_login_token(&u) {
                    return Ok(true);
                }
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(u)) => {
                    if has_login_token(&u) {
                        return Ok(true);
                    }
                }
                Ok(None) => {
                    return Err(Error::Unreachable("the login client stopped".into()));
                }
                Err(_) => return Ok(false),
            }
        }
    }

    /// Exports a fresh token now (the QR code to show changes).
    pub async fn refresh(&mut self) -> Result<QrStatus, Error> {
        if let Some(status) = self.check_scan_stage()? {
            return Ok(status);
        }
        let exported = self.export().await?;
        self.on_exported(exported).await
    }

    /// Submits the 2FA password after approval: `Done`, or `InvalidPassword`, ...
    pub async fn submit_password(&mut self, password: &str) -> Result<LoginStep, Error> {
        bounded(
            self.settings.step_timeout,
            self.submit_password_inner(password),
        )
        .await
    }

    async fn submit_password_inner(&mut self, password: &str) -> Result<LoginStep, Error> {
        let token = match &mut self.stage {
            QrStage::AwaitingPassword { token, .. } => token.take(),
            QrStage::AwaitingScan => return Err(Error::WrongStep { expected: "scan" }),
            QrStage::Finished => return Err(Error::LoginFinished),
        };
        let token = match token {
            Some(t) => t,
            None => fetch_password_token(self.conn()?).await?,
        };
        match check_password(self.conn()?, token, password).await {
            Ok(profile) => Ok(LoginStep::Done(self.finish(profile).await)),
            Err((e, token)) => {
                if let QrStage::AwaitingPassword { token: slot, .. } = &mut self.stage {
                    *slot = token;
                }
                Err(e)
            }
        }
    }

    async fn finish(&mut self, profile: AccountProfile) -> LoggedIn {
        self.abort().await;
        LoggedIn {
            profile,
            session: Arc::clone(&self.session),
        }
    }

    /// Closes the flow's client (the flow cannot continue afterwards).
    pub async fn abort(&mut self) {
        self.stage = QrStage::Finished;
        if let Some(conn) = self.conn.take()
            && let Err(e) = conn.quit().await
        {
            tracing::warn!(error = %e, "login client stopped badly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn flows_and_their_steps_can_cross_threads() {
        // Compile-time check: the web layer keeps flows in shared maps and awaits them in
        // handlers running on any worker thread.
        if false {
            let settings =
                TelegramSettings::new(1, "h", std::sync::Arc::new(crate::testutil::Detached));
            assert_send(&PhoneLogin::start(&settings, "1"));
            assert_send(&QrLogin::start(&settings));
            let mut phone: Option<PhoneLogin> = None;
            if let Some(p) = phone.as_mut() {
                assert_send(p);
                assert_send(&p.submit_code("1"));
                assert_send(&p.submit_password("1"));
                assert_send(&p.resend());
            }
            let mut qr: Option<QrLogin> = None;
            if let Some(q) = qr.as_mut() {
                assert_send(q);
                assert_send(&q.wait(Duration::ZERO));
                assert_send(&q.submit_password("1"));
            }
        }
    }

    #[test]
    fn qr_url_is_base64url_without_padding() {
        let t = qr_token(&[0xfb, 0xff, 0x01], 100);
        assert_eq!(t.url, "tg://login?token=-_8B");
        assert_eq!(t.expires_at, 100);
    }

    #[test]
    fn login_token_updates_are_recognised_in_short_and_full_containers() {
        let short = UpdatesLike::Updates(tl::enums::Updates::UpdateShort(tl::types::UpdateShort {
            update: tl::enums::Update::LoginToken,
            date: 0,
        }));
        assert!(has_login_token(&short));
        let other = UpdatesLike::Updates(tl::enums::Updates::TooLong);
        assert!(!has_login_token(&other));
    }

    #[test]
    fn profile_takes_digits_of_the_phone() {
        let mut u = crate::testutil::user(5);
        u.phone = Some("+1 555 0100".into());
        u.first_name = Some("Ann".into());
        let p = profile_of(&tl::enums::User::User(u));
        assert_eq!(p.ok().and_then(|p| p.phone), Some("15550100".into()));
    }
}
