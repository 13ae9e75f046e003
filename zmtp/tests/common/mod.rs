//! A blocking driver of one codec connection over a `std::net::TcpStream`, for the interop tests and
//! the example: the stream is read with a short timeout, everything queued is written vectored, and
//! every wait is bounded.

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zring_zmtp::{Config, Connection, Error, Event, PeerInfo, Transmit};

/// How long any wait may take before the driver gives up.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// One TCP stream, driven only by the codec.
pub(crate) struct Wire {
    stream: TcpStream,
    /// The codec connection.
    pub(crate) conn: Connection,
    events: VecDeque<Event>,
    batch: Transmit,
    /// Octets written to the stream.
    pub(crate) written: usize,
}

impl Wire {
    /// Wraps a connected stream; our greeting and READY go out at once.
    pub(crate) fn new(stream: TcpStream, config: Config) -> Wire {
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("read timeout");
        let conn = Connection::new(config, Instant::now()).expect("valid config");
        let mut wire = Wire {
            stream,
            conn,
            events: VecDeque::new(),
            batch: Transmit::new(),
            written: 0,
        };
        wire.flush().expect("write greeting");
        wire
    }

    /// Writes everything the codec has queued.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.conn.poll_transmit(&mut self.batch);
        while !self.batch.is_empty() {
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            self.batch.io_slices(&mut slices, 512);
            match self.stream.write_vectored(&slices) {
                Ok(n) => {
                    self.batch.advance(n);
                    self.written += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One turn: write what is queued, read what has arrived (waiting a few milliseconds at most), run
    /// the timers. Returns the codec's error, or a note that the peer closed the stream.
    pub(crate) fn turn(&mut self) -> Result<(), String> {
        self.flush().map_err(|e| format!("write: {e}"))?;
        let mut buf = BytesMut::zeroed(256 * 1024);
        match self.stream.read(&mut buf) {
            Ok(0) => return Err("peer closed the stream".into()),
            Ok(n) => {
                buf.truncate(n);
                let r = self.conn.handle_input(buf.freeze(), Instant::now());
                self.events
                    .extend(std::iter::from_fn(|| self.conn.poll_event()));
                r.map_err(|e: Error| e.to_string())?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        self.conn
            .handle_timeout(Instant::now())
            .map_err(|e| e.to_string())?;
        self.flush().map_err(|e| format!("write: {e}"))
    }

    /// Turns until `pick` returns something, for at most [`WAIT`].
    pub(crate) fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&mut Wire) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(t) = pick(self) {
                return t;
            }
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            if let Err(e) = self.turn() {
                panic!("while waiting for {what}: {e}");
            }
        }
    }

    /// Turns until the connection ends, for at most [`WAIT`]: `Ok(error)` when the codec refused the
    /// peer, `Err(why)` when the stream ended without a codec error (the peer closed it first).
    pub(crate) fn until_closed(&mut self) -> Result<Error, String> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Err(why) = self.turn() {
                return self.conn.error().cloned().ok_or(why);
            }
        }
        panic!("the connection did not end within {WAIT:?}");
    }

    /// The next event if one is already decoded.
    pub(crate) fn try_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next event, waiting for one.
    pub(crate) fn next_event(&mut self) -> Event {
        self.until("an event", |w| w.events.pop_front())
    }

    /// Waits for the handshake.
    pub(crate) fn ready(&mut self) -> PeerInfo {
        match self.next_event() {
            Event::Ready(peer) => *peer,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    /// Waits for a whole multipart message.
    pub(crate) fn recv(&mut self) -> Vec<Bytes> {
        let mut parts = Vec::new();
        loop {
            match self.next_event() {
                Event::Frame(f) => {
                    let more = f.more();
                    parts.push(f.body);
                    if !more {
                        return parts;
                    }
                }
                other => panic!("expected a message frame, got {other:?}"),
            }
        }
    }

    /// Queues a multipart message and writes it.
    pub(crate) fn send<I>(&mut self, parts: I)
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        self.conn.send_message(parts).expect("connection ready");
        self.flush().expect("write");
    }
}
