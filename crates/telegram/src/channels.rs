//! What lead monitoring asks Telegram about channels and groups, through an account's one live
//! client: resolving a username (`contacts.resolveUsername`), checking and importing an invite
//! (`messages.checkChatInvite`, `messages.importChatInvite`), joining and leaving
//! (`channels.joinChannel`, `channels.leaveChannel`), reading history above a high-water mark
//! (`messages.getHistory`, paged), the reconciling difference from a `pts`
//! (`updates.getChannelDifference`, with `TooLong` answered by history), the account's dialogs
//! of channels and groups, and a chat by id (`channels.getChannels` / `messages.getChats`).
//!
//! Errors are the crate's [`Error`]: `FloodWait { seconds }`, or `Rpc { name }` with Telegram's
//! name (`CHANNELS_TOO_MUCH`, `USERNAME_NOT_OCCUPIED`, `INVITE_HASH_EXPIRED`, `CHANNEL_PRIVATE`,
//! …). None of these calls paces itself: the caller owns the budgets.

use crate::error::Error;
use crate::mapping::bot_api_id;
use crate::posts::{post_from_message, post_from_raw_update};
use grammers_client::Client;
use grammers_client::tl;
use grammers_session::types::{PeerAuth, PeerId, PeerKind, PeerRef};
use switchboard_domain::Post;

/// Most messages one `messages.getHistory` page returns.
pub const HISTORY_PAGE: i32 = 100;
/// Most events one `updates.getChannelDifference` asks for (Telegram gives users at most 100).
pub const DIFFERENCE_LIMIT: i32 = 100;

/// A channel, supergroup or basic group as Telegram described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRef {
    /// Bot-API style id (`-100…` channels and supergroups, `-id` basic groups).
    pub peer_id: i64,
    /// The access hash (channels; `None` for basic groups).
    pub access_hash: Option<i64>,
    /// Title.
    pub title: String,
    /// Public username, without `@`.
    pub username: Option<String>,
    /// A broadcast channel (not a group).
    pub broadcast: bool,
    /// The account is a member.
    pub member: bool,
    /// The account may post there: a channel it created or administers with the right to post,
    /// a group it is a member of and not barred from writing in (what autoposting offers).
    pub can_post: bool,
    /// Where the chat's history stood when Telegram listed it among the account's dialogs (its
    /// top message and, for channels, `pts`); `None` from other answers.
    pub head: Option<Head>,
}

/// The newest message and `pts` of a chat, as a dialog list gave them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The newest message id.
    pub top_message: i64,
    /// The channel's `pts` (channels and supergroups).
    pub pts: Option<i64>,
}

impl ChatRef {
    /// A reference from what is stored (id and access hash), for requests.
    pub fn stored(peer_id: i64, access_hash: Option<i64>) -> ChatRef {
        ChatRef {
            peer_id,
            access_hash,
            title: String::new(),
            username: None,
            broadcast: false,
            member: false,
            can_post: false,
            head: None,
        }
    }

    /// The grammers reference; `None` for an id that is not a chat.
    pub fn peer_ref(&self) -> Option<PeerRef> {
        let id = PeerId::from_bot_api_dialog_id(self.peer_id)?;
        if id.kind() == PeerKind::User {
            return None;
        }
        Some(PeerRef {
            id,
            auth: PeerAuth::from_hash(self.access_hash.unwrap_or(0)),
        })
    }

    /// True for channels and supergroups (they have a `pts` and can be joined and left).
    pub fn is_channel(&self) -> bool {
        PeerId::from_bot_api_dialog_id(self.peer_id).map(PeerId::kind) == Some(PeerKind::Channel)
    }

    fn input_peer(&self) -> Result<tl::enums::InputPeer, Error> {
        self.peer_ref()
            .map(Into::into)
            .ok_or(Error::Unexpected("a chat id that is not a chat"))
    }

