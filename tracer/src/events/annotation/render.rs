//! The annotation as text and as JSON fields, written straight into the output buffer.
//!
//! Written by hand rather than through `core::fmt` and serde: these run once per event, and
//! formatting addresses through `fmt` cost several times the lookup itself. The serde
//! `Serialize` derive of a mirror of [`Annotation`] in the tests is the reference; a test holds the two
//! equal.

use std::{fmt, io};

use super::{Annotation, Dev};
use crate::{
    mirror::{
        prefix::Prefix,
        routes::{RT_TABLE_MAIN, RouteKind, table_name},
    },
    output::write::{key, put, put_ip, put_json_str, put_mac, put_u32, quoted},
};

/// `ip route` style, as [`Prefix`]'s `Display`.
fn put_prefix(out: &mut Vec<u8>, p: Prefix) {
    if p.len == 0 {
        put(out, "default");
        return;
    }
    put_ip(out, p.addr);
    if p.len != p.family().bits() {
        put(out, "/");
        put_u32(out, u32::from(p.len));
    }
}

fn put_dev(out: &mut Vec<u8>, dev: Dev) {
    match &dev.name {
        Some(name) => put(out, name.as_str()),
        None => {
            put(out, "if");
            put_u32(out, dev.index);
        }
    }
}

impl Annotation {
    /// Appends the text form: ` | route 10.244.1.6 dev cali… scope link, neigh 10.244.1.6
    /// REACHABLE 92:7d:…, fib success cali… ⚠ note ⚠ note` — only the parts that are known.
    pub fn put_text(&self, out: &mut Vec<u8>) {
        let mut sep = " | ";
        if let Some(kind) = self.route_type {
            put(out, sep);
            sep = ", ";
            self.write_route(out, kind);
        }
        if let (Some(ip), Some(state)) = (self.neigh_ip, self.neigh_state) {
            put(out, sep);
            sep = ", ";
            put(out, "neigh ");
            put_ip(out, ip);
            put(out, " ");
            put(out, state.name());
            if let Some(mac) = self.neigh_lladdr {
                put(out, " ");
                put_mac(out, mac);
            }
        }
        if let Some(verdict) = self.fib {
            put(out, sep);
            put(out, "fib ");
            put(out, verdict.name());
            if let Some(dev) = self.fib_dev {
                put(out, " ");
                put_dev(out, dev);
            }
        }
        for note in &self.notes {
            put(out, " ⚠ ");
            put(out, note);
        }
    }

    fn write_route(&self, out: &mut Vec<u8>, kind: RouteKind) {
        put(out, "route ");
        if kind != RouteKind::Unicast {
            put(out, kind.name());
            put(out, " ");
        }
        match self.route_dst {
            Some(dst) => put_prefix(out, dst),
            None => put(out, "by rule"),
        }
        if let Some(gw) = self.route_gw {
            put(out, " via ");
            put_ip(out, gw);
        }
        if let Some(dev) = self.route_dev {
            put(out, " dev ");
            put_dev(out, dev);
        }
        if let Some(table) = self.route_table.filter(|t| *t != RT_TABLE_MAIN) {
            put(out, " table ");
            match table_name(table) {
                Some(name) => put(out, name),
                None => put_u32(out, table),
            }
        }
        if let Some(scope) = self.route_scope.filter(|s| *s != "global") {
            put(out, " scope ");
            put(out, scope);
        }
    }

    /// Appends the JSON fields as `,"key":value` pairs (for merging into the packet's object);
    /// the same keys and values as the tests' `Serialize` reference.
    pub fn write_json_fields(&self, out: &mut Vec<u8>) -> io::Result<()> {
        if let Some(dst) = self.route_dst {
            key(out, "route_dst");
            quoted(out, |o| put_prefix(o, dst));
        }
        if let Some(kind) = self.route_type {
            key(out, "route_type");
            quoted(out, |o| put(o, kind.name()));
        }
        if let Some(dev) = self.route_dev {
            key(out, "route_dev");
            json_dev(out, dev)?;
        }
        if let Some(scope) = self.route_scope {
            key(out, "route_scope");
            quoted(out, |o| put(o, scope));
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
            quoted(out, |o| put(o, state.name()));
        }
        if let Some(mac) = self.neigh_lladdr {
            key(out, "neigh_lladdr");
            quoted(out, |o| put_mac(o, mac));
        }
        if let Some(verdict) = self.fib {
            key(out, "fib");
            quoted(out, |o| put(o, verdict.name()));
        }
        if let Some(dev) = self.fib_dev {
            key(out, "fib_dev");
            json_dev(out, dev)?;
        }
        key(out, "notes");
        json_array(out, &self.notes, |o, note| put_json_str(o, note))?;
        key(out, "note_codes");
        json_array(out, &self.note_codes, |o, code| {
            quoted(o, |o| put(o, code.code()));
            Ok(())
        })
    }
}

