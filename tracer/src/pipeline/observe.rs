//! The observe stage: what sees every event and every named drop, shown or not, and changes
//! nothing — the counters a finished trace reports, the drop summary, the metrics, and
//! `vethtrace top`'s per-interface tallies ([`super::tally`]).

use super::{
    paths::Paths,
    tally::{RecentDrop, Tally},
};
use crate::{
    drops::summary::{Summary, flow},
    events::{
        Event, JourneyRecord, NamedDrop,
        journey::Outcome,
    },
    metrics::Metrics,
};

/// One observer of the pipeline.
pub(crate) trait Observer {
    /// Every decoded event, before it is analysed.
    fn event(&mut self, _ev: &Event) {}
    /// Every drop once named (and every ARP_UNANSWERED finding), on `iface`; `symbol` is the
    /// dropping function's.
    fn drop(&mut self, _drop: &NamedDrop, _iface: &str, _symbol: Option<&str>) {}
    /// Every journey once it ended (`--journey`).
    fn journey(&mut self, _journey: &JourneyRecord) {}
    /// A record that could not be decoded.
    fn undecodable(&mut self) {}
}

/// What a finished trace reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Records handed to the writers.
    pub events: u64,
    /// Drop events received (shown or not).
    pub drops: u64,
    pub lost: u64,
    pub undecodable: u64,
    /// Sections of a kind or version this build does not know, skipped.
    pub unknown_sections: u64,
    /// Failures the eBPF programs counted (`tracer_common::errsite`), all sites.
    pub kernel_errors: u64,
    /// Packet records whose frame the expression's translation matched (the rest, with an
    /// expression: the interpreter's).
    pub translated: u64,
    /// Journeys written (`--journey`).
    pub journeys: u64,
    /// Packets the expression selected that were not followed (`--journey`): the kernel's
    /// map of journeys under way was full, or the collector's.
    pub unfollowed: u64,
    /// Netfilter drops written with the plain cause, not named by rule: as many as the
    /// pipeline holds already waited for a read of the ruleset.
    pub not_held: u64,
}

impl Observer for Counters {
    fn event(&mut self, ev: &Event) {
        if let Event::Packet(p) = ev
            && p.translated
        {
            self.translated += 1;
        }
    }

    fn drop(&mut self, _: &NamedDrop, _: &str, _: Option<&str>) {
        self.drops += 1;
    }

    fn journey(&mut self, _: &JourneyRecord) {
        self.journeys += 1;
    }

    fn undecodable(&mut self) {
        self.undecodable += 1;
    }
}

/// Drops by reason (or location), interface and flow.
impl Observer for Summary {
    fn drop(&mut self, drop: &NamedDrop, iface: &str, _: Option<&str>) {
        self.add(drop.reason_or_location(), iface, &drop.ev.packet);
    }
}

/// metrics: packets, ARP and neighbour events by kind; drops by reason (by the dropping
/// function on kernels without reasons); undecodable records.
impl Observer for Metrics {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Packet(_) => self.packet(),
            Event::Arp(ev) => self.arp(ev.ifindex, ev.hook, ev.op),
            Event::Neigh(ev) => self.neigh(&ev.neigh),
            Event::Drop(_) | Event::Hop(_) => {}
        }
    }

    fn drop(&mut self, drop: &NamedDrop, iface: &str, symbol: Option<&str>) {
        self.dropped(drop.ev.ifindex, iface, drop.reason.as_deref().or(symbol).unwrap_or("unknown"));
        if let Some(p) = &drop.policy {
            self.policy_dropped(policy_labels(p));
        }
    }

    fn journey(&mut self, j: &JourneyRecord) {
        let exit = match &j.outcome {
            Outcome::Out { iface, .. } => iface.as_str(),
            _ => "",
        };
        Metrics::journey(self, &j.place.iface, exit, j.outcome.word(), j.duration_ns as f64 / 1e9);
    }

    fn undecodable(&mut self) {
        Metrics::undecodable(self);
    }
}

/// `vethtrace top`: drops, proxy-ARP answers and the last event, per interface.
impl Observer for Tally {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Arp(a) => self.arp(a.ifindex, a.hook, a.op, std::time::Instant::now()),
            Event::Neigh(n) => self.entry(n.ifindex).last_event = Some(std::time::Instant::now()),
            Event::Packet(_) | Event::Drop(_) | Event::Hop(_) => {}
        }
    }

    fn drop(&mut self, drop: &NamedDrop, _iface: &str, _symbol: Option<&str>) {
        let recent = RecentDrop {
            at: std::time::Instant::now(),
            reason: drop.reason_or_location().to_owned(),
            cause: drop.cause.text().to_owned(),
            flow: flow(&drop.ev.packet),
        };
        Tally::drop(self, drop.ev.ifindex, recent, drop.finding);
    }
}

/// Every observer, each shown every event and drop in the same order.
#[derive(Default)]
pub(crate) struct Observers {
    pub counters: Counters,
    pub summary: Summary,
    /// `--metrics`.
    pub metrics: Option<Metrics>,
    /// `vethtrace top`: drops, ARP and neighbour events per interface.
    pub top: Option<Tally>,
    /// `--journey`: the journeys by path, for the table at exit.
    pub paths: Option<Paths>,
}

/// `$body` for each observer bound to `$o`, each called directly (no vtable on the path every
/// record takes). The one list of observers.
macro_rules! each_observer {
    ($observers:expr, $o:ident => $body:expr) => {{
        let Observers { counters, summary, metrics, top, paths } = $observers;
        {
            let $o = counters;
            $body;
        }
        {
            let $o = summary;
            $body;
        }
        if let Some($o) = metrics {
            $body;
        }
        if let Some($o) = top {
            $body;
        }
        if let Some($o) = paths {
            $body;
        }
    }};
}

impl Observers {
    #[inline]
    pub(crate) fn event(&mut self, ev: &Event) {
        each_observer!(self, o => Observer::event(o, ev));
    }

    pub(crate) fn drop(&mut self, drop: &NamedDrop, iface: &str, symbol: Option<&str>) {
        each_observer!(self, o => Observer::drop(o, drop, iface, symbol));
    }

    pub(crate) fn journey(&mut self, journey: &JourneyRecord) {
        each_observer!(self, o => Observer::journey(o, journey));
    }

    pub(crate) fn undecodable(&mut self) {
        each_observer!(self, o => Observer::undecodable(o));
    }
}

/// The `policy_drops` labels of a netfilter drop: its rule's policy, `ambiguous` or `unknown`.
fn policy_labels(p: &crate::drops::policy::PolicyDrop) -> crate::metrics::PolicyLabels {
    use crate::ruleset::Attribution;
    let (drop, policy) = match &p.attribution {
        Attribution::Named(r) => (r.reading.kind.code(), r.reading.policy.as_ref()),
        Attribution::Ambiguous(_) => ("ambiguous", None),
        Attribution::Unknown(_) => ("unknown", None),
    };
    crate::metrics::PolicyLabels {
        drop: drop.to_owned(),
        kind: policy.map(|p| p.kind.clone()).unwrap_or_default(),
        namespace: policy.and_then(|p| p.namespace.clone()).unwrap_or_default(),
        name: policy.map(|p| p.name.clone()).unwrap_or_default(),
    }
}
