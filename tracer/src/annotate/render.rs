//! The annotation as text and as JSON fields, written straight into the output buffer.
//!
//! Written by hand rather than through `core::fmt` and serde: these run once per event, and
//! formatting addresses through `fmt` cost several times the lookup itself. The serde
//! `Serialize` derive on [`Annotation`] stays the reference; a test holds the two equal.

use std::{
    fmt::{self, Write as _},
    io,
    net::IpAddr,
};

use super::{Annotation, Dev};
use crate::mirror::{
    prefix::Prefix,
    routes::{RT_TABLE_MAIN, RouteKind, table_name},
};

/// Where rendered text goes: the text printer's `String` or the JSON printer's bytes.
trait Out {
    fn put(&mut self, s: &str);
}

impl Out for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

fn put_u32(out: &mut impl Out, n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.put(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

fn put_ip(out: &mut impl Out, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.put(".");
                }
                put_u32(out, u32::from(octet));
            }
        }
        // IPv6 text (zero compression) is not worth redoing here.
        IpAddr::V6(a) => {
            let mut text = String::with_capacity(39);
            let _ = write!(text, "{a}");
            out.put(&text);
        }
    }
}

/// `ip route` style, as [`Prefix`]'s `Display`.
fn put_prefix(out: &mut impl Out, p: Prefix) {
    if p.len == 0 {
        out.put("default");
        return;
    }
    put_ip(out, p.addr);
    if p.len != p.family().bits() {
        out.put("/");
        put_u32(out, u32::from(p.len));
    }
}

fn put_dev(out: &mut impl Out, dev: Dev<'_>) {
    match dev.name {
        Some(name) => out.put(name),
        None => {
            out.put("if");
            put_u32(out, dev.index);
        }
    }
}

impl Annotation<'_> {
    /// Appends the text form: ` | route 10.244.1.6 dev cali… scope link, neigh 10.244.1.6
    /// REACHABLE 92:7d:…, fib success cali… ⚠ note ⚠ note` — only the parts that are known.
    pub fn write_text(&self, out: &mut String) {
        let mut sep = " | ";
        if let Some(kind) = self.route_type {
            out.put(sep);
            sep = ", ";
            self.write_route(out, kind);
        }
        if let (Some(ip), Some(state)) = (self.neigh_ip, self.neigh_state) {
            out.put(sep);
            sep = ", ";
            out.put("neigh ");
            put_ip(out, ip);
            out.put(" ");
            out.put(state.name());
            if let Some(mac) = self.neigh_lladdr {
                out.put(" ");
                out.put(mac.text().as_str());
            }
        }
        if let Some(verdict) = self.fib {
            out.put(sep);
            out.put("fib ");
            out.put(verdict.name());
            if let Some(dev) = self.fib_dev {
                out.put(" ");
                put_dev(out, dev);
            }
        }
        for note in &self.notes {
            out.put(" ⚠ ");
            out.put(note);
        }
    }

    fn write_route(&self, out: &mut String, kind: RouteKind) {
        out.put("route ");
        if kind != RouteKind::Unicast {
            out.put(kind.name());
            out.put(" ");
        }
        match self.route_dst {
            Some(dst) => put_prefix(out, dst),
            None => out.put("by rule"),
        }
        if let Some(gw) = self.route_gw {
            out.put(" via ");
            put_ip(out, gw);
        }
        if let Some(dev) = self.route_dev {
            out.put(" dev ");
            put_dev(out, dev);
        }
        if let Some(table) = self.route_table.filter(|t| *t != RT_TABLE_MAIN) {
            out.put(" table ");
            match table_name(table) {
                Some(name) => out.put(name),
                None => put_u32(out, table),
            }
        }
        if let Some(scope) = self.route_scope.filter(|s| *s != "global") {
            out.put(" scope ");
            out.put(scope);
        }
    }

    /// Appends the JSON fields as `,"key":value` pairs (for merging into the packet's object);
    /// the same keys and values as the `Serialize` derive.
    pub fn write_json_fields(&self, out: &mut Vec<u8>) -> io::Result<()> {
        if let Some(dst) = self.route_dst {
            key(out, "route_dst");
            quoted(out, |o| put_prefix(o, dst));
        }
        if let Some(kind) = self.route_type {
            key(out, "route_type");
            quoted(out, |o| o.put(kind.name()));
        }
        if let Some(dev) = self.route_dev {
            key(out, "route_dev");
            json_dev(out, dev)?;
        }
        if let Some(scope) = self.route_scope {
            key(out, "route_scope");
            quoted(out, |o| o.put(scope));
        }
        if let Some(gw) = self.route_gw {
            key(out, "route_gw");
            quoted(out, |o| put_ip(o, gw));
        }
        if let Some(table) = self.route_table {
            key(out, "route_table");
            put_u32(out, table);
        }
        if let Some(ip) = self.neigh_ip {
            key(out, "neigh_ip");
            quoted(out, |o| put_ip(o, ip));
        }
        if let Some(state) = self.neigh_state {
            key(out, "neigh_state");
            quoted(out, |o| o.put(state.name()));
        }
        if let Some(mac) = self.neigh_lladdr {
            key(out, "neigh_lladdr");
            quoted(out, |o| o.put(mac.text().as_str()));
        }
        if let Some(verdict) = self.fib {
            key(out, "fib");
            quoted(out, |o| o.put(verdict.name()));
        }
        if let Some(dev) = self.fib_dev {
            key(out, "fib_dev");
            json_dev(out, dev)?;
        }
        key(out, "notes");
        out.push(b'[');
        for (i, note) in self.notes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, note)?;
        }
        out.push(b']');
        Ok(())
    }
}

