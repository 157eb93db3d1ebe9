//! Security descriptors, the registry and the caller's security context, over exports that are `import`
//! rows of the 10.0.16299 table (IoCreateDeviceSecure lives in the static library wdmsec.lib, which this
//! build does not link): ObOpenObjectByPointer + ZwSetSecurityObject put a descriptor on the device;
//! ZwOpenKey + ZwQueryValueKey read the registry; SeCaptureSubjectContext + SeTokenIsAdmin +
//! SeSinglePrivilegeCheck describe who is calling.

use crate::error::{nt_result, Error, Result};
use crate::security::{self, Opener};
use alloc::vec::Vec;
use core::ptr;
use ndis_sys::*;

/// A kernel handle, closed in `Drop`.
///
/// # Invariants
///
/// `0` is a handle this driver opened with OBJ_KERNEL_HANDLE and has not closed.
struct KernelHandle(HANDLE);

impl Drop for KernelHandle {
    fn drop(&mut self) {
        // SAFETY: type invariant; PASSIVE_LEVEL (every caller of this module runs there).
        let _ = unsafe { ZwClose(self.0) };
    }
}

/// Replaces the DACL of `device` with the one in the self-relative descriptor `sd` (PASSIVE_LEVEL).
pub fn set_device_dacl(device: PDEVICE_OBJECT, sd: &[u8]) -> Result {
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL; `device` is a live device object of this driver; no access state is passed, a
    // null object type skips the type check, and `handle` is a valid out pointer.
    let status = unsafe {
        ObOpenObjectByPointer(
            device.cast(),
            OBJ_KERNEL_HANDLE,
            ptr::null_mut(),
            WRITE_DAC,
            ptr::null_mut(),
            KernelMode as KPROCESSOR_MODE,
            &mut handle,
        )
    };
    nt_result(status)?;
    let handle = KernelHandle(handle);
    // SAFETY: `handle` was opened with WRITE_DAC; `sd` is a self-relative descriptor the kernel only reads
    // (it captures a copy).
    nt_result(unsafe { ZwSetSecurityObject(handle.0, DACL_SECURITY_INFORMATION, sd.as_ptr().cast_mut().cast()) })
        .map(|_| ())
}

/// Reads the value `name` of the registry key `key` (both NT names) into a new buffer: `Ok(None)` if the
/// key or value does not exist; `Ok(Some((type, data)))` otherwise. A value longer than `max` bytes is
/// STATUS_BUFFER_OVERFLOW. PASSIVE_LEVEL.
pub fn read_registry_value(key: &[u16], name: &[u16], max: usize) -> Result<Option<(u32, Vec<u8>)>> {
    let mut key_name = counted(key)?;
    let mut value_name = counted(name)?;
    let mut attributes = OBJECT_ATTRIBUTES {
        // CAST: a 48-byte struct.
        Length: core::mem::size_of::<OBJECT_ATTRIBUTES>() as ULONG,
        RootDirectory: ptr::null_mut(),
        ObjectName: &mut key_name,
        Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        SecurityDescriptor: ptr::null_mut(),
        SecurityQualityOfService: ptr::null_mut(),
    };
    let mut handle: HANDLE = ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL; `attributes` and the name it points to outlive the call; `handle` is a valid
    // out pointer.
    let status = unsafe { ZwOpenKey(&mut handle, KEY_READ, &mut attributes) };
    if status == STATUS_OBJECT_NAME_NOT_FOUND || status == STATUS_OBJECT_PATH_NOT_FOUND {
        return Ok(None);
    }
    nt_result(status)?;
    let handle = KernelHandle(handle);
    let header = core::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data);
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(header + max).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
    buf.resize(header + max, 0);
    let mut got: ULONG = 0;
    // CAST: `max` is a few KiB.
    let len = buf.len() as ULONG;
    // SAFETY: `buf` is a writable buffer of `len` bytes that outlives the call; the value name is only read.
    let status = unsafe {
        ZwQueryValueKey(handle.0, &mut value_name, KeyValuePartialInformation, buf.as_mut_ptr().cast(), len, &mut got)
    };
    if status == STATUS_OBJECT_NAME_NOT_FOUND {
        return Ok(None);
    }
    nt_result(status)?;
    // KEY_VALUE_PARTIAL_INFORMATION: TitleIndex, Type, DataLength, then the data. The kernel wrote it, but
    // its lengths are still checked against the buffer.
    let field = |at: usize| buf.get(at..).and_then(<[u8]>::first_chunk).map(|b| u32::from_le_bytes(*b));
    let kind = field(4).ok_or(Error::INVALID_PARAMETER)?;
    let data_len = field(8).ok_or(Error::INVALID_PARAMETER)? as usize;
    let data = buf.get(header..header + data_len).ok_or(Error::INVALID_PARAMETER)?;
    let mut out = Vec::new();
    out.try_reserve_exact(data.len()).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
    out.extend_from_slice(data);
    Ok(Some((kind, out)))
}

