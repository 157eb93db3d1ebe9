//! `ndis-host`: run rawlink.sys in an emulated Windows kernel and report what the verifier saw.

use clap::{Parser, Subcommand};
use ndis_host::backend::tap::TapBackend;
use ndis_host::backend::Backend;
use ndis_host::host::{Host, HostConfig};
use ndis_host::image::{audit, ImageInfo};
use ndis_host::wdk::FunctionTable;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "ndis-host", version, about = "Runs a Windows NDIS protocol driver in an emulated kernel on Linux")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load the driver, call DriverEntry, serve until Ctrl-C (or --once), unload, print the verifier's report.
    Run {
        /// Path to the driver image (rawlink.sys).
        driver: PathBuf,
        /// Print every call across the driver boundary as it happens.
        #[arg(long)]
        trace: bool,
        /// Unload right after DriverEntry instead of waiting for Ctrl-C.
        #[arg(long)]
        once: bool,
        /// How many virtual Ethernet adapters NDIS offers the driver.
        #[arg(long, default_value_t = 2)]
        adapters: u8,
        /// The NDIS version the emulated Windows reports, e.g. 6.30 or 6.89.
        #[arg(long, default_value = "6.89", value_parser = parse_ndis_version)]
        ndis: u32,
        /// Connect the first adapter to the Linux TAP interface NAME (created if needed, brought up, in this
        /// process's network namespace): the driver's sends reach the Linux stack and Linux's frames reach the
        /// driver. Needs CAP_NET_ADMIN and /dev/net/tun.
        #[arg(long, value_name = "NAME")]
        tap: Option<String>,
        /// NET_BUFFERs per NBL in the receive indications of TAP frames (frames that arrive together are
        /// grouped); 1, the default, is the common one-NET_BUFFER-per-NBL shape.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        nbs_per_nbl: u16,
        /// Write every call across the driver boundary to FILE as it happens (the in-memory trace keeps only
        /// the newest --trace-keep events, so a run of days stays bounded).
        #[arg(long, value_name = "FILE")]
        trace_file: Option<PathBuf>,
        /// How many trace events the machine keeps in memory.
        #[arg(long, value_name = "N", default_value_t = 4096)]
        trace_keep: usize,
    },
    /// Audit a driver image as the Windows loader and ApiValidator would: what Windows requires to load it,
    /// then rawlink's image policy (link.exe /DRIVER release conventions), reported separately. Fails on the
    /// first kind only, unless --strict.
    Audit {
        /// Path to the driver image.
        driver: PathBuf,
        /// Fail on image-policy findings too.
        #[arg(long)]
        strict: bool,
    },
}

