//! Channel membership and publishing rules of the world, as Telegram applies them: invite
//! links (`t.me/+HASH`, `t.me/joinchat/HASH`) with expiry, usage limits and join requests, the
//! per-account cap on joined channels and supergroups, posts the channel itself publishes
//! (albums, forwards of other channels' posts, edits, deletions), and what administrators may
//! do: post, edit, delete and pin ([`AdminRights`], [`Posting`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::world::{
    ChannelId, Effect, Entity, NewMessage, Peer, RpcError, UserId, World, bad, now,
};

/// Channels and supergroups an account may be a member of (Telegram's app-config
/// `channels_limit_default`; Premium accounts get 1000, not simulated). Joining past it answers
/// `400 CHANNELS_TOO_MUCH`.
pub const CHANNELS_LIMIT: usize = 500;

/// How many pts back a channel's update log reaches by default. Telegram's docs: a pts older
/// than about `latestPts - 100000` answers `updates.channelDifferenceTooLong`.
pub const DIFFERENCE_WINDOW: i32 = 100_000;

/// An invite link of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The hash part of `link`, as `messages.importChatInvite` takes it.
    pub hash: String,
    /// `https://t.me/+HASH`.
    pub link: String,
    /// Unix time after which the link answers `INVITE_HASH_EXPIRED`.
    pub expire_date: Option<i32>,
    /// How many users may join through it; then it answers `INVITE_HASH_EXPIRED`.
    pub usage_limit: Option<u32>,
    /// How many joined through it.
    pub usage: u32,
    /// Joining needs an admin's approval (`INVITE_REQUEST_SENT`).
    pub request_needed: bool,
    /// Revoked links answer `INVITE_HASH_EXPIRED`.
    pub revoked: bool,
    /// The permanent (primary) link every channel has.
    pub permanent: bool,
    /// Label shown to admins.
    pub title: Option<String>,
}

impl Invite {
    /// The primary link a channel gets when it is created.
    pub fn permanent() -> Self {
        Invite::new(NewInvite::default(), true)
    }

    fn new(spec: NewInvite, permanent: bool) -> Self {
        let hash = invite_hash();
        Invite {
            link: format!("https://t.me/+{hash}"),
            hash,
            expire_date: spec.expire_date,
            usage_limit: spec.usage_limit,
            usage: 0,
            request_needed: spec.request_needed,
            revoked: false,
            permanent,
            title: spec.title,
        }
    }

    fn usable(&self, at: i32) -> bool {
        !self.revoked
            && self.expire_date.is_none_or(|d| d > at)
            && self.usage_limit.is_none_or(|l| self.usage < l)
    }
}

/// A new invite link.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewInvite {
    /// Unix time the link expires.
    #[serde(default)]
    pub expire_date: Option<i32>,
    /// Maximum number of users joining through it.
    #[serde(default)]
    pub usage_limit: Option<u32>,
    /// Joining needs approval.
    #[serde(default)]
    pub request_needed: bool,
    /// Label.
    #[serde(default)]
    pub title: Option<String>,
}

/// Telegram invite hashes are 16 characters of the URL-safe base64 alphabet.
fn invite_hash() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What an administrator of a channel or supergroup may do (`chatAdminRights`; the Bot API's
/// `can_post_messages`, `can_edit_messages`, `can_delete_messages`, `can_pin_messages`). The
/// creator may do everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRights {
    /// Publish posts in a broadcast channel.
    #[serde(default)]
    pub post_messages: bool,
    /// Edit anyone's posts (and pin them, in a broadcast channel).
    #[serde(default)]
    pub edit_messages: bool,
    /// Delete anyone's messages.
    #[serde(default)]
    pub delete_messages: bool,
    /// Pin messages (supergroups; in a broadcast channel `edit_messages` also allows it).
    #[serde(default)]
    pub pin_messages: bool,
}

impl AdminRights {
    /// Every right (the creator's).
    pub const ALL: AdminRights = AdminRights {
        post_messages: true,
        edit_messages: true,
        delete_messages: true,
        pin_messages: true,
    };
}

/// Flags a message was sent with that the control API reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFlags {
    /// Sent without a notification (`silent`, the Bot API's `disable_notification`).
    #[serde(default)]
    pub silent: bool,
    /// Sent with the link preview turned off (`no_webpage`, the Bot API's
    /// `link_preview_options.is_disabled` / `disable_web_page_preview`).
    #[serde(default)]
    pub no_webpage: bool,
}

