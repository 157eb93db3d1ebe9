//! ndis-host with a driver that is not rawlink: `tests/c-driver/rlprot.c`, a small NDIS 6.30 protocol driver in C
//! built the way a WDK build lays a driver out (/GS stack cookies in every function, clang for x86_64-pc-windows-msvc, lld-link `/DRIVER`, import
//! libraries for ntoskrnl.exe and ndis.sys made from .def files). The build runs here, from Debian's
//! `clang-22` and `rust-lld` (xtask's toolchain check installs both); nothing built is committed.

use ndis_host::host::{Host, HostConfig};
use ndis_host::io::STATUS_SUCCESS;
use ndis_host::ndis::AdapterConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CLANG: &str = "clang-22";
const LLD: &str = "rust-lld";
const IOCTL_SET_LOOPBACK: u32 = 0x0012_2000;
const IOCTL_GET_STATS: u32 = 0x0012_2004;
const IOCTL_GET_COOKIE: u32 = 0x0012_2008;
const IOCTL_SET_EARLY_COMPLETE: u32 = 0x0012_200C;
const IOCTL_CR8_PROBE: u32 = 0x0012_2010;

/// What the driver imports, by module (the .def files of its import libraries).
const NTOSKRNL: &[&str] = &[
    "IoCreateDevice",
    "IoCreateSymbolicLink",
    "IoDeleteDevice",
    "IoDeleteSymbolicLink",
    "IofCompleteRequest",
    "KeAcquireSpinLockRaiseToDpc",
    "KeBugCheckEx",
    "KeEnterCriticalRegion",
    "KeInitializeSpinLock",
    "KeLeaveCriticalRegion",
    "KeReleaseSpinLock",
    "MmMapLockedPagesSpecifyCache",
    "RtlInitUnicodeString",
    "memcpy",
    "memset",
];
const NDIS: &[&str] = &[
    "NdisAllocateMemoryWithTagPriority",
    "NdisAllocateNetBufferAndNetBufferList",
    "NdisAllocateNetBufferListContext",
    "NdisAllocateNetBufferListPool",
    "NdisCloseAdapterEx",
    "NdisCompleteBindAdapterEx",
    "NdisCompleteUnbindAdapterEx",
    "NdisCopyFromNetBufferToNetBuffer",
    "NdisDeregisterProtocolDriver",
    "NdisFreeMemory",
    "NdisFreeNetBufferList",
    "NdisFreeNetBufferListContext",
    "NdisFreeNetBufferListPool",
    "NdisGetDataBuffer",
    "NdisInitializeEvent",
    "NdisMSleep",
    "NdisOidRequest",
    "NdisOpenAdapterEx",
    "NdisRegisterProtocolDriver",
    "NdisResetEvent",
    "NdisReturnNetBufferLists",
    "NdisSendNetBufferLists",
    "NdisSetEvent",
    "NdisWaitEvent",
];

fn run(what: &str, cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run {:?}: {e} (install the Debian packages clang-22 and lld-22: `cargo xtask test` does)",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_into(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c-driver");
    std::fs::create_dir_all(dir).expect("build folder");
    let obj = dir.join("rlprot.obj");
    run(
        "compiling rlprot.c",
        Command::new(CLANG)
            .args([
                "--target=x86_64-pc-windows-msvc",
                "-ffreestanding",
                "-fstack-protector-all",
                "-O2",
                "-Wall",
                "-Werror",
                "-c",
            ])
            .arg(src.join("rlprot.c"))
            .arg("-o")
            .arg(&obj),
    );
    let mut libs = Vec::new();
    for (module, names) in [("ntoskrnl.exe", NTOSKRNL), ("ndis.sys", NDIS)] {
        let stem = module.split('.').next().unwrap_or(module);
        let def = dir.join(format!("{stem}.def"));
        let lib = dir.join(format!("{stem}.lib"));
        std::fs::write(&def, format!("LIBRARY {module}\nEXPORTS\n{}\n", names.join("\n"))).expect(".def written");
        run(
            "making an import library",
            Command::new(LLD)
                .args(["-flavor", "link", "/lib", "/machine:x64"])
                .arg(format!("/def:{}", def.display()))
                .arg(format!("/out:{}", lib.display())),
        );
        libs.push(lib);
    }
    let sys = dir.join("rlprot.sys");
    run(
        "linking rlprot.sys",
        Command::new(LLD)
            .args([
                "-flavor",
                "link",
                "/driver",
                "/subsystem:native",
                "/entry:DriverEntry",
                "/nodefaultlib",
                "/release",
            ])
            .arg(&obj)
            .args(&libs)
            .arg(format!("/out:{}", sys.display())),
    );
    sys
}

