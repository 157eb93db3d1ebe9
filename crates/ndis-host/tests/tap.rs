//! The TAP backend against the real Linux network stack. Every test creates a network namespace of its own
//! (`ip netns add rl-tap-<pid>-<n>`, deleted again by a guard, also when the test fails), opens the TAP from a
//! thread that entered that namespace, and gives Linux an address from the documentation range 192.0.2.0/24 —
//! only inside that namespace, so no frame leaves it.
//!
//! These tests need root (CAP_NET_ADMIN for the TAP, CAP_SYS_ADMIN for the namespace), `/dev/net/tun` and
//! iproute2's `ip`. Without them they FAIL, saying what is missing: CI runs as root and has all three.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test: a panic is a failure, and the frames are parsed after their lengths were checked"
)]

use ndis_host::backend::tap::{enter_network_namespace, TapBackend, TapError, TapStats, FRAME_OVERHEAD};
use ndis_host::backend::Backend;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The adapter's side of the cable (what the driver would use).
const OUR_MAC: [u8; 6] = [0x02, 0x52, 0x4C, 0x00, 0x00, 0x01];
const OUR_IP: [u8; 4] = [192, 0, 2, 2];
/// Linux's side: the TAP interface.
const LINUX_MAC: [u8; 6] = [0x02, 0x52, 0x4C, 0x00, 0xFF, 0x01];
const LINUX_IP: [u8; 4] = [192, 0, 2, 1];
/// An address on the link that nobody has.
const ABSENT_IP: [u8; 4] = [192, 0, 2, 3];
const BROADCAST: [u8; 6] = [0xFF; 6];
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
/// How long a test waits for a frame before failing.
const WAIT: Duration = Duration::from_secs(5);

// ---- preconditions --------------------------------------------------------------------------------------

/// Fails the test (never skips it) if the machine cannot run it, naming what is missing.
fn require_capabilities() {
    let mut missing = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    for (bit, name, why) in
        [(12, "CAP_NET_ADMIN", "to create a TAP"), (21, "CAP_SYS_ADMIN", "for `ip netns` and setns")]
    {
        if cap_eff & (1 << bit) == 0 {
            missing.push(format!("{name} ({why}): run the tests as root"));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun (the tun/tap driver): `modprobe tun`, or pass the device into the container".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        missing.push("iproute2's `ip` command: `apt-get install iproute2`".into());
    }
    assert!(missing.is_empty(), "the TAP tests cannot run on this machine; missing: {}", missing.join("; "));
}

// ---- namespaces -----------------------------------------------------------------------------------------

/// Runs `ip` with `args`, failing the test with its output if it fails.
fn ip(args: &[&str]) -> String {
    let out =
        Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("cannot run `ip {}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`ip {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of this test's own, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("rl-tap-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// `ip -n <ns> args…`
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Like [`Netns::ip`], but returns whether it succeeded instead of failing.
    fn ip_ok(&self, args: &[&str]) -> bool {
        Command::new("ip").args(["-n", self.name.as_str()]).args(args).output().is_ok_and(|o| o.status.success())
    }

    /// Runs `f` on a thread that entered the namespace (the caller's thread stays where it is).
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter_network_namespace(&self.path()).unwrap_or_else(|e| panic!("entering {}: {e}", self.name));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip").args(["netns", "del", &self.name]).output().is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}

/// A TAP `tap0` in a fresh namespace, up, with Linux at 192.0.2.1/24 and MAC [`LINUX_MAC`]. The backend is
/// declared first so it is dropped (closing the TAP) before the namespace is deleted.
struct Link {
    tap: TapBackend,
    ns: Netns,
}

impl Link {
    fn new() -> Link {
        require_capabilities();
        let ns = Netns::new();
        let tap = ns.run(|| TapBackend::open("tap0")).unwrap_or_else(|e| panic!("opening tap0 in {}: {e}", ns.name));
        assert_eq!(tap.name(), "tap0");
        tap.set_mac(LINUX_MAC).unwrap_or_else(|e| panic!("{e}"));
        tap.set_up().unwrap_or_else(|e| panic!("{e}"));
        ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "tap0"]);
        Link { tap, ns }
    }

    /// Tells Linux the adapter's MAC, so it sends to [`OUR_IP`] without asking first.
    fn add_neighbour(&self) {
        self.ns.ip(&["neigh", "replace", "192.0.2.2", "lladdr", &mac_text(OUR_MAC), "dev", "tap0", "nud", "permanent"]);
    }

    /// Polls until a frame matches `want`, for at most [`WAIT`]; fails naming what else arrived.
    fn wait_for(&self, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut others = Vec::new();
        loop {
            for f in self.tap.poll() {
                if want(&f) {
                    return f;
                }
                others.push(describe(&f));
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {WAIT:?}; other frames: {others:?}; {:?}",
                self.tap.stats()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---- frames ---------------------------------------------------------------------------------------------

fn mac_text(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP packet (Ethernet/IPv4): op 1 request, 2 reply.
fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa);
    p
}

/// The Internet checksum (RFC 1071): the one's complement of the one's complement sum of 16-bit words.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded into 16 bits")
}

/// An IPv4 header (no options) with its checksum, followed by `payload`.
fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]); // id, DF, TTL, protocol, checksum 0
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = internet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// An ICMP echo request (type 8) with its checksum.
fn icmp_echo_request(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = internet_checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn ethertype(f: &[u8]) -> Option<u16> {
    f.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]))
}

