//! An uncompressed initramfs: the cpio "newc" format the kernel unpacks (see the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst). Left uncompressed on purpose:
//! it is a few megabytes, and decompressing under TCG costs more than reading them.

/// An archive built in memory; entries are owned by root.
#[derive(Default)]
pub(super) struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

const DIR: u32 = 0o040_000;
const FILE: u32 = 0o100_000;

impl Archive {
    pub(super) fn dir(&mut self, path: &str) {
        self.entry(path, DIR | 0o755, 2, &[]);
    }

    /// A regular file; `mode` holds the permission bits (0o755 for programs).
    pub(super) fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, FILE | mode, 1, data);
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, 0, 0, 0);
        self.bytes
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) {
        self.next_inode += 1;
        let size = u32::try_from(data.len()).expect("initramfs files stay below 4 GiB");
        self.header(path.trim_start_matches('/'), self.next_inode, mode, nlink, size);
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn header(&mut self, name: &str, inode: u32, mode: u32, nlink: u32, size: u32) {
        let name_size = u32::try_from(name.len() + 1).expect("short names");
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [inode, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_size, 0];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let mut a = Archive::default();
        a.file("/init", 0o755, b"#!x\n");
        let bytes = a.finish();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert!(header.starts_with("070701"));
        // mode: regular file, 0755
        assert_eq!(&header[14..22], "000081ED");
        // file size 4, name size 5 ("init" + NUL)
        assert_eq!(&header[54..62], "00000004");
        assert_eq!(&header[94..102], "00000005");
        assert_eq!(&bytes[110..115], b"init\0");
        // 110 + 5 = 115, padded to 116; then 4 bytes of data.
        assert_eq!(&bytes[116..120], b"#!x\n");
        assert!(std::str::from_utf8(&bytes[120..]).unwrap_or_default().contains("TRAILER!!!"));
        assert_eq!(bytes.len() % 4, 0);
    }
}
