//! `Msg`: one frame of a message, with its MORE flag.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// Bodies up to this many octets live inside the `Msg` (no allocation, no reference count).
pub const INLINE_CAP: usize = 94;

/// One frame: a byte body and a `more` flag saying that further frames of the same message follow.
///
/// Small bodies (up to [`INLINE_CAP`] octets) are stored inline; larger ones are a shared, reference-
/// counted buffer, so cloning a `Msg` to fan it out to many subscribers never copies the body.
/// Created without copying from a `Vec<u8>`, a `String`, `Bytes` or [`Msg::from_static`].
#[derive(Clone)]
pub struct Msg {
    body: Body,
    /// 1 if further frames follow, else 0. A whole word, not a `bool`: the word-wide moves that copy
    /// a `Msg` just made then load what one store wrote (a one-octet store under an eight-octet load
    /// stalls the load, which had cost a receiver a tenth of its time).
    more: usize,
}

#[derive(Clone)]
enum Body {
    /// `buf[..len]`, `len <= INLINE_CAP`.
    Inline {
        len: u8,
        buf: [u8; INLINE_CAP],
    },
    Shared(Bytes),
}

impl Msg {
    /// An empty frame.
    pub const fn new() -> Msg {
        Msg {
            body: Body::Inline {
                len: 0,
                buf: [0; INLINE_CAP],
            },
            more: 0,
        }
    }

    /// A frame holding a copy of `data`.
    pub fn copy_from_slice(data: &[u8]) -> Msg {
        Msg {
            body: inline(data).unwrap_or_else(|| Body::Shared(Bytes::copy_from_slice(data))),
            more: 0,
        }
    }

    /// Makes this frame a copy of `data`, with no `more` flag: in place when the frame is inline and
    /// `data` fits inline (a receiver fills the frame it returns, rather than moving one about).
    pub(crate) fn assign(&mut self, data: &[u8]) {
        self.more = 0;
        if let Body::Inline { len, buf } = &mut self.body {
            if let (Some(dst), Ok(l)) = (buf.get_mut(..data.len()), u8::try_from(data.len())) {
                dst.copy_from_slice(data);
                *len = l;
                return;
            }
        }
        *self = Msg::copy_from_slice(data);
    }

    /// A frame over static data, without copying.
    pub fn from_static(data: &'static [u8]) -> Msg {
        Msg::from(Bytes::from_static(data))
    }

    /// Whether further frames of the same message follow.
    pub fn more(&self) -> bool {
        self.more != 0
    }

    /// Sets the `more` flag.
    pub fn set_more(&mut self, more: bool) {
        self.more = usize::from(more);
    }

    /// The same frame with the `more` flag set to `more`.
    pub fn with_more(mut self, more: bool) -> Msg {
        self.more = usize::from(more);
        self
    }

    /// The body as `Bytes` (no copy for a shared body; a small copy for an inline one).
    pub fn into_bytes(self) -> Bytes {
        match self.body {
            Body::Inline { .. } => Bytes::copy_from_slice(&self),
            Body::Shared(b) => b,
        }
    }

    /// The frame a network stream delivered: a small body copied inline, a larger one kept as the
    /// slice of the read buffer it is (no copy).
    pub(crate) fn from_frame(view: zring_zmtp::FrameView<'_>) -> Msg {
        if let Some((input, range)) = view.in_input() {
            return Msg::from_shared(input, range);
        }
        Msg::from_body(view.into_bytes())
    }

    /// A whole buffer as a frame: copied inline if small, else kept (no copy).
    pub(crate) fn from_body(body: Bytes) -> Msg {
        Msg::from_shared(&body, 0..body.len())
    }

    /// `range` of a shared buffer: copied inline if small, else a slice of it (no copy). An empty
    /// frame if `range` is not within `buf`.
    #[inline]
    pub(crate) fn from_shared(buf: &Bytes, range: std::ops::Range<usize>) -> Msg {
        if let Some((len, window)) = inline_window(buf, &range) {
            return Msg {
                body: Body::Inline { len, buf: *window },
                more: 0,
            };
        }
        match buf.get(range.clone()) {
            Some(body) if body.len() <= INLINE_CAP => Msg::copy_from_slice(body),
            Some(_) => Msg::from(buf.slice(range)),
            None => Msg::new(),
        }
    }

