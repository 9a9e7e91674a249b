//! Ethernet frames around DNS messages: where the query is and who sent it, and the reply
//! written back into the same frame (addresses and ports swapped, lengths and checksums
//! made anew).
//!
//! Only what the XDP program redirects arrives here (see `xdp::bpf`): IPv4 without
//! options and unfragmented, or IPv6 with UDP as the first next header, to our port, with
//! up to two VLAN tags before them (kept as they are in the reply). Anything else found
//! here anyway is dropped, never answered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const ETH: usize = 14;
const IPV4: usize = 20;
const IPV6: usize = 40;
const UDP: usize = 8;

/// A query found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Where the IP header starts: after the Ethernet header and its VLAN tags.
    pub ip: usize,
    /// Where the DNS message starts in the frame.
    pub offset: usize,
    /// Its length.
    pub len: usize,
    /// The client.
    pub src: SocketAddr,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The DNS message in `frame`, if it is a UDP datagram to `port` the program would pass on.
pub fn parse(frame: &[u8], port: u16) -> Option<Query> {
    // The type after up to two VLAN tags (802.1Q, or 802.1ad outside one), as the
    // program reads it.
    let (mut eth, mut kind) = (ETH, *frame.get(12..14)?.first_chunk::<2>()?);
    for _ in 0..2 {
        if !matches!(u16::from_be_bytes(kind), 0x8100 | 0x88A8) {
            break;
        }
        kind = *frame.get(eth + 2..eth + 4)?.first_chunk::<2>()?;
        eth += 4;
    }
    if frame.len() < eth + IPV4 + UDP {
        return None;
    }
    let (src, udp) = match u16::from_be_bytes(kind) {
        0x0800 => {
            let ip = &frame[eth..];
            if ip[0] != 0x45 || ip[9] != 17 || be16(ip, 6) & 0x3FFF != 0 {
                return None;
            }
            let total = be16(ip, 2) as usize;
            if total < IPV4 + UDP || eth + total > frame.len() {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            (IpAddr::V4(src), eth + IPV4)
        }
        0x86DD => {
            if frame.len() < eth + IPV6 + UDP {
                return None;
            }
            let ip = &frame[eth..];
            if ip[0] >> 4 != 6 || ip[6] != 17 {
                return None;
            }
            let payload = be16(ip, 4) as usize;
            if payload < UDP || eth + IPV6 + payload > frame.len() {
                return None;
            }
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(src)), eth + IPV6)
        }
        _ => return None,
    };
    if be16(frame, udp + 2) != port {
        return None;
    }
    let udp_len = be16(frame, udp + 4) as usize;
    if udp_len < UDP || udp + udp_len > frame.len() {
        return None;
    }
    Some(Query {
        ip: eth,
        offset: udp + UDP,
        len: udp_len - UDP,
        src: SocketAddr::new(src, be16(frame, udp)),
    })
}

