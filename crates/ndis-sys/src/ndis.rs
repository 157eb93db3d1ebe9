//! NDIS 6 structures and callback types of `ndis.h`/`ntddndis.h` that a protocol driver uses, at the
//! NDIS 6.30 layout of WDK 10.0.16299 (see [`crate::ndis689`] for the structures that grew later).

use crate::io::*;
use crate::ke::*;
use crate::types::*;

// ---------------------------------------------------------------------------------------------------------
// Scalars and enumerations (C enums are `int`).
// ---------------------------------------------------------------------------------------------------------

/// `NDIS_STATUS` (`int`): NDIS status codes are NTSTATUS values.
pub type NDIS_STATUS = INT;
/// `NDIS_STATUS *`.
pub type PNDIS_STATUS = *mut NDIS_STATUS;
/// `NDIS_HANDLE`: an opaque handle or context pointer.
pub type NDIS_HANDLE = PVOID;
/// `NDIS_HANDLE *`.
pub type PNDIS_HANDLE = *mut NDIS_HANDLE;
/// `NDIS_OID`: an object identifier (`OID_*`).
pub type NDIS_OID = ULONG;
/// `NDIS_OID *`.
pub type PNDIS_OID = *mut NDIS_OID;
/// `NDIS_PORT_NUMBER` (`NDIS_DEFAULT_PORT_NUMBER` = 0).
pub type NDIS_PORT_NUMBER = ULONG;
/// `NDIS_PORT_NUMBER *`.
pub type PNDIS_PORT_NUMBER = *mut NDIS_PORT_NUMBER;
/// `NDIS_STRING`: a [`UNICODE_STRING`].
pub type NDIS_STRING = UNICODE_STRING;
/// `NDIS_STRING *`.
pub type PNDIS_STRING = *mut UNICODE_STRING;
/// `NDIS_PHYSICAL_ADDRESS`.
pub type NDIS_PHYSICAL_ADDRESS = PHYSICAL_ADDRESS;
/// `NET_FRAME_TYPE`: an EtherType-like frame type (`NDIS_OPEN_PARAMETERS.FrameTypeArray`).
pub type NET_FRAME_TYPE = USHORT;
/// `NET_FRAME_TYPE *`.
pub type PNET_FRAME_TYPE = *mut NET_FRAME_TYPE;
/// `NDIS_RSS_CAPS_FLAGS`.
pub type NDIS_RSS_CAPS_FLAGS = ULONG;
/// `NDIS_NIC_SWITCH_ID`.
pub type NDIS_NIC_SWITCH_ID = ULONG;
/// `NDIS_NIC_SWITCH_VPORT_ID`.
pub type NDIS_NIC_SWITCH_VPORT_ID = ULONG;

/// [`NDIS_MEDIUM`](https://learn.microsoft.com/windows-hardware/drivers/network/ndis-medium) (enum;
/// `NdisMedium802_3` for Ethernet).
pub type NDIS_MEDIUM = INT;
/// `NDIS_MEDIUM *`.
pub type PNDIS_MEDIUM = *mut NDIS_MEDIUM;
/// `NDIS_PHYSICAL_MEDIUM` (enum).
pub type NDIS_PHYSICAL_MEDIUM = INT;
/// `NDIS_MEDIA_CONNECT_STATE` (`MediaConnectState*`).
pub type NDIS_MEDIA_CONNECT_STATE = NET_IF_MEDIA_CONNECT_STATE;
/// `NDIS_MEDIA_DUPLEX_STATE` (`MediaDuplexState*`).
pub type NDIS_MEDIA_DUPLEX_STATE = NET_IF_MEDIA_DUPLEX_STATE;
/// `NDIS_SUPPORTED_PAUSE_FUNCTIONS` (enum).
pub type NDIS_SUPPORTED_PAUSE_FUNCTIONS = INT;
/// `NDIS_REQUEST_TYPE` (`NdisRequestQueryInformation`, ...).
pub type NDIS_REQUEST_TYPE = INT;
/// `NET_PNP_EVENT_CODE` (`NetEventSetPower`, ...).
pub type NET_PNP_EVENT_CODE = INT;
/// `NDIS_NET_BUFFER_LIST_INFO`: indices into `NET_BUFFER_LIST.NetBufferListInfo`.
pub type NDIS_NET_BUFFER_LIST_INFO = INT;
/// `NDIS_DEVICE_POWER_STATE` (`NdisDeviceStateD0`, ...).
pub type NDIS_DEVICE_POWER_STATE = INT;
/// `NDIS_PORT_CONTROL_STATE` (enum).
pub type NDIS_PORT_CONTROL_STATE = INT;
/// `NDIS_PORT_AUTHORIZATION_STATE` (enum).
pub type NDIS_PORT_AUTHORIZATION_STATE = INT;

opaque!(
    /// `NDIS_PNP_CAPABILITIES`.
    NDIS_PNP_CAPABILITIES,
    /// `NDIS_PORT`.
    NDIS_PORT,
    /// `NDIS_TCP_CONNECTION_OFFLOAD`.
    NDIS_TCP_CONNECTION_OFFLOAD,
    /// `NDIS_HD_SPLIT_CURRENT_CONFIG`.
    NDIS_HD_SPLIT_CURRENT_CONFIG,
    /// `NDIS_RECEIVE_FILTER_CAPABILITIES`.
    NDIS_RECEIVE_FILTER_CAPABILITIES,
    /// `NDIS_NIC_SWITCH_CAPABILITIES`.
    NDIS_NIC_SWITCH_CAPABILITIES,
    /// `NDIS_NDK_CAPABILITIES`.
    NDIS_NDK_CAPABILITIES,
    /// `NDIS_SRIOV_CAPABILITIES`.
    NDIS_SRIOV_CAPABILITIES,
    /// `NDIS_NIC_SWITCH_INFO_ARRAY`.
    NDIS_NIC_SWITCH_INFO_ARRAY,
    /// `NDIS_RW_LOCK_EX`: an NDIS reader/writer lock (`NdisAllocateRWLock`).
    NDIS_RW_LOCK_EX,
    /// `NET_BUFFER_SHARED_MEMORY`.
    NET_BUFFER_SHARED_MEMORY,
    /// `SCATTER_GATHER_LIST`.
    SCATTER_GATHER_LIST,
);
/// `NDIS_PNP_CAPABILITIES *`.
pub type PNDIS_PNP_CAPABILITIES = *mut NDIS_PNP_CAPABILITIES;
/// `NDIS_PORT *`.
pub type PNDIS_PORT = *mut NDIS_PORT;
/// `NDIS_TCP_CONNECTION_OFFLOAD *`.
pub type PNDIS_TCP_CONNECTION_OFFLOAD = *mut NDIS_TCP_CONNECTION_OFFLOAD;
/// `NDIS_HD_SPLIT_CURRENT_CONFIG *`.
pub type PNDIS_HD_SPLIT_CURRENT_CONFIG = *mut NDIS_HD_SPLIT_CURRENT_CONFIG;
/// `NDIS_RECEIVE_FILTER_CAPABILITIES *`.
pub type PNDIS_RECEIVE_FILTER_CAPABILITIES = *mut NDIS_RECEIVE_FILTER_CAPABILITIES;
/// `NDIS_NIC_SWITCH_CAPABILITIES *`.
pub type PNDIS_NIC_SWITCH_CAPABILITIES = *mut NDIS_NIC_SWITCH_CAPABILITIES;
/// `NDIS_NDK_CAPABILITIES *`.
pub type PNDIS_NDK_CAPABILITIES = *mut NDIS_NDK_CAPABILITIES;
/// `NDIS_SRIOV_CAPABILITIES *`.
pub type PNDIS_SRIOV_CAPABILITIES = *mut NDIS_SRIOV_CAPABILITIES;
/// `NDIS_NIC_SWITCH_INFO_ARRAY *`.
pub type PNDIS_NIC_SWITCH_INFO_ARRAY = *mut NDIS_NIC_SWITCH_INFO_ARRAY;
/// `NDIS_RW_LOCK_EX *`.
pub type PNDIS_RW_LOCK_EX = *mut NDIS_RW_LOCK_EX;
/// `NET_BUFFER_SHARED_MEMORY *`.
pub type PNET_BUFFER_SHARED_MEMORY = *mut NET_BUFFER_SHARED_MEMORY;
/// `SCATTER_GATHER_LIST *`.
pub type PSCATTER_GATHER_LIST = *mut SCATTER_GATHER_LIST;

