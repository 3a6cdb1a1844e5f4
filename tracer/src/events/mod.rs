//! Events, one file per kind. Each kind's file holds its decode (the record's sections in, a
//! typed event out), its typed record (the event with what the collector knows about it: the
//! [`Place`], and the kind's own analysis) and how it reads in every format ([`Render`]).
//! The head every kind shares — time, interface, pod — is written once, by [`head`], for
//! every kind and every format ([`put_line`]).
//!
//! | kind | file | JSON `kind` |
//! |---|---|---|
//! | a frame TC saw | [`packet`] | `packet` |
//! | a packet the kernel dropped | [`drop`] | `drop` |
//! | an ARP packet of the host stack | [`arp`] | `arp` |
//! | a neighbour entry's change | [`neigh`] | `neigh` |
//! | a packet's way through the node (`--journey`) | [`journey`] | `journey` |
//!
//! Kinds are registered here and nowhere else: a variant of [`Event`] and of [`Record`], a
//! line in [`build`] and one in [`with_kind!`].

pub(crate) mod annotation;
pub(crate) mod arp;
pub(crate) mod decode;
pub(crate) mod drop;
pub(crate) mod frame;
mod head;
pub(crate) mod journey;
pub(crate) mod neigh;
pub(crate) mod packet;

use std::{borrow::Cow, io, sync::Arc};

use tracer_common::kind;

use self::decode::Sections;
pub(crate) use self::{
    arp::{ArpEvent, ArpRecord},
    decode::{Captured, DecodeError, Decoded, Decoder},
    drop::{DropEvent, DropRecord, NamedDrop},
    journey::{HopEvent, JourneyRecord},
    neigh::{NeighEvent, NeighRecord},
    packet::{PacketEvent, PacketRecord},
};
use crate::{output::Format, pods::Pod};

/// When and where a record was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// CLOCK_MONOTONIC, ns.
    pub ts_ns: u64,
    pub cpu: u16,
}

/// An event reads as its kernel section (`ev.reason`, `ev.ifindex`, …).
macro_rules! reads_as_section {
    ($event:ty, $field:ident, $section:ty) => {
        impl std::ops::Deref for $event {
            type Target = $section;
            fn deref(&self) -> &$section {
                &self.$field
            }
        }

        impl std::ops::DerefMut for $event {
            fn deref_mut(&mut self) -> &mut $section {
                &mut self.$field
            }
        }
    };
}
use reads_as_section;

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Packet(PacketEvent),
    Drop(DropEvent),
    Arp(ArpEvent),
    Neigh(NeighEvent),
    Hop(HopEvent),
}

/// The event of a record of `kind`, from its sections (inlined into the decoder: the event
/// is built where it is returned, not copied on the way).
#[inline(always)]
fn build<'a>(kind: u8, stamp: Stamp, s: &Sections<'a>) -> Result<Decoded<'a>, DecodeError> {
    let event = match kind {
        kind::PACKET => Event::Packet(packet::decode(stamp, s)?),
        kind::DROP => Event::Drop(drop::decode(stamp, s)?),
        kind::ARP => Event::Arp(arp::decode(stamp, s)?),
        kind::NEIGH => Event::Neigh(neigh::decode(stamp, s)?),
        kind::JOURNEY => Event::Hop(journey::decode(stamp, s)?),
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Decoded { event, frame: s.frame() })
}

/// Where and when, for every kind.
#[derive(Debug, Clone)]
pub(crate) struct Place<'a> {
    /// The interface's name (`if<N>` when the mirror does not know it; `-` for a drop
    /// without a device).
    pub iface: Cow<'a, str>,
    /// The interface's index (0 when none).
    pub ifindex: u32,
    /// The kernel's time of the event (CLOCK_MONOTONIC, ns).
    pub ts_ns: u64,
    /// Wall-clock time, ns since the Unix epoch.
    pub wall_ns: i128,
    /// The pod behind the interface (drops: else the pod of the packet's address).
    pub pod: Option<Arc<Pod>>,
}

