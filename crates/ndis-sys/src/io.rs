//! The I/O manager's structures of `wdm.h`/`ntifs.h`: driver and device objects, IRPs and their stack
//! locations, file objects, MDLs, cancel-safe queues, remove locks, and the driver callback types.

use crate::constants::IRP_MJ_MAXIMUM_FUNCTION;
use crate::ke::*;
use crate::types::*;

// ---------------------------------------------------------------------------------------------------------
// Enumerations used by I/O structures (C enums are `int`).
// ---------------------------------------------------------------------------------------------------------

/// `FILE_INFORMATION_CLASS`.
pub type FILE_INFORMATION_CLASS = INT;
/// `FS_INFORMATION_CLASS`.
pub type FS_INFORMATION_CLASS = INT;
/// `DIRECTORY_NOTIFY_INFORMATION_CLASS`.
pub type DIRECTORY_NOTIFY_INFORMATION_CLASS = INT;
/// `DEVICE_RELATION_TYPE`.
pub type DEVICE_RELATION_TYPE = INT;
/// `BUS_QUERY_ID_TYPE`.
pub type BUS_QUERY_ID_TYPE = INT;
/// `DEVICE_TEXT_TYPE`.
pub type DEVICE_TEXT_TYPE = INT;
/// `DEVICE_USAGE_NOTIFICATION_TYPE`.
pub type DEVICE_USAGE_NOTIFICATION_TYPE = INT;
/// `SYSTEM_POWER_STATE`.
pub type SYSTEM_POWER_STATE = INT;
/// `DEVICE_POWER_STATE`.
pub type DEVICE_POWER_STATE = INT;
/// `POWER_STATE_TYPE`.
pub type POWER_STATE_TYPE = INT;
/// `POWER_ACTION`.
pub type POWER_ACTION = INT;
/// `IO_ALLOCATION_ACTION`.
pub type IO_ALLOCATION_ACTION = INT;

opaque!(
    /// `VPB`: a volume parameter block.
    VPB,
    /// `DEVOBJ_EXTENSION`.
    DEVOBJ_EXTENSION,
    /// `IO_TIMER`.
    IO_TIMER,
    /// `FAST_IO_DISPATCH`.
    FAST_IO_DISPATCH,
    /// `SECTION_OBJECT_POINTERS`.
    SECTION_OBJECT_POINTERS,
    /// `IO_COMPLETION_CONTEXT`.
    IO_COMPLETION_CONTEXT,
    /// `IO_SECURITY_CONTEXT`.
    IO_SECURITY_CONTEXT,
    /// `NAMED_PIPE_CREATE_PARAMETERS`.
    NAMED_PIPE_CREATE_PARAMETERS,
    /// `MAILSLOT_CREATE_PARAMETERS`.
    MAILSLOT_CREATE_PARAMETERS,
    /// `FILE_GET_QUOTA_INFORMATION`.
    FILE_GET_QUOTA_INFORMATION,
    /// `INTERFACE`.
    INTERFACE,
    /// `DEVICE_CAPABILITIES`.
    DEVICE_CAPABILITIES,
    /// `IO_RESOURCE_REQUIREMENTS_LIST`.
    IO_RESOURCE_REQUIREMENTS_LIST,
    /// `POWER_SEQUENCE`.
    POWER_SEQUENCE,
    /// `CM_RESOURCE_LIST`.
    CM_RESOURCE_LIST,
    /// `SCSI_REQUEST_BLOCK`.
    SCSI_REQUEST_BLOCK,
    /// `IO_WORKITEM`: an I/O work item (`IoAllocateWorkItem`).
    IO_WORKITEM,
);
/// `VPB *`.
pub type PVPB = *mut VPB;
/// `IO_TIMER *`.
pub type PIO_TIMER = *mut IO_TIMER;
/// `FAST_IO_DISPATCH *`.
pub type PFAST_IO_DISPATCH = *mut FAST_IO_DISPATCH;
/// `SECTION_OBJECT_POINTERS *`.
pub type PSECTION_OBJECT_POINTERS = *mut SECTION_OBJECT_POINTERS;
/// `IO_COMPLETION_CONTEXT *`.
pub type PIO_COMPLETION_CONTEXT = *mut IO_COMPLETION_CONTEXT;
/// `IO_SECURITY_CONTEXT *`.
pub type PIO_SECURITY_CONTEXT = *mut IO_SECURITY_CONTEXT;
/// `NAMED_PIPE_CREATE_PARAMETERS *`.
pub type PNAMED_PIPE_CREATE_PARAMETERS = *mut NAMED_PIPE_CREATE_PARAMETERS;
/// `MAILSLOT_CREATE_PARAMETERS *`.
pub type PMAILSLOT_CREATE_PARAMETERS = *mut MAILSLOT_CREATE_PARAMETERS;
/// `FILE_GET_QUOTA_INFORMATION *`.
pub type PFILE_GET_QUOTA_INFORMATION = *mut FILE_GET_QUOTA_INFORMATION;
/// `INTERFACE *`.
pub type PINTERFACE = *mut INTERFACE;
/// `DEVICE_CAPABILITIES *`.
pub type PDEVICE_CAPABILITIES = *mut DEVICE_CAPABILITIES;
/// `IO_RESOURCE_REQUIREMENTS_LIST *`.
pub type PIO_RESOURCE_REQUIREMENTS_LIST = *mut IO_RESOURCE_REQUIREMENTS_LIST;
/// `POWER_SEQUENCE *`.
pub type PPOWER_SEQUENCE = *mut POWER_SEQUENCE;
/// `CM_RESOURCE_LIST *`.
pub type PCM_RESOURCE_LIST = *mut CM_RESOURCE_LIST;
/// `IO_WORKITEM *`.
pub type PIO_WORKITEM = *mut IO_WORKITEM;