/// Who may publish in a channel and what was published by whom: administrators and their
/// rights, the account or bot behind each post (a broadcast post shows no author, but Telegram
/// still lets its poster edit and delete it), pinned messages, deleted ids and send flags.
#[derive(Clone, Debug, Default)]
pub struct Posting {
    /// Administrators other than the creator.
    pub admins: BTreeMap<UserId, AdminRights>,
    /// Message id → the account or bot that sent it.
    pub posters: HashMap<i32, UserId>,
    /// Pinned message ids.
    pub pinned: BTreeSet<i32>,
    /// Ids of messages deleted so far.
    pub deleted: BTreeSet<i32>,
    /// Message id → the flags it was sent with (only messages with a flag set).
    pub flags: HashMap<i32, SendFlags>,
}

impl crate::world::Channel {
    /// The rights of `user` here: all for the creator, the granted ones for an administrator,
    /// none otherwise.
    pub fn rights(&self, user: UserId) -> AdminRights {
        if self.creator == Some(user) {
            return AdminRights::ALL;
        }
        self.posting.admins.get(&user).copied().unwrap_or_default()
    }

    /// Whether `user` posted message `id`.
    pub fn posted_by(&self, id: i32, user: UserId) -> bool {
        self.posting.posters.get(&id) == Some(&user)
            || self
                .mbox
                .messages
                .get(&id)
                .is_some_and(|m| m.from == Some(user))
    }

    /// Whether `user` may send here: a member of a supergroup, the creator or an administrator
    /// with `post_messages` of a broadcast channel. A non-member answers
    /// `403 CHAT_WRITE_FORBIDDEN`; a subscriber of a broadcast channel `400 CHAT_ADMIN_REQUIRED`.
    pub fn check_post(&self, user: UserId) -> Result<(), RpcError> {
        let admin = self.posting.admins.contains_key(&user);
        if !self.members.contains(&user) && !admin {
            return Err(RpcError::new(403, "CHAT_WRITE_FORBIDDEN"));
        }
        if self.broadcast && !self.rights(user).post_messages {
            return Err(bad("CHAT_ADMIN_REQUIRED"));
        }
        Ok(())
    }

    /// Whether `user` may edit message `id`: its poster, or an administrator with
    /// `edit_messages` (`403 MESSAGE_AUTHOR_REQUIRED` otherwise).
    pub fn check_edit(&self, user: UserId, id: i32) -> Result<(), RpcError> {
        if self.posted_by(id, user) || self.rights(user).edit_messages {
            return Ok(());
        }
        Err(RpcError::new(403, "MESSAGE_AUTHOR_REQUIRED"))
    }

    /// Whether `user` may delete message `id`: its poster, or an administrator with
    /// `delete_messages` (`403 MESSAGE_DELETE_FORBIDDEN` otherwise).
    pub fn check_delete(&self, user: UserId, id: i32) -> Result<(), RpcError> {
        if self.posted_by(id, user) || self.rights(user).delete_messages {
            return Ok(());
        }
        Err(RpcError::new(403, "MESSAGE_DELETE_FORBIDDEN"))
    }

    /// Whether `user` may pin: `pin_messages` (or, in a broadcast channel, `edit_messages`);
    /// `400 CHAT_ADMIN_REQUIRED` otherwise.
    pub fn check_pin(&self, user: UserId) -> Result<(), RpcError> {
        let r = self.rights(user);
        if r.pin_messages || (self.broadcast && r.edit_messages) {
            return Ok(());
        }
        Err(bad("CHAT_ADMIN_REQUIRED"))
    }
}

/// A published album: its `grouped_id` and the ids of its items.
pub type Album = (i64, Vec<i32>);

/// What `messages.checkChatInvite` finds behind a hash.
pub enum InviteCheck {
    /// The account is already a member.
    Already(ChannelId),
    /// A channel the account may join (or ask to join).
    Invite {
        /// The channel.
        channel: ChannelId,
        /// Joining needs approval.
        request_needed: bool,
    },
}

impl World {
    /// The channels and supergroups `user` counts towards [`CHANNELS_LIMIT`].
    pub fn channel_count(&self, user: UserId) -> Result<usize, RpcError> {
        let joined = self.user(user)?.channels.len();
        Ok(joined + self.extra_channels.get(&user).copied().unwrap_or(0))
    }

    /// Makes `user` count as a member of `count` channels (never fewer than it really joined),
    /// so tests can reach the cap without creating hundreds of channels. Returns the count.
    pub fn set_channel_count(&mut self, user: UserId, count: usize) -> Result<usize, RpcError> {
        let joined = self.user(user)?.channels.len();
        self.extra_channels
            .insert(user, count.saturating_sub(joined));
        self.channel_count(user)
    }

