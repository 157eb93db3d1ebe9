//! Every structure layout against the WDK: size, alignment, and the offset (and size, or bit position) of
//! every field path in `reference/wdk-10.0.16299/layout-ndis630.json`, plus the NDIS 6.89 types of
//! `ndis_sys::ndis689` against `reference/wdk-10.0.26100/layout-ndis689.json`.
//!
//! How it works: the `maps!` table below says, for each Rust type, which JSON path each of its fields
//! answers to and, for a field whose type has members of its own, which mapped type to descend into. An
//! anonymous C member has the JSON path `""` (the JSON flattens it away) and is descended into with the
//! same prefix. Bit-fields come from each type's `BITFIELDS` table. Flattening a type from the table gives
//! the set of `(path, offset, size | bit range)` the Rust layout actually has; every JSON row must appear in
//! it with the same numbers, and every Rust row must appear in the JSON (except the few members the
//! extractor does not list, in `NOT_IN_JSON`). Offsets and sizes are computed with `offset_of!` and
//! `size_of`, and a nested type named in the table must be the field's real type (checked by the compiler).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use ndis_sys::ndis689;
use ndis_sys::*;
use std::collections::{BTreeMap, BTreeSet};
use std::mem::{align_of, offset_of, size_of};

/// JSON rows a type map may leave unmapped. Bit-fields only, each with a reason. Empty: every bit-field
/// of every declared type is mapped through a `BITFIELDS` table.
const EXEMPT: &[(&str, &str, &str)] = &[];

/// Rust field paths the JSON does not list (prefix match), with the reason.
const NOT_IN_JSON: &[(&str, &str, &str)] = &[
    (
        "NET_BUFFER",
        "NetBufferHeader.NetBufferData",
        "NET_BUFFER_HEADER declares NET_BUFFER_DATA as an anonymous typedef'd member, which the extractor does not list",
    ),
    (
        "NET_BUFFER_LIST",
        "NetBufferListHeader.NetBufferListData",
        "NET_BUFFER_LIST_HEADER declares NET_BUFFER_LIST_DATA as an anonymous typedef'd member, which the extractor does not list",
    ),
];

/// The NDIS 6.89 types: JSON name in layout-ndis689.json → key of the Rust type in the map.
const NDIS689_TYPES: &[(&str, &str)] = &[
    ("NDIS_OID_REQUEST", "ndis689::NDIS_OID_REQUEST"),
    ("NET_BUFFER_LIST", "ndis689::NET_BUFFER_LIST"),
    ("NET_PNP_EVENT_NOTIFICATION", "ndis689::NET_PNP_EVENT_NOTIFICATION"),
    ("NET_BUFFER_LIST_POOL_PARAMETERS", "ndis689::NET_BUFFER_LIST_POOL_PARAMETERS"),
    ("NET_BUFFER_POOL_PARAMETERS", "ndis689::NET_BUFFER_POOL_PARAMETERS"),
];

/// One field of a mapped type.
struct Entry {
    /// JSON path component(s) relative to the type; `""` for an anonymous member.
    json: &'static str,
    offset: usize,
    size: usize,
    /// Map key of the field's type when it is descended into.
    nested: Option<String>,
}

/// A mapped Rust type.
struct TypeMap {
    size: usize,
    align: usize,
    entries: Vec<Entry>,
    bits: &'static [BitField],
}

/// Size of the field a (never called) projection closure points at.
fn field_size<T, F>(_projection: fn(*const T) -> *const F) -> usize {
    size_of::<F>()
}

