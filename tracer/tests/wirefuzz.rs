//! The in-kernel frame parser fed random and mutated frames live: a pod writes them with a raw
//! AF_PACKET socket onto its eth0, so they cross the veth and meet vethtrace's TC program on the
//! cali as real traffic does. Every frame must be reported — as many events as the kernel's
//! rx_packets counted, with the same lengths as sent — and the program must have loaded (it did
//! on this kernel when vethtrace started at all: no verifier rejection).

mod common;

use std::{collections::BTreeMap, os::fd::FromRawFd as _, time::Duration};

use common::{
    Node,
    bpf::in_netns,
    system::{Proc, exit_counters, link_packets},
};
use rand::{Rng as _, RngExt as _, SeedableRng as _, rngs::StdRng};

const FRAMES: usize = 1500;

/// Valid frames to mutate: ARP, IPv4 TCP/UDP/ICMP, IPv6 UDP, built by etherparse. No VLAN tags:
/// the kernel takes a tag off before TC runs (the frame TC sees is 4 bytes shorter) and frees a
/// frame whose tag is cut short before TC sees it at all, so the sent lengths would not be the
/// oracle (tagged frames are the frame-parser tests' business, tracer/tests/parse.rs).
fn seeds() -> Vec<Vec<u8>> {
    use etherparse::PacketBuilder;
    let (src, dst) = ([0x02, 0, 0, 0, 0, 1], [0xee; 6]);
    let mut out = Vec::new();
    macro_rules! build {
        ($b:expr, $payload:expr) => {{
            let mut v = Vec::new();
            $b.write(&mut v, $payload).unwrap();
            out.push(v);
        }};
    }
    let eth = || PacketBuilder::ethernet2(src, dst);
    build!(eth().ipv4([10, 244, 1, 5], [10, 244, 1, 6], 64).tcp(1, 2, 3, 4), b"x");
    build!(eth().ipv4([10, 244, 1, 5], [10, 244, 1, 6], 64).udp(5, 6), b"hello");
    build!(eth().ipv4([10, 244, 1, 5], [8, 8, 8, 8], 1).icmpv4_echo_request(7, 8), b"ping");
    build!(eth().ipv6([0xfd; 16], [0xfe; 16], 64).udp(9, 10), b"six");
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&src);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&src);
    arp.extend_from_slice(&[10, 244, 1, 5, 0, 0, 0, 0, 0, 0, 169, 254, 1, 1]);
    out.push(arp);
    out
}

/// Half random bytes, half seeds with bytes flipped and the tail cut or grown; 14..=1514 bytes
/// (what a veth forwards).
fn frames(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let seeds = seeds();
    (0..FRAMES)
        .map(|i| {
            let mut f = if i % 2 == 0 {
                let len = rng.random_range(14..=1514);
                let mut f = vec![0u8; len];
                rng.fill_bytes(&mut f);
                f
            } else {
                let mut f = seeds[rng.random_range(0..seeds.len())].clone();
                for _ in 0..rng.random_range(0..6) {
                    let at = rng.random_range(12..f.len());
                    f[at] ^= rng.random::<u8>() | 1;
                }
                let len = rng.random_range(14..=f.len() + 64);
                f.resize(len, rng.random());
                f
            };
            // Our own source MAC, never a multicast one (the kernel would still deliver it, but
            // the bridge-like checks of some kernels count such frames apart).
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
            if matches!([f[12], f[13]], [0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00]) {
                f[13] ^= 0x40;
            }
            f
        })
        .collect()
}

/// Sends each frame once on `iface` of namespace `ns` through an AF_PACKET raw socket.
fn send_raw(ns: &str, iface: &str, frames: Vec<Vec<u8>>) {
    let iface = iface.to_owned();
    in_netns(ns, move || {
        let name = std::ffi::CString::new(iface.clone()).unwrap();
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "no {iface}");
        // SAFETY: socket(2) with constant arguments; the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd we own.
        let _owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; zero is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = i32::try_from(ifindex).unwrap();
        addr.sll_halen = 6;
        for (i, f) in frames.iter().enumerate() {
            // SAFETY: `f` is a readable buffer of f.len() bytes; `addr` a valid sockaddr_ll.
            let n = unsafe {
                libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&raw const addr).cast(),
                    u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap(),
                )
            };
            assert_eq!(n, isize::try_from(f.len()).unwrap(), "frame {i}: {}", std::io::Error::last_os_error());
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
}

#[test]
fn random_and_mutated_frames_through_a_veth_are_all_reported() {
    let node = Node::up("wf");
    let seed = std::env::var("VETHTRACE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let frames = frames(&mut rng);
    let mut sent_lens: BTreeMap<u64, usize> = BTreeMap::new();
    for f in &frames {
        *sent_lens.entry(f.len() as u64).or_default() += 1;
    }
    let cali = node.cali("pod1");
    // The pod's own stack quiet: no IPv6 of its own (router solicitations, MLD), no ARP.
    common::run(node.in_pod("pod1", "ip").args(["link", "set", "eth0", "arp", "off"]));
    common::run(node.in_pod("pod1", "sysctl").args(["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]));
    let mut tracer = Proc::spawn(&node, "wf", &["--iface", &cali, "--no-drops", "--probe", "off"]);
    tracer.wait_ready();
    let (rx0, _) = link_packets(&node, &cali);
    send_raw(&node.pod_ns("pod1"), "eth0", frames);
    std::thread::sleep(Duration::from_millis(500));
    let (rx1, _) = link_packets(&node, &cali);
    assert!(tracer.stop_with(libc::SIGINT).success(), "{}", tracer.stderr());
    let stderr = tracer.stderr();
    let (_, lost, undecodable) = exit_counters(&stderr).expect("exit counters");
    assert_eq!((lost, undecodable), (0, 0), "seed {seed}\n{stderr}");
    let mut seen_lens: BTreeMap<u64, usize> = BTreeMap::new();
    let events = tracer.events();
    for e in events.iter().filter(|e| e["kind"] == "packet" && e["dir"] == "ingress") {
        *seen_lens.entry(e["len"].as_u64().expect("len")).or_default() += 1;
    }
    let seen: usize = seen_lens.values().sum();
    assert_eq!(rx1 - rx0, FRAMES as u64, "seed {seed}: the kernel counted {} of {FRAMES} frames arriving", rx1 - rx0);
    assert_eq!(seen, FRAMES, "seed {seed}: vethtrace reported {seen} of {FRAMES} frames");
    assert_eq!(seen_lens, sent_lens, "seed {seed}: frame lengths reported vs sent");
}
