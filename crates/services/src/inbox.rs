//! The operator inbox: what the HTTP API and the WebSocket call to read and act on chats, the
//! publishing of chat and message events with the audience each chat's assignee allows,
//! operator presence, and automatic assignment.
//!
//! Every read and write goes through the store with the caller's [`Viewer`], so visibility is
//! enforced by the queries themselves; this layer adds the events and the side effects (waking
//! the outbox, telling Telegram a chat was read).

use crate::events::{Audience, ChatUpdate, Event, EventBus, ServerEvent};
use crate::outbox::{Transport, Transports};
use crate::read_receipts::ReadReceipts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_domain::{
    Chat, ChatFilter, ChatId, ChatOwner, ChatStatus, Direction, InboxStore, IngestOutcome, Message,
    MessageEdit, MessageId, NewReply, NewUpload, Role, StoreError, StoreResult, Timestamp, UserId,
    Viewer, WorkspaceId,
};
use tokio::sync::Notify;

pub use crate::events::MEMBER_REMOVED;

/// The audience of events about `chat`.
pub fn chat_audience(chat: &Chat) -> Audience {
    Audience::Chat {
        chat_id: chat.id,
        assignee: chat.assignee_id,
    }
}

/// A viewer that sees the whole workspace, for the server's own lookups (never for requests).
pub fn system_viewer(workspace: WorkspaceId) -> Viewer {
    Viewer {
        workspace,
        user: UserId(0),
        role: Role::Owner,
    }
}

/// Who is online: open WebSocket connections per member.
#[derive(Default)]
struct Presence {
    connections: HashMap<(WorkspaceId, UserId), usize>,
}

struct Inner {
    store: Arc<dyn InboxStore>,
    events: EventBus,
    presence: Mutex<Presence>,
    /// When each operator was last given a chat automatically (ties go to the longest idle).
    last_assigned: Mutex<HashMap<UserId, Timestamp>>,
    auto_assign: bool,
    outbox_wake: Arc<Notify>,
    read_receipts: ReadReceipts,
    transports: Transports,
}

/// The inbox service. Cloning shares it.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

impl Inbox {
    /// An inbox over `store`; `auto_assign` turns round-robin assignment on.
    pub fn new(
        store: Arc<dyn InboxStore>,
        events: EventBus,
        transports: Transports,
        auto_assign: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                events,
                presence: Mutex::new(Presence::default()),
                last_assigned: Mutex::new(HashMap::new()),
                auto_assign,
                outbox_wake: Arc::new(Notify::new()),
                read_receipts: ReadReceipts::default(),
                transports,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn InboxStore> {
        &self.inner.store
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Notified whenever a reply is queued.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.outbox_wake)
    }

    /// The queue of read receipts to Telegram (drained by [`crate::read_receipts::run`]).
    pub fn read_receipts(&self) -> &ReadReceipts {
        &self.inner.read_receipts
    }

    // --- presence ---

    /// A WebSocket of `user` opened; announces them online on their first connection.
    pub fn connected(&self, workspace: WorkspaceId, user: UserId) {
        let first = {
            let mut p = self
                .inner
                .presence
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let n = p.connections.entry((workspace, user)).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.publish_presence(workspace, user, true);
        }
    }