// ---------------------------------------------------------------------------------------------------------
// Common headers and synchronisation.
// ---------------------------------------------------------------------------------------------------------

/// [`NDIS_OBJECT_HEADER`](https://learn.microsoft.com/windows-hardware/drivers/ddi/objectheader/ns-objectheader-ndis_object_header):
/// type, revision and size of an NDIS structure. Read `Revision`/`Size` before any field a later revision
/// added.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: UCHAR,
    pub Revision: UCHAR,
    pub Size: USHORT,
}
/// `NDIS_OBJECT_HEADER *`.
pub type PNDIS_OBJECT_HEADER = *mut NDIS_OBJECT_HEADER;

/// `NDIS_SPIN_LOCK`: a `KSPIN_LOCK` plus the IRQL to restore (`NdisAcquireSpinLock` is a macro over
/// `KeAcquireSpinLockRaiseToDpc` on x64; `NdisAllocateSpinLock` over `KeInitializeSpinLock`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_SPIN_LOCK {
    pub SpinLock: KSPIN_LOCK,
    pub OldIrql: KIRQL,
}
/// `NDIS_SPIN_LOCK *`.
pub type PNDIS_SPIN_LOCK = *mut NDIS_SPIN_LOCK;

/// `NDIS_EVENT`: a notification event (`NdisInitializeEvent`, `NdisSetEvent`, `NdisWaitEvent`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_EVENT {
    pub Event: KEVENT,
}
/// `NDIS_EVENT *`.
pub type PNDIS_EVENT = *mut NDIS_EVENT;

/// `LOCK_STATE_EX`: the caller-provided state of an `NDIS_RW_LOCK_EX` acquisition.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LOCK_STATE_EX {
    pub OldIrql: KIRQL,
    pub LockState: UCHAR,
    pub Flags: UCHAR,
}
/// `LOCK_STATE_EX *`.
pub type PLOCK_STATE_EX = *mut LOCK_STATE_EX;

/// [`NDIS_GENERIC_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_generic_object):
/// an NDIS handle for components that have none (`NdisAllocateGenericObject`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_GENERIC_OBJECT {
    pub Header: NDIS_OBJECT_HEADER,
    pub Caller: PVOID,
    pub CallersCaller: PVOID,
    pub DriverObject: PDRIVER_OBJECT,
}
/// `NDIS_GENERIC_OBJECT *`.
pub type PNDIS_GENERIC_OBJECT = *mut NDIS_GENERIC_OBJECT;

// ---------------------------------------------------------------------------------------------------------
// Callback types.
// ---------------------------------------------------------------------------------------------------------

/// [`ProtocolSetOptions`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-set_options):
/// `(NdisDriverHandle, DriverContext) -> NDIS_STATUS`.
pub type SET_OPTIONS_HANDLER =
    Option<unsafe extern "system" fn(NdisDriverHandle: NDIS_HANDLE, DriverContext: NDIS_HANDLE) -> NDIS_STATUS>;

/// [`ProtocolBindAdapterEx`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_bind_adapter_ex):
/// `(ProtocolDriverContext, BindContext, BindParameters) -> NDIS_STATUS`.
pub type BIND_HANDLER_EX = Option<
    unsafe extern "system" fn(
        ProtocolDriverContext: NDIS_HANDLE,
        BindContext: NDIS_HANDLE,
        BindParameters: PNDIS_BIND_PARAMETERS,
    ) -> NDIS_STATUS,
>;

/// [`ProtocolUnbindAdapterEx`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_unbind_adapter_ex):
/// `(UnbindContext, ProtocolBindingContext) -> NDIS_STATUS`.
pub type UNBIND_HANDLER_EX =
    Option<unsafe extern "system" fn(UnbindContext: NDIS_HANDLE, ProtocolBindingContext: NDIS_HANDLE) -> NDIS_STATUS>;

/// [`ProtocolOpenAdapterCompleteEx`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_open_adapter_complete_ex):
/// `(ProtocolBindingContext, Status)`.
pub type OPEN_ADAPTER_COMPLETE_HANDLER_EX =
    Option<unsafe extern "system" fn(ProtocolBindingContext: NDIS_HANDLE, Status: NDIS_STATUS)>;

/// [`ProtocolCloseAdapterCompleteEx`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_close_adapter_complete_ex):
/// `(ProtocolBindingContext)`.
pub type CLOSE_ADAPTER_COMPLETE_HANDLER_EX = Option<unsafe extern "system" fn(ProtocolBindingContext: NDIS_HANDLE)>;

/// [`ProtocolNetPnPEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_net_pnp_event):
/// `(ProtocolBindingContext, NetPnPEventNotification) -> NDIS_STATUS`.
pub type NET_PNP_EVENT_HANDLER = Option<
    unsafe extern "system" fn(
        ProtocolBindingContext: NDIS_HANDLE,
        NetPnPEventNotification: PNET_PNP_EVENT_NOTIFICATION,
    ) -> NDIS_STATUS,
>;

/// [`ProtocolUninstall`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_uninstall):
/// `()`.
pub type UNINSTALL_PROTOCOL_HANDLER = Option<unsafe extern "system" fn()>;

/// [`ProtocolOidRequestComplete`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_oid_request_complete):
/// `(ProtocolBindingContext, OidRequest, Status)`.
pub type OID_REQUEST_COMPLETE_HANDLER = Option<
    unsafe extern "system" fn(ProtocolBindingContext: NDIS_HANDLE, OidRequest: PNDIS_OID_REQUEST, Status: NDIS_STATUS),
>;

/// [`ProtocolStatusEx`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_status_ex):
/// `(ProtocolBindingContext, StatusIndication)`.
pub type STATUS_HANDLER_EX =
    Option<unsafe extern "system" fn(ProtocolBindingContext: NDIS_HANDLE, StatusIndication: PNDIS_STATUS_INDICATION)>;

/// [`ProtocolReceiveNetBufferLists`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_receive_net_buffer_lists):
/// `(ProtocolBindingContext, NetBufferLists, PortNumber, NumberOfNetBufferLists, ReceiveFlags)`.
pub type RECEIVE_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "system" fn(
        ProtocolBindingContext: NDIS_HANDLE,
        NetBufferLists: PNET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    ),
>;

/// [`ProtocolSendNetBufferListsComplete`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_send_net_buffer_lists_complete):
/// `(ProtocolBindingContext, NetBufferList, SendCompleteFlags)`.
pub type SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER = Option<
    unsafe extern "system" fn(
        ProtocolBindingContext: NDIS_HANDLE,
        NetBufferList: PNET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    ),
>;

/// [`ProtocolDirectOidRequestComplete`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-protocol_direct_oid_request_complete):
/// `(ProtocolBindingContext, OidRequest, Status)`.
pub type DIRECT_OID_REQUEST_COMPLETE_HANDLER = Option<
    unsafe extern "system" fn(ProtocolBindingContext: NDIS_HANDLE, OidRequest: PNDIS_OID_REQUEST, Status: NDIS_STATUS),
>;

