//! Reading and writing memory the driver also uses.
//!
//! The driver may write its structures (and the ones the host lends it) at any time, so the host never holds
//! a Rust reference into them: values are copied in and out, as vm-memory does for guest memory.

use std::ffi::c_void;

/// Copies a `T` out of driver-visible memory.
///
/// # Safety
///
/// `addr` is valid for reads of `size_of::<T>()` bytes and holds a valid `T` (the ndis-sys types are plain
/// integers and pointers, valid for any bit pattern).
pub unsafe fn read_obj<T: Copy>(addr: usize) -> T {
    // SAFETY: guaranteed by the caller; read_unaligned tolerates any alignment the driver chose.
    unsafe { std::ptr::read_unaligned(addr as *const T) }
}

/// Copies a `T` into driver-visible memory.
///
/// # Safety
///
/// `addr` is valid for writes of `size_of::<T>()` bytes that nobody reads concurrently as something else.
pub unsafe fn write_obj<T: Copy>(addr: usize, value: T) {
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::write_unaligned(addr as *mut T, value) }
}

/// Copies `len` bytes out of driver-visible memory.
///
/// # Safety
///
/// `addr..addr + len` is readable.
pub unsafe fn read_bytes(addr: usize, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: guaranteed by the caller (no zero fill first: a read's 256 KiB result would be written twice).
    unsafe { append_bytes(addr, len, &mut v) };
    v
}

/// Appends `len` bytes of driver-visible memory at `addr` to `out`.
///
/// # Safety
///
/// `addr..addr + len` is readable.
pub unsafe fn append_bytes(addr: usize, len: usize, out: &mut Vec<u8>) {
    // SAFETY: guaranteed by the caller.
    out.extend_from_slice(unsafe { std::slice::from_raw_parts(addr as *const u8, len) });
}

/// Copies `bytes` into driver-visible memory at `addr`.
///
/// # Safety
///
/// `addr..addr + bytes.len()` is writable and nobody else uses it.
pub unsafe fn write_bytes(addr: usize, bytes: &[u8]) {
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
}

/// Fills `len` bytes at `addr` with `byte`.
///
/// # Safety
///
/// `addr..addr + len` is writable and nobody else uses it.
pub unsafe fn fill(addr: usize, len: usize, byte: u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::write_bytes(addr as *mut u8, byte, len) }
}

/// Reads a counted UTF-16 string (`UNICODE_STRING.Length` bytes at `Buffer`).
///
/// # Safety
///
/// `buffer..buffer + byte_len` is readable.
pub unsafe fn read_utf16(buffer: usize, byte_len: usize) -> String {
    let units: Vec<u16> = (0..byte_len / 2)
        .map(|i| {
            // SAFETY: inside the range the caller vouches for.
            unsafe { read_obj::<u16>(buffer + i * 2) }
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// Reads a NUL-terminated byte string, at most `max` bytes.
///
/// # Safety
///
/// The bytes up to the terminator (or `max`) are readable.
pub unsafe fn read_cstr(addr: usize, max: usize) -> String {
    let mut out = Vec::new();
    for i in 0..max {
        // SAFETY: the caller vouches for the string up to its terminator.
        let b = unsafe { read_obj::<u8>(addr + i) };
        if b == 0 {
            break;
        }
        out.push(b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A zeroed heap block the host lends the driver (a DRIVER_OBJECT, an IRP, an NBL ...), freed on drop.
///
/// # Invariants
///
/// `ptr` was allocated with `layout` and is owned by this value.
#[derive(Debug)]
pub struct HostBlock {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: the block is plain memory; the host and driver synchronise access as the kernel contract says.
unsafe impl Send for HostBlock {}
// SAFETY: as above; `&HostBlock` only gives out the address.
unsafe impl Sync for HostBlock {}

impl HostBlock {
    /// A zeroed block of `size` bytes aligned to `align` (at least 16, like pool).
    pub fn new(size: usize, align: usize) -> Option<Self> {
        let layout = std::alloc::Layout::from_size_align(size.max(1), align.max(16)).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        // INVARIANT: allocated with `layout`.
        (!ptr.is_null()).then_some(Self { ptr, layout })
    }

    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    pub fn as_ptr<T>(&self) -> *mut T {
        self.ptr.cast()
    }

    pub fn void(&self) -> *mut c_void {
        self.ptr.cast()
    }

    pub fn size(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HostBlock {
    fn drop(&mut self) {
        // SAFETY: type invariant.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}