    /// A WebSocket of `user` closed; announces them offline when it was their last.
    pub fn disconnected(&self, workspace: WorkspaceId, user: UserId) {
        let last = {
            let mut p = self
                .inner
                .presence
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match p.connections.get_mut(&(workspace, user)) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    p.connections.remove(&(workspace, user));
                    true
                }
                None => false,
            }
        };
        if last {
            self.publish_presence(workspace, user, false);
        }
    }

    /// Members of `workspace` with at least one open connection.
    pub fn online(&self, workspace: WorkspaceId) -> Vec<UserId> {
        let p = self
            .inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut users: Vec<UserId> = p
            .connections
            .keys()
            .filter(|(ws, _)| *ws == workspace)
            .map(|(_, u)| *u)
            .collect();
        users.sort();
        users
    }

    fn publish_presence(&self, workspace: WorkspaceId, user: UserId, online: bool) {
        self.inner.events.publish(
            workspace,
            Audience::Workspace,
            ServerEvent::Presence {
                user_id: user,
                online,
            },
        );
    }

    // --- ingestion ---

    /// After messages were stored: assigns chats that just received inbound messages and have
    /// no assignee, then publishes `chat_updated` and `new_message` for what changed.
    pub async fn after_ingest(&self, workspace: WorkspaceId, outcome: &IngestOutcome) {
        let mut chats: HashMap<ChatId, Chat> =
            outcome.chats.iter().map(|c| (c.id, c.clone())).collect();
        if self.inner.auto_assign {
            let mut waiting: Vec<ChatId> = outcome
                .inserted
                .iter()
                .filter(|m| m.direction == Direction::In)
                .map(|m| m.chat_id)
                .filter(|c| chats.get(c).is_some_and(|c| c.assignee_id.is_none()))
                .collect();
            waiting.sort();
            waiting.dedup();
            for chat in waiting {
                match self.auto_assign(workspace, chat).await {
                    Ok(Some(assigned)) => {
                        self.publish_taken(&assigned);
                        chats.insert(chat, assigned);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(chat_id = %chat, error = %e, "auto-assignment failed"),
                }
            }
        }
        let mut ordered: Vec<&Chat> = chats.values().collect();
        ordered.sort_by_key(|c| c.id);
        for chat in ordered {
            self.publish_chat(chat);
        }
        for m in &outcome.inserted {
            let audience = chats.get(&m.chat_id).map_or(
                Audience::Chat {
                    chat_id: m.chat_id,
                    assignee: None,
                },
                chat_audience,
            );
            self.inner
                .events
                .publish(workspace, audience, ServerEvent::NewMessage { message: m });
        }
    }

    /// After a member was removed (their chats unassigned with the membership): tells everyone
    /// the chats are back in the queue, then gives the unresolved ones to online operators.
    pub async fn member_removed(&self, workspace: WorkspaceId, member: UserId, released: &[Chat]) {
        // Their open sockets re-check the session at once and end, instead of receiving the
        // workspace's events until their next periodic check.
        self.inner.events.publish(
            workspace,
            Audience::User { user_id: member },
            ServerEvent::MemberRemoved {},
        );
        for chat in released {
            self.publish_reassigned(Some(member), chat);
            if !self.inner.auto_assign || chat.status == ChatStatus::Resolved {
                continue;
            }
            match self.auto_assign(workspace, chat.id).await {
                Ok(Some(assigned)) => {
                    self.publish_taken(&assigned);
                    self.publish_chat(&assigned);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(chat_id = %chat.id, error = %e, "auto-assignment failed"),
            }
        }
    }

    /// Publishes `message_updated` for an edited or deleted message.
    pub async fn message_changed(&self, workspace: WorkspaceId, message: &Message) {
        if let Some(chat) = self.chat_of(workspace, message).await {
            self.inner.events.publish(
                workspace,
                chat_audience(&chat),
                ServerEvent::MessageUpdated {
                    message,
                    account_id: chat.account_id,
                    bot_id: chat.bot_id,
                },
            );
        }
    }

    /// The chat of a message, for the audience of its events; `None` when it is gone (nobody
    /// needs the event then).
    async fn chat_of(&self, workspace: WorkspaceId, message: &Message) -> Option<Chat> {
        match self
            .inner
            .store
            .get_chat(&system_viewer(workspace), message.chat_id)
            .await
        {
            Ok(chat) => Some(chat),
            Err(StoreError::NotFound) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not find the chat of a changed message");
                None
            }
        }
    }

    /// Picks the online operator below their cap with the fewest open chats (the one idle
    /// longest among equals) and gives them the chat if it is still unassigned.
    async fn auto_assign(&self, workspace: WorkspaceId, chat: ChatId) -> StoreResult<Option<Chat>> {
        let online = self.online(workspace);
        if online.is_empty() {
            return Ok(None);
        }
        let loads = self.inner.store.operator_loads(workspace).await?;
        let pick = {
            let last = self
                .inner
                .last_assigned
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            loads
                .iter()
                .filter(|l| online.contains(&l.user) && l.open_chats < l.max_chats)
                .min_by_key(|l| {
                    (
                        l.open_chats,
                        last.get(&l.user).copied().unwrap_or(Timestamp(0)),
                        l.user,
                    )
                })
                .map(|l| l.user)
        };
        let Some(user) = pick else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let assigned = self.inner.store.auto_assign_chat(chat, user, now).await?;
        if assigned.is_some() {
            self.inner
                .last_assigned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(user, now);
        }
        Ok(assigned)
    }

    fn publish_chat(&self, chat: &Chat) {
        self.inner.events.publish(
            chat.workspace_id,
            chat_audience(chat),
            ServerEvent::ChatUpdated(ChatUpdate::changed(chat)),
        );
    }

    /// Publishes a chat's new assignee, also to the operator who just lost it (so their list
    /// drops it).
    fn publish_reassigned(&self, before: Option<UserId>, chat: &Chat) {
        self.publish_chat(chat);
        if before.is_none() {
            self.publish_taken(chat);
        }
        if let Some(previous) = before
            && chat.assignee_id != Some(previous)
        {
            self.inner.events.publish(
                chat.workspace_id,
                Audience::User { user_id: previous },
                ServerEvent::ChatUpdated(ChatUpdate::removed(chat)),
            );
        }
    }

    /// An unassigned chat (which every operator could see) now has an assignee: the others are
    /// told to drop it; only its id and new assignee go out.
    fn publish_taken(&self, chat: &Chat) {
        if chat.assignee_id.is_some() {
            self.inner.events.publish(
                chat.workspace_id,
                Audience::Workspace,
                ServerEvent::ChatUpdated(ChatUpdate::taken(chat)),
            );
        }
    }

    fn publish_message_status(&self, chat: &Chat, message: &Message) {
        self.inner.events.publish(
            chat.workspace_id,
            chat_audience(chat),
            ServerEvent::MessageStatus { message },
        );
    }

    // --- reads ---

    /// Chats the viewer may see.
    pub async fn list(&self, viewer: &Viewer, filter: &ChatFilter) -> StoreResult<Vec<Chat>> {
        self.inner.store.list_inbox(viewer, filter).await
    }

    /// One chat.
    pub async fn chat(&self, viewer: &Viewer, chat: ChatId) -> StoreResult<Chat> {
        self.inner.store.get_chat(viewer, chat).await
    }

    /// A page of a chat's messages, newest first.
    pub async fn messages(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.inner
            .store
            .chat_messages(viewer, chat, before, limit)
            .await
    }

    /// The events of `events` the viewer may see now (a replay): each event's own audience
    /// must admit the viewer, and an event about a chat only while the chat is still visible
    /// to them — one reassigned away since is not replayed.
    pub async fn still_visible(&self, viewer: &Viewer, events: Vec<Arc<Event>>) -> Vec<Arc<Event>> {
        let mut chats: HashMap<ChatId, bool> = HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if !e.visible_to(viewer.workspace, viewer.user, viewer.role) {
                continue;
            }
            if let Audience::Chat { chat_id, .. } = e.audience
                && !viewer.role.is_admin()
            {
                let visible = match chats.get(&chat_id) {
                    Some(v) => *v,
                    None => {
                        let v = match self.inner.store.get_chat(viewer, chat_id).await {
                            Ok(_) => true,
                            Err(StoreError::NotFound) => false,
                            Err(err) => {
                                tracing::warn!(chat_id = %chat_id, error = %err, "replay visibility check failed");
                                false
                            }
                        };
                        chats.insert(chat_id, v);
                        v
                    }
                };
                if !visible {
                    continue;
                }
            }
            out.push(e);
        }
        out
    }

    /// One message.
    pub async fn message(&self, viewer: &Viewer, message: MessageId) -> StoreResult<Message> {
        self.inner.store.get_message(viewer, message).await
    }

    /// Earlier versions of a message.
    pub async fn history(
        &self,
        viewer: &Viewer,
        message: MessageId,
    ) -> StoreResult<Vec<MessageEdit>> {
        self.inner.store.message_history(viewer, message).await
    }

    // --- actions ---

    /// Marks a chat read here and, when something was unread, on Telegram (`readHistory` for
    /// personal accounts, sent by the `read_receipts` worker: see [`crate::read_receipts`]).
    pub async fn mark_read(&self, viewer: &Viewer, chat: ChatId) -> StoreResult<Chat> {
        let (chat, newest) = self
            .inner
            .store
            .mark_chat_read(viewer, chat, Timestamp::now())
            .await?;
        self.publish_chat(&chat);
        if let Some(max_id) = newest {
            self.inner.read_receipts.queue(&chat, max_id);
        }
        Ok(chat)
    }

    /// Sets a chat's status.
    pub async fn set_status(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        status: ChatStatus,
    ) -> StoreResult<Chat> {
        let chat = self
            .inner
            .store
            .set_chat_status(viewer, chat, status, Timestamp::now())
            .await?;
        self.publish_chat(&chat);
        Ok(chat)
    }

    /// Assigns or unassigns a chat.
    pub async fn assign(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        assignee: Option<UserId>,
    ) -> StoreResult<Chat> {
        let before = self.inner.store.get_chat(viewer, chat).await?.assignee_id;
        let chat = self
            .inner
            .store
            .assign_chat(viewer, chat, assignee, Timestamp::now())
            .await?;
        self.publish_reassigned(before, &chat);
        Ok(chat)
    }

    /// Records an uploaded attachment as its workspace's.
    pub async fn record_upload(&self, upload: &NewUpload) -> StoreResult<()> {
        self.inner
            .store
            .record_upload(upload, Timestamp::now())
            .await
    }

    /// Queues a reply (message and outbox item in one transaction) and wakes the sender.
    pub async fn reply(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        reply: &NewReply,
    ) -> StoreResult<(Message, Chat)> {
        let before = self.inner.store.get_chat(viewer, chat).await?.assignee_id;
        let (message, chat) = self
            .inner
            .store
            .enqueue_reply(viewer, chat, reply, Timestamp::now())
            .await?;
        self.publish_reassigned(before, &chat);
        self.inner.events.publish(
            chat.workspace_id,
            chat_audience(&chat),
            ServerEvent::NewMessage { message: &message },
        );
        self.inner.outbox_wake.notify_one();
        Ok((message, chat))
    }

    /// Sends a failed reply again.
    pub async fn retry(&self, viewer: &Viewer, message: MessageId) -> StoreResult<Message> {
        let message = self
            .inner
            .store
            .retry_reply(viewer, message, Timestamp::now())
            .await?;
        let chat = self.inner.store.get_chat(viewer, message.chat_id).await?;
        self.publish_message_status(&chat, &message);
        self.inner.outbox_wake.notify_one();
        Ok(message)
    }

    /// Records that a reply whose send was uncertain did reach the chat (the operator checked).
    pub async fn mark_sent(&self, viewer: &Viewer, message: MessageId) -> StoreResult<Message> {
        let message = self
            .inner
            .store
            .mark_reply_sent(viewer, message, Timestamp::now())
            .await?;
        let chat = self.inner.store.get_chat(viewer, message.chat_id).await?;
        self.publish_message_status(&chat, &message);
        Ok(message)
    }

    /// Announces a reply's new delivery state (used by the outbox).
    pub async fn delivery_changed(&self, message: &Message, workspace: WorkspaceId) {
        if let Some(chat) = self.chat_of(workspace, message).await {
            self.publish_message_status(&chat, message);
        }
    }

    /// The transport that sends for `chat`'s owner.
    pub fn transport_for(&self, chat: &Chat) -> Option<Arc<dyn Transport>> {
        match ChatOwner::of(chat)? {
            ChatOwner::Account(_) => self.inner.transports.accounts(),
            ChatOwner::Bot(_) => self.inner.transports.bots(),
        }
    }
}
