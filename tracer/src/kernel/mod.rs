//! What the running kernel looks like: struct layouts from BTF, tracepoint record layouts from
//! tracefs. Rust eBPF has no CO-RE, so the programs get these as load-time globals instead of
//! baking one kernel's layout in.

pub mod btf;
pub mod drop_reason;
pub mod kallsyms;
pub mod tracefs;
