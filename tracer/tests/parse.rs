//! The eBPF frame parser (tracer-ebpf/src/parse.rs), run on the host over frames that etherparse
//! builds — cut at every length and bent out of shape — to hold it to its promise: a short or
//! malformed frame gives a partial event with only what is valid, never a wrong field.

use etherparse::{ArpEthIpv4Packet, ArpOperation, PacketBuilder, VlanId};
use tracer_common::{Packet, ipf, valid};
use tracer_ebpf::parse::{Frame, parse};

/// A frame in memory; reads past its end fail, like `bpf_skb_load_bytes`.
struct Bytes<'a>(&'a [u8]);

impl Frame for Bytes<'_> {
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        self.0.get(offset..offset.checked_add(N)?)?.try_into().ok()
    }
}

fn parsed(frame: &[u8]) -> Packet {
    let mut p = Packet::default();
    parse(&Bytes(frame), &mut p, None);
    p
}

const SRC: [u8; 6] = [0x92, 0x7d, 0, 0, 0, 1];
const DST: [u8; 6] = [0xee; 6];

fn tcp_v4_vlan() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4([10, 244, 1, 5], [10, 244, 1, 6], 64)
        .tcp(40000, 8080, 1000, 64240)
        .syn()
        .ack(77);
    let payload = b"hello";
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).unwrap();
    out
}

fn udp_v6() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(SRC, DST)
        .ipv6("fd00:244::5".parse::<std::net::Ipv6Addr>().unwrap().octets(), "fd00:244::6".parse::<std::net::Ipv6Addr>().unwrap().octets(), 63)
        .udp(5353, 53);
    let mut out = Vec::new();
    builder.write(&mut out, b"query").unwrap();
    out
}

fn neighbour_solicitation() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(SRC, [0x33, 0x33, 0xff, 0xee, 0xee, 0xee])
        .ipv6("fd00:244::5".parse::<std::net::Ipv6Addr>().unwrap().octets(), "ff02::1:ffee:eeee".parse::<std::net::Ipv6Addr>().unwrap().octets(), 255)
        .icmpv6_raw(135, 0, [0; 4]);
    let target = "fe80::ecee:eeff:feee:eeee".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut out = Vec::new();
    builder.write(&mut out, &target).unwrap();
    out
}

fn arp_request() -> Vec<u8> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: SRC,
        sender_ipv4: [10, 244, 1, 5],
        target_mac: [0; 6],
        target_ipv4: [169, 254, 1, 1],
    };
    let builder = PacketBuilder::ethernet2(SRC, [0xff; 6]).arp(arp.to_arp_packet());
    let mut out = Vec::new();
    builder.write(&mut out).unwrap();
    out
}

fn icmp_echo_v4() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(SRC, DST).ipv4([10, 244, 1, 5], [10, 99, 0, 2], 64).icmpv4_echo_request(7, 3);
    let mut out = Vec::new();
    builder.write(&mut out, &[0u8; 56]).unwrap();
    out
}

#[test]
fn whole_frames_parse_fully() {
    let p = parsed(&tcp_v4_vlan());
    assert_eq!(p.valid & valid::TRUNCATED, 0);
    assert_eq!((p.src_mac, p.dst_mac, p.ethertype), (SRC, DST, 0x0800));
    assert_eq!((p.nvlan, p.vlan[0] & 0x0fff), (1, 100));
    assert_eq!((&p.src_ip[..4], &p.dst_ip[..4]), (&[10, 244, 1, 5][..], &[10, 244, 1, 6][..]));
    assert_eq!((p.ip_proto, p.ttl), (6, 64));
    assert_eq!((p.sport, p.dport, p.tcp_seq, p.tcp_ack, p.tcp_win), (40000, 8080, 1000, 77, 64240));
    assert_eq!(p.tcp_flags, 0x12, "SYN+ACK");
    assert_ne!(p.ip_flags & ipf::DF, 0, "etherparse sets DF by default");

    let p = parsed(&udp_v6());
    assert_eq!(p.valid & (valid::IPV6 | valid::UDP), valid::IPV6 | valid::UDP);
    assert_eq!((p.sport, p.dport, p.udp_len, p.ttl), (5353, 53, 13, 63));

    let p = parsed(&neighbour_solicitation());
    assert_eq!((p.icmp_type, p.ip_proto), (135, 58));
    assert_eq!(std::net::Ipv6Addr::from(p.nd_target).to_string(), "fe80::ecee:eeff:feee:eeee");

    let p = parsed(&arp_request());
    assert_eq!(p.valid & valid::ARP, valid::ARP);
    assert_eq!((p.arp_op, p.arp_sha, p.arp_spa, p.arp_tpa), (1, SRC, [10, 244, 1, 5], [169, 254, 1, 1]));

    let p = parsed(&icmp_echo_v4());
    assert_eq!((p.icmp_type, p.icmp_code, p.icmp_id, p.icmp_seq), (8, 0, 7, 3));
}

