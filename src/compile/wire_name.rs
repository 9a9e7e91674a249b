//! Names in wire form, made once at load for the names every negative answer writes.
//!
//! The fast writer compresses a name by comparing each of its suffixes, as wire bytes,
//! with the suffixes already written. hickory-proto's [`Name`] gives its labels only one by
//! one, so building that wire form costs a label walk per name per query; the SOA's three
//! names, in every NXDOMAIN and NODATA reply, are kept ready instead.

use hickory_proto::rr::Name;

/// Room for a name's wire form: at most 255 bytes, and the root label.
pub const WIRE_MAX: usize = Name::MAX_LENGTH + 1;
/// Room for a name's label offsets: at most 127 labels.
pub const LABELS_MAX: usize = 128;

/// Writes `name`'s uncompressed wire form (root label included) into `wire` and the offset
/// of each of its labels into `starts`; returns the bytes and labels written. For a name
/// built on the stack per query, and for [`WireName`] once at load.
pub fn write_wire(
    name: &Name,
    wire: &mut [u8; WIRE_MAX],
    starts: &mut [u8; LABELS_MAX],
) -> (usize, usize) {
    let (mut labels, mut len) = (0, 0);
    for label in name.iter() {
        let next = len + 1 + label.len();
        if next >= wire.len() || labels == starts.len() {
            break; // cannot happen for a Name; never write past the buffers
        }
        // A Name is at most 255 bytes, so every offset fits a byte.
        starts[labels] = len as u8;
        labels += 1;
        wire[len] = label.len() as u8;
        wire[len + 1..next].copy_from_slice(label);
        len = next;
    }
    wire[len] = 0;
    (len + 1, labels)
}

/// A name's uncompressed wire form (root label included) and the offset of each label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireName {
    wire: Box<[u8]>,
    starts: Box<[u8]>,
}

impl WireName {
    /// The wire form of `name`, in its own case (the general encoder writes that case).
    pub fn new(name: &Name) -> Self {
        let mut wire = [0u8; WIRE_MAX];
        let mut starts = [0u8; LABELS_MAX];
        let (len, labels) = write_wire(name, &mut wire, &mut starts);
        Self {
            wire: Box::from(&wire[..len]),
            starts: Box::from(&starts[..labels]),
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
