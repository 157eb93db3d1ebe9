/* The few kernel and NDIS 6.30 declarations rlprot.c uses, written for this test from the layouts in
 * reference/wdk-10.0.16299 (offsets noted where a structure is only partly declared). x64 only. */
#pragma once

typedef unsigned char UCHAR, BOOLEAN;
typedef unsigned short USHORT, WCHAR;
typedef unsigned int ULONG, UINT;
typedef int LONG, NTSTATUS, NDIS_STATUS;
typedef unsigned long long ULONG_PTR, SIZE_T;
typedef void *PVOID, *NDIS_HANDLE;
typedef ULONG_PTR KSPIN_LOCK;
typedef UCHAR KIRQL;

#define NTAPI __stdcall
#define IMPORT __declspec(dllimport)
#define NULL ((void *)0)
#define TRUE 1
#define FALSE 0

#define STATUS_SUCCESS ((NTSTATUS)0)
#define STATUS_PENDING ((NTSTATUS)0x103)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000D)
#define STATUS_INVALID_DEVICE_REQUEST ((NTSTATUS)0xC0000010)
#define STATUS_DEVICE_NOT_READY ((NTSTATUS)0xC00000A3)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009A)
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120)
#define NDIS_STATUS_SUCCESS 0
#define NDIS_STATUS_PENDING 0x103
#define NDIS_STATUS_RESOURCES ((NDIS_STATUS)0xC000009A)

typedef struct UNICODE_STRING { USHORT Length, MaximumLength; WCHAR *Buffer; } UNICODE_STRING, NDIS_STRING;
typedef struct NDIS_OBJECT_HEADER { UCHAR Type, Revision; USHORT Size; } NDIS_OBJECT_HEADER;
typedef struct KEVENT { UCHAR opaque[24]; } KEVENT;
typedef struct NDIS_EVENT { KEVENT Event; } NDIS_EVENT;

typedef struct MDL {
    struct MDL *Next;
    short Size, MdlFlags;
    void *Process;
    PVOID MappedSystemVa, StartVa;
    ULONG ByteCount, ByteOffset;
} MDL;
#define MDL_MAPPED_TO_SYSTEM_VA 0x1
#define MDL_SOURCE_IS_NONPAGED_POOL 0x4

struct IRP;
struct DEVICE_OBJECT;
struct DRIVER_OBJECT;
typedef NTSTATUS (*PDRIVER_DISPATCH)(struct DEVICE_OBJECT *, struct IRP *);
typedef void (*PDRIVER_UNLOAD)(struct DRIVER_OBJECT *);

typedef struct DRIVER_OBJECT {
    UCHAR _a[0x68];
    PDRIVER_UNLOAD DriverUnload;            /* 0x68 */
    PDRIVER_DISPATCH MajorFunction[28];     /* 0x70 */
} DRIVER_OBJECT;

typedef struct DEVICE_OBJECT {
    UCHAR _a[0x30];
    ULONG Flags;                            /* 0x30 */
} DEVICE_OBJECT;
#define DO_DIRECT_IO 0x10
#define DO_DEVICE_INITIALIZING 0x80

typedef struct IO_STACK_LOCATION {
    UCHAR MajorFunction, MinorFunction, Flags, Control;
    UCHAR _a[4];
    union {
        struct { ULONG Length; } Read, Write;                         /* 0x08 */
        struct {
            ULONG OutputBufferLength; ULONG _p1;
            ULONG InputBufferLength; ULONG _p2;                      /* 0x10 */
            ULONG IoControlCode;                                     /* 0x18 */
        } DeviceIoControl;
        UCHAR _u[32];
    } Parameters;
    struct DEVICE_OBJECT *DeviceObject;     /* 0x28 */
    void *FileObject;                       /* 0x30 */
    UCHAR _b[16];
} IO_STACK_LOCATION;
#define SL_PENDING_RETURNED 0x01

typedef struct IRP {
    UCHAR _a[8];
    MDL *MdlAddress;                        /* 0x08 */
    UCHAR _b[8];
    PVOID SystemBuffer;                     /* 0x18 AssociatedIrp.SystemBuffer */
    UCHAR _c[16];
    struct { NTSTATUS Status; ULONG _p; ULONG_PTR Information; } IoStatus; /* 0x30 */
    UCHAR _d[0xb8 - 0x40];
    IO_STACK_LOCATION *CurrentStackLocation; /* 0xb8 Tail.Overlay.CurrentStackLocation */
} IRP;

#define IRP_MJ_CREATE 0x00
#define IRP_MJ_CLOSE 0x02
#define IRP_MJ_READ 0x03
#define IRP_MJ_WRITE 0x04
#define IRP_MJ_DEVICE_CONTROL 0x0e
#define IRP_MJ_CLEANUP 0x12

