use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use prometheus_client::encoding::{prometheus_text, text};
use tracer_common::{NeighSection, arp_hook, dir, neigh_hook, neighf, traffic::Traffic};

use super::{
    KernelCounts, Metrics, ModeInfo,
    kernel_counts::Sums,
    serve::wants_openmetrics,
    went_failed,
};

/// The kernel's `TRAFFIC` map as the tests set it: sums by ifindex.
#[derive(Clone, Default)]
struct Kernel(Arc<Mutex<HashMap<u32, Traffic>>>);

impl Kernel {
    /// One more frame of `len` bytes on `ifindex` in `dir`, as the TC programs count it.
    fn frame(&self, ifindex: u32, d: u8, len: u64) {
        let mut map = self.0.lock().unwrap();
        let t = map.entry(ifindex).or_default();
        t.packets[Traffic::slot(d)] += 1;
        t.bytes[Traffic::slot(d)] += len;
    }
}

impl Sums for Kernel {
    fn sum(&self, ifindex: u32) -> Traffic {
        self.0.lock().unwrap().get(&ifindex).copied().unwrap_or_default()
    }

    fn forget(&mut self, ifindex: u32) {
        self.0.lock().unwrap().remove(&ifindex);
    }
}

fn metrics_on(kernel: &Kernel) -> Metrics {
    Metrics::new(&ModeInfo { probe: "tracepoint".into(), tc: "tcx".into(), drops: true }, KernelCounts::with(Box::new(kernel.clone())))
}

fn metrics() -> Metrics {
    metrics_on(&Kernel::default())
}

fn exposition(m: &Metrics) -> String {
    let mut s = String::new();
    prometheus_text::encode(&mut s, &m.registry()).unwrap();
    s
}

fn has(s: &str, line: &str) -> bool {
    s.lines().any(|l| l == line)
}

