//! The error type of the Telegram layer, with a stable snake_case code per variant for the
//! API's `{"error": {"code": …}}`, and the mapping from grammers' invocation errors.
//!
//! Messages never contain codes, passwords, auth keys or session strings.

use grammers_mtsender::InvocationError;
use switchboard_domain::StoreError;
use switchboard_sessions::SessionError;
use switchboard_vault::VaultError;

/// Everything that can go wrong in the Telegram layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Telegram rejected the phone number.
    #[error("the phone number is invalid")]
    PhoneNumberInvalid,
    /// Telegram banned the phone number.
    #[error("the phone number is banned from Telegram")]
    PhoneNumberBanned,
    /// No Telegram account uses this phone; it must be registered with an official app.
    #[error("no Telegram account uses this phone number; sign up with an official app first")]
    SignUpRequired,
    /// The login code was wrong.
    #[error("the code is wrong ({attempts_left} attempts left)")]
    InvalidCode {
        /// Attempts left before a new code must be requested.
        attempts_left: u32,
    },
    /// Too many wrong codes: a new code must be requested.
    #[error("too many wrong codes; request a new code")]
    CodeAttemptsExceeded,
    /// The login code expired (or was replaced by a newer one).
    #[error("the code expired; request a new one")]
    CodeExpired,
    /// Telegram has no further way to deliver the code.
    #[error("Telegram cannot send the code another way")]
    SendCodeUnavailable,
    /// The 2FA password was wrong.
    #[error("the password is wrong")]
    InvalidPassword,
    /// The account needs its 2FA password before anything else.
    #[error("the account's 2FA password is needed")]
    PasswordNeeded,
    /// Telegram asked to wait.
    #[error("Telegram asks to wait {seconds} seconds")]
    FloodWait {
        /// Seconds to wait.
        seconds: u32,
    },
    /// The QR login token expired before it was scanned.
    #[error("the QR login token expired")]
    LoginTokenExpired,
    /// The session's auth key is not (or no longer) authorized.
    #[error("the session is not authorized (revoked or logged out)")]
    Unauthorized,
    /// The account is banned or deactivated.
    #[error("the account is banned or deactivated")]
    Banned,
    /// Telegram could not be reached or dropped the connection.
    #[error("Telegram is unreachable: {0}")]
    Unreachable(String),
    /// Telegram answered with another error.
    #[error("Telegram error {code} {name}")]
    Rpc {
        /// Telegram's numeric code.
        code: i32,
        /// Telegram's error name, e.g. `PHONE_CODE_EMPTY`.
        name: String,
    },
    /// The login flow already finished (or failed for good); start a new one.
    #[error("this login flow is finished")]
    LoginFinished,
    /// The login flow is not at a step where this action makes sense.
    #[error("this login step is not expected now (the flow expects {expected})")]
    WrongStep {
        /// What the flow expects instead.
        expected: &'static str,
    },
    /// A session cannot be exported or used because it has no auth key.
    #[error("the session has no auth key")]
    NoAuthKey,
    /// A new auth key could not be obtained from the simulator's control API.
    #[error("cannot obtain an auth key from the simulator: {0}")]
    KeyProvisioning(String),
    /// The Telegram settings are inconsistent.
    #[error("invalid Telegram settings: {0}")]
    Config(&'static str),
    /// The store failed.
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    /// Sealing or opening a secret failed.
    #[error("vault error: {0}")]
    Vault(#[from] VaultError),
    /// A session format could not be exported.
    #[error("session format error: {0}")]
    Session(#[from] SessionError),
    /// The client's connection pool stopped unexpectedly (it panicked).
    #[error("the Telegram client stopped unexpectedly")]
    ClientCrashed,
    /// Telegram sent something this layer does not handle.
    #[error("unexpected answer from Telegram: {0}")]
    Unexpected(&'static str),
    /// The SOCKS5 proxy (`telegram.proxy`) failed: unreachable, credentials refused, or it
    /// could not reach Telegram. Never a direct connection instead.
    #[error("{}", .0.describe())]
    Proxy(crate::proxy::ProxyFailure),
}

impl Error {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PhoneNumberInvalid => "phone_number_invalid",
            Self::PhoneNumberBanned => "phone_number_banned",
            Self::SignUpRequired => "phone_number_unoccupied",
            Self::InvalidCode { .. } => "phone_code_invalid",
            Self::CodeAttemptsExceeded => "phone_code_attempts_exceeded",
            Self::CodeExpired => "phone_code_expired",
            Self::SendCodeUnavailable => "send_code_unavailable",
            Self::InvalidPassword => "password_invalid",
            Self::PasswordNeeded => "session_password_needed",
            Self::FloodWait { .. } => "flood_wait",
            Self::LoginTokenExpired => "login_token_expired",
            Self::Unauthorized => "session_unauthorized",
            Self::Banned => "account_banned",
            Self::Unreachable(_) => "telegram_unreachable",
            Self::Rpc { .. } => "telegram_error",
            Self::LoginFinished => "login_finished",
            Self::WrongStep { .. } => "login_wrong_step",
            Self::NoAuthKey => "session_no_auth_key",
            Self::KeyProvisioning(_) => "auth_key_provisioning_failed",
            Self::Config(_) => "telegram_config_invalid",
            Self::Store(_) => "store_error",
            Self::Vault(e) => e.code(),
            Self::Session(e) => e.code(),
            Self::ClientCrashed => "telegram_client_crashed",
            Self::Unexpected(_) => "telegram_unexpected_answer",
            Self::Proxy(p) => p.code(),
        }
    }

    /// Seconds to wait, for a FloodWait.
    pub fn flood_wait_seconds(&self) -> Option<u32> {
        match self {
            Self::FloodWait { seconds } => Some(*seconds),
            _ => None,
        }
    }
}

/// Whether an RPC error means the auth key is no longer authorized.
pub(crate) fn is_unauthorized(e: &InvocationError) -> bool {
    e.is("AUTH_KEY_UNREGISTERED")
        || e.is("AUTH_KEY_INVALID")
        || e.is("AUTH_KEY_PERM_EMPTY")
        || e.is("SESSION_REVOKED")
        || e.is("SESSION_EXPIRED")
}

/// Whether an RPC error means the account is banned or deactivated.
pub(crate) fn is_banned(e: &InvocationError) -> bool {
    e.is("USER_DEACTIVATED*")
}

impl From<InvocationError> for Error {
    fn from(e: InvocationError) -> Self {
        if is_banned(&e) {
            return Self::Banned;
        }
        if is_unauthorized(&e) {
            return Self::Unauthorized;
        }
        match e {
            InvocationError::Rpc(rpc) => {
                match rpc.name.as_str() {
                    "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" | "SLOWMODE_WAIT" if rpc.code == 420 => {
                        return Self::FloodWait {
                            seconds: rpc.value.unwrap_or(0),
                        };
                    }
                    "PHONE_NUMBER_INVALID" => return Self::PhoneNumberInvalid,
                    "PHONE_NUMBER_BANNED" => return Self::PhoneNumberBanned,
                    "PHONE_CODE_EXPIRED" => return Self::CodeExpired,
                    "SEND_CODE_UNAVAILABLE" => return Self::SendCodeUnavailable,
                    "PASSWORD_HASH_INVALID" => return Self::InvalidPassword,
                    "SESSION_PASSWORD_NEEDED" => return Self::PasswordNeeded,
                    "AUTH_TOKEN_EXPIRED" => return Self::LoginTokenExpired,
                    _ => {}
                }
                if rpc.code == 420 {
                    return Self::FloodWait {
                        seconds: rpc.value.unwrap_or(0),
                    };
                }
                Self::Rpc {
                    code: rpc.code,
                    name: rpc.name,
                }
            }
            InvocationError::Io(e) => match crate::proxy::ProxyFailure::of_io(&e) {
                Some(failure) => Self::Proxy(failure),
                None => Self::Unreachable(e.kind().to_string()),
            },
            InvocationError::Transport(e) => Self::Unreachable(e.to_string()),
            InvocationError::Dropped(why) => Self::Unreachable(why.to_string()),
            InvocationError::Authentication(e) => Self::Unreachable(e.to_string()),
            InvocationError::Deserialize(_) => Self::Unexpected("an undecodable response"),
            InvocationError::InvalidDc => Self::Unexpected("an unknown data center"),
            InvocationError::Session(_) => {
                Self::Unexpected("a session storage failure during a call")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_mtsender::RpcError;

    fn rpc(code: i32, name: &str, value: Option<u32>) -> InvocationError {
        InvocationError::Rpc(RpcError {
            code,
            name: name.into(),
            value,
            caused_by: None,
        })
    }

    #[test]
    fn rpc_errors_map_to_typed_errors_with_stable_codes() {
        let cases = [
            (rpc(420, "FLOOD_WAIT", Some(30)), "flood_wait"),
            (
                rpc(400, "PHONE_NUMBER_INVALID", None),
                "phone_number_invalid",
            ),
            (rpc(400, "PHONE_NUMBER_BANNED", None), "phone_number_banned"),
            (rpc(400, "PHONE_CODE_EXPIRED", None), "phone_code_expired"),
            (rpc(400, "PASSWORD_HASH_INVALID", None), "password_invalid"),
            (
                rpc(401, "AUTH_KEY_UNREGISTERED", None),
                "session_unauthorized",
            ),
            (rpc(401, "SESSION_REVOKED", None), "session_unauthorized"),
            (rpc(401, "USER_DEACTIVATED_BAN", None), "account_banned"),
            (
                rpc(401, "SESSION_PASSWORD_NEEDED", None),
                "session_password_needed",
            ),
            (rpc(400, "SOMETHING_ELSE", None), "telegram_error"),
        ];
        for (e, code) in cases {
            assert_eq!(Error::from(e).code(), code);
        }
        assert_eq!(
            Error::from(rpc(420, "FLOOD_WAIT", Some(30))).flood_wait_seconds(),
            Some(30)
        );
        let io = InvocationError::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert_eq!(Error::from(io).code(), "telegram_unreachable");
    }
}
