//! MTProto RPC dispatch: strips the invoke wrappers, applies injected faults, counts calls and
//! answers each supported method from the world. Unknown methods get `400 INPUT_METHOD_INVALID`.

use std::sync::Arc;

use grammers_tl_types as tl;
use tl::{Deserializable, Identifiable, Serializable};
use tracing::debug;

use crate::channels::SendFlags;
use crate::mtproto::{ConnCtx, rpc_error, rpc_result};
use crate::state::{FaultKind, Shared};
use crate::tl_build::{self, Refs};
use crate::world::{
    self, BoxRef, ChannelId, ChatId, CodeKind, Effect, Event, Media, MediaKind, NewMessage, Peer,
    RpcError, UserId, World, bad,
};

/// The unparsed remainder of a wrapped query.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut tl::Cursor) -> tl::deserialize::Result<Self> {
        let mut v = Vec::new();
        buf.read_to_end(&mut v)?;
        Ok(Rest(v))
    }
}

type R = Result<Vec<u8>, RpcError>;

fn parse<T: Deserializable>(body: &[u8]) -> Result<T, RpcError> {
    T::from_bytes(body).map_err(|e| {
        debug!(error = %e, "cannot parse request");
        bad("INPUT_REQUEST_INVALID")
    })
}

fn unauthorized() -> RpcError {
    RpcError::new(401, "AUTH_KEY_UNREGISTERED")
}

/// Handles one RPC and returns the `rpc_result` body, or `None` when a `lose_answer` fault
/// says the answer is lost (the caller closes the connection).
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    ctx: &mut ConnCtx,
    req_msg_id: u64,
    body: Vec<u8>,
) -> Option<Vec<u8>> {
    let (method, fault, reply) = handle_call(shared, ctx, req_msg_id, body).await;
    match fault {
        Some(FaultKind::LoseAnswer) => {
            debug!(method, "answer lost by an injected fault");
            None
        }
        _ => Some(reply),
    }
}

/// Handles one RPC: the method's name, the fault applied to it, and the answer.
async fn handle_call(
    shared: &Arc<Shared>,
    ctx: &mut ConnCtx,
    req_msg_id: u64,
    mut body: Vec<u8>,
) -> (&'static str, Option<FaultKind>, Vec<u8>) {
    let invalid = |req_msg_id| {
        (
            "",
            None,
            rpc_error(req_msg_id, 400, "INPUT_REQUEST_INVALID"),
        )
    };
    loop {
        if body.len() < 4 {
            return invalid(req_msg_id);
        }
        let id = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        let inner = &body[4..];
        body = match id {
            tl::functions::InvokeWithLayer::<Rest>::CONSTRUCTOR_ID => {
                match tl::functions::InvokeWithLayer::<Rest>::from_bytes(inner) {
                    Ok(r) => {
                        ctx.layer = r.layer;
                        r.query.0
                    }
                    Err(_) => return invalid(req_msg_id),
                }
            }
            tl::functions::InitConnection::<Rest>::CONSTRUCTOR_ID => {
                match tl::functions::InitConnection::<Rest>::from_bytes(inner) {
                    Ok(r) => {
                        ctx.api_id = r.api_id;
                        ctx.device = r.device_model;
                        r.query.0
                    }
                    Err(_) => return invalid(req_msg_id),
                }
            }
            tl::functions::InvokeWithoutUpdates::<Rest>::CONSTRUCTOR_ID => {
                match tl::functions::InvokeWithoutUpdates::<Rest>::from_bytes(inner) {
                    Ok(r) => r.query.0,
                    Err(_) => return invalid(req_msg_id),
                }
            }
            tl::functions::InvokeAfterMsg::<Rest>::CONSTRUCTOR_ID => {
                match tl::functions::InvokeAfterMsg::<Rest>::from_bytes(inner) {
                    Ok(r) => r.query.0,
                    Err(_) => return invalid(req_msg_id),
                }
            }
            _ => break,
        };
    }
    let id = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let method = tl::name_for_id(id);
    shared.count_call(ctx.key_id, method);
    let user = shared
        .world
        .lock()
        .keys
        .get(&ctx.key_id)
        .and_then(|k| k.user);
    if let Some(d) = shared.latency_for(user) {
        tokio::time::sleep(d).await;
    }
    let fault = shared.take_fault(user, method);
    match &fault {
        Some(FaultKind::FloodWait { seconds }) => {
            let answer = rpc_error(req_msg_id, 420, &format!("FLOOD_WAIT_{seconds}"));
            return (method, fault, answer);
        }
        Some(FaultKind::RpcError { code, message }) => {
            let answer = rpc_error(req_msg_id, *code, message);
            return (method, fault, answer);
        }
        Some(FaultKind::LoseAnswer) | None => {}
    }
    let wait = user.and_then(|u| {
        shared
            .limits
            .lock()
            .check(u, method, std::time::Instant::now())
    });
    if let Some(seconds) = wait {
        debug!(method, seconds, "rate limit exceeded");
        let answer = rpc_error(req_msg_id, 420, &format!("FLOOD_WAIT_{seconds}"));
        return (method, fault, answer);
    }
    debug!(method, key_id = ctx.key_id, "rpc");
    let answer = match dispatch(shared, ctx, id, &body[4..]) {
        Ok(bytes) => rpc_result(req_msg_id, &bytes),
        Err(e) => rpc_error(req_msg_id, e.code, &e.name),
    };
    (method, fault, answer)
}

struct Call<'a> {
    shared: &'a Shared,
    key_id: u64,
    api_id: i32,
    device: String,
    body: &'a [u8],
}

impl Call<'_> {
    fn user(&self) -> Result<UserId, RpcError> {
        let w = self.shared.world.lock();
        let k = w.keys.get(&self.key_id).ok_or_else(unauthorized)?;
        match (k.user, k.awaiting_password) {
            (Some(u), _) => Ok(u),
            (None, Some(_)) => Err(RpcError::new(401, "SESSION_PASSWORD_NEEDED")),
            _ => Err(unauthorized()),
        }
    }
}

