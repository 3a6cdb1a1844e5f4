//! The per-interface sysctls that decide how a Calico node answers and forwards: forwarding,
//! rp_filter and proxy_arp (IPv6: forwarding and proxy_ndp).
//!
//! They come from RTM_GETNETCONF/RTM_NEWNETCONF ("netconf", `ip monitor netconf`): a dump at
//! start and a multicast message whenever one of them is written. netlink-packet-route does
//! not decode netconf, so the small message is decoded here.

use netlink_packet_core::{DecodeError, NlaBuffer, NlasIterator, parse_i32};
use tracer_common::proto::{AF_INET, AF_INET6};

use super::prefix::{Family, IntMap};

pub(crate) const RTM_NEWNETCONF: u16 = 80;
pub(crate) const RTM_DELNETCONF: u16 = 81;
pub(crate) const RTM_GETNETCONF: u16 = 82;

/// NETCONFA_IFINDEX values that are not interfaces.
pub(crate) const IFINDEX_ALL: i32 = -1;

const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
const NETCONFA_RP_FILTER: u16 = 3;
const NETCONFA_PROXY_NEIGH: u16 = 5;

/// The values a netconf message carried; a notification carries only the one that changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevConf {
    pub forwarding: Option<bool>,
    pub rp_filter: Option<u8>,
    /// proxy_arp (IPv4) or proxy_ndp (IPv6).
    pub proxy_neigh: Option<bool>,
}

impl DevConf {
    fn merge(&mut self, newer: DevConf) {
        self.forwarding = newer.forwarding.or(self.forwarding);
        self.rp_filter = newer.rp_filter.or(self.rp_filter);
        self.proxy_neigh = newer.proxy_neigh.or(self.proxy_neigh);
    }
}

/// One netconf message (`struct netconfmsg` + NETCONFA_* attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetconfMessage {
    pub family: Family,
    pub ifindex: i32,
    pub conf: DevConf,
}

impl NetconfMessage {
    /// `payload` starts at `struct netconfmsg` (one family byte, padded to 4).
    pub fn parse(payload: &[u8]) -> Result<Option<Self>, DecodeError> {
        let Some(&family) = payload.first() else {
            return Err(DecodeError::from("empty netconf message"));
        };
        let family = match family {
            AF_INET => Family::V4,
            AF_INET6 => Family::V6,
            _ => return Ok(None),
        };
        let mut msg = Self { family, ifindex: 0, conf: DevConf::default() };
        let mut has_ifindex = false;
        for nla in NlasIterator::new(payload.get(4..).unwrap_or_default()) {
            let nla: NlaBuffer<&[u8]> = nla?;
            let value = || parse_i32(nla.value());
            match nla.kind() {
                NETCONFA_IFINDEX => {
                    msg.ifindex = value()?;
                    has_ifindex = true;
                }
                NETCONFA_FORWARDING => msg.conf.forwarding = Some(value()? != 0),
                NETCONFA_RP_FILTER => msg.conf.rp_filter = Some(value()?.clamp(0, 2) as u8),
                NETCONFA_PROXY_NEIGH => msg.conf.proxy_neigh = Some(value()? != 0),
                _ => {}
            }
        }
        Ok(has_ifindex.then_some(msg))
    }
}

/// A dump request: `struct netconfmsg` for one family, padded to 4 bytes.
pub(crate) fn dump_request(family: Family) -> [u8; 4] {
    [if family == Family::V4 { AF_INET } else { AF_INET6 }, 0, 0, 0]
}

/// Per family, per ifindex (with [`IFINDEX_ALL`] and [`IFINDEX_DEFAULT`]).
#[derive(Debug, Default, Clone)]
pub struct Sysctls {
    conf: IntMap<(Family, i32), DevConf>,
}

impl Sysctls {
    pub fn apply(&mut self, msg: NetconfMessage) {
        self.conf.entry((msg.family, msg.ifindex)).or_default().merge(msg.conf);
    }

