//! The event bus: everything operators see change live (account health, new messages, chat
//! updates) is published here once and fanned out to WebSocket clients, each of which receives
//! only what its permissions allow. Events carry increasing ids; a recent window is kept so a
//! client that reconnects with its last event id receives what it missed.
//!
//! Ids carry the process's boot epoch: the first id of a process is its start time in
//! microseconds since the Unix epoch, and ids count up from there. An id a client kept from an
//! earlier process (or from a process that started later, when clocks disagree) is therefore
//! outside this process's range, and [`EventBus::since`] tells the client to reload instead of
//! replaying from a number that means something else now. Ids stay below 2^53, so JavaScript
//! holds them exactly.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use switchboard_domain::{
    AccountId, AccountStatus, BotId, Chat, ChatId, Lead, Message, PostId, PostRun, Role,
    ScheduledPost, Source, Timestamp, UserId, WorkspaceId,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Who may see an event within its workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Audience {
    /// Every member of the workspace.
    Workspace,
    /// Owners and admins only.
    Admins,
    /// Admins, plus the operator the chat is assigned to (or every operator when unassigned).
    Chat {
        /// The chat.
        chat_id: ChatId,
        /// Its assignee, if any.
        assignee: Option<UserId>,
    },
    /// One member only (e.g. the operator a chat was taken from).
    User {
        /// The member.
        user_id: UserId,
    },
}

/// What a server event says: one variant per event type, serialized (once, when published) as
/// `{"type": <name>, "data": <payload>}`. Payloads borrow what they announce, so publishing
/// copies nothing. The names of the CRM Switchboard replaces are kept
/// (docs/architecture.md, "Where names in the code come from").
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerEvent<'a> {
    /// A message was stored (ingested, or a reply queued).
    NewMessage {
        /// The message.
        message: &'a Message,
    },
    /// A stored message changed: edited, deleted, or its file arrived.
    MessageUpdated {
        /// The message as it is now.
        message: &'a Message,
        /// The personal account of its chat.
        account_id: Option<AccountId>,
        /// The bot of its chat.
        bot_id: Option<BotId>,
    },
    /// A reply's delivery state changed.
    MessageStatus {
        /// The reply as it is now.
        message: &'a Message,
    },
    /// A chat changed, or left the receiver's view.
    ChatUpdated(ChatUpdate<'a>),
    /// A member came online or went offline.
    Presence {
        /// The member.
        user_id: UserId,
        /// Has at least one open connection.
        online: bool,
    },
    /// A personal account's health changed.
    AccountStatus {
        /// The account.
        account_id: AccountId,
        /// Its health.
        status: AccountStatus,
        /// Why (human-readable, never secret).
        detail: Option<&'a str>,
        /// End of a FloodWait.
        flood_wait_until: Option<Timestamp>,
    },
    /// A bot's health changed, or it was deleted.
    BotStatus {
        /// The bot.
        bot_id: BotId,
        /// Its health (a `BotStatus` name), or `deleted`.
        status: &'static str,
        /// Why.
        detail: Option<&'a str>,
    },
    /// The receiver was removed from the workspace: their sockets re-check their session now.
    MemberRemoved {},
    /// A monitoring task found a lead (published to every member of the workspace).
    LeadFound {
        /// The lead.
        lead: &'a Lead,
    },
    /// A monitored source changed state (resolved, joined, polled, waiting, failed, left).
    SourceUpdated {
        /// The source as it is now.
        source: &'a Source,
    },
    /// A scheduled post was created or changed, or its next run moved (every member).
    PostUpdated {
        /// The post as it is now.
        post: &'a ScheduledPost,
    },
    /// A scheduled post was deleted.
    PostDeleted {
        /// The post.
        id: PostId,
    },
    /// A run of a scheduled post was created, claimed, published, failed or missed.
    PostRunUpdated {
        /// The run as it is now.
        run: &'a PostRun,
    },
}

impl ServerEvent<'_> {
    /// The event's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::NewMessage { .. } => "new_message",
            ServerEvent::MessageUpdated { .. } => "message_updated",
            ServerEvent::MessageStatus { .. } => "message_status",
            ServerEvent::ChatUpdated(_) => "chat_updated",
            ServerEvent::Presence { .. } => "presence",
            ServerEvent::AccountStatus { .. } => "account_status",
            ServerEvent::BotStatus { .. } => "bot_status",
            ServerEvent::MemberRemoved {} => MEMBER_REMOVED,
            ServerEvent::LeadFound { .. } => "lead_found",
            ServerEvent::SourceUpdated { .. } => "source_updated",
            ServerEvent::PostUpdated { .. } => "post_updated",
            ServerEvent::PostDeleted { .. } => "post_deleted",
            ServerEvent::PostRunUpdated { .. } => "post_run_updated",
        }
    }
}

