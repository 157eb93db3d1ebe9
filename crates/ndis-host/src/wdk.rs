//! The WDK's function list (`reference/wdk-10.0.16299/functions.tsv`): which kernel functions are real
//! exports a driver may import, and which are header-only inlines that must not appear in an import table.

use std::collections::HashMap;

/// The table, embedded so the host needs no files at run time.
const FUNCTIONS_TSV: &str = include_str!("../../../reference/wdk-10.0.16299/functions.tsv");

/// How the WDK 10.0.16299 headers declare a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// Declared without a body: an export of ntoskrnl.exe, HAL.dll or ndis.sys.
    Import,
    /// Header-only (FORCEINLINE or macro-like): not exported; importing it fails to load.
    Inline,
}

/// Function name → (header, linkage), parsed from the embedded table.
#[derive(Debug)]
pub struct FunctionTable {
    rows: HashMap<&'static str, (&'static str, Linkage)>,
}

impl FunctionTable {
    /// Parses the embedded 10.0.16299 table.
    pub fn wdk_16299() -> Self {
        let rows = FUNCTIONS_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let (name, header, linkage) = (cols.next()?, cols.next()?, cols.next()?);
                let linkage = match linkage.trim() {
                    "import" => Linkage::Import,
                    "inline" => Linkage::Inline,
                    _ => return None,
                };
                Some((name, (header, linkage)))
            })
            .collect();
        Self { rows }
    }

    /// The linkage of `name`, or `None` when the WDK headers do not declare it at all.
    pub fn linkage(&self, name: &str) -> Option<Linkage> {
        self.rows.get(name).map(|&(_, l)| l)
    }

    /// The header that declares `name`.
    pub fn header(&self, name: &str) -> Option<&'static str> {
        self.rows.get(name).map(|&(h, _)| h)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_knows_imports_and_inlines() {
        let t = FunctionTable::wdk_16299();
        assert!(t.len() > 2000, "{}", t.len());
        assert_eq!(t.linkage("NdisRegisterProtocolDriver"), Some(Linkage::Import));
        assert_eq!(t.linkage("IoCreateDevice"), Some(Linkage::Import));
        assert_eq!(t.linkage("KeGetCurrentIrql"), Some(Linkage::Inline));
        assert_eq!(t.linkage("ExAllocatePool2"), None); // newer than 10.0.16299
        assert_eq!(t.header("NdisRegisterProtocolDriver"), Some("km/ndis.h"));
    }
}
