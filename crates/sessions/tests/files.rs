//! `.session` SQLite files: Telethon v7, Pyrogram v3 (fresh and migrated), Kurigram v7, and
//! the errors for files that are not, or not quite, session files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use switchboard_sessions::{
    AuthKey, ChannelPts, PeerKind, SessionFormat, parse_session_bytes, parse_session_file,
    pyrogram, telethon,
};

fn key() -> AuthKey {
    AuthKey::new(key_bytes())
}

fn code<T: std::fmt::Debug>(r: Result<T, switchboard_sessions::SessionError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn telethon_file_reads_session_self_peers_and_state() {
    let bytes = telethon_file();
    for s in [
        telethon::parse_file(&bytes).unwrap(),
        parse_session_file(&bytes).unwrap(),
    ] {
        assert_eq!(s.format, SessionFormat::TelethonFile);
        assert_eq!(s.dc_id, 2);
        assert_eq!(s.server_addr, Some("149.154.167.51:443".parse().unwrap()));
        assert_eq!(s.auth_key, key());
        assert_eq!(s.user_id, Some(777_000_111));
        assert_eq!(s.username.as_deref(), Some("me_user"));
        assert_eq!(s.phone.as_deref(), Some("15550100"));
        assert_eq!(s.is_bot, None);
        assert_eq!(s.peers.len(), 3);
        let channel = s.peers.iter().find(|p| p.id == -1_001_234_567_890).unwrap();
        assert_eq!(channel.kind, PeerKind::Channel);
        assert_eq!(channel.access_hash, Some(42));
        assert_eq!(channel.username.as_deref(), Some("news"));
        let chat = s.peers.iter().find(|p| p.id == -4567).unwrap();
        assert_eq!(chat.kind, PeerKind::Chat);
        let me = s.peers.iter().find(|p| p.id == 777_000_111).unwrap();
        assert_eq!(me.kind, PeerKind::User);
        assert_eq!(me.name.as_deref(), Some("Me Myself"));
        let updates = s.updates.unwrap();
        assert_eq!(
            (updates.pts, updates.qts, updates.date, updates.seq),
            (100, 5, 1_700_000_000, 7)
        );
        assert_eq!(
            updates.channels,
            vec![ChannelPts {
                channel_id: 1_234_567_890,
                pts: 55
            }]
        );
    }
}

#[test]
fn telethon_file_without_optional_tables() {
    let bytes = sqlite_bytes(
        "create table sessions (dc_id integer primary key, server_address text, port integer, auth_key blob);",
        |c| {
            c.execute(
                "insert into sessions values (5, '91.108.56.130', 443, ?1)",
                [&key_bytes()[..]],
            )
            .unwrap();
        },
    );
    let s = parse_session_file(&bytes).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonFile);
    assert_eq!(s.dc_id, 5);
    assert_eq!(s.user_id, None);
    assert!(s.peers.is_empty());
    assert_eq!(s.updates, None);
}

#[test]
fn pyrogram_file_reads_session_and_self() {
    let bytes = pyrogram_file();
    for s in [
        pyrogram::parse_file(&bytes).unwrap(),
        parse_session_file(&bytes).unwrap(),
    ] {
        assert_eq!(s.format, SessionFormat::PyrogramFile);
        assert_eq!(s.dc_id, 4);
        assert_eq!(s.api_id, Some(2040));
        assert_eq!(s.user_id, Some(123_456_789));
        assert_eq!(s.is_bot, Some(false));
        assert!(!s.test_mode);
        assert_eq!(s.auth_key, key());
        assert_eq!(s.server_addr, None);
        assert_eq!(
            s.resolved_addr(),
            Some("149.154.167.91:443".parse().unwrap())
        );
        assert_eq!(s.username.as_deref(), Some("pyro_me"));
        assert_eq!(s.phone.as_deref(), Some("15550100"));
        let group = s.peers.iter().find(|p| p.id == -1_009_876_543_210).unwrap();
        assert_eq!(group.kind, PeerKind::Supergroup);
        assert_eq!(group.access_hash, Some(77));
    }
}

