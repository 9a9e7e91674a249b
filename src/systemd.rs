//! Telling systemd what the server is doing (`sd_notify(3)`), for a `Type=notify` unit:
//! `READY=1` once DNS is answered, `RELOADING=1` then `READY=1` around a reload,
//! `STOPPING=1` when shutting down. `STATUS=` says the same in words for `systemctl status`.
//!
//! Each call does nothing when `NOTIFY_SOCKET` is unset (not under systemd, or a unit of
//! another type), so the server and its in-process tests call them unconditionally. A
//! notification that cannot be sent is logged and otherwise ignored: serving matters more.

use std::net::SocketAddr;

use sd_notify::NotifyState;
use tracing::warn;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {e}");
    }
}

/// DNS is answered on `addrs`.
pub fn ready(addrs: &[SocketAddr]) {
    let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    let status = format!("serving DNS on {}", list.join(" "));
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// A reload starts. The monotonic time lets `Type=notify-reload` units match it to their
/// reload request.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload ended; `status` says how (the old data serves on when it failed).
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown started.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}
