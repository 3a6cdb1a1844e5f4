//! Addresses of every interface (`ip addr`).

use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressMessage};

use super::prefix::{IntMap, Prefix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub dev: u32,
    /// The address itself (IFA_LOCAL where there is one, as `ip addr` shows it).
    pub ip: IpAddr,
    pub prefix_len: u8,
}

impl Address {
    pub fn from_message(msg: &AddressMessage) -> Option<Self> {
        let mut address = None;
        let mut local = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Local(a) => local = Some(*a),
                _ => {}
            }
        }
        Some(Self { dev: msg.header.index, ip: local.or(address)?, prefix_len: msg.header.prefix_len })
    }

    pub fn subnet(&self) -> Prefix {
        Prefix::new(self.ip, self.prefix_len)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Addresses {
    by_dev: IntMap<u32, Vec<Address>>,
}

impl Addresses {
    pub fn add(&mut self, a: Address) {
        let list = self.by_dev.entry(a.dev).or_default();
        if !list.contains(&a) {
            list.push(a);
        }
    }

    pub fn remove(&mut self, a: &Address) {
        if let Some(list) = self.by_dev.get_mut(&a.dev) {
            list.retain(|x| x != a);
        }
    }

    pub fn remove_dev(&mut self, dev: u32) {
        self.by_dev.remove(&dev);
    }

    pub fn clear(&mut self) {
        self.by_dev.clear();
    }
}
