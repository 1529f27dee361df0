//! [`DbSession`]: grammers' `Session` for one account, backed by the [`AccountStore`] with auth
//! keys sealed by the vault.
//!
//! The home DC and the DC options live in memory because grammers reads them synchronously on
//! every request; every change (`set_*`, `cache_peer`, `set_update_state`) is written through to
//! the store. A session can also live in memory only ("detached") while a login or an import is
//! not yet an account; [`DbSession::persist_into`] then writes it out and attaches it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, PeerKind, UpdateState,
    UpdatesState,
};
use grammers_session::{BoxFuture, Session, SessionData};
use switchboard_domain::{
    AccountId, AccountStore, CachedPeer, DcKey, StoreError, UpdateState as StoredUpdateState,
};
use switchboard_sessions::{
    AuthKey, ExportParams, ImportedPeer, ImportedSession, PeerKind as ImportedPeerKind, Secret,
};
use switchboard_vault::{Keyring, Sealed, VaultError};

use crate::error::Error;
use crate::settings::TelegramSettings;

/// grammers' default home DC for a session that has not learnt its own.
const DEFAULT_HOME_DC: i32 = 2;
/// Cached peers kept in memory before the cache is cleared (the store keeps all of them).
const PEER_CACHE_LIMIT: usize = 20_000;

/// Subtype bits shared with grammers' own SQLite storage.
mod subtype {
    pub const SELF: i32 = 1;
    pub const BOT: i32 = 2;
    pub const MEGAGROUP: i32 = 4;
    pub const BROADCAST: i32 = 8;
    pub const GIGAGROUP: i32 = 12;
    pub const COMMUNITY: i32 = 16;
}

static KNOWN_DC_OPTIONS: LazyLock<HashMap<i32, DcOption>> =
    LazyLock::new(|| SessionData::default().dc_options);

/// Where the session's data centers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcRouting {
    /// Telegram's own addresses (as stored, or grammers' built-in table).
    Telegram,
    /// Every DC id goes to this one address (tgsim), with the home DC's key where a DC has none.
    Override(SocketAddr),
}

impl DcRouting {
    /// The routing the settings ask for.
    pub fn from_settings(settings: &TelegramSettings) -> Self {
        match settings.dc_override {
            Some(addr) => Self::Override(addr),
            None => Self::Telegram,
        }
    }
}

/// Errors the session reports to grammers.
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    /// The store failed.
    #[error("session storage failed: {0}")]
    Store(#[from] StoreError),
    /// A key could not be sealed or opened.
    #[error("session key sealing failed: {0}")]
    Vault(#[from] VaultError),
    /// A stored key opened to something that is not a 256-byte key.
    #[error("a stored auth key is malformed")]
    MalformedKey,
    /// A lock was poisoned by a panic elsewhere.
    #[error("session lock poisoned")]
    Poisoned,
}

impl From<SessionStoreError> for Error {
    fn from(e: SessionStoreError) -> Self {
        match e {
            SessionStoreError::Store(e) => Error::Store(e),
            SessionStoreError::Vault(e) => Error::Vault(e),
            SessionStoreError::MalformedKey => Error::Unexpected("a malformed stored auth key"),
            SessionStoreError::Poisoned => Error::Unexpected("a poisoned session lock"),
        }
    }
}

#[derive(Clone)]
struct Attached {
    account: AccountId,
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
}

struct State {
    home_dc: i32,
    /// DC options set explicitly (the others come from the routing's defaults).
    dcs: HashMap<i32, DcOption>,
    /// Peers seen in this run, by Bot-API id (a cache of the store when attached).
    peers: HashMap<i64, PeerInfo>,
    self_user: Option<PeerInfo>,
    /// `None` until an update state was ever saved.
    updates: Option<UpdatesState>,
    attached: Option<Attached>,
}

/// grammers' `Session` for one account, stored in the [`AccountStore`] (see the module docs).
pub struct DbSession {
    routing: DcRouting,
    state: Mutex<State>,
}

impl std::fmt::Debug for DbSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (home, account) = match self.lock() {
            Ok(s) => (Some(s.home_dc), s.attached.as_ref().map(|a| a.account)),
            Err(_) => (None, None),
        };
        f.debug_struct("DbSession")
            .field("routing", &self.routing)
            .field("home_dc", &home)
            .field("account", &account)
            .finish_non_exhaustive()
    }
}

