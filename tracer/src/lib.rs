//! vethtrace's collector: loading and attaching ([`ebpf`], [`attach`], [`reaper`]), collection
//! ([`collect`], [`event`]), drops from the kernel's drop path ([`drops`]), the ARP and
//! neighbour path ([`probes`]), the node's
//! network state ([`mirror`]: links, routes, rules, neighbours, sysctls) and the interface
//! set ([`ifaces`]), which pod is behind an interface ([`pods`]), route/neighbour annotation
//! ([`annotate`]), and output ([`packet`], [`output`]). [`trace`] ties them together;
//! `main.rs` is the edge (flags, errors, exit codes).

// Only what main.rs and the integration tests use is public; the rest is pub(crate).
#![warn(unreachable_pub)]

pub mod annotate;
mod attach;
mod caps;
pub mod check;
pub mod cli;
mod codes;
mod collect;
mod drops;
mod ebpf;
mod events;
mod fibgen;
pub mod filter;
mod hooks;
mod ifaces;
mod journey;
pub mod kernel;
pub mod logging;
mod metrics;
mod mirror;
pub mod output;
mod packet;
mod pipeline;
pub mod pods;
mod probes;
mod qdisc;
mod ruleset;
pub mod reaper;
pub mod show_pods;
pub mod show_policies;
pub mod top;
pub mod trace;
mod writers;

#[cfg(test)]
mod fuzz;