/// Map keys are type paths as written, without spaces.
fn key(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

macro_rules! entry {
    ($ty:ty, $json:expr, $($f:ident).+) => {
        Entry {
            json: $json,
            offset: offset_of!($ty, $($f).+),
            size: field_size::<$ty, _>(|p| {
                // SAFETY: never called; only the closure's type is used.
                unsafe { &raw const (*p).$($f).+ }
            }),
            nested: None,
        }
    };
    ($ty:ty, $json:expr, $($f:ident).+ => $n:ty) => {
        Entry {
            json: $json,
            offset: offset_of!($ty, $($f).+),
            size: field_size::<$ty, $n>(|p| {
                // SAFETY: never called; only the closure's type (which must name the field's type) is used.
                unsafe { &raw const (*p).$($f).+ }
            }),
            nested: Some(key(stringify!($n))),
        }
    };
}

/// Entries: `Field,` (JSON name = field name), `Field: Type,` (descend into `Type`),
/// `"json" => path.to.field,` and `"json" => path.to.field: Type,`.
macro_rules! entries {
    (@acc [$($acc:expr,)*] $ty:ty ;) => { vec![$($acc,)*] };
    (@acc [$($acc:expr,)*] $ty:ty ; $json:literal => $($f:ident).+ , $($rest:tt)*) => {
        entries!(@acc [$($acc,)* entry!($ty, $json, $($f).+),] $ty ; $($rest)*)
    };
    (@acc [$($acc:expr,)*] $ty:ty ; $json:literal => $($f:ident).+ : $n:ty , $($rest:tt)*) => {
        entries!(@acc [$($acc,)* entry!($ty, $json, $($f).+ => $n),] $ty ; $($rest)*)
    };
    (@acc [$($acc:expr,)*] $ty:ty ; $f:ident , $($rest:tt)*) => {
        entries!(@acc [$($acc,)* entry!($ty, stringify!($f), $f),] $ty ; $($rest)*)
    };
    (@acc [$($acc:expr,)*] $ty:ty ; $f:ident : $n:ty , $($rest:tt)*) => {
        entries!(@acc [$($acc,)* entry!($ty, stringify!($f), $f => $n),] $ty ; $($rest)*)
    };
}

macro_rules! bits_of {
    ($ty:ty) => {
        &[]
    };
    ($ty:ty, bits) => {
        <$ty>::BITFIELDS
    };
}

macro_rules! maps {
    ($( $(#[$b:ident])? $ty:ty { $($body:tt)* } )*) => {
        fn lookup(k: &str) -> Option<TypeMap> {
            $(
                if k == key(stringify!($ty)) {
                    return Some(TypeMap {
                        size: size_of::<$ty>(),
                        align: align_of::<$ty>(),
                        entries: entries!(@acc [] $ty ; $($body)*),
                        bits: bits_of!($ty $(, $b)?),
                    });
                }
            )*
            None
        }

        fn all_keys() -> Vec<String> {
            vec![$(key(stringify!($ty)),)*]
        }
    };
}

maps! {
    // ---------------------------------------------------------------------------------------- types
    LIST_ENTRY { Flink, Blink, }
    SINGLE_LIST_ENTRY { Next, }
    UNICODE_STRING { Length, MaximumLength, Buffer, }
    NDIS_STRING { Length, MaximumLength, Buffer, }
    LARGE_INTEGER { "" => s: LARGE_INTEGER_s, u: LARGE_INTEGER_s, QuadPart, }
    LARGE_INTEGER_s { LowPart, HighPart, }
    ULARGE_INTEGER { "" => s: ULARGE_INTEGER_s, u: ULARGE_INTEGER_s, QuadPart, }
    ULARGE_INTEGER_s { LowPart, HighPart, }
    SLIST_HEADER { "" => s: SLIST_HEADER_s, HeaderX64: SLIST_HEADER_HeaderX64, }
    SLIST_HEADER_s { Alignment, Region, }
    #[bits] SLIST_HEADER_HeaderX64 {}
    GUID { Data1, Data2, Data3, Data4, }
    NET_LUID_LH { Value, Info: NET_LUID_LH_Info, }
    #[bits] NET_LUID_LH_Info {}

    // ------------------------------------------------------------------------------------------- ke
    DISPATCHER_HEADER { "" => u: DISPATCHER_HEADER_u, SignalState, WaitListHead: LIST_ENTRY, }
    DISPATCHER_HEADER_u {
        "" => u: DISPATCHER_HEADER_u_u,
        "" => s1: DISPATCHER_HEADER_u_s1,
        "" => s2: DISPATCHER_HEADER_u_s2,
        "" => s3: DISPATCHER_HEADER_u_s3,
        "" => s4: DISPATCHER_HEADER_u_s4,
        "" => s5: DISPATCHER_HEADER_u_s5,
        "" => s6: DISPATCHER_HEADER_u_s6,
    }
    DISPATCHER_HEADER_u_u { Lock, LockNV, }
    DISPATCHER_HEADER_u_s1 { Type, Signalling, Size, Reserved1, }
    DISPATCHER_HEADER_u_s2 {
        TimerType,
        "" => u1: DISPATCHER_HEADER_u_s2_u1,
        Hand,
        "" => u2: DISPATCHER_HEADER_u_s2_u2,
    }
    DISPATCHER_HEADER_u_s2_u1 { TimerControlFlags, "" => s: DISPATCHER_HEADER_u_s2_u1_s, }
    #[bits] DISPATCHER_HEADER_u_s2_u1_s {}
    DISPATCHER_HEADER_u_s2_u2 { TimerMiscFlags, "" => s: DISPATCHER_HEADER_u_s2_u2_s, }
    #[bits] DISPATCHER_HEADER_u_s2_u2_s {}
    DISPATCHER_HEADER_u_s3 {
        Timer2Type,
        "" => u: DISPATCHER_HEADER_u_s3_u,
        Timer2ComponentId,
        Timer2RelativeId,
    }
    DISPATCHER_HEADER_u_s3_u { Timer2Flags, "" => s: DISPATCHER_HEADER_u_s3_u_s, }
    #[bits] DISPATCHER_HEADER_u_s3_u_s {}
    DISPATCHER_HEADER_u_s4 { QueueType, "" => u: DISPATCHER_HEADER_u_s4_u, QueueSize, QueueReserved, }
    DISPATCHER_HEADER_u_s4_u { QueueControlFlags, "" => s: DISPATCHER_HEADER_u_s4_u_s, }
    #[bits] DISPATCHER_HEADER_u_s4_u_s {}
    DISPATCHER_HEADER_u_s5 {
        ThreadType,
        ThreadReserved,
        "" => u1: DISPATCHER_HEADER_u_s5_u1,
        "" => u2: DISPATCHER_HEADER_u_s5_u2,
    }
    DISPATCHER_HEADER_u_s5_u1 { ThreadControlFlags, "" => s: DISPATCHER_HEADER_u_s5_u1_s, }
    #[bits] DISPATCHER_HEADER_u_s5_u1_s {}
    DISPATCHER_HEADER_u_s5_u2 { DebugActive, "" => s: DISPATCHER_HEADER_u_s5_u2_s, }
    #[bits] DISPATCHER_HEADER_u_s5_u2_s {}
    DISPATCHER_HEADER_u_s6 { MutantType, MutantSize, DpcActive, MutantReserved, }
    KEVENT { Header: DISPATCHER_HEADER, }
    KMUTEX { Header: DISPATCHER_HEADER, MutantListEntry: LIST_ENTRY, OwnerThread, Abandoned, ApcDisable, }
    KSEMAPHORE { Header: DISPATCHER_HEADER, Limit, }
    KTIMER {
        Header: DISPATCHER_HEADER,
        DueTime: ULARGE_INTEGER,
        TimerListEntry: LIST_ENTRY,
        Dpc,
        Processor,
        Period,
    }
    KDPC {
        "" => u: KDPC_u,
        DpcListEntry: SINGLE_LIST_ENTRY,
        ProcessorHistory,
        DeferredRoutine,
        DeferredContext,
        SystemArgument1,
        SystemArgument2,
        DpcData,
    }
    KDPC_u { TargetInfoAsUlong, "" => s: KDPC_u_s, }
    KDPC_u_s { Type, Importance, Number, }
    KAPC {
        Type,
        SpareByte0,
        Size,
        SpareByte1,
        SpareLong0,
        Thread,
        ApcListEntry: LIST_ENTRY,
        Reserved,
        NormalContext,
        SystemArgument1,
        SystemArgument2,
        ApcStateIndex,
        ApcMode,
        Inserted,
    }
    KSPIN_LOCK_QUEUE { Next, Lock, }
    KLOCK_QUEUE_HANDLE { LockQueue: KSPIN_LOCK_QUEUE, OldIrql, }
    FAST_MUTEX { Count, Owner, Contention, Event: KEVENT, OldIrql, }
    WORK_QUEUE_ITEM { List: LIST_ENTRY, WorkerRoutine, Parameter, }

    // ------------------------------------------------------------------------------------------- io
    MDL { Next, Size, MdlFlags, Process, MappedSystemVa, StartVa, ByteCount, ByteOffset, }
    IO_STATUS_BLOCK { "" => u: IO_STATUS_BLOCK_u, Information, }
    IO_STATUS_BLOCK_u { Status, Pointer, }
    DRIVER_EXTENSION { DriverObject, AddDevice, Count, ServiceKeyName: UNICODE_STRING, }
    DRIVER_OBJECT {
        Type,
        Size,
        DeviceObject,
        Flags,
        DriverStart,
        DriverSize,
        DriverSection,
        DriverExtension,
        DriverName: UNICODE_STRING,
        HardwareDatabase,
        FastIoDispatch,
        DriverInit,
        DriverStartIo,
        DriverUnload,
        MajorFunction,
    }
    KDEVICE_QUEUE_ENTRY { DeviceListEntry: LIST_ENTRY, SortKey, Inserted, }
    KDEVICE_QUEUE { Type, Size, DeviceListHead: LIST_ENTRY, Lock, "" => u: KDEVICE_QUEUE_u, }
    KDEVICE_QUEUE_u { Busy, "" => s: KDEVICE_QUEUE_u_s, }
    #[bits] KDEVICE_QUEUE_u_s {}
    WAIT_CONTEXT_BLOCK {
        "" => u: WAIT_CONTEXT_BLOCK_u,
        DeviceRoutine,
        DeviceContext,
        NumberOfMapRegisters,
        DeviceObject,
        CurrentIrp,
        BufferChainingDpc,
    }
    WAIT_CONTEXT_BLOCK_u { WaitQueueEntry: KDEVICE_QUEUE_ENTRY, "" => s: WAIT_CONTEXT_BLOCK_u_s, }
    #[bits] WAIT_CONTEXT_BLOCK_u_s { DmaWaitEntry: LIST_ENTRY, NumberOfChannels, }
    DEVICE_OBJECT {
        Type,
        Size,
        ReferenceCount,
        DriverObject,
        NextDevice,
        AttachedDevice,
        CurrentIrp,
        Timer,
        Flags,
        Characteristics,
        Vpb,
        DeviceExtension,
        DeviceType,
        StackSize,
        Queue: DEVICE_OBJECT_Queue,
        AlignmentRequirement,
        DeviceQueue: KDEVICE_QUEUE,
        Dpc: KDPC,
        ActiveThreadCount,
        SecurityDescriptor,
        DeviceLock: KEVENT,
        SectorSize,
        Spare1,
        DeviceObjectExtension,
        Reserved,
    }
    DEVICE_OBJECT_Queue { ListEntry: LIST_ENTRY, Wcb: WAIT_CONTEXT_BLOCK, }
    FILE_OBJECT {
        Type,
        Size,
        DeviceObject,
        Vpb,
        FsContext,
        FsContext2,
        SectionObjectPointer,
        PrivateCacheMap,
        FinalStatus,
        RelatedFileObject,
        LockOperation,
        DeletePending,
        ReadAccess,
        WriteAccess,
        DeleteAccess,
        SharedRead,
        SharedWrite,
        SharedDelete,
        Flags,
        FileName: UNICODE_STRING,
        CurrentByteOffset: LARGE_INTEGER,
        Waiters,
        Busy,
        LastLock,
        Lock: KEVENT,
        Event: KEVENT,
        CompletionContext,
        IrpListLock,
        IrpList: LIST_ENTRY,
        FileObjectExtension,
    }
    IRP {
        Type,
        Size,
        MdlAddress,
        Flags,
        AssociatedIrp: IRP_AssociatedIrp,
        ThreadListEntry: LIST_ENTRY,
        IoStatus: IO_STATUS_BLOCK,
        RequestorMode,
        PendingReturned,
        StackCount,
        CurrentLocation,
        Cancel,
        CancelIrql,
        ApcEnvironment,
        AllocationFlags,
        UserIosb,
        UserEvent,
        Overlay: IRP_Overlay,
        CancelRoutine,
        UserBuffer,
        Tail: IRP_Tail,
    }
    IRP_AssociatedIrp { MasterIrp, IrpCount, SystemBuffer, }
    IRP_Overlay {
        AsynchronousParameters: IRP_Overlay_AsynchronousParameters,
        AllocationSize: LARGE_INTEGER,
    }
    IRP_Overlay_AsynchronousParameters { "" => u: IRP_Overlay_AsynchronousParameters_u, UserApcContext, }
    IRP_Overlay_AsynchronousParameters_u { UserApcRoutine, IssuingProcess, }
    IRP_Tail { Overlay: IRP_Tail_Overlay, Apc: KAPC, CompletionKey, }
    IRP_Tail_Overlay {
        "" => u: IRP_Tail_Overlay_u,
        Thread,
        AuxiliaryBuffer,
        "" => s: IRP_Tail_Overlay_s,
        OriginalFileObject,
    }
    IRP_Tail_Overlay_u { DeviceQueueEntry: KDEVICE_QUEUE_ENTRY, "" => s: IRP_Tail_Overlay_u_s, }
    IRP_Tail_Overlay_u_s { DriverContext, }
    IRP_Tail_Overlay_s { ListEntry: LIST_ENTRY, "" => u: IRP_Tail_Overlay_s_u, }
    IRP_Tail_Overlay_s_u { CurrentStackLocation, PacketType, }
    IO_STACK_LOCATION {
        MajorFunction,
        MinorFunction,
        Flags,
        Control,
        Parameters: IO_STACK_LOCATION_Parameters,
        DeviceObject,
        FileObject,
        CompletionRoutine,
        Context,
    }
    IO_STACK_LOCATION_Parameters {
        Create: IO_STACK_LOCATION_Parameters_Create,
        CreatePipe: IO_STACK_LOCATION_Parameters_CreatePipe,
        CreateMailslot: IO_STACK_LOCATION_Parameters_CreateMailslot,
        Read: IO_STACK_LOCATION_Parameters_Read,
        Write: IO_STACK_LOCATION_Parameters_Write,
        QueryDirectory: IO_STACK_LOCATION_Parameters_QueryDirectory,
        NotifyDirectory: IO_STACK_LOCATION_Parameters_NotifyDirectory,
        NotifyDirectoryEx: IO_STACK_LOCATION_Parameters_NotifyDirectoryEx,
        QueryFile: IO_STACK_LOCATION_Parameters_QueryFile,
        SetFile: IO_STACK_LOCATION_Parameters_SetFile,
        QueryEa: IO_STACK_LOCATION_Parameters_QueryEa,
        SetEa: IO_STACK_LOCATION_Parameters_SetEa,
        QueryVolume: IO_STACK_LOCATION_Parameters_QueryVolume,
        SetVolume: IO_STACK_LOCATION_Parameters_SetVolume,
        FileSystemControl: IO_STACK_LOCATION_Parameters_FileSystemControl,
        LockControl: IO_STACK_LOCATION_Parameters_LockControl,
        DeviceIoControl: IO_STACK_LOCATION_Parameters_DeviceIoControl,
        QuerySecurity: IO_STACK_LOCATION_Parameters_QuerySecurity,
        SetSecurity: IO_STACK_LOCATION_Parameters_SetSecurity,
        MountVolume: IO_STACK_LOCATION_Parameters_MountVolume,
        VerifyVolume: IO_STACK_LOCATION_Parameters_VerifyVolume,
        Scsi: IO_STACK_LOCATION_Parameters_Scsi,
        QueryQuota: IO_STACK_LOCATION_Parameters_QueryQuota,
        SetQuota: IO_STACK_LOCATION_Parameters_SetQuota,
        QueryDeviceRelations: IO_STACK_LOCATION_Parameters_QueryDeviceRelations,
        QueryInterface: IO_STACK_LOCATION_Parameters_QueryInterface,
        DeviceCapabilities: IO_STACK_LOCATION_Parameters_DeviceCapabilities,
        FilterResourceRequirements: IO_STACK_LOCATION_Parameters_FilterResourceRequirements,
        ReadWriteConfig: IO_STACK_LOCATION_Parameters_ReadWriteConfig,
        SetLock: IO_STACK_LOCATION_Parameters_SetLock,
        QueryId: IO_STACK_LOCATION_Parameters_QueryId,
        QueryDeviceText: IO_STACK_LOCATION_Parameters_QueryDeviceText,
        UsageNotification: IO_STACK_LOCATION_Parameters_UsageNotification,
        WaitWake: IO_STACK_LOCATION_Parameters_WaitWake,
        PowerSequence: IO_STACK_LOCATION_Parameters_PowerSequence,
        Power: IO_STACK_LOCATION_Parameters_Power,
        StartDevice: IO_STACK_LOCATION_Parameters_StartDevice,
        WMI: IO_STACK_LOCATION_Parameters_WMI,
        Others: IO_STACK_LOCATION_Parameters_Others,
    }
    IO_STACK_LOCATION_Parameters_Create { SecurityContext, Options, FileAttributes, ShareAccess, EaLength, }
    IO_STACK_LOCATION_Parameters_CreatePipe { SecurityContext, Options, Reserved, ShareAccess, Parameters, }
    IO_STACK_LOCATION_Parameters_CreateMailslot { SecurityContext, Options, Reserved, ShareAccess, Parameters, }
    IO_STACK_LOCATION_Parameters_Read { Length, Key, ByteOffset: LARGE_INTEGER, }
    IO_STACK_LOCATION_Parameters_Write { Length, Key, ByteOffset: LARGE_INTEGER, }
    IO_STACK_LOCATION_Parameters_QueryDirectory { Length, FileName, FileInformationClass, FileIndex, }
    IO_STACK_LOCATION_Parameters_NotifyDirectory { Length, CompletionFilter, }
    IO_STACK_LOCATION_Parameters_NotifyDirectoryEx { Length, CompletionFilter, DirectoryNotifyInformationClass, }
    IO_STACK_LOCATION_Parameters_QueryFile { Length, FileInformationClass, }
    IO_STACK_LOCATION_Parameters_SetFile {
        Length,
        FileInformationClass,
        FileObject,
        "" => u: IO_STACK_LOCATION_Parameters_SetFile_u,
    }
    IO_STACK_LOCATION_Parameters_SetFile_u {
        "" => s: IO_STACK_LOCATION_Parameters_SetFile_u_s,
        ClusterCount,
        DeleteHandle,
    }
    IO_STACK_LOCATION_Parameters_SetFile_u_s { ReplaceIfExists, AdvanceOnly, }
    IO_STACK_LOCATION_Parameters_QueryEa { Length, EaList, EaListLength, EaIndex, }
    IO_STACK_LOCATION_Parameters_SetEa { Length, }
    IO_STACK_LOCATION_Parameters_QueryVolume { Length, FsInformationClass, }
    IO_STACK_LOCATION_Parameters_SetVolume { Length, FsInformationClass, }
    IO_STACK_LOCATION_Parameters_FileSystemControl {
        OutputBufferLength,
        InputBufferLength,
        FsControlCode,
        Type3InputBuffer,
    }
    IO_STACK_LOCATION_Parameters_LockControl { Length, Key, ByteOffset: LARGE_INTEGER, }
    IO_STACK_LOCATION_Parameters_DeviceIoControl {
        OutputBufferLength,
        InputBufferLength,
        IoControlCode,
        Type3InputBuffer,
    }
    IO_STACK_LOCATION_Parameters_QuerySecurity { SecurityInformation, Length, }
    IO_STACK_LOCATION_Parameters_SetSecurity { SecurityInformation, SecurityDescriptor, }
    IO_STACK_LOCATION_Parameters_MountVolume { Vpb, DeviceObject, }
    IO_STACK_LOCATION_Parameters_VerifyVolume { Vpb, DeviceObject, }
    IO_STACK_LOCATION_Parameters_Scsi { Srb, }
    IO_STACK_LOCATION_Parameters_QueryQuota { Length, StartSid, SidList, SidListLength, }
    IO_STACK_LOCATION_Parameters_SetQuota { Length, }
    IO_STACK_LOCATION_Parameters_QueryDeviceRelations { Type, }
    IO_STACK_LOCATION_Parameters_QueryInterface { InterfaceType, Size, Version, Interface, InterfaceSpecificData, }
    IO_STACK_LOCATION_Parameters_DeviceCapabilities { Capabilities, }
    IO_STACK_LOCATION_Parameters_FilterResourceRequirements { IoResourceRequirementList, }
    IO_STACK_LOCATION_Parameters_ReadWriteConfig { WhichSpace, Buffer, Offset, Length, }
    IO_STACK_LOCATION_Parameters_SetLock { Lock, }
    IO_STACK_LOCATION_Parameters_QueryId { IdType, }
    IO_STACK_LOCATION_Parameters_QueryDeviceText { DeviceTextType, LocaleId, }
    IO_STACK_LOCATION_Parameters_UsageNotification { InPath, Reserved, Type, }
    IO_STACK_LOCATION_Parameters_WaitWake { PowerState, }
    IO_STACK_LOCATION_Parameters_PowerSequence { PowerSequence, }
    IO_STACK_LOCATION_Parameters_Power {
        "" => u: IO_STACK_LOCATION_Parameters_Power_u,
        Type,
        State: POWER_STATE,
        ShutdownType,
    }
    IO_STACK_LOCATION_Parameters_Power_u {
        SystemContext,
        SystemPowerStateContext: SYSTEM_POWER_STATE_CONTEXT,
    }
    SYSTEM_POWER_STATE_CONTEXT { "" => s: SYSTEM_POWER_STATE_CONTEXT_s, ContextAsUlong, }
    #[bits] SYSTEM_POWER_STATE_CONTEXT_s {}
    POWER_STATE { SystemState, DeviceState, }
    IO_STACK_LOCATION_Parameters_StartDevice { AllocatedResources, AllocatedResourcesTranslated, }
    IO_STACK_LOCATION_Parameters_WMI { ProviderId, DataPath, BufferSize, Buffer, }
    IO_STACK_LOCATION_Parameters_Others { Argument1, Argument2, Argument3, Argument4, }
    IO_CSQ {
        Type,
        CsqInsertIrp,
        CsqRemoveIrp,
        CsqPeekNextIrp,
        CsqAcquireLock,
        CsqReleaseLock,
        CsqCompleteCanceledIrp,
        ReservePointer,
    }
    IO_REMOVE_LOCK { Common: IO_REMOVE_LOCK_COMMON_BLOCK, }
    IO_REMOVE_LOCK_COMMON_BLOCK { Removed, Reserved, IoCount, RemoveEvent: KEVENT, }

    // ----------------------------------------------------------------------------------------- ndis
    NDIS_OBJECT_HEADER { Type, Revision, Size, }
    NDIS_SPIN_LOCK { SpinLock, OldIrql, }
    NDIS_EVENT { Event: KEVENT, }
    LOCK_STATE_EX { OldIrql, LockState, Flags, }
    NDIS_GENERIC_OBJECT { Header: NDIS_OBJECT_HEADER, Caller, CallersCaller, DriverObject, }
    NDIS_PROTOCOL_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER,
        MajorNdisVersion,
        MinorNdisVersion,
        MajorDriverVersion,
        MinorDriverVersion,
        Flags,
        Name: UNICODE_STRING,
        SetOptionsHandler,
        BindAdapterHandlerEx,
        UnbindAdapterHandlerEx,
        OpenAdapterCompleteHandlerEx,
        CloseAdapterCompleteHandlerEx,
        NetPnPEventHandler,
        UninstallHandler,
        OidRequestCompleteHandler,
        StatusHandlerEx,
        ReceiveNetBufferListsHandler,
        SendNetBufferListsCompleteHandler,
        DirectOidRequestCompleteHandler,
    }
    NDIS_BIND_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        ProtocolSection,
        AdapterName,
        PhysicalDeviceObject,
        MediaType,
        MtuSize,
        MaxXmitLinkSpeed,
        XmitLinkSpeed,
        MaxRcvLinkSpeed,
        RcvLinkSpeed,
        MediaConnectState,
        MediaDuplexState,
        LookaheadSize,
        PowerManagementCapabilities,
        SupportedPacketFilters,
        MaxMulticastListSize,
        MacAddressLength,
        CurrentMacAddress,
        PhysicalMediumType,
        RcvScaleCapabilities,
        BoundIfNetluid: NET_LUID_LH,
        BoundIfIndex,
        LowestIfNetluid: NET_LUID_LH,
        LowestIfIndex,
        AccessType,
        DirectionType,
        ConnectionType,
        IfType,
        IfConnectorPresent,
        ActivePorts,
        DataBackFillSize,
        ContextBackFillSize,
        MacOptions,
        CompartmentId,
        DefaultOffloadConfiguration,
        TcpConnectionOffloadCapabilities,
        BoundAdapterName,
        HDSplitCurrentConfig,
        ReceiveFilterCapabilities,
        PowerManagementCapabilitiesEx,
        NicSwitchCapabilities,
        NDKEnabled,
        NDKCapabilities,
        SriovCapabilities,
        NicSwitchArray,
    }
    NDIS_OPEN_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        AdapterName,
        MediumArray,
        MediumArraySize,
        SelectedMediumIndex,
        FrameTypeArray,
        FrameTypeArraySize,
    }
    NDIS_PROTOCOL_RESTART_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        FilterModuleNameBuffer,
        FilterModuleNameBufferLength,
        RestartAttributes,
        BoundIfIndex,
        BoundIfNetluid: NET_LUID_LH,
        Flags,
    }
    NDIS_RESTART_ATTRIBUTES { Next, Oid, DataLength, Data, }
    NDIS_RESTART_GENERAL_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER,
        MtuSize,
        MaxXmitLinkSpeed,
        MaxRcvLinkSpeed,
        LookaheadSize,
        MacOptions,
        SupportedPacketFilters,
        MaxMulticastListSize,
        RecvScaleCapabilities,
        AccessType,
        Flags,
        ConnectionType,
        SupportedStatistics,
        DataBackFillSize,
        ContextBackFillSize,
        SupportedOidList,
        SupportedOidListLength,
        MaxLookaheadSizeAccessed,
    }
    NET_PNP_EVENT {
        NetEvent,
        Buffer,
        BufferLength,
        NdisReserved,
        TransportReserved,
        TdiReserved,
        TdiClientReserved,
    }
    NET_PNP_EVENT_NOTIFICATION { Header: NDIS_OBJECT_HEADER, PortNumber, NetPnPEvent: NET_PNP_EVENT, Flags, }
    NDIS_STATUS_INDICATION {
        Header: NDIS_OBJECT_HEADER,
        SourceHandle,
        PortNumber,
        StatusCode,
        Flags,
        DestinationHandle,
        RequestId,
        StatusBuffer,
        StatusBufferSize,
        Guid: GUID,
        NdisReserved,
    }
    NDIS_LINK_STATE {
        Header: NDIS_OBJECT_HEADER,
        MediaConnectState,
        MediaDuplexState,
        XmitLinkSpeed,
        RcvLinkSpeed,
        PauseFunctions,
        AutoNegotiationFlags,
    }
    NDIS_OID_REQUEST {
        Header: NDIS_OBJECT_HEADER,
        RequestType,
        PortNumber,
        Timeout,
        RequestId,
        RequestHandle,
        DATA: NDIS_OID_REQUEST_DATA,
        NdisReserved,
        MiniportReserved,
        SourceReserved,
        SupportedRevision,
        Reserved1,
        Reserved2,
    }
    NDIS_OID_REQUEST_DATA {
        QUERY_INFORMATION: NDIS_OID_REQUEST_DATA_QUERY_INFORMATION,
        SET_INFORMATION: NDIS_OID_REQUEST_DATA_SET_INFORMATION,
        METHOD_INFORMATION: NDIS_OID_REQUEST_DATA_METHOD_INFORMATION,
    }
    NDIS_OID_REQUEST_DATA_QUERY_INFORMATION {
        Oid,
        InformationBuffer,
        InformationBufferLength,
        BytesWritten,
        BytesNeeded,
    }
    NDIS_OID_REQUEST_DATA_SET_INFORMATION { Oid, InformationBuffer, InformationBufferLength, BytesRead, BytesNeeded, }
    NDIS_OID_REQUEST_DATA_METHOD_INFORMATION {
        Oid,
        InformationBuffer,
        InputBufferLength,
        OutputBufferLength,
        MethodId,
        BytesWritten,
        BytesRead,
        BytesNeeded,
    }
    NET_BUFFER_DATA { Next, CurrentMdl, CurrentMdlOffset, "" => u: NET_BUFFER_DATA_u, MdlChain, DataOffset, }
    NET_BUFFER_DATA_u { DataLength, stDataLength, }
    NET_BUFFER_HEADER { NetBufferData: NET_BUFFER_DATA, Link: SLIST_HEADER, }
    NET_BUFFER {
        "" => u1: NET_BUFFER_u1,
        ChecksumBias,
        Reserved,
        NdisPoolHandle,
        NdisReserved,
        ProtocolReserved,
        MiniportReserved,
        DataPhysicalAddress: LARGE_INTEGER,
        "" => u2: NET_BUFFER_u2,
    }
    NET_BUFFER_u1 { "" => s: NET_BUFFER_DATA, Link: SLIST_HEADER, NetBufferHeader: NET_BUFFER_HEADER, }
    NET_BUFFER_u2 { SharedMemoryInfo, ScatterGatherList, }
    NET_BUFFER_LIST_DATA { Next, FirstNetBuffer, }
    NET_BUFFER_LIST_HEADER { NetBufferListData: NET_BUFFER_LIST_DATA, Link: SLIST_HEADER, }
    NET_BUFFER_LIST_CONTEXT { Next, Size, Offset, ContextData, }
    NET_BUFFER_LIST {
        "" => u1: NET_BUFFER_LIST_u1,
        Context,
        ParentNetBufferList,
        NdisPoolHandle,
        NdisReserved,
        ProtocolReserved,
        MiniportReserved,
        Scratch,
        SourceHandle,
        NblFlags,
        ChildRefCount,
        Flags,
        "" => u2: NET_BUFFER_LIST_u2,
        NetBufferListInfo,
    }
    NET_BUFFER_LIST_u1 {
        "" => s: NET_BUFFER_LIST_DATA,
        Link: SLIST_HEADER,
        NetBufferListHeader: NET_BUFFER_LIST_HEADER,
    }
    NET_BUFFER_LIST_u2 { Status, NdisReserved2, }
    NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        ProtocolId,
        fAllocateNetBuffer,
        ContextSize,
        PoolTag,
        DataSize,
    }
    NET_BUFFER_POOL_PARAMETERS { Header: NDIS_OBJECT_HEADER, PoolTag, DataSize, }
    NDIS_NET_BUFFER_LIST_8021Q_INFO {
        TagHeader: NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader,
        WLanTagHeader: NDIS_NET_BUFFER_LIST_8021Q_INFO_WLanTagHeader,
        Value,
    }
    #[bits] NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader {}
    #[bits] NDIS_NET_BUFFER_LIST_8021Q_INFO_WLanTagHeader {}
    NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO {
        Transmit: NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Transmit,
        Receive: NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive,
        Value,
    }
    #[bits] NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Transmit {}
    #[bits] NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive {}
    NDIS_RECEIVE_SCALE_CAPABILITIES {
        Header: NDIS_OBJECT_HEADER,
        CapabilitiesFlags,
        NumberOfInterruptMessages,
        NumberOfReceiveQueues,
        NumberOfIndirectionTableEntries,
    }
    NDIS_PM_CAPABILITIES {
        Header: NDIS_OBJECT_HEADER,
        Flags,
        SupportedWoLPacketPatterns,
        NumTotalWoLPatterns,
        MaxWoLPatternSize,
        MaxWoLPatternOffset,
        MaxWoLPacketSaveBuffer,
        SupportedProtocolOffloads,
        NumArpOffloadIPv4Addresses,
        NumNSOffloadIPv6Addresses,
        MinMagicPacketWakeUp,
        MinPatternWakeUp,
        MinLinkChangeWakeUp,
        SupportedWakeUpEvents,
        MediaSpecificWakeUpEvents,
    }
    NDIS_PORT_AUTHENTICATION_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        SendControlState,
        RcvControlState,
        SendAuthorizationState,
        RcvAuthorizationState,
    }
    NDIS_OFFLOAD {
        Header: NDIS_OBJECT_HEADER,
        Checksum: NDIS_TCP_IP_CHECKSUM_OFFLOAD,
        LsoV1: NDIS_TCP_LARGE_SEND_OFFLOAD_V1,
        IPsecV1: NDIS_IPSEC_OFFLOAD_V1,
        LsoV2: NDIS_TCP_LARGE_SEND_OFFLOAD_V2,
        Flags,
        IPsecV2: NDIS_IPSEC_OFFLOAD_V2,
        Rsc: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD,
        EncapsulatedPacketTaskOffloadGre: NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD,
    }
    NDIS_TCP_IP_CHECKSUM_OFFLOAD {
        IPv4Transmit: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Transmit,
        IPv4Receive: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Receive,
        IPv6Transmit: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Transmit,
        IPv6Receive: NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Receive,
    }
    #[bits] NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Transmit { Encapsulation, }
    #[bits] NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv4Receive { Encapsulation, }
    #[bits] NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Transmit { Encapsulation, }
    #[bits] NDIS_TCP_IP_CHECKSUM_OFFLOAD_IPv6Receive { Encapsulation, }
    NDIS_TCP_LARGE_SEND_OFFLOAD_V1 { IPv4: NDIS_TCP_LARGE_SEND_OFFLOAD_V1_IPv4, }
    #[bits] NDIS_TCP_LARGE_SEND_OFFLOAD_V1_IPv4 { Encapsulation, MaxOffLoadSize, MinSegmentCount, }
    NDIS_IPSEC_OFFLOAD_V1 {
        Supported: NDIS_IPSEC_OFFLOAD_V1_Supported,
        IPv4AH: NDIS_IPSEC_OFFLOAD_V1_IPv4AH,
        IPv4ESP: NDIS_IPSEC_OFFLOAD_V1_IPv4ESP,
    }
    NDIS_IPSEC_OFFLOAD_V1_Supported { Encapsulation, AhEspCombined, TransportTunnelCombined, IPv4Options, Flags, }
    #[bits] NDIS_IPSEC_OFFLOAD_V1_IPv4AH {}
    #[bits] NDIS_IPSEC_OFFLOAD_V1_IPv4ESP {}
    NDIS_TCP_LARGE_SEND_OFFLOAD_V2 {
        IPv4: NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv4,
        IPv6: NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv6,
    }
    NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv4 { Encapsulation, MaxOffLoadSize, MinSegmentCount, }
    #[bits] NDIS_TCP_LARGE_SEND_OFFLOAD_V2_IPv6 { Encapsulation, MaxOffLoadSize, MinSegmentCount, }
    NDIS_IPSEC_OFFLOAD_V2 {
        Encapsulation,
        IPv6Supported,
        IPv4Options,
        IPv6NonIPsecExtensionHeaders,
        Ah,
        Esp,
        AhEspCombined,
        Transport,
        Tunnel,
        TransportTunnelCombined,
        LsoSupported,
        ExtendedSequenceNumbers,
        UdpEsp,
        AuthenticationAlgorithms,
        EncryptionAlgorithms,
        SaOffloadCapacity,
    }
    NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD {
        IPv4: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv4,
        IPv6: NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv6,
    }
    NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv4 { Enabled, }
    NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD_IPv6 { Enabled, }
    #[bits] NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD { MaxHeaderSizeSupported, }
    NDIS_TIMER_CHARACTERISTICS { Header: NDIS_OBJECT_HEADER, AllocationTag, TimerFunction, FunctionContext, }

    // -------------------------------------------------------------------------------------- ndis689
    ndis689::NDIS_OID_REQUEST {
        Header: NDIS_OBJECT_HEADER,
        RequestType,
        PortNumber,
        Timeout,
        RequestId,
        RequestHandle,
        DATA: ndis689::NDIS_OID_REQUEST_DATA,
        NdisReserved,
        MiniportReserved,
        SourceReserved,
        SupportedRevision,
        Reserved1,
        Reserved2,
        SwitchId,
        VPortId,
        Flags,
    }
    ndis689::NDIS_OID_REQUEST_DATA {
        Oid,
        QUERY_INFORMATION: NDIS_OID_REQUEST_DATA_QUERY_INFORMATION,
        SET_INFORMATION: NDIS_OID_REQUEST_DATA_SET_INFORMATION,
        METHOD_INFORMATION: NDIS_OID_REQUEST_DATA_METHOD_INFORMATION,
    }
    ndis689::NET_BUFFER_LIST {
        "" => u1: NET_BUFFER_LIST_u1,
        Context,
        ParentNetBufferList,
        NdisPoolHandle,
        NdisReserved,
        ProtocolReserved,
        MiniportReserved,
        Scratch,
        SourceHandle,
        NblFlags,
        ChildRefCount,
        Flags,
        "" => u2: NET_BUFFER_LIST_u2,
        NetBufferListInfo,
    }
    ndis689::NET_PNP_EVENT_NOTIFICATION {
        Header: NDIS_OBJECT_HEADER,
        PortNumber,
        NetPnPEvent: NET_PNP_EVENT,
        Flags,
        SwitchId,
        VPortId,
    }
    ndis689::NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER,
        ProtocolId,
        fAllocateNetBuffer,
        ContextSize,
        PoolTag,
        DataSize,
        Flags,
    }
    ndis689::NET_BUFFER_POOL_PARAMETERS { Header: NDIS_OBJECT_HEADER, PoolTag, DataSize, Flags, }
}

