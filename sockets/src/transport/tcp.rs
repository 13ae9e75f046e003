//! `tcp://`: listeners and outgoing connections on the context's I/O threads.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

use zring_engine::{Address, Engine, ListenerId, Reconnect, Session, SessionFactory, Waker};

use super::session::{SocketLink, TcpSession};
use crate::error::{Error, Result};
use crate::pipe::PipeEnd;

/// Makes the session of each accepted stream (tcp or ipc).
pub(crate) struct Factory {
    pub(crate) link: SocketLink,
}

impl SessionFactory for Factory {
    fn session(&self, waker: Waker) -> Box<dyn Session> {
        Box::new(TcpSession::accepted(self.link.clone(), waker))
    }
}

/// Where to bind or connect: the endpoint as given, and its parts.
pub(crate) struct Target<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// Whether `*` means IPv6 and IPv4, and names may resolve to IPv6.
    pub(crate) ipv6: bool,
}

fn resolve(target: &Target<'_>) -> Result<Vec<SocketAddr>> {
    let Target {
        endpoint,
        host,
        port,
        ipv6,
    } = *target;
    let literal_v6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    let host = match (host, ipv6) {
        ("*", true) => "::",
        ("*", false) => "0.0.0.0",
        (h, _) => h,
    };
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Error::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason: "the host does not resolve",
        })?
        .collect();
    if !ipv6 && !literal_v6 && addrs.iter().any(SocketAddr::is_ipv4) {
        addrs.retain(SocketAddr::is_ipv4);
    }
    if addrs.is_empty() {
        return Err(Error::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason: "the host does not resolve",
        });
    }
    Ok(addrs)
}

/// Binds and starts accepting. Returns the listener and the endpoint as bound (the port chosen).
pub(crate) fn bind(
    engine: &Engine,
    thread: usize,
    target: &Target<'_>,
    link: SocketLink,
) -> Result<(ListenerId, String)> {
    let addrs = resolve(target)?;
    let endpoint = target.endpoint;
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::AddressInUse {
            endpoint: endpoint.to_string(),
        },
        _ => Error::Io(e),
    })?;
    let local = listener.local_addr()?;
    let id = engine.listen(thread, listener.into(), Arc::new(Factory { link }));
    Ok((id, format!("tcp://{local}")))
}

/// Starts connecting (and reconnecting) in the background.
pub(crate) fn connect(
    engine: &Engine,
    thread: usize,
    target: &Target<'_>,
    link: SocketLink,
    pipe: Option<PipeEnd>,
    reconnect: Reconnect,
) -> Result<()> {
    if target.port == 0 {
        return Err(Error::InvalidEndpoint {
            endpoint: target.endpoint.to_string(),
            reason: "a connect needs a port",
        });
    }
    let addrs = resolve(target)?;
    engine.connect(
        thread,
        addrs.into_iter().map(Address::Tcp).collect(),
        reconnect,
        Box::new(move |waker| Box::new(TcpSession::connecting(link, waker, pipe))),
    );
    Ok(())
}
