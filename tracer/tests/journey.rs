//! Journeys (`--journey`) on a Calico-style node: every packet the expression selects gets
//! exactly one journey with the right entry and exit (or drop), and no journey is written for a
//! packet it does not select. The same tracepoints read by someone else in the same run are the
//! oracle for the skb addresses, the interfaces and the times: bpftrace where it has BTF, else
//! (5.10) the kernel's own ftrace records of those events, on the monotonic clock.
//!
//! The hops inside the stack (forward, output, neigh, nf) come from kprobes or fentry: with
//! VETHTRACE_PROBE=kprobe|fentry (the VMs) that mode is asked for and the hops must be there, in
//! order, and agree with the oracle's kprobes on the same functions (bpftrace's, or ftrace kprobe
//! events on 5.10); unset, `--probe auto` takes them (fentry first) where the kernel has kprobes,
//! and where it has none (these machines) no such hop may appear and vethtrace must say why.
//!
//! Needs root, bpftrace, nft and socat. VETHTRACE_NO_ORACLE=1 leaves bpftrace out (said loudly).

mod common;

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use common::{Node, Tracer, run};
use serde_json::Value;

/// The flood runs alone: every vethtrace and oracle of the other tests would see its packets
/// too (their programs run on every packet of the machine), and their oracles lose events.
static FLOOD: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    FLOOD.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    FLOOD.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bpftrace program: the skb and device at each tracepoint a journey is made of, with
/// the kernel's clock (`nsecs`, CLOCK_MONOTONIC as the records' `ts_ns`).
const SCRIPT: &str = r#"tracepoint:net:netif_receive_skb { printf("HOP rcv %llx %s %llu\n", (uint64)args->skbaddr, str(args->name), nsecs); }
tracepoint:net:net_dev_queue { printf("HOP queue %llx %s %llu\n", (uint64)args->skbaddr, str(args->name), nsecs); }
tracepoint:net:net_dev_xmit { printf("HOP xmit %llx %s %llu\n", (uint64)args->skbaddr, str(args->name), nsecs); }
tracepoint:skb:kfree_skb { printf("HOP free %llx - %llu\n", (uint64)args->skbaddr, nsecs); }
"#;

/// The oracle's kprobes on the functions of the hops inside the stack, where vethtrace has them:
/// the skb's argument register and the clock, as the tracepoints'.
const SCRIPT_HOPS: &str = r#"kprobe:ip_forward { printf("HOP forward %llx - %llu\n", arg0, nsecs); }
kprobe:ip_output { printf("HOP output %llx - %llu\n", arg2, nsecs); }
kprobe:neigh_resolve_output { printf("HOP neigh %llx - %llu\n", arg1, nsecs); }
"#;

/// The same kprobes as ftrace kprobe events (name, function, the skb's register).
const FTRACE_KPROBES: [(&str, &str, &str); 3] =
    [("forward", "ip_forward", "%di"), ("output", "ip_output", "%dx"), ("neigh", "neigh_resolve_output", "%si")];

/// The probe mode asked for (VETHTRACE_PROBE, the VM runs), `None`: `auto`.
fn probe_mode() -> Option<String> {
    std::env::var("VETHTRACE_PROBE").ok().filter(|m| !m.is_empty())
}

/// Whether the hops inside the stack must be there: the mode asked for has them, or `auto`
/// takes them (the kernel has the kprobe PMU: the VMs' kernels have fentry too).
fn hops_expected() -> bool {
    match probe_mode().as_deref() {
        Some("kprobe" | "fentry") => true,
        Some(_) => false,
        None => Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
    }
}

/// The hop names inside the stack.
const INNER_HOPS: [&str; 4] = ["forward", "output", "neigh", "nf"];

fn hop_names(j: &Value) -> Vec<&str> {
    j["hops"].as_array().map(|h| h.iter().filter_map(|h| h["hop"].as_str()).collect()).unwrap_or_default()
}

fn hop_of<'a>(j: &'a Value, name: &str) -> Option<&'a Value> {
    j["hops"].as_array()?.iter().find(|h| h["hop"] == name)
}

/// One tracepoint hit as bpftrace printed it.
#[derive(Debug, Clone)]
struct Seen {
    what: String,
    skb: u64,
    dev: String,
    ns: u64,
}

/// The events of ftrace's records, by the names the bpftrace script prints.
const FTRACE_EVENTS: [(&str, &str); 4] = [
    ("net/netif_receive_skb", "rcv"),
    ("net/net_dev_queue", "queue"),
    ("net/net_dev_xmit", "xmit"),
    ("skb/kfree_skb", "free"),
];

enum Oracle {
    Bpftrace(common::bpftrace::Bpftrace),
    Ftrace(common::ftrace::Instance),
}