/// `[a,b,…]`, each item written by `item`.
fn json_array<T>(out: &mut Vec<u8>, items: &[T], item: impl Fn(&mut Vec<u8>, &T) -> io::Result<()>) -> io::Result<()> {
    out.push(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, it)?;
    }
    out.push(b']');
    Ok(())
}

/// Interface names may hold quotes or backslashes (the kernel allows them): escape unless the
/// name is plain.
fn json_dev(out: &mut Vec<u8>, dev: Dev) -> io::Result<()> {
    match &dev.name {
        Some(name) if !name.as_str().bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') => {
            put_json_str(out, name.as_str())?;
        }
        _ => quoted(out, |o| put_dev(o, dev)),
    }
    Ok(())
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.put_text(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        annotate::{annotate, bench},
        events::annotation::FibVerdict,
        mirror::{neigh::NeighState, routes::RouteKind},
        packet::Mac,
    };

    /// The reference: the documented keys through serde's derive (escaping, numbers and
    /// absent fields are serde_json's), from the annotation's own fields.
    #[derive(serde::Serialize)]
    struct Reference<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        route_dst: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route_dev: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route_scope: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route_gw: Option<std::net::IpAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route_table: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        neigh_ip: Option<std::net::IpAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        neigh_state: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        neigh_lladdr: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fib: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fib_dev: Option<String>,
        notes: &'a [String],
        note_codes: Vec<&'static str>,
    }

    impl<'a> Reference<'a> {
        fn of(a: &'a Annotation) -> Self {
            Self {
                route_dst: a.route_dst.map(|p| p.to_string()),
                route_type: a.route_type.map(RouteKind::name),
                route_dev: a.route_dev.as_ref().map(ToString::to_string),
                route_scope: a.route_scope,
                route_gw: a.route_gw,
                route_table: a.route_table,
                neigh_ip: a.neigh_ip,
                neigh_state: a.neigh_state.map(NeighState::name),
                neigh_lladdr: a.neigh_lladdr.map(|m| m.to_string()),
                fib: a.fib.map(FibVerdict::name),
                fib_dev: a.fib_dev.as_ref().map(ToString::to_string),
                notes: &a.notes,
                note_codes: a.note_codes.iter().map(|c| c.code()).collect(),
            }
        }
    }

    fn both(a: &Annotation) {
        let by_hand = crate::annotate::tests::json_of(a);
        assert_eq!(by_hand, serde_json::to_value(Reference::of(a)).unwrap());
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
            route_dev: Some(Dev { index: 7, name: super::super::IfName::new("we\"ird\\name") }),
            route_scope: Some("global"),
            route_gw: Some("fe80::1".parse().unwrap()),
            route_table: Some(4_000_000_000),
            neigh_ip: Some("10.0.0.255".parse().unwrap()),
            neigh_state: Some(NeighState::Failed),
            neigh_lladdr: Some(Mac([0, 0x0f, 0xf0, 0xff, 1, 0xab])),
            fib: Some(FibVerdict::FragNeeded),
            fib_dev: Some(Dev { index: 42, name: None }),
            notes: vec!["a \"quoted\" note".into(), "ünïcode ⚠".into()],
            note_codes: vec![
                crate::events::annotation::NoteCode::WrongDevice,
                crate::events::annotation::NoteCode::FibDiffers,
            ],
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
            let mut s = Vec::new();
            put_u32(&mut s, n);
            assert_eq!(s, n.to_string().as_bytes());
        }
        for (ip, len) in [("0.0.0.0", 0), ("10.99.0.0", 30), ("10.244.1.5", 32), ("fd00::5", 128), ("::", 0)] {
            let p = Prefix::new(ip.parse().unwrap(), len);
            let mut s = Vec::new();
            put_prefix(&mut s, p);
            assert_eq!(s, p.to_string().as_bytes());
        }
    }
}