/// rlprot.sys, built once per test run.
fn driver() -> &'static Path {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| build_into(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-driver")))
}

fn loaded(adapter: AdapterConfig) -> Host {
    let mut h = Host::load_file(driver(), HostConfig::default()).expect("rlprot.sys loads");
    h.add_adapter(adapter).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry runs"), 0);
    h
}

fn finish(mut h: Host) {
    h.unload().expect("unloads");
    assert!(h.violations().is_empty(), "{:#?}", h.violations());
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x88B5u16.to_be_bytes());
    f.extend((0..46u8).map(|i| i.wrapping_mul(7)));
    f
}

/// The driver's counters: received, loopback_received, queued, dropped, sent, send_completed, send_failed, binds.
fn stats(h: &Host, handle: ndis_host::io::Handle) -> [u32; 8] {
    let r = h.device_io_control(handle, IOCTL_GET_STATS, &[], 32).expect("GET_STATS");
    assert_eq!(r.status, STATUS_SUCCESS);
    let mut out = [0u32; 8];
    for (o, c) in out.iter_mut().zip(r.output.chunks_exact(4)) {
        *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    out
}

#[test]
fn a_c_driver_using_compiler_emitted_memcpy_and_memset_loads_binds_and_unloads_clean() {
    let h = Host::load_file(driver(), HostConfig::default()).expect("rlprot.sys loads");
    let imports: Vec<String> = ndis_host::image::ImageInfo::parse(&std::fs::read(driver()).expect("read"))
        .expect("a PE")
        .imports
        .iter()
        .map(ToString::to_string)
        .collect();
    for want in
        ["ntoskrnl.exe!memcpy", "ntoskrnl.exe!memset", "ntoskrnl.exe!KeEnterCriticalRegion", "ndis.sys!NdisMSleep"]
    {
        assert!(imports.iter().any(|i| i == want), "{want} not among {imports:?}");
    }
    drop(h);
    let h = loaded(AdapterConfig::ethernet(1));
    let (chars, live) = h.protocols().into_iter().next().expect("registered");
    assert!(live && chars.name == "RLPROT" && (chars.major_ndis_version, chars.minor_ndis_version) == (6, 30));
    assert_eq!(h.bindings().len(), 1);
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    // The IOCTL path enters and leaves a critical region.
    assert_eq!(stats(&h, handle)[7], 1, "one bind");
    h.close(handle).expect("closes");
    finish(h);
}

#[test]
fn the_cli_runs_the_c_driver() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_ndis-host")).args(["run", "--once"]).arg(driver()).output().expect("runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("protocol RLPROT NDIS 6.30") && text.contains("verifier: no violations, no leaks"), "{text}");
}

#[test]
fn a_write_sends_an_nbl_built_on_the_write_irps_mdl_with_no_finding() {
    let a = AdapterConfig::ethernet(1);
    let mac = a.mac;
    let h = loaded(a);
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    let f = frame([0xFF; 6], mac);
    let r = h.write(handle, &f).expect("write");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, f.len()), "{:#?}", h.violations());
    assert_eq!(h.sent_frames(0), vec![f]);
    let s = stats(&h, handle);
    assert_eq!((s[4], s[5], s[6]), (1, 1, 0), "sent, completed, failed");
    h.close(handle).expect("closes");
    finish(h);
}

