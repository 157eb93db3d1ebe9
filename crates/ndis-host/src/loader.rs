//! The PE loader: maps a driver image, applies base relocations, binds every import to a host function,
//! applies section protections, and lists the privileged instructions the image contains.
//!
//! An import the host does not provide, or one Windows does not export (not an `import` row of WDK
//! 10.0.16299's function list), fails the load; the error names every such import, not just the first.

use crate::image::{ImageError, ImageInfo, Import, KERNEL_MODULES};
use crate::native::mapping::{Mapping, Protection, PAGE_SIZE};
use crate::wdk::{FunctionTable, Linkage};
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::LittleEndian as LE;
use std::fmt;

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("imports that Windows does not export (not `import` rows of WDK 10.0.16299): {}", list(.0))]
    NotExported(Vec<Import>),
    #[error("imports from modules other than ntoskrnl.exe, HAL.dll and ndis.sys: {}", list(.0))]
    ForeignModule(Vec<Import>),
    #[error("imports the host does not provide: {}", list(.0))]
    Unresolved(Vec<Import>),
    #[error("malformed image: {0}")]
    Malformed(String),
    #[error("mapping the image: {0}")]
    Map(#[from] std::io::Error),
}

fn list(imports: &[Import]) -> String {
    imports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Supplies the address of a host function for an import.
pub trait Resolver {
    fn resolve(&self, module: &str, name: &str) -> Option<usize>;
}

/// A privileged instruction found in an executable section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegedInstruction {
    pub rva: u32,
    pub text: String,
    pub kind: PrivilegedKind,
}

pub use crate::privileged::{classify, PrivilegedKind, KUSER_SHARED_DATA};

/// A mapped, relocated, bound image.
#[derive(Debug)]
pub struct LoadedImage {
    mapping: Mapping,
    pub info: ImageInfo,
    /// Absolute address of the entry point (DriverEntry).
    pub entry: usize,
    pub privileged: Vec<PrivilegedInstruction>,
    /// Every import and the host address it was bound to.
    pub bindings: Vec<(Import, usize)>,
    /// The /GS security cookie of the load configuration, as the loader left it: (its address, its value).
    pub security_cookie: Option<(usize, u64)>,
    /// CR8 sites patched into trap-free detours ([`crate::cr8patch`]): their RVAs.
    pub cr8_patched: Vec<u32>,
    /// CR8 sites left to the fault handler: (RVA, why).
    pub cr8_refused: Vec<(u32, String)>,
    /// Where the trampolines lie (absolute start, length; 0 length when none).
    pub trampolines: (usize, usize),
    /// Per instruction moved into a trampoline: (its trampoline address, its original address).
    moved: Vec<(usize, usize)>,
}

/// How [`load_with`] loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Patch CR8 accesses into trap-free detours (else every one traps into the fault handler).
    pub patch_cr8: bool,
    /// Map the image at this address (else where the kernel chooses).
    pub address: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { patch_cr8: true, address: None }
    }
}

/// The value link.exe and the compilers' run-time libraries give `__security_cookie` on x64; the loader
/// replaces it before the driver runs.
pub const DEFAULT_SECURITY_COOKIE: u64 = 0x0000_2B99_2DDF_A232;

/// Offsets in IMAGE_LOAD_CONFIG_DIRECTORY64: `Size` and `SecurityCookie`.
const LOAD_CONFIG_SECURITY_COOKIE: usize = 0x58;

/// A fresh /GS cookie as the Windows loader makes one for a driver: random, only the low 48 bits set (the top
/// 16 bits of an x64 kernel cookie are zero), never 0 and never the default value.
fn new_security_cookie() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let c = h.finish() & 0x0000_FFFF_FFFF_FFFF;
    if c == 0 || c == DEFAULT_SECURITY_COOKIE {
        0x0000_1234_5678_9ABC
    } else {
        c
    }
}