// ---------------------------------------------------------------------------------------------------------
// Callback types.
// ---------------------------------------------------------------------------------------------------------

/// [`DRIVER_DISPATCH`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_dispatch):
/// `(DeviceObject, Irp) -> NTSTATUS`, one per `IRP_MJ_*` in `DRIVER_OBJECT.MajorFunction`.
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS>;
/// [`DRIVER_UNLOAD`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_unload):
/// `(DriverObject)`.
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(DriverObject: *mut DRIVER_OBJECT)>;
/// [`DRIVER_CANCEL`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_cancel):
/// `(DeviceObject, Irp)`, called with the cancel spin lock held.
pub type PDRIVER_CANCEL = Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;
/// `DRIVER_INITIALIZE` (DriverEntry): `(DriverObject, RegistryPath) -> NTSTATUS`.
pub type PDRIVER_INITIALIZE =
    Option<unsafe extern "system" fn(DriverObject: *mut DRIVER_OBJECT, RegistryPath: PUNICODE_STRING) -> NTSTATUS>;
/// `DRIVER_STARTIO`: `(DeviceObject, Irp)`.
pub type PDRIVER_STARTIO = Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;
/// `DRIVER_ADD_DEVICE`: `(DriverObject, PhysicalDeviceObject) -> NTSTATUS`.
pub type PDRIVER_ADD_DEVICE = Option<
    unsafe extern "system" fn(DriverObject: *mut DRIVER_OBJECT, PhysicalDeviceObject: *mut DEVICE_OBJECT) -> NTSTATUS,
>;
/// `DRIVER_CONTROL`: `(DeviceObject, Irp, MapRegisterBase, Context) -> IO_ALLOCATION_ACTION`.
pub type PDRIVER_CONTROL = Option<
    unsafe extern "system" fn(
        DeviceObject: *mut DEVICE_OBJECT,
        Irp: *mut IRP,
        MapRegisterBase: PVOID,
        Context: PVOID,
    ) -> IO_ALLOCATION_ACTION,
>;
/// `IO_COMPLETION_ROUTINE`: `(DeviceObject, Irp, Context) -> NTSTATUS`.
pub type PIO_COMPLETION_ROUTINE =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP, Context: PVOID) -> NTSTATUS>;
/// `IO_APC_ROUTINE`: `(ApcContext, IoStatusBlock, Reserved)`.
pub type PIO_APC_ROUTINE =
    Option<unsafe extern "system" fn(ApcContext: PVOID, IoStatusBlock: *mut IO_STATUS_BLOCK, Reserved: ULONG)>;
/// [`IO_WORKITEM_ROUTINE`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_workitem_routine):
/// `(DeviceObject, Context)`, run at PASSIVE_LEVEL by a system worker thread.
pub type PIO_WORKITEM_ROUTINE = Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Context: PVOID)>;

/// `IO_CSQ_INSERT_IRP`: `(Csq, Irp)`.
pub type PIO_CSQ_INSERT_IRP = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;
/// `IO_CSQ_REMOVE_IRP`: `(Csq, Irp)`.
pub type PIO_CSQ_REMOVE_IRP = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;
/// `IO_CSQ_PEEK_NEXT_IRP`: `(Csq, Irp, PeekContext) -> PIRP`.
pub type PIO_CSQ_PEEK_NEXT_IRP =
    Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP, PeekContext: PVOID) -> *mut IRP>;
/// `IO_CSQ_ACQUIRE_LOCK`: `(Csq, Irql)`; stores the previous IRQL through `Irql`.
pub type PIO_CSQ_ACQUIRE_LOCK = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irql: PKIRQL)>;
/// `IO_CSQ_RELEASE_LOCK`: `(Csq, Irql)`.
pub type PIO_CSQ_RELEASE_LOCK = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irql: KIRQL)>;
/// `IO_CSQ_COMPLETE_CANCELED_IRP`: `(Csq, Irp)`.
pub type PIO_CSQ_COMPLETE_CANCELED_IRP = Option<unsafe extern "system" fn(Csq: *mut IO_CSQ, Irp: *mut IRP)>;

// ---------------------------------------------------------------------------------------------------------
// MDL and I/O status.
// ---------------------------------------------------------------------------------------------------------

/// [`MDL`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_mdl): a memory descriptor
/// list; the page frame numbers follow the structure in memory.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: CSHORT,
    pub MdlFlags: CSHORT,
    pub Process: *mut EPROCESS,
    pub MappedSystemVa: PVOID,
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    pub ByteOffset: ULONG,
}
/// `MDL *`.
pub type PMDL = *mut MDL;
/// `MDL *` (its name in `MDL` chains).
pub type PMDLX = *mut MDL;

