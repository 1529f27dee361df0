//! Shared simulator state: the world, the MTProto connection registry, faults, counters and the
//! fan-out of world effects to MTProto sessions and Bot API queues.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::botapi::BotHub;
use crate::mtproto::Out;
use crate::tl_build;
use crate::world::{Effect, KeyEntry, UserId, World};

/// A connection in the registry.
pub(crate) struct ConnEntry {
    pub key_id: u64,
    pub tx: mpsc::UnboundedSender<Out>,
    pub drop: CancellationToken,
}

/// What a fault rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// `420 FLOOD_WAIT_<seconds>`.
    FloodWait {
        /// Seconds to wait.
        seconds: u32,
    },
    /// An arbitrary rpc error.
    RpcError {
        /// Error code (e.g. 400, 401, 500).
        code: i32,
        /// Error message (e.g. `PEER_FLOOD`).
        message: String,
    },
    /// The call is carried out, then its answer is lost: MTProto closes the connection instead
    /// of answering; the Bot API breaks the connection after the response headers.
    LoseAnswer,
}

/// A fault injected on MTProto calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Only calls by this account (None = any).
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Method name as in the TL schema, e.g. `messages.sendMessage` (None = any method).
    #[serde(default)]
    pub method: Option<String>,
    /// What to answer.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many calls it applies to.
    pub count: u32,
}

/// Per-account counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountCounters {
    /// MTProto connections opened with this account's keys.
    pub connections: u64,
    /// Currently open connections.
    pub open_connections: u64,
    /// RPC calls per method name.
    pub calls: BTreeMap<String, u64>,
}

/// Snapshot of all counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// All MTProto connections ever opened.
    pub connections_total: u64,
    /// Currently open MTProto connections.
    pub connections_open: u64,
    /// Per account id (as a string); keys never bound to an account appear as `key:<hex id>`.
    pub accounts: BTreeMap<String, AccountCounters>,
    /// Bot API calls per bot id and method.
    pub bot_api_calls: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Default)]
pub(crate) struct KeyCounters {
    pub connections: u64,
    pub open: u64,
    pub calls: BTreeMap<String, u64>,
}

/// Everything the listeners share.
/// Seconds a QR login token is valid, as on Telegram.
pub(crate) const DEFAULT_QR_TOKEN_TTL: u64 = 30;

pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub conns: Mutex<HashMap<u64, ConnEntry>>,
    pub next_conn: AtomicU64,
    pub faults: Mutex<Vec<FaultRule>>,
    pub limits: Mutex<crate::limits::Limiter>,
    pub latency: Mutex<HashMap<Option<UserId>, Duration>>,
    pub key_counters: Mutex<HashMap<u64, KeyCounters>>,
    pub bot_calls: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    pub connections_total: AtomicU64,
    /// Seconds an exported QR login token stays valid.
    pub qr_token_ttl: AtomicU64,
    pub bots: BotHub,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Shared {
            world: Mutex::new(World::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            faults: Mutex::new(Vec::new()),
            limits: Mutex::new(crate::limits::Limiter::default()),
            latency: Mutex::new(HashMap::new()),
            key_counters: Mutex::new(HashMap::new()),
            bot_calls: Mutex::new(BTreeMap::new()),
            connections_total: AtomicU64::new(0),
            qr_token_ttl: AtomicU64::new(DEFAULT_QR_TOKEN_TTL),
            bots: BotHub::default(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    pub fn key_bytes(&self, key_id: u64) -> Option<[u8; 256]> {
        self.world
            .lock()
            .keys
            .get(&key_id)
            .filter(|k| !k.logged_out)
            .map(|k| k.key)
    }

    pub fn add_key(&self, key: [u8; 256], user: Option<UserId>) -> u64 {
        let id = crate::crypto::auth_key_id(&key);
        self.world.lock().keys.insert(
            id,
            KeyEntry {
                key,
                user,
                last_user: user,
                awaiting_password: None,
                logged_out: false,
            },
        );
        id
    }

    pub fn register_connection(
        &self,
        key_id: u64,
        tx: mpsc::UnboundedSender<Out>,
        drop: CancellationToken,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        self.conns.lock().insert(id, ConnEntry { key_id, tx, drop });
        self.connections_total.fetch_add(1, Ordering::SeqCst);
        let mut kc = self.key_counters.lock();
        let c = kc.entry(key_id).or_default();
        c.connections += 1;
        c.open += 1;
        id
    }

    pub fn unregister_connection(&self, conn_id: u64) {
        // One lock at a time: `counters` holds `key_counters` while it reads `conns`, so holding
        // `conns` here while taking `key_counters` deadlocked both (issue 4's hanging tests).
        let removed = self.conns.lock().remove(&conn_id);
        if let Some(c) = removed
            && let Some(k) = self.key_counters.lock().get_mut(&c.key_id)
        {
            k.open = k.open.saturating_sub(1);
        }
    }

    pub fn count_call(&self, key_id: u64, method: &str) {
        *self
            .key_counters
            .lock()
            .entry(key_id)
            .or_default()
            .calls
            .entry(method.to_string())
            .or_default() += 1;
    }

    /// Takes the first matching fault rule, if any.
    pub fn take_fault(&self, user: Option<UserId>, method: &str) -> Option<FaultKind> {
        let mut faults = self.faults.lock();
        let idx = faults.iter().position(|f| {
            f.count > 0
                && (f.user_id.is_none() || f.user_id == user)
                && f.method.as_deref().is_none_or(|m| m == method)
        })?;
        let f = &mut faults[idx];
        f.count -= 1;
        let kind = f.kind.clone();
        if f.count == 0 {
            faults.remove(idx);
        }
        Some(kind)
    }

    pub fn latency_for(&self, user: Option<UserId>) -> Option<Duration> {
        let l = self.latency.lock();
        user.and_then(|u| l.get(&Some(u)).copied())
            .or_else(|| l.get(&None).copied())
    }

    /// Closes every MTProto connection of an account; returns how many.
    pub fn drop_connections(&self, user: UserId) -> usize {
        let keys: Vec<u64> = {
            let w = self.world.lock();
            w.keys
                .iter()
                .filter(|(_, k)| k.user == Some(user) || k.last_user == Some(user))
                .map(|(id, _)| *id)
                .collect()
        };
        let conns = self.conns.lock();
        let mut n = 0;
        for c in conns.values() {
            if keys.contains(&c.key_id) {
                c.drop.cancel();
                n += 1;
            }
        }
        n
    }

    fn push_to_key(&self, key_id: u64, body: &[u8]) {
        for c in self.conns.lock().values() {
            if c.key_id == key_id {
                let _ = c.tx.send(Out::Body {
                    body: body.to_vec(),
                    content: true,
                    response: false,
                });
            }
        }
    }

    fn user_keys(w: &World, user: UserId) -> Vec<u64> {
        w.keys
            .iter()
            .filter(|(_, k)| k.user == Some(user))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Delivers effects of a world change. Call with the world lock held.
    pub fn dispatch(&self, w: &World, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::User {
                    user,
                    event,
                    except_key,
                } => {
                    let keys: Vec<u64> = Self::user_keys(w, user)
                        .into_iter()
                        .filter(|k| Some(*k) != except_key)
                        .collect();
                    if keys.is_empty() {
                        continue;
                    }
                    if let Some(body) = tl_build::user_push(w, user, &event) {
                        for k in keys {
                            self.push_to_key(k, &body);
                        }
                    }
                }
                Effect::Channel {
                    channel,
                    event,
                    except_key,
                } => {
                    let Some(ch) = w.channels.get(&channel) else {
                        continue;
                    };
                    if !pushed(ch, &event) {
                        continue;
                    }
                    for m in &ch.members {
                        let keys: Vec<u64> = Self::user_keys(w, *m)
                            .into_iter()
                            .filter(|k| Some(*k) != except_key)
                            .collect();
                        if keys.is_empty() {
                            continue;
                        }
                        if let Some(body) = tl_build::channel_push(w, *m, channel, &event) {
                            for k in keys {
                                self.push_to_key(k, &body);
                            }
                        }
                    }
                }
                Effect::Bot {
                    bot,
                    kind,
                    peer_box,
                    msg_id,
                } => {
                    if let Some(json) = crate::botapi::message_json(w, peer_box, msg_id) {
                        self.bots.enqueue(bot, kind, json);
                    }
                }
                Effect::LoginToken { key_id } => {
                    let body = tl_build_login_token();
                    self.push_to_key(key_id, &body);
                }
            }
        }
    }

    /// Runs a world mutation and dispatches its effects.
    pub fn apply<T>(
        &self,
        f: impl FnOnce(&mut World) -> Result<(T, Vec<Effect>), crate::world::RpcError>,
    ) -> Result<T, crate::world::RpcError> {
        let mut w = self.world.lock();
        let (t, effects) = f(&mut w)?;
        self.dispatch(&w, effects);
        Ok(t)
    }

    /// A snapshot of the counters. Lock order: `world`, then `key_counters`; `conns` and
    /// `bot_calls` are read on their own (never take another lock while holding `conns`).
    pub fn counters(&self) -> Counters {
        let connections_open = self.conns.lock().len() as u64;
        let bot_api_calls = self.bot_calls.lock().clone();
        let w = self.world.lock();
        let kc = self.key_counters.lock();
        let mut accounts: BTreeMap<String, AccountCounters> = BTreeMap::new();
        for (key_id, c) in kc.iter() {
            let name = match w.keys.get(key_id).and_then(|k| k.user.or(k.last_user)) {
                Some(u) => u.0.to_string(),
                None => format!("key:{key_id:016x}"),
            };
            let a = accounts.entry(name).or_default();
            a.connections += c.connections;
            a.open_connections += c.open;
            for (m, n) in &c.calls {
                *a.calls.entry(m.clone()).or_default() += n;
            }
        }
        Counters {
            connections_total: self.connections_total.load(Ordering::SeqCst),
            connections_open,
            accounts,
            bot_api_calls,
        }
    }
}

/// Whether a channel event reaches members' sessions as a pushed update: new posts follow the
/// channel's `push_every` (see [`crate::world::Channel::push_every`]); edits and deletions are
/// always pushed, so one after unpushed posts shows the client a pts gap, as on Telegram.
fn pushed(ch: &crate::world::Channel, event: &crate::world::LoggedEvent) -> bool {
    match event.event {
        crate::world::Event::NewMessage(id) => match ch.push_every {
            0 => false,
            n => id % i32::try_from(n).unwrap_or(i32::MAX) == 0,
        },
        _ => true,
    }
}

fn tl_build_login_token() -> Vec<u8> {
    use grammers_tl_types as tl;
    use tl::Serializable;
    let up: tl::enums::Updates = tl::types::UpdateShort {
        update: tl::enums::Update::LoginToken,
        date: crate::world::now(),
    }
    .into();
    up.to_bytes()
}
