//! The conformance suite of the `InboxStore` port: bots and their raw updates, the inbox scoped
//! by the viewer, assignment and the outbox, run against SQLite and PostgreSQL alike (each test
//! once per backend, on a fresh database). Every viewer-scoped method is tried on another
//! operator's chat and on another workspace's chat, and must answer `NotFound` and change
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::BTreeSet;
use switchboard_domain::ErrorCode;
use switchboard_domain::team::MemberChange;
use switchboard_domain::{
    AccountId, AssigneeFilter, Bot, BotId, BotMode, BotStatus, Chat, ChatFilter, ChatId,
    ChatStatus, DeliveryStatus, Direction, Entity, IncomingMessage, Media, MediaKind, Message,
    MessageId, NewAccount, NewBot, NewReply, NewUpload, NewUser, OutboxItem, PeerKind,
    RecoveredReply, Role, SEND_UNCERTAIN, StoreError, Timestamp, UserId, Username, Viewer,
    WorkspaceId,
};
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::Stores;

account_backend_tests!(
    bots_are_created_and_read,
    bots_are_invisible_to_other_workspaces,
    bot_setters_update_status_and_supervision,
    deleting_a_bot_removes_its_updates_chats_and_messages,
    bot_updates_are_stored_once_and_track_the_newest_id,
    bot_updates_without_json_or_bot_store_nothing,
    ingesting_bot_messages_marks_their_updates_processed,
    a_failed_bot_ingestion_leaves_its_updates_pending,
    bot_chats_belong_to_the_bot,
    bot_message_edits_keep_the_history_and_never_go_back,
    bot_message_media_is_replaced_within_the_bot_only,
    messages_missing_files_are_found_per_owner,
    admins_see_the_whole_workspace_and_nothing_else,
    operators_see_their_own_and_unassigned_chats_only,
    inbox_filters_by_assignee_status_account_and_bot,
    inbox_is_paged_by_last_activity,
    visible_chats_can_be_read_and_acted_on,
    another_operators_chat_is_not_found_and_unchanged,
    another_workspaces_chat_is_not_found_and_unchanged,
    operators_take_unassigned_chats_and_hand_back_their_own,
    admins_assign_members_only,
    auto_assignment_takes_only_unassigned_chats,
    operator_loads_count_open_assigned_chats,
    a_reply_is_written_with_its_outbox_item,
    an_operator_replying_to_an_unassigned_chat_takes_it,
    claiming_marks_sending_and_counts_attempts,
    only_the_oldest_pending_item_of_a_chat_is_claimed,
    completing_records_the_telegram_id_and_drops_the_echo,
    failing_requeues_or_ends_failed,
    only_failed_replies_are_retried,
    recovery_requeues_account_items_and_fails_bot_items,
    the_sweep_returns_only_items_stuck_past_the_deadline,
    only_uncertain_replies_are_marked_sent,
    next_due_is_the_earliest_queued_item,
    concurrent_claims_never_return_the_same_item,
    removing_a_member_unassigns_their_chats_of_that_workspace,
    an_attachment_must_be_an_upload_of_the_viewers_workspace,
);

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// A workspace with an admin, two operators, a personal account and a bot; and a second
/// workspace with its own admin and bot.
struct World {
    ws: WorkspaceId,
    admin: Viewer,
    op1: Viewer,
    op2: Viewer,
    account: AccountId,
    bot: Bot,
    other_ws: WorkspaceId,
    outsider: Viewer,
    other_bot: Bot,
}

async fn user(db: &Stores, username: &str) -> UserId {
    db.store
        .create_user(
            &NewUser {
                username: Some(Username::parse(username).unwrap()),
                display_name: username.to_string(),
                password_hash: None,
                locale: None,
            },
            t(1),
        )
        .await
        .unwrap()
        .id
}

async fn member(db: &Stores, ws: WorkspaceId, username: &str, role: Role) -> Viewer {
    let id = user(db, username).await;
    db.store
        .add_membership(ws, id, role, 5, t(1))
        .await
        .unwrap();
    Viewer {
        workspace: ws,
        user: id,
        role,
    }
}

fn new_bot(ws: WorkspaceId, telegram_bot_id: i64) -> NewBot {
    NewBot {
        workspace_id: ws,
        telegram_bot_id,
        username: format!("bot{telegram_bot_id}_bot"),
        first_name: format!("Bot {telegram_bot_id}"),
        mode: BotMode::Polling,
        hook_id: format!("hook-{ws:?}-{telegram_bot_id}"),
        token_sealed: vec![1, 0, 2, 255, 0],
        hook_secret_sealed: vec![9, 0, 8],
    }
}

async fn world(db: &Stores) -> World {
    let ws = db.store.create_workspace("Acme", t(1)).await.unwrap().id;
    let other_ws = db.store.create_workspace("Other", t(1)).await.unwrap().id;
    let admin = member(db, ws, "admin", Role::Admin).await;
    let op1 = member(db, ws, "op1", Role::Operator).await;
    let op2 = member(db, ws, "op2", Role::Operator).await;
    let outsider = member(db, other_ws, "outsider", Role::Owner).await;
    let account = db
        .accounts
        .create_account(
            &NewAccount {
                workspace_id: ws,
                phone: Some("79000000001".to_string()),
                telegram_user_id: Some(1),
                first_name: "Support".to_string(),
                last_name: None,
                username: None,
                status: switchboard_domain::AccountStatus::Connected,
                active: true,
                ingest_groups: false,
                api_id: None,
                api_hash_sealed: None,
            },
            t(1),
        )
        .await
        .unwrap()
        .id;
    let bot = db.inbox.create_bot(&new_bot(ws, 100), t(2)).await.unwrap();
    let other_bot = db
        .inbox
        .create_bot(&new_bot(other_ws, 200), t(2))
        .await
        .unwrap();
    World {
        ws,
        admin,
        op1,
        op2,
        account,
        bot,
        other_ws,
        outsider,
        other_bot,
    }
}

