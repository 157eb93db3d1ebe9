//! The I/O manager's blocks in host memory: IRPs with their stack locations, file objects, MDLs and the
//! buffers they describe, built and read back through the ndis-sys types.
//!
//! Each block is a [`HostBlock`] owned by a value here, so every accessor is safe: the memory is live and
//! large enough for as long as the owner exists. The driver may write these blocks at any time (it owns an
//! IRP between dispatch and completion), so values are only ever copied in and out, never referenced.

use super::memory::{read_bytes, read_obj, write_obj, HostBlock};
use ndis_sys::*;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `IO_TYPE_IRP`.
pub const IO_TYPE_IRP: i16 = 6;
/// `IO_TYPE_FILE`.
pub const IO_TYPE_FILE: i16 = 5;
/// `PAGE_SIZE` on x64.
pub const PAGE: usize = 4096;

/// What one stack location carries besides its major function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackParameters {
    /// IRP_MJ_CLEANUP, IRP_MJ_CLOSE: no parameters.
    None,
    /// `Parameters.Create`.
    Create { security_context: usize, options: u32, file_attributes: u16, share_access: u16 },
    /// `Parameters.Read`.
    Read { length: u32, byte_offset: i64 },
    /// `Parameters.Write`.
    Write { length: u32, byte_offset: i64 },
    /// `Parameters.DeviceIoControl`.
    DeviceIoControl { output_length: u32, input_length: u32, code: u32, type3_input: usize },
}

/// Everything the I/O manager fills in an IRP before IoCallDriver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrpSpec {
    pub major: u8,
    /// `IRP.Flags` (`IRP_BUFFERED_IO`, ...).
    pub flags: u32,
    pub requestor_mode: i8,
    /// The device's `StackSize`: how many stack locations follow the IRP.
    pub stack_size: u8,
    pub device: usize,
    pub file: usize,
    pub system_buffer: usize,
    pub user_buffer: usize,
    pub mdl: usize,
    pub user_iosb: usize,
    pub params: StackParameters,
}

/// An IRP followed by its stack locations, as IoAllocateIrp lays it out (`IoSizeOfIrp(StackSize)`).
///
/// # Invariants
///
/// `block` holds `size_of::<IRP>() + stack_size * size_of::<IO_STACK_LOCATION>()` bytes, `stack_size >= 1`.
#[derive(Debug)]
pub struct IrpBlock {
    block: HostBlock,
    stack_size: u8,
}

