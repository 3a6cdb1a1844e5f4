//! Empty library target: it lets `tracer`'s build script depend on this crate so that cargo
//! rebuilds the embedded eBPF object whenever these sources change. The programs are the
//! `vethtrace-ebpf` binary (src/main.rs), built for `bpfel-unknown-none`.
#![no_std]