pub(crate) enum Record<'a> {
    Packet(PacketRecord<'a>),
    /// Boxed: a drop carries its names and cause, more than twice a packet's record, and every
    /// packet record would be moved at that size.
    Drop(Box<DropRecord<'a>>),
    Arp(ArpRecord<'a>),
    Neigh(NeighRecord<'a>),
    /// Boxed: it owns its hops and its entry frame.
    Journey(Box<JourneyRecord>),
}

/// `$body` with `$r` bound to the record of whichever kind `$rec` holds (each arm its own
/// type: the kinds' code is called directly, not through a vtable).
macro_rules! with_kind {
    ($rec:expr, $r:ident => $body:expr) => {
        match $rec {
            Record::Packet($r) => $body,
            Record::Drop($r) => $body,
            Record::Arp($r) => $body,
            Record::Neigh($r) => $body,
            Record::Journey($r) => $body,
        }
    };
}

impl Record<'_> {
    pub(crate) fn place(&self) -> &Place<'_> {
        with_kind!(self, r => r.place())
    }

    /// Appends the record's line in `format` to `buf`.
    pub(crate) fn put_line(&self, format: Format, buf: &mut Vec<u8>) -> io::Result<()> {
        with_kind!(self, r => put_line(format, buf, r))
    }

    /// The pcapng comment: what the record says beside its frame.
    pub(crate) fn put_comment(&self, out: &mut Vec<u8>) {
        with_kind!(self, r => r.put_comment(out))
    }

    /// The frame a pcapng file shows for the record; `None`: the record's words are its frame.
    pub(crate) fn capture(&self) -> Option<Capture<'_>> {
        with_kind!(self, r => r.capture())
    }
}

/// The frame of a record that carries one, as a capture file shows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capture<'a> {
    pub frame: Captured<'a>,
    /// The ethertype of a frame captured from its network header (a made-up Ethernet header
    /// goes in front).
    pub protocol: u16,
    /// Bytes on the wire.
    pub len: u32,
    /// One of `tracer_common::dir`, when the kind has a direction.
    pub dir: Option<u8>,
    /// Records that say the same share an id (a flow's annotation): a capture file comments
    /// the first of them only. `None`: every record is commented.
    pub comment_once: Option<u64>,
}

/// How a kind reads: its words after the common head, in each format.
pub(crate) trait Render {
    /// The JSON `kind`.
    const KIND: &'static str;

    fn place(&self) -> &Place<'_>;

    /// The text after the head (`HH:MM:SS.uuuuuu iface [ns/pod]`), without the newline.
    fn put_text(&self, out: &mut Vec<u8>);

    /// The JSON fields after the head's, each `,"key":value`.
    fn put_json(&self, out: &mut Vec<u8>) -> io::Result<()>;

    /// The pcapng comment. By default the text line without its time (the block has it).
    fn put_comment(&self, out: &mut Vec<u8>) {
        head::put_text_place(out, self.place());
        self.put_text(out);
    }

    /// The frame a capture file shows; `None` (the default): the comment is the frame.
    fn capture(&self) -> Option<Capture<'_>> {
        None
    }
}

/// A boxed record reads as the record.
impl<T: Render> Render for Box<T> {
    const KIND: &'static str = T::KIND;

    fn place(&self) -> &Place<'_> {
        (**self).place()
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        (**self).put_text(out);
    }

    fn put_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        (**self).put_json(out)
    }

    fn put_comment(&self, out: &mut Vec<u8>) {
        (**self).put_comment(out);
    }

    fn capture(&self) -> Option<Capture<'_>> {
        (**self).capture()
    }
}

/// One line: the common head, the kind's words, the end of the line.
pub(crate) fn put_line<R: Render>(format: Format, buf: &mut Vec<u8>, r: &R) -> io::Result<()> {
    // Room for an annotated line, so that a line grows the buffer at most once.
    buf.reserve(640);
    let place = r.place();
    match format {
        Format::Text => {
            head::put_text(buf, place);
            r.put_text(buf);
            buf.push(b'\n');
        }
        Format::Json => {
            head::put_json(buf, R::KIND, place)?;
            r.put_json(buf)?;
            buf.extend_from_slice(b"}\n");
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An event's place on `calia` (no pod), at a fixed wall-clock time.
    pub(crate) fn calia(ifindex: u32, ts_ns: u64) -> Place<'static> {
        Place { iface: Cow::Borrowed("calia"), ifindex, ts_ns, wall_ns: 1_700_000_000_123_456_789, pod: None }
    }

    /// `r`'s line in `format`, which ends in a newline.
    pub(crate) fn line_of<R: Render>(r: &R, format: Format) -> Vec<u8> {
        let mut buf = Vec::new();
        put_line(format, &mut buf, r).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        buf
    }
}
