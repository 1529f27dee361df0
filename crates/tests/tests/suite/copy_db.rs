//! `switchboard copy-db`: a SQLite installation filled the way the demo fills it (its account
//! and bot connected to tgsim's demo world, customers writing to both, operator replies, the
//! lead task and its leads) is copied into an empty PostgreSQL database; every table is
//! compared row for row (sealed secrets byte for byte), no table of the schema is left out,
//! and a server started on the copy finds every account connected and every message, and
//! hands out new ids past the copied ones. The refusals: a running server, a database that
//! holds rows or tables that are not Switchboard's, a source that is not SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sqlx::Executor;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard::Config;
use switchboard::copy_db::{Progress, copy_db};
use switchboard::demo;
use switchboard_domain::table_copy::{Cell, Row, TableShape};
use switchboard_store_sqlite::SqliteStore;
use switchboard_tests::app::Browser;
use switchboard_tests::db::empty_postgres;
use switchboard_tests::live::{eventually, reply};

/// Rows of every table of the SQLite database, by table, sorted (for comparing contents).
async fn sqlite_tables(url: &str, shapes: &[TableShape]) -> BTreeMap<String, Vec<Row>> {
    let store = switchboard_store_sqlite::connect(url, &Default::default())
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for shape in shapes {
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let (batch, last) = store.read_rows(shape, after, 500).await.unwrap();
            let Some(last) = last else { break };
            after = last;
            rows.extend(batch);
        }
        out.insert(shape.name.clone(), sorted(rows));
    }
    store.close().await;
    out
}

