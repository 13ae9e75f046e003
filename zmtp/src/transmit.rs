//! Outgoing bytes, ready for a vectored write.
//!
//! A [`Transmit`] is an ordered list of segments: runs of a staging buffer (frame headers, commands and
//! small bodies copied in) and bodies held by reference (`Bytes`), which are never copied. A writer takes
//! [`Transmit::io_slices`], writes what the kernel accepts, and calls [`Transmit::advance`].

use std::io::IoSlice;

use bytes::Bytes;

use crate::frame::encode_header;

/// Bodies up to this many octets are copied into the staging buffer next to their header: one write
/// then carries many small messages. Larger bodies are written from their own buffer.
pub const DEFAULT_INLINE_MAX: usize = 1024;

#[derive(Debug)]
enum Segment {
    /// `staging[start..end]`.
    Staged { start: usize, end: usize },
    /// A body written from its own buffer.
    Body(Bytes),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Staged { start, end } => end - start,
            Segment::Body(b) => b.len(),
        }
    }
}

/// A batch of outgoing bytes.
///
/// Invariants: `head <= segments.len()`; `offset < segments[head].len()` when `head < segments.len()`,
/// else `offset == 0`; `len` is the number of unsent octets; every staged range lies in `staging`.
#[derive(Debug)]
pub struct Transmit {
    staging: Vec<u8>,
    segments: Vec<Segment>,
    head: usize,
    offset: usize,
    len: usize,
    inline_max: usize,
}

impl Default for Transmit {
    fn default() -> Self {
        Transmit::new()
    }
}

impl Transmit {
    /// An empty batch that copies bodies of up to [`DEFAULT_INLINE_MAX`] octets.
    pub fn new() -> Transmit {
        Transmit::with_inline_max(DEFAULT_INLINE_MAX)
    }

    /// An empty batch that copies bodies of up to `inline_max` octets (0: only headers are copied).
    pub fn with_inline_max(inline_max: usize) -> Transmit {
        Transmit {
            staging: Vec::new(),
            segments: Vec::new(),
            head: 0,
            offset: 0,
            len: 0,
            inline_max,
        }
    }

