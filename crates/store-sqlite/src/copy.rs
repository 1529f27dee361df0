//! Reading the whole database table by table for `switchboard copy-db`: the application's
//! tables as the schema lists them (what the migrations made, without SQLite's own machinery:
//! `sqlite_sequence`, the FTS5 index and its shadow tables), their columns, and their rows in
//! `rowid` order, read in pages so a table of any size streams.

use crate::{Error, SqliteStore};
use sqlx::Row as _;
use switchboard_domain::table_copy::{Cell, ColumnKind, Row, TableShape, quoted};

impl SqliteStore {
    /// The application's tables, sorted (ordinary tables only, as `schema_columns` lists them).
    pub async fn copy_tables(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT name, wr FROM pragma_table_list \
             WHERE schema = 'main' AND type = 'table' \
               AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' \
             ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ReadSchema)?;
        let mut tables = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("name").map_err(Error::ReadSchema)?;
            let without_rowid: i64 = row.try_get("wr").map_err(Error::ReadSchema)?;
            if without_rowid != 0 {
                // Rows are paged by rowid; a table without one would need another key.
                return Err(Error::CopyValue {
                    table: name,
                    problem: "is a WITHOUT ROWID table, which copy-db cannot page through",
                });
            }
            tables.push(name);
        }
        Ok(tables)
    }

    /// The columns of `table`, in their declared order.
    pub async fn table_columns(&self, table: &str) -> Result<Vec<String>, Error> {
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::ReadSchema)
    }

    /// Up to `limit` rows of `shape`'s table after `rowid` `after`, in `rowid` order (the
    /// order they were inserted in for tables that only grow), each in `shape`'s column order
    /// and read as its kind says; with the last row's `rowid`.
    pub async fn read_rows(
        &self,
        shape: &TableShape,
        after: i64,
        limit: u32,
    ) -> Result<(Vec<Row>, Option<i64>), Error> {
        let sql = format!(
            "SELECT rowid AS copy_rowid, {} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            shape.column_list(),
            quoted(&shape.name)
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|source| Error::Copy {
                table: shape.name.clone(),
                source,
            })?;
        let mut out = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in &rows {
            last = Some(row.try_get::<i64, _>(0).map_err(|source| Error::Copy {
                table: shape.name.clone(),
                source,
            })?);
            let mut cells = Vec::with_capacity(shape.columns.len());
            for (i, column) in shape.columns.iter().enumerate() {
                cells.push(
                    cell(row, i + 1, column.kind).map_err(|problem| Error::CopyValue {
                        table: format!("{}.{}", shape.name, column.name),
                        problem,
                    })?,
                );
            }
            out.push(cells);
        }
        Ok((out, last))
    }

    /// The highest value `AUTOINCREMENT` has handed out for `table` (it counts deleted rows,
    /// so ids are never reused); `None` if it has none.
    pub async fn sequence_value(&self, table: &str) -> Result<Option<i64>, Error> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = 'sqlite_sequence')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(Error::ReadSchema)?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = ?1")
            .bind(table)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::ReadSchema)
    }
}

fn cell(row: &sqlx::sqlite::SqliteRow, i: usize, kind: ColumnKind) -> Result<Cell, &'static str> {
    const WRONG: &str = "holds a value of another type than its column declares";
    Ok(match kind {
        ColumnKind::SmallInt | ColumnKind::Integer | ColumnKind::BigInt => row
            .try_get::<Option<i64>, _>(i)
            .map_err(|_| WRONG)?
            .map_or(Cell::Null, Cell::Int),
        ColumnKind::Boolean => match row.try_get::<Option<i64>, _>(i).map_err(|_| WRONG)? {
            None => Cell::Null,
            Some(0) => Cell::Bool(false),
            Some(1) => Cell::Bool(true),
            Some(_) => return Err("holds a boolean other than 0 or 1"),
        },
        ColumnKind::Text => row
            .try_get::<Option<String>, _>(i)
            .map_err(|_| WRONG)?
            .map_or(Cell::Null, Cell::Text),
        ColumnKind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .map_err(|_| WRONG)?
            .map_or(Cell::Null, Cell::Bytes),
        ColumnKind::Json => match row.try_get::<Option<String>, _>(i).map_err(|_| WRONG)? {
            None => Cell::Null,
            Some(text) => Cell::Json(
                serde_json::from_str(&text).map_err(|_| "holds text that is not valid JSON")?,
            ),
        },
        ColumnKind::Real => row
            .try_get::<Option<f64>, _>(i)
            .map_err(|_| WRONG)?
            .map_or(Cell::Null, Cell::Real),
    })
}
