//! Decoding ring-buffer records (a header, then typed sections) into typed events: the
//! record's frame and the sections are found here, each kind's event is built from them by
//! its own file (`super::build`).
//!
//! Every length is checked: the record's against the bytes the ring handed over, each
//! section's against the record. Sections of a kind or version this build does not know are
//! skipped and counted; a record without the sections its kind needs is an error, never a
//! guess. Records are read with `read_unaligned` (nothing here relies on the ring's alignment).
//!
//! TC and drop records carry the frame's first bytes; the frame is parsed here, by the same
//! parser the eBPF programs use (`tracer_ebpf::parse`), and handed on beside the event for the
//! writers that want the bytes (pcapng).

use tracer_common::{
    ArpSection, DropSection, FrameSection, JourneySection, NeighSection, Packet, RECORD_VERSION, RecordHeader, SectionHeader,
    TcSection, frame_origin, proto::ETH_HLEN, section,
};
use tracer_ebpf::parse::{self, Frame};

use super::{Event, Stamp};

/// The frame's captured bytes, as the record carried them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Captured<'a> {
    pub bytes: &'a [u8],
    /// One of `tracer_common::frame_origin`.
    pub origin: u8,
}

/// A decoded record and the bytes of its frame (empty for ARP and neighbour records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub event: Event,
    pub frame: Captured<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record says {said} bytes but {got} were read")]
    Length { said: usize, got: usize },
    #[error("record version {0} is not {RECORD_VERSION}")]
    Version(u8),
    #[error("section of {len} bytes at offset {at} does not fit the record")]
    Section { at: usize, len: usize },
    #[error("record kind {kind} has no section {section}")]
    Missing { kind: u8, section: u8 },
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
}

/// Reads a `T` from the start of `buf`, or `None` when `buf` is too short.
fn read<T: aya::Pod>(buf: &[u8]) -> Option<T> {
    (buf.len() >= size_of::<T>())
        // SAFETY: `T: Pod` is valid for any bytes, and `buf` holds at least `size_of::<T>()`.
        .then(|| unsafe { buf.as_ptr().cast::<T>().read_unaligned() })
}

/// The sections of one record, as found.
#[derive(Default)]
pub(crate) struct Sections<'a> {
    pub tc: Option<TcSection>,
    pub drop: Option<DropSection>,
    pub arp: Option<ArpSection>,
    pub neigh: Option<NeighSection>,
    pub journey: Option<JourneySection>,
    pub frame: Option<Captured<'a>>,
    unknown: u64,
}

impl<'a> Sections<'a> {
    /// The frame's bytes (none when the record carried none).
    pub(crate) fn frame(&self) -> Captured<'a> {
        self.frame.unwrap_or_default()
    }
}

impl<'a> Sections<'a> {
    fn take(&mut self, hdr: SectionHeader, body: &'a [u8]) {
        use section::*;
        let known = match (hdr.kind, hdr.version) {
            (TC, TC_VERSION) => read(body).map(|s| self.tc = Some(s)),
            (DROP, DROP_VERSION) => read(body).map(|s| self.drop = Some(s)),
            (ARP, ARP_VERSION) => read(body).map(|s| self.arp = Some(s)),
            (NEIGH, NEIGH_VERSION) => read(body).map(|s| self.neigh = Some(s)),
            (JOURNEY, JOURNEY_VERSION) => read(body).map(|s| self.journey = Some(s)),
            (FRAME, FRAME_VERSION) => read::<FrameSection>(body).and_then(|f| {
                let bytes = body.get(size_of::<FrameSection>()..)?.get(..f.caplen as usize)?;
                self.frame = Some(Captured { bytes, origin: f.origin });
                Some(())
            }),
            _ => None,
        };
        if known.is_none() {
            self.unknown += 1;
        }
    }
}

/// Decodes records, counting the sections it skipped.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// Sections of an unknown kind or version (or too short for their kind), skipped.
    pub unknown_sections: u64,
}

impl Decoder {
    pub(crate) fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        let header: RecordHeader = read(buf).ok_or(DecodeError::Short(buf.len()))?;
        if header.version != RECORD_VERSION {
            return Err(DecodeError::Version(header.version));
        }
        let said = header.len as usize;
        let record = buf.get(..said).filter(|_| said >= size_of::<RecordHeader>());
        let record = record.ok_or(DecodeError::Length { said, got: buf.len() })?;
        let sections = split(record)?;
        self.unknown_sections += sections.unknown;
        let stamp = Stamp { ts_ns: header.ts_ns, cpu: header.cpu };
        super::build(header.kind, stamp, &sections)
    }
}

