//! A Debian kernel package, fetched with apt and unpacked once into the cache: its vmlinuz and
//! its modules, with modules.dep made by the host's depmod.

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::run;

/// A Debian kernel line the VM boots.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum Line {
    /// Debian 11's 5.10 (linux-image-5.10.0-NN-amd64): no TCX, no drop reasons, no bpf_loop;
    /// kprobes, fentry and BTF. Fetched through apt sources of its own (see [`Line::suites`]).
    #[value(name = "5.10")]
    V5_10,
    /// Debian 12's own 6.1 (linux-image-6.1.0-NN-amd64): no TCX; kprobes, fentry and BTF.
    #[value(name = "6.1")]
    V6_1,
    /// Debian 12 backports' 6.12 (linux-image-6.12.NNN+deb12-amd64): TCX, kprobes, fentry.
    #[value(name = "6.12")]
    V6_12,
}

impl Line {
    /// `apt-cache search --names-only` pattern of the line's packages.
    fn pattern(self) -> &'static str {
        match self {
            Self::V5_10 => r"^linux-image-5\.10\.0-[0-9]+-amd64$",
            Self::V6_1 => r"^linux-image-6\.1\.0-[0-9]+-amd64$",
            Self::V6_12 => r"^linux-image-6\.12\.[0-9]+\+deb12-amd64$",
        }
    }

    /// The number that orders the line's packages: the ABI of 5.10.0-<abi> and 6.1.0-<abi>,
    /// the patch of 6.12.<patch>+deb12.
    fn order(self, package: &str) -> u32 {
        let field = match self {
            Self::V5_10 | Self::V6_1 => package.split('-').nth(3),
            Self::V6_12 => package.split(['.', '+']).nth(2),
        };
        field.and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::V5_10 => "5.10",
            Self::V6_1 => "6.1",
            Self::V6_12 => "6.12",
        }
    }

    /// Suites of another Debian release the line's packages come from, as `deb` lines for a
    /// private apt configuration under the cache (`None`: the host's own sources). The host's
    /// sources stay as they are: bullseye never takes part in installing the host's packages.
    fn suites(self) -> Option<&'static str> {
        match self {
            Self::V5_10 => Some(
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main\n\
                 deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main\n",
            ),
            Self::V6_1 | Self::V6_12 => None,
        }
    }
}

/// apt-get or apt-cache for `line`: with the host's sources, or (a line of another release)
/// with a private configuration in `cache`/apt-<line> holding only that release's suites,
/// its own package lists and its own download cache.
struct Apt {
    private: Option<PathBuf>,
}

impl Apt {
    fn new(line: Line, cache: &Path) -> anyhow::Result<Self> {
        let Some(suites) = line.suites() else { return Ok(Self { private: None }) };
        let dir = cache.join(format!("apt-{}", line.name()));
        for sub in ["parts", "lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub)).with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        fs::write(dir.join("sources.list"), suites)?;
        Ok(Self { private: Some(dir) })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        if let Some(dir) = &self.private {
            let opt = |name: &str, sub: &str| format!("{name}={}", dir.join(sub).display());
            // The sandbox user _apt cannot write into the cache (nor, on some machines, open /dev/null).
            for o in [
                "APT::Sandbox::User=root".to_owned(),
                opt("Dir::Etc::SourceList", "sources.list"),
                opt("Dir::Etc::SourceParts", "parts"),
                opt("Dir::State::Lists", "lists"),
                opt("Dir::Cache", "cache"),
            ] {
                cmd.args(["-o", &o]);
            }
        }
        cmd
    }

    /// Whether the private lists were never fetched (the host's lists are apt's business).
    fn needs_update(&self) -> bool {
        self.private.as_ref().is_some_and(|d| {
            fs::read_dir(d.join("lists")).map_or(true, |mut e| !e.any(|e| e.is_ok_and(|e| e.path().is_file())))
        })
    }
}

/// An unpacked kernel package.
pub(super) struct Kernel {
    pub package: String,
    /// `uname -r` of that kernel, e.g. 6.1.0-56-amd64.
    pub release: String,
    /// Root of the unpacked package: boot/, lib/modules/<release>/ (what `modprobe -d` wants).
    pub root: PathBuf,
}

impl Kernel {
    /// The package named, or else the newest of `line` apt knows, unpacked under `cache` (reused
    /// when it is already there).
    pub(super) fn get(package: Option<&str>, line: Line, cache: &Path) -> anyhow::Result<Self> {
        let apt = Apt::new(line, cache)?;
        let package = match package {
            Some(p) => p.to_owned(),
            None => newest_package(&apt, line)?,
        };
        let dir = cache.join(&package);
        let root = dir.join("root");
        let ready = dir.join("unpacked");
        if !ready.exists() {
            unpack(&apt, &package, &dir, &root)?;
            fs::write(&ready, "")?;
        }
        let mut releases = fs::read_dir(root.join("lib/modules"))
            .with_context(|| format!("{package} has no lib/modules"))?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Some(release) = releases.pop().filter(|_| releases.is_empty()) else {
            bail!("{package}: expected exactly one directory in lib/modules, remove {} and retry", dir.display());
        };
        Ok(Self { package, release, root })
    }

    pub(super) fn vmlinuz(&self) -> PathBuf {
        self.root.join("boot").join(format!("vmlinuz-{}", self.release))
    }

    pub(super) fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.release)
    }

    pub(super) fn modules(&self) -> anyhow::Result<Modules> {
        Modules::read(&self.modules_dir())
    }
}