fn message(peer_id: i64, tg_id: i64, direction: Direction, sent_at: i64) -> IncomingMessage {
    IncomingMessage {
        peer_id,
        peer_kind: PeerKind::User,
        chat_title: format!("Peer {peer_id}"),
        chat_username: None,
        tg_message_id: tg_id,
        direction,
        sender_id: Some(peer_id),
        sender_name: Some(format!("Peer {peer_id}")),
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

/// The chat of the account with `peer_id`, after one inbound message at `at`.
async fn account_chat(db: &Stores, w: &World, peer_id: i64, at: i64) -> Chat {
    let out = db
        .accounts
        .ingest_messages(w.account, &[inbound(peer_id, at, at)], t(at))
        .await
        .unwrap();
    out.chats
        .into_iter()
        .find(|c| c.peer_id == peer_id)
        .unwrap()
}

/// The chat of `bot` with `peer_id`, after one inbound message at `at`.
async fn bot_chat(db: &Stores, bot: BotId, peer_id: i64, at: i64) -> Chat {
    let out = db
        .inbox
        .ingest_bot_messages(bot, &[inbound(peer_id, at, at)], &[], t(at))
        .await
        .unwrap();
    out.chats
        .into_iter()
        .find(|c| c.peer_id == peer_id)
        .unwrap()
}

/// Assigns as the admin of the chat's workspace.
async fn assign(db: &Stores, admin: &Viewer, chat: ChatId, to: Option<&Viewer>) -> Chat {
    db.inbox
        .assign_chat(admin, chat, to.map(|v| v.user), t(5))
        .await
        .unwrap()
}

fn filter(limit: u32) -> ChatFilter {
    ChatFilter {
        limit,
        ..ChatFilter::default()
    }
}

async fn inbox_ids(db: &Stores, viewer: &Viewer, filter: &ChatFilter) -> Vec<ChatId> {
    db.inbox
        .list_inbox(viewer, filter)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

fn reply(text: &str, random_id: i64) -> NewReply {
    NewReply {
        text: text.to_string(),
        entities: entities(json!([{"type": "bold", "offset": 0, "length": 1}])),
        media: None,
        reply_to_tg_id: Some(7),
        random_id,
    }
}

/// Enqueues a reply as `viewer` at `at`.
async fn send(db: &Stores, viewer: &Viewer, chat: ChatId, text: &str, at: i64) -> Message {
    db.inbox
        .enqueue_reply(viewer, chat, &reply(text, at * 10), t(at))
        .await
        .unwrap()
        .0
}

async fn claim(db: &Stores, at: i64) -> Vec<OutboxItem> {
    db.inbox.claim_outbox(t(at), 100).await.unwrap()
}

async fn count(db: &Stores, sql: &str) -> i64 {
    db.scalar(sql).await
}

/// The messages of a chat as the admin sees them, newest first.
async fn messages(db: &Stores, admin: &Viewer, chat: ChatId) -> Vec<Message> {
    db.inbox
        .chat_messages(admin, chat, None, 200)
        .await
        .unwrap()
}

// --- bots ---

async fn bots_are_created_and_read(db: Stores) {
    let ws = db.store.create_workspace("Acme", t(1)).await.unwrap().id;
    let mut new = new_bot(ws, 42);
    new.username = "support_bot".to_string();
    new.first_name = "Поддержка".to_string();
    new.mode = BotMode::Webhook;
    new.hook_id = "Zq3-random".to_string();
    let bot = db.inbox.create_bot(&new, t(1_000)).await.unwrap();
    assert!(bot.id.0 > 0);
    assert_eq!(bot.workspace_id, ws);
    assert_eq!(bot.telegram_bot_id, 42);
    assert_eq!(bot.username, "support_bot");
    assert_eq!(bot.first_name, "Поддержка");
    assert_eq!(bot.mode, BotMode::Webhook);
    assert_eq!(bot.status, BotStatus::Connecting);
    assert_eq!(bot.status_detail, None);
    assert!(bot.active);
    assert_eq!(bot.hook_id, "Zq3-random");
    assert_eq!(bot.token_sealed, new.token_sealed);
    assert_eq!(bot.hook_secret_sealed, vec![9, 0, 8]);
    assert_eq!(bot.last_update_id, None);
    assert_eq!(bot.created_at, t(1_000));

    assert_eq!(db.inbox.get_bot(ws, bot.id).await.unwrap(), bot);
    assert_eq!(db.inbox.load_bot(bot.id).await.unwrap(), bot);
    assert_eq!(
        db.inbox.find_bot_by_hook("Zq3-random").await.unwrap(),
        Some(bot.clone())
    );
    assert_eq!(db.inbox.find_bot_by_hook("zq3-random").await.unwrap(), None);

    // The same bot twice in a workspace is a conflict, and nothing is written.
    let mut again = new_bot(ws, 42);
    again.hook_id = "another".to_string();
    assert_err!(
        db.inbox.create_bot(&again, t(2_000)).await,
        StoreError::Conflict(ErrorCode::BotExists)
    );
    assert_eq!(db.inbox.list_bots(ws).await.unwrap(), vec![bot.clone()]);

    let second = db.inbox.create_bot(&new_bot(ws, 43), t(3)).await.unwrap();
    assert_eq!(
        db.inbox.list_bots(ws).await.unwrap(),
        vec![bot.clone(), second.clone()]
    );
    assert_eq!(
        db.inbox.list_active_bots().await.unwrap(),
        vec![bot, second]
    );
    assert_err!(
        db.inbox.load_bot(BotId(999_999)).await,
        StoreError::NotFound
    );
}

async fn bots_are_invisible_to_other_workspaces(db: Stores) {
    let w = world(&db).await;
    assert_err!(
        db.inbox.get_bot(w.other_ws, w.bot.id).await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.get_bot(w.ws, w.other_bot.id).await,
        StoreError::NotFound
    );
    assert_eq!(db.inbox.list_bots(w.ws).await.unwrap(), vec![w.bot.clone()]);
    assert_eq!(
        db.inbox.list_bots(w.other_ws).await.unwrap(),
        vec![w.other_bot.clone()]
    );
    // Another workspace may connect the same Telegram bot.
    db.inbox
        .create_bot(&new_bot(w.other_ws, 100), t(3))
        .await
        .unwrap();
    // Deleting across workspaces deletes nothing.
    assert_err!(
        db.inbox.delete_bot(w.other_ws, w.bot.id).await,
        StoreError::NotFound
    );
    assert_eq!(db.inbox.get_bot(w.ws, w.bot.id).await.unwrap(), w.bot);
}

async fn bot_setters_update_status_and_supervision(db: Stores) {
    let w = world(&db).await;
    db.inbox
        .set_bot_status(w.bot.id, BotStatus::Unauthorized, Some("401"), t(10))
        .await
        .unwrap();
    let bot = db.inbox.load_bot(w.bot.id).await.unwrap();
    assert_eq!(bot.status, BotStatus::Unauthorized);
    assert_eq!(bot.status_detail.as_deref(), Some("401"));
    db.inbox
        .set_bot_status(w.bot.id, BotStatus::Connected, None, t(11))
        .await
        .unwrap();
    let bot = db.inbox.load_bot(w.bot.id).await.unwrap();
    assert_eq!(bot.status, BotStatus::Connected);
    assert_eq!(bot.status_detail, None);

    db.inbox
        .set_bot_active(w.bot.id, false, t(12))
        .await
        .unwrap();
    assert!(!db.inbox.load_bot(w.bot.id).await.unwrap().active);
    assert_eq!(
        db.inbox.list_active_bots().await.unwrap(),
        vec![w.other_bot.clone()]
    );
    db.inbox
        .set_bot_active(w.bot.id, true, t(13))
        .await
        .unwrap();
    assert_eq!(db.inbox.list_active_bots().await.unwrap().len(), 2);

    let missing = BotId(999_999);
    assert_err!(
        db.inbox
            .set_bot_status(missing, BotStatus::Stopped, None, t(1))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.set_bot_active(missing, false, t(1)).await,
        StoreError::NotFound
    );
}

async fn deleting_a_bot_removes_its_updates_chats_and_messages(db: Stores) {
    let w = world(&db).await;
    db.inbox
        .store_bot_updates(w.bot.id, &[(1, "{}".to_string())], t(1))
        .await
        .unwrap();
    let chat = bot_chat(&db, w.bot.id, 5, 10).await;
    send(&db, &w.admin, chat.id, "hi", 11).await;
    let kept = bot_chat(&db, w.other_bot.id, 5, 10).await;

    db.inbox.delete_bot(w.ws, w.bot.id).await.unwrap();
    assert_err!(db.inbox.load_bot(w.bot.id).await, StoreError::NotFound);
    assert_err!(
        db.inbox.get_chat(&w.admin, chat.id).await,
        StoreError::NotFound
    );
    let id = w.bot.id.0;
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM bot_updates WHERE bot_id = {id}")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM chats WHERE bot_id = {id}")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM messages WHERE chat_id = {}",
                chat.id.0
            )
        )
        .await,
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 0);
    // The other workspace's bot keeps its chat.
    assert_eq!(
        db.inbox.get_chat(&w.outsider, kept.id).await.unwrap().id,
        kept.id
    );
    assert_err!(
        db.inbox.delete_bot(w.ws, w.bot.id).await,
        StoreError::NotFound
    );
}

fn payloads(updates: &[(i64, String)]) -> Vec<(i64, serde_json::Value)> {
    updates
        .iter()
        .map(|(id, p)| (*id, serde_json::from_str(p).unwrap()))
        .collect()
}

