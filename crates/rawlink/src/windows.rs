//! The Windows backend: `\\.\RawLink` through CreateFileW, DeviceIoControl, ReadFile and WriteFile, all
//! overlapped (FILE_FLAG_OVERLAPPED), so a request can be waited for with a timeout and cancelled
//! (CancelIoEx) — the buffers are never in use after a call returns. When the device cannot be opened the
//! service control manager tells "not installed" from "not started".
//!
//! This is the crate's one module with `unsafe`: each block makes one Win32 call on memory this module owns
//! for the duration of the call (or, for overlapped I/O, until the request has completed or been cancelled
//! and reaped).

use crate::backend::{Backend, Completion, Failure, RawHandle, RingMemory};
use crate::error::{Error, Status};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING,
    ERROR_OPERATION_ABORTED, ERROR_PATH_NOT_FOUND, ERROR_SERVICE_DOES_NOT_EXIST, GENERIC_READ, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, ReadFile, WriteFile, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE,
};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, OpenSCManagerW, OpenServiceW, QueryServiceStatus, SC_HANDLE, SC_MANAGER_CONNECT,
    SERVICE_QUERY_STATUS, SERVICE_RUNNING, SERVICE_STATUS,
};
use windows_sys::Win32::System::Threading::{CreateEventW, INFINITE};
use windows_sys::Win32::System::IO::{
    CancelIoEx, DeviceIoControl, GetOverlappedResult, GetOverlappedResultEx, OVERLAPPED,
};

/// What user mode opens.
pub const DEVICE_PATH: &str = "\\\\.\\RawLink";

/// How to install the driver package (scripts/install.ps1, docs/WINDOWS.md).
const INSTALL_HINT: &str = "install the driver package as Administrator: \
    .\\scripts\\install.ps1 -PackageDir <folder with rawlink.inf> (see docs/WINDOWS.md), then `sc.exe start RAWLINK`";

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    unsafe { GetLastError() }
}

/// The rawlink driver on this Windows machine.
#[derive(Debug, Default)]
pub struct WindowsBackend;

impl WindowsBackend {
    pub fn new() -> Self {
        Self
    }
}

/// A kernel handle closed on drop.
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the handle was returned by CreateEventW and is closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// A service-manager handle closed on drop.
struct Service(SC_HANDLE);

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW/OpenServiceW and is closed once, here.
        unsafe { CloseServiceHandle(self.0) };
    }
}

/// Why `\\.\RawLink` is missing: the RAWLINK service does not exist, or exists and is stopped.
fn diagnose_missing_device(open_error: u32) -> Error {
    let manager_name: *const u16 = std::ptr::null();
    // SAFETY: null machine and database names select the local active database; no buffers are passed.
    let scm = unsafe { OpenSCManagerW(manager_name, manager_name, SC_MANAGER_CONNECT) };
    if scm.is_null() {
        return Error::DriverNotStarted {
            hint: format!(
                "{DEVICE_PATH} cannot be opened ({}) and the service manager cannot be asked ({}); {INSTALL_HINT}",
                Status::Win32(open_error),
                Status::Win32(last_error())
            ),
        };
    }
    let scm = Service(scm);
    let name = wide(rawlink_abi::PROTOCOL_NAME);
    // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call; `scm` is open.
    let svc = unsafe { OpenServiceW(scm.0, name.as_ptr(), SERVICE_QUERY_STATUS) };
    if svc.is_null() {
        let e = last_error();
        return if e == ERROR_SERVICE_DOES_NOT_EXIST {
            Error::DriverNotInstalled { hint: format!("there is no RAWLINK service; {INSTALL_HINT}") }
        } else {
            Error::DriverNotStarted {
                hint: format!(
                    "{DEVICE_PATH} is missing and the RAWLINK service cannot be queried ({})",
                    Status::Win32(e)
                ),
            }
        };
    }
    let svc = Service(svc);
    let mut status = SERVICE_STATUS {
        dwServiceType: 0,
        dwCurrentState: 0,
        dwControlsAccepted: 0,
        dwWin32ExitCode: 0,
        dwServiceSpecificExitCode: 0,
        dwCheckPoint: 0,
        dwWaitHint: 0,
    };
    // SAFETY: `status` is a writable SERVICE_STATUS that outlives the call; `svc` is open.
    let ok = unsafe { QueryServiceStatus(svc.0, &mut status) };
    if ok != 0 && status.dwCurrentState == SERVICE_RUNNING {
        return Error::DriverNotStarted {
            hint: format!(
                "the RAWLINK service runs but {DEVICE_PATH} is missing ({}); restart it as Administrator: \
                 `sc.exe stop RAWLINK` then `sc.exe start RAWLINK`, and see the System event log",
                Status::Win32(open_error)
            ),
        };
    }
    let exit = if ok != 0 && status.dwWin32ExitCode != 0 {
        format!(" (it last stopped with {})", Status::Win32(status.dwWin32ExitCode))
    } else {
        String::new()
    };
    Error::DriverNotStarted { hint: format!("start it as Administrator with `sc.exe start RAWLINK`{exit}") }
}

