//! ARP and neighbour events as text lines and JSON objects (`kind` "arp" and "neigh", keys in
//! the README), written with the same writers as packets and drops: the head by
//! [`output::put_json_head`], the fields by hand.

use std::{fmt::Write as _, io, net::IpAddr};

use tracer_common::{arp_hook, neigh_hook, neighf, proto::AF_INET};

use super::Mode;
use crate::{
    event::{ArpEvent, NeighEvent},
    mirror::neigh::NeighState,
    output::{
        self, Format, Meta,
        write::{put, put_ip, put_mac, put_u64},
    },
    packet::Mac,
};


pub(crate) fn arp_hook_name(hook: u8) -> &'static str {
    if hook == arp_hook::SEND { "send" } else { "recv" }
}

pub(crate) fn neigh_hook_name(hook: u8) -> &'static str {
    match hook {
        neigh_hook::UPDATE => "update",
        neigh_hook::TIMER => "timer",
        _ => "resolve",
    }
}

fn mac(m: [u8; 6]) -> String {
    Mac(m).to_string()
}

/// The neighbour's address.
pub(crate) fn neigh_ip(ev: &NeighEvent) -> IpAddr {
    if ev.family == AF_INET {
        IpAddr::from([ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3]])
    } else {
        IpAddr::from(ev.addr)
    }
}

/// The state before, when known.
fn old_state(ev: &NeighEvent) -> Option<NeighState> {
    (ev.flags & (neighf::OLD_KNOWN | neighf::OLD_SEEN) != 0).then(|| NeighState::from_nud(ev.old_state))
}

/// A resolution that held the packet with the entry FAILED freed it (`NEIGH_FAILED`) rather
/// than queued it.
fn dropped(ev: &NeighEvent) -> bool {
    ev.hook == neigh_hook::RESOLVE && ev.flags & neighf::HELD != 0 && NeighState::from_nud(ev.new_state) == NeighState::Failed
}

fn lladdr(ev: &NeighEvent) -> Option<String> {
    (ev.flags & neighf::HAS_LLADDR != 0).then(|| mac(ev.lladdr))
}

/// Time, interface, pod, then the event's own words.
fn text_prefix(buf: &mut Vec<u8>, meta: Meta<'_>) {
    crate::output::put_text_stamp(buf, meta);
}

/// The keys every `arp` and `neigh` object starts with (README order): the common head, then
/// the probe mode and the hook.
fn json_head(buf: &mut Vec<u8>, kind: &str, meta: Meta<'_>, ts_ns: u64, ifindex: u32, mode: Mode, hook: &str) -> io::Result<()> {
    output::put_json_head(buf, kind, meta, ts_ns, ifindex)?;
    put(buf, ",\"probe\":\"");
    put(buf, mode.name());
    put(buf, "\",\"hook\":\"");
    put(buf, hook);
    buf.push(b'"');
    Ok(())
}

/// `,"key":"<mac>"`
fn put_mac_field(buf: &mut Vec<u8>, key: &str, m: [u8; 6]) {
    put(buf, key);
    put_mac(buf, Mac(m));
    buf.push(b'"');
}

/// `,"key":"<ip>"`
fn put_ip_field(buf: &mut Vec<u8>, key: &str, ip: IpAddr) {
    put(buf, key);
    put_ip(buf, ip);
    buf.push(b'"');
}

