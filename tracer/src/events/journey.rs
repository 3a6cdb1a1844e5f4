//! `journey`: one packet's way through the node (`--journey`) — where it entered, each place
//! the kernel let vethtrace see it, where it left or died, and when (µs after it entered).
//!
//! The kernel sends a hop record per place ([`HopEvent`]); the collector puts a packet's hops
//! together ([`crate::pipeline::journeys`]) and writes one [`JourneyRecord`] once its way is
//! over: it left (a device took it), a local socket read it, the node consumed it, it was
//! dropped (the drop event, named as every drop is), or nothing more was seen of it within
//! the journey timeout.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use tracer_common::{JourneySection, Packet, hop, kind, nf_verdict, proto, section};

use super::{
    Capture, Captured, DecodeError, NamedDrop, PacketEvent, Place, Render, Stamp,
    annotation::Annotation,
    decode::{Sections, parse_frame},
    drop::put_json_tail,
    frame, reads_as_section,
};
use crate::{
    output::{
        key, key_quoted, put_number,
        write::{put, put_ip, put_json_str, put_u32, put_u64},
    },
    mirror::neigh::NeighState,
    packet::PacketView,
    pods::Pod,
};

/// A hop record: where a followed packet was seen, with its headers there when the hop
/// carries them (where it started, and where it was queued: after NAT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HopEvent {
    pub header: Stamp,
    pub hop: JourneySection,
    /// The frame's headers (`None` for hops without a frame).
    pub packet: Option<Packet>,
}

reads_as_section!(HopEvent, hop, JourneySection);

#[inline(always)]
pub(super) fn decode(header: Stamp, s: &Sections<'_>) -> Result<HopEvent, DecodeError> {
    let hop = s.journey.ok_or(DecodeError::Missing { kind: kind::JOURNEY, section: section::JOURNEY })?;
    let packet = s.frame.map(|f| parse_frame(f, 0, None));
    Ok(HopEvent { header, hop, packet })
}

/// A hop's name in JSON and in the verbose text.
pub(crate) fn hop_name(hop: u8) -> &'static str {
    match hop {
        hop::RECEIVE => "receive",
        hop::LOCAL => "local",
        hop::QUEUE => "queue",
        hop::XMIT => "xmit",
        hop::CONSUMED => "consumed",
        hop::SOCKET => "socket",
        hop::FORWARD => "forward",
        hop::OUTPUT => "output",
        hop::NEIGH => "neigh",
        hop::NF => "nf",
        _ => "unknown",
    }
}

/// What a hop inside the stack (kprobe/fentry) tells besides its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopDetail {
    None,
    /// [`hop::NEIGH`]: the neighbour entry it went through, its key and state then.
    Neigh { addr: IpAddr, state: NeighState },
    /// [`hop::NF`]: netfilter's verdict at a hook (`pf`: `NFPROTO_*`, `hook`: `NF_INET_*`).
    Nf { pf: u8, hook: u8, verdict: i32 },
}

impl HopDetail {
    pub(crate) fn of(s: &JourneySection) -> Self {
        match s.hop {
            hop::NEIGH => {
                let addr = if s.family == proto::AF_INET {
                    IpAddr::V4(Ipv4Addr::new(s.addr[0], s.addr[1], s.addr[2], s.addr[3]))
                } else {
                    IpAddr::V6(Ipv6Addr::from(s.addr))
                };
                Self::Neigh { addr, state: NeighState::from_nud(s.state) }
            }
            hop::NF => Self::Nf { pf: s.family, hook: s.state, verdict: s.rc },
            _ => Self::None,
        }
    }
}

/// `NFPROTO_*` by name.
fn nf_family(pf: u8) -> &'static str {
    match pf {
        1 => "inet",
        2 => "ipv4",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ipv6",
        _ => "unknown",
    }
}

