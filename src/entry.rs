//! DriverEntry and DriverUnload.
//!
//! Order of acquisition (DriverEntry), each step owned by a value that undoes it in `Drop`:
//!
//! 1. look up optional kernel routines; negotiate the NDIS version;
//! 2. the driver globals ([`Driver`]) — everything any callback touches, initialised *before* registration,
//!    because NDIS may call any ProtocolXxx handler from inside `NdisRegisterProtocolDriver`;
//! 3. the control device `\Device\RawLink` (FILE_DEVICE_SECURE_OPEN; SYSTEM and Administrators only, see
//!    [`crate::security`]), then its symbolic link;
//! 4. the IRP dispatch table and DriverUnload;
//! 5. `NdisRegisterProtocolDriver`;
//! 6. the record of what is loaded, for DriverUnload.
//!
//! A failure at any step drops the owners acquired so far in reverse order — after registration that includes
//! `NdisDeregisterProtocolDriver` — and DriverEntry returns the failing status. It never returns
//! STATUS_PENDING. DriverUnload drops the same owners in the same reverse order.

#![allow(unsafe_code)]

use crate::driver::Driver;
use crate::error::{nt_result, Error, Result};
use crate::kernel::alloc::{self, try_box};
use crate::kernel::irql;
use crate::kernel::string::StaticUnicode;
use crate::{dispatch, protocol, utf16, version};
use ::alloc::boxed::Box;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;

/// NT name of the control device (see `rawlink_abi::DEVICE_NAME`).
const DEVICE_NAME: &[u16] = utf16!(rawlink_abi::DEVICE_NAME);
/// Its symbolic link (see `rawlink_abi::SYMBOLIC_LINK_NAME`).
const LINK_NAME: &[u16] = utf16!(rawlink_abi::SYMBOLIC_LINK_NAME);
/// The protocol name NDIS knows us by; equal to the service name in the INF.
const PROTOCOL_NAME: &[u16] = utf16!(rawlink_abi::PROTOCOL_NAME);

/// Everything DriverEntry acquired, in the order `Drop` must release it (fields drop top to bottom).
#[allow(dead_code, reason = "owners: held to be dropped in this order at unload")]
struct Loaded {
    registration: Registration,
    published: Published,
    link: SymbolicLink,
    device: ControlDevice,
    driver: Box<Driver>,
}

/// The driver globals for callbacks that carry no context (protocol-level PnP events): published right after
/// the globals exist, before registration, and withdrawn after deregistration.
static DRIVER: AtomicPtr<Driver> = AtomicPtr::new(ptr::null_mut());

/// Withdraws [`DRIVER`] when dropped.
struct Published;

impl Drop for Published {
    fn drop(&mut self) {
        DRIVER.store(ptr::null_mut(), Ordering::Release);
    }
}

/// What DriverUnload finds. Written once at the end of a successful DriverEntry, taken once by DriverUnload.
static LOADED: AtomicPtr<Loaded> = AtomicPtr::new(ptr::null_mut());

/// The entry point the I/O manager calls.
///
/// # Safety
///
/// Called by the kernel at PASSIVE_LEVEL with a valid driver object and registry path.
// SAFETY: `DriverEntry` is the symbol the linker's /ENTRY names; no other item exports it.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(driver: PDRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS {
    if driver.is_null() {
        return Error::INVALID_PARAMETER.to_status();
    }
    // SAFETY: the kernel passes the service key's name, valid for the duration of DriverEntry (a null or
    // empty one is taken as no Parameters key).
    let path: &[u16] = unsafe {
        match registry_path.as_ref() {
            Some(p) if !p.Buffer.is_null() => core::slice::from_raw_parts(p.Buffer, usize::from(p.Length / 2)),
            _ => &[],
        }
    };
    match load(driver, path) {
        Ok(()) => STATUS_SUCCESS,
        Err(e) => e.to_status(),
    }
}

fn load(driver_object: PDRIVER_OBJECT, registry_path: &[u16]) -> Result {
    // Every step below requires PASSIVE_LEVEL; the I/O manager guarantees it, but a wrong caller must get
    // a status, not a bug check halfway through.
    if irql::current() != irql::PASSIVE_LEVEL {
        return Err(Error::INVALID_DEVICE_STATE);
    }
    alloc::init();
    crate::budget::POOL.set_limit(if registry_path.is_empty() {
        crate::budget::DEFAULT_BYTES
    } else {
        crate::kernel::security::pool_budget(registry_path)?
    });
    // SAFETY: NdisGetVersion has no preconditions (any IRQL).
    let os_version = unsafe { NdisGetVersion() };
    let version = version::negotiate(os_version)?;

    let driver = try_box(Driver::new(version))?;
    driver.init_in_place();
    DRIVER.store(ptr::from_ref::<Driver>(&driver).cast_mut(), Ordering::Release);
    let published = Published;
    let device = ControlDevice::create(driver_object, &driver)?;
    let link = SymbolicLink::create()?;
    dispatch::install(driver_object);
    let registration = Registration::register(&driver)?;
    // On failure the owners are dropped here, in reverse order, which deregisters first.
    let loaded = try_box(Loaded { registration, published, link, device, driver })?;
    LOADED.store(Box::into_raw(loaded), Ordering::Release);
    Ok(())
}

