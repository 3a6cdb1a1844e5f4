//! `-w FILE.pcapng` against tcpdump on the same veths and read back by tshark and tcpdump:
//! frame bytes per interface and direction, interface names, directions, comments, file mode,
//! rotation, standard output, and errors before anything is attached.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{Node, Tcpdump, Tracer, run, vethtrace_bin};
use pcap_file::pcapng::{
    Block, PcapNgReader,
    blocks::{enhanced_packet::EnhancedPacketOption, interface_description::InterfaceDescriptionOption},
};

/// One Enhanced Packet Block as read back.
#[derive(Debug, Clone)]
struct Packet {
    iface: String,
    /// epb_flags direction bits: 1 inbound, 2 outbound, 0 not given.
    dir: u32,
    time: Duration,
    original_len: u32,
    data: Vec<u8>,
    comment: Option<String>,
}

/// A frame's captured bytes and its length on the wire.
type Frame = (Vec<u8>, u32);

/// Every packet of a pcapng file, with its interface's name.
fn read_pcapng(path: &Path) -> (Vec<String>, Vec<Packet>) {
    let mut reader = PcapNgReader::new(fs::File::open(path).unwrap()).expect("pcapng section header");
    let (mut ifaces, mut packets) = (Vec::new(), Vec::new());
    while let Some(block) = reader.next_block() {
        match block.expect("pcapng block") {
            Block::InterfaceDescription(idb) => {
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                assert!(idb.options.iter().any(|o| matches!(o, InterfaceDescriptionOption::IfTsResol(9))));
                ifaces.push(name.expect("if_name"));
            }
            Block::EnhancedPacket(epb) => {
                let mut p = Packet {
                    iface: ifaces[epb.interface_id as usize].clone(),
                    dir: 0,
                    time: epb.timestamp,
                    original_len: epb.original_len,
                    data: epb.data.into_owned(),
                    comment: None,
                };
                for o in epb.options {
                    match o {
                        EnhancedPacketOption::Flags(f) => p.dir = f & 3,
                        EnhancedPacketOption::Comment(c) => p.comment = Some(c.into_owned()),
                        _ => {}
                    }
                }
                packets.push(p);
            }
            _ => {}
        }
    }
    (ifaces, packets)
}

/// ICMP, TCP and UDP between the pods, and a fresh ARP for the gateway.
fn make_traffic(node: &Node) {
    run(node.in_pod("pod1", "ip").args(["neigh", "flush", "all"]));
    run(node.in_pod("pod1", "ping").args(["-c", "3", "-i", "0.05", "-s", "400", "10.244.1.6"]));
    run(node.in_pod("pod1", "ping").args(["-6", "-c", "2", "-i", "0.05", "fd00:244::6"]));
    let mut server = node.in_pod("pod2", "nc").args(["-l", "-p", "8080"]).stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    run(Command::new("bash").arg("-c").arg(format!(
        "head -c 3000 /dev/zero | ip netns exec {} nc -N -w 2 10.244.1.6 8080",
        node.pod_ns("pod1")
    )));
    common::wait_timeout(&mut server, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
}

/// tshark's stderr without its note about running as root.
fn tshark_warnings(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn tshark_fields(path: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path).args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark (apt package tshark)");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tshark_warnings(&out.stderr), Vec::<String>::new(), "tshark warned");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

fn capture_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_prefix(tag));
    fs::create_dir_all(&dir).unwrap();
    dir.join("cap.pcapng")
}

/// A flow's annotation is its first packet's comment; its later packets carry one only when
/// the annotation changed (a route or neighbour change in between): the TCP flow to pod2 on
/// `cali`.
fn assert_flow_commented_once(path: &Path, cali: &str) {
    let tcp = tshark_fields(path, &["frame.interface_name", "tcp.dstport", "frame.comment"]);
    let to_server: Vec<&Vec<String>> = tcp.iter().filter(|r| r[0] == cali && r[1] == "8080").collect();
    let commented = to_server.iter().filter(|r| !r[2].is_empty()).count();
    assert!(to_server.len() >= 3, "the TCP flow to pod2: {to_server:?}");
    assert!(!to_server[0][2].is_empty(), "the flow's first packet has the annotation: {to_server:?}");
    assert!(commented < to_server.len(), "every packet of the flow repeats its annotation: {to_server:?}");
}

