//! `packet`: a frame TC saw on a traced interface, with the route/neighbour annotation of its
//! flow.

use std::io;

use tracer_common::{dir, kind, section, tcf};

use super::{
    Capture, Captured, DecodeError, Place, Render, Stamp,
    annotation::FlowAnnotation,
    decode::{Sections, parse_frame},
    frame,
};
use crate::output::{Format, key_quoted, write::put};

/// A frame seen by TC, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketEvent {
    pub header: Stamp,
    pub ifindex: u32,
    /// Bytes of the frame on the wire (`skb->len`).
    pub len: u32,
    /// One of `tracer_common::dir`.
    pub dir: u8,
    /// One of `tracer_common::fib`.
    pub fib_ret: u8,
    pub fib_ifindex: u32,
    pub packet: tracer_common::Packet,
    /// The expression's translation matched it (`tcf::TRANSLATED`), not the interpreter.
    pub translated: bool,
}

#[inline(always)]
pub(super) fn decode(header: Stamp, s: &Sections<'_>) -> Result<PacketEvent, DecodeError> {
    let tc = s.tc.ok_or(DecodeError::Missing { kind: kind::PACKET, section: section::TC })?;
    let accel_vlan = (tc.flags & tcf::ACCEL_VLAN != 0).then_some(tc.vlan_tci);
    Ok(PacketEvent {
        header,
        ifindex: tc.ifindex,
        len: tc.len,
        dir: tc.dir,
        fib_ret: tc.fib_ret,
        fib_ifindex: tc.fib_ifindex,
        packet: parse_frame(s.frame(), 0, accel_vlan),
        translated: tc.flags & tcf::TRANSLATED != 0,
    })
}

/// A frame TC saw.
pub(crate) struct PacketRecord<'a> {
    pub place: Place<'a>,
    pub ev: PacketEvent,
    /// The route/neighbour annotation, shared by the packets of one flow.
    pub annotation: &'a FlowAnnotation,
    pub frame: Captured<'a>,
}

fn dir_name(d: u8) -> &'static str {
    if d == dir::EGRESS { "egress" } else { "ingress" }
}

/// `… In  src > dst, ethertype …, length N: <L3/L4 as tcpdump prints it> | <annotation>`; JSON:
/// `dir`, the frame's fields, the annotation's (README order).
impl Render for PacketRecord<'_> {
    const KIND: &'static str = "packet";

    fn place(&self) -> &Place<'_> {
        &self.place
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.ev.dir == dir::EGRESS { b" Out " } else { b" In  " });
        frame::put_text(out, &self.ev);
        out.extend_from_slice(self.annotation.bytes(Format::Text));
    }

    fn put_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        key_quoted!(out, "dir", |o| put(o, dir_name(self.ev.dir)));
        frame::put_json(out, &self.ev);
        out.extend_from_slice(self.annotation.bytes(Format::Json));
        Ok(())
    }

    /// The annotation (the frame says the rest).
    fn put_comment(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.annotation.bytes(Format::Text));
    }

    fn capture(&self) -> Option<Capture<'_>> {
        Some(Capture {
            frame: self.frame,
            protocol: 0,
            len: self.ev.len,
            dir: Some(self.ev.dir),
            comment_once: Some(self.annotation.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::events::tests::{calia, line_of};
    use tracer_common::{Packet, valid};

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

    /// The event's line in `format`, unannotated.
    fn line(ev: &PacketEvent, format: Format) -> Vec<u8> {
        let place = Place { iface: Cow::Borrowed("cali1234567890a"), ..calia(ev.ifindex, 0) };
        let place = Place { wall_ns: 1_764_000_000_123_456_789, ..place };
        let annotation = FlowAnnotation::default();
        line_of(&PacketRecord { place, ev: *ev, annotation: &annotation, frame: Captured::default() }, format)
    }

    fn text(ev: &PacketEvent) -> String {
        String::from_utf8(line(ev, Format::Text)).unwrap().trim_end().to_owned()
    }

    fn json(ev: &PacketEvent) -> serde_json::Value {
        serde_json::from_slice(&line(ev, Format::Json)).unwrap()
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
