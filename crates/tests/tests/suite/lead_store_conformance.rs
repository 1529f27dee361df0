//! The conformance suite of the `LeadStore` port: tasks and their sources, the monitor's source
//! bookkeeping, the deduplicated batch insert of leads, the lead list and search, and the lead
//! delivery queue, run against SQLite and PostgreSQL alike (each test once per backend, on a
//! fresh database). Every viewer-scoped method is tried from another workspace and, for the
//! writes, as an operator, and must be refused and change nothing; the deduplication rules are
//! also tried with batches sent at once from several connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use switchboard_domain::ErrorCode;
use switchboard_domain::{
    AccountId, AccountStatus, BotId, BotMode, ChatId, DeliveryMode, DeliveryTarget, Direction,
    Duplicate, IncomingMessage, Lead, LeadAuthor, LeadDeliveryKind, LeadFilter, LeadId,
    LeadOutcome, NewAccount, NewBot, NewLead, NewUser, PeerKind, ReadVia, ResolvedSource, Role,
    SEND_UNCERTAIN, Source, SourceId, SourceKind, SourceRef, SourceState, SourceStatus, StoreError,
    Task, TaskId, TaskSpec, Timestamp, Username, Viewer, WorkspaceId,
};
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::Stores;

account_backend_tests!(
    tasks_are_created_read_updated_paused_and_deleted,
    bad_tasks_are_refused_with_stable_codes_and_write_nothing,
    operators_read_tasks_and_leads_but_cannot_manage_tasks,
    another_workspaces_tasks_and_leads_are_not_found_and_unchanged,
    sources_are_normalised_shared_and_follow_the_reading_account,
    sources_are_resolved_waited_merged_and_left,
    the_same_message_is_one_lead,
    the_same_original_post_through_two_sources_is_one_lead,
    an_album_is_one_lead,
    near_duplicates_are_one_lead_within_72_hours_only,
    an_edit_is_a_lead_only_for_terms_it_adds,
    a_batch_naming_a_foreign_source_writes_nothing,
    batches_sent_at_once_store_each_lead_once,
    instant_leads_are_queued_up_to_the_cap_and_the_rest_wait_for_a_digest,
    digests_take_pending_leads_once_when_due,
    deliveries_are_claimed_completed_failed_and_recovered,
    claims_sent_at_once_never_return_the_same_delivery,
    leads_are_filtered_paged_searched_and_marked_read,
    deleting_a_task_or_its_target_keeps_the_rest_consistent,
);

const HOUR: i64 = 3_600_000;

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// A workspace with an owner, an operator, two accounts, a bot and a chat; and a second
/// workspace with its owner, account, bot and chat.
struct World {
    ws: WorkspaceId,
    owner: Viewer,
    operator: Viewer,
    account: AccountId,
    account2: AccountId,
    bot: BotId,
    chat: ChatId,
    bot_chat: ChatId,
    outsider: Viewer,
    other_account: AccountId,
    other_bot: BotId,
    other_chat: ChatId,
}

async fn member(db: &Stores, ws: WorkspaceId, username: &str, role: Role) -> Viewer {
    let user = db
        .store
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
        .id;
    db.store
        .add_membership(ws, user, role, 5, t(1))
        .await
        .unwrap();
    Viewer {
        workspace: ws,
        user,
        role,
    }
}

async fn account(db: &Stores, ws: WorkspaceId, tg_user: i64) -> AccountId {
    db.accounts
        .create_account(
            &NewAccount {
                workspace_id: ws,
                phone: Some(format!("7900000{tg_user:04}")),
                telegram_user_id: Some(tg_user),
                first_name: format!("Reader {tg_user}"),
                last_name: None,
                username: None,
                status: AccountStatus::Connected,
                active: true,
                ingest_groups: false,
                api_id: None,
                api_hash_sealed: None,
            },
            t(1),
        )
        .await
        .unwrap()
        .id
}

async fn bot(db: &Stores, ws: WorkspaceId, tg_bot: i64) -> BotId {
    db.inbox
        .create_bot(
            &NewBot {
                workspace_id: ws,
                telegram_bot_id: tg_bot,
                username: format!("bot{tg_bot}_bot"),
                first_name: "Bot".to_string(),
                mode: BotMode::Polling,
                hook_id: format!("hook-{tg_bot}"),
                token_sealed: vec![1, 2],
                hook_secret_sealed: vec![3],
            },
            t(1),
        )
        .await
        .unwrap()
        .id
}

fn incoming(peer_id: i64) -> IncomingMessage {
    IncomingMessage {
        peer_id,
        peer_kind: PeerKind::User,
        chat_title: format!("Peer {peer_id}"),
        chat_username: None,
        tg_message_id: 1,
        direction: Direction::In,
        sender_id: Some(peer_id),
        sender_name: None,
        text: "hi".to_string(),
        entities: Vec::new(),
        media: None,
        reply_to_tg_id: None,
        sent_at: t(1),
    }
}

async fn world(db: &Stores) -> World {
    let ws = db.store.create_workspace("Acme", t(1)).await.unwrap().id;
    let other_ws = db.store.create_workspace("Other", t(1)).await.unwrap().id;
    let owner = member(db, ws, "owner", Role::Owner).await;
    let operator = member(db, ws, "operator", Role::Operator).await;
    let outsider = member(db, other_ws, "outsider", Role::Owner).await;
    let account1 = account(db, ws, 1).await;
    let account2 = account(db, ws, 2).await;
    let other_account = account(db, other_ws, 3).await;
    let chat = db
        .accounts
        .ingest_messages(account1, &[incoming(500)], t(1))
        .await
        .unwrap()
        .chats[0]
        .id;
    let other_chat = db
        .accounts
        .ingest_messages(other_account, &[incoming(600)], t(1))
        .await
        .unwrap()
        .chats[0]
        .id;
    let bot_id = bot(db, ws, 100).await;
    let bot_chat = db
        .inbox
        .ingest_bot_messages(bot_id, &[incoming(700)], &[], t(1))
        .await
        .unwrap()
        .chats[0]
        .id;
    World {
        ws,
        owner,
        operator,
        account: account1,
        account2,
        bot: bot_id,
        chat,
        bot_chat,
        outsider,
        other_account,
        other_bot: bot(db, other_ws, 200).await,
        other_chat,
    }
}

fn spec(name: &str, account: AccountId) -> TaskSpec {
    TaskSpec {
        name: name.to_string(),
        query: "rust -senior".to_string(),
        account,
        target: DeliveryTarget::SavedMessages,
        mode: DeliveryMode::Instant,
        instant_cap_per_minute: 10,
        ignore_forwards: false,
        join_allowed: true,
        leave_unused: true,
    }
}

async fn task(db: &Stores, w: &World, name: &str) -> Task {
    db.leads
        .create_task(&w.owner, &spec(name, w.account), t(10))
        .await
        .unwrap()
}

fn refs(inputs: &[&str]) -> Vec<SourceRef> {
    inputs
        .iter()
        .map(|i| SourceRef::parse(i).unwrap())
        .collect()
}

/// A task's single source, resolved as the channel `channel_id` and joined.
async fn source(db: &Stores, w: &World, task: TaskId, name: &str, channel_id: i64) -> Source {
    let linked = db
        .leads
        .set_task_sources(&w.owner, task, &refs(&[name]), t(20))
        .await
        .unwrap();
    let s = linked
        .iter()
        .find(|s| s.key == name.trim_start_matches('@'))
        .unwrap();
    resolve(db, s.id, channel_id, true).await
}