fn dispatch(shared: &Shared, ctx: &ConnCtx, id: u32, body: &[u8]) -> R {
    use tl::functions as f;
    let c = Call {
        shared,
        key_id: ctx.key_id,
        api_id: ctx.api_id,
        device: ctx.device.clone(),
        body,
    };
    // A key destroyed by `auth.logOut` serves nothing more, not even a new sign-in.
    let dead = shared
        .world
        .lock()
        .keys
        .get(&ctx.key_id)
        .is_some_and(|k| k.logged_out);
    if dead {
        return Err(unauthorized());
    }
    match id {
        f::help::GetConfig::CONSTRUCTOR_ID => Ok(tl_build::config().to_bytes()),
        f::help::GetNearestDc::CONSTRUCTOR_ID => {
            Ok(tl::enums::NearestDc::Dc(tl::types::NearestDc {
                country: "NL".into(),
                this_dc: tl_build::THIS_DC,
                nearest_dc: tl_build::THIS_DC,
            })
            .to_bytes())
        }
        f::auth::SendCode::CONSTRUCTOR_ID => send_code(&c),
        f::auth::ResendCode::CONSTRUCTOR_ID => resend_code(&c),
        f::auth::SignIn::CONSTRUCTOR_ID => sign_in(&c),
        f::auth::LogOut::CONSTRUCTOR_ID => log_out(&c),
        f::auth::ImportBotAuthorization::CONSTRUCTOR_ID => {
            let r: f::auth::ImportBotAuthorization = parse(body)?;
            let mut w = shared.world.lock();
            let bot = w
                .bot_by_token(&r.bot_auth_token)
                .ok_or_else(|| bad("ACCESS_TOKEN_INVALID"))?;
            w.bind_key(c.key_id, bot);
            Ok(authorization(&w, bot)?.to_bytes())
        }
        f::account::GetPassword::CONSTRUCTOR_ID => get_password(&c),
        f::auth::CheckPassword::CONSTRUCTOR_ID => check_password(&c),
        f::auth::ExportLoginToken::CONSTRUCTOR_ID => export_login_token(&c, None),
        f::auth::ImportLoginToken::CONSTRUCTOR_ID => {
            let r: f::auth::ImportLoginToken = parse(body)?;
            export_login_token(&c, Some(r.token))
        }
        f::auth::AcceptLoginToken::CONSTRUCTOR_ID => accept_login_token(&c),
        f::updates::GetState::CONSTRUCTOR_ID => {
            let me = c.user()?;
            Ok(tl_build::state(&shared.world.lock(), me).to_bytes())
        }
        f::updates::GetDifference::CONSTRUCTOR_ID => get_difference(&c),
        f::updates::GetChannelDifference::CONSTRUCTOR_ID => get_channel_difference(&c),
        f::users::GetUsers::CONSTRUCTOR_ID => get_users(&c),
        f::users::GetFullUser::CONSTRUCTOR_ID => get_full_user(&c),
        f::contacts::ResolveUsername::CONSTRUCTOR_ID => resolve_username(&c),
        f::messages::GetDialogs::CONSTRUCTOR_ID => get_dialogs(&c),
        f::messages::GetHistory::CONSTRUCTOR_ID => get_history(&c),
        f::messages::GetMessages::CONSTRUCTOR_ID => get_messages(&c),
        f::channels::GetMessages::CONSTRUCTOR_ID => channel_get_messages(&c),
        f::messages::SendMessage::CONSTRUCTOR_ID => send_message(&c),
        f::messages::SendMedia::CONSTRUCTOR_ID => send_media(&c),
        f::messages::ForwardMessages::CONSTRUCTOR_ID => forward_messages(&c),
        f::messages::UploadMedia::CONSTRUCTOR_ID => upload_media(&c),
        f::messages::SendMultiMedia::CONSTRUCTOR_ID => send_multi_media(&c),
        f::messages::EditMessage::CONSTRUCTOR_ID => edit_message(&c),
        f::messages::UpdatePinnedMessage::CONSTRUCTOR_ID => update_pinned_message(&c),
        f::messages::DeleteMessages::CONSTRUCTOR_ID => delete_messages(&c),
        f::channels::DeleteMessages::CONSTRUCTOR_ID => channel_delete_messages(&c),
        f::messages::ReadHistory::CONSTRUCTOR_ID => read_history(&c),
        f::channels::ReadHistory::CONSTRUCTOR_ID => channel_read_history(&c),
        f::channels::JoinChannel::CONSTRUCTOR_ID => join_channel(&c),
        f::messages::CheckChatInvite::CONSTRUCTOR_ID => check_chat_invite(&c),
        f::messages::ImportChatInvite::CONSTRUCTOR_ID => import_chat_invite(&c),
        f::channels::LeaveChannel::CONSTRUCTOR_ID => leave_channel(&c),
        f::channels::GetFullChannel::CONSTRUCTOR_ID => get_full_channel(&c),
        f::channels::GetChannels::CONSTRUCTOR_ID => get_channels(&c),
        f::messages::GetFullChat::CONSTRUCTOR_ID => get_full_chat(&c),
        f::upload::SaveFilePart::CONSTRUCTOR_ID => {
            let r: f::upload::SaveFilePart = parse(body)?;
            c.user()?;
            save_part(&c, r.file_id, r.file_part, r.bytes)
        }
        f::upload::SaveBigFilePart::CONSTRUCTOR_ID => {
            let r: f::upload::SaveBigFilePart = parse(body)?;
            c.user()?;
            if r.file_part >= r.file_total_parts {
                return Err(bad("FILE_PART_INVALID"));
            }
            save_part(&c, r.file_id, r.file_part, r.bytes)
        }
        f::upload::GetFile::CONSTRUCTOR_ID => get_file(&c),
        f::account::UpdateStatus::CONSTRUCTOR_ID | f::messages::SetTyping::CONSTRUCTOR_ID => {
            c.user()?;
            Ok(true.to_bytes())
        }
        _ => Err(bad("INPUT_METHOD_INVALID")),
    }
}

// ---------- helpers ----------

fn input_peer(w: &World, me: UserId, p: &tl::enums::InputPeer) -> Result<Peer, RpcError> {
    use tl::enums::InputPeer as I;
    match p {
        I::PeerSelf => Ok(Peer::User(me)),
        I::User(u) => {
            let user = w
                .users
                .get(&UserId(u.user_id))
                .ok_or_else(|| bad("PEER_ID_INVALID"))?;
            if user.access_hash != u.access_hash && user.id != me {
                return Err(bad("PEER_ID_INVALID"));
            }
            Ok(Peer::User(user.id))
        }
        I::Chat(c) => {
            if !w.chats.contains_key(&ChatId(c.chat_id)) {
                return Err(bad("PEER_ID_INVALID"));
            }
            Ok(Peer::Chat(ChatId(c.chat_id)))
        }
        I::Channel(c) => {
            channel_checked(w, c.channel_id, c.access_hash)?;
            Ok(Peer::Channel(ChannelId(c.channel_id)))
        }
        I::UserFromMessage(u) => Ok(Peer::User(UserId(u.user_id))),
        I::ChannelFromMessage(c) => Ok(Peer::Channel(ChannelId(c.channel_id))),
        I::Empty => Err(bad("PEER_ID_INVALID")),
    }
}

fn channel_checked(w: &World, id: i64, hash: i64) -> Result<ChannelId, RpcError> {
    let ch = w
        .channels
        .get(&ChannelId(id))
        .ok_or_else(|| bad("CHANNEL_INVALID"))?;
    if ch.access_hash != hash {
        return Err(bad("CHANNEL_INVALID"));
    }
    Ok(ch.id)
}

fn input_channel(w: &World, c: &tl::enums::InputChannel) -> Result<ChannelId, RpcError> {
    match c {
        tl::enums::InputChannel::Channel(c) => channel_checked(w, c.channel_id, c.access_hash),
        tl::enums::InputChannel::FromMessage(c) => Ok(ChannelId(c.channel_id)),
        tl::enums::InputChannel::Empty => Err(bad("CHANNEL_INVALID")),
    }
}

fn input_user(w: &World, me: UserId, u: &tl::enums::InputUser) -> Result<UserId, RpcError> {
    match u {
        tl::enums::InputUser::UserSelf => Ok(me),
        tl::enums::InputUser::User(u) => {
            let user = w
                .users
                .get(&UserId(u.user_id))
                .ok_or_else(|| bad("USER_ID_INVALID"))?;
            if user.access_hash != u.access_hash && user.id != me {
                return Err(bad("USER_ID_INVALID"));
            }
            Ok(user.id)
        }
        tl::enums::InputUser::FromMessage(u) => Ok(UserId(u.user_id)),
        tl::enums::InputUser::Empty => Err(bad("USER_ID_INVALID")),
    }
}

fn authorization(w: &World, me: UserId) -> Result<tl::enums::auth::Authorization, RpcError> {
    let u = w.users.get(&me).ok_or_else(unauthorized)?;
    Ok(tl::types::auth::Authorization {
        setup_password_required: false,
        otherwise_relogin_days: None,
        tmp_sessions: None,
        future_auth_token: None,
        user: tl_build::user(u, me),
    }
    .into())
}

fn affected(pts: i32, pts_count: i32) -> Vec<u8> {
    tl::enums::messages::AffectedMessages::Messages(tl::types::messages::AffectedMessages {
        pts,
        pts_count,
    })
    .to_bytes()
}

// ---------- auth ----------

fn sent_code(hash: String, kind: CodeKind) -> Vec<u8> {
    let ty: tl::enums::auth::SentCodeType = match kind {
        CodeKind::App => tl::types::auth::SentCodeTypeApp { length: 5 }.into(),
        CodeKind::Sms => tl::types::auth::SentCodeTypeSms { length: 5 }.into(),
        CodeKind::Call => tl::types::auth::SentCodeTypeCall { length: 5 }.into(),
    };
    let next = match kind {
        CodeKind::App => Some(tl::enums::auth::CodeType::Sms),
        CodeKind::Sms => Some(tl::enums::auth::CodeType::Call),
        CodeKind::Call => None,
    };
    tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
        r#type: ty,
        phone_code_hash: hash,
        next_type: next,
        timeout: Some(60),
    })
    .to_bytes()
}

