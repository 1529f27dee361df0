//! The MTProto data center: TCP listener, `full` transport framing, MTProto 2.0 envelopes,
//! service messages (containers, gzip, acks, pings, salts) and the per-connection push channel.
//! RPC bodies are handed to [`crate::rpc`].

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::crypto;
use crate::rpc;
use crate::state::Shared;

const MSG_CONTAINER: u32 = 0x73f1f8dc;
const GZIP_PACKED: u32 = 0x3072cfa1;
const MSGS_ACK: u32 = 0x62d6b459;
const PING: u32 = 0x7abe77ec;
const PING_DELAY_DISCONNECT: u32 = 0xf3427b8c;
const PONG: u32 = 0x347773c5;
const GET_FUTURE_SALTS: u32 = 0xb921bd04;
const FUTURE_SALTS: u32 = 0xae500895;
const NEW_SESSION_CREATED: u32 = 0x9ec20908;
const RPC_RESULT: u32 = 0xf35c6d01;
const RPC_ERROR: u32 = 0x2144ca19;
const RPC_DROP_ANSWER: u32 = 0x58e4a740;
const DESTROY_SESSION: u32 = 0xe7512126;
const MSGS_STATE_REQ: u32 = 0xda69fb52;
const HTTP_WAIT: u32 = 0x9299359f;

/// Largest frame accepted from a client (grammers sends ≤ 1 MiB parts).
const MAX_FRAME: usize = 4 * 1024 * 1024;
/// Results larger than this are gzip-compressed, like Telegram does.
const GZIP_THRESHOLD: usize = 16 * 1024;

/// What the connection writer should send.
#[derive(Debug)]
pub(crate) enum Out {
    /// A message body; `content` = content-related (odd seq_no); `response` = answers a request.
    Body {
        body: Vec<u8>,
        content: bool,
        response: bool,
    },
}

