//! Neighbours (IPv4 ARP and IPv6 NDP) per interface, and proxy entries (`ip neigh add proxy`).

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
};
use tracer_common::nud;

use super::prefix::{Family, IntMap, key};
use crate::packet::Mac;

/// NUD state as `ip neigh` prints it; `None` when there is no entry at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    Noarp,
    Permanent,
    None,
}

impl NeighState {
    fn from_netlink(s: NeighbourState) -> Self {
        match s {
            NeighbourState::Incomplete => Self::Incomplete,
            NeighbourState::Reachable => Self::Reachable,
            NeighbourState::Stale => Self::Stale,
            NeighbourState::Delay => Self::Delay,
            NeighbourState::Probe => Self::Probe,
            NeighbourState::Failed => Self::Failed,
            NeighbourState::Noarp => Self::Noarp,
            NeighbourState::Permanent => Self::Permanent,
            _ => Self::None,
        }
    }

    /// From the kernel's NUD_* bits (`neigh->nud_state`).
    pub fn from_nud(bits: u8) -> Self {
        match bits {
            nud::INCOMPLETE => Self::Incomplete,
            nud::REACHABLE => Self::Reachable,
            nud::STALE => Self::Stale,
            nud::DELAY => Self::Delay,
            nud::PROBE => Self::Probe,
            nud::FAILED => Self::Failed,
            nud::NOARP => Self::Noarp,
            nud::PERMANENT => Self::Permanent,
            _ => Self::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Incomplete => "INCOMPLETE",
            Self::Reachable => "REACHABLE",
            Self::Stale => "STALE",
            Self::Delay => "DELAY",
            Self::Probe => "PROBE",
            Self::Failed => "FAILED",
            Self::Noarp => "NOARP",
            Self::Permanent => "PERMANENT",
            Self::None => "none",
        }
    }

    /// NUD_VALID: the kernel sends to this neighbour without resolving it first.
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Reachable | Self::Stale | Self::Delay | Self::Probe | Self::Noarp | Self::Permanent)
    }

    /// The states people hunt for: resolution failed or never finished.
    pub fn is_broken(self) -> bool {
        matches!(self, Self::Failed | Self::Incomplete)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub state: NeighState,
    pub lladdr: Option<Mac>,
}

/// (ifindex, family, address) — the neighbour table's own key.
type NeighKey = (u32, Family, u128);

/// One RTM_NEWNEIGH/RTM_DELNEIGH, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighUpdate {
    pub dev: u32,
    pub ip: IpAddr,
    pub proxy: bool,
    pub neighbour: Neighbour,
}

impl NeighUpdate {
    /// IPv4/IPv6 entries only (bridge FDB entries share the message type).
    pub fn from_message(msg: &NeighbourMessage) -> Option<Self> {
        if !matches!(msg.header.family, AddressFamily::Inet | AddressFamily::Inet6) {
            return None;
        }
        let mut ip = None;
        let mut lladdr = None;
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => ip = Some(IpAddr::V6(*a)),
                NeighbourAttribute::LinkLayerAddress(l) => lladdr = <[u8; 6]>::try_from(l.as_slice()).ok().map(Mac),
                _ => {}
            }
        }
        Some(Self {
            dev: msg.header.ifindex,
            ip: ip?,
            proxy: msg.header.flags.contains(NeighbourFlags::Proxy),
            neighbour: Neighbour { state: NeighState::from_netlink(msg.header.state), lladdr },
        })
    }
}

#[derive(Debug, Default, Clone)]
pub struct Neighbours {
    entries: IntMap<NeighKey, Neighbour>,
    /// Proxy entries; dev 0 stands for "any interface".
    proxies: IntMap<NeighKey, ()>,
}

fn neigh_key(dev: u32, ip: IpAddr) -> NeighKey {
    (dev, Family::of(ip), key(ip))
}

