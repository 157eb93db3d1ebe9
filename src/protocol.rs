//! The ProtocolXxx callbacks NDIS calls, and the characteristics that register them.
//!
//! Each callback is an `extern "system"` shim that converts raw pointers and hands over to the binding layer
//! (`binding`, `request`, `send`). DirectOidRequestComplete does nothing: rawlink issues no direct OID
//! requests.
#![allow(unsafe_code)]

use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::kernel::string::StaticUnicode;
use crate::version::NdisVersion;
use crate::{binding, entry, request, send};
use ndis_sys::*;

/// Driver version reported to NDIS (major.minor of the crate version).
const DRIVER_VERSION: (u8, u8) = (0, 1);

/// The registration record. REVISION_2 (128 bytes) is the revision for NDIS 6.30 and every later 6.x: it
/// adds DirectOidRequestCompleteHandler to REVISION_1.
pub fn characteristics(version: NdisVersion, name: &'static [u16]) -> Result<NDIS_PROTOCOL_DRIVER_CHARACTERISTICS> {
    let name = StaticUnicode::new(name).ok_or(Error::INVALID_PARAMETER)?;
    // SAFETY: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS is plain data (integers, a string descriptor and optional
    // function pointers) for which all-zero bytes are a valid value.
    let mut c: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS = unsafe { core::mem::zeroed() };
    c.Header.Type = NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS;
    c.Header.Revision = NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2;
    c.Header.Size = NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2;
    c.MajorNdisVersion = version.major;
    c.MinorNdisVersion = version.minor;
    c.MajorDriverVersion = DRIVER_VERSION.0;
    c.MinorDriverVersion = DRIVER_VERSION.1;
    c.Flags = 0;
    c.Name = name.get();
    c.SetOptionsHandler = Some(set_options);
    c.BindAdapterHandlerEx = Some(bind_adapter_ex);
    c.UnbindAdapterHandlerEx = Some(unbind_adapter_ex);
    c.OpenAdapterCompleteHandlerEx = Some(open_adapter_complete_ex);
    c.CloseAdapterCompleteHandlerEx = Some(close_adapter_complete_ex);
    c.NetPnPEventHandler = Some(net_pnp_event);
    c.UninstallHandler = Some(uninstall);
    c.OidRequestCompleteHandler = Some(oid_request_complete);
    c.StatusHandlerEx = Some(status_ex);
    c.ReceiveNetBufferListsHandler = Some(receive_net_buffer_lists);
    c.SendNetBufferListsCompleteHandler = Some(send_net_buffer_lists_complete);
    c.DirectOidRequestCompleteHandler = Some(direct_oid_request_complete);
    Ok(c)
}

/// ProtocolSetOptions: rawlink registers no optional services.
unsafe extern "system" fn set_options(_driver_handle: NDIS_HANDLE, _driver_context: NDIS_HANDLE) -> NDIS_STATUS {
    NDIS_STATUS_SUCCESS
}

/// ProtocolBindAdapterEx: bind to an Ethernet adapter (see `binding::bind`).
unsafe extern "system" fn bind_adapter_ex(
    driver_context: NDIS_HANDLE,
    bind_context: NDIS_HANDLE,
    bind_parameters: PNDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    if driver_context.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: the ProtocolDriverContext is the Driver registered with NDIS, alive until deregistration.
    let driver = unsafe { &*driver_context.cast::<Driver>() };
    binding::bind(driver, bind_context, bind_parameters)
}

/// ProtocolUnbindAdapterEx.
unsafe extern "system" fn unbind_adapter_ex(unbind_context: NDIS_HANDLE, binding_context: NDIS_HANDLE) -> NDIS_STATUS {
    // SAFETY: NDIS passes the ProtocolBindingContext of a bound binding.
    unsafe { binding::unbind(binding_context.cast(), unbind_context) }
}

/// ProtocolOpenAdapterCompleteEx: a pended NdisOpenAdapterEx finished.
unsafe extern "system" fn open_adapter_complete_ex(binding_context: NDIS_HANDLE, status: NDIS_STATUS) {
    // SAFETY: the context of the binding whose open pended.
    unsafe { binding::open_adapter_complete(binding_context.cast(), status) }
}

