//! The one list of database columns that hold values sealed by the vault. Everything that
//! must touch every secret at rest — `switchboard keys rotate` above all — walks this list, so
//! a secret column added later is handled by adding it here (a test compares the list with
//! the schema of both backends: every binary column must be in it).

use crate::{StoreError, StoreResult};

/// A column holding sealed values, and the integer primary key of its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedColumn {
    /// The table.
    pub table: &'static str,
    /// The column (`…_sealed`).
    pub column: &'static str,
    /// The primary key's columns, all integers.
    pub key: &'static [&'static str],
}

/// Every sealed column of the schema.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "accounts",
        column: "api_hash_sealed",
        key: &["id"],
    },
    SealedColumn {
        table: "account_dc_keys",
        column: "auth_key_sealed",
        key: &["account_id", "dc_id"],
    },
    SealedColumn {
        table: "bots",
        column: "token_sealed",
        key: &["id"],
    },
    SealedColumn {
        table: "bots",
        column: "hook_secret_sealed",
        key: &["id"],
    },
];

/// One stored sealed value and the primary key of its row (in [`SealedColumn::key`]'s order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// The row's primary key.
    pub row: Vec<i64>,
    /// The sealed bytes.
    pub bytes: Vec<u8>,
}

/// A sealed value to replace: written only where the column still holds `old`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedReplacement {
    /// The row's primary key.
    pub row: Vec<i64>,
    /// The value read before.
    pub old: Vec<u8>,
    /// The value to write.
    pub new: Vec<u8>,
}

impl SealedColumn {
    /// True for a column of [`SEALED_COLUMNS`] (the stores build SQL only from those).
    pub fn is_listed(&self) -> bool {
        SEALED_COLUMNS.contains(self)
    }

    /// The table and column names to build SQL from, refused unless the column is listed.
    pub fn checked(&self, op: &'static str) -> StoreResult<(&'static str, &'static str)> {
        if self.is_listed() {
            Ok((self.table, self.column))
        } else {
            Err(StoreError::Backend(format!("{op}: not a sealed column")))
        }
    }

    /// The primary key of a replacement's row, checked against this column's key.
    pub fn row_key<'a>(
        &self,
        op: &'static str,
        value: &'a SealedReplacement,
    ) -> StoreResult<&'a [i64]> {
        if value.row.len() == self.key.len() {
            Ok(&value.row)
        } else {
            Err(StoreError::Backend(format!(
                "{op}: {} values for the key of {}",
                value.row.len(),
                self.table
            )))
        }
    }
}
