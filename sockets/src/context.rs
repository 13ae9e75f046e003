//! `Context`: what sockets share — today the `inproc://` registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use zring_engine::{Engine, EngineConfig};

use crate::error::{Error, Result};
use crate::options::inproc_bound;
use crate::pipe::{Capacity, Command, PeerMeta, PipeEnd, Signal};
use crate::socket::Socket;
use crate::SocketType;

/// What a socket brings to an inproc bind or connect.
pub(crate) struct Party {
    pub(crate) socket_id: u64,
    pub(crate) signal: Arc<Signal>,
    pub(crate) meta: PeerMeta,
    pub(crate) sndhwm: usize,
    pub(crate) rcvhwm: usize,
    pub(crate) conflate: bool,
}

/// A connection made before the bind: the binder's end waits here.
pub(crate) struct Pending {
    pub(crate) end: PipeEnd,
}

enum Entry {
    Bound(Party),
    Pending(Vec<Pending>),
}

struct Inner {
    inproc: Mutex<HashMap<String, Entry>>,
    next_socket_id: AtomicU64,
    io_threads: usize,
    /// How long a blocking call spins before it parks (`None`: never).
    spin: Option<std::time::Duration>,
    /// Cores to pin the I/O threads to.
    pin: Option<Vec<usize>>,
    /// The I/O threads, started by the first network bind or connect.
    engine: Mutex<Option<Arc<Engine>>>,
}

/// The container of sockets: cheap to clone, `Send + Sync`. Sockets of one context reach each other
/// over `inproc://`.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

/// Options of a new [`Context`].
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    io_threads: usize,
    spin: Option<std::time::Duration>,
    pin: Option<Vec<usize>>,
}

impl ContextBuilder {
    /// The number of I/O threads for network transports (default 1).
    pub fn io_threads(mut self, n: usize) -> ContextBuilder {
        self.io_threads = n.max(1);
        self
    }

    /// How long a blocking `send`/`recv` spins before it parks the thread (default: never, which
    /// suits a shared machine; a few microseconds cut wake-up latency where cores are dedicated).
    pub fn spin(mut self, bound: Option<std::time::Duration>) -> ContextBuilder {
        self.spin = bound;
        self
    }

    /// Pins the I/O threads to these cores, in order (see `core_affinity`).
    pub fn pin_io_threads(mut self, cores: Vec<usize>) -> ContextBuilder {
        self.pin = Some(cores);
        self
    }

    /// The context.
    pub fn build(self) -> Context {
        Context {
            inner: Arc::new(Inner {
                inproc: Mutex::new(HashMap::new()),
                next_socket_id: AtomicU64::new(1),
                io_threads: self.io_threads,
                spin: self.spin,
                pin: self.pin,
                engine: Mutex::new(None),
            }),
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("io_threads", &self.inner.io_threads)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context with default options.
    pub fn new() -> Context {
        Context::builder().build()
    }

    /// Options for a new context.
    pub fn builder() -> ContextBuilder {
        ContextBuilder {
            io_threads: 1,
            spin: None,
            pin: None,
        }
    }

    /// The number of I/O threads.
    pub fn io_threads(&self) -> usize {
        self.inner.io_threads
    }

    /// How long blocking calls spin before parking.
    pub(crate) fn spin(&self) -> Option<std::time::Duration> {
        self.inner.spin
    }

    /// A new socket of type `socket_type`.
    pub fn socket(&self, socket_type: SocketType) -> Result<Socket> {
        let id = self.inner.next_socket_id.fetch_add(1, Ordering::Relaxed);
        Ok(Socket::new(self.clone(), socket_type, id))
    }

    /// The I/O threads, started on first use.
    pub(crate) fn engine(&self) -> Result<Arc<Engine>> {
        let mut engine = self
            .inner
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = engine.as_ref() {
            return Ok(e.clone());
        }
        let started = Arc::new(Engine::start(EngineConfig {
            threads: self.inner.io_threads,
            pin: self.inner.pin.clone(),
        })?);
        *engine = Some(started.clone());
        Ok(started)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner
            .inproc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds `name`; returns the connections that were waiting for it.
    pub(crate) fn inproc_bind(&self, name: &str, party: Party) -> Result<Vec<Pending>> {
        let mut registry = self.registry();
        let waiting = match registry.remove(name) {
            Some(Entry::Bound(existing)) => {
                registry.insert(name.to_string(), Entry::Bound(existing));
                return Err(Error::AddressInUse {
                    endpoint: format!("inproc://{name}"),
                });
            }
            Some(Entry::Pending(list)) => list,
            None => Vec::new(),
        };
        registry.insert(name.to_string(), Entry::Bound(party));
        Ok(waiting)
    }

    /// Removes `name` if `socket_id` bound it.
    pub(crate) fn inproc_unbind(&self, name: &str, socket_id: u64) {
        let mut registry = self.registry();
        if matches!(registry.get(name), Some(Entry::Bound(p)) if p.socket_id == socket_id) {
            registry.remove(name);
        }
    }

    /// Connects to `name`: a pipe to the bound socket, or, before the bind, a pipe whose other end
    /// waits for it. Returns our end.
    pub(crate) fn inproc_connect(&self, name: &str, me: Party) -> Result<PipeEnd> {
        let mut registry = self.registry();
        match registry.get_mut(name) {
            Some(Entry::Bound(binder)) => {
                let (ours, theirs) = (me.meta.socket_type, binder.meta.socket_type);
                if !ours.is_compatible(theirs) {
                    return Err(Error::Incompatible { ours, theirs });
                }
                let (mine, other) = PipeEnd::pair(
                    (Some(me.signal), me.meta),
                    (Some(binder.signal.clone()), binder.meta.clone()),
                    Capacity {
                        forward: inproc_bound(
                            (me.sndhwm, me.conflate),
                            (binder.rcvhwm, binder.conflate),
                        ),
                        backward: inproc_bound(
                            (binder.sndhwm, binder.conflate),
                            (me.rcvhwm, me.conflate),
                        ),
                    },
                );
                binder.signal.post(Command::Attach(other));
                Ok(mine)
            }
            entry => {
                // The binder is not known yet: its side of the pipe gets its signal when it binds,
                // and the default high-water mark stands in for its own.
                let placeholder = PeerMeta {
                    socket_type: me.meta.socket_type,
                    routing_id: bytes::Bytes::new(),
                };
                let (mine, other) = PipeEnd::pair(
                    (Some(me.signal), me.meta),
                    (None, placeholder),
                    Capacity {
                        forward: inproc_bound(
                            (me.sndhwm, me.conflate),
                            (crate::options::DEFAULT_HWM, false),
                        ),
                        backward: inproc_bound(
                            (crate::options::DEFAULT_HWM, false),
                            (me.rcvhwm, me.conflate),
                        ),
                    },
                );
                match entry {
                    Some(Entry::Pending(list)) => list.push(Pending { end: other }),
                    _ => {
                        registry.insert(
                            name.to_string(),
                            Entry::Pending(vec![Pending { end: other }]),
                        );
                    }
                }
                Ok(mine)
            }
        }
    }
}