    fn input_channel(&self) -> Result<tl::enums::InputChannel, Error> {
        match self.peer_ref() {
            Some(r) if self.is_channel() => Ok(r.into()),
            _ => Err(Error::Unexpected("a channel request for a basic group")),
        }
    }
}

/// The chat a TL chat describes; `None` for empty and forbidden ones.
pub fn chat_ref(chat: &tl::enums::Chat) -> Option<ChatRef> {
    match chat {
        tl::enums::Chat::Channel(c) => Some(ChatRef {
            peer_id: PeerId::channel(c.id)?.bot_api_dialog_id()?,
            access_hash: c.access_hash,
            title: c.title.clone(),
            username: c.username.clone().or_else(|| {
                c.usernames.as_ref().and_then(|v| {
                    v.iter().find_map(|u| match u {
                        tl::enums::Username::Username(u) if u.active => Some(u.username.clone()),
                        _ => None,
                    })
                })
            }),
            broadcast: c.broadcast,
            member: !c.left,
            can_post: channel_can_post(c),
            head: None,
        }),
        tl::enums::Chat::Chat(c) => Some(ChatRef {
            peer_id: PeerId::chat(c.id)?.bot_api_dialog_id()?,
            access_hash: None,
            title: c.title.clone(),
            username: None,
            broadcast: false,
            member: !c.left && !c.deactivated,
            can_post: !c.left
                && !c.deactivated
                && (c.creator
                    || c.admin_rights.is_some()
                    || !banned_from_writing(&c.default_banned_rights)),
            head: None,
        }),
        _ => None,
    }
}

/// A channel the account created, or administers with `post_messages`; a supergroup it is a
/// member of and not barred from writing in (by its own or the default restrictions).
fn channel_can_post(c: &tl::types::Channel) -> bool {
    if c.left {
        return false;
    }
    let admin = |post: bool| match &c.admin_rights {
        Some(tl::enums::ChatAdminRights::Rights(r)) => !post || r.post_messages,
        None => false,
    };
    if c.creator {
        return true;
    }
    if c.broadcast {
        return admin(true);
    }
    admin(false)
        || !(banned_from_writing(&c.banned_rights) || banned_from_writing(&c.default_banned_rights))
}

fn banned_from_writing(rights: &Option<tl::enums::ChatBannedRights>) -> bool {
    matches!(rights, Some(tl::enums::ChatBannedRights::Rights(r)) if r.send_messages || r.send_plain)
}

fn find_chat(chats: &[tl::enums::Chat], peer_id: i64) -> Option<ChatRef> {
    chats
        .iter()
        .filter_map(chat_ref)
        .find(|c| c.peer_id == peer_id)
}

fn rpc(name: &str) -> Error {
    Error::Rpc {
        code: 400,
        name: name.to_string(),
    }
}

/// Telegram's error name, if `e` is an RPC refusal.
pub fn rpc_name(e: &Error) -> Option<&str> {
    match e {
        Error::Rpc { name, .. } => Some(name),
        _ => None,
    }
}

/// Resolves a public username (`contacts.resolveUsername`). A user or bot is not a source:
/// `Rpc { name: "USERNAME_NOT_A_CHAT" }`.
pub async fn resolve_username(client: &Client, username: &str) -> Result<ChatRef, Error> {
    let tl::enums::contacts::ResolvedPeer::Peer(r) = client
        .invoke(&tl::functions::contacts::ResolveUsername {
            username: username.to_string(),
            referer: None,
        })
        .await?;
    let id = bot_api_id(&r.peer);
    if matches!(r.peer, tl::enums::Peer::User(_)) {
        return Err(rpc("USERNAME_NOT_A_CHAT"));
    }
    find_chat(&r.chats, id).ok_or(Error::Unexpected("a resolved peer without its chat"))
}

/// What an invite link leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invite {
    /// The account is already a member (or may peek): the chat.
    Known(ChatRef),
    /// A chat the account can join by importing the invite.
    Joinable {
        /// Its title.
        title: String,
        /// A broadcast channel.
        broadcast: bool,
        /// Joining sends a request an admin must approve.
        request_needed: bool,
    },
}

