//! The kernel's dispatcher, timer queue and work queue as plain bookkeeping, without driver memory.
//!
//! Windows keeps an event's state in the driver's own `KEVENT` (`Header.SignalState`); the host does too,
//! and reaches it through [`SignalStates`], so that the rules here — who a signal wakes, what an
//! auto-reset (synchronization) object consumes, which timer is due — are unit-tested with a map.
//!
//! The machine owns one [`Kernel`]: the dispatcher with its condition variable (waiters sleep on it; every
//! signal wakes them all and each checks its own wait block), the deferred-work books (work items, armed
//! timers, NDIS timer objects) with the condition variable of the worker and timer threads, and the
//! per-call stack measurements.

use crate::native::memory::HostBlock;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

pub use crate::native::stack::{HOST_FRAME_ALLOWANCE, KERNEL_STACK_SIZE, STACK_BUDGET};

/// Access to the signal state of dispatcher objects (the `DISPATCHER_HEADER` in driver memory).
pub trait SignalStates {
    /// `Header.SignalState`.
    fn state(&self, object: usize) -> i32;
    /// Writes `Header.SignalState`.
    fn set_state(&mut self, object: usize, value: i32);
    /// Whether the object resets when a wait is satisfied (synchronization events and timers).
    fn auto_reset(&self, object: usize) -> bool;
}

/// Identifies one pending wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitId(u64);

#[derive(Debug)]
struct Wait {
    objects: Vec<usize>,
    all: bool,
    /// Index of the object that satisfied a WaitAny (0 for WaitAll) once satisfied.
    satisfied: Option<usize>,
}

/// How a wait began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Satisfied at once by the object at this index.
    Satisfied(usize),
    /// Queued; poll with [`Dispatcher::outcome`], finish with [`Dispatcher::end`].
    Pending(WaitId),
}

/// The wait queues, keyed by object address, in arrival order.
#[derive(Debug, Default)]
pub struct Dispatcher {
    next: u64,
    waits: BTreeMap<WaitId, Wait>,
}

fn try_satisfy(mem: &mut dyn SignalStates, objects: &[usize], all: bool) -> Option<usize> {
    let consume = |mem: &mut dyn SignalStates, o: usize| {
        if mem.auto_reset(o) {
            mem.set_state(o, 0);
        }
    };
    if all {
        if objects.iter().all(|&o| mem.state(o) > 0) {
            for &o in objects {
                consume(mem, o);
            }
            return Some(0);
        }
        None
    } else {
        let i = objects.iter().position(|&o| mem.state(o) > 0)?;
        consume(mem, *objects.get(i)?);
        Some(i)
    }
}

impl Dispatcher {
    /// Starts a wait on `objects` (all of them, or any one).
    pub fn begin(&mut self, mem: &mut dyn SignalStates, objects: &[usize], all: bool) -> Begin {
        if let Some(i) = try_satisfy(mem, objects, all) {
            return Begin::Satisfied(i);
        }
        self.next += 1;
        let id = WaitId(self.next);
        self.waits.insert(id, Wait { objects: objects.to_vec(), all, satisfied: None });
        Begin::Pending(id)
    }

    /// `object` became signalled: satisfy queued waits on it in arrival order while it stays signalled
    /// (an auto-reset object satisfies one wait; a notification object all of them).
    pub fn signaled(&mut self, mem: &mut dyn SignalStates, object: usize) {
        for w in self.waits.values_mut() {
            if mem.state(object) <= 0 {
                break;
            }
            if w.satisfied.is_none() && w.objects.contains(&object) {
                w.satisfied = try_satisfy(mem, &w.objects, w.all);
            }
        }
    }

    /// Whether wait `id` has been satisfied, and by which object.
    pub fn outcome(&self, id: WaitId) -> Option<usize> {
        self.waits.get(&id).and_then(|w| w.satisfied)
    }

    /// Removes wait `id` (satisfied or timed out); returns its outcome.
    pub fn end(&mut self, id: WaitId) -> Option<usize> {
        self.waits.remove(&id).and_then(|w| w.satisfied)
    }

    /// How many waits are queued on `object`.
    pub fn waiters(&self, object: usize) -> usize {
        self.waits.values().filter(|w| w.satisfied.is_none() && w.objects.contains(&object)).count()
    }
}

/// What an armed timer does when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// A KTIMER: signal it, then queue its DPC (0 = none).
    Ke { dpc: usize },
    /// An NDIS timer object: call its NetTimerCallback with this context.
    Ndis { context: usize },
}

