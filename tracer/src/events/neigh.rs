//! `neigh`: a neighbour entry that changed, or held or dropped a packet, seen by the
//! neighbour probes.

use std::{fmt::Write as _, io, net::IpAddr};

use tracer_common::{NeighSection, kind, neigh_hook, neighf, proto::AF_INET, section};

use super::{
    DecodeError, Place, Render, Stamp,
    arp::{put_ip_field, put_mac_field, put_probe_keys},
    decode::Sections,
    reads_as_section,
};
use crate::{
    mirror::neigh::NeighState,
    output::write::{put, put_u64},
    packet::Mac,
    probes::Mode,
};

/// A neighbour entry that changed or held a packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NeighEvent {
    pub header: Stamp,
    pub neigh: NeighSection,
}

reads_as_section!(NeighEvent, neigh, NeighSection);

#[inline(always)]
pub(super) fn decode(header: Stamp, s: &Sections<'_>) -> Result<NeighEvent, DecodeError> {
    let neigh = s.neigh.ok_or(DecodeError::Missing { kind: kind::NEIGH, section: section::NEIGH })?;
    Ok(NeighEvent { header, neigh })
}

impl NeighEvent {
    /// The neighbour's address.
    pub(crate) fn ip(&self) -> IpAddr {
        if self.family == AF_INET {
            IpAddr::from([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
        } else {
            IpAddr::from(self.addr)
        }
    }

    /// The state before, when known.
    fn old_state(&self) -> Option<NeighState> {
        (self.flags & (neighf::OLD_KNOWN | neighf::OLD_SEEN) != 0).then(|| NeighState::from_nud(self.old_state))
    }

    /// A resolution that held the packet with the entry FAILED freed it (`NEIGH_FAILED`)
    /// rather than queued it.
    fn dropped(&self) -> bool {
        self.hook == neigh_hook::RESOLVE
            && self.flags & neighf::HELD != 0
            && NeighState::from_nud(self.new_state) == NeighState::Failed
    }

    fn lladdr(&self) -> Option<Mac> {
        (self.flags & neighf::HAS_LLADDR != 0).then_some(Mac(self.lladdr))
    }
}

/// A neighbour entry that changed or held a packet.
pub(crate) struct NeighRecord<'a> {
    pub place: Place<'a>,
    pub ev: NeighEvent,
    pub mode: Mode,
}

pub(crate) fn hook_name(hook: u8) -> &'static str {
    match hook {
        neigh_hook::UPDATE => "update",
        neigh_hook::TIMER => "timer",
        _ => "resolve",
    }
}