/// Checks an invite hash (`messages.checkChatInvite`).
pub async fn check_invite(client: &Client, hash: &str) -> Result<Invite, Error> {
    let answer = client
        .invoke(&tl::functions::messages::CheckChatInvite {
            hash: hash.to_string(),
        })
        .await?;
    Ok(match answer {
        tl::enums::ChatInvite::Already(a) => Invite::Known(
            chat_ref(&a.chat).ok_or(Error::Unexpected("an invite to an unusable chat"))?,
        ),
        tl::enums::ChatInvite::Peek(p) => Invite::Known(
            chat_ref(&p.chat).ok_or(Error::Unexpected("an invite to an unusable chat"))?,
        ),
        tl::enums::ChatInvite::Invite(i) => Invite::Joinable {
            title: i.title,
            broadcast: i.broadcast,
            request_needed: i.request_needed,
        },
    })
}

fn chats_of(updates: &tl::enums::Updates) -> &[tl::enums::Chat] {
    match updates {
        tl::enums::Updates::Combined(u) => &u.chats,
        tl::enums::Updates::Updates(u) => &u.chats,
        _ => &[],
    }
}

fn joined_chat(result: &tl::enums::messages::ChatInviteJoinResult) -> Option<ChatRef> {
    match result {
        tl::enums::messages::ChatInviteJoinResult::Ok(ok) => {
            chats_of(&ok.updates).iter().find_map(chat_ref)
        }
        tl::enums::messages::ChatInviteJoinResult::WebView(_) => None,
    }
}

/// Joins through an invite hash (`messages.importChatInvite`); the chat joined.
pub async fn import_invite(client: &Client, hash: &str) -> Result<ChatRef, Error> {
    let result = client
        .invoke(&tl::functions::messages::ImportChatInvite {
            hash: hash.to_string(),
        })
        .await?;
    let mut chat = joined_chat(&result).ok_or(Error::Unexpected("a join without its chat"))?;
    chat.member = true;
    Ok(chat)
}

/// Joins a public channel or supergroup (`channels.joinChannel`); the chat as it is now.
pub async fn join(client: &Client, chat: &ChatRef) -> Result<ChatRef, Error> {
    let result = client
        .invoke(&tl::functions::channels::JoinChannel {
            channel: chat.input_channel()?,
        })
        .await?;
    let mut joined = joined_chat(&result)
        .filter(|c| c.peer_id == chat.peer_id)
        .unwrap_or_else(|| chat.clone());
    joined.member = true;
    Ok(joined)
}

