//! Plain data shared by the eBPF programs and the `vethtrace` collector.
//!
//! Every record in the ring buffer is a [`RecordHeader`] followed by typed sections, each a
//! [`SectionHeader`] and a body (as Retis frames its events): TC and drop records carry their
//! frame's first bytes in a variable-length FRAME section, so a short packet costs a short
//! record. The collector checks every length, and skips and counts what it does not know.
//!
//! All types are `#[repr(C)]` with explicit padding so that both sides agree on the layout
//! byte for byte; the size assertions at the bottom keep it that way.
#![no_std]

pub mod filter;
pub mod traffic;

/// Version of the record framing ([`RecordHeader`], [`SectionHeader`]); each section has its
/// own version besides.
pub const RECORD_VERSION: u8 = 4;

/// `RecordHeader::kind` values: what the record is about. The sections say what it carries.
pub mod kind {
    /// A frame seen by the TC programs: sections TC and FRAME.
    pub const PACKET: u8 = 1;
    /// A packet the kernel dropped (skb:kfree_skb): sections DROP and FRAME.
    pub const DROP: u8 = 2;
    /// An ARP packet the host stack received or sent: section ARP.
    pub const ARP: u8 = 3;
    /// A neighbour entry that changed or held a packet: section NEIGH.
    pub const NEIGH: u8 = 4;
}

/// `SectionHeader::kind` values, each with its body type and version.
pub mod section {
    /// [`crate::TcSection`].
    pub const TC: u8 = 1;
    /// [`crate::DropSection`].
    pub const DROP: u8 = 2;
    /// [`crate::ArpSection`].
    pub const ARP: u8 = 3;
    /// [`crate::NeighSection`].
    pub const NEIGH: u8 = 4;
    /// [`crate::FrameSection`] followed by `caplen` bytes of the frame.
    pub const FRAME: u8 = 5;

    pub const TC_VERSION: u8 = 1;
    pub const DROP_VERSION: u8 = 2;
    pub const ARP_VERSION: u8 = 1;
    pub const NEIGH_VERSION: u8 = 1;
    pub const FRAME_VERSION: u8 = 1;
}

/// Shared protocol numbers (both sides parse and compare them).
pub mod proto {
    pub const ETH_P_IP: u16 = 0x0800;
    pub const ETH_P_ARP: u16 = 0x0806;
    pub const ETH_P_IPV6: u16 = 0x86dd;
    pub const ETH_P_8021Q: u16 = 0x8100;
    pub const ETH_P_8021AD: u16 = 0x88a8;
    pub const ETH_HLEN: usize = 14;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
    pub const IPPROTO_ICMP: u8 = 1;
    pub const IPPROTO_TCP: u8 = 6;
    pub const IPPROTO_UDP: u8 = 17;
    pub const IPPROTO_ICMPV6: u8 = 58;
}

/// Neighbour states (`NUD_*`).
pub mod nud {
    pub const NONE: u8 = 0x00;
    pub const INCOMPLETE: u8 = 0x01;
    pub const REACHABLE: u8 = 0x02;
    pub const STALE: u8 = 0x04;
    pub const DELAY: u8 = 0x08;
    pub const PROBE: u8 = 0x10;
    pub const FAILED: u8 = 0x20;
    pub const NOARP: u8 = 0x40;
    pub const PERMANENT: u8 = 0x80;
    /// The states in which `neigh->ha` holds the neighbour's address.
    pub const VALID: u8 = REACHABLE | STALE | DELAY | PROBE | NOARP | PERMANENT;
}

