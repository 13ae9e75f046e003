//! Endpoints: `tcp://host:port`, `ipc://path`, `inproc://name`, `shm://name`.

use crate::error::{Error, Result};

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `tcp://host:port`; host `*` for every interface, a name, an IPv4 or a bracketed IPv6 address.
    Tcp {
        /// The host part, brackets removed.
        host: String,
        /// The port; 0 or `*` for an ephemeral one.
        port: u16,
    },
    /// `ipc://path` (`@name`: the abstract namespace).
    Ipc(String),
    /// `inproc://name`.
    Inproc(String),
    /// `shm://name`.
    Shm(String),
}

fn invalid(endpoint: &str, reason: &'static str) -> Error {
    Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason,
    }
}

impl Endpoint {
    /// Parses an endpoint.
    pub(crate) fn parse(endpoint: &str) -> Result<Endpoint> {
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| invalid(endpoint, "expected transport://address"))?;
        if rest.is_empty() {
            return Err(invalid(endpoint, "empty address"));
        }
        match scheme {
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| invalid(endpoint, "expected host:port"))?;
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                if host.is_empty() {
                    return Err(invalid(endpoint, "empty host"));
                }
                let port = match port {
                    "*" => 0,
                    p => p.parse().map_err(|_| invalid(endpoint, "bad port"))?,
                };
                Ok(Endpoint::Tcp {
                    host: host.to_string(),
                    port,
                })
            }
            "ipc" => Ok(Endpoint::Ipc(rest.to_string())),
            "inproc" => Ok(Endpoint::Inproc(rest.to_string())),
            "shm" => Ok(Endpoint::Shm(rest.to_string())),
            _ => Err(invalid(endpoint, "unknown transport")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("tcp://*:5555").unwrap(),
            Endpoint::Tcp {
                host: "*".into(),
                port: 5555
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:0").unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 0
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://localhost:*").unwrap(),
            Endpoint::Tcp {
                host: "localhost".into(),
                port: 0
            }
        );
        assert_eq!(
            Endpoint::parse("inproc://a/b").unwrap(),
            Endpoint::Inproc("a/b".into())
        );
        assert_eq!(
            Endpoint::parse("ipc://@x").unwrap(),
            Endpoint::Ipc("@x".into())
        );
        for bad in [
            "tcp://x",
            "tcp://:1",
            "tcp://h:99999",
            "udp://h:1",
            "inproc://",
            "nothing",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }
}
