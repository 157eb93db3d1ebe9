//! What can go wrong, in words a user can act on.

use std::fmt;

/// A failure status from the system: an NTSTATUS (the hosted backend, and IOCTL_RAWLINK_SEND's reply, see the
/// driver's own status) or a Win32 error code (what `GetLastError` says after a failed call on Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Nt(i32),
    Win32(u32),
}

/// What a [`Status`] means, whichever form it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    AccessDenied,
    NotFound,
    NoMoreEntries,
    BufferTooSmall,
    InvalidParameter,
    InvalidBufferSize,
    InvalidDeviceState,
    InvalidDeviceRequest,
    NotSupported,
    Timeout,
    Cancelled,
    PoweredOff,
    DeletePending,
    InsufficientResources,
    DeviceNotReady,
    Other,
}

// CAST: the unsigned hex the docs use, as the i32 NTSTATUS.
const NT: &[(i32, StatusKind, &str)] = &[
    (0xC000_0022u32 as i32, StatusKind::AccessDenied, "STATUS_ACCESS_DENIED"),
    (0xC000_0034u32 as i32, StatusKind::NotFound, "STATUS_OBJECT_NAME_NOT_FOUND"),
    (0xC000_0225u32 as i32, StatusKind::NotFound, "STATUS_NOT_FOUND"),
    (0x8000_001Au32 as i32, StatusKind::NoMoreEntries, "STATUS_NO_MORE_ENTRIES"),
    (0xC000_0023u32 as i32, StatusKind::BufferTooSmall, "STATUS_BUFFER_TOO_SMALL"),
    (0xC000_000Du32 as i32, StatusKind::InvalidParameter, "STATUS_INVALID_PARAMETER"),
    (0xC000_0206u32 as i32, StatusKind::InvalidBufferSize, "STATUS_INVALID_BUFFER_SIZE"),
    (0xC000_0184u32 as i32, StatusKind::InvalidDeviceState, "STATUS_INVALID_DEVICE_STATE"),
    (0xC000_0010u32 as i32, StatusKind::InvalidDeviceRequest, "STATUS_INVALID_DEVICE_REQUEST"),
    (0xC000_00BBu32 as i32, StatusKind::NotSupported, "STATUS_NOT_SUPPORTED"),
    (0xC000_00B5u32 as i32, StatusKind::Timeout, "STATUS_IO_TIMEOUT"),
    (0xC000_0120u32 as i32, StatusKind::Cancelled, "STATUS_CANCELLED"),
    (0xC000_048Fu32 as i32, StatusKind::PoweredOff, "STATUS_DEVICE_POWERED_OFF"),
    (0xC000_0056u32 as i32, StatusKind::DeletePending, "STATUS_DELETE_PENDING"),
    (0xC000_009Au32 as i32, StatusKind::InsufficientResources, "STATUS_INSUFFICIENT_RESOURCES"),
    (0xC000_00A3u32 as i32, StatusKind::DeviceNotReady, "STATUS_DEVICE_NOT_READY"),
    (0xC000_000Eu32 as i32, StatusKind::NotFound, "STATUS_NO_SUCH_DEVICE"),
];

/// Win32 codes as `RtlNtStatusToDosError` turns the statuses above into them.
const WIN32: &[(u32, StatusKind, &str)] = &[
    (5, StatusKind::AccessDenied, "ERROR_ACCESS_DENIED"),
    (2, StatusKind::NotFound, "ERROR_FILE_NOT_FOUND"),
    (3, StatusKind::NotFound, "ERROR_PATH_NOT_FOUND"),
    (1168, StatusKind::NotFound, "ERROR_NOT_FOUND"),
    (259, StatusKind::NoMoreEntries, "ERROR_NO_MORE_ITEMS"),
    (122, StatusKind::BufferTooSmall, "ERROR_INSUFFICIENT_BUFFER"),
    (87, StatusKind::InvalidParameter, "ERROR_INVALID_PARAMETER"),
    (1784, StatusKind::InvalidBufferSize, "ERROR_INVALID_USER_BUFFER"),
    (22, StatusKind::InvalidDeviceState, "ERROR_BAD_COMMAND"),
    (1, StatusKind::InvalidDeviceRequest, "ERROR_INVALID_FUNCTION"),
    (50, StatusKind::NotSupported, "ERROR_NOT_SUPPORTED"),
    (121, StatusKind::Timeout, "ERROR_SEM_TIMEOUT"),
    (995, StatusKind::Cancelled, "ERROR_OPERATION_ABORTED"),
    (21, StatusKind::DeviceNotReady, "ERROR_NOT_READY"),
    (1450, StatusKind::InsufficientResources, "ERROR_NO_SYSTEM_RESOURCES"),
    (1167, StatusKind::DeviceNotReady, "ERROR_DEVICE_NOT_CONNECTED"),
];

