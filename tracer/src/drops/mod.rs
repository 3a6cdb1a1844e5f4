//! Drops: the kernel side's skb:kfree_skb program set up for the running kernel, the
//! relevance filter it reads (`DROP_ADDRS`) kept in step with the route mirror, and naming a
//! drop: reason (BTF), location (kallsyms), cause in plain words ([`cause`]), output
//! ([`render`]) and the table of counts at exit ([`summary`]).

pub(crate) mod arpwatch;
pub(crate) mod cause;
pub(crate) mod name;
pub(crate) mod podside;
pub(crate) mod policy;
pub(crate) mod summary;

use std::{collections::HashSet, net::IpAddr};

use aya::{
    Ebpf,
    maps::{LpmTrie, MapData, MapError, lpm_trie::Key},
    programs::{ProgramError, TracePoint},
};
use tracer_common::{DropConfig, TRACED};

use crate::events::DropEvent;

use crate::{
    kernel::{
        self,
        btf::{BtfError, KernelBtf},
        drop_reason::DropReasons,
        kallsyms::Kallsyms,
        tracefs::{self, TracefsError},
    },
    mirror::{Mirror, prefix::Prefix, routes::RouteKind},
};

pub(crate) use tracer_common::names::{DROP_ADDRS_MAP as ADDRS_MAP, DROP_PROG as PROGRAM};
const TP_SYSTEM: &str = "skb";
const TP_NAME: &str = "kfree_skb";

