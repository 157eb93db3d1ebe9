//! The raw parts of a Linux TAP device: `TUNSETIFF` on `/dev/net/tun`, the interface ioctls (MTU, flags,
//! hardware address) on an `AF_INET` datagram socket, and `setns` into a network namespace.
//!
//! Everything here is a thin, checked wrapper around one system call; errors are returned as `io::Error`
//! with the OS error intact so [`crate::backend::tap`] can turn them into clear messages. Opening files and
//! reading/writing frames need no unsafe code (std's `File` does it) and are done there.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `IFNAMSIZ` from `<net/if.h>`: an interface name plus its NUL terminator fits in 16 bytes.
pub const IFNAMSIZ: usize = libc::IFNAMSIZ;

/// `IFF_TAP | IFF_NO_PI` as `ifr_flags` (a `c_short`) holds them; libc declares the flags as `c_int`.
const TAP_FLAGS: libc::c_short = 0x0002 | 0x1000;
const _: () = assert!(TAP_FLAGS as libc::c_int == libc::IFF_TAP | libc::IFF_NO_PI);
/// `IFF_UP` as `ifr_flags` holds it.
const IFF_UP: libc::c_short = 0x1;
const _: () = assert!(IFF_UP as libc::c_int == libc::IFF_UP);

/// An all-zero `struct ifreq` carrying `name` (at most `IFNAMSIZ - 1` bytes, no NUL; the caller checks).
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: `ifreq` is a C struct of a byte array and a union of integers, sockaddrs and a raw pointer;
    // all-zero bytes are a valid value of every member (a null `ifru_data`).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        // CAST: `c_char` is `i8` on x86-64; the byte is reinterpreted, not converted.
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// The NUL-terminated name in `ifr_name`, as the kernel wrote it back.
fn name_of(req: &libc::ifreq) -> String {
    // CAST: `c_char` → byte, reinterpreted.
    let bytes: Vec<u8> = req.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `ioctl(fd, TUNSETIFF, {name, IFF_TAP | IFF_NO_PI})` on an open `/dev/net/tun`: attaches the file to the
/// TAP interface `name` (creating it in the calling thread's network namespace if it does not exist).
/// `IFF_NO_PI`: frames are read and written bare, without the 4-byte packet-information header. Returns the
/// interface's name as the kernel chose it (a name with `%d` is completed, e.g. `tap%d` → `tap0`).
pub fn set_tap_interface(tun: &File, name: &str) -> io::Result<String> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_flags = TAP_FLAGS;
    // SAFETY: `tun` is an open file; TUNSETIFF reads and writes one `struct ifreq`, and `req` is a live,
    // properly aligned `ifreq` for the duration of the call.
    let r = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(name_of(&req))
}

/// A socket for the interface ioctls (`SIOCGIFMTU` and friends need some socket of the namespace the
/// interface lives in). Close-on-exec; it never sends or receives anything.
pub fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One interface ioctl on `sock` with `req` in and out.
fn if_ioctl(sock: &OwnedFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request passed here (SIOCGIFMTU, SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFHWADDR) reads and/or
    // writes exactly one `struct ifreq`; `req` is a live exclusive reference for the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request, std::ptr::from_mut(req)) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The interface's MTU (`SIOCGIFMTU`).
pub fn mtu(sock: &OwnedFd, name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    if_ioctl(sock, libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote `ifru_mtu` (an integer: any bits are valid).
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other(format!("negative MTU {mtu}")))
}

/// Sets `IFF_UP` on the interface (`SIOCGIFFLAGS`, then `SIOCSIFFLAGS` with the flag added).
pub fn set_up(sock: &OwnedFd, name: &str) -> io::Result<()> {
    let mut req = ifreq(name)?;
    if_ioctl(sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags` (an integer: any bits are valid).
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | IFF_UP;
    if_ioctl(sock, libc::SIOCSIFFLAGS, &mut req)
}

/// Sets the interface's Ethernet address (`SIOCSIFHWADDR` with an `ARPHRD_ETHER` sockaddr).
pub fn set_mac(sock: &OwnedFd, name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut req = ifreq(name)?;
    // SAFETY: all-zero bytes are a valid `sockaddr` (a family and a byte array).
    let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
    sa.sa_family = libc::ARPHRD_ETHER;
    for (dst, &src) in sa.sa_data.iter_mut().zip(&mac) {
        // CAST: byte reinterpreted as `c_char`.
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = sa;
    if_ioctl(sock, libc::SIOCSIFHWADDR, &mut req)
}

/// Moves the calling thread into the network namespace `ns` refers to (an open `/var/run/netns/<name>` or
/// `/proc/<pid>/ns/net`): `setns(fd, CLONE_NEWNET)`. Only this thread changes namespace; sockets and TAP
/// interfaces it creates afterwards belong to that namespace.
pub fn enter_network_namespace(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) takes a file descriptor and a flag; `ns` is open for the duration of the call.
    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `poll(2)` for `POLLIN` on `file`, at most `timeout_ms` milliseconds: whether it is readable (an error or
/// an interrupted call count as not readable; the caller polls again).
pub fn wait_readable(file: &File, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: poll(2) reads and writes one `pollfd` that lives on this stack for the call; `file` stays open.
    let r = unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) };
    r > 0 && pfd.revents & libc::POLLIN != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_names_fit_with_their_terminator() {
        assert_eq!(ifreq("tap0").ok().map(|r| name_of(&r)).as_deref(), Some("tap0"));
        assert!(ifreq("fifteen-chars-x").is_ok());
        assert!(ifreq("sixteen-chars-xx").is_err());
        assert!(ifreq("nul\0").is_err());
    }
}
