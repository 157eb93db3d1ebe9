//! The one trait every way of reaching rawlink.sys implements: open `\\.\RawLink`, DeviceIoControl, ReadFile,
//! WriteFile, CloseHandle. Everything typed ([`crate::Rawlink`], [`crate::Link`]) is written once over it.

use crate::error::{Error, Status};
use std::fmt::Debug;
use std::time::Duration;

/// A handle to the control device, as the backend numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawHandle(pub u64);

/// Why one request did not complete with success.
#[derive(Debug)]
pub enum Failure {
    /// The driver (or the I/O manager) completed it with this status.
    Status(Status),
    /// It was still pending when the timeout passed, and was cancelled.
    TimedOut,
    /// The backend itself failed (the hosted machine went down, an OS call failed).
    Backend(String),
}

/// A device-level result: the bytes transferred.
pub type Completion = std::result::Result<usize, Failure>;

/// A way to reach the driver's control device.
///
/// Every request waits until the driver completes it, or until `timeout` (`None`: no limit) passes, in which
/// case the request is cancelled (CancelIoEx / IoCancelIrp) and [`Failure::TimedOut`] is returned once the
/// cancellation finished — so the buffers are never in use after a call returns.
pub trait Backend: Send + Sync + Debug {
    /// Opens a new handle to `\\.\RawLink`. Failures are already mapped to what the user can do:
    /// [`Error::DriverNotInstalled`], [`Error::DriverNotStarted`], [`Error::AccessDenied`].
    fn open(&self) -> Result<RawHandle, Error>;
    /// Closes a handle (CleanupHandle then Close; waiting requests of it are cancelled by the driver).
    fn close(&self, handle: RawHandle);
    /// DeviceIoControl; the output lands in `output`, the count is returned.
    fn ioctl(
        &self,
        handle: RawHandle,
        code: u32,
        input: &[u8],
        output: &mut [u8],
        timeout: Option<Duration>,
    ) -> Completion;
    /// ReadFile into `output`.
    fn read(&self, handle: RawHandle, output: &mut [u8], timeout: Option<Duration>) -> Completion;
    /// WriteFile of `input`.
    fn write(&self, handle: RawHandle, input: &[u8], timeout: Option<Duration>) -> Completion;
    /// One line saying what this backend is, for status output.
    fn describe(&self) -> String;

    /// Attaches a mapped receive ring of `len` bytes to `handle` (IOCTL_RAWLINK_RING_ATTACH with `setup`,
    /// see `rawlink_abi::ring`): allocates page-aligned memory and leaves the attach request pending. A
    /// backend without shared memory answers STATUS_NOT_SUPPORTED.
    fn attach_ring(&self, handle: RawHandle, setup: &[u8], len: usize) -> Result<Box<dyn RingMemory>, Failure> {
        let _ = (handle, setup, len);
        Err(Failure::Status(Status::Nt(STATUS_NOT_SUPPORTED)))
    }

    /// Whether the driver detached `ring` (its attach request completed), and with what.
    fn ring_detached(&self, ring: &dyn RingMemory) -> Option<Failure> {
        let _ = ring;
        None
    }

    /// Detaches `ring` (cancels its attach request and waits until it completed); the memory may be freed
    /// afterwards.
    fn detach_ring(&self, ring: &dyn RingMemory) {
        let _ = ring;
    }
}

// CAST: the documented unsigned value of STATUS_NOT_SUPPORTED.
const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BBu32 as i32;

/// Memory shared with the driver for a mapped ring. The driver writes it at any time, so it is reached only
/// through these copies and atomic words, never through references.
pub trait RingMemory: Send + Sync + Debug {
    /// An acquire load of the u32 at `offset`.
    fn load_u32(&self, offset: usize) -> u32;
    /// A release store of `v` at `offset`.
    fn store_u32(&self, offset: usize, v: u32);
    /// Copies `out.len()` bytes from `offset`; false outside the memory.
    fn read_into(&self, offset: usize, out: &mut [u8]) -> bool;
    /// The backend's number of the attach request (to find it again).
    fn request(&self) -> usize;
    /// For downcasting by the backend that made it.
    fn as_any(&self) -> &dyn std::any::Any;
}