/// Which string format to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// Telethon `StringSession`.
    Telethon,
    /// Pyrogram (≥ 2) / Hydrogram / Kurigram string session.
    Pyrogram,
}

fn dc_aad(account: AccountId, dc_id: i32) -> Vec<u8> {
    format!("account:{}:dc:{}", account.0, dc_id).into_bytes()
}

/// The AAD an account's sealed `api_hash` override is bound to.
pub fn api_hash_aad(account: AccountId) -> Vec<u8> {
    format!("account:{}:api_hash", account.0).into_bytes()
}

fn v4_pair(addr: SocketAddrV4) -> (SocketAddrV4, SocketAddrV6) {
    (
        addr,
        SocketAddrV6::new(addr.ip().to_ipv6_mapped(), addr.port(), 0, 0),
    )
}

/// Both addresses grammers wants for one socket address.
fn addr_pair(addr: SocketAddr) -> (SocketAddrV4, SocketAddrV6) {
    match addr {
        SocketAddr::V4(v4) => v4_pair(v4),
        SocketAddr::V6(v6) => (
            v6.ip()
                .to_ipv4_mapped()
                .map(|ip| SocketAddrV4::new(ip, v6.port()))
                .unwrap_or_else(|| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, v6.port())),
            v6,
        ),
    }
}

fn known_dc(dc_id: i32) -> Option<DcOption> {
    KNOWN_DC_OPTIONS.get(&dc_id).cloned()
}

/// The Bot-API id a peer is cached under.
fn peer_key(peer: &PeerInfo) -> i64 {
    peer.id().bot_api_dialog_id_unchecked()
}

fn is_self(peer: &PeerInfo) -> bool {
    matches!(
        peer,
        PeerInfo::User {
            is_self: Some(true),
            ..
        }
    )
}

/// A grammers peer as the store keeps it.
pub(crate) fn to_cached(peer: &PeerInfo) -> CachedPeer {
    let (access_hash, subtype) = match peer {
        PeerInfo::User {
            auth, bot, is_self, ..
        } => {
            let mut s = 0;
            if *is_self == Some(true) {
                s |= subtype::SELF;
            }
            if *bot == Some(true) {
                s |= subtype::BOT;
            }
            (auth.map(PeerAuth::hash), s)
        }
        PeerInfo::Chat { .. } => (None, 0),
        PeerInfo::Channel { auth, kind, .. } => {
            let s = match kind {
                Some(ChannelKind::Megagroup) => subtype::MEGAGROUP,
                Some(ChannelKind::Broadcast) => subtype::BROADCAST,
                Some(ChannelKind::Gigagroup) => subtype::GIGAGROUP,
                Some(ChannelKind::Community) => subtype::COMMUNITY,
                None => 0,
            };
            (auth.map(PeerAuth::hash), s)
        }
    };
    CachedPeer {
        peer_id: peer_key(peer),
        access_hash,
        subtype,
    }
}

