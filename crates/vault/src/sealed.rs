//! The sealed blob: its versioned byte layout, parsed without trusting a single byte.
//!
//! Version 1, all integers single bytes:
//!
//! ```text
//! "SBV" | 0x01 | id_len | key_id (id_len) | wrap_nonce (24) | wrapped_dek (32 + 16 tag)
//!       | data_nonce (24) | aad_tag (16) | ciphertext (plaintext + 16 tag)
//! ```

use std::fmt;

use crate::{KeyId, VaultError};

pub(crate) const MAGIC: &[u8; 3] = b"SBV";
/// The layout version this build writes.
pub const FORMAT_VERSION: u8 = 1;
pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const WRAPPED_DEK_LEN: usize = crate::KEY_LEN + TAG_LEN;

/// Encrypted data plus everything needed to decrypt it with the right master key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub(crate) key_id: KeyId,
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    pub(crate) wrapped_dek: [u8; WRAPPED_DEK_LEN],
    pub(crate) data_nonce: [u8; NONCE_LEN],
    pub(crate) aad_tag: [u8; TAG_LEN],
    pub(crate) ciphertext: Vec<u8>,
}

impl Sealed {
    /// The id of the master key that wraps this blob's data key.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The layout version of this blob.
    pub fn version(&self) -> u8 {
        FORMAT_VERSION
    }

    /// The serialized form, for a database column.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(
            MAGIC.len()
                + 2
                + id.len()
                + 2 * NONCE_LEN
                + WRAPPED_DEK_LEN
                + TAG_LEN
                + self.ciphertext.len(),
        );
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        // KeyId::MAX_LEN is 32, so the length fits a byte.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        out.extend_from_slice(&self.wrap_nonce);
        out.extend_from_slice(&self.wrapped_dek);
        out.extend_from_slice(&self.data_nonce);
        out.extend_from_slice(&self.aad_tag);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses the serialized form. Every length is checked; nothing is decrypted here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let mut reader = Reader { rest: bytes };
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(VaultError::SealedBadMagic);
        }
        reader.take(MAGIC.len())?;
        let version = reader.byte()?;
        if version != FORMAT_VERSION {
            return Err(VaultError::SealedUnsupportedVersion { version });
        }
        let id_len = usize::from(reader.byte()?);
        if id_len == 0 || id_len > KeyId::MAX_LEN {
            return Err(VaultError::SealedBadKeyId);
        }
        let id = reader.take(id_len)?;
        let key_id = std::str::from_utf8(id)
            .ok()
            .and_then(|s| KeyId::new(s).ok())
            .ok_or(VaultError::SealedBadKeyId)?;
        let wrap_nonce = reader.array::<NONCE_LEN>()?;
        let wrapped_dek = reader.array::<WRAPPED_DEK_LEN>()?;
        let data_nonce = reader.array::<NONCE_LEN>()?;
        let aad_tag = reader.array::<TAG_LEN>()?;
        if reader.rest.len() < TAG_LEN {
            return Err(VaultError::SealedTruncated);
        }
        Ok(Self {
            key_id,
            wrap_nonce,
            wrapped_dek,
            data_nonce,
            aad_tag,
            ciphertext: reader.rest.to_vec(),
        })
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("version", &FORMAT_VERSION)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VaultError> {
        if self.rest.len() < n {
            return Err(VaultError::SealedTruncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, VaultError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], VaultError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}
