//! Printers: tcpdump-like text and JSON lines, written into a reusable buffer so that the caller
//! decides when to flush (once per ring-buffer drain, not once per event).

pub mod write;

use std::{io, net::IpAddr};

use time::OffsetDateTime;
use tracer_common::dir;

use self::write::{
    put, put_hex4, put_hms_micros, put_ip, put_ipv4, put_ipv6, put_json_str, put_mac, put_rfc3339, put_u32,
    put_u64,
};
use crate::{annotate::cache::Rendered, event::PacketEvent, pods::Pod};
use crate::packet::{self, PacketView};
use tracer_common::{
    arp_op,
    proto::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP},
};

/// `,"name":` as one write (one update of the buffer's length, not three).
macro_rules! key {
    ($out:expr, $name:literal) => {
        put($out, concat!(",\"", $name, "\":"))
    };
}

/// `,"name":"…"` — the key and the opening quote as one write, `$body` writing the value.
macro_rules! key_quoted {
    ($out:expr, $name:literal, |$o:ident| $body:expr) => {{
        put($out, concat!(",\"", $name, "\":\""));
        let $o: &mut Vec<u8> = $out;
        $body;
        $o.push(b'"');
    }};
}

/// A `,"key":N` pair.
macro_rules! put_number {
    ($out:expr, $name:literal, $n:expr) => {{
        key!($out, $name);
        put_u64($out, $n);
    }};
}

/// `"key":"word"` for a known name, `"key":"N"` otherwise (the serde derive's `String`s).
macro_rules! put_name {
    ($out:expr, $name:literal, $word:expr, |$o:ident| $number:expr) => {
        key_quoted!($out, $name, |$o| match $word {
            Some(w) => put($o, w),
            None => $number,
        })
    };
}

/// Where an event happened, as the collector knows it.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// Interface name (or the index as text when the name is not known).
    pub iface: &'a str,
    /// Wall-clock time of the event, ns since the Unix epoch.
    pub wall_ns: i128,
    /// The pod behind the interface, when pod identity knows it.
    pub pod: Option<&'a Pod>,
}

