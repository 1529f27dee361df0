//! Copying a whole database table by table (`switchboard copy-db`, SQLite → PostgreSQL): a
//! table's shape as the target declares it, and cell values that mean the same on both
//! backends. The table list is read from the schema, never written down here, so a table a
//! later migration adds is copied without a change to this code.

/// What a column holds, as the copy needs to know it (SQLite's types are loose; the target's
/// are not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// 16-bit integer.
    SmallInt,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    BigInt,
    /// A boolean (`INTEGER` 0/1 on SQLite).
    Boolean,
    /// Text.
    Text,
    /// Bytes (sealed secrets among them: copied byte for byte).
    Bytes,
    /// JSON (`TEXT` on SQLite, `JSONB` on PostgreSQL).
    Json,
    /// A floating-point number.
    Real,
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnShape {
    /// Its name.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
}

/// One table as the target database declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// Its name.
    pub name: String,
    /// Its columns, in the target's order.
    pub columns: Vec<ColumnShape>,
    /// Columns whose values come from a sequence (identity or serial): the sequence is moved
    /// past the copied values.
    pub generated: Vec<String>,
}

impl TableShape {
    /// The column names, comma-separated, each quoted.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quoted(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A name quoted as an SQL identifier (both backends use `"…"`).
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One value of one column.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL `NULL`.
    Null,
    /// An integer of any width.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// JSON, parsed: PostgreSQL's `JSONB` keeps the value, not the spelling.
    Json(serde_json::Value),
}

/// One row, in its table's column order.
pub type Row = Vec<Cell>;

/// Tables of one database ordered so that every table comes after the tables its foreign keys
/// point to (`edges`: `(table, referenced table)`; a table referring to itself is ignored).
/// `None` names a cycle, which a row-by-row copy in one pass cannot satisfy.
pub fn dependency_order(
    tables: &[String],
    edges: &[(String, String)],
) -> Result<Vec<String>, Vec<String>> {
    let mut left: Vec<String> = tables.to_vec();
    left.sort();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| {
                !edges
                    .iter()
                    .any(|(from, to)| from == *t && to != *t && left.contains(to))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(left);
        }
        left.retain(|t| !ready.contains(t));
        out.extend(ready);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parents_come_first_and_cycles_are_named() {
        let edges = vec![
            ("messages".to_string(), "chats".to_string()),
            ("chats".to_string(), "workspaces".to_string()),
            ("chats".to_string(), "bots".to_string()),
            ("bots".to_string(), "workspaces".to_string()),
            ("messages".to_string(), "messages".to_string()),
        ];
        let order =
            dependency_order(&s(&["messages", "chats", "bots", "workspaces"]), &edges).unwrap();
        assert_eq!(order, s(&["workspaces", "bots", "chats", "messages"]));
        let cycle = vec![
            ("a".to_string(), "b".to_string()),
            ("b".to_string(), "a".to_string()),
        ];
        assert_eq!(
            dependency_order(&s(&["a", "b", "c"]), &cycle),
            Err(s(&["a", "b"]))
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quoted("read"), "\"read\"");
        assert_eq!(quoted("we\"ird"), "\"we\"\"ird\"");
    }
}