/// A stored peer as grammers wants it; `None` for an id outside Telegram's ranges.
pub(crate) fn from_cached(peer: &CachedPeer) -> Option<PeerInfo> {
    let id = PeerId::from_bot_api_dialog_id(peer.peer_id)?;
    let bare = id.bare_id()?;
    let auth = peer.access_hash.map(PeerAuth::from_hash);
    Some(match id.kind() {
        PeerKind::User => PeerInfo::User {
            id: bare,
            auth,
            bot: Some(peer.subtype & subtype::BOT != 0),
            is_self: Some(peer.subtype & subtype::SELF != 0),
        },
        PeerKind::Chat => PeerInfo::Chat { id: bare },
        PeerKind::Channel => PeerInfo::Channel {
            id: bare,
            auth,
            kind: match peer.subtype {
                s if s & subtype::COMMUNITY != 0 => Some(ChannelKind::Community),
                s if s & subtype::GIGAGROUP == subtype::GIGAGROUP => Some(ChannelKind::Gigagroup),
                s if s & subtype::BROADCAST != 0 => Some(ChannelKind::Broadcast),
                s if s & subtype::MEGAGROUP != 0 => Some(ChannelKind::Megagroup),
                _ => None,
            },
        },
    })
}

fn from_imported_peer(peer: &ImportedPeer) -> Option<PeerInfo> {
    let id = PeerId::from_bot_api_dialog_id(peer.id)?;
    let bare = id.bare_id()?;
    let auth = peer.access_hash.map(PeerAuth::from_hash);
    Some(match (id.kind(), peer.kind) {
        (PeerKind::User, kind) => PeerInfo::User {
            id: bare,
            auth,
            bot: Some(kind == ImportedPeerKind::Bot),
            is_self: None,
        },
        (PeerKind::Chat, _) => PeerInfo::Chat { id: bare },
        (PeerKind::Channel, kind) => PeerInfo::Channel {
            id: bare,
            auth,
            kind: (kind == ImportedPeerKind::Supergroup).then_some(ChannelKind::Megagroup),
        },
    })
}

fn key_array(bytes: &[u8]) -> Result<[u8; 256], SessionStoreError> {
    <[u8; 256]>::try_from(bytes).map_err(|_| SessionStoreError::MalformedKey)
}

fn seal_key(attached: &Attached, dc: &DcOption) -> Result<Option<Vec<u8>>, SessionStoreError> {
    Ok(match &dc.auth_key {
        Some(key) => Some(
            attached
                .keyring
                .seal(key, &dc_aad(attached.account, dc.id))?
                .to_bytes(),
        ),
        None => None,
    })
}

fn to_dc_key(attached: &Attached, dc: &DcOption) -> Result<DcKey, SessionStoreError> {
    Ok(DcKey {
        dc_id: dc.id,
        ipv4: dc.ipv4.to_string(),
        ipv6: dc.ipv6.to_string(),
        auth_key_sealed: seal_key(attached, dc)?,
    })
}

