//! A typed view of a parsed frame ([`tracer_common::Packet`]), shared by every printer.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use tracer_common::{
    Packet, arp_op, ipf,
    proto::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP},
    valid,
};

/// A MAC address printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `aa:bb:cc:dd:ee:ff`, built without `core::fmt`: a line carries up to four MACs and six
    /// `{:02x}` formats cost more than a route lookup.
    pub fn text(&self) -> MacText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b':'; 17];
        for (i, b) in self.0.iter().enumerate() {
            text[i * 3] = HEX[usize::from(b >> 4)];
            text[i * 3 + 1] = HEX[usize::from(b & 0x0f)];
        }
        MacText(text)
    }
}

/// A MAC address as text (see [`Mac::text`]).
#[derive(Debug, Clone, Copy)]
pub struct MacText([u8; 17]);

impl MacText {
    pub fn as_bytes(&self) -> &[u8; 17] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and colons are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// Accessors that honour `valid`: each returns `None` for a part that was not parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketView<'a>(pub &'a Packet);

impl PacketView<'_> {
    fn has(&self, bit: u16) -> bool {
        self.0.valid & bit != 0
    }

    pub(crate) fn truncated(&self) -> bool {
        self.has(valid::TRUNCATED)
    }

    pub(crate) fn l2(&self) -> Option<(Mac, Mac, u16)> {
        self.has(valid::L2)
            .then_some((Mac(self.0.src_mac), Mac(self.0.dst_mac), self.0.ethertype))
    }

    pub(crate) fn vlans(&self) -> &[u16] {
        &self.0.vlan[..usize::from(self.0.nvlan.min(2))]
    }

    pub(crate) fn src_ip(&self) -> Option<IpAddr> {
        self.ip(&self.0.src_ip)
    }

    pub(crate) fn dst_ip(&self) -> Option<IpAddr> {
        self.ip(&self.0.dst_ip)
    }

    fn ip(&self, raw: &[u8; 16]) -> Option<IpAddr> {
        if self.has(valid::IPV4) {
            Some(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])))
        } else if self.has(valid::IPV6) {
            Some(IpAddr::V6(Ipv6Addr::from(*raw)))
        } else {
            None
        }
    }

    pub(crate) fn is_ipv6(&self) -> bool {
        self.has(valid::IPV6)
    }

    pub(crate) fn ip_proto(&self) -> Option<u8> {
        self.has(valid::IPV4 | valid::IPV6).then_some(self.0.ip_proto)
    }

    pub(crate) fn dont_fragment(&self) -> bool {
        self.0.ip_flags & ipf::DF != 0
    }

    pub(crate) fn fragment(&self) -> bool {
        self.0.ip_flags & ipf::FRAGMENT != 0
    }

    pub(crate) fn ports(&self) -> Option<(u16, u16)> {
        self.has(valid::PORTS).then_some((self.0.sport, self.0.dport))
    }

    /// seq, ack, flags, window.
    pub(crate) fn tcp(&self) -> Option<(u32, u32, u8, u16)> {
        self.has(valid::TCP)
            .then_some((self.0.tcp_seq, self.0.tcp_ack, self.0.tcp_flags, self.0.tcp_win))
    }

    pub(crate) fn udp_len(&self) -> Option<u16> {
        self.has(valid::UDP).then_some(self.0.udp_len)
    }

    pub(crate) fn icmp(&self) -> Option<(u8, u8)> {
        self.has(valid::ICMP).then_some((self.0.icmp_type, self.0.icmp_code))
    }

    pub(crate) fn icmp_echo(&self) -> Option<(u16, u16)> {
        self.has(valid::ICMP_ECHO).then_some((self.0.icmp_id, self.0.icmp_seq))
    }

    pub(crate) fn nd_target(&self) -> Option<Ipv6Addr> {
        self.has(valid::ND_TARGET).then(|| Ipv6Addr::from(self.0.nd_target))
    }

    /// The ARP operation, present even when the addresses are not (other ARP types, short frames).
    pub(crate) fn arp_op(&self) -> Option<u16> {
        self.has(valid::ARP_OP).then_some(self.0.arp_op)
    }

    /// The Ethernet/IPv4 ARP body.
    pub(crate) fn arp(&self) -> Option<Arp> {
        self.has(valid::ARP).then(|| Arp {
            op: self.0.arp_op,
            sha: Mac(self.0.arp_sha),
            spa: Ipv4Addr::from(self.0.arp_spa),
            tha: Mac(self.0.arp_tha),
            tpa: Ipv4Addr::from(self.0.arp_tpa),
        })
    }
}

