//! The instructions of a driver image that fault in user mode (ring-0 only), and what the host does about
//! each kind: the loader lists them, `cr8patch` plans trap-free detours for the CR8 ones, and the fault
//! handler (`native::cpu`) emulates the rest it can.

use iced_x86::{Mnemonic, OpKind, Register};

/// What the host does about a privileged instruction when it executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegedKind {
    /// `mov reg, cr8`: KeGetCurrentIrql.
    ReadCr8,
    /// `mov cr8, reg`: KeRaiseIrql / KeLowerIrql inlines.
    WriteCr8,
    /// A read of KUSER_SHARED_DATA (0xFFFFF78000000000): tick count / interrupt time inlines.
    SharedUserData,
    /// Anything else ring-0 only (cli, sti, hlt, rdmsr, other control registers, port I/O, ...):
    /// not emulated; executing it is reported as a fault.
    Other,
}

/// KUSER_SHARED_DATA's kernel-mode address on x64.
pub const KUSER_SHARED_DATA: u64 = 0xFFFF_F780_0000_0000;

/// Classifies an instruction that would fault in user mode; `None` for ordinary instructions.
pub fn classify(instr: &iced_x86::Instruction) -> Option<PrivilegedKind> {
    let cr = |r: Register| (Register::CR0 as u32..=Register::CR15 as u32).contains(&(r as u32));
    if instr.mnemonic() == Mnemonic::Mov && instr.op_count() == 2 {
        let (a, b) = (instr.op0_register(), instr.op1_register());
        if instr.op0_kind() == OpKind::Register && instr.op1_kind() == OpKind::Register {
            if b == Register::CR8 {
                return Some(PrivilegedKind::ReadCr8);
            }
            if a == Register::CR8 {
                return Some(PrivilegedKind::WriteCr8);
            }
            if cr(a) || cr(b) {
                return Some(PrivilegedKind::Other);
            }
        }
    }
    for i in 0..instr.op_count() {
        if instr.op_kind(i) == OpKind::Memory
            && instr.memory_base() == Register::None
            && instr.memory_index() == Register::None
            && (instr.memory_displacement64() & !0xFFF) == KUSER_SHARED_DATA
        {
            return Some(PrivilegedKind::SharedUserData);
        }
    }
    match instr.mnemonic() {
        Mnemonic::Cli
        | Mnemonic::Sti
        | Mnemonic::Hlt
        | Mnemonic::Rdmsr
        | Mnemonic::Wrmsr
        | Mnemonic::In
        | Mnemonic::Out
        | Mnemonic::Insb
        | Mnemonic::Outsb
        | Mnemonic::Invlpg
        | Mnemonic::Swapgs
        | Mnemonic::Lgdt
        | Mnemonic::Lidt
        | Mnemonic::Wbinvd => Some(PrivilegedKind::Other),
        _ => None,
    }
}
