//! The content-addressed file store: every file is kept once, under the SHA-256 of its bytes, at
//! `<root>/ab/cd/<64 hex>` (`root` is normally `<data_dir>/files`). Writes stream into a temporary
//! file under `<root>/tmp` (same file system), are hashed on the way, checked against a byte
//! limit, synced, then renamed into place — a reader never sees a partial file, and storing the
//! same bytes twice leaves one copy. Ids are parsed from hex before any path is built, so an id
//! can never name a path outside the store.
//!
//! ```no_run
//! # async fn f() -> Result<(), switchboard_files::FileError> {
//! use switchboard_files::FileStore;
//! let files = FileStore::new("/var/lib/switchboard/files", 20 * 1024 * 1024);
//! let stored = files.put_bytes(b"hello").await?;
//! let mut file = files.open(&stored.sha256).await?;
//! # Ok(()) }
//! ```

mod error;
mod id;
mod mime;

pub use error::FileError;
pub use id::FileId;
pub use mime::sniff_mime;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How many leading bytes are kept for MIME sniffing.
const SNIFF_LEN: usize = 16;

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file now in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Its id: the SHA-256 of its bytes.
    pub sha256: FileId,
    /// Its size in bytes.
    pub size: u64,
    /// The MIME type its first bytes suggest, if recognised.
    pub sniffed_mime: Option<&'static str>,
}

/// The store: a directory and the largest file it accepts.
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
    max_bytes: u64,
}

impl FileStore {
    /// A store rooted at `root` (created on first write) accepting files up to `max_bytes`.
    pub fn new(root: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            root: root.into(),
            max_bytes,
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The largest file accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the file with this id lives (whether or not it exists).
    pub fn path(&self, id: &FileId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// True if the file is stored.
    pub async fn contains(&self, id: &FileId) -> bool {
        tokio::fs::try_exists(self.path(id)).await.unwrap_or(false)
    }

    /// Opens a stored file for reading.
    pub async fn open(&self, id: &FileId) -> Result<tokio::fs::File, FileError> {
        let path = self.path(id);
        tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                FileError::NotFound
            } else {
                FileError::io("opening a stored file", &e)
            }
        })
    }

    /// Stores everything `reader` yields; fails with [`FileError::TooLarge`] (nothing kept) once
    /// it passes the limit.
    pub async fn put_stream<R: AsyncRead + Unpin>(
        &self,
        mut reader: R,
    ) -> Result<StoredFile, FileError> {
        let mut writer = self.writer().await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| FileError::io("reading the upload", &e))?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]).await?;
        }
        writer.commit().await
    }

    /// Stores a byte slice.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<StoredFile, FileError> {
        let mut writer = self.writer().await?;
        writer.write(bytes).await?;
        writer.commit().await
    }

    /// Starts a file to be fed chunk by chunk (for sources that are not `AsyncRead`, such as a
    /// Telegram download). Dropped without [`FileWriter::commit`], it leaves nothing behind.
    pub async fn writer(&self) -> Result<FileWriter, FileError> {
        let tmp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| FileError::io("creating the file store", &e))?;
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|_| FileError::Io {
            detail: "no randomness for a temporary name".into(),
        })?;
        let name = format!(
            "{}-{}-{}.part",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            hex::encode(rnd)
        );
        let tmp = tmp_dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| FileError::io("creating a temporary file", &e))?;
        Ok(FileWriter {
            store: self.clone(),
            tmp: Some(tmp),
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(SNIFF_LEN),
        })
    }

    /// Removes temporary files left by a crash; returns how many.
    pub async fn remove_stale_temporaries(&self) -> Result<usize, FileError> {
        let mut dir = match tokio::fs::read_dir(self.root.join("tmp")).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(FileError::io("listing temporary files", &e)),
        };
        let mut n = 0;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| FileError::io("listing temporary files", &e))?
        {
            if tokio::fs::remove_file(entry.path()).await.is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A file being written: hashed and size-checked as chunks arrive.
pub struct FileWriter {
    store: FileStore,
    tmp: Option<PathBuf>,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl FileWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a chunk; past the store's limit the temporary file is removed and
    /// [`FileError::TooLarge`] returned.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), FileError> {
        let new_size = self.size.saturating_add(chunk.len() as u64);
        if new_size > self.store.max_bytes {
            self.discard().await;
            return Err(FileError::TooLarge {
                limit: self.store.max_bytes,
            });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(FileError::Io {
                detail: "the file was already discarded".into(),
            });
        };
        if let Err(e) = file.write_all(chunk).await {
            self.discard().await;
            return Err(FileError::io("writing a temporary file", &e));
        }
        self.hasher.update(chunk);
        if self.head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.size = new_size;
        Ok(())
    }

    /// Syncs the file and moves it to its place; an identical file already stored is kept and
    /// the new copy dropped.
    pub async fn commit(mut self) -> Result<StoredFile, FileError> {
        let (Some(mut file), Some(tmp)) = (self.file.take(), self.tmp.clone()) else {
            return Err(FileError::Io {
                detail: "the file was already discarded".into(),
            });
        };
        let synced = async {
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        drop(file);
        if let Err(e) = synced {
            self.discard().await;
            return Err(FileError::io("syncing a temporary file", &e));
        }
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let id = FileId::from_bytes(digest);
        let dest = self.store.path(&id);
        let placed = async {
            if tokio::fs::try_exists(&dest).await? {
                return Ok(());
            }
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&tmp, &dest).await
        }
        .await;
        self.discard().await;
        placed.map_err(|e| FileError::io("moving a file into the store", &e))?;
        Ok(StoredFile {
            sha256: id,
            size: self.size,
            sniffed_mime: sniff_mime(&self.head),
        })
    }

    /// Closes and removes the temporary file (a no-op once renamed).
    async fn discard(&mut self) {
        self.file = None;
        if let Some(tmp) = self.tmp.take() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        self.file = None;
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
