//! Privilege check before touching the kernel, so that a missing capability is one clear line.

use std::fs;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
#[error("missing capabilities: {missing} (run as root, e.g. with sudo)")]
pub(crate) struct MissingCaps {
    pub missing: String,
}

/// Capabilities vethtrace needs that the effective set lacks (empty when all are there).
pub(crate) fn missing(effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    // CAP_SYS_ADMIN covers both on kernels before 5.8.
    if !has(CAP_SYS_ADMIN) {
        if !has(CAP_BPF) {
            missing.push("CAP_BPF");
        }
        if !has(CAP_PERFMON) {
            missing.push("CAP_PERFMON");
        }
    }
    missing
}

/// The effective capability set of this process, from /proc/self/status.
fn effective() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Fails with one line naming what is missing.
pub(crate) fn check() -> Result<(), MissingCaps> {
    let missing = missing(effective().unwrap_or(0));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingCaps { missing: missing.join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything() {
        assert!(missing(u64::MAX).is_empty());
    }

    #[test]
    fn nothing_names_everything() {
        assert_eq!(missing(0), ["CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"]);
    }

    #[test]
    fn bpf_and_perfmon_or_sys_admin() {
        let net = 1 << CAP_NET_ADMIN;
        assert!(missing(net | 1 << CAP_SYS_ADMIN).is_empty());
        assert!(missing(net | 1 << CAP_BPF | 1 << CAP_PERFMON).is_empty());
        assert_eq!(missing(net | 1 << CAP_BPF), ["CAP_PERFMON"]);
    }
}
