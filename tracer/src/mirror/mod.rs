//! A live mirror of the node's network state: links, addresses, routes (every table), policy
//! rules, neighbours (with proxy entries) and the forwarding/rp_filter/proxy_arp sysctls.
//!
//! Filled by one netlink dump per object at start and kept current by netlink multicast on the
//! same socket (one per object family, like `ip monitor all`). When the kernel drops
//! notifications because the socket buffer was full (ENOBUFS, an "overrun"), everything is
//! dumped again. Nothing here is called per traced packet except the read-only lookups
//! ([`Mirror::route_get`] and the tables' getters).

pub(crate) mod addrs;
pub(crate) mod fib;
pub(crate) mod links;
pub(crate) mod neigh;
pub(crate) mod prefix;
pub(crate) mod routes;
pub(crate) mod rules;
pub(crate) mod sysctl;

#[cfg(test)]
mod fuzz;

use futures::{StreamExt, channel::mpsc::UnboundedReceiver};
use netlink_packet_core::{
    DecodeError, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_route::{
    RouteNetlinkMessage, address::AddressMessage, link::LinkMessage, neighbour::NeighbourFlags,
    neighbour::NeighbourMessage, route::RouteMessage, rule::RuleMessage,
};
use rtnetlink::{
    MulticastGroup,
    proto::ConnectionHandle,
    sys::{AsyncSocket as _, SocketAddr},
};

use self::{
    addrs::{Address, Addresses},
    links::{Link, LinkChange, Links},
    neigh::{NeighUpdate, Neighbours},
    prefix::Family,
    routes::{Route, Routes},
    rules::{Rule, Rules},
    sysctl::{NetconfMessage, Sysctls},
};

/// The multicast groups the mirror listens to.
const GROUPS: [MulticastGroup; 10] = [
    MulticastGroup::Link,
    MulticastGroup::Neigh,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Ipv4Rule,
    MulticastGroup::Ipv6Rule,
    MulticastGroup::Ipv4Netconf,
    MulticastGroup::Ipv6Netconf,
];

/// Socket receive buffer: a node creating many pods at once sends bursts of notifications;
/// the larger the buffer, the rarer a full re-dump.
const RCVBUF_BYTES: usize = 4 << 20;

/// An rtnetlink message as the mirror's socket carries it: what netlink-packet-route decodes,
/// plus netconf, which it does not.
#[derive(Debug, Clone)]
pub enum RtMessage {
    Route(RouteNetlinkMessage),
    /// RTM_NEWNETCONF (`deleted` false) or RTM_DELNETCONF; `None` for a family not tracked.
    Netconf {
        deleted: bool,
        msg: Option<NetconfMessage>,
    },
    /// RTM_GETNETCONF dump request for one family.
    GetNetconf(Family),
}

impl NetlinkDeserializable for RtMessage {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        match header.message_type {
            sysctl::RTM_NEWNETCONF | sysctl::RTM_DELNETCONF => Ok(Self::Netconf {
                deleted: header.message_type == sysctl::RTM_DELNETCONF,
                msg: NetconfMessage::parse(payload)?,
            }),
            _ => RouteNetlinkMessage::deserialize(header, payload).map(Self::Route),
        }
    }
}