async fn resolve(db: &Stores, source: SourceId, channel_id: i64, joined: bool) -> Source {
    db.leads
        .set_source_resolved(
            source,
            &ResolvedSource {
                channel_id,
                access_hash: Some(channel_id * 7),
                title: format!("Channel {channel_id}"),
                state: if joined {
                    SourceState::Joined
                } else {
                    SourceState::Polled
                },
                read_via: if joined {
                    ReadVia::Updates
                } else {
                    ReadVia::History
                },
                joined_by_us: joined,
            },
            t(30),
        )
        .await
        .unwrap()
}

fn lead(task: TaskId, source: SourceId, message: i64, text: &str) -> NewLead {
    NewLead {
        task,
        source,
        tg_message_id: message,
        revision: 0,
        link: Some(format!("https://t.me/c/1/{message}")),
        author: LeadAuthor {
            id: Some(42),
            name: Some("Алексей".to_string()),
            username: Some("alexey".to_string()),
        },
        text: text.to_string(),
        snippet: text.chars().take(40).collect(),
        terms: vec!["rust".to_string()],
        posted_at: t(100 * HOUR),
        forward_origin: None,
        grouped_id: None,
        simhash: None,
        random_id: message * 1000 + task.0,
    }
}

fn new_ids(outcomes: &[LeadOutcome]) -> Vec<LeadId> {
    outcomes
        .iter()
        .filter_map(|o| o.new_lead().map(|l| l.id))
        .collect()
}

fn duplicates(outcomes: &[LeadOutcome]) -> Vec<Duplicate> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            LeadOutcome::Duplicate(d) => Some(*d),
            LeadOutcome::New(_) => None,
        })
        .collect()
}

async fn count(db: &Stores, table: &str) -> i64 {
    db.scalar(&format!("SELECT count(*) FROM {table}")).await
}

async fn all_leads(db: &Stores, viewer: &Viewer) -> Vec<Lead> {
    db.leads
        .list_leads(
            viewer,
            &LeadFilter {
                limit: 1000,
                ..LeadFilter::default()
            },
        )
        .await
        .unwrap()
}

async fn tasks_are_created_read_updated_paused_and_deleted(db: Stores) {
    let w = world(&db).await;
    let created = db
        .leads
        .create_task(&w.owner, &spec("Rust jobs", w.account), t(10))
        .await
        .unwrap();
    assert_eq!(created.workspace_id, w.ws);
    assert_eq!(created.name, "Rust jobs");
    assert_eq!(created.query, "rust -senior");
    assert_eq!(created.account_id, w.account);
    assert_eq!(created.target, DeliveryTarget::SavedMessages);
    assert_eq!(created.mode, DeliveryMode::Instant);
    assert_eq!(created.instant_cap_per_minute, 10);
    assert!(created.active && created.join_allowed && created.leave_unused);
    assert!(!created.ignore_forwards);
    assert_eq!(created.created_by, Some(w.owner.user));
    assert_eq!((created.created_at, created.updated_at), (t(10), t(10)));
    assert_eq!(
        db.leads.get_task(&w.owner, created.id).await.unwrap(),
        created
    );

    let changed = TaskSpec {
        name: "Go jobs".to_string(),
        query: "golang".to_string(),
        target: DeliveryTarget::Bot {
            bot: w.bot,
            peer_id: 777,
        },
        mode: DeliveryMode::Digest { every_minutes: 30 },
        instant_cap_per_minute: 3,
        ignore_forwards: true,
        join_allowed: false,
        leave_unused: false,
        ..spec("", w.account)
    };
    let updated = db
        .leads
        .update_task(&w.owner, created.id, &changed, t(20))
        .await
        .unwrap();
    assert_eq!(updated.name, "Go jobs");
    assert_eq!(
        updated.target,
        DeliveryTarget::Bot {
            bot: w.bot,
            peer_id: 777
        }
    );
    assert_eq!(updated.mode, DeliveryMode::Digest { every_minutes: 30 });
    assert_eq!(updated.instant_cap_per_minute, 3);
    assert!(updated.ignore_forwards && !updated.join_allowed && !updated.leave_unused);
    assert_eq!((updated.created_at, updated.updated_at), (t(10), t(20)));

    let to_chat = TaskSpec {
        target: DeliveryTarget::Chat { chat: w.chat },
        ..changed.clone()
    };
    let updated = db
        .leads
        .update_task(&w.owner, created.id, &to_chat, t(21))
        .await
        .unwrap();
    assert_eq!(updated.target, DeliveryTarget::Chat { chat: w.chat });

    let paused = db
        .leads
        .set_task_active(&w.owner, created.id, false, t(30))
        .await
        .unwrap();
    assert!(!paused.active);
    assert!(db.leads.active_tasks().await.unwrap().is_empty());
    let resumed = db
        .leads
        .set_task_active(&w.owner, created.id, true, t(31))
        .await
        .unwrap();
    assert!(resumed.active);
    assert_eq!(
        db.leads.active_tasks().await.unwrap(),
        vec![resumed.clone()]
    );

    let second = task(&db, &w, "Another").await;
    let names: Vec<String> = db
        .leads
        .list_tasks(&w.owner)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["Another", "Go jobs"]);

    db.leads.delete_task(&w.owner, second.id).await.unwrap();
    assert_err!(
        db.leads.get_task(&w.owner, second.id).await,
        StoreError::NotFound
    );
    assert_err!(
        db.leads.delete_task(&w.owner, second.id).await,
        StoreError::NotFound
    );
    assert_eq!(db.leads.list_tasks(&w.owner).await.unwrap().len(), 1);
}

async fn bad_tasks_are_refused_with_stable_codes_and_write_nothing(db: Stores) {
    let w = world(&db).await;
    let existing = task(&db, &w, "Rust jobs").await;
    let ok = spec("New", w.account);
    let cases: Vec<(TaskSpec, &str)> = vec![
        (spec("Rust jobs", w.account), "task_name_taken"),
        (spec("", w.account), "task_name_invalid"),
        (spec(&"x".repeat(101), w.account), "task_name_invalid"),
        (
            TaskSpec {
                query: String::new(),
                ..ok.clone()
            },
            "task_query_invalid",
        ),
        (spec("New", w.other_account), "account_not_found"),
        (spec("New", AccountId(999_999)), "account_not_found"),
        (
            TaskSpec {
                target: DeliveryTarget::Chat { chat: w.other_chat },
                ..ok.clone()
            },
            "delivery_target_not_found",
        ),
        (
            TaskSpec {
                target: DeliveryTarget::Bot {
                    bot: w.other_bot,
                    peer_id: 1,
                },
                ..ok.clone()
            },
            "delivery_target_not_found",
        ),
        (
            TaskSpec {
                target: DeliveryTarget::Removed,
                ..ok.clone()
            },
            "delivery_target_invalid",
        ),
        (
            TaskSpec {
                mode: DeliveryMode::Digest { every_minutes: 0 },
                ..ok.clone()
            },
            "digest_interval_invalid",
        ),
        (
            TaskSpec {
                instant_cap_per_minute: 0,
                ..ok.clone()
            },
            "rate_cap_invalid",
        ),
    ];
    for (bad, code) in &cases {
        match db.leads.create_task(&w.owner, bad, t(11)).await {
            Err(StoreError::Conflict(c)) => assert_eq!(c.code(), *code, "create {}", bad.name),
            other => panic!("create {}: expected {code}, got {other:?}", bad.name),
        }
        let renamed = TaskSpec {
            name: if *code == "task_name_taken" {
                "Other name".to_string()
            } else {
                bad.name.clone()
            },
            ..bad.clone()
        };
        if *code != "task_name_taken" {
            match db
                .leads
                .update_task(&w.owner, existing.id, &renamed, t(12))
                .await
            {
                Err(StoreError::Conflict(c)) => assert_eq!(c.code(), *code, "update {}", bad.name),
                other => panic!("update {}: expected {code}, got {other:?}", bad.name),
            }
        }
    }
    // A name taken by another task of the workspace, on update.
    let second = task(&db, &w, "Second").await;
    assert_err!(
        db.leads
            .update_task(&w.owner, second.id, &spec("Rust jobs", w.account), t(13))
            .await,
        StoreError::Conflict(ErrorCode::TaskNameTaken)
    );
    assert_eq!(count(&db, "lead_tasks").await, 2);
    assert_eq!(
        db.leads.get_task(&w.owner, existing.id).await.unwrap(),
        existing
    );
    // The same name in another workspace is fine.
    db.leads
        .create_task(&w.outsider, &spec("Rust jobs", w.other_account), t(14))
        .await
        .unwrap();
    // Bad source references and too many of them.
    for bad in ["not a channel", "t.me/c/x", "@a"] {
        assert_err!(
            SourceRef::parse(bad),
            StoreError::Conflict(ErrorCode::SourceInvalid)
        );
    }
    let many: Vec<SourceRef> = (0..501)
        .map(|i| SourceRef::parse(&format!("@channel{i}")).unwrap())
        .collect();
    assert_err!(
        db.leads
            .set_task_sources(&w.owner, existing.id, &many, t(15))
            .await,
        StoreError::Conflict(ErrorCode::TooManySources)
    );
    assert_eq!(count(&db, "lead_sources").await, 0);
}

