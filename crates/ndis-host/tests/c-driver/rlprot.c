/* rlprot: a small NDIS 6.30 protocol driver in C, written as a WDK-built driver would be, to check that
 * ndis-host runs drivers other than rawlink. It binds to the first 802.3 adapter, sets the packet filter,
 * and offers \Device\RlProt (DO_DIRECT_IO): a write sends one frame built on the write IRP's MdlAddress,
 * a read returns one received frame (pended until one arrives), and two IOCTLs switch loopback checking
 * and return counters. Struct copies and zeroing make the compiler emit memcpy/memset calls. */
#include "kernel.h"

#define TAG 0x746f7052 /* 'Rpot' */
#define IOCTL_SET_LOOPBACK 0x00122000 /* CTL_CODE(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS) */
#define IOCTL_GET_STATS 0x00122004
#define IOCTL_GET_COOKIE 0x00122008
/* A deliberate bug for the verifier's test: complete each write as soon as it is handed to NDIS. */
#define IOCTL_SET_EARLY_COMPLETE 0x0012200C
/* Reads the IRQL (mov reg, cr8), raises it to DISPATCH_LEVEL by writing CR8 (KeRaiseIrql's inline), reads it
 * again, calls NdisMSleep (PASSIVE_LEVEL only: an IRQL finding), lowers it by writing CR8 back and reads it a
 * last time; returns the three readings. ndis-host's CR8 patches must behave as the fault handler does. */
#define IOCTL_CR8_PROBE 0x00122010
/* Makes each write read the first byte of the caller's frame twice, the first time right behind a CR8 read (so
 * that ndis-host's CR8 patch moves that read into its trampoline): a double fetch the watch must still report,
 * at the instruction's own address in the image. */
#define IOCTL_SET_CR8_DOUBLE_READ 0x00122014
#define RX_QUEUE 16
#define PENDING_READS 16

typedef struct STATS {
    ULONG received, loopback_received, queued, dropped, sent, send_completed, send_failed, binds;
} STATS;

typedef struct BINDING {
    NDIS_HANDLE handle, tx_pool, rx_pool, bind_context, unbind_context;
    UCHAR mac[6];
    volatile LONG running, sends;
    NDIS_EVENT oid_done;
    NDIS_STATUS oid_status;
    NDIS_OID_REQUEST oid;
    ULONG filter;
} BINDING;

static DRIVER_OBJECT *g_driver;
static DEVICE_OBJECT *g_device;
static NDIS_HANDLE g_protocol;
static BINDING *g_binding;
static KSPIN_LOCK g_lock;
static NET_BUFFER_LIST *g_rx[RX_QUEUE];
static ULONG g_rx_count;
static IRP *g_reads[PENDING_READS];
static ULONG g_read_count;
static ULONG g_loopback;
static ULONG g_early_complete;
static ULONG g_cr8_double_read;
static STATS g_stats;
static const WCHAR g_device_name[] = L"\\Device\\RlProt";
static const WCHAR g_link_name[] = L"\\DosDevices\\RlProt";
static const WCHAR g_protocol_name[] = L"RLPROT";

/* /GS, as the WDK's BufferOverflowK.lib provides it: the cookie starts at the default value and the loader
 * replaces it before DriverEntry; the load configuration tells the loader where it is. */
ULONG_PTR __security_cookie = 0x00002B992DDFA232ull;

void __security_check_cookie(ULONG_PTR cookie) {
    if (cookie != __security_cookie) KeBugCheckEx(0xF7 /* DRIVER_OVERRAN_STACK_BUFFER */, cookie, __security_cookie, 0, 0);
}

typedef struct LOAD_CONFIG {
    ULONG Size, TimeDateStamp;
    USHORT MajorVersion, MinorVersion;
    ULONG GlobalFlagsClear, GlobalFlagsSet, CriticalSectionDefaultTimeout;
    ULONG_PTR DeCommitFreeBlockThreshold, DeCommitTotalFreeThreshold, LockPrefixTable, MaximumAllocationSize,
        VirtualMemoryThreshold, ProcessAffinityMask;
    ULONG ProcessHeapFlags;
    USHORT CSDVersion, DependentLoadFlags;
    ULONG_PTR EditList, SecurityCookie;     /* 0x58 */
} LOAD_CONFIG;
_Static_assert(__builtin_offsetof(LOAD_CONFIG, SecurityCookie) == 0x58, "load config");
const LOAD_CONFIG _load_config_used = { .Size = sizeof(LOAD_CONFIG), .SecurityCookie = (ULONG_PTR)&__security_cookie };

