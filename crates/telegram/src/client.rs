//! Building one grammers client for one session: the `SenderPool`, its runner run as a task
//! the caller owns ([`PoolTask`], started through the settings' [`Spawn`]), the `Client` and the
//! raw updates receiver. No global state;
//! the supervisor calls [`connect`] once per account, the login flows once per flow.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use grammers_client::Client;
use grammers_mtsender::{
    ConnectionParams, InvocationError, RetryContext, RetryPolicy, SenderPool, SenderPoolFatHandle,
};
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use switchboard_domain::{AccountId, AccountStore};
use switchboard_vault::Keyring;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::health::ConnectionHealth;
use crate::session::{DbSession, DcRouting};
use crate::settings::TelegramSettings;
use crate::spawn::Spawn;

/// grammers' own channel from the sender to the stream. It drops what does not fit (100 by
/// default), and a dropped *tail* is noticed only by the next update or after 15 minutes
/// without one; [`relay`] drains it as fast as it can, and this absorbs the moments the relay
/// is not scheduled. Slots hold nothing until used.
const UPDATES_BUFFER: std::num::NonZeroUsize = std::num::NonZeroUsize::new(20_000).unwrap();
/// Updates handed from the relay to the stream ahead of its consumer.
const RELAY_HANDOFF: usize = 64;

/// The raw updates a client receives; give it to `Client::stream_updates`.
pub type UpdatesReceiver = mpsc::Receiver<UpdatesLike>;

/// How a client treats FloodWaits and dropped connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryOptions {
    /// FloodWaits up to this long are slept through (once); longer ones are returned. Zero
    /// returns every FloodWait to the caller.
    pub flood_sleep_threshold: Duration,
    /// How often a request is retried after an I/O error (on a new connection), one second apart.
    pub io_retries: u32,
}

impl RetryOptions {
    /// For live clients: sleep through short FloodWaits, retry I/O errors once.
    pub fn live(settings: &TelegramSettings) -> Self {
        Self {
            flood_sleep_threshold: settings.flood_sleep_threshold,
            io_retries: 1,
        }
    }

    /// For login flows and validation: every FloodWait goes back to the person waiting.
    pub fn interactive() -> Self {
        Self {
            flood_sleep_threshold: Duration::ZERO,
            io_retries: 1,
        }
    }
}

struct Policy(RetryOptions, ConnectionHealth);

impl RetryPolicy for Policy {
    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
        // Every failed request passes here, whether it is retried or not: what it says about
        // the connection is recorded first.
        match &ctx.error {
            InvocationError::Rpc(rpc) if rpc.code == 420 => {
                self.1.flood_wait(rpc.value.unwrap_or(0));
            }
            InvocationError::Io(e) => match crate::proxy::ProxyFailure::of_io(e) {
                Some(failure) => self.1.proxy_failed(failure),
                None => self.1.lost(),
            },
            InvocationError::Dropped(_) => self.1.lost(),
            _ => {}
        }
        match &ctx.error {
            InvocationError::Rpc(rpc)
                if rpc.code == 420
                    && ctx.fail_count <= NonZeroU32::MIN
                    && rpc.value.is_some_and(|s| {
                        s > 0 && u64::from(s) <= self.0.flood_sleep_threshold.as_secs()
                    }) =>
            {
                ControlFlow::Continue(Duration::from_secs(u64::from(rpc.value.unwrap_or(0))))
            }
            InvocationError::Io(_) if ctx.fail_count.get() <= self.0.io_retries => {
                ControlFlow::Continue(Duration::from_secs(1))
            }
            _ => ControlFlow::Break(()),
        }
    }
}

/// The running connection pool of one client. Quit it with [`PoolTask::quit`]; dropping it
/// also asks the pool to stop.
pub struct PoolTask {
    handle: SenderPoolFatHandle,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PoolTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolTask")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl PoolTask {
    /// Whether the pool stopped (after `quit`, or because it crashed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Closes every connection and waits for the pool to stop; `ClientCrashed` if it panicked.
    pub async fn quit(mut self) -> Result<(), Error> {
        self.handle.quit();
        match self.task.take() {
            Some(task) => task.await.map_err(|_| Error::ClientCrashed),
            None => Ok(()),
        }
    }

    /// Drops the connection to one data center (after a login moved to another).
    pub(crate) fn disconnect_from_dc(&self, dc_id: i32) {
        self.handle.disconnect_from_dc(dc_id);
    }

    /// Waits until the pool stops by itself; `ClientCrashed` if it panicked.
    pub async fn join(&mut self) -> Result<(), Error> {
        match self.task.as_mut() {
            Some(task) => {
                let r = task.await.map_err(|_| Error::ClientCrashed);
                self.task = None;
                r
            }
            None => Ok(()),
        }
    }
}

impl Drop for PoolTask {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.handle.quit();
        }
    }
}

