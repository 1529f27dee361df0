//! Channel and group messages as lead monitoring sees them: a raw MTProto message (from the
//! update stream, `messages.getHistory` or `updates.getChannelDifference`) with the users and
//! chats of its container becomes a domain [`Post`]. Private chats, empty and service messages
//! are not posts. [`post_from_update`] adapts a grammers `Update`.

use grammers_client::tl;
use grammers_client::update::Update;
use grammers_session::types::PeerId;
use switchboard_domain::{LeadAuthor, Post, Timestamp};

use crate::mapping::{PeerDirectory, bot_api_id};

fn timestamp(unix: i32) -> Timestamp {
    Timestamp(i64::from(unix) * 1000)
}

/// The Bot-API id of a channel (`-100…`).
pub fn channel_bot_api_id(channel_id: i64) -> Option<i64> {
    PeerId::channel(channel_id).and_then(PeerId::bot_api_dialog_id)
}

/// Who wrote a message: the user of `from_id`; a channel or anonymous admin posting as a chat
/// (`from_id` a channel or chat) with its title; without `from_id` (a broadcast post) the
/// channel itself, named by the post's signature when it has one.
fn author(m: &tl::types::Message, peer_id: i64, peers: &PeerDirectory) -> LeadAuthor {
    let from = m.from_id.as_ref().map(bot_api_id).unwrap_or(peer_id);
    let details = peers.get(from);
    let signature = m.post_author.clone().filter(|s| !s.trim().is_empty());
    let name = if from == peer_id {
        signature.or_else(|| details.map(|d| d.title.clone()))
    } else {
        details.map(|d| d.title.clone()).or(signature)
    };
    LeadAuthor {
        id: Some(from),
        name,
        username: details.and_then(|d| d.username.clone()),
    }
}

/// `(channel id, post id)` of the original of a forwarded channel post, Bot-API style: the
/// forward header's channel and `channel_post`, or else its `saved_from_peer` and message when
/// that is a channel.
fn forward_origin(fwd: &tl::types::MessageFwdHeader) -> Option<(i64, i64)> {
    let channel = |peer: &tl::enums::Peer| match peer {
        tl::enums::Peer::Channel(_) => Some(bot_api_id(peer)),
        _ => None,
    };
    if let (Some(from), Some(post)) = (&fwd.from_id, fwd.channel_post)
        && let Some(id) = channel(from)
    {
        return Some((id, i64::from(post)));
    }
    if let (Some(from), Some(post)) = (&fwd.saved_from_peer, fwd.saved_from_msg_id)
        && let Some(id) = channel(from)
    {
        return Some((id, i64::from(post)));
    }
    None
}

/// Maps a raw channel or group message to a [`Post`]; `None` for private chats, empty and
/// service messages. `edited` marks an edit (the post then carries its `edit_date`, or its date
/// when Telegram sent none); a message read from history or a difference is a post as first
/// seen (`edited = false`) even when it was edited before.
pub fn post_from_message(
    raw: &tl::enums::Message,
    peers: &PeerDirectory,
    edited: bool,
) -> Option<Post> {
    let tl::enums::Message::Message(m) = raw else {
        return None;
    };
    if !matches!(
        m.peer_id,
        tl::enums::Peer::Channel(_) | tl::enums::Peer::Chat(_)
    ) {
        return None;
    }
    let peer_id = bot_api_id(&m.peer_id);
    let (is_forward, origin) = match &m.fwd_from {
        Some(tl::enums::MessageFwdHeader::Header(h)) => (true, forward_origin(h)),
        None => (false, None),
    };
    Some(Post {
        peer_id,
        tg_message_id: i64::from(m.id),
        edit_date: edited.then(|| i64::from(m.edit_date.unwrap_or(m.date))),
        posted_at: timestamp(m.date),
        text: m.message.clone(),
        author: author(m, peer_id, peers),
        is_forward,
        forward_origin: origin,
        grouped_id: m.grouped_id,
    })
}

/// The posts of a list of raw messages (a history page, a difference), with the users and chats
/// that came with them; messages that are not posts are skipped.
pub fn posts_from_messages(
    messages: &[tl::enums::Message],
    users: &[tl::enums::User],
    chats: &[tl::enums::Chat],
) -> Vec<Post> {
    let peers = PeerDirectory::from_tl(users, chats);
    messages
        .iter()
        .filter_map(|m| post_from_message(m, &peers, false))
        .collect()
}

/// Maps a raw update: a new channel or group message is a post, an edited one an edit.
pub fn post_from_raw_update(update: &tl::enums::Update, peers: &PeerDirectory) -> Option<Post> {
    use tl::enums::Update as U;
    match update {
        U::NewMessage(u) => post_from_message(&u.message, peers, false),
        U::NewChannelMessage(u) => post_from_message(&u.message, peers, false),
        U::EditMessage(u) => post_from_message(&u.message, peers, true),
        U::EditChannelMessage(u) => post_from_message(&u.message, peers, true),
        _ => None,
    }
}

