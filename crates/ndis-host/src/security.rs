//! Who is calling, and who may open what: the callers' tokens, the security descriptors drivers put on their
//! devices, the access check the I/O manager makes at every open, and the machine's registry.
//!
//! A token is a set of SIDs (user and groups) and privileges. Every process of the machine has one
//! ([`Host::new_process_as`](crate::host::Host::new_process_as); the initial process is an elevated
//! administrator's, DriverEntry and system threads run as LocalSystem). A descriptor set on a device through
//! ObOpenObjectByPointer + ZwSetSecurityObject is kept by the machine; an open of that device (and, with
//! FILE_DEVICE_SECURE_OPEN, of any name below it) then succeeds only if the DACL grants the caller's token
//! every right asked for, as SeAccessCheck decides it: ACEs in order, a deny of any asked-for right ends the
//! check, allows add up. A device without a descriptor stands for Windows' default for named devices,
//! which lets every local user open it.
//!
//! Descriptors are parsed in their binary form ([MS-DTYP] 2.4.6), self-relative or absolute.

use std::cell::Cell;
use std::collections::BTreeMap;

/// A security identifier in its binary form.
pub type Sid = Vec<u8>;

/// S-1-5-18, LocalSystem.
pub const SYSTEM: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
/// S-1-5-32-544, BUILTIN\Administrators.
pub const ADMINISTRATORS: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
/// S-1-5-32-545, BUILTIN\Users.
pub const USERS: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x21, 2, 0, 0];
/// S-1-1-0, Everyone.
pub const EVERYONE: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
/// S-1-5-11, Authenticated Users.
pub const AUTHENTICATED_USERS: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0];

/// SeTcbPrivilege's LUID.
pub const SE_TCB_PRIVILEGE: u32 = 7;
/// SeChangeNotifyPrivilege's LUID (every token has it).
pub const SE_CHANGE_NOTIFY_PRIVILEGE: u32 = 23;
/// SeDebugPrivilege's LUID (an elevated administrator's).
pub const SE_DEBUG_PRIVILEGE: u32 = 20;
/// SeLoadDriverPrivilege's LUID (an elevated administrator's).
pub const SE_LOAD_DRIVER_PRIVILEGE: u32 = 10;

/// A caller's access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What the trace calls it.
    pub name: String,
    /// The user SID first, then the groups.
    pub sids: Vec<Sid>,
    /// LUIDs of the privileges held (and enabled).
    pub privileges: Vec<u32>,
}

impl Token {
    /// An elevated administrator (what `Run as administrator` gives a console).
    pub fn administrator() -> Token {
        let user = [1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xF4, 1, 0, 0];
        Token {
            name: "administrator".to_owned(),
            sids: vec![
                user.to_vec(),
                EVERYONE.to_vec(),
                USERS.to_vec(),
                AUTHENTICATED_USERS.to_vec(),
                ADMINISTRATORS.to_vec(),
            ],
            privileges: vec![SE_CHANGE_NOTIFY_PRIVILEGE, SE_DEBUG_PRIVILEGE, SE_LOAD_DRIVER_PRIVILEGE],
        }
    }

    /// A standard (not elevated) user.
    pub fn standard_user() -> Token {
        let user = [1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xE9, 3, 0, 0];
        Token {
            name: "standard user".to_owned(),
            sids: vec![user.to_vec(), EVERYONE.to_vec(), USERS.to_vec(), AUTHENTICATED_USERS.to_vec()],
            privileges: vec![SE_CHANGE_NOTIFY_PRIVILEGE],
        }
    }

    /// LocalSystem: DriverEntry, system threads, services running as SYSTEM.
    pub fn system() -> Token {
        Token {
            name: "LocalSystem".to_owned(),
            sids: vec![SYSTEM.to_vec(), EVERYONE.to_vec(), AUTHENTICATED_USERS.to_vec(), ADMINISTRATORS.to_vec()],
            privileges: vec![
                SE_CHANGE_NOTIFY_PRIVILEGE,
                SE_TCB_PRIVILEGE,
                SE_DEBUG_PRIVILEGE,
                SE_LOAD_DRIVER_PRIVILEGE,
            ],
        }
    }

    /// A user who is not an administrator but holds SeTcbPrivilege (granted by policy).
    pub fn tcb_user() -> Token {
        let mut t = Token::standard_user();
        t.name = "standard user with SeTcbPrivilege".to_owned();
        t.privileges.push(SE_TCB_PRIVILEGE);
        t
    }