impl NetlinkSerializable for RtMessage {
    fn message_type(&self) -> u16 {
        match self {
            Self::Route(m) => m.message_type(),
            Self::Netconf { deleted: true, .. } => sysctl::RTM_DELNETCONF,
            Self::Netconf { deleted: false, .. } => sysctl::RTM_NEWNETCONF,
            Self::GetNetconf(_) => sysctl::RTM_GETNETCONF,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Self::Route(m) => NetlinkSerializable::buffer_len(m),
            Self::Netconf { .. } | Self::GetNetconf(_) => 4,
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        match self {
            Self::Route(m) => NetlinkSerializable::serialize(m, buffer),
            Self::GetNetconf(family) => buffer[..4].copy_from_slice(&sysctl::dump_request(*family)),
            // Never sent: the kernel is the only one that announces netconf changes.
            Self::Netconf { .. } => buffer[..4].fill(0),
        }
    }
}

impl From<RtMessage> for NetlinkPayload<RtMessage> {
    fn from(m: RtMessage) -> Self {
        NetlinkPayload::InnerMessage(m)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("opening the rtnetlink socket failed: {0}")]
    Socket(#[from] std::io::Error),
    #[error("the rtnetlink connection closed")]
    Closed,
    #[error("dumping {what} over rtnetlink failed: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("dumping {0} was interrupted by changes three times in a row")]
    Interrupted(&'static str),
}

/// Multicast notifications, in the order the kernel sent them.
pub(crate) type Notifications = UnboundedReceiver<(NetlinkMessage<RtMessage>, SocketAddr)>;

/// The request side of the mirror's netlink socket.
#[derive(Clone)]
pub struct Netlink {
    handle: ConnectionHandle<RtMessage>,
}

/// Opens the socket and joins the groups (before any dump, so that nothing falls between the
/// dump and the first notification).
pub(crate) fn subscribe() -> Result<(Netlink, Notifications), MirrorError> {
    let (mut conn, handle, notifications) =
        rtnetlink::proto::new_connection::<RtMessage>(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
    let socket = conn.socket_mut().socket_mut();
    socket.bind(&SocketAddr::new(0, 0))?;
    if let Err(e) = socket.set_rx_buf_sz(RCVBUF_BYTES) {
        log::warn!("cannot enlarge the netlink receive buffer ({e}); re-dumps after overruns may be more frequent");
    }
    for group in GROUPS {
        socket.add_membership(group as u32)?;
    }
    tokio::spawn(conn);
    Ok((Netlink { handle }, notifications))
}

impl Netlink {
    /// One dump, retried while the kernel flags it NLM_F_DUMP_INTR (the table changed under it).
    async fn dump(&self, what: &'static str, request: RtMessage) -> Result<Vec<RtMessage>, MirrorError> {
        for _ in 0..3 {
            let mut msg = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(request.clone()));
            msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
            msg.finalize();
            let mut replies = self.handle.request(msg, SocketAddr::new(0, 0)).map_err(|_| MirrorError::Closed)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            while let Some(reply) = replies.next().await {
                interrupted |= reply.header.flags & NLM_F_DUMP_INTR != 0;
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(MirrorError::Dump { what, source: e.to_io() });
                    }
                    _ => {}
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(MirrorError::Interrupted(what))
    }

    async fn dump_routes(&self) -> Result<Vec<RtMessage>, MirrorError> {
        self.dump("routes", RtMessage::Route(RouteNetlinkMessage::GetRoute(RouteMessage::default()))).await
    }

    /// Every object the mirror holds, as a list of "new" messages.
    async fn dump_all(&self) -> Result<Vec<RtMessage>, MirrorError> {
        let mut proxies = NeighbourMessage::default();
        proxies.header.flags = NeighbourFlags::Proxy;
        let mut all = Vec::new();
        all.extend(self.dump("links", RtMessage::Route(RouteNetlinkMessage::GetLink(LinkMessage::default()))).await?);
        all.extend(
            self.dump("addresses", RtMessage::Route(RouteNetlinkMessage::GetAddress(AddressMessage::default())))
                .await?,
        );
        all.extend(self.dump_routes().await?);
        all.extend(self.dump("rules", RtMessage::Route(RouteNetlinkMessage::GetRule(RuleMessage::default()))).await?);
        all.extend(
            self.dump("neighbours", RtMessage::Route(RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default())))
                .await?,
        );
        all.extend(self.dump("proxy neighbours", RtMessage::Route(RouteNetlinkMessage::GetNeighbour(proxies))).await?);
        all.extend(self.dump("IPv4 netconf", RtMessage::GetNetconf(Family::V4)).await?);
        all.extend(self.dump("IPv6 netconf", RtMessage::GetNetconf(Family::V6)).await?);
        Ok(all)
    }
}

/// The node's network state.
#[derive(Debug, Default, Clone)]
pub struct Mirror {
    pub links: Links,
    pub addrs: Addresses,
    pub routes: Routes,
    pub rules: Rules,
    pub neighbours: Neighbours,
    pub sysctls: Sysctls,
    /// Full re-dumps done because notifications were lost.
    pub resyncs: u64,
    /// Bumped by every change made through [`Mirror::handle`], [`Mirror::take_dump`] and
    /// [`Mirror::apply_neigh_probe`] (and [`Mirror::touch`]): what caches of answers derived
    /// from the mirror compare against.
    version: u64,
}

/// A dump the mirror needs, run in the background so that it never stalls the ring drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Redump {
    /// The routes (an interface went up or down).
    Routes,
    /// Everything (notifications were lost).
    All,
}

/// A finished re-dump.
pub enum Dump {
    Routes(Vec<RtMessage>),
    All(Box<Mirror>),
}

impl Redump {
    /// Runs the dump (on its own task: it only needs the request side of the socket).
    pub async fn run(self, netlink: Netlink) -> Result<Dump, MirrorError> {
        match self {
            Redump::Routes => netlink.dump_routes().await.map(Dump::Routes),
            Redump::All => Mirror::load(&netlink).await.map(|m| Dump::All(Box::new(m))),
        }
    }
}

/// What one notification asks of the caller besides updating the mirror.
enum Followup {
    None,
    Link(LinkChange),
    /// An interface went up or down: the kernel changed routes through it without saying so.
    LinkFlipped(LinkChange),
    Resync,
}

impl Mirror {
    /// A mirror filled from a full dump.
    pub async fn load(netlink: &Netlink) -> Result<Self, MirrorError> {
        let mut mirror = Mirror::default();
        for msg in netlink.dump_all().await? {
            mirror.apply(&msg, false);
        }
        Ok(mirror)
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Marks the mirror changed (for changes made to its parts directly).
    pub fn touch(&mut self) {
        self.version += 1;
    }

    /// A neighbour state change the probes saw, ahead of its netlink notification.
    pub fn apply_neigh_probe(&mut self, ev: &tracer_common::NeighSection) {
        self.touch();
        self.neighbours.apply_probe(ev);
    }

    /// Every interface, as changes for the tracer to act on.
    pub fn present_links(&self) -> Vec<LinkChange> {
        self.links.iter().map(|l| LinkChange::Present { index: l.index, name: l.name.clone() }).collect()
    }

    /// Applies one notification at once; returns what the tracer must do about interfaces,
    /// and the dump to run in the background when the notification alone does not tell
    /// everything (lost notifications; an interface that went up or down, whose routes the
    /// kernel changed without a word).
    pub fn handle(&mut self, msg: &NetlinkMessage<RtMessage>) -> (Vec<LinkChange>, Option<Redump>) {
        self.touch();
        let followup = match &msg.payload {
            NetlinkPayload::InnerMessage(m) => self.apply(m, msg.header.flags & NLM_F_REPLACE != 0),
            NetlinkPayload::Overrun(_) => Followup::Resync,
            _ => Followup::None,
        };
        match followup {
            Followup::None => (Vec::new(), None),
            Followup::Link(change) => (vec![change], None),
            Followup::LinkFlipped(change) => (vec![change], Some(Redump::Routes)),
            Followup::Resync => {
                log::warn!("netlink notifications were lost (socket buffer full); re-reading the node's network state");
                (Vec::new(), Some(Redump::All))
            }
        }
    }

    /// Takes a finished re-dump in; returns the interface changes it implies. Notifications
    /// that arrived while it ran are applied again by the caller (a dump may predate them).
    pub fn take_dump(&mut self, dump: Dump) -> Vec<LinkChange> {
        self.touch();
        match dump {
            Dump::Routes(routes) => {
                self.routes.clear();
                for msg in &routes {
                    self.apply(msg, false);
                }
                Vec::new()
            }
            Dump::All(fresh) => {
                let mut changes: Vec<LinkChange> = self
                    .links
                    .iter()
                    .filter(|old| fresh.links.get(old.index).is_none())
                    .map(|old| LinkChange::Removed { index: old.index, name: old.name.clone() })
                    .collect();
                changes.extend(fresh.present_links());
                *self = Mirror { resyncs: self.resyncs + 1, version: self.version, ..*fresh };
                log::warn!("re-read the node's network state; annotations are current again");
                changes
            }
        }
    }

    /// Updates the tables from one message (a dump reply or a notification).
    fn apply(&mut self, msg: &RtMessage, replace: bool) -> Followup {
        use RouteNetlinkMessage as M;
        let route = match msg {
            RtMessage::Route(m) => m,
            RtMessage::Netconf { deleted, msg: Some(conf) } => {
                if *deleted {
                    self.sysctls.remove(conf.family, conf.ifindex);
                } else {
                    self.sysctls.apply(*conf);
                }
                return Followup::None;
            }
            _ => return Followup::None,
        };
        match route {
            M::NewLink(m) => return self.link_changed(m),
            M::DelLink(m) => return self.link_removed(m.header.index),
            M::NewAddress(m) | M::DelAddress(m) => {
                if let Some(a) = Address::from_message(m) {
                    if matches!(route, M::NewAddress(_)) { self.addrs.add(a) } else { self.addrs.remove(&a) }
                }
            }
            M::NewRoute(m) | M::DelRoute(m) => {
                if let Some(r) = Route::from_message(m) {
                    if matches!(route, M::NewRoute(_)) {
                        self.routes.insert(r, replace)
                    } else {
                        self.routes.remove(&r)
                    }
                }
            }
            M::NewRule(m) | M::DelRule(m) => {
                if let Some(r) = Rule::from_message(m) {
                    if matches!(route, M::NewRule(_)) { self.rules.insert(r) } else { self.rules.remove(&r) }
                }
            }
            M::NewNeighbour(m) | M::DelNeighbour(m) => {
                if let Some(n) = NeighUpdate::from_message(m) {
                    self.neighbours.apply(n, matches!(route, M::NewNeighbour(_)));
                }
            }
            _ => {}
        }
        Followup::None
    }

    fn link_changed(&mut self, msg: &LinkMessage) -> Followup {
        let Some(link) = Link::from_message(msg) else { return Followup::None };
        let change = LinkChange::Present { index: link.index, name: link.name.clone() };
        if self.links.upsert(link) { Followup::LinkFlipped(change) } else { Followup::Link(change) }
    }

    fn link_removed(&mut self, index: u32) -> Followup {
        let Some(link) = self.links.remove(index) else { return Followup::None };
        self.routes.remove_dev(index, None);
        self.neighbours.remove_dev(index);
        self.addrs.remove_dev(index);
        self.sysctls.remove_dev(index);
        Followup::Link(LinkChange::Removed { index, name: link.name })
    }
}
