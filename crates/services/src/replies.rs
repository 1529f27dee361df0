//! Replies as operators write them: the checks a reply passes before it is queued
//! ([`prepare_reply`]) and the policy for the attachments they upload ([`classify_upload`],
//! [`upload_name`]). The HTTP layer only turns requests into these types.

use switchboard_domain::{Entity, Media, MediaKind, NewReply};
use switchboard_files::{FileId, FileStore};

/// The longest text (or caption) of a reply, in characters (Telegram's limit).
pub const MAX_REPLY_TEXT: usize = 4096;

/// A reply as the operator wrote it, not yet checked.
#[derive(Clone, Debug, Default)]
pub struct ReplyDraft {
    /// Text, or the caption of the attachment.
    pub text: String,
    /// Formatting entities; none when absent.
    pub entities: Option<Vec<Entity>>,
    /// Telegram id of the message replied to.
    pub reply_to_tg_id: Option<i64>,
    /// An uploaded file to attach.
    pub attachment: Option<AttachmentDraft>,
}

/// An attachment as the operator named it.
#[derive(Clone, Debug, Default)]
pub struct AttachmentDraft {
    /// The id the upload returned (hex SHA-256).
    pub file_id: String,
    /// One of [`MediaKind::ATTACHABLE`].
    pub kind: MediaKind,
    /// File name shown.
    pub file_name: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
}

/// Why a reply or an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A field is malformed or out of range (`validation_failed`).
    #[error("invalid reply")]
    Invalid,
    /// The attachment names no stored file (`file_not_found`).
    #[error("no such file")]
    FileNotFound,
    /// The upload's type is not one Telegram accepts, or its bytes do not match it
    /// (`file_type_not_allowed`).
    #[error("file type not allowed")]
    TypeNotAllowed,
}

impl ReplyError {
    /// The stable API error code.
    pub fn code(self) -> &'static str {
        match self {
            ReplyError::Invalid => "validation_failed",
            ReplyError::FileNotFound => "file_not_found",
            ReplyError::TypeNotAllowed => "file_type_not_allowed",
        }
    }
}

/// Checks a draft and makes the reply to queue: text up to [`MAX_REPLY_TEXT`] characters and
/// not blank unless there is an attachment, an attachment of a known
/// kind naming a file in `files` (whether the workspace may attach it is the store's check).
pub async fn prepare_reply(draft: ReplyDraft, files: &FileStore) -> Result<NewReply, ReplyError> {
    let text_len = draft.text.chars().count();
    if text_len > MAX_REPLY_TEXT || (draft.text.trim().is_empty() && draft.attachment.is_none()) {
        return Err(ReplyError::Invalid);
    }
    let entities = draft.entities.unwrap_or_default();
    let media = match draft.attachment {
        None => None,
        Some(a) => {
            if !MediaKind::ATTACHABLE.contains(&a.kind) {
                return Err(ReplyError::Invalid);
            }
            let file: FileId = a.file_id.parse().map_err(|_| ReplyError::Invalid)?;
            if !files.contains(&file).await {
                return Err(ReplyError::FileNotFound);
            }
            Some(Media {
                file_id: Some(file.to_hex()),
                file_name: Some(a.file_name.unwrap_or_else(|| "file".into())),
                mime_type: Some(
                    a.mime_type
                        .unwrap_or_else(|| "application/octet-stream".into()),
                ),
                ..Media::of(a.kind)
            })
        }
    };
    Ok(NewReply {
        text: draft.text,
        entities,
        media,
        reply_to_tg_id: draft.reply_to_tg_id,
        random_id: crate::outbox::random_id(),
    })
}

/// Keeps an uploaded file's name printable and short, without path parts.
pub fn upload_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(128).collect();
    if clean.trim().is_empty() {
        "file".into()
    } else {
        clean
    }
}

/// The MIME type and attachment kind of an upload from its declared type, its first bytes
/// (`head`, at least the first 64 when the file is that long) and its name. Media types must
/// be confirmed by the bytes; documents of other kinds are accepted by declared type.
pub fn classify_upload(
    declared: &str,
    head: &[u8],
    name: &str,
) -> Result<(String, &'static str), ReplyError> {
    allowed_type(declared, switchboard_files::sniff_mime(head), name)
        .ok_or(ReplyError::TypeNotAllowed)
}

fn allowed_type(
    declared: &str,
    sniffed: Option<&'static str>,
    name: &str,
) -> Option<(String, &'static str)> {
    let kind_of = |m: &str| match m {
        "image/jpeg" | "image/png" | "image/webp" => Some("photo"),
        "image/gif" | "video/mp4" | "video/webm" => Some("video"),
        "audio/ogg" => Some("voice"),
        "audio/mpeg" | "audio/mp4" => Some("audio"),
        _ => None,
    };
    if let Some(s) = sniffed {
        return Some((s.to_string(), kind_of(s).unwrap_or("document")));
    }
    // No recognised signature: only harmless document types, and never one claiming to be a
    // media type the bytes do not match.
    if kind_of(declared).is_some() {
        return None;
    }
    let doc_ok = matches!(
        declared,
        "text/plain"
            | "text/csv"
            | "application/json"
            | "application/msword"
            | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            | "application/vnd.ms-excel"
            | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            | "application/octet-stream"
    ) || (declared.is_empty() && name.contains('.'));
    doc_ok.then(|| {
        let m = if declared.is_empty() {
            "application/octet-stream"
        } else {
            declared
        };
        (m.to_string(), "document")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_must_match_their_bytes() {
        assert_eq!(
            allowed_type("image/png", Some("image/png"), "a.png"),
            Some(("image/png".into(), "photo"))
        );
        assert_eq!(allowed_type("image/png", None, "a.png"), None);
        assert_eq!(
            allowed_type("text/plain", None, "a.txt"),
            Some(("text/plain".into(), "document"))
        );
        assert_eq!(allowed_type("text/html", None, "a.html"), None);
        assert_eq!(upload_name("../../etc/passwd"), "passwd");
        assert_eq!(upload_name("a\u{0}b.txt"), "ab.txt");
    }
}
