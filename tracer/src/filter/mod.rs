//! The pcap-filter expression (`vethtrace [OPTIONS] [EXPRESSION...]`, `-F FILE`, `-d`):
//! compiled with libpcap (tracer-pcap) to classic BPF for an Ethernet link, as tcpdump compiles
//! it, and handed to the eBPF programs, which run it before they reserve a record
//! (tracer-ebpf/src/filter.rs).

pub(crate) mod jit;
pub mod rawprog;
pub mod translate;

use std::path::{Path, PathBuf};

use aya::EbpfLoader;
use tracer_common::filter::{FILTER_MAX_INSNS, FilterInsn, FilterProg, op};

/// Global holding the program's length (0: no expression).
const LEN_GLOBAL: &str = "FILTER_LEN";
/// Global holding the program.
const PROG_GLOBAL: &str = "FILTER_PROG";
/// What a matching `ret` returns (tcpdump's default snapshot length); only "not 0" matters.
const SNAPLEN: u32 = 262_144;
/// `BPF_JMP | BPF_JA`: libpcap's only backward jump is this one, with a negative offset.
const BPF_JA: u16 = op::JMP | op::JA;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// libpcap refused the expression; its message follows.
    #[error("syntax error in filter expression: {0}")]
    Syntax(String),
    #[error("cannot read the filter file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the filter expression compiles to {0} classic BPF instructions; the kernel side runs at most {FILTER_MAX_INSNS}: simplify it"
    )]
    TooLong(usize),
    /// The kernel side runs loop-free programs only (the verifier follows every path).
    #[error(
        "the filter expression loops (a backward jump at instruction {0}, from `protochain`), which the kernel side does not run: name the protocol instead (e.g. `ip6 and tcp`)"
    )]
    BackwardJump(usize),
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    insns: Vec<FilterInsn>,
    /// The kernel globals' values (borrowed by the loader): the program padded to its full
    /// size, and `insns.len()`.
    prog: FilterProg,
    len: u32,
}

impl Filter {
    /// Compiles `text`; an empty (or blank) text gives no filter.
    pub fn compile(text: &str) -> Result<Option<Self>, FilterError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let insns: Vec<FilterInsn> = tracer_pcap::compile(text, SNAPLEN)
            .map_err(|e| FilterError::Syntax(e.to_string()))?
            .into_iter()
            .map(|i| FilterInsn { code: i.code, jt: i.jt, jf: i.jf, k: i.k })
            .collect();
        if insns.len() > FILTER_MAX_INSNS {
            return Err(FilterError::TooLong(insns.len()));
        }
        if let Some(at) = insns.iter().position(|i| i.code == BPF_JA && i32::from_ne_bytes(i.k.to_ne_bytes()) < 0) {
            return Err(FilterError::BackwardJump(at));
        }
        let len = u32::try_from(insns.len()).map_err(|_| FilterError::TooLong(insns.len()))?;
        let mut prog = FilterProg::EMPTY;
        prog.insns[..insns.len()].copy_from_slice(&insns);
        Ok(Some(Self { text: text.to_owned(), insns, prog, len }))
    }

    /// The expression from the command line (words joined with spaces, as tcpdump does) or
    /// from `-F FILE`.
    pub fn from_args(words: &[String], file: Option<&Path>) -> Result<Option<Self>, FilterError> {
        match file {
            Some(path) => Self::compile(&read_file(path)?),
            None => Self::compile(&words.join(" ")),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn insns(&self) -> &[FilterInsn] {
        &self.insns
    }

    /// Sets the program and its length into the object's read-only globals before load.
    pub fn configure<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        loader.override_global(PROG_GLOBAL, &self.prog, true);
        loader.override_global(LEN_GLOBAL, &self.len, true);
    }
}

/// What `-d` prints: the program the kernel runs, one instruction a line as `tcpdump -d`
/// prints it (for no expression, libpcap's accept-all program).
pub fn dump(filter: Option<&Filter>) -> Result<String, FilterError> {
    let insns = match filter {
        Some(f) => f.insns.iter().map(|i| tracer_pcap::Insn { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect(),
        None => tracer_pcap::compile("", SNAPLEN).map_err(|e| FilterError::Syntax(e.to_string()))?,
    };
    Ok(tracer_pcap::dump(&insns))
}

/// A `-F` file's expression; as in tcpdump, `#` starts a comment that runs to the end of
/// the line.
fn read_file(path: &Path) -> Result<String, FilterError> {
    let text = std::fs::read_to_string(path).map_err(|source| FilterError::File { path: path.to_owned(), source })?;
    Ok(strip_comments(&text))
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|line| line.split('#').next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_expression_is_no_filter() {
        assert!(Filter::compile("").unwrap().is_none());
        assert!(Filter::compile("  \n").unwrap().is_none());
        assert!(Filter::from_args(&[], None).unwrap().is_none());
    }

    #[test]
    fn words_are_joined_like_tcpdump() {
        let words: Vec<String> = ["tcp", "port", "80"].map(String::from).into();
        let f = Filter::from_args(&words, None).unwrap().unwrap();
        assert_eq!(f.text(), "tcp port 80");
        let direct = tracer_pcap::compile("tcp port 80", SNAPLEN).unwrap();
        assert_eq!(f.insns().len(), direct.len());
        assert!(f.insns().iter().zip(&direct).all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
    }

    #[test]
    fn syntax_error_carries_libpcap_message() {
        let err = Filter::compile("tcp port").unwrap_err();
        assert_eq!(err.to_string(), "syntax error in filter expression: can't parse filter expression: syntax error");
        let err = Filter::compile("host 300.1.1.1").unwrap_err();
        assert!(matches!(err, FilterError::Syntax(_)), "{err}");
    }

    #[test]
    fn too_long_is_refused() {
        let long = (0..150).map(|i| format!("host 10.0.{}.{}", i / 250, i % 250)).collect::<Vec<_>>().join(" or ");
        match Filter::compile(&long) {
            Err(FilterError::TooLong(n)) => assert!(n > FILTER_MAX_INSNS),
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn protochain_loop_is_refused() {
        assert!(matches!(Filter::compile("ip6 protochain 6"), Err(FilterError::BackwardJump(_))));
        assert!(Filter::compile("ip6 proto 6").unwrap().is_some());
    }

    #[test]
    fn file_comments_are_stripped() {
        let dir = std::env::temp_dir().join(format!("vethtrace-filter-{}", std::process::id()));
        std::fs::write(&dir, "# web\ntcp port 80 # http\n  or udp port 53\n").unwrap();
        let f = Filter::from_args(&[], Some(&dir)).unwrap().unwrap();
        std::fs::remove_file(&dir).unwrap();
        let same = Filter::compile("tcp port 80 or udp port 53").unwrap().unwrap();
        assert_eq!(f.insns(), same.insns());
        assert!(matches!(Filter::from_args(&[], Some(Path::new("/nonexistent/f"))), Err(FilterError::File { .. })));
    }

    #[test]
    fn dump_matches_tcpdump_format() {
        let f = Filter::compile("arp").unwrap();
        assert_eq!(
            dump(f.as_ref()).unwrap(),
            "(000) ldh      [12]\n(001) jeq      #0x806           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n"
        );
        assert_eq!(dump(None).unwrap(), "(000) ret      #262144\n");
    }
}