/// Accepts connections until cancelled.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let cancel = shared.cancel.clone();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            acc = listener.accept() => match acc {
                Ok((stream, peer)) => {
                    debug!(%peer, "mtproto connection");
                    let s = shared.clone();
                    shared.tasks.spawn(async move { run_connection(stream, s).await });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Per-connection state used by request handlers.
pub(crate) struct ConnCtx {
    /// Auth key id.
    pub key_id: u64,
    /// Writer channel.
    pub tx: mpsc::UnboundedSender<Out>,
    /// Layer from invokeWithLayer.
    pub layer: i32,
    /// api_id from initConnection.
    pub api_id: i32,
    /// Device model from initConnection.
    pub device: String,
    /// Closes this connection.
    pub drop: CancellationToken,
}

fn crc(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

async fn read_frame(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    expected_seq: &mut i32,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut len_buf = [0u8; 4];
    match rd.read_exact(&mut len_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_le_bytes(len_buf);
    if len < 12 || len as usize > MAX_FRAME {
        return Err(std::io::Error::other(format!("bad frame length {len}")));
    }
    let mut rest = vec![0u8; len as usize - 4];
    rd.read_exact(&mut rest).await?;
    let body_end = rest.len() - 4;
    let mut whole = Vec::with_capacity(len as usize);
    whole.extend_from_slice(&len_buf);
    whole.extend_from_slice(&rest[..body_end]);
    let got_crc = u32::from_le_bytes([
        rest[body_end],
        rest[body_end + 1],
        rest[body_end + 2],
        rest[body_end + 3],
    ]);
    if crc(&whole) != got_crc {
        return Err(std::io::Error::other("bad crc"));
    }
    let seq = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    if seq != *expected_seq {
        return Err(std::io::Error::other("bad transport seq"));
    }
    *expected_seq += 1;
    Ok(Some(rest[4..body_end].to_vec()))
}

/// Bytes gathered from queued packets before one write.
const MAX_WRITE: usize = 64 * 1024;

fn frame(seq: i32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() + 12) as i32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let c = crc(&out);
    out.extend_from_slice(&c.to_le_bytes());
    out
}

struct Envelope {
    session_id: u64,
    msg_id: u64,
    body: Vec<u8>,
}

fn parse_plain(plain: &[u8]) -> Option<Envelope> {
    if plain.len() < 32 {
        return None;
    }
    let session_id = u64::from_le_bytes(plain[8..16].try_into().ok()?);
    let msg_id = u64::from_le_bytes(plain[16..24].try_into().ok()?);
    let len = u32::from_le_bytes(plain[28..32].try_into().ok()?) as usize;
    if 32 + len > plain.len() {
        return None;
    }
    Some(Envelope {
        session_id,
        msg_id,
        body: plain[32..32 + len].to_vec(),
    })
}

fn unix_now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// Server-side msg_id/seq_no generator for one connection.
struct Sequencer {
    last_msg_id: u64,
    content_count: i32,
}

impl Sequencer {
    fn msg_id(&mut self, response: bool) -> u64 {
        let (secs, nanos) = unix_now();
        let kind = if response { 1 } else { 3 };
        let mut id = ((secs << 32) | ((nanos as u64) << 2)) & !3 | kind;
        if id <= self.last_msg_id {
            id = ((self.last_msg_id & !3) + 4) | kind;
        }
        self.last_msg_id = id;
        id
    }

    fn seq_no(&mut self, content: bool) -> i32 {
        if content {
            self.content_count += 1;
            self.content_count * 2 - 1
        } else {
            self.content_count * 2
        }
    }
}

/// Serializes a TL `bytes` value.
pub(crate) fn tl_bytes(out: &mut Vec<u8>, data: &[u8]) {
    if data.len() < 254 {
        out.push(data.len() as u8);
        out.extend_from_slice(data);
        let pad = (4 - (data.len() + 1) % 4) % 4;
        out.extend(std::iter::repeat_n(0u8, pad));
    } else {
        out.push(254);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes()[..3]);
        out.extend_from_slice(data);
        let pad = (4 - data.len() % 4) % 4;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
}

fn read_tl_bytes(data: &[u8]) -> Option<Vec<u8>> {
    let first = *data.first()? as usize;
    if first < 254 {
        data.get(1..1 + first).map(<[u8]>::to_vec)
    } else {
        let len = u32::from_le_bytes([*data.get(1)?, *data.get(2)?, *data.get(3)?, 0]) as usize;
        data.get(4..4 + len).map(<[u8]>::to_vec)
    }
}

fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// `rpc_result` around a result body (gzip-packed when large).
pub(crate) fn rpc_result(req_msg_id: u64, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(result.len() + 12);
    out.extend_from_slice(&RPC_RESULT.to_le_bytes());
    out.extend_from_slice(&req_msg_id.to_le_bytes());
    if result.len() > GZIP_THRESHOLD
        && let Some(z) = gzip(result)
        && z.len() + 8 < result.len()
    {
        out.extend_from_slice(&GZIP_PACKED.to_le_bytes());
        tl_bytes(&mut out, &z);
        return out;
    }
    out.extend_from_slice(result);
    out
}

/// `rpc_result` carrying an `rpc_error`.
pub(crate) fn rpc_error(req_msg_id: u64, code: i32, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&RPC_RESULT.to_le_bytes());
    out.extend_from_slice(&req_msg_id.to_le_bytes());
    out.extend_from_slice(&RPC_ERROR.to_le_bytes());
    out.extend_from_slice(&code.to_le_bytes());
    tl_bytes(&mut out, message.as_bytes());
    out
}

async fn run_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut in_seq = 0i32;

    // The first packet decides the auth key of this connection.
    let first = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        f = read_frame(&mut rd, &mut in_seq) => f,
    };
    let Ok(Some(first)) = first else { return };
    if first.len() < 8 {
        return;
    }
    let key_id = u64::from_le_bytes(first[..8].try_into().unwrap_or_default());
    if key_id == 0 {
        info!("plain (DH) message received; key exchange is not supported, closing");
        return;
    }
    let Some(key) = shared.key_bytes(key_id) else {
        info!(key_id, "unknown auth key, closing connection");
        return;
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let drop_token = shared.cancel.child_token();
    let conn_id = shared.register_connection(key_id, tx.clone(), drop_token.clone());
    let session = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server_salt: u64 = rand::random();

    // Writer: encrypts and frames everything sent to the client.
    let writer_session = session.clone();
    let writer_drop = drop_token.clone();
    let writer = async move {
        let mut seq = Sequencer {
            last_msg_id: 0,
            content_count: 0,
        };
        let mut out_seq = 0i32;
        // What is already queued goes out in one write (as Telegram's servers pack updates
        // into few segments), so a burst costs one system call per batch, not per update.
        let mut out = Vec::new();
        loop {
            let item = tokio::select! {
                _ = writer_drop.cancelled() => break,
                item = rx.recv() => item,
            };
            let Some(mut item) = item else { break };
            out.clear();
            loop {
                let Out::Body {
                    body,
                    content,
                    response,
                } = item;
                let mut plain = Vec::with_capacity(body.len() + 32);
                plain.extend_from_slice(&server_salt.to_le_bytes());
                plain.extend_from_slice(
                    &writer_session
                        .load(std::sync::atomic::Ordering::SeqCst)
                        .to_le_bytes(),
                );
                plain.extend_from_slice(&seq.msg_id(response).to_le_bytes());
                plain.extend_from_slice(&seq.seq_no(content).to_le_bytes());
                plain.extend_from_slice(&(body.len() as u32).to_le_bytes());
                plain.extend_from_slice(&body);
                let packet = crypto::encrypt_to_client(&key, key_id, &plain);
                out.extend_from_slice(&frame(out_seq, &packet));
                out_seq += 1;
                if out.len() >= MAX_WRITE {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => item = next,
                    Err(_) => break,
                }
            }
            if wr.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };

    let reader_shared = shared.clone();
    let reader_drop = drop_token.clone();
    let reader_tx = tx.clone();
    let reader = async move {
        let mut ctx = ConnCtx {
            key_id,
            tx: reader_tx,
            layer: 0,
            api_id: 0,
            device: String::new(),
            drop: reader_drop.clone(),
        };
        let mut session_known = false;
        let mut packet = Some(first);
        loop {
            let p = match packet.take() {
                Some(p) => p,
                None => {
                    let f = tokio::select! {
                        _ = reader_drop.cancelled() => break,
                        f = read_frame(&mut rd, &mut in_seq) => f,
                    };
                    match f {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            debug!(error = %e, "mtproto read failed");
                            break;
                        }
                    }
                }
            };
            if p.len() < 8 || p[..8] != key_id.to_le_bytes() {
                break;
            }
            let plain = match crypto::decrypt_from_client(&key, &p) {
                Ok(pl) => pl,
                Err(e) => {
                    warn!(error = %e, "undecryptable packet, closing");
                    break;
                }
            };
            let Some(env) = parse_plain(&plain) else {
                break;
            };
            let old = session.swap(env.session_id, std::sync::atomic::Ordering::SeqCst);
            if !session_known || old != env.session_id {
                session_known = true;
                let mut b = Vec::new();
                b.extend_from_slice(&NEW_SESSION_CREATED.to_le_bytes());
                b.extend_from_slice(&env.msg_id.to_le_bytes());
                b.extend_from_slice(&rand::random::<u64>().to_le_bytes());
                b.extend_from_slice(&server_salt.to_le_bytes());
                let _ = ctx.tx.send(Out::Body {
                    body: b,
                    content: true,
                    response: false,
                });
            }
            process_message(&reader_shared, &mut ctx, env.msg_id, env.body, 0).await;
        }
    };

    tokio::select! {
        _ = writer => {},
        _ = reader => {},
    }
    drop_token.cancel();
    shared.unregister_connection(conn_id);
}

