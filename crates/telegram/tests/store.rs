//! Sessions in the real SQLite store: a login persisted into an account, reloaded and
//! reconnected without a new login (update state kept, messages sent while offline caught up),
//! imports with peers and channel pts, export round trips between accounts, and no auth key in
//! clear in the database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use grammers_client::update::Update;
use grammers_mtsender::UpdatesConfiguration;
use switchboard_domain::{
    Account, AccountId, AccountStatus, AccountStore, Direction, NewAccount, Store, Timestamp,
    WorkspaceId,
};
use switchboard_sessions::{
    AuthKey, ChannelPts, ExportParams, ImportedPeer, ImportedUpdateState, PeerKind,
};
use switchboard_store_sqlite::{SqliteOptions, SqliteStore};
use switchboard_telegram::{
    DbSession, ExportFormat, LoginStep, MappedUpdate, PhoneLogin, Validation, connect_account,
    export_account, import_into_account, map_update, validate,
};
use switchboard_vault::{Keyring, MasterKey};

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sqlite: SqliteStore,
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    workspace: WorkspaceId,
}

impl Db {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let url = format!("sqlite://{}", path.display());
        let sqlite = switchboard_store_sqlite::connect(&url, &SqliteOptions::default())
            .await
            .unwrap();
        sqlite.migrate().await.unwrap();
        let workspace = sqlite
            .create_workspace("Test", Timestamp::now())
            .await
            .unwrap()
            .id;
        let keyring = Arc::new(Keyring::new(MasterKey::generate().unwrap()));
        Db {
            _dir: dir,
            path,
            store: Arc::new(sqlite.clone()),
            sqlite,
            keyring,
            workspace,
        }
    }

    async fn account(&self, phone: &str) -> Account {
        self.store
            .create_account(
                &NewAccount {
                    workspace_id: self.workspace,
                    phone: Some(phone.into()),
                    telegram_user_id: None,
                    first_name: String::new(),
                    last_name: None,
                    username: None,
                    status: AccountStatus::Connecting,
                    active: false,
                    ingest_groups: false,
                    api_id: None,
                    api_hash_sealed: None,
                },
                Timestamp::now(),
            )
            .await
            .unwrap()
    }

    /// Imports a Telethon string of tgsim `key` into the account and validates it.
    async fn import_key(
        &self,
        sim: &tgsim::Handle,
        settings: &switchboard_telegram::TelegramSettings,
        id: AccountId,
        key: [u8; 256],
    ) -> Validation {
        let imported = switchboard_sessions::parse_string(&telethon_string(sim, key)).unwrap();
        let (_, v) = import_into_account(
            settings,
            Arc::clone(&self.store),
            Arc::clone(&self.keyring),
            id,
            &imported,
        )
        .await
        .unwrap();
        v
    }

    async fn load(
        &self,
        settings: &switchboard_telegram::TelegramSettings,
        id: AccountId,
    ) -> DbSession {
        DbSession::load(
            settings,
            Arc::clone(&self.store),
            Arc::clone(&self.keyring),
            id,
        )
        .await
        .unwrap()
    }

    /// Every byte SQLite wrote: the database, its WAL and shared-memory files.
    fn file_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            if let Ok(bytes) = std::fs::read(PathBuf::from(p)) {
                all.extend(bytes);
            }
        }
        all
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn telethon_string(sim: &tgsim::Handle, key: [u8; 256]) -> String {
    let key = AuthKey::new(key);
    switchboard_sessions::telethon::export_string(&ExportParams {
        dc_id: 2,
        server_addr: Some(sim.mtproto_addr()),
        auth_key: &key,
        user_id: None,
        is_bot: None,
        api_id: None,
        test_mode: false,
    })
    .unwrap()
    .expose()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_persists_then_reloads_and_catches_up_without_a_new_login() {
    let sim = sim().await;
    let alice = user(&sim, "+15550300", "Alice", Some("pw"));
    let bob = user(&sim, "+15550301", "Bob", None);
    let settings = settings(&sim);
    let db = Db::new().await;

    let (mut flow, _) = PhoneLogin::start(&settings, "+15550300").await.unwrap();
    let code = sim.last_login_code("+15550300").unwrap();
    assert!(matches!(
        flow.submit_code(&code).await.unwrap(),
        LoginStep::PasswordNeeded { .. }
    ));
    let LoginStep::Done(done) = flow.submit_password("pw").await.unwrap() else {
        panic!("expected Done")
    };
    let account = db.account("15550300").await;
    done.persist_into(Arc::clone(&db.store), Arc::clone(&db.keyring), account.id)
        .await
        .unwrap();
    assert_eq!(done.session.account_id(), Some(account.id));

    // What the store now holds.
    assert_eq!(db.store.account_home_dc(account.id).await.unwrap(), Some(2));
    let keys = db.store.list_dc_keys(account.id).await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.dc_id == 2 && k.auth_key_sealed.is_some())
    );
    let me = db.store.get_self_peer(account.id).await.unwrap().unwrap();
    assert_eq!(me.peer_id, alice.id.0);
    assert!(me.access_hash.is_some());
    assert_eq!(me.subtype & 1, 1);
    let (state, _) = db
        .store
        .get_update_state(account.id)
        .await
        .unwrap()
        .unwrap();
    drop(done);
    wait_all_closed(&sim).await;

    // While the hub is down, Bob writes three messages.
    for i in 0..3 {
        sim.send_message(
            bob.id,
            tgsim::Peer::User(alice.id),
            tgsim::OutgoingMessage::text(format!("offline {i}")),
        )
        .unwrap();
    }

    // Reload from the store and reconnect: no new login, the saved state is there.
    let session = Arc::new(db.load(&settings, account.id).await);
    assert_eq!(session.self_user_id(), Some(alice.id.0));
    assert!(session.has_auth_key());
    assert_eq!(session.saved_update_state().unwrap().pts, state.pts);
    drop(session);
    let conn = connect_account(
        &settings,
        Arc::clone(&db.store),
        Arc::clone(&db.keyring),
        account.id,
    )
    .await
    .unwrap();
    let me = conn.client.get_me().await.unwrap();
    assert_eq!(me.id().bare_id_unchecked(), alice.id.0);
    let mut stream = conn
        .client
        .stream_updates(conn.updates, UpdatesConfiguration { catch_up: true })
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while got.len() < 3 {
            let update: Update = stream.next().await.unwrap();
            if let Some(MappedUpdate::New(m)) = map_update(&update, Some(alice.id.0)) {
                assert_eq!(m.peer_id, bob.id.0);
                assert_eq!(m.direction, Direction::In);
                assert_eq!(m.chat_title, "Bob");
                got.push(m.text);
            }
        }
    })
    .await
    .expect("the offline messages were caught up");
    assert_eq!(got, vec!["offline 0", "offline 1", "offline 2"]);
    stream.sync_update_state().await.unwrap();
    drop(stream);
    conn.pool.quit().await.unwrap();

    // The advanced state was written through; one sign-in happened in total.
    let (after, _) = db
        .store
        .get_update_state(account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.pts >= state.pts + 3, "{after:?} vs {state:?}");
    assert_eq!(
        db.load(&settings, account.id)
            .await
            .saved_update_state()
            .unwrap()
            .pts,
        after.pts
    );
    let counters = sim.counters();
    let calls = &counters.accounts[&alice.id.0.to_string()].calls;
    assert_eq!(calls.get("auth.signIn"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("auth.checkPassword"), Some(&1), "{calls:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_stores_sealed_keys_peers_and_channel_pts_and_never_the_key_in_clear() {
    let sim = sim().await;
    let carol = user(&sim, "+15550302", "Carol", None);
    let key = sim.issue_auth_key();
    sim.register_auth_key(carol.id, key).unwrap();
    let settings = settings(&sim);
    let db = Db::new().await;
    let account = db.account("15550302").await;

    let mut imported = switchboard_sessions::parse_string(&telethon_string(&sim, key)).unwrap();
    imported.peers = vec![ImportedPeer {
        id: -1_000_000_000_555,
        access_hash: Some(99),
        kind: PeerKind::Supergroup,
        username: None,
        phone: None,
        name: None,
    }];
    imported.updates = Some(ImportedUpdateState {
        pts: 0,
        qts: 0,
        date: 0,
        seq: 0,
        channels: vec![ChannelPts {
            channel_id: 555,
            pts: 17,
        }],
    });
    let (session, validation) = import_into_account(
        &settings,
        Arc::clone(&db.store),
        Arc::clone(&db.keyring),
        account.id,
        &imported,
    )
    .await
    .unwrap();
    let Validation::Valid(profile) = validation else {
        panic!("expected Valid, got {validation:?}")
    };
    assert_eq!(profile.telegram_user_id, carol.id.0);
    assert_eq!(session.account_id(), Some(account.id));
    wait_all_closed(&sim).await;

    let peer = db
        .store
        .get_cached_peer(account.id, -1_000_000_000_555)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peer.access_hash, Some(99));
    let (_, channels) = db
        .store
        .get_update_state(account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(channels, vec![(555, 17)]);
    assert_eq!(
        db.store
            .get_self_peer(account.id)
            .await
            .unwrap()
            .map(|p| p.peer_id),
        Some(carol.id.0)
    );

    // The key is sealed in the store and appears nowhere in the database files.
    let keys = db.store.list_dc_keys(account.id).await.unwrap();
    let sealed = keys[0].auth_key_sealed.clone().unwrap();
    assert!(!contains(&sealed, &key));
    drop(session);
    db.sqlite.close().await;
    let bytes = db.file_bytes();
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, &key),
        "the auth key is in the database file in clear"
    );
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!contains(&bytes, hex.as_bytes()));
    assert!(!contains(&bytes, &key[..32]));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_import_is_unauthorized_and_export_round_trips_between_accounts() {
    let sim = sim().await;
    let dave = user(&sim, "+15550303", "Dave", None);
    let settings = settings(&sim);
    let db = Db::new().await;

    // A revoked key imports, and validation says unauthorized (the caller marks the account).
    let revoked = db.account("15550399").await;
    let imported =
        switchboard_sessions::parse_string(&telethon_string(&sim, sim.issue_auth_key())).unwrap();
    let (_, v) = import_into_account(
        &settings,
        Arc::clone(&db.store),
        Arc::clone(&db.keyring),
        revoked.id,
        &imported,
    )
    .await
    .unwrap();
    assert!(matches!(v, Validation::Unauthorized { .. }), "{v:?}");
    let dead_key = db.store.list_dc_keys(revoked.id).await.unwrap()[0]
        .auth_key_sealed
        .clone();

    // Re-login of the unauthorized account replaces its session once the login succeeded.
    let erin = user(&sim, "+15550399", "Erin", None);
    let (mut flow, _) = PhoneLogin::start(&settings, "+15550399").await.unwrap();
    let code = sim.last_login_code("+15550399").unwrap();
    let LoginStep::Done(done) = flow.submit_code(&code).await.unwrap() else {
        panic!("expected Done")
    };
    done.persist_into(Arc::clone(&db.store), Arc::clone(&db.keyring), revoked.id)
        .await
        .unwrap();
    let keys = db.store.list_dc_keys(revoked.id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0].auth_key_sealed, dead_key);
    let reloaded = Arc::new(db.load(&settings, revoked.id).await);
    let v = validate(&settings, reloaded).await.unwrap();
    assert!(
        matches!(&v, Validation::Valid(p) if p.telegram_user_id == erin.id.0),
        "{v:?}"
    );

    // A good session exported from one account imports into another as the same person.
    let key = sim.issue_auth_key();
    sim.register_auth_key(dave.id, key).unwrap();
    let first = db.account("15550303").await;
    let v = db.import_key(&sim, &settings, first.id, key).await;
    let Validation::Valid(profile) = v else {
        panic!("expected Valid")
    };
    for format in [ExportFormat::Telethon, ExportFormat::Pyrogram] {
        let exported = export_account(
            &settings,
            Arc::clone(&db.store),
            Arc::clone(&db.keyring),
            first.id,
            format,
        )
        .await
        .unwrap();
        let back = switchboard_sessions::parse_string(exported.expose()).unwrap();
        assert_eq!(back.auth_key.as_bytes(), &key);
        let other = db
            .account(match format {
                ExportFormat::Telethon => "15550304",
                ExportFormat::Pyrogram => "15550305",
            })
            .await;
        let (_, v) = import_into_account(
            &settings,
            Arc::clone(&db.store),
            Arc::clone(&db.keyring),
            other.id,
            &back,
        )
        .await
        .unwrap();
        assert_eq!(v, Validation::Valid(profile.clone()), "{format:?}");
        wait_all_closed(&sim).await;
    }
    sim.shutdown().await;
}

