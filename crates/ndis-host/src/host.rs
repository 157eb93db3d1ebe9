//! The public API: [`Host`], a loaded driver in its emulated machine, the top layer of ndis-host (see the
//! crate documentation). Its I/O-manager and NDIS requests are in `host/io.rs` and `host/ndis.rs`.

mod io;
mod ndis;

use crate::faults::FaultPlan;
use crate::loader::{self, LoadedImage};
use crate::native::cpu;
use crate::native::memory::HostBlock;
use crate::trace::TraceEvent;
use crate::verifier::{Rule, Violation};
use crate::wdk::FunctionTable;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::machine::*;
pub use crate::machine::{tag_text, Bugcheck, HostConfig, HostError, ProtocolCharacteristics, NDIS_689};

/// How many CR8 accesses of driver code trapped into the fault handler in this process so far (patched
/// sites never do; see [`HostConfig::patch_cr8`]).
pub fn cr8_traps() -> u64 {
    crate::native::cpu::cr8_traps()
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
        let options = loader::LoadOptions { patch_cr8: config.patch_cr8, address: config.image_address };
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
            violations: Mutex::new(crate::verifier::Findings::default()),
            faults: Mutex::new(faults),
            bugcheck: Mutex::new(None),
            down: AtomicBool::new(false),
            driver_object,
            registry_path,
            ke: crate::ke::Kernel::default(),
            user_flip: crate::io::FlipState::default(),
            double_fetch_watch: AtomicBool::new(false),
            irp_changed: std::sync::Condvar::new(),
            irp_waiters: std::sync::atomic::AtomicUsize::new(0),
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
        if self.inner.config.inline_processors {
            return self.run_job(what, f, |job| {
                let _running = crate::machine::lock(&target.busy);
                // CAST: two processors.
                crate::machine::run_inline(&self.inner, cpu as u32, job)
                    .map_err(|e| HostError::State(format!("allocating a kernel stack for processor {cpu}: {e}")))
            });
        }
        self.run_job(what, f, |job| target.jobs.send(job).map_err(|_| HostError::Down))
    }

    /// Runs `f` on a caller thread of its own (see `Threads`) as processor `processor`, and waits for it:
    /// how the I/O manager runs a request in the thread that issued it. With
    /// `HostConfig::inline_requests`, runs it on this thread, on a kernel stack of its own (`native::inline`).
    pub(crate) fn run_in_caller_thread<R: Send + 'static>(
        &self,
        processor: u32,
        what: &str,
        f: impl FnOnce(&Inner) -> R + Send + 'static,
    ) -> Result<R, HostError> {
        if self.inner.config.inline_requests {
            return self.run_job(what, f, |job| {
                crate::machine::run_inline(&self.inner, processor, job)
                    .map_err(|e| HostError::State(format!("allocating a kernel stack for a request: {e}")))
            });
        }
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
            Box::new(move || {
                let _ = tx.send(r);
            })
        });
        send(job)?;
        let start = Instant::now();
        // Most calls return within microseconds: poll before sleeping (see `HANDOFF_SPIN`).
        match crate::machine::poll_handoff(&rx, crate::machine::HANDOFF_SPIN) {
            Ok(r) => return Ok(r),
            Err(mpsc::TryRecvError::Disconnected) => return Err(HostError::Down),
            Err(mpsc::TryRecvError::Empty) => {}
        }
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

    /// The verifier's findings so far: the first [`crate::verifier::FINDINGS_KEPT`], then (if there were more)
    /// one that says how many more were counted and not kept.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.inner.violations).list()
    }

    /// How many verifier findings were counted but not kept (beyond [`crate::verifier::FINDINGS_KEPT`]).
    pub fn violations_dropped(&self) -> u64 {
        lock(&self.inner.violations).dropped()
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
