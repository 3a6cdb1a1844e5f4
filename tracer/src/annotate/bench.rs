//! The annotation path's cost: synthetic ring-buffer records through decode + annotate + format
//! into a buffer, on one core, against a mirror shaped like a Calico node.
//!
//! A plain function (no bench harness) so that `cargo xtask bench` or a hidden subcommand can
//! call it; run it in release mode.

use std::{
    cell::Cell,
    io::{self, Write},
    net::{IpAddr, Ipv4Addr},
    rc::Rc,
    time::Instant,
};

use tracer_common::{
    FrameSection, Packet, RECORD_VERSION, RecordHeader, SectionHeader, TcRecord, TcSection, dir, fib, kind, section,
    valid,
};

use crate::{
    pipeline::{Analyser, Pipeline, Shown},
    events::{Captured, Decoder, Event, PacketEvent, PacketRecord, Place, Stamp},
    mirror::{
        Mirror,
        links::Link,
        neigh::{NeighState, NeighUpdate, Neighbour},
        prefix::{Family, Prefix},
        routes::{NextHop, RT_TABLE_LOCAL, RT_TABLE_MAIN, Route, RouteKind},
        rules::Rule,
        sysctl::{DevConf, IFINDEX_ALL, NetconfMessage},
    },
    output::Format,
    packet::Mac,
    writers::{
        EventWriter as _,
        pcapng::{PcapngOptions, PcapngWriter},
    },
};

/// ifindex of the uplink in [`calico_node`]; pod `n` (from 0) has its cali at `FIRST_CALI + n`.
pub const UPLINK: u32 = 2;
pub const FIRST_CALI: u32 = 10;
pub const CALI_MAC: Mac = Mac([0xee; 6]);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

/// Pod `n`'s address: 10.244.1.5, 10.244.1.6, …
pub fn pod_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 1, 5)) + n)
}

/// Pod `n`'s MAC (the pod end of its veth).
pub fn pod_mac(n: u32) -> Mac {
    let b = n.to_be_bytes();
    Mac([0x92, 0x7d, b[0], b[1], b[2], b[3]])
}

pub(crate) fn unicast(dst: IpAddr, len: u8, dev: u32, gateway: Option<IpAddr>, table: u32, kind: RouteKind, scope: u8) -> Route {
    Route {
        dst: Prefix::new(dst, len),
        table,
        kind,
        scope,
        tos: 0,
        metric: 0,
        prefsrc: None,
        nexthops: vec![NextHop { dev, gateway, dead: false, linkdown: false }],
    }
}

fn link(index: u32, name: String, mac: Mac) -> Link {
    Link { index, name, mac: Some(mac), mtu: 1500, up: true, peer_index: Some(2), peer_netns_id: Some(1) }
}

/// A node as scripts/calico-node.sh builds it, with `pods` pods: uplink eth0 10.99.0.1/30 with a
/// default route via 10.99.0.2, one cali per pod with a /32 route, proxy_arp on, forwarding on,
/// and REACHABLE neighbours for every pod and the gateway.
pub fn calico_node(pods: u32) -> Mirror {
    let mut m = Mirror::default();
    m.links.upsert(link(UPLINK, "eth0".into(), Mac([0x9e, 0x52, 0, 0, 0, 1])));
    for fam in [Family::V4, Family::V6] {
        m.rules.insert(Rule::lookup(fam, 0, RT_TABLE_LOCAL));
        m.rules.insert(Rule::lookup(fam, 32766, RT_TABLE_MAIN));
    }
    let node_ip = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    m.routes.insert(unicast(node_ip, 32, UPLINK, None, RT_TABLE_LOCAL, RouteKind::Local, 254), false);
    m.routes.insert(unicast(node_ip, 30, UPLINK, None, RT_TABLE_MAIN, RouteKind::Unicast, 253), false);
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    m.routes.insert(unicast(any, 0, UPLINK, Some(GATEWAY.into()), RT_TABLE_MAIN, RouteKind::Unicast, 0), false);
    let reachable = |mac| Neighbour { state: NeighState::Reachable, lladdr: Some(mac) };
    let gw_mac = Mac([0x9e, 0x52, 0, 0, 0, 2]);
    m.neighbours
        .apply(NeighUpdate { dev: UPLINK, ip: GATEWAY.into(), proxy: false, neighbour: reachable(gw_mac) }, true);
    let conf = DevConf { forwarding: Some(true), rp_filter: Some(0), proxy_neigh: Some(false) };
    m.sysctls.apply(NetconfMessage { family: Family::V4, ifindex: IFINDEX_ALL, conf });
    for n in 0..pods {
        let dev = FIRST_CALI + n;
        m.links.upsert(link(dev, format!("cali{:011x}", 0xa1b2c3_u32 + n), CALI_MAC));
        let ip = IpAddr::V4(pod_ip(n));
        m.routes.insert(unicast(ip, 32, dev, None, RT_TABLE_MAIN, RouteKind::Unicast, 253), false);
        m.neighbours.apply(NeighUpdate { dev, ip, proxy: false, neighbour: reachable(pod_mac(n)) }, true);
        let conf = DevConf { forwarding: Some(true), rp_filter: Some(0), proxy_neigh: Some(true) };
        m.sysctls.apply(NetconfMessage { family: Family::V4, ifindex: dev as i32, conf });
    }
    m
}

