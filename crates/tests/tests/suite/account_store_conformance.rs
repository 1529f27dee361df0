//! The conformance suite of the `AccountStore` port: accounts, their Telegram session data, and
//! ingested chats and messages, run against SQLite and PostgreSQL alike (each test once per
//! backend, on a fresh database). Every workspace-scoped method is also tried across workspaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::BTreeSet;
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    Account, AccountId, AccountProfile, AccountStatus, CachedPeer, Chat, ChatId, ChatStatus, DcKey,
    Direction, Entity, IncomingMessage, Media, MediaKind, MessageId, NewAccount, PeerKind,
    PrivatePeer, StoreError, Timestamp, UpdateState, WorkspaceId,
};
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::{Stores, sealed_column};

account_backend_tests!(
    accounts_are_created_and_read,
    accounts_are_invisible_to_other_workspaces,
    duplicate_telegram_user_is_a_conflict_within_a_workspace,
    accounts_are_found_by_phone_within_their_workspace,
    status_profile_and_active_flag_are_updated,
    setters_of_an_unknown_account_are_not_found,
    accounts_are_deleted_within_their_workspace_only,
    deleting_an_account_removes_its_session_chats_and_messages,
    home_dc_and_dc_keys_round_trip,
    sealed_bytes_are_stored_verbatim,
    sealed_api_hashes_are_listed_and_replaced,
    cached_peers_round_trip,
    update_state_round_trips,
    single_field_update_setters_upsert,
    wipe_forgets_the_session_but_keeps_the_account_and_chats,
    ingest_creates_chats_and_stores_messages,
    ingest_is_idempotent,
    ingest_refreshes_chat_names,
    inbound_reopens_a_resolved_chat_but_outbound_does_not,
    ingest_of_a_large_batch_inserts_every_message_once,
    ingest_for_an_unknown_account_stores_nothing,
    concurrent_ingests_store_each_message_once,
    nul_characters_never_fail_a_write,
    edits_keep_the_history_oldest_first,
    media_json_is_replaced_within_the_account_only,
    deletions_with_a_peer_touch_only_that_chat,
    deletions_without_a_peer_touch_only_private_and_basic_group_chats,
    messages_are_paged_newest_first,
    chats_and_messages_are_invisible_to_other_workspaces,
    a_private_chat_is_opened_once_within_the_workspace,
);

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

async fn workspace(db: &Stores, name: &str) -> WorkspaceId {
    db.store.create_workspace(name, t(1)).await.unwrap().id
}

fn new_account(ws: WorkspaceId, telegram_user_id: Option<i64>, phone: &str) -> NewAccount {
    NewAccount {
        workspace_id: ws,
        phone: Some(phone.to_string()),
        telegram_user_id,
        first_name: format!("Owner of {phone}"),
        last_name: None,
        username: None,
        status: AccountStatus::Connecting,
        active: true,
        ingest_groups: false,
        api_id: None,
        api_hash_sealed: None,
    }
}

async fn account(db: &Stores, ws: WorkspaceId, telegram_user_id: i64) -> Account {
    db.accounts
        .create_account(
            &new_account(
                ws,
                Some(telegram_user_id),
                &format!("7900{telegram_user_id}"),
            ),
            t(10),
        )
        .await
        .unwrap()
}

fn message(peer_id: i64, tg_id: i64, direction: Direction, sent_at: i64) -> IncomingMessage {
    IncomingMessage {
        peer_id,
        peer_kind: if peer_id > 0 {
            PeerKind::User
        } else {
            PeerKind::Group
        },
        chat_title: format!("Peer {peer_id}"),
        chat_username: None,
        tg_message_id: tg_id,
        direction,
        sender_id: Some(if direction == Direction::In {
            peer_id
        } else {
            1
        }),
        sender_name: Some(format!("Sender of {tg_id}")),
        text: format!("message {tg_id}"),
        entities: Vec::new(),
        media: None,
        reply_to_tg_id: None,
        sent_at: t(sent_at),
    }
}

fn inbound(peer_id: i64, tg_id: i64, sent_at: i64) -> IncomingMessage {
    message(peer_id, tg_id, Direction::In, sent_at)
}

fn outbound(peer_id: i64, tg_id: i64, sent_at: i64) -> IncomingMessage {
    message(peer_id, tg_id, Direction::Out, sent_at)
}

fn of_kind(mut m: IncomingMessage, kind: PeerKind) -> IncomingMessage {
    m.peer_kind = kind;
    m
}

/// The one chat of `account` with `peer_id`.
async fn chat(db: &Stores, ws: WorkspaceId, account: AccountId, peer_id: i64) -> Chat {
    let chats = db.accounts.list_account_chats(ws, account).await.unwrap();
    chats
        .into_iter()
        .find(|c| c.peer_id == peer_id)
        .unwrap_or_else(|| panic!("no chat with {peer_id}"))
}

/// Telegram ids of a chat's messages, newest first.
async fn tg_ids(db: &Stores, ws: WorkspaceId, chat: ChatId) -> Vec<i64> {
    db.accounts
        .list_chat_messages(ws, chat, None, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.tg_message_id.unwrap())
        .collect()
}

fn dc(dc_id: i32, key: Option<Vec<u8>>) -> DcKey {
    DcKey {
        dc_id,
        ipv4: format!("149.154.167.{dc_id}:443"),
        ipv6: format!("[2001:67c:4e8:f002::{dc_id}]:443"),
        auth_key_sealed: key,
    }
}

fn peer(peer_id: i64, access_hash: Option<i64>, subtype: i32) -> CachedPeer {
    CachedPeer {
        peer_id,
        access_hash,
        subtype,
    }
}

// --- accounts ---

async fn accounts_are_created_and_read(db: Stores) {
    let ws = workspace(&db, "Acme").await;
    let new = NewAccount {
        workspace_id: ws,
        phone: Some("79001234567".to_string()),
        telegram_user_id: Some(777_000_111),
        first_name: "Анна".to_string(),
        last_name: Some("Иванова".to_string()),
        username: Some("anna".to_string()),
        status: AccountStatus::Connecting,
        active: false,
        ingest_groups: true,
        api_id: Some(12_345),
        api_hash_sealed: Some(vec![0, 1, 2, 255, 0]),
    };
    let created = db.accounts.create_account(&new, t(1_000)).await.unwrap();
    assert!(created.id.0 > 0);
    assert_eq!(created.workspace_id, ws);
    assert_eq!(created.phone.as_deref(), Some("79001234567"));
    assert_eq!(created.telegram_user_id, Some(777_000_111));
    assert_eq!(created.first_name, "Анна");
    assert_eq!(created.last_name.as_deref(), Some("Иванова"));
    assert_eq!(created.username.as_deref(), Some("anna"));
    assert_eq!(created.status, AccountStatus::Connecting);
    assert_eq!(created.status_detail, None);
    assert_eq!(created.flood_wait_until, None);
    assert!(!created.active);
    assert!(created.ingest_groups);
    assert_eq!(created.api_id, Some(12_345));
    assert_eq!(created.api_hash_sealed, Some(vec![0, 1, 2, 255, 0]));
    assert_eq!(created.created_at, t(1_000));
    assert_eq!(created.updated_at, t(1_000));

    assert_eq!(
        db.accounts.get_account(ws, created.id).await.unwrap(),
        created
    );
    assert_eq!(db.accounts.load_account(created.id).await.unwrap(), created);

    // A minimal account: not signed in yet, defaults everywhere.
    let bare = NewAccount {
        workspace_id: ws,
        phone: None,
        telegram_user_id: None,
        first_name: String::new(),
        last_name: None,
        username: None,
        status: AccountStatus::Stopped,
        active: true,
        ingest_groups: false,
        api_id: None,
        api_hash_sealed: None,
    };
    let second = db.accounts.create_account(&bare, t(2_000)).await.unwrap();
    assert!(second.id > created.id);
    assert_eq!(second.phone, None);
    assert_eq!(second.telegram_user_id, None);
    assert_eq!(second.api_hash_sealed, None);
    assert_eq!(second.status, AccountStatus::Stopped);
    assert!(second.active && !second.ingest_groups);

    assert_eq!(
        db.accounts.list_accounts(ws).await.unwrap(),
        vec![created.clone(), second.clone()]
    );
    assert_err!(
        db.accounts.load_account(AccountId(i64::MAX)).await,
        StoreError::NotFound
    );
    // Every status survives the round trip.
    for (i, status) in AccountStatus::ALL.into_iter().enumerate() {
        let mut new = new_account(ws, None, &format!("7{i}"));
        new.status = status;
        let a = db.accounts.create_account(&new, t(3_000)).await.unwrap();
        assert_eq!(db.accounts.load_account(a.id).await.unwrap().status, status);
    }
    // An account of a workspace that does not exist.
    assert_err!(
        db.accounts
            .create_account(&new_account(WorkspaceId(i64::MAX), None, "1"), t(1))
            .await,
        StoreError::NotFound
    );
}