/// One row of a flattened Rust layout.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    /// A field: offset and size in bytes.
    Field { offset: usize, size: usize },
    /// A bit-field: absolute bit offset and width.
    Bits { bit_offset: usize, width: u32 },
}

fn join(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{name}"),
    }
}

/// Flattens the mapped type `k` placed at byte `base` under the JSON path `prefix` into `out`.
fn flatten(k: &str, prefix: &str, base: usize, out: &mut BTreeMap<String, Place>, errors: &mut Vec<String>) {
    let Some(map) = lookup(k) else {
        errors.push(format!("no type map for `{k}` (reached through `{prefix}`)"));
        return;
    };
    for e in &map.entries {
        let path = join(prefix, e.json);
        let offset = base + e.offset;
        if !e.json.is_empty() {
            let place = Place::Field { offset, size: e.size };
            if let Some(prev) = out.insert(path.clone(), place) {
                errors.push(format!("`{path}` mapped twice (also {prev:?})"));
            }
        }
        if let Some(n) = &e.nested {
            flatten(n, &path, offset, out, errors);
        }
    }
    for b in map.bits {
        let path = join(prefix, b.name);
        let place = Place::Bits { bit_offset: base * 8 + b.bit_offset, width: b.bit_width };
        if let Some(prev) = out.insert(path.clone(), place) {
            errors.push(format!("`{path}` mapped twice (also {prev:?})"));
        }
    }
}

