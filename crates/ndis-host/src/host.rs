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
use crate::loader::{self, LoadError, LoadedImage};
use crate::native::cpu;
use crate::native::memory::HostBlock;
use crate::trace::{Direction, TraceEvent};
use crate::verifier::{Rule, Violation};
use crate::wdk::FunctionTable;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    pub pool: BTreeMap<usize, PoolBlock>,
    /// The most recently freed pool blocks (start, size), poisoned, to recognise use after free.
    pub freed_pool: std::collections::VecDeque<(usize, usize)>,
    /// Their memory, kept (in quarantine) until they leave `freed_pool`: a driver that touches freed pool
    /// reads poison and writes into memory nobody else uses, instead of corrupting the host's heap.
    pub quarantine: std::collections::VecDeque<crate::native::memory::HostBlock>,
    pub devices: Vec<DeviceRec>,
    pub links: BTreeMap<String, String>,
    pub protocols: Vec<ProtocolRec>,
    pub completed_irps: HashMap<usize, u32>,
    /// Held spin locks: lock address → holder's thread id.
    pub spin_locks: HashMap<usize, std::thread::ThreadId>,
    /// NDIS: adapters, opens, pools, indications.
    pub ndis: crate::ndis::NdisState,
    /// The I/O manager's files, handles, IRPs and MDLs.
    pub io: crate::io::IoState,
    /// Tokens, device descriptors, kernel handles and the registry.
    pub security: crate::security::SecurityState,
}

/// Everything the exports reach through the current processor.
#[derive(Debug)]
pub(crate) struct Inner {
    pub config: HostConfig,
    pub image: LoadedImage,
    image_slot: Option<usize>,
    pub state: Mutex<State>,
    pub trace: Mutex<crate::trace::TraceRing>,
    seq: AtomicU64,
    pub violations: Mutex<Vec<Violation>>,
    pub faults: Mutex<FaultPlan>,
    pub bugcheck: Mutex<Option<Bugcheck>>,
    pub down: AtomicBool,
    /// DRIVER_OBJECT + DRIVER_EXTENSION + name strings, lent to the driver for its lifetime.
    pub driver_object: HostBlock,
    pub registry_path: HostBlock,
    /// Dispatcher, timers, work items and stack measurements (crate::ke).
    pub ke: crate::ke::Kernel,
    /// A hostile caller's write into a request's buffer, armed by a test (crate::io::UserFlip).
    pub user_flip: crate::io::FlipState,
    /// Watch each request's caller input buffer for double fetches (crate::native::watch).
    pub double_fetch_watch: AtomicBool,
    /// Signalled (with the state lock) whenever an outstanding IRP is completed, its dispatch routine
    /// returns, its cancel ends, or the machine bug-checks: what a waiting caller waits on.
    pub(crate) irp_changed: std::sync::Condvar,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
        let live = self.pool.range(..=addr).next_back().is_some_and(|(&start, b)| addr < start + b.size.max(1));
        !live && self.freed_pool.iter().any(|&(start, size)| addr >= start && addr < start + size.max(1))
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

