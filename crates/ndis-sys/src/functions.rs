//! Imported kernel functions: exact WDK names and signatures, declared only when compiling for Windows.
//!
//! Every declaration is an `import` row of `reference/wdk-10.0.16299/functions.tsv` (checked by
//! `tests/functions.rs` through [`IMPORTED_FUNCTIONS`]), so the driver loads on every Windows 10/11 that
//! exports the 10.0.16299 API set. `ndis.h` functions come from `ndis.sys`; `wdm.h`/`ntddk.h`/`ntifs.h`
//! functions from `ntoskrnl.exe` (which on x64 also exports the former HAL routines declared here). Header
//! inlines and macros (`KeGetCurrentIrql`, `IoGetCurrentIrpStackLocation`, `IoCompleteRequest`,
//! `NdisAcquireSpinLock`, `NdisAllocateSpinLock`, `ExInitializeFastMutex`, ...) are not exports and are not
//! declared; newer exports (`ExAllocatePool2`) are found at run time, see [`crate::PEX_ALLOCATE_POOL2`].
//!
//! The `extern` blocks use `raw-dylib`, so no WDK import library is needed to link.

// The declarations (and so these imports) exist only on Windows; IMPORTED_FUNCTIONS exists everywhere.
#[cfg(target_os = "windows")]
use crate::{io::*, ke::*, ndis::*, types::*};

