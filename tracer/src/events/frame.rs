//! A frame's own words, shared by the kinds that carry one (packets and drops): the text
//! tcpdump prints for it, and its JSON fields (README order).

use std::net::IpAddr;

use tracer_common::{
    arp_op,
    proto::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP},
};

use super::PacketEvent;
use crate::{
    output::{
        key_quoted, put_name, put_number,
        write::{put, put_hex4, put_ip, put_ipv4, put_ipv6, put_mac, put_u32},
    },
    packet::{self, PacketView},
};

/// The frame as tcpdump prints it: `src > dst, ethertype …, length N: <L3/L4>`.
pub(crate) fn put_text(out: &mut Vec<u8>, ev: &PacketEvent) {
    let v = PacketView(&ev.packet);
    let Some((src, dst, ethertype)) = v.l2() else {
        put(out, "[truncated frame], length ");
        put_u32(out, ev.len);
        return;
    };
    put_mac(out, src);
    put(out, " > ");
    put_mac(out, dst);
    put(out, ", ");
    for &tci in v.vlans() {
        put(out, "vlan ");
        put_u32(out, u32::from(tci & 0x0fff));
        put(out, ", p ");
        put_u32(out, u32::from(tci >> 13));
        put(out, ", ");
    }
    put(out, "ethertype ");
    put(out, ethertype_label(ethertype));
    put(out, " (");
    put_hex4(out, ethertype);
    put(out, "), length ");
    put_u32(out, ev.len);
    put(out, ": ");
    if let Some(arp) = v.arp() {
        text_arp(out, &v, arp);
    } else if let Some(op) = v.arp_op() {
        put(out, "ARP, op ");
        put_u32(out, u32::from(op));
        put(out, " (not Ethernet/IPv4)");
        if v.truncated() {
            put(out, " [truncated]");
        }
    } else if let (Some(s), Some(d)) = (v.src_ip(), v.dst_ip()) {
        text_ip(out, &v, s, d);
    } else if ethertype == ETH_P_ARP || v.truncated() {
        put(out, "[truncated]");
    }
}

/// The frame's network part alone, as tcpdump prints it after the link layer
/// (`10.244.1.5 > 10.244.1.6: ICMP echo request, …`); the whole frame's text when it has none.
pub(crate) fn put_l3_text(out: &mut Vec<u8>, ev: &PacketEvent) {
    let v = PacketView(&ev.packet);
    match (v.src_ip(), v.dst_ip()) {
        (Some(s), Some(d)) => text_ip(out, &v, s, d),
        _ => put_text(out, ev),
    }
}

fn ethertype_label(ethertype: u16) -> &'static str {
    match ethertype {
        ETH_P_IP => "IPv4",
        ETH_P_IPV6 => "IPv6",
        ETH_P_ARP => "ARP",
        _ => "Unknown",
    }
}

fn text_arp(out: &mut Vec<u8>, v: &PacketView<'_>, arp: packet::Arp) {
    match arp.op {
        arp_op::REQUEST => {
            put(out, "ARP, Request who-has ");
            put_ipv4(out, arp.tpa);
            put(out, " tell ");
            put_ipv4(out, arp.spa);
        }
        arp_op::REPLY => {
            put(out, "ARP, Reply ");
            put_ipv4(out, arp.spa);
            put(out, " is-at ");
            put_mac(out, arp.sha);
        }
        op => {
            put(out, "ARP, op ");
            put_u32(out, u32::from(op));
        }
    }
    if v.truncated() {
        put(out, " [truncated]");
    }
}

