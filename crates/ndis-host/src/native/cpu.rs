//! Running driver code: per-thread IRQL, emulation of the privileged instructions header inlines compile to,
//! and the record of a fatal fault.
//!
//! A driver reads its IRQL with `mov reg, cr8` (the x64 `KeGetCurrentIrql` inline) and may read
//! KUSER_SHARED_DATA at 0xFFFFF78000000000. In user mode both fault. The SIGSEGV handler below decodes the
//! faulting instruction (iced-x86), emulates it against this thread's IRQL or the host's shared-data page,
//! and resumes after it — the approach Wine takes. A fault it cannot emulate inside a driver image is fatal
//! for that "processor": the fault is recorded, and the thread parks for good, as a bugchecked CPU would
//! (a job run on the asking thread returns to it instead, its stack abandoned: `native::inline`); the host
//! thread waiting for the call sees the record. Faults outside driver images go to the previous handler
//! (Rust's stack-overflow reporter, or the default action).

use iced_x86::{Decoder, DecoderOptions, Instruction, OpKind, Register};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// KUSER_SHARED_DATA's kernel address on x64 and the size of the page the host emulates.
pub const SHARED_DATA_BASE: u64 = 0xFFFF_F780_0000_0000;
const SHARED_DATA_SIZE: u64 = 0x1000;

thread_local! {
    /// This thread's IRQL, as the driver sees it through CR8. Const-initialised: safe to touch in a signal
    /// handler (no lazy allocation).
    static IRQL: Cell<u8> = const { Cell::new(0) };
}

/// The current thread's IRQL.
pub fn irql() -> u8 {
    IRQL.with(Cell::get)
}

/// Sets the current thread's IRQL (KeRaiseIrql/KeLowerIrql and the spin lock routines do this).
pub fn set_irql(level: u8) {
    IRQL.with(|c| c.set(level));
}

/// The thread pointer (FS base): the x86-64 psABI keeps the TCB's address in its own first word, `fs:[0]`.
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads one word at fs:0, which glibc (and every x86-64 ELF TLS implementation) keeps mapped and
    // pointing at itself for every thread.
    unsafe { std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags)) };
    tp
}

/// The offset of this thread's IRQL byte from the thread pointer, for the load-time CR8 patches
/// ([`crate::cr8patch`]) that read and write it as `fs:[offset]`. The IRQL is a const-initialised
/// thread-local of the executable's static TLS block, so the offset is one for every thread; `None` if it
/// does not fit a sign-extended 32-bit displacement (then nothing is patched and CR8 accesses trap).
pub fn irql_fs_offset() -> Option<i32> {
    let at = IRQL.with(|c| std::ptr::from_ref(c) as usize);
    // CAST: a two's-complement difference of two addresses of this thread.
    i32::try_from(at.wrapping_sub(thread_pointer()) as isize).ok()
}

/// CR8 accesses the fault handler emulated (reads and writes), over the whole process: the patched sites
/// never get here.
static CR8_TRAPS: AtomicU64 = AtomicU64::new(0);

/// How many CR8 accesses trapped into the fault handler so far in this process.
pub fn cr8_traps() -> u64 {
    CR8_TRAPS.load(Ordering::Relaxed)
}

thread_local! {
    /// The processor number this host thread reports (KeGetCurrentProcessorNumberEx).
    static PROCESSOR: Cell<u32> = const { Cell::new(0) };
}

thread_local! {
    /// Which machine this processor thread belongs to (an address identifying it; 0 = none). Const: the
    /// fault handler reads it.
    static MACHINE: Cell<usize> = const { Cell::new(0) };
}

/// The machine this thread is a processor of (0 = none).
pub fn machine() -> usize {
    MACHINE.with(Cell::get)
}

/// Marks the current thread as a processor of machine `id`.
pub fn set_machine(id: usize) {
    MACHINE.with(|c| c.set(id));
}

/// The processor number of the current thread.
pub fn processor() -> u32 {
    PROCESSOR.with(Cell::get)
}

/// Sets the processor number the current thread reports.
pub fn set_processor(n: u32) {
    PROCESSOR.with(|c| c.set(n));
}

