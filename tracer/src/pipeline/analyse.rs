//! The analyse stage: what vethtrace knows about an event beyond what the kernel said — a
//! packet's route/neighbour annotation (cached per flow), a drop's names and cause, and the
//! pods' ARP requests the node leaves unanswered. Everything here reads the node's mirror.

use std::borrow::Cow;

use super::place::iface_name;
use crate::{
    annotate::cache::AnnotationCache,
    drops::{self, DropNames, arpwatch::ArpWatch},
    events::{
        ArpEvent, ArpRecord, Captured, DropEvent, NamedDrop, NeighEvent, NeighRecord, PacketEvent, PacketRecord, Place,
    },
    mirror::Mirror,
    probes,
    ruleset::{Attribution, RuleQuery},
};

pub(crate) struct Analyser {
    /// Packets' annotations, rendered once per flow while the mirror stays the same.
    pub annotations: AnnotationCache,
    /// `None` when drops are not traced.
    pub drop_names: Option<DropNames>,
    /// Drop hunting: the pods' ARP requests the node leaves unanswered.
    arp_watch: ArpWatch,
    /// The ARP/neighbour probes' mode, `None` when none attached.
    probe_mode: Option<probes::Mode>,
}

impl Analyser {
    pub(crate) fn new(drop_names: Option<DropNames>, probe_mode: Option<probes::Mode>) -> Self {
        Self { annotations: AnnotationCache::default(), drop_names, arp_watch: ArpWatch::default(), probe_mode }
    }

    pub(crate) fn probe_mode(&self) -> Option<probes::Mode> {
        self.probe_mode
    }

    pub(crate) fn packet<'a>(
        &'a mut self,
        node: &'a Mirror,
        place: Place<'a>,
        ev: PacketEvent,
        frame: Captured<'a>,
    ) -> PacketRecord<'a> {
        let annotation = self.annotations.get(node, &ev);
        PacketRecord { place, ev, annotation, frame }
    }

    /// `None` when no ARP probe is attached (the event cannot be one of vethtrace's).
    pub(crate) fn arp<'a>(&self, place: Place<'a>, ev: ArpEvent) -> Option<ArpRecord<'a>> {
        Some(ArpRecord { place, ev, mode: self.probe_mode? })
    }

    pub(crate) fn neigh<'a>(&self, place: Place<'a>, ev: NeighEvent) -> Option<NeighRecord<'a>> {
        Some(NeighRecord { place, ev, mode: self.probe_mode? })
    }

    /// A drop named, with the name of its device (`-` when it has none); `None` when drops
    /// are not traced or the drop is noise (IPv6 control traffic, a pod's own). A netfilter
    /// drop's rule is named apart ([`Self::rule_query`], [`name_rule`]).
    pub(crate) fn drop<'a>(&self, node: &'a Mirror, ev: DropEvent) -> Option<(NamedDrop, Cow<'a, str>)> {
        let names = self.drop_names.as_ref()?;
        if names.is_ipv6_control_noise(&ev) || drops::podside::is_pod_noise(names, &ev) {
            return None;
        }
        let dev = (ev.ifindex != 0).then(|| iface_name(node, ev.ifindex));
        let unanswered = self.arp_watch.last_unanswered(ev.ifindex);
        let named = drops::name::name_with(names, node, &ev, dev.as_deref(), unanswered);
        Some((named, dev.unwrap_or(Cow::Borrowed("-"))))
    }

    /// What naming the rule of a netfilter drop on the node's side takes: when, its device,
    /// the device its destination is routed out of, its IP family. `None` for other drops.
    pub(crate) fn rule_query(&self, node: &Mirror, named: &NamedDrop) -> Option<RuleQuery> {
        if named.cause.code != drops::cause::CauseCode::Netfilter || named.pod_dev.is_some() {
            return None;
        }
        let ev = &named.ev;
        let dev = (ev.ifindex != 0).then(|| iface_name(node, ev.ifindex).into_owned());
        let out = named.annotation.route_dev.and_then(|d| node.links.name(d.index)).map(str::to_owned);
        let view = crate::packet::PacketView(&ev.packet);
        let family = view.src_ip().map(|ip| if ip.is_ipv4() { "ip" } else { "ip6" });
        Some(RuleQuery { ts_ns: ev.header.ts_ns, dev, out, family })
    }

    /// The dropping function's symbol (metrics name drops by it on kernels without reasons).
    pub(crate) fn symbol(&self, ev: &DropEvent) -> Option<&str> {
        self.drop_names.as_ref()?.symbol(ev)
    }

    /// ARP_UNANSWERED: a pod's ARP request on a traced cali the node leaves unanswered
    /// (drops mode: the TC programs send ARP frames only).
    pub(crate) fn arp_finding<'a>(
        &mut self,
        node: &'a Mirror,
        ev: &PacketEvent,
    ) -> Option<(NamedDrop, Cow<'a, str>)> {
        self.drop_names.as_ref()?;
        let finding = self.arp_watch.observe(node, ev)?;
        let dev = iface_name(node, ev.ifindex);
        Some((drops::podside::finding_drop(ev, &finding, &dev), dev))
    }
}

/// A netfilter drop named by its rule (`attribution`): the cause in its policy's terms.
pub(crate) fn name_rule(
    named: &mut NamedDrop,
    attribution: Attribution,
    query: &RuleQuery,
    pod_of: &dyn Fn(&str) -> Option<String>,
) {
    let (policy, cause) = drops::policy::describe(attribution, query.dev.as_deref(), query.out.as_deref(), pod_of);
    named.cause = cause;
    named.policy = Some(Box::new(policy));
}