    /// Starts a trace event; returns its index for [`Inner::trace_result`].
    pub fn trace_call(&self, direction: Direction, name: &str, args: Vec<(&'static str, String)>) -> usize {
        if direction == Direction::DriverToHost {
            self.user_flip.on_driver_call();
        }
        let ev = TraceEvent {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            direction,
            name: name.to_owned(),
            args,
            result: None,
            irql: cpu::irql(),
        };
        if self.config.echo_trace {
            eprintln!("{ev}");
        }
        // CAST: the seq is the handle trace_result gets back (a u64 on a 64-bit host).
        let seq = ev.seq as usize;
        lock(&self.trace).push(ev);
        seq
    }

    /// Completes a trace event with its result.
    pub fn trace_result(&self, index: usize, result: String) {
        if self.config.echo_trace {
            eprintln!("        -> {result}");
        }
        lock(&self.trace).complete(index as u64, result);
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

    /// Records a bug check; the calling processor never returns.
    pub fn bugcheck(&self, b: Bugcheck) -> ! {
        *lock(&self.bugcheck) = Some(b);
        self.down.store(true, Ordering::Release);
        self.irp_changed.notify_all();
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

/// How many CR8 accesses of driver code trapped into the fault handler in this process so far (patched
/// sites never do; see [`HostConfig::patch_cr8`]).
pub fn cr8_traps() -> u64 {
    cpu::cr8_traps()
}

type Job = Box<dyn FnOnce() + Send>;

/// A host thread that runs driver code, as one processor.
#[derive(Debug)]
struct Cpu {
    jobs: mpsc::Sender<Job>,
}

/// Stack for processor threads. The driver's own budget is the kernel's 24 KiB; host exports run on the
/// same stack, so the thread gets more and the driver's depth is measured separately.
const CPU_STACK: usize = 1024 * 1024;

impl Cpu {
    fn start(inner: &Arc<Inner>, index: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let ctx = Arc::clone(inner);
        std::thread::Builder::new().name(format!("cpu{index}")).stack_size(CPU_STACK).spawn(move || {
            cpu::set_machine(Arc::as_ptr(&ctx) as usize);
            CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
            cpu::set_irql(0);
            // CAST: two processors.
            cpu::set_processor(index as u32);
            while let Ok(job) = rx.recv() {
                job();
            }
            CURRENT.with(|c| c.borrow_mut().take());
        })?;
        Ok(Self { jobs: tx })
    }
}

/// A job for a [`Threads`] worker, with the worker's own sender (returned to the idle list afterwards) and
/// the processor number it runs as.
struct ThreadJob(Job, mpsc::Sender<ThreadJob>, u32);

/// Host threads that stand for the threads of callers entering the kernel (an application's thread in
/// ReadFile, DeviceIoControl or CloseHandle): each I/O request runs its dispatch routine on a thread of its
/// own, as on Windows, so a dispatch routine that blocks (waits on a KEVENT at PASSIVE_LEVEL) does not keep
/// another caller's request — a CloseHandle's IRP_MJ_CLEANUP — from reaching the driver. Idle threads are
/// reused; a thread whose job never returns (a driver that blocks for ever, faults or bug-checks) is simply
/// not reused.
#[derive(Debug, Default)]
struct Threads {
    /// Senders of idle workers; a worker holds only a weak reference, so dropping the list ends them.
    idle: Arc<Mutex<Vec<mpsc::Sender<ThreadJob>>>>,
}

impl Threads {
    /// Hands `job` to an idle worker, or to a new one, to run as processor `processor`.
    fn send(&self, inner: &Arc<Inner>, processor: u32, job: Job) -> Result<(), HostError> {
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
            while let Ok(ThreadJob(job, me, processor)) = rx.recv() {
                cpu::set_irql(0);
                cpu::set_processor(processor);
                job();
                match idle.upgrade() {
                    Some(list) => lock(&list).push(me),
                    None => break,
                }
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

/// A loaded driver in its emulated machine.
#[derive(Debug)]
pub struct Host {
    pub(crate) inner: Arc<Inner>,
    cpus: Vec<Cpu>,
    threads: Threads,
    entry_status: Option<i32>,
    unloaded: bool,
}

/// Size of the driver-object block: DRIVER_OBJECT, DRIVER_EXTENSION, then string storage.
const DRIVER_BLOCK: usize = 4096;

impl Host {
    /// Reads and loads a driver file.
    pub fn load_file(path: &std::path::Path, config: HostConfig) -> Result<Self, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Io { path: path.display().to_string(), source })?;
        Self::load(&bytes, config)
    }

    /// Loads a driver image into a new machine (nothing of the driver runs yet).
    pub fn load(bytes: &[u8], config: HostConfig) -> Result<Self, HostError> {
        let functions = FunctionTable::wdk_16299();
        let options = loader::LoadOptions { patch_cr8: config.patch_cr8 };
        let image = loader::load_with(bytes, &crate::exports::Exports, &functions, options)?;
        let image_slot = cpu::register_image(image.base(), image.size());
        let driver_object = HostBlock::new(DRIVER_BLOCK, 16).ok_or(HostError::State("out of memory".into()))?;
        let registry_path = HostBlock::new(512, 16).ok_or(HostError::State("out of memory".into()))?;
        crate::exports::init_driver_object(&driver_object, &registry_path, &image, &config.service_name);
        let faults = FaultPlan::new(config.faults.clone());
        let trace_file = match &config.trace_file {
            Some(p) => Some(
                std::fs::File::create(p).map_err(|source| HostError::Io { path: p.display().to_string(), source })?,
            ),
            None => None,
        };
        let trace = crate::trace::TraceRing::new(config.trace_capacity, trace_file);
        let inner = Arc::new(Inner {
            config,
            image,
            image_slot,
            state: Mutex::new(State::default()),
            trace: Mutex::new(trace),
            seq: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
            faults: Mutex::new(faults),
            bugcheck: Mutex::new(None),
            down: AtomicBool::new(false),
            driver_object,
            registry_path,
            ke: crate::ke::Kernel::default(),
            user_flip: crate::io::FlipState::default(),
            double_fetch_watch: AtomicBool::new(false),
            irp_changed: std::sync::Condvar::new(),
        });
        cpu::refresh_shared_clock();
        crate::exports::start_system_threads(&inner)
            .map_err(|e| HostError::State(format!("starting system threads: {e}")))?;
        let cpus = (0..2).map(|i| Cpu::start(&inner, i)).collect::<Result<Vec<_>, _>>().map_err(|e| {
            inner.ke.shutdown();
            HostError::State(format!("starting processor threads: {e}"))
        })?;
        Ok(Self { inner, cpus, threads: Threads::default(), entry_status: None, unloaded: false })
    }

    /// Runs `f` on processor `cpu` and waits for it.
    pub(crate) fn run<R: Send + 'static>(
        &self,
        cpu: usize,
        what: &str,
        f: impl FnOnce(&Inner) -> R + Send + 'static,
    ) -> Result<R, HostError> {
        let target = self.cpus.get(cpu).ok_or(HostError::State(format!("no processor {cpu}")))?;
        self.run_job(what, f, |job| target.jobs.send(job).map_err(|_| HostError::Down))
    }

    /// Runs `f` on a caller thread of its own (see `Threads`) as processor `processor`, and waits for it:
    /// how the I/O manager runs a request in the thread that issued it.
    pub(crate) fn run_in_caller_thread<R: Send + 'static>(
        &self,
        processor: u32,
        what: &str,
        f: impl FnOnce(&Inner) -> R + Send + 'static,
    ) -> Result<R, HostError> {
        self.run_job(what, f, |job| self.threads.send(&self.inner, processor, job))
    }

    /// Hands `f` to a thread with `send` and waits for its result, reporting a bug check, a fault or a hang.
    fn run_job<R: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&Inner) -> R + Send + 'static,
        send: impl FnOnce(Job) -> Result<(), HostError>,
    ) -> Result<R, HostError> {
        if self.inner.down.load(Ordering::Acquire) {
            return Err(HostError::Down);
        }
        // A fault in this image that no call reported came from a system thread (a DPC, a timer callback, a
        // work item): the machine is down from then on.
        let mine = Arc::as_ptr(&self.inner) as usize;
        if let Some(f) = cpu::last_fatal_of(mine).filter(|f| self.inner.image.contains(f.rip)) {
            self.inner.down.store(true, Ordering::Release);
            return Err(HostError::Fault {
                rip: f.rip,
                address: f.address,
                signal: f.signal,
                symbol: self.inner.symbolize(f.rip),
            });
        }
        let (tx, rx) = mpsc::channel();
        let inner = Arc::clone(&self.inner);
        let faults_before = cpu::fatal_count();
        let job: Job = Box::new(move || {
            let r = f(&inner);
            let _ = tx.send(r);
        });
        send(job)?;
        let start = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(r) => return Ok(r),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(HostError::Down),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(b) = *lock(&self.inner.bugcheck) {
                return Err(HostError::Bugcheck(b));
            }
            if cpu::fatal_count() != faults_before {
                // A stack overflow into the guard page below a driver call counts even in host code.
                if let Some(f) =
                    cpu::last_fatal_of(mine).filter(|f| self.inner.image.contains(f.rip) || f.in_stack_guard)
                {
                    self.inner.down.store(true, Ordering::Release);
                    return Err(HostError::Fault {
                        rip: f.rip,
                        address: f.address,
                        signal: f.signal,
                        symbol: self.inner.symbolize(f.rip).or_else(|| {
                            f.in_stack_guard
                                .then(|| "host code under the driver's frames: kernel stack overflow".to_owned())
                        }),
                    });
                }
            }
            if start.elapsed() > self.inner.config.call_timeout {
                self.inner.down.store(true, Ordering::Release);
                return Err(HostError::Hang { call: what.to_owned(), timeout: self.inner.config.call_timeout });
            }
        }
    }