/// The body of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arp {
    pub op: u16,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

/// "ipv4", "ipv6", "arp" or `0x88cc`-style hex.
pub(crate) fn ethertype_name(ethertype: u16) -> String {
    ethertype_word(ethertype).map_or_else(|| format!("0x{ethertype:04x}"), String::from)
}

/// The name of a known ethertype (see [`ethertype_name`]).
pub(crate) fn ethertype_word(ethertype: u16) -> Option<&'static str> {
    match ethertype {
        ETH_P_IP => Some("ipv4"),
        ETH_P_IPV6 => Some("ipv6"),
        ETH_P_ARP => Some("arp"),
        _ => None,
    }
}

/// "tcp", "udp", "icmp", "icmpv6" or the number.
pub(crate) fn proto_name(proto: u8) -> String {
    proto_word(proto).map_or_else(|| proto.to_string(), String::from)
}

/// The name of a known IP protocol (see [`proto_name`]).
pub(crate) fn proto_word(proto: u8) -> Option<&'static str> {
    match proto {
        IPPROTO_TCP => Some("tcp"),
        IPPROTO_UDP => Some("udp"),
        IPPROTO_ICMP => Some("icmp"),
        IPPROTO_ICMPV6 => Some("icmpv6"),
        _ => None,
    }
}

/// The name of a known ARP operation: "request" or "reply".
pub(crate) fn arp_op_word(op: u16) -> Option<&'static str> {
    match op {
        arp_op::REQUEST => Some("request"),
        arp_op::REPLY => Some("reply"),
        _ => None,
    }
}

/// TCP flags the way tcpdump prints them, appended to a buffer: `S`, `S.`, `P.`, `F.`, `R`,
/// `R.`, `.` … (`none` for none).
pub(crate) fn put_tcp_flags(out: &mut Vec<u8>, flags: u8) {
    const LETTERS: [(u8, u8); 7] = [
        (0x01, b'F'),
        (0x02, b'S'),
        (0x04, b'R'),
        (0x08, b'P'),
        (0x20, b'U'),
        (0x40, b'E'),
        (0x80, b'W'),
    ];
    let start = out.len();
    out.extend(LETTERS.iter().filter(|(bit, _)| flags & bit != 0).map(|&(_, c)| c));
    if flags & 0x10 != 0 {
        out.push(b'.');
    }
    if out.len() == start {
        out.extend_from_slice(b"none");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "request", "reply" or the number.
    fn arp_op_name(op: u16) -> String {
        arp_op_word(op).map_or_else(|| op.to_string(), String::from)
    }

    fn tcp_flags(flags: u8) -> String {
        let mut text = Vec::with_capacity(8);
        put_tcp_flags(&mut text, flags);
        String::from_utf8(text).unwrap_or_default()
    }

    #[test]
    fn tcp_flags_read_like_tcpdump() {
        assert_eq!(tcp_flags(0x02), "S");
        assert_eq!(tcp_flags(0x12), "S.");
        assert_eq!(tcp_flags(0x18), "P.");
        assert_eq!(tcp_flags(0x11), "F.");
        assert_eq!(tcp_flags(0x04), "R");
        assert_eq!(tcp_flags(0x14), "R.");
        assert_eq!(tcp_flags(0x10), ".");
        assert_eq!(tcp_flags(0x00), "none");
        assert_eq!(tcp_flags(0xc2), "SEW");
    }

    #[test]
    fn names() {
        assert_eq!(ethertype_name(0x0800), "ipv4");
        assert_eq!(ethertype_name(0x88cc), "0x88cc");
        assert_eq!(proto_name(58), "icmpv6");
        assert_eq!(proto_name(132), "132");
        assert_eq!(arp_op_name(2), "reply");
        assert_eq!(Mac([0xee; 6]).to_string(), "ee:ee:ee:ee:ee:ee");
    }

    #[test]
    fn view_hides_what_was_not_parsed() {
        let p = Packet { valid: valid::L2, src_ip: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ..Default::default() };
        let v = PacketView(&p);
        assert!(v.l2().is_some());
        assert_eq!(v.src_ip(), None);
        assert_eq!(v.ports(), None);
        assert_eq!(v.arp(), None);
        let p = Packet { valid: valid::L2 | valid::IPV4, ..p };
        assert_eq!(PacketView(&p).src_ip(), Some("10.0.0.1".parse().unwrap()));
    }
}
