//! What the host checks, Driver Verifier style: each violation is recorded with a rule name and a message.

use std::fmt;

/// The rules the host enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Pool still allocated at unload (Driver Verifier bugcheck 0xC4/0x62).
    PoolLeak,
    /// A free of memory that was not allocated, or with another tag.
    BadFree,
    /// An API called above the IRQL it allows.
    Irql,
    /// An API's parameters break its contract.
    BadParameter,
    /// A spin lock released without being held, acquired recursively, or held at return.
    SpinLock,
    /// An IRP, OID or NBL completed twice.
    DoubleCompletion,
    /// A device object or symbolic link left behind at unload.
    ObjectLeak,
    /// A call after NdisDeregisterProtocolDriver, or a protocol still registered at unload.
    Registration,
    /// An NDIS rule: the binding lifecycle, completions, NBL ownership, NDIS memory.
    Ndis,
    /// DriverEntry broke its contract (returned STATUS_PENDING, ...).
    DriverEntry,
    /// The IRQL differs on return from a callback.
    IrqlNotRestored,
    /// A driver call went deeper than the kernel stack budget (`ke::STACK_BUDGET`).
    Stack,
    /// Work still queued or a timer still armed at unload (bugcheck 0xCE on Windows), or a timer object freed
    /// while armed.
    PendingOperation,
    /// A callback into the driver with a context that points into pool it already freed.
    UseAfterFree,
    /// An IRP handled against the I/O manager's contract: STATUS_PENDING returned without IoMarkIrpPending,
    /// a non-pending return without completion, a returned status that differs from IoStatus.Status,
    /// completion with a cancel routine still set, Information beyond the caller's buffer, files open or
    /// IRPs outstanding at unload.
    Irp,
    /// A thread left the driver with its critical regions unbalanced: KeLeaveCriticalRegion without
    /// KeEnterCriticalRegion, or a call into the driver that returned with a region still entered (bug check
    /// 0x1 APC_INDEX_MISMATCH).
    Apc,
    /// The driver read the same byte of a caller-writable buffer twice while dispatching one request (a
    /// double fetch: the caller can change it between the reads). Found by the watch
    /// (`Host::set_double_fetch_watch`).
    DoubleFetch,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}
