//! The socket types of specs 28-31 and which of them may talk to which (spec 37, "Socket-Type Property").

use std::fmt;

/// A ZeroMQ socket type, as announced in the `Socket-Type` property of READY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// Exclusive pair (spec 31).
    Pair,
    /// Publisher (spec 29).
    Pub,
    /// Subscriber (spec 29).
    Sub,
    /// Requester (spec 28).
    Req,
    /// Replier (spec 28).
    Rep,
    /// Asynchronous requester (spec 28).
    Dealer,
    /// Asynchronous replier with routing ids (spec 28).
    Router,
    /// Pipeline receiver (spec 30).
    Pull,
    /// Pipeline sender (spec 30).
    Push,
    /// Publisher that sees subscriptions (spec 29).
    XPub,
    /// Subscriber that sends subscriptions as messages (spec 29).
    XSub,
}

impl SocketType {
    /// Every socket type, in a fixed order.
    pub const ALL: [SocketType; 11] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
    ];

    /// The name on the wire, e.g. `"DEALER"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
        }
    }

    /// Parses a wire name. Matching is exact, as libzmq's is (`"DEALER"`, not `"dealer"`).
    pub fn from_name(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == name)
    }

    /// Whether a socket of this type may be connected to a peer of type `peer` (spec 37's table).
    pub const fn is_compatible(self, peer: SocketType) -> bool {
        use SocketType::*;
        matches!(
            (self, peer),
            (Req, Rep | Router)
                | (Rep, Req | Dealer)
                | (Dealer, Rep | Dealer | Router)
                | (Router, Req | Dealer | Router)
                | (Pub | XPub, Sub | XSub)
                | (Sub | XSub, Pub | XPub)
                | (Push, Pull)
                | (Pull, Push)
                | (Pair, Pair)
        )
    }

    /// Whether READY from this type carries an `Identity` property (REQ, DEALER and ROUTER, as libzmq).
    pub const fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }

    /// Whether this type receives subscriptions from its peers (PUB, XPUB).
    pub const fn is_publisher(self) -> bool {
        matches!(self, SocketType::Pub | SocketType::XPub)
    }

    /// Whether this type sends subscriptions to its peers (SUB, XSUB).
    pub const fn is_subscriber(self) -> bool {
        matches!(self, SocketType::Sub | SocketType::XSub)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for t in SocketType::ALL {
            assert_eq!(SocketType::from_name(t.as_str().as_bytes()), Some(t));
            assert_eq!(
                SocketType::from_name(t.as_str().to_lowercase().as_bytes()),
                None
            );
        }
        assert_eq!(SocketType::from_name(b"CLIENT"), None);
    }

    #[test]
    fn compatibility_is_symmetric_and_matches_the_spec_table() {
        use SocketType::*;
        let legal = [
            (Req, Rep),
            (Req, Router),
            (Rep, Dealer),
            (Dealer, Dealer),
            (Dealer, Router),
            (Router, Router),
            (Pub, Sub),
            (Pub, XSub),
            (XPub, Sub),
            (XPub, XSub),
            (Push, Pull),
            (Pair, Pair),
        ];
        let mut count = 0;
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(a.is_compatible(b), b.is_compatible(a), "{a} {b}");
                let expected = legal.contains(&(a, b)) || legal.contains(&(b, a));
                assert_eq!(a.is_compatible(b), expected, "{a} with {b}");
                count += usize::from(expected);
            }
        }
        // 12 unordered pairs, 3 of them a type with itself: 9 * 2 + 3 ordered pairs.
        assert_eq!(count, 21);
    }
}
