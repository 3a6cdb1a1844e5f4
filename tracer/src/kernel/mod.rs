//! What the running kernel looks like: struct layouts from BTF, tracepoint record layouts from
//! tracefs. Rust eBPF has no CO-RE, so the programs get these as load-time globals instead of
//! baking one kernel's layout in.

pub mod btf;
pub mod drop_reason;
pub mod kallsyms;
pub mod tracefs;

/// `clock` now, ns (CLOCK_REALTIME, CLOCK_MONOTONIC).
pub fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// CLOCK_MONOTONIC now, ns: the clock of the kernel's event timestamps (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    u64::try_from(clock_ns(libc::CLOCK_MONOTONIC)).unwrap_or(0)
}

/// The inode number of the collector's network namespace (what the kernel's `net->ns.inum`
/// holds): the programs skip devices of other namespaces, where an ifindex means something else.
pub fn own_netns_inum() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino() as u32)
}
