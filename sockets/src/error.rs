//! Errors of the socket API.

use std::io;

use crate::SocketType;

/// What a socket call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call would block: a non-blocking call, or a timeout (`EAGAIN`).
    #[error("resource temporarily unavailable")]
    WouldBlock,
    /// The pattern forbids this call now, e.g. a REQ sending twice or a REP sending before it received
    /// (`EFSM`: "operation cannot be accomplished in current state").
    #[error("operation cannot be accomplished in current state")]
    InvalidState,
    /// This socket type never does this (e.g. `recv` on a PUB, `subscribe` on a PUSH).
    #[error("{op} is not supported by a {socket_type} socket")]
    NotSupported {
        /// The socket's type.
        socket_type: SocketType,
        /// The operation.
        op: &'static str,
    },
    /// The endpoint does not parse.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something is already bound to this address (`EADDRINUSE`).
    #[error("address already in use: {endpoint}")]
    AddressInUse {
        /// The endpoint given.
        endpoint: String,
    },
    /// The peer's socket type cannot talk to ours.
    #[error("a {theirs} socket cannot talk to a {ours} socket")]
    Incompatible {
        /// Our socket type.
        ours: SocketType,
        /// The peer's.
        theirs: SocketType,
    },
    /// ROUTER with `ROUTER_MANDATORY`: no peer has this routing id (`EHOSTUNREACH`).
    #[error("no peer with routing id {id:?}")]
    HostUnreachable {
        /// The routing id.
        id: Vec<u8>,
    },
    /// An option value out of range.
    #[error("invalid value for option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A received frame is not UTF-8 (`recv_string`).
    #[error("message is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    /// JSON encoding or decoding failed (`send_json`, `recv_json`).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An operating-system error.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// The result of socket calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
