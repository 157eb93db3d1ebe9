//! The double-fetch detector: while a request is dispatched, the pages of its caller-writable input buffer
//! are protected (PROT_NONE). Every access faults; the fault handler notes which bytes a driver instruction
//! read (decoded with iced-x86: the memory operands the instruction reads and their addresses from the
//! registers), lifts the protection, single-steps that one instruction (the trap flag) and protects the
//! pages again in the SIGTRAP handler. A byte of the buffer that driver code reads twice within the same
//! dispatch is a double fetch: on Windows another thread of the caller can change the page between the two
//! reads. The first such byte is reported with both instruction addresses.
//!
//! Accesses by host code (the I/O manager copying, a hostile-caller flip) take the same path without being
//! counted. Nothing here locks or allocates outside driver code's faults; one watch is armed at a time.

use super::cpu;
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

const PAGE: usize = 4096;
/// The largest buffer watched (its per-byte record costs 8 bytes a byte).
pub const MAX_WATCHED: usize = 16 << 20;
/// EFLAGS.TF.
const TRAP_FLAG: i64 = 0x100;

/// One armed watch.
struct Watch {
    start: usize,
    len: usize,
    page_start: usize,
    page_end: usize,
    /// Per byte: the address of the first driver instruction that read it (0: not read yet).
    first_reader: Box<[AtomicUsize]>,
    /// The first double fetch: (first reader, second reader, byte address); second reader 0 = none.
    finding: [AtomicUsize; 3],
}

static ACTIVE: AtomicPtr<Watch> = AtomicPtr::new(std::ptr::null_mut());
/// Watches disarmed, kept until the next arm so a handler still running on another thread never sees
/// freed memory.
static RETIRED: Mutex<Option<Box<Watch>>> = Mutex::new(None);
/// Serialises watches (one request at a time is watched).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static TRAP_INSTALL: Once = Once::new();
static PREVIOUS_TRAP: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Pages this thread unprotected for the instruction it is single-stepping: (start, length).
    static STEPPING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A double fetch the watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoubleFetch {
    pub first_rip: usize,
    pub second_rip: usize,
    pub address: usize,
    /// Offset of the byte in the watched buffer.
    pub offset: usize,
}

/// An armed watch; [`Armed::finish`] disarms it and reports.
pub struct Armed {
    _serial: std::sync::MutexGuard<'static, ()>,
    watch: *mut Watch,
}

fn protect(start: usize, len: usize, prot: libc::c_int) {
    // SAFETY: the range is whole pages of a buffer the host owns for the request's lifetime; changing
    // their protection does not invalidate any Rust reference (all accesses go through raw pointers).
    unsafe { libc::mprotect(start as *mut libc::c_void, len, prot) };
}

/// Starts watching `len` bytes at `start` (whole pages of their own; see `Buffer`). `None` if the buffer is
/// empty or too large.
pub fn arm(start: usize, len: usize) -> Option<Armed> {
    if len == 0 || len > MAX_WATCHED {
        return None;
    }
    install_trap_handler();
    cpu::set_segv_hook(on_segv);
    cpu::install_handler();
    let serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    drop(RETIRED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
    let page_start = start & !(PAGE - 1);
    let page_end = (start + len).next_multiple_of(PAGE);
    let w = Box::new(Watch {
        start,
        len,
        page_start,
        page_end,
        first_reader: (0..len).map(|_| AtomicUsize::new(0)).collect(),
        finding: [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)],
    });
    let p = Box::into_raw(w);
    ACTIVE.store(p, Ordering::Release);
    protect(page_start, page_end - page_start, libc::PROT_NONE);
    Some(Armed { _serial: serial, watch: p })
}

