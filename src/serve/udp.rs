//! The UDP loop of one thread on its own socket: receive a batch, answer each, send the
//! batch back, with one `recvmmsg` and one `sendmmsg` per batch and no allocation after
//! start.
//!
//! `recvmmsg` waits for the first packet (at most [`STOP_POLL`], so a stop is seen) and
//! then takes whatever else is queued, up to [`BATCH`]: under load a batch is full and the
//! system calls per query shrink; when quiet a batch is one packet and nothing waits.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::handler::{Outcome, Responder, Transport};
use super::rrl::Rrl;

/// How often a blocked receive wakes up to check for shutdown.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Packets per system call.
const BATCH: usize = 32;
/// Bytes kept of each query: larger than any query Meridian answers (a longer one is cut,
/// and the cut message gets FORMERR).
const QUERY_MAX: usize = 4096;

/// The buffers of one batch, allocated once per thread.
struct Batch {
    queries: Box<[[u8; QUERY_MAX]]>,
    peers: Box<[libc::sockaddr_storage]>,
    replies: Vec<Vec<u8>>,
    /// For each reply to send: its index in the batch.
    to_send: Vec<usize>,
}

impl Batch {
    fn new() -> Self {
        Self {
            queries: vec![[0u8; QUERY_MAX]; BATCH].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            peers: (0..BATCH)
                .map(|_| unsafe { zeroed::<libc::sockaddr_storage>() })
                .collect(),
            replies: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            to_send: Vec::with_capacity(BATCH),
        }
    }
}

/// Serves `sock` until `stop` is set.
/// Replies go through `rrl`, when configured, before they are sent.
pub(super) fn serve(sock: UdpSocket, responder: &Responder, rrl: Option<&Rrl>, stop: &AtomicBool) {
    if let Err(e) = sock.set_read_timeout(Some(STOP_POLL)) {
        tracing::error!("udp socket: cannot set read timeout: {e}");
        return;
    }
    let fd = sock.as_raw_fd();
    let mut batch = Batch::new();
    while !stop.load(Ordering::Relaxed) {
        let lens = match receive(fd, &mut batch) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            // ICMP errors from earlier sends surface here on some systems; keep serving.
            Err(_) => continue,
        };
        batch.to_send.clear();
        for (i, &len) in lens.iter().enumerate() {
            let Some(src) = socket_addr(&batch.peers[i]) else {
                continue;
            };
            let packet = &batch.queries[i][..len];
            let reply = &mut batch.replies[i];
            if responder.respond(packet, src, Transport::Udp, reply) == Outcome::Reply
                && rrl.is_none_or(|r| r.admit(src.ip(), reply))
            {
                batch.to_send.push(i);
            }
        }
        send(fd, &mut batch);
    }
}

/// Receives up to [`BATCH`] packets; their lengths (the packet is in `queries[i]`, its
/// source in `peers[i]`).
fn receive(fd: i32, batch: &mut Batch) -> io::Result<smallvec::SmallVec<[usize; BATCH]>> {
    let mut iov: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    // SAFETY: mmsghdr is plain data; all zeroes is a valid value, filled in below.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for i in 0..BATCH {
        iov[i].write(libc::iovec {
            iov_base: batch.queries[i].as_mut_ptr().cast(),
            iov_len: QUERY_MAX,
        });
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut batch.peers[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = iov[i].as_mut_ptr();
        h.msg_iovlen = 1;
    }
    // SAFETY: every header points at a live buffer of the stated size (the batch's, which
    // outlives the call) and at one initialised iovec; the count matches the array.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hdrs[..n as usize]
        .iter()
        .map(|h| (h.msg_len as usize).min(QUERY_MAX))
        .collect())
}

/// Sends the replies of `batch.to_send` to their peers, in as few calls as the kernel
/// allows. A reply the kernel refuses (a full buffer, an unreachable peer) is dropped: the
/// client asks again.
fn send(fd: i32, batch: &mut Batch) {
    let mut iov: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    // SAFETY: mmsghdr is plain data; all zeroes is a valid value, filled in below.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    let count = batch.to_send.len();
    for (k, &i) in batch.to_send.iter().enumerate() {
        let reply = &batch.replies[i];
        iov[k].write(libc::iovec {
            iov_base: reply.as_ptr().cast_mut().cast(),
            iov_len: reply.len(),
        });
        let h = &mut hdrs[k].msg_hdr;
        h.msg_name = (&raw mut batch.peers[i]).cast();
        h.msg_namelen = addr_len(&batch.peers[i]);
        h.msg_iov = iov[k].as_mut_ptr();
        h.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: headers `sent..count` point at live replies and peer addresses of the
        // batch and at initialised iovecs; the count is within the array.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs[sent..].as_mut_ptr(),
                (count - sent) as libc::c_uint,
                0,
            )
        };
        if n <= 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first unsent message failed: skip it, send the rest.
            sent += 1;
        } else {
            sent += n as usize;
        }
    }
}

fn addr_len(ss: &libc::sockaddr_storage) -> libc::socklen_t {
    match i32::from(ss.ss_family) {
        libc::AF_INET => size_of::<libc::sockaddr_in>() as libc::socklen_t,
        _ => size_of::<libc::sockaddr_in6>() as libc::socklen_t,
    }
}

/// The address the kernel wrote into `ss`.
fn socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it can hold.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in>()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