/// Compares one mapped Rust type with one JSON type; returns the differences.
fn compare(json_name: &str, rust_key: &str, json: &common::JsonType) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(map) = lookup(rust_key) else {
        return vec![format!("{json_name}: no type map `{rust_key}`")];
    };
    if map.size != json.size {
        errors.push(format!("{json_name}: size {} != WDK {}", map.size, json.size));
    }
    if map.align != json.align {
        errors.push(format!("{json_name}: align {} != WDK {}", map.align, json.align));
    }
    let mut rust = BTreeMap::new();
    flatten(rust_key, "", 0, &mut rust, &mut errors);

    for f in &json.fields {
        let exempt = EXEMPT.iter().any(|&(t, p, _)| t == json_name && p == f.name);
        match (rust.get(&f.name), f.bits) {
            (None, Some(_)) if exempt => {}
            (None, _) => errors.push(format!("{json_name}.{}: WDK field has no mapping", f.name)),
            (Some(Place::Field { offset, size }), None) => {
                if *offset != f.offset {
                    errors.push(format!("{json_name}.{}: offset {offset} != WDK {}", f.name, f.offset));
                }
                // Negative sizes are flexible array members.
                if f.size >= 0 && i64::try_from(*size).ok() != Some(f.size) {
                    errors.push(format!("{json_name}.{}: size {size} != WDK {}", f.name, f.size));
                }
            }
            (Some(Place::Bits { bit_offset, width }), Some((bitoff, bitwidth))) => {
                if *bit_offset != bitoff || *width != bitwidth {
                    errors
                        .push(format!("{json_name}.{}: bits {bit_offset}:{width} != WDK {bitoff}:{bitwidth}", f.name));
                }
                if bit_offset / 8 != f.offset {
                    errors.push(format!(
                        "{json_name}.{}: bit-field byte {} != WDK {}",
                        f.name,
                        bit_offset / 8,
                        f.offset
                    ));
                }
            }
            (Some(p), b) => errors.push(format!("{json_name}.{}: Rust {p:?} but WDK bits {b:?}", f.name)),
        }
    }

    let json_paths: BTreeSet<&str> = json.fields.iter().map(|f| f.name.as_str()).collect();
    for path in rust.keys() {
        let allowed =
            NOT_IN_JSON.iter().any(|&(t, p, _)| t == json_name && (path == p || path.starts_with(&format!("{p}."))));
        if !json_paths.contains(path.as_str()) && !allowed {
            errors.push(format!("{json_name}.{path}: Rust field path not in the WDK table"));
        }
    }
    errors
}

