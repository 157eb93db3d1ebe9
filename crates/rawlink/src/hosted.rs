//! The hosted backend: the real `rawlink.sys` loaded into ndis-host inside this process (Linux).
//!
//! [`Hosted::start`] loads the driver, gives NDIS its adapters, calls DriverEntry (which binds them) and
//! connects the first adapter's cable: to a Linux TAP interface ([`Cable::Tap`], root only; the Linux network
//! stack is then the adapter's neighbour) or to an in-process [`Wire`] ([`Cable::Wire`]) whose far end the
//! caller holds — or a [`Responder`] that answers ARP and ICMP echo as a host at 192.0.2.1 would. A receive pump
//! indicates what arrives. Requests go through ndis-host's I/O manager exactly as a Windows program's would
//! through the real one. [`Hosted::shutdown`] unloads the driver and returns the verifier's findings.

use crate::backend::{Backend, Completion, Failure, RawHandle, RingMemory};
use crate::error::{Error, Status};
use crate::packet::{Arp, Echo};
use ndis_host::backend::tap::TapBackend;
use ndis_host::backend::Wire;
use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{Access, Handle, IoResult, OpenError, ProcessId, UserMemory};
use ndis_host::ndis::AdapterConfig;
pub use ndis_host::security::Token;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// The name programs open (`\\.\RawLink`).
pub const DEVICE_PATH: &str = "\\\\.\\RawLink";

/// What the first adapter's cable connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cable {
    /// An in-process wire; [`Hosted::wire`] is its far end.
    Wire,
    /// The Linux TAP interface of this name (created if missing; an existing persistent one is used as it is,
    /// with its addresses). Needs CAP_NET_ADMIN and `/dev/net/tun`.
    Tap(String),
}

/// How to start the hosted driver.
#[derive(Debug, Clone)]
pub struct HostedOptions {
    /// The driver image.
    pub driver: PathBuf,
    pub cable: Cable,
    /// How many virtual Ethernet adapters NDIS offers (the cable connects the first).
    pub adapters: u8,
    /// Print every call across the driver boundary.
    pub trace: bool,
    /// The access handles are opened with (as a Windows program's CreateFile asks for it).
    pub access: Access,
    /// Call DriverEntry. Without it the image is loaded but the driver never started: opening
    /// `\\.\RawLink` then fails as it does on Windows with the service stopped.
    pub start: bool,
    /// Who opens the handles: `None` is the initial process (an elevated administrator); a token such as
    /// [`Token::standard_user`] gives the handles a process of their own running with it, so the driver's
    /// device DACL is checked against that caller by ndis-host's access check, as Windows' I/O manager does.
    pub user: Option<Token>,
}

impl HostedOptions {
    pub fn new(driver: impl Into<PathBuf>, cable: Cable) -> Self {
        Self {
            driver: driver.into(),
            cable,
            adapters: 1,
            trace: false,
            access: Access::READ_WRITE,
            start: true,
            user: None,
        }
    }
}

/// Where `cargo xtask build` puts the driver: `$RAWLINK_PACKAGE_DIR/rawlink.sys`, else the package folder next to
/// the running program's target directory (`target/rawlink-package/rawlink.sys` for `target/debug/rawlink`).
pub fn default_driver_path() -> PathBuf {
    if let Some(d) = std::env::var_os("RAWLINK_PACKAGE_DIR") {
        return PathBuf::from(d).join("rawlink.sys");
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/rawlink, target/debug/deps/test-binary, target/release/rawlink
    for dir in exe.ancestors().skip(1).take(3) {
        let p = dir.join("rawlink-package").join("rawlink.sys");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("target/rawlink-package/rawlink.sys")
}

/// What the verifier and the cable reported at unload.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// Pool blocks left after unload.
    pub pool_left: usize,
    /// TAP counters: frames to Linux, from Linux.
    pub tap: Option<(u64, u64)>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.violations.is_empty() && self.pool_left == 0
    }
}

