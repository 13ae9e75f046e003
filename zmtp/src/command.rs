//! Commands (spec 37, "Commands"): a command frame's body is `name-len(1) name data`.

use bytes::{BufMut, Bytes};

use crate::error::PeerMisbehaved;
use crate::frame::flags;
use crate::metadata::Metadata;
use crate::reader::Reader;
use crate::transmit::Transmit;

/// The longest PING context (spec 37: `ping-context = 0*16OCTET`).
pub(crate) const MAX_PING_CONTEXT: usize = 16;

/// A decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// READY: the NULL handshake's only command, with the sender's metadata.
    Ready(Metadata),
    /// ERROR: a fatal error, with a reason of at most 255 octets.
    Error {
        /// The reason text.
        reason: Bytes,
    },
    /// SUBSCRIBE (3.1): the topic prefix.
    Subscribe(Bytes),
    /// CANCEL (3.1): the topic prefix.
    Cancel(Bytes),
    /// PING: a heartbeat asking for a PONG.
    Ping {
        /// How long the sender will wait for any traffic, in tenths of a second (0: no limit).
        ttl: u16,
        /// Up to 16 octets to echo in the PONG.
        context: Bytes,
    },
    /// PONG: the answer to a PING.
    Pong {
        /// The PING's context.
        context: Bytes,
    },
    /// A well-formed command of another name; ignored after the handshake, as libzmq does.
    Unknown {
        /// Its name.
        name: Bytes,
        /// What follows the name.
        data: Bytes,
    },
}

fn malformed(name: &[u8], problem: &'static str) -> PeerMisbehaved {
    PeerMisbehaved::MalformedCommand {
        name: String::from_utf8_lossy(name).into_owned(),
        problem,
    }
}

impl Command {
    /// Parses a command frame's body.
    pub fn decode(body: Bytes) -> Result<Command, PeerMisbehaved> {
        let mut r = Reader::new(body);
        let name_len = r.u8().map_err(|_| malformed(b"", "empty command frame"))?;
        if name_len == 0 {
            return Err(malformed(b"", "command name of length zero"));
        }
        let name = r
            .take(u64::from(name_len))
            .map_err(|_| malformed(b"", "command name longer than its frame"))?;
        match &name[..] {
            b"READY" => Ok(Command::Ready(Metadata::decode(r.rest())?)),
            b"ERROR" => {
                let len = r.u8().map_err(|_| malformed(&name, "no reason length"))?;
                let reason = r
                    .take(u64::from(len))
                    .map_err(|_| malformed(&name, "reason longer than the frame"))?;
                Ok(Command::Error { reason })
            }
            b"SUBSCRIBE" => Ok(Command::Subscribe(r.rest())),
            b"CANCEL" => Ok(Command::Cancel(r.rest())),
            b"PING" => {
                let ttl = r.u16().map_err(|_| malformed(&name, "no TTL"))?;
                let context = r.rest();
                if context.len() > MAX_PING_CONTEXT {
                    return Err(malformed(&name, "context longer than 16 octets"));
                }
                Ok(Command::Ping { ttl, context })
            }
            b"PONG" => Ok(Command::Pong { context: r.rest() }),
            _ => Ok(Command::Unknown {
                name,
                data: r.rest(),
            }),
        }
    }

    /// The command's name.
    pub fn name(&self) -> &[u8] {
        match self {
            Command::Ready(_) => b"READY",
            Command::Error { .. } => b"ERROR",
            Command::Subscribe(_) => b"SUBSCRIBE",
            Command::Cancel(_) => b"CANCEL",
            Command::Ping { .. } => b"PING",
            Command::Pong { .. } => b"PONG",
            Command::Unknown { name, .. } => name,
        }
    }