/// [`NDIS_IO_WORKITEM_FUNCTION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-ndis_io_workitem_function):
/// `(WorkItemContext, NdisIoWorkItemHandle)`. The WDK's function type and its pointer
/// (`NDIS_IO_WORKITEM_ROUTINE`) are the same Rust type.
pub type NDIS_IO_WORKITEM_FUNCTION =
    Option<unsafe extern "system" fn(WorkItemContext: PVOID, NdisIoWorkItemHandle: NDIS_HANDLE)>;
/// `NDIS_IO_WORKITEM_ROUTINE`: pointer to an [`NDIS_IO_WORKITEM_FUNCTION`].
pub type NDIS_IO_WORKITEM_ROUTINE = NDIS_IO_WORKITEM_FUNCTION;

/// [`NDIS_TIMER_FUNCTION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nc-ndis-ndis_timer_function):
/// `(SystemSpecific1, FunctionContext, SystemSpecific2, SystemSpecific3)`, run at DISPATCH_LEVEL. The WDK's
/// function type and its pointer (`PNDIS_TIMER_FUNCTION`) are the same Rust type.
pub type NDIS_TIMER_FUNCTION = Option<
    unsafe extern "system" fn(
        SystemSpecific1: PVOID,
        FunctionContext: PVOID,
        SystemSpecific2: PVOID,
        SystemSpecific3: PVOID,
    ),
>;
/// `PNDIS_TIMER_FUNCTION`: pointer to an [`NDIS_TIMER_FUNCTION`].
pub type PNDIS_TIMER_FUNCTION = NDIS_TIMER_FUNCTION;

/// `NET_BUFFER_FREE_MDL_HANDLER` (`NdisAdvanceNetBufferDataStart`): `(Mdl)`.
pub type NET_BUFFER_FREE_MDL_HANDLER = Option<unsafe extern "system" fn(Mdl: PMDL)>;
/// `NET_BUFFER_ALLOCATE_MDL_HANDLER` (`NdisRetreatNetBufferDataStart`): `(BufferSize) -> PMDL`.
pub type NET_BUFFER_ALLOCATE_MDL_HANDLER = Option<unsafe extern "system" fn(BufferSize: PULONG) -> PMDL>;

// ---------------------------------------------------------------------------------------------------------
// Protocol registration and binding.
// ---------------------------------------------------------------------------------------------------------

/// [`NDIS_PROTOCOL_DRIVER_CHARACTERISTICS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_driver_characteristics):
/// what `NdisRegisterProtocolDriver` registers. REVISION_2 (128 bytes) from NDIS 6.30 on.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: UCHAR,
    pub MinorNdisVersion: UCHAR,
    pub MajorDriverVersion: UCHAR,
    pub MinorDriverVersion: UCHAR,
    /// `NDIS_PROTOCOL_DRIVER_*` flags.
    pub Flags: ULONG,
    pub Name: NDIS_STRING,
    pub SetOptionsHandler: SET_OPTIONS_HANDLER,
    pub BindAdapterHandlerEx: BIND_HANDLER_EX,
    pub UnbindAdapterHandlerEx: UNBIND_HANDLER_EX,
    pub OpenAdapterCompleteHandlerEx: OPEN_ADAPTER_COMPLETE_HANDLER_EX,
    pub CloseAdapterCompleteHandlerEx: CLOSE_ADAPTER_COMPLETE_HANDLER_EX,
    pub NetPnPEventHandler: NET_PNP_EVENT_HANDLER,
    pub UninstallHandler: UNINSTALL_PROTOCOL_HANDLER,
    pub OidRequestCompleteHandler: OID_REQUEST_COMPLETE_HANDLER,
    pub StatusHandlerEx: STATUS_HANDLER_EX,
    pub ReceiveNetBufferListsHandler: RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub SendNetBufferListsCompleteHandler: SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
    /// REVISION_2 and later.
    pub DirectOidRequestCompleteHandler: DIRECT_OID_REQUEST_COMPLETE_HANDLER,
}
/// `NDIS_PROTOCOL_DRIVER_CHARACTERISTICS *`.
pub type PNDIS_PROTOCOL_DRIVER_CHARACTERISTICS = *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS;

/// [`NDIS_BIND_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_bind_parameters)
/// (REVISION_4 layout, 312 bytes). NDIS may pass revisions 1–4: check `Header.Revision`/`Size` before reading
/// fields past `NDIS_SIZEOF_BIND_PARAMETERS_REVISION_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_BIND_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolSection: PNDIS_STRING,
    pub AdapterName: PNDIS_STRING,
    pub PhysicalDeviceObject: PDEVICE_OBJECT,
    pub MediaType: NDIS_MEDIUM,
    pub MtuSize: ULONG,
    pub MaxXmitLinkSpeed: ULONG64,
    pub XmitLinkSpeed: ULONG64,
    pub MaxRcvLinkSpeed: ULONG64,
    pub RcvLinkSpeed: ULONG64,
    pub MediaConnectState: NDIS_MEDIA_CONNECT_STATE,
    pub MediaDuplexState: NDIS_MEDIA_DUPLEX_STATE,
    pub LookaheadSize: ULONG,
    pub PowerManagementCapabilities: PNDIS_PNP_CAPABILITIES,
    pub SupportedPacketFilters: ULONG,
    pub MaxMulticastListSize: ULONG,
    pub MacAddressLength: USHORT,
    pub CurrentMacAddress: [UCHAR; 32],
    pub PhysicalMediumType: NDIS_PHYSICAL_MEDIUM,
    pub RcvScaleCapabilities: PNDIS_RECEIVE_SCALE_CAPABILITIES,
    pub BoundIfNetluid: NET_LUID,
    pub BoundIfIndex: NET_IFINDEX,
    pub LowestIfNetluid: NET_LUID,
    pub LowestIfIndex: NET_IFINDEX,
    pub AccessType: NET_IF_ACCESS_TYPE,
    pub DirectionType: NET_IF_DIRECTION_TYPE,
    pub ConnectionType: NET_IF_CONNECTION_TYPE,
    pub IfType: NET_IFTYPE,
    pub IfConnectorPresent: BOOLEAN,
    pub ActivePorts: PNDIS_PORT,
    pub DataBackFillSize: ULONG,
    pub ContextBackFillSize: ULONG,
    pub MacOptions: ULONG,
    pub CompartmentId: NET_IF_COMPARTMENT_ID,
    pub DefaultOffloadConfiguration: PNDIS_OFFLOAD,
    pub TcpConnectionOffloadCapabilities: PNDIS_TCP_CONNECTION_OFFLOAD,
    pub BoundAdapterName: PNDIS_STRING,
    // REVISION_2 (NDIS 6.1)
    pub HDSplitCurrentConfig: PNDIS_HD_SPLIT_CURRENT_CONFIG,
    // REVISION_3 (NDIS 6.20)
    pub ReceiveFilterCapabilities: PNDIS_RECEIVE_FILTER_CAPABILITIES,
    pub PowerManagementCapabilitiesEx: PNDIS_PM_CAPABILITIES,
    pub NicSwitchCapabilities: PNDIS_NIC_SWITCH_CAPABILITIES,
    // REVISION_4 (NDIS 6.30)
    pub NDKEnabled: BOOLEAN,
    pub NDKCapabilities: PNDIS_NDK_CAPABILITIES,
    pub SriovCapabilities: PNDIS_SRIOV_CAPABILITIES,
    pub NicSwitchArray: PNDIS_NIC_SWITCH_INFO_ARRAY,
}
/// `NDIS_BIND_PARAMETERS *`.
pub type PNDIS_BIND_PARAMETERS = *mut NDIS_BIND_PARAMETERS;

