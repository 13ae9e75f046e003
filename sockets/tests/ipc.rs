//! What is specific to ipc://: socket files (stale ones replaced, ours removed on close), abstract
//! names, and libzmq over ipc in both roles. The patterns themselves run over ipc in `patterns.rs`.

#[allow(dead_code, reason = "shared helpers")]
mod common;

use std::os::unix::net::UnixListener;

use common::{ipc_path, Net, Transport, WATCHDOG};
use zring::{Error, SocketType};

fn ipc() -> Net {
    Net::new(Transport::Ipc)
}

#[test]
fn a_stale_socket_file_does_not_prevent_a_bind_and_ours_is_removed_on_close() {
    let path = ipc_path();
    // A process that bound and died leaves its file behind.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let net = ipc();
    let endpoint = format!("ipc://{}", path.display());
    let mut pull = net.socket(SocketType::Pull);
    pull.bind(&endpoint).unwrap();
    let mut push = net.connected(SocketType::Push, &endpoint);
    push.send("over ipc").unwrap();
    assert_eq!(pull.recv_string().unwrap(), "over ipc");
    // A live socket's file is not taken over.
    let mut second = net.socket(SocketType::Pull);
    assert!(matches!(
        second.bind(&endpoint),
        Err(Error::AddressInUse { .. })
    ));
    drop(pull);
    assert!(!path.exists(), "the file is removed on close");
}

#[test]
fn abstract_names_work_and_leave_no_file() {
    let net = ipc();
    let name = format!("ipc://@zring-test-{}", std::process::id());
    let mut rep = net.socket(SocketType::Rep);
    rep.bind(&name).unwrap();
    let mut req = net.connected(SocketType::Req, &name);
    req.send("abstract").unwrap();
    assert_eq!(rep.recv_string().unwrap(), "abstract");
    rep.send("yes").unwrap();
    assert_eq!(req.recv_string().unwrap(), "yes");
}

#[test]
fn libzmq_speaks_ipc_with_zring_in_both_roles() {
    let zctx = zmq::Context::new();
    let net = ipc();
    // zring binds, libzmq connects.
    let (mut rep, endpoint) = net.bound(SocketType::Rep);
    let req = zctx.socket(zmq::REQ).unwrap();
    req.set_rcvtimeo(WATCHDOG.as_millis() as i32).unwrap();
    req.connect(&endpoint).unwrap();
    req.send_multipart(["a", "b"], 0).unwrap();
    let got: Vec<String> = rep
        .recv_multipart()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ["a", "b"]);
    rep.send(vec![9u8; 65536]).unwrap();
    assert_eq!(req.recv_bytes(0).unwrap(), vec![9u8; 65536]);
    // libzmq binds, zring connects.
    let path = ipc_path();
    let endpoint = format!("ipc://{}", path.display());
    let pull = zctx.socket(zmq::PULL).unwrap();
    pull.set_rcvtimeo(WATCHDOG.as_millis() as i32).unwrap();
    pull.bind(&endpoint).unwrap();
    let mut push = net.connected(SocketType::Push, &endpoint);
    push.send_multipart(["x", "y"]).unwrap();
    assert_eq!(
        pull.recv_multipart(0).unwrap(),
        [b"x".to_vec(), b"y".to_vec()]
    );
    let _ = std::fs::remove_file(path);
}
