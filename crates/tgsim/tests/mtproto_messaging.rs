//! Dialogs, history, live updates, catch-up, files and faults with the real grammers-client 0.11.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use grammers_client::message::InputMessage;
use grammers_client::tl;
use grammers_session::types::PeerRef;
use tgsim::{NewChannel, NewGroup, OutgoingMessage, Peer};

async fn resolve(c: &TestClient, username: &str) -> PeerRef {
    let peer = c
        .client
        .resolve_username(username)
        .await
        .unwrap()
        .expect("resolves");
    peer.to_ref().await.unwrap().expect("has a ref")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_chat_dialogs_history_live_updates_and_idempotent_send() {
    let sim = sim().await;
    let alice = user(&sim, "+15550200", "Alice", Some("alice_t"));
    let bob = user(&sim, "+15550201", "Bob", Some("bob_t"));
    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage::text("hello alice"),
    )
    .unwrap();

    let mut c = logged_in(&sim, alice.id).await;
    let mut dialogs = c.client.iter_dialogs();
    let mut found = false;
    while let Some(d) = dialogs.next().await.unwrap() {
        if d.peer_id().bare_id_unchecked() == bob.id.0 {
            found = true;
            assert_eq!(d.peer().name(), Some("Bob"));
        }
    }
    assert!(found, "Bob's chat is among the dialogs");

    let bob_ref = resolve(&c, "bob_t").await;
    let mut history = c.client.iter_messages(bob_ref);
    let first = history.next().await.unwrap().expect("one message");
    assert_eq!(first.text(), "hello alice");
    assert!(!first.outgoing());

    let mut stream = c.stream(true).await;
    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage::text("live 1"),
    )
    .unwrap();
    let m = next_message(&mut stream, "live 1").await;
    assert_eq!(m.sender_id().map(|p| p.bare_id_unchecked()), Some(bob.id.0));

    let sent = c.client.send_message(bob_ref, "hi bob").await.unwrap();
    assert!(sent.id() > 0);
    let got = sim.received_messages(bob.id).unwrap();
    assert!(
        got.iter()
            .any(|m| m.text == "hi bob" && m.from == Some(alice.id))
    );

    // A repeated random_id is refused as Telegram does, and no second message is posted.
    let req = tl::functions::messages::SendMessage {
        no_webpage: false,
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: bob_ref.into(),
        reply_to: None,
        message: "exactly once".into(),
        random_id: 424242,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    };
    let id_of = |u: tl::enums::Updates| match u {
        tl::enums::Updates::UpdateShortSentMessage(s) => s.id,
        other => panic!("unexpected {other:?}"),
    };
    assert!(id_of(c.client.invoke(&req).await.unwrap()) > 0);
    let dup = c.client.invoke(&req).await.unwrap_err();
    assert!(dup.is("RANDOM_ID_DUPLICATE"), "{dup:?}");
    let copies = sim
        .received_messages(bob.id)
        .unwrap()
        .iter()
        .filter(|m| m.text == "exactly once")
        .count();
    assert_eq!(copies, 1);
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_channel_messages_flow_both_ways() {
    let sim = sim().await;
    let alice = user(&sim, "+15550210", "Alice", Some("alice_g"));
    let bob = user(&sim, "+15550211", "Bob", Some("bob_g"));
    let group = sim
        .create_group(NewGroup {
            title: "Team".into(),
            creator: bob.id,
            members: vec![alice.id],
            ..Default::default()
        })
        .unwrap();
    let channel = sim
        .create_channel(NewChannel {
            title: "Jobs".into(),
            username: Some("jobs_t".into()),
            members: vec![alice.id],
            ..Default::default()
        })
        .unwrap();
    let news = sim
        .create_channel(NewChannel {
            title: "News".into(),
            username: Some("news_t".into()),
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(channel_id) = channel.peer else {
        panic!()
    };
    let Peer::Channel(news_id) = news.peer else {
        panic!()
    };

    let mut c = logged_in(&sim, alice.id).await;
    let mut group_ref = None;
    let mut dialogs = c.client.iter_dialogs();
    while let Some(d) = dialogs.next().await.unwrap() {
        if d.peer().name() == Some("Team") {
            group_ref = Some(d.peer_ref());
        }
    }
    let group_ref = group_ref.expect("group among dialogs");
    let mut stream = c.stream(true).await;

    sim.send_message(bob.id, group.peer, OutgoingMessage::text("group hi"))
        .unwrap();
    let m = next_message(&mut stream, "group hi").await;
    assert_eq!(m.sender_id().map(|p| p.bare_id_unchecked()), Some(bob.id.0));
    c.client.send_message(group_ref, "hi team").await.unwrap();
    assert!(
        sim.received_messages(bob.id)
            .unwrap()
            .iter()
            .any(|m| m.text == "hi team" && m.peer == group.peer)
    );

    sim.post_to_channel(channel_id, OutgoingMessage::text("Rust developer wanted"))
        .unwrap();
    next_message(&mut stream, "Rust developer wanted").await;
    let jobs = resolve(&c, "jobs_t").await;
    let mut history = c.client.iter_messages(jobs);
    assert_eq!(
        history.next().await.unwrap().expect("post").text(),
        "Rust developer wanted"
    );

    // Forwarding keeps the origin.
    let bob_ref = resolve(&c, "bob_g").await;
    let post = c.client.iter_messages(jobs).next().await.unwrap().unwrap();
    let fwd = c
        .client
        .forward_messages(bob_ref, &[post.id()], jobs)
        .await
        .unwrap();
    assert_eq!(fwd.len(), 1);
    let at_bob = sim.received_messages(bob.id).unwrap();
    let copy = at_bob
        .iter()
        .find(|m| m.text == "Rust developer wanted")
        .expect("forward reached bob");
    assert_eq!(copy.forward_from, Some(channel.peer));

    let news_ref = resolve(&c, "news_t").await;
    c.client.join_chat(news_ref).await.unwrap();
    sim.post_to_channel(news_id, OutgoingMessage::text("breaking"))
        .unwrap();
    next_message(&mut stream, "breaking").await;
    assert!(
        sim.received_messages(alice.id)
            .unwrap()
            .iter()
            .any(|m| m.text == "breaking")
    );
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_through_get_difference_after_being_offline() {
    let sim = sim().await;
    let alice = user(&sim, "+15550220", "Alice", None);
    let bob = user(&sim, "+15550221", "Bob", None);
    let channel = sim
        .create_channel(NewChannel {
            title: "Feed".into(),
            username: Some("feed_t".into()),
            members: vec![alice.id],
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(channel_id) = channel.peer else {
        panic!()
    };
    let mut c = logged_in(&sim, alice.id).await;
    let session = c.session.clone();
    let mut stream = c.stream(true).await;
    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage::text("online"),
    )
    .unwrap();
    next_message(&mut stream, "online").await;
    sim.post_to_channel(channel_id, OutgoingMessage::text("post online"))
        .unwrap();
    next_message(&mut stream, "post online").await;
    stream.sync_update_state().await.unwrap();
    drop(stream);
    c.quit().await;

    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage::text("missed 1"),
    )
    .unwrap();
    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage::text("missed 2"),
    )
    .unwrap();
    sim.post_to_channel(channel_id, OutgoingMessage::text("missed post"))
        .unwrap();

    let mut c = TestClient::connect(session);
    let mut stream = c.stream(true).await;
    let mut want = vec!["missed 1", "missed 2", "missed post"];
    let res = tokio::time::timeout(Duration::from_secs(20), async {
        while !want.is_empty() {
            if let grammers_client::update::Update::NewMessage(m) = stream.next().await.unwrap() {
                want.retain(|w| *w != m.text());
            }
        }
    })
    .await;
    assert!(res.is_ok(), "still missing {want:?}");
    let calls = sim.counters().accounts[&alice.id.0.to_string()]
        .calls
        .clone();
    assert!(calls.get("updates.getDifference").copied().unwrap_or(0) >= 1);
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_files() {
    let sim = sim().await;
    let alice = user(&sim, "+15550230", "Alice", None);
    let bob = user(&sim, "+15550231", "Bob", Some("bob_f"));
    let c = logged_in(&sim, alice.id).await;
    let bob_ref = resolve(&c, "bob_f").await;
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let uploaded = c
        .client
        .upload_stream(&mut data.as_slice(), data.len(), "report.bin".into())
        .await
        .unwrap();
    let sent = c
        .client
        .send_message(
            bob_ref,
            InputMessage::new().text("the report").document(uploaded),
        )
        .await
        .unwrap();
    let media = sent.media().expect("media");
    let mut dl = c.client.iter_download(&media);
    let mut got = Vec::new();
    while let Some(chunk) = dl.next().await.unwrap() {
        got.extend(chunk);
    }
    assert_eq!(got, data);
    let received = sim.received_messages(bob.id).unwrap();
    let m = received
        .iter()
        .find(|m| m.text == "the report")
        .expect("bob got it");
    let mv = m.media.clone().expect("with media");
    assert_eq!(mv.size, data.len());
    assert_eq!(mv.file_name.as_deref(), Some("report.bin"));

    // An album: two photos sharing one grouped_id.
    let mut album = Vec::new();
    for name in ["a.jpg", "b.jpg"] {
        let bytes = vec![0xffu8, 0xd8, 0xff, name.as_bytes()[0]];
        let up = c
            .client
            .upload_stream(&mut bytes.as_slice(), bytes.len(), name.into())
            .await
            .unwrap();
        album.push(
            grammers_client::media::InputMedia::new()
                .caption(name)
                .photo(up),
        );
    }
    let sent = c.client.send_album(bob_ref, album).await.unwrap();
    assert_eq!(sent.len(), 2);
    let received = sim.received_messages(bob.id).unwrap();
    let parts: Vec<_> = received
        .iter()
        .filter(|m| m.text.ends_with(".jpg"))
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].grouped_id.is_some() && parts[0].grouped_id == parts[1].grouped_id);

    // A photo from the simulated side reaches the client and downloads intact.
    let jpeg = vec![0xffu8, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5];
    sim.send_message(
        bob.id,
        Peer::User(alice.id),
        OutgoingMessage {
            text: "pic".into(),
            media: Some(tgsim::MediaUpload {
                kind: tgsim::MediaKind::Photo,
                data: jpeg.clone(),
                file_name: None,
                mime: Some("image/jpeg".into()),
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let mut history = c.client.iter_messages(bob_ref);
    let last = history.next().await.unwrap().expect("pic");
    assert_eq!(last.text(), "pic");
    let mut dl = c.client.iter_download(&last.media().expect("photo"));
    let mut got = Vec::new();
    while let Some(chunk) = dl.next().await.unwrap() {
        got.extend(chunk);
    }
    assert_eq!(got, jpeg);
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_is_slept_through_and_dropped_connections_reconnect() {
    let sim = sim().await;
    let alice = user(&sim, "+15550240", "Alice", None);
    let _bob = user(&sim, "+15550241", "Bob", Some("bob_w"));
    let c = logged_in(&sim, alice.id).await;
    sim.flood_wait(Some(alice.id), "contacts.resolveUsername", 2, 1);
    let t = Instant::now();
    resolve(&c, "bob_w").await;
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "grammers slept FLOOD_WAIT_2"
    );
    let counters = sim.counters();
    let mine = &counters.accounts[&alice.id.0.to_string()];
    assert_eq!(mine.calls["contacts.resolveUsername"], 2);

    let before = mine.connections;
    assert!(sim.drop_connections(alice.id) >= 1);
    // A request sent on the dying connection fails with `Dropped` (grammers does not resend
    // it), so wait until the simulator has closed it and the client has read the close.
    let open =
        |sim: &tgsim::Handle| sim.counters().accounts[&alice.id.0.to_string()].open_connections;
    let t = Instant::now();
    while open(&sim) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the connection never closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let me = c.client.get_me().await.unwrap();
    assert_eq!(me.id().bare_id_unchecked(), alice.id.0);
    let after = sim.counters().accounts[&alice.id.0.to_string()].connections;
    assert!(
        after > before,
        "a new connection was opened ({before} -> {after})"
    );

    sim.rpc_error(Some(alice.id), "users.getUsers", 400, "PEER_FLOOD", 1);
    let err = c.client.get_me().await.unwrap_err();
    assert!(err.is("PEER_FLOOD"), "{err}");
    assert!(c.client.get_me().await.is_ok());
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletions_reads_and_bot_conversations_keep_pts_consistent() {
    let sim = sim().await;
    let alice = user(&sim, "+15550250", "Alice", None);
    let bob = user(&sim, "+15550251", "Bob", Some("bob_e"));
    let bot = sim
        .create_bot(tgsim::NewBot {
            username: "echo_e_bot".into(),
            first_name: "Echo".into(),
            token: None,
        })
        .unwrap();
    let mut c = logged_in(&sim, alice.id).await;
    let mut stream = c.stream(true).await;
    let bob_ref = resolve(&c, "bob_e").await;

    let sent = c.client.send_message(bob_ref, "draft").await.unwrap();
    c.client
        .edit_message(bob_ref, sent.id(), "final")
        .await
        .unwrap();
    let bobs = sim.received_messages(bob.id).unwrap();
    let copy = bobs
        .iter()
        .find(|m| m.text == "final")
        .expect("edit reached bob");
    assert!(copy.edit_date.is_some());

    // Bob's side edits and deletes reach Alice live.
    let from_bob = sim
        .send_message(
            bob.id,
            Peer::User(alice.id),
            OutgoingMessage::text("to delete"),
        )
        .unwrap();
    next_message(&mut stream, "to delete").await;
    let diffs = |sim: &tgsim::Handle| {
        sim.counters().accounts[&alice.id.0.to_string()]
            .calls
            .get("updates.getDifference")
            .copied()
            .unwrap_or(0)
    };
    let diffs_before = diffs(&sim);
    c.client.mark_as_read(bob_ref).await.unwrap();
    c.client
        .delete_messages(bob_ref, &[sent.id()])
        .await
        .unwrap();
    assert!(
        !sim.messages(bob.id)
            .unwrap()
            .iter()
            .any(|m| m.text == "final")
    );
    let _ = from_bob;

    // A user writes to a bot over MTProto; the bot answers over the Bot API.
    let bot_ref = resolve(&c, "echo_e_bot").await;
    c.client.send_message(bot_ref, "/start").await.unwrap();
    let http = reqwest::Client::new();
    let token = bot.token.clone().unwrap();
    let updates: serde_json::Value = http
        .post(format!("{}/bot{token}/getUpdates", sim.bot_api_url()))
        .json(&serde_json::json!({"timeout": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updates["result"][0]["message"]["text"], "/start");
    assert_eq!(updates["result"][0]["message"]["from"]["id"], alice.id.0);
    let r: serde_json::Value = http
        .post(format!("{}/bot{token}/sendMessage", sim.bot_api_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("chat_id={}&text=Welcome%21", alice.id.0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ok"], true, "{r}");
    let m = next_message(&mut stream, "Welcome!").await;
    assert_eq!(m.sender_id().map(|p| p.bare_id_unchecked()), Some(bot.id.0));

    // No gap was detected along the way: no further getDifference was needed.
    assert_eq!(diffs(&sim), diffs_before);
    drop(stream);
    c.quit().await;
    sim.shutdown().await;
}