/// [`NDIS_OPEN_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_open_parameters):
/// what `NdisOpenAdapterEx` opens.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OPEN_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub AdapterName: PNDIS_STRING,
    pub MediumArray: PNDIS_MEDIUM,
    pub MediumArraySize: UINT,
    pub SelectedMediumIndex: PUINT,
    pub FrameTypeArray: PNET_FRAME_TYPE,
    pub FrameTypeArraySize: UINT,
}
/// `NDIS_OPEN_PARAMETERS *`.
pub type PNDIS_OPEN_PARAMETERS = *mut NDIS_OPEN_PARAMETERS;

/// [`NDIS_PROTOCOL_RESTART_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_restart_parameters):
/// the buffer of a `NetEventRestart` PnP event.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PROTOCOL_RESTART_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub FilterModuleNameBuffer: PUCHAR,
    pub FilterModuleNameBufferLength: ULONG,
    pub RestartAttributes: PNDIS_RESTART_ATTRIBUTES,
    pub BoundIfIndex: NET_IFINDEX,
    pub BoundIfNetluid: NET_LUID,
    pub Flags: ULONG,
}
/// `NDIS_PROTOCOL_RESTART_PARAMETERS *`.
pub type PNDIS_PROTOCOL_RESTART_PARAMETERS = *mut NDIS_PROTOCOL_RESTART_PARAMETERS;

/// [`NDIS_RESTART_ATTRIBUTES`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_restart_attributes):
/// one entry of the restart attribute list; `Data` (16-byte aligned) holds `DataLength` bytes, e.g. an
/// [`NDIS_RESTART_GENERAL_ATTRIBUTES`] when `Oid` is `OID_GEN_MINIPORT_RESTART_ATTRIBUTES`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_RESTART_ATTRIBUTES {
    pub Next: PNDIS_RESTART_ATTRIBUTES,
    pub Oid: NDIS_OID,
    pub DataLength: ULONG,
    /// `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) UCHAR Data[1]`: the first of `DataLength` bytes.
    pub Data: [UCHAR; 1],
}
/// `NDIS_RESTART_ATTRIBUTES *`.
pub type PNDIS_RESTART_ATTRIBUTES = *mut NDIS_RESTART_ATTRIBUTES;

/// [`NDIS_RESTART_GENERAL_ATTRIBUTES`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_restart_general_attributes)
/// (REVISION_2 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_RESTART_GENERAL_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub MtuSize: ULONG,
    pub MaxXmitLinkSpeed: ULONG64,
    pub MaxRcvLinkSpeed: ULONG64,
    pub LookaheadSize: ULONG,
    pub MacOptions: ULONG,
    pub SupportedPacketFilters: ULONG,
    pub MaxMulticastListSize: ULONG,
    pub RecvScaleCapabilities: PNDIS_RECEIVE_SCALE_CAPABILITIES,
    pub AccessType: NET_IF_ACCESS_TYPE,
    pub Flags: ULONG,
    pub ConnectionType: NET_IF_CONNECTION_TYPE,
    pub SupportedStatistics: ULONG,
    pub DataBackFillSize: ULONG,
    pub ContextBackFillSize: ULONG,
    pub SupportedOidList: PNDIS_OID,
    pub SupportedOidListLength: ULONG,
    // REVISION_2
    pub MaxLookaheadSizeAccessed: ULONG,
}
/// `NDIS_RESTART_GENERAL_ATTRIBUTES *`.
pub type PNDIS_RESTART_GENERAL_ATTRIBUTES = *mut NDIS_RESTART_GENERAL_ATTRIBUTES;

// ---------------------------------------------------------------------------------------------------------
// PnP events and status indications.
// ---------------------------------------------------------------------------------------------------------

/// [`NET_PNP_EVENT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_net_pnp_event).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_PNP_EVENT {
    pub NetEvent: NET_PNP_EVENT_CODE,
    pub Buffer: PVOID,
    pub BufferLength: ULONG,
    pub NdisReserved: [ULONG_PTR; 4],
    pub TransportReserved: [ULONG_PTR; 4],
    pub TdiReserved: [ULONG_PTR; 4],
    pub TdiClientReserved: [ULONG_PTR; 4],
}
/// `NET_PNP_EVENT *`.
pub type PNET_PNP_EVENT = *mut NET_PNP_EVENT;

/// [`NET_PNP_EVENT_NOTIFICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_net_pnp_event_notification)
/// (REVISION_1 layout, 168 bytes; REVISION_2 adds `SwitchId`/`VPortId`, see [`crate::ndis689`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_PNP_EVENT_NOTIFICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub NetPnPEvent: NET_PNP_EVENT,
    pub Flags: ULONG,
}
/// `NET_PNP_EVENT_NOTIFICATION *`.
pub type PNET_PNP_EVENT_NOTIFICATION = *mut NET_PNP_EVENT_NOTIFICATION;

/// [`NDIS_STATUS_INDICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_status_indication):
/// what `ProtocolStatusEx` receives.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_STATUS_INDICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub SourceHandle: NDIS_HANDLE,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub StatusCode: NDIS_STATUS,
    pub Flags: ULONG,
    pub DestinationHandle: NDIS_HANDLE,
    pub RequestId: PVOID,
    pub StatusBuffer: PVOID,
    pub StatusBufferSize: ULONG,
    pub Guid: GUID,
    pub NdisReserved: [PVOID; 4],
}
/// `NDIS_STATUS_INDICATION *`.
pub type PNDIS_STATUS_INDICATION = *mut NDIS_STATUS_INDICATION;

/// [`NDIS_LINK_STATE`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddndis/ns-ntddndis-_ndis_link_state):
/// the buffer of `NDIS_STATUS_LINK_STATE` and of `OID_GEN_LINK_STATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_LINK_STATE {
    pub Header: NDIS_OBJECT_HEADER,
    pub MediaConnectState: NDIS_MEDIA_CONNECT_STATE,
    pub MediaDuplexState: NDIS_MEDIA_DUPLEX_STATE,
    pub XmitLinkSpeed: ULONG64,
    pub RcvLinkSpeed: ULONG64,
    pub PauseFunctions: NDIS_SUPPORTED_PAUSE_FUNCTIONS,
    pub AutoNegotiationFlags: ULONG,
}
/// `NDIS_LINK_STATE *`.
pub type PNDIS_LINK_STATE = *mut NDIS_LINK_STATE;

// ---------------------------------------------------------------------------------------------------------
// OID requests.
// ---------------------------------------------------------------------------------------------------------

/// [`NDIS_OID_REQUEST`](https://learn.microsoft.com/windows-hardware/drivers/ddi/oidrequest/ns-oidrequest-ndis_oid_request)
/// (REVISION_1 layout, 240 bytes). REVISION_2 (NDIS 6.50+, 248 bytes) is [`crate::ndis689::NDIS_OID_REQUEST`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_REQUEST {
    pub Header: NDIS_OBJECT_HEADER,
    pub RequestType: NDIS_REQUEST_TYPE,
    pub PortNumber: NDIS_PORT_NUMBER,
    /// Seconds; `NDIS_OID_REQUEST_TIMEOUT_INFINITE` (0) for none.
    pub Timeout: UINT,
    pub RequestId: PVOID,
    pub RequestHandle: NDIS_HANDLE,
    pub DATA: NDIS_OID_REQUEST_DATA,
    pub NdisReserved: [UCHAR; 16 * 8],
    pub MiniportReserved: [UCHAR; 2 * 8],
    pub SourceReserved: [UCHAR; 2 * 8],
    pub SupportedRevision: UCHAR,
    pub Reserved1: UCHAR,
    pub Reserved2: USHORT,
}
/// `NDIS_OID_REQUEST *`.
pub type PNDIS_OID_REQUEST = *mut NDIS_OID_REQUEST;