async fn bot_updates_are_stored_once_and_track_the_newest_id(db: Stores) {
    let w = world(&db).await;
    let bot = w.bot.id;
    let update = |id: i64| {
        (
            id,
            json!({"update_id": id, "message": {"text": "hi"}}).to_string(),
        )
    };

    let stored = db
        .inbox
        .store_bot_updates(bot, &[update(11), update(10), update(11)], t(1))
        .await
        .unwrap();
    assert_eq!(stored, 2, "a repeat inside the batch is dropped");
    assert_eq!(
        db.inbox.load_bot(bot).await.unwrap().last_update_id,
        Some(11)
    );

    // Repeats of stored ids are dropped; an older id never lowers the newest.
    let stored = db
        .inbox
        .store_bot_updates(bot, &[update(10), update(12), update(9)], t(2))
        .await
        .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(
        db.inbox.load_bot(bot).await.unwrap().last_update_id,
        Some(12)
    );
    let again = db
        .inbox
        .store_bot_updates(bot, &[update(12)], t(3))
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(db.inbox.store_bot_updates(bot, &[], t(3)).await.unwrap(), 0);

    let pending = db.inbox.pending_bot_updates(bot, 100).await.unwrap();
    assert_eq!(
        payloads(&pending),
        payloads(&[update(9), update(10), update(11), update(12)])
    );
    let first_two = db.inbox.pending_bot_updates(bot, 2).await.unwrap();
    assert_eq!(
        first_two.iter().map(|u| u.0).collect::<Vec<_>>(),
        vec![9, 10]
    );
    // Updates are per bot.
    assert!(
        db.inbox
            .pending_bot_updates(w.other_bot.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.inbox
            .load_bot(w.other_bot.id)
            .await
            .unwrap()
            .last_update_id,
        None
    );

    // A U+0000 from a Telegram user never blocks the webhook.
    let nul = (
        13,
        r#"{"update_id":13,"message":{"text":"a\u0000b"}}"#.to_string(),
    );
    assert_eq!(
        db.inbox.store_bot_updates(bot, &[nul], t(4)).await.unwrap(),
        1
    );
    let pending = db.inbox.pending_bot_updates(bot, 100).await.unwrap();
    let (id, value) = payloads(&pending).pop().unwrap();
    assert_eq!(id, 13);
    assert_eq!(value["message"]["text"], "a\u{FFFD}b");
}

async fn bot_updates_without_json_or_bot_store_nothing(db: Stores) {
    let w = world(&db).await;
    let bad = [(1, "{}".to_string()), (2, "not json".to_string())];
    assert_err!(
        db.inbox.store_bot_updates(w.bot.id, &bad, t(1)).await,
        StoreError::Backend(_)
    );
    assert!(
        db.inbox
            .pending_bot_updates(w.bot.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.inbox.load_bot(w.bot.id).await.unwrap().last_update_id,
        None
    );
    assert_err!(
        db.inbox
            .store_bot_updates(BotId(999_999), &[(1, "{}".to_string())], t(1))
            .await,
        StoreError::NotFound
    );
    assert_eq!(count(&db, "SELECT count(*) FROM bot_updates").await, 0);
}

async fn ingesting_bot_messages_marks_their_updates_processed(db: Stores) {
    let w = world(&db).await;
    let bot = w.bot.id;
    let updates: Vec<(i64, String)> = (1..=3).map(|i| (i, format!("{{\"n\":{i}}}"))).collect();
    db.inbox
        .store_bot_updates(bot, &updates, t(1))
        .await
        .unwrap();

    let out = db
        .inbox
        .ingest_bot_messages(bot, &[inbound(5, 1, 10), inbound(5, 2, 11)], &[1, 2], t(12))
        .await
        .unwrap();
    assert_eq!(out.inserted.len(), 2);
    let pending = db.inbox.pending_bot_updates(bot, 10).await.unwrap();
    assert_eq!(pending.iter().map(|u| u.0).collect::<Vec<_>>(), vec![3]);

    // An update without a message (e.g. a callback query) is marked processed alone.
    let out = db
        .inbox
        .ingest_bot_messages(bot, &[], &[3], t(13))
        .await
        .unwrap();
    assert!(out.inserted.is_empty() && out.chats.is_empty());
    assert!(
        db.inbox
            .pending_bot_updates(bot, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Ids of another bot are untouched.
    db.inbox
        .store_bot_updates(w.other_bot.id, &[(1, "{}".to_string())], t(1))
        .await
        .unwrap();
    db.inbox
        .ingest_bot_messages(bot, &[], &[1], t(14))
        .await
        .unwrap();
    assert_eq!(
        db.inbox
            .pending_bot_updates(w.other_bot.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Makes every insert of a message with the text `poison` fail, on either backend.
async fn poison_messages(db: &Stores) {
    if db.store.backend() == "sqlite" {
        db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.text = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poison'); END",
        )
        .await;
    } else {
        db.execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.text = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; \
             END $$",
        )
        .await;
        db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW \
             EXECUTE FUNCTION poison()",
        )
        .await;
    }
}

async fn a_failed_bot_ingestion_leaves_its_updates_pending(db: Stores) {
    let w = world(&db).await;
    let bot = w.bot.id;
    db.inbox
        .store_bot_updates(bot, &[(1, "{}".to_string()), (2, "{}".to_string())], t(1))
        .await
        .unwrap();
    poison_messages(&db).await;
    let mut bad = inbound(6, 2, 11);
    bad.text = "poison".to_string();
    assert!(
        db.inbox
            .ingest_bot_messages(bot, &[inbound(5, 1, 10), bad], &[1, 2], t(12))
            .await
            .is_err()
    );
    // Nothing of the batch stayed: no chat, no message, both updates still pending.
    assert_eq!(count(&db, "SELECT count(*) FROM chats").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 0);
    assert_eq!(
        db.inbox.pending_bot_updates(bot, 10).await.unwrap().len(),
        2
    );
}

async fn bot_message_edits_keep_the_history_and_never_go_back(db: Stores) {
    let w = world(&db).await;
    let bot = w.bot.id;
    let out = db
        .inbox
        .ingest_bot_messages(bot, &[inbound(5, 1, 10)], &[], t(10))
        .await
        .unwrap();
    let original = out.inserted[0].clone();
    let bold = entities(json!([{"type": "bold", "offset": 0, "length": 6}]));

    let edited = db
        .inbox
        .apply_bot_message_edit(bot, 5, 1, "second", &bold, t(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.id, original.id);
    assert_eq!(edited.text, "second");
    assert_eq!(edited.entities, bold);
    assert_eq!(edited.edited_at, Some(t(20)));

    // An older edit arriving late never undoes the newer one.
    let late = db
        .inbox
        .apply_bot_message_edit(bot, 5, 1, "first edit", &[], t(15))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.text, "second", "the newest text stays");
    let history = db
        .inbox
        .message_history(&w.admin, original.id)
        .await
        .unwrap();
    let old: Vec<&str> = history.iter().map(|e| e.old_text.as_str()).collect();
    assert_eq!(
        old.first().copied(),
        Some("message 1"),
        "history starts with the original"
    );

    // Another bot, another peer or an unknown message id: nothing found, nothing changed.
    for (b, peer, tg) in [(w.other_bot.id, 5, 1), (bot, 6, 1), (bot, 5, 99)] {
        assert_eq!(
            db.inbox
                .apply_bot_message_edit(b, peer, tg, "hijacked", &[], t(30))
                .await
                .unwrap(),
            None
        );
    }
    let now = db.inbox.get_message(&w.admin, original.id).await.unwrap();
    assert_eq!(now.text, "second");
}

async fn bot_message_media_is_replaced_within_the_bot_only(db: Stores) {
    let w = world(&db).await;
    let bot = w.bot.id;
    let mut photo = inbound(5, 1, 10);
    photo.media = media(json!({"kind": "photo", "tg_file_id": "tg-file"}));
    let out = db
        .inbox
        .ingest_bot_messages(bot, &[photo], &[], t(10))
        .await
        .unwrap();
    let m = out.inserted[0].clone();

    let downloaded =
        media(json!({"kind": "photo", "file_id": "ab".repeat(32), "mime": "image/jpeg"})).unwrap();
    let updated = db
        .inbox
        .set_bot_message_media(bot, m.id, &downloaded)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.media.as_ref(), Some(&downloaded));
    assert_eq!(updated.text, m.text, "only the media changes");

    // Another bot's message, or an unknown one, is left alone.
    assert_eq!(
        db.inbox
            .set_bot_message_media(w.other_bot.id, m.id, &Media::of(MediaKind::Poll))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.inbox
            .set_bot_message_media(bot, MessageId(m.id.0 + 1_000), &Media::of(MediaKind::Poll))
            .await
            .unwrap(),
        None
    );
    let now = db.inbox.get_message(&w.admin, m.id).await.unwrap();
    assert_eq!(now.media, Some(downloaded));
}

async fn messages_missing_files_are_found_per_owner(db: Stores) {
    let w = world(&db).await;
    let with_media = |tg_id: i64, at: i64, json: serde_json::Value| {
        let mut m = inbound(7, tg_id, at);
        m.media = media(json);
        m
    };
    let tg_ids = |found: Vec<Message>| -> Vec<i64> {
        found.iter().map(|m| m.tg_message_id.unwrap()).collect()
    };
    // The account's: Telegram media ids, some downloaded, too large, deleted or without media.
    let batch = [
        with_media(1, 10, json!({"kind": "photo", "id": "11"})),
        with_media(
            2,
            11,
            json!({"kind": "document", "id": "12", "file_id": "ab".repeat(32)}),
        ),
        with_media(
            3,
            12,
            json!({"kind": "document", "id": "13", "too_large": true}),
        ),
        with_media(4, 13, json!({"kind": "geo"})),
        inbound(7, 5, 14),
        with_media(6, 15, json!({"kind": "document", "id": "16"})),
        with_media(7, 16, json!({"kind": "document", "id": "17"})),
    ];
    db.accounts
        .ingest_messages(w.account, &batch, t(100))
        .await
        .unwrap();
    db.accounts
        .mark_messages_deleted(w.account, None, &[7])
        .await
        .unwrap();
    // Stored later: left to the downloads queued at ingestion.
    db.accounts
        .ingest_messages(w.account, &[with_media(8, 17, json!({"id": "18"}))], t(300))
        .await
        .unwrap();
    // The bot's: Bot API file ids.
    db.inbox
        .ingest_bot_messages(
            w.bot.id,
            &[
                with_media(1, 10, json!({"kind": "photo", "tg_file_id": "AgAD"})),
                with_media(
                    2,
                    11,
                    json!({"kind": "photo", "tg_file_id": "AgAE", "file_id": "cd".repeat(32)}),
                ),
            ],
            &[],
            t(100),
        )
        .await
        .unwrap();

    let account = switchboard_domain::ChatOwner::Account(w.account);
    let found = db
        .inbox
        .messages_missing_files(account, t(200), None, 10)
        .await
        .unwrap();
    assert_eq!(tg_ids(found.clone()), vec![1, 6]);
    assert_eq!(found[0].media.as_ref().unwrap().id.as_deref(), Some("11"));
    // Paged by message id.
    let first = db
        .inbox
        .messages_missing_files(account, t(200), None, 1)
        .await
        .unwrap();
    let rest = db
        .inbox
        .messages_missing_files(account, t(200), Some(first[0].id), 10)
        .await
        .unwrap();
    assert_eq!((tg_ids(first), tg_ids(rest)), (vec![1], vec![6]));
    assert_eq!(
        tg_ids(
            db.inbox
                .messages_missing_files(account, t(400), None, 10)
                .await
                .unwrap()
        ),
        vec![1, 6, 8]
    );
    let bot = switchboard_domain::ChatOwner::Bot(w.bot.id);
    let found = db
        .inbox
        .messages_missing_files(bot, t(200), None, 10)
        .await
        .unwrap();
    assert_eq!(tg_ids(found.clone()), vec![1]);
    assert_eq!(
        found[0].media.as_ref().unwrap().tg_file_id.as_deref(),
        Some("AgAD")
    );
    let other = switchboard_domain::ChatOwner::Bot(w.other_bot.id);
    assert!(
        db.inbox
            .messages_missing_files(other, t(200), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bot_chats_belong_to_the_bot(db: Stores) {
    let w = world(&db).await;
    let batch = [
        inbound(5, 1, 10),
        inbound(5, 2, 11),
        message(5, 3, Direction::Out, 12),
        inbound(6, 1, 13),
    ];
    let out = db
        .inbox
        .ingest_bot_messages(w.bot.id, &batch, &[], t(20))
        .await
        .unwrap();
    assert_eq!(out.inserted.len(), 4);
    assert_eq!(out.chats.len(), 2);
    for chat in &out.chats {
        assert_eq!(chat.bot_id, Some(w.bot.id));
        assert_eq!(chat.account_id, None);
        assert_eq!(chat.assignee_id, None);
        assert_eq!(chat.workspace_id, w.ws);
        assert_eq!(chat.status, ChatStatus::Open);
    }
    let five = out.chats.iter().find(|c| c.peer_id == 5).unwrap();
    assert_eq!(five.unread_count, 2);
    assert_eq!(five.last_message_at, Some(t(12)));
    for m in &out.inserted {
        assert_eq!(m.status, DeliveryStatus::Received);
        assert_eq!(m.error, None);
        assert_eq!(m.author_id, None);
        assert!(m.tg_message_id.is_some());
    }

    // Idempotent: the same batch again stores nothing.
    let again = db
        .inbox
        .ingest_bot_messages(w.bot.id, &batch, &[], t(21))
        .await
        .unwrap();
    assert!(again.inserted.is_empty());

    // The same peer of an account, or of another bot, is another chat.
    let of_account = account_chat(&db, &w, 5, 30).await;
    assert_ne!(of_account.id, five.id);
    assert_eq!(of_account.account_id, Some(w.account));
    assert_eq!(of_account.bot_id, None);
    let second_bot = db
        .inbox
        .create_bot(&new_bot(w.ws, 101), t(1))
        .await
        .unwrap();
    let of_second = bot_chat(&db, second_bot.id, 5, 31).await;
    assert_ne!(of_second.id, five.id);
    assert_eq!(of_second.bot_id, Some(second_bot.id));

    // A new inbound message reopens a resolved bot chat.
    db.inbox
        .set_chat_status(&w.admin, five.id, ChatStatus::Resolved, t(40))
        .await
        .unwrap();
    let out = db
        .inbox
        .ingest_bot_messages(w.bot.id, &[inbound(5, 9, 50)], &[], t(50))
        .await
        .unwrap();
    assert_eq!(out.chats[0].status, ChatStatus::Open);
    assert_eq!(out.chats[0].unread_count, 3);

    // Ingestion for an unknown bot stores nothing.
    assert_err!(
        db.inbox
            .ingest_bot_messages(BotId(999_999), &[inbound(7, 1, 1)], &[], t(1))
            .await,
        StoreError::NotFound
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM chats WHERE peer_id = 7").await,
        0
    );
}

// --- the inbox ---

/// One chat of each kind in the first workspace: unassigned, op1's, op2's, admin's; and one in
/// the other workspace.
struct Chats {
    unassigned: Chat,
    of_op1: Chat,
    of_op2: Chat,
    of_admin: Chat,
    foreign: Chat,
}

async fn chats(db: &Stores, w: &World) -> Chats {
    let unassigned = account_chat(db, w, 11, 100).await;
    let of_op1 = bot_chat(db, w.bot.id, 12, 200).await;
    let of_op2 = account_chat(db, w, 13, 300).await;
    let of_admin = bot_chat(db, w.bot.id, 14, 400).await;
    let foreign = bot_chat(db, w.other_bot.id, 15, 500).await;
    Chats {
        unassigned,
        of_op1: assign(db, &w.admin, of_op1.id, Some(&w.op1)).await,
        of_op2: assign(db, &w.admin, of_op2.id, Some(&w.op2)).await,
        of_admin: assign(db, &w.admin, of_admin.id, Some(&w.admin)).await,
        foreign,
    }
}

async fn admins_see_the_whole_workspace_and_nothing_else(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    // Newest activity first.
    assert_eq!(
        inbox_ids(&db, &w.admin, &filter(50)).await,
        vec![c.of_admin.id, c.of_op2.id, c.of_op1.id, c.unassigned.id]
    );
    assert_eq!(
        inbox_ids(&db, &w.outsider, &filter(50)).await,
        vec![c.foreign.id]
    );
    // An owner is an admin too: a workspace's owner never sees another workspace.
    let owner = member(&db, w.ws, "owner", Role::Owner).await;
    assert_eq!(inbox_ids(&db, &owner, &filter(50)).await.len(), 4);
    for chat in [&c.unassigned, &c.of_op1, &c.of_op2, &c.of_admin] {
        assert_eq!(db.inbox.get_chat(&w.admin, chat.id).await.unwrap(), *chat);
        assert_err!(
            db.inbox.get_chat(&w.outsider, chat.id).await,
            StoreError::NotFound
        );
    }
    assert_err!(
        db.inbox.get_chat(&w.admin, c.foreign.id).await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.get_chat(&w.admin, ChatId(999_999)).await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.get_message(&w.admin, MessageId(999_999)).await,
        StoreError::NotFound
    );
}

async fn operators_see_their_own_and_unassigned_chats_only(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    assert_eq!(
        inbox_ids(&db, &w.op1, &filter(50)).await,
        vec![c.of_op1.id, c.unassigned.id]
    );
    assert_eq!(
        inbox_ids(&db, &w.op2, &filter(50)).await,
        vec![c.of_op2.id, c.unassigned.id]
    );
    // Every filter stays inside the scope.
    for f in [
        ChatFilter {
            bot: Some(w.bot.id),
            ..filter(50)
        },
        ChatFilter {
            account: Some(w.account),
            ..filter(50)
        },
        ChatFilter {
            status: Some(ChatStatus::Open),
            ..filter(50)
        },
        ChatFilter {
            bot: Some(w.other_bot.id),
            ..filter(50)
        },
    ] {
        let seen = inbox_ids(&db, &w.op1, &f).await;
        for hidden in [c.of_op2.id, c.of_admin.id, c.foreign.id] {
            assert!(!seen.contains(&hidden), "{f:?} shows {hidden:?}");
        }
    }
    assert!(
        inbox_ids(
            &db,
            &w.op1,
            &ChatFilter {
                bot: Some(w.other_bot.id),
                ..filter(50)
            }
        )
        .await
        .is_empty()
    );
    // An operator of the same user id in another workspace sees nothing of this one.
    let elsewhere = Viewer {
        workspace: w.other_ws,
        ..w.op1
    };
    assert_eq!(
        inbox_ids(&db, &elsewhere, &filter(50)).await,
        vec![c.foreign.id]
    );
}

async fn inbox_filters_by_assignee_status_account_and_bot(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    db.inbox
        .set_chat_status(&w.admin, c.of_op2.id, ChatStatus::Pending, t(600))
        .await
        .unwrap();
    db.inbox
        .set_chat_status(&w.admin, c.unassigned.id, ChatStatus::Resolved, t(600))
        .await
        .unwrap();
    let cases: Vec<(&Viewer, ChatFilter, Vec<ChatId>)> = vec![
        (
            &w.admin,
            ChatFilter {
                assignee: AssigneeFilter::Mine,
                ..filter(50)
            },
            vec![c.of_admin.id],
        ),
        (
            &w.op1,
            ChatFilter {
                assignee: AssigneeFilter::Mine,
                ..filter(50)
            },
            vec![c.of_op1.id],
        ),
        (
            &w.admin,
            ChatFilter {
                assignee: AssigneeFilter::Unassigned,
                ..filter(50)
            },
            vec![c.unassigned.id],
        ),
        (
            &w.op2,
            ChatFilter {
                assignee: AssigneeFilter::Unassigned,
                ..filter(50)
            },
            vec![c.unassigned.id],
        ),
        (
            &w.admin,
            ChatFilter {
                status: Some(ChatStatus::Pending),
                ..filter(50)
            },
            vec![c.of_op2.id],
        ),
        (
            &w.admin,
            ChatFilter {
                status: Some(ChatStatus::Open),
                ..filter(50)
            },
            vec![c.of_admin.id, c.of_op1.id],
        ),
        (
            &w.op1,
            ChatFilter {
                status: Some(ChatStatus::Resolved),
                ..filter(50)
            },
            vec![c.unassigned.id],
        ),
        (
            &w.admin,
            ChatFilter {
                account: Some(w.account),
                ..filter(50)
            },
            vec![c.of_op2.id, c.unassigned.id],
        ),
        (
            &w.admin,
            ChatFilter {
                bot: Some(w.bot.id),
                ..filter(50)
            },
            vec![c.of_admin.id, c.of_op1.id],
        ),
        (
            &w.admin,
            ChatFilter {
                bot: Some(w.bot.id),
                assignee: AssigneeFilter::Mine,
                status: Some(ChatStatus::Open),
                ..filter(50)
            },
            vec![c.of_admin.id],
        ),
        (
            &w.admin,
            ChatFilter {
                bot: Some(w.other_bot.id),
                ..filter(50)
            },
            vec![],
        ),
    ];
    for (viewer, f, expected) in cases {
        assert_eq!(inbox_ids(&db, viewer, &f).await, expected, "{f:?}");
    }
}

async fn inbox_is_paged_by_last_activity(db: Stores) {
    let w = world(&db).await;
    // Two chats share a last activity: the higher id comes first.
    let a = account_chat(&db, &w, 1, 100).await;
    let b = account_chat(&db, &w, 2, 300).await;
    let c = account_chat(&db, &w, 3, 300).await;
    let d = bot_chat(&db, w.bot.id, 4, 200).await;
    let e = bot_chat(&db, w.bot.id, 5, 400).await;
    let all = inbox_ids(&db, &w.admin, &filter(50)).await;
    assert_eq!(all, vec![e.id, c.id, b.id, d.id, a.id]);

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = db
            .inbox
            .list_inbox(
                &w.admin,
                &ChatFilter {
                    before,
                    ..filter(2)
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        before = Some((last.last_message_at.unwrap(), last.id));
        pages.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(pages, all);

    // A page is capped at 200, and at least one chat is returned.
    assert_eq!(inbox_ids(&db, &w.admin, &filter(0)).await, vec![e.id]);
    assert_eq!(inbox_ids(&db, &w.admin, &filter(u32::MAX)).await.len(), 5);
}

async fn visible_chats_can_be_read_and_acted_on(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    for (viewer, chat) in [
        (&w.op1, &c.of_op1),
        (&w.op1, &c.unassigned),
        (&w.admin, &c.of_op2),
    ] {
        assert_eq!(
            db.inbox.get_chat(viewer, chat.id).await.unwrap().id,
            chat.id
        );
        let listed = db
            .inbox
            .chat_messages(viewer, chat.id, None, 50)
            .await
            .unwrap();
        assert!(!listed.is_empty());
        assert!(listed.iter().all(|m| m.chat_id == chat.id));
        assert_eq!(
            db.inbox.get_message(viewer, listed[0].id).await.unwrap(),
            listed[0]
        );
        let history = db
            .inbox
            .message_history(viewer, listed[0].id)
            .await
            .unwrap();
        assert!(history.is_empty());
        let (read, newest) = db
            .inbox
            .mark_chat_read(viewer, chat.id, t(9_100))
            .await
            .unwrap();
        assert_eq!(read.unread_count, 0);
        assert!(newest.is_some());
        let pending = db
            .inbox
            .set_chat_status(viewer, chat.id, ChatStatus::Pending, t(9_200))
            .await
            .unwrap();
        assert_eq!(pending.status, ChatStatus::Pending);
    }

    // Paging of a chat's messages: newest first, older than a message id.
    let chat = account_chat(&db, &w, 77, 1).await;
    let batch: Vec<_> = (2..=5).map(|i| inbound(77, i, i)).collect();
    db.accounts
        .ingest_messages(w.account, &batch, t(10))
        .await
        .unwrap();
    let all = messages(&db, &w.admin, chat.id).await;
    let tg: Vec<_> = all.iter().map(|m| m.tg_message_id.unwrap()).collect();
    assert_eq!(tg, vec![5, 4, 3, 2, 1]);
    let older = db
        .inbox
        .chat_messages(&w.op1, chat.id, Some(all[1].id), 2)
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|m| m.tg_message_id).collect::<Vec<_>>(),
        vec![Some(3), Some(2)]
    );

    // Edits are listed oldest first; mark read returns the newest inbound Telegram id.
    db.accounts
        .apply_message_edit(w.account, 77, 5, "second", &[], t(20))
        .await
        .unwrap();
    db.accounts
        .apply_message_edit(w.account, 77, 5, "third", &[], t(30))
        .await
        .unwrap();
    let history = db.inbox.message_history(&w.op1, all[0].id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.old_text.as_str(), e.edited_at))
            .collect::<Vec<_>>(),
        vec![("message 5", t(20)), ("second", t(30))]
    );
    send(&db, &w.admin, chat.id, "an answer", 40).await;
    let (read, newest) = db
        .inbox
        .mark_chat_read(&w.op1, chat.id, t(50))
        .await
        .unwrap();
    assert_eq!(newest, Some(5));
    assert_eq!(read.unread_count, 0);
    // Nothing unread: nothing to tell Telegram, also when two ask at once.
    let again = futures_util::future::join_all(
        [&w.op1, &w.admin].map(|v| db.inbox.mark_chat_read(v, chat.id, t(60))),
    )
    .await;
    for r in again {
        let (read, newest) = r.unwrap();
        assert_eq!((read.unread_count, newest), (0, None));
    }
    // A new message is unread again; of two concurrent calls, one reports it.
    db.accounts
        .ingest_messages(w.account, &[inbound(77, 6, 70)], t(70))
        .await
        .unwrap();
    let both = futures_util::future::join_all(
        [&w.op1, &w.admin].map(|v| db.inbox.mark_chat_read(v, chat.id, t(80))),
    )
    .await;
    let mut newest: Vec<Option<i64>> = both.into_iter().map(|r| r.unwrap().1).collect();
    newest.sort();
    assert_eq!(newest, vec![None, Some(6)]);
}

/// Tries every viewer-scoped method of `viewer` on `chat` (whose message `message` has a failed
/// reply) and asserts each is `NotFound` and changed nothing the chat's admin can see.
async fn assert_out_of_reach(db: &Stores, viewer: &Viewer, admin: &Viewer, chat: ChatId) {
    let before = db.inbox.get_chat(admin, chat).await.unwrap();
    let before_messages = messages(db, admin, chat).await;
    let outbox = count(db, "SELECT count(*) FROM outbox").await;
    let failed = before_messages
        .iter()
        .find(|m| m.status == DeliveryStatus::Failed)
        .expect("the chat has a failed reply")
        .id;
    let inbound_id = before_messages
        .iter()
        .find(|m| m.direction == Direction::In)
        .unwrap()
        .id;

    assert_err!(db.inbox.get_chat(viewer, chat).await, StoreError::NotFound);
    assert_err!(
        db.inbox.chat_messages(viewer, chat, None, 50).await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox
            .chat_messages(viewer, chat, Some(MessageId(i64::MAX)), 50)
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.message_history(viewer, inbound_id).await,
        StoreError::NotFound
    );
    for message in [inbound_id, failed] {
        assert_err!(
            db.inbox.get_message(viewer, message).await,
            StoreError::NotFound
        );
    }
    assert_err!(
        db.inbox.mark_chat_read(viewer, chat, t(10_000)).await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox
            .set_chat_status(viewer, chat, ChatStatus::Resolved, t(10_000))
            .await,
        StoreError::NotFound
    );
    for to in [None, Some(viewer.user), Some(admin.user)] {
        assert_err!(
            db.inbox.assign_chat(viewer, chat, to, t(10_000)).await,
            StoreError::NotFound
        );
    }
    assert_err!(
        db.inbox
            .enqueue_reply(viewer, chat, &reply("sneaky", 1), t(10_000))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.inbox.retry_reply(viewer, failed, t(10_000)).await,
        StoreError::NotFound
    );
    let listed = inbox_ids(db, viewer, &filter(200)).await;
    assert!(!listed.contains(&chat));

    assert_eq!(db.inbox.get_chat(admin, chat).await.unwrap(), before);
    assert_eq!(messages(db, admin, chat).await, before_messages);
    assert_eq!(count(db, "SELECT count(*) FROM outbox").await, outbox);
}

/// Gives `chat` a failed reply (written by `admin`).
async fn failed_reply(db: &Stores, admin: &Viewer, chat: ChatId) {
    send(db, admin, chat, "will fail", 700).await;
    let item = claim(db, 700).await.pop().unwrap();
    db.inbox
        .fail_outbox(item.id, "blocked_by_user", None, t(701))
        .await
        .unwrap();
}

async fn another_operators_chat_is_not_found_and_unchanged(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    failed_reply(&db, &w.admin, c.of_op2.id).await;
    failed_reply(&db, &w.admin, c.of_admin.id).await;
    assert_out_of_reach(&db, &w.op1, &w.admin, c.of_op2.id).await;
    assert_out_of_reach(&db, &w.op1, &w.admin, c.of_admin.id).await;
    // Once op2 hands the chat back, op1 reaches it.
    db.inbox
        .assign_chat(&w.op2, c.of_op2.id, None, t(800))
        .await
        .unwrap();
    assert_eq!(
        db.inbox.get_chat(&w.op1, c.of_op2.id).await.unwrap().id,
        c.of_op2.id
    );
}

async fn another_workspaces_chat_is_not_found_and_unchanged(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    failed_reply(&db, &w.admin, c.unassigned.id).await;
    failed_reply(&db, &w.outsider, c.foreign.id).await;
    // An owner of another workspace, and an operator of this one acting in another.
    assert_out_of_reach(&db, &w.outsider, &w.admin, c.unassigned.id).await;
    assert_out_of_reach(&db, &w.admin, &w.outsider, c.foreign.id).await;
    assert_out_of_reach(&db, &w.op1, &w.outsider, c.foreign.id).await;
    let op1_elsewhere = Viewer {
        workspace: w.other_ws,
        ..w.op1
    };
    assert_out_of_reach(&db, &op1_elsewhere, &w.admin, c.unassigned.id).await;
}

async fn operators_take_unassigned_chats_and_hand_back_their_own(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    // Taking an unassigned chat for someone else is refused, and nothing changes.
    assert_err!(
        db.inbox
            .assign_chat(&w.op1, c.unassigned.id, Some(w.op2.user), t(900))
            .await,
        StoreError::Conflict(ErrorCode::AssignForbidden)
    );
    assert_eq!(
        db.inbox.get_chat(&w.admin, c.unassigned.id).await.unwrap(),
        c.unassigned
    );
    let taken = db
        .inbox
        .assign_chat(&w.op1, c.unassigned.id, Some(w.op1.user), t(900))
        .await
        .unwrap();
    assert_eq!(taken.assignee_id, Some(w.op1.user));
    // Now op2 no longer sees it.
    assert_err!(
        db.inbox.get_chat(&w.op2, c.unassigned.id).await,
        StoreError::NotFound
    );
    // Taking it again is harmless.
    db.inbox
        .assign_chat(&w.op1, c.unassigned.id, Some(w.op1.user), t(901))
        .await
        .unwrap();
    // Handing one's own chat to a colleague is for admins.
    assert_err!(
        db.inbox
            .assign_chat(&w.op1, c.of_op1.id, Some(w.op2.user), t(902))
            .await,
        StoreError::Conflict(ErrorCode::AssignForbidden)
    );
    assert_eq!(
        db.inbox
            .get_chat(&w.admin, c.of_op1.id)
            .await
            .unwrap()
            .assignee_id,
        Some(w.op1.user)
    );
    let back = db
        .inbox
        .assign_chat(&w.op1, c.of_op1.id, None, t(903))
        .await
        .unwrap();
    assert_eq!(back.assignee_id, None);
    assert!(
        inbox_ids(&db, &w.op2, &filter(50))
            .await
            .contains(&c.of_op1.id)
    );
}

async fn admins_assign_members_only(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    let moved = db
        .inbox
        .assign_chat(&w.admin, c.of_op1.id, Some(w.op2.user), t(900))
        .await
        .unwrap();
    assert_eq!(moved.assignee_id, Some(w.op2.user));
    assert_eq!(
        db.inbox.get_chat(&w.admin, c.of_op1.id).await.unwrap(),
        moved
    );
    assert_err!(
        db.inbox.get_chat(&w.op1, c.of_op1.id).await,
        StoreError::NotFound
    );
    let cleared = db
        .inbox
        .assign_chat(&w.admin, c.of_op2.id, None, t(901))
        .await
        .unwrap();
    assert_eq!(cleared.assignee_id, None);

    // A member of another workspace, or no user at all, cannot be assigned.
    for stranger in [w.outsider.user, UserId(999_999)] {
        assert_err!(
            db.inbox
                .assign_chat(&w.admin, c.unassigned.id, Some(stranger), t(902))
                .await,
            StoreError::Conflict(ErrorCode::NotAMember)
        );
    }
    assert_eq!(
        db.inbox.get_chat(&w.admin, c.unassigned.id).await.unwrap(),
        c.unassigned
    );
}

async fn auto_assignment_takes_only_unassigned_chats(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    let got = db
        .inbox
        .auto_assign_chat(c.unassigned.id, w.op2.user, t(900))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.assignee_id, Some(w.op2.user));
    assert_eq!(got.id, c.unassigned.id);
    assert_eq!(
        db.inbox
            .auto_assign_chat(c.unassigned.id, w.op1.user, t(901))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.inbox
            .auto_assign_chat(c.of_op1.id, w.op2.user, t(901))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.inbox
            .get_chat(&w.admin, c.of_op1.id)
            .await
            .unwrap()
            .assignee_id,
        Some(w.op1.user)
    );
    // Never to someone outside the chat's workspace.
    let fresh = account_chat(&db, &w, 99, 1_000).await;
    assert_eq!(
        db.inbox
            .auto_assign_chat(fresh.id, w.outsider.user, t(1_001))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.inbox
            .get_chat(&w.admin, fresh.id)
            .await
            .unwrap()
            .assignee_id,
        None
    );
    assert_eq!(
        db.inbox
            .auto_assign_chat(ChatId(999_999), w.op1.user, t(1))
            .await
            .unwrap(),
        None
    );
}

async fn operator_loads_count_open_assigned_chats(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    let extra = account_chat(&db, &w, 50, 1_000).await;
    assign(&db, &w.admin, extra.id, Some(&w.op1)).await;
    let resolved = account_chat(&db, &w, 51, 1_001).await;
    assign(&db, &w.admin, resolved.id, Some(&w.op1)).await;
    db.inbox
        .set_chat_status(&w.admin, resolved.id, ChatStatus::Resolved, t(1_002))
        .await
        .unwrap();
    db.inbox
        .set_chat_status(&w.admin, c.of_op2.id, ChatStatus::Pending, t(1_002))
        .await
        .unwrap();
    db.store
        .update_membership(
            w.ws,
            w.admin.user,
            w.op2.user,
            MemberChange {
                role: Some(Role::Operator),
                max_chats: Some(9),
            },
        )
        .await
        .unwrap();
    let op3 = member(&db, w.ws, "op3", Role::Operator).await;

    let loads = db.inbox.operator_loads(w.ws).await.unwrap();
    let summary: Vec<_> = loads
        .iter()
        .map(|l| (l.user, l.max_chats, l.open_chats))
        .collect();
    // Admins are not in the rotation; resolved chats do not count; pending ones do.
    assert_eq!(
        summary,
        vec![(w.op1.user, 5, 2), (w.op2.user, 9, 1), (op3.user, 5, 0)]
    );

    // A disabled operator is left out.
    db.execute(&format!(
        "UPDATE users SET disabled = TRUE WHERE id = {}",
        op3.user.0
    ))
    .await;
    let loads = db.inbox.operator_loads(w.ws).await.unwrap();
    assert_eq!(loads.len(), 2);
    assert!(
        db.inbox
            .operator_loads(w.other_ws)
            .await
            .unwrap()
            .is_empty()
    );
}

// --- the outbox ---

async fn a_reply_is_written_with_its_outbox_item(db: Stores) {
    let w = world(&db).await;
    let chat = account_chat(&db, &w, 5, 100).await;
    let mut new = reply("Hello, **world**", 4242);
    new.media = media(json!({"file_name": "a.jpg", "kind": "photo", "mime": "image/jpeg"}));
    let (message, after) = db
        .inbox
        .enqueue_reply(&w.admin, chat.id, &new, t(1_000))
        .await
        .unwrap();
    assert_eq!(message.chat_id, chat.id);
    assert_eq!(message.tg_message_id, None);
    assert_eq!(message.direction, Direction::Out);
    assert_eq!(message.text, "Hello, **world**");
    assert_eq!(message.entities, new.entities);
    assert_eq!(message.media, new.media);
    assert_eq!(message.reply_to_tg_id, Some(7));
    assert_eq!(message.sent_at, t(1_000));
    assert_eq!(message.status, DeliveryStatus::Queued);
    assert_eq!(message.error, None);
    assert_eq!(message.author_id, Some(w.admin.user));
    assert!(!message.deleted);
    assert_eq!(after.last_message_at, Some(t(1_000)));
    // An admin answering does not take the chat.
    assert_eq!(after.assignee_id, None);
    assert_eq!(messages(&db, &w.admin, chat.id).await[0], message);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 1);
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(1_000)));

    let item = claim(&db, 1_000).await.pop().unwrap();
    assert_eq!(item.random_id, 4242);
    assert_eq!(item.chat.id, chat.id);
    assert_eq!(item.message.id, message.id);

    // No entities are stored as none; U+0000 never fails the write.
    let mut bare = reply("a\0b", 1);
    bare.entities = Vec::new();
    let (bare, _) = db
        .inbox
        .enqueue_reply(&w.admin, chat.id, &bare, t(1_001))
        .await
        .unwrap();
    assert!(bare.entities.is_empty());
    assert_eq!(bare.text, "a\u{FFFD}b");
    assert_eq!(bare.media, None);

    // A reply to a chat that does not exist writes nothing.
    assert_err!(
        db.inbox
            .enqueue_reply(&w.admin, ChatId(999_999), &reply("x", 2), t(1_002))
            .await,
        StoreError::NotFound
    );
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM messages WHERE direction = 'out'").await,
        2
    );
}

