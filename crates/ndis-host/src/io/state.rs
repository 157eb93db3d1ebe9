//! The I/O manager's state and pure rules: NTSTATUS values, CTL_CODE, device names, processes, handles,
//! files and IRPs in flight, the hostile caller's armed write ([`UserFlip`]), request results.

use crate::native::irp::{Buffer, FileObjectBlock, IosbBlock, IrpBlock, MdlBlock, SecurityContextBlock};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
pub(crate) const DOS_PREFIXES: &[&str] =
    &["\\DosDevices\\Global\\", "\\DosDevices\\", "\\GLOBAL??\\", "\\??\\", "\\\\.\\", "\\\\?\\"];

pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| s.get(prefix.len()..)).flatten()
}

/// The name inside `\??` that `link` spells, if it is a DOS-devices name.
pub(crate) fn dos_name(link: &str) -> Option<&str> {
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
    /// The process [`Host::open`](crate::host::Host::open) opens handles in.
    pub const INITIAL: ProcessId = ProcessId(1);
}

/// A handle to an open file object of the driver's device, in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle {
    pub pid: ProcessId,
    pub value: u64,
}

#[derive(Debug)]
pub(crate) struct FileRec {
    pub(crate) fo: FileObjectBlock,
    pub(crate) device: usize,
    pub(crate) access: Access,
    pub(crate) handles: u32,
    /// IRPs of this file not yet finished (each holds a reference, as on Windows).
    pub(crate) pending: u32,
    pub(crate) cleanup_sent: bool,
    pub(crate) close_sent: bool,
}

/// Where a finished request's output comes from, and how many bytes the caller offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    None,
    System(usize),
    UserOut(usize),
}

#[derive(Debug)]
pub(crate) struct IrpRec {
    pub(crate) irp: Arc<IrpBlock>,
    pub(crate) major: u8,
    pub(crate) pid: ProcessId,
    pub(crate) file: u64,
    pub(crate) device: usize,
    pub(crate) system: Option<Buffer>,
    /// Shared with a armed [`UserFlip`], which may write it while the driver runs.
    pub(crate) user_in: Option<Arc<Buffer>>,
    pub(crate) user_out: Option<Buffer>,
    /// Caller memory that stays shared with the driver (a mapped ring), described by the IRP's MDL.
    pub(crate) shared: Option<Arc<crate::native::user_memory::UserMemory>>,
    /// Blocks the IRP points at that only need to live until it is finished (MDL, security context).
    pub(crate) _lent: (Option<MdlBlock>, Option<SecurityContextBlock>),
    pub(crate) iosb: IosbBlock,
    pub(crate) output: Output,
    /// The length Information may not exceed (the caller's transfer length).
    pub(crate) info_limit: usize,
    /// (IoStatus.Status, IoStatus.Information) at IofCompleteRequest.
    pub(crate) completion: Option<(i32, usize)>,
    /// What the dispatch routine returned.
    pub(crate) returned: Option<i32>,
    /// A cancel is running on a processor; the request is not finished until it returns.
    pub(crate) cancelling: bool,
}

/// The I/O manager's books, inside the machine's [`State`](crate::machine::State).
#[derive(Debug, Default)]
pub(crate) struct IoState {
    pub(crate) files: BTreeMap<u64, FileRec>,
    pub(crate) handles: BTreeMap<Handle, u64>,
    pub(crate) irps: crate::ndis::state::AddrMap<IrpRec>,
    /// MDLs the driver allocated with IoAllocateMdl.
    pub driver_mdls: crate::ndis::state::AddrMap<MdlBlock>,
    /// Caller buffers the I/O manager probed and locked (MmProbeAndLockPages) for direct-I/O requests.
    pub pages_locked: u64,
    pub(crate) processes: BTreeSet<ProcessId>,
    pub(crate) next_file: u64,
    pub(crate) next_handle: u64,
    pub(crate) next_pid: u32,
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
    pub(crate) armed: std::sync::atomic::AtomicBool,
    pub(crate) slot: std::sync::Mutex<FlipSlot>,
}

#[derive(Debug, Default)]
pub(crate) struct FlipSlot {
    pub(crate) plan: Option<UserFlip>,
    pub(crate) target: Option<Arc<Buffer>>,
    pub(crate) calls: u32,
    pub(crate) fired: bool,
}

impl FlipState {
    pub(crate) fn slot(&self) -> std::sync::MutexGuard<'_, FlipSlot> {
        self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request with a caller input buffer is being dispatched: the armed flip (if any, not yet aimed) aims at it.
    pub(crate) fn target(&self, b: &Arc<Buffer>) {
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
                .map(|b| (b.addr(), b.len()))
                .chain(r.shared.as_deref().map(|m| (m.addr(), m.len())))
                .any(|(a, l)| start >= a && end <= a + l)
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
    pub(crate) fn status_only(status: i32) -> Self {
        IoResult { status, information: 0, output: Vec::new() }
    }
}

/// What a fake dispatch routine does (`native::fake_driver`; test support, see `Host::install_fake_dispatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// IoMarkIrpPending, IoSetCancelRoutine, queue, return STATUS_PENDING; the cancel routine completes
    /// with STATUS_CANCELLED; `fake_driver::complete_queued` completes the rest.
    PendCancelable,
    /// Return STATUS_PENDING without IoMarkIrpPending (and keep the IRP queued).
    PendUnmarked,
    /// Return STATUS_SUCCESS without completing.
    ReturnWithoutCompleting,
    /// Complete with STATUS_SUCCESS, return STATUS_UNSUCCESSFUL.
    StatusMismatch,
    /// Complete twice.
    CompleteTwice,
    /// Fill the output (system buffer, MDL through MmGetSystemAddressForMdlSafe, or UserBuffer) with
    /// 0x5A and complete with Information = the output length (+1 with `overrun`).
    FillOutput { overrun: bool },
    /// ExAllocatePoolWithTag, IoAllocateMdl over it, MmBuildMdlForNonPagedPool, check the mapping,
    /// then IoFreeMdl (unless `leak`) and ExFreePoolWithTag; complete with STATUS_SUCCESS when the MDL
    /// described the pool block, STATUS_UNSUCCESSFUL otherwise.
    MdlRoundTrip { leak: bool },
    /// Queue the IRP in a cancel-safe queue (IoCsqInitialize once per device, IoCsqInsertIrp) and return
    /// STATUS_PENDING; `fake_driver::complete_queued` drains it with IoCsqRemoveNextIrp.
    CsqPend,
}
