//! Ingestion throughput of the account port on both backends: batches of 1,000 messages, each
//! stored in one transaction, into fresh chats, into known chats, and re-delivered (all
//! duplicates); and, for contrast, one message per call. Prints the median time per batch and
//! messages per second. Run with `cargo bench -p switchboard-tests --bench ingest` (or
//! `cargo test -p switchboard-tests --bench ingest` for a quick unoptimised pass).

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::{Duration, Instant};
use switchboard_domain::{
    AccountId, AccountStatus, Direction, IncomingMessage, NewAccount, PeerKind, Timestamp,
};
use switchboard_tests::db::{Backend, TestDb};

const BATCH: i64 = 1_000;
const ROUNDS: i64 = 15;
const SINGLES: i64 = 300;

fn message(peer_id: i64, tg_id: i64) -> IncomingMessage {
    let direction = if tg_id % 4 == 0 {
        Direction::Out
    } else {
        Direction::In
    };
    IncomingMessage {
        peer_id,
        peer_kind: PeerKind::User,
        chat_title: format!("Customer {peer_id}"),
        chat_username: Some(format!("customer{peer_id}")),
        tg_message_id: tg_id,
        direction,
        sender_id: Some(peer_id),
        sender_name: Some(format!("Customer {peer_id}")),
        text: format!("Hello, I would like to order item number {tg_id}, is it in stock?"),
        entities: vec![switchboard_domain::Entity::new(
            switchboard_domain::EntityKind::Bold,
            0,
            5,
        )],
        media: None,
        reply_to_tg_id: None,
        sent_at: Timestamp(1_700_000_000_000 + tg_id),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(backend: Backend, case: &str, per_call: Duration, messages_per_call: i64) {
    let rate = messages_per_call as f64 / per_call.as_secs_f64();
    println!(
        "{:<8} {case:<44} {:>9.2} ms/call {:>10.0} msg/s",
        backend.name(),
        per_call.as_secs_f64() * 1_000.0,
        rate
    );
}

async fn bench(backend: Backend) {
    let Some(db) = TestDb::fresh(backend).await else {
        println!("{}: skipped (no server)", backend.name());
        return;
    };
    let stores = db.stores();
    let ws = stores
        .store
        .create_workspace("Bench", Timestamp(1))
        .await
        .unwrap();
    let new = NewAccount {
        workspace_id: ws.id,
        phone: Some("79000000000".to_string()),
        telegram_user_id: Some(1),
        first_name: "Bench".to_string(),
        last_name: None,
        username: None,
        status: AccountStatus::Connected,
        active: true,
        ingest_groups: false,
        api_id: None,
        api_hash_sealed: None,
    };
    let account: AccountId = stores
        .accounts
        .create_account(&new, Timestamp(1))
        .await
        .unwrap()
        .id;
    let accounts = &stores.accounts;
    let mut next_id = 1;

    // 1,000 messages, each from a new customer: 1,000 chats created per batch.
    let mut samples = Vec::new();
    for round in 0..ROUNDS {
        let batch: Vec<_> = (0..BATCH)
            .map(|i| message(1_000_000 + round * BATCH + i, next_id + i))
            .collect();
        next_id += BATCH;
        let start = Instant::now();
        let out = accounts
            .ingest_messages(account, &batch, Timestamp(2))
            .await
            .unwrap();
        samples.push(start.elapsed());
        assert_eq!(out.inserted.len(), 1_000);
    }
    report(
        backend,
        "1,000 msgs, 1,000 new chats",
        median(samples),
        BATCH,
    );

    // 1,000 messages into 20 known chats (steady state).
    let mut samples = Vec::new();
    let mut last = Vec::new();
    for _ in 0..ROUNDS {
        let batch: Vec<_> = (0..BATCH)
            .map(|i| message(1_000_000 + i % 20, next_id + i))
            .collect();
        next_id += BATCH;
        let start = Instant::now();
        let out = accounts
            .ingest_messages(account, &batch, Timestamp(3))
            .await
            .unwrap();
        samples.push(start.elapsed());
        assert_eq!(out.inserted.len(), 1_000);
        last = batch;
    }
    report(
        backend,
        "1,000 msgs, 20 known chats",
        median(samples),
        BATCH,
    );

    // The last batch again: every message a duplicate.
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let out = accounts
            .ingest_messages(account, &last, Timestamp(4))
            .await
            .unwrap();
        samples.push(start.elapsed());
        assert!(out.inserted.is_empty());
    }
    report(
        backend,
        "1,000 msgs, all duplicates",
        median(samples),
        BATCH,
    );

    // One message per call (one transaction each), for contrast.
    let start = Instant::now();
    for i in 0..SINGLES {
        let batch = [message(1_000_000 + i % 20, next_id + i)];
        accounts
            .ingest_messages(account, &batch, Timestamp(5))
            .await
            .unwrap();
    }
    let per_call = start.elapsed() / u32::try_from(SINGLES).unwrap();
    report(
        backend,
        "1 msg per call (one transaction each)",
        per_call,
        1,
    );

    db.drop_db().await;
}

fn main() {
    switchboard_tests::db::bench_runtime().block_on(async {
        for backend in Backend::ALL {
            bench(backend).await;
        }
    });
}