/// An armed timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    /// Interrupt time (100 ns units) at which it expires.
    pub due: u64,
    /// Period in 100 ns units, 0 for one-shot.
    pub period: u64,
    pub kind: TimerKind,
}

/// Armed timers keyed by the timer's address.
#[derive(Debug, Default)]
pub struct TimerQueue {
    armed: crate::ndis::state::AddrMap<Armed>,
}

impl TimerQueue {
    /// Arms (or re-arms) a timer; returns whether it was already armed.
    pub fn arm(&mut self, timer: usize, armed: Armed) -> bool {
        self.armed.insert(timer, armed).is_some()
    }

    /// Disarms a timer; returns whether it was armed.
    pub fn cancel(&mut self, timer: usize) -> bool {
        self.armed.remove(&timer).is_some()
    }

    pub fn is_armed(&self, timer: usize) -> bool {
        self.armed.contains_key(&timer)
    }

    /// The earliest expiry.
    pub fn next_due(&self) -> Option<u64> {
        self.armed.values().map(|a| a.due).min()
    }

    /// Takes the earliest timer due at `now`: a periodic one is re-armed one period later (skipping periods
    /// missed entirely), a one-shot one is removed.
    pub fn take_due(&mut self, now: u64) -> Option<(usize, Armed)> {
        let (&timer, &a) = self.armed.iter().filter(|(_, a)| a.due <= now).min_by_key(|(_, a)| a.due)?;
        if a.period > 0 {
            let mut next = a.due + a.period;
            if next <= now {
                next = now + a.period - (now - a.due) % a.period;
            }
            self.armed.insert(timer, Armed { due: next, ..a });
        } else {
            self.armed.remove(&timer);
        }
        Some((timer, a))
    }

    /// Every armed timer (for the unload check).
    pub fn armed(&self) -> Vec<(usize, Armed)> {
        self.armed.iter().map(|(&t, &a)| (t, a)).collect()
    }

    pub fn clear(&mut self) {
        self.armed.clear();
    }
}

/// Which API allocated a work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkItemKind {
    /// IoAllocateWorkItem: the routine gets `(DeviceObject, Context)`.
    Io { device: usize },
    /// NdisAllocateIoWorkItem: the routine gets `(WorkItemContext, NdisIoWorkItemHandle)`.
    Ndis,
}

/// An allocated work item (the opaque block lent to the driver is its handle).
#[derive(Debug)]
pub struct WorkItem {
    pub block: HostBlock,
    pub kind: WorkItemKind,
    pub queued: bool,
}

/// A queued work item's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkRequest {
    pub item: usize,
    pub routine: usize,
    pub context: usize,
}

/// An NDIS timer object from NdisAllocateTimerObject.
#[derive(Debug)]
pub struct NdisTimer {
    pub block: HostBlock,
    pub function: usize,
    pub context: usize,
    pub tag: u32,
}

/// Deferred work: what the worker and timer threads serve.
#[derive(Debug, Default)]
pub struct Deferred {
    pub shutdown: bool,
    pub work: VecDeque<WorkRequest>,
    pub work_items: BTreeMap<usize, WorkItem>,
    pub timers: TimerQueue,
    pub ndis_timers: BTreeMap<usize, NdisTimer>,
    /// A timer's DPC or NDIS timer callback is running on the timer thread (KeFlushQueuedDpcs waits for it).
    pub expiring: bool,
}

/// The deepest stack use seen for one call name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackUse {
    pub max_depth: usize,
    pub calls: u64,
}

/// The machine's kernel books.
#[derive(Debug, Default)]
pub struct Kernel {
    pub dispatcher: Mutex<Dispatcher>,
    /// Waiters on dispatcher objects; notified on every signal.
    pub signal: Condvar,
    pub deferred: Mutex<Deferred>,
    /// The worker and timer threads; notified on new work, new timers and shutdown.
    pub deferred_wake: Condvar,
    pub stack: Mutex<BTreeMap<String, StackUse>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Kernel {
    pub fn dispatcher(&self) -> MutexGuard<'_, Dispatcher> {
        lock(&self.dispatcher)
    }

    pub fn deferred(&self) -> MutexGuard<'_, Deferred> {
        lock(&self.deferred)
    }

    /// Stops the worker and timer threads (the machine is going away).
    pub fn shutdown(&self) {
        self.deferred().shutdown = true;
        self.deferred_wake.notify_all();
    }

    /// Records a call's stack depth; returns whether it is a new maximum for that name.
    pub fn record_stack(&self, name: &str, depth: usize) {
        let mut s = lock(&self.stack);
        // The name is copied once, not per call: this runs on every call into the driver.
        if !s.contains_key(name) {
            s.insert(name.to_owned(), StackUse { max_depth: 0, calls: 0 });
        }
        if let Some(e) = s.get_mut(name) {
            e.max_depth = e.max_depth.max(depth);
            e.calls += 1;
        }
    }
}

