//! Every error code an API answer can carry has an English and a Russian message.

use switchboard_domain::ErrorCode;
use switchboard_domain::i18n;

#[test]
fn every_error_code_is_in_the_catalogue() {
    let mut missing = Vec::new();
    let codes = switchboard_sessions::SessionError::ALL_CODES
        .iter()
        .chain(switchboard_vault::VaultError::ALL_CODES)
        .chain(switchboard_files::FileError::ALL_CODES)
        .chain(TELEGRAM_AND_CONNECT_CODES)
        .chain(UPLOAD_CODES);
    let api_codes = ErrorCode::ALL.iter().map(|c| c.key());
    for code in codes.copied().chain(api_codes) {
        if !i18n::has(code) {
            missing.push(code);
        }
    }
    assert!(missing.is_empty(), "codes without messages: {missing:?}");
}

/// The codes of the session upload (`POST /api/v1/accounts/import/upload`).
const UPLOAD_CODES: &[&str] = &[
    "upload_file_too_large",
    "upload_too_large",
    "upload_too_many_files",
    "upload_empty",
    "upload_invalid",
];

/// The codes of `switchboard_telegram::Error::code` and `ConnectError::code`.
const TELEGRAM_AND_CONNECT_CODES: &[&str] = &[
    "phone_number_invalid",
    "phone_number_banned",
    "phone_number_unoccupied",
    "phone_code_invalid",
    "phone_code_attempts_exceeded",
    "phone_code_expired",
    "send_code_unavailable",
    "password_invalid",
    "session_password_needed",
    "flood_wait",
    "login_token_expired",
    "session_unauthorized",
    "account_banned",
    "telegram_unreachable",
    "telegram_error",
    "login_finished",
    "login_wrong_step",
    "session_no_auth_key",
    "auth_key_provisioning_failed",
    "telegram_config_invalid",
    "store_error",
    "telegram_client_crashed",
    "telegram_unexpected_answer",
    "telegram_proxy_unreachable",
    "telegram_proxy_auth_failed",
    "telegram_proxy_failed",
    "login_flow_not_found",
    "account_exists",
    "not_found",
    "internal",
];

/// Every error a scheduled post's run can show in its history has a text in both languages
/// (and the fallback that names a Telegram refusal this version does not know).
#[test]
fn every_run_error_code_is_in_the_catalogue() {
    let keys: Vec<String> = switchboard_domain::RUN_ERROR_CODES
        .iter()
        .map(|c| switchboard_domain::run_error_key(c))
        .chain(["run_error_other".to_string()])
        .collect();
    for key in &keys {
        assert!(i18n::has(key), "{key} is missing");
        let (en, ru) = (
            i18n::t(switchboard_domain::Locale::En, key),
            i18n::t(switchboard_domain::Locale::Ru, key),
        );
        assert!(
            !en.is_empty() && !ru.is_empty() && en != ru,
            "{key}: {en:?} / {ru:?}"
        );
    }
    assert!(i18n::t(switchboard_domain::Locale::Ru, "run_error_other").contains("{code}"));
}
