//! The published map: the active source's pods joined with the node's links and host routes,
//! rebuilt when either changes and swapped in whole, so that a lookup is one read lock and a
//! hash probe.
//!
//! The node's links and routes come from the process's one owner of node state, as
//! [`NodeLinks`] published on a `watch` channel: the trace session (its mirror, which it keeps
//! live for the events), or, in a process that does not trace (`vethtrace pods`), [`follow_node`].

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt as _;
use tokio::sync::watch;

use super::{Pod, hash};

use crate::mirror::{
    self, Mirror,
    routes::{RT_TABLE_MAIN, RouteKind},
};

/// The node's interfaces, with the addresses routed to each: what the index joins pods with.
pub type NodeLinks = Arc<Vec<LinkRow>>;

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
    pub(super) fn build(source: &[Pod], links: &[LinkRow]) -> Self {
        let links = links.to_vec();
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

/// The node's interfaces from `node`, each with the host routes (`/32`, `/128`, main table,
/// no gateway) that point at it.
pub fn node_links(node: &Mirror) -> NodeLinks {
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
    Arc::new(rows)
}

/// The side that rebuilds and publishes.
pub(super) struct Indexer {
    pub(super) shared: Arc<RwLock<Arc<Snapshot>>>,
    pub(super) generation: watch::Sender<u64>,
    pub(super) source: watch::Receiver<Vec<Pod>>,
    pub(super) node: watch::Receiver<NodeLinks>,
}

impl Indexer {
    fn publish(&self) {
        let snap = Snapshot::build(&self.source.borrow(), &self.node.borrow());
        *self.shared.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(snap);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Rebuilds on every change of the source or of the node, until both are gone. A change
    /// is published at most [`SETTLE`] after it arrived, however often they change.
    pub(super) async fn run(mut self) {
        let (mut source_open, mut node_open) = (true, true);
        let mut publish_at: Option<tokio::time::Instant> = None;
        let settle = || Some(tokio::time::Instant::now() + SETTLE);
        loop {
            tokio::select! {
                changed = self.source.changed(), if source_open => {
                    source_open = changed.is_ok();
                    publish_at = publish_at.or_else(settle);
                }
                changed = self.node.changed(), if node_open => {
                    node_open = changed.is_ok();
                    publish_at = publish_at.or_else(settle);
                }
                () = tokio::time::sleep_until(publish_at.unwrap_or_else(tokio::time::Instant::now)), if publish_at.is_some() => {
                    self.publish();
                    publish_at = None;
                }
                else => return,
            }
        }
    }
}

/// The owner of node state in a process that does not trace: follows the node's links and
/// routes through netlink and publishes them (settled like the index). On failure, a warning
/// and an empty node (pods are then not matched to interfaces by route).
pub async fn follow_node() -> watch::Receiver<NodeLinks> {
    let opened = async {
        let (netlink, notifications) = mirror::subscribe()?;
        let node = Mirror::load(&netlink).await?;
        Ok::<_, mirror::MirrorError>((node, netlink, notifications))
    };
    match opened.await {
        Ok((node, netlink, notifications)) => {
            let (tx, rx) = watch::channel(node_links(&node));
            tokio::spawn(follow(node, netlink, notifications, tx));
            rx
        }
        Err(e) => {
            log::warn!("pods: {e}; pods are not matched to interfaces by route");
            watch::channel(Arc::new(Vec::new())).1
        }
    }
}

async fn follow(mut node: Mirror, netlink: mirror::Netlink, mut notifications: mirror::Notifications, tx: watch::Sender<NodeLinks>) {
    let mut publish_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            msg = notifications.next() => {
                let Some((msg, _)) = msg else { return };
                // A re-dump runs here, in line: notifications queue meanwhile.
                if let (_, Some(what)) = node.handle(&msg) {
                    match what.run(netlink.clone()).await {
                        Ok(dump) => drop(node.take_dump(dump)),
                        Err(e) => log::warn!("pods: {e}; the pod index may lag"),
                    }
                }
                publish_at = publish_at.or_else(|| Some(tokio::time::Instant::now() + SETTLE));
            }
            () = tokio::time::sleep_until(publish_at.unwrap_or_else(tokio::time::Instant::now)), if publish_at.is_some() => {
                publish_at = None;
                if tx.send(node_links(&node)).is_err() {
                    return;
                }
            }
        }
    }
}