/// [`IO_STATUS_BLOCK`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_status_block):
/// the final status of an I/O request and its information value (usually a byte count).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STATUS_BLOCK {
    pub u: IO_STATUS_BLOCK_u,
    pub Information: ULONG_PTR,
}
/// `IO_STATUS_BLOCK *`.
pub type PIO_STATUS_BLOCK = *mut IO_STATUS_BLOCK;

/// Anonymous member `u` of [`IO_STATUS_BLOCK`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STATUS_BLOCK_u {
    pub Status: NTSTATUS,
    pub Pointer: PVOID,
}

// ---------------------------------------------------------------------------------------------------------
// Driver object.
// ---------------------------------------------------------------------------------------------------------

/// [`DRIVER_EXTENSION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_extension)
/// (public part).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_EXTENSION {
    pub DriverObject: *mut DRIVER_OBJECT,
    pub AddDevice: PDRIVER_ADD_DEVICE,
    pub Count: ULONG,
    pub ServiceKeyName: UNICODE_STRING,
}
/// `DRIVER_EXTENSION *`.
pub type PDRIVER_EXTENSION = *mut DRIVER_EXTENSION;

/// [`DRIVER_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_object): the
/// loaded driver image. DriverEntry fills `MajorFunction` and `DriverUnload`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: ULONG,
    pub DriverStart: PVOID,
    pub DriverSize: ULONG,
    pub DriverSection: PVOID,
    pub DriverExtension: PDRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: PUNICODE_STRING,
    pub FastIoDispatch: PFAST_IO_DISPATCH,
    pub DriverInit: PDRIVER_INITIALIZE,
    pub DriverStartIo: PDRIVER_STARTIO,
    pub DriverUnload: PDRIVER_UNLOAD,
    /// Indexed by `IRP_MJ_*`; `IRP_MJ_MAXIMUM_FUNCTION + 1` entries.
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_MAXIMUM_FUNCTION as usize + 1],
}
/// `DRIVER_OBJECT *`.
pub type PDRIVER_OBJECT = *mut DRIVER_OBJECT;

// ---------------------------------------------------------------------------------------------------------
// Device object.
// ---------------------------------------------------------------------------------------------------------

/// `KDEVICE_QUEUE_ENTRY`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE_ENTRY {
    pub DeviceListEntry: LIST_ENTRY,
    pub SortKey: ULONG,
    pub Inserted: BOOLEAN,
}
/// `KDEVICE_QUEUE_ENTRY *`.
pub type PKDEVICE_QUEUE_ENTRY = *mut KDEVICE_QUEUE_ENTRY;

/// `KDEVICE_QUEUE` (x64 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceListHead: LIST_ENTRY,
    pub Lock: KSPIN_LOCK,
    pub u: KDEVICE_QUEUE_u,
}
/// `KDEVICE_QUEUE *`.
pub type PKDEVICE_QUEUE = *mut KDEVICE_QUEUE;

/// Anonymous member `u` of [`KDEVICE_QUEUE`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union KDEVICE_QUEUE_u {
    pub Busy: BOOLEAN,
    pub s: KDEVICE_QUEUE_u_s,
}

/// Anonymous member `s` of [`KDEVICE_QUEUE_u`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE_u_s {
    /// Storage unit (`LONG64` in the WDK, unsigned here): `Reserved:8`, `Hint:56`.
    pub Bits: ULONG64,
}
bitfields!(KDEVICE_QUEUE_u_s {
    Bits: ULONG64 {
        Reserved / set_Reserved: 0, 8;
        Hint / set_Hint: 8, 56;
    }
});

/// `WAIT_CONTEXT_BLOCK` (WDK 10.0.16299 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WAIT_CONTEXT_BLOCK {
    pub u: WAIT_CONTEXT_BLOCK_u,
    pub DeviceRoutine: PDRIVER_CONTROL,
    pub DeviceContext: PVOID,
    pub NumberOfMapRegisters: ULONG,
    pub DeviceObject: PVOID,
    pub CurrentIrp: PVOID,
    pub BufferChainingDpc: PKDPC,
}
/// `WAIT_CONTEXT_BLOCK *`.
pub type PWAIT_CONTEXT_BLOCK = *mut WAIT_CONTEXT_BLOCK;

/// Anonymous member `u` of [`WAIT_CONTEXT_BLOCK`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union WAIT_CONTEXT_BLOCK_u {
    pub WaitQueueEntry: KDEVICE_QUEUE_ENTRY,
    pub s: WAIT_CONTEXT_BLOCK_u_s,
}

/// Anonymous member `s` of [`WAIT_CONTEXT_BLOCK_u`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WAIT_CONTEXT_BLOCK_u_s {
    pub DmaWaitEntry: LIST_ENTRY,
    pub NumberOfChannels: ULONG,
    /// Storage unit: `SyncCallback:1`, `DmaContext:1`, `ZeroMapRegisters:1`, `Reserved:29`.
    pub Bits: ULONG,
}
bitfields!(WAIT_CONTEXT_BLOCK_u_s {
    Bits: ULONG {
        SyncCallback / set_SyncCallback: 0, 1;
        DmaContext / set_DmaContext: 1, 1;
        ZeroMapRegisters / set_ZeroMapRegisters: 2, 1;
        Reserved / set_Reserved: 3, 29;
    }
});

