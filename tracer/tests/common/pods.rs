//! Helpers for the pod-identity tests: `vethtrace pods` once and `--watch`, iproute2's view
//! of an interface, and Python's hashlib for Calico's veth names.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{Node, scratch_dir, vethtrace_bin, wait_timeout};

/// `vethtrace pods -o json ARGS` in the node: the rows and standard error.
pub fn pods_once(node: &Node, args: &[&str]) -> (Vec<Value>, String) {
    let out = node.in_node(vethtrace_bin().to_str().unwrap()).args(["pods", "-o", "json"]).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "vethtrace pods failed: {stderr}");
    let rows = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (rows, stderr)
}

pub fn row<'a>(rows: &'a [Value], iface: &str) -> &'a Value {
    rows.iter().find(|r| r["iface"] == iface).unwrap_or_else(|| panic!("no row for {iface}: {rows:?}"))
}

/// Interface, UP flag, peer netns id and /32 or /128 routes, as iproute2 reports them.
pub fn iproute_view(node: &Node, iface: &str) -> (bool, Option<i64>, Vec<String>) {
    let links: Vec<Value> = serde_json::from_str(&node.ip(&["-j", "link", "show", "dev", iface])).unwrap();
    let link = &links[0];
    let up = link["flags"].as_array().unwrap().iter().any(|f| f == "UP");
    let mut routed = Vec::new();
    for family in ["-4", "-6"] {
        let routes: Vec<Value> = serde_json::from_str(&node.ip(&[family, "-j", "route", "show", "dev", iface])).unwrap();
        for r in routes {
            let dst = r["dst"].as_str().unwrap_or_default();
            if !dst.contains('/') && !dst.starts_with("fe80") && dst != "default" {
                routed.push(dst.to_owned());
            }
        }
    }
    routed.sort();
    (up, link["link_netnsid"].as_i64(), routed)
}

/// Checks a row's interface facts against iproute2.
pub fn assert_row_matches_iproute(node: &Node, r: &Value) {
    let iface = r["iface"].as_str().unwrap();
    let (up, netnsid, routed) = iproute_view(node, iface);
    assert_eq!(r["state"], if up { "up" } else { "down" }, "{r}");
    assert_eq!(r["peer_netns_id"].as_i64(), netnsid, "{r}");
    if r.get("pod_name").is_none() {
        let mut ips: Vec<String> = r["ips"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        ips.sort();
        assert_eq!(ips, routed, "{r}");
    }
}

/// A long-running `vethtrace pods --watch -o json` in the node.
pub struct Watcher {
    child: Option<Child>,
    dir: PathBuf,
}

impl Watcher {
    pub fn start(node: &Node, args: &[&str]) -> Self {
        let dir = scratch_dir("pw");
        let child = node
            .in_node(vethtrace_bin().to_str().unwrap())
            .args(["pods", "--watch", "-o", "json"])
            .args(args)
            .stdout(fs::File::create(dir.join("out")).unwrap())
            .stderr(fs::File::create(dir.join("err")).unwrap())
            .spawn()
            .unwrap();
        Self { child: Some(child), dir }
    }

    pub fn lines(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.dir.join("out")).unwrap_or_default();
        text.lines().filter(|l| l.ends_with('}')).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("err")).unwrap_or_default()
    }

    /// Waits up to 10 s for a line after the first `skip` that satisfies `pred`; returns the
    /// number of lines up to and including it.
    pub fn wait(&mut self, skip: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.lines();
            if let Some(i) = lines.iter().skip(skip).position(&pred) {
                return skip + i + 1;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("vethtrace pods --watch exited ({status}) before {what}\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no line {what} within 10 s: {lines:?}\n{}", self.stderr());
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let status = wait_timeout(&mut child, Duration::from_secs(10));
        assert!(status.success(), "vethtrace pods --watch: {status}\n{}", self.stderr());
        self.stderr()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Python's hashlib's Calico name for `ns.pod` (an oracle apart from vethtrace's sha1).
pub fn python_cali(ns: &str, pod: &str) -> String {
    let script = "import hashlib,sys; print('cali' + hashlib.sha1(sys.argv[1].encode()).hexdigest()[:11])";
    let out = Command::new("python3").args(["-c", script, &format!("{ns}.{pod}")]).output().expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}


/// Owned arguments as `&str`s for `Command::args`.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
