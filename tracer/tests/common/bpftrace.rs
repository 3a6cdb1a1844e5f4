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
