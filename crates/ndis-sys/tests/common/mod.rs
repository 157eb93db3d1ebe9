//! Loading the WDK reference tables in `reference/` (see `reference/README.md` for their format).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

pub const LAYOUT_NDIS630: &str = include_str!("../../../../reference/wdk-10.0.16299/layout-ndis630.json");
pub const LAYOUT_NDIS689: &str = include_str!("../../../../reference/wdk-10.0.26100/layout-ndis689.json");
pub const CONSTANTS_NDIS630: &str = include_str!("../../../../reference/wdk-10.0.16299/constants-ndis630.tsv");
pub const CONSTANTS_NDIS689: &str = include_str!("../../../../reference/wdk-10.0.26100/constants-ndis689.tsv");
pub const FUNCTIONS_16299: &str = include_str!("../../../../reference/wdk-10.0.16299/functions.tsv");

/// One field row of a layout table.
#[derive(Clone, Debug)]
pub struct JsonField {
    pub name: String,
    pub offset: usize,
    /// Negative for flexible array members.
    pub size: i64,
    pub ty: String,
    /// `(absolute bit offset from the start of the type, width)` for bit-fields.
    pub bits: Option<(usize, u32)>,
}

/// One type of a layout table.
#[derive(Clone, Debug)]
pub struct JsonType {
    pub size: usize,
    pub align: usize,
    pub fields: Vec<JsonField>,
}

/// Parses a `layout-*.json` table (`_errors` is skipped).
pub fn layouts(text: &str) -> BTreeMap<String, JsonType> {
    let v: serde_json::Value = serde_json::from_str(text).expect("layout JSON parses");
    let obj = v.as_object().expect("layout JSON is an object");
    let mut out = BTreeMap::new();
    for (name, t) in obj {
        if name == "_errors" {
            continue;
        }
        let num = |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{name}: no {k}"));
        let fields = t["fields"]
            .as_array()
            .expect("fields is an array")
            .iter()
            .map(|f| JsonField {
                name: f["name"].as_str().expect("field name").to_owned(),
                offset: usize::try_from(num(f, "offset")).expect("offset >= 0"),
                size: num(f, "size"),
                ty: f["type"].as_str().unwrap_or("").to_owned(),
                bits: f.get("bitoff").map(|b| {
                    (
                        usize::try_from(b.as_i64().expect("bitoff")).expect("bitoff >= 0"),
                        u32::try_from(num(f, "bitwidth")).expect("bitwidth"),
                    )
                }),
            })
            .collect();
        out.insert(
            name.clone(),
            JsonType {
                size: usize::try_from(num(t, "size")).expect("size"),
                align: usize::try_from(num(t, "align")).expect("align"),
                fields,
            },
        );
    }
    out
}

/// One row of a `constants-*.tsv` table.
#[derive(Clone, Debug)]
pub struct TsvConstant {
    pub hex: String,
    pub decimal: i64,
    pub header: String,
    pub kind: String,
}

/// Parses a `constants-*.tsv` table. A name that appears twice (declared by two headers) must have one value.
pub fn constants(text: &str) -> BTreeMap<String, TsvConstant> {
    let mut out: BTreeMap<String, TsvConstant> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "malformed row: {line}");
        let c = TsvConstant {
            hex: cols[1].to_owned(),
            decimal: cols[2].parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            header: cols[3].to_owned(),
            kind: cols[4].to_owned(),
        };
        if let Some(prev) = out.get(cols[0]) {
            assert_eq!(prev.decimal, c.decimal, "{} has two values in one table", cols[0]);
            continue;
        }
        out.insert(cols[0].to_owned(), c);
    }
    out
}

/// One row of `functions.tsv`: `(header, linkage)`.
pub fn functions(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "malformed row: {l}");
            (cols[0].to_owned(), (cols[1].to_owned(), cols[2].trim().to_owned()))
        })
        .collect()
}
