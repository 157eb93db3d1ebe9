//! Who may open the control device. Pure logic, no FFI: the security descriptor the driver puts on
//! `\Device\RawLink`, the check of an administrator's replacement for it, and what a handle may do.
//!
//! The default is the SDDL `D:P(A;;GA;;;SY)(A;;GA;;;BA)`: a protected DACL granting all access to SYSTEM
//! and to the Administrators group, and nothing to anyone else. It is built here in the self-relative
//! binary form of [MS-DTYP] 2.4.6 (what IoCreateDeviceSecure makes from that SDDL string, and what the
//! class key's `Security` value holds). GENERIC_ALL is written already mapped to FILE_ALL_ACCESS, as
//! the I/O manager maps generic rights for device objects.
//!
//! An administrator can replace it as for a device created by IoCreateDeviceSecure: a self-relative
//! descriptor in the REG_BINARY value `Security` of
//! `HKLM\SYSTEM\CurrentControlSet\Control\Class\{DEVICE_CLASS_GUID}\Properties`.

use crate::error::{Error, Result};

/// S-1-5-18, LocalSystem.
pub const SYSTEM_SID: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
/// S-1-5-32-544, BUILTIN\Administrators.
pub const ADMINISTRATORS_SID: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
/// What GENERIC_ALL means for a file or device object.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

/// SECURITY_DESCRIPTOR_CONTROL bits.
pub const SE_DACL_PRESENT: u16 = 0x0004;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const SE_SELF_RELATIVE: u16 = 0x8000;

const SD_HEADER: usize = 20;
const ACL_HEADER: usize = 8;
const ACE_HEADER: usize = 8;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACL_REVISION: u8 = 2;

/// Length of [`default_descriptor`].
pub const DEFAULT_LEN: usize =
    SD_HEADER + ACL_HEADER + ACE_HEADER + SYSTEM_SID.len() + ACE_HEADER + ADMINISTRATORS_SID.len();

/// The largest replacement descriptor the driver reads from the registry.
pub const MAX_LEN: usize = 4096;

