//! Frames (spec 37, "Framing"): a flags octet, a 1- or 8-octet size, then the body.
//!
//! The decoder is a loop over a small state machine (need a header, then need a body), fed buffers in
//! whatever pieces the transport delivers. It checks every size against the configured maximum before
//! it allocates anything, and returns a body that lies wholly inside one input buffer as a slice of that
//! buffer, without copying.

use bytes::{Buf, BufMut, Bytes};

use crate::error::PeerMisbehaved;

/// The bits of a frame's flags octet.
pub mod flags {
    /// More frames of this message follow.
    pub const MORE: u8 = 0x01;
    /// The size is 8 octets (otherwise 1).
    pub const LONG: u8 = 0x02;
    /// The frame is a command, not part of a message.
    pub const COMMAND: u8 = 0x04;
    /// Bits 3-7, which must be zero.
    pub const RESERVED: u8 = 0xF8;
}

/// The longest frame header: a flags octet and an 8-octet size.
pub const MAX_HEADER_LEN: usize = 9;

/// Bodies up to this size being assembled from pieces get their whole buffer at once; larger ones grow
/// with what arrives, so that a peer that announces a large frame and stalls costs no more memory than
/// it has sent.
const EAGER_BODY_LIMIT: usize = 8 * 1024;

/// Appends the header of a frame with a body of `len` octets. `frame_flags` is [`flags::MORE`] and/or
/// [`flags::COMMAND`]; [`flags::LONG`] is added when the body is longer than 255 octets (the short form is
/// used whenever it fits, as spec 37 asks).
pub fn encode_header(out: &mut Vec<u8>, len: usize, frame_flags: u8) {
    let frame_flags = frame_flags & (flags::MORE | flags::COMMAND);
    match u8::try_from(len) {
        Ok(short) => {
            out.put_u8(frame_flags);
            out.put_u8(short);
        }
        Err(_) => {
            out.put_u8(frame_flags | flags::LONG);
            out.put_u64(len as u64);
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The body: a slice of the input when it arrived in one buffer.
    pub body: Bytes,
    /// [`flags::MORE`] and [`flags::COMMAND`] as received (never [`flags::LONG`]).
    pub flags: u8,
}

impl Frame {
    /// Whether more frames of the same message follow.
    pub fn more(&self) -> bool {
        self.flags & flags::MORE != 0
    }

    /// Whether this is a command frame.
    pub fn is_command(&self) -> bool {
        self.flags & flags::COMMAND != 0
    }
}

/// Where the decoder is between two calls.
#[derive(Debug)]
enum Partial {
    /// At a frame boundary.
    None,
    /// Part of a header: `0 < have < header length`, the header length being known from `buf[0]`.
    Header {
        buf: [u8; MAX_HEADER_LEN],
        have: usize,
    },
    /// Part of a body: `buf.len() < len`, `buf.capacity() <= len` (0 until the first body octets).
    Body { flags: u8, len: usize, buf: Vec<u8> },
}

/// Turns a byte stream into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    /// The largest body accepted; never above `isize::MAX`.
    max: u64,
    partial: Partial,
}

/// Validates a flags octet as soon as it is seen.
fn check_flags(f: u8) -> Result<(), PeerMisbehaved> {
    if f & flags::RESERVED != 0 {
        return Err(PeerMisbehaved::ReservedFlags { flags: f });
    }
    if f & flags::COMMAND != 0 && f & flags::MORE != 0 {
        return Err(PeerMisbehaved::CommandWithMore);
    }
    Ok(())
}

fn header_len(f: u8) -> usize {
    if f & flags::LONG != 0 {
        MAX_HEADER_LEN
    } else {
        2
    }
}

impl FrameDecoder {
    /// A decoder refusing bodies over `max_size` octets (`None`: only what this machine can address).
    pub fn new(max_size: Option<u64>) -> FrameDecoder {
        let addressable = isize::MAX as u64;
        FrameDecoder {
            max: max_size.map_or(addressable, |m| m.min(addressable)),
            partial: Partial::None,
        }
    }

    /// Whether the decoder stands at a frame boundary (nothing of a frame is held).
    pub fn is_idle(&self) -> bool {
        matches!(self.partial, Partial::None)
    }

    /// Parses a complete header whose first `hdr` octets are in `h`. Returns (flags, body length).
    fn parse_header(&self, h: &[u8]) -> Result<(u8, usize), PeerMisbehaved> {
        let (f, claimed) = match *h {
            [f, size] if f & flags::LONG == 0 => (f, u64::from(size)),
            [f, a, b, c, d, e, g, i, j] => (f, u64::from_be_bytes([a, b, c, d, e, g, i, j])),
            // Callers pass exactly `header_len(h[0])` octets.
            _ => return Err(PeerMisbehaved::ReservedFlags { flags: 0xFF }),
        };
        if claimed > self.max {
            return Err(PeerMisbehaved::FrameTooLarge {
                claimed,
                max: self.max,
            });
        }
        // `self.max <= isize::MAX`, so the conversion cannot fail.
        let len = usize::try_from(claimed).map_err(|_| PeerMisbehaved::FrameTooLarge {
            claimed,
            max: self.max,
        })?;
        Ok((f & (flags::MORE | flags::COMMAND), len))
    }

    /// Decodes the next frame from `input`, consuming what it uses. Returns `Ok(None)` once `input` is
    /// exhausted without completing a frame (what was read is kept for the next call). Any error is
    /// final: the stream cannot be resynchronised.
    pub fn decode(&mut self, input: &mut Bytes) -> Result<Option<Frame>, PeerMisbehaved> {
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            match &mut self.partial {
                Partial::None => {
                    let Some(&f) = input.first() else {
                        return Ok(None);
                    };
                    check_flags(f)?;
                    let hdr = header_len(f);
                    let Some(h) = input.get(..hdr) else {
                        let mut buf = [0u8; MAX_HEADER_LEN];
                        let have = input.len();
                        copy_prefix(&mut buf, input);
                        input.clear();
                        self.partial = Partial::Header { buf, have };
                        return Ok(None);
                    };
                    let (flags, len) = self.parse_header(h)?;
                    input.advance(hdr);
                    if let Some(frame) = self.start_body(flags, len, input) {
                        return Ok(Some(frame));
                    }
                }
                Partial::Header { buf, have } => {
                    let hdr = header_len(buf[0]);
                    let take = (hdr - *have).min(input.len());
                    copy_prefix(buf.get_mut(*have..).unwrap_or_default(), &input[..]);
                    *have += take;
                    input.advance(take);
                    if *have < hdr {
                        return Ok(None);
                    }
                    let header = *buf;
                    let (flags, len) = self.parse_header(header.get(..hdr).unwrap_or_default())?;
                    self.partial = Partial::None;
                    if let Some(frame) = self.start_body(flags, len, input) {
                        return Ok(Some(frame));
                    }
                }
                Partial::Body { flags, len, buf } => {
                    if buf.is_empty() && input.len() >= *len {
                        // Nothing of the body held yet and all of it here: slice, do not copy.
                        let frame = Frame {
                            body: input.split_to(*len),
                            flags: *flags,
                        };
                        self.partial = Partial::None;
                        return Ok(Some(frame));
                    }
                    let take = (*len - buf.len()).min(input.len());
                    grow(buf, *len, take);
                    buf.extend_from_slice(input.get(..take).unwrap_or_default());
                    input.advance(take);
                    if buf.len() < *len {
                        return Ok(None);
                    }
                    let frame = Frame {
                        body: Bytes::from(std::mem::take(buf)),
                        flags: *flags,
                    };
                    self.partial = Partial::None;
                    return Ok(Some(frame));
                }
            }
        }
    }

    /// After a header: a body that lies wholly in `input` is returned as a slice of it (no copy);
    /// otherwise the decoder waits for the body, allocating nothing until its first octets arrive.
    fn start_body(&mut self, flags: u8, len: usize, input: &mut Bytes) -> Option<Frame> {
        if len <= input.len() {
            return Some(Frame {
                body: input.split_to(len),
                flags,
            });
        }
        self.partial = Partial::Body {
            flags,
            len,
            buf: Vec::new(),
        };
        None
    }
}

/// Copies as much of `src` as fits into the front of `dst`.
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Grows `buf` to hold `incoming` more octets of a body of `len`. The buffer gets the body's exact size
/// at once when the body is small ([`EAGER_BODY_LIMIT`]) or a quarter of it has arrived; before that it
/// grows geometrically with what arrives. So the memory a peer costs is at most about four times what
/// it sent (or 8 KiB), whatever it claims, and a large body that arrives in big reads is copied once.
fn grow(buf: &mut Vec<u8>, len: usize, incoming: usize) {
    let needed = buf.len() + incoming;
    if needed > buf.capacity() {
        let target = if len <= EAGER_BODY_LIMIT || len / 4 <= needed {
            len
        } else {
            needed
                .max(buf.capacity().saturating_mul(2))
                .max(EAGER_BODY_LIMIT)
                .min(len)
        };
        buf.reserve_exact(target - buf.len());
    }
}
