//! Downloading the files of ingested messages into the content-addressed file store. Ingestion
//! never waits for a download: it marks files above the size limit `too_large` in the message's
//! media, and queues the others on the account's download queue, which the account's connection
//! works through one file at a time (and at most `max_concurrent` across all accounts). When a
//! file is stored, the message's media gains `file_id` (the SHA-256), the real `size` and a
//! `mime_type`, and a `message_updated` event goes out. Downloads that failed or were still queued
//! when the server stopped (or crashed) are found again when the account's worker starts
//! ([`recover_downloads`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use switchboard_domain::{
    AccountId, AccountStore, ChatId, ChatOwner, Media, Message, MessageId, Timestamp, WorkspaceId,
};
use switchboard_files::{FileError, FileStore};
use switchboard_telegram::MediaFile;
use switchboard_telegram::grammers_client::Client;
use tokio::sync::{Semaphore, mpsc};

/// Downloads waiting per account; beyond that new files are skipped (and logged), so a flood
/// of media cannot grow memory without bound.
const QUEUE_PER_ACCOUNT: usize = 256;

/// The file store and the limits downloads run under.
#[derive(Clone, Debug)]
pub struct MediaDownloads {
    files: FileStore,
    slots: Arc<Semaphore>,
}

impl MediaDownloads {
    /// Downloads into `files` (whose limit is the largest file fetched), at most
    /// `max_concurrent` at a time across all accounts.
    pub fn new(files: FileStore, max_concurrent: usize) -> Self {
        Self {
            files,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The file store.
    pub fn files(&self) -> &FileStore {
        &self.files
    }
}

/// The pushing end of an account's download queue (boxed jobs keep an idle queue small).
pub(crate) type DownloadSender = mpsc::Sender<Box<DownloadJob>>;
/// The pulling end of an account's download queue.
pub(crate) type DownloadReceiver = mpsc::Receiver<Box<DownloadJob>>;

/// One file to fetch for one stored message.
#[derive(Debug, Clone)]
pub(crate) struct DownloadJob {
    message: MessageId,
    media: Media,
    file: MediaFile,
}

/// An account's download queue: ingestion pushes, the connection pulls.
pub(crate) fn queue() -> (DownloadSender, DownloadReceiver) {
    mpsc::channel(QUEUE_PER_ACCOUNT)
}

/// The files of one ingest batch, by Telegram message id and media id.
#[derive(Default)]
pub(crate) struct BatchFiles {
    files: HashMap<(i64, String), MediaFile>,
}

impl BatchFiles {
    /// Remembers a new message's file, or marks its media `too_large` when it exceeds the limit.
    pub(crate) fn offer(
        &mut self,
        media: &mut Option<Media>,
        tg_message_id: i64,
        file: MediaFile,
        max_bytes: u64,
    ) {
        if file.size().is_some_and(|s| s > max_bytes) {
            if let Some(media) = media {
                media.too_large = true;
            }
            return;
        }
        self.files
            .insert((tg_message_id, file.media_id.clone()), file);
    }

    /// Queues the downloads of freshly stored messages; never waits.
    pub(crate) fn enqueue(&self, account: AccountId, inserted: &[Message], queue: &DownloadSender) {
        if self.files.is_empty() {
            return;
        }
        for m in inserted {
            let Some(media) = &m.media else {
                continue;
            };
            let Some(media_id) = &media.id else {
                continue;
            };
            let Some(tg_id) = m.tg_message_id else {
                continue;
            };
            let Some(file) = self.files.get(&(tg_id, media_id.clone())) else {
                continue;
            };
            let job = Box::new(DownloadJob {
                message: m.id,
                media: media.clone(),
                file: file.clone(),
            });
            if let Err(e) = queue.try_send(job) {
                tracing::warn!(account_id = %account, message_id = %m.id.0, reason = %e, "media download skipped: queue full");
            }
        }
    }
}

/// Where a download's outcome is recorded and announced.
pub(crate) struct Recorder<'a> {
    pub(crate) store: &'a Arc<dyn AccountStore>,
    pub(crate) inbox: &'a crate::inbox::Inbox,
    pub(crate) account: AccountId,
    pub(crate) workspace: WorkspaceId,
}

impl Recorder<'_> {
    async fn record(&self, message: MessageId, media: &Media) {
        match self
            .store
            .set_message_media(self.account, message, media)
            .await
        {
            Ok(Some(m)) => self.inbox.message_changed(self.workspace, &m).await,
            Ok(None) => {}
            Err(e) => {
                tracing::error!(account_id = %self.account, error = %e, "could not record a downloaded file");
            }
        }
    }
}