async fn operators_read_tasks_and_leads_but_cannot_manage_tasks(db: Stores) {
    let w = world(&db).await;
    let rust = task(&db, &w, "Rust jobs").await;
    let s = source(&db, &w, rust.id, "@rustjobs", 1001).await;
    let out = db
        .leads
        .insert_leads(&[lead(rust.id, s.id, 1, "Rust developer")], t(40))
        .await
        .unwrap();
    let lead_id = new_ids(&out)[0];
    let op = &w.operator;
    assert_err!(
        db.leads
            .create_task(op, &spec("Mine", w.account), t(50))
            .await,
        StoreError::Conflict(ErrorCode::TaskForbidden)
    );
    assert_err!(
        db.leads
            .update_task(op, rust.id, &spec("Renamed", w.account), t(50))
            .await,
        StoreError::Conflict(ErrorCode::TaskForbidden)
    );
    assert_err!(
        db.leads.set_task_active(op, rust.id, false, t(50)).await,
        StoreError::Conflict(ErrorCode::TaskForbidden)
    );
    assert_err!(
        db.leads
            .set_task_sources(op, rust.id, &refs(&["@other"]), t(50))
            .await,
        StoreError::Conflict(ErrorCode::TaskForbidden)
    );
    assert_err!(
        db.leads.delete_task(op, rust.id).await,
        StoreError::Conflict(ErrorCode::TaskForbidden)
    );
    assert_eq!(db.leads.get_task(&w.owner, rust.id).await.unwrap(), rust);
    assert_eq!(count(&db, "lead_tasks").await, 1);
    assert_eq!(count(&db, "lead_task_sources").await, 1);

    // What they may do: read tasks, sources and leads, and mark leads read.
    assert_eq!(db.leads.get_task(op, rust.id).await.unwrap(), rust);
    assert_eq!(db.leads.list_tasks(op).await.unwrap(), vec![rust.clone()]);
    assert_eq!(db.leads.task_sources(op, rust.id).await.unwrap(), vec![s]);
    assert_eq!(all_leads(&db, op).await.len(), 1);
    assert!(
        db.leads
            .set_lead_read(op, lead_id, true)
            .await
            .unwrap()
            .read
    );
}