/// The load configuration's /GS cookie: when the image has one (its SecurityCookie field, already relocated,
/// points into the image) and it still holds the default value, it gets a fresh value, as the Windows loader
/// initialises a driver's cookie before DriverEntry. A cookie address outside the image is refused.
fn init_security_cookie(file: &PeFile64<'_>, mapping: &mut Mapping) -> Result<Option<(usize, u64)>, LoadError> {
    let Some(dir) = file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG) else { return Ok(None) };
    let (rva, len) = (dir.virtual_address.get(LE) as usize, dir.size.get(LE) as usize);
    if rva == 0 || len == 0 {
        return Ok(None);
    }
    let size = u32::from_le_bytes(mapping.read::<4>(rva)?) as usize;
    if size < LOAD_CONFIG_SECURITY_COOKIE + 8 {
        return Ok(None);
    }
    let va = u64::from_le_bytes(mapping.read::<8>(rva + LOAD_CONFIG_SECURITY_COOKIE)?);
    if va == 0 {
        return Ok(None);
    }
    let base = mapping.base() as u64;
    let off = va.checked_sub(base).and_then(|o| usize::try_from(o).ok()).filter(|&o| o + 8 <= mapping.len());
    let Some(off) = off else {
        return Err(LoadError::Malformed(format!(
            "the load configuration's SecurityCookie {va:#x} is outside the image; Windows refuses it"
        )));
    };
    let mut value = u64::from_le_bytes(mapping.read::<8>(off)?);
    if value == DEFAULT_SECURITY_COOKIE {
        value = new_security_cookie();
        mapping.write(off, &value.to_le_bytes())?;
    }
    Ok(Some((mapping.base() + off, value)))
}

impl LoadedImage {
    pub fn base(&self) -> usize {
        self.mapping.base()
    }

    pub fn size(&self) -> usize {
        self.mapping.len()
    }

    /// Whether `addr` lies inside the image (its trampolines included).
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base() && addr - self.base() < self.size()
    }

    /// The image address a driver address stands for: an instruction moved into a CR8 trampoline maps back
    /// to where it was loaded (any other trampoline byte to its site); everything else is itself.
    pub fn original_address(&self, addr: usize) -> usize {
        let (t, len) = self.trampolines;
        if addr < t || addr >= t + len {
            return addr;
        }
        self.moved.iter().filter(|&&(at, _)| at <= addr).max_by_key(|&&(at, _)| at).map_or(addr, |&(_, orig)| orig)
    }

    /// The absolute address of an export.
    pub fn export(&self, name: &str) -> Option<usize> {
        self.info.exports.iter().find(|(n, _)| n == name).map(|&(_, rva)| self.base() + rva as usize)
    }
}

/// Loads `bytes` as a kernel driver, binding imports through `resolver`, with CR8 accesses patched.
pub fn load(bytes: &[u8], resolver: &dyn Resolver, functions: &FunctionTable) -> Result<LoadedImage, LoadError> {
    load_with(bytes, resolver, functions, LoadOptions::default())
}

