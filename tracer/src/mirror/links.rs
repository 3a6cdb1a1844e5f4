//! Interfaces: name, index, MAC, MTU, up/down, and for a veth its peer's index and netns id.

use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::prefix::IntMap;
use crate::packet::Mac;

/// What the tracer needs to know when an interface appears, changes or goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// It exists with this name (new, renamed, or changed state).
    Present { index: u32, name: String },
    /// It is gone (`name` is what it was called).
    Removed { index: u32, name: String },
}

/// One interface as RTM_NEWLINK describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `None` for interfaces without a 6-byte hardware address (lo has one of zeros).
    pub mac: Option<Mac>,
    pub mtu: u32,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFLA_LINK: for a veth, the peer's ifindex (in the peer's netns).
    pub peer_index: Option<u32>,
    /// IFLA_LINK_NETNSID: the peer's netns id as this netns knows it (veth in another netns).
    pub peer_netns_id: Option<i32>,
}

impl Link {
    pub fn from_message(msg: &LinkMessage) -> Option<Self> {
        let mut link =
            Link { index: msg.header.index, up: msg.header.flags.contains(LinkFlags::Up), ..Link::default() };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name.clone_from(n),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok().map(Mac),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                // IFLA_LINK equal to the own index means "no lower device" (lo, some tunnels).
                LinkAttribute::Link(i) if *i != msg.header.index => link.peer_index = Some(*i),
                LinkAttribute::LinkNetNsId(id) => link.peer_netns_id = Some(*id),
                _ => {}
            }
        }
        (!link.name.is_empty()).then_some(link)
    }
}

/// How many names of interfaces that went away are remembered (see [`Links::name`]).
const GONE_NAMES: usize = 1024;

/// Every interface of the netns by index, and the names of the last interfaces that went away.
#[derive(Debug, Default, Clone)]
pub struct Links {
    by_index: IntMap<u32, Link>,
    /// (index, name) of removed interfaces, oldest first, at most `GONE_NAMES`.
    gone: std::collections::VecDeque<(u32, String)>,
}

impl Links {
    pub fn get(&self, index: u32) -> Option<&Link> {
        self.by_index.get(&index)
    }

    /// The interface's name — or, when it has gone, the name it had: the ring buffer may still
    /// hold its events when the kernel's notification that it went arrives (a pod deleted right
    /// after its last packet), and they belong to that name.
    pub fn name(&self, index: u32) -> Option<&str> {
        self.get(index).map(|l| l.name.as_str()).or_else(|| {
            self.gone.iter().rev().find(|(i, _)| *i == index).map(|(_, name)| name.as_str())
        })
    }

    fn bury(&mut self, link: &Link) {
        if self.gone.len() == GONE_NAMES {
            self.gone.pop_front();
        }
        self.gone.push_back((link.index, link.name.clone()));
    }

    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.by_index.values()
    }

    /// Stores `link`; returns whether its up/down state flipped (which the kernel does not
    /// announce for the IPv4 routes it flushes).
    pub fn upsert(&mut self, link: Link) -> bool {
        let flipped = self.by_index.get(&link.index).is_some_and(|old| old.up != link.up);
        self.by_index.insert(link.index, link);
        flipped
    }

    pub fn remove(&mut self, index: u32) -> Option<Link> {
        let link = self.by_index.remove(&index)?;
        self.bury(&link);
        Some(link)
    }

    /// Forgets every interface (before a re-dump), keeping their names as gone ones.
    pub fn clear(&mut self) {
        for link in std::mem::take(&mut self.by_index).into_values() {
            self.bury(&link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_interface_keeps_its_name_for_late_events() {
        let mut links = Links::default();
        links.upsert(Link { index: 9, name: "cali0123456789a".into(), ..Link::default() });
        links.remove(9);
        assert!(links.get(9).is_none());
        assert_eq!(links.name(9), Some("cali0123456789a"));
        links.upsert(Link { index: 9, name: "calinew".into(), ..Link::default() });
        assert_eq!(links.name(9), Some("calinew"), "a live interface wins");
        for i in 0..u32::try_from(GONE_NAMES).unwrap() + 1 {
            links.upsert(Link { index: 100 + i, name: format!("c{i}"), ..Link::default() });
            links.remove(100 + i);
        }
        assert_eq!(links.name(100), None, "the oldest gone name is forgotten");
        assert_eq!(links.name(101), Some("c1"));
    }

    #[test]
    fn veth_peer_and_mac_are_read() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up;
        msg.attributes = vec![
            LinkAttribute::IfName("calia1b2c3d4e5f".into()),
            LinkAttribute::Address(vec![0xee; 6]),
            LinkAttribute::Mtu(1450),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(3),
        ];
        let link = Link::from_message(&msg).unwrap();
        assert_eq!(link.name, "calia1b2c3d4e5f");
        assert_eq!(link.mac, Some(Mac([0xee; 6])));
        assert_eq!((link.mtu, link.up, link.peer_index, link.peer_netns_id), (1450, true, Some(2), Some(3)));
        let mut links = Links::default();
        assert!(!links.upsert(link.clone()));
        assert!(links.upsert(Link { up: false, ..link }));
        assert_eq!(links.name(7), Some("calia1b2c3d4e5f"));
    }
}
