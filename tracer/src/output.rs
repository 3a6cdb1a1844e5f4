//! Printers: tcpdump-like text and JSON lines, written into a reusable buffer so that the caller
//! decides when to flush (once per ring-buffer drain, not once per event).

use std::{fmt::Write as _, io};

use serde::Serialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tracer_common::{PacketEvent, dir};

use crate::annotate::Annotation;
use crate::packet::{
    self, ETH_P_ARP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Mac, PacketView,
};

/// Where an event happened, as the collector knows it.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    /// Interface name (or the index as text when the name is not known).
    pub iface: &'a str,
    /// Wall-clock time of the event, ns since the Unix epoch.
    pub wall_ns: i128,
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
pub fn write_annotated(
    format: Format,
    buf: &mut Vec<u8>,
    ev: &PacketEvent,
    meta: Meta<'_>,
    annotation: Option<&Annotation<'_>>,
) -> io::Result<()> {
    match format {
        Format::Text => {
            // Room for an annotated line, so that appending the annotation does not reallocate.
            let mut line = String::with_capacity(320);
            text_packet(&mut line, ev, meta);
            if let Some(a) = annotation {
                a.write_text(&mut line);
            }
            line.push('\n');
            buf.extend_from_slice(line.as_bytes());
            Ok(())
        }
        Format::Json => {
            serde_json::to_writer(&mut *buf, &JsonPacket::new(ev, meta))?;
            if let Some(a) = annotation {
                // The packet object's `}` moves behind the annotation's fields.
                buf.pop();
                a.write_json_fields(buf)?;
                buf.push(b'}');
            }
            buf.push(b'\n');
            Ok(())
        }
    }
}

fn dir_name(d: u8) -> &'static str {
    if d == dir::EGRESS { "egress" } else { "ingress" }
}

fn wall_time(wall_ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(wall_ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `HH:MM:SS.uuuuuu iface In|Out src > dst, ethertype …, length N: <L3/L4 as tcpdump prints it>`
pub fn text_packet(out: &mut String, ev: &PacketEvent, meta: Meta<'_>) {
    let t = wall_time(meta.wall_ns);
    let dir = if ev.dir == dir::EGRESS { "Out" } else { "In " };
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:06} {:<15} {dir} ",
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
        meta.iface
    );
    let v = PacketView(&ev.packet);
    let Some((src, dst, ethertype)) = v.l2() else {
        let _ = write!(out, "[truncated frame], length {}", ev.len);
        return;
    };
    let _ = write!(out, "{src} > {dst}, ");
    for tci in v.vlans() {
        let _ = write!(out, "vlan {}, p {}, ", tci & 0x0fff, tci >> 13);
    }
    let _ = write!(out, "ethertype {} (0x{ethertype:04x}), length {}: ", ethertype_label(ethertype), ev.len);
    if let Some(arp) = v.arp() {
        text_arp(out, &v, arp);
    } else if let Some(op) = v.arp_op() {
        let _ = write!(out, "ARP, op {op} (not Ethernet/IPv4)");
        if v.truncated() {
            out.push_str(" [truncated]");
        }
    } else if let (Some(s), Some(d)) = (v.src_ip(), v.dst_ip()) {
        text_ip(out, &v, s, d);
    } else if ethertype == ETH_P_ARP || v.truncated() {
        out.push_str("[truncated]");
    }
}

fn ethertype_label(ethertype: u16) -> &'static str {
    match ethertype {
        packet::ETH_P_IP => "IPv4",
        packet::ETH_P_IPV6 => "IPv6",
        ETH_P_ARP => "ARP",
        _ => "Unknown",
    }
}

fn text_arp(out: &mut String, v: &PacketView<'_>, arp: packet::Arp) {
    let _ = match arp.op {
        1 => write!(out, "ARP, Request who-has {} tell {}", arp.tpa, arp.spa),
        2 => write!(out, "ARP, Reply {} is-at {}", arp.spa, arp.sha),
        op => write!(out, "ARP, op {op}"),
    };
    if v.truncated() {
        out.push_str(" [truncated]");
    }
}

