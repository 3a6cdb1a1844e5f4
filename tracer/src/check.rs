//! `vethtrace check`: what this kernel offers vethtrace, one line per facility, and whether
//! tracing can work here — what to run first on a new node.

use aya::util::KernelVersion;

use crate::{
    attach::Backend,
    caps,
    cli::{PodArgs, TcMode},
    ebpf,
    kernel::{btf::KernelBtf, drop_reason::DropReasons, tracefs},
    pods,
    probes::{self, Mode},
};

/// One facility: its name, whether it is there, and what was found (or why not).
struct Line {
    what: &'static str,
    ok: bool,
    detail: String,
}

impl Line {
    fn new(what: &'static str, result: Result<String, String>) -> Self {
        match result {
            Ok(detail) => Self { what, ok: true, detail },
            Err(detail) => Self { what, ok: false, detail },
        }
    }
}

/// The report, and whether tracing can work (the exit status).
pub struct Report {
    lines: Vec<Line>,
    /// The probe mode `auto` takes, if any.
    pub auto_mode: Option<Mode>,
    pub can_trace: bool,
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(&format!("{:<4} {:<22} {}\n", if l.ok { "ok" } else { "no" }, l.what, l.detail));
        }
        let auto = self.auto_mode.map_or("none (the ARP/neighbour path would not be traced)", Mode::name);
        out.push_str(&format!("--probe auto takes: {auto}\n"));
        out.push_str(if self.can_trace {
            "vethtrace can trace here.\n"
        } else {
            "vethtrace cannot trace here: see the lines marked no above.\n"
        });
        out
    }
}

/// Looks at the running kernel. Tries each probe mode for real (attach, then detach at once),
/// which needs the same privileges as tracing. The pod-identity line is information: no
/// source only means events carry no pod.
pub fn run(pod_args: &PodArgs) -> Report {
    let mut lines = Vec::new();
    let release = KernelVersion::current().map_or_else(|e| format!("unknown ({e})"), |v| v.to_string());
    lines.push(Line { what: "kernel", ok: true, detail: release });
    let privileged = caps::check().map(|()| "all needed capabilities".to_owned()).map_err(|e| e.to_string());
    let privileged_ok = privileged.is_ok();
    lines.push(Line::new("privileges", privileged));
    let btf = KernelBtf::load();
    lines.push(Line::new("BTF", btf.as_ref().map(|_| "/sys/kernel/btf/vmlinux".to_owned()).map_err(|e| e.to_string())));
    let tc = Backend::choose(TcMode::Auto).map(|b| match b {
        Backend::Tcx => "tcx (Linux >= 6.6)".to_owned(),
        Backend::Clsact => "clsact (no TCX before Linux 6.6)".to_owned(),
    });
    lines.push(Line::new("TC attach", tc.map_err(|e| e.to_string())));
    lines.push(Line::new("drop reasons", drop_reasons(btf.as_ref().ok())));
    let veth = btf.as_ref().map_err(|e| e.to_string()).and_then(|b| {
        crate::drops::podside::status(&crate::drops::podside::VethLayout::find(b))
    });
    lines.push(Line::new("pod-side drops", veth));
    let mut auto_mode = None;
    let mut ring_ok = false;
    if privileged_ok {
        let neigh_config = btf.as_ref().ok().and_then(|b| probes::layout(b).ok());
        match ebpf::load(ebpf::LoadOptions { neigh_config, ..ebpf::LoadOptions::new(1 << 12) }) {
            Ok(mut loaded) => {
                ring_ok = true;
                lines.push(Line { what: "ring buffer", ok: true, detail: "BPF_MAP_TYPE_RINGBUF".into() });
                let attach_btf = probes::attach_btf();
                for mode in Mode::ALL {
                    let r = attach_btf.as_ref().map_err(|e| e.to_string()).and_then(|b| {
                        probes::try_mode(&mut loaded, mode, b).map_err(|e| e.to_string())
                    });
                    if r.is_ok() && auto_mode.is_none() {
                        auto_mode = Some(mode);
                    }
                    lines.push(Line::new(mode_label(mode), r.map(|()| "attaches".into())));
                }
                lines.push(Line::new("in-kernel errors", kernel_errors(&mut loaded)));
            }
            Err(e) => lines.push(Line { what: "ring buffer", ok: false, detail: e.to_string() }),
        }
    } else {
        let why = "not tried without privileges".to_owned();
        lines.push(Line { what: "ring buffer", ok: false, detail: why.clone() });
        for mode in Mode::ALL {
            lines.push(Line { what: mode_label(mode), ok: false, detail: why.clone() });
        }
    }
    lines.push(Line::new("pod identity", pod_identity(pod_args)));
    lines.push(Line::new("netfilter rules", crate::ruleset::summary()));
    let can_trace = privileged_ok && btf.is_ok() && ring_ok;
    Report { lines, auto_mode, can_trace }
}

/// What the programs counted as failed while the probes were attached for the check.
fn kernel_errors(loaded: &mut aya::Ebpf) -> Result<String, String> {
    let counters = crate::collect::InKernelErrors::take(loaded).map_err(|e| e.to_string())?;
    let failures = crate::collect::InKernelErrors::describe(&counters.read(), &[0; tracer_common::errsite::SLOTS as usize]);
    if failures.is_empty() { Ok("none while the probes were attached".into()) } else { Err(failures.join("; ")) }
}

/// Which pod-identity source answers here (tried as `vethtrace` would, then let go).
fn pod_identity(args: &PodArgs) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(pods::probe(args)).summary()
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Kprobe => "probes: kprobe",
        Mode::Fentry => "probes: fentry",
        Mode::Tracepoint => "probes: tracepoint",
    }
}

/// Drop reasons need the `reason` field of skb:kfree_skb and `enum skb_drop_reason` in BTF.
fn drop_reasons(btf: Option<&KernelBtf>) -> Result<String, String> {
    let format = tracefs::format("skb", "kfree_skb").map_err(|e| format!("drops are not traced: {e}"))?;
    if !format.fields.contains_key("reason") {
        return Err("skb:kfree_skb has no reason (Linux < 5.17): drops show the dropping function and a cause from the node's state, no kernel reason".into());
    }
    let btf = btf.ok_or("no BTF to name them")?;
    let reasons = DropReasons::load(btf).map_err(|e| e.to_string())?;
    Ok(format!("{} reasons named from BTF", reasons.len()))
}