    /// Makes this frame `range` of `buf`, as [`Msg::from_shared`] does, with no `more` flag: in place
    /// when both this frame and that body are inline, so that the frame a receiver returns is
    /// filled where it lies, not made elsewhere and moved (a move just after the stores that made
    /// it stalls on them).
    pub(crate) fn assign_shared(&mut self, buf: &Bytes, range: std::ops::Range<usize>) {
        self.more = 0;
        if let Body::Inline { len, buf: dst } = &mut self.body {
            if let Some((l, window)) = inline_window(buf, &range) {
                *dst = *window;
                *len = l;
                return;
            }
        }
        *self = Msg::from_shared(buf, range);
    }

    /// Whether the body lives inside the `Msg` (small) rather than in a shared buffer.
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self.body, Body::Inline { .. })
    }

    /// The body as UTF-8 text.
    pub fn as_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(self)
    }
}

fn inline(data: &[u8]) -> Option<Body> {
    let len = u8::try_from(data.len())
        .ok()
        .filter(|&l| usize::from(l) <= INLINE_CAP)?;
    let mut buf = [0; INLINE_CAP];
    buf.get_mut(..data.len())?.copy_from_slice(data);
    Some(Body::Inline { len, buf })
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl Deref for Msg {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.body {
            Body::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            Body::Shared(b) => b,
        }
    }
}

impl AsRef<[u8]> for Msg {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Msg) -> bool {
        self.more == other.more && self[..] == other[..]
    }
}

impl Eq for Msg {}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Msg({:?}",
            Bytes::copy_from_slice(&self[..self.len().min(64)])
        )?;
        if self.len() > 64 {
            write!(f, "..+{}", self.len() - 64)?;
        }
        if self.more() {
            f.write_str(", more")?;
        }
        f.write_str(")")
    }
}

/// A frame sent through a ring (`zring_shm`): a large body is moved by reference, not copied.
impl zring_shm::Payload for Msg {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn to_shared(&self, _: fn(&[u8]) -> Bytes) -> Bytes {
        self.clone().into_bytes()
    }

    /// A body too large to be inline is moved; a small one is copied, so that the receiver's frame
    /// is inline.
    fn is_shared(&self) -> bool {
        matches!(&self.body, Body::Shared(b) if b.len() > INLINE_CAP)
    }
}

impl From<Bytes> for Msg {
    fn from(b: Bytes) -> Msg {
        Msg {
            body: Body::Shared(b),
            more: 0,
        }
    }
}

impl From<Vec<u8>> for Msg {
    fn from(v: Vec<u8>) -> Msg {
        match inline(&v) {
            Some(body) => Msg { body, more: 0 },
            None => Msg::from(Bytes::from(v)),
        }
    }
}

impl From<String> for Msg {
    fn from(s: String) -> Msg {
        Msg::from(s.into_bytes())
    }
}

impl From<&[u8]> for Msg {
    fn from(s: &[u8]) -> Msg {
        Msg::copy_from_slice(s)
    }
}

impl<const N: usize> From<&[u8; N]> for Msg {
    fn from(s: &[u8; N]) -> Msg {
        Msg::copy_from_slice(s)
    }
}

impl From<&str> for Msg {
    fn from(s: &str) -> Msg {
        Msg::copy_from_slice(s.as_bytes())
    }
}

impl From<&String> for Msg {
    fn from(s: &String) -> Msg {
        Msg::copy_from_slice(s.as_bytes())
    }
}

impl From<&Vec<u8>> for Msg {
    fn from(v: &Vec<u8>) -> Msg {
        Msg::copy_from_slice(v)
    }
}

impl From<&Msg> for Msg {
    fn from(m: &Msg) -> Msg {
        m.clone()
    }
}

/// For a body `range` of `buf` short enough to be inline: its length, and the `INLINE_CAP` octets
/// from its start, to copy whole (what follows the body comes along, unseen): a copy of constant
/// length is made of wide moves, where one of the body's own length stalls the moves that follow it.
fn inline_window<'a>(
    buf: &'a Bytes,
    range: &std::ops::Range<usize>,
) -> Option<(u8, &'a [u8; INLINE_CAP])> {
    let len = u8::try_from(range.len())
        .ok()
        .filter(|&l| usize::from(l) <= INLINE_CAP)?;
    let window = buf.get(range.start..)?.first_chunk::<INLINE_CAP>()?;
    Some((len, window))
}