/// Works through an account's queue until the connection ends (the caller drops this future).
pub(crate) async fn run_downloads(
    media: &MediaDownloads,
    client: &Client,
    queue: &mut DownloadReceiver,
    recorder: &Recorder<'_>,
) {
    while let Some(job) = queue.recv().await {
        let message = job.message;
        let mut attempt = 1;
        loop {
            // A download slot (shared by all accounts) is held per attempt, not while waiting.
            let Ok(slot) = media.slots.acquire().await else {
                return;
            };
            let result = fetch(media, client, (*job).clone()).await;
            drop(slot);
            match result {
                Ok(Some(updated)) => recorder.record(message, &updated).await,
                Ok(None) => {}
                Err(e) if attempt < DOWNLOAD_ATTEMPTS => {
                    tracing::info!(account_id = %recorder.account, message_id = %message.0, attempt, error = %e, "media download failed; retrying");
                    tokio::time::sleep(crate::retry::jitter(RETRY_AFTER * attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(account_id = %recorder.account, message_id = %message.0, attempts = attempt, error = %e, "media download failed");
                }
            }
            break;
        }
    }
}

/// Messages looked at per page (and per `getMessages` call) when finding downloads anew.
const RECOVER_PAGE: u32 = 100;

/// Finds the account's messages stored before `started` whose file was never stored — a
/// download that failed, or that was still queued when the server stopped or crashed — asks
/// Telegram for their files again (locations expire) and queues them, waiting for room in the
/// queue. A file now known to be too large is marked so. Stops quietly on an error; the next
/// start tries again.
pub(crate) async fn recover_downloads(
    media: &MediaDownloads,
    client: &Client,
    queue: &DownloadSender,
    recorder: &Recorder<'_>,
    started: Timestamp,
) {
    let store = recorder.inbox.store();
    let owner = ChatOwner::Account(recorder.account);
    let mut after = None;
    let mut queued = 0usize;
    loop {
        let page = match store
            .messages_missing_files(owner, started, after, RECOVER_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(account_id = %recorder.account, error = %e, "could not look for unfinished downloads");
                return;
            }
        };
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id);
        let mut by_chat: BTreeMap<ChatId, Vec<&Message>> = BTreeMap::new();
        for m in &page {
            by_chat.entry(m.chat_id).or_default().push(m);
        }
        for (chat, messages) in by_chat {
            match refetch_chat(media, client, recorder, chat, &messages).await {
                Ok(jobs) => {
                    for job in jobs {
                        if queue.send(Box::new(job)).await.is_err() {
                            return;
                        }
                        queued += 1;
                    }
                }
                Err(e) => {
                    tracing::info!(account_id = %recorder.account, chat_id = %chat, error = %e, "unfinished downloads of a chat not found again");
                }
            }
        }
    }
    if queued > 0 {
        tracing::info!(account_id = %recorder.account, queued, "unfinished media downloads queued again");
    }
}

/// The download jobs of `messages` of one chat, with file locations fetched anew; marks files
/// now known to be too large.
async fn refetch_chat(
    media: &MediaDownloads,
    client: &Client,
    recorder: &Recorder<'_>,
    chat: ChatId,
    messages: &[&Message],
) -> Result<Vec<DownloadJob>, String> {
    let chat = recorder
        .inbox
        .store()
        .get_chat(&crate::inbox::system_viewer(recorder.workspace), chat)
        .await
        .map_err(|e| e.to_string())?;
    let cached = recorder
        .store
        .get_cached_peer(recorder.account, chat.peer_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the chat's peer is not cached")?;
    let peer = switchboard_telegram::send::peer_ref(&cached).ok_or("the chat's peer is invalid")?;
    let ids: Vec<i64> = messages.iter().filter_map(|m| m.tg_message_id).collect();
    let files = switchboard_telegram::refetch_files(client, peer, chat.peer_kind, &ids)
        .await
        .map_err(|e| e.to_string())?;
    let files: HashMap<i64, MediaFile> = files.into_iter().collect();
    let mut jobs = Vec::new();
    for m in messages {
        let Some(file) = m.tg_message_id.and_then(|id| files.get(&id)) else {
            continue;
        };
        let Some(stored) = m
            .media
            .as_ref()
            .filter(|x| x.id.as_deref() == Some(file.media_id.as_str()))
        else {
            continue;
        };
        if file.size().is_some_and(|s| s > media.files.max_bytes()) {
            let mut marked = stored.clone();
            marked.too_large = true;
            recorder.record(m.id, &marked).await;
            continue;
        }
        jobs.push(DownloadJob {
            message: m.id,
            media: stored.clone(),
            file: file.clone(),
        });
    }
    Ok(jobs)
}

/// Tries per file before it is left undownloaded (the inbox then shows it as unavailable).
const DOWNLOAD_ATTEMPTS: u32 = 3;
/// The wait before the second try; the third waits twice as long (with jitter).
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Downloads one file; the media to record, or `None` when nothing changes.
async fn fetch(
    downloads: &MediaDownloads,
    client: &Client,
    job: DownloadJob,
) -> Result<Option<Media>, FileError> {
    let DownloadJob {
        mut media, file, ..
    } = job;
    let mut writer = downloads.files.writer().await?;
    let mut chunks = client.iter_download(&file);
    loop {
        let chunk = match chunks.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(FileError::Io {
                    detail: format!("downloading from Telegram: {e}"),
                });
            }
        };
        match writer.write(&chunk).await {
            Ok(()) => {}
            Err(FileError::TooLarge { .. }) => {
                // Telegram announced a smaller size than it sent.
                media.too_large = true;
                return Ok(Some(media));
            }
            Err(e) => return Err(e),
        }
    }
    let stored = writer.commit().await?;
    media.record_stored(&stored);
    Ok(Some(media))
}

/// What a stored file adds to a message's media.
pub(crate) trait RecordStored {
    /// Sets the file store id, the real size and the MIME type (the declared one, else the one
    /// the bytes show, else `application/octet-stream`).
    fn record_stored(&mut self, stored: &switchboard_files::StoredFile);
}

impl RecordStored for Media {
    fn record_stored(&mut self, stored: &switchboard_files::StoredFile) {
        if self.mime_type.as_deref().is_none_or(str::is_empty) {
            self.mime_type = Some(
                stored
                    .sniffed_mime
                    .unwrap_or("application/octet-stream")
                    .to_string(),
            );
        }
        self.file_id = Some(stored.sha256.to_hex());
        self.size = i64::try_from(stored.size).ok();
    }
}
