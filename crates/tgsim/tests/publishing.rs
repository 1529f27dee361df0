//! Publishing to channels as autoposting meets it: an account or a bot posts only with an
//! administrator's rights (Telegram's errors otherwise), a repeated `random_id` posts nothing
//! (single posts and whole albums), albums need `messages.uploadMedia` first and arrive with
//! one `grouped_id`, `silent` and `no_webpage` are recorded, and posts are edited, pinned,
//! unpinned and deleted — checked through the control API's view of the channel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use grammers_client::InvocationError;
use grammers_client::tl;
use serde_json::{Value, json};
use tgsim::{AdminRights, ChannelId, NewBot, NewChannel, Peer};

fn channel(sim: &tgsim::Handle, title: &str, username: &str) -> ChannelId {
    let info = sim
        .create_channel(NewChannel {
            title: title.into(),
            username: Some(username.into()),
            ..Default::default()
        })
        .unwrap();
    let Peer::Channel(id) = info.peer else {
        panic!("not a channel")
    };
    id
}

/// The channel's input peer as `c` resolves it.
async fn resolve(c: &TestClient, username: &str) -> tl::enums::InputPeer {
    let tl::enums::contacts::ResolvedPeer::Peer(r) = c
        .client
        .invoke(&tl::functions::contacts::ResolveUsername {
            username: username.into(),
            referer: None,
        })
        .await
        .unwrap();
    match &r.chats[0] {
        tl::enums::Chat::Channel(ch) => tl::types::InputPeerChannel {
            channel_id: ch.id,
            access_hash: ch.access_hash.unwrap(),
        }
        .into(),
        other => panic!("not a channel: {other:?}"),
    }
}

fn rpc_name(e: InvocationError) -> (i32, String) {
    match e {
        InvocationError::Rpc(r) => (r.code, r.name),
        other => panic!("not an rpc error: {other}"),
    }
}

fn send_text(
    peer: &tl::enums::InputPeer,
    text: &str,
    random_id: i64,
) -> tl::functions::messages::SendMessage {
    tl::functions::messages::SendMessage {
        no_webpage: true,
        silent: true,
        background: false,
        clear_draft: false,
        peer: peer.clone(),
        reply_to: None,
        message: text.into(),
        random_id,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_floodskip: false,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    }
}

/// Uploads `bytes` with `upload.saveFilePart` and answers the `inputMediaUploadedPhoto`.
async fn uploaded_photo(c: &TestClient, file_id: i64, bytes: &[u8]) -> tl::enums::InputMedia {
    c.client
        .invoke(&tl::functions::upload::SaveFilePart {
            file_id,
            file_part: 0,
            bytes: bytes.to_vec(),
        })
        .await
        .unwrap();
    tl::types::InputMediaUploadedPhoto {
        spoiler: false,
        live_photo: false,
        file: tl::types::InputFile {
            id: file_id,
            parts: 1,
            name: "p.jpg".into(),
            md5_checksum: String::new(),
        }
        .into(),
        stickers: None,
        ttl_seconds: None,
        video: None,
    }
    .into()
}

/// The `inputMediaPhoto` of a photo stored with `messages.uploadMedia`.
async fn stored_photo(
    c: &TestClient,
    file_id: i64,
    peer: &tl::enums::InputPeer,
) -> tl::enums::InputMedia {
    let media = uploaded_photo(c, file_id, &[0xff, 0xd8, file_id as u8]).await;
    let stored = c
        .client
        .invoke(&tl::functions::messages::UploadMedia {
            business_connection_id: None,
            peer: peer.clone(),
            media,
        })
        .await
        .unwrap();
    let tl::enums::MessageMedia::Photo(p) = stored else {
        panic!("not a photo")
    };
    let Some(tl::enums::Photo::Photo(p)) = p.photo else {
        panic!("no photo")
    };
    tl::types::InputMediaPhoto {
        spoiler: false,
        live_photo: false,
        id: tl::types::InputPhoto {
            id: p.id,
            access_hash: p.access_hash,
            file_reference: p.file_reference,
        }
        .into(),
        ttl_seconds: None,
        video: None,
    }
    .into()
}