fn arp_json(buf: &mut Vec<u8>, ev: &ArpEvent, meta: Meta<'_>, mode: Mode) -> io::Result<()> {
    json_head(buf, "arp", meta, ev.header.ts_ns, ev.ifindex, mode, arp_hook_name(ev.hook))?;
    match crate::packet::arp_op_word(ev.op) {
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
    buf.extend_from_slice(b"}\n");
    Ok(())
}

fn neigh_json(buf: &mut Vec<u8>, ev: &NeighEvent, meta: Meta<'_>, mode: Mode) -> io::Result<()> {
    json_head(buf, "neigh", meta, ev.header.ts_ns, ev.ifindex, mode, neigh_hook_name(ev.hook))?;
    put(buf, if ev.family == AF_INET { ",\"family\":\"ipv4\"" } else { ",\"family\":\"ipv6\"" });
    put_ip_field(buf, ",\"neigh_ip\":\"", neigh_ip(ev));
    match old_state(ev) {
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
    if ev.flags & neighf::HAS_LLADDR != 0 {
        put_mac_field(buf, ",\"lladdr\":\"", ev.lladdr);
    } else {
        put(buf, ",\"lladdr\":null");
    }
    put(buf, if ev.flags & neighf::HELD != 0 { ",\"held\":true" } else { ",\"held\":false" });
    put(buf, if dropped(ev) { ",\"dropped\":true" } else { ",\"dropped\":false" });
    if ev.hook == neigh_hook::UPDATE {
        put(buf, ",\"update_flags\":");
        put_u64(buf, u64::from(ev.detail));
        put(buf, ",\"nlmsg_pid\":");
        put_u64(buf, u64::from(ev.pid));
    }
    buf.extend_from_slice(b"}\n");
    Ok(())
}

/// `HH:MM:SS.uuuuuu cali… ARP recv Request who-has 169.254.1.1 tell 10.244.1.5 (02:…)`
pub(crate) fn write_arp(format: Format, buf: &mut Vec<u8>, ev: &ArpEvent, meta: Meta<'_>, mode: Mode) -> io::Result<()> {
    let (spa, tpa) = (IpAddr::from(ev.spa), IpAddr::from(ev.tpa));
    match format {
        Format::Text => {
            text_prefix(buf, meta);
            let mut line = format!(" ARP {} ", arp_hook_name(ev.hook));
            match ev.op {
                1 => write!(line, "Request who-has {tpa} tell {spa} ({})", mac(ev.sha)),
                2 => write!(line, "Reply {spa} is-at {} (to {tpa} {})", mac(ev.sha), mac(ev.tha)),
                op => write!(line, "op {op} {spa} ({}) -> {tpa} ({})", mac(ev.sha), mac(ev.tha)),
            }
            .expect("writing to a String");
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            Ok(())
        }
        Format::Json => arp_json(buf, ev, meta, mode),
    }
}

/// `HH:MM:SS.uuuuuu cali… neigh 10.244.1.99 INCOMPLETE -> FAILED (timer)`
pub(crate) fn write_neigh(format: Format, buf: &mut Vec<u8>, ev: &NeighEvent, meta: Meta<'_>, mode: Mode) -> io::Result<()> {
    let ip = neigh_ip(ev);
    let old = old_state(ev);
    let new = NeighState::from_nud(ev.new_state);
    let held = ev.flags & neighf::HELD != 0;
    match format {
        Format::Text => {
            text_prefix(buf, meta);
            let mut line = format!(" neigh {ip} {} -> {}", old.map_or("?", NeighState::name), new.name());
            if let Some(ll) = lladdr(ev) {
                write!(line, " lladdr {ll}").expect("writing to a String");
            }
            if dropped(ev) {
                line.push_str(", packet dropped");
            } else if held {
                line.push_str(", packet held");
            }
            if ev.hook == neigh_hook::UPDATE && ev.pid != 0 {
                write!(line, ", asked by netlink port {}", ev.pid).expect("writing to a String");
            }
            write!(line, " ({})", neigh_hook_name(ev.hook)).expect("writing to a String");
            if new == NeighState::Failed {
                write!(line, " ⚠ {ip} did not answer").expect("writing to a String");
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            Ok(())
        }
        Format::Json => neigh_json(buf, ev, meta, mode),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use tracer_common::{ArpSection, NeighSection};

    fn meta() -> Meta<'static> {
        Meta::new("calia", 1_700_000_000_123_456_789)
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
        let mut buf = Vec::new();
        write_arp(Format::Text, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert!(line.ends_with(" calia           ARP recv Request who-has 169.254.1.1 tell 10.244.1.5 (02:00:00:00:00:05)\n"), "{line}");
        let mut buf = Vec::new();
        write_arp(Format::Json, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
        let j = json(&buf);
        assert_eq!(
            (&j["kind"], &j["hook"], &j["probe"], &j["arp_op"], &j["arp_tpa"], &j["arp_sha"]),
            (&"arp".into(), &"recv".into(), &"kprobe".into(), &"request".into(), &"169.254.1.1".into(), &"02:00:00:00:00:05".into())
        );
        assert_eq!(j["time"], "2023-11-14T22:13:20.123456789Z");
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
        let mut buf = Vec::new();
        write_neigh(Format::Text, &mut buf, &ev, meta(), Mode::Fentry).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert!(line.contains(" neigh 10.244.1.99 INCOMPLETE -> FAILED (timer) ⚠ 10.244.1.99 did not answer"), "{line}");
        let mut buf = Vec::new();
        write_neigh(Format::Json, &mut buf, &ev, meta(), Mode::Fentry).unwrap();
        let j = json(&buf);
        assert_eq!((&j["old_state"], &j["new_state"], &j["lladdr"]), (&"INCOMPLETE".into(), &"FAILED".into(), &Value::Null));
        assert!(j.get("update_flags").is_none());

        ev.neigh.flags = 0;
        ev.neigh.old_state = 0;
        let mut buf = Vec::new();
        write_neigh(Format::Json, &mut buf, &ev, meta(), Mode::Tracepoint).unwrap();
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
        let mut buf = Vec::new();
        write_neigh(Format::Text, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
        assert!(String::from_utf8_lossy(&buf).contains("FAILED -> FAILED, packet dropped (resolve)"));
        let mut buf = Vec::new();
        write_neigh(Format::Json, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
        assert_eq!((&json(&buf)["held"], &json(&buf)["dropped"]), (&true.into(), &true.into()));
        ev.neigh.new_state = 0x01;
        let mut buf = Vec::new();
        write_neigh(Format::Json, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
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
        let mut buf = Vec::new();
        write_neigh(Format::Json, &mut buf, &ev, meta(), Mode::Kprobe).unwrap();
        let j = json(&buf);
        assert_eq!((&j["neigh_ip"], &j["family"], &j["lladdr"]), (&"fd00::5".into(), &"ipv6".into(), &"02:00:00:00:00:05".into()));
        assert_eq!((&j["old_state"], &j["new_state"], &j["update_flags"]), (&"STALE".into(), &"REACHABLE".into(), &1.into()));
    }
}
