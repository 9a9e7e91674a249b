//! One XDP socket on one queue of one interface: its UMEM (frames shared with the kernel)
//! and its four rings, and the loop that answers what arrives.
//!
//! Frames go round: the fill ring gives the kernel empty frames, the RX ring hands back
//! frames holding queries, each reply is written into the frame its query came in and put
//! on the TX ring, and the completion ring returns sent frames, which go back to the fill
//! ring. A frame that gets no reply goes back to the fill ring at once. No allocation and
//! no system call per packet: one `poll` while idle, one `sendto` to kick transmission per
//! batch.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::frame;
use crate::serve::rrl::Rrl;
use crate::serve::{Outcome, Responder, Transport};

/// Frames in the UMEM, and entries in each ring.
const FRAMES: u32 = 4096;
const FRAME_SIZE: u32 = 4096;
/// How long an idle `poll` waits before looking at the stop flag.
const POLL_MS: i32 = 200;
/// Most packets taken from the RX ring at once.
const BATCH: u32 = 64;
/// How often the kernel's drop counts are read into the metrics.
const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the kernel dropped on one socket, by reason, from its cumulative counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Drops {
    /// The RX ring was full: we fell behind.
    pub(super) ring_full: u64,
    /// The fill ring had no frame to receive into.
    pub(super) no_frame: u64,
    /// Anything else: oversized frames, bad descriptors.
    pub(super) other: u64,
}

impl Drops {
    fn of(s: &libc::xdp_statistics) -> Self {
        // A packet dropped for want of a frame is counted in `rx_dropped` too.
        Self {
            ring_full: s.rx_ring_full,
            no_frame: s.rx_fill_ring_empty_descs,
            other: s.rx_dropped.saturating_sub(s.rx_fill_ring_empty_descs)
                + s.rx_invalid_descs
                + s.tx_invalid_descs,
        }
    }

    /// All of them.
    pub(super) fn total(&self) -> u64 {
        self.ring_full + self.no_frame + self.other
    }
}

/// A mapping released on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: Option<i32>, len: usize, offset: u64) -> io::Result<Self> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping; the kernel picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One ring shared with the kernel: producer and consumer indices and `FRAMES` entries of
/// `T` (a frame address for fill and completion, a descriptor for RX and TX).
struct Ring<T> {
    _map: Mapping,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    entries: *mut T,
    /// Our copy of the index we advance (producer for fill/TX, consumer for RX/completion).
    local: u32,
}

impl<T: Copy> Ring<T> {
    fn new(fd: i32, off: &libc::xdp_ring_offset, pgoff: u64) -> io::Result<Self> {
        let len = off.desc as usize + FRAMES as usize * size_of::<T>();
        let map = Mapping::new(Some(fd), len, pgoff)?;
        let base = map.ptr.as_ptr();
        // SAFETY: the offsets are the kernel's, inside the mapping of `len` bytes.
        let (producer, consumer, entries) = unsafe {
            (
                base.add(off.producer as usize).cast::<AtomicU32>(),
                base.add(off.consumer as usize).cast::<AtomicU32>(),
                base.add(off.desc as usize).cast::<T>(),
            )
        };
        let mut r = Self {
            _map: map,
            producer,
            consumer,
            entries,
            local: 0,
        };
        // SAFETY: the indices live in the mapping.
        r.local = unsafe { (*r.producer).load(Ordering::Relaxed) };
        Ok(r)
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, which the kernel updates atomically.
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }

    fn slot(&self, i: u32) -> *mut T {
        // SAFETY: masked into the ring's FRAMES entries.
        unsafe { self.entries.add((i & (FRAMES - 1)) as usize) }
    }

    /// For rings we produce into (fill, TX): room for how many more.
    fn room(&self) -> u32 {
        FRAMES - self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }

    /// Puts one entry (the caller checked `room`); visible to the kernel after `submit`.
    fn push(&mut self, v: T) {
        // SAFETY: the slot is ours until the producer index passes it.
        unsafe { self.slot(self.local).write(v) };
        self.local = self.local.wrapping_add(1);
    }

