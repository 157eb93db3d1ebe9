//! `cargo xtask`: the one place that knows the toolchains.
//!
//! * `build` — cross-builds rawlink.sys with Debian's rustc + build-std and writes the package folder.
//! * `test`  — `build`, then the whole workspace's tests on the host with the normal stable toolchain.
//! * `demo`  — `build`, then shows what was built.
//! * `bench` — `build`, then the throughput benchmarks (`examples/bench.rs`) in release mode.

mod driver;
mod inf;
mod toolchain;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  build            cross-build rawlink.sys (Debian rustc + build-std) into target/rawlink-package/
  test [ARGS...]   build, then run every test of the workspace (ARGS go to `cargo test`)
  demo [--trace]   build, audit the image, then load it in ndis-host: DriverEntry, DriverUnload, verifier report
  bench [ARGS...]  build, then run the throughput benchmarks in ndis-host (release; ARGS: --seconds S, --frames N, --json PATH)
  toolchain        check (and as root install) the driver toolchain, then print it
";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root()?;
    match cmd.as_str() {
        "build" => {
            let pkg = driver::build_and_package(&root)?;
            println!("xtask: package ready in {}", pkg.dir.display());
            Ok(())
        }
        "test" => {
            let pkg = driver::build_and_package(&root)?;
            toolchain::ensure_test_tools()?;
            host_cargo_test(&root, &pkg.dir, &rest)
        }
        "demo" => {
            let pkg = driver::build_and_package(&root)?;
            driver::describe(&pkg)?;
            demo(&root, &pkg.sys, &rest)
        }
        "bench" => {
            let pkg = driver::build_and_package(&root)?;
            bench(&root, &pkg.sys, &rest)
        }
        "toolchain" => {
            let tc = toolchain::ensure()?;
            println!("rustc   {} ({})", tc.rustc.display(), tc.version);
            println!("cargo   {}", tc.cargo.display());
            println!("linker  {}", tc.linker.display());
            Ok(())
        }
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// The workspace root: xtask lives in `<root>/xtask`.
fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask has no parent directory")
}

/// Runs the host test suite with the cargo that started xtask (the normal stable toolchain), pointing the
/// integration tests at the freshly built package.
fn host_cargo_test(root: &Path, package_dir: &Path, extra: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("RAWLINK_PACKAGE_DIR", package_dir)
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

/// Audits the image, then runs it once in ndis-host (DriverEntry, DriverUnload) and prints the report.
fn demo(root: &Path, sys: &Path, extra: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let host = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let status = Command::new(&cargo)
            .current_dir(root)
            .args(["run", "--quiet", "--package", "ndis-host", "--"])
            .args(args)
            .status()
            .context("running ndis-host")?;
        if !status.success() {
            bail!("ndis-host failed ({status})");
        }
        Ok(())
    };
    println!("\n== audit ==");
    host(&["audit".as_ref(), sys.as_os_str()])?;
    println!("\n== run in ndis-host ==");
    let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), "--once".as_ref(), sys.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    host(&args)
}

/// Runs `examples/bench.rs` (the root package's example) in release mode on the built driver.
fn bench(root: &Path, sys: &Path, extra: &[String]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["run", "--quiet", "--release", "--package", "rawlink-driver", "--example", "bench", "--"])
        .arg(sys)
        .args(extra)
        .status()
        .context("running the benchmarks")?;
    if !status.success() {
        bail!("the benchmarks failed ({status})");
    }
    Ok(())
}
