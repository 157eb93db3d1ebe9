//! rawlink's INF: the source `inf/rawlink.inx` and the stamped `rawlink.inf` in the driver package.
//!
//! The package is `target/rawlink-package/` (`cargo xtask build` writes it), or the folder named by
//! `RAWLINK_PACKAGE_DIR` (absolute, or relative to the workspace root). The package tests fail, never skip,
//! when the package is missing. The rules live in `tests/common/inf.rs`; the negative tests below feed them
//! broken variants of the real INX and check that each is rejected with a message naming the problem.

#![allow(clippy::expect_used, clippy::panic, reason = "a test that cannot set up fails loudly")]

#[path = "common/inf.rs"]
mod inf;

use std::path::{Path, PathBuf};

use inf::{check_bytes, check_text, decode, Encoding, Expect, Inf};

const COMPONENT_ID: &str = "RL_RAWLINK";
const CATALOG: &str = "rawlink.cat";
const BINARY: &str = "rawlink.sys";
const PDB: &str = "rawlink.pdb";
const INF_NAME: &str = "rawlink.inf";
const ARCH: &str = "amd64";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn package_dir() -> PathBuf {
    match std::env::var_os("RAWLINK_PACKAGE_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target").join("rawlink-package"),
    }
}

fn inx_bytes() -> Vec<u8> {
    let path = workspace_root().join("inf").join("rawlink.inx");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn inx_text() -> String {
    decode(&inx_bytes()).expect("inf/rawlink.inx decodes").0
}

fn expect_inx() -> Expect<'static> {
    Expect {
        protocol_name: rawlink_abi::PROTOCOL_NAME,
        component_id: COMPONENT_ID,
        catalog_file: CATALOG,
        driver_binary: BINARY,
        stamped_arch: None,
        package_dir: None,
    }
}

fn expect_package(dir: &Path) -> Expect<'_> {
    Expect { stamped_arch: Some(ARCH), package_dir: Some(dir), ..expect_inx() }
}

/// The package folder with a stamped INF in it, or a failure telling the reader how to make one.
fn package() -> (PathBuf, Vec<u8>) {
    let dir = package_dir();
    let inf = dir.join(INF_NAME);
    match std::fs::read(&inf) {
        Ok(bytes) => (dir, bytes),
        Err(e) => panic!(
            "the driver package is missing: cannot read {} ({e}).\n\
             Run `cargo xtask build` first (it writes target/rawlink-package/), or point RAWLINK_PACKAGE_DIR at a \
             package folder (on Windows: target\\<profile>\\rawlink_package after `cargo make`).",
            inf.display()
        ),
    }
}

