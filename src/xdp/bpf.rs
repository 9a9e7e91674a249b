//! The XDP program that steers DNS queries to our sockets, and the bpf(2) calls that load
//! and attach it, made directly: the program is a few dozen instructions, written here
//! as instructions, so no C or eBPF toolchain is needed to build Meridian.
//!
//! The program passes everything to the kernel except UDP to our port over IPv4 without
//! options and unfragmented, or over IPv6 with UDP as the first next header, with up to
//! two VLAN tags before them (802.1Q, 802.1ad); those it
//! redirects to the XDP socket of the queue it arrived on (`bpf_redirect_map` into an
//! XSKMAP, falling back to the kernel when that queue has no socket). It is attached by a
//! BPF link, which the kernel removes when the process ends, however it ends: a crashed
//! server leaves no program behind, and a new one never stacks on an old one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// bpf(2) commands.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_PROG_LOAD: u32 = 5;
const BPF_LINK_CREATE: u32 = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_PASS: i32 = 2;
/// The `bpf_redirect_map` helper.
const HELPER_REDIRECT_MAP: i32 = 51;

/// The attribute block of one bpf(2) call: fields at their offsets in `union bpf_attr`.
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Self([0; 128])
    }
    fn u32(mut self, at: usize, v: u32) -> Self {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, at: usize, v: u64) -> Self {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn bytes(mut self, at: usize, v: &[u8]) -> Self {
        self.0[at..at + v.len()].copy_from_slice(v);
        self
    }
    fn call(mut self, cmd: u32) -> io::Result<i64> {
        // SAFETY: the attribute block is 128 bytes, as stated; every pointer in it refers
        // to memory the caller keeps alive for the call.
        let r =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), self.0.len() as u32) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn fd(self, cmd: u32) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)? as RawFd;
        // SAFETY: the kernel returned a new file descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// The loaded program, its XSKMAP, and the link that attaches it to one interface. Dropping
/// it detaches the program.
#[derive(Debug)]
pub(super) struct Attached {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    /// Attached in the driver (native mode), not in the generic path after the kernel
    /// has built its packet structure.
    pub(super) native: bool,
}

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

impl Attached {
    /// Loads the program for UDP port `port` and attaches it to `ifindex`; `queues` is the
    /// size of its XSKMAP (queue ids it can redirect).
    pub(super) fn new(ifindex: u32, port: u16, queues: u32) -> io::Result<Self> {
        let map = Attr::new()
            .u32(0, BPF_MAP_TYPE_XSKMAP)
            .u32(4, 4)
            .u32(8, 4)
            .u32(12, queues.max(1))
            .fd(BPF_MAP_CREATE)?;
        let insns = program(map.as_raw_fd(), port);
        let code: Vec<u8> = insns.iter().flat_map(|i| i.0).collect();
        let license = b"GPL\0";
        let mut log = vec![0u8; 64 * 1024];
        let mut name = [0u8; 16];
        name[..12].copy_from_slice(b"meridian_dns");
        let loaded = Attr::new()
            .u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, code.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .bytes(48, &name)
            .u32(68, BPF_XDP)
            .fd(BPF_PROG_LOAD);
        let prog = loaded.map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let why = String::from_utf8_lossy(&log[..end]);
            io::Error::new(e.kind(), format!("{e}; verifier: {}", why.trim()))
        })?;
        let link = |flags| {
            Attr::new()
                .u32(0, prog.as_raw_fd() as u32)
                .u32(4, ifindex)
                .u32(8, BPF_XDP)
                .u32(12, flags)
                .fd(BPF_LINK_CREATE)
        };
        // Native where the driver has it, else the generic path.
        let (link, native) = match link(XDP_FLAGS_DRV_MODE) {
            Ok(l) => (l, true),
            Err(_) => (link(XDP_FLAGS_SKB_MODE)?, false),
        };
        Ok(Self {
            map,
            _prog: prog,
            _link: link,
            native,
        })
    }

    /// Sends packets of `queue` to the XDP socket `fd`.
    pub(super) fn insert(&self, queue: u32, fd: RawFd) -> io::Result<()> {
        let key = queue;
        let value = fd as u32;
        Attr::new()
            .u32(0, self.map.as_raw_fd() as u32)
            .u64(8, (&raw const key) as u64)
            .u64(16, (&raw const value) as u64)
            .call(BPF_MAP_UPDATE_ELEM)
            .map(drop)
    }
}

/// One eBPF instruction.
#[derive(Clone, Copy, Debug)]
struct Insn([u8; 8]);

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = (src << 4) | dst;
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        Self(b)
    }
}

// Opcodes (64-bit ALU, loads, jumps).
const MOV_REG: u8 = 0xbf;
const MOV_IMM: u8 = 0xb7;
const ADD_IMM: u8 = 0x07;
const AND_IMM: u8 = 0x57;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const JGT_REG: u8 = 0x2d;
const JNE_IMM: u8 = 0x55;
const JEQ_IMM: u8 = 0x15;
const JA: u8 = 0x05;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;

/// Jump targets, patched once the program is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    /// The n-th VLAN tag (0 or 1): skipped, and the type after it read.
    Tag(u8),
    /// The type after the tags.
    Type,
    V4,
    V6,
    Redirect,
    Pass,
}