fn handle(h: RawHandle) -> HANDLE {
    // CAST: RawHandle carries the HANDLE's bits (see `open`).
    h.0 as usize as HANDLE
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Starts an overlapped request with `start` and waits for it: up to `timeout` (`None`: for ever), then
/// cancels it and waits until the cancellation has completed, so `start`'s buffers are free on return.
fn overlapped(h: HANDLE, timeout: Option<Duration>, start: impl FnOnce(*mut OVERLAPPED) -> i32) -> Completion {
    let null_attrs = std::ptr::null();
    let no_name: *const u16 = std::ptr::null();
    // SAFETY: a manual-reset, unnamed event with default security; no buffers are passed.
    let event = unsafe { CreateEventW(null_attrs, 1, 0, no_name) };
    if event.is_null() {
        return Err(Failure::Backend(format!("CreateEventW: {}", Status::Win32(last_error()))));
    }
    let event = Owned(event);
    // The OVERLAPPED stays on this frame until the request has completed (or been cancelled and reaped).
    let mut ov = OVERLAPPED { Internal: 0, InternalHigh: 0, Anonymous: Default::default(), hEvent: event.0 };
    let started = start(&mut ov);
    if started == 0 {
        let e = last_error();
        if e != ERROR_IO_PENDING {
            return Err(Failure::Status(Status::Win32(e)));
        }
    }
    let ms = timeout.map_or(INFINITE, |t| u32::try_from(t.as_millis()).unwrap_or(INFINITE - 1).min(INFINITE - 1));
    let mut n = 0u32;
    // SAFETY: `ov` is the OVERLAPPED of the request started on `h`; `n` is writable.
    let done = unsafe { GetOverlappedResultEx(h, &ov, &mut n, ms, 0) };
    if done != 0 {
        return Ok(n as usize);
    }
    let e = last_error();
    if e != WAIT_TIMEOUT && e != ERROR_IO_INCOMPLETE {
        return Err(Failure::Status(Status::Win32(e)));
    }
    // SAFETY: cancels only the request of `ov` on `h`.
    unsafe { CancelIoEx(h, &ov) };
    // SAFETY: as above; waits (bWait = TRUE) for the cancelled request to complete.
    let done = unsafe { GetOverlappedResult(h, &ov, &mut n, 1) };
    if done != 0 {
        // It completed before the cancellation reached it.
        return Ok(n as usize);
    }
    match last_error() {
        ERROR_OPERATION_ABORTED => Err(Failure::TimedOut),
        e => Err(Failure::Status(Status::Win32(e))),
    }
}

impl Backend for WindowsBackend {
    fn open(&self) -> Result<RawHandle, Error> {
        let path = wide(DEVICE_PATH);
        let null_attrs = std::ptr::null();
        // SAFETY: `path` is NUL-terminated UTF-16 and outlives the call; no template handle.
        let h = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                null_attrs,
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            let e = last_error();
            return Err(match e {
                ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => diagnose_missing_device(e),
                ERROR_ACCESS_DENIED => Error::AccessDenied {
                    what: format!("opening {DEVICE_PATH}"),
                    hint: "the device admits only Administrators and SYSTEM: run the program as Administrator \
                           (an elevated prompt)"
                        .into(),
                },
                e => Error::Driver { op: "CreateFileW(\\\\.\\RawLink)", status: Status::Win32(e), hint: None },
            });
        }
        // CAST: a HANDLE's bits fit u64 on every Windows target.
        Ok(RawHandle(h as usize as u64))
    }

    fn close(&self, h: RawHandle) {
        // SAFETY: the handle came from `open` and the caller closes it once.
        unsafe { CloseHandle(handle(h)) };
    }

    fn ioctl(&self, h: RawHandle, code: u32, input: &[u8], output: &mut [u8], timeout: Option<Duration>) -> Completion {
        let hd = handle(h);
        let (out_ptr, out_len) = (output.as_mut_ptr(), len32(output.len()));
        overlapped(hd, timeout, |ov| {
            let mut n = 0u32;
            // SAFETY: `input` and `output` outlive the request: `overlapped` returns only after it completed.
            unsafe {
                DeviceIoControl(
                    hd,
                    code,
                    input.as_ptr().cast(),
                    len32(input.len()),
                    out_ptr.cast(),
                    out_len,
                    &mut n,
                    ov,
                )
            }
        })
    }

    fn read(&self, h: RawHandle, output: &mut [u8], timeout: Option<Duration>) -> Completion {
        let hd = handle(h);
        let (ptr, len) = (output.as_mut_ptr(), len32(output.len()));
        overlapped(hd, timeout, |ov| {
            let mut n = 0u32;
            // SAFETY: `output` outlives the request: `overlapped` returns only after it completed.
            unsafe { ReadFile(hd, ptr, len, &mut n, ov) }
        })
    }

    fn write(&self, h: RawHandle, input: &[u8], timeout: Option<Duration>) -> Completion {
        let hd = handle(h);
        overlapped(hd, timeout, |ov| {
            let mut n = 0u32;
            // SAFETY: `input` outlives the request: `overlapped` returns only after it completed.
            unsafe { WriteFile(hd, input.as_ptr(), len32(input.len()), &mut n, ov) }
        })
    }

    fn describe(&self) -> String {
        format!("Windows: {DEVICE_PATH}")
    }

    fn attach_ring(&self, h: RawHandle, setup: &[u8], len: usize) -> Result<Box<dyn RingMemory>, Failure> {
        let hd = handle(h);
        let null_attrs = std::ptr::null();
        let no_name: *const u16 = std::ptr::null();
        // SAFETY: a manual-reset, unnamed event with default security; no buffers are passed.
        let event = unsafe { CreateEventW(null_attrs, 1, 0, no_name) };
        if event.is_null() {
            return Err(Failure::Backend(format!("CreateEventW: {}", Status::Win32(last_error()))));
        }
        let event = Owned(event);
        // SAFETY: a fresh committed read-write allocation of `len` bytes at an address the system picks
        // (page-aligned, as the driver requires).
        let base = unsafe { VirtualAlloc(std::ptr::null(), len, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        if base.is_null() {
            return Err(Failure::Backend(format!("VirtualAlloc of {len} bytes: {}", Status::Win32(last_error()))));
        }
        let ov = Box::new(OVERLAPPED { Internal: 0, InternalHigh: 0, Anonymous: Default::default(), hEvent: event.0 });
        // The ring owns the memory, the OVERLAPPED (boxed: its address stays put) and the event from here on,
        // so every early return frees them, after the request (if it started) has completed.
        let ring = WindowsRing { base: base.cast(), len, h: hd, ov, _event: event, done: Mutex::new(None) };
        let mut n = 0u32;
        let ov_ptr: *const OVERLAPPED = &*ring.ov;
        // SAFETY: `setup` outlives the call (the I/O manager copies METHOD_OUT_DIRECT input); the output buffer
        // is the ring's allocation, which stays allocated until the request has completed (WindowsRing's
        // Drop); the OVERLAPPED lives in the ring's box for as long.
        let started = unsafe {
            DeviceIoControl(
                hd,
                rawlink_abi::ring::IOCTL_RAWLINK_RING_ATTACH,
                setup.as_ptr().cast(),
                len32(setup.len()),
                base,
                len32(len),
                &mut n,
                ov_ptr.cast_mut(),
            )
        };
        let e = last_error();
        if started != 0 {
            // Completed at once: the driver did not keep the ring.
            *ring.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(0);
            return Err(Failure::Backend("RING_ATTACH completed at once instead of pending".into()));
        }
        if e != ERROR_IO_PENDING {
            *ring.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            return Err(Failure::Status(Status::Win32(e)));
        }
        Ok(Box::new(ring))
    }

    fn ring_detached(&self, ring: &dyn RingMemory) -> Option<Failure> {
        let r = ring.as_any().downcast_ref::<WindowsRing>()?;
        match r.poll(false)? {
            0 => Some(Failure::Backend("the ring's attach request completed".into())),
            e => Some(Failure::Status(Status::Win32(e))),
        }
    }

    fn detach_ring(&self, ring: &dyn RingMemory) {
        if let Some(r) = ring.as_any().downcast_ref::<WindowsRing>() {
            r.cancel_and_wait();
        }
    }
}

/// A mapped ring's memory on Windows: pages VirtualAlloc gave, which the I/O manager keeps locked while the
/// attach request (on `h`, with `ov`) is pending. They are freed only after that request has completed.
///
/// # Invariants
///
/// `base..base + len` is this value's VirtualAlloc allocation; `ov` is the OVERLAPPED of the attach request
/// started on `h`, if one was started.
struct WindowsRing {
    base: *mut u8,
    len: usize,
    h: HANDLE,
    ov: Box<OVERLAPPED>,
    _event: Owned,
    /// The request's Win32 result once it completed (0: success).
    done: Mutex<Option<u32>>,
}

// SAFETY: the memory is reached only through atomics and copies (the driver writes it concurrently anyway);
// the OVERLAPPED is only passed to GetOverlappedResult/CancelIoEx, which may be called from any thread.
unsafe impl Send for WindowsRing {}
// SAFETY: as above.
unsafe impl Sync for WindowsRing {}

impl std::fmt::Debug for WindowsRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WindowsRing({:p}, {} bytes)", self.base, self.len)
    }
}

