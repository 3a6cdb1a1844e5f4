//! `drop`: a packet the kernel dropped (or a finding of the collector's that reads as one:
//! ARP_UNANSWERED), named — reason, location, cause — by `crate::drops`.

use std::{fmt, io};

use tracer_common::{DropSection, dir, dropf, fib, kind, section};

use super::{
    Capture, Captured, DecodeError, PacketEvent, Place, Render, Stamp,
    annotation::Annotation,
    decode::{Sections, parse_frame},
    frame, reads_as_section,
};
use crate::output::write::{put, put_json_str, put_u32};

crate::codes::stable_codes! {
    /// What kind of cause a drop has: stable across versions and wordings (JSON
    /// `cause_code`), where the sentence ([`Cause`]'s Display) may change.
    CauseCode {
        NoRoute => "no_route",
        /// A neighbour (ARP or NDP) never answered.
        NeighbourUnanswered => "neighbour_unanswered",
        Netfilter => "netfilter",
        RpFilter => "rp_filter",
        TooBig => "too_big",
        DeviceDown => "device_down",
        NoCarrier => "no_carrier",
        /// The device is a veth whose other end is down.
        VethPeerDown => "veth_peer_down",
        QueueDrop => "queue_drop",
        TransmitFailed => "transmit_failed",
        NoSocket => "no_socket",
        BadHeader => "bad_header",
        OtherHost => "other_host",
        TcProgram => "tc_program",
        NoReason => "no_reason",
        /// A reason the classes above do not cover, in the kernel's words.
        Kernel => "kernel",
        /// Pod side: the pod's device is down.
        PodDeviceDown => "pod_device_down",
        PodNoCarrier => "pod_no_carrier",
        PodNoRoute => "pod_no_route",
        PodQueueDrop => "pod_queue_drop",
        PodTransmitFailed => "pod_transmit_failed",
        /// Pod side: its neighbour resolution failed and no ARP request of it was seen.
        PodNeighbourFailed => "pod_neighbour_failed",
        /// An ARP request the node left unanswered, and why (from the mirror).
        ArpCaliDown => "arp_cali_down",
        ArpForwardingOff => "arp_forwarding_off",
        ArpProxyArpOff => "arp_proxy_arp_off",
        ArpNoRoute => "arp_no_route",
        ArpRoutedBack => "arp_routed_back",
        ArpNoRouteBack => "arp_no_route_back",
        ArpNobodyAnswered => "arp_nobody_answered",
    }
}

/// A drop's cause: its stable code and the sentence in plain words (Display: the text line,
/// JSON `cause`, the pcapng comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    pub(crate) code: CauseCode,
    text: String,
}