    fn check_channel_cap(&self, user: UserId) -> Result<(), RpcError> {
        if self.channel_count(user)? >= CHANNELS_LIMIT {
            return Err(bad("CHANNELS_TOO_MUCH"));
        }
        Ok(())
    }

    /// A channel `user` may read (history, difference, messages, full info): any public one,
    /// a private one only as a member, as on Telegram (`400 CHANNEL_PRIVATE`).
    pub fn readable_channel(
        &self,
        user: UserId,
        channel: ChannelId,
    ) -> Result<&crate::world::Channel, RpcError> {
        let ch = self.channel(channel)?;
        if ch.username.is_none() && !ch.members.contains(&user) {
            return Err(bad("CHANNEL_PRIVATE"));
        }
        Ok(ch)
    }

    /// `channels.joinChannel`: public channels only (a private one needs its invite link),
    /// within the account's channel cap.
    pub fn join_public_channel(
        &mut self,
        user: UserId,
        channel: ChannelId,
    ) -> Result<(), RpcError> {
        let ch = self.channel(channel)?;
        if ch.members.contains(&user) {
            return Err(bad("USER_ALREADY_PARTICIPANT"));
        }
        if ch.username.is_none() {
            return Err(bad("CHANNEL_PRIVATE"));
        }
        self.check_channel_cap(user)?;
        self.join_channel(user, channel)?;
        Ok(())
    }

    fn find_invite(&self, hash: &str) -> Result<(ChannelId, &Invite), RpcError> {
        if hash.is_empty() {
            return Err(bad("INVITE_HASH_EMPTY"));
        }
        let at = now();
        let (c, inv) = self
            .channels
            .values()
            .find_map(|c| c.invites.iter().find(|i| i.hash == hash).map(|i| (c.id, i)))
            .ok_or_else(|| bad("INVITE_HASH_INVALID"))?;
        if !inv.usable(at) {
            return Err(bad("INVITE_HASH_EXPIRED"));
        }
        Ok((c, inv))
    }

    /// `messages.checkChatInvite`.
    pub fn check_invite(&self, user: UserId, hash: &str) -> Result<InviteCheck, RpcError> {
        let (c, inv) = self.find_invite(hash)?;
        if self
            .channels
            .get(&c)
            .is_some_and(|ch| ch.members.contains(&user))
        {
            return Ok(InviteCheck::Already(c));
        }
        Ok(InviteCheck::Invite {
            channel: c,
            request_needed: inv.request_needed,
        })
    }

    /// `messages.importChatInvite`: joins through a link, or files a join request
    /// (`400 INVITE_REQUEST_SENT`) when the link needs approval.
    pub fn import_invite(&mut self, user: UserId, hash: &str) -> Result<ChannelId, RpcError> {
        let (c, inv) = self.find_invite(hash)?;
        let request_needed = inv.request_needed;
        let ch = self.channel(c)?;
        if ch.members.contains(&user) {
            return Err(bad("USER_ALREADY_PARTICIPANT"));
        }
        self.check_channel_cap(user)?;
        let ch = self.channel_mut(c)?;
        if request_needed {
            ch.join_requests.entry(user).or_insert_with(now);
            return Err(bad("INVITE_REQUEST_SENT"));
        }
        if let Some(i) = ch.invites.iter_mut().find(|i| i.hash == hash) {
            i.usage += 1;
        }
        self.join_channel(user, c)?;
        Ok(c)
    }

    /// Approves a pending join request: the user becomes a member.
    pub fn approve_join_request(
        &mut self,
        channel: ChannelId,
        user: UserId,
    ) -> Result<(), RpcError> {
        let ch = self.channel_mut(channel)?;
        if ch.join_requests.remove(&user).is_none() {
            return Err(bad("HIDE_REQUESTS_EMPTY"));
        }
        self.join_channel(user, channel)?;
        Ok(())
    }

    /// Adds an invite link to a channel.
    pub fn create_invite(
        &mut self,
        channel: ChannelId,
        spec: NewInvite,
    ) -> Result<Invite, RpcError> {
        let ch = self.channel_mut(channel)?;
        if spec.usage_limit == Some(0) || spec.usage_limit.is_some_and(|l| l > 99_999) {
            return Err(bad("USAGE_LIMIT_INVALID"));
        }
        if spec.request_needed && spec.usage_limit.is_some() {
            return Err(bad("USAGE_LIMIT_INVALID"));
        }
        let inv = Invite::new(spec, false);
        ch.invites.push(inv.clone());
        Ok(inv)
    }