/// A TCP segment from pod `from` to `to` (an address), as the TC program records it.
pub fn tcp_event(from: u32, to: Ipv4Addr, direction: u8, ifindex: u32, fib_ret: u8, fib_ifindex: u32) -> PacketEvent {
    let mut p = Packet {
        valid: valid::L2 | valid::IPV4 | valid::PORTS | valid::TCP,
        ethertype: 0x0800,
        src_mac: pod_mac(from).0,
        dst_mac: CALI_MAC.0,
        ip_proto: 6,
        ttl: 64,
        sport: 40000,
        dport: 80,
        tcp_seq: 1,
        tcp_flags: 0x18,
        tcp_win: 502,
        ..Packet::default()
    };
    p.src_ip[..4].copy_from_slice(&pod_ip(from).octets());
    p.dst_ip[..4].copy_from_slice(&to.octets());
    PacketEvent {
        header: Stamp { ts_ns: 1_000_000, cpu: 0 },
        ifindex,
        len: 1514,
        dir: direction,
        fib_ret,
        fib_ifindex,
        packet: p,
        translated: false,
    }
}

/// The Ethernet/IPv4/TCP frame (no payload) of a [`tcp_event`].
fn tcp_frame(p: &Packet) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&p.dst_mac);
    f.extend_from_slice(&p.src_mac);
    f.extend_from_slice(&p.ethertype.to_be_bytes());
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, p.ttl, p.ip_proto, 0, 0]);
    f.extend_from_slice(&p.src_ip[..4]);
    f.extend_from_slice(&p.dst_ip[..4]);
    f.extend_from_slice(&p.sport.to_be_bytes());
    f.extend_from_slice(&p.dport.to_be_bytes());
    f.extend_from_slice(&p.tcp_seq.to_be_bytes());
    f.extend_from_slice(&p.tcp_ack.to_be_bytes());
    f.extend_from_slice(&[0x50, p.tcp_flags]);
    f.extend_from_slice(&p.tcp_win.to_be_bytes());
    f.extend_from_slice(&[0; 4]);
    f
}

/// The ring-buffer record the TC program writes for `ev` (its frame made from its fields).
fn record_bytes(ev: &PacketEvent) -> Vec<u8> {
    let frame = tcp_frame(&ev.packet);
    let fixed = size_of::<TcRecord>();
    let rec = TcRecord {
        header: RecordHeader {
            kind: kind::PACKET,
            version: RECORD_VERSION,
            cpu: ev.header.cpu,
            len: (fixed + frame.len()) as u32,
            ts_ns: ev.header.ts_ns,
        },
        tc_hdr: SectionHeader::new(section::TC, section::TC_VERSION, size_of::<TcSection>()),
        tc: TcSection {
            ifindex: ev.ifindex,
            len: ev.len,
            fib_ifindex: ev.fib_ifindex,
            dir: ev.dir,
            fib_ret: ev.fib_ret,
            ..TcSection::default()
        },
        frame_hdr: SectionHeader::new(section::FRAME, section::FRAME_VERSION, size_of::<FrameSection>() + frame.len()),
        frame: FrameSection { caplen: frame.len() as u32, ..FrameSection::default() },
    };
    // SAFETY: `TcRecord` is `#[repr(C)]` plain data with explicit padding, fully initialised.
    let mut bytes = unsafe { std::slice::from_raw_parts((&raw const rec).cast::<u8>(), fixed) }.to_vec();
    bytes.extend_from_slice(&frame);
    bytes
}

