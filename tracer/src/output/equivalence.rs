//! The hand-written printers against the code they replaced: the `write!`-based text printer
//! and the serde derive for JSON, kept here verbatim as the oracle (with the name helpers of
//! `packet` as they were), on generated events that reach every branch and edge.

use std::fmt::Write as _;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tracer_common::{Packet, PacketEvent, dir, ipf, valid};

use super::{Format, Meta, dir_name, ethertype_label, wall_time, write::Rng, write_annotated};
use crate::annotate::{self, Annotation, bench};
use crate::packet::{
    self, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Mac, PacketView,
};

// ---- the oracle: the printers as they were ----

/// `HH:MM:SS.uuuuuu iface In|Out src > dst, ethertype …, length N: <L3/L4 as tcpdump prints it>`
pub(super) fn text_packet(out: &mut String, ev: &PacketEvent, meta: Meta<'_>) {
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
                let _ = write!(out, "Flags [{}], seq {seq}", tcp_flags(flags));
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
            ethertype: l2.map(|l| ethertype_name(l.2)),
            vlan: v.vlans().to_vec(),
            src: v.src_ip(),
            dst: v.dst_ip(),
            proto: v.ip_proto().map(proto_name),
            ttl: v.ttl(),
            ip_id: v.ip_id().filter(|_| !v.is_ipv6()),
            flow_label: v.ip_id().filter(|_| v.is_ipv6()),
            df: v.dont_fragment(),
            frag: v.fragment(),
            sport: v.ports().map(|p| p.0),
            dport: v.ports().map(|p| p.1),
            tcp_flags: tcp.map(|t| tcp_flags(t.2)),
            tcp_seq: tcp.map(|t| t.0),
            tcp_ack: tcp.map(|t| t.1),
            tcp_win: tcp.map(|t| t.3),
            udp_len: v.udp_len(),
            icmp_type: icmp.map(|i| i.0),
            icmp_code: icmp.map(|i| i.1),
            icmp_id: echo.map(|e| e.0),
            icmp_seq: echo.map(|e| e.1),
            nd_target: v.nd_target(),
            arp_op: v.arp_op().map(arp_op_name),
            arp_sha: arp.map(|a| a.sha),
            arp_spa: arp.map(|a| a.spa),
            arp_tha: arp.map(|a| a.tha),
            arp_tpa: arp.map(|a| a.tpa),
            truncated: v.truncated(),
        }
    }
}

/// "ipv4", "ipv6", "arp" or `0x88cc`-style hex.
pub fn ethertype_name(ethertype: u16) -> String {
    match ethertype {
        ETH_P_IP => "ipv4".into(),
        ETH_P_IPV6 => "ipv6".into(),
        ETH_P_ARP => "arp".into(),
        other => format!("0x{other:04x}"),
    }
}

/// "tcp", "udp", "icmp", "icmpv6" or the number.
pub fn proto_name(proto: u8) -> String {
    match proto {
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_ICMP => "icmp".into(),
        IPPROTO_ICMPV6 => "icmpv6".into(),
        other => other.to_string(),
    }
}

/// "request", "reply" or the number.
pub fn arp_op_name(op: u16) -> String {
    match op {
        1 => "request".into(),
        2 => "reply".into(),
        other => other.to_string(),
    }
}