fn assert_accepted(problems: &[String], what: &str) {
    assert!(problems.is_empty(), "{what} has {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

/// `text` with `from` replaced by `to`; `from` must occur exactly once, so that a changed INX fails here
/// instead of silently testing nothing.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` should occur exactly once in the INX");
    text.replacen(from, to, 1)
}

/// Asserts that the checker rejects `text` with a problem that mentions every one of `needles`.
fn assert_rejected(text: &str, expect: &Expect<'_>, needles: &[&str]) {
    let problems = check_text(text, expect);
    assert!(!problems.is_empty(), "the checker accepted an INF that should fail ({needles:?})");
    assert!(
        problems.iter().any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem mentions all of {needles:?}; problems:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------------------
// The source and the package.

#[test]
fn inx_source_follows_the_rules() {
    let problems = check_bytes(&inx_bytes(), &expect_inx());
    assert_accepted(&problems, "inf/rawlink.inx");
}

#[test]
fn inx_is_ascii() {
    let (_, encoding) = decode(&inx_bytes()).expect("inf/rawlink.inx decodes");
    assert_eq!(encoding, Encoding::Ascii, "keep inf/rawlink.inx ASCII (xtask's stamp refuses anything else)");
}

#[test]
fn package_inf_follows_the_rules() {
    let (dir, bytes) = package();
    let problems = check_bytes(&bytes, &expect_package(&dir));
    assert_accepted(&problems, &dir.join(INF_NAME).display().to_string());
}

#[test]
fn package_has_the_driver_and_its_symbols() {
    let (dir, _) = package();
    let sys = std::fs::read(dir.join(BINARY)).unwrap_or_else(|e| panic!("{BINARY} in {}: {e}", dir.display()));
    assert!(sys.starts_with(b"MZ"), "{} is not a PE image", dir.join(BINARY).display());
    assert!(dir.join(PDB).is_file(), "{PDB} is missing from {} (WinDbg needs it)", dir.display());
}

/// The package INF is the INX stamped: same sections and entries, with `$ARCH$` replaced and DriverVer set.
/// Catches a package left over from an older INX.
#[test]
fn package_inf_is_the_stamped_inx() {
    let (dir, bytes) = package();
    let (text, _) = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", dir.join(INF_NAME).display()));
    let stamped = Inf::parse(&text).unwrap_or_else(|e| panic!("package INF does not parse: {e:?}"));
    let source = Inf::parse(&inx_text().replace("$ARCH$", ARCH)).expect("the INX parses");
    let stale = |why: String| -> ! {
        panic!(
            "{} does not match inf/rawlink.inx ({why}); rebuild the package with `cargo xtask build`",
            dir.join(INF_NAME).display()
        )
    };
    let names = |inf: &Inf| inf.sections.iter().map(|s| s.name.to_ascii_lowercase()).collect::<Vec<_>>();
    if names(&stamped) != names(&source) {
        stale(format!("sections {:?} vs {:?}", names(&stamped), names(&source)));
    }
    for (ours, theirs) in stamped.sections.iter().zip(&source.sections) {
        let strip = |s: &inf::Section| {
            s.entries
                .iter()
                .filter(|e| {
                    !(s.name.eq_ignore_ascii_case("Version")
                        && e.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("DriverVer")))
                })
                .map(|e| (e.key.clone(), e.fields.clone()))
                .collect::<Vec<_>>()
        };
        if strip(ours) != strip(theirs) {
            stale(format!("section [{}] differs", ours.name));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Negative tests: each breaks one rule in the real INX.

#[test]
fn rejects_a_registry_write_outside_hkr() {
    let text = edit(&inx_text(), "HKR, Ndi,            HelpText", "HKLM, Ndi,            HelpText");
    assert_rejected(&text, &expect_inx(), &["outside HKR", "HKLM"]);
}

#[test]
fn rejects_a_missing_section() {
    let text = edit(
        &inx_text(),
        "AddService = RAWLINK,, RawLink.Service.DriverStore",
        "AddService = RAWLINK,, RawLink.Service.Gone",
    );
    assert_rejected(&text, &expect_inx(), &["missing section [RawLink.Service.Gone]", "AddService"]);

    let text = edit(&inx_text(), "[RawLink.Install.Remove.Services]\nDelService = RAWLINK, 0x200\n", "");
    assert_rejected(&text, &expect_inx(), &["missing section [RawLink.Install.Remove.Services]"]);
}

#[test]
fn rejects_a_mismatched_service_name() {
    let text = edit(&inx_text(), "Service,    0x00000000, \"RAWLINK\"", "Service,    0x00000000, \"RAWLNK\"");
    assert_rejected(&text, &expect_inx(), &["service name mismatch", "Ndi\\Service = `RAWLNK`", "RAWLINK"]);

    let text = edit(
        &inx_text(),
        "AddService = RAWLINK,, RawLink.Service.System32",
        "AddService = RawLinkSvc,, RawLink.Service.System32",
    );
    assert_rejected(&text, &expect_inx(), &["service name mismatch", "AddService = `RawLinkSvc`"]);

    // The INF is right but the driver registered another protocol name.
    let expect = Expect { protocol_name: "NDISPROT", ..expect_inx() };
    assert_rejected(&inx_text(), &expect, &["service name mismatch", "`NDISPROT`"]);
}

#[test]
fn rejects_a_wrong_start_type() {
    let text = edit(
        &inx_text(),
        "StartType     = 3               ; SERVICE_DEMAND_START: \"sc start RAWLINK\"",
        "StartType     = 2",
    );
    assert_rejected(
        &text,
        &expect_inx(),
        &["[RawLink.Service.DriverStore]", "StartType is `2`", "SERVICE_DEMAND_START"],
    );
}

#[test]
fn rejects_other_broken_rules() {
    let inx = inx_text();
    let cases: &[(&str, &str, &[&str])] = &[
        ("Class       = NetTrans", "Class       = Net", &["Class is `Net`", "NetTrans"]),
        ("PnpLockdown = 1", "PnpLockdown = 0", &["PnpLockdown"]),
        ("CatalogFile = rawlink.cat", "CatalogFile = other.cat", &["CatalogFile"]),
        ("DriverVer   = 01/01/2000,0.0.0.0", "DriverVer   = 2000-01-01,0.0.0.0", &["DriverVer"]),
        ("DriverVer   = 01/01/2000,0.0.0.0", "DriverVer   = 01/01/2000,1.2.3.65535", &["below 65535"]),
        (
            "Characteristics = 0x0\nAddReg          = RawLink.Ndi.AddReg\nCopyFiles       = RawLink.Files.DriverStore",
            "Characteristics = 0x8\nAddReg          = RawLink.Ndi.AddReg\nCopyFiles       = RawLink.Files.DriverStore",
            &["Characteristics is `0x8`"],
        ),
        ("RawLink.Files.DriverStore = 13", "RawLink.Files.DriverStore = 11", &["DIRID 13"]),
        (
            "ServiceBinary = %13%\\rawlink.sys",
            "ServiceBinary = %11%\\rawlink.sys",
            &["ServiceBinary", "%13%\\rawlink.sys"],
        ),
        ("CoServices, 0x00010000", "CoServices, 0x00000000", &["CoServices", "REG_MULTI_SZ"]),
        ("HKR, Ndi,            CoServices, 0x00010000, \"RAWLINK\"\n", "", &["CoServices", "NetTrans"]),
        ("HKR, Ndi,            HelpText,   0x00000000, %RawLink.HelpText%\n", "", &["HelpText"]),
        ("UpperRange, 0x00000000, \"noupper\"", "UpperRange, 0x00000000, \"ndis5\"", &["UpperRange", "noupper"]),
        ("\"ndis5,ndis4,ndis5_prot\"", "\"ndis4\"", &["LowerRange", "ndis5"]),
        (
            "%RawLink.Description% = RawLink.Install, RL_RAWLINK",
            "%RawLink.Description% = RawLink.Install, RAWLINK",
            &["ComponentId is `RAWLINK`"],
        ),
        ("rawlink.sys = 1,,", "rawlink.sys = 2,,", &["disk `2`"]),
        ("[SourceDisksFiles]\nrawlink.sys = 1,,\n", "[SourceDisksFiles]\n", &["not listed in [SourceDisksFiles]"]),
        ("ProviderName               = \"rawlink project\"\n", "", &["%ProviderName%", "not defined"]),
        (
            "NT$ARCH$.10.0...25319, NT$ARCH$.10.0...16299",
            "NT$ARCH$.10.0...16299",
            &["no Models section for Windows build 25319"],
        ),
        (
            "[DestinationDirs]",
            "[RawLink.Unused]\nrawlink.sys\n\n[DestinationDirs]",
            &["[RawLink.Unused]", "never referenced"],
        ),
    ];
    for (from, to, needles) in cases {
        assert_rejected(&edit(&inx, from, to), &expect_inx(), needles);
    }
}

#[test]
fn rejects_dirid_13_for_builds_before_25319() {
    let text = edit(&inx_text(), "RawLink.Files.System32    = 12", "RawLink.Files.System32    = 13");
    assert_rejected(&text, &expect_inx(), &["[RawLink.Files.System32]", "expected DIRID 12"]);
}

#[test]
fn rejects_a_component_id_without_a_vendor_prefix() {
    let inx = inx_text().replace("RL_RAWLINK", "RAWLINK");
    let expect = Expect { component_id: "RAWLINK", ..expect_inx() };
    assert_rejected(&inx, &expect, &["not <vendor>_<product>"]);
    let inx = inx_text().replace("RL_RAWLINK", "MS_RAWLINK");
    let expect = Expect { component_id: "MS_RAWLINK", ..expect_inx() };
    assert_rejected(&inx, &expect, &["MS_ prefix"]);
}

#[test]
fn stamped_rules_need_the_architecture_replaced() {
    // The INX itself is not a stamped INF: `$ARCH$` is still in it.
    let expect = Expect { stamped_arch: Some(ARCH), ..expect_inx() };
    assert_rejected(&inx_text(), &expect, &["`$ARCH$` placeholder left"]);
    assert_rejected(&inx_text(), &expect, &["should start with `NTamd64`"]);
    // Replacing it (what stampinf -a amd64 does) satisfies them.
    assert_accepted(&check_text(&inx_text().replace("$ARCH$", ARCH), &expect), "the INX with $ARCH$ replaced");
}

#[test]
fn package_rule_needs_every_listed_file() {
    let empty = std::env::temp_dir().join(format!("rawlink-inf-check-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temporary folder");
    let expect = Expect { package_dir: Some(&empty), ..expect_inx() };
    let problems = check_text(&inx_text(), &expect);
    let _ = std::fs::remove_dir(&empty);
    assert!(
        problems.iter().any(|p| p.contains("rawlink.sys is missing from the package folder")),
        "problems: {problems:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Encodings (Learn: install/general-guidelines-for-inf-files: ANSI or UTF-16LE).

#[test]
fn accepts_utf16le_with_bom() {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(inx_text().encode_utf16().flat_map(u16::to_le_bytes));
    let (text, encoding) = decode(&bytes).expect("UTF-16LE decodes");
    assert_eq!(encoding, Encoding::Utf16Le);
    assert_accepted(&check_text(&text, &expect_inx()), "the INX as UTF-16LE");
}

#[test]
fn rejects_utf8_with_bom_non_ascii_ansi_and_utf16be() {
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend(inx_text().bytes());
    assert_eq!(
        check_bytes(&utf8_bom, &expect_inx()).first().map(|p| p.contains("UTF-8 with a byte order mark")),
        Some(true)
    );

    let latin1 = edit(&inx_text(), "rawlink project\"\nManufacturerName", "rawlink projekt \u{e9}\"\nManufacturerName");
    let problems = check_bytes(latin1.as_bytes(), &expect_inx());
    assert!(problems.iter().any(|p| p.contains("non-ASCII byte")), "{problems:?}");

    let mut utf16be = vec![0xFE, 0xFF];
    utf16be.extend(inx_text().encode_utf16().flat_map(u16::to_be_bytes));
    assert!(check_bytes(&utf16be, &expect_inx()).iter().any(|p| p.contains("big endian")));
}

// ---------------------------------------------------------------------------------------------------------
// The reader itself (Learn: install/general-syntax-rules-for-inf-files).

#[test]
fn reader_handles_comments_quotes_continuations_and_tokens() {
    let text = "\
; leading comment\r\n\
[Version]   ; comment after a header\r\n\
Signature = \"$Windows NT$\"\r\n\
[s]\n\
Key = \"a;b\", plain ; the ; in quotes is not a comment\n\
CopyFiles = \"Some\\Dir\\\"\\ ; continued\n\
   ,Other\n\
Quote = \"say \"\"hi\"\"\"\n\
HKR, Ndi\\Interfaces, UpperRange,, noupper\n\
Path = %13%\\x.sys, %%literal%%, %Name%\n\
[S]\n\
Merged = yes\n\
[Strings]\n\
Name = \"Value\"\n";
    let inf = Inf::parse(text).expect("parses");
    let s = inf.section("S").expect("section names are case-insensitive");
    assert_eq!(inf.sections.iter().filter(|x| x.name.eq_ignore_ascii_case("s")).count(), 1, "sections merge");
    let texts = |i: usize| s.entries.get(i).map(|e| e.fields.iter().map(|f| f.text.clone()).collect::<Vec<_>>());
    assert_eq!(texts(0), Some(vec!["a;b".to_owned(), "plain".to_owned()]));
    assert_eq!(texts(1), Some(vec!["Some\\Dir\\".to_owned(), "Other".to_owned()]));
    assert_eq!(s.entries.get(1).map(|e| e.line), Some(6), "a continued entry keeps its first line number");
    assert_eq!(texts(2), Some(vec!["say \"hi\"".to_owned()]));
    assert_eq!(
        texts(3),
        Some(vec!["HKR".into(), "Ndi\\Interfaces".into(), "UpperRange".into(), String::new(), "noupper".into()])
    );
    assert_eq!(s.entries.get(3).and_then(|e| e.key.clone()), None, "an AddReg line has no key");
    let path = s.entries.get(4).expect("Path entry");
    let expanded: Vec<String> = path.fields.iter().map(|f| inf.expand(&f.text).expect("expands")).collect();
    assert_eq!(expanded, ["%13%\\x.sys", "%literal%", "Value"]);
    assert_eq!(texts(5), Some(vec!["yes".to_owned()]));
    assert!(inf.expand("%Missing%").is_err());
}

#[test]
fn reader_reports_syntax_errors() {
    let errors = Inf::parse("stray = 1\n[ok]\nKey = \"open\n[bad\n").expect_err("three errors");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("line 1") && e.contains("before the first section")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("line 3") && e.contains("unterminated quoted string")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("line 4") && e.contains("malformed section header")), "{errors:?}");
}