/// One client: the `Client` to call, its updates and its running pool.
pub struct Connection {
    /// The grammers client (cheap to clone; every clone uses this one pool).
    pub client: Client,
    /// Raw updates; pass to `client.stream_updates` once.
    pub updates: UpdatesReceiver,
    /// The pool task, owned by whoever owns this connection.
    pub pool: PoolTask,
    /// The session the client reads and writes.
    pub session: Arc<DbSession>,
    /// What the connection is doing (closed, waiting), as its requests and updates show it.
    pub health: ConnectionHealth,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.session)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Closes the connections and waits for the pool to stop.
    pub async fn quit(self) -> Result<(), Error> {
        let Connection { client, pool, .. } = self;
        drop(client);
        pool.quit().await
    }
}

/// Builds the sender pool and client for a session, spawns the pool runner on the current tokio
/// runtime and returns everything the caller then owns. Nothing connects until the first call.
pub fn connect(
    settings: &TelegramSettings,
    session: Arc<DbSession>,
    retry: RetryOptions,
) -> Connection {
    let info = &settings.client_info;
    let health = ConnectionHealth::default();
    let params = ConnectionParams {
        device_model: info.device_model.clone(),
        system_version: info.system_version.clone(),
        app_version: info.app_version.clone(),
        system_lang_code: info.system_lang_code.clone(),
        lang_code: info.lang_code.clone(),
        use_ipv6: matches!(session.routing(), DcRouting::Override(a) if a.is_ipv6()),
        retry_policy: Box::new(Policy(retry, health.clone())),
        updates_channel_capacity: UPDATES_BUFFER,
        // Through the proxy when one is set; grammers then never connects directly.
        proxy_url: settings.proxy.as_ref().map(|p| p.mtproto_url()),
        ..Default::default()
    };
    let SenderPool {
        runner,
        handle,
        updates,
    } = SenderPool::with_configuration(Arc::clone(&session), settings.api_id, params);
    let task = settings.tasks.spawn("sender_pool", Box::pin(runner.run()));
    let client = Client::new(handle.clone());
    Connection {
        client,
        updates: relay(
            updates,
            settings.update_backlog,
            health.clone(),
            &*settings.tasks,
        ),
        pool: PoolTask {
            handle,
            task: Some(task),
        },
        session,
        health,
    }
}