/// The hook's name: `NF_INET_*` (and the bridge's, numbered alike), `NF_ARP_*`.
fn nf_hook(pf: u8, hook: u8) -> &'static str {
    match (pf, hook) {
        (3, 0) => "IN",
        (3, 1) => "OUT",
        (3, 2) => "FORWARD",
        (_, 0) => "PREROUTING",
        (_, 1) => "INPUT",
        (_, 2) => "FORWARD",
        (_, 3) => "OUTPUT",
        (_, 4) => "POSTROUTING",
        (_, 5) => "INGRESS",
        _ => "unknown",
    }
}

fn nf_verdict_name(verdict: i32) -> &'static str {
    match verdict {
        nf_verdict::DROP => "drop",
        nf_verdict::STOLEN => "stolen",
        _ => "unknown",
    }
}

/// One place on the way, named.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    /// One of `tracer_common::hop`, or [`DROPPED_HOP`].
    pub hop: u8,
    /// The device (`None` for hops without one).
    pub iface: Option<String>,
    pub ifindex: u32,
    /// Since the journey started, ns.
    pub after_ns: u64,
    pub detail: HopDetail,
}

/// The last hop of a dropped packet (not a kernel hop value).
pub(crate) const DROPPED_HOP: u8 = 0xff;

/// How a journey ended.
pub(crate) enum Outcome {
    /// A device took it (`iface`, with the pod behind it): it left the node's namespace.
    Out { iface: String, ifindex: u32, pod: Option<Arc<Pod>>, rc: i32 },
    /// A local socket read it.
    Delivered,
    /// The node freed it after use (`by`: the function, when the kernel says).
    Consumed { by: Option<String> },
    /// Dropped: the drop, named as every drop is.
    Dropped(Box<NamedDrop>),
    /// Routed to the node itself and not dropped, but its end was not seen within the
    /// timeout: the kernel frees such packets without a tracepoint on some paths (a socket's
    /// deferred free, a checksummed copy), or it waits unread in a socket's queue.
    ToNode,
    /// Nothing more was seen of it within the timeout (or before tracing stopped): `why`
    /// says what it was probably waiting for, from the node's state.
    Unfinished { why: String },
}

impl Outcome {
    /// The JSON `outcome`.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Self::Out { .. } => "out",
            Self::Delivered => "delivered",
            Self::Consumed { .. } => "consumed",
            Self::Dropped(_) => "dropped",
            Self::ToNode => "node",
            Self::Unfinished { .. } => "unfinished",
        }
    }
}

/// A packet's whole way through the node.
pub(crate) struct JourneyRecord {
    /// Where and when it entered (the pod behind the entry device).
    pub place: Place<'static>,
    pub id: u64,
    pub skbaddr: u64,
    /// [`hop::RECEIVE`] (a device received it) or [`hop::LOCAL`] (the node's stack sent it).
    pub entry: u8,
    /// Its headers where it entered.
    pub ev: PacketEvent,
    /// Its headers where it was last queued, when NAT changed its addresses or ports.
    pub nat: Option<Packet>,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
    /// From the first hop to the last, ns.
    pub duration_ns: u64,
    /// The route/neighbour annotation of its (translated) destination from where it entered.
    pub annotation: Annotation,
    /// The entry frame's bytes, for pcapng.
    pub frame: Vec<u8>,
    pub origin: u8,
    /// The text lists every hop (`--journey-hops`).
    pub verbose: bool,
}

/// Whether `after` differs from `before` in addresses or ports (NAT rewrote it).
pub(crate) fn translated(before: &Packet, after: &Packet) -> bool {
    let (b, a) = (PacketView(before), PacketView(after));
    b.src_ip() != a.src_ip() || b.dst_ip() != a.dst_ip() || b.ports() != a.ports()
}

fn put_micros(out: &mut Vec<u8>, ns: u64) {
    put_u64(out, ns / 1000);
    out.push(b'.');
    let frac = ns % 1000 / 100;
    put_u32(out, frac as u32);
}