async fn another_workspaces_tasks_and_leads_are_not_found_and_unchanged(db: Stores) {
    let w = world(&db).await;
    let rust = task(&db, &w, "Rust jobs").await;
    let s = source(&db, &w, rust.id, "@rustjobs", 1001).await;
    let out = db
        .leads
        .insert_leads(&[lead(rust.id, s.id, 1, "Rust developer")], t(40))
        .await
        .unwrap();
    let lead_id = new_ids(&out)[0];
    let x = &w.outsider;
    assert_err!(db.leads.get_task(x, rust.id).await, StoreError::NotFound);
    assert_err!(
        db.leads
            .update_task(x, rust.id, &spec("Mine", w.other_account), t(50))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.leads.set_task_active(x, rust.id, false, t(50)).await,
        StoreError::NotFound
    );
    assert_err!(
        db.leads
            .set_task_sources(x, rust.id, &refs(&["@mine"]), t(50))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        db.leads.task_sources(x, rust.id).await,
        StoreError::NotFound
    );
    assert_err!(db.leads.delete_task(x, rust.id).await, StoreError::NotFound);
    assert_err!(db.leads.get_lead(x, lead_id).await, StoreError::NotFound);
    assert_err!(
        db.leads.set_lead_read(x, lead_id, true).await,
        StoreError::NotFound
    );
    assert_eq!(db.leads.mark_all_leads_read(x, None).await.unwrap(), 0);
    assert_eq!(
        db.leads
            .mark_all_leads_read(x, Some(rust.id))
            .await
            .unwrap(),
        0
    );
    assert!(db.leads.list_tasks(x).await.unwrap().is_empty());
    assert!(all_leads(&db, x).await.is_empty());
    let by_task = db
        .leads
        .list_leads(
            x,
            &LeadFilter {
                task: Some(rust.id),
                limit: 10,
                ..LeadFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(by_task.is_empty());
    // Nothing changed.
    assert_eq!(db.leads.get_task(&w.owner, rust.id).await.unwrap(), rust);
    let stored = db.leads.get_lead(&w.owner, lead_id).await.unwrap();
    assert!(!stored.read);
    assert_eq!(count(&db, "lead_sources").await, 1);
    // A task of the outsider's own workspace cannot read through an account of ours.
    let theirs = db
        .leads
        .create_task(x, &spec("Theirs", w.other_account), t(60))
        .await
        .unwrap();
    assert_err!(
        db.leads
            .insert_leads(&[lead(theirs.id, s.id, 2, "Rust")], t(61))
            .await,
        StoreError::NotFound
    );
}

async fn sources_are_normalised_shared_and_follow_the_reading_account(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let b = task(&db, &w, "B").await;
    let linked = db
        .leads
        .set_task_sources(
            &w.owner,
            a.id,
            &refs(&[
                "@RustJobs",
                "https://t.me/rustjobs",
                "t.me/+AbCd",
                "t.me/c/12345/9",
            ]),
            t(20),
        )
        .await
        .unwrap();
    let keys: Vec<(SourceKind, &str, SourceState)> = linked
        .iter()
        .map(|s| (s.kind, s.key.as_str(), s.state))
        .collect();
    assert_eq!(
        keys,
        [
            (SourceKind::Username, "rustjobs", SourceState::Resolving),
            (SourceKind::Invite, "AbCd", SourceState::Resolving),
            (SourceKind::ChannelId, "12345", SourceState::Resolving),
        ]
    );
    assert!(linked.iter().all(|s| s.account_id == w.account));
    // Another task naming the same channel shares the source.
    let shared = db
        .leads
        .set_task_sources(
            &w.owner,
            b.id,
            &[
                SourceRef::parse("@rustjobs").unwrap(),
                SourceRef::dialog(-100_555, "Go chat"),
            ],
            t(21),
        )
        .await
        .unwrap();
    assert_eq!(shared[0].id, linked[0].id);
    assert_eq!(shared[1].kind, SourceKind::Dialog);
    assert_eq!(count(&db, "lead_sources").await, 4);

    // Replacing the set unlinks the rest (the sources stay, for leaving).
    let now = db
        .leads
        .set_task_sources(&w.owner, a.id, &refs(&["t.me/+AbCd"]), t(22))
        .await
        .unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(count(&db, "lead_sources").await, 4);
    assert_eq!(count(&db, "lead_task_sources").await, 3);

    // A new reading account takes the task's references with it.
    let moved = db
        .leads
        .update_task(&w.owner, b.id, &spec("B", w.account2), t(23))
        .await
        .unwrap();
    assert_eq!(moved.account_id, w.account2);
    let on_new = db.leads.task_sources(&w.owner, b.id).await.unwrap();
    assert_eq!(on_new.len(), 2);
    assert!(on_new.iter().all(|s| s.account_id == w.account2));
    let mut keys: Vec<String> = on_new.iter().map(|s| s.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["-100555", "rustjobs"]);
}

async fn sources_are_resolved_waited_merged_and_left(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let linked = db
        .leads
        .set_task_sources(
            &w.owner,
            a.id,
            &refs(&["@first", "@second", "t.me/+invite1"]),
            t(20),
        )
        .await
        .unwrap();
    let (first, second, invite) = (linked[0].id, linked[1].id, linked[2].id);
    let work = db
        .leads
        .sources_needing_work(w.account, t(100), 10)
        .await
        .unwrap();
    assert_eq!(work.len(), 3);
    assert!(
        db.leads
            .sources_needing_work(w.account2, t(100), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let waiting = db
        .leads
        .set_source_status(second, &SourceStatus::FloodWait(t(500)), t(40))
        .await
        .unwrap();
    assert_eq!(
        (waiting.state, waiting.wait_until),
        (SourceState::FloodWait, Some(t(500)))
    );
    let failed = db
        .leads
        .set_source_status(
            invite,
            &SourceStatus::Failed("channels_too_much".to_string()),
            t(41),
        )
        .await
        .unwrap();
    assert_eq!(failed.failure.as_deref(), Some("channels_too_much"));
    let first_joined = resolve(&db, first, 1001, true).await;
    assert_eq!(first_joined.state, SourceState::Joined);
    assert_eq!(first_joined.channel_id, Some(1001));
    assert_eq!(first_joined.access_hash, Some(7007));
    assert_eq!(first_joined.read_via, Some(ReadVia::Updates));
    assert!(first_joined.joined_by_us && first_joined.leave_allowed);
    let ids = |v: Vec<Source>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert!(
        ids(db
            .leads
            .sources_needing_work(w.account, t(499), 10)
            .await
            .unwrap())
        .is_empty()
    );
    assert_eq!(
        ids(db
            .leads
            .sources_needing_work(w.account, t(500), 10)
            .await
            .unwrap()),
        [second]
    );
    assert_eq!(db.leads.joined_source_count(w.account).await.unwrap(), 1);

    // The high-water mark and pts never go back.
    let s = db
        .leads
        .advance_source(first, 50, Some(7), t(60))
        .await
        .unwrap();
    assert_eq!(
        (s.last_message_id, s.pts, s.checked_at),
        (50, Some(7), Some(t(60)))
    );
    let s = db
        .leads
        .advance_source(first, 40, Some(5), t(61))
        .await
        .unwrap();
    assert_eq!((s.last_message_id, s.pts), (50, Some(7)));
    let s = db
        .leads
        .advance_source(first, 51, None, t(62))
        .await
        .unwrap();
    assert_eq!((s.last_message_id, s.pts), (51, Some(7)));

    // Two names of one channel: the second resolution merges into the first.
    let merged = resolve(&db, second, 1001, false).await;
    assert_eq!(merged.id, first);
    let sources = db.leads.task_sources(&w.owner, a.id).await.unwrap();
    assert_eq!(ids(sources), [first, invite]);

    let watched = db.leads.watched_sources(w.account).await.unwrap();
    assert_eq!(watched.len(), 2);
    assert!(watched.iter().all(|ws| ws.tasks == vec![a.id]));

    // Unused: only once no active task links it, and only what the monitor joined.
    assert!(db.leads.unused_sources(w.account).await.unwrap().is_empty());
    db.leads
        .set_task_active(&w.owner, a.id, false, t(70))
        .await
        .unwrap();
    assert!(
        db.leads
            .watched_sources(w.account)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.leads
            .sources_needing_work(w.account, t(1000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(db.leads.unused_sources(w.account).await.unwrap()),
        [first]
    );
    // A task that does not allow leaving keeps it.
    let keep = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                leave_unused: false,
                ..spec("Keep", w.account)
            },
            t(71),
        )
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, keep.id, &refs(&["@first"]), t(72))
        .await
        .unwrap();
    db.leads
        .set_task_active(&w.owner, keep.id, false, t(73))
        .await
        .unwrap();
    assert!(db.leads.unused_sources(w.account).await.unwrap().is_empty());
    db.leads
        .set_task_sources(&w.owner, keep.id, &[], t(74))
        .await
        .unwrap();
    // Unlinked from it, the only task left linking it allows leaving.
    assert_eq!(
        ids(db.leads.unused_sources(w.account).await.unwrap()),
        [first]
    );
    // A source no task links any more keeps what its last tasks allowed.
    db.leads
        .set_task_sources(&w.owner, keep.id, &refs(&["@first"]), t(75))
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, a.id, &[], t(76))
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, keep.id, &[], t(77))
        .await
        .unwrap();
    assert!(db.leads.unused_sources(w.account).await.unwrap().is_empty());

    // Leaving, then linking again, resolves it again.
    let left = db
        .leads
        .set_source_status(first, &SourceStatus::Left, t(80))
        .await
        .unwrap();
    assert_eq!(left.state, SourceState::Left);
    assert_eq!(db.leads.joined_source_count(w.account).await.unwrap(), 0);
    let again = db
        .leads
        .set_task_sources(&w.owner, keep.id, &refs(&["@first"]), t(81))
        .await
        .unwrap();
    assert_eq!(again[0].state, SourceState::Resolving);
    assert_err!(
        db.leads
            .set_source_status(SourceId(999_999), &SourceStatus::Left, t(82))
            .await,
        StoreError::NotFound
    );
}

async fn the_same_message_is_one_lead(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let b = task(&db, &w, "B").await;
    let s = source(&db, &w, a.id, "@rustjobs", 1001).await;
    db.leads
        .set_task_sources(&w.owner, b.id, &refs(&["@rustjobs"]), t(21))
        .await
        .unwrap();
    let first = db
        .leads
        .insert_leads(
            &[
                lead(a.id, s.id, 1, "Rust developer"),
                lead(a.id, s.id, 1, "Rust developer"),
                lead(b.id, s.id, 1, "Rust developer"),
            ],
            t(40),
        )
        .await
        .unwrap();
    assert_eq!(new_ids(&first).len(), 2, "once per task");
    assert_eq!(duplicates(&first), [Duplicate::Message]);
    let again = db
        .leads
        .insert_leads(&[lead(a.id, s.id, 1, "Rust developer")], t(41))
        .await
        .unwrap();
    assert_eq!(duplicates(&again), [Duplicate::Message]);
    assert_eq!(count(&db, "leads").await, 2);
    let stored = first[0].new_lead().unwrap();
    assert_eq!(stored.channel_id, Some(1001));
    assert_eq!(stored.author.name.as_deref(), Some("Алексей"));
    assert_eq!(stored.terms, ["rust"]);
    assert_eq!(
        db.leads.get_lead(&w.owner, stored.id).await.unwrap(),
        *stored
    );
    assert!(db.leads.insert_leads(&[], t(42)).await.unwrap().is_empty());
}

async fn the_same_original_post_through_two_sources_is_one_lead(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let linked = db
        .leads
        .set_task_sources(
            &w.owner,
            a.id,
            &refs(&["@chan_one", "@chan_two", "@chan_three"]),
            t(20),
        )
        .await
        .unwrap();
    let one = resolve(&db, linked[0].id, 1001, true).await;
    let two = resolve(&db, linked[1].id, 1002, true).await;
    let three = resolve(&db, linked[2].id, 1003, false).await;
    // The same post of channel 9000 forwarded into two sources.
    let mut f1 = lead(a.id, one.id, 10, "Rust developer wanted");
    f1.forward_origin = Some((9000, 5));
    let mut f2 = lead(a.id, two.id, 20, "Rust developer wanted");
    f2.forward_origin = Some((9000, 5));
    let out = db.leads.insert_leads(&[f1], t(40)).await.unwrap();
    assert_eq!(out[0].new_lead().unwrap().forward_origin, Some((9000, 5)));
    let out = db.leads.insert_leads(&[f2], t(41)).await.unwrap();
    assert_eq!(duplicates(&out), [Duplicate::Origin]);
    // An original post, then a forward of it into another source.
    let original = lead(a.id, three.id, 77, "Go developer wanted");
    let mut forward = lead(a.id, one.id, 11, "Go developer wanted");
    forward.forward_origin = Some((1003, 77));
    let out = db
        .leads
        .insert_leads(&[original, forward], t(42))
        .await
        .unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    assert_eq!(duplicates(&out), [Duplicate::Origin]);
    // Another task sees the same post once too.
    let b = task(&db, &w, "B").await;
    db.leads
        .set_task_sources(&w.owner, b.id, &refs(&["@chan_two"]), t(43))
        .await
        .unwrap();
    let mut f3 = lead(b.id, two.id, 20, "Rust developer wanted");
    f3.forward_origin = Some((9000, 5));
    let out = db.leads.insert_leads(&[f3], t(44)).await.unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    assert_eq!(count(&db, "leads").await, 3);
}

async fn an_album_is_one_lead(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let s = source(&db, &w, a.id, "@photos", 1001).await;
    let items: Vec<NewLead> = (1..=4)
        .map(|m| {
            let mut l = lead(a.id, s.id, m, "Rust job, see photos");
            l.grouped_id = Some(555);
            l
        })
        .collect();
    let out = db.leads.insert_leads(&items, t(40)).await.unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    assert_eq!(duplicates(&out), [Duplicate::Album; 3]);
    assert_eq!(out[0].new_lead().unwrap().grouped_id, Some(555));
    // Another album of the same source is another lead.
    let mut other = lead(a.id, s.id, 9, "Rust job 2");
    other.grouped_id = Some(556);
    let out = db.leads.insert_leads(&[other], t(41)).await.unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    assert_eq!(count(&db, "leads").await, 2);
}

async fn near_duplicates_are_one_lead_within_72_hours_only(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let b = task(&db, &w, "B").await;
    let linked = db
        .leads
        .set_task_sources(&w.owner, a.id, &refs(&["@chan_one", "@chan_two"]), t(20))
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, b.id, &refs(&["@chan_two"]), t(20))
        .await
        .unwrap();
    let one = resolve(&db, linked[0].id, 1001, true).await;
    let two = resolve(&db, linked[1].id, 1002, true).await;
    let hash: i64 = 0x0F0F_0F0F_0F0F_0F0F;
    let with = |task: TaskId, src: SourceId, m: i64, h: i64, hours: i64| {
        let mut l = lead(task, src, m, "Ищем Rust-разработчика");
        l.simhash = Some(h);
        l.posted_at = t(hours * HOUR);
        l
    };
    let first = db
        .leads
        .insert_leads(&[with(a.id, one.id, 1, hash, 100)], t(40))
        .await
        .unwrap();
    let first_id = new_ids(&first)[0];
    // A copy-paste in another channel, three bits apart, a day later: dropped.
    let out = db
        .leads
        .insert_leads(&[with(a.id, two.id, 2, hash ^ 0b111, 124)], t(41))
        .await
        .unwrap();
    assert_eq!(duplicates(&out), [Duplicate::NearDuplicate(first_id)]);
    // Also when it is posted earlier than the first one.
    let out = db
        .leads
        .insert_leads(&[with(a.id, two.id, 3, hash ^ 1, 29)], t(42))
        .await
        .unwrap();
    assert_eq!(duplicates(&out), [Duplicate::NearDuplicate(first_id)]);
    // Four bits apart is another post.
    let out = db
        .leads
        .insert_leads(&[with(a.id, two.id, 4, hash ^ 0b1111, 90)], t(43))
        .await
        .unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    // More than 72 hours later it is a lead again.
    let out = db
        .leads
        .insert_leads(&[with(a.id, two.id, 5, hash ^ 0b11, 173)], t(44))
        .await
        .unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    // Another task is not affected; within one batch the second copy is dropped.
    let out = db
        .leads
        .insert_leads(
            &[
                with(b.id, two.id, 6, hash, 100),
                with(b.id, two.id, 7, hash, 101),
            ],
            t(45),
        )
        .await
        .unwrap();
    assert_eq!(new_ids(&out).len(), 1);
    assert!(matches!(
        duplicates(&out)[..],
        [Duplicate::NearDuplicate(_)]
    ));
    // Leads without a SimHash (too short a text) are never near-duplicates.
    let mut short1 = lead(a.id, one.id, 8, "Rust");
    short1.simhash = None;
    let mut short2 = lead(a.id, two.id, 9, "Rust");
    short2.simhash = None;
    let out = db
        .leads
        .insert_leads(&[short1, short2], t(46))
        .await
        .unwrap();
    assert_eq!(new_ids(&out).len(), 2);
}