fn parse_ndis_version(s: &str) -> Result<u32, String> {
    let (maj, min) = s.split_once('.').ok_or_else(|| format!("`{s}` is not MAJOR.MINOR"))?;
    let maj: u32 = maj.parse().map_err(|_| format!("bad major version in `{s}`"))?;
    let min: u32 = min.parse().map_err(|_| format!("bad minor version in `{s}`"))?;
    if maj != 6 || !(30..=89).contains(&min) {
        return Err(format!("NDIS {s} is not emulated (6.30 … 6.89)"));
    }
    Ok((maj << 16) | min)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Audit { driver, strict } => audit_cmd(&driver, strict),
        Command::Run { driver, trace, once, adapters, ndis, tap, nbs_per_nbl, trace_file, trace_keep } => {
            // The service is named after the file, as an INF usually names it (rlprot.sys: RLPROT).
            let service = driver.file_stem().and_then(|s| s.to_str()).unwrap_or("RAWLINK").to_ascii_uppercase();
            let config = HostConfig {
                service_name: service,
                ndis_version: ndis,
                echo_trace: trace,
                trace_capacity: trace_keep,
                trace_file,
                ..HostConfig::default()
            };
            run(&driver, config, once, adapters, tap.as_deref(), nbs_per_nbl)
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn audit_cmd(path: &std::path::Path, strict: bool) -> ExitCode {
    let bytes = match read(path) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let info = match ImageInfo::parse(&bytes) {
        Ok(i) => i,
        Err(e) => return fail(&format!("{}: {e}", path.display())),
    };
    println!("{}: PE32+ AMD64, subsystem {}, {} bytes", path.display(), info.subsystem, bytes.len());
    println!("  entry point   {:#x} (DriverEntry)", info.entry_point);
    println!("  checksum      {:#x} (computed {:#x})", info.check_sum, info.computed_check_sum);
    println!("  dll flags     {:#06x}", info.dll_characteristics);
    for s in &info.sections {
        println!(
            "  section {:<8} rva {:#07x} size {:#07x} flags {:#010x}",
            s.name, s.virtual_address, s.virtual_size, s.characteristics
        );
    }
    println!("  imports ({}):", info.imports.len());
    for i in &info.imports {
        println!("    {i}");
    }
    let findings = audit(&info, &FunctionTable::wdk_16299());
    let (windows, policy): (Vec<_>, Vec<_>) =
        findings.iter().partition(|f| f.requirement() == ndis_host::image::Requirement::Windows);
    if windows.is_empty() {
        println!("Windows load requirements: met");
    } else {
        println!("Windows load requirements: NOT met, the driver does not load");
    }
    for f in &windows {
        println!("  audit: {f}");
    }
    if policy.is_empty() {
        println!("image policy (link.exe /DRIVER release conventions): met");
    } else {
        println!("image policy (link.exe /DRIVER release conventions): {} finding(s)", policy.len());
    }
    for f in &policy {
        println!("  policy: {f}");
    }
    if windows.is_empty() && (policy.is_empty() || !strict) {
        println!("audit: {}", if findings.is_empty() { "clean" } else { "loads on Windows" });
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Shares a TAP backend between the host (which owns its backends) and `run` (which reports its counters).
#[derive(Debug)]
struct SharedTap(Arc<TapBackend>);

impl Backend for SharedTap {
    fn transmit(&self, frame: &[u8]) {
        self.0.transmit(frame);
    }
    fn poll(&self) -> Vec<Vec<u8>> {
        self.0.poll()
    }
}

/// Opens the TAP interface `name` and brings it up.
fn open_tap(name: &str) -> Result<Arc<TapBackend>, String> {
    let tap = TapBackend::open(name).map_err(|e| format!("--tap {name}: {e}"))?;
    tap.set_up().map_err(|e| format!("--tap {name}: bringing the interface up: {e}"))?;
    Ok(Arc::new(tap))
}

fn run(
    path: &std::path::Path,
    config: HostConfig,
    once: bool,
    adapters: u8,
    tap_name: Option<&str>,
    nbs_per_nbl: u16,
) -> ExitCode {
    if tap_name.is_some() && adapters == 0 {
        return fail("--tap connects the first adapter, but --adapters is 0");
    }
    // The TAP first: its errors (no /dev/net/tun, no CAP_NET_ADMIN, a bad name) need no driver to report.
    let tap = match tap_name.map(open_tap).transpose() {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let mut host = match Host::load_file(path, config) {
        Ok(h) => h,
        Err(e) => return fail(&format!("{}: {e}", path.display())),
    };
    println!("loaded {} at {:#x} ({} bytes)", path.display(), host.image().base(), host.image().size());
    for n in 1..=adapters {
        let mut a = ndis_host::ndis::AdapterConfig::ethernet(n);
        a.receive_shape.nbs_per_nbl = usize::from(nbs_per_nbl);
        let mac: Vec<String> = a.mac.iter().map(|b| format!("{b:02x}")).collect();
        println!("  adapter {} ({}) {} MTU {}", a.name, a.friendly_name, mac.join(":"), a.mtu);
        let index = match host.add_adapter(a) {
            Ok(i) => i,
            Err(e) => return fail(&format!("adding adapter {n}: {e}")),
        };
        if let (1, Some(t)) = (n, &tap) {
            host.set_backend(index, Some(Box::new(SharedTap(Arc::clone(t)))));
            println!("    connected to TAP interface {} (MTU {}, up)", t.name(), t.mtu());
        }
    }
    for p in &host.image().privileged {
        let how = if host.image().cr8_patched.contains(&p.rva) { "patched (trap-free detour)" } else { "emulated" };
        println!("  privileged instruction, {how}: {p}");
    }
    let status = match host.driver_entry() {
        Ok(s) => s,
        Err(e) => return fail(&format!("DriverEntry: {e}")),
    };
    // CAST: statuses print as unsigned hex.
    println!("DriverEntry returned {:#010x}", status as u32);
    for (c, live) in host.protocols() {
        println!(
            "  protocol {} NDIS {}.{} driver {}.{} {}",
            c.name,
            c.major_ndis_version,
            c.minor_ndis_version,
            c.major_driver_version,
            c.minor_driver_version,
            if live { "registered" } else { "deregistered" }
        );
    }
    for b in host.bindings() {
        println!("  binding to adapter {} {:?}", b.adapter, b.state);
    }
    for d in host.devices() {
        println!("  device {d}");
    }
    for (l, t) in host.symbolic_links() {
        println!("  link {l} -> {t}");
    }
    let mut pump_failed = false;
    if status >= 0 && !once {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)) {
            return fail(&format!("cannot install the Ctrl-C handler: {e}"));
        }
        println!("serving; press Ctrl-C to unload");
        let mut indicated = 0;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if tap.is_some() {
                // Frames Linux sent out of the TAP are indicated to the driver's bindings (once more after
                // Ctrl-C, so what had arrived is delivered before the unload).
                match host.pump() {
                    Ok(n) => indicated += n,
                    Err(e) => {
                        eprintln!("ndis-host: error: receiving from the TAP: {e}");
                        pump_failed = true;
                        break;
                    }
                }
            }
            if stopping {
                break;
            }
            std::thread::sleep(Duration::from_millis(if tap.is_some() { 1 } else { 100 }));
        }
        if let Some(t) = &tap {
            println!("  {indicated} frame(s) from TAP {} indicated to the driver", t.name());
        }
    }
    if let Err(e) = host.unload() {
        return fail(&format!("DriverUnload: {e}"));
    }
    println!("unloaded");
    host.flush_trace();
    if let Some(t) = &tap {
        let s = t.stats();
        println!(
            "  TAP {}: {} frame(s) to Linux, {} from Linux; dropped {} too short, {} too long; {} write error(s), {} read error(s)",
            t.name(),
            s.transmitted,
            s.received,
            s.dropped_short,
            s.dropped_long,
            s.write_errors,
            s.read_errors
        );
    }
    let violations = host.violations();
    if violations.is_empty() {
        println!("verifier: no violations, no leaks");
    }
    for v in &violations {
        println!("verifier: {v}");
    }
    if violations.is_empty() && !pump_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ndis-host: error: {msg}");
    ExitCode::FAILURE
}