/// `NDIS_OID_REQUEST.DATA` (`union _REQUEST_DATA`), interpreted according to `RequestType`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_OID_REQUEST_DATA {
    pub QUERY_INFORMATION: NDIS_OID_REQUEST_DATA_QUERY_INFORMATION,
    pub SET_INFORMATION: NDIS_OID_REQUEST_DATA_SET_INFORMATION,
    pub METHOD_INFORMATION: NDIS_OID_REQUEST_DATA_METHOD_INFORMATION,
}

/// `DATA.QUERY_INFORMATION` (`struct _QUERY`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_REQUEST_DATA_QUERY_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InformationBufferLength: UINT,
    pub BytesWritten: UINT,
    pub BytesNeeded: UINT,
}

/// `DATA.SET_INFORMATION` (`struct _SET`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_REQUEST_DATA_SET_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InformationBufferLength: UINT,
    pub BytesRead: UINT,
    pub BytesNeeded: UINT,
}

/// `DATA.METHOD_INFORMATION` (`struct _METHOD`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_REQUEST_DATA_METHOD_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InputBufferLength: ULONG,
    pub OutputBufferLength: ULONG,
    pub MethodId: ULONG,
    pub BytesWritten: UINT,
    pub BytesRead: UINT,
    pub BytesNeeded: UINT,
}

// ---------------------------------------------------------------------------------------------------------
// NET_BUFFER and NET_BUFFER_LIST.
// ---------------------------------------------------------------------------------------------------------

/// [`NET_BUFFER_DATA`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer_data):
/// the data-describing head of a [`NET_BUFFER`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_DATA {
    pub Next: PNET_BUFFER,
    pub CurrentMdl: PMDL,
    pub CurrentMdlOffset: ULONG,
    pub u: NET_BUFFER_DATA_u,
    pub MdlChain: PMDL,
    pub DataOffset: ULONG,
}
/// `NET_BUFFER_DATA *`.
pub type PNET_BUFFER_DATA = *mut NET_BUFFER_DATA;

/// Anonymous member `u` of [`NET_BUFFER_DATA`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_DATA_u {
    /// Bytes of packet data, starting `DataOffset` bytes into `MdlChain`.
    pub DataLength: ULONG,
    pub stDataLength: SIZE_T,
}

/// `NET_BUFFER_HEADER`: the first 48 bytes of a [`NET_BUFFER`], as data or as an SList link.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_HEADER {
    /// The anonymous `NET_BUFFER_DATA` member (named `NetBufferData` in the WDK's C++ form).
    pub NetBufferData: NET_BUFFER_DATA,
    pub Link: SLIST_HEADER,
}
/// `NET_BUFFER_HEADER *`.
pub type PNET_BUFFER_HEADER = *mut NET_BUFFER_HEADER;

/// [`NET_BUFFER`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer): one packet's
/// data (an MDL chain, an offset and a length). 16-byte aligned.
///
/// `Next` is `u1.s.Next`, `CurrentMdl` is `u1.s.CurrentMdl`, `DataLength` is `u1.s.u.DataLength`,
/// `DataOffset` is `u1.s.DataOffset`, `MdlChain` is `u1.s.MdlChain`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER {
    pub u1: NET_BUFFER_u1,
    pub ChecksumBias: USHORT,
    pub Reserved: USHORT,
    pub NdisPoolHandle: NDIS_HANDLE,
    pub NdisReserved: [PVOID; 2],
    /// Free for the protocol that owns (allocated) the NET_BUFFER.
    pub ProtocolReserved: [PVOID; 6],
    pub MiniportReserved: [PVOID; 4],
    pub DataPhysicalAddress: NDIS_PHYSICAL_ADDRESS,
    pub u2: NET_BUFFER_u2,
}
/// `NET_BUFFER *`.
pub type PNET_BUFFER = *mut NET_BUFFER;

/// Anonymous member `u1` of [`NET_BUFFER`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_u1 {
    /// The anonymous `{ Next; CurrentMdl; CurrentMdlOffset; DataLength; MdlChain; DataOffset; }` member.
    pub s: NET_BUFFER_DATA,
    pub Link: SLIST_HEADER,
    pub NetBufferHeader: NET_BUFFER_HEADER,
}

/// Anonymous member `u2` of [`NET_BUFFER`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_u2 {
    pub SharedMemoryInfo: PNET_BUFFER_SHARED_MEMORY,
    pub ScatterGatherList: PSCATTER_GATHER_LIST,
}

/// [`NET_BUFFER_LIST_DATA`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer_list_data):
/// the list links at the head of a [`NET_BUFFER_LIST`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST_DATA {
    pub Next: PNET_BUFFER_LIST,
    pub FirstNetBuffer: PNET_BUFFER,
}
/// `NET_BUFFER_LIST_DATA *`.
pub type PNET_BUFFER_LIST_DATA = *mut NET_BUFFER_LIST_DATA;

/// `NET_BUFFER_LIST_HEADER`: the first 16 bytes of a [`NET_BUFFER_LIST`], as data or as an SList link.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_LIST_HEADER {
    /// The anonymous `NET_BUFFER_LIST_DATA` member (named `NetBufferListData` in the WDK's C++ form).
    pub NetBufferListData: NET_BUFFER_LIST_DATA,
    pub Link: SLIST_HEADER,
}
/// `NET_BUFFER_LIST_HEADER *`.
pub type PNET_BUFFER_LIST_HEADER = *mut NET_BUFFER_LIST_HEADER;

/// [`NET_BUFFER_LIST_CONTEXT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer_list_context):
/// a block of NBL context space; `ContextData` (16-byte aligned) holds `Size - Offset` bytes.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST_CONTEXT {
    pub Next: PNET_BUFFER_LIST_CONTEXT,
    pub Size: USHORT,
    pub Offset: USHORT,
    /// Padding the WDK gets from `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` on `ContextData`.
    pub _pad1: ULONG,
    /// `UCHAR ContextData[]` (flexible array).
    pub ContextData: [UCHAR; 0],
}
/// `NET_BUFFER_LIST_CONTEXT *`.
pub type PNET_BUFFER_LIST_CONTEXT = *mut NET_BUFFER_LIST_CONTEXT;

/// [`NET_BUFFER_LIST`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer_list)
/// at NDIS 6.30 (336 bytes, `MaxNetBufferListInfo` = 24 info slots). 16-byte aligned.
///
/// `Next` is `u1.s.Next`, `FirstNetBuffer` is `u1.s.FirstNetBuffer`, `Status` is `u2.Status`.
///
/// **Size varies by NDIS version**: the structure is 368 bytes from NDIS 6.80 on (27 info slots, see
/// [`crate::ndis689::NET_BUFFER_LIST`]). NET_BUFFER_LISTs are always allocated by NDIS; a driver must never
/// assume `size_of::<NET_BUFFER_LIST>()` for memory NDIS allocated, copy one by value, or index
/// `NetBufferListInfo` at or beyond the `MaxNetBufferListInfo` of the version it registered.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST {
    pub u1: NET_BUFFER_LIST_u1,
    pub Context: PNET_BUFFER_LIST_CONTEXT,
    pub ParentNetBufferList: PNET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    /// Padding the WDK gets from `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` on `NdisReserved`.
    pub _pad1: PVOID,
    pub NdisReserved: [PVOID; 2],
    /// Free for the protocol that owns the NBL (one it allocated, or a received one until it returns it).
    pub ProtocolReserved: [PVOID; 4],
    pub MiniportReserved: [PVOID; 2],
    pub Scratch: PVOID,
    pub SourceHandle: NDIS_HANDLE,
    /// `NDIS_NBL_FLAGS_*`.
    pub NblFlags: ULONG,
    pub ChildRefCount: LONG,
    pub Flags: ULONG,
    pub u2: NET_BUFFER_LIST_u2,
    /// Per-NBL information, indexed by `NDIS_NET_BUFFER_LIST_INFO` (`TcpIpChecksumNetBufferListInfo`, ...).
    pub NetBufferListInfo: [PVOID; 24],
}
/// `NET_BUFFER_LIST *`.
pub type PNET_BUFFER_LIST = *mut NET_BUFFER_LIST;

