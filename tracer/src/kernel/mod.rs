//! What the running kernel looks like: struct layouts from BTF, tracepoint record layouts from
//! tracefs. Rust eBPF has no CO-RE, so the programs get these as load-time globals instead of
//! baking one kernel's layout in.

pub mod btf;
pub mod drop_reason;
pub mod kallsyms;
pub mod tracefs;

/// The inode number of the collector's network namespace (what the kernel's `net->ns.inum`
/// holds): the programs skip devices of other namespaces, where an ifindex means something else.
pub fn own_netns_inum() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino() as u32)
}
