//! A structured record of every call across the driver boundary.

use std::fmt;

/// Which way a call crossed the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The driver called a kernel/NDIS export.
    DriverToHost,
    /// The host called into the driver (DriverEntry, a ProtocolXxx handler, a dispatch routine ...).
    HostToDriver,
}

/// One call, with its arguments decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    pub seq: u64,
    pub direction: Direction,
    pub name: String,
    pub args: Vec<(&'static str, String)>,
    /// The result as the callee returned it (`None` until it returned, or for void functions).
    pub result: Option<String>,
    /// The IRQL at the call.
    pub irql: u8,
}

impl TraceEvent {
    /// The value of argument `name`, if recorded.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::DriverToHost => "driver -> host",
            Direction::HostToDriver => "host -> driver",
        };
        write!(f, "#{:<5} [irql {}] {arrow}  {}(", self.seq, self.irql, self.name)?;
        for (i, (n, v)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.result {
            write!(f, " = {r}")?;
        }
        Ok(())
    }
}

/// Formats an NTSTATUS/NDIS_STATUS with its name when known.
pub fn status(s: i32) -> String {
    // CAST: statuses are printed as the unsigned hex the docs use.
    let u = s as u32;
    let name = match u {
        0 => "STATUS_SUCCESS",
        0x103 => "STATUS_PENDING",
        0xC000_0001 => "STATUS_UNSUCCESSFUL",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xC000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xC000_009A => "STATUS_INSUFFICIENT_RESOURCES",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_0120 => "STATUS_CANCELLED",
        0xC001_0004 => "NDIS_STATUS_BAD_VERSION",
        0xC001_0005 => "NDIS_STATUS_BAD_CHARACTERISTICS",
        0xC001_0019 => "NDIS_STATUS_UNSUPPORTED_MEDIA",
        _ => return format!("{u:#010x}"),
    };
    format!("{name} ({u:#x})")
}
