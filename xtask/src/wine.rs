//! rawlink.exe: the `rawlink` CLI cross-built for Windows (x86_64-pc-windows-gnu with Debian's rustc-web,
//! build-std over rust-web-src, linked by mingw-w64), put in the driver package, and checked under Debian's
//! wine64 by `crates/rawlink/tests/wine.rs`: `--help` must work, and `adapters` must say the driver is not
//! installed and exit non-zero (Wine has no rawlink driver: the Windows backend's CreateFileW fails and the
//! service manager finds no RAWLINK service).
//!
//! `cargo xtask test` builds it and hands its path to that test (`RAWLINK_WINE_EXE`, with the wine64 to run it
//! in `RAWLINK_WINE64`), so a failure under Wine is a failed test in cargo's summary; `cargo xtask wine` does
//! the same for that one test. Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's std imports; a
//! stand-in built from `xtask/wine/bcryptprimitives.c` sits next to the test copy of the exe only.

use crate::toolchain;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TARGET: &str = "x86_64-pc-windows-gnu";
/// The cargo profile of rawlink.exe (the workspace Cargo.toml says why it is not `release`).
const PROFILE: &str = "windows-cli";

/// A built rawlink.exe.
#[derive(Debug)]
pub struct WineExe {
    /// The copy Wine runs, with the bcryptprimitives stand-in beside it (the package holds another).
    pub exe: PathBuf,
}

impl WineExe {
    /// What the wine test reads.
    pub fn test_env(&self) -> [(&'static str, PathBuf); 2] {
        [("RAWLINK_WINE_EXE", self.exe.clone()), ("RAWLINK_WINE64", PathBuf::from(toolchain::WINE64))]
    }
}

/// Builds rawlink.exe (installing the cross tools and wine64 as root), copies it into the package and
/// prepares the copy Wine runs.
pub fn build(root: &Path) -> Result<WineExe> {
    let tc = toolchain::ensure()?;
    toolchain::ensure_tools(toolchain::WINE_TOOLS)?;
    let target_dir = root.join("target").join("windows-cli");
    eprintln!("xtask: building rawlink.exe with {} for {TARGET} (profile {PROFILE})", tc.rustc.display());
    let started = Instant::now();
    let status = tc
        .build_std_cargo(root, &target_dir)
        .args(["--package", "rawlink", "--bin", "rawlink", "--profile", PROFILE, "--target", TARGET])
        .args(["-Zbuild-std=std,panic_abort"])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", "x86_64-w64-mingw32-gcc")
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS", "-C panic=abort")
        .status()
        .with_context(|| format!("running {}", tc.cargo.display()))?;
    if !status.success() {
        bail!("the rawlink.exe build failed ({status})");
    }
    eprintln!("xtask: rawlink.exe built in {:.0} s", started.elapsed().as_secs_f64());
    let built = target_dir.join(TARGET).join(PROFILE).join("rawlink.exe");
    let pkg = crate::driver::package_dir(root);
    std::fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    let packaged = pkg.join("rawlink.exe");
    std::fs::copy(&built, &packaged).with_context(|| format!("copying {}", built.display()))?;
    eprintln!("xtask: {} ready", packaged.display());

    // For Wine: a copy with the bcryptprimitives stand-in beside it.
    let run_dir = target_dir.join("wine-run");
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let exe = run_dir.join("rawlink.exe");
    std::fs::copy(&built, &exe).context("copying rawlink.exe for wine")?;
    let status = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(run_dir.join("bcryptprimitives.dll"))
        .arg(root.join("xtask").join("wine").join("bcryptprimitives.c"))
        .arg("-ladvapi32")
        .status()
        .context("building the bcryptprimitives stand-in")?;
    if !status.success() {
        bail!("building the bcryptprimitives stand-in failed ({status})");
    }
    Ok(WineExe { exe })
}

/// `cargo xtask wine`: builds rawlink.exe, then runs the wine test alone (its output shown).
pub fn run(root: &Path) -> Result<()> {
    let built = build(root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--package", "rawlink", "--test", "wine", "--", "--nocapture"])
        .envs(built.test_env())
        .status()
        .context("running the wine test")?;
    if !status.success() {
        bail!("rawlink.exe failed under wine64 ({status}); the test's output above says how");
    }
    Ok(())
}