/// `src[.port] > dst[.port]`.
fn put_endpoints(out: &mut Vec<u8>, p: &Packet) {
    let v = PacketView(p);
    let ports = v.ports();
    if let Some(s) = v.src_ip() {
        put_ip(out, s);
    }
    if let Some((sp, _)) = ports {
        out.push(b'.');
        put_u32(out, u32::from(sp));
    }
    put(out, " > ");
    if let Some(d) = v.dst_ip() {
        put_ip(out, d);
    }
    if let Some((_, dp)) = ports {
        out.push(b'.');
        put_u32(out, u32::from(dp));
    }
}

impl JourneyRecord {
    /// `In → NAT … → Out cali2 [ns/pod], 9.2 µs` — the way in one line.
    fn put_way(&self, out: &mut Vec<u8>) {
        put(out, if self.entry == hop::LOCAL { "from the node" } else { "In" });
        if let Some(after) = &self.nat {
            put(out, " → NAT ");
            put_endpoints(out, after);
        }
        match &self.outcome {
            Outcome::Out { iface, pod, rc, .. } => {
                put(out, " → Out ");
                put(out, iface);
                if let Some(pod) = pod {
                    put(out, " [");
                    put(out, &pod.namespace);
                    out.push(b'/');
                    put(out, &pod.name);
                    out.push(b']');
                }
                if *rc != 0 {
                    put(out, " (driver returned ");
                    put(out, &rc.to_string());
                    out.push(b')');
                }
            }
            Outcome::Delivered => put(out, " → delivered to a local socket"),
            Outcome::Consumed { by } => {
                put(out, " → consumed in the node");
                if let Some(by) = by {
                    put(out, " by ");
                    put(out, by);
                }
            }
            Outcome::Dropped(d) => {
                put(out, " → ");
                d.put_heading(out);
                put(out, " (");
                put(out, d.cause.text());
                out.push(b')');
            }
            Outcome::ToNode => put(out, " → to the node's own stack (its end is not traced there)"),
            Outcome::Unfinished { why } => {
                put(out, " → unfinished: ");
                put(out, why);
            }
        }
        put(out, ", ");
        put_micros(out, self.duration_ns);
        put(out, " µs");
    }
}

/// `… journey <src > dst: L4> : In → … → Out cali2 [ns/pod], 9.2 µs | <annotation>`; with
/// `--journey-hops` the hops follow, one per line. JSON: the entry frame's fields, then the
/// journey's (README order).
impl Render for JourneyRecord {
    const KIND: &'static str = "journey";

    fn place(&self) -> &Place<'_> {
        &self.place
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        put(out, " journey ");
        frame::put_l3_text(out, &self.ev);
        put(out, " : ");
        self.put_way(out);
        self.annotation.put_text(out);
        if self.verbose {
            self.put_hops_text(out);
        }
    }

    fn put_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        frame::put_json(out, &self.ev);
        key_quoted!(out, "journey_id", |o| put_u64(o, self.id));
        key_quoted!(out, "skb", |o| put(o, &format!("{:#x}", self.skbaddr)));
        key!(out, "entry");
        put_json_str(out, if self.entry == hop::LOCAL { "local" } else { "received" })?;
        key!(out, "outcome");
        put_json_str(out, self.outcome.word())?;
        key!(out, "duration_us");
        put_micros(out, self.duration_ns);
        if let Some(after) = &self.nat {
            put_nat_json(out, after);
        }
        self.put_outcome_json(out)?;
        self.put_hops_json(out)?;
        self.annotation.write_json_fields(out)
    }

    fn capture(&self) -> Option<Capture<'_>> {
        let frame = Captured { bytes: &self.frame, origin: self.origin };
        Some(Capture { frame, protocol: 0, len: self.ev.len, dir: None, comment_once: None })
    }
}

