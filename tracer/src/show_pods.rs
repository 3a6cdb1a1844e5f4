//! `vethtrace pods`: one line per cali — interface, pod, UID, IPs, source, the veth peer's
//! netns id, up/down — and with `--watch` one more line per change as it happens.

use std::{
    collections::BTreeMap,
    io::{self, Write as _},
};

use anyhow::Context as _;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::{OutputFormat, PodsArgs},
    ifaces::IfaceFilter,
    pods::{Snapshot, follow_node, start},
};

/// One interface as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    iface: String,
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    ips: Vec<String>,
    source: Option<&'static str>,
    peer_netns_id: Option<i32>,
    up: bool,
}

/// Interfaces that match the globs or have a pod, by name.
fn rows(snap: &Snapshot, filter: &IfaceFilter) -> BTreeMap<String, Row> {
    let mut out = BTreeMap::new();
    for link in &snap.links {
        let pod = snap.by_ifname(&link.name);
        if pod.is_none() && !filter.matches(&link.name) {
            continue;
        }
        let ips = pod.map_or(&link.routed, |p| &p.ips).iter().map(ToString::to_string).collect();
        let row = Row {
            iface: link.name.clone(),
            namespace: pod.map(|p| p.namespace.clone()),
            name: pod.map(|p| p.name.clone()),
            uid: pod.and_then(|p| p.uid.clone()),
            ips,
            source: pod.map(|p| p.source.name()),
            peer_netns_id: link.peer_netns_id,
            up: link.up,
        };
        out.insert(link.name.clone(), row);
    }
    out
}

impl Row {
    fn text(&self) -> String {
        let dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
        let pod = match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            _ => "-".into(),
        };
        let ips = if self.ips.is_empty() { "-".into() } else { self.ips.join(",") };
        let netns = self.peer_netns_id.map_or("-".into(), |i| i.to_string());
        format!(
            "{:<15} {:<40} {:<36} {:<28} {:<13} {:<5} {}",
            self.iface,
            pod,
            dash(self.uid.as_deref()),
            ips,
            dash(self.source),
            netns,
            if self.up { "up" } else { "down" }
        )
    }

    fn json(&self, event: Option<&str>) -> serde_json::Value {
        let mut v = json!({
            "iface": self.iface,
            "ips": self.ips,
            "state": if self.up { "up" } else { "down" },
        });
        let obj = v.as_object_mut().expect("an object");
        let mut put = |k: &str, val: Option<serde_json::Value>| {
            if let Some(val) = val {
                obj.insert(k.into(), val);
            }
        };
        put("event", event.map(Into::into));
        put("pod_namespace", self.namespace.clone().map(Into::into));
        put("pod_name", self.name.clone().map(Into::into));
        put("pod_uid", self.uid.clone().map(Into::into));
        put("source", self.source.map(Into::into));
        put("peer_netns_id", self.peer_netns_id.map(Into::into));
        v
    }
}

const HEADER: &str = "IFACE           POD                                      UID                                  IPS                          SOURCE        NETNS STATE";

fn line(format: OutputFormat, event: Option<&str>, row: &Row) -> String {
    match (format, event) {
        (OutputFormat::Json, _) => row.json(event).to_string(),
        (OutputFormat::Text, None) => row.text(),
        (OutputFormat::Text, Some("remove")) => format!("- {}", row.iface),
        (OutputFormat::Text, Some("add")) => format!("+ {}", row.text()),
        (OutputFormat::Text, Some(_)) => format!("~ {}", row.text()),
        // Refused by `run` (`none` is the tracer's: count without printing).
        (OutputFormat::None, _) => String::new(),
    }
}

/// Lines for what changed between two tables: `add`, `change`, `remove`.
fn diff(old: &BTreeMap<String, Row>, new: &BTreeMap<String, Row>, format: OutputFormat) -> Vec<String> {
    let mut out = Vec::new();
    for (name, row) in new {
        match old.get(name) {
            None => out.push(line(format, Some("add"), row)),
            Some(before) if before != row => out.push(line(format, Some("change"), row)),
            Some(_) => {}
        }
    }
    for (name, row) in old {
        if !new.contains_key(name) {
            out.push(line(format, Some("remove"), row));
        }
    }
    out
}

/// The command: the table, then (with `--watch`) changes until Ctrl-C/SIGTERM.
pub async fn run(args: &PodsArgs) -> anyhow::Result<()> {
    if args.output == OutputFormat::None {
        anyhow::bail!("--output none: vethtrace pods prints its table as text or json");
    }
    let filter = IfaceFilter::new(&args.iface)?;
    let (mut index, report) = start(&args.pods, follow_node().await).await;
    report.print();
    let mut table = rows(&index.snapshot(), &filter);
    let mut out = io::stdout().lock();
    if args.output == OutputFormat::Text {
        writeln!(out, "{HEADER}")?;
    }
    for row in table.values() {
        writeln!(out, "{}", line(args.output, None, row))?;
    }
    out.flush()?;
    if !args.watch {
        return Ok(());
    }
    drop(out);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            () = index.changed() => {}
            _ = sigint.recv() => return Ok(()),
            _ = sigterm.recv() => return Ok(()),
        }
        let now = rows(&index.snapshot(), &filter);
        let mut out = io::stdout().lock();
        for l in diff(&table, &now, args.output) {
            writeln!(out, "{l}").context("writing to standard output")?;
        }
        out.flush()?;
        table = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(iface: &str, ip: &str) -> Row {
        Row {
            iface: iface.into(),
            namespace: Some("ns".into()),
            name: Some("p".into()),
            uid: None,
            ips: vec![ip.into()],
            source: Some("cri"),
            peer_netns_id: Some(1),
            up: true,
        }
    }

    #[test]
    fn diff_says_add_change_remove() {
        let old: BTreeMap<_, _> =
            [("a".to_owned(), row("a", "10.0.0.1")), ("b".to_owned(), row("b", "10.0.0.2"))].into();
        let new: BTreeMap<_, _> =
            [("a".to_owned(), row("a", "10.0.0.9")), ("c".to_owned(), row("c", "10.0.0.3"))].into();
        let lines = diff(&old, &new, OutputFormat::Json);
        let events: Vec<(String, String)> = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| (v["event"].as_str().unwrap().to_owned(), v["iface"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(events, [("change".into(), "a".into()), ("add".into(), "c".into()), ("remove".into(), "b".into())]);
        assert!(diff(&new, &new, OutputFormat::Text).is_empty());
        assert_eq!(diff(&old, &BTreeMap::new(), OutputFormat::Text), ["- a", "- b"]);
    }
}
