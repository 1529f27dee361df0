//! Connecting personal accounts: the sign-in flows (phone code with resend and 2FA; QR with
//! 2FA), session import, the `get-code` shortcut (kept from the session-reuse service Switchboard
//! replaces: docs/architecture.md), logout, delete and export. Each flow
//! owns one temporary client for its whole life and closes it before the account's one live
//! client is started by the supervisor.

use crate::accounts::AccountSupervisor;
use crate::audit::Audit;
use crate::workers::Tasks;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::{
    Account, AccountId, AccountProfile, AccountStatus, AccountStore, NewAccount, Store, StoreError,
    Timestamp, UserId, WorkspaceId,
};
use switchboard_sessions::{ImportedSession, UploadEntry};

use switchboard_telegram::{
    CodeSent, DbSession, Error as TgError, ExportFormat, LoggedIn, LoginStep, PhoneLogin, QrLogin,
    QrStatus, QrToken, RetryOptions, Validation,
};
use switchboard_vault::Keyring;
use tokio::sync::Mutex as AsyncMutex;

/// A file of a session upload: its name (a relative path for a folder upload) and bytes.
pub use switchboard_sessions::UploadedFile;

/// How long an unfinished sign-in flow is kept.
const FLOW_TTL: Duration = Duration::from_secs(15 * 60);

/// Why a connect operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Telegram refused or failed (the code says which).
    #[error(transparent)]
    Telegram(#[from] TgError),
    /// Unknown, expired or foreign flow id.
    #[error("no such sign-in flow")]
    FlowNotFound,
    /// The step does not fit the flow (e.g. a code for a QR flow).
    #[error("this step does not fit the sign-in flow")]
    WrongFlow,
    /// The workspace already has this Telegram account.
    #[error("this Telegram account is already connected")]
    AccountExists,
    /// Storage failed or the account is unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The imported session could not be parsed.
    #[error("{0}")]
    Session(#[from] switchboard_sessions::SessionError),
}

impl ConnectError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::Telegram(e) => e.code(),
            ConnectError::FlowNotFound => "login_flow_not_found",
            ConnectError::WrongFlow => "login_wrong_step",
            ConnectError::AccountExists => "account_exists",
            ConnectError::Store(StoreError::NotFound) => "not_found",
            ConnectError::Store(StoreError::Conflict(_)) => "account_exists",
            ConnectError::Store(_) => "internal",
            ConnectError::Session(e) => e.code(),
        }
    }
}

/// Where a sign-in stands after a step.
#[derive(Debug)]
pub enum ConnectStep {
    /// A code was sent.
    CodeSent(CodeSent),
    /// The 2FA password is needed.
    PasswordNeeded {
        /// The hint the owner set.
        hint: Option<String>,
    },
    /// Waiting for the QR code to be scanned; show this token.
    QrPending(QrToken),
    /// Connected.
    Done(Account),
}

enum Flow {
    Phone(PhoneLogin),
    Qr(QrLogin),
}

/// Who may continue a flow: the member who started it, or (a web sign-in of someone who has
/// no user yet) whoever holds its id, a 256-bit random token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowOwner {
    Member(WorkspaceId, UserId),
    Signin,
}

struct FlowEntry {
    owner: FlowOwner,
    started: Instant,
    flow: Arc<AsyncMutex<Flow>>,
}

/// Where a web sign-in's Telegram flow stands after a step (see [`AccountService::signin_code`]).
#[derive(Debug)]
pub enum SigninStep {
    /// The 2FA password is needed.
    PasswordNeeded {
        /// The hint the owner set.
        hint: Option<String>,
    },
    /// Waiting for the QR code to be scanned; show this token.
    QrPending(QrToken),
    /// Signed in at Telegram; the flow's client is closed. Store it with
    /// [`AccountService::finish_signin`].
    Done(LoggedIn),
}

