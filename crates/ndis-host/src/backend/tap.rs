//! A Linux TAP device as the far side of an adapter: what the driver sends through the adapter enters the
//! Linux network stack as if it arrived on the TAP interface's cable; what Linux sends out of the interface
//! is [`Backend::poll`]ed back to the adapter. Run it in a network namespace of its own (the thread that calls
//! [`TapBackend::open`] decides which; see [`enter_network_namespace`]) and Linux is the adapter's only
//! neighbour.
//!
//! The file descriptor is non-blocking: [`Backend::poll`] reads until the kernel has nothing more
//! (`EAGAIN`), [`Backend::transmit`] writes one frame per `write(2)`. Frames Ethernet cannot carry (shorter
//! than a 14-byte header, longer than the interface MTU + 18: header plus one 802.1Q tag) are dropped and
//! counted, as are write and read errors — a backend never panics and never blocks. Dropping the backend
//! closes the descriptor, which removes the interface unless it was made persistent (`ip tuntap add`).

use super::Backend;
use crate::native::tap as raw;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The clone device of the Linux tun/tap driver.
pub const TUN_DEVICE: &str = "/dev/net/tun";
/// Ethernet header (14 bytes) plus one 802.1Q tag (4): what a frame may carry beyond the MTU.
pub const FRAME_OVERHEAD: usize = 18;
/// The shortest frame worth carrying: a bare Ethernet header.
pub const MIN_FRAME: usize = 14;
/// One `poll` reads at most this many frames; the rest waits in the kernel for the next call.
pub const MAX_FRAMES_PER_POLL: usize = 4096;
/// Largest frame the kernel can hand out: the tun driver's maximum MTU (65535) plus the overhead.
const READ_BUFFER: usize = 65_535 + FRAME_OVERHEAD;
/// The cached MTU is re-read at least this often (and whenever a frame exceeds it).
const MTU_REFRESH_MS: u64 = 1000;

