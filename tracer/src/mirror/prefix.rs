//! IP prefixes as the FIB compares them: an address turned into an integer key and masked.

use std::{
    fmt,
    hash::{BuildHasherDefault, Hasher},
    net::IpAddr,
};

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
pub fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Keeps the first `len` bits of a `family` key.
pub fn masked(key: u128, len: u8, family: Family) -> u128 {
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

impl serde::Serialize for Prefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A hasher for the integer keys of the per-event lookups (addresses, ifindexes): one
/// multiply-rotate per word. SipHash would be most of the lookup's cost, and these keys come
/// from the node's own tables, not from an attacker choosing collisions.
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub type IntMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;

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