async fn accounts_are_invisible_to_other_workspaces(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, other, 2).await;

    assert_err!(
        db.accounts.get_account(other, a.id).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.get_account(acme, b.id).await,
        StoreError::NotFound
    );
    assert_eq!(
        db.accounts.list_accounts(acme).await.unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        db.accounts.list_accounts(other).await.unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        db.accounts
            .find_account_by_phone(other, a.phone.as_deref().unwrap())
            .await
            .unwrap(),
        None
    );
    assert_err!(
        db.accounts.delete_account(other, a.id).await,
        StoreError::NotFound
    );
    assert_eq!(db.accounts.get_account(acme, a.id).await.unwrap(), a);
}

async fn duplicate_telegram_user_is_a_conflict_within_a_workspace(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    account(&db, acme, 42).await;
    assert_err!(
        db.accounts
            .create_account(&new_account(acme, Some(42), "79000000001"), t(1))
            .await,
        StoreError::Conflict(ErrorCode::AccountExists)
    );
    // The same Telegram user in another workspace is another account.
    account(&db, other, 42).await;
    // Accounts not signed in yet never collide.
    for phone in ["1", "2"] {
        db.accounts
            .create_account(&new_account(acme, None, phone), t(1))
            .await
            .unwrap();
    }
    // Learning a profile that another account of the workspace already has is a conflict too.
    let pending = db
        .accounts
        .find_account_by_phone(acme, "1")
        .await
        .unwrap()
        .unwrap();
    let profile = AccountProfile {
        telegram_user_id: 42,
        phone: None,
        first_name: "Dup".to_string(),
        last_name: None,
        username: None,
    };
    assert_err!(
        db.accounts
            .set_account_profile(pending.id, &profile, t(2))
            .await,
        StoreError::Conflict(ErrorCode::AccountExists)
    );
    assert_eq!(db.accounts.load_account(pending.id).await.unwrap(), pending);
    assert_eq!(db.accounts.list_accounts(acme).await.unwrap().len(), 3);
}

async fn accounts_are_found_by_phone_within_their_workspace(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let a = db
        .accounts
        .create_account(&new_account(acme, Some(5), "79001112233"), t(1))
        .await
        .unwrap();
    let b = db
        .accounts
        .create_account(&new_account(other, Some(5), "79001112233"), t(1))
        .await
        .unwrap();
    assert_eq!(
        db.accounts
            .find_account_by_phone(acme, "79001112233")
            .await
            .unwrap(),
        Some(a)
    );
    assert_eq!(
        db.accounts
            .find_account_by_phone(other, "79001112233")
            .await
            .unwrap(),
        Some(b)
    );
    assert_eq!(
        db.accounts
            .find_account_by_phone(acme, "7900111223")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.accounts.find_account_by_phone(acme, "").await.unwrap(),
        None
    );
}

async fn status_profile_and_active_flag_are_updated(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, other, 2).await;
    let c = account(&db, acme, 3).await;

    db.accounts
        .set_account_status(
            a.id,
            AccountStatus::FloodWait,
            Some("FLOOD_WAIT_30"),
            Some(t(60_000)),
            t(20),
        )
        .await
        .unwrap();
    let got = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(got.status, AccountStatus::FloodWait);
    assert_eq!(got.status_detail.as_deref(), Some("FLOOD_WAIT_30"));
    assert_eq!(got.flood_wait_until, Some(t(60_000)));
    assert_eq!(got.updated_at, t(20));
    assert_eq!(got.created_at, a.created_at);

    db.accounts
        .set_account_status(a.id, AccountStatus::Connected, None, None, t(30))
        .await
        .unwrap();
    let got = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(got.status, AccountStatus::Connected);
    assert_eq!(got.status_detail, None);
    assert_eq!(got.flood_wait_until, None);
    assert_eq!(got.updated_at, t(30));

    let profile = AccountProfile {
        telegram_user_id: 100,
        phone: Some("79990001122".to_string()),
        first_name: "Ivan".to_string(),
        last_name: Some("Petrov".to_string()),
        username: Some("ivan".to_string()),
    };
    db.accounts
        .set_account_profile(a.id, &profile, t(40))
        .await
        .unwrap();
    let got = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(got.telegram_user_id, Some(100));
    assert_eq!(got.phone.as_deref(), Some("79990001122"));
    assert_eq!(got.first_name, "Ivan");
    assert_eq!(got.last_name.as_deref(), Some("Petrov"));
    assert_eq!(got.username.as_deref(), Some("ivan"));
    assert_eq!(got.updated_at, t(40));
    // A profile without a phone keeps the known phone; names are replaced.
    let hidden = AccountProfile {
        phone: None,
        last_name: None,
        username: None,
        ..profile
    };
    db.accounts
        .set_account_profile(a.id, &hidden, t(50))
        .await
        .unwrap();
    let got = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(got.phone.as_deref(), Some("79990001122"));
    assert_eq!(got.last_name, None);
    assert_eq!(got.username, None);

    // Active accounts of every workspace, by id.
    let ids = |accounts: Vec<Account>| accounts.iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.accounts.list_active_accounts().await.unwrap()),
        vec![a.id, b.id, c.id]
    );
    db.accounts
        .set_account_active(b.id, false, t(60))
        .await
        .unwrap();
    let got = db.accounts.load_account(b.id).await.unwrap();
    assert!(!got.active);
    assert_eq!(got.updated_at, t(60));
    assert_eq!(
        ids(db.accounts.list_active_accounts().await.unwrap()),
        vec![a.id, c.id]
    );
    db.accounts
        .set_account_active(b.id, true, t(70))
        .await
        .unwrap();
    assert!(db.accounts.load_account(b.id).await.unwrap().active);
    assert_eq!(db.accounts.list_active_accounts().await.unwrap().len(), 3);

    // Group ingestion is off by default and toggled per account.
    assert!(!c.ingest_groups);
    db.accounts
        .set_account_ingest_groups(c.id, true, t(80))
        .await
        .unwrap();
    let got = db.accounts.load_account(c.id).await.unwrap();
    assert!(got.ingest_groups);
    assert_eq!(got.updated_at, t(80));
    assert!(!db.accounts.load_account(a.id).await.unwrap().ingest_groups);
    db.accounts
        .set_account_ingest_groups(c.id, false, t(90))
        .await
        .unwrap();
    assert!(!db.accounts.load_account(c.id).await.unwrap().ingest_groups);
}

async fn setters_of_an_unknown_account_are_not_found(db: Stores) {
    let missing = AccountId(i64::MAX);
    let profile = AccountProfile {
        telegram_user_id: 1,
        phone: None,
        first_name: "X".to_string(),
        last_name: None,
        username: None,
    };
    assert_err!(
        db.accounts
            .set_account_status(missing, AccountStatus::Banned, None, None, t(1))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .set_account_profile(missing, &profile, t(1))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.set_account_active(missing, false, t(1)).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .set_account_api_hash_sealed(missing, Some(&[1]), t(1))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .set_account_ingest_groups(missing, true, t(1))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.account_home_dc(missing).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.set_account_home_dc(missing, 2).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .upsert_dc_key(missing, &dc(2, Some(vec![1])))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .upsert_cached_peers(missing, &[peer(1, None, 1)])
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts
            .set_update_state(missing, &UpdateState::default(), &[(1, 1)])
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.set_update_primary(missing, 1, 1, 1).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.set_update_qts(missing, 1).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.set_channel_pts(missing, 1, 1).await,
        StoreError::NotFound
    );
    assert_err!(
        db.accounts.wipe_account_session(missing).await,
        StoreError::NotFound
    );
    // Reads of an unknown account's session find nothing.
    assert!(db.accounts.list_dc_keys(missing).await.unwrap().is_empty());
    assert_eq!(db.accounts.get_cached_peer(missing, 1).await.unwrap(), None);
    assert_eq!(db.accounts.get_self_peer(missing).await.unwrap(), None);
    assert_eq!(db.accounts.get_update_state(missing).await.unwrap(), None);
}