static void complete(IRP *irp, NTSTATUS status, ULONG_PTR info) {
    irp->IoStatus.Status = status;
    irp->IoStatus.Information = info;
    IofCompleteRequest(irp, 0);
}

/* Copies one queued frame into a read IRP's buffer and completes both. */
static void deliver(IRP *irp, NET_BUFFER_LIST *nbl) {
    NET_BUFFER *nb = nbl->FirstNetBuffer;
    ULONG len = nb->DataLength;
    ULONG room = IoGetCurrentIrpStackLocation(irp)->Parameters.Read.Length;
    UCHAR *dst = irp->MdlAddress ? MmGetSystemAddressForMdlSafe(irp->MdlAddress, NormalPagePriority | MdlMappingNoExecute) : NULL;
    UCHAR *src = NdisGetDataBuffer(nb, len, NULL, 1, 0);
    NTSTATUS status = STATUS_SUCCESS;
    if (dst == NULL || src == NULL) {
        status = STATUS_INSUFFICIENT_RESOURCES;
        len = 0;
    } else {
        if (len > room) len = room;
        memcpy(dst, src, len);
        if (len < room) memset(dst + len, 0, room - len);
    }
    NdisFreeNetBufferList(nbl);
    complete(irp, status, len);
}

/* Takes a waiting read and a queued frame if both exist (under the lock), then delivers outside it. */
static void pump(void) {
    for (;;) {
        IRP *irp = NULL;
        NET_BUFFER_LIST *nbl = NULL;
        KIRQL old = KeAcquireSpinLockRaiseToDpc(&g_lock);
        if (g_read_count > 0 && g_rx_count > 0) {
            irp = g_reads[0];
            nbl = g_rx[0];
            for (ULONG i = 1; i < g_read_count; i++) g_reads[i - 1] = g_reads[i];
            for (ULONG i = 1; i < g_rx_count; i++) g_rx[i - 1] = g_rx[i];
            g_read_count--;
            g_rx_count--;
        }
        KeReleaseSpinLock(&g_lock, old);
        if (irp == NULL) return;
        deliver(irp, nbl);
    }
}

/* ---------------------------------------------------------------- NDIS handlers */

static void Receive(NDIS_HANDLE ctx, NET_BUFFER_LIST *nbls, ULONG port, ULONG count, ULONG flags) {
    BINDING *b = ctx;
    (void)port; (void)count;
    for (NET_BUFFER_LIST *l = nbls; l; l = l->Next) {
        for (NET_BUFFER *nb = l->FirstNetBuffer; nb; nb = nb->Next) {
            NET_BUFFER_LIST *copy;
            ULONG copied = 0;
            g_stats.received++;
            if (l->NblFlags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET) g_stats.loopback_received++;
            copy = NdisAllocateNetBufferAndNetBufferList(b->rx_pool, 0, 0, NULL, 0, 0);
            if (copy == NULL) { g_stats.dropped++; continue; }
            if (NdisCopyFromNetBufferToNetBuffer(copy->FirstNetBuffer, 0, nb->DataLength, nb, 0, &copied) != NDIS_STATUS_SUCCESS || copied == 0) {
                NdisFreeNetBufferList(copy);
                g_stats.dropped++;
                continue;
            }
            copy->FirstNetBuffer->DataLength = copied;
            KIRQL old = KeAcquireSpinLockRaiseToDpc(&g_lock);
            if (g_rx_count < RX_QUEUE) {
                g_rx[g_rx_count++] = copy;
                copy = NULL;
                g_stats.queued++;
            }
            KeReleaseSpinLock(&g_lock, old);
            if (copy) { NdisFreeNetBufferList(copy); g_stats.dropped++; }
        }
    }
    if (!(flags & NDIS_RECEIVE_FLAGS_RESOURCES)) NdisReturnNetBufferLists(b->handle, nbls, NDIS_RETURN_FLAGS_DISPATCH_LEVEL);
    pump();
}

