//! `vethtrace policies`: per workload endpoint (each cali with Calico chains), the pod, the
//! direction, the tiers with their policies in order and the profiles — read from the
//! node's ruleset (see [`crate::ruleset`]).

use std::io::{self, Write as _};

use serde_json::json;

use crate::{
    cli::{OutputFormat, PoliciesArgs},
    ifaces::IfaceFilter,
    pods::{follow_node, start},
    ruleset::{self, policies::EndpointPolicies},
};

const HEADER: &str =
    "IFACE           POD                                      DIR     BACKEND         TIERS AND POLICIES / PROFILES";

fn text(ep: &EndpointPolicies, pod: Option<&str>) -> String {
    format!(
        "{:<15} {:<40} {:<7} {:<15} {} / {}",
        ep.iface,
        pod.unwrap_or("-"),
        ep.direction.name(),
        ep.backend.name(),
        ep.tiers_text(),
        ep.profiles_text()
    )
}

fn json_line(ep: &EndpointPolicies, pod: Option<&str>) -> String {
    let tiers: Vec<_> = ep
        .tiers
        .iter()
        .map(|(t, ps)| json!({"tier": t, "policies": ps.iter().map(|p| p.label()).collect::<Vec<_>>()}))
        .collect();
    json!({
        "iface": ep.iface,
        "pod": pod,
        "direction": ep.direction.name(),
        "backend": ep.backend.name(),
        "table": ep.table,
        "tiers": tiers,
        "profiles": ep.profiles.iter().map(|p| p.label()).collect::<Vec<_>>(),
    })
    .to_string()
}

/// The command: one read of the ruleset, one line per endpoint chain.
pub async fn run(args: &PoliciesArgs) -> anyhow::Result<()> {
    if args.output == OutputFormat::None {
        anyhow::bail!("--output none: vethtrace policies prints its table as text or json");
    }
    let filter = IfaceFilter::new(&args.iface)?;
    let ruleset = ruleset::read().map_err(|e| anyhow::anyhow!("cannot read the netfilter ruleset: {e}"))?;
    let (index, report) = start(&args.pods, follow_node().await).await;
    report.print();
    let snap = index.snapshot();
    let mut out = io::stdout().lock();
    if args.output == OutputFormat::Text {
        writeln!(out, "{HEADER}")?;
    }
    for ep in ruleset::policies::endpoints(&ruleset).iter().filter(|ep| filter.matches(&ep.iface)) {
        let pod = snap.by_ifname(&ep.iface).map(|p| format!("{}/{}", p.namespace, p.name));
        let line = match args.output {
            OutputFormat::Json => json_line(ep, pod.as_deref()),
            _ => text(ep, pod.as_deref()),
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