fn deliver_code(shared: &Shared, phone: &str, kind: CodeKind, code: &str) {
    if kind != CodeKind::App {
        return;
    }
    let mut w = shared.world.lock();
    if let Some(u) = w.user_by_phone(phone) {
        let text = format!(
            "Login code: {code}. Do not give this code to anyone, even if they say they are from Telegram!\n\nThis code can be used to log in to your Telegram account. We never ask it for anything else."
        );
        if let Ok(effects) = w.service_message(u, &text) {
            shared.dispatch(&w, effects);
        }
    }
}

fn send_code(c: &Call) -> R {
    let r: tl::functions::auth::SendCode = parse(c.body)?;
    if r.api_id <= 0 || r.api_hash.is_empty() {
        return Err(bad("API_ID_INVALID"));
    }
    let pending = c
        .shared
        .world
        .lock()
        .send_code(&r.phone_number, CodeKind::App)?;
    deliver_code(c.shared, &r.phone_number, CodeKind::App, &pending.code);
    Ok(sent_code(pending.hash, CodeKind::App))
}

fn digits(p: &str) -> String {
    p.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn resend_code(c: &Call) -> R {
    let r: tl::functions::auth::ResendCode = parse(c.body)?;
    let phone = digits(&r.phone_number);
    let mut w = c.shared.world.lock();
    let pending = w
        .codes
        .get_mut(&phone)
        .ok_or_else(|| bad("PHONE_CODE_EXPIRED"))?;
    if r.phone_code_hash.is_empty() {
        return Err(bad("PHONE_CODE_HASH_EMPTY"));
    }
    if pending.hash != r.phone_code_hash {
        return Err(bad("PHONE_CODE_EXPIRED"));
    }
    pending.kind = match pending.kind {
        CodeKind::App => CodeKind::Sms,
        CodeKind::Sms => CodeKind::Call,
        CodeKind::Call => return Err(bad("SEND_CODE_UNAVAILABLE")),
    };
    let kind = pending.kind;
    let hash = pending.hash.clone();
    let code = pending.code.clone();
    let text = match kind {
        CodeKind::Call => format!("Incoming call from Telegram: your code is {code}"),
        _ => format!("Telegram code {code}"),
    };
    w.phone_notices
        .entry(phone)
        .or_default()
        .push(world::PhoneNotice {
            date: world::now(),
            via: kind,
            text,
        });
    Ok(sent_code(hash, kind))
}

fn sign_in(c: &Call) -> R {
    let r: tl::functions::auth::SignIn = parse(c.body)?;
    let phone = digits(&r.phone_number);
    let mut w = c.shared.world.lock();
    if r.phone_code_hash.is_empty() {
        return Err(bad("PHONE_CODE_HASH_EMPTY"));
    }
    let pending = w
        .codes
        .get(&phone)
        .ok_or_else(|| bad("PHONE_CODE_EXPIRED"))?;
    if pending.hash != r.phone_code_hash {
        return Err(bad("PHONE_CODE_EXPIRED"));
    }
    let code = r.phone_code.ok_or_else(|| bad("PHONE_CODE_EMPTY"))?;
    if code.is_empty() {
        return Err(bad("PHONE_CODE_EMPTY"));
    }
    if pending.code != code {
        return Err(bad("PHONE_CODE_INVALID"));
    }
    w.codes.remove(&phone);
    let Some(user) = w.user_by_phone(&phone) else {
        return Ok(tl::enums::auth::Authorization::SignUpRequired(
            tl::types::auth::AuthorizationSignUpRequired {
                terms_of_service: None,
            },
        )
        .to_bytes());
    };
    finish_login(&mut w, c.key_id, user)
}

/// Binds the key, or asks for the 2FA password first.
fn finish_login(w: &mut World, key_id: u64, user: UserId) -> R {
    let has_password = w.users.get(&user).is_some_and(|u| u.password.is_some());
    if has_password {
        if let Some(k) = w.keys.get_mut(&key_id) {
            k.awaiting_password = Some(user);
            k.user = None;
        }
        return Err(RpcError::new(401, "SESSION_PASSWORD_NEEDED"));
    }
    w.bind_key(key_id, user);
    Ok(authorization(w, user)?.to_bytes())
}

fn log_out(c: &Call) -> R {
    c.user()?;
    let mut w = c.shared.world.lock();
    if let Some(k) = w.keys.get_mut(&c.key_id) {
        k.user = None;
        k.awaiting_password = None;
        k.logged_out = true;
    }
    Ok(tl::enums::auth::LoggedOut::Out(tl::types::auth::LoggedOut {
        future_auth_token: None,
    })
    .to_bytes())
}

fn kdf_algo(salt1: Vec<u8>, salt2: Vec<u8>) -> tl::enums::PasswordKdfAlgo {
    tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(
        tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
            salt1,
            salt2,
            g: crate::crypto::SRP_G,
            p: crate::crypto::srp_p(),
        },
    )
}

fn get_password(c: &Call) -> R {
    let mut w = c.shared.world.lock();
    let k = w.keys.get(&c.key_id).ok_or_else(unauthorized)?;
    let user = k.user.or(k.awaiting_password).ok_or_else(unauthorized)?;
    let u = w.users.get(&user).ok_or_else(unauthorized)?;
    let mut secure_random = vec![0u8; 256];
    rand::Rng::fill(&mut rand::thread_rng(), secure_random.as_mut_slice());
    let new_salt1: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    let new_salt2: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
    let mut pw = tl::types::account::Password {
        has_recovery: false,
        has_secure_values: false,
        has_password: false,
        current_algo: None,
        srp_b: None,
        srp_id: None,
        hint: None,
        email_unconfirmed_pattern: None,
        new_algo: kdf_algo(new_salt1, new_salt2),
        new_secure_algo: tl::types::SecurePasswordKdfAlgoPbkdf2Hmacsha512iter100000 {
            salt: (0..8).map(|_| rand::random::<u8>()).collect(),
        }
        .into(),
        secure_random,
        pending_reset_date: None,
        login_email_pattern: None,
    };
    if let Some(p) = &u.password {
        let ch = crate::crypto::srp_challenge(&p.verifier);
        let srp_id: i64 = rand::random();
        pw.has_password = true;
        pw.current_algo = Some(kdf_algo(p.verifier.salt1.clone(), p.verifier.salt2.clone()));
        pw.srp_b = Some(ch.big_b.clone());
        pw.srp_id = Some(srp_id);
        pw.hint = p.hint.clone();
        w.srp.insert(srp_id, (user, ch));
    }
    Ok(tl::enums::account::Password::Password(pw).to_bytes())
}

fn check_password(c: &Call) -> R {
    let r: tl::functions::auth::CheckPassword = parse(c.body)?;
    let tl::enums::InputCheckPasswordSrp::Srp(srp) = r.password else {
        return Err(bad("PASSWORD_HASH_INVALID"));
    };
    let mut w = c.shared.world.lock();
    let (user, ch) = w
        .srp
        .get(&srp.srp_id)
        .cloned()
        .ok_or_else(|| bad("SRP_ID_INVALID"))?;
    let k = w.keys.get(&c.key_id).ok_or_else(unauthorized)?;
    if k.awaiting_password != Some(user) && k.user != Some(user) {
        return Err(bad("SRP_ID_INVALID"));
    }
    let verifier = w
        .users
        .get(&user)
        .and_then(|u| u.password.as_ref())
        .map(|p| p.verifier.clone())
        .ok_or_else(|| bad("PASSWORD_HASH_INVALID"))?;
    if !crate::crypto::srp_check(&verifier, &ch, &srp.a, &srp.m1) {
        return Err(bad("PASSWORD_HASH_INVALID"));
    }
    w.srp.remove(&srp.srp_id);
    w.bind_key(c.key_id, user);
    Ok(authorization(&w, user)?.to_bytes())
}