static void SendComplete(NDIS_HANDLE ctx, NET_BUFFER_LIST *nbls, ULONG flags) {
    BINDING *b = ctx;
    (void)flags;
    while (nbls) {
        NET_BUFFER_LIST *next = nbls->Next;
        NET_BUFFER_LIST_CONTEXT *c = nbls->Context;
        IRP *irp = *(IRP **)(c->ContextData + c->Offset);
        NDIS_STATUS status = nbls->Status;
        ULONG len = nbls->FirstNetBuffer->DataLength;
        nbls->Next = NULL;
        NdisFreeNetBufferListContext(nbls, 16);
        NdisFreeNetBufferList(nbls);
        if (status == NDIS_STATUS_SUCCESS) g_stats.send_completed++; else g_stats.send_failed++;
        if (irp)
            complete(irp, status == NDIS_STATUS_SUCCESS ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL, status == NDIS_STATUS_SUCCESS ? len : 0);
        __atomic_fetch_sub(&b->sends, 1, __ATOMIC_SEQ_CST);
        nbls = next;
    }
}

static void OidComplete(NDIS_HANDLE ctx, NDIS_OID_REQUEST *req, NDIS_STATUS status) {
    BINDING *b = ctx;
    (void)req;
    b->oid_status = status;
    NdisSetEvent(&b->oid_done);
}

static NDIS_STATUS SetFilter(BINDING *b, ULONG filter) {
    NDIS_OID_REQUEST req = {0};
    NDIS_STATUS s;
    b->filter = filter;
    req.Header.Type = 0x96; /* NDIS_OBJECT_TYPE_OID_REQUEST */
    req.Header.Revision = 1;
    req.Header.Size = 236; /* NDIS_SIZEOF_OID_REQUEST_REVISION_1 */
    req.RequestType = NdisRequestSetInformation;
    req.SetInformation.Oid = OID_GEN_CURRENT_PACKET_FILTER;
    req.SetInformation.InformationBuffer = &b->filter;
    req.SetInformation.InformationBufferLength = sizeof b->filter;
    b->oid = req; /* a 240-byte struct copy: memcpy */
    NdisResetEvent(&b->oid_done);
    s = NdisOidRequest(b->handle, &b->oid);
    if (s == NDIS_STATUS_PENDING) {
        NdisWaitEvent(&b->oid_done, 0);
        s = b->oid_status;
    }
    return s;
}

static NDIS_STATUS FinishBind(BINDING *b) {
    NET_BUFFER_LIST_POOL_PARAMETERS p;
    memset(&p, 0, sizeof p);
    p.Header.Type = 0x80;
    p.Header.Revision = 1;
    p.Header.Size = sizeof p;
    p.PoolTag = TAG;
    p.fAllocateNetBuffer = TRUE;
    b->tx_pool = NdisAllocateNetBufferListPool(g_protocol, &p);
    p.DataSize = 2048;
    b->rx_pool = NdisAllocateNetBufferListPool(g_protocol, &p);
    if (!b->tx_pool || !b->rx_pool) return NDIS_STATUS_RESOURCES;
    return SetFilter(b, NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST);
}

static void FreeBinding(BINDING *b) {
    if (b->tx_pool) NdisFreeNetBufferListPool(b->tx_pool);
    if (b->rx_pool) NdisFreeNetBufferListPool(b->rx_pool);
    NdisFreeMemory(b, sizeof *b, 0);
}

static void OpenComplete(NDIS_HANDLE ctx, NDIS_STATUS status) {
    BINDING *b = ctx;
    if (status == NDIS_STATUS_SUCCESS) status = FinishBind(b);
    NdisCompleteBindAdapterEx(b->bind_context, status);
}

