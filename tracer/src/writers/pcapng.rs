//! pcapng for Wireshark and `tcpdump -r`, through the pcap-file crate: one Interface
//! Description Block per interface as it first shows up (name = the cali, description = the
//! pod when known, Ethernet, the snaplen, nanosecond timestamps), one Enhanced Packet Block per
//! packet and per drop with its direction and original length, and vethtrace's findings in the
//! packet's comment (what the text line says after ` | `; `DROP <reason> at <location>:
//! <cause>` for a drop).
//!
//! ARP/neighbour probe events have no frame of their own (the frame is the TC event's): each is
//! a frame vethtrace makes on a pseudo-interface `vethtrace-events` — Ethernet with zero MACs,
//! the IEEE local experimental ethertype 0x88b5, and the event's text line as payload — with
//! the same text as its comment, so that Wireshark and tcpdump show it in time order among the
//! packets. (libpcap reads a file only when all its interfaces share one link type, so the
//! pseudo-interface is Ethernet too.)
//!
//! `-C`/`-W` rotate files as tcpdump does; every new file starts with the section header and
//! the interfaces seen so far, so that each file reads alone.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

mod epb;

use pcap_file::{
    DataLink, PcapError,
    pcapng::{
        PcapNgWriter, RawBlock,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};
use tracer_common::{dir, frame_origin, proto::ETH_HLEN};

use super::EventWriter;
use crate::events::{Place, Record, decode::made_up_ethernet};

/// epb_flags direction bits.
const EPB_INBOUND: u32 = 0b01;
const EPB_OUTBOUND: u32 = 0b10;
/// The pseudo-interface of the ARP/neighbour probe events, and their frames' ethertype
/// (IEEE 802 local experimental ethertype 1).
const EVENTS_IFACE: &str = "vethtrace-events";
const EVENTS_ETHERTYPE: u16 = 0x88b5;
/// The interface of drops without a device.
const NO_DEVICE_IFACE: &str = "no-device";

/// Where and how the capture goes.
#[derive(Debug, Clone)]
pub(crate) struct PcapngOptions {
    /// `None`: standard output.
    pub path: Option<PathBuf>,
    pub snaplen: u32,
    /// `-C`: bytes per file before the next one starts.
    pub file_size: Option<u64>,
    /// `-W`: files kept (names reused in a ring).
    pub file_count: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    #[error("cannot write {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("writing pcapng: {0}")]
    Pcap(#[from] PcapError),
}

impl From<PcapngError> for io::Error {
    fn from(e: PcapngError) -> Self {
        match e {
            PcapngError::Pcap(PcapError::IoError(io)) => io,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// `ids` key of the events' pseudo-interface (no ifindex is this).
const EVENTS_KEY: u32 = u32::MAX;

/// An interface as it appears in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Iface {
    Dev { ifindex: u32, name: String },
    Events,
}

impl Iface {
    fn name(&self) -> &str {
        match self {
            Iface::Dev { name, .. } => name,
            Iface::Events => EVENTS_IFACE,
        }
    }
}

pub(crate) struct PcapngWriter {
    opts: PcapngOptions,
    out: PcapNgWriter<BufWriter<Box<dyn Write>>>,
    /// Interfaces in the order of their IDBs (the interface id is the position).
    ifaces: Vec<(Iface, Option<String>)>,
    /// The id of each interface's latest IDB, by ifindex (`EVENTS_KEY` for the events).
    ids: HashMap<u32, u32, foldhash::fast::RandomState>,
    /// Bytes in the current file, and its number in the rotation.
    written: u64,
    file_no: u32,
    /// The comment of the record being written, reused.
    comment: Vec<u8>,
    /// The block being written, reused.
    block: Vec<u8>,
    /// The annotations ([`crate::events::annotation::FlowAnnotation::id`]) already written as a
    /// comment in the current file: a flow's later packets carry none until it changes.
    commented: HashSet<u64, foldhash::fast::RandomState>,
}

/// Annotations remembered per file at most (then the set starts again: flows are commented
/// once more).
const COMMENTED_MAX: usize = 1 << 20;

impl PcapngWriter {
    /// Opens the first file (or standard output) and writes the section header.
    pub(crate) fn create(opts: PcapngOptions) -> Result<Self, PcapngError> {
        let sink = open(&opts, 0)?;
        Self::with_sink(opts, sink)
    }

    /// Writes the section header to `sink` (rotation, if `opts` asks for it, opens files as
    /// [`PcapngWriter::create`] does): the collector benchmark writes to a counting sink.
    pub(crate) fn with_sink(opts: PcapngOptions, sink: Box<dyn Write>) -> Result<Self, PcapngError> {
        let out = PcapNgWriter::new(BufWriter::with_capacity(1 << 16, sink))?;
        Ok(Self {
            opts,
            out,
            ifaces: Vec::new(),
            ids: HashMap::default(),
            written: 0,
            file_no: 0,
            comment: Vec::new(),
            block: Vec::with_capacity(1 << 12),
            commented: HashSet::default(),
        })
    }

    /// The interface id of `iface`, writing its IDB the first time.
    /// Nothing is allocated when the interface has its block already (every packet but the
    /// first); a new name on a known ifindex (a rename, a reused index) gets a block of its own.
    fn iface_id(&mut self, ifindex: u32, name: &str, place: &Place<'_>) -> Result<u32, PcapngError> {
        let key = if name == EVENTS_IFACE { EVENTS_KEY } else { ifindex };
        if let Some(&id) = self.ids.get(&key)
            && self.ifaces[id as usize].0.name() == name
        {
            return Ok(id);
        }
        let iface = if key == EVENTS_KEY { Iface::Events } else { Iface::Dev { ifindex, name: name.to_owned() } };
        let description = match iface {
            Iface::Events => Some("kernel ARP/neighbour path events (vethtrace probes)".to_owned()),
            // `if_description`: the pod behind the interface (a drop without a device has none).
            Iface::Dev { ifindex: 0, .. } => None,
            Iface::Dev { .. } => place.pod.as_ref().map(|p| format!("pod {}/{}", p.namespace, p.name)),
        };
        let id = self.ifaces.len() as u32;
        self.written += write_idb(&mut self.out, &iface, description.as_deref(), self.opts.snaplen)? as u64;
        self.ids.insert(key, id);
        self.ifaces.push((iface, description));
        Ok(id)
    }

    fn packet(&mut self, packet: &epb::Packet<'_>) -> Result<(), PcapngError> {
        self.rotate_if_full()?;
        epb::body(&mut self.block, packet);
        let len = self.block.len() as u32 + 12;
        let raw = RawBlock { type_: epb::TYPE, initial_len: len, body: Cow::Borrowed(&self.block), trailer_len: len };
        self.out.write_raw_block(&raw)?;
        self.written += u64::from(len);
        Ok(())
    }

    /// `-C`: once the file holds the size, the next packet goes to a new file that repeats
    /// the section header and every interface.
    fn rotate_if_full(&mut self) -> Result<(), PcapngError> {
        let Some(limit) = self.opts.file_size else {
            return Ok(());
        };
        if self.written < limit {
            return Ok(());
        }
        self.out.get_mut().flush().map_err(PcapError::IoError)?;
        self.file_no += 1;
        let sink = open(&self.opts, self.file_no)?;
        self.out = PcapNgWriter::new(BufWriter::with_capacity(1 << 16, sink))?;
        self.written = 0;
        // Each file reads alone: every flow is commented again.
        self.commented.clear();
        for (iface, description) in &self.ifaces {
            self.written += write_idb(&mut self.out, iface, description.as_deref(), self.opts.snaplen)? as u64;
        }
        Ok(())
    }

    fn write_record(&mut self, rec: &Record<'_>) -> Result<(), PcapngError> {
        let place = rec.place();
        let timestamp_ns = u64::try_from(place.wall_ns).unwrap_or(0);
        let mut comment = std::mem::take(&mut self.comment);
        comment.clear();
        let Some(c) = rec.capture() else {
            // An event without a frame: its words are the frame, on the events interface.
            let interface_id = self.iface_id(0, EVENTS_IFACE, place)?;
            rec.put_comment(&mut comment);
            let eth = made_up_ethernet(EVENTS_ETHERTYPE);
            let original_len = (eth.len() + comment.len()) as u32;
            let packet =
                epb::Packet { interface_id, timestamp_ns, data: [&eth, &comment], original_len, flags: 0, comment: &comment };
            let written = self.packet(&packet);
            self.comment = comment;
            return written;
        };
        let name = if place.ifindex == 0 { NO_DEVICE_IFACE } else { &place.iface };
        let interface_id = self.iface_id(place.ifindex, name, place)?;
        if self.commented.len() >= COMMENTED_MAX {
            self.commented.clear();
        }
        if c.comment_once.is_none_or(|once| self.commented.insert(once)) {
            rec.put_comment(&mut comment);
        }
        let eth = made_up_ethernet(c.protocol);
        let (head, original_len): (&[u8], u32) =
            if c.frame.origin == frame_origin::NETWORK { (&eth, c.len + ETH_HLEN as u32) } else { (&[], c.len) };
        let flags = match c.dir {
            Some(dir::EGRESS) => EPB_OUTBOUND,
            Some(_) => EPB_INBOUND,
            None => 0,
        };
        let data = [head, c.frame.bytes];
        let written = self.packet(&epb::Packet { interface_id, timestamp_ns, data, original_len, flags, comment: &comment });
        self.comment = comment;
        written
    }
}

impl EventWriter for PcapngWriter {
    fn write(&mut self, rec: &Record<'_>) -> io::Result<()> {
        self.write_record(rec).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.get_mut().flush()
    }
}

fn write_idb(
    out: &mut PcapNgWriter<BufWriter<Box<dyn Write>>>,
    iface: &Iface,
    description: Option<&str>,
    snaplen: u32,
) -> Result<usize, PcapError> {
    let name = iface.name();
    let mut options =
        vec![InterfaceDescriptionOption::IfName(Cow::Owned(name.to_owned())), InterfaceDescriptionOption::IfTsResol(9)];
    if let Some(d) = description {
        options.push(InterfaceDescriptionOption::IfDescription(Cow::Owned(d.to_owned())));
    }
    out.write_pcapng_block(InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen, options })
}

/// File `n` of the rotation: FILE, FILE1, FILE2, … (tcpdump's -C); with -W COUNT, FILE0 …
/// FILE<COUNT-1> with the number padded to COUNT's width, reused in a ring (tcpdump's -W).
pub(crate) fn file_name(base: &Path, n: u32, count: Option<u32>) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    match count {
        Some(count) => {
            let width = (count - 1).max(1).ilog10() as usize + 1;
            name.push(format!("{:0width$}", n % count));
        }
        None if n == 0 => {}
        None => name.push(n.to_string()),
    }
    PathBuf::from(name)
}

fn open(opts: &PcapngOptions, n: u32) -> Result<Box<dyn Write>, PcapngError> {
    let Some(base) = &opts.path else {
        return Ok(Box::new(io::stdout()));
    };
    let count = opts.file_size.and(opts.file_count);
    let path = if opts.file_size.is_some() { file_name(base, n, count) } else { base.clone() };
    let file =
        create_private(&path).map_err(|source| PcapngError::Open { path: path.display().to_string(), source })?;
    Ok(Box::new(file))
}

/// Creates (or truncates) `path` with mode 0600, refusing to follow a symlink.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // An existing file keeps its mode through O_CREAT: make it private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names_follow_tcpdump() {
        let base = Path::new("/t/cap.pcapng");
        assert_eq!(file_name(base, 0, None), Path::new("/t/cap.pcapng"));
        assert_eq!(file_name(base, 2, None), Path::new("/t/cap.pcapng2"));
        assert_eq!(file_name(base, 0, Some(3)), Path::new("/t/cap.pcapng0"));
        assert_eq!(file_name(base, 4, Some(3)), Path::new("/t/cap.pcapng1"));
        assert_eq!(file_name(base, 12, Some(20)), Path::new("/t/cap.pcapng12"));
        assert_eq!(file_name(base, 3, Some(20)), Path::new("/t/cap.pcapng03"));
    }

    #[test]
    fn private_files_refuse_symlinks_and_are_0600() {
        let dir = std::env::temp_dir().join(format!("vt-pcapng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_private(&link).is_err(), "followed a symlink");
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
        create_private(&target).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
