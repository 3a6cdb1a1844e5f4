//! `cargo xtask image`: the container image, `localhost/vethtrace:<version>`, FROM scratch with
//! the static musl release binary (the same build as `cargo xtask vm`, in target/vm), built
//! offline by buildah (Debian package) into a store of its own under target/image, and written
//! as an OCI archive (`target/image/vethtrace-<version>.oci.tar`) to load into a cluster's
//! runtime (`ctr -n k8s.io images import`, `podman load`). `cargo xtask deploy-check` checks
//! deploy/ offline against the Kubernetes schemas (xtask/deploy/check.py).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{run, vm};

/// What the image's entrypoint must be.
const ENTRYPOINT: &str = "/vethtrace";

/// `localhost/vethtrace:<tracer's version>`, the tag deploy/daemonset.yaml names.
pub(crate) fn tag(workspace: &Path) -> anyhow::Result<String> {
    let manifest = fs::read_to_string(workspace.join("tracer/Cargo.toml"))?;
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .context("no version in tracer/Cargo.toml")?;
    Ok(format!("localhost/vethtrace:{version}"))
}

/// buildah with its own storage (vfs: no overlay mounts needed) under target/image.
fn buildah(store: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.arg("--root").arg(store.join("root")).arg("--runroot").arg(store.join("run")).args(["--storage-driver", "vfs"]);
    cmd
}

pub(crate) fn run() -> anyhow::Result<()> {
    let workspace = crate::workspace()?;
    let binary = vm::static_vethtrace(workspace, &workspace.join("target/vm"))?;
    let out = workspace.join("target/image");
    let context = out.join("context");
    let _ = fs::remove_dir_all(&context);
    fs::create_dir_all(&context)?;
    fs::copy(workspace.join("deploy/Containerfile"), context.join("Containerfile"))?;
    fs::copy(&binary, context.join("vethtrace")).with_context(|| format!("copying {}", binary.display()))?;
    let tag = tag(workspace)?;
    let store = out.join("storage");
    run::status(
        buildah(&store)
            .args(["bud", "--isolation", "chroot", "--pull=never", "-f"])
            .arg(context.join("Containerfile"))
            .args(["-t", &tag])
            .arg(&context),
    )?;
    let entrypoint = entrypoint(&store, &tag)?;
    if entrypoint != [ENTRYPOINT] {
        bail!("{tag}: entrypoint {entrypoint:?}, expected [{ENTRYPOINT:?}]");
    }
    let archive = out.join(format!("vethtrace-{}.oci.tar", tag.rsplit(':').next().unwrap_or("dev")));
    let _ = fs::remove_file(&archive);
    run::status(buildah(&store).args(["push", &tag]).arg(format!("oci-archive:{}:{tag}", archive.display())))?;
    eprintln!("xtask: image {tag}, entrypoint {entrypoint:?}, archive {}", archive.display());
    Ok(())
}

/// The image's entrypoint, from `buildah inspect`.
fn entrypoint(store: &Path, tag: &str) -> anyhow::Result<Vec<String>> {
    let out = buildah(store).args(["inspect", "--type", "image", tag]).output().context("cannot run buildah")?;
    if !out.status.success() {
        bail!("buildah inspect {tag} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let info: Value = serde_json::from_slice(&out.stdout).context("buildah inspect: not JSON")?;
    Ok(info["OCIv1"]["config"]["Entrypoint"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// deploy/ against the Kubernetes schemas and its own consistency (needs the PyPI package
/// kubernetes-validate, which `setup` installs).
pub(crate) fn deploy_check() -> anyhow::Result<()> {
    let workspace = crate::workspace()?;
    let script: PathBuf = workspace.join("xtask/deploy/check.py");
    run::status(Command::new("python3").arg(script).arg(workspace.join("deploy")).arg(tag(workspace)?))
}