/// Names of the object's programs and maps: the loader looks them up by these, and a test
/// checks that the embedded object has every one.
pub mod names {
    pub const EVENTS_MAP: &str = "EVENTS";
    pub const LOST_MAP: &str = "LOST";
    pub const ERRORS_MAP: &str = "ERRORS";
    pub const SCRATCH_MAP: &str = "SCRATCH";
    pub const TRACED_IFACES_MAP: &str = "TRACED_IFACES";
    /// Per-CPU packets and bytes by interface ([`crate::traffic`]).
    pub const TRAFFIC_MAP: &str = "TRAFFIC";
    /// Load-time globals: the drop and the ARP/neighbour programs' kernel layouts.
    pub const DROP_CONFIG_GLOBAL: &str = "DROP_CFG";
    pub const NEIGH_CONFIG_GLOBAL: &str = "NEIGH_CFG";
    pub const DROP_ADDRS_MAP: &str = "DROP_ADDRS";
    /// Slot 0 non-zero: the TC programs tell ARP frames as ARP events (tracepoint mode).
    pub const ARP_FROM_TC_MAP: &str = "ARP_FROM_TC";
    /// Per-CPU cache of FIB verdicts ([`crate::fib::CACHE_SLOTS`] entries).
    pub const FIB_CACHE_MAP: &str = "FIB_CACHE";
    /// One u32: the generation the collector bumps on every netlink change it sees; a cached
    /// FIB verdict of an older generation is never used.
    pub const FIB_GEN_MAP: &str = "FIB_GEN";
    /// Load-time global: how long a cached FIB verdict is used, in ns (0: no cache).
    pub const FIB_CACHE_NS_GLOBAL: &str = "FIB_CACHE_NS";
    pub const INGRESS_PROG: &str = "vethtrace_in";
    pub const EGRESS_PROG: &str = "vethtrace_eg";
    /// The TC programs' second halves, tail-called by the translated expression on a match
    /// (not attached): [`crate::filter::jump`].
    pub const INGRESS_MATCHED_PROG: &str = "vethtrace_in_m";
    pub const EGRESS_MATCHED_PROG: &str = "vethtrace_eg_m";
    /// Program array of the translated expression and the programs it continues with.
    pub const FILTER_JUMP_MAP: &str = "FILTER_JUMP";
    pub const DROP_PROG: &str = "vethtrace_drop";
    /// Load-time global: bytes of each frame copied into its record (`--snaplen`).
    pub const SNAPLEN_GLOBAL: &str = "SNAPLEN";
    /// Load-time global: what the TC programs do ([`crate::tc_flags`]).
    pub const TC_FLAGS_GLOBAL: &str = "TC_FLAGS";
    /// Load-time global: the ring's wake-up threshold in bytes ([`crate::wakeup_bytes`]).
    pub const WAKEUP_GLOBAL: &str = "WAKEUP";
    pub const MAPS: &[&str] =
        &[
        EVENTS_MAP,
        LOST_MAP,
        ERRORS_MAP,
        SCRATCH_MAP,
        TRACED_IFACES_MAP,
        TRAFFIC_MAP,
        DROP_ADDRS_MAP,
        ARP_FROM_TC_MAP,
        FIB_CACHE_MAP,
        FIB_GEN_MAP,
        FILTER_JUMP_MAP,
    ];
}

/// Ring-buffer wake-ups: the programs wake the collector once this many bytes come to wait
/// (one wake-up per batch: each is an irq_work, a self-IPI, which in a VM costs more than many
/// records), and the collector polls every [`POLL_INTERVAL_MS`] for a quiet trickle.
pub const WAKEUP_BYTES: u64 = 256 * 1024;

/// The wake-up threshold for a ring of `ring_size` bytes: [`WAKEUP_BYTES`], or an eighth of a
/// smaller ring (so that a wake-up comes long before it is full).
pub const fn wakeup_bytes(ring_size: u32) -> u64 {
    let eighth = ring_size as u64 / 8;
    if eighth < WAKEUP_BYTES { eighth } else { WAKEUP_BYTES }
}
/// How often the collector reads the ring without a wake-up: the longest a lone event waits.
pub const POLL_INTERVAL_MS: u64 = 10;

/// Largest `--snaplen`.
pub const MAX_SNAPLEN: u32 = 65535;
/// Default `--snaplen`: the headers, as a node's operator wants by default.
pub const DEFAULT_SNAPLEN: u32 = 128;
/// Bytes of a per-CPU scratch record: the fixed part of the largest record, then a frame of
/// up to [`MAX_SNAPLEN`] bytes. Records with a frame are built there and copied into the ring
/// with their real length (the ring's reserve needs a constant size).
pub const SCRATCH_BYTES: usize = 128 + 65536;
/// Scratch slots per CPU: one per program that builds records there (TC ingress, TC egress,
/// drops), so that no two of them share one even if one interrupts another.
pub const SCRATCH_SLOTS: u32 = 3;
pub mod slot {
    pub const INGRESS: u32 = 0;
    pub const EGRESS: u32 = 1;
    pub const DROP: u32 = 2;
}

/// Start of every ring-buffer record; `len` covers the header and all sections.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// One of [`kind`].
    pub kind: u8,
    /// [`RECORD_VERSION`] of the writer.
    pub version: u8,
    /// CPU that produced the record.
    pub cpu: u16,
    /// Size of the whole record in bytes.
    pub len: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the record was made.
    pub ts_ns: u64,
}