/// Anonymous member `u1` of [`NET_BUFFER_LIST`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_LIST_u1 {
    /// The anonymous `{ Next; FirstNetBuffer; }` member.
    pub s: NET_BUFFER_LIST_DATA,
    pub Link: SLIST_HEADER,
    pub NetBufferListHeader: NET_BUFFER_LIST_HEADER,
}

/// Anonymous member `u2` of [`NET_BUFFER_LIST`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_LIST_u2 {
    /// The completion status of a send.
    pub Status: NDIS_STATUS,
    pub NdisReserved2: ULONG,
}

/// [`NET_BUFFER_LIST_POOL_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblapi/ns-nblapi-net_buffer_list_pool_parameters)
/// (REVISION_1, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    /// `NDIS_PROTOCOL_ID_*`.
    pub ProtocolId: UCHAR,
    pub fAllocateNetBuffer: BOOLEAN,
    pub ContextSize: USHORT,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
}
/// `NET_BUFFER_LIST_POOL_PARAMETERS *`.
pub type PNET_BUFFER_LIST_POOL_PARAMETERS = *mut NET_BUFFER_LIST_POOL_PARAMETERS;

/// [`NET_BUFFER_POOL_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblapi/ns-nblapi-net_buffer_pool_parameters)
/// (REVISION_1, 12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
}
/// `NET_BUFFER_POOL_PARAMETERS *`.
pub type PNET_BUFFER_POOL_PARAMETERS = *mut NET_BUFFER_POOL_PARAMETERS;

// ---------------------------------------------------------------------------------------------------------
// NetBufferListInfo payloads.
// ---------------------------------------------------------------------------------------------------------

/// [`NDIS_NET_BUFFER_LIST_8021Q_INFO`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblinfo/ns-nblinfo-ndis_net_buffer_list_8021q_info):
/// `NetBufferListInfo[Ieee8021QNetBufferListInfo]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_NET_BUFFER_LIST_8021Q_INFO {
    pub TagHeader: NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader,
    pub WLanTagHeader: NDIS_NET_BUFFER_LIST_8021Q_INFO_WLanTagHeader,
    pub Value: PVOID,
}
/// `NDIS_NET_BUFFER_LIST_8021Q_INFO *`.
pub type PNDIS_NET_BUFFER_LIST_8021Q_INFO = *mut NDIS_NET_BUFFER_LIST_8021Q_INFO;

/// `NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader {
    /// Storage unit: `UserPriority:3`, `CanonicalFormatId:1`, `VlanId:12`, `Reserved:16`.
    pub Bits: UINT32,
}
bitfields!(NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader {
    Bits: UINT32 {
        UserPriority / set_UserPriority: 0, 3;
        CanonicalFormatId / set_CanonicalFormatId: 3, 1;
        VlanId / set_VlanId: 4, 12;
        Reserved / set_Reserved: 16, 16;
    }
});

/// `NDIS_NET_BUFFER_LIST_8021Q_INFO.WLanTagHeader`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_NET_BUFFER_LIST_8021Q_INFO_WLanTagHeader {
    /// Storage unit: `UserPriority:3`, `CanonicalFormatId:1`, `VlanId:12`, `WMMInfo:4`, `Reserved:12`.
    pub Bits: UINT32,
}
bitfields!(NDIS_NET_BUFFER_LIST_8021Q_INFO_WLanTagHeader {
    Bits: UINT32 {
        UserPriority / set_UserPriority: 0, 3;
        CanonicalFormatId / set_CanonicalFormatId: 3, 1;
        VlanId / set_VlanId: 4, 12;
        WMMInfo / set_WMMInfo: 16, 4;
        Reserved / set_Reserved: 20, 12;
    }
});

/// [`NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblinfo/ns-nblinfo-ndis_tcp_ip_checksum_net_buffer_list_info):
/// `NetBufferListInfo[TcpIpChecksumNetBufferListInfo]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO {
    pub Transmit: NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Transmit,
    pub Receive: NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive,
    pub Value: PVOID,
}
/// `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO *`.
pub type PNDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO = *mut NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO;

/// `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Transmit`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Transmit {
    /// Storage unit: `IsIPv4:1`, `IsIPv6:1`, `TcpChecksum:1`, `UdpChecksum:1`, `IpHeaderChecksum:1`,
    /// `Reserved:11`, `TcpHeaderOffset:10`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Transmit {
    Bits: ULONG {
        IsIPv4 / set_IsIPv4: 0, 1;
        IsIPv6 / set_IsIPv6: 1, 1;
        TcpChecksum / set_TcpChecksum: 2, 1;
        UdpChecksum / set_UdpChecksum: 3, 1;
        IpHeaderChecksum / set_IpHeaderChecksum: 4, 1;
        Reserved / set_Reserved: 5, 11;
        TcpHeaderOffset / set_TcpHeaderOffset: 16, 10;
    }
});

/// `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive {
    /// Storage unit: `TcpChecksumFailed:1`, `UdpChecksumFailed:1`, `IpChecksumFailed:1`,
    /// `TcpChecksumSucceeded:1`, `UdpChecksumSucceeded:1`, `IpChecksumSucceeded:1`, `Loopback:1`,
    /// `TcpChecksumValueInvalid:1`, `IpChecksumValueInvalid:1`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive {
    Bits: ULONG {
        TcpChecksumFailed / set_TcpChecksumFailed: 0, 1;
        UdpChecksumFailed / set_UdpChecksumFailed: 1, 1;
        IpChecksumFailed / set_IpChecksumFailed: 2, 1;
        TcpChecksumSucceeded / set_TcpChecksumSucceeded: 3, 1;
        UdpChecksumSucceeded / set_UdpChecksumSucceeded: 4, 1;
        IpChecksumSucceeded / set_IpChecksumSucceeded: 5, 1;
        Loopback / set_Loopback: 6, 1;
        TcpChecksumValueInvalid / set_TcpChecksumValueInvalid: 7, 1;
        IpChecksumValueInvalid / set_IpChecksumValueInvalid: 8, 1;
    }
});

/// [`NDIS_RSC_NBL_INFO`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblrsc/ns-nblrsc-ndis_rsc_nbl_info):
/// `NetBufferListInfo[TcpRecvSegCoalesceInfo]` of a TCP RSC receive.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_RSC_NBL_INFO {
    pub Info: NDIS_RSC_NBL_INFO_Info,
    pub Value: PVOID,
}
/// `NDIS_RSC_NBL_INFO *`.
pub type PNDIS_RSC_NBL_INFO = *mut NDIS_RSC_NBL_INFO;

/// `NDIS_RSC_NBL_INFO.Info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_RSC_NBL_INFO_Info {
    /// Segments coalesced into this NBL (0: not an RSC packet).
    pub CoalescedSegCount: USHORT,
    pub DupAckCount: USHORT,
}

/// [`NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbluro/ns-nbluro-ndis_udp_rsc_offload_net_buffer_list_info)
/// (NDIS 6.89): `NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo]` of a UDP receive-coalesced (URO) NBL.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO {
    pub u: NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u,
}
/// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO *`.
pub type PNDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO = *mut NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO;

/// Anonymous member `u` of [`NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u {
    pub Receive: NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u_Receive,
    pub Value: PVOID,
}

/// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO.Receive`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u_Receive {
    /// Datagrams coalesced into this NBL.
    pub SegCount: USHORT,
    /// Payload size of each datagram (the last may be shorter).
    pub SegSize: USHORT,
}

// ---------------------------------------------------------------------------------------------------------
// Capabilities reported at bind time.
// ---------------------------------------------------------------------------------------------------------