#[test]
fn with_check_for_loopback_a_frame_the_filter_accepts_comes_back_marked_as_loopback() {
    let a = AdapterConfig::ethernet(1);
    let mac = a.mac;
    let h = loaded(a);
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    // Without the flag NDIS does not loop the driver's own frame back.
    let to_self = frame(mac, mac);
    assert_eq!(h.write(handle, &to_self).expect("write").status, STATUS_SUCCESS);
    assert_eq!(stats(&h, handle)[0], 0, "nothing received");
    let r = h.device_io_control(handle, IOCTL_SET_LOOPBACK, &1u32.to_le_bytes(), 0).expect("SET_LOOPBACK");
    assert_eq!(r.status, STATUS_SUCCESS);
    // To another station's MAC: the directed/broadcast filter rejects it, so nothing comes back.
    assert_eq!(h.write(handle, &frame([0x02, 0, 0, 0, 0, 9], mac)).expect("write").status, STATUS_SUCCESS);
    assert_eq!(stats(&h, handle)[0], 0, "a frame the filter rejects is not looped back");
    assert_eq!(h.write(handle, &to_self).expect("write").status, STATUS_SUCCESS);
    let s = stats(&h, handle);
    assert_eq!((s[0], s[1]), (1, 1), "received, of them loopback");
    let read = h.read(handle, 1514).expect("read");
    assert_eq!(read.status, STATUS_SUCCESS);
    assert_eq!(&read.output[..read.information], &to_self[..]);
    assert_eq!(h.sent_frames(0).len(), 3, "every frame still went to the wire");
    h.close(handle).expect("closes");
    finish(h);
}

/// NumberOfNetBufferLists of every ProtocolReceiveNetBufferLists call so far.
fn indications(h: &Host) -> Vec<String> {
    h.trace()
        .iter()
        .filter(|e| e.name == "ProtocolReceiveNetBufferLists")
        .filter_map(|e| e.arg("NumberOfNetBufferLists").map(str::to_owned))
        .collect()
}

#[test]
fn one_net_buffer_per_nbl_lays_every_indication_out_as_one_nbl_per_frame() {
    let shape = ndis_host::ndis::ReceiveShape { nbs_per_nbl: 4, ..Default::default() };
    // Four frames in one NBL of four NET_BUFFERs, or four NBLs of one.
    for (one, want) in [(false, "0x1"), (true, "0x4")] {
        let a = AdapterConfig { one_net_buffer_per_nbl: one, ..AdapterConfig::ethernet(1) };
        let h = loaded(a);
        let frames = vec![frame([0xFF; 6], [0x02, 0, 0, 0, 0, 7]); 4];
        assert_eq!(h.indicate_receive_shaped(0, 1, frames, false, shape).expect("indicated"), 0);
        assert_eq!(indications(&h), [want], "one_net_buffer_per_nbl {one}");
        let handle = h.open("\\\\.\\RlProt").expect("opens");
        assert_eq!(stats(&h, handle)[0], 4, "every frame received");
        h.close(handle).expect("closes");
        finish(h);
    }
}

/// A long run keeps a bounded number of records: the trace ring, the sent-frame record and the fault plan's
/// history stay at their limits however many frames go through (counted, not timed).
#[test]
fn a_long_run_keeps_bounded_records() {
    let config = HostConfig { trace_capacity: 300, ..HostConfig::default() };
    let mut h = Host::load_file(driver(), config).expect("loads");
    let a = AdapterConfig::ethernet(1);
    let mac = a.mac;
    h.add_adapter(a).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry"), 0);
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    let sends = ndis_host::ndis::SENT_KEPT + 200;
    let f = frame([0xFF; 6], mac);
    for _ in 0..sends {
        assert_eq!(h.write(handle, &f).expect("write").status, STATUS_SUCCESS);
    }
    let (kept, dropped) = h.trace_retained();
    assert_eq!(kept, 300);
    assert!(dropped > 5 * sends as u64, "every write is several calls; {dropped} dropped");
    assert_eq!(h.trace().len(), 300);
    assert_eq!(h.sent_frames(0).len(), ndis_host::ndis::SENT_KEPT);
    assert_eq!(h.sent_count(0), sends as u64);
    let (history, _) = h.fault_history();
    assert!(history.len() <= ndis_host::faults::HISTORY_KEPT);
    h.close(handle).expect("closes");
    finish(h);
}

#[test]
fn the_cli_writes_the_trace_to_a_file_and_keeps_a_bounded_ring() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rlprot-trace.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_ndis-host"))
        .args(["run", "--once", "--trace-keep", "8", "--trace-file"])
        .arg(&path)
        .arg(driver())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).expect("trace file");
    assert!(text.lines().count() > 8, "the file has every event, not only the ring's");
    assert!(text.contains("NdisRegisterProtocolDriver") && text.contains("DriverUnload"), "{text}");
}