/// The oracle on the journeys' tracepoints; `None` with VETHTRACE_NO_ORACLE=1 (said).
fn oracle_start(tag: &str) -> Option<Oracle> {
    if std::env::var_os("VETHTRACE_NO_ORACLE").is_some_and(|v| v == "1") {
        eprintln!("{tag}: VETHTRACE_NO_ORACLE=1: NOT comparing with an oracle");
        return None;
    }
    let tag = format!("journey-{tag}");
    // VETHTRACE_ORACLE=ftrace takes ftrace where bpftrace would do (to try that oracle here).
    let ftrace = std::env::var_os("VETHTRACE_ORACLE").is_some_and(|v| v == "ftrace");
    if !ftrace && common::drop_oracle::bpftrace_has_btf() {
        let script = if hops_expected() { format!("{SCRIPT}{SCRIPT_HOPS}") } else { SCRIPT.to_owned() };
        return Some(Oracle::Bpftrace(common::bpftrace::Bpftrace::start(&tag, &script)));
    }
    eprintln!("{tag}: bpftrace has no BTF here: the oracle is ftrace's own records of the tracepoints");
    let mut ft = common::ftrace::Instance::new(&tag);
    ft.write("trace_clock", "mono");
    ft.write("buffer_size_kb", "16384");
    // Kernels that hash %p in the trace output (6.x) print the skb's real address without it.
    if ft.has("options/hash-ptr") {
        ft.write("options/hash-ptr", "0");
    }
    for (event, _) in FTRACE_EVENTS {
        ft.enable(event);
    }
    if hops_expected() {
        for (name, function, reg) in FTRACE_KPROBES {
            ft.kprobe(&format!("vtj_{name}_{}", std::process::id()), function, &format!("skbaddr={reg}"));
        }
    }
    Some(Oracle::Ftrace(ft))
}

/// What the oracle saw, and whether it says it lost events (bpftrace's `Lost N events`; ftrace
/// fails the test itself when its buffer overflowed).
fn oracle_stop(oracle: Oracle) -> (Vec<Seen>, bool) {
    match oracle {
        Oracle::Bpftrace(bt) => {
            let text = bt.stop();
            (parse_bpftrace(&text), text.lines().any(|l| l.starts_with("Lost ")))
        }
        Oracle::Ftrace(mut ft) => (ft.stop().iter().filter_map(|l| parse_ftrace(l)).collect(), false),
    }
}

/// `  ping-812 [001] ..s1   177.477001: net_dev_xmit: dev=cali… skbaddr=ffff… len=98 rc=0`.
fn parse_ftrace(line: &str) -> Option<Seen> {
    let (head, rest) = line.split_once(": ")?;
    let (event, fields) = rest.split_once(": ")?;
    let kprobe = FTRACE_KPROBES.iter().find(|(n, _, _)| event == format!("vtj_{n}_{}", std::process::id()));
    let what = match kprobe {
        Some((name, _, _)) => name,
        None => FTRACE_EVENTS.iter().find(|(e, _)| e.ends_with(&format!("/{event}")))?.1,
    };
    let (secs, micros) = head.split_whitespace().last()?.split_once('.')?;
    let ns = secs.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1000;
    let value = |key: &str| fields.split_whitespace().find_map(|w| w.strip_prefix(key));
    let skb = u64::from_str_radix(value("skbaddr=")?.trim_start_matches("0x"), 16).ok()?;
    Some(Seen { what: what.to_owned(), skb, dev: value("dev=").unwrap_or("-").to_owned(), ns })
}

fn parse_bpftrace(text: &str) -> Vec<Seen> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.strip_prefix("HOP ")?.split_whitespace().collect();
            Some(Seen {
                what: (*w.first()?).to_owned(),
                skb: u64::from_str_radix(w.get(1)?, 16).ok()?,
                dev: (*w.get(2)?).to_owned(),
                ns: w.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

fn ping(cmd: &mut Command, count: u32, dst: &str) {
    quiet(cmd.args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", dst]));
}

/// Loads an nftables ruleset into the node's namespace.
fn nft(node: &Node, rules: &str) {
    let path = std::env::temp_dir().join(format!("{}-jnft-{}", node.prefix, std::process::id()));
    fs::write(&path, rules).unwrap();
    run(node.in_node("nft").arg("-f").arg(&path));
    let _ = fs::remove_file(&path);
}

/// The journeys of ICMP echo messages of `icmp_type` from `src` to `dst`, by sequence number.
fn echoes<'a>(journeys: &[&'a Value], icmp_type: u64, src: &str, dst: &str) -> Vec<&'a Value> {
    journeys.iter().copied().filter(|j| j["icmp_type"] == icmp_type && j["src"] == src && j["dst"] == dst).collect()
}

/// Exactly one journey per sequence number `1..=count`, each entering on `entry`, with
/// `outcome`, and (for "out") leaving on `exit`.
fn one_each(what: &str, js: &[&Value], count: u64, entry: &str, outcome: &str, exit: Option<&str>) {
    for seq in 1..=count {
        let of_seq: Vec<&&Value> = js.iter().filter(|j| j["icmp_seq"] == seq).collect();
        assert_eq!(of_seq.len(), 1, "{what}: seq {seq} has {} journeys: {of_seq:#?}", of_seq.len());
        let j = of_seq[0];
        assert_eq!(j["iface"], entry, "{what}: entry: {j:#}");
        assert_eq!(j["outcome"], outcome, "{what}: outcome: {j:#}");
        if let Some(exit) = exit {
            assert_eq!(j["exit_iface"], exit, "{what}: exit: {j:#}");
        }
    }
    assert_eq!(js.len() as u64, count, "{what}: journeys of other sequence numbers: {js:#?}");
}

