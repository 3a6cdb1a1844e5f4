//! `arp`: an ARP packet the host stack received or sent, seen by the ARP probes.

use std::{fmt::Write as _, io, net::IpAddr};

use tracer_common::{ArpSection, arp_hook, kind, section};

use super::{DecodeError, Place, Render, Stamp, decode::Sections, reads_as_section};
use crate::{
    output::write::{put, put_u64},
    packet::{Mac, arp_op_word},
    probes::Mode,
};

/// An ARP packet the host stack received or sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ArpEvent {
    pub header: Stamp,
    pub arp: ArpSection,
}

reads_as_section!(ArpEvent, arp, ArpSection);

#[inline(always)]
pub(super) fn decode(header: Stamp, s: &Sections<'_>) -> Result<ArpEvent, DecodeError> {
    let arp = s.arp.ok_or(DecodeError::Missing { kind: kind::ARP, section: section::ARP })?;
    Ok(ArpEvent { header, arp })
}

/// An ARP packet the host stack received or sent.
pub(crate) struct ArpRecord<'a> {
    pub place: Place<'a>,
    pub ev: ArpEvent,
    pub mode: Mode,
}

pub(crate) fn hook_name(hook: u8) -> &'static str {
    if hook == arp_hook::SEND { "send" } else { "recv" }
}

/// The keys every probe event (`arp`, `neigh`) has after the common head (README order):
/// the probe mode and the hook.
pub(super) fn put_probe_keys(buf: &mut Vec<u8>, mode: Mode, hook: &str) {
    put(buf, ",\"probe\":\"");
    put(buf, mode.name());
    put(buf, "\",\"hook\":\"");
    put(buf, hook);
    buf.push(b'"');
}

/// `,"key":"<mac>"`
pub(super) fn put_mac_field(buf: &mut Vec<u8>, key: &str, m: [u8; 6]) {
    put(buf, key);
    crate::output::write::put_mac(buf, Mac(m));
    buf.push(b'"');
}

/// `,"key":"<ip>"`
pub(super) fn put_ip_field(buf: &mut Vec<u8>, key: &str, ip: IpAddr) {
    put(buf, key);
    crate::output::write::put_ip(buf, ip);
    buf.push(b'"');
}

/// `… ARP recv Request who-has 169.254.1.1 tell 10.244.1.5 (02:…)`
impl Render for ArpRecord<'_> {
    const KIND: &'static str = "arp";

    fn place(&self) -> &Place<'_> {
        &self.place
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        let ev = &self.ev;
        let (spa, tpa) = (IpAddr::from(ev.spa), IpAddr::from(ev.tpa));
        let (sha, tha) = (Mac(ev.sha), Mac(ev.tha));
        let mut line = format!(" ARP {} ", hook_name(ev.hook));
        match ev.op {
            1 => write!(line, "Request who-has {tpa} tell {spa} ({sha})"),
            2 => write!(line, "Reply {spa} is-at {sha} (to {tpa} {tha})"),
            op => write!(line, "op {op} {spa} ({sha}) -> {tpa} ({tha})"),
        }
        .expect("writing to a String");
        out.extend_from_slice(line.as_bytes());
    }

    fn put_json(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        let ev = &self.ev;
        put_probe_keys(buf, self.mode, hook_name(ev.hook));
        match arp_op_word(ev.op) {
            Some(word) => {
                put(buf, ",\"arp_op\":\"");
                put(buf, word);
                buf.push(b'"');
            }
            None => {
                put(buf, ",\"arp_op\":");
                put_u64(buf, u64::from(ev.op));
            }
        }
        put_mac_field(buf, ",\"arp_sha\":\"", ev.sha);
        put_ip_field(buf, ",\"arp_spa\":\"", IpAddr::from(ev.spa));
        put_mac_field(buf, ",\"arp_tha\":\"", ev.tha);
        put_ip_field(buf, ",\"arp_tpa\":\"", IpAddr::from(ev.tpa));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tracer_common::ArpSection;

    use super::*;
    use crate::{events::tests::calia, output::Format};

    /// `ev`'s line in `format`, seen by `mode`, on `calia`.
    fn line_of(ev: &ArpEvent, mode: Mode, format: Format) -> Vec<u8> {
        let place = calia(ev.ifindex, ev.header.ts_ns);
        crate::events::tests::line_of(&ArpRecord { place, ev: *ev, mode }, format)
    }

    fn json(buf: &[u8]) -> Value {
        serde_json::from_slice(buf).unwrap()
    }

    #[test]
    fn arp_request_text_and_json() {
        let ev = ArpEvent {
            arp: ArpSection {
                ifindex: 4,
                hook: arp_hook::RECV,
                op: 1,
                sha: [2, 0, 0, 0, 0, 5],
                spa: [10, 244, 1, 5],
                tpa: [169, 254, 1, 1],
                ..Default::default()
            },
            ..Default::default()
        };
        let buf = line_of(&ev, Mode::Kprobe, Format::Text);
        let line = String::from_utf8(buf).unwrap();
        assert!(
            line.ends_with(
                " calia           ARP recv Request who-has 169.254.1.1 tell 10.244.1.5 (02:00:00:00:00:05)\n"
            ),
            "{line}"
        );
        let buf = line_of(&ev, Mode::Kprobe, Format::Json);
        let j = json(&buf);
        assert_eq!(
            (&j["kind"], &j["hook"], &j["probe"], &j["arp_op"], &j["arp_tpa"], &j["arp_sha"]),
            (
                &"arp".into(),
                &"recv".into(),
                &"kprobe".into(),
                &"request".into(),
                &"169.254.1.1".into(),
                &"02:00:00:00:00:05".into()
            )
        );
        assert_eq!(j["time"], "2023-11-14T22:13:20.123456789Z");
    }
}
