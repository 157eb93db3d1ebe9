//! The emulated I/O manager: opening the driver's device by name, and read, write, device-control, cleanup
//! and close requests built as Windows builds them, with pending, completion, cancellation and the handles
//! of exiting processes.
//!
//! A request is an [`IrpBlock`](crate::native::irp::IrpBlock) with `StackSize` stack locations, the
//! buffers its transfer type asks for (a system buffer, an MDL over the caller's buffer, or the caller's
//! pointers), the caller's file object and an IO_STATUS_BLOCK. The host thread builds it, a caller thread of
//! its own (as on Windows, where the dispatch routine runs in the requesting thread) calls the device's
//! `MajorFunction` at PASSIVE_LEVEL, and the request is finished — output copied back, memory
//! freed — once the dispatch routine has returned and the driver has called IofCompleteRequest
//! ([`complete_request`]). The verifier checks the dispatch contract on the way: STATUS_PENDING only with
//! IoMarkIrpPending, a synchronous return only after completion and with the completed status, no cancel
//! routine left in a completed IRP, no Information beyond the caller's buffer.

use crate::host::{Host, HostError, Inner};
use crate::native::irp::{
    device_facts, major_function, Buffer, FileObjectBlock, IosbBlock, IrpBlock, IrpSpec, MdlBlock,
    SecurityContextBlock, StackParameters, FO_CLEANUP_COMPLETE, FO_HANDLE_CREATED,
};
use crate::trace::status;
use crate::verifier::Rule;
use ndis_sys::{
    KernelMode, UserMode, DO_BUFFERED_IO, DO_DIRECT_IO, DO_EXCLUSIVE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE,
    IRP_MJ_DEVICE_CONTROL, IRP_MJ_READ, IRP_MJ_WRITE, MDL_PAGES_LOCKED, MDL_WRITE_OPERATION, SL_PENDING_RETURNED,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

// CAST: NTSTATUS values are written as the unsigned hex the docs use.
pub const STATUS_SUCCESS: i32 = 0;
pub const STATUS_PENDING: i32 = 0x103;
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010u32 as i32;
pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022u32 as i32;
pub const STATUS_OBJECT_NAME_INVALID: i32 = 0xC000_0033u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009Au32 as i32;
pub const STATUS_NO_SUCH_DEVICE: i32 = 0xC000_000Eu32 as i32;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
pub const STATUS_CANCELLED: i32 = 0xC000_0120u32 as i32;

/// `IRP.Flags` the I/O manager sets (wdm.h / ntifs.h).
pub mod irp_flags {
    pub const IRP_SYNCHRONOUS_API: u32 = 0x4;
    pub const IRP_BUFFERED_IO: u32 = 0x10;
    pub const IRP_DEALLOCATE_BUFFER: u32 = 0x20;
    pub const IRP_INPUT_OPERATION: u32 = 0x40;
    pub const IRP_CREATE_OPERATION: u32 = 0x80;
    pub const IRP_READ_OPERATION: u32 = 0x100;
    pub const IRP_WRITE_OPERATION: u32 = 0x200;
    pub const IRP_CLOSE_OPERATION: u32 = 0x400;
}
use irp_flags::*;

/// Bytes of a system buffer beyond the caller's input are not zeroed on Windows; the host fills them with
/// this value so a driver that returns bytes it never wrote is visible.
pub const UNINITIALIZED_FILL: u8 = 0xCD;

/// `NT_ERROR(status)`: severity error (the top two bits set).
pub fn nt_error(status: i32) -> bool {
    // CAST: the severity bits of the NTSTATUS.
    (status as u32) >> 30 == 3
}

// ---------------------------------------------------------------- CTL_CODE

/// How a device-control request carries its buffers (`CTL_CODE`'s low two bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// METHOD_BUFFERED: one system buffer of max(input, output) bytes.
    Buffered,
    /// METHOD_IN_DIRECT: input in the system buffer, output described by an MDL the device reads.
    InDirect,
    /// METHOD_OUT_DIRECT: input in the system buffer, output described by an MDL the device writes.
    OutDirect,
    /// METHOD_NEITHER: the caller's pointers, `Type3InputBuffer` and `UserBuffer`.
    Neither,
}

/// Access rights a handle grants (`FILE_READ_DATA`, `FILE_WRITE_DATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(pub u32);

impl Access {
    pub const NONE: Access = Access(0);
    /// `FILE_READ_DATA` (what `FILE_READ_ACCESS` in a CTL_CODE requires).
    pub const READ: Access = Access(1);
    /// `FILE_WRITE_DATA` (what `FILE_WRITE_ACCESS` requires).
    pub const WRITE: Access = Access(2);
    pub const READ_WRITE: Access = Access(3);

    /// Whether every right of `needed` is granted.
    pub fn grants(self, needed: Access) -> bool {
        self.0 & needed.0 == needed.0
    }
}

/// A decoded I/O control code: `CTL_CODE(DeviceType, Function, Method, Access)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtlCode {
    pub device_type: u16,
    /// The access the caller's handle must grant (bits 14–15: FILE_READ_ACCESS 1, FILE_WRITE_ACCESS 2).
    pub required_access: Access,
    pub function: u16,
    pub transfer: TransferType,
}

impl CtlCode {
    pub fn decode(code: u32) -> Self {
        let transfer = match code & 3 {
            0 => TransferType::Buffered,
            1 => TransferType::InDirect,
            2 => TransferType::OutDirect,
            _ => TransferType::Neither,
        };
        CtlCode {
            // CAST: 16 bits of the code.
            device_type: (code >> 16) as u16,
            required_access: Access((code >> 14) & 3),
            // CAST: 12 bits of the code.
            function: ((code >> 2) & 0xFFF) as u16,
            transfer,
        }
    }
}

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The system buffer of a METHOD_BUFFERED request: max(input, output) bytes, none for zero.
pub fn buffered_size(input: usize, output: usize) -> usize {
    input.max(output)
}

// ---------------------------------------------------------------- names

/// Prefixes that all name the DOS-devices namespace (`\??`), matched case-insensitively.
const DOS_PREFIXES: &[&str] =
    &["\\DosDevices\\Global\\", "\\DosDevices\\", "\\GLOBAL??\\", "\\??\\", "\\\\.\\", "\\\\?\\"];

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s.get(prefix.len()..)).flatten()
}

/// The name inside `\??` that `link` spells, if it is a DOS-devices name.
fn dos_name(link: &str) -> Option<&str> {
    DOS_PREFIXES.iter().find_map(|p| strip_prefix_ci(link, p))
}

