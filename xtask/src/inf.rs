//! What `stampinf` does, for the Linux build: turns `inf/rawlink.inx` into the package's `rawlink.inf`.
//!
//! On Windows, wdk-build's cargo-make flow runs the WDK's stampinf
//! (`stampinf -f rawlink.inf -d * -a amd64 -c rawlink.cat -v *`, see Makefile.toml). The parts of that tool
//! this INF relies on (Learn: devtest/stampinf-command-options):
//! * `-d`/`-v`: write `DriverVer = mm/dd/yyyy,w.x.y.z` into `[Version]`, replacing the placeholder;
//! * `-a`: replace every `$ARCH$` (the `NT$ARCH$` Models decorations and their section names) with the
//!   architecture, e.g. `NTamd64`.
//!
//! `-c rawlink.cat` only rewrites a CatalogFile entry the INX already carries, so it is not repeated here;
//! tests/inf_check.rs checks that entry. Output keeps the INX's line endings. The INX must be ASCII: INFs are
//! ANSI or UTF-16LE (Learn: install/general-guidelines-for-inf-files) and ASCII is the subset both tools
//! and every code page agree on.

use anyhow::{bail, ensure, Context, Result};

/// The INF source, relative to the workspace root.
pub const INX_PATH: &str = "inf/rawlink.inx";

/// Architectures stampinf's `-a` accepts for a 64-bit Windows 10/11 package.
const ARCHITECTURES: &[&str] = &["amd64", "arm64"];

/// Stamps `inx`: `DriverVer = <driver_ver_date>,<driver_version>` in `[Version]` and `$ARCH$` → `arch`.
///
/// `driver_ver_date` is `MM/DD/YYYY` and `driver_version` is `a.b.c.d` with every field below 65535
/// (Learn: install/inf-driverver-directive). `arch` is `amd64` or `arm64`.
pub fn stamp(inx: &str, driver_ver_date: &str, driver_version: &str, arch: &str) -> Result<String> {
    check_date(driver_ver_date)?;
    check_version(driver_version)?;
    ensure!(ARCHITECTURES.contains(&arch), "unsupported architecture `{arch}` (expected one of {ARCHITECTURES:?})");
    if let Some((line, c)) =
        inx.lines().enumerate().find_map(|(i, l)| l.chars().find(|c| !c.is_ascii()).map(|c| (i + 1, c)))
    {
        bail!("the INX must be ASCII, line {line} has {c:?} (U+{:04X})", u32::from(c));
    }

    let eol = if inx.contains("\r\n") { "\r\n" } else { "\n" };
    let driver_ver = format!("DriverVer   = {driver_ver_date},{driver_version}");
    let mut out = String::with_capacity(inx.len() + 64);
    let mut section = String::new();
    let mut version_seen = false;
    let mut driver_ver_written = false;

    for line in inx.lines() {
        let trimmed = line.trim();
        if let Some(name) = section_name(trimmed) {
            // Leaving [Version] without a DriverVer line: add one at its end, as stampinf does.
            if section.eq_ignore_ascii_case("Version") && !driver_ver_written {
                out.push_str(&driver_ver);
                out.push_str(eol);
                driver_ver_written = true;
            }
            section = name.to_owned();
            version_seen |= section.eq_ignore_ascii_case("Version");
        } else if section.eq_ignore_ascii_case("Version") && directive(trimmed).eq_ignore_ascii_case("DriverVer") {
            ensure!(!driver_ver_written, "the INX has more than one DriverVer entry in [Version]");
            out.push_str(&driver_ver);
            out.push_str(eol);
            driver_ver_written = true;
            continue;
        }
        out.push_str(&replace_arch(line, arch));
        out.push_str(eol);
    }
    ensure!(version_seen, "the INX has no [Version] section");
    if !driver_ver_written {
        // [Version] was the last section.
        out.push_str(&driver_ver);
        out.push_str(eol);
    }
    if !inx.ends_with('\n') {
        out.truncate(out.len() - eol.len());
    }
    ensure!(!out.to_ascii_uppercase().contains("$ARCH$"), "a `$ARCH$` placeholder survived stamping");
    Ok(out)
}