fn newest_package(apt: &Apt, line: Line) -> anyhow::Result<String> {
    if apt.needs_update() {
        run::status(apt.command("apt-get").args(["update", "-q"]))?;
    }
    let search = || {
        let mut names: Vec<String> =
            run::stdout(apt.command("apt-cache").args(["search", "--names-only", line.pattern()]))
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect();
        names.sort_by_key(|n| line.order(n));
        names.pop()
    };
    if let Some(name) = search() {
        return Ok(name);
    }
    eprintln!("xtask: apt knows no {} kernel package yet, running apt-get update", line.name());
    run::status(apt.command("apt-get").args(["update", "-q"]))?;
    search().with_context(|| match &apt.private {
        Some(dir) => format!("Debian's archive holds no {} kernel package ({}/sources.list)", line.name(), dir.display()),
        None => format!(
            "apt knows no {} kernel package: add Debian 12 (bookworm, bookworm-security, bookworm-backports) \
             to the apt sources or name a package with --kernel-package",
            line.name()
        ),
    })
}

fn unpack(apt: &Apt, package: &str, dir: &Path, root: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;
    eprintln!("xtask: fetching {package} (about 70 MB, once; cached in {})", dir.display());
    // The sandbox user _apt cannot write into the cache; the download is a plain file anyway.
    run::status(
        apt.command("apt-get")
            .args(["download", "-q", "-o", "APT::Sandbox::User=root", package])
            .current_dir(dir),
    )?;
    let deb = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb in {}", dir.display()))?;
    run::status(Command::new("dpkg").arg("-x").arg(&deb).arg(root))?;
    fs::remove_file(&deb)?;
    let release = fs::read_dir(root.join("lib/modules"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .with_context(|| format!("{package} holds no modules"))?;
    // The package ships no modules.dep: postinst makes it. depmod from kmod does the same here.
    run::status(Command::new("depmod").arg("-b").arg(root).arg(&release))
}

/// modules.dep and modules.builtin of one kernel.
pub(super) struct Modules {
    dir: PathBuf,
    /// Module name (underscores) -> (file relative to `dir`, names it depends on).
    deps: HashMap<String, (PathBuf, Vec<String>)>,
    builtin: HashSet<String>,
}

/// `kernel/fs/9p/9p.ko.xz` -> `9p`; module names use `_` where file names may use `-`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

impl Modules {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let dep = fs::read_to_string(dir.join("modules.dep"))
            .with_context(|| format!("no modules.dep in {} (depmod failed?)", dir.display()))?;
        let deps = dep
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(file, needs)| {
                (module_name(file), (PathBuf::from(file), needs.split_whitespace().map(module_name).collect()))
            })
            .collect();
        let builtin =
            fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default().lines().map(module_name).collect();
        Ok(Self { dir: dir.to_owned(), deps, builtin })
    }

    /// Files to insmod, dependencies first, for `names`; built-in modules are left out.
    pub(super) fn load_order(&self, names: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            self.visit(&name.replace('-', "_"), &mut seen, &mut order)?;
        }
        Ok(order)
    }

    fn visit(&self, name: &str, seen: &mut HashSet<String>, order: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        if self.builtin.contains(name) || !seen.insert(name.to_owned()) {
            return Ok(());
        }
        let Some((file, needs)) = self.deps.get(name) else {
            bail!("module {name} is neither in modules.dep nor built in ({})", self.dir.display());
        };
        for need in needs {
            self.visit(need, seen, order)?;
        }
        order.push(self.dir.join(file));
        Ok(())
    }

    pub(super) fn is_available(&self, name: &str) -> bool {
        let name = name.replace('-', "_");
        self.builtin.contains(&name) || self.deps.contains_key(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_builtins_are_skipped() {
        let mods = Modules {
            dir: PathBuf::from("/m"),
            deps: [
                ("9p", "kernel/fs/9p/9p.ko", &["9pnet", "fscache"][..]),
                ("9pnet", "kernel/net/9p/9pnet.ko", &[]),
                ("fscache", "kernel/fs/fscache/fscache.ko", &["netfs"]),
                ("netfs", "kernel/fs/netfs/netfs.ko", &[]),
            ]
            .into_iter()
            .map(|(n, f, d)| (n.to_owned(), (PathBuf::from(f), d.iter().map(|s| (*s).to_owned()).collect())))
            .collect(),
            builtin: HashSet::from(["virtio_pci".to_owned()]),
        };
        let order: Vec<String> = mods
            .load_order(&["virtio-pci", "9p", "9pnet"])
            .unwrap()
            .iter()
            .map(|p| module_name(&p.to_string_lossy()))
            .collect();
        assert_eq!(order, ["9pnet", "netfs", "fscache", "9p"]);
        assert!(mods.load_order(&["nope"]).is_err());
    }

    #[test]
    fn the_newest_package_of_a_line_has_the_highest_number() {
        assert_eq!(Line::V5_10.order("linux-image-5.10.0-46-amd64"), 46);
        assert_eq!(Line::V6_1.order("linux-image-6.1.0-56-amd64"), 56);
        assert_eq!(Line::V6_12.order("linux-image-6.12.118+deb12-amd64"), 118);
    }

    #[test]
    fn module_names_from_files() {
        assert_eq!(module_name("kernel/drivers/net/veth.ko"), "veth");
        assert_eq!(module_name("kernel/net/sched/sch-x.ko.xz"), "sch_x");
    }
}