    pub fn remove(&mut self, family: Family, ifindex: i32) {
        self.conf.remove(&(family, ifindex));
    }

    pub fn remove_dev(&mut self, dev: u32) {
        self.conf.retain(|(_, i), _| i64::from(*i) != i64::from(dev));
    }

    fn get(&self, family: Family, ifindex: i32) -> DevConf {
        self.conf.get(&(family, ifindex)).copied().unwrap_or_default()
    }

    fn dev_index(dev: u32) -> i32 {
        i32::try_from(dev).unwrap_or(i32::MAX)
    }

    /// IN_DEV_PROXY_ARP: `all` or the interface's own value. `None` when neither is known.
    pub fn proxy_arp(&self, dev: u32) -> Option<bool> {
        let (all, own) = (self.get(Family::V4, IFINDEX_ALL), self.get(Family::V4, Self::dev_index(dev)));
        match (all.proxy_neigh, own.proxy_neigh) {
            (None, None) => None,
            (a, o) => Some(a.unwrap_or(false) || o.unwrap_or(false)),
        }
    }

    /// IN_DEV_FORWARD for IPv4 (per interface; writing `all` copies to every interface);
    /// for IPv6 the interface's own value.
    pub fn forwarding(&self, family: Family, dev: u32) -> Option<bool> {
        self.get(family, Self::dev_index(dev)).forwarding
    }

    /// IN_DEV_RPFILTER: the larger of `all` and the interface's own value.
    pub fn rp_filter(&self, dev: u32) -> Option<u8> {
        let (all, own) = (self.get(Family::V4, IFINDEX_ALL), self.get(Family::V4, Self::dev_index(dev)));
        all.rp_filter.max(own.rp_filter)
    }

    pub fn clear(&mut self) {
        self.conf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, value: i32) -> Vec<u8> {
        let mut v = 8u16.to_ne_bytes().to_vec();
        v.extend(kind.to_ne_bytes());
        v.extend(value.to_ne_bytes());
        v
    }

    #[test]
    fn parses_a_proxy_arp_notification() {
        let mut payload = vec![AF_INET, 0, 0, 0];
        payload.extend(nla(NETCONFA_IFINDEX, 7));
        payload.extend(nla(NETCONFA_PROXY_NEIGH, 0));
        let msg = NetconfMessage::parse(&payload).unwrap().unwrap();
        assert_eq!(
            msg,
            NetconfMessage {
                family: Family::V4,
                ifindex: 7,
                conf: DevConf { proxy_neigh: Some(false), ..DevConf::default() }
            }
        );
    }

    #[test]
    fn effective_values_follow_the_kernel_rules() {
        let mut s = Sysctls::default();
        let set = |ifindex, conf| NetconfMessage { family: Family::V4, ifindex, conf };
        s.apply(set(IFINDEX_ALL, DevConf { forwarding: Some(true), rp_filter: Some(0), proxy_neigh: Some(false) }));
        s.apply(set(7, DevConf { forwarding: Some(true), rp_filter: Some(1), proxy_neigh: Some(true) }));
        assert_eq!((s.proxy_arp(7), s.rp_filter(7), s.forwarding(Family::V4, 7)), (Some(true), Some(1), Some(true)));
        // A notification carries only what changed.
        s.apply(set(7, DevConf { proxy_neigh: Some(false), ..DevConf::default() }));
        assert_eq!((s.proxy_arp(7), s.rp_filter(7)), (Some(false), Some(1)));
        s.apply(set(IFINDEX_ALL, DevConf { proxy_neigh: Some(true), rp_filter: Some(2), ..DevConf::default() }));
        assert_eq!((s.proxy_arp(7), s.rp_filter(7)), (Some(true), Some(2)));
        assert_eq!(s.proxy_arp(8), Some(true));
        assert_eq!(s.forwarding(Family::V4, 8), None);
    }
}