/// Why a TAP device could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error(
        "{TUN_DEVICE} missing: the tun/tap driver is not available ({source}); load it with `modprobe tun`, or in \
         a container pass the device in (e.g. `--device /dev/net/tun`)"
    )]
    TunMissing { source: io::Error },
    #[error("permission denied: needs CAP_NET_ADMIN (run as root) to create TAP interface `{name}` ({source})")]
    PermissionDenied { name: String, source: io::Error },
    #[error("interface name too long: `{name}` is {len} bytes, Linux allows at most {max}", max = raw::IFNAMSIZ - 1)]
    NameTooLong { name: String, len: usize },
    #[error("bad interface name `{name}`: {why}")]
    BadName { name: String, why: &'static str },
    #[error("interface `{name}` is busy: another program has that TAP device open")]
    Busy { name: String },
    #[error("interface `{name}` already exists and is not a TAP device (or is a multi-queue TAP)")]
    NotTap { name: String },
    #[error("network namespace {path}: {why} ({source})")]
    Namespace { path: String, why: &'static str, source: io::Error },
    #[error("{what} on interface `{name}`: {source}")]
    Io { what: &'static str, name: String, source: io::Error },
}

/// What a TAP backend has carried and dropped so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames written to the interface (delivered to Linux).
    pub transmitted: u64,
    /// Frames read from the interface (sent by Linux).
    pub received: u64,
    /// Frames shorter than an Ethernet header, not written.
    pub dropped_short: u64,
    /// Frames longer than the MTU + [`FRAME_OVERHEAD`], not written.
    pub dropped_long: u64,
    /// Frames the kernel refused (`write(2)` failed, e.g. the interface is down).
    pub write_errors: u64,
    /// Failed reads other than "nothing to read".
    pub read_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transmitted: AtomicU64,
    received: AtomicU64,
    dropped_short: AtomicU64,
    dropped_long: AtomicU64,
    write_errors: AtomicU64,
    read_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A TAP interface attached to one adapter.
pub struct TapBackend {
    /// `/dev/net/tun` after TUNSETIFF: reads and writes are whole Ethernet frames.
    tap: File,
    /// For the interface ioctls; created in the same namespace as the interface.
    sock: OwnedFd,
    name: String,
    mtu: AtomicU32,
    opened: Instant,
    /// Milliseconds after `opened` at which `mtu` was last read.
    mtu_read_at: AtomicU64,
    buf: Mutex<Vec<u8>>,
    counters: Counters,
}

impl fmt::Debug for TapBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapBackend")
            .field("name", &self.name)
            .field("mtu", &self.mtu())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Checks `name` the way the kernel's `dev_valid_name` does, with a reason for each refusal.
pub fn check_interface_name(name: &str) -> Result<(), TapError> {
    let bad = |why| Err(TapError::BadName { name: name.to_owned(), why });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() >= raw::IFNAMSIZ {
        return Err(TapError::NameTooLong { name: name.to_owned(), len: name.len() });
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not interface names");
    }
    if name.contains('/') || name.contains(':') {
        return bad("`/` and `:` are not allowed");
    }
    if name.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b) {
        return bad("whitespace is not allowed");
    }
    if name.contains('\0') {
        return bad("NUL is not allowed");
    }
    Ok(())
}

/// Moves the calling thread (only it) into the network namespace at `path`, e.g. `/var/run/netns/NAME` as
/// created by `ip netns add NAME`. A TAP opened afterwards on this thread lives in that namespace; the
/// backend itself may then be used from any thread.
pub fn enter_network_namespace(path: &Path) -> Result<(), TapError> {
    let shown = path.display().to_string();
    let ns =
        File::open(path).map_err(|source| TapError::Namespace { path: shown.clone(), why: "cannot open", source })?;
    raw::enter_network_namespace(&ns).map_err(|source| {
        let why = match source.raw_os_error() {
            Some(libc::EPERM) => "setns needs CAP_SYS_ADMIN",
            Some(libc::EINVAL) => "not a network namespace",
            _ => "setns failed",
        };
        TapError::Namespace { path: shown, why, source }
    })
}

impl TapBackend {
    /// Opens (creating if needed) the TAP interface `name` in the calling thread's network namespace, without
    /// packet information, non-blocking. A name with `%d` (e.g. `tap%d`) lets the kernel pick the number;
    /// [`TapBackend::name`] tells which. The interface starts down: see [`TapBackend::set_up`].
    pub fn open(name: &str) -> Result<TapBackend, TapError> {
        check_interface_name(name)?;
        let tap = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(TUN_DEVICE).map_err(
            |source| match source.raw_os_error() {
                Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => TapError::TunMissing { source },
                Some(libc::EACCES | libc::EPERM) => TapError::PermissionDenied { name: name.to_owned(), source },
                _ => TapError::Io { what: "opening /dev/net/tun", name: name.to_owned(), source },
            },
        )?;
        let actual = raw::set_tap_interface(&tap, name).map_err(|source| {
            let name = name.to_owned();
            match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => TapError::PermissionDenied { name, source },
                Some(libc::EBUSY) => TapError::Busy { name },
                Some(libc::EINVAL) => TapError::NotTap { name },
                _ => TapError::Io { what: "TUNSETIFF", name, source },
            }
        })?;
        let sock =
            raw::control_socket().map_err(|source| TapError::Io { what: "socket", name: actual.clone(), source })?;
        let mtu = raw::mtu(&sock, &actual).map_err(|source| TapError::Io {
            what: "SIOCGIFMTU",
            name: actual.clone(),
            source,
        })?;
        Ok(TapBackend {
            tap,
            sock,
            name: actual,
            mtu: AtomicU32::new(mtu),
            opened: Instant::now(),
            mtu_read_at: AtomicU64::new(0),
            buf: Mutex::new(vec![0; READ_BUFFER]),
            counters: Counters::default(),
        })
    }

    /// The interface's name (as the kernel completed it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's MTU as last read.
    pub fn mtu(&self) -> u32 {
        self.mtu.load(Ordering::Relaxed)
    }

    /// Brings the interface up (`ip link set NAME up`).
    pub fn set_up(&self) -> Result<(), TapError> {
        raw::set_up(&self.sock, &self.name).map_err(|source| TapError::Io {
            what: "SIOCSIFFLAGS (up)",
            name: self.name.clone(),
            source,
        })
    }

    /// Sets the Linux side's Ethernet address (`ip link set NAME address MAC`). This is the address of the
    /// interface, the adapter's neighbour — not the adapter's own.
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<(), TapError> {
        raw::set_mac(&self.sock, &self.name, mac).map_err(|source| TapError::Io {
            what: "SIOCSIFHWADDR",
            name: self.name.clone(),
            source,
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> TapStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TapStats {
            transmitted: g(&c.transmitted),
            received: g(&c.received),
            dropped_short: g(&c.dropped_short),
            dropped_long: g(&c.dropped_long),
            write_errors: g(&c.write_errors),
            read_errors: g(&c.read_errors),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The largest frame the interface takes now: the cached MTU, re-read when stale or when `len` exceeds it
    /// (the MTU may have been changed with `ip link set mtu`).
    fn frame_limit(&self, len: usize) -> usize {
        let limit = |mtu: u32| usize::try_from(mtu).unwrap_or(usize::MAX).saturating_add(FRAME_OVERHEAD);
        let now = self.now_ms();
        if len > limit(self.mtu()) || now.saturating_sub(self.mtu_read_at.load(Ordering::Relaxed)) >= MTU_REFRESH_MS {
            if let Ok(m) = raw::mtu(&self.sock, &self.name) {
                self.mtu.store(m, Ordering::Relaxed);
            }
            self.mtu_read_at.store(now, Ordering::Relaxed);
        }
        limit(self.mtu())
    }
}

impl Backend for TapBackend {
    fn transmit(&self, frame: &[u8]) {
        let c = &self.counters;
        if frame.len() < MIN_FRAME {
            return bump(&c.dropped_short);
        }
        if frame.len() > self.frame_limit(frame.len()) {
            return bump(&c.dropped_long);
        }
        // One write(2) per frame; the tun driver takes the whole frame or fails. EINTR is retried a few times.
        for _ in 0..4 {
            match (&self.tap).write(frame) {
                Ok(n) if n == frame.len() => return bump(&c.transmitted),
                Ok(_) => return bump(&c.write_errors),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return bump(&c.write_errors),
            }
        }
        bump(&c.write_errors);
    }

    fn wait(&self, timeout: std::time::Duration) {
        // poll(2) counts in whole milliseconds: round up, so a short wait still waits.
        let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        raw::wait_readable(&self.tap, ms);
    }

    fn poll(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let mut interrupted = 0;
        while frames.len() < MAX_FRAMES_PER_POLL {
            match (&self.tap).read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(f) = buf.get(..n) {
                        frames.push(f.to_vec());
                        bump(&self.counters.received);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupted < 4 => interrupted += 1,
                Err(_) => {
                    bump(&self.counters.read_errors);
                    break;
                }
            }
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_kernel_does() {
        assert!(check_interface_name("tap0").is_ok());
        assert!(check_interface_name("tap%d").is_ok());
        assert!(check_interface_name("fifteen-chars-x").is_ok());
        assert!(matches!(check_interface_name("sixteen-chars-xx"), Err(TapError::NameTooLong { len: 16, .. })));
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\0b"] {
            assert!(matches!(check_interface_name(bad), Err(TapError::BadName { .. })), "{bad:?} accepted");
        }
        let msg = check_interface_name("a-very-long-interface").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("name too long") && msg.contains("at most 15"), "{msg}");
    }
}
