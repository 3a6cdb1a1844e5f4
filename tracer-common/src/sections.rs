//! The section bodies, one per hook family, with the values and bits of their fields.

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
    /// The journey this packet was on (`--journey`: its id from [`JourneySection::id`]), 0
    /// when it was not followed. The drop ends that journey.
    pub journey: u64,
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

const _: () = assert!(core::mem::size_of::<TcSection>() == 24);
const _: () = assert!(core::mem::size_of::<FrameSection>() == 8);
const _: () = assert!(core::mem::size_of::<DropSection>() == 72);
const _: () = assert!(core::mem::size_of::<JourneySection>() == 56);
const _: () = assert!(core::mem::size_of::<ArpSection>() == 32);
const _: () = assert!(core::mem::size_of::<NeighSection>() == 48);

/// `JourneySection::hop` values: where a followed packet (`--journey`) was seen.
pub mod hop {
    /// net:netif_receive_skb: the node received it on `ifindex`. A journey starts.
    pub const RECEIVE: u8 = 1;
    /// net:net_dev_queue of a packet nobody followed: the node's own stack sent it. A journey
    /// starts, queued to `ifindex`.
    pub const LOCAL: u8 = 2;
    /// net:net_dev_queue: queued for transmission on `ifindex` (after routing and NAT).
    pub const QUEUE: u8 = 3;
    /// net:net_dev_xmit: handed to `ifindex`'s driver (`rc`: what it returned). The journey
    /// ends: the packet left the node's namespace.
    pub const XMIT: u8 = 4;
    /// skb:consume_skb, or skb:kfree_skb with SKB_CONSUMED: freed after use, in the node
    /// (`location`: by which function, where the tracepoint says). The journey ends.
    pub const CONSUMED: u8 = 5;
    /// skb:skb_copy_datagram_iovec: a local socket read it. The journey ends.
    pub const SOCKET: u8 = 6;
    /// `ip_forward` (kprobe/fentry): the node decided to forward it (`ifindex`: where it came in).
    pub const FORWARD: u8 = 7;
    /// `ip_output` (kprobe/fentry): IPv4 output, routed (`ifindex`: the route's device).
    pub const OUTPUT: u8 = 8;
    /// `neigh_resolve_output` (kprobe/fentry): through a neighbour entry that is not yet (or no
    /// longer) confirmed (`addr`, `family`, `state`: its key and NUD state; `ifindex`: its device).
    pub const NEIGH: u8 = 9;
    /// `nf_hook_slow` (kprobe/fentry with their returns): a netfilter verdict other than accept
    /// (`state`: the hook, `family`: the protocol family, `rc`: the verdict, [`nf_verdict`]).
    pub const NF: u8 = 10;
}

/// [`hop::NF`] verdicts (`JourneySection::rc`), netfilter's own numbers.
pub mod nf_verdict {
    pub const DROP: i32 = 0;
    /// Stolen or queued (`nf_hook_slow` returned 0: the hook took the packet).
    pub const STOLEN: i32 = 2;
}

/// Where a followed packet was seen (`--journey`). A drop ends a journey too: it comes as a
/// drop record whose [`DropSection::journey`] names the journey.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JourneySection {
    /// The journey: one per packet, set where it started (its first hop's time and CPU).
    pub id: u64,
    /// The `struct sk_buff` address: how the hops find the journey.
    pub skbaddr: u64,
    /// The function that freed it ([`hop::CONSUMED`], where the tracepoint has one), else 0.
    pub location: u64,
    /// The device of the hop (0 for [`hop::CONSUMED`] and [`hop::SOCKET`]).
    pub ifindex: u32,
    /// `skb->len` at the hop.
    pub len: u32,
    /// [`hop::XMIT`]: the driver's return code; [`hop::NF`]: the verdict ([`nf_verdict`]).
    pub rc: i32,
    /// One of [`hop`].
    pub hop: u8,
    /// [`hop::NEIGH`]: the neighbour table's address family; [`hop::NF`]: the hook's protocol
    /// family (`NFPROTO_*`).
    pub family: u8,
    /// [`hop::NEIGH`]: the entry's NUD state; [`hop::NF`]: the hook (`NF_INET_*`).
    pub state: u8,
    pub _pad: u8,
    /// [`hop::NEIGH`]: the neighbour's address (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
}