/// Leaves a channel or supergroup (`channels.leaveChannel`). Not being a member is not an
/// error.
pub async fn leave(client: &Client, chat: &ChatRef) -> Result<(), Error> {
    match client
        .invoke(&tl::functions::channels::LeaveChannel {
            channel: chat.input_channel()?,
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is("USER_NOT_PARTICIPANT") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A chat by its stored id and access hash (`channels.getChannels`, or `messages.getChats` for a
/// basic group): its title, username and whether the account is a member.
pub async fn get_chat(client: &Client, chat: &ChatRef) -> Result<ChatRef, Error> {
    let answer = if chat.is_channel() {
        client
            .invoke(&tl::functions::channels::GetChannels {
                id: vec![chat.input_channel()?],
            })
            .await?
    } else {
        let id = PeerId::from_bot_api_dialog_id(chat.peer_id)
            .and_then(PeerId::bare_id)
            .ok_or(Error::Unexpected("a chat id that is not a chat"))?;
        client
            .invoke(&tl::functions::messages::GetChats { id: vec![id] })
            .await?
    };
    let chats = match answer {
        tl::enums::messages::Chats::Chats(c) => c.chats,
        tl::enums::messages::Chats::Slice(c) => c.chats,
    };
    let mut found = find_chat(&chats, chat.peer_id).ok_or_else(|| rpc("CHANNEL_INVALID"))?;
    if found.access_hash.is_none() {
        found.access_hash = chat.access_hash;
    }
    Ok(found)
}

fn split_messages(
    answer: tl::enums::messages::Messages,
) -> (
    Vec<tl::enums::Message>,
    Vec<tl::enums::User>,
    Vec<tl::enums::Chat>,
) {
    use tl::enums::messages::Messages as M;
    match answer {
        M::Messages(m) => (m.messages, m.users, m.chats),
        M::Slice(m) => (m.messages, m.users, m.chats),
        M::ChannelMessages(m) => (m.messages, m.users, m.chats),
        M::NotModified(_) => (Vec::new(), Vec::new(), Vec::new()),
    }
}

fn message_id(m: &tl::enums::Message) -> i64 {
    i64::from(match m {
        tl::enums::Message::Message(m) => m.id,
        tl::enums::Message::Service(m) => m.id,
        tl::enums::Message::Empty(m) => m.id,
    })
}

/// What one history read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The posts, oldest first.
    pub posts: Vec<Post>,
    /// The newest message id seen (service messages included), at least the `min_id` asked.
    pub last_message_id: i64,
    /// The channel's `pts` when Telegram said (channels and supergroups).
    pub pts: Option<i64>,
    /// Pages requested (each one `messages.getHistory` call).
    pub calls: u32,
    /// More messages above `min_id` were left for a later read (`max_pages` reached).
    pub more: bool,
}

/// The newest `limit` messages of `chat` (at most [`HISTORY_PAGE`]) in one
/// `messages.getHistory`: the "try it" box, and the starting point of a new source (its newest
/// message id and `pts`).
pub async fn latest(client: &Client, chat: &ChatRef, limit: i32) -> Result<History, Error> {
    let answer = client
        .invoke(&get_history(
            chat.input_peer()?,
            0,
            0,
            limit.clamp(1, HISTORY_PAGE),
            0,
        ))
        .await?;
    let mut out = History {
        calls: 1,
        ..History::default()
    };
    take(&mut out, answer);
    Ok(out)
}

/// Reads the messages of `chat` newer than `min_id`, oldest first, in at most `max_pages`
/// `messages.getHistory` pages of [`HISTORY_PAGE`]. With `min_id = 0` only the newest page is
/// read (a source starts at its present, not at its beginning). When more than `max_pages`
/// pages are newer than `min_id`, the oldest of them are read, so the next call continues where
/// this one stopped and nothing is skipped.
pub async fn history(
    client: &Client,
    chat: &ChatRef,
    min_id: i64,
    max_pages: u32,
) -> Result<History, Error> {
    let min = i32::try_from(min_id.max(0)).unwrap_or(i32::MAX);
    if min == 0 {
        return latest(client, chat, HISTORY_PAGE).await;
    }
    let peer = chat.input_peer()?;
    let mut out = History {
        last_message_id: min_id,
        ..History::default()
    };
    // Pages are newest first; the page that starts just above `floor` (offset_id = floor + 1,
    // add_offset = -limit, min_id = floor) holds the oldest unread messages.
    let mut floor = min;
    for _ in 0..max_pages.max(1) {
        let answer = client
            .invoke(&get_history(
                peer.clone(),
                floor.saturating_add(1),
                -HISTORY_PAGE,
                HISTORY_PAGE,
                floor,
            ))
            .await?;
        out.calls += 1;
        let before = out.last_message_id;
        let got = take(&mut out, answer);
        if got < usize::try_from(HISTORY_PAGE).unwrap_or(100) || out.last_message_id <= before {
            out.more = false;
            return Ok(out);
        }
        floor = i32::try_from(out.last_message_id).unwrap_or(i32::MAX);
        out.more = true;
    }
    Ok(out)
}

fn get_history(
    peer: tl::enums::InputPeer,
    offset_id: i32,
    add_offset: i32,
    limit: i32,
    min_id: i32,
) -> tl::functions::messages::GetHistory {
    tl::functions::messages::GetHistory {
        peer,
        offset_id,
        offset_date: 0,
        add_offset,
        limit,
        max_id: 0,
        min_id,
        hash: 0,
    }
}

/// Adds a page's posts above the high-water mark to `out`; returns the page's size.
fn take(out: &mut History, answer: tl::enums::messages::Messages) -> usize {
    if let tl::enums::messages::Messages::ChannelMessages(m) = &answer {
        out.pts = Some(i64::from(m.pts));
    }
    let (messages, users, chats) = split_messages(answer);
    let peers = crate::mapping::PeerDirectory::from_tl(&users, &chats);
    let floor = out.last_message_id;
    let mut posts: Vec<Post> = messages
        .iter()
        .filter(|m| message_id(m) > floor)
        .filter_map(|m| post_from_message(m, &peers, false))
        .collect();
    if let Some(top) = messages.iter().map(message_id).max() {
        out.last_message_id = out.last_message_id.max(top);
    }
    posts.sort_by_key(|p| p.tg_message_id);
    out.posts.extend(posts);
    messages.len()
}

/// What one reconciling read of a channel found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// New posts and edits (an edit carries its `edit_date`), oldest first.
    pub posts: Vec<Post>,
    /// The channel's `pts` after them.
    pub pts: i64,
    /// The newest message id among them.
    pub last_message_id: i64,
    /// Telegram has nothing more after `pts` now.
    pub done: bool,
    /// The `pts` asked for was too old: `posts` are the channel's newest messages (from the
    /// history above the high-water mark, read by the caller) and `pts` is the channel's.
    pub too_long: bool,
}

/// One `updates.getChannelDifference` from `pts` (at most [`DIFFERENCE_LIMIT`] events). A `pts`
/// of 0 (never read) is answered like `TooLong`: only the channel's current `pts`, for the next
/// read, and its newest messages.
pub async fn channel_difference(
    client: &Client,
    chat: &ChatRef,
    pts: i64,
) -> Result<Difference, Error> {
    let answer = client
        .invoke(&tl::functions::updates::GetChannelDifference {
            force: false,
            channel: chat.input_channel()?,
            filter: tl::enums::ChannelMessagesFilter::Empty,
            pts: i32::try_from(pts.max(1)).unwrap_or(i32::MAX),
            limit: DIFFERENCE_LIMIT,
        })
        .await?;
    use tl::enums::updates::ChannelDifference as D;
    Ok(match answer {
        D::Empty(e) => Difference {
            posts: Vec::new(),
            pts: i64::from(e.pts),
            last_message_id: 0,
            done: true,
            too_long: false,
        },
        D::Difference(d) => {
            let peers = crate::mapping::PeerDirectory::from_tl(&d.users, &d.chats);
            let mut posts: Vec<Post> = d
                .new_messages
                .iter()
                .filter_map(|m| post_from_message(m, &peers, false))
                .collect();
            posts.extend(
                d.other_updates
                    .iter()
                    .filter_map(|u| post_from_raw_update(u, &peers)),
            );
            let last = d.new_messages.iter().map(message_id).max().unwrap_or(0);
            Difference {
                posts,
                pts: i64::from(d.pts),
                last_message_id: last,
                done: d.r#final,
                too_long: false,
            }
        }
        D::TooLong(t) => {
            let pts = match &t.dialog {
                tl::enums::Dialog::Dialog(d) => d.pts.map(i64::from).unwrap_or(pts),
                _ => pts,
            };
            let peers = crate::mapping::PeerDirectory::from_tl(&t.users, &t.chats);
            let mut posts: Vec<Post> = t
                .messages
                .iter()
                .filter_map(|m| post_from_message(m, &peers, false))
                .collect();
            posts.sort_by_key(|p| p.tg_message_id);
            let last = t.messages.iter().map(message_id).max().unwrap_or(0);
            Difference {
                posts,
                pts,
                last_message_id: last,
                done: true,
                too_long: true,
            }
        }
    })
}

/// The account's dialogs that are channels and groups (what "pick from dialogs" offers), newest
/// first, at most `limit` (read in pages of 100).
pub async fn chat_dialogs(client: &Client, limit: usize) -> Result<Vec<ChatRef>, Error> {
    let mut out: Vec<ChatRef> = Vec::new();
    let mut offset_date = 0;
    let mut offset_id = 0;
    let mut offset_peer: tl::enums::InputPeer = tl::enums::InputPeer::Empty;
    loop {
        let answer = client
            .invoke(&tl::functions::messages::GetDialogs {
                exclude_pinned: false,
                folder_id: None,
                offset_date,
                offset_id,
                offset_peer: offset_peer.clone(),
                limit: 100,
                hash: 0,
            })
            .await?;
        use tl::enums::messages::Dialogs as D;
        let (dialogs, messages, chats, full) = match answer {
            D::Dialogs(d) => (d.dialogs, d.messages, d.chats, true),
            D::Slice(d) => (d.dialogs, d.messages, d.chats, false),
            D::NotModified(_) => break,
        };
        let page = dialogs.len();
        let mut last: Option<(i32, i32, tl::enums::InputPeer)> = None;
        for dialog in &dialogs {
            let tl::enums::Dialog::Dialog(d) = dialog else {
                continue;
            };
            let id = bot_api_id(&d.peer);
            if let Some(mut c) = find_chat(&chats, id)
                && c.member
                && !out.iter().any(|o| o.peer_id == c.peer_id)
            {
                c.head = Some(Head {
                    top_message: i64::from(d.top_message),
                    pts: d.pts.map(i64::from),
                });
                if let Some(r) = c.peer_ref() {
                    let date = messages
                        .iter()
                        .find_map(|m| match m {
                            tl::enums::Message::Message(m)
                                if m.id == d.top_message && bot_api_id(&m.peer_id) == id =>
                            {
                                Some(m.date)
                            }
                            // A chat whose newest message is a service one (a channel just
                            // created, a member joined): without its date the next page
                            // would start from nothing and end the walk.
                            tl::enums::Message::Service(m)
                                if m.id == d.top_message && bot_api_id(&m.peer_id) == id =>
                            {
                                Some(m.date)
                            }
                            _ => None,
                        })
                        .unwrap_or(0);
                    last = Some((date, d.top_message, r.into()));
                }
                out.push(c);
            }
        }
        if full || page == 0 || out.len() >= limit {
            break;
        }
        match last {
            // A page that ends where the last one did would repeat forever; dialogs sharing a
            // date and top message id (channels number their own messages) differ by peer.
            Some((date, id, peer))
                if (date, id, &peer) != (offset_date, offset_id, &offset_peer) =>
            {
                offset_date = date;
                offset_id = id;
                offset_peer = peer;
            }
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stored_refs_make_requests_of_the_right_kind() {
        let ch = ChatRef::stored(-1_000_000_000_777, Some(5));
        assert!(ch.is_channel());
        match ch.input_channel().unwrap() {
            tl::enums::InputChannel::Channel(c) => {
                assert_eq!((c.channel_id, c.access_hash), (777, 5));
            }
            other => panic!("{other:?}"),
        }
        let group = ChatRef::stored(-555, None);
        assert!(!group.is_channel());
        assert!(group.input_channel().is_err());
        assert!(matches!(
            group.input_peer().unwrap(),
            tl::enums::InputPeer::Chat(tl::types::InputPeerChat { chat_id: 555 })
        ));
        assert!(ChatRef::stored(42, None).peer_ref().is_none());
    }

    #[test]
    fn rpc_names_are_read_back() {
        let e = rpc("CHANNELS_TOO_MUCH");
        assert_eq!(rpc_name(&e), Some("CHANNELS_TOO_MUCH"));
        assert_eq!(rpc_name(&Error::FloodWait { seconds: 3 }), None);
    }
}