/// Start of every section; `len` covers this header, the body and any trailing bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionHeader {
    /// One of [`section`].
    pub kind: u8,
    /// The section's own version (`section::*_VERSION`).
    pub version: u8,
    pub _pad: u16,
    pub len: u32,
}

impl SectionHeader {
    /// The header of a section whose body is `body` bytes long.
    #[inline(always)]
    pub const fn new(kind: u8, version: u8, body: usize) -> Self {
        Self { kind, version, _pad: 0, len: (core::mem::size_of::<Self>() + body) as u32 }
    }
}

/// `FrameSection::origin` values.
pub mod frame_origin {
    /// The bytes start at the MAC header.
    pub const MAC: u8 = 0;
    /// The MAC header was never set (a locally made packet dropped before L2): the bytes start
    /// at the network header, and the record's protocol is the ethertype.
    pub const NETWORK: u8 = 1;
}

/// The first bytes of the frame: `caplen` bytes follow this body.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSection {
    pub caplen: u32,
    /// One of [`frame_origin`].
    pub origin: u8,
    pub _pad: [u8; 3],
}

/// Bits of the `TC_FLAGS` load-time global: what the TC programs do for each frame.
pub mod tc_flags {
    /// Send a record (off with `--drops`/`--summary`: the TC programs then only mark the
    /// interfaces as traced for the drop program).
    pub const RECORD: u32 = 1 << 0;
    /// Ask the kernel's FIB on ingress (off when nothing shows the verdict).
    pub const FIB: u32 = 1 << 1;
    /// Without RECORD: still send ARP frames (`--drops`/`--summary`: the collector reports
    /// requests the node leaves unanswered, ARP_UNANSWERED).
    pub const ARP: u32 = 1 << 2;
    /// Count every frame (after the expression) in `TRAFFIC` (`--metrics`).
    pub const COUNT: u32 = 1 << 3;
    pub const ALL: u32 = RECORD | FIB;
}

/// Bits of `TcSection::flags`.
pub mod tcf {
    /// The driver took a VLAN tag off the frame into skb metadata: `vlan_tci` holds it.
    pub const ACCEL_VLAN: u8 = 1 << 0;
    /// The expression's translation checked the frame (not the interpreter).
    pub const TRANSLATED: u8 = 1 << 1;
}

/// A frame seen by TC on a traced interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcSection {
    pub ifindex: u32,
    /// `skb->len`: bytes of the frame from the MAC header on.
    pub len: u32,
    /// `bpf_fib_lookup`'s egress interface (set for SUCCESS, NO_NEIGH and FRAG_NEEDED).
    pub fib_ifindex: u32,
    /// One of [`dir`].
    pub dir: u8,
    /// The kernel's forwarding verdict for this frame at TC ingress: one of [`fib`].
    pub fib_ret: u8,
    /// Bits from [`tcf`].
    pub flags: u8,
    pub _pad0: u8,
    /// The VLAN tag in skb metadata (with [`tcf::ACCEL_VLAN`]).
    pub vlan_tci: u16,
    pub _pad1: [u8; 6],
}

/// The fixed part of a TC record; the frame's bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcRecord {
    pub header: RecordHeader,
    pub tc_hdr: SectionHeader,
    pub tc: TcSection,
    pub frame_hdr: SectionHeader,
    pub frame: FrameSection,
}

/// The fixed part of a drop record; the frame's bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropRecord {
    pub header: RecordHeader,
    pub drop_hdr: SectionHeader,
    pub drop: DropSection,
    pub frame_hdr: SectionHeader,
    pub frame: FrameSection,
}

/// An ARP record: one section.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpRecord {
    pub header: RecordHeader,
    pub arp_hdr: SectionHeader,
    pub arp: ArpSection,
}

/// A neighbour record: one section.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighRecord {
    pub header: RecordHeader,
    pub neigh_hdr: SectionHeader,
    pub neigh: NeighSection,
}

/// `TcSection::dir` values: the host's view of the interface.
pub mod dir {
    /// The host receives the frame (on a host-side cali: the pod sent it).
    pub const INGRESS: u8 = 0;
    /// The host transmits the frame (towards the pod).
    pub const EGRESS: u8 = 1;
}