#[test]
fn the_audit_tells_windows_requirements_from_image_policy() {
    let info = ndis_host::image::ImageInfo::parse(&std::fs::read(driver()).expect("read")).expect("a PE");
    let findings = ndis_host::image::audit(&info, &ndis_host::wdk::FunctionTable::wdk_16299());
    use ndis_host::image::Requirement;
    assert!(findings.iter().all(|f| f.requirement() == Requirement::Policy), "{findings:#?}");
    // A C driver linked without /INTEGRITYCHECK and without exporting DriverEntry loads on Windows; those are
    // rawlink's policy, reported as such.
    let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"entry-point") && rules.contains(&"dll-characteristics"), "{rules:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_ndis-host")).arg("audit").arg(driver()).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Windows load requirements: met") && text.contains("policy: [entry-point]"), "{text}");
    let strict =
        Command::new(env!("CARGO_BIN_EXE_ndis-host")).args(["audit", "--strict"]).arg(driver()).output().expect("runs");
    assert!(!strict.status.success(), "--strict fails on policy findings");
}

#[test]
fn the_gs_cookie_is_initialised_before_driver_entry_as_windows_loader_does() {
    let h = loaded(AdapterConfig::ethernet(1));
    let (_, at_load) = h.image().security_cookie.expect("the image has a load configuration with a /GS cookie");
    assert_ne!(at_load, ndis_host::loader::DEFAULT_SECURITY_COOKIE);
    assert!(at_load != 0 && at_load >> 48 == 0, "{at_load:#x}: 48 bits, as on x64 Windows");
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    let r = h.device_io_control(handle, IOCTL_GET_COOKIE, &[], 8).expect("GET_COOKIE");
    assert_eq!(r.status, STATUS_SUCCESS);
    let mut v = [0u8; 8];
    v.copy_from_slice(&r.output);
    assert_eq!(u64::from_le_bytes(v), at_load, "the driver sees the cookie the loader wrote");
    h.close(handle).expect("closes");
    finish(h);
}

#[test]
fn completing_a_write_while_its_nbl_is_still_being_sent_is_a_finding() {
    let a = AdapterConfig { send_completion: ndis_host::ndis::SendCompletion::Deferred, ..AdapterConfig::ethernet(1) };
    let mac = a.mac;
    let mut h = loaded(a);
    let handle = h.open("\\\\.\\RlProt").expect("opens");
    let r = h.device_io_control(handle, IOCTL_SET_EARLY_COMPLETE, &1u32.to_le_bytes(), 0).expect("SET_EARLY_COMPLETE");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(h.write(handle, &frame([0xFF; 6], mac)).expect("write").status, STATUS_SUCCESS);
    let v = h.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].message.contains("built on its MdlAddress, is still being sent"), "{v:#?}");
    assert_eq!(h.complete_sends(0, 0, false).expect("completes"), 1);
    h.close(handle).expect("closes");
    h.unload().expect("unloads");
    assert_eq!(h.violations().len(), 1, "{:#?}", h.violations());
}

