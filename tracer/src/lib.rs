//! vethtrace's collector: loading and attaching ([`ebpf`], [`attach`], [`reaper`]), collection
//! ([`collect`], [`event`]), the interface set ([`links`], [`ifaces`]), and output ([`packet`],
//! [`output`]). [`trace`] ties them together; `main.rs` is the edge (flags, errors, exit codes).

pub mod attach;
pub mod caps;
pub mod cli;
pub mod collect;
pub mod ebpf;
pub mod event;
pub mod ifaces;
pub mod links;
pub mod output;
pub mod packet;
pub mod reaper;
pub mod trace;
