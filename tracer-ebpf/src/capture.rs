//! The bytes of a frame copied into a scratch record, read by the parser with plain loads.

use tracer_common::SCRATCH_BYTES;

use crate::parse;

/// `len` bytes of a frame at `start` in a scratch slot.
pub struct Captured {
    base: *const u8,
    len: usize,
}

impl Captured {
    #[inline(always)]
    pub fn new(buf: *mut [u8; SCRATCH_BYTES], start: usize, len: usize) -> Self {
        // SAFETY: `start` is a constant inside the slot.
        Self { base: unsafe { buf.cast::<u8>().add(start) }, len }
    }
}

impl parse::Frame for Captured {
    #[inline(always)]
    fn load<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        if offset + N > self.len {
            return None;
        }
        // Masked so the verifier sees the read inside the slot (start + 0xffff + N fits).
        let offset = offset & 0xffff;
        // SAFETY: `offset + N <= len` bytes were copied there, and the mask keeps the read
        // inside the slot in any case.
        Some(unsafe { self.base.add(offset).cast::<[u8; N]>().read_unaligned() })
    }
}