#[test]
fn every_wdk_type_has_a_type_map() {
    let json = common::layouts(common::LAYOUT_NDIS630);
    assert_eq!(json.len(), 53, "layout-ndis630.json should list 53 types");
    let keys: BTreeSet<String> = all_keys().into_iter().collect();
    let missing: Vec<&String> = json.keys().filter(|t| !keys.contains(*t)).collect();
    assert!(missing.is_empty(), "WDK types without a Rust type map: {missing:?}");
    for t in json.keys() {
        assert!(lookup(t).is_some(), "{t}");
    }
}

#[test]
fn type_map_keys_are_unique() {
    let keys = all_keys();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a type is mapped twice");
}

#[test]
fn layouts_match_wdk_10_0_16299() {
    let json = common::layouts(common::LAYOUT_NDIS630);
    let mut errors = Vec::new();
    let mut checked_fields = 0;
    for (name, t) in &json {
        errors.extend(compare(name, name, t));
        checked_fields += t.fields.len();
    }
    assert!(errors.is_empty(), "{} layout differences:\n{}", errors.len(), errors.join("\n"));
    assert!(checked_fields > 1500, "only {checked_fields} fields checked");
}

#[test]
fn exemptions_are_bitfields_that_are_really_unmapped() {
    let json = common::layouts(common::LAYOUT_NDIS630);
    for &(t, path, reason) in EXEMPT {
        assert!(!reason.is_empty(), "{t}.{path}: exemption without a reason");
        let field = json[t].fields.iter().find(|f| f.name == path);
        assert!(field.is_some_and(|f| f.bits.is_some()), "{t}.{path}: only bit-fields may be exempt");
        let mut rust = BTreeMap::new();
        let mut errors = Vec::new();
        flatten(t, "", 0, &mut rust, &mut errors);
        assert!(!rust.contains_key(path), "{t}.{path} is mapped: remove its exemption");
    }
    for &(t, p, reason) in NOT_IN_JSON {
        assert!(!reason.is_empty() && json.contains_key(t), "{t}.{p}");
    }
}

