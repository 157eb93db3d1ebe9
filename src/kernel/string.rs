//! UTF-16 strings for kernel APIs: compile-time conversion of ASCII literals and `UNICODE_STRING` views.

use ndis_sys::UNICODE_STRING;

/// Converts an ASCII string literal to a `&'static [u16]` at compile time (no terminating NUL).
#[macro_export]
macro_rules! utf16 {
    ($s:expr) => {{
        const S: &str = $s;
        const N: usize = S.len();
        const W: [u16; N] = {
            let bytes = S.as_bytes();
            let mut w = [0u16; N];
            let mut i = 0;
            while i < N {
                assert!(bytes[i] < 0x80, "utf16! takes ASCII only");
                // CAST: an ASCII byte is the same code unit in UTF-16.
                w[i] = bytes[i] as u16;
                i += 1;
            }
            w
        };
        &W
    }};
}

/// A `UNICODE_STRING` describing a static UTF-16 string, for APIs that only read it.
///
/// # Invariants
///
/// `Buffer` points to `Length / 2` code units that live for `'static` and are never written through it.
#[derive(Clone, Copy)]
pub struct StaticUnicode(UNICODE_STRING);

impl StaticUnicode {
    /// Returns `None` if the string is longer than a `UNICODE_STRING` can describe (32 KiB).
    pub fn new(s: &'static [u16]) -> Option<Self> {
        let bytes = u16::try_from(s.len().checked_mul(2)?).ok()?;
        // INVARIANT: the buffer is 'static; callers only pass it to read-only parameters (see `as_ptr`).
        Some(Self(UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: s.as_ptr().cast_mut() }))
    }

    /// The raw value, e.g. for `NDIS_PROTOCOL_DRIVER_CHARACTERISTICS.Name`.
    pub fn get(&self) -> UNICODE_STRING {
        self.0
    }

    /// A pointer for `PCUNICODE_STRING`/`PUNICODE_STRING` parameters the callee only reads.
    pub fn as_ptr(&self) -> *mut UNICODE_STRING {
        core::ptr::from_ref(&self.0).cast_mut()
    }
}
