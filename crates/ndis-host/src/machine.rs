//! The emulated machine: one loaded driver, its processors, the kernel and NDIS state it sees, the verifier's
//! findings, the fault plan and the trace.
//!
//! Driver code runs on host "processor" threads ([`Cpu`]); the thread that drives a test hands a call to a
//! processor and waits for it, so a driver that bug-checks or faults kills only its processor and the waiter
//! gets an error instead of the test process dying. I/O requests run the same way on caller threads of their
//! own (`Threads`), as a dispatch routine runs in the calling application's thread on Windows. No host lock is
//! held while driver code runs: every export takes the state lock for its own bookkeeping only, and calls back
//! into the driver after releasing it.

use crate::faults::{FaultPlan, FaultRule};
use crate::loader::{LoadError, LoadedImage};
use crate::native::cpu;
use crate::native::memory::HostBlock;
use crate::trace::{Arg, Direction};
use crate::verifier::{Rule, Violation};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// `NDIS_RUNTIME_VERSION_689`.
pub const NDIS_689: u32 = 0x0006_0059;

/// How the emulated Windows behaves.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// What NdisGetVersion reports (`(major << 16) | minor`), 6.30 … 6.89.
    pub ndis_version: u32,
    /// Whether MmGetSystemRoutineAddress finds `ExAllocatePool2` (Windows 10 2004 and later).
    pub ex_allocate_pool2: bool,
    /// Fault-injection rules for this run.
    pub faults: Vec<FaultRule>,
    /// Print every trace event to stderr as it happens.
    pub echo_trace: bool,
    /// How long the host waits for one driver call before reporting a hang.
    pub call_timeout: Duration,
    /// The driver's service name: `\Driver\<name>`, the service key `...\Services\<name>` DriverEntry
    /// gets as its RegistryPath, and `<name>.sys` (lower case) in reported addresses.
    pub service_name: String,
    /// The machine's non-paged pool, in bytes (`None`: as much as the host process can have). An
    /// allocation that would pass it fails (returns NULL), as when Windows runs out of pool.
    pub pool_limit: Option<usize>,
    /// How many trace events the machine keeps (the newest; see [`crate::trace::TraceRing`]).
    pub trace_capacity: usize,
    /// A file that gets every trace event as it happens, besides the ring.
    pub trace_file: Option<std::path::PathBuf>,
    /// Patch the driver's CR8 accesses into trap-free detours at load time (the default); `false` leaves
    /// every one to the fault handler's emulation (the same IRQL, one SIGSEGV per access).
    pub patch_cr8: bool,
    /// Map the image at this address (page-aligned, not yet mapped) instead of where the kernel puts it;
    /// loading fails if it cannot be had. Reproduces a run whose outcome depended on the load address.
    pub image_address: Option<usize>,
    /// Measure the stack of one outermost driver call in this many on each thread, after the thread's first
    /// [`crate::native::stack::SAMPLE_WARMUP`] calls, which are all measured (1, the default: every call).
    /// The guard page below the stack stays armed for every call either way; a benchmark sets 16 so that
    /// painting and scanning the stack stay on at a sixteenth of their cost.
    pub stack_sample: u32,
    /// Serve I/O requests (`Host::read`, `write`, `device_control`, `close`, cancellation) on the thread that
    /// issues them, on a kernel stack of its own, with no hand-over to a caller thread (see
    /// `native::inline`). A fatal fault is still reported as `HostError::Fault`; a dispatch routine that
    /// blocks blocks the issuing thread, and one that never returns is not reported as a hang. Off by
    /// default: the default runs each request on a thread of its own, so one test thread can have requests
    /// wait on each other. A benchmark turns it on.
    pub inline_requests: bool,
    /// Run what the host does on a processor (a receive indication, an OID request, a pause, a routine
    /// given to `Host::call_driver`) on the thread that asks for it, as that processor, on that thread's
    /// kernel stack (as `inline_requests`), instead of handing it to the processor's thread; one job per
    /// processor at a time still. Off by default; a benchmark turns it on.
    pub inline_processors: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            ndis_version: NDIS_689,
            ex_allocate_pool2: true,
            faults: Vec::new(),
            echo_trace: false,
            call_timeout: Duration::from_secs(30),
            service_name: "RAWLINK".to_owned(),
            pool_limit: None,
            trace_capacity: crate::trace::TRACE_KEPT,
            trace_file: None,
            patch_cr8: true,
            image_address: None,
            stack_sample: 1,
            inline_requests: false,
            inline_processors: false,
        }
    }
}

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the driver bug-checked: {0}")]
    Bugcheck(Bugcheck),
    #[error("the driver faulted at {rip:#x} (signal {signal}, address {address:#x}){}", .symbol.as_deref().map(|s| format!(" in {s}")).unwrap_or_default())]
    Fault { rip: usize, address: usize, signal: i32, symbol: Option<String> },
    #[error("the driver did not return from {call} within {timeout:?}")]
    Hang { call: String, timeout: Duration },
    #[error("the machine is down after an earlier bug check or fault")]
    Down,
    #[error("{0}")]
    State(String),
}

