//! Operator sign-in: Argon2id passwords, lockout per username, throttling per client address,
//! opaque session tokens stored as SHA-256 hashes, and CSRF tokens bound to the session.
//!
//! Both limits are taken before the password is checked — the attempt counts as a failure
//! until it succeeds — so parallel guesses cannot all pass a check made before any of them
//! was recorded. Argon2 runs behind a semaphore sized to the CPUs: a flood of sign-ins waits
//! its turn instead of holding one 19 MiB Argon2 buffer per request.

use crate::audit::Audit;
use crate::throttle::{AddressLimiter, Admission, Ticket};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    LoginAttempt, Membership, NewUser, NewWebSession, Role, Store, StoreError, Timestamp, User,
    UserId, Username, WebSession, WorkspaceId,
};
use tokio::sync::Semaphore;

/// The knobs of sign-in security.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    /// Consecutive failures that lock a username.
    pub lock_after: i32,
    /// How long a locked username stays locked.
    pub lock_for: Duration,
    /// Failed sign-ins allowed per client address within `ip_window`.
    pub ip_max_failures: usize,
    /// The window for `ip_max_failures`.
    pub ip_window: Duration,
    /// A session unused for this long expires.
    pub session_idle: Duration,
    /// A session expires this long after sign-in, however busy.
    pub session_max_age: Duration,
    /// Shortest password accepted for new users.
    pub min_password_len: usize,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            lock_after: 5,
            lock_for: Duration::from_secs(15 * 60),
            ip_max_failures: 20,
            ip_window: Duration::from_secs(15 * 60),
            session_idle: Duration::from_secs(12 * 3600),
            session_max_age: Duration::from_secs(7 * 24 * 3600),
            min_password_len: 10,
        }
    }
}

/// Why a sign-in or an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown username, wrong password or disabled user (indistinguishable on purpose).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Too many failures for this username.
    #[error("locked")]
    Locked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// Too many failures from this client address.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until another attempt is allowed.
        retry_after_secs: u64,
    },
    /// The user belongs to no workspace.
    #[error("the user belongs to no workspace")]
    NoWorkspace,
    /// The username does not follow the rules.
    #[error("invalid username")]
    InvalidUsername,
    /// The password is too short.
    #[error("password too short")]
    WeakPassword,
    /// The username exists.
    #[error("username taken")]
    UsernameTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (never contains the password).
    #[error("password hashing failed")]
    Hash,
}

impl AuthError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::Locked { .. } => "account_locked",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::NoWorkspace => "no_workspace",
            AuthError::InvalidUsername => "invalid_username",
            AuthError::WeakPassword => "weak_password",
            AuthError::UsernameTaken => "username_taken",
            AuthError::Store(StoreError::NotFound) => "not_found",
            AuthError::Store(_) | AuthError::Hash => "internal",
        }
    }
}

/// A successful sign-in: the tokens are returned once and only their hashes are stored.
#[derive(Clone)]
pub struct LoginOutcome {
    /// Who signed in.
    pub user: User,
    /// In which workspace, with which role.
    pub membership: Membership,
    /// The opaque session token for the cookie.
    pub session_token: String,
    /// The CSRF token the client echoes in `X-CSRF-Token`.
    pub csrf_token: String,
    /// When the session expires if unused.
    pub expires_at: Timestamp,
}

/// An authenticated request's identity.
#[derive(Clone, Debug)]
pub struct SessionContext {
    /// The session row.
    pub session: WebSession,
    /// The signed-in user.
    pub user: User,
    /// Their membership in the session's workspace.
    pub membership: Membership,
}

/// A member to create with [`AuthService::create_member`].
#[derive(Clone, Copy)]
pub struct NewMember<'a> {
    /// Sign-in name.
    pub username: &'a str,
    /// Display name; defaults to the username.
    pub display_name: Option<&'a str>,
    /// Password (checked against the policy's minimum length).
    pub password: &'a str,
    /// Role in the workspace.
    pub role: Role,
    /// Chat capacity.
    pub max_chats: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    reason: &'static str,
}

/// Counters of sign-in work, exported at `/metrics`.
#[derive(Default)]
struct AuthMetrics {
    /// Argon2 password verifications (including the decoy ones for unknown usernames).
    password_checks: Counter,
    /// Attempts refused before any password check, by reason.
    refused: Family<RefusedLabels, Counter>,
}

/// Sign-in and session management.
pub struct AuthService {
    store: Arc<dyn Store>,
    policy: AuthPolicy,
    addresses: AddressLimiter,
    hashing: Arc<Semaphore>,
    metrics: AuthMetrics,
    dummy_hash: String,
}

