//! `cargo xtask wine`: cross-builds the `rawlink` CLI for Windows (`rawlink.exe`, x86_64-pc-windows-gnu with
//! Debian's rustc-web, build-std over rust-web-src, linked by mingw-w64), puts it in the driver package, and
//! runs it under Debian's wine64: `--help` must work, and `adapters` must say the driver is not installed and
//! exit non-zero (Wine has no rawlink driver: the Windows backend's CreateFileW fails and the service manager
//! finds no RAWLINK service). Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's std imports; a
//! stand-in built from `xtask/wine/bcryptprimitives.c` sits next to the test copy of the exe only.

use crate::toolchain::{self, Tool};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

const TARGET: &str = "x86_64-pc-windows-gnu";
const WINE64: &str = "/usr/lib/wine/wine64";

/// What this command runs besides the driver toolchain.
pub const WINE_TOOLS: &[Tool<'static>] = &[
    Tool {
        program: "x86_64-w64-mingw32-gcc",
        probe: &["--version"],
        package: "gcc-mingw-w64-x86-64",
        purpose: "links rawlink.exe",
    },
    Tool {
        program: "x86_64-w64-mingw32-dlltool",
        probe: &["--version"],
        package: "binutils-mingw-w64-x86-64",
        purpose: "import libraries of rawlink.exe's raw-dylib imports",
    },
    Tool { program: WINE64, probe: &["--version"], package: "wine64", purpose: "runs rawlink.exe" },
];

fn wine(exe: &Path, prefix: &Path, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(WINE64)
        .arg(exe)
        .args(args)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .output()
        .context("running wine64")?;
    Ok((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

pub fn run(root: &Path) -> Result<()> {
    let tc = toolchain::ensure()?;
    toolchain::ensure_tools(WINE_TOOLS)?;
    let target_dir = root.join("target").join("windows-cli");
    eprintln!("xtask: building rawlink.exe with {} for {TARGET}", tc.rustc.display());
    let status = tc
        .build_std_cargo(root, &target_dir)
        .args(["--package", "rawlink", "--bin", "rawlink", "--release", "--target", TARGET])
        .args(["-Zbuild-std=std,panic_abort"])
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", "x86_64-w64-mingw32-gcc")
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS", "-C panic=abort")
        .status()
        .with_context(|| format!("running {}", tc.cargo.display()))?;
    if !status.success() {
        bail!("the rawlink.exe build failed ({status})");
    }
    let built = target_dir.join(TARGET).join("release").join("rawlink.exe");
    let pkg = crate::driver::package_dir(root);
    std::fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    std::fs::copy(&built, pkg.join("rawlink.exe")).with_context(|| format!("copying {}", built.display()))?;
    println!("xtask: {} ready", pkg.join("rawlink.exe").display());

    // Under Wine: a copy with the bcryptprimitives stand-in beside it, in a prefix of its own.
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
    let prefix = target_dir.join("wine-prefix");
    let (ok, text) = wine(&exe, &prefix, &["--help"])?;
    print!("$ wine64 rawlink.exe --help\n{text}");
    if !ok || !text.contains("Usage: rawlink.exe") {
        bail!("rawlink.exe --help failed under wine64");
    }
    let (ok, text) = wine(&exe, &prefix, &["adapters"])?;
    print!("$ wine64 rawlink.exe adapters\n{text}");
    if ok || !text.contains("the rawlink driver is not installed") || !text.contains("install.ps1") {
        bail!("rawlink.exe adapters under wine64 must say the driver is not installed and exit non-zero");
    }
    println!("xtask: rawlink.exe under wine64: --help works; `adapters` reports the missing driver and exits non-zero");
    Ok(())
}