/// `NDIS_RECEIVE_SCALE_CAPABILITIES` (REVISION_2 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_RECEIVE_SCALE_CAPABILITIES {
    pub Header: NDIS_OBJECT_HEADER,
    pub CapabilitiesFlags: NDIS_RSS_CAPS_FLAGS,
    pub NumberOfInterruptMessages: ULONG,
    pub NumberOfReceiveQueues: ULONG,
    pub NumberOfIndirectionTableEntries: USHORT,
}
/// `NDIS_RECEIVE_SCALE_CAPABILITIES *`.
pub type PNDIS_RECEIVE_SCALE_CAPABILITIES = *mut NDIS_RECEIVE_SCALE_CAPABILITIES;

/// `NDIS_PM_CAPABILITIES` (REVISION_2 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PM_CAPABILITIES {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub SupportedWoLPacketPatterns: ULONG,
    pub NumTotalWoLPatterns: ULONG,
    pub MaxWoLPatternSize: ULONG,
    pub MaxWoLPatternOffset: ULONG,
    pub MaxWoLPacketSaveBuffer: ULONG,
    pub SupportedProtocolOffloads: ULONG,
    pub NumArpOffloadIPv4Addresses: ULONG,
    pub NumNSOffloadIPv6Addresses: ULONG,
    pub MinMagicPacketWakeUp: NDIS_DEVICE_POWER_STATE,
    pub MinPatternWakeUp: NDIS_DEVICE_POWER_STATE,
    pub MinLinkChangeWakeUp: NDIS_DEVICE_POWER_STATE,
    pub SupportedWakeUpEvents: ULONG,
    pub MediaSpecificWakeUpEvents: ULONG,
}
/// `NDIS_PM_CAPABILITIES *`.
pub type PNDIS_PM_CAPABILITIES = *mut NDIS_PM_CAPABILITIES;

/// `NDIS_PORT_AUTHENTICATION_PARAMETERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_PORT_AUTHENTICATION_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub SendControlState: NDIS_PORT_CONTROL_STATE,
    pub RcvControlState: NDIS_PORT_CONTROL_STATE,
    pub SendAuthorizationState: NDIS_PORT_AUTHORIZATION_STATE,
    pub RcvAuthorizationState: NDIS_PORT_AUTHORIZATION_STATE,
}
/// `NDIS_PORT_AUTHENTICATION_PARAMETERS *`.
pub type PNDIS_PORT_AUTHENTICATION_PARAMETERS = *mut NDIS_PORT_AUTHENTICATION_PARAMETERS;

/// [`NDIS_OFFLOAD`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddndis/ns-ntddndis-_ndis_offload)
/// (REVISION_3 layout, 156 bytes; later revisions are longer). Reached through
/// `NDIS_BIND_PARAMETERS.DefaultOffloadConfiguration`: check `Header.Size`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OFFLOAD {
    pub Header: NDIS_OBJECT_HEADER,
    pub Checksum: NDIS_TCP_IP_CHECKSUM_OFFLOAD,
    pub LsoV1: NDIS_TCP_LARGE_SEND_OFFLOAD_V1,
    pub IPsecV1: NDIS_IPSEC_OFFLOAD_V1,
    pub LsoV2: NDIS_TCP_LARGE_SEND_OFFLOAD_V2,
    pub Flags: ULONG,
    pub IPsecV2: NDIS_IPSEC_OFFLOAD_V2,
    pub Rsc: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD,
    pub EncapsulatedPacketTaskOffloadGre: NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD,
}
/// `NDIS_OFFLOAD *`.
pub type PNDIS_OFFLOAD = *mut NDIS_OFFLOAD;

/// `NDIS_TCP_IP_CHECKSUM_OFFLOAD`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_OFFLOAD {
    pub IPv4Transmit: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Transmit,
    pub IPv4Receive: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Receive,
    pub IPv6Transmit: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Transmit,
    pub IPv6Receive: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Receive,
}

/// `NDIS_TCP_IP_CHECKSUM_OFFLOAD.IPv4Transmit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Transmit {
    pub Encapsulation: ULONG,
    /// Storage unit: `IpOptionsSupported:2`, `TcpOptionsSupported:2`, `TcpChecksum:2`, `UdpChecksum:2`,
    /// `IpChecksum:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Transmit {
    Bits: ULONG {
        IpOptionsSupported / set_IpOptionsSupported: 0, 2;
        TcpOptionsSupported / set_TcpOptionsSupported: 2, 2;
        TcpChecksum / set_TcpChecksum: 4, 2;
        UdpChecksum / set_UdpChecksum: 6, 2;
        IpChecksum / set_IpChecksum: 8, 2;
    }
});

/// `NDIS_TCP_IP_CHECKSUM_OFFLOAD.IPv4Receive`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Receive {
    pub Encapsulation: ULONG,
    /// Storage unit: `IpOptionsSupported:2`, `TcpOptionsSupported:2`, `TcpChecksum:2`, `UdpChecksum:2`,
    /// `IpChecksum:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Receive {
    Bits: ULONG {
        IpOptionsSupported / set_IpOptionsSupported: 0, 2;
        TcpOptionsSupported / set_TcpOptionsSupported: 2, 2;
        TcpChecksum / set_TcpChecksum: 4, 2;
        UdpChecksum / set_UdpChecksum: 6, 2;
        IpChecksum / set_IpChecksum: 8, 2;
    }
});

/// `NDIS_TCP_IP_CHECKSUM_OFFLOAD.IPv6Transmit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Transmit {
    pub Encapsulation: ULONG,
    /// Storage unit: `IpExtensionHeadersSupported:2`, `TcpOptionsSupported:2`, `TcpChecksum:2`,
    /// `UdpChecksum:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Transmit {
    Bits: ULONG {
        IpExtensionHeadersSupported / set_IpExtensionHeadersSupported: 0, 2;
        TcpOptionsSupported / set_TcpOptionsSupported: 2, 2;
        TcpChecksum / set_TcpChecksum: 4, 2;
        UdpChecksum / set_UdpChecksum: 6, 2;
    }
});

/// `NDIS_TCP_IP_CHECKSUM_OFFLOAD.IPv6Receive`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Receive {
    pub Encapsulation: ULONG,
    /// Storage unit: `IpExtensionHeadersSupported:2`, `TcpOptionsSupported:2`, `TcpChecksum:2`,
    /// `UdpChecksum:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Receive {
    Bits: ULONG {
        IpExtensionHeadersSupported / set_IpExtensionHeadersSupported: 0, 2;
        TcpOptionsSupported / set_TcpOptionsSupported: 2, 2;
        TcpChecksum / set_TcpChecksum: 4, 2;
        UdpChecksum / set_UdpChecksum: 6, 2;
    }
});

/// `NDIS_TCP_LARGE_SEND_OFFLOAD_V1`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_LARGE_SEND_OFFLOAD_V1 {
    pub IPv4: NDIS_TCP_LARGE_SEND_OFFLOAD_V1_IPv4,
}

/// `NDIS_TCP_LARGE_SEND_OFFLOAD_V1.IPv4`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_LARGE_SEND_OFFLOAD_V1_IPv4 {
    pub Encapsulation: ULONG,
    pub MaxOffLoadSize: ULONG,
    pub MinSegmentCount: ULONG,
    /// Storage unit: `TcpOptions:2`, `IpOptions:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_LARGE_SEND_OFFLOAD_V1_IPv4 {
    Bits: ULONG {
        TcpOptions / set_TcpOptions: 0, 2;
        IpOptions / set_IpOptions: 2, 2;
    }
});

/// `NDIS_IPSEC_OFFLOAD_V1`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_IPSEC_OFFLOAD_V1 {
    pub Supported: NDIS_IPSEC_OFFLOAD_V1_Supported,
    pub IPv4AH: NDIS_IPSEC_OFFLOAD_V1_IPv4AH,
    pub IPv4ESP: NDIS_IPSEC_OFFLOAD_V1_IPv4ESP,
}