fn export_login_token(c: &Call, import: Option<Vec<u8>>) -> R {
    let mut w = c.shared.world.lock();
    let now = world::now();
    w.qr_tokens.retain(|t| t.expires + 300 > now);
    let approved = w
        .qr_tokens
        .iter()
        .find(|t| {
            t.approved_by.is_some()
                && match &import {
                    Some(tok) => &t.token == tok,
                    None => t.key_id == c.key_id,
                }
        })
        .cloned();
    if let Some(t) = approved {
        w.qr_tokens.retain(|x| x.token != t.token);
        let user = t.approved_by.ok_or_else(|| bad("AUTH_TOKEN_INVALID"))?;
        let auth = finish_login(&mut w, c.key_id, user)?;
        let auth = tl::enums::auth::Authorization::from_bytes(&auth)
            .map_err(|_| RpcError::new(500, "INTERNAL"))?;
        return Ok(
            tl::enums::auth::LoginToken::Success(tl::types::auth::LoginTokenSuccess {
                authorization: auth,
            })
            .to_bytes(),
        );
    }
    if import.is_some() {
        return Err(bad("AUTH_TOKEN_INVALID"));
    }
    let token: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    let ttl = c
        .shared
        .qr_token_ttl
        .load(std::sync::atomic::Ordering::Relaxed);
    let expires = now + i32::try_from(ttl).unwrap_or(i32::MAX);
    w.qr_tokens.push(world::QrToken {
        token: token.clone(),
        key_id: c.key_id,
        expires,
        approved_by: None,
    });
    Ok(
        tl::enums::auth::LoginToken::Token(tl::types::auth::LoginToken { expires, token })
            .to_bytes(),
    )
}

/// Approves a QR token as `user` (shared by `auth.acceptLoginToken` and the control API).
pub(crate) fn approve_token(shared: &Shared, user: UserId, token: &[u8]) -> Result<(), RpcError> {
    let mut w = shared.world.lock();
    let now = world::now();
    let t = w
        .qr_tokens
        .iter_mut()
        .find(|t| t.token == token)
        .ok_or_else(|| bad("AUTH_TOKEN_INVALID"))?;
    if t.expires < now {
        return Err(bad("AUTH_TOKEN_EXPIRED"));
    }
    if t.approved_by.is_some() {
        return Err(bad("AUTH_TOKEN_ALREADY_ACCEPTED"));
    }
    t.approved_by = Some(user);
    let key_id = t.key_id;
    shared.dispatch(&w, vec![Effect::LoginToken { key_id }]);
    Ok(())
}

fn accept_login_token(c: &Call) -> R {
    let r: tl::functions::auth::AcceptLoginToken = parse(c.body)?;
    let me = c.user()?;
    approve_token(c.shared, me, &r.token)?;
    let now = world::now();
    Ok(
        tl::enums::Authorization::Authorization(tl::types::Authorization {
            current: false,
            official_app: false,
            password_pending: false,
            encrypted_requests_disabled: false,
            call_requests_disabled: false,
            unconfirmed: false,
            hash: rand::random(),
            device_model: c.device.clone(),
            platform: "tgsim".into(),
            system_version: String::new(),
            api_id: c.api_id,
            app_name: "tgsim".into(),
            app_version: String::new(),
            date_created: now,
            date_active: now,
            ip: "127.0.0.1".into(),
            country: "Local".into(),
            region: String::new(),
        })
        .to_bytes(),
    )
}

// ---------- updates ----------

fn get_difference(c: &Call) -> R {
    let r: tl::functions::updates::GetDifference = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let u = w.users.get(&me).ok_or_else(unauthorized)?;
    if r.pts > u.mbox.pts {
        return Ok(tl::enums::updates::Difference::TooLong(
            tl::types::updates::DifferenceTooLong { pts: u.mbox.pts },
        )
        .to_bytes());
    }
    const LIMIT: usize = 500;
    let events: Vec<_> = u.mbox.events_after(r.pts).cloned().collect();
    // Channels with activity since the client's state date: tell it to fetch their difference.
    let busy_channels: Vec<ChannelId> = u
        .channels
        .iter()
        .filter(|cid| {
            w.channels
                .get(cid)
                .and_then(|ch| ch.mbox.log.last())
                .is_some_and(|e| e.date >= r.date)
        })
        .copied()
        .collect();
    if events.is_empty() && busy_channels.is_empty() {
        return Ok(
            tl::enums::updates::Difference::Empty(tl::types::updates::DifferenceEmpty {
                date: world::now(),
                seq: 0,
            })
            .to_bytes(),
        );
    }
    let slice = events.len() > LIMIT;
    let events = &events[..events.len().min(LIMIT)];
    let mut refs = Refs::default();
    refs.user(me);
    let mut new_messages = Vec::new();
    let mut other = Vec::new();
    for e in events {
        if let Event::NewMessage(id) = e.event {
            if let Some(m) = u.mbox.messages.get(&id) {
                refs.message(m);
                new_messages.push(tl_build::message(&w, m));
            }
        } else if let Some(up) = tl_build::user_update(&w, me, e, &mut refs) {
            other.push(up);
        }
    }
    for cid in &busy_channels {
        refs.peer(Peer::Channel(*cid));
        other.push(
            tl::types::UpdateChannelTooLong {
                channel_id: cid.0,
                pts: None,
            }
            .into(),
        );
    }
    let tl::enums::updates::State::State(mut state) = tl_build::state(&w, me);
    if let Some(last) = events.last() {
        state.pts = last.pts;
    }
    let users = refs.users(&w, me);
    let chats = refs.chats(&w, me);
    let d = if slice {
        tl::enums::updates::Difference::Slice(tl::types::updates::DifferenceSlice {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates: other,
            chats,
            users,
            intermediate_state: state.into(),
        })
    } else {
        tl::enums::updates::Difference::Difference(tl::types::updates::Difference {
            new_messages,
            new_encrypted_messages: vec![],
            other_updates: other,
            chats,
            users,
            state: state.into(),
        })
    };
    Ok(d.to_bytes())
}

/// Seconds after which clients should ask for a channel's difference again.
const DIFFERENCE_TIMEOUT: i32 = 30;

/// `channelDifferenceTooLong`: the pts is older than the channel's update log; the client gets
/// the channel's current pts in `dialog` and the latest `limit` messages, and must refetch the
/// rest with `messages.getHistory`.
fn channel_difference_too_long(
    w: &World,
    me: UserId,
    ch: &world::Channel,
    limit: usize,
) -> Vec<u8> {
    let mut refs = Refs::default();
    refs.user(me);
    refs.peer(Peer::Channel(ch.id));
    let messages: Vec<tl::enums::Message> = ch
        .mbox
        .messages
        .values()
        .rev()
        .take(limit)
        .map(|m| {
            refs.message(m);
            tl_build::message(w, m)
        })
        .collect();
    let read = ch.read_inbox.get(&me).copied().unwrap_or(0);
    let unread = ch.mbox.messages.keys().filter(|id| **id > read).count() as i32;
    let top = ch.mbox.messages.keys().next_back().copied().unwrap_or(0);
    tl::enums::updates::ChannelDifference::TooLong(tl::types::updates::ChannelDifferenceTooLong {
        r#final: true,
        timeout: Some(DIFFERENCE_TIMEOUT),
        dialog: tl_build::dialog(
            Peer::Channel(ch.id),
            top,
            read,
            ch.mbox.last_id,
            unread,
            Some(ch.mbox.pts),
        ),
        messages,
        chats: refs.chats(w, me),
        users: refs.users(w, me),
    })
    .to_bytes()
}