/// Resolves an open's name as the object manager does for a device: a Win32 `\\.\X` or NT `\??\X`
/// (`\DosDevices\X`, `\DosDevices\Global\X`, `\GLOBAL??\X`) name goes through the symbolic links to a device
/// name; an NT `\Device\X` name is used as is. Returns the device's name as created and the rest of the
/// path after it (the FILE_OBJECT's FileName), or STATUS_OBJECT_NAME_NOT_FOUND.
pub fn resolve_name<'d>(
    links: &BTreeMap<String, String>,
    devices: &[&'d str],
    path: &str,
) -> Result<(&'d str, String), i32> {
    let nt_path = match dos_name(path) {
        Some(rest) => {
            let (first, tail) = match rest.find('\\') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            if first.is_empty() {
                return Err(STATUS_OBJECT_NAME_INVALID);
            }
            let target = links
                .iter()
                .find(|(l, _)| dos_name(l).is_some_and(|n| n.eq_ignore_ascii_case(first)))
                .map(|(_, t)| t.clone())
                .ok_or(STATUS_OBJECT_NAME_NOT_FOUND)?;
            format!("{target}{tail}")
        }
        None => path.to_owned(),
    };
    for d in devices {
        if let Some(rest) = strip_prefix_ci(&nt_path, d) {
            if rest.is_empty() || rest.starts_with('\\') {
                return Ok((d, rest.to_owned()));
            }
        }
    }
    Err(STATUS_OBJECT_NAME_NOT_FOUND)
}

// ---------------------------------------------------------------- state

/// A process of the emulated machine; its handles are closed when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u32);

impl ProcessId {
    /// The process [`Host::open`] opens handles in.
    pub const INITIAL: ProcessId = ProcessId(1);
}

/// A handle to an open file object of the driver's device, in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub pid: ProcessId,
    pub value: u64,
}

#[derive(Debug)]
struct FileRec {
    fo: FileObjectBlock,
    device: usize,
    access: Access,
    handles: u32,
    /// IRPs of this file not yet finished (each holds a reference, as on Windows).
    pending: u32,
    cleanup_sent: bool,
    close_sent: bool,
}

/// Where a finished request's output comes from, and how many bytes the caller offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    None,
    System(usize),
    UserOut(usize),
}

#[derive(Debug)]
struct IrpRec {
    irp: Arc<IrpBlock>,
    major: u8,
    pid: ProcessId,
    file: u64,
    device: usize,
    system: Option<Buffer>,
    /// Shared with a armed [`UserFlip`], which may write it while the driver runs.
    user_in: Option<Arc<Buffer>>,
    user_out: Option<Buffer>,
    /// Blocks the IRP points at that only need to live until it is finished (MDL, security context).
    _lent: (Option<MdlBlock>, Option<SecurityContextBlock>),
    iosb: IosbBlock,
    output: Output,
    /// The length Information may not exceed (the caller's transfer length).
    info_limit: usize,
    /// (IoStatus.Status, IoStatus.Information) at IofCompleteRequest.
    completion: Option<(i32, usize)>,
    /// What the dispatch routine returned.
    returned: Option<i32>,
    /// A cancel is running on a processor; the request is not finished until it returns.
    cancelling: bool,
}

/// The I/O manager's books, inside the machine's [`State`](crate::host::State).
#[derive(Debug, Default)]
pub(crate) struct IoState {
    files: BTreeMap<u64, FileRec>,
    handles: BTreeMap<Handle, u64>,
    irps: HashMap<usize, IrpRec>,
    /// MDLs the driver allocated with IoAllocateMdl.
    pub driver_mdls: HashMap<usize, MdlBlock>,
    processes: BTreeSet<ProcessId>,
    next_file: u64,
    next_handle: u64,
    next_pid: u32,
}

/// A hostile caller: another thread of the process that owns a request's input buffer writes `bytes` at
/// `offset` of it while the driver is handling the request — deterministically, when the driver makes its
/// `after_calls`-th call into the kernel (counted from the dispatch of the next request that has a caller
/// input buffer: WriteFile on a DO_DIRECT_IO or neither-I/O device, a METHOD_*_DIRECT or NEITHER IOCTL). A
/// driver that copies the buffer once and uses only its copy is unaffected; one that reads the caller's bytes
/// twice sees them change between the two reads (Windows does not stop this: the pages stay the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFlip {
    pub after_calls: u32,
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// The armed [`UserFlip`], its target buffer and how many calls are left; a flag keeps the trace path free
/// of the lock while nothing is armed.
#[derive(Debug, Default)]
pub(crate) struct FlipState {
    armed: std::sync::atomic::AtomicBool,
    slot: std::sync::Mutex<FlipSlot>,
}

#[derive(Debug, Default)]
struct FlipSlot {
    plan: Option<UserFlip>,
    target: Option<Arc<Buffer>>,
    calls: u32,
    fired: bool,
}

impl FlipState {
    fn slot(&self) -> std::sync::MutexGuard<'_, FlipSlot> {
        self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request with a caller input buffer is being dispatched: the armed flip (if any, not yet aimed) aims at it.
    fn target(&self, b: &Arc<Buffer>) {
        if !self.armed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut s = self.slot();
        if s.plan.is_some() && s.target.is_none() {
            s.target = Some(Arc::clone(b));
        }
    }

