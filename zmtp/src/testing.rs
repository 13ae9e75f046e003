//! A deterministic harness for tests, fuzzing and benches: two connections wired back to back through
//! byte buffers, a simulated clock, and a knob for how the byte stream is cut. Not part of the API.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Config, Connection, Error, Event, Transmit, UsageError};

/// One end of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first connection.
    A,
    /// The second connection.
    B,
}

/// A connection failed while the harness drove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which end failed.
    pub side: Side,
    /// Why.
    pub error: Error,
}

/// Two connections, back to back.
#[derive(Debug)]
pub struct Pair {
    /// The first connection.
    pub a: Connection,
    /// The second connection.
    pub b: Connection,
    /// The simulated clock.
    pub now: Instant,
    /// Events that `a` produced, in order.
    pub a_events: Vec<Event>,
    /// Events that `b` produced, in order.
    pub b_events: Vec<Event>,
    /// Bytes are delivered in pieces of at most this many octets (at least 1).
    pub chunk: usize,
}

/// Bounds every drive loop: a conversation that has not gone quiet after this many steps is a bug.
const MAX_STEPS: usize = 1_000_000;

impl Pair {
    /// Two connections started at the simulated instant `now`.
    pub fn new(a: Config, b: Config, now: Instant) -> Result<Pair, UsageError> {
        Ok(Pair {
            a: Connection::new(a, now)?,
            b: Connection::new(b, now)?,
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
            chunk: usize::MAX,
        })
    }

    fn conns(&mut self, from: Side) -> (&mut Connection, &mut Connection, &mut Vec<Event>) {
        match from {
            Side::A => (&mut self.a, &mut self.b, &mut self.b_events),
            Side::B => (&mut self.b, &mut self.a, &mut self.a_events),
        }
    }

    /// Moves what `from` has queued to the other end, in pieces of `chunk` octets, and collects the
    /// receiver's events. Returns how many octets moved.
    pub fn transfer(&mut self, from: Side) -> Result<usize, Failure> {
        let chunk = self.chunk.max(1);
        let now = self.now;
        let (src, dst, events) = self.conns(from);
        let mut batch = Transmit::new();
        src.poll_transmit(&mut batch);
        let bytes = batch.to_vec();
        let to = match from {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        for piece in bytes.chunks(chunk) {
            let result = dst.handle_input(Bytes::copy_from_slice(piece), now);
            events.extend(std::iter::from_fn(|| dst.poll_event()));
            result.map_err(|error| Failure { side: to, error })?;
        }
        Ok(bytes.len())
    }

    /// Transfers both ways until nothing moves.
    #[allow(
        clippy::panic,
        reason = "test harness: a pair that never goes quiet is a bug in the code under test"
    )]
    pub fn drive(&mut self) -> Result<(), Failure> {
        for _ in 0..MAX_STEPS {
            if self.transfer(Side::A)? + self.transfer(Side::B)? == 0 {
                return Ok(());
            }
        }
        panic!("the pair did not go quiet within {MAX_STEPS} steps");
    }

    /// Moves the clock forward by `d` and runs both connections' timers.
    pub fn advance(&mut self, d: Duration) -> Result<(), Failure> {
        self.now += d;
        let now = self.now;
        self.a.handle_timeout(now).map_err(|error| Failure {
            side: Side::A,
            error,
        })?;
        self.b.handle_timeout(now).map_err(|error| Failure {
            side: Side::B,
            error,
        })
    }

    /// Takes the message frames that `side` received, grouped into messages (a trailing partial
    /// message is left out), dropping other events.
    pub fn messages(&mut self, side: Side) -> Vec<Vec<Bytes>> {
        let events = match side {
            Side::A => std::mem::take(&mut self.a_events),
            Side::B => std::mem::take(&mut self.b_events),
        };
        let mut out = Vec::new();
        let mut current = Vec::new();
        for e in events {
            if let Event::Frame(f) = e {
                let more = f.more();
                current.push(f.body);
                if !more {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
        out
    }
}