/// TCP flags the way tcpdump prints them: `S`, `S.`, `P.`, `F.`, `R`, `R.`, `.` …
pub fn tcp_flags(flags: u8) -> String {
    const LETTERS: [(u8, char); 7] = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    let mut s: String = LETTERS.iter().filter(|(bit, _)| flags & bit != 0).map(|&(_, c)| c).collect();
    if flags & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

// ---- generated events ----

/// One of `picks`, or (one time in four) any value.
fn pick<T: Copy>(rng: &mut Rng, picks: &[T], any: impl FnOnce(u64) -> T) -> T {
    let r = rng.next_u64();
    if r.is_multiple_of(4) { any(rng.next_u64()) } else { picks[(r >> 8) as usize % picks.len()] }
}

/// 16 address bytes: IPv6 with and without zero runs (every group zero or not at random, of
/// every hex width), IPv4-mapped, `::`, `::1`, all ones; the first 4 bytes serve as IPv4.
fn address(rng: &mut Rng) -> [u8; 16] {
    let fixed = ["::", "::1", "::ffff:10.244.1.5", "::ffff:0.0.0.0", "fe80::1", "ff02::1:ff00:1", "1:0:0:2:0:0:0:3"];
    match rng.next_u64() % 8 {
        0 => fixed[rng.next_u64() as usize % fixed.len()].parse::<std::net::Ipv6Addr>().unwrap().octets(),
        1 => [0xff; 16],
        _ => {
            let mut groups = [0u16; 8];
            for g in &mut groups {
                let r = rng.next_u64();
                if r % 2 == 1 {
                    *g = (r >> 16) as u16 >> ((r >> 40) % 16);
                }
            }
            std::net::Ipv6Addr::from(groups).octets()
        }
    }
}

fn mac(rng: &mut Rng) -> [u8; 6] {
    match rng.next_u64() % 6 {
        0 => [0; 6],
        1 => [0xff; 6],
        _ => rng.next_u64().to_be_bytes()[..6].try_into().unwrap(),
    }
}

/// A packet event with random-ish fields: any combination of `valid` bits (also ones the
/// parser never sets together), every protocol, ICMP type and ARP op the printers name, zero
/// and maximum numbers, VLAN counts past the two stored.
fn arbitrary_event(rng: &mut Rng) -> PacketEvent {
    let bits = [
        valid::L2,
        valid::ARP,
        valid::IPV4,
        valid::IPV6,
        valid::PORTS,
        valid::TCP,
        valid::UDP,
        valid::ICMP,
        valid::ICMP_ECHO,
        valid::ND_TARGET,
        valid::ARP_OP,
        valid::TRUNCATED,
    ];
    let mut valid_bits = bits.iter().filter(|_| rng.next_u64().is_multiple_of(2)).fold(0, |v, b| v | b);
    if rng.next_u64().is_multiple_of(8) {
        valid_bits = rng.next_u64() as u16;
    }
    let p = Packet {
        valid: valid_bits,
        ethertype: pick(rng, &[0x0800, 0x86dd, 0x0806, 0x88cc, 0, 0xffff], |r| r as u16),
        dst_mac: mac(rng),
        src_mac: mac(rng),
        vlan: [pick(rng, &[0, 100, 0x0fff, 0xe064, 0xffff], |r| r as u16), rng.next_u64() as u16],
        nvlan: pick(rng, &[0, 1, 2, 3, 255], |r| r as u8),
        ip_proto: pick(rng, &[IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, 0, 132, 255], |r| r as u8),
        ttl: pick(rng, &[0, 1, 64, 255], |r| r as u8),
        ip_flags: pick(rng, &[0, ipf::DF, ipf::MF | ipf::FRAGMENT, ipf::FRAGMENT, 0xff], |r| r as u8),
        ip_id: pick(rng, &[0, 1, 0xfffff, u32::MAX], |r| r as u32),
        src_ip: address(rng),
        dst_ip: address(rng),
        sport: pick(rng, &[0, 1, 80, 65535], |r| r as u16),
        dport: pick(rng, &[0, 53, 65535], |r| r as u16),
        tcp_seq: pick(rng, &[0, 1, u32::MAX], |r| r as u32),
        tcp_ack: pick(rng, &[0, u32::MAX], |r| r as u32),
        tcp_win: pick(rng, &[0, 502, 65535], |r| r as u16),
        tcp_flags: pick(rng, &[0, 0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0xff], |r| r as u8),
        icmp_type: pick(rng, &[0, 3, 8, 11, 128, 129, 133, 134, 135, 136, 143, 255], |r| r as u8),
        icmp_code: pick(rng, &[0, 1, 255], |r| r as u8),
        icmp_id: pick(rng, &[0, 7, 65535], |r| r as u16),
        icmp_seq: pick(rng, &[0, 3, 65535], |r| r as u16),
        udp_len: pick(rng, &[0, 7, 8, 9, 20, 65535], |r| r as u16),
        nd_target: address(rng),
        arp_op: pick(rng, &[0, 1, 2, 3, 65535], |r| r as u16),
        arp_sha: mac(rng),
        arp_spa: address(rng)[..4].try_into().unwrap(),
        arp_tha: mac(rng),
        arp_tpa: address(rng)[..4].try_into().unwrap(),
        ..Packet::default()
    };
    let direction = pick(rng, &[dir::INGRESS, dir::EGRESS], |r| r as u8);
    let ifindex = pick(
        rng,
        &[0, bench::UPLINK, bench::FIRST_CALI, bench::FIRST_CALI + 1, bench::FIRST_CALI + 3, u32::MAX],
        |r| r as u32,
    );
    let fib_ret = pick(rng, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 255], |r| r as u8);
    let fib_ifindex = pick(rng, &[0, bench::UPLINK, bench::FIRST_CALI + 1], |r| r as u32);
    let mut ev = bench::tcp_event(0, bench::pod_ip(0), direction, ifindex, fib_ret, fib_ifindex);
    ev.header.ts_ns = pick(rng, &[0, 1_000_000, u64::MAX], |r| r);
    ev.len = pick(rng, &[0, 60, 1514, 65535, u32::MAX], |r| r as u32);
    ev.packet = p;
    ev
}

