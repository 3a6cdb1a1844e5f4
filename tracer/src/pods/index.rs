//! The published map: the active source's pods joined with the node's links and host routes
//! (a [`Mirror`] of its own, kept live by netlink multicast), rebuilt when either changes and
//! swapped in whole, so that a lookup is one read lock and a hash probe.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt as _;
use tokio::sync::watch;

use super::{Pod, hash};
use netlink_packet_core::NetlinkMessage;

use crate::mirror::{
    self, Mirror, Netlink, Notifications, RtMessage,
    routes::{RT_TABLE_MAIN, RouteKind},
};

/// Changes that arrive together (a pod's link, routes and status file) are published once.
const SETTLE: Duration = Duration::from_millis(20);

/// One interface of the node as `vethtrace pods` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub name: String,
    pub index: u32,
    /// IFF_UP.
    pub up: bool,
    /// The veth peer's netns id as this netns knows it (IFLA_LINK_NETNSID).
    pub peer_netns_id: Option<i32>,
    /// Addresses routed to this interface by a host route (`/32`, `/128`) in the main table.
    pub routed: Vec<IpAddr>,
}

/// Everything the index knows at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every pod of the active source, with its interface and IPs filled in where known.
    pub pods: Vec<Arc<Pod>>,
    /// Every interface of the node, by name.
    pub links: Vec<LinkRow>,
    /// Looked up for every event: foldhash, not SipHash.
    by_iface: HashMap<String, Arc<Pod>, foldhash::fast::RandomState>,
    by_ip: HashMap<IpAddr, Arc<Pod>, foldhash::fast::RandomState>,
}

impl Snapshot {
    pub fn by_ifname(&self, name: &str) -> Option<&Arc<Pod>> {
        self.by_iface.get(name)
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Arc<Pod>> {
        self.by_ip.get(&ip)
    }

    /// Joins `pods` with the node's state: a pod without an interface gets the one its IPs are
    /// routed to (or, failing that, its Calico veth name if such a link exists); a pod without
    /// IPs gets the addresses routed to its interface.
    pub(super) fn build(source: &[Pod], node: &Mirror) -> Self {
        let links = link_rows(node);
        let routed_to: HashMap<IpAddr, String> =
            links.iter().flat_map(|l| l.routed.iter().map(move |ip| (*ip, l.name.clone()))).collect();
        let mut snap = Snapshot { links, ..Snapshot::default() };
        for pod in source {
            let mut pod = pod.clone();
            if pod.iface.is_none() {
                let by_route = pod.ips.iter().find_map(|ip| routed_to.get(ip)).cloned();
                let calico = hash::veth_name(hash::CALICO_PREFIX, &pod.namespace, &pod.name);
                pod.iface = by_route.or_else(|| snap.links.iter().any(|l| l.name == calico).then_some(calico));
            }
            if pod.ips.is_empty()
                && let Some(row) = pod.iface.as_ref().and_then(|i| snap.links.iter().find(|l| &l.name == i))
            {
                pod.ips.clone_from(&row.routed);
            }
            let pod = Arc::new(pod);
            if let Some(iface) = &pod.iface {
                snap.by_iface.insert(iface.clone(), pod.clone());
            }
            for ip in &pod.ips {
                snap.by_ip.insert(*ip, pod.clone());
            }
            snap.pods.push(pod);
        }
        snap
    }
}

fn link_rows(node: &Mirror) -> Vec<LinkRow> {
    let mut routed: HashMap<u32, Vec<IpAddr>> = HashMap::new();
    for r in node.routes.iter() {
        let host = r.dst.len == r.dst.family().bits();
        if host && r.table == RT_TABLE_MAIN && r.kind == RouteKind::Unicast && r.nexthops.len() == 1 {
            let hop = &r.nexthops[0];
            if hop.gateway.is_none() {
                routed.entry(hop.dev).or_default().push(r.dst.addr);
            }
        }
    }
    let mut rows: Vec<LinkRow> = node
        .links
        .iter()
        .map(|l| {
            let mut ips = routed.remove(&l.index).unwrap_or_default();
            ips.sort();
            LinkRow { name: l.name.clone(), index: l.index, up: l.up, peer_netns_id: l.peer_netns_id, routed: ips }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The side that rebuilds and publishes.
pub(super) struct Indexer {
    pub(super) shared: Arc<RwLock<Arc<Snapshot>>>,
    pub(super) generation: watch::Sender<u64>,
    pub(super) source: watch::Receiver<Vec<Pod>>,
    pub(super) node: Mirror,
    pub(super) netlink: Option<(Netlink, Notifications)>,
}

impl Indexer {
    fn publish(&self) {
        let snap = Snapshot::build(&self.source.borrow(), &self.node);
        *self.shared.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(snap);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Applies a netlink notification; a re-dump it calls for runs here, in line (the index is
    /// not on the events' path; notifications queue meanwhile and are applied after it).
    async fn on_notification(&mut self, netlink: &Netlink, msg: &NetlinkMessage<RtMessage>) {
        let (_, redump) = self.node.handle(msg);
        if let Some(what) = redump {
            match what.run(netlink.clone()).await {
                Ok(dump) => {
                    self.node.take_dump(dump);
                }
                Err(e) => log::warn!("pods: {e}; the pod index may lag"),
            }
        }
    }

    /// Rebuilds on every change of the source or of the node, until both are gone. A change
    /// is published at most [`SETTLE`] after it arrived, however busy netlink is.
    pub(super) async fn run(mut self) {
        let (netlink, mut notifications) = match self.netlink.take() {
            Some((n, rx)) => (Some(n), Some(rx)),
            None => (None, None),
        };
        let mut source_open = true;
        let mut publish_at: Option<tokio::time::Instant> = None;
        let settle = || Some(tokio::time::Instant::now() + SETTLE);
        loop {
            tokio::select! {
                changed = self.source.changed(), if source_open => {
                    source_open = changed.is_ok();
                    publish_at = publish_at.or_else(settle);
                }
                msg = async { notifications.as_mut()?.next().await }, if notifications.is_some() => match (msg, &netlink) {
                    (Some((msg, _)), Some(nl)) => {
                        self.on_notification(nl, &msg).await;
                        publish_at = publish_at.or_else(settle);
                    }
                    _ => notifications = None,
                },
                () = tokio::time::sleep_until(publish_at.unwrap_or_else(tokio::time::Instant::now)), if publish_at.is_some() => {
                    self.publish();
                    publish_at = None;
                }
                else => return,
            }
        }
    }
}

/// The node's links and routes for the index; `None` (and a warning) when netlink fails.
pub(super) async fn node_state() -> (Mirror, Option<(Netlink, Notifications)>) {
    let opened = async {
        let (netlink, notifications) = mirror::subscribe()?;
        let node = Mirror::load(&netlink).await?;
        Ok::<_, mirror::MirrorError>((node, netlink, notifications))
    };
    match opened.await {
        Ok((node, netlink, notifications)) => (node, Some((netlink, notifications))),
        Err(e) => {
            log::warn!("pods: {e}; pods are not matched to interfaces by route");
            (Mirror::default(), None)
        }
    }
}
