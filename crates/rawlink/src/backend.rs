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
}