async fn an_operator_replying_to_an_unassigned_chat_takes_it(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    let (_, chat) = db
        .inbox
        .enqueue_reply(&w.op1, c.unassigned.id, &reply("mine now", 1), t(1_000))
        .await
        .unwrap();
    assert_eq!(chat.assignee_id, Some(w.op1.user));
    assert_err!(
        db.inbox.get_chat(&w.op2, c.unassigned.id).await,
        StoreError::NotFound
    );
    // Replying to one's own chat keeps it.
    let (_, chat) = db
        .inbox
        .enqueue_reply(&w.op1, c.of_op1.id, &reply("still mine", 2), t(1_001))
        .await
        .unwrap();
    assert_eq!(chat.assignee_id, Some(w.op1.user));
    // An admin replying to an operator's chat leaves it with the operator.
    let (_, chat) = db
        .inbox
        .enqueue_reply(&w.admin, c.of_op2.id, &reply("covering", 3), t(1_002))
        .await
        .unwrap();
    assert_eq!(chat.assignee_id, Some(w.op2.user));
}

async fn claiming_marks_sending_and_counts_attempts(db: Stores) {
    let w = world(&db).await;
    let a = account_chat(&db, &w, 5, 100).await;
    let b = bot_chat(&db, w.bot.id, 6, 100).await;
    let first = send(&db, &w.admin, a.id, "one", 1_000).await;
    let second = send(&db, &w.admin, b.id, "two", 1_010).await;

    // Nothing is due before its time.
    assert!(claim(&db, 999).await.is_empty());
    let items = db.inbox.claim_outbox(t(1_010), 1).await.unwrap();
    assert_eq!(items.len(), 1, "the limit is kept");
    let item = &items[0];
    assert_eq!(item.message.id, first.id);
    assert_eq!(item.message.status, DeliveryStatus::Sending);
    assert_eq!(item.chat, db.inbox.get_chat(&w.admin, a.id).await.unwrap());
    assert_eq!(item.attempts, 1);
    assert_eq!(item.random_id, 10_000);
    assert_eq!(
        messages(&db, &w.admin, a.id).await[0].status,
        DeliveryStatus::Sending
    );

    let items = claim(&db, 2_000).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].message.id, second.id);
    assert_eq!(items[0].chat.bot_id, Some(w.bot.id));
    // Claimed items are not claimed again, and none is due any more.
    assert!(claim(&db, 3_000).await.is_empty());
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), None);

    // A retry counts the next attempt.
    db.inbox
        .fail_outbox(item.id, "flood_wait", Some(t(4_000)), t(3_000))
        .await
        .unwrap();
    let again = claim(&db, 4_000).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, item.id);
    assert_eq!(again[0].attempts, 2);
}