/// The traffic mix: pod→pod on ingress and egress, pod→outside via the default route.
fn records(pods: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..pods.min(64) {
        let peer = (n + 1) % pods;
        let (cali, peer_cali) = (FIRST_CALI + n, FIRST_CALI + peer);
        out.push(record_bytes(&tcp_event(n, pod_ip(peer), dir::INGRESS, cali, fib::SUCCESS, peer_cali)));
        let mut egress = tcp_event(n, pod_ip(peer), dir::EGRESS, peer_cali, fib::NOT_RUN, 0);
        egress.packet.dst_mac = pod_mac(peer).0;
        out.push(record_bytes(&egress));
        out.push(record_bytes(&tcp_event(
            n,
            Ipv4Addr::new(93, 184, 216, n as u8),
            dir::INGRESS,
            cali,
            fib::SUCCESS,
            UPLINK,
        )));
    }
    out
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    pub events: u64,
    pub seconds: f64,
    /// Bytes of output produced (to show the formatting really happened).
    pub output_bytes: u64,
}

impl BenchReport {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// Which stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stages {
    /// decode + annotate only (no cache: what one annotation costs).
    Annotate,
    /// decode + format in `Format`, no annotation: the baseline the annotation adds to.
    FormatOnly(Format),
    /// The collector's path: the pipeline (names, time, the annotation from the per-flow
    /// cache) + the line in `Format`.
    Full(Format),
    /// [`Stages::Full`] with a new flow (source port) in every record: every annotation a
    /// cache miss.
    NewFlows(Format),
    /// The collector's path with the pcapng writer (`-w`): frame, interface block, comment.
    Pcapng,
}

/// Runs `events` synthetic records through the chosen stages on the calling thread against a
/// node with `pods` pods.
pub fn run(events: u64, pods: u32, stages: Stages) -> BenchReport {
    let mirror = calico_node(pods.max(2));
    let mut records = records(pods.max(2));
    match stages {
        Stages::Annotate | Stages::FormatOnly(_) => run_parts(events, &mirror, &records, stages),
        Stages::Full(format) => run_pipeline(events, mirror, &mut records, false, Sink::Lines(format, Vec::new())),
        Stages::NewFlows(format) => run_pipeline(events, mirror, &mut records, true, Sink::Lines(format, Vec::new())),
        Stages::Pcapng => {
            let written = Rc::new(Cell::new(0));
            let opts = PcapngOptions {
                path: None,
                snaplen: tracer_common::DEFAULT_SNAPLEN,
                file_size: None,
                file_count: None,
            };
            let writer =
                PcapngWriter::with_sink(opts, Box::new(Counting(written.clone()))).expect("a section header to memory");
            let mut report = run_pipeline(events, mirror, &mut records, false, Sink::Pcapng(Box::new(writer)));
            report.output_bytes = written.get();
            report
        }
    }
}

/// [`Stages::Annotate`] and [`Stages::FormatOnly`]: the pieces by themselves.
fn run_parts(events: u64, mirror: &Mirror, records: &[Vec<u8>], stages: Stages) -> BenchReport {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut output_bytes = 0u64;
    let mut decoder = Decoder::default();
    let unannotated = crate::events::annotation::FlowAnnotation::default();
    let start = Instant::now();
    for i in 0..events {
        let bytes = &records[(i % records.len() as u64) as usize];
        let Ok(Event::Packet(ev)) = decoder.decode(bytes).map(|d| d.event) else {
            continue;
        };
        let Stages::FormatOnly(format) = stages else {
            std::hint::black_box(super::annotate(mirror, &ev));
            continue;
        };
        let iface = mirror.links.name(ev.ifindex).unwrap_or("?");
        let ts_ns = ev.header.ts_ns;
        let wall_ns = 1_764_000_000_000_000_000 + i128::from(ts_ns);
        let place = Place { iface: iface.into(), ifindex: ev.ifindex, ts_ns, wall_ns, pod: None };
        let rec = PacketRecord { place, ev, annotation: &unannotated, frame: Captured::default() };
        let _ = crate::events::put_line(format, &mut buf, &rec);
        output_bytes += drain(&mut buf);
    }
    let seconds = start.elapsed().as_secs_f64();
    BenchReport { events, seconds, output_bytes: output_bytes + buf.len() as u64 }
}

/// Empties `buf` once it holds a MiB (as the collector writes once per drain); the bytes it held.
fn drain(buf: &mut Vec<u8>) -> u64 {
    if buf.len() < 1 << 20 {
        return 0;
    }
    let n = buf.len() as u64;
    buf.clear();
    n
}