    /// Calls a driver function on processor `cpu` at `irql`, tracing it and checking that the IRQL is
    /// restored on return.
    pub(crate) fn call_driver(
        &self,
        cpu: usize,
        irql: u8,
        name: &str,
        f: usize,
        args: Vec<(&'static str, u64)>,
    ) -> Result<u64, HostError> {
        let name = name.to_owned();
        let label = name.clone();
        self.run(cpu, &label, move |inner| crate::exports::call_into_driver(inner, irql, &name, f, &args))
    }

    /// The machine, for the crate's other modules.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Calls DriverEntry at PASSIVE_LEVEL, as the I/O manager does, and returns its status.
    /// The RegistryPath DriverEntry gets: the service key (its `Parameters` subkey holds the driver's settings).
    pub fn registry_path(&self) -> String {
        crate::native::exports::registry_path(&self.inner.registry_path)
    }

    /// Bytes of pool the driver holds now.
    pub fn pool_in_use(&self) -> usize {
        self.inner.state().pool.values().map(|b| b.size).sum()
    }

    pub fn driver_entry(&mut self) -> Result<i32, HostError> {
        self.driver_entry_at(0)
    }

    /// Calls DriverEntry at `irql` (tests use this to check the driver's own IRQL check).
    pub fn driver_entry_at(&mut self, irql: u8) -> Result<i32, HostError> {
        let entry = self.inner.image.entry;
        let drv = self.inner.driver_object.addr() as u64;
        let reg = self.inner.registry_path.addr() as u64;
        let r = self.call_driver(0, irql, "DriverEntry", entry, vec![("DriverObject", drv), ("RegistryPath", reg)])?;
        // CAST: NTSTATUS is the low 32 bits of RAX.
        let status = r as u32 as i32;
        self.entry_status = Some(status);
        if status == 0x103 {
            self.inner.violation(Rule::DriverEntry, "DriverEntry returned STATUS_PENDING; it must run synchronously");
        }
        if status < 0 {
            // The driver stays unloaded: it must have released everything.
            self.check_released("after DriverEntry failed");
            crate::exports::check_deferred_released(&self.inner, "after DriverEntry failed");
        } else {
            // NDIS offers the adapters present to the new protocol, then says so.
            self.bind_all()?;
        }
        Ok(status)
    }

    /// Calls DriverUnload (when DriverEntry succeeded and set one) and checks that everything was released.
    pub fn unload(&mut self) -> Result<(), HostError> {
        if self.unloaded {
            return Ok(());
        }
        self.unloaded = true;
        if self.entry_status.is_some_and(|s| s >= 0) {
            self.close_all_before_unload()?;
            let unload = crate::exports::driver_unload_routine(&self.inner);
            match unload {
                Some(f) => {
                    let drv = self.inner.driver_object.addr() as u64;
                    self.call_driver(0, 0, "DriverUnload", f, vec![("DriverObject", drv)])?;
                }
                None => self.inner.violation(Rule::DriverEntry, "DriverEntry succeeded without setting DriverUnload"),
            }
            self.check_released("after DriverUnload");
            crate::exports::check_deferred_released(&self.inner, "after DriverUnload");
            self.check_io_released("after DriverUnload");
        }
        Ok(())
    }

    /// Verifier checks for a driver that is no longer loaded.
    fn check_released(&self, when: &str) {
        let st = self.inner.state();
        let mut leaks: Vec<String> =
            st.pool.values().map(|b| format!("{} bytes tag '{}' ({})", b.size, tag_text(b.tag), b.api)).collect();
        leaks.sort();
        let devices: Vec<String> =
            st.devices.iter().map(|d| d.name.clone().unwrap_or_else(|| "(unnamed)".into())).collect();
        let links: Vec<String> = st.links.keys().cloned().collect();
        let protocols: Vec<String> =
            st.protocols.iter().filter(|p| !p.deregistered).map(|p| p.chars.name.clone()).collect();
        let held: usize = st.spin_locks.len();
        let opens = st.ndis.opens.iter().filter(|o| !o.closed).count();
        let pools = st.ndis.nbl_pools.len();
        let ndis_memory = st.ndis.ndis_memory.len();
        let outstanding = st.ndis.outstanding.len();
        drop(st);
        if opens != 0 {
            self.inner.violation(Rule::Ndis, format!("{when}: {opens} adapter open(s) never closed"));
        }
        if pools != 0 {
            self.inner.violation(Rule::Ndis, format!("{when}: {pools} NBL pool(s) never freed"));
        }
        if ndis_memory != 0 {
            self.inner.violation(
                Rule::Ndis,
                format!("{when}: {ndis_memory} block(s) of NDIS-allocated memory never freed (NdisFreeMemory)"),
            );
        }
        if outstanding != 0 {
            self.inner.violation(Rule::Ndis, format!("{when}: {outstanding} received NBL(s) never returned"));
        }
        crate::ndis::check_released(&self.inner, when);
        if !leaks.is_empty() {
            self.inner.violation(
                Rule::PoolLeak,
                format!("{when}: {} pool block(s) leaked: {}", leaks.len(), leaks.join(", ")),
            );
        }
        if !devices.is_empty() {
            self.inner
                .violation(Rule::ObjectLeak, format!("{when}: device object(s) not deleted: {}", devices.join(", ")));
        }
        if !links.is_empty() {
            self.inner
                .violation(Rule::ObjectLeak, format!("{when}: symbolic link(s) not deleted: {}", links.join(", ")));
        }
        let handles = crate::native::exports::open_handles(&self.inner);
        if !handles.is_empty() {
            self.inner
                .violation(Rule::ObjectLeak, format!("{when}: kernel handle(s) not closed: {}", handles.join(", ")));
        }
        if !protocols.is_empty() {
            self.inner.violation(
                Rule::Registration,
                format!("{when}: protocol(s) still registered: {}", protocols.join(", ")),
            );
        }
        if held != 0 {
            self.inner.violation(Rule::SpinLock, format!("{when}: {held} spin lock(s) still held"));
        }
    }

    /// The deepest stack use of every host→driver call name so far, in bytes below the host's frame (driver
    /// frames plus any host export frames under them); see [`crate::ke::STACK_BUDGET`].
    pub fn stack_report(&self) -> BTreeMap<String, crate::ke::StackUse> {
        lock(&self.inner.ke.stack).clone()
    }

    /// Every verifier finding so far.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.inner.violations).clone()
    }

