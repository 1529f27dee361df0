//! The one ingest pipeline of accounts and bots: **map** each received update to a change,
//! **store** consecutive new messages in one transaction, queue their **files**, then
//! **assign** and **publish** (`Inbox::after_ingest`); edits and deletions are applied in
//! order between the runs of new messages. What differs between an account and a bot — how an
//! update maps, which store methods write it, how files are fetched, what else commits with
//! the messages — is its [`Source`].

use crate::inbox::Inbox;
use std::future::Future;
use switchboard_domain::{
    IncomingMessage, IngestOutcome, Message, StoreError, Timestamp, WorkspaceId,
};
/// What one received update changes: a new message, an edit or a deletion (the account
/// mapping's type; a bot's updates map to it too).
pub(crate) use switchboard_telegram::MappedUpdate as Change;

/// An account's or a bot's side of the pipeline.
pub(crate) trait Source: Send {
    /// An update as received.
    type Update: Send + Sync;

    /// Maps one update; `None` when it changes nothing stored. May remember the update's file.
    fn map(&mut self, update: &Self::Update) -> Option<Change>;

    /// Called once the update's change is applied (or stored with the next run).
    fn mapped(&mut self, _update: &Self::Update) {}

    /// True when something must be committed even without new messages.
    fn has_uncommitted(&self) -> bool {
        false
    }

    /// Stores new messages, and whatever the source commits with them, in one transaction.
    fn store(
        &mut self,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;

    /// Applies an edit; the message if it is stored.
    fn edit(
        &self,
        message: &IncomingMessage,
        edited_at: Timestamp,
    ) -> impl Future<Output = Result<Option<Message>, StoreError>> + Send;

    /// Marks messages deleted; those marked.
    fn delete(
        &self,
        peer_id: Option<i64>,
        tg_message_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<Message>, StoreError>> + Send;

    /// Queues the downloads of freshly stored messages; never waits for them.
    fn files(&mut self, inserted: &[Message]);
}

/// Runs a batch of updates through the pipeline; returns how many messages were inserted.
pub(crate) async fn ingest<S: Source>(
    source: &mut S,
    inbox: &Inbox,
    workspace: WorkspaceId,
    batch: &[S::Update],
) -> Result<u64, StoreError> {
    let now = Timestamp::now();
    let mut run = Run {
        inbox,
        workspace,
        now,
        pending: Vec::new(),
        inserted: 0,
    };
    for u in batch {
        match source.map(u) {
            Some(Change::New(m)) => run.pending.push(m),
            Some(Change::Edited { message, edited_at }) => {
                run.flush(source).await?;
                if let Some(m) = source.edit(&message, edited_at).await? {
                    inbox.message_changed(workspace, &m).await;
                }
            }
            Some(Change::Deleted {
                peer_id,
                tg_message_ids,
            }) => {
                run.flush(source).await?;
                for m in source.delete(peer_id, &tg_message_ids).await? {
                    inbox.message_changed(workspace, &m).await;
                }
            }
            None => {}
        }
        source.mapped(u);
    }
    run.flush(source).await?;
    Ok(run.inserted)
}

struct Run<'a> {
    inbox: &'a Inbox,
    workspace: WorkspaceId,
    now: Timestamp,
    pending: Vec<IncomingMessage>,
    inserted: u64,
}

impl Run<'_> {
    async fn flush<S: Source>(&mut self, source: &mut S) -> Result<(), StoreError> {
        if self.pending.is_empty() && !source.has_uncommitted() {
            return Ok(());
        }
        let outcome = source.store(&self.pending, self.now).await?;
        self.pending.clear();
        source.files(&outcome.inserted);
        self.inbox.after_ingest(self.workspace, &outcome).await;
        self.inserted += outcome.inserted.len() as u64;
        Ok(())
    }
}
