//! Reading a driver image and auditing it as Windows would.
//!
//! [`ImageInfo::parse`] extracts the facts (headers, sections, imports, exports); [`audit`] checks them
//! against what the Windows loader, ApiValidator and link.exe's driver conventions require, returning every
//! problem found rather than stopping at the first.

use crate::wdk::{FunctionTable, Linkage};
use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::LittleEndian as LE;
use std::fmt;

/// Why an image could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not a PE image: {0}")]
    NotPe(String),
    #[error("not a 64-bit (PE32+) image")]
    NotPe64,
    #[error("machine {0:#06x} is not AMD64 (0x8664)")]
    WrongMachine(u16),
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

/// One section header, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub raw_size: u32,
    pub characteristics: u32,
}

impl Section {
    pub fn is_executable(&self) -> bool {
        self.characteristics & pe::IMAGE_SCN_MEM_EXECUTE.0 != 0
    }
    pub fn is_writable(&self) -> bool {
        self.characteristics & pe::IMAGE_SCN_MEM_WRITE.0 != 0
    }
    pub fn is_discardable(&self) -> bool {
        self.characteristics & pe::IMAGE_SCN_MEM_DISCARDABLE.0 != 0
    }
    pub fn is_not_paged(&self) -> bool {
        self.characteristics & pe::IMAGE_SCN_MEM_NOT_PAGED.0 != 0
    }
}

/// An imported function: module (as written in the image) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Import {
    pub module: String,
    pub name: String,
}

impl fmt::Display for Import {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}", self.module, self.name)
    }
}

/// What the audit needs to know about an image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub machine: u16,
    pub file_characteristics: u16,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub image_base: u64,
    pub size_of_image: u32,
    pub entry_point: u32,
    pub check_sum: u32,
    /// The checksum recomputed over the file (the algorithm of `CheckSumMappedFile`).
    pub computed_check_sum: u32,
    pub sections: Vec<Section>,
    pub imports: Vec<Import>,
    /// Exported names and their RVAs.
    pub exports: Vec<(String, u32)>,
    pub has_relocations: bool,
    pub has_tls: bool,
}

fn malformed(what: &'static str) -> impl Fn(object::read::Error) -> ImageError {
    move |e| ImageError::Malformed { what, detail: e.to_string() }
}

impl ImageInfo {
    /// Reads the facts from a PE32+ AMD64 image.
    pub fn parse(data: &[u8]) -> Result<Self, ImageError> {
        match object::read::pe::optional_header_magic(data) {
            Ok(pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC) => {}
            Ok(_) => return Err(ImageError::NotPe64),
            Err(e) => return Err(ImageError::NotPe(e.to_string())),
        }
        let file = PeFile64::parse(data).map_err(|e| ImageError::NotPe(e.to_string()))?;
        let nt = file.nt_headers();
        let fh = nt.file_header();
        let machine = fh.machine.get(LE).0;
        if machine != pe::IMAGE_FILE_MACHINE_AMD64.0 {
            return Err(ImageError::WrongMachine(machine));
        }
        let oh = nt.optional_header();
        let sections = file
            .section_table()
            .iter()
            .map(|s| Section {
                name: String::from_utf8_lossy(s.raw_name()).into_owned(),
                virtual_address: s.virtual_address.get(LE),
                virtual_size: s.virtual_size.get(LE),
                raw_size: s.size_of_raw_data.get(LE),
                characteristics: s.characteristics.get(LE).0,
            })
            .collect();

        let mut imports = Vec::new();
        if let Some(table) = file.import_table().map_err(malformed("import table"))? {
            let mut descriptors = table.descriptors().map_err(malformed("import descriptors"))?;
            while let Some(d) = descriptors.next().map_err(malformed("import descriptor"))? {
                let module = table.name(d.name.get(LE)).map_err(malformed("import module name"))?;
                let module = String::from_utf8_lossy(module).into_owned();
                let first = match d.original_first_thunk.get(LE) {
                    0 => d.first_thunk.get(LE),
                    rva => rva,
                };
                let mut thunks = table.thunks(first).map_err(malformed("import thunks"))?;
                while let Some(thunk) = thunks.next::<pe::ImageNtHeaders64>().map_err(malformed("import thunk"))? {
                    let name = match table.import::<pe::ImageNtHeaders64>(thunk).map_err(malformed("import"))? {
                        object::read::pe::Import::Name(_, name) => String::from_utf8_lossy(name).into_owned(),
                        object::read::pe::Import::Ordinal(n) => format!("#{n}"),
                    };
                    imports.push(Import { module: module.clone(), name });
                }
            }
        }

        let mut exports = Vec::new();
        if let Some(table) = file.export_table().map_err(malformed("export table"))? {
            for e in table.exports().map_err(malformed("exports"))? {
                let name = e.name.map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
                let rva = match e.target {
                    object::read::pe::ExportTarget::Address(a) => a,
                    _ => 0,
                };
                exports.push((name, rva));
            }
        }

        let dir = |id: usize| file.data_directory(id).map(|d| d.size.get(LE) != 0).unwrap_or(false);
        Ok(ImageInfo {
            machine,
            file_characteristics: fh.characteristics.get(LE).0,
            subsystem: oh.subsystem().0,
            dll_characteristics: oh.dll_characteristics().0,
            image_base: oh.image_base(),
            size_of_image: oh.size_of_image(),
            entry_point: oh.address_of_entry_point(),
            check_sum: oh.check_sum(),
            computed_check_sum: pe_checksum(data, checksum_offset(data)?),
            sections,
            imports,
            exports,
            has_relocations: dir(pe::IMAGE_DIRECTORY_ENTRY_BASERELOC),
            has_tls: dir(pe::IMAGE_DIRECTORY_ENTRY_TLS),
        })
    }
}