impl WindowsRing {
    /// The request's result if it completed (waiting for it with `wait`).
    fn poll(&self, wait: bool) -> Option<u32> {
        let mut done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if done.is_none() {
            let mut n = 0u32;
            // SAFETY: `ov` is the OVERLAPPED of the request started on `h` (type invariant).
            let ok = unsafe { GetOverlappedResult(self.h, &*self.ov, &mut n, i32::from(wait)) };
            let e = if ok != 0 { 0 } else { last_error() };
            if e != ERROR_IO_INCOMPLETE {
                *done = Some(e);
            }
        }
        *done
    }

    fn cancel_and_wait(&self) {
        if self.poll(false).is_none() {
            // SAFETY: cancels only the attach request of `ov` on `h`.
            unsafe { CancelIoEx(self.h, &*self.ov) };
            let _ = self.poll(true);
        }
    }

    fn word(&self, offset: usize) -> Option<&AtomicU32> {
        if offset % 4 != 0 || offset.checked_add(4).is_none_or(|e| e > self.len) {
            return None;
        }
        // SAFETY: inside the allocation (checked), 4-byte aligned (VirtualAlloc memory is page-aligned); an
        // AtomicU32 may alias memory the driver writes concurrently.
        Some(unsafe { AtomicU32::from_ptr(self.base.add(offset).cast::<u32>()) })
    }
}

impl RingMemory for WindowsRing {
    fn load_u32(&self, offset: usize) -> u32 {
        self.word(offset).map_or(0, |w| w.load(Ordering::Acquire))
    }
    fn store_u32(&self, offset: usize, v: u32) {
        if let Some(w) = self.word(offset) {
            w.store(v, Ordering::Release);
        }
    }
    fn read_into(&self, offset: usize, out: &mut [u8]) -> bool {
        if offset.checked_add(out.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: inside the allocation (checked); copied out, never referenced.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(offset), out.as_mut_ptr(), out.len()) };
        true
    }
    fn request(&self) -> usize {
        std::ptr::from_ref::<OVERLAPPED>(&*self.ov) as usize
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Drop for WindowsRing {
    fn drop(&mut self) {
        // The pages stay allocated until the driver and the I/O manager are done with them.
        self.cancel_and_wait();
        // SAFETY: this value's allocation (type invariant), no longer used by any request.
        unsafe { VirtualFree(self.base.cast(), 0, MEM_RELEASE) };
    }
}
