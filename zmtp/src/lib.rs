//! The ZMTP 3.1 wire protocol for zring, without I/O.
//!
//! This crate is *not* a socket library: it opens no sockets, starts no threads and reads no clock.
//! Bytes go in ([`Connection::handle_input`]), events and bytes come out ([`Connection::poll_event`],
//! [`Connection::poll_transmit`]), and time is whatever the caller says it is ([`Connection::handle_timeout`]).
//!
//! What it implements (rfc.zeromq.org specs 23 and 37):
//! - the 64-octet greeting, version negotiation (3.1, downgrading to 3.0, refusing 1.0/2.0) and the
//!   mechanism check;
//! - the NULL mechanism: READY with `Socket-Type` and `Identity`, socket-type pairing, ERROR;
//! - framing (short and long frames, MORE, COMMAND) with a bounded, zero-copy decoder;
//! - the commands SUBSCRIBE, CANCEL, PING and PONG, and heartbeat timers;
//! - beside the protocol, a process-wide [`pool`] of large buffers for the layers above, which copy
//!   large bodies from their callers' slices.
//!
//! The map of the whole project is in `docs/ARCHITECTURE.md`; the rule-by-rule conformance table is in
//! `docs/CONFORMANCE.md`.
//!
//! Two connections wired back to back, as a driver would wire one to a stream:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use zring_zmtp::{Config, Connection, Event, SocketType, Transmit};
//!
//! let now = Instant::now();
//! let mut dealer = Connection::new(Config::new(SocketType::Dealer), now)?;
//! let mut router = Connection::new(Config::new(SocketType::Router), now)?;
//!
//! // Move bytes both ways: what one side transmits, the other reads.
//! let mut pump = |from: &mut Connection, to: &mut Connection| -> Result<Vec<Event>, zring_zmtp::Error> {
//!     let mut batch = Transmit::new();
//!     from.poll_transmit(&mut batch);   // a real driver writes `batch.io_slices(..)` with writev
//!     to.handle_input(Bytes::from(batch.to_vec()), now)?;
//!     Ok(std::iter::from_fn(|| to.poll_event()).collect())
//! };
//! let events = pump(&mut dealer, &mut router)?;
//! assert!(matches!(&events[0], Event::Ready(peer) if peer.socket_type == SocketType::Dealer));
//! pump(&mut router, &mut dealer)?;
//!
//! dealer.send_message(["hello", "world"])?;
//! let events = pump(&mut dealer, &mut router)?;
//! let bodies: Vec<&[u8]> = events
//!     .iter()
//!     .filter_map(|e| match e {
//!         Event::Frame(f) => Some(&f.body[..]),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(bodies, [&b"hello"[..], &b"world"[..]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod command;
mod connection;
mod error;
mod frame;
mod greeting;
mod metadata;
pub mod pool;
mod reader;
mod socket_type;
mod transmit;

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod testing;

pub use command::Command;
pub use connection::{Clock, Config, Connection, Event, EventRef, PeerInfo, Stats, SystemClock};
pub use error::{Error, Incompatible, MetadataError, PeerMisbehaved, TimeoutKind, UsageError};
pub use frame::{encode_header, flags, Frame, FrameDecoder, FrameView, MAX_HEADER_LEN};
pub use greeting::{Greeting, Mechanism, Version, GREETING_LEN};
pub use metadata::Metadata;
pub use socket_type::SocketType;
pub use transmit::{Transmit, DEFAULT_INLINE_MAX};
