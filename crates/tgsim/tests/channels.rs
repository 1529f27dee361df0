//! Channels as a lead monitor meets them, with the real grammers-client 0.11: posts, albums,
//! forwards, edits and deletions reaching members; channels that do not push every post;
//! `getChannelDifference` slices and `channelDifferenceTooLong`; `getHistory` paging; invite
//! links; the channel cap; rate limits on resolving and joining; injected flood waits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::future::join_all;
use grammers_client::InvocationError;
use grammers_client::tl;
use grammers_client::update::Update;
use tgsim::{
    ChannelId, ChannelOptions, Entity, MediaKind, MediaUpload, NewChannel, NewInvite,
    OutgoingMessage, Peer,
};

fn channel_id(info: &tgsim::ChatInfo) -> ChannelId {
    match info.peer {
        Peer::Channel(c) => c,
        other => panic!("not a channel: {other:?}"),
    }
}

fn create(sim: &tgsim::Handle, spec: NewChannel) -> ChannelId {
    channel_id(&sim.create_channel(spec).unwrap())
}

fn public(sim: &tgsim::Handle, title: &str, username: &str) -> ChannelId {
    create(
        sim,
        NewChannel {
            title: title.into(),
            username: Some(username.into()),
            ..Default::default()
        },
    )
}

/// A private channel (no username); its `invite_hash` is the way in.
fn private(sim: &tgsim::Handle, title: &str) -> tgsim::ChatInfo {
    sim.create_channel(NewChannel {
        title: title.into(),
        ..Default::default()
    })
    .unwrap()
}

/// Waits for the first update `pick` accepts.
async fn next_update<T>(
    stream: &mut grammers_client::client::UpdateStream,
    mut pick: impl FnMut(Update) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(t) = pick(stream.next().await.unwrap()) {
                return t;
            }
        }
    })
    .await
    .expect("the update arrives")
}

/// `(code, name, value)` of an rpc error.
fn rpc(e: InvocationError) -> (i32, String, Option<u32>) {
    match e {
        InvocationError::Rpc(r) => (r.code, r.name, r.value),
        other => panic!("not an rpc error: {other}"),
    }
}

fn input_channel(chats: &[tl::enums::Chat], id: ChannelId) -> tl::types::InputChannel {
    chats
        .iter()
        .find_map(|c| match c {
            tl::enums::Chat::Channel(ch) if ch.id == id.0 => Some(tl::types::InputChannel {
                channel_id: ch.id,
                access_hash: ch.access_hash.expect("access hash"),
            }),
            _ => None,
        })
        .expect("channel among chats")
}

async fn resolve_raw(c: &TestClient, name: &str) -> Result<Vec<tl::enums::Chat>, InvocationError> {
    let tl::enums::contacts::ResolvedPeer::Peer(r) = c
        .client
        .invoke(&tl::functions::contacts::ResolveUsername {
            username: name.into(),
            referer: None,
        })
        .await?;
    Ok(r.chats)
}

async fn resolve_channel(c: &TestClient, name: &str, id: ChannelId) -> tl::types::InputChannel {
    input_channel(&resolve_raw(c, name).await.unwrap(), id)
}

fn peer_of(ch: &tl::types::InputChannel) -> tl::enums::InputPeer {
    tl::types::InputPeerChannel {
        channel_id: ch.channel_id,
        access_hash: ch.access_hash,
    }
    .into()
}

fn join_result_chats(r: tl::enums::messages::ChatInviteJoinResult) -> Vec<tl::enums::Chat> {
    match r {
        tl::enums::messages::ChatInviteJoinResult::Ok(ok) => match ok.updates {
            tl::enums::Updates::Updates(u) => u.chats,
            other => panic!("unexpected updates {other:?}"),
        },
        other => panic!("unexpected join result {other:?}"),
    }
}

async fn join(c: &TestClient, ch: &tl::types::InputChannel) -> Result<(), InvocationError> {
    c.client
        .invoke(&tl::functions::channels::JoinChannel {
            channel: ch.clone().into(),
        })
        .await
        .map(|_| ())
}

async fn import(c: &TestClient, hash: &str) -> Result<Vec<tl::enums::Chat>, InvocationError> {
    c.client
        .invoke(&tl::functions::messages::ImportChatInvite { hash: hash.into() })
        .await
        .map(join_result_chats)
}

struct Page {
    ids: Vec<i32>,
    count: i32,
}

