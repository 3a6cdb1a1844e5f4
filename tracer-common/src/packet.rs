//! The parsed frame, as the eBPF parser fills it and the collector reads it.

/// Bits of `Packet::valid`: which parts of [`Packet`] hold parsed data.
pub mod valid {
    /// Ethernet header (MACs, ethertype).
    pub const L2: u16 = 1 << 0;
    /// Ethernet/IPv4 ARP addresses (`arp_sha`, `arp_spa`, `arp_tha`, `arp_tpa`).
    pub const ARP: u16 = 1 << 1;
    /// IPv4 header.
    pub const IPV4: u16 = 1 << 2;
    /// IPv6 header.
    pub const IPV6: u16 = 1 << 3;
    /// Ports (TCP or UDP).
    pub const PORTS: u16 = 1 << 4;
    /// TCP header beyond the ports (seq, ack, flags, window).
    pub const TCP: u16 = 1 << 5;
    /// UDP length.
    pub const UDP: u16 = 1 << 6;
    /// ICMP or ICMPv6 type and code.
    pub const ICMP: u16 = 1 << 7;
    /// ICMP echo id and sequence.
    pub const ICMP_ECHO: u16 = 1 << 8;
    /// Neighbour discovery target address (`nd_target`).
    pub const ND_TARGET: u16 = 1 << 9;
    /// ARP operation (`arp_op`), also for ARP of other hardware/protocol types.
    pub const ARP_OP: u16 = 1 << 10;
    /// The frame ended (or was malformed) before a header that its predecessor announced.
    pub const TRUNCATED: u16 = 1 << 15;
}

/// Bits of `Packet::ip_flags`.
pub mod ipf {
    /// IPv4 don't-fragment.
    pub const DF: u8 = 1 << 0;
    /// IPv4 more-fragments, or an IPv6 fragment header with M set.
    pub const MF: u8 = 1 << 1;
    /// A fragment: non-zero offset, MF set, or an IPv6 fragment header.
    pub const FRAGMENT: u8 = 1 << 2;
}

/// The parsed frame: L2, then ARP or IP, then L4. `valid` says which parts are meaningful.
/// Multi-byte fields are host byte order; addresses and MACs are in wire order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Bits from [`valid`].
    pub valid: u16,
    /// Ethertype after any VLAN tags.
    pub ethertype: u16,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// VLAN TCIs, outermost first (a tag the driver moved into skb metadata comes first).
    pub vlan: [u16; 2],
    /// How many entries of `vlan` are set.
    pub nvlan: u8,
    /// IP protocol (IPv6: the upper-layer header after extension headers).
    pub ip_proto: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Bits from [`ipf`].
    pub ip_flags: u8,
    /// IPv4 identification or IPv6 flow label.
    pub ip_id: u32,
    /// IPv4 addresses use the first 4 bytes.
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_win: u16,
    /// TCP flag byte (FIN 0x01 … CWR 0x80).
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub _pad0: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub udp_len: u16,
    /// Neighbour solicitation/advertisement target.
    pub nd_target: [u8; 16],
    pub arp_op: u16,
    pub arp_sha: [u8; 6],
    pub arp_spa: [u8; 4],
    pub arp_tha: [u8; 6],
    pub arp_tpa: [u8; 4],
    pub _pad1: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<Packet>() == 128);
