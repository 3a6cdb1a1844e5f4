//! Attaching the TC programs to interfaces, and taking them off again.
//!
//! TCX links (Linux >= 6.6) die with the process, so nothing can stay attached. clsact filters
//! outlive it; for them a reaper child process (see [`crate::reaper`]) is told about every
//! interface before vethtrace attaches to it, and removes whatever of vethtrace's is left there
//! when vethtrace exits, however it exits (SIGKILL included, at any moment).
//!
//! Other programs' qdiscs and filters are never replaced, reordered or removed: TCX links are
//! added in front of the chain and pass every packet on; clsact filters go in front too, at
//! priority 1, and pass every packet on to the next filter (TC_ACT_UNSPEC).

use std::collections::HashMap;

use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData},
    programs::{
        LinkOrder, ProgramError, SchedClassifier,
        tc::{self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttach, TcAttachType},
    },
    util::KernelVersion,
};

use crate::{
    cli::TcMode,
    filter::{Filter, jit::{self, Jit}},
    reaper::ReaperHandle,
};

pub(crate) use tracer_common::names::{EGRESS_PROG, INGRESS_PROG};
/// The set of traced ifindexes that other hooks (drops, neighbours) filter by.
pub(crate) use tracer_common::names::TRACED_IFACES_MAP;

/// How programs are attached on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Tcx,
    Clsact,
}