impl IrpBlock {
    /// Builds the IRP as the I/O manager hands it to the top driver: the current stack location is the last
    /// one (`CurrentLocation == StackCount`), after IoCallDriver's decrement.
    pub fn build(spec: &IrpSpec) -> Option<Self> {
        let stack_size = spec.stack_size.max(1);
        let size = size_of::<IRP>() + usize::from(stack_size) * size_of::<IO_STACK_LOCATION>();
        let block = HostBlock::new(size, 16)?;
        // INVARIANT: sized for `stack_size` locations just above.
        let me = Self { block, stack_size };
        let base = me.block.addr();
        let current = me.current_stack_addr();
        // SAFETY: `base` is a fresh, zeroed block of `size` bytes that the driver has not seen; IRP is
        // valid for any bit pattern, so reading the zeroed value and writing it back is sound.
        let mut irp: IRP = unsafe { read_obj(base) };
        irp.Type = IO_TYPE_IRP;
        // CAST: StackSize <= 255 locations of 72 bytes plus 208 bytes fit a u16.
        irp.Size = size as u16;
        irp.MdlAddress = spec.mdl as PMDL;
        irp.Flags = spec.flags;
        irp.AssociatedIrp.SystemBuffer = spec.system_buffer as PVOID;
        irp.RequestorMode = spec.requestor_mode;
        // CAST: a CHAR count of stack locations (<= 127 in practice; the I/O manager limits StackSize).
        irp.StackCount = stack_size as i8;
        irp.CurrentLocation = stack_size as i8;
        irp.UserIosb = spec.user_iosb as PIO_STATUS_BLOCK;
        irp.UserBuffer = spec.user_buffer as PVOID;
        irp.IoStatus.u.Status = 0;
        irp.IoStatus.Information = 0;
        irp.Tail.Overlay.s.u.CurrentStackLocation = current as PIO_STACK_LOCATION;
        irp.Tail.Overlay.OriginalFileObject = spec.file as PFILE_OBJECT;
        // SAFETY: as above; the block starts with room for an IRP.
        unsafe { write_obj(base, irp) };
        // SAFETY: `current` is the last stack location inside the block (type invariant).
        let mut sl: IO_STACK_LOCATION = unsafe { read_obj(current) };
        sl.MajorFunction = spec.major;
        sl.DeviceObject = spec.device as PDEVICE_OBJECT;
        sl.FileObject = spec.file as PFILE_OBJECT;
        match spec.params {
            StackParameters::None => {}
            StackParameters::Create { security_context, options, file_attributes, share_access } => {
                sl.Parameters.Create.SecurityContext = security_context as PIO_SECURITY_CONTEXT;
                sl.Parameters.Create.Options = options;
                sl.Parameters.Create.FileAttributes = file_attributes;
                sl.Parameters.Create.ShareAccess = share_access;
                sl.Parameters.Create.EaLength = 0;
            }
            StackParameters::Read { length, byte_offset } => {
                sl.Parameters.Read.Length = length;
                sl.Parameters.Read.ByteOffset.QuadPart = byte_offset;
            }
            StackParameters::Write { length, byte_offset } => {
                sl.Parameters.Write.Length = length;
                sl.Parameters.Write.ByteOffset.QuadPart = byte_offset;
            }
            StackParameters::DeviceIoControl { output_length, input_length, code, type3_input } => {
                sl.Parameters.DeviceIoControl.OutputBufferLength = output_length;
                sl.Parameters.DeviceIoControl.InputBufferLength = input_length;
                sl.Parameters.DeviceIoControl.IoControlCode = code;
                sl.Parameters.DeviceIoControl.Type3InputBuffer = type3_input as PVOID;
            }
        }
        // SAFETY: as above.
        unsafe { write_obj(current, sl) };
        Some(me)
    }

    /// The IRP's address.
    pub fn addr(&self) -> usize {
        self.block.addr()
    }

    /// The stack location the top driver sees (the last one).
    pub fn current_stack_addr(&self) -> usize {
        self.block.addr() + size_of::<IRP>() + (usize::from(self.stack_size) - 1) * size_of::<IO_STACK_LOCATION>()
    }

    /// A copy of the IRP.
    #[cfg(test)]
    pub fn irp(&self) -> IRP {
        // SAFETY: type invariant: the block holds an IRP; any bit pattern is a valid IRP.
        unsafe { read_obj(self.block.addr()) }
    }

    /// A copy of the top driver's stack location.
    #[cfg(test)]
    pub fn stack(&self) -> IO_STACK_LOCATION {
        // SAFETY: type invariant: the current location lies inside the block.
        unsafe { read_obj(self.current_stack_addr()) }
    }

    /// `IoStatus.Status` and `IoStatus.Information`.
    pub fn io_status(&self) -> (i32, usize) {
        let base = self.block.addr();
        // SAFETY: inside the IRP (type invariant).
        let status: i32 = unsafe { read_obj(base + offset_of!(IRP, IoStatus)) };
        // SAFETY: as above.
        let info: usize =
            unsafe { read_obj(base + offset_of!(IRP, IoStatus) + offset_of!(IO_STATUS_BLOCK, Information)) };
        (status, info)
    }

    /// `Control` of the top driver's stack location (`SL_PENDING_RETURNED` is IoMarkIrpPending's mark).
    pub fn stack_control(&self) -> u8 {
        // SAFETY: inside the block (type invariant).
        unsafe { read_obj(self.current_stack_addr() + offset_of!(IO_STACK_LOCATION, Control)) }
    }

