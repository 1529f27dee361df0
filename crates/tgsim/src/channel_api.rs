//! The [`Handle`] side of channels: publishing as the channel (albums, forwards, edits,
//! deletions), invite links and join requests, per-channel push settings, the per-account
//! channel count, rate limits and per-account counters — everything a test of a channel
//! monitor drives, also exposed by the control API.

use serde::{Deserialize, Serialize};

use crate::channels::{AdminRights, CHANNELS_LIMIT, Invite, NewInvite};
use crate::limits::RateLimit;
use crate::world::{self, ChannelId, Peer, UserId};
use crate::{
    AccountCounters, Entity, Error, Handle, MessageView, OutgoingMessage, SentMessage, view,
};

/// A channel or supergroup as reported by the control API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelView {
    /// The peer.
    pub peer: Peer,
    /// Title.
    pub title: String,
    /// Username, if public.
    pub username: Option<String>,
    /// Broadcast channel (false: supergroup).
    pub broadcast: bool,
    /// Members.
    pub members: Vec<UserId>,
    /// The channel's pts.
    pub pts: i32,
    /// Highest message id.
    pub last_id: i32,
    /// See [`crate::world::Channel::push_every`].
    pub push_every: u32,
    /// See [`crate::world::Channel::difference_window`].
    pub difference_window: i32,
    /// Invite links.
    pub invites: Vec<Invite>,
    /// Users waiting for approval.
    pub join_requests: Vec<UserId>,
    /// Administrators other than the creator, with their rights.
    #[serde(default)]
    pub admins: Vec<ChannelAdmin>,
    /// Pinned message ids.
    #[serde(default)]
    pub pinned: Vec<i32>,
    /// The channel's access hash (what an account's requests carry; tests address the channel
    /// with it the way a hub that saw the channel in its dialogs would).
    #[serde(default)]
    pub access_hash: i64,
    /// Ids of the messages deleted so far.
    #[serde(default)]
    pub deleted: Vec<i32>,
}

/// An administrator of a channel and its rights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelAdmin {
    /// The account or bot.
    pub user_id: UserId,
    /// What it may do.
    pub rights: AdminRights,
}

/// Settings of a channel a test may change at run time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChannelOptions {
    /// See [`crate::world::Channel::push_every`].
    #[serde(default)]
    pub push_every: Option<u32>,
    /// See [`crate::world::Channel::difference_window`] (at least 1).
    #[serde(default)]
    pub difference_window: Option<i32>,
}

/// A published album.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlbumSent {
    /// The `grouped_id` every item carries.
    pub grouped_id: i64,
    /// The items, in order.
    pub messages: Vec<SentMessage>,
}

/// How many channels an account counts towards the cap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelCount {
    /// Channels and supergroups counted (joined plus those set with `set_channel_count`).
    pub count: usize,
    /// The cap (`CHANNELS_TOO_MUCH` at it).
    pub limit: usize,
    /// The simulated channels it really joined.
    pub channels: Vec<ChannelId>,
}

fn not_found(what: &str, id: i64) -> Error {
    Error::NotFound(format!("{what} {id}"))
}

impl Handle {
    fn with_channel<T>(
        &self,
        channel: ChannelId,
        f: impl FnOnce(&world::World, &world::Channel) -> T,
    ) -> Result<T, Error> {
        let w = self.shared.world.lock();
        let ch = w
            .channels
            .get(&channel)
            .ok_or_else(|| not_found("channel", channel.0))?;
        Ok(f(&w, ch))
    }

    fn check_channel(&self, channel: ChannelId) -> Result<(), Error> {
        self.with_channel(channel, |_, _| ())
    }

    /// A channel's state, members, invite links and join requests.
    pub fn channel(&self, channel: ChannelId) -> Result<ChannelView, Error> {
        self.with_channel(channel, |_, ch| ChannelView {
            peer: Peer::Channel(ch.id),
            title: ch.title.clone(),
            username: ch.username.clone(),
            broadcast: ch.broadcast,
            members: ch.members.iter().copied().collect(),
            pts: ch.mbox.pts,
            last_id: ch.mbox.last_id,
            push_every: ch.push_every,
            difference_window: ch.difference_window,
            invites: ch.invites.clone(),
            join_requests: ch.join_requests.keys().copied().collect(),
            admins: ch
                .posting
                .admins
                .iter()
                .map(|(u, r)| ChannelAdmin {
                    user_id: *u,
                    rights: *r,
                })
                .collect(),
            pinned: ch.posting.pinned.iter().copied().collect(),
            access_hash: ch.access_hash,
            deleted: ch.posting.deleted.iter().copied().collect(),
        })
    }

    /// Makes `user` (an account or a bot) an administrator of `channel` with `rights`,
    /// joining it if needed; `None` takes the rights away.
    pub fn set_channel_admin(
        &self,
        channel: ChannelId,
        user: UserId,
        rights: Option<AdminRights>,
    ) -> Result<ChannelView, Error> {
        self.check_channel(channel)?;
        self.shared.world.lock().set_admin(channel, user, rights)?;
        self.channel(channel)
    }