/// ProtocolCloseAdapterCompleteEx: a pended NdisCloseAdapterEx finished.
unsafe extern "system" fn close_adapter_complete_ex(binding_context: NDIS_HANDLE) {
    // SAFETY: the context of the binding whose close pended.
    unsafe { binding::close_adapter_complete(binding_context.cast()) }
}

/// ProtocolNetPnPEvent. A null binding context addresses the protocol itself (BindsComplete and global
/// reconfiguration); everything else belongs to one binding.
unsafe extern "system" fn net_pnp_event(
    binding_context: NDIS_HANDLE,
    notification: PNET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    if notification.is_null() {
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if binding_context.is_null() {
        // SAFETY: NDIS passes a valid notification.
        let event = unsafe { (*notification).NetPnPEvent.NetEvent };
        if event == NetEventBindsComplete {
            if let Some(d) = entry::driver() {
                d.set_binds_complete();
            }
        }
        return NDIS_STATUS_SUCCESS;
    }
    // SAFETY: a binding's context and a valid notification.
    unsafe { binding::net_pnp_event(binding_context.cast(), notification) }
}

/// ProtocolUninstall: nothing to tear down ahead of DriverUnload.
unsafe extern "system" fn uninstall() {}

/// ProtocolOidRequestComplete: a pended OID request of `request::issue` finished.
unsafe extern "system" fn oid_request_complete(
    _binding_context: NDIS_HANDLE,
    request: PNDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    if request.is_null() {
        return;
    }
    // SAFETY: every OID request rawlink issues is an OidCall's, and NDIS completes only requests that pended.
    unsafe { request::complete(request, status) }
}

/// ProtocolDirectOidRequestComplete: no direct OID request is issued.
unsafe extern "system" fn direct_oid_request_complete(
    _binding_context: NDIS_HANDLE,
    _request: PNDIS_OID_REQUEST,
    _status: NDIS_STATUS,
) {
}

/// ProtocolStatusEx: link-state changes (see `binding::status`); other indications carry nothing rawlink
/// keeps.
unsafe extern "system" fn status_ex(binding_context: NDIS_HANDLE, indication: PNDIS_STATUS_INDICATION) {
    if binding_context.is_null() || indication.is_null() {
        return;
    }
    // SAFETY: the context of an open binding and the indication NDIS passed.
    unsafe { binding::status(binding_context.cast(), indication) }
}

/// ProtocolReceiveNetBufferLists (see `binding::receive`).
unsafe extern "system" fn receive_net_buffer_lists(
    binding_context: NDIS_HANDLE,
    net_buffer_lists: PNET_BUFFER_LIST,
    _port_number: NDIS_PORT_NUMBER,
    _number_of_net_buffer_lists: ULONG,
    receive_flags: ULONG,
) {
    if binding_context.is_null() {
        return;
    }
    // SAFETY: the context of an open binding and the chain NDIS indicated on it.
    unsafe { binding::receive(binding_context.cast(), net_buffer_lists, receive_flags) }
}

/// ProtocolSendNetBufferListsComplete (see `send::complete`).
unsafe extern "system" fn send_net_buffer_lists_complete(
    binding_context: NDIS_HANDLE,
    net_buffer_lists: PNET_BUFFER_LIST,
    send_complete_flags: ULONG,
) {
    if binding_context.is_null() {
        return;
    }
    // SAFETY: NDIS sets NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL only when it calls at DISPATCH_LEVEL, where
    // this callback stays; the proof goes no further than the call.
    let at = (send_complete_flags & NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL != 0)
        .then(|| unsafe { crate::kernel::sync::AtDispatch::assume() });
    // SAFETY: the context of the binding the NBLs were sent on, alive while sends are in flight (unbind
    // happens only after a pause, which waits for them).
    unsafe { send::complete(&*binding_context.cast::<crate::binding::Binding>(), net_buffer_lists, at) }
}
