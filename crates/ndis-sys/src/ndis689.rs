//! NDIS 6.89 (WDK 10.0.26100, Windows 11 24H2 / Server 2025) layouts of the structures that grew after
//! NDIS 6.30, checked against `reference/wdk-10.0.26100/layout-ndis689.json`.
//!
//! These share their WDK names with the NDIS 6.30 types re-exported at the crate root, so they are not
//! re-exported: write `ndis689::NDIS_OID_REQUEST`. Use them for memory the driver allocates and fills at a
//! newer revision (an `NDIS_OID_REQUEST` at REVISION_2, pool parameters at REVISION_2) and to read the
//! fields a newer NDIS adds (`NET_PNP_EVENT_NOTIFICATION.SwitchId`, the 27 `NetBufferListInfo` slots) after
//! checking `Header.Revision`/`Size` or the negotiated NDIS version. A larger structure is always a valid
//! buffer for a smaller revision, never the reverse.
//!
//! The constants here are the ones whose value in the 6.89 headers differs from 6.30 (the crate root holds
//! the 6.30 value); they are checked against `reference/wdk-10.0.26100/constants-ndis689.tsv`.

use crate::ndis::{
    NET_BUFFER_LIST_u1, NET_BUFFER_LIST_u2, NDIS_HANDLE, NDIS_NET_BUFFER_LIST_INFO, NDIS_NIC_SWITCH_ID,
    NDIS_NIC_SWITCH_VPORT_ID, NDIS_OBJECT_HEADER, NDIS_OID, NDIS_OID_REQUEST_DATA_METHOD_INFORMATION,
    NDIS_OID_REQUEST_DATA_QUERY_INFORMATION, NDIS_OID_REQUEST_DATA_SET_INFORMATION, NDIS_PORT_NUMBER,
    NDIS_REQUEST_TYPE, NET_BUFFER_LIST_CONTEXT, NET_PNP_EVENT,
};
use crate::types::*;

constants! {
    /// `MaxNetBufferListInfo` at NDIS 6.80 and later: `NET_BUFFER_LIST.NetBufferListInfo` has 27 slots.
    MaxNetBufferListInfo: NDIS_NET_BUFFER_LIST_INFO = 27;
    /// `NDIS_PROTOCOL_MINOR_VERSION` when compiled for NDIS 6.89.
    NDIS_PROTOCOL_MINOR_VERSION: UCHAR = 89;
    /// `NDIS_PROTOCOL_MINIMUM_MINOR_VERSION` when compiled for NDIS 6.89.
    NDIS_PROTOCOL_MINIMUM_MINOR_VERSION: UCHAR = 89;
}

/// `sizeof(NDIS_OID_REQUEST)` at NDIS 6.89 (REVISION_2, 248 bytes).
pub const SIZEOF_NDIS_OID_REQUEST: usize = 248;
/// `sizeof(NET_BUFFER_LIST)` at NDIS 6.80 and later (368 bytes, 27 info slots).
pub const SIZEOF_NET_BUFFER_LIST: usize = 368;
/// `sizeof(NET_PNP_EVENT_NOTIFICATION)` at NDIS 6.89 (176 bytes; `NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_2`
/// = 172 ends at `VPortId`).
pub const SIZEOF_NET_PNP_EVENT_NOTIFICATION: usize = 176;
/// `sizeof(NET_BUFFER_LIST_POOL_PARAMETERS)` at NDIS 6.89 (REVISION_2, 20 bytes).
pub const SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS: usize = 20;
/// `sizeof(NET_BUFFER_POOL_PARAMETERS)` at NDIS 6.89 (REVISION_2, 16 bytes).
pub const SIZEOF_NET_BUFFER_POOL_PARAMETERS: usize = 16;