    /// The trace events kept (the newest [`HostConfig::trace_capacity`]), oldest first.
    pub fn trace(&self) -> Vec<TraceEvent> {
        lock(&self.inner.trace).events()
    }

    /// How many trace events are kept, and how many were dropped to keep the ring's capacity.
    pub fn trace_retained(&self) -> (usize, u64) {
        let t = lock(&self.inner.trace);
        (t.len(), t.dropped())
    }

    /// Writes what is buffered to the trace file, if there is one.
    pub fn flush_trace(&self) {
        lock(&self.inner.trace).flush();
    }

    /// The calls the fault plan counted (api, n), in order, and those it failed.
    pub fn fault_history(&self) -> (Vec<(String, u64)>, Vec<(String, u64)>) {
        let f = lock(&self.inner.faults);
        (f.history.iter().cloned().collect(), f.injected.iter().cloned().collect())
    }

    /// Registered protocols: what each registered, and whether it is still registered.
    pub fn protocols(&self) -> Vec<(ProtocolCharacteristics, bool)> {
        self.inner.state().protocols.iter().map(|p| (p.chars.clone(), !p.deregistered)).collect()
    }

    /// Names of the device objects that exist.
    pub fn devices(&self) -> Vec<String> {
        self.inner.state().devices.iter().filter_map(|d| d.name.clone()).collect()
    }

    /// Symbolic links that exist (link → target).
    pub fn symbolic_links(&self) -> BTreeMap<String, String> {
        self.inner.state().links.clone()
    }

    /// Pool currently allocated: (tag, size) per block.
    pub fn pool(&self) -> Vec<(u32, usize)> {
        self.inner.state().pool.values().map(|b| (b.tag, b.size)).collect()
    }

    /// The loaded image.
    pub fn image(&self) -> &LoadedImage {
        &self.inner.image
    }

    /// The bug check, if the driver raised one.
    pub fn bugcheck(&self) -> Option<Bugcheck> {
        *lock(&self.inner.bugcheck)
    }

    /// The address of the DRIVER_OBJECT lent to the driver.
    pub fn driver_object(&self) -> usize {
        self.inner.driver_object.addr()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Idle caller threads end when their senders go.
        lock(&self.threads.idle).clear();
        self.inner.ke.shutdown();
    }
}

/// A pool tag as WinDbg prints it (`'RwLk'`).
pub fn tag_text(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect()
}