/// The C driver's CR8 probe (raise by CR8 write, NdisMSleep at DISPATCH_LEVEL, lower), run patched and
/// trapped: the same readings and the same verifier finding, and the patched image never traps on CR8.
#[test]
fn cr8_patches_behave_as_the_trap_handler() {
    let mut outcomes = Vec::new();
    for patch_cr8 in [true, false] {
        let mut h = Host::load_file(driver(), HostConfig { patch_cr8, ..HostConfig::default() }).expect("loads");
        h.add_adapter(AdapterConfig::ethernet(1)).expect("adapter");
        assert_eq!(h.driver_entry().expect("DriverEntry runs"), 0);
        let sites = h
            .image()
            .privileged
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    ndis_host::loader::PrivilegedKind::ReadCr8 | ndis_host::loader::PrivilegedKind::WriteCr8
                )
            })
            .count();
        assert_eq!(sites, 6, "the probe's three reads and two writes, the write's read: {:?}", h.image().privileged);
        if patch_cr8 {
            assert_eq!(h.image().cr8_patched.len(), sites, "refused: {:?}", h.image().cr8_refused);
        } else {
            assert!(h.image().cr8_patched.is_empty());
        }
        let handle = h.open("\\\\.\\RlProt").expect("opens");
        let traps = ndis_host::host::cr8_traps();
        let r = h.device_io_control(handle, IOCTL_CR8_PROBE, &[], 24).expect("CR8_PROBE");
        let traps = ndis_host::host::cr8_traps() - traps;
        assert_eq!(r.status, STATUS_SUCCESS);
        let readings: Vec<u64> =
            r.output.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        h.close(handle).expect("closes");
        h.unload().expect("unloads");
        let findings: Vec<String> = h.violations().iter().map(ToString::to_string).collect();
        outcomes.push((readings, findings, traps));
    }
    let (patched, trapped) = (&outcomes[0], &outcomes[1]);
    assert_eq!(patched.0, [0, 2, 0], "IRQL before, raised, after");
    assert_eq!(patched.0, trapped.0);
    assert_eq!(patched.1.len(), 1, "{:?}", patched.1);
    assert!(patched.1[0].contains("NdisMSleep") && patched.1[0].contains("IRQL 2"), "{:?}", patched.1);
    assert_eq!(patched.1, trapped.1, "the same verifier findings");
    assert_eq!(trapped.2, 5, "trapped: every CR8 access of the probe is one SIGSEGV");
    // Other tests of this binary may trap concurrently (none patch-disabled but this one), so only the
    // patched run's own accesses are bounded: none of its five trapped.
    assert_eq!(patched.2, 0, "patched: no CR8 trap");
}

/// The double-fetch watch through a CR8 trampoline: the C driver reads its caller's first frame byte right
/// behind a CR8 read (an instruction the patch moves into the trampoline), then again in place. Patched and
/// trapped, the watch reports the same double fetch, the first read at its own address in the image; and
/// the same again with the request served on the test's thread, on its own kernel stack
/// (`HostConfig::inline_requests`), where the watch's page faults and single steps happen on that stack.
#[test]
fn the_double_fetch_watch_sees_reads_moved_into_a_cr8_trampoline() {
    const IOCTL_SET_CR8_DOUBLE_READ: u32 = 0x0012_2014;
    let mut findings = Vec::new();
    for (patch_cr8, inline) in [(true, false), (false, false), (true, true), (false, true)] {
        let a = AdapterConfig::ethernet(1);
        let mac = a.mac;
        let config =
            HostConfig { patch_cr8, inline_requests: inline, inline_processors: inline, ..HostConfig::default() };
        let mut h = Host::load_file(driver(), config).expect("loads");
        h.add_adapter(a).expect("adapter");
        assert_eq!(h.driver_entry().expect("DriverEntry runs"), 0);
        let handle = h.open("\\\\.\\RlProt").expect("opens");
        let r = h.device_io_control(handle, IOCTL_SET_CR8_DOUBLE_READ, &1u32.to_le_bytes(), 0).expect("ioctl");
        assert_eq!(r.status, STATUS_SUCCESS);
        h.set_double_fetch_watch(true);
        let traps = ndis_host::host::cr8_traps();
        assert_eq!(h.write(handle, &frame([0xFF; 6], mac)).expect("write").status, STATUS_SUCCESS);
        let traps = ndis_host::host::cr8_traps() - traps;
        h.set_double_fetch_watch(false);
        let v: Vec<String> = h
            .violations()
            .iter()
            .filter(|v| v.rule == ndis_host::verifier::Rule::DoubleFetch)
            .map(ToString::to_string)
            .collect();
        assert_eq!(v.len(), 1, "{:#?}", h.violations());
        if patch_cr8 {
            assert_eq!(traps, 0, "the CR8 read before the first fetch is patched");
            // The first read sits 4 bytes behind a patched CR8 read, and is reported there.
            let moved = h.image().cr8_patched.iter().any(|&rva| v[0].contains(&format!(".sys+{:#x},", rva + 4)));
            assert!(moved, "{} (patched sites {:x?})", v[0], h.image().cr8_patched);
        } else {
            assert!(traps >= 1);
        }
        h.close(handle).expect("closes");
        h.unload().expect("unloads");
        findings.push(v);
    }
    assert!(
        findings.iter().all(|f| *f == findings[0]),
        "the same finding patched and trapped, inline or not: {findings:#?}"
    );
}