async fn only_the_oldest_pending_item_of_a_chat_is_claimed(db: Stores) {
    let w = world(&db).await;
    let a = account_chat(&db, &w, 5, 100).await;
    let b = account_chat(&db, &w, 6, 100).await;
    let a1 = send(&db, &w.admin, a.id, "a1", 1_000).await;
    let a2 = send(&db, &w.admin, a.id, "a2", 1_001).await;
    let b1 = send(&db, &w.admin, b.id, "b1", 1_002).await;

    let items = claim(&db, 2_000).await;
    let got: Vec<_> = items.iter().map(|i| i.message.id).collect();
    assert_eq!(got, vec![a1.id, b1.id]);
    // a2 waits while a1 is being sent, and while a1 waits for a retry.
    assert!(claim(&db, 2_000).await.is_empty());
    let a1_item = items[0].id;
    db.inbox
        .fail_outbox(a1_item, "network", Some(t(5_000)), t(2_001))
        .await
        .unwrap();
    assert!(claim(&db, 3_000).await.is_empty());
    let retried = claim(&db, 5_000).await;
    assert_eq!(
        retried.iter().map(|i| i.message.id).collect::<Vec<_>>(),
        vec![a1.id]
    );
    db.inbox
        .complete_outbox(a1_item, 501, t(5_001), t(5_001))
        .await
        .unwrap();
    let next = claim(&db, 5_002).await;
    assert_eq!(
        next.iter().map(|i| i.message.id).collect::<Vec<_>>(),
        vec![a2.id]
    );
    // A failed item does not block the chat.
    let a3 = send(&db, &w.admin, a.id, "a3", 5_003).await;
    db.inbox
        .fail_outbox(next[0].id, "blocked_by_user", None, t(5_004))
        .await
        .unwrap();
    let after = claim(&db, 5_005).await;
    assert_eq!(
        after.iter().map(|i| i.message.id).collect::<Vec<_>>(),
        vec![a3.id]
    );
}

