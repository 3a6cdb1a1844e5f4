//! A varied set of Ethernet frames, built byte by byte: every protocol layer pcap-filter
//! primitives look at, and malformed ones (truncated headers, IPv4 options, IPv6
//! extension-header chains, fragments, stacked VLANs, ICMP errors quoting inner headers).

const A5: [u8; 4] = [10, 244, 1, 5];
const A6: [u8; 4] = [10, 244, 1, 6];
const A9: [u8; 4] = [10, 244, 2, 9];
const EXT: [u8; 4] = [192, 168, 7, 1];
const DNS: [u8; 4] = [8, 8, 8, 8];
const V6A: [u8; 16] = [0xfd, 0, 2, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
const V6B: [u8; 16] = [0xfd, 0, 2, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6];
const V6X: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const CALI_MAC: [u8; 6] = [0xee; 6];
const BCAST: [u8; 6] = [0xff; 6];
const MCAST6: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

pub fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    // The source MAC is set per frame by the sender (it numbers the frames).
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn vlan(tci: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = tci.to_be_bytes().to_vec();
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, opts: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    let ihl = 5 + opts.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(opts);
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// An IPv6 extension header of 8 bytes (hop-by-hop, routing, destination options) or a
/// fragment header (44), in front of `payload`.
fn ext6(kind: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = match kind {
        44 => vec![next, 0, 0, 0, 0, 0, 0, 1],
        _ => vec![next, 0, 1, 4, 0, 0, 0, 0],
    };
    h.extend_from_slice(payload);
    h
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h.extend_from_slice(payload);
    h
}

fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0, 0, 7, 0, 1];
    h.extend_from_slice(rest);
    h
}

fn arp(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    a
}

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Well-formed frames of every kind.
fn whole() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let v4 = |dst, src, d, proto, opts: &[u8], frag, p: &[u8]| eth(dst, 0x0800, &ipv4(src, d, proto, opts, frag, p));
    for (sport, dport) in [(40000, 53), (53, 40000), (5353, 5353), (123, 123), (1500, 2500), (9, 8080)] {
        v.push(v4(CALI_MAC, A5, DNS, UDP, &[], 0, &udp(sport, dport, b"payload!")));
    }
    for flags in [SYN, SYN | ACK, ACK, FIN | ACK, RST, PSH | ACK, FIN | PSH | SYN] {
        for (sport, dport) in [(40001, 80), (443, 40002), (22, 2222)] {
            v.push(v4(CALI_MAC, A5, A6, TCP, &[], 0x4000, &tcp(sport, dport, flags, b"")));
        }
    }
    v.push(v4(CALI_MAC, A5, A9, TCP, &[], 0, &tcp(1, 1999, PSH | ACK, &[0x42; 1300])));
    v.push(v4(BCAST, A5, [255; 4], UDP, &[], 0, &udp(68, 67, &[0; 200])));
    v.push(v4(CALI_MAC, A6, EXT, ICMP, &[], 0, &icmp(8, 0, b"ping")));
    v.push(v4(CALI_MAC, EXT, A5, ICMP, &[], 0, &icmp(0, 0, b"pong")));
    // ICMP errors quoting the offending datagram's headers.
    let quoted_udp = ipv4(A5, DNS, UDP, &[], 0, &udp(40000, 53, b""));
    v.push(v4(CALI_MAC, A5, A6, ICMP, &[], 0, &icmp(3, 3, &quoted_udp)));
    let quoted_tcp = ipv4(A6, EXT, TCP, &[], 0, &tcp(80, 40003, SYN, b""));
    v.push(v4(CALI_MAC, A9, A6, ICMP, &[], 0, &icmp(11, 0, &quoted_tcp)));
    // IPv4 options (IHL 6 and 15) in front of TCP/UDP.
    v.push(v4(CALI_MAC, A5, A6, TCP, &[1, 1, 1, 1], 0, &tcp(5000, 80, SYN, b"")));
    v.push(v4(CALI_MAC, A5, A6, UDP, &[1; 40], 0, &udp(7, 53, b"x")));
    // Fragments: a first one (MF) and later ones (offset != 0, no L4 header).
    v.push(v4(CALI_MAC, A5, A6, UDP, &[], 0x2000, &udp(1234, 53, &[0; 64])));
    v.push(v4(CALI_MAC, A5, A6, UDP, &[], 0x0009, &[0, 53, 0, 53, 0, 0, 0, 0]));
    v.push(v4(CALI_MAC, A5, A6, TCP, &[], 0x2010, &[0, 80, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2]));
    v.push(v4(CALI_MAC, A5, A6, 47, &[], 0, &[0; 24]));
    // IPv6, with extension-header chains.
    let v6 = |src, dst, next, p: &[u8]| eth(MCAST6, 0x86dd, &ipv6(src, dst, next, p));
    v.push(v6(V6A, V6B, UDP, &udp(5000, 53, b"q")));
    v.push(v6(V6A, V6X, TCP, &tcp(40000, 443, SYN, b"")));
    v.push(v6(V6X, V6A, TCP, &tcp(443, 40000, SYN | ACK, b"")));
    v.push(v6(V6A, V6B, ICMP6, &icmp(128, 0, b"ping6")));
    v.push(v6(V6A, V6B, ICMP6, &icmp(135, 0, &V6B)));
    v.push(v6(V6A, V6B, 0, &ext6(0, TCP, &tcp(1, 80, SYN, b""))));
    v.push(v6(V6A, V6B, 0, &ext6(0, 43, &ext6(43, 60, &ext6(60, UDP, &udp(9, 53, b"chain"))))));
    v.push(v6(V6A, V6B, 44, &ext6(44, UDP, &udp(9, 53, b"frag"))));
    v.push(v6(V6B, V6A, 60, &ext6(60, ICMP6, &icmp(129, 0, b"echo"))));
    // VLANs: single 802.1Q (100, 200 with priority bits), stacked 802.1ad + 802.1Q.
    v.push(eth(CALI_MAC, 0x8100, &vlan(100, 0x0800, &ipv4(A5, A6, TCP, &[], 0, &tcp(3, 80, SYN, b"")))));
    v.push(eth(CALI_MAC, 0x8100, &vlan(0x6000 | 200, 0x0800, &ipv4(A5, DNS, UDP, &[], 0, &udp(3, 53, b"")))));
    v.push(eth(CALI_MAC, 0x8100, &vlan(100, 0x86dd, &ipv6(V6A, V6B, UDP, &udp(3, 53, b"v")))));
    let inner = vlan(100, 0x0800, &ipv4(A9, A6, UDP, &[], 0, &udp(4, 53, b"qinq")));
    v.push(eth(CALI_MAC, 0x88a8, &vlan(10, 0x8100, &inner)));
    v.push(eth(CALI_MAC, 0x8100, &vlan(300, 0x8100, &vlan(400, 0x0806, &arp(1, A5, A6)))));
    // ARP, other ethertypes, an 802.3 length field.
    v.push(eth(BCAST, 0x0806, &arp(1, A5, [169, 254, 1, 1])));
    v.push(eth(CALI_MAC, 0x0806, &arp(2, A6, A5)));
    v.push(eth(CALI_MAC, 0x88cc, &[2, 7, 4, 0, 0, 0, 0, 0, 0, 0]));
    v.push(eth(CALI_MAC, 0x8847, &[0, 0, 0x11, 64, 0x45, 0]));
    v.push(eth(CALI_MAC, 0x002e, &[0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00, 0x45]));
    v
}