/// `TcSection::fib_ret` values: the return codes of `bpf_fib_lookup` (BPF_FIB_LKUP_RET_*),
/// plus [`fib::NOT_RUN`] for frames it was not asked about (egress, non-IP).
pub mod fib {
    pub const SUCCESS: u8 = 0;
    pub const BLACKHOLE: u8 = 1;
    pub const UNREACHABLE: u8 = 2;
    pub const PROHIBIT: u8 = 3;
    pub const NOT_FWDED: u8 = 4;
    pub const FWD_DISABLED: u8 = 5;
    pub const UNSUPP_LWT: u8 = 6;
    pub const NO_NEIGH: u8 = 7;
    pub const FRAG_NEEDED: u8 = 8;
    pub const NOT_RUN: u8 = 0xff;

    /// Entries of the per-CPU verdict cache (direct-mapped by a hash of the lookup's inputs).
    pub const CACHE_SLOTS: u32 = 256;
    /// How long a cached verdict is used by default: the longest an event's verdict can lag a
    /// change the collector has not seen yet (every netlink change it sees voids the cache).
    pub const DEFAULT_CACHE_NS: u64 = 1_000_000;
}

/// Bits of `Packet::valid`: which parts of [`Packet`] hold parsed data.
pub mod valid {
    /// Ethernet header (MACs, ethertype).
    pub const L2: u16 = 1 << 0;
    /// Ethernet/IPv4 ARP addresses (`arp_sha`, `arp_spa`, `arp_tha`, `arp_tpa`).
    pub const ARP: u16 = 1 << 1;
    /// IPv4 header.
    pub const IPV4: u16 = 1 << 2;
    /// IPv6 header.
    pub const IPV6: u16 = 1 << 3;
    /// Ports (TCP or UDP).
    pub const PORTS: u16 = 1 << 4;
    /// TCP header beyond the ports (seq, ack, flags, window).
    pub const TCP: u16 = 1 << 5;
    /// UDP length.
    pub const UDP: u16 = 1 << 6;
    /// ICMP or ICMPv6 type and code.
    pub const ICMP: u16 = 1 << 7;
    /// ICMP echo id and sequence.
    pub const ICMP_ECHO: u16 = 1 << 8;
    /// Neighbour discovery target address (`nd_target`).
    pub const ND_TARGET: u16 = 1 << 9;
    /// ARP operation (`arp_op`), also for ARP of other hardware/protocol types.
    pub const ARP_OP: u16 = 1 << 10;
    /// The frame ended (or was malformed) before a header that its predecessor announced.
    pub const TRUNCATED: u16 = 1 << 15;
}

/// Bits of `Packet::ip_flags`.
pub mod ipf {
    /// IPv4 don't-fragment.
    pub const DF: u8 = 1 << 0;
    /// IPv4 more-fragments, or an IPv6 fragment header with M set.
    pub const MF: u8 = 1 << 1;
    /// A fragment: non-zero offset, MF set, or an IPv6 fragment header.
    pub const FRAGMENT: u8 = 1 << 2;
}

/// The parsed frame: L2, then ARP or IP, then L4. `valid` says which parts are meaningful.
/// Multi-byte fields are host byte order; addresses and MACs are in wire order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Bits from [`valid`].
    pub valid: u16,
    /// Ethertype after any VLAN tags.
    pub ethertype: u16,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// VLAN TCIs, outermost first (a tag the driver moved into skb metadata comes first).
    pub vlan: [u16; 2],
    /// How many entries of `vlan` are set.
    pub nvlan: u8,
    /// IP protocol (IPv6: the upper-layer header after extension headers).
    pub ip_proto: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Bits from [`ipf`].
    pub ip_flags: u8,
    /// IPv4 identification or IPv6 flow label.
    pub ip_id: u32,
    /// IPv4 addresses use the first 4 bytes.
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_win: u16,
    /// TCP flag byte (FIN 0x01 … CWR 0x80).
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub _pad0: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub udp_len: u16,
    /// Neighbour solicitation/advertisement target.
    pub nd_target: [u8; 16],
    pub arp_op: u16,
    pub arp_sha: [u8; 6],
    pub arp_spa: [u8; 4],
    pub arp_tha: [u8; 6],
    pub arp_tpa: [u8; 4],
    pub _pad1: [u8; 6],
}