fn get_channel_difference(c: &Call) -> R {
    let r: tl::functions::updates::GetChannelDifference = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    let ch = w.readable_channel(me, cid)?;
    if r.pts >= ch.mbox.pts {
        return Ok(tl::enums::updates::ChannelDifference::Empty(
            tl::types::updates::ChannelDifferenceEmpty {
                r#final: true,
                pts: ch.mbox.pts,
                timeout: Some(DIFFERENCE_TIMEOUT),
            },
        )
        .to_bytes());
    }
    // Telegram: "max 100000 for bots, max 100 for users".
    let is_bot = w.users.get(&me).is_some_and(|u| u.bot.is_some());
    let max = if is_bot { 100_000 } else { 100 };
    let limit = r.limit.clamp(1, max) as usize;
    if ch.mbox.pts - r.pts > ch.difference_window {
        return Ok(channel_difference_too_long(&w, me, ch, limit));
    }
    let events: Vec<_> = ch.mbox.events_after(r.pts).cloned().collect();
    let fin = events.len() <= limit;
    let events = &events[..events.len().min(limit)];
    let mut refs = Refs::default();
    refs.user(me);
    refs.peer(Peer::Channel(cid));
    let mut new_messages = Vec::new();
    let mut other = Vec::new();
    for e in events {
        if let Event::NewMessage(id) = e.event {
            if let Some(m) = ch.mbox.messages.get(&id) {
                refs.message(m);
                new_messages.push(tl_build::message(&w, m));
            }
        } else if let Some(up) = tl_build::channel_update(&w, cid, e, &mut refs) {
            other.push(up);
        }
    }
    let pts = events.last().map(|e| e.pts).unwrap_or(ch.mbox.pts);
    Ok(
        tl::enums::updates::ChannelDifference::Difference(tl::types::updates::ChannelDifference {
            r#final: fin,
            pts,
            timeout: Some(DIFFERENCE_TIMEOUT),
            new_messages,
            other_updates: other,
            chats: refs.chats(&w, me),
            users: refs.users(&w, me),
        })
        .to_bytes(),
    )
}

// ---------- users, contacts ----------

fn get_users(c: &Call) -> R {
    let r: tl::functions::users::GetUsers = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let users: Vec<tl::enums::User> =
        r.id.iter()
            .filter_map(|i| input_user(&w, me, i).ok())
            .filter_map(|id| w.users.get(&id))
            .map(|u| tl_build::user(u, me))
            .collect();
    Ok(users.to_bytes())
}

fn get_full_user(c: &Call) -> R {
    let r: tl::functions::users::GetFullUser = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let id = input_user(&w, me, &r.id)?;
    let u = w.users.get(&id).ok_or_else(|| bad("USER_ID_INVALID"))?;
    Ok(
        tl::enums::users::UserFull::Full(tl::types::users::UserFull {
            full_user: tl_build::user_full(u),
            chats: vec![],
            users: vec![tl_build::user(u, me)],
        })
        .to_bytes(),
    )
}

fn resolve_username(c: &Call) -> R {
    let r: tl::functions::contacts::ResolveUsername = parse(c.body)?;
    let me = c.user()?;
    let name = r.username.trim_start_matches('@');
    // Telegram usernames: 5–32 characters (a few collectible ones have 4) of a–z, 0–9 and `_`,
    // starting with a letter.
    if !(4..=32).contains(&name.len())
        || !name.starts_with(|ch: char| ch.is_ascii_alphabetic())
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        return Err(bad("USERNAME_INVALID"));
    }
    let w = c.shared.world.lock();
    let p = w
        .resolve_username(name)
        .ok_or_else(|| bad("USERNAME_NOT_OCCUPIED"))?;
    let mut refs = Refs::default();
    refs.peer(p);
    Ok(
        tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
            peer: tl_build::peer(p),
            chats: refs.chats(&w, me),
            users: refs.users(&w, me),
        })
        .to_bytes(),
    )
}

// ---------- messages ----------

struct DialogRow {
    peer: Peer,
    top: i32,
    date: i32,
    in_channel: bool,
}

fn get_dialogs(c: &Call) -> R {
    let r: tl::functions::messages::GetDialogs = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let u = w.users.get(&me).ok_or_else(unauthorized)?;
    let mut rows: Vec<DialogRow> = Vec::new();
    if r.folder_id.unwrap_or(0) == 0 {
        let mut tops: std::collections::HashMap<Peer, (i32, i32)> = Default::default();
        for m in u.mbox.messages.values() {
            let e = tops.entry(m.peer).or_insert((m.id, m.date));
            if m.id > e.0 {
                *e = (m.id, m.date);
            }
        }
        for (peer, (top, date)) in tops {
            if let Peer::Chat(cid) = peer
                && !w.chats.get(&cid).is_some_and(|ch| ch.members.contains(&me))
            {
                continue;
            }
            rows.push(DialogRow {
                peer,
                top,
                date,
                in_channel: false,
            });
        }
        for cid in &u.channels {
            if let Some(ch) = w.channels.get(cid)
                && let Some((id, m)) = ch.mbox.messages.iter().next_back()
            {
                rows.push(DialogRow {
                    peer: Peer::Channel(*cid),
                    top: *id,
                    date: m.date,
                    in_channel: true,
                });
            }
        }
    }
    // Newest first; dialogs whose top messages share a date and id (channels each number
    // their own messages) are ordered by peer, and `offset_peer` continues after the last one
    // a page ended with, as Telegram does — without it, every tie would fall off a page.
    rows.sort_by_key(|d| std::cmp::Reverse((d.date, d.top, d.peer.bot_api_id())));
    let total = rows.len();
    if r.offset_date != 0 || r.offset_id != 0 {
        let after = input_peer(&w, me, &r.offset_peer)
            .map(Peer::bot_api_id)
            .unwrap_or(i64::MIN);
        rows.retain(|d| {
            (d.date, d.top, d.peer.bot_api_id()) < (r.offset_date, r.offset_id, after)
                || r.offset_date == 0 && d.top < r.offset_id
        });
    }
    let limit = r.limit.clamp(1, 100) as usize;
    let full = total <= limit && r.offset_date == 0 && r.offset_id == 0;
    rows.truncate(limit);
    let mut refs = Refs::default();
    refs.user(me);
    let mut dialogs = Vec::new();
    let mut messages = Vec::new();
    for d in &rows {
        refs.peer(d.peer);
        let m = if d.in_channel {
            let Peer::Channel(cid) = d.peer else { continue };
            let Some(ch) = w.channels.get(&cid) else {
                continue;
            };
            let read = ch.read_inbox.get(&me).copied().unwrap_or(0);
            let unread = ch.mbox.messages.keys().filter(|id| **id > read).count() as i32;
            dialogs.push(tl_build::dialog(
                d.peer,
                d.top,
                read,
                ch.mbox.last_id,
                unread,
                Some(ch.mbox.pts),
            ));
            ch.mbox.messages.get(&d.top)
        } else {
            let read = u.read_inbox.get(&d.peer).copied().unwrap_or(0);
            let read_out = u.read_outbox.get(&d.peer).copied().unwrap_or(0);
            let unread = u
                .mbox
                .messages
                .values()
                .filter(|m| m.peer == d.peer && !m.out && !m.read)
                .count() as i32;
            dialogs.push(tl_build::dialog(
                d.peer, d.top, read, read_out, unread, None,
            ));
            u.mbox.messages.get(&d.top)
        };
        if let Some(m) = m {
            refs.message(m);
            messages.push(tl_build::message(&w, m));
        }
    }
    let chats = refs.chats(&w, me);
    let users = refs.users(&w, me);
    let out = if full {
        tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs {
            dialogs,
            messages,
            chats,
            users,
        })
    } else {
        tl::enums::messages::Dialogs::Slice(tl::types::messages::DialogsSlice {
            count: total as i32,
            dialogs,
            messages,
            chats,
            users,
        })
    };
    Ok(out.to_bytes())
}