fn text_ip(out: &mut Vec<u8>, v: &PacketView<'_>, src: IpAddr, dst: IpAddr) {
    let proto = v.ip_proto().unwrap_or_default();
    let ports = v.ports();
    put_ip(out, src);
    if let Some((sp, _)) = ports {
        out.push(b'.');
        put_u32(out, u32::from(sp));
    }
    put(out, " > ");
    put_ip(out, dst);
    if let Some((_, dp)) = ports {
        out.push(b'.');
        put_u32(out, u32::from(dp));
    }
    put(out, ": ");
    match proto {
        IPPROTO_TCP => match v.tcp() {
            Some((seq, ack, flags, win)) => {
                put(out, "Flags [");
                packet::put_tcp_flags(out, flags);
                put(out, "], seq ");
                put_u32(out, seq);
                if flags & 0x10 != 0 {
                    put(out, ", ack ");
                    put_u32(out, ack);
                }
                put(out, ", win ");
                put_u32(out, u32::from(win));
            }
            None => put(out, "tcp"),
        },
        IPPROTO_UDP => {
            put(out, "UDP");
            if let Some(len) = v.udp_len() {
                put(out, ", length ");
                put_u32(out, u32::from(len.saturating_sub(8)));
            }
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => text_icmp(out, v, proto),
        other => {
            put(out, "ip-proto-");
            put_u32(out, u32::from(other));
        }
    }
    if v.fragment() {
        put(out, " (frag)");
    }
    if v.truncated() {
        put(out, " [truncated]");
    }
}

fn text_icmp(out: &mut Vec<u8>, v: &PacketView<'_>, proto: u8) {
    let Some((ty, code)) = v.icmp() else {
        put(out, if proto == IPPROTO_ICMP { "ICMP" } else { "ICMP6" });
        return;
    };
    let echo = |out: &mut Vec<u8>, what: &str, (id, seq): (u16, u16)| {
        put(out, what);
        put(out, ", id ");
        put_u32(out, u32::from(id));
        put(out, ", seq ");
        put_u32(out, u32::from(seq));
    };
    let with_code = |out: &mut Vec<u8>, what: &str| {
        put(out, what);
        put_u32(out, u32::from(code));
    };
    if proto == IPPROTO_ICMP {
        match (ty, v.icmp_echo()) {
            (8, Some(e)) => echo(out, "ICMP echo request", e),
            (0, Some(e)) => echo(out, "ICMP echo reply", e),
            (3, _) => with_code(out, "ICMP unreachable, code "),
            (11, _) => with_code(out, "ICMP time exceeded, code "),
            _ => {
                put(out, "ICMP type ");
                put_u32(out, u32::from(ty));
                with_code(out, ", code ");
            }
        }
    } else {
        match (ty, v.icmp_echo(), v.nd_target()) {
            (128, Some(e), _) => echo(out, "ICMP6, echo request", e),
            (129, Some(e), _) => echo(out, "ICMP6, echo reply", e),
            (135, _, Some(t)) => {
                put(out, "ICMP6, neighbor solicitation, who has ");
                put_ipv6(out, t);
            }
            (136, _, Some(t)) => {
                put(out, "ICMP6, neighbor advertisement, tgt is ");
                put_ipv6(out, t);
            }
            (133, _, _) => put(out, "ICMP6, router solicitation"),
            (134, _, _) => put(out, "ICMP6, router advertisement"),
            (143, _, _) => put(out, "ICMP6, multicast listener report v2"),
            _ => {
                put(out, "ICMP6, type ");
                put_u32(out, u32::from(ty));
                with_code(out, ", code ");
            }
        }
    }
}

/// The frame's JSON fields after the head (and a packet's `dir`): `len`, then L2, L3, L4 and
/// ARP, each when the frame has it.
pub(crate) fn put_json(out: &mut Vec<u8>, ev: &PacketEvent) {
    let v = PacketView(&ev.packet);
    put_number!(out, "len", u64::from(ev.len));
    json_l2(out, &v);
    json_l3(out, &v);
    json_l4(out, &v);
    json_arp(out, &v);
    if v.truncated() {
        put(out, ",\"truncated\":true");
    }
}

fn json_l2(out: &mut Vec<u8>, v: &PacketView<'_>) {
    if let Some((src, dst, ethertype)) = v.l2() {
        key_quoted!(out, "src_mac", |o| put_mac(o, src));
        key_quoted!(out, "dst_mac", |o| put_mac(o, dst));
        put_name!(out, "ethertype", packet::ethertype_word(ethertype), |o| { put_hex4(o, ethertype) });
    }
    put(out, ",\"vlan\":[");
    for (i, &tci) in v.vlans().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_u32(out, u32::from(tci));
    }
    out.push(b']');
}

fn json_l3(out: &mut Vec<u8>, v: &PacketView<'_>) {
    if let Some(src) = v.src_ip() {
        key_quoted!(out, "src", |o| put_ip(o, src));
    }
    if let Some(dst) = v.dst_ip() {
        key_quoted!(out, "dst", |o| put_ip(o, dst));
    }
    if let Some(proto) = v.ip_proto() {
        put_name!(out, "proto", packet::proto_word(proto), |o| put_u32(o, u32::from(proto)));
        put_number!(out, "ttl", u64::from(v.0.ttl));
        if v.is_ipv6() {
            put_number!(out, "flow_label", u64::from(v.0.ip_id));
        } else {
            put_number!(out, "ip_id", u64::from(v.0.ip_id));
        }
    }
    if v.dont_fragment() {
        put(out, ",\"df\":true");
    }
    if v.fragment() {
        put(out, ",\"frag\":true");
    }
}

fn json_l4(out: &mut Vec<u8>, v: &PacketView<'_>) {
    if let Some((sp, dp)) = v.ports() {
        put_number!(out, "sport", u64::from(sp));
        put_number!(out, "dport", u64::from(dp));
    }
    if let Some((seq, ack, flags, win)) = v.tcp() {
        key_quoted!(out, "tcp_flags", |o| packet::put_tcp_flags(o, flags));
        put_number!(out, "tcp_seq", u64::from(seq));
        put_number!(out, "tcp_ack", u64::from(ack));
        put_number!(out, "tcp_win", u64::from(win));
    }
    if let Some(len) = v.udp_len() {
        put_number!(out, "udp_len", u64::from(len));
    }
    if let Some((ty, code)) = v.icmp() {
        put_number!(out, "icmp_type", u64::from(ty));
        put_number!(out, "icmp_code", u64::from(code));
    }
    if let Some((id, seq)) = v.icmp_echo() {
        put_number!(out, "icmp_id", u64::from(id));
        put_number!(out, "icmp_seq", u64::from(seq));
    }
    if let Some(t) = v.nd_target() {
        key_quoted!(out, "nd_target", |o| put_ipv6(o, t));
    }
}

fn json_arp(out: &mut Vec<u8>, v: &PacketView<'_>) {
    if let Some(op) = v.arp_op() {
        put_name!(out, "arp_op", packet::arp_op_word(op), |o| put_u32(o, u32::from(op)));
    }
    if let Some(arp) = v.arp() {
        key_quoted!(out, "arp_sha", |o| put_mac(o, arp.sha));
        key_quoted!(out, "arp_spa", |o| put_ipv4(o, arp.spa));
        key_quoted!(out, "arp_tha", |o| put_mac(o, arp.tha));
        key_quoted!(out, "arp_tpa", |o| put_ipv4(o, arp.tpa));
    }
}