/// Bits of `DropSection::flags`.
pub mod dropf {
    /// The tracepoint record has a `reason` field (Linux >= 5.17); otherwise `reason` is 0.
    pub const HAS_REASON: u8 = 1 << 0;
    /// Relevant because `skb->dev` is a traced interface.
    pub const BY_DEV: u8 = 1 << 1;
    /// Relevant because the source or destination address is routed to a traced interface.
    pub const BY_ADDR: u8 = 1 << 2;
    /// `skb->mac_header` was not set: the Ethernet header in `packet` is made up (zero MACs,
    /// ethertype from the record's `protocol`) and the frame was read from the network header.
    pub const NO_MAC: u8 = 1 << 3;
    /// `skb->dev` was set and `dev_flags`/`dev_carrier` were read from it.
    pub const HAS_DEV: u8 = 1 << 4;
    /// Relevant because the packet arrived through a traced interface (`skb->skb_iif`), e.g.
    /// a pod's packet SNATed and dropped on the uplink.
    pub const BY_IIF: u8 = 1 << 5;
    /// The traced veth's pod end is known: `pod_ifindex`, `pod_name`, `pod_flags` and
    /// `pod_carrier` describe it (the veth's peer, read from `struct veth_priv`).
    pub const HAS_POD: u8 = 1 << 6;
    /// Dropped on the pod end of a traced veth, in the pod's namespace: `ifindex` is then the
    /// traced (node-side) end's, `dev_flags`/`dev_carrier` the pod device's.
    pub const POD_SIDE: u8 = 1 << 7;
}

/// A packet the kernel dropped, from the skb:kfree_skb tracepoint (consumed packets are
/// skipped in the kernel). Only drops that concern a traced interface are sent (see `flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropSection {
    /// Kernel text address that dropped the packet (the record's `location`).
    pub location: u64,
    /// `enum skb_drop_reason` value (names from the kernel's BTF); 0 without [`dropf::HAS_REASON`].
    pub reason: u32,
    /// `skb->dev->ifindex`, 0 when the skb had no device.
    pub ifindex: u32,
    /// `skb->len`.
    pub len: u32,
    /// The record's `protocol` (ethertype, host byte order).
    pub protocol: u16,
    /// Bits from [`dropf`].
    pub flags: u8,
    /// 1 when the device had a carrier (`!__LINK_STATE_NOCARRIER`), else 0.
    pub dev_carrier: u8,
    /// `skb->dev->flags` (IFF_UP = 1).
    pub dev_flags: u32,
    pub _pad: u32,
    /// With [`dropf::HAS_POD`]: the pod end of the traced veth — its ifindex (in the pod's
    /// namespace), `flags` (IFF_UP = 1) and name (NUL-padded); `pod_carrier` as `dev_carrier`.
    pub pod_ifindex: u32,
    pub pod_flags: u32,
    pub pod_name: [u8; 16],
    pub pod_carrier: u8,
    pub _pad2: [u8; 7],
}

/// Where the drop program finds things on the running kernel: the skb:kfree_skb record layout
/// (tracefs) and struct member offsets (BTF). The loader sets it as the `DROP_CFG` global, a
/// constant to the verifier; without it (`enabled == 0`) the program does nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropConfig {
    pub enabled: u32,
    /// Record offsets of `skbaddr`, `location`, `protocol`.
    pub rec_skbaddr: u32,
    pub rec_location: u32,
    pub rec_protocol: u32,
    /// Record offset of `reason`, or [`DropConfig::NONE`] on kernels without drop reasons.
    pub rec_reason: u32,
    /// `SKB_CONSUMED` (a normal free, not a drop), or [`DropConfig::NONE`].
    pub reason_consumed: u32,
    /// `struct sk_buff` member offsets.
    pub skb_dev: u32,
    pub skb_head: u32,
    pub skb_len: u32,
    pub skb_tail: u32,
    pub skb_mac_header: u32,
    pub skb_network_header: u32,
    /// `struct net_device` member offsets.
    pub dev_ifindex: u32,
    pub dev_flags: u32,
    pub dev_state: u32,
    /// Bit number of `__LINK_STATE_NOCARRIER` in `net_device.state`.
    pub nocarrier_bit: u32,
    /// Offset of `net_device.nd_net` (a `struct net *`), and of the netns inode number in
    /// `struct net` (`ns.inum`).
    pub dev_nd_net: u32,
    pub net_inum: u32,
    /// The collector's netns inode number: drops on devices of other namespaces are skipped
    /// (an ifindex means something else there).
    pub netns_inum: u32,
    /// `SKB_DROP_REASON_NOT_SPECIFIED`, or [`DropConfig::NONE`].
    pub reason_not_specified: u32,
    /// Offset of `sk_buff.sk`, and of the socket's `struct net *` in `struct sock`
    /// (`__sk_common.skc_net`): the netns of a drop without a device (a socket's queue).
    pub skb_sk: u32,
    pub sk_net: u32,
    /// Offset of `sk_buff.skb_iif`: the interface the packet arrived on.
    pub skb_iif: u32,
    /// 1 when the veth layout below was found (vmlinux or the veth module's BTF): drops on
    /// the pod end of a traced veth are then kept. 0: pod-side drops are off.
    pub veth: u32,
    /// `net_device.rtnl_link_ops` and `rtnl_link_ops.kind` (a `const char *`, "veth").
    pub dev_link_ops: u32,
    pub link_ops_kind: u32,
    /// `netdev_priv(dev) - dev`: `ALIGN(sizeof(struct net_device), NETDEV_ALIGN)`.
    pub dev_priv: u32,
    /// `veth_priv.peer` (a `struct net_device *`).
    pub veth_peer: u32,
    /// `net_device.name` (16 bytes).
    pub dev_name: u32,
}