async fn an_edit_is_a_lead_only_for_terms_it_adds(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let s = source(&db, &w, a.id, "@jobs", 1001).await;
    let terms = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    let post = NewLead {
        terms: terms(&["rust"]),
        ..lead(a.id, s.id, 1, "Rust developer")
    };
    db.leads.insert_leads(&[post], t(40)).await.unwrap();
    // An edit that matches the same term: no lead.
    let same = NewLead {
        revision: 1_000,
        terms: terms(&["rust"]),
        ..lead(a.id, s.id, 1, "Rust developer, remote")
    };
    let out = db.leads.insert_leads(&[same], t(41)).await.unwrap();
    assert_eq!(duplicates(&out), [Duplicate::NoNewTerms]);
    // An edit adding a term: a lead for that term.
    let added = NewLead {
        revision: 2_000,
        terms: terms(&["rust", "golang"]),
        ..lead(a.id, s.id, 1, "Rust or Golang developer")
    };
    let out = db
        .leads
        .insert_leads(std::slice::from_ref(&added), t(42))
        .await
        .unwrap();
    let edit_lead = out[0].new_lead().unwrap();
    assert_eq!(edit_lead.terms, ["golang"]);
    assert_eq!(edit_lead.revision, 2_000);
    // The same edit delivered twice: nothing new.
    let out = db.leads.insert_leads(&[added], t(43)).await.unwrap();
    assert_eq!(duplicates(&out), [Duplicate::NoNewTerms]);
    // A post that was dropped as a duplicate still remembers its terms.
    let mut album1 = lead(a.id, s.id, 10, "Rust album");
    album1.grouped_id = Some(9);
    let mut album2 = lead(a.id, s.id, 11, "Rust album");
    album2.grouped_id = Some(9);
    let out = db
        .leads
        .insert_leads(&[album1, album2], t(44))
        .await
        .unwrap();
    assert_eq!(duplicates(&out), [Duplicate::Album]);
    let edit = NewLead {
        revision: 3_000,
        ..lead(a.id, s.id, 11, "Rust album edited")
    };
    let out = db.leads.insert_leads(&[edit], t(45)).await.unwrap();
    assert_eq!(duplicates(&out), [Duplicate::NoNewTerms]);
    // An edit of a post that never matched is its first lead.
    let late = NewLead {
        revision: 4_000,
        ..lead(a.id, s.id, 12, "Now it says Rust")
    };
    let out = db.leads.insert_leads(&[late], t(46)).await.unwrap();
    assert_eq!(out[0].new_lead().unwrap().terms, ["rust"]);
    assert_eq!(count(&db, "leads").await, 4);
    // Forgetting old terms.
    assert_eq!(db.leads.prune_matched_terms(t(44)).await.unwrap(), 1);
    assert_eq!(db.leads.prune_matched_terms(t(44)).await.unwrap(), 0);
}

