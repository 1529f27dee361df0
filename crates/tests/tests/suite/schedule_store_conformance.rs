//! The conformance suite of the `ScheduleStore` port: posts (create, change, draft, cancel,
//! delete, publish now), their runs (the waiting occurrence, claims under a lease with fencing
//! tokens, publication with follow-ups, failures and retries, the grace period and missed
//! runs) and follow-up actions, run against SQLite and PostgreSQL alike (each test once per
//! backend, on a fresh database). Every viewer-scoped method is tried from another workspace
//! and, for the writes, as an operator, and must be refused and change nothing; claims are also
//! sent at once from several connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{
    AccountId, AccountStatus, ActionKind, ActionStatus, BotId, BotMode, ErrorCode, FollowUps,
    InstanceId, MediaKind, NewAccount, NewBot, NewUpload, NewUser, PostContent, PostEdit,
    PostFilter, PostMedia, PostRunId, PostSender, PostSpec, PostState, PostTarget, Published,
    ReleasedLeases, Role, RunFailure, RunFilter, RunStatus, RunTrigger, Schedule, ScheduledPost,
    StoreError, Timestamp, Username, Viewer, WorkspaceId,
};
use switchboard_tests::account_backend_tests;
use switchboard_tests::assert_err;
use switchboard_tests::db::Stores;

account_backend_tests!(
    posts_are_created_changed_drafted_cancelled_and_deleted,
    bad_posts_are_refused_with_stable_codes_and_write_nothing,
    operators_read_posts_but_only_owners_and_admins_write,
    another_workspaces_posts_and_runs_are_not_found_and_unchanged,
    a_claimed_run_is_published_once_and_the_next_occurrence_follows,
    claims_sent_at_once_never_take_the_same_run,
    expired_leases_are_reclaimed_and_stale_tokens_refused,
    failures_retry_outside_the_grace_period_or_end_the_run,
    runs_late_past_their_grace_are_missed_and_recurring_posts_go_on,
    publish_now_replaces_a_once_posts_run_and_is_never_doubled,
    follow_ups_are_claimed_done_and_a_delete_cancels_the_rest,
    an_instance_releases_its_own_leases_at_start_and_no_others,
);

/// 2027-01-15 08:00 UTC (11:00 in Moscow).
const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const LEASE: Duration = Duration::from_secs(60);

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// The instance the claims of these tests are made for.
fn me() -> InstanceId {
    InstanceId::parse("this-instance").unwrap()
}

/// Another server instance on the same database.
fn other() -> InstanceId {
    InstanceId::parse("other-instance").unwrap()
}