fn key(out: &mut Vec<u8>, name: &str) {
    out.put(",\"");
    out.put(name);
    out.put("\":");
}

/// A JSON string whose text needs no escaping (addresses, MACs, fixed words).
fn quoted(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'"');
    body(out);
    out.push(b'"');
}

/// Interface names may hold quotes or backslashes (the kernel allows them): escape unless the
/// name is plain.
fn json_dev(out: &mut Vec<u8>, dev: Dev<'_>) -> io::Result<()> {
    match dev.name {
        Some(name) if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') => {
            serde_json::to_writer(&mut *out, name)?;
        }
        _ => quoted(out, |o| put_dev(o, dev)),
    }
    Ok(())
}

impl fmt::Display for Annotation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_text(&mut text);
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        annotate::{FibVerdict, annotate, bench},
        mirror::{neigh::NeighState, routes::RouteKind},
        packet::Mac,
    };

    fn both(a: &Annotation<'_>) {
        let mut fields = b"{\"x\":1".to_vec();
        a.write_json_fields(&mut fields).unwrap();
        fields.push(b'}');
        let mut by_hand: serde_json::Value = serde_json::from_slice(&fields).unwrap();
        by_hand.as_object_mut().unwrap().remove("x");
        assert_eq!(by_hand, serde_json::to_value(a).unwrap(), "{}", String::from_utf8_lossy(&fields));
    }

    #[test]
    fn hand_written_json_equals_the_serde_derive() {
        let m = bench::calico_node(3);
        let ev = bench::tcp_event(0, bench::pod_ip(1), tracer_common::dir::INGRESS, bench::FIRST_CALI, 0, 11);
        both(&annotate(&m, &ev));
        both(&Annotation::default());
        let odd = Annotation {
            route_dst: Some(Prefix::new("fd00:244::".parse().unwrap(), 64)),
            route_type: Some(RouteKind::Blackhole),
            route_dev: Some(Dev { index: 7, name: Some("we\"ird\\name") }),
            route_scope: Some("global"),
            route_gw: Some("fe80::1".parse().unwrap()),
            route_table: Some(4_000_000_000),
            neigh_ip: Some("10.0.0.255".parse().unwrap()),
            neigh_state: Some(NeighState::Failed),
            neigh_lladdr: Some(Mac([0, 0x0f, 0xf0, 0xff, 1, 0xab])),
            fib: Some(FibVerdict::FragNeeded),
            fib_dev: Some(Dev { index: 42, name: None }),
            notes: vec!["a \"quoted\" note".into(), "ünïcode ⚠".into()],
        };
        both(&odd);
        assert_eq!(
            odd.to_string(),
            " | route blackhole fd00:244::/64 via fe80::1 dev we\"ird\\name table 4000000000, \
             neigh 10.0.0.255 FAILED 00:0f:f0:ff:01:ab, fib frag_needed if42 ⚠ a \"quoted\" note ⚠ ünïcode ⚠"
        );
    }

    #[test]
    fn numbers_and_prefixes_print_like_fmt() {
        for n in [0, 7, 10, 255, 65535, u32::MAX] {
            let mut s = String::new();
            put_u32(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for (ip, len) in [("0.0.0.0", 0), ("10.99.0.0", 30), ("10.244.1.5", 32), ("fd00::5", 128), ("::", 0)] {
            let p = Prefix::new(ip.parse().unwrap(), len);
            let mut s = String::new();
            put_prefix(&mut s, p);
            assert_eq!(s, p.to_string());
        }
    }
}
