//! Which chains changed, and when: nf_tables announces every rule, chain and table added or
//! removed on the NFNLGRP_NFTABLES multicast group (nft and iptables-nft alike). A rule
//! rewritten there starts its counter again at 0, so counters of a changed chain cannot be
//! compared across the change. iptables-legacy announces nothing: for it a counter that went
//! down is the only sign (see [`super::Counted`]).

use std::{
    sync::{Arc, Mutex},
    thread,
};

use netlink_packet_core::{NetlinkBuffer, NlaBuffer, NlasIterator};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

/// `NFNLGRP_NFTABLES` (linux/netfilter/nfnetlink.h).
const NFNLGRP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFTA_RULE_TABLE`, `NFTA_RULE_CHAIN` (= `NFTA_CHAIN_TABLE`, `NFTA_CHAIN_NAME`).
const ATTR_TABLE: u16 = 1;
const ATTR_CHAIN: u16 = 2;
/// nfgenmsg: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

/// One change: when (CLOCK_MONOTONIC ns), the family number, table and chain (`None`: the
/// whole table, or what the message did not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub at_ns: u64,
    pub family: u8,
    pub table: String,
    pub chain: Option<String>,
}

/// The changes seen, shared with the thread that reads them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes(Arc<Mutex<Vec<Change>>>);

impl Changes {
    /// Follows nf_tables' announcements on a thread of its own (blocking reads, a few per
    /// ruleset change); `Err` when the group cannot be joined (then every compared counter is
    /// trusted only if it did not go down).
    pub(crate) fn follow() -> std::io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind(&SocketAddr::new(0, 0))?;
        socket.add_membership(NFNLGRP_NFTABLES)?;
        let changes = Self::default();
        let shared = changes.clone();
        thread::Builder::new().name("nft-watch".into()).spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let now = super::monotonic_ns();
                match socket.recv(&mut &mut buf[..], 0) {
                    Ok(n) => shared.record(parse_messages(&buf[..n], now)),
                    // Announcements lost (ENOBUFS) or the socket failing: anything may have
                    // changed, so every chain counts as changed now.
                    Err(e) => {
                        shared.record(vec![Change { at_ns: now, family: 0, table: String::new(), chain: None }]);
                        if e.raw_os_error() != Some(libc::ENOBUFS) {
                            thread::sleep(std::time::Duration::from_millis(100));
                        }
                    }
                }
            }
        })?;
        Ok(changes)
    }

    fn record(&self, new: Vec<Change>) {
        if new.is_empty() {
            return;
        }
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.extend(new);
        // Only changes since the oldest kept read matter; a bound keeps a churning ruleset
        // from growing this without end.
        if all.len() > 4096 {
            let cut = all.len() - 2048;
            all.drain(..cut);
        }
    }

    /// Forgets changes before `ns`.
    pub(crate) fn forget_before(&self, ns: u64) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|c| c.at_ns >= ns);
    }

    /// Whether `table`/`chain` changed in `from..=to`.
    pub(crate) fn touched(&self, family: &str, table: &str, chain: &str, from: u64, to: u64) -> bool {
        let all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter().any(|c| {
            // An empty table: announcements were lost, anything may have changed.
            (from..=to).contains(&c.at_ns)
                && (c.table.is_empty()
                    || (c.table == table
                        && family_matches(c.family, family)
                        && c.chain.as_deref().is_none_or(|ch| ch == chain)))
        })
    }

    #[cfg(test)]
    pub(crate) fn push(&self, c: Change) {
        self.record(vec![c]);
    }
}

/// nfgenmsg's family number against nft's family word.
fn family_matches(n: u8, family: &str) -> bool {
    match family {
        "ip" => n == 2,
        "ip6" => n == 10,
        "inet" => n == 1,
        "arp" => n == 3,
        "bridge" => n == 7,
        "netdev" => n == 5,
        _ => true,
    }
}

/// The nf_tables messages of one datagram: their table and chain.
fn parse_messages(mut bytes: &[u8], at_ns: u64) -> Vec<Change> {
    let mut out = Vec::new();
    while let Ok(msg) = NetlinkBuffer::new_checked(bytes) {
        let len = (msg.length() as usize).max(16);
        if msg.message_type() >> 8 == SUBSYS_NFTABLES
            && let Some(c) = parse_one(msg.payload(), at_ns)
        {
            out.push(c);
        }
        let aligned = (len + 3) & !3;
        if aligned >= bytes.len() {
            break;
        }
        bytes = &bytes[aligned..];
    }
    out
}

fn parse_one(payload: &[u8], at_ns: u64) -> Option<Change> {
    let family = *payload.first()?;
    let mut table = None;
    let mut chain = None;
    for nla in NlasIterator::new(payload.get(NFGENMSG_LEN..)?) {
        let Ok(nla): Result<NlaBuffer<&[u8]>, _> = nla else { break };
        let text = || String::from_utf8_lossy(nla.value()).trim_end_matches('\0').to_owned();
        match nla.kind() {
            ATTR_TABLE => table = Some(text()),
            ATTR_CHAIN => chain = Some(text()),
            _ => {}
        }
    }
    Some(Change { at_ns, family, table: table?, chain })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NFT_MSG_NEWRULE for `ip filter cali-tw-x` as the kernel sends it.
    #[test]
    fn a_rule_message_names_its_table_and_chain() {
        let attr = |kind: u16, s: &str| {
            let v = [s.as_bytes(), &[0]].concat();
            let len = 4 + v.len();
            let mut a = Vec::new();
            a.extend_from_slice(&(len as u16).to_ne_bytes());
            a.extend_from_slice(&kind.to_ne_bytes());
            a.extend_from_slice(&v);
            a.resize((len + 3) & !3, 0);
            a
        };
        let payload = [vec![2, 0, 0, 1], attr(1, "filter"), attr(2, "cali-tw-x")].concat();
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&(((SUBSYS_NFTABLES) << 8) | 6).to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&payload);
        let changes = parse_messages(&msg, 5);
        assert_eq!(changes, [Change { at_ns: 5, family: 2, table: "filter".into(), chain: Some("cali-tw-x".into()) }]);
        let shared = Changes::default();
        shared.record(changes);
        assert!(shared.touched("ip", "filter", "cali-tw-x", 0, 10));
        assert!(!shared.touched("ip", "filter", "cali-tw-y", 0, 10));
        assert!(!shared.touched("ip6", "filter", "cali-tw-x", 0, 10));
        assert!(!shared.touched("ip", "filter", "cali-tw-x", 6, 10));
        shared.record(vec![Change { at_ns: 8, family: 0, table: String::new(), chain: None }]);
        assert!(shared.touched("ip6", "other", "any", 6, 10), "lost announcements touch every chain");
    }
}