impl Armed {
    /// Disarms the watch (the pages become readable and writable again) and returns the first double fetch.
    pub fn finish(self) -> Option<DoubleFetch> {
        ACTIVE.store(std::ptr::null_mut(), Ordering::Release);
        // SAFETY: the pointer came from Box::into_raw in `arm` and is retired below, not freed.
        let w = unsafe { Box::from_raw(self.watch) };
        protect(w.page_start, w.page_end - w.page_start, libc::PROT_READ | libc::PROT_WRITE);
        let second = w.finding[1].load(Ordering::Acquire);
        let found = (second != 0).then(|| {
            let address = w.finding[2].load(Ordering::Acquire);
            DoubleFetch {
                first_rip: w.finding[0].load(Ordering::Acquire),
                second_rip: second,
                address,
                offset: address - w.start,
            }
        });
        *RETIRED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(w);
        found
    }
}

/// Called first by the SIGSEGV handler: handles a fault on a watched page (returns true), else false.
pub(super) fn on_segv(addr: usize, rip: usize, gregs: &mut [i64]) -> bool {
    let p = ACTIVE.load(Ordering::Acquire);
    if p.is_null() {
        return false;
    }
    // SAFETY: an active watch is freed only after the next arm, long after this handler returns.
    let w = unsafe { &*p };
    if addr < w.page_start || addr >= w.page_end {
        return false;
    }
    if cpu::in_driver_image(rip) && addr >= w.start && addr < w.start + w.len {
        note_reads(w, rip, gregs);
    }
    // The access may run into the next page; lift both (within the watched range) for one instruction.
    let page = addr & !(PAGE - 1);
    let len = (2 * PAGE).min(w.page_end - page);
    protect(page, len, libc::PROT_READ | libc::PROT_WRITE);
    STEPPING.with(|s| s.set((page, len)));
    if let Some(f) = gregs.get_mut(libc::REG_EFL as usize) {
        *f |= TRAP_FLAG;
    }
    true
}

/// Records the bytes of the watched buffer that the instruction at `rip` reads.
fn note_reads(w: &Watch, rip: usize, gregs: &[i64]) {
    // SAFETY: `rip` lies in a registered driver image (checked by the caller).
    let code = unsafe { cpu::code_at(rip) };
    let mut decoder = Decoder::with_ip(64, code, rip as u64, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        return;
    }
    let reg = |r: Register| -> Option<u64> {
        if r == Register::None {
            return Some(0);
        }
        let v = cpu::greg_index(r).and_then(|i| gregs.get(i)).copied()?;
        // CAST: register contents.
        let v = v as u64;
        Some(match r.size() {
            4 => v & 0xFFFF_FFFF,
            2 => v & 0xFFFF,
            _ => v,
        })
    };
    // Written-only memory operands: the destination of moves and stores. Every other memory operand is
    // read (compare, arithmetic, the source of a move or string copy).
    let write_only = |op: u32| {
        op == 0
            && matches!(
                instr.mnemonic(),
                Mnemonic::Mov
                    | Mnemonic::Movsb
                    | Mnemonic::Movsw
                    | Mnemonic::Movsd
                    | Mnemonic::Movsq
                    | Mnemonic::Stosb
                    | Mnemonic::Stosw
                    | Mnemonic::Stosd
                    | Mnemonic::Stosq
                    | Mnemonic::Movups
                    | Mnemonic::Movaps
                    | Mnemonic::Movdqu
                    | Mnemonic::Movdqa
                    | Mnemonic::Movq
                    | Mnemonic::Movd
                    | Mnemonic::Movnti
                    | Mnemonic::Vmovups
                    | Mnemonic::Vmovaps
                    | Mnemonic::Vmovdqu
                    | Mnemonic::Vmovdqa
            )
    };
    let size = instr.memory_size().size().max(1);
    for op in 0..instr.op_count() {
        let memory = matches!(
            instr.op_kind(op),
            OpKind::Memory
                | OpKind::MemorySegSI
                | OpKind::MemorySegESI
                | OpKind::MemorySegRSI
                | OpKind::MemorySegDI
                | OpKind::MemorySegEDI
                | OpKind::MemorySegRDI
                | OpKind::MemoryESDI
                | OpKind::MemoryESEDI
                | OpKind::MemoryESRDI
        );
        if !memory || write_only(op) || instr.mnemonic() == Mnemonic::Lea {
            continue;
        }
        let va = match instr.op_kind(op) {
            OpKind::MemorySegSI | OpKind::MemorySegESI | OpKind::MemorySegRSI => reg(Register::RSI),
            OpKind::MemorySegDI | OpKind::MemorySegEDI | OpKind::MemorySegRDI => reg(Register::RDI),
            OpKind::MemoryESDI | OpKind::MemoryESEDI | OpKind::MemoryESRDI => reg(Register::RDI),
            // FS/GS-relative operands are not the caller's buffer.
            _ if matches!(instr.memory_segment(), Register::FS | Register::GS) => None,
            // RIP-relative: iced gives the absolute target as the displacement.
            _ if instr.memory_base() == Register::RIP => Some(instr.memory_displacement64()),
            _ => reg(instr.memory_base()).zip(reg(instr.memory_index())).map(|(b, i)| {
                b.wrapping_add(i.wrapping_mul(u64::from(instr.memory_index_scale())))
                    .wrapping_add(instr.memory_displacement64())
            }),
        };
        let Some(va) = va else { continue };
        // CAST: an address.
        let from = va as usize;
        let lo = from.max(w.start);
        let hi = from.saturating_add(size).min(w.start + w.len);
        for byte in lo..hi {
            let Some(slot) = w.first_reader.get(byte - w.start) else { continue };
            if let Err(first) = slot.compare_exchange(0, rip, Ordering::AcqRel, Ordering::Acquire) {
                if w.finding[1].compare_exchange(0, rip, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    w.finding[0].store(first, Ordering::Release);
                    w.finding[2].store(byte, Ordering::Release);
                }
            }
        }
    }
}