impl AuthService {
    /// Creates the service.
    pub fn new(store: Arc<dyn Store>, policy: AuthPolicy) -> Result<Self, AuthError> {
        let dummy_hash = hash_password_blocking("dummy password for timing")?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            store,
            addresses: AddressLimiter::new(policy.ip_max_failures, policy.ip_window),
            policy,
            hashing: Arc::new(Semaphore::new(cpus)),
            metrics: AuthMetrics::default(),
            dummy_hash,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// Registers the sign-in counters (`auth_password_checks`, `auth_refused{reason}`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "auth_password_checks",
            "Argon2 password verifications",
            self.metrics.password_checks.clone(),
        );
        registry.register(
            "auth_refused",
            "Sign-in attempts refused before any password check, by reason",
            self.metrics.refused.clone(),
        );
    }

    fn refused(&self, reason: &'static str) {
        self.metrics
            .refused
            .get_or_create(&RefusedLabels { reason })
            .inc();
    }

    /// Takes a place for a sign-in attempt (a password or a one-time code) in the client
    /// address's failure window, before anything is checked; give it back with
    /// [`AuthService::release_address`] when the attempt succeeds. `RateLimited` when the
    /// address is throttled (the start of a throttle is audited once).
    pub async fn admit_address(&self, ip: Option<IpAddr>) -> Result<Option<Ticket>, AuthError> {
        let ip_text = ip.map(|a| a.to_string());
        let ip_str = ip_text.as_deref();
        Ok(match ip.map(|a| (a, self.addresses.admit(a))) {
            None => None,
            Some((_, Admission::Allowed(ticket))) => Some(ticket),
            Some((
                addr,
                Admission::Refused {
                    retry_after_secs,
                    first,
                },
            )) => {
                self.refused("rate_limited");
                // One record when a client starts being throttled; the flood after it is
                // only counted (`auth_refused{reason="rate_limited"}`).
                if first {
                    Audit::new("auth.login_throttled")
                        .ip(ip_str)
                        .details(serde_json::json!({
                            "client": crate::throttle::ClientKey::of(addr).to_string(),
                        }))
                        .record(&*self.store)
                        .await;
                }
                return Err(AuthError::RateLimited { retry_after_secs });
            }
        })
    }

    /// Gives back a place taken by [`AuthService::admit_address`]: the attempt succeeded.
    pub fn release_address(&self, ticket: Option<Ticket>) {
        if let Some(ticket) = ticket {
            self.addresses.release(ticket);
        }
    }

    /// Opens a session for a user who proved who they are another way (Telegram sign-in), in
    /// their first workspace, and audits it (`auth.login_succeeded` with the method).
    pub async fn sign_in_as(
        &self,
        user: User,
        method: &'static str,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let membership = self.first_membership(&user).await?;
        let outcome = self
            .open_session(user, membership, ip, user_agent, Timestamp::now())
            .await?;
        Self::login_audit(&outcome, method, ip)
            .record(&*self.store)
            .await;
        Ok(outcome)
    }

    /// The workspace a user signs in to (their first); `InvalidCredentials` for a disabled
    /// user, `NoWorkspace` for one without any.
    pub async fn first_membership(&self, user: &User) -> Result<Membership, AuthError> {
        if user.disabled {
            return Err(AuthError::InvalidCredentials);
        }
        let memberships = self.store.list_user_memberships(user.id).await?;
        memberships.into_iter().next().ok_or(AuthError::NoWorkspace)
    }

    /// The audit record of a sign-in by another way than the password (`method`).
    pub fn login_audit(outcome: &LoginOutcome, method: &'static str, ip: Option<&str>) -> Audit {
        Audit::new("auth.login_succeeded")
            .workspace(outcome.membership.workspace_id)
            .actor(outcome.user.id)
            .target(format!("user:{}", outcome.user.id))
            .ip(ip)
            .details(serde_json::json!({"method": method}))
    }

    /// Checks a username and password and opens a session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let ip_text = ip.map(|a| a.to_string());
        let ip_str = ip_text.as_deref();
        let ticket = self.admit_address(ip).await?;
        let now = Timestamp::now();
        let Ok(name) = Username::parse(username) else {
            self.burn_time(password).await;
            return Err(AuthError::InvalidCredentials);
        };
        let creds = self.store.find_credentials(&name).await?;
        let Some(creds) = creds else {
            self.burn_time(password).await;
            Audit::new("auth.login_failed")
                .target(format!("username:{name}"))
                .ip(ip_str)
                .details(serde_json::json!({"reason": "unknown_user"}))
                .record(&*self.store)
                .await;
            return Err(AuthError::InvalidCredentials);
        };
        let user_id = creds.user.id;
        let failures = match self
            .store
            .begin_login_attempt(
                user_id,
                self.policy.lock_after,
                now,
                now.plus(self.policy.lock_for),
            )
            .await?
        {
            LoginAttempt::Counted { failures } => failures,
            LoginAttempt::Locked { until } => {
                // Counted, not audited one by one: the lock itself was audited.
                self.refused("account_locked");
                let secs = u64::try_from((until.0 - now.0).max(0) / 1000).unwrap_or(0) + 1;
                return Err(AuthError::Locked {
                    retry_after_secs: secs,
                });
            }
        };
        let hash = creds.password_hash.as_deref().unwrap_or(&self.dummy_hash);
        let ok = self.verify_password(password, hash).await && creds.password_hash.is_some();
        if !ok || creds.user.disabled {
            Audit::new("auth.login_failed")
                .actor(user_id)
                .target(format!("username:{name}"))
                .ip(ip_str)
                .details(serde_json::json!({"reason": if creds.user.disabled {"disabled"} else {"wrong_password"}, "failures": failures}))
                .record(&*self.store)
                .await;
            if failures >= self.policy.lock_after {
                Audit::new("auth.user_locked")
                    .actor(user_id)
                    .target(format!("username:{name}"))
                    .ip(ip_str)
                    .record(&*self.store)
                    .await;
            }
            return Err(AuthError::InvalidCredentials);
        }
        self.store.reset_login_failures(user_id).await?;
        self.release_address(ticket);
        let memberships = self.store.list_user_memberships(user_id).await?;
        let Some(membership) = memberships.into_iter().next() else {
            return Err(AuthError::NoWorkspace);
        };
        let outcome = self
            .open_session(creds.user, membership, ip_str, user_agent, now)
            .await?;
        Audit::new("auth.login_succeeded")
            .workspace(outcome.membership.workspace_id)
            .actor(outcome.user.id)
            .target(format!("user:{}", outcome.user.id))
            .ip(ip_str)
            .record(&*self.store)
            .await;
        Ok(outcome)
    }

    async fn open_session(
        &self,
        user: User,
        membership: Membership,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: Timestamp,
    ) -> Result<LoginOutcome, AuthError> {
        let (session, outcome) = self.prepare_session(user, membership, ip, user_agent, now)?;
        self.store.create_web_session(&session).await?;
        Ok(outcome)
    }

    /// A new session's row, not yet stored, and the outcome to answer once it is: for a
    /// caller that stores it in one transaction with the rest of a sign-in.
    pub fn prepare_session(
        &self,
        user: User,
        membership: Membership,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: Timestamp,
    ) -> Result<(NewWebSession, LoginOutcome), AuthError> {
        let session_token = random_token()?;
        let csrf_token = random_token()?;
        let expires_at = now.plus(self.policy.session_idle);
        let session = NewWebSession {
            token_hash: token_hash(&session_token),
            csrf_hash: token_hash(&csrf_token),
            user_id: user.id,
            workspace_id: membership.workspace_id,
            created_at: now,
            expires_at,
            ip: ip.map(str::to_string),
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        };
        Ok((
            session,
            LoginOutcome {
                user,
                membership,
                session_token,
                csrf_token,
                expires_at,
            },
        ))
    }

    /// Resolves a session token to its identity, sliding the expiry; `None` if unknown,
    /// expired (idle or absolute) or the user lost access.
    pub async fn authenticate(&self, token: &str) -> Result<Option<SessionContext>, AuthError> {
        self.resolve(token, true).await
    }

    /// [`AuthService::authenticate`] without sliding the expiry: whether a session is still valid,
    /// for checks that are not the member's activity (an open WebSocket).
    pub async fn check(&self, token: &str) -> Result<Option<SessionContext>, AuthError> {
        self.resolve(token, false).await
    }

    async fn resolve(&self, token: &str, slide: bool) -> Result<Option<SessionContext>, AuthError> {
        let now = Timestamp::now();
        let hash = token_hash(token);
        let Some(session) = self.store.find_web_session(&hash, now).await? else {
            return Ok(None);
        };
        if session.created_at.plus(self.policy.session_max_age) <= now {
            self.store.delete_web_session(&hash).await?;
            return Ok(None);
        }
        let user = self.store.get_user(session.user_id).await?;
        if user.disabled {
            return Ok(None);
        }
        let membership = match self
            .store
            .get_membership(session.workspace_id, user.id)
            .await
        {
            Ok(m) => m,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Sliding expiry, written at most once a minute (or a quarter of the idle timeout when
        // that is shorter) to keep reads cheap.
        let every = self.policy.session_idle.min(Duration::from_secs(240)) / 4;
        let every = i64::try_from(every.as_millis()).unwrap_or(60_000);
        if slide && now.0 - session.last_seen_at.0 >= every {
            self.store
                .touch_web_session(&hash, now, now.plus(self.policy.session_idle))
                .await?;
        }
        Ok(Some(SessionContext {
            session,
            user,
            membership,
        }))
    }

    /// True if `presented` is the CSRF token of this session (constant-time).
    pub fn csrf_matches(&self, ctx: &SessionContext, presented: &str) -> bool {
        switchboard_domain::hashes_equal(&token_hash(presented), &ctx.session.csrf_hash)
    }

    /// Ends a session.
    pub async fn logout(&self, ctx: &SessionContext, ip: Option<&str>) -> Result<(), AuthError> {
        self.store
            .delete_web_session(&ctx.session.token_hash)
            .await?;
        Audit::new("auth.logout")
            .workspace(ctx.membership.workspace_id)
            .actor(ctx.user.id)
            .target(format!("user:{}", ctx.user.id))
            .ip(ip)
            .record(&*self.store)
            .await;
        Ok(())
    }

    /// Creates a user with a password and adds them to a workspace (CLI, demo, admin API).
    pub async fn create_member(
        &self,
        workspace: WorkspaceId,
        member: NewMember<'_>,
        actor: Option<UserId>,
    ) -> Result<(User, Membership), AuthError> {
        let NewMember {
            username,
            display_name,
            password,
            role,
            max_chats,
        } = member;
        let username = Username::parse(username).map_err(|_| AuthError::InvalidUsername)?;
        if password.chars().count() < self.policy.min_password_len {
            return Err(AuthError::WeakPassword);
        }
        let hash = self.hash_password(password).await?;
        let now = Timestamp::now();
        let user = self
            .store
            .create_user(
                &NewUser {
                    display_name: display_name.unwrap_or(username.as_str()).to_string(),
                    username: Some(username),
                    password_hash: Some(hash),
                    locale: None,
                },
                now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(ErrorCode::UsernameTaken) => AuthError::UsernameTaken,
                other => AuthError::Store(other),
            })?;
        let membership = self
            .store
            .add_membership(workspace, user.id, role, max_chats, now)
            .await?;
        let mut audit = Audit::new("admin.user_created")
            .workspace(workspace)
            .target(format!("user:{}", user.id))
            .details(serde_json::json!({"role": role.as_str(), "username": user.username}));
        if let Some(actor) = actor {
            audit = audit.actor(actor);
        }
        audit.record(&*self.store).await;
        Ok((user, membership))
    }

    /// Sets a new password (e.g. the demo's fresh credentials) and clears any lock.
    pub async fn set_password(&self, user: UserId, password: &str) -> Result<(), AuthError> {
        if password.chars().count() < self.policy.min_password_len {
            return Err(AuthError::WeakPassword);
        }
        let hash = self.hash_password(password).await?;
        self.store.set_password_hash(user, &hash).await?;
        self.store.reset_login_failures(user).await?;
        Ok(())
    }

    async fn burn_time(&self, password: &str) {
        // Same work as a real check, so timing does not reveal whether a username exists.
        let _ = self.verify_password(password, &self.dummy_hash).await;
    }

    /// Verifies a password against a PHC hash, one Argon2 per CPU at a time.
    async fn verify_password(&self, password: &str, hash: &str) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        self.metrics.password_checks.inc();
        verify_password(password, hash).await
    }

    /// Hashes a password, one Argon2 per CPU at a time.
    async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let _permit = self.hashing.acquire().await.map_err(|_| AuthError::Hash)?;
        hash_password(password).await
    }
}

/// Hashes a password with Argon2id (OWASP baseline parameters) off the async threads.
pub async fn hash_password(password: &str) -> Result<String, AuthError> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hash_password_blocking(&pw))
        .await
        .map_err(|_| AuthError::Hash)?
}

fn hash_password_blocking(password: &str) -> Result<String, AuthError> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|_| AuthError::Hash)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| AuthError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hash)
}

async fn verify_password(password: &str, hash: &str) -> bool {
    let pw = password.to_string();
    let hash = hash.to_string();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A fresh 256-bit random token, base64url without padding.
pub fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| AuthError::Hash)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token, hex; what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h).await);
        assert!(!verify_password("wrong", &h).await);
        assert!(!verify_password("x", "not a phc string").await);
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_eq!(token_hash("abc").len(), 64);
    }
}
