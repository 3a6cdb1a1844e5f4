//! Bad input from the system, each in a private mount namespace (`unshare -m`) so that nothing
//! of the host changes: no BTF, no tracefs, a read-only /sys/fs/bpf, interfaces that vanish
//! while vethtrace attaches, a full disk under `--output-file`. Each gives clear `vethtrace: ` lines (no
//! panic, no backtrace), the right exit code, and nothing left attached.

mod common;

use std::{
    process::{Command, Output, Stdio},
    sync::Mutex,
    thread,
    time::Duration,
};

use common::{
    Node,
    system::{Proc, clsact_devs, our_tc_progs, tc_modes},
    vethtrace_bin,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs vethtrace in the node's network namespace and in a private mount namespace prepared by
/// `setup` (sh). `nsenter --net`, not `ip netns exec`, which would mount a fresh /sys over the
/// setup.
fn run_after(node: &Node, setup: &str, args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "set -e; {setup}; exec nsenter --net=/run/netns/{} {} {}",
        node.ns(),
        vethtrace_bin().display(),
        quoted.join(" ")
    );
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux)")
}

/// Every stderr line is vethtrace's own, and none is a panic or a backtrace.
fn assert_clear(what: &str, stderr: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace") && !stderr.contains("RUST_BACKTRACE"), "{what}: {stderr}");
    for l in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(l.starts_with("vethtrace: "), "{what}: a line that is not vethtrace's: {l:?}\n{stderr}");
    }
}

fn assert_nothing_attached(node: &Node, what: &str) {
    let clean = common::eventually(Duration::from_secs(5), || our_tc_progs(&node.ns()).is_empty() && clsact_devs(node).is_empty());
    assert!(clean, "{what}: left attached: {:?}, clsact on {:?}", our_tc_progs(&node.ns()), clsact_devs(node));
}

/// pod1 pings pod2 `count` times, 2 s from now (once vethtrace runs), on a thread.
fn ping_later(node: &Node, count: &str, interval: &str) -> thread::JoinHandle<()> {
    let mut ping = node.in_pod("pod1", "ping");
    ping.args(["-c", count, "-i", interval, "10.244.1.6"]);
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(2));
        common::run(&mut ping);
    })
}

/// Stderr without the pod-source lines every start prints on these nodes (no Calico, no CRI).
fn stderr_of(out: &Output) -> String {
    common::system::without_pod_source_lines(&String::from_utf8_lossy(&out.stderr))
}

/// Without BTF the run cannot start: the reason is the only line, whether or not a pod-identity
/// source would have answered (every Kubernetes node has /var/log/pods, which calico-hash reads;
/// without it no source answers). Whatever cannot fail the start speaks after what can.
#[test]
fn without_btf_it_says_so_in_one_line_and_exits_1() {
    let _one = serial();
    let node = Node::up("nobtf");
    let with_pods_dir = "mount -t tmpfs none /var/log && mkdir /var/log/pods";
    // The setup does make a pod-identity source answer when the start goes through.
    let out = run_after(&node, with_pods_dir, &["--duration", "1", "--output-file", "/dev/null"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("vethtrace: pods named by calico-hash (/var/log/pods, 0 pods)"), "{stderr}");
    for (what, setup) in [("with /var/log/pods", with_pods_dir), ("without /var/log/pods", "mount -t tmpfs none /var/log")] {
        let out = run_after(&node, &format!("{setup} && mount -t tmpfs none /sys/kernel/btf"), &["--duration", "5"]);
        // All of standard error: no pod line may come before the one that matters.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
        assert!(stderr.contains("no BTF") && stderr.contains("/sys/kernel/btf/vmlinux"), "{what}: {stderr}");
        assert_clear("no BTF", &stderr);
        assert_nothing_attached(&node, "no BTF");
    }
}

#[test]
fn without_tracefs_drops_are_off_with_one_warning_and_packets_are_traced() {
    let _one = serial();
    let node = Node::up("notfs");
    // /sys/kernel emptied (no tracing/ and debug/ to mount tracefs on), BTF put back.
    let setup = "mkdir -p /run/vtbtf && mount --bind /sys/kernel/btf /run/vtbtf && mount -t tmpfs none /sys/kernel \
                 && mkdir /sys/kernel/btf && mount --bind /run/vtbtf /sys/kernel/btf";
    let pinger = ping_later(&node, "5", "0.05");
    let events = std::env::temp_dir().join(common::unique_prefix("notfs"));
    let out = run_after(&node, setup, &["--duration", "4", "--output", "json", "--output-file", events.to_str().unwrap()]);
    pinger.join().unwrap();
    let stderr = stderr_of(&out);
    let written = common::system::read_events(&events);
    let _ = std::fs::remove_file(&events);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("drops are not traced") && warnings[0].contains("tracefs"), "{stderr}");
    assert!(written.iter().filter(|e| e["kind"] == "packet" && e["proto"] == "icmp").count() >= 10, "{stderr}");
    assert_clear("no tracefs", &stderr);
    assert_nothing_attached(&node, "no tracefs");
}