impl DbSession {
    fn empty(routing: DcRouting) -> Self {
        Self {
            routing,
            state: Mutex::new(State {
                home_dc: DEFAULT_HOME_DC,
                dcs: HashMap::new(),
                peers: HashMap::new(),
                self_user: None,
                updates: None,
                attached: None,
            }),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, SessionStoreError> {
        self.state.lock().map_err(|_| SessionStoreError::Poisoned)
    }

    fn attached(&self) -> Result<Option<Attached>, SessionStoreError> {
        Ok(self.lock()?.attached.clone())
    }

    /// Both addresses of a DC under this session's routing.
    fn routed_addrs(&self, dc_id: i32) -> Option<(SocketAddrV4, SocketAddrV6)> {
        match self.routing {
            DcRouting::Override(addr) => Some(addr_pair(addr)),
            DcRouting::Telegram => known_dc(dc_id).map(|d| (d.ipv4, d.ipv6)),
        }
    }

    /// A session for a brand-new login, in memory until [`DbSession::persist_into`]: home DC 2,
    /// and with `dc_override` a fresh auth key from the simulator.
    pub async fn new_login(settings: &TelegramSettings) -> Result<Self, Error> {
        let session = Self::empty(DcRouting::from_settings(settings));
        if let Some(key) = settings.provision_auth_key().await? {
            let (ipv4, ipv6) = session
                .routed_addrs(DEFAULT_HOME_DC)
                .ok_or(Error::Config("no address for the default data center"))?;
            session.lock()?.dcs.insert(
                DEFAULT_HOME_DC,
                DcOption {
                    id: DEFAULT_HOME_DC,
                    ipv4,
                    ipv6,
                    auth_key: Some(key),
                },
            );
        }
        Ok(session)
    }

    /// A session holding an imported session (key at its DC, remapped to `dc_override` when
    /// set; self user, cached peers, update state), in memory until persisted.
    pub fn from_imported(settings: &TelegramSettings, imported: &ImportedSession) -> Self {
        let routing = DcRouting::from_settings(settings);
        let session = Self::empty(routing);
        let (ipv4, ipv6) = match routing {
            DcRouting::Override(addr) => addr_pair(addr),
            DcRouting::Telegram => {
                let stored = imported.resolved_addr();
                let known =
                    switchboard_sessions::dc::dc_address(imported.dc_id, imported.test_mode, false);
                match (stored, known) {
                    (Some(SocketAddr::V6(v6)), Some(SocketAddr::V4(v4))) => (v4, v6),
                    (Some(addr), _) => addr_pair(addr),
                    (None, Some(addr)) => addr_pair(addr),
                    (None, None) => (
                        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 443),
                        SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 443, 0, 0),
                    ),
                }
            }
        };
        if let Ok(mut st) = session.lock() {
            st.home_dc = imported.dc_id;
            st.dcs.insert(
                imported.dc_id,
                DcOption {
                    id: imported.dc_id,
                    ipv4,
                    ipv6,
                    auth_key: Some(*imported.auth_key.as_bytes()),
                },
            );
            for peer in imported.peers.iter().filter_map(from_imported_peer) {
                st.peers.insert(peer_key(&peer), peer);
            }
            if let Some(user_id) = imported.user_id.filter(|id| PeerId::user(*id).is_some()) {
                let me = PeerInfo::User {
                    id: user_id,
                    auth: st.peers.get(&user_id).and_then(PeerInfo::auth),
                    bot: imported.is_bot,
                    is_self: Some(true),
                };
                st.peers.insert(user_id, me.clone());
                st.self_user = Some(me);
            }
            st.updates = imported.updates.as_ref().map(|u| UpdatesState {
                pts: u.pts,
                qts: u.qts,
                date: u.date,
                seq: u.seq,
                channels: u
                    .channels
                    .iter()
                    .map(|c| ChannelState {
                        id: c.channel_id,
                        pts: c.pts,
                    })
                    .collect(),
            });
        }
        session
    }