/// `[Name]` → `Name` (a section header line), else `None`.
fn section_name(trimmed: &str) -> Option<&str> {
    let inner = trimmed.strip_prefix('[')?;
    let end = inner.find(']')?;
    inner.get(..end).map(str::trim)
}

/// The directive (key) of an entry line: the text before `=` with the comment stripped, or "" for comments,
/// blank lines and lines without `=`.
fn directive(trimmed: &str) -> &str {
    let code = trimmed.split(';').next().unwrap_or_default();
    code.split_once('=').map_or("", |(key, _)| key.trim())
}

/// Replaces every `$ARCH$` (any case, as stampinf matches it) with `arch`.
fn replace_arch(line: &str, arch: &str) -> String {
    const TOKEN: &str = "$ARCH$";
    let upper = line.to_ascii_uppercase();
    let mut out = String::with_capacity(line.len());
    let mut rest = 0;
    // `line` is ASCII, so byte offsets in `upper` are offsets in `line`.
    while let Some(found) = upper.get(rest..).and_then(|tail| tail.find(TOKEN)) {
        out.push_str(line.get(rest..rest + found).unwrap_or_default());
        out.push_str(arch);
        rest += found + TOKEN.len();
    }
    out.push_str(line.get(rest..).unwrap_or_default());
    out
}

/// `MM/DD/YYYY` with two-digit month and day and a four-digit year, naming a real day.
fn check_date(date: &str) -> Result<()> {
    let fields: Vec<&str> = date.split('/').collect();
    let [mm, dd, yyyy] = fields.as_slice() else {
        bail!("DriverVer date `{date}` is not MM/DD/YYYY");
    };
    ensure!(
        mm.len() == 2 && dd.len() == 2 && yyyy.len() == 4,
        "DriverVer date `{date}` is not MM/DD/YYYY (two-digit month and day, four-digit year)"
    );
    let parse = |s: &str| -> Result<u32> {
        ensure!(s.bytes().all(|b| b.is_ascii_digit()), "DriverVer date `{date}` has a non-digit field `{s}`");
        s.parse::<u32>().with_context(|| format!("DriverVer date `{date}`"))
    };
    let (month, day, year) = (parse(mm)?, parse(dd)?, parse(yyyy)?);
    ensure!(year >= 1980, "DriverVer date `{date}`: year before 1980");
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => bail!("DriverVer date `{date}`: month {month} does not exist"),
    };
    ensure!((1..=days_in_month).contains(&day), "DriverVer date `{date}`: day {day} does not exist");
    Ok(())
}

