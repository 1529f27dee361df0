//! `switchboard copy-db --to postgres://…`: moves an installation from SQLite to PostgreSQL.
//! The SQLite database must be stopped (its lock is taken for the whole copy, so a running
//! server makes it refuse) and the PostgreSQL database empty (no table holding a row); the
//! target is migrated to this release's schema, then every table the schema has — read from
//! the schema, not listed here, so tables added by later migrations are copied too — is copied
//! row for row in one transaction, parents before the rows that refer to them, values as they
//! are (sealed secrets byte for byte: the same master key opens them), and each table's id
//! sequence is moved past the copied ids. A failure rolls the whole copy back.
//!
//! The file store (`<data_dir>/files`) and the master key stay where they are: the PostgreSQL
//! installation uses the same data directory.

use crate::config::{Config, redact_url};
use crate::data_lock::DataLock;
use anyhow::{Context, bail, ensure};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use switchboard_domain::table_copy::TableShape;
use switchboard_store_postgres::PgStore;
use switchboard_store_sqlite::SqliteStore;

/// Rows read from SQLite and written to PostgreSQL at a time.
const BATCH: u32 = 1_000;
/// A progress line is printed at least this often within a large table.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What happened to one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopied {
    /// The table.
    pub table: String,
    /// Rows copied.
    pub rows: u64,
}

/// What `copy-db` did.
#[derive(Debug)]
pub struct CopyReport {
    /// Every table, in the order they were copied.
    pub tables: Vec<TableCopied>,
    /// The SQLite database copied from.
    pub source: String,
    /// The PostgreSQL database copied to (without its password).
    pub target: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl CopyReport {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// A step of the copy, for a progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The target was checked empty and migrated; `tables` will be copied.
    Planned {
        /// How many tables.
        tables: usize,
    },
    /// Some rows of a table are copied (not yet committed).
    Rows {
        /// The table.
        table: &'a str,
        /// Rows so far.
        rows: u64,
    },
    /// A table is copied.
    Table(&'a TableCopied),
}

/// Copies the stopped SQLite installation `config` names into the empty PostgreSQL database at
/// `to`, reporting each step to `progress`.
pub async fn copy_db(
    config: &Config,
    to: &str,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> anyhow::Result<CopyReport> {
    let started = Instant::now();
    let source_url = config.database_url();
    ensure!(
        source_url.starts_with("sqlite:"),
        "copy-db copies a SQLite installation into PostgreSQL, and database.url already names \
         {}",
        redact_url(&source_url)
    );
    let to = to.trim();
    ensure!(
        to.starts_with("postgres://") || to.starts_with("postgresql://"),
        "--to must be a PostgreSQL URL (postgres://user:password@host:port/database)"
    );
    let target_name = redact_url(to);
    let file = crate::backup::sqlite_path(&source_url);
    ensure!(
        file.is_file(),
        "there is no SQLite database at {}",
        file.display()
    );
    // Held to the end: the server cannot start on the database while it is copied.
    let _lock = DataLock::acquire(config, "copy-db")?;

    let source = switchboard_store_sqlite::connect(&source_url, &Default::default())
        .await
        .with_context(|| format!("opening the SQLite database {}", file.display()))?;
    let result = copy_between(&source, to, &target_name, progress).await;
    source.close().await;
    let tables = result?;
    Ok(CopyReport {
        tables,
        source: file.display().to_string(),
        target: target_name,
        elapsed: started.elapsed(),
    })
}

async fn copy_between(
    source: &SqliteStore,
    to: &str,
    target_name: &str,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> anyhow::Result<Vec<TableCopied>> {
    source
        .migrate()
        .await
        .context("bringing the SQLite database to this release's schema")?;
    let target = switchboard_store_postgres::connect(to, &Default::default())
        .await
        .with_context(|| format!("connecting to PostgreSQL {target_name}"))?;
    let result = copy_into(source, &target, target_name, progress).await;
    target.close().await;
    result
}

async fn copy_into(
    source: &SqliteStore,
    target: &PgStore,
    target_name: &str,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> anyhow::Result<Vec<TableCopied>> {
    let source_tables: BTreeSet<String> = source.copy_tables().await?.into_iter().collect();
    // Checked before anything is written: rows anywhere, or tables that are not ours.
    let filled = target.tables_with_rows().await?;
    ensure!(
        filled.is_empty(),
        "the PostgreSQL database {target_name} is not empty ({} hold rows): copy-db copies only \
         into an empty database; create a new one (createdb) and copy into that",
        filled.join(", ")
    );
    let strangers: Vec<String> = target
        .copy_tables()
        .await?
        .into_iter()
        .filter(|t| !source_tables.contains(t))
        .collect();
    ensure!(
        strangers.is_empty(),
        "the PostgreSQL database {target_name} holds tables that are not Switchboard's ({}): \
         copy into a new, empty database",
        strangers.join(", ")
    );
    target
        .migrate()
        .await
        .context("migrating the PostgreSQL database")?;
    let shapes = target.table_shapes().await?;
    check_same_tables(source, &source_tables, &shapes).await?;
    progress(Progress::Planned {
        tables: shapes.len(),
    });

    let mut copy = target.begin_copy().await?;
    let mut done = Vec::with_capacity(shapes.len());
    for shape in &shapes {
        let mut rows = 0;
        let mut after = 0;
        let mut shown = Instant::now();
        loop {
            let (batch, last) = source.read_rows(shape, after, BATCH).await?;
            let Some(last) = last else { break };
            after = last;
            rows += copy.insert(shape, batch).await?;
            if shown.elapsed() >= PROGRESS_EVERY {
                progress(Progress::Rows {
                    table: &shape.name,
                    rows,
                });
                shown = Instant::now();
            }
        }
        copy.advance_sequences(shape, source.sequence_value(&shape.name).await?)
            .await?;
        let table = TableCopied {
            table: shape.name.clone(),
            rows,
        };
        progress(Progress::Table(&table));
        done.push(table);
    }
    copy.commit().await?;
    Ok(done)
}

/// Both databases have the same tables with the same columns: what this release's migrations
/// make on each. A difference means a migration of one backend is missing on the other.
async fn check_same_tables(
    source: &SqliteStore,
    source_tables: &BTreeSet<String>,
    shapes: &[TableShape],
) -> anyhow::Result<()> {
    let target_tables: BTreeSet<String> = shapes.iter().map(|s| s.name.clone()).collect();
    if &target_tables != source_tables {
        bail!(
            "the two schemas differ: only in SQLite {:?}, only in PostgreSQL {:?}",
            source_tables.difference(&target_tables).collect::<Vec<_>>(),
            target_tables.difference(source_tables).collect::<Vec<_>>()
        );
    }
    for shape in shapes {
        let theirs: BTreeSet<String> = source
            .table_columns(&shape.name)
            .await?
            .into_iter()
            .collect();
        let ours: BTreeSet<String> = shape.columns.iter().map(|c| c.name.clone()).collect();
        ensure!(
            theirs == ours,
            "table {} has other columns in SQLite ({theirs:?}) than in PostgreSQL ({ours:?})",
            shape.name
        );
    }
    Ok(())
}
