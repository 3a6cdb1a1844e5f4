//! bpftrace as an oracle: a script run for the length of a test, its output read at the end.
//! VETHTRACE_NO_ORACLE=1 leaves it out (said loudly): in a VM without bpftrace.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

pub struct Bpftrace {
    child: Child,
    out: PathBuf,
}

impl Bpftrace {
    /// Starts `script` and waits until it is attached; `None` with VETHTRACE_NO_ORACLE=1.
    pub fn start(tag: &str, script: &str) -> Option<Self> {
        if std::env::var_os("VETHTRACE_NO_ORACLE").is_some_and(|v| v == "1") {
            eprintln!("{tag}: VETHTRACE_NO_ORACLE=1: NOT comparing with bpftrace");
            return None;
        }
        let out = std::env::temp_dir().join(format!("vt-bpftrace-{tag}-{}", std::process::id()));
        let child = Command::new("bpftrace")
            .args(["-B", "none", "-e", script])
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("bpftrace is the oracle of this test (apt install bpftrace; VETHTRACE_NO_ORACLE=1 to leave it out)");
        let mut bt = Self { child, out };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !fs::read_to_string(&bt.out).unwrap_or_default().contains("Attaching") {
            if let Some(status) = bt.child.try_wait().unwrap() {
                panic!("bpftrace exited before attaching: {status}");
            }
            assert!(Instant::now() < deadline, "bpftrace did not attach within 60 s");
            thread::sleep(Duration::from_millis(50));
        }
        // "Attaching" is printed before the attach itself is done.
        thread::sleep(Duration::from_millis(500));
        Some(bt)
    }

    /// Stops bpftrace; what it printed.
    pub fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        // Under QEMU/TCG bpftrace has been seen to take more than a minute to detach after
        // SIGINT. Its output is unbuffered (-B none), so what it printed is all there: stop
        // waiting and kill it rather than fail the test on the oracle's own exit.
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                eprintln!("bpftrace still running 60 s after SIGINT; killed");
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        let _ = fs::remove_file(&self.out);
        text
    }
}

/// The words of each line of `text` that starts with `prefix` (after it).
pub fn records<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = Vec<&'a str>> {
    text.lines().filter_map(move |l| Some(l.strip_prefix(prefix)?.split_whitespace().collect()))
}

/// NOT_SPECIFIED's code, from the tracepoint's own print format (`{ 2, "NOT_SPECIFIED" }` in
/// its __print_symbolic list: 2 on 6.18, 1 on 6.1).
pub fn not_specified_code() -> Option<u64> {
    let text = kfree_skb_format();
    let at = text.find("\"NOT_SPECIFIED\"")?;
    let open = text[..at].rfind('{')?;
    text[open + 1..at].trim().trim_end_matches(',').trim().parse().ok()
}

/// The tracepoint's format file. Read again for up to 20 s when it fails: once, in a
/// fresh-clone CI run, every read failed for at least 8 s while other tests had just run
/// (tracefs mounted, the file there a minute later); the panic says how each root failed.
pub fn kfree_skb_format() -> String {
    let roots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    let mut errors = Vec::new();
    for _ in 0..200 {
        errors.clear();
        for root in roots {
            match fs::read_to_string(format!("{root}/events/skb/kfree_skb/format")) {
                Ok(text) => return text,
                Err(e) => errors.push(format!("{root}: {e}")),
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("tracefs with events/skb/kfree_skb/format (vethtrace mounts it when it starts): {}", errors.join("; "));
}

/// Whether skb:kfree_skb carries a reason (Linux >= 5.17).
pub fn kfree_skb_has_reason() -> bool {
    kfree_skb_format().contains(" reason;")
}

/// `(printf conversion, argument)` for a kfree_skb record's reason in a bpftrace script: the
/// code, or `-` on kernels without reasons (parse it with [`reason_code`]).
pub fn reason_printf() -> (&'static str, &'static str) {
    if kfree_skb_has_reason() { ("%d", "args->reason, ") } else { ("-", "") }
}

/// A reason code as [`reason_printf`] printed it: `Some(None)` for `-`.
pub fn reason_code(word: &str) -> Option<Option<u64>> {
    if word == "-" { Some(None) } else { word.parse().ok().map(Some) }
}

/// bpftrace expressions for the device of a kfree_skb record: a statement that sets `$dev`,
/// and the device's name and network namespace inode as expressions of `$dev`.
pub struct SkbDev {
    pub set: String,
    pub name: String,
    pub netns: String,
}

/// With BTF, bpftrace's own struct casts. bpftrace 0.17 finds no BTF on 5.10 (`bpftrace
/// --info`: "btf: no") and then knows no kernel struct: plain reads at the offsets the
/// kernel's BTF gives.
pub fn skb_dev() -> SkbDev {
    // `bpftrace --info` writes its report to standard error.
    let info = std::process::Command::new("bpftrace").arg("--info").output().map(|o| [o.stdout, o.stderr].concat());
    if String::from_utf8_lossy(&info.unwrap_or_default()).contains("btf: yes") {
        return SkbDev {
            set: "$dev = ((struct sk_buff *)args->skbaddr)->dev;".into(),
            name: "$dev->name".into(),
            netns: "$dev->nd_net.net->ns.inum".into(),
        };
    }
    let btf = tracer::kernel::btf::KernelBtf::load().expect("kernel BTF");
    let off = |s: &str, m: &str| btf.member_offset(s, m).unwrap_or_else(|e| panic!("{s}.{m}: {e}"));
    let inum = btf.net_inum_offset().expect("net.ns.inum");
    SkbDev {
        set: format!("$dev = *(uint64 *)(args->skbaddr + {});", off("sk_buff", "dev")),
        name: format!("str($dev + {})", off("net_device", "name")),
        netns: format!("*(uint32 *)(*(uint64 *)($dev + {}) + {inum})", off("net_device", "nd_net")),
    }
}