/// What [`Socket::send`](crate::Socket::send) takes: anything that becomes a [`Msg`] and whose bytes
/// can be read where they are, so that a small message can be copied straight into its stream's
/// batch without becoming a `Msg` first.
pub trait IntoMsg: Into<Msg> + AsRef<[u8]> {
    /// Whether further frames of the same message follow (only a `Msg` can say so).
    fn more(&self) -> bool {
        false
    }
}

impl IntoMsg for Msg {
    fn more(&self) -> bool {
        self.more != 0
    }
}

impl IntoMsg for &Msg {
    fn more(&self) -> bool {
        self.more != 0
    }
}

impl IntoMsg for Bytes {}
impl IntoMsg for Vec<u8> {}
impl IntoMsg for String {}
impl IntoMsg for &[u8] {}
impl<const N: usize> IntoMsg for &[u8; N] {}
impl IntoMsg for &str {}
impl IntoMsg for &String {}
impl IntoMsg for &Vec<u8> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_assigned_a_span_of_a_buffer_holds_exactly_it_and_no_more_flag() {
        let mut data = vec![1u8; 3 * INLINE_CAP];
        data[10..15].copy_from_slice(b"short");
        let buf = Bytes::from(data);
        let mut m = Msg::from("a longer inline body").with_more(true);
        m.assign_shared(&buf, 10..15);
        assert_eq!(&m[..], b"short");
        assert!(!m.more());
        assert!(matches!(m.body, Body::Inline { len: 5, .. }), "in place");
        // Near the buffer's end, where a whole window does not fit, and too large to be inline.
        let end = buf.len();
        m.assign_shared(&buf, end - 3..end);
        assert_eq!(&m[..], &[1, 1, 1]);
        m.assign_shared(&buf, 0..INLINE_CAP + 1);
        assert_eq!(m.len(), INLINE_CAP + 1);
        assert!(matches!(m.body, Body::Shared(_)), "a slice, not a copy");
        m.assign_shared(&buf, end..end + 1);
        assert!(m.is_empty(), "out of the buffer: an empty frame");
    }

    #[test]
    fn a_frame_assigned_a_copy_holds_exactly_it_and_no_more_flag() {
        let mut m = Msg::from("a longer inline body").with_more(true);
        m.assign(b"short");
        assert_eq!(&m[..], b"short");
        assert!(!m.more());
        assert!(matches!(m.body, Body::Inline { len: 5, .. }));
        let big = vec![9u8; INLINE_CAP + 1];
        m.assign(&big);
        assert_eq!(&m[..], &big[..]);
        assert!(
            matches!(m.body, Body::Shared(_)),
            "too large to keep inline"
        );
        m.assign(b"");
        assert!(m.is_empty());
        assert!(matches!(m.body, Body::Inline { len: 0, .. }));
    }

    #[test]
    fn small_bodies_are_inline_and_large_ones_shared_without_copy() {
        let small = Msg::from("hello");
        assert!(matches!(small.body, Body::Inline { len: 5, .. }));
        assert_eq!(&small[..], b"hello");
        let v = vec![7u8; 100];
        let ptr = v.as_ptr();
        let big = Msg::from(v);
        assert_eq!(big.as_ptr(), ptr, "a Vec becomes a Msg without copying");
        let fanned = big.clone();
        assert_eq!(fanned.as_ptr(), ptr, "cloning shares the body");
        let s = "x".repeat(100);
        let sp = s.as_ptr();
        assert_eq!(Msg::from(s).as_ptr(), sp);
        static DATA: [u8; 64] = [1; 64];
        assert_eq!(Msg::from_static(&DATA).as_ptr(), DATA.as_ptr());
    }

    #[test]
    fn more_flag_and_equality() {
        let m = Msg::from("a").with_more(true);
        assert!(m.more());
        assert_ne!(m, Msg::from("a"));
        assert_eq!(m.clone().with_more(false), Msg::from(&b"a"[..]));
        assert_eq!(Msg::new().len(), 0);
        assert_eq!(
            Msg::copy_from_slice(&[0; INLINE_CAP + 1]).len(),
            INLINE_CAP + 1
        );
        assert!(matches!(
            Msg::copy_from_slice(&[0; INLINE_CAP]).body,
            Body::Inline { len, .. } if usize::from(len) == INLINE_CAP
        ));
        assert_eq!(Msg::from("héllo").as_str(), Ok("héllo"));
        assert_eq!(&Msg::from("xyz").into_bytes()[..], b"xyz");
    }
}