    /// The body of the command frame (name and data), as it goes on the wire. An ERROR reason is cut
    /// to 255 octets, a PING context to 16, a name to 255.
    pub fn encode_body(&self) -> Vec<u8> {
        let name = self.name();
        let name = name.get(..255).unwrap_or(name);
        let mut body = Vec::with_capacity(1 + name.len() + 16);
        body.put_u8(name.len() as u8);
        body.put_slice(name);
        match self {
            Command::Ready(md) => md.encode(&mut body),
            Command::Error { reason } => {
                let reason = reason.get(..255).unwrap_or(reason);
                body.put_u8(reason.len() as u8);
                body.put_slice(reason);
            }
            Command::Subscribe(topic) | Command::Cancel(topic) => body.put_slice(topic),
            Command::Ping { ttl, context } => {
                body.put_u16(*ttl);
                body.put_slice(context.get(..MAX_PING_CONTEXT).unwrap_or(context));
            }
            Command::Pong { context } => body.put_slice(context),
            Command::Unknown { data, .. } => body.put_slice(data),
        }
        body
    }

    /// Appends the command frame to `out`.
    pub fn encode(&self, out: &mut Transmit) {
        out.push_frame(Bytes::from(self.encode_body()), flags::COMMAND);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(cmd: &Command) -> Vec<u8> {
        let mut t = Transmit::new();
        cmd.encode(&mut t);
        t.to_vec()
    }

    #[test]
    fn golden_subscribe_cancel_ping_pong_error() {
        // Checklist 29: SUBSCRIBE "A" on 3.1.
        assert_eq!(
            wire(&Command::Subscribe(Bytes::from_static(b"A"))),
            b"\x04\x0b\x09SUBSCRIBEA"
        );
        assert_eq!(
            wire(&Command::Cancel(Bytes::from_static(b"A"))),
            b"\x04\x08\x06CANCELA"
        );
        // libzmq's PING: no context.
        assert_eq!(
            wire(&Command::Ping {
                ttl: 0x0102,
                context: Bytes::new()
            }),
            b"\x04\x07\x04PING\x01\x02"
        );
        assert_eq!(
            wire(&Command::Pong {
                context: Bytes::from_static(b"hello")
            }),
            b"\x04\x0a\x04PONGhello"
        );
        assert_eq!(
            wire(&Command::Error {
                reason: Bytes::from_static(b"400")
            }),
            b"\x04\x0a\x05ERROR\x03400"
        );
    }

    #[test]
    fn a_250_octet_topic_takes_the_long_form() {
        let w = wire(&Command::Subscribe(Bytes::from(vec![b't'; 250])));
        assert_eq!(&w[..9], b"\x06\x00\x00\x00\x00\x00\x00\x01\x04");
        assert_eq!(w.len(), 9 + 260);
    }

    #[test]
    fn decode_round_trips() {
        let mut md = Metadata::new();
        md.push("Socket-Type", "ROUTER").unwrap();
        let cmds = [
            Command::Ready(md),
            Command::Error {
                reason: Bytes::from_static(b"nope"),
            },
            Command::Subscribe(Bytes::new()),
            Command::Cancel(Bytes::from_static(b"x")),
            Command::Ping {
                ttl: 5,
                context: Bytes::from_static(b"ctx"),
            },
            Command::Pong {
                context: Bytes::new(),
            },
            Command::Unknown {
                name: Bytes::from_static(b"ABCD"),
                data: Bytes::from_static(b"zz"),
            },
        ];
        for c in cmds {
            assert_eq!(Command::decode(Bytes::from(c.encode_body())), Ok(c));
        }
    }

    #[test]
    fn malformed_commands_are_refused() {
        let cases: [&[u8]; 6] = [
            b"",
            b"\x00",
            b"\x09A",         // name longer than the frame (checklist 19: 04 02 09 41)
            b"\x05ERROR\x09", // reason longer than the frame (checklist 27)
            b"\x04PING\x01",  // no full TTL (checklist 36)
            b"\x04PING\x00\x01aaaaaaaaaaaaaaaaa", // 17-octet context
        ];
        for body in cases {
            assert!(
                matches!(
                    Command::decode(Bytes::copy_from_slice(body)),
                    Err(PeerMisbehaved::MalformedCommand { .. })
                ),
                "{body:?}"
            );
        }
    }
}
