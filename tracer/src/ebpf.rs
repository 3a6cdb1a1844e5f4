//! Loading the embedded eBPF object, with the checks that turn kernel refusals into one line.

use std::path::Path;

use aya::{Ebpf, EbpfLoader};

/// The programs built from tracer-ebpf by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vethtrace-ebpf"));

/// Name of the ring buffer map in the object.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU loss counters.
pub const LOST_MAP: &str = "LOST";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): vethtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF")]
    NoBtf,
    #[error("this kernel has no BPF ring buffer (Linux >= 5.8 is needed): {0}")]
    NoRingBuf(String),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
}

/// Loads maps and program definitions (programs are loaded into the kernel when attached).
pub fn load(ring_size: u32) -> Result<Ebpf, LoadError> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(LoadError::NoBtf);
    }
    EbpfLoader::new()
        .map_max_entries(EVENTS_MAP, ring_size)
        .load(OBJECT)
        .map_err(|e| match &e {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error, .. })
                if name == EVENTS_MAP && io_error.raw_os_error() == Some(libc::EINVAL) =>
            {
                LoadError::NoRingBuf(io_error.to_string())
            }
            _ => LoadError::Load(e),
        })
}