/// Loads `bytes` as a kernel driver, binding imports through `resolver`, as `options` say.
pub fn load_with(
    bytes: &[u8],
    resolver: &dyn Resolver,
    functions: &FunctionTable,
    options: LoadOptions,
) -> Result<LoadedImage, LoadError> {
    let info = ImageInfo::parse(bytes)?;
    let file = PeFile64::parse(bytes).map_err(|e| LoadError::Malformed(e.to_string()))?;
    let nt = file.nt_headers();
    let oh = nt.optional_header();

    // Imports first: refuse before mapping anything.
    let foreign: Vec<Import> = info
        .imports
        .iter()
        .filter(|i| !KERNEL_MODULES.iter().any(|m| m.eq_ignore_ascii_case(&i.module)))
        .cloned()
        .collect();
    if !foreign.is_empty() {
        return Err(LoadError::ForeignModule(foreign));
    }
    let not_exported: Vec<Import> =
        info.imports.iter().filter(|i| functions.linkage(&i.name) != Some(Linkage::Import)).cloned().collect();
    if !not_exported.is_empty() {
        return Err(LoadError::NotExported(not_exported));
    }
    let unresolved: Vec<Import> =
        info.imports.iter().filter(|i| resolver.resolve(&i.module, &i.name).is_none()).cloned().collect();
    if !unresolved.is_empty() {
        return Err(LoadError::Unresolved(unresolved));
    }

    let size = usize::try_from(oh.size_of_image()).map_err(|e| LoadError::Malformed(e.to_string()))?;
    // Room for the CR8 trampolines right behind the image (one mapping: within jmp rel32 reach, and the
    // fault handler and the double-fetch watch see them as driver code).
    let image_len = size.checked_next_multiple_of(PAGE_SIZE).ok_or_else(|| LoadError::Malformed("size".into()))?;
    let irql_offset = crate::native::cpu::irql_fs_offset();
    let cr8_sites = if options.patch_cr8 && irql_offset.is_some() { count_cr8_sites(bytes, &info) } else { 0 };
    let trampoline_len = (cr8_sites * crate::cr8patch::TRAMPOLINE_BYTES_PER_SITE).next_multiple_of(PAGE_SIZE);
    let mut mapping = match options.address {
        Some(at) => Mapping::new_at(image_len + trampoline_len, at)?,
        None => Mapping::new(image_len + trampoline_len)?,
    };
    let headers = usize::try_from(oh.size_of_headers()).unwrap_or(usize::MAX).min(bytes.len()).min(size);
    mapping.write(0, bytes.get(..headers).unwrap_or_default())?;
    let sections = file.section_table();
    for s in sections.iter() {
        let va = s.virtual_address.get(LE) as usize;
        let raw = s.pointer_to_raw_data.get(LE) as usize;
        let raw_len =
            (s.size_of_raw_data.get(LE) as usize).min(s.virtual_size.get(LE).max(s.size_of_raw_data.get(LE)) as usize);
        if raw_len == 0 {
            continue;
        }
        let data = bytes
            .get(raw..raw.saturating_add(raw_len))
            .ok_or_else(|| LoadError::Malformed(format!("section {} data leaves the file", name(s.raw_name()))))?;
        mapping.write(va, data)?;
    }

    // Base relocations. Every 8-byte word the loader writes is remembered for the CR8 planner (see
    // `cr8patch::Layout::loader_words`).
    let mut loader_words = std::collections::BTreeSet::new();
    let delta = (mapping.base() as u64).wrapping_sub(oh.image_base());
    if let Some(mut blocks) =
        file.data_directories().relocation_blocks(bytes, &sections).map_err(|e| LoadError::Malformed(e.to_string()))?
    {
        while let Some(block) = blocks.next().map_err(|e| LoadError::Malformed(e.to_string()))? {
            for r in block {
                match r.typ {
                    pe::IMAGE_REL_BASED_ABSOLUTE => {}
                    pe::IMAGE_REL_BASED_DIR64 => {
                        let off = r.virtual_address as usize;
                        let v = u64::from_le_bytes(mapping.read::<8>(off)?);
                        mapping.write(off, &v.wrapping_add(delta).to_le_bytes())?;
                        loader_words.insert((mapping.base() + off) as u64);
                    }
                    other => {
                        return Err(LoadError::Malformed(format!(
                            "relocation type {other} at {:#x} (only DIR64 is valid in a PE32+ driver)",
                            r.virtual_address
                        )))
                    }
                }
            }
        }
    }

    // Imports: write each host address into the IAT.
    let mut bindings = Vec::new();
    if let Some(table) = file.import_table().map_err(|e| LoadError::Malformed(e.to_string()))? {
        let mut descriptors = table.descriptors().map_err(|e| LoadError::Malformed(e.to_string()))?;
        while let Some(d) = descriptors.next().map_err(|e| LoadError::Malformed(e.to_string()))? {
            let module =
                String::from_utf8_lossy(table.name(d.name.get(LE)).map_err(|e| LoadError::Malformed(e.to_string()))?)
                    .into_owned();
            let lookup = match d.original_first_thunk.get(LE) {
                0 => d.first_thunk.get(LE),
                rva => rva,
            };
            let mut thunks = table.thunks(lookup).map_err(|e| LoadError::Malformed(e.to_string()))?;
            let mut iat = d.first_thunk.get(LE) as usize;
            while let Some(t) =
                thunks.next::<pe::ImageNtHeaders64>().map_err(|e| LoadError::Malformed(e.to_string()))?
            {
                let name =
                    match table.import::<pe::ImageNtHeaders64>(t).map_err(|e| LoadError::Malformed(e.to_string()))? {
                        object::read::pe::Import::Name(_, n) => String::from_utf8_lossy(n).into_owned(),
                        object::read::pe::Import::Ordinal(n) => format!("#{n}"),
                    };
                let imp = Import { module: module.clone(), name };
                let addr =
                    resolver.resolve(&imp.module, &imp.name).ok_or_else(|| LoadError::Unresolved(vec![imp.clone()]))?;
                mapping.write(iat, &(addr as u64).to_le_bytes())?;
                loader_words.insert((mapping.base() + iat) as u64);
                bindings.push((imp, addr));
                iat += 8;
            }
        }
    }

    let security_cookie = init_security_cookie(&file, &mut mapping)?;
    loader_words.extend(security_cookie.map(|(at, _)| at as u64));

    // CR8 detours, planned on the relocated, bound image. The privileged-instruction list below still comes
    // from the file's bytes, so it names every site as the image has it.
    let (mut cr8_patched, mut cr8_refused, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    let trampolines = (mapping.base() + image_len, trampoline_len);
    if let (true, Some(offset)) = (trampoline_len > 0, irql_offset) {
        let mut code = Vec::new();
        let mut data = Vec::new();
        for sec in &info.sections {
            let len =
                (sec.virtual_size.max(sec.raw_size) as usize).min(size.saturating_sub(sec.virtual_address as usize));
            let bytes = mapping.read_vec(sec.virtual_address as usize, len)?;
            let ip = (mapping.base() + sec.virtual_address as usize) as u64;
            if sec.is_executable() {
                code.push((ip, bytes));
            } else {
                data.push((ip, bytes));
            }
        }
        fn regions(v: &[(u64, Vec<u8>)]) -> Vec<crate::cr8patch::Region<'_>> {
            v.iter().map(|(ip, b)| crate::cr8patch::Region { ip: *ip, bytes: b }).collect()
        }
        let base = mapping.base() as u64;
        // .pdata: (BeginAddress, EndAddress, UnwindInfo) RVAs per function.
        let mut layout = crate::cr8patch::Layout { loader_words, ..Default::default() };
        if let Some(dir) = file.data_directories().get(pe::IMAGE_DIRECTORY_ENTRY_EXCEPTION) {
            let (rva, len) = (dir.virtual_address.get(LE) as usize, dir.size.get(LE) as usize);
            if rva != 0 && rva.saturating_add(len) <= size {
                for e in mapping.read_vec(rva, len)?.chunks_exact(12) {
                    if let Some((begin, rest)) = e.split_first_chunk::<4>() {
                        if let Some(end) = rest.first_chunk::<4>() {
                            let (begin, end) = (u32::from_le_bytes(*begin), u32::from_le_bytes(*end));
                            layout.functions.push((base + u64::from(begin), base + u64::from(end)));
                        }
                    }
                }
            }
        }
        let plan = crate::cr8patch::plan(
            &regions(&code),
            &regions(&data),
            &layout,
            base,
            offset,
            trampolines.0 as u64,
            trampoline_len,
        );
        // Sites and trampolines lie inside the mapping (the planner only places them there); an offset that
        // does not convert makes the write fail as leaving the image.
        let offset_of = |a: u64| usize::try_from(a - base).unwrap_or(usize::MAX);
        let rva_of = |a: u64| u32::try_from(a - base).unwrap_or(u32::MAX);
        let addr = |a: u64| usize::try_from(a).unwrap_or(usize::MAX);
        for p in &plan.patches {
            mapping.write(offset_of(p.site), &p.jump)?;
            mapping.write(offset_of(p.trampoline_ip), &p.trampoline)?;
            cr8_patched.extend(p.sites.iter().map(|&s| rva_of(s)));
            moved.push((addr(p.trampoline_ip), addr(p.site)));
            moved.extend(p.moved.iter().map(|&(new, old)| (addr(new), addr(old))));
        }
        cr8_refused = plan.refused.iter().map(|(a, why)| (rva_of(*a), why.clone())).collect();
    }

    // Protections: headers read-only, then each section as its characteristics say.
    mapping.protect(0, headers.max(1), Protection::ReadOnly)?;
    let mut privileged = Vec::new();
    for (s, sec) in sections.iter().zip(&info.sections) {
        let va = sec.virtual_address as usize;
        let len = (sec.virtual_size.max(sec.raw_size)) as usize;
        if len == 0 {
            continue;
        }
        let c = sec.characteristics;
        let (r, w, x) = (
            c & pe::IMAGE_SCN_MEM_READ.0 != 0,
            c & pe::IMAGE_SCN_MEM_WRITE.0 != 0,
            c & pe::IMAGE_SCN_MEM_EXECUTE.0 != 0,
        );
        let prot = match (r || x, w, x) {
            (_, true, true) => Protection::ReadWriteExecute,
            (_, false, true) => Protection::ReadExecute,
            (_, true, false) => Protection::ReadWrite,
            (true, false, false) => Protection::ReadOnly,
            (false, false, false) => Protection::NoAccess,
        };
        if x {
            let raw = s.pointer_to_raw_data.get(LE) as usize;
            let code =
                bytes.get(raw..raw.saturating_add(sec.raw_size.min(sec.virtual_size) as usize)).unwrap_or_default();
            privileged.extend(scan_privileged(code, sec.virtual_address));
        }
        mapping.protect(va, len, prot)?;
    }
    if trampoline_len > 0 {
        mapping.protect(image_len, trampoline_len, Protection::ReadExecute)?;
    }

    let entry = mapping.base() + info.entry_point as usize;
    Ok(LoadedImage {
        mapping,
        info,
        entry,
        privileged,
        bindings,
        security_cookie,
        cr8_patched,
        cr8_refused,
        trampolines,
        moved,
    })
}

