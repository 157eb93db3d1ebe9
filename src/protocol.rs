//! The ProtocolXxx callbacks NDIS calls, and the characteristics that register them.
//!
//! Each callback is an `extern "system"` shim that converts raw pointers and hands over to safe logic.
//! Bindings are the next layer of the driver; until they exist, BindAdapterEx declines every adapter with
//! `NDIS_STATUS_NOT_SUPPORTED` (NDIS then simply does not bind rawlink; nothing is allocated, nothing leaks),
//! and every other handler does what NDIS requires of a protocol with no bindings.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::kernel::string::StaticUnicode;
use crate::version::NdisVersion;
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

/// ProtocolBindAdapterEx: declined until the binding layer exists; NDIS treats a failure status as "this
/// protocol does not bind to that adapter".
unsafe extern "system" fn bind_adapter_ex(
    _driver_context: NDIS_HANDLE,
    _bind_context: NDIS_HANDLE,
    _bind_parameters: PNDIS_BIND_PARAMETERS,
) -> NDIS_STATUS {
    NDIS_STATUS_NOT_SUPPORTED
}

/// ProtocolUnbindAdapterEx: never called while no binding is ever opened; succeeds synchronously.
unsafe extern "system" fn unbind_adapter_ex(_unbind_context: NDIS_HANDLE, _binding_context: NDIS_HANDLE) -> NDIS_STATUS {
    NDIS_STATUS_SUCCESS
}

/// ProtocolOpenAdapterCompleteEx: only follows an NdisOpenAdapterEx that returned pending; none is issued.
unsafe extern "system" fn open_adapter_complete_ex(_binding_context: NDIS_HANDLE, _status: NDIS_STATUS) {}

/// ProtocolCloseAdapterCompleteEx: only follows a pended NdisCloseAdapterEx; none is issued.
unsafe extern "system" fn close_adapter_complete_ex(_binding_context: NDIS_HANDLE) {}

/// ProtocolNetPnPEvent: every event is acknowledged (`NDIS_STATUS_SUCCESS`), as NDIS expects of a protocol
/// with nothing to pause or power down.
unsafe extern "system" fn net_pnp_event(
    _binding_context: NDIS_HANDLE,
    _notification: PNET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    NDIS_STATUS_SUCCESS
}

/// ProtocolUninstall: nothing to tear down ahead of DriverUnload.
unsafe extern "system" fn uninstall() {}

/// ProtocolOidRequestComplete: no OID request is issued without a binding.
unsafe extern "system" fn oid_request_complete(
    _binding_context: NDIS_HANDLE,
    _request: PNDIS_OID_REQUEST,
    _status: NDIS_STATUS,
) {
}

/// ProtocolDirectOidRequestComplete: no direct OID request is issued.
unsafe extern "system" fn direct_oid_request_complete(
    _binding_context: NDIS_HANDLE,
    _request: PNDIS_OID_REQUEST,
    _status: NDIS_STATUS,
) {
}

/// ProtocolStatusEx: status indications carry nothing rawlink keeps yet.
unsafe extern "system" fn status_ex(_binding_context: NDIS_HANDLE, _indication: PNDIS_STATUS_INDICATION) {}

/// ProtocolReceiveNetBufferLists: only a bound protocol receives; with no binding NDIS never calls this.
/// Should it ever be called with a foreign chain, rawlink cannot return NBLs without a binding handle, so it
/// touches nothing.
unsafe extern "system" fn receive_net_buffer_lists(
    _binding_context: NDIS_HANDLE,
    _net_buffer_lists: PNET_BUFFER_LIST,
    _port_number: NDIS_PORT_NUMBER,
    _number_of_net_buffer_lists: ULONG,
    _receive_flags: ULONG,
) {
}

/// ProtocolSendNetBufferListsComplete: no send is issued without a binding.
unsafe extern "system" fn send_net_buffer_lists_complete(
    _binding_context: NDIS_HANDLE,
    _net_buffer_lists: PNET_BUFFER_LIST,
    _send_complete_flags: ULONG,
) {
}