async fn history(
    c: &TestClient,
    peer: tl::enums::InputPeer,
    offset_id: i32,
    add_offset: i32,
    limit: i32,
    max_id: i32,
    min_id: i32,
) -> Result<Page, InvocationError> {
    let r = c
        .client
        .invoke(&tl::functions::messages::GetHistory {
            peer,
            offset_id,
            offset_date: 0,
            add_offset,
            limit,
            max_id,
            min_id,
            hash: 0,
        })
        .await?;
    let (messages, count) = match r {
        tl::enums::messages::Messages::ChannelMessages(m) => (m.messages, m.count),
        tl::enums::messages::Messages::Slice(m) => (m.messages, m.count),
        tl::enums::messages::Messages::Messages(m) => {
            let n = m.messages.len() as i32;
            (m.messages, n)
        }
        other => panic!("unexpected {other:?}"),
    };
    Ok(Page {
        ids: messages.iter().map(message_id).collect(),
        count,
    })
}

fn message_id(m: &tl::enums::Message) -> i32 {
    match m {
        tl::enums::Message::Message(m) => m.id,
        tl::enums::Message::Service(m) => m.id,
        tl::enums::Message::Empty(m) => m.id,
    }
}

async fn channel_difference(
    c: &TestClient,
    ch: &tl::types::InputChannel,
    pts: i32,
    limit: i32,
) -> Result<tl::enums::updates::ChannelDifference, InvocationError> {
    c.client
        .invoke(&tl::functions::updates::GetChannelDifference {
            force: false,
            channel: ch.clone().into(),
            filter: tl::enums::ChannelMessagesFilter::Empty,
            pts,
            limit,
        })
        .await
}

fn calls(sim: &tgsim::Handle, user: tgsim::UserId, method: &str) -> u64 {
    sim.account_counters(user)
        .calls
        .get(method)
        .copied()
        .unwrap_or(0)
}