static NDIS_STATUS Bind(NDIS_HANDLE driver_ctx, NDIS_HANDLE bind_ctx, NDIS_BIND_PARAMETERS *params) {
    static int media[1] = {0}; /* NdisMedium802_3 */
    NDIS_OPEN_PARAMETERS open;
    UINT selected = 0;
    BINDING *b;
    NDIS_STATUS s;
    (void)driver_ctx;
    if (g_binding) return NDIS_STATUS_RESOURCES; /* one adapter is enough for a test driver */
    b = NdisAllocateMemoryWithTagPriority(g_protocol, sizeof *b, TAG, 16 /* NormalPoolPriority */);
    if (!b) return NDIS_STATUS_RESOURCES;
    memset(b, 0, sizeof *b);
    NdisInitializeEvent(&b->oid_done);
    memcpy(b->mac, params->CurrentMacAddress, 6);
    b->bind_context = bind_ctx;
    memset(&open, 0, sizeof open);
    open.Header.Type = 0x87;
    open.Header.Revision = 1;
    open.Header.Size = 52;
    open.AdapterName = params->AdapterName;
    open.MediumArray = media;
    open.MediumArraySize = 1;
    open.SelectedMediumIndex = &selected;
    s = NdisOpenAdapterEx(g_protocol, b, &open, bind_ctx, &b->handle);
    if (s == NDIS_STATUS_PENDING) { g_binding = b; g_stats.binds++; return s; }
    if (s == NDIS_STATUS_SUCCESS) s = FinishBind(b);
    if (s != NDIS_STATUS_SUCCESS) {
        if (b->handle) NdisCloseAdapterEx(b->handle);
        FreeBinding(b);
        return s;
    }
    g_binding = b;
    g_stats.binds++;
    return s;
}

static void CloseComplete(NDIS_HANDLE ctx) {
    BINDING *b = ctx;
    NDIS_HANDLE unbind = b->unbind_context;
    FreeBinding(b);
    NdisCompleteUnbindAdapterEx(unbind);
}