fn skb_of(j: &Value) -> u64 {
    let s = j["skb"].as_str().unwrap_or_else(|| panic!("no skb: {j:#}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// The oracle's hit of `what` for `skb` on `dev` nearest to `ns`, none after `not_after`. The device is part of the
/// match: one skb crosses several devices within microseconds (a veth hands the node's skb to
/// the pod's eth0 as it is), and under QEMU/TCG the two programs on one tracepoint run tens of
/// microseconds apart.
fn nearest<'a>(seen: &'a [Seen], what: &str, skb: u64, dev: &str, ns: u64, not_after: u64) -> Option<&'a Seen> {
    seen.iter()
        .filter(|s| s.what == what && s.skb == skb && s.dev == dev && s.ns <= not_after)
        .min_by_key(|s| s.ns.abs_diff(ns))
}

/// Time the oracle and vethtrace may disagree by: two programs on one hook run one after the
/// other, microseconds apart natively. Under QEMU/TCG a program's first run is slowed by its
/// translation and a vCPU can stall between the two (seen: 2.4 ms on 5.10's first forwarded
/// packet of a run, 7.2 ms on 6.12's first drop with kprobe hops). Pings are 200 ms apart, so
/// 10 ms still names one packet's hit.
const SLACK_NS: u64 = 10_000_000;

/// A journey's entry, exit and duration as the oracle saw the same skb. The end is matched
/// first (exit devices are cali names, unique on the node); the entry is then the oracle's hit
/// on the entry device before that end — a device name such as eth0 is also the pod's and the
/// uplink's far end's, which the same skb crosses just after.
fn agrees_with_oracle(j: &Value, seen: &[Seen]) -> Result<(), String> {
    let skb = skb_of(j);
    let ts = j["ts_ns"].as_u64().unwrap();
    let first = if j["entry"] == "local" { "queue" } else { "rcv" };
    let iface = j["iface"].as_str().unwrap();
    let duration_ns = (j["duration_us"].as_f64().unwrap() * 1000.0) as u64;
    let end_ns = ts + duration_ns;
    let last = match j["outcome"].as_str().unwrap() {
        "out" => Some(("xmit", j["exit_iface"].as_str().unwrap())),
        "dropped" => Some(("free", "-")),
        _ => None,
    };
    let mut before = u64::MAX;
    if let Some((what, dev)) = last {
        let end = nearest(seen, what, skb, dev, end_ns, u64::MAX)
            .ok_or_else(|| format!("the oracle never saw {what} of skb {skb:x} on {dev}: {j}"))?;
        if end.ns.abs_diff(end_ns) >= SLACK_NS {
            return Err(format!("end time {end_ns} vs the oracle's {}: {j}", end.ns));
        }
        before = end.ns;
    }
    let entry = nearest(seen, first, skb, iface, ts, before)
        .ok_or_else(|| format!("the oracle never saw {first} of skb {skb:x} on {iface} before its end: {j}"))?;
    if entry.ns.abs_diff(ts) >= SLACK_NS {
        return Err(format!("entry time {ts} vs the oracle's {}: {j}\n{}", entry.ns, story(seen, skb, ts)));
    }
    // The hops inside the stack, on the oracle's kprobes (no device there).
    for h in j["hops"].as_array().into_iter().flatten() {
        let what = h["hop"].as_str().unwrap_or_default();
        if !["forward", "output", "neigh"].contains(&what) {
            continue;
        }
        let at = ts + (h["t_us"].as_f64().unwrap() * 1000.0) as u64;
        let hit = nearest(seen, what, skb, "-", at, u64::MAX)
            .ok_or_else(|| format!("the oracle never saw {what} of skb {skb:x}: {j}"))?;
        if hit.ns.abs_diff(at) >= SLACK_NS {
            return Err(format!("{what} at {at} vs the oracle's {}: {j}", hit.ns));
        }
    }
    Ok(())
}

/// The oracle's hits of `skb` within 50 ms of `ts`, for a failure's message.
fn story(seen: &[Seen], skb: u64, ts: u64) -> String {
    let lines: Vec<String> = seen
        .iter()
        .filter(|s| s.skb == skb && s.ns.abs_diff(ts) < 50_000_000)
        .map(|s| format!("  oracle: {} {} at {:+} us", s.what, s.dev, (s.ns as i64 - ts as i64) / 1000))
        .collect();
    lines.join("\n")
}

/// Runs vethtrace --journey with `expr` and bpftrace around `traffic`, then returns the journeys
/// (each checked against bpftrace).
fn journeys(node: &Node, tag: &str, expr: &[&str], traffic: impl FnOnce(), settle: Duration) -> Vec<Value> {
    let oracle = oracle_start(tag);
    let mode = probe_mode();
    let mut args = vec!["--journey", "--journey-timeout", "5"];
    if let Some(mode) = &mode {
        args.extend(["--probe", mode.as_str()]);
    }
    args.extend_from_slice(expr);
    let tracer = Tracer::start(node, &args);
    traffic();
    thread::sleep(settle);
    let finished = tracer.stop();
    let oracle = oracle.map(oracle_stop);
    assert!(finished.status.success(), "vethtrace failed: {}", finished.stderr);
    for kind in ["packet", "drop", "arp", "neigh"] {
        assert!(finished.of_kind(kind).is_empty(), "--journey wrote {kind} events");
    }
    let js: Vec<Value> = finished.of_kind("journey").into_iter().cloned().collect();
    inner_hops_as_said(&finished.stderr, &js);
    if let Some((seen, lost)) = &oracle {
        assert!(!seen.is_empty(), "the oracle saw nothing");
        let disagree: Vec<String> = js.iter().filter_map(|j| agrees_with_oracle(j, seen).err()).collect();
        if *lost {
            // The oracle itself missed some of the same tracepoints' hits: a journey it has no
            // hit for cannot be checked, but most must agree, and none may disagree on a hit
            // the oracle has.
            eprintln!("{tag}: the oracle lost events; {} of {} journeys not checked", disagree.len(), js.len());
            assert!(disagree.len() * 2 <= js.len(), "{}", disagree.join("\n"));
        } else {
            assert!(disagree.is_empty(), "{}", disagree.join("\n"));
        }
    }
    js
}

/// The hops inside the stack are there when the probe mode gives them (said at start), and
/// none appears otherwise, where vethtrace says why once.
fn inner_hops_as_said(stderr: &str, js: &[Value]) {
    let inner = |j: &&Value| hop_names(j).iter().any(|h| INNER_HOPS.contains(h));
    if hops_expected() {
        // `auto` takes fentry first for them.
        let mode = probe_mode().unwrap_or_else(|| "fentry".into());
        let said = format!("journeys: hops inside the stack from {mode} (ip_forward, ip_output, neigh_resolve_output, nf_hook_slow");
        assert!(stderr.contains(&said), "expected {said:?}:\n{stderr}");
        return;
    }
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("journeys: no forward, output, neigh or nf hops: ")).collect();
    assert_eq!(said.len(), 1, "said once why there are no hops inside the stack:\n{stderr}");
    let why = match probe_mode().as_deref() {
        Some(mode) => format!("--probe {mode} has none (they need kprobes or fentry)"),
        // These machines: fentry refused, no kprobe PMU (`auto` tries fentry first for them).
        None => "no attach mode works on this kernel (fentry: ".to_owned(),
    };
    let both = probe_mode().is_some() || said[0].contains("; kprobe: ");
    assert!(both && said[0].contains(&why) && said[0].contains("journeys are built from TC and tracepoints"), "{}", said[0]);
    let with: Vec<&Value> = js.iter().filter(inner).collect();
    assert!(with.is_empty(), "hops inside the stack where the mode has none: {with:#?}");
}

