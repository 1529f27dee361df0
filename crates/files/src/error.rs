//! What can go wrong in the file store, with the stable codes the API answers.

/// A file store failure.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FileError {
    /// The file is larger than the store accepts; nothing was kept.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A file id that is not 64 hex digits.
    #[error("a file id is 64 hexadecimal digits")]
    InvalidId,
    /// No stored file has this id.
    #[error("no such file")]
    NotFound,
    /// The disk failed.
    #[error("file store: {detail}")]
    Io {
        /// What was being done, and the OS error.
        detail: String,
    },
}

impl FileError {
    pub(crate) fn io(doing: &str, e: &std::io::Error) -> Self {
        FileError::Io {
            detail: format!("{doing}: {e}"),
        }
    }

    /// The stable snake_case code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "file_too_large",
            Self::InvalidId => "file_id_invalid",
            Self::NotFound => "file_not_found",
            Self::Io { .. } => "file_store_failed",
        }
    }

    /// Every code this enum can produce, for documentation and tests.
    pub const ALL_CODES: &'static [&'static str] = &[
        "file_too_large",
        "file_id_invalid",
        "file_not_found",
        "file_store_failed",
    ];
}

#[cfg(test)]
mod tests {
    use super::FileError as E;

    #[test]
    fn every_variant_code_is_listed() {
        let all = [
            E::TooLarge { limit: 1 },
            E::InvalidId,
            E::NotFound,
            E::Io {
                detail: String::new(),
            },
        ];
        let codes: Vec<&str> = all.iter().map(E::code).collect();
        assert_eq!(codes, E::ALL_CODES);
    }
}
