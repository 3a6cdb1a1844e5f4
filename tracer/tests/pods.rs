//! Pod identity: `vethtrace pods` (and `--pod`) on a Calico-style node, with each source —
//! Calico's endpoint-status files written the way Felix writes them, kubelet's pod
//! directories with Calico's veth names, and a real containerd over the CRI (tests/pods_cri.rs).
//! Oracles: iproute2 (`ip -j link`, `ip -j route`) for interfaces, states and routed IPs;
//! Python's hashlib for Calico's veth names.

mod common;

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    thread,
    time::Duration,
};

use common::{
    Node, Tracer, eventually,
    pods::{Watcher, assert_row_matches_iproute, pods_once, python_cali, row, strs},
    scratch_dir,
};
use serde_json::Value;

/// A field escaped as Go's `url.PathEscape` does (what Felix uses for status file names),
/// written from Go's rules: unreserved characters and `$&+,:;=@` stay, all else is %XX.
fn go_path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b'$' | b'&' | b'+' | b',' | b':' | b';' | b'=' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Felix's file name for pod `ns/pod`: "k8s <ns>%2F<pod> eth0".
fn felix_name(ns: &str, pod: &str) -> String {
    ["k8s", &format!("{ns}/{pod}"), "eth0"].map(go_path_escape).join(" ")
}