imports! {
    "ntoskrnl.exe" "system" {
        // -- I/O manager ------------------------------------------------------------------------------
        /// [IoCreateDevice](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocreatedevice).
        fn IoCreateDevice(
            DriverObject: PDRIVER_OBJECT,
            DeviceExtensionSize: ULONG,
            DeviceName: PUNICODE_STRING,
            DeviceType: DEVICE_TYPE,
            DeviceCharacteristics: ULONG,
            Exclusive: BOOLEAN,
            DeviceObject: *mut PDEVICE_OBJECT,
        ) -> NTSTATUS;
        fn IoDeleteDevice(DeviceObject: PDEVICE_OBJECT);
        fn IoCreateSymbolicLink(SymbolicLinkName: PUNICODE_STRING, DeviceName: PUNICODE_STRING) -> NTSTATUS;
        fn IoDeleteSymbolicLink(SymbolicLinkName: PUNICODE_STRING) -> NTSTATUS;
        /// What the `IoCompleteRequest` macro calls.
        fn IofCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR);
        fn IoCancelIrp(Irp: PIRP) -> BOOLEAN;
        fn IoAllocateMdl(
            VirtualAddress: PVOID,
            Length: ULONG,
            SecondaryBuffer: BOOLEAN,
            ChargeQuota: BOOLEAN,
            Irp: PIRP,
        ) -> PMDL;
        fn IoFreeMdl(Mdl: PMDL);
        fn IoBuildPartialMdl(SourceMdl: PMDL, TargetMdl: PMDL, VirtualAddress: PVOID, Length: ULONG);
        fn IoAcquireCancelSpinLock(Irql: PKIRQL);
        fn IoReleaseCancelSpinLock(Irql: KIRQL);
        fn IoAllocateWorkItem(DeviceObject: PDEVICE_OBJECT) -> PIO_WORKITEM;
        fn IoQueueWorkItem(
            IoWorkItem: PIO_WORKITEM,
            WorkerRoutine: PIO_WORKITEM_ROUTINE,
            QueueType: WORK_QUEUE_TYPE,
            Context: PVOID,
        );
        fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM);
        fn IoGetCurrentProcess() -> PEPROCESS;
        fn IoIs32bitProcess(Irp: PIRP) -> BOOLEAN;
        fn IoGetRequestorProcessId(Irp: PIRP) -> ULONG;
        /// Checks the caller's access for an IOCTL whose code says `FILE_ANY_ACCESS` but needs more.
        fn IoValidateDeviceIoControlAccess(Irp: PIRP, RequiredAccess: ULONG) -> NTSTATUS;
        fn IoCsqInitialize(
            Csq: PIO_CSQ,
            CsqInsertIrp: PIO_CSQ_INSERT_IRP,
            CsqRemoveIrp: PIO_CSQ_REMOVE_IRP,
            CsqPeekNextIrp: PIO_CSQ_PEEK_NEXT_IRP,
            CsqAcquireLock: PIO_CSQ_ACQUIRE_LOCK,
            CsqReleaseLock: PIO_CSQ_RELEASE_LOCK,
            CsqCompleteCanceledIrp: PIO_CSQ_COMPLETE_CANCELED_IRP,
        ) -> NTSTATUS;
        fn IoCsqInsertIrp(Csq: PIO_CSQ, Irp: PIRP, Context: PIO_CSQ_IRP_CONTEXT);
        fn IoCsqRemoveIrp(Csq: PIO_CSQ, Context: PIO_CSQ_IRP_CONTEXT) -> PIRP;
        fn IoCsqRemoveNextIrp(Csq: PIO_CSQ, PeekContext: PVOID) -> PIRP;
        fn IoInitializeRemoveLockEx(
            Lock: PIO_REMOVE_LOCK,
            AllocateTag: ULONG,
            MaxLockedMinutes: ULONG,
            HighWatermark: ULONG,
            RemlockSize: ULONG,
        );
        fn IoAcquireRemoveLockEx(
            RemoveLock: PIO_REMOVE_LOCK,
            Tag: PVOID,
            File: PCSTR,
            Line: ULONG,
            RemlockSize: ULONG,
        ) -> NTSTATUS;
        fn IoReleaseRemoveLockEx(RemoveLock: PIO_REMOVE_LOCK, Tag: PVOID, RemlockSize: ULONG);
        fn IoReleaseRemoveLockAndWaitEx(RemoveLock: PIO_REMOVE_LOCK, Tag: PVOID, RemlockSize: ULONG);

        // -- Pool and memory manager ------------------------------------------------------------------
        fn ExAllocatePoolWithTag(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
        fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);
        /// Finds an `ntoskrnl.exe`/`HAL.dll` export by name at run time (PASSIVE_LEVEL).
        fn MmGetSystemRoutineAddress(SystemRoutineName: PUNICODE_STRING) -> PVOID;
        /// `Priority` is an `MM_PAGE_PRIORITY` OR'ed with `MdlMapping*` flags.
        fn MmMapLockedPagesSpecifyCache(
            MemoryDescriptorList: PMDL,
            AccessMode: KPROCESSOR_MODE,
            CacheType: MEMORY_CACHING_TYPE,
            RequestedAddress: PVOID,
            BugCheckOnFailure: ULONG,
            Priority: ULONG,
        ) -> PVOID;
        fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL);
        fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL);
        /// Raises an exception on failure: call only inside an SEH frame (not expressible in Rust).
        fn MmProbeAndLockPages(
            MemoryDescriptorList: PMDL,
            AccessMode: KPROCESSOR_MODE,
            Operation: LOCK_OPERATION,
        );
        fn MmUnlockPages(MemoryDescriptorList: PMDL);
        fn RtlCompareMemory(Source1: PCVOID, Source2: PCVOID, Length: SIZE_T) -> SIZE_T;

        // -- Kernel: bug checks, spin locks, IRQL ------------------------------------------------------
        fn KeBugCheckEx(
            BugCheckCode: ULONG,
            BugCheckParameter1: ULONG_PTR,
            BugCheckParameter2: ULONG_PTR,
            BugCheckParameter3: ULONG_PTR,
            BugCheckParameter4: ULONG_PTR,
        ) -> !;
        fn KeInitializeSpinLock(SpinLock: PKSPIN_LOCK);
        fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL;
        fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL);
        fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK);
        fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK);
        fn KeAcquireInStackQueuedSpinLock(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE);
        fn KeReleaseInStackQueuedSpinLock(LockHandle: PKLOCK_QUEUE_HANDLE);
        fn KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE);
        fn KeReleaseInStackQueuedSpinLockFromDpcLevel(LockHandle: PKLOCK_QUEUE_HANDLE);
        fn KeLowerIrql(NewIrql: KIRQL);
        fn KfRaiseIrql(NewIrql: KIRQL) -> KIRQL;
        fn KeEnterCriticalRegion();
        fn KeLeaveCriticalRegion();
        fn ExAcquireFastMutex(FastMutex: PFAST_MUTEX);
        fn ExReleaseFastMutex(FastMutex: PFAST_MUTEX);

        // -- Kernel: dispatcher objects and waits ------------------------------------------------------
        fn KeInitializeEvent(Event: PRKEVENT, Type: EVENT_TYPE, State: BOOLEAN);
        fn KeSetEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG;
        fn KeResetEvent(Event: PRKEVENT) -> LONG;
        fn KeClearEvent(Event: PRKEVENT);
        fn KeReadStateEvent(Event: PRKEVENT) -> LONG;
        fn KeInitializeSemaphore(Semaphore: PRKSEMAPHORE, Count: LONG, Limit: LONG);
        fn KeReleaseSemaphore(Semaphore: PRKSEMAPHORE, Increment: KPRIORITY, Adjustment: LONG, Wait: BOOLEAN) -> LONG;
        fn KeInitializeMutex(Mutex: PRKMUTEX, Level: ULONG);
        fn KeReleaseMutex(Mutex: PRKMUTEX, Wait: BOOLEAN) -> LONG;
        /// `Timeout` is in 100 ns units, negative for relative; null waits forever.
        fn KeWaitForSingleObject(
            Object: PVOID,
            WaitReason: KWAIT_REASON,
            WaitMode: KPROCESSOR_MODE,
            Alertable: BOOLEAN,
            Timeout: PLARGE_INTEGER,
        ) -> NTSTATUS;
        fn KeWaitForMultipleObjects(
            Count: ULONG,
            Object: *mut PVOID,
            WaitType: WAIT_TYPE,
            WaitReason: KWAIT_REASON,
            WaitMode: KPROCESSOR_MODE,
            Alertable: BOOLEAN,
            Timeout: PLARGE_INTEGER,
            WaitBlockArray: PKWAIT_BLOCK,
        ) -> NTSTATUS;
        fn KeDelayExecutionThread(WaitMode: KPROCESSOR_MODE, Alertable: BOOLEAN, Interval: PLARGE_INTEGER) -> NTSTATUS;
        fn KeStallExecutionProcessor(MicroSeconds: ULONG);

        // -- Kernel: timers, DPCs, time, processors ----------------------------------------------------
        fn KeInitializeTimer(Timer: PKTIMER);
        fn KeInitializeTimerEx(Timer: PKTIMER, Type: TIMER_TYPE);
        fn KeSetTimer(Timer: PKTIMER, DueTime: LARGE_INTEGER, Dpc: PKDPC) -> BOOLEAN;
        fn KeSetTimerEx(Timer: PKTIMER, DueTime: LARGE_INTEGER, Period: LONG, Dpc: PKDPC) -> BOOLEAN;
        fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN;
        fn KeInitializeDpc(Dpc: PRKDPC, DeferredRoutine: PKDEFERRED_ROUTINE, DeferredContext: PVOID);
        fn KeInsertQueueDpc(Dpc: PRKDPC, SystemArgument1: PVOID, SystemArgument2: PVOID) -> BOOLEAN;
        fn KeRemoveQueueDpc(Dpc: PRKDPC) -> BOOLEAN;
        fn KeFlushQueuedDpcs();
        fn KeQueryPerformanceCounter(PerformanceFrequency: PLARGE_INTEGER) -> LARGE_INTEGER;
        fn KeQuerySystemTimePrecise(CurrentTime: PLARGE_INTEGER);
        fn KeQueryInterruptTimePrecise(QpcTimeStamp: PULONG64) -> ULONG64;
        fn KeQueryUnbiasedInterruptTime() -> ULONGLONG;
        fn KeQueryTimeIncrement() -> ULONG;
        fn KeGetCurrentProcessorNumberEx(ProcNumber: PPROCESSOR_NUMBER) -> ULONG;
        /// `GroupNumber` = `ALL_PROCESSOR_GROUPS` (0xFFFF) counts every group.
        fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG;

        // -- Objects, processes, strings ---------------------------------------------------------------
        fn ObReferenceObjectByHandle(
            Handle: HANDLE,
            DesiredAccess: ACCESS_MASK,
            ObjectType: POBJECT_TYPE,
            AccessMode: KPROCESSOR_MODE,
            Object: *mut PVOID,
            HandleInformation: POBJECT_HANDLE_INFORMATION,
        ) -> NTSTATUS;
        fn ObReferenceObjectByPointer(
            Object: PVOID,
            DesiredAccess: ACCESS_MASK,
            ObjectType: POBJECT_TYPE,
            AccessMode: KPROCESSOR_MODE,
        ) -> NTSTATUS;
        /// What the `ObDereferenceObject` macro calls.
        fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR;
        /// What the `ObReferenceObject` macro calls.
        fn ObfReferenceObject(Object: PVOID) -> LONG_PTR;
        fn ZwClose(Handle: HANDLE) -> NTSTATUS;
        /// [ObOpenObjectByPointer](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-obopenobjectbypointer).
        fn ObOpenObjectByPointer(
            Object: PVOID,
            HandleAttributes: ULONG,
            PassedAccessState: PVOID,
            DesiredAccess: ACCESS_MASK,
            ObjectType: POBJECT_TYPE,
            AccessMode: KPROCESSOR_MODE,
            Handle: *mut HANDLE,
        ) -> NTSTATUS;
        /// [ZwSetSecurityObject](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwsetsecurityobject).
        fn ZwSetSecurityObject(
            Handle: HANDLE,
            SecurityInformation: SECURITY_INFORMATION,
            SecurityDescriptor: PSECURITY_DESCRIPTOR,
        ) -> NTSTATUS;
        /// [ZwOpenKey](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwopenkey).
        fn ZwOpenKey(KeyHandle: *mut HANDLE, DesiredAccess: ACCESS_MASK, ObjectAttributes: POBJECT_ATTRIBUTES) -> NTSTATUS;
        /// [ZwQueryValueKey](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwqueryvaluekey).
        fn ZwQueryValueKey(
            KeyHandle: HANDLE,
            ValueName: PUNICODE_STRING,
            KeyValueInformationClass: KEY_VALUE_INFORMATION_CLASS,
            KeyValueInformation: PVOID,
            Length: ULONG,
            ResultLength: *mut ULONG,
        ) -> NTSTATUS;
        /// [RtlValidRelativeSecurityDescriptor](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlvalidrelativesecuritydescriptor).
        fn RtlValidRelativeSecurityDescriptor(
            SecurityDescriptorInput: PSECURITY_DESCRIPTOR,
            SecurityDescriptorLength: ULONG,
            RequiredInformation: SECURITY_INFORMATION,
        ) -> BOOLEAN;
        /// [SeCaptureSubjectContext](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-secapturesubjectcontext).
        fn SeCaptureSubjectContext(SubjectContext: PSECURITY_SUBJECT_CONTEXT);
        fn SeReleaseSubjectContext(SubjectContext: PSECURITY_SUBJECT_CONTEXT);
        /// [SeTokenIsAdmin](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-setokenisadmin).
        fn SeTokenIsAdmin(Token: PACCESS_TOKEN) -> BOOLEAN;
        /// [SeSinglePrivilegeCheck](https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddk/nf-ntddk-sesingleprivilegecheck).
        fn SeSinglePrivilegeCheck(PrivilegeValue: LUID, PreviousMode: KPROCESSOR_MODE) -> BOOLEAN;
        fn PsGetCurrentProcessId() -> HANDLE;
        fn PsGetCurrentThreadId() -> HANDLE;
        fn RtlInitUnicodeString(DestinationString: PUNICODE_STRING, SourceString: PCWSTR);
        fn RtlCompareUnicodeString(String1: PCUNICODE_STRING, String2: PCUNICODE_STRING, CaseInSensitive: BOOLEAN) -> LONG;
        fn RtlEqualUnicodeString(String1: PCUNICODE_STRING, String2: PCUNICODE_STRING, CaseInSensitive: BOOLEAN) -> BOOLEAN;
        fn RtlCopyUnicodeString(DestinationString: PUNICODE_STRING, SourceString: PCUNICODE_STRING);
        fn RtlAppendUnicodeStringToString(Destination: PUNICODE_STRING, Source: PCUNICODE_STRING) -> NTSTATUS;
        fn RtlAppendUnicodeToString(Destination: PUNICODE_STRING, Source: PCWSTR) -> NTSTATUS;
    }

    "ntoskrnl.exe" "C" {
        /// `__cdecl`, variadic: `Format` is a printf-style, NUL-terminated string.
        fn DbgPrint(Format: PCSTR, ...) -> ULONG;
        /// `__cdecl`, variadic: filtered by `ComponentId` (`DPFLTR_*_ID`) and `Level` (`DPFLTR_*_LEVEL`).
        fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: PCSTR, ...) -> ULONG;
    }

    "ndis.sys" "system" {
        // -- Version, registration, binding ------------------------------------------------------------
        /// `NDIS_RUNTIME_VERSION_*` of the running NDIS.
        fn NdisGetVersion() -> UINT;
        fn NdisRegisterProtocolDriver(
            ProtocolDriverContext: NDIS_HANDLE,
            ProtocolCharacteristics: PNDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
            NdisProtocolHandle: PNDIS_HANDLE,
        ) -> NDIS_STATUS;
        fn NdisDeregisterProtocolDriver(NdisProtocolHandle: NDIS_HANDLE);
        fn NdisOpenAdapterEx(
            NdisProtocolHandle: NDIS_HANDLE,
            ProtocolBindingContext: NDIS_HANDLE,
            OpenParameters: PNDIS_OPEN_PARAMETERS,
            BindContext: NDIS_HANDLE,
            NdisBindingHandle: PNDIS_HANDLE,
        ) -> NDIS_STATUS;
        fn NdisCloseAdapterEx(NdisBindingHandle: NDIS_HANDLE) -> NDIS_STATUS;
        fn NdisCompleteBindAdapterEx(BindAdapterContext: NDIS_HANDLE, Status: NDIS_STATUS);
        fn NdisCompleteUnbindAdapterEx(UnbindContext: NDIS_HANDLE);
        /// Completes a ProtocolNetPnPEvent that returned NDIS_STATUS_PENDING (e.g. a pause waiting for sends).
        fn NdisCompleteNetPnPEvent(
            NdisBindingHandle: NDIS_HANDLE,
            NetPnPEventNotification: PNET_PNP_EVENT_NOTIFICATION,
            Status: NDIS_STATUS,
        );
        fn NdisUnbindAdapter(NdisBindingHandle: NDIS_HANDLE) -> NDIS_STATUS;
        fn NdisReEnumerateProtocolBindings(NdisProtocolHandle: NDIS_HANDLE);
        /// The caller frees `AdapterInstanceName->Buffer` with `NdisFreeMemory`.
        fn NdisQueryAdapterInstanceName(AdapterInstanceName: PNDIS_STRING, NdisBindingHandle: NDIS_HANDLE) -> NDIS_STATUS;
        /// The caller frees `AdapterInstanceName->Buffer` with `NdisFreeMemory`.
        fn NdisQueryBindInstanceName(AdapterInstanceName: PNDIS_STRING, BindingContext: NDIS_HANDLE) -> NDIS_STATUS;

        // -- NET_BUFFER_LIST / NET_BUFFER pools and buffers --------------------------------------------
        fn NdisAllocateNetBufferListPool(
            NdisHandle: NDIS_HANDLE,
            Parameters: PNET_BUFFER_LIST_POOL_PARAMETERS,
        ) -> NDIS_HANDLE;
        fn NdisFreeNetBufferListPool(PoolHandle: NDIS_HANDLE);
        fn NdisAllocateNetBufferPool(NdisHandle: NDIS_HANDLE, Parameters: PNET_BUFFER_POOL_PARAMETERS) -> NDIS_HANDLE;
        fn NdisFreeNetBufferPool(PoolHandle: NDIS_HANDLE);
        fn NdisAllocateNetBufferAndNetBufferList(
            PoolHandle: NDIS_HANDLE,
            ContextSize: USHORT,
            ContextBackFill: USHORT,
            MdlChain: PMDL,
            DataOffset: ULONG,
            DataLength: SIZE_T,
        ) -> PNET_BUFFER_LIST;
        fn NdisAllocateNetBufferList(PoolHandle: NDIS_HANDLE, ContextSize: USHORT, ContextBackFill: USHORT) -> PNET_BUFFER_LIST;
        fn NdisAllocateNetBuffer(PoolHandle: NDIS_HANDLE, MdlChain: PMDL, DataOffset: ULONG, DataLength: SIZE_T) -> PNET_BUFFER;
        fn NdisFreeNetBuffer(NetBuffer: PNET_BUFFER);
        fn NdisFreeNetBufferList(NetBufferList: PNET_BUFFER_LIST);
        fn NdisAllocateCloneNetBufferList(
            OriginalNetBufferList: PNET_BUFFER_LIST,
            NetBufferListPoolHandle: NDIS_HANDLE,
            NetBufferPoolHandle: NDIS_HANDLE,
            AllocateCloneFlags: ULONG,
        ) -> PNET_BUFFER_LIST;
        fn NdisFreeCloneNetBufferList(CloneNetBufferList: PNET_BUFFER_LIST, FreeCloneFlags: ULONG);
        fn NdisAllocateNetBufferListContext(
            NetBufferList: PNET_BUFFER_LIST,
            ContextSize: USHORT,
            ContextBackFill: USHORT,
            PoolTag: ULONG,
        ) -> NDIS_STATUS;
        fn NdisFreeNetBufferListContext(NetBufferList: PNET_BUFFER_LIST, ContextSize: USHORT);
        fn NdisGetPoolFromNetBufferList(NetBufferList: PNET_BUFFER_LIST) -> NDIS_HANDLE;
        fn NdisGetPoolFromNetBuffer(NetBuffer: PNET_BUFFER) -> NDIS_HANDLE;
        fn NdisCopySendNetBufferListInfo(DestNetBufferList: PNET_BUFFER_LIST, SrcNetBufferList: PNET_BUFFER_LIST) -> NDIS_STATUS;
        fn NdisCopyReceiveNetBufferListInfo(DestNetBufferList: PNET_BUFFER_LIST, SrcNetBufferList: PNET_BUFFER_LIST) -> NDIS_STATUS;
        fn NdisAllocateMdl(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Length: UINT) -> PMDL;
        fn NdisFreeMdl(Mdl: PMDL);
        /// Returns a pointer to `BytesNeeded` contiguous bytes at the data start: into the MDL when they are
        /// contiguous there, else copied into `Storage` (or null if `Storage` is null).
        fn NdisGetDataBuffer(
            NetBuffer: PNET_BUFFER,
            BytesNeeded: ULONG,
            Storage: PVOID,
            AlignMultiple: UINT,
            AlignOffset: UINT,
        ) -> PVOID;
        fn NdisAdvanceNetBufferDataStart(
            NetBuffer: PNET_BUFFER,
            DataOffsetDelta: ULONG,
            FreeMdl: BOOLEAN,
            FreeMdlHandler: NET_BUFFER_FREE_MDL_HANDLER,
        );
        fn NdisRetreatNetBufferDataStart(
            NetBuffer: PNET_BUFFER,
            DataOffsetDelta: ULONG,
            DataBackFill: ULONG,
            AllocateMdlHandler: NET_BUFFER_ALLOCATE_MDL_HANDLER,
        ) -> NDIS_STATUS;
        fn NdisCopyFromNetBufferToNetBuffer(
            Destination: PNET_BUFFER,
            DestinationOffset: ULONG,
            BytesToCopy: ULONG,
            Source: PNET_BUFFER,
            SourceOffset: ULONG,
            BytesCopied: PULONG,
        ) -> NDIS_STATUS;
        fn NdisQueryNetBufferPhysicalCount(NetBuffer: PNET_BUFFER) -> ULONG;

        // -- Send, receive, OID requests ---------------------------------------------------------------
        fn NdisSendNetBufferLists(
            NdisBindingHandle: NDIS_HANDLE,
            NetBufferLists: PNET_BUFFER_LIST,
            PortNumber: NDIS_PORT_NUMBER,
            SendFlags: ULONG,
        );
        fn NdisCancelSendNetBufferLists(NdisBindingHandle: NDIS_HANDLE, CancelId: PVOID);
        fn NdisGeneratePartialCancelId() -> UCHAR;
        fn NdisReturnNetBufferLists(NdisBindingHandle: NDIS_HANDLE, NetBufferLists: PNET_BUFFER_LIST, ReturnFlags: ULONG);
        fn NdisOidRequest(NdisBindingHandle: NDIS_HANDLE, OidRequest: PNDIS_OID_REQUEST) -> NDIS_STATUS;
        fn NdisCancelOidRequest(NdisBindingHandle: NDIS_HANDLE, RequestId: PVOID);
        fn NdisDirectOidRequest(NdisBindingHandle: NDIS_HANDLE, OidRequest: PNDIS_OID_REQUEST) -> NDIS_STATUS;

        // -- Memory, events, locks, work items, timers, misc -------------------------------------------
        fn NdisAllocateMemoryWithTagPriority(
            NdisHandle: NDIS_HANDLE,
            Length: UINT,
            Tag: ULONG,
            Priority: EX_POOL_PRIORITY,
        ) -> PVOID;
        fn NdisFreeMemoryWithTagPriority(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Tag: ULONG);
        /// `MemoryFlags`: 0 or `NDIS_MEMORY_*`; `Length` may be 0 for memory NDIS allocated for the caller.
        fn NdisFreeMemory(VirtualAddress: PVOID, Length: UINT, MemoryFlags: UINT);
        /// Finds an `ndis.sys` export by name at run time.
        fn NdisGetRoutineAddress(NdisRoutineName: PNDIS_STRING) -> PVOID;
        fn NdisInitializeEvent(Event: PNDIS_EVENT);
        fn NdisSetEvent(Event: PNDIS_EVENT);
        fn NdisResetEvent(Event: PNDIS_EVENT);
        /// `MsToWait` = 0 waits forever; returns `TRUE` if the event was signalled.
        fn NdisWaitEvent(Event: PNDIS_EVENT, MsToWait: UINT) -> BOOLEAN;
        fn NdisAllocateRWLock(NdisHandle: NDIS_HANDLE) -> PNDIS_RW_LOCK_EX;
        fn NdisFreeRWLock(Lock: PNDIS_RW_LOCK_EX);
        fn NdisAcquireRWLockRead(Lock: PNDIS_RW_LOCK_EX, LockState: PLOCK_STATE_EX, Flags: UCHAR);
        fn NdisAcquireRWLockWrite(Lock: PNDIS_RW_LOCK_EX, LockState: PLOCK_STATE_EX, Flags: UCHAR);
        fn NdisReleaseRWLock(Lock: PNDIS_RW_LOCK_EX, LockState: PLOCK_STATE_EX);
        fn NdisAllocateIoWorkItem(NdisObjectHandle: NDIS_HANDLE) -> NDIS_HANDLE;
        fn NdisQueueIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE, Routine: NDIS_IO_WORKITEM_ROUTINE, WorkItemContext: PVOID);
        fn NdisFreeIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE);
        fn NdisAllocateTimerObject(
            NdisHandle: NDIS_HANDLE,
            TimerCharacteristics: PNDIS_TIMER_CHARACTERISTICS,
            pTimerObject: PNDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// `DueTime` is in 100 ns units, negative for relative.
        fn NdisSetTimerObject(
            TimerObject: NDIS_HANDLE,
            DueTime: LARGE_INTEGER,
            MillisecondsPeriod: LONG,
            FunctionContext: PVOID,
        ) -> BOOLEAN;
        fn NdisCancelTimerObject(TimerObject: NDIS_HANDLE) -> BOOLEAN;
        fn NdisFreeTimerObject(TimerObject: NDIS_HANDLE);
        fn NdisAllocateGenericObject(DriverObject: PDRIVER_OBJECT, Tag: ULONG, Size: USHORT) -> PNDIS_GENERIC_OBJECT;
        fn NdisFreeGenericObject(NdisObject: PNDIS_GENERIC_OBJECT);
        /// `LogHandle` is the protocol's driver object.
        fn NdisWriteEventLogEntry(
            LogHandle: PVOID,
            EventCode: NDIS_STATUS,
            UniqueEventValue: ULONG,
            NumStrings: USHORT,
            StringsList: PVOID,
            DataSize: ULONG,
            Data: PVOID,
        ) -> NDIS_STATUS;
        fn NdisGetSystemUpTimeEx(pSystemUpTime: PLARGE_INTEGER);
        fn NdisMSleep(MicrosecondsToSleep: ULONG);
        fn NdisGroupMaxProcessorCount(Group: USHORT) -> ULONG;
        fn NdisGroupActiveProcessorCount(Group: USHORT) -> ULONG;
        fn NdisCurrentGroupAndProcessor() -> PROCESSOR_NUMBER;
    }
}
