//! Bounded frame parser: Ethernet (+ up to two VLAN tags), ARP, IPv4/IPv6 (with extension
//! headers), TCP, UDP, ICMP/ICMPv6.
//!
//! Every read goes through [`Frame::load`], which fails instead of reading past the frame, so a
//! truncated or malformed frame yields a partial [`Packet`] with `valid` saying what was read and
//! `TRUNCATED` set; nothing is ever guessed.

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
    let Some(eth) = f.load::<14>(0) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.dst_mac = sub!(eth, 0, 6);
    p.src_mac = sub!(eth, 6, 6);
    let mut ethertype = be16(sub!(eth, 12, 2));
    let mut off = 14;
    if let Some(tci) = accel_vlan {
        p.vlan[0] = tci;
        p.nvlan = 1;
    }
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = f.load::<4>(off) else {
            p.valid |= valid::L2 | valid::TRUNCATED;
            p.ethertype = ethertype;
            return;
        };
        push_vlan(p, be16(sub!(tag, 0, 2)));
        ethertype = be16(sub!(tag, 2, 2));
        off += 4;
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
    // Fixed part: htype, ptype, hlen, plen, op.
    let Some(fixed) = f.load::<8>(off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.arp_op = be16(sub!(fixed, 6, 2));
    p.valid |= valid::ARP_OP;
    let ethernet_ipv4 =
        be16(sub!(fixed, 0, 2)) == 1 && be16(sub!(fixed, 2, 2)) == ETH_P_IP && fixed[4] == 6 && fixed[5] == 4;
    if !ethernet_ipv4 {
        return;
    }
    let Some(addrs) = f.load::<20>(off + 8) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.arp_sha = sub!(addrs, 0, 6);
    p.arp_spa = sub!(addrs, 6, 4);
    p.arp_tha = sub!(addrs, 10, 6);
    p.arp_tpa = sub!(addrs, 16, 4);
    p.valid |= valid::ARP;
}

#[inline(always)]
fn parse_ipv4<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = f.load::<20>(off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    let ihl = (h[0] & 0x0f) as usize * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        p.valid |= valid::TRUNCATED;
        return;
    }
    p.valid |= valid::IPV4;
    p.ttl = h[8];
    p.ip_proto = h[9];
    p.ip_id = u32::from(be16(sub!(h, 4, 2)));
    let frag = be16(sub!(h, 6, 2));
    if frag & 0x4000 != 0 {
        p.ip_flags |= ipf::DF;
    }
    if frag & 0x2000 != 0 {
        p.ip_flags |= ipf::MF | ipf::FRAGMENT;
    }
    let src: [u8; 4] = sub!(h, 12, 4);
    let dst: [u8; 4] = sub!(h, 16, 4);
    p.src_ip[..4].copy_from_slice(&src);
    p.dst_ip[..4].copy_from_slice(&dst);
    if frag & 0x1fff != 0 {
        // A later fragment carries no L4 header.
        p.ip_flags |= ipf::FRAGMENT;
        return;
    }
    let proto = p.ip_proto;
    parse_l4(f, p, off + ihl, proto);
}

#[inline(always)]
fn parse_ipv6<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = f.load::<40>(off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    if h[0] >> 4 != 6 {
        p.valid |= valid::TRUNCATED;
        return;
    }
    p.valid |= valid::IPV6;
    p.ip_id = be32(sub!(h, 0, 4)) & 0x000f_ffff;
    p.ttl = h[7];
    p.src_ip = sub!(h, 8, 16);
    p.dst_ip = sub!(h, 24, 16);
    let mut next = h[6];
    let mut off = off + 40;
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
fn parse_ports(p: &mut Packet, h: &[u8]) {
    p.sport = u16::from_be_bytes([h[0], h[1]]);
    p.dport = u16::from_be_bytes([h[2], h[3]]);
    p.valid |= valid::PORTS;
}

#[inline(always)]
fn parse_tcp<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    if let Some(h) = f.load::<20>(off) {
        parse_ports(p, &h);
        p.tcp_seq = be32(sub!(h, 4, 4));
        p.tcp_ack = be32(sub!(h, 8, 4));
        p.tcp_flags = h[13];
        p.tcp_win = be16(sub!(h, 14, 2));
        p.valid |= valid::TCP;
    } else if let Some(h) = f.load::<4>(off) {
        parse_ports(p, &h);
        p.valid |= valid::TRUNCATED;
    } else {
        p.valid |= valid::TRUNCATED;
    }
}

#[inline(always)]
fn parse_udp<F: Frame>(f: &F, p: &mut Packet, off: usize) {
    let Some(h) = f.load::<8>(off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    parse_ports(p, &h);
    p.udp_len = be16(sub!(h, 4, 2));
    p.valid |= valid::UDP;
}

#[inline(always)]
fn parse_icmp<F: Frame>(f: &F, p: &mut Packet, off: usize, proto: u8) {
    let Some(h) = f.load::<8>(off) else {
        p.valid |= valid::TRUNCATED;
        return;
    };
    p.icmp_type = h[0];
    p.icmp_code = h[1];
    p.valid |= valid::ICMP;
    let echo = if proto == IPPROTO_ICMP {
        h[0] == 0 || h[0] == 8
    } else {
        h[0] == 128 || h[0] == 129
    };
    if echo {
        p.icmp_id = be16(sub!(h, 4, 2));
        p.icmp_seq = be16(sub!(h, 6, 2));
        p.valid |= valid::ICMP_ECHO;
    }
    // Neighbour solicitation (135) and advertisement (136) carry the target after 8 bytes.
    if proto == IPPROTO_ICMPV6 && (h[0] == 135 || h[0] == 136) {
        match f.load::<16>(off + 8) {
            Some(target) => {
                p.nd_target = target;
                p.valid |= valid::ND_TARGET;
            }
            None => p.valid |= valid::TRUNCATED,
        }
    }
}