#[test]
fn ndis689_layouts_match_wdk_10_0_26100() {
    let json = common::layouts(common::LAYOUT_NDIS689);
    let mut errors = Vec::new();
    for &(name, rust_key) in NDIS689_TYPES {
        errors.extend(compare(name, rust_key, &json[name]));
    }
    assert!(errors.is_empty(), "{} layout differences:\n{}", errors.len(), errors.join("\n"));
}

/// The types that grew after NDIS 6.30: the exported 6.89 sizes against layout-ndis689.json, and the 6.30
/// layouts against layout-ndis630.json, so both ends of the range are pinned.
#[test]
fn grown_structures_have_their_ndis689_sizes() {
    let j630 = common::layouts(common::LAYOUT_NDIS630);
    let j689 = common::layouts(common::LAYOUT_NDIS689);
    let cases: &[(&str, usize, usize, usize)] = &[
        ("NDIS_OID_REQUEST", size_of::<NDIS_OID_REQUEST>(), ndis689::SIZEOF_NDIS_OID_REQUEST, 248),
        ("NET_BUFFER_LIST", size_of::<NET_BUFFER_LIST>(), ndis689::SIZEOF_NET_BUFFER_LIST, 368),
        (
            "NET_PNP_EVENT_NOTIFICATION",
            size_of::<NET_PNP_EVENT_NOTIFICATION>(),
            ndis689::SIZEOF_NET_PNP_EVENT_NOTIFICATION,
            176,
        ),
        (
            "NET_BUFFER_LIST_POOL_PARAMETERS",
            size_of::<NET_BUFFER_LIST_POOL_PARAMETERS>(),
            ndis689::SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS,
            20,
        ),
        (
            "NET_BUFFER_POOL_PARAMETERS",
            size_of::<NET_BUFFER_POOL_PARAMETERS>(),
            ndis689::SIZEOF_NET_BUFFER_POOL_PARAMETERS,
            16,
        ),
    ];
    for &(name, size630, size689, expected689) in cases {
        assert_eq!(size630, j630[name].size, "{name} at NDIS 6.30");
        assert_eq!(size689, j689[name].size, "{name} at NDIS 6.89");
        assert_eq!(size689, expected689, "{name} at NDIS 6.89");
        assert!(size689 > size630, "{name} grew");
    }
    // The WDK's own size macros for the new revisions (values checked by tests/constants.rs).
    assert_eq!(usize::from(NDIS_SIZEOF_OID_REQUEST_REVISION_2), size_of::<ndis689::NDIS_OID_REQUEST>());
    assert_eq!(
        usize::from(NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_2),
        offset_of!(ndis689::NET_PNP_EVENT_NOTIFICATION, VPortId) + 4
    );
    assert_eq!(
        usize::from(NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_2),
        size_of::<ndis689::NET_BUFFER_LIST_POOL_PARAMETERS>()
    );
    assert_eq!(
        usize::from(NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_2),
        size_of::<ndis689::NET_BUFFER_POOL_PARAMETERS>()
    );
    // The info array holds MaxNetBufferListInfo slots at each version.
    let slots630 = size_of::<[PVOID; 1]>() * usize::try_from(MaxNetBufferListInfo).unwrap();
    let slots689 = size_of::<[PVOID; 1]>() * usize::try_from(ndis689::MaxNetBufferListInfo).unwrap();
    let info630 = j630["NET_BUFFER_LIST"].fields.iter().find(|f| f.name == "NetBufferListInfo").unwrap();
    let info689 = j689["NET_BUFFER_LIST"].fields.iter().find(|f| f.name == "NetBufferListInfo").unwrap();
    assert_eq!(i64::try_from(slots630).unwrap(), info630.size);
    assert_eq!(i64::try_from(slots689).unwrap(), info689.size);
}

