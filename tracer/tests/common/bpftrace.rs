//! bpftrace as an oracle: a script run for the length of a test, its output read at the end
//! (the drop tests choose it or ftrace: [`super::drop_oracle`]).

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
    /// Starts `script` and waits until it is attached.
    pub fn start(tag: &str, script: &str) -> Self {
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
        bt
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
