//! Reading kernel memory at offsets the collector found in BTF (Rust eBPF has no CO-RE), and
//! deciding whether a device is one of the traced interfaces of the collector's namespace.

use aya_ebpf::helpers::bpf_probe_read_kernel;

use crate::{emit, ifaces};

/// A kernel read of `T` at `base + off`; a failure is counted (`errsite::KREAD`): with the
/// right offsets, reads of live kernel objects do not fail.
#[inline(always)]
pub fn read<T>(base: u64, off: u32) -> Result<T, ()> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const T) }.map_err(|err| {
        emit::count_error(tracer_common::errsite::KREAD, off, err.into());
    })
}

/// Whether `addr` can be read (nothing counted when it cannot): for words that are a pointer only
/// sometimes, as `skb->dev`, which shares its place with `dev_scratch` (a UDP socket's queue
/// keeps the datagram's size there) and with the `rbnode` of TCP's out-of-order queue.
#[inline(always)]
pub fn readable(addr: u64) -> bool {
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel(addr as *const u8) }.is_ok()
}

/// Offsets that lead from a `struct net_device *` to its ifindex and its namespace.
pub struct DevLayout {
    pub ifindex: u32,
    /// `net_device.nd_net` (a `struct net *`).
    pub nd_net: u32,
    /// `struct net` → `ns.inum`.
    pub net_inum: u32,
}

/// The inode number of `dev`'s network namespace.
#[inline(always)]
pub fn dev_netns(dev: u64, layout: &DevLayout) -> Result<u32, ()> {
    let net: u64 = read(dev, layout.nd_net)?;
    read(net, layout.net_inum)
}

/// `dev`'s ifindex when it is a traced interface of the namespace `netns`.
#[inline(always)]
pub fn traced_dev(dev: u64, layout: &DevLayout, netns: u32) -> Result<u32, ()> {
    if dev == 0 || dev_netns(dev, layout)? != netns {
        return Err(());
    }
    let ifindex: u32 = read(dev, layout.ifindex)?;
    if ifaces::is_traced(ifindex) { Ok(ifindex) } else { Err(()) }
}

/// Argument `n` of a BTF-typed context (fentry, fexit, tp_btf) as a plain number. The verifier
/// types such arguments as kernel pointers and refuses subtracting a run-time offset from them
/// (`container_of`); read through the helper, the value is an untyped scalar.
#[inline(always)]
pub fn btf_arg_scalar(ctx: &impl aya_ebpf::EbpfContext, n: usize) -> u64 {
    let args = ctx.as_ptr() as *const u64;
    // SAFETY: bpf_probe_read_kernel checks the address and fails instead of faulting; the
    // context of these programs is an array of u64 arguments.
    unsafe { bpf_probe_read_kernel(args.wrapping_add(n)) }.unwrap_or(0)
}
