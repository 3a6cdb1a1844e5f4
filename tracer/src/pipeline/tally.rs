//! What `vethtrace top` learns from the ring, per interface: drops by cause, proxy-ARP
//! requests answered and left unanswered, and when the last event came. One more observer of
//! the pipeline ([`crate::pipeline::observe`]): it sees every event and named drop, shown or
//! not (top shows none of them line by line).

use std::{
    collections::{HashMap, VecDeque},
    time::Instant,
};

use tracer_common::{arp_hook, arp_op};

/// Drops kept per interface for the detail pane.
pub(crate) const RECENT_DROPS: usize = 8;

/// One drop as the detail pane lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecentDrop {
    pub at: Instant,
    /// The kernel's reason (or the dropping location), or the finding (`ARP_UNANSWERED`).
    pub reason: String,
    /// vethtrace's cause, in words.
    pub cause: String,
    pub flow: String,
}

/// What the ring told about one interface.
#[derive(Debug, Default, Clone)]
pub(crate) struct IfaceTally {
    /// Drops since the start.
    pub drops: u64,
    /// Drops since the start by reason, for the top cause.
    pub by_reason: Vec<(String, u64)>,
    /// The newest last.
    pub recent: VecDeque<RecentDrop>,
    /// ARP requests from the pod the host received.
    pub arp_requests: u64,
    /// ARP replies the host sent (proxy ARP answering the pod).
    pub arp_answered: u64,
    /// Requests vethtrace found left unanswered (ARP_UNANSWERED).
    pub arp_unanswered: u64,
    pub last_event: Option<Instant>,
}

impl IfaceTally {
    /// The reason seen most often since `before` (the counts then), and how often; when
    /// nothing was dropped since, the newest drop's reason (0 times).
    pub(crate) fn top_reason_since(&self, before: &[(String, u64)]) -> Option<(&str, u64)> {
        let gained = self.by_reason.iter().map(|(r, n)| {
            let then = before.iter().find(|(b, _)| b == r).map_or(0, |(_, n)| *n);
            (r.as_str(), n.saturating_sub(then))
        });
        match gained.rev().max_by_key(|(_, n)| *n) {
            Some(top) if top.1 > 0 => Some(top),
            _ => self.recent.back().map(|d| (d.reason.as_str(), 0)),
        }
    }

    fn count_reason(&mut self, reason: &str) {
        match self.by_reason.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => self.by_reason.push((reason.to_owned(), 1)),
        }
    }

    fn add_drop(&mut self, drop: RecentDrop) {
        self.drops += 1;
        self.count_reason(&drop.reason);
        self.last_event = Some(drop.at);
        if self.recent.len() == RECENT_DROPS {
            self.recent.pop_front();
        }
        self.recent.push_back(drop);
    }
}

/// Every interface's tally, by ifindex.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub by_ifindex: HashMap<u32, IfaceTally, foldhash::fast::RandomState>,
}

impl Tally {
    pub(crate) fn get(&self, ifindex: u32) -> Option<&IfaceTally> {
        self.by_ifindex.get(&ifindex)
    }

    /// The interface is gone or no longer traced: a later one of the same index starts afresh.
    pub(crate) fn forget(&mut self, ifindex: u32) {
        self.by_ifindex.remove(&ifindex);
    }

    pub(crate) fn entry(&mut self, ifindex: u32) -> &mut IfaceTally {
        self.by_ifindex.entry(ifindex).or_default()
    }

    /// An ARP event on `ifindex` (`hook`, `op` as the probes report them).
    pub(crate) fn arp(&mut self, ifindex: u32, hook: u8, op: u16, at: Instant) {
        let t = self.entry(ifindex);
        t.last_event = Some(at);
        match (hook, op) {
            (arp_hook::RECV, arp_op::REQUEST) => t.arp_requests += 1,
            (arp_hook::SEND, arp_op::REPLY) => t.arp_answered += 1,
            _ => {}
        }
    }

    /// A named drop on `ifindex`; `finding`: an ARP request left unanswered.
    pub(crate) fn drop(&mut self, ifindex: u32, drop: RecentDrop, finding: bool) {
        let t = self.entry(ifindex);
        if finding {
            t.arp_unanswered += 1;
        }
        t.add_drop(drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop(reason: &str) -> RecentDrop {
        RecentDrop { at: Instant::now(), reason: reason.into(), cause: format!("because {reason}"), flow: "a > b".into() }
    }

    #[test]
    fn drops_keep_the_newest_and_the_top_reason() {
        let mut t = Tally::default();
        for i in 0..10 {
            t.drop(7, drop(if i % 3 == 0 { "NEIGH_FAILED" } else { "NETFILTER_DROP" }), false);
        }
        t.drop(7, drop("ARP_UNANSWERED"), true);
        let i = t.get(7).unwrap();
        assert_eq!(i.drops, 11);
        assert_eq!(i.recent.len(), RECENT_DROPS);
        assert_eq!(i.recent.back().unwrap().reason, "ARP_UNANSWERED");
        assert_eq!(i.top_reason_since(&[]), Some(("NETFILTER_DROP", 6)));
        // Since a moment when NETFILTER_DROP had 5 and NEIGH_FAILED 2: 2 more NEIGH_FAILED.
        let before = [("NETFILTER_DROP".to_owned(), 5), ("NEIGH_FAILED".to_owned(), 2)];
        assert_eq!(i.top_reason_since(&before), Some(("NEIGH_FAILED", 2)));
        // Nothing since: the newest drop's reason.
        assert_eq!(i.top_reason_since(&i.by_reason), Some(("ARP_UNANSWERED", 0)));
        assert_eq!(i.arp_unanswered, 1);
        assert!(t.get(8).is_none());
        t.forget(7);
        assert!(t.get(7).is_none());
    }

    #[test]
    fn proxy_arp_answers_are_counted_by_direction() {
        let mut t = Tally::default();
        let now = Instant::now();
        t.arp(3, arp_hook::RECV, arp_op::REQUEST, now);
        t.arp(3, arp_hook::SEND, arp_op::REPLY, now);
        t.arp(3, arp_hook::SEND, arp_op::REQUEST, now);
        let i = t.get(3).unwrap();
        assert_eq!((i.arp_requests, i.arp_answered, i.arp_unanswered), (1, 1, 0));
        assert_eq!(i.last_event, Some(now));
    }
}