/// The real rawlink.sys running in ndis-host in this process.
#[derive(Debug)]
pub struct Hosted {
    host: RwLock<Option<Host>>,
    access: Access,
    /// The emulated process the handles belong to.
    pid: ProcessId,
    /// Who that process runs as (for messages).
    user: Option<String>,
    wire: Option<Wire>,
    tap: Option<Arc<TapBackend>>,
    adapter: AdapterConfig,
    cable: Cable,
    driver: PathBuf,
    responder: Option<Arc<AtomicBool>>,
}

/// Shares the TAP between the host (which owns its backends) and [`Hosted`] (which reports its counters).
#[derive(Debug)]
struct SharedTap(Arc<TapBackend>);

impl ndis_host::backend::Backend for SharedTap {
    fn transmit(&self, frame: &[u8]) {
        self.0.transmit(frame);
    }
    fn poll(&self) -> Vec<Vec<u8>> {
        self.0.poll()
    }
    fn wait(&self, timeout: Duration) {
        self.0.wait(timeout);
    }
}

fn backend_error(e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("hosted driver: {e}"))
}

impl Hosted {
    /// Loads and starts the driver as `options` say.
    pub fn start(options: HostedOptions) -> Result<Self, Error> {
        if !options.driver.is_file() {
            return Err(Error::DriverNotInstalled {
                hint: format!(
                    "{} does not exist; build it with `cargo xtask build` (or name it with --driver / \
                     RAWLINK_PACKAGE_DIR)",
                    options.driver.display()
                ),
            });
        }
        // The TAP first: its errors (no /dev/net/tun, no CAP_NET_ADMIN) need no driver to report.
        let tap = match &options.cable {
            Cable::Tap(name) => {
                let t = TapBackend::open(name).map_err(|e| Error::Backend(format!("--tap {name}: {e}")))?;
                t.set_up().map_err(|e| Error::Backend(format!("--tap {name}: bringing it up: {e}")))?;
                Some(Arc::new(t))
            }
            Cable::Wire => None,
        };
        let config = HostConfig { echo_trace: options.trace, ..HostConfig::default() };
        let mut host = Host::load_file(&options.driver, config)
            .map_err(|e| backend_error(format!("loading {}: {e}", options.driver.display())))?;
        let adapter = AdapterConfig::ethernet(1);
        for n in 1..=options.adapters.max(1) {
            host.add_adapter(AdapterConfig::ethernet(n)).map_err(backend_error)?;
        }
        let mut wire = None;
        match &tap {
            Some(t) => host.set_backend(0, Some(Box::new(SharedTap(Arc::clone(t))))),
            None => {
                let (near, far) = Wire::pair();
                host.set_backend(0, Some(Box::new(near)));
                wire = Some(far);
            }
        }
        if options.start {
            let status = host.driver_entry().map_err(|e| backend_error(format!("DriverEntry: {e}")))?;
            if status < 0 {
                return Err(Error::DriverNotStarted {
                    // CAST: printed as the unsigned hex the docs use.
                    hint: format!("DriverEntry failed with {:#010x}", status as u32),
                });
            }
            host.start_receive_pump().map_err(backend_error)?;
        }
        let user = options.user.as_ref().map(|t| t.name.clone());
        let pid = match options.user {
            Some(token) => host.new_process_as(token),
            None => ProcessId::INITIAL,
        };
        Ok(Self {
            host: RwLock::new(Some(host)),
            access: options.access,
            pid,
            user,
            wire,
            tap,
            adapter,
            cable: options.cable,
            driver: options.driver,
            responder: None,
        })
    }

    /// The far end of the in-process wire (with [`Cable::Wire`]), unless a [`Responder`] took it.
    pub fn wire(&self) -> Option<&Wire> {
        if self.responder.is_some() {
            return None;
        }
        self.wire.as_ref()
    }

    /// The first adapter as NDIS offers it (its MAC, MTU, name).
    pub fn adapter(&self) -> &AdapterConfig {
        &self.adapter
    }