/// Walks the sections after the record header.
fn split(record: &[u8]) -> Result<Sections<'_>, DecodeError> {
    let mut found = Sections::default();
    let mut at = size_of::<RecordHeader>();
    while at < record.len() {
        let rest = &record[at..];
        let hdr: SectionHeader = read(rest).ok_or(DecodeError::Section { at, len: rest.len() })?;
        let len = hdr.len as usize;
        if len < size_of::<SectionHeader>() || len > rest.len() {
            return Err(DecodeError::Section { at, len });
        }
        found.take(hdr, &rest[size_of::<SectionHeader>()..len]);
        at += len;
    }
    Ok(found)
}

/// Parses captured bytes. A frame captured from its network header (`protocol` is then its
/// ethertype) is read behind a made-up Ethernet header that carries only the ethertype.
pub(crate) fn parse_frame(frame: Captured<'_>, protocol: u16, accel_vlan: Option<u16>) -> Packet {
    let mut p = Packet::default();
    let synthetic = (frame.origin == frame_origin::NETWORK).then_some(protocol);
    parse::parse(&Bytes { bytes: frame.bytes, synthetic }, &mut p, accel_vlan);
    p
}

/// The Ethernet header put in front of a frame captured from its network header: zero MACs
/// and the ethertype (the parser reads it, pcapng shows it).
pub(crate) fn made_up_ethernet(ethertype: u16) -> [u8; ETH_HLEN] {
    let mut eth = [0u8; ETH_HLEN];
    eth[12..14].copy_from_slice(&ethertype.to_be_bytes());
    eth
}

/// Captured bytes as the parser reads them.
struct Bytes<'a> {
    bytes: &'a [u8],
    /// The ethertype of a made-up Ethernet header in front of `bytes`.
    synthetic: Option<u16>,
}

