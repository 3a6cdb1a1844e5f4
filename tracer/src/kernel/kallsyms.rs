//! Kernel text addresses to `symbol+0xoff`, from /proc/kallsyms read once at start.

use std::{fs, io};

pub const PATH: &str = "/proc/kallsyms";

/// Function symbols sorted by address.
#[derive(Debug, Default, Clone)]
pub struct Kallsyms {
    syms: Vec<(u64, String)>,
}

impl Kallsyms {
    /// Reads /proc/kallsyms. All addresses read as zero without CAP_SYSLOG (kptr_restrict):
    /// then nothing resolves and callers print the raw address.
    pub fn load() -> io::Result<Self> {
        Ok(Self::parse(&fs::read_to_string(PATH)?))
    }

    /// Parses `ffffffff81234560 T name [module]` lines; keeps text symbols (t/T/w/W).
    pub fn parse(text: &str) -> Self {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_ascii_whitespace();
                let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
                let ty = parts.next()?;
                let name = parts.next()?;
                (addr != 0 && matches!(ty, "t" | "T" | "w" | "W")).then(|| (addr, name.to_owned()))
            })
            .collect();
        syms.sort_unstable_by_key(|s| s.0);
        syms.dedup_by_key(|s| s.0);
        Self { syms }
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The symbol at or below `addr` and the offset into it.
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (start, name) = &self.syms[i];
        Some((name, addr - start))
    }

    /// `name+0xoff`, or the address in hex when it does not resolve.
    pub fn describe(&self, addr: u64) -> String {
        match self.resolve(addr) {
            Some((name, off)) => format!("{name}+0x{off:x}"),
            None => format!("0x{addr:x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
ffffffff81000000 T _stext
ffffffff81a00000 t ip_error
ffffffff81a00400 T ip_forward
0000000000000000 A fixed_percpu_data
ffffffff81b00000 D some_data
ffffffffc0001000 t veth_xmit\t[veth]
";

    #[test]
    fn resolves_to_the_symbol_below() {
        let k = Kallsyms::parse(FIXTURE);
        assert_eq!(k.resolve(0xffff_ffff_81a0_0123), Some(("ip_error", 0x123)));
        assert_eq!(k.resolve(0xffff_ffff_81a0_0400), Some(("ip_forward", 0)));
        assert_eq!(k.resolve(0xffff_ffff_c000_1010), Some(("veth_xmit", 0x10)));
        assert_eq!(k.resolve(0x1000), None);
        assert_eq!(k.describe(0xffff_ffff_81a0_0410), "ip_forward+0x10");
        assert_eq!(k.describe(0x1000), "0x1000");
        // Data symbols are not locations.
        assert_eq!(k.resolve(0xffff_ffff_81b0_0010), Some(("ip_forward", 0xf_fc10)));
    }

    /// A slice of a real /proc/kallsyms (Linux 6.18, as root) around `ip_rcv`.
    #[test]
    fn a_real_kallsyms_slice_resolves_inside_ip_rcv() {
        let k = Kallsyms::parse(include_str!("../../test-data/kallsyms-6.18.txt"));
        assert!(!k.is_empty());
        let addr = k.syms.iter().find(|s| s.1 == "ip_rcv").expect("ip_rcv in the fixture").0;
        assert_eq!(k.resolve(addr + 4), Some(("ip_rcv", 4)));
        assert_eq!(k.describe(addr + 0x10), "ip_rcv+0x10");
    }
}