/// The type of the event that ends a removed member's sockets.
pub const MEMBER_REMOVED: &str = "member_removed";

/// The payload of `chat_updated`: one shape for the three cases. `chat` is the chat as it is
/// now when the receiver may still see it; `removed` tells a receiver who no longer may (the
/// operator it was taken from, or the other operators once an unassigned chat is taken, who get
/// only its id and new assignee) to drop it from their list.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ChatUpdate<'a> {
    /// The chat.
    pub chat_id: ChatId,
    /// Its assignee now.
    pub assignee_id: Option<UserId>,
    /// The chat, unless only its id and assignee go out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<&'a Chat>,
    /// The receiver should drop it unless it is theirs.
    pub removed: bool,
}

impl<'a> ChatUpdate<'a> {
    /// The chat changed.
    pub fn changed(chat: &'a Chat) -> Self {
        Self {
            chat_id: chat.id,
            assignee_id: chat.assignee_id,
            chat: Some(chat),
            removed: false,
        }
    }

    /// The chat left the receiver (it was taken from them).
    pub fn removed(chat: &'a Chat) -> Self {
        Self {
            removed: true,
            ..Self::changed(chat)
        }
    }

    /// An unassigned chat was taken: only its id and assignee.
    pub fn taken(chat: &Chat) -> ChatUpdate<'static> {
        ChatUpdate {
            chat_id: chat.id,
            assignee_id: chat.assignee_id,
            chat: None,
            removed: true,
        }
    }
}

/// One published event.
#[derive(Clone, Debug)]
pub struct Event {
    /// Increasing id; the first of a process is its boot epoch (see the module docs).
    pub id: u64,
    /// The workspace it belongs to.
    pub workspace: WorkspaceId,
    /// Who may see it.
    pub audience: Audience,
    /// The event's type, e.g. `account_status` ([`ServerEvent::name`]).
    pub name: &'static str,
    /// The frame every client receives, `{"id","type","data"}`, serialized once when published
    /// (not once per subscriber).
    frame: String,
}

impl Event {
    /// The serialized frame, `{"id":…,"type":…,"data":…}`.
    pub fn frame(&self) -> &str {
        &self.frame
    }

    /// The payload, parsed back from the frame (for inspection; clients get [`Event::frame`]).
    pub fn data(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.frame)
            .map(|mut v| v["data"].take())
            .unwrap_or_default()
    }

    /// True if a member with `role` and id `user` of `workspace` may receive this event.
    pub fn visible_to(&self, workspace: WorkspaceId, user: UserId, role: Role) -> bool {
        if self.workspace != workspace {
            return false;
        }
        match self.audience {
            Audience::Workspace => true,
            Audience::Admins => role.is_admin(),
            Audience::Chat { assignee, .. } => {
                role.is_admin() || assignee.is_none_or(|a| a == user)
            }
            Audience::User { user_id } => user_id == user,
        }
    }
}

