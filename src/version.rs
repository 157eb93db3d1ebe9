//! NDIS version negotiation.
//!
//! DriverEntry asks the running NDIS for its version (`NdisGetVersion`), refuses anything older than the
//! oldest version rawlink supports, and registers the highest version whose semantics the driver implements
//! that the OS also has. Every structure revision the driver fills is chosen from the negotiated version.
//!
//! Why the ceiling matters: registering a version promises the semantics that come with it. NDIS 6.89, for
//! instance, lets NIC receive-segment coalescing (URO) stay on, so a 6.89 protocol must accept coalesced
//! receive units. [`DRIVER_MAX`] is raised only together with the code that honours the new semantics.

use crate::error::{Error, Result};
use core::fmt;

/// An NDIS version, `major.minor`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NdisVersion {
    pub major: u8,
    pub minor: u8,
}

impl NdisVersion {
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// Decodes `NdisGetVersion()`'s value: major in bits 16..24, minor in bits 0..8
    /// (`NDIS_RUNTIME_VERSION_6xx = (6 << 16) | minor`).
    pub const fn from_runtime(v: u32) -> Self {
        // CAST: both fields are 8 bits wide by definition of the encoding; higher bits are ignored.
        Self { major: ((v >> 16) & 0xFF) as u8, minor: (v & 0xFF) as u8 }
    }

    /// The `NDIS_RUNTIME_VERSION_*` encoding.
    pub const fn to_runtime(self) -> u32 {
        ((self.major as u32) << 16) | self.minor as u32
    }
}

impl fmt::Debug for NdisVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for NdisVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// NDIS 6.30, Windows 8 / Server 2012: the oldest NDIS rawlink runs on. Every Windows 10 and 11 is newer.
pub const DRIVER_MIN: NdisVersion = NdisVersion::new(6, 30);

/// The newest NDIS whose semantics this driver implements.
///
/// 6.89: the characteristics stay revision 2 (which carries DirectOidRequestComplete) for every 6.x; OID
/// requests use revision 2 from 6.50 on; bind parameters and PnP notifications are read only in their
/// revision-1 fields, present in every later revision. Registering 6.89 promises to accept coalesced
/// receives: TCP RSC and UDP URO units are delivered unchanged with their segment count and size and
/// checksum results in the frame header (see [`crate::meta`]), so NDIS keeps URO on for the NIC.
pub const DRIVER_MAX: NdisVersion = NdisVersion::new(6, 89);

/// Picks the version to register: the OS's own, clamped to [`DRIVER_MAX`]; an OS older than [`DRIVER_MIN`]
/// is refused with `NDIS_STATUS_BAD_VERSION`, the status NDIS itself uses for a version it cannot serve.
pub fn negotiate(os_runtime_version: u32) -> Result<NdisVersion> {
    let os = NdisVersion::from_runtime(os_runtime_version);
    if os < DRIVER_MIN {
        return Err(Error::NDIS_BAD_VERSION);
    }
    Ok(if os > DRIVER_MAX { DRIVER_MAX } else { os })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let v = NdisVersion::from_runtime(0x0006_0059);
        assert_eq!(v, NdisVersion::new(6, 89));
        assert_eq!(v.to_runtime(), 0x0006_0059);
        assert_eq!(std::format!("{v}"), "6.89");
    }

    #[test]
    fn older_than_minimum_is_refused() {
        assert_eq!(negotiate(0x0006_0014), Err(Error::NDIS_BAD_VERSION)); // 6.20, Windows 7
        assert_eq!(negotiate(0x0005_0001), Err(Error::NDIS_BAD_VERSION));
        assert_eq!(negotiate(0), Err(Error::NDIS_BAD_VERSION));
    }

    #[test]
    fn clamps_to_what_the_driver_implements() {
        assert_eq!(negotiate(0x0006_001E), Ok(NdisVersion::new(6, 30)));
        assert_eq!(negotiate(0x0006_0032), Ok(NdisVersion::new(6, 50))); // Windows 10 1507 registers its own
        assert_eq!(negotiate(0x0006_0059), Ok(NdisVersion::new(6, 89)));
        assert_eq!(DRIVER_MAX, NdisVersion::new(6, 89));
        assert_eq!(negotiate(0x0007_0000), Ok(DRIVER_MAX)); // a future major version
        assert!(DRIVER_MIN <= DRIVER_MAX);
    }
}
