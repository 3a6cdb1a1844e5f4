//! A Calico-style node in network namespaces, made and removed by scripts/calico-node.sh:
//! namespace `<prefix>node`, pods pod1 (10.244.1.5, fd00:244::5) and pod2 (10.244.1.6,
//! fd00:244::6) in `<prefix>p-pod1` / `<prefix>p-pod2`, each behind a `cali…` veth.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{Error, Result};

/// scripts/calico-node.sh: under $VETHTRACE_SCRIPTS (the VM sets it), else the workspace's.
pub fn script_path() -> PathBuf {
    std::env::var_os("VETHTRACE_SCRIPTS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts"), PathBuf::from)
        .join("calico-node.sh")
}

/// A command that runs `program` inside network namespace `ns` (`ip netns exec`, which execs
/// it: the child's pid is the program's).
pub fn in_ns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// Runs `cmd` and returns its standard output; an error names it, with its output, when it
/// cannot start or exits non-zero.
pub fn output(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| Error::Spawn { what: what.clone(), source })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let output = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        return Err(Error::Failed { what, status: out.status, output });
    }
    Ok(stdout)
}

/// The node's namespaces, removed (everything under the prefix) when dropped.
#[derive(Debug)]
pub struct CalicoNode {
    pub prefix: String,
}

impl CalicoNode {
    /// Builds the node and its two pods under `prefix`.
    pub fn up(prefix: &str) -> Result<Self> {
        let node = Self { prefix: prefix.to_owned() };
        node.script(&["up"])?;
        Ok(node)
    }

    /// `calico-node.sh ARGS` for this node; its standard output.
    pub fn script(&self, args: &[&str]) -> Result<String> {
        output(Command::new("bash").arg(script_path()).args(args).env("VT_PREFIX", &self.prefix))
    }

    /// Name of the node's namespace.
    pub fn ns(&self) -> String {
        format!("{}node", self.prefix)
    }

    /// Name of `pod`'s namespace.
    pub fn pod_ns(&self, pod: &str) -> String {
        format!("{}p-{pod}", self.prefix)
    }

    /// Host-side interface of `pod`.
    pub fn cali(&self, pod: &str) -> Result<String> {
        Ok(self.script(&["cali", pod])?.trim().to_owned())
    }

    pub fn in_node(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        in_ns(&self.ns(), program)
    }

    pub fn in_pod(&self, pod: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        in_ns(&self.pod_ns(pod), program)
    }

    /// `ip -n <node> ARGS`: its standard output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        output(Command::new("ip").arg("-n").arg(self.ns()).args(args))
    }
}

impl Drop for CalicoNode {
    fn drop(&mut self) {
        let _ = self.script(&["down"]);
    }
}