struct World {
    owner: Viewer,
    admin: Viewer,
    operator: Viewer,
    account: AccountId,
    bot: BotId,
    outsider: Viewer,
    other_account: AccountId,
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
                first_name: format!("Poster {tg_user}"),
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

async fn world(db: &Stores) -> World {
    let ws = db.store.create_workspace("Acme", t(1)).await.unwrap().id;
    let other_ws = db.store.create_workspace("Other", t(1)).await.unwrap().id;
    let bot = db
        .inbox
        .create_bot(
            &NewBot {
                workspace_id: ws,
                telegram_bot_id: 77,
                username: "poster_bot".to_string(),
                first_name: "Poster".to_string(),
                mode: BotMode::Polling,
                hook_id: "hook-77".to_string(),
                token_sealed: vec![1, 2],
                hook_secret_sealed: vec![3],
            },
            t(1),
        )
        .await
        .unwrap()
        .id;
    World {
        owner: member(db, ws, "owner", Role::Owner).await,
        admin: member(db, ws, "admin", Role::Admin).await,
        operator: member(db, ws, "operator", Role::Operator).await,
        account: account(db, ws, 1).await,
        bot,
        outsider: member(db, other_ws, "outsider", Role::Owner).await,
        other_account: account(db, other_ws, 2).await,
    }
}

fn target() -> PostTarget {
    PostTarget {
        peer_id: -1_000_000_000_042,
        title: "News".into(),
        username: Some("news".into()),
        access_hash: Some(99),
    }
}

/// A daily post at 12:00 Moscow (09:00 UTC: the first run is T0 + 1 h).
fn daily(account: AccountId, text: &str) -> PostSpec {
    PostSpec {
        sender: PostSender::Account { account },
        target: target(),
        content: PostContent {
            text: text.into(),
            ..Default::default()
        },
        schedule: Schedule::Daily {
            time: "12:00".into(),
        },
        time_zone: "Europe/Moscow".into(),
        grace_minutes: 15,
        draft: false,
        follow_ups: FollowUps::default(),
    }
}

/// A once post at a Moscow local time.
fn once(account: AccountId, at: &str) -> PostSpec {
    PostSpec {
        schedule: Schedule::Once { at: at.into() },
        ..daily(account, "Once")
    }
}

async fn count(db: &Stores, table: &str) -> i64 {
    db.scalar(&format!("SELECT count(*) FROM {table}")).await
}

async fn count_where(db: &Stores, table: &str, cond: &str) -> i64 {
    db.scalar(&format!("SELECT count(*) FROM {table} WHERE {cond}"))
        .await
}

async fn runs_of(
    db: &Stores,
    v: &Viewer,
    post: &ScheduledPost,
) -> Vec<switchboard_domain::PostRun> {
    db.schedule
        .list_runs(
            v,
            &RunFilter {
                post: Some(post.id),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn conflict(code: ErrorCode) -> impl Fn(&StoreError) -> bool {
    move |e| matches!(e, StoreError::Conflict(c) if *c == code)
}

async fn posts_are_created_changed_drafted_cancelled_and_deleted(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let post = s
        .create_post(&w.owner, &daily(w.account, "Hello"), 42, t(T0))
        .await
        .unwrap();
    assert_eq!(post.state, PostState::Active);
    assert_eq!(post.version, 1);
    assert_eq!(post.next_run_at, Some(t(T0 + HOUR)));
    assert_eq!(post.target, target());
    assert_eq!(post.random_seed, 42);
    assert_eq!(post.created_by, Some(w.owner.user));
    assert_eq!(s.get_post(&w.operator, post.id).await.unwrap(), post);
    let runs = runs_of(&db, &w.owner, &post).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status, runs[0].trigger, runs[0].due_at),
        (RunStatus::Scheduled, RunTrigger::Schedule, t(T0 + HOUR))
    );

    // A new time and text: the waiting run moves, nothing else is left behind.
    let mut changed = daily(w.account, "Hello again");
    changed.schedule = Schedule::Daily {
        time: "18:30".into(),
    };
    changed.content.silent = true;
    let post = s
        .update_post(&w.admin, post.id, &changed, t(T0 + MIN))
        .await
        .unwrap();
    assert_eq!(post.version, 2);
    assert_eq!(post.content.text, "Hello again");
    assert!(post.content.silent);
    assert_eq!(post.next_run_at, Some(t(T0 + 7 * HOUR + 30 * MIN)));
    let runs = runs_of(&db, &w.owner, &post).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].due_at, t(T0 + 7 * HOUR + 30 * MIN));

    // A draft has no runs; saving it as not a draft schedules it again.
    let draft = PostSpec {
        draft: true,
        ..changed.clone()
    };
    let post = s
        .update_post(&w.owner, post.id, &draft, t(T0 + 2 * MIN))
        .await
        .unwrap();
    assert_eq!((post.state, post.next_run_at), (PostState::Draft, None));
    assert!(runs_of(&db, &w.owner, &post).await.is_empty());
    let post = s
        .update_post(&w.owner, post.id, &changed, t(T0 + 3 * MIN))
        .await
        .unwrap();
    assert_eq!(post.state, PostState::Active);
    assert_eq!(runs_of(&db, &w.owner, &post).await.len(), 1);

    // Listing, by next run.
    let later = s
        .create_post(&w.owner, &once(w.account, "2027-01-20T10:00"), 1, t(T0))
        .await
        .unwrap();
    let listed = s
        .list_posts(&w.operator, &PostFilter::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![post.id, later.id]
    );
    let drafts = s
        .list_posts(
            &w.owner,
            &PostFilter {
                state: Some(PostState::Draft),
            },
        )
        .await
        .unwrap();
    assert!(drafts.is_empty());

    // Cancel: the waiting run ends cancelled, and a change makes the post active again.
    let cancelled = s
        .cancel_post(&w.owner, post.id, t(T0 + 4 * MIN))
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.next_run_at),
        (PostState::Cancelled, None)
    );
    let runs = runs_of(&db, &w.owner, &post).await;
    assert_eq!(runs[0].status, RunStatus::Cancelled);
    assert_eq!(
        s.claim_due_runs(t(T0 + 8 * HOUR), LEASE, 10, &me())
            .await
            .unwrap()
            .len(),
        0,
        "a cancelled run is never claimed"
    );
    let revived = s
        .update_post(&w.owner, post.id, &changed, t(T0 + 5 * MIN))
        .await
        .unwrap();
    assert_eq!(revived.state, PostState::Active);

    s.delete_post(&w.owner, post.id).await.unwrap();
    assert_err!(s.get_post(&w.owner, post.id).await, StoreError::NotFound);
    assert_err!(s.delete_post(&w.owner, post.id).await, StoreError::NotFound);
    assert_eq!(
        count(&db, "post_runs").await,
        1,
        "only the other post's run is left"
    );
}