/* NDIS */
typedef struct NET_BUFFER {
    struct NET_BUFFER *Next;
    MDL *CurrentMdl;
    ULONG CurrentMdlOffset; ULONG _p;
    ULONG DataLength; ULONG _p2;            /* 0x18 */
    MDL *MdlChain;                          /* 0x20 */
    ULONG DataOffset;                       /* 0x28 */
} NET_BUFFER;

typedef struct NET_BUFFER_LIST_CONTEXT {
    struct NET_BUFFER_LIST_CONTEXT *Next;
    USHORT Size, Offset;
    ULONG _p;
    UCHAR ContextData[];
} NET_BUFFER_LIST_CONTEXT;

typedef struct NET_BUFFER_LIST {
    struct NET_BUFFER_LIST *Next;
    NET_BUFFER *FirstNetBuffer;
    NET_BUFFER_LIST_CONTEXT *Context;       /* 0x10 */
    UCHAR _a[0x80 - 0x18];
    ULONG NblFlags;                         /* 0x80 */
    LONG ChildRefCount;
    ULONG Flags;                            /* 0x88 */
    NDIS_STATUS Status;                     /* 0x8c */
} NET_BUFFER_LIST;
#define NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET 0x8000
#define NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK 0x2
#define NDIS_RECEIVE_FLAGS_RESOURCES 0x2
#define NDIS_RETURN_FLAGS_DISPATCH_LEVEL 0x1
#define NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL 0x1

typedef struct NET_BUFFER_LIST_POOL_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    UCHAR ProtocolId; BOOLEAN fAllocateNetBuffer; USHORT ContextSize;
    ULONG PoolTag, DataSize;
} NET_BUFFER_LIST_POOL_PARAMETERS;

typedef struct NDIS_OPEN_PARAMETERS {
    NDIS_OBJECT_HEADER Header; ULONG _p;
    NDIS_STRING *AdapterName;
    int *MediumArray;
    UINT MediumArraySize; ULONG _p2;
    UINT *SelectedMediumIndex;
    USHORT *FrameTypeArray;
    UINT FrameTypeArraySize;
} NDIS_OPEN_PARAMETERS;

typedef struct NDIS_BIND_PARAMETERS {
    NDIS_OBJECT_HEADER Header; ULONG _p;
    NDIS_STRING *ProtocolSection;
    NDIS_STRING *AdapterName;               /* 0x10 */
    UCHAR _a[0x68 - 0x18];
    USHORT MacAddressLength;                /* 0x68 */
    UCHAR CurrentMacAddress[32];            /* 0x6a */
} NDIS_BIND_PARAMETERS;

typedef struct NDIS_OID_REQUEST {
    NDIS_OBJECT_HEADER Header;
    int RequestType;
    ULONG PortNumber;
    UINT Timeout;
    PVOID RequestId;
    NDIS_HANDLE RequestHandle;
    struct { ULONG Oid; ULONG _p; PVOID InformationBuffer; UINT InformationBufferLength; UINT BytesRead, BytesNeeded; } SetInformation;
    UCHAR _rest[240 - 0x40];
} NDIS_OID_REQUEST;
#define NdisRequestSetInformation 1
#define OID_GEN_CURRENT_PACKET_FILTER 0x0001010E
#define NDIS_PACKET_TYPE_DIRECTED 0x1
#define NDIS_PACKET_TYPE_BROADCAST 0x8

typedef struct NET_PNP_EVENT_NOTIFICATION {
    NDIS_OBJECT_HEADER Header;
    ULONG PortNumber;
    int NetEvent;                           /* 0x08 NetPnPEvent.NetEvent */
} NET_PNP_EVENT_NOTIFICATION;
#define NetEventPause 8
#define NetEventRestart 9

typedef struct NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
    NDIS_OBJECT_HEADER Header;
    UCHAR MajorNdisVersion, MinorNdisVersion, MajorDriverVersion, MinorDriverVersion;
    ULONG Flags; ULONG _p;
    NDIS_STRING Name;
    PVOID SetOptionsHandler, BindAdapterHandlerEx, UnbindAdapterHandlerEx, OpenAdapterCompleteHandlerEx,
        CloseAdapterCompleteHandlerEx, NetPnPEventHandler, UninstallHandler, OidRequestCompleteHandler,
        StatusHandlerEx, ReceiveNetBufferListsHandler, SendNetBufferListsCompleteHandler,
        DirectOidRequestCompleteHandler;
} NDIS_PROTOCOL_DRIVER_CHARACTERISTICS;

_Static_assert(sizeof(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS) == 128, "characteristics");
_Static_assert(sizeof(NDIS_OPEN_PARAMETERS) == 56, "open parameters");
_Static_assert(sizeof(NDIS_OID_REQUEST) == 240, "oid request");
_Static_assert(__builtin_offsetof(IRP, CurrentStackLocation) == 0xb8, "irp");
_Static_assert(__builtin_offsetof(NET_BUFFER_LIST, Status) == 0x8c, "nbl");
_Static_assert(sizeof(IO_STACK_LOCATION) == 72, "stack location");