/// [`DEVICE_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_device_object).
/// 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct DEVICE_OBJECT {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub ReferenceCount: LONG,
    pub DriverObject: *mut DRIVER_OBJECT,
    pub NextDevice: *mut DEVICE_OBJECT,
    pub AttachedDevice: *mut DEVICE_OBJECT,
    pub CurrentIrp: *mut IRP,
    pub Timer: PIO_TIMER,
    /// `DO_*` flags.
    pub Flags: ULONG,
    /// `FILE_DEVICE_SECURE_OPEN` and other characteristics.
    pub Characteristics: ULONG,
    /// `volatile PVPB Vpb`.
    pub Vpb: PVPB,
    pub DeviceExtension: PVOID,
    pub DeviceType: DEVICE_TYPE,
    pub StackSize: CCHAR,
    pub Queue: DEVICE_OBJECT_Queue,
    pub AlignmentRequirement: ULONG,
    pub DeviceQueue: KDEVICE_QUEUE,
    pub Dpc: KDPC,
    pub ActiveThreadCount: ULONG,
    pub SecurityDescriptor: PSECURITY_DESCRIPTOR,
    pub DeviceLock: KEVENT,
    pub SectorSize: USHORT,
    pub Spare1: USHORT,
    pub DeviceObjectExtension: *mut DEVOBJ_EXTENSION,
    pub Reserved: PVOID,
}
/// `DEVICE_OBJECT *`.
pub type PDEVICE_OBJECT = *mut DEVICE_OBJECT;

/// `DEVICE_OBJECT.Queue`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DEVICE_OBJECT_Queue {
    pub ListEntry: LIST_ENTRY,
    pub Wcb: WAIT_CONTEXT_BLOCK,
}

// ---------------------------------------------------------------------------------------------------------
// File object.
// ---------------------------------------------------------------------------------------------------------

/// [`FILE_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_file_object): an open
/// handle's object; `FsContext`/`FsContext2` are free for the device's driver.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FILE_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: PDEVICE_OBJECT,
    pub Vpb: PVPB,
    pub FsContext: PVOID,
    pub FsContext2: PVOID,
    pub SectionObjectPointer: PSECTION_OBJECT_POINTERS,
    pub PrivateCacheMap: PVOID,
    pub FinalStatus: NTSTATUS,
    pub RelatedFileObject: *mut FILE_OBJECT,
    pub LockOperation: BOOLEAN,
    pub DeletePending: BOOLEAN,
    pub ReadAccess: BOOLEAN,
    pub WriteAccess: BOOLEAN,
    pub DeleteAccess: BOOLEAN,
    pub SharedRead: BOOLEAN,
    pub SharedWrite: BOOLEAN,
    pub SharedDelete: BOOLEAN,
    pub Flags: ULONG,
    pub FileName: UNICODE_STRING,
    pub CurrentByteOffset: LARGE_INTEGER,
    /// `volatile ULONG Waiters`.
    pub Waiters: ULONG,
    /// `volatile ULONG Busy`.
    pub Busy: ULONG,
    pub LastLock: PVOID,
    pub Lock: KEVENT,
    pub Event: KEVENT,
    /// `volatile PIO_COMPLETION_CONTEXT CompletionContext`.
    pub CompletionContext: PIO_COMPLETION_CONTEXT,
    pub IrpListLock: KSPIN_LOCK,
    pub IrpList: LIST_ENTRY,
    /// `volatile PVOID FileObjectExtension`.
    pub FileObjectExtension: PVOID,
}
/// `FILE_OBJECT *`.
pub type PFILE_OBJECT = *mut FILE_OBJECT;

// ---------------------------------------------------------------------------------------------------------
// IRP.
// ---------------------------------------------------------------------------------------------------------

/// [`IRP`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_irp): an I/O request packet.
/// 16-byte aligned. The current stack location (`IoGetCurrentIrpStackLocation`, a header inline) is
/// `Tail.Overlay.s.u.CurrentStackLocation`; the buffered-I/O buffer is `AssociatedIrp.SystemBuffer`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct IRP {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub MdlAddress: PMDL,
    pub Flags: ULONG,
    pub AssociatedIrp: IRP_AssociatedIrp,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: KPROCESSOR_MODE,
    pub PendingReturned: BOOLEAN,
    pub StackCount: CHAR,
    pub CurrentLocation: CHAR,
    pub Cancel: BOOLEAN,
    pub CancelIrql: KIRQL,
    pub ApcEnvironment: CCHAR,
    pub AllocationFlags: UCHAR,
    pub UserIosb: PIO_STATUS_BLOCK,
    pub UserEvent: PKEVENT,
    pub Overlay: IRP_Overlay,
    /// `volatile PDRIVER_CANCEL CancelRoutine` (set with `IoSetCancelRoutine`, an interlocked exchange).
    pub CancelRoutine: PDRIVER_CANCEL,
    pub UserBuffer: PVOID,
    pub Tail: IRP_Tail,
}
/// `IRP *`.
pub type PIRP = *mut IRP;

/// `IRP.AssociatedIrp`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_AssociatedIrp {
    pub MasterIrp: *mut IRP,
    /// `volatile LONG IrpCount`.
    pub IrpCount: LONG,
    /// The system buffer of `METHOD_BUFFERED` requests and `DO_BUFFERED_IO` reads/writes.
    pub SystemBuffer: PVOID,
}

