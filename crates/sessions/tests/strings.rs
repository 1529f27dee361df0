//! Known-answer, detection, error and round-trip tests for the string formats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;
use switchboard_sessions::{
    AuthKey, ExportParams, SessionError, SessionFormat, gramjs, parse_string, pyrogram, telethon,
};

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn key() -> AuthKey {
    AuthKey::new(key_bytes())
}

#[test]
fn telethon_ipv4_known_answer() {
    let s = telethon::parse_string(TELETHON_V4).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonString);
    assert_eq!(s.dc_id, 2);
    assert_eq!(s.server_addr, addr("149.154.167.51:443"));
    assert_eq!(s.auth_key, key());
    assert_eq!(s.user_id, None);
    assert!(!s.test_mode);
}

#[test]
fn telethon_ipv6_known_answer() {
    let s = telethon::parse_string(TELETHON_V6).unwrap();
    assert_eq!(s.dc_id, 4);
    assert_eq!(s.server_addr, addr("[2001:67c:4e8:f004::a]:443"));
    assert_eq!(s.auth_key, key());
}

#[test]
fn telethon_layout_built_by_hand() {
    // dc 3, 127.0.0.1:8443, key of 0xAB.
    let mut raw = vec![3u8, 127, 0, 0, 1];
    raw.extend_from_slice(&8443u16.to_be_bytes());
    raw.extend_from_slice(&[0xAB; 256]);
    let s = format!("1{}", URL_SAFE.encode(&raw));
    assert_eq!(s.len(), 353);
    let parsed = telethon::parse_string(&s).unwrap();
    assert_eq!(parsed.dc_id, 3);
    assert_eq!(parsed.server_addr, addr("127.0.0.1:8443"));
    assert_eq!(parsed.auth_key, AuthKey::new([0xAB; 256]));
}

#[test]
fn telethon_test_dc_address_sets_test_mode() {
    let mut raw = vec![2u8, 149, 154, 167, 40];
    raw.extend_from_slice(&443u16.to_be_bytes());
    raw.extend_from_slice(&key_bytes());
    let parsed = telethon::parse_string(&format!("1{}", URL_SAFE.encode(&raw))).unwrap();
    assert!(parsed.test_mode);
}

#[test]
fn telethon_tolerates_missing_padding_standard_alphabet_and_wrapping() {
    let unpadded = TELETHON_V4.trim_end_matches('=');
    assert_eq!(telethon::parse_string(unpadded).unwrap().auth_key, key());
    let standard = TELETHON_V4.replace('-', "+").replace('_', "/");
    assert_eq!(telethon::parse_string(&standard).unwrap().auth_key, key());
    let wrapped = format!("  {}\n{}\n", &TELETHON_V4[..100], &TELETHON_V4[100..]);
    assert_eq!(telethon::parse_string(&wrapped).unwrap().auth_key, key());
}

#[test]
fn gramjs_known_answers() {
    let s = gramjs::parse_string(GRAMJS_V4).unwrap();
    assert_eq!(s.format, SessionFormat::GramjsString);
    assert_eq!(s.dc_id, 2);
    assert_eq!(s.server_addr, addr("149.154.167.51:443"));
    assert_eq!(s.auth_key, key());
    let s = gramjs::parse_string(GRAMJS_14).unwrap();
    assert_eq!(s.dc_id, 4);
    assert_eq!(s.server_addr, addr("149.154.167.91:443"));
}

#[test]
fn gramjs_ipv6_address_text() {
    let address = b"2001:67c:4e8:f002::a";
    let mut raw = vec![2u8];
    raw.extend_from_slice(&(address.len() as i16).to_be_bytes());
    raw.extend_from_slice(address);
    raw.extend_from_slice(&443i16.to_be_bytes());
    raw.extend_from_slice(&key_bytes());
    let s = format!("1{}", STANDARD.encode(&raw));
    let parsed = parse_string(&s).unwrap();
    assert_eq!(parsed.format, SessionFormat::GramjsString);
    assert_eq!(parsed.server_addr, addr("[2001:67c:4e8:f002::a]:443"));
}

#[test]
fn pyrogram_current_known_answer() {
    let s = pyrogram::parse_string(PYROGRAM_CURRENT).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramString);
    assert_eq!(s.dc_id, 2);
    assert_eq!(s.api_id, Some(2040));
    assert!(!s.test_mode);
    assert_eq!(s.auth_key, key());
    assert_eq!(s.user_id, Some(123_456_789));
    assert_eq!(s.is_bot, Some(false));
    assert_eq!(s.server_addr, None);
    assert_eq!(s.resolved_addr(), addr("149.154.167.51:443"));
}

#[test]
fn pyrogram_v1_known_answer() {
    let s = pyrogram::parse_string(PYROGRAM_V1).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramStringV1);
    assert_eq!(s.dc_id, 1);
    assert!(s.test_mode);
    assert_eq!(s.user_id, Some(987_654_321));
    assert_eq!(s.is_bot, Some(true));
    assert_eq!(s.api_id, None);
    assert_eq!(s.resolved_addr(), addr("149.154.175.10:80"));
}