/// A forwarded journey's hops in the stack's order: received, forwarded, routed out on `exit`,
/// through a neighbour there (when `neighbour`, resolving it: the first packet after a flush),
/// queued, transmitted.
fn forwarded_in_order(j: &Value, entry: &str, exit: &str, neighbour: Option<&str>) {
    let names = hop_names(j);
    let at = |n: &str| names.iter().position(|h| *h == n).unwrap_or_else(|| panic!("no {n} hop: {j:#}"));
    assert!(at("receive") < at("forward") && at("forward") < at("output") && at("output") < at("queue"), "{j:#}");
    assert_eq!(hop_of(j, "forward").unwrap()["iface"], entry, "{j:#}");
    assert_eq!(hop_of(j, "output").unwrap()["iface"], exit, "{j:#}");
    if let Some(addr) = neighbour {
        let n = hop_of(j, "neigh").unwrap_or_else(|| panic!("no neigh hop after the flush: {j:#}"));
        assert!(at("output") < at("neigh") && at("neigh") < at("queue"), "{j:#}");
        assert_eq!((&n["iface"], &n["neigh"]), (&Value::from(exit), &Value::from(addr)), "{j:#}");
        assert!(n["neigh_state"].is_string(), "{j:#}");
    }
}

#[test]
fn pod_to_pod_uplink_node_and_back() {
    let _shared = beside_others();
    let node = Node::up("jp");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let uplink = format!("{}up", node.prefix);
    // A UDP reader on the node, and datagrams the expression does not select.
    let mut reader = node.in_node("socat").args(["-u", "UDP-RECV:9999", "/dev/null"]).spawn().unwrap();
    thread::sleep(Duration::from_millis(200));
    let js = journeys(
        &node,
        "pp",
        &["icmp or udp port 9999"],
        || {
            // The first request goes through neigh_resolve_output (a resolution).
            run(node.in_node("ip").args(["neigh", "flush", "dev", &cali2]));
            ping(&mut node.in_pod("pod1", "ping"), 3, "10.244.1.6");
            ping(&mut node.in_pod("pod1", "ping"), 2, "10.99.0.2");
            ping(&mut Node::exec(&uplink, "ping"), 2, "10.244.1.5");
            ping(&mut node.in_pod("pod1", "ping"), 2, "10.99.0.1");
            for port in ["9999", "9998"] {
                let mut s = node.in_pod("pod1", "sh");
                quiet(s.args(["-c", &format!("echo hello | socat -u STDIN UDP:10.99.0.1:{port}")]));
            }
        },
        Duration::from_millis(5500),
    );
    let _ = reader.kill();
    let _ = reader.wait();
    let js: Vec<&Value> = js.iter().collect();
    let requests = echoes(&js, 8, "10.244.1.5", "10.244.1.6");
    one_each("pod1→pod2 requests", &requests, 3, &cali1, "out", Some(&cali2));
    if hops_expected() {
        for j in &requests {
            let first = j["icmp_seq"] == 1;
            forwarded_in_order(j, &cali1, &cali2, first.then_some("10.244.1.6"));
        }
        for j in echoes(&js, 0, "10.244.1.6", "10.244.1.5") {
            forwarded_in_order(j, &cali2, &cali1, None);
        }
    }
    one_each("pod2→pod1 replies", &echoes(&js, 0, "10.244.1.6", "10.244.1.5"), 3, &cali2, "out", Some(&cali1));
    one_each("pod1→uplink requests", &echoes(&js, 8, "10.244.1.5", "10.99.0.2"), 2, &cali1, "out", Some("eth0"));
    one_each("uplink→pod1 replies", &echoes(&js, 0, "10.99.0.2", "10.244.1.5"), 2, "eth0", "out", Some(&cali1));
    one_each("uplink→pod1 requests", &echoes(&js, 8, "10.99.0.2", "10.244.1.5"), 2, "eth0", "out", Some(&cali1));
    one_each("pod1→node requests", &echoes(&js, 8, "10.244.1.5", "10.99.0.1"), 2, &cali1, "consumed", None);
    // skb:consume_skb names the function that freed it from 6.3 on.
    let (root, _) = common::drop_oracle::kfree_skb_format();
    let consume_format = fs::read_to_string(root.join("events/skb/consume_skb/format")).unwrap();
    let by = if consume_format.contains(" location;") { Value::from("icmp_rcv") } else { Value::Null };
    for j in echoes(&js, 8, "10.244.1.5", "10.99.0.1") {
        assert_eq!(j["consumed_by"], by, "{j:#}");
    }
    let replies = echoes(&js, 0, "10.99.0.1", "10.244.1.5");
    one_each("node→pod1 replies", &replies, 2, &cali1, "out", Some(&cali1));
    assert!(replies.iter().all(|j| j["entry"] == "local"), "{replies:#?}");
    let udp: Vec<&&Value> = js.iter().filter(|j| j["proto"] == "udp").collect();
    assert!(udp.iter().all(|j| j["dport"] == 9999), "a journey the expression does not select: {udp:#?}");
    // A local socket's read is traced where the kernel copies the datagram with
    // skb_copy_datagram_iter; where it checksums while copying, the skb's free ends it
    // (consume_skb, also from the deferred-free list), and where that free is not traced either
    // the journey ends "node" at the timeout. Never dropped, never out.
    let to_reader: Vec<&&&Value> = udp.iter().filter(|j| j["iface"] == cali1.as_str()).collect();
    assert_eq!(to_reader.len(), 1, "the datagram to the reader: {udp:#?}");
    let outcome = to_reader[0]["outcome"].as_str().unwrap_or_default();
    assert!(["delivered", "consumed", "node"].contains(&outcome), "{udp:#?}");
    let other: Vec<&&Value> = js.iter().filter(|j| j["proto"] != "udp" && j["proto"] != "icmp").collect();
    assert!(other.is_empty(), "journeys the expression does not select: {other:#?}");
}

