//! JSON + `.session` bundles, upload pairs, and the `{phone}/{phone}.json|.session` folder layout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use switchboard_sessions::{
    AuthKey, SessionFormat, UploadedFile, group_uploads, import_folder, parse_any,
    parse_json_bundle, parse_pair,
};

fn key() -> AuthKey {
    AuthKey::new(key_bytes())
}

/// A vendor JSON as account sellers ship it next to a Telethon `.session` (`app_id`/`app_hash`
/// of Telegram Desktop, client fingerprint fields, `twoFA`), with a user id and 2FA password
/// filled in.
fn vendor_json(user_id: &str) -> String {
    format!(
        r#"{{"app_id": 2040, "app_hash": "b18441a1ff607e10a989891a5462e627", "device": "KVM", "sdk": "Windows 10 x64",
 "app_version": "6.8.2 x64", "system_lang_pack": "en-US", "system_lang_code": "en-US", "lang_pack": "tdesktop",
 "lang_code": "en", "twoFA": "hunter2", "role": "", "id": {user_id}, "phone": "+18646884306", "username": "@vendor_user",
 "date_of_birth": null, "is_premium": false, "has_profile_pic": false, "spamblock": null,
 "register_time": 1783354647, "avatar": null, "first_name": "Ann", "last_name": "", "sex": null,
 "proxy": ["socks5", "127.0.0.1", 1080, true, "u", "p"], "ipv6": false, "session_file": "+18646884306"}}"#
    )
}

#[test]
fn vendor_bundle_maps_every_field() {
    let s = parse_json_bundle(vendor_json("777000111").as_bytes(), Some(&telethon_file())).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonFile);
    assert!(s.from_json_bundle);
    assert_eq!(s.auth_key, key());
    assert_eq!(s.dc_id, 2);
    assert_eq!(s.user_id, Some(777_000_111));
    assert_eq!(s.api_id, Some(2040));
    assert_eq!(
        s.api_hash.as_ref().unwrap().expose(),
        "b18441a1ff607e10a989891a5462e627"
    );
    assert_eq!(s.two_fa_password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!(s.phone.as_deref(), Some("18646884306"));
    assert_eq!(s.first_name.as_deref(), Some("Ann"));
    assert_eq!(s.last_name, None);
    assert_eq!(s.username.as_deref(), Some("vendor_user"));
    let client = s.client.as_ref().unwrap();
    assert_eq!(client.device_model.as_deref(), Some("KVM"));
    assert_eq!(client.system_version.as_deref(), Some("Windows 10 x64"));
    assert_eq!(client.app_version.as_deref(), Some("6.8.2 x64"));
    assert_eq!(client.system_lang_code.as_deref(), Some("en-US"));
    assert_eq!(client.lang_pack.as_deref(), Some("tdesktop"));
    assert_eq!(client.lang_code.as_deref(), Some("en"));
    assert_eq!(client.ipv6, Some(false));
    assert!(client.proxy.as_ref().unwrap().expose().contains("socks5"));
    // Secrets stay out of Debug.
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"));
    assert!(!debug.contains("b18441a1"));
    assert!(!debug.contains("\"u\", \"p\""));
}

#[test]
fn field_name_variants() {
    for (json, expect_user, expect_2fa) in [
        (
            r#"{"api_id": "611335", "api_hash": "h", "user_id": "42", "2fa": "a"}"#,
            42,
            "a",
        ),
        (
            r#"{"apiId": 611335, "apiHash": "h", "userId": 42, "twofa": "b"}"#,
            42,
            "b",
        ),
        (
            r#"{"API_ID": 611335, "App-Hash": "h", "account_id": "42", "password": 123456}"#,
            42,
            "123456",
        ),
        (
            r#"{"app_id": 611335, "app_hash": "h", "id": 42, "two_fa": "d"}"#,
            42,
            "d",
        ),
    ] {
        let s = parse_json_bundle(json.as_bytes(), Some(&telethon_file_with_self(42))).unwrap();
        assert_eq!(s.api_id, Some(611_335), "{json}");
        assert_eq!(s.user_id, Some(expect_user), "{json}");
        assert_eq!(s.two_fa_password.unwrap().expose(), expect_2fa, "{json}");
    }
}

fn telethon_file_with_self(id: i64) -> Vec<u8> {
    sqlite_bytes(TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 443, ?1, null)",
            [&key_bytes()[..]],
        )
        .unwrap();
        c.execute(
            "insert into entities values (0, ?1, null, null, null, null)",
            [id],
        )
        .unwrap();
    })
}

