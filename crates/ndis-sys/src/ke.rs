//! Kernel (`Ke`), executive (`Ex`) and memory manager (`Mm`) objects of `wdm.h`: dispatcher objects (events,
//! mutexes, semaphores, timers), DPCs, APCs, queued spin locks, fast mutexes, work items, and the enumerations
//! their routines take.

use crate::types::*;

// ---------------------------------------------------------------------------------------------------------
// Enumerations (C enums are `int`).
// ---------------------------------------------------------------------------------------------------------

/// `EVENT_TYPE` (`NotificationEvent`, `SynchronizationEvent`).
pub type EVENT_TYPE = INT;
/// `TIMER_TYPE` (`NotificationTimer`, `SynchronizationTimer`).
pub type TIMER_TYPE = INT;
/// `KWAIT_REASON` (`Executive`, ...).
pub type KWAIT_REASON = INT;
/// `WAIT_TYPE` (`WaitAll`, `WaitAny`).
pub type WAIT_TYPE = INT;
/// `MODE` (`KernelMode`, `UserMode`); routines take it as a [`KPROCESSOR_MODE`].
pub type MODE = INT;
/// `POOL_TYPE` (`NonPagedPoolNx`, ...).
pub type POOL_TYPE = INT;
/// `EX_POOL_PRIORITY` (`NormalPoolPriority`, ...).
pub type EX_POOL_PRIORITY = INT;
/// `WORK_QUEUE_TYPE` (`DelayedWorkQueue`, ...).
pub type WORK_QUEUE_TYPE = INT;
/// `MEMORY_CACHING_TYPE` (`MmCached`, ...).
pub type MEMORY_CACHING_TYPE = INT;
/// `MM_PAGE_PRIORITY` (`NormalPagePriority`, ...); OR'ed with `MdlMapping*` flags into a `ULONG`.
pub type MM_PAGE_PRIORITY = INT;
/// `LOCK_OPERATION` (`IoReadAccess`, `IoWriteAccess`, `IoModifyAccess`).
pub type LOCK_OPERATION = INT;

// ---------------------------------------------------------------------------------------------------------
// Dispatcher header.
// ---------------------------------------------------------------------------------------------------------

/// `DISPATCHER_HEADER`: the common head of every waitable kernel object (WDK 10.0.16299 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER {
    /// The anonymous union of the first four bytes, read differently by each object type.
    pub u: DISPATCHER_HEADER_u,
    pub SignalState: LONG,
    pub WaitListHead: LIST_ENTRY,
}
/// `DISPATCHER_HEADER *`.
pub type PDISPATCHER_HEADER = *mut DISPATCHER_HEADER;

/// Anonymous member `u` of [`DISPATCHER_HEADER`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u {
    /// `Lock` / `LockNV`.
    pub u: DISPATCHER_HEADER_u_u,
    /// Events, semaphores, gates: `Type`, `Signalling`, `Size`, `Reserved1`.
    pub s1: DISPATCHER_HEADER_u_s1,
    /// Timers.
    pub s2: DISPATCHER_HEADER_u_s2,
    /// High-resolution timers.
    pub s3: DISPATCHER_HEADER_u_s3,
    /// Queues.
    pub s4: DISPATCHER_HEADER_u_s4,
    /// Threads.
    pub s5: DISPATCHER_HEADER_u_s5,
    /// Mutants.
    pub s6: DISPATCHER_HEADER_u_s6,
}

/// Anonymous member `u` of [`DISPATCHER_HEADER_u`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_u {
    /// `volatile LONG Lock`.
    pub Lock: LONG,
    pub LockNV: LONG,
}

/// Anonymous member `s1` of [`DISPATCHER_HEADER_u`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s1 {
    pub Type: UCHAR,
    pub Signalling: UCHAR,
    pub Size: UCHAR,
    pub Reserved1: UCHAR,
}

/// Anonymous member `s2` of [`DISPATCHER_HEADER_u`] (timers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s2 {
    pub TimerType: UCHAR,
    pub u1: DISPATCHER_HEADER_u_s2_u1,
    pub Hand: UCHAR,
    pub u2: DISPATCHER_HEADER_u_s2_u2,
}

