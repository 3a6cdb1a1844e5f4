//! Text and JSON lines: every record one line, written into a buffer that goes out once per
//! drain.

use std::io::{self, BufWriter, Write};

use super::EventWriter;
use crate::{
    drops, output,
    output::Format,
    probes,
    record::Record,
};

pub struct LineWriter {
    format: Format,
    buf: Vec<u8>,
    out: BufWriter<Box<dyn Write>>,
}

impl LineWriter {
    pub fn new(format: Format, out: Box<dyn Write>) -> Self {
        Self { format, buf: Vec::with_capacity(1 << 16), out: BufWriter::with_capacity(1 << 16, out) }
    }

    /// Appends raw bytes (the drop summary at exit).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn format(&self) -> Format {
        self.format
    }
}

/// Appends the line for `rec` in `format` to `buf`.
pub fn put_line(format: Format, buf: &mut Vec<u8>, rec: &Record<'_>) -> io::Result<()> {
    let meta = rec.place().meta();
    match rec {
        Record::Packet(r) => output::write_annotated(format, buf, &r.ev, meta, Some(&r.annotation)),
        Record::Drop(r) => drops::render::write(format, buf, &r.drop, meta),
        Record::Arp(r) => probes::render::write_arp(format, buf, &r.ev, meta, r.mode),
        Record::Neigh(r) => probes::render::write_neigh(format, buf, &r.ev, meta, r.mode),
    }
}

impl EventWriter for LineWriter {
    fn write(&mut self, rec: &Record<'_>) -> io::Result<()> {
        put_line(self.format, &mut self.buf, rec)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}