fn add_peer(dir: &mut PeerDirectory, peer: &grammers_client::peer::Peer) {
    use grammers_client::peer::Peer as P;
    match peer {
        P::User(u) => dir.add_user(&u.raw),
        P::Group(g) => dir.add_chat(&g.raw),
        P::Channel(c) => dir.add_chat(&tl::enums::Chat::Channel(c.raw.clone())),
        P::Community(_) => {}
    }
}

/// Maps a grammers update (`NewMessage` or `MessageEdited` of a channel or group) to a post;
/// `None` for everything else.
pub fn post_from_update(update: &Update) -> Option<Post> {
    match update {
        Update::NewMessage(m) | Update::MessageEdited(m) => {
            let msg: &grammers_client::message::Message = m;
            if !crate::mapping::user_ids_in_range(&msg.raw) {
                return None;
            }
            let mut dir = PeerDirectory::new();
            if let Some(p) = msg.peer() {
                add_peer(&mut dir, p);
            }
            if let Some(p) = msg.sender() {
                add_peer(&mut dir, p);
            }
            post_from_raw_update(&m.raw, &dir)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testutil::{message, user};

    const CHANNEL: i64 = 777;
    const CHANNEL_API: i64 = -1_000_000_000_777;

    fn channel_peer() -> tl::enums::Peer {
        tl::types::PeerChannel {
            channel_id: CHANNEL,
        }
        .into()
    }

    fn channel(id: i64, title: &str, username: Option<&str>, broadcast: bool) -> tl::enums::Chat {
        tl::types::Channel {
            creator: false,
            left: false,
            broadcast,
            verified: false,
            megagroup: !broadcast,
            restricted: false,
            signatures: false,
            min: false,
            scam: false,
            has_link: false,
            has_geo: false,
            slowmode_enabled: false,
            call_active: false,
            call_not_empty: false,
            fake: false,
            gigagroup: false,
            noforwards: false,
            join_to_send: false,
            join_request: false,
            forum: false,
            stories_hidden: false,
            stories_hidden_min: false,
            stories_unavailable: false,
            signature_profiles: false,
            autotranslation: false,
            broadcast_messages_allowed: false,
            monoforum: false,
            forum_tabs: false,
            id,
            access_hash: Some(1),
            title: title.into(),
            username: username.map(Into::into),
            photo: tl::enums::ChatPhoto::Empty,
            date: 0,
            restriction_reason: None,
            admin_rights: None,
            banned_rights: None,
            default_banned_rights: None,
            participants_count: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            emoji_status: None,
            level: None,
            subscription_until_date: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_monoforum_id: None,
            linked_community_id: None,
        }
        .into()
    }

    fn bob() -> tl::enums::User {
        let mut u = user(1001);
        u.first_name = Some("Bob".into());
        u.username = Some("bob_hr".into());
        u.into()
    }

    fn fwd_header() -> tl::types::MessageFwdHeader {
        tl::types::MessageFwdHeader {
            imported: false,
            saved_out: false,
            from_id: None,
            from_name: None,
            date: 1_699_000_000,
            channel_post: None,
            post_author: None,
            saved_from_peer: None,
            saved_from_msg_id: None,
            saved_from_id: None,
            saved_from_name: None,
            saved_date: None,
            psa_type: None,
        }
    }

    #[test]
    fn a_broadcast_post_is_written_by_its_channel_or_its_signature() {
        let chats = [channel(CHANNEL, "Rust Jobs", Some("rust_jobs"), true)];
        let m = message(41, channel_peer(), "Ищем Rust-разработчика");
        let posts = posts_from_messages(&[m.clone().into()], &[], &chats);
        assert_eq!(posts.len(), 1);
        let p = &posts[0];
        assert_eq!(p.peer_id, CHANNEL_API);
        assert_eq!(p.tg_message_id, 41);
        assert_eq!(p.edit_date, None);
        assert_eq!(p.posted_at, Timestamp(1_700_000_000_000));
        assert_eq!(p.text, "Ищем Rust-разработчика");
        assert_eq!(
            p.author,
            LeadAuthor {
                id: Some(CHANNEL_API),
                name: Some("Rust Jobs".into()),
                username: Some("rust_jobs".into()),
            }
        );
        assert!(!p.is_forward);
        assert_eq!((p.forward_origin, p.grouped_id), (None, None));

        let mut signed = m;
        signed.post_author = Some("Мария".into());
        let p = posts_from_messages(&[signed.into()], &[], &chats).remove(0);
        assert_eq!(p.author.name.as_deref(), Some("Мария"));
        assert_eq!(p.author.id, Some(CHANNEL_API));
    }

    #[test]
    fn a_group_message_is_written_by_its_user() {
        let mut m = message(
            5,
            tl::types::PeerChannel { channel_id: 900 }.into(),
            "looking for a Go dev",
        );
        m.from_id = Some(tl::types::PeerUser { user_id: 1001 }.into());
        let chats = [channel(900, "Go chat", None, false)];
        let p = posts_from_messages(&[m.into()], &[bob()], &chats).remove(0);
        assert_eq!(p.peer_id, -1_000_000_000_900);
        assert_eq!(
            p.author,
            LeadAuthor {
                id: Some(1001),
                name: Some("Bob".into()),
                username: Some("bob_hr".into()),
            }
        );

        // A basic group.
        let mut m = message(6, tl::types::PeerChat { chat_id: 555 }.into(), "hi");
        m.from_id = Some(tl::types::PeerUser { user_id: 1001 }.into());
        let p = posts_from_messages(&[m.into()], &[bob()], &[]).remove(0);
        assert_eq!(p.peer_id, -555);
        assert_eq!(p.author.id, Some(1001));
    }

    #[test]
    fn a_caption_is_the_text_and_albums_keep_their_group() {
        let mut m = message(7, channel_peer(), "фото вакансии");
        m.media = Some(crate::testutil::media_photo(
            crate::testutil::small_and_large_sizes(),
        ));
        m.grouped_id = Some(123_456);
        let p = post_from_message(&m.into(), &PeerDirectory::new(), false).unwrap();
        assert_eq!(p.text, "фото вакансии");
        assert_eq!(p.grouped_id, Some(123_456));
    }

    #[test]
    fn forwards_carry_their_channel_origin() {
        let mut m = message(8, channel_peer(), "repost");
        let mut h = fwd_header();
        h.from_id = Some(tl::types::PeerChannel { channel_id: 321 }.into());
        h.channel_post = Some(99);
        m.fwd_from = Some(h.into());
        let p = post_from_message(&m.clone().into(), &PeerDirectory::new(), false).unwrap();
        assert!(p.is_forward);
        assert_eq!(p.forward_origin, Some((-1_000_000_000_321, 99)));

        // Saved-from only.
        let mut h = fwd_header();
        h.saved_from_peer = Some(tl::types::PeerChannel { channel_id: 322 }.into());
        h.saved_from_msg_id = Some(7);
        m.fwd_from = Some(h.into());
        let p = post_from_message(&m.clone().into(), &PeerDirectory::new(), false).unwrap();
        assert_eq!(p.forward_origin, Some((-1_000_000_000_322, 7)));

        // A forward from a user (hidden or not): a forward without a channel origin.
        let mut h = fwd_header();
        h.from_id = Some(tl::types::PeerUser { user_id: 5 }.into());
        m.fwd_from = Some(h.into());
        let p = post_from_message(&m.clone().into(), &PeerDirectory::new(), false).unwrap();
        assert!(p.is_forward);
        assert_eq!(p.forward_origin, None);
        let mut h = fwd_header();
        h.from_name = Some("Hidden".into());
        m.fwd_from = Some(h.into());
        let p = post_from_message(&m.into(), &PeerDirectory::new(), false).unwrap();
        assert_eq!((p.is_forward, p.forward_origin), (true, None));
    }

    #[test]
    fn edits_carry_their_edit_date() {
        let mut m = message(9, channel_peer(), "rust, now remote");
        m.edit_date = Some(1_700_000_500);
        let edit: tl::enums::Update = tl::types::UpdateEditChannelMessage {
            message: m.clone().into(),
            pts: 10,
            pts_count: 1,
        }
        .into();
        let p = post_from_raw_update(&edit, &PeerDirectory::new()).unwrap();
        assert_eq!(p.edit_date, Some(1_700_000_500));
        let new: tl::enums::Update = tl::types::UpdateNewChannelMessage {
            message: m.into(),
            pts: 11,
            pts_count: 1,
        }
        .into();
        let p = post_from_raw_update(&new, &PeerDirectory::new()).unwrap();
        assert_eq!(p.edit_date, None);
    }

    #[test]
    fn private_service_and_empty_messages_are_not_posts() {
        let m = message(1, tl::types::PeerUser { user_id: 1001 }.into(), "hi");
        assert_eq!(
            post_from_message(&m.into(), &PeerDirectory::new(), false),
            None
        );
        let empty: tl::enums::Message = tl::types::MessageEmpty {
            id: 1,
            peer_id: None,
        }
        .into();
        assert_eq!(
            post_from_message(&empty, &PeerDirectory::new(), false),
            None
        );
        let del: tl::enums::Update = tl::types::UpdateDeleteChannelMessages {
            channel_id: CHANNEL,
            messages: vec![3],
            pts: 6,
            pts_count: 1,
        }
        .into();
        assert_eq!(post_from_raw_update(&del, &PeerDirectory::new()), None);
    }
}
