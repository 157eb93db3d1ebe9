//! The `rawlink` CLI as a user runs it on Linux (the hosted backend): against the real Linux kernel through a
//! TAP in a network namespace of the test's own (root, as CI), its pcapng files read back by tshark, and the
//! errors a user can act on. Addresses are 192.0.2.0/24 (documentation range), inside the test's namespace
//! only.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn driver() -> PathBuf {
    let p = rawlink::hosted::default_driver_path();
    assert!(p.is_file(), "{} is missing; run `cargo xtask build` first", p.display());
    p
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `rawlink --driver <built driver> ARGS` on the in-process wire.
fn rawlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rawlink")).arg("--driver").arg(driver()).args(args).output().expect("rawlink runs")
}

fn ip(args: &[&str]) {
    let out =
        Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("`ip` cannot run ({e}); install iproute2"));
    assert!(out.status.success(), "`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

/// A namespace with a persistent TAP `rl0` whose Linux side is 192.0.2.1/24; deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let ns = Netns(format!("rl-cli-{tag}-{}", std::process::id()));
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "tuntap", "add", "dev", "rl0", "mode", "tap"]);
        ip(&["-n", &ns.0, "addr", "add", "192.0.2.1/24", "dev", "rl0"]);
        ip(&["-n", &ns.0, "link", "set", "rl0", "up"]);
        ns
    }

    /// `rawlink --tap rl0 ARGS` inside the namespace.
    fn rawlink(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, env!("CARGO_BIN_EXE_rawlink"), "--tap", "rl0", "--driver"])
            .arg(driver())
            .args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rawlink-cli-{}-{name}", std::process::id()))
}

