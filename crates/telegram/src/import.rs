//! Importing sessions people bring (parsed by `switchboard-sessions`) into an account, validating
//! a session with exactly one short-lived connection, and exporting a stored session as a
//! Telethon or Pyrogram string.

use std::sync::Arc;

use grammers_client::tl;
use grammers_session::Session;
use grammers_session::types::{PeerAuth, PeerInfo};
use switchboard_domain::{AccountId, AccountProfile, AccountStore};
use switchboard_sessions::{ImportedSession, Secret};
use switchboard_vault::Keyring;

use crate::client::{RetryOptions, connect};
use crate::error::{Error, is_banned, is_unauthorized};
use crate::login::{profile_of, store_initial_state};
use crate::session::{DbSession, ExportFormat};
use crate::settings::TelegramSettings;

/// What validating a session found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validation {
    /// The key is signed in as this account.
    Valid(AccountProfile),
    /// The key is not (or no longer) signed in: mark the account `unauthorized`.
    Unauthorized {
        /// Telegram's error name, e.g. `AUTH_KEY_UNREGISTERED`.
        reason: String,
    },
    /// The account is banned or deactivated: mark it `banned`.
    Banned {
        /// Telegram's error name, e.g. `USER_DEACTIVATED_BAN`.
        reason: String,
    },
}

fn rpc_name(e: &grammers_mtsender::InvocationError) -> String {
    match e {
        grammers_mtsender::InvocationError::Rpc(rpc) => rpc.name.clone(),
        _ => String::new(),
    }
}

/// Checks a session with one connection (`users.getUsers([inputUserSelf])`), caches the self user
/// with its access hash, stores `updates.getState` when the session has no update state yet,
/// and closes the connection before returning (so the live client can start next).
pub async fn validate(
    settings: &TelegramSettings,
    session: Arc<DbSession>,
) -> Result<Validation, Error> {
    if !session.has_auth_key() && settings.dc_override.is_some() {
        return Err(Error::NoAuthKey);
    }
    let conn = connect(settings, Arc::clone(&session), RetryOptions::interactive());
    let result = crate::login::bounded(settings.step_timeout, check(&conn.client, &session)).await;
    conn.quit().await?;
    result
}

async fn check(client: &grammers_client::Client, session: &DbSession) -> Result<Validation, Error> {
    let users = client
        .invoke(&tl::functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        })
        .await;
    let users = match users {
        Ok(users) => users,
        Err(e) if is_banned(&e) => {
            return Ok(Validation::Banned {
                reason: rpc_name(&e),
            });
        }
        Err(e) if is_unauthorized(&e) => {
            return Ok(Validation::Unauthorized {
                reason: rpc_name(&e),
            });
        }
        Err(e) => return Err(Error::from(e)),
    };
    let me = users
        .iter()
        .find(|u| matches!(u, tl::enums::User::User(u) if u.is_self))
        .or_else(|| users.first())
        .ok_or(Error::Unexpected("no self user"))?;
    let profile = profile_of(me)?;
    if let tl::enums::User::User(u) = me {
        session
            .cache_peer(PeerInfo::User {
                id: u.id,
                auth: u.access_hash.map(PeerAuth::from_hash),
                bot: Some(u.bot),
                is_self: Some(true),
            })
            .await?;
    }
    if session.saved_update_state().is_none() {
        store_initial_state(client, session).await?;
    }
    Ok(Validation::Valid(profile))
}

/// Writes an imported session into an account (replacing its session: keys sealed at the
/// session's DC, remapped to `dc_override` when set; cached peers; update state with channel
/// pts), then validates it with one connection. The caller marks the account by the result.
pub async fn import_into_account(
    settings: &TelegramSettings,
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    account: AccountId,
    imported: &ImportedSession,
) -> Result<(Arc<DbSession>, Validation), Error> {
    let session = Arc::new(DbSession::from_imported(settings, imported));
    session.persist_into(store, keyring, account).await?;
    let validation = validate(settings, Arc::clone(&session)).await?;
    Ok((session, validation))
}

/// Exports an account's stored session as a Telethon or Pyrogram string (a secret: audit the
/// export, never log the string). Opens no connection.
pub async fn export_account(
    settings: &TelegramSettings,
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    account: AccountId,
    format: ExportFormat,
) -> Result<Secret, Error> {
    let api_id = store
        .load_account(account)
        .await?
        .api_id
        .unwrap_or(settings.api_id);
    let session = DbSession::load(settings, store, keyring, account).await?;
    session.export_string(format, api_id)
}