    /// Revokes an invite link: it answers `INVITE_HASH_EXPIRED` from now on.
    pub fn revoke_invite(&mut self, channel: ChannelId, hash: &str) -> Result<(), RpcError> {
        let ch = self.channel_mut(channel)?;
        let inv = ch
            .invites
            .iter_mut()
            .find(|i| i.hash == hash)
            .ok_or_else(|| bad("INVITE_HASH_INVALID"))?;
        inv.revoked = true;
        Ok(())
    }

    /// Publishes an album: every item gets the same new `grouped_id` (2–10 items, as on
    /// Telegram). Returns the group id and the message ids.
    pub fn post_album(
        &mut self,
        channel: ChannelId,
        items: Vec<NewMessage>,
    ) -> Result<(Album, Vec<Effect>), RpcError> {
        if !(2..=10).contains(&items.len()) {
            return Err(bad("MULTI_MEDIA_TOO_LONG"));
        }
        if items.iter().any(|m| m.media.is_none()) {
            return Err(bad("MEDIA_EMPTY"));
        }
        let grouped_id: i64 = rand::thread_rng().gen_range(1..i64::MAX);
        let mut ids = Vec::new();
        let mut effects = Vec::new();
        for mut m in items {
            m.grouped_id = Some(grouped_id);
            let (id, eff) = self.post_to_channel(channel, m)?;
            ids.push(id);
            effects.extend(eff);
        }
        Ok(((grouped_id, ids), effects))
    }

    /// Publishes in `channel` a forward of post `id` of `from` (with `fwd_from` naming the
    /// original channel and post, or the original's own origin if it was a forward itself).
    pub fn forward_post(
        &mut self,
        from: ChannelId,
        id: i32,
        channel: ChannelId,
    ) -> Result<(i32, Vec<Effect>), RpcError> {
        let m = self
            .channels
            .get(&from)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?
            .mbox
            .messages
            .get(&id)
            .filter(|m| m.action.is_none())
            .ok_or_else(|| bad("MESSAGE_ID_INVALID"))?;
        let copy = m.forwarded_copy(Peer::Channel(from));
        self.post_to_channel(channel, copy)
    }

    /// Edits a post as the channel.
    pub fn edit_post(
        &mut self,
        channel: ChannelId,
        id: i32,
        text: String,
        entities: Option<Vec<Entity>>,
    ) -> Result<Vec<Effect>, RpcError> {
        self.edit_channel_message(channel, None, id, Some(text), entities, None)
    }

    /// Makes `user` an administrator of `channel` with `rights` (a member from then on, as an
    /// administrator always is); `None` takes the rights away (the user stays a member).
    pub fn set_admin(
        &mut self,
        channel: ChannelId,
        user: UserId,
        rights: Option<AdminRights>,
    ) -> Result<(), RpcError> {
        self.user(user)?;
        let is_member = self.channel(channel)?.members.contains(&user);
        match rights {
            Some(r) => {
                if !is_member {
                    self.join_channel(user, channel)?;
                }
                self.channel_mut(channel)?.posting.admins.insert(user, r);
            }
            None => {
                self.channel_mut(channel)?.posting.admins.remove(&user);
            }
        }
        Ok(())
    }

    /// Pins or unpins messages of a channel or supergroup as `actor` (`None`: the channel
    /// itself). Members get `updatePinnedChannelMessages` with the channel's next pts.
    /// Unknown ids answer `400 MESSAGE_ID_INVALID`; pinning a pinned message (or unpinning
    /// one that is not) changes nothing and answers no update.
    pub fn pin_messages(
        &mut self,
        channel: ChannelId,
        actor: Option<UserId>,
        ids: &[i32],
        pinned: bool,
        except_key: Option<u64>,
    ) -> Result<(Option<crate::world::LoggedEvent>, Vec<Effect>), RpcError> {
        let ch = self.channel_mut(channel)?;
        if let Some(a) = actor {
            ch.check_pin(a)?;
        }
        if ids.is_empty()
            || ids
                .iter()
                .any(|id| ch.mbox.messages.get(id).is_none_or(|m| m.action.is_some()))
        {
            return Err(bad("MESSAGE_ID_INVALID"));
        }
        let changed: Vec<i32> = ids
            .iter()
            .copied()
            .filter(|id| ch.posting.pinned.contains(id) != pinned)
            .collect();
        if changed.is_empty() {
            return Ok((None, Vec::new()));
        }
        for id in &changed {
            if pinned {
                ch.posting.pinned.insert(*id);
            } else {
                ch.posting.pinned.remove(id);
            }
        }
        let ev = ch.mbox.record(
            crate::world::Event::Pinned {
                ids: changed,
                pinned,
            },
            now(),
        );
        let effects = vec![Effect::Channel {
            channel,
            event: ev.clone(),
            except_key,
        }];
        Ok((Some(ev), effects))
    }
}