/// A KeBugCheckEx call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bugcheck {
    pub code: u32,
    pub params: [u64; 4],
}

impl std::fmt::Display for Bugcheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.params;
        write!(f, "BugCheck {:#010x} ({a:#x}, {b:#x}, {c:#x}, {d:#x})", self.code)
    }
}

/// A pool block the driver owns.
#[derive(Debug)]
pub(crate) struct PoolBlock {
    pub block: HostBlock,
    pub tag: u32,
    pub size: usize,
    pub api: &'static str,
}

/// The driver's live pool blocks by start address. Reads go through `Deref`; blocks come and go only
/// through [`PoolMap::insert`] and [`PoolMap::remove`], so the blocks [`PoolMap::live`] found last can be
/// remembered: the data path asks about the same few blocks (those of its spin locks and buffers) call after
/// call, and a hit costs a few compares instead of a tree search.
#[derive(Debug, Default)]
pub(crate) struct PoolMap {
    blocks: BTreeMap<usize, PoolBlock>,
    /// (start, size) of the last blocks `live` found (size 0: an empty entry), and the entry the next miss
    /// replaces. Cleared by every removal; an insertion cannot overlap them (a new allocation never
    /// overlaps a live one).
    hints: std::cell::Cell<([(usize, usize); POOL_HINTS], usize)>,
}

/// How many blocks [`PoolMap`] remembers.
const POOL_HINTS: usize = 4;

impl std::ops::Deref for PoolMap {
    type Target = BTreeMap<usize, PoolBlock>;
    fn deref(&self) -> &Self::Target {
        &self.blocks
    }
}

impl PoolMap {
    pub fn insert(&mut self, addr: usize, block: PoolBlock) -> Option<PoolBlock> {
        self.blocks.insert(addr, block)
    }

    pub fn remove(&mut self, addr: usize) -> Option<PoolBlock> {
        self.hints.set(Default::default());
        self.blocks.remove(&addr)
    }

    /// The live block holding `addr` as (start, size); a zero-sized block holds its start address.
    pub fn live(&self, addr: usize) -> Option<(usize, usize)> {
        let (mut hints, next) = self.hints.get();
        if let Some(&hit) = hints.iter().find(|&&(start, size)| size != 0 && addr >= start && addr - start < size) {
            return Some(hit);
        }
        let (&start, b) = self.blocks.range(..=addr).next_back()?;
        if addr - start >= b.size.max(1) {
            return None;
        }
        if b.size != 0 {
            if let Some(h) = hints.get_mut(next) {
                *h = (start, b.size);
            }
            self.hints.set((hints, (next + 1) % POOL_HINTS));
        }
        Some((start, b.size))
    }
}

/// A device object the driver created.
#[derive(Debug)]
pub(crate) struct DeviceRec {
    pub block: HostBlock,
    pub name: Option<String>,
}

/// What a protocol registered, copied out of its NDIS_PROTOCOL_DRIVER_CHARACTERISTICS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolCharacteristics {
    pub header_type: u8,
    pub header_revision: u8,
    pub header_size: u16,
    pub major_ndis_version: u8,
    pub minor_ndis_version: u8,
    pub major_driver_version: u8,
    pub minor_driver_version: u8,
    pub flags: u32,
    pub name: String,
    pub set_options: Option<usize>,
    pub bind_adapter_ex: Option<usize>,
    pub unbind_adapter_ex: Option<usize>,
    pub open_adapter_complete_ex: Option<usize>,
    pub close_adapter_complete_ex: Option<usize>,
    pub net_pnp_event: Option<usize>,
    pub uninstall: Option<usize>,
    pub oid_request_complete: Option<usize>,
    pub status_ex: Option<usize>,
    pub receive_net_buffer_lists: Option<usize>,
    pub send_net_buffer_lists_complete: Option<usize>,
    pub direct_oid_request_complete: Option<usize>,
}

