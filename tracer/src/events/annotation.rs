//! The route/neighbour annotation a packet or drop record carries: its typed form
//! ([`Annotation`], made by `crate::annotate` from the mirror), how it reads in text and JSON
//! ([`render`]), and both forms rendered once for the packets of a flow ([`Rendered`]).

mod render;

use std::{
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

/// An interface as the annotation names it: by name, or `if<N>` when the mirror does not
/// know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dev<'m> {
    pub index: u32,
    pub name: Option<&'m str>,
}

impl<'m> Dev<'m> {
    pub(crate) fn new(mirror: &'m Mirror, index: u32) -> Self {
        Self { index, name: mirror.links.name(index) }
    }
}

impl fmt::Display for Dev<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(n) => f.write_str(n),
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
pub struct Annotation<'m> {
    /// The matched prefix.
    pub route_dst: Option<Prefix>,
    pub route_type: Option<RouteKind>,
    pub route_dev: Option<Dev<'m>>,
    pub route_scope: Option<&'static str>,
    pub route_gw: Option<IpAddr>,
    pub route_table: Option<u32>,
    /// The next hop whose neighbour entry was looked up (the gateway, else the destination).
    pub neigh_ip: Option<IpAddr>,
    pub neigh_state: Option<NeighState>,
    pub neigh_lladdr: Option<Mac>,
    pub fib: Option<FibVerdict>,
    pub fib_dev: Option<Dev<'m>>,
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

impl Annotation<'_> {
    /// Adds a note: its code and its words.
    pub(crate) fn note(&mut self, code: NoteCode, text: String) {
        self.notes.push(text);
        self.note_codes.push(code);
    }
}

/// An annotation in both output forms: ` | route …` for text lines and pcapng comments, and
/// `,"route_dst":…` fields for merging into a JSON object.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub text: Vec<u8>,
    pub json: Vec<u8>,
    /// Unique to this rendering: the packets that share it are one flow's, with an annotation
    /// that has not changed (the pcapng writer comments the first of them only).
    pub id: u64,
}

/// The next [`Rendered::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Two renderings are equal when they say the same (whatever their ids).
impl PartialEq for Rendered {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.json == other.json
    }
}

impl Eq for Rendered {}

impl Rendered {
    pub fn of(a: &Annotation<'_>) -> Self {
        let mut r = Self::default();
        r.fill(a);
        r
    }

    /// Renders `a` here, in the buffers of what was here before.
    pub fn fill(&mut self, a: &Annotation<'_>) {
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.text.clear();
        a.put_text(&mut self.text);
        self.json.clear();
        // Writing into a Vec fails only if serde_json fails to escape a string: keep the
        // fields written up to there rather than lose the line.
        let _ = a.write_json_fields(&mut self.json);
    }

    /// The form for `format`.
    pub fn bytes(&self, format: Format) -> &[u8] {
        match format {
            Format::Text => &self.text,
            Format::Json => &self.json,
        }
    }
}
