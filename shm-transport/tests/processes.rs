//! Two processes over one sealed memfd: the second is this test binary again, running the hidden
//! `child_echoes` test with the descriptor's number in `ZRING_SHM_FD`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zring_shm::{init, Config, Consumer, Error, Producer, Region, Wait};

const FD_VAR: &str = "ZRING_SHM_FD";
const WATCHDOG: Duration = Duration::from_secs(20);

fn cfg() -> Config {
    Config::default()
}

/// Both rings of a connection in one fresh memfd: parent -> child at 0, child -> parent after it.
fn connection() -> (Arc<Region>, OwnedFd, usize) {
    let size = cfg().size().unwrap();
    let (region, fd) = Region::shared(2 * size).unwrap();
    let region = Arc::new(region);
    init(&region, 0, cfg()).unwrap();
    init(&region, size, cfg()).unwrap();
    (region, fd, size)
}

/// Starts the echoing child with an inheritable copy of `fd`.
fn spawn_child(fd: &OwnedFd) -> Child {
    // SAFETY: F_DUPFD (without CLOEXEC) takes an integer; the result is checked and owned below.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 0) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a new descriptor nothing else owns; dropping it after the spawn closes our copy.
    let inheritable = unsafe { OwnedFd::from_raw_fd(raw) };
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_echoes",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(FD_VAR, raw.to_string())
        .spawn()
        .unwrap();
    drop(inheritable);
    child
}

fn deadline() -> Option<Instant> {
    Some(Instant::now() + WATCHDOG)
}

/// The child: echoes every message back until the parent closes its ring.
#[test]
fn child_echoes() {
    let Ok(raw) = std::env::var(FD_VAR) else {
        return; // Not started as a child: nothing to do.
    };
    // SAFETY: the parent passed this descriptor, open and inherited, for us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(raw.parse().unwrap()) };
    let size = cfg().size().unwrap();
    let region = Arc::new(Region::open(fd, 2 * size).unwrap());
    let mut rx = Consumer::attach(&region, 0, cfg()).unwrap();
    let mut tx = Producer::attach(&region, size, cfg()).unwrap();
    loop {
        match rx.recv(Wait::default(), None) {
            Ok(Some(frames)) => {
                let parts: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                tx.send(&parts, Wait::default(), deadline()).unwrap();
            }
            Ok(None) => {}
            Err(Error::Closed) => return,
            Err(e) => panic!("child: {e}"),
        }
    }
}

fn dev_shm() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn two_processes_exchange_small_and_large_messages_and_leave_no_file() {
    let before = dev_shm();
    let (region, fd, size) = connection();
    let mut child = spawn_child(&fd);
    drop(fd);
    let mut tx = Producer::attach(&region, 0, cfg()).unwrap();
    let mut rx = Consumer::attach(&region, size, cfg()).unwrap();
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for i in 0..500u32 {
        let id = i.to_le_bytes();
        let body: &[u8] = if i % 50 == 0 { &big } else { &[0x5A; 64] };
        tx.send(&[&id, body], Wait::default(), deadline()).unwrap();
        let echo = rx.recv(Wait::default(), deadline()).unwrap().unwrap();
        assert_eq!(echo.len(), 2);
        assert_eq!(&echo[0][..], &id);
        assert_eq!(&echo[1][..], body);
    }
    tx.close();
    assert!(child.wait().unwrap().success());
    // The child's ring is closed with it: what is left reads as closed.
    assert!(matches!(
        rx.recv(Wait::default(), deadline()),
        Err(Error::Closed)
    ));
    assert_eq!(dev_shm(), before, "a memfd leaves nothing in /dev/shm");
}

#[test]
fn a_peer_killed_mid_stream_wakes_the_waiting_side_with_closed() {
    let (region, fd, size) = connection();
    let mut child = spawn_child(&fd);
    drop(fd);
    let mut tx = Producer::attach(&region, 0, cfg()).unwrap();
    let mut rx = Consumer::attach(&region, size, cfg()).unwrap();
    tx.send(&[b"one"], Wait::default(), deadline()).unwrap();
    assert_eq!(
        &rx.recv(Wait::default(), deadline()).unwrap().unwrap()[0][..],
        b"one"
    );
    // A reader waits on the futex while the peer is killed; whoever sees the death (here the parent's
    // `wait`, in zring the rendezvous socket's hang-up) closes the ring and the reader wakes.
    let closers = [rx.closer(), tx.closer()];
    let reader = std::thread::spawn(move || rx.recv(Wait::default(), deadline()));
    child.kill().unwrap();
    child.wait().unwrap();
    for c in &closers {
        c.close();
    }
    assert!(matches!(reader.join().unwrap(), Err(Error::Closed)));
    assert!(matches!(tx.try_send(&[b"late"]), Err(Error::Closed)));
}

#[test]
fn a_descriptor_that_is_not_sealed_is_refused() {
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let raw = unsafe { libc::memfd_create(c"unsealed".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(raw >= 0);
    // SAFETY: a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    std::fs::File::from(fd.try_clone().unwrap())
        .set_len(1 << 20)
        .unwrap();
    let err = Region::open(fd, 4096).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn a_ring_whose_header_was_not_written_is_refused() {
    let size = cfg().size().unwrap();
    let (region, _fd) = Region::shared(size).unwrap();
    let region = Arc::new(region);
    assert!(matches!(
        Consumer::attach(&region, 0, cfg()),
        Err(Error::Corrupt(_))
    ));
    assert!(matches!(
        Producer::attach(&region, 64, cfg()),
        Err(Error::Bounds { .. })
    ));
}