    /// Sets `PendingReturned`, as IofCompleteRequest does from the stack location's mark.
    pub fn set_pending_returned(&self, value: bool) {
        // SAFETY: inside the IRP (type invariant).
        unsafe { write_obj(self.block.addr() + offset_of!(IRP, PendingReturned), u8::from(value)) };
    }

    /// Sets `Irp->Cancel` (IoCancelIrp's first step).
    pub fn set_cancel(&self) {
        // SAFETY: inside the IRP (type invariant).
        unsafe { write_obj(self.block.addr() + offset_of!(IRP, Cancel), 1u8) };
    }

    /// Sets `Irp->CancelIrql`.
    pub fn set_cancel_irql(&self, irql: u8) {
        // SAFETY: inside the IRP (type invariant).
        unsafe { write_obj(self.block.addr() + offset_of!(IRP, CancelIrql), irql) };
    }

    /// The cancel routine currently set (0 = none), without changing it.
    pub fn cancel_routine(&self) -> usize {
        self.cancel_routine_atomic().load(Ordering::SeqCst)
    }

    /// `InterlockedExchangePointer(&Irp->CancelRoutine, NULL)`, as IoCancelIrp does.
    pub fn take_cancel_routine(&self) -> usize {
        self.cancel_routine_atomic().swap(0, Ordering::SeqCst)
    }

    fn cancel_routine_atomic(&self) -> &AtomicUsize {
        let addr = self.block.addr() + offset_of!(IRP, CancelRoutine);
        // SAFETY: the field is pointer-sized and pointer-aligned inside the 16-aligned IRP, lives as long as
        // `self`, and the driver writes it only with interlocked operations (IoSetCancelRoutine).
        unsafe { AtomicUsize::from_ptr(addr as *mut usize) }
    }
}

/// `FILE_OBJECT.Flags`: `FO_CLEANUP_COMPLETE`.
pub const FO_CLEANUP_COMPLETE: u32 = 0x4000;
/// `FILE_OBJECT.Flags`: `FO_HANDLE_CREATED`.
pub const FO_HANDLE_CREATED: u32 = 0x0004_0000;

/// A FILE_OBJECT followed by its name's UTF-16 buffer.
///
/// # Invariants
///
/// `block` holds a FILE_OBJECT and, after it, `FileName.MaximumLength` bytes of name.
#[derive(Debug)]
pub struct FileObjectBlock {
    block: HostBlock,
}

