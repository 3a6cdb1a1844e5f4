//! Drop events as text lines and JSON objects (`kind: "drop"`, keys in the README).

use std::io;

use tracer_common::{dir, dropf, fib};

use crate::event::{DropEvent, PacketEvent};

use super::{
    DropNames,
    cause::{self, Cause, DropFacts},
};
use crate::{
    annotate::{self, Annotation},
    mirror::Mirror,
    output::{self, Format, Meta},
};

/// A drop with everything named: what both printers and the summary use.
pub(crate) struct NamedDrop<'m> {
    pub ev: DropEvent,
    /// Short reason name; `None` on kernels without reasons.
    pub reason: Option<String>,
    /// `symbol+0xoff`.
    pub location: String,
    pub cause: Cause,
    pub annotation: Annotation<'m>,
    /// Dropped on the pod end of the veth: that device's name (`eth0`).
    pub pod_dev: Option<String>,
    /// Not a kernel drop but a finding of the collector's (ARP_UNANSWERED): no reason code.
    pub finding: bool,
}

impl NamedDrop<'_> {
    /// The reason, or on kernels without reasons the dropping location.
    pub(crate) fn reason_or_location(&self) -> &str {
        self.reason.as_deref().unwrap_or(&self.location)
    }
}

/// The drop's packet as a packet event, so that the annotation and the packet printers see
/// it like any other (as if received on the device; no FIB verdict).
pub(crate) fn as_packet_event(ev: &DropEvent) -> PacketEvent {
    PacketEvent {
        header: ev.header,
        ifindex: ev.ifindex,
        len: ev.len,
        dir: dir::INGRESS,
        fib_ret: fib::NOT_RUN,
        packet: ev.packet,
        ..Default::default()
    }
}

/// Names a drop: reason, location, route/neighbour annotation, cause, with the last ARP
/// request the node left unanswered on the drop's interface (what a pod-side NEIGH_FAILED was
/// waiting for).
pub(crate) fn name_with<'m>(
    names: &DropNames,
    mirror: &'m Mirror,
    ev: &DropEvent,
    dev: Option<&str>,
    unanswered: Option<&super::arpwatch::Finding>,
) -> NamedDrop<'m> {
    let reason = names.reason(ev);
    let pod_side = ev.flags & dropf::POD_SIDE != 0;
    // The node's routes and neighbours say nothing about a packet that never left the pod.
    let annotation = if pod_side { Annotation::default() } else { annotate::annotate(mirror, &as_packet_event(ev)) };
    let symbol = names.symbol(ev);
    let facts = DropFacts { ev, reason: reason.as_deref(), symbol, dev, mirror, annotation: &annotation };
    let (cause, pod_dev) = if pod_side {
        (super::podside::describe(&facts, unanswered), Some(super::podside::pod_dev_name(ev)))
    } else {
        (cause::describe(&facts), None)
    };
    NamedDrop { ev: *ev, reason, location: names.location(ev), cause, annotation, pod_dev, finding: false }
}

/// Appends one line for `drop` to `buf`. The frame part is the packet printers' own output
/// for the drop's frame with its annotation (see [`as_packet_event`]), so that drops and
/// packets read alike; JSON keys in the README's order.
pub(crate) fn write(format: Format, buf: &mut Vec<u8>, drop: &NamedDrop<'_>, meta: Meta<'_>) -> io::Result<()> {
    let pe = as_packet_event(&drop.ev);
    match format {
        Format::Text => {
            output::put_text_stamp(buf, meta);
            let reason = drop.reason.as_deref().unwrap_or("(no reason)");
            let no_mac = if drop.ev.flags & dropf::NO_MAC != 0 { "[no MAC header] " } else { "" };
            let side = drop.pod_dev.as_deref().map(|d| format!("[pod side, {d}] ")).unwrap_or_default();
            let head = format!(" DROP {reason} at {} ({}): {side}{no_mac}", drop.location, drop.cause);
            buf.extend_from_slice(head.as_bytes());
            output::put_text_frame(buf, &pe);
            drop.annotation.put_text(buf);
            buf.push(b'\n');
        }
        Format::Json => {
            output::put_json_frame(buf, &pe, meta, "drop", false)?;
            drop.annotation.write_json_fields(buf)?;
            put_json_tail(buf, drop)?;
            buf.extend_from_slice(b"}\n");
        }
    }
    Ok(())
}

/// The drop's own JSON keys, after the frame's and the annotation's (README order), written
/// as a serde derive writes them (a test holds the two equal: `tests::DropTail`), without serde's
/// detour through a buffer of its own for every drop.
fn put_json_tail(out: &mut Vec<u8>, drop: &NamedDrop<'_>) -> io::Result<()> {
    use output::write::{put, put_json_str, put_u32};
    // No reason (a kernel before 5.17): neither key, rather than a guess or a null.
    if let Some(r) = drop.reason.as_deref() {
        put(out, ",\"reason\":");
        put_json_str(out, r)?;
        put(out, ",\"reason_code\":");
        match reason_code(drop) {
            Some(code) => put_u32(out, code),
            None => put(out, "null"),
        }
    }
    put(out, ",\"location\":");
    put_json_str(out, &drop.location)?;
    put(out, ",\"cause\":");
    put_json_str(out, drop.cause.text())?;
    put(out, ",\"cause_code\":");
    put_json_str(out, drop.cause.code.code())?;
    put(out, ",\"matched\":");
    put_json_str(out, matched(drop.ev.flags))?;
    if let Some(dev) = drop.pod_dev.as_deref() {
        put(out, ",\"side\":\"pod\",\"pod_dev\":");
        put_json_str(out, dev)?;
    }
    Ok(())
}

