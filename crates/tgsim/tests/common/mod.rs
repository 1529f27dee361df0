//! Test harness: a real grammers 0.11 client pointed at an in-process tgsim.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]

use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex};

use grammers_client::Client;
use grammers_client::tl;
use grammers_mtsender::{ConnectionParams, SenderPool, SenderPoolFatHandle, UpdatesConfiguration};
use grammers_session::storages::MemorySession;
use grammers_session::types::{DcOption, PeerId, PeerInfo, UpdateState, UpdatesState};
use grammers_session::{BoxFuture, Session, SessionData};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const API_ID: i32 = 12345;
pub const API_HASH: &str = "0123456789abcdef0123456789abcdef";

/// `MemorySession` that also answers `peer(PeerId::self_user())`: grammers' MemorySession
/// looks the sentinel id up literally and answers `None`, so `UpdatesReceiver` would skip its
/// initial `updates.getState` and could not resolve a gap before the first pts update.
pub struct TestSession {
    inner: MemorySession,
    me: Mutex<Option<PeerInfo>>,
}

impl TestSession {
    pub fn new(port: u16, key: [u8; 256]) -> Arc<Self> {
        let mut data = SessionData::default();
        for id in 1..=5 {
            data.dc_options.insert(
                id,
                DcOption {
                    id,
                    ipv4: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
                    ipv6: SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port, 0, 0),
                    auth_key: Some(key),
                },
            );
        }
        data.home_dc = 2;
        Arc::new(TestSession {
            inner: MemorySession::from(data),
            me: Mutex::new(None),
        })
    }
}

impl Session for TestSession {
    type Error = <MemorySession as Session>::Error;

    fn home_dc_id(&self) -> Result<i32, Self::Error> {
        self.inner.home_dc_id()
    }
    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), Self::Error>> {
        self.inner.set_home_dc_id(dc_id)
    }
    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, Self::Error> {
        self.inner.dc_option(dc_id)
    }
    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), Self::Error>> {
        self.inner.set_dc_option(dc_option)
    }
    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, Self::Error>> {
        if peer == PeerId::self_user() {
            let me = self.me.lock().unwrap().clone();
            return Box::pin(async move { Ok(me) });
        }
        self.inner.peer(peer)
    }
    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), Self::Error>> {
        if let PeerInfo::User {
            is_self: Some(true),
            ..
        } = &peer
        {
            *self.me.lock().unwrap() = Some(peer.clone());
        }
        self.inner.cache_peer(peer)
    }
    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, Self::Error>> {
        self.inner.updates_state()
    }
    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), Self::Error>> {
        self.inner.set_update_state(update)
    }
}

pub type Updates = mpsc::Receiver<grammers_session::updates::UpdatesLike>;

/// A running grammers client.
pub struct TestClient {
    pub client: Client,
    pub session: Arc<TestSession>,
    pub updates: Option<Updates>,
    handle: SenderPoolFatHandle,
    task: JoinHandle<()>,
}

impl TestClient {
    pub fn connect(session: Arc<TestSession>) -> Self {
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(
            Arc::clone(&session),
            API_ID,
            ConnectionParams {
                device_model: "tgsim-test".into(),
                system_version: "1.0".into(),
                app_version: "0.1".into(),
                system_lang_code: "en-US".into(),
                lang_code: "en".into(),
                ..Default::default()
            },
        );
        let task = tokio::spawn(runner.run());
        let client = Client::new(handle.clone());
        TestClient {
            client,
            session,
            updates: Some(updates),
            handle,
            task,
        }
    }

    /// Makes the session look like after grammers' `complete_login` (self peer + state).
    pub async fn adopt_login(&self) {
        let me = self.client.get_me().await.unwrap();
        let r = me.to_ref().await.unwrap().expect("self ref");
        self.session
            .cache_peer(PeerInfo::User {
                id: me.id().bare_id_unchecked(),
                auth: Some(r.auth),
                bot: Some(false),
                is_self: Some(true),
            })
            .await
            .unwrap();
        let tl::enums::updates::State::State(s) = self
            .client
            .invoke(&tl::functions::updates::GetState {})
            .await
            .unwrap();
        self.session
            .set_update_state(UpdateState::All(UpdatesState {
                pts: s.pts,
                qts: s.qts,
                date: s.date,
                seq: s.seq,
                channels: vec![],
            }))
            .await
            .unwrap();
    }

    pub async fn stream(&mut self, catch_up: bool) -> grammers_client::client::UpdateStream {
        let rx = self.updates.take().expect("updates already taken");
        self.client
            .stream_updates(rx, UpdatesConfiguration { catch_up })
            .await
            .unwrap()
    }

    pub async fn quit(self) {
        self.handle.quit();
        let _ = self.task.await;
    }
}

pub async fn sim() -> tgsim::Handle {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    tgsim::start(tgsim::Config::default()).await.unwrap()
}

pub fn user(
    sim: &tgsim::Handle,
    phone: &str,
    name: &str,
    username: Option<&str>,
) -> tgsim::UserInfo {
    sim.create_user(tgsim::NewUser {
        phone: phone.into(),
        first_name: name.into(),
        username: username.map(str::to_string),
        ..Default::default()
    })
    .unwrap()
}

/// A client whose key the simulator already bound to `user` (an "imported session").
pub async fn logged_in(sim: &tgsim::Handle, user: tgsim::UserId) -> TestClient {
    let key = sim.issue_auth_key();
    sim.register_auth_key(user, key).unwrap();
    let c = TestClient::connect(TestSession::new(sim.mtproto_addr().port(), key));
    c.adopt_login().await;
    c
}

/// Waits for the next `NewMessage` update whose text matches.
pub async fn next_message(
    stream: &mut grammers_client::client::UpdateStream,
    text: &str,
) -> grammers_client::update::Message {
    let fut = async {
        loop {
            match stream.next().await.unwrap() {
                grammers_client::update::Update::NewMessage(m) if m.text() == text => return m,
                _ => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(15), fut)
        .await
        .unwrap_or_else(|_| panic!("no update with text {text:?}"))
}