#[test]
fn pyrogram_v1_wide_known_answer() {
    let s = pyrogram::parse_string(PYROGRAM_V1_WIDE).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramStringV1Wide);
    assert_eq!(s.dc_id, 5);
    assert_eq!(s.user_id, Some(5_000_000_000));
    assert_eq!(s.auth_key, key());
}

#[test]
fn pyrogram_tolerates_padding() {
    let padded = format!("{PYROGRAM_CURRENT}==");
    assert_eq!(
        pyrogram::parse_string(&padded).unwrap().user_id,
        Some(123_456_789)
    );
}

#[test]
fn auto_detect_picks_each_format() {
    let cases = [
        (TELETHON_V4, SessionFormat::TelethonString),
        (TELETHON_V6, SessionFormat::TelethonString),
        (GRAMJS_V4, SessionFormat::GramjsString),
        (GRAMJS_14, SessionFormat::GramjsString),
        (PYROGRAM_CURRENT, SessionFormat::PyrogramString),
        (PYROGRAM_V1, SessionFormat::PyrogramStringV1),
        (PYROGRAM_V1_WIDE, SessionFormat::PyrogramStringV1Wide),
    ];
    for (input, format) in cases {
        let parsed = parse_string(input).unwrap();
        assert_eq!(parsed.format, format, "{format}");
        assert_eq!(parsed.auth_key, key());
    }
    // The same length, two formats: the decoded layout decides.
    assert_eq!(TELETHON_V6.len(), GRAMJS_V4.len());
}

fn code(result: Result<impl std::fmt::Debug, SessionError>) -> &'static str {
    result.unwrap_err().code()
}

#[test]
fn malformed_strings_get_precise_codes() {
    assert_eq!(code(parse_string("")), "session_string_empty");
    assert_eq!(code(parse_string("  \n ")), "session_string_empty");
    assert_eq!(
        code(parse_string("not base64 !!!")),
        "session_string_invalid_base64"
    );
    assert_eq!(code(parse_string("AAAA")), "session_string_unrecognized");
    assert_eq!(code(parse_string(&"A".repeat(10_000))), "session_too_large");

    assert_eq!(
        code(telethon::parse_string("2AAAA")),
        "session_unsupported_version"
    );
    assert_eq!(
        code(telethon::parse_string("1AAAA")),
        "session_string_wrong_length"
    );
    assert_eq!(
        code(telethon::parse_string("1@@@")),
        "session_string_invalid_base64"
    );
    assert_eq!(
        code(pyrogram::parse_string("AAAA")),
        "session_string_wrong_length"
    );
    assert_eq!(
        code(gramjs::parse_string("1AAAA")),
        "session_string_wrong_length"
    );
    assert_eq!(
        code(gramjs::parse_string("9AAAA")),
        "session_unsupported_version"
    );
}

#[test]
fn all_zero_key_is_no_key() {
    let mut raw = vec![2u8, 149, 154, 167, 51];
    raw.extend_from_slice(&443u16.to_be_bytes());
    raw.extend_from_slice(&[0; 256]);
    let s = format!("1{}", URL_SAFE.encode(&raw));
    assert_eq!(
        code(telethon::parse_string(&s)),
        "session_string_no_auth_key"
    );
    assert_eq!(code(parse_string(&s)), "session_string_no_auth_key");
}

#[test]
fn zero_dc_and_zero_port_are_rejected() {
    let mut raw = vec![0u8, 149, 154, 167, 51];
    raw.extend_from_slice(&443u16.to_be_bytes());
    raw.extend_from_slice(&key_bytes());
    let s = format!("1{}", URL_SAFE.encode(&raw));
    assert_eq!(code(telethon::parse_string(&s)), "session_invalid_dc_id");

    let mut raw = vec![2u8, 149, 154, 167, 51, 0, 0];
    raw.extend_from_slice(&key_bytes());
    let s = format!("1{}", URL_SAFE.encode(&raw));
    assert_eq!(code(telethon::parse_string(&s)), "session_invalid_address");
}

#[test]
fn gramjs_bad_address_is_reported() {
    let address = b"not-an-ip";
    let mut raw = vec![2u8];
    raw.extend_from_slice(&(address.len() as i16).to_be_bytes());
    raw.extend_from_slice(address);
    raw.extend_from_slice(&443i16.to_be_bytes());
    raw.extend_from_slice(&key_bytes());
    let s = format!("1{}", STANDARD.encode(&raw));
    assert_eq!(code(parse_string(&s)), "session_invalid_address");
}

#[test]
fn pyrogram_user_id_above_i64_is_rejected() {
    let mut raw = vec![2u8];
    raw.extend_from_slice(&2040u32.to_be_bytes());
    raw.push(0);
    raw.extend_from_slice(&key_bytes());
    raw.extend_from_slice(&u64::MAX.to_be_bytes());
    raw.push(0);
    let s = URL_SAFE_NO_PAD.encode(&raw);
    assert_eq!(code(pyrogram::parse_string(&s)), "session_invalid_user_id");
}

