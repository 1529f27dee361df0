//! The plan of an ingestion, the same for both backends: a batch of incoming messages grouped
//! by peer without repeats ([`IngestPlan`]), and how the chats that already existed change with
//! the messages really inserted ([`ChatBump`]). The backends only turn these into SQL.

use crate::account::{Direction, IncomingMessage, Message, PeerKind};
use crate::ids::ChatId;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a batch says about one peer: its kind, and the names of its newest message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInBatch<'a> {
    /// The peer's Bot-API style id.
    pub peer_id: i64,
    /// Its kind.
    pub kind: PeerKind,
    /// The newest non-empty title; an empty one never overwrites a known title. `None` when
    /// no message of the batch names the peer (Telegram's echo of a sent message may not):
    /// then neither the title nor the username of a known chat changes.
    pub title: Option<&'a str>,
    /// The username of its newest message that names the peer (has a title).
    pub username: Option<&'a str>,
    /// Inbound messages of the batch (without repeats): a new chat starts with them unread.
    pub inbound: i32,
    /// The newest `sent_at` of the batch.
    pub last_at: i64,
}

/// A batch grouped by peer (by peer id), without repeated messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestPlan<'a> {
    /// The peers, by peer id: chats are created and renamed in this one order, so concurrent
    /// batches never deadlock.
    pub peers: Vec<PeerInBatch<'a>>,
    /// The messages, in batch order, each `(peer, Telegram id)` once.
    pub messages: Vec<&'a IncomingMessage>,
}

impl<'a> IngestPlan<'a> {
    /// The plan of `batch`.
    pub fn new(batch: &'a [IncomingMessage]) -> Self {
        let mut peers: Vec<PeerInBatch<'a>> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut seen: HashSet<(i64, i64)> = HashSet::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        for m in batch {
            let title = Some(m.chat_title.as_str()).filter(|t| !t.is_empty());
            let i = *index.entry(m.peer_id).or_insert_with(|| {
                peers.push(PeerInBatch {
                    peer_id: m.peer_id,
                    kind: m.peer_kind,
                    title: None,
                    username: None,
                    inbound: 0,
                    last_at: i64::MIN,
                });
                peers.len() - 1
            });
            let peer = &mut peers[i];
            if title.is_some() {
                peer.title = title;
                peer.username = m.chat_username.as_deref();
            }
            if seen.insert((m.peer_id, m.tg_message_id)) {
                if m.direction == Direction::In {
                    peer.inbound = peer.inbound.saturating_add(1);
                }
                peer.last_at = peer.last_at.max(m.sent_at.0);
                messages.push(m);
            }
        }
        // Chats are created and renamed in one order, so concurrent batches never deadlock.
        peers.sort_by_key(|p| p.peer_id);
        Self { peers, messages }
    }
}

/// How one chat changes with the messages a batch really inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatBump {
    /// Inbound messages inserted: added to the unread count (and reopening a resolved chat).
    pub inbound: i32,
    /// The newest `sent_at` inserted.
    pub last_at: i64,
}

impl ChatBump {
    /// The changes to the chats of `inserted`, leaving out the chats in `fresh` (created by
    /// the batch with their counts already set).
    pub fn of(inserted: &[Message], fresh: &HashSet<ChatId>) -> BTreeMap<ChatId, ChatBump> {
        let mut bumps: BTreeMap<ChatId, ChatBump> = BTreeMap::new();
        for m in inserted.iter().filter(|m| !fresh.contains(&m.chat_id)) {
            let bump = bumps.entry(m.chat_id).or_insert(ChatBump {
                inbound: 0,
                last_at: i64::MIN,
            });
            if m.direction == Direction::In {
                bump.inbound = bump.inbound.saturating_add(1);
            }
            bump.last_at = bump.last_at.max(m.sent_at.0);
        }
        bumps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn incoming(
        peer_id: i64,
        id: i64,
        title: &str,
        direction: Direction,
        at: i64,
    ) -> IncomingMessage {
        IncomingMessage {
            peer_id,
            peer_kind: PeerKind::User,
            chat_title: title.into(),
            chat_username: None,
            tg_message_id: id,
            direction,
            sender_id: None,
            sender_name: None,
            text: String::new(),
            entities: Vec::new(),
            media: None,
            reply_to_tg_id: None,
            sent_at: Timestamp(at),
        }
    }

    #[test]
    fn a_plan_groups_by_peer_in_peer_order_without_repeats() {
        let batch = [
            incoming(9, 1, "Nine", Direction::In, 10),
            incoming(3, 1, "Three", Direction::Out, 20),
            incoming(9, 1, "Nine again", Direction::In, 30),
            incoming(9, 2, "", Direction::In, 15),
        ];
        let plan = IngestPlan::new(&batch);
        let peers: Vec<_> = plan
            .peers
            .iter()
            .map(|p| (p.peer_id, p.title, p.inbound, p.last_at))
            .collect();
        assert_eq!(
            peers,
            [(3, Some("Three"), 0, 20), (9, Some("Nine again"), 2, 15)],
            "a repeat renames but is not counted; an empty title keeps the last one"
        );
        let ids: Vec<_> = plan
            .messages
            .iter()
            .map(|m| (m.peer_id, m.tg_message_id))
            .collect();
        assert_eq!(ids, [(9, 1), (3, 1), (9, 2)]);
    }
}