impl DropConfig {
    pub const NONE: u32 = u32::MAX;
    /// Before the loader sets it: the program does nothing.
    // SAFETY: all-zero is a valid value of a struct of integers.
    pub const DISABLED: Self = unsafe { core::mem::zeroed() };
}

/// `ArpSection::hook` values.
pub mod arp_hook {
    /// The host stack received the ARP packet (`arp_rcv`).
    pub const RECV: u8 = 0;
    /// The host sent it (`arp_xmit`): its proxy replies and its own requests.
    pub const SEND: u8 = 1;
}

/// An Ethernet/IPv4 ARP packet the host's stack received or sent on a traced interface. ARP of
/// other hardware or protocol types is not reported.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpSection {
    /// `skb->dev->ifindex`.
    pub ifindex: u32,
    /// One of [`arp_hook`].
    pub hook: u8,
    pub _pad0: u8,
    /// ARP operation (1 request, 2 reply).
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
    pub _pad1: [u8; 4],
}

/// `NeighSection::hook` values: where the neighbour was seen.
pub mod neigh_hook {
    /// `__neigh_update` (or the neigh:neigh_update tracepoint): an ARP/ND answer, a netlink
    /// change (`ip neigh …`), or the stack confirming the entry. `new_state` is the requested one.
    pub const UPDATE: u8 = 0;
    /// `neigh_timer_handler`: the entry's timer moved it (REACHABLE → STALE, PROBE or
    /// INCOMPLETE → FAILED, …). `new_state` is the state after the handler.
    pub const TIMER: u8 = 1;
    /// `__neigh_event_send`: a packet needs the entry (it starts resolution, or waits for it).
    /// `new_state` is the state afterwards.
    pub const RESOLVE: u8 = 2;
}

/// Bits of `NeighSection::flags`.
pub mod neighf {
    /// `old_state` was read before the change (see also [`OLD_SEEN`]; with neither it is unknown).
    pub const OLD_KNOWN: u8 = 1 << 0;
    /// `lladdr` holds a link-layer address.
    pub const HAS_LLADDR: u8 = 1 << 1;
    /// RESOLVE: the packet was not sent now (queued until the neighbour answers, or dropped).
    pub const HELD: u8 = 1 << 2;
    /// `old_state` is the last state a hook saw for the entry (tracepoint mode).
    pub const OLD_SEEN: u8 = 1 << 3;
}

/// A neighbour entry on a traced interface that changed state or address, or held a packet
/// while it resolved. States are NUD_* bits (INCOMPLETE 0x01 … PERMANENT 0x80, NONE 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighSection {
    /// `neigh->dev->ifindex`.
    pub ifindex: u32,
    /// One of [`neigh_hook`].
    pub hook: u8,
    /// AF_INET (2) or AF_INET6 (10): `neigh->tbl->family`.
    pub family: u8,
    pub old_state: u8,
    pub new_state: u8,
    /// Bits from [`neighf`].
    pub flags: u8,
    pub _pad0: [u8; 3],
    /// UPDATE: the NEIGH_UPDATE_F_* flags. RESOLVE: the return code (0 sent, 1 held).
    pub detail: u32,
    /// UPDATE: the netlink port id of the process that asked (0: the kernel itself).
    pub pid: u32,
    /// The neighbour's address (`primary_key`; IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// UPDATE: the new link-layer address when given, else the entry's; otherwise the entry's.
    pub lladdr: [u8; 6],
    pub _pad1: [u8; 6],
}

