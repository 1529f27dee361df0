//! Telegram sign-in's data (docs/web-login.md): self-service users found by phone, one-time
//! codes (kept as keyed hashes, their attempts counted atomically by the store), trusted
//! devices, the service bot's links to users and the nonces that bind them, invites and
//! installation-wide settings — and the [`SigninStore`] port both backends implement.
//!
//! Every secret here (code, nonce, device token, invite token) reaches the store only as a
//! hash computed by the services layer; the store never sees the secret itself.

use crate::ids::{BotId, UserId};
use crate::model::{Locale, Membership, User, Workspace};
use crate::rows::{Columns, corrupt, read_user};
use crate::store::StoreResult;
use crate::time::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

id_type!(
    /// A one-time sign-in code.
    SigninCodeId
);
id_type!(
    /// A remembered browser.
    TrustedDeviceId
);
id_type!(
    /// A sign-up invitation.
    InviteId
);

/// The installation setting naming the service bot (a bot id, as text).
pub const SETTING_SERVICE_BOT: &str = "service_bot_id";

/// A self-service user to create with their personal workspace.
#[derive(Clone, Debug)]
pub struct NewSigninUser {
    /// Phone, digits only.
    pub phone: String,
    /// The Telegram user who signed in.
    pub telegram_user_id: i64,
    /// Display name (from Telegram).
    pub display_name: String,
    /// Name of the personal workspace.
    pub workspace_name: String,
    /// Preferred language, if known.
    pub locale: Option<Locale>,
    /// The hash of the invite it signs up with, used up in the same transaction
    /// (`Conflict(ErrorCode::InviteRequired)` when it is not valid then).
    pub invite_hash: Option<String>,
}

/// A user found by phone: who they are and which Telegram user signed in with that phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneUser {
    /// The user.
    pub user: User,
    /// Their Telegram user id (set at their first Telegram sign-in).
    pub telegram_user_id: Option<i64>,
}

/// A code to store.
#[derive(Clone, Debug)]
pub struct NewSigninCode {
    /// Whose.
    pub user_id: UserId,
    /// Keyed hash of the code (hex).
    pub code_hash: String,
    /// Issued.
    pub created_at: Timestamp,
    /// Refused from this time on.
    pub expires_at: Timestamp,
    /// The requesting client address.
    pub ip: Option<String>,
}

/// One attempt taken on a user's live code: the attempt is already counted when this is
/// returned, so the caller compares and then marks the code used on a match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeAttempt {
    /// The code.
    pub id: SigninCodeId,
    /// Its keyed hash, to compare in constant time.
    pub code_hash: String,
    /// Attempts counted so far, this one included (1-based).
    pub attempts: i32,
}

/// A code presented to sign in, and what to write when it matches
/// ([`SigninStore::redeem_signin_code`]).
#[derive(Clone, Copy, Debug)]
pub struct CodeRedemption<'a> {
    /// Whose code.
    pub user: UserId,
    /// Keyed hash of the code presented (hex), compared in constant time with the stored one.
    pub presented_hash: &'a str,
    /// The time of the check (a code expired at `now` is not live).
    pub now: Timestamp,
    /// Attempts allowed per code.
    pub max_attempts: i32,
    /// The web session to open on a match; `None` uses the code up and opens nothing (a
    /// disabled user).
    pub session: Option<&'a crate::NewWebSession>,
    /// A browser to remember with the session.
    pub device: Option<&'a NewTrustedDevice>,
    /// Appended on a match, with the rest.
    pub audit: &'a crate::NewAuditEvent,
}

/// What a [`SigninStore::redeem_signin_code`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// The user has no live code: none, expired, used, or out of attempts.
    NoLiveCode,
    /// The code did not match; the attempt is counted (this many so far, 1-based).
    Mismatch {
        /// Attempts counted on the code, this one included.
        attempts: i32,
    },
    /// The code matched and is used up; the session opened, when one was asked for.
    Redeemed {
        /// The new session.
        session: Option<crate::WebSession>,
    },
}

/// Whether two hashes (of codes, tokens) are equal, in time that does not depend on where they
/// differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A remembered browser to store.
#[derive(Clone, Debug)]
pub struct NewTrustedDevice {
    /// Whose.
    pub user_id: UserId,
    /// SHA-256 of the cookie token (hex).
    pub token_hash: String,
    /// Remembered at.
    pub created_at: Timestamp,
    /// Forgotten at (absolute; never extended).
    pub expires_at: Timestamp,
    /// The browser's `User-Agent`, shortened.
    pub user_agent: Option<String>,
    /// The client address it was remembered from.
    pub ip: Option<String>,
}

/// A remembered browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustedDevice {
    /// Identifier.
    pub id: TrustedDeviceId,
    /// Whose.
    pub user_id: UserId,
    /// First seen (remembered).
    pub created_at: Timestamp,
    /// Last signed in with.
    pub last_used_at: Timestamp,
    /// Forgotten at.
    pub expires_at: Timestamp,
    /// The browser's `User-Agent`.
    pub user_agent: Option<String>,
    /// The client address it was remembered from.
    pub ip: Option<String>,
    /// SHA-256 of its token (to tell the current device; never shown).
    #[serde(skip)]
    pub token_hash: String,
}

