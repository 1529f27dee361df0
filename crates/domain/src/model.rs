//! The records Switchboard keeps: workspaces, users, memberships, web sessions, audit events.

use crate::ids::{AuditEventId, UserId, WebSessionId, WorkspaceId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A tenant: owns accounts, bots, chats and tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Identifier.
    pub id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A person who signs in to the web app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Identifier.
    pub id: UserId,
    /// Sign-in name (operators); self-service users may have none.
    pub username: Option<Username>,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Preferred interface language; `None` follows the browser.
    pub locale: Option<Locale>,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What the sign-in check needs about a user; never leaves the services layer.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// PHC string of the Argon2id hash; `None` when the user has no password.
    pub password_hash: Option<String>,
    /// Consecutive failed sign-ins since the last success.
    pub failed_logins: i32,
    /// Sign-in refused until this time.
    pub locked_until: Option<Timestamp>,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish()
    }
}

/// What a sign-in attempt may do, decided (and counted) before the password is checked, so that
/// parallel guesses cannot all slip under the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The attempt may check the password; it already counts as the `failures`-th consecutive
    /// failure, until a success clears the count.
    Counted {
        /// Consecutive failures including this attempt.
        failures: i32,
    },
    /// The username is locked until then; the attempt was not counted.
    Locked {
        /// When the lock ends.
        until: Timestamp,
    },
}

/// A new user to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Sign-in name.
    pub username: Option<Username>,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    /// Preferred language.
    pub locale: Option<Locale>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A validated sign-in name: 3–64 characters of `a-z 0-9 . _ -`, stored lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

/// Why a username was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a username has 3 to 64 characters: latin letters, digits, '.', '_' or '-'")]
pub struct InvalidUsername;

impl Username {
    /// Parses and normalises (lowercases) a username.
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let s = raw.trim().to_ascii_lowercase();
        let ok_len = (3..=64).contains(&s.len());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_chars {
            Ok(Self(s))
        } else {
            Err(InvalidUsername)
        }
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = InvalidUsername;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Interface language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// English.
    En,
    /// Russian.
    Ru,
}

impl Locale {
    /// The two-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Ru => "ru",
        }
    }

    /// Picks the first supported language of an `Accept-Language` header; English otherwise.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Ok(locale) = primary.parse::<Locale>()
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Locale::En)
    }
}

impl FromStr for Locale {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Locale::En),
            "ru" => Ok(Locale::Ru),
            _ => Err(()),
        }
    }
}

/// What a member may do in a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Answers the chats assigned to them.
    Operator,
    /// Manages accounts, bots, team and settings.
    Admin,
    /// Like admin; owns the workspace.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// Owners and admins manage the workspace.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            _ => Err(()),
        }
    }
}

/// A user's role in a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The member.
    pub user_id: UserId,
    /// What they may do.
    pub role: Role,
    /// How many open chats may be assigned to them at once.
    pub max_chats: i32,
    /// When they joined.
    pub created_at: Timestamp,
}

/// A signed-in browser session. Only the SHA-256 of the token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    /// Identifier.
    pub id: WebSessionId,
    /// SHA-256 of the session token, hex.
    pub token_hash: String,
    /// SHA-256 of the CSRF token, hex.
    pub csrf_hash: String,
    /// Whose session.
    pub user_id: UserId,
    /// The workspace the session acts in.
    pub workspace_id: WorkspaceId,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last used.
    pub last_seen_at: Timestamp,
    /// When it stops being valid (sliding).
    pub expires_at: Timestamp,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
}

/// A session to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebSession {
    /// SHA-256 of the session token, hex.
    pub token_hash: String,
    /// SHA-256 of the CSRF token, hex.
    pub csrf_hash: String,
    /// Whose session.
    pub user_id: UserId,
    /// The workspace it acts in.
    pub workspace_id: WorkspaceId,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// An append-only record of a security-relevant action. Never holds secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Identifier.
    pub id: AuditEventId,
    /// The workspace concerned, if any.
    pub workspace_id: Option<WorkspaceId>,
    /// Who did it, if known.
    pub actor_user_id: Option<UserId>,
    /// What happened, e.g. `auth.login_succeeded`.
    pub action: String,
    /// What it was done to, e.g. `user:42`.
    pub target: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Extra facts: a JSON object of names to strings, numbers, booleans or nulls.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = std::collections::BTreeMap<String, AuditDetail>)
    )]
    pub details: serde_json::Value,
    /// When.
    pub created_at: Timestamp,
}

/// What one value of an audit event's details may be (for the API's schema; the details are
/// written by the services as small JSON objects of plain values).
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AuditDetail {
    /// Nothing.
    Null,
    /// A text.
    Text(String),
    /// A number.
    Number(i64),
    /// A flag.
    Flag(bool),
}

/// An audit event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// The workspace concerned.
    pub workspace_id: Option<WorkspaceId>,
    /// Who did it.
    pub actor_user_id: Option<UserId>,
    /// What happened.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Extra facts.
    pub details: serde_json::Value,
    /// When.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_is_normalised_and_validated() {
        assert_eq!(
            Username::parse(" Anna.K ").map(|u| u.0),
            Ok("anna.k".to_string())
        );
        assert_eq!(Username::parse("ab"), Err(InvalidUsername));
        assert_eq!(Username::parse("анна"), Err(InvalidUsername));
        assert_eq!(Username::parse("a b c"), Err(InvalidUsername));
    }

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(
            Locale::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Locale::Ru
        );
        assert_eq!(
            Locale::from_accept_language("de-DE,en;q=0.5,ru;q=0.7"),
            Locale::Ru
        );
        assert_eq!(Locale::from_accept_language("de-DE"), Locale::En);
        assert_eq!(Locale::from_accept_language(""), Locale::En);
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Owner, Role::Admin, Role::Operator] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!(Role::Admin.is_admin() && !Role::Operator.is_admin());
    }
}
