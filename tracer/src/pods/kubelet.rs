//! The pods kubelet keeps on disk: one directory per pod under `/var/log/pods`, named
//! `<namespace>_<name>_<uid>` (kubelet's `BuildPodLogsDirectory`). Namespaces and pod names
//! are DNS labels/subdomains, which never contain `_`, so the split is unambiguous.

use std::path::Path;

use super::{
    Pod, Source,
    dirwatch::{Entries, PodDir},
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

/// kubelet's entries as [`Entries`]: the name is all there is to read.
pub(super) struct PodDirs;

/// kubelet's pod directory, followed.
pub(super) type PodsDir = PodDir<PodDirs>;

impl Entries for PodDirs {
    fn read(&mut self, _dir: &Path, name: &str) -> Option<Pod> {
        pod_of(name)
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
