//! DNS over TCP (RFC 7766): length-prefixed messages, several per connection, answered in
//! order. A connection that sends nothing for `idle_timeout`, or takes longer than
//! `message_timeout` to finish a message it started, is closed; at most `max_connections`
//! are served at once, so slow or silent clients cannot exhaust the server.
//!
//! Shutdown has two steps. `drain`: the listener closes (new connections are refused), a
//! connection waiting between messages closes, and one that has sent some of a message
//! gets its answer (and those of any further messages already received), then closes.
//! `close`: whatever is still open closes now; the caller fires it when the drain has
//! taken too long.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::handler::{Outcome, Responder, Transport};
use crate::config::TcpConfig;

/// The two steps of stopping TCP (see the module docs).
#[derive(Clone, Default)]
pub(super) struct Stop {
    /// Stop accepting; let connections finish the messages they have started.
    pub(super) drain: CancellationToken,
    /// Close every connection now.
    pub(super) close: CancellationToken,
}

/// Accepts connections until `stop.drain` fires, then returns once every connection has
/// ended.
pub(super) async fn serve(
    listener: TcpListener,
    responder: Arc<Responder>,
    config: TcpConfig,
    stop: Stop,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            _ = stop.drain.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // At the cap: refuse this one now rather than let it wait and pile up.
            drop(stream);
            continue;
        };
        let responder = responder.clone();
        let config = config.clone();
        let stop = stop.clone();
        let open = crate::metrics::events::events().tcp_connection();
        tokio::spawn(async move {
            let _open = open;
            tokio::select! {
                _ = stop.close.cancelled() => {}
                _ = connection(stream, &responder, &config, &stop.drain) => {}
            }
            drop(permit);
        });
    }
    // Closing the listening socket: connects are refused from here on.
    drop(listener);
    // Every connection holds a permit until it ends: having them all back means all ended.
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn connection(
    mut stream: TcpStream,
    responder: &Responder,
    config: &TcpConfig,
    drain: &CancellationToken,
) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    let mut frame = Vec::with_capacity(4096 + 2);
    loop {
        // Wait for the next message's length, at most the idle timeout.
        let mut len = [0u8; 2];
        let first = tokio::select! {
            // The read first: bytes already here are a message started before the drain.
            biased;
            r = timeout(config.idle_timeout, stream.read_exact(&mut len[..1])) => r,
            _ = drain.cancelled() => return,
        };
        match first {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let rest = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            msg.resize(n, 0);
            stream.read_exact(&mut msg).await?;
            Ok::<(), std::io::Error>(())
        };
        match timeout(config.message_timeout, rest).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        if responder.respond(&msg, peer, Transport::Tcp, &mut out) != Outcome::Reply {
            continue;
        }
        let Ok(n) = u16::try_from(out.len()) else {
            return;
        };
        // Length and message in one write: one segment, one system call.
        frame.clear();
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(&out);
        let write = stream.write_all(&frame);
        // A client that does not read its answers is as stuck as one that does not write.
        match timeout(config.message_timeout, write).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
