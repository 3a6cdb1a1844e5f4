//! Calico's endpoint-status files: since Calico v3.28 Felix writes one file per workload
//! endpoint that is up into `<EndpointStatusPathPrefix>/endpoint-status/` (default
//! `/var/run/calico/endpoint-status/`; libcalico-go `lib/epstatusfile/status_file_writer.go`).
//!
//! - File name (libcalico-go `lib/names`, `WorkloadEndpointKeyToStatusFilename`): the
//!   orchestrator, workload and endpoint ids, each escaped with Go's `url.PathEscape`, joined
//!   by one space: `k8s default%2Fweb-7d4b9c-x2x9p eth0`. The workload id of a Kubernetes pod
//!   is `<namespace>/<pod>`.
//! - Content: the JSON of `WorkloadEndpointStatus`, `{"ifaceName":…,"mac":…,"ipv4Nets":[…],
//!   "ipv6Nets":[…],"bgpPeerName":…}`, every key omitted when empty.
//! - Felix writes with `os.WriteFile` (truncate, then write), so a file can be seen empty or
//!   half-written: it is read on IN_CLOSE_WRITE / IN_MOVED_TO, and a file that does not parse
//!   is skipped with one warning and read again when it changes.

use std::{
    collections::{BTreeMap, HashSet},
    net::IpAddr,
    path::{Path, PathBuf},
};

use futures::StreamExt as _;
use percent_encoding::percent_decode_str;
use tokio::sync::watch;

use super::{
    Pod, Source,
    dirwatch::{DirChange, DirWatch},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusError {
    #[error("the file name is not three space-separated ids (orchestrator, workload, endpoint)")]
    Name,
    #[error("the workload id '{0}' is not <namespace>/<pod>")]
    Workload(String),
    #[error("not an endpoint-status JSON object: {0}")]
    Json(String),
    #[error("no ifaceName")]
    NoIface,
    #[error("'{0}' is not an IP network")]
    Net(String),
}

/// The three ids of an endpoint-status file name, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointKey {
    pub orchestrator: String,
    pub workload: String,
    pub endpoint: String,
}

/// Splits and unescapes a file name the way libcalico-go's `StatusFilenameToWorkloadEndpointKey`
/// does (a space never survives `url.PathEscape`, so it only ever separates fields).
pub fn parse_file_name(name: &str) -> Result<EndpointKey, StatusError> {
    let fields: Vec<&str> = name.split(' ').collect();
    let [orchestrator, workload, endpoint] = fields.as_slice() else { return Err(StatusError::Name) };
    let unescape = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| StatusError::Name);
    Ok(EndpointKey { orchestrator: unescape(orchestrator)?, workload: unescape(workload)?, endpoint: unescape(endpoint)? })
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    #[serde(default)]
    iface_name: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    ipv4_nets: Vec<String>,
    #[serde(default)]
    ipv6_nets: Vec<String>,
}

/// "10.244.1.5/32" (or a bare address) → the address.
fn net_addr(net: &str) -> Result<IpAddr, StatusError> {
    let addr = net.split_once('/').map_or(net, |(a, _)| a);
    addr.parse().map_err(|_| StatusError::Net(net.to_owned()))
}

/// The pod a file describes; `Ok(None)` for endpoints of other orchestrators (OpenStack, …).
pub fn parse(file_name: &str, content: &[u8]) -> Result<Option<Pod>, StatusError> {
    let key = parse_file_name(file_name)?;
    if key.orchestrator != "k8s" {
        return Ok(None);
    }
    let (namespace, name) = key
        .workload
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
        .ok_or_else(|| StatusError::Workload(key.workload.clone()))?;
    let status: StatusJson = serde_json::from_slice(content).map_err(|e| StatusError::Json(e.to_string()))?;
    if status.iface_name.is_empty() {
        return Err(StatusError::NoIface);
    }
    let ips = status.ipv4_nets.iter().chain(&status.ipv6_nets).map(|n| net_addr(n)).collect::<Result<_, _>>()?;
    Ok(Some(Pod {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: None,
        ips,
        iface: Some(status.iface_name),
        mac: (!status.mac.is_empty()).then_some(status.mac),
        source: Source::CalicoStatus,
    }))
}

/// The directory, read once and then followed with inotify.
pub(super) struct StatusDir {
    dir: PathBuf,
    watch: DirWatch,
    /// Pods by file name.
    pods: BTreeMap<String, Pod>,
    /// Files that did not parse and were warned about (until they change into something valid).
    warned: HashSet<String>,
}

