//! Rows for the filter expression: the UDP 64-byte flood traced with an expression that
//! matches none of its packets (target: ≥ 97 % of untraced) and with one that matches all of
//! them (against vethtrace without an expression), each ratio paired within its round; beside
//! them the floor, the bare hook ([`super::bare`]), and how far the first row is above it.

use std::path::Path;

use super::{
    bare::BareHooks,
    node::Node,
    report::{Report, Row, Target},
    tracer::Vethtrace,
};

/// Matches no packet of the flood (an address no pod has).
const NEVER: &str = "host 192.0.2.1";
/// Matches every frame.
const ALWAYS: &str = "greater 0";

/// Received pkt/s of one UDP flood, traced with `expression` (`None`: untraced).
fn flood(node: &Node, bin: &Path, extra: &[&str], expression: Option<Option<&str>>, seconds: u32) -> anyhow::Result<f64> {
    let Some(expression) = expression else {
        return Ok(node.iperf(true, seconds)?.received_pps);
    };
    let args: Vec<&str> = extra.iter().copied().chain(expression).collect();
    let tracer = Vethtrace::start_discarding(bin, node, "filter-flood", &args)?;
    let result = node.iperf(true, seconds);
    tracer.stop()?;
    Ok(result?.received_pps)
}

pub(super) fn rows(node: &Node, bin: &Path, extra: &[&str], repeat: usize, seconds: u32, report: &mut Report) -> anyhow::Result<()> {
    let (mut never, mut always, mut bare, mut over_bare) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..repeat {
        eprintln!("xtask: bench round {}/{repeat}: filter expressions", round + 1);
        let untraced = flood(node, bin, extra, None, seconds)?;
        let none = flood(node, bin, extra, Some(Some(NEVER)), seconds)?;
        let unfiltered = flood(node, bin, extra, Some(None), seconds)?;
        let all = flood(node, bin, extra, Some(Some(ALWAYS)), seconds)?;
        never.push(none / untraced);
        always.push(all / unfiltered);
        // Without TCX (Linux < 6.6) there is no bare hook of vethtrace's kind: rows left out.
        match BareHooks::attach(node) {
            Ok(hooks) => {
                let hooked = node.iperf(true, seconds)?.received_pps;
                drop(hooks);
                bare.push(hooked / untraced);
                over_bare.push(none / hooked);
            }
            Err(e) => eprintln!("xtask: warning: no bare-hook row: {e:#}"),
        }
    }
    report.push(Row::new("udp-64", format!("'{NEVER}' (matches nothing) / untraced"), "ratio", never).target(Target::MedianAtLeast(0.97)));
    report.push(Row::new("udp-64", format!("'{ALWAYS}' (matches all) / no expression"), "ratio", always));
    if !bare.is_empty() {
        report.push(Row::new("udp-64", "bare TCX hook (2 instructions, no vethtrace) / untraced", "ratio", bare));
        report.push(Row::new("udp-64", format!("'{NEVER}' / bare TCX hook"), "ratio", over_bare));
    }
    Ok(())
}