#[test]
fn pyrogram_migrated_file_with_api_id_last() {
    // v2 -> v3 migration appends api_id, so columns are read by name.
    let bytes = sqlite_bytes(
        "CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER, api_id INTEGER);
         CREATE TABLE version (number INTEGER PRIMARY KEY); INSERT INTO version VALUES (3);",
        |c| {
            c.execute(
                "INSERT INTO sessions VALUES (1, 1, ?1, 0, 31337, 1, 12345)",
                [&key_bytes()[..]],
            )
            .unwrap();
        },
    );
    let s = parse_session_file(&bytes).unwrap();
    assert_eq!(s.format, SessionFormat::PyrogramFile);
    assert_eq!(s.dc_id, 1);
    assert!(s.test_mode);
    assert_eq!(s.user_id, Some(31337));
    assert_eq!(s.is_bot, Some(true));
    assert_eq!(s.api_id, Some(12345));
}

#[test]
fn kurigram_file_reads_address_usernames_and_state() {
    let s = parse_session_file(&kurigram_file()).unwrap();
    assert_eq!(s.format, SessionFormat::KurigramFile);
    assert_eq!(s.server_addr, Some("149.154.167.51:443".parse().unwrap()));
    assert_eq!(s.api_id, Some(94575));
    assert_eq!(s.user_id, Some(5_550_001));
    assert_eq!(s.is_bot, Some(true));
    assert_eq!(s.username.as_deref(), Some("kuri_bot"));
    assert_eq!(s.peers[0].kind, PeerKind::Bot);
    let updates = s.updates.unwrap();
    assert_eq!((updates.pts, updates.qts, updates.seq), (10, 2, 3));
}

#[test]
fn wal_mode_file_opens_without_companions() {
    let mut bytes = telethon_file();
    // Header bytes 18/19 = 2 mark a WAL database; only the main file is uploaded.
    bytes[18] = 2;
    bytes[19] = 2;
    assert_eq!(parse_session_file(&bytes).unwrap().auth_key, key());
}

#[test]
fn non_sqlite_inputs() {
    assert_eq!(code(parse_session_file(b"")), "session_file_not_sqlite");
    assert_eq!(
        code(parse_session_file(b"hello world")),
        "session_file_not_sqlite"
    );
    assert_eq!(
        code(parse_session_file(&[0u8; 4096])),
        "session_file_not_sqlite"
    );
    // Right magic, garbage after it.
    let mut fake = b"SQLite format 3\0".to_vec();
    fake.extend_from_slice(&[0xFF; 4080]);
    assert_eq!(code(parse_session_file(&fake)), "session_file_corrupt");
    // Truncated real file.
    let real = telethon_file();
    let truncated = &real[..real.len() / 2];
    let err = parse_session_file(truncated).unwrap_err();
    assert!(
        ["session_file_corrupt", "session_file_missing_table"].contains(&err.code()),
        "{err:?}"
    );
}

#[test]
fn missing_tables_and_columns() {
    let empty = sqlite_bytes("create table other (x integer);", |_| {});
    assert_eq!(
        code(parse_session_file(&empty)),
        "session_file_missing_table"
    );
    assert_eq!(
        code(telethon::parse_file(&empty)),
        "session_file_missing_table"
    );
    assert_eq!(
        code(pyrogram::parse_file(&empty)),
        "session_file_missing_table"
    );

    let no_key_col = sqlite_bytes(
        "create table sessions (dc_id integer primary key, server_address text, port integer);",
        |_| {},
    );
    assert_eq!(
        code(telethon::parse_file(&no_key_col)),
        "session_file_missing_column"
    );

    let unknown = sqlite_bytes(
        "create table sessions (dc_id integer, auth_key blob);",
        |_| {},
    );
    assert_eq!(
        code(parse_session_file(&unknown)),
        "session_file_unknown_schema"
    );

    // A Telethon file handed to the Pyrogram reader lacks nothing it requires but has no
    // Pyrogram columns; reading still works by name.
    let s = pyrogram::parse_file(&telethon_file()).unwrap();
    assert_eq!(s.auth_key, key());
    // A Pyrogram file handed to the Telethon reader lacks server_address.
    assert_eq!(
        code(telethon::parse_file(&pyrogram_file())),
        "session_file_missing_column"
    );
}