impl Status {
    fn entry(&self) -> Option<(StatusKind, &'static str)> {
        match *self {
            Status::Nt(s) => NT.iter().find(|e| e.0 == s).map(|e| (e.1, e.2)),
            Status::Win32(c) => WIN32.iter().find(|e| e.0 == c).map(|e| (e.1, e.2)),
        }
    }

    /// What the status means.
    pub fn kind(&self) -> StatusKind {
        self.entry().map_or(StatusKind::Other, |e| e.0)
    }

    /// Whether it reports a failure (an NTSTATUS error or warning, any Win32 code but 0).
    pub fn is_failure(&self) -> bool {
        match *self {
            Status::Nt(s) => s < 0,
            Status::Win32(c) => c != 0,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.entry().map(|e| e.1);
        match (*self, name) {
            // CAST: printed as the unsigned hex the docs use.
            (Status::Nt(s), Some(n)) => write!(f, "{n} ({:#010x})", s as u32),
            (Status::Nt(s), None) => write!(f, "NTSTATUS {:#010x}", s as u32),
            (Status::Win32(c), Some(n)) => write!(f, "{n} ({c})"),
            (Status::Win32(c), None) => write!(f, "Win32 error {c}"),
        }
    }
}

/// Why a rawlink call failed. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the rawlink driver is not installed: {hint}")]
    DriverNotInstalled { hint: String },
    #[error("the rawlink driver is installed but not running: {hint}")]
    DriverNotStarted { hint: String },
    #[error("access denied {what}: {hint}")]
    AccessDenied { what: String, hint: String },
    #[error("adapter `{wanted}` not found; {}", list_adapters(.available))]
    AdapterNotFound { wanted: String, available: Vec<String> },
    #[error("frame {index} ({len} bytes) was not sent: {reason}")]
    BadFrame { index: usize, len: usize, reason: String },
    #[error("{op} failed: {status}{}", hint_suffix(.hint))]
    Driver { op: &'static str, status: Status, hint: Option<String> },
    #[error("{op}: the driver's reply is malformed ({why})")]
    Malformed { op: &'static str, why: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Backend(String),
}

fn list_adapters(available: &[String]) -> String {
    if available.is_empty() {
        "the driver is bound to no adapter".to_owned()
    } else {
        format!("the driver is bound to: {}", available.join("; "))
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_in_both_forms() {
        assert_eq!(Status::Nt(0xC000_0022u32 as i32).kind(), StatusKind::AccessDenied);
        assert_eq!(Status::Win32(5).kind(), StatusKind::AccessDenied);
        assert_eq!(Status::Nt(0xC000_0022u32 as i32).to_string(), "STATUS_ACCESS_DENIED (0xc0000022)");
        assert_eq!(Status::Win32(4242).to_string(), "Win32 error 4242");
        assert_eq!(Status::Nt(0x1234).kind(), StatusKind::Other);
        assert!(Status::Nt(0x8000_001Au32 as i32).is_failure());
        assert!(!Status::Nt(0).is_failure());
    }

    #[test]
    fn adapter_not_found_lists_the_valid_ones() {
        let e = Error::AdapterNotFound { wanted: "eth9".into(), available: vec!["0: A".into(), "1: B".into()] };
        assert_eq!(e.to_string(), "adapter `eth9` not found; the driver is bound to: 0: A; 1: B");
        let e = Error::AdapterNotFound { wanted: "x".into(), available: vec![] };
        assert!(e.to_string().ends_with("bound to no adapter"));
    }
}