/// The fields each `valid` bit vouches for.
fn vouched(p: &Packet) -> Vec<(u16, Vec<u64>)> {
    let mut out = Vec::new();
    let mut part = |bit: u16, fields: Vec<u64>| {
        if p.valid & bit != 0 {
            out.push((bit, fields));
        }
    };
    let bytes = |b: &[u8]| b.iter().map(|&x| u64::from(x)).collect::<Vec<_>>();
    // The ethertype is checked on its own (see below): a cut inside the VLAN tags leaves the TPID.
    part(valid::L2, [bytes(&p.src_mac), bytes(&p.dst_mac)].concat());
    part(valid::ARP_OP, vec![u64::from(p.arp_op)]);
    part(valid::ARP, [bytes(&p.arp_sha), bytes(&p.arp_spa), bytes(&p.arp_tha), bytes(&p.arp_tpa)].concat());
    part(valid::IPV4 | valid::IPV6, [bytes(&p.src_ip), bytes(&p.dst_ip), vec![u64::from(p.ttl), u64::from(p.ip_id)]].concat());
    part(valid::PORTS, vec![u64::from(p.sport), u64::from(p.dport)]);
    part(valid::TCP, vec![u64::from(p.tcp_seq), u64::from(p.tcp_ack), u64::from(p.tcp_flags), u64::from(p.tcp_win)]);
    part(valid::UDP, vec![u64::from(p.udp_len)]);
    part(valid::ICMP, vec![u64::from(p.icmp_type), u64::from(p.icmp_code)]);
    part(valid::ICMP_ECHO, vec![u64::from(p.icmp_id), u64::from(p.icmp_seq)]);
    part(valid::ND_TARGET, bytes(&p.nd_target));
    out
}

#[test]
fn every_cut_of_every_frame_gives_only_true_fields() {
    for frame in [tcp_v4_vlan(), udp_v6(), neighbour_solicitation(), arp_request(), icmp_echo_v4()] {
        let whole_packet = parsed(&frame);
        let whole = vouched(&whole_packet);
        for cut in 0..frame.len() {
            let p = parsed(&frame[..cut]);
            if p.valid & valid::L2 != 0 && p.ethertype != whole_packet.ethertype {
                assert_eq!(p.ethertype, 0x8100, "cut at {cut}: ethertype");
                assert_ne!(p.valid & valid::TRUNCATED, 0, "cut at {cut}: inside a VLAN tag, not flagged");
            }
            for (bit, fields) in vouched(&p) {
                let full = whole.iter().find(|(b, _)| *b == bit).expect("a part the whole frame lacks");
                assert_eq!(&fields, &full.1, "cut at {cut}: part {bit:#x} differs from the whole frame's");
            }
            // A cut inside the headers must say so.
            let parts = vouched(&p).len();
            if parts < whole.len() {
                assert_ne!(p.valid & valid::TRUNCATED, 0, "cut at {cut} lost parts without TRUNCATED");
            }
        }
    }
}

#[test]
fn malformed_headers_are_not_believed() {
    // IPv4 with IHL 3 (less than the 20-byte minimum): L2 only, flagged.
    let mut bad_ihl = icmp_echo_v4();
    bad_ihl[14] = 0x43;
    let p = parsed(&bad_ihl);
    assert_eq!(p.valid & valid::IPV4, 0);
    assert_ne!(p.valid & valid::TRUNCATED, 0);
    assert_eq!(p.src_ip, [0; 16]);

    // An ethertype that says IPv6 over an IPv4 header: version mismatch, not parsed.
    let mut wrong_version = icmp_echo_v4();
    wrong_version[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let p = parsed(&wrong_version);
    assert_eq!(p.valid & (valid::IPV4 | valid::IPV6), 0);

    // ARP for another protocol: op is read, addresses are not.
    let mut odd_arp = arp_request();
    odd_arp[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
    let p = parsed(&odd_arp);
    assert_eq!(p.valid & (valid::ARP_OP | valid::ARP), valid::ARP_OP);
    assert_eq!(p.arp_op, 1);

    // A later IPv4 fragment: no ports read from its payload.
    let mut fragment = tcp_v4_vlan();
    let ip = 18;
    fragment[ip + 6..ip + 8].copy_from_slice(&0x0010u16.to_be_bytes());
    let p = parsed(&fragment);
    assert_ne!(p.ip_flags & ipf::FRAGMENT, 0);
    assert_eq!(p.valid & valid::PORTS, 0);

    // A tag the driver took off the frame comes first.
    let mut p = Packet::default();
    parse(&Bytes(&tcp_v4_vlan()), &mut p, Some(7));
    assert_eq!((p.nvlan, p.vlan[0], p.vlan[1] & 0x0fff), (2, 7, 100));
}
