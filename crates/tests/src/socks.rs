//! A SOCKS5 proxy on 127.0.0.1 for the tests of `telegram.proxy`: the protocol is fast-socks5's
//! server side; what it adds is what a test must see — every connection it carried (to which
//! target) and the bytes each way, authentication that can be required, host names only it can
//! resolve (so a client that resolves them itself fails), and a [`TestProxy::stop`] that takes
//! it down with every tunnel, like a proxy that died.

#![expect(
    clippy::disallowed_methods,
    reason = "the test proxy stands in for a server outside Switchboard: its tasks are its own, \
              not work of Switchboard's supervisor"
)]

use fast_socks5::server::Socks5ServerProtocol;
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    /// Each tunnel opened, by its target (as the client named it: `host:port`).
    tunnels: Mutex<Vec<String>>,
    /// Handshakes refused for wrong credentials.
    rejected: AtomicU64,
    /// Bytes from clients to targets, and back.
    up: AtomicU64,
    down: AtomicU64,
}

/// A running test proxy.
pub struct TestProxy {
    addr: SocketAddr,
    credentials: Option<(String, String)>,
    seen: Arc<Seen>,
    tasks: Mutex<Option<JoinSet<()>>>,
}

impl TestProxy {
    /// Starts a proxy on a free port of 127.0.0.1. With `credentials`, clients must
    /// authenticate with them (RFC 1929); `hosts` are the names it resolves (any other name
    /// is refused as unreachable).
    pub async fn start(
        credentials: Option<(&str, &str)>,
        hosts: &[(&str, std::net::IpAddr)],
    ) -> TestProxy {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("test proxy: {e}"),
        };
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
        let hosts: Arc<HashMap<String, std::net::IpAddr>> =
            Arc::new(hosts.iter().map(|(h, ip)| (h.to_string(), *ip)).collect());
        let seen = Arc::new(Seen::default());
        let mut tasks = JoinSet::new();
        {
            let (seen, credentials) = (Arc::clone(&seen), credentials.clone());
            tasks.spawn(async move {
                // The tunnels belong to the accept loop: aborting the loop drops this set,
                // which aborts every tunnel with it.
                let mut tunnels = JoinSet::new();
                while let Ok((socket, _)) = listener.accept().await {
                    let (seen, credentials, hosts) =
                        (Arc::clone(&seen), credentials.clone(), Arc::clone(&hosts));
                    tunnels.spawn(async move {
                        let _ = serve(socket, credentials, &hosts, &seen).await;
                    });
                    while tunnels.try_join_next().is_some() {}
                }
            });
        }
        TestProxy {
            addr,
            credentials,
            seen,
            tasks: Mutex::new(Some(tasks)),
        }
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `socks5://[user:password@]127.0.0.1:port`, with its own credentials.
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((u, p)) => self.url_with(u, p),
            None => format!("socks5://{}", self.addr),
        }
    }

    /// Its URL with other credentials.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("socks5://{user}:{password}@{}", self.addr)
    }

    /// Tunnels opened to targets whose port is `port`.
    pub fn tunnels_to_port(&self, port: u16) -> u64 {
        let suffix = format!(":{port}");
        self.tunnels()
            .iter()
            .filter(|t| t.ends_with(&suffix))
            .count() as u64
    }

    /// Every tunnel's target, in order.
    pub fn tunnels(&self) -> Vec<String> {
        self.seen
            .tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Handshakes refused for wrong credentials.
    pub fn rejected(&self) -> u64 {
        self.seen.rejected.load(Ordering::Relaxed)
    }

    /// Bytes carried from clients to targets, and from targets to clients.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.seen.up.load(Ordering::Relaxed),
            self.seen.down.load(Ordering::Relaxed),
        )
    }

    /// Takes the proxy down: the port closes and every tunnel is cut.
    pub async fn stop(&self) {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut tasks) = tasks {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tasks) = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            tasks.abort_all();
        }
    }
}

async fn serve(
    socket: TcpStream,
    credentials: Option<(String, String)>,
    hosts: &HashMap<String, std::net::IpAddr>,
    seen: &Seen,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let proto = match &credentials {
        None => Socks5ServerProtocol::accept_no_auth(socket).await?,
        Some((user, password)) => {
            match Socks5ServerProtocol::accept_password_auth(socket, |u, p| {
                u == *user && p == *password
            })
            .await
            {
                Ok((proto, _)) => proto,
                Err(e) => {
                    seen.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(e.into());
                }
            }
        }
    };
    let (proto, command, target) = proto.read_command().await?;
    if command != Socks5Command::TCPConnect {
        proto.reply_error(&ReplyError::CommandNotSupported).await?;
        return Ok(());
    }
    let (named, addr) = match &target {
        TargetAddr::Ip(addr) => (addr.to_string(), Some(*addr)),
        TargetAddr::Domain(host, port) => (
            format!("{host}:{port}"),
            hosts.get(host).map(|ip| SocketAddr::new(*ip, *port)),
        ),
    };
    let Some(addr) = addr else {
        proto.reply_error(&ReplyError::HostUnreachable).await?;
        return Ok(());
    };
    let upstream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(_) => {
            proto.reply_error(&ReplyError::ConnectionRefused).await?;
            return Ok(());
        }
    };
    seen.tunnels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(named);
    let bound = upstream.local_addr()?;
    let mut client = proto.reply_success(bound).await?;
    let mut upstream = upstream;
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    // Counted as it flows, so a test sees the bytes of tunnels that are still open.
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let up = pump(&mut cr, &mut uw, &seen.up);
    let down = pump(&mut ur, &mut cw, &seen.down);
    let _ = tokio::try_join!(up, down);
    Ok(())
}

async fn pump<R, W>(from: &mut R, to: &mut W, count: &AtomicU64) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}
