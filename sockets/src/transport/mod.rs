//! Network transports: the session that bridges a socket's pipe and a ZMTP stream, and `tcp://`.

pub(crate) mod session;
pub(crate) mod tcp;