fn album(
    peer: &tl::enums::InputPeer,
    media: Vec<(tl::enums::InputMedia, i64)>,
) -> tl::functions::messages::SendMultiMedia {
    tl::functions::messages::SendMultiMedia {
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: peer.clone(),
        reply_to: None,
        multi_media: media
            .into_iter()
            .map(|(media, random_id)| {
                tl::types::InputSingleMedia {
                    media,
                    random_id,
                    message: format!("item {random_id}"),
                    entities: None,
                }
                .into()
            })
            .collect(),
        schedule_date: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
    }
}

fn pin(
    peer: &tl::enums::InputPeer,
    id: i32,
    unpin: bool,
) -> tl::functions::messages::UpdatePinnedMessage {
    tl::functions::messages::UpdatePinnedMessage {
        silent: true,
        unpin,
        pm_oneside: false,
        peer: peer.clone(),
        id,
    }
}

fn posts(sim: &tgsim::Handle, ch: ChannelId) -> Vec<tgsim::MessageView> {
    sim.channel_posts(ch)
        .unwrap()
        .into_iter()
        .filter(|m| !m.text.is_empty() || m.media.is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_posts_only_with_rights_and_a_random_id_posts_once() {
    let sim = sim().await;
    let alice = user(&sim, "+15550700", "Alice", None);
    let ch = channel(&sim, "Ads", "ads_pub1");
    let c = logged_in(&sim, alice.id).await;
    let peer = resolve(&c, "ads_pub1").await;

    // Not a member: CHAT_WRITE_FORBIDDEN. A subscriber: CHAT_ADMIN_REQUIRED.
    let e = c
        .client
        .invoke(&send_text(&peer, "hello", 1))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (403, "CHAT_WRITE_FORBIDDEN".into()));
    sim.join_channel(alice.id, ch).unwrap();
    let e = c
        .client
        .invoke(&send_text(&peer, "hello", 2))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "CHAT_ADMIN_REQUIRED".into()));
    // An administrator without post rights cannot post either.
    sim.set_channel_admin(
        ch,
        alice.id,
        Some(AdminRights {
            delete_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    let e = c
        .client
        .invoke(&send_text(&peer, "hello", 3))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "CHAT_ADMIN_REQUIRED".into()));
    assert!(posts(&sim, ch).is_empty(), "a refused post leaves nothing");

    sim.set_channel_admin(
        ch,
        alice.id,
        Some(AdminRights {
            post_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    c.client
        .invoke(&send_text(&peer, "hello", 4))
        .await
        .unwrap();
    // The same random_id again (a retry after a lost answer): refused, nothing posted twice.
    let e = c
        .client
        .invoke(&send_text(&peer, "hello", 4))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "RANDOM_ID_DUPLICATE".into()));
    let list = posts(&sim, ch);
    assert_eq!(list.len(), 1);
    assert!(list[0].silent && list[0].no_webpage);
    assert_eq!(list[0].from, None, "a broadcast post shows no author");
    let post_id = list[0].id;

    // Its poster edits it; pinning needs edit (or pin) rights.
    c.client
        .invoke(&tl::functions::messages::EditMessage {
            no_webpage: false,
            invert_media: false,
            peer: peer.clone(),
            id: post_id,
            message: Some("hello, edited".into()),
            media: None,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            quick_reply_shortcut_id: None,
            rich_message: None,
        })
        .await
        .unwrap();
    let e = c
        .client
        .invoke(&pin(&peer, post_id, false))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "CHAT_ADMIN_REQUIRED".into()));
    sim.set_channel_admin(
        ch,
        alice.id,
        Some(AdminRights {
            post_messages: true,
            edit_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    let answer = c.client.invoke(&pin(&peer, post_id, false)).await.unwrap();
    let tl::enums::Updates::Updates(u) = answer else {
        panic!("pinning answers updates")
    };
    assert!(matches!(
        &u.updates[..],
        [tl::enums::Update::PinnedChannelMessages(p)] if p.pinned && p.messages == vec![post_id]
    ));
    assert_eq!(sim.channel(ch).unwrap().pinned, vec![post_id]);
    assert!(posts(&sim, ch)[0].pinned);
    c.client.invoke(&pin(&peer, post_id, true)).await.unwrap();
    assert!(sim.channel(ch).unwrap().pinned.is_empty());
    let e = c.client.invoke(&pin(&peer, 999, false)).await.unwrap_err();
    assert_eq!(rpc_name(e), (400, "MESSAGE_ID_INVALID".into()));

    // Someone else's post: a poster without delete rights may not delete it.
    let other = sim
        .post_to_channel(ch, tgsim::OutgoingMessage::text("by the channel"))
        .unwrap();
    let Peer::Channel(_) = other.peer else {
        panic!()
    };
    let tl::enums::InputPeer::Channel(ip) = peer.clone() else {
        panic!()
    };
    let e = c
        .client
        .invoke(&tl::functions::channels::DeleteMessages {
            channel: tl::types::InputChannel {
                channel_id: ip.channel_id,
                access_hash: ip.access_hash,
            }
            .into(),
            id: vec![other.id],
        })
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (403, "MESSAGE_DELETE_FORBIDDEN".into()));
    // Its own post it may delete; the view lists it as deleted.
    c.client
        .invoke(&tl::functions::channels::DeleteMessages {
            channel: tl::types::InputChannel {
                channel_id: ip.channel_id,
                access_hash: ip.access_hash,
            }
            .into(),
            id: vec![post_id],
        })
        .await
        .unwrap();
    let view = sim.channel(ch).unwrap();
    assert_eq!(view.deleted, vec![post_id]);
    assert!(posts(&sim, ch).iter().all(|m| m.id != post_id));
    c.quit().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_album_is_grouped_checked_whole_and_never_posted_twice() {
    let sim = sim().await;
    let alice = user(&sim, "+15550701", "Alice", None);
    let ch = channel(&sim, "Albums", "albums_pub1");
    sim.set_channel_admin(
        ch,
        alice.id,
        Some(AdminRights {
            post_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    let c = logged_in(&sim, alice.id).await;
    let peer = resolve(&c, "albums_pub1").await;

    // Uploaded files straight into sendMultiMedia: MEDIA_INVALID (uploadMedia first).
    let raw = uploaded_photo(&c, 77, &[0xff, 0xd8]).await;
    let e = c
        .client
        .invoke(&album(&peer, vec![(raw, 100)]))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "MEDIA_INVALID".into()));

    let mut items = Vec::new();
    for i in 0..3 {
        items.push((stored_photo(&c, 200 + i, &peer).await, 300 + i));
    }
    let answer = c.client.invoke(&album(&peer, items.clone())).await.unwrap();
    let tl::enums::Updates::Updates(u) = answer else {
        panic!("an album answers updates")
    };
    let ids: Vec<i64> = u
        .updates
        .iter()
        .filter_map(|u| match u {
            tl::enums::Update::MessageId(m) => Some(m.random_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![300, 301, 302]);
    let list = posts(&sim, ch);
    assert_eq!(list.len(), 3);
    let group = list[0].grouped_id.expect("grouped");
    assert!(
        list.iter()
            .all(|m| m.grouped_id == Some(group) && m.media.is_some())
    );

    // The whole album again, or one item of it among new ones: nothing is posted.
    let e = c
        .client
        .invoke(&album(&peer, items.clone()))
        .await
        .unwrap_err();
    assert_eq!(rpc_name(e), (400, "RANDOM_ID_DUPLICATE".into()));
    let mixed = vec![(stored_photo(&c, 210, &peer).await, 400), items[2].clone()];
    let e = c.client.invoke(&album(&peer, mixed)).await.unwrap_err();
    assert_eq!(rpc_name(e), (400, "RANDOM_ID_DUPLICATE".into()));
    assert_eq!(posts(&sim, ch).len(), 3);
    // More than 10 items.
    let mut many = Vec::new();
    for i in 0..11 {
        many.push((stored_photo(&c, 500 + i, &peer).await, 600 + i));
    }
    let e = c.client.invoke(&album(&peer, many)).await.unwrap_err();
    assert_eq!(rpc_name(e), (400, "MULTI_MEDIA_TOO_LONG".into()));
    c.quit().await;
    sim.shutdown().await;
}

/// Calls a Bot API method with JSON parameters; answers the status and body.
async fn bot_call(sim: &tgsim::Handle, token: &str, method: &str, params: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/bot{token}/{method}", sim.bot_api_url()))
        .json(&params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `sendMediaGroup` with two photos uploaded in a hand-built multipart body.
async fn media_group(sim: &tgsim::Handle, token: &str, chat_id: i64) -> (u16, Value) {
    let boundary = "pubboundary";
    let mut body = Vec::new();
    let mut field = |name: &str, file: Option<&str>, bytes: &[u8]| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            body.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: image/jpeg").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    field("chat_id", None, chat_id.to_string().as_bytes());
    field("disable_notification", None, b"true");
    let media = json!([
        {"type": "photo", "media": "attach://a", "caption": "first"},
        {"type": "photo", "media": "attach://b"}
    ]);
    field("media", None, media.to_string().as_bytes());
    field("a", Some("a.jpg"), &[0xff, 0xd8, 1]);
    field("b", Some("b.jpg"), &[0xff, 0xd8, 2]);
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let r = reqwest::Client::new()
        .post(format!("{}/bot{token}/sendMediaGroup", sim.bot_api_url()))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_posts_edits_pins_and_deletes_only_as_an_administrator() {
    let sim = sim().await;
    let bot = sim
        .create_bot(NewBot {
            username: "poster_bot".into(),
            first_name: "Poster".into(),
            token: None,
        })
        .unwrap();
    let token = bot.token.clone().unwrap();
    let ch = channel(&sim, "Bot ads", "botads_pub1");
    let chat_id = Peer::Channel(ch).bot_api_id();
    let send = |text: &str| json!({"chat_id": chat_id, "text": text});

    let (s, v) = bot_call(
        &sim,
        &token,
        "sendMessage",
        json!({"chat_id": -1009999, "text": "x"}),
    )
    .await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (400, "Bad Request: chat not found")
    );
    let (s, v) = bot_call(&sim, &token, "sendMessage", send("x")).await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (403, "Forbidden: bot is not a member of the channel chat")
    );
    sim.set_channel_admin(ch, bot.id, Some(AdminRights::default()))
        .unwrap();
    let (s, v) = bot_call(&sim, &token, "sendMessage", send("x")).await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (
            400,
            "Bad Request: need administrator rights in the channel chat"
        )
    );
    let (s, _) = media_group(&sim, &token, chat_id).await;
    assert_eq!(s, 400);
    assert!(posts(&sim, ch).is_empty());

    sim.set_channel_admin(
        ch,
        bot.id,
        Some(AdminRights {
            post_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    let mut p = send("Sale today");
    p["disable_notification"] = json!(true);
    p["link_preview_options"] = json!({"is_disabled": true});
    let (s, v) = bot_call(&sim, &token, "sendMessage", p).await;
    assert_eq!(s, 200, "{v}");
    let text_id = v["result"]["message_id"].as_i64().unwrap();
    assert_eq!(v["result"]["chat"]["type"], "channel");
    let (s, v) = media_group(&sim, &token, chat_id).await;
    assert_eq!(s, 200, "{v}");
    let album: Vec<i64> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_i64().unwrap())
        .collect();
    assert_eq!(album.len(), 2);
    let list = posts(&sim, ch);
    assert_eq!(list.len(), 3);
    assert!(list[0].silent && list[0].no_webpage);
    assert!(list[1].grouped_id.is_some() && list[1].grouped_id == list[2].grouped_id);
    assert!(list[1].silent);

    // Its own posts it edits and deletes; pinning needs can_edit_messages in a channel.
    let (s, v) = bot_call(
        &sim,
        &token,
        "editMessageText",
        json!({"chat_id": chat_id, "message_id": text_id, "text": "Sale today (edited)"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = bot_call(
        &sim,
        &token,
        "editMessageText",
        json!({"chat_id": chat_id, "message_id": album[0], "text": "no"}),
    )
    .await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (400, "Bad Request: there is no text in the message to edit")
    );
    let (s, v) = bot_call(
        &sim,
        &token,
        "editMessageCaption",
        json!({"chat_id": chat_id, "message_id": album[0], "caption": "first (edited)"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let pin = json!({"chat_id": chat_id, "message_id": text_id});
    let (s, v) = bot_call(&sim, &token, "pinChatMessage", pin.clone()).await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (
            400,
            "Bad Request: not enough rights to manage pinned messages in the chat"
        )
    );
    sim.set_channel_admin(
        ch,
        bot.id,
        Some(AdminRights {
            post_messages: true,
            edit_messages: true,
            ..Default::default()
        }),
    )
    .unwrap();
    let (s, _) = bot_call(&sim, &token, "pinChatMessage", pin.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(sim.channel(ch).unwrap().pinned, vec![text_id as i32]);
    let (s, _) = bot_call(&sim, &token, "unpinChatMessage", pin.clone()).await;
    assert_eq!(s, 200);
    assert!(sim.channel(ch).unwrap().pinned.is_empty());

    let by_channel = sim
        .post_to_channel(ch, tgsim::OutgoingMessage::text("someone else's"))
        .unwrap();
    let (s, v) = bot_call(
        &sim,
        &token,
        "deleteMessage",
        json!({"chat_id": chat_id, "message_id": by_channel.id}),
    )
    .await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (400, "Bad Request: message can't be deleted")
    );
    let (s, _) = bot_call(
        &sim,
        &token,
        "deleteMessage",
        json!({"chat_id": chat_id, "message_id": text_id}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(sim.channel(ch).unwrap().deleted, vec![text_id as i32]);
    let (s, v) = bot_call(
        &sim,
        &token,
        "deleteMessage",
        json!({"chat_id": chat_id, "message_id": text_id}),
    )
    .await;
    assert_eq!(
        (s, v["description"].as_str().unwrap()),
        (400, "Bad Request: message to delete not found")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_grants_rights_and_shows_pins_and_deletions() {
    let sim = sim().await;
    let alice = user(&sim, "+15550702", "Alice", None);
    let ch = channel(&sim, "Ctl", "ctl_pub1");
    let http = reqwest::Client::new();
    let base = sim.control_url();
    let r = http
        .post(format!("{base}/api/channels/{}/admins", ch.0))
        .json(&json!({"user_id": alice.id.0, "rights": {"post_messages": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["admins"][0]["user_id"], json!(alice.id.0));
    assert_eq!(view["admins"][0]["rights"]["post_messages"], json!(true));
    assert!(
        view["members"]
            .as_array()
            .unwrap()
            .contains(&json!(alice.id.0))
    );
    let post = sim
        .post_to_channel(ch, tgsim::OutgoingMessage::text("pin me"))
        .unwrap();
    let r = http
        .post(format!("{base}/api/channels/{}/pins/{}", ch.0, post.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let view: Value = http
        .get(format!("{base}/api/channels/{}", ch.0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["pinned"], json!([post.id]));
    let r = http
        .delete(format!("{base}/api/channels/{}/posts/{}", ch.0, post.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let view: Value = http
        .get(format!("{base}/api/channels/{}", ch.0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["pinned"], json!([]));
    assert_eq!(view["deleted"], json!([post.id]));
    let r = http
        .delete(format!(
            "{base}/api/channels/{}/admins/{}",
            ch.0, alice.id.0
        ))
        .send()
        .await
        .unwrap();
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["admins"], json!([]));
    sim.shutdown().await;
}