impl FileObjectBlock {
    /// Builds the file object of an open of `device` with the name remaining after the device's name.
    pub fn build(device: usize, name: &str, read: bool, write: bool, flags: u32) -> Option<Self> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let name_bytes = units.len().checked_mul(2).filter(|&n| n + 2 <= usize::from(u16::MAX))?;
        let block = HostBlock::new(size_of::<FILE_OBJECT>() + name_bytes + 2, 16)?;
        let base = block.addr();
        let buf = base + size_of::<FILE_OBJECT>();
        for (i, u) in units.iter().enumerate() {
            // SAFETY: the block has room for the name after the FILE_OBJECT (sized above).
            unsafe { write_obj(buf + i * 2, *u) };
        }
        // SAFETY: a fresh zeroed block starting with room for a FILE_OBJECT (any bit pattern is valid).
        let mut fo: FILE_OBJECT = unsafe { read_obj(base) };
        fo.Type = IO_TYPE_FILE;
        // CAST: the structure size (0xD8) fits a CSHORT.
        fo.Size = size_of::<FILE_OBJECT>() as i16;
        fo.DeviceObject = device as PDEVICE_OBJECT;
        fo.ReadAccess = u8::from(read);
        fo.WriteAccess = u8::from(write);
        fo.SharedRead = 1;
        fo.SharedWrite = 1;
        fo.Flags = flags;
        // CAST: checked above to fit a u16 with the terminator.
        fo.FileName = UNICODE_STRING {
            Length: name_bytes as u16,
            MaximumLength: (name_bytes + 2) as u16,
            Buffer: if units.is_empty() { std::ptr::null_mut() } else { buf as *mut u16 },
        };
        // SAFETY: as above.
        unsafe { write_obj(base, fo) };
        // INVARIANT: FILE_OBJECT then MaximumLength bytes of name.
        Some(Self { block })
    }

    pub fn addr(&self) -> usize {
        self.block.addr()
    }

    /// A copy of the FILE_OBJECT.
    pub fn read(&self) -> FILE_OBJECT {
        // SAFETY: type invariant.
        unsafe { read_obj(self.block.addr()) }
    }

    /// The name in `FileName` (as the driver left it).
    pub fn file_name(&self) -> String {
        let fo = self.read();
        let buf = self.block.addr() + size_of::<FILE_OBJECT>();
        if fo.FileName.Buffer as usize != buf || fo.FileName.Length > fo.FileName.MaximumLength {
            return String::new();
        }
        // SAFETY: the buffer is the block's own name area of MaximumLength bytes (checked above).
        unsafe { super::memory::read_utf16(buf, usize::from(fo.FileName.Length)) }
    }

    /// ORs `flags` into `FILE_OBJECT.Flags`.
    pub fn add_flags(&self, flags: u32) {
        let addr = self.block.addr() + offset_of!(FILE_OBJECT, Flags);
        // SAFETY: inside the FILE_OBJECT (type invariant).
        let old: u32 = unsafe { read_obj(addr) };
        // SAFETY: as above.
        unsafe { write_obj(addr, old | flags) };
    }
}

/// Pages spanned by `len` bytes at `va` (`ADDRESS_AND_SIZE_TO_SPAN_PAGES`).
pub fn span_pages(va: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    ((va % PAGE) + len).div_ceil(PAGE)
}

/// An MDL with its page-frame array, describing `len` bytes at `va`.
///
/// # Invariants
///
/// `block` holds an MDL followed by `span_pages(va, len)` PFN entries.
#[derive(Debug)]
pub struct MdlBlock {
    block: HostBlock,
}

impl MdlBlock {
    /// An MDL as IoAllocateMdl leaves it (`MmInitializeMdl`: StartVa, ByteOffset, ByteCount, Size) with
    /// `flags` set; `pfns` fills the page-frame array (the host's pages are identity "frames").
    pub fn build(va: usize, len: u32, flags: i16, pfns: bool) -> Option<Self> {
        let len_usize = usize::try_from(len).ok()?;
        let pages = span_pages(va, len_usize);
        let size = size_of::<MDL>() + pages * size_of::<u64>();
        let block = HostBlock::new(size, 16)?;
        let mdl = MDL {
            Next: std::ptr::null_mut(),
            // CAST: an MDL for a request buffer spans far fewer than 4096 pages.
            Size: i16::try_from(size).ok()?,
            MdlFlags: flags,
            Process: std::ptr::null_mut(),
            MappedSystemVa: std::ptr::null_mut(),
            StartVa: (va - va % PAGE) as PVOID,
            ByteCount: len,
            // CAST: below PAGE.
            ByteOffset: (va % PAGE) as u32,
        };
        // SAFETY: a fresh block with room for the MDL and its PFN array.
        unsafe { write_obj(block.addr(), mdl) };
        if pfns {
            for i in 0..pages {
                // CAST: a host address divided by the page size fits a u64.
                let pfn = (va / PAGE + i) as u64;
                // SAFETY: entry `i` of the PFN array inside the block.
                unsafe { write_obj(block.addr() + size_of::<MDL>() + i * 8, pfn) };
            }
        }
        // INVARIANT: sized for the PFN array.
        Some(Self { block })
    }

    pub fn addr(&self) -> usize {
        self.block.addr()
    }

    /// A copy of the MDL header.
    pub fn read(&self) -> MDL {
        // SAFETY: type invariant.
        unsafe { read_obj(self.block.addr()) }
    }

