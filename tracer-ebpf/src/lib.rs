//! What the eBPF programs share with host-side tests. The programs themselves are the
//! `vethtrace-ebpf` binary (src/main.rs), built for `bpfel-unknown-none` by tracer/build.rs;
//! this library also lets that build script depend on the crate, so that cargo rebuilds the
//! embedded object whenever these sources change.
#![no_std]

pub mod cbpf;
pub mod parse;