/// One account of a session upload after its import.
#[derive(Debug)]
pub struct UploadImport {
    /// The account's relative path without extension, or the name of a file that belongs to
    /// no account.
    pub name: String,
    /// The uploaded names that make up this entry.
    pub files: Vec<String>,
    /// The account imported with the codes of the parser's warnings, or the code of why the
    /// entry was not imported.
    pub outcome: Result<(Account, Vec<&'static str>), &'static str>,
}

/// The export format named `name` (`telethon` or `pyrogram`).
pub fn export_format(name: &str) -> Option<ExportFormat> {
    match name {
        "telethon" => Some(ExportFormat::Telethon),
        "pyrogram" => Some(ExportFormat::Pyrogram),
        _ => None,
    }
}

/// Result of importing one session.
#[derive(Debug)]
pub struct Imported {
    /// The account created.
    pub account: Account,
}

/// What one import needs, owned by the import's task.
struct ImportJob {
    store: Arc<dyn Store>,
    accounts: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    supervisor: AccountSupervisor,
}

impl ImportJob {
    async fn run(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        imported: &ImportedSession,
    ) -> Result<Imported, ConnectError> {
        let now = Timestamp::now();
        if let Some(uid) = imported.user_id {
            let accounts = self.accounts.list_accounts(ws).await?;
            if accounts.iter().any(|a| a.telegram_user_id == Some(uid)) {
                return Err(ConnectError::AccountExists);
            }
        }
        let new = NewAccount {
            workspace_id: ws,
            phone: imported.phone.clone(),
            telegram_user_id: imported.user_id,
            first_name: imported.first_name.clone().unwrap_or_default(),
            last_name: imported.last_name.clone(),
            username: imported.username.clone(),
            status: AccountStatus::Connecting,
            active: false,
            ingest_groups: false,
            api_id: None,
            api_hash_sealed: None,
        };
        let account = self.accounts.create_account(&new, now).await?;
        let id = account.id;
        let result = switchboard_telegram::import_into_account(
            self.supervisor.settings(),
            Arc::clone(&self.accounts),
            Arc::clone(&self.keyring),
            id,
            imported,
        )
        .await;
        let validation = match result {
            Ok((_, v)) => v,
            Err(e) => {
                // Nothing is kept for an import that could not be written or checked.
                let _ = self.accounts.delete_account(ws, id).await;
                return Err(e.into());
            }
        };
        match validation {
            Validation::Valid(profile) => {
                // A session that did not name its user may be one the workspace already has.
                let exists = self.accounts.list_accounts(ws).await.map(|all| {
                    all.iter()
                        .any(|a| a.id != id && a.telegram_user_id == Some(profile.telegram_user_id))
                });
                let stored = match exists {
                    Ok(true) => Err(ConnectError::AccountExists),
                    Ok(false) => self
                        .accounts
                        .set_account_profile(id, &profile, now)
                        .await
                        .map_err(ConnectError::from),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = stored {
                    let _ = self.accounts.delete_account(ws, id).await;
                    return Err(e);
                }
                self.accounts.set_account_active(id, true, now).await?;
                self.supervisor.start(id).await?;
            }
            Validation::Unauthorized { reason } => {
                self.accounts
                    .set_account_status(id, AccountStatus::Unauthorized, Some(&reason), None, now)
                    .await?;
            }
            Validation::Banned { reason } => {
                self.accounts
                    .set_account_status(id, AccountStatus::Banned, Some(&reason), None, now)
                    .await?;
            }
        }
        Audit::new("account.imported")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .details(serde_json::json!({"format": imported.format.code()}))
            .record(&*self.store)
            .await;
        Ok(Imported {
            account: self.accounts.get_account(ws, id).await?,
        })
    }
}

/// Connect, import, logout, delete, export.
pub struct AccountService {
    store: Arc<dyn Store>,
    accounts: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    supervisor: AccountSupervisor,
    flows: Mutex<HashMap<String, FlowEntry>>,
    /// Imports in progress: each runs in a task of its own (a group of the supervisor), so a
    /// caller that goes away (an HTTP client that disconnects) neither cuts one short nor leaves
    /// half an account.
    imports: Tasks,
}

impl AccountService {
    /// Creates the service.
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        supervisor: AccountSupervisor,
    ) -> Self {
        let imports = supervisor.workers().tasks("session_imports");
        Self {
            store,
            accounts,
            keyring,
            supervisor,
            flows: Mutex::new(HashMap::new()),
            imports,
        }
    }