    /// Overwrites the MDL header.
    pub fn write(&self, mdl: MDL) {
        // SAFETY: type invariant.
        unsafe { write_obj(self.block.addr(), mdl) }
    }

    /// Fills the PFN array for the range the MDL now describes (MmBuildMdlForNonPagedPool).
    pub fn fill_pfns(&self) {
        let m = self.read();
        let va = m.StartVa as usize + m.ByteOffset as usize;
        let pages = span_pages(va, m.ByteCount as usize);
        let room = (self.block.size() - size_of::<MDL>()) / 8;
        for i in 0..pages.min(room) {
            // CAST: as in `build`.
            let pfn = (m.StartVa as usize / PAGE + i) as u64;
            // SAFETY: entry `i` < room of the PFN array inside the block.
            unsafe { write_obj(self.block.addr() + size_of::<MDL>() + i * 8, pfn) };
        }
    }
}

/// A plain byte buffer the host lends (a system buffer, or a "user-mode" buffer of the calling process).
///
/// # Invariants
///
/// `block` holds at least `len` bytes.
#[derive(Debug)]
pub struct Buffer {
    block: std::mem::ManuallyDrop<HostBlock>,
    len: usize,
}

/// Buffers of finished requests, for the next caller that reads into or writes from one of the same size: a
/// process reads into (and writes from) the buffer it used before, so a fresh zeroed allocation (and its
/// zeroing, a 256 KiB memset per batched read) for every request is not what the driver sees on Windows
/// either.
static SPARE_BUFFERS: std::sync::Mutex<Vec<HostBlock>> = std::sync::Mutex::new(Vec::new());
/// At most this many are kept (the newest).
const SPARE_KEPT: usize = 8;

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `block` is taken exactly once, here, and never used afterwards.
        let block = unsafe { std::mem::ManuallyDrop::take(&mut self.block) };
        // Back to the spares for the next request's buffer of this size; with the list full, the oldest
        // goes (the caller's sizes of late are the ones to keep).
        let mut spare = SPARE_BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() >= SPARE_KEPT {
            spare.remove(0);
        }
        spare.push(block);
    }
}

impl Buffer {
    /// A caller's output buffer of `len` bytes (a read's, a device control's): one a finished request of
    /// the same size used, holding what that request left in it, else a fresh zeroed one. Every request
    /// that gets one hands it back when it is dropped.
    pub fn output(len: usize) -> Option<Self> {
        let (block, _) = Self::spare_or_fresh(len)?;
        // INVARIANT: the block has at least `len` bytes.
        Some(Self { block: std::mem::ManuallyDrop::new(block), len })
    }

    /// A buffer of `len` bytes holding `init` at its start and `fill` after it: a caller's input buffer (a
    /// write's, a device control's). Like [`Buffer::output`] it is one a finished request of the same size
    /// used, else a fresh one (a process writes from the buffer it wrote from before; a fresh page-aligned
    /// allocation, its zeroing and its free for every write cost more than the write's own work); either way
    /// its first `len` bytes are exactly `init` and `fill`.
    pub fn new(len: usize, init: &[u8], fill: u8) -> Option<Self> {
        // Whole pages of its own, as a caller's buffer of its own pages would be: the double-fetch watch
        // protects them without touching anything else.
        let (block, fresh) = Self::spare_or_fresh(len)?;
        let head = init.get(..len.min(init.len())).unwrap_or_default();
        // SAFETY: head.len() <= len <= the block's size; a block nobody else uses now.
        unsafe { super::memory::write_bytes(block.addr(), head) };
        if fill != 0 || !fresh {
            // SAFETY: head.len()..len lies inside the block, as above. (A fresh block is zero already.)
            unsafe { super::memory::fill(block.addr() + head.len(), len - head.len(), fill) };
        }
        // INVARIANT: the block has at least `len` bytes.
        Some(Self { block: std::mem::ManuallyDrop::new(block), len })
    }

