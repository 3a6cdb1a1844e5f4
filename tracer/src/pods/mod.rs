//! Which pod is behind a cali: a live, node-local map from interface name and from IP address
//! to the pod's namespace, name, UID and IPs.
//!
//! Like the netlink [`mirror`](crate::mirror), it is a watch, never a query per event: the
//! source is followed (inotify or a one-second CRI poll), the node's links and host routes by
//! netlink multicast, and each change swaps in a new [`Snapshot`]. A lookup is a read lock and
//! a hash probe.
//!
//! # Sources, first that works wins
//! 1. [`Source::CalicoStatus`]: Felix's endpoint-status files (`--calico-status-dir`, default
//!    `/var/run/calico/endpoint-status`, Calico ≥ 3.28): interface, MAC and IPs per pod, exact.
//! 2. [`Source::Cri`]: the container runtime's CRI socket (`--cri-socket`, else containerd's
//!    and CRI-O's default paths): ready sandboxes with namespace, name, UID and IPs; a
//!    sandbox's cali is the interface its IPs are routed to.
//! 3. [`Source::CalicoHash`]: kubelet's `/var/log/pods/<ns>_<pod>_<uid>/` (`--kubelet-pods-dir`)
//!    and Calico's veth name rule ([`hash::veth_name`]); IPs from the host routes.
//!
//! A source that fails says why once and the next is tried; none is a warning, never an
//! error: lookups then answer `None`.
//!
//! # Wiring it in
//! ```no_run
//! # async fn f(args: &tracer::cli::PodArgs) {
//! // inside the tokio runtime; a tracing process hands over its own node state instead
//! let (pods, report) = tracer::pods::start(args, tracer::pods::follow_node().await).await;
//! report.print();
//! if let Some(pod) = pods.by_ifname("cali96b50713f3f") {
//!     println!("{}/{} {:?}", pod.namespace, pod.name, pod.uid);
//! }
//! # }
//! ```
//! [`PodIndex`] is cheap to clone (two `Arc`s); [`PodIndex::changed`] wakes when the map
//! changed, for a caller that must re-evaluate something (`--pod` selection).

pub mod calico_status;
pub mod cri;
mod dirwatch;
pub mod hash;
mod index;
pub mod kubelet;

use std::{
    fmt,
    net::IpAddr,
    path::Path,
    sync::{Arc, RwLock},
};

use tokio::sync::watch;

pub use self::index::{LinkRow, NodeLinks, Snapshot, follow_node, node_links};
use crate::cli::{PodArgs, PodSelector};

/// Where a pod's identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Calico's endpoint-status files.
    CalicoStatus,
    /// The container runtime over the CRI.
    Cri,
    /// Calico's veth name rule over kubelet's pod directories.
    CalicoHash,
}

impl Source {
    /// As shown in `vethtrace pods` and JSON: `calico-status`, `cri`, `calico-hash`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CalicoStatus => "calico-status",
            Self::Cri => "cri",
            Self::CalicoHash => "calico-hash",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pod as a source knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// Kubernetes UID (the CRI and kubelet's directories have it; Calico's status files do not).
    pub uid: Option<String>,
    /// The pod's addresses (from the source, else the host routes to its interface).
    pub ips: Vec<IpAddr>,
    /// Host-side interface (cali…), when known.
    pub iface: Option<String>,
    /// The MAC Calico recorded for the pod's end (status files only).
    pub mac: Option<String>,
    pub source: Source,
}

impl Pod {
    /// Whether `--pod` `sel` names this pod.
    pub fn is(&self, sel: &PodSelector) -> bool {
        self.name == sel.name && sel.namespace.as_ref().is_none_or(|ns| *ns == self.namespace)
    }
}

/// The live map (clone it freely).
#[derive(Clone)]
pub struct PodIndex {
    shared: Arc<RwLock<Arc<Snapshot>>>,
    generation: watch::Receiver<u64>,
}

impl fmt::Debug for PodIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodIndex").field("pods", &self.snapshot().pods.len()).finish_non_exhaustive()
    }
}

impl PodIndex {
    /// The pod behind interface `name`.
    pub fn by_ifname(&self, name: &str) -> Option<Arc<Pod>> {
        self.snapshot().by_ifname(name).cloned()
    }

    /// Everything at this moment (pods and the node's interfaces).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until the map changed since the last call (or since the clone was made).
    /// Never returns once nothing can change any more.
    pub async fn changed(&mut self) {
        if self.generation.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One reader's copy of the map, for the events' path: taken again only when the indexer
/// published a new one, so that a lookup takes no lock and clones no snapshot.
#[derive(Debug)]
pub struct PodReader {
    index: PodIndex,
    snapshot: Arc<Snapshot>,
}

impl PodReader {
    pub fn new(mut index: PodIndex) -> Self {
        index.generation.borrow_and_update();
        let snapshot = index.snapshot();
        Self { index, snapshot }
    }

    /// Takes the latest map if there is a newer one (one atomic load when there is not).
    pub fn refresh(&mut self) {
        if self.index.generation.has_changed().unwrap_or(false) {
            self.index.generation.borrow_and_update();
            self.snapshot = self.index.snapshot();
        }
    }

    pub fn by_ifname(&self, name: &str) -> Option<Arc<Pod>> {
        self.snapshot.by_ifname(name).cloned()
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<Arc<Pod>> {
        self.snapshot.by_ip(ip).cloned()
    }
}

/// One source tried: what it found, or why it was not used.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub source: Source,
    pub outcome: Result<String, String>,
}

/// What [`start`] found: each source tried, in order, and the one that answered.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub attempts: Vec<Attempt>,
    pub chosen: Option<Source>,
}

impl Report {
    /// One line: the source that answered, or why none did (for `vethtrace check`).
    pub fn summary(&self) -> Result<String, String> {
        let why =
            || self.attempts.iter().filter_map(|a| a.outcome.as_ref().err().map(|e| format!("{}: {e}", a.source)));
        match self.attempts.iter().find(|a| Some(a.source) == self.chosen) {
            Some(Attempt { source, outcome: Ok(detail) }) => Ok(format!("{source} ({detail})")),
            _ => Err(format!("no source answered ({}); events carry no pod", why().collect::<Vec<_>>().join("; "))),
        }
    }