async fn bad_posts_are_refused_with_stable_codes_and_write_nothing(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let bad: Vec<(PostSpec, ErrorCode)> = vec![
        (daily(w.other_account, "x"), ErrorCode::SenderNotFound),
        (
            PostSpec {
                sender: PostSender::Bot { bot: BotId(9999) },
                ..daily(w.account, "x")
            },
            ErrorCode::SenderNotFound,
        ),
        (
            PostSpec {
                content: PostContent {
                    text: "photo".into(),
                    media: vec![PostMedia {
                        file_id: "b".repeat(64),
                        kind: MediaKind::Photo,
                        file_name: None,
                        mime_type: None,
                    }],
                    ..Default::default()
                },
                ..daily(w.account, "x")
            },
            ErrorCode::FileNotFound,
        ),
        (
            once(w.account, "2027-01-15T10:59"),
            ErrorCode::ScheduleInPast,
        ),
        (
            PostSpec {
                time_zone: "Mars/Olympus".into(),
                ..daily(w.account, "x")
            },
            ErrorCode::ScheduleInvalid,
        ),
        (daily(w.account, ""), ErrorCode::PostEmpty),
        (
            daily(w.account, &"x".repeat(4097)),
            ErrorCode::PostTextTooLong,
        ),
        (
            PostSpec {
                grace_minutes: 1441,
                ..daily(w.account, "x")
            },
            ErrorCode::GraceInvalid,
        ),
    ];
    for (spec, code) in &bad {
        let r = s.create_post(&w.owner, spec, 1, t(T0)).await;
        assert!(r.as_ref().is_err_and(conflict(*code)), "{code:?}: {r:?}");
    }
    // An upload of the other workspace is not this one's.
    db.inbox
        .record_upload(
            &NewUpload {
                workspace: w.outsider.workspace,
                file_id: "c".repeat(64),
                size: 10,
                mime_type: "image/png".into(),
                uploaded_by: w.outsider.user,
            },
            t(1),
        )
        .await
        .unwrap();
    let mut foreign_media = daily(w.account, "x");
    foreign_media.content.media = vec![PostMedia {
        file_id: "c".repeat(64),
        kind: MediaKind::Photo,
        file_name: None,
        mime_type: None,
    }];
    assert_err!(
        s.create_post(&w.owner, &foreign_media, 1, t(T0)).await,
        StoreError::Conflict(ErrorCode::FileNotFound)
    );
    assert_eq!(count(&db, "scheduled_posts").await, 0);
    assert_eq!(count(&db, "post_runs").await, 0);

    // An update that is refused leaves the post as it was.
    let post = s
        .create_post(&w.owner, &daily(w.account, "ok"), 1, t(T0))
        .await
        .unwrap();
    for (spec, code) in &bad {
        let r = s.update_post(&w.owner, post.id, spec, t(T0)).await;
        assert!(r.as_ref().is_err_and(conflict(*code)), "{code:?}: {r:?}");
    }
    assert_eq!(s.get_post(&w.owner, post.id).await.unwrap(), post);
    assert_eq!(count(&db, "post_runs").await, 1);
}

