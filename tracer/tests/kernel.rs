//! The kernel facts vethtrace reads at run time, on the running kernel (root: tracefs and
//! kallsyms addresses need it), against what the kernel itself prints.

mod common;

use std::fs;

use tracer::kernel::{btf::KernelBtf, drop_reason::DropReasons, kallsyms::Kallsyms, tracefs};

#[test]
fn the_kfree_skb_layout_is_read_from_tracefs() {
    common::require_root();
    let f = tracefs::format("skb", "kfree_skb").expect("tracefs");
    assert_eq!(f.field("skbaddr").unwrap().offset, 8);
    assert!(f.fields.contains_key("location"));
    // The same offsets as the format file says, read here by another route.
    let text = fs::read_to_string("/sys/kernel/tracing/events/skb/kfree_skb/format")
        .or_else(|_| fs::read_to_string("/sys/kernel/debug/tracing/events/skb/kfree_skb/format"))
        .expect("the format file");
    let protocol_line = text.lines().find(|l| l.contains(" protocol;")).expect("protocol field");
    let offset: u32 = protocol_line.split("offset:").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert_eq!(f.field("protocol").unwrap().offset, offset);
}

#[test]
fn kallsyms_resolves_inside_ip_rcv() {
    common::require_root();
    let k = Kallsyms::load().expect("read /proc/kallsyms");
    assert!(!k.is_empty(), "/proc/kallsyms shows no addresses");
    let text = fs::read_to_string("/proc/kallsyms").unwrap();
    let line = text.lines().find(|l| l.ends_with(" ip_rcv")).expect("ip_rcv in kallsyms");
    let addr = u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap();
    assert_eq!(k.resolve(addr + 4), Some(("ip_rcv", 4)));
}

/// Where skb:kfree_skb carries a reason, the names come from BTF; a kernel without the field
/// (< 5.17, e.g. 5.10) has no `enum skb_drop_reason` either, and vethtrace must not find one.
#[test]
fn drop_reasons_come_from_the_kernels_btf() {
    common::require_root();
    let btf = KernelBtf::load().expect("kernel BTF");
    let format = tracefs::format("skb", "kfree_skb").expect("tracefs");
    if !format.fields.contains_key("reason") {
        assert!(DropReasons::load(&btf).is_err(), "enum skb_drop_reason on a kernel whose kfree_skb has no reason");
        return;
    }
    let reasons = DropReasons::load(&btf).expect("enum skb_drop_reason");
    assert!(reasons.len() > 60, "only {} reasons", reasons.len());
    assert!(reasons.value("NEIGH_FAILED").is_some() && reasons.value("NOT_SPECIFIED").is_some());
}