fn process_message<'a>(
    shared: &'a Arc<Shared>,
    ctx: &'a mut ConnCtx,
    msg_id: u64,
    body: Vec<u8>,
    depth: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        if body.len() < 4 || depth > 4 {
            return;
        }
        let id = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        match id {
            MSG_CONTAINER if body.len() >= 8 => {
                let mut pos = 8usize;
                let count = u32::from_le_bytes(body[4..8].try_into().unwrap_or_default());
                for _ in 0..count {
                    if pos + 16 > body.len() {
                        break;
                    }
                    let inner_id =
                        u64::from_le_bytes(body[pos..pos + 8].try_into().unwrap_or_default());
                    let len =
                        u32::from_le_bytes(body[pos + 12..pos + 16].try_into().unwrap_or_default())
                            as usize;
                    pos += 16;
                    if pos + len > body.len() {
                        break;
                    }
                    let inner = body[pos..pos + len].to_vec();
                    pos += len;
                    process_message(shared, ctx, inner_id, inner, depth + 1).await;
                }
            }
            GZIP_PACKED => {
                if let Some(inner) = read_tl_bytes(&body[4..]).and_then(|z| gunzip(&z)) {
                    process_message(shared, ctx, msg_id, inner, depth + 1).await;
                }
            }
            MSGS_ACK | RPC_DROP_ANSWER | MSGS_STATE_REQ | HTTP_WAIT => {}
            DESTROY_SESSION => {}
            PING | PING_DELAY_DISCONNECT => {
                if body.len() >= 12 {
                    let mut b = Vec::new();
                    b.extend_from_slice(&PONG.to_le_bytes());
                    b.extend_from_slice(&msg_id.to_le_bytes());
                    b.extend_from_slice(&body[4..12]);
                    let _ = ctx.tx.send(Out::Body {
                        body: b,
                        content: false,
                        response: true,
                    });
                }
            }
            GET_FUTURE_SALTS => {
                let num = if body.len() >= 8 {
                    i32::from_le_bytes(body[4..8].try_into().unwrap_or_default()).clamp(2, 64)
                } else {
                    2
                };
                let (now, _) = unix_now();
                let now = now as i32;
                let mut b = Vec::new();
                b.extend_from_slice(&FUTURE_SALTS.to_le_bytes());
                b.extend_from_slice(&msg_id.to_le_bytes());
                b.extend_from_slice(&now.to_le_bytes());
                b.extend_from_slice(&num.to_le_bytes());
                for i in 0..num {
                    let since = now - 60 + i * 3600;
                    b.extend_from_slice(&since.to_le_bytes());
                    b.extend_from_slice(&(since + 3600 + 1800).to_le_bytes());
                    b.extend_from_slice(&rand::random::<u64>().to_le_bytes());
                }
                let _ = ctx.tx.send(Out::Body {
                    body: b,
                    content: false,
                    response: true,
                });
            }
            _ => {
                match rpc::handle(shared, ctx, msg_id, body).await {
                    Some(reply) => {
                        let _ = ctx.tx.send(Out::Body {
                            body: reply,
                            content: true,
                            response: true,
                        });
                    }
                    // A `lose_answer` fault: the connection closes instead.
                    None => ctx.drop.cancel(),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tl_bytes_round_trip() {
        for n in [0usize, 1, 3, 253, 254, 1000] {
            let data = vec![9u8; n];
            let mut out = Vec::new();
            tl_bytes(&mut out, &data);
            assert_eq!(out.len() % 4, 0);
            assert_eq!(read_tl_bytes(&out).unwrap(), data);
        }
    }

    #[test]
    fn sequencer_is_monotonic_and_tagged() {
        let mut s = Sequencer {
            last_msg_id: 0,
            content_count: 0,
        };
        let a = s.msg_id(true);
        let b = s.msg_id(false);
        assert!(b > a);
        assert_eq!(a % 4, 1);
        assert_eq!(b % 4, 3);
        assert_eq!(s.seq_no(true), 1);
        assert_eq!(s.seq_no(false), 2);
        assert_eq!(s.seq_no(true), 3);
    }
}
