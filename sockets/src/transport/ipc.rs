//! `ipc://path` and `ipc://@name`: ZMTP over Unix-domain stream sockets, on the same I/O threads and
//! sessions as tcp. A socket file left by a dead process does not prevent a bind; the file is removed
//! when the socket that bound it is dropped.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use zring_engine::{Address, Engine, ListenerId, Reconnect};

use super::session::{SocketLink, TcpSession};
use super::tcp::Factory;
use crate::error::{Error, Result};
use crate::pipe::PipeEnd;

/// What a bind leaves to clean up: the socket file, if the name is a path.
pub(crate) struct Bound {
    pub(crate) listener: ListenerId,
    pub(crate) file: Option<PathBuf>,
}

fn in_use(endpoint: &str) -> Error {
    Error::AddressInUse {
        endpoint: endpoint.to_string(),
    }
}

/// Binds `name` (a path, or `@` and an abstract name) and starts accepting.
pub(crate) fn bind(
    engine: &Engine,
    thread: usize,
    endpoint: &str,
    name: &str,
    link: SocketLink,
) -> Result<Bound> {
    let (listener, file) = match name.strip_prefix('@') {
        Some(abstract_name) => {
            let addr = SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
            let l = UnixListener::bind_addr(&addr).map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => in_use(endpoint),
                _ => Error::Io(e),
            })?;
            (l, None)
        }
        None => {
            let l = match UnixListener::bind(name) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    // A file is there. If nobody answers on it, its process is gone: replace it.
                    if UnixStream::connect(name).is_ok() {
                        return Err(in_use(endpoint));
                    }
                    std::fs::remove_file(name)?;
                    UnixListener::bind(name)?
                }
                Err(e) => return Err(Error::Io(e)),
            };
            (l, Some(PathBuf::from(name)))
        }
    };
    let listener = engine.listen(thread, listener.into(), Arc::new(Factory { link }));
    Ok(Bound { listener, file })
}

/// Starts connecting (and reconnecting) to `name` in the background.
pub(crate) fn connect(
    engine: &Engine,
    thread: usize,
    name: &str,
    link: SocketLink,
    pipe: Option<PipeEnd>,
    reconnect: Reconnect,
) -> Result<()> {
    let bytes = match name.strip_prefix('@') {
        Some(abstract_name) => {
            let mut b = vec![0u8];
            b.extend_from_slice(abstract_name.as_bytes());
            b
        }
        None => name.as_bytes().to_vec(),
    };
    engine.connect(
        thread,
        vec![Address::Unix(bytes)],
        reconnect,
        Box::new(move |waker| Box::new(TcpSession::connecting(link, waker, pipe))),
    );
    Ok(())
}
