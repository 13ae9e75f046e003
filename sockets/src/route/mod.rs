//! Routing strategies, as libzmq's: load-balance out (`lb`), fair-queue in (`fq`), distribute to all
//! (`dist`). Each is small and knows only pipe ids; the patterns compose them.

pub(crate) mod dist;
pub(crate) mod fq;
pub(crate) mod lb;

use crate::pipe::PipeEnd;

/// Load-balancing out and fair queuing in over the same pipes: DEALER, and REQ under its lock-step.
#[derive(Default)]
pub(crate) struct Duplex {
    pub(crate) lb: lb::LoadBalance,
    pub(crate) fq: fq::FairQueue,
}

impl Duplex {
    pub(crate) fn attach(&mut self, id: PipeId) {
        self.lb.pipes.attach(id);
        self.fq.pipes.attach(id);
    }

    pub(crate) fn detach(&mut self, id: PipeId) {
        self.lb.pipes.detach(id);
        self.fq.pipes.detach(id);
    }
}

/// Names one pipe of a socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PipeId(usize);

/// The pipes of a socket, by id. Ids are reused after a pipe is removed.
#[derive(Default)]
pub(crate) struct Pipes {
    slots: Vec<Option<PipeEnd>>,
    free: Vec<usize>,
    /// How many are to peers in other processes (`shm://`).
    shm: usize,
}

impl Pipes {
    pub(crate) fn insert(&mut self, pipe: PipeEnd) -> PipeId {
        self.shm += usize::from(pipe.is_shm());
        match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(pipe);
                }
                PipeId(i)
            }
            None => {
                self.slots.push(Some(pipe));
                PipeId(self.slots.len() - 1)
            }
        }
    }

    pub(crate) fn get(&self, id: PipeId) -> Option<&PipeEnd> {
        self.slots.get(id.0).and_then(Option::as_ref)
    }

    pub(crate) fn remove(&mut self, id: PipeId) -> Option<PipeEnd> {
        let pipe = self.slots.get_mut(id.0).and_then(Option::take);
        if let Some(p) = &pipe {
            self.free.push(id.0);
            self.shm -= usize::from(p.is_shm());
        }
        pipe
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = PipeId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PipeId(i))
    }

    /// Whether any is to a peer in another process (`shm://`).
    pub(crate) fn has_shm(&self) -> bool {
        self.shm > 0
    }

    /// The pipes to peers in other processes (none looked at if there are none).
    pub(crate) fn shm(&self) -> impl Iterator<Item = &PipeEnd> + '_ {
        let any = if self.shm > 0 { self.slots.len() } else { 0 };
        self.slots[..any].iter().flatten().filter(|p| p.is_shm())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The pipe, if there is exactly one.
    #[inline]
    pub(crate) fn only(&self) -> Option<&PipeEnd> {
        self.only_entry().map(|(_, pipe)| pipe)
    }

    /// The pipe and its id, if there is exactly one.
    #[inline]
    pub(crate) fn only_entry(&self) -> Option<(PipeId, &PipeEnd)> {
        if self.len() != 1 {
            return None;
        }
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.as_ref().map(|p| (PipeId(i), p)))
    }
}

/// An ordered set of pipe ids with a round-robin cursor: what `lb` and `fq` share.
#[derive(Default)]
pub(crate) struct RoundRobin {
    ids: Vec<PipeId>,
    next: usize,
}

impl RoundRobin {
    pub(crate) fn attach(&mut self, id: PipeId) {
        self.ids.push(id);
    }

    pub(crate) fn detach(&mut self, id: PipeId) {
        if let Some(pos) = self.ids.iter().position(|&p| p == id) {
            self.ids.remove(pos);
            if pos < self.next {
                self.next -= 1;
            }
        }
        if self.next >= self.ids.len() {
            self.next = 0;
        }
    }

    /// The id at round-robin step `i` from the cursor, with its position.
    fn at(&self, i: usize) -> Option<(usize, PipeId)> {
        let n = self.ids.len();
        let pos = (self.next + i) % n.max(1);
        self.ids.get(pos).map(|&id| (pos, id))
    }

    /// How many ids there are.
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The ids in round-robin order, starting at the cursor, with their positions.
    fn rotation(&self) -> impl Iterator<Item = (usize, PipeId)> + '_ {
        let n = self.ids.len();
        (0..n).filter_map(move |i| {
            let pos = (self.next + i) % n;
            self.ids.get(pos).map(|&id| (pos, id))
        })
    }

    /// Moves the cursor past `pos`.
    fn advance_past(&mut self, pos: usize) {
        self.next = (pos + 1) % self.ids.len().max(1);
    }
}