    /// A block of whole pages for `len` bytes: a spare one of that size (`false`), else a fresh zeroed one
    /// (`true`).
    fn spare_or_fresh(len: usize) -> Option<(HostBlock, bool)> {
        let size = len.max(1).next_multiple_of(4096);
        let reused = {
            let mut spare = SPARE_BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            spare.iter().position(|b| b.size() == size).map(|i| spare.swap_remove(i))
        };
        match reused {
            Some(b) => Some((b, false)),
            None => HostBlock::new(size, 4096).map(|b| (b, true)),
        }
    }

    pub fn addr(&self) -> usize {
        self.block.addr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes `bytes` at `offset` while the driver may be using the buffer, as another thread of the caller
    /// would (a hostile caller's page changing under the driver); `false` if they do not fit.
    pub fn overwrite(&self, offset: usize, bytes: &[u8]) -> bool {
        if offset.checked_add(bytes.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: offset + i < len <= the block's size (checked above, type invariant). The driver may read
            // these bytes concurrently; they are plain bytes of host-owned memory, written one at a time.
            unsafe { write_obj(self.block.addr() + offset + i, *b) };
        }
        true
    }

    /// Copies out the first `n` bytes (at most the buffer's length).
    pub fn bytes(&self, n: usize) -> Vec<u8> {
        // SAFETY: min(n, len) bytes lie inside the block (type invariant).
        unsafe { read_bytes(self.block.addr(), n.min(self.len)) }
    }
}

/// `IO_SECURITY_CONTEXT` (x64): SecurityQos, AccessState, DesiredAccess, FullCreateOptions. ndis-sys keeps
/// the type opaque, so the host lays out its four members itself.
#[derive(Debug)]
pub struct SecurityContextBlock {
    block: HostBlock,
}

impl SecurityContextBlock {
    pub const SIZE: usize = 24;

    pub fn build(desired_access: u32, full_create_options: u32) -> Option<Self> {
        let block = HostBlock::new(Self::SIZE, 16)?;
        // SAFETY: a fresh 24-byte block: two null pointers at 0 and 8, then two ULONGs at 16 and 20.
        unsafe { write_obj(block.addr() + 16, desired_access) };
        // SAFETY: as above.
        unsafe { write_obj(block.addr() + 20, full_create_options) };
        Some(Self { block })
    }

    pub fn addr(&self) -> usize {
        self.block.addr()
    }
}

/// An IO_STATUS_BLOCK of the caller (`UserIosb`), written when the request finishes.
#[derive(Debug)]
pub struct IosbBlock {
    block: HostBlock,
}

impl IosbBlock {
    pub fn new() -> Option<Self> {
        Some(Self { block: HostBlock::new(size_of::<IO_STATUS_BLOCK>(), 16)? })
    }

    pub fn addr(&self) -> usize {
        self.block.addr()
    }

    pub fn set(&self, status: i32, information: usize) {
        // SAFETY: the block holds an IO_STATUS_BLOCK; Status is its first 4 bytes.
        unsafe { write_obj(self.block.addr(), status) };
        // SAFETY: as above.
        unsafe { write_obj(self.block.addr() + offset_of!(IO_STATUS_BLOCK, Information), information) };
    }
}

/// What a driver's DEVICE_OBJECT says about how to build its IRPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts {
    pub flags: u32,
    pub stack_size: u8,
    pub device_type: u32,
    pub characteristics: u32,
}

/// Reads a live device object's block.
pub fn device_facts(device: &HostBlock) -> DeviceFacts {
    // SAFETY: the block was sized for a DEVICE_OBJECT by IoCreateDevice and lives as long as `device`.
    let d: DEVICE_OBJECT = unsafe { read_obj(device.addr()) };
    // CAST: StackSize is a CCHAR the I/O manager keeps positive.
    DeviceFacts {
        flags: d.Flags,
        stack_size: d.StackSize.max(1) as u8,
        device_type: d.DeviceType,
        characteristics: d.Characteristics,
    }
}

