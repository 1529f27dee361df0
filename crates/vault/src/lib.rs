//! Envelope encryption for secrets at rest (auth keys, session data, bot tokens):
//! XChaCha20-Poly1305 with a random data key per sealed value, wrapped by a master key that
//! is named by id so keys can be rotated by re-wrapping, without re-encrypting data.
//!
//! ```
//! use switchboard_vault::{Keyring, MasterKey, Sealed};
//! # fn main() -> Result<(), switchboard_vault::VaultError> {
//! let ring = Keyring::new(MasterKey::generate()?);
//! let sealed = ring.seal(b"auth key bytes", b"account:42:session")?;
//! let stored = sealed.to_bytes();
//! let opened = ring.open(&Sealed::from_bytes(&stored)?, b"account:42:session")?;
//! assert_eq!(&opened[..], b"auth key bytes");
//! # Ok(()) }
//! ```

mod error;
mod key;
mod keyring;
mod sealed;

pub use error::VaultError;
pub use key::{KEY_LEN, KeyId, MasterKey};
pub use keyring::Keyring;
pub use sealed::{FORMAT_VERSION, Sealed};

/// Fills a buffer from the operating system's random number generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), VaultError> {
    getrandom::fill(buf).map_err(|_| VaultError::RandomFailed)
}
