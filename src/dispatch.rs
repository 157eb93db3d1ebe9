//! IRP dispatch for the control device.
//!
//! CREATE, CLEANUP and CLOSE succeed: any number of handles may be open; CLEANUP cancels what the handle
//! has waiting and detaches it, and every later READ, WRITE or DEVICE_CONTROL on the file object gets
//! STATUS_DELETE_PENDING. DEVICE_CONTROL decodes every IOCTL in `control` (enumeration, attach, filters,
//! read mode, queue size, capture length, OIDs, statistics) and hands the ones that pend — WAIT_EVENT and
//! SEND — to the handle itself. READ returns received frames (see `open`), WRITE sends a batch (see `send`).
#![allow(unsafe_code)]

use crate::control::{self, OidRequest, Request};
use crate::entry;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::kernel::irp::Irp;
use crate::open::Open;
use crate::request::{OidOp, Owner};
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
        // The device has no namespace: `\\.\RawLink\anything` is not the device (FILE_DEVICE_SECURE_OPEN
        // already applies the device's descriptor to such names; this refuses them outright).
        IRP_MJ_CREATE if irp.file_name_len() != 0 => irp.complete(Error::OBJECT_PATH_NOT_FOUND.to_status(), 0),
        IRP_MJ_CREATE => match Open::create(crate::kernel::security::opener()) {
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
                o.cleanup(d);
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
        // A request that was in flight when the last handle closed can arrive after CLEANUP: it must not
        // attach, queue or arm anything CLOSE would then free under it.
        IRP_MJ_READ | IRP_MJ_WRITE | IRP_MJ_DEVICE_CONTROL if open_of(&irp).is_some_and(Open::cleaned_up) => {
            irp.complete(Error::DELETE_PENDING.to_status(), 0)
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
    let Some(o) = open_of(&irp) else {
        return irp.complete(STATUS_INVALID_DEVICE_STATE, 0);
    };
    match o.write(irp) {
        Ok(()) => STATUS_PENDING,
        Err((irp, e)) => irp.complete(e.to_status(), 0),
    }
}

/// ReadFile: as many whole frame records as fit, at once (possibly none).
fn read(mut irp: Irp) -> NTSTATUS {
    if let Some(o) = open_of(&irp).filter(|o| o.wants_to_wait(irp.read_length())) {
        return o.pend_read(irp);
    }
    let result = match open_of(&irp) {
        None => Err(Error::INVALID_DEVICE_STATE),
        Some(o) => match irp.read_buffer() {
            Ok(Some(buf)) => o.read(buf),
            Ok(None) => Err(Error::BUFFER_TOO_SMALL),
            Err(e) => Err(e),
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
    // The ring's attach request is the one METHOD_OUT_DIRECT code: it pends while the ring lives.
    if code == rawlink_abi::ring::IOCTL_RAWLINK_RING_ATTACH {
        return match open_of(&irp) {
            Some(o) => o.ring_attach(irp),
            None => irp.complete(STATUS_INVALID_DEVICE_STATE, 0),
        };
    }
    // Every other rawlink code is METHOD_BUFFERED; anything else is not ours.
    if code & 0x3 != METHOD_BUFFERED {
        return irp.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    let (in_len, out_len) = (in_len as usize, out_len as usize);
    let open = open_of(&irp);
    // The requests that pend need the IRP itself.
    if code == rawlink_abi::rawlink::IOCTL_RAWLINK_WAIT_EVENT {
        return match open {
            Some(o) => o.wait_event(irp),
            None => irp.complete(STATUS_INVALID_DEVICE_STATE, 0),
        };
    }
    if code == rawlink_abi::ring::IOCTL_RAWLINK_RING_WAIT {
        return match open {
            Some(o) => o.ring_wait(irp),
            None => irp.complete(STATUS_INVALID_DEVICE_STATE, 0),
        };
    }
    if code == rawlink_abi::rawlink::IOCTL_RAWLINK_SEND {
        let Some(o) = open else { return irp.complete(STATUS_INVALID_DEVICE_STATE, 0) };
        return match o.send_ioctl(irp) {
            Ok(()) => STATUS_PENDING,
            Err((irp, e)) => irp.complete(e.to_status(), 0),
        };
    }
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
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_any_source(allow).map(|()| 0)
            }
            Request::ReadMode(mode) => {
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_mode(mode);
                Ok(0)
            }
            Request::GetStatistics => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                let out = buf.get_mut(..out_len).ok_or(Error::INVALID_PARAMETER)?;
                control::fixed_reply(&open.statistics().to_bytes(), out)
            }
            Request::GetBindingStatistics { index } => {
                let stats = driver.with_binding_ref(index, |b| b.map(|b| b.counters.snapshot()));
                let out = buf.get_mut(..out_len).ok_or(Error::INVALID_PARAMETER)?;
                control::fixed_reply(&stats.ok_or(Error::NO_MORE_ENTRIES)?.to_bytes(), out)
            }
            Request::SetQueueSize { bytes } => {
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_queue_size(bytes).map(|()| 0)
            }
            Request::SetCaptureLength { bytes } => {
                open.ok_or(Error::INVALID_DEVICE_STATE)?.set_capture_length(bytes);
                Ok(0)
            }
            Request::SetFilter(f) => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                open.set_filter(|_| Filter::new(f)).map(|()| 0)
            }
            Request::Oid(r) => {
                let open = open.ok_or(Error::INVALID_DEVICE_STATE)?;
                oid(open, r, buf, in_len, out_len)
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

/// An OID query or set for a handle, on its binding. Queries and sets are allow-listed
/// ([`control::QUERYABLE_OIDS`], [`control::SETTABLE_OIDS`]) and a query's buffer is zeroed; a packet-filter set changes the
/// handle's destination classes (the binding's filter is their union), a multicast-list set the handle's
/// groups (the binding's list is their union) and a lookahead set the handle's lookahead (the binding asks
/// for the largest); each is restored to what the other handles need when the handle closes. A query's reply is the request's header followed by the value.
fn oid(open: &Open, r: OidRequest, buf: &mut [u8], in_len: usize, out_len: usize) -> Result<usize> {
    let b = open.binding_ref().ok_or(Error::INVALID_DEVICE_STATE)?;
    let owner = Owner(core::ptr::from_ref(open) as usize);
    if r.set {
        control::check_settable(r.oid)?;
        let data = buf.get(r.data_at..in_len).ok_or(Error::BUFFER_TOO_SMALL)?;
        match r.oid {
            OID_GEN_CURRENT_PACKET_FILTER => {
                let classes = control::packet_filter_value(data)?;
                drop(b);
                open.set_filter(|f| f.with_classes(classes))?;
            }
            OID_802_3_MULTICAST_LIST => {
                let groups = control::multicast_groups(data)?;
                drop(b);
                open.set_groups(groups)?;
            }
            OID_GEN_CURRENT_LOOKAHEAD => {
                let bytes = control::lookahead_value(data)?;
                drop(b);
                open.set_lookahead(bytes)?;
            }
            _ => {
                b.oid(r.oid, OidOp::Set(data), r.timeout_ms, owner)?;
            }
        }
        return Ok(0);
    }
    control::check_queryable(r.oid)?;
    let out = buf.get_mut(r.data_at..out_len).ok_or(Error::BUFFER_TOO_SMALL)?;
    // The system buffer holds what the caller wrote; the miniport gets a zeroed buffer, never user bytes
    // or stale pool, whatever it writes back.
    out.fill(0);
    let n = b.oid(r.oid, OidOp::Query(out), r.timeout_ms, owner)?;
    Ok(r.data_at + (n as usize).min(out_len - r.data_at))
}
