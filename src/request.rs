//! OID requests the driver issues on a binding, waited for at PASSIVE_LEVEL with a timeout.
//!
//! A request lives in its own pool block ([`OidCall`]) until NDIS completes it, even when the wait ran out:
//! on a timeout (or when the handle that asked goes away) the driver calls NdisCancelOidRequest and then
//! waits for the completion NDIS guarantees after a cancel, so NDIS never writes to freed memory.
//! ProtocolOidRequestComplete only records the status and signals the event; it takes no lock, so a cancel
//! issued while holding none can complete synchronously inside NdisCancelOidRequest.
#![allow(unsafe_code)]

use crate::binding::Binding;
use crate::error::{Error, Result};
use crate::kernel::alloc::try_box;
use crate::kernel::sync::Event;
use crate::version::NdisVersion;
use alloc::boxed::Box;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, Ordering};
use ndis_sys::*;

/// What to do with an OID.
#[derive(Debug)]
pub enum OidOp<'a> {
    /// Query into the buffer.
    Query(&'a mut [u8]),
    /// Set from the buffer.
    Set(&'a [u8]),
}

/// Who asked: a handle (its requests are cancelled when it closes) or the driver itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner(pub usize);

impl Owner {
    pub const DRIVER: Owner = Owner(0);
}

/// One request in flight. `request` comes first so the NDIS_OID_REQUEST pointer NDIS hands back in
/// ProtocolOidRequestComplete is the call's address.
#[repr(C)]
struct OidCall {
    request: NDIS_OID_REQUEST,
    /// Room for the fields NDIS_OID_REQUEST revision 2 appends (248 bytes in all).
    revision_2_tail: [u8; 16],
    done: Event,
    status: AtomicI32,
}

/// Issues `op` for `oid` on the binding and waits at most `timeout_ms` for it (PASSIVE_LEVEL; the caller holds
/// a `BindingRef`, so the binding stays open meanwhile). Returns the
/// bytes NDIS wrote (query) or read (set).
pub fn issue(b: &Binding, version: NdisVersion, oid: u32, op: OidOp<'_>, timeout_ms: u32, owner: Owner) -> Result<u32> {
    if crate::kernel::irql::current() != crate::kernel::irql::PASSIVE_LEVEL {
        return Err(Error::INVALID_DEVICE_STATE);
    }
    let (kind, buffer, len) = match op {
        OidOp::Query(buf) => (NdisRequestQueryInformation, buf.as_mut_ptr(), buf.len()),
        OidOp::Set(buf) => (NdisRequestSetInformation, buf.as_ptr().cast_mut(), buf.len()),
    };
    let len = u32::try_from(len).map_err(|_| Error::INVALID_BUFFER_SIZE)?;
    // SAFETY: NDIS_OID_REQUEST is plain data for which all-zero is valid; the fields are filled below.
    let request: NDIS_OID_REQUEST = unsafe { core::mem::zeroed() };
    let call = try_box(OidCall {
        request,
        revision_2_tail: [0; 16],
        done: Event::new(),
        status: AtomicI32::new(NDIS_STATUS_PENDING),
    })?;
    call.done.init();
    let raw = Box::into_raw(call);
    // The request bytes NDIS reads, padding included, start out zero (revision 2's fields sit where the
    // revision-1 struct has its tail padding).
    // SAFETY: `raw` is a live OidCall; the range ends at `done`, inside it.
    unsafe { core::ptr::write_bytes(raw.cast::<u8>(), 0, core::mem::offset_of!(OidCall, done)) };
    // SAFETY: `raw` is this function's pool block until it is freed at the end; NDIS uses the request only
    // between NdisOidRequest and its completion, which the code below always waits for.
    let call = unsafe { &mut *raw };
    let r = &mut call.request;
    r.Header.Type = NDIS_OBJECT_TYPE_OID_REQUEST;
    if version >= NdisVersion::new(6, 50) {
        r.Header.Revision = NDIS_OID_REQUEST_REVISION_2;
        r.Header.Size = NDIS_SIZEOF_OID_REQUEST_REVISION_2;
    } else {
        r.Header.Revision = NDIS_OID_REQUEST_REVISION_1;
        r.Header.Size = NDIS_SIZEOF_OID_REQUEST_REVISION_1;
    }
    r.RequestType = kind;
    r.PortNumber = 0;
    r.Timeout = 0;
    r.RequestId = raw.cast::<c_void>();
    if kind == NdisRequestQueryInformation {
        r.DATA.QUERY_INFORMATION = NDIS_OID_REQUEST_DATA_QUERY_INFORMATION {
            Oid: oid,
            InformationBuffer: buffer.cast(),
            InformationBufferLength: len,
            BytesWritten: 0,
            BytesNeeded: 0,
        };
    } else {
        r.DATA.SET_INFORMATION = NDIS_OID_REQUEST_DATA_SET_INFORMATION {
            Oid: oid,
            InformationBuffer: buffer.cast(),
            InformationBufferLength: len,
            BytesRead: 0,
            BytesNeeded: 0,
        };
    }
    let id = raw as usize;
    let result = (|| {
        b.oid_register(id, owner)?;
        // SAFETY: an open binding (the BindingRef keeps it from closing); the request and its buffer stay
        // valid until completion, which is waited for below.
        let status = unsafe { NdisOidRequest(b.handle(), &mut call.request) };
        let mut timed_out = false;
        let status = if status == NDIS_STATUS_PENDING {
            if !call.done.wait_ms(timeout_ms) {
                timed_out = true;
                // No lock is held, so a completion inside the cancel call is fine.
                cancel(b.handle(), id);
                // NDIS completes every request it accepted, cancelled or not.
                call.done.wait();
            }
            call.status.load(Ordering::Acquire)
        } else {
            status
        };
        b.oid_unregister(id);
        let timed_out = timed_out && status == NDIS_STATUS_REQUEST_ABORTED;
        crate::control::oid_result(status, timed_out)?;
        // SAFETY: the request completed; the counts are in the member of the type issued.
        Ok(unsafe {
            if kind == NdisRequestSetInformation {
                call.request.DATA.SET_INFORMATION.BytesRead
            } else {
                call.request.DATA.QUERY_INFORMATION.BytesWritten
            }
        })
    })();
    // SAFETY: the request completed (or was never issued); nothing else refers to the block.
    drop(unsafe { Box::from_raw(raw) });
    result
}

/// ProtocolOidRequestComplete: records the status of a request [`issue`] is waiting for and wakes it.
///
/// # Safety
///
/// `request` is the NDIS_OID_REQUEST of an `OidCall` whose NdisOidRequest returned pending.
pub unsafe fn complete(request: PNDIS_OID_REQUEST, status: NDIS_STATUS) {
    let call = request.cast::<OidCall>();
    // SAFETY: guaranteed by the caller; the waiter frees the block only after `done` is signalled, which
    // is the last access here.
    unsafe {
        (*call).status.store(status, Ordering::Release);
        (*call).done.set();
    }
}

/// Cancels request `id` of the binding (a value [`issue`] registered).
pub fn cancel(handle: NDIS_HANDLE, id: usize) {
    // SAFETY: `handle` is the open binding the request was issued on (callers hold a BindingRef or run
    // before the binding closes); the id identifies the request, and cancelling one that already completed
    // is allowed.
    unsafe { NdisCancelOidRequest(handle, id as *mut c_void) };
}

/// Keeps the layout promise: the revision-2 tail follows the revision-1 request.
const _: () = assert!(
    core::mem::offset_of!(OidCall, revision_2_tail) + 16 >= NDIS_SIZEOF_OID_REQUEST_REVISION_2 as usize
        && core::mem::offset_of!(OidCall, request) == 0
);