/// Rows in one order whatever order each database returns them in (JSON keys sorted:
/// PostgreSQL's `JSONB` keeps its own key order).
fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    fn canonical(v: &Value) -> String {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let inner: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{k:?}:{}", canonical(&map[k])))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
            Value::Array(items) => {
                format!(
                    "[{}]",
                    items.iter().map(canonical).collect::<Vec<_>>().join(",")
                )
            }
            other => other.to_string(),
        }
    }
    rows.sort_by_cached_key(|r| {
        r.iter()
            .map(|c| match c {
                Cell::Json(v) => canonical(v),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    });
    rows
}

async fn count(store: &SqliteStore, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn get(b: &Browser, path: &str) -> Value {
    b.get(path).await.json().await.unwrap()
}

/// `copy-db` refuses, saying `why`.
async fn refused(config: &Config, to: &str, why: &str) {
    let err = copy_db(config, to, &mut |_| {}).await.unwrap_err();
    assert!(format!("{err:#}").contains(why), "{err:#}");
}

/// Every message of every chat, through the API: id → text.
async fn api_messages(b: &Browser) -> BTreeMap<i64, String> {
    let chats = get(b, "/api/v1/chats?limit=200").await;
    let mut ids = BTreeMap::new();
    for chat in chats["chats"].as_array().unwrap() {
        let mut before: Option<i64> = None;
        loop {
            let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
            let page = get(
                b,
                &format!("/api/v1/chats/{}/messages?limit=200{q}", chat["id"]),
            )
            .await;
            let msgs = page["messages"].as_array().cloned().unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            before = msgs.last().and_then(|m| m["id"].as_i64());
            ids.extend(
                msgs.iter()
                    .filter_map(|m| Some((m["id"].as_i64()?, m["text"].as_str()?.to_string()))),
            );
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_installation_moves_to_postgres_whole() {
    let Some(pg) = empty_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let world = demo::start_world(&mut config).await.unwrap();

    // --- A SQLite installation, filled the way the demo fills it. ---
    let running = switchboard::start(&config).await.unwrap();
    let (username, password) = demo::prepare(&*running.store, &running.auth).await.unwrap();
    let ws = demo::first_workspace(&*running.store, "Demo")
        .await
        .unwrap();
    demo::connect_owner(&running, &world, ws).await.unwrap();
    demo::wait_connected(&running, ws).await;
    demo::connect_bot(&running, ws).await.unwrap();
    demo::create_lead_task(&running, ws).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let customers = demo::simulate_customers(
        &world,
        Duration::from_millis(200),
        stop.clone(),
        &running.workers.tasks("demo_customers"),
    );
    let sqlite = switchboard_store_sqlite::connect(&config.database_url(), &Default::default())
        .await
        .unwrap();
    let admin = Browser::sign_in(&running.url(), &username, &password).await;
    // Job ads in the task's channel, once the account reads it: leads.
    let Some(tgsim::Peer::Channel(channel)) = world.sim.resolve_username("rust_go_jobs") else {
        panic!("the demo world has no job channel");
    };
    eventually(30, "the lead source to be joined", || async {
        (count(&sqlite, "lead_sources WHERE state = 'joined'").await > 0).then_some(())
    })
    .await;
    for ad in tgsim::demo_channel_ads("rust_go_jobs") {
        world
            .sim
            .post_to_channel(channel, tgsim::OutgoingMessage::text(*ad))
            .unwrap();
    }
    eventually(30, "messages, leads and bot chats", || async {
        let ready = count(&sqlite, "messages").await >= 12
            && count(&sqlite, "leads").await >= 1
            && count(&sqlite, "chats WHERE bot_id IS NOT NULL").await >= 1;
        ready.then_some(())
    })
    .await;
    stop.cancel();
    customers.await.unwrap();
    // An operator's reply through the API, so the outbox has a row.
    let chats = get(&admin, "/api/v1/chats?limit=200").await;
    let chat = chats["chats"][0]["id"].as_i64().unwrap();
    reply(&admin, chat, "ответ оператора").await;
    eventually(20, "the reply to be sent", || async {
        (count(&sqlite, "outbox WHERE state = 'sent'").await > 0).then_some(())
    })
    .await;

    // --- While the server runs, copy-db refuses and writes nothing. ---
    refused(&config, pg.url(), "in use").await;
    assert!(pg.store().copy_tables().await.unwrap().is_empty());

    running.shutdown().await.unwrap();
    sqlite.close().await;

    // --- A target that holds rows, or tables that are not ours, is refused untouched. ---
    let Some(other) = empty_postgres().await else {
        return;
    };
    other
        .store()
        .pool()
        .execute("CREATE TABLE not_switchboard (x int)")
        .await
        .unwrap();
    refused(&config, other.url(), "not_switchboard").await;
    other
        .store()
        .pool()
        .execute("INSERT INTO not_switchboard VALUES (1)")
        .await
        .unwrap();
    refused(&config, other.url(), "not empty").await;
    assert_eq!(
        other.store().copy_tables().await.unwrap(),
        ["not_switchboard"],
        "nothing was written"
    );
    other.drop_db().await;

    // --- The copy. ---
    let mut steps = Vec::new();
    let report = copy_db(&config, pg.url(), &mut |step| {
        if let Progress::Table(t) = step {
            steps.push(t.clone());
        }
    })
    .await
    .unwrap();
    assert_eq!(
        steps, report.tables,
        "each table was reported as it was copied"
    );

    // Every table of the schema was copied: none is left out, whatever migrations add.
    let source = switchboard_store_sqlite::connect(&config.database_url(), &Default::default())
        .await
        .unwrap();
    let in_schema: BTreeSet<String> = source.copy_tables().await.unwrap().into_iter().collect();
    source.close().await;
    let copied: BTreeSet<String> = report.tables.iter().map(|t| t.table.clone()).collect();
    assert_eq!(copied, in_schema, "copy-db left tables out");
    let in_target: BTreeSet<String> = pg
        .store()
        .copy_tables()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(in_target, in_schema);

    // Row for row, value for value (sealed secrets byte for byte).
    let shapes = pg.store().table_shapes().await.unwrap();
    let before = sqlite_tables(&config.database_url(), &shapes).await;
    for shape in &shapes {
        let theirs = &before[&shape.name];
        let ours = sorted(pg.store().read_table(shape).await.unwrap());
        assert_eq!(&ours, theirs, "table {} differs after the copy", shape.name);
        let reported = report
            .tables
            .iter()
            .find(|t| t.table == shape.name)
            .unwrap();
        assert_eq!(reported.rows, theirs.len() as u64, "{}", shape.name);
    }
    for table in [
        "workspaces",
        "users",
        "memberships",
        "accounts",
        "account_dc_keys",
        "account_peers",
        "bots",
        "bot_updates",
        "chats",
        "messages",
        "outbox",
        "audit_events",
        "lead_tasks",
        "lead_sources",
        "leads",
    ] {
        assert!(!before[table].is_empty(), "the demo left {table} empty");
    }

    // --- The server on the copy: every account connected, every message there. ---
    let mut on_pg = config.clone();
    on_pg.database.url = Some(switchboard_services::Secret::new(pg.url()));
    let running = switchboard::start(&on_pg).await.unwrap();
    let admin = Browser::sign_in(&running.url(), &username, &password).await;
    let connected = eventually(30, "every account and bot to connect", || async {
        let accounts = get(&admin, "/api/v1/accounts").await;
        let bots = get(&admin, "/api/v1/bots").await;
        let all = |v: &Value, key: &str| {
            let list = v[key].as_array().cloned().unwrap_or_default();
            !list.is_empty() && list.iter().all(|a| a["status"] == "connected")
        };
        (all(&accounts, "accounts") && all(&bots, "bots")).then_some(accounts)
    })
    .await;
    assert_eq!(
        connected["accounts"].as_array().unwrap().len(),
        before["accounts"].len()
    );
    let copied_ids: BTreeSet<i64> = before["messages"]
        .iter()
        .map(|r| match &r[0] {
            Cell::Int(id) => *id,
            other => panic!("messages.id is {other:?}"),
        })
        .collect();
    assert_eq!(
        shapes
            .iter()
            .find(|s| s.name == "messages")
            .unwrap()
            .columns[0]
            .name,
        "id"
    );
    let shown: BTreeSet<i64> = api_messages(&admin).await.into_keys().collect();
    let newest = *copied_ids.iter().max().unwrap();
    assert!(
        copied_ids.is_subset(&shown),
        "copied messages missing from the API: {:?}",
        copied_ids.difference(&shown).collect::<Vec<_>>()
    );
    // Anything more is what Telegram delivered since (the account catches up), under new ids.
    assert!(
        shown.difference(&copied_ids).all(|id| *id > newest),
        "a new message reuses a copied id: {shown:?}"
    );

    // A customer writes after the move: it arrives live, under an id past every copied one.
    let customer = world.customers[0].id;
    world
        .sim
        .send_message(
            customer,
            tgsim::Peer::User(world.owner.id),
            tgsim::OutgoingMessage::text("after the move"),
        )
        .unwrap();
    let id = eventually(30, "the new message on PostgreSQL", || async {
        api_messages(&admin)
            .await
            .into_iter()
            .find(|(_, text)| text == "after the move")
            .map(|(id, _)| id)
    })
    .await;
    assert!(
        id > newest,
        "message {id} reuses an id at or below {newest}"
    );

    // The copy is no longer empty: a second copy-db refuses it.
    running.shutdown().await.unwrap();
    refused(&config, pg.url(), "not empty").await;
    // And a PostgreSQL installation is not a source.
    refused(&on_pg, pg.url(), "SQLite installation").await;

    world.sim.shutdown().await;
    pg.drop_db().await;
}