/* ntoskrnl.exe */
IMPORT NTSTATUS IoCreateDevice(DRIVER_OBJECT *, ULONG, UNICODE_STRING *, ULONG, ULONG, BOOLEAN, DEVICE_OBJECT **);
IMPORT void IoDeleteDevice(DEVICE_OBJECT *);
IMPORT NTSTATUS IoCreateSymbolicLink(UNICODE_STRING *, UNICODE_STRING *);
IMPORT NTSTATUS IoDeleteSymbolicLink(UNICODE_STRING *);
IMPORT void IofCompleteRequest(IRP *, char);
IMPORT void *MmMapLockedPagesSpecifyCache(MDL *, char, int, PVOID, ULONG, ULONG);
IMPORT void RtlInitUnicodeString(UNICODE_STRING *, const WCHAR *);
IMPORT void KeEnterCriticalRegion(void);
IMPORT void KeLeaveCriticalRegion(void);
IMPORT KIRQL KeAcquireSpinLockRaiseToDpc(KSPIN_LOCK *);
IMPORT void KeReleaseSpinLock(KSPIN_LOCK *, KIRQL);
IMPORT void KeInitializeSpinLock(KSPIN_LOCK *);
void *memcpy(void *, const void *, SIZE_T);
void *memset(void *, int, SIZE_T);

/* ndis.sys */
IMPORT NDIS_STATUS NdisRegisterProtocolDriver(PVOID, NDIS_PROTOCOL_DRIVER_CHARACTERISTICS *, NDIS_HANDLE *);
IMPORT void NdisDeregisterProtocolDriver(NDIS_HANDLE);
IMPORT NDIS_STATUS NdisOpenAdapterEx(NDIS_HANDLE, NDIS_HANDLE, NDIS_OPEN_PARAMETERS *, NDIS_HANDLE, NDIS_HANDLE *);
IMPORT void NdisCompleteBindAdapterEx(NDIS_HANDLE, NDIS_STATUS);
IMPORT NDIS_STATUS NdisCloseAdapterEx(NDIS_HANDLE);
IMPORT void NdisCompleteUnbindAdapterEx(NDIS_HANDLE);
IMPORT NDIS_HANDLE NdisAllocateNetBufferListPool(NDIS_HANDLE, NET_BUFFER_LIST_POOL_PARAMETERS *);
IMPORT void NdisFreeNetBufferListPool(NDIS_HANDLE);
IMPORT NET_BUFFER_LIST *NdisAllocateNetBufferAndNetBufferList(NDIS_HANDLE, USHORT, USHORT, MDL *, ULONG, SIZE_T);
IMPORT void NdisFreeNetBufferList(NET_BUFFER_LIST *);
IMPORT NDIS_STATUS NdisAllocateNetBufferListContext(NET_BUFFER_LIST *, USHORT, USHORT, ULONG);
IMPORT void NdisFreeNetBufferListContext(NET_BUFFER_LIST *, USHORT);
IMPORT NDIS_STATUS NdisCopyFromNetBufferToNetBuffer(NET_BUFFER *, ULONG, ULONG, NET_BUFFER *, ULONG, ULONG *);
IMPORT PVOID NdisGetDataBuffer(NET_BUFFER *, ULONG, PVOID, ULONG, ULONG);
IMPORT void NdisSendNetBufferLists(NDIS_HANDLE, NET_BUFFER_LIST *, ULONG, ULONG);
IMPORT void NdisReturnNetBufferLists(NDIS_HANDLE, NET_BUFFER_LIST *, ULONG);
IMPORT NDIS_STATUS NdisOidRequest(NDIS_HANDLE, NDIS_OID_REQUEST *);
IMPORT PVOID NdisAllocateMemoryWithTagPriority(NDIS_HANDLE, UINT, ULONG, int);
IMPORT void NdisFreeMemory(PVOID, UINT, UINT);
IMPORT void NdisInitializeEvent(NDIS_EVENT *);
IMPORT void NdisSetEvent(NDIS_EVENT *);
IMPORT void NdisResetEvent(NDIS_EVENT *);
IMPORT BOOLEAN NdisWaitEvent(NDIS_EVENT *, UINT);
IMPORT void NdisMSleep(ULONG);

static inline IO_STACK_LOCATION *IoGetCurrentIrpStackLocation(IRP *irp) { return irp->CurrentStackLocation; }
static inline void IoMarkIrpPending(IRP *irp) { irp->CurrentStackLocation->Control |= SL_PENDING_RETURNED; }
static inline void *MmGetSystemAddressForMdlSafe(MDL *m, ULONG priority) {
    if (m->MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)) return m->MappedSystemVa;
    return MmMapLockedPagesSpecifyCache(m, 0 /* KernelMode */, 1 /* MmCached */, NULL, FALSE, priority);
}
#define NormalPagePriority 16
#define MdlMappingNoExecute 0x40000000
IMPORT void KeBugCheckEx(ULONG, ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR);