    /// Waits (up to `deadline`) for imports in progress to finish (the server calls it when it
    /// stops, after HTTP); true when none is left.
    pub async fn finish_imports(&self, deadline: Duration) -> bool {
        self.imports.drain(deadline).await
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &AccountSupervisor {
        &self.supervisor
    }

    fn register(&self, owner: FlowOwner, flow: Flow) -> Result<String, ConnectError> {
        let id = crate::auth::random_token()
            .map_err(|_| ConnectError::Store(StoreError::Backend("no randomness".into())))?;
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.insert(
            id.clone(),
            FlowEntry {
                owner,
                started: Instant::now(),
                flow: Arc::new(AsyncMutex::new(flow)),
            },
        );
        Ok(id)
    }

    fn flow(
        &self,
        ws: WorkspaceId,
        user: UserId,
        id: &str,
    ) -> Result<Arc<AsyncMutex<Flow>>, ConnectError> {
        self.flow_of(FlowOwner::Member(ws, user), id)
    }

    fn flow_of(&self, owner: FlowOwner, id: &str) -> Result<Arc<AsyncMutex<Flow>>, ConnectError> {
        let flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        match flows.get(id) {
            Some(e) if e.owner == owner && e.started.elapsed() < FLOW_TTL => {
                Ok(Arc::clone(&e.flow))
            }
            _ => Err(ConnectError::FlowNotFound),
        }
    }

    fn forget(&self, id: &str) {
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.remove(id);
    }

    /// Aborts flows older than their time to live (closing their clients).
    pub async fn purge_expired_flows(&self) -> usize {
        self.close_flows_where(|e| e.started.elapsed() >= FLOW_TTL)
            .await
    }

    /// Closes every sign-in flow in progress and its connection (the server calls it when it
    /// stops, so no temporary client outlives it); how many were closed.
    pub async fn close_flows(&self) -> usize {
        self.close_flows_where(|_| true).await
    }

    async fn close_flows_where(&self, which: impl Fn(&FlowEntry) -> bool) -> usize {
        let expired: Vec<Arc<AsyncMutex<Flow>>> = {
            let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = flows
                .iter()
                .filter(|(_, e)| which(e))
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter()
                .filter_map(|k| flows.remove(k))
                .map(|e| e.flow)
                .collect()
        };
        for f in &expired {
            abort(&mut *f.lock().await).await;
        }
        expired.len()
    }

    /// Starts a phone-code sign-in.
    pub async fn start_phone(
        &self,
        ws: WorkspaceId,
        user: UserId,
        phone: &str,
    ) -> Result<(String, CodeSent), ConnectError> {
        let (login, sent) = PhoneLogin::start(self.supervisor.settings(), phone).await?;
        let id = self.register(FlowOwner::Member(ws, user), Flow::Phone(login))?;
        Ok((id, sent))
    }

    /// Sends the code again by the next method.
    pub async fn resend(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
    ) -> Result<CodeSent, ConnectError> {
        resend(self.flow(ws, user, flow_id)?).await
    }

    /// Submits the code.
    pub async fn submit_code(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
        code: &str,
    ) -> Result<ConnectStep, ConnectError> {
        let step = submit_code(self.flow(ws, user, flow_id)?, code).await?;
        self.after_step(ws, user, flow_id, step).await
    }

    /// Submits the 2FA password (phone or QR flow).
    pub async fn submit_password(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
        password: &str,
    ) -> Result<ConnectStep, ConnectError> {
        let step = submit_password(self.flow(ws, user, flow_id)?, password).await?;
        self.after_step(ws, user, flow_id, step).await
    }

    /// Starts a QR sign-in.
    pub async fn start_qr(
        &self,
        ws: WorkspaceId,
        user: UserId,
    ) -> Result<(String, QrToken), ConnectError> {
        let (login, token) = QrLogin::start(self.supervisor.settings()).await?;
        let id = self.register(FlowOwner::Member(ws, user), Flow::Qr(login))?;
        Ok((id, token))
    }

    /// Checks a QR sign-in (regenerating the token before it expires).
    pub async fn poll_qr(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
    ) -> Result<ConnectStep, ConnectError> {
        let status = poll_qr(self.flow(ws, user, flow_id)?).await?;
        match status {
            QrStatus::Pending(t) => Ok(ConnectStep::QrPending(t)),
            QrStatus::PasswordNeeded { hint } => Ok(ConnectStep::PasswordNeeded { hint }),
            QrStatus::Done(done) => {
                self.forget(flow_id);
                Ok(ConnectStep::Done(self.finish(ws, user, done).await?))
            }
        }
    }

    /// Cancels a flow and closes its client.
    pub async fn cancel(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
    ) -> Result<(), ConnectError> {
        let flow = self.flow(ws, user, flow_id)?;
        self.forget(flow_id);
        abort(&mut *flow.lock().await).await;
        Ok(())
    }

    async fn after_step(
        &self,
        ws: WorkspaceId,
        user: UserId,
        flow_id: &str,
        step: LoginStep,
    ) -> Result<ConnectStep, ConnectError> {
        match step {
            LoginStep::PasswordNeeded { hint } => Ok(ConnectStep::PasswordNeeded { hint }),
            LoginStep::Done(done) => {
                self.forget(flow_id);
                Ok(ConnectStep::Done(self.finish(ws, user, done).await?))
            }
        }
    }

    // --- web sign-in (docs/web-login.md): flows of someone who has no user yet ---

    /// Starts a web sign-in's phone-code flow (one temporary client until it ends).
    pub async fn signin_start_phone(
        &self,
        phone: &str,
    ) -> Result<(String, CodeSent), ConnectError> {
        let (login, sent) = PhoneLogin::start(self.supervisor.settings(), phone).await?;
        let id = self.register(FlowOwner::Signin, Flow::Phone(login))?;
        Ok((id, sent))
    }

    /// Starts a web sign-in's QR flow.
    pub async fn signin_start_qr(&self) -> Result<(String, QrToken), ConnectError> {
        let (login, token) = QrLogin::start(self.supervisor.settings()).await?;
        let id = self.register(FlowOwner::Signin, Flow::Qr(login))?;
        Ok((id, token))
    }

    /// Sends a web sign-in's code again by the next method.
    pub async fn signin_resend(&self, flow_id: &str) -> Result<CodeSent, ConnectError> {
        resend(self.flow_of(FlowOwner::Signin, flow_id)?).await
    }

    /// Submits a web sign-in's code.
    pub async fn signin_code(&self, flow_id: &str, code: &str) -> Result<SigninStep, ConnectError> {
        let step = submit_code(self.flow_of(FlowOwner::Signin, flow_id)?, code).await?;
        Ok(self.signin_after(flow_id, step))
    }

    /// Submits a web sign-in's 2FA password.
    pub async fn signin_password(
        &self,
        flow_id: &str,
        password: &str,
    ) -> Result<SigninStep, ConnectError> {
        let step = submit_password(self.flow_of(FlowOwner::Signin, flow_id)?, password).await?;
        Ok(self.signin_after(flow_id, step))
    }

    /// Checks a web sign-in's QR flow (regenerating the token before it expires).
    pub async fn signin_poll(&self, flow_id: &str) -> Result<SigninStep, ConnectError> {
        match poll_qr(self.flow_of(FlowOwner::Signin, flow_id)?).await? {
            QrStatus::Pending(t) => Ok(SigninStep::QrPending(t)),
            QrStatus::PasswordNeeded { hint } => Ok(SigninStep::PasswordNeeded { hint }),
            QrStatus::Done(done) => {
                self.forget(flow_id);
                Ok(SigninStep::Done(done))
            }
        }
    }

    /// Cancels a web sign-in's flow and closes its client.
    pub async fn signin_cancel(&self, flow_id: &str) -> Result<(), ConnectError> {
        let flow = self.flow_of(FlowOwner::Signin, flow_id)?;
        self.forget(flow_id);
        abort(&mut *flow.lock().await).await;
        Ok(())
    }

    fn signin_after(&self, flow_id: &str, step: LoginStep) -> SigninStep {
        match step {
            LoginStep::PasswordNeeded { hint } => SigninStep::PasswordNeeded { hint },
            LoginStep::Done(done) => {
                self.forget(flow_id);
                SigninStep::Done(done)
            }
        }
    }

    /// Stores a finished web sign-in into the user's workspace, like a connect flow's end:
    /// the session is stored once (into the account of this Telegram user, or a new one), then
    /// the supervisor starts the account's one live client.
    pub async fn finish_signin(
        &self,
        ws: WorkspaceId,
        user: UserId,
        done: LoggedIn,
    ) -> Result<Account, ConnectError> {
        self.finish(ws, user, done).await
    }

    /// Stores a finished sign-in: into the workspace's existing account for this Telegram user
    /// (a re-login) or a new one; then the supervisor starts its one live client.
    async fn finish(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        done: LoggedIn,
    ) -> Result<Account, ConnectError> {
        let profile = done.profile.clone();
        let now = Timestamp::now();
        let existing = self
            .accounts
            .list_accounts(ws)
            .await?
            .into_iter()
            .find(|a| a.telegram_user_id == Some(profile.telegram_user_id));
        let id = match existing {
            Some(a) => {
                // The session this sign-in replaces is logged out at Telegram first, so no
                // authorization is left there that nothing uses or can revoke.
                self.log_out_session(a.id).await?;
                self.accounts.wipe_account_session(a.id).await?;
                a.id
            }
            None => {
                self.accounts
                    .create_account(&new_account(ws, &profile), now)
                    .await?
                    .id
            }
        };
        done.persist_into(Arc::clone(&self.accounts), Arc::clone(&self.keyring), id)
            .await?;
        self.accounts.set_account_profile(id, &profile, now).await?;
        self.accounts
            .set_account_status(id, AccountStatus::Connecting, None, None, now)
            .await?;
        self.accounts.set_account_active(id, true, now).await?;
        Audit::new("account.connected")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .record(&*self.store)
            .await;
        self.supervisor.start(id).await?;
        Ok(self.accounts.get_account(ws, id).await?)
    }

    /// Imports a parsed session as a new account, validating it with one connection first.
    /// A session that fails validation is kept as `unauthorized`/`banned` (so the operator sees
    /// it and can sign in again); one that cannot be written at all leaves nothing behind. The
    /// import runs in a task of its own: when the caller goes away half-way (an HTTP client
    /// that disconnects), it still completes — or leaves nothing, as above.
    pub async fn import(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        imported: &ImportedSession,
    ) -> Result<Imported, ConnectError> {
        let job = ImportJob {
            store: Arc::clone(&self.store),
            accounts: Arc::clone(&self.accounts),
            keyring: Arc::clone(&self.keyring),
            supervisor: self.supervisor.clone(),
        };
        let imported = imported.clone();
        self.imports
            .spawn(async move { job.run(ws, actor, &imported).await })
            .await
            .map_err(|_| ConnectError::Store(StoreError::Backend("the import failed".into())))?
    }

    /// Imports a string session (Telethon, Pyrogram/Hydrogram/Kurigram or gramjs), like
    /// [`AccountService::import`]; a string that is no session is the parser's `session_*`
    /// error and imports nothing.
    pub async fn import_string(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        session_string: &str,
    ) -> Result<Imported, ConnectError> {
        let parsed = switchboard_sessions::parse_string(session_string)?;
        self.import(ws, actor, &parsed).await
    }

    /// Imports every account found among uploaded files (session files, JSON + session pairs,
    /// phone folders), one after another; an entry that fails stores nothing and does not stop
    /// the others.
    pub async fn import_uploads(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        files: Vec<UploadedFile>,
    ) -> Result<Vec<UploadImport>, ConnectError> {
        let entries =
            tokio::task::spawn_blocking(move || switchboard_sessions::group_uploads(files))
                .await
                .map_err(|_| {
                    ConnectError::Store(StoreError::Backend("reading the upload failed".into()))
                })?;
        let mut out = Vec::with_capacity(entries.len());
        for UploadEntry {
            name,
            files,
            result,
        } in entries
        {
            let outcome = match result {
                Err(e) => Err(e.code()),
                Ok(session) => self
                    .import(ws, actor, &session)
                    .await
                    .map(|done| {
                        let warnings = session.warnings.iter().map(|w| w.code()).collect();
                        (done.account, warnings)
                    })
                    .map_err(|e| e.code()),
            };
            out.push(UploadImport {
                name,
                files,
                outcome,
            });
        }
        Ok(out)
    }

    /// The session-reuse shortcut (`session_exists` / `code_sent`, see docs/architecture.md): a
    /// usable stored session for this phone means no code is requested.
    pub async fn get_code(
        &self,
        ws: WorkspaceId,
        user: UserId,
        phone: &str,
    ) -> Result<GetCode, ConnectError> {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if let Some(a) = self.accounts.find_account_by_phone(ws, &digits).await?
            && !matches!(
                a.status,
                AccountStatus::Unauthorized | AccountStatus::Banned
            )
            && !self.accounts.list_dc_keys(a.id).await?.is_empty()
        {
            return Ok(GetCode::SessionExists(a));
        }
        let (flow_id, sent) = self.start_phone(ws, user, &digits).await?;
        Ok(GetCode::CodeSent { flow_id, sent })
    }

    /// Logs the session out at Telegram (`auth.logOut`) through the account's supervised
    /// client when it runs (no second connection with the same key), stops the client and
    /// wipes the session.
    pub async fn logout(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
    ) -> Result<Account, ConnectError> {
        let account = self.accounts.get_account(ws, id).await?;
        self.log_out_session(id).await?;
        let now = Timestamp::now();
        self.accounts.wipe_account_session(id).await?;
        self.accounts.set_account_active(id, false, now).await?;
        self.accounts
            .set_account_status(
                id,
                AccountStatus::Unauthorized,
                Some("logged out"),
                None,
                now,
            )
            .await?;
        self.supervisor
            .announce_status(ws, id, AccountStatus::Unauthorized, Some("logged out"));
        Audit::new("account.logged_out")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{}", account.id))
            .record(&*self.store)
            .await;
        Ok(self.accounts.get_account(ws, id).await?)
    }

    /// Logs the account's stored session out at Telegram (`auth.logOut`) and stops its client:
    /// through the supervised client when it runs (no second connection with the same key),
    /// else — when a key is stored — with one temporary connection, opened only after the
    /// client has closed. A refusal is logged: the caller wipes the session either way.
    async fn log_out_session(&self, id: AccountId) -> Result<(), ConnectError> {
        let signed_out = match self.supervisor.client(id) {
            Some(client) => match client.sign_out().await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(account_id = %id, error = %e, "auth.logOut through the live client failed");
                    false
                }
            },
            None => false,
        };
        self.supervisor.stop(id).await;
        let stored = self
            .accounts
            .list_dc_keys(id)
            .await?
            .iter()
            .any(|k| k.auth_key_sealed.is_some());
        if signed_out || !stored {
            return Ok(());
        }
        let settings = self.supervisor.settings();
        match DbSession::load(
            settings,
            Arc::clone(&self.accounts),
            Arc::clone(&self.keyring),
            id,
        )
        .await
        {
            Ok(session) => {
                let conn = switchboard_telegram::connect(
                    settings,
                    Arc::new(session),
                    RetryOptions::interactive(),
                );
                if let Err(e) = conn.client.sign_out().await {
                    tracing::warn!(account_id = %id, error = %e, "auth.logOut failed; wiping the session anyway");
                }
                let _ = conn.quit().await;
            }
            Err(e) => {
                tracing::warn!(account_id = %id, error = %e, "the session to log out could not be opened");
            }
        }
        Ok(())
    }

