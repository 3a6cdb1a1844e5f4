//! The framing of every ring-buffer record: a [`RecordHeader`], then typed sections, each a
//! [`SectionHeader`] and a body (the bodies are in [`crate::sections`]), and the fixed part of
//! each kind of record as the eBPF programs build it.

use crate::sections::{ArpSection, DropSection, FrameSection, JourneySection, NeighSection, TcSection};

/// Version of the record framing ([`RecordHeader`], [`SectionHeader`]); each section has its
/// own version besides.
pub const RECORD_VERSION: u8 = 4;

/// `RecordHeader::kind` values: what the record is about. The sections say what it carries.
pub mod kind {
    /// A frame seen by the TC programs: sections TC and FRAME.
    pub const PACKET: u8 = 1;
    /// A packet the kernel dropped (skb:kfree_skb): sections DROP and FRAME.
    pub const DROP: u8 = 2;
    /// An ARP packet the host stack received or sent: section ARP.
    pub const ARP: u8 = 3;
    /// A neighbour entry that changed or held a packet: section NEIGH.
    pub const NEIGH: u8 = 4;
    /// A hop of a followed packet (`--journey`): section JOURNEY, and FRAME where the hop
    /// starts the journey or queues the packet (its headers after NAT).
    pub const JOURNEY: u8 = 5;
}

/// `SectionHeader::kind` values, each with its body type and version.
pub mod section {
    /// [`crate::TcSection`].
    pub const TC: u8 = 1;
    /// [`crate::DropSection`].
    pub const DROP: u8 = 2;
    /// [`crate::ArpSection`].
    pub const ARP: u8 = 3;
    /// [`crate::NeighSection`].
    pub const NEIGH: u8 = 4;
    /// [`crate::FrameSection`] followed by `caplen` bytes of the frame.
    pub const FRAME: u8 = 5;
    /// [`crate::JourneySection`].
    pub const JOURNEY: u8 = 6;

    pub const TC_VERSION: u8 = 1;
    pub const DROP_VERSION: u8 = 3;
    pub const ARP_VERSION: u8 = 1;
    pub const NEIGH_VERSION: u8 = 1;
    pub const FRAME_VERSION: u8 = 1;
    pub const JOURNEY_VERSION: u8 = 1;
}

/// Start of every ring-buffer record; `len` covers the header and all sections.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`kind`].
    pub kind: u8,
    /// [`RECORD_VERSION`] of the writer.
    pub version: u8,
    /// CPU that produced the record.
    pub cpu: u16,
    /// Size of the whole record in bytes.
    pub len: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the record was made.
    pub ts_ns: u64,
}

/// Start of every section; `len` covers this header, the body and any trailing bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionHeader {
    /// One of [`section`].
    pub kind: u8,
    /// The section's own version (`section::*_VERSION`).
    pub version: u8,
    pub _pad: u16,
    pub len: u32,
}

impl SectionHeader {
    /// The header of a section whose body is `body` bytes long.
    #[inline(always)]
    pub const fn new(kind: u8, version: u8, body: usize) -> Self {
        Self { kind, version, _pad: 0, len: (core::mem::size_of::<Self>() + body) as u32 }
    }
}

/// The fixed part of a TC record; the frame's bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcRecord {
    pub header: RecordHeader,
    pub tc_hdr: SectionHeader,
    pub tc: TcSection,
    pub frame_hdr: SectionHeader,
    pub frame: FrameSection,
}

/// The fixed part of a drop record; the frame's bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropRecord {
    pub header: RecordHeader,
    pub drop_hdr: SectionHeader,
    pub drop: DropSection,
    pub frame_hdr: SectionHeader,
    pub frame: FrameSection,
}

/// An ARP record: one section.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpRecord {
    pub header: RecordHeader,
    pub arp_hdr: SectionHeader,
    pub arp: ArpSection,
}

/// A neighbour record: one section.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighRecord {
    pub header: RecordHeader,
    pub neigh_hdr: SectionHeader,
    pub neigh: NeighSection,
}

/// The fixed part of a journey hop's record; with a frame, its FRAME section follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JourneyRecord {
    pub header: RecordHeader,
    pub journey_hdr: SectionHeader,
    pub journey: JourneySection,
}

/// A journey hop's record with its frame's section (the frame's bytes follow).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JourneyFrameRecord {
    pub hop: JourneyRecord,
    pub frame_hdr: SectionHeader,
    pub frame: FrameSection,
}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == 16);
const _: () = assert!(core::mem::size_of::<SectionHeader>() == 8);
const _: () = assert!(core::mem::size_of::<TcRecord>() == 16 + 8 + 24 + 8 + 8);
const _: () = assert!(core::mem::size_of::<DropRecord>() == 16 + 8 + 72 + 8 + 8);
const _: () = assert!(core::mem::size_of::<JourneyFrameRecord>() == 16 + 8 + 56 + 8 + 8);
const _: () = assert!(core::mem::size_of::<DropRecord>() <= 128 && core::mem::size_of::<TcRecord>() <= 128);
