//! The benchmark's result: rows of samples with median/min/max and a target, printed as one
//! table and written as JSON so that runs can be compared.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// What a row must reach, and on which statistic.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// The median must be at least this.
    MedianAtLeast(f64),
    /// The median must be at most this.
    MedianAtMost(f64),
    /// Every sample must be at most this.
    AllAtMost(f64),
    /// Every sample must be at least this.
    AllAtLeast(f64),
}

#[derive(Debug, Clone)]
pub(super) struct Row {
    pub group: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
    pub target: Option<Target>,
}

impl Row {
    pub(super) fn new(group: &'static str, name: impl Into<String>, unit: &'static str, samples: Vec<f64>) -> Self {
        Self { group, name: name.into(), unit, samples: samples.into_iter().filter(|v| !v.is_nan()).collect(), target: None }
    }

    pub(super) fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub(super) fn median(&self) -> f64 {
        let mut v = self.samples.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub(super) fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::NAN, f64::min)
    }

    pub(super) fn max(&self) -> f64 {
        self.samples.iter().copied().fold(f64::NAN, f64::max)
    }
}

#[derive(Debug, Default)]
pub(super) struct Report {
    pub rows: Vec<Row>,
    pub machine: Value,
    pub settings: Value,
}

impl Report {
    pub(super) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn describe(target: Target, unit: &str) -> String {
        match target {
            Target::MedianAtLeast(v) => format!("≥ {}", num(v, unit)),
            Target::MedianAtMost(v) => format!("≤ {}", num(v, unit)),
            Target::AllAtMost(v) => format!("all ≤ {}", num(v, unit)),
            Target::AllAtLeast(v) => format!("all ≥ {}", num(v, unit)),
        }
    }

    /// None when the row has no target or no samples.
    pub(super) fn met(&self, row: &Row) -> Option<bool> {
        if row.samples.is_empty() {
            return None;
        }
        Some(match row.target? {
            Target::MedianAtLeast(v) => row.median() >= v,
            Target::MedianAtMost(v) => row.median() <= v,
            Target::AllAtMost(v) => row.max() <= v,
            Target::AllAtLeast(v) => row.min() >= v,
        })
    }

    pub(super) fn table(&self) -> String {
        let mut lines: Vec<[String; 8]> = vec![[
            "group".into(),
            "metric".into(),
            "median".into(),
            "min".into(),
            "max".into(),
            "n".into(),
            "target".into(),
            "met".into(),
        ]];
        for r in &self.rows {
            let target = r.target.map_or_else(String::new, |t| Self::describe(t, r.unit));
            let met = match self.met(r) {
                Some(true) => "yes",
                Some(false) => "NO",
                None if r.target.is_some() => "n/a",
                None => "",
            };
            lines.push([
                r.group.into(),
                r.name.clone(),
                num(r.median(), r.unit),
                num(r.min(), r.unit),
                num(r.max(), r.unit),
                r.samples.len().to_string(),
                target,
                met.into(),
            ]);
        }
        let widths: Vec<usize> = (0..8).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (n, l) in lines.iter().enumerate() {
            out.push('|');
            for (i, cell) in l.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                // Numbers right-aligned, words left-aligned.
                if (2..=5).contains(&i) {
                    let _ = write!(out, " {}{cell} |", " ".repeat(pad));
                } else {
                    let _ = write!(out, " {cell}{} |", " ".repeat(pad));
                }
            }
            out.push('\n');
            if n == 0 {
                out.push('|');
                for w in &widths {
                    let _ = write!(out, "{}|", "-".repeat(w + 2));
                }
                out.push('\n');
            }
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "group": r.group,
                    "metric": r.name,
                    "unit": r.unit,
                    "samples": r.samples,
                    "median": finite(r.median()),
                    "min": finite(r.min()),
                    "max": finite(r.max()),
                    "target": r.target.map(|t| Self::describe(t, r.unit)),
                    "met": self.met(r),
                })
            })
            .collect();
        json!({ "machine": self.machine, "settings": self.settings, "rows": rows })
    }
}

fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// A value with its unit, scaled for reading.
pub(super) fn num(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "–".into();
    }
    match unit {
        "ratio" => format!("{:.1} %", v * 100.0),
        "bit/s" => format!("{:.2} Gbit/s", v / 1e9),
        "B" => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        "s" if v < 1.0 => format!("{:.0} ms", v * 1e3),
        "s" => format!("{v:.2} s"),
        "%" => format!("{v:.0} %"),
        "ns" => format!("{v:.0} ns"),
        "runs" => format!("{v:.3}"),
        _ => {
            let scaled = if v.abs() >= 1e6 {
                format!("{:.2} M", v / 1e6)
            } else if v.abs() >= 1e4 {
                format!("{:.1} k", v / 1e3)
            } else if v == v.trunc() {
                format!("{v:.0} ")
            } else {
                format!("{v:.2} ")
            };
            format!("{scaled}{unit}").trim_end().to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_and_targets() {
        let mut report = Report::default();
        report.push(Row::new("g", "traced", "ratio", vec![0.99, 0.97, 0.98, f64::NAN]).target(Target::MedianAtLeast(0.98)));
        report.push(Row::new("g", "lost", "events", vec![0.0, 3.0]).target(Target::AllAtMost(0.0)));
        report.push(Row::new("g", "vs", "ratio", vec![1.2, 0.99, 1.1]).target(Target::AllAtLeast(1.0)));
        let traced = &report.rows[0];
        assert_eq!((traced.median(), traced.min(), traced.max(), traced.samples.len()), (0.98, 0.97, 0.99, 3));
        assert_eq!(report.met(traced), Some(true));
        assert_eq!(report.met(&report.rows[1]), Some(false));
        // The median (1.1) passes; one round (0.99) does not.
        assert_eq!(report.met(&report.rows[2]), Some(false));
        let table = report.table();
        assert!(table.contains("98.0 %") && table.contains("NO"), "{table}");
        assert_eq!(report.json()["rows"][1]["met"], false);
    }
}
