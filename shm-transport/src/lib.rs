//! Lock-free single-producer/single-consumer rings of messages, in one process (heap memory) or
//! between two processes (a sealed memfd both map), with futex park and wake.
//!
//! A connection is two rings, one per direction. Small frames are copied into the ring's slots; large
//! ones are copied once into a slab beside them and read in place by the receiver, whose [`bytes::Bytes`]
//! gives the space back when dropped. Within one process the same ring ([`local`]) is the queue of
//! every zring pipe: bounded by a count of messages, large frames moved rather than copied, storage
//! that grows as it is needed. See [`ring`] for the layout, the protocol and the rules for memory the
//! other side can write.
//!
//! ```
//! let (mut tx, mut rx) = zring_shm::channel(zring_shm::Config::default()).unwrap();
//! tx.try_send(&[b"topic", b"payload"]).unwrap();
//! let frames = rx.try_recv().unwrap().unwrap();
//! assert_eq!(&frames[1][..], b"payload");
//! ```

pub mod barrier;
#[cfg(not(loom))]
pub mod link;
pub mod region;
pub mod ring;
mod sync;

pub use region::Region;
#[cfg(not(loom))]
pub use ring::init;
pub use ring::{
    channel, current_cpu, local, Closer, Config, Consumer, Frame, Payload, Producer, Wait,
    INLINE_MAX,
};

/// What can go wrong on a ring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No room now (slots or slab): nothing was written.
    #[error("the ring is full")]
    Full,
    /// The other end closed (or was closed for it).
    #[error("the ring is closed")]
    Closed,
    /// A frame (or a message) larger than the ring can ever hold.
    #[error("a message of {0} bytes does not fit in the ring")]
    TooLarge(usize),
    /// The other side broke the ring's rules (an index, a length or a slab run out of bounds).
    #[error("corrupt ring: {0}")]
    Corrupt(String),
    /// Dimensions out of range.
    #[error("invalid ring dimensions {0:?}")]
    Config(Config),
    /// The ring does not fit in its region at that offset.
    #[error("a ring of {size} bytes does not fit at offset {offset}")]
    Bounds {
        /// Where it was to start.
        offset: usize,
        /// Its size.
        size: usize,
    },
}
