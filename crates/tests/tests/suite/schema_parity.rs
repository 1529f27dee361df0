//! Both backends expose the same schema (tables and columns) and the same migrations, and
//! migrating an up-to-date database changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_domain::{Store, Timestamp};
use switchboard_store_postgres::PgStore;
use switchboard_store_sqlite::SqliteStore;
use switchboard_tests::db::{empty_postgres, fresh_postgres, fresh_sqlite, sqlite_url};

#[test]
fn both_backends_embed_the_same_migrations() {
    let sqlite = SqliteStore::migrations();
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, PgStore::migrations());
}

#[tokio::test]
async fn both_backends_have_the_same_tables_and_columns() {
    let (_dir, sqlite) = fresh_sqlite().await;
    let sqlite_columns = sqlite.schema_columns().await.unwrap();
    assert!(sqlite_columns.contains(&("users".to_string(), "username".to_string())));

    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let pg_columns = pg.store().schema_columns().await.unwrap();
    pg.drop_db().await;

    let only_sqlite: Vec<_> = sqlite_columns
        .iter()
        .filter(|c| !pg_columns.contains(c))
        .collect();
    let only_pg: Vec<_> = pg_columns
        .iter()
        .filter(|c| !sqlite_columns.contains(c))
        .collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "schemas differ: only on SQLite {only_sqlite:?}, only on PostgreSQL {only_pg:?}"
    );
    assert_eq!(sqlite_columns, pg_columns);
}

/// Key rotation re-wraps the columns of `SEALED_COLUMNS`; a secret kept in a column missing
/// from that list would stay under the old key and become unreadable when it is dropped.
#[tokio::test]
async fn every_binary_column_is_a_listed_sealed_column() {
    let listed: Vec<(String, String)> = {
        let mut l: Vec<_> = switchboard_domain::SEALED_COLUMNS
            .iter()
            .map(|c| (c.table.to_string(), c.column.to_string()))
            .collect();
        l.sort();
        l
    };
    for backend in switchboard_tests::db::Backend::ALL {
        let listed = listed.clone();
        switchboard_tests::db::run_accounts_on(backend, |db| async move {
            let binary = db.binary_columns().await;
            assert_eq!(
                binary, listed,
                "every binary column holds sealed secrets and must be in SEALED_COLUMNS \
                 (crates/domain/src/sealed.rs), and every listed column must exist"
            );
            for column in switchboard_domain::SEALED_COLUMNS {
                let names = db.store.schema_columns().await.unwrap();
                for key in column.key {
                    assert!(
                        names.contains(&(column.table.to_string(), key.to_string())),
                        "{}.{key} (the key of {}) does not exist",
                        column.table,
                        column.column
                    );
                }
                assert!(db.store.sealed_values(column).await.unwrap().is_empty());
            }
        })
        .await;
    }
}

#[tokio::test]
async fn migrating_twice_is_a_no_op_on_sqlite() {
    let (dir, store) = fresh_sqlite().await;
    let before = store.schema_columns().await.unwrap();
    let ws = store.create_workspace("Acme", Timestamp(1)).await.unwrap();

    store.migrate().await.unwrap();
    assert_eq!(store.schema_columns().await.unwrap(), before);
    assert_eq!(store.get_workspace(ws.id).await.unwrap(), ws);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied(count), SqliteStore::migrations().len());

    // So is migrating on a second start.
    store.close().await;
    let reopened = switchboard_store_sqlite::connect(&sqlite_url(dir.path()), &Default::default())
        .await
        .unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.schema_columns().await.unwrap(), before);
    assert_eq!(reopened.get_workspace(ws.id).await.unwrap(), ws);
}

#[tokio::test]
async fn migrating_twice_is_a_no_op_on_postgres() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let store = db.store();
    let before = store.schema_columns().await.unwrap();
    let ws = store.create_workspace("Acme", Timestamp(1)).await.unwrap();

    store.migrate().await.unwrap();
    assert_eq!(store.schema_columns().await.unwrap(), before);
    assert_eq!(store.get_workspace(ws.id).await.unwrap(), ws);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied(count), PgStore::migrations().len());
    db.drop_db().await;
}

#[tokio::test]
async fn migrations_build_the_schema_from_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let sqlite = switchboard_store_sqlite::connect(&url, &Default::default())
        .await
        .unwrap();
    assert!(sqlite.schema_columns().await.unwrap().is_empty());
    sqlite.migrate().await.unwrap();
    let sqlite_columns = sqlite.schema_columns().await.unwrap();
    assert!(!sqlite_columns.is_empty());

    let Some(db) = empty_postgres().await else {
        return;
    };
    assert!(db.store().schema_columns().await.unwrap().is_empty());
    db.store().migrate().await.unwrap();
    assert_eq!(db.store().schema_columns().await.unwrap(), sqlite_columns);
    db.drop_db().await;
}

fn applied(count: i64) -> usize {
    usize::try_from(count).unwrap()
}
