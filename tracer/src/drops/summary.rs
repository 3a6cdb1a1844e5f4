//! Drops counted by reason × interface × flow, printed as a table at exit (or with --summary).

use std::{collections::HashMap, fmt::Write as _, io};

use crate::packet::{self, PacketView};
use tracer_common::Packet;

/// One row's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Row {
    pub reason: String,
    pub iface: String,
    pub flow: String,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Summary {
    counts: HashMap<Row, u64>,
}

/// `src > dst proto` with ports when there are any; the ethertype for non-IP frames.
pub(crate) fn flow(p: &Packet) -> String {
    let v = PacketView(p);
    match (v.src_ip(), v.dst_ip()) {
        (Some(s), Some(d)) => {
            let proto = v.ip_proto().map(packet::proto_name).unwrap_or_default();
            match v.ports() {
                Some((sp, dp)) => format!("{s}:{sp} > {d}:{dp} {proto}"),
                None => format!("{s} > {d} {proto}"),
            }
        }
        _ => match v.arp() {
            Some(a) => format!("arp {} > {}", a.spa, a.tpa),
            None => v.l2().map_or_else(|| "unparsed".to_owned(), |l| packet::ethertype_name(l.2)),
        },
    }
}

impl Summary {
    pub(crate) fn add(&mut self, reason: &str, iface: &str, packet: &Packet) {
        let row = Row { reason: reason.to_owned(), iface: iface.to_owned(), flow: flow(packet) };
        *self.counts.entry(row).or_default() += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Rows by count, largest first (ties by key).
    pub(crate) fn rows(&self) -> Vec<(&Row, u64)> {
        let mut rows: Vec<_> = self.counts.iter().map(|(r, n)| (r, *n)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        rows
    }

    /// An aligned text table with a header line.
    pub(crate) fn table(&self) -> String {
        let rows = self.rows();
        let w = |f: fn(&Row) -> usize, title: &str| rows.iter().map(|r| f(r.0)).max().unwrap_or(0).max(title.len());
        let (wr, wi) = (w(|r| r.reason.len(), "REASON"), w(|r| r.iface.len(), "IFACE"));
        let mut out = format!("{:>8}  {:<wr$}  {:<wi$}  FLOW\n", "DROPS", "REASON", "IFACE");
        for (row, n) in rows {
            let _ = writeln!(out, "{n:>8}  {:<wr$}  {:<wi$}  {}", row.reason, row.iface, row.flow);
        }
        out
    }

    /// One `{"kind":"drop_summary","reason":…,"iface":…,"flow":…,"count":…}` line per row.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        use crate::output::write::{put, put_json_str, put_u64};
        for (row, count) in self.rows() {
            put(out, "{\"kind\":\"drop_summary\",\"reason\":");
            put_json_str(out, &row.reason)?;
            put(out, ",\"iface\":");
            put_json_str(out, &row.iface)?;
            put(out, ",\"flow\":");
            put_json_str(out, &row.flow)?;
            put(out, ",\"count\":");
            put_u64(out, count);
            out.extend_from_slice(b"}\n");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::valid;

    fn icmp(dst: [u8; 4]) -> Packet {
        let mut p = Packet { valid: valid::IPV4, ip_proto: 1, ..Default::default() };
        p.src_ip[..4].copy_from_slice(&[10, 244, 1, 5]);
        p.dst_ip[..4].copy_from_slice(&dst);
        p
    }

    #[test]
    fn counts_rows_and_prints_largest_first() {
        let mut s = Summary::default();
        s.add("NEIGH_FAILED", "calia", &icmp([10, 244, 9, 9]));
        s.add("IP_INNOROUTES", "calia", &icmp([10, 77, 0, 1]));
        s.add("IP_INNOROUTES", "calia", &icmp([10, 77, 0, 1]));
        assert_eq!(s.rows().iter().map(|r| r.1).sum::<u64>(), 3);
        let t = s.table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("REASON") && lines[0].contains("FLOW"));
        assert!(lines[1].trim_start().starts_with("2  IP_INNOROUTES  calia  10.244.1.5 > 10.77.0.1 icmp"), "{t}");
        let mut buf = Vec::new();
        s.write_json(&mut buf).unwrap();
        let first: serde_json::Value = serde_json::from_slice(buf.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(first["kind"], "drop_summary");
        assert_eq!(first["count"], 2);
        assert_eq!(first["reason"], "IP_INNOROUTES");
        let line = String::from_utf8_lossy(&buf);
        let at: Vec<usize> = ["kind", "reason", "iface", "flow", "count"].iter().map(|k| line.find(&format!("\"{k}\":")).unwrap()).collect();
        assert!(at.is_sorted(), "the README's order: {line}");
        assert_eq!(buf.iter().filter(|b| **b == b'\n').count(), 2, "one line per row");
    }
}
