//! The UDP loop: receive, answer, send, on one thread, with no allocation per packet beyond
//! what parsing needs.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::handler::{Outcome, Responder, Transport};
use super::rrl::Rrl;

/// How often a blocked receive wakes up to check for shutdown.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Serves `sock` until `stop` is set.
/// Replies go through `rrl`, when configured, before they are sent.
pub(super) fn serve(sock: UdpSocket, responder: &Responder, rrl: Option<&Rrl>, stop: &AtomicBool) {
    if let Err(e) = sock.set_read_timeout(Some(STOP_POLL)) {
        tracing::error!("udp socket: cannot set read timeout: {e}");
        return;
    }
    // Larger than any UDP DNS query we answer; anything longer is cut and fails to parse.
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // ICMP errors from earlier sends surface here on some systems; keep serving.
            Err(_) => continue,
        };
        if responder.respond(&buf[..len], src, Transport::Udp, &mut out) == Outcome::Reply
            && rrl.is_none_or(|r| r.admit(src.ip(), &mut out))
        {
            // A full send buffer or an unreachable client loses this reply only.
            let _ = sock.send_to(&out, src);
        }
    }
}