/// Where the pipeline's records go.
enum Sink {
    Lines(Format, Vec<u8>),
    Pcapng(Box<PcapngWriter>),
}

/// Where the TCP source port of a [`record_bytes`] record's frame starts.
const SPORT_AT: usize = size_of::<TcRecord>() + 14 + 20;

/// The collector's own path, [`Pipeline::run`] then the writer, for `events` records
/// (`new_flows`: each with a source port of its own).
fn run_pipeline(events: u64, mirror: Mirror, records: &mut [Vec<u8>], new_flows: bool, mut sink: Sink) -> BenchReport {
    let mut mirror = mirror;
    let mut pipeline = Pipeline::new(Shown { packets: true, drops: true }, Analyser::new(None, None), None);
    let mut output_bytes = 0u64;
    let start = Instant::now();
    for i in 0..events {
        let n = records.len() as u64;
        let bytes = &mut records[(i % n) as usize];
        if new_flows {
            bytes[SPORT_AT..SPORT_AT + 2].copy_from_slice(&((i / n) as u16).to_be_bytes());
        }
        let Some(rec) = pipeline.run(&mut mirror, None, bytes) else {
            continue;
        };
        match &mut sink {
            Sink::Lines(format, buf) => {
                let _ = rec.put_line(*format, buf);
                output_bytes += drain(buf);
            }
            Sink::Pcapng(writer) => {
                let _ = writer.write(&rec);
            }
        }
    }
    match &mut sink {
        Sink::Lines(_, buf) => output_bytes += buf.len() as u64,
        Sink::Pcapng(writer) => {
            let _ = writer.flush();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    BenchReport { events, seconds, output_bytes }
}

/// Bytes written to it, then dropped: the pcapng writer's sink.
struct Counting(Rc<Cell<u64>>);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.set(self.0.get() + buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_traffic_is_annotated_without_notes() {
        let mirror = calico_node(8);
        let mut decoder = Decoder::default();
        for bytes in records(8) {
            let Ok(Event::Packet(ev)) = decoder.decode(&bytes).map(|d| d.event) else { panic!("undecodable") };
            let a = super::super::annotate(&mirror, &ev);
            assert!(a.route_type.is_some() && a.neigh_state == Some(NeighState::Reachable), "{a:?}");
            assert!(a.notes.is_empty(), "{:?}", a.notes);
        }
        let r = run(10_000, 8, Stages::Full(Format::Json));
        assert!(r.output_bytes > 10_000 * 100);
    }

    /// The pcapng stage writes every frame (54 bytes each, in a block with its comment).
    #[test]
    fn the_pcapng_stage_writes_a_block_per_packet() {
        let r = run(10_000, 8, Stages::Pcapng);
        assert!(r.output_bytes > 10_000 * (32 + 54), "{} bytes for 10000 packets", r.output_bytes);
    }

    #[test]
    fn a_record_decodes_to_the_event_it_was_made_from() {
        let ev = tcp_event(0, pod_ip(1), dir::INGRESS, FIRST_CALI, fib::SUCCESS, FIRST_CALI + 1);
        let bytes = record_bytes(&ev);
        let decoded = Decoder::default().decode(&bytes).unwrap();
        assert_eq!(decoded.event, Event::Packet(ev));
        assert_eq!(decoded.frame.bytes, &tcp_frame(&ev.packet)[..]);
    }

    /// `cargo +1.99.1 test --release -p tracer --lib annotate::bench -- --ignored --nocapture`
    /// (`VETHTRACE_BENCH_EVENTS` sets the events per stage, e.g. fewer under valgrind).
    #[test]
    #[ignore = "a measurement, not a check: run in release mode"]
    fn measure() {
        let all = [
            Stages::Annotate,
            Stages::FormatOnly(Format::Text),
            Stages::Full(Format::Text),
            Stages::FormatOnly(Format::Json),
            Stages::Full(Format::Json),
            Stages::NewFlows(Format::Json),
            Stages::Pcapng,
        ];
        for stages in all {
            let events = std::env::var("VETHTRACE_BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(3_000_000);
            let r = run(events, 100, stages);
            println!(
                "{stages:?}: {:.2} M events/s ({} events in {:.2} s)",
                r.events_per_sec() / 1e6,
                r.events,
                r.seconds
            );
        }
    }
}