fn describe(f: &[u8]) -> String {
    format!("{} bytes, ethertype {:#06x?}", f.len(), ethertype(f))
}

/// An ARP packet: (op, sha, spa, tha, tpa).
type Arp = (u16, [u8; 6], [u8; 4], [u8; 6], [u8; 4]);
/// An IPv4 packet: (protocol, src, dst, payload).
type Ipv4<'a> = (u8, [u8; 4], [u8; 4], &'a [u8]);

/// The ARP packet in `f`, if it is one.
fn parse_arp(f: &[u8]) -> Option<Arp> {
    if ethertype(f)? != ETHERTYPE_ARP || f.get(14..20)? != [0, 1, 0x08, 0x00, 6, 4] {
        return None;
    }
    let a = f.get(14..42)?;
    let op = u16::from_be_bytes([a[6], a[7]]);
    Some((
        op,
        a[8..14].try_into().ok()?,
        a[14..18].try_into().ok()?,
        a[18..24].try_into().ok()?,
        a[24..28].try_into().ok()?,
    ))
}

/// The IPv4 packet in `f`, if it is one (its header checksum must be valid).
fn parse_ipv4(f: &[u8]) -> Option<Ipv4<'_>> {
    if ethertype(f)? != ETHERTYPE_IPV4 {
        return None;
    }
    let p = f.get(14..)?;
    let ihl = usize::from(p.first()? & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
    let header = p.get(..ihl)?;
    assert_eq!(internet_checksum(header), 0, "IPv4 header checksum of a frame Linux sent");
    Some((header[9], header[12..16].try_into().ok()?, header[16..20].try_into().ok()?, p.get(ihl..total)?))
}

// ---- tests ----------------------------------------------------------------------------------------------

#[test]
fn the_internet_checksum_matches_rfc_1071s_example() {
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
    assert_eq!(internet_checksum(&[0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]), 0x220D);
}

