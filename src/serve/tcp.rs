//! DNS over TCP (RFC 7766): length-prefixed messages, several per connection, answered in
//! order. A connection that sends nothing for `idle_timeout`, or takes longer than
//! `message_timeout` to finish a message it started, is closed; at most `max_connections`
//! are served at once, so slow or silent clients cannot exhaust the server.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::handler::{Outcome, Responder, Transport};
use crate::config::TcpConfig;

/// Accepts connections until `cancel` fires.
pub(super) async fn serve(
    listener: TcpListener,
    responder: Arc<Responder>,
    config: TcpConfig,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
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
        let cancel = cancel.clone();
        let open = crate::metrics::events::events().tcp_connection();
        tokio::spawn(async move {
            let _open = open;
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = connection(stream, &responder, &config) => {}
            }
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, responder: &Responder, config: &TcpConfig) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    loop {
        // Wait for the next message's length, at most the idle timeout.
        let mut len = [0u8; 2];
        match timeout(config.idle_timeout, stream.read_exact(&mut len[..1])).await {
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
        let write = async {
            stream.write_all(&n.to_be_bytes()).await?;
            stream.write_all(&out).await
        };
        // A client that does not read its answers is as stuck as one that does not write.
        match timeout(config.message_timeout, write).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
