//! The object's program and map names, and the slots and values of its maps.

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
    /// The journey programs (`--journey`), one per tracepoint, and what they share.
    pub const JOURNEY_RECEIVE_PROG: &str = "vethtrace_j_rcv";
    pub const JOURNEY_QUEUE_PROG: &str = "vethtrace_j_queue";
    pub const JOURNEY_XMIT_PROG: &str = "vethtrace_j_xmit";
    pub const JOURNEY_CONSUME_PROG: &str = "vethtrace_j_consume";
    pub const JOURNEY_SOCKET_PROG: &str = "vethtrace_j_socket";
    /// Journeys under way, by skb address (value: the journey's id).
    pub const JOURNEYS_MAP: &str = "JOURNEYS";
    pub const JOURNEY_CONFIG_GLOBAL: &str = "JOURNEY_CFG";
    pub const HOPS_CONFIG_GLOBAL: &str = "HOPS_CFG";
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
        JOURNEYS_MAP,
    ];
}

/// Bytes of a per-CPU scratch record: the fixed part of the largest record, then a frame of
/// up to [`crate::MAX_SNAPLEN`] bytes. Records with a frame are built there and copied into the ring
/// with their real length (the ring's reserve needs a constant size).
pub const SCRATCH_BYTES: usize = 128 + 65536;
/// Scratch slots per CPU: one per program that builds records there (TC ingress, TC egress,
/// drops), so that no two of them share one even if one interrupts another.
pub const SCRATCH_SLOTS: u32 = 3;
pub mod slot {
    pub const INGRESS: u32 = 0;
    pub const EGRESS: u32 = 1;
    /// The drop and journey programs: tracepoint programs, which never nest on a CPU (the
    /// kernel skips a tracing program while another runs there).
    pub const DROP: u32 = 2;
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

/// Value of `TRACED_IFACES` entries (the map is a set keyed by ifindex).
pub const TRACED: u8 = 1;

/// Slot of the per-CPU `LOST` counters: records lost because the ring was full.
pub const LOST_RESERVE: u32 = 0;
/// Slot of the per-CPU `LOST` counters: packets not followed because the journey map was full.
pub const LOST_JOURNEYS: u32 = 1;
/// Entries in the per-CPU `LOST` counter array.
pub const LOST_SLOTS: u32 = 2;