    /// Stops an account's client (kept, not logged out).
    pub async fn stop(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
    ) -> Result<Account, ConnectError> {
        self.accounts.get_account(ws, id).await?;
        self.supervisor.stop(id).await;
        let now = Timestamp::now();
        self.accounts.set_account_active(id, false, now).await?;
        self.accounts
            .set_account_status(id, AccountStatus::Stopped, None, None, now)
            .await?;
        self.supervisor
            .announce_status(ws, id, AccountStatus::Stopped, None);
        Audit::new("account.stopped")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .record(&*self.store)
            .await;
        Ok(self.accounts.get_account(ws, id).await?)
    }

    /// Starts a stopped account.
    pub async fn start(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
    ) -> Result<Account, ConnectError> {
        self.accounts.get_account(ws, id).await?;
        self.accounts
            .set_account_active(id, true, Timestamp::now())
            .await?;
        self.supervisor.start(id).await?;
        Audit::new("account.started")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .record(&*self.store)
            .await;
        Ok(self.accounts.get_account(ws, id).await?)
    }

    /// Turns the ingestion of group chats on or off (private chats are always ingested); a
    /// running client follows from its next batch.
    pub async fn set_ingest_groups(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
        on: bool,
    ) -> Result<Account, ConnectError> {
        self.accounts.get_account(ws, id).await?;
        self.accounts
            .set_account_ingest_groups(id, on, Timestamp::now())
            .await?;
        self.supervisor.set_ingest_groups(id, on);
        Audit::new("account.updated")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .details(serde_json::json!({"ingest_groups": on}))
            .record(&*self.store)
            .await;
        Ok(self.accounts.get_account(ws, id).await?)
    }

