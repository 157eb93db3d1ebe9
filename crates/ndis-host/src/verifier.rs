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

/// How many findings the host keeps: a driver with a bug on every frame must not grow the host's memory
/// without bound in a long `ndis-host run --tap`. The first ones are kept (the first finding is the one to
/// debug); later ones are only counted.
pub const FINDINGS_KEPT: usize = 1024;

/// The verifier's findings: the first [`FINDINGS_KEPT`], and a count of the rest.
#[derive(Debug, Default)]
pub struct Findings {
    kept: Vec<Violation>,
    dropped: u64,
}

impl Findings {
    /// Records a finding (keeps it while fewer than [`FINDINGS_KEPT`] are kept, else counts it).
    pub fn push(&mut self, v: Violation) {
        if self.kept.len() < FINDINGS_KEPT {
            self.kept.push(v);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The findings kept, oldest first, and when some were not kept a last one that says how many, under the
    /// rule of the last kept finding (so a caller that only checks for emptiness or rules still sees them).
    pub fn list(&self) -> Vec<Violation> {
        let mut all = self.kept.clone();
        if self.dropped > 0 {
            let rule = self.kept.last().map_or(Rule::Ndis, |v| v.rule);
            all.push(Violation {
                rule,
                message: format!("... and {} more finding(s), not kept (at most {FINDINGS_KEPT} are)", self.dropped),
            });
        }
        all
    }

    /// How many findings were counted but not kept.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod findings_tests {
    use super::*;

    #[test]
    fn findings_are_bounded_and_the_rest_counted() {
        let mut f = Findings::default();
        for i in 0..FINDINGS_KEPT + 3000 {
            f.push(Violation { rule: Rule::Irql, message: format!("finding {i}") });
        }
        let all = f.list();
        assert_eq!(all.len(), FINDINGS_KEPT + 1);
        assert_eq!(all[0].message, "finding 0");
        assert_eq!(all[FINDINGS_KEPT - 1].message, format!("finding {}", FINDINGS_KEPT - 1));
        assert!(all[FINDINGS_KEPT].message.contains("3000 more finding(s)"), "{}", all[FINDINGS_KEPT]);
        assert_eq!(f.dropped(), 3000);
        let mut few = Findings::default();
        few.push(Violation { rule: Rule::Stack, message: "one".into() });
        assert_eq!(few.list(), vec![Violation { rule: Rule::Stack, message: "one".into() }]);
    }
}