impl Backend {
    /// `auto` takes TCX where the kernel has it (>= 6.6); asking for TCX on an older kernel is
    /// an error rather than one failed attach per interface.
    pub(crate) fn choose(mode: TcMode) -> Result<Self, AttachError> {
        let has_tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        match mode {
            TcMode::Tcx if !has_tcx => Err(AttachError::NoTcx),
            TcMode::Tcx => Ok(Self::Tcx),
            TcMode::Clsact => Ok(Self::Clsact),
            TcMode::Auto if has_tcx => Ok(Self::Tcx),
            TcMode::Auto => Ok(Self::Clsact),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tcx => "tcx",
            Self::Clsact => "clsact",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AttachError {
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("TCX needs Linux >= 6.6: use --tc-mode clsact (or auto)")]
    NoTcx,
    #[error("loading {prog} failed (verifier log follows): {source}")]
    Load {
        prog: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("attaching {prog} to {iface} (ifindex {ifindex}) failed: {}", with_causes(source))]
    Attach {
        prog: &'static str,
        iface: String,
        ifindex: u32,
        #[source]
        source: ProgramError,
    },
    #[error(transparent)]
    Jit(#[from] jit::JitError),
    #[error("starting the clsact reaper failed: {0}")]
    Reaper(#[from] std::io::Error),
}

/// Attaches a clsact filter in front: priority 1. Left alone, the kernel picks one behind every
/// filter already there (49152 or the next free after the last), and a filter that drops or
/// rewrites would hide frames from vethtrace. Priority 1 held by a filter of another kind or
/// protocol: where the kernel puts it.
fn attach_clsact(prog: &mut SchedClassifier, ifindex: u32, hook: TcAttachType) -> Result<SchedClassifierLinkId, ProgramError> {
    let nl = |priority| TcAttach::Netlink { parent: hook.into(), options: NlOptions { priority, ..NlOptions::default() } };
    prog.attach(ifindex, nl(FRONT_PRIORITY)).or_else(|_| prog.attach(ifindex, nl(0)))
}

/// An error and its causes (aya's netlink errors keep the errno in the source).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The clsact filter priority vethtrace asks for: the first.
const FRONT_PRIORITY: u16 = 1;

/// The two links on one interface; dropping them detaches.
struct Attachment {
    links: Vec<SchedClassifierLink>,
}

/// Owns the loaded TC programs and every link they have.
pub(crate) struct Attacher {
    backend: Backend,
    reaper: Option<ReaperHandle>,
    attached: HashMap<u32, Attachment>,
    /// `TRACED_IFACES`: kept equal to the keys of `attached`.
    traced: Option<BpfHashMap<MapData, u32, u8>>,
    /// The expression's translation, tail-called by the programs (filled before any attach).
    _jit: Option<Jit>,
}

impl Attacher {
    /// Loads both programs into the kernel.
    pub(crate) fn new(ebpf: &mut Ebpf, backend: Backend, expression: Option<&Filter>) -> Result<Self, AttachError> {
        for name in [INGRESS_PROG, EGRESS_PROG] {
            program(ebpf, name)?
                .load()
                .map_err(|source| AttachError::Load { prog: name, source })?;
        }
        let reaper = match backend {
            Backend::Clsact => Some(Self::reaper_for(ebpf)?),
            Backend::Tcx => None,
        };
        let traced = ebpf.take_map(TRACED_IFACES_MAP).and_then(|m| m.try_into().ok());
        let jit = jit::install(ebpf, expression)?;
        Ok(Self { backend, reaper, attached: HashMap::new(), traced, _jit: jit })
    }

    /// A reaper that knows both programs, before anything is attached.
    fn reaper_for(ebpf: &mut Ebpf) -> Result<ReaperHandle, AttachError> {
        let mut reaper = ReaperHandle::spawn()?;
        for name in [INGRESS_PROG, EGRESS_PROG] {
            let id = program(ebpf, name)?.info().map_err(|source| AttachError::Load { prog: name, source })?.id();
            reaper.program(id);
        }
        Ok(reaper)
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn is_attached(&self, ifindex: u32) -> bool {
        self.attached.contains_key(&ifindex)
    }

    pub(crate) fn count(&self) -> usize {
        self.attached.len()
    }

    /// Attaches ingress and egress to `ifindex`. Attaching twice is a no-op.
    pub(crate) fn attach(&mut self, ebpf: &mut Ebpf, ifindex: u32, iface: &str) -> Result<(), AttachError> {
        if self.is_attached(ifindex) {
            return Ok(());
        }
        if let Some(reaper) = &mut self.reaper {
            // The add fails harmlessly when the qdisc is there already (ours or another
            // program's). The reaper hears of both before the request that they are for.
            reaper.adding_qdisc(ifindex, || tc::qdisc_add_clsact(ifindex).is_ok());
            reaper.attaching(ifindex);
        }
        let mut attachment = Attachment { links: Vec::with_capacity(2) };
        for (name, hook) in [(INGRESS_PROG, TcAttachType::Ingress), (EGRESS_PROG, TcAttachType::Egress)] {
            let prog = program(ebpf, name)?;
            let err = |source| AttachError::Attach { prog: name, iface: iface.to_owned(), ifindex, source };
            let id = match self.backend {
                Backend::Tcx => prog.attach(ifindex, TcAttach::Tcx { attach_type: hook, order: LinkOrder::first() }),
                // In front: priority 1. Left alone, the kernel picks one behind every filter
                // already there (49152 or the next free after the last), and a filter that
                // drops or rewrites would hide frames from vethtrace. Priority 1 held by a filter
                // of another kind or protocol: where the kernel puts it.
                Backend::Clsact => attach_clsact(prog, ifindex, hook),
            }
            .map_err(err)?;
            attachment.links.push(prog.take_link(id).map_err(err)?);
        }
        self.attached.insert(ifindex, attachment);
        if let Some(traced) = &mut self.traced
            && let Err(e) = traced.insert(&ifindex, &tracer_common::TRACED, 0)
        {
            log::warn!("{iface} is traced but drops on it may be missed: {e}");
        }
        Ok(())
    }

    /// Detaches from `ifindex` (or only forgets it, when the interface is gone).
    pub(crate) fn detach(&mut self, ifindex: u32) {
        let Some(attachment) = self.attached.remove(&ifindex) else {
            return;
        };
        if let Some(traced) = &mut self.traced {
            let _ = traced.remove(&ifindex);
        }
        for link in attachment.links {
            // Fails when the interface has gone, which took the link or filter with it.
            let _ = aya::programs::Link::detach(link);
        }
    }

    pub(crate) fn detach_all(&mut self) {
        let all: Vec<u32> = self.attached.keys().copied().collect();
        for ifindex in all {
            self.detach(ifindex);
        }
    }
}

impl Drop for Attacher {
    fn drop(&mut self) {
        self.detach_all();
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut SchedClassifier, AttachError> {
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(AttachError::MissingProgram(name))
}
