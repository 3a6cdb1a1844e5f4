//! The route/neighbour annotation a packet or drop record carries: its typed form
//! ([`Annotation`], made by `crate::annotate` from the mirror), how it reads in text and JSON
//! ([`render`]), and the annotation shared by the packets of a flow ([`FlowAnnotation`]),
//! rendered once for each format a writer asks for.

mod render;

use std::{
    cell::{Cell, OnceCell},
    fmt,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use tracer_common::fib;

use crate::{
    mirror::{Mirror, neigh::NeighState, prefix::Prefix, routes::RouteKind},
    output::Format,
    packet::Mac,
};

/// An interface's name, held inline: the kernel allows at most 15 bytes (`IFNAMSIZ` - 1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IfName {
    len: u8,
    bytes: [u8; 15],
}

impl IfName {
    /// `None` for a name longer than the kernel allows.
    pub fn new(name: &str) -> Option<Self> {
        let mut bytes = [0; 15];
        bytes.get_mut(..name.len())?.copy_from_slice(name.as_bytes());
        Some(Self { len: name.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        // Copied whole from a `str` in `new`.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An interface as the annotation names it: by name, or `if<N>` when the mirror does not
/// know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dev {
    pub index: u32,
    pub name: Option<IfName>,
}

impl Dev {
    pub(crate) fn new(mirror: &Mirror, index: u32) -> Self {
        Self { index, name: mirror.links.name(index).and_then(IfName::new) }
    }
}

impl fmt::Display for Dev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n.as_str()),
            None => write!(f, "if{}", self.index),
        }
    }
}

/// `bpf_fib_lookup`'s answer, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibVerdict {
    Success,
    Blackhole,
    Unreachable,
    Prohibit,
    NotForwarded,
    ForwardingDisabled,
    UnsupportedLwt,
    NoNeighbour,
    FragNeeded,
}

impl FibVerdict {
    pub fn from_ret(ret: u8) -> Option<Self> {
        Some(match ret {
            fib::SUCCESS => Self::Success,
            fib::BLACKHOLE => Self::Blackhole,
            fib::UNREACHABLE => Self::Unreachable,
            fib::PROHIBIT => Self::Prohibit,
            fib::NOT_FWDED => Self::NotForwarded,
            fib::FWD_DISABLED => Self::ForwardingDisabled,
            fib::UNSUPP_LWT => Self::UnsupportedLwt,
            fib::NO_NEIGH => Self::NoNeighbour,
            fib::FRAG_NEEDED => Self::FragNeeded,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
            Self::NotForwarded => "not_fwded",
            Self::ForwardingDisabled => "fwd_disabled",
            Self::UnsupportedLwt => "unsupp_lwt",
            Self::NoNeighbour => "no_neigh",
            Self::FragNeeded => "frag_needed",
        }
    }

    /// Verdicts that come with an egress interface.
    pub(crate) fn has_dev(self) -> bool {
        matches!(self, Self::Success | Self::NoNeighbour | Self::FragNeeded)
    }
}

/// The annotation of one event; the field names are the JSON keys (documented in the README).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The matched prefix.
    pub route_dst: Option<Prefix>,
    pub route_type: Option<RouteKind>,
    pub route_dev: Option<Dev>,
    pub route_scope: Option<&'static str>,
    pub route_gw: Option<IpAddr>,
    pub route_table: Option<u32>,
    /// The next hop whose neighbour entry was looked up (the gateway, else the destination).
    pub neigh_ip: Option<IpAddr>,
    pub neigh_state: Option<NeighState>,
    pub neigh_lladdr: Option<Mac>,
    pub fib: Option<FibVerdict>,
    pub fib_dev: Option<Dev>,
    /// The checks that fired, in words; [`Annotation::note`] keeps `note_codes` in step.
    pub notes: Vec<String>,
    pub(crate) note_codes: Vec<NoteCode>,
}

crate::codes::stable_codes! {
    /// What kind of check an annotation note is (JSON `note_codes`), stable where its words
    /// may change.
    NoteCode {
        RuleRefuses => "rule_refuses",
        RouteRefuses => "route_refuses",
        NoRoute => "no_route",
        /// The next hop's neighbour entry is FAILED (or otherwise unusable).
        NeighBroken => "neigh_broken",
        /// The kernel is resolving the next hop and has no answer yet.
        NeighNoAnswerYet => "neigh_no_answer_yet",
        /// The frame left on another device than the route's.
        WrongDevice => "wrong_device",
        DstMacMismatch => "dst_mac_mismatch",
        /// The kernel's FIB verdict at packet time differs from the mirror's now: the neighbour changed.
        FibNeighChanged => "fib_neigh_changed",
        /// The kernel's FIB verdict differs from the mirror's route.
        FibDiffers => "fib_differs",
        ProxyArpNoRoute => "proxy_arp_no_route",
        ProxyArpRoutedBack => "proxy_arp_routed_back",
        ProxyArpOff => "proxy_arp_off",
        ForwardingOff => "forwarding_off",
        ArpReplyMac => "arp_reply_mac",
    }
}

impl Annotation {
    /// Adds a note: its code and its words.
    pub(crate) fn note(&mut self, code: NoteCode, text: String) {
        self.notes.push(text);
        self.note_codes.push(code);
    }
}

/// A flow's annotation, shared by its packets while the mirror stays the same: typed, and
/// rendered once for each format a writer asks for (` | route …` for text lines and pcapng
/// comments, `,"route_dst":…` fields for merging into a JSON object).
#[derive(Default)]
pub struct FlowAnnotation {
    pub annotation: Annotation,
    /// Unique to this annotation: the packets that share it are one flow's, with an
    /// annotation that has not changed (the pcapng writer comments the first of them only).
    pub id: u64,
    text: OnceCell<Vec<u8>>,
    json: OnceCell<Vec<u8>>,
    /// The buffers of the renderings this one replaced, for the next renderings: a flow
    /// replaced by a flow costs no allocation.
    spare: [Cell<Vec<u8>>; 2],
}

/// The next [`FlowAnnotation::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for FlowAnnotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowAnnotation").field("annotation", &self.annotation).field("id", &self.id).finish_non_exhaustive()
    }
}

/// The same annotation under the same id (no spare buffers).
/// Two are equal when they say the same (whatever their ids).
impl PartialEq for FlowAnnotation {
    fn eq(&self, other: &Self) -> bool {
        self.annotation == other.annotation
    }
}

impl Eq for FlowAnnotation {}

impl FlowAnnotation {
    pub fn new(annotation: Annotation) -> Self {
        let mut flow = Self::default();
        flow.renew(annotation);
        flow
    }

    /// Holds `annotation` from now on, under a new id, keeping the old renderings' buffers.
    pub fn renew(&mut self, annotation: Annotation) {
        self.annotation = annotation;
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        for (cell, spare) in [&mut self.text, &mut self.json].into_iter().zip(&self.spare) {
            if let Some(mut buf) = cell.take() {
                buf.clear();
                spare.set(buf);
            }
        }
    }

    /// The form for `format`, rendered the first time it is asked for.
    pub fn bytes(&self, format: Format) -> &[u8] {
        match format {
            Format::Text => self.text.get_or_init(|| {
                let mut out = self.spare[0].take();
                self.annotation.put_text(&mut out);
                out
            }),
            Format::Json => self.json.get_or_init(|| {
                let mut out = self.spare[1].take();
                // Writing into a Vec fails only if serde_json fails to escape a string: keep
                // the fields written up to there rather than lose the line.
                let _ = self.annotation.write_json_fields(&mut out);
                out
            }),
        }
    }
}