fn text_ip(out: &mut String, v: &PacketView<'_>, src: std::net::IpAddr, dst: std::net::IpAddr) {
    let proto = v.ip_proto().unwrap_or_default();
    match v.ports() {
        Some((sp, dp)) => {
            let _ = write!(out, "{src}.{sp} > {dst}.{dp}: ");
        }
        None => {
            let _ = write!(out, "{src} > {dst}: ");
        }
    }
    match proto {
        IPPROTO_TCP => match v.tcp() {
            Some((seq, ack, flags, win)) => {
                let _ = write!(out, "Flags [{}], seq {seq}", packet::tcp_flags(flags));
                if flags & 0x10 != 0 {
                    let _ = write!(out, ", ack {ack}");
                }
                let _ = write!(out, ", win {win}");
            }
            None => out.push_str("tcp"),
        },
        IPPROTO_UDP => {
            let _ = match v.udp_len() {
                Some(len) => write!(out, "UDP, length {}", len.saturating_sub(8)),
                None => write!(out, "UDP"),
            };
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => text_icmp(out, v, proto),
        other => {
            let _ = write!(out, "ip-proto-{other}");
        }
    }
    if v.fragment() {
        out.push_str(" (frag)");
    }
    if v.truncated() {
        out.push_str(" [truncated]");
    }
}

fn text_icmp(out: &mut String, v: &PacketView<'_>, proto: u8) {
    let Some((ty, code)) = v.icmp() else {
        out.push_str(if proto == IPPROTO_ICMP { "ICMP" } else { "ICMP6" });
        return;
    };
    let echo = v.icmp_echo();
    let _ = if proto == IPPROTO_ICMP {
        match (ty, echo) {
            (8, Some((id, seq))) => write!(out, "ICMP echo request, id {id}, seq {seq}"),
            (0, Some((id, seq))) => write!(out, "ICMP echo reply, id {id}, seq {seq}"),
            (3, _) => write!(out, "ICMP unreachable, code {code}"),
            (11, _) => write!(out, "ICMP time exceeded, code {code}"),
            _ => write!(out, "ICMP type {ty}, code {code}"),
        }
    } else {
        match (ty, echo, v.nd_target()) {
            (128, Some((id, seq)), _) => write!(out, "ICMP6, echo request, id {id}, seq {seq}"),
            (129, Some((id, seq)), _) => write!(out, "ICMP6, echo reply, id {id}, seq {seq}"),
            (135, _, Some(t)) => write!(out, "ICMP6, neighbor solicitation, who has {t}"),
            (136, _, Some(t)) => write!(out, "ICMP6, neighbor advertisement, tgt is {t}"),
            (133, _, _) => write!(out, "ICMP6, router solicitation"),
            (134, _, _) => write!(out, "ICMP6, router advertisement"),
            (143, _, _) => write!(out, "ICMP6, multicast listener report v2"),
            _ => write!(out, "ICMP6, type {ty}, code {code}"),
        }
    };
}

/// One JSON object per packet event; the keys are documented in the README.
#[derive(Serialize)]
struct JsonPacket<'a> {
    kind: &'static str,
    time: String,
    ts_ns: u64,
    iface: &'a str,
    ifindex: u32,
    dir: &'static str,
    len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ethertype: Option<String>,
    vlan: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_label: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    df: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    frag: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_seq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_ack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_win: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp_len: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_seq: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nd_target: Option<std::net::Ipv6Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_op: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_sha: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_spa: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_tha: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arp_tpa: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

impl<'a> JsonPacket<'a> {
    fn new(ev: &'a PacketEvent, meta: Meta<'a>) -> Self {
        let v = PacketView(&ev.packet);
        let l2 = v.l2();
        let arp = v.arp();
        let tcp = v.tcp();
        let icmp = v.icmp();
        let echo = v.icmp_echo();
        Self {
            kind: "packet",
            time: wall_time(meta.wall_ns).format(&Rfc3339).unwrap_or_default(),
            ts_ns: ev.header.ts_ns,
            iface: meta.iface,
            ifindex: ev.ifindex,
            dir: dir_name(ev.dir),
            len: ev.len,
            src_mac: l2.map(|l| l.0),
            dst_mac: l2.map(|l| l.1),
            ethertype: l2.map(|l| packet::ethertype_name(l.2)),
            vlan: v.vlans().to_vec(),
            src: v.src_ip(),
            dst: v.dst_ip(),
            proto: v.ip_proto().map(packet::proto_name),
            ttl: v.ttl(),
            ip_id: v.ip_id().filter(|_| !v.is_ipv6()),
            flow_label: v.ip_id().filter(|_| v.is_ipv6()),
            df: v.dont_fragment(),
            frag: v.fragment(),
            sport: v.ports().map(|p| p.0),
            dport: v.ports().map(|p| p.1),
            tcp_flags: tcp.map(|t| packet::tcp_flags(t.2)),
            tcp_seq: tcp.map(|t| t.0),
            tcp_ack: tcp.map(|t| t.1),
            tcp_win: tcp.map(|t| t.3),
            udp_len: v.udp_len(),
            icmp_type: icmp.map(|i| i.0),
            icmp_code: icmp.map(|i| i.1),
            icmp_id: echo.map(|e| e.0),
            icmp_seq: echo.map(|e| e.1),
            nd_target: v.nd_target(),
            arp_op: v.arp_op().map(packet::arp_op_name),
            arp_sha: arp.map(|a| a.sha),
            arp_spa: arp.map(|a| a.spa),
            arp_tha: arp.map(|a| a.tha),
            arp_tpa: arp.map(|a| a.tpa),
            truncated: v.truncated(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{Packet, valid};

    const META: Meta<'static> = Meta { iface: "cali1234567890a", wall_ns: 1_764_000_000_123_456_789 };

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
