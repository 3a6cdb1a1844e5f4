//! The generation the kernel's cached FIB verdicts are checked against (tracer-ebpf `fib.rs`):
//! bumped for every netlink change the collector sees, so that the next packet of every flow
//! asks the kernel again instead of reusing a verdict from before the change.

use aya::{
    Ebpf,
    maps::{Array, MapData, MapError},
};
use tracer_common::names;

pub(crate) struct FibGeneration {
    map: Array<MapData, u32>,
    value: u32,
    /// A failed update is said once.
    warned: bool,
}

impl FibGeneration {
    /// Takes the generation map out of the loaded object.
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, MapError> {
        let map = ebpf
            .take_map(names::FIB_GEN_MAP)
            .ok_or_else(|| MapError::InvalidName { name: names::FIB_GEN_MAP.to_owned() })?;
        Ok(Self { map: Array::try_from(map)?, value: 0, warned: false })
    }

    /// Voids every cached verdict.
    pub(crate) fn bump(&mut self) {
        self.value = self.value.wrapping_add(1);
        if let Err(e) = self.map.set(0, &self.value, 0)
            && !std::mem::replace(&mut self.warned, true)
        {
            log::warn!("cannot void the kernel's cached FIB verdicts ({e}); verdicts may lag changes by up to --fib-cache-ms");
        }
    }
}
