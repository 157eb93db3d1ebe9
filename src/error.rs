//! The driver's error type: a failure NTSTATUS, never `STATUS_SUCCESS`.
//!
//! NDIS_STATUS values used by protocol drivers are NTSTATUS values (`NDIS_STATUS_FAILURE` is
//! `STATUS_UNSUCCESSFUL`, `NDIS_STATUS_RESOURCES` is `STATUS_INSUFFICIENT_RESOURCES`, ...), so one type serves
//! both sides of the driver.

use core::fmt;
use core::num::NonZeroI32;

/// A failure status.
///
/// # Invariants
///
/// The value is a negative NTSTATUS (severity error or warning bit set: `0x8xxx_xxxx` or `0xCxxx_xxxx`).
/// Success and informational statuses (including `STATUS_PENDING`) cannot be represented, so `Err(..)` can
/// never carry a success.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(NonZeroI32);

/// The driver's result type.
pub type Result<T = (), E = Error> = core::result::Result<T, E>;

macro_rules! declare_status {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl Error {
            $(
                $(#[$doc])*
                pub const $name: Error = match Error::from_status($value as i32) {
                    Some(e) => e,
                    None => panic!("not a failure status"),
                };
            )*
        }
        #[cfg(test)]
        const DECLARED: &[(&str, Error)] = &[$((stringify!($name), Error::$name)),*];
    };
}

declare_status! {
    /// `STATUS_UNSUCCESSFUL` (= `NDIS_STATUS_FAILURE`).
    UNSUCCESSFUL = 0xC000_0001u32;
    /// `STATUS_ACCESS_DENIED`: an OID a handle may not set.
    ACCESS_DENIED = 0xC000_0022u32;
    /// `STATUS_DEVICE_POWERED_OFF`: the adapter is in a low-power state.
    DEVICE_POWERED_OFF = 0xC000_048Fu32;
    /// `STATUS_NOT_IMPLEMENTED`.
    NOT_IMPLEMENTED = 0xC000_0002u32;
    /// `STATUS_INVALID_PARAMETER` (= `NDIS_STATUS_INVALID_PARAMETER`).
    INVALID_PARAMETER = 0xC000_000Du32;
    /// `STATUS_INVALID_DEVICE_REQUEST` (= `NDIS_STATUS_INVALID_DEVICE_REQUEST`).
    INVALID_DEVICE_REQUEST = 0xC000_0010u32;
    /// `STATUS_INSUFFICIENT_RESOURCES` (= `NDIS_STATUS_RESOURCES`).
    INSUFFICIENT_RESOURCES = 0xC000_009Au32;
    /// `STATUS_NOT_SUPPORTED` (= `NDIS_STATUS_NOT_SUPPORTED`).
    NOT_SUPPORTED = 0xC000_00BBu32;
    /// `STATUS_BUFFER_TOO_SMALL` (= `NDIS_STATUS_BUFFER_TOO_SHORT`).
    BUFFER_TOO_SMALL = 0xC000_0023u32;
    /// `STATUS_DEVICE_NOT_READY`.
    DEVICE_NOT_READY = 0xC000_00A3u32;
    /// `STATUS_INVALID_DEVICE_STATE`: a routine was called in a state (or at an IRQL) it does not allow.
    INVALID_DEVICE_STATE = 0xC000_0184u32;
    /// `STATUS_CANCELLED` (= `NDIS_STATUS_REQUEST_ABORTED`).
    CANCELLED = 0xC000_0120u32;
    /// `STATUS_INVALID_BUFFER_SIZE`.
    INVALID_BUFFER_SIZE = 0xC000_0206u32;
    /// `STATUS_REVISION_MISMATCH`.
    REVISION_MISMATCH = 0xC000_0059u32;
    /// `STATUS_NO_MORE_ENTRIES` (a warning-class status): an enumeration ran past its end.
    NO_MORE_ENTRIES = 0x8000_001Au32;
    /// `STATUS_NOT_FOUND`: no such binding.
    NOT_FOUND = 0xC000_0225u32;
    /// `STATUS_IO_TIMEOUT`: a bounded wait ran out.
    IO_TIMEOUT = 0xC000_00B5u32;
    /// `STATUS_DELETE_PENDING`: a request on a handle whose IRP_MJ_CLEANUP already ran.
    DELETE_PENDING = 0xC000_0056u32;
    /// `STATUS_PRIVILEGE_NOT_HELD`: a handle whose opener is neither an administrator nor holds
    /// SeTcbPrivilege asked to send as any source.
    PRIVILEGE_NOT_HELD = 0xC000_0061u32;
    /// `STATUS_INVALID_SECURITY_DESCR`: a malformed replacement security descriptor.
    INVALID_SECURITY_DESCR = 0xC000_0079u32;
    /// `STATUS_OBJECT_PATH_NOT_FOUND`: an open of a name below the control device (it has no namespace).
    OBJECT_PATH_NOT_FOUND = 0xC000_003Au32;
    /// `STATUS_QUOTA_EXCEEDED`: the driver's pool budget (see `crate::budget`) would be passed.
    QUOTA_EXCEEDED = 0xC000_0044u32;
    /// `NDIS_STATUS_BAD_VERSION`.
    NDIS_BAD_VERSION = 0xC001_0004u32;
    /// `NDIS_STATUS_UNSUPPORTED_MEDIA`.
    NDIS_UNSUPPORTED_MEDIA = 0xC001_0019u32;
}