#[test]
fn linux_answers_an_arp_request_the_adapter_transmits() {
    let link = Link::new();
    link.tap.transmit(&ethernet(BROADCAST, OUR_MAC, ETHERTYPE_ARP, &arp(1, OUR_MAC, OUR_IP, [0; 6], LINUX_IP)));
    let reply =
        link.wait_for("ARP reply from 192.0.2.1", |f| parse_arp(f).is_some_and(|a| a.0 == 2 && a.2 == LINUX_IP));
    assert_eq!(reply[..6], OUR_MAC, "the reply is addressed to the adapter");
    assert_eq!(reply[6..12], LINUX_MAC, "the reply comes from the TAP interface");
    let (_, sha, _, tha, tpa) = parse_arp(&reply).expect("ARP");
    assert_eq!((sha, tha, tpa), (LINUX_MAC, OUR_MAC, OUR_IP));
    let s = link.tap.stats();
    assert_eq!(
        (s.transmitted, s.dropped_short, s.dropped_long, s.write_errors, s.read_errors),
        (1, 0, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.received >= 1, "{s:?}");
}

#[test]
fn linux_answers_an_icmp_echo_request_the_adapter_transmits() {
    let link = Link::new();
    link.add_neighbour();
    let data = b"rawlink over a TAP: echo me";
    let request =
        ethernet(LINUX_MAC, OUR_MAC, ETHERTYPE_IPV4, &ipv4(OUR_IP, LINUX_IP, 1, &icmp_echo_request(0x524C, 7, data)));
    link.tap.transmit(&request);
    let reply = link.wait_for("ICMP echo reply from 192.0.2.1", |f| {
        parse_ipv4(f).is_some_and(|(proto, src, _, icmp)| proto == 1 && src == LINUX_IP && icmp.first() == Some(&0))
    });
    assert_eq!((&reply[..6], &reply[6..12]), (&OUR_MAC[..], &LINUX_MAC[..]));
    let (_, _, dst, icmp) = parse_ipv4(&reply).expect("IPv4");
    assert_eq!(dst, OUR_IP);
    assert_eq!(internet_checksum(icmp), 0, "ICMP checksum of the reply");
    assert_eq!(icmp[4..8], [0x52, 0x4C, 0, 7], "identifier and sequence echoed");
    assert_eq!(&icmp[8..], data, "data echoed");
}

#[test]
fn a_udp_datagram_linux_sends_reaches_the_adapter() {
    let link = Link::new();
    link.add_neighbour();
    let payload = b"from the Linux stack to rawlink";
    link.ns.run(|| {
        let s = UdpSocket::bind((Ipv4Addr::from(LINUX_IP), 0)).expect("bind in the namespace");
        s.send_to(payload, (Ipv4Addr::from(OUR_IP), 9)).expect("send");
    });
    let frame = link.wait_for("UDP datagram to 192.0.2.2:9", |f| {
        parse_ipv4(f).is_some_and(|(proto, _, dst, udp)| proto == 17 && dst == OUR_IP && udp.get(2..4) == Some(&[0, 9]))
    });
    assert_eq!((&frame[..6], &frame[6..12]), (&OUR_MAC[..], &LINUX_MAC[..]));
    let (_, src, _, udp) = parse_ipv4(&frame).expect("IPv4");
    assert_eq!(src, LINUX_IP);
    assert_eq!(&udp[8..], payload);
}

#[test]
fn linux_asks_the_link_for_an_unknown_neighbour_through_the_adapter() {
    let link = Link::new();
    // Sending to an address without a neighbour entry makes Linux broadcast an ARP request out of tap0.
    link.ns.run(|| {
        let s = UdpSocket::bind((Ipv4Addr::from(LINUX_IP), 0)).expect("bind in the namespace");
        s.send_to(b"anyone?", (Ipv4Addr::from(ABSENT_IP), 9)).expect("send");
    });
    let req =
        link.wait_for("ARP request for 192.0.2.3", |f| parse_arp(f).is_some_and(|a| a.0 == 1 && a.4 == ABSENT_IP));
    assert_eq!((&req[..6], &req[6..12]), (&BROADCAST[..], &LINUX_MAC[..]));
    let (_, sha, spa, _, _) = parse_arp(&req).expect("ARP");
    assert_eq!((sha, spa), (LINUX_MAC, LINUX_IP));
}

#[test]
fn frames_ethernet_cannot_carry_are_dropped_and_counted() {
    let link = Link::new();
    assert_eq!(link.tap.mtu(), 1500);
    let frame = |len: usize| {
        // Local experimental EtherType 0x88B5, to a MAC nobody has: Linux drops what it is given.
        let mut f = ethernet([0x02, 0, 0, 0, 0, 0x99], OUR_MAC, 0x88B5, &[]);
        f.resize(len, 0xAB);
        f
    };
    link.tap.transmit(&[]);
    link.tap.transmit(&frame(13));
    link.tap.transmit(&frame(14));
    link.tap.transmit(&frame(1500 + FRAME_OVERHEAD));
    link.tap.transmit(&frame(1500 + FRAME_OVERHEAD + 1));
    link.tap.transmit(&frame(65_536));
    let s = link.tap.stats();
    assert_eq!((s.transmitted, s.dropped_short, s.dropped_long, s.write_errors), (2, 2, 2, 0), "{s:?}");
    // A larger MTU set behind the backend's back is picked up.
    link.ns.ip(&["link", "set", "tap0", "mtu", "9000"]);
    link.tap.transmit(&frame(9000 + FRAME_OVERHEAD));
    link.tap.transmit(&frame(9000 + FRAME_OVERHEAD + 1));
    let s = link.tap.stats();
    assert_eq!((s.transmitted, s.dropped_long), (3, 3), "{s:?}");
    assert_eq!(link.tap.mtu(), 9000);
}

#[test]
fn opening_reports_clear_errors_and_closing_removes_the_interface() {
    require_capabilities();
    let ns = Netns::new();
    let too_long = ns.run(|| TapBackend::open("sixteen-chars-xx")).expect_err("a 16-byte name");
    assert!(matches!(too_long, TapError::NameTooLong { .. }), "{too_long:?}");
    assert!(too_long.to_string().contains("name too long"), "{too_long}");
    let bad = ns.run(|| TapBackend::open("tap/0")).expect_err("a name with a slash");
    assert!(matches!(bad, TapError::BadName { .. }), "{bad:?}");
    let lo = ns.run(|| TapBackend::open("lo")).expect_err("lo is no TAP");
    assert!(matches!(lo, TapError::NotTap { .. }) && lo.to_string().contains("not a TAP"), "{lo}");

    let tap = ns.run(|| TapBackend::open("rl%d")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tap.name(), "rl0", "the kernel completes %d");
    assert!(ns.ip_ok(&["link", "show", "rl0"]), "rl0 exists while open");
    let busy = ns.run(|| TapBackend::open("rl0")).expect_err("rl0 is open already");
    assert!(matches!(busy, TapError::Busy { .. }) && busy.to_string().contains("busy"), "{busy}");
    assert_eq!(tap.stats(), TapStats::default());
    drop(tap);
    assert!(!ns.ip_ok(&["link", "show", "rl0"]), "rl0 disappears when the backend is dropped");

    let missing = ns.run(|| enter_network_namespace(std::path::Path::new("/var/run/netns/rl-tap-no-such-namespace")));
    assert!(matches!(missing, Err(TapError::Namespace { .. })), "{missing:?}");
}

#[test]
fn polling_an_idle_interface_returns_at_once_and_a_downed_one_refuses_frames() {
    let link = Link::new();
    // Drain whatever Linux sent when the link came up, then nothing is waiting: poll must not block.
    let _ = link.tap.poll();
    link.ns.ip(&["link", "set", "tap0", "down"]);
    let start = Instant::now();
    for _ in 0..100 {
        let _ = link.tap.poll();
    }
    assert!(start.elapsed() < Duration::from_secs(1), "100 polls took {:?}", start.elapsed());
    assert_eq!(link.tap.stats().read_errors, 0, "{:?}", link.tap.stats());
    // Linux refuses frames on a downed interface: counted, not fatal.
    link.tap.transmit(&ethernet(BROADCAST, OUR_MAC, ETHERTYPE_ARP, &arp(1, OUR_MAC, OUR_IP, [0; 6], LINUX_IP)));
    let s = link.tap.stats();
    assert_eq!((s.transmitted, s.write_errors), (0, 1), "{s:?}");
}

// ---- `ndis-host run --tap` ------------------------------------------------------------------------------

/// The ndis-host binary.
fn ndis_host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ndis-host"))
}