/// Anonymous member `u1` of [`DISPATCHER_HEADER_u_s2`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s2_u1 {
    pub TimerControlFlags: UCHAR,
    pub s: DISPATCHER_HEADER_u_s2_u1_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s2_u1`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s2_u1_s {
    /// Storage unit: `Absolute:1`, `Wake:1`, `EncodedTolerableDelay:6`.
    pub Bits: UCHAR,
}
bitfields!(DISPATCHER_HEADER_u_s2_u1_s {
    Bits: UCHAR {
        Absolute / set_Absolute: 0, 1;
        Wake / set_Wake: 1, 1;
        EncodedTolerableDelay / set_EncodedTolerableDelay: 2, 6;
    }
});

/// Anonymous member `u2` of [`DISPATCHER_HEADER_u_s2`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s2_u2 {
    pub TimerMiscFlags: UCHAR,
    pub s: DISPATCHER_HEADER_u_s2_u2_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s2_u2`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s2_u2_s {
    /// Storage unit: `Index:6`, `Inserted:1`, `Expired:1` (volatile).
    pub Bits: UCHAR,
}
bitfields!(DISPATCHER_HEADER_u_s2_u2_s {
    Bits: UCHAR {
        Index / set_Index: 0, 6;
        Inserted / set_Inserted: 6, 1;
        Expired / set_Expired: 7, 1;
    }
});

/// Anonymous member `s3` of [`DISPATCHER_HEADER_u`] (high-resolution timers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s3 {
    pub Timer2Type: UCHAR,
    pub u: DISPATCHER_HEADER_u_s3_u,
    pub Timer2ComponentId: UCHAR,
    pub Timer2RelativeId: UCHAR,
}

/// Anonymous member `u` of [`DISPATCHER_HEADER_u_s3`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s3_u {
    pub Timer2Flags: UCHAR,
    pub s: DISPATCHER_HEADER_u_s3_u_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s3_u`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s3_u_s {
    /// Storage unit: `Timer2Inserted:1` … `Timer2Disabled:1`, `Timer2ReservedFlags:2`.
    pub Bits: UCHAR,
}
bitfields!(DISPATCHER_HEADER_u_s3_u_s {
    Bits: UCHAR {
        Timer2Inserted / set_Timer2Inserted: 0, 1;
        Timer2Expiring / set_Timer2Expiring: 1, 1;
        Timer2CancelPending / set_Timer2CancelPending: 2, 1;
        Timer2SetPending / set_Timer2SetPending: 3, 1;
        Timer2Running / set_Timer2Running: 4, 1;
        Timer2Disabled / set_Timer2Disabled: 5, 1;
        Timer2ReservedFlags / set_Timer2ReservedFlags: 6, 2;
    }
});

/// Anonymous member `s4` of [`DISPATCHER_HEADER_u`] (queues).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s4 {
    pub QueueType: UCHAR,
    pub u: DISPATCHER_HEADER_u_s4_u,
    pub QueueSize: UCHAR,
    pub QueueReserved: UCHAR,
}

/// Anonymous member `u` of [`DISPATCHER_HEADER_u_s4`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s4_u {
    pub QueueControlFlags: UCHAR,
    pub s: DISPATCHER_HEADER_u_s4_u_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s4_u`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s4_u_s {
    /// Storage unit: `Abandoned:1`, `DisableIncrement:1`, `QueueReservedControlFlags:6`.
    pub Bits: UCHAR,
}
bitfields!(DISPATCHER_HEADER_u_s4_u_s {
    Bits: UCHAR {
        Abandoned / set_Abandoned: 0, 1;
        DisableIncrement / set_DisableIncrement: 1, 1;
        QueueReservedControlFlags / set_QueueReservedControlFlags: 2, 6;
    }
});

/// Anonymous member `s5` of [`DISPATCHER_HEADER_u`] (threads).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s5 {
    pub ThreadType: UCHAR,
    pub ThreadReserved: UCHAR,
    pub u1: DISPATCHER_HEADER_u_s5_u1,
    pub u2: DISPATCHER_HEADER_u_s5_u2,
}