    /// Unsent octets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether everything was sent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw octets (copied).
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.stage(|staging| staging.extend_from_slice(bytes));
    }

    /// Appends one frame: its header, then its body (copied if small, else by reference).
    pub fn push_frame(&mut self, body: Bytes, frame_flags: u8) {
        if body.len() <= self.inline_max {
            self.push_copy(&body, frame_flags);
        } else {
            self.stage(|staging| encode_header(staging, body.len(), frame_flags));
            self.push_shared(body);
        }
    }

    /// Appends raw octets by reference (copied when at most the inline maximum).
    pub fn push_shared(&mut self, bytes: Bytes) {
        if bytes.len() <= self.inline_max {
            if !bytes.is_empty() {
                self.push_bytes(&bytes);
            }
        } else {
            self.len += bytes.len();
            self.segments.push(Segment::Body(bytes));
        }
    }

    /// Appends one frame whose body is copied into the staging buffer, whatever its size.
    pub fn push_copy(&mut self, body: &[u8], frame_flags: u8) {
        self.stage(|staging| {
            encode_header(staging, body.len(), frame_flags);
            staging.extend_from_slice(body);
        });
    }

    /// Appends to the staging buffer with `write`, extending the last staged segment when it ends
    /// where the buffer does.
    fn stage(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.staging.len();
        write(&mut self.staging);
        let end = self.staging.len();
        self.len += end - start;
        match self.segments.last_mut() {
            Some(Segment::Staged { end: last_end, .. }) if *last_end == start => *last_end = end,
            _ => self.segments.push(Segment::Staged { start, end }),
        }
    }

    /// The unsent octets as slices, in order, at most `max` of them (for `writev`, whose limit is
    /// `IOV_MAX`).
    pub fn io_slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>, max: usize) {
        out.extend(self.chunks().take(max).map(IoSlice::new));
    }

    /// The unsent octets as slices, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut skip = self.offset;
        self.segments
            .get(self.head..)
            .unwrap_or_default()
            .iter()
            .map(move |seg| {
                let whole: &[u8] = match seg {
                    Segment::Staged { start, end } => {
                        self.staging.get(*start..*end).unwrap_or_default()
                    }
                    Segment::Body(b) => b,
                };
                let part = whole.get(skip..).unwrap_or_default();
                skip = 0;
                part
            })
    }

    /// Marks the first `n` unsent octets as sent. `n` larger than [`Transmit::len`] counts as all.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(seg) = self.segments.get(self.head) else {
                break;
            };
            let left = seg.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.head += 1;
            self.offset = 0;
        }
        if self.len == 0 {
            self.clear();
        }
    }

    /// Drops everything unsent, keeping the allocations.
    pub fn clear(&mut self) {
        self.staging.clear();
        self.segments.clear();
        self.head = 0;
        self.offset = 0;
        self.len = 0;
    }

    /// Moves everything unsent in `other` to the end of `self`, leaving `other` empty.
    pub fn append(&mut self, other: &mut Transmit) {
        if self.is_empty() {
            // Swap: no copy, and `other` keeps our (empty) allocations for reuse.
            self.clear();
            std::mem::swap(&mut self.staging, &mut other.staging);
            std::mem::swap(&mut self.segments, &mut other.segments);
            std::mem::swap(&mut self.head, &mut other.head);
            std::mem::swap(&mut self.offset, &mut other.offset);
            std::mem::swap(&mut self.len, &mut other.len);
            return;
        }
        let mut skip = other.offset;
        for seg in other.segments.drain(other.head..) {
            match seg {
                Segment::Staged { start, end } => {
                    let bytes = other.staging.get(start + skip..end).unwrap_or_default();
                    self.push_bytes(bytes);
                }
                Segment::Body(b) => {
                    let b = b.slice(skip..);
                    self.len += b.len();
                    self.segments.push(Segment::Body(b));
                }
            }
            skip = 0;
        }
        other.clear();
    }

    /// All unsent octets, copied into one vector (for tests and tools, not for the hot path).
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks().flatten().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags;

    #[test]
    fn small_bodies_are_staged_and_large_ones_referenced() {
        let mut t = Transmit::with_inline_max(4);
        t.push_frame(Bytes::from_static(b"ab"), flags::MORE);
        t.push_frame(Bytes::from_static(b"cd"), 0);
        let big = Bytes::from(vec![7u8; 300]);
        t.push_frame(big.clone(), 0);
        let chunks: Vec<&[u8]> = t.chunks().collect();
        assert_eq!(
            chunks.len(),
            2,
            "two staged frames and a header share one run"
        );
        assert_eq!(
            chunks[0],
            b"\x01\x02ab\x00\x02cd\x02\x00\x00\x00\x00\x00\x00\x01\x2c"
        );
        assert_eq!(
            chunks[1].as_ptr(),
            big.as_ptr(),
            "the large body is not copied"
        );
        assert_eq!(t.len(), 8 + 9 + 300);
    }

    #[test]
    fn advance_walks_across_segments_and_resets_when_done() {
        let mut t = Transmit::with_inline_max(0);
        t.push_frame(Bytes::from_static(b"hello"), 0);
        t.push_frame(Bytes::from_static(b"world"), 0);
        let all = t.to_vec();
        assert_eq!(all, b"\x00\x05hello\x00\x05world");
        for cut in 0..=all.len() {
            let mut u = Transmit::with_inline_max(0);
            u.push_frame(Bytes::from_static(b"hello"), 0);
            u.push_frame(Bytes::from_static(b"world"), 0);
            u.advance(cut);
            assert_eq!(u.to_vec(), &all[cut..]);
            assert_eq!(u.len(), all.len() - cut);
        }
        t.advance(usize::MAX);
        assert!(t.is_empty());
        assert_eq!(t.chunks().count(), 0);
    }

    #[test]
    fn append_keeps_order_and_partial_progress() {
        let mut a = Transmit::with_inline_max(0);
        a.push_bytes(b"12");
        let mut b = Transmit::with_inline_max(0);
        b.push_bytes(b"345");
        b.push_frame(Bytes::from_static(b"xyz"), 0);
        b.advance(1);
        a.append(&mut b);
        assert!(b.is_empty());
        assert_eq!(a.to_vec(), b"1245\x00\x03xyz");
        let mut empty = Transmit::new();
        empty.append(&mut a);
        assert_eq!(empty.to_vec(), b"1245\x00\x03xyz");
        assert!(a.is_empty());
    }

    #[test]
    fn io_slices_respects_the_limit() {
        let mut t = Transmit::with_inline_max(0);
        for _ in 0..10 {
            t.push_frame(Bytes::from_static(b"x"), 0);
        }
        let mut v = Vec::new();
        t.io_slices(&mut v, 4);
        assert_eq!(v.len(), 4);
    }
}
