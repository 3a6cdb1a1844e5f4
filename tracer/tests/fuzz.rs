//! Property-based fuzzing of the parsers that read what the kernel hands vethtrace: tracefs
//! `format` files, /proc/kallsyms and BTF. Arbitrary and mutated inputs; the property is "no
//! panic" plus what each parser promises (a parsed field is named in the text, a resolved
//! symbol is one of the file's). Ring-buffer records are fuzzed inside the crate
//! (tracer/src/fuzz.rs), the netlink side next to the mirror (tracer/src/mirror/fuzz.rs).
//!
//! Cases per property: PROPTEST_CASES, else 5 000 (about half a minute in a debug build). A longer run:
//! `PROPTEST_CASES=N cargo test --release -p tracer --test fuzz` (README "Tests").

use std::io::Write as _;

use proptest::{collection::vec, prelude::*, test_runner::Config};
use tracer::kernel::{btf::KernelBtf, kallsyms::Kallsyms, tracefs::Format};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A real-looking tracefs format file for skb:kfree_skb, to mutate.
const KFREE_SKB: &str = "name: kfree_skb\nID: 1505\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;\n\
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n\n\
print fmt: \"skbaddr=%p\"\n";

/// Flips, drops and inserts bytes of `base` at the given positions.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(at, op, byte) in edits {
        let at = if out.is_empty() { 0 } else { at % out.len() };
        match op % 3 {
            0 if !out.is_empty() => out[at] ^= byte | 1,
            1 if !out.is_empty() => {
                out.remove(at);
            }
            _ => out.insert(at, byte),
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

/// A small valid BTF blob: `int`, `struct sk_buff { int len; }`, `enum skb_drop_reason { X = 2 }`.
fn tiny_btf() -> Vec<u8> {
    let strings = b"\0int\0sk_buff\0len\0skb_drop_reason\0SKB_DROP_REASON_X\0";
    let at = |s: &[u8]| strings.windows(s.len()).position(|w| w == s).unwrap() as u32;
    let mut types = Vec::new();
    let mut word = |v: u32| types.extend_from_slice(&v.to_le_bytes());
    // [1] INT "int": name, info (kind 1), size 4, encoding: signed, 32 bits.
    word(at(b"int\0"));
    word(1 << 24);
    word(4);
    word((1 << 24) | 32);
    // [2] STRUCT "sk_buff" size 4, one member "len" of type 1 at bit 0.
    word(at(b"sk_buff\0"));
    word((4 << 24) | 1);
    word(4);
    word(at(b"len\0"));
    word(1);
    word(0);
    // [3] ENUM "skb_drop_reason" size 4, one value.
    word(at(b"skb_drop_reason\0"));
    word((6 << 24) | 1);
    word(4);
    word(at(b"SKB_DROP_REASON_X\0"));
    word(2);
    let mut blob = Vec::new();
    blob.extend_from_slice(&0xeb9f_u16.to_le_bytes());
    blob.extend_from_slice(&[1, 0]);
    for v in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(strings);
    blob
}

/// Parses `bytes` as BTF from a file (the only way vethtrace reads BTF) and asks it what
/// vethtrace asks the kernel's.
fn parse_btf(bytes: &[u8]) -> Option<(Result<u32, String>, Result<usize, String>)> {
    let (path, mut file) = tempfile();
    file.write_all(bytes).unwrap();
    let btf = KernelBtf::from_file(&path);
    let _ = std::fs::remove_file(&path);
    let btf = btf.ok()?;
    let offset = btf.member_offset("sk_buff", "len").map_err(|e| e.to_string());
    let reasons = btf.enum_values("skb_drop_reason").map(|v| v.len()).map_err(|e| e.to_string());
    Some((offset, reasons))
}

fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!("vtfuzz-btf-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

#[test]
fn the_tiny_btf_is_valid() {
    let (offset, reasons) = parse_btf(&tiny_btf()).expect("the fixture parses");
    assert_eq!(offset, Ok(0));
    assert_eq!(reasons, Ok(1));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tracefs_format_parsing_never_panics(edits in edits(), junk in ".{0,200}") {
        let mutated = String::from_utf8_lossy(&mutate(KFREE_SKB.as_bytes(), &edits)).into_owned();
        for text in [mutated, junk] {
            let format = Format::parse("skb/kfree_skb", &text);
            for name in format.fields.keys() {
                prop_assert!(text.contains(name.as_str()), "{name} not in the text");
            }
        }
    }

    #[test]
    fn kallsyms_parsing_never_panics(lines in vec("[0-9a-f]{0,17} [tTwWdD] [a-z_]{1,12}( \\[[a-z]{1,6}\\])?", 0..40), junk in ".{0,200}", addr in any::<u64>()) {
        for text in [lines.join("\n"), junk] {
            let syms = Kallsyms::parse(&text);
            if let Some((name, off)) = syms.resolve(addr) {
                prop_assert!(text.contains(name));
                prop_assert!(off <= addr);
            }
            let _ = syms.describe(addr);
        }
    }

    #[test]
    fn btf_parsing_never_panics(edits in edits(), junk in vec(any::<u8>(), 0..200)) {
        let _ = parse_btf(&mutate(&tiny_btf(), &edits));
        let _ = parse_btf(&junk);
    }
}
