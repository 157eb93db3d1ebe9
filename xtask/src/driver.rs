//! Cross-building rawlink.sys and writing the package folder.

use crate::{inf, toolchain};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-pc-windows-msvc";
/// Package name of the driver in the workspace.
const DRIVER_PACKAGE: &str = "rawlink-driver";

/// The package folder: what `cargo make` produces on Windows, minus the catalog and signature.
#[derive(Debug)]
pub struct Package {
    pub dir: PathBuf,
    pub sys: PathBuf,
    pub pdb: PathBuf,
    pub inf: PathBuf,
}

/// Where the package goes: `RAWLINK_PACKAGE_DIR`, else `target/rawlink-package`.
pub fn package_dir(root: &Path) -> PathBuf {
    std::env::var_os("RAWLINK_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("rawlink-package"))
}

pub fn build_and_package(root: &Path) -> Result<Package> {
    let tc = toolchain::ensure()?;
    let target_dir = root.join("target").join("driver");
    eprintln!("xtask: building rawlink.sys with {} (rustc {}) for {TARGET}", tc.rustc.display(), tc.version);
    // RUSTC_BOOTSTRAP is confined to this one command: build-std is unstable, and only the driver needs it.
    let status = tc
        .build_std_cargo(root, &target_dir)
        .args(["--package", DRIVER_PACKAGE, "--lib", "--release", "--target", TARGET])
        .args(["-Zbuild-std=core,alloc,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER", &tc.linker)
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_RUSTFLAGS",
            "-C target-feature=+crt-static -C linker-flavor=lld-link -C panic=abort",
        )
        .status()
        .with_context(|| format!("running {}", tc.cargo.display()))?;
    if !status.success() {
        bail!("the driver build failed ({status})");
    }
    let out = target_dir.join(TARGET).join("release");
    let dir = package_dir(root);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pkg = Package { sys: dir.join("rawlink.sys"), pdb: dir.join("rawlink.pdb"), inf: dir.join("rawlink.inf"), dir };
    copy(&out.join("rawlink.dll"), &pkg.sys)?;
    copy(&out.join("rawlink.pdb"), &pkg.pdb)?;
    let inx_path = root.join(inf::INX_PATH);
    let inx = std::fs::read_to_string(&inx_path).with_context(|| format!("reading {}", inx_path.display()))?;
    let stamped = inf::stamp(&inx, &driver_date(root), &driver_version(), "amd64")?;
    std::fs::write(&pkg.inf, stamped).with_context(|| format!("writing {}", pkg.inf.display()))?;
    Ok(pkg)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// DriverVer's version: the crate version with a fourth field, as Windows wants `a.b.c.d`.
fn driver_version() -> String {
    format!("{}.0", env!("CARGO_PKG_VERSION"))
}

/// DriverVer's date (MM/DD/YYYY): the date of the commit being built, so that rebuilding the same commit
/// gives the same INF; today's date outside a git checkout.
fn driver_date(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%cd", "--date=format:%m/%d/%Y"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| s.len() == 10)
        .unwrap_or_else(|| {
            Command::new("date")
                .arg("+%m/%d/%Y")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|_| "01/01/2026".to_owned())
        })
}

/// Prints what was built.
pub fn describe(pkg: &Package) -> Result<()> {
    for p in [&pkg.sys, &pkg.pdb, &pkg.inf] {
        let len = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?.len();
        println!("{:>10} bytes  {}", len, p.display());
    }
    Ok(())
}
