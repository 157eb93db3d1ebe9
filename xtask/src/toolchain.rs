//! The driver toolchain: Debian's rustc/cargo pair with the matching standard-library source, and an lld-link.
//!
//! rustup's toolchains have no `x86_64-pc-windows-msvc` target that can be fetched here, so the driver is built
//! with Debian's `rustc-web` and `-Zbuild-std`, which needs the library source of exactly that rustc version
//! (`rust-web-src`). Everything else in the workspace keeps using the normal stable toolchain.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian packages the cross-build needs: rustc + cargo, the matching library source, and rust-lld (lld-link).
pub const PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "rust-web-llvm"];

const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

/// A usable cross-build toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: PathBuf,
    pub cargo: PathBuf,
    /// An lld in lld-link mode (`rust-lld -flavor link` is selected through `-C linker-flavor=lld-link`).
    pub linker: PathBuf,
    /// `release:` of `rustc -vV`, e.g. `1.96.0`.
    pub version: String,
}

/// Finds the toolchain; installs what is missing when running as root, otherwise prints the exact command.
pub fn ensure() -> Result<Toolchain> {
    match probe() {
        Ok(tc) => Ok(tc),
        Err(first) => {
            eprintln!("xtask: driver toolchain incomplete: {first:#}");
            install()?;
            probe().context("the driver toolchain is still incomplete after installing it")
        }
    }
}

fn probe() -> Result<Toolchain> {
    let rustc = PathBuf::from(DEBIAN_RUSTC);
    let cargo = PathBuf::from(DEBIAN_CARGO);
    if !rustc.exists() || !cargo.exists() {
        bail!("Debian's rustc/cargo ({DEBIAN_RUSTC}, {DEBIAN_CARGO}) are not installed");
    }
    let vv = output(&rustc, &["-vV"])?;
    let version = vv
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .map(str::trim)
        .map(str::to_owned)
        .context("`rustc -vV` printed no `release:` line")?;
    let cargo_v = output(&cargo, &["--version"])?;
    let cargo_release = cargo_v.split_whitespace().nth(1).unwrap_or_default();
    if !same_minor(cargo_release, &version) {
        bail!("{DEBIAN_CARGO} is {cargo_release} but {DEBIAN_RUSTC} is {version}: install a matching cargo-web");
    }
    check_library_source(&rustc, &version)?;
    let linker = find_linker().context("no lld-link found (rust-lld, lld-link or lld-link-NN)")?;
    Ok(Toolchain { rustc, cargo, linker, version })
}

/// `1.96.0` and `1.96.2` are one pair; Debian ships rustc-web and cargo-web from one source package.
fn same_minor(a: &str, b: &str) -> bool {
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    !a.is_empty() && minor(a) == minor(b)
}

/// build-std reads `$(rustc --print sysroot)/lib/rustlib/src/rust/library`; it must be the source of exactly
/// this rustc. Debian installs the source as /usr/src/rustc-<version>; recent packages also add the symlink.
fn check_library_source(rustc: &Path, version: &str) -> Result<()> {
    let sysroot = PathBuf::from(output(rustc, &["--print", "sysroot"])?.trim());
    let link = sysroot.join("lib/rustlib/src/rust");
    let expected = PathBuf::from(format!("/usr/src/rustc-{version}"));
    if !expected.join("library/core").is_dir() {
        let found: Vec<String> = std::fs::read_dir("/usr/src")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("rustc-"))
                    .collect()
            })
            .unwrap_or_default();
        if found.is_empty() {
            bail!("the standard library source for rustc {version} is missing (package rust-web-src)");
        }
        bail!(
            "rustc is {version} but the installed library source is {}: rustc-web and rust-web-src must be the \
             same version (apt-get install --only-upgrade rustc-web cargo-web rust-web-src)",
            found.join(", ")
        );
    }
    match std::fs::canonicalize(link.join("library")) {
        Ok(p) if p == std::fs::canonicalize(expected.join("library"))? => Ok(()),
        Ok(p) => bail!(
            "{} points at {} but rustc is {version}; it must point at {}",
            link.display(),
            p.display(),
            expected.display()
        ),
        Err(_) => {
            if !is_root() {
                bail!(
                    "{} is missing; create it with: sudo ln -s {} {}",
                    link.display(),
                    expected.display(),
                    link.display()
                );
            }
            eprintln!("xtask: linking {} -> {}", link.display(), expected.display());
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(&expected, &link).with_context(|| format!("creating {}", link.display()))?;
            Ok(())
        }
    }
}

fn find_linker() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = ["rust-lld", "lld-link"].iter().filter_map(|n| which(n)).collect();
    // Versioned Debian packages: lld-link-NN, newest first.
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/bin")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix("lld-link-")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    candidates.extend(versioned.into_iter().map(|(_, p)| p));
    candidates.into_iter().next()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

fn is_root() -> bool {
    output(Path::new("id"), &["-u"]).map(|s| s.trim() == "0").unwrap_or(false)
}

fn install() -> Result<()> {
    let cmd = format!("apt-get update && apt-get install -y --no-install-recommends {}", PACKAGES.join(" "));
    if !is_root() {
        bail!("the driver toolchain comes from Debian packages; as root run:\n    {cmd}");
    }
    eprintln!("xtask: installing the driver toolchain from Debian: {}", PACKAGES.join(" "));
    run_quiet(Command::new("apt-get").arg("update"), "apt-get update")?;
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// Debian packages the host tests use beyond the toolchain: `ip` (iproute2) makes the network namespaces the
/// TAP tests run in. Priority "important", so minimal images may lack it.
pub const TEST_PACKAGES: &[(&str, &str)] = &[("ip", "iproute2")];

/// Installs what the tests need when it is missing (as root), or says how to.
pub fn ensure_test_tools() -> Result<()> {
    let missing: Vec<&str> =
        TEST_PACKAGES.iter().filter(|(bin, _)| which(bin).is_none()).map(|&(_, pkg)| pkg).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd = format!("apt-get update && apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root() {
        bail!("the tests need {}; as root run:\n    {cmd}", missing.join(", "));
    }
    eprintln!("xtask: installing what the tests need from Debian: {}", missing.join(" "));
    run_quiet(Command::new("apt-get").arg("update"), "apt-get update")?;
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn output(program: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {} {}", program.display(), args.join(" ")))?;
    if !out.status.success() {
        bail!("{} {} failed: {}", program.display(), args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::same_minor;

    #[test]
    fn version_pairs() {
        assert!(same_minor("1.96.0", "1.96.0"));
        assert!(same_minor("1.96.1", "1.96.0"));
        assert!(!same_minor("1.95.0", "1.96.0"));
        assert!(!same_minor("", "1.96.0"));
    }
}
