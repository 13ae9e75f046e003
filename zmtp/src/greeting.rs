//! The 64-octet greeting (spec 37, "Formal Grammar" and "Version Negotiation").
//!
//! | offset | octets | value |
//! |---|---|---|
//! | 0 | 1 | `0xFF` |
//! | 1..=8 | 8 | padding, never validated |
//! | 9 | 1 | `0x7F` (bit 0 set: a versioned greeting) |
//! | 10, 11 | 2 | major, minor version |
//! | 12..=31 | 20 | mechanism name, NUL padded |
//! | 32 | 1 | as-server |
//! | 33..=63 | 31 | filler, zeros |

use std::fmt;

use crate::error::{Error, Incompatible};

/// Length of the greeting in octets.
pub const GREETING_LEN: usize = 64;
const MECHANISM_LEN: usize = 20;
const MECHANISM_OFFSET: usize = 12;

/// A security mechanism name: 20 octets, NUL padded. Compared in full, padding included.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mechanism([u8; MECHANISM_LEN]);

impl Mechanism {
    /// The NULL mechanism (no security).
    pub const NULL: Mechanism = Mechanism(*b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");

    /// The 20 octets as they are on the wire.
    pub fn as_bytes(&self) -> &[u8; MECHANISM_LEN] {
        &self.0
    }

    /// A mechanism from the 20 octets of a greeting.
    pub fn from_bytes(bytes: [u8; MECHANISM_LEN]) -> Mechanism {
        Mechanism(bytes)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(MECHANISM_LEN);
        let (name, rest) = self.0.split_at(end);
        write!(f, "{}", String::from_utf8_lossy(name).escape_debug())?;
        if rest.iter().any(|&b| b != 0) {
            f.write_str(" (with non-NUL padding)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mechanism({self})")
    }
}

/// The protocol spoken on a connection once greetings are exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// ZMTP 3.0 (spec 23): subscriptions travel as `\x01topic`/`\x00topic` messages, no heartbeats.
    V3_0,
    /// ZMTP 3.1 (spec 37): SUBSCRIBE/CANCEL and PING/PONG commands.
    V3_1,
}

/// A decoded greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    /// Major version (3 for us).
    pub major: u8,
    /// Minor version (1 for us).
    pub minor: u8,
    /// Security mechanism.
    pub mechanism: Mechanism,
    /// The as-server flag. Under NULL it carries nothing and is never checked (libzmq does not set it).
    pub as_server: bool,
}

impl Greeting {
    /// The greeting zring sends: version 3.1.
    pub fn ours(mechanism: Mechanism, as_server: bool) -> Greeting {
        Greeting {
            major: 3,
            minor: 1,
            mechanism,
            as_server,
        }
    }

    /// The 64 octets on the wire (padding and filler zero).
    pub fn encode(&self) -> [u8; GREETING_LEN] {
        let mut out = [0u8; GREETING_LEN];
        out[0] = 0xFF;
        out[9] = 0x7F;
        out[10] = self.major;
        out[11] = self.minor;
        out[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN].copy_from_slice(&self.mechanism.0);
        out[32] = u8::from(self.as_server);
        out
    }

    /// Checks as much of a peer's greeting as has arrived (`prefix` may be shorter than 64 octets), so
    /// that a 1.0 or 2.0 peer is refused as soon as its first octets show it, without waiting for more.
    pub fn check_prefix(prefix: &[u8]) -> Result<(), Error> {
        if prefix.first().is_some_and(|&b| b != 0xFF) {
            return Err(Incompatible::Unversioned.into());
        }
        if prefix.get(9).is_some_and(|&b| b & 1 == 0) {
            return Err(Incompatible::Unversioned.into());
        }
        if let Some(&major) = prefix.get(10) {
            if major < 3 {
                let minor = prefix.get(11).copied().unwrap_or(0);
                return Err(Incompatible::Version { major, minor }.into());
            }
        }
        Ok(())
    }

    /// Decodes a whole greeting. The padding (octets 1-8) and the filler are not validated.
    pub fn decode(bytes: &[u8; GREETING_LEN]) -> Result<Greeting, Error> {
        Greeting::check_prefix(bytes)?;
        let mut mechanism = [0u8; MECHANISM_LEN];
        mechanism.copy_from_slice(&bytes[MECHANISM_OFFSET..MECHANISM_OFFSET + MECHANISM_LEN]);
        Ok(Greeting {
            major: bytes[10],
            minor: bytes[11],
            mechanism: Mechanism(mechanism),
            as_server: bytes[32] != 0,
        })
    }

    /// The protocol to speak with the peer that sent this greeting: 3.0 for a 3.0 peer, 3.1 for any
    /// later version (spec 37: "MUST accept higher protocol versions as valid").
    pub fn version(&self) -> Version {
        if self.major == 3 && self.minor == 0 {
            Version::V3_0
        } else {
            Version::V3_1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_greeting_is_byte_exact() {
        let g = Greeting::ours(Mechanism::NULL, false).encode();
        let mut expected = [0u8; 64];
        expected[0] = 0xFF;
        expected[9] = 0x7F;
        expected[10] = 3;
        expected[11] = 1;
        expected[12..16].copy_from_slice(b"NULL");
        assert_eq!(g, expected);
        assert_eq!(Greeting::ours(Mechanism::NULL, true).encode()[32], 1);
    }

    #[test]
    fn padding_is_not_validated() {
        let mut g = Greeting::ours(Mechanism::NULL, false).encode();
        g[1..9].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF]);
        g[40] = 0x55; // filler too
        let d = Greeting::decode(&g).unwrap();
        assert_eq!(d.mechanism, Mechanism::NULL);
        assert_eq!(d.version(), Version::V3_1);
    }

    #[test]
    fn versions_negotiate_as_the_spec_says() {
        let with = |major, minor| {
            let mut g = Greeting::ours(Mechanism::NULL, false).encode();
            g[10] = major;
            g[11] = minor;
            Greeting::decode(&g)
        };
        assert_eq!(with(3, 0).unwrap().version(), Version::V3_0);
        assert_eq!(with(3, 1).unwrap().version(), Version::V3_1);
        assert_eq!(with(3, 2).unwrap().version(), Version::V3_1);
        assert_eq!(with(4, 0).unwrap().version(), Version::V3_1);
        assert_eq!(
            with(2, 0),
            Err(Incompatible::Version { major: 2, minor: 0 }.into())
        );
        assert_eq!(
            with(1, 0),
            Err(Incompatible::Version { major: 1, minor: 0 }.into())
        );
    }

    #[test]
    fn zmtp_1_0_is_refused_from_the_first_octets() {
        // A 1.0 peer starts with its identity frame: a length octet, then the body.
        assert_eq!(
            Greeting::check_prefix(&[0x05, 0x00]),
            Err(Incompatible::Unversioned.into())
        );
        // 0xFF then an 8-octet length whose last octet has bit 0 clear: a 1.0 long identity.
        let long_identity = [0xFF, 0, 0, 0, 0, 0, 0, 1, 0, 0x00];
        assert_eq!(
            Greeting::check_prefix(&long_identity),
            Err(Incompatible::Unversioned.into())
        );
        assert!(Greeting::check_prefix(&[0xFF, 1, 2, 3]).is_ok());
    }

    #[test]
    fn mechanism_display_names_padding_garbage() {
        let mut m = *Mechanism::NULL.as_bytes();
        assert_eq!(Mechanism::from_bytes(m).to_string(), "NULL");
        m[17] = b'x';
        assert_eq!(
            Mechanism::from_bytes(m).to_string(),
            "NULL (with non-NUL padding)"
        );
    }
}
