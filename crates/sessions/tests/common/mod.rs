//! Shared fixtures: known-answer session strings and builders for `.session` SQLite files.
//!
//! The strings were produced by CPython's `struct.pack` + `base64` exactly as each library's
//! saver does, with `auth_key = bytes(range(256))`:
//! - Telethon: `'1' + urlsafe_b64encode(pack('>B{4|16}sH256s', dc, ip, port, key))`
//! - Pyrogram current: `urlsafe_b64encode(pack('>BI?256sQ?', ...)).rstrip('=')`, and the two
//!   1.x layouts `>B?256sI?` and `>B?256sQ?`
//! - gramjs: `'1' + b64encode(dc | pack('>h', len) | addr | pack('>h', port) | key)`

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// The key every fixture uses.
pub fn key_bytes() -> [u8; 256] {
    let mut key = [0u8; 256];
    for (i, b) in key.iter_mut().enumerate() {
        *b = i as u8;
    }
    key
}

/// dc 2, 149.154.167.51:443.
pub const TELETHON_V4: &str = "1ApWapzMBuwABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp-goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2-v8DBwsPExcbHyMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8=";
/// dc 4, [2001:67c:4e8:f004::a]:443.
pub const TELETHON_V6: &str = "1BCABBnwE6PAEAAAAAAAAAAoBuwABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp-goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2-v8DBwsPExcbHyMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8=";
/// dc 2, api_id 2040, test false, user 123456789, bot false.
pub const PYROGRAM_CURRENT: &str = "AgAAB_gAAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn-AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq-wsbKztLW2t7i5uru8vb6_wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t_g4eLj5OXm5-jp6uvs7e7v8PHy8_T19vf4-fr7_P3-_wAAAAAHW80VAA";
/// dc 1, test true, user 987654321 (u32), bot true.
pub const PYROGRAM_V1: &str = "AQEAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo-QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr_AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3-Dh4uPk5ebn6Onq6-zt7u_w8fLz9PX29_j5-vv8_f7_Ot5osQE";
/// dc 5, test false, user 5000000000 (u64), bot false.
pub const PYROGRAM_V1_WIDE: &str = "BQAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4_QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo-QkZKTlJWWl5iZmpucnZ6foKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr_AwcLDxMXGx8jJysvMzc7P0NHS09TV1tfY2drb3N3e3-Dh4uPk5ebn6Onq6-zt7u_w8fLz9PX29_j5-vv8_f7_AAAAASoF8gAA";
/// gramjs dc 2, "149.154.167.51":443 (369 chars, like a Telethon IPv6 string).
pub const GRAMJS_V4: &str = "1AgAOMTQ5LjE1NC4xNjcuNTEBuwABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=";
/// gramjs dc 4, "149.154.167.91":443.
pub const GRAMJS_14: &str = "1BAAOMTQ5LjE1NC4xNjcuOTEBuwABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=";

/// Runs SQL against a fresh SQLite file and returns the file's bytes.
pub fn sqlite_bytes(sql: &str, fill: impl FnOnce(&rusqlite::Connection)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture.session");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
        fill(&conn);
    }
    std::fs::read(&path).unwrap()
}

/// Telethon v1 `.session` schema (`CURRENT_VERSION = 7`, `telethon/sessions/sqlite.py`).
pub const TELETHON_SCHEMA: &str = "
    create table version (version integer primary key);
    insert into version values (7);
    create table sessions (dc_id integer primary key, server_address text, port integer, auth_key blob, takeout_id integer);
    create table entities (id integer primary key, hash integer not null, username text, phone integer, name text, date integer);
    create table sent_files (md5_digest blob, file_size integer, type integer, id integer, hash integer, primary key(md5_digest, file_size, type));
    create table update_state (id integer primary key, pts integer, qts integer, date integer, seq integer);
";

