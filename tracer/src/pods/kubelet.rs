//! The pods kubelet keeps on disk: one directory per pod under `/var/log/pods`, named
//! `<namespace>_<name>_<uid>` (kubelet's `BuildPodLogsDirectory`). Namespaces and pod names
//! are DNS labels/subdomains, which never contain `_`, so the split is unambiguous.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use futures::StreamExt as _;
use tokio::sync::watch;

use super::{
    Pod, Source,
    dirwatch::{DirChange, DirWatch},
    hash,
};

/// Namespace, name and UID from a `/var/log/pods` entry name; `None` for anything else.
pub fn parse_dir_name(entry: &str) -> Option<(String, String, String)> {
    let mut parts = entry.split('_');
    let (ns, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [ns, name, uid].iter().any(|p| p.is_empty()) {
        return None;
    }
    Some((ns.to_owned(), name.to_owned(), uid.to_owned()))
}

/// The pod of a `/var/log/pods` entry, named by Calico's veth rule.
fn pod_of(entry: &str) -> Option<Pod> {
    let (namespace, name, uid) = parse_dir_name(entry)?;
    let iface = hash::veth_name(hash::CALICO_PREFIX, &namespace, &name);
    Some(Pod { namespace, name, uid: Some(uid), ips: Vec::new(), iface: Some(iface), mac: None, source: Source::CalicoHash })
}

/// kubelet's pod directory, read once and then followed with inotify.
pub(super) struct PodsDir {
    dir: PathBuf,
    watch: DirWatch,
    pods: BTreeMap<String, Pod>,
}

impl PodsDir {
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        let watch = DirWatch::new(dir)?;
        let mut me = Self { dir: dir.to_owned(), watch, pods: BTreeMap::new() };
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
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(pod) = pod_of(&name) {
                self.pods.insert(name, pod);
            }
        }
        Ok(())
    }

    pub(super) async fn run(mut self, tx: watch::Sender<Vec<Pod>>) {
        while let Some(change) = self.watch.next().await {
            match change {
                DirChange::Changed(name) => {
                    if let Some(pod) = pod_of(&name) {
                        self.pods.insert(name, pod);
                    }
                }
                DirChange::Removed(name) => {
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
                }
            }
            tx.send_replace(self.pods());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_pod_dirs() {
        assert_eq!(
            parse_dir_name("kube-system_coredns-5d78c9869d-abcde_0b7e1c2a-1f3e-4c55-9d2b-6a1e5f0c7d11"),
            Some((
                "kube-system".into(),
                "coredns-5d78c9869d-abcde".into(),
                "0b7e1c2a-1f3e-4c55-9d2b-6a1e5f0c7d11".into()
            ))
        );
        assert_eq!(parse_dir_name("default_web.v2_u1"), Some(("default".into(), "web.v2".into(), "u1".into())));
        for bad in ["", "default", "default_web", "a_b_c_d", "_web_uid", "default__uid", "default_web_"] {
            assert_eq!(parse_dir_name(bad), None, "{bad:?}");
        }
    }
}
