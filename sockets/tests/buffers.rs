//! The pool of large buffers, seen from sockets: a large body copied from the application's slice
//! lies in memory that a body received and dropped before it gave back. This file is a test binary
//! of its own, so that no other test's large messages share the process's pool while it runs.

use zring::{Context, SocketType};

#[test]
fn a_large_body_sent_from_a_slice_reuses_the_memory_of_one_dropped() {
    let ctx = Context::new();
    let mut pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://buffers").unwrap();
    let mut push = ctx.socket(SocketType::Push).unwrap();
    push.connect("inproc://buffers").unwrap();
    let len = 5 * 1024 * 1024 + 77;
    let mut seen = Vec::new();
    for i in 0..4u8 {
        push.send(&vec![i; len][..]).unwrap();
        let got = pull.recv().unwrap();
        assert_eq!(got.len(), len);
        assert!(got.iter().all(|&b| b == i), "message {i} intact");
        seen.push(got.as_ptr() as usize);
    }
    // Each body was dropped before the next was sent: all four lay in the same buffer, which the
    // pool holds now (a copy starts at most 64 octets in, by where its source lies).
    let same = |a: usize, b: usize| a.abs_diff(b) <= 64;
    assert!(seen.windows(2).all(|w| same(w[0], w[1])), "{seen:x?}");
    let copy = zring_zmtp::pool::copy_from_slice(&vec![9u8; len - 1]);
    assert!(same(copy.as_ptr() as usize, seen[0]));
    assert!(copy.len() == len - 1 && copy.iter().all(|&b| b == 9));
}