/// Interface names (also ones JSON must escape, and ones longer or wider than the text
/// column) and times (whole seconds, every fraction width, before the epoch, past what RFC
/// 3339 or the time crate can hold).
fn arbitrary_meta(rng: &mut Rng) -> Meta<'static> {
    const IFACES: [&str; 9] = [
        "cali1234567890a",
        "eth0",
        "",
        "a-name-longer-than-15",
        "we\"ird\\name",
        "ünïcödé",
        "tab\tand\u{1}ctl",
        "x\u{7f}",
        "⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠⚠",
    ];
    let iface = IFACES[rng.next_u64() as usize % IFACES.len()];
    let base = 1_764_000_000_000_000_000i128;
    let wall_ns = match rng.next_u64() % 8 {
        0 => pick(rng, &[0, -1, -1_000_000_000, 253_402_300_800_000_000_000, i128::MAX, i128::MIN], i128::from),
        1 => base + i128::from(rng.next_u64() % 1_000_000_000 / 10u64.pow((rng.next_u64() % 10) as u32)),
        2 => base,
        _ => base + i128::from(rng.next_u64() % 100_000_000_000),
    };
    Meta { iface, wall_ns }
}

fn old_text(ev: &PacketEvent, meta: Meta<'_>) -> String {
    let mut line = String::new();
    text_packet(&mut line, ev, meta);
    line.push('\n');
    line
}

fn old_json(ev: &PacketEvent, meta: Meta<'_>) -> Vec<u8> {
    let mut line = serde_json::to_vec(&JsonPacket::new(ev, meta)).unwrap();
    line.push(b'\n');
    line
}

fn new_line(format: Format, ev: &PacketEvent, meta: Meta<'_>, annotation: Option<&Annotation<'_>>) -> Vec<u8> {
    // Something already in the buffer stays untouched.
    let mut buf = b"previous line\n".to_vec();
    write_annotated(format, &mut buf, ev, meta, annotation).unwrap();
    buf.split_off(14)
}

const EVENTS: u64 = 60_000;