/// The kernel's reason number, when the drop has a reason and is the kernel's (not a finding).
fn reason_code(drop: &NamedDrop<'_>) -> Option<u32> {
    (drop.reason.is_some() && !drop.finding).then_some(drop.ev.reason)
}

/// Why a drop is shown: its device is traced, an address is routed to a traced interface, or
/// it arrived through one.
pub(crate) fn matched(flags: u8) -> &'static str {
    if flags & dropf::BY_DEV != 0 {
        "device"
    } else if flags & dropf::BY_ADDR != 0 {
        "address"
    } else {
        "arrival"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernel::{drop_reason::DropReasons, kallsyms::Kallsyms};
    use serde::Serialize;
    use tracer_common::{DropSection, valid};

    /// Names a drop: reason, location, route/neighbour annotation, cause.
    pub(crate) fn name<'m>(names: &DropNames, mirror: &'m Mirror, ev: &DropEvent, dev: Option<&str>) -> NamedDrop<'m> {
        name_with(names, mirror, ev, dev, None)
    }

    /// The reference for [`put_json_tail`]: the keys and values as the serde derive writes them.
    #[derive(Serialize)]
    struct DropTail<'a> {
        /// Absent, with `reason_code`, on kernels without drop reasons.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason_code: Option<Option<u32>>,
        location: &'a str,
        cause: &'a str,
        cause_code: &'static str,
        matched: &'a str,
        /// `"pod"` for a drop on the pod end of the veth; absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        side: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pod_dev: Option<&'a str>,
    }

    pub(crate) fn names() -> DropNames {
        DropNames {
            reasons: DropReasons::from_values([("SKB_DROP_REASON_IP_INNOROUTES".to_owned(), 88)]),
            kallsyms: Kallsyms::parse("ffffffff81a00000 t ip_error\n"),
        }
    }

    pub(crate) fn drop_event() -> DropEvent {
        let mut ev = DropEvent {
            drop: DropSection {
                reason: 88,
                location: 0xffff_ffff_81a0_0042,
                ifindex: 3,
                len: 84,
                flags: dropf::HAS_REASON | dropf::BY_DEV,
                ..Default::default()
            },
            ..Default::default()
        };
        ev.packet.valid = valid::L2 | valid::IPV4;
        ev.packet.ethertype = 0x0800;
        ev.packet.ip_proto = 1;
        ev.packet.src_ip[..4].copy_from_slice(&[10, 244, 1, 5]);
        ev.packet.dst_ip[..4].copy_from_slice(&[10, 77, 0, 1]);
        ev
    }

    /// The hand-written tail is byte for byte the serde derive's, for kernel drops with and
    /// without a reason, a pod-side drop, a finding and text that needs escaping.
    #[test]
    fn the_json_tail_is_the_serde_derives() {
        let mirror = Mirror::default();
        let mut pod_side = drop_event();
        pod_side.flags |= dropf::POD_SIDE | dropf::HAS_POD;
        pod_side.pod_name[..4].copy_from_slice(b"eth0");
        let mut no_reason = drop_event();
        no_reason.flags &= !dropf::HAS_REASON;
        no_reason.location = 0x1234;
        for ev in [drop_event(), pod_side, no_reason] {
            let mut d = name(&names(), &mirror, &ev, Some("calia"));
            for (finding, location) in [(false, None), (true, Some("we\"ird\\\u{1}"))] {
                d.finding = finding;
                if let Some(l) = location {
                    d.location = l.to_owned();
                }
                let mut ours = Vec::new();
                put_json_tail(&mut ours, &d).unwrap();
                let tail = DropTail {
                    reason: d.reason.as_deref(),
                    reason_code: d.reason.is_some().then(|| reason_code(&d)),
                    location: &d.location,
                    cause: d.cause.text(),
                    cause_code: d.cause.code.code(),
                    matched: matched(d.ev.flags),
                    side: d.pod_dev.is_some().then_some("pod"),
                    pod_dev: d.pod_dev.as_deref(),
                };
                // serde's object without its braces, as `,"key":value` pairs to merge.
                let object = serde_json::to_string(&tail).unwrap();
                let theirs = format!(",{}", &object[1..object.len() - 1]);
                assert_eq!(String::from_utf8_lossy(&ours), theirs);
            }
        }
    }

    #[test]
    fn json_has_drop_keys_and_packet_keys() {
        let mirror = Mirror::default();
        let d = name(&names(), &mirror, &drop_event(), Some("calia"));
        let mut buf = Vec::new();
        write(Format::Json, &mut buf, &d, Meta::new("calia", 0)).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        let j: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(j["kind"], "drop");
        assert_eq!(j["reason"], "IP_INNOROUTES");
        assert_eq!(j["reason_code"], 88);
        assert_eq!(j["location"], "ip_error+0x42");
        assert_eq!(j["cause"], "no route to 10.77.0.1 (no route matches)");
        assert_eq!(j["matched"], "device");
        assert_eq!(j["dst"], "10.77.0.1");
        assert_eq!(j["iface"], "calia");
        assert!(j.get("dir").is_none());
        assert!(j.get("notes").is_some(), "annotation keys: {j}");
    }

    #[test]
    fn text_line_names_reason_location_and_cause() {
        let mirror = Mirror::default();
        let d = name(&names(), &mirror, &drop_event(), Some("calia"));
        let mut buf = Vec::new();
        write(Format::Text, &mut buf, &d, Meta::new("calia", 0)).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert!(
            line.contains(" calia           DROP IP_INNOROUTES at ip_error+0x42 (no route to 10.77.0.1 (no route matches)): "),
            "{line}"
        );
        assert!(line.contains("10.244.1.5 > 10.77.0.1: ICMP"), "{line}");
        assert!(line.ends_with('\n') && !line.contains(" In  "), "{line}");
    }
}