    /// Puts a [`Responder`] at the far end of the in-process wire: a host at `ip` that answers ARP and ICMP
    /// echo, so `arp` and `ping` have someone to talk to without a TAP.
    pub fn start_responder(&mut self, ip: Ipv4Addr) -> Result<(), Error> {
        let Some(wire) = self.wire.clone() else {
            return Err(Error::InvalidArgument("the responder needs the in-process wire (no --tap)".into()));
        };
        let stop = Arc::new(AtomicBool::new(false));
        let r = Responder { ip, mac: RESPONDER_MAC, wire };
        let s = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("wire-responder".into())
            .spawn(move || r.run(&s))
            .map_err(|e| backend_error(format!("starting the responder: {e}")))?;
        self.responder = Some(stop);
        Ok(())
    }

    /// Runs `f` with the machine (for tests: indicate link changes, power transitions).
    pub fn with_host<R>(&self, f: impl FnOnce(&Host) -> R) -> Result<R, Error> {
        let g = self.read_host();
        let h = g.as_ref().ok_or_else(|| backend_error("the driver was unloaded"))?;
        Ok(f(h))
    }

    fn read_host(&self) -> RwLockReadGuard<'_, Option<Host>> {
        self.host.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes every handle still open, unloads the driver and returns the verifier's report.
    pub fn shutdown(&self) -> Result<Report, Error> {
        if let Some(s) = &self.responder {
            s.store(true, Ordering::SeqCst);
        }
        let mut g = self.host.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut host) = g.take() else { return Err(backend_error("already unloaded")) };
        for h in host.open_handles() {
            let _ = host.close(h);
        }
        host.unload().map_err(|e| backend_error(format!("DriverUnload: {e}")))?;
        let report = Report {
            violations: host.violations().iter().map(ToString::to_string).collect(),
            pool_left: host.pool().len(),
            tap: self.tap.as_ref().map(|t| {
                let s = t.stats();
                (s.transmitted, s.received)
            }),
        };
        drop(host);
        Ok(report)
    }

    fn handle(&self, h: RawHandle) -> Handle {
        Handle { pid: self.pid, value: h.0 }
    }

    /// Waits for a submitted request: up to `timeout` (`None`: for ever), then cancels it and waits for the
    /// cancellation, so nothing of the request is in flight when this returns.
    fn complete(p: &mut ndis_host::io::PendingIo<'_>, timeout: Option<Duration>, output: &mut [u8]) -> Completion {
        let start = Instant::now();
        loop {
            match p.wait(Duration::from_millis(20)) {
                Ok(Some(r)) => return finish(&r, output),
                Ok(None) => {}
                Err(e) => return Err(Failure::Backend(e.to_string())),
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                let _ = p.cancel();
                return match p.wait(Duration::from_secs(5)) {
                    Ok(Some(r)) if r.status == ndis_host::io::STATUS_CANCELLED => Err(Failure::TimedOut),
                    // It completed before the cancel reached it.
                    Ok(Some(r)) => finish(&r, output),
                    Ok(None) => Err(Failure::Backend("a cancelled request did not complete within 5 s".into())),
                    Err(e) => Err(Failure::Backend(e.to_string())),
                };
            }
        }
    }
}

impl Drop for Hosted {
    fn drop(&mut self) {
        if let Some(s) = &self.responder {
            s.store(true, Ordering::SeqCst);
        }
    }
}

/// A request's result as the backend reports it: the output copied, the count returned. Warnings
/// (STATUS_NO_MORE_ENTRIES) are failures too, as DeviceIoControl reports them.
fn finish(r: &IoResult, output: &mut [u8]) -> Completion {
    if r.status < 0 {
        return Err(Failure::Status(Status::Nt(r.status)));
    }
    let n = r.output.len().min(output.len());
    if let (Some(d), Some(s)) = (output.get_mut(..n), r.output.get(..n)) {
        d.copy_from_slice(s);
    }
    Ok(r.information)
}