/// Writes a status file as Felix's `os.WriteFile` does: truncated in place, then written — here
/// in two halves with a pause between, so that a reader that reads too early sees half a file.
fn felix_write(dir: &Path, ns: &str, pod: &str, iface: &str, ipv4: &[&str]) {
    let nets: Vec<String> = ipv4.iter().map(|ip| format!("\"{ip}/32\"")).collect();
    let json = format!(r#"{{"ifaceName":"{iface}","mac":"ee:ee:ee:ee:ee:ee","ipv4Nets":[{}]}}"#, nets.join(","));
    let mut f = fs::File::create(dir.join(felix_name(ns, pod))).unwrap();
    let (a, b) = json.as_bytes().split_at(json.len() / 2);
    f.write_all(a).unwrap();
    f.flush().unwrap();
    thread::sleep(Duration::from_millis(150));
    f.write_all(b).unwrap();
}

/// A scratch directory with an empty endpoint-status directory in it, and the flags that
/// point vethtrace at it — and the sources after it at nothing, so that the host's own runtime
/// or kubelet (if any) never answers.
fn status_dir(tag: &str) -> (PathBuf, PathBuf, Vec<String>) {
    let tmp = scratch_dir(tag);
    let status = tmp.join("endpoint-status");
    fs::create_dir(&status).unwrap();
    let flags = [
        ("--calico-status-dir", status.clone()),
        ("--cri-socket", tmp.join("no-runtime.sock")),
        ("--kubelet-pods-dir", tmp.join("no-kubelet")),
    ];
    let args = flags.iter().flat_map(|(f, p)| [(*f).to_owned(), p.display().to_string()]).collect();
    (tmp, status, args)
}

#[test]
fn calico_status_files_name_the_pods() {
    let node = Node::up("ps");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let (tmp, status, a) = status_dir("pst");
    felix_write(&status, "shop", "web-7d4b9c-x2x9p", &cali1, &["10.244.1.5"]);
    fs::write(status.join(felix_name("shop", "broken")), b"{\"ifaceName\":\"cali").unwrap();
    let (rows, stderr) = pods_once(&node, &strs(&a));
    let r1 = row(&rows, &cali1);
    assert_eq!((r1["pod_namespace"].as_str(), r1["pod_name"].as_str()), (Some("shop"), Some("web-7d4b9c-x2x9p")), "{r1}");
    assert_eq!((r1["source"].as_str(), r1["ips"].clone()), (Some("calico-status"), serde_json::json!(["10.244.1.5"])));
    assert!(row(&rows, &cali2).get("pod_name").is_none(), "{rows:?}");
    for r in &rows {
        assert_row_matches_iproute(&node, r);
    }
    assert_eq!(stderr.matches("warning: skipping Calico endpoint-status file").count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("{}: not an endpoint-status JSON object", felix_name("shop", "broken"))), "{stderr}");
    assert!(stderr.contains("pods named by calico-status"), "{stderr}");
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn calico_status_changes_show_while_watching() {
    let node = Node::up("pw");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let (tmp, status, a) = status_dir("pwt");
    felix_write(&status, "shop", "web", &cali1, &["10.244.1.5"]);
    let mut w = Watcher::start(&node, &strs(&a));
    let has = |v: &Value, iface: &str, pod: Option<&str>| v["iface"] == iface && v["pod_name"].as_str() == pod;
    let mut seen = w.wait(0, "the table", |v| v.get("event").is_none() && has(v, &cali1, Some("web")));
    // Created (in two halves: only the whole file may count).
    felix_write(&status, "shop", "db-0", &cali2, &["10.244.1.6"]);
    seen = w.wait(seen, "db-0 created", |v| v["event"] == "change" && has(v, &cali2, Some("db-0")));
    // Rewritten with a new IP.
    felix_write(&status, "shop", "db-0", &cali2, &["10.244.1.66"]);
    seen = w.wait(seen, "db-0's new IP", |v| has(v, &cali2, Some("db-0")) && v["ips"] == serde_json::json!(["10.244.1.66"]));
    // A pod that starts while watching, then its file.
    node.add_pod("pod3", "10.244.1.7", "-");
    let cali3 = node.cali("pod3");
    seen = w.wait(seen, "pod3's cali", |v| v["event"] == "add" && has(v, &cali3, None));
    felix_write(&status, "team.a", "pod.with.dots", &cali3, &["10.244.1.7"]);
    seen = w.wait(seen, "pod3 named", |v| has(v, &cali3, Some("pod.with.dots")) && v["pod_namespace"] == "team.a");
    // A malformed file: one warning, no crash, read again when it changes.
    let broken = status.join(felix_name("shop", "broken"));
    fs::write(&broken, b"not json").unwrap();
    fs::write(&broken, b"{\"ipv4Nets\":[\"10.244.1.9/32\"]}").unwrap();
    // Removed.
    fs::remove_file(status.join(felix_name("shop", "db-0"))).unwrap();
    seen = w.wait(seen, "db-0 gone", |v| v["event"] == "change" && has(v, &cali2, None));
    assert!(w.stderr().matches("warning: skipping").count() == 1, "{}", w.stderr());
    fs::write(&broken, format!(r#"{{"ifaceName":"{cali2}","ipv4Nets":["10.244.1.6/32"]}}"#)).unwrap();
    w.wait(seen, "the repaired file", |v| has(v, &cali2, Some("broken")));
    node.del_pod("pod3");
    w.wait(seen, "pod3's cali gone", |v| v["event"] == "remove" && v["iface"] == cali3);
    let stderr = w.stop();
    assert_eq!(stderr.matches("warning: skipping").count(), 1, "{stderr}");
    // Which of the two bad contents it names depends on when it was read; the file it names must be this one.
    assert!(stderr.contains("shop%2Fbroken eth0: "), "{stderr}");
    assert!(!stderr.contains("db-0"), "a half-written file was read: {stderr}");
    let _ = fs::remove_dir_all(&tmp);
}

/// `--pod` picks the cali of a pod, including one named only after tracing started.
#[test]
fn pod_selects_its_cali_as_it_appears() {
    let node = Node::up("pt");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let (tmp, status, mut a) = status_dir("ptt");
    felix_write(&status, "shop", "web", &cali1, &["10.244.1.5"]);
    a.extend(["--pod".to_owned(), "shop/db".to_owned()]);
    let tracer = Tracer::start(&node, &strs(&a));
    let ping = |pod: &str, to: &str| {
        let out = node.in_pod(pod, "ping").args(["-c", "1", "-W", "2", to]).stdout(Stdio::null()).status().unwrap();
        assert!(out.success(), "ping from {pod}");
    };
    ping("pod1", "10.99.0.2");
    ping("pod2", "10.99.0.2");
    felix_write(&status, "shop", "db", &cali2, &["10.244.1.6"]);
    let traced = eventually(Duration::from_secs(10), || {
        ping("pod2", "10.99.0.2");
        tracer.events_so_far().iter().any(|e| e["iface"] == cali2)
    });
    assert!(traced, "{cali2} not traced after its pod was named\n{}", tracer.stderr());
    ping("pod1", "10.99.0.2");
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.events.iter().all(|e| e["iface"] != cali1), "{cali1} (another pod) was traced");
    assert!(done.stderr.contains("of pod(s) shop/db"), "{}", done.stderr);
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn without_a_socket_names_come_from_calico_hash_and_kubelet_dirs() {
    let node = Node::up("ph");
    let cali = node.add_k8s_pod("k1", "10.244.1.7", "-", "shop/cart-7d4b9c-x2x9p");
    assert_eq!(cali, python_cali("shop", "cart-7d4b9c-x2x9p"));
    let tmp = scratch_dir("pht");
    let kubelet = tmp.join("pods");
    fs::create_dir(&kubelet).unwrap();
    let uid = "0b7e1c2a-1f3e-4c55-9d2b-6a1e5f0c7d11";
    fs::create_dir(kubelet.join(format!("shop_cart-7d4b9c-x2x9p_{uid}"))).unwrap();
    fs::create_dir(kubelet.join("kube-system_host-network-pod_u2")).unwrap();
    fs::create_dir(kubelet.join("not-a-pod-dir")).unwrap();
    let a: Vec<String> = [
        "--calico-status-dir",
        &tmp.join("no-calico").display().to_string(),
        "--cri-socket",
        &tmp.join("no-runtime.sock").display().to_string(),
        "--kubelet-pods-dir",
        &kubelet.display().to_string(),
    ]
    .map(str::to_owned)
    .into();
    let (rows, stderr) = pods_once(&node, &strs(&a));
    let r = row(&rows, &cali);
    assert_eq!(r["pod_namespace"], "shop", "{r}");
    assert_eq!((r["pod_name"].as_str(), r["pod_uid"].as_str()), (Some("cart-7d4b9c-x2x9p"), Some(uid)), "{r}");
    assert_eq!((r["source"].as_str(), r["ips"].clone()), (Some("calico-hash"), serde_json::json!(["10.244.1.7"])));
    for other in [node.cali("pod1"), node.cali("pod2")] {
        assert!(row(&rows, &other).get("pod_name").is_none(), "{rows:?}");
    }
    for r in &rows {
        assert_row_matches_iproute(&node, r);
    }
    for said in ["calico-status not used", "cri not used", "pods named by calico-hash"] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    // Live: a pod's directory and cali appear, then its directory goes.
    let mut w = Watcher::start(&node, &strs(&a));
    let mut seen = w.wait(0, "the table", |v| v["iface"] == cali && v["pod_uid"] == uid);
    let cali2 = node.add_k8s_pod("k2", "10.244.1.8", "-", "shop/late");
    fs::create_dir(kubelet.join("shop_late_u-late")).unwrap();
    seen = w.wait(seen, "the late pod", |v| v["iface"] == cali2 && v["pod_name"] == "late" && v["pod_uid"] == "u-late");
    fs::remove_dir(kubelet.join(format!("shop_cart-7d4b9c-x2x9p_{uid}"))).unwrap();
    w.wait(seen, "cart gone", |v| v["event"] == "change" && v["iface"] == cali && v.get("pod_name").is_none());
    w.stop();
    let _ = fs::remove_dir_all(&tmp);
}

/// Every event on a cali names its pod — packets, ARP and neighbour events, drops — in JSON
/// and in text, and follows the status files as they are created, rewritten and removed
/// while tracing.
#[test]
fn events_name_their_pod_while_files_change() {
    let node = Node::up("pe");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let (tmp, status, a) = status_dir("pet");
    felix_write(&status, "shop", "web-7d4b9c-x2x9p", &cali1, &["10.244.1.5"]);
    let tracer = Tracer::start(&node, &strs(&a));
    let echo = |seen: usize, iface: &str, pod: Option<&str>| {
        common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
        tracer.wait_event(seen, "an echo request with its pod", |e| {
            e["kind"] == "packet" && e["iface"] == iface && e["icmp_type"] == 8 && e["pod_name"].as_str() == pod
        })
    };
    let e = echo(0, &cali1, Some("web-7d4b9c-x2x9p"));
    assert_eq!(e["pod_namespace"], "shop", "{e}");
    // pod2 has no file yet: its cali's events carry no pod.
    let before = tracer.events_so_far().len();
    echo(before, &cali2, None);
    // Created while tracing.
    felix_write(&status, "shop", "db-0", &cali2, &["10.244.1.6"]);
    let n = tracer.events_so_far().len();
    assert!(eventually(Duration::from_secs(5), || {
        common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
        tracer.events_so_far().iter().skip(n).any(|e| e["iface"] == cali2.as_str() && e["pod_name"] == "db-0")
    }), "db-0 not named on events\n{}", tracer.stderr());
    // Rewritten with a new IP: still that pod; then removed.
    felix_write(&status, "shop", "db-0", &cali2, &["10.244.1.6", "10.244.1.66"]);
    let n = tracer.events_so_far().len();
    assert!(eventually(Duration::from_secs(5), || {
        common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
        tracer.events_so_far().iter().skip(n).any(|e| e["iface"] == cali2.as_str() && e["pod_name"] == "db-0")
    }), "db-0 not named after its file was rewritten\n{}", tracer.stderr());
    fs::remove_file(status.join(felix_name("shop", "db-0"))).unwrap();
    let n = tracer.events_so_far().len();
    assert!(eventually(Duration::from_secs(5), || {
        common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
        let later: Vec<Value> = tracer.events_so_far().into_iter().skip(n).collect();
        later.iter().any(|e| e["iface"] == cali2.as_str() && e["icmp_type"] == 8 && e.get("pod_name").is_none())
    }), "a pod still named after its file went\n{}", tracer.stderr());
    // ARP and neighbour events of pod1's cali, and a drop of pod1's packet, name the pod too.
    common::run(node.in_pod("pod1", "ip").args(["neigh", "flush", "all"]));
    common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
    let arp = tracer.wait_event(0, "an ARP event on pod1's cali", |e| e["kind"] == "arp" && e["iface"] == cali1.as_str());
    assert_eq!(arp["pod_name"], "web-7d4b9c-x2x9p", "{arp}");
    node.ip(&["route", "add", "unreachable", "10.77.0.0/16"]);
    let _ = node.in_pod("pod1", "ping").args(["-c", "1", "-W", "1", "10.77.0.1"]).output();
    let drop = tracer.wait_event(0, "a drop of pod1's packet", |e| e["kind"] == "drop" && e["dst"] == "10.77.0.1");
    assert_eq!((drop["pod_namespace"].as_str(), drop["pod_name"].as_str()), (Some("shop"), Some("web-7d4b9c-x2x9p")), "{drop}");
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    let _ = fs::remove_dir_all(&tmp);
}

/// `/metrics` of a vethtrace in the node's namespace (bash's /dev/tcp, no client needed).
fn metrics_text(node: &Node, addr: &str) -> String {
    let (host, port) = addr.split_once(':').unwrap();
    let script = format!("exec 3<>/dev/tcp/{host}/{port} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3");
    common::stdout(node.in_node("bash").args(["-c", &script]))
}

/// The metrics' `pod` label follows pod identity: set when the interface is traced, and
/// changed when the pod behind it becomes known later.
#[test]
fn metrics_label_packets_by_pod() {
    let node = Node::up("pm");
    let (cali1, cali2) = (node.cali("pod1"), node.cali("pod2"));
    let (tmp, status, mut a) = status_dir("pmt");
    felix_write(&status, "shop", "web", &cali1, &["10.244.1.5"]);
    let addr = "127.0.0.1:9465";
    a.extend(["--metrics".to_owned(), addr.to_owned()]);
    let tracer = Tracer::start(&node, &strs(&a));
    common::run(node.in_pod("pod1", "ping").args(["-c", "2", "-i", "0.2", "10.244.1.6"]));
    let series = |text: &str, iface: &str, pod: &str| {
        text.lines().any(|l| {
            l.starts_with("vethtrace_packets_total{")
                && l.contains(&format!("iface=\"{iface}\""))
                && l.contains(&format!("pod=\"{pod}\""))
        })
    };
    let text = metrics_text(&node, addr);
    assert!(series(&text, &cali1, "shop/web"), "{text}");
    assert!(series(&text, &cali2, ""), "pod2 has no file yet: {text}");
    felix_write(&status, "shop", "db", &cali2, &["10.244.1.6"]);
    assert!(
        eventually(Duration::from_secs(5), || {
            common::run(node.in_pod("pod1", "ping").args(["-c", "1", "10.244.1.6"]));
            series(&metrics_text(&node, addr), &cali2, "shop/db")
        }),
        "pod2's series not relabelled\n{}",
        metrics_text(&node, addr)
    );
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    let _ = fs::remove_dir_all(&tmp);
}