/// `,"nat_src":…,"nat_dst":…[,"nat_sport":…,"nat_dport":…]`: the headers after NAT.
fn put_nat_json(out: &mut Vec<u8>, after: &Packet) {
    let v = PacketView(after);
    if let Some(s) = v.src_ip() {
        key_quoted!(out, "nat_src", |o| put_ip(o, s));
    }
    if let Some(d) = v.dst_ip() {
        key_quoted!(out, "nat_dst", |o| put_ip(o, d));
    }
    if let Some((sp, dp)) = v.ports() {
        put_number!(out, "nat_sport", u64::from(sp));
        put_number!(out, "nat_dport", u64::from(dp));
    }
}

impl JourneyRecord {
    /// The exit device, the consumer, the drop or what it waited for.
    fn put_outcome_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        match &self.outcome {
            Outcome::Out { iface, ifindex, pod, rc } => {
                key!(out, "exit_iface");
                put_json_str(out, iface)?;
                put_number!(out, "exit_ifindex", u64::from(*ifindex));
                if let Some(pod) = pod {
                    key!(out, "exit_pod_namespace");
                    put_json_str(out, &pod.namespace)?;
                    key!(out, "exit_pod_name");
                    put_json_str(out, &pod.name)?;
                }
                if *rc != 0 {
                    key!(out, "xmit_rc");
                    put(out, &rc.to_string());
                }
            }
            Outcome::Consumed { by: Some(by) } => {
                key!(out, "consumed_by");
                put_json_str(out, by)?;
            }
            Outcome::Dropped(d) => put_json_tail(out, d)?,
            Outcome::Unfinished { why } => {
                key!(out, "waiting");
                put_json_str(out, why)?;
            }
            Outcome::Delivered | Outcome::ToNode | Outcome::Consumed { by: None } => {}
        }
        Ok(())
    }

    /// `,"hops":[{"hop":…,"iface":…,"ifindex":…,"t_us":…},…]`.
    fn put_hops_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        key!(out, "hops");
        out.push(b'[');
        for (i, h) in self.hops.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put(out, "{\"hop\":");
            put_json_str(out, if h.hop == DROPPED_HOP { "drop" } else { hop_name(h.hop) })?;
            if let Some(iface) = &h.iface {
                key!(out, "iface");
                put_json_str(out, iface)?;
                put_number!(out, "ifindex", u64::from(h.ifindex));
            }
            match h.detail {
                HopDetail::None => {}
                HopDetail::Neigh { addr, state } => {
                    key_quoted!(out, "neigh", |o| put_ip(o, addr));
                    key!(out, "neigh_state");
                    put_json_str(out, state.name())?;
                }
                HopDetail::Nf { pf, hook, verdict } => {
                    key!(out, "nf_family");
                    put_json_str(out, nf_family(pf))?;
                    key!(out, "nf_hook");
                    put_json_str(out, nf_hook(pf, hook))?;
                    key!(out, "verdict");
                    put_json_str(out, nf_verdict_name(verdict))?;
                }
            }
            key!(out, "t_us");
            put_micros(out, h.after_ns);
            out.push(b'}');
        }
        out.push(b']');
        Ok(())
    }

    /// The hops, one per line (`--journey-hops`), each `    +T µs  hop iface`, after the
    /// journey's line (no newline after the last).
    fn put_hops_text(&self, out: &mut Vec<u8>) {
        for h in &self.hops {
            put(out, "\n    +");
            put_micros(out, h.after_ns);
            put(out, " µs  ");
            put(out, if h.hop == DROPPED_HOP { "drop" } else { hop_name(h.hop) });
            if let Some(iface) = &h.iface {
                out.push(b' ');
                put(out, iface);
            }
            match h.detail {
                HopDetail::None => {}
                HopDetail::Neigh { addr, state } => {
                    out.push(b' ');
                    put_ip(out, addr);
                    out.push(b' ');
                    put(out, state.name());
                }
                HopDetail::Nf { pf, hook, verdict } => {
                    if !matches!(pf, 1 | 2) {
                        out.push(b' ');
                        put(out, nf_family(pf));
                    }
                    out.push(b' ');
                    put(out, nf_hook(pf, hook));
                    out.push(b' ');
                    put(out, nf_verdict_name(verdict));
                }
            }
        }
    }
}