#[test]
fn a_read_only_bpffs_changes_nothing() {
    // vethtrace pins nothing: /sys/fs/bpf read-only must not matter.
    let _one = serial();
    let node = Node::up("robpf");
    let out = run_after(&node, "mount -t bpf -o ro bpf /sys/fs/bpf", &["--duration", "3", "--output-file", "/dev/null"]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_clear("read-only bpffs", &stderr);
    assert_nothing_attached(&node, "read-only bpffs");
}

#[test]
fn a_full_disk_for_the_output_file_is_one_line_and_exit_1() {
    let _one = serial();
    let node = Node::up("full");
    let dir = std::env::temp_dir().join(common::unique_prefix("full"));
    std::fs::create_dir_all(&dir).unwrap();
    let setup = format!(
        "mount -t tmpfs -o size=64k none {0} && (dd if=/dev/zero of={0}/fill bs=4k 2>/dev/null || true)",
        dir.display()
    );
    let pinger = ping_later(&node, "50", "0.01");
    let file = dir.join("events.json");
    let out = run_after(&node, &setup, &["--duration", "6", "--output-file", file.to_str().unwrap()]);
    pinger.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("No space left on device")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("vethtrace: writing events"), "{stderr}");
    assert_clear("full disk", &stderr);
    assert_nothing_attached(&node, "full disk");
}

#[test]
fn interfaces_that_vanish_while_attaching_are_let_go() {
    let _one = serial();
    for mode in tc_modes() {
        let node = Node::up("van");
        let pods: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
        for (i, p) in pods.iter().enumerate() {
            node.add_pod(p, &format!("10.244.7.{}", i + 1), "-");
        }
        let mut tracer = Proc::spawn(&node, "van", &["--tc-mode", mode]);
        // Gone while vethtrace starts and attaches: the namespace's end takes the veth with it.
        for p in &pods {
            node.del_pod(p);
        }
        tracer.wait_ready();
        common::run(node.in_pod("pod1", "ping").args(["-c", "2", "-i", "0.1", "10.244.1.6"]));
        assert!(tracer.child.try_wait().unwrap().is_none(), "{mode}: vethtrace exited\n{}", tracer.stderr());
        let status = tracer.stop_with(libc::SIGINT);
        let stderr = common::system::without_pod_source_lines(&tracer.stderr());
        assert!(status.success(), "{mode}: {status}\n{stderr}");
        assert_clear(mode, &stderr);
        let cali1 = node.cali("pod1");
        let seen = tracer.events().iter().filter(|e| e["iface"] == cali1.as_str() && e["proto"] == "icmp").count();
        assert_eq!(seen, 4, "{mode}: the pod that stayed is traced\n{stderr}");
        assert_nothing_attached(&node, mode);
    }
}

/// A struct layout that is wrong for the running kernel (injected: the drop program reads the
/// skb's device from `skb->len`) is never silent: the first failure is told in words from the
/// kernel (aya-log) with the offset, and the count is on the exit line.
#[test]
fn a_wrong_kernel_layout_is_told_and_counted() {
    let _one = serial();
    let node = Node::up("flt");
    let tracer = common::Tracer::start_wrapped(&node, &["env", "VETHTRACE_FAULT=drop-layout"], &["--drops"]);
    // A datagram to a closed port: the pod's kernel frees it (NO_SOCKET), the drop program runs.
    for _ in 0..3 {
        common::run(node.in_pod("pod1", "bash").args(["-c", "echo x > /dev/udp/10.244.1.6/9"]));
    }
    let told = common::eventually(Duration::from_secs(5), || tracer.stderr().contains("in the kernel: kernel read at BTF offset"));
    let done = tracer.stop();
    assert!(told, "no in-kernel message:\n{}", done.stderr);
    let counted = done.stderr.lines().find(|l| l.contains("in-kernel failures")).unwrap_or_else(|| panic!("no count:\n{}", done.stderr));
    assert!(!counted.contains(" 0 in-kernel failures"), "{counted}");
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}
