//! IRP dispatch for the control device.
//!
//! CREATE, CLEANUP and CLOSE succeed: any number of handles may be open. DEVICE_CONTROL answers binding
//! enumeration (NDISPROT's QUERY_BINDING and BIND_WAIT, rawlink's QUERY_BINDING; see `control`) and attaches
//! a handle to a binding (IOCTL_RAWLINK_OPEN). READ returns received frames (see `open`), WRITE sends a batch
//! (see `send`).
#![allow(unsafe_code)]

use crate::control::{self, Request};
use crate::entry;
use crate::error::{Error, Result};
use crate::kernel::irp::Irp;
use crate::open::Open;
use ndis_sys::*;

/// Fills the driver object's dispatch table and unload routine.
pub fn install(driver_object: PDRIVER_OBJECT) {
    for major in [IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_DEVICE_CONTROL] {
        // SAFETY: DriverEntry owns the driver object until it returns; `major` is below
        // IRP_MJ_MAXIMUM_FUNCTION + 1, the table's length.
        unsafe {
            if let Some(slot) = (*driver_object).MajorFunction.get_mut(usize::from(major)) {
                *slot = Some(dispatch);
            }
        }
    }
    // SAFETY: as above.
    unsafe { (*driver_object).DriverUnload = entry::UNLOAD };
}

/// The one dispatch routine of the control device.
unsafe extern "system" fn dispatch(_device: PDEVICE_OBJECT, irp: PIRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a valid IRP that this driver now owns until it completes it.
    let Some(irp) = (unsafe { Irp::from_raw(irp) }) else { return STATUS_INVALID_PARAMETER };
    match irp.major_function() {
        IRP_MJ_CREATE => match Open::create() {
            Ok(o) => {
                if irp.set_fs_context(o.cast()) {
                    irp.complete(STATUS_SUCCESS, 0)
                } else {
                    // SAFETY: just created, never published.
                    unsafe { Open::destroy(o) };
                    irp.complete(STATUS_INVALID_PARAMETER, 0)
                }
            }
            Err(e) => irp.complete(e.to_status(), 0),
        },
        IRP_MJ_CLEANUP => {
            if let (Some(o), Some(d)) = (open_of(&irp), entry::driver()) {
                o.cancel_reads();
                o.detach(d);
            }
            irp.complete(STATUS_SUCCESS, 0)
        }
        IRP_MJ_CLOSE => {
            let o = irp.fs_context().cast::<Open>();
            irp.set_fs_context(core::ptr::null_mut());
            // SAFETY: CLOSE is the last request on the file object; CLEANUP detached it already.
            unsafe { Open::destroy(o) };
            irp.complete(STATUS_SUCCESS, 0)
        }
        IRP_MJ_READ => read(irp),
        IRP_MJ_WRITE => write(irp),
        IRP_MJ_DEVICE_CONTROL => device_control(irp),
        _ => irp.complete(STATUS_INVALID_DEVICE_REQUEST, 0),
    }
}

/// The handle state of the IRP's file object. It outlives the IRP (it is freed at CLOSE, the file
/// object's last request), so the reference does not borrow the IRP.
fn open_of<'a>(irp: &Irp) -> Option<&'a Open> {
    // SAFETY: FsContext holds the Open made at CREATE until CLOSE, the file object's last request.
    unsafe { irp.fs_context().cast::<Open>().as_ref() }
}

/// WriteFile: a batch of frame records, sent as one NBL chain; pends until NDIS completes every frame.
fn write(irp: Irp) -> NTSTATUS {
    let (Some(o), Some(d)) = (open_of(&irp), entry::driver()) else {
        return irp.complete(STATUS_INVALID_DEVICE_STATE, 0);
    };
    match o.write(d, irp) {
        Ok(()) => STATUS_PENDING,
        Err((irp, e)) => irp.complete(e.to_status(), 0),
    }
}

/// ReadFile: as many whole frame records as fit, at once (possibly none).
fn read(mut irp: Irp) -> NTSTATUS {
    if let Some(o) = open_of(&irp).filter(|o| o.wants_to_wait()) {
        o.pend_read(irp);
        return STATUS_PENDING;
    }
    let result = match open_of(&irp) {
        None => Err(Error::INVALID_DEVICE_STATE),
        Some(o) => match irp.read_buffer() {
            Some(buf) => o.read(buf),
            None => Err(Error::BUFFER_TOO_SMALL),
        },
    };
    match result {
        Ok(n) => irp.complete(STATUS_SUCCESS, n),
        Err(e) => irp.complete(e.to_status(), 0),
    }
}

/// Bounded wait of BIND_WAIT, as NDISPROT's (but reported as a failure when it runs out).
const BIND_WAIT_MS: u32 = 5_000;

fn device_control(mut irp: Irp) -> NTSTATUS {
    let (code, in_len, out_len) = irp.ioctl();
    let Some(driver) = entry::driver() else { return irp.complete(STATUS_DEVICE_NOT_READY, 0) };
    // Every rawlink code is METHOD_BUFFERED; anything else is not ours.
    if code & 0x3 != METHOD_BUFFERED {
        return irp.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    let (in_len, out_len) = (in_len as usize, out_len as usize);
    let open = open_of(&irp);
    // SAFETY: IRP_MJ_DEVICE_CONTROL with a METHOD_BUFFERED code (checked above); the length is the
    // system buffer's.
    let buf = unsafe { irp.system_buffer(in_len.max(out_len)) };
    let result = (|| -> Result<usize> {
        let input = buf.get(..in_len).ok_or(Error::INVALID_PARAMETER)?;
        let request = control::decode(code, input)?;
        match request {
            Request::BindWait => {
                if driver.binds_complete.load(core::sync::atomic::Ordering::Acquire)
                    || driver.binds_complete_event.wait_ms(BIND_WAIT_MS)
                {
                    Ok(0)
                } else {
                    Err(Error::IO_TIMEOUT)
                }
            }
            Request::AllowAnySource { allow } => {
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_any_source(allow);
                Ok(0)
            }
            Request::SetReadMode { blocking } => {
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_blocking(blocking);
                Ok(0)
            }
            Request::GetStatistics => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                let out = buf.get_mut(..out_len).ok_or(Error::INVALID_PARAMETER)?;
                control::statistics_reply(&open.statistics(), out)
            }
            Request::NdisprotOpenDevice => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                open.attach_ndisprot(driver, control::adapter_name(input)?).map(|()| 0)
            }
            Request::Open { index } => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                open.attach(driver, index).map(|()| 0)
            }
            Request::NdisprotQueryBinding { index } | Request::QueryBinding { index } => {
                let out = buf.get_mut(..out_len).ok_or(Error::INVALID_PARAMETER)?;
                driver.with_binding(index, |view| control::query_reply(request, view, out))
            }
        }
    })();
    match result {
        Ok(n) => irp.complete(STATUS_SUCCESS, n),
        Err(e) => irp.complete(e.to_status(), 0),
    }
}
