//! IP prefixes as the FIB compares them: an address turned into an integer key and masked.

use std::{fmt, net::IpAddr};

/// IPv4 or IPv6; tables, rules and neighbours are kept per family as in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    pub fn bits(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

/// The address as an integer (IPv4 in the low 32 bits), so that masking is one AND.
pub(crate) fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Keeps the first `len` bits of a `family` key.
pub(crate) fn masked(key: u128, len: u8, family: Family) -> u128 {
    let bits = family.bits();
    if len == 0 {
        0
    } else if len >= bits {
        key
    } else {
        key & (((1u128 << len) - 1) << (bits - len))
    }
}

/// `addr/len` with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Self {
        let family = Family::of(addr);
        let len = len.min(family.bits());
        let bits = masked(key(addr), len, family);
        let addr = match family {
            Family::V4 => IpAddr::V4((bits as u32).into()),
            Family::V6 => IpAddr::V6(bits.into()),
        };
        Self { addr, len }
    }

    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && masked(key(ip), self.len, self.family()) == key(self.addr)
    }
}

impl fmt::Display for Prefix {
    /// `ip route` style: `default`, or `addr` for a host route, else `addr/len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            f.write_str("default")
        } else if self.len == self.family().bits() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// Maps keyed by integers (addresses, ifindexes) for the per-event lookups, hashed with
/// foldhash's fast hasher: SipHash would be most of a lookup's cost, and these keys come from
/// the node's own tables, not from an attacker choosing collisions.
pub(crate) type IntMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_and_contains() {
        let p = Prefix::new(ip("10.244.1.77"), 24);
        assert_eq!(p.addr, ip("10.244.1.0"));
        assert!(p.contains(ip("10.244.1.5")));
        assert!(!p.contains(ip("10.244.2.5")));
        assert!(!p.contains(ip("::1")));
        assert!(Prefix::new(ip("0.0.0.0"), 0).contains(ip("8.8.8.8")));
        let p6 = Prefix::new(ip("fd00:244::5"), 64);
        assert_eq!(p6.addr, ip("fd00:244::"));
        assert!(p6.contains(ip("fd00:244::ffff")));
        assert!(!p6.contains(ip("fd00:245::1")));
    }

    #[test]
    fn prints_like_ip_route() {
        assert_eq!(Prefix::new(ip("0.0.0.0"), 0).to_string(), "default");
        assert_eq!(Prefix::new(ip("10.244.1.5"), 32).to_string(), "10.244.1.5");
        assert_eq!(Prefix::new(ip("10.99.0.1"), 30).to_string(), "10.99.0.0/30");
        assert_eq!(Prefix::new(ip("fd00::5"), 128).to_string(), "fd00::5");
    }
}