impl Backend for Hosted {
    fn open(&self) -> Result<RawHandle, Error> {
        let g = self.read_host();
        let host = g.as_ref().ok_or_else(|| backend_error("the driver was unloaded"))?;
        match host.open_in(self.pid, DEVICE_PATH, self.access) {
            Ok(h) => Ok(RawHandle(h.value)),
            Err(OpenError::Status(s)) => {
                let status = Status::Nt(s);
                Err(match status.kind() {
                    crate::StatusKind::NotFound => Error::DriverNotStarted {
                        hint: format!(
                            "{DEVICE_PATH} does not exist ({status}): {} was loaded but DriverEntry never ran, \
                             as with a stopped RAWLINK service; start it as Administrator with \
                             `sc.exe start RAWLINK` (the hosted backend starts it unless told not to)",
                            self.driver.display()
                        ),
                    },
                    crate::StatusKind::AccessDenied => Error::AccessDenied {
                        what: format!("opening {DEVICE_PATH} ({status})"),
                        hint: format!(
                            "the device admits only Administrators and SYSTEM: run as Administrator{}",
                            self.user.as_ref().map(|u| format!(" (this process runs as a {u})")).unwrap_or_default()
                        ),
                    },
                    _ => Error::Driver { op: "open \\\\.\\RawLink", status, hint: None },
                })
            }
            Err(OpenError::Host(e)) => Err(backend_error(e)),
        }
    }

    fn close(&self, handle: RawHandle) {
        let g = self.read_host();
        if let Some(host) = g.as_ref() {
            let _ = host.close(self.handle(handle));
        }
    }

    fn ioctl(&self, h: RawHandle, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Completion {
        let g = self.read_host();
        let host = g.as_ref().ok_or_else(|| Failure::Backend("the driver was unloaded".into()))?;
        let mut p = host
            .submit_ioctl(self.handle(h), code, input, output.len())
            .map_err(|e| Failure::Backend(e.to_string()))?;
        Self::complete(&mut p, timeout, output)
    }

    fn read(&self, h: RawHandle, output: &mut [u8], timeout: Option<Duration>) -> Completion {
        let g = self.read_host();
        let host = g.as_ref().ok_or_else(|| Failure::Backend("the driver was unloaded".into()))?;
        let mut p = host.submit_read(self.handle(h), output.len()).map_err(|e| Failure::Backend(e.to_string()))?;
        Self::complete(&mut p, timeout, output)
    }

    fn write(&self, h: RawHandle, input: &[u8], timeout: Option<Duration>) -> Completion {
        let g = self.read_host();
        let host = g.as_ref().ok_or_else(|| Failure::Backend("the driver was unloaded".into()))?;
        let mut p = host.submit_write(self.handle(h), input).map_err(|e| Failure::Backend(e.to_string()))?;
        Self::complete(&mut p, timeout, &mut [])
    }

    fn attach_ring(&self, h: RawHandle, setup: &[u8], len: usize) -> Result<Box<dyn RingMemory>, Failure> {
        let g = self.read_host();
        let host = g.as_ref().ok_or_else(|| Failure::Backend("the driver was unloaded".into()))?;
        let mem = Arc::new(UserMemory::new(len).map_err(|e| Failure::Backend(format!("ring memory: {e}")))?);
        let mut p = host
            .submit_ioctl_shared(self.handle(h), rawlink_abi::ring::IOCTL_RAWLINK_RING_ATTACH, setup, &mem)
            .map_err(|e| Failure::Backend(e.to_string()))?;
        if p.is_completed() {
            // Refused (the request does not stay pending when the ring attaches).
            return match p.wait(Duration::from_secs(5)) {
                Ok(Some(r)) => Err(Failure::Status(Status::Nt(r.status))),
                Ok(None) => Err(Failure::Backend("RING_ATTACH completed but did not finish".into())),
                Err(e) => Err(Failure::Backend(e.to_string())),
            };
        }
        Ok(Box::new(HostedRing { mem, irp: p.irp(), done: Mutex::new(None) }))
    }

    fn ring_detached(&self, ring: &dyn RingMemory) -> Option<Failure> {
        let r = ring.as_any().downcast_ref::<HostedRing>()?;
        let mut done = r.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if done.is_none() {
            let g = self.read_host();
            let host = g.as_ref()?;
            if let Ok(Some(res)) = host.wait_request(r.irp, Duration::ZERO) {
                *done = Some(res.status);
            }
        }
        done.map(|s| Failure::Status(Status::Nt(s)))
    }

    fn detach_ring(&self, ring: &dyn RingMemory) {
        let Some(r) = ring.as_any().downcast_ref::<HostedRing>() else { return };
        let mut done = r.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if done.is_some() {
            return;
        }
        let g = self.read_host();
        let Some(host) = g.as_ref() else { return };
        let _ = host.cancel_request(r.irp);
        if let Ok(Some(res)) = host.wait_request(r.irp, Duration::from_secs(5)) {
            *done = Some(res.status);
        }
    }

    fn describe(&self) -> String {
        let cable = match (&self.cable, &self.tap) {
            (Cable::Tap(_), Some(t)) => format!("TAP interface {}", t.name()),
            _ if self.responder.is_some() => {
                "the in-process wire (simulated peer 192.0.2.1 answers ARP and ping)".into()
            }
            _ => "the in-process wire".into(),
        };
        let user = self.user.as_ref().map(|u| format!(", opened by a {u}")).unwrap_or_default();
        format!("hosted: {} in ndis-host, adapter 1 on {cable}{user}", self.driver.display())
    }
}

/// The MAC of the simulated peer on the in-process wire (locally administered).
pub const RESPONDER_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0xC0, 0x00, 0x01];