async fn completing_records_the_telegram_id_and_drops_the_echo(db: Stores) {
    let w = world(&db).await;
    let chat = account_chat(&db, &w, 5, 100).await;
    let sent = send(&db, &w.admin, chat.id, "answer", 1_000).await;
    let item = claim(&db, 1_000).await.pop().unwrap();

    // Ingestion stored Telegram's echo of the message before the sender recorded it.
    let mut echo = message(5, 501, Direction::Out, 1_001);
    echo.text = "answer".to_string();
    let stored = db
        .accounts
        .ingest_messages(w.account, &[echo.clone()], t(1_001))
        .await
        .unwrap();
    let echo_id = stored.inserted[0].id;

    let (done, dropped) = db
        .inbox
        .complete_outbox(item.id, 501, t(1_002), t(1_003))
        .await
        .unwrap();
    assert_eq!(dropped, Some(echo_id));
    assert_eq!(done.id, sent.id);
    assert_eq!(done.tg_message_id, Some(501));
    assert_eq!(done.status, DeliveryStatus::Sent);
    assert_eq!(done.sent_at, t(1_002));
    assert_eq!(done.error, None);
    assert_eq!(done.author_id, Some(w.admin.user));
    let listed = messages(&db, &w.admin, chat.id).await;
    assert_eq!(listed.len(), 2, "the inbound message and the reply, once");
    assert_eq!(listed[0], done);

    // A later echo is dropped by ingestion.
    let late = db
        .accounts
        .ingest_messages(w.account, &[echo], t(1_004))
        .await
        .unwrap();
    assert!(late.inserted.is_empty());

    // Without an echo nothing is dropped; the same Telegram id in another chat is kept.
    let other = account_chat(&db, &w, 6, 100).await;
    let kept = db
        .accounts
        .ingest_messages(w.account, &[message(6, 502, Direction::Out, 1)], t(1))
        .await
        .unwrap()
        .inserted[0]
        .id;
    send(&db, &w.admin, chat.id, "second", 2_000).await;
    let item = claim(&db, 2_000).await.pop().unwrap();
    let (done, dropped) = db
        .inbox
        .complete_outbox(item.id, 502, t(2_001), t(2_001))
        .await
        .unwrap();
    assert_eq!(dropped, None);
    assert_eq!(done.tg_message_id, Some(502));
    assert_eq!(messages(&db, &w.admin, other.id).await[0].id, kept);
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE state = 'sent'").await,
        2
    );
    assert_err!(
        db.inbox
            .complete_outbox(switchboard_domain::OutboxId(999_999), 1, t(1), t(1))
            .await,
        StoreError::NotFound
    );
}