    /// Pins (or unpins) a message as the channel itself; members get
    /// `updatePinnedChannelMessages`.
    pub fn pin_post(&self, channel: ChannelId, id: i32, pinned: bool) -> Result<(), Error> {
        self.check_channel(channel)?;
        Ok(self.shared.apply(|w| {
            let (_, effects) = w.pin_messages(channel, None, &[id], pinned, None)?;
            Ok(((), effects))
        })?)
    }

    /// Changes a channel's push and difference settings.
    pub fn set_channel_options(
        &self,
        channel: ChannelId,
        options: ChannelOptions,
    ) -> Result<ChannelView, Error> {
        if options.difference_window.is_some_and(|d| d < 1) {
            return Err(Error::Invalid(
                "difference_window must be at least 1".into(),
            ));
        }
        {
            let mut w = self.shared.world.lock();
            let ch = w
                .channels
                .get_mut(&channel)
                .ok_or_else(|| not_found("channel", channel.0))?;
            if let Some(p) = options.push_every {
                ch.push_every = p;
            }
            if let Some(d) = options.difference_window {
                ch.difference_window = d;
            }
        }
        self.channel(channel)
    }

    /// Every message of a channel (service messages included), oldest first.
    pub fn channel_posts(&self, channel: ChannelId) -> Result<Vec<MessageView>, Error> {
        self.with_channel(channel, |w, ch| {
            ch.mbox.messages.values().map(|m| view(w, m)).collect()
        })
    }

    /// Publishes an album (2–10 items with media) as the channel; the items share one
    /// `grouped_id`.
    pub fn post_album(
        &self,
        channel: ChannelId,
        items: Vec<OutgoingMessage>,
    ) -> Result<AlbumSent, Error> {
        self.check_channel(channel)?;
        let items = items.into_iter().map(|m| self.to_new_message(m)).collect();
        let (grouped_id, ids) = self.shared.apply(|w| w.post_album(channel, items))?;
        Ok(AlbumSent {
            grouped_id,
            messages: ids
                .into_iter()
                .map(|id| SentMessage {
                    id,
                    peer: Peer::Channel(channel),
                })
                .collect(),
        })
    }

    /// Publishes in `channel` a forward of post `id` of channel `from` (`fwd_from` names the
    /// original channel and post).
    pub fn forward_post(
        &self,
        channel: ChannelId,
        from: ChannelId,
        id: i32,
    ) -> Result<SentMessage, Error> {
        self.check_channel(channel)?;
        self.check_channel(from)?;
        let id = self.shared.apply(|w| w.forward_post(from, id, channel))?;
        Ok(SentMessage {
            id,
            peer: Peer::Channel(channel),
        })
    }

    /// Edits a post as the channel; members get `updateEditChannelMessage`.
    pub fn edit_post(
        &self,
        channel: ChannelId,
        id: i32,
        text: String,
        entities: Option<Vec<Entity>>,
    ) -> Result<(), Error> {
        self.check_channel(channel)?;
        Ok(self
            .shared
            .apply(|w| Ok(((), w.edit_post(channel, id, text, entities)?)))?)
    }

    /// Deletes posts as the channel; members get `updateDeleteChannelMessages`. Returns the
    /// ids that existed.
    pub fn delete_posts(&self, channel: ChannelId, ids: &[i32]) -> Result<Vec<i32>, Error> {
        self.check_channel(channel)?;
        Ok(self.shared.apply(|w| {
            let (ev, effects) = w.delete_channel_messages(channel, None, ids, None)?;
            let gone = match ev.map(|e| e.event) {
                Some(world::Event::DeleteMessages(ids)) => ids,
                _ => Vec::new(),
            };
            Ok((gone, effects))
        })?)
    }

    /// Adds an invite link to a channel.
    pub fn create_invite(&self, channel: ChannelId, spec: NewInvite) -> Result<Invite, Error> {
        self.check_channel(channel)?;
        Ok(self.shared.world.lock().create_invite(channel, spec)?)
    }

    /// Revokes an invite link.
    pub fn revoke_invite(&self, channel: ChannelId, hash: &str) -> Result<(), Error> {
        self.check_channel(channel)?;
        Ok(self.shared.world.lock().revoke_invite(channel, hash)?)
    }

    /// Approves a user's pending join request.
    pub fn approve_join_request(&self, channel: ChannelId, user: UserId) -> Result<(), Error> {
        self.check_channel(channel)?;
        Ok(self
            .shared
            .world
            .lock()
            .approve_join_request(channel, user)?)
    }

