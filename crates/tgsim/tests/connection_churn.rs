//! Regression test: reading the counters while MTProto connections close must never deadlock.
//! `unregister_connection` used to hold the connection table's lock while taking the per-key
//! counters' lock, and `counters()` took them in the opposite order; a test polling
//! `counters()` (e.g. waiting for every connection to close) while a client disconnected could
//! then stop the simulator for good, with idle CPU (the "login tests hang" of issue 4).
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A transport frame (`full` transport, seq 0) carrying a packet for `key_id` that does not
/// decrypt: tgsim registers the connection, then closes it.
fn undecryptable_frame(key_id: u64) -> Vec<u8> {
    let mut payload = key_id.to_le_bytes().to_vec();
    payload.extend_from_slice(&[7u8; 16 + 48]);
    let len = i32::try_from(payload.len() + 12).unwrap();
    let mut frame = len.to_le_bytes().to_vec();
    frame.extend_from_slice(&0i32.to_le_bytes());
    frame.extend_from_slice(&payload);
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

async fn churn(sim: tgsim::Handle, frame: Arc<Vec<u8>>, rounds: usize) {
    for _ in 0..rounds {
        let mut s = tokio::net::TcpStream::connect(sim.mtproto_addr())
            .await
            .unwrap();
        s.write_all(&frame).await.unwrap();
        let mut buf = [0u8; 64];
        // tgsim closes the connection after the packet fails to decrypt.
        while s.read(&mut buf).await.unwrap_or(0) > 0 {}
    }
}

#[test]
fn counters_read_while_connections_close_never_deadlock() {
    const TASKS: usize = 8;
    const ROUNDS: usize = 150;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // The runtime lives on its own thread: if the simulator deadlocks, its worker threads block
    // and only a thread outside it can notice.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sim = tgsim::start(tgsim::Config::default()).await.unwrap();
            let key = sim.issue_auth_key();
            let digest = Sha1::digest(key);
            let key_id = u64::from_le_bytes(digest[12..20].try_into().unwrap());
            let frame = Arc::new(undecryptable_frame(key_id));
            let stop = Arc::new(AtomicBool::new(false));
            let pollers: Vec<_> = (0..2)
                .map(|_| {
                    let (sim, stop) = (sim.clone(), Arc::clone(&stop));
                    tokio::task::spawn_blocking(move || {
                        let mut reads = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let _ = sim.counters();
                            reads += 1;
                        }
                        reads
                    })
                })
                .collect();
            let clients: Vec<_> = (0..TASKS)
                .map(|_| tokio::spawn(churn(sim.clone(), Arc::clone(&frame), ROUNDS)))
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            for p in pollers {
                assert!(p.await.unwrap() > 0);
            }
            let mut counters = sim.counters();
            for _ in 0..100 {
                if counters.connections_open == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                counters = sim.counters();
            }
            assert_eq!(counters.connections_open, 0, "{counters:?}");
            assert_eq!(counters.connections_total, (TASKS * ROUNDS) as u64);
            sim.shutdown().await;
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(90))
        .expect("tgsim stopped making progress: counters() and closing connections deadlocked");
}
