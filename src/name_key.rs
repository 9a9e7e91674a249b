//! Lowercase wire-format names on the stack: the key every lookup on the query path uses.
//!
//! A query name is turned into its lowercase wire form once, with the offset of each label.
//! Every suffix of the name (`www.example.com.`, `example.com.`, `com.`, `.`) is then a plain
//! byte slice of that buffer, so finding the zone and the closest encloser hashes slices and
//! never allocates.

use hickory_proto::rr::Name;

/// Longest name in wire format (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Most labels a 255-byte name can have, root excluded.
const MAX_LABELS: usize = 127;

/// A name in lowercase wire format with its label offsets.
pub struct NameKey {
    buf: [u8; MAX_NAME],
    len: u8,
    starts: [u8; MAX_LABELS],
    labels: u8,
}

impl NameKey {
    /// No labels yet, before a name is read in (see [`NameKey::read_query`]).
    pub fn empty() -> Self {
        Self {
            buf: [0; MAX_NAME],
            len: 0,
            starts: [0; MAX_LABELS],
            labels: 0,
        }
    }

    /// The key of `name` (absolute or not; the root label is implied).
    pub fn new(name: &Name) -> Option<Self> {
        let mut key = Self::empty();
        let mut pos = 0usize;
        for label in name.iter() {
            if key.labels as usize >= MAX_LABELS || pos + 1 + label.len() >= MAX_NAME {
                return None;
            }
            key.starts[key.labels as usize] = pos as u8;
            key.labels += 1;
            key.buf[pos] = label.len() as u8;
            let to = &mut key.buf[pos + 1..pos + 1 + label.len()];
            to.copy_from_slice(label);
            to.make_ascii_lowercase();
            pos += 1 + label.len();
        }
        key.buf[pos] = 0;
        key.len = (pos + 1) as u8;
        Some(key)
    }

    /// Parses a lowercase wire-format key (as stored by [`key_of`]).
    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut key = Self::empty();
        if wire.is_empty() || wire.len() > MAX_NAME {
            return None;
        }
        let mut pos = 0usize;
        loop {
            let l = *wire.get(pos)? as usize;
            if l == 0 {
                break;
            }
            if key.labels as usize >= MAX_LABELS {
                return None;
            }
            key.starts[key.labels as usize] = pos as u8;
            key.labels += 1;
            pos += 1 + l;
        }
        key.buf[..=pos].copy_from_slice(&wire[..=pos]);
        key.len = (pos + 1) as u8;
        Some(key)
    }

    /// The key of a query's name in wire form at the start of `wire` (any case, no
    /// compression pointer), with the name's length on the wire. `None` for a pointer, a
    /// label over 63 bytes, a name over 255 bytes or one cut short.
    pub fn from_query(wire: &[u8]) -> Option<(Self, usize)> {
        let mut key = Self::empty();
        let len = key.read_query(wire)?;
        Some((key, len))
    }

    /// [`NameKey::from_query`] into `self`, which the query path keeps on its stack: a key
    /// is 384 bytes, and returning one by value copies it each time it moves.
    pub fn read_query(&mut self, wire: &[u8]) -> Option<usize> {
        self.labels = 0;
        let mut pos = 0usize;
        loop {
            let l = usize::from(*wire.get(pos)?);
            if l == 0 {
                break;
            }
            if l > 63 || self.labels as usize >= MAX_LABELS || pos + 1 + l >= MAX_NAME {
                return None;
            }
            self.starts[self.labels as usize] = pos as u8;
            self.labels += 1;
            pos += 1 + l;
        }
        // The whole name in one copy, lowercased in one pass: its length bytes are below
        // 64, so lowercasing leaves them as they are.
        let name = &mut self.buf[..=pos];
        name.copy_from_slice(&wire[..=pos]);
        name.make_ascii_lowercase();
        self.len = (pos + 1) as u8;
        Some(pos + 1)
    }

    /// Number of labels, root excluded.
    pub fn labels(&self) -> usize {
        self.labels as usize
    }

    /// The whole name.
    pub fn full(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The name with its `skip` leftmost labels removed (`skip == labels()` gives the root).
    pub fn suffix(&self, skip: usize) -> &[u8] {
        let start = if skip >= self.labels() {
            self.len as usize - 1
        } else {
            self.starts[skip] as usize
        };
        &self.buf[start..self.len as usize]
    }
}

/// Owned key of a name, for building the lookup tables.
pub fn key_of(name: &Name) -> Box<[u8]> {
    NameKey::new(name)
        .map(|k| Box::from(k.full()))
        .unwrap_or_else(|| Box::from(&[0u8][..]))
}

/// `*.` prepended to a suffix key: the wildcard that would cover names below it.
pub fn wildcard_of(suffix: &[u8], out: &mut [u8; MAX_NAME + 2]) -> Option<usize> {
    let n = suffix.len() + 2;
    if n > MAX_NAME {
        return None;
    }
    out[0] = 1;
    out[1] = b'*';
    out[2..n].copy_from_slice(suffix);
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn suffixes_are_lowercase_slices() {
        let k = NameKey::new(&Name::from_str("WWW.Example.com.").unwrap()).unwrap();
        assert_eq!(k.labels(), 3);
        assert_eq!(k.full(), b"\x03www\x07example\x03com\x00");
        assert_eq!(k.suffix(1), b"\x07example\x03com\x00");
        assert_eq!(k.suffix(3), b"\x00");
        let again = NameKey::from_wire(k.full()).unwrap();
        assert_eq!(again.suffix(2), b"\x03com\x00");
    }

    #[test]
    fn root_has_no_labels() {
        let k = NameKey::new(&Name::root()).unwrap();
        assert_eq!(k.labels(), 0);
        assert_eq!(k.full(), b"\x00");
        assert_eq!(k.suffix(0), b"\x00");
    }
}
