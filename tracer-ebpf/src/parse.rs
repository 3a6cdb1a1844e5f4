//! Bounded frame parser: Ethernet (+ up to two VLAN tags), ARP, IPv4/IPv6 (with extension
//! headers), TCP, UDP, ICMP/ICMPv6.
//!
//! Every read goes through [`Frame::load`], which fails instead of reading past the frame, so a
//! truncated or malformed frame yields a partial [`Packet`] with `valid` saying what was read and
//! `TRUNCATED` set; nothing is ever guessed. Header layouts are network-types' (read with
//! [`header`]); IPv6 extension headers and the ICMPv6 ND target are read by offset.

use network_types::{
    arp::ArpHdr,
    eth::EthHdr,
    icmp::Icmpv4Hdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
    vlan::VlanHdr,
};
use tracer_common::{
    Packet, ipf,
    proto::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP},
    valid,
};

/// Something a frame can be read from, starting at the MAC header.
pub trait Frame {
    /// Reads `N` bytes at `offset`, or `None` when they are not all inside the frame.
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;
}

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;

/// IPv6 extension headers followed before giving up on finding the upper layer.
const MAX_IPV6_EXT: usize = 6;

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// The network-types header `H` at `offset`, when all of it is inside the frame. `N` is its
/// size (checked at compile time); [`header!`] fills it in.
#[inline(always)]
fn header<H: Copy, const N: usize>(f: &impl Frame, offset: usize) -> Option<H> {
    const { assert!(N == core::mem::size_of::<H>()) };
    let bytes = f.load::<N>(offset)?;
    // SAFETY: network-types headers are `#[repr(C)]` integers and byte arrays, so every bit
    // pattern is a value; `bytes` holds exactly `size_of::<H>()` of them, and an unaligned
    // read takes them from any address.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<H>()) })
}

macro_rules! header {
    ($f:expr, $h:ty, $off:expr) => {
        header::<$h, { <$h>::LEN }>($f, $off)
    };
}

macro_rules! sub {
    ($a:expr, $from:expr, $n:expr) => {{
        let mut out = [0u8; $n];
        let mut i = 0;
        while i < $n {
            out[i] = $a[$from + i];
            i += 1;
        }
        out
    }};
}

/// Parses the frame into `p`. `accel_vlan` is a VLAN tag the driver already took off the frame
/// (it sits in skb metadata on ingress).
#[inline(always)]
pub fn parse<F: Frame>(f: &F, p: &mut Packet, accel_vlan: Option<u16>) {
    let Some(eth) = header!(f, EthHdr, 0) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.dst_mac = eth.dst_addr;
    p.src_mac = eth.src_addr;
    let mut ethertype = u16::from_be(eth.ether_type);
    let mut off = EthHdr::LEN;
    if let Some(tci) = accel_vlan {
        p.vlan[0] = tci;
        p.nvlan = 1;
    }
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = header!(f, VlanHdr, off) else {
            p.valid |= valid::L2 | valid::TRUNCATED;
            p.ethertype = ethertype;
            return;
        };
        push_vlan(p, be16(tag.tci));
        ethertype = u16::from_be(tag.ether_type);
        off += VlanHdr::LEN;
    }
    p.ethertype = ethertype;
    p.valid |= valid::L2;
    match ethertype {
        ETH_P_ARP => parse_arp(f, p, off),
        ETH_P_IP => parse_ipv4(f, p, off),
        ETH_P_IPV6 => parse_ipv6(f, p, off),
        _ => {}
    }
}

#[inline(always)]
fn push_vlan(p: &mut Packet, tci: u16) {
    match p.nvlan {
        0 => p.vlan[0] = tci,
        1 => p.vlan[1] = tci,
        _ => return,
    }
    p.nvlan += 1;
}

#[inline(always)]
fn parse_arp<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(arp) = header!(f, ArpHdr, off) else {
        // The fixed part alone still tells the operation: htype, ptype, hlen, plen, op.
        if let Some(fixed) = f.load::<8>(off) {
            p.arp_op = be16(sub!(fixed, 6, 2));
            p.valid |= valid::ARP_OP;
        }
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.arp_op = be16(arp.oper);
    p.valid |= valid::ARP_OP;
    let ethernet_ipv4 = be16(arp.htype) == 1 && be16(arp.ptype) == ETH_P_IP && arp.hlen == 6 && arp.plen == 4;
    if !ethernet_ipv4 {
        return;
    }
    p.arp_sha = arp.sha;
    p.arp_spa = arp.spa;
    p.arp_tha = arp.tha;
    p.arp_tpa = arp.tpa;
    p.valid |= valid::ARP;
}

#[inline(always)]
fn parse_ipv4<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = header!(f, Ipv4Hdr, off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    let ihl = usize::from(h.ihl());
    if h.version() != 4 || ihl < Ipv4Hdr::LEN {
        p.valid |= valid::TRUNCATED;
        return;
    }
    p.valid |= valid::IPV4;
    p.ttl = h.ttl;
    p.ip_proto = h.proto;
    p.ip_id = u32::from(h.id());
    // Flags: reserved, DF, MF.
    if h.frag_flags() & 0b010 != 0 {
        p.ip_flags |= ipf::DF;
    }
    if h.frag_flags() & 0b001 != 0 {
        p.ip_flags |= ipf::MF | ipf::FRAGMENT;
    }
    p.src_ip[..4].copy_from_slice(&h.src_addr);
    p.dst_ip[..4].copy_from_slice(&h.dst_addr);
    if h.frag_offset() != 0 {
        // A later fragment carries no L4 header.
        p.ip_flags |= ipf::FRAGMENT;
        return;
    }
    let proto = p.ip_proto;
    parse_l4(f, p, off + ihl, proto);
}