/// Turns the frame holding `query` into the reply carrying `dns`: `buf` is the whole
/// buffer the frame starts in (room to grow). Returns the reply frame's length, or `None`
/// when it does not fit.
pub fn reply(buf: &mut [u8], query: &Query, dns: &[u8]) -> Option<usize> {
    let end = query.offset + dns.len();
    if end > buf.len() {
        return None;
    }
    buf[query.offset..end].copy_from_slice(dns);
    // Ethernet: back to the sender.
    for i in 0..6 {
        buf.swap(i, 6 + i);
    }
    let udp = query.offset - UDP;
    let udp_len = (UDP + dns.len()) as u16;
    match query.src {
        SocketAddr::V4(_) => {
            let ip = query.ip;
            for i in 0..4 {
                buf.swap(ip + 12 + i, ip + 16 + i);
            }
            buf[ip + 2..ip + 4].copy_from_slice(&((IPV4 + UDP + dns.len()) as u16).to_be_bytes());
            buf[ip + 6..ip + 8].copy_from_slice(&[0x40, 0]); // DF, no fragment
            buf[ip + 8] = 64;
            buf[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
            let sum = !sum(0, &buf[ip..ip + IPV4]);
            buf[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        }
        SocketAddr::V6(_) => {
            let ip = query.ip;
            for i in 0..16 {
                buf.swap(ip + 8 + i, ip + 24 + i);
            }
            buf[ip + 4..ip + 6].copy_from_slice(&udp_len.to_be_bytes());
            buf[ip + 7] = 64;
        }
    }
    for i in 0..2 {
        buf.swap(udp + i, udp + 2 + i);
    }
    buf[udp + 4..udp + 6].copy_from_slice(&udp_len.to_be_bytes());
    buf[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
    // The UDP checksum covers a pseudo-header of addresses, protocol and length; optional
    // over IPv4, required over IPv6, written for both.
    let ip = query.ip;
    let addrs = match query.src {
        SocketAddr::V4(_) => sum(0, &buf[ip + 12..ip + 20]),
        SocketAddr::V6(_) => sum(0, &buf[ip + 8..ip + 40]),
    };
    let pseudo = add(add(addrs, 17), udp_len);
    let mut check = !sum(pseudo, &buf[udp..end]);
    if check == 0 {
        // Zero means "no checksum" over IPv4; all ones is the same value.
        check = 0xFFFF;
    }
    buf[udp + 6..udp + 8].copy_from_slice(&check.to_be_bytes());
    Some(end)
}

/// Ones' complement addition.
fn add(a: u16, b: u16) -> u16 {
    let (s, carry) = a.overflowing_add(b);
    s + u16::from(carry)
}

/// The ones' complement sum (RFC 1071) of `data` as 16-bit words, added to `acc`; the
/// checksum is its complement.
fn sum(acc: u16, data: &[u8]) -> u16 {
    let mut s = u64::from(acc);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a client would send it.
    fn frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, dns: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        let udp_len = (UDP + dns.len()) as u16;
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((IPV4 as u16) + udp_len).to_be_bytes());
                f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                let check = !sum(0, &f[ETH..ETH + IPV4]);
                f[ETH + 10..ETH + 12].copy_from_slice(&check.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
                f.extend_from_slice(&udp_len.to_be_bytes());
                f.extend_from_slice(&[17, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => unreachable!(),
        }
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(dns);
        f
    }

    /// The UDP checksum of a frame verifies: summed with its pseudo-header, all ones.
    fn udp_checksum_ok(f: &[u8], q: &Query) -> bool {
        let udp = q.offset - UDP;
        let len = be16(f, udp + 4);
        let addrs = match q.src {
            SocketAddr::V4(_) => &f[q.ip + 12..q.ip + 20],
            SocketAddr::V6(_) => &f[q.ip + 8..q.ip + 40],
        };
        let pseudo = add(add(sum(0, addrs), 17), len);
        sum(pseudo, &f[udp..udp + len as usize]) == 0xFFFF
    }

    #[test]
    fn ipv4_query_and_reply() {
        let c: IpAddr = "192.0.2.10".parse().unwrap();
        let s: IpAddr = "192.0.2.1".parse().unwrap();
        let mut f = frame(c, s, 40000, 53, b"question");
        let q = parse(&f, 53).unwrap();
        assert_eq!(q.src, SocketAddr::new(c, 40000));
        assert_eq!(&f[q.offset..q.offset + q.len], b"question");
        assert_eq!(parse(&f, 5353), None, "another port");
        f.resize(4096, 0);
        let n = reply(&mut f, &q, b"a longer answer").unwrap();
        let f = &f[..n];
        assert_eq!(&f[0..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(sum(0, &f[ETH..ETH + IPV4]), 0xFFFF, "IPv4 header checksum");
        // The reply parses as a datagram from the server to the client's port.
        let back = parse(f, 40000).unwrap();
        assert_eq!(back.src, SocketAddr::new(s, 53));
        assert_eq!(&f[back.offset..back.offset + back.len], b"a longer answer");
        assert!(udp_checksum_ok(f, &back));
    }

    #[test]
    fn ipv6_query_and_reply() {
        let c: IpAddr = "2001:db8:1::10".parse().unwrap();
        let s: IpAddr = "2001:db8:1::1".parse().unwrap();
        let mut f = frame(c, s, 40001, 53, b"odd-length q");
        let q = parse(&f, 53).unwrap();
        assert_eq!(q.src, SocketAddr::new(c, 40001));
        f.resize(4096, 0);
        let n = reply(&mut f, &q, b"odd reply").unwrap();
        let back = parse(&f[..n], 40001).unwrap();
        assert_eq!(back.src, SocketAddr::new(s, 53));
        assert!(udp_checksum_ok(&f[..n], &back));
    }

    #[test]
    fn vlan_tags_are_read_past_and_kept_in_the_reply() {
        let c: IpAddr = "192.0.2.10".parse().unwrap();
        let s: IpAddr = "2001:db8:1::1".parse().unwrap();
        let c6: IpAddr = "2001:db8:1::10".parse().unwrap();
        for (src, dst) in [(c, "192.0.2.1".parse().unwrap()), (c6, s)] {
            for tags in [
                &[0x81, 0x00, 0x00, 0x0A][..],
                &[0x88, 0xA8, 0, 20, 0x81, 0, 0, 10],
            ] {
                let mut f = frame(src, dst, 40002, 53, b"tagged");
                f.splice(12..12, tags.iter().copied());
                let q = parse(&f, 53).unwrap();
                assert_eq!(q.ip, ETH + tags.len());
                assert_eq!(q.src, SocketAddr::new(src, 40002));
                assert_eq!(&f[q.offset..q.offset + q.len], b"tagged");
                f.resize(4096, 0);
                let n = reply(&mut f, &q, b"tagged reply").unwrap();
                let f = &f[..n];
                assert_eq!(&f[12..12 + tags.len()], tags, "the tags stay");
                let back = parse(f, 40002).unwrap();
                assert_eq!(back.src, SocketAddr::new(dst, 53));
                assert!(udp_checksum_ok(f, &back));
                if src.is_ipv4() {
                    assert_eq!(
                        sum(0, &f[q.ip..q.ip + IPV4]),
                        0xFFFF,
                        "IPv4 header checksum"
                    );
                }
            }
        }
        // A third tag is more than the program reads past: not taken.
        let mut f = frame(c, "192.0.2.1".parse().unwrap(), 1, 53, b"x");
        f.splice(12..12, [0x88, 0xA8, 0, 1, 0x88, 0xA8, 0, 2, 0x81, 0, 0, 3]);
        assert_eq!(parse(&f, 53), None);
    }

    #[test]
    fn what_the_program_passes_is_not_taken() {
        let c: IpAddr = "192.0.2.10".parse().unwrap();
        let s: IpAddr = "192.0.2.1".parse().unwrap();
        let good = frame(c, s, 1, 53, b"x");
        let mut frag = good.clone();
        frag[ETH + 6] = 0x20; // more fragments
        assert_eq!(parse(&frag, 53), None);
        let mut options = good.clone();
        options[ETH] = 0x46;
        assert_eq!(parse(&options, 53), None);
        let mut tcp = good.clone();
        tcp[ETH + 9] = 6;
        assert_eq!(parse(&tcp, 53), None);
        let mut lying = good.clone();
        lying[ETH + IPV4 + 4..ETH + IPV4 + 6].copy_from_slice(&900u16.to_be_bytes());
        assert_eq!(parse(&lying, 53), None, "UDP length beyond the frame");
        assert_eq!(parse(&good[..30], 53), None);
        // Too big to fit the buffer: no reply.
        let q = parse(&good, 53).unwrap();
        let mut small = good.clone();
        assert_eq!(reply(&mut small, &q, &[0; 100]), None);
    }
}
