//! Rows for the filter expression: the UDP 64-byte flood traced with an expression that
//! matches none of its packets (target: ≥ 97 % of untraced) and with one that matches all of
//! them (against vethtrace without an expression), each ratio paired within its round.

use std::path::Path;

use super::{
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
    let (mut never, mut always) = (Vec::new(), Vec::new());
    for round in 0..repeat {
        eprintln!("xtask: bench round {}/{repeat}: filter expressions", round + 1);
        let untraced = flood(node, bin, extra, None, seconds)?;
        let none = flood(node, bin, extra, Some(Some(NEVER)), seconds)?;
        let unfiltered = flood(node, bin, extra, Some(None), seconds)?;
        let all = flood(node, bin, extra, Some(Some(ALWAYS)), seconds)?;
        never.push(none / untraced);
        always.push(all / unfiltered);
    }
    report.push(Row::new("udp-64", format!("'{NEVER}' (matches nothing) / untraced"), "ratio", never).target(Target::MedianAtLeast(0.97)));
    report.push(Row::new("udp-64", format!("'{ALWAYS}' (matches all) / no expression"), "ratio", always));
    Ok(())
}
