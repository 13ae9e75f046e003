//! PUB, XPUB, SUB and XSUB (spec 29). Subscriptions travel from subscriber to publisher as one-frame
//! messages `\x01topic` / `\x00topic` (sessions turn them into SUBSCRIBE/CANCEL for 3.1 peers);
//! publishers filter, so that only matching messages cross the wire.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::{Drops, Pattern, SendError};
use crate::error::Error;
use crate::msg::Msg;
use crate::options::Options;
use crate::pipe::Parts;
use crate::route::fq::FairQueue;
use crate::route::{dist, PipeId, Pipes};
use crate::subscriptions::Subscriptions;

/// A subscription message's payload, if `msg` is one: one frame starting 0x01 (subscribe) or 0x00
/// (cancel).
fn subscription(msg: &Parts) -> Option<(bool, Bytes)> {
    if msg.len() != 1 {
        return None;
    }
    let on = match msg.first().first() {
        Some(1) => true,
        Some(0) => false,
        _ => return None,
    };
    Some((on, msg.first().clone().into_bytes().slice(1..)))
}

fn subscription_msg(on: bool, topic: &[u8]) -> Parts {
    let mut body = Vec::with_capacity(topic.len() + 1);
    body.push(u8::from(on));
    body.extend_from_slice(topic);
    Parts::one(Msg::from(body))
}

/// PUB and XPUB: distribute to the subscribers whose subscriptions match; drop, and count, for a
/// subscriber at its high-water mark; never block. XPUB also hands subscriptions to the application.
pub(crate) struct Publisher {
    xpub: bool,
    /// Each subscriber's subscriptions.
    per_pipe: HashMap<PipeId, Subscriptions>,
    /// All subscribers' subscriptions together: XPUB reports a topic's first subscribe and last cancel.
    all: Subscriptions,
    /// What XPUB's application receives: subscription notices and other messages from subscribers.
    inbox: VecDeque<Parts>,
    /// Reads what subscribers send.
    fq: FairQueue,
    drops: Drops,
    /// The subscribers a message goes to (kept, so that a send allocates nothing).
    targets: Vec<PipeId>,
}

impl Publisher {
    pub(crate) fn new(xpub: bool) -> Publisher {
        Publisher {
            xpub,
            per_pipe: HashMap::new(),
            all: Subscriptions::default(),
            inbox: VecDeque::new(),
            targets: Vec::new(),
            fq: FairQueue::default(),
            drops: Drops::default(),
        }
    }

    /// Applies everything subscribers have sent.
    fn read_subscriptions(&mut self, pipes: &Pipes, verbose: bool) {
        while let Some((id, msg)) = self.fq.recv(pipes) {
            let Some((on, topic)) = subscription(&msg) else {
                // PUB discards other traffic (spec 29); XPUB passes it on.
                if self.xpub {
                    self.inbox.push_back(msg);
                }
                continue;
            };
            let Some(subs) = self.per_pipe.get_mut(&id) else {
                continue;
            };
            let notice = if on {
                subs.add(topic.clone());
                self.all.add(topic.clone()) || verbose
            } else {
                subs.remove(&topic).is_some() && self.all.remove(&topic) == Some(true)
            };
            if self.xpub && notice {
                self.inbox.push_back(subscription_msg(on, &topic));
            }
        }
    }
}