    /// How many channels `user` counts towards the cap of [`CHANNELS_LIMIT`].
    pub fn channel_count(&self, user: UserId) -> Result<ChannelCount, Error> {
        let w = self.shared.world.lock();
        let u = w
            .users
            .get(&user)
            .ok_or_else(|| not_found("user", user.0))?;
        Ok(ChannelCount {
            count: w.channel_count(user)?,
            limit: CHANNELS_LIMIT,
            channels: u.channels.iter().copied().collect(),
        })
    }

    /// Makes `user` count as a member of `count` channels (at least those it joined), to test
    /// the cap without creating hundreds of channels.
    pub fn set_channel_count(&self, user: UserId, count: usize) -> Result<ChannelCount, Error> {
        {
            let mut w = self.shared.world.lock();
            if !w.users.contains_key(&user) {
                return Err(not_found("user", user.0));
            }
            w.set_channel_count(user, count)?;
        }
        self.channel_count(user)
    }

    /// The per-account rate limits in force.
    pub fn rate_limits(&self) -> Vec<RateLimit> {
        self.shared.limits.lock().rules()
    }

    /// Adds a rate limit or replaces the one with the same name (its usage starts afresh).
    pub fn set_rate_limit(&self, rule: RateLimit) -> Result<(), Error> {
        if rule.max == 0 || rule.window_secs == 0 || rule.methods.is_empty() {
            return Err(Error::Invalid(
                "max, window_secs and methods must not be empty".into(),
            ));
        }
        self.shared.limits.lock().set(rule);
        Ok(())
    }

    /// Removes a rate limit by name.
    pub fn remove_rate_limit(&self, name: &str) -> Result<(), Error> {
        if self.shared.limits.lock().remove(name) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("rate limit {name}")))
        }
    }

    /// Opens a bot deep link as `user`'s Telegram app does: `https://t.me/<bot>?start=<payload>`
    /// (or `tg://resolve?domain=<bot>&start=<payload>`) and pressing Start sends the bot
    /// `/start <payload>` (a `bot_command` entity over `/start`).
    pub fn open_bot_link(&self, user: UserId, link: &str) -> Result<SentMessage, Error> {
        let invalid = || Error::Invalid(format!("not a bot start link: {link}"));
        let (name, payload) = parse_start_link(link).ok_or_else(invalid)?;
        let bot = self
            .users()
            .into_iter()
            .find(|u| {
                u.bot
                    && u.username
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| Error::NotFound(format!("bot @{name}")))?;
        let text = if payload.is_empty() {
            "/start".to_string()
        } else {
            format!("/start {payload}")
        };
        let msg = OutgoingMessage {
            text,
            entities: vec![Entity {
                kind: "bot_command".into(),
                offset: 0,
                length: 6,
                url: None,
                language: None,
                user_id: None,
            }],
            ..Default::default()
        };
        self.send_message(user, Peer::User(bot.id), msg)
    }

    /// How many auth keys are signed in as `user` now (its live sessions; `auth.logOut`
    /// ends one).
    pub fn sessions(&self, user: UserId) -> usize {
        self.shared
            .world
            .lock()
            .keys
            .values()
            .filter(|k| k.user == Some(user))
            .count()
    }

    /// One account's connection and call counters (zero if it never connected).
    pub fn account_counters(&self, user: UserId) -> AccountCounters {
        self.counters()
            .accounts
            .remove(&user.0.to_string())
            .unwrap_or_default()
    }
}

/// `(bot username, start payload)` of `https://t.me/<bot>?start=<payload>` (also `t.me/…`,
/// `http://`) or `tg://resolve?domain=<bot>&start=<payload>`.
fn parse_start_link(link: &str) -> Option<(&str, &str)> {
    let link = link.trim();
    if let Some(rest) = link.strip_prefix("tg://resolve?") {
        let mut domain = None;
        let mut start = "";
        for pair in rest.split('&') {
            match pair.split_once('=') {
                Some(("domain", v)) => domain = Some(v),
                Some(("start", v)) => start = v,
                _ => {}
            }
        }
        return domain.map(|d| (d, start));
    }
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"))
        .unwrap_or(link);
    let rest = rest.strip_prefix("t.me/")?;
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    let start = query
        .split('&')
        .find_map(|p| p.strip_prefix("start="))
        .unwrap_or("");
    (!name.is_empty()).then_some((name, start))
}

#[cfg(test)]
mod tests {
    use super::parse_start_link;

    #[test]
    fn start_links_name_the_bot_and_the_payload() {
        assert_eq!(
            parse_start_link("https://t.me/shop_bot?start=sb_abc-1"),
            Some(("shop_bot", "sb_abc-1"))
        );
        assert_eq!(parse_start_link("t.me/shop_bot"), Some(("shop_bot", "")));
        assert_eq!(
            parse_start_link("tg://resolve?domain=shop_bot&start=x"),
            Some(("shop_bot", "x"))
        );
        assert_eq!(parse_start_link("https://example.com/shop_bot"), None);
    }
}
