//! Link flags for the eBPF object.
//!
//! bpf-linker passes `--bpf-expand-memcpy-in-order` to LLVM by default, which sets the BPF
//! target's inline budget for memset to nothing: every zeroed struct (a `bpf_fib_lookup`, the
//! filter's registers, a 12-byte key) became a call to aya-ebpf's `memset`, a byte-at-a-time
//! loop (5 instructions a byte: 64 bytes cost 320 instructions on every packet). Without the
//! flag LLVM expands small memsets and memcpys into plain stores.
fn main() {
    println!("cargo::rustc-link-arg-bins=--disable-expand-memcpy-in-order");
}
