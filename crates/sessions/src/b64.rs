//! Lenient base64 decoding shared by the string parsers, and the two encodings the exporters write.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use crate::SessionError;

/// Longest session string accepted, in characters; real ones are under 420.
pub(crate) const MAX_STRING_CHARS: usize = 4096;

/// Decodes either alphabet, with or without padding, ignoring non-zero trailing bits
/// (Python's decoder does), so strings that went through another tool still load.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Telethon's `urlsafe_b64encode`, with `=` padding.
pub(crate) const URL_SAFE_PADDED: GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

/// Pyrogram's `urlsafe_b64encode(..).rstrip('=')`.
pub(crate) const URL_SAFE_UNPADDED: GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Removes all whitespace (pasted strings are often wrapped) and checks the length.
pub(crate) fn clean(input: &str) -> Result<Zeroizing<String>, SessionError> {
    if input.len() > MAX_STRING_CHARS * 4 {
        return Err(too_long(input.len()));
    }
    let cleaned: Zeroizing<String> =
        Zeroizing::new(input.chars().filter(|c| !c.is_whitespace()).collect());
    if cleaned.is_empty() {
        return Err(SessionError::StringEmpty);
    }
    if cleaned.len() > MAX_STRING_CHARS {
        return Err(too_long(cleaned.len()));
    }
    Ok(cleaned)
}

fn too_long(len: usize) -> SessionError {
    SessionError::TooLarge {
        what: "session string",
        len: len as u64,
        max: MAX_STRING_CHARS as u64,
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>, SessionError> {
    let unified: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.bytes()
            .map(|b| match b {
                b'+' => b'-',
                b'/' => b'_',
                other => other,
            })
            .collect(),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(unified.len() * 3 / 4 + 3));
    LENIENT
        .decode_vec(&*unified, &mut out)
        .map_err(|_| SessionError::StringInvalidBase64)?;
    Ok(out)
}
