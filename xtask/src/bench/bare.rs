//! The floor: a two-instruction TC program (`r0 = TCX_NEXT; exit`) linked with TCX at ingress
//! and egress of both pod calis — the hooks vethtrace uses, with nothing run on them. What it
//! costs the flood is what any TC program costs on this machine before it reads a byte
//! (the hook's dispatch, the skb's trip through it), the bound under any filter row.

use std::os::fd::OwnedFd;

use anyhow::Context as _;
use testkit::bpf::{BPF_TCX_EGRESS, BPF_TCX_INGRESS, ifindex, in_netns, insn, link_tcx, load_sched_cls};

use super::node::Node;

/// The program and its links, unlinked on drop.
pub(super) struct BareHooks {
    _prog: OwnedFd,
    _links: Vec<OwnedFd>,
}

impl BareHooks {
    pub(super) fn attach(node: &Node) -> anyhow::Result<Self> {
        let calis = node.calis.clone();
        in_netns(&node.ns(), move || -> anyhow::Result<Self> {
            let insns = [insn(0xb7, 0, 0, 0, -1), insn(0x95, 0, 0, 0, 0)]; // mov r0, -1; exit
            let prog = load_sched_cls("vtbench_bare", &insns).context("BPF_PROG_LOAD of the bare TC program")?;
            let mut links = Vec::new();
            for cali in &calis {
                let index = ifindex(cali)?;
                for at in [BPF_TCX_INGRESS, BPF_TCX_EGRESS] {
                    links.push(link_tcx(&prog, index, at).with_context(|| format!("TCX link on {cali}"))?);
                }
            }
            Ok(Self { _prog: prog, _links: links })
        })?
    }
}
