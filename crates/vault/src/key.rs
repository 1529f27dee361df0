//! Master keys (KEKs), their ids, and the key file format.
//!
//! A key file holds one key per line, `sbk1:<key-id>:<base64url 32-byte key>`; blank lines and
//! lines starting with `#` are ignored. In a keyring file the first key is the current one.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use crate::VaultError;

/// Prefix of every key line; the `1` is the key file format version.
pub(crate) const LINE_PREFIX: &str = "sbk1:";

/// Comment written at the top of key files.
pub(crate) const FILE_HEADER: &str = "# Switchboard master keys. The first key seals new data; the others only open old data.\n# Anyone with this file can decrypt the stored Telegram sessions: keep it secret and backed up.\n";

/// Largest key file read (a keyring of many keys is still tiny).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Key bytes: 256 bits.
pub const KEY_LEN: usize = 32;

const KEY_B64: GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const KEY_B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The id of a master key, stored in every sealed blob: 1 to 32 characters from
/// `A-Z a-z 0-9 _ -`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Longest id, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Checks and wraps an id.
    pub fn new(id: &str) -> Result<Self, VaultError> {
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(VaultError::InvalidKeyId)
        }
    }

    /// A fresh id naming the day it was made plus randomness, e.g. `k20260501-3fa9c01b`.
    pub fn generate() -> Result<Self, VaultError> {
        let mut random = [0u8; 4];
        crate::random(&mut random)?;
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(&format!("k{y:04}{m:02}{d:02}-{hex}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A 256-bit master key (key-encryption key) with its id. `Debug` never shows the key; the
/// bytes are wiped on drop.
#[derive(Clone)]
pub struct MasterKey {
    id: KeyId,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A new random key with a generated id.
    pub fn generate() -> Result<Self, VaultError> {
        Self::generate_with_id(KeyId::generate()?)
    }

    /// A new random key with the given id.
    pub fn generate_with_id(id: KeyId) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        crate::random(&mut key[..])?;
        Ok(Self { id, key })
    }

    /// A key from known bytes (tests, or a key held by a KMS).
    pub fn from_bytes(id: KeyId, key: [u8; KEY_LEN]) -> Self {
        Self {
            id,
            key: Zeroizing::new(key),
        }
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The raw key, for the cipher.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// Parses a key file holding exactly one key (use [`crate::Keyring::parse`] for several).
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let mut keys = parse_lines(text)?;
        if keys.len() != 1 {
            return Err(VaultError::KeyFileMalformed {
                line: 0,
                reason: "expected exactly one key (a keyring file holds several)",
            });
        }
        keys.pop().ok_or(VaultError::KeyFileMalformed {
            line: 0,
            reason: "no key",
        })
    }

    /// Reads a key file holding exactly one key.
    pub fn from_file(path: &Path) -> Result<Self, VaultError> {
        Self::parse(&read_key_file(path)?)
    }

    /// Generates a key and writes it to a new file (mode 0600 on Unix); never overwrites.
    pub fn write_new(path: &Path) -> Result<Self, VaultError> {
        let key = Self::generate()?;
        let mut contents = Zeroizing::new(String::from(FILE_HEADER));
        contents.push_str(&key.to_line());
        contents.push('\n');
        write_private(path, contents.as_bytes(), true)?;
        Ok(key)
    }

    /// The key as one key file line (`sbk1:<id>:<base64url key>`), without a newline.
    pub fn to_line(&self) -> Zeroizing<String> {
        let mut line = Zeroizing::new(String::with_capacity(LINE_PREFIX.len() + 1 + 32 + 43));
        line.push_str(LINE_PREFIX);
        line.push_str(self.id.as_str());
        line.push(':');
        KEY_B64.encode_string(&self.key[..], &mut line);
        line
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Parses every key line of a key file, in order.
pub(crate) fn parse_lines(text: &str) -> Result<Vec<MasterKey>, VaultError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(parse_line(line, index + 1)?);
    }
    if keys.is_empty() {
        return Err(VaultError::KeyFileMalformed {
            line: 0,
            reason: "no key",
        });
    }
    Ok(keys)
}

fn parse_line(line: &str, number: usize) -> Result<MasterKey, VaultError> {
    let malformed = |reason| VaultError::KeyFileMalformed {
        line: number,
        reason,
    };
    let rest = line
        .strip_prefix(LINE_PREFIX)
        .ok_or(malformed("expected a line starting with `sbk1:`"))?;
    let (id, encoded) = rest
        .split_once(':')
        .ok_or(malformed("expected `sbk1:<key-id>:<base64 key>`"))?;
    let id = KeyId::new(id).map_err(|_| malformed("invalid key id"))?;
    let unified: Zeroizing<String> = Zeroizing::new(
        encoded
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                other => other,
            })
            .collect(),
    );
    let decoded = Zeroizing::new(
        KEY_B64_LENIENT
            .decode(unified.as_bytes())
            .map_err(|_| malformed("the key is not base64"))?,
    );
    let key: [u8; KEY_LEN] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| malformed("the key is not 32 bytes"))?;
    Ok(MasterKey::from_bytes(id, key))
}

/// Reads a key file, refusing huge ones.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<String>, VaultError> {
    let io = |e: std::io::Error| VaultError::KeyFileIo {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(VaultError::KeyFileMalformed {
            line: 0,
            reason: "the file is too large to be a key file",
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| VaultError::KeyFileMalformed {
        line: 0,
        reason: "the file is not UTF-8 text",
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Writes a secret file with owner-only permissions. With `create_new` an existing file is an
/// error; otherwise the file is replaced atomically (temp file in the same directory + rename).
pub(crate) fn write_private(
    path: &Path,
    contents: &[u8],
    create_new: bool,
) -> Result<(), VaultError> {
    let io = |e: std::io::Error| VaultError::KeyFileIo {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    if create_new {
        let mut file = open_private(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                VaultError::KeyFileExists {
                    path: path.to_path_buf(),
                }
            } else {
                io(e)
            }
        })?;
        file.write_all(contents).map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok(());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("the path has no file name")))?;
    let mut suffix = [0u8; 6];
    crate::random(&mut suffix)?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let temp = dir.join(format!(".{}.tmp-{suffix}", name.to_string_lossy()));
    let result = (|| {
        let mut file = open_private(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // Make the rename durable; not every platform can open a directory, so best effort.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io)
}

fn open_private(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
