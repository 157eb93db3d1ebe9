//! Load-time patches that make a driver's CR8 accesses trap-free.
//!
//! `mov reg, cr8` (the x64 `KeGetCurrentIrql` inline) and `mov cr8, reg` (`KeRaiseIrql`/`KeLowerIrql`
//! inlines) fault in user mode; the fault handler ([`crate::native::cpu`]) emulates them, at the price of a
//! SIGSEGV round trip (~2.5 µs) per access. This module plans a detour per site instead: the 4-byte CR8
//! instruction and the instructions after it, up to at least the 5 bytes of a `jmp rel32`, are displaced to a
//! trampoline (allocated by the loader right after the image, so well within ±2 GiB), where
//!
//! * a read becomes `movzx r32, byte fs:[IRQL]` — the very thread-local byte the fault handler and every
//!   export read and write ([`crate::native::cpu::irql`]); a CR8 read zero-extends into the full register,
//!   so does a 32-bit `movzx`;
//! * a write becomes `pushfq; push r; and r, 0xF; mov fs:[IRQL], r8; pop r; popfq` — the handler's
//!   `set_irql(value & 0xF)`, flags and register preserved, as `mov cr8, reg` leaves them. The handler does
//!   nothing else on a CR8 write (no checks, no DPC delivery), so neither does the patch: the verifier's
//!   IRQL findings come from the exports, which read the same byte;
//!
//! then the displaced instructions follow, re-encoded for their new address by iced-x86's `BlockEncoder`
//! (RIP-relative operands and branches fixed up), and a `jmp` back behind the displaced range.
//!
//! A site is left to the trap (never patched) when the detour could be wrong: a branch target might lie
//! inside the displaced bytes (after the first byte), a displaced instruction is privileged, invalid or runs
//! out of its section, two sites overlap, or the trampoline space runs out. Branch targets are collected
//! conservatively: every direct branch and call target; every RIP-relative address that points into code
//! (a function pointer taken); every 8-byte word of the data sections that holds an address in code (base-
//! relocated pointers: tables of callbacks); every 4-byte word of the data sections that is an RVA in code
//! (.pdata, the export table, unwind data) unless the loader wrote it; and for every RIP-relative address
//! into data, the 32-bit
//! entries there read as offsets from that address (LLVM's relative jump tables) while they land in the
//! function of the referencing instruction (.pdata), up to the next referenced address.
//! Over-collecting only leaves more sites to the trap.
//!
//! The planner is pure (bytes in, bytes out) and unit-tested; the loader writes its result.

use crate::privileged::classify;
use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, Decoder, DecoderOptions, Instruction, InstructionBlock, MemoryOperand,
    Mnemonic, OpKind, Register,
};
use std::collections::BTreeSet;

/// Bytes of the `jmp rel32` written at a site.
const JMP_LEN: usize = 5;
/// Trampoline bytes the loader reserves per CR8 site (the longest: a write detour with displaced
/// instructions and the jump back stays well below this).
pub const TRAMPOLINE_BYTES_PER_SITE: usize = 96;
/// How many 32-bit entries of a possible jump table are read at most.
const JUMP_TABLE_MAX: usize = 4096;

/// Code or data of the mapped image at its run-time address.
#[derive(Debug, Clone, Copy)]
pub struct Region<'a> {
    pub ip: u64,
    pub bytes: &'a [u8],
}

impl Region<'_> {
    fn contains(&self, a: u64) -> bool {
        a >= self.ip && a - self.ip < self.bytes.len() as u64
    }
}

/// One patched site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Address of the CR8 instruction.
    pub site: u64,
    /// Every CR8 access the detour covers: the site and any displaced with it.
    pub sites: Vec<u64>,
    /// Bytes written at the site: a `jmp` to the trampoline, then `int3` filler to the end of the displaced
    /// instructions.
    pub jump: Vec<u8>,
    /// Address and code of the trampoline.
    pub trampoline_ip: u64,
    pub trampoline: Vec<u8>,
    /// Per displaced instruction: (its address in the trampoline, its original address), for reports.
    pub moved: Vec<(u64, u64)>,
    /// Whether the site reads CR8 (else it writes it).
    pub read: bool,
}