fn install_trap_handler() {
    TRAP_INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler has the SA_SIGINFO signature.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_trap as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: an empty mask initialised by sigemptyset.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: a zeroed sigaction receives the previous disposition.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to initialised sigaction values.
        if unsafe { libc::sigaction(libc::SIGTRAP, &sa, &mut old) } == 0 {
            PREVIOUS_TRAP.store(old.sa_sigaction, Ordering::Release);
        }
    });
}

extern "C" fn on_trap(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let (page, len) = STEPPING.with(|s| s.replace((0, 0)));
    if len != 0 {
        // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler.
        let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
        if let Some(f) = uc.uc_mcontext.gregs.get_mut(libc::REG_EFL as usize) {
            *f &= !TRAP_FLAG;
        }
        // Protect again only while the watch is still armed (finish may have run meanwhile).
        if !ACTIVE.load(Ordering::Acquire).is_null() {
            protect(page, len, libc::PROT_NONE);
        }
        return;
    }
    // Not a step of ours (a debugger's breakpoint, say): the previous disposition.
    let prev = PREVIOUS_TRAP.load(Ordering::Acquire);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN && prev != 0 {
        // SAFETY: the previous handler was installed for SIGTRAP with the SA_SIGINFO signature (the Rust
        // runtime and debuggers do); a plain handler ignores the extra arguments.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(prev) };
        f(sig, info, ctx);
    } else {
        // SAFETY: restoring the default action for the signal being handled (async-signal-safe).
        unsafe { libc::signal(sig, libc::SIG_DFL) };
        // SAFETY: re-raising it now terminates the process with the real signal.
        unsafe { libc::raise(sig) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_code_reads_a_watched_page_through_the_step() {
        let b = super::super::memory::HostBlock::new(8192, 4096).unwrap();
        let armed = super::arm(b.addr(), 100).unwrap();
        // SAFETY: a live block.
        let v = unsafe { std::ptr::read_volatile(b.as_ptr::<u8>()) };
        assert_eq!(v, 0);
        assert_eq!(armed.finish(), None);
    }
}
