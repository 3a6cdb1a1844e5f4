//! Drop events as text lines and JSON objects (`kind: "drop"`, keys in the README).

use std::io;

use serde_json::Value;

use tracer_common::{dir, dropf, fib};

use crate::event::{DropEvent, PacketEvent};

use super::{
    DropNames,
    cause::{self, DropFacts},
};
use crate::{
    annotate::{self, Annotation},
    mirror::Mirror,
    output::{self, Format, Meta},
};

/// A drop with everything named: what both printers and the summary use.
pub struct NamedDrop<'m> {
    pub ev: DropEvent,
    /// Short reason name; `None` on kernels without reasons.
    pub reason: Option<String>,
    /// `symbol+0xoff`.
    pub location: String,
    pub cause: String,
    pub annotation: Annotation<'m>,
}

impl NamedDrop<'_> {
    /// The reason, or on kernels without reasons the dropping location.
    pub fn reason_or_location(&self) -> &str {
        self.reason.as_deref().unwrap_or(&self.location)
    }
}

/// The drop's packet as a packet event, so that the annotation and the packet printers see
/// it like any other (as if received on the device; no FIB verdict).
pub fn as_packet_event(ev: &DropEvent) -> PacketEvent {
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

/// Names a drop: reason, location, route/neighbour annotation, cause.
pub fn name<'m>(names: &DropNames, mirror: &'m Mirror, ev: &DropEvent, dev: Option<&str>) -> NamedDrop<'m> {
    let reason = names.reason(ev);
    let annotation = annotate::annotate(mirror, &as_packet_event(ev));
    let cause = cause::describe(&DropFacts {
        ev,
        reason: reason.as_deref(),
        symbol: names.symbol(ev),
        dev,
        mirror,
        annotation: &annotation,
    });
    NamedDrop { ev: *ev, reason, location: names.location(ev), cause, annotation }
}

/// Appends one line for `drop` to `buf`. The packet part is the packet printers' own output
/// for the drop's frame with its annotation (see [`as_packet_event`]), so that drops and
/// packets read alike.
pub fn write(format: Format, buf: &mut Vec<u8>, drop: &NamedDrop<'_>, meta: Meta<'_>) -> io::Result<()> {
    let pe = as_packet_event(&drop.ev);
    let mut packet = Vec::with_capacity(640);
    output::write_annotated(format, &mut packet, &pe, meta, Some(&drop.annotation))?;
    match format {
        Format::Text => {
            let packet = String::from_utf8_lossy(&packet);
            // `HH:MM:SS.uuuuuu <iface> In  <frame and annotation>`: the frame follows the
            // direction marker (interface names have no spaces).
            let (stamp, frame) = packet.trim_end().split_once(" In  ").unwrap_or(("", &packet));
            let reason = drop.reason.as_deref().unwrap_or("(no reason)");
            let no_mac = if drop.ev.flags & dropf::NO_MAC != 0 { "[no MAC header] " } else { "" };
            let line = format!("{stamp} DROP {reason} at {} ({}): {no_mac}{frame}\n", drop.location, drop.cause);
            buf.extend_from_slice(line.as_bytes());
        }
        Format::Json => {
            let mut obj: serde_json::Map<String, Value> = serde_json::from_slice(&packet)?;
            obj.insert("kind".into(), "drop".into());
            obj.remove("dir");
            obj.insert("reason".into(), drop.reason.as_deref().into());
            obj.insert("reason_code".into(), drop.reason.is_some().then_some(drop.ev.reason).into());
            obj.insert("location".into(), drop.location.as_str().into());
            obj.insert("cause".into(), drop.cause.as_str().into());
            let matched = matched(drop.ev.flags);
            obj.insert("matched".into(), matched.into());
            serde_json::to_writer(&mut *buf, &obj)?;
            buf.push(b'\n');
        }
    }
    Ok(())
}

/// Why a drop is shown: its device is traced, an address is routed to a traced interface, or
/// it arrived through one.
pub fn matched(flags: u8) -> &'static str {
    if flags & dropf::BY_DEV != 0 {
        "device"
    } else if flags & dropf::BY_ADDR != 0 {
        "address"
    } else {
        "arrival"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{drop_reason::DropReasons, kallsyms::Kallsyms};
    use tracer_common::{DropSection, valid};

    fn names() -> DropNames {
        DropNames {
            reasons: DropReasons::from_values([("SKB_DROP_REASON_IP_INNOROUTES".to_owned(), 88)]),
            kallsyms: Kallsyms::parse("ffffffff81a00000 t ip_error\n"),
            has_reasons: true,
        }
    }

    fn drop_event() -> DropEvent {
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

    #[test]
    fn json_has_drop_keys_and_packet_keys() {
        let mirror = Mirror::default();
        let d = name(&names(), &mirror, &drop_event(), Some("calia"));
        let mut buf = Vec::new();
        write(Format::Json, &mut buf, &d, Meta { iface: "calia", wall_ns: 0 }).unwrap();
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
        write(Format::Text, &mut buf, &d, Meta { iface: "calia", wall_ns: 0 }).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert!(
            line.contains(" calia           DROP IP_INNOROUTES at ip_error+0x42 (no route to 10.77.0.1 (no route matches)): "),
            "{line}"
        );
        assert!(line.contains("10.244.1.5 > 10.77.0.1: ICMP"), "{line}");
        assert!(line.ends_with('\n') && !line.contains(" In  "), "{line}");
    }
}