async fn a_batch_naming_a_foreign_source_writes_nothing(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let s = source(&db, &w, a.id, "@jobs", 1001).await;
    // A source of another account of the workspace.
    let b = db
        .leads
        .create_task(&w.owner, &spec("B", w.account2), t(11))
        .await
        .unwrap();
    let s2 = source(&db, &w, b.id, "@other", 2002).await;
    for bad in [
        lead(a.id, s2.id, 2, "Rust"),
        lead(TaskId(999_999), s.id, 3, "Rust"),
        lead(a.id, SourceId(999_999), 4, "Rust"),
    ] {
        assert_err!(
            db.leads
                .insert_leads(&[lead(a.id, s.id, 1, "Rust"), bad], t(40))
                .await,
            StoreError::NotFound
        );
    }
    assert_eq!(count(&db, "leads").await, 0);
    assert_eq!(count(&db, "lead_matched_terms").await, 0);
    assert_eq!(count(&db, "lead_deliveries").await, 0);
}

/// A SimHash far (about 32 bits) from those of the other numbers.
fn spread(m: i64) -> i64 {
    m.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64)
}

async fn batches_sent_at_once_store_each_lead_once(db: Stores) {
    let w = world(&db).await;
    let tasks = [
        task(&db, &w, "A").await,
        task(&db, &w, "B").await,
        task(&db, &w, "C").await,
    ];
    let linked = db
        .leads
        .set_task_sources(
            &w.owner,
            tasks[0].id,
            &refs(&["@chan_one", "@chan_two"]),
            t(20),
        )
        .await
        .unwrap();
    for task in &tasks[1..] {
        db.leads
            .set_task_sources(&w.owner, task.id, &refs(&["@chan_one", "@chan_two"]), t(20))
            .await
            .unwrap();
    }
    let one = resolve(&db, linked[0].id, 1001, true).await;
    let two = resolve(&db, linked[1].id, 1002, true).await;
    // Each batch: 20 posts of every task from both sources; posts of source two are
    // forwards of source one's (same origin) or copy-pastes (near-duplicate SimHash).
    let batch: Vec<NewLead> = tasks
        .iter()
        .flat_map(|task| {
            (1..=20).flat_map(move |m| {
                let mut original = lead(task.id, one.id, m, &format!("Rust job {m}"));
                original.simhash = Some(spread(m));
                let mut copy = lead(task.id, two.id, 100 + m, &format!("Rust job {m}"));
                if m % 2 == 0 {
                    copy.forward_origin = Some((1001, m));
                } else {
                    copy.simhash = Some(spread(m) ^ 1);
                }
                [original, copy]
            })
        })
        .collect();
    let mut runs = Vec::new();
    for i in 0..6 {
        let leads = Arc::clone(&db.leads);
        let mut mine = batch.clone();
        if i % 2 == 1 {
            mine.reverse();
        }
        runs.push(tokio::spawn(async move {
            leads.insert_leads(&mine, t(40 + i)).await.unwrap()
        }));
    }
    let mut stored = 0;
    for run in runs {
        stored += new_ids(&run.await.unwrap()).len();
    }
    assert_eq!(stored, 3 * 20, "each post once per task, over all batches");
    assert_eq!(count(&db, "leads").await, 60);
    for task in &tasks {
        let n = db
            .scalar(&format!(
                "SELECT count(DISTINCT coalesce(fwd_post_id, tg_message_id % 100)) FROM leads \
                 WHERE task_id = {}",
                task.id.0
            ))
            .await;
        assert_eq!(n, 20, "task {}", task.name);
    }
    // Every stored lead of an instant task under its cap... and never two deliveries per lead.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM (SELECT delivery_id FROM leads WHERE delivery_id IS NOT NULL \
             GROUP BY delivery_id HAVING count(*) > 1) AS x"
        )
        .await,
        0
    );
}

async fn instant_leads_are_queued_up_to_the_cap_and_the_rest_wait_for_a_digest(db: Stores) {
    let w = world(&db).await;
    let a = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                instant_cap_per_minute: 3,
                ..spec("A", w.account)
            },
            t(10),
        )
        .await
        .unwrap();
    let s = source(&db, &w, a.id, "@jobs", 1001).await;
    let batch: Vec<NewLead> = (1..=5)
        .map(|m| lead(a.id, s.id, m, &format!("Rust {m}")))
        .collect();
    let now = 10 * HOUR;
    let out = db.leads.insert_leads(&batch, t(now)).await.unwrap();
    let queued: Vec<bool> = out
        .iter()
        .map(|o| o.new_lead().unwrap().delivery_id.is_some())
        .collect();
    assert_eq!(queued, [true, true, true, false, false]);
    assert_eq!(count(&db, "lead_deliveries").await, 3);
    let pending = db.leads.pending_leads(a.id, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|l| l.tg_message_id).collect::<Vec<_>>(),
        [4, 5]
    );
    // Within the same minute it stays capped; a minute later the cap is free again.
    let out = db
        .leads
        .insert_leads(&[lead(a.id, s.id, 6, "Rust 6")], t(now + 59_000))
        .await
        .unwrap();
    assert!(out[0].new_lead().unwrap().delivery_id.is_none());
    let out = db
        .leads
        .insert_leads(&[lead(a.id, s.id, 7, "Rust 7")], t(now + 60_000))
        .await
        .unwrap();
    assert!(out[0].new_lead().unwrap().delivery_id.is_some());
    // A digest task queues nothing by itself.
    let d = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                mode: DeliveryMode::Digest { every_minutes: 15 },
                ..spec("D", w.account)
            },
            t(10),
        )
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, d.id, &refs(&["@jobs"]), t(20))
        .await
        .unwrap();
    let out = db
        .leads
        .insert_leads(&[lead(d.id, s.id, 1, "Rust 1")], t(now))
        .await
        .unwrap();
    assert!(out[0].new_lead().unwrap().delivery_id.is_none());
    // An instant task whose target was deleted queues nothing either.
    let c = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                target: DeliveryTarget::Bot {
                    bot: w.bot,
                    peer_id: 5,
                },
                ..spec("C", w.account)
            },
            t(10),
        )
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, c.id, &refs(&["@jobs"]), t(20))
        .await
        .unwrap();
    db.inbox.delete_bot(w.ws, w.bot).await.unwrap();
    assert_eq!(
        db.leads.get_task(&w.owner, c.id).await.unwrap().target,
        DeliveryTarget::Removed
    );
    let out = db
        .leads
        .insert_leads(&[lead(c.id, s.id, 1, "Rust 1")], t(now))
        .await
        .unwrap();
    assert!(out[0].new_lead().unwrap().delivery_id.is_none());
    assert!(
        !db.leads
            .due_digests(t(now * 2))
            .await
            .unwrap()
            .contains(&c.id)
    );
}