/// `D:P(A;;GA;;;SY)(A;;GA;;;BA)` as a self-relative security descriptor (owner and group left to the
/// object manager's defaults, no SACL).
pub fn default_descriptor() -> [u8; DEFAULT_LEN] {
    let mut sd = [0u8; DEFAULT_LEN];
    let aces: [&[u8]; 2] = [&SYSTEM_SID, &ADMINISTRATORS_SID];
    let acl_len = ACL_HEADER + aces.iter().map(|s| ACE_HEADER + s.len()).sum::<usize>();
    let mut w = Writer { buf: &mut sd, at: 0 };
    // SECURITY_DESCRIPTOR_RELATIVE: Revision, Sbz1, Control, OffsetOwner, OffsetGroup, OffsetSacl, OffsetDacl.
    w.put(&[1, 0]);
    w.put(&(SE_SELF_RELATIVE | SE_DACL_PRESENT | SE_DACL_PROTECTED).to_le_bytes());
    w.put(&[0; 12]);
    // CAST: a 20-byte header.
    w.put(&(SD_HEADER as u32).to_le_bytes());
    // ACL: AclRevision, Sbz1, AclSize, AceCount, Sbz2.
    w.put(&[ACL_REVISION, 0]);
    // CAST: tens of bytes.
    w.put(&(acl_len as u16).to_le_bytes());
    // CAST: two ACEs.
    w.put(&(aces.len() as u16).to_le_bytes());
    w.put(&[0, 0]);
    for sid in aces {
        // ACCESS_ALLOWED_ACE: AceType, AceFlags, AceSize, Mask, SidStart.
        w.put(&[ACCESS_ALLOWED_ACE_TYPE, 0]);
        // CAST: tens of bytes.
        w.put(&((ACE_HEADER + sid.len()) as u16).to_le_bytes());
        w.put(&FILE_ALL_ACCESS.to_le_bytes());
        w.put(sid);
    }
    sd
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(d) = self.buf.get_mut(self.at..self.at + bytes.len()) {
            d.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

/// Checks a replacement descriptor an administrator stored in the registry before the driver applies it:
/// self-relative, revision 1, with a DACL present that lies inside the value and whose ACEs do too. (The
/// kernel's RtlValidRelativeSecurityDescriptor checks it again.) A descriptor without a DACL would give
/// everyone access, so it is refused like a malformed one: STATUS_INVALID_SECURITY_DESCR, and the driver
/// keeps its default.
pub fn check_replacement(sd: &[u8]) -> Result {
    let bad = Error::INVALID_SECURITY_DESCR;
    let u16_at = |at: usize| sd.get(at..).and_then(<[u8]>::first_chunk).map(|b| u16::from_le_bytes(*b));
    let u32_at = |at: usize| sd.get(at..).and_then(<[u8]>::first_chunk).map(|b| u32::from_le_bytes(*b));
    if sd.len() < SD_HEADER || sd.len() > MAX_LEN || sd.first() != Some(&1) {
        return Err(bad);
    }
    let control = u16_at(2).ok_or(bad)?;
    if control & SE_SELF_RELATIVE == 0 || control & SE_DACL_PRESENT == 0 {
        return Err(bad);
    }
    let dacl = u32_at(16).ok_or(bad)? as usize;
    if dacl < SD_HEADER {
        return Err(bad);
    }
    let acl_size = usize::from(u16_at(dacl + 2).ok_or(bad)?);
    let ace_count = u16_at(dacl + 4).ok_or(bad)?;
    if acl_size < ACL_HEADER || dacl + acl_size > sd.len() {
        return Err(bad);
    }
    let mut at = dacl + ACL_HEADER;
    for _ in 0..ace_count {
        let size = usize::from(u16_at(at + 2).ok_or(bad)?);
        if size < ACE_HEADER || at + size > dacl + acl_size {
            return Err(bad);
        }
        at += size;
    }
    Ok(())
}

/// What the opener of a handle may do beyond sending as itself, decided once at IRP_MJ_CREATE from the
/// caller's security context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opener {
    /// The caller's token is an administrator's (SeTokenIsAdmin).
    pub administrator: bool,
    /// The caller holds SeTcbPrivilege ("act as part of the operating system").
    pub tcb: bool,
}

impl Opener {
    /// Whether the handle may send frames whose source MAC is not the adapter's
    /// (IOCTL_RAWLINK_ALLOW_ANY_SOURCE): spoofing another station is for administrators and the system.
    /// Otherwise STATUS_PRIVILEGE_NOT_HELD.
    pub fn check_any_source(self) -> Result {
        if self.administrator || self.tcb {
            Ok(())
        } else {
            Err(Error::PRIVILEGE_NOT_HELD)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_system_and_administrators_only() {
        let sd = default_descriptor();
        assert_eq!(check_replacement(&sd), Ok(()));
        // The layout MS-DTYP gives D:P(A;;GA;;;SY)(A;;GA;;;BA), GA mapped for files.
        assert_eq!(&sd[..4], &[1, 0, 0x04, 0x90]);
        assert_eq!(&sd[16..20], &20u32.to_le_bytes());
        assert_eq!(&sd[20..28], &[2, 0, 52, 0, 2, 0, 0, 0]);
        assert_eq!(&sd[28..32], &[0, 0, 20, 0]);
        assert_eq!(&sd[32..36], &0x001F_01FFu32.to_le_bytes());
        assert_eq!(&sd[36..48], &SYSTEM_SID);
        assert_eq!(&sd[48..52], &[0, 0, 24, 0]);
        assert_eq!(&sd[56..72], &ADMINISTRATORS_SID);
        assert_eq!(DEFAULT_LEN, 72);
    }

    #[test]
    fn malformed_replacements_are_refused() {
        let good = default_descriptor();
        let bad = Err(Error::INVALID_SECURITY_DESCR);
        assert_eq!(check_replacement(&good[..19]), bad);
        assert_eq!(check_replacement(&good[..71]), bad, "the ACL runs past the value");
        let mut no_dacl = good;
        no_dacl[2] &= !0x04;
        assert_eq!(check_replacement(&no_dacl), bad, "no DACL: everyone would have access");
        let mut absolute = good;
        absolute[3] &= !0x80;
        assert_eq!(check_replacement(&absolute), bad, "an absolute descriptor holds pointers");
        let mut big_ace = good;
        big_ace[30] = 200;
        assert_eq!(check_replacement(&big_ace), bad, "an ACE runs past its ACL");
        let mut revision = good;
        revision[0] = 2;
        assert_eq!(check_replacement(&revision), bad);
        assert_eq!(check_replacement(&[1; MAX_LEN + 1]), bad);
    }

    #[test]
    fn only_administrators_and_the_system_may_send_as_anyone() {
        assert_eq!(Opener::default().check_any_source(), Err(Error::PRIVILEGE_NOT_HELD));
        assert_eq!(Opener { administrator: true, tcb: false }.check_any_source(), Ok(()));
        assert_eq!(Opener { administrator: false, tcb: true }.check_any_source(), Ok(()));
    }
}