/// Runs `check` on [`EVENTS`] generated events (numbered, for the failure message).
fn for_generated(seed: u64, mut check: impl FnMut(u64, &PacketEvent, Meta<'static>)) {
    let mut rng = Rng(seed);
    for i in 0..EVENTS {
        let (ev, meta) = (arbitrary_event(&mut rng), arbitrary_meta(&mut rng));
        check(i, &ev, meta);
    }
}

#[test]
fn text_lines_equal_the_write_based_printer() {
    for_generated(0x1234_5678_9abc_def1, |i, ev, meta| {
        let new = new_line(Format::Text, ev, meta, None);
        assert_eq!(String::from_utf8(new).unwrap(), old_text(ev, meta), "event {i}: {ev:?} {meta:?}");
    });
}

#[test]
fn json_lines_equal_the_serde_derive() {
    for_generated(0x0fed_cba9_8765_4321, |i, ev, meta| {
        let new = new_line(Format::Json, ev, meta, None);
        let old = old_json(ev, meta);
        let value: serde_json::Value = serde_json::from_slice(&new).unwrap();
        assert_eq!(value, serde_json::from_slice::<serde_json::Value>(&old).unwrap(), "event {i}: {ev:?} {meta:?}");
        // Not only the same value: the same bytes (key order, number and string forms).
        assert_eq!(String::from_utf8(new).unwrap(), String::from_utf8(old).unwrap(), "event {i}");
    });
}

/// With the annotation (against the fixture Calico node, so that routes, neighbours, FIB
/// verdicts and notes all occur): the packet part as the old printers wrote it, then the
/// annotation (held to its serde derive in `annotate::render`).
#[test]
fn annotated_lines_equal_the_old_composition() {
    let mirror = bench::calico_node(4);
    let mut rng = Rng(0x5555_aaaa_3333_cccc);
    let mut seen_notes = 0;
    for i in 0..EVENTS / 4 {
        let (mut ev, meta) = (arbitrary_event(&mut rng), arbitrary_meta(&mut rng));
        if rng.next_u64().is_multiple_of(2) {
            // Addresses the node has routes and neighbours for.
            ev.packet.valid = (ev.packet.valid | valid::IPV4) & !valid::IPV6;
            ev.packet.src_ip[..4].copy_from_slice(&bench::pod_ip((rng.next_u64() % 5) as u32).octets());
            ev.packet.dst_ip[..4].copy_from_slice(&bench::pod_ip((rng.next_u64() % 5) as u32).octets());
        }
        let a = annotate::annotate(&mirror, &ev);
        seen_notes += usize::from(!a.notes.is_empty());

        let mut text = old_text(&ev, meta);
        text.pop();
        text.push_str(&a.to_string());
        text.push('\n');
        assert_eq!(String::from_utf8(new_line(Format::Text, &ev, meta, Some(&a))).unwrap(), text, "event {i}");

        let new = new_line(Format::Json, &ev, meta, Some(&a));
        let mut expected = serde_json::to_value(JsonPacket::new(&ev, meta)).unwrap();
        let serde_json::Value::Object(fields) = serde_json::to_value(&a).unwrap() else { panic!("not an object") };
        expected.as_object_mut().unwrap().extend(fields);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&new).unwrap(), expected, "event {i}: {ev:?} {a:?}");
        let mut old = old_json(&ev, meta);
        old.truncate(old.len() - 2);
        a.write_json_fields(&mut old).unwrap();
        old.extend_from_slice(b"}\n");
        assert_eq!(String::from_utf8(new).unwrap(), String::from_utf8(old).unwrap(), "event {i}");
    }
    assert!(seen_notes > 100, "the generated events should provoke notes ({seen_notes})");
}

/// The generator reaches every line shape the text printer has.
#[test]
fn generated_events_reach_every_branch() {
    let mut lines = Vec::new();
    for_generated(0x1234_5678_9abc_def1, |_, ev, meta| lines.push(old_text(ev, meta)));
    for shape in [
        "[truncated frame]",
        "vlan ",
        "ARP, Request who-has",
        "ARP, Reply",
        "ARP, op 3\n",
        "(not Ethernet/IPv4)",
        "Flags [",
        ", ack ",
        ": tcp",
        "UDP, length",
        "UDP\n",
        "ip-proto-",
        "ICMP echo request",
        "ICMP echo reply",
        "ICMP unreachable",
        "ICMP time exceeded",
        "ICMP type",
        "ICMP\n",
        "ICMP6\n",
        "ICMP6, echo request",
        "ICMP6, echo reply",
        "neighbor solicitation",
        "neighbor advertisement",
        "router solicitation",
        "router advertisement",
        "multicast listener report v2",
        "ICMP6, type",
        "(frag)",
        "[truncated]",
        "::",
        "::ffff:",
        " Out ",
        " In  ",
        "Unknown (0x",
    ] {
        assert!(lines.iter().any(|l| l.contains(shape)), "no generated line has {shape:?}");
    }
}

#[test]
fn names_equal_the_old_helpers() {
    for flags in 0..=u8::MAX {
        assert_eq!(packet::tcp_flags(flags), tcp_flags(flags));
    }
    for n in 0..=u16::MAX {
        assert_eq!(packet::ethertype_name(n), ethertype_name(n));
        assert_eq!(packet::arp_op_name(n), arp_op_name(n));
    }
    for n in 0..=u8::MAX {
        assert_eq!(packet::proto_name(n), proto_name(n));
    }
}