/// A Telethon file: dc 2 at 149.154.167.51:443, self user 777000111 with a cached self row,
/// one channel and one basic group, account and channel update state.
pub fn telethon_file() -> Vec<u8> {
    sqlite_bytes(TELETHON_SCHEMA, |c| {
        c.execute(
            "insert into sessions values (2, '149.154.167.51', 443, ?1, null)",
            [&key_bytes()[..]],
        )
        .unwrap();
        c.execute_batch(
            "insert into entities values (0, 777000111, null, null, null, null);
             insert into entities values (777000111, -1234567890123, 'me_user', 15550100, 'Me Myself', 1700000000);
             insert into entities values (-1001234567890, 42, 'news', null, 'News', 1700000000);
             insert into entities values (-4567, 0, null, null, 'Friends', 1700000000);
             insert into update_state values (0, 100, 5, 1700000000, 7);
             insert into update_state values (1234567890, 55, null, null, null);",
        )
        .unwrap();
    })
}

/// Pyrogram 2.x / Hydrogram schema (`SQLiteStorage.VERSION = 3`).
pub const PYROGRAM_SCHEMA: &str = "
    CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, api_id INTEGER, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER);
    CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL, username TEXT, phone_number TEXT,
        last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER)));
    CREATE TABLE version (number INTEGER PRIMARY KEY);
    CREATE INDEX idx_peers_id ON peers (id);
    CREATE INDEX idx_peers_username ON peers (username);
    CREATE INDEX idx_peers_phone_number ON peers (phone_number);
    CREATE TRIGGER trg_peers_last_update_on AFTER UPDATE ON peers
    BEGIN UPDATE peers SET last_update_on = CAST(STRFTIME('%s', 'now') AS INTEGER) WHERE id = NEW.id; END;
    INSERT INTO version VALUES (3);
";

/// A Pyrogram file: dc 4, api_id 2040, user 123456789 (not a bot), self and one supergroup peer.
pub fn pyrogram_file() -> Vec<u8> {
    sqlite_bytes(PYROGRAM_SCHEMA, |c| {
        c.execute(
            "INSERT INTO sessions VALUES (4, 2040, 0, ?1, 0, 123456789, 0)",
            [&key_bytes()[..]],
        )
        .unwrap();
        c.execute_batch(
            "INSERT INTO peers (id, access_hash, type, username, phone_number) VALUES (123456789, 99, 'user', 'pyro_me', '+1 555 0100');
             INSERT INTO peers (id, access_hash, type, username, phone_number) VALUES (-1009876543210, 77, 'supergroup', 'group_x', NULL);",
        )
        .unwrap();
    })
}

/// Kurigram schema (`VERSION = 7`).
pub const KURIGRAM_SCHEMA: &str = "
    CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, server_address TEXT, port INTEGER, api_id INTEGER, test_mode INTEGER, auth_key BLOB,
        date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER);
    CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL, phone_number TEXT,
        last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER)));
    CREATE TABLE usernames (id INTEGER, username TEXT, FOREIGN KEY (id) REFERENCES peers(id));
    CREATE TABLE update_state (id INTEGER PRIMARY KEY, pts INTEGER, qts INTEGER, date INTEGER, seq INTEGER);
    CREATE TABLE version (number INTEGER PRIMARY KEY);
    INSERT INTO version VALUES (7);
";

/// A Kurigram file: dc 2 at 149.154.167.51:443, bot 5550001, update state.
pub fn kurigram_file() -> Vec<u8> {
    sqlite_bytes(KURIGRAM_SCHEMA, |c| {
        c.execute(
            "INSERT INTO sessions VALUES (2, '149.154.167.51', 443, 94575, 0, ?1, 0, 5550001, 1)",
            [&key_bytes()[..]],
        )
        .unwrap();
        c.execute_batch(
            "INSERT INTO peers (id, access_hash, type, phone_number) VALUES (5550001, 11, 'bot', NULL);
             INSERT INTO usernames VALUES (5550001, 'kuri_bot');
             INSERT INTO update_state VALUES (0, 10, 2, 1700000001, 3);",
        )
        .unwrap();
    })
}

/// Writes a file, creating parent directories.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}