/// Converts a kernel timeout (100 ns units; negative = relative, positive = absolute system time, 0 = now)
/// into a relative duration in 100 ns units.
pub fn relative_timeout(timeout: i64, system_now: u64) -> u64 {
    if timeout < 0 {
        timeout.unsigned_abs()
    } else {
        // CAST: a non-negative i64.
        (timeout as u64).saturating_sub(system_now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Map {
        state: HashMap<usize, i32>,
        sync: Vec<usize>,
    }

    impl SignalStates for Map {
        fn state(&self, o: usize) -> i32 {
            self.state.get(&o).copied().unwrap_or(0)
        }
        fn set_state(&mut self, o: usize, v: i32) {
            self.state.insert(o, v);
        }
        fn auto_reset(&self, o: usize) -> bool {
            self.sync.contains(&o)
        }
    }

    fn pending(b: Begin) -> WaitId {
        match b {
            Begin::Pending(id) => id,
            Begin::Satisfied(i) => panic!("satisfied by {i}"),
        }
    }

    #[test]
    fn a_synchronization_event_wakes_one_waiter_and_resets() {
        let mut m = Map { sync: vec![1], ..Map::default() };
        let mut d = Dispatcher::default();
        let a = pending(d.begin(&mut m, &[1], false));
        let b = pending(d.begin(&mut m, &[1], false));
        m.set_state(1, 1);
        d.signaled(&mut m, 1);
        assert_eq!((d.outcome(a), d.outcome(b)), (Some(0), None), "first come, first served");
        assert_eq!(m.state(1), 0, "auto-reset");
        assert_eq!(d.waiters(1), 1);
        assert_eq!(d.end(b), None);
    }

    #[test]
    fn a_notification_event_wakes_everyone_and_stays_signalled() {
        let mut m = Map::default();
        let mut d = Dispatcher::default();
        let a = pending(d.begin(&mut m, &[1], false));
        let b = pending(d.begin(&mut m, &[1, 2], false));
        m.set_state(1, 1);
        d.signaled(&mut m, 1);
        assert_eq!((d.end(a), d.end(b)), (Some(0), Some(0)));
        assert_eq!(m.state(1), 1);
        assert_eq!(d.begin(&mut m, &[2, 1], false), Begin::Satisfied(1));
    }

    #[test]
    fn wait_all_needs_every_object_at_once() {
        let mut m = Map { sync: vec![2], ..Map::default() };
        let mut d = Dispatcher::default();
        let w = pending(d.begin(&mut m, &[1, 2], true));
        m.set_state(1, 1);
        d.signaled(&mut m, 1);
        assert_eq!(d.outcome(w), None);
        m.set_state(2, 1);
        d.signaled(&mut m, 2);
        assert_eq!(d.outcome(w), Some(0));
        assert_eq!((m.state(1), m.state(2)), (1, 0), "only the auto-reset one is consumed");
    }

    #[test]
    fn periodic_timers_rearm_and_one_shots_go() {
        let mut q = TimerQueue::default();
        assert!(!q.arm(10, Armed { due: 100, period: 50, kind: TimerKind::Ke { dpc: 0 } }));
        assert!(!q.arm(20, Armed { due: 120, period: 0, kind: TimerKind::Ndis { context: 7 } }));
        assert_eq!(q.next_due(), Some(100));
        assert_eq!(q.take_due(99), None);
        assert_eq!(q.take_due(100).map(|(t, _)| t), Some(10));
        assert_eq!(q.next_due(), Some(120));
        assert_eq!(q.take_due(130).map(|(t, _)| t), Some(20));
        assert_eq!(q.take_due(130), None);
        // Missed periods are skipped, not replayed.
        assert_eq!(q.take_due(1000).map(|(t, a)| (t, a.due)), Some((10, 150)));
        assert_eq!(q.next_due(), Some(1050));
        assert!(q.cancel(10));
        assert!(!q.cancel(10));
    }

    #[test]
    fn timeouts_are_relative_or_absolute() {
        assert_eq!(relative_timeout(-10_000, 5), 10_000);
        assert_eq!(relative_timeout(105, 100), 5);
        assert_eq!(relative_timeout(50, 100), 0);
        assert_eq!(relative_timeout(0, 100), 0);
    }
}
