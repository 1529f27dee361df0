//! Writing a whole database table by table for `switchboard copy-db`: the application's tables
//! as this schema declares them (column kinds, generated columns), in an order where every
//! table follows the tables its foreign keys point to; a transaction that inserts rows in
//! batches and moves each table's sequences past the copied ids; and reading a table back
//! whole, for comparing the copy with its source.

use crate::{Error, PgStore};
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;
use switchboard_domain::table_copy::{
    Cell, ColumnKind, ColumnShape, Row, TableShape, dependency_order, quoted,
};

/// Most bind parameters PostgreSQL takes in one statement is 65,535.
const MAX_PARAMS: usize = 65_535;
/// Rows per `INSERT`.
const MAX_ROWS: usize = 1_000;

impl PgStore {
    /// Tables of the current schema (but sqlx's `_sqlx_migrations`), sorted.
    pub async fn copy_tables(&self) -> Result<Vec<String>, Error> {
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
               AND table_name <> '_sqlx_migrations' ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ReadSchema)
    }

    /// The tables of [`PgStore::copy_tables`] that hold at least one row.
    pub async fn tables_with_rows(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for table in self.copy_tables().await? {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(&table));
            let any: bool = sqlx::query_scalar(&sql)
                .fetch_one(&self.pool)
                .await
                .map_err(Error::ReadSchema)?;
            if any {
                out.push(table);
            }
        }
        Ok(out)
    }

    /// Every table's shape, parents before the tables that refer to them. A column of a type
    /// the copy does not know, or a cycle of foreign keys, is an error here, before anything is
    /// written.
    pub async fn table_shapes(&self) -> Result<Vec<TableShape>, Error> {
        let tables = self.copy_tables().await?;
        let edges: Vec<(String, String)> = sqlx::query_as(
            "SELECT r.relname::text, f.relname::text FROM pg_constraint c \
             JOIN pg_class r ON r.oid = c.conrelid JOIN pg_class f ON f.oid = c.confrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE c.contype = 'f' AND n.nspname = current_schema()",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(Error::ReadSchema)?;
        let order = dependency_order(&tables, &edges).map_err(|cycle| Error::CopyValue {
            table: cycle.join(", "),
            problem: "refer to each other in a cycle, which copy-db cannot order",
        })?;
        let mut shapes = Vec::with_capacity(order.len());
        for table in order {
            let rows = sqlx::query(
                "SELECT column_name::text AS name, data_type::text AS type, \
                        (is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%') \
                            AS generated \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(&table)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::ReadSchema)?;
            let mut columns = Vec::with_capacity(rows.len());
            let mut generated = Vec::new();
            for row in rows {
                let name: String = row.try_get("name").map_err(Error::ReadSchema)?;
                let ty: String = row.try_get("type").map_err(Error::ReadSchema)?;
                let kind = match ty.as_str() {
                    "smallint" => ColumnKind::SmallInt,
                    "integer" => ColumnKind::Integer,
                    "bigint" => ColumnKind::BigInt,
                    "boolean" => ColumnKind::Boolean,
                    "text" | "character varying" => ColumnKind::Text,
                    "bytea" => ColumnKind::Bytes,
                    "jsonb" | "json" => ColumnKind::Json,
                    "double precision" | "real" => ColumnKind::Real,
                    _ => {
                        return Err(Error::CopyValue {
                            table: format!("{table}.{name}"),
                            problem: "has a column type copy-db does not know how to copy",
                        });
                    }
                };
                if row
                    .try_get::<bool, _>("generated")
                    .map_err(Error::ReadSchema)?
                {
                    generated.push(name.clone());
                }
                columns.push(ColumnShape { name, kind });
            }
            shapes.push(TableShape {
                name: table,
                columns,
                generated,
            });
        }
        Ok(shapes)
    }

    /// Every row of a table, in no particular order, read as the shape's kinds say.
    pub async fn read_table(&self, shape: &TableShape) -> Result<Vec<Row>, Error> {
        let columns: Vec<String> = shape
            .columns
            .iter()
            .map(|c| match c.kind {
                ColumnKind::SmallInt | ColumnKind::Integer => format!("{}::int8", quoted(&c.name)),
                ColumnKind::Json => format!("{}::text", quoted(&c.name)),
                ColumnKind::Real => format!("{}::float8", quoted(&c.name)),
                _ => quoted(&c.name),
            })
            .collect();
        let sql = format!("SELECT {} FROM {}", columns.join(", "), quoted(&shape.name));
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| copy_error(shape, source))?;
        rows.iter()
            .map(|row| {
                shape
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| read_cell(row, i, c.kind))
                    .collect::<Result<Row, sqlx::Error>>()
                    .map_err(|source| copy_error(shape, source))
            })
            .collect()
    }

    /// Starts the one transaction a copy writes in.
    pub async fn begin_copy(&self) -> Result<PgCopy, Error> {
        let tx = self.pool.begin().await.map_err(Error::ReadSchema)?;
        Ok(PgCopy { tx })
    }
}

/// A copy in progress: nothing is visible to anyone until [`PgCopy::commit`]; dropped without
/// it, everything is rolled back.
pub struct PgCopy {
    tx: sqlx::Transaction<'static, Postgres>,
}