/// What the planner decided.
#[derive(Debug, Default)]
pub struct Plan {
    pub patches: Vec<Patch>,
    /// Sites left to the fault handler: (address, why).
    pub refused: Vec<(u64, String)>,
}

/// What the loader knows of the mapped image beyond its bytes.
#[derive(Debug, Default)]
pub struct Layout {
    /// The image's function ranges (start, end), from .pdata; may be empty.
    pub functions: Vec<(u64, u64)>,
    /// Addresses of the 8-byte words of data the loader wrote: base-relocated pointers, import addresses, the
    /// security cookie. Their values depend on where the image and the host were mapped, so neither of their
    /// 4-byte halves is read as an RVA: the high half of a pointer into an image at `0x7f28_xxxx_xxxx` is
    /// `0x7f28`, an address in code of most drivers, and the plan would change with the load address. Their
    /// full 8-byte values are still read as pointers.
    pub loader_words: BTreeSet<u64>,
}

impl Layout {
    /// Whether the 4-byte word at `a` overlaps a word the loader wrote.
    fn written_by_loader(&self, a: u64) -> bool {
        self.loader_words.range(a.saturating_sub(7)..a.saturating_add(4)).next().is_some()
    }
}

/// Plans detours for every CR8 access in `code` (the executable sections), with `data` (the others) read for
/// possible branch targets, and `layout` what the loader knows besides. `irql_fs_offset` is the IRQL byte's
/// offset from the thread pointer (FS base); trampolines go to `trampoline_ip..trampoline_ip +
/// trampoline_len`; `image_base` turns RVAs into addresses.
pub fn plan(
    code: &[Region<'_>],
    data: &[Region<'_>],
    layout: &Layout,
    image_base: u64,
    irql_fs_offset: i32,
    trampoline_ip: u64,
    trampoline_len: usize,
) -> Plan {
    let in_code = |a: u64| code.iter().any(|r| r.contains(a));
    // The function (from .pdata) an address lies in, if known.
    let function_of = |a: u64| layout.functions.iter().find(|&&(s, e)| a >= s && a < e).copied();
    let mut targets = BTreeSet::new();
    let mut decoded: Vec<Vec<Instruction>> = Vec::new();
    // RIP-relative references into data, with the function of the instruction: possible jump tables.
    let mut tables: Vec<(u64, Option<(u64, u64)>)> = Vec::new();
    for r in code {
        let mut d = Decoder::with_ip(64, r.bytes, r.ip, DecoderOptions::NONE);
        let list: Vec<Instruction> = d.iter().collect();
        for i in &list {
            if i.is_invalid() {
                continue;
            }
            for op in 0..i.op_count() {
                if matches!(i.op_kind(op), OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16) {
                    targets.insert(i.near_branch_target());
                }
            }
            if i.is_ip_rel_memory_operand() {
                let t = i.ip_rel_memory_address();
                if in_code(t) {
                    targets.insert(t);
                } else if data.iter().any(|d| d.contains(t)) {
                    tables.push((t, function_of(i.ip())));
                }
            }
        }
        decoded.push(list);
    }
    // A relative jump table (LLVM's on x64): 32-bit entries, each an offset from the table's own address to
    // a block of the function that indexes it. Read until an entry leaves that function (or the code, when
    // .pdata does not say), or the next referenced address begins.
    let starts: BTreeSet<u64> = tables.iter().map(|&(t, _)| t).collect();
    for &(t, func) in &tables {
        let Some(d) = data.iter().find(|d| d.contains(t)) else { continue };
        let stop = starts.range(t + 1..).next().copied().unwrap_or(u64::MAX);
        let start = usize::try_from(t - d.ip).unwrap_or(usize::MAX);
        let entries = d.bytes.get(start..).unwrap_or_default().chunks_exact(4).filter_map(<[u8]>::first_chunk::<4>);
        for (n, e) in (0u64..).zip(entries.take(JUMP_TABLE_MAX)) {
            if t + 4 * n >= stop {
                break;
            }
            let to = t.wrapping_add_signed(i64::from(i32::from_le_bytes(*e)));
            let inside = match func {
                Some((s, end)) => to >= s && to < end,
                None => in_code(to),
            };
            if !inside {
                break;
            }
            targets.insert(to);
        }
    }
    for d in data {
        for w in d.bytes.chunks_exact(8).filter_map(<[u8]>::first_chunk::<8>) {
            let v = u64::from_le_bytes(*w);
            if in_code(v) {
                targets.insert(v);
            }
        }
        for (at, w) in (d.ip..).step_by(4).zip(d.bytes.chunks_exact(4).filter_map(<[u8]>::first_chunk::<4>)) {
            let v = image_base.wrapping_add(u64::from(u32::from_le_bytes(*w)));
            if in_code(v) && !layout.written_by_loader(at) {
                targets.insert(v);
            }
        }
    }

    let mut out = Plan::default();
    let mut used = 0usize;
    let mut taken_until = 0u64;
    for list in &decoded {
        for (k, i) in list.iter().enumerate() {
            let Some(read) = cr8_access(i) else { continue };
            let site = i.ip();
            let refuse = |why: String| (site, why);
            if site < taken_until {
                if !out.patches.last().is_some_and(|p| p.sites.contains(&site)) {
                    out.refused.push(refuse("inside the displaced bytes of the site before it".into()));
                }
                continue;
            }
            // The CR8 instruction and what follows, up to a jmp's length, all from this section. A CR8 access
            // among them is replaced in the trampoline as well (`mov rax, cr8; mov cr8, rcx` back to back).
            let mut displaced = vec![(*i, Some(read))];
            let mut len = i.len();
            let mut next = k + 1;
            let mut problem = None;
            while len < JMP_LEN {
                match list.get(next) {
                    Some(n) if n.is_invalid() => problem = Some("an undecodable instruction follows it".into()),
                    Some(n) if cr8_access(n).is_some() => {
                        displaced.push((*n, cr8_access(n)));
                        len += n.len();
                    }
                    Some(n) if classify(n).is_some() => {
                        problem = Some(format!("a privileged instruction follows it at {:#x}", n.ip()))
                    }
                    Some(n) => {
                        displaced.push((*n, None));
                        len += n.len();
                    }
                    None => problem = Some("its section ends before 5 bytes".into()),
                }
                if problem.is_some() {
                    break;
                }
                next += 1;
            }
            if let Some(p) = problem {
                out.refused.push(refuse(p));
                continue;
            }
            let end = site + len as u64;
            if let Some(t) = targets.range(site + 1..end).next() {
                out.refused.push(refuse(format!("{t:#x}, inside the displaced bytes, may be a branch target")));
                continue;
            }
            let tip = trampoline_ip + used as u64;
            // The trampoline's instructions; per displaced instruction, the index of its first one.
            let mut instrs = Vec::new();
            let mut first_of = Vec::new();
            let mut unencodable = false;
            for (d, access) in &displaced {
                first_of.push(instrs.len());
                match access {
                    Some(r) => match replacement(d, *r, irql_fs_offset) {
                        Some(v) => instrs.extend(v),
                        None => unencodable = true,
                    },
                    None => instrs.push(*d),
                }
            }
            if unencodable {
                out.refused.push(refuse("no replacement for its register".into()));
                continue;
            }
            instrs.push(Instruction::with_branch(Code::Jmp_rel32_64, end).unwrap_or_default());
            let block = InstructionBlock::new(&instrs, tip);
            let encoded = match BlockEncoder::encode(64, block, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS) {
                Ok(e) => e,
                Err(e) => {
                    out.refused.push(refuse(format!("the displaced instructions do not re-encode: {e}")));
                    continue;
                }
            };
            if used + encoded.code_buffer.len() > trampoline_len {
                out.refused.push(refuse("no trampoline space left".into()));
                continue;
            }
            let Some(rel) = i32::try_from(tip as i64 - (site as i64 + JMP_LEN as i64)).ok() else {
                out.refused.push(refuse("the trampoline is out of jmp rel32 reach".into()));
                continue;
            };
            let mut jump = vec![0xE9];
            jump.extend_from_slice(&rel.to_le_bytes());
            jump.resize(len, 0xCC);
            let moved = displaced
                .iter()
                .zip(&first_of)
                .skip(1)
                .filter_map(|((d, _), &at)| {
                    let off = *encoded.new_instruction_offsets.get(at)?;
                    Some((tip + u64::from(off), d.ip()))
                })
                .collect();
            let sites = displaced.iter().filter(|(_, a)| a.is_some()).map(|(d, _)| d.ip()).collect();
            used += encoded.code_buffer.len().next_multiple_of(16);
            taken_until = end;
            out.patches.push(Patch {
                site,
                sites,
                jump,
                trampoline_ip: tip,
                trampoline: encoded.code_buffer,
                moved,
                read,
            });
        }
    }
    out
}

/// `Some(true)` for `mov reg, cr8`, `Some(false)` for `mov cr8, reg`.
fn cr8_access(i: &Instruction) -> Option<bool> {
    if i.mnemonic() != Mnemonic::Mov || i.op_count() != 2 {
        return None;
    }
    if i.op0_kind() != OpKind::Register || i.op1_kind() != OpKind::Register {
        return None;
    }
    if i.op1_register() == Register::CR8 {
        Some(true)
    } else if i.op0_register() == Register::CR8 {
        Some(false)
    } else {
        None
    }
}

/// The 8-bit register of a 64-bit general register.
fn low_byte(r: Register) -> Option<Register> {
    Some(match r {
        Register::RAX => Register::AL,
        Register::RCX => Register::CL,
        Register::RDX => Register::DL,
        Register::RBX => Register::BL,
        Register::RSP => Register::SPL,
        Register::RBP => Register::BPL,
        Register::RSI => Register::SIL,
        Register::RDI => Register::DIL,
        Register::R8 => Register::R8L,
        Register::R9 => Register::R9L,
        Register::R10 => Register::R10L,
        Register::R11 => Register::R11L,
        Register::R12 => Register::R12L,
        Register::R13 => Register::R13L,
        Register::R14 => Register::R14L,
        Register::R15 => Register::R15L,
        _ => return None,
    })
}

/// The trap-free instructions for one CR8 access (the first carries the site's address).
fn replacement(i: &Instruction, read: bool, off: i32) -> Option<Vec<Instruction>> {
    // 64-bit addressing (displacement size 8): a sign-extended disp32 in a SIB byte, no 0x67 prefix.
    let irql = MemoryOperand::new(Register::None, Register::None, 1, i64::from(off), 8, false, Register::FS);
    let mut v = Vec::new();
    if read {
        let r = i.op0_register().full_register();
        if r == Register::RSP || low_byte(r).is_none() {
            return None;
        }
        v.push(Instruction::with2(Code::Movzx_r32_rm8, r.full_register32(), irql).ok()?);
    } else {
        let r = i.op1_register().full_register();
        if r == Register::RSP {
            return None;
        }
        let b = low_byte(r)?;
        v.push(Instruction::with(Code::Pushfq));
        v.push(Instruction::with1(Code::Push_r64, r).ok()?);
        v.push(Instruction::with2(Code::And_rm64_imm8, r, 0xF).ok()?);
        v.push(Instruction::with2(Code::Mov_rm8_r8, irql, b).ok()?);
        v.push(Instruction::with1(Code::Pop_r64, r).ok()?);
        v.push(Instruction::with(Code::Popfq));
    }
    if let Some(first) = v.first_mut() {
        first.set_ip(i.ip());
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x1_4000_0000;
    const TRAMP: u64 = BASE + 0x10_0000;

    fn decode_all(bytes: &[u8], ip: u64) -> Vec<String> {
        use iced_x86::{Formatter, IntelFormatter};
        let mut f = IntelFormatter::new();
        Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE)
            .iter()
            .map(|i| {
                let mut s = String::new();
                f.format(&i, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn a_read_becomes_an_fs_load_and_the_displaced_test_moves() {
        // mov rax, cr8 ; test al, 0xf ; jne +6 ; ret
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0x75, 0x06, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -0x40, TRAMP, 4096);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        let patch = &p.patches[0];
        assert_eq!(patch.site, BASE);
        assert_eq!(patch.jump.len(), 6, "cr8 read and test displaced");
        assert_eq!(patch.jump[0], 0xE9);
        assert_eq!(patch.jump[5], 0xCC);
        let text = decode_all(&patch.trampoline, patch.trampoline_ip);
        assert_eq!(text[0], "movzx eax,byte ptr fs:[0FFFFFFFFFFFFFFC0h]");
        assert_eq!(patch.trampoline[..4], [0x64, 0x0F, 0xB6, 0x04], "fs, movzx, SIB: no address-size prefix");
        assert_eq!(text[1], "test al,0Fh");
        assert_eq!(text[2], format!("jmp {:016X}h", BASE + 6));
        assert_eq!(patch.moved, vec![(patch.trampoline_ip + 9, BASE + 4)]);
    }

    #[test]
    fn a_write_masks_into_the_irql_byte_keeping_flags_and_register() {
        // mov cr8, r9 ; mov eax, 1 ; ret
        let code = [0x45, 0x0F, 0x22, 0xC1, 0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -0x40, TRAMP, 4096);
        let text = decode_all(&p.patches[0].trampoline, TRAMP);
        assert_eq!(
            &text[..7],
            ["pushfq", "push r9", "and r9,0Fh", "mov fs:[0FFFFFFFFFFFFFFC0h],r9b", "pop r9", "popfq", "mov eax,1"]
        );
        assert!(!p.patches[0].read);
    }

    #[test]
    fn rip_relative_and_branches_in_the_displaced_bytes_are_relocated() {
        // mov rax, cr8 ; call [rip+0x100] ; ret
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xFF, 0x15, 0x00, 0x01, 0x00, 0x00, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4096);
        let t = &p.patches[0];
        let mut d = Decoder::with_ip(64, &t.trampoline, t.trampoline_ip, DecoderOptions::NONE);
        let _ = d.decode();
        let call = d.decode();
        assert_eq!(call.ip_rel_memory_address(), BASE + 10 + 0x100, "the same IAT slot");
    }

    #[test]
    fn a_branch_into_the_displaced_bytes_leaves_the_site_to_the_trap() {
        // mov rax, cr8 ; test al, 0xf ; ret ; jmp back to the test (BASE + 4)
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3, 0xEB, 0xFB];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty());
        assert_eq!(p.refused.len(), 1);
        assert!(p.refused[0].1.contains("branch target"), "{:?}", p.refused);
        // A branch to the site itself is fine (the jmp is there).
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3, 0xEB, 0xF7];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert_eq!(p.patches.len(), 1, "{:?}", p.refused);
    }

    #[test]
    fn pointers_and_rvas_in_data_and_jump_tables_count_as_targets() {
        // mov rax, cr8 ; test al, 0xf ; ret
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3];
        let c = [Region { ip: BASE, bytes: &code }];
        let absolute = (BASE + 4).to_le_bytes();
        let p = plan(&c, &[Region { ip: BASE + 0x2000, bytes: &absolute }], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty(), "a pointer to BASE+4");
        let rva = 4u32.to_le_bytes();
        let p = plan(&c, &[Region { ip: BASE + 0x2000, bytes: &rva }], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty(), "an RVA of BASE+4");
        // lea rcx, [rip + table] ; the table at BASE + 0x2000 holds BASE + 5 - table
        let mut code2 = vec![0x48, 0x8D, 0x0D];
        let table = BASE + 0x2000;
        code2.extend_from_slice(&((table - (BASE + 7)) as i32).to_le_bytes());
        code2.extend_from_slice(&[0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3]);
        let entry = ((BASE + 9) as i64 - table as i64) as i32;
        let t = entry.to_le_bytes();
        let p = plan(
            &[Region { ip: BASE, bytes: &code2 }],
            &[Region { ip: table, bytes: &t }],
            &Layout::default(),
            0,
            -8,
            TRAMP,
            4096,
        );
        assert!(p.patches.is_empty(), "a jump-table entry at BASE+9: {:?}", p.patches);
        // With .pdata saying the function ends before BASE+9, the entry is not one of its blocks.
        let f = Layout { functions: vec![(BASE, BASE + 9)], ..Layout::default() };
        let p = plan(&[Region { ip: BASE, bytes: &code2 }], &[Region { ip: table, bytes: &t }], &f, 0, -8, TRAMP, 4096);
        assert_eq!(p.patches.len(), 1, "{:?}", p.refused);
    }

    #[test]
    fn the_halves_of_a_word_the_loader_wrote_are_not_rvas() {
        // mov rax, cr8 ; test al, 0xf ; ret
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3];
        let c = [Region { ip: BASE, bytes: &code }];
        // A relocated pointer (or an import address) whose high half, 4, would be the RVA of the `test`:
        // the CI failure of stop 21, an image mapped at 0x7f28_8314_b000 with a CR8 read at RVA 0x7f24.
        let word = ((4u64 << 32) | 0x8314_b000).to_le_bytes();
        let d = [Region { ip: BASE + 0x2000, bytes: &word }];
        let p = plan(&c, &d, &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty(), "read as an RVA when the loader did not write it");
        let layout = Layout { loader_words: [BASE + 0x2000].into(), ..Layout::default() };
        let p = plan(&c, &d, &layout, BASE, -8, TRAMP, 4096);
        assert_eq!(p.patches.len(), 1, "{:?}", p.refused);
        // The loader's word is still read whole: a pointer to BASE + 4 there is a target.
        let word = (BASE + 4).to_le_bytes();
        let p = plan(&c, &[Region { ip: BASE + 0x2000, bytes: &word }], &layout, BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty(), "a relocated pointer to BASE+4");
    }

    #[test]
    fn back_to_back_cr8_accesses_share_one_detour() {
        // mov rax, cr8 ; mov cr8, rcx ; ret
        let code = [0x44, 0x0F, 0x20, 0xC0, 0x44, 0x0F, 0x22, 0xC1, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        assert_eq!(p.patches.len(), 1);
        assert_eq!(p.patches[0].sites, [BASE, BASE + 4]);
        let text = decode_all(&p.patches[0].trampoline, TRAMP);
        assert_eq!(text[0], "movzx eax,byte ptr fs:[0FFFFFFFFFFFFFFF8h]");
        assert_eq!(text[1..4], ["pushfq", "push rcx", "and rcx,0Fh"]);
    }

    #[test]
    fn a_privileged_neighbour_or_no_space_refuses() {
        // mov rax, cr8 ; cli
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xFA, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4096);
        assert!(p.patches.is_empty() && p.refused[0].1.contains("privileged"), "{:?}", p.refused);
        let code = [0x44, 0x0F, 0x20, 0xC0, 0xA8, 0x0F, 0xC3];
        let p = plan(&[Region { ip: BASE, bytes: &code }], &[], &Layout::default(), BASE, -8, TRAMP, 4);
        assert!(p.patches.is_empty() && p.refused[0].1.contains("space"), "{:?}", p.refused);
    }
}
