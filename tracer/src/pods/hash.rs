//! Calico's name for a pod's host-side veth: the interface prefix ("cali") followed by the
//! first 11 hex digits of sha1("<namespace>.<pod>") (libcalico-go,
//! `lib/backend/k8s/conversion/workload_endpoint_default.go`, `VethNameForWorkload`).
//!
//! The rule is one-way: to name the pod behind a cali, hash every pod the node knows of
//! (kubelet's `/var/log/pods`, see [`super::kubelet`]) and compare.

use sha1::{Digest as _, Sha1};

/// Calico's default interface prefix (FELIX_INTERFACEPREFIX unset).
pub const CALICO_PREFIX: &str = "cali";

/// The host-side interface Calico creates for pod `name` in `namespace`.
pub fn veth_name(prefix: &str, namespace: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{name}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..11])
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Calico's own test vector (libcalico-go conversion_test.go).
    #[test]
    fn calico_published_vector() {
        assert_eq!(veth_name(CALICO_PREFIX, "namespace", "podname"), "cali82111e10a96");
    }

    /// Against Python's hashlib, for names with dots, dashes and long generated suffixes.
    #[test]
    fn matches_python_hashlib() {
        let pods = [
            ("default", "web-7d4b9c-x2x9p"),
            ("kube-system", "coredns-5d78c9869d-abcde"),
            ("team.a", "pod.with.dots"),
            ("x", "y"),
        ];
        for (ns, pod) in pods {
            let script = "import hashlib,sys; print('cali' + hashlib.sha1(sys.argv[1].encode()).hexdigest()[:11])";
            let out = Command::new("python3")
                .args(["-c", script, &format!("{ns}.{pod}")])
                .output()
                .expect("python3 (Debian: python3)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let want = String::from_utf8(out.stdout).unwrap();
            assert_eq!(veth_name(CALICO_PREFIX, ns, pod), want.trim(), "{ns}/{pod}");
        }
    }
}
