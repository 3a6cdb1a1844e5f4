//! `vethtrace top` in a real terminal: tmux (a private server of the test's own) runs it in the
//! test node's namespace at 120×40, and the test reads the screen with `capture-pane` and types
//! with `send-keys`. Rows for every pod; under a steady iperf3 stream the rates shown match the
//! veths' own counters (`/sys/class/net/<cali>/statistics`) within 10 %; a planted nft drop
//! shows in the sender's row with its cause within 2 s; the sort and filter keys change the
//! rows; 80×24 keeps the pod, interface, packet and drop columns; `q` restores the terminal (no
//! alternate screen left) and leaves nothing attached.
//!
//! Needs root, tmux and iperf3 (apt `tmux`, `iperf3`; `cargo xtask setup` installs them).

mod common;

use std::{
    fs,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{Node, run, scratch_dir, stdout};

/// A session on a tmux server of the test's own (`-L`), running vethtrace top.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(socket: &str, session: &str, shell: &str) -> Self {
        let tmux = Self { socket: socket.to_owned(), session: session.to_owned() };
        run(tmux.command().args(["-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", shell]));
        tmux
    }

    /// The process the pane's shell runs (vethtrace: `ip netns exec` execs it).
    fn child_pid(&self) -> u32 {
        let shell = stdout(self.command().args(["display-message", "-p", "-t", &self.session, "#{pane_pid}"]));
        let shell = shell.trim();
        let children = fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap_or_default();
        children.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no child of {shell}"))
    }

    fn screen(&self) -> String {
        stdout(self.command().args(["capture-pane", "-p", "-t", &self.session]))
    }

    /// Whether the screen shows a foreground colour, read from tmux's escape sequences
    /// (`capture-pane -e`: `ESC[36m` or `ESC[38;5;6m`).
    fn coloured(&self) -> bool {
        let screen = stdout(self.command().args(["capture-pane", "-p", "-e", "-t", &self.session]));
        screen.split("\x1b[").skip(1).filter_map(|seq| seq.split_once('m')).any(|(params, _)| {
            params.split(';').filter_map(|p| p.parse::<u8>().ok()).any(|p| matches!(p, 30..=38 | 90..=97))
        })
    }

    fn keys(&self, keys: &[&str]) {
        run(self.command().args(["send-keys", "-t", &self.session]).args(keys));
    }

    fn alternate_on(&self) -> bool {
        stdout(self.command().args(["display-message", "-p", "-t", &self.session, "#{alternate_on}"])).trim() == "1"
    }

    /// The screen once `cond` holds for it (panics with the screen after `limit`).
    fn wait(&self, limit: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            assert!(Instant::now() < until, "{what} not seen within {limit:?}:\n{screen}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().args(["kill-session", "-t", &self.session]).output();
    }
}

/// `1.23k` → 1230.
fn parse_si(s: &str) -> Option<f64> {
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().map(|n| n * mult)
}

/// Column titles as the view prints them.
const TITLES: [&str; 11] = ["POD", "IFACE", "IPS", "IN PK/S", "OUT PK/S", "IN B/S", "OUT B/S", "DROPS/S", "NEIGH", "ARP OK/NO", "IDLE"];

/// The cell of column `title` in the row of `iface` (a column starts where its title does and
/// ends where the next one starts).
fn cell(screen: &str, iface: &str, title: &str) -> Option<String> {
    let head = screen.lines().find(|l| l.contains("IN PK/S"))?;
    let col = |t: &str| head.find(t).map(|b| head[..b].chars().count());
    let at = col(title)?;
    let end = TITLES.iter().filter_map(|t| col(t)).filter(|s| *s > at).min().unwrap_or(usize::MAX);
    let row = screen.lines().find(|l| l.contains(iface))?;
    Some(row.chars().skip(at).take(end - at).collect::<String>().trim().to_owned())
}

/// The order in which `ifaces` appear on the screen.
fn order<'a>(screen: &str, ifaces: &[&'a str]) -> Vec<&'a str> {
    let mut at: Vec<(usize, &str)> = ifaces.iter().filter_map(|i| screen.find(i).map(|p| (p, *i))).collect();
    at.sort_unstable();
    at.into_iter().map(|(_, i)| i).collect()
}

/// Counters of `iface` in the node's namespace, from sysfs.
fn sys_counter(node: &Node, iface: &str, name: &str) -> u64 {
    let out = stdout(node.in_node("cat").arg(format!("/sys/class/net/{iface}/statistics/{name}")));
    out.trim().parse().unwrap_or_else(|e| panic!("{name} of {iface}: {out:?}: {e}"))
}

fn require_tools() {
    for tool in ["tmux", "iperf3", "nft"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is needed (cargo xtask setup installs it); CI={:?}", std::env::var("CI").ok());
    }
}