/// The built driver, as the other ndis-host tests find it.
fn driver_path() -> PathBuf {
    let dir = std::env::var_os("RAWLINK_PACKAGE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("target").join("rawlink-package")
    });
    let path = dir.join("rawlink.sys");
    assert!(path.exists(), "{} is missing; run `cargo xtask build` first", path.display());
    path
}

#[test]
fn the_cli_refuses_a_bad_tap_name_before_loading_anything() {
    for (name, says) in [("a/b", "bad interface name"), ("sixteen-chars-xx", "name too long")] {
        let out = ndis_host().args(["run", "/nonexistent/rawlink.sys", "--tap", name]).output().expect("run ndis-host");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--tap {name} accepted");
        assert!(err.contains(says) && err.contains(&format!("--tap {name}")), "--tap {name}: {err}");
    }
}

/// Runs `ndis-host run /nonexistent/rawlink.sys --tap tapx` through `wrapper` (util-linux, always on Debian)
/// inside a fresh namespace, and returns its stderr; it must fail.
fn cli_error_under(wrapper: &[&str]) -> String {
    require_capabilities();
    let ns = Netns::new();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .args(wrapper)
        .arg(env!("CARGO_BIN_EXE_ndis-host"))
        .args(["run", "/nonexistent/rawlink.sys", "--tap", "tapx"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {wrapper:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{wrapper:?}: ndis-host succeeded; stderr: {err}");
    err
}

#[test]
fn the_cli_says_cap_net_admin_is_missing() {
    // Root without CAP_NET_ADMIN in its bounding set may open /dev/net/tun but not create an interface.
    let err = cli_error_under(&["setpriv", "--bounding-set", "-net_admin", "--"]);
    assert!(err.contains("--tap tapx: permission denied: needs CAP_NET_ADMIN"), "{err}");
}

#[test]
fn the_cli_says_dev_net_tun_is_missing() {
    require_capabilities();
    // A private mount namespace where /dev/net is an empty tmpfs: no tun device.
    let script = "mount -t tmpfs none /dev/net && exec \"$0\" run /nonexistent/rawlink.sys --tap tapx";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(env!("CARGO_BIN_EXE_ndis-host"))
        .output()
        .expect("run unshare (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--tap tapx: /dev/net/tun missing"), "{err}");
}

#[test]
fn the_cli_connects_the_first_adapter_to_a_tap_and_linux_frames_reach_the_driver() {
    require_capabilities();
    let sys = driver_path();
    let ns = Netns::new();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(env!("CARGO_BIN_EXE_ndis-host"))
        .args(["run".as_ref(), sys.as_os_str(), "--tap".as_ref(), "tap0".as_ref(), "--adapters".as_ref(), "1".as_ref()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ndis-host in the namespace");
    // `ip netns exec` execs ndis-host, so the child's pid is ndis-host's.
    let pid = child.id().to_string();
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The guard kills ndis-host (SIGKILL) if anything below fails, before the namespace goes.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Kill(child);
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.last().is_some_and(|l: &String| l.starts_with("serving")) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => lines.push(l),
            Err(_) if Instant::now() < deadline && matches!(child.0.try_wait(), Ok(None)) => {}
            Err(_) => {
                let _ = child.0.kill();
                let out = child.0.wait_with_output_lossy();
                panic!("ndis-host did not start serving; stdout: {lines:#?}; stderr: {out}");
            }
        }
    }
    assert!(lines.iter().any(|l| l.contains("connected to TAP interface tap0 (MTU 1500, up)")), "{lines:#?}");
    assert!(ns.ip(&["link", "show", "tap0"]).contains(",UP"), "ndis-host brings tap0 up");

    // Linux sends three datagrams to the adapter's MAC: three frames out of tap0, into the driver.
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "tap0"]);
    ns.ip(&["neigh", "replace", "192.0.2.2", "lladdr", "02:52:4c:00:00:01", "dev", "tap0", "nud", "permanent"]);
    ns.run(|| {
        let s = UdpSocket::bind((Ipv4Addr::from(LINUX_IP), 0)).expect("bind in the namespace");
        for i in 0..3u8 {
            s.send_to(&[i; 20], (Ipv4Addr::from(OUR_IP), 9)).expect("send");
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    let sigint = Command::new("sh").args(["-c", &format!("kill -INT {pid}")]).status().expect("sh");
    assert!(sigint.success(), "kill -INT {pid}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(s)) = child.0.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "ndis-host did not unload within 20 s of Ctrl-C; stdout: {lines:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    lines.extend(rx.try_iter());
    let stderr = child.0.wait_with_output_lossy();
    assert!(status.success(), "ndis-host failed ({status}); stdout: {lines:#?}; stderr: {stderr}");
    let counts = lines
        .iter()
        .find(|l| l.trim_start().starts_with("TAP tap0:"))
        .unwrap_or_else(|| panic!("no TAP counters: {lines:#?}"));
    let from_linux: u64 = counts
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable counters: {counts}"));
    assert!(from_linux >= 3, "the three datagrams (and whatever else Linux sent) came out of tap0: {counts}");
    let indicated: u64 = lines
        .iter()
        .find_map(|l| l.trim_start().strip_suffix(" frame(s) from TAP tap0 indicated to the driver"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of indicated frames: {lines:#?}"));
    assert_eq!(indicated, from_linux, "every frame out of tap0 is indicated to the Running binding");
    assert!(lines.iter().any(|l| l == "verifier: no violations, no leaks"), "{lines:#?}");
}

/// Output of a finished child, for messages.
trait Lossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl Lossy for std::process::Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}
