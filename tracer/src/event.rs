//! Decoding ring-buffer records into typed events.
//!
//! Records are read with `read_unaligned` (the ring gives 8-byte alignment, but nothing here
//! relies on it). A record whose kind or version is unknown is skipped and counted, never guessed.

use tracer_common::{ArpEvent, DropEvent, EVENT_VERSION, EventHeader, NeighEvent, PacketEvent, kind};

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Packet(PacketEvent),
    Drop(DropEvent),
    Arp(ArpEvent),
    Neigh(NeighEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record kind {kind} of {len} bytes is shorter than that kind")]
    Truncated { kind: u8, len: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    #[error("record version {0} is not {EVENT_VERSION}")]
    Version(u8),
}

/// Reads a `T` from the start of `buf`, or `None` when `buf` is too short.
fn read<T: aya::Pod>(buf: &[u8]) -> Option<T> {
    (buf.len() >= size_of::<T>())
        // SAFETY: `T: Pod` is valid for any bytes, and `buf` holds at least `size_of::<T>()`.
        .then(|| unsafe { buf.as_ptr().cast::<T>().read_unaligned() })
}

pub fn decode(buf: &[u8]) -> Result<Event, DecodeError> {
    let header: EventHeader = read(buf).ok_or(DecodeError::Short(buf.len()))?;
    if header.version != EVENT_VERSION {
        return Err(DecodeError::Version(header.version));
    }
    let truncated = DecodeError::Truncated { kind: header.kind, len: buf.len() };
    match header.kind {
        kind::PACKET => read(buf).map(Event::Packet).ok_or(truncated),
        kind::DROP => read(buf).map(Event::Drop).ok_or(truncated),
        kind::ARP => read(buf).map(Event::Arp).ok_or(truncated),
        kind::NEIGH => read(buf).map(Event::Neigh).ok_or(truncated),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tracer_common::Packet;

    pub(crate) fn bytes_of<T: aya::Pod>(v: &T) -> Vec<u8> {
        // SAFETY: `T: Pod` has no padding with undefined contents (explicit padding fields).
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    pub(crate) fn packet_event() -> PacketEvent {
        PacketEvent {
            header: EventHeader {
                kind: kind::PACKET,
                version: EVENT_VERSION,
                len: size_of::<PacketEvent>() as u16,
                cpu: 1,
                ts_ns: 123,
            },
            ifindex: 7,
            len: 98,
            packet: Packet { ethertype: 0x0800, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn packet_round_trips() {
        let ev = packet_event();
        assert_eq!(decode(&bytes_of(&ev)), Ok(Event::Packet(ev)));
    }

    #[test]
    fn decodes_from_an_unaligned_buffer() {
        let ev = packet_event();
        let mut buf = vec![0u8];
        buf.extend(bytes_of(&ev));
        assert_eq!(decode(&buf[1..]), Ok(Event::Packet(ev)));
    }

    #[test]
    fn drop_round_trips() {
        let ev = DropEvent {
            header: EventHeader { kind: kind::DROP, version: EVENT_VERSION, len: size_of::<DropEvent>() as u16, cpu: 0, ts_ns: 5 },
            reason: 58,
            location: 0xffff_ffff_8100_0000,
            ifindex: 4,
            ..Default::default()
        };
        let bytes = bytes_of(&ev);
        assert_eq!(decode(&bytes), Ok(Event::Drop(ev)));
        assert!(matches!(decode(&bytes[..100]), Err(DecodeError::Truncated { kind: kind::DROP, .. })));
    }

    #[test]
    fn arp_and_neigh_round_trip() {
        let header = |kind, len| EventHeader { kind, version: EVENT_VERSION, len, cpu: 0, ts_ns: 9 };
        let arp = ArpEvent { header: header(kind::ARP, 48), ifindex: 3, op: 2, ..Default::default() };
        assert_eq!(decode(&bytes_of(&arp)), Ok(Event::Arp(arp)));
        let neigh = NeighEvent { header: header(kind::NEIGH, 64), new_state: 0x20, ..Default::default() };
        let bytes = bytes_of(&neigh);
        assert_eq!(decode(&bytes), Ok(Event::Neigh(neigh)));
        assert!(matches!(decode(&bytes[..40]), Err(DecodeError::Truncated { kind: kind::NEIGH, .. })));
    }

    #[test]
    fn short_unknown_and_foreign_records_are_errors() {
        let ev = packet_event();
        let bytes = bytes_of(&ev);
        assert_eq!(decode(&bytes[..8]), Err(DecodeError::Short(8)));
        assert!(matches!(decode(&bytes[..40]), Err(DecodeError::Truncated { kind: kind::PACKET, .. })));
        let mut unknown = bytes.clone();
        unknown[0] = 200;
        assert_eq!(decode(&unknown), Err(DecodeError::UnknownKind(200)));
        let mut foreign = bytes;
        foreign[1] = EVENT_VERSION + 1;
        assert_eq!(decode(&foreign), Err(DecodeError::Version(EVENT_VERSION + 1)));
    }
}