/// `NDIS_IPSEC_OFFLOAD_V1.Supported`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_IPSEC_OFFLOAD_V1_Supported {
    pub Encapsulation: ULONG,
    pub AhEspCombined: ULONG,
    pub TransportTunnelCombined: ULONG,
    pub IPv4Options: ULONG,
    pub Flags: ULONG,
}

/// `NDIS_IPSEC_OFFLOAD_V1.IPv4AH`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_IPSEC_OFFLOAD_V1_IPv4AH {
    /// Storage unit: `Md5:2`, `Sha_1:2`, `Transport:2`, `Tunnel:2`, `Send:2`, `Receive:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_IPSEC_OFFLOAD_V1_IPv4AH {
    Bits: ULONG {
        Md5 / set_Md5: 0, 2;
        Sha_1 / set_Sha_1: 2, 2;
        Transport / set_Transport: 4, 2;
        Tunnel / set_Tunnel: 6, 2;
        Send / set_Send: 8, 2;
        Receive / set_Receive: 10, 2;
    }
});

/// `NDIS_IPSEC_OFFLOAD_V1.IPv4ESP`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_IPSEC_OFFLOAD_V1_IPv4ESP {
    /// Storage unit: `Des:2`, `Reserved:2`, `TripleDes:2`, `NullEsp:2`, `Transport:2`, `Tunnel:2`, `Send:2`,
    /// `Receive:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_IPSEC_OFFLOAD_V1_IPv4ESP {
    Bits: ULONG {
        Des / set_Des: 0, 2;
        Reserved / set_Reserved: 2, 2;
        TripleDes / set_TripleDes: 4, 2;
        NullEsp / set_NullEsp: 6, 2;
        Transport / set_Transport: 8, 2;
        Tunnel / set_Tunnel: 10, 2;
        Send / set_Send: 12, 2;
        Receive / set_Receive: 14, 2;
    }
});

/// `NDIS_TCP_LARGE_SEND_OFFLOAD_V2`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_LARGE_SEND_OFFLOAD_V2 {
    pub IPv4: NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv4,
    pub IPv6: NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv6,
}

/// `NDIS_TCP_LARGE_SEND_OFFLOAD_V2.IPv4`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv4 {
    pub Encapsulation: ULONG,
    pub MaxOffLoadSize: ULONG,
    pub MinSegmentCount: ULONG,
}

/// `NDIS_TCP_LARGE_SEND_OFFLOAD_V2.IPv6`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv6 {
    pub Encapsulation: ULONG,
    pub MaxOffLoadSize: ULONG,
    pub MinSegmentCount: ULONG,
    /// Storage unit: `IpExtensionHeadersSupported:2`, `TcpOptionsSupported:2`.
    pub Bits: ULONG,
}
bitfields!(NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv6 {
    Bits: ULONG {
        IpExtensionHeadersSupported / set_IpExtensionHeadersSupported: 0, 2;
        TcpOptionsSupported / set_TcpOptionsSupported: 2, 2;
    }
});

/// `NDIS_IPSEC_OFFLOAD_V2`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_IPSEC_OFFLOAD_V2 {
    pub Encapsulation: ULONG,
    pub IPv6Supported: BOOLEAN,
    pub IPv4Options: BOOLEAN,
    pub IPv6NonIPsecExtensionHeaders: BOOLEAN,
    pub Ah: BOOLEAN,
    pub Esp: BOOLEAN,
    pub AhEspCombined: BOOLEAN,
    pub Transport: BOOLEAN,
    pub Tunnel: BOOLEAN,
    pub TransportTunnelCombined: BOOLEAN,
    pub LsoSupported: BOOLEAN,
    pub ExtendedSequenceNumbers: BOOLEAN,
    pub UdpEsp: ULONG,
    pub AuthenticationAlgorithms: ULONG,
    pub EncryptionAlgorithms: ULONG,
    pub SaOffloadCapacity: ULONG,
}

/// `NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD {
    pub IPv4: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv4,
    pub IPv6: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv6,
}

/// `NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD.IPv4`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv4 {
    pub Enabled: BOOLEAN,
}

/// `NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD.IPv6`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv6 {
    pub Enabled: BOOLEAN,
}

/// `NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD` (WDK 10.0.16299 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD {
    /// Storage unit: `TransmitChecksumOffloadSupported:4`, `ReceiveChecksumOffloadSupported:4`,
    /// `LsoV2Supported:4`, `RssSupported:4`, `VmqSupported:4`.
    pub Bits: ULONG,
    pub MaxHeaderSizeSupported: ULONG,
}
bitfields!(NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD {
    Bits: ULONG {
        TransmitChecksumOffloadSupported / set_TransmitChecksumOffloadSupported: 0, 4;
        ReceiveChecksumOffloadSupported / set_ReceiveChecksumOffloadSupported: 4, 4;
        LsoV2Supported / set_LsoV2Supported: 8, 4;
        RssSupported / set_RssSupported: 12, 4;
        VmqSupported / set_VmqSupported: 16, 4;
    }
});

/// [`NDIS_STATISTICS_INFO`](https://learn.microsoft.com/windows-hardware/drivers/network/oid-gen-statistics):
/// the answer to `OID_GEN_STATISTICS`. `SupportedStatistics` holds `NDIS_STATISTICS_FLAGS_VALID_*` bits.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_STATISTICS_INFO {
    pub Header: NDIS_OBJECT_HEADER,
    pub SupportedStatistics: ULONG,
    pub ifInDiscards: ULONG64,
    pub ifInErrors: ULONG64,
    pub ifHCInOctets: ULONG64,
    pub ifHCInUcastPkts: ULONG64,
    pub ifHCInMulticastPkts: ULONG64,
    pub ifHCInBroadcastPkts: ULONG64,
    pub ifHCOutOctets: ULONG64,
    pub ifHCOutUcastPkts: ULONG64,
    pub ifHCOutMulticastPkts: ULONG64,
    pub ifHCOutBroadcastPkts: ULONG64,
    pub ifOutErrors: ULONG64,
    pub ifOutDiscards: ULONG64,
    pub ifHCInUcastOctets: ULONG64,
    pub ifHCInMulticastOctets: ULONG64,
    pub ifHCInBroadcastOctets: ULONG64,
    pub ifHCOutUcastOctets: ULONG64,
    pub ifHCOutMulticastOctets: ULONG64,
    pub ifHCOutBroadcastOctets: ULONG64,
}
/// `NDIS_STATISTICS_INFO *`.
pub type PNDIS_STATISTICS_INFO = *mut NDIS_STATISTICS_INFO;

// ---------------------------------------------------------------------------------------------------------
// Timers.
// ---------------------------------------------------------------------------------------------------------

/// [`NDIS_TIMER_CHARACTERISTICS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_timer_characteristics)
/// (`NdisAllocateTimerObject`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_TIMER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub AllocationTag: ULONG,
    pub TimerFunction: PNDIS_TIMER_FUNCTION,
    pub FunctionContext: PVOID,
}
/// `NDIS_TIMER_CHARACTERISTICS *`.
pub type PNDIS_TIMER_CHARACTERISTICS = *mut NDIS_TIMER_CHARACTERISTICS;

union_debug!(
    NDIS_OID_REQUEST_DATA,
    NET_BUFFER_DATA_u,
    NET_BUFFER_HEADER,
    NET_BUFFER_u1,
    NET_BUFFER_u2,
    NET_BUFFER_LIST_HEADER,
    NET_BUFFER_LIST_u1,
    NET_BUFFER_LIST_u2,
    NDIS_NET_BUFFER_LIST_8021Q_INFO,
    NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO,
    NDIS_RSC_NBL_INFO,
    NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u,
);
