//! Netfilter drops held aside until the read of the ruleset after them is in. Such a drop is
//! named by the one dropping rule whose counter moved between the read before it and the read
//! after it, and reads run off the event loop ([`crate::ruleset::reader`]): while one is due or
//! under way, the netfilter drops that wait for it are held here, with their frames, and
//! everything else flows on. Once it is in they are named and written in their order — after
//! lines of events that came later (JSON consumers order by `ts_ns`).
//!
//! The queue is bounded ([`HELD_MAX`]): a netfilter drop that finds it full is written at once
//! with the plain cause ("dropped by a netfilter rule"), and counted.

use std::collections::VecDeque;

use crate::{
    events::{JourneyRecord, NamedDrop, journey::Outcome},
    ruleset::RuleQuery,
};

/// Netfilter drops held at most: each holds its names and frame (about 1 KiB at the default
/// snaplen), and a drop waits at most a gap between reads and a read (0.1 s + 0.3 s for 7000
/// rules): room for a storm of 25 000 netfilter drops a second on such a node.
pub(crate) const HELD_MAX: usize = 10_000;

/// A bounded queue, first in first out, whose items leave in order when they are ready.
pub(crate) struct HeldQueue<T> {
    items: VecDeque<T>,
    max: usize,
}

impl<T> HeldQueue<T> {
    pub(crate) fn new(max: usize) -> Self {
        Self { items: VecDeque::new(), max }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// `max` are held: the caller keeps what it would hold (and says so).
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= self.max
    }

    /// Holds `item` behind the others (the caller made sure the queue is not full).
    pub(crate) fn hold(&mut self, item: T) {
        debug_assert!(!self.is_full(), "held beyond the bound");
        self.items.push_back(item);
    }

    /// The first item held and what `ready` makes of it, when `ready` says it can go;
    /// `None` when it waits (and every item behind it with it) or none is held.
    pub(crate) fn next_ready<A>(&mut self, ready: impl FnOnce(&T) -> Option<A>) -> Option<(T, A)> {
        let made = ready(self.items.front()?)?;
        self.items.pop_front().map(|item| (item, made))
    }
}

/// A netfilter drop waiting for the read after it, on `iface` (its device, `-` when none).
pub(crate) struct HeldDrop {
    pub query: RuleQuery,
    pub iface: String,
    pub what: Held,
}

/// What a held drop becomes once named.
pub(crate) enum Held {
    /// A drop's record; `frame` (its bytes and origin) copied out of the ring, `None` when
    /// drops are not shown (it is only observed).
    Drop { named: Box<NamedDrop>, frame: Option<(Vec<u8>, u8)> },
    /// The journey it ended (`--journey`), made when the drop came: its outcome is the drop.
    Journey(Box<JourneyRecord>),
}

impl Held {
    /// The drop, to be named.
    pub(crate) fn drop_mut(&mut self) -> Option<&mut NamedDrop> {
        match self {
            Self::Drop { named, .. } => Some(named),
            Self::Journey(j) => match &mut j.outcome {
                Outcome::Dropped(d) => Some(d),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::{
        Attribution, Naming, RulesetModel,
        tests::{BEFORE, query, read_of},
    };

    /// Items leave first in, first out, and only when ready: one that waits keeps every item
    /// behind it waiting, ready or not.
    #[test]
    fn held_items_leave_in_their_order_when_ready() {
        let mut q = HeldQueue::new(10);
        for ts in [5, 25, 15] {
            q.hold(ts);
        }
        let ready_before = |t: u64| move |ts: &u64| (*ts < t).then_some(*ts * 2);
        assert_eq!(q.next_ready(ready_before(20)), Some((5, 10)));
        assert_eq!(q.next_ready(ready_before(20)), None, "25 waits, and 15 behind it");
        assert_eq!(q.next_ready(ready_before(30)), Some((25, 50)));
        assert_eq!(q.next_ready(ready_before(30)), Some((15, 30)));
        assert!(q.is_empty() && q.next_ready(ready_before(30)).is_none());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut q = HeldQueue::new(3);
        for i in 0..3 {
            assert!(!q.is_full());
            q.hold(i);
        }
        assert!(q.is_full(), "the caller keeps the 4th (written with its plain cause)");
        assert_eq!(q.next_ready(|i| Some(*i)), Some((0, 0)));
        assert!(!q.is_full());
    }

    /// The drops held behind a read are named by it in their order; those after it wait for
    /// the next — at exit the last read, which names every one still held.
    #[test]
    fn a_last_read_names_every_held_drop() {
        let deny = |n: u32| BEFORE.replace("[3:180] -A cali-pi-_hashed", &format!("[{n}:0] -A cali-pi-_hashed"));
        let mut model = RulesetModel::new(None);
        model.take(read_of(BEFORE, 10));
        let mut held = HeldQueue::new(10);
        for ts in [12, 15, 16] {
            held.hold(query(ts));
        }
        /// What `Pipeline::release` does: the held drops `model` names now, in order.
        fn release(model: &mut RulesetModel, held: &mut HeldQueue<RuleQuery>) -> Vec<u64> {
            let mut ready = |q: &RuleQuery| match model.naming(q) {
                Naming::Wait => None,
                n => Some(n),
            };
            let mut named = Vec::new();
            while let Some((q, n)) = held.next_ready(&mut ready) {
                assert!(matches!(n, Naming::Rule(Attribution::Named(_))), "{n:?}");
                named.push(q.ts_ns);
            }
            named
        }
        assert!(release(&mut model, &mut held).is_empty(), "no read after them yet");
        model.take(read_of(&deny(4), 13));
        assert_eq!(release(&mut model, &mut held), [12]);
        // At exit: the last read.
        model.take(read_of(&deny(6), 20));
        assert_eq!(release(&mut model, &mut held), [15, 16]);
        assert!(held.is_empty());
    }
}
