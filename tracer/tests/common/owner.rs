//! Another owner's TC programs, as Calico's or Cilium's dataplane would attach them before
//! vethtrace: they drop every frame of one length (`skb->len == DROP_LEN`) and pass the rest on.
//! clsact: a classic BPF filter added with tc (cls_bpf direct-action). TCX: an eBPF program
//! this process loads and links itself with bpf(2), held for as long as the value lives.

use super::{
    Node,
    bpf::{BPF_TCX_INGRESS, ifindex, in_netns, insn, link_tcx, load_sched_cls},
    run,
};

/// The frame length the other owner drops (a UDP datagram of 291 bytes over IPv4).
pub const DROP_LEN: u32 = 333;
/// UDP payload that makes an IPv4 frame `DROP_LEN` long.
pub const DROP_PAYLOAD: usize = DROP_LEN as usize - 14 - 20 - 8;

/// cBPF for cls_bpf da: `ld len; jeq DROP_LEN ? ret TC_ACT_SHOT : ret TC_ACT_UNSPEC`.
pub fn clsact_bytecode() -> String {
    format!("4,128 0 0 0,21 0 1 {DROP_LEN},6 0 0 2,6 0 0 4294967295")
}

/// Adds the clsact qdisc (if missing) and the other owner's filter on `iface` ingress at `pref`.
pub fn add_clsact_filter(node: &Node, iface: &str, pref: u16) {
    let _ = node.in_node("tc").args(["qdisc", "add", "dev", iface, "clsact"]).output();
    run(node.in_node("tc").args(["filter", "add", "dev", iface, "ingress", "pref", &pref.to_string()]).args([
        "bpf",
        "da",
        "bytecode",
        &clsact_bytecode(),
    ]));
}

/// An eBPF TCX ingress program of another owner, linked to one interface; unlinked on drop.
pub struct TcxOwner {
    _prog: std::os::fd::OwnedFd,
    _link: std::os::fd::OwnedFd,
}

/// eBPF: r0 = skb->len; if r0 == DROP_LEN goto drop; r0 = TCX_NEXT (-1); exit; drop: r0 = TCX_DROP (2); exit.
fn tcx_insns() -> Vec<u64> {
    vec![
        insn(0x61, 0, 1, 0, 0),                              // ldxw r0, [r1 + 0] (__sk_buff.len)
        insn(0x15, 0, 0, 2, DROP_LEN.cast_signed()),         // jeq r0, DROP_LEN, +2
        insn(0xb7, 0, 0, 0, -1),                             // mov r0, -1
        insn(0x95, 0, 0, 0, 0),                              // exit
        insn(0xb7, 0, 0, 0, 2),                              // mov r0, 2
        insn(0x95, 0, 0, 0, 0),                              // exit
    ]
}

/// The program name bpftool shows.
pub const TCX_OWNER_NAME: &str = "other_owner";

impl TcxOwner {
    /// Loads the program and links it to `iface` of the node's namespace (from a thread that
    /// enters that namespace: ifindexes are per namespace).
    pub fn attach(node: &Node, iface: &str) -> Self {
        let iface = iface.to_owned();
        in_netns(&node.ns(), move || {
            let prog = load_sched_cls(TCX_OWNER_NAME, &tcx_insns()).expect("BPF_PROG_LOAD of the other owner's program");
            let ifindex = ifindex(&iface).unwrap_or_else(|e| panic!("{e} in the node"));
            let link = link_tcx(&prog, ifindex, BPF_TCX_INGRESS).expect("BPF_LINK_CREATE tcx_ingress");
            Self { _prog: prog, _link: link }
        })
    }
}