/// The revision-size macros of the 6.30 structures agree with the Rust layouts.
#[test]
fn revision_sizes_match_layouts() {
    let cases: &[(USHORT, usize, &str)] = &[
        (
            NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            size_of::<NDIS_PROTOCOL_DRIVER_CHARACTERISTICS>(),
            "chars r2",
        ),
        (
            NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1,
            offset_of!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, DirectOidRequestCompleteHandler),
            "chars r1",
        ),
        (NDIS_SIZEOF_BIND_PARAMETERS_REVISION_4, size_of::<NDIS_BIND_PARAMETERS>(), "bind r4"),
        (NDIS_SIZEOF_OID_REQUEST_REVISION_1, offset_of!(NDIS_OID_REQUEST, Reserved2) + 2, "oid r1"),
        (
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            size_of::<NET_BUFFER_LIST_POOL_PARAMETERS>(),
            "nbl pool",
        ),
        (NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1, size_of::<NET_BUFFER_POOL_PARAMETERS>(), "nb pool"),
        (
            NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1,
            offset_of!(NET_PNP_EVENT_NOTIFICATION, Flags) + 4,
            "pnp r1",
        ),
        (NDIS_SIZEOF_STATUS_INDICATION_REVISION_1, size_of::<NDIS_STATUS_INDICATION>(), "status"),
        (NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1, size_of::<NDIS_TIMER_CHARACTERISTICS>(), "timer"),
        (NDIS_SIZEOF_LINK_STATE_REVISION_1, size_of::<NDIS_LINK_STATE>(), "link state"),
        (NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2, size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>(), "restart r2"),
        (NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3, size_of::<NDIS_OFFLOAD>(), "offload r3"),
        (NDIS_SIZEOF_NDIS_PM_CAPABILITIES_REVISION_2, size_of::<NDIS_PM_CAPABILITIES>(), "pm r2"),
        (NDIS_SIZEOF_STATISTICS_INFO_REVISION_1, size_of::<NDIS_STATISTICS_INFO>(), "statistics"),
        (
            NDIS_SIZEOF_PORT_AUTHENTICATION_PARAMETERS_REVISION_1,
            size_of::<NDIS_PORT_AUTHENTICATION_PARAMETERS>(),
            "port auth",
        ),
    ];
    for &(wdk, rust, what) in cases {
        assert_eq!(usize::from(wdk), rust, "{what}");
    }
}

