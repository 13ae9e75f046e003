//! The Unix-socket side of a shared-memory connection: two processes meet on a Unix stream socket,
//! hand each other descriptors over it (the memfd that holds the rings, the eventfds that wake each
//! side), and then keep it open and silent, so that its end tells each side that the other is gone,
//! whether it closed or was killed.

use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The most descriptors one message carries.
pub const MAX_FDS: usize = 4;
/// The largest message body (its length is sent first, in two bytes).
pub const MAX_MESSAGE: usize = 1024;

/// Sends `body` (at most [`MAX_MESSAGE`] bytes, prefixed with its length) and `fds` in one message.
pub fn send(stream: &UnixStream, body: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let len = u16::try_from(body.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    let prefix = len.to_le_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("no room for the descriptors"));
    }
    let iov = [IoSlice::new(&prefix), IoSlice::new(body)];
    let total = prefix.len() + body.len();
    let sent = rustix::net::sendmsg(stream, &iov, &mut control, SendFlags::NOSIGNAL)?;
    if sent < total {
        // The descriptors went with the first bytes; the rest follows as plain data.
        let mut all = Vec::with_capacity(total);
        all.extend_from_slice(&prefix);
        all.extend_from_slice(body);
        io::Write::write_all(&mut &*stream, &all[sent..])?;
    }
    Ok(())
}

/// Receives one message sent by [`send`]: its body and the descriptors that came with it. The
/// sender is untrusted: a length over [`MAX_MESSAGE`] is an error, descriptors beyond
/// [`MAX_FDS`] are closed by the kernel, and a read timeout set on `stream` bounds the wait.
pub fn recv(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = [0u8; 2 + MAX_MESSAGE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        rustix::net::recvmsg(stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?.bytes
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    if got == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut have = got;
    while have < 2 {
        have += read_some(stream, &mut buf[have..])?;
    }
    let len = usize::from(u16::from_le_bytes([buf[0], buf[1]]));
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes (at most {MAX_MESSAGE})"),
        ));
    }
    if have > 2 + len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bytes after the message",
        ));
    }
    (&*stream).read_exact(&mut buf[have..2 + len])?;
    Ok((buf[2..2 + len].to_vec(), fds))
}

fn read_some(stream: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    match (&*stream).read(buf)? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n => Ok(n),
    }
}

/// What ended a [`watch`].
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The other side closed the socket (or died: the kernel closes or resets it then).
    Closed,
    /// The other side sent bytes on a socket that must stay silent.
    Unexpected,
    /// The socket failed.
    Error(io::ErrorKind),
    /// The deadline passed.
    Timeout,
}

/// Waits until the stream ends (or carries anything: after the rendezvous it must be silent), or
/// until `deadline`.
pub fn watch(stream: &UnixStream, deadline: Option<Instant>) -> Ended {
    loop {
        let mut fds = [PollFd::new(stream, PollFlags::IN | PollFlags::RDHUP)];
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Ended::Error(io::Error::from(e).kind()),
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ended::Timeout;
                }
                continue;
            }
            Ok(_) => {}
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        let mut byte = [0u8; 1];
        return match rustix::net::recv(stream, &mut byte, RecvFlags::DONTWAIT) {
            // A peer that dies with bytes of ours unread resets the socket: it closed all the same.
            Ok((0, _)) | Err(rustix::io::Errno::CONNRESET) => Ended::Closed,
            Ok(_) => Ended::Unexpected,
            Err(rustix::io::Errno::AGAIN) => continue,
            Err(e) => Ended::Error(io::Error::from(e).kind()),
        };
    }
}

/// Waits until `fd` is readable (`true`: a listener has a connection to accept) or `stop` is
/// (`false`).
pub fn wait_readable(fd: impl AsFd, stop: impl AsFd) -> bool {
    loop {
        let mut fds = [
            PollFd::new(&fd, PollFlags::IN),
            PollFd::new(&stop, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) | Ok(0) => continue,
            Err(_) => return false,
            Ok(_) => {}
        }
        if !fds[1].revents().is_empty() {
            return false;
        }
        if !fds[0].revents().is_empty() {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_bytes_and_descriptors_and_the_end_is_seen() {
        let (a, b) = UnixStream::pair().unwrap();
        let (region, memfd) = crate::Region::shared(4096).unwrap();
        drop(region);
        send(&a, b"hello", &[memfd.as_fd()]).unwrap();
        let (body, fds) = recv(&b).unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(fds.len(), 1);
        let got = crate::Region::open(fds.into_iter().next().unwrap(), 4096).unwrap();
        assert_eq!(got.len(), 4096);
        drop(a);
        assert_eq!(watch(&b, None), Ended::Closed);
    }

    #[test]
    fn an_oversized_length_or_stray_bytes_are_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        io::Write::write_all(&mut &a, &u16::MAX.to_le_bytes()).unwrap();
        assert_eq!(recv(&b).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let (a, b) = UnixStream::pair().unwrap();
        io::Write::write_all(&mut &a, b"x").unwrap();
        assert_eq!(watch(&b, None), Ended::Unexpected);
    }
}
