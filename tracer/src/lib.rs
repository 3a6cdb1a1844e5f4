//! vethtrace's collector: loading and attaching ([`ebpf`], [`attach`], [`reaper`]), collection
//! ([`collect`], [`event`]), drops from the kernel's drop path ([`drops`]), the ARP and
//! neighbour path ([`probes`]), the node's
//! network state ([`mirror`]: links, routes, rules, neighbours, sysctls) and the interface
//! set ([`ifaces`]), route/neighbour annotation
//! ([`annotate`]), and output ([`packet`], [`output`]). [`trace`] ties them together;
//! `main.rs` is the edge (flags, errors, exit codes).

pub mod annotate;
pub mod attach;
pub mod caps;
pub mod check;
pub mod cli;
pub mod collect;
pub mod drops;
pub mod ebpf;
pub mod enrich;
pub mod event;
pub mod ifaces;
pub mod kernel;
pub mod mirror;
pub mod output;
pub mod packet;
pub mod probes;
pub mod reaper;
pub mod record;
pub mod trace;
pub mod writers;
