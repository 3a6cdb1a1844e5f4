//! Journeys' kernel side (`--journey`): where the five tracepoints' records hold the skb
//! (tracefs), their programs attached, and the kernel's map of journeys under way, from which
//! the collector removes a journey it gave up on (its end was never traced).

use aya::{
    Ebpf,
    maps::{HashMap, MapData, MapError},
    programs::{ProgramError, TracePoint},
};
use tracer_common::{DropConfig, HopsConfig, JourneyConfig, NeighConfig, names};

use crate::{
    kernel::{
        btf::{BtfError, KernelBtf},
        tracefs::{self, TracefsError},
    },
    probes,
};

/// Each program and its tracepoint (system, event).
const HOOKS: [(&str, &str, &str); 5] = [
    (names::JOURNEY_RECEIVE_PROG, "net", "netif_receive_skb"),
    (names::JOURNEY_QUEUE_PROG, "net", "net_dev_queue"),
    (names::JOURNEY_XMIT_PROG, "net", "net_dev_xmit"),
    (names::JOURNEY_CONSUME_PROG, "skb", "consume_skb"),
    (names::JOURNEY_SOCKET_PROG, "skb", "skb_copy_datagram_iovec"),
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum JourneyError {
    #[error("journeys need the tracepoints' layouts: {0}")]
    Tracefs(#[from] TracefsError),
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("journey map: {0}")]
    Map(#[source] MapError),
    #[error("loading {0} failed (verifier log follows): {1}")]
    Load(&'static str, #[source] Box<ProgramError>),
    #[error("attaching {0} to {1} failed: {2}")]
    Attach(&'static str, String, #[source] Box<ProgramError>),
}

/// The programs' view of this kernel's tracepoint records.
pub(crate) fn config() -> Result<JourneyConfig, JourneyError> {
    let format = |i: usize| tracefs::format(HOOKS[i].1, HOOKS[i].2);
    let skbaddr = |i: usize| -> Result<u32, JourneyError> { Ok(format(i)?.field("skbaddr")?.offset) };
    let consume = format(3)?;
    Ok(JourneyConfig {
        enabled: 1,
        rcv_skbaddr: skbaddr(0)?,
        queue_skbaddr: skbaddr(1)?,
        xmit_skbaddr: skbaddr(2)?,
        xmit_rc: format(2)?.field("rc")?.offset,
        consume_skbaddr: consume.field("skbaddr")?.offset,
        consume_location: consume.fields.get("location").map_or(DropConfig::NONE, |f| f.offset),
        copy_skbaddr: skbaddr(4)?,
    })
}

/// What the hops inside the stack read (tracer-ebpf/src/hops.rs): the neighbour layout the
/// ARP/neighbour probes use, and the netfilter state's and the route's members.
pub(crate) fn hops_layout(btf: &KernelBtf) -> Result<(NeighConfig, HopsConfig), BtfError> {
    let hops = HopsConfig {
        enabled: 1,
        nf_state_hook: btf.member_offset("nf_hook_state", "hook")?,
        nf_state_pf: btf.member_offset("nf_hook_state", "pf")?,
        skb_refdst: btf.member_offset("sk_buff", "_skb_refdst")?,
        dst_dev: btf.member_offset("dst_entry", "dev")?,
        _pad: 0,
    };
    Ok((probes::layout(btf)?, hops))
}

/// Journeys' hops inside the stack, attached in the first probe mode that has them (kprobe or
/// fentry); the links live in the object.
pub(crate) struct JourneyHops;

/// The attached programs and the map of journeys under way.
pub(crate) struct JourneyProbe {
    journeys: HashMap<MapData, u64, u64>,
}

impl JourneyProbe {
    /// Loads and attaches the programs of an object loaded with [`config`]'s layout.
    pub(crate) fn start(ebpf: &mut Ebpf) -> Result<Self, JourneyError> {
        for (prog, system, event) in HOOKS {
            let p: &mut TracePoint =
                ebpf.program_mut(prog).and_then(|p| p.try_into().ok()).ok_or(JourneyError::Missing(prog))?;
            p.load().map_err(|e| JourneyError::Load(prog, Box::new(e)))?;
            p.attach(system, event).map_err(|e| JourneyError::Attach(prog, format!("{system}:{event}"), Box::new(e)))?;
        }
        let map = ebpf.take_map(names::JOURNEYS_MAP).ok_or(JourneyError::Missing(names::JOURNEYS_MAP))?;
        let journeys = HashMap::try_from(map).map_err(JourneyError::Map)?;
        log::info!("journeys: followed on {}", HOOKS.map(|(_, s, e)| format!("{s}:{e}")).join(", "));
        Ok(Self { journeys })
    }

    /// Stops following `skbaddr` if it is still on journey `id` (it timed out).
    pub(crate) fn forget(&mut self, skbaddr: u64, id: u64) {
        if self.journeys.get(&skbaddr, 0).is_ok_and(|v| v == id) {
            let _ = self.journeys.remove(&skbaddr);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// The programs the loader attaches by name.
    pub(crate) fn program_names() -> impl Iterator<Item = &'static str> {
        super::HOOKS.into_iter().map(|(p, _, _)| p)
    }
}
