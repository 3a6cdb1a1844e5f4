//! The expression as machine code: translated to eBPF ([`super::translate`]), loaded beside the
//! object, and put with the TC programs' second halves into `FILTER_JUMP` (tracer-common
//! `filter::jump`), so that the attached programs tail-call it for every frame without a VLAN
//! tag held aside. Those the interpreter in the programs still checks.
//!
//! Installed after the object's programs are loaded and before anything is attached. When the
//! translation or its load fails the slots stay empty and the interpreter runs the expression
//! for every frame, as before: slower, never different.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};

use aya::{
    Ebpf,
    maps::Map,
    programs::{ProgramError, SchedClassifier},
};
use tracer_common::{
    filter::jump,
    names::{EGRESS_MATCHED_PROG, FILTER_JUMP_MAP, INGRESS_MATCHED_PROG},
};

use super::{
    Filter,
    rawprog::{self, RawProgram},
    translate::{Loads, OnMatch, translate},
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum JitError {
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("loading {prog} failed: {source}")]
    Load {
        prog: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("filling {FILTER_JUMP_MAP}: {0}")]
    Jump(#[source] std::io::Error),
}

/// The translated expression, one program per direction (kept for as long as the object is).
#[derive(Debug)]
pub(crate) struct Jit {
    _programs: Vec<RawProgram>,
}

/// Loads the second halves and, when `filter` translates and loads, its programs, into the
/// jump table. `Ok(None)`: no expression, or the interpreter runs it (said at debug level).
pub(crate) fn install(ebpf: &mut Ebpf, filter: Option<&Filter>) -> Result<Option<Jit>, JitError> {
    let Some(filter) = filter else { return Ok(None) };
    let map_fd = jump_map(ebpf)?.as_raw_fd();
    for (name, slot) in [(INGRESS_MATCHED_PROG, jump::MATCHED_INGRESS), (EGRESS_MATCHED_PROG, jump::MATCHED_EGRESS)] {
        let prog: &mut SchedClassifier =
            ebpf.program_mut(name).and_then(|p| p.try_into().ok()).ok_or(JitError::Missing(name))?;
        prog.load().map_err(|source| JitError::Load { prog: name, source })?;
        let fd = prog.fd().map_err(|source| JitError::Load { prog: name, source })?.as_fd().as_raw_fd();
        rawprog::set_slot(jump_map(ebpf)?, slot, fd).map_err(JitError::Jump)?;
    }
    let mut programs = Vec::with_capacity(2);
    for (jit, matched) in [(jump::JIT_INGRESS, jump::MATCHED_INGRESS), (jump::JIT_EGRESS, jump::MATCHED_EGRESS)] {
        let on_match = OnMatch::TailCall { map_fd, index: matched };
        let loaded = translate(filter.insns(), on_match, Loads::Direct)
            .map_err(|e| e.to_string())
            .and_then(|insns| RawProgram::load_classifier(&insns, "vethtrace_expr").map_err(|e| e.to_string()));
        match loaded {
            Ok(prog) => {
                rawprog::set_slot(jump_map(ebpf)?, jit, prog.fd().as_raw_fd()).map_err(JitError::Jump)?;
                programs.push(prog);
            }
            Err(e) => log::warn!("the expression runs in the interpreter (slower): {e}"),
        }
    }
    Ok((!programs.is_empty()).then_some(Jit { _programs: programs }))
}

fn jump_map(ebpf: &Ebpf) -> Result<BorrowedFd<'_>, JitError> {
    match ebpf.map(FILTER_JUMP_MAP) {
        Some(Map::ProgramArray(data)) => Ok(data.fd().as_fd()),
        _ => Err(JitError::Missing(FILTER_JUMP_MAP)),
    }
}