#[inline(always)]
fn parse_ipv6<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = header!(f, Ipv6Hdr, off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    if h.version() != 6 {
        p.valid |= valid::TRUNCATED;
        return;
    }
    p.valid |= valid::IPV6;
    p.ip_id = h.flow_label();
    p.ttl = h.hop_limit;
    p.src_ip = h.src_addr;
    p.dst_ip = h.dst_addr;
    let mut next = h.next_hdr;
    let mut off = off + Ipv6Hdr::LEN;
    for _ in 0..MAX_IPV6_EXT {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH => {
                let Some(ext) = f.load::<2>(off) else {
                    p.ip_proto = next;
                    p.valid |= valid::TRUNCATED;
                    return;
                };
                let len = if next == IPPROTO_AH {
                    (ext[1] as usize + 2) * 4
                } else {
                    (ext[1] as usize + 1) * 8
                };
                next = ext[0];
                off += len;
            }
            IPPROTO_FRAGMENT => {
                let Some(ext) = f.load::<4>(off) else {
                    p.ip_proto = next;
                    p.valid |= valid::TRUNCATED;
                    return;
                };
                let frag = be16(sub!(ext, 2, 2));
                p.ip_flags |= ipf::FRAGMENT;
                if frag & 1 != 0 {
                    p.ip_flags |= ipf::MF;
                }
                next = ext[0];
                off += 8;
                if frag & 0xfff8 != 0 {
                    p.ip_proto = next;
                    return;
                }
            }
            _ => break,
        }
    }
    p.ip_proto = next;
    parse_l4(f, p, off, next);
}

#[inline(always)]
fn parse_l4<F: Frame>(f: &F, p: &mut Packet, off: usize, proto: u8) {
    match proto {
        IPPROTO_TCP => parse_tcp(f, p, off),
        IPPROTO_UDP => parse_udp(f, p, off),
        IPPROTO_ICMP | IPPROTO_ICMPV6 => parse_icmp(f, p, off, proto),
        _ => {}
    }
}

#[inline(always)]
fn parse_ports(p: &mut Packet, sport: [u8; 2], dport: [u8; 2]) {
    p.sport = be16(sport);
    p.dport = be16(dport);
    p.valid |= valid::PORTS;
}

/// The TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN, high bit first).
#[inline(always)]
fn tcp_flags(h: &TcpHdr) -> u8 {
    let bits = [h.fin(), h.syn(), h.rst(), h.psh(), h.ack(), h.urg(), h.ece(), h.cwr()];
    let mut flags = 0;
    let mut i = 0;
    while i < bits.len() {
        flags |= ((bits[i] & 1) as u8) << i;
        i += 1;
    }
    flags
}

#[inline(always)]
fn parse_tcp<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    if let Some(h) = header!(f, TcpHdr, off) {
        parse_ports(p, h.source, h.dest);
        p.tcp_seq = be32(h.seq);
        p.tcp_ack = be32(h.ack_seq);
        p.tcp_flags = tcp_flags(&h);
        p.tcp_win = be16(h.window);
        p.valid |= valid::TCP;
    } else if let Some(ports) = f.load::<4>(off) {
        parse_ports(p, sub!(ports, 0, 2), sub!(ports, 2, 2));
        p.valid |= valid::TRUNCATED;
    } else {
        p.valid |= valid::TRUNCATED;
    }
}

#[inline(always)]
fn parse_udp<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = header!(f, UdpHdr, off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    parse_ports(p, h.src, h.dst);
    p.udp_len = be16(h.len);
    p.valid |= valid::UDP;
}

#[inline(always)]
fn parse_icmp<F: Frame>(f: &F, p: &mut Packet, off: usize, proto: u8) {
    // ICMP and ICMPv6 share the first 8 bytes: type, code, checksum, 4 bytes by type.
    let Some(h) = header!(f, Icmpv4Hdr, off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.icmp_type = h.type_;
    p.icmp_code = h.code;
    p.valid |= valid::ICMP;
    let echo = if proto == IPPROTO_ICMP {
        h.type_ == 0 || h.type_ == 8
    } else {
        h.type_ == 128 || h.type_ == 129
    };
    if echo {
        p.icmp_id = be16(sub!(h.data, 0, 2));
        p.icmp_seq = be16(sub!(h.data, 2, 2));
        p.valid |= valid::ICMP_ECHO;
    }
    // Neighbour solicitation (135) and advertisement (136) carry the target after 8 bytes.
    if proto == IPPROTO_ICMPV6 && (h.type_ == 135 || h.type_ == 136) {
        match f.load::<16>(off + Icmpv4Hdr::LEN) {
            Some(target) => {
                p.nd_target = target;
                p.valid |= valid::ND_TARGET;
            }
            None => p.valid |= valid::TRUNCATED,
        }
    }
}