impl ProtocolCharacteristics {
    /// Every handler with its ProtocolXxx name.
    pub fn handlers(&self) -> [(&'static str, Option<usize>); 12] {
        [
            ("ProtocolSetOptions", self.set_options),
            ("ProtocolBindAdapterEx", self.bind_adapter_ex),
            ("ProtocolUnbindAdapterEx", self.unbind_adapter_ex),
            ("ProtocolOpenAdapterCompleteEx", self.open_adapter_complete_ex),
            ("ProtocolCloseAdapterCompleteEx", self.close_adapter_complete_ex),
            ("ProtocolNetPnPEvent", self.net_pnp_event),
            ("ProtocolUninstall", self.uninstall),
            ("ProtocolOidRequestComplete", self.oid_request_complete),
            ("ProtocolStatusEx", self.status_ex),
            ("ProtocolReceiveNetBufferLists", self.receive_net_buffer_lists),
            ("ProtocolSendNetBufferListsComplete", self.send_net_buffer_lists_complete),
            ("ProtocolDirectOidRequestComplete", self.direct_oid_request_complete),
        ]
    }
}

/// A registered protocol.
#[derive(Debug)]
pub(crate) struct ProtocolRec {
    /// The opaque NdisProtocolHandle (a host block, so its address is unique and stable).
    pub handle: HostBlock,
    pub chars: ProtocolCharacteristics,
    pub context: usize,
    pub deregistered: bool,
}

/// Kernel and NDIS objects, guarded by one lock that is never held across driver code.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub pool: PoolMap,
    /// The most recently freed pool blocks (start, size), poisoned, to recognise use after free.
    pub freed_pool: std::collections::VecDeque<(usize, usize)>,
    /// Their memory, kept (in quarantine) until they leave `freed_pool`: a driver that touches freed pool
    /// reads poison and writes into memory nobody else uses, instead of corrupting the host's heap.
    pub quarantine: std::collections::VecDeque<crate::native::memory::HostBlock>,
    pub devices: Vec<DeviceRec>,
    pub links: BTreeMap<String, String>,
    pub protocols: Vec<ProtocolRec>,
    pub completed_irps: crate::ndis::state::AddrMap<u32>,
    /// Held spin locks: lock address → holder's thread id.
    pub spin_locks: crate::ndis::state::AddrMap<std::thread::ThreadId>,
    /// NDIS: adapters, opens, pools, indications.
    pub ndis: crate::ndis::state::NdisState,
    /// The I/O manager's files, handles, IRPs and MDLs.
    pub io: crate::io::state::IoState,
    /// Tokens, device descriptors, kernel handles and the registry.
    pub security: crate::security::SecurityState,
}

/// Everything the exports reach through the current processor.
#[derive(Debug)]
pub(crate) struct Inner {
    pub config: HostConfig,
    pub image: LoadedImage,
    pub(crate) image_slot: Option<usize>,
    pub state: Mutex<State>,
    pub trace: Mutex<crate::trace::TraceRing>,
    pub violations: Mutex<crate::verifier::Findings>,
    pub faults: Mutex<FaultPlan>,
    pub bugcheck: Mutex<Option<Bugcheck>>,
    pub down: AtomicBool,
    /// DRIVER_OBJECT + DRIVER_EXTENSION + name strings, lent to the driver for its lifetime.
    pub driver_object: HostBlock,
    pub registry_path: HostBlock,
    /// Dispatcher, timers, work items and stack measurements (crate::ke).
    pub ke: crate::ke::Kernel,
    /// A hostile caller's write into a request's buffer, armed by a test (crate::io::UserFlip).
    pub user_flip: crate::io::state::FlipState,
    /// Watch each request's caller input buffer for double fetches (crate::native::watch).
    pub double_fetch_watch: AtomicBool,
    /// Signalled (after a change made under the state lock) whenever an outstanding IRP is completed, its
    /// dispatch routine returns, its cancel ends, or the machine bug-checks: what a waiting caller waits on.
    /// Use [`Inner::irp_changed`] and [`Inner::wait_irp_change`].
    pub(crate) irp_changed: std::sync::Condvar,
    /// Callers waiting on `irp_changed`, counted under the state lock: with none (requests served on the
    /// asking thread) a change wakes nobody and makes no futex system call.
    pub(crate) irp_waiters: std::sync::atomic::AtomicUsize,
}

