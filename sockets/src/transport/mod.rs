//! Network transports: the session that bridges a socket's pipe and a ZMTP stream, `tcp://` and
//! `ipc://`; and `shm://`, which needs no I/O thread.

pub(crate) mod ipc;
pub(crate) mod session;
pub(crate) mod shm;
pub(crate) mod tcp;