/// Where the ARP and neighbour programs find things on the running kernel (BTF offsets), and
/// whose devices count. The loader sets it as the `NEIGH_CFG` global, a constant to the
/// verifier; without it (`enabled == 0`) the programs do nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighConfig {
    pub enabled: u32,
    /// `struct sk_buff` member offsets.
    pub skb_head: u32,
    pub skb_data: u32,
    pub skb_network_header: u32,
    pub skb_dev: u32,
    /// `struct net_device` member offsets, and of the netns inode number in `struct net`.
    pub dev_ifindex: u32,
    pub dev_nd_net: u32,
    pub net_inum: u32,
    /// The collector's netns inode number: devices of other namespaces are skipped.
    pub netns_inum: u32,
    /// `struct neighbour` member offsets.
    pub neigh_dev: u32,
    pub neigh_nud_state: u32,
    pub neigh_ha: u32,
    pub neigh_primary_key: u32,
    pub neigh_tbl: u32,
    pub neigh_timer: u32,
    /// `struct neigh_table.family`.
    pub tbl_family: u32,
    pub _pad: u32,
}

/// Where an eBPF program failed in a way that only a wrong layout or a kernel change explains:
/// slots of the per-CPU `ERRORS` counters, which the collector reports (a wrong BTF offset
/// must not look like "no drops").
pub mod errsite {
    /// `bpf_probe_read_kernel` at a BTF offset failed (drop, ARP and neighbour programs).
    pub const KREAD: u32 = 0;
    /// `bpf_skb_load_bytes` of a frame's first bytes failed in a TC program.
    pub const TC_COPY: u32 = 1;
    /// Copying a dropped frame from kernel memory failed.
    pub const DROP_COPY: u32 = 2;
    pub const SLOTS: u32 = 3;
    /// What each slot counts, for messages.
    pub const NAMES: [&str; SLOTS as usize] =
        ["kernel memory reads at BTF offsets", "TC frame copies (bpf_skb_load_bytes)", "dropped-frame copies"];
}

impl NeighConfig {
    /// Before the loader sets it: the programs do nothing.
    // SAFETY: all-zero is a valid value of a struct of integers.
    pub const DISABLED: Self = unsafe { core::mem::zeroed() };
}

/// Value of `TRACED_IFACES` entries (the map is a set keyed by ifindex).
pub const TRACED: u8 = 1;

/// Index of the single entry in the per-CPU `LOST` counter array.
pub const LOST_RESERVE: u32 = 0;
/// Entries in the per-CPU `LOST` counter array.
pub const LOST_SLOTS: u32 = 1;

const _: () = assert!(core::mem::size_of::<RecordHeader>() == 16);
const _: () = assert!(core::mem::size_of::<SectionHeader>() == 8);
const _: () = assert!(core::mem::size_of::<Packet>() == 128);
const _: () = assert!(core::mem::size_of::<TcSection>() == 24);
const _: () = assert!(core::mem::size_of::<FrameSection>() == 8);
const _: () = assert!(core::mem::size_of::<TcRecord>() == 16 + 8 + 24 + 8 + 8);
const _: () = assert!(core::mem::size_of::<DropSection>() == 64);
const _: () = assert!(core::mem::size_of::<DropRecord>() == 16 + 8 + 64 + 8 + 8);
const _: () = assert!(core::mem::size_of::<DropConfig>() == 29 * 4);
const _: () = assert!(core::mem::size_of::<ArpSection>() == 32);
const _: () = assert!(core::mem::size_of::<NeighSection>() == 48);
const _: () = assert!(core::mem::size_of::<NeighConfig>() == 17 * 4);
const _: () = assert!(core::mem::size_of::<DropRecord>() <= 128 && core::mem::size_of::<TcRecord>() <= 128);
const _: () = assert!(wakeup_bytes(8 << 20) == WAKEUP_BYTES && wakeup_bytes(4096) == 512);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` integers and byte arrays with explicit padding: every bit pattern
    // is valid.
    unsafe impl aya::Pod for super::RecordHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SectionHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Packet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TcSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FrameSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighSection {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TcRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighRecord {}
}