async fn digests_take_pending_leads_once_when_due(db: Stores) {
    let w = world(&db).await;
    let d = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                mode: DeliveryMode::Digest { every_minutes: 15 },
                ..spec("D", w.account)
            },
            t(0),
        )
        .await
        .unwrap();
    let i = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                instant_cap_per_minute: 1,
                ..spec("I", w.account)
            },
            t(0),
        )
        .await
        .unwrap();
    let s = source(&db, &w, d.id, "@jobs", 1001).await;
    db.leads
        .set_task_sources(&w.owner, i.id, &refs(&["@jobs"]), t(20))
        .await
        .unwrap();
    let minute = 60_000;
    assert!(
        db.leads
            .due_digests(t(60 * minute))
            .await
            .unwrap()
            .is_empty()
    );
    let batch: Vec<NewLead> = (1..=3)
        .flat_map(|m| {
            [
                lead(d.id, s.id, m, &format!("Rust {m}")),
                lead(i.id, s.id, m, &format!("Rust {m}")),
            ]
        })
        .collect();
    db.leads.insert_leads(&batch, t(minute)).await.unwrap();
    // The digest task is due 15 minutes after its creation; the instant task's overflow a
    // minute after.
    assert_eq!(db.leads.due_digests(t(minute)).await.unwrap(), [i.id]);
    assert_eq!(
        db.leads.due_digests(t(15 * minute)).await.unwrap(),
        [d.id, i.id]
    );
    let pending: Vec<LeadId> = db
        .leads
        .pending_leads(d.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(pending.len(), 3);
    // Two composers at once: each lead goes out in exactly one digest.
    let (x, y) = tokio::join!(
        db.leads
            .create_digest(d.id, &pending[..2], 11, t(15 * minute)),
        db.leads.create_digest(d.id, &pending, 12, t(15 * minute)),
    );
    let made: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert!(!made.is_empty());
    assert!(db.leads.pending_leads(d.id, 10).await.unwrap().is_empty());
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(DISTINCT delivery_id) FROM leads WHERE task_id = {}",
            d.id.0
        ))
        .await,
        i64::try_from(made.len()).unwrap()
    );
    assert_eq!(
        db.leads
            .create_digest(d.id, &pending, 13, t(15 * minute))
            .await
            .unwrap(),
        None
    );
    // Not due again until the interval passed since this digest.
    assert_eq!(db.leads.due_digests(t(20 * minute)).await.unwrap(), [i.id]);
    db.leads
        .insert_leads(&[lead(d.id, s.id, 9, "Rust 9")], t(21 * minute))
        .await
        .unwrap();
    assert!(
        !db.leads
            .due_digests(t(29 * minute))
            .await
            .unwrap()
            .contains(&d.id)
    );
    assert!(
        db.leads
            .due_digests(t(30 * minute))
            .await
            .unwrap()
            .contains(&d.id)
    );
    // Leads of another task are never taken.
    let others: Vec<LeadId> = db
        .leads
        .pending_leads(i.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(
        db.leads
            .create_digest(d.id, &others, 14, t(30 * minute))
            .await
            .unwrap(),
        None
    );
    assert_err!(
        db.leads
            .create_digest(TaskId(999_999), &others, 15, t(30 * minute))
            .await,
        StoreError::NotFound
    );
}

async fn deliveries_are_claimed_completed_failed_and_recovered(db: Stores) {
    let w = world(&db).await;
    let saved = task(&db, &w, "Saved").await;
    let s = source(&db, &w, saved.id, "@jobs", 1001).await;
    let make = |name: &'static str, target: DeliveryTarget| {
        let leads = Arc::clone(&db.leads);
        let owner = w.owner;
        let account = w.account;
        async move {
            let task = leads
                .create_task(
                    &owner,
                    &TaskSpec {
                        target,
                        ..spec(name, account)
                    },
                    t(10),
                )
                .await
                .unwrap();
            leads
                .set_task_sources(&owner, task.id, &refs(&["@jobs"]), t(20))
                .await
                .unwrap();
            task
        }
    };
    let to_chat = make("Chat", DeliveryTarget::Chat { chat: w.chat }).await;
    let to_bot_chat = make("BotChat", DeliveryTarget::Chat { chat: w.bot_chat }).await;
    let to_bot = make(
        "Bot",
        DeliveryTarget::Bot {
            bot: w.bot,
            peer_id: 42,
        },
    )
    .await;
    let mut batch = Vec::new();
    for task in [&saved, &to_chat, &to_bot_chat, &to_bot] {
        batch.push(lead(task.id, s.id, 1, "Rust 1"));
        batch.push(lead(task.id, s.id, 2, "Rust 2"));
    }
    db.leads.insert_leads(&batch, t(100)).await.unwrap();
    assert_eq!(
        db.leads.next_lead_delivery_due().await.unwrap(),
        Some(t(100))
    );
    assert!(
        db.leads
            .claim_lead_deliveries(t(99), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Only the oldest delivery of each task: leads leave in order.
    let claimed = db.leads.claim_lead_deliveries(t(100), 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    for item in &claimed {
        assert_eq!(item.kind, LeadDeliveryKind::Instant);
        assert_eq!(item.attempts, 1);
        assert_eq!(item.leads.len(), 1);
        assert_eq!(item.leads[0].tg_message_id, 1);
        assert_eq!(item.random_id, 1000 + item.task.id.0);
    }
    assert!(
        db.leads
            .claim_lead_deliveries(t(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let by_task = |task: TaskId| claimed.iter().find(|c| c.task.id == task).unwrap().id;
    db.leads
        .complete_lead_delivery(by_task(saved.id), 5555, t(101))
        .await
        .unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT tg_message_id FROM lead_deliveries WHERE id = {}",
            by_task(saved.id).0
        ))
        .await,
        5555
    );
    db.leads
        .fail_lead_delivery(by_task(to_chat.id), "flood_wait", Some(t(500)), t(101))
        .await
        .unwrap();
    // The saved-messages task's second lead is next; the chat task waits for its retry.
    let next = db.leads.claim_lead_deliveries(t(200), 10).await.unwrap();
    assert_eq!(
        next.iter().map(|n| n.task.id).collect::<Vec<_>>(),
        [saved.id]
    );
    let retried = db.leads.claim_lead_deliveries(t(500), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].task.id, retried[0].attempts), (to_chat.id, 2));

    // A restart: every delivery left sending is swept. Accounts resend (same random_id);
    // bots cannot know whether it got through.
    let recovered = db
        .leads
        .recover_lead_deliveries(t(1000), t(1000))
        .await
        .unwrap();
    let states: Vec<(TaskId, &str)> = recovered
        .iter()
        .map(|r| (r.task, r.state.as_str()))
        .collect();
    let mut expected = vec![
        (saved.id, "queued"),
        (to_chat.id, "queued"),
        (to_bot_chat.id, "failed"),
        (to_bot.id, "failed"),
    ];
    let mut got = states.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM lead_deliveries WHERE last_error = '{SEND_UNCERTAIN}'"
        ))
        .await,
        2
    );
    // Stuck-since: one claimed later than the deadline stays.
    let again = db.leads.claim_lead_deliveries(t(2000), 10).await.unwrap();
    assert!(!again.is_empty());
    assert!(
        db.leads
            .recover_lead_deliveries(t(1999), t(2001))
            .await
            .unwrap()
            .is_empty()
    );
    for item in &again {
        db.leads
            .fail_lead_delivery(item.id, "peer_id_invalid", None, t(2002))
            .await
            .unwrap();
    }
    assert_err!(
        db.leads
            .complete_lead_delivery(switchboard_domain::LeadDeliveryId(999_999), 1, t(3000))
            .await,
        StoreError::NotFound
    );
}