#[test]
fn packets_and_bytes_by_interface_pod_and_direction() {
    let kernel = Kernel::default();
    let m = metrics_on(&kernel);
    // Frames counted before the interface was told traced count too (its entry is new).
    kernel.frame(7, dir::INGRESS, 100);
    m.interfaces().traced(7, "cali1234567890a", Some("default/web-0"));
    kernel.frame(7, dir::INGRESS, 60);
    kernel.frame(7, dir::EGRESS, 42);
    // Not traced: not by interface.
    kernel.frame(9, dir::INGRESS, 1);
    (0..4).for_each(|_| m.packet());
    m.kernel_counts().refresh();
    let s = exposition(&m);
    let l = r#"iface="cali1234567890a",pod="default/web-0""#;
    assert!(has(&s, &format!(r#"vethtrace_packets_total{{{l},direction="ingress"}} 2"#)), "{s}");
    assert!(has(&s, &format!(r#"vethtrace_packets_total{{{l},direction="egress"}} 1"#)), "{s}");
    assert!(has(&s, &format!(r#"vethtrace_bytes_total{{{l},direction="ingress"}} 160"#)), "{s}");
    assert!(has(&s, r#"vethtrace_events_total{kind="packet"} 4"#), "{s}");
    assert!(has(&s, "vethtrace_interfaces_traced 1"), "{s}");
    assert!(!s.contains("if9"), "{s}");
    // A second scrape adds only what came since.
    kernel.frame(7, dir::EGRESS, 8);
    m.kernel_counts().refresh();
    m.kernel_counts().refresh();
    let s = exposition(&m);
    assert!(has(&s, &format!(r#"vethtrace_packets_total{{{l},direction="egress"}} 2"#)), "{s}");
    assert!(has(&s, &format!(r#"vethtrace_bytes_total{{{l},direction="egress"}} 50"#)), "{s}");
}

#[test]
fn drops_by_reason_on_traced_and_untraced_interfaces() {
    let m = metrics();
    m.interfaces().traced(7, "cali1", None);
    m.dropped(7, "ignored: the traced name wins", "NEIGH_FAILED");
    m.dropped(7, "cali1", "NEIGH_FAILED");
    m.dropped(2, "eth0", "NETFILTER_DROP");
    m.dropped(0, "-", "NO_SOCKET");
    let s = exposition(&m);
    assert!(has(&s, r#"vethtrace_drops_total{reason="NEIGH_FAILED",iface="cali1",pod=""} 2"#), "{s}");
    assert!(has(&s, r#"vethtrace_drops_total{reason="NETFILTER_DROP",iface="eth0",pod=""} 1"#), "{s}");
    assert!(has(&s, r#"vethtrace_drops_total{reason="NO_SOCKET",iface="-",pod=""} 1"#), "{s}");
    assert!(has(&s, "vethtrace_interfaces_traced 1"), "an untraced uplink is not traced: {s}");
    assert!(!s.contains(r#"vethtrace_packets_total{iface="eth0""#), "{s}");
}

#[test]
fn arp_and_neighbour_failures() {
    let m = metrics();
    m.interfaces().traced(3, "cali3", None);
    m.arp(3, arp_hook::RECV, 1);
    m.arp(3, arp_hook::SEND, 2);
    m.arp(3, arp_hook::SEND, 1);
    m.arp(3, arp_hook::RECV, 2);
    let failed = NeighSection { ifindex: 3, hook: neigh_hook::TIMER, old_state: 0x01, new_state: 0x20, flags: neighf::OLD_KNOWN, ..Default::default() };
    m.neigh(&failed);
    m.neigh(&NeighSection { hook: neigh_hook::RESOLVE, ..failed });
    m.neigh(&NeighSection { new_state: 0x02, ..failed });
    let s = exposition(&m);
    for line in [
        r#"vethtrace_arp_requests_received_total{iface="cali3",pod=""} 1"#,
        r#"vethtrace_arp_replies_sent_total{iface="cali3",pod=""} 1"#,
        r#"vethtrace_arp_requests_sent_total{iface="cali3",pod=""} 1"#,
        r#"vethtrace_neigh_failed_total{iface="cali3",pod=""} 1"#,
        r#"vethtrace_events_total{kind="arp"} 4"#,
        r#"vethtrace_events_total{kind="neigh"} 3"#,
    ] {
        assert!(has(&s, line), "{line} missing:\n{s}");
    }
}

#[test]
fn a_failure_is_a_move_to_failed() {
    let ev = NeighSection { hook: neigh_hook::TIMER, old_state: 0x01, new_state: 0x20, flags: neighf::OLD_KNOWN, ..Default::default() };
    assert!(went_failed(&ev));
    assert!(went_failed(&NeighSection { flags: 0, old_state: 0, ..ev }), "old state unknown");
    assert!(!went_failed(&NeighSection { old_state: 0x20, ..ev }), "already FAILED");
    assert!(!went_failed(&NeighSection { hook: neigh_hook::RESOLVE, ..ev }));
}

#[test]
fn relabelled_and_untraced_interfaces_lose_their_series() {
    let kernel = Kernel::default();
    let m = metrics_on(&kernel);
    m.interfaces().traced(7, "cali7", None);
    kernel.frame(7, dir::INGRESS, 10);
    m.kernel_counts().refresh();
    m.dropped(7, "cali7", "QDISC_DROP");
    m.interfaces().traced(7, "cali7", Some("ns/pod"));
    kernel.frame(7, dir::INGRESS, 10);
    m.kernel_counts().refresh();
    let s = exposition(&m);
    assert!(!s.contains(r#"iface="cali7",pod="""#), "old labels left: {s}");
    assert!(has(&s, r#"vethtrace_packets_total{iface="cali7",pod="ns/pod",direction="ingress"} 1"#), "{s}");
    m.interfaces().untraced(7);
    let s = exposition(&m);
    assert!(!s.contains("cali7"), "{s}");
    assert!(has(&s, "vethtrace_interfaces_traced 0"), "{s}");
    // The kernel's entry went with it: a new interface of the same index starts from zero.
    assert_eq!(kernel.sum(7), Traffic::default());
    kernel.frame(7, dir::EGRESS, 5);
    m.interfaces().traced(7, "cali7b", None);
    m.kernel_counts().refresh();
    let s = exposition(&m);
    assert!(has(&s, r#"vethtrace_packets_total{iface="cali7b",pod="",direction="egress"} 1"#), "{s}");
}

#[test]
fn lost_follows_the_kernel_total_and_info_metrics_are_there() {
    let m = metrics();
    m.lost(5);
    m.lost(5);
    m.lost(12);
    m.undecodable();
    let s = exposition(&m);
    assert!(has(&s, "vethtrace_events_lost_total 12"), "{s}");
    assert!(has(&s, "vethtrace_events_undecodable_total 1"), "{s}");
    assert!(has(&s, r#"vethtrace_mode_info{probe="tracepoint",tc="tcx",drops="on"} 1"#), "{s}");
    assert!(s.contains(r#"vethtrace_build_info{version=""#), "{s}");
    let mut om = String::new();
    text::encode(&mut om, &m.registry()).unwrap();
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE vethtrace_mode info"), "{om}");
}

#[test]
fn accept_header_negotiation() {
    // What Prometheus 2.x sends.
    assert!(wants_openmetrics(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ));
    assert!(!wants_openmetrics(""));
    assert!(!wants_openmetrics("*/*"));
    assert!(!wants_openmetrics("text/plain;version=0.0.4"));
    assert!(!wants_openmetrics("application/openmetrics-text;q=0.2, text/plain"));
    assert!(wants_openmetrics("text/plain;q=0.5, application/openmetrics-text"));
}
