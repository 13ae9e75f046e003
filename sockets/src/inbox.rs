//! The one-frame messages a socket's thread read from its stream itself (see
//! [`zring_engine::DirectReader::read`]), kept as spans of the read buffer they came in: a `Msg` is
//! made only when one is received, once, where the caller gets it.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;
use zring_zmtp::FrameView;

use crate::msg::Msg;

/// Messages in arrival order, most of them spans of one read buffer.
#[derive(Default)]
pub(crate) struct Inbox {
    /// The read buffer the spans lie in (released once they are all taken, so that the reader can
    /// reuse its memory).
    chunk: Bytes,
    items: VecDeque<Item>,
    /// How many of `items` are spans of `chunk`.
    spans: usize,
}

enum Item {
    /// `chunk[start..end]`.
    Span(u32, u32),
    /// A body that lies elsewhere (assembled from two reads, or in an older buffer).
    Owned(Bytes),
}

impl Inbox {
    /// Keeps the message of `view`, after those kept before.
    pub(crate) fn keep(&mut self, view: FrameView<'_>) {
        if let Some(span) = view
            .in_input()
            .and_then(|(input, r)| self.span_of(input, r))
        {
            self.items.push_back(span);
        } else {
            self.items.push_back(Item::Owned(view.into_bytes()));
        }
    }

    /// `range` of `input` as a span of the chunk, if `input` is the chunk (or may become it: no span
    /// refers to the chunk).
    fn span_of(&mut self, input: &Bytes, range: Range<usize>) -> Option<Item> {
        let span = Item::Span(
            u32::try_from(range.start).ok()?,
            u32::try_from(range.end).ok()?,
        );
        let same = self.chunk.as_ptr() == input.as_ptr() && self.chunk.len() == input.len();
        if !same {
            if self.spans > 0 {
                return None;
            }
            self.chunk = input.clone();
        }
        self.spans += 1;
        Some(span)
    }

    /// The oldest message whose body `accepts` (those before it that it refuses are dropped), into
    /// `out` (filled in place where it can be); `false` if there is none.
    #[inline]
    pub(crate) fn pop(&mut self, out: &mut Msg, accepts: impl Fn(&[u8]) -> bool) -> bool {
        // Most receives find it empty: that look costs no call.
        if self.items.is_empty() {
            return false;
        }
        self.take(out, accepts)
    }

    #[inline]
    fn take(&mut self, out: &mut Msg, accepts: impl Fn(&[u8]) -> bool) -> bool {
        loop {
            let Some(item) = self.items.pop_front() else {
                return false;
            };
            match item {
                Item::Span(start, end) => {
                    self.spans -= 1;
                    let range = start as usize..end as usize;
                    // The last span lets the buffer go (moved out, not counted again).
                    let last = (self.spans == 0).then(|| std::mem::take(&mut self.chunk));
                    let chunk = last.as_ref().unwrap_or(&self.chunk);
                    if chunk.get(range.clone()).is_some_and(&accepts) {
                        out.assign_shared(chunk, range);
                        return true;
                    }
                }
                Item::Owned(body) => {
                    if accepts(&body) {
                        *out = Msg::from_body(body);
                        return true;
                    }
                }
            }
        }
    }

    /// Drops every message kept (and lets the read buffer go): none is for the socket.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.spans = 0;
        self.chunk = Bytes::new();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
