//! What the loader tells the programs through load-time globals: the TC programs' flags, the
//! drop and ARP/neighbour programs' kernel layouts, the ring's wake-up threshold, the snaplen.

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

impl NeighConfig {
    /// Before the loader sets it: the programs do nothing.
    // SAFETY: all-zero is a valid value of a struct of integers.
    pub const DISABLED: Self = unsafe { core::mem::zeroed() };
}

/// Where the journey programs (`--journey`) find the skb in their tracepoints' records
/// (tracefs). They read the skb and its device with `DropConfig`'s offsets. Without it
/// (`enabled == 0`) they do nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JourneyConfig {
    pub enabled: u32,
    /// `skbaddr` in net:netif_receive_skb, net:net_dev_queue, net:net_dev_xmit,
    /// skb:consume_skb and skb:skb_copy_datagram_iovec.
    pub rcv_skbaddr: u32,
    pub queue_skbaddr: u32,
    pub xmit_skbaddr: u32,
    /// `rc` in net:net_dev_xmit.
    pub xmit_rc: u32,
    pub consume_skbaddr: u32,
    /// `location` in skb:consume_skb (6.x), or [`DropConfig::NONE`].
    pub consume_location: u32,
    pub copy_skbaddr: u32,
}

impl JourneyConfig {
    /// Before the loader sets it: the programs do nothing.
    // SAFETY: all-zero is a valid value of a struct of integers.
    pub const DISABLED: Self = unsafe { core::mem::zeroed() };
}

/// What the journeys' kprobe/fentry hops read besides the skb and neighbour offsets
/// ([`DropConfig`], [`NeighConfig`]); all zero (off) in tracepoint mode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopsConfig {
    pub enabled: u32,
    /// `nf_hook_state.hook` (an `unsigned int` before 5.15, a `u8` since: its low byte either
    /// way) and `nf_hook_state.pf`.
    pub nf_state_hook: u32,
    pub nf_state_pf: u32,
    /// `sk_buff._skb_refdst` (the route, its low bit a flag) and `dst_entry.dev`.
    pub skb_refdst: u32,
    pub dst_dev: u32,
    pub _pad: u32,
}

impl HopsConfig {
    /// Before the loader sets it: the programs do nothing.
    // SAFETY: all-zero is a valid value of a struct of integers.
    pub const DISABLED: Self = unsafe { core::mem::zeroed() };
}

/// Packets followed at once (`--journey`): the kernel's map of journeys by skb. A packet that
/// finds it full is not followed, and counted (`LOST` slot [`crate::LOST_JOURNEYS`]).
pub const JOURNEY_ENTRIES: u32 = 16384;

const _: () = assert!(core::mem::size_of::<JourneyConfig>() == 8 * 4);
const _: () = assert!(core::mem::size_of::<HopsConfig>() == 6 * 4);
const _: () = assert!(core::mem::size_of::<DropConfig>() == 29 * 4);
const _: () = assert!(core::mem::size_of::<NeighConfig>() == 17 * 4);
const _: () = assert!(wakeup_bytes(8 << 20) == WAKEUP_BYTES && wakeup_bytes(4096) == 512);