async fn accounts_are_deleted_within_their_workspace_only(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;

    assert_err!(
        db.accounts.delete_account(other, a.id).await,
        StoreError::NotFound
    );
    db.accounts.delete_account(acme, a.id).await.unwrap();
    assert_err!(
        db.accounts.get_account(acme, a.id).await,
        StoreError::NotFound
    );
    assert_err!(db.accounts.load_account(a.id).await, StoreError::NotFound);
    assert_err!(
        db.accounts.delete_account(acme, a.id).await,
        StoreError::NotFound
    );
    assert_eq!(db.accounts.list_accounts(acme).await.unwrap(), vec![b]);
    // Its Telegram user may be connected again.
    account(&db, acme, 1).await;
}

async fn deleting_an_account_removes_its_session_chats_and_messages(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let keep = account(&db, acme, 2).await;
    for acc in [a.id, keep.id] {
        db.accounts.set_account_home_dc(acc, 2).await.unwrap();
        db.accounts
            .upsert_dc_key(acc, &dc(2, Some(vec![7; 32])))
            .await
            .unwrap();
        db.accounts
            .upsert_cached_peers(acc, &[peer(1, Some(5), 1), peer(10, Some(6), 0)])
            .await
            .unwrap();
        db.accounts
            .set_update_state(
                acc,
                &UpdateState {
                    pts: 1,
                    qts: 2,
                    date: 3,
                    seq: 4,
                },
                &[(-1001, 9)],
            )
            .await
            .unwrap();
        db.accounts
            .ingest_messages(acc, &[inbound(10, 1, 100), outbound(10, 2, 200)], t(300))
            .await
            .unwrap();
        db.accounts
            .apply_message_edit(acc, 10, 1, "edited", &[], t(400))
            .await
            .unwrap()
            .unwrap();
    }
    let chat_a = chat(&db, acme, a.id, 10).await;
    let msg_a = db
        .accounts
        .list_chat_messages(acme, chat_a.id, None, 10)
        .await
        .unwrap();

    db.accounts.delete_account(acme, a.id).await.unwrap();

    let id = a.id.0;
    for table in [
        "account_dc_keys",
        "account_peers",
        "account_update_states",
        "account_channel_states",
        "chats",
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE account_id = {id}");
        assert_eq!(
            db.scalar(&sql).await,
            0,
            "{table} keeps rows of a deleted account"
        );
    }
    let sql = format!(
        "SELECT count(*) FROM messages WHERE chat_id = {}",
        chat_a.id.0
    );
    assert_eq!(db.scalar(&sql).await, 0);
    let sql = format!(
        "SELECT count(*) FROM message_edits WHERE message_id = {}",
        msg_a[1].id.0
    );
    assert_eq!(db.scalar(&sql).await, 0);
    assert!(
        db.accounts
            .list_account_chats(acme, a.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.accounts
            .list_chat_messages(acme, chat_a.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.accounts
            .list_message_edits(acme, msg_a[1].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.accounts.get_update_state(a.id).await.unwrap(), None);
    assert!(db.accounts.list_dc_keys(a.id).await.unwrap().is_empty());

    // The other account keeps everything.
    assert_eq!(db.accounts.account_home_dc(keep.id).await.unwrap(), Some(2));
    assert_eq!(db.accounts.list_dc_keys(keep.id).await.unwrap().len(), 1);
    assert!(db.accounts.get_self_peer(keep.id).await.unwrap().is_some());
    assert!(
        db.accounts
            .get_update_state(keep.id)
            .await
            .unwrap()
            .is_some()
    );
    let chat_keep = chat(&db, acme, keep.id, 10).await;
    assert_eq!(tg_ids(&db, acme, chat_keep.id).await, vec![2, 1]);
    let all_keys = sealed_dc_keys(&db).await;
    assert_eq!(all_keys, vec![(keep.id, 2, vec![7; 32])]);
    let sql = "SELECT count(*) FROM message_edits";
    assert_eq!(db.scalar(sql).await, 1);
}

// --- Telegram session data ---

async fn home_dc_and_dc_keys_round_trip(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;

    assert_eq!(db.accounts.account_home_dc(a.id).await.unwrap(), None);
    db.accounts.set_account_home_dc(a.id, 4).await.unwrap();
    assert_eq!(db.accounts.account_home_dc(a.id).await.unwrap(), Some(4));
    db.accounts.set_account_home_dc(a.id, 2).await.unwrap();
    assert_eq!(db.accounts.account_home_dc(a.id).await.unwrap(), Some(2));
    assert_eq!(db.accounts.account_home_dc(b.id).await.unwrap(), None);

    assert!(db.accounts.list_dc_keys(a.id).await.unwrap().is_empty());
    for id in [4, 1, 2] {
        let key = (id != 1).then(|| vec![u8::try_from(id).unwrap(); 40]);
        db.accounts.upsert_dc_key(a.id, &dc(id, key)).await.unwrap();
    }
    db.accounts
        .upsert_dc_key(b.id, &dc(3, Some(vec![3; 40])))
        .await
        .unwrap();
    let keys = db.accounts.list_dc_keys(a.id).await.unwrap();
    assert_eq!(
        keys,
        vec![
            dc(1, None),
            dc(2, Some(vec![2; 40])),
            dc(4, Some(vec![4; 40]))
        ]
    );

    // Replacing a DC: new address, a key where there was none, no key where there was one.
    let moved = DcKey {
        ipv4: "10.0.0.1:4430".to_string(),
        ipv6: "[::1]:4430".to_string(),
        ..dc(1, Some(vec![9; 40]))
    };
    db.accounts.upsert_dc_key(a.id, &moved).await.unwrap();
    db.accounts.upsert_dc_key(a.id, &dc(4, None)).await.unwrap();
    let keys = db.accounts.list_dc_keys(a.id).await.unwrap();
    assert_eq!(keys, vec![moved, dc(2, Some(vec![2; 40])), dc(4, None)]);

    // Every sealed key of every account, for rotation; DCs without a key are left out.
    assert_eq!(
        sealed_dc_keys(&db).await,
        vec![
            (a.id, 1, vec![9; 40]),
            (a.id, 2, vec![2; 40]),
            (b.id, 3, vec![3; 40]),
        ]
    );
}

async fn sealed_bytes_are_stored_verbatim(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let mut new = new_account(acme, Some(1), "1");
    new.api_hash_sealed = Some(every_byte.clone());
    let a = db.accounts.create_account(&new, t(1)).await.unwrap();
    assert_eq!(a.api_hash_sealed.as_ref(), Some(&every_byte));
    assert_eq!(
        db.accounts
            .load_account(a.id)
            .await
            .unwrap()
            .api_hash_sealed,
        Some(every_byte.clone())
    );
    db.accounts
        .upsert_dc_key(a.id, &dc(2, Some(every_byte.clone())))
        .await
        .unwrap();
    assert_eq!(
        db.accounts.list_dc_keys(a.id).await.unwrap()[0].auth_key_sealed,
        Some(every_byte.clone())
    );
    // Empty is not absent.
    db.accounts
        .upsert_dc_key(a.id, &dc(3, Some(Vec::new())))
        .await
        .unwrap();
    assert_eq!(
        db.accounts.list_dc_keys(a.id).await.unwrap()[1].auth_key_sealed,
        Some(Vec::new())
    );
}

async fn sealed_api_hashes_are_listed_and_replaced(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let mut with_hash = new_account(acme, Some(1), "1");
    with_hash.api_hash_sealed = Some(vec![1, 2, 3]);
    let a = db.accounts.create_account(&with_hash, t(1)).await.unwrap();
    let b = account(&db, acme, 2).await;
    let mut elsewhere = new_account(other, Some(3), "3");
    elsewhere.api_hash_sealed = Some(vec![9]);
    let c = db.accounts.create_account(&elsewhere, t(1)).await.unwrap();
    // Every workspace, only accounts that have one, by id.
    assert_eq!(
        sealed_api_hashes(&db).await,
        vec![(a.id, vec![1, 2, 3]), (c.id, vec![9])]
    );

    let every_byte: Vec<u8> = (0..=255u8).collect();
    db.accounts
        .set_account_api_hash_sealed(b.id, Some(&every_byte), t(50))
        .await
        .unwrap();
    db.accounts
        .set_account_api_hash_sealed(a.id, None, t(60))
        .await
        .unwrap();
    assert_eq!(
        sealed_api_hashes(&db).await,
        vec![(b.id, every_byte.clone()), (c.id, vec![9])]
    );
    let b = db.accounts.load_account(b.id).await.unwrap();
    assert_eq!(b.api_hash_sealed, Some(every_byte));
    assert_eq!(b.updated_at, t(50));
    let a = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(a.api_hash_sealed, None);
    assert_eq!(a.updated_at, t(60));
}

async fn cached_peers_round_trip(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;

    assert_eq!(db.accounts.get_self_peer(a.id).await.unwrap(), None);
    db.accounts.upsert_cached_peers(a.id, &[]).await.unwrap();
    db.accounts
        .upsert_cached_peers(
            a.id,
            &[
                peer(100, Some(-7), 0),
                peer(1, Some(i64::MIN), 1 | 2),
                peer(-1_001_234_567_890, Some(i64::MAX), 4),
                peer(-42, None, 0),
                // A peer twice in one call: the later one wins.
                peer(100, Some(8), 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        db.accounts.get_cached_peer(a.id, 100).await.unwrap(),
        Some(peer(100, Some(8), 2))
    );
    assert_eq!(
        db.accounts
            .get_cached_peer(a.id, -1_001_234_567_890)
            .await
            .unwrap(),
        Some(peer(-1_001_234_567_890, Some(i64::MAX), 4))
    );
    assert_eq!(
        db.accounts.get_cached_peer(a.id, -42).await.unwrap(),
        Some(peer(-42, None, 0))
    );
    assert_eq!(db.accounts.get_cached_peer(a.id, 5).await.unwrap(), None);
    assert_eq!(
        db.accounts.get_self_peer(a.id).await.unwrap(),
        Some(peer(1, Some(i64::MIN), 3))
    );
    // Peers belong to one account.
    assert_eq!(db.accounts.get_cached_peer(b.id, 100).await.unwrap(), None);
    assert_eq!(db.accounts.get_self_peer(b.id).await.unwrap(), None);

    // Replacing: the hash may be forgotten and the self bit moved.
    db.accounts
        .upsert_cached_peers(a.id, &[peer(1, None, 0), peer(2, Some(3), 1)])
        .await
        .unwrap();
    assert_eq!(
        db.accounts.get_cached_peer(a.id, 1).await.unwrap(),
        Some(peer(1, None, 0))
    );
    assert_eq!(
        db.accounts.get_self_peer(a.id).await.unwrap(),
        Some(peer(2, Some(3), 1))
    );

    // Many peers in one call (more than one statement's worth).
    let many: Vec<CachedPeer> = (1_000..2_300).map(|id| peer(id, Some(id * 3), 0)).collect();
    db.accounts.upsert_cached_peers(b.id, &many).await.unwrap();
    for id in [1_000, 1_499, 1_500, 2_299] {
        assert_eq!(
            db.accounts.get_cached_peer(b.id, id).await.unwrap(),
            Some(peer(id, Some(id * 3), 0))
        );
    }
    let sql = format!(
        "SELECT count(*) FROM account_peers WHERE account_id = {}",
        b.id.0
    );
    assert_eq!(db.scalar(&sql).await, 1_300);
}

async fn update_state_round_trips(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;

    assert_eq!(db.accounts.get_update_state(a.id).await.unwrap(), None);
    let state = UpdateState {
        pts: 100,
        qts: 7,
        date: 1_700_000_000,
        seq: 12,
    };
    let channels = [
        (1_234_567_890, 55),
        (42, 3),
        (i64::from(i32::MAX) + 1, i32::MAX),
    ];
    db.accounts
        .set_update_state(a.id, &state, &channels)
        .await
        .unwrap();
    let (got, got_channels) = db.accounts.get_update_state(a.id).await.unwrap().unwrap();
    assert_eq!(got, state);
    assert_eq!(
        got_channels,
        vec![
            (42, 3),
            (1_234_567_890, 55),
            (i64::from(i32::MAX) + 1, i32::MAX)
        ]
    );
    assert_eq!(db.accounts.get_update_state(b.id).await.unwrap(), None);

    // Replacing drops channels that are no longer listed.
    let later = UpdateState {
        pts: 200,
        qts: 8,
        date: 1_700_000_100,
        seq: 13,
    };
    db.accounts
        .set_update_state(a.id, &later, &[(42, 10), (7, 1)])
        .await
        .unwrap();
    assert_eq!(
        db.accounts.get_update_state(a.id).await.unwrap(),
        Some((later, vec![(7, 1), (42, 10)]))
    );
    db.accounts
        .set_update_state(a.id, &state, &[])
        .await
        .unwrap();
    assert_eq!(
        db.accounts.get_update_state(a.id).await.unwrap(),
        Some((state, vec![]))
    );

    // The single-field setters change only their fields.
    db.accounts
        .set_update_primary(a.id, 300, 1_700_000_200, 20)
        .await
        .unwrap();
    db.accounts.set_update_qts(a.id, 9).await.unwrap();
    db.accounts.set_channel_pts(a.id, 42, 11).await.unwrap();
    db.accounts.set_channel_pts(a.id, 43, 1).await.unwrap();
    db.accounts.set_channel_pts(a.id, 42, 12).await.unwrap();
    assert_eq!(
        db.accounts.get_update_state(a.id).await.unwrap(),
        Some((
            UpdateState {
                pts: 300,
                qts: 9,
                date: 1_700_000_200,
                seq: 20
            },
            vec![(42, 12), (43, 1)]
        ))
    );
    assert_eq!(db.accounts.get_update_state(b.id).await.unwrap(), None);

    // Many channels in one call.
    let many: Vec<(i64, i32)> = (1..=1_200)
        .map(|id| (id, i32::try_from(id).unwrap()))
        .collect();
    db.accounts
        .set_update_state(b.id, &state, &many)
        .await
        .unwrap();
    let (_, got) = db.accounts.get_update_state(b.id).await.unwrap().unwrap();
    assert_eq!(got, many);
}

async fn single_field_update_setters_upsert(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    let c = account(&db, acme, 3).await;

    db.accounts.set_update_primary(a.id, 5, 6, 7).await.unwrap();
    assert_eq!(
        db.accounts.get_update_state(a.id).await.unwrap(),
        Some((
            UpdateState {
                pts: 5,
                qts: 0,
                date: 6,
                seq: 7
            },
            vec![]
        ))
    );
    db.accounts.set_update_qts(b.id, 4).await.unwrap();
    assert_eq!(
        db.accounts.get_update_state(b.id).await.unwrap(),
        Some((
            UpdateState {
                pts: 0,
                qts: 4,
                date: 0,
                seq: 0
            },
            vec![]
        ))
    );
    // Only a channel saved so far: the common state is at its start.
    db.accounts.set_channel_pts(c.id, 99, 3).await.unwrap();
    assert_eq!(
        db.accounts.get_update_state(c.id).await.unwrap(),
        Some((UpdateState::default(), vec![(99, 3)]))
    );
    db.accounts.set_update_primary(c.id, 1, 2, 3).await.unwrap();
    assert_eq!(
        db.accounts.get_update_state(c.id).await.unwrap(),
        Some((
            UpdateState {
                pts: 1,
                qts: 0,
                date: 2,
                seq: 3
            },
            vec![(99, 3)]
        ))
    );
}

async fn wipe_forgets_the_session_but_keeps_the_account_and_chats(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    for acc in [a.id, b.id] {
        db.accounts.set_account_home_dc(acc, 2).await.unwrap();
        db.accounts
            .upsert_dc_key(acc, &dc(2, Some(vec![1; 8])))
            .await
            .unwrap();
        db.accounts.upsert_dc_key(acc, &dc(4, None)).await.unwrap();
        db.accounts
            .upsert_cached_peers(acc, &[peer(1, Some(1), 1)])
            .await
            .unwrap();
        db.accounts
            .set_update_state(
                acc,
                &UpdateState {
                    pts: 1,
                    qts: 1,
                    date: 1,
                    seq: 1,
                },
                &[(5, 5)],
            )
            .await
            .unwrap();
        db.accounts
            .ingest_messages(acc, &[inbound(10, 1, 5)], t(6))
            .await
            .unwrap();
    }

    db.accounts.wipe_account_session(a.id).await.unwrap();
    assert_eq!(db.accounts.account_home_dc(a.id).await.unwrap(), None);
    assert!(db.accounts.list_dc_keys(a.id).await.unwrap().is_empty());
    assert_eq!(db.accounts.get_cached_peer(a.id, 1).await.unwrap(), None);
    assert_eq!(db.accounts.get_self_peer(a.id).await.unwrap(), None);
    assert_eq!(db.accounts.get_update_state(a.id).await.unwrap(), None);
    let sql = format!(
        "SELECT count(*) FROM account_channel_states WHERE account_id = {}",
        a.id.0
    );
    assert_eq!(db.scalar(&sql).await, 0);
    // The account and its inbox stay.
    let after = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(after.telegram_user_id, a.telegram_user_id);
    assert_eq!(
        db.accounts
            .list_account_chats(acme, a.id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Wiping twice is harmless.
    db.accounts.wipe_account_session(a.id).await.unwrap();

    // Another account's session is untouched.
    assert_eq!(db.accounts.account_home_dc(b.id).await.unwrap(), Some(2));
    assert_eq!(db.accounts.list_dc_keys(b.id).await.unwrap().len(), 2);
    assert!(db.accounts.get_self_peer(b.id).await.unwrap().is_some());
    assert_eq!(
        db.accounts.get_update_state(b.id).await.unwrap().unwrap().1,
        vec![(5, 5)]
    );
    assert_eq!(sealed_dc_keys(&db).await, vec![(b.id, 2, vec![1; 8])]);
}

// --- ingestion ---

async fn ingest_creates_chats_and_stores_messages(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;

    let mut rich = inbound(500, 3, 3_000);
    rich.chat_username = Some("bob".to_string());
    rich.chat_title = "Bob".to_string();
    rich.entities = entities(json!([{"type": "bold", "offset": 0, "length": 4}]));
    rich.media = media(json!({"kind": "photo", "size": 1234, "title": "Привет"}));
    rich.reply_to_tg_id = Some(2);
    rich.text = "Hi **there** — привет 👋".to_string();
    let group = of_kind(inbound(-900, 1, 2_500), PeerKind::Group);
    let batch = vec![
        inbound(500, 1, 1_000),
        outbound(500, 2, 2_000),
        rich.clone(),
        group,
        outbound(-900, 2, 2_600),
    ];
    let outcome = db
        .accounts
        .ingest_messages(a.id, &batch, t(10_000))
        .await
        .unwrap();

    assert_eq!(outcome.inserted.len(), 5);
    let ids: Vec<MessageId> = outcome.inserted.iter().map(|m| m.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "inserted in batch order"
    );
    let stored_rich = outcome
        .inserted
        .iter()
        .find(|m| m.tg_message_id == Some(3))
        .unwrap();
    assert_eq!(stored_rich.direction, Direction::In);
    assert_eq!(stored_rich.text, rich.text);
    assert_eq!(stored_rich.entities, rich.entities);
    assert_eq!(stored_rich.media, rich.media);
    assert_eq!(stored_rich.reply_to_tg_id, Some(2));
    assert_eq!(stored_rich.sender_id, Some(500));
    assert_eq!(stored_rich.sender_name.as_deref(), Some("Sender of 3"));
    assert_eq!(stored_rich.sent_at, t(3_000));
    assert_eq!(stored_rich.edited_at, None);
    assert!(!stored_rich.deleted);
    let plain = outcome
        .inserted
        .iter()
        .find(|m| m.tg_message_id == Some(2))
        .unwrap();
    assert_eq!(plain.direction, Direction::Out);
    assert_eq!(plain.media, None);
    assert!(plain.entities.is_empty());

    assert_eq!(outcome.chats.len(), 2);
    let bob = outcome.chats.iter().find(|c| c.peer_id == 500).unwrap();
    assert_eq!(bob.workspace_id, acme);
    assert_eq!(bob.account_id, Some(a.id));
    assert_eq!(bob.peer_kind, PeerKind::User);
    assert_eq!(bob.title, "Bob");
    assert_eq!(bob.username.as_deref(), Some("bob"));
    assert_eq!(bob.status, ChatStatus::Open);
    assert_eq!(bob.unread_count, 2, "only inbound messages are unread");
    assert_eq!(bob.last_message_at, Some(t(3_000)));
    assert_eq!(bob.created_at, t(10_000));
    let grp = outcome.chats.iter().find(|c| c.peer_id == -900).unwrap();
    assert_eq!(grp.peer_kind, PeerKind::Group);
    assert_eq!(grp.unread_count, 1);
    assert_eq!(grp.last_message_at, Some(t(2_600)));
    let chat_of: Vec<ChatId> = outcome.inserted.iter().map(|m| m.chat_id).collect();
    assert_eq!(chat_of, vec![bob.id, bob.id, bob.id, grp.id, grp.id]);

    // Newest activity first.
    let chats = db.accounts.list_account_chats(acme, a.id).await.unwrap();
    assert_eq!(chats, vec![bob.clone(), grp.clone()]);
    assert_eq!(tg_ids(&db, acme, bob.id).await, vec![3, 2, 1]);
    assert_eq!(tg_ids(&db, acme, grp.id).await, vec![2, 1]);
    let listed = db
        .accounts
        .list_chat_messages(acme, bob.id, None, 10)
        .await
        .unwrap();
    assert_eq!(&listed[0], stored_rich);

    // A later batch to a known chat updates it; an older message does not move last_message_at.
    let outcome = db
        .accounts
        .ingest_messages(
            a.id,
            &[inbound(-900, 3, 2_550), inbound(-900, 4, 2_700)],
            t(11_000),
        )
        .await
        .unwrap();
    assert_eq!(outcome.inserted.len(), 2);
    assert_eq!(outcome.chats.len(), 1);
    assert_eq!(outcome.chats[0].id, grp.id);
    assert_eq!(outcome.chats[0].unread_count, 3);
    assert_eq!(outcome.chats[0].last_message_at, Some(t(2_700)));
    assert_eq!(outcome.chats[0].created_at, t(10_000));
    let chats = db.accounts.list_account_chats(acme, a.id).await.unwrap();
    assert_eq!(
        chats.iter().map(|c| c.peer_id).collect::<Vec<_>>(),
        vec![500, -900]
    );
    let outcome = db
        .accounts
        .ingest_messages(a.id, &[inbound(-900, 5, 4_000)], t(12_000))
        .await
        .unwrap();
    assert_eq!(outcome.chats[0].last_message_at, Some(t(4_000)));
    let chats = db.accounts.list_account_chats(acme, a.id).await.unwrap();
    assert_eq!(
        chats.iter().map(|c| c.peer_id).collect::<Vec<_>>(),
        vec![-900, 500]
    );

    // An empty batch changes nothing.
    assert_eq!(
        db.accounts
            .ingest_messages(a.id, &[], t(13_000))
            .await
            .unwrap(),
        Default::default()
    );
}

async fn ingest_is_idempotent(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let batch = vec![
        inbound(7, 1, 100),
        inbound(7, 2, 200),
        outbound(7, 3, 300),
        inbound(8, 1, 150),
    ];
    let first = db
        .accounts
        .ingest_messages(a.id, &batch, t(1_000))
        .await
        .unwrap();
    assert_eq!(first.inserted.len(), 4);
    assert_eq!(first.chats.len(), 2);

    // The same batch again: nothing new, no chat changed, nothing counted twice.
    let second = db
        .accounts
        .ingest_messages(a.id, &batch, t(2_000))
        .await
        .unwrap();
    assert!(second.inserted.is_empty(), "{:?}", second.inserted);
    assert!(second.chats.is_empty(), "{:?}", second.chats);
    let seven = chat(&db, acme, a.id, 7).await;
    assert_eq!(seven.unread_count, 2);
    assert_eq!(seven.last_message_at, Some(t(300)));
    assert_eq!(tg_ids(&db, acme, seven.id).await, vec![3, 2, 1]);
    assert_eq!(chat(&db, acme, a.id, 8).await.unread_count, 1);

    // Old and new mixed, and a message repeated inside one batch: only the new one counts.
    let mixed = vec![
        inbound(7, 2, 200),
        inbound(7, 4, 400),
        inbound(7, 4, 400),
        inbound(8, 1, 150),
    ];
    let third = db
        .accounts
        .ingest_messages(a.id, &mixed, t(3_000))
        .await
        .unwrap();
    assert_eq!(third.inserted.len(), 1);
    assert_eq!(third.inserted[0].tg_message_id, Some(4));
    assert_eq!(third.chats.len(), 1);
    assert_eq!(third.chats[0].id, seven.id);
    assert_eq!(third.chats[0].unread_count, 3);
    assert_eq!(chat(&db, acme, a.id, 8).await.unread_count, 1);

    // The same Telegram id in another chat, or of another account, is another message.
    let b = account(&db, acme, 2).await;
    let other_chat = db
        .accounts
        .ingest_messages(a.id, &[inbound(9, 1, 500)], t(4_000))
        .await
        .unwrap();
    assert_eq!(other_chat.inserted.len(), 1);
    let other_account = db
        .accounts
        .ingest_messages(b.id, &batch, t(4_000))
        .await
        .unwrap();
    assert_eq!(other_account.inserted.len(), 4);
    assert_eq!(chat(&db, acme, a.id, 7).await.unread_count, 3);
    assert_eq!(chat(&db, acme, b.id, 7).await.unread_count, 2);
}

async fn ingest_refreshes_chat_names(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let mut m = inbound(7, 1, 100);
    m.chat_title = "Old".to_string();
    m.chat_username = Some("old".to_string());
    let created = db
        .accounts
        .ingest_messages(a.id, &[m.clone()], t(1_000))
        .await
        .unwrap();
    let id = created.chats[0].id;

    // A renamed peer: the chat follows, even when the batch brings no new message.
    m.chat_title = "New".to_string();
    m.chat_username = None;
    let renamed = db
        .accounts
        .ingest_messages(a.id, &[m.clone()], t(2_000))
        .await
        .unwrap();
    assert!(renamed.inserted.is_empty());
    assert_eq!(renamed.chats.len(), 1);
    assert_eq!(renamed.chats[0].id, id);
    assert_eq!(renamed.chats[0].title, "New");
    assert_eq!(renamed.chats[0].username, None);
    assert_eq!(renamed.chats[0].unread_count, 1);

    // The newest message of the batch names the chat; an empty title never erases one.
    let mut older = inbound(7, 2, 200);
    older.chat_title = "Newer".to_string();
    let mut newest = inbound(7, 3, 300);
    newest.chat_title = String::new();
    let out = db
        .accounts
        .ingest_messages(a.id, &[older, newest], t(3_000))
        .await
        .unwrap();
    assert_eq!(out.chats[0].title, "Newer");
    assert_eq!(chat(&db, acme, a.id, 7).await.title, "Newer");

    // A batch that does not name the peer (Telegram's echo of a reply) keeps the username too.
    let mut named = inbound(7, 4, 400);
    named.chat_title = "Newer".to_string();
    named.chat_username = Some("newer".to_string());
    db.accounts
        .ingest_messages(a.id, &[named], t(4_000))
        .await
        .unwrap();
    let mut echo = inbound(7, 5, 500);
    echo.chat_title = String::new();
    echo.chat_username = None;
    db.accounts
        .ingest_messages(a.id, &[echo], t(5_000))
        .await
        .unwrap();
    let kept = chat(&db, acme, a.id, 7).await;
    assert_eq!(
        (kept.title.as_str(), kept.username.as_deref()),
        ("Newer", Some("newer"))
    );
}

async fn inbound_reopens_a_resolved_chat_but_outbound_does_not(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let first = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 1, 100), inbound(8, 1, 100)], t(1_000))
        .await
        .unwrap();
    // Resolving and reading chats is the inbox's business (a later port); set it directly.
    db.execute("UPDATE chats SET status = 'resolved', unread_count = 0")
        .await;

    let out = db
        .accounts
        .ingest_messages(a.id, &[outbound(7, 2, 200)], t(2_000))
        .await
        .unwrap();
    assert_eq!(out.chats.len(), 1);
    assert_eq!(out.chats[0].status, ChatStatus::Resolved);
    assert_eq!(out.chats[0].unread_count, 0);
    assert_eq!(out.chats[0].last_message_at, Some(t(200)));

    let back = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 3, 300)], t(3_000))
        .await
        .unwrap();
    assert_eq!(back.chats[0].status, ChatStatus::Open);
    assert_eq!(back.chats[0].unread_count, 1);
    // A duplicate inbound message does not reopen a chat resolved since.
    db.execute("UPDATE chats SET status = 'resolved', unread_count = 0")
        .await;
    let again = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 3, 300)], t(4_000))
        .await
        .unwrap();
    assert!(again.chats.is_empty());
    assert_eq!(chat(&db, acme, a.id, 7).await.status, ChatStatus::Resolved);
    // A pending chat stays pending; the other chat stays resolved.
    db.execute("UPDATE chats SET status = 'pending'").await;
    let pending = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 4, 400)], t(5_000))
        .await
        .unwrap();
    assert_eq!(pending.chats[0].status, ChatStatus::Pending);
    assert_eq!(pending.chats[0].unread_count, 1);
    assert_eq!(first.chats.len(), 2);
}