async fn failing_requeues_or_ends_failed(db: Stores) {
    let w = world(&db).await;
    let chat = bot_chat(&db, w.bot.id, 5, 100).await;
    let sent = send(&db, &w.admin, chat.id, "answer", 1_000).await;
    let item = claim(&db, 1_000).await.pop().unwrap();

    let queued = db
        .inbox
        .fail_outbox(item.id, "retry_after", Some(t(1_500)), t(1_001))
        .await
        .unwrap();
    assert_eq!(queued.id, sent.id);
    assert_eq!(queued.status, DeliveryStatus::Queued);
    assert_eq!(queued.error.as_deref(), Some("retry_after"));
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(1_500)));
    assert!(claim(&db, 1_499).await.is_empty());
    let item = claim(&db, 1_500).await.pop().unwrap();
    assert_eq!(item.attempts, 2);

    let failed = db
        .inbox
        .fail_outbox(item.id, "bot_blocked", None, t(1_501))
        .await
        .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("bot_blocked"));
    assert_eq!(messages(&db, &w.admin, chat.id).await[0], failed);
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), None);
    assert!(claim(&db, 1_000_000).await.is_empty());
    assert_err!(
        db.inbox
            .fail_outbox(switchboard_domain::OutboxId(999_999), "x", None, t(1))
            .await,
        StoreError::NotFound
    );
}

async fn only_failed_replies_are_retried(db: Stores) {
    let w = world(&db).await;
    let c = chats(&db, &w).await;
    let queued = send(&db, &w.op1, c.of_op1.id, "queued", 1_000).await;
    assert_err!(
        db.inbox.retry_reply(&w.op1, queued.id, t(1_001)).await,
        StoreError::Conflict(ErrorCode::NotFailed)
    );
    let item = claim(&db, 1_000).await.pop().unwrap();
    assert_err!(
        db.inbox.retry_reply(&w.op1, queued.id, t(1_001)).await,
        StoreError::Conflict(ErrorCode::NotFailed)
    );
    db.inbox
        .fail_outbox(item.id, "chat_write_forbidden", None, t(1_002))
        .await
        .unwrap();
    // An inbound message has no outbox item.
    let inbound_id = messages(&db, &w.admin, c.of_op1.id)
        .await
        .iter()
        .find(|m| m.direction == Direction::In)
        .unwrap()
        .id;
    assert_err!(
        db.inbox.retry_reply(&w.op1, inbound_id, t(1_003)).await,
        StoreError::NotFound
    );
    // Another operator cannot retry it.
    assert_err!(
        db.inbox.retry_reply(&w.op2, queued.id, t(1_003)).await,
        StoreError::NotFound
    );

    let retried = db
        .inbox
        .retry_reply(&w.op1, queued.id, t(2_000))
        .await
        .unwrap();
    assert_eq!(retried.status, DeliveryStatus::Queued);
    assert_eq!(retried.error, None);
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(2_000)));
    let again = claim(&db, 2_000).await.pop().unwrap();
    assert_eq!(again.id, item.id);
    assert_eq!(again.attempts, 1, "a manual retry starts a fresh series");
    // The admin may retry any failed reply of the workspace.
    db.inbox
        .fail_outbox(again.id, "chat_write_forbidden", None, t(2_001))
        .await
        .unwrap();
    db.inbox
        .retry_reply(&w.admin, queued.id, t(2_002))
        .await
        .unwrap();
}

/// How many returned replies were requeued and how many ended uncertain.
fn counts(changed: &[RecoveredReply]) -> (usize, usize) {
    let requeued = changed
        .iter()
        .filter(|r| r.message.status == DeliveryStatus::Queued && r.message.error.is_none())
        .count();
    let uncertain = changed
        .iter()
        .filter(|r| {
            r.message.status == DeliveryStatus::Failed
                && r.message.error.as_deref() == Some(SEND_UNCERTAIN)
        })
        .count();
    assert_eq!(requeued + uncertain, changed.len(), "{changed:?}");
    (requeued, uncertain)
}

async fn recovery_requeues_account_items_and_fails_bot_items(db: Stores) {
    let w = world(&db).await;
    let a = account_chat(&db, &w, 5, 100).await;
    let b = bot_chat(&db, w.bot.id, 6, 100).await;
    let waiting_chat = account_chat(&db, &w, 7, 100).await;
    let of_account = send(&db, &w.admin, a.id, "account", 1_000).await;
    let of_bot = send(&db, &w.admin, b.id, "bot", 1_000).await;
    assert_eq!(claim(&db, 1_000).await.len(), 2);
    let waiting = send(&db, &w.admin, waiting_chat.id, "waiting", 1_500).await;

    let changed = db.inbox.recover_outbox(t(2_000), t(2_000)).await.unwrap();
    assert_eq!(counts(&changed), (1, 1));
    // What changed is returned in its new state, with its workspace, for announcing it.
    let returned: Vec<_> = changed
        .iter()
        .map(|r| {
            (
                r.workspace,
                r.message.id,
                r.message.status,
                r.message.error.clone(),
            )
        })
        .collect();
    let mut expected = vec![
        (w.ws, of_account.id, DeliveryStatus::Queued, None),
        (
            w.ws,
            of_bot.id,
            DeliveryStatus::Failed,
            Some(SEND_UNCERTAIN.to_string()),
        ),
    ];
    expected.sort_by_key(|e| e.1);
    assert_eq!(returned, expected);
    let account_msg = messages(&db, &w.admin, a.id).await[0].clone();
    assert_eq!(account_msg.id, of_account.id);
    assert_eq!(account_msg.status, DeliveryStatus::Queued);
    assert_eq!(account_msg.error, None);
    let bot_msg = messages(&db, &w.admin, b.id).await[0].clone();
    assert_eq!(bot_msg.id, of_bot.id);
    assert_eq!(bot_msg.status, DeliveryStatus::Failed);
    assert_eq!(bot_msg.error.as_deref(), Some("send_uncertain"));
    assert_eq!(
        messages(&db, &w.admin, waiting_chat.id).await[0].status,
        DeliveryStatus::Queued
    );

    // The account item is resent with the same random id; the bot item waits for a person.
    let items = claim(&db, 2_000).await;
    let got: BTreeSet<_> = items.iter().map(|i| i.message.id).collect();
    assert_eq!(got, BTreeSet::from([of_account.id, waiting.id]));
    let resent = items
        .iter()
        .find(|i| i.message.id == of_account.id)
        .unwrap();
    assert_eq!(resent.random_id, 10_000);
    assert_eq!(resent.attempts, 2);
    db.inbox
        .retry_reply(&w.admin, of_bot.id, t(2_001))
        .await
        .unwrap();

    // Nothing left to recover a second time but what was claimed since.
    assert_eq!(
        counts(&db.inbox.recover_outbox(t(3_000), t(3_000)).await.unwrap()),
        (2, 0)
    );
    assert_eq!(
        counts(&db.inbox.recover_outbox(t(3_001), t(3_001)).await.unwrap()),
        (0, 0)
    );
}

async fn the_sweep_returns_only_items_stuck_past_the_deadline(db: Stores) {
    let w = world(&db).await;
    let a = account_chat(&db, &w, 5, 100).await;
    let b = bot_chat(&db, w.bot.id, 6, 100).await;
    let early = account_chat(&db, &w, 7, 100).await;
    send(&db, &w.admin, early.id, "claimed early", 1_000).await;
    assert_eq!(claim(&db, 1_000).await.len(), 1);
    let of_account = send(&db, &w.admin, a.id, "account", 5_000).await;
    let of_bot = send(&db, &w.admin, b.id, "bot", 5_000).await;
    assert_eq!(claim(&db, 5_000).await.len(), 2);

    // Items claimed after the deadline's start are being sent: left alone.
    assert_eq!(
        counts(&db.inbox.recover_outbox(t(999), t(6_000)).await.unwrap()),
        (0, 0)
    );
    // Only the one claimed at 1 000 is stuck at a deadline of 4 999.
    assert_eq!(
        counts(&db.inbox.recover_outbox(t(4_999), t(6_000)).await.unwrap()),
        (1, 0)
    );
    assert_eq!(
        messages(&db, &w.admin, early.id).await[0].status,
        DeliveryStatus::Queued
    );
    assert_eq!(
        messages(&db, &w.admin, a.id).await[0].status,
        DeliveryStatus::Sending
    );
    // Later both others are stuck: the account item is requeued, the bot item is uncertain.
    assert_eq!(
        counts(&db.inbox.recover_outbox(t(5_000), t(9_000)).await.unwrap()),
        (1, 1)
    );
    let account_msg = messages(&db, &w.admin, a.id).await[0].clone();
    assert_eq!(account_msg.id, of_account.id);
    assert_eq!(account_msg.status, DeliveryStatus::Queued);
    let bot_msg = messages(&db, &w.admin, b.id).await[0].clone();
    assert_eq!(bot_msg.id, of_bot.id);
    assert_eq!(bot_msg.status, DeliveryStatus::Failed);
    assert_eq!(bot_msg.error.as_deref(), Some(SEND_UNCERTAIN));
    // The chat is no longer blocked: its next reply is claimable after the requeued one.
    let items = claim(&db, 9_000).await;
    let got: BTreeSet<_> = items.iter().map(|i| i.message.id).collect();
    assert!(got.contains(&of_account.id), "{got:?}");
}

