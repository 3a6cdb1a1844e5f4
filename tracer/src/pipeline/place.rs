//! The place stage: where and when an event happened, in the node's terms — the interface's
//! name (from the node's mirror), the pod behind it, and the wall-clock time.

use std::{borrow::Cow, sync::Arc};

use crate::{
    events::{Captured, DropRecord, NamedDrop, Place},
    mirror::Mirror,
    packet::PacketView,
    pods::{Pod, PodIndex, PodReader},
};

/// Converts kernel monotonic timestamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall_minus_mono_ns: i128,
}

impl Clock {
    pub(crate) fn now() -> Self {
        use crate::kernel::clock_ns;
        Self { wall_minus_mono_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC) }
    }

    pub(crate) fn wall(self, mono_ns: u64) -> i128 {
        i128::from(mono_ns) + self.wall_minus_mono_ns
    }
}

pub(crate) struct Placer {
    clock: Clock,
    /// Who is behind each interface (`None`: events carry no pod).
    pods: Option<PodReader>,
}

impl Placer {
    pub(crate) fn new(pods: Option<PodIndex>) -> Self {
        Self { clock: Clock::now(), pods: pods.map(PodReader::new) }
    }

    /// Takes in the pod index's latest snapshot, if it changed.
    pub(crate) fn refresh(&mut self) {
        if let Some(pods) = &mut self.pods {
            pods.refresh();
        }
    }

    /// Where and when an event on `ifindex` at `ts_ns` happened.
    #[inline]
    pub(crate) fn at<'a>(&self, node: &'a Mirror, ifindex: u32, ts_ns: u64) -> Place<'a> {
        let iface = iface_name(node, ifindex);
        let pod = self.pods.as_ref().and_then(|p| p.by_ifname(&iface));
        Place { iface, ifindex, ts_ns, wall_ns: self.clock.wall(ts_ns), pod }
    }

    /// `namespace/name` of the pod behind `iface`.
    pub(crate) fn pod_label(&self, iface: &str) -> Option<String> {
        let pod = self.pods.as_ref()?.by_ifname(iface)?;
        Some(format!("{}/{}", pod.namespace, pod.name))
    }

    /// A named drop's record, on `iface`.
    pub(crate) fn drop<'a>(&self, drop: NamedDrop, iface: Cow<'a, str>, frame: Captured<'a>) -> DropRecord<'a> {
        let ev = &drop.ev;
        let pod = self.drop_pod(&iface, &ev.packet);
        let ts_ns = ev.header.ts_ns;
        let place = Place { iface, ifindex: ev.ifindex, ts_ns, wall_ns: self.clock.wall(ts_ns), pod };
        DropRecord { place, drop, frame }
    }

    /// A drop's pod: the device's, else the one whose address the packet carries.
    fn drop_pod(&self, iface: &str, packet: &tracer_common::Packet) -> Option<Arc<Pod>> {
        let pods = self.pods.as_ref()?;
        let view = PacketView(packet);
        pods.by_ifname(iface)
            .or_else(|| view.src_ip().and_then(|ip| pods.by_ip(ip)))
            .or_else(|| view.dst_ip().and_then(|ip| pods.by_ip(ip)))
    }
}

/// The interface's name in the mirror, or `if<N>`.
pub(crate) fn iface_name(node: &Mirror, ifindex: u32) -> Cow<'_, str> {
    node.links.name(ifindex).map_or_else(|| Cow::Owned(format!("if{ifindex}")), Cow::Borrowed)
}