/// `w.x.y.z`, each field a decimal integer from 0 to 65534 ("less than 65535").
fn check_version(version: &str) -> Result<()> {
    let fields: Vec<&str> = version.split('.').collect();
    ensure!(fields.len() == 4, "DriverVer version `{version}` is not w.x.y.z");
    for field in fields {
        ensure!(
            !field.is_empty() && field.len() <= 5 && field.bytes().all(|b| b.is_ascii_digit()),
            "DriverVer version `{version}`: `{field}` is not a decimal number"
        );
        let value: u32 = field.parse().with_context(|| format!("DriverVer version `{version}`"))?;
        ensure!(value < 65535, "DriverVer version `{version}`: {value} is not below 65535");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test that cannot set up fails loudly")]
mod tests {
    use super::*;

    const SMALL: &str = "\
[Version]
Signature = \"$Windows NT$\"
DriverVer = 01/01/2000,0.0.0.0 ; placeholder
CatalogFile = x.cat

[Manufacturer]
%Mfg% = Models, NT$ARCH$.10.0...25319

[Models.NT$ARCH$.10.0...25319]
%Desc% = Install, RL_X
";

    fn stamped(inx: &str) -> String {
        stamp(inx, "11/24/2026", "0.1.0.0", "amd64").expect("stamping a valid INX succeeds")
    }

    #[test]
    fn replaces_driver_ver_and_arch() {
        let out = stamped(SMALL);
        assert!(out.contains("DriverVer   = 11/24/2026,0.1.0.0\n"), "{out}");
        assert!(!out.contains("01/01/2000"), "{out}");
        assert!(out.contains("%Mfg% = Models, NTamd64.10.0...25319\n"), "{out}");
        assert!(out.contains("[Models.NTamd64.10.0...25319]\n"), "{out}");
        assert!(!out.contains("$ARCH$"), "{out}");
        // Everything else is untouched, including "$Windows NT$".
        assert!(out.contains("Signature = \"$Windows NT$\"\n"), "{out}");
        assert_eq!(out.lines().count(), SMALL.lines().count());
    }

    #[test]
    fn arch_token_is_case_insensitive() {
        let out = stamped("[Version]\nDriverVer=\n[M.nt$arch$]\n");
        assert!(out.contains("[M.ntamd64]"), "{out}");
    }

    #[test]
    fn adds_driver_ver_when_missing() {
        let out = stamped("[Version]\nSignature = \"$Windows NT$\"\n\n[Strings]\nA = \"b\"\n");
        let version: Vec<&str> = out.split("[Strings]").next().unwrap_or_default().lines().collect();
        assert!(version.contains(&"DriverVer   = 11/24/2026,0.1.0.0"), "{out}");
        // Also when [Version] is the last section and the file has no final newline.
        let out = stamped("[Version]\nSignature = \"$Windows NT$\"");
        assert!(out.ends_with("\nDriverVer   = 11/24/2026,0.1.0.0"), "{out:?}");
    }

    #[test]
    fn driver_ver_outside_version_section_is_left_alone() {
        let out = stamped("[Version]\nDriverVer = 01/01/2000,0.0.0.0\n[Install]\nDriverVer = 02/02/2002,1.0.0.0\n");
        assert!(out.contains("[Install]\nDriverVer = 02/02/2002,1.0.0.0\n"), "{out}");
        assert!(out.starts_with("[Version]\nDriverVer   = 11/24/2026,0.1.0.0\n"), "{out}");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let out = stamped(&SMALL.replace('\n', "\r\n"));
        assert!(out.contains("DriverVer   = 11/24/2026,0.1.0.0\r\n"), "{out:?}");
        assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
    }

    #[test]
    fn rejects_bad_inputs() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (SMALL, "2026-11-24", "0.1.0.0", "amd64", "MM/DD/YYYY"),
            (SMALL, "11/24/26", "0.1.0.0", "amd64", "MM/DD/YYYY"),
            (SMALL, "13/01/2026", "0.1.0.0", "amd64", "month 13"),
            (SMALL, "02/29/2026", "0.1.0.0", "amd64", "day 29"),
            (SMALL, "11/24/2026", "0.1.0", "amd64", "w.x.y.z"),
            (SMALL, "11/24/2026", "0.1.0.65535", "amd64", "below 65535"),
            (SMALL, "11/24/2026", "0.1.0.x", "amd64", "not a decimal"),
            (SMALL, "11/24/2026", "0.1.0.0", "x64", "unsupported architecture"),
            ("[Strings]\nA = \"b\"\n", "11/24/2026", "0.1.0.0", "amd64", "no [Version]"),
            ("[Version]\nDriverVer=\nDriverVer=\n", "11/24/2026", "0.1.0.0", "amd64", "more than one DriverVer"),
            ("[Version]\n; caf\u{e9}\n", "11/24/2026", "0.1.0.0", "amd64", "must be ASCII"),
        ];
        for (inx, date, version, arch, expected) in cases {
            let err = stamp(inx, date, version, arch).expect_err("bad input must be rejected");
            let message = format!("{err:#}");
            assert!(message.contains(expected), "`{message}` should mention `{expected}`");
        }
    }

    #[test]
    fn accepts_leap_day() {
        assert!(stamp(SMALL, "02/29/2028", "65534.0.0.1", "arm64").is_ok());
    }

    #[test]
    fn stamps_the_real_inx() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let inx = std::fs::read_to_string(root.join(INX_PATH)).expect("inf/rawlink.inx is readable");
        let out = stamped(&inx);
        assert!(out.contains("\nDriverVer   = 11/24/2026,0.1.0.0\n"));
        assert!(out.contains("NTamd64.10.0...25319"));
        assert!(!out.contains("$ARCH$"));
        assert!(out.contains("CatalogFile = rawlink.cat"));
    }
}