/// The consumer of the update stream stalls while 400 messages arrive; only 20 may be held
/// for it. The rest are dropped for one `updatesTooLong`, and the stream fetches them with
/// `getDifference` once the consumer reads again: every message arrives, each exactly once,
/// long before grammers' 15-minute "no updates" check would have noticed the loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_loses_nothing_beyond_the_update_backlog() {
    const SENT: usize = 400;
    let sim = sim().await;
    let frank = user(&sim, "+15550304", "Frank", None);
    let grace = user(&sim, "+15550305", "Grace", None);
    let key = sim.issue_auth_key();
    sim.register_auth_key(frank.id, key).unwrap();
    let mut settings = settings(&sim);
    settings.update_backlog = 20;
    let db = Db::new().await;
    let account = db.account("15550304").await;
    let validation = db.import_key(&sim, &settings, account.id, key).await;
    assert!(matches!(validation, Validation::Valid(_)));
    let conn = connect_account(
        &settings,
        Arc::clone(&db.store),
        Arc::clone(&db.keyring),
        account.id,
    )
    .await
    .unwrap();
    conn.client.get_me().await.unwrap();
    let mut stream = conn
        .client
        .stream_updates(conn.updates, UpdatesConfiguration { catch_up: true })
        .await
        .unwrap();

    // One message read first: the catch-up at the stream's start is behind us.
    sim.send_message(
        grace.id,
        tgsim::Peer::User(frank.id),
        tgsim::OutgoingMessage::text("hello"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let update: Update = stream.next().await.unwrap();
            if let Some(MappedUpdate::New(_)) = map_update(&update, Some(frank.id.0)) {
                break;
            }
        }
    })
    .await
    .expect("the first message");
    let differences = |sim: &tgsim::Handle| {
        sim.counters()
            .accounts
            .get(&frank.id.0.to_string())
            .and_then(|a| a.calls.get("updates.getDifference").copied())
            .unwrap_or(0)
    };
    let before = differences(&sim);

    // Nobody reads the stream while the messages are pushed.
    for i in 0..SENT {
        sim.send_message(
            grace.id,
            tgsim::Peer::User(frank.id),
            tgsim::OutgoingMessage::text(format!("flood {i:04}")),
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < SENT {
            let update: Update = stream.next().await.unwrap();
            if let Some(MappedUpdate::New(m)) = map_update(&update, Some(frank.id.0)) {
                got.push(m.text);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {SENT} arrived", got.len()));
    let expected: Vec<String> = (0..SENT).map(|i| format!("flood {i:04}")).collect();
    got.sort();
    assert_eq!(got, expected, "every message exactly once");
    assert!(
        differences(&sim) > before,
        "the dropped updates were fetched with getDifference"
    );
    drop(stream);
    conn.pool.quit().await.unwrap();
    sim.shutdown().await;
}
