//! The node's container runtime over the CRI (containerd, CRI-O): the pod sandboxes that are
//! ready, with namespace, name, UID and IPs (`ListPodSandbox`, then `PodSandboxStatus` once per
//! new sandbox). Polled once a second: `GetContainerEvents` is not served by every runtime
//! this must work with (containerd 1.6 has none), and a list of sandbox ids is cheap.
//! The cali of a sandbox is found by its IPs in the node's /32 routes (see [`super::index`]).

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    ListPodSandboxRequest, PodSandboxFilter, PodSandboxState, PodSandboxStateValue, PodSandboxStatusRequest,
    VersionRequest, runtime_service_client::RuntimeServiceClient,
};
use tokio::{net::UnixStream, sync::watch};
use tonic::transport::{Channel, Endpoint, Uri};

use super::{Pod, Source};

/// Where containerd and CRI-O listen by default.
pub const DEFAULT_SOCKETS: [&str; 2] = ["/run/containerd/containerd.sock", "/var/run/crio/crio.sock"];

/// How often the sandbox list is read.
const POLL: Duration = Duration::from_secs(1);
/// Longest wait for the runtime to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// `why` is the transport error with its causes ("transport error: No such file …").
    #[error("cannot connect to {path}: {why}")]
    Connect { path: String, why: String },
    #[error("{0} did not answer within 3 s")]
    Timeout(String),
    #[error("{call} failed: {status}")]
    Call { call: &'static str, status: Box<tonic::Status> },
}

/// A gRPC channel to a unix socket (the URI is a placeholder: the connector ignores it).
pub async fn channel(path: &Path) -> Result<Channel, CriError> {
    let p = path.to_owned();
    let endpoint = Endpoint::from_static("http://[::]:50051");
    let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let p = p.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
    }));
    let label = path.display().to_string();
    tokio::time::timeout(CALL_TIMEOUT, connect)
        .await
        .map_err(|_| CriError::Timeout(label.clone()))?
        .map_err(|e| CriError::Connect { path: label, why: with_causes(&e) })
}

/// An error and its sources, joined by ": " (a cause that only repeats the text is left out).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// A connected runtime and the sandboxes seen so far.
pub(super) struct Cri {
    client: RuntimeServiceClient<Channel>,
    pub(super) socket: PathBuf,
    /// "containerd 1.6.20" (from `Version`).
    pub(super) runtime: String,
    /// Ready sandboxes by id.
    sandboxes: HashMap<String, Pod>,
}

async fn timed<T>(call: &'static str, f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T, CriError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Err(_) => Err(CriError::Timeout(call.to_owned())),
        Ok(Err(status)) => Err(CriError::Call { call, status: Box::new(status) }),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

impl Cri {
    /// Connects and asks the runtime's version (a runtime that answers is one that works).
    pub(super) async fn connect(socket: &Path) -> Result<Self, CriError> {
        let mut client = RuntimeServiceClient::new(channel(socket).await?);
        let v = timed("Version", client.version(VersionRequest { version: "v1".into() })).await?;
        let runtime = format!("{} {}", v.runtime_name, v.runtime_version);
        let mut me = Self { client, socket: socket.to_owned(), runtime, sandboxes: HashMap::new() };
        me.poll().await?;
        Ok(me)
    }

    pub(super) fn len(&self) -> usize {
        self.sandboxes.len()
    }

    pub(super) fn pods(&self) -> Vec<Pod> {
        self.sandboxes.values().cloned().collect()
    }

    /// Reads the list of ready sandboxes; asks the status of new ones. Returns whether the set
    /// changed.
    async fn poll(&mut self) -> Result<bool, CriError> {
        let ready = PodSandboxStateValue { state: PodSandboxState::SandboxReady as i32 };
        let filter = PodSandboxFilter { state: Some(ready), ..PodSandboxFilter::default() };
        let list = timed("ListPodSandbox", self.client.list_pod_sandbox(ListPodSandboxRequest { filter: Some(filter) }))
            .await?;
        let before = self.sandboxes.len();
        self.sandboxes.retain(|id, _| list.items.iter().any(|s| &s.id == id));
        let mut changed = self.sandboxes.len() != before;
        for sandbox in &list.items {
            if self.sandboxes.contains_key(&sandbox.id) {
                continue;
            }
            let request = PodSandboxStatusRequest { pod_sandbox_id: sandbox.id.clone(), verbose: false };
            let status = timed("PodSandboxStatus", self.client.pod_sandbox_status(request)).await?;
            if let Some(pod) = status.status.and_then(|s| pod_of(s.metadata, s.network)) {
                self.sandboxes.insert(sandbox.id.clone(), pod);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Polls until the runtime goes away for good; a failed poll keeps the last list and
    /// says so once, until a poll works again.
    pub(super) async fn run(mut self, tx: watch::Sender<Vec<Pod>>) {
        let mut failing = false;
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            match self.poll().await {
                Ok(changed) => {
                    if failing {
                        log::info!("pods: the CRI at {} answers again", self.socket.display());
                    }
                    failing = false;
                    if changed {
                        tx.send_replace(self.pods());
                    }
                }
                Err(e) if !failing => {
                    log::warn!("pods: {e}; keeping the last list of sandboxes");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// The pod of a sandbox, from its metadata and network status.
fn pod_of(
    metadata: Option<k8s_cri::v1::PodSandboxMetadata>,
    network: Option<k8s_cri::v1::PodSandboxNetworkStatus>,
) -> Option<Pod> {
    let m = metadata?;
    let ips: Vec<IpAddr> = network
        .map(|n| std::iter::once(n.ip).chain(n.additional_ips.into_iter().map(|i| i.ip)).filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_default();
    Some(Pod {
        namespace: m.namespace,
        name: m.name,
        uid: (!m.uid.is_empty()).then_some(m.uid),
        ips,
        iface: None,
        mac: None,
        source: Source::Cri,
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use k8s_cri::v1::{PodIp, PodSandboxMetadata, PodSandboxNetworkStatus};

    use super::*;

    #[test]
    fn sandbox_status_to_pod() {
        let meta = PodSandboxMetadata { name: "web".into(), uid: "u-1".into(), namespace: "shop".into(), attempt: 0 };
        let net = PodSandboxNetworkStatus {
            ip: "10.244.2.3".into(),
            additional_ips: vec![PodIp { ip: "fd00::3".into() }, PodIp { ip: "garbage".into() }],
        };
        let pod = pod_of(Some(meta), Some(net)).unwrap();
        assert_eq!((pod.namespace.as_str(), pod.name.as_str(), pod.uid.as_deref()), ("shop", "web", Some("u-1")));
        assert_eq!(pod.ips, ["10.244.2.3".parse::<IpAddr>().unwrap(), "fd00::3".parse().unwrap()]);
        assert!(pod_of(None, None).is_none());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {0}")]
    struct Outer(#[source] io::Error);

    #[test]
    fn causes_are_not_repeated() {
        let e = Outer(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(with_causes(&e), "transport error: entity not found");
    }
}