    /// Deletes an account with everything it owns.
    pub async fn delete(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
    ) -> Result<(), ConnectError> {
        self.accounts.get_account(ws, id).await?;
        self.supervisor.stop(id).await;
        self.accounts.delete_account(ws, id).await?;
        Audit::new("account.deleted")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .record(&*self.store)
            .await;
        Ok(())
    }

    /// Exports the session as a string (a secret; audited).
    pub async fn export(
        &self,
        ws: WorkspaceId,
        actor: UserId,
        id: AccountId,
        format: ExportFormat,
    ) -> Result<switchboard_sessions::Secret, ConnectError> {
        self.accounts.get_account(ws, id).await?;
        let s = switchboard_telegram::export_account(
            self.supervisor.settings(),
            Arc::clone(&self.accounts),
            Arc::clone(&self.keyring),
            id,
            format,
        )
        .await?;
        Audit::new("account.session_exported")
            .workspace(ws)
            .actor(actor)
            .target(format!("account:{id}"))
            .details(serde_json::json!({"format": format!("{format:?}").to_lowercase()}))
            .record(&*self.store)
            .await;
        Ok(s)
    }
}

/// The answer of `get_code`.
#[derive(Debug)]
pub enum GetCode {
    /// A usable session exists; no code was requested.
    SessionExists(Account),
    /// A code was sent; continue the phone flow.
    CodeSent {
        /// The flow.
        flow_id: String,
        /// Delivery details.
        sent: CodeSent,
    },
}

