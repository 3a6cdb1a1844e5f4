//! Enhanced Packet Blocks (pcapng, RFC draft §4.3) written straight into a reused buffer.
//!
//! pcap-file's block writer writes every block twice (once into a sink, to learn its length)
//! and allocates the block's option list; at a hundred thousand packets a second that was a
//! sixth of the collector's work. Here the block's body is encoded once, in the section's byte
//! order (native: the writer is made with [`pcap_file::pcapng::PcapNgWriter::new`]), and
//! pcap-file frames it (`write_raw_block`). The tests hold the bytes equal to pcap-file's own
//! encoding of the same block.

/// The block type of an Enhanced Packet Block.
pub(super) const TYPE: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const OPT_FLAGS: u16 = 2;

/// One packet as a capture file holds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packet<'a> {
    pub interface_id: u32,
    /// ns since the Unix epoch (the interfaces say `if_tsresol` 9).
    pub timestamp_ns: u64,
    /// The captured bytes, in pieces (a made-up Ethernet header, then the frame).
    pub data: [&'a [u8]; 2],
    /// The length on the wire (at least the captured length).
    pub original_len: u32,
    /// `epb_flags` (0: none).
    pub flags: u32,
    /// `opt_comment` (empty: none); a leading ` | ` and surrounding blanks are not part of it.
    pub comment: &'a [u8],
}

fn pad4(body: &mut Vec<u8>) {
    body.resize(body.len().next_multiple_of(4), 0);
}

fn put32(body: &mut Vec<u8>, v: u32) {
    body.extend_from_slice(&v.to_ne_bytes());
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_ne_bytes());
    body.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    body.extend_from_slice(value);
    pad4(body);
}

/// The block's body (everything between its length fields) into `body`, emptied first.
pub(super) fn body(body: &mut Vec<u8>, p: &Packet<'_>) {
    body.clear();
    let caplen: usize = p.data.iter().map(|d| d.len()).sum();
    put32(body, p.interface_id);
    put32(body, (p.timestamp_ns >> 32) as u32);
    put32(body, p.timestamp_ns as u32);
    put32(body, caplen as u32);
    // The record's frame may be shorter than the wire length; never longer.
    put32(body, p.original_len.max(caplen as u32));
    p.data.iter().for_each(|d| body.extend_from_slice(d));
    pad4(body);
    if p.flags != 0 {
        option(body, OPT_FLAGS, &p.flags.to_ne_bytes());
    }
    let comment = p.comment.strip_prefix(b" | ").unwrap_or(p.comment).trim_ascii();
    // An option's length is 16 bits.
    let comment = &comment[..comment.len().min(usize::from(u16::MAX) & !3)];
    if !comment.is_empty() {
        match std::str::from_utf8(comment) {
            Ok(_) => option(body, OPT_COMMENT, comment),
            Err(_) => option(body, OPT_COMMENT, String::from_utf8_lossy(comment).as_bytes()),
        }
    }
    if p.flags != 0 || !comment.is_empty() {
        option(body, OPT_END, &[]);
    }
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, time::Duration};

    use pcap_file::{
        DataLink,
        pcapng::{
            PcapNgWriter, RawBlock,
            blocks::{
                enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption},
                interface_description::InterfaceDescriptionBlock,
            },
        },
    };

    use super::*;

    /// pcap-file's bytes for the block `p` describes (after the interfaces it refers to).
    fn theirs(p: &Packet<'_>) -> Vec<u8> {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        for _ in 0..=p.interface_id {
            let idb = InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 0, options: Vec::new() };
            w.write_pcapng_block(idb).unwrap();
        }
        let start = w.get_ref().len();
        let mut options = Vec::new();
        if p.flags != 0 {
            options.push(EnhancedPacketOption::Flags(p.flags));
        }
        let comment = p.comment.strip_prefix(b" | ").unwrap_or(p.comment).trim_ascii();
        if !comment.is_empty() {
            options.push(EnhancedPacketOption::Comment(String::from_utf8_lossy(comment)));
        }
        let data = p.data.concat();
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: p.interface_id,
            timestamp: Duration::from_nanos(p.timestamp_ns),
            original_len: p.original_len.max(data.len() as u32),
            data: Cow::Owned(data),
            options,
        })
        .unwrap();
        w.get_ref()[start..].to_vec()
    }

    /// Ours, framed by pcap-file as the writer frames it.
    fn ours(p: &Packet<'_>) -> Vec<u8> {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let start = w.get_ref().len();
        let mut b = vec![0xaa; 7];
        body(&mut b, p);
        let len = b.len() as u32 + 12;
        w.write_raw_block(&RawBlock { type_: TYPE, initial_len: len, body: Cow::Borrowed(&b), trailer_len: len })
            .unwrap();
        w.get_ref()[start..].to_vec()
    }

    #[test]
    fn blocks_are_byte_for_byte_pcap_files() {
        let frame: Vec<u8> = (0..61).collect();
        let eth = [0u8; 14];
        let cases = [
            Packet { interface_id: 0, timestamp_ns: 1, data: [&[], &frame], original_len: 61, flags: 0, comment: b"" },
            Packet {
                interface_id: 3,
                timestamp_ns: 1_764_000_000_123_456_789,
                data: [&[], &frame[..60]],
                original_len: 1514,
                flags: 0b10,
                comment: b" | route 10.244.1.6 dev cali1 scope link",
            },
            Packet { interface_id: 1, timestamp_ns: u64::MAX, data: [&eth, &frame[..3]], original_len: 0, flags: 0b01, comment: b"" },
            Packet { interface_id: 2, timestamp_ns: 7, data: [&[], &frame[..1]], original_len: 9, flags: 0, comment: b"DROP x \xff\xfe" },
            Packet { interface_id: 2, timestamp_ns: 7, data: [&[], &[]], original_len: 0, flags: 0, comment: b"  ab " },
        ];
        for p in &cases {
            assert_eq!(ours(p), theirs(p), "{p:?}");
        }
    }
}