async fn ingest_of_a_large_batch_inserts_every_message_once(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    // 1,200 messages over 30 chats, more than one statement's worth.
    let batch: Vec<IncomingMessage> = (0..1_200)
        .map(|i| {
            let peer = 1_000 + i % 30;
            if i % 3 == 0 {
                outbound(peer, i, 10_000 + i)
            } else {
                inbound(peer, i, 10_000 + i)
            }
        })
        .collect();
    let outcome = db
        .accounts
        .ingest_messages(a.id, &batch, t(1))
        .await
        .unwrap();
    assert_eq!(outcome.inserted.len(), 1_200);
    assert_eq!(outcome.chats.len(), 30);
    let got: BTreeSet<i64> = outcome
        .inserted
        .iter()
        .map(|m| m.tg_message_id.unwrap())
        .collect();
    assert_eq!(got, (0..1_200).collect());
    assert_eq!(
        outcome
            .chats
            .iter()
            .map(|c| i64::from(c.unread_count))
            .sum::<i64>(),
        800
    );
    assert_eq!(db.scalar("SELECT count(*) FROM messages").await, 1_200);
    let again = db
        .accounts
        .ingest_messages(a.id, &batch, t(2))
        .await
        .unwrap();
    assert!(again.inserted.is_empty() && again.chats.is_empty());
    assert_eq!(db.scalar("SELECT count(*) FROM messages").await, 1_200);
}