/// Loads an account's session from the store and builds its live client ([`connect`] with
/// [`RetryOptions::live`]); `NoAuthKey` when the account has no session to resume.
pub async fn connect_account(
    settings: &TelegramSettings,
    store: Arc<dyn AccountStore>,
    keyring: Arc<Keyring>,
    account: AccountId,
) -> Result<Connection, Error> {
    let session = Arc::new(DbSession::load(settings, store, keyring, account).await?);
    if !session.has_auth_key() {
        return Err(Error::NoAuthKey);
    }
    Ok(connect(settings, session, RetryOptions::live(settings)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_mtsender::RpcError;

    fn ctx(error: InvocationError, fails: u32) -> RetryContext {
        RetryContext {
            fail_count: NonZeroU32::new(fails).unwrap_or(NonZeroU32::MIN),
            slept_so_far: Duration::ZERO,
            error,
        }
    }

    fn flood(secs: u32) -> InvocationError {
        InvocationError::Rpc(RpcError {
            code: 420,
            name: "FLOOD_WAIT".into(),
            value: Some(secs),
            caused_by: None,
        })
    }

    #[test]
    fn interactive_policy_returns_every_flood_wait_and_retries_io_once() {
        let p = Policy(RetryOptions::interactive(), ConnectionHealth::default());
        assert_eq!(p.should_retry(&ctx(flood(1), 1)), ControlFlow::Break(()));
        let io = || InvocationError::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(
            p.should_retry(&ctx(io(), 1)),
            ControlFlow::Continue(Duration::from_secs(1))
        );
        assert_eq!(p.should_retry(&ctx(io(), 2)), ControlFlow::Break(()));
    }

    #[test]
    fn live_policy_sleeps_through_short_flood_waits_only() {
        let health = ConnectionHealth::default();
        let p = Policy(
            RetryOptions {
                flood_sleep_threshold: Duration::from_secs(10),
                io_retries: 1,
            },
            health.clone(),
        );
        assert_eq!(
            p.should_retry(&ctx(flood(3), 1)),
            ControlFlow::Continue(Duration::from_secs(3))
        );
        assert_eq!(p.should_retry(&ctx(flood(3), 2)), ControlFlow::Break(()));
        assert_eq!(p.should_retry(&ctx(flood(30), 1)), ControlFlow::Break(()));
        // The waits, slept through or not, are what the supervisor shows.
        let until = health.state().flood_until.map_or(0, |t| t.0);
        assert!(until - switchboard_domain::Timestamp::now().0 > 25_000);
    }
}

/// Stands between grammers' sender and the update stream: takes every update the moment it is
/// received (so grammers never drops one) and holds up to `backlog` of them until the stream's
/// consumer wants them. When the consumer falls further behind, the held updates are replaced
/// by a single `updatesTooLong`, which the stream treats as a gap: it fetches what it missed
/// with `updates.getDifference`, slice by slice as it is consumed. Memory stays bounded and
/// nothing is lost; the end of the input (`ConnectionClosed`) is passed on after the rest.
/// What arrives is also recorded in `health`: a closed connection, or one that is alive.
pub fn relay(
    mut from: UpdatesReceiver,
    backlog: usize,
    health: ConnectionHealth,
    tasks: &dyn Spawn,
) -> UpdatesReceiver {
    let (tx, to) = mpsc::channel(RELAY_HANDOFF);
    let backlog = backlog.max(1);
    tasks.spawn(
        "update_relay",
        Box::pin(async move {
            let mut held = VecDeque::new();
            let mut open = true;
            while open || !held.is_empty() {
                // Take everything already received, without waiting.
                while open {
                    match from.try_recv() {
                        Ok(u) => hold(&mut held, observed(&health, u), backlog),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                    }
                }
                // Hand over as much as the stream has room for.
                while !held.is_empty() {
                    match tx.try_reserve() {
                        Ok(permit) => {
                            if let Some(u) = held.pop_front() {
                                permit.send(u);
                            }
                        }
                        Err(mpsc::error::TrySendError::Full(())) => break,
                        Err(mpsc::error::TrySendError::Closed(())) => return,
                    }
                }
                // Then wait for either more input or room in the stream.
                tokio::select! {
                    u = from.recv(), if open => match u {
                        Some(u) => hold(&mut held, observed(&health, u), backlog),
                        None => open = false,
                    },
                    permit = tx.reserve(), if !held.is_empty() => match permit {
                        Ok(permit) => {
                            if let Some(u) = held.pop_front() {
                                permit.send(u);
                            }
                        }
                        Err(_) => return,
                    },
                    else => {}
                }
            }
        }),
    );
    to
}

/// Records what an input says about the connection, and passes it on.
fn observed(health: &ConnectionHealth, u: UpdatesLike) -> UpdatesLike {
    match u {
        UpdatesLike::ConnectionClosed => health.lost(),
        _ => health.alive(),
    }
    u
}

/// Appends an update to the held ones; past `backlog`, replaces them all by `updatesTooLong`.
fn hold(held: &mut VecDeque<UpdatesLike>, u: UpdatesLike, backlog: usize) {
    if held.len() >= backlog {
        tracing::info!(
            backlog,
            "the update consumer fell behind; fetching the backlog with getDifference"
        );
        held.clear();
        held.push_back(UpdatesLike::Updates(tl::enums::Updates::TooLong));
    }
    held.push_back(u);
}

#[cfg(test)]
mod relay_tests {
    #![allow(clippy::unwrap_used)]
    #![allow(
        clippy::disallowed_methods,
        reason = "tests spawn their producers directly"
    )]
    use super::*;
    use crate::testutil::Detached;

    fn marked(i: i32) -> UpdatesLike {
        UpdatesLike::Updates(tl::enums::Updates::UpdateShort(tl::types::UpdateShort {
            update: tl::enums::Update::Config,
            date: i,
        }))
    }

    fn mark(u: &UpdatesLike) -> Option<i32> {
        match u {
            UpdatesLike::Updates(tl::enums::Updates::UpdateShort(s)) => Some(s.date),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_that_keeps_up_gets_everything_in_order() {
        let (tx, rx) = mpsc::channel(UPDATES_BUFFER.get());
        // A backlog as large as the burst: nothing is cut.
        let mut out = relay(rx, 20_000, ConnectionHealth::default(), &Detached);
        let producer = tokio::spawn(async move {
            for i in 0..20_000 {
                // As grammers does: never wait, drop what does not fit.
                assert!(tx.try_send(marked(i)).is_ok(), "update {i} was dropped");
                if i % 500 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut next = 0;
        while next < 20_000 {
            let u = tokio::time::timeout(Duration::from_secs(5), out.recv())
                .await
                .unwrap_or_else(|_| panic!("stalled after {next}"))
                .unwrap();
            assert_eq!(mark(&u), Some(next));
            next += 1;
            if next % 1_000 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        producer.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_consumer_gets_too_long_then_the_newest() {
        let (tx, rx) = mpsc::channel(1_000);
        let mut out = relay(rx, 100, ConnectionHealth::default(), &Detached);
        for i in 0..1_000 {
            tx.send(marked(i)).await.unwrap();
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(u) = out.recv().await {
            got.push(u);
        }
        let too_long = got
            .iter()
            .position(|u| matches!(u, UpdatesLike::Updates(tl::enums::Updates::TooLong)))
            .unwrap();
        let marks: Vec<i32> = got.iter().filter_map(mark).collect();
        assert!(marks.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(marks.last(), Some(&999), "the newest arrives");
        assert!(got.len() < 1_000, "the backlog was cut");
        assert!(
            got[too_long + 1..].len() <= 100,
            "at most the backlog follows"
        );
    }
}
