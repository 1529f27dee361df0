//! The keyring: the current master key plus retired ones, and the envelope operations
//! (seal, open, rewrap) built on XChaCha20-Poly1305.
//!
//! Each seal draws a random 256-bit data key (DEK). The DEK encrypts the plaintext with the
//! caller's AAD; the current master key (KEK) wraps the DEK with its own key id as AAD. A
//! second, empty-message tag under the DEK authenticates the caller's AAD alone, so a blob
//! moved to another row (`vault_aad_mismatch`) is told apart from a tampered ciphertext
//! (`vault_decrypt_failed`). Rotation re-wraps DEKs only; the data is never re-encrypted.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::key::{FILE_HEADER, parse_lines, read_key_file, write_private};
use crate::sealed::{NONCE_LEN, TAG_LEN, WRAPPED_DEK_LEN};
use crate::{KEY_LEN, KeyId, MasterKey, Sealed, VaultError};

const WRAP_DOMAIN: &[u8] = b"switchboard-vault/v1/dek\0";
const DATA_DOMAIN: &[u8] = b"switchboard-vault/v1/data\0";
const AAD_DOMAIN: &[u8] = b"switchboard-vault/v1/aad\0";
const DERIVE_DOMAIN: &[u8] = b"switchboard-vault/v1/derive\0";

/// The current master key, which seals, and retired keys, which only open and rewrap.
#[derive(Clone)]
pub struct Keyring {
    current: MasterKey,
    retired: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", self.current.id())
            .field(
                "retired",
                &self.retired.iter().map(MasterKey::id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            retired: Vec::new(),
        }
    }

    /// A keyring from keys in file order: the first is current, the rest retired.
    pub fn from_keys(keys: Vec<MasterKey>) -> Result<Self, VaultError> {
        let mut keys = keys.into_iter();
        let current = keys.next().ok_or(VaultError::KeyFileMalformed {
            line: 0,
            reason: "no key",
        })?;
        let mut ring = Self::new(current);
        for key in keys {
            ring.add_retired(key)?;
        }
        Ok(ring)
    }