#[derive(Debug, thiserror::Error)]
pub(crate) enum DropsError {
    #[error("drop tracing needs the kernel's struct layouts: {0}")]
    Btf(#[from] BtfError),
    #[error("drop tracing needs the skb:kfree_skb tracepoint: {0}")]
    Tracefs(#[from] TracefsError),
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    #[error("drop map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("loading {PROGRAM} failed (verifier log follows): {0}")]
    Load(#[source] ProgramError),
    #[error("attaching {PROGRAM} to skb:kfree_skb failed: {0}")]
    Attach(#[source] ProgramError),
}

/// What turns a [`DropEvent`]'s numbers into names.
#[derive(Debug, Default, Clone)]
pub(crate) struct DropNames {
    pub reasons: DropReasons,
    pub kallsyms: Kallsyms,
}

impl DropNames {
    /// The reason's short name (`NEIGH_FAILED`), `None` on kernels without reasons.
    pub(crate) fn reason(&self, ev: &DropEvent) -> Option<String> {
        (ev.flags & tracer_common::dropf::HAS_REASON != 0).then(|| self.reasons.name(ev.reason))
    }

    /// `symbol+0xoff` of the drop location.
    pub(crate) fn location(&self, ev: &DropEvent) -> String {
        self.kallsyms.describe(ev.location)
    }

    /// IPv6 control traffic freed without a reason: ip6_mc_input discarding MLD reports and
    /// neighbour solicitations for groups the node has not joined (every pod sends them as it
    /// comes up), and on 6.1 icmpv6_rcv freeing every neighbour-discovery message it has
    /// handled with kfree_skb. Not faults (real ND drops carry IPV6_NDISC_* reasons): left out
    /// so that a healthy node shows no drops.
    pub(crate) fn is_ipv6_control_noise(&self, ev: &DropEvent) -> bool {
        use tracer_common::{proto::IPPROTO_ICMPV6, valid};
        let p = &ev.packet;
        let multicast = p.dst_ip[0] == 0xff;
        let nd = p.ip_proto == IPPROTO_ICMPV6 && p.valid & valid::ICMP != 0 && (133..=137).contains(&p.icmp_type);
        let control = p.valid & valid::IPV6 != 0 && (multicast || nd);
        control
            && (ev.flags & tracer_common::dropf::HAS_REASON == 0
                || self.reasons.value("NOT_SPECIFIED").is_some_and(|v| v == ev.reason))
    }

    /// The location's symbol alone.
    pub(crate) fn symbol(&self, ev: &DropEvent) -> Option<&str> {
        self.kallsyms.resolve(ev.location).map(|s| s.0)
    }
}

/// The attached drop program and the address filter it reads.
pub(crate) struct DropProbe {
    addrs: LpmTrie<MapData, [u8; 16], u8>,
    installed: HashSet<(u32, [u8; 16])>,
    pub names: DropNames,
}

/// The program's view of the running kernel, from tracefs and BTF.
pub(crate) fn kernel_config(
    btf: &KernelBtf,
    format: &tracefs::Format,
    reasons: &DropReasons,
) -> Result<DropConfig, DropsError> {
    let rec = |f: &str| format.field(f).map(|f| f.offset);
    let skb = |m: &str| btf.member_offset("sk_buff", m);
    let dev = |m: &str| btf.member_offset("net_device", m);
    let nocarrier = btf
        .enum_values("netdev_state_t")
        .ok()
        .and_then(|v| v.into_iter().find(|(n, _)| n == "__LINK_STATE_NOCARRIER").map(|(_, v)| v))
        .unwrap_or(2);
    let rec_reason = format.fields.get("reason").map_or(DropConfig::NONE, |f| f.offset);
    let net_inum = btf.net_inum_offset()?;
    Ok(DropConfig {
        enabled: 1,
        rec_skbaddr: rec("skbaddr")?,
        rec_location: rec("location")?,
        rec_protocol: rec("protocol")?,
        rec_reason,
        reason_consumed: reasons.consumed().unwrap_or(DropConfig::NONE),
        skb_dev: skb("dev")?,
        skb_head: skb("head")?,
        skb_len: skb("len")?,
        skb_tail: skb("tail")?,
        skb_mac_header: skb("mac_header")?,
        skb_network_header: skb("network_header")?,
        dev_ifindex: dev("ifindex")?,
        dev_flags: dev("flags")?,
        dev_state: dev("state")?,
        nocarrier_bit: nocarrier,
        dev_nd_net: dev("nd_net")?,
        net_inum,
        netns_inum: kernel::own_netns_inum(),
        reason_not_specified: reasons.value("NOT_SPECIFIED").unwrap_or(DropConfig::NONE),
        skb_sk: skb("sk")?,
        sk_net: btf.member_offset("sock", "__sk_common")? + btf.member_offset("sock_common", "skc_net")?,
        skb_iif: skb("skb_iif")?,
        ..DropConfig::DISABLED
    })
}

/// What the drop program needs from the running kernel, found before the object is loaded
/// (its layout is a load-time global).
pub(crate) struct DropSetup {
    pub config: DropConfig,
    /// The veth layout for pod-side drops, or why they are off.
    pub veth: Result<podside::VethLayout, podside::VethError>,
    reasons: DropReasons,
    has_reasons: bool,
}

impl DropSetup {
    pub(crate) fn prepare(btf: &KernelBtf) -> Result<Self, DropsError> {
        let format = tracefs::format(TP_SYSTEM, TP_NAME)?;
        let has_reasons = format.fields.contains_key("reason");
        let reasons = if has_reasons { DropReasons::load(btf)? } else { DropReasons::default() };
        let mut config = kernel_config(btf, &format, &reasons)?;
        let veth = podside::VethLayout::find(btf);
        if let Ok(l) = &veth {
            l.apply(&mut config);
        }
        Ok(Self { config, veth, reasons, has_reasons })
    }
}

impl DropProbe {
    /// Loads and attaches the drop program of an object loaded with `setup.config`.
    pub(crate) fn start(ebpf: &mut Ebpf, setup: DropSetup) -> Result<Self, DropsError> {
        let addrs: LpmTrie<MapData, [u8; 16], u8> = ebpf
            .take_map(ADDRS_MAP)
            .ok_or(DropsError::Missing(ADDRS_MAP))?
            .try_into()
            .map_err(|source| DropsError::Map { name: ADDRS_MAP, source })?;
        let prog: &mut TracePoint =
            ebpf.program_mut(PROGRAM).and_then(|p| p.try_into().ok()).ok_or(DropsError::Missing(PROGRAM))?;
        prog.load().map_err(DropsError::Load)?;
        prog.attach(TP_SYSTEM, TP_NAME).map_err(DropsError::Attach)?;
        let kallsyms = Kallsyms::load().unwrap_or_else(|e| {
            log::warn!("cannot read /proc/kallsyms ({e}); drop locations are shown as addresses");
            Kallsyms::default()
        });
        match podside::status(&setup.veth) {
            Ok(line) | Err(line) => log::info!("pod-side drops: {line}"),
        }
        if !setup.has_reasons {
            log::info!("this kernel reports no drop reasons (Linux < 5.17): drops show the dropping function and a cause from the node's state, no kernel reason");
        }
        Ok(Self { addrs, installed: HashSet::new(), names: DropNames { reasons: setup.reasons, kallsyms } })
    }

    /// Makes `DROP_ADDRS` hold exactly the prefixes routed to traced interfaces.
    pub(crate) fn sync_addrs(&mut self, mirror: &Mirror, is_traced: impl Fn(u32) -> bool) {
        let wanted = routed_prefixes(mirror, is_traced);
        for gone in self.installed.difference(&wanted) {
            let _ = self.addrs.remove(&Key::new(gone.0, gone.1));
        }
        for new in wanted.difference(&self.installed) {
            if let Err(e) = self.addrs.insert(&Key::new(new.0, new.1), &TRACED, 0) {
                log::warn!("cannot add a routed prefix to the drop filter: {e}");
            }
        }
        self.installed = wanted;
    }
}

/// The LPM key of a prefix: IPv6, IPv4 mapped into ::ffff:0:0/96.
pub(crate) fn lpm_key(prefix: &Prefix) -> (u32, [u8; 16]) {
    match prefix.addr {
        IpAddr::V4(a) => (96 + u32::from(prefix.len), a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => (u32::from(prefix.len), a.octets()),
    }
}

/// Unicast prefixes (not the default route) whose next hop is a traced interface. IPv6
/// link-local prefixes are left out: every interface has fe80::/64, so they would make every
/// link-local packet of the node relevant.
pub(crate) fn routed_prefixes(mirror: &Mirror, is_traced: impl Fn(u32) -> bool) -> HashSet<(u32, [u8; 16])> {
    let link_local = |p: &Prefix| matches!(p.addr, IpAddr::V6(a) if a.is_unicast_link_local() || a.is_multicast());
    mirror
        .routes
        .iter()
        .filter(|r| r.kind == RouteKind::Unicast && r.dst.len > 0 && !link_local(&r.dst))
        .filter(|r| r.nexthops.iter().any(|n| n.dev != 0 && is_traced(n.dev)))
        .map(|r| lpm_key(&r.dst))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpm_keys_map_ipv4_into_ipv6() {
        let (len, data) = lpm_key(&Prefix::new("10.244.1.5".parse().unwrap(), 32));
        assert_eq!(len, 128);
        assert_eq!(&data[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(&data[12..], &[10, 244, 1, 5]);
        let (len, data) = lpm_key(&Prefix::new("fd00:244::5".parse().unwrap(), 128));
        assert_eq!(len, 128);
        assert_eq!(data[0], 0xfd);
    }

    /// The running kernel's BTF (readable without privileges) with the tracepoint layout of
    /// 6.18 from a fixture: every offset the program needs is found.
    #[test]
    fn kernel_config_from_btf_and_a_tracepoint_layout() {
        let btf = KernelBtf::load().expect("kernel BTF");
        let format = tracefs::Format::parse("skb:kfree_skb", include_str!("../../test-data/kfree_skb-6.18.format"));
        let reasons = DropReasons::load(&btf).unwrap_or_default();
        let cfg = kernel_config(&btf, &format, &reasons).unwrap();
        assert_eq!(cfg.rec_skbaddr, 8);
        assert_eq!(cfg.rec_location, 16);
        assert_eq!(cfg.skb_head + 8, btf.member_offset("sk_buff", "data").unwrap());
        assert_eq!(cfg.nocarrier_bit, 2);
        if format.fields.contains_key("reason") {
            assert_ne!(cfg.rec_reason, DropConfig::NONE);
        }
    }

    /// A kernel before drop reasons (< 5.17): the record has no `reason`, the program is told
    /// so and reports locations only.
    #[test]
    fn record_without_reason_configures_location_only() {
        let btf = KernelBtf::load().expect("kernel BTF");
        let format = tracefs::Format::parse(
            "skb:kfree_skb",
            "\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;
",
        );
        let cfg = kernel_config(&btf, &format, &DropReasons::default()).unwrap();
        assert_eq!(cfg.rec_reason, DropConfig::NONE);
        assert_eq!(cfg.reason_consumed, DropConfig::NONE);
        assert_eq!(cfg.rec_protocol, 24);
    }
}
