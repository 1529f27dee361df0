//! Session files as the client libraries write them, holding auth keys that tgsim
//! issued, for the import and upload tests: Telethon and Pyrogram `.session` SQLite files and a
//! `{phone}.json` of the phone folder layout (docs/architecture.md).

use crate::accounts::registered_user;
use crate::app::TestApp;
use serde_json::json;

/// A fresh tgsim user whose session (an auth key tgsim knows) is ready to import.
pub struct SimAccount {
    /// The tgsim user.
    pub user: tgsim::UserInfo,
    /// The auth key registered for them.
    pub key: [u8; 256],
}

/// Creates a tgsim user with `phone` and `first_name` and registers a new auth key for them.
pub fn sim_account(app: &TestApp, phone: &str, first_name: &str) -> SimAccount {
    let (user, key) = registered_user(&app.sim, phone, first_name);
    SimAccount { user, key }
}

/// A Telethon v1 `.session` file (schema version 7) for `key` at DC 2.
pub fn telethon_file(app: &TestApp, key: [u8; 256]) -> Vec<u8> {
    let addr = app.sim.mtproto_addr();
    sqlite_file(
        "create table version (version integer primary key);
         insert into version values (7);
         create table sessions (dc_id integer primary key, server_address text, port integer, auth_key blob, takeout_id integer);
         create table entities (id integer primary key, hash integer not null, username text, phone integer, name text, date integer);
         create table sent_files (md5_digest blob, file_size integer, type integer, id integer, hash integer, primary key(md5_digest, file_size, type));
         create table update_state (id integer primary key, pts integer, qts integer, date integer, seq integer);",
        |c| {
            c.execute(
                "insert into sessions values (2, ?1, ?2, ?3, null)",
                rusqlite::params![addr.ip().to_string(), addr.port(), &key[..]],
            )
        },
    )
}

/// A Pyrogram 2.x `.session` file (schema version 3) for `key` at DC 2, for `user_id`.
pub fn pyrogram_file(key: [u8; 256], user_id: i64) -> Vec<u8> {
    sqlite_file(
        "CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, api_id INTEGER, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER);
         CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL, username TEXT, phone_number TEXT,
             last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER)));
         CREATE TABLE version (number INTEGER PRIMARY KEY);
         INSERT INTO version VALUES (3);",
        |c| {
            c.execute(
                "INSERT INTO sessions VALUES (2, 12345, 0, ?1, 0, ?2, 0)",
                rusqlite::params![&key[..], user_id],
            )
        },
    )
}

/// A vendor-style `{phone}.json` as sold next to a `.session` file.
pub fn bundle_json(phone: &str, first_name: &str, user_id: i64) -> Vec<u8> {
    json!({
        "app_id": 12345, "app_hash": "0123456789abcdef0123456789abcdef", "phone": phone,
        "first_name": first_name, "id": user_id, "twoFA": "", "device": "KVM", "sdk": "Windows 10 x64",
        "app_version": "6.8.2 x64", "lang_code": "en", "session_file": phone,
    })
    .to_string()
    .into_bytes()
}

fn sqlite_file(
    schema: &str,
    fill: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<usize>,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = dir.path().join("fixture.session");
    let made = rusqlite::Connection::open(&path).and_then(|c| {
        c.execute_batch(schema)?;
        fill(&c)?;
        c.close().map_err(|(_, e)| e)
    });
    if let Err(e) = made {
        panic!("writing a .session fixture: {e}");
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading the fixture: {e}"))
}
