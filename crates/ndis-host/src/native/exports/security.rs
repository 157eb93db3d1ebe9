//! Object security, the caller's security context and the registry (crate::security keeps the books):
//! ObOpenObjectByPointer, ZwSetSecurityObject, ZwClose, ZwOpenKey, ZwQueryValueKey,
//! RtlValidRelativeSecurityDescriptor, SeCaptureSubjectContext, SeReleaseSubjectContext, SeTokenIsAdmin,
//! SeSinglePrivilegeCheck. All of them are PASSIVE_LEVEL routines.

use super::super::memory::{read_bytes, write_bytes};
use super::*;
use crate::security::{caller, Descriptor, KernelObject};

export_table! {
    "ntoskrnl.exe": ObOpenObjectByPointer,
    "ntoskrnl.exe": ZwSetSecurityObject,
    "ntoskrnl.exe": ZwClose,
    "ntoskrnl.exe": ZwOpenKey,
    "ntoskrnl.exe": ZwQueryValueKey,
    "ntoskrnl.exe": RtlValidRelativeSecurityDescriptor,
    "ntoskrnl.exe": SeCaptureSubjectContext,
    "ntoskrnl.exe": SeReleaseSubjectContext,
    "ntoskrnl.exe": SeTokenIsAdmin,
    "ntoskrnl.exe": SeSinglePrivilegeCheck,
}

// CAST: NTSTATUS values written as unsigned hex.
const ST_OBJECT_TYPE_MISMATCH: i32 = 0xC000_0024u32 as i32;
const ST_INVALID_HANDLE: i32 = 0xC000_0008u32 as i32;
const ST_ACCESS_DENIED: i32 = 0xC000_0022u32 as i32;
const ST_INVALID_SECURITY_DESCR: i32 = 0xC000_0079u32 as i32;
const ST_BUFFER_OVERFLOW: i32 = 0x8000_0005u32 as i32;
const ST_BUFFER_TOO_SMALL: i32 = 0xC000_0023u32 as i32;
const ST_NOT_IMPLEMENTED: i32 = 0xC000_0002u32 as i32;
const OBJ_KERNEL: u32 = 0x200;
const WRITE_DAC_RIGHT: u32 = 0x0004_0000;
const DACL_INFO: u32 = 4;

/// Hands out a kernel handle value for `object` (kernel handles have the top bit set on x64).
fn new_handle(inner: &Inner, object: KernelObject) -> usize {
    let mut st = inner.state();
    let sec = &mut st.security;
    sec.next_handle = sec.next_handle.max(0x100) + 4;
    let h = 0xFFFF_FFFF_8000_0000usize | sec.next_handle;
    sec.handles.insert(h, object);
    h
}

