//! A bounded reader over one frame body: every length is checked against what remains before anything
//! is sliced, so a lying length fails without allocating or panicking.

use bytes::Bytes;

/// A length field pointed past the end of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// Bytes asked for.
    pub(crate) needed: u64,
    /// Bytes that remained.
    pub(crate) available: usize,
}

/// Reads fields front to back from a body.
///
/// Invariant: `0 <= pos <= buf.len()`.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes as a slice of the body (no copy).
    pub(crate) fn take(&mut self, n: u64) -> Result<Bytes, Short> {
        let available = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n <= available => {
                let out = self.buf.slice(self.pos..self.pos + n);
                self.pos += n;
                Ok(out)
            }
            _ => Err(Short {
                needed: n,
                available,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let available = self.remaining();
        let src = self.buf.get(self.pos..self.pos + N).ok_or(Short {
            needed: N as u64,
            available,
        })?;
        let mut out = [0u8; N];
        out.copy_from_slice(src);
        self.pos += N;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Short> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_be_bytes)
    }

    /// Everything that remains.
    pub(crate) fn rest(self) -> Bytes {
        self.buf.slice(self.pos..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lying_lengths_fail_without_moving() {
        let mut r = Reader::new(Bytes::from_static(b"\x00\x00\x00\x05abc"));
        assert_eq!(r.u32(), Ok(5));
        assert_eq!(
            r.take(5),
            Err(Short {
                needed: 5,
                available: 3
            })
        );
        assert_eq!(
            r.take(u64::MAX),
            Err(Short {
                needed: u64::MAX,
                available: 3
            })
        );
        assert_eq!(r.take(3).as_deref(), Ok(&b"abc"[..]));
        assert_eq!(r.remaining(), 0);
        assert!(r.u8().is_err());
        assert!(r.rest().is_empty());
    }
}
