//! Network transports: the session that bridges a socket's pipe and a ZMTP stream, `tcp://` and
//! `ipc://`.

pub(crate) mod ipc;
pub(crate) mod session;
pub(crate) mod tcp;
