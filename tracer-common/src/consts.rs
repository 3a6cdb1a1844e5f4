//! Numbers defined by the kernel and the protocols (ethertypes, address families, IP
//! protocols, neighbour states, ARP operations, interface flags), shared by both sides.

/// What a TC program returns to let the packet go on: `TC_ACT_UNSPEC` on clsact, the same value
/// as `TCX_NEXT` on TCX (the next program's turn, then the packet's normal way).
pub const TC_ACT_UNSPEC: i32 = -1;

/// Shared protocol numbers (both sides parse and compare them).
pub mod proto {
    pub const ETH_P_IP: u16 = 0x0800;
    pub const ETH_P_ARP: u16 = 0x0806;
    pub const ETH_P_IPV6: u16 = 0x86dd;
    pub const ETH_P_8021Q: u16 = 0x8100;
    pub const ETH_P_8021AD: u16 = 0x88a8;
    pub const ETH_HLEN: usize = 14;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
    pub const IPPROTO_ICMP: u8 = 1;
    pub const IPPROTO_TCP: u8 = 6;
    pub const IPPROTO_UDP: u8 = 17;
    pub const IPPROTO_ICMPV6: u8 = 58;
}

/// Neighbour states (`NUD_*`).
pub mod nud {
    pub const NONE: u8 = 0x00;
    pub const INCOMPLETE: u8 = 0x01;
    pub const REACHABLE: u8 = 0x02;
    pub const STALE: u8 = 0x04;
    pub const DELAY: u8 = 0x08;
    pub const PROBE: u8 = 0x10;
    pub const FAILED: u8 = 0x20;
    pub const NOARP: u8 = 0x40;
    pub const PERMANENT: u8 = 0x80;
    /// The states in which `neigh->ha` holds the neighbour's address.
    pub const VALID: u8 = REACHABLE | STALE | DELAY | PROBE | NOARP | PERMANENT;
}

/// ARP operations (`ARPOP_*`).
pub mod arp_op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// Interface flags (`IFF_*` in `net_device.flags`).
pub mod iff {
    /// Administratively up.
    pub const UP: u32 = 1;
}
