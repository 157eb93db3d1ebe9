//! `cargo xtask`: the one place that knows the toolchains.
//!
//! * `build` — cross-builds rawlink.sys with Debian's rustc + build-std and writes the package folder.
//! * `test`  — `build` and rawlink.exe (the CLI for Windows), then the whole workspace's tests on the host with
//!   the normal stable toolchain; one of them runs rawlink.exe under wine64.
//! * `demo`  — `build`, audit and a load/unload in ndis-host, then the `rawlink` CLI against a Linux peer over a
//!   TAP in a network namespace of its own (as root; else the in-process wire): ARP, ping, a pcapng of it.
//! * `bench` — `build`, then the throughput benchmarks (`examples/bench.rs`) in release mode.
//! * `wdk-check --wdk-include DIR` — the `wdk` feature's layout proof against a WDK's headers, on Linux.
//! * `fuzz`  — `build`, then the seeded random test of the device interface (`tests/fuzz.rs`) for N operations.

mod demo;
mod driver;
mod inf;
mod toolchain;
mod wdk_check;
mod wine;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  build            cross-build rawlink.sys (Debian rustc + build-std) into target/rawlink-package/
  test [ARGS...]   build rawlink.sys and rawlink.exe, then run every test of the workspace (ARGS go to
                   `cargo test`), rawlink.exe's under wine64 among them
  demo [--trace]   build, audit, load/unload in ndis-host, then through the rawlink CLI and the driver ARP and
                   ping a Linux peer on a TAP in a namespace of its own (root; else the in-process wire)
  bench [ARGS...]  build, then run the throughput benchmarks in ndis-host (release; valgrind for instruction
                   counts; ARGS: --seconds S, --frames N, --json PATH, --svg PATH, --no-valgrind)
  wine             cross-build rawlink.exe (the CLI) into the package and run its wine64 test alone
  fuzz [--ops N] [--seed S]
                   build, then N (default 1000000) random operations on the device from seed S (decimal or 0x…)
  toolchain        check (and as root install) the driver toolchain, then print it
  wdk-check --wdk-include DIR
                   the `wdk` feature's bindgen pass (wdk-build 0.6 defaults, Debian's libclang) over a WDK
                   Include/<version> folder, then src/wdk_check.rs compiled against it; reports each mismatch
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
            let exe = wine::build(&root)?;
            host_cargo_test(&root, &pkg.dir, &rest, &exe)
        }
        "demo" => {
            let pkg = driver::build_and_package(&root)?;
            driver::describe(&pkg)?;
            demo(&root, &pkg.sys, &rest)?;
            let cli = demo::build_cli(&root)?;
            demo::run(&root, &cli, &pkg.sys)
        }
        "bench" => {
            let pkg = driver::build_and_package(&root)?;
            toolchain::ensure_bench_tools()?;
            bench(&root, &pkg.sys, &rest)
        }
        "wdk-check" => wdk_check::run(&root, &rest),
        "wine" => wine::run(&root),
        "fuzz" => {
            let (ops, seed) = fuzz_args(&rest)?;
            let pkg = driver::build_and_package(&root)?;
            toolchain::ensure_tools(toolchain::TEST_TOOLS)?;
            fuzz(&root, &pkg.dir, &ops, &seed)
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
/// rawlink.exe goes to `crates/rawlink/tests/wine.rs`, which runs it under wine64.
fn host_cargo_test(root: &Path, package_dir: &Path, extra: &[String], exe: &wine::WineExe) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("RAWLINK_PACKAGE_DIR", package_dir)
        .envs(exe.test_env())
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
    host(&["audit".as_ref(), "--strict".as_ref(), sys.as_os_str()])?;
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

/// `--ops N --seed S` of `cargo xtask fuzz`, checked here so a typo is named before anything is built.
fn fuzz_args(args: &[String]) -> Result<(String, String)> {
    let (mut ops, mut seed) = ("1000000".to_owned(), "0x5EED0014".to_owned());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--ops" => &mut ops,
            "--seed" => &mut seed,
            other => bail!("fuzz: unknown argument `{other}` (expected --ops N, --seed S)"),
        };
        *slot = it.next().with_context(|| format!("fuzz: {a} needs a value"))?.clone();
    }
    let number = |v: &str| match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).is_ok(),
        None => v.parse::<u64>().is_ok(),
    };
    if !number(&ops) {
        bail!("fuzz: --ops `{ops}` is not a number");
    }
    if !number(&seed) {
        bail!("fuzz: --seed `{seed}` is not a number (decimal or 0x…)");
    }
    Ok((ops, seed))
}

/// Runs the ignored long test of `tests/fuzz.rs` on the built package; it prints ops/s, the statuses seen and
/// the verdict.
fn fuzz(root: &Path, package_dir: &Path, ops: &str, seed: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--package", "rawlink-driver", "--test", "fuzz", "--", "--ignored", "--exact"])
        .args(["long_random_run", "--nocapture"])
        .env("RAWLINK_PACKAGE_DIR", package_dir)
        .env("RAWLINK_FUZZ_OPS", ops)
        .env("RAWLINK_FUZZ_SEED", seed)
        .status()
        .context("running the fuzz test")?;
    if !status.success() {
        bail!("fuzz: failed ({status}); the message above names the seed and operation to replay");
    }
    Ok(())
}