thread_local! {
    pub(crate) static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
}

/// The machine the calling processor belongs to. Exports run only on processor threads.
pub(crate) fn current() -> Arc<Inner> {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(i) => i,
        None => {
            eprintln!("ndis-host: a kernel export was called outside a host processor thread");
            std::process::abort();
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many freed pool blocks the host remembers.
pub(crate) const FREED_POOL_KEPT: usize = 4096;

/// The byte freed pool is filled with, as Driver Verifier's special pool does, so a driver reading freed
/// memory sees garbage at once.
pub(crate) const FREED_POOL_POISON: u8 = 0xDF;

impl State {
    /// Reports `api` acting on `object` (a spin lock, an event) inside freed pool: a verifier finding
    /// (Rule::UseAfterFree); returns whether it was freed pool, so the caller leaves it alone.
    pub fn freed_object(inner: &Inner, api: &str, what: &str, object: usize) -> bool {
        if !inner.state().in_freed_pool(object) {
            return false;
        }
        inner.violation(
            Rule::UseAfterFree,
            format!("{api}({object:#x}): the {what} lies in a pool block the driver already freed"),
        );
        true
    }

    /// Whether `addr` lies in a pool block freed recently and not handed out again.
    pub fn in_freed_pool(&self, addr: usize) -> bool {
        self.pool.live(addr).is_none()
            && self.freed_pool.iter().any(|&(start, size)| addr >= start && addr < start + size.max(1))
    }
}

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Records a verifier finding.
    pub fn violation(&self, rule: Rule, message: impl Into<String>) {
        let v = Violation { rule, message: message.into() };
        if self.config.echo_trace {
            eprintln!("ndis-host: VERIFIER {v}");
        }
        lock(&self.violations).push(v);
    }

    /// Starts a trace event; returns its seq for [`Inner::trace_result`]. The arguments are kept raw (see
    /// [`crate::trace::TraceRing`]) and formatted only when the trace is read, echoed or written to its file.
    pub fn trace_call(&self, direction: Direction, name: &'static str, args: &[(&'static str, Arg<'_>)]) -> u64 {
        self.trace_named(direction, Arg::Word(name), args)
    }

    /// [`Inner::trace_call`] for a callee whose name is not a constant.
    pub fn trace_named(&self, direction: Direction, name: Arg<'_>, args: &[(&'static str, Arg<'_>)]) -> u64 {
        self.trace_with(direction, name, args.iter().copied())
    }

    /// [`Inner::trace_named`] with the arguments from an iterator (no array of them on the stack).
    pub fn trace_with<'a>(
        &self,
        direction: Direction,
        name: Arg<'_>,
        args: impl Iterator<Item = (&'static str, Arg<'a>)>,
    ) -> u64 {
        if direction == Direction::DriverToHost {
            self.user_flip.on_driver_call();
        }
        let mut t = lock(&self.trace);
        let seq = t.push_iter(direction, name, cpu::irql(), args);
        if self.config.echo_trace {
            if let Some(ev) = t.event(seq) {
                eprintln!("{ev}");
            }
        }
        seq
    }

    /// Completes a trace event with its result.
    pub fn trace_result(&self, seq: u64, result: Arg<'_>) {
        let mut t = lock(&self.trace);
        t.complete(seq, result);
        if self.config.echo_trace {
            if let Some(r) = t.result(seq) {
                eprintln!("        -> {r}");
            }
        }
    }

    /// Counts an injectable call and says whether the fault plan fails it.
    pub fn inject(&self, api: &str) -> bool {
        lock(&self.faults).should_fail(api)
    }

    /// Checks that the caller runs at or below `max` IRQL.
    pub fn require_irql_at_most(&self, api: &str, max: u8) -> bool {
        let irql = cpu::irql();
        if irql > max {
            self.violation(Rule::Irql, format!("{api} called at IRQL {irql}; it requires IRQL <= {max}"));
            return false;
        }
        true
    }

    /// Checks that the caller runs at exactly `level`.
    pub fn require_irql(&self, api: &str, level: u8) -> bool {
        let irql = cpu::irql();
        if irql != level {
            self.violation(Rule::Irql, format!("{api} called at IRQL {irql}; it requires IRQL {level}"));
            return false;
        }
        true
    }

    /// Wakes the callers waiting for an IRP to change, if any. Call it after the change, made under the state
    /// lock, is visible: a waiter counts itself under that lock before it sleeps, so it either saw the
    /// change or is counted here.
    pub(crate) fn irp_changed(&self) {
        if self.irp_waiters.load(Ordering::SeqCst) != 0 {
            self.irp_changed.notify_all();
        }
    }

    /// Sleeps on `irp_changed` for at most `timeout`, releasing the state lock `st` (taken by the caller,
    /// who looked at the IRP under it), counted as a waiter meanwhile.
    pub(crate) fn wait_irp_change(&self, st: MutexGuard<'_, State>, timeout: Duration) {
        self.irp_waiters.fetch_add(1, Ordering::SeqCst);
        drop(self.irp_changed.wait_timeout(st, timeout));
        self.irp_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Records a bug check; the calling processor never returns.
    pub fn bugcheck(&self, b: Bugcheck) -> ! {
        *lock(&self.bugcheck) = Some(b);
        self.down.store(true, Ordering::Release);
        self.irp_changed();
        if self.config.echo_trace {
            eprintln!("ndis-host: *** {b}");
        }
        loop {
            std::thread::park();
        }
    }

    /// The image-relative name of a driver address, for messages.
    pub fn symbolize(&self, addr: usize) -> Option<String> {
        let addr = self.image.original_address(addr);
        self.image
            .contains(addr)
            .then(|| format!("{}.sys+{:#x}", self.config.service_name.to_ascii_lowercase(), addr - self.image.base()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(slot) = self.image_slot {
            cpu::unregister_image(slot);
        }
    }
}

/// Work for a host thread: it runs the driver code and returns how to hand the result over, which the
/// thread calls once it is ready for its next job (so a caller that gets its result at once finds the
/// thread idle again, instead of starting another).
pub(crate) type Job = Box<dyn FnOnce() -> Deliver + Send>;
/// Hands a finished job's result to whoever waits for it.
pub(crate) type Deliver = Box<dyn FnOnce() + Send>;

/// A host thread that runs driver code, as one processor.
#[derive(Debug)]
pub(crate) struct Cpu {
    pub(crate) jobs: mpsc::Sender<Job>,
    /// Held while a job runs as this processor: by its thread, or by a thread that runs one itself
    /// (`HostConfig::inline_processors`), so that one processor runs one job at a time either way.
    pub(crate) busy: Arc<Mutex<()>>,
}

/// Stack for processor threads. The driver's own budget is the kernel's 24 KiB; host exports run on the
/// same stack, so the thread gets more and the driver's depth is measured separately.
pub(crate) const CPU_STACK: usize = 1024 * 1024;

/// How long a thread handing work to another, or waiting for its next job, polls before it sleeps on the
/// channel. A request or an indication crosses two threads (the caller and the processor or caller thread
/// that runs the driver); parking and waking each side cost a futex round trip that a virtual machine's
/// scheduler makes 5–20 µs long, most of the time of a batched read. Polling this long first turns most
/// hand-overs into a cache-line transfer, and it yields the processor while it polls, so a thread with real
/// work on a busy machine still runs. The poll must outlast the gap between two jobs of one thread (a
/// processor thread waits while the caller thread serves the read that follows its indication): with 60 µs,
/// a 512-frame burst of 512 or 1514 B frames outlasted it and both threads slept and woke every burst; at
/// 200 µs `cargo xtask bench` receives those sizes twice as fast (batched 512 B 1.5 → 3.1 Mpps, ring 1514 B
/// 1.3 → 2.8 Mpps on the 2-core build machine; 20 µs was 2–4× slower than 60, 500 µs the same as 200).
pub(crate) const HANDOFF_SPIN: Duration = Duration::from_micros(200);

/// Receives from `rx`, polling for up to [`HANDOFF_SPIN`] before blocking; `Err` when every sender is gone.
pub(crate) fn recv_handoff<T>(rx: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    match poll_handoff(rx, HANDOFF_SPIN) {
        Ok(v) => Ok(v),
        Err(mpsc::TryRecvError::Disconnected) => Err(mpsc::RecvError),
        Err(mpsc::TryRecvError::Empty) => rx.recv(),
    }
}

/// Polls `rx` for up to `spin`, first with CPU pause hints, then yielding the processor between tries.
pub(crate) fn poll_handoff<T>(rx: &mpsc::Receiver<T>, spin: Duration) -> Result<T, mpsc::TryRecvError> {
    let start = std::time::Instant::now();
    let mut tries = 0u32;
    loop {
        match rx.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            other => return other,
        }
        tries = tries.saturating_add(1);
        if tries < 64 {
            std::hint::spin_loop();
        } else if start.elapsed() >= spin {
            return Err(mpsc::TryRecvError::Empty);
        } else {
            std::thread::yield_now();
        }
    }
}

impl Cpu {
    pub(crate) fn start(inner: &Arc<Inner>, index: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let ctx = Arc::clone(inner);
        let busy = Arc::new(Mutex::new(()));
        let mine = Arc::clone(&busy);
        std::thread::Builder::new().name(format!("cpu{index}")).stack_size(CPU_STACK).spawn(move || {
            cpu::set_machine(Arc::as_ptr(&ctx) as usize);
            CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
            cpu::set_irql(0);
            // CAST: two processors.
            cpu::set_processor(index as u32);
            while let Ok(job) = recv_handoff(&rx) {
                let deliver = {
                    let _running = lock(&mine);
                    job()
                };
                deliver();
            }
            CURRENT.with(|c| c.borrow_mut().take());
        })?;
        Ok(Self { jobs: tx, busy })
    }
}

/// Runs `job` now on this thread, as processor `processor` of `inner`, on this thread's kernel stack
/// (`native::inline`), and hands its result over; after a fatal fault nothing is handed over and the fault
/// record tells the waiting caller. The thread's own machine, IRQL and processor are put back afterwards,
/// also when the job panics (the panic goes on to the caller).
pub(crate) fn run_inline(inner: &Arc<Inner>, processor: u32, job: Job) -> std::io::Result<()> {
    let _restore = ThreadState::enter(inner, processor);
    if let Some(deliver) = crate::native::inline::run(CPU_STACK, job)? {
        deliver();
    }
    Ok(())
}

/// A thread's processor identity, replaced for an inline job and put back when dropped.
struct ThreadState {
    machine: usize,
    irql: u8,
    processor: u32,
    current: Option<Arc<Inner>>,
}

impl ThreadState {
    fn enter(inner: &Arc<Inner>, processor: u32) -> Self {
        let saved = Self {
            machine: cpu::machine(),
            irql: cpu::irql(),
            processor: cpu::processor(),
            current: CURRENT.with(|c| c.replace(Some(Arc::clone(inner)))),
        };
        cpu::set_machine(Arc::as_ptr(inner) as usize);
        cpu::set_irql(0);
        cpu::set_processor(processor);
        saved
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        cpu::set_machine(self.machine);
        cpu::set_irql(self.irql);
        cpu::set_processor(self.processor);
        let current = self.current.take();
        CURRENT.with(|c| *c.borrow_mut() = current);
    }
}

/// A job for a [`Threads`] worker, with the worker's own sender (returned to the idle list afterwards) and
/// the processor number it runs as.
pub(crate) struct ThreadJob(Job, mpsc::Sender<ThreadJob>, u32);

/// Host threads that stand for the threads of callers entering the kernel (an application's thread in
/// ReadFile, DeviceIoControl or CloseHandle): each I/O request runs its dispatch routine on a thread of its
/// own, as on Windows, so a dispatch routine that blocks (waits on a KEVENT at PASSIVE_LEVEL) does not keep
/// another caller's request — a CloseHandle's IRP_MJ_CLEANUP — from reaching the driver. Idle threads are
/// reused; a thread whose job never returns (a driver that blocks for ever, faults or bug-checks) is simply
/// not reused.
#[derive(Debug, Default)]
pub(crate) struct Threads {
    /// Senders of idle workers; a worker holds only a weak reference, so dropping the list ends them.
    pub(crate) idle: Arc<Mutex<Vec<mpsc::Sender<ThreadJob>>>>,
}

impl Threads {
    /// Hands `job` to an idle worker, or to a new one, to run as processor `processor`.
    pub(crate) fn send(&self, inner: &Arc<Inner>, processor: u32, job: Job) -> Result<(), HostError> {
        let idle = lock(&self.idle).pop();
        let tx = match idle {
            Some(tx) => tx,
            None => self.spawn(inner).map_err(|e| HostError::State(format!("starting a caller thread: {e}")))?,
        };
        tx.send(ThreadJob(job, tx.clone(), processor)).map_err(|_| HostError::Down)
    }

    fn spawn(&self, inner: &Arc<Inner>) -> std::io::Result<mpsc::Sender<ThreadJob>> {
        let (tx, rx) = mpsc::channel::<ThreadJob>();
        let ctx = Arc::clone(inner);
        let idle = Arc::downgrade(&self.idle);
        std::thread::Builder::new().name("caller".into()).stack_size(CPU_STACK).spawn(move || {
            cpu::set_machine(Arc::as_ptr(&ctx) as usize);
            CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
            while let Ok(ThreadJob(job, me, processor)) = recv_handoff(&rx) {
                cpu::set_irql(0);
                cpu::set_processor(processor);
                let deliver = job();
                match idle.upgrade() {
                    Some(list) => lock(&list).push(me),
                    None => {
                        deliver();
                        break;
                    }
                }
                deliver();
            }
            CURRENT.with(|c| c.borrow_mut().take());
        })?;
        Ok(tx)
    }
}

/// Starts a system thread of the machine (the work-item worker, the timer/DPC thread): a host thread that
/// runs driver code as processor `number`, like a [`Cpu`], and leaves when `body` returns.
pub(crate) fn spawn_system_thread(
    inner: &Arc<Inner>,
    name: &str,
    number: u32,
    body: impl FnOnce(&Inner) + Send + 'static,
) -> std::io::Result<()> {
    let ctx = Arc::clone(inner);
    std::thread::Builder::new().name(name.to_owned()).stack_size(CPU_STACK).spawn(move || {
        cpu::set_machine(Arc::as_ptr(&ctx) as usize);
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&ctx)));
        cpu::set_irql(0);
        cpu::set_processor(number);
        body(&ctx);
        CURRENT.with(|c| c.borrow_mut().take());
    })?;
    Ok(())
}