/// File offset of `OptionalHeader.CheckSum`.
fn checksum_offset(data: &[u8]) -> Result<usize, ImageError> {
    let lfanew = data
        .get(0x3C..0x40)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(ImageError::NotPe("truncated DOS header".into()))?;
    // PE signature (4) + IMAGE_FILE_HEADER (20) + offset of CheckSum in the optional header (64).
    let off = usize::try_from(lfanew).ok().and_then(|l| l.checked_add(4 + 20 + 64));
    match off {
        Some(o) if o.checked_add(4).is_some_and(|end| end <= data.len()) => Ok(o),
        _ => Err(ImageError::NotPe("optional header out of bounds".into())),
    }
}

/// The PE image checksum (`CheckSumMappedFile`): the one's-complement-style 16-bit sum of the file with the
/// CheckSum field taken as zero, folded, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in data.chunks(2).enumerate() {
        let off = i * 2;
        if off >= checksum_offset && off < checksum_offset + 4 {
            continue;
        }
        let word = match chunk {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            [lo] => u16::from(*lo),
            _ => 0,
        };
        sum += u64::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    // CAST: folded to 16 bits above; a PE file is < 4 GiB.
    (sum as u32).wrapping_add(data.len() as u32)
}

/// One rule an image breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short stable identifier of the rule, for tests (`"subsystem"`, `"import-not-exported"`, ...).
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// Whose rule a [`Finding`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// What Windows needs to load and run the driver at all: a NATIVE image that can be relocated, no TLS,
    /// sections with access rights, imports that ntoskrnl.exe, HAL.dll and ndis.sys export on every
    /// supported Windows 10/11. An image that breaks one does not load (or bug-checks on load).
    Windows,
    /// rawlink's image policy, the conventions of a link.exe `/DRIVER` release build that its own build
    /// guarantees: DYNAMIC_BASE, NX_COMPAT and FORCE_INTEGRITY, no TERMINAL_SERVER_AWARE, a PE checksum, an
    /// exported DriverEntry as the entry point, no writable+executable section (what HVCI refuses) and every
    /// resident section non-pageable. Windows loads a driver that differs here.
    Policy,
}

impl Finding {
    /// Whether Windows itself requires the rule, or it is image policy.
    pub fn requirement(&self) -> Requirement {
        match self.rule {
            "subsystem" | "relocations" | "tls" | "section-flags" | "import-module" | "import-not-exported" => {
                Requirement::Windows
            }
            _ => Requirement::Policy,
        }
    }
}