    fn submit(&self) {
        self.prod().store(self.local, Ordering::Release);
    }

    /// For rings we produce into: entries the kernel has not taken yet.
    fn waiting(&self) -> u32 {
        self.local.wrapping_sub(self.cons().load(Ordering::Acquire))
    }

    /// For rings we consume from (RX, completion): the entries ready, at most `max`.
    fn ready(&mut self, max: u32) -> u32 {
        self.local = self.cons().load(Ordering::Relaxed);
        self.prod()
            .load(Ordering::Acquire)
            .wrapping_sub(self.local)
            .min(max)
    }

    fn peek(&self, k: u32) -> T {
        // SAFETY: an entry the kernel has produced and we have not released.
        unsafe { self.slot(self.local.wrapping_add(k)).read() }
    }

    fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.cons().store(self.local, Ordering::Release);
    }
}

/// An XDP socket bound to one queue, with its UMEM and rings.
pub(super) struct Xsk {
    fd: OwnedFd,
    umem: Mapping,
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
}

// SAFETY: the raw pointers are into mappings this value owns; one thread uses it.
unsafe impl Send for Xsk {}

fn setsockopt<T>(fd: i32, opt: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            std::ptr::from_ref(v).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads socket option `opt` of level SOL_XDP, a `T` the kernel fills.
fn getsockopt<T>(fd: i32, opt: i32) -> io::Result<T> {
    // SAFETY: all-zero is a valid value of the plain C structs this reads.
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is large enough for what `len` says.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_XDP, opt, (&raw mut v).cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

impl Xsk {
    /// A socket on queue `queue` of `ifindex`, with every frame given to the kernel.
    pub(super) fn new(ifindex: u32, queue: u32) -> io::Result<Self> {
        // SAFETY: a plain socket call.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();
        let umem = Mapping::new(None, (FRAMES * FRAME_SIZE) as usize, 0)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: u64::from(FRAMES * FRAME_SIZE),
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg)?;
        for opt in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            setsockopt(raw, opt, &FRAMES)?;
        }
        let off: libc::xdp_mmap_offsets = getsockopt(raw, libc::XDP_MMAP_OFFSETS)?;
        let mut fill = Ring::new(raw, &off.fr, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::new(raw, &off.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = Ring::new(raw, &off.rx, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::new(raw, &off.tx, libc::XDP_PGOFF_TX_RING as u64)?;
        for i in 0..FRAMES {
            fill.push(u64::from(i * FRAME_SIZE));
        }
        fill.submit();
        // Zero-copy where the driver has it, copy mode otherwise (flags 0 lets the kernel
        // choose).
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: 0,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: a valid sockaddr_xdp of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            umem,
            fill,
            comp,
            rx,
            tx,
        })
    }

    /// What the kernel has dropped on this socket so far.
    pub(super) fn drops(&self) -> io::Result<Drops> {
        let stats: libc::xdp_statistics = getsockopt(self.raw_fd(), libc::XDP_STATISTICS)?;
        Ok(Drops::of(&stats))
    }

    /// Adds to `counters` (ring_full, no_frame, other) what the kernel dropped since
    /// `last`, which becomes the current counts.
    fn count_drops(&self, last: &mut Drops, counters: &[prometheus::IntCounter; 3]) {
        let Ok(now) = self.drops() else { return };
        for (c, (now, before)) in counters.iter().zip([
            (now.ring_full, last.ring_full),
            (now.no_frame, last.no_frame),
            (now.other, last.other),
        ]) {
            c.inc_by(now.saturating_sub(before));
        }
        *last = now;
    }

    /// The socket's descriptor, for the XSKMAP.
    pub(super) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Answers until `stop` is set: queries for UDP `port` through `responder` (and `rrl`),
    /// counting replies sent in `answered`.
    pub(super) fn serve(
        &mut self,
        port: u16,
        responder: &Responder,
        rrl: Option<&Rrl>,
        stop: &AtomicBool,
        answered: &prometheus::IntCounter,
        dropped: &[prometheus::IntCounter; 3],
    ) {
        let mut reply = Vec::with_capacity(FRAME_SIZE as usize);
        let (mut last, mut next_stats) = (Drops::default(), std::time::Instant::now());
        while !stop.load(Ordering::Relaxed) {
            // One system call a second, not per packet.
            let now = std::time::Instant::now();
            if now >= next_stats {
                self.count_drops(&mut last, dropped);
                next_stats = now + STATS_EVERY;
            }
            self.recycle();
            let n = self.rx.ready(BATCH.min(self.tx.room()));
            if n == 0 && self.tx.waiting() > 0 {
                self.kick();
            }
            if n == 0 {
                let mut p = libc::pollfd {
                    fd: self.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, POLL_MS) };
                continue;
            }
            let mut sent = 0;
            for k in 0..n {
                let d = self.rx.peek(k);
                let start = d.addr as usize;
                let chunk_end = (d.addr / u64::from(FRAME_SIZE) + 1) as usize * FRAME_SIZE as usize;
                // SAFETY: the frame is inside the UMEM and ours until it goes back to a ring.
                let buf = unsafe {
                    std::slice::from_raw_parts_mut(
                        self.umem.ptr.as_ptr().add(start),
                        chunk_end - start,
                    )
                };
                let len = (d.len as usize).min(buf.len());
                let answered = frame::parse(&buf[..len], port).and_then(|q| {
                    let dns = &buf[q.offset..q.offset + q.len];
                    let out = responder.respond(dns, q.src, Transport::Udp, &mut reply);
                    (out == Outcome::Reply && rrl.is_none_or(|r| r.admit(q.src.ip(), &mut reply)))
                        .then_some(q)
                        .and_then(|q| frame::reply(buf, &q, &reply))
                });
                match answered {
                    Some(len) => {
                        self.tx.push(libc::xdp_desc {
                            addr: d.addr,
                            len: len as u32,
                            options: 0,
                        });
                        sent += 1;
                    }
                    None => {
                        self.fill.push(d.addr);
                    }
                }
            }
            self.rx.release(n);
            self.fill.submit();
            if sent > 0 {
                self.tx.submit();
                answered.inc_by(sent);
                self.kick();
            }
        }
        self.count_drops(&mut last, dropped);
    }

    /// Asks the kernel to send what the TX ring holds. In copy mode each call sends a
    /// small batch (the kernel's own limit, 32 frames or so), so it is asked again while
    /// that makes progress; what is left waits for the next round.
    fn kick(&mut self) {
        let mut waiting = self.tx.waiting();
        while waiting > 0 {
            // SAFETY: a zero-length send on our socket.
            unsafe {
                libc::sendto(
                    self.raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            let now = self.tx.waiting();
            if now >= waiting {
                return;
            }
            waiting = now;
        }
    }

    /// Frames the kernel has sent go back to the fill ring.
    fn recycle(&mut self) {
        let n = self.comp.ready(FRAMES);
        if n == 0 {
            return;
        }
        for k in 0..n {
            let addr = self.comp.peek(k);
            // Back to the start of its frame: received data begins after headroom.
            self.fill.push(addr - addr % u64::from(FRAME_SIZE));
        }
        self.comp.release(n);
        self.fill.submit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_for_want_of_a_frame_is_counted_once() {
        // The kernel counts such a drop in `rx_dropped` and in the fill ring's count.
        let s = libc::xdp_statistics {
            rx_dropped: 7,
            rx_invalid_descs: 1,
            tx_invalid_descs: 0,
            rx_ring_full: 3,
            rx_fill_ring_empty_descs: 5,
            tx_ring_empty_descs: 9,
        };
        let d = Drops::of(&s);
        assert_eq!(
            d,
            Drops {
                ring_full: 3,
                no_frame: 5,
                other: 3
            }
        );
        assert_eq!(d.total(), 11);
    }
}