    /// The driver called into the kernel: counts the call and writes the caller's buffer when it is due.
    pub(crate) fn on_driver_call(&self) {
        if !self.armed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut s = self.slot();
        if s.target.is_none() {
            return;
        }
        s.calls += 1;
        if s.plan.as_ref().is_some_and(|p| s.calls >= p.after_calls) {
            let plan = s.plan.take();
            let target = s.target.take();
            if let (Some(p), Some(t)) = (plan, target) {
                s.fired = t.overwrite(p.offset, &p.bytes);
            }
            self.armed.store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

impl IoState {
    /// Whether `mdl` is the MdlAddress of a request the driver has not completed yet: the I/O manager lent it
    /// (and the pages it describes) to the driver until it completes the request.
    pub(crate) fn lent_mdl(&self, mdl: usize) -> bool {
        self.irps.values().any(|r| r.completion.is_none() && r._lent.0.as_ref().is_some_and(|m| m.addr() == mdl))
    }

    /// The MdlAddress the I/O manager built for request `irp`, if any.
    pub(crate) fn irp_mdl(&self, irp: usize) -> Option<usize> {
        self.irps.get(&irp).and_then(|r| r._lent.0.as_ref().map(MdlBlock::addr))
    }

    /// Whether `start..end` lies inside a buffer the I/O manager lent the driver for a live request.
    pub(crate) fn lent_range(&self, start: usize, end: usize) -> bool {
        self.irps.values().any(|r| {
            [r.system.as_ref(), r.user_in.as_deref(), r.user_out.as_ref()]
                .into_iter()
                .flatten()
                .any(|b| start >= b.addr() && end <= b.addr() + b.len())
        })
    }
}

/// The outcome of a request, as the caller's IO_STATUS_BLOCK and buffer see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoResult {
    pub status: i32,
    pub information: usize,
    /// The bytes the caller's output buffer received (`min(Information, length)`; none on an error status).
    pub output: Vec<u8>,
}

impl IoResult {
    fn status_only(status: i32) -> Self {
        IoResult { status, information: 0, output: Vec::new() }
    }
}

/// Why an open failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("open failed with {}", status(*.0))]
    Status(i32),
    #[error(transparent)]
    Host(#[from] HostError),
}

impl OpenError {
    /// The NTSTATUS, when the open failed with one.
    pub fn status(&self) -> Option<i32> {
        match self {
            OpenError::Status(s) => Some(*s),
            OpenError::Host(_) => None,
        }
    }
}

// ---------------------------------------------------------------- completion (processor threads)

/// IofCompleteRequest's I/O-manager half: records the completion of an IRP the host issued and checks it;
/// returns the IoStatus it completed with.
pub(crate) fn complete_request(inner: &Inner, irp: usize) -> Option<(i32, usize)> {
    let mut st = inner.state();
    let count = {
        let n = st.completed_irps.entry(irp).or_insert(0);
        *n += 1;
        *n
    };
    let Some(rec) = st.io.irps.get_mut(&irp) else {
        drop(st);
        if count > 1 {
            inner.violation(Rule::DoubleCompletion, format!("IRP {irp:#x} completed twice"));
        } else {
            inner.violation(
                Rule::BadParameter,
                format!("IofCompleteRequest({irp:#x}) on an IRP the I/O manager did not issue"),
            );
        }
        return None;
    };
    if rec.completion.is_some() || count > 1 {
        drop(st);
        inner.violation(Rule::DoubleCompletion, format!("IRP {irp:#x} completed twice"));
        return None;
    }
    let (s, info) = rec.irp.io_status();
    rec.irp.set_pending_returned(rec.irp.stack_control() & SL_PENDING_RETURNED != 0);
    let routine = rec.irp.cancel_routine();
    rec.completion = Some((s, info));
    drop(st);
    inner.irp_changed.notify_all();
    if routine != 0 {
        inner.violation(
            Rule::Irp,
            format!("IRP {irp:#x} completed with its cancel routine still set (bug check 0x48 CANCEL_STATE_IN_COMPLETED_IRP)"),
        );
    }
    if s == STATUS_PENDING {
        inner.violation(Rule::Irp, format!("IRP {irp:#x} completed with IoStatus.Status STATUS_PENDING"));
    }
    Some((s, info))
}

/// After the dispatch routine returned: the pending/completion contract.
fn after_dispatch(inner: &Inner, irp: usize, name: &str, returned: i32) {
    let mut st = inner.state();
    let Some(rec) = st.io.irps.get_mut(&irp) else { return };
    rec.returned = Some(returned);
    let marked = rec.irp.stack_control() & SL_PENDING_RETURNED != 0;
    let completion = rec.completion;
    drop(st);
    inner.irp_changed.notify_all();
    if returned == STATUS_PENDING {
        if !marked {
            inner.violation(
                Rule::Irp,
                format!("{name} returned STATUS_PENDING without IoMarkIrpPending on IRP {irp:#x}"),
            );
        }
        return;
    }
    match completion {
        None => inner.violation(
            Rule::Irp,
            format!(
                "{name} returned {} without completing IRP {irp:#x} (only STATUS_PENDING may leave it outstanding)",
                status(returned)
            ),
        ),
        Some((s, _)) if s != returned => inner.violation(
            Rule::Irp,
            format!(
                "{name} returned {} but completed IRP {irp:#x} with IoStatus.Status {}",
                status(returned),
                status(s)
            ),
        ),
        Some(_) => {}
    }
    if marked {
        inner.violation(Rule::Irp, format!("{name} marked IRP {irp:#x} pending but returned {}", status(returned)));
    }
}

fn major_name(major: u8) -> &'static str {
    match major {
        IRP_MJ_CREATE => "IRP_MJ_CREATE",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE",
        IRP_MJ_READ => "IRP_MJ_READ",
        IRP_MJ_WRITE => "IRP_MJ_WRITE",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP",
        _ => "IRP_MJ_?",
    }
}

// ---------------------------------------------------------------- building requests

/// The buffers and parameters of one request, before it has an IRP.
#[derive(Debug)]
struct Request {
    major: u8,
    flags: u32,
    requestor_mode: i8,
    params: StackParameters,
    system: Option<Buffer>,
    user_in: Option<Buffer>,
    user_out: Option<Buffer>,
    /// Which of the user buffers the MDL describes, and whether the device writes it.
    mdl_over: Option<(bool, bool)>,
    /// Which user buffer is `UserBuffer`: Some(true) = user_out, Some(false) = user_in.
    user_buffer: Option<bool>,
    security: Option<SecurityContextBlock>,
    output: Output,
    info_limit: usize,
    details: Vec<(&'static str, String)>,
}

impl Request {
    fn new(major: u8, params: StackParameters) -> Self {
        Request {
            major,
            flags: 0,
            requestor_mode: UserMode,
            params,
            system: None,
            user_in: None,
            user_out: None,
            mdl_over: None,
            user_buffer: None,
            security: None,
            output: Output::None,
            info_limit: 0,
            details: Vec::new(),
        }
    }
}

fn alloc(len: usize, init: &[u8], fill: u8) -> Result<Option<Buffer>, i32> {
    if len == 0 {
        return Ok(None);
    }
    Buffer::new(len, init, fill).map(Some).ok_or(STATUS_INSUFFICIENT_RESOURCES)
}

/// A read or write as NtReadFile/NtWriteFile build it for a device with `device_flags`.
fn read_write(major: u8, device_flags: u32, data: &[u8], len: usize) -> Result<Request, i32> {
    let length = u32::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let is_read = major == IRP_MJ_READ;
    let params = if is_read {
        StackParameters::Read { length, byte_offset: 0 }
    } else {
        StackParameters::Write { length, byte_offset: 0 }
    };
    let mut r = Request::new(major, params);
    r.flags = if is_read { IRP_READ_OPERATION } else { IRP_WRITE_OPERATION };
    r.info_limit = len;
    r.details.push(("Length", len.to_string()));
    // The caller's buffer: zero-filled for a read (a fresh user allocation), the data for a write.
    let user = alloc(len, data, 0)?;
    if device_flags & DO_BUFFERED_IO != 0 {
        r.system = alloc(len, data, UNINITIALIZED_FILL)?;
        if r.system.is_some() {
            r.flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | if is_read { IRP_INPUT_OPERATION } else { 0 };
        }
        if is_read {
            r.user_out = user;
            r.user_buffer = Some(true);
            r.output = Output::System(len);
        } else {
            r.user_in = user;
            r.user_buffer = Some(false);
        }
    } else if device_flags & DO_DIRECT_IO != 0 {
        if is_read {
            r.user_out = user;
            r.mdl_over = Some((true, true));
            r.output = Output::UserOut(len);
        } else {
            r.user_in = user;
            r.mdl_over = Some((false, false));
        }
    } else if is_read {
        r.user_out = user;
        r.user_buffer = Some(true);
        r.output = Output::UserOut(len);
    } else {
        r.user_in = user;
        r.user_buffer = Some(false);
    }
    Ok(r)
}

/// A device-control request as NtDeviceIoControlFile builds it for `code`'s transfer type.
fn device_control(code: u32, input: &[u8], output_len: usize) -> Result<Request, i32> {
    let input_length = u32::try_from(input.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let output_length = u32::try_from(output_len).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let ctl = CtlCode::decode(code);
    let mut r = Request::new(
        IRP_MJ_DEVICE_CONTROL,
        StackParameters::DeviceIoControl { output_length, input_length, code, type3_input: 0 },
    );
    r.info_limit = output_len;
    r.details = vec![
        ("IoControlCode", format!("{code:#x}")),
        ("InputBufferLength", input.len().to_string()),
        ("OutputBufferLength", output_len.to_string()),
    ];
    match ctl.transfer {
        TransferType::Buffered => {
            r.system = alloc(buffered_size(input.len(), output_len), input, UNINITIALIZED_FILL)?;
            if r.system.is_some() {
                r.flags |=
                    IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | if output_len > 0 { IRP_INPUT_OPERATION } else { 0 };
            }
            // The caller's output buffer is UserBuffer, where the I/O manager copies the result.
            r.user_out = alloc(output_len, &[], 0)?;
            r.user_buffer = r.user_out.as_ref().map(|_| true);
            r.output = Output::System(output_len);
        }
        TransferType::InDirect | TransferType::OutDirect => {
            r.system = alloc(input.len(), input, 0)?;
            if r.system.is_some() {
                r.flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
            }
            r.user_out = alloc(output_len, &[], 0)?;
            if r.user_out.is_some() {
                r.mdl_over = Some((true, ctl.transfer == TransferType::OutDirect));
            }
            r.output = Output::UserOut(output_len);
        }
        TransferType::Neither => {
            r.user_in = alloc(input.len(), input, 0)?;
            r.user_out = alloc(output_len, &[], 0)?;
            if let (Some(b), StackParameters::DeviceIoControl { type3_input, .. }) = (&r.user_in, &mut r.params) {
                *type3_input = b.addr();
            }
            r.user_buffer = r.user_out.as_ref().map(|_| true);
            r.output = Output::UserOut(output_len);
        }
    }
    Ok(r)
}

/// A request still in flight; [`PendingIo::wait`] finishes it, [`PendingIo::cancel`] cancels it.
#[derive(Debug)]
#[must_use = "a submitted request should be waited for"]
pub struct PendingIo<'h> {
    host: &'h Host,
    irp: usize,
    result: Option<IoResult>,
}

impl PendingIo<'_> {
    /// Waits up to `timeout` for the request to complete; `None` if it is still pending.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        if self.result.is_none() {
            self.result = self.host.wait_irp(self.irp, timeout)?;
        }
        Ok(self.result.clone())
    }

    /// Whether the driver completed the request (it may not be finished yet).
    pub fn is_completed(&self) -> bool {
        self.result.is_some() || self.host.inner.state().io.irps.get(&self.irp).is_none_or(|r| r.completion.is_some())
    }

    /// Cancels the request (IoCancelIrp); true if the driver's cancel routine ran.
    pub fn cancel(&self) -> Result<bool, HostError> {
        if self.result.is_some() {
            return Ok(false);
        }
        self.host.cancel_irp(self.irp)
    }

    /// The IRP's address (for matching the trace).
    pub fn irp(&self) -> usize {
        self.irp
    }
}

