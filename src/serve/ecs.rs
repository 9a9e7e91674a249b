//! EDNS Client Subnet (RFC 7871), and the OPT record it sits in, read straight from the
//! query bytes.
//!
//! hickory-proto decodes the option but forgets its length, so an address longer than its
//! prefix needs would pass unnoticed; RFC 7871 §6 requires FORMERR for it. Reading the
//! option here also makes the check independent of how the rest of the message is parsed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client subnet from a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSubnet {
    /// The address, host bits zero.
    pub addr: IpAddr,
    /// SOURCE PREFIX-LENGTH.
    pub source: u8,
}

/// Why an ECS option is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcsError {
    /// FAMILY is neither 1 (IPv4) nor 2 (IPv6).
    UnknownFamily,
    /// SOURCE PREFIX-LENGTH is longer than the family's address.
    PrefixTooLong,
    /// ADDRESS has more or fewer bytes than the prefix needs.
    WrongLength,
    /// ADDRESS has bits set past SOURCE PREFIX-LENGTH.
    HostBitsSet,
    /// The option is cut short.
    Truncated,
}

/// The OPT record of a message, as read from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawOpt<'m> {
    /// The TTL field: EXTENDED-RCODE, VERSION, then the flags (DO is 0x8000).
    pub ttl: u32,
    /// The options.
    pub rdata: &'m [u8],
}

/// Finds the first OPT record of the message's additional section. `None` when there is
/// none, or the message is too broken to get that far.
pub fn opt(msg: &[u8]) -> Option<RawOpt<'_>> {
    let be16 = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]) as usize)
    };
    let (qd, an, ns, ar) = (be16(4)?, be16(6)?, be16(8)?, be16(10)?);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(msg, i)? + 4;
    }
    for _ in 0..an + ns {
        i = skip_name(msg, i)?;
        i += 10 + be16(i + 8)?;
    }
    for _ in 0..ar {
        i = skip_name(msg, i)?;
        let rtype = be16(i)?;
        let ttl = msg.get(i + 4..i + 8)?;
        let rdlen = be16(i + 8)?;
        let rdata = msg.get(i + 10..i + 10 + rdlen)?;
        i += 10 + rdlen;
        if rtype == 41 {
            let ttl = u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]]);
            return Some(RawOpt { ttl, rdata });
        }
    }
    None
}

/// Finds the ECS option of the message's OPT record. `None` when there is none (or the
/// message is too broken to find it, which the full parser reports).
pub fn find(msg: &[u8]) -> Option<Result<ClientSubnet, EcsError>> {
    let rdata = opt(msg)?.rdata;
    let mut j = 0;
    while j + 4 <= rdata.len() {
        let code = u16::from_be_bytes([rdata[j], rdata[j + 1]]);
        let len = u16::from_be_bytes([rdata[j + 2], rdata[j + 3]]) as usize;
        let Some(data) = rdata.get(j + 4..j + 4 + len) else {
            return Some(Err(EcsError::Truncated));
        };
        if code == 8 {
            return Some(parse(data));
        }
        j += 4 + len;
    }
    None
}

/// The offset just past the name at `i` (labels, then the root or a pointer).
pub(super) fn skip_name(msg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *msg.get(i)? as usize;
        match l & 0xC0 {
            0x00 if l == 0 => return Some(i + 1),
            0x00 => i += 1 + l,
            0xC0 => return Some(i + 2),
            _ => return None,
        }
    }
}

/// Validates one option body (RFC 7871 §6).
pub fn parse(data: &[u8]) -> Result<ClientSubnet, EcsError> {
    if data.len() < 4 {
        return Err(EcsError::Truncated);
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let source = data[2];
    let addr = &data[4..];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return Err(EcsError::UnknownFamily),
    };
    if source > max {
        return Err(EcsError::PrefixTooLong);
    }
    if addr.len() != (source as usize).div_ceil(8) {
        return Err(EcsError::WrongLength);
    }
    if source % 8 != 0 {
        let last = addr[addr.len() - 1];
        if last & (0xFFu8 >> (source % 8)) != 0 {
            return Err(EcsError::HostBitsSet);
        }
    }
    let addr = if family == 1 {
        let mut b = [0u8; 4];
        b[..addr.len()].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(b))
    } else {
        let mut b = [0u8; 16];
        b[..addr.len()].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(b))
    };
    Ok(ClientSubnet { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_options() {
        assert_eq!(
            parse(&[0, 1, 24, 0, 192, 0, 2]),
            Ok(ClientSubnet {
                addr: "192.0.2.0".parse().unwrap(),
                source: 24
            })
        );
        assert_eq!(
            parse(&[0, 1, 0, 0]),
            Ok(ClientSubnet {
                addr: "0.0.0.0".parse().unwrap(),
                source: 0
            })
        );
        assert_eq!(
            parse(&[0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1]),
            Ok(ClientSubnet {
                addr: "2001:db8:1::".parse().unwrap(),
                source: 48
            })
        );
        assert_eq!(
            parse(&[0, 1, 25, 0, 192, 0, 2, 128]),
            Ok(ClientSubnet {
                addr: "192.0.2.128".parse().unwrap(),
                source: 25
            })
        );
    }

    #[test]
    fn malformed_options() {
        assert_eq!(parse(&[0, 3, 24, 0, 1, 2, 3]), Err(EcsError::UnknownFamily));
        assert_eq!(
            parse(&[0, 1, 33, 0, 1, 2, 3, 4, 5]),
            Err(EcsError::PrefixTooLong)
        );
        assert_eq!(
            parse(&[0, 1, 24, 0, 192, 0, 2, 0]),
            Err(EcsError::WrongLength)
        );
        assert_eq!(parse(&[0, 1, 24, 0, 192, 0]), Err(EcsError::WrongLength));
        assert_eq!(parse(&[0, 1, 23, 0, 192, 0, 3]), Err(EcsError::HostBitsSet));
        assert_eq!(parse(&[0, 1]), Err(EcsError::Truncated));
    }

    #[test]
    fn finds_the_option_in_a_message() {
        // Header (1 question, 1 additional), question "a." A IN, OPT with ECS 192.0.2.0/24.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 11]);
        m.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2]);
        assert_eq!(
            find(&m),
            Some(Ok(ClientSubnet {
                addr: "192.0.2.0".parse().unwrap(),
                source: 24
            }))
        );
        assert_eq!(find(&m[..20]), None);
        let opt = opt(&m).unwrap();
        assert_eq!((opt.ttl, opt.rdata.len()), (0, 11));
    }
}