fn messages_answer(
    w: &World,
    me: UserId,
    list: Vec<&world::Message>,
    count: usize,
    channel_pts: Option<i32>,
) -> Vec<u8> {
    let mut refs = Refs::default();
    refs.user(me);
    let msgs: Vec<tl::enums::Message> = list
        .iter()
        .map(|m| {
            refs.message(m);
            tl_build::message(w, m)
        })
        .collect();
    let chats = refs.chats(w, me);
    let users = refs.users(w, me);
    let out = match channel_pts {
        Some(pts) => {
            tl::enums::messages::Messages::ChannelMessages(tl::types::messages::ChannelMessages {
                inexact: false,
                pts,
                count: count as i32,
                offset_id_offset: None,
                messages: msgs,
                topics: vec![],
                chats,
                users,
            })
        }
        None if count > list.len() => {
            tl::enums::messages::Messages::Slice(tl::types::messages::MessagesSlice {
                inexact: false,
                count: count as i32,
                next_rate: None,
                offset_id_offset: None,
                search_flood: None,
                messages: msgs,
                topics: vec![],
                chats,
                users,
            })
        }
        None => tl::enums::messages::Messages::Messages(tl::types::messages::Messages {
            messages: msgs,
            topics: vec![],
            chats,
            users,
        }),
    };
    out.to_bytes()
}

fn get_history(c: &Call) -> R {
    let r: tl::functions::messages::GetHistory = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    let (all, pts): (Vec<&world::Message>, Option<i32>) = match peer {
        Peer::Channel(cid) => {
            let ch = w.readable_channel(me, cid)?;
            (ch.mbox.messages.values().rev().collect(), Some(ch.mbox.pts))
        }
        _ => {
            let u = w.users.get(&me).ok_or_else(unauthorized)?;
            (
                u.mbox
                    .messages
                    .values()
                    .rev()
                    .filter(|m| m.peer == peer)
                    .collect(),
                None,
            )
        }
    };
    // Telegram: newest first; `max_id`/`min_id` bound the ids (exclusive) before paging;
    // `offset_id` starts below that id (or `offset_date` before that date), `add_offset`
    // shifts the start (negative values reach newer messages), at most 100 per page; `count`
    // is the size of the whole history.
    let count = all.len();
    let all: Vec<&world::Message> = all
        .into_iter()
        .filter(|m| (r.max_id <= 0 || m.id < r.max_id) && (r.min_id <= 0 || m.id > r.min_id))
        .collect();
    let mut start = if r.offset_id > 0 {
        all.iter()
            .position(|m| m.id < r.offset_id)
            .unwrap_or(all.len())
    } else if r.offset_date > 0 {
        all.iter()
            .position(|m| m.date < r.offset_date)
            .unwrap_or(all.len())
    } else {
        0
    } as i64;
    start += i64::from(r.add_offset);
    let start = start.clamp(0, all.len() as i64) as usize;
    let limit = r.limit.clamp(0, 100) as usize;
    let limit = if limit == 0 { 20 } else { limit };
    let list: Vec<&world::Message> = all[start..].iter().take(limit).copied().collect();
    Ok(messages_answer(&w, me, list, count, pts))
}

fn message_ids(ids: &[tl::enums::InputMessage]) -> Vec<i32> {
    ids.iter()
        .filter_map(|i| match i {
            tl::enums::InputMessage::Id(x) => Some(x.id),
            _ => None,
        })
        .collect()
}

fn get_messages(c: &Call) -> R {
    let r: tl::functions::messages::GetMessages = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let u = w.users.get(&me).ok_or_else(unauthorized)?;
    let list: Vec<&world::Message> = message_ids(&r.id)
        .iter()
        .filter_map(|id| u.mbox.messages.get(id))
        .collect();
    let n = list.len();
    Ok(messages_answer(&w, me, list, n, None))
}

fn channel_get_messages(c: &Call) -> R {
    let r: tl::functions::channels::GetMessages = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    let ch = w.readable_channel(me, cid)?;
    let list: Vec<&world::Message> = message_ids(&r.id)
        .iter()
        .filter_map(|id| ch.mbox.messages.get(id))
        .collect();
    let n = list.len();
    Ok(messages_answer(&w, me, list, n, Some(ch.mbox.pts)))
}

fn reply_id(r: Option<&tl::enums::InputReplyTo>) -> Option<i32> {
    match r {
        Some(tl::enums::InputReplyTo::Message(m)) => Some(m.reply_to_msg_id),
        _ => None,
    }
}

fn pts_of_new(w: &World, bx: BoxRef, id: i32) -> Option<(i32, i32)> {
    let log = match bx {
        BoxRef::User(u) => &w.users.get(&u)?.mbox.log,
        BoxRef::Channel(c) => &w.channels.get(&c)?.mbox.log,
    };
    log.iter()
        .rev()
        .find(|e| matches!(e.event, Event::NewMessage(i) if i == id))
        .map(|e| (e.pts, e.date))
}

fn send_message(c: &Call) -> R {
    let r: tl::functions::messages::SendMessage = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    let msg = NewMessage {
        text: r.message,
        entities: tl_build::entities_from_tl(r.entities.as_ref()),
        reply_to: reply_id(r.reply_to.as_ref()),
        flags: SendFlags {
            silent: r.silent,
            no_webpage: r.no_webpage,
        },
        ..Default::default()
    };
    let (bx, id, effects) = w.send_message(me, peer, msg, Some(r.random_id), Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    match bx {
        BoxRef::User(_) => {
            let (pts, date) =
                pts_of_new(&w, bx, id).ok_or_else(|| RpcError::new(500, "INTERNAL"))?;
            let entities = w
                .users
                .get(&me)
                .and_then(|u| u.mbox.messages.get(&id))
                .and_then(|m| tl_build::entities(&m.entities));
            Ok(
                tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
                    out: true,
                    id,
                    pts,
                    pts_count: 1,
                    date,
                    media: None,
                    entities,
                    ttl_period: None,
                })
                .to_bytes(),
            )
        }
        BoxRef::Channel(_) => tl_build::sent_updates(&w, me, bx, id, r.random_id)
            .map(|u| u.to_bytes())
            .ok_or_else(|| RpcError::new(500, "INTERNAL")),
    }
}

fn uploaded(
    w: &mut World,
    key_id: u64,
    file: &tl::enums::InputFile,
) -> Result<(Vec<u8>, String), RpcError> {
    let (id, parts, name) = match file {
        tl::enums::InputFile::File(f) => (f.id, f.parts, f.name.clone()),
        tl::enums::InputFile::Big(f) => (f.id, f.parts, f.name.clone()),
        tl::enums::InputFile::StoryDocument(_) => return Err(bad("MEDIA_INVALID")),
    };
    let stored = w
        .uploads
        .remove(&(key_id, id))
        .ok_or_else(|| bad("FILE_PARTS_INVALID"))?;
    if stored.len() as i32 != parts || stored.keys().copied().ne(0..parts) {
        return Err(bad("FILE_PARTS_INVALID"));
    }
    Ok((stored.into_values().flatten().collect(), name))
}