#[test]
fn a_service_address_dnatted_to_another_pod() {
    let _shared = beside_others();
    let node = Node::up("jn");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    nft(
        &node,
        "table ip vtsvc {\n  chain pre {\n    type nat hook prerouting priority dstnat;\n    ip daddr 10.96.0.10 dnat to 10.244.1.6\n  }\n}\n",
    );
    let js = journeys(&node, "nat", &["icmp"], || ping(&mut node.in_pod("pod1", "ping"), 2, "10.96.0.10"), Duration::from_millis(500));
    let js: Vec<&Value> = js.iter().collect();
    let requests = echoes(&js, 8, "10.244.1.5", "10.96.0.10");
    one_each("requests to the service", &requests, 2, &cali1, "out", Some(&cali2));
    for j in &requests {
        assert_eq!(j["nat_dst"], "10.244.1.6", "the address after DNAT: {j:#}");
        assert_eq!(j["route_dev"], cali2.as_str(), "routed by the translated address: {j:#}");
    }
    let replies = echoes(&js, 0, "10.244.1.6", "10.244.1.5");
    one_each("replies from the backend", &replies, 2, &cali2, "out", Some(&cali1));
    for j in &replies {
        assert_eq!(j["nat_src"], "10.96.0.10", "the reply un-DNATed: {j:#}");
    }
}