    /// Loads an account's session from the store (once; afterwards it is served from memory
    /// and written through).
    pub async fn load(
        settings: &TelegramSettings,
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        account: AccountId,
    ) -> Result<Self, Error> {
        settings.sessions_opened.opened();
        let session = Self::empty(DcRouting::from_settings(settings));
        let home = store.account_home_dc(account).await?;
        let mut dcs = HashMap::new();
        for row in store.list_dc_keys(account).await? {
            let auth_key = match &row.auth_key_sealed {
                Some(bytes) => {
                    let sealed = Sealed::from_bytes(bytes)?;
                    let plain = keyring.open(&sealed, &dc_aad(account, row.dc_id))?;
                    Some(key_array(&plain)?)
                }
                None => None,
            };
            let default = session
                .routed_addrs(row.dc_id)
                .unwrap_or_else(|| addr_pair(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 443))));
            let (ipv4, ipv6) = match session.routing {
                DcRouting::Override(_) => default,
                DcRouting::Telegram => (
                    row.ipv4.parse().unwrap_or(default.0),
                    row.ipv6.parse().unwrap_or(default.1),
                ),
            };
            dcs.insert(
                row.dc_id,
                DcOption {
                    id: row.dc_id,
                    ipv4,
                    ipv6,
                    auth_key,
                },
            );
        }
        let self_user = store
            .get_self_peer(account)
            .await?
            .as_ref()
            .and_then(from_cached);
        let updates = store
            .get_update_state(account)
            .await?
            .map(|(s, channels)| UpdatesState {
                pts: s.pts,
                qts: s.qts,
                date: s.date,
                seq: s.seq,
                channels: channels
                    .into_iter()
                    .map(|(id, pts)| ChannelState { id, pts })
                    .collect(),
            });
        {
            let mut st = session.lock()?;
            st.home_dc = home.unwrap_or(DEFAULT_HOME_DC);
            st.dcs = dcs;
            if let Some(me) = &self_user {
                st.peers.insert(peer_key(me), me.clone());
            }
            st.self_user = self_user;
            st.updates = updates;
            st.attached = Some(Attached {
                account,
                store,
                keyring,
            });
        }
        Ok(session)
    }

    /// Writes this session (replacing whatever the account had) into an account and attaches
    /// it, so later changes are written through.
    pub async fn persist_into(
        &self,
        store: Arc<dyn AccountStore>,
        keyring: Arc<Keyring>,
        account: AccountId,
    ) -> Result<(), Error> {
        let attached = Attached {
            account,
            store,
            keyring,
        };
        let (home, dc_keys, peers, updates) = {
            let st = self.lock()?;
            let mut dcs: Vec<&DcOption> = st.dcs.values().collect();
            dcs.sort_by_key(|d| d.id);
            let dc_keys = dcs
                .into_iter()
                .map(|d| to_dc_key(&attached, d))
                .collect::<Result<Vec<_>, _>>()?;
            let mut peers: Vec<CachedPeer> = st.peers.values().map(to_cached).collect();
            if let Some(me) = &st.self_user
                && !st.peers.contains_key(&peer_key(me))
            {
                peers.push(to_cached(me));
            }
            (st.home_dc, dc_keys, peers, st.updates.clone())
        };
        let store = &attached.store;
        store.wipe_account_session(account).await?;
        store.set_account_home_dc(account, home).await?;
        for key in &dc_keys {
            store.upsert_dc_key(account, key).await?;
        }
        if !peers.is_empty() {
            store.upsert_cached_peers(account, &peers).await?;
        }
        if let Some(u) = updates {
            let channels: Vec<(i64, i32)> = u.channels.iter().map(|c| (c.id, c.pts)).collect();
            store
                .set_update_state(
                    account,
                    &StoredUpdateState {
                        pts: u.pts,
                        qts: u.qts,
                        date: u.date,
                        seq: u.seq,
                    },
                    &channels,
                )
                .await?;
        }
        self.lock()?.attached = Some(attached);
        Ok(())
    }

    /// The account this session is written to, once attached.
    pub fn account_id(&self) -> Option<AccountId> {
        self.lock().ok()?.attached.as_ref().map(|a| a.account)
    }

    /// The routing of this session's data centers.
    pub fn routing(&self) -> DcRouting {
        self.routing
    }

    /// The home data center.
    pub fn home_dc(&self) -> i32 {
        self.lock().map(|s| s.home_dc).unwrap_or(DEFAULT_HOME_DC)
    }

    /// Whether the home data center has an auth key (without one there is nothing to resume).
    pub fn has_auth_key(&self) -> bool {
        self.home_key().is_some()
    }

    fn home_key(&self) -> Option<[u8; 256]> {
        let st = self.lock().ok()?;
        st.dcs.get(&st.home_dc).and_then(|d| d.auth_key)
    }

    /// The signed-in user's id, once known.
    pub fn self_user_id(&self) -> Option<i64> {
        match self.lock().ok()?.self_user.as_ref()? {
            PeerInfo::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The update state saved so far (`None` if never saved).
    pub fn saved_update_state(&self) -> Option<UpdatesState> {
        self.lock().ok()?.updates.clone()
    }

    /// Exports the session as a Telethon or Pyrogram string (a secret: never log it).
    pub fn export_string(&self, format: ExportFormat, api_id: i32) -> Result<Secret, Error> {
        let (dc_id, addr, key, user_id, is_bot) = {
            let st = self.lock()?;
            let dc = st.dcs.get(&st.home_dc).ok_or(Error::NoAuthKey)?;
            let key = dc.auth_key.ok_or(Error::NoAuthKey)?;
            let addr = match self.routing {
                DcRouting::Override(addr) => Some(addr),
                DcRouting::Telegram if !dc.ipv4.ip().is_unspecified() => {
                    Some(SocketAddr::V4(dc.ipv4))
                }
                DcRouting::Telegram => None,
            };
            let (user_id, is_bot) = match &st.self_user {
                Some(PeerInfo::User { id, bot, .. }) => (Some(*id), *bot),
                _ => (None, None),
            };
            (st.home_dc, addr, key, user_id, is_bot)
        };
        let auth_key = AuthKey::new(key);
        let test_mode = matches!(self.routing, DcRouting::Telegram)
            && addr.is_some_and(|a| switchboard_sessions::dc::is_test_dc_ip(a.ip()));
        let params = ExportParams {
            dc_id,
            server_addr: addr,
            auth_key: &auth_key,
            user_id,
            is_bot,
            api_id: Some(api_id),
            test_mode,
        };
        Ok(match format {
            ExportFormat::Telethon => switchboard_sessions::telethon::export_string(&params)?,
            ExportFormat::Pyrogram => switchboard_sessions::pyrogram::export_string(&params)?,
        })
    }

    /// Merges a peer into the cache; returns the merged peer when it changed.
    async fn merge_peer(&self, peer: PeerInfo) -> Result<Option<PeerInfo>, SessionStoreError> {
        let key = peer_key(&peer);
        let (cached, attached) = {
            let st = self.lock()?;
            (st.peers.get(&key).cloned(), st.attached.clone())
        };
        let existing = match (cached, attached) {
            (Some(p), _) => Some(p),
            (None, Some(a)) => a
                .store
                .get_cached_peer(a.account, key)
                .await?
                .as_ref()
                .and_then(from_cached),
            (None, None) => None,
        };
        let (merged, changed) = match existing {
            Some(mut e) => {
                let before = e.clone();
                if !e.extend_info(&peer) {
                    // A different kind under the same id cannot happen; keep the newer one.
                    (peer, true)
                } else {
                    let changed = e != before;
                    (e, changed)
                }
            }
            None => (peer, true),
        };
        let mut st = self.lock()?;
        if st.peers.len() >= PEER_CACHE_LIMIT {
            st.peers.clear();
        }
        st.peers.insert(key, merged.clone());
        if is_self(&merged) {
            st.self_user = Some(merged.clone());
        }
        Ok(changed.then_some(merged))
    }
}

impl Session for DbSession {
    type Error = SessionStoreError;

    fn home_dc_id(&self) -> Result<i32, Self::Error> {
        Ok(self.lock()?.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), Self::Error>> {
        Box::pin(async move {
            let attached = {
                let mut st = self.lock()?;
                if st.home_dc == dc_id {
                    return Ok(());
                }
                st.home_dc = dc_id;
                st.attached.clone()
            };
            if let Some(a) = attached {
                a.store.set_account_home_dc(a.account, dc_id).await?;
            }
            Ok(())
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, Self::Error> {
        let st = self.lock()?;
        match self.routing {
            DcRouting::Telegram => Ok(st.dcs.get(&dc_id).cloned().or_else(|| known_dc(dc_id))),
            DcRouting::Override(addr) => {
                if dc_id <= 0 {
                    return Ok(None);
                }
                let (ipv4, ipv6) = addr_pair(addr);
                // One simulator serves every DC and knows the account by its key: a DC without
                // a key of its own uses the home DC's.
                let auth_key = st
                    .dcs
                    .get(&dc_id)
                    .and_then(|d| d.auth_key)
                    .or_else(|| st.dcs.get(&st.home_dc).and_then(|d| d.auth_key));
                Ok(Some(DcOption {
                    id: dc_id,
                    ipv4,
                    ipv6,
                    auth_key,
                }))
            }
        }
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), Self::Error>> {
        let mut option = dc_option.clone();
        if let DcRouting::Override(addr) = self.routing {
            (option.ipv4, option.ipv6) = addr_pair(addr);
        }
        Box::pin(async move {
            let attached = {
                let mut st = self.lock()?;
                if st.dcs.get(&option.id) == Some(&option) {
                    return Ok(());
                }
                st.dcs.insert(option.id, option.clone());
                st.attached.clone()
            };
            if let Some(a) = attached {
                let key = to_dc_key(&a, &option)?;
                a.store.upsert_dc_key(a.account, &key).await?;
            }
            Ok(())
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, Self::Error>> {
        Box::pin(async move {
            let attached = {
                let st = self.lock()?;
                if peer == PeerId::self_user() {
                    if st.self_user.is_some() || st.attached.is_none() {
                        return Ok(st.self_user.clone());
                    }
                } else {
                    let Some(key) = peer.bot_api_dialog_id() else {
                        return Ok(None);
                    };
                    if let Some(p) = st.peers.get(&key) {
                        return Ok(Some(p.clone()));
                    }
                }
                st.attached.clone()
            };
            let Some(a) = attached else {
                return Ok(None);
            };
            let found = if peer == PeerId::self_user() {
                a.store.get_self_peer(a.account).await?
            } else {
                a.store
                    .get_cached_peer(a.account, peer.bot_api_dialog_id_unchecked())
                    .await?
            };
            let info = found.as_ref().and_then(from_cached);
            if let Some(p) = &info {
                let mut st = self.lock()?;
                st.peers.insert(peer_key(p), p.clone());
                if is_self(p) {
                    st.self_user = Some(p.clone());
                }
            }
            Ok(info)
        })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), Self::Error>> {
        Box::pin(async move {
            if let Some(merged) = self.merge_peer(peer).await?
                && let Some(a) = self.attached()?
            {
                a.store
                    .upsert_cached_peers(a.account, &[to_cached(&merged)])
                    .await?;
            }
            Ok(())
        })
    }

    fn cache_peers(&self, peers: Vec<PeerInfo>) -> BoxFuture<'_, Result<(), Self::Error>> {
        Box::pin(async move {
            let mut changed = Vec::new();
            for peer in peers {
                if let Some(merged) = self.merge_peer(peer).await? {
                    changed.push(to_cached(&merged));
                }
            }
            if !changed.is_empty()
                && let Some(a) = self.attached()?
            {
                a.store.upsert_cached_peers(a.account, &changed).await?;
            }
            Ok(())
        })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, Self::Error>> {
        Box::pin(async move { Ok(self.lock()?.updates.clone().unwrap_or_default()) })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), Self::Error>> {
        Box::pin(async move {
            let (attached, full) = {
                let mut st = self.lock()?;
                let state = st.updates.get_or_insert_with(UpdatesState::default);
                let mut full = false;
                match &update {
                    UpdateState::All(all) => {
                        *state = all.clone();
                        full = true;
                    }
                    UpdateState::Primary { pts, date, seq } => {
                        state.pts = *pts;
                        state.date = *date;
                        state.seq = *seq;
                    }
                    UpdateState::Secondary { qts } => state.qts = *qts,
                    UpdateState::Channel { id, pts } => {
                        match state.channels.iter_mut().find(|c| c.id == *id) {
                            Some(c) => c.pts = *pts,
                            None => state.channels.push(ChannelState { id: *id, pts: *pts }),
                        }
                    }
                }
                let snapshot = full.then(|| state.clone());
                (st.attached.clone(), snapshot)
            };
            let Some(a) = attached else {
                return Ok(());
            };
            match (update, full) {
                (_, Some(all)) => {
                    let channels: Vec<(i64, i32)> =
                        all.channels.iter().map(|c| (c.id, c.pts)).collect();
                    a.store
                        .set_update_state(
                            a.account,
                            &StoredUpdateState {
                                pts: all.pts,
                                qts: all.qts,
                                date: all.date,
                                seq: all.seq,
                            },
                            &channels,
                        )
                        .await?;
                }
                (UpdateState::Primary { pts, date, seq }, None) => {
                    a.store
                        .set_update_primary(a.account, pts, date, seq)
                        .await?;
                }
                (UpdateState::Secondary { qts }, None) => {
                    a.store.set_update_qts(a.account, qts).await?;
                }
                (UpdateState::Channel { id, pts }, None) => {
                    a.store.set_channel_pts(a.account, id, pts).await?;
                }
                (UpdateState::All(_), None) => {}
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_round_trip_through_the_stored_form() {
        let peers = [
            PeerInfo::User {
                id: 42,
                auth: Some(PeerAuth::from_hash(-7)),
                bot: Some(false),
                is_self: Some(true),
            },
            PeerInfo::User {
                id: 43,
                auth: None,
                bot: Some(true),
                is_self: Some(false),
            },
            PeerInfo::Chat { id: 99 },
            PeerInfo::Channel {
                id: 1234,
                auth: Some(PeerAuth::from_hash(5)),
                kind: Some(ChannelKind::Megagroup),
            },
            PeerInfo::Channel {
                id: 1235,
                auth: Some(PeerAuth::from_hash(6)),
                kind: Some(ChannelKind::Gigagroup),
            },
            PeerInfo::Channel {
                id: 1236,
                auth: None,
                kind: Some(ChannelKind::Broadcast),
            },
        ];
        for p in peers {
            let stored = to_cached(&p);
            assert_eq!(from_cached(&stored).as_ref(), Some(&p), "{stored:?}");
        }
        assert_eq!(to_cached(&PeerInfo::Chat { id: 99 }).peer_id, -99);
        assert_eq!(
            to_cached(&PeerInfo::Channel {
                id: 1234,
                auth: None,
                kind: None
            })
            .peer_id,
            -1_000_000_001_234
        );
    }

    #[test]
    fn override_routes_every_dc_to_one_address_with_the_home_key() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4444));
        let s = DbSession::empty(DcRouting::Override(addr));
        s.lock().ok().map(|mut st| {
            st.dcs.insert(
                2,
                DcOption {
                    id: 2,
                    ipv4: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4444),
                    ipv6: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 4444, 0, 0),
                    auth_key: Some([9; 256]),
                },
            )
        });
        for dc in 1..=5 {
            let opt = s.dc_option(dc).ok().flatten();
            assert_eq!(opt.as_ref().map(|o| o.ipv4.port()), Some(4444));
            assert_eq!(opt.and_then(|o| o.auth_key).map(|k| k[0]), Some(9));
        }
        let plain = DbSession::empty(DcRouting::Telegram);
        let dc4 = plain.dc_option(4).ok().flatten();
        assert_eq!(dc4.map(|o| o.ipv4.port()), Some(443));
    }

    #[tokio::test]
    async fn self_user_sentinel_answers_with_the_cached_self_user() {
        let s = DbSession::empty(DcRouting::Telegram);
        assert_eq!(s.peer(PeerId::self_user()).await.ok().flatten(), None);
        let me = PeerInfo::User {
            id: 7,
            auth: Some(PeerAuth::from_hash(1)),
            bot: Some(false),
            is_self: Some(true),
        };
        assert!(s.cache_peer(me.clone()).await.is_ok());
        assert_eq!(s.peer(PeerId::self_user()).await.ok().flatten(), Some(me));
        assert_eq!(s.self_user_id(), Some(7));
    }
}