impl<'a> Meta<'a> {
    pub fn new(iface: &'a str, wall_ns: i128) -> Self {
        Self { iface, wall_ns, pod: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Formats events into `buf`, one line each.
pub fn write_packet(format: Format, buf: &mut Vec<u8>, ev: &PacketEvent, meta: Meta<'_>) -> io::Result<()> {
    write_annotated(format, buf, ev, meta, None)
}

/// [`write_packet`] with the route/neighbour annotation: appended to a text line, merged into
/// the JSON object (keys in the README).
///
/// Every field is written straight into `buf` by the [`write`] helpers: no `core::fmt`, serde
/// or `String` per line. The tests below pin the text and JSON bytes; the annotation's and the
/// drop's JSON keys are held equal to serde derives by the tests in `annotate::render` and
/// `drops::render`.
pub fn write_annotated(
    format: Format,
    buf: &mut Vec<u8>,
    ev: &PacketEvent,
    meta: Meta<'_>,
    annotation: Option<&Rendered>,
) -> io::Result<()> {
    // Room for an annotated line, so that a line grows the buffer at most once.
    buf.reserve(640);
    let annotation = annotation.map_or(&[][..], |a| a.bytes(format));
    match format {
        Format::Text => {
            put_text_packet(buf, ev, meta);
            buf.extend_from_slice(annotation);
            buf.push(b'\n');
        }
        Format::Json => {
            put_json_packet(buf, ev, meta)?;
            buf.extend_from_slice(annotation);
            buf.extend_from_slice(b"}\n");
        }
    }
    Ok(())
}

fn dir_name(d: u8) -> &'static str {
    if d == dir::EGRESS { "egress" } else { "ingress" }
}

pub(crate) fn wall_time(wall_ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(wall_ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `HH:MM:SS.uuuuuu iface In|Out src > dst, ethertype …, length N: <L3/L4 as tcpdump prints it>`
pub fn text_packet(out: &mut String, ev: &PacketEvent, meta: Meta<'_>) {
    write::into_string(out, |o| put_text_packet(o, ev, meta));
}

fn put_text_packet(out: &mut Vec<u8>, ev: &PacketEvent, meta: Meta<'_>) {
    put_text_stamp(out, meta);
    out.extend_from_slice(if ev.dir == dir::EGRESS { b" Out " } else { b" In  " });
    put_text_frame(out, ev);
}

/// `HH:MM:SS.uuuuuu iface [namespace/pod]` (the name padded to 15), what every text line
/// starts with.
pub fn put_text_stamp(out: &mut Vec<u8>, meta: Meta<'_>) {
    put_hms_micros(out, meta.wall_ns);
    out.push(b' ');
    write::put_left(out, meta.iface, 15);
    if let Some(pod) = meta.pod {
        put(out, " [");
        put(out, &pod.namespace);
        out.push(b'/');
        put(out, &pod.name);
        out.push(b']');
    }
}

/// The head every JSON object starts with, whatever its kind (README order), without the
/// closing `}`: `{"kind":…,"time":…,"ts_ns":…,"iface":…,"ifindex":…` and the pod when known.
pub fn put_json_head(out: &mut Vec<u8>, kind: &str, meta: Meta<'_>, ts_ns: u64, ifindex: u32) -> io::Result<()> {
    // `kind` is one of the project's own words: nothing to escape.
    put(out, "{\"kind\":\"");
    put(out, kind);
    put(out, "\",\"time\":\"");
    put_rfc3339(out, meta.wall_ns);
    put(out, "\",\"ts_ns\":");
    put_u64(out, ts_ns);
    key!(out, "iface");
    put_json_str(out, meta.iface)?;
    put_number!(out, "ifindex", u64::from(ifindex));
    put_json_pod(out, meta.pod)
}

/// `,"pod_namespace":…,"pod_name":…[,"pod_uid":…]` when the pod is known.
pub fn put_json_pod(out: &mut Vec<u8>, pod: Option<&Pod>) -> io::Result<()> {
    let Some(pod) = pod else { return Ok(()) };
    key!(out, "pod_namespace");
    put_json_str(out, &pod.namespace)?;
    key!(out, "pod_name");
    put_json_str(out, &pod.name)?;
    if let Some(uid) = &pod.uid {
        key!(out, "pod_uid");
        put_json_str(out, uid)?;
    }
    Ok(())
}

/// The frame as tcpdump prints it: `src > dst, ethertype …, length N: <L3/L4>`.
pub fn put_text_frame(out: &mut Vec<u8>, ev: &PacketEvent) {
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

/// The packet's JSON object without its closing `}` (so that the annotation's fields can
/// follow), keys in the README's order.
fn put_json_packet(out: &mut Vec<u8>, ev: &PacketEvent, meta: Meta<'_>) -> io::Result<()> {
    put_json_frame(out, ev, meta, "packet", true)
}

/// A frame's JSON object without its closing `}`: `kind`, time, interface, `dir` when
/// `with_dir`, then the frame's fields. Drops use it with their own kind and no direction.
pub fn put_json_frame(out: &mut Vec<u8>, ev: &PacketEvent, meta: Meta<'_>, kind: &str, with_dir: bool) -> io::Result<()> {
    let v = PacketView(&ev.packet);
    put_json_head(out, kind, meta, ev.header.ts_ns, ev.ifindex)?;
    if with_dir {
        key_quoted!(out, "dir", |o| put(o, dir_name(ev.dir)));
    }
    put_number!(out, "len", u64::from(ev.len));
    json_l2(out, &v);
    json_l3(out, &v);
    json_l4(out, &v);
    json_arp(out, &v);
    if v.truncated() {
        put(out, ",\"truncated\":true");
    }
    Ok(())
}

fn json_l2(out: &mut Vec<u8>, v: &PacketView<'_>) {
    if let Some((src, dst, ethertype)) = v.l2() {
        key_quoted!(out, "src_mac", |o| put_mac(o, src));
        key_quoted!(out, "dst_mac", |o| put_mac(o, dst));
        put_name!(out, "ethertype", packet::ethertype_word(ethertype), |o| put_hex4(o, ethertype));
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{Packet, valid};

    const META: Meta<'static> = Meta { iface: "cali1234567890a", wall_ns: 1_764_000_000_123_456_789, pod: None };

    fn ev(packet: Packet, direction: u8) -> PacketEvent {
        PacketEvent { ifindex: 9, len: 98, dir: direction, packet, ..Default::default() }
    }

    fn l2(ethertype: u16) -> Packet {
        Packet {
            valid: valid::L2,
            ethertype,
            src_mac: [0x92, 0x7d, 0, 0, 0, 1],
            dst_mac: [0xee; 6],
            ..Default::default()
        }
    }

    fn ip4(p: Packet, proto: u8, src: [u8; 4], dst: [u8; 4]) -> Packet {
        let mut p = Packet { valid: p.valid | valid::IPV4, ip_proto: proto, ttl: 64, ..p };
        p.src_ip[..4].copy_from_slice(&src);
        p.dst_ip[..4].copy_from_slice(&dst);
        p
    }

    fn text(ev: &PacketEvent) -> String {
        let mut s = String::new();
        text_packet(&mut s, ev, META);
        s
    }

    fn json(ev: &PacketEvent) -> serde_json::Value {
        let mut buf = Vec::new();
        write_packet(Format::Json, &mut buf, ev, META).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn tcp_syn_text_and_json() {
        let mut p = ip4(l2(0x0800), 6, [10, 244, 1, 5], [10, 244, 1, 6]);
        p.valid |= valid::PORTS | valid::TCP;
        p.sport = 40000;
        p.dport = 80;
        p.tcp_flags = 0x02;
        p.tcp_seq = 1000;
        p.tcp_win = 64240;
        let e = ev(p, dir::INGRESS);
        let t = text(&e);
        assert!(t.starts_with("16:00:00.123456 cali1234567890a In  92:7d:00:00:00:01 > ee:ee:ee:ee:ee:ee, ethertype IPv4 (0x0800), length 98: "), "{t}");
        assert!(t.ends_with("10.244.1.5.40000 > 10.244.1.6.80: Flags [S], seq 1000, win 64240"), "{t}");
        let j = json(&e);
        assert_eq!(j["kind"], "packet");
        assert_eq!(j["time"], "2025-11-24T16:00:00.123456789Z");
        assert_eq!(j["iface"], "cali1234567890a");
        assert_eq!(j["ifindex"], 9);
        assert_eq!(j["dir"], "ingress");
        assert_eq!(j["src_mac"], "92:7d:00:00:00:01");
        assert_eq!(j["ethertype"], "ipv4");
        assert_eq!(j["vlan"], serde_json::json!([]));
        assert_eq!(j["src"], "10.244.1.5");
        assert_eq!(j["proto"], "tcp");
        assert_eq!(j["sport"], 40000);
        assert_eq!(j["dport"], 80);
        assert_eq!(j["tcp_flags"], "S");
        assert!(j.get("arp_op").is_none());
    }

    #[test]
    fn arp_request_and_reply() {
        let mut p = l2(0x0806);
        p.valid |= valid::ARP | valid::ARP_OP;
        p.arp_op = 1;
        p.arp_sha = [0x92, 0x7d, 0, 0, 0, 1];
        p.arp_spa = [10, 244, 1, 5];
        p.arp_tpa = [169, 254, 1, 1];
        let e = ev(p, dir::INGRESS);
        assert!(text(&e).ends_with("ARP, Request who-has 169.254.1.1 tell 10.244.1.5"));
        let j = json(&e);
        assert_eq!(j["ethertype"], "arp");
        assert_eq!(j["arp_op"], "request");
        assert_eq!(j["arp_tpa"], "169.254.1.1");
        assert_eq!(j["arp_tha"], "00:00:00:00:00:00");
        p.arp_op = 2;
        p.arp_sha = [0xee; 6];
        p.arp_spa = [169, 254, 1, 1];
        let e = ev(p, dir::EGRESS);
        assert!(text(&e).contains(" Out "));
        assert!(text(&e).ends_with("ARP, Reply 169.254.1.1 is-at ee:ee:ee:ee:ee:ee"));
        assert_eq!(json(&e)["dir"], "egress");
    }

    #[test]
    fn icmp_echo_udp_and_icmpv6_nd() {
        let mut p = ip4(l2(0x0800), 1, [10, 244, 1, 5], [10, 244, 1, 6]);
        p.valid |= valid::ICMP | valid::ICMP_ECHO;
        p.icmp_type = 8;
        p.icmp_id = 7;
        p.icmp_seq = 3;
        assert!(text(&ev(p, 0)).ends_with("10.244.1.5 > 10.244.1.6: ICMP echo request, id 7, seq 3"));
        let j = json(&ev(p, 0));
        assert_eq!((j["icmp_type"].as_u64(), j["icmp_code"].as_u64()), (Some(8), Some(0)));

        let mut u = ip4(l2(0x0800), 17, [10, 244, 1, 5], [10, 244, 1, 6]);
        u.valid |= valid::PORTS | valid::UDP;
        u.sport = 5353;
        u.dport = 53;
        u.udp_len = 20;
        assert!(text(&ev(u, 0)).ends_with("10.244.1.5.5353 > 10.244.1.6.53: UDP, length 12"));

        let mut n = l2(0x86dd);
        n.valid |= valid::IPV6 | valid::ICMP | valid::ND_TARGET;
        n.ip_proto = 58;
        n.icmp_type = 135;
        n.src_ip = "fd00::5".parse::<std::net::Ipv6Addr>().unwrap().octets();
        n.dst_ip = "ff02::1:ff00:1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        n.nd_target = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert!(text(&ev(n, 0)).ends_with("fd00::5 > ff02::1:ff00:1: ICMP6, neighbor solicitation, who has fe80::1"));
        let j = json(&ev(n, 0));
        assert_eq!(j["proto"], "icmpv6");
        assert_eq!(j["nd_target"], "fe80::1");
    }

    #[test]
    fn truncated_and_vlan_frames() {
        let e = ev(Packet { valid: valid::TRUNCATED, ..Default::default() }, 0);
        assert!(text(&e).ends_with("[truncated frame], length 98"));
        let j = json(&e);
        assert_eq!(j["truncated"], true);
        assert!(j.get("src_mac").is_none());

        let mut p = l2(0x0800);
        p.vlan = [100, 0];
        p.nvlan = 1;
        p.valid |= valid::TRUNCATED;
        let e = ev(p, 0);
        assert!(text(&e).contains("vlan 100, p 0, ethertype IPv4"));
        assert_eq!(json(&e)["vlan"], serde_json::json!([100]));
    }
}