impl Error {
    /// Wraps `status` if it is a failure status (negative NTSTATUS).
    pub const fn from_status(status: i32) -> Option<Error> {
        if status < 0 {
            match NonZeroI32::new(status) {
                // INVARIANT: `status` is negative.
                Some(v) => Some(Error(v)),
                None => None,
            }
        } else {
            None
        }
    }

    /// The NTSTATUS / NDIS_STATUS value.
    pub const fn to_status(self) -> i32 {
        self.0.get()
    }
}

/// Converts an NTSTATUS returned by the kernel or NDIS: success and informational values are `Ok`.
pub fn nt_result(status: i32) -> Result<i32> {
    match Error::from_status(status) {
        Some(e) => Err(e),
        None => Ok(status),
    }
}

/// Maps a `Result` to the status a callback returns.
pub fn to_status(r: Result) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_status(),
    }
}

impl From<alloc::collections::TryReserveError> for Error {
    fn from(_: alloc::collections::TryReserveError) -> Self {
        Error::INSUFFICIENT_RESOURCES
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // CAST: print the status the way WinDbg and the docs write it.
        write!(f, "Error({:#010x})", self.0.get() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_are_errors() {
        assert_eq!(Error::from_status(0), None);
        assert_eq!(Error::from_status(0x103), None); // STATUS_PENDING is not an error
        assert_eq!(nt_result(0x103), Ok(0x103));
        // CAST: NTSTATUS literals are written as unsigned hex.
        let e = Error::from_status(0xC000_0001u32 as i32);
        assert_eq!(e, Some(Error::UNSUCCESSFUL));
        assert_eq!(nt_result(0xC000_009Au32 as i32), Err(Error::INSUFFICIENT_RESOURCES));
    }

    #[test]
    fn declared_statuses_are_failures_and_distinct() {
        for (i, (name, e)) in DECLARED.iter().enumerate() {
            assert!(e.to_status() < 0, "{name}");
            for (other, f) in DECLARED.iter().skip(i + 1) {
                assert_ne!(e, f, "{name} and {other} share a value");
            }
        }
    }

    #[test]
    fn callback_status() {
        assert_eq!(to_status(Ok(())), 0);
        assert_eq!(to_status(Err(Error::NOT_SUPPORTED)), 0xC000_00BBu32 as i32);
        assert_eq!(std::format!("{:?}", Error::CANCELLED), "Error(0xc0000120)");
    }
}
