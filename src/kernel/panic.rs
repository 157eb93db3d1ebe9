//! The panic handler: a panic in kernel mode is a bug check.
//!
//! The bug check code is [`RAWLINK_PANIC_BUGCHECK`] (`0x524C4E4B`, "RLNK"). Its parameters let WinDbg find
//! the panic without symbols: P1 = line, P2 = column, P3 = address of the source file name (not
//! NUL-terminated), P4 = its length. The message is also printed with DbgPrintEx first.

use core::fmt::Write;
use ndis_sys::{DbgPrintEx, KeBugCheckEx, DPFLTR_ERROR_LEVEL, DPFLTR_IHVNETWORK_ID};

/// `'RLNK'`, big-endian, so `!analyze -v` shows 524c4e4b.
pub const RAWLINK_PANIC_BUGCHECK: u32 = u32::from_be_bytes(*b"RLNK");

/// A fixed-size, heap-free formatting buffer (the heap may be what failed).
struct MessageBuffer {
    bytes: [u8; 192],
    len: usize,
}

impl Write for MessageBuffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Keep one byte for the NUL; silently truncate the rest.
        let room = self.bytes.len().saturating_sub(1).saturating_sub(self.len);
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(self.len..self.len + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut msg = MessageBuffer { bytes: [0; 192], len: 0 };
    let _ = write!(msg, "{}", info.message());
    let (line, column, file) = info.location().map(|l| (l.line(), l.column(), l.file())).unwrap_or((0, 0, ""));
    // SAFETY: the format has one %s for a NUL-terminated byte string: `msg.bytes` always ends in a NUL
    // because `write_str` keeps the last byte free and the buffer starts zeroed.
    unsafe {
        DbgPrintEx(DPFLTR_IHVNETWORK_ID, DPFLTR_ERROR_LEVEL, c"rawlink: panic: %s\n".as_ptr(), msg.bytes.as_ptr())
    };
    // SAFETY: KeBugCheckEx may be called at any IRQL and does not return.
    unsafe { KeBugCheckEx(RAWLINK_PANIC_BUGCHECK, line as usize, column as usize, file.as_ptr() as usize, file.len()) }
}