impl StatusDir {
    /// Watches `dir` and reads what is there; fails when `dir` is not a readable directory.
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        let watch = DirWatch::new(dir)?;
        let mut me = Self { dir: dir.to_owned(), watch, pods: BTreeMap::new(), warned: HashSet::new() };
        me.rescan()?;
        Ok(me)
    }

    pub(super) fn len(&self) -> usize {
        self.pods.len()
    }

    pub(super) fn pods(&self) -> Vec<Pod> {
        self.pods.values().cloned().collect()
    }

    fn rescan(&mut self) -> std::io::Result<()> {
        self.pods.clear();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                self.read(&entry.file_name().to_string_lossy());
            }
        }
        Ok(())
    }

    /// (Re-)reads one file; a file that is gone or does not parse leaves no pod.
    fn read(&mut self, name: &str) {
        self.pods.remove(name);
        let content = match std::fs::read(self.dir.join(name)) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => return self.warn(name, &e.to_string()),
        };
        match parse(name, &content) {
            Ok(Some(pod)) => {
                self.warned.remove(name);
                self.pods.insert(name.to_owned(), pod);
            }
            Ok(None) => {}
            Err(e) => self.warn(name, &e.to_string()),
        }
    }

    fn warn(&mut self, name: &str, why: &str) {
        if self.warned.insert(name.to_owned()) {
            eprintln!(
                "vethtrace: warning: skipping Calico endpoint-status file {}: {why} (read again when it changes)",
                self.dir.join(name).display()
            );
        }
    }

    /// Follows the directory until it goes away, publishing every change.
    pub(super) async fn run(mut self, tx: watch::Sender<Vec<Pod>>) {
        while let Some(change) = self.watch.next().await {
            match change {
                DirChange::Changed(name) => self.read(&name),
                DirChange::Removed(name) => {
                    self.warned.remove(&name);
                    self.pods.remove(&name);
                }
                DirChange::Rescan => {
                    if let Err(e) = self.rescan() {
                        eprintln!("vethtrace: warning: cannot re-read {}: {e}", self.dir.display());
                    }
                }
                DirChange::Gone => {
                    eprintln!("vethtrace: warning: {} went away; pods are no longer named from it", self.dir.display());
                    self.pods.clear();
                    tx.send_replace(Vec::new());
                    return;
                }
            }
            tx.send_replace(self.pods());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escapes a field the way Go's `url.PathEscape` does (RFC 3986 unreserved and the
    /// sub-delimiters it keeps in a path segment stay; everything else, '/' and ' ' included,
    /// becomes %XX), written here from Go's `shouldEscape` rules for `encodePathSegment`.
    fn go_path_escape(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b'$' | b'&' | b'+' | b',' | b':' | b';' | b'=' | b'@' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn felix_file_name(ns: &str, pod: &str) -> String {
        ["k8s", &format!("{ns}/{pod}"), "eth0"].map(go_path_escape).join(" ")
    }

    #[test]
    fn felix_names_round_trip() {
        let name = felix_file_name("default", "web-7d4b9c-x2x9p");
        assert_eq!(name, "k8s default%2Fweb-7d4b9c-x2x9p eth0");
        let key = parse_file_name(&name).unwrap();
        assert_eq!(key.workload, "default/web-7d4b9c-x2x9p");
        assert_eq!((key.orchestrator.as_str(), key.endpoint.as_str()), ("k8s", "eth0"));
        let odd = felix_file_name("team.a", "pod.with.dots");
        assert_eq!(parse_file_name(&odd).unwrap().workload, "team.a/pod.with.dots");
        assert_eq!(parse_file_name("k8s default%2Fweb"), Err(StatusError::Name));
        assert_eq!(parse_file_name("k8s a b c"), Err(StatusError::Name));
    }

    #[test]
    fn felix_json_is_read() {
        // What Go's json.Marshal writes for WorkloadEndpointStatus (omitempty keys left out).
        let content = br#"{"ifaceName":"cali1234567890a","mac":"ee:ee:ee:ee:ee:ee","ipv4Nets":["10.244.1.5/32"],"ipv6Nets":["fd00:244::5/128"]}"#;
        let pod = parse(&felix_file_name("default", "web"), content).unwrap().unwrap();
        assert_eq!((pod.namespace.as_str(), pod.name.as_str()), ("default", "web"));
        assert_eq!(pod.iface.as_deref(), Some("cali1234567890a"));
        assert_eq!(pod.mac.as_deref(), Some("ee:ee:ee:ee:ee:ee"));
        assert_eq!(pod.ips, ["10.244.1.5".parse::<IpAddr>().unwrap(), "fd00:244::5".parse().unwrap()]);
        assert_eq!(pod.source, Source::CalicoStatus);
        let v4only = parse(&felix_file_name("a", "b"), br#"{"ifaceName":"calix"}"#).unwrap().unwrap();
        assert!(v4only.ips.is_empty() && v4only.mac.is_none());
    }

    #[test]
    fn bad_files_are_errors_and_other_orchestrators_are_ignored() {
        let name = felix_file_name("default", "web");
        assert!(matches!(parse(&name, b""), Err(StatusError::Json(_))));
        assert!(matches!(parse(&name, br#"{"ifaceName":"cali1","ipv4Nets":["10.244."#), Err(StatusError::Json(_))));
        assert_eq!(parse(&name, br#"{"mac":"ee:ee:ee:ee:ee:ee"}"#), Err(StatusError::NoIface));
        assert_eq!(
            parse(&name, br#"{"ifaceName":"cali1","ipv4Nets":["nope/32"]}"#),
            Err(StatusError::Net("nope/32".into()))
        );
        assert_eq!(parse("k8s nopod eth0", b"{}"), Err(StatusError::Workload("nopod".into())));
        assert_eq!(parse("openstack vm1 tap0", br#"{"ifaceName":"tap0"}"#), Ok(None));
    }
}