/// The driver's `MajorFunction[major]` (0 = not set).
pub fn major_function(driver_object: &HostBlock, major: u8) -> usize {
    // SAFETY: the machine's DRIVER_OBJECT block, alive with the machine; the driver writes MajorFunction
    // only in DriverEntry.
    let d: DRIVER_OBJECT = unsafe { read_obj(driver_object.addr()) };
    d.MajorFunction.get(usize::from(major)).copied().flatten().map_or(0, |f| f as usize)
}

/// Writes `MajorFunction[major]` of the machine's DRIVER_OBJECT (test support: [`fake_driver`](crate::native::fake_driver) routines
/// stand in for a driver's dispatch to exercise the I/O manager's pending, cancel and verifier paths).
pub fn set_major_function(driver_object: &HostBlock, major: u8, f: usize) {
    let Some(off) = offset_of!(DRIVER_OBJECT, MajorFunction).checked_add(usize::from(major) * size_of::<usize>())
    else {
        return;
    };
    if major > IRP_MJ_MAXIMUM_FUNCTION {
        return;
    }
    // SAFETY: entry `major` of the MajorFunction table inside the host-owned DRIVER_OBJECT block (checked
    // against the table's length); the driver writes the table only in DriverEntry.
    unsafe { write_obj(driver_object.addr() + off, f) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_input_buffer_holds_exactly_its_own_bytes() {
        // A size no other test uses, so the spare this test leaves is the one it takes back.
        let len = 3 * 4096 + 123;
        let old = Buffer::new(len, &[0xEE; 3 * 4096 + 123], 0).expect("buffer");
        let old_addr = old.addr();
        drop(old);
        // Shorter contents than the buffer: the rest is the fill (zero or not), never the old bytes.
        for fill in [0u8, 0x5A] {
            let b = Buffer::new(len, &[1, 2, 3], fill).expect("buffer");
            let mut want = vec![fill; len];
            want[..3].copy_from_slice(&[1, 2, 3]);
            assert_eq!(b.bytes(len), want, "fill {fill:#x}");
            drop(b);
        }
        let again = Buffer::new(len, &[7; 10], 0).expect("buffer");
        assert_eq!(again.addr(), old_addr, "the spare block was reused");
        assert_eq!(again.bytes(len)[10..], vec![0; len - 10][..]);
    }

    fn spec(stack_size: u8, params: StackParameters) -> IrpSpec {
        IrpSpec {
            major: IRP_MJ_DEVICE_CONTROL,
            flags: 0x70,
            requestor_mode: UserMode,
            stack_size,
            device: 0x1000,
            file: 0x2000,
            system_buffer: 0x3000,
            user_buffer: 0x4000,
            mdl: 0x5000,
            user_iosb: 0x6000,
            params,
        }
    }

    #[test]
    fn irp_is_laid_out_as_the_io_manager_does() {
        let params = StackParameters::DeviceIoControl {
            output_length: 7,
            input_length: 9,
            code: 0x0022_2004,
            type3_input: 0x7000,
        };
        let b = IrpBlock::build(&spec(2, params)).expect("irp");
        let irp = b.irp();
        assert_eq!(irp.Type, IO_TYPE_IRP);
        assert_eq!(usize::from(irp.Size), size_of::<IRP>() + 2 * size_of::<IO_STACK_LOCATION>());
        assert_eq!((irp.StackCount, irp.CurrentLocation), (2, 2));
        assert_eq!(irp.RequestorMode, UserMode);
        assert_eq!(irp.Flags, 0x70);
        assert_eq!(irp.MdlAddress as usize, 0x5000);
        assert_eq!(irp.UserBuffer as usize, 0x4000);
        assert_eq!(irp.UserIosb as usize, 0x6000);
        // SAFETY: reading a union member of a copied value.
        let system = unsafe { irp.AssociatedIrp.SystemBuffer } as usize;
        assert_eq!(system, 0x3000);
        // SAFETY: as above.
        let tail = unsafe { irp.Tail.Overlay };
        assert_eq!(tail.OriginalFileObject as usize, 0x2000);
        // SAFETY: as above.
        let cur = unsafe { tail.s.u.CurrentStackLocation } as usize;
        assert_eq!(cur, b.addr() + size_of::<IRP>() + size_of::<IO_STACK_LOCATION>(), "the last location is current");
        let sl = b.stack();
        assert_eq!(sl.MajorFunction, IRP_MJ_DEVICE_CONTROL);
        assert_eq!(sl.DeviceObject as usize, 0x1000);
        assert_eq!(sl.FileObject as usize, 0x2000);
        // SAFETY: a copied union, read as the member the major function selects.
        let p = unsafe { sl.Parameters.DeviceIoControl };
        assert_eq!((p.OutputBufferLength, p.InputBufferLength, p.IoControlCode), (7, 9, 0x0022_2004));
        assert_eq!(p.Type3InputBuffer as usize, 0x7000);
        // Raw offsets, as the WDK has them: OutputBufferLength +8, InputBufferLength +0x10, code +0x18,
        // Type3InputBuffer +0x20 into the stack location.
        let cur = b.current_stack_addr();
        // SAFETY: every offset below lies inside the IRP block (IRP + 2 stack locations).
        let u32_at = |a: usize| unsafe { read_obj::<u32>(a) };
        // SAFETY: as above.
        let usize_at = |a: usize| unsafe { read_obj::<usize>(a) };
        assert_eq!(u32_at(cur + 8), 7);
        assert_eq!(u32_at(cur + 0x10), 9);
        assert_eq!(u32_at(cur + 0x18), 0x0022_2004);
        assert_eq!(usize_at(cur + 0x20), 0x7000);
        // IRP: MdlAddress +8, SystemBuffer +0x18, UserBuffer +0x70, CurrentStackLocation +0xB8.
        assert_eq!(usize_at(b.addr() + 8), 0x5000);
        assert_eq!(usize_at(b.addr() + 0x18), 0x3000);
        assert_eq!(usize_at(b.addr() + 0x70), 0x4000);
        assert_eq!(usize_at(b.addr() + 0xB8), cur);
    }

    #[test]
    fn read_parameters_and_status() {
        let b = IrpBlock::build(&spec(1, StackParameters::Read { length: 1500, byte_offset: 0 })).expect("irp");
        // SAFETY: a copied union read as Read.
        let p = unsafe { b.stack().Parameters.Read };
        assert_eq!(p.Length, 1500);
        assert_eq!(b.io_status(), (0, 0));
        assert_eq!(b.stack_control(), 0);
        assert_eq!(b.cancel_routine(), 0);
        b.set_cancel();
        assert_eq!(b.irp().Cancel, 1);
    }

    #[test]
    fn file_object_and_mdl() {
        let f = FileObjectBlock::build(0x1000, "\\x", true, false, 0).expect("fo");
        let fo = f.read();
        assert_eq!(fo.Type, IO_TYPE_FILE);
        assert_eq!(fo.DeviceObject as usize, 0x1000);
        assert_eq!((fo.ReadAccess, fo.WriteAccess), (1, 0));
        assert_eq!(f.file_name(), "\\x");
        f.add_flags(FO_HANDLE_CREATED);
        assert_eq!(f.read().Flags, FO_HANDLE_CREATED);
        let m = MdlBlock::build(0x1_0FF0, 0x20, MDL_PAGES_LOCKED, true).expect("mdl");
        let mdl = m.read();
        assert_eq!(mdl.StartVa as usize, 0x1_0000);
        assert_eq!((mdl.ByteOffset, mdl.ByteCount), (0xFF0, 0x20));
        assert_eq!(usize::try_from(mdl.Size).unwrap_or(0), size_of::<MDL>() + 2 * 8);
        assert_eq!(span_pages(0x1_0FF0, 0x20), 2);
        assert_eq!(span_pages(0x1_0000, 0x1000), 1);
        assert_eq!(span_pages(0x1_0000, 0), 0);
    }
}