/// Instructions with symbolic jumps, laid out in order.
#[derive(Default)]
struct Asm {
    code: Vec<(Insn, Option<Label>)>,
    at: Vec<(Label, usize)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push((Insn::new(code, dst, src, off, imm), None));
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Label) {
        self.code
            .push((Insn::new(code, dst, src, 0, imm), Some(to)));
    }
    fn label(&mut self, l: Label) {
        self.at.push((l, self.code.len()));
    }
    /// Goes to `Pass` unless `len` bytes of packet follow `data` (r2; r3 is its end).
    fn bounds(&mut self, len: i32) {
        self.op(MOV_REG, 4, 2, 0, 0);
        self.op(ADD_IMM, 4, 0, 0, len);
        self.jump(JGT_REG, 4, 3, 0, Label::Pass);
    }
    fn finish(self) -> Vec<Insn> {
        self.code
            .iter()
            .enumerate()
            .map(|(n, (insn, to))| match to {
                None => *insn,
                Some(label) => {
                    let target = self
                        .at
                        .iter()
                        .find(|(l, _)| l == label)
                        .map_or(n + 1, |x| x.1);
                    let mut b = insn.0;
                    let off = (target as i64 - n as i64 - 1) as i16;
                    b[2..4].copy_from_slice(&off.to_le_bytes());
                    Insn(b)
                }
            })
            .collect()
    }
}

/// The program (see the module docs). Packet fields are loaded as stored, so 16-bit
/// values are compared in network order read little-endian.
fn program(map_fd: RawFd, port: u16) -> Vec<Insn> {
    let port_wire = i32::from(port.to_be());
    let mut a = Asm::default();
    // r6 = ctx; r2 = data; r3 = data_end
    a.op(MOV_REG, 6, 1, 0, 0);
    a.op(LDX_W, 2, 1, 0, 0);
    a.op(LDX_W, 3, 1, 4, 0);
    a.bounds(14);
    a.op(LDX_H, 5, 2, 12, 0);
    // Up to two VLAN tags (802.1Q, or 802.1ad outside 802.1Q): each moves what follows 4
    // bytes on, so r2 moves past it and the offsets below stay as they are untagged.
    for n in 0..2 {
        a.jump(JEQ_IMM, 5, 0, i32::from(0x0081_u16), Label::Tag(n));
        a.jump(JNE_IMM, 5, 0, i32::from(0xA888_u16), Label::Type);
        a.label(Label::Tag(n));
        a.op(ADD_IMM, 2, 0, 0, 4);
        a.bounds(14);
        a.op(LDX_H, 5, 2, 12, 0);
    }
    a.label(Label::Type);
    a.jump(JEQ_IMM, 5, 0, 0x0008, Label::V4);
    a.jump(JEQ_IMM, 5, 0, i32::from(0xDD86_u16), Label::V6);
    a.jump(JA, 0, 0, 0, Label::Pass);
    // IPv4: version 4 with no options, UDP, not a fragment, our port.
    a.label(Label::V4);
    a.bounds(14 + 20 + 8);
    a.op(LDX_B, 5, 2, 14, 0);
    a.jump(JNE_IMM, 5, 0, 0x45, Label::Pass);
    a.op(LDX_B, 5, 2, 23, 0);
    a.jump(JNE_IMM, 5, 0, 17, Label::Pass);
    a.op(LDX_H, 5, 2, 20, 0);
    a.op(AND_IMM, 5, 0, 0, 0xFF3F);
    a.jump(JNE_IMM, 5, 0, 0, Label::Pass);
    a.op(LDX_H, 5, 2, 36, 0);
    a.jump(JNE_IMM, 5, 0, port_wire, Label::Pass);
    a.jump(JA, 0, 0, 0, Label::Redirect);
    // IPv6: UDP as the first next header, our port.
    a.label(Label::V6);
    a.bounds(14 + 40 + 8);
    a.op(LDX_B, 5, 2, 20, 0);
    a.jump(JNE_IMM, 5, 0, 17, Label::Pass);
    a.op(LDX_H, 5, 2, 56, 0);
    a.jump(JNE_IMM, 5, 0, port_wire, Label::Pass);
    // bpf_redirect_map(&xskmap, ctx->rx_queue_index, XDP_PASS)
    a.label(Label::Redirect);
    a.op(LDX_W, 2, 6, 16, 0);
    a.op(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map_fd);
    a.op(0, 0, 0, 0, 0);
    a.op(MOV_IMM, 3, 0, 0, XDP_PASS);
    a.op(CALL, 0, 0, 0, HELPER_REDIRECT_MAP);
    a.op(EXIT, 0, 0, 0, 0);
    a.label(Label::Pass);
    a.op(MOV_IMM, 0, 0, 0, XDP_PASS);
    a.op(EXIT, 0, 0, 0, 0);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_inside_the_program_and_it_ends_in_exits() {
        let p = program(7, 53);
        for (n, insn) in p.iter().enumerate() {
            if matches!(insn.0[0], JGT_REG | JNE_IMM | JEQ_IMM | JA) {
                let off = i16::from_le_bytes([insn.0[2], insn.0[3]]) as i64;
                let target = n as i64 + 1 + off;
                assert!(
                    off >= 0 && (target as usize) < p.len(),
                    "insn {n} jumps to {target}"
                );
            }
        }
        assert_eq!(p.last().unwrap().0[0], EXIT);
        // The port is compared as it is on the wire.
        assert!(
            p.iter()
                .any(|i| i.0[0] == JNE_IMM && i.0[4..8] == i32::from(53u16.to_be()).to_le_bytes())
        );
    }
}
