//! zring: ZeroMQ sockets in Rust that speak ZMTP 3.1, so that any libzmq, pyzmq or JeroMQ program can be
//! a peer.
//!
//! ```
//! use zring::{Context, SocketType};
//!
//! let ctx = Context::new();
//! let mut rep = ctx.socket(SocketType::Rep)?;
//! rep.bind("inproc://hello")?;
//! let mut req = ctx.socket(SocketType::Req)?;
//! req.connect("inproc://hello")?;
//!
//! req.send("Hello")?;
//! assert_eq!(rep.recv_string()?, "Hello");
//! rep.send("World")?;
//! assert_eq!(req.recv_string()?, "World");
//!
//! // REQ/REP are lock-step: a second request before the reply is refused.
//! req.send("again")?;
//! assert!(matches!(req.send("too soon"), Err(zring::Error::InvalidState)));
//! # Ok::<(), zring::Error>(())
//! ```
//!
//! The layers below are described in `docs/ARCHITECTURE.md`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![forbid(unsafe_code)]

mod context;
mod endpoint;
mod error;
mod inbox;
mod monitor;
mod msg;
mod options;
mod pattern;
mod pipe;
mod poll;
mod route;
mod socket;
mod subscriptions;
mod transport;

pub use context::{Context, ContextBuilder};
pub use error::{Error, Result};
pub use monitor::{DisconnectReason, Monitor, MonitorEvent};
pub use msg::{IntoMsg, Msg, INLINE_CAP};
pub use options::DEFAULT_HWM;
pub use pattern::Drops;
pub use poll::{poll, proxy, proxy_steerable, Events, PollItem};
pub use socket::Socket;
pub use zring_zmtp::SocketType;