/// A deep-link nonce to store.
#[derive(Clone, Debug)]
pub struct NewBotNonce {
    /// SHA-256 of the nonce (hex).
    pub nonce_hash: String,
    /// The user it binds.
    pub user_id: UserId,
    /// The service bot it is for.
    pub bot_id: BotId,
    /// Issued.
    pub created_at: Timestamp,
    /// Refused from this time on.
    pub expires_at: Timestamp,
}

/// The chat in which the service bot reaches a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotLink {
    /// The user.
    pub user_id: UserId,
    /// The service bot.
    pub bot_id: BotId,
    /// The Telegram chat (the user's private chat with the bot).
    pub chat_id: i64,
    /// The Telegram user who bound it.
    pub telegram_user_id: i64,
    /// The language the user's Telegram app uses, for the bot's messages.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub locale: Option<Locale>,
    /// When.
    pub bound_at: Timestamp,
}

/// A sign-up invitation to store.
#[derive(Clone, Debug)]
pub struct NewInvite {
    /// SHA-256 of the token (hex).
    pub token_hash: String,
    /// The owner who created it.
    pub created_by: UserId,
    /// Created.
    pub created_at: Timestamp,
    /// Refused from this time on.
    pub expires_at: Timestamp,
}

/// A sign-up invitation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    /// Identifier.
    pub id: InviteId,
    /// Who created it (`None` once deleted).
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: Timestamp,
    /// Refused from this time on.
    pub expires_at: Timestamp,
    /// When it was used.
    pub used_at: Option<Timestamp>,
    /// Who signed up with it.
    pub used_by: Option<UserId>,
}

/// What [`SigninStore::purge_signin`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigninPurge {
    /// Codes.
    pub codes: u64,
    /// Devices.
    pub devices: u64,
    /// Nonces.
    pub nonces: u64,
}