/// `IRP.Overlay`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_Overlay {
    pub AsynchronousParameters: IRP_Overlay_AsynchronousParameters,
    pub AllocationSize: LARGE_INTEGER,
}

/// `IRP.Overlay.AsynchronousParameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_Overlay_AsynchronousParameters {
    pub u: IRP_Overlay_AsynchronousParameters_u,
    pub UserApcContext: PVOID,
}

/// Anonymous member `u` of [`IRP_Overlay_AsynchronousParameters`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_Overlay_AsynchronousParameters_u {
    pub UserApcRoutine: PIO_APC_ROUTINE,
    pub IssuingProcess: PVOID,
}

/// `IRP.Tail`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_Tail {
    pub Overlay: IRP_Tail_Overlay,
    pub Apc: KAPC,
    pub CompletionKey: PVOID,
}

/// `IRP.Tail.Overlay`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_Tail_Overlay {
    pub u: IRP_Tail_Overlay_u,
    pub Thread: PETHREAD,
    pub AuxiliaryBuffer: PCHAR,
    pub s: IRP_Tail_Overlay_s,
    pub OriginalFileObject: PFILE_OBJECT,
}

/// Anonymous member `u` of [`IRP_Tail_Overlay`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_Tail_Overlay_u {
    pub DeviceQueueEntry: KDEVICE_QUEUE_ENTRY,
    pub s: IRP_Tail_Overlay_u_s,
}

/// Anonymous member `s` of [`IRP_Tail_Overlay_u`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_Tail_Overlay_u_s {
    /// Four pointers the driver that currently owns the IRP may use freely.
    pub DriverContext: [PVOID; 4],
}

/// Anonymous member `s` of [`IRP_Tail_Overlay`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_Tail_Overlay_s {
    pub ListEntry: LIST_ENTRY,
    pub u: IRP_Tail_Overlay_s_u,
}

/// Anonymous member `u` of [`IRP_Tail_Overlay_s`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_Tail_Overlay_s_u {
    /// The current `IO_STACK_LOCATION` (what `IoGetCurrentIrpStackLocation` returns).
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub PacketType: ULONG,
}

// ---------------------------------------------------------------------------------------------------------
// IO_STACK_LOCATION.
// ---------------------------------------------------------------------------------------------------------

/// [`IO_STACK_LOCATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location):
/// one driver's view of an IRP. `Parameters` is interpreted according to `MajorFunction`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: UCHAR,
    pub MinorFunction: UCHAR,
    pub Flags: UCHAR,
    pub Control: UCHAR,
    pub Parameters: IO_STACK_LOCATION_Parameters,
    pub DeviceObject: PDEVICE_OBJECT,
    pub FileObject: PFILE_OBJECT,
    pub CompletionRoutine: PIO_COMPLETION_ROUTINE,
    pub Context: PVOID,
}
/// `IO_STACK_LOCATION *`.
pub type PIO_STACK_LOCATION = *mut IO_STACK_LOCATION;

/// `IO_STACK_LOCATION.Parameters`.
///
/// Members marked `POINTER_ALIGNMENT` in the WDK are 8-byte aligned; the explicit `_padN` fields reproduce
/// that alignment, and variants without pointers carry `align(8)` for the same reason.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_Parameters {
    pub Create: IO_STACK_LOCATION_Parameters_Create,
    pub CreatePipe: IO_STACK_LOCATION_Parameters_CreatePipe,
    pub CreateMailslot: IO_STACK_LOCATION_Parameters_CreateMailslot,
    pub Read: IO_STACK_LOCATION_Parameters_Read,
    pub Write: IO_STACK_LOCATION_Parameters_Write,
    pub QueryDirectory: IO_STACK_LOCATION_Parameters_QueryDirectory,
    pub NotifyDirectory: IO_STACK_LOCATION_Parameters_NotifyDirectory,
    pub NotifyDirectoryEx: IO_STACK_LOCATION_Parameters_NotifyDirectoryEx,
    pub QueryFile: IO_STACK_LOCATION_Parameters_QueryFile,
    pub SetFile: IO_STACK_LOCATION_Parameters_SetFile,
    pub QueryEa: IO_STACK_LOCATION_Parameters_QueryEa,
    pub SetEa: IO_STACK_LOCATION_Parameters_SetEa,
    pub QueryVolume: IO_STACK_LOCATION_Parameters_QueryVolume,
    pub SetVolume: IO_STACK_LOCATION_Parameters_SetVolume,
    pub FileSystemControl: IO_STACK_LOCATION_Parameters_FileSystemControl,
    pub LockControl: IO_STACK_LOCATION_Parameters_LockControl,
    pub DeviceIoControl: IO_STACK_LOCATION_Parameters_DeviceIoControl,
    pub QuerySecurity: IO_STACK_LOCATION_Parameters_QuerySecurity,
    pub SetSecurity: IO_STACK_LOCATION_Parameters_SetSecurity,
    pub MountVolume: IO_STACK_LOCATION_Parameters_MountVolume,
    pub VerifyVolume: IO_STACK_LOCATION_Parameters_VerifyVolume,
    pub Scsi: IO_STACK_LOCATION_Parameters_Scsi,
    pub QueryQuota: IO_STACK_LOCATION_Parameters_QueryQuota,
    pub SetQuota: IO_STACK_LOCATION_Parameters_SetQuota,
    pub QueryDeviceRelations: IO_STACK_LOCATION_Parameters_QueryDeviceRelations,
    pub QueryInterface: IO_STACK_LOCATION_Parameters_QueryInterface,
    pub DeviceCapabilities: IO_STACK_LOCATION_Parameters_DeviceCapabilities,
    pub FilterResourceRequirements: IO_STACK_LOCATION_Parameters_FilterResourceRequirements,
    pub ReadWriteConfig: IO_STACK_LOCATION_Parameters_ReadWriteConfig,
    pub SetLock: IO_STACK_LOCATION_Parameters_SetLock,
    pub QueryId: IO_STACK_LOCATION_Parameters_QueryId,
    pub QueryDeviceText: IO_STACK_LOCATION_Parameters_QueryDeviceText,
    pub UsageNotification: IO_STACK_LOCATION_Parameters_UsageNotification,
    pub WaitWake: IO_STACK_LOCATION_Parameters_WaitWake,
    pub PowerSequence: IO_STACK_LOCATION_Parameters_PowerSequence,
    pub Power: IO_STACK_LOCATION_Parameters_Power,
    pub StartDevice: IO_STACK_LOCATION_Parameters_StartDevice,
    pub WMI: IO_STACK_LOCATION_Parameters_WMI,
    pub Others: IO_STACK_LOCATION_Parameters_Others,
}