/// The driver globals, from just before registration until just after deregistration.
pub fn driver() -> Option<&'static Driver> {
    let d = DRIVER.load(Ordering::Acquire);
    // SAFETY: DRIVER points to the live globals while published; NDIS calls no handler after
    // deregistration, which happens before the globals are freed.
    unsafe { d.as_ref() }
}

/// DriverUnload: everything in reverse order of DriverEntry.
unsafe extern "system" fn driver_unload(_driver: PDRIVER_OBJECT) {
    let loaded = LOADED.swap(ptr::null_mut(), Ordering::AcqRel);
    if !loaded.is_null() {
        // SAFETY: the pointer came from Box::into_raw in `load` and the swap makes this its only owner.
        drop(unsafe { Box::from_raw(loaded) });
    }
}

/// The control device; deleted in `Drop`.
///
/// # Invariants
///
/// `0` is a device object created by IoCreateDevice and not yet deleted.
struct ControlDevice(PDEVICE_OBJECT);

impl ControlDevice {
    fn create(driver_object: PDRIVER_OBJECT, driver: &Driver) -> Result<Self> {
        let name = StaticUnicode::new(DEVICE_NAME).ok_or(Error::INVALID_PARAMETER)?;
        let mut device: PDEVICE_OBJECT = ptr::null_mut();
        // CAST: the extension holds one pointer, far below u32::MAX.
        let ext_size = core::mem::size_of::<*const Driver>() as u32;
        // SAFETY: PASSIVE_LEVEL (DriverEntry); `driver_object` is the kernel's; the name outlives the call;
        // `device` is a valid out pointer.
        let status = unsafe {
            IoCreateDevice(
                driver_object,
                ext_size,
                name.as_ptr(),
                FILE_DEVICE_NETWORK,
                FILE_DEVICE_SECURE_OPEN,
                0,
                &mut device,
            )
        };
        nt_result(status)?;
        if device.is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let owner = ControlDevice(device);
        // SYSTEM and Administrators only (or an administrator's replacement), before anyone can open it.
        crate::kernel::security::protect_device(device)?;
        // SAFETY: IoCreateDevice succeeded, so `device` is a valid DEVICE_OBJECT whose extension has room
        // for one pointer (requested above) and is ours to write.
        unsafe {
            (*device).DeviceExtension.cast::<*const Driver>().write(ptr::from_ref(driver));
        }
        // Reads and writes hand the driver MDLs of the user's buffers (no double copy for large batches).
        // SAFETY: the device was just created by this driver and is not yet visible to anyone else.
        unsafe {
            (*device).Flags |= DO_DIRECT_IO;
            (*device).Flags &= !DO_DEVICE_INITIALIZING;
        }
        Ok(owner)
    }
}

impl Drop for ControlDevice {
    fn drop(&mut self) {
        // SAFETY: type invariant: a live device object of this driver; deletion at PASSIVE_LEVEL
        // (DriverEntry failure path or DriverUnload).
        unsafe { IoDeleteDevice(self.0) }
    }
}

/// The `\DosDevices\Global\RawLink` link; deleted in `Drop`.
struct SymbolicLink(StaticUnicode);

impl SymbolicLink {
    fn create() -> Result<Self> {
        let link = StaticUnicode::new(LINK_NAME).ok_or(Error::INVALID_PARAMETER)?;
        let target = StaticUnicode::new(DEVICE_NAME).ok_or(Error::INVALID_PARAMETER)?;
        // SAFETY: PASSIVE_LEVEL; both strings are valid and only read.
        nt_result(unsafe { IoCreateSymbolicLink(link.as_ptr(), target.as_ptr()) })?;
        Ok(SymbolicLink(link))
    }
}

impl Drop for SymbolicLink {
    fn drop(&mut self) {
        // SAFETY: the link was created by `create`; PASSIVE_LEVEL.
        let _ = unsafe { IoDeleteSymbolicLink(self.0.as_ptr()) };
    }
}

/// The protocol registration; `Drop` deregisters, which makes NDIS unbind every binding synchronously.
struct Registration(NDIS_HANDLE);

impl Registration {
    fn register(driver: &Driver) -> Result<Self> {
        let mut chars = protocol::characteristics(driver.version, PROTOCOL_NAME)?;
        // SAFETY: PASSIVE_LEVEL; `chars` is a fully initialised characteristics structure whose header
        // matches its revision; NDIS copies it. The driver context is the boxed Driver, which outlives the
        // registration (Loaded drops the registration first). The handle is written into the Driver so a
        // BindAdapterEx arriving before this call returns can already use it.
        let status = unsafe {
            NdisRegisterProtocolDriver(
                ptr::from_ref(driver).cast_mut().cast::<c_void>(),
                &mut chars,
                driver.protocol_handle_slot(),
            )
        };
        nt_result(status)?;
        Ok(Registration(driver.protocol_handle()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful NdisRegisterProtocolDriver; PASSIVE_LEVEL.
        unsafe { NdisDeregisterProtocolDriver(self.0) }
    }
}

/// The DriverUnload routine's pointer, for the dispatch table.
pub(crate) const UNLOAD: PDRIVER_UNLOAD = Some(driver_unload);
