//! A first look at tcp:// between zring sockets and against libzmq.

use std::time::Duration;
use zring::{Context, SocketType};

#[test]
fn zring_req_rep_over_tcp() {
    let ctx = Context::new();
    let mut rep = ctx.socket(SocketType::Rep).unwrap();
    rep.set_rcvtimeo(Some(Duration::from_secs(5))).unwrap();
    rep.bind("tcp://127.0.0.1:0").unwrap();
    let ep = rep.last_endpoint().unwrap();
    let mut req = ctx.socket(SocketType::Req).unwrap();
    req.set_rcvtimeo(Some(Duration::from_secs(5))).unwrap();
    req.connect(&ep).unwrap();
    for i in 0..10 {
        req.send(format!("hello {i}")).unwrap();
        assert_eq!(rep.recv_string().unwrap(), format!("hello {i}"));
        rep.send("world").unwrap();
        assert_eq!(req.recv_string().unwrap(), "world");
    }
}

#[test]
fn libzmq_req_to_zring_rep() {
    let ctx = Context::new();
    let mut rep = ctx.socket(SocketType::Rep).unwrap();
    rep.set_rcvtimeo(Some(Duration::from_secs(5))).unwrap();
    rep.bind("tcp://127.0.0.1:0").unwrap();
    let ep = rep.last_endpoint().unwrap();
    let zctx = zmq::Context::new();
    let req = zctx.socket(zmq::REQ).unwrap();
    req.set_rcvtimeo(5000).unwrap();
    req.connect(&ep).unwrap();
    req.send("hi", 0).unwrap();
    assert_eq!(rep.recv_string().unwrap(), "hi");
    rep.send("there").unwrap();
    assert_eq!(req.recv_bytes(0).unwrap(), b"there");
}