fn new_account(ws: WorkspaceId, p: &AccountProfile) -> NewAccount {
    NewAccount {
        workspace_id: ws,
        phone: p.phone.clone(),
        telegram_user_id: Some(p.telegram_user_id),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        username: p.username.clone(),
        status: AccountStatus::Connecting,
        active: true,
        ingest_groups: false,
        api_id: None,
        api_hash_sealed: None,
    }
}

async fn resend(flow: Arc<AsyncMutex<Flow>>) -> Result<CodeSent, ConnectError> {
    match &mut *flow.lock().await {
        Flow::Phone(p) => Ok(p.resend().await?),
        Flow::Qr(_) => Err(ConnectError::WrongFlow),
    }
}

async fn submit_code(flow: Arc<AsyncMutex<Flow>>, code: &str) -> Result<LoginStep, ConnectError> {
    match &mut *flow.lock().await {
        Flow::Phone(p) => Ok(p.submit_code(code).await?),
        Flow::Qr(_) => Err(ConnectError::WrongFlow),
    }
}

async fn submit_password(
    flow: Arc<AsyncMutex<Flow>>,
    password: &str,
) -> Result<LoginStep, ConnectError> {
    match &mut *flow.lock().await {
        Flow::Phone(p) => Ok(p.submit_password(password).await?),
        Flow::Qr(q) => Ok(q.submit_password(password).await?),
    }
}

async fn poll_qr(flow: Arc<AsyncMutex<Flow>>) -> Result<QrStatus, ConnectError> {
    match &mut *flow.lock().await {
        Flow::Qr(q) => {
            let expires_soon = q.token().expires_at - Timestamp::now().0 / 1000 <= 5;
            Ok(if expires_soon {
                q.refresh().await?
            } else {
                q.poll().await?
            })
        }
        Flow::Phone(_) => Err(ConnectError::WrongFlow),
    }
}

async fn abort(flow: &mut Flow) {
    match flow {
        Flow::Phone(p) => p.abort().await,
        Flow::Qr(q) => q.abort().await,
    }
}