impl Frame for Bytes<'_> {
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let offset = match self.synthetic {
            Some(ethertype) if offset == 0 => {
                return made_up_ethernet(ethertype).get(..N)?.try_into().ok();
            }
            Some(_) => offset.checked_sub(ETH_HLEN)?,
            None => offset,
        };
        self.bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tracer_common::{ArpRecord, DropRecord, NeighRecord, TcRecord, dir, kind};

    pub(crate) fn bytes_of<T: aya::Pod>(v: &T) -> Vec<u8> {
        // SAFETY: `T: Pod` has no padding with undefined contents (explicit padding fields).
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn record_header(kind: u8, len: usize) -> RecordHeader {
        RecordHeader { kind, version: RECORD_VERSION, cpu: 1, len: len as u32, ts_ns: 123 }
    }

    fn frame_hdr(caplen: usize) -> SectionHeader {
        SectionHeader::new(section::FRAME, section::FRAME_VERSION, size_of::<FrameSection>() + caplen)
    }

    /// An Ethernet/IPv4/UDP frame of 42 bytes.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 244, 1, 5]);
        f[30..34].copy_from_slice(&[10, 244, 1, 6]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&53u16.to_be_bytes());
        f[38..40].copy_from_slice(&8u16.to_be_bytes());
        f
    }

    pub(crate) fn tc_record(frame: &[u8]) -> Vec<u8> {
        let fixed = size_of::<TcRecord>();
        let rec = TcRecord {
            header: record_header(kind::PACKET, fixed + frame.len()),
            tc_hdr: SectionHeader::new(section::TC, section::TC_VERSION, size_of::<TcSection>()),
            tc: TcSection { ifindex: 7, len: 98, dir: dir::EGRESS, ..Default::default() },
            frame_hdr: frame_hdr(frame.len()),
            frame: FrameSection { caplen: frame.len() as u32, ..Default::default() },
        };
        let mut bytes = bytes_of(&rec);
        bytes.extend_from_slice(frame);
        bytes
    }

    #[test]
    fn packet_record_decodes_and_its_frame_is_parsed() {
        let frame = udp_frame();
        let bytes = tc_record(&frame);
        let d = Decoder::default().decode(&bytes).unwrap();
        let Event::Packet(ev) = d.event else { panic!("{d:?}") };
        assert_eq!((ev.ifindex, ev.len, ev.dir, ev.header.ts_ns, ev.header.cpu), (7, 98, dir::EGRESS, 123, 1));
        assert_eq!(d.frame.bytes, &frame[..]);
        assert_eq!((ev.packet.sport, ev.packet.dport, ev.packet.ip_proto), (1234, 53, 17));
        assert_eq!(&ev.packet.dst_ip[..4], &[10, 244, 1, 6]);
    }

    #[test]
    fn decodes_from_an_unaligned_buffer_and_ignores_bytes_past_the_record() {
        let bytes = tc_record(&udp_frame());
        let mut buf = vec![0u8];
        buf.extend(&bytes);
        buf.extend([0xaa; 5]);
        let d = Decoder::default().decode(&buf[1..]).unwrap();
        assert_eq!(d.frame.bytes, &udp_frame()[..]);
    }

    #[test]
    fn drop_without_mac_header_is_parsed_behind_a_made_up_one() {
        let frame = udp_frame();
        let l3 = &frame[ETH_HLEN..];
        let fixed = size_of::<DropRecord>();
        let rec = DropRecord {
            header: record_header(kind::DROP, fixed + l3.len()),
            drop_hdr: SectionHeader::new(section::DROP, section::DROP_VERSION, size_of::<DropSection>()),
            drop: DropSection { reason: 58, ifindex: 4, protocol: 0x0800, ..Default::default() },
            frame_hdr: frame_hdr(l3.len()),
            frame: FrameSection { caplen: l3.len() as u32, origin: frame_origin::NETWORK, _pad: [0; 3] },
        };
        let mut bytes = bytes_of(&rec);
        bytes.extend_from_slice(l3);
        let d = Decoder::default().decode(&bytes).unwrap();
        let Event::Drop(ev) = d.event else { panic!("{d:?}") };
        assert_eq!((ev.reason, ev.ifindex), (58, 4));
        assert_eq!(ev.packet.ethertype, 0x0800);
        assert_eq!((ev.packet.src_mac, ev.packet.dport), ([0; 6], 53));
    }

    #[test]
    fn arp_and_neigh_round_trip() {
        let arp = ArpRecord {
            header: record_header(kind::ARP, size_of::<ArpRecord>()),
            arp_hdr: SectionHeader::new(section::ARP, section::ARP_VERSION, size_of::<ArpSection>()),
            arp: ArpSection { ifindex: 3, op: 2, ..Default::default() },
        };
        let bytes = bytes_of(&arp);
        let d = Decoder::default().decode(&bytes).unwrap();
        assert!(matches!(d.event, Event::Arp(ev) if ev.ifindex == 3 && ev.op == 2));
        let neigh = NeighRecord {
            header: record_header(kind::NEIGH, size_of::<NeighRecord>()),
            neigh_hdr: SectionHeader::new(section::NEIGH, section::NEIGH_VERSION, size_of::<NeighSection>()),
            neigh: NeighSection { new_state: 0x20, ..Default::default() },
        };
        let bytes = bytes_of(&neigh);
        let d = Decoder::default().decode(&bytes).unwrap();
        assert!(matches!(d.event, Event::Neigh(ev) if ev.new_state == 0x20));
    }

    #[test]
    fn unknown_sections_are_skipped_and_counted() {
        let mut bytes = tc_record(&udp_frame());
        // A section of a kind from a newer writer, appended.
        bytes.extend(bytes_of(&SectionHeader::new(200, 1, 4)));
        bytes.extend([1, 2, 3, 4]);
        // And the TC section at a version this build does not know, in front.
        let len = bytes.len() as u32;
        bytes[4..8].copy_from_slice(&len.to_ne_bytes());
        let mut decoder = Decoder::default();
        assert!(decoder.decode(&bytes).is_ok());
        assert_eq!(decoder.unknown_sections, 1);
        bytes[size_of::<RecordHeader>() + 1] = section::TC_VERSION + 1;
        assert_eq!(decoder.decode(&bytes), Err(DecodeError::Missing { kind: kind::PACKET, section: section::TC }));
        assert_eq!(decoder.unknown_sections, 3);
    }

    #[test]
    fn bad_lengths_and_foreign_records_are_errors() {
        let bytes = tc_record(&udp_frame());
        let mut d = Decoder::default();
        assert_eq!(d.decode(&bytes[..8]), Err(DecodeError::Short(8)));
        assert!(matches!(d.decode(&bytes[..40]), Err(DecodeError::Length { .. })));
        let mut section_too_long = bytes.clone();
        let at = size_of::<RecordHeader>();
        section_too_long[at + 4..at + 8].copy_from_slice(&5000u32.to_ne_bytes());
        assert!(matches!(d.decode(&section_too_long), Err(DecodeError::Section { .. })));
        let mut section_too_short = bytes.clone();
        section_too_short[at + 4..at + 8].copy_from_slice(&3u32.to_ne_bytes());
        assert!(matches!(d.decode(&section_too_short), Err(DecodeError::Section { .. })));
        let mut unknown = bytes.clone();
        unknown[0] = 200;
        assert_eq!(d.decode(&unknown), Err(DecodeError::UnknownKind(200)));
        let mut foreign = bytes;
        foreign[1] = RECORD_VERSION + 1;
        assert_eq!(d.decode(&foreign), Err(DecodeError::Version(RECORD_VERSION + 1)));
    }

    #[test]
    fn a_frame_shorter_than_its_caplen_is_not_read_past_the_record() {
        let mut bytes = tc_record(&udp_frame());
        // caplen claims more than the section holds.
        let at = size_of::<RecordHeader>() + size_of::<SectionHeader>() + size_of::<TcSection>() + 8;
        bytes[at..at + 4].copy_from_slice(&4000u32.to_ne_bytes());
        let mut d = Decoder::default();
        let got = d.decode(&bytes).unwrap();
        assert_eq!(got.frame.bytes, &[] as &[u8]);
        assert_eq!(d.unknown_sections, 1);
    }
}
