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

use std::{collections::HashSet, net::IpAddr, path::Path};

use percent_encoding::percent_decode_str;

use super::{
    Pod, Source,
    dirwatch::{Entries, PodDir},
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

/// Felix's files as [`Entries`]: a file that does not parse is warned about once (until it
/// parses again or goes away).
#[derive(Default)]
pub(super) struct StatusFiles {
    warned: HashSet<String>,
}

/// The endpoint-status directory, followed.
pub(super) type StatusDir = PodDir<StatusFiles>;

impl StatusFiles {
    fn warn(&mut self, path: &Path, name: &str, why: &str) {
        if self.warned.insert(name.to_owned()) {
            log::warn!(
                "skipping Calico endpoint-status file {}: {why} (read again when it changes)",
                path.display()
            );
        }
    }
}

impl Entries for StatusFiles {
    fn read(&mut self, dir: &Path, name: &str) -> Option<Pod> {
        let path = dir.join(name);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let content = match std::fs::read(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.warn(&path, name, &e.to_string());
                return None;
            }
        };
        match parse(name, &content) {
            Ok(pod) => {
                self.warned.remove(name);
                pod
            }
            Err(e) => {
                self.warn(&path, name, &e.to_string());
                None
            }
        }
    }

    fn forget(&mut self, name: &str) {
        self.warned.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// File names as Felix writes them (`url.PathEscape` of each field; '/' is %2F).
    fn felix_file_name(ns: &str, pod: &str) -> String {
        format!("k8s {ns}%2F{pod} eth0")
    }

    #[test]
    fn felix_names_round_trip() {
        let key = parse_file_name(&felix_file_name("default", "web-7d4b9c-x2x9p")).unwrap();
        assert_eq!(key.workload, "default/web-7d4b9c-x2x9p");
        assert_eq!((key.orchestrator.as_str(), key.endpoint.as_str()), ("k8s", "eth0"));
        let odd = parse_file_name("k8s team.a%2Fpod.with.dots eth0").unwrap();
        assert_eq!(odd.workload, "team.a/pod.with.dots");
        // Characters url.PathEscape escapes besides '/': '%' itself, '?', '#', ' ' (never in
        // Kubernetes names, but a name must not be misread if they ever appear).
        assert_eq!(parse_file_name("k8s a%25b%3F%23%20c eth0").unwrap().workload, "a%b?# c");
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