async fn claims_sent_at_once_never_return_the_same_delivery(db: Stores) {
    let w = world(&db).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        tasks.push(task(&db, &w, &format!("T{i}")).await);
    }
    let s = source(&db, &w, tasks[0].id, "@jobs", 1001).await;
    for task in &tasks[1..] {
        db.leads
            .set_task_sources(&w.owner, task.id, &refs(&["@jobs"]), t(20))
            .await
            .unwrap();
    }
    let batch: Vec<NewLead> = tasks
        .iter()
        .map(|task| lead(task.id, s.id, 1, "Rust"))
        .collect();
    db.leads.insert_leads(&batch, t(100)).await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..4 {
        let leads = Arc::clone(&db.leads);
        runs.push(tokio::spawn(async move {
            leads.claim_lead_deliveries(t(100), 3).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for run in runs {
        ids.extend(run.await.unwrap().into_iter().map(|i| i.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a delivery was claimed twice");
    assert_eq!(total, 8);
}

async fn leads_are_filtered_paged_searched_and_marked_read(db: Stores) {
    let w = world(&db).await;
    let a = task(&db, &w, "A").await;
    let b = task(&db, &w, "B").await;
    let linked = db
        .leads
        .set_task_sources(&w.owner, a.id, &refs(&["@chan_one", "@chan_two"]), t(20))
        .await
        .unwrap();
    db.leads
        .set_task_sources(&w.owner, b.id, &refs(&["@chan_one"]), t(20))
        .await
        .unwrap();
    let one = resolve(&db, linked[0].id, 1001, true).await;
    let two = resolve(&db, linked[1].id, 1002, true).await;
    let texts = [
        "Ищем Rust-разработчика, удалённо",
        "Senior Golang developer",
        "Вакансия: разработчик Python",
        "Rustacean wanted, office",
        "ЁЛКА и Ещё один пост",
    ];
    let mut batch = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        let mut l = lead(a.id, if i % 2 == 0 { one.id } else { two.id }, i + 1, text);
        l.posted_at = t(i * HOUR);
        batch.push(l);
    }
    batch.push(lead(b.id, one.id, 50, "Rust for task B"));
    let out = db.leads.insert_leads(&batch, t(100)).await.unwrap();
    let ids = new_ids(&out);
    assert_eq!(ids.len(), 6);
    let list = |filter: LeadFilter| {
        let leads = Arc::clone(&db.leads);
        let owner = w.owner;
        async move {
            leads
                .list_leads(&owner, &filter)
                .await
                .unwrap()
                .iter()
                .map(|l| l.id)
                .collect::<Vec<_>>()
        }
    };
    let all = LeadFilter {
        limit: 100,
        ..LeadFilter::default()
    };
    let newest_first: Vec<LeadId> = ids.iter().rev().copied().collect();
    assert_eq!(list(all.clone()).await, newest_first);
    // Paging by cursor.
    let page1 = list(LeadFilter {
        limit: 4,
        ..all.clone()
    })
    .await;
    let page2 = list(LeadFilter {
        limit: 4,
        before: page1.last().copied(),
        ..all.clone()
    })
    .await;
    assert_eq!([page1, page2].concat(), newest_first);
    // Filters.
    assert_eq!(
        list(LeadFilter {
            task: Some(b.id),
            ..all.clone()
        })
        .await,
        [ids[5]]
    );
    assert_eq!(
        list(LeadFilter {
            source: Some(two.id),
            ..all.clone()
        })
        .await,
        [ids[3], ids[1]]
    );
    assert_eq!(
        list(LeadFilter {
            task: Some(a.id),
            posted_from: Some(t(HOUR)),
            posted_to: Some(t(3 * HOUR)),
            ..all.clone()
        })
        .await,
        [ids[2], ids[1]]
    );
    // Search: words by prefix, any case, ё as е, every word must match.
    let search = |q: &str| LeadFilter {
        search: Some(q.to_string()),
        ..all.clone()
    };
    assert_eq!(list(search("rust")).await, [ids[5], ids[3], ids[0]]);
    assert_eq!(list(search("RUST удаленно")).await, [ids[0]]);
    assert_eq!(list(search("удалённо")).await, [ids[0]]);
    assert_eq!(list(search("разработ")).await, [ids[2], ids[0]]);
    assert_eq!(list(search("елка еще")).await, [ids[4]]);
    assert_eq!(list(search("golang senior")).await, [ids[1]]);
    assert!(list(search("java")).await.is_empty());
    assert_eq!(
        list(search(" -- ")).await,
        newest_first,
        "no words: no search"
    );
    assert_eq!(
        list(LeadFilter {
            task: Some(b.id),
            ..search("rust")
        })
        .await,
        [ids[5]]
    );
    // Read flags.
    let read = db
        .leads
        .set_lead_read(&w.owner, ids[0], true)
        .await
        .unwrap();
    assert!(read.read);
    assert_eq!(
        list(LeadFilter {
            read: Some(true),
            ..all.clone()
        })
        .await,
        [ids[0]]
    );
    assert_eq!(
        db.leads
            .mark_all_leads_read(&w.owner, Some(b.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        list(LeadFilter {
            read: Some(false),
            ..all.clone()
        })
        .await,
        [ids[4], ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        db.leads
            .mark_all_leads_read(&w.operator, None)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        db.leads.mark_all_leads_read(&w.owner, None).await.unwrap(),
        0
    );
    let unread = db
        .leads
        .set_lead_read(&w.owner, ids[1], false)
        .await
        .unwrap();
    assert!(!unread.read);
    assert_err!(
        db.leads
            .set_lead_read(&w.owner, LeadId(999_999), true)
            .await,
        StoreError::NotFound
    );
}

async fn deleting_a_task_or_its_target_keeps_the_rest_consistent(db: Stores) {
    let w = world(&db).await;
    let a = db
        .leads
        .create_task(
            &w.owner,
            &TaskSpec {
                target: DeliveryTarget::Chat { chat: w.chat },
                ..spec("A", w.account)
            },
            t(10),
        )
        .await
        .unwrap();
    let b = task(&db, &w, "B").await;
    let s = source(&db, &w, a.id, "@jobs", 1001).await;
    db.leads
        .set_task_sources(&w.owner, b.id, &refs(&["@jobs"]), t(20))
        .await
        .unwrap();
    db.leads
        .insert_leads(
            &[
                lead(a.id, s.id, 1, "Rust one"),
                lead(b.id, s.id, 1, "Rust one"),
            ],
            t(40),
        )
        .await
        .unwrap();
    db.leads.delete_task(&w.owner, a.id).await.unwrap();
    assert_eq!(count(&db, "leads").await, 1);
    assert_eq!(count(&db, "lead_deliveries").await, 1);
    assert_eq!(count(&db, "lead_matched_terms").await, 1);
    assert_eq!(count(&db, "lead_sources").await, 1);
    assert_eq!(all_leads(&db, &w.owner).await.len(), 1);
    // Search still finds only what exists.
    let found = db
        .leads
        .list_leads(
            &w.owner,
            &LeadFilter {
                search: Some("rust".to_string()),
                limit: 10,
                ..LeadFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].task_id, b.id);
    // Deleting the reading account removes its tasks, sources and leads.
    let c = db
        .leads
        .create_task(&w.owner, &spec("C", w.account2), t(50))
        .await
        .unwrap();
    let s2 = source(&db, &w, c.id, "@more", 2002).await;
    db.leads
        .insert_leads(&[lead(c.id, s2.id, 1, "Rust two")], t(51))
        .await
        .unwrap();
    db.accounts.delete_account(w.ws, w.account2).await.unwrap();
    assert_err!(
        db.leads.get_task(&w.owner, c.id).await,
        StoreError::NotFound
    );
    assert_eq!(count(&db, "leads").await, 1);
    assert_eq!(count(&db, "lead_sources").await, 1);
}