#[test]
fn telethon_export_matches_python_byte_for_byte() {
    let k = key();
    let params = ExportParams {
        dc_id: 2,
        server_addr: addr("149.154.167.51:443"),
        auth_key: &k,
        user_id: None,
        is_bot: None,
        api_id: None,
        test_mode: false,
    };
    assert_eq!(
        telethon::export_string(&params).unwrap().expose(),
        TELETHON_V4
    );
    let params = ExportParams {
        dc_id: 4,
        server_addr: addr("[2001:67c:4e8:f004::a]:443"),
        ..params
    };
    assert_eq!(
        telethon::export_string(&params).unwrap().expose(),
        TELETHON_V6
    );
}

#[test]
fn pyrogram_export_matches_python_byte_for_byte() {
    let k = key();
    let params = ExportParams {
        dc_id: 2,
        server_addr: None,
        auth_key: &k,
        user_id: Some(123_456_789),
        is_bot: Some(false),
        api_id: Some(2040),
        test_mode: false,
    };
    assert_eq!(
        pyrogram::export_string(&params).unwrap().expose(),
        PYROGRAM_CURRENT
    );
}

#[test]
fn round_trips_between_formats() {
    for input in [
        TELETHON_V4,
        TELETHON_V6,
        GRAMJS_V4,
        PYROGRAM_CURRENT,
        PYROGRAM_V1_WIDE,
    ] {
        let mut original = parse_string(input).unwrap();
        original.api_id = original.api_id.or(Some(611_335));
        original.user_id = original.user_id.or(Some(42));

        let tele = telethon::export_string(&original.export_params()).unwrap();
        let back = parse_string(tele.expose()).unwrap();
        assert_eq!(back.format, SessionFormat::TelethonString);
        assert_eq!(back.auth_key, original.auth_key);
        assert_eq!(back.dc_id, original.dc_id);
        assert_eq!(back.server_addr, original.resolved_addr());

        let pyro = pyrogram::export_string(&original.export_params()).unwrap();
        let back = parse_string(pyro.expose()).unwrap();
        assert_eq!(back.format, SessionFormat::PyrogramString);
        assert_eq!(back.auth_key, original.auth_key);
        assert_eq!(back.dc_id, original.dc_id);
        assert_eq!(back.user_id, original.user_id);
        assert_eq!(back.api_id, original.api_id);
        assert_eq!(back.test_mode, original.test_mode);
    }
}

#[test]
fn export_refuses_what_the_format_cannot_hold() {
    let k = key();
    let base = ExportParams {
        dc_id: 2,
        server_addr: None,
        auth_key: &k,
        user_id: Some(1),
        is_bot: None,
        api_id: Some(1),
        test_mode: false,
    };
    let e = |r: Result<switchboard_sessions::Secret, SessionError>| r.unwrap_err().code();
    assert_eq!(
        e(pyrogram::export_string(&ExportParams {
            api_id: None,
            ..base
        })),
        "session_export_missing_field"
    );
    assert_eq!(
        e(pyrogram::export_string(&ExportParams {
            user_id: None,
            ..base
        })),
        "session_export_missing_field"
    );
    assert_eq!(
        e(pyrogram::export_string(&ExportParams {
            user_id: Some(-5),
            ..base
        })),
        "session_export_out_of_range"
    );
    assert_eq!(
        e(telethon::export_string(&ExportParams {
            dc_id: 300,
            ..base
        })),
        "session_export_out_of_range"
    );
    assert_eq!(
        e(telethon::export_string(&ExportParams { dc_id: 99, ..base })),
        "session_export_missing_field"
    );
    let zero = AuthKey::new([0; 256]);
    assert_eq!(
        e(telethon::export_string(&ExportParams {
            auth_key: &zero,
            ..base
        })),
        "session_export_missing_field"
    );
}

#[test]
fn debug_and_errors_never_show_secrets() {
    let mut s = parse_string(PYROGRAM_CURRENT).unwrap();
    s.api_hash = Some(switchboard_sessions::Secret::new(
        "b18441a1ff607e10a989891a5462e627",
    ));
    let debug = format!("{s:?}");
    assert!(debug.contains("AuthKey(<redacted>)"));
    assert!(!debug.contains("b18441a1"));
    // No run of key bytes in any common rendering.
    assert!(!debug.contains("0, 1, 2, 3"));
    assert!(!debug.contains("000102"));
    let exported = telethon::export_string(&s.export_params()).unwrap();
    assert_eq!(format!("{exported:?}"), "Secret(<redacted>)");

    for bad in [&TELETHON_V4[..200], &PYROGRAM_CURRENT[..300]] {
        let err = parse_string(bad).unwrap_err();
        assert!(!err.to_string().contains(&bad[10..30]));
        assert!(!format!("{err:?}").contains(&bad[10..30]));
    }
}

#[test]
fn error_codes_are_unique_snake_case() {
    let codes = SessionError::ALL_CODES;
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len());
    for code in codes {
        assert!(code.starts_with("session_"));
        assert!(
            code.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