/// The clock interval in 100 ns units (KeQueryTimeIncrement): Windows' default 15.625 ms tick.
pub const TIME_INCREMENT: u64 = 156_250;
/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_1601: u64 = 116_444_736_000_000_000;

fn clock_100ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec; it is async-signal-safe, so the fault handler may call it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    // CAST: both fields are non-negative for these clocks.
    (ts.tv_sec as u64) * 10_000_000 + (ts.tv_nsec as u64) / 100
}

/// Interrupt time: 100 ns units since the host booted (CLOCK_MONOTONIC, the clock `Instant` uses).
pub fn interrupt_time() -> u64 {
    clock_100ns(libc::CLOCK_MONOTONIC)
}

/// System time: 100 ns units since 1601-01-01 UTC.
pub fn system_time() -> u64 {
    clock_100ns(libc::CLOCK_REALTIME) + EPOCH_1601
}

/// Stores `bytes` at `offset` of the emulated shared-data page, word by word without locks (signal-safe).
fn set_shared_data_bytes(offset: usize, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        let at = offset + i;
        if let Some(w) = SHARED_DATA.get(at / 8) {
            let shift = (at % 8) * 8;
            let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((old & !(0xFF << shift)) | (u64::from(b) << shift))
            });
        }
    }
}

/// Writes a KSYSTEM_TIME (LowPart, High1Time, High2Time) as the kernel does: High2Time first, then LowPart,
/// then High1Time, so a reader that compares High1Time with High2Time never sees a torn value.
fn set_ksystem_time(offset: usize, value: u64) {
    let high = value.to_le_bytes();
    set_shared_data_bytes(offset + 8, high.get(4..8).unwrap_or_default());
    set_shared_data_bytes(offset, high.get(0..4).unwrap_or_default());
    set_shared_data_bytes(offset + 4, high.get(4..8).unwrap_or_default());
}

/// Brings the clock words of the emulated KUSER_SHARED_DATA up to date: TickCountMultiplier (0x4),
/// InterruptTime (0x8), SystemTime (0x14), TickCount (0x320), each a KSYSTEM_TIME as on Windows. Called by
/// the fault handler before it emulates a read of the page, and by the time exports. Async-signal-safe.
pub fn refresh_shared_clock() {
    let it = interrupt_time();
    // TickCountMultiplier = TimeIncrement * 2^24 / 10 000.
    // CAST: 156250 << 24 / 10000 = 0x0FA0_0000 fits a u32.
    set_shared_data_bytes(0x4, &(((TIME_INCREMENT << 24) / 10_000) as u32).to_le_bytes());
    set_ksystem_time(0x8, it);
    set_ksystem_time(0x14, system_time());
    set_ksystem_time(0x320, it / TIME_INCREMENT);
}

/// Address ranges of loaded driver images (start, end); 0/0 is a free slot. Fixed-size and atomic so that
/// the signal handler can read it without locks or allocation.
const MAX_IMAGES: usize = 64;
static IMAGES: [(AtomicUsize, AtomicUsize); MAX_IMAGES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_IMAGES];

/// The emulated KUSER_SHARED_DATA page, as 8-byte words (InterruptTime at 0x8, SystemTime at 0x14, TickCount
/// at 0x320, ...). The host updates the clock words; reads come from here.
static SHARED_DATA: [AtomicU64; (SHARED_DATA_SIZE / 8) as usize] = [const { AtomicU64::new(0) }; 512];

/// Stores a value into the emulated shared-data page (offset must be 8-aligned). Tests use it to plant values.
#[cfg(test)]
pub fn set_shared_data_u64(offset: usize, value: u64) {
    if let Some(w) = SHARED_DATA.get(offset / 8) {
        w.store(value, Ordering::Relaxed);
    }
}

fn shared_data_read(offset: u64, size: usize) -> Option<u64> {
    let word = usize::try_from(offset / 8).ok()?;
    let lo = SHARED_DATA.get(word)?.load(Ordering::Relaxed);
    let hi = SHARED_DATA.get(word + 1).map_or(0, |w| w.load(Ordering::Relaxed));
    let bytes = [lo.to_le_bytes(), hi.to_le_bytes()].concat();
    let start = usize::try_from(offset % 8).ok()?;
    let mut v = [0u8; 8];
    v.get_mut(..size)?.copy_from_slice(bytes.get(start..start + size)?);
    Some(u64::from_le_bytes(v))
}