/// The whole frames and truncated copies of them (cut inside each header).
pub fn all() -> Vec<Vec<u8>> {
    let whole = whole();
    let mut out = whole.clone();
    for f in &whole {
        for cut in [14, 15, 17, 20, 23, 26, 30, 34, 36, 38, 42, 47, 54, 58, 62, 66] {
            if cut < f.len() {
                out.push(f[..cut].to_vec());
            }
        }
    }
    out
}

/// At least 40 expressions, covering every primitive class of pcap-filter.
pub const EXPRESSIONS: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "host 10.244.1.5",
    "src host 10.244.1.6",
    "dst host 8.8.8.8 or dst host 192.168.7.1",
    "net 10.244.0.0/16 and not src net 10.244.1.0/24",
    "dst net 192.168.0.0 mask 255.255.0.0",
    "host fd00:244::5",
    "net 2001:db8::/32",
    "port 53",
    "udp src port 53",
    "tcp dst port 80",
    "portrange 1000-3000",
    "tcp portrange 400-500",
    "udp and not port 53",
    "tcp",
    "icmp",
    "icmp6",
    "ip proto 47",
    "ip6 proto 0",
    "ether host ee:ee:ee:ee:ee:ee",
    "ether dst ff:ff:ff:ff:ff:ff",
    "ether broadcast",
    "ether multicast",
    "ether proto 0x88cc",
    "ether src 02:fe:00:02:00:07 or ether src 02:fe:00:02:01:00",
    "vlan",
    "vlan 100",
    "vlan 100 and tcp",
    "vlan and vlan 100",
    "vlan 10 and vlan 100 and udp",
    "greater 500",
    "less 60",
    "len >= 40 and len <= 62",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "tcp[tcpflags] == tcp-syn|tcp-ack",
    "tcp[13] & 4 != 0",
    "icmp[icmptype] == icmp-unreach or icmp[icmptype] == icmp-timxceed",
    "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
    "ip[6:2] & 0x1fff != 0",
    "ip[6] & 0x20 != 0",
    "ip[0] & 0xf > 5",
    "udp[8:4] = 0x7061796c",
    "ip[2:2] - ((ip[0] & 0xf) << 2) > 100",
    "ip6[6] == 17 or ip6[40] == 17",
    "(tcp or udp) and (port 53 or port 80) and not host 10.244.2.9",
    "not (ip or ip6 or arp)",
    "arp[6:2] = 2",
    "ip and (ip[8] * 2 == 128) and (udp[0:2] % 1000 == 0 or tcp[2:2] / 10 == 8)",
    "ip6 multicast or ether src 02:fe:00:03:00:05",
];