impl PgCopy {
    /// Inserts `rows` (in `shape`'s column order) into `shape`'s table, generated columns
    /// included as they are; returns how many.
    pub async fn insert(&mut self, shape: &TableShape, rows: Vec<Row>) -> Result<u64, Error> {
        let width = shape.columns.len().max(1);
        let per_statement = (MAX_PARAMS / width).clamp(1, MAX_ROWS);
        let overriding = if shape.generated.is_empty() {
            ""
        } else {
            " OVERRIDING SYSTEM VALUE"
        };
        let mut inserted = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Row> = rows.by_ref().take(per_statement).collect();
            let mut values = Vec::with_capacity(batch.len());
            let mut n = 0;
            for _ in &batch {
                let placeholders: Vec<String> = shape
                    .columns
                    .iter()
                    .map(|c| {
                        n += 1;
                        match c.kind {
                            ColumnKind::Json => format!("${n}::jsonb"),
                            _ => format!("${n}"),
                        }
                    })
                    .collect();
                values.push(format!("({})", placeholders.join(", ")));
            }
            let sql = format!(
                "INSERT INTO {} ({}){overriding} VALUES {}",
                quoted(&shape.name),
                shape.column_list(),
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for row in batch {
                if row.len() != shape.columns.len() {
                    return Err(Error::CopyValue {
                        table: shape.name.clone(),
                        problem: "got a row with another number of columns",
                    });
                }
                for (cell, column) in row.into_iter().zip(&shape.columns) {
                    query = bind(query, cell, column).map_err(|problem| Error::CopyValue {
                        table: format!("{}.{}", shape.name, column.name),
                        problem,
                    })?;
                }
            }
            let done = query
                .execute(&mut *self.tx)
                .await
                .map_err(|source| copy_error(shape, source))?;
            inserted += done.rows_affected();
        }
        Ok(inserted)
    }

    /// Moves the sequence of each generated column of `shape` to the largest value it holds,
    /// or to `at_least` if that is larger (SQLite's `AUTOINCREMENT` remembers ids of deleted
    /// rows, which must not be handed out again); the next row then gets the value after it.
    pub async fn advance_sequences(
        &mut self,
        shape: &TableShape,
        at_least: Option<i64>,
    ) -> Result<(), Error> {
        for column in &shape.generated {
            let sql = format!(
                "SELECT max({})::int8 FROM {}",
                quoted(column),
                quoted(&shape.name)
            );
            let max: Option<i64> = sqlx::query_scalar(&sql)
                .fetch_one(&mut *self.tx)
                .await
                .map_err(|source| copy_error(shape, source))?;
            let Some(value) = max.max(at_least) else {
                continue;
            };
            sqlx::query("SELECT setval(pg_get_serial_sequence($1, $2), $3)")
                .bind(quoted(&shape.name))
                .bind(column)
                .bind(value)
                .execute(&mut *self.tx)
                .await
                .map_err(|source| copy_error(shape, source))?;
        }
        Ok(())
    }

    /// Makes everything written visible at once.
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await.map_err(|source| Error::Copy {
            table: "(commit)".into(),
            source,
        })
    }
}

fn copy_error(shape: &TableShape, source: sqlx::Error) -> Error {
    Error::Copy {
        table: shape.name.clone(),
        source,
    }
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// Binds one value as its column's type (a `NULL` typed, too).
fn bind<'q>(
    query: PgQuery<'q>,
    cell: Cell,
    column: &ColumnShape,
) -> Result<PgQuery<'q>, &'static str> {
    const WRONG: &str = "holds a value of another kind than its column";
    const RANGE: &str = "holds an integer too large for its column";
    Ok(match (column.kind, cell) {
        (ColumnKind::SmallInt, Cell::Null) => query.bind(None::<i16>),
        (ColumnKind::SmallInt, Cell::Int(v)) => query.bind(i16::try_from(v).map_err(|_| RANGE)?),
        (ColumnKind::Integer, Cell::Null) => query.bind(None::<i32>),
        (ColumnKind::Integer, Cell::Int(v)) => query.bind(i32::try_from(v).map_err(|_| RANGE)?),
        (ColumnKind::BigInt, Cell::Null) => query.bind(None::<i64>),
        (ColumnKind::BigInt, Cell::Int(v)) => query.bind(v),
        (ColumnKind::Boolean, Cell::Null) => query.bind(None::<bool>),
        (ColumnKind::Boolean, Cell::Bool(v)) => query.bind(v),
        (ColumnKind::Text, Cell::Null) => query.bind(None::<String>),
        (ColumnKind::Text, Cell::Text(v)) => query.bind(v),
        (ColumnKind::Bytes, Cell::Null) => query.bind(None::<Vec<u8>>),
        (ColumnKind::Bytes, Cell::Bytes(v)) => query.bind(v),
        (ColumnKind::Json, Cell::Null) => query.bind(None::<String>),
        (ColumnKind::Json, Cell::Json(v)) => query.bind(v.to_string()),
        (ColumnKind::Real, Cell::Null) => query.bind(None::<f64>),
        (ColumnKind::Real, Cell::Real(v)) => query.bind(v),
        _ => return Err(WRONG),
    })
}

fn read_cell(row: &sqlx::postgres::PgRow, i: usize, kind: ColumnKind) -> Result<Cell, sqlx::Error> {
    Ok(match kind {
        ColumnKind::SmallInt | ColumnKind::Integer | ColumnKind::BigInt => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        ColumnKind::Boolean => row
            .try_get::<Option<bool>, _>(i)?
            .map_or(Cell::Null, Cell::Bool),
        ColumnKind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        ColumnKind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Cell::Null, Cell::Bytes),
        ColumnKind::Json => match row.try_get::<Option<String>, _>(i)? {
            None => Cell::Null,
            Some(text) => Cell::Json(
                serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            ),
        },
        ColumnKind::Real => row
            .try_get::<Option<f64>, _>(i)?
            .map_or(Cell::Null, Cell::Real),
    })
}
