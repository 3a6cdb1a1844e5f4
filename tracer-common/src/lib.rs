//! Plain data shared by the eBPF programs and the `vethtrace` collector.
//!
//! Every record in the ring buffer starts with an [`EventHeader`]; its `kind` says which typed
//! section follows. All types are `#[repr(C)]` with explicit padding so that both sides agree on
//! the layout byte for byte; the size assertions at the bottom keep it that way.
#![no_std]

/// Version of the event layout; bumped whenever a section changes shape.
pub const EVENT_VERSION: u8 = 3;

/// `EventHeader::kind` values.
pub mod kind {
    /// A frame seen by the TC programs: [`crate::PacketEvent`].
    pub const PACKET: u8 = 1;
    /// A packet the kernel dropped (skb:kfree_skb): [`crate::DropEvent`].
    pub const DROP: u8 = 2;
    /// An ARP packet the host stack received or sent: [`crate::ArpEvent`].
    pub const ARP: u8 = 3;
    /// A neighbour entry that changed or held a packet: [`crate::NeighEvent`].
    pub const NEIGH: u8 = 4;
}

/// `PacketEvent::dir` values: the host's view of the interface.
pub mod dir {
    /// The host receives the frame (on a host-side cali: the pod sent it).
    pub const INGRESS: u8 = 0;
    /// The host transmits the frame (towards the pod).
    pub const EGRESS: u8 = 1;
}

/// `PacketEvent::fib_ret` values: the return codes of `bpf_fib_lookup` (BPF_FIB_LKUP_RET_*),
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

/// Common start of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u8,
    /// [`EVENT_VERSION`] of the writer.
    pub version: u8,
    /// Size of the whole record in bytes, header included.
    pub len: u16,
    /// CPU that produced the record.
    pub cpu: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the record was made.
    pub ts_ns: u64,
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

/// A frame seen by TC on a traced interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketEvent {
    pub header: EventHeader,
    pub ifindex: u32,
    /// `skb->len`: bytes of the frame from the MAC header on.
    pub len: u32,
    /// One of [`dir`].
    pub dir: u8,
    /// The kernel's forwarding verdict for this frame at TC ingress: one of [`fib`].
    pub fib_ret: u8,
    pub _pad: [u8; 2],
    /// `bpf_fib_lookup`'s egress interface (set for SUCCESS, NO_NEIGH and FRAG_NEEDED).
    pub fib_ifindex: u32,
    pub packet: Packet,
}

/// Bits of `DropEvent::flags`.
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
}

/// A packet the kernel dropped, from the skb:kfree_skb tracepoint (consumed packets are
/// skipped in the kernel). Only drops that concern a traced interface are sent (see `flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    pub header: EventHeader,
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
    pub packet: Packet,
}

/// Where the drop program finds things on the running kernel: the skb:kfree_skb record layout
/// (tracefs) and struct member offsets (BTF). The collector writes it into the one-entry
/// `DROP_CONFIG` array before attaching; until then (`enabled == 0`) the program does nothing.
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
}

impl DropConfig {
    pub const NONE: u32 = u32::MAX;
}

/// `ArpEvent::hook` values.
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
pub struct ArpEvent {
    pub header: EventHeader,
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

/// `NeighEvent::hook` values: where the neighbour was seen.
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

/// Bits of `NeighEvent::flags`.
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
pub struct NeighEvent {
    pub header: EventHeader,
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
/// whose devices count. Written by the collector into the one-entry `NEIGH_CONFIG` array
/// before attaching; until then (`enabled == 0`) the programs do nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighConfig {
    pub enabled: u32,
    /// `struct sk_buff` member offsets.
    pub skb_head: u32,
    pub skb_data: u32,
    pub skb_network_header: u32,
    pub skb_dev: u32,
    pub skb_protocol: u32,
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

/// Value of `TRACED_IFACES` entries (the map is a set keyed by ifindex).
pub const TRACED: u8 = 1;

/// Index of the single entry in the per-CPU `LOST` counter array.
pub const LOST_RESERVE: u32 = 0;
/// Entries in the per-CPU `LOST` counter array.
pub const LOST_SLOTS: u32 = 1;

const _: () = assert!(core::mem::size_of::<EventHeader>() == 16);
const _: () = assert!(core::mem::size_of::<Packet>() == 128);
const _: () = assert!(core::mem::size_of::<PacketEvent>() == 16 + 16 + 128);
const _: () = assert!(core::mem::offset_of!(PacketEvent, fib_ifindex) == 28);
const _: () = assert!(core::mem::size_of::<DropEvent>() == 16 + 32 + 128);
const _: () = assert!(core::mem::size_of::<DropConfig>() == 23 * 4);
const _: () = assert!(core::mem::offset_of!(DropEvent, packet) == 48);
const _: () = assert!(core::mem::size_of::<ArpEvent>() == 48);
const _: () = assert!(core::mem::size_of::<NeighEvent>() == 64);
const _: () = assert!(core::mem::size_of::<NeighConfig>() == 18 * 4);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `#[repr(C)]` integers and byte arrays with explicit padding: every bit pattern
    // is valid.
    unsafe impl aya::Pod for super::EventHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Packet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PacketEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DropConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArpEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NeighConfig {}
}