/// Registers a driver image's address range so its faults are emulated. Returns the slot to release.
pub fn register_image(start: usize, len: usize) -> Option<usize> {
    install_handler();
    for (i, (s, e)) in IMAGES.iter().enumerate() {
        if s.compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            e.store(start + len, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Forgets a registered image.
pub fn unregister_image(slot: usize) {
    if let Some((s, e)) = IMAGES.get(slot) {
        e.store(0, Ordering::Release);
        s.store(0, Ordering::Release);
    }
}

pub(super) fn in_driver_image(addr: usize) -> bool {
    IMAGES.iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::Acquire), e.load(Ordering::Acquire));
        s != 0 && addr >= s && addr < e
    })
}

/// A fault the host could not emulate, recorded by the processor it killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatalFault {
    pub signal: i32,
    pub rip: usize,
    pub address: usize,
    /// The fault hit the stack guard page below a driver call (possibly in host code under the driver).
    pub in_stack_guard: bool,
    /// The machine of the processor that faulted ([`set_machine`]).
    pub machine: usize,
}

/// Incremented per fatal fault, so a waiter can tell a new one from an old one.
static FATAL_COUNT: AtomicUsize = AtomicUsize::new(0);

/// One recorded fatal fault; `seq` (its 1-based number, 0 = empty) is written last.
struct FatalSlot {
    seq: AtomicUsize,
    machine: AtomicUsize,
    rip: AtomicUsize,
    address: AtomicUsize,
    signal: AtomicUsize,
    in_stack_guard: AtomicBool,
}

/// The most recent fatal faults of this process, a ring of fixed slots (lock-free, so the fault handler
/// can write it), so faults of different machines at the same moment never overwrite each other.
const FATAL_SLOTS: usize = 64;
static FATALS: [FatalSlot; FATAL_SLOTS] = [const {
    FatalSlot {
        seq: AtomicUsize::new(0),
        machine: AtomicUsize::new(0),
        rip: AtomicUsize::new(0),
        address: AtomicUsize::new(0),
        signal: AtomicUsize::new(0),
        in_stack_guard: AtomicBool::new(false),
    }
}; FATAL_SLOTS];

fn record_fatal(signal: i32, rip: usize, address: usize, in_stack_guard: bool) {
    let n = FATAL_COUNT.fetch_add(1, Ordering::AcqRel) + 1;
    if let Some(s) = FATALS.get(n % FATAL_SLOTS) {
        s.seq.store(0, Ordering::Release);
        s.machine.store(MACHINE.with(Cell::get), Ordering::Release);
        s.rip.store(rip, Ordering::Release);
        s.address.store(address, Ordering::Release);
        // CAST: a signal number is small and positive.
        s.signal.store(signal as usize, Ordering::Release);
        s.in_stack_guard.store(in_stack_guard, Ordering::Release);
        s.seq.store(n, Ordering::Release);
    }
}

/// How many fatal faults have happened in this process.
pub fn fatal_count() -> usize {
    FATAL_COUNT.load(Ordering::Acquire)
}

fn fatal_where(pred: impl Fn(usize) -> bool) -> Option<FatalFault> {
    let s = FATALS
        .iter()
        .filter(|s| s.seq.load(Ordering::Acquire) != 0 && pred(s.machine.load(Ordering::Acquire)))
        .max_by_key(|s| s.seq.load(Ordering::Acquire))?;
    Some(FatalFault {
        // CAST: a signal number fits an i32.
        signal: s.signal.load(Ordering::Acquire) as i32,
        rip: s.rip.load(Ordering::Acquire),
        address: s.address.load(Ordering::Acquire),
        in_stack_guard: s.in_stack_guard.load(Ordering::Acquire),
        machine: s.machine.load(Ordering::Acquire),
    })
}

/// The most recent fatal fault of a processor of machine `id` ([`set_machine`]).
pub fn last_fatal_of(id: usize) -> Option<FatalFault> {
    fatal_where(|m| m == id)
}