/// A dropped packet's journey ends in its drop, named as the drop event names it.
fn dropped(js: &[Value], (src, dst): (&str, &str), entry: &str, code: &str, count: u64) {
    let js: Vec<&Value> = js.iter().collect();
    let requests = echoes(&js, 8, src, dst);
    one_each(&format!("requests to {dst}"), &requests, count, entry, "dropped", None);
    for j in requests {
        assert_eq!(j["cause_code"], code, "{j:#}");
        assert!(j["location"].as_str().is_some_and(|l| l.contains("+0x")), "{j:#}");
        assert_eq!(j["hops"].as_array().and_then(|h| h.last()).map(|h| &h["hop"]), Some(&Value::from("drop")), "{j:#}");
    }
}

#[test]
fn dropped_packets_end_their_journeys() {
    let _shared = beside_others();
    let node = Node::up("jd");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    run(node.in_node("ip").args(["route", "add", "unreachable", "10.77.0.0/16"]));
    run(node.in_node("ip").args(["route", "add", "10.244.1.99/32", "dev", &cali2, "scope", "link"]));
    nft(&node, "table inet vtdrop {\n  chain vtfwd {\n    type filter hook forward priority 0;\n    ip daddr 10.244.1.6 icmp type echo-request drop\n  }\n}\n");
    // DF over a smaller MTU on the uplink; rp_filter on pod1's cali against a source the node
    // routes back through the uplink (resolve 169.254.1.1 with the pod's own address first).
    run(node.in_node("ip").args(["link", "set", "eth0", "mtu", "1000"]));
    run(node.in_node("sysctl").args(["-qw", "net.ipv4.conf.all.rp_filter=1", &format!("net.ipv4.conf.{cali1}.rp_filter=1")]));
    ping(&mut node.in_pod("pod1", "ping"), 1, "10.99.0.2");
    run(node.in_pod("pod1", "ip").args(["addr", "add", "10.55.0.9/32", "dev", "eth0"]));
    let js = journeys(
        &node,
        "drop",
        &["icmp"],
        || {
            ping(&mut node.in_pod("pod1", "ping"), 2, "10.77.0.1");
            ping(&mut node.in_pod("pod1", "ping"), 2, "10.244.1.6");
            ping(node.in_pod("pod1", "ping").args(["-M", "do", "-s", "1200"]), 1, "10.99.0.2");
            ping(node.in_pod("pod1", "ping").args(["-I", "10.55.0.9"]), 2, "10.99.0.2");
            // Held while 10.244.1.99 is resolved (three probes a second apart), then dropped.
            ping(&mut node.in_pod("pod1", "ping"), 1, "10.244.1.99");
        },
        Duration::from_secs(5),
    );
    let pod1 = "10.244.1.5";
    dropped(&js, (pod1, "10.77.0.1"), &cali1, "no_route", 2);
    dropped(&js, (pod1, "10.244.1.6"), &cali1, "netfilter", 2);
    if hops_expected() {
        // nft's forward drop: the verdict at FORWARD, then the drop, after the forwarding decision.
        for j in js.iter().filter(|j| j["dst"] == "10.244.1.6" && j["icmp_type"] == 8) {
            let names = hop_names(j);
            assert_eq!(names[names.len() - 2..], ["nf", "drop"], "{j:#}");
            let nf = hop_of(j, "nf").unwrap();
            assert_eq!((&nf["nf_hook"], &nf["verdict"], &nf["nf_family"]), (&Value::from("FORWARD"), &Value::from("drop"), &Value::from("ipv4")), "{j:#}");
            assert!(names.iter().position(|h| *h == "forward") < names.iter().position(|h| *h == "nf"), "{j:#}");
        }
    }
    dropped(&js, (pod1, "10.99.0.2"), &cali1, "too_big", 1);
    dropped(&js, ("10.55.0.9", "10.99.0.2"), &cali1, "rp_filter", 2);
    dropped(&js, (pod1, "10.244.1.99"), &cali1, "neighbour_unanswered", 1);
    let held = js.iter().find(|j| j["dst"] == "10.244.1.99").unwrap();
    assert!(held["duration_us"].as_f64().unwrap() > 1_000_000.0, "held for the neighbour: {held:#}");
}