#[test]
fn bitfield_accessors_use_their_table_positions() {
    let mut tag = NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader { Bits: 0 };
    tag.set_UserPriority(5);
    tag.set_VlanId(0xABC);
    tag.set_CanonicalFormatId(1);
    assert_eq!(tag.Bits, 5 | (1 << 3) | (0xABC << 4));
    assert_eq!((tag.UserPriority(), tag.CanonicalFormatId(), tag.VlanId(), tag.Reserved()), (5, 1, 0xABC, 0));
    // Oversized values are cut to the field's width and leave neighbours alone.
    tag.set_VlanId(0xF_FFFF);
    assert_eq!((tag.UserPriority(), tag.VlanId(), tag.Reserved()), (5, 0xFFF, 0));

    let mut rx = NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive { Bits: 0 };
    rx.set_IpChecksumValueInvalid(1);
    rx.set_TcpChecksumSucceeded(1);
    assert_eq!(rx.Bits, (1 << 8) | (1 << 3));

    // Every table entry: setting the field to all ones sets exactly its bits of the storage unit.
    fn check<T: Copy>(zero: T, bits: &[BitField], set_all: &dyn Fn(&mut T, &str), name: &str) {
        for b in bits {
            let mut v = zero;
            set_all(&mut v, b.name);
            // SAFETY: `T` is plain integers; reading its bytes is sound.
            let bytes = unsafe { std::slice::from_raw_parts((&raw const v).cast::<u8>(), size_of::<T>()) };
            let set: Vec<usize> = (0..bytes.len() * 8).filter(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect();
            let want: Vec<usize> = (b.bit_offset..b.bit_offset + b.bit_width as usize).collect();
            assert_eq!(set, want, "{name}.{}", b.name);
        }
    }
    check(
        NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader { Bits: 0 },
        NDIS_NET_BUFFER_LIST_8021Q_INFO_TagHeader::BITFIELDS,
        &|v, n| match n {
            "UserPriority" => v.set_UserPriority(!0),
            "CanonicalFormatId" => v.set_CanonicalFormatId(!0),
            "VlanId" => v.set_VlanId(!0),
            "Reserved" => v.set_Reserved(!0),
            other => panic!("{other}"),
        },
        "TagHeader",
    );
    check(
        SLIST_HEADER_HeaderX64 { Bits1: 0, Bits2: 0 },
        SLIST_HEADER_HeaderX64::BITFIELDS,
        &|v, n| match n {
            "Depth" => v.set_Depth(!0),
            "Sequence" => v.set_Sequence(!0),
            "Reserved" => v.set_Reserved(!0),
            "NextEntry" => v.set_NextEntry(!0),
            other => panic!("{other}"),
        },
        "HeaderX64",
    );
}