async fn ingest_for_an_unknown_account_stores_nothing(db: Stores) {
    workspace(&db, "Acme").await;
    assert_err!(
        db.accounts
            .ingest_messages(AccountId(i64::MAX), &[inbound(7, 1, 1)], t(1))
            .await,
        StoreError::NotFound
    );
    assert_eq!(db.scalar("SELECT count(*) FROM chats").await, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM messages").await, 0);
}

async fn concurrent_ingests_store_each_message_once(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    // Overlapping batches over the same new chats, written at the same time.
    let batch = |from: i64| -> Vec<IncomingMessage> {
        (from..from + 300)
            .map(|i| inbound(100 + i % 7, i, i))
            .collect()
    };
    let (first, second, third) = (batch(0), batch(150), batch(100));
    let (one, two, three, four) = tokio::join!(
        db.accounts.ingest_messages(a.id, &first, t(1)),
        db.accounts.ingest_messages(a.id, &first, t(1)),
        db.accounts.ingest_messages(a.id, &second, t(1)),
        db.accounts.ingest_messages(a.id, &third, t(1)),
    );
    let mut stored = BTreeSet::new();
    for outcome in [one, two, three, four] {
        for m in outcome.unwrap().inserted {
            assert!(
                stored.insert((m.chat_id, m.tg_message_id.unwrap())),
                "stored twice: {m:?}"
            );
        }
    }
    assert_eq!(stored.len(), 450);
    let chats = db.accounts.list_account_chats(acme, a.id).await.unwrap();
    assert_eq!(chats.len(), 7);
    let unread: i64 = chats.iter().map(|c| i64::from(c.unread_count)).sum();
    assert_eq!(
        unread, 450,
        "every new inbound message counted exactly once"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM messages").await, 450);
}

async fn nul_characters_never_fail_a_write(db: Stores) {
    // PostgreSQL cannot store U+0000; both backends store U+FFFD instead, and lose nothing else.
    let acme = workspace(&db, "Acme").await;
    let mut new = new_account(acme, Some(1), "1");
    new.first_name = "A\0B".to_string();
    new.username = Some("u\0".to_string());
    let a = db.accounts.create_account(&new, t(1)).await.unwrap();
    assert_eq!(a.first_name, "A\u{FFFD}B");
    assert_eq!(a.username.as_deref(), Some("u\u{FFFD}"));
    let profile = AccountProfile {
        telegram_user_id: 1,
        phone: None,
        first_name: "\0".to_string(),
        last_name: Some("L\0".to_string()),
        username: None,
    };
    db.accounts
        .set_account_profile(a.id, &profile, t(2))
        .await
        .unwrap();
    let got = db.accounts.load_account(a.id).await.unwrap();
    assert_eq!(got.first_name, "\u{FFFD}");
    assert_eq!(got.last_name.as_deref(), Some("L\u{FFFD}"));

    let mut odd = inbound(7, 1, 100);
    odd.chat_title = "Bad\0Name".to_string();
    odd.sender_name = Some("S\0".to_string());
    odd.text = "a\0b".to_string();
    odd.entities =
        entities(json!([{"type": "text_link", "offset": 0, "length": 1, "url": "https://x/\0"}]));
    odd.media = media(json!({"kind": "document", "file_name": "f\0.jpg", "title": "\0"}));
    let out = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 2, 50), odd], t(3))
        .await
        .unwrap();
    assert_eq!(out.inserted.len(), 2);
    let m = out
        .inserted
        .iter()
        .find(|m| m.tg_message_id == Some(1))
        .unwrap();
    assert_eq!(m.text, "a\u{FFFD}b");
    assert_eq!(m.sender_name.as_deref(), Some("S\u{FFFD}"));
    assert_eq!(
        m.entities,
        entities(
            json!([{"type": "text_link", "offset": 0, "length": 1, "url": "https://x/\u{FFFD}"}])
        )
    );
    assert_eq!(
        m.media,
        media(json!({"kind": "document", "file_name": "f\u{FFFD}.jpg", "title": "\u{FFFD}"}))
    );
    assert_eq!(out.chats[0].title, "Bad\u{FFFD}Name");
    // A literal backslash-u sequence is text, not a NUL.
    let edited = db
        .accounts
        .apply_message_edit(
            a.id,
            7,
            1,
            "\\u0000 and \0",
            &entities(json!([{"type": "pre", "offset": 0, "length": 1, "language": "\0"}])),
            t(4),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.text, "\\u0000 and \u{FFFD}");
    assert_eq!(edited.entities[0].language.as_deref(), Some("\u{FFFD}"));
    let history = db.accounts.list_message_edits(acme, m.id).await.unwrap();
    assert_eq!(history[0].old_text, "a\u{FFFD}b");
}