#[test]
fn a_view_is_not_a_table() {
    let bytes = sqlite_bytes(
        "create table real_sessions (dc_id integer, server_address text, port integer, auth_key blob);
         create view sessions as select * from real_sessions;",
        |_| {},
    );
    assert_eq!(
        code(parse_session_file(&bytes)),
        "session_file_missing_table"
    );
}

#[test]
fn empty_and_keyless_session_rows() {
    let no_row = sqlite_bytes(common::TELETHON_SCHEMA, |_| {});
    assert_eq!(
        code(parse_session_file(&no_row)),
        "session_file_no_session_row"
    );

    // Telethon writes b'' before login.
    let empty_key = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 443, x'', null)",
            [],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&empty_key)),
        "session_file_no_auth_key"
    );

    // Pyrogram's default row (2, NULL, NULL, NULL, 0, NULL, NULL).
    let default_row = sqlite_bytes(common::PYROGRAM_SCHEMA, |c| {
        c.execute(
            "INSERT INTO sessions VALUES (2, NULL, NULL, NULL, 0, NULL, NULL)",
            [],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&default_row)),
        "session_file_no_auth_key"
    );
}

#[test]
fn bad_values() {
    let short_key = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 443, x'0102', null)",
            [],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&short_key)),
        "session_file_bad_value"
    );

    let text_key = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 443, 'abc', null)",
            [],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&text_key)),
        "session_file_bad_value"
    );

    let bad_addr = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, 'dc2.example', 443, ?1, null)",
            [&key_bytes()[..]],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&bad_addr)),
        "session_invalid_address"
    );

    let bad_port = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 70000, ?1, null)",
            [&key_bytes()[..]],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&bad_port)),
        "session_invalid_address"
    );

    let bad_dc = sqlite_bytes(common::TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (-3, '149.154.167.51', 443, ?1, null)",
            [&key_bytes()[..]],
        )
        .unwrap();
    });
    assert_eq!(code(parse_session_file(&bad_dc)), "session_invalid_dc_id");

    let negative_user = sqlite_bytes(common::PYROGRAM_SCHEMA, |c| {
        c.execute(
            "INSERT INTO sessions VALUES (2, 1, 0, ?1, 0, -5, 0)",
            [&key_bytes()[..]],
        )
        .unwrap();
    });
    assert_eq!(
        code(parse_session_file(&negative_user)),
        "session_invalid_user_id"
    );
}

#[test]
fn telethon_v2_schema_is_unsupported() {
    let bytes = sqlite_bytes(
        "create table version (version integer primary key); insert into version values (10);
         create table datacenter (id integer primary key, ipv4_addr text, ipv6_addr text, auth blob);
         create table user (id integer primary key, dc integer, bot integer, username text);",
        |_| {},
    );
    let err = parse_session_file(&bytes).unwrap_err();
    assert_eq!(err.code(), "session_unsupported_version");
    assert!(err.to_string().contains("10"));
}

#[test]
fn session_bytes_accepts_a_string_in_a_text_file() {
    let s = parse_session_bytes(format!("{TELETHON_V4}\n").as_bytes()).unwrap();
    assert_eq!(s.format, SessionFormat::TelethonString);
    assert_eq!(
        code(parse_session_bytes(b"garbage")),
        "session_file_not_sqlite"
    );
}
