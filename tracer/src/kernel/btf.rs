//! Struct member offsets and enum names from the kernel's BTF (`/sys/kernel/btf/vmlinux`).

use std::path::Path;

use btf_rs::{Btf, Type};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("this kernel has no BTF ({VMLINUX} is missing): vethtrace needs CONFIG_DEBUG_INFO_BTF")]
    Missing,
    #[error("reading kernel BTF: {0}")]
    Parse(String),
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF has no enum {0}")]
    NoEnum(String),
}

/// The parsed kernel BTF.
pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// Parses the running kernel's BTF.
    pub fn load() -> Result<Self, BtfError> {
        if !Path::new(VMLINUX).exists() {
            return Err(BtfError::Missing);
        }
        Self::from_file(VMLINUX)
    }

    /// The BTF of kernel module `module` (`/sys/kernel/btf/<module>`, split BTF on top of
    /// vmlinux's), `None` when the module is not loaded or has no BTF.
    pub fn module(&self, module: &str) -> Option<Self> {
        let path = Path::new(VMLINUX).with_file_name(module);
        Btf::from_split_file(path, &self.btf).ok().map(|btf| Self { btf })
    }

    /// `sizeof(struct strukt)`.
    pub fn struct_size(&self, strukt: &str) -> Result<u32, BtfError> {
        let size = self.find_struct(strukt)?.size();
        u32::try_from(size).map_err(|_| BtfError::Parse(format!("struct {strukt} is {size} bytes")))
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        Btf::from_file(path).map(|btf| Self { btf }).map_err(|e| BtfError::Parse(e.to_string()))
    }

    /// Byte offset of `member` in `struct strukt`, looking through anonymous structs and unions
    /// the way C does (`skb->dev` sits in an anonymous union).
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32, BtfError> {
        let no_member = || BtfError::NoMember { strukt: strukt.into(), member: member.into() };
        let s = self.find_struct(strukt)?;
        self.find_member(&s, member)?.map(|bits| bits / 8).ok_or_else(no_member)
    }

    fn find_struct(&self, name: &str) -> Result<btf_rs::Struct, BtfError> {
        let types = self.btf.resolve_types_by_name(name).map_err(|_| BtfError::NoStruct(name.into()))?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) if !s.members.is_empty() => Some(s),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoStruct(name.into()))
    }

    /// Bit offset of `member` inside `s`, recursing into anonymous members.
    fn find_member(&self, s: &btf_rs::Struct, member: &str) -> Result<Option<u32>, BtfError> {
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            if name == member {
                return Ok(Some(m.bit_offset()));
            }
            if name.is_empty()
                && let Some(inner) = self.anonymous_aggregate(m)
                && let Some(off) = self.find_member(&inner, member)?
            {
                return Ok(Some(m.bit_offset() + off));
            }
        }
        Ok(None)
    }

    fn anonymous_aggregate(&self, m: &btf_rs::Member) -> Option<btf_rs::Struct> {
        let mut t = self.btf.resolve_chained_type(m).ok()?;
        // Follow typedefs and qualifiers to the struct or union.
        for _ in 0..8 {
            match t {
                Type::Struct(s) | Type::Union(s) => return Some(s),
                Type::Typedef(_) | Type::Const(_) | Type::Volatile(_) => {
                    t = self.btf.resolve_chained_type(t.as_btf_type()?).ok()?;
                }
                _ => return None,
            }
        }
        None
    }

    /// Offset of the namespace inode number in `struct net` (`net->ns.inum`): how the programs
    /// tell whose namespace a device belongs to.
    pub fn net_inum_offset(&self) -> Result<u32, BtfError> {
        Ok(self.member_offset("net", "ns")? + self.member_offset("ns_common", "inum")?)
    }

    /// Names and values of `enum name` (e.g. `skb_drop_reason`).
    pub fn enum_values(&self, name: &str) -> Result<Vec<(String, u32)>, BtfError> {
        let types = self.btf.resolve_types_by_name(name).map_err(|_| BtfError::NoEnum(name.into()))?;
        let e = types
            .into_iter()
            .find_map(|t| match t {
                Type::Enum(e) => Some(e),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoEnum(name.into()))?;
        Ok(e.members
            .iter()
            .map(|m| (self.btf.resolve_name(m).unwrap_or_default(), m.val()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's BTF is the fixture: both machines this runs on (6.18 here, 6.1 in
    /// the VM) have it. The expected values are facts of struct sk_buff that hold on both.
    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = KernelBtf::load().expect("this test needs /sys/kernel/btf/vmlinux");
        let data = btf.member_offset("sk_buff", "data").unwrap();
        let head = btf.member_offset("sk_buff", "head").unwrap();
        // `head` and `data` are adjacent pointers in every kernel since 2.6.
        assert_eq!(data, head + 8);
        // `dev` lives in an anonymous union near the start of the struct.
        let dev = btf.member_offset("sk_buff", "dev").unwrap();
        assert!(dev > 0 && dev < 64, "sk_buff.dev at {dev}");
        assert!(matches!(btf.member_offset("sk_buff", "no_such_member"), Err(BtfError::NoMember { .. })));
        assert!(matches!(btf.member_offset("no_such_struct_xyz", "x"), Err(BtfError::NoStruct(_))));
    }

    #[test]
    fn reads_enums() {
        let btf = KernelBtf::load().expect("this test needs /sys/kernel/btf/vmlinux");
        let states = btf.enum_values("skb_drop_reason").unwrap();
        assert!(states.iter().any(|(n, v)| n == "SKB_DROP_REASON_NOT_SPECIFIED" && *v == 2));
    }
}