/// A packet held longer than --journey-timeout is written as unfinished, with what it waited for.
#[test]
fn a_held_packet_times_out_with_what_it_waits_for() {
    let _shared = beside_others();
    let node = Node::up("jt");
    let cali2 = node.cali("pod2");
    run(node.in_node("ip").args(["route", "add", "10.244.1.99/32", "dev", &cali2, "scope", "link"]));
    let tracer = Tracer::start(&node, &["--journey", "--journey-timeout", "1", "icmp"]);
    ping(&mut node.in_pod("pod1", "ping"), 1, "10.244.1.99");
    let j = tracer.wait_event(0, "unfinished journey", |e| e["kind"] == "journey" && e["dst"] == "10.244.1.99");
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(j["outcome"], "unfinished", "{j:#}");
    let why = j["waiting"].as_str().unwrap_or_default();
    assert!(why.contains("10.244.1.99") && why.contains(&cali2), "waiting: {why:?}");
    let of_it = finished.of_kind("journey").into_iter().filter(|e| e["dst"] == "10.244.1.99").count();
    assert_eq!(of_it, 1, "one journey per packet, also when its drop comes later");
}

/// `--metrics`: the journeys' times by entry, exit and outcome, as many as were written; the
/// table of paths at exit counts the same.
#[test]
fn journey_times_in_metrics_and_the_paths_at_exit() {
    let _shared = beside_others();
    let node = Node::up("jm");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let addr = "127.0.0.1:9464";
    let tracer = Tracer::start(&node, &["--journey", "--metrics", addr, "icmp"]);
    ping(&mut node.in_pod("pod1", "ping"), 3, "10.244.1.6");
    thread::sleep(Duration::from_millis(300));
    let (status, _, text) = common::http_get(&node, addr, "/metrics", None);
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(status, 200);
    let count = |entry: &str, exit: &str| -> u64 {
        let series = format!("vethtrace_journey_seconds_count{{entry=\"{entry}\",exit=\"{exit}\",outcome=\"out\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    let written = |entry: &str| finished.of_kind("journey").iter().filter(|j| j["iface"] == entry && j["outcome"] == "out").count() as u64;
    assert_eq!(count(&cali1, &cali2), 3, "{text}");
    assert_eq!(count(&cali1, &cali2), written(&cali1));
    assert_eq!(count(&cali2, &cali1), written(&cali2));
    let row = finished.stderr.lines().find(|l| l.contains(&cali1) && l.contains(&cali2) && !l.contains("journey "));
    let cols: Vec<&str> = row.unwrap_or_else(|| panic!("no path row: {}", finished.stderr)).split_whitespace().collect();
    assert_eq!(cols.first().copied(), Some("3"), "{}", finished.stderr);
}

/// `-w`: each journey is its entry frame on its entry interface, with the journey's line as the
/// frame's comment, as tshark reads it.
#[test]
fn journeys_in_pcapng_as_tshark_reads_them() {
    let _shared = beside_others();
    let node = Node::up("jw");
    let dir = common::scratch_dir("jw");
    let file = dir.join("j.pcapng");
    let tracer = Tracer::start(&node, &["--journey", "-w", file.to_str().unwrap(), "icmp"]);
    ping(&mut node.in_pod("pod1", "ping"), 2, "10.244.1.6");
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let journeys = finished.of_kind("journey");
    assert_eq!(journeys.len(), 4, "two requests and two replies: {journeys:#?}");
    let fields = common::stdout(Command::new("tshark").arg("-r").arg(&file).args([
        "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src", "-e", "ip.dst", "-e", "frame.comment",
    ]));
    let frames: Vec<Vec<&str>> = fields.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(frames.len(), journeys.len(), "{fields}");
    for (f, j) in frames.iter().zip(&journeys) {
        assert_eq!((f[0], f[1], f[2]), (j["iface"].as_str().unwrap(), j["src"].as_str().unwrap(), j["dst"].as_str().unwrap()), "{fields}");
        let comment = f.get(3).copied().unwrap_or_default();
        assert!(comment.contains(" journey ") && comment.contains(" → Out "), "{comment:?}");
    }
    let _ = fs::remove_dir_all(dir);
}

/// Checks the flood's journeys: none invented or merged — each is one of the flood's datagrams,
/// entered on `cali1`, with one receive hop, and ended on `cali2` (out, or dropped by the token
/// bucket). Returns how many missed their xmit.
fn flood_journeys(js: &[&Value], cali1: &str, cali2: &str) -> usize {
    // The kernel runs no tracepoint program in a softirq that interrupted a BPF program on the
    // CPU (the token bucket's timer sends from one): bpftrace, run beside vethtrace here, missed
    // the same net_dev_start_xmit/net_dev_xmit. vethtrace ends such a journey when the pod
    // receives or reuses the skb; when that is not seen either, the journey ends at the skb's
    // free. A few in a thousand at most; bounded here and told in the README.
    let mut ids = std::collections::BTreeSet::new();
    let mut skipped = Vec::new();
    for j in js {
        assert!(ids.insert(j["journey_id"].as_str().unwrap_or_default().to_owned()), "two journeys with one id: {j:#}");
        assert_eq!((j["iface"].as_str(), j["src"].as_str(), j["dport"].as_u64()), (Some(cali1), Some("10.244.1.5"), Some(5201)), "{j:#}");
        let hops = j["hops"].as_array().expect("hops");
        assert_eq!(hops.iter().filter(|h| h["hop"] == "receive").count(), 1, "{j:#}");
        let queued_on_cali2 = hops.iter().any(|h| h["hop"] == "queue" && h["iface"] == cali2);
        match j["outcome"].as_str() {
            Some("out") if j["exit_iface"] == cali2 => {}
            Some("dropped") => assert!(hops.last().is_some_and(|h| h["hop"] == "drop"), "{j:#}"),
            _ if queued_on_cali2 => skipped.push(j),
            other => panic!("outcome {other:?}: {j:#}"),
        }
    }
    assert!(
        skipped.len() * 100 <= js.len(),
        "{} of {} journeys queued on {cali2} without its xmit: {skipped:#?}",
        skipped.len(),
        js.len()
    );
    skipped.len()
}

/// The packets the netdev-ingress counter `counter` of table `jfcount` counted (`nft -j`).
fn nft_counter(node: &Node) -> u64 {
    let out = common::stdout(node.in_node("nft").args(["-j", "list", "table", "netdev", "jfcount"]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j: {e}: {out}"));
    let rules = v["nftables"].as_array().expect("nftables array");
    let counters: Vec<u64> = rules
        .iter()
        .filter_map(|o| o["rule"]["expr"].as_array())
        .flat_map(|exprs| exprs.iter().filter_map(|e| e["counter"]["packets"].as_u64()))
        .collect();
    assert_eq!(counters.len(), 1, "{out}");
    counters[0]
}

/// `N journeys written, N packets not followed` and the ring's losses, from the exit lines.
fn journey_counters(stderr: &str) -> (u64, u64, u64) {
    let line = stderr.lines().find(|l| l.contains(" journeys written, ")).unwrap_or_else(|| panic!("no journey counters:\n{stderr}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let (_, lost, _) = common::system::exit_counters(stderr).unwrap_or_else(|| panic!("no exit counters:\n{stderr}"));
    (nums[nums.len() - 2], nums[nums.len() - 1], lost)
}

/// A flood of 64-byte UDP datagrams pod1 → pod2 with room for few journeys, while a token
/// bucket on pod2's cali holds datagrams for up to 400 ms (so that many are under way at once,
/// and the queue overflows into drops): every datagram the node received is in exactly one
/// journey or counted as not followed — the kernel's own count (an nftables counter on the
/// cali's ingress) is the sum — and the collector's memory stays bounded.
#[test]
fn a_flood_is_followed_or_counted_exactly() {
    let _alone = alone();
    let node = Node::up("jf");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    nft(
        &node,
        &format!(
            "table netdev jfcount {{\n  chain in {{\n    type filter hook ingress device \"{cali1}\" priority 0;\n    udp dport 5201 counter\n  }}\n}}\n"
        ),
    );
    run(node.in_node("tc").args(["qdisc", "add", "dev", &cali2, "root", "tbf", "rate", "2mbit", "burst", "8kb", "latency", "400ms"]));
    let mut server = node.in_pod("pod2", "iperf3").args(["-s", "-1", "-p", "5201"]).stdout(Stdio::null()).spawn().expect("iperf3");
    assert!(
        common::eventually(Duration::from_secs(5), || common::stdout(node.in_pod("pod2", "ss").args(["-Htln", "sport = :5201"]))
            .contains("5201")),
        "iperf3 server did not listen"
    );
    let tracer = Tracer::start(
        &node,
        &["--journey", "--journey-max", "64", "--journey-timeout", "2", "--ring-size", "16777216", "udp and dst port 5201"],
    );
    let before = nft_counter(&node);
    run(node.in_pod("pod1", "iperf3").args(["-c", "10.244.1.6", "-u", "-b", "30M", "-l", "64", "-t", "2"]));
    common::wait_timeout(&mut server, Duration::from_secs(20));
    // Everything held is transmitted within the token bucket's 400 ms.
    thread::sleep(Duration::from_millis(1000));
    let matched = nft_counter(&node) - before;
    let hwm = fs::read_to_string(format!("/proc/{}/status", tracer.pid())).unwrap_or_default();
    let finished = tracer.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let (written, unfollowed, lost) = journey_counters(&finished.stderr);
    let js = finished.of_kind("journey");
    assert_eq!(lost, 0, "the ring lost records: the count below cannot be exact\n{}", finished.stderr);
    assert_eq!(written, js.len() as u64, "exit counter vs journeys written");
    assert!(unfollowed > 0, "room for 64 journeys never ran out: the test proves nothing\n{}", finished.stderr);
    assert!(js.len() > 64, "only {} journeys", js.len());
    assert_eq!(
        written + unfollowed,
        matched,
        "{written} journeys + {unfollowed} not followed != {matched} datagrams the node received (nft counter)"
    );
    let skipped = flood_journeys(&js, &cali1, &cali2);
    // Bounded: 64 journeys in the kernel, 128 in the collector.
    let rss_kb: u64 = hwm
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM: {hwm}"));
    assert!(rss_kb < 256 * 1024, "the collector's peak memory: {rss_kb} kB");
    eprintln!(
        "flood: {matched} datagrams, {written} journeys ({skipped} missing their xmit), {unfollowed} not followed, peak {rss_kb} kB"
    );
}