/// `Parameters.Create` (`IRP_MJ_CREATE`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Create {
    pub SecurityContext: PIO_SECURITY_CONTEXT,
    pub Options: ULONG,
    pub _pad1: ULONG,
    pub FileAttributes: USHORT,
    pub ShareAccess: USHORT,
    pub _pad2: ULONG,
    pub EaLength: ULONG,
}

/// `Parameters.CreatePipe` (`IRP_MJ_CREATE_NAMED_PIPE`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_CreatePipe {
    pub SecurityContext: PIO_SECURITY_CONTEXT,
    pub Options: ULONG,
    pub _pad1: ULONG,
    pub Reserved: USHORT,
    pub ShareAccess: USHORT,
    pub Parameters: PNAMED_PIPE_CREATE_PARAMETERS,
}

/// `Parameters.CreateMailslot` (`IRP_MJ_CREATE_MAILSLOT`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_CreateMailslot {
    pub SecurityContext: PIO_SECURITY_CONTEXT,
    pub Options: ULONG,
    pub _pad1: ULONG,
    pub Reserved: USHORT,
    pub ShareAccess: USHORT,
    pub Parameters: PMAILSLOT_CREATE_PARAMETERS,
}

/// `Parameters.Read` (`IRP_MJ_READ`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Read {
    /// Bytes requested.
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub Key: ULONG,
    pub ByteOffset: LARGE_INTEGER,
}

/// `Parameters.Write` (`IRP_MJ_WRITE`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Write {
    /// Bytes to write.
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub Key: ULONG,
    pub ByteOffset: LARGE_INTEGER,
}

/// `Parameters.QueryDirectory`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryDirectory {
    pub Length: ULONG,
    pub FileName: PUNICODE_STRING,
    pub FileInformationClass: FILE_INFORMATION_CLASS,
    pub _pad1: ULONG,
    pub FileIndex: ULONG,
}

/// `Parameters.NotifyDirectory`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_NotifyDirectory {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub CompletionFilter: ULONG,
}

/// `Parameters.NotifyDirectoryEx`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_NotifyDirectoryEx {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub CompletionFilter: ULONG,
    pub _pad2: ULONG,
    pub DirectoryNotifyInformationClass: DIRECTORY_NOTIFY_INFORMATION_CLASS,
}

/// `Parameters.QueryFile`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryFile {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub FileInformationClass: FILE_INFORMATION_CLASS,
}

/// `Parameters.SetFile`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetFile {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub FileInformationClass: FILE_INFORMATION_CLASS,
    pub FileObject: PFILE_OBJECT,
    pub u: IO_STACK_LOCATION_Parameters_SetFile_u,
}

/// Anonymous member `u` of [`IO_STACK_LOCATION_Parameters_SetFile`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_Parameters_SetFile_u {
    pub s: IO_STACK_LOCATION_Parameters_SetFile_u_s,
    pub ClusterCount: ULONG,
    pub DeleteHandle: HANDLE,
}

/// Anonymous member `s` of [`IO_STACK_LOCATION_Parameters_SetFile_u`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetFile_u_s {
    pub ReplaceIfExists: BOOLEAN,
    pub AdvanceOnly: BOOLEAN,
}

/// `Parameters.QueryEa`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryEa {
    pub Length: ULONG,
    pub EaList: PVOID,
    pub EaListLength: ULONG,
    pub _pad1: ULONG,
    pub EaIndex: ULONG,
}

/// `Parameters.SetEa`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetEa {
    pub Length: ULONG,
}

/// `Parameters.QueryVolume`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryVolume {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub FsInformationClass: FS_INFORMATION_CLASS,
}

/// `Parameters.SetVolume`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetVolume {
    pub Length: ULONG,
    pub _pad1: ULONG,
    pub FsInformationClass: FS_INFORMATION_CLASS,
}

