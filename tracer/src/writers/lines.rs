//! Text and JSON lines: every record one line, written into a buffer that goes out once per
//! drain.

use std::io::{self, BufWriter, Write};

use super::EventWriter;
use crate::{events::Record, output::Format};

pub(crate) struct LineWriter {
    format: Format,
    buf: Vec<u8>,
    out: BufWriter<Box<dyn Write>>,
}

impl LineWriter {
    pub(crate) fn new(format: Format, out: Box<dyn Write>) -> Self {
        Self { format, buf: Vec::with_capacity(1 << 16), out: BufWriter::with_capacity(1 << 16, out) }
    }

    /// Appends raw bytes (the drop summary at exit).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }
}

impl EventWriter for LineWriter {
    fn write(&mut self, rec: &Record<'_>) -> io::Result<()> {
        rec.put_line(self.format, &mut self.buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use indexmap::IndexMap;
    use serde_json::Value;
    use tracer_common::{ArpSection, NeighSection, dir, fib, neigh_hook, neighf};

    use super::*;
    use crate::{
        annotate::{self, bench},
        events::{ArpEvent, Captured, NeighEvent},
        events::{ArpRecord, DropRecord, NeighRecord, PacketRecord, Place},
    };

    const README: &str = include_str!("../../../README.md");

    /// The keys named in the first column of the README table after `heading`, in order.
    fn table_keys(heading: &str) -> Vec<String> {
        let start = README.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
        let mut keys = Vec::new();
        let mut in_table = false;
        for line in README[start..].lines().skip(1) {
            if !line.starts_with('|') {
                if in_table {
                    break;
                }
                continue;
            }
            in_table = true;
            let first = line.split('|').nth(1).unwrap_or_default();
            keys.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
        }
        keys.retain(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        keys
    }

    fn dedup(keys: Vec<String>) -> Vec<String> {
        let mut seen = Vec::new();
        for k in keys {
            if !seen.contains(&k) {
                seen.push(k);
            }
        }
        seen
    }

    /// The README's order for each kind.
    fn readme_order(kind: &str) -> Vec<String> {
        let packet = table_keys("### `\"kind\": \"packet\"`");
        let annotation = table_keys("JSON keys added to `\"kind\": \"packet\"`");
        let common: Vec<String> = ["kind", "time", "ts_ns", "iface", "ifindex", "pod_namespace", "pod_name", "pod_uid"]
            .map(String::from)
            .into();
        match kind {
            "packet" => dedup([packet, annotation].concat()),
            "drop" => {
                let no_dir = packet.into_iter().filter(|k| k != "dir").collect();
                dedup([no_dir, annotation, table_keys("### `\"kind\": \"drop\"`")].concat())
            }
            "arp" => dedup([common, table_keys("### `\"kind\": \"arp\"`")].concat()),
            "neigh" => dedup([common, table_keys("### `\"kind\": \"neigh\"`")].concat()),
            "journey" => {
                let no_dir = packet.into_iter().filter(|k| k != "dir").collect();
                dedup([no_dir, table_keys("### `\"kind\": \"journey\"`"), annotation].concat())
            }
            other => panic!("no kind {other}"),
        }
    }

    /// The place of an event on `ifindex` at `ts_ns`, behind which a pod is known.
    fn place(ifindex: u32, ts_ns: u64) -> Place<'static> {
        let pod = crate::pods::Pod {
            namespace: "shop".into(),
            name: "web-7d4b9c-x2x9p".into(),
            uid: Some("0b6f7a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b".into()),
            ips: Vec::new(),
            iface: Some("calia".into()),
            mac: None,
            source: crate::pods::Source::CalicoStatus,
        };
        Place {
            iface: Cow::Borrowed("calia"),
            ifindex,
            ts_ns,
            wall_ns: 1_700_000_000_123_456_789,
            pod: Some(std::sync::Arc::new(pod)),
        }
    }

    fn json_keys(rec: &Record<'_>) -> (String, Vec<String>) {
        let mut buf = Vec::new();
        rec.put_line(Format::Json, &mut buf).unwrap();
        let obj: IndexMap<String, Value> = serde_json::from_slice(&buf).unwrap();
        (obj["kind"].as_str().unwrap().to_owned(), obj.keys().cloned().collect())
    }

    /// Netfilter drops: one named by its rule and policy, one ambiguous.
    fn netfilter_records(
        names: &crate::drops::DropNames,
        mirror: &crate::mirror::Mirror,
        ev: &crate::events::DropEvent,
    ) -> Vec<Record<'static>> {
        crate::drops::policy::tests::named_and_ambiguous()
            .into_iter()
            .map(|(policy, cause)| {
                let mut drop = crate::drops::name::tests::name(names, mirror, ev, Some("calia"));
                (drop.cause, drop.policy) = (cause, Some(Box::new(policy)));
                let place = place(ev.ifindex, ev.header.ts_ns);
                Record::Drop(Box::new(DropRecord { place, drop, frame: Captured::default() }))
            })
            .collect()
    }

    /// One record of each kind, from fixtures.
    fn with_records(mut each: impl FnMut(&Record<'_>)) {
        let mirror = bench::calico_node(3);
        let ev = bench::tcp_event(0, bench::pod_ip(1), dir::INGRESS, bench::FIRST_CALI, fib::SUCCESS, 11);
        let annotation = crate::events::annotation::FlowAnnotation::new(annotate::annotate(&mirror, &ev));
        let packet = Record::Packet(PacketRecord {
            place: place(ev.ifindex, ev.header.ts_ns),
            ev,
            annotation: &annotation,
            frame: Captured::default(),
        });
        let names = crate::drops::name::tests::names();
        let drop_ev = crate::drops::name::tests::drop_event();
        let drop = Record::Drop(Box::new(DropRecord {
            place: place(drop_ev.ifindex, drop_ev.header.ts_ns),
            drop: crate::drops::name::tests::name(&names, &mirror, &drop_ev, Some("calia")),
            frame: Captured::default(),
        }));
        let netfilter = netfilter_records(&names, &mirror, &drop_ev);
        let mut pod_ev = drop_ev;
        pod_ev.flags |= tracer_common::dropf::POD_SIDE | tracer_common::dropf::HAS_POD;
        (pod_ev.pod_ifindex, pod_ev.pod_flags) = (2, 1);
        pod_ev.pod_name[..4].copy_from_slice(b"eth0");
        let pod_drop = Record::Drop(Box::new(DropRecord {
            place: place(pod_ev.ifindex, pod_ev.header.ts_ns),
            drop: crate::drops::name::tests::name(&names, &mirror, &pod_ev, Some("calia")),
            frame: Captured::default(),
        }));
        let (sha, spa, tpa) = ([0x92, 0x7d, 0, 0, 0, 0], [10, 244, 1, 5], [169, 254, 1, 1]);
        let arp = ArpSection { ifindex: 10, op: 1, sha, spa, tpa, ..Default::default() };
        let arp = ArpEvent { arp, ..Default::default() };
        let arp = Record::Arp(ArpRecord {
            place: place(arp.ifindex, arp.header.ts_ns),
            ev: arp,
            mode: crate::probes::Mode::Kprobe,
        });
        let mut neigh = NeighSection {
            ifindex: 10,
            hook: neigh_hook::UPDATE,
            family: 2,
            old_state: 0x01,
            new_state: 0x02,
            flags: neighf::OLD_KNOWN | neighf::HAS_LLADDR,
            lladdr: [0x92, 0x7d, 0, 0, 0, 1],
            ..Default::default()
        };
        neigh.addr[..4].copy_from_slice(&[10, 244, 1, 6]);
        let neigh = NeighEvent { neigh, ..Default::default() };
        let neigh = Record::Neigh(NeighRecord {
            place: place(neigh.ifindex, neigh.header.ts_ns),
            ev: neigh,
            mode: crate::probes::Mode::Kprobe,
        });
        for rec in [packet, drop, pod_drop, arp, neigh].iter().chain(&netfilter) {
            each(rec);
        }
        journeys(&mirror, each);
    }

    /// A journey out of the node, and one that ended in a drop.
    fn journeys(mirror: &crate::mirror::Mirror, mut each: impl FnMut(&Record<'_>)) {
        use crate::{drops::name::tests as drops, pipeline::journeys::tests as journeys};
        let drop = drops::name(&drops::names(), mirror, &drops::drop_event(), Some("calia"));
        for j in [journeys::pod_to_pod(mirror), journeys::dropped(mirror, drop)] {
            each(&Record::Journey(Box::new(j)));
        }
    }

    /// Every key of every kind is in the README, and in the README's order.
    #[test]
    fn json_keys_follow_the_readme_on_every_kind() {
        with_records(|rec| {
            let (kind, keys) = json_keys(rec);
            let order = readme_order(&kind);
            let positions: Vec<usize> = keys
                .iter()
                .map(|k| {
                    order.iter().position(|o| o == k).unwrap_or_else(|| panic!("{kind}: key {k} is not in the README"))
                })
                .collect();
            assert!(positions.is_sorted(), "{kind}: keys {keys:?} are not in the README's order {order:?}");
            assert!(keys.len() >= 8, "{kind}: only {keys:?}");
        });
    }

    /// Each kind in each format, byte for byte as shown in the README's examples' shape: a
    /// change to any printer shows here.
    #[test]
    fn snapshots_of_every_kind_in_every_format() {
        let mut out = String::new();
        with_records(|rec| {
            for format in [Format::Text, Format::Json] {
                let mut buf = Vec::new();
                rec.put_line(format, &mut buf).unwrap();
                out.push_str(&String::from_utf8(buf).unwrap());
            }
        });
        let want = include_str!("../../test-data/snapshots.txt");
        if out != want && std::env::var_os("VETHTRACE_BLESS").is_some() {
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/test-data/snapshots.txt"), &out).unwrap();
        }
        assert_eq!(out, want, "printer output changed (VETHTRACE_BLESS=1 rewrites test-data/snapshots.txt)");
    }
}