pub use crate::trace::tag_text;

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: usize) -> PoolBlock {
        PoolBlock { block: HostBlock::new(size.max(1), 16).expect("memory"), tag: 0x7473_6554, size, api: "test" }
    }

    #[test]
    fn the_pool_map_finds_the_block_holding_an_address_and_forgets_it_when_it_is_freed() {
        let mut st = State::default();
        let a = block(64);
        let (start, size) = (a.block.addr(), a.size);
        st.pool.insert(start, a);
        assert_eq!(st.pool.live(start + 10), Some((start, size)));
        // The second lookup is answered by the remembered block, the same way.
        assert_eq!(st.pool.live(start + 63), Some((start, size)));
        assert_eq!(st.pool.live(start + 64), None);
        assert!(!st.in_freed_pool(start + 8));
        let b = st.pool.remove(start).expect("the block");
        st.freed_pool.push_back((start, size));
        assert_eq!(st.pool.live(start + 10), None);
        assert!(st.in_freed_pool(start + 8), "a block freed after a lookup found it is freed pool");
        st.quarantine.push_back(b.block);
    }

    #[test]
    fn a_zero_sized_block_holds_only_its_start_and_is_not_remembered() {
        let mut st = State::default();
        let z = block(0);
        let start = z.block.addr();
        st.pool.insert(start, z);
        assert_eq!(st.pool.live(start), Some((start, 0)));
        assert_eq!(st.pool.live(start + 1), None);
        assert_eq!(st.pool.hints.get(), Default::default());
    }
}