    /// On standard error: why each source before the chosen one failed, then which answered.
    pub fn print(&self) {
        for a in &self.attempts {
            match &a.outcome {
                Ok(detail) => log::info!("pods named by {} ({detail})", a.source),
                Err(why) => log::info!("pods: {} not used: {why}", a.source),
            }
        }
        if self.chosen.is_none() {
            log::warn!("no pod-identity source answered; events carry no pod");
        }
    }
}

/// A source opened and read once, ready to follow.
enum Opened {
    Calico(calico_status::StatusDir),
    Cri(cri::Cri),
    Hash(kubelet::PodsDir),
}

impl Opened {
    fn pods(&self) -> Vec<Pod> {
        match self {
            Self::Calico(s) => s.pods(),
            Self::Cri(s) => s.pods(),
            Self::Hash(s) => s.pods(),
        }
    }

    async fn run(self, tx: watch::Sender<Vec<Pod>>) {
        match self {
            Self::Calico(s) => s.run(tx).await,
            Self::Cri(s) => s.run(tx).await,
            Self::Hash(s) => s.run(tx).await,
        }
    }
}

fn io_why(dir: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", dir.display())
}

async fn open_cri(args: &PodArgs) -> Result<cri::Cri, String> {
    let sockets: Vec<&Path> = match &args.cri_socket {
        Some(p) => vec![p.as_path()],
        None => cri::DEFAULT_SOCKETS.iter().map(Path::new).collect(),
    };
    let mut why = Vec::new();
    for socket in sockets {
        match cri::Cri::connect(socket).await {
            Ok(c) => return Ok(c),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(why.join("; "))
}

/// Tries the sources in order; the first that opens is returned with the report.
async fn open_first(args: &PodArgs) -> (Option<Opened>, Report) {
    let mut report = Report::default();
    let mut tried = |source, outcome: Result<String, String>| {
        report.attempts.push(Attempt { source, outcome: outcome.clone() });
        if outcome.is_ok() {
            report.chosen = Some(source);
        }
    };
    let dir = &args.calico_status_dir;
    match calico_status::StatusDir::open(dir, calico_status::StatusFiles::default()) {
        Ok(s) => {
            tried(Source::CalicoStatus, Ok(format!("{}, {} endpoints", dir.display(), s.len())));
            return (Some(Opened::Calico(s)), report);
        }
        Err(e) => tried(Source::CalicoStatus, Err(io_why(dir, &e))),
    }
    match open_cri(args).await {
        Ok(c) => {
            tried(Source::Cri, Ok(format!("{} at {}, {} sandboxes", c.runtime, c.socket.display(), c.len())));
            return (Some(Opened::Cri(c)), report);
        }
        Err(why) => tried(Source::Cri, Err(why)),
    }
    let dir = &args.kubelet_pods_dir;
    match kubelet::PodsDir::open(dir, kubelet::PodDirs) {
        Ok(k) => {
            tried(Source::CalicoHash, Ok(format!("{}, {} pods", dir.display(), k.len())));
            (Some(Opened::Hash(k)), report)
        }
        Err(e) => {
            tried(Source::CalicoHash, Err(io_why(dir, &e)));
            (None, report)
        }
    }
}

/// Which source would answer, without following it (for `vethtrace check`).
pub async fn probe(args: &PodArgs) -> Report {
    open_first(args).await.1
}

/// Opens the first source that works and follows it and the node's links and routes on the
/// current tokio runtime (spawned tasks; a `current_thread` runtime is fine). Never fails:
/// with no source the index stays empty and the report says why.
pub async fn start(args: &PodArgs, node: watch::Receiver<NodeLinks>) -> (PodIndex, Report) {
    let (opened, report) = open_first(args).await;
    let (tx, source) = watch::channel(opened.as_ref().map(Opened::pods).unwrap_or_default());
    if let Some(opened) = opened {
        tokio::spawn(opened.run(tx));
    }
    let (generation, rx) = watch::channel(0);
    // Complete before it is handed out: a one-shot `vethtrace pods` reads it at once.
    let first = Snapshot::build(&source.borrow(), &node.borrow());
    let shared = Arc::new(RwLock::new(Arc::new(first)));
    let indexer = index::Indexer { shared: shared.clone(), generation, source, node };
    tokio::spawn(indexer.run());
    (PodIndex { shared, generation: rx }, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_selectors() {
        let sel: PodSelector = "shop/web".parse().unwrap();
        assert_eq!(sel, PodSelector { namespace: Some("shop".into()), name: "web".into() });
        let any: PodSelector = "web".parse().unwrap();
        let pod = Pod {
            namespace: "shop".into(),
            name: "web".into(),
            uid: None,
            ips: vec![],
            iface: None,
            mac: None,
            source: Source::Cri,
        };
        assert!(pod.is(&sel) && pod.is(&any));
        assert!(!pod.is(&"other/web".parse().unwrap()));
        assert!(!pod.is(&"web2".parse().unwrap()));
        for bad in ["", "/web", "shop/", "a/b/c", "a b"] {
            assert!(bad.parse::<PodSelector>().is_err(), "{bad:?}");
        }
    }
}