async fn operators_read_posts_but_only_owners_and_admins_write(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let post = s
        .create_post(&w.admin, &daily(w.account, "Hi"), 1, t(T0))
        .await
        .unwrap();
    let forbidden = |r: Result<_, StoreError>| {
        assert!(
            r.as_ref().is_err_and(conflict(ErrorCode::PostForbidden)),
            "{:?}",
            r.err()
        );
    };
    let op = &w.operator;
    forbidden(
        s.create_post(op, &daily(w.account, "x"), 1, t(T0))
            .await
            .map(|_| ()),
    );
    forbidden(
        s.update_post(op, post.id, &daily(w.account, "x"), t(T0))
            .await
            .map(|_| ()),
    );
    forbidden(s.cancel_post(op, post.id, t(T0)).await.map(|_| ()));
    forbidden(s.delete_post(op, post.id).await);
    forbidden(s.publish_now(op, post.id, t(T0)).await.map(|_| ()));
    // Reads are open to every member.
    assert_eq!(s.get_post(op, post.id).await.unwrap(), post);
    assert_eq!(
        s.list_posts(op, &PostFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(runs_of(&db, op, &post).await.len(), 1);
    // A published run's follow-ups too.
    let claimed = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 1, &me())
        .await
        .unwrap();
    let run = s
        .complete_run(
            claimed[0].run.id,
            claimed[0].token,
            &Published {
                message_ids: vec![5],
                at: t(T0 + HOUR),
            },
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    forbidden(
        s.add_action(
            op,
            run.id,
            ActionKind::Delete,
            None,
            t(T0 + HOUR),
            t(T0 + HOUR),
        )
        .await
        .map(|_| ()),
    );
    assert!(s.list_actions(op, run.id).await.unwrap().is_empty());
    assert_eq!(s.get_post(&w.owner, post.id).await.unwrap().version, 1);
    assert_eq!(count(&db, "scheduled_posts").await, 1);
}

async fn another_workspaces_posts_and_runs_are_not_found_and_unchanged(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let post = s
        .create_post(&w.owner, &daily(w.account, "Ours"), 1, t(T0))
        .await
        .unwrap();
    let them = &w.outsider;
    assert_err!(s.get_post(them, post.id).await, StoreError::NotFound);
    assert_err!(
        s.update_post(them, post.id, &daily(w.other_account, "x"), t(T0))
            .await,
        StoreError::NotFound
    );
    assert_err!(
        s.cancel_post(them, post.id, t(T0)).await,
        StoreError::NotFound
    );
    assert_err!(s.delete_post(them, post.id).await, StoreError::NotFound);
    assert_err!(
        s.publish_now(them, post.id, t(T0)).await,
        StoreError::NotFound
    );
    assert!(
        s.list_posts(them, &PostFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let run = runs_of(&db, &w.owner, &post).await[0].clone();
    assert_err!(s.get_run(them, run.id).await, StoreError::NotFound);
    assert_err!(s.list_actions(them, run.id).await, StoreError::NotFound);
    assert!(
        s.list_runs(
            them,
            &RunFilter {
                limit: 100,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
    assert!(runs_of(&db, them, &post).await.is_empty());
    // Their own post cannot name our account either.
    assert_err!(
        s.create_post(them, &daily(w.account, "x"), 1, t(T0)).await,
        StoreError::Conflict(ErrorCode::SenderNotFound)
    );
    assert_eq!(s.get_post(&w.owner, post.id).await.unwrap(), post);
}

async fn a_claimed_run_is_published_once_and_the_next_occurrence_follows(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let mut spec = daily(w.account, "Daily");
    spec.follow_ups = FollowUps {
        pin_hours: Some(1),
        delete_after_hours: Some(24),
    };
    let post = s.create_post(&w.owner, &spec, 7, t(T0)).await.unwrap();
    assert!(
        s.claim_due_runs(t(T0 + HOUR - 1), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.next_schedule_wakeup().await.unwrap(), Some(t(T0 + HOUR)));

    let claimed = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.run.status, RunStatus::Publishing);
    assert_eq!((c.run.attempts, c.token, c.reclaimed), (1, 1, false));
    assert_eq!(c.run.post_version, Some(1));
    assert_eq!(c.post.content.text, "Daily");
    assert_eq!(c.random_id(0), c.random_id(0));
    assert_eq!(c.random_id(1), c.random_id(0).wrapping_add(1));
    // The next day's run already waits; nothing else is due.
    let post_now = s.get_post(&w.owner, post.id).await.unwrap();
    assert_eq!(post_now.next_run_at, Some(t(T0 + 25 * HOUR)));
    assert!(
        s.claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );

    let done = s
        .complete_run(
            c.run.id,
            c.token,
            &Published {
                message_ids: vec![31, 32],
                at: t(T0 + HOUR + 500),
            },
            t(T0 + HOUR + 600),
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Published);
    assert_eq!(done.message_ids, vec![31, 32]);
    assert_eq!(done.published_at, Some(t(T0 + HOUR + 500)));
    assert_eq!(done.link.as_deref(), Some("https://t.me/news/31"));
    // Published once: a second completion is refused.
    assert_err!(
        s.complete_run(
            c.run.id,
            c.token,
            &Published {
                message_ids: vec![33],
                at: t(T0 + HOUR)
            },
            t(T0 + HOUR)
        )
        .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    let actions = s.list_actions(&w.operator, done.id).await.unwrap();
    let kinds: Vec<(ActionKind, Timestamp)> = actions.iter().map(|a| (a.kind, a.due_at)).collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::Pin, t(T0 + HOUR + 500)),
            (ActionKind::Unpin, t(T0 + 2 * HOUR + 500)),
            (ActionKind::Delete, t(T0 + 25 * HOUR + 500)),
        ]
    );
    // A recurring post stays active; its runs are in the history, newest first.
    let post_now = s.get_post(&w.owner, post.id).await.unwrap();
    assert_eq!(post_now.state, PostState::Active);
    let runs = runs_of(&db, &w.owner, &post).await;
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![RunStatus::Scheduled, RunStatus::Published]
    );

    // A once post is finished when its run is published, and cannot be changed then.
    let single = s
        .create_post(&w.owner, &once(w.account, "2027-01-15T11:30"), 8, t(T0))
        .await
        .unwrap();
    let c = s
        .claim_due_runs(t(T0 + 30 * MIN), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].post.id, single.id);
    s.complete_run(
        c[0].run.id,
        c[0].token,
        &Published {
            message_ids: vec![40],
            at: t(T0 + 30 * MIN),
        },
        t(T0 + 30 * MIN),
    )
    .await
    .unwrap();
    let single = s.get_post(&w.owner, single.id).await.unwrap();
    assert_eq!(
        (single.state, single.next_run_at),
        (PostState::Finished, None)
    );
    assert_err!(
        s.update_post(
            &w.owner,
            single.id,
            &once(w.account, "2027-01-16T10:00"),
            t(T0)
        )
        .await,
        StoreError::Conflict(ErrorCode::PostFinished)
    );
}

async fn claims_sent_at_once_never_take_the_same_run(db: Stores) {
    let w = world(&db).await;
    for i in 0..12 {
        db.schedule
            .create_post(&w.owner, &daily(w.account, &format!("P{i}")), i, t(T0))
            .await
            .unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let store = Arc::clone(&db.schedule);
        claimers.push(tokio::spawn(async move {
            store
                .claim_due_runs(t(T0 + HOUR), LEASE, 5, &me())
                .await
                .unwrap()
        }));
    }
    let mut ids: Vec<PostRunId> = Vec::new();
    for c in claimers {
        ids.extend(c.await.unwrap().into_iter().map(|c| c.run.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a run was claimed twice");
    assert_eq!(total, 12);
    // Each post has exactly one next occurrence waiting.
    assert_eq!(
        count_where(&db, "post_runs", "status = 'scheduled'").await,
        12
    );
}

async fn expired_leases_are_reclaimed_and_stale_tokens_refused(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    s.create_post(&w.owner, &daily(w.account, "x"), 1, t(T0))
        .await
        .unwrap();
    let first = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Within the lease nobody else takes it.
    assert!(
        s.claim_due_runs(t(T0 + HOUR + 59_000), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    // The holder died: after the lease, it is taken again, marked reclaimed, with a new token.
    let second = s
        .claim_due_runs(t(T0 + HOUR + 61_000), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].run.id, first[0].run.id);
    assert!(second[0].reclaimed);
    assert_eq!((second[0].token, second[0].run.attempts), (2, 2));
    assert_eq!(
        second[0].random_id(0),
        first[0].random_id(0),
        "same random_id"
    );
    // The old holder's writes are refused; the new holder's succeed.
    let published = Published {
        message_ids: vec![9],
        at: t(T0 + HOUR),
    };
    assert_err!(
        s.complete_run(first[0].run.id, first[0].token, &published, t(T0 + HOUR))
            .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    assert_err!(
        s.fail_run(
            first[0].run.id,
            first[0].token,
            "x",
            RunFailure::Failed,
            t(T0 + HOUR)
        )
        .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    s.complete_run(second[0].run.id, second[0].token, &published, t(T0 + HOUR))
        .await
        .unwrap();
    // The next occurrence was created once, by the first claim.
    assert_eq!(
        count_where(&db, "post_runs", "status = 'scheduled'").await,
        1
    );
}

async fn failures_retry_outside_the_grace_period_or_end_the_run(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let post = s
        .create_post(&w.owner, &once(w.account, "2027-01-15T12:00"), 1, t(T0))
        .await
        .unwrap();
    let c = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    // FloodWait: retried an hour later, beyond the 15-minute grace period, and not missed.
    let retry_at = t(T0 + 2 * HOUR);
    let run = s
        .fail_run(
            c[0].run.id,
            c[0].token,
            "flood_wait",
            RunFailure::RetryAt(retry_at),
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    assert_eq!(
        (run.status, run.attempt_at, run.error.as_deref()),
        (RunStatus::Scheduled, retry_at, Some("flood_wait"))
    );
    assert_eq!(
        s.get_post(&w.owner, post.id).await.unwrap().state,
        PostState::Active
    );
    assert!(s.sweep_missed(t(T0 + 2 * HOUR)).await.unwrap().is_empty());
    assert!(
        s.claim_due_runs(t(T0 + 2 * HOUR - 1), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    let c = s
        .claim_due_runs(t(T0 + 2 * HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!((c.len(), c[0].token), (1, 2));
    // A bot send whose answer was lost ends uncertain, and the once post is finished.
    let run = s
        .fail_run(
            c[0].run.id,
            c[0].token,
            "send_uncertain",
            RunFailure::Uncertain,
            t(T0 + 2 * HOUR),
        )
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::SendUncertain);
    assert_eq!(
        s.get_post(&w.owner, post.id).await.unwrap().state,
        PostState::Finished
    );
    assert!(
        s.claim_due_runs(t(T0 + 3 * HOUR), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );

    // A permanent failure ends a recurring post's run; the post goes on.
    let daily_post = s
        .create_post(&w.owner, &daily(w.account, "d"), 2, t(T0))
        .await
        .unwrap();
    let c = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    let run = s
        .fail_run(
            c[0].run.id,
            c[0].token,
            "chat_write_forbidden",
            RunFailure::Failed,
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    assert_eq!(
        (run.status, run.error.as_deref()),
        (RunStatus::Failed, Some("chat_write_forbidden"))
    );
    let p = s.get_post(&w.owner, daily_post.id).await.unwrap();
    assert_eq!(
        (p.state, p.next_run_at),
        (PostState::Active, Some(t(T0 + 25 * HOUR)))
    );
}

async fn runs_late_past_their_grace_are_missed_and_recurring_posts_go_on(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let single = s
        .create_post(&w.owner, &once(w.account, "2027-01-15T12:00"), 1, t(T0))
        .await
        .unwrap();
    let recurring = s
        .create_post(&w.owner, &daily(w.account, "d"), 2, t(T0))
        .await
        .unwrap();
    // 14 minutes late: still within the grace period, nothing is missed and both are claimed.
    assert!(
        s.sweep_missed(t(T0 + HOUR + 14 * MIN))
            .await
            .unwrap()
            .is_empty()
    );
    // The server was down for a day and a half: both runs are missed.
    let late = t(T0 + 36 * HOUR);
    assert!(
        s.claim_due_runs(late, LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty(),
        "past the grace"
    );
    let missed = s.sweep_missed(late).await.unwrap();
    assert_eq!(missed.len(), 2);
    assert!(missed.iter().all(|r| r.status == RunStatus::Missed));
    assert!(s.sweep_missed(late).await.unwrap().is_empty(), "swept once");
    let single = s.get_post(&w.owner, single.id).await.unwrap();
    assert_eq!(single.state, PostState::Finished);
    // The recurring post waits for its next occurrence after now (day 3, 09:00 UTC).
    let recurring = s.get_post(&w.owner, recurring.id).await.unwrap();
    assert_eq!(recurring.next_run_at, Some(t(T0 + 49 * HOUR)));
    // A grace of 0 misses a run one millisecond late.
    let strict = s
        .create_post(
            &w.owner,
            &PostSpec {
                grace_minutes: 0,
                ..once(w.account, "2027-01-17T12:00")
            },
            3,
            late,
        )
        .await
        .unwrap();
    let due = strict.next_run_at.unwrap();
    assert!(
        s.claim_due_runs(t(due.0 + 1), LEASE, 10, &me())
            .await
            .unwrap()
            .iter()
            .all(|c| c.post.id != strict.id)
    );
    assert_eq!(s.sweep_missed(t(due.0 + 1)).await.unwrap().len(), 1);
}

async fn publish_now_replaces_a_once_posts_run_and_is_never_doubled(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let post = s
        .create_post(&w.owner, &once(w.account, "2027-01-20T10:00"), 1, t(T0))
        .await
        .unwrap();
    let run = s.publish_now(&w.admin, post.id, t(T0 + MIN)).await.unwrap();
    assert_eq!((run.trigger, run.due_at), (RunTrigger::Manual, t(T0 + MIN)));
    // Clicked twice (or at once from two tabs): refused while one waits or publishes.
    let again = s.publish_now(&w.owner, post.id, t(T0 + MIN)).await;
    assert_err!(again, StoreError::Conflict(ErrorCode::PostPublishing));
    let runs = runs_of(&db, &w.owner, &post).await;
    assert_eq!(runs.len(), 1, "the scheduled run was replaced: {runs:?}");
    let c = s
        .claim_due_runs(t(T0 + MIN), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_err!(
        s.update_post(
            &w.owner,
            post.id,
            &once(w.account, "2027-01-21T10:00"),
            t(T0 + MIN)
        )
        .await,
        StoreError::Conflict(ErrorCode::PostPublishing)
    );
    assert_err!(
        s.delete_post(&w.owner, post.id).await,
        StoreError::Conflict(ErrorCode::PostPublishing)
    );
    s.complete_run(
        c[0].run.id,
        c[0].token,
        &Published {
            message_ids: vec![1],
            at: t(T0 + MIN),
        },
        t(T0 + MIN),
    )
    .await
    .unwrap();
    assert_err!(
        s.publish_now(&w.owner, post.id, t(T0 + 2 * MIN)).await,
        StoreError::Conflict(ErrorCode::PostFinished)
    );

    // A recurring post keeps its schedule beside the manual run; parallel clicks make one run.
    let recurring = s
        .create_post(&w.owner, &daily(w.account, "d"), 2, t(T0))
        .await
        .unwrap();
    let mut clicks = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&db.schedule);
        let v = w.owner;
        let id = recurring.id;
        clicks.push(tokio::spawn(async move {
            store.publish_now(&v, id, t(T0 + 3 * MIN)).await
        }));
    }
    let mut ok = 0;
    for c in clicks {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(ErrorCode::PostPublishing)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let runs = runs_of(&db, &w.owner, &recurring).await;
    let mut kinds: Vec<RunTrigger> = runs.iter().map(|r| r.trigger).collect();
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(kinds, vec![RunTrigger::Manual, RunTrigger::Schedule]);
}

async fn follow_ups_are_claimed_done_and_a_delete_cancels_the_rest(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    let mut spec = daily(w.account, "Ad");
    spec.sender = PostSender::Bot { bot: w.bot };
    spec.follow_ups = FollowUps {
        pin_hours: Some(1),
        delete_after_hours: Some(24),
    };
    let post = s.create_post(&w.owner, &spec, 1, t(T0)).await.unwrap();
    assert_eq!(post.sender, PostSender::Bot { bot: w.bot });
    let c = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    // Nothing to act on before publication.
    assert_err!(
        s.add_action(
            &w.owner,
            c[0].run.id,
            ActionKind::Delete,
            None,
            t(T0),
            t(T0)
        )
        .await,
        StoreError::Conflict(ErrorCode::RunNotPublished)
    );
    let run = s
        .complete_run(
            c[0].run.id,
            c[0].token,
            &Published {
                message_ids: vec![100],
                at: t(T0 + HOUR),
            },
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    // The pin is due now; claimed once, even by claimers at once.
    let mut claimers = Vec::new();
    for _ in 0..3 {
        let store = Arc::clone(&db.schedule);
        claimers.push(tokio::spawn(async move {
            store
                .claim_due_actions(t(T0 + HOUR), LEASE, 10, &me())
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    assert_eq!(claimed.len(), 1);
    let pin = &claimed[0];
    assert_eq!(
        (pin.action.kind, pin.run.message_ids.clone()),
        (ActionKind::Pin, vec![100])
    );
    assert_eq!(pin.post.sender, PostSender::Bot { bot: w.bot });
    assert_err!(
        s.complete_action(pin.action.id, pin.token + 1, t(T0 + HOUR))
            .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    let done = s
        .complete_action(pin.action.id, pin.token, t(T0 + HOUR))
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.done_at),
        (ActionStatus::Done, Some(t(T0 + HOUR)))
    );
    // An edit now, which fails once and is retried.
    let edit = PostEdit {
        text: "Ad (updated)".into(),
        entities: vec![],
    };
    let a = s
        .add_action(
            &w.owner,
            run.id,
            ActionKind::Edit,
            Some(&edit),
            t(T0 + HOUR),
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    assert_eq!(a.edit.as_ref(), Some(&edit));
    assert_err!(
        s.add_action(&w.owner, run.id, ActionKind::Edit, None, t(T0), t(T0))
            .await,
        StoreError::Conflict(ErrorCode::ValidationFailed)
    );
    let c = s
        .claim_due_actions(t(T0 + HOUR), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    let retried = s
        .fail_action(
            c[0].action.id,
            c[0].token,
            "flood_wait",
            Some(t(T0 + HOUR + MIN)),
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    assert_eq!(retried.status, ActionStatus::Pending);
    let c = s
        .claim_due_actions(t(T0 + HOUR + MIN), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!((c.len(), c[0].token), (1, 2));
    s.complete_action(c[0].action.id, c[0].token, t(T0 + HOUR + MIN))
        .await
        .unwrap();
    // Deleting now cancels the pending unpin and the delete-after.
    s.add_action(
        &w.owner,
        run.id,
        ActionKind::Delete,
        None,
        t(T0 + 2 * MIN + HOUR),
        t(T0 + HOUR),
    )
    .await
    .unwrap();
    let c = s
        .claim_due_actions(t(T0 + HOUR + 2 * MIN), LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].action.kind, ActionKind::Delete);
    s.complete_action(c[0].action.id, c[0].token, t(T0 + HOUR + 2 * MIN))
        .await
        .unwrap();
    let actions = s.list_actions(&w.owner, run.id).await.unwrap();
    let unpin = actions
        .iter()
        .find(|a| a.kind == ActionKind::Unpin)
        .unwrap();
    assert_eq!(unpin.status, ActionStatus::Cancelled);
    assert!(
        s.claim_due_actions(t(T0 + 30 * HOUR), LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    assert_err!(
        s.add_action(&w.owner, run.id, ActionKind::Pin, None, t(T0), t(T0))
            .await,
        StoreError::Conflict(ErrorCode::RunNotPublished)
    );
    assert_eq!(
        s.next_schedule_wakeup().await.unwrap(),
        Some(t(T0 + 25 * HOUR))
    );
}

async fn an_instance_releases_its_own_leases_at_start_and_no_others(db: Stores) {
    let w = world(&db).await;
    let s = &db.schedule;
    for (i, text) in ["mine", "theirs", "followed"].into_iter().enumerate() {
        s.create_post(&w.owner, &daily(w.account, text), i as i64, t(T0))
            .await
            .unwrap();
    }
    // This instance and another one each hold a run...
    let mine = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 1, &me())
        .await
        .unwrap();
    let theirs = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 1, &other())
        .await
        .unwrap();
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    assert_eq!(mine[0].post.content.text, "mine");
    // ...and a follow-up action of a published run.
    let published = s
        .claim_due_runs(t(T0 + HOUR), LEASE, 1, &me())
        .await
        .unwrap();
    let run = s
        .complete_run(
            published[0].run.id,
            published[0].token,
            &Published {
                message_ids: vec![7],
                at: t(T0 + HOUR),
            },
            t(T0 + HOUR),
        )
        .await
        .unwrap();
    for kind in [ActionKind::Pin, ActionKind::Unpin] {
        s.add_action(&w.owner, run.id, kind, None, t(T0 + HOUR), t(T0 + HOUR))
            .await
            .unwrap();
    }
    let my_action = s
        .claim_due_actions(t(T0 + HOUR), LEASE, 1, &me())
        .await
        .unwrap();
    let their_action = s
        .claim_due_actions(t(T0 + HOUR), LEASE, 1, &other())
        .await
        .unwrap();
    assert_eq!((my_action.len(), their_action.len()), (1, 1));

    // This instance died and starts again 30 s later, well within the leases: it releases its
    // own, which are claimed again at once — as reclaimed runs with a new token and the same
    // random_id — while the other instance's stay held.
    let restart = t(T0 + HOUR + 30_000);
    assert_eq!(
        s.release_leases(&me(), restart).await.unwrap(),
        ReleasedLeases {
            runs: 1,
            actions: 1
        }
    );
    let released = s.get_run(&w.owner, mine[0].run.id).await.unwrap();
    assert_eq!(
        (released.status, released.attempt_at),
        (RunStatus::Publishing, restart),
        "released, not reset: still publishing"
    );
    let again = s.claim_due_runs(restart, LEASE, 10, &me()).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].run.id, mine[0].run.id);
    assert!(again[0].reclaimed);
    assert_eq!((again[0].token, again[0].run.attempts), (2, 2));
    assert_eq!(again[0].random_id(0), mine[0].random_id(0));
    let action_again = s
        .claim_due_actions(restart, LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(action_again.len(), 1);
    assert_eq!(action_again[0].action.id, my_action[0].action.id);
    assert_eq!(action_again[0].token, 2);
    // The old life's writes are refused.
    assert_err!(
        s.complete_run(
            mine[0].run.id,
            mine[0].token,
            &Published {
                message_ids: vec![8],
                at: restart
            },
            restart
        )
        .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    assert_err!(
        s.complete_action(my_action[0].action.id, my_action[0].token, restart)
            .await,
        StoreError::Conflict(ErrorCode::RunLeaseLost)
    );
    // Releasing for another instance's id touches nothing of this one's new claims, and the
    // other instance's leases end only when they expire.
    assert_eq!(
        s.release_leases(&InstanceId::parse("third").unwrap(), restart)
            .await
            .unwrap(),
        ReleasedLeases::default()
    );
    let before_expiry = t(T0 + HOUR + 59_000);
    assert!(
        s.claim_due_runs(before_expiry, LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_due_actions(before_expiry, LEASE, 10, &me())
            .await
            .unwrap()
            .is_empty()
    );
    let expired = t(T0 + HOUR + 61_000);
    let taken = s.claim_due_runs(expired, LEASE, 10, &me()).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].run.id, theirs[0].run.id);
    assert!(taken[0].reclaimed);
    let taken = s
        .claim_due_actions(expired, LEASE, 10, &me())
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].action.id, their_action[0].action.id);
}