/// Storage of Telegram sign-in.
#[async_trait]
pub trait SigninStore: Send + Sync + 'static {
    // --- users by phone ---

    /// The installation's main workspace: the first one created (its owners manage
    /// installation-wide settings such as the service bot and invites); `None` before any.
    async fn main_workspace(&self) -> StoreResult<Option<crate::ids::WorkspaceId>>;

    /// The user with this phone (digits only), if any.
    async fn find_user_by_phone(&self, phone: &str) -> StoreResult<Option<PhoneUser>>;
    /// The user whose Telegram user id this is, if any.
    async fn find_user_by_telegram_id(
        &self,
        telegram_user_id: i64,
    ) -> StoreResult<Option<PhoneUser>>;
    /// Creates a self-service user, their personal workspace and their owner membership in one
    /// transaction (using up `invite_hash` when given); `Conflict(ErrorCode::PhoneTaken)` if the phone or the Telegram user
    /// already has a user.
    async fn create_signin_user(
        &self,
        user: &NewSigninUser,
        now: Timestamp,
    ) -> StoreResult<(User, Workspace, Membership)>;

    // --- one-time codes ---

    /// Stores a new code for its user, retires the user's older live codes (only the newest
    /// code is accepted) and appends `audit`, in one transaction.
    async fn create_signin_code(
        &self,
        code: &NewSigninCode,
        audit: &crate::NewAuditEvent,
    ) -> StoreResult<SigninCodeId>;
    /// Checks a code in one transaction: counts one attempt on the user's newest live code
    /// (not used, not expired at `now`, fewer than `max_attempts` attempts so far; parallel
    /// calls never count more than `max_attempts` on one code, and only one of them can use
    /// it), compares the keyed hashes in constant time and, on a match, uses the code up,
    /// opens the session, remembers the device and appends the audit event.
    async fn redeem_signin_code(&self, redemption: &CodeRedemption<'_>) -> StoreResult<Redemption>;

    // --- trusted devices ---

    /// Remembers a browser.
    async fn create_trusted_device(&self, device: &NewTrustedDevice) -> StoreResult<TrustedDevice>;
    /// The user's device with this token hash if it has not expired at `now`, recording its use
    /// (`last_used_at`; the expiry does not move).
    async fn use_trusted_device(
        &self,
        user: UserId,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<TrustedDevice>>;
    /// The user's devices not expired at `now`, newest first.
    async fn list_trusted_devices(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<TrustedDevice>>;
    /// Forgets one of the user's devices; false if the user has no such device.
    async fn delete_trusted_device(&self, user: UserId, id: TrustedDeviceId) -> StoreResult<bool>;
    /// Forgets every device of the user; how many.
    async fn delete_user_trusted_devices(&self, user: UserId) -> StoreResult<u64>;

    // --- the service bot ---

    /// Stores a binding nonce.
    async fn create_bot_nonce(&self, nonce: &NewBotNonce) -> StoreResult<()>;
    /// Uses a nonce of `bot` (once: only the first call that finds it live gets its user).
    async fn claim_bot_nonce(
        &self,
        nonce_hash: &str,
        bot: BotId,
        now: Timestamp,
    ) -> StoreResult<Option<UserId>>;
    /// Stores (or replaces) the user's link with the service bot.
    async fn set_bot_link(&self, link: &BotLink) -> StoreResult<()>;
    /// The user's link with the service bot, if bound.
    async fn get_bot_link(&self, user: UserId) -> StoreResult<Option<BotLink>>;
    /// Removes the user's link; true if there was one.
    async fn delete_bot_link(&self, user: UserId) -> StoreResult<bool>;

    // --- invites ---

    /// Stores an invite.
    async fn create_invite(&self, invite: &NewInvite) -> StoreResult<Invite>;
    /// True if an invite with this hash is unused and not expired at `now`.
    async fn invite_is_valid(&self, token_hash: &str, now: Timestamp) -> StoreResult<bool>;

    // --- installation settings ---

    /// A setting's value.
    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Sets (`Some`) or clears (`None`) a setting.
    async fn set_setting(
        &self,
        name: &str,
        value: Option<&str>,
        by: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<()>;

    // --- housekeeping ---

    /// Deletes codes, nonces and devices that expired before `now`.
    async fn purge_signin(&self, now: Timestamp) -> StoreResult<SigninPurge>;
}

/// The columns [`read_trusted_device`] reads.
pub const TRUSTED_DEVICE_COLUMNS: &str =
    "id, user_id, token_hash, created_at, last_used_at, expires_at, user_agent, ip";
/// The columns [`read_bot_link`] reads.
pub const BOT_LINK_COLUMNS: &str = "user_id, bot_id, chat_id, telegram_user_id, locale, bound_at";
/// The columns [`read_invite`] reads.
pub const INVITE_COLUMNS: &str = "id, created_by, created_at, expires_at, used_at, used_by";
/// The columns [`read_phone_user`] reads (a user's, with `telegram_user_id`).
pub const PHONE_USER_COLUMNS: &str =
    "id, username, display_name, locale, disabled, created_at, telegram_user_id";

/// A trusted device.
pub fn read_trusted_device(op: &'static str, row: &impl Columns) -> StoreResult<TrustedDevice> {
    Ok(TrustedDevice {
        id: TrustedDeviceId(row.get(op, "id")?),
        user_id: UserId(row.get(op, "user_id")?),
        token_hash: row.get(op, "token_hash")?,
        created_at: Timestamp(row.get(op, "created_at")?),
        last_used_at: Timestamp(row.get(op, "last_used_at")?),
        expires_at: Timestamp(row.get(op, "expires_at")?),
        user_agent: row.get(op, "user_agent")?,
        ip: row.get(op, "ip")?,
    })
}

/// A user's link with the service bot.
pub fn read_bot_link(op: &'static str, row: &impl Columns) -> StoreResult<BotLink> {
    let locale: Option<String> = row.get(op, "locale")?;
    Ok(BotLink {
        user_id: UserId(row.get(op, "user_id")?),
        bot_id: BotId(row.get(op, "bot_id")?),
        chat_id: row.get(op, "chat_id")?,
        telegram_user_id: row.get(op, "telegram_user_id")?,
        locale: locale
            .map(|l| {
                l.parse::<Locale>()
                    .map_err(|()| corrupt(op, "signin_bot_links.locale"))
            })
            .transpose()?,
        bound_at: Timestamp(row.get(op, "bound_at")?),
    })
}

/// An invite.
pub fn read_invite(op: &'static str, row: &impl Columns) -> StoreResult<Invite> {
    let created_by: Option<i64> = row.get(op, "created_by")?;
    let used_at: Option<i64> = row.get(op, "used_at")?;
    let used_by: Option<i64> = row.get(op, "used_by")?;
    Ok(Invite {
        id: InviteId(row.get(op, "id")?),
        created_by: created_by.map(UserId),
        created_at: Timestamp(row.get(op, "created_at")?),
        expires_at: Timestamp(row.get(op, "expires_at")?),
        used_at: used_at.map(Timestamp),
        used_by: used_by.map(UserId),
    })
}

/// A user with their Telegram user id.
pub fn read_phone_user(op: &'static str, row: &impl Columns) -> StoreResult<PhoneUser> {
    Ok(PhoneUser {
        user: read_user(op, row, "created_at")?,
        telegram_user_id: row.get(op, "telegram_user_id")?,
    })
}

/// A code attempt (`id, code_hash, attempts`).
pub fn read_code_attempt(op: &'static str, row: &impl Columns) -> StoreResult<CodeAttempt> {
    Ok(CodeAttempt {
        id: SigninCodeId(row.get(op, "id")?),
        code_hash: row.get(op, "code_hash")?,
        attempts: row.get(op, "attempts")?,
    })
}