/// Anonymous member `u1` of [`DISPATCHER_HEADER_u_s5`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s5_u1 {
    pub ThreadControlFlags: UCHAR,
    pub s: DISPATCHER_HEADER_u_s5_u1_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s5_u1`]: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s5_u1_s {
    /// Storage unit: `CycleProfiling:1` … `EnergyProfiling:1`, `ThreadReservedControlFlags:2`.
    pub Bits: UCHAR,
}
bitfields!(DISPATCHER_HEADER_u_s5_u1_s {
    Bits: UCHAR {
        CycleProfiling / set_CycleProfiling: 0, 1;
        CounterProfiling / set_CounterProfiling: 1, 1;
        GroupScheduling / set_GroupScheduling: 2, 1;
        AffinitySet / set_AffinitySet: 3, 1;
        Tagged / set_Tagged: 4, 1;
        EnergyProfiling / set_EnergyProfiling: 5, 1;
        ThreadReservedControlFlags / set_ThreadReservedControlFlags: 6, 2;
    }
});

/// Anonymous member `u2` of [`DISPATCHER_HEADER_u_s5`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union DISPATCHER_HEADER_u_s5_u2 {
    pub DebugActive: UCHAR,
    pub s: DISPATCHER_HEADER_u_s5_u2_s,
}

/// Anonymous member `s` of [`DISPATCHER_HEADER_u_s5_u2`]: bit-fields only (`BOOLEAN` storage).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s5_u2_s {
    /// Storage unit: `ActiveDR7:1`, `Instrumented:1`, `Minimal:1`, `Reserved4:3`, `UmsScheduled:1`,
    /// `UmsPrimary:1`.
    pub Bits: BOOLEAN,
}
bitfields!(DISPATCHER_HEADER_u_s5_u2_s {
    Bits: BOOLEAN {
        ActiveDR7 / set_ActiveDR7: 0, 1;
        Instrumented / set_Instrumented: 1, 1;
        Minimal / set_Minimal: 2, 1;
        Reserved4 / set_Reserved4: 3, 3;
        UmsScheduled / set_UmsScheduled: 6, 1;
        UmsPrimary / set_UmsPrimary: 7, 1;
    }
});

/// Anonymous member `s6` of [`DISPATCHER_HEADER_u`] (mutants).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER_u_s6 {
    pub MutantType: UCHAR,
    pub MutantSize: UCHAR,
    pub DpcActive: BOOLEAN,
    pub MutantReserved: UCHAR,
}

union_debug!(
    DISPATCHER_HEADER_u,
    DISPATCHER_HEADER_u_u,
    DISPATCHER_HEADER_u_s2_u1,
    DISPATCHER_HEADER_u_s2_u2,
    DISPATCHER_HEADER_u_s3_u,
    DISPATCHER_HEADER_u_s4_u,
    DISPATCHER_HEADER_u_s5_u1,
    DISPATCHER_HEADER_u_s5_u2,
);

// ---------------------------------------------------------------------------------------------------------
// Dispatcher objects.
// ---------------------------------------------------------------------------------------------------------

/// [`KEVENT`](https://learn.microsoft.com/windows-hardware/drivers/kernel/event-objects): an event object.
/// Initialise with `KeInitializeEvent`; never copy a live one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEVENT {
    pub Header: DISPATCHER_HEADER,
}
/// `KEVENT *`.
pub type PKEVENT = *mut KEVENT;
/// `KEVENT *` (restricted).
pub type PRKEVENT = *mut KEVENT;

/// `KMUTEX` (`KMUTANT`): a kernel mutex.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KMUTEX {
    pub Header: DISPATCHER_HEADER,
    pub MutantListEntry: LIST_ENTRY,
    pub OwnerThread: *mut KTHREAD,
    pub Abandoned: BOOLEAN,
    pub ApcDisable: UCHAR,
}
/// `KMUTANT`.
pub type KMUTANT = KMUTEX;
/// `KMUTEX *`.
pub type PKMUTEX = *mut KMUTEX;
/// `KMUTEX *` (restricted).
pub type PRKMUTEX = *mut KMUTEX;

/// `KSEMAPHORE`: a kernel semaphore.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSEMAPHORE {
    pub Header: DISPATCHER_HEADER,
    pub Limit: LONG,
}
/// `KSEMAPHORE *`.
pub type PKSEMAPHORE = *mut KSEMAPHORE;
/// `KSEMAPHORE *` (restricted).
pub type PRKSEMAPHORE = *mut KSEMAPHORE;

/// `KTIMER`: a kernel timer (WDK 10.0.16299 layout: `Processor` is a `ULONG`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KTIMER {
    pub Header: DISPATCHER_HEADER,
    pub DueTime: ULARGE_INTEGER,
    pub TimerListEntry: LIST_ENTRY,
    pub Dpc: *mut KDPC,
    pub Processor: ULONG,
    pub Period: ULONG,
}
/// `KTIMER *`.
pub type PKTIMER = *mut KTIMER;
/// `KTIMER *` (restricted).
pub type PRKTIMER = *mut KTIMER;

// ---------------------------------------------------------------------------------------------------------
// DPCs and APCs.
// ---------------------------------------------------------------------------------------------------------

/// [`KDEFERRED_ROUTINE`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-kdeferred_routine):
/// a DPC routine, `(Dpc, DeferredContext, SystemArgument1, SystemArgument2)`. Runs at DISPATCH_LEVEL.
pub type PKDEFERRED_ROUTINE = Option<
    unsafe extern "system" fn(Dpc: *mut KDPC, DeferredContext: PVOID, SystemArgument1: PVOID, SystemArgument2: PVOID),
>;

/// `KDPC`: a deferred procedure call object. Initialise with `KeInitializeDpc`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDPC {
    pub u: KDPC_u,
    pub DpcListEntry: SINGLE_LIST_ENTRY,
    pub ProcessorHistory: KAFFINITY,
    pub DeferredRoutine: PKDEFERRED_ROUTINE,
    pub DeferredContext: PVOID,
    pub SystemArgument1: PVOID,
    pub SystemArgument2: PVOID,
    pub DpcData: PVOID,
}
/// `KDPC *`.
pub type PKDPC = *mut KDPC;
/// `KDPC *` (restricted).
pub type PRKDPC = *mut KDPC;

/// Anonymous member `u` of [`KDPC`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union KDPC_u {
    pub TargetInfoAsUlong: ULONG,
    pub s: KDPC_u_s,
}

/// Anonymous member `s` of [`KDPC_u`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDPC_u_s {
    pub Type: UCHAR,
    pub Importance: UCHAR,
    /// `volatile USHORT Number`.
    pub Number: USHORT,
}
union_debug!(KDPC_u);

/// `KAPC`: an asynchronous procedure call object (public WDK layout; its routines are private).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KAPC {
    pub Type: UCHAR,
    pub SpareByte0: UCHAR,
    pub Size: UCHAR,
    pub SpareByte1: UCHAR,
    pub SpareLong0: ULONG,
    pub Thread: *mut KTHREAD,
    pub ApcListEntry: LIST_ENTRY,
    pub Reserved: [PVOID; 3],
    pub NormalContext: PVOID,
    pub SystemArgument1: PVOID,
    pub SystemArgument2: PVOID,
    pub ApcStateIndex: CCHAR,
    pub ApcMode: KPROCESSOR_MODE,
    pub Inserted: BOOLEAN,
}
/// `KAPC *`.
pub type PKAPC = *mut KAPC;
/// `KAPC *` (restricted).
pub type PRKAPC = *mut KAPC;

// ---------------------------------------------------------------------------------------------------------
// Locks.
// ---------------------------------------------------------------------------------------------------------

/// `KSPIN_LOCK_QUEUE`: one waiter of a queued spin lock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_LOCK_QUEUE {
    /// `struct _KSPIN_LOCK_QUEUE * volatile Next`.
    pub Next: *mut KSPIN_LOCK_QUEUE,
    /// `PKSPIN_LOCK volatile Lock`.
    pub Lock: PKSPIN_LOCK,
}
/// `KSPIN_LOCK_QUEUE *`.
pub type PKSPIN_LOCK_QUEUE = *mut KSPIN_LOCK_QUEUE;

/// `KLOCK_QUEUE_HANDLE`: the caller-provided handle of an in-stack queued spin lock
/// (`KeAcquireInStackQueuedSpinLock`). Must not move while the lock is held.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KLOCK_QUEUE_HANDLE {
    pub LockQueue: KSPIN_LOCK_QUEUE,
    pub OldIrql: KIRQL,
}
/// `KLOCK_QUEUE_HANDLE *`.
pub type PKLOCK_QUEUE_HANDLE = *mut KLOCK_QUEUE_HANDLE;

/// `FAST_MUTEX` (`ExAcquireFastMutex` / `ExReleaseFastMutex`; `ExInitializeFastMutex` is a header inline).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FAST_MUTEX {
    pub Count: LONG,
    pub Owner: PVOID,
    pub Contention: ULONG,
    pub Event: KEVENT,
    pub OldIrql: ULONG,
}
/// `FAST_MUTEX *`.
pub type PFAST_MUTEX = *mut FAST_MUTEX;

// ---------------------------------------------------------------------------------------------------------
// System worker threads.
// ---------------------------------------------------------------------------------------------------------

/// `WORKER_THREAD_ROUTINE`: `(Parameter)`.
pub type PWORKER_THREAD_ROUTINE = Option<unsafe extern "system" fn(Parameter: PVOID)>;

/// `WORK_QUEUE_ITEM` (`ExQueueWorkItem`; drivers should prefer `IoAllocateWorkItem`/`NdisAllocateIoWorkItem`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WORK_QUEUE_ITEM {
    pub List: LIST_ENTRY,
    pub WorkerRoutine: PWORKER_THREAD_ROUTINE,
    /// `volatile PVOID Parameter`.
    pub Parameter: PVOID,
}
/// `WORK_QUEUE_ITEM *`.
pub type PWORK_QUEUE_ITEM = *mut WORK_QUEUE_ITEM;

/// `ExAllocatePool2` (Windows 10 2004 and later): `(Flags, NumberOfBytes, Tag) -> PVOID`.
///
/// Newer than WDK 10.0.16299, so it is **not** imported: look it up at run time with
/// `MmGetSystemRoutineAddress(L"ExAllocatePool2")` and transmute the address to this type. Fall back to
/// `ExAllocatePoolWithTag(NonPagedPoolNx, ..)` when the lookup returns null.
pub type PEX_ALLOCATE_POOL2 =
    Option<unsafe extern "system" fn(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID>;
