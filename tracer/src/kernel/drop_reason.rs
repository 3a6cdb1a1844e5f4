//! Drop reason names from the running kernel's BTF (`enum skb_drop_reason`): 130 values on
//! 6.18, 67 on 6.1, none before 5.17. Never a table baked in here.

use std::collections::HashMap;

use super::btf::{BtfError, KernelBtf};

const ENUM: &str = "skb_drop_reason";
const PREFIX: &str = "SKB_DROP_REASON_";

/// Value → short name (`NEIGH_FAILED`, `CONSUMED`).
#[derive(Debug, Default, Clone)]
pub struct DropReasons {
    names: HashMap<u32, String>,
}

impl DropReasons {
    pub fn load(btf: &KernelBtf) -> Result<Self, BtfError> {
        Ok(Self::from_values(btf.enum_values(ENUM)?))
    }

    pub fn from_values(values: impl IntoIterator<Item = (String, u32)>) -> Self {
        let names = values
            .into_iter()
            .map(|(name, v)| {
                let short = name.strip_prefix(PREFIX).or_else(|| name.strip_prefix("SKB_")).unwrap_or(&name);
                (v, short.to_owned())
            })
            .collect();
        Self { names }
    }

    /// How many reasons are named.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `SKB_CONSUMED`: a normal free that the tracepoint reports on 6.x, not a drop.
    pub fn consumed(&self) -> Option<u32> {
        self.value("CONSUMED")
    }

    pub fn value(&self, short: &str) -> Option<u32> {
        self.names.iter().find(|(_, n)| n.as_str() == short).map(|(v, _)| *v)
    }

    /// The short name, or `REASON_<n>` for values the enum does not name (subsystem reasons
    /// carry their subsystem in the high bits).
    pub fn name(&self, value: u32) -> String {
        self.names.get(&value).cloned().unwrap_or_else(|| format!("REASON_{value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_prefixes_and_names_unknowns() {
        let r = DropReasons::from_values([
            ("SKB_NOT_DROPPED_YET".to_owned(), 0),
            ("SKB_CONSUMED".to_owned(), 1),
            ("SKB_DROP_REASON_NOT_SPECIFIED".to_owned(), 2),
            ("SKB_DROP_REASON_NEIGH_FAILED".to_owned(), 58),
        ]);
        assert_eq!(r.name(58), "NEIGH_FAILED");
        assert_eq!(r.name(1), "CONSUMED");
        assert_eq!(r.consumed(), Some(1));
        assert_eq!(r.name(0x1_0005), "REASON_65541");
    }

    #[test]
    fn running_kernel_names_its_reasons() {
        let btf = KernelBtf::load().expect("kernel BTF");
        let r = DropReasons::load(&btf).unwrap();
        assert_eq!(r.name(2), "NOT_SPECIFIED");
        assert!(r.value("NEIGH_FAILED").is_some());
        assert!(r.value("IP_INNOROUTES").is_some());
    }
}
