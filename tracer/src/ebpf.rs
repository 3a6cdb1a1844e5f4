//! Loading the embedded eBPF object, with the checks that turn kernel refusals into one line.

use std::path::Path;

use aya::{Ebpf, EbpfLoader};
use tracer_common::{DropConfig, HopsConfig, JourneyConfig, NeighConfig, SCRATCH_SLOTS, names};

use crate::filter::Filter;

/// The programs built from tracer-ebpf by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vethtrace-ebpf"));

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): vethtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF")]
    NoBtf,
    #[error("this kernel has no BPF ring buffer (Linux >= 5.8 is needed): {0}")]
    NoRingBuf(String),
    #[error("cannot tell how many CPUs this machine has ({0}): {1}")]
    Cpus(&'static str, std::io::Error),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
}

/// What is fixed when the object is loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadOptions<'a> {
    /// `--ring-size`.
    pub ring_size: u32,
    /// `--snaplen`.
    pub snaplen: u32,
    /// The drop program's kernel layout; `None`: drops are not traced (the program idles).
    pub drop_config: Option<DropConfig>,
    /// The ARP/neighbour programs' kernel layout; `None`: they idle.
    pub neigh_config: Option<NeighConfig>,
    /// The journey programs' tracepoint layouts (`--journey`); `None`: they idle.
    pub journey_config: Option<JourneyConfig>,
    /// The size of the map of journeys under way (`--journey-max`).
    pub journey_entries: u32,
    /// The journeys' hops inside the stack (kprobe/fentry mode), else off.
    pub hops_config: Option<HopsConfig>,
    /// What the TC programs do (`tracer_common::tc_flags`).
    pub tc_flags: u32,
    /// The filter expression, if any.
    pub filter: Option<&'a Filter>,
    /// How long a cached FIB verdict is used, in ns (`--fib-cache-ms`; 0: no cache).
    pub fib_cache_ns: u64,
}

impl LoadOptions<'_> {
    /// A ring of `ring_size` bytes, the default snaplen, no layouts.
    pub(crate) fn new(ring_size: u32) -> Self {
        Self {
            ring_size,
            snaplen: tracer_common::DEFAULT_SNAPLEN,
            drop_config: None,
            neigh_config: None,
            journey_config: None,
            journey_entries: tracer_common::JOURNEY_ENTRIES,
            hops_config: None,
            tc_flags: tracer_common::tc_flags::ALL,
            filter: None,
            fib_cache_ns: tracer_common::fib::DEFAULT_CACHE_NS,
        }
    }
}

/// Loads maps and program definitions (programs are loaded into the kernel when attached).
pub(crate) fn load(opts: LoadOptions<'_>) -> Result<Ebpf, LoadError> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(LoadError::NoBtf);
    }
    let cpus = aya::util::nr_cpus().map_err(|(what, e)| LoadError::Cpus(what, e))?.get();
    let drop_config = opts.drop_config.unwrap_or(DropConfig::DISABLED);
    let neigh_config = opts.neigh_config.unwrap_or(NeighConfig::DISABLED);
    let journey_config = opts.journey_config.unwrap_or(JourneyConfig::DISABLED);
    let hops_config = opts.hops_config.unwrap_or(HopsConfig::DISABLED);
    let wakeup = tracer_common::wakeup_bytes(opts.ring_size);
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(names::EVENTS_MAP, opts.ring_size)
        .map_max_entries(names::SCRATCH_MAP, cpus * SCRATCH_SLOTS)
        .map_max_entries(names::JOURNEYS_MAP, opts.journey_entries)
        .override_global(names::SNAPLEN_GLOBAL, &opts.snaplen, true)
        .override_global(names::TC_FLAGS_GLOBAL, &opts.tc_flags, true)
        .override_global(names::WAKEUP_GLOBAL, &wakeup, true)
        .override_global(names::FIB_CACHE_NS_GLOBAL, &opts.fib_cache_ns, true)
        .override_global(names::DROP_CONFIG_GLOBAL, &drop_config, true)
        .override_global(names::NEIGH_CONFIG_GLOBAL, &neigh_config, true)
        .override_global(names::JOURNEY_CONFIG_GLOBAL, &journey_config, true)
        .override_global(names::HOPS_CONFIG_GLOBAL, &hops_config, true);
    if let Some(filter) = opts.filter {
        filter.configure(&mut loader);
    }
    loader
        .load(OBJECT)
        .map_err(|e| match &e {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error, .. })
                if name == names::EVENTS_MAP && io_error.raw_os_error() == Some(libc::EINVAL) =>
            {
                LoadError::NoRingBuf(io_error.to_string())
            }
            _ => LoadError::Load(e),
        })
}

#[cfg(test)]
mod tests {
    use aya_obj::Object;

    use super::*;

    /// Every program and map the loader names by a string is in the embedded object.
    #[test]
    fn the_object_has_every_program_and_map_the_loader_names() {
        let obj = Object::parse(OBJECT).expect("embedded object parses");
        for map in names::MAPS {
            assert!(obj.maps.contains_key(*map), "map {map} missing from the object");
        }
        let programs: Vec<&str> =
            [names::INGRESS_PROG, names::EGRESS_PROG, names::INGRESS_MATCHED_PROG, names::EGRESS_MATCHED_PROG, names::DROP_PROG]
            .into_iter()
            .chain(crate::journey::tests::program_names())
            .chain(crate::probes::tests::program_names())
            .collect();
        for prog in programs {
            assert!(obj.programs.contains_key(prog), "program {prog} missing from the object");
        }
    }
}
