//! IRP dispatch for the control device.
//!
//! CREATE, CLEANUP and CLOSE succeed: any number of handles may be open. READ, WRITE and DEVICE_CONTROL are
//! the binding interface; until bindings exist they complete with STATUS_INVALID_DEVICE_REQUEST.
#![allow(unsafe_code)]

use crate::entry;
use crate::kernel::irp::Irp;
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
    let status = match irp.major_function() {
        IRP_MJ_CREATE | IRP_MJ_CLEANUP | IRP_MJ_CLOSE => STATUS_SUCCESS,
        _ => STATUS_INVALID_DEVICE_REQUEST,
    };
    irp.complete(status, 0)
}