/// Publishes events to subscribers and remembers a recent window for replay.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    tx: broadcast::Sender<Arc<Event>>,
    recent: Mutex<VecDeque<Arc<Event>>>,
    next_id: Mutex<u64>,
    first_id: u64,
    window: usize,
    closed: CancellationToken,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl EventBus {
    /// A bus that keeps the last `window` events for replay; its ids start at the boot epoch.
    pub fn new(window: usize) -> Self {
        Self::starting_at(window, boot_epoch())
    }

    /// A bus whose first event gets the id `first_id` (at least 1).
    pub fn starting_at(window: usize, first_id: u64) -> Self {
        let first_id = first_id.max(1);
        let (tx, _) = broadcast::channel(window.clamp(16, 65_536));
        Self {
            inner: Arc::new(BusInner {
                tx,
                recent: Mutex::new(VecDeque::with_capacity(window.min(65_536))),
                next_id: Mutex::new(first_id),
                first_id,
                window: window.max(1),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Publishes an event and returns its id. The event is serialized here, once, for every
    /// subscriber.
    pub fn publish(
        &self,
        workspace: WorkspaceId,
        audience: Audience,
        event: ServerEvent<'_>,
    ) -> u64 {
        let name = event.name();
        // `{"type":…,"data":…}`; the id is put in front once it is assigned.
        let body = serde_json::to_string(&event).unwrap_or_else(|e| {
            tracing::error!(error = %e, event = name, "an event failed to serialize");
            format!(r#"{{"type":"{name}","data":null}}"#)
        });
        // Id assignment and the append to the replay window happen under one lock so the
        // window is ordered by id.
        let mut recent = self.inner.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.inner.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = *next;
        *next += 1;
        drop(next);
        let frame = format!(r#"{{"id":{id},{}"#, body.get(1..).unwrap_or_default());
        let event = Arc::new(Event {
            id,
            workspace,
            audience,
            name,
            frame,
        });
        if recent.len() == self.inner.window {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&event));
        let _ = self.inner.tx.send(event);
        id
    }

    /// A live subscription (lagging subscribers are told how many they missed).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.tx.subscribe()
    }

    /// Events after `last_id` still in the window; `None` if some were already forgotten or
    /// `last_id` is not an id of this process (the client must then reload its state).
    pub fn since(&self, last_id: u64) -> Option<Vec<Arc<Event>>> {
        let recent = self.inner.recent.lock().unwrap_or_else(|p| p.into_inner());
        if !self.is_ours(last_id) {
            return None;
        }
        let oldest = recent.front().map_or(last_id + 1, |e| e.id);
        if last_id + 1 < oldest {
            return None;
        }
        Some(recent.iter().filter(|e| e.id > last_id).cloned().collect())
    }

    /// True if `id` was handed out by this process: an event's id, or the "nothing yet" id just
    /// before the first.
    pub fn is_ours(&self, id: u64) -> bool {
        (self.inner.first_id - 1..=self.last_id()).contains(&id)
    }

    /// The id of the newest event (the one before [`EventBus::first_id`] if none).
    pub fn last_id(&self) -> u64 {
        self.inner
            .next_id
            .lock()
            .map_or(self.inner.first_id - 1, |n| *n - 1)
    }

    /// Tells every live subscriber to end (the server is stopping): open sockets close and
    /// their clients reconnect, to the next process.
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Resolves once [`EventBus::close`] was called.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    /// The id of this process's first event.
    pub fn first_id(&self) -> u64 {
        self.inner.first_id
    }
}

/// Now in microseconds since the Unix epoch, the first event id of this process.
fn boot_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn presence(i: i64) -> ServerEvent<'static> {
        ServerEvent::Presence {
            user_id: UserId(i),
            online: true,
        }
    }

    #[test]
    fn visibility_rules() {
        let bus = EventBus::starting_at(10, 1);
        let ws = WorkspaceId(1);
        bus.publish(
            ws,
            Audience::Chat {
                chat_id: ChatId(5),
                assignee: Some(UserId(7)),
            },
            presence(0),
        );
        let e = &bus.since(0).unwrap()[0];
        assert!(e.visible_to(ws, UserId(7), Role::Operator));
        assert!(!e.visible_to(ws, UserId(8), Role::Operator));
        assert!(e.visible_to(ws, UserId(8), Role::Admin));
        assert!(
            !e.visible_to(WorkspaceId(2), UserId(7), Role::Owner),
            "never across workspaces"
        );
        bus.publish(ws, Audience::Admins, presence(0));
        let e = &bus.since(1).unwrap()[0];
        assert!(!e.visible_to(ws, UserId(7), Role::Operator));
        assert!(e.visible_to(ws, UserId(1), Role::Owner));
    }

    #[tokio::test]
    async fn replay_window_and_live_subscription() {
        let bus = EventBus::starting_at(3, 1);
        let mut rx = bus.subscribe();
        for i in 0..5 {
            bus.publish(WorkspaceId(1), Audience::Workspace, presence(i));
        }
        let first = rx.recv().await.unwrap();
        assert_eq!(first.id, 1);
        assert_eq!(
            first.frame(),
            r#"{"id":1,"type":"presence","data":{"user_id":0,"online":true}}"#
        );
        assert_eq!(first.data(), json!({"user_id": 0, "online": true}));
        assert_eq!(first.name, "presence");
        assert_eq!(bus.last_id(), 5);
        let ids: Vec<u64> = bus.since(2).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert!(
            bus.since(1).is_none(),
            "event 2 was forgotten: the client must reload"
        );
        assert_eq!(bus.since(5).unwrap().len(), 0);
    }

    #[test]
    fn ids_of_another_process_require_a_reload() {
        let before = EventBus::new(10);
        let id = before.publish(WorkspaceId(1), Audience::Workspace, presence(1));
        assert!(id < 1 << 53, "JavaScript holds the id exactly");
        // The restarted process: a later boot epoch.
        let after = EventBus::starting_at(10, id + 1_000_000);
        assert!(after.since(id).is_none(), "an id from before the restart");
        assert!(after.since(after.last_id()).unwrap().is_empty());
        after.publish(WorkspaceId(1), Audience::Workspace, presence(1));
        assert_eq!(after.since(after.first_id() - 1).unwrap().len(), 1);
        assert!(
            after.since(after.last_id() + 5).is_none(),
            "an id this process never handed out (a clock that went back)"
        );
        assert!(after.first_id() > id);
    }
}