/// How the handler would treat one instruction; pure, so it is unit-tested without signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// Write `value` to general register `reg` (full 64-bit register; 32-bit writes zero-extend).
    SetRegister { reg: Register, value: u64 },
    /// Set the IRQL from register `reg`.
    SetIrql { reg: Register },
}

/// Decides how to emulate `instr` that faulted accessing `fault_addr` at `irql`.
pub fn plan(instr: &Instruction, fault_addr: u64, irql: u8) -> Option<Emulation> {
    use iced_x86::Mnemonic;
    if instr.mnemonic() == Mnemonic::Mov && instr.op_count() == 2 {
        if instr.op0_kind() == OpKind::Register && instr.op1_kind() == OpKind::Register {
            if instr.op1_register() == Register::CR8 {
                return Some(Emulation::SetRegister { reg: instr.op0_register(), value: u64::from(irql) });
            }
            if instr.op0_register() == Register::CR8 {
                return Some(Emulation::SetIrql { reg: instr.op1_register() });
            }
        }
        if instr.op0_kind() == OpKind::Register
            && instr.op1_kind() == OpKind::Memory
            && (SHARED_DATA_BASE..SHARED_DATA_BASE + SHARED_DATA_SIZE).contains(&fault_addr)
        {
            let size = instr.memory_size().size();
            let value = shared_data_read(fault_addr - SHARED_DATA_BASE, size)?;
            return Some(Emulation::SetRegister { reg: instr.op0_register(), value });
        }
    }
    None
}

/// Index into `ucontext.uc_mcontext.gregs` of a general register (any width).
/// The ucontext gregs index of a general-purpose register (any width), for the double-fetch watch.
pub(super) fn greg_index(reg: Register) -> Option<usize> {
    greg(reg)
}

fn greg(reg: Register) -> Option<usize> {
    let full = reg.full_register();
    let idx = match full {
        Register::RAX => libc::REG_RAX,
        Register::RCX => libc::REG_RCX,
        Register::RDX => libc::REG_RDX,
        Register::RBX => libc::REG_RBX,
        Register::RSP => libc::REG_RSP,
        Register::RBP => libc::REG_RBP,
        Register::RSI => libc::REG_RSI,
        Register::RDI => libc::REG_RDI,
        Register::R8 => libc::REG_R8,
        Register::R9 => libc::REG_R9,
        Register::R10 => libc::REG_R10,
        Register::R11 => libc::REG_R11,
        Register::R12 => libc::REG_R12,
        Register::R13 => libc::REG_R13,
        Register::R14 => libc::REG_R14,
        Register::R15 => libc::REG_R15,
        _ => return None,
    };
    usize::try_from(idx).ok()
}

/// Writes `value` into `reg` with x86 semantics: 64- and 32-bit writes replace (32 zero-extends), 16- and
/// 8-bit writes merge.
fn write_reg(gregs: &mut [i64], reg: Register, value: u64) -> Option<()> {
    let i = greg(reg)?;
    let old = *gregs.get(i)? as u64;
    let new = match reg.size() {
        8 => value,
        4 => value & 0xFFFF_FFFF,
        2 => (old & !0xFFFF) | (value & 0xFFFF),
        1 if !reg.is_gpr8() => return None,
        1 => (old & !0xFF) | (value & 0xFF),
        _ => return None,
    };
    // CAST: gregs are the raw 64-bit register contents.
    *gregs.get_mut(i)? = new as i64;
    Some(())
}

static PREVIOUS_SEGV: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// A SIGSEGV check of a module above this one (the double-fetch watch): given the fault address, RIP and the
/// registers, it says whether it handled the fault. Installed once, before the watch arms its first page;
/// `native::watch` uses this module, so this module only knows the hook.
pub type SegvHook = fn(usize, usize, &mut [i64]) -> bool;

static SEGV_HOOK: std::sync::OnceLock<SegvHook> = std::sync::OnceLock::new();

/// Installs the SIGSEGV hook (the first one installed stays).
pub fn set_segv_hook(hook: SegvHook) {
    let _ = SEGV_HOOK.set(hook);
}

