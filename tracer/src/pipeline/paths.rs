//! The journeys by path at exit (`--journey`): how many packets went each way through the node
//! (entry device → exit device, or → how they ended) and how long they took (percentiles).

use std::{collections::BTreeMap, fmt::Write as _};

use super::observe::Observer;
use crate::events::journey::{JourneyRecord, Outcome};

/// Times kept per path for the percentiles (the count goes on past it).
const SAMPLES: usize = 100_000;

#[derive(Default)]
struct Path {
    count: u64,
    /// Durations, ns (the first [`SAMPLES`]).
    times: Vec<u64>,
}

/// Journeys by (entry, way out).
#[derive(Default)]
pub(crate) struct Paths {
    by: BTreeMap<(String, String), Path>,
}

impl Observer for Paths {
    fn journey(&mut self, j: &JourneyRecord) {
        let out = match &j.outcome {
            Outcome::Out { iface, .. } => iface.clone(),
            other => other.word().to_owned(),
        };
        let path = self.by.entry((j.place.iface.to_string(), out)).or_default();
        path.count += 1;
        if path.times.len() < SAMPLES {
            path.times.push(j.duration_ns);
        }
    }
}

/// The `q`-quantile of sorted `v` (nearest rank).
fn quantile(v: &[u64], q: f64) -> u64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0)
}

impl Paths {
    pub(crate) fn is_empty(&self) -> bool {
        self.by.is_empty()
    }

    /// `COUNT  FROM  TO  p50  p90  p99  max` (µs), busiest path first.
    pub(crate) fn table(&self) -> String {
        let mut rows: Vec<(&(String, String), &Path)> = self.by.iter().collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        let from_w = rows.iter().map(|(k, _)| k.0.len()).max().unwrap_or(4).max(4);
        let to_w = rows.iter().map(|(k, _)| k.1.len()).max().unwrap_or(2).max(2);
        let mut out = format!("{:>8}  {:from_w$}  {:to_w$}  {:>9}  {:>9}  {:>9}  {:>9}\n", "PACKETS", "FROM", "TO", "p50 µs", "p90 µs", "p99 µs", "max µs");
        for ((from, to), p) in rows {
            let mut t = p.times.clone();
            t.sort_unstable();
            let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
            let (p50, p90, p99) = (quantile(&t, 0.5), quantile(&t, 0.9), quantile(&t, 0.99));
            let max = t.last().copied().unwrap_or(0);
            let _ = writeln!(out, "{:>8}  {from:from_w$}  {to:to_w$}  {:>9}  {:>9}  {:>9}  {:>9}", p.count, us(p50), us(p90), us(p99), us(max));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((quantile(&v, 0.5), quantile(&v, 0.9), quantile(&v, 0.99)), (50, 90, 99));
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn paths_count_each_way_and_the_busiest_comes_first() {
        let node = crate::annotate::bench::calico_node(2);
        let mut paths = Paths::default();
        for _ in 0..3 {
            paths.journey(&super::super::journeys::tests::pod_to_pod(&node));
        }
        let table = paths.table();
        let row = table.lines().nth(1).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols, ["3", "cali00000a1b2c3", "cali00000a1b2c4", "8.2", "8.2", "8.2", "8.2"], "{table}");
    }
}