#[test]
fn seed_style_json_with_session_string() {
    // The phone folder layout's `{phone}.json`: everything as strings, the session inline.
    let json = format!(
        r#"{{"account_id": "8312419180", "phone_number": "+573025288905", "session_string": "{TELETHON_V4}", "api_id": "12345", "api_hash": "abcdef"}}"#
    );
    let s = parse_json_bundle(json.as_bytes(), None).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonString);
    assert_eq!(s.user_id, Some(8_312_419_180));
    assert_eq!(s.phone.as_deref(), Some("573025288905"));
    assert_eq!(s.api_id, Some(12345));
    assert_eq!(s.auth_key, key());
    // parse_any routes JSON the same way.
    assert_eq!(
        parse_any(json.as_bytes()).unwrap().user_id,
        Some(8_312_419_180)
    );
}

#[test]
fn pyrogram_string_in_json() {
    let json = format!(r#"{{"session": "{PYROGRAM_CURRENT}", "first_name": 5}}"#);
    let s = parse_json_bundle(json.as_bytes(), None).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramString);
    assert_eq!(s.user_id, Some(123_456_789));
    // A number where text is expected is kept as text.
    assert_eq!(s.first_name.as_deref(), Some("5"));
}

#[test]
fn bad_json_codes() {
    let code = |json: &str| parse_json_bundle(json.as_bytes(), None).unwrap_err().code();
    assert_eq!(code(""), "session_json_invalid");
    assert_eq!(code("{\"app_id\": 1,"), "session_json_invalid");
    assert_eq!(code("[1, 2]"), "session_json_not_object");
    assert_eq!(code("{\"app_id\": \"abc\"}"), "session_json_bad_field");
    assert_eq!(code("{\"app_id\": -1}"), "session_json_bad_field");
    assert_eq!(code("{\"app_id\": 99999999999}"), "session_json_bad_field");
    assert_eq!(code("{\"user_id\": [1]}"), "session_json_bad_field");
    assert_eq!(code("{\"app_id\": 2040}"), "session_json_no_session");
    assert_eq!(
        code("{\"session_string\": \"AAAA\"}"),
        "session_string_unrecognized"
    );
    let err = parse_json_bundle(b"{\"app_id\": \"abc\"}", None).unwrap_err();
    assert!(err.to_string().contains("app_id"));
    assert!(!err.to_string().contains("abc"));
    let big = vec![b' '; switchboard_sessions::MAX_JSON_BYTES + 1];
    assert_eq!(
        parse_json_bundle(&big, None).unwrap_err().code(),
        "session_too_large"
    );
}

#[test]
fn user_id_conflict_is_a_mismatch() {
    let err = parse_json_bundle(vendor_json("5").as_bytes(), Some(&telethon_file())).unwrap_err();
    assert_eq!(err.code(), "session_bundle_mismatch");
}

#[test]
fn bad_session_file_falls_back_to_the_json_string_with_a_warning() {
    let json = format!(r#"{{"session_string": "{TELETHON_V4}"}}"#);
    let s = parse_json_bundle(json.as_bytes(), Some(b"not a database")).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonString);
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(s.warnings[0].code(), "session_file_not_sqlite");
    // Without a string to fall back to, the file's error stands.
    let err = parse_json_bundle(b"{}", Some(b"not a database")).unwrap_err();
    assert_eq!(err.code(), "session_file_not_sqlite");
}

#[test]
fn pair_tolerates_broken_json_next_to_a_good_session() {
    let s = parse_pair(Some(b"{broken"), Some(&pyrogram_file())).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramFile);
    assert_eq!(s.warnings[0].code(), "session_json_invalid");
    assert_eq!(
        parse_pair(Some(b"{broken"), None).unwrap_err().code(),
        "session_json_invalid"
    );
    assert_eq!(
        parse_pair(None, None).unwrap_err().code(),
        "session_json_no_session"
    );
    assert_eq!(
        parse_pair(None, Some(&kurigram_file())).unwrap().format,
        SessionFormat::KurigramFile
    );
}