    /// Whether the token is an administrator's (SeTokenIsAdmin: the Administrators group is in it).
    pub fn is_admin(&self) -> bool {
        self.sids.iter().any(|s| s[..] == ADMINISTRATORS[..])
    }

    pub fn has_privilege(&self, luid: u32) -> bool {
        self.privileges.contains(&luid)
    }
}

/// One ACE of a DACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// ACCESS_ALLOWED_ACE_TYPE (otherwise ACCESS_DENIED_ACE_TYPE; other types are not kept).
    pub allow: bool,
    /// INHERIT_ONLY_ACE: does not apply to the object itself.
    pub inherit_only: bool,
    pub mask: u32,
    pub sid: Sid,
}

/// A security descriptor as far as access checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// SE_DACL_PRESENT with a DACL: its ACEs; `None`: no DACL (a NULL DACL grants everything).
    pub dacl: Option<Vec<Ace>>,
    /// SE_DACL_PROTECTED.
    pub protected: bool,
}

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_PROTECTED: u16 = 0x1000;
const SE_SELF_RELATIVE: u16 = 0x8000;
const INHERIT_ONLY_ACE: u8 = 0x08;

/// The generic mapping of file (and device) objects.
pub fn map_generic(mask: u32) -> u32 {
    const GENERIC_READ: u32 = 0x8000_0000;
    const GENERIC_WRITE: u32 = 0x4000_0000;
    const GENERIC_EXECUTE: u32 = 0x2000_0000;
    const GENERIC_ALL: u32 = 0x1000_0000;
    let mut m = mask & 0x0FFF_FFFF;
    if mask & GENERIC_READ != 0 {
        m |= 0x0012_0089;
    }
    if mask & GENERIC_WRITE != 0 {
        m |= 0x0012_0116;
    }
    if mask & GENERIC_EXECUTE != 0 {
        m |= 0x0012_00A0;
    }
    if mask & GENERIC_ALL != 0 {
        m |= 0x001F_01FF;
    }
    m
}

impl Descriptor {
    /// Parses a self-relative descriptor of `bytes`.
    pub fn parse_relative(bytes: &[u8]) -> Result<Descriptor, String> {
        let control = u16_at(bytes, 2).ok_or("shorter than a descriptor header")?;
        if bytes.first() != Some(&1) {
            return Err(format!("revision {:?}, not 1", bytes.first()));
        }
        if control & SE_SELF_RELATIVE == 0 {
            return Err("not self-relative".to_owned());
        }
        let dacl = if control & SE_DACL_PRESENT == 0 {
            None
        } else {
            match u32_at(bytes, 16).ok_or("no DACL offset")? as usize {
                0 => None,
                at => Some(parse_acl(bytes.get(at..).ok_or("DACL offset past the end")?)?),
            }
        };
        Ok(Descriptor { dacl, protected: control & SE_DACL_PROTECTED != 0 })
    }

    /// Whether `token` is granted every right in `desired` (generic rights mapped as for files).
    pub fn grants(&self, token: &Token, desired: u32) -> bool {
        let Some(aces) = &self.dacl else { return true };
        let mut remaining = map_generic(desired);
        for ace in aces.iter().filter(|a| !a.inherit_only && token.sids.contains(&a.sid)) {
            let mask = map_generic(ace.mask);
            if ace.allow {
                remaining &= !mask;
            } else if mask & remaining != 0 {
                return false;
            }
            if remaining == 0 {
                return true;
            }
        }
        remaining == 0
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses an ACL that starts at `acl[0]` (its AclSize bounds it).
pub fn parse_acl(acl: &[u8]) -> Result<Vec<Ace>, String> {
    let size = usize::from(u16_at(acl, 2).ok_or("ACL header cut short")?);
    let count = u16_at(acl, 4).ok_or("ACL header cut short")?;
    let acl = acl.get(..size).ok_or_else(|| format!("AclSize {size} runs past the descriptor"))?;
    let mut aces = Vec::new();
    let mut at = 8;
    for i in 0..count {
        let kind = *acl.get(at).ok_or_else(|| format!("ACE {i} starts past the ACL"))?;
        let flags = *acl.get(at + 1).ok_or_else(|| format!("ACE {i} cut short"))?;
        let len = usize::from(u16_at(acl, at + 2).ok_or_else(|| format!("ACE {i} cut short"))?);
        let ace = acl.get(at..at + len).ok_or_else(|| format!("ACE {i} (AceSize {len}) runs past the ACL"))?;
        if len < 8 {
            return Err(format!("ACE {i} has AceSize {len}"));
        }
        // ACCESS_ALLOWED_ACE_TYPE 0, ACCESS_DENIED_ACE_TYPE 1: header, Mask, SID.
        if kind <= 1 {
            let mask = u32_at(ace, 4).ok_or("ACE mask cut short")?;
            let sid = ace.get(8..).unwrap_or_default();
            let n = usize::from(*sid.get(1).ok_or("ACE SID cut short")?);
            let sid = sid.get(..8 + 4 * n).ok_or("ACE SID runs past the ACE")?;
            aces.push(Ace { allow: kind == 0, inherit_only: flags & INHERIT_ONLY_ACE != 0, mask, sid: sid.to_vec() });
        }
        at += len;
    }
    Ok(aces)
}

/// A registry value: its type (REG_*) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    pub kind: u32,
    pub data: Vec<u8>,
}

/// What a kernel handle the driver opened refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelObject {
    /// A device object, and the access the handle was opened with.
    Device(usize, u32),
    Key(String),
}