/// `NDIS_OID_REQUEST` at REVISION_2 (NDIS 6.50 and later): adds `SwitchId`, `VPortId` and `Flags`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_REQUEST {
    pub Header: NDIS_OBJECT_HEADER,
    pub RequestType: NDIS_REQUEST_TYPE,
    pub PortNumber: NDIS_PORT_NUMBER,
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
    pub SwitchId: NDIS_NIC_SWITCH_ID,
    pub VPortId: NDIS_NIC_SWITCH_VPORT_ID,
    /// `NDIS_OID_REQUEST_FLAGS_*`.
    pub Flags: ULONG,
}
/// `NDIS_OID_REQUEST *` (6.89 layout).
pub type PNDIS_OID_REQUEST = *mut NDIS_OID_REQUEST;

/// `NDIS_OID_REQUEST.DATA` at NDIS 6.89: adds a bare `Oid` member shared by all three forms.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_OID_REQUEST_DATA {
    pub Oid: NDIS_OID,
    pub QUERY_INFORMATION: NDIS_OID_REQUEST_DATA_QUERY_INFORMATION,
    pub SET_INFORMATION: NDIS_OID_REQUEST_DATA_SET_INFORMATION,
    pub METHOD_INFORMATION: NDIS_OID_REQUEST_DATA_METHOD_INFORMATION,
}

/// `NET_BUFFER_LIST` at NDIS 6.80 and later: 27 `NetBufferListInfo` slots (368 bytes). Same field paths as
/// [`crate::NET_BUFFER_LIST`].
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST {
    pub u1: NET_BUFFER_LIST_u1,
    pub Context: *mut NET_BUFFER_LIST_CONTEXT,
    pub ParentNetBufferList: *mut NET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    /// Padding the WDK gets from `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` on `NdisReserved`.
    pub _pad1: PVOID,
    pub NdisReserved: [PVOID; 2],
    pub ProtocolReserved: [PVOID; 4],
    pub MiniportReserved: [PVOID; 2],
    pub Scratch: PVOID,
    pub SourceHandle: NDIS_HANDLE,
    pub NblFlags: ULONG,
    pub ChildRefCount: LONG,
    pub Flags: ULONG,
    pub u2: NET_BUFFER_LIST_u2,
    pub NetBufferListInfo: [PVOID; MaxNetBufferListInfo as usize],
}

/// `NET_PNP_EVENT_NOTIFICATION` at REVISION_2 (NDIS 6.50 and later): adds `SwitchId` and `VPortId`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_PNP_EVENT_NOTIFICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub NetPnPEvent: NET_PNP_EVENT,
    pub Flags: ULONG,
    pub SwitchId: NDIS_NIC_SWITCH_ID,
    pub VPortId: NDIS_NIC_SWITCH_VPORT_ID,
}

/// `NET_BUFFER_LIST_POOL_PARAMETERS` at REVISION_2: adds `Flags` (`NET_BUFFER_LIST_POOL_FLAG_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolId: UCHAR,
    pub fAllocateNetBuffer: BOOLEAN,
    pub ContextSize: USHORT,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
    pub Flags: ULONG,
}

/// `NET_BUFFER_POOL_PARAMETERS` at REVISION_2: adds `Flags` (`NET_BUFFER_POOL_FLAG_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
    pub Flags: ULONG,
}

union_debug!(NDIS_OID_REQUEST_DATA);

const _: () = assert!(core::mem::size_of::<NDIS_OID_REQUEST>() == SIZEOF_NDIS_OID_REQUEST);
const _: () = assert!(core::mem::size_of::<NET_BUFFER_LIST>() == SIZEOF_NET_BUFFER_LIST);
const _: () = assert!(core::mem::align_of::<NET_BUFFER_LIST>() == 16);
const _: () = assert!(core::mem::size_of::<NET_PNP_EVENT_NOTIFICATION>() == SIZEOF_NET_PNP_EVENT_NOTIFICATION);
const _: () =
    assert!(core::mem::size_of::<NET_BUFFER_LIST_POOL_PARAMETERS>() == SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS);
const _: () = assert!(core::mem::size_of::<NET_BUFFER_POOL_PARAMETERS>() == SIZEOF_NET_BUFFER_POOL_PARAMETERS);