impl Neighbours {
    pub fn apply(&mut self, update: NeighUpdate, present: bool) {
        let k = neigh_key(update.dev, update.ip);
        match (update.proxy, present) {
            (true, true) => {
                self.proxies.insert(k, ());
            }
            (true, false) => {
                self.proxies.remove(&k);
            }
            (false, true) => {
                self.entries.insert(k, update.neighbour);
            }
            (false, false) => {
                self.entries.remove(&k);
            }
        }
    }

    /// What the neighbour probes saw (`ev`): an entry the kernel is resolving. Netlink never
    /// announces INCOMPLETE, so without this the mirror says "none" until the entry fails or
    /// is answered (both of which netlink does announce, and which then replace this).
    pub fn apply_probe(&mut self, ev: &tracer_common::NeighSection) {
        let ip = match ev.family {
            2 => IpAddr::from(<[u8; 4]>::try_from(&ev.addr[..4]).unwrap_or_default()),
            10 => IpAddr::from(ev.addr),
            _ => return,
        };
        let k = neigh_key(ev.ifindex, ip);
        // Resolution starts only from no entry or a FAILED one: a valid state in the mirror is
        // netlink's answer to this very resolution, read before the probe's event.
        let known = self.entries.get(&k).map(|n| n.state);
        if ev.new_state == tracer_common::nud::INCOMPLETE && !known.is_some_and(NeighState::is_valid) {
            self.entries.insert(k, Neighbour { state: NeighState::Incomplete, lladdr: None });
        }
    }

    pub fn get(&self, dev: u32, ip: IpAddr) -> Option<&Neighbour> {
        self.entries.get(&neigh_key(dev, ip))
    }

    /// A proxy entry for `ip` on `dev` or on any interface.
    pub fn is_proxied(&self, dev: u32, ip: IpAddr) -> bool {
        self.proxies.contains_key(&neigh_key(dev, ip)) || self.proxies.contains_key(&neigh_key(0, ip))
    }

    pub fn remove_dev(&mut self, dev: u32) {
        self.entries.retain(|k, _| k.0 != dev);
        self.proxies.retain(|k, _| k.0 != dev);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.proxies.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_proxies_are_kept_apart() {
        let ip: IpAddr = "10.244.1.5".parse().unwrap();
        let reachable = Neighbour { state: NeighState::Reachable, lladdr: Some(Mac([0x92, 0x7d, 0, 0, 0, 1])) };
        let mut n = Neighbours::default();
        n.apply(NeighUpdate { dev: 5, ip, proxy: false, neighbour: reachable }, true);
        assert_eq!(n.get(5, ip), Some(&reachable));
        assert_eq!(n.get(6, ip), None);
        assert!(!n.is_proxied(5, ip));
        n.apply(NeighUpdate { dev: 0, ip, proxy: true, neighbour: reachable }, true);
        assert!(n.is_proxied(9, ip));
        n.apply(NeighUpdate { dev: 5, ip, proxy: false, neighbour: reachable }, false);
        assert_eq!(n.get(5, ip), None);
        assert!(NeighState::Stale.is_valid() && !NeighState::Failed.is_valid() && NeighState::Incomplete.is_broken());
        // A probe seeing the kernel start resolution: INCOMPLETE (netlink never says so).
        let incomplete = tracer_common::nud::INCOMPLETE;
        let mut probe = tracer_common::NeighSection { ifindex: 9, family: 2, new_state: incomplete, ..Default::default() };
        probe.addr[..4].copy_from_slice(&[10, 244, 1, 99]);
        let ip: IpAddr = "10.244.1.99".parse().unwrap();
        n.apply_probe(&probe);
        assert_eq!(n.get(9, ip).map(|e| e.state), Some(NeighState::Incomplete));
        probe.new_state = tracer_common::nud::FAILED;
        n.apply_probe(&probe);
        assert_eq!(n.get(9, ip).map(|e| e.state), Some(NeighState::Incomplete), "FAILED is netlink's to say");
        // The answer came in through netlink before the probe's event: it stays.
        n.apply(NeighUpdate { dev: 9, ip, proxy: false, neighbour: reachable }, true);
        probe.new_state = tracer_common::nud::INCOMPLETE;
        n.apply_probe(&probe);
        assert_eq!(n.get(9, ip), Some(&reachable));
    }
}