/// A UNICODE_STRING over `s` for a parameter the callee only reads (it lives as long as the borrow).
fn counted(s: &[u16]) -> Result<UNICODE_STRING> {
    let bytes = s.len().checked_mul(2).and_then(|n| u16::try_from(n).ok()).ok_or(Error::INVALID_PARAMETER)?;
    Ok(UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: s.as_ptr().cast_mut() })
}

/// The pool budget the service's `Parameters\PoolBudgetMiB` value sets (see [`crate::budget`]); the
/// default when it is absent, malformed or out of range. `registry_path` is DriverEntry's RegistryPath.
/// A failure to read it (no pool, say) is returned: DriverEntry fails rather than guess.
pub fn pool_budget(registry_path: &[u16]) -> Result<usize> {
    const PARAMETERS: &[u16] = crate::utf16!("\\Parameters");
    const VALUE: &[u16] = crate::utf16!("PoolBudgetMiB");
    let mut key: Vec<u16> = Vec::new();
    key.try_reserve_exact(registry_path.len() + PARAMETERS.len()).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
    key.extend_from_slice(registry_path);
    key.extend_from_slice(PARAMETERS);
    let mib = match read_registry_value(&key, VALUE, 4)? {
        Some((REG_DWORD, v)) => v.first_chunk().map(|b| u32::from_le_bytes(*b)),
        _ => None,
    };
    Ok(crate::budget::limit_from_registry(mib))
}

/// Which descriptor the control device got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// `D:P(A;;GA;;;SY)(A;;GA;;;BA)`.
    Default,
    /// The administrator's descriptor from the class key.
    Replacement,
}

/// Puts the control device's descriptor on `device`: the class key's replacement if there is a valid one,
/// else the default. A replacement that is malformed, or that the kernel refuses, leaves the default in
/// place, so the device is never left open to everyone; a failure to apply the default, or to read the
/// registry, is returned. PASSIVE_LEVEL, before the device is usable.
pub fn protect_device(device: PDEVICE_OBJECT) -> Result<Applied> {
    const KEY: &[u16] = crate::utf16!(rawlink_abi::DEVICE_CLASS_PROPERTIES_KEY);
    const VALUE: &[u16] = crate::utf16!("Security");
    set_device_dacl(device, &security::default_descriptor())?;
    // A value that is absent or not REG_BINARY leaves the default; failing to read it fails DriverEntry.
    let replacement = match read_registry_value(KEY, VALUE, security::MAX_LEN)? {
        Some((REG_BINARY, sd)) => sd,
        _ => return Ok(Applied::Default),
    };
    if security::check_replacement(&replacement).is_err() {
        return Ok(Applied::Default);
    }
    // CAST: at most security::MAX_LEN bytes.
    let len = replacement.len() as ULONG;
    // SAFETY: the descriptor is `len` readable bytes; the routine only reads it.
    let valid = unsafe {
        RtlValidRelativeSecurityDescriptor(replacement.as_ptr().cast_mut().cast(), len, DACL_SECURITY_INFORMATION)
    };
    if valid == 0 || set_device_dacl(device, &replacement).is_err() {
        return Ok(Applied::Default);
    }
    Ok(Applied::Replacement)
}

/// Who is calling: the current thread's security context (at IRP_MJ_CREATE of a top-level device, the
/// opener's). PASSIVE_LEVEL.
pub fn opener() -> Opener {
    let mut ctx = SECURITY_SUBJECT_CONTEXT {
        ClientToken: ptr::null_mut(),
        ImpersonationLevel: 0,
        PrimaryToken: ptr::null_mut(),
        ProcessAuditId: ptr::null_mut(),
    };
    // SAFETY: PASSIVE_LEVEL; `ctx` is a valid out structure, released below.
    unsafe { SeCaptureSubjectContext(&mut ctx) };
    // SeQuerySubjectContextToken (a header macro): the impersonation token if there is one, else the primary.
    let token = if ctx.ClientToken.is_null() { ctx.PrimaryToken } else { ctx.ClientToken };
    // SAFETY: `token` is a token of the captured context, referenced until it is released below.
    let administrator = !token.is_null() && unsafe { SeTokenIsAdmin(token) } != 0;
    let tcb = LUID { LowPart: SE_TCB_PRIVILEGE, HighPart: 0 };
    // SAFETY: PASSIVE_LEVEL; checks the current thread's context against the caller's mode.
    let tcb = unsafe { SeSinglePrivilegeCheck(tcb, UserMode as KPROCESSOR_MODE) } != 0;
    // SAFETY: `ctx` was captured above and is released once.
    unsafe { SeReleaseSubjectContext(&mut ctx) };
    Opener { administrator, tcb }
}
