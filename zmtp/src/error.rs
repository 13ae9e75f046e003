//! Errors, typed by who is to blame, each with the evidence.
//!
//! Every [`Error`] ends the connection it came from: the driver closes that one stream (after writing
//! whatever [`crate::Connection::poll_transmit`] still holds, e.g. an ERROR command) and reports the error.
//! Misuse of the API by the local program is a [`UsageError`] and does not end anything.

use crate::{Mechanism, SocketType};

/// Why a connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol: its bytes are not valid ZMTP.
    #[error("peer broke the protocol: {0}")]
    Peer(#[from] PeerMisbehaved),
    /// The peer speaks valid ZMTP but cannot be our peer (version, mechanism or socket type).
    #[error("incompatible peer: {0}")]
    Incompatible(#[from] Incompatible),
    /// The peer sent an ERROR command: fatal, do not retry with the same credentials.
    #[error("peer sent ERROR: {reason:?}")]
    PeerError {
        /// The reason text it gave, decoded lossily as UTF-8.
        reason: String,
    },
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(TimeoutKind),
}

/// The ways a peer's bytes can break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A frame's flags octet has one of the reserved bits 3-7 set.
    #[error("reserved flag bits set in flags octet {flags:#04x}")]
    ReservedFlags {
        /// The flags octet received.
        flags: u8,
    },
    /// A command frame has the MORE bit set.
    #[error("command frame with MORE set")]
    CommandWithMore,
    /// A frame claims a body larger than the configured maximum (or larger than this machine can address).
    #[error("frame of {claimed} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The size the frame header claims.
        claimed: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// A multipart message has more frames than the configured maximum.
    #[error("message of more than {max} frames")]
    TooManyFrames {
        /// The largest number of frames accepted in one message.
        max: usize,
    },
    /// A message frame arrived before the handshake completed.
    #[error("message frame before the handshake completed")]
    MessageBeforeReady,
    /// A command arrived where the protocol does not allow it (e.g. HELLO during a NULL handshake, a
    /// second READY).
    #[error("unexpected command {name:?}")]
    UnexpectedCommand {
        /// The command's name, lossily decoded.
        name: String,
    },
    /// A command frame's body does not parse.
    #[error("malformed {name:?} command: {problem}")]
    MalformedCommand {
        /// The command's name, lossily decoded (empty when the name itself is broken).
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The metadata of READY does not parse.
    #[error("malformed metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// READY has no `Socket-Type` property.
    #[error("READY without a Socket-Type property")]
    MissingSocketType,
    /// The `Identity` property is longer than 255 octets or starts with a zero octet (reserved).
    #[error("invalid Identity property of {len} bytes (at most 255, first octet not zero)")]
    InvalidIdentity {
        /// Its length.
        len: usize,
    },
}

/// The ways a well-formed peer can still be the wrong peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Incompatible {
    /// The first ten octets are not a ZMTP 2.0+ signature: a ZMTP 1.0 peer, or not ZMTP at all.
    #[error("not a ZMTP 3 peer (no versioned signature)")]
    Unversioned,
    /// The peer's protocol is older than 3.0.
    #[error("peer speaks ZMTP {major}.{minor}, at least 3.0 is needed")]
    Version {
        /// The peer's major version.
        major: u8,
        /// The peer's minor version.
        minor: u8,
    },
    /// The peer's security mechanism differs from ours (all 20 octets are compared).
    #[error("mechanism mismatch: ours {ours}, theirs {theirs}")]
    Mechanism {
        /// Our mechanism.
        ours: Mechanism,
        /// What the peer announced.
        theirs: Mechanism,
    },
    /// The peer's socket type is not a valid partner of ours.
    #[error("socket type {theirs} cannot talk to our {ours}")]
    SocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's socket type.
        theirs: SocketType,
    },
    /// The peer announced a socket type we do not know.
    #[error("unknown socket type {name:?}")]
    UnknownSocketType {
        /// The name it announced, lossily decoded.
        name: String,
    },
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The handshake did not complete within the handshake interval.
    #[error("handshake not completed in time")]
    Handshake,
    /// Nothing arrived within the heartbeat timeout after we sent a PING.
    #[error("no traffic within the heartbeat timeout after our PING")]
    Heartbeat,
    /// Nothing arrived within the TTL that the peer's PING asked for.
    #[error("no traffic within the TTL of the peer's PING")]
    PeerTtl,
}

/// Why metadata (the properties of READY) does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A property name of zero length.
    #[error("empty property name")]
    EmptyName,
    /// A property name longer than 255 octets (only a local caller can produce one).
    #[error("property name of {len} octets, at most 255")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// A property name with a character outside `A-Z a-z 0-9 - _ . +`.
    #[error("invalid character {byte:#04x} in a property name")]
    NameCharacter {
        /// The offending octet.
        byte: u8,
    },
    /// A length field points past the end of the body.
    #[error("property needs {needed} bytes, {available} remain")]
    Truncated {
        /// Bytes the field claims.
        needed: u64,
        /// Bytes that remain.
        available: usize,
    },
    /// A value length above 2^31-1.
    #[error("property value of {len} bytes exceeds 2^31-1")]
    ValueTooLong {
        /// The claimed length.
        len: u32,
    },
}

/// A call the local program made at the wrong moment. Nothing is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The handshake has not completed yet.
    #[error("the handshake has not completed")]
    NotReady,
    /// The connection has failed or was closed.
    #[error("the connection is closed")]
    Closed,
    /// A routing id must be at most 255 octets and must not start with a zero octet.
    #[error("a routing id is 1 to 255 octets and does not start with 0x00")]
    InvalidIdentity,
    /// Subscriptions are sent only by SUB and XSUB sockets.
    #[error("only SUB and XSUB send subscriptions")]
    NotSubscriber,
}