/// `Parameters.FileSystemControl`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_FileSystemControl {
    pub OutputBufferLength: ULONG,
    pub _pad1: ULONG,
    pub InputBufferLength: ULONG,
    pub _pad2: ULONG,
    pub FsControlCode: ULONG,
    pub Type3InputBuffer: PVOID,
}

/// `Parameters.LockControl`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_LockControl {
    pub Length: PLARGE_INTEGER,
    pub Key: ULONG,
    pub ByteOffset: LARGE_INTEGER,
}

/// `Parameters.DeviceIoControl` (`IRP_MJ_DEVICE_CONTROL`, `IRP_MJ_INTERNAL_DEVICE_CONTROL`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_DeviceIoControl {
    pub OutputBufferLength: ULONG,
    pub _pad1: ULONG,
    pub InputBufferLength: ULONG,
    pub _pad2: ULONG,
    pub IoControlCode: ULONG,
    /// The caller's input buffer for `METHOD_NEITHER`.
    pub Type3InputBuffer: PVOID,
}

/// `Parameters.QuerySecurity`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QuerySecurity {
    pub SecurityInformation: SECURITY_INFORMATION,
    pub _pad1: ULONG,
    pub Length: ULONG,
}

/// `Parameters.SetSecurity`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetSecurity {
    pub SecurityInformation: SECURITY_INFORMATION,
    pub SecurityDescriptor: PSECURITY_DESCRIPTOR,
}

/// `Parameters.MountVolume`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_MountVolume {
    pub Vpb: PVPB,
    pub DeviceObject: PDEVICE_OBJECT,
}

/// `Parameters.VerifyVolume`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_VerifyVolume {
    pub Vpb: PVPB,
    pub DeviceObject: PDEVICE_OBJECT,
}

/// `Parameters.Scsi`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Scsi {
    pub Srb: *mut SCSI_REQUEST_BLOCK,
}

/// `Parameters.QueryQuota`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryQuota {
    pub Length: ULONG,
    pub StartSid: PSID,
    pub SidList: PFILE_GET_QUOTA_INFORMATION,
    pub SidListLength: ULONG,
}

/// `Parameters.SetQuota`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetQuota {
    pub Length: ULONG,
}

/// `Parameters.QueryDeviceRelations`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryDeviceRelations {
    pub Type: DEVICE_RELATION_TYPE,
}

/// `Parameters.QueryInterface`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryInterface {
    pub InterfaceType: LPCGUID,
    pub Size: USHORT,
    pub Version: USHORT,
    pub Interface: PINTERFACE,
    pub InterfaceSpecificData: PVOID,
}

/// `Parameters.DeviceCapabilities`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_DeviceCapabilities {
    pub Capabilities: PDEVICE_CAPABILITIES,
}

/// `Parameters.FilterResourceRequirements`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_FilterResourceRequirements {
    pub IoResourceRequirementList: PIO_RESOURCE_REQUIREMENTS_LIST,
}

/// `Parameters.ReadWriteConfig`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_ReadWriteConfig {
    pub WhichSpace: ULONG,
    pub Buffer: PVOID,
    pub Offset: ULONG,
    pub _pad1: ULONG,
    pub Length: ULONG,
}

/// `Parameters.SetLock`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_SetLock {
    pub Lock: BOOLEAN,
}

/// `Parameters.QueryId`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryId {
    pub IdType: BUS_QUERY_ID_TYPE,
}

/// `Parameters.QueryDeviceText`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_QueryDeviceText {
    pub DeviceTextType: DEVICE_TEXT_TYPE,
    pub _pad1: ULONG,
    pub LocaleId: LCID,
}

/// `Parameters.UsageNotification`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_UsageNotification {
    pub InPath: BOOLEAN,
    pub Reserved: [BOOLEAN; 3],
    pub _pad1: ULONG,
    pub Type: DEVICE_USAGE_NOTIFICATION_TYPE,
}

/// `Parameters.WaitWake`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_WaitWake {
    pub PowerState: SYSTEM_POWER_STATE,
}

/// `Parameters.PowerSequence`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_PowerSequence {
    pub PowerSequence: PPOWER_SEQUENCE,
}

/// `Parameters.Power` (`IRP_MJ_POWER`).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Power {
    pub u: IO_STACK_LOCATION_Parameters_Power_u,
    pub _pad1: ULONG,
    pub Type: POWER_STATE_TYPE,
    pub _pad2: ULONG,
    pub State: POWER_STATE,
    pub _pad3: ULONG,
    pub ShutdownType: POWER_ACTION,
}

/// Anonymous member `u` of [`IO_STACK_LOCATION_Parameters_Power`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_Parameters_Power_u {
    pub SystemContext: ULONG,
    pub SystemPowerStateContext: SYSTEM_POWER_STATE_CONTEXT,
}

/// `SYSTEM_POWER_STATE_CONTEXT` (WDK 10.0.16299 layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub union SYSTEM_POWER_STATE_CONTEXT {
    pub s: SYSTEM_POWER_STATE_CONTEXT_s,
    pub ContextAsUlong: ULONG,
}

