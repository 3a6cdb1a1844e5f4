//! Ring-buffer records fuzzed through the collector's decoder: arbitrary bytes, and records
//! with a valid header and sections of any kind, version and length — frames of random bytes
//! included, which the decoder hands to the eBPF crate's frame parser. The properties: no panic;
//! a decoded record is of the kind its header says; its frame lies inside the record.
//!
//! Cases: PROPTEST_CASES, else 20 000 (README "Tests": the long run).

use proptest::{collection::vec, prelude::*, test_runner::Config};
use tracer_common::{RECORD_VERSION, RecordHeader, SectionHeader, kind, section};

use crate::events::{Decoder, Event};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A section: kind, version, body; `len_skew` makes the header's length lie now and then.
fn section_bytes((kind, version, body, len_skew): (u8, u8, Vec<u8>, i8)) -> Vec<u8> {
    let len = (size_of::<SectionHeader>() + body.len()).saturating_add_signed(if len_skew % 5 == 0 { len_skew.into() } else { 0 });
    let mut out = vec![kind, version, 0, 0];
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    out.extend_from_slice(&body);
    out
}

fn a_section() -> impl Strategy<Value = Vec<u8>> {
    let kinds = prop_oneof![Just(section::TC), Just(section::DROP), Just(section::ARP), Just(section::NEIGH), Just(section::FRAME), Just(section::JOURNEY), any::<u8>()];
    (kinds, prop_oneof![Just(1u8), any::<u8>()], vec(any::<u8>(), 0..200), any::<i8>()).prop_map(section_bytes)
}

/// A record with a true header (but for `len_skew`) and up to four sections.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let kinds =
        prop_oneof![Just(kind::PACKET), Just(kind::DROP), Just(kind::ARP), Just(kind::NEIGH), Just(kind::JOURNEY), any::<u8>()];
    (kinds, vec(a_section(), 0..4), any::<i8>()).prop_map(|(k, sections, len_skew)| {
        let body: Vec<u8> = sections.concat();
        let len = size_of::<RecordHeader>() + body.len();
        let len = if len_skew % 7 == 0 { len.saturating_add_signed(len_skew.into()) } else { len };
        let mut out = vec![k, RECORD_VERSION, 0, 0];
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
        out.extend_from_slice(&7u64.to_ne_bytes());
        out.extend_from_slice(&body);
        out
    })
}

fn kind_of(e: &Event) -> u8 {
    match e {
        Event::Packet(_) => kind::PACKET,
        Event::Drop(_) => kind::DROP,
        Event::Arp(_) => kind::ARP,
        Event::Neigh(_) => kind::NEIGH,
        Event::Hop(_) => kind::JOURNEY,
    }
}

#[test]
fn a_well_formed_record_decodes() {
    let tc = vec![0u8; size_of::<tracer_common::TcSection>()];
    let rec = section_bytes((section::TC, section::TC_VERSION, tc, 1));
    let mut buf = vec![kind::PACKET, RECORD_VERSION, 0, 0];
    buf.extend_from_slice(&u32::try_from(size_of::<RecordHeader>() + rec.len()).unwrap().to_ne_bytes());
    buf.extend_from_slice(&7u64.to_ne_bytes());
    buf.extend_from_slice(&rec);
    let decoded = Decoder::default().decode(&buf).expect("a TC record");
    assert_eq!(kind_of(&decoded.event), kind::PACKET);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn records_never_panic_the_decoder(rec in prop_oneof![record(), vec(any::<u8>(), 0..400)]) {
        let mut decoder = Decoder::default();
        if let Ok(d) = decoder.decode(&rec) {
            prop_assert_eq!(kind_of(&d.event), rec[0]);
            let (start, end) = (rec.as_ptr() as usize, rec.as_ptr() as usize + rec.len());
            let f = d.frame.bytes.as_ptr() as usize;
            prop_assert!(d.frame.bytes.is_empty() || (f >= start && f + d.frame.bytes.len() <= end));
        }
    }
}