async fn media_json_is_replaced_within_the_account_only(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    let mut photo = inbound(7, 1, 100);
    photo.media = media(json!({"kind": "photo", "id": "55", "size": 3}));
    let out = db
        .accounts
        .ingest_messages(a.id, &[photo, inbound(7, 2, 200)], t(1_000))
        .await
        .unwrap();
    let (with_media, other) = (out.inserted[0].clone(), out.inserted[1].clone());

    let downloaded = media(
        json!({"kind": "photo", "id": "55", "size": 3, "file_id": "ab".repeat(32), "mime_type": "image/jpeg"}),
    )
    .unwrap();
    let updated = db
        .accounts
        .set_message_media(a.id, with_media.id, &downloaded)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.id, with_media.id);
    assert_eq!(updated.media.as_ref(), Some(&downloaded));
    assert_eq!(updated.text, with_media.text, "only the media changes");

    // Another account's message, or an unknown one, is left alone.
    assert_eq!(
        db.accounts
            .set_message_media(b.id, with_media.id, &Media::of(MediaKind::Poll))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.accounts
            .set_message_media(a.id, MessageId(i64::MAX), &downloaded)
            .await
            .unwrap(),
        None
    );
    let listed = db
        .accounts
        .list_chat_messages(acme, with_media.chat_id, None, 10)
        .await
        .unwrap();
    let stored = listed.iter().find(|m| m.id == with_media.id).unwrap();
    assert_eq!(stored.media.as_ref(), Some(&downloaded));
    let untouched = listed.iter().find(|m| m.id == other.id).unwrap();
    assert_eq!(untouched.media, None);

    // NUL characters are cleaned like every other write.
    let nul = media(json!({"kind": "document", "file_name": "a\u{0}b.pdf"})).unwrap();
    let cleaned = db
        .accounts
        .set_message_media(a.id, other.id, &nul)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cleaned.media.unwrap().file_name.as_deref(),
        Some("a\u{FFFD}b.pdf")
    );
}