/// The modules a driver may import from.
pub const KERNEL_MODULES: &[&str] = &["ntoskrnl.exe", "HAL.dll", "ndis.sys"];

/// Checks the image against the rules for a Windows kernel driver. Returns every finding; empty means clean.
/// [`Finding::requirement`] tells what Windows requires to load it from rawlink's own image policy.
pub fn audit(info: &ImageInfo, functions: &FunctionTable) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut add = |rule: &'static str, message: String| f.push(Finding { rule, message });

    if info.subsystem != pe::IMAGE_SUBSYSTEM_NATIVE.0 {
        add("subsystem", format!("subsystem is {} (a driver must be NATIVE, 1)", info.subsystem));
    }
    let need = [
        (pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE.0, "DYNAMIC_BASE"),
        (pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT.0, "NX_COMPAT"),
        (pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY.0, "FORCE_INTEGRITY"),
    ];
    for (bit, name) in need {
        if info.dll_characteristics & bit == 0 {
            add("dll-characteristics", format!("DllCharacteristics lacks {name}"));
        }
    }
    if info.dll_characteristics & pe::IMAGE_DLLCHARACTERISTICS_TERMINAL_SERVER_AWARE.0 != 0 {
        add("dll-characteristics", "TERMINAL_SERVER_AWARE is set (link.exe drivers do not set it)".into());
    }
    // An image whose code has no absolute address needs no relocation entries (lld-link then writes no
    // .reloc); what must never be set is RELOCS_STRIPPED, which forbids loading anywhere but the link base.
    if info.file_characteristics & pe::IMAGE_FILE_RELOCS_STRIPPED.0 != 0 {
        add("relocations", "base relocations are stripped; the kernel loads drivers at any address".into());
    }
    if info.check_sum == 0 {
        add("checksum", "PE checksum is 0 (link with /RELEASE)".into());
    } else if info.check_sum != info.computed_check_sum {
        add(
            "checksum",
            format!("PE checksum {:#x} differs from the computed {:#x}", info.check_sum, info.computed_check_sum),
        );
    }
    if info.has_tls {
        add("tls", "the image has a TLS directory; kernel images cannot use TLS".into());
    }
    match info.exports.iter().find(|(n, _)| n == "DriverEntry") {
        None => add("entry-point", "DriverEntry is not exported".into()),
        Some(&(_, rva)) if rva != info.entry_point => {
            add("entry-point", format!("entry point {:#x} is not DriverEntry ({rva:#x})", info.entry_point))
        }
        Some(_) => {}
    }
    for s in &info.sections {
        let access = pe::IMAGE_SCN_MEM_READ.0 | pe::IMAGE_SCN_MEM_WRITE.0 | pe::IMAGE_SCN_MEM_EXECUTE.0;
        if s.characteristics == 0 || s.characteristics & access == 0 {
            add(
                "section-flags",
                format!(
                    "section {} has empty characteristics {:#x} (bugchecks 0x1A on load)",
                    s.name, s.characteristics
                ),
            );
        }
        if s.is_writable() && s.is_executable() {
            add("section-wx", format!("section {} is writable and executable", s.name));
        }
        // link.exe marks every resident section of a /DRIVER image non-pageable; a section that may be
        // paged out would fault when touched at DISPATCH_LEVEL.
        if !s.is_discardable() && !s.is_not_paged() && !s.name.starts_with("PAGE") {
            add("section-paged", format!("section {} is neither discardable nor marked not-paged", s.name));
        }
    }
    for imp in &info.imports {
        if !KERNEL_MODULES.iter().any(|m| m.eq_ignore_ascii_case(&imp.module)) {
            add("import-module", format!("{imp}: {} is not ntoskrnl.exe, HAL.dll or ndis.sys", imp.module));
            continue;
        }
        match functions.linkage(&imp.name) {
            Some(Linkage::Import) => {}
            Some(Linkage::Inline) => add(
                "import-not-exported",
                format!("{imp} is a header inline in WDK 10.0.16299, not an export: the driver will not load"),
            ),
            None => add(
                "import-not-exported",
                format!("{imp} is not declared by WDK 10.0.16299: older Windows 10 does not export it"),
            ),
        }
    }
    f
}