fn guess_mime(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit('.').next().unwrap_or("") {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "ogg" | "oga" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn input_media(w: &mut World, key_id: u64, m: &tl::enums::InputMedia) -> Result<Media, RpcError> {
    use tl::enums::InputMedia as I;
    match m {
        I::UploadedPhoto(p) => {
            let (bytes, name) = uploaded(w, key_id, &p.file)?;
            let id = w.store_file(bytes, "image/jpeg", Some(&name), Some((800, 600)), None);
            Ok(Media {
                kind: MediaKind::Photo,
                file_id: id,
            })
        }
        I::UploadedDocument(d) => {
            let (bytes, name) = uploaded(w, key_id, &d.file)?;
            let mut kind = MediaKind::Document;
            let mut file_name = Some(name);
            let mut duration = None;
            let mut dims = None;
            for a in &d.attributes {
                match a {
                    tl::enums::DocumentAttribute::Filename(f) => {
                        file_name = Some(f.file_name.clone())
                    }
                    tl::enums::DocumentAttribute::Video(v) => {
                        kind = MediaKind::Video;
                        duration = Some(v.duration as i32);
                        dims = Some((v.w, v.h));
                    }
                    tl::enums::DocumentAttribute::Audio(a) => {
                        kind = if a.voice {
                            MediaKind::Voice
                        } else {
                            MediaKind::Audio
                        };
                        duration = Some(a.duration);
                    }
                    _ => {}
                }
            }
            let mime = if d.mime_type.is_empty() {
                guess_mime(file_name.as_deref().unwrap_or("")).to_string()
            } else {
                d.mime_type.clone()
            };
            let id = w.store_file(bytes, &mime, file_name.as_deref(), dims, duration);
            Ok(Media { kind, file_id: id })
        }
        I::Photo(p) => match &p.id {
            tl::enums::InputPhoto::Photo(ip) => {
                existing(w, ip.id, ip.access_hash, MediaKind::Photo)
            }
            tl::enums::InputPhoto::Empty => Err(bad("MEDIA_INVALID")),
        },
        I::Document(d) => match &d.id {
            tl::enums::InputDocument::Document(id) => {
                let mime = w
                    .files
                    .get(&id.id)
                    .map(|f| f.mime.clone())
                    .unwrap_or_default();
                let kind = if mime.starts_with("video/") {
                    MediaKind::Video
                } else if mime == "audio/ogg" {
                    MediaKind::Voice
                } else if mime.starts_with("audio/") {
                    MediaKind::Audio
                } else {
                    MediaKind::Document
                };
                existing(w, id.id, id.access_hash, kind)
            }
            tl::enums::InputDocument::Empty => Err(bad("MEDIA_INVALID")),
        },
        _ => Err(bad("MEDIA_INVALID")),
    }
}

fn existing(w: &World, id: i64, hash: i64, kind: MediaKind) -> Result<Media, RpcError> {
    let f = w.files.get(&id).ok_or_else(|| bad("MEDIA_INVALID"))?;
    if f.access_hash != hash {
        return Err(bad("FILE_REFERENCE_INVALID"));
    }
    Ok(Media { kind, file_id: id })
}

fn send_media(c: &Call) -> R {
    let r: tl::functions::messages::SendMedia = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    w.check_random_id(me, r.random_id)?;
    let media = Some(input_media(&mut w, c.key_id, &r.media)?);
    let msg = NewMessage {
        text: r.message,
        entities: tl_build::entities_from_tl(r.entities.as_ref()),
        reply_to: reply_id(r.reply_to.as_ref()),
        media,
        flags: SendFlags {
            silent: r.silent,
            no_webpage: false,
        },
        ..Default::default()
    };
    let (bx, id, effects) = w.send_message(me, peer, msg, Some(r.random_id), Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    tl_build::sent_updates(&w, me, bx, id, r.random_id)
        .map(|u| u.to_bytes())
        .ok_or_else(|| RpcError::new(500, "INTERNAL"))
}

fn forward_messages(c: &Call) -> R {
    let r: tl::functions::messages::ForwardMessages = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let from = input_peer(&w, me, &r.from_peer)?;
    let to = input_peer(&w, me, &r.to_peer)?;
    let (sent, effects) = w.forward_messages(me, from, &r.id, to, &r.random_id, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    tl_build::sent_updates_many(&w, me, &sent)
        .map(|u| u.to_bytes())
        .ok_or_else(|| RpcError::new(500, "INTERNAL"))
}

fn upload_media(c: &Call) -> R {
    let r: tl::functions::messages::UploadMedia = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    input_peer(&w, me, &r.peer)?;
    let media = input_media(&mut w, c.key_id, &r.media)?;
    tl_build::media(&w, &media)
        .map(|m| m.to_bytes())
        .ok_or_else(|| bad("MEDIA_INVALID"))
}

fn send_multi_media(c: &Call) -> R {
    let r: tl::functions::messages::SendMultiMedia = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    if r.multi_media.is_empty() || r.multi_media.len() > 10 {
        return Err(bad("MULTI_MEDIA_TOO_LONG"));
    }
    // Telegram checks the whole album before posting any of it: a repeated random_id (the
    // album was sent before) posts nothing, and the items must be media already uploaded
    // with `messages.uploadMedia` (an `inputMediaUploaded*` answers MEDIA_INVALID).
    let mut seen = std::collections::HashSet::new();
    for tl::enums::InputSingleMedia::Media(single) in &r.multi_media {
        w.check_random_id(me, single.random_id)?;
        if !seen.insert(single.random_id) {
            return Err(bad("RANDOM_ID_DUPLICATE"));
        }
        if !matches!(
            single.media,
            tl::enums::InputMedia::Photo(_) | tl::enums::InputMedia::Document(_)
        ) {
            return Err(bad("MEDIA_INVALID"));
        }
    }
    if let Peer::Channel(cid) = peer {
        w.channel(cid)?.check_post(me)?;
    }
    let grouped_id: i64 = rand::random::<i64>().abs().max(1);
    let reply_to = reply_id(r.reply_to.as_ref());
    let mut sent = Vec::new();
    let mut effects = Vec::new();
    for tl::enums::InputSingleMedia::Media(single) in &r.multi_media {
        let media = input_media(&mut w, c.key_id, &single.media)?;
        let msg = NewMessage {
            text: single.message.clone(),
            entities: tl_build::entities_from_tl(single.entities.as_ref()),
            reply_to,
            media: Some(media),
            grouped_id: Some(grouped_id),
            flags: SendFlags {
                silent: r.silent,
                no_webpage: false,
            },
            ..Default::default()
        };
        let (bx, id, eff) =
            w.send_message(me, peer, msg, Some(single.random_id), Some(c.key_id))?;
        sent.push((bx, id, single.random_id));
        effects.extend(eff);
    }
    c.shared.dispatch(&w, effects);
    tl_build::sent_updates_many(&w, me, &sent)
        .map(|u| u.to_bytes())
        .ok_or_else(|| RpcError::new(500, "INTERNAL"))
}

fn edit_message(c: &Call) -> R {
    let r: tl::functions::messages::EditMessage = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    let entities = r
        .entities
        .as_ref()
        .map(|e| tl_build::entities_from_tl(Some(e)));
    let (bx, id, effects) = w.edit_message(me, peer, r.id, r.message, entities, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    let mut refs = Refs::default();
    refs.user(me);
    let up = match bx {
        BoxRef::User(u) => {
            let ub = w.users.get(&u).ok_or_else(unauthorized)?;
            let ev = ub
                .mbox
                .log
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::EditMessage(i) if i == id))
                .cloned()
                .ok_or_else(|| RpcError::new(500, "INTERNAL"))?;
            tl_build::user_update(&w, u, &ev, &mut refs)
        }
        BoxRef::Channel(cid) => {
            let ch = w.channels.get(&cid).ok_or_else(|| bad("CHANNEL_INVALID"))?;
            let ev = ch
                .mbox
                .log
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::EditMessage(i) if i == id))
                .cloned()
                .ok_or_else(|| RpcError::new(500, "INTERNAL"))?;
            tl_build::channel_update(&w, cid, &ev, &mut refs)
        }
    }
    .ok_or_else(|| RpcError::new(500, "INTERNAL"))?;
    Ok(tl_build::updates(&w, me, vec![up], &refs).to_bytes())
}

/// `messages.updatePinnedMessage` in a channel or supergroup (`id` 0 with `unpin` is not
/// simulated: pins of private chats and basic groups answer `PEER_ID_INVALID`).
fn update_pinned_message(c: &Call) -> R {
    let r: tl::functions::messages::UpdatePinnedMessage = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let Peer::Channel(cid) = input_peer(&w, me, &r.peer)? else {
        return Err(bad("PEER_ID_INVALID"));
    };
    let (ev, effects) = w.pin_messages(cid, Some(me), &[r.id], !r.unpin, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    let mut refs = Refs::default();
    refs.user(me);
    let list = match ev {
        Some(ev) => tl_build::channel_update(&w, cid, &ev, &mut refs)
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    Ok(tl_build::updates(&w, me, list, &refs).to_bytes())
}

fn delete_messages(c: &Call) -> R {
    let r: tl::functions::messages::DeleteMessages = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let (ev, effects) = w.delete_messages(me, None, &r.id, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    let pts = w.users.get(&me).map(|u| u.mbox.pts).unwrap_or(0);
    Ok(match ev {
        Some(e) => affected(e.pts, e.pts_count),
        None => affected(pts, 0),
    })
}

fn channel_delete_messages(c: &Call) -> R {
    let r: tl::functions::channels::DeleteMessages = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    let (ev, effects) = w.delete_messages(me, Some(cid), &r.id, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    let pts = w.channels.get(&cid).map(|ch| ch.mbox.pts).unwrap_or(0);
    Ok(match ev {
        Some(e) => affected(e.pts, e.pts_count),
        None => affected(pts, 0),
    })
}

fn read_history(c: &Call) -> R {
    let r: tl::functions::messages::ReadHistory = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let peer = input_peer(&w, me, &r.peer)?;
    let (ev, effects) = w.read_history(me, peer, r.max_id, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    let pts = w.users.get(&me).map(|u| u.mbox.pts).unwrap_or(0);
    Ok(match ev {
        Some(e) => affected(e.pts, e.pts_count),
        None => affected(pts, 0),
    })
}

fn channel_read_history(c: &Call) -> R {
    let r: tl::functions::channels::ReadHistory = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    let (_, effects) = w.read_history(me, Peer::Channel(cid), r.max_id, Some(c.key_id))?;
    c.shared.dispatch(&w, effects);
    Ok(true.to_bytes())
}

fn channel_updates(w: &World, me: UserId, cid: ChannelId) -> tl::enums::Updates {
    let mut refs = Refs::default();
    refs.peer(Peer::Channel(cid));
    tl_build::updates(
        w,
        me,
        vec![tl::types::UpdateChannel { channel_id: cid.0 }.into()],
        &refs,
    )
}

fn joined(w: &World, me: UserId, cid: ChannelId) -> Vec<u8> {
    tl::enums::messages::ChatInviteJoinResult::Ok(tl::types::messages::ChatInviteJoinResultOk {
        updates: channel_updates(w, me, cid),
    })
    .to_bytes()
}

fn join_channel(c: &Call) -> R {
    let r: tl::functions::channels::JoinChannel = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    w.join_public_channel(me, cid)?;
    Ok(joined(&w, me, cid))
}

fn check_chat_invite(c: &Call) -> R {
    let r: tl::functions::messages::CheckChatInvite = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let invite: tl::enums::ChatInvite = match w.check_invite(me, &r.hash)? {
        crate::channels::InviteCheck::Already(cid) => {
            let ch = w.channels.get(&cid).ok_or_else(|| bad("CHANNEL_INVALID"))?;
            tl::types::ChatInviteAlready {
                chat: tl_build::channel(ch, me),
            }
            .into()
        }
        crate::channels::InviteCheck::Invite {
            channel,
            request_needed,
        } => {
            let ch = w
                .channels
                .get(&channel)
                .ok_or_else(|| bad("CHANNEL_INVALID"))?;
            tl::types::ChatInvite {
                channel: true,
                broadcast: ch.broadcast,
                public: ch.username.is_some(),
                megagroup: !ch.broadcast,
                request_needed,
                verified: false,
                scam: false,
                fake: false,
                can_refulfill_subscription: false,
                title: ch.title.clone(),
                about: (!ch.about.is_empty()).then(|| ch.about.clone()),
                photo: tl::types::PhotoEmpty { id: 0 }.into(),
                participants_count: ch.members.len() as i32,
                participants: None,
                color: 0,
                subscription_pricing: None,
                subscription_form_id: None,
                bot_verification: None,
            }
            .into()
        }
    };
    Ok(invite.to_bytes())
}

fn import_chat_invite(c: &Call) -> R {
    let r: tl::functions::messages::ImportChatInvite = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let cid = w.import_invite(me, &r.hash)?;
    Ok(joined(&w, me, cid))
}

fn leave_channel(c: &Call) -> R {
    let r: tl::functions::channels::LeaveChannel = parse(c.body)?;
    let me = c.user()?;
    let mut w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    w.leave_channel(me, cid)?;
    Ok(channel_updates(&w, me, cid).to_bytes())
}

fn get_full_channel(c: &Call) -> R {
    let r: tl::functions::channels::GetFullChannel = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let cid = input_channel(&w, &r.channel)?;
    let ch = w.readable_channel(me, cid)?;
    Ok(
        tl::enums::messages::ChatFull::Full(tl::types::messages::ChatFull {
            full_chat: tl_build::channel_full(ch, me),
            chats: vec![tl_build::channel(ch, me)],
            users: vec![],
        })
        .to_bytes(),
    )
}

fn get_channels(c: &Call) -> R {
    let r: tl::functions::channels::GetChannels = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let chats =
        r.id.iter()
            .filter_map(|ic| input_channel(&w, ic).ok())
            .filter_map(|cid| w.channels.get(&cid))
            .map(|ch| tl_build::channel(ch, me))
            .collect();
    Ok(tl::enums::messages::Chats::Chats(tl::types::messages::Chats { chats }).to_bytes())
}

fn get_full_chat(c: &Call) -> R {
    let r: tl::functions::messages::GetFullChat = parse(c.body)?;
    let me = c.user()?;
    let w = c.shared.world.lock();
    let chat = w
        .chats
        .get(&ChatId(r.chat_id))
        .ok_or_else(|| bad("CHAT_ID_INVALID"))?;
    let mut refs = Refs::default();
    refs.peer(Peer::Chat(chat.id));
    for m in &chat.members {
        refs.user(*m);
    }
    Ok(
        tl::enums::messages::ChatFull::Full(tl::types::messages::ChatFull {
            full_chat: tl_build::chat_full(chat),
            chats: refs.chats(&w, me),
            users: refs.users(&w, me),
        })
        .to_bytes(),
    )
}

// ---------- files ----------

fn save_part(c: &Call, file_id: i64, part: i32, bytes: Vec<u8>) -> R {
    if !(0..=7999).contains(&part) {
        return Err(bad("FILE_PART_INVALID"));
    }
    if bytes.len() > 512 * 1024 {
        return Err(bad("FILE_PART_TOO_BIG"));
    }
    c.shared
        .world
        .lock()
        .uploads
        .entry((c.key_id, file_id))
        .or_default()
        .insert(part, bytes);
    Ok(true.to_bytes())
}

fn get_file(c: &Call) -> R {
    let r: tl::functions::upload::GetFile = parse(c.body)?;
    c.user()?;
    let (id, hash) = match &r.location {
        tl::enums::InputFileLocation::InputDocumentFileLocation(l) => (l.id, l.access_hash),
        tl::enums::InputFileLocation::InputPhotoFileLocation(l) => (l.id, l.access_hash),
        _ => return Err(bad("LOCATION_INVALID")),
    };
    if r.limit <= 0 || r.limit > 1024 * 1024 {
        return Err(bad("LIMIT_INVALID"));
    }
    if !r.precise && (r.offset % 4096 != 0 || r.limit % 4096 != 0) {
        return Err(bad("OFFSET_INVALID"));
    }
    let w = c.shared.world.lock();
    let f = w.files.get(&id).ok_or_else(|| bad("FILE_ID_INVALID"))?;
    if f.access_hash != hash {
        return Err(bad("FILE_REFERENCE_EXPIRED"));
    }
    let start = (r.offset.max(0) as usize).min(f.bytes.len());
    let end = (start + r.limit as usize).min(f.bytes.len());
    let ty: tl::enums::storage::FileType = match f.mime.as_str() {
        "image/jpeg" => tl::enums::storage::FileType::FileJpeg,
        "image/png" => tl::enums::storage::FileType::FilePng,
        "application/pdf" => tl::enums::storage::FileType::FilePdf,
        "video/mp4" => tl::enums::storage::FileType::FileMp4,
        _ => tl::enums::storage::FileType::FilePartial,
    };
    Ok(tl::enums::upload::File::File(tl::types::upload::File {
        r#type: ty,
        mtime: f.date,
        bytes: f.bytes[start..end].to_vec(),
    })
    .to_bytes())
}