async fn edits_keep_the_history_oldest_first(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    let mut original = inbound(7, 1, 100);
    original.text = "first".to_string();
    let out = db
        .accounts
        .ingest_messages(a.id, &[original], t(1_000))
        .await
        .unwrap();
    let id = out.inserted[0].id;

    let bold = entities(json!([{"type": "bold", "offset": 0, "length": 6}]));
    let edited = db
        .accounts
        .apply_message_edit(a.id, 7, 1, "second", &bold, t(2_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.id, id);
    assert_eq!(edited.text, "second");
    assert_eq!(edited.entities, bold);
    assert_eq!(edited.edited_at, Some(t(2_000)));
    let edited = db
        .accounts
        .apply_message_edit(a.id, 7, 1, "third", &[], t(3_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.text, "third");
    assert!(edited.entities.is_empty());

    let history = db.accounts.list_message_edits(acme, id).await.unwrap();
    let texts: Vec<(&str, Timestamp)> = history
        .iter()
        .map(|e| (e.old_text.as_str(), e.edited_at))
        .collect();
    assert_eq!(texts, vec![("first", t(2_000)), ("second", t(3_000))]);
    assert!(history.iter().all(|e| e.message_id == id));
    let listed = db
        .accounts
        .list_chat_messages(acme, edited.chat_id, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![edited.clone()]);

    // The same edit delivered again adds no history.
    let replay = db
        .accounts
        .apply_message_edit(a.id, 7, 1, "third", &[], t(3_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replay, edited);
    // An older edit arriving late does not undo a newer one.
    let late = db
        .accounts
        .apply_message_edit(a.id, 7, 1, "second", &[], t(2_500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late, edited);
    assert_eq!(
        db.accounts
            .list_message_edits(acme, id)
            .await
            .unwrap()
            .len(),
        2
    );
    // Formatting-only edits update the entities without a history entry.
    let styled = db
        .accounts
        .apply_message_edit(a.id, 7, 1, "third", &bold, t(4_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(styled.entities, bold);
    assert_eq!(
        db.accounts
            .list_message_edits(acme, id)
            .await
            .unwrap()
            .len(),
        2
    );

    // Unknown messages: another id, another peer, another account.
    for (acc, peer, tg) in [(a.id, 7, 2), (a.id, 8, 1), (b.id, 7, 1)] {
        assert_eq!(
            db.accounts
                .apply_message_edit(acc, peer, tg, "x", &[], t(5_000))
                .await
                .unwrap(),
            None
        );
    }
    assert!(
        db.accounts
            .list_message_edits(acme, MessageId(i64::MAX))
            .await
            .unwrap()
            .is_empty()
    );
}

/// An account with a private chat, a basic group, a supergroup and a channel, each holding
/// Telegram ids 1..=3 (channel ids are their own sequence; private ones are per account).
async fn four_chats(db: &Stores, ws: WorkspaceId, acc: AccountId) -> [Chat; 4] {
    let mut batch = Vec::new();
    for (peer, kind) in [
        (7, PeerKind::User),
        (-50, PeerKind::Group),
        (-1_000_000_000_060, PeerKind::Supergroup),
        (-1_000_000_000_070, PeerKind::Channel),
    ] {
        for id in 1..=3 {
            batch.push(of_kind(inbound(peer, id, 100 + id), kind));
        }
    }
    db.accounts
        .ingest_messages(acc, &batch, t(1_000))
        .await
        .unwrap();
    [
        chat(db, ws, acc, 7).await,
        chat(db, ws, acc, -50).await,
        chat(db, ws, acc, -1_000_000_000_060).await,
        chat(db, ws, acc, -1_000_000_000_070).await,
    ]
}

/// `(chat, tg id)` of every deleted message of `chats`.
async fn deleted(db: &Stores, ws: WorkspaceId, chats: &[Chat]) -> BTreeSet<(ChatId, i64)> {
    let mut out = BTreeSet::new();
    for c in chats {
        for m in db
            .accounts
            .list_chat_messages(ws, c.id, None, 100)
            .await
            .unwrap()
        {
            if m.deleted {
                out.insert((c.id, m.tg_message_id.unwrap()));
            }
        }
    }
    out
}

async fn deletions_with_a_peer_touch_only_that_chat(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    let chats = four_chats(&db, acme, a.id).await;
    let other = four_chats(&db, acme, b.id).await;
    let channel = &chats[3];

    let marked = db
        .accounts
        .mark_messages_deleted(a.id, Some(channel.peer_id), &[1, 3, 99])
        .await
        .unwrap();
    assert_eq!(
        marked
            .iter()
            .map(|m| (m.chat_id, m.tg_message_id.unwrap(), m.deleted))
            .collect::<Vec<_>>(),
        vec![(channel.id, 1, true), (channel.id, 3, true)]
    );
    assert_eq!(
        deleted(&db, acme, &chats).await,
        BTreeSet::from([(channel.id, 1), (channel.id, 3)])
    );
    assert!(deleted(&db, acme, &other).await.is_empty());
    // Deleting again marks nothing new; an unknown peer or no ids mark nothing.
    assert!(
        db.accounts
            .mark_messages_deleted(a.id, Some(channel.peer_id), &[1, 3])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.accounts
            .mark_messages_deleted(a.id, Some(12_345), &[1, 2, 3])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.accounts
            .mark_messages_deleted(a.id, Some(channel.peer_id), &[])
            .await
            .unwrap()
            .is_empty()
    );
    // A private chat named explicitly works too.
    let marked = db
        .accounts
        .mark_messages_deleted(a.id, Some(7), &[2])
        .await
        .unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].chat_id, chats[0].id);
}

async fn deletions_without_a_peer_touch_only_private_and_basic_group_chats(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    let b = account(&db, acme, 2).await;
    let chats = four_chats(&db, acme, a.id).await;
    let other = four_chats(&db, acme, b.id).await;
    // A bot chat of `a` is private too.
    let bot = db
        .accounts
        .ingest_messages(a.id, &[of_kind(inbound(4_242, 9, 1), PeerKind::Bot)], t(1))
        .await
        .unwrap()
        .chats[0]
        .clone();

    let marked = db
        .accounts
        .mark_messages_deleted(a.id, None, &[2, 9, 100])
        .await
        .unwrap();
    let got: BTreeSet<(ChatId, i64)> = marked
        .iter()
        .map(|m| (m.chat_id, m.tg_message_id.unwrap()))
        .collect();
    assert_eq!(
        got,
        BTreeSet::from([(chats[0].id, 2), (chats[1].id, 2), (bot.id, 9)])
    );
    assert!(marked.iter().all(|m| m.deleted));
    assert_eq!(
        deleted(&db, acme, &chats).await,
        BTreeSet::from([(chats[0].id, 2), (chats[1].id, 2)])
    );
    // Supergroups, channels and other accounts are untouched.
    assert!(deleted(&db, acme, &other).await.is_empty());
    assert!(
        db.accounts
            .mark_messages_deleted(a.id, None, &[2])
            .await
            .unwrap()
            .is_empty()
    );
    // Deleted messages stay listed, flagged.
    let listed = db
        .accounts
        .list_chat_messages(acme, chats[0].id, None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.tg_message_id.unwrap(), m.deleted))
            .collect::<Vec<_>>(),
        vec![(3, false), (2, true), (1, false)]
    );
}

async fn messages_are_paged_newest_first(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let a = account(&db, acme, 1).await;
    // Delivered out of order, with a gap.
    let batch: Vec<IncomingMessage> = (1..=25)
        .rev()
        .filter(|id| *id != 13)
        .map(|id| inbound(7, id, id * 10))
        .collect();
    db.accounts
        .ingest_messages(a.id, &batch, t(1))
        .await
        .unwrap();
    let c = chat(&db, acme, a.id, 7).await;
    let page = |before: Option<i64>, limit: u32| {
        let db = db.clone();
        async move {
            db.accounts
                .list_chat_messages(acme, c.id, before, limit)
                .await
                .unwrap()
                .iter()
                .map(|m| m.tg_message_id.unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, 5).await, vec![25, 24, 23, 22, 21]);
    assert_eq!(page(Some(21), 5).await, vec![20, 19, 18, 17, 16]);
    assert_eq!(page(Some(16), 5).await, vec![15, 14, 12, 11, 10]);
    assert_eq!(page(Some(3), 5).await, vec![2, 1]);
    assert!(page(Some(1), 5).await.is_empty());
    assert!(page(None, 0).await.is_empty());
    assert_eq!(page(None, 100).await.len(), 24);
}

async fn chats_and_messages_are_invisible_to_other_workspaces(db: Stores) {
    let acme = workspace(&db, "Acme").await;
    let other = workspace(&db, "Other").await;
    let a = account(&db, acme, 1).await;
    let out = db
        .accounts
        .ingest_messages(a.id, &[inbound(7, 1, 100)], t(1))
        .await
        .unwrap();
    let msg = &out.inserted[0];
    db.accounts
        .apply_message_edit(a.id, 7, 1, "edited", &[], t(2))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(
        db.accounts
            .list_account_chats(acme, a.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.accounts
            .list_account_chats(other, a.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.accounts
            .list_chat_messages(acme, msg.chat_id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.accounts
            .list_chat_messages(other, msg.chat_id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.accounts
            .list_message_edits(acme, msg.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.accounts
            .list_message_edits(other, msg.id)
            .await
            .unwrap()
            .is_empty()
    );
    // An account of one workspace never lists another workspace's chats through its id.
    let b = account(&db, other, 2).await;
    assert!(
        db.accounts
            .list_account_chats(acme, b.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.accounts
            .list_account_chats(other, b.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every sealed auth key of every account, through the store's sealed-column listing:
/// `(account, dc, sealed)`.
async fn sealed_dc_keys(db: &Stores) -> Vec<(AccountId, i32, Vec<u8>)> {
    let column = sealed_column("account_dc_keys", "auth_key_sealed");
    let values = db.store.sealed_values(column).await.unwrap();
    values
        .into_iter()
        .map(|v| {
            (
                AccountId(v.row[0]),
                i32::try_from(v.row[1]).unwrap(),
                v.bytes,
            )
        })
        .collect()
}

/// Every sealed `api_hash` override of every account, by account.
async fn sealed_api_hashes(db: &Stores) -> Vec<(AccountId, Vec<u8>)> {
    let column = sealed_column("accounts", "api_hash_sealed");
    let values = db.store.sealed_values(column).await.unwrap();
    values
        .into_iter()
        .map(|v| (AccountId(v.row[0]), v.bytes))
        .collect()
}

/// Entities written as JSON.
fn entities(v: serde_json::Value) -> Vec<Entity> {
    serde_json::from_value(v).unwrap()
}

/// Media written as JSON.
fn media(v: serde_json::Value) -> Option<Media> {
    serde_json::from_value(v).unwrap()
}

async fn a_private_chat_is_opened_once_within_the_workspace(db: Stores) {
    let ws = workspace(&db, "A").await;
    let other = workspace(&db, "B").await;
    let a = account(&db, ws, 501).await;
    let maria = PrivatePeer {
        peer_id: 777,
        kind: PeerKind::User,
        title: "Мария".into(),
        username: Some("maria".into()),
    };
    let (chat, created) = db
        .accounts
        .open_private_chat(ws, a.id, &maria, t(50))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (
            chat.peer_id,
            chat.peer_kind,
            chat.title.as_str(),
            chat.account_id
        ),
        (777, PeerKind::User, "Мария", Some(a.id))
    );
    assert_eq!((chat.unread_count, chat.last_message_at), (0, None));
    assert_eq!(chat.status, ChatStatus::Open);
    // Again, and at the same moment from several callers: the same chat.
    let again = futures_util::future::join_all(
        (0..6).map(|_| db.accounts.open_private_chat(ws, a.id, &maria, t(60))),
    )
    .await;
    for r in again {
        let (c, created) = r.unwrap();
        assert_eq!((c.id, created), (chat.id, false));
    }
    // A chat ingestion made earlier is the one opened.
    db.accounts
        .ingest_messages(a.id, &[inbound(888, 1, 70)], t(70))
        .await
        .unwrap();
    let ingested = self::chat(&db, ws, a.id, 888).await;
    let bob = PrivatePeer {
        peer_id: 888,
        kind: PeerKind::User,
        title: "Bob".into(),
        username: None,
    };
    let (c, created) = db
        .accounts
        .open_private_chat(ws, a.id, &bob, t(80))
        .await
        .unwrap();
    assert_eq!((c.id, created), (ingested.id, false));
    // Another workspace cannot open a chat of this account; a group is not a person.
    assert_err!(
        db.accounts
            .open_private_chat(other, a.id, &maria, t(90))
            .await,
        StoreError::NotFound
    );
    let group = PrivatePeer {
        peer_id: -100,
        kind: PeerKind::Group,
        ..maria.clone()
    };
    assert_err!(
        db.accounts.open_private_chat(ws, a.id, &group, t(90)).await,
        StoreError::Conflict(ErrorCode::ValidationFailed)
    );
    assert_eq!(
        db.accounts
            .list_account_chats(ws, a.id)
            .await
            .unwrap()
            .len(),
        2
    );
}