fn photo(name: &str) -> OutgoingMessage {
    OutgoingMessage {
        text: String::new(),
        media: Some(MediaUpload {
            kind: MediaKind::Photo,
            data: vec![0xff, 0xd8, 0xff, 0xe0, name.len() as u8],
            file_name: Some(name.into()),
            mime: None,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_albums_forwards_edits_and_deletions_reach_members() {
    let sim = sim().await;
    let alice = user(&sim, "+15550300", "Alice", None);
    let jobs = public(&sim, "Jobs", "jobs_c1");
    let source = public(&sim, "Source", "source_c1");
    sim.join_channel(alice.id, jobs).unwrap();
    let mut c = logged_in(&sim, alice.id).await;
    let mut stream = c.stream(true).await;

    let original = sim
        .post_to_channel(source, OutgoingMessage::text("Go developer, remote"))
        .unwrap();
    let text = "Rust developer wanted";
    let posted = sim
        .post_to_channel(
            jobs,
            OutgoingMessage {
                text: text.into(),
                entities: vec![Entity {
                    kind: "bold".into(),
                    offset: 0,
                    length: 4,
                    url: None,
                    language: None,
                    user_id: None,
                }],
                ..Default::default()
            },
        )
        .unwrap();
    let m = next_message(&mut stream, text).await;
    assert_eq!(m.id(), posted.id);
    assert_eq!(m.fmt_entities().map(|e| e.len()), Some(1));

    let album = sim
        .post_album(jobs, vec![photo("a.jpg"), photo("b.jpg"), photo("c.jpg")])
        .unwrap();
    assert_eq!(album.messages.len(), 3);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = next_update(&mut stream, |u| match u {
            Update::NewMessage(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(m.grouped_id(), Some(album.grouped_id));
        seen.push(m.id());
    }
    assert_eq!(
        seen,
        album.messages.iter().map(|m| m.id).collect::<Vec<_>>()
    );

    let fwd = sim.forward_post(jobs, source, original.id).unwrap();
    let m = next_message(&mut stream, "Go developer, remote").await;
    assert_eq!(m.id(), fwd.id);
    match m.forward_header() {
        Some(tl::enums::MessageFwdHeader::Header(h)) => {
            assert_eq!(
                h.from_id,
                Some(
                    tl::types::PeerChannel {
                        channel_id: source.0
                    }
                    .into()
                )
            );
            assert_eq!(h.channel_post, Some(original.id));
        }
        None => panic!("no fwd_from"),
    }

    sim.edit_post(
        jobs,
        posted.id,
        "Rust developer wanted (senior)".into(),
        None,
    )
    .unwrap();
    let edited = next_update(&mut stream, |u| match u {
        Update::MessageEdited(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(edited.id(), posted.id);
    assert_eq!(edited.text(), "Rust developer wanted (senior)");
    assert!(edited.edit_date().is_some());

    assert_eq!(
        sim.delete_posts(jobs, &[posted.id, 9999]).unwrap(),
        vec![posted.id]
    );
    let deleted = next_update(&mut stream, |u| match u {
        Update::MessageDeleted(d) => Some(d),
        _ => None,
    })
    .await;
    assert_eq!(deleted.channel_id(), Some(jobs.0));
    assert_eq!(deleted.messages(), &[posted.id]);
    // Every event got its own pts and none had to be fetched: no gap was seen.
    assert_eq!(calls(&sim, alice.id, "updates.getChannelDifference"), 0);
    assert_eq!(sim.channel(jobs).unwrap().pts, 8);
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_does_not_push_leaves_posts_to_get_channel_difference() {
    let sim = sim().await;
    let alice = user(&sim, "+15550310", "Alice", None);
    let quiet = create(
        &sim,
        NewChannel {
            title: "Big".into(),
            username: Some("big_c2".into()),
            members: vec![alice.id],
            push_every: Some(0),
            ..Default::default()
        },
    );
    let loud = create(
        &sim,
        NewChannel {
            title: "Small".into(),
            username: Some("small_c2".into()),
            members: vec![alice.id],
            ..Default::default()
        },
    );
    let mut c = logged_in(&sim, alice.id).await;
    let mut raw = c.updates.take().unwrap();
    let before = sim.channel(quiet).unwrap().pts;
    sim.post_to_channel(quiet, OutgoingMessage::text("quiet post"))
        .unwrap();
    sim.post_to_channel(loud, OutgoingMessage::text("loud post"))
        .unwrap();
    // Only the pushing channel's post arrives on the connection.
    let first = tokio::time::timeout(Duration::from_secs(10), raw.recv())
        .await
        .expect("a push")
        .unwrap();
    let text = format!("{first:?}");
    assert!(text.contains("loud post"), "{text}");
    assert!(
        tokio::time::timeout(Duration::from_millis(700), raw.recv())
            .await
            .is_err(),
        "the quiet channel pushed its post"
    );
    // The client finds it by asking for the channel's difference.
    let ch = resolve_channel(&c, "big_c2", quiet).await;
    let tl::enums::updates::ChannelDifference::Difference(d) =
        channel_difference(&c, &ch, before, 100).await.unwrap()
    else {
        panic!("expected a difference")
    };
    assert!(d.r#final);
    assert_eq!(d.pts, before + 1);
    assert_eq!(d.new_messages.len(), 1);
    assert!(format!("{:?}", d.new_messages[0]).contains("quiet post"));
    assert!(matches!(
        channel_difference(&c, &ch, d.pts, 100).await.unwrap(),
        tl::enums::updates::ChannelDifference::Empty(e) if e.pts == d.pts && e.r#final
    ));
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_every_nth_post_makes_grammers_fill_the_gaps() {
    let sim = sim().await;
    let alice = user(&sim, "+15550320", "Alice", None);
    let big = create(
        &sim,
        NewChannel {
            title: "Big".into(),
            username: Some("big_c3".into()),
            members: vec![alice.id],
            ..Default::default()
        },
    );
    let mut c = logged_in(&sim, alice.id).await;
    let mut stream = c.stream(true).await;
    // The client learns the channel's pts from a pushed post.
    sim.post_to_channel(big, OutgoingMessage::text("post 2"))
        .unwrap();
    next_message(&mut stream, "post 2").await;
    let view = sim
        .set_channel_options(
            big,
            ChannelOptions {
                push_every: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(view.push_every, 3);
    // Ids 3..=8: only 3 and 6 are pushed; the pts of 6 shows grammers a gap, which it fills
    // with getChannelDifference (which also brings 7 and 8).
    let texts: Vec<String> = (3..=8).map(|i| format!("post {i}")).collect();
    for t in &texts {
        sim.post_to_channel(big, OutgoingMessage::text(t.clone()))
            .unwrap();
    }
    let mut want = texts.clone();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !want.is_empty() {
            if let Update::NewMessage(m) = stream.next().await.unwrap() {
                want.retain(|w| w != m.text());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("still missing {want:?}"));
    assert!(calls(&sim, alice.id, "updates.getChannelDifference") >= 1);
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_difference_slices_at_the_limit_and_is_too_long_past_the_window() {
    let sim = sim().await;
    let alice = user(&sim, "+15550330", "Alice", None);
    let feed = public(&sim, "Feed", "feed_c4");
    for i in 0..150 {
        sim.post_to_channel(feed, OutgoingMessage::text(format!("p{i}")))
            .unwrap();
    }
    let c = logged_in(&sim, alice.id).await;
    // A public channel's difference is open to non-members.
    let ch = resolve_channel(&c, "feed_c4", feed).await;
    // Users get at most 100 events per call, whatever limit they ask for.
    let tl::enums::updates::ChannelDifference::Difference(d) =
        channel_difference(&c, &ch, 1, 1000).await.unwrap()
    else {
        panic!("expected a difference")
    };
    assert!(!d.r#final);
    assert_eq!(d.pts, 101);
    assert_eq!(d.new_messages.len(), 100);
    assert_eq!(message_id(&d.new_messages[0]), 2);
    let tl::enums::updates::ChannelDifference::Difference(d) =
        channel_difference(&c, &ch, d.pts, 100).await.unwrap()
    else {
        panic!("expected a difference")
    };
    assert!(d.r#final);
    assert_eq!(d.pts, 151);
    assert_eq!(d.new_messages.len(), 50);

    // A pts older than the channel's log answers channelDifferenceTooLong with the current
    // pts and the latest messages.
    sim.set_channel_options(
        feed,
        ChannelOptions {
            difference_window: Some(40),
            ..Default::default()
        },
    )
    .unwrap();
    let tl::enums::updates::ChannelDifference::TooLong(t) =
        channel_difference(&c, &ch, 100, 20).await.unwrap()
    else {
        panic!("expected channelDifferenceTooLong")
    };
    let tl::enums::Dialog::Dialog(dialog) = t.dialog else {
        panic!("dialog")
    };
    assert_eq!(dialog.pts, Some(151));
    assert_eq!(t.messages.len(), 20);
    assert_eq!(message_id(&t.messages[0]), 151);
    // Within the window it is a difference again.
    assert!(matches!(
        channel_difference(&c, &ch, 120, 100).await.unwrap(),
        tl::enums::updates::ChannelDifference::Difference(d) if d.new_messages.len() == 31
    ));
    assert_eq!(calls(&sim, alice.id, "updates.getChannelDifference"), 4);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_history_pages_like_telegram_and_non_members_read_public_channels() {
    let sim = sim().await;
    let alice = user(&sim, "+15550340", "Alice", None);
    let feed = public(&sim, "Feed", "feed_c5");
    for i in 2..=31 {
        sim.post_to_channel(feed, OutgoingMessage::text(format!("p{i}")))
            .unwrap();
    }
    let c = logged_in(&sim, alice.id).await;
    let peer = peer_of(&resolve_channel(&c, "feed_c5", feed).await);
    let h = |o, a, l, max, min| history(&c, peer.clone(), o, a, l, max, min);
    let ids = |from: i32, to: i32| (to..=from).rev().collect::<Vec<i32>>();

    // Newest first; count is the whole history (30 posts and the creation message).
    let p = h(0, 0, 10, 0, 0).await.unwrap();
    assert_eq!((p.ids.clone(), p.count), (ids(31, 22), 31));
    // offset_id starts strictly below it.
    assert_eq!(h(22, 0, 5, 0, 0).await.unwrap().ids, ids(21, 17));
    // A negative add_offset reaches newer messages.
    assert_eq!(h(20, -3, 5, 0, 0).await.unwrap().ids, ids(22, 18));
    // max_id and min_id are exclusive bounds applied before the limit.
    assert_eq!(h(0, 0, 5, 10, 0).await.unwrap().ids, ids(9, 5));
    assert_eq!(h(0, 0, 100, 0, 27).await.unwrap().ids, ids(31, 28));
    assert_eq!(h(0, 0, 100, 20, 15).await.unwrap().ids, ids(19, 16));
    // A quiet channel polled from its high-water mark answers an empty page.
    assert!(h(0, 0, 100, 0, 31).await.unwrap().ids.is_empty());
    // At most 100 per page.
    for i in 0..120 {
        sim.post_to_channel(feed, OutgoingMessage::text(format!("q{i}")))
            .unwrap();
    }
    assert_eq!(h(0, 0, 500, 0, 0).await.unwrap().ids.len(), 100);
    assert_eq!(calls(&sim, alice.id, "messages.getHistory"), 8);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_channel_history_is_refused_to_non_members() {
    let sim = sim().await;
    let alice = user(&sim, "+15550350", "Alice", None);
    let private = private(&sim, "Inside");
    let pid = channel_id(&private);
    sim.post_to_channel(pid, OutgoingMessage::text("members only"))
        .unwrap();
    let c = logged_in(&sim, alice.id).await;
    let chats = import(&c, private.invite_hash.as_deref().unwrap())
        .await
        .unwrap();
    let ch = input_channel(&chats, pid);
    let page = history(&c, peer_of(&ch), 0, 0, 10, 0, 0).await.unwrap();
    assert_eq!(page.ids, vec![2, 1]);
    c.client
        .invoke(&tl::functions::channels::LeaveChannel {
            channel: ch.clone().into(),
        })
        .await
        .unwrap();
    assert!(!sim.channel(pid).unwrap().members.contains(&alice.id));
    let (code, name, _) = rpc(history(&c, peer_of(&ch), 0, 0, 10, 0, 0)
        .await
        .err()
        .expect("refused"));
    assert_eq!((code, name.as_str()), (400, "CHANNEL_PRIVATE"));
    let (_, name, _) = rpc(channel_difference(&c, &ch, 1, 100).await.unwrap_err());
    assert_eq!(name, "CHANNEL_PRIVATE");
    let (_, name, _) = rpc(c
        .client
        .invoke(&tl::functions::channels::GetMessages {
            channel: ch.clone().into(),
            id: vec![tl::types::InputMessageId { id: 2 }.into()],
        })
        .await
        .unwrap_err());
    assert_eq!(name, "CHANNEL_PRIVATE");
    let (_, name, _) = rpc(c
        .client
        .invoke(&tl::functions::channels::GetFullChannel {
            channel: ch.clone().into(),
        })
        .await
        .unwrap_err());
    assert_eq!(name, "CHANNEL_PRIVATE");
    // Nor can it join back without the link.
    let (_, name, _) = rpc(join(&c, &ch).await.unwrap_err());
    assert_eq!(name, "CHANNEL_PRIVATE");
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_usernames_is_rate_limited_per_account() {
    let sim = sim().await;
    let alice = user(&sim, "+15550360", "Alice", None);
    let bob = user(&sim, "+15550361", "Bob", None);
    public(&sim, "Jobs", "jobs_c7");
    let c = logged_in(&sim, alice.id).await;
    let (code, name, _) = rpc(resolve_raw(&c, "nobody_here").await.unwrap_err());
    assert_eq!((code, name.as_str()), (400, "USERNAME_NOT_OCCUPIED"));
    for bad in ["bad-name", "1digit_first", &"x".repeat(33)] {
        let (_, name, _) = rpc(resolve_raw(&c, bad).await.unwrap_err());
        assert_eq!(name, "USERNAME_INVALID", "{bad}");
    }
    // 30 a minute, failures included: of 30 more sent at once, 26 pass and 4 wait 300 s.
    let results = join_all((0..30).map(|_| resolve_raw(&c, "jobs_c7"))).await;
    let mut waits = Vec::new();
    for r in results {
        if let Err(e) = r {
            waits.push(rpc(e));
        }
    }
    assert_eq!(waits, vec![(420, "FLOOD_WAIT".to_string(), Some(300)); 4]);
    // While waiting, every resolve answers the rest of the wait.
    let (_, name, value) = rpc(resolve_raw(&c, "jobs_c7").await.unwrap_err());
    assert_eq!(name, "FLOOD_WAIT");
    assert!(value.is_some_and(|v| (299..=300).contains(&v)), "{value:?}");
    assert_eq!(calls(&sim, alice.id, "contacts.resolveUsername"), 35);
    // Other accounts and other methods are not affected.
    let b = logged_in(&sim, bob.id).await;
    resolve_raw(&b, "jobs_c7").await.unwrap();
    assert!(c.client.get_me().await.is_ok());
    b.quit().await;
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_by_username_and_by_invite_link() {
    let sim = sim().await;
    let alice = user(&sim, "+15550370", "Alice", None);
    let bob = user(&sim, "+15550371", "Bob", None);
    let carol = user(&sim, "+15550372", "Carol", None);
    let jobs = public(&sim, "Jobs", "jobs_c8");
    let private = sim
        .create_channel(NewChannel {
            title: "Закрытые вакансии".into(),
            about: "invite only".into(),
            ..Default::default()
        })
        .unwrap();
    let pid = channel_id(&private);
    let a = logged_in(&sim, alice.id).await;

    // Public: join by username, a second time is refused.
    let ch = resolve_channel(&a, "jobs_c8", jobs).await;
    join(&a, &ch).await.unwrap();
    assert!(sim.channel(jobs).unwrap().members.contains(&alice.id));
    let (_, name, _) = rpc(join(&a, &ch).await.unwrap_err());
    assert_eq!(name, "USER_ALREADY_PARTICIPANT");

    // Private: check the link, join, check again.
    let hash = private.invite_hash.clone().unwrap();
    let check = |c: &TestClient, h: String| {
        let client = c.client.clone();
        async move {
            client
                .invoke(&tl::functions::messages::CheckChatInvite { hash: h })
                .await
        }
    };
    match check(&a, hash.clone()).await.unwrap() {
        tl::enums::ChatInvite::Invite(i) => {
            assert_eq!(i.title, "Закрытые вакансии");
            assert!(i.channel && i.broadcast && !i.public && !i.request_needed);
        }
        other => panic!("unexpected {other:?}"),
    }
    let chats = import(&a, &hash).await.unwrap();
    input_channel(&chats, pid);
    assert!(matches!(
        check(&a, hash.clone()).await.unwrap(),
        tl::enums::ChatInvite::Already(_)
    ));
    let (_, name, _) = rpc(import(&a, &hash).await.unwrap_err());
    assert_eq!(name, "USER_ALREADY_PARTICIPANT");
    assert_eq!(sim.channel_count(alice.id).unwrap().count, 2);

    // Unknown, expired, revoked and used-up links.
    let b = logged_in(&sim, bob.id).await;
    let (_, name, _) = rpc(import(&b, "AAAAAAAAAAAAAAAA").await.unwrap_err());
    assert_eq!(name, "INVITE_HASH_INVALID");
    let expired = sim
        .create_invite(
            pid,
            NewInvite {
                expire_date: Some(1_000_000),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, name, _) = rpc(check(&b, expired.hash.clone()).await.unwrap_err());
    assert_eq!(name, "INVITE_HASH_EXPIRED");
    let (_, name, _) = rpc(import(&b, &expired.hash).await.unwrap_err());
    assert_eq!(name, "INVITE_HASH_EXPIRED");
    let once = sim
        .create_invite(
            pid,
            NewInvite {
                usage_limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    import(&b, &once.hash).await.unwrap();
    let c = logged_in(&sim, carol.id).await;
    let (_, name, _) = rpc(import(&c, &once.hash).await.unwrap_err());
    assert_eq!(name, "INVITE_HASH_EXPIRED");
    let revoked = sim.create_invite(pid, NewInvite::default()).unwrap();
    sim.revoke_invite(pid, &revoked.hash).unwrap();
    let (_, name, _) = rpc(import(&c, &revoked.hash).await.unwrap_err());
    assert_eq!(name, "INVITE_HASH_EXPIRED");

    // A join-request link files a request an admin approves.
    let request = sim
        .create_invite(
            pid,
            NewInvite {
                request_needed: true,
                ..Default::default()
            },
        )
        .unwrap();
    let (_, name, _) = rpc(import(&c, &request.hash).await.unwrap_err());
    assert_eq!(name, "INVITE_REQUEST_SENT");
    let view = sim.channel(pid).unwrap();
    assert_eq!(view.join_requests, vec![carol.id]);
    assert!(!view.members.contains(&carol.id));
    sim.approve_join_request(pid, carol.id).unwrap();
    assert!(sim.channel(pid).unwrap().members.contains(&carol.id));
    assert_eq!(calls(&sim, carol.id, "messages.importChatInvite"), 3);
    for client in [a, b, c] {
        client.quit().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_past_the_channel_cap_answers_channels_too_much() {
    let sim = sim().await;
    let alice = user(&sim, "+15550380", "Alice", None);
    let one = public(&sim, "One", "one_c9");
    let two = public(&sim, "Two", "two_c9");
    let private = private(&sim, "Private");
    let count = sim.set_channel_count(alice.id, 499).unwrap();
    assert_eq!((count.count, count.limit), (499, 500));
    let c = logged_in(&sim, alice.id).await;
    let ch1 = resolve_channel(&c, "one_c9", one).await;
    let ch2 = resolve_channel(&c, "two_c9", two).await;
    join(&c, &ch1).await.unwrap();
    assert_eq!(sim.channel_count(alice.id).unwrap().count, 500);
    let (code, name, _) = rpc(join(&c, &ch2).await.unwrap_err());
    assert_eq!((code, name.as_str()), (400, "CHANNELS_TOO_MUCH"));
    let (_, name, _) = rpc(import(&c, private.invite_hash.as_deref().unwrap())
        .await
        .unwrap_err());
    assert_eq!(name, "CHANNELS_TOO_MUCH");
    assert!(!sim.channel(two).unwrap().members.contains(&alice.id));
    // Leaving makes room again.
    c.client
        .invoke(&tl::functions::channels::LeaveChannel {
            channel: ch1.clone().into(),
        })
        .await
        .unwrap();
    assert_eq!(sim.channel_count(alice.id).unwrap().count, 499);
    let (_, name, _) = rpc(c
        .client
        .invoke(&tl::functions::channels::LeaveChannel {
            channel: ch1.clone().into(),
        })
        .await
        .unwrap_err());
    assert_eq!(name, "USER_NOT_PARTICIPANT");
    join(&c, &ch2).await.unwrap();
    c.quit().await;
    // Joins sent at once near the cap: only as many as fit pass.
    let bob = user(&sim, "+15550381", "Bob", None);
    sim.set_channel_count(bob.id, 498).unwrap();
    let b = logged_in(&sim, bob.id).await;
    let mut targets = Vec::new();
    for i in 0..3 {
        let name = format!("many{i}_c9");
        let id = public(&sim, "Many", &name);
        targets.push(resolve_channel(&b, &name, id).await);
    }
    let results = join_all(targets.iter().map(|ch| join(&b, ch))).await;
    let refused: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| rpc(e).1))
        .collect();
    assert_eq!(refused, ["CHANNELS_TOO_MUCH"]);
    assert_eq!(sim.channel_count(bob.id).unwrap().count, 500);
    b.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_too_fast_is_flood_waited() {
    let sim = sim().await;
    let alice = user(&sim, "+15550390", "Alice", None);
    let bob = user(&sim, "+15550391", "Bob", None);
    let c = logged_in(&sim, alice.id).await;
    let mut channels = Vec::new();
    for i in 0..6 {
        let name = format!("fast{i}_c10");
        let id = public(&sim, "Fast", &name);
        channels.push(resolve_channel(&c, &name, id).await);
    }
    let private = private(&sim, "Private");
    // Five joins in five minutes: of six sent at once, one waits 300 s.
    let results = join_all(channels.iter().map(|ch| join(&c, ch))).await;
    let refused: Vec<usize> = (0..6).filter(|i| results[*i].is_err()).collect();
    assert_eq!(refused.len(), 1, "{results:?}");
    let left_out = &channels[refused[0]];
    let (code, name, value) = rpc(join(&c, left_out).await.unwrap_err());
    assert_eq!((code, name.as_str()), (420, "FLOOD_WAIT"));
    assert!(value.is_some_and(|v| (299..=300).contains(&v)), "{value:?}");
    assert_eq!(sim.channel_count(alice.id).unwrap().count, 5);
    // Invite links share the budget.
    let (_, name, _) = rpc(import(&c, private.invite_hash.as_deref().unwrap())
        .await
        .unwrap_err());
    assert_eq!(name, "FLOOD_WAIT");
    // Another account joins freely.
    let b = logged_in(&sim, bob.id).await;
    let id = ChannelId(left_out.channel_id);
    let name = sim.channel(id).unwrap().username.unwrap();
    join(&b, &resolve_channel(&b, &name, id).await)
        .await
        .unwrap();
    b.quit().await;
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_flood_wait_answers_the_next_n_calls_and_counters_see_every_call() {
    let sim = sim().await;
    let alice = user(&sim, "+15550400", "Alice", None);
    let feed = public(&sim, "Feed", "feed_c11");
    let c = logged_in(&sim, alice.id).await;
    let peer = peer_of(&resolve_channel(&c, "feed_c11", feed).await);
    sim.flood_wait(Some(alice.id), "messages.getHistory", 120, 2);
    for _ in 0..2 {
        let (code, name, value) = rpc(history(&c, peer.clone(), 0, 0, 10, 0, 0)
            .await
            .err()
            .expect("flood wait"));
        assert_eq!((code, name.as_str(), value), (420, "FLOOD_WAIT", Some(120)));
    }
    assert_eq!(
        history(&c, peer.clone(), 0, 0, 10, 0, 0).await.unwrap().ids,
        vec![1]
    );
    let mine = sim.account_counters(alice.id);
    assert_eq!(mine.calls["messages.getHistory"], 3);
    assert_eq!(mine.calls["contacts.resolveUsername"], 1);
    assert_eq!(mine.open_connections, 1);
    // A second client of the same account shows as a second open connection.
    let second = logged_in(&sim, alice.id).await;
    assert_eq!(sim.account_counters(alice.id).open_connections, 2);
    second.quit().await;
    c.quit().await;
    sim.shutdown().await;
}

/// Sends a control-API request; answers the status and the JSON body.
async fn ctl(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_drives_channels_over_http() {
    use reqwest::Method;
    use serde_json::json;
    let sim = sim().await;
    let alice = user(&sim, "+15550410", "Alice", None);
    let http = reqwest::Client::new();
    let base = sim.control_url();
    let (s, src) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels"),
        Some(json!({"title": "Src", "username": "src_c12"})),
    )
    .await;
    assert_eq!(s, 200);
    let src_id = src["peer"]["id"].as_i64().unwrap();
    let (_, ch) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels"),
        Some(json!({"title": "Big", "members": [alice.id.0], "push_every": 0, "megagroup": false})),
    )
    .await;
    let id = ch["peer"]["id"].as_i64().unwrap();
    assert_eq!(ch["username"], serde_json::Value::Null);
    assert_eq!(ch["invite_hash"].as_str().unwrap().len(), 16);

    let (_, post) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{src_id}/posts"),
        Some(json!({"text": "Go developer"})),
    )
    .await;
    let (_, fwd) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{id}/forwards"),
        Some(json!({"from_channel": src_id, "id": post["id"]})),
    )
    .await;
    let photo = json!({"text": "", "media": {"kind": "photo", "data": "/9j/4A=="}});
    let (_, album) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{id}/albums"),
        Some(json!({"items": [photo, photo]})),
    )
    .await;
    assert_eq!(album["messages"].as_array().unwrap().len(), 2);
    let (s, err) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{id}/albums"),
        Some(json!({"items": [photo]})),
    )
    .await;
    assert_eq!(
        (s, &err["error"]["code"]),
        (400, &json!("multi_media_too_long"))
    );
    let fwd_id = fwd["id"].as_i64().unwrap();
    let (s, _) = ctl(
        &http,
        Method::PATCH,
        format!("{base}/api/channels/{id}/posts/{fwd_id}"),
        Some(json!({"text": "Go developer (edited)"})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, posts) = ctl(
        &http,
        Method::GET,
        format!("{base}/api/channels/{id}/posts"),
        None,
    )
    .await;
    let edited = posts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == fwd["id"])
        .unwrap();
    assert_eq!(edited["text"], "Go developer (edited)");
    assert_eq!(
        edited["forward_from"],
        json!({"type": "channel", "id": src_id})
    );
    assert_eq!(edited["forward_channel_post"], post["id"]);
    assert!(edited["edit_date"].is_i64());
    let (s, _) = ctl(
        &http,
        Method::DELETE,
        format!("{base}/api/channels/{id}/posts/{fwd_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, err) = ctl(
        &http,
        Method::DELETE,
        format!("{base}/api/channels/{id}/posts/{fwd_id}"),
        None,
    )
    .await;
    assert_eq!((s, &err["error"]["code"]), (404, &json!("not_found")));

    let (_, inv) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{id}/invites"),
        Some(json!({"usage_limit": 5})),
    )
    .await;
    let hash = inv["hash"].as_str().unwrap().to_string();
    assert_eq!(inv["link"], format!("https://t.me/+{hash}"));
    let (s, _) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/channels/{id}/invites/{hash}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, view) = ctl(
        &http,
        Method::PATCH,
        format!("{base}/api/channels/{id}"),
        Some(json!({"push_every": 2, "difference_window": 10})),
    )
    .await;
    assert_eq!(
        (
            view["push_every"].as_i64(),
            view["difference_window"].as_i64()
        ),
        (Some(2), Some(10))
    );
    assert_eq!(view["invites"][1]["revoked"], true);
    assert_eq!(view["members"], json!([alice.id.0]));
    assert_eq!(view["pts"], 6);

    let (_, count) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/users/{}/channels", alice.id.0),
        Some(json!({"count": 498})),
    )
    .await;
    assert_eq!(count, json!({"count": 498, "limit": 500, "channels": [id]}));
    let (_, limits) = ctl(&http, Method::GET, format!("{base}/api/limits"), None).await;
    let names: Vec<&str> = limits
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "resolve_username",
            "resolve_username_daily",
            "get_history",
            "join"
        ]
    );
    let (s, _) = ctl(
        &http,
        Method::POST,
        format!("{base}/api/limits"),
        Some(json!({"name": "history", "methods": ["messages.getHistory"], "max": 1, "window_secs": 30, "wait_secs": 120})),
    )
    .await;
    assert_eq!(s, 200);
    let c = logged_in(&sim, alice.id).await;
    let peer = peer_of(&resolve_channel(&c, "src_c12", ChannelId(src_id)).await);
    history(&c, peer.clone(), 0, 0, 10, 0, 0).await.unwrap();
    let (code, name, value) = rpc(history(&c, peer, 0, 0, 10, 0, 0)
        .await
        .err()
        .expect("limited"));
    // Waits of more than 60 s reach the caller (grammers sleeps through shorter ones).
    assert_eq!((code, name.as_str(), value), (420, "FLOOD_WAIT", Some(120)));
    let (s, _) = ctl(
        &http,
        Method::DELETE,
        format!("{base}/api/limits/history"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, counters) = ctl(
        &http,
        Method::GET,
        format!("{base}/api/users/{}/counters", alice.id.0),
        None,
    )
    .await;
    assert_eq!(counters["calls"]["messages.getHistory"], 2);
    assert_eq!(counters["open_connections"], 1);
    c.quit().await;
    sim.shutdown().await;
}