/// Where a submitted request stands.
enum Submitted {
    /// Refused before reaching the driver, or finished.
    Done(IoResult),
    InFlight(usize),
}

impl Host {
    /// Arms a [`UserFlip`] for the next request that carries a caller input buffer (replacing one still armed).
    pub fn arm_user_flip(&self, flip: UserFlip) {
        let f = &self.inner().user_flip;
        *f.slot() = FlipSlot { plan: Some(flip), ..FlipSlot::default() };
        f.armed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the armed flip wrote the caller's buffer (it does not if the driver made fewer calls, or the
    /// bytes did not fit the buffer).
    pub fn user_flip_fired(&self) -> bool {
        self.inner().user_flip.slot().fired
    }

    /// A new process of the emulated machine.
    pub fn new_process(&self) -> ProcessId {
        let mut st = self.inner.state();
        let io = &mut st.io;
        io.next_pid = io.next_pid.max(1) + 1;
        let pid = ProcessId(io.next_pid);
        io.processes.insert(pid);
        pid
    }

    /// Turns the double-fetch watch on or off: while each request is dispatched, its caller input buffer
    /// (WriteFile on a DO_DIRECT_IO device, direct and neither-I/O IOCTL input) is watched, and a byte the
    /// driver reads twice is a [`Rule::DoubleFetch`] finding naming both instructions. Slow (every access
    /// to the buffer traps twice): for tests.
    pub fn set_double_fetch_watch(&self, on: bool) {
        self.inner.double_fetch_watch.store(on, std::sync::atomic::Ordering::Release);
    }

    /// A new process of the emulated machine whose threads run with `token` (see [`crate::security`]).
    pub fn new_process_as(&self, token: crate::security::Token) -> ProcessId {
        let pid = self.new_process();
        self.inner.state().security.tokens.insert(pid.0, token);
        pid
    }

    /// Sets a registry value (`key` an NT name such as `\Registry\Machine\SYSTEM\...`; case does not
    /// matter), e.g. before DriverEntry reads it.
    pub fn set_registry_value(&self, key: &str, name: &str, kind: u32, data: &[u8]) {
        let mut st = self.inner.state();
        let values = st.security.registry.entry(key.to_ascii_lowercase()).or_default();
        values.insert(name.to_ascii_lowercase(), crate::security::RegValue { kind, data: data.to_vec() });
    }

    /// The DACL the driver set on its device named `name` (`\Device\RawLink`), if it set one.
    pub fn device_security(&self, name: &str) -> Option<crate::security::Descriptor> {
        let st = self.inner.state();
        let device = st.devices.iter().find(|d| d.name.as_deref() == Some(name))?.block.addr();
        st.security.devices.get(&device).cloned()
    }

    /// Opens `path` (`\\.\RawLink`, `\??\RawLink`, `\Device\RawLink` ...) for reading and writing in the
    /// initial process.
    pub fn open(&self, path: &str) -> Result<Handle, OpenError> {
        self.open_in(ProcessId::INITIAL, path, Access::READ_WRITE)
    }

    /// Opens `path` in process `pid` asking for `access`: IRP_MJ_CREATE on the device the name resolves to.
    pub fn open_in(&self, pid: ProcessId, path: &str, access: Access) -> Result<Handle, OpenError> {
        let (device, rest) = {
            let st = self.inner.state();
            let names: Vec<&str> = st.devices.iter().filter_map(|d| d.name.as_deref()).collect();
            let (dev_name, rest) = resolve_name(&st.links, &names, path).map_err(OpenError::Status)?;
            let Some(rec) = st.devices.iter().find(|d| d.name.as_deref() == Some(dev_name)) else {
                return Err(OpenError::Status(STATUS_OBJECT_NAME_NOT_FOUND));
            };
            let facts = device_facts(&rec.block);
            let device = rec.block.addr();
            if facts.flags & DO_EXCLUSIVE != 0 && st.io.files.values().any(|f| f.device == device) {
                return Err(OpenError::Status(STATUS_ACCESS_DENIED));
            }
            // The access check (SeAccessCheck against the device's descriptor): for the device itself, and
            // with FILE_DEVICE_SECURE_OPEN for every name below it; other names below it are the driver's
            // to check.
            const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
            let checked = rest.is_empty() || facts.characteristics & FILE_DEVICE_SECURE_OPEN != 0;
            if let Some(d) = st.security.devices.get(&device).filter(|_| checked) {
                let asked = if access.grants(Access::READ) { 0x0012_0089 } else { 0 }
                    | if access.grants(Access::WRITE) { 0x0012_0116 } else { 0 };
                if !d.grants(&st.security.token(pid.0), asked) {
                    return Err(OpenError::Status(STATUS_ACCESS_DENIED));
                }
            }
            (device, rest)
        };
        let fo = FileObjectBlock::build(device, &rest, access.grants(Access::READ), access.grants(Access::WRITE), 0)
            .ok_or(OpenError::Status(STATUS_INSUFFICIENT_RESOURCES))?;
        // FILE_OPEN disposition, FILE_NON_DIRECTORY_FILE; CreateFile's FILE_ATTRIBUTE_NORMAL and full sharing.
        // GENERIC_READ/GENERIC_WRITE arrive mapped to FILE_GENERIC_READ (0x120089) / FILE_GENERIC_WRITE (0x120116).
        const FILE_OPEN: u32 = 1;
        const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
        let options = (FILE_OPEN << 24) | FILE_NON_DIRECTORY_FILE;
        let desired = if access.grants(Access::READ) { 0x0012_0089 } else { 0 }
            | if access.grants(Access::WRITE) { 0x0012_0116 } else { 0 };
        let security =
            SecurityContextBlock::build(desired, options).ok_or(OpenError::Status(STATUS_INSUFFICIENT_RESOURCES))?;
        let file_id = {
            let mut st = self.inner.state();
            st.io.processes.insert(pid);
            st.io.next_file += 1;
            let id = st.io.next_file;
            st.io.files.insert(
                id,
                FileRec { fo, device, access, handles: 0, pending: 0, cleanup_sent: false, close_sent: false },
            );
            id
        };
        let mut req = Request::new(
            IRP_MJ_CREATE,
            StackParameters::Create {
                security_context: security.addr(),
                options,
                file_attributes: 0x80,
                share_access: 3,
            },
        );
        req.flags = IRP_CREATE_OPERATION | IRP_SYNCHRONOUS_API;
        req.security = Some(security);
        req.details = vec![("FileName", rest.clone()), ("DesiredAccess", format!("{desired:#x}"))];
        let result = self.submit(pid, file_id, req).and_then(|s| self.finish(s));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                self.inner.state().io.files.remove(&file_id);
                return Err(e.into());
            }
        };
        let mut st = self.inner.state();
        if nt_error(result.status) || result.status == STATUS_PENDING {
            // A failed create: the file object goes away without cleanup or close.
            st.io.files.remove(&file_id);
            return Err(OpenError::Status(result.status));
        }
        let Some(f) = st.io.files.get_mut(&file_id) else { return Err(OpenError::Status(STATUS_INVALID_HANDLE)) };
        f.handles += 1;
        f.fo.add_flags(FO_HANDLE_CREATED);
        st.io.next_handle = st.io.next_handle.max(0x40) + 4;
        let handle = Handle { pid, value: st.io.next_handle };
        st.io.handles.insert(handle, file_id);
        Ok(handle)
    }

    /// Closes a handle: IRP_MJ_CLEANUP when it was the file object's last handle, then IRP_MJ_CLOSE once no
    /// request of the file is outstanding. Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
    pub fn close(&self, handle: Handle) -> Result<i32, HostError> {
        let (file_id, last) = {
            let mut st = self.inner.state();
            let Some(file_id) = st.io.handles.remove(&handle) else { return Ok(STATUS_INVALID_HANDLE) };
            let Some(f) = st.io.files.get_mut(&file_id) else { return Ok(STATUS_INVALID_HANDLE) };
            f.handles = f.handles.saturating_sub(1);
            (file_id, f.handles == 0)
        };
        if last {
            // A file object whose CLEANUP `cleanup_only` sent already gets only its CLOSE.
            if !self.inner.state().io.files.get(&file_id).is_some_and(|f| f.cleanup_sent) {
                self.send_cleanup(handle.pid, file_id)?;
            }
            self.close_if_unreferenced(handle.pid, file_id)?;
        }
        Ok(STATUS_SUCCESS)
    }

    /// The race at the I/O manager's edge, made deterministic: IRP_MJ_CLEANUP of `handle`'s file object is
    /// sent now, but the handle stays usable, so later requests on it stand for requests that were already
    /// in flight when the last handle closed and reach the driver after CLEANUP. [`Host::close`] then sends
    /// only IRP_MJ_CLOSE. Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
    pub fn cleanup_only(&self, handle: Handle) -> Result<i32, HostError> {
        let file_id = {
            let st = self.inner.state();
            let Some(&file_id) = st.io.handles.get(&handle) else { return Ok(STATUS_INVALID_HANDLE) };
            match st.io.files.get(&file_id) {
                Some(f) if !f.cleanup_sent => file_id,
                _ => return Ok(STATUS_INVALID_HANDLE),
            }
        };
        self.send_cleanup(handle.pid, file_id)?;
        Ok(STATUS_SUCCESS)
    }

    /// IRP_MJ_CLEANUP of `file_id`, waiting for it; the file object is then marked FO_CLEANUP_COMPLETE.
    fn send_cleanup(&self, pid: ProcessId, file_id: u64) -> Result<(), HostError> {
        let mut req = Request::new(IRP_MJ_CLEANUP, StackParameters::None);
        req.flags = IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API;
        req.requestor_mode = KernelMode;
        if let Some(f) = self.inner.state().io.files.get_mut(&file_id) {
            f.cleanup_sent = true;
        }
        let s = self.submit(pid, file_id, req)?;
        self.finish(s)?;
        if let Some(f) = self.inner.state().io.files.get(&file_id) {
            f.fo.add_flags(FO_CLEANUP_COMPLETE);
        }
        Ok(())
    }

    /// Sends IRP_MJ_CLOSE when the file object has no handles and no outstanding requests.
    fn close_if_unreferenced(&self, pid: ProcessId, file_id: u64) -> Result<(), HostError> {
        {
            let mut st = self.inner.state();
            let Some(f) = st.io.files.get_mut(&file_id) else { return Ok(()) };
            if f.handles != 0 || f.pending != 0 || !f.cleanup_sent || f.close_sent {
                return Ok(());
            }
            f.close_sent = true;
        }
        let mut req = Request::new(IRP_MJ_CLOSE, StackParameters::None);
        req.flags = IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API;
        req.requestor_mode = KernelMode;
        let s = self.submit(pid, file_id, req)?;
        self.finish(s)?;
        self.inner.state().io.files.remove(&file_id);
        Ok(())
    }

    /// DuplicateHandle: a second handle to the same file object, in process `target`. CLEANUP is sent only
    /// when the file object's last handle is closed.
    pub fn duplicate_handle(&self, handle: Handle, target: ProcessId) -> Option<Handle> {
        let mut st = self.inner.state();
        let file_id = *st.io.handles.get(&handle)?;
        st.io.files.get_mut(&file_id)?.handles += 1;
        st.io.processes.insert(target);
        st.io.next_handle = st.io.next_handle.max(0x40) + 4;
        let dup = Handle { pid: target, value: st.io.next_handle };
        st.io.handles.insert(dup, file_id);
        Some(dup)
    }

    /// The handles that are open, by process.
    pub fn open_handles(&self) -> Vec<Handle> {
        self.inner.state().io.handles.keys().copied().collect()
    }

    /// The FileName the driver's FILE_OBJECT of `handle` carries.
    pub fn file_name(&self, handle: Handle) -> Option<String> {
        let st = self.inner.state();
        let id = st.io.handles.get(&handle)?;
        st.io.files.get(id).map(|f| f.fo.file_name())
    }

    /// ReadFile of `len` bytes, waiting for completion.
    pub fn read(&self, handle: Handle, len: usize) -> Result<IoResult, HostError> {
        let s = self.submit_handle(handle, Access::READ, |flags| read_write(IRP_MJ_READ, flags, &[], len))?;
        self.finish(s)
    }

    /// WriteFile of `bytes`, waiting for completion.
    pub fn write(&self, handle: Handle, bytes: &[u8]) -> Result<IoResult, HostError> {
        let s =
            self.submit_handle(handle, Access::WRITE, |flags| read_write(IRP_MJ_WRITE, flags, bytes, bytes.len()))?;
        self.finish(s)
    }

    /// DeviceIoControl, waiting for completion.
    pub fn device_io_control(
        &self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<IoResult, HostError> {
        let need = CtlCode::decode(code).required_access;
        let s = self.submit_handle(handle, need, |_| device_control(code, input, output_len))?;
        self.finish(s)
    }

    /// An overlapped ReadFile.
    pub fn submit_read(&self, handle: Handle, len: usize) -> Result<PendingIo<'_>, HostError> {
        let s = self.submit_handle(handle, Access::READ, |flags| read_write(IRP_MJ_READ, flags, &[], len))?;
        Ok(self.pending(s))
    }

    /// Waits for a request submitted earlier whose [`PendingIo`] was dropped (by its `irp()` number), e.g.
    /// because the test needed `&mut Host` meanwhile. `None` if it did not complete within `timeout`.
    pub fn wait_request(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        self.wait_irp(irp, timeout)
    }

    /// An overlapped WriteFile.
    pub fn submit_write(&self, handle: Handle, bytes: &[u8]) -> Result<PendingIo<'_>, HostError> {
        let s =
            self.submit_handle(handle, Access::WRITE, |flags| read_write(IRP_MJ_WRITE, flags, bytes, bytes.len()))?;
        Ok(self.pending(s))
    }

    /// An overlapped DeviceIoControl.
    pub fn submit_ioctl(
        &self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<PendingIo<'_>, HostError> {
        let need = CtlCode::decode(code).required_access;
        let s = self.submit_handle(handle, need, |_| device_control(code, input, output_len))?;
        Ok(self.pending(s))
    }

    fn pending(&self, s: Submitted) -> PendingIo<'_> {
        match s {
            Submitted::Done(r) => PendingIo { host: self, irp: 0, result: Some(r) },
            Submitted::InFlight(irp) => PendingIo { host: self, irp, result: None },
        }
    }

    /// Waits for a submitted request for the machine's call timeout.
    fn finish(&self, s: Submitted) -> Result<IoResult, HostError> {
        match s {
            Submitted::Done(r) => Ok(r),
            Submitted::InFlight(irp) => {
                let timeout = self.inner.config.call_timeout;
                self.wait_irp(irp, timeout)?
                    .ok_or_else(|| HostError::Hang { call: format!("completion of IRP {irp:#x}"), timeout })
            }
        }
    }

    /// Checks the handle and its access, then builds and dispatches the request `build` makes for the
    /// device's flags.
    fn submit_handle(
        &self,
        handle: Handle,
        need: Access,
        build: impl FnOnce(u32) -> Result<Request, i32>,
    ) -> Result<Submitted, HostError> {
        let (file_id, flags) = {
            let st = self.inner.state();
            let Some(&file_id) = st.io.handles.get(&handle) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            let Some(f) = st.io.files.get(&file_id) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            if !f.access.grants(need) {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_ACCESS_DENIED)));
            }
            let Some(dev) = st.devices.iter().find(|d| d.block.addr() == f.device) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_NO_SUCH_DEVICE)));
            };
            (file_id, device_facts(&dev.block).flags)
        };
        match build(flags) {
            Ok(req) => self.submit(handle.pid, file_id, req),
            Err(s) => Ok(Submitted::Done(IoResult::status_only(s))),
        }
    }

    /// Builds the IRP of `req` on `file_id` and calls the device's dispatch routine.
    fn submit(&self, pid: ProcessId, file_id: u64, req: Request) -> Result<Submitted, HostError> {
        let Request {
            major,
            flags,
            requestor_mode,
            params,
            system,
            user_in,
            user_out,
            mdl_over,
            user_buffer,
            security,
            output,
            info_limit,
            details,
        } = req;
        let user_in = user_in.map(Arc::new);
        if let Some(b) = &user_in {
            self.inner.user_flip.target(b);
        }
        let watched = user_in
            .as_ref()
            .filter(|_| self.inner.double_fetch_watch.load(std::sync::atomic::Ordering::Acquire))
            .map(|b| (b.addr(), b.len()));
        let built = {
            let mut st = self.inner.state();
            let Some(f) = st.io.files.get(&file_id) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            let (device, fo) = (f.device, f.fo.addr());
            let Some(dev) = st.devices.iter().find(|d| d.block.addr() == device) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_NO_SUCH_DEVICE)));
            };
            let facts = device_facts(&dev.block);
            let mdl = match mdl_over {
                None => None,
                Some((over_out, device_writes)) => {
                    let b = if over_out { user_out.as_ref() } else { user_in.as_deref() };
                    match b {
                        None => None,
                        Some(b) => {
                            let mdl_flags = MDL_PAGES_LOCKED | if device_writes { MDL_WRITE_OPERATION } else { 0 };
                            // Buffer lengths were checked to fit a ULONG when the request was built.
                            let m = u32::try_from(b.len())
                                .ok()
                                .and_then(|len| MdlBlock::build(b.addr(), len, mdl_flags, true));
                            match m {
                                Some(m) => Some(m),
                                None => {
                                    return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)))
                                }
                            }
                        }
                    }
                }
            };
            let ub = match user_buffer {
                Some(true) => user_out.as_ref().map_or(0, Buffer::addr),
                Some(false) => user_in.as_deref().map_or(0, Buffer::addr),
                None => 0,
            };
            let Some(iosb) = IosbBlock::new() else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)));
            };
            let spec = IrpSpec {
                major,
                flags,
                requestor_mode,
                stack_size: facts.stack_size,
                device,
                file: fo,
                system_buffer: system.as_ref().map_or(0, Buffer::addr),
                user_buffer: ub,
                mdl: mdl.as_ref().map_or(0, MdlBlock::addr),
                user_iosb: iosb.addr(),
                params,
            };
            let Some(irp) = IrpBlock::build(&spec) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)));
            };
            let irp = Arc::new(irp);
            let addr = irp.addr();
            st.completed_irps.remove(&addr);
            if let Some(f) = st.io.files.get_mut(&file_id) {
                f.pending += 1;
            }
            st.io.irps.insert(
                addr,
                IrpRec {
                    irp: Arc::clone(&irp),
                    major,
                    pid,
                    file: file_id,
                    device,
                    system,
                    user_in,
                    user_out,
                    _lent: (mdl, security),
                    iosb,
                    output,
                    info_limit,
                    completion: None,
                    returned: None,
                    cancelling: false,
                },
            );
            (irp, device)
        };
        let (irp, device) = built;
        let addr = irp.addr();
        let f = major_function(&self.inner.driver_object, major);
        let name = major_name(major);
        if f == 0 {
            // IopInvalidDeviceRequest: the I/O manager completes what the driver has no routine for.
            let mut st = self.inner.state();
            if let Some(r) = st.io.irps.get_mut(&addr) {
                r.completion = Some((STATUS_INVALID_DEVICE_REQUEST, 0));
                r.returned = Some(STATUS_INVALID_DEVICE_REQUEST);
            }
            return Ok(Submitted::InFlight(addr));
        }
        let label = name.to_owned();
        // The dispatch routine runs in the caller's thread, as on Windows: requests of different callers
        // reach the driver concurrently, and one that blocks in its dispatch routine holds up no other.
        self.run_in_caller_thread(0, name, move |inner| {
            crate::security::as_caller(pid.0, || {
                let watch = watched.and_then(|(start, len)| crate::native::watch::arm(start, len));
                let status = crate::native::irp::call_dispatch(inner, &label, f, device, &irp, details);
                if let Some(found) = watch.and_then(crate::native::watch::Armed::finish) {
                    inner.violation(
                        Rule::DoubleFetch,
                        format!(
                            "{label}: the caller's input byte at offset {} was read twice while the request was dispatched, first at {}, then at {} (the caller can change it in between)",
                            found.offset,
                            inner.symbolize(found.first_rip).unwrap_or_else(|| format!("{:#x}", found.first_rip)),
                            inner.symbolize(found.second_rip).unwrap_or_else(|| format!("{:#x}", found.second_rip)),
                        ),
                    );
                }
                after_dispatch(inner, irp.addr(), &label, status);
            });
        })?;
        Ok(Submitted::InFlight(addr))
    }

    /// Waits until the IRP is finished (completed, dispatch returned, no cancel running), then finishes it.
    fn wait_irp(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        let start = Instant::now();
        loop {
            {
                let st = self.inner.state();
                let Some(r) = st.io.irps.get(&irp) else {
                    return Err(HostError::State(format!("IRP {irp:#x} is not outstanding")));
                };
                let abandoned = r.completion.is_none() && r.returned.is_some_and(|s| s != STATUS_PENDING);
                if abandoned {
                    // The dispatch routine broke the contract (a violation is recorded): report what it
                    // returned and leave the IRP to the unload check.
                    return Ok(Some(IoResult::status_only(r.returned.unwrap_or(STATUS_PENDING))));
                }
                if r.completion.is_some() && r.returned.is_some() && !r.cancelling {
                    break;
                }
                // Woken by a completion, a dispatch return, a cancel's end or a bug check (`irp_changed`,
                // notified under this lock, so nothing is missed); every 5 ms at the latest, to look at the
                // clock and the bug check anyway.
                let left = timeout.saturating_sub(start.elapsed()).min(Duration::from_millis(5));
                if !left.is_zero() {
                    drop(self.inner.irp_changed.wait_timeout(st, left));
                }
            }
            if let Some(b) = self.bugcheck() {
                return Err(HostError::Bugcheck(b));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
        }
        let (rec, file) = {
            let mut st = self.inner.state();
            let Some(rec) = st.io.irps.remove(&irp) else {
                return Err(HostError::State(format!("IRP {irp:#x} vanished")));
            };
            if let Some(f) = st.io.files.get_mut(&rec.file) {
                f.pending = f.pending.saturating_sub(1);
            }
            let file = (rec.pid, rec.file);
            (rec, file)
        };
        let result = self.finish_irp(&rec);
        drop(rec);
        self.close_if_unreferenced(file.0, file.1)?;
        Ok(Some(result))
    }

    /// The I/O manager's completion work: checks, the copy back to the caller, the caller's IOSB.
    fn finish_irp(&self, rec: &IrpRec) -> IoResult {
        let (status, information) = rec.completion.unwrap_or((STATUS_PENDING, 0));
        let name = major_name(rec.major);
        let transfers = !matches!(rec.output, Output::None) || rec.major == IRP_MJ_WRITE;
        if transfers && information > rec.info_limit {
            self.inner.violation(
                Rule::Irp,
                format!(
                    "{name} IRP {:#x} completed with Information {information} beyond the caller's {} bytes",
                    rec.irp.addr(),
                    rec.info_limit
                ),
            );
        }
        let n = information.min(rec.info_limit);
        let output = if nt_error(status) {
            Vec::new()
        } else {
            match rec.output {
                Output::None => Vec::new(),
                Output::System(_) => rec.system.as_ref().map(|b| b.bytes(n)).unwrap_or_default(),
                Output::UserOut(_) => rec.user_out.as_ref().map(|b| b.bytes(n)).unwrap_or_default(),
            }
        };
        rec.iosb.set(status, information);
        IoResult { status, information, output }
    }

    /// IoCancelIrp on an outstanding request, on a processor at PASSIVE_LEVEL.
    fn cancel_irp(&self, irp: usize) -> Result<bool, HostError> {
        let (block, device) = {
            let mut st = self.inner.state();
            let Some(r) = st.io.irps.get_mut(&irp) else { return Ok(false) };
            if r.completion.is_some() {
                return Ok(false);
            }
            r.cancelling = true;
            (Arc::clone(&r.irp), r.device)
        };
        let ran = self
            .run_in_caller_thread(1, "IoCancelIrp", move |inner| crate::native::irp::cancel_irp(inner, &block, device));
        if let Some(r) = self.inner.state().io.irps.get_mut(&irp) {
            r.cancelling = false;
        }
        self.inner.irp_changed.notify_all();
        ran
    }

    /// Process exit: cancels the process's outstanding requests, waits for them, then closes every handle
    /// it still has (cleanup, then close), as Windows does.
    pub fn exit_process(&self, pid: ProcessId) -> Result<(), HostError> {
        let irps: Vec<usize> = {
            let st = self.inner.state();
            st.io.irps.iter().filter(|(_, r)| r.pid == pid && r.completion.is_none()).map(|(a, _)| *a).collect()
        };
        for irp in &irps {
            self.cancel_irp(*irp)?;
        }
        for irp in irps {
            let timeout = self.inner.config.call_timeout;
            if self.wait_irp(irp, timeout)?.is_none() {
                self.inner.violation(
                    Rule::Irp,
                    format!(
                        "IRP {irp:#x} of exiting process {} was not completed within {timeout:?} after IoCancelIrp",
                        pid.0
                    ),
                );
            }
        }
        let handles: Vec<Handle> = self.inner.state().io.handles.keys().filter(|h| h.pid == pid).copied().collect();
        for h in handles {
            self.close(h)?;
        }
        self.inner.state().io.processes.remove(&pid);
        Ok(())
    }

    /// Before DriverUnload: Windows does not unload a driver whose device has open files; the host records
    /// that as a violation and closes them (every process exits) so the unload can be checked.
    pub(crate) fn close_all_before_unload(&self) -> Result<(), HostError> {
        let (files, pids) = {
            let st = self.inner.state();
            let pids: BTreeSet<ProcessId> = st.io.handles.keys().map(|h| h.pid).collect();
            (st.io.files.len(), pids)
        };
        if files == 0 {
            return Ok(());
        }
        self.inner.violation(
            Rule::Irp,
            format!("unload requested while {files} file object(s) are open on the driver's device; Windows refuses to unload then (the host closed them first)"),
        );
        for pid in pids {
            self.exit_process(pid)?;
        }
        Ok(())
    }

    /// After DriverUnload: requests still outstanding and MDLs the driver did not free.
    pub(crate) fn check_io_released(&self, when: &str) {
        let st = self.inner.state();
        let irps: Vec<String> =
            st.io.irps.values().map(|r| format!("{} {:#x}", major_name(r.major), r.irp.addr())).collect();
        let mdls = st.io.driver_mdls.len();
        drop(st);
        if !irps.is_empty() {
            self.inner
                .violation(Rule::Irp, format!("{when}: {} IRP(s) never completed: {}", irps.len(), irps.join(", ")));
        }
        if mdls != 0 {
            self.inner.violation(Rule::PoolLeak, format!("{when}: {mdls} MDL(s) from IoAllocateMdl not freed"));
        }
    }
}

