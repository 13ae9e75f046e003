//! Metadata: the properties carried by READY (spec 37, "Connection Metadata").
//!
//! `metadata = *property`, `property = name-len(1) name value-len(4, network order) value`.

use bytes::{BufMut, Bytes};

use crate::error::MetadataError;
use crate::reader::{Reader, Short};

const MAX_VALUE_LEN: u32 = i32::MAX as u32;

/// An ordered list of properties. Lookups ignore the case of names, as the spec says; names are
/// sent with the exact spelling given (`Socket-Type`, `Identity`) for libzmq, which compares exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(Bytes, Bytes)>,
}

impl From<Short> for MetadataError {
    fn from(s: Short) -> Self {
        MetadataError::Truncated {
            needed: s.needed,
            available: s.available,
        }
    }
}

fn valid_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+')
}

impl Metadata {
    /// No properties.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends a property. The name must be 1 to 255 octets of `A-Z a-z 0-9 - _ . +` and the value at
    /// most 2^31-1 octets; anything else is refused here rather than put on the wire.
    pub fn push(&mut self, name: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let value = value.into();
        if name.is_empty() {
            return Err(MetadataError::EmptyName);
        }
        if name.len() > 255 {
            return Err(MetadataError::NameTooLong { len: name.len() });
        }
        if let Some(&byte) = name.as_bytes().iter().find(|&&b| !valid_name_byte(b)) {
            return Err(MetadataError::NameCharacter { byte });
        }
        if value.len() > MAX_VALUE_LEN as usize {
            return Err(MetadataError::ValueTooLong {
                len: u32::try_from(value.len()).unwrap_or(u32::MAX),
            });
        }
        self.props
            .push((Bytes::copy_from_slice(name.as_bytes()), value));
        Ok(())
    }

    /// The value of the first property named `name`, compared without regard to ASCII case.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The properties in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Bytes)> {
        self.props.iter().map(|(n, v)| (&n[..], v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// Parses a metadata body. Values are slices of `body` (no copy). Every length is checked against
    /// what remains before it is used.
    pub fn decode(body: Bytes) -> Result<Metadata, MetadataError> {
        let mut r = Reader::new(body);
        let mut props = Vec::new();
        while r.remaining() > 0 {
            let name_len = r.u8()?;
            if name_len == 0 {
                return Err(MetadataError::EmptyName);
            }
            let name = r.take(u64::from(name_len))?;
            if let Some(&byte) = name.iter().find(|&&b| !valid_name_byte(b)) {
                return Err(MetadataError::NameCharacter { byte });
            }
            let value_len = r.u32()?;
            if value_len > MAX_VALUE_LEN {
                return Err(MetadataError::ValueTooLong { len: value_len });
            }
            let value = r.take(u64::from(value_len))?;
            props.push((name, value));
        }
        Ok(Metadata { props })
    }

    /// Octets that [`Metadata::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.props
            .iter()
            .map(|(n, v)| 1 + n.len() + 4 + v.len())
            .sum()
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        for (name, value) in &self.props {
            // Lengths were bounded by `push`/`decode`: names <= 255, values <= 2^31-1.
            out.put_u8(name.len() as u8);
            out.put_slice(name);
            out.put_u32(value.len() as u32);
            out.put_slice(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_looks_up_without_case() {
        let mut m = Metadata::new();
        m.push("Socket-Type", "DEALER").unwrap();
        m.push("Identity", "").unwrap();
        let mut wire = Vec::new();
        m.encode(&mut wire);
        assert_eq!(
            wire,
            b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"
        );
        assert_eq!(wire.len(), m.encoded_len());
        let back = Metadata::decode(Bytes::from(wire)).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.get("socket-type").map(|v| &v[..]),
            Some(&b"DEALER"[..])
        );
        assert_eq!(
            back.get("SOCKET-TYPE").map(|v| &v[..]),
            Some(&b"DEALER"[..])
        );
        assert!(back.get("X-Other").is_none());
    }

    #[test]
    fn lying_lengths_are_refused() {
        let huge_value = Bytes::from_static(b"\x01A\xff\xff\xff\xffxyz");
        assert_eq!(
            Metadata::decode(huge_value),
            Err(MetadataError::ValueTooLong { len: u32::MAX })
        );
        let past_end = Bytes::from_static(b"\x01A\x00\x00\x00\x09xyz");
        assert_eq!(
            Metadata::decode(past_end),
            Err(MetadataError::Truncated {
                needed: 9,
                available: 3
            })
        );
        let name_past_end = Bytes::from_static(b"\x09Abc");
        assert!(matches!(
            Metadata::decode(name_past_end),
            Err(MetadataError::Truncated { needed: 9, .. })
        ));
        let trailing = Bytes::from_static(b"\x01A\x00\x00\x00\x00\x05");
        assert!(matches!(
            Metadata::decode(trailing),
            Err(MetadataError::Truncated { .. })
        ));
        assert_eq!(
            Metadata::decode(Bytes::from_static(b"\x00")),
            Err(MetadataError::EmptyName)
        );
        assert_eq!(
            Metadata::decode(Bytes::from_static(b"\x02A \x00\x00\x00\x00")),
            Err(MetadataError::NameCharacter { byte: b' ' })
        );
    }

    #[test]
    fn unknown_properties_and_empty_values_are_kept() {
        let m = Metadata::decode(Bytes::from_static(
            b"\x05X-Foo\x00\x00\x00\x03bar\x01Z\x00\x00\x00\x00",
        ))
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("x-foo").map(|v| &v[..]), Some(&b"bar"[..]));
        assert_eq!(m.get("z").map(|v| v.len()), Some(0));
    }

    #[test]
    fn push_refuses_what_cannot_go_on_the_wire() {
        let mut m = Metadata::new();
        assert_eq!(m.push("", "x"), Err(MetadataError::EmptyName));
        assert_eq!(
            m.push(&"a".repeat(256), "x"),
            Err(MetadataError::NameTooLong { len: 256 })
        );
        assert_eq!(
            m.push("a b", "x"),
            Err(MetadataError::NameCharacter { byte: b' ' })
        );
        assert!(m.is_empty());
    }
}