/// Installs the fault handler once per process, keeping the previous one for faults that are not ours.
pub fn install_handler() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler has the SA_SIGINFO signature.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: an empty mask initialised by sigemptyset.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: a zeroed sigaction receives the previous disposition.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to initialised sigaction values.
        let r = unsafe { libc::sigaction(libc::SIGSEGV, &sa, &mut old) };
        if r == 0 {
            let boxed = Box::new(old);
            PREVIOUS_SEGV.store(Box::into_raw(boxed) as usize, Ordering::Release);
        }
    });
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t to an SA_SIGINFO handler.
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    let gregs = &mut uc.uc_mcontext.gregs;
    let rip_idx = libc::REG_RIP as usize;
    // CAST: register contents.
    let rip = gregs[rip_idx] as usize;
    // SAFETY: `info` is valid for SA_SIGINFO handlers.
    let info_ref = unsafe { &*info };
    // SAFETY: si_addr is defined for SIGSEGV.
    let addr = unsafe { info_ref.si_addr() } as usize;
    // A watched page of a request's caller buffer (the double-fetch detector, `native::watch`).
    if SEGV_HOOK.get().is_some_and(|hook| hook(addr, rip, gregs)) {
        return;
    }
    let guard_hit = match super::stack::guard_fault(addr) {
        // Host code of this thread reached the (disarmed now) guard page between driver calls: retry.
        Some(false) => return,
        Some(true) => true,
        None => false,
    };
    if in_driver_image(rip) && !guard_hit {
        if (SHARED_DATA_BASE..SHARED_DATA_BASE + SHARED_DATA_SIZE).contains(&(addr as u64)) {
            refresh_shared_clock();
        }
        // SAFETY: `rip` lies inside a mapped, executable driver image; 15 bytes may run past its end only
        // when the image ends in a partial instruction, so clamp to the registered range.
        let code = unsafe { code_at(rip) };
        let mut decoder = Decoder::with_ip(64, code, rip as u64, DecoderOptions::NONE);
        let instr = decoder.decode();
        if !instr.is_invalid() {
            if let Some(e) = plan(&instr, addr as u64, irql()) {
                if instr.op0_register() == Register::CR8 || instr.op1_register() == Register::CR8 {
                    CR8_TRAPS.fetch_add(1, Ordering::Relaxed);
                }
                let ok = match e {
                    Emulation::SetRegister { reg, value } => write_reg(gregs, reg, value),
                    Emulation::SetIrql { reg } => greg(reg).and_then(|i| gregs.get(i).copied()).map(|v| {
                        // CAST: CR8 holds the IRQL in its low 4 bits.
                        set_irql((v & 0xF) as u8)
                    }),
                };
                if ok.is_some() {
                    gregs[rip_idx] = (rip + instr.len()) as i64;
                    return;
                }
            }
        }
    }
    // A fault in a driver image that is not emulated, or a stack overflow into the guard page below a
    // driver call (in driver code or in a host export under it), is fatal for this processor.
    if in_driver_image(rip) || guard_hit {
        // Fatal: record and park this processor for good.
        record_fatal(sig, rip, addr, guard_hit);
        // A job run on the asking thread goes back to it, its stack abandoned.
        if super::inline::trap(gregs) {
            return;
        }
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    }
    // Not ours: hand over to the previous handler, or die with the default action.
    let prev = PREVIOUS_SEGV.load(Ordering::Acquire) as *const libc::sigaction;
    // SAFETY: set once by install_handler from a leaked Box, never freed.
    let prev = (!prev.is_null()).then(|| unsafe { &*prev });
    match prev {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with the SA_SIGINFO signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous handler was installed with the plain signature.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default action and re-raising terminates with the real signal.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
            }
            // SAFETY: as above.
            unsafe { libc::raise(sig) };
        }
    }
}