/// One rate the pane shows: the interface, the column pair (`IN`: from the pod, the cali's
/// rx; `OUT`: to the pod, its tx).
struct Watched<'a> {
    iface: &'a str,
    dir: &'a str,
}

impl Watched<'_> {
    /// The kernel's counts (frames, bytes), from sysfs.
    fn counters(&self, node: &Node) -> (u64, u64) {
        let n = |name: &str| sys_counter(node, self.iface, name);
        match self.dir {
            "IN" => (n("rx_packets"), n("rx_bytes")),
            // A veth counts a frame its peer refused as dropped, after the egress hook saw it.
            _ => (n("tx_packets") + n("tx_dropped"), n("tx_bytes")),
        }
    }

    /// The pane's (frames, bytes) per second.
    fn shown(&self, screen: &str) -> (f64, f64) {
        let read = |unit: &str| {
            let title = format!("{} {unit}", self.dir);
            let c = cell(screen, self.iface, &title).unwrap_or_else(|| panic!("no {title} for {}:\n{screen}", self.iface));
            parse_si(&c).unwrap_or_else(|| panic!("{title} of {}: {c:?}", self.iface))
        };
        (read("PK/S"), read("B/S"))
    }
}

/// The pane's rates (the median of five refreshes) against what the counters gained over the
/// same time, within 10 %.
fn check_rates(tmux: &Tmux, node: &Node, watched: &[Watched<'_>]) {
    let before: Vec<(u64, u64)> = watched.iter().map(|w| w.counters(node)).collect();
    let t0 = Instant::now();
    let mut shown: Vec<Vec<(f64, f64)>> = vec![Vec::new(); watched.len()];
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(1000));
        let screen = tmux.screen();
        for (w, seen) in watched.iter().zip(&mut shown) {
            seen.push(w.shown(&screen));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for ((w, (p0, b0)), seen) in watched.iter().zip(before).zip(shown) {
        let (p1, b1) = w.counters(node);
        let (pps, bps) = ((p1 - p0) as f64 / secs, (b1 - b0) as f64 / secs);
        assert!(pps > 1000.0, "{} {}: the stream ran at {pps} pk/s", w.iface, w.dir);
        let (shown_p, shown_b) = (median(seen.iter().map(|s| s.0).collect()), median(seen.iter().map(|s| s.1).collect()));
        let what = format!("{} {}: shown {shown_p} pk/s {shown_b} B/s, counters {pps} {bps} ({seen:?})", w.iface, w.dir);
        assert!((shown_p - pps).abs() <= pps * 0.10 && (shown_b - bps).abs() <= bps * 0.10, "{what}");
    }
}

/// A steady UDP stream pod1 → pod2 (40 Mbit/s of 1200-byte datagrams) for `secs`.
fn stream(node: &Node, secs: u32) -> std::process::Child {
    let _server = node.in_pod("pod2", "iperf3").args(["-s", "-1", "-p", "5201", "-D"]).status();
    assert!(
        common::eventually(Duration::from_secs(5), || stdout(node.in_pod("pod2", "ss").args(["-Hlun", "sport = :5201"])).contains("5201")
            || stdout(node.in_pod("pod2", "ss").args(["-Htln", "sport = :5201"])).contains("5201")),
        "iperf3 server did not listen"
    );
    node.in_pod("pod1", "iperf3")
        .args(["-c", "10.244.1.6", "-u", "-b", "40M", "-l", "1200", "-t", &secs.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 client")
}

/// The pod sources of the test: kubelet's pod directories only (names from Calico's hash).
fn pod_sources(tmp: &Path) -> String {
    let kubelet = tmp.join("pods");
    fs::create_dir_all(kubelet.join("shop_web_0b7e1c2a-1f3e-4c55-9d2b-6a1e5f0c7d11")).unwrap();
    format!(
        "--calico-status-dir {} --cri-socket {} --kubelet-pods-dir {}",
        tmp.join("no-calico").display(),
        tmp.join("no-runtime.sock").display(),
        kubelet.display()
    )
}

/// The shell line tmux runs: vethtrace top in the node, then how it ended and the terminal's
/// line mode (`icanon` once raw mode is off).
fn top_shell(node: &Node, tmp: &Path, ready: &Path, env: &str) -> String {
    format!(
        "ip netns exec {} env {env} {} top {} --ready-file {}; echo vethtrace-exited-$?; stty -a | grep -o -- '-*icanon' | head -n 1; sleep 600",
        node.ns(),
        common::vethtrace_bin().display(),
        pod_sources(tmp),
        ready.display()
    )
}

/// vethtrace exited with `code` and left the terminal as it found it; the screen then.
fn assert_restored(tmux: &Tmux, code: u8) -> String {
    let exited = format!("vethtrace-exited-{code}");
    let s = tmux.wait(Duration::from_secs(10), &exited, |s| s.contains(&exited) && s.contains("icanon"));
    assert!(!tmux.alternate_on(), "the alternate screen was left on:\n{s}");
    assert!(s.lines().any(|l| l.trim() == "icanon"), "raw mode left on:\n{s}");
    s
}

/// Sorting by pod, A to Z ("-" before "shop/web"), then reversed; filtering by namespace, then
/// cleared. `calis`: pod1's, pod2's, shop/web's.
fn check_keys(tmux: &Tmux, calis: [&str; 3]) {
    let web = calis[2];
    tmux.keys(&["1"]);
    let s = tmux.wait(Duration::from_secs(2), "sorted by pod", |s| s.contains("POD▲"));
    assert_eq!(order(&s, &calis).last(), Some(&web), "{s}");
    tmux.keys(&["r"]);
    let s = tmux.wait(Duration::from_secs(2), "reversed", |s| s.contains("POD▼"));
    assert_eq!(order(&s, &calis).first(), Some(&web), "{s}");
    tmux.keys(&["/", "shop", "Enter"]);
    let s = tmux.wait(Duration::from_secs(2), "the filter", |s| s.contains("filter \"shop\""));
    assert_eq!(order(&s, &calis), [web], "{s}");
    tmux.keys(&["c"]);
    tmux.wait(Duration::from_secs(2), "every row back", |s| calis.iter().all(|c| s.contains(c)));
}

/// SIGTERM and a panic (injected) leave the terminal as `q` does, and nothing attached; with
/// NO_COLOR the view has no colour.
fn check_signal_and_panic(node: &Node, tmp: &Path, socket: &str, web: &str) {
    let ready = tmp.join("ready2");
    let again = Tmux::start(socket, "top2", &top_shell(node, tmp, &ready, "NO_COLOR=1"));
    assert!(common::eventually(Duration::from_secs(20), || ready.exists()), "not ready:\n{}", again.screen());
    again.wait(Duration::from_secs(5), "the view", |s| s.contains(web));
    assert!(!again.coloured(), "colours with NO_COLOR");
    run(Command::new("kill").args(["-TERM", &again.child_pid().to_string()]));
    assert_restored(&again, 0);
    assert!(common::system::our_tc_progs(&node.ns()).is_empty(), "programs left attached");

    // A panic (injected): the terminal restored too, one line saying so.
    let panicked = Tmux::start(socket, "top3", &top_shell(node, tmp, &tmp.join("r3"), "VETHTRACE_FAULT=top-panic"));
    let s = assert_restored(&panicked, 101);
    assert!(s.contains("internal error") && s.contains("top-panic"), "{s}");
    assert!(common::system::our_tc_progs(&node.ns()).is_empty(), "programs left attached");
}

#[test]
fn top_shows_every_pod_its_rates_and_drops_and_answers_its_keys() {
    common::require_root();
    require_tools();
    let started = Instant::now();
    let node = Node::up("tp");
    let web = node.add_k8s_pod("k1", "10.244.1.7", "-", "shop/web");
    let (c1, c2) = (node.cali("pod1"), node.cali("pod2"));
    let tmp = scratch_dir("tp");
    let ready = tmp.join("ready");
    // pod1 → k1's pings meet an nft drop in the node's forward chain (the node's own namespace).
    let rules = tmp.join("rules.nft");
    fs::write(&rules, "table inet vttop {\n  chain vtfwd {\n    type filter hook forward priority 0;\n    ip daddr 10.244.1.7 icmp type echo-request drop\n  }\n}\n").unwrap();
    run(node.in_node("nft").arg("-f").arg(&rules));

    let tmux = Tmux::start(&format!("{}-tmux", node.prefix), "top", &top_shell(&node, &tmp, &ready, ""));
    assert!(common::eventually(Duration::from_secs(20), || ready.exists()), "not ready:\n{}", tmux.screen());
    let screen = tmux.wait(Duration::from_secs(5), "a row per pod", |s| [&c1, &c2, &web].iter().all(|c| s.contains(c.as_str())));
    assert!(tmux.alternate_on(), "the view runs on the alternate screen");
    assert!(tmux.coloured(), "colours without NO_COLOR");
    assert!(order(&screen, &["shop/web", &web]) == ["shop/web", web.as_str()], "the pod on its row: {screen}");
    assert!(screen.contains("q quit") && screen.contains("tc tcx") || screen.contains("tc clsact"), "{screen}");

    // Rates under a steady stream, against the veths' own counters.
    let mut client = stream(&node, 12);
    thread::sleep(Duration::from_secs(2));
    check_rates(&tmux, &node, &[Watched { iface: &c1, dir: "IN" }, Watched { iface: &c2, dir: "OUT" }]);
    let _ = common::wait_timeout(&mut client, Duration::from_secs(15));

    // A planted fault: the drop shows in the sender's row, with its cause, within 2 s.
    let pinged = Instant::now();
    let mut ping = node.in_pod("pod1", "ping").args(["-q", "-c", "3", "-i", "0.2", "10.244.1.7"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let screen = tmux.wait(Duration::from_secs(2), "NETFILTER_DROP in pod1's row", |s| {
        cell(s, &c1, "DROPS/S").is_some_and(|c| c.contains("NETFILTER"))
    });
    eprintln!("drop shown after {:?}", pinged.elapsed());
    for other in [&c2, &web] {
        assert!(!cell(&screen, other, "DROPS/S").unwrap_or_default().contains("NETFILTER"), "{screen}");
    }
    let _ = ping.wait();

    // Proxy ARP off on shop/web's cali: its requests for the gateway go unanswered.
    run(node.in_node("sysctl").args(["-qw", &format!("net.ipv4.conf.{web}.proxy_arp=0")]));
    let mut ping = node.in_pod("k1", "ping").args(["-q", "-c", "2", "-W", "1", "10.244.1.5"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let screen = tmux.wait(Duration::from_secs(3), "an unanswered ARP request in shop/web's row", |s| {
        cell(s, &web, "ARP OK/NO").and_then(|c| c.split_once('/').map(|(_, no)| no != "0")).unwrap_or(false)
    });
    assert!(cell(&screen, &web, "DROPS/S").is_some_and(|c| c.contains("ARP_UNANSWERED")), "{screen}");
    // pod2's requests were answered (it resolved its gateway for the stream).
    assert!(cell(&screen, &c2, "ARP OK/NO").is_some_and(|c| c.ends_with("/0") && c != "0/0"), "{screen}");
    let _ = ping.wait();

    check_keys(&tmux, [&c1, &c2, &web]);

    // 80×24: still a row per pod with the packets and drop columns, nothing past column 80.
    run(tmux.command().args(["resize-window", "-t", &tmux.session, "-x", "80", "-y", "24"]));
    let s = tmux.wait(Duration::from_secs(3), "the 80-column view", |s| {
        s.lines().count() <= 24 && s.contains("DROPS/S") && s.contains("IN PK/S") && !s.contains("IN B/S")
    });
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    assert!([&c1, &c2, &web].iter().all(|c| s.contains(c.as_str())), "{s}");
    assert!(cell(&s, &c1, "DROPS/S").is_some_and(|c| c.contains("NETFILTER")), "the newest cause stays: {s}");

    // q: the terminal back (no alternate screen, line mode), vethtrace gone, nothing attached.
    tmux.keys(&["q"]);
    assert_restored(&tmux, 0);
    assert!(common::system::our_tc_progs(&node.ns()).is_empty(), "programs left attached");
    check_signal_and_panic(&node, &tmp, &tmux.socket, &web);

    eprintln!("top test took {:?}", started.elapsed());
}

#[test]
fn without_a_terminal_top_prints_a_table_per_second() {
    common::require_root();
    let node = Node::up("tq");
    let tmp = scratch_dir("tq");
    let args: Vec<String> = ["top".to_owned(), "--duration".into(), "2.5".into()]
        .into_iter()
        .chain(pod_sources(&tmp).split(' ').map(str::to_owned))
        .collect();
    let out = run(node.in_node(common::vethtrace_bin()).args(&args));
    let text = String::from_utf8_lossy(&out.stdout);
    let tables: Vec<&str> = text.split("\n\n").filter(|t| !t.trim().is_empty()).collect();
    assert!(tables.len() >= 2, "{text}");
    for t in &tables {
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("2 traced"), "{t}");
        assert!(lines[1].starts_with("POD") && lines[1].contains("IN PK/S"), "{t}");
        for pod in ["pod1", "pod2"] {
            assert!(lines.iter().any(|l| l.contains(&node.cali(pod))), "{pod}: {t}");
        }
    }
    assert!(!text.contains('\x1b'), "no escape sequence without a terminal");
    // A reader that goes away ends it quietly (`vethtrace top | head`).
    let piped = format!("ip netns exec {} {} top {} | head -n 3", node.ns(), common::vethtrace_bin().display(), pod_sources(&tmp));
    let out = run(Command::new("timeout").args(["20", "bash", "-c", &format!("set -o pipefail; {piped}")]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(common::system::our_tc_progs(&node.ns()).is_empty(), "programs left attached");
    // Bad input: one line, exit 2, nothing loaded.
    for bad in [&["top", "tcp", "port"][..], &["top", "--ring-size", "5"], &["top", "--probe", "uprobe"], &["top", "--nope"]] {
        let out = node.in_node(common::vethtrace_bin()).args(bad).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bad:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
    }
}