#[test]
fn frames_equal_tcpdumps_and_tshark_and_tcpdump_read_the_file() {
    let node = Node::up("pn");
    let calis = [node.cali("pod1"), node.cali("pod2")];
    let path = capture_path("pn");
    // JSON lines at the same time as the pcapng (the harness asks for JSON).
    let tracer = Tracer::start(&node, &["--iface", "cali*", "-w", path.to_str().unwrap()]);
    let captures: Vec<_> = calis
        .iter()
        .flat_map(|c| [("in", 1), ("out", 2)].map(|(q, d)| ((c.clone(), d), Tcpdump::start(&node, c, q))))
        .collect();
    let start = common::now();
    make_traffic(&node);
    let window = start..common::now();
    let theirs: Vec<_> = captures.into_iter().map(|(key, t)| (key, t.stop())).collect();
    let done = tracer.stop();
    assert!(done.status.success(), "vethtrace failed: {}", done.stderr);
    assert!(!done.of_kind("packet").is_empty(), "no JSON lines beside the pcapng");

    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "capture file mode");
    let (ifaces, packets) = read_pcapng(&path);
    for cali in &calis {
        assert!(ifaces.contains(cali), "no interface block for {cali}: {ifaces:?}");
    }
    let mut ours: BTreeMap<(String, u32), Vec<Frame>> = BTreeMap::new();
    for p in packets.iter().filter(|p| window.contains(&p.time) && calis.contains(&p.iface)) {
        ours.entry((p.iface.clone(), p.dir)).or_default().push((p.data.clone(), p.original_len));
    }
    let mut compared = 0;
    for (key, frames) in theirs {
        // vethtrace keeps the first 128 bytes (the default snaplen) and the wire length.
        let mut want: Vec<Frame> = frames
            .iter()
            .filter(|(t, _)| window.contains(t))
            .map(|(_, f)| (f[..f.len().min(128)].to_vec(), f.len() as u32))
            .collect();
        let mut got = ours.remove(&key).unwrap_or_default();
        want.sort();
        got.sort();
        assert_eq!(got.len(), want.len(), "{key:?}: {} packets in the pcapng, tcpdump {}", got.len(), want.len());
        assert!(got == want, "{key:?}: frame bytes or lengths differ from tcpdump's");
        compared += got.len();
    }
    assert!(compared >= 20, "only {compared} frames compared");
    assert!(packets.iter().any(|p| p.original_len > 128 && p.data.len() == 128), "no frame cut at the snaplen");

    // tshark: no warning; names, directions and comments where it says they are.
    let rows = tshark_fields(&path, &["frame.interface_name", "frame.p2p_dir", "frame.comment", "icmp.type"]);
    assert_eq!(rows.len(), packets.len(), "tshark read another number of frames");
    let request_in = rows
        .iter()
        .find(|r| r[0] == calis[0] && r[3] == "8")
        .unwrap_or_else(|| panic!("no echo request on {} in {rows:?}", calis[0]));
    assert_eq!(request_in[1], "1", "an echo request from pod1 is received on its cali");
    let route = format!("route 10.244.1.6 dev {} scope link", calis[1]);
    assert!(request_in[2].contains(&route), "comment {:?} lacks {route:?}", request_in[2]);
    let request_out = rows.iter().find(|r| r[0] == calis[1] && r[3] == "8").expect("echo request forwarded");
    assert_eq!(request_out[1], "0", "the forwarded request is sent on pod2's cali");
    assert_flow_commented_once(&path, &calis[0]);
    let arp = rows.iter().find(|r| r[0] == "vethtrace-events" && r[2].contains("ARP recv Request who-has 169.254.1.1"));
    assert!(arp.is_some(), "no ARP probe event in the file: {rows:?}");

    // tcpdump reads it too, every frame.
    let out = Command::new("tcpdump").arg("-n").arg("-r").arg(&path).output().unwrap();
    assert!(out.status.success(), "tcpdump -r failed: {}", String::from_utf8_lossy(&out.stderr));
    // One line per frame (payload dumps of unknown ethertypes follow on indented lines).
    let lines = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with(char::is_whitespace)).count();
    assert_eq!(lines, packets.len());
    let _ = fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn rotation_keeps_count_files_each_readable() {
    let node = Node::up("rot");
    let path = capture_path("rot");
    let tracer = Tracer::start(&node, &["-w", path.to_str().unwrap(), "-C", "1", "-W", "3", "--probe", "off"]);
    // About 5 MB of records: 20 000 pings of 300 bytes, each four records of ~300 bytes.
    let flood = node.in_pod("pod1", "ping").args(["-f", "-c", "5000", "-s", "300", "-q", "10.244.1.6"]).output();
    assert!(flood.unwrap().status.success());
    let done = tracer.stop();
    assert!(done.status.success(), "{}", done.stderr);
    let dir = path.parent().unwrap();
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["cap.pcapng0", "cap.pcapng1", "cap.pcapng2"], "files in the rotation");
    for name in &names {
        let file = dir.join(name);
        let size = fs::metadata(&file).unwrap().len();
        assert!(size < 1_200_000, "{name} is {size} bytes, over -C 1 by more than a block");
        let rows = tshark_fields(&file, &["frame.interface_name"]);
        assert!(!rows.is_empty() && rows.iter().all(|r| r[0].starts_with("cali")), "{name}: {rows:?}");
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn standard_output_feeds_tshark() {
    let node = Node::up("pso");
    let dir = path_dir(&capture_path("pso"));
    let ready = dir.join("ready");
    let out = fs::File::create(dir.join("stdout.pcapng")).unwrap();
    let mut child = node
        .in_node(vethtrace_bin().to_str().unwrap())
        .args(["-w", "-", "--ready-file"])
        .arg(&ready)
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    run(node.in_pod("pod1", "ping").args(["-c", "2", "-i", "0.1", "10.244.1.6"]));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    common::wait_timeout(&mut child, Duration::from_secs(60));
    let rows = tshark_fields(&dir.join("stdout.pcapng"), &["icmp.type"]);
    assert_eq!(rows.iter().filter(|r| r[0] == "8").count(), 4, "two requests, each on both calis: {rows:?}");
    let _ = fs::remove_dir_all(dir);
}

fn path_dir(p: &Path) -> PathBuf {
    p.parent().unwrap().to_owned()
}

#[test]
fn a_file_that_cannot_be_written_is_one_line_before_anything_is_attached() {
    let node = Node::up("pbad");
    let dir = path_dir(&capture_path("pbad"));
    let target = dir.join("elsewhere");
    fs::write(&target, b"keep").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("link.pcapng")).unwrap();
    for path in [dir.join("no/such/dir/cap.pcapng"), dir.join("link.pcapng")] {
        let out = node.in_node(vethtrace_bin().to_str().unwrap()).arg("-w").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("vethtrace: cannot write "), "{stderr}");
        assert!(!stderr.contains("tracing"), "attached before failing: {stderr}");
    }
    assert_eq!(fs::read(&target).unwrap(), b"keep", "wrote through a symlink");
    let _ = fs::remove_dir_all(dir);
}