/// How many CR8 accesses the file's executable sections hold (trampoline space is reserved for each).
fn count_cr8_sites(bytes: &[u8], info: &ImageInfo) -> usize {
    let Ok(file) = PeFile64::parse(bytes) else { return 0 };
    file.section_table()
        .iter()
        .zip(&info.sections)
        .filter(|(_, sec)| sec.is_executable())
        .map(|(s, sec)| {
            let raw = s.pointer_to_raw_data.get(LE) as usize;
            let code =
                bytes.get(raw..raw.saturating_add(sec.raw_size.min(sec.virtual_size) as usize)).unwrap_or_default();
            scan_privileged(code, sec.virtual_address)
                .iter()
                .filter(|p| matches!(p.kind, PrivilegedKind::ReadCr8 | PrivilegedKind::WriteCr8))
                .count()
        })
        .sum()
}

fn name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Decodes `code` (at image offset `rva`) linearly and lists every instruction that faults in user mode.
pub fn scan_privileged(code: &[u8], rva: u32) -> Vec<PrivilegedInstruction> {
    let mut out = Vec::new();
    let mut decoder = Decoder::with_ip(64, code, u64::from(rva), DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    for instr in &mut decoder {
        if instr.is_invalid() {
            continue;
        }
        let kind = classify(&instr);
        if let Some(kind) = kind {
            let mut text = String::new();
            formatter.format(&instr, &mut text);
            // CAST: the decoder's IP started at a u32 RVA and advances inside one section.
            out.push(PrivilegedInstruction { rva: instr.ip() as u32, text, kind });
        }
    }
    out
}

impl fmt::Display for PrivilegedInstruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}: {} ({:?})", self.rva, self.text, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cr8_and_shared_data_reads() {
        // mov rax, cr8 ; mov cr8, rcx ; mov rax, [0xFFFFF78000000320] ; ret ; cli
        let code = [
            0x44, 0x0F, 0x20, 0xC0, // mov rax, cr8
            0x44, 0x0F, 0x22, 0xC1, // mov cr8, rcx
            0x48, 0xA1, 0x20, 0x03, 0x00, 0x00, 0x80, 0xF7, 0xFF, 0xFF, // mov rax, [moffs64]
            0xC3, // ret
            0xFA, // cli
        ];
        let found = scan_privileged(&code, 0x1000);
        let kinds: Vec<_> = found.iter().map(|p| (p.rva, p.kind)).collect();
        assert_eq!(
            kinds,
            [
                (0x1000, PrivilegedKind::ReadCr8),
                (0x1004, PrivilegedKind::WriteCr8),
                (0x1008, PrivilegedKind::SharedUserData),
                (0x1013, PrivilegedKind::Other),
            ]
        );
        assert!(found[0].text.contains("cr8"), "{}", found[0].text);
    }

    #[test]
    fn ordinary_code_is_not_privileged() {
        let code = [0x48, 0x89, 0xC8, 0xC3]; // mov rax, rcx ; ret
        assert!(scan_privileged(&code, 0).is_empty());
    }
}
