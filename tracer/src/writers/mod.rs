//! Writers: each takes typed records ([`crate::events::Record`]) and writes them in one format —
//! text or JSON lines ([`lines`]), pcapng ([`pcapng`]). Several can run at once (JSON to
//! standard output and pcapng to a file).

pub(crate) mod lines;
pub(crate) mod pcapng;

use std::{
    fs::File,
    io::{self, Write},
};

use anyhow::Context as _;

use self::{
    lines::LineWriter,
    pcapng::{PcapngOptions, PcapngWriter},
};
use crate::{
    cli::{OutputFormat, TraceArgs},
    events::Record,
    output::Format,
};

/// One output format.
pub(crate) trait EventWriter {
    /// Writes one record (into a buffer: [`EventWriter::flush`] sends it on).
    fn write(&mut self, rec: &Record<'_>) -> io::Result<()>;
    /// Sends what was written since the last flush (called once per ring-buffer drain).
    fn flush(&mut self) -> io::Result<()>;
}

/// Where records go: text/JSON lines, a pcapng capture, or both.
pub(crate) struct Outputs {
    pub lines: Option<LineWriter>,
    pub pcapng: Option<PcapngWriter>,
}

impl Outputs {
    /// Opens every output before anything is attached: a file that cannot be written is one
    /// error line and nothing to clean up.
    pub(crate) fn open(args: &TraceArgs) -> anyhow::Result<Self> {
        let lines = match args.line_format() {
            None | Some(OutputFormat::None) => None,
            Some(f) => {
                let format = if f == OutputFormat::Json { Format::Json } else { Format::Text };
                Some(LineWriter::new(format, open_line_output(args)?))
            }
        };
        let pcapng = match &args.write {
            None => None,
            Some(path) => Some(PcapngWriter::create(PcapngOptions {
                path: (path.as_os_str() != "-").then(|| path.clone()),
                snaplen: args.snaplen,
                file_size: args.file_size.map(|mb| mb * 1_000_000),
                file_count: args.file_count,
            })?),
        };
        Ok(Self { lines, pcapng })
    }

    pub(crate) fn write(&mut self, rec: &Record<'_>) -> io::Result<()> {
        if let Some(w) = &mut self.lines {
            w.write(rec)?;
        }
        if let Some(w) = &mut self.pcapng {
            w.write(rec)?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if let Some(w) = &mut self.lines {
            w.flush()?;
        }
        if let Some(w) = &mut self.pcapng {
            w.flush()?;
        }
        Ok(())
    }
}

fn open_line_output(args: &TraceArgs) -> anyhow::Result<Box<dyn Write>> {
    Ok(match &args.output_file {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout()),
    })
}

/// A broken pipe means the reader went away (`vethtrace | head`): stop as on Ctrl-C.
pub(crate) fn is_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