/// Anonymous member `s` of [`SYSTEM_POWER_STATE_CONTEXT`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SYSTEM_POWER_STATE_CONTEXT_s {
    /// Storage unit: `Reserved1:8`, `TargetSystemState:4`, `EffectiveSystemState:4`, `CurrentSystemState:4`,
    /// `IgnoreHibernationPath:1`, `PseudoTransition:1`, `KernelSoftReboot:1`, `Reserved2:9`.
    pub Bits: ULONG,
}
bitfields!(SYSTEM_POWER_STATE_CONTEXT_s {
    Bits: ULONG {
        Reserved1 / set_Reserved1: 0, 8;
        TargetSystemState / set_TargetSystemState: 8, 4;
        EffectiveSystemState / set_EffectiveSystemState: 12, 4;
        CurrentSystemState / set_CurrentSystemState: 16, 4;
        IgnoreHibernationPath / set_IgnoreHibernationPath: 20, 1;
        PseudoTransition / set_PseudoTransition: 21, 1;
        KernelSoftReboot / set_KernelSoftReboot: 22, 1;
        Reserved2 / set_Reserved2: 23, 9;
    }
});

/// `POWER_STATE`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union POWER_STATE {
    pub SystemState: SYSTEM_POWER_STATE,
    pub DeviceState: DEVICE_POWER_STATE,
}

/// `Parameters.StartDevice`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_StartDevice {
    pub AllocatedResources: PCM_RESOURCE_LIST,
    pub AllocatedResourcesTranslated: PCM_RESOURCE_LIST,
}

/// `Parameters.WMI`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_WMI {
    pub ProviderId: ULONG_PTR,
    pub DataPath: PVOID,
    pub BufferSize: ULONG,
    pub Buffer: PVOID,
}

/// `Parameters.Others`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_Parameters_Others {
    pub Argument1: PVOID,
    pub Argument2: PVOID,
    pub Argument3: PVOID,
    pub Argument4: PVOID,
}

// ---------------------------------------------------------------------------------------------------------
// Cancel-safe queues and remove locks.
// ---------------------------------------------------------------------------------------------------------

/// [`IO_CSQ`](https://learn.microsoft.com/windows-hardware/drivers/kernel/cancel-safe-irp-queues): a
/// cancel-safe IRP queue (`IoCsqInitialize`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_CSQ {
    pub Type: ULONG,
    pub CsqInsertIrp: PIO_CSQ_INSERT_IRP,
    pub CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
    pub CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP,
    pub CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
    pub CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
    pub CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
    pub ReservePointer: PVOID,
}
/// `IO_CSQ *`.
pub type PIO_CSQ = *mut IO_CSQ;

/// `IO_CSQ_IRP_CONTEXT`: lets `IoCsqRemoveIrp` find one particular queued IRP.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_CSQ_IRP_CONTEXT {
    pub Type: ULONG,
    pub Irp: PIRP,
    pub Csq: PIO_CSQ,
}
/// `IO_CSQ_IRP_CONTEXT *`.
pub type PIO_CSQ_IRP_CONTEXT = *mut IO_CSQ_IRP_CONTEXT;

/// `IO_REMOVE_LOCK_COMMON_BLOCK`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_REMOVE_LOCK_COMMON_BLOCK {
    pub Removed: BOOLEAN,
    pub Reserved: [BOOLEAN; 3],
    /// `volatile LONG IoCount`.
    pub IoCount: LONG,
    pub RemoveEvent: KEVENT,
}

/// `IO_REMOVE_LOCK` (free-build layout; the checked-build debug block is absent).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_REMOVE_LOCK {
    pub Common: IO_REMOVE_LOCK_COMMON_BLOCK,
}
/// `IO_REMOVE_LOCK *`.
pub type PIO_REMOVE_LOCK = *mut IO_REMOVE_LOCK;

union_debug!(
    IO_STATUS_BLOCK_u,
    KDEVICE_QUEUE_u,
    WAIT_CONTEXT_BLOCK_u,
    DEVICE_OBJECT_Queue,
    IRP_AssociatedIrp,
    IRP_Overlay,
    IRP_Overlay_AsynchronousParameters_u,
    IRP_Tail,
    IRP_Tail_Overlay_u,
    IRP_Tail_Overlay_s_u,
    IO_STACK_LOCATION_Parameters,
    IO_STACK_LOCATION_Parameters_SetFile_u,
    IO_STACK_LOCATION_Parameters_Power_u,
    SYSTEM_POWER_STATE_CONTEXT,
    POWER_STATE,
);

// ---------------------------------------------------------------------------------------------------------
// Header macros written as functions.
// ---------------------------------------------------------------------------------------------------------

/// `CTL_CODE(DeviceType, Function, Method, Access)`: builds an I/O control code.
#[inline]
pub const fn CTL_CODE(DeviceType: DEVICE_TYPE, Function: ULONG, Method: ULONG, Access: ULONG) -> ULONG {
    (DeviceType << 16) | (Access << 14) | (Function << 2) | Method
}

/// `DEVICE_TYPE_FROM_CTL_CODE(ControlCode)`.
#[inline]
pub const fn DEVICE_TYPE_FROM_CTL_CODE(ControlCode: ULONG) -> DEVICE_TYPE {
    (ControlCode & 0xffff_0000) >> 16
}

/// `METHOD_FROM_CTL_CODE(ControlCode)`.
#[inline]
pub const fn METHOD_FROM_CTL_CODE(ControlCode: ULONG) -> ULONG {
    ControlCode & 3
}
