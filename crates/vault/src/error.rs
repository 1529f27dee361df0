//! The one error type of the vault, with a stable snake_case code per variant.
//!
//! Messages never contain key material, plaintext or the key file's lines.

use std::path::PathBuf;

/// Everything that can go wrong with master keys, keyrings and sealed blobs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The key file could not be read or written.
    #[error("cannot access the key file {}: {detail}", .path.display())]
    KeyFileIo {
        /// The file.
        path: PathBuf,
        /// The operating system's description.
        detail: String,
    },
    /// `write_new` refused to overwrite an existing key file.
    #[error("the key file {} already exists", .path.display())]
    KeyFileExists {
        /// The file.
        path: PathBuf,
    },
    /// The key file's content is not in the `sbk1:<key-id>:<base64 key>` format.
    #[error("the key file is malformed at line {line}: {reason}")]
    KeyFileMalformed {
        /// 1-based line number (0 when the problem is the whole file).
        line: usize,
        /// What is wrong, never the line itself.
        reason: &'static str,
    },
    /// A key id is empty, too long or has characters outside `[A-Za-z0-9_-]`.
    #[error("invalid key id (1 to {max} characters from A-Z a-z 0-9 _ -)", max = crate::KeyId::MAX_LEN)]
    InvalidKeyId,
    /// Two keys in one keyring share an id.
    #[error("the keyring holds key id `{id}` twice")]
    DuplicateKeyId {
        /// The id.
        id: String,
    },
    /// The current key cannot be removed from its keyring.
    #[error("key `{id}` is the current key and cannot be removed")]
    CannotRemoveCurrent {
        /// The id.
        id: String,
    },
    /// The sealed bytes end before the format says they should.
    #[error("the sealed data is truncated")]
    SealedTruncated,
    /// The sealed bytes do not start with the vault's magic.
    #[error("the data is not sealed by this vault (bad magic)")]
    SealedBadMagic,
    /// The sealed bytes use a format version this build does not read.
    #[error("unsupported sealed format version {version}")]
    SealedUnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The sealed bytes have an invalid key id field.
    #[error("the sealed data has an invalid key id")]
    SealedBadKeyId,
    /// The data was sealed under a key the keyring does not hold.
    #[error("the data was sealed with key `{id}`, which this keyring does not hold")]
    UnknownKeyId {
        /// The id named by the sealed data.
        id: String,
    },
    /// The data key could not be unwrapped: the master key with this id is not the one used,
    /// or the wrapped key was altered.
    #[error("cannot unwrap the data key with key `{id}` (wrong master key or tampered data)")]
    UnwrapFailed {
        /// The key id.
        id: String,
    },
    /// The associated data does not match the one the data was sealed with (e.g. a row was
    /// copied to another account).
    #[error("the associated data does not match (sealed for another row)")]
    AadMismatch,
    /// The ciphertext failed authentication: it was altered.
    #[error("the sealed data failed authentication (tampered ciphertext)")]
    DecryptFailed,
    /// Encryption failed (the input exceeds the cipher's limits).
    #[error("encryption failed")]
    EncryptFailed,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    RandomFailed,
}

impl VaultError {
    /// The stable snake_case code of this error, for API responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyFileIo { .. } => "vault_key_file_io",
            Self::KeyFileExists { .. } => "vault_key_file_exists",
            Self::KeyFileMalformed { .. } => "vault_key_file_malformed",
            Self::InvalidKeyId => "vault_invalid_key_id",
            Self::DuplicateKeyId { .. } => "vault_duplicate_key_id",
            Self::CannotRemoveCurrent { .. } => "vault_cannot_remove_current_key",
            Self::SealedTruncated => "vault_sealed_truncated",
            Self::SealedBadMagic => "vault_sealed_bad_magic",
            Self::SealedUnsupportedVersion { .. } => "vault_sealed_unsupported_version",
            Self::SealedBadKeyId => "vault_sealed_bad_key_id",
            Self::UnknownKeyId { .. } => "vault_unknown_key_id",
            Self::UnwrapFailed { .. } => "vault_unwrap_failed",
            Self::AadMismatch => "vault_aad_mismatch",
            Self::DecryptFailed => "vault_decrypt_failed",
            Self::EncryptFailed => "vault_encrypt_failed",
            Self::RandomFailed => "vault_random_failed",
        }
    }

    /// Every code this enum can produce, for documentation and tests.
    pub const ALL_CODES: &'static [&'static str] = &[
        "vault_key_file_io",
        "vault_key_file_exists",
        "vault_key_file_malformed",
        "vault_invalid_key_id",
        "vault_duplicate_key_id",
        "vault_cannot_remove_current_key",
        "vault_sealed_truncated",
        "vault_sealed_bad_magic",
        "vault_sealed_unsupported_version",
        "vault_sealed_bad_key_id",
        "vault_unknown_key_id",
        "vault_unwrap_failed",
        "vault_aad_mismatch",
        "vault_decrypt_failed",
        "vault_encrypt_failed",
        "vault_random_failed",
    ];
}

#[cfg(test)]
mod tests {
    use super::VaultError as E;

    #[test]
    fn every_variant_code_is_listed() {
        let all = [
            E::KeyFileIo {
                path: "p".into(),
                detail: String::new(),
            },
            E::KeyFileExists { path: "p".into() },
            E::KeyFileMalformed {
                line: 1,
                reason: "x",
            },
            E::InvalidKeyId,
            E::DuplicateKeyId { id: String::new() },
            E::CannotRemoveCurrent { id: String::new() },
            E::SealedTruncated,
            E::SealedBadMagic,
            E::SealedUnsupportedVersion { version: 9 },
            E::SealedBadKeyId,
            E::UnknownKeyId { id: String::new() },
            E::UnwrapFailed { id: String::new() },
            E::AadMismatch,
            E::DecryptFailed,
            E::EncryptFailed,
            E::RandomFailed,
        ];
        let codes: Vec<&str> = all.iter().map(E::code).collect();
        assert_eq!(codes, E::ALL_CODES);
    }
}