/// The machine's security and registry books.
#[derive(Debug, Default)]
pub(crate) struct SecurityState {
    /// Descriptors set on device objects, by device address.
    pub devices: BTreeMap<usize, Descriptor>,
    /// Kernel handles the driver holds: value → object.
    pub handles: BTreeMap<usize, KernelObject>,
    pub next_handle: usize,
    /// Keys (lower-case NT names) → value names (lower case) → values.
    pub registry: BTreeMap<String, BTreeMap<String, RegValue>>,
    /// Each process's token, when it is not an administrator's.
    pub tokens: BTreeMap<u32, Token>,
    /// Token objects lent to the driver by SeCaptureSubjectContext: address → process; their blocks.
    pub token_objects: BTreeMap<usize, u32>,
    pub token_blocks: Vec<crate::native::memory::HostBlock>,
}

impl SecurityState {
    /// The token of process `pid` (0: the system process).
    pub fn token(&self, pid: u32) -> Token {
        if pid == 0 {
            return Token::system();
        }
        self.tokens.get(&pid).cloned().unwrap_or_else(Token::administrator)
    }
}

thread_local! {
    /// The process whose request the current thread is running (0: a system thread).
    static CALLER: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as a thread of process `pid` (how a request's dispatch runs in its caller's thread).
pub(crate) fn as_caller<R>(pid: u32, f: impl FnOnce() -> R) -> R {
    let before = CALLER.with(|c| c.replace(pid));
    let r = f();
    CALLER.with(|c| c.set(before));
    r
}

/// The process the current thread belongs to.
pub(crate) fn caller() -> u32 {
    CALLER.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D:P(A;;GA;;;SY)(A;;GA;;;BA), written out by hand from MS-DTYP.
    fn admin_only() -> Vec<u8> {
        let mut sd = vec![1, 0, 0x04, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0];
        sd.extend_from_slice(&[2, 0, 52, 0, 2, 0, 0, 0]);
        sd.extend_from_slice(&[0, 0, 20, 0, 0, 0, 0, 0x10]);
        sd.extend_from_slice(&SYSTEM);
        sd.extend_from_slice(&[0, 0, 24, 0, 0, 0, 0, 0x10]);
        sd.extend_from_slice(&ADMINISTRATORS);
        sd
    }

    #[test]
    fn a_system_and_administrators_dacl_admits_only_them() {
        let d = Descriptor::parse_relative(&admin_only()).unwrap();
        assert!(d.protected);
        let rw = 0xC000_0000;
        assert!(d.grants(&Token::administrator(), rw));
        assert!(d.grants(&Token::system(), rw));
        assert!(!d.grants(&Token::standard_user(), rw));
        assert!(!d.grants(&Token::standard_user(), 0x0012_0089));
    }

    #[test]
    fn a_deny_ace_first_wins_and_allows_add_up() {
        let mut sd = vec![1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0];
        sd.extend_from_slice(&[2, 0, 52, 0, 2, 0, 0, 0]);
        // Deny Users write; allow Everyone read and write.
        sd.extend_from_slice(&[1, 0, 24, 0, 0x06, 0, 0, 0]);
        sd.extend_from_slice(&USERS);
        sd.extend_from_slice(&[0, 0, 20, 0, 0xFF, 0x01, 0x1F, 0]);
        sd.extend_from_slice(&EVERYONE);
        let d = Descriptor::parse_relative(&sd).unwrap();
        assert!(d.grants(&Token::standard_user(), 0x8000_0000));
        assert!(!d.grants(&Token::standard_user(), 0x4000_0000));
        assert!(Descriptor::parse_relative(&sd[..40]).is_err());
    }
}
