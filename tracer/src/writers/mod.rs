//! Writers: each takes typed records ([`crate::record`]) and writes them in one format —
//! text or JSON lines ([`lines`]), pcapng ([`pcapng`]). Several can run at once (JSON to
//! standard output and pcapng to a file).

pub(crate) mod lines;
pub(crate) mod pcapng;

use std::io;

use crate::events::Record;

/// One output format.
pub(crate) trait EventWriter {
    /// Writes one record (into a buffer: [`EventWriter::flush`] sends it on).
    fn write(&mut self, rec: &Record<'_>) -> io::Result<()>;
    /// Sends what was written since the last flush (called once per ring-buffer drain).
    fn flush(&mut self) -> io::Result<()>;
}

/// A broken pipe means the reader went away (`vethtrace | head`): stop as on Ctrl-C.
pub(crate) fn is_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
