//! Names in wire form, made once at load for the names every negative answer writes.
//!
//! The fast writer compresses a name by comparing each of its suffixes, as wire bytes,
//! with the suffixes already written. hickory-proto's [`Name`] gives its labels only one by
//! one, so building that wire form costs a label walk per name per query; the SOA's three
//! names, in every NXDOMAIN and NODATA reply, are kept ready instead.

use hickory_proto::rr::Name;

/// A name's uncompressed wire form (root label included) and the offset of each label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireName {
    wire: Box<[u8]>,
    starts: Box<[u8]>,
}

impl WireName {
    /// The wire form of `name`, in its own case (the general encoder writes that case).
    pub fn new(name: &Name) -> Self {
        let mut wire = Vec::with_capacity(Name::MAX_LENGTH + 1);
        let mut starts = Vec::with_capacity(usize::from(name.num_labels()));
        for label in name.iter() {
            // A Name is at most 255 bytes, so every offset fits a byte.
            starts.push(wire.len() as u8);
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.push(0);
        Self {
            wire: wire.into_boxed_slice(),
            starts: starts.into_boxed_slice(),
        }
    }

    /// The name as on the wire, uncompressed.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Where each label starts in [`Self::wire`], the first label first.
    pub fn starts(&self) -> &[u8] {
        &self.starts
    }
}

/// The names of a zone's SOA record in wire form: its owner (the apex), MNAME and RNAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaNames {
    /// The apex.
    pub owner: WireName,
    /// The primary server.
    pub mname: WireName,
    /// The responsible mailbox.
    pub rname: WireName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_and_label_offsets() {
        let n = WireName::new(&Name::from_ascii("Ns1.example.NET.").unwrap());
        assert_eq!(n.wire(), b"\x03Ns1\x07example\x03NET\x00");
        assert_eq!(n.starts(), &[0, 4, 12]);
        let root = WireName::new(&Name::root());
        assert_eq!(root.wire(), b"\x00");
        assert!(root.starts().is_empty());
    }
}
