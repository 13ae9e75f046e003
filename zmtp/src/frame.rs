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
pub fn encode_header(out: &mut impl BufMut, len: usize, frame_flags: u8) {
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

/// A decoded frame, borrowed: from the input buffer (the fast path) or owned by the decoder (a body that
/// was assembled from several buffers). The consumer reads [`FrameView::body`] and copies it when small,
/// or takes [`FrameView::into_bytes`], a zero-copy slice, when large.
#[derive(Debug)]
pub struct FrameView<'a> {
    source: Source<'a>,
    flags: u8,
}

#[derive(Debug)]
enum Source<'a> {
    /// `input[start..end]`, with `start <= end <= input.len()`.
    Input {
        input: &'a Bytes,
        start: usize,
        end: usize,
    },
    /// A body that did not lie in one buffer.
    Owned(Bytes),
}

impl FrameView<'_> {
    /// The body.
    pub fn body(&self) -> &[u8] {
        match &self.source {
            Source::Input { input, start, end } => input.get(*start..*end).unwrap_or_default(),
            Source::Owned(b) => b,
        }
    }

    /// [`flags::MORE`] and [`flags::COMMAND`] as received.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether more frames of the same message follow.
    pub fn more(&self) -> bool {
        self.flags & flags::MORE != 0
    }

    /// Whether this is a command frame.
    pub fn is_command(&self) -> bool {
        self.flags & flags::COMMAND != 0
    }

    /// The input buffer the body lies in and where in it; `None` for a body assembled from several
    /// buffers.
    pub fn in_input(&self) -> Option<(&Bytes, std::ops::Range<usize>)> {
        match &self.source {
            Source::Input { input, start, end } => Some((input, *start..*end)),
            Source::Owned(_) => None,
        }
    }

    /// The body as `Bytes` without copying: a slice of the input buffer, or the assembled buffer.
    pub fn into_bytes(self) -> Bytes {
        match self.source {
            Source::Input { input, start, end } => input.slice(start..end),
            Source::Owned(b) => b,
        }
    }

    /// A view of an owned frame (for a consumer of views that has a frame of its own to hand on).
    pub fn owned(frame: Frame) -> FrameView<'static> {
        FrameView {
            flags: frame.flags,
            source: Source::Owned(frame.body),
        }
    }

    /// The owned frame.
    pub fn into_frame(self) -> Frame {
        let flags = self.flags;
        Frame {
            body: self.into_bytes(),
            flags,
        }
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

    /// Decodes every frame in `input`, handing each to `sink` as a view (no reference count is taken and
    /// nothing is copied unless the sink asks). What `input` holds of an unfinished frame is kept for the
    /// next call. Stops at the first error, the decoder's or the sink's. This is the fast path; see
    /// [`FrameDecoder::decode`] for one owned frame at a time.
    pub fn decode_all<E: From<PeerMisbehaved>>(
        &mut self,
        input: &Bytes,
        mut sink: impl FnMut(FrameView<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut pos = 0;
        if !self.is_idle() {
            // Finish the frame left from the previous buffer with the general state machine.
            let mut rest = input.clone();
            match self.decode(&mut rest)? {
                Some(frame) => sink(FrameView {
                    flags: frame.flags,
                    source: Source::Owned(frame.body),
                })?,
                None => return Ok(()),
            }
            pos = input.len() - rest.len();
        }
        // Invariant: `pos <= input.len()`, at a frame boundary.
        while let Some(buf) = input.get(pos..).filter(|b| !b.is_empty()) {
            let f = buf.first().copied().unwrap_or_default();
            check_flags(f)?;
            let hdr = header_len(f);
            let complete = match buf.get(..hdr) {
                Some(h) => {
                    let (flags, len) = self.parse_header(h)?;
                    let start = pos + hdr;
                    (len <= input.len() - start).then_some((flags, start, start + len))
                }
                None => None,
            };
            let Some((flags, start, end)) = complete else {
                // An unfinished frame: the state machine keeps what there is of it.
                let mut rest = input.slice(pos..);
                while let Some(frame) = self.decode(&mut rest)? {
                    sink(FrameView {
                        flags: frame.flags,
                        source: Source::Owned(frame.body),
                    })?;
                }
                return Ok(());
            };
            sink(FrameView {
                flags,
                source: Source::Input { input, start, end },
            })?;
            pos = end;
        }
        Ok(())
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
                    return Ok(self.take_complete_body());
                }
            }
        }
    }

    /// Lends the buffer of a body being assembled, with at least `min` (> 0) octets still to come,
    /// to `fill` (see [`crate::Connection::fill_body`]): room is reserved for as many more octets as
    /// have arrived (at least 8 KiB, at most `min`, never past the body's end), so the buffer at most
    /// doubles what the peer sent, and `fill` appends at most the second argument's octets. Returns
    /// `None` when there is no such body, else the frame if the body is now complete. Octets
    /// appended past the body's end are cut off.
    pub fn fill_body(
        &mut self,
        min: usize,
        fill: impl FnOnce(&mut Vec<u8>, usize),
    ) -> Option<Option<Frame>> {
        let Partial::Body { len, buf, .. } = &mut self.partial else {
            return None;
        };
        let outstanding = *len - buf.len();
        // `min > 0` also makes the room offered never empty.
        if min == 0 || outstanding < min {
            return None;
        }
        grow(buf, *len, min.min(buf.len().max(EAGER_BODY_LIMIT)));
        let room = (buf.capacity() - buf.len()).min(outstanding);
        fill(buf, room);
        buf.truncate(*len);
        Some(self.take_complete_body())
    }

    /// The frame of the body being assembled, if all of it has arrived (the decoder is then back at
    /// a frame boundary).
    fn take_complete_body(&mut self) -> Option<Frame> {
        let Partial::Body { flags, len, buf } = &mut self.partial else {
            return None;
        };
        if buf.len() < *len {
            return None;
        }
        let frame = Frame {
            body: Bytes::from(std::mem::take(buf)),
            flags: *flags,
        };
        self.partial = Partial::None;
        Some(frame)
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