/// `… neigh 10.244.1.99 INCOMPLETE -> FAILED (timer)`
impl Render for NeighRecord<'_> {
    const KIND: &'static str = "neigh";

    fn place(&self) -> &Place<'_> {
        &self.place
    }

    fn put_text(&self, out: &mut Vec<u8>) {
        let ev = &self.ev;
        let ip = ev.ip();
        let new = NeighState::from_nud(ev.new_state);
        let mut line = format!(" neigh {ip} {} -> {}", ev.old_state().map_or("?", NeighState::name), new.name());
        let w = |line: &mut String, args: std::fmt::Arguments<'_>| line.write_fmt(args).expect("writing to a String");
        if let Some(ll) = ev.lladdr() {
            w(&mut line, format_args!(" lladdr {ll}"));
        }
        if ev.dropped() {
            line.push_str(", packet dropped");
        } else if ev.flags & neighf::HELD != 0 {
            line.push_str(", packet held");
        }
        if ev.hook == neigh_hook::UPDATE && ev.pid != 0 {
            w(&mut line, format_args!(", asked by netlink port {}", ev.pid));
        }
        w(&mut line, format_args!(" ({})", hook_name(ev.hook)));
        if new == NeighState::Failed {
            w(&mut line, format_args!(" ⚠ {ip} did not answer"));
        }
        out.extend_from_slice(line.as_bytes());
    }

    fn put_json(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        let ev = &self.ev;
        put_probe_keys(buf, self.mode, hook_name(ev.hook));
        put(buf, if ev.family == AF_INET { ",\"family\":\"ipv4\"" } else { ",\"family\":\"ipv6\"" });
        put_ip_field(buf, ",\"neigh_ip\":\"", ev.ip());
        match ev.old_state() {
            Some(old) => {
                put(buf, ",\"old_state\":\"");
                put(buf, old.name());
                buf.push(b'"');
            }
            None => put(buf, ",\"old_state\":null"),
        }
        put(buf, ",\"new_state\":\"");
        put(buf, NeighState::from_nud(ev.new_state).name());
        buf.push(b'"');
        match ev.lladdr() {
            Some(ll) => put_mac_field(buf, ",\"lladdr\":\"", ll.0),
            None => put(buf, ",\"lladdr\":null"),
        }
        put(buf, if ev.flags & neighf::HELD != 0 { ",\"held\":true" } else { ",\"held\":false" });
        put(buf, if ev.dropped() { ",\"dropped\":true" } else { ",\"dropped\":false" });
        if ev.hook == neigh_hook::UPDATE {
            put(buf, ",\"update_flags\":");
            put_u64(buf, u64::from(ev.detail));
            put(buf, ",\"nlmsg_pid\":");
            put_u64(buf, u64::from(ev.pid));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tracer_common::NeighSection;

    use super::*;
    use crate::{events::tests::calia, output::Format};

    /// `ev`'s line in `format`, seen by `mode`, on `calia`.
    fn line_of(ev: &NeighEvent, mode: Mode, format: Format) -> Vec<u8> {
        let place = calia(ev.ifindex, ev.header.ts_ns);
        crate::events::tests::line_of(&NeighRecord { place, ev: *ev, mode }, format)
    }

    fn json(buf: &[u8]) -> Value {
        serde_json::from_slice(buf).unwrap()
    }

    #[test]
    fn neigh_failed_and_unknown_old_state() {
        let mut ev = NeighEvent {
            neigh: NeighSection {
                ifindex: 4,
                hook: neigh_hook::TIMER,
                family: AF_INET,
                old_state: 0x01,
                new_state: 0x20,
                flags: neighf::OLD_KNOWN,
                ..Default::default()
            },
            ..Default::default()
        };
        ev.neigh.addr[..4].copy_from_slice(&[10, 244, 1, 99]);
        let buf = line_of(&ev, Mode::Fentry, Format::Text);
        let line = String::from_utf8(buf).unwrap();
        assert!(
            line.contains(" neigh 10.244.1.99 INCOMPLETE -> FAILED (timer) ⚠ 10.244.1.99 did not answer"),
            "{line}"
        );
        let buf = line_of(&ev, Mode::Fentry, Format::Json);
        let j = json(&buf);
        assert_eq!(
            (&j["old_state"], &j["new_state"], &j["lladdr"]),
            (&"INCOMPLETE".into(), &"FAILED".into(), &Value::Null)
        );
        assert!(j.get("update_flags").is_none());

        ev.neigh.flags = 0;
        ev.neigh.old_state = 0;
        let buf = line_of(&ev, Mode::Tracepoint, Format::Json);
        assert_eq!(json(&buf)["old_state"], Value::Null);
    }

    #[test]
    fn a_resolution_on_a_failed_entry_drops_the_packet() {
        let mut ev = NeighEvent {
            neigh: NeighSection {
                hook: neigh_hook::RESOLVE,
                family: AF_INET,
                old_state: 0x20,
                new_state: 0x20,
                flags: neighf::OLD_KNOWN | neighf::HELD,
                detail: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        ev.neigh.addr[..4].copy_from_slice(&[10, 244, 1, 99]);
        let buf = line_of(&ev, Mode::Kprobe, Format::Text);
        assert!(String::from_utf8_lossy(&buf).contains("FAILED -> FAILED, packet dropped (resolve)"));
        let buf = line_of(&ev, Mode::Kprobe, Format::Json);
        assert_eq!((&json(&buf)["held"], &json(&buf)["dropped"]), (&true.into(), &true.into()));
        ev.neigh.new_state = 0x01;
        let buf = line_of(&ev, Mode::Kprobe, Format::Json);
        assert_eq!(json(&buf)["dropped"], false, "INCOMPLETE queues it");
    }

    #[test]
    fn neigh_update_with_lladdr_ipv6() {
        let ev = NeighEvent {
            neigh: NeighSection {
                hook: neigh_hook::UPDATE,
                family: 10,
                old_state: 0x04,
                new_state: 0x02,
                flags: neighf::OLD_KNOWN | neighf::HAS_LLADDR,
                detail: 1,
                pid: 0,
                addr: "fd00::5".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                lladdr: [2, 0, 0, 0, 0, 5],
                ..Default::default()
            },
            ..Default::default()
        };
        let buf = line_of(&ev, Mode::Kprobe, Format::Json);
        let j = json(&buf);
        assert_eq!(
            (&j["neigh_ip"], &j["family"], &j["lladdr"]),
            (&"fd00::5".into(), &"ipv6".into(), &"02:00:00:00:00:05".into())
        );
        assert_eq!(
            (&j["old_state"], &j["new_state"], &j["update_flags"]),
            (&"STALE".into(), &"REACHABLE".into(), &1.into())
        );
    }
}