    /// Parses a key file (one or more `sbk1:` lines; the first is current).
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        Self::from_keys(parse_lines(text)?)
    }

    /// Reads a key file, e.g. the one `SWITCHBOARD_MASTER_KEY_FILE` names.
    pub fn from_file(path: &Path) -> Result<Self, VaultError> {
        Self::parse(&read_key_file(path)?)
    }

    /// The key file text for this keyring (current key first).
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(FILE_HEADER));
        for key in std::iter::once(&self.current).chain(&self.retired) {
            out.push_str(&key.to_line());
            out.push('\n');
        }
        out
    }

    /// Replaces the key file atomically (temp file + rename, mode 0600 on Unix).
    pub fn write(&self, path: &Path) -> Result<(), VaultError> {
        write_private(path, self.to_file_contents().as_bytes(), false)
    }

    /// The id new seals are made with.
    pub fn current_id(&self) -> &KeyId {
        self.current.id()
    }

    /// Every key id, current first.
    pub fn key_ids(&self) -> Vec<&KeyId> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .map(MasterKey::id)
            .collect()
    }

    /// Whether the keyring holds a key with this id.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.key(id).is_some()
    }

    /// Adds a key that opens old data but does not seal.
    pub fn add_retired(&mut self, key: MasterKey) -> Result<(), VaultError> {
        if self.contains(key.id()) {
            return Err(VaultError::DuplicateKeyId {
                id: key.id().to_string(),
            });
        }
        self.retired.push(key);
        Ok(())
    }

    /// Makes `key` current and keeps the previous current key as retired (first step of a
    /// rotation; then rewrap everything, then [`Keyring::drop_retired`]).
    pub fn rotate_to(&mut self, key: MasterKey) -> Result<(), VaultError> {
        if self.contains(key.id()) {
            return Err(VaultError::DuplicateKeyId {
                id: key.id().to_string(),
            });
        }
        let previous = std::mem::replace(&mut self.current, key);
        self.retired.insert(0, previous);
        Ok(())
    }

    /// Generates a new current key (see [`Keyring::rotate_to`]) and returns its id.
    pub fn rotate(&mut self) -> Result<KeyId, VaultError> {
        let mut key = MasterKey::generate()?;
        // Ids carry 32 random bits; a clash with a key of the same day is unlikely but cheap to avoid.
        while self.contains(key.id()) {
            key = MasterKey::generate()?;
        }
        let id = key.id().clone();
        self.rotate_to(key)?;
        Ok(id)
    }

    /// Removes a retired key; the current key cannot be removed.
    pub fn remove(&mut self, id: &KeyId) -> Result<MasterKey, VaultError> {
        if self.current.id() == id {
            return Err(VaultError::CannotRemoveCurrent { id: id.to_string() });
        }
        let index = self
            .retired
            .iter()
            .position(|k| k.id() == id)
            .ok_or_else(|| VaultError::UnknownKeyId { id: id.to_string() })?;
        Ok(self.retired.remove(index))
    }

    /// Drops every retired key (after everything has been rewrapped) and returns their ids.
    pub fn drop_retired(&mut self) -> Vec<KeyId> {
        self.retired.drain(..).map(|k| k.id().clone()).collect()
    }

    fn key(&self, id: &KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| k.id() == id)
    }

    /// A 256-bit key for one purpose (e.g. `b"signin-codes"`), derived from the current master
    /// key with HMAC-SHA256 under a domain of its own: the same master key and purpose always
    /// give the same key, another purpose or master key an unrelated one. For keyed hashes of
    /// short-lived secrets; a rotation changes it (what was hashed under the old key no longer
    /// matches).
    pub fn derive_key(&self, purpose: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.current.bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(DERIVE_DOMAIN);
        mac.update(purpose);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Encrypts `plaintext` under a fresh data key wrapped by the current master key.
    /// `aad` names the row it belongs to, e.g. `b"account:42:session"`; `open` needs the same.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        crate::random(&mut dek[..])?;
        let mut data_nonce = [0u8; NONCE_LEN];
        crate::random(&mut data_nonce)?;

        let cipher = cipher(&dek);
        let aad_tag = cipher
            .encrypt(
                &XNonce::from(aad_nonce(&data_nonce)),
                Payload {
                    msg: b"",
                    aad: &domain(AAD_DOMAIN, aad),
                },
            )
            .map_err(|_| VaultError::EncryptFailed)?;
        let aad_tag: [u8; TAG_LEN] = aad_tag
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::EncryptFailed)?;
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(data_nonce),
                Payload {
                    msg: plaintext,
                    aad: &domain(DATA_DOMAIN, aad),
                },
            )
            .map_err(|_| VaultError::EncryptFailed)?;
        let (wrap_nonce, wrapped_dek) = wrap(&self.current, &dek)?;
        Ok(Sealed {
            key_id: self.current.id().clone(),
            wrap_nonce,
            wrapped_dek,
            data_nonce,
            aad_tag,
            ciphertext,
        })
    }

    /// Decrypts a sealed blob with the master key it names and the row's AAD.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let dek = self.unwrap_dek(sealed)?;
        let cipher = cipher(&dek);
        cipher
            .decrypt(
                &XNonce::from(aad_nonce(&sealed.data_nonce)),
                Payload {
                    msg: &sealed.aad_tag,
                    aad: &domain(AAD_DOMAIN, aad),
                },
            )
            .map_err(|_| VaultError::AadMismatch)?;
        cipher
            .decrypt(
                &XNonce::from(sealed.data_nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &domain(DATA_DOMAIN, aad),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::DecryptFailed)
    }

    /// Re-wraps the blob's data key under the current master key; the ciphertext is untouched
    /// and no AAD is needed.
    pub fn rewrap(&self, sealed: &Sealed) -> Result<Sealed, VaultError> {
        let dek = self.unwrap_dek(sealed)?;
        let (wrap_nonce, wrapped_dek) = wrap(&self.current, &dek)?;
        Ok(Sealed {
            key_id: self.current.id().clone(),
            wrap_nonce,
            wrapped_dek,
            ..sealed.clone()
        })
    }

    /// Whether the blob is wrapped by a key other than the current one.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id() != self.current.id()
    }

    fn unwrap_dek(&self, sealed: &Sealed) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
        let kek = self
            .key(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKeyId {
                id: sealed.key_id.to_string(),
            })?;
        let failed = || VaultError::UnwrapFailed {
            id: sealed.key_id.to_string(),
        };
        let dek = Zeroizing::new(
            cipher(kek.bytes())
                .decrypt(
                    &XNonce::from(sealed.wrap_nonce),
                    Payload {
                        msg: &sealed.wrapped_dek,
                        aad: &domain(WRAP_DOMAIN, kek.id().as_str().as_bytes()),
                    },
                )
                .map_err(|_| failed())?,
        );
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        if dek.len() != KEY_LEN {
            return Err(failed());
        }
        out.copy_from_slice(&dek);
        Ok(out)
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*key))
}

/// Wraps a DEK under a KEK, binding it to the KEK's id.
fn wrap(
    kek: &MasterKey,
    dek: &[u8; KEY_LEN],
) -> Result<([u8; NONCE_LEN], [u8; WRAPPED_DEK_LEN]), VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random(&mut nonce)?;
    let wrapped = cipher(kek.bytes())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: dek,
                aad: &domain(WRAP_DOMAIN, kek.id().as_str().as_bytes()),
            },
        )
        .map_err(|_| VaultError::EncryptFailed)?;
    let wrapped: [u8; WRAPPED_DEK_LEN] = wrapped
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::EncryptFailed)?;
    Ok((nonce, wrapped))
}

/// The nonce of the AAD-only tag: the data nonce with its last bit flipped, so the two
/// encryptions under the one-time DEK never share a nonce.
fn aad_nonce(data_nonce: &[u8; NONCE_LEN]) -> [u8; NONCE_LEN] {
    let mut nonce = *data_nonce;
    nonce[NONCE_LEN - 1] ^= 1;
    nonce
}

/// Domain-separated associated data, so no blob part can stand in for another.
fn domain(prefix: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + value.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out
}