/* NDIS passes the unbind context first, then the binding context. */
static NDIS_STATUS Unbind(NDIS_HANDLE unbind_ctx, NDIS_HANDLE ctx) {
    BINDING *b = ctx;
    NDIS_STATUS s;
    b->running = 0;
    while (__atomic_load_n(&b->sends, __ATOMIC_SEQ_CST) != 0) NdisMSleep(1000);
    g_binding = NULL;
    /* Frames still queued go; waiting reads stay for their handle's cleanup. */
    for (;;) {
        NET_BUFFER_LIST *l = NULL;
        KIRQL old = KeAcquireSpinLockRaiseToDpc(&g_lock);
        if (g_rx_count) l = g_rx[--g_rx_count];
        KeReleaseSpinLock(&g_lock, old);
        if (!l) break;
        NdisFreeNetBufferList(l);
    }
    b->unbind_context = unbind_ctx;
    s = NdisCloseAdapterEx(b->handle);
    if (s == NDIS_STATUS_PENDING) return s;
    FreeBinding(b);
    return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS PnP(NDIS_HANDLE ctx, NET_PNP_EVENT_NOTIFICATION *n) {
    BINDING *b = ctx;
    if (b && n->NetEvent == NetEventPause) {
        b->running = 0;
        while (__atomic_load_n(&b->sends, __ATOMIC_SEQ_CST) != 0) NdisMSleep(1000);
    } else if (b && n->NetEvent == NetEventRestart) {
        b->running = 1;
    }
    return NDIS_STATUS_SUCCESS;
}

static void Status(NDIS_HANDLE ctx, PVOID indication) { (void)ctx; (void)indication; }

/* ---------------------------------------------------------------- the control device */

static NTSTATUS DispatchWrite(DEVICE_OBJECT *dev, IRP *irp) {
    BINDING *b = g_binding;
    ULONG len = IoGetCurrentIrpStackLocation(irp)->Parameters.Write.Length;
    NET_BUFFER_LIST *nbl;
    NET_BUFFER_LIST_CONTEXT *c;
    void *frame;
    (void)dev;
    if (!b || !b->running) { complete(irp, STATUS_DEVICE_NOT_READY, 0); return STATUS_DEVICE_NOT_READY; }
    if (len < 14 || len > 1514 || !irp->MdlAddress) { complete(irp, STATUS_INVALID_PARAMETER, 0); return STATUS_INVALID_PARAMETER; }
    /* The MDL the I/O manager built for the caller's buffer must be mapped before NDIS reads it. */
    frame = MmGetSystemAddressForMdlSafe(irp->MdlAddress, NormalPagePriority | MdlMappingNoExecute);
    if (!frame) {
        complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (g_cr8_double_read) {
        unsigned long long irql;
        unsigned int first;
        __asm__ volatile("mov %%cr8, %0\n\tmovzbl (%2), %1" : "=&r"(irql), "=&r"(first) : "r"(frame) : "memory");
        g_stats.sent += (first != ((volatile unsigned char *)frame)[0]) + (irql != 0);
    }
    nbl = NdisAllocateNetBufferAndNetBufferList(b->tx_pool, 0, 0, irp->MdlAddress, 0, len);
    if (!nbl) { complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0); return STATUS_INSUFFICIENT_RESOURCES; }
    if (NdisAllocateNetBufferListContext(nbl, 16, 0, TAG) != NDIS_STATUS_SUCCESS) {
        NdisFreeNetBufferList(nbl);
        complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    c = nbl->Context;
    *(IRP **)(c->ContextData + c->Offset) = g_early_complete ? NULL : irp;
    if (!g_early_complete) IoMarkIrpPending(irp);
    __atomic_fetch_add(&b->sends, 1, __ATOMIC_SEQ_CST);
    g_stats.sent++;
    NdisSendNetBufferLists(b->handle, nbl, 0, g_loopback ? NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK : 0);
    if (g_early_complete) {
        complete(irp, STATUS_SUCCESS, len);
        return STATUS_SUCCESS;
    }
    return STATUS_PENDING;
}

static NTSTATUS DispatchRead(DEVICE_OBJECT *dev, IRP *irp) {
    KIRQL old;
    (void)dev;
    if (!irp->MdlAddress) { complete(irp, STATUS_INVALID_PARAMETER, 0); return STATUS_INVALID_PARAMETER; }
    old = KeAcquireSpinLockRaiseToDpc(&g_lock);
    if (g_read_count == PENDING_READS) {
        KeReleaseSpinLock(&g_lock, old);
        complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    IoMarkIrpPending(irp);
    g_reads[g_read_count++] = irp;
    KeReleaseSpinLock(&g_lock, old);
    pump();
    return STATUS_PENDING;
}

static NTSTATUS DispatchControl(DEVICE_OBJECT *dev, IRP *irp) {
    IO_STACK_LOCATION *s = IoGetCurrentIrpStackLocation(irp);
    NTSTATUS status = STATUS_SUCCESS;
    ULONG_PTR info = 0;
    (void)dev;
    KeEnterCriticalRegion();
    switch (s->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_SET_LOOPBACK:
        if (s->Parameters.DeviceIoControl.InputBufferLength < sizeof(ULONG)) status = STATUS_INVALID_PARAMETER;
        else g_loopback = *(ULONG *)irp->SystemBuffer;
        break;
    case IOCTL_GET_STATS:
        if (s->Parameters.DeviceIoControl.OutputBufferLength < sizeof(STATS)) status = STATUS_INVALID_PARAMETER;
        else { *(STATS *)irp->SystemBuffer = g_stats; info = sizeof(STATS); }
        break;
    case IOCTL_SET_CR8_DOUBLE_READ:
        if (s->Parameters.DeviceIoControl.InputBufferLength < sizeof(ULONG)) status = STATUS_INVALID_PARAMETER;
        else g_cr8_double_read = *(ULONG *)irp->SystemBuffer;
        break;
    case IOCTL_SET_EARLY_COMPLETE:
        if (s->Parameters.DeviceIoControl.InputBufferLength < sizeof(ULONG)) status = STATUS_INVALID_PARAMETER;
        else g_early_complete = *(ULONG *)irp->SystemBuffer;
        break;
    case IOCTL_CR8_PROBE:
        if (s->Parameters.DeviceIoControl.OutputBufferLength < 3 * sizeof(unsigned long long)) status = STATUS_INVALID_PARAMETER;
        else {
            unsigned long long before, raised, after, dispatch = 2;
            __asm__ volatile("mov %%cr8, %0" : "=r"(before));
            __asm__ volatile("mov %0, %%cr8" : : "r"(dispatch) : "memory");
            __asm__ volatile("mov %%cr8, %0" : "=r"(raised));
            NdisMSleep(1);
            __asm__ volatile("mov %0, %%cr8" : : "r"(before) : "memory");
            __asm__ volatile("mov %%cr8, %0" : "=r"(after));
            ((unsigned long long *)irp->SystemBuffer)[0] = before;
            ((unsigned long long *)irp->SystemBuffer)[1] = raised;
            ((unsigned long long *)irp->SystemBuffer)[2] = after;
            info = 3 * sizeof(unsigned long long);
        }
        break;
    case IOCTL_GET_COOKIE:
        if (s->Parameters.DeviceIoControl.OutputBufferLength < sizeof(ULONG_PTR)) status = STATUS_INVALID_PARAMETER;
        else { *(ULONG_PTR *)irp->SystemBuffer = __security_cookie; info = sizeof(ULONG_PTR); }
        break;
    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
    }
    KeLeaveCriticalRegion();
    complete(irp, status, info);
    return status;
}

static NTSTATUS DispatchCleanup(DEVICE_OBJECT *dev, IRP *irp) {
    IRP *reads[PENDING_READS];
    ULONG n;
    KIRQL old;
    (void)dev;
    /* One handle is enough for a test driver: its cleanup ends every waiting read. */
    old = KeAcquireSpinLockRaiseToDpc(&g_lock);
    n = g_read_count;
    memcpy(reads, g_reads, n * sizeof reads[0]);
    g_read_count = 0;
    KeReleaseSpinLock(&g_lock, old);
    for (ULONG i = 0; i < n; i++) complete(reads[i], STATUS_CANCELLED, 0);
    complete(irp, STATUS_SUCCESS, 0);
    return STATUS_SUCCESS;
}

static NTSTATUS DispatchOpenClose(DEVICE_OBJECT *dev, IRP *irp) {
    (void)dev;
    complete(irp, STATUS_SUCCESS, 0);
    return STATUS_SUCCESS;
}

static void Unload(DRIVER_OBJECT *d) {
    UNICODE_STRING link;
    (void)d;
    NdisDeregisterProtocolDriver(g_protocol);
    RtlInitUnicodeString(&link, g_link_name);
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(g_device);
}

NTSTATUS DriverEntry(DRIVER_OBJECT *driver, UNICODE_STRING *registry) {
    NDIS_PROTOCOL_DRIVER_CHARACTERISTICS pc;
    UNICODE_STRING name, link;
    NTSTATUS s;
    (void)registry;
    g_driver = driver;
    KeInitializeSpinLock(&g_lock);
    RtlInitUnicodeString(&name, g_device_name);
    RtlInitUnicodeString(&link, g_link_name);
    s = IoCreateDevice(driver, 0, &name, 0x12 /* FILE_DEVICE_NETWORK */, 0x100 /* FILE_DEVICE_SECURE_OPEN */, FALSE, &g_device);
    if (s < 0) return s;
    g_device->Flags |= DO_DIRECT_IO;
    s = IoCreateSymbolicLink(&link, &name);
    if (s < 0) { IoDeleteDevice(g_device); return s; }
    driver->MajorFunction[IRP_MJ_CREATE] = DispatchOpenClose;
    driver->MajorFunction[IRP_MJ_CLOSE] = DispatchOpenClose;
    driver->MajorFunction[IRP_MJ_CLEANUP] = DispatchCleanup;
    driver->MajorFunction[IRP_MJ_READ] = DispatchRead;
    driver->MajorFunction[IRP_MJ_WRITE] = DispatchWrite;
    driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = DispatchControl;
    driver->DriverUnload = Unload;
    memset(&pc, 0, sizeof pc);
    pc.Header.Type = 0x95;
    pc.Header.Revision = 2;
    pc.Header.Size = sizeof pc;
    pc.MajorNdisVersion = 6;
    pc.MinorNdisVersion = 30;
    pc.MajorDriverVersion = 1;
    RtlInitUnicodeString(&pc.Name, g_protocol_name);
    pc.BindAdapterHandlerEx = Bind;
    pc.UnbindAdapterHandlerEx = Unbind;
    pc.OpenAdapterCompleteHandlerEx = OpenComplete;
    pc.CloseAdapterCompleteHandlerEx = CloseComplete;
    pc.NetPnPEventHandler = PnP;
    pc.OidRequestCompleteHandler = OidComplete;
    pc.StatusHandlerEx = Status;
    pc.ReceiveNetBufferListsHandler = Receive;
    pc.SendNetBufferListsCompleteHandler = SendComplete;
    s = NdisRegisterProtocolDriver(NULL, &pc, &g_protocol);
    if (s != NDIS_STATUS_SUCCESS) {
        IoDeleteSymbolicLink(&link);
        IoDeleteDevice(g_device);
        return s;
    }
    g_device->Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
}
