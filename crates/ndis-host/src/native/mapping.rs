//! An anonymous memory mapping that holds a loaded image.

use std::io;

/// Page protections the loader applies per section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    ReadOnly,
    ReadWrite,
    ReadExecute,
    /// Never produced from a valid driver (the audit rejects W+X), but mapped faithfully if asked.
    ReadWriteExecute,
    NoAccess,
}

/// A private anonymous mapping, unmapped on drop.
///
/// # Invariants
///
/// `base..base + len` is a live mapping created by `mmap` and owned by this value.
#[derive(Debug)]
pub struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access is synchronised by its users (the loader
// writes it before any driver code runs; afterwards the driver and the host share it as a kernel would).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` gives out only addresses, never references into the memory.
unsafe impl Sync for Mapping {}

pub const PAGE_SIZE: usize = 4096;

impl Mapping {
    /// Maps `len` bytes (rounded up to pages), zeroed and read-write.
    pub fn new(len: usize) -> io::Result<Self> {
        Self::map(len, None)
    }

    /// Maps `len` bytes at `at` (page-aligned), zeroed and read-write; fails if any of it is mapped already.
    pub fn new_at(len: usize, at: usize) -> io::Result<Self> {
        if at == 0 || at % PAGE_SIZE != 0 {
            return Err(io::Error::other(format!("{at:#x} is not a page address")));
        }
        Self::map(len, Some(at))
    }

    fn map(len: usize, at: Option<usize>) -> io::Result<Self> {
        let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or_else(|| io::Error::other("image too large"))?;
        if len == 0 {
            return Err(io::Error::other("empty image"));
        }
        let (hint, fixed) = match at {
            Some(a) => (a as *mut libc::c_void, libc::MAP_FIXED_NOREPLACE),
            None => (std::ptr::null_mut(), 0),
        };
        // SAFETY: an anonymous private mapping has no preconditions; MAP_FIXED_NOREPLACE never replaces an
        // existing mapping (the call fails with EEXIST instead).
        let p = unsafe {
            libc::mmap(
                hint,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | fixed,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Kernels before 4.17 take MAP_FIXED_NOREPLACE as a hint and may map elsewhere.
        if at.is_some_and(|a| p as usize != a) {
            // SAFETY: `p` is the fresh mapping of `len` bytes just created, used by nothing else.
            unsafe { libc::munmap(p, len) };
            return Err(io::Error::other(format!("{:#x} is not free for {len} bytes", at.unwrap_or_default())));
        }
        // INVARIANT: `p` is a fresh mapping of `len` bytes.
        Ok(Self { base: p.cast(), len })
    }

    pub fn base(&self) -> usize {
        self.base as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to `offset`. Only used while loading, before any driver code runs.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(bytes.len()).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(io::Error::other(format!("write of {} bytes at {offset:#x} leaves the image", bytes.len())));
        }
        // SAFETY: the range is inside the mapping (checked above) and still writable: protections are only
        // tightened after loading finished; `&mut self` excludes concurrent access.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.wrapping_add(offset), bytes.len()) };
        Ok(())
    }

    /// Reads `N` bytes at `offset`.
    pub fn read<const N: usize>(&self, offset: usize) -> io::Result<[u8; N]> {
        if offset.checked_add(N).is_none_or(|e| e > self.len) {
            return Err(io::Error::other(format!("read of {N} bytes at {offset:#x} leaves the image")));
        }
        let mut out = [0u8; N];
        // SAFETY: inside the mapping (checked); the driver may write these bytes concurrently, so they are
        // copied out with a volatile-free byte copy into a local, never referenced in place.
        unsafe { std::ptr::copy_nonoverlapping(self.base.wrapping_add(offset), out.as_mut_ptr(), N) };
        Ok(out)
    }

    /// Copies `len` bytes at `offset` out (the loader reads code it patches this way).
    pub fn read_vec(&self, offset: usize, len: usize) -> io::Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(io::Error::other(format!("read of {len} bytes at {offset:#x} leaves the image")));
        }
        let mut out = vec![0u8; len];
        // SAFETY: inside the mapping (checked) and readable: only called while loading, before any section
        // protection is applied.
        unsafe { std::ptr::copy_nonoverlapping(self.base.wrapping_add(offset), out.as_mut_ptr(), len) };
        Ok(out)
    }

    /// Sets the protection of `offset..offset + len` (page-rounded).
    pub fn protect(&self, offset: usize, len: usize, prot: Protection) -> io::Result<()> {
        let start = offset - offset % PAGE_SIZE;
        let end = offset
            .checked_add(len)
            .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
            .filter(|&e| e <= self.len)
            .ok_or_else(|| io::Error::other("protect range leaves the image"))?;
        let flags = match prot {
            Protection::ReadOnly => libc::PROT_READ,
            Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
            Protection::ReadWriteExecute => libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            Protection::NoAccess => libc::PROT_NONE,
        };
        // SAFETY: the page-aligned range lies inside this mapping (checked above).
        let r = unsafe { libc::mprotect(self.base.wrapping_add(start).cast(), end - start, flags) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: type invariant: a live mapping owned by this value.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