extern "win64" fn ObOpenObjectByPointer(
    object: *mut c_void,
    attributes: u32,
    access_state: *mut c_void,
    desired: u32,
    object_type: *mut c_void,
    mode: i8,
    out: *mut HANDLE,
) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ObOpenObjectByPointer",
        &[
            ("Object", ptr(object)),
            ("HandleAttributes", hex(attributes)),
            ("DesiredAccess", hex(desired)),
            ("ObjectType", ptr(object_type)),
            ("AccessMode", mode.into()),
        ],
    );
    let r = (|| {
        if !inner.require_irql("ObOpenObjectByPointer", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        if out.is_null() || !access_state.is_null() {
            inner.violation(
                Rule::BadParameter,
                "ObOpenObjectByPointer: a null out pointer, or an access state the host does not model",
            );
            return ST_INVALID_PARAMETER;
        }
        if attributes & OBJ_KERNEL == 0 {
            inner.violation(
                Rule::BadParameter,
                "ObOpenObjectByPointer without OBJ_KERNEL_HANDLE: the handle would land in the current process's table",
            );
        }
        let is_device = inner.state().devices.iter().any(|d| d.block.addr() == object as usize);
        if !is_device {
            // The host models security only for the driver's own device objects.
            return ST_OBJECT_TYPE_MISMATCH;
        }
        if inner.inject("ObOpenObjectByPointer") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let h = new_handle(&inner, KernelObject::Device(object as usize, desired));
        // SAFETY: checked non-null; the driver's out pointer.
        unsafe { write_obj(out as usize, h) };
        ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

/// Reads the DACL of a self-relative or absolute descriptor at `sd`, as far as its own sizes say.
///
/// # Safety
///
/// `sd` points to a descriptor the driver owns.
unsafe fn read_descriptor(sd: usize) -> Result<Descriptor, String> {
    // SAFETY: the caller's descriptor has at least its 20-byte header.
    let head = unsafe { read_bytes(sd, 20) };
    let control = u16::from_le_bytes([head[2], head[3]]);
    let dacl_at = if control & 0x8000 != 0 {
        // Self-relative: OffsetDacl.
        let off = u32::from_le_bytes([head[16], head[17], head[18], head[19]]) as usize;
        if off == 0 {
            0
        } else {
            sd + off
        }
    } else {
        // Absolute: the Dacl pointer at offset 32.
        // SAFETY: an absolute descriptor is 40 bytes.
        unsafe { read_obj::<usize>(sd + 32) }
    };
    if control & 0x0004 == 0 || dacl_at == 0 {
        return Ok(Descriptor { dacl: None, protected: control & 0x1000 != 0 });
    }
    // SAFETY: the ACL header the descriptor points to.
    let acl_head = unsafe { read_bytes(dacl_at, 8) };
    let size = usize::from(u16::from_le_bytes([acl_head[2], acl_head[3]]));
    // SAFETY: the ACL's own size.
    let acl = unsafe { read_bytes(dacl_at, size.max(8)) };
    Ok(Descriptor { dacl: Some(crate::security::parse_acl(&acl)?), protected: control & 0x1000 != 0 })
}

extern "win64" fn ZwSetSecurityObject(handle: HANDLE, info: u32, sd: *mut c_void) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ZwSetSecurityObject",
        &[("Handle", ptr(handle)), ("SecurityInformation", hex(info)), ("SecurityDescriptor", ptr(sd))],
    );
    let r = (|| {
        if !inner.require_irql("ZwSetSecurityObject", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        let object = inner.state().security.handles.get(&(handle as usize)).cloned();
        let Some(KernelObject::Device(device, access)) = object else {
            inner.violation(
                Rule::BadParameter,
                format!("ZwSetSecurityObject on {:#x}, not an open object handle", handle as usize),
            );
            return ST_INVALID_HANDLE;
        };
        if access & WRITE_DAC_RIGHT == 0 {
            return ST_ACCESS_DENIED;
        }
        if info != DACL_INFO {
            // Owner, group and SACL are not modelled.
            return ST_NOT_IMPLEMENTED;
        }
        if sd.is_null() {
            return ST_INVALID_PARAMETER;
        }
        if inner.inject("ZwSetSecurityObject") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: the driver's descriptor (the routine's contract).
        match unsafe { read_descriptor(sd as usize) } {
            Ok(d) => {
                inner.state().security.devices.insert(device, d);
                ST_SUCCESS
            }
            Err(e) => {
                inner.violation(Rule::BadParameter, format!("ZwSetSecurityObject: a malformed descriptor: {e}"));
                ST_INVALID_SECURITY_DESCR
            }
        }
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn ZwClose(handle: HANDLE) -> i32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "ZwClose", &[("Handle", ptr(handle))]);
    let r = if !inner.require_irql("ZwClose", PASSIVE) {
        ST_INVALID_PARAMETER
    } else if inner.state().security.handles.remove(&(handle as usize)).is_some() {
        ST_SUCCESS
    } else {
        inner.violation(
            Rule::BadParameter,
            format!("ZwClose of {:#x}, which is not an open kernel handle", handle as usize),
        );
        ST_INVALID_HANDLE
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn ZwOpenKey(out: *mut HANDLE, desired: u32, attributes: *mut OBJECT_ATTRIBUTES) -> i32 {
    let inner = current();
    let name = if attributes.is_null() {
        None
    } else {
        // SAFETY: the driver's OBJECT_ATTRIBUTES (the routine's contract).
        let a: OBJECT_ATTRIBUTES = unsafe { read_obj(attributes as usize) };
        // SAFETY: its ObjectName is null or a UNICODE_STRING the driver owns.
        unsafe { unicode(a.ObjectName) }.map(|n| (n, a))
    };
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ZwOpenKey",
        &[
            ("DesiredAccess", hex(desired)),
            ("ObjectName", name.as_ref().map_or(Arg::Word("NULL"), |(n, _)| Arg::Text(n))),
        ],
    );
    let r = (|| {
        if !inner.require_irql("ZwOpenKey", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        let Some((name, a)) = name else {
            inner.violation(Rule::BadParameter, "ZwOpenKey without object attributes or a name");
            return ST_INVALID_PARAMETER;
        };
        if out.is_null() {
            inner.violation(Rule::BadParameter, "ZwOpenKey with a null out pointer");
            return ST_INVALID_PARAMETER;
        }
        if a.Attributes & OBJ_KERNEL == 0 {
            inner.violation(Rule::BadParameter, "ZwOpenKey without OBJ_KERNEL_HANDLE");
        }
        let key = name.to_ascii_lowercase();
        if !inner.state().security.registry.contains_key(&key) {
            return ST_OBJECT_NAME_NOT_FOUND;
        }
        if inner.inject("ZwOpenKey") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let h = new_handle(&inner, KernelObject::Key(key));
        // SAFETY: checked non-null; the driver's out pointer.
        unsafe { write_obj(out as usize, h) };
        ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn ZwQueryValueKey(
    handle: HANDLE,
    name: *mut UNICODE_STRING,
    class: i32,
    info: *mut c_void,
    length: u32,
    result: *mut u32,
) -> i32 {
    let inner = current();
    // SAFETY: the driver's UNICODE_STRING (the routine's contract).
    let value = unsafe { unicode(name) }.unwrap_or_default();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ZwQueryValueKey",
        &[
            ("KeyHandle", ptr(handle)),
            ("ValueName", value.as_str().into()),
            ("Class", class.into()),
            ("Length", length.into()),
        ],
    );
    let r = (|| {
        if !inner.require_irql("ZwQueryValueKey", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        if inner.inject("ZwQueryValueKey") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let found = {
            let st = inner.state();
            match st.security.handles.get(&(handle as usize)) {
                Some(KernelObject::Key(k)) => {
                    Ok(st.security.registry.get(k).and_then(|v| v.get(&value.to_ascii_lowercase())).cloned())
                }
                _ => Err(()),
            }
        };
        let Ok(found) = found else {
            inner.violation(
                Rule::BadParameter,
                format!("ZwQueryValueKey on {:#x}, not an open key handle", handle as usize),
            );
            return ST_INVALID_HANDLE;
        };
        // KeyValuePartialInformation only: TitleIndex, Type, DataLength, Data.
        if class != 2 {
            return ST_NOT_IMPLEMENTED;
        }
        let Some(v) = found else { return ST_OBJECT_NAME_NOT_FOUND };
        if result.is_null() {
            inner.violation(Rule::BadParameter, "ZwQueryValueKey with a null ResultLength");
            return ST_INVALID_PARAMETER;
        }
        let need = 12 + v.data.len();
        // CAST: registry values are far below 4 GiB.
        // SAFETY: checked non-null; the driver's out pointer.
        unsafe { write_obj(result as usize, need as u32) };
        if (length as usize) < 12 {
            return ST_BUFFER_TOO_SMALL;
        }
        let mut reply = Vec::with_capacity(need);
        reply.extend_from_slice(&0u32.to_le_bytes());
        reply.extend_from_slice(&v.kind.to_le_bytes());
        // CAST: as above.
        reply.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
        reply.extend_from_slice(&v.data);
        let n = reply.len().min(length as usize);
        // SAFETY: the driver's buffer of `length` bytes; at most that many are written.
        unsafe { write_bytes(info as usize, &reply[..n]) };
        if n < need {
            ST_BUFFER_OVERFLOW
        } else {
            ST_SUCCESS
        }
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn RtlValidRelativeSecurityDescriptor(sd: *mut c_void, length: u32, required: u32) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "RtlValidRelativeSecurityDescriptor",
        &[
            ("SecurityDescriptorInput", ptr(sd)),
            ("SecurityDescriptorLength", length.into()),
            ("RequiredInformation", hex(required)),
        ],
    );
    let ok = !sd.is_null() && length >= 20 && {
        // SAFETY: the driver's buffer of `length` bytes.
        let bytes = unsafe { read_bytes(sd as usize, length as usize) };
        let control = u16::from_le_bytes([bytes[2], bytes[3]]);
        let dacl_needed = required & DACL_INFO != 0;
        Descriptor::parse_relative(&bytes).is_ok_and(|d| !dacl_needed || (control & 0x4 != 0 && d.dacl.is_some()))
    };
    inner.trace_result(idx, ok.into());
    u8::from(ok)
}

/// The token object lent for process `pid`: one block per process, kept for the machine's life.
fn token_object(inner: &Inner, pid: u32) -> usize {
    let mut st = inner.state();
    if let Some((&addr, _)) = st.security.token_objects.iter().find(|(_, &p)| p == pid) {
        return addr;
    }
    let Some(block) = HostBlock::new(64, 16) else { return 0 };
    let addr = block.addr();
    st.security.token_blocks.push(block);
    st.security.token_objects.insert(addr, pid);
    addr
}

extern "win64" fn SeCaptureSubjectContext(ctx: *mut SECURITY_SUBJECT_CONTEXT) {
    let inner = current();
    let pid = caller();
    inner.trace_call(
        Direction::DriverToHost,
        "SeCaptureSubjectContext",
        &[("SubjectContext", ptr(ctx.cast())), ("Process", pid.into())],
    );
    if !inner.require_irql("SeCaptureSubjectContext", PASSIVE) || ctx.is_null() {
        return;
    }
    let token = token_object(&inner, pid);
    let value = SECURITY_SUBJECT_CONTEXT {
        ClientToken: std::ptr::null_mut(),
        ImpersonationLevel: 0,
        PrimaryToken: token as *mut c_void,
        ProcessAuditId: pid as usize as *mut c_void,
    };
    // SAFETY: the driver's SECURITY_SUBJECT_CONTEXT, checked non-null.
    unsafe { write_obj(ctx as usize, value) };
}

extern "win64" fn SeReleaseSubjectContext(ctx: *mut SECURITY_SUBJECT_CONTEXT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "SeReleaseSubjectContext", &[("SubjectContext", ptr(ctx.cast()))]);
    inner.require_irql("SeReleaseSubjectContext", PASSIVE);
}

extern "win64" fn SeTokenIsAdmin(token: *mut c_void) -> u8 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "SeTokenIsAdmin", &[("Token", ptr(token))]);
    inner.require_irql("SeTokenIsAdmin", PASSIVE);
    let pid = inner.state().security.token_objects.get(&(token as usize)).copied();
    let admin = match pid {
        Some(pid) => inner.state().security.token(pid).is_admin(),
        None => {
            inner.violation(
                Rule::BadParameter,
                format!("SeTokenIsAdmin({:#x}): not a token of a captured context", token as usize),
            );
            false
        }
    };
    inner.trace_result(idx, admin.into());
    u8::from(admin)
}

extern "win64" fn SeSinglePrivilegeCheck(luid: LUID, mode: i8) -> u8 {
    let inner = current();
    let pid = caller();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "SeSinglePrivilegeCheck",
        &[("PrivilegeValue", Arg::Luid(luid.HighPart, luid.LowPart)), ("PreviousMode", mode.into())],
    );
    inner.require_irql("SeSinglePrivilegeCheck", PASSIVE);
    // From kernel mode every privilege check passes; from user mode the caller's token decides.
    let held = mode == 0 || (luid.HighPart == 0 && inner.state().security.token(pid).has_privilege(luid.LowPart));
    inner.trace_result(idx, held.into());
    u8::from(held)
}

/// Kernel handles the driver never closed (checked at unload).
pub(crate) fn open_handles(inner: &Inner) -> Vec<String> {
    inner.state().security.handles.iter().map(|(h, o)| format!("{h:#x} ({o:?})")).collect()
}
