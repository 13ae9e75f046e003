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
//! - the commands SUBSCRIBE, CANCEL, PING and PONG, and heartbeat timers.
//!
//! The map of the whole project is in `docs/ARCHITECTURE.md`; the rule-by-rule conformance table is in
//! `docs/CONFORMANCE.md`.
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
mod reader;
mod socket_type;
mod transmit;

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod testing;

pub use command::Command;
pub use connection::{Config, Connection, Event, EventRef, PeerInfo, Stats};
pub use error::{Error, Incompatible, MetadataError, PeerMisbehaved, TimeoutKind, UsageError};
pub use frame::{encode_header, flags, Frame, FrameDecoder, FrameView, MAX_HEADER_LEN};
pub use greeting::{Greeting, Mechanism, Version, GREETING_LEN};
pub use metadata::Metadata;
pub use socket_type::SocketType;
pub use transmit::{Transmit, DEFAULT_INLINE_MAX};