impl Pattern for Publisher {
    fn attach(&mut self, id: PipeId, _: &Pipes) -> bool {
        self.per_pipe.insert(id, Subscriptions::default());
        self.fq.pipes.attach(id);
        true
    }

    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.fq.pipes.detach(id);
        let Some(subs) = self.per_pipe.remove(&id) else {
            return;
        };
        // The subscriber's subscriptions go with it; XPUB reports the topics nobody wants any more.
        for (topic, count) in subs.counts() {
            let mut last = false;
            for _ in 0..count {
                last = self.all.remove(topic) == Some(true);
            }
            if self.xpub && last {
                self.inbox.push_back(subscription_msg(false, topic));
            }
        }
    }

    fn send(&mut self, pipes: &Pipes, msg: Parts, options: &Options) -> Result<(), SendError> {
        // Subscriptions that came apply to this message; looking costs a few loads when none did.
        if self.fq.readable(pipes) {
            self.read_subscriptions(pipes, options.xpub_verbose);
        }
        let topic = msg.first();
        self.targets.clear();
        self.targets.extend(
            self.per_pipe
                .iter()
                .filter(|(_, subs)| subs.matches(topic))
                .map(|(&id, _)| id),
        );
        let dropped = dist::send(pipes, self.targets.drain(..), msg);
        self.drops.hwm += dropped;
        Ok(())
    }

    fn recv(&mut self, pipes: &Pipes, options: &Options) -> Result<Option<Parts>, Error> {
        self.read_subscriptions(pipes, options.xpub_verbose);
        Ok(self.inbox.pop_front())
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.xpub && (!self.inbox.is_empty() || self.fq.readable(pipes))
    }

    fn writable(&self, _: &Pipes) -> bool {
        true
    }

    fn drops(&self) -> Drops {
        self.drops
    }
}

/// SUB and XSUB: fair-queued in. SUB subscribes through `subscribe` and filters what arrives as well;
/// XSUB subscribes by sending `\x01topic` messages and forwards anything else it is given upstream.
/// Both send their subscriptions again to every new publisher.
pub(crate) struct Subscriber {
    xsub: bool,
    subs: Subscriptions,
    fq: FairQueue,
}

impl Subscriber {
    pub(crate) fn new(xsub: bool) -> Subscriber {
        Subscriber {
            xsub,
            subs: Subscriptions::default(),
            fq: FairQueue::default(),
        }
    }

    /// Records a subscription or cancel and sends it to every publisher. A cancel of a topic that is
    /// not subscribed is ignored, so that publishers' counts stay equal to ours.
    fn update(&mut self, pipes: &Pipes, on: bool, topic: Bytes) {
        if on {
            self.subs.add(topic.clone());
        } else if self.subs.remove(&topic).is_none() {
            return;
        }
        dist::send(pipes, pipes.ids(), subscription_msg(on, &topic));
    }
}

impl Pattern for Subscriber {
    fn attach(&mut self, id: PipeId, pipes: &Pipes) -> bool {
        self.fq.pipes.attach(id);
        if let Some(pipe) = pipes.get(id) {
            for (topic, count) in self.subs.counts() {
                for _ in 0..count {
                    let _ = pipe.try_send(subscription_msg(true, topic));
                }
            }
        }
        true
    }

    fn detach(&mut self, id: PipeId, _: &Pipes) {
        self.fq.pipes.detach(id);
    }

    fn send(&mut self, pipes: &Pipes, msg: Parts, _: &Options) -> Result<(), SendError> {
        if let Some((on, topic)) = subscription(&msg) {
            self.update(pipes, on, topic);
        } else {
            dist::send(pipes, pipes.ids(), msg);
        }
        Ok(())
    }

    fn recv(&mut self, pipes: &Pipes, _: &Options) -> Result<Option<Parts>, Error> {
        while let Some((_, msg)) = self.fq.recv(pipes) {
            if self.xsub || self.subs.matches(msg.first()) {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    fn accepts(&self, body: &[u8]) -> bool {
        self.xsub || self.subs.matches(body)
    }

    fn readable(&self, pipes: &Pipes) -> bool {
        self.fq.readable(pipes)
    }

    fn writable(&self, _: &Pipes) -> bool {
        self.xsub
    }

    fn subscribe(&mut self, pipes: &Pipes, topic: Bytes, on: bool) -> Result<(), ()> {
        if self.xsub {
            return Err(());
        }
        self.update(pipes, on, topic);
        Ok(())
    }
}