/// A simulated neighbour on the in-process wire: answers ARP requests for its address and ICMP echo requests
/// to it. It is no Linux kernel — it is what `arp` and `ping` talk to when there is no TAP.
#[derive(Debug)]
pub struct Responder {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub wire: Wire,
}

impl Responder {
    /// Answers what arrives until `stop` is set.
    pub fn run(&self, stop: &AtomicBool) {
        use ndis_host::backend::Backend as _;
        while !stop.load(Ordering::SeqCst) {
            let frames = self.wire.poll();
            if frames.is_empty() {
                // Woken by the next frame (the wire's condition variable), so an answer goes out at once.
                self.wire.wait(Duration::from_millis(10));
            }
            for f in frames {
                if let Some(reply) = self.answer(&f) {
                    self.wire.transmit(&reply);
                }
            }
        }
    }

    /// The frame this host sends in answer to `f`, if any.
    pub fn answer(&self, f: &[u8]) -> Option<Vec<u8>> {
        if let Some(a) = Arp::parse(f) {
            return (a.op == Arp::REQUEST && a.target_ip == self.ip).then(|| Arp::reply_to(&a, self.mac).to_frame());
        }
        let e = Echo::parse(f)?;
        (e.icmp_type == Echo::REQUEST && e.dst_ip == self.ip && e.dst_mac == self.mac).then(|| e.reply().to_frame())
    }
}

/// Whether this process can create TAP devices (root, with /dev/net/tun).
pub fn can_use_tap() -> bool {
    // Effective uid 0 stands for CAP_NET_ADMIN here, as in the demo and the tests.
    Path::new(ndis_host::backend::tap::TUN_DEVICE).exists() && is_root()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// A mapped ring's memory in the hosted machine: caller memory the I/O manager locked for the attach request.
#[derive(Debug)]
struct HostedRing {
    mem: Arc<UserMemory>,
    irp: usize,
    /// The attach request's final status, once it finished.
    done: Mutex<Option<i32>>,
}

impl RingMemory for HostedRing {
    fn load_u32(&self, offset: usize) -> u32 {
        self.mem.load_u32(offset)
    }
    fn store_u32(&self, offset: usize, v: u32) {
        self.mem.store_u32(offset, v);
    }
    fn read_into(&self, offset: usize, out: &mut [u8]) -> bool {
        self.mem.read_into(offset, out)
    }
    fn request(&self) -> usize {
        self.irp
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