/// The up-to-15 code bytes at `rip`, clamped to its image.
///
/// # Safety
///
/// `rip` lies inside a registered (mapped, readable) driver image.
pub(super) unsafe fn code_at(rip: usize) -> &'static [u8] {
    let end = IMAGES
        .iter()
        .map(|(s, e)| (s.load(Ordering::Acquire), e.load(Ordering::Acquire)))
        .find(|&(s, e)| s != 0 && rip >= s && rip < e)
        .map_or(rip, |(_, e)| e);
    let len = (end - rip).min(15);
    // SAFETY: the caller guarantees rip..end is mapped and readable; len stays inside it.
    unsafe { std::slice::from_raw_parts(rip as *const u8, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE).decode()
    }

    #[test]
    fn cr8_read_gives_the_irql() {
        let i = decode(&[0x44, 0x0F, 0x20, 0xC0]); // mov rax, cr8
        assert_eq!(plan(&i, 0, 2), Some(Emulation::SetRegister { reg: Register::RAX, value: 2 }));
    }

    #[test]
    fn cr8_write_sets_the_irql() {
        let i = decode(&[0x44, 0x0F, 0x22, 0xC1]); // mov cr8, rcx
        assert_eq!(plan(&i, 0, 0), Some(Emulation::SetIrql { reg: Register::RCX }));
    }

    #[test]
    fn shared_data_reads_come_from_the_emulated_page() {
        // An offset outside the clock words, which other tests refresh concurrently.
        set_shared_data_u64(0x3F0, 0x1122_3344_5566_7788);
        let i = decode(&[0x8B, 0x00]); // mov eax, [rax]
        assert_eq!(
            plan(&i, SHARED_DATA_BASE + 0x3F0, 0),
            Some(Emulation::SetRegister { reg: Register::EAX, value: 0x5566_7788 })
        );
        let i = decode(&[0x48, 0x8B, 0x00]); // mov rax, [rax]
        assert_eq!(
            plan(&i, SHARED_DATA_BASE + 0x3F4, 0),
            Some(Emulation::SetRegister { reg: Register::RAX, value: 0x1122_3344 })
        );
        // Outside the page: a real fault.
        assert_eq!(plan(&i, 0x10, 0), None);
    }

    #[test]
    fn shared_clock_words_advance_as_ksystem_times() {
        refresh_shared_clock();
        let i = decode(&[0x48, 0x8B, 0x00]); // mov rax, [rax]
        let read = |off: u64| match plan(&i, SHARED_DATA_BASE + off, 0) {
            Some(Emulation::SetRegister { value, .. }) => value,
            other => panic!("{other:?}"),
        };
        let (it, st, tc) = (read(0x8), read(0x14), read(0x320));
        assert!(it > 0 && it <= interrupt_time());
        assert!(st > EPOCH_1601 && st <= system_time());
        assert_eq!(tc, it / TIME_INCREMENT);
        // High2Time (0x10 for InterruptTime) mirrors High1Time.
        let i32r = decode(&[0x8B, 0x00]); // mov eax, [rax]
        let high2 = match plan(&i32r, SHARED_DATA_BASE + 0x10, 0) {
            Some(Emulation::SetRegister { value, .. }) => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(high2, it >> 32);
        std::thread::sleep(std::time::Duration::from_millis(20));
        refresh_shared_clock();
        assert!(read(0x8) >= it + 150_000, "interrupt time advanced by 20 ms");
        assert!(read(0x320) > tc, "at least one 15.625 ms tick");
    }

    #[test]
    fn the_irql_byte_sits_at_one_fs_offset_in_every_thread() {
        let off = irql_fs_offset().expect("static TLS");
        let read_via_fs = move || {
            let v: u64;
            // SAFETY: reads the IRQL byte of this thread at the offset just computed.
            unsafe {
                std::arch::asm!("movzx {v:e}, byte ptr fs:[{o}]", v = out(reg) v, o = in(reg) i64::from(off),
                    options(nostack, readonly))
            };
            v
        };
        set_irql(9);
        assert_eq!(read_via_fs(), 9);
        set_irql(0);
        std::thread::spawn(move || {
            assert_eq!(irql_fs_offset(), Some(off));
            set_irql(2);
            assert_eq!(read_via_fs(), 2);
        })
        .join()
        .expect("joined");
    }

    #[test]
    fn register_writes_follow_x86_width_rules() {
        let mut g = [0i64; 23];
        g[libc::REG_RAX as usize] = -1;
        write_reg(&mut g, Register::EAX, 5).unwrap();
        assert_eq!(g[libc::REG_RAX as usize], 5);
        g[libc::REG_RCX as usize] = 0x1234;
        write_reg(&mut g, Register::CL, 0xFF).unwrap();
        assert_eq!(g[libc::REG_RCX as usize], 0x12FF);
    }
}