#[test]
fn folder_layout_imports_each_phone_independently() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 1. The phone folder layout: JSON + Telethon .session.
    write(
        &r.join("573025288905/573025288905.json"),
        vendor_json("777000111").as_bytes(),
    );
    write(
        &r.join("573025288905/573025288905.session"),
        &telethon_file(),
    );
    // 2. Broken JSON, good Pyrogram .session: imported with a warning.
    write(&r.join("15550100/15550100.json"), b"{\"app_id\": 1,");
    write(&r.join("15550100/15550100.session"), &pyrogram_file());
    // 3. Only a JSON with a session string; file names differ from the folder name.
    write(
        &r.join("447700900123/+447700900123.json"),
        format!(r#"{{"session_string": "{PYROGRAM_V1_WIDE}"}}"#).as_bytes(),
    );
    // 4. A broken .session and no string: an error for this folder only.
    write(&r.join("19995550000/19995550000.session"), b"garbage");
    // 5. An empty folder.
    std::fs::create_dir_all(r.join("18880000000")).unwrap();
    // 6. A top-level vendor pair.
    write(&r.join("+18646884306.json"), vendor_json("null").as_bytes());
    write(&r.join("+18646884306.session"), &kurigram_file());
    // Ignored: hidden entries and unrelated files.
    write(&r.join(".cache/x.session"), b"garbage");
    write(&r.join("README.txt"), b"hello");

    let entries = import_folder(r).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "+18646884306",
            "15550100",
            "18880000000",
            "19995550000",
            "447700900123",
            "573025288905"
        ]
    );
    let get = |name: &str| entries.iter().find(|e| e.name == name).unwrap();

    let seed = get("573025288905").result.as_ref().unwrap();
    assert_eq!(seed.format, SessionFormat::TelethonFile);
    assert!(seed.from_json_bundle);
    assert_eq!(seed.phone.as_deref(), Some("18646884306")); // the JSON's phone wins
    assert_eq!(seed.auth_key, key());

    let broken_json = get("15550100").result.as_ref().unwrap();
    assert_eq!(broken_json.format, SessionFormat::PyrogramFile);
    assert_eq!(broken_json.warnings[0].code(), "session_json_invalid");

    let only_json = get("447700900123");
    assert!(only_json.session_path.is_none());
    let only_json = only_json.result.as_ref().unwrap();
    assert_eq!(only_json.format, SessionFormat::PyrogramStringV1Wide);
    assert_eq!(only_json.phone.as_deref(), Some("447700900123")); // from the folder name

    assert_eq!(
        get("19995550000").result.as_ref().unwrap_err().code(),
        "session_file_not_sqlite"
    );
    assert_eq!(
        get("18880000000").result.as_ref().unwrap_err().code(),
        "session_folder_no_session"
    );
    let top = get("+18646884306").result.as_ref().unwrap();
    assert_eq!(top.format, SessionFormat::KurigramFile);
    assert_eq!(top.user_id, Some(5_550_001));
}

#[test]
fn uploads_group_by_folder_and_stem() {
    let file = |name: &str, bytes: Vec<u8>| UploadedFile {
        name: name.into(),
        bytes,
    };
    let entries = group_uploads(vec![
        // The phone folder layout, as a browser's folder upload names the files.
        file(
            "batch/573025288905/573025288905.json",
            vendor_json("777000111").into_bytes(),
        ),
        file("batch/573025288905/573025288905.session", telethon_file()),
        // Different stems, alone in their folder: one account named after the folder.
        file(
            "batch/18646884306/+18646884306.json",
            vendor_json("null").into_bytes(),
        ),
        file("batch/18646884306/18646884306.session", kurigram_file()),
        // Top-level files; Windows separators and `..` are only names.
        file("pyro.session", pyrogram_file()),
        file("..\\..\\win\\tele.session", telethon_file()),
        file("batch/.DS_Store", b"junk".to_vec()),
        file("notes.txt", b"junk".to_vec()),
        file("twice.session", pyrogram_file()),
        file("./twice.session", pyrogram_file()),
    ]);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "batch/18646884306",
            "batch/573025288905/573025288905",
            "notes.txt",
            "pyro",
            "twice",
            "win/tele"
        ]
    );
    let get = |name: &str| entries.iter().find(|e| e.name == name).unwrap();
    let seed = get("batch/573025288905/573025288905");
    assert_eq!(
        seed.files,
        [
            "batch/573025288905/573025288905.json",
            "batch/573025288905/573025288905.session"
        ]
    );
    let seed = seed.result.as_ref().unwrap();
    assert_eq!(seed.format, SessionFormat::TelethonFile);
    assert!(seed.from_json_bundle);
    let lone = get("batch/18646884306").result.as_ref().unwrap();
    assert_eq!(lone.format, SessionFormat::KurigramFile);
    assert!(lone.from_json_bundle);
    assert_eq!(
        get("pyro").result.as_ref().unwrap().format,
        SessionFormat::PyrogramFile
    );
    assert_eq!(
        get("win/tele").result.as_ref().unwrap().format,
        SessionFormat::TelethonFile
    );
    assert_eq!(
        get("notes.txt").result.as_ref().unwrap_err().code(),
        "session_file_type_unsupported"
    );
    assert_eq!(
        get("twice").result.as_ref().unwrap_err().code(),
        "session_file_duplicate"
    );
}

#[test]
fn missing_root_is_an_io_error() {
    let root = tempfile::tempdir().unwrap();
    let err = import_folder(&root.path().join("nope")).unwrap_err();
    assert_eq!(err.code(), "session_io");
}

#[test]
fn parse_any_routes_by_content() {
    assert_eq!(
        parse_any(&telethon_file()).unwrap().format,
        SessionFormat::TelethonFile
    );
    assert_eq!(
        parse_any(GRAMJS_V4.as_bytes()).unwrap().format,
        SessionFormat::GramjsString
    );
    assert_eq!(
        parse_any(&[0xFF, 0xFE, 0x00]).unwrap_err().code(),
        "session_file_not_sqlite"
    );
}
