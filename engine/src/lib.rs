//! zring's I/O threads: each runs a loop over its own io_uring and owns the TCP listeners and streams
//! given to it, driving one `zring_zmtp::Connection` per stream. The socket layer plugs a [`Session`]
//! into each stream and knows nothing of file descriptors; this crate knows nothing of socket patterns.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gate;
mod session;
mod slab;
mod thread;
mod waker;

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use gate::{Direct, DirectReader, Gate, Lease, Step, Take, Taker, DIRECT_FRAMES, LEASE_IDLE};
pub use session::{Disconnect, MakeSession, Session, SessionFactory};
pub use thread::Reconnect;
pub use waker::{EventFd, Waker};

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix-domain stream socket: a path, or an abstract name as its bytes after a leading NUL.
    Unix(Vec<u8>),
}

use thread::{Command, IoThread};
use waker::Shared;

/// How many I/O threads, and where they run.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// The number of I/O threads (at least 1).
    pub threads: usize,
    /// Core ids to pin the threads to, in order (`None`: not pinned).
    pub pin: Option<Vec<usize>>,
}

struct Handle {
    shared: Arc<Shared>,
    join: Option<JoinHandle<()>>,
}

/// A set of I/O threads. Dropping it waits until every session is finished (its socket's messages
/// delivered or its linger passed), then stops the threads.
pub struct Engine {
    threads: Vec<Handle>,
    next_listener: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// Identifies a listener, to stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerId {
    thread: usize,
    id: u64,
}

impl Engine {
    /// Starts the I/O threads.
    pub fn start(config: EngineConfig) -> io::Result<Engine> {
        let n = config.threads.max(1);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let shared = Arc::new(Shared::new()?);
            let for_thread = shared.clone();
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let pin = config
                .pin
                .as_ref()
                .and_then(|p| p.get(i))
                .and_then(|&want| cores.iter().find(|c| c.id == want).copied());
            let join = std::thread::Builder::new()
                .name(format!("zring-io-{i}"))
                .spawn(move || {
                    if let Some(core) = pin {
                        core_affinity::set_for_current(core);
                    }
                    // The ring lives and dies on this thread: its in-flight buffers hold raw pointers.
                    match IoThread::new(for_thread) {
                        Ok(io) => {
                            let _ = started_tx.send(Ok(()));
                            io.run();
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                        }
                    }
                })?;
            started_rx
                .recv()
                .map_err(|_| io::Error::other("I/O thread did not start"))??;
            threads.push(Handle {
                shared,
                join: Some(join),
            });
        }
        Ok(Engine {
            threads,
            next_listener: AtomicU64::new(1),
        })
    }

    /// The number of I/O threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    fn post(&self, thread: usize, cmd: Command) {
        if let Some(h) = self.threads.get(thread % self.threads.len().max(1)) {
            h.shared.commands.push(cmd);
            h.shared.notify();
        }
    }

    /// Accepts streams on `listener` (a bound, listening TCP or Unix-domain socket) on I/O thread
    /// `thread`, each with a session from `factory`.
    pub fn listen(
        &self,
        thread: usize,
        listener: OwnedFd,
        factory: Arc<dyn SessionFactory>,
    ) -> ListenerId {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        self.post(
            thread,
            Command::Listen {
                id,
                listener,
                factory,
            },
        );
        ListenerId { thread, id }
    }

    /// Stops accepting on a listener (streams already accepted go on).
    pub fn stop_listener(&self, listener: ListenerId) {
        self.post(listener.thread, Command::StopListener { id: listener.id });
    }

    /// Connects to the first of `addrs` that answers, on I/O thread `thread`, reconnecting as the
    /// session asks; the session is made by `make` on that thread.
    pub fn connect(
        &self,
        thread: usize,
        addrs: Vec<Address>,
        reconnect: Reconnect,
        make: MakeSession,
    ) {
        self.post(
            thread,
            Command::Connect {
                addrs,
                reconnect,
                make,
            },
        );
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for h in &self.threads {
            h.shared.commands.push(Command::Shutdown);
            h.shared.notify();
        }
        for h in &mut self.threads {
            if let Some(j) = h.join.take() {
                let _ = j.join();
            }
        }
    }
}