impl Cause {
    pub(crate) fn new(code: CauseCode, text: impl Into<String>) -> Self {
        Self { code, text: text.into() }
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The same code, the sentence put in other words (`in the pod behind caliX: …`).
    pub(crate) fn reworded(self, text: String) -> Self {
        Self { text, ..self }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A packet the kernel dropped, its frame parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DropEvent {
    pub header: Stamp,
    pub drop: DropSection,
    pub packet: tracer_common::Packet,
}

reads_as_section!(DropEvent, drop, DropSection);

#[inline(always)]
pub(super) fn decode(header: Stamp, s: &Sections<'_>) -> Result<DropEvent, DecodeError> {
    let drop = s.drop.ok_or(DecodeError::Missing { kind: kind::DROP, section: section::DROP })?;
    Ok(DropEvent { header, drop, packet: parse_frame(s.frame(), drop.protocol, None) })
}

impl DropEvent {
    /// The drop's packet as a packet event, so that the annotation and the frame's printers
    /// see it like any other (as if received on the device; no FIB verdict).
    pub(crate) fn as_packet(&self) -> PacketEvent {
        PacketEvent {
            header: self.header,
            ifindex: self.ifindex,
            len: self.len,
            dir: dir::INGRESS,
            fib_ret: fib::NOT_RUN,
            packet: self.packet,
            ..Default::default()
        }
    }

    /// The pod end's name as the kernel gave it (`eth0`), or `if<N>`.
    pub(crate) fn pod_dev_name(&self) -> String {
        let name = &self.pod_name;
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        match std::str::from_utf8(&name[..len]) {
            Ok(n) if !n.is_empty() => n.to_owned(),
            _ => format!("if{}", self.pod_ifindex),
        }
    }
}

/// A drop with everything named: what the printers and the summary use.
pub(crate) struct NamedDrop {
    pub ev: DropEvent,
    /// Short reason name; `None` on kernels without reasons.
    pub reason: Option<String>,
    /// `symbol+0xoff`.
    pub location: String,
    pub cause: Cause,
    pub annotation: Annotation,
    /// Dropped on the pod end of the veth: that device's name (`eth0`).
    pub pod_dev: Option<String>,
    /// Not a kernel drop but a finding of the collector's (ARP_UNANSWERED): no reason code.
    pub finding: bool,
    /// A netfilter drop: the rule that dropped it (or the candidates) and its policy.
    pub policy: Option<Box<crate::drops::policy::PolicyDrop>>,
}

impl NamedDrop {
    /// The reason, or on kernels without reasons the dropping location.
    pub(crate) fn reason_or_location(&self) -> &str {
        self.reason.as_deref().unwrap_or(&self.location)
    }

    /// `DROP <reason> at <location>`.
    pub(crate) fn put_heading(&self, out: &mut Vec<u8>) {
        put(out, "DROP ");
        put(out, self.reason.as_deref().unwrap_or("(no reason)"));
        put(out, " at ");
        put(out, &self.location);
    }
}

/// A packet the kernel dropped.
pub(crate) struct DropRecord<'a> {
    pub place: Place<'a>,
    pub drop: NamedDrop,
    pub frame: Captured<'a>,
}

/// `… DROP <reason> at <location> (<cause>): [pod side, eth0] <frame> | <annotation>`: the
/// frame part is the packet printers' own, so that drops and packets read alike. JSON: the
/// frame's fields (no `dir`), the annotation's, the drop's (README order).
impl Render for DropRecord<'_> {
    const KIND: &'static str = "drop";

    fn place(&self) -> &Place<'_> {
        &self.place
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        let drop = &self.drop;
        out.push(b' ');
        drop.put_heading(out);
        put(out, " (");
        put(out, drop.cause.text());
        put(out, "): ");
        if let Some(d) = drop.pod_dev.as_deref() {
            put(out, "[pod side, ");
            put(out, d);
            put(out, "] ");
        }
        if drop.ev.flags & dropf::NO_MAC != 0 {
            put(out, "[no MAC header] ");
        }
        frame::put_text(out, &drop.ev.as_packet());
        drop.annotation.put_text(out);
    }

    fn put_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        frame::put_json(out, &self.drop.ev.as_packet());
        self.drop.annotation.write_json_fields(out)?;
        put_json_tail(out, &self.drop)
    }

    /// `DROP <reason> at <location>: <cause>` (`[pod side, eth0]` after the cause for a drop
    /// on the pod end of the veth), then the annotation after ` | `.
    fn put_comment(&self, out: &mut Vec<u8>) {
        let drop = &self.drop;
        drop.put_heading(out);
        put(out, ": ");
        put(out, drop.cause.text());
        if let Some(d) = drop.pod_dev.as_deref() {
            put(out, " [pod side, ");
            put(out, d);
            out.push(b']');
        }
        drop.annotation.put_text(out);
    }

    fn capture(&self) -> Option<Capture<'_>> {
        let ev = &self.drop.ev;
        Some(Capture { frame: self.frame, protocol: ev.protocol, len: ev.len, dir: None, comment_once: None })
    }
}

/// The drop's own JSON keys, after the frame's and the annotation's (README order), written
/// as a serde derive writes them (a test holds the two equal: `tests::DropTail`), without serde's
/// detour through a buffer of its own for every drop.
pub(crate) fn put_json_tail(out: &mut Vec<u8>, drop: &NamedDrop) -> io::Result<()> {
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
    if let Some(p) = &drop.policy {
        crate::drops::policy::put_json(out, p)?;
    }
    Ok(())
}

/// The kernel's reason number, when the drop has a reason and is the kernel's (not a finding).
fn reason_code(drop: &NamedDrop) -> Option<u32> {
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
    use serde::Serialize;

    use super::*;
    use crate::{
        drops::name::tests::{drop_event, name, names},
        events::tests::{calia, line_of},
        mirror::Mirror,
        output::Format,
    };

    /// `d`'s line in `format` on `calia`.
    fn line(d: NamedDrop, format: Format) -> Vec<u8> {
        let place = Place { wall_ns: 0, ..calia(d.ev.ifindex, 0) };
        line_of(&DropRecord { place, drop: d, frame: Captured::default() }, format)
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
        let buf = line(d, Format::Json);
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
        let line = String::from_utf8(line(d, Format::Text)).unwrap();
        assert!(
            line.contains(
                " calia           DROP IP_INNOROUTES at ip_error+0x42 (no route to 10.77.0.1 (no route matches)): "
            ),
            "{line}"
        );
        assert!(line.contains("10.244.1.5 > 10.77.0.1: ICMP"), "{line}");
        assert!(line.ends_with('\n') && !line.contains(" In  "), "{line}");
    }
}