/// Test support: dispatch routines that behave like good and bad drivers (see [`Host::install_fake_dispatch`]).
pub use crate::native::irp::fake_driver::Behaviour as FakeDispatch;

impl Host {
    /// Test support: replaces the driver's `MajorFunction[major]` with a host routine that behaves as `b`,
    /// to exercise pending, cancellation, buffer copy-back and the verifier's IRP rules.
    #[doc(hidden)]
    pub fn install_fake_dispatch(&self, major: u8, b: FakeDispatch) {
        crate::native::irp::set_major_function(
            &self.inner.driver_object,
            major,
            crate::native::irp::fake_driver::routine(b),
        );
    }

    /// Test support: completes every request a [`FakeDispatch::PendCancelable`] or
    /// [`FakeDispatch::PendUnmarked`] routine queued, with `status`; returns how many.
    #[doc(hidden)]
    pub fn complete_fake_queue(&self, status: i32) -> Result<usize, HostError> {
        let devices: Vec<usize> = self.inner.state().devices.iter().map(|d| d.block.addr()).collect();
        self.run(0, "fake driver queue drain", move |_inner| {
            devices.into_iter().map(|d| crate::native::irp::fake_driver::complete_queued(d, status)).sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_codes_decode_as_the_ctl_code_macro_encodes() {
        // CTL_CODE(FILE_DEVICE_NETWORK 0x12, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS)
        let code = ctl_code(0x12, 0x800, 0, 3);
        assert_eq!(code, 0x0012_E000);
        let c = CtlCode::decode(code);
        assert_eq!(
            c,
            CtlCode {
                device_type: 0x12,
                required_access: Access::READ_WRITE,
                function: 0x800,
                transfer: TransferType::Buffered
            }
        );
        assert_eq!(CtlCode::decode(ctl_code(0x22, 1, 1, 0)).transfer, TransferType::InDirect);
        assert_eq!(CtlCode::decode(ctl_code(0x22, 1, 2, 1)).transfer, TransferType::OutDirect);
        let n = CtlCode::decode(ctl_code(0x22, 0xFFF, 3, 2));
        assert_eq!((n.transfer, n.required_access, n.function), (TransferType::Neither, Access::WRITE, 0xFFF));
        assert!(Access::READ_WRITE.grants(Access::WRITE));
        assert!(!Access::READ.grants(Access::WRITE));
        assert!(Access::READ.grants(Access::NONE));
    }

    #[test]
    fn buffered_requests_size_one_buffer_for_both_directions() {
        assert_eq!(buffered_size(10, 100), 100);
        assert_eq!(buffered_size(100, 10), 100);
        assert_eq!(buffered_size(0, 0), 0);
        let r = device_control(ctl_code(0x12, 1, 0, 0), &[1, 2, 3], 8).expect("request");
        let sys = r.system.as_ref().expect("system buffer");
        assert_eq!(sys.len(), 8);
        assert_eq!(
            sys.bytes(8),
            [
                1,
                2,
                3,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL
            ]
        );
        assert_eq!(r.flags, IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | IRP_INPUT_OPERATION);
        assert_eq!(r.output, Output::System(8));
        let none = device_control(ctl_code(0x12, 1, 0, 0), &[], 0).expect("request");
        assert!(none.system.is_none() && none.flags == 0);
        let direct = device_control(ctl_code(0x12, 1, 2, 0), &[9; 4], 16).expect("request");
        assert_eq!(direct.system.as_ref().map(Buffer::len), Some(4));
        assert_eq!(direct.mdl_over, Some((true, true)));
        let neither = device_control(ctl_code(0x12, 1, 3, 0), &[9; 4], 16).expect("request");
        assert!(neither.system.is_none());
        match neither.params {
            StackParameters::DeviceIoControl { type3_input, .. } => {
                assert_eq!(Some(type3_input), neither.user_in.as_ref().map(Buffer::addr))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_and_writes_follow_the_device_flags() {
        let r = read_write(IRP_MJ_READ, DO_DIRECT_IO, &[], 100).expect("read");
        assert_eq!(r.mdl_over, Some((true, true)));
        assert!(r.system.is_none());
        let w = read_write(IRP_MJ_WRITE, DO_BUFFERED_IO, b"abc", 3).expect("write");
        assert_eq!(w.system.as_ref().map(|b| b.bytes(3)), Some(b"abc".to_vec()));
        assert_eq!(w.flags, IRP_WRITE_OPERATION | IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER);
        let n = read_write(IRP_MJ_READ, 0, &[], 5).expect("read");
        assert_eq!((n.user_buffer, n.mdl_over), (Some(true), None));
        let empty = read_write(IRP_MJ_READ, DO_DIRECT_IO, &[], 0).expect("read");
        assert!(empty.user_out.is_none(), "no MDL for a zero-length transfer");
    }

    #[test]
    fn names_resolve_through_the_dos_devices_namespace() {
        let mut links = BTreeMap::new();
        links.insert("\\DosDevices\\Global\\RawLink".to_owned(), "\\Device\\RawLink".to_owned());
        let devices = ["\\Device\\RawLink"];
        for p in [
            "\\\\.\\RawLink",
            "\\??\\RawLink",
            "\\DosDevices\\rawlink",
            "\\GLOBAL??\\RawLink",
            "\\DosDevices\\Global\\RawLink",
            "\\Device\\RawLink",
        ] {
            assert_eq!(resolve_name(&links, &devices, p), Ok(("\\Device\\RawLink", String::new())), "{p}");
        }
        assert_eq!(resolve_name(&links, &devices, "\\\\.\\RawLink\\x"), Ok(("\\Device\\RawLink", "\\x".to_owned())));
        assert_eq!(resolve_name(&links, &devices, "\\\\.\\Nope"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(resolve_name(&links, &devices, "\\Device\\RawLinkX"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(resolve_name(&links, &devices, "\\Device\\Other"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        let mut other = BTreeMap::new();
        other.insert("\\??\\RL".to_owned(), "\\Device\\RawLink".to_owned());
        assert_eq!(
            resolve_name(&other, &devices, "\\DosDevices\\Global\\rl"),
            Ok(("\\Device\\RawLink", String::new()))
        );
    }

    #[test]
    fn severity() {
        assert!(nt_error(STATUS_ACCESS_DENIED));
        assert!(!nt_error(STATUS_SUCCESS));
        assert!(!nt_error(STATUS_PENDING));
        assert!(!nt_error(0x8000_0005u32 as i32));
    }
}