async fn only_uncertain_replies_are_marked_sent(db: Stores) {
    let w = world(&db).await;
    let b = bot_chat(&db, w.bot.id, 5, 100).await;
    assign(&db, &w.admin, b.id, Some(&w.op1)).await;
    let uncertain = send(&db, &w.op1, b.id, "maybe", 1_000).await;
    let item = claim(&db, 1_000).await.pop().unwrap();

    // Sending, or failed for another reason: refused, nothing changed.
    assert_err!(
        db.inbox
            .mark_reply_sent(&w.op1, uncertain.id, t(1_001))
            .await,
        StoreError::Conflict(ErrorCode::NotUncertain)
    );
    db.inbox
        .fail_outbox(item.id, "bot_blocked", None, t(1_002))
        .await
        .unwrap();
    assert_err!(
        db.inbox
            .mark_reply_sent(&w.op1, uncertain.id, t(1_003))
            .await,
        StoreError::Conflict(ErrorCode::NotUncertain)
    );
    db.inbox
        .retry_reply(&w.op1, uncertain.id, t(1_004))
        .await
        .unwrap();
    let item = claim(&db, 1_004).await.pop().unwrap();
    db.inbox
        .fail_outbox(item.id, SEND_UNCERTAIN, None, t(1_005))
        .await
        .unwrap();
    // Another operator cannot see it; an inbound message has no outbox item.
    assert_err!(
        db.inbox
            .mark_reply_sent(&w.op2, uncertain.id, t(1_006))
            .await,
        StoreError::NotFound
    );
    let inbound_id = messages(&db, &w.admin, b.id)
        .await
        .iter()
        .find(|m| m.direction == Direction::In)
        .unwrap()
        .id;
    assert_err!(
        db.inbox.mark_reply_sent(&w.op1, inbound_id, t(1_006)).await,
        StoreError::NotFound
    );

    let marked = db
        .inbox
        .mark_reply_sent(&w.op1, uncertain.id, t(1_007))
        .await
        .unwrap();
    assert_eq!(marked.status, DeliveryStatus::Sent);
    assert_eq!(marked.error, None);
    assert_eq!(marked.tg_message_id, None);
    // Sent for good: neither claimed again, nor retried, nor marked twice.
    assert!(claim(&db, 2_000).await.is_empty());
    assert_err!(
        db.inbox.retry_reply(&w.op1, uncertain.id, t(2_001)).await,
        StoreError::Conflict(ErrorCode::NotFailed)
    );
    assert_err!(
        db.inbox
            .mark_reply_sent(&w.op1, uncertain.id, t(2_002))
            .await,
        StoreError::Conflict(ErrorCode::NotUncertain)
    );
}

async fn next_due_is_the_earliest_queued_item(db: Stores) {
    let w = world(&db).await;
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), None);
    let a = account_chat(&db, &w, 5, 100).await;
    let b = account_chat(&db, &w, 6, 100).await;
    send(&db, &w.admin, a.id, "later", 3_000).await;
    send(&db, &w.admin, b.id, "sooner", 2_000).await;
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(2_000)));
    let items = claim(&db, 2_000).await;
    assert_eq!(items.len(), 1);
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(3_000)));
    db.inbox
        .fail_outbox(items[0].id, "network", Some(t(2_500)), t(2_001))
        .await
        .unwrap();
    assert_eq!(db.inbox.next_outbox_due().await.unwrap(), Some(t(2_500)));
}

async fn concurrent_claims_never_return_the_same_item(db: Stores) {
    const CHATS: i64 = 24;
    const SENDERS: usize = 4;
    let w = world(&db).await;
    let batch: Vec<_> = (1..=CHATS).map(|p| inbound(p, p, 100)).collect();
    let chats = db
        .accounts
        .ingest_messages(w.account, &batch, t(100))
        .await
        .unwrap()
        .chats;
    let mut firsts = BTreeSet::new();
    let mut seconds = BTreeSet::new();
    for chat in &chats {
        firsts.insert(send(&db, &w.admin, chat.id, "first", 1_000).await.id);
    }
    for chat in &chats {
        seconds.insert(send(&db, &w.admin, chat.id, "second", 1_001).await.id);
    }

    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let inbox = db.inbox.clone();
        senders.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let items = inbox.claim_outbox(t(2_000), 3).await.unwrap();
                if items.is_empty() {
                    break got;
                }
                got.extend(items.iter().map(|i| (i.id, i.message.id)));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut claimed = Vec::new();
    for sender in senders {
        claimed.extend(sender.await.unwrap());
    }
    let unique: BTreeSet<_> = claimed.iter().map(|c| c.0).collect();
    assert_eq!(unique.len(), claimed.len(), "an item was claimed twice");
    let messages: BTreeSet<_> = claimed.iter().map(|c| c.1).collect();
    // Every chat's first reply, and none of the second ones while the first is sending.
    assert_eq!(messages, firsts);
    assert!(messages.is_disjoint(&seconds));
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE state = 'sending'").await,
        CHATS
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE state = 'sending' AND attempts = 1"
        )
        .await,
        CHATS
    );
}

// --- workspace boundaries ---

async fn removing_a_member_unassigns_their_chats_of_that_workspace(db: Stores) {
    let w = world(&db).await;
    let open = account_chat(&db, &w, 5, 100).await;
    let resolved = account_chat(&db, &w, 6, 110).await;
    let kept = account_chat(&db, &w, 7, 120).await;
    assign(&db, &w.admin, open.id, Some(&w.op1)).await;
    assign(&db, &w.admin, resolved.id, Some(&w.op1)).await;
    db.inbox
        .set_chat_status(&w.admin, resolved.id, ChatStatus::Resolved, t(6))
        .await
        .unwrap();
    assign(&db, &w.admin, kept.id, Some(&w.op2)).await;
    // op1 also works in the other workspace, on one of its chats.
    db.store
        .add_membership(w.other_ws, w.op1.user, Role::Operator, 5, t(1))
        .await
        .unwrap();
    let elsewhere = bot_chat(&db, w.other_bot.id, 8, 130).await;
    assign(&db, &w.outsider, elsewhere.id, Some(&w.op1)).await;

    let released = db
        .store
        .remove_membership(w.ws, w.admin.user, w.op1.user, t(7_000))
        .await
        .unwrap();
    let ids: Vec<ChatId> = released.iter().map(|c| c.id).collect();
    assert_eq!(ids, [open.id, resolved.id]);
    assert!(released.iter().all(|c| c.assignee_id.is_none()));
    for chat in [open.id, resolved.id] {
        let now = db.inbox.get_chat(&w.admin, chat).await.unwrap();
        assert_eq!(now.assignee_id, None, "back in the queue");
    }
    assert_eq!(
        db.inbox
            .get_chat(&w.admin, kept.id)
            .await
            .unwrap()
            .assignee_id,
        Some(w.op2.user),
        "another operator's chat stays theirs"
    );
    assert_eq!(
        db.inbox
            .get_chat(&w.outsider, elsewhere.id)
            .await
            .unwrap()
            .assignee_id,
        Some(w.op1.user),
        "the other workspace's assignment is untouched"
    );
    assert_err!(
        db.store.get_membership(w.ws, w.op1.user).await,
        StoreError::NotFound
    );
    assert!(
        db.store
            .get_membership(w.other_ws, w.op1.user)
            .await
            .is_ok()
    );
    // A second removal finds nothing.
    assert_err!(
        db.store
            .remove_membership(w.ws, w.admin.user, w.op1.user, t(8_000))
            .await,
        StoreError::NotFound
    );
}

fn upload(ws: WorkspaceId, by: &Viewer, file_id: &str) -> NewUpload {
    NewUpload {
        workspace: ws,
        file_id: file_id.to_string(),
        size: 70,
        mime_type: "image/png".to_string(),
        uploaded_by: by.user,
    }
}

fn with_attachment(file_id: &str, random_id: i64) -> NewReply {
    let mut r = reply("the plan", random_id);
    r.media = media(json!({"kind": "photo", "file_id": file_id, "mime_type": "image/png"}));
    r
}

async fn an_attachment_must_be_an_upload_of_the_viewers_workspace(db: Stores) {
    let w = world(&db).await;
    let ours = "ab".repeat(32);
    let unknown = "cd".repeat(32);
    db.inbox
        .record_upload(&upload(w.ws, &w.op1, &ours), t(10))
        .await
        .unwrap();
    db.inbox
        .record_upload(&upload(w.ws, &w.op1, &ours), t(11))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM uploads").await, 1);

    let chat = account_chat(&db, &w, 5, 100).await;
    let (message, _) = db
        .inbox
        .enqueue_reply(&w.admin, chat.id, &with_attachment(&ours, 1), t(1_000))
        .await
        .unwrap();
    assert_eq!(
        message.media.as_ref().unwrap().file_id.as_deref(),
        Some(ours.as_str())
    );

    // The other workspace knows the id, but the file is not its upload: the same answer as
    // for an id nobody uploaded, and nothing is written.
    let theirs = bot_chat(&db, w.other_bot.id, 9, 200).await;
    let before = count(&db, "SELECT count(*) FROM messages").await;
    for (file, random_id) in [(&ours, 2), (&unknown, 3)] {
        assert_err!(
            db.inbox
                .enqueue_reply(
                    &w.outsider,
                    theirs.id,
                    &with_attachment(file, random_id),
                    t(2_000)
                )
                .await,
            StoreError::Conflict(ErrorCode::FileNotFound)
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, before);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 1);

    // Once the other workspace uploads the same bytes, the file is its own too.
    db.inbox
        .record_upload(&upload(w.other_ws, &w.outsider, &ours), t(12))
        .await
        .unwrap();
    db.inbox
        .enqueue_reply(&w.outsider, theirs.id, &with_attachment(&ours, 4), t(3_000))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM uploads").await, 2);
}

/// Entities written as JSON.
fn entities(v: serde_json::Value) -> Vec<Entity> {
    serde_json::from_value(v).unwrap()
}

/// Media written as JSON.
fn media(v: serde_json::Value) -> Option<Media> {
    serde_json::from_value(v).unwrap()
}