/// tshark's one-line-per-frame reading of `file` with display filter `filter`.
fn tshark(file: &PathBuf, filter: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter])
        .output()
        .unwrap_or_else(|e| panic!("tshark cannot run ({e}); install the Debian package tshark"));
    assert!(out.status.success(), "tshark -r {}: {}", file.display(), text(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn the_linux_kernel_answers_the_drivers_arp_and_ping_and_tshark_reads_the_exchange() {
    let ns = Netns::new("ping");
    let out = ns.rawlink(&["arp", "192.0.2.1", "-c", "1"]).output().expect("ran");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ARP reply from 192.0.2.1 ["), "{}", text(&out));

    let file = temp("ping.pcapng");
    let out = ns
        .rawlink(&["ping", "192.0.2.1", "-c", "2", "--interval", "0", "-w", file.to_str().expect("utf-8")])
        .output()
        .expect("ran");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("bytes from 192.0.2.1: icmp_seq=1 ttl=64 time=") && t.contains("icmp_seq=2"), "{t}");
    assert!(t.contains("2 packets transmitted, 2 received, 0% packet loss"), "{t}");
    assert!(t.contains("verifier: no violations, no leaks"), "{t}");
    let replies = tshark(&file, "icmp.type == 0 && ip.src == 192.0.2.1 && ip.dst == 192.0.2.2");
    let requests = tshark(&file, "icmp.type == 8 && ip.dst == 192.0.2.1");
    let arp = tshark(&file, "arp.opcode == 2 && arp.src.proto_ipv4 == 192.0.2.1");
    let _ = std::fs::remove_file(&file);
    assert_eq!((requests.len(), replies.len(), arp.len()), (2, 2, 1), "{requests:?} {replies:?} {arp:?}");
}

/// Makes the Linux side of `ns`'s TAP send ARP requests for the driver's side (192.0.2.2): a UDP datagram
/// every 300 ms from 192.0.2.1, from a thread inside the namespace, until `done` says so or 30 s passed.
fn provoke_arp(ns: &Netns, done: impl Fn() -> bool + Sync) {
    let path = PathBuf::from("/var/run/netns").join(&ns.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    std::thread::scope(|s| {
        s.spawn(|| {
            ndis_host::backend::tap::enter_network_namespace(&path).expect("entered the namespace");
            let sock = std::net::UdpSocket::bind("192.0.2.1:0").expect("bound");
            while Instant::now() < deadline && !done() {
                let _ = sock.send_to(b"rawlink", "192.0.2.2:9");
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    });
}

#[test]
fn capture_writes_what_linux_sends_and_tshark_finds_it() {
    let ns = Netns::new("cap");
    let file = temp("capture.pcapng");
    let child = ns
        .rawlink(&["capture", "-c", "2", "--ethertype", "arp", "-d", "30", "-w", file.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("capture started");
    // Linux resolves 192.0.2.2 (the driver's side) when something is sent there: broadcast ARP requests.
    provoke_arp(&ns, || std::fs::metadata(&file).is_ok_and(|m| m.len() > 200));
    let out = child.wait_with_output().expect("capture ended");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("2 frame(s)"), "{t}");
    let who_has =
        tshark(&file, "arp.opcode == 1 && arp.dst.proto_ipv4 == 192.0.2.2 && arp.src.proto_ipv4 == 192.0.2.1");
    let all = tshark(&file, "frame");
    let _ = std::fs::remove_file(&file);
    assert_eq!((all.len(), who_has.len()), (2, 2), "{all:?}");
}

#[test]
fn capture_to_stdout_is_a_valid_pcapng_even_with_no_frames() {
    // On the wire there is no traffic: a 0.3 s capture ends with an empty but valid pcapng on stdout.
    let out = rawlink(&["capture", "-w", "-", "-d", "0.3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout.get(..4), Some(&[0x0A, 0x0D, 0x0D, 0x0A][..]), "a pcapng section header");
    let file = temp("stdout.pcapng");
    std::fs::write(&file, &out.stdout).expect("written");
    assert!(tshark(&file, "frame").is_empty());
    let _ = std::fs::remove_file(&file);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 frame(s)"), "{}", text(&out));
}

#[test]
fn capture_uses_the_mapped_ring_when_asked_and_reads_when_told() {
    for (rx, says) in [("ring", true), ("auto", true), ("read", false)] {
        let out = rawlink(&["capture", "-w", "-", "-d", "0.3", "--rx", rx]);
        let t = text(&out);
        assert!(out.status.success(), "{rx}: {t}");
        assert_eq!(out.stdout.get(..4), Some(&[0x0A, 0x0D, 0x0D, 0x0A][..]), "{rx}: a pcapng section header");
        assert_eq!(t.contains("receiving through the driver's mapped ring"), says, "{rx}: {t}");
    }
}

#[test]
fn adapters_are_listed_as_a_table() {
    let out = rawlink(&["adapters"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("#  NAME") && t.contains("FRIENDLY NAME") && t.contains("MTU") && t.contains("STATE"), "{t}");
    assert!(t.contains("Virtual Ethernet Adapter #1  02:52:4c:00:00:01  1500  1 Gbit/s  up    running"), "{t}");
}

#[test]
fn an_unknown_adapter_lists_the_valid_ones() {
    let out = rawlink(&["stats", "-i", "eth7"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("adapter `eth7` not found; the driver is bound to: 0: Virtual Ethernet Adapter #1"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_driver_says_how_to_build_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_rawlink"))
        .args(["--driver", "/nonexistent/rawlink.sys", "adapters"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("the rawlink driver is not installed") && t.contains("cargo xtask build"), "{t}");
}

#[test]
fn bad_frames_are_named_with_the_reason() {
    let out = rawlink(&["send", "ffffffffffff02524c000001"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("frame 0 (12 bytes) was not sent: 12 bytes is shorter than an Ethernet header"),
        "{}",
        text(&out)
    );
    let foreign = format!("ffffffffffff020000000077 88b5{}", "00".repeat(46));
    let out = rawlink(&["send", &foreign]);
    assert!(
        text(&out).contains("source MAC 02:00:00:00:00:77 is not the adapter's (02:52:4c:00:00:01)"),
        "{}",
        text(&out)
    );
    let out = rawlink(&["send", &foreign, "--any-source"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = rawlink(&["send", "fffz"]);
    assert!(text(&out).contains("hex frame: `fz` at digit 2 is not hex"), "{}", text(&out));
}

#[test]
fn ping_and_arp_work_on_the_wire_against_the_simulated_peer_and_replay_sends_a_capture() {
    let file = temp("wire.pcapng");
    let out = rawlink(&["ping", "192.0.2.1", "-c", "2", "--interval", "0", "-w", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("simulated peer 192.0.2.1"), "{}", text(&out));
    assert_eq!(tshark(&file, "icmp.type == 0").len(), 2);
    // Replaying the exchange: the 4 frames this host sent go out again; the peer's 3 replies are foreign.
    let out = rawlink(&["replay", file.to_str().expect("utf-8"), "--flat-out"]);
    assert!(!out.status.success(), "the peer's frames carry its source MAC");
    assert!(text(&out).contains("frame 1 (60 bytes) was not sent: source MAC 02:00:5e:c0:00:01"), "{}", text(&out));
    let out = rawlink(&["replay", file.to_str().expect("utf-8"), "--any-source", "--rate", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("replayed 6 of 6 frame(s)"), "{}", text(&out));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn oid_get_and_set_print_values_and_refusals() {
    let out = rawlink(&["oid", "get", "OID_GEN_MAXIMUM_FRAME_SIZE"]);
    assert!(text(&out).contains("OID_GEN_MAXIMUM_FRAME_SIZE: 4 byte(s) dc 05 00 00 = 1500"), "{}", text(&out));
    let out = rawlink(&["oid", "set", "OID_GEN_MAXIMUM_FRAME_SIZE", "u32:9000"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("may not be set through rawlink"), "{}", text(&out));
    let out = rawlink(&["oid", "get", "OID_NOPE"]);
    assert!(text(&out).contains("OID `OID_NOPE`: not a number or a known name"), "{}", text(&out));
}

/// `rawlink` in Wireshark's global extcap folder under a name of this test's own; removed on drop.
struct Extcap(PathBuf);

impl Extcap {
    fn install() -> Self {
        let dir = PathBuf::from("/usr/lib/x86_64-linux-gnu/wireshark/extcap");
        assert!(dir.is_dir(), "{} is missing: install the Debian package tshark", dir.display());
        let link = dir.join(format!("rawlink-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rawlink"), &link).expect("linked into the extcap folder");
        Extcap(link)
    }
}

impl Drop for Extcap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn extcap_answers_wiresharks_queries() {
    let out = rawlink(&["--extcap-interfaces"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.starts_with("extcap {version="), "{t}");
    assert!(
        t.contains("interface {value=rawlink0}{display=rawlink: Virtual Ethernet Adapter #1 (02:52:4c:00:00:01)}"),
        "{t}"
    );
    let out = rawlink(&["--extcap-dlts", "--extcap-interface", "rawlink0"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dlt {number=1}{name=EN10MB}{display=Ethernet}");
    let out = rawlink(&["--extcap-config", "--extcap-interface", "rawlink0"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("{call=--ethertype}"), "{}", text(&out));
    let out = rawlink(&["--extcap-dlts", "--extcap-interface", "eth0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a rawlink interface"), "{}", text(&out));
}

#[test]
fn tshark_lists_and_captures_through_the_extcap_interface() {
    let ns = Netns::new("ext");
    let _extcap = Extcap::install();
    let out = Command::new("ip").args(["netns", "exec", &ns.0, "tshark", "-D"]).output().expect("tshark -D");
    assert!(text(&out).contains("rawlink0 (rawlink: Virtual Ethernet Adapter #1"), "{}", text(&out));
    let file = temp("extcap.pcapng");
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0, "env", "RAWLINK_TAP=rl0"])
        .arg(format!("RAWLINK_PACKAGE_DIR={}", driver().parent().expect("folder").display()))
        .args(["tshark", "-i", "rawlink0", "-c", "2", "-a", "duration:30", "-w"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tshark started");
    provoke_arp(&ns, || tshark_done(&file));
    let out = child.wait_with_output().expect("tshark ended");
    assert!(out.status.success(), "{}", text(&out));
    let frames = tshark(&file, "frame");
    let arp = tshark(&file, "arp.dst.proto_ipv4 == 192.0.2.2");
    let _ = std::fs::remove_file(&file);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(!arp.is_empty() || frames.iter().all(|f| f.contains("ICMPv6")), "{frames:?}");
}

/// Whether tshark has written two frames to `file` yet.
fn tshark_done(file: &PathBuf) -> bool {
    std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
        && Command::new("tshark")
            .arg("-r")
            .arg(file)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().count() >= 2)
}

#[test]
fn a_stopped_driver_says_how_to_start_it() {
    // The image is loaded but DriverEntry never runs: \\.\RawLink does not exist, as with a stopped service.
    let out = rawlink(&["--driver-stopped", "adapters"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("rawlink: error: the rawlink driver is installed but not running"), "{t}");
    assert!(t.contains("DriverEntry never ran") && t.contains("`sc.exe start RAWLINK`"), "{t}");
}

#[test]
fn a_standard_user_is_turned_away_by_the_devices_dacl_and_told_to_run_as_administrator() {
    // The driver's own security descriptor (SYSTEM and Administrators only), checked by ndis-host's access
    // check against a standard user's token: the open fails before the driver sees an IRP_MJ_CREATE.
    let out = rawlink(&["--as-user", "standard", "adapters"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("opened by a standard user"), "{t}");
    assert!(
        t.contains("rawlink: error: access denied opening \\\\.\\RawLink (STATUS_ACCESS_DENIED (0xc0000022))"),
        "{t}"
    );
    assert!(t.contains("the device admits only Administrators and SYSTEM: run as Administrator"), "{t}");
    // The same command as an administrator lists the adapter.
    let out = rawlink(&["--as-user", "administrator", "adapters"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Virtual Ethernet Adapter #1"), "{}", text(&out));
}
