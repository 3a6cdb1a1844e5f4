//! Plain data shared by the eBPF programs and the `vethtrace` collector.
//!
//! Every record in the ring buffer is a [`RecordHeader`] followed by typed sections, each a
//! [`SectionHeader`] and a body (as Retis frames its events): TC and drop records carry their
//! frame's first bytes in a variable-length FRAME section, so a short packet costs a short
//! record. The collector checks every length, and skips and counts what it does not know.
//!
//! All types are `#[repr(C)]` with explicit padding so that both sides agree on the layout
//! byte for byte; the size assertions beside each type keep it that way.
//!
//! By concern: `record` (the framing and each record's fixed part), `sections` (the section
//! bodies and their field values), `packet` (the parsed frame), `config` (what the load-time
//! globals carry), `maps` (program and map names, map slots), `consts` (kernel and protocol
//! numbers), [`filter`] (the expression's instructions), [`traffic`] (packets and bytes counted in
//! the kernel). Everything is re-exported here.
#![no_std]

mod config;
mod consts;
pub mod filter;
mod maps;
mod packet;
mod record;
mod sections;
pub mod traffic;

pub use config::*;
pub use consts::*;
pub use maps::*;
pub use packet::*;
pub use record::*;
pub use sections::*;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` integers and byte arrays with explicit padding: every bit pattern
    // is valid.
    unsafe impl aya::Pod for super::RecordHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SectionHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Packet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TcSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FrameSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TcRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::JourneySection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::JourneyConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::HopsConfig {}
}
