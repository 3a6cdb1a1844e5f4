//! The two ends of a veth: whether a device is a veth, and its peer (`struct veth_priv`, the
//! device's private area). Lets the drop program keep what a pod's own end of a traced veth
//! drops, in the pod's namespace, and name the pod's end of a node-side drop.
//!
//! Offsets come from `DROP_CFG` (BTF of vmlinux or of the veth module); with `veth == 0`
//! nothing here reads anything.

use tracer_common::DropConfig;

use crate::kread::read;

/// "veth" and its NUL, as `rtnl_link_ops.kind` spells it, little-endian in a u64's low bytes.
const VETH_KIND: u64 = u64::from_le_bytes(*b"veth\0\0\0\0");
const VETH_KIND_MASK: u64 = 0xff_ffff_ffff;

/// The peer of `dev` when `dev` is a veth with a peer (0 otherwise, and when the layout is
/// unknown).
#[inline(always)]
pub fn peer(dev: u64, cfg: &DropConfig) -> u64 {
    if cfg.veth == 0 {
        return 0;
    }
    let Ok(ops) = read::<u64>(dev, cfg.dev_link_ops) else { return 0 };
    if ops == 0 {
        return 0;
    }
    let Ok(kind) = read::<u64>(ops, cfg.link_ops_kind) else { return 0 };
    // Only 5 bytes of the name are "veth\0"; the 3 after may be another string's.
    match read::<u64>(kind, 0) {
        Ok(name) if name & VETH_KIND_MASK == VETH_KIND => read::<u64>(dev, cfg.dev_priv + cfg.veth_peer).unwrap_or(0),
        _ => 0,
    }
}

/// The pod end of a traced veth as the drop record carries it.
pub struct PodEnd {
    pub ifindex: u32,
    pub flags: u32,
    pub carrier: u8,
    pub name: [u8; 16],
}

impl PodEnd {
    /// Reads `dev`'s index, flags, carrier and name.
    #[inline(always)]
    pub fn read(dev: u64, cfg: &DropConfig) -> Result<Self, ()> {
        let state: u64 = read(dev, cfg.dev_state)?;
        Ok(Self {
            ifindex: read(dev, cfg.dev_ifindex)?,
            flags: read(dev, cfg.dev_flags)?,
            carrier: u8::from(state & (1u64 << (cfg.nocarrier_bit & 63)) == 0),
            name: read(dev, cfg.dev_name)?,
        })
    }
}
