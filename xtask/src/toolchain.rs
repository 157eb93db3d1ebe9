//! The programs the build and the tests run, each with the Debian package that provides it.
//!
//! rustup's toolchains have no `x86_64-pc-windows-msvc` target that can be fetched here, so the driver is built
//! with Debian's `rustc-web` and `-Zbuild-std`, which needs the library source of exactly that rustc version
//! (`rust-web-src`), and linked by `rust-lld` in lld-link mode (`rust-web-llvm`). Everything else in the
//! workspace keeps using the normal stable toolchain.
//!
//! Every program is checked the way it is used: it must exist, every symbolic link on the way to it must resolve,
//! and it must answer its version query. What fails is reported by name with the package to install, and when
//! running as root the packages are installed (one `apt-get update`, one `apt-get install`) and everything is
//! checked again. A link that dangles is traced to what it points at, and the package that provides that file is
//! looked up in apt instead of being assumed: Debian's `rust-web-llvm` links `/usr/bin/rust-lld` to `lld-22`
//! without depending on the `lld-22` package.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// A program the build or the tests run.
#[derive(Debug, Clone, Copy)]
pub struct Tool<'a> {
    /// An absolute path, or a name looked up in `PATH`.
    pub program: &'a str,
    /// Arguments that make a working program print its version and exit 0.
    pub probe: &'a [&'a str],
    /// The Debian package that installs `program`.
    pub package: &'a str,
    /// What it is for, in the words of an error message.
    pub purpose: &'a str,
}

const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const RUST_LLD: &str = "/usr/bin/rust-lld";

/// What `cargo xtask build` runs. The library source (`rust-web-src`) is checked separately: it is a folder.
pub const BUILD_TOOLS: &[Tool<'static>] = &[
    Tool {
        program: DEBIAN_RUSTC,
        probe: &["-vV"],
        package: "rustc-web",
        purpose: "compiles the driver with build-std",
    },
    Tool { program: DEBIAN_CARGO, probe: &["--version"], package: "cargo-web", purpose: "drives the driver build" },
    Tool {
        program: RUST_LLD,
        probe: &["-flavor", "link", "--version"],
        package: "rust-web-llvm",
        purpose: "links rawlink.sys as lld-link",
    },
];

/// The package of the standard library source that build-std compiles.
const LIBRARY_SOURCE_PACKAGE: &str = "rust-web-src";

/// What the host tests run besides cargo. `ip` makes the network namespaces the TAP tests run in; `unshare`
/// gives the CLI test its own network namespace; `clang-22` compiles the C test driver (linked by the build's
/// `rust-lld`); `tshark` reads the rawlink CLI's captures in its tests.
pub const TEST_TOOLS: &[Tool<'static>] = &[
    Tool { program: "ip", probe: &["-V"], package: "iproute2", purpose: "network namespaces of the TAP tests" },
    Tool { program: "unshare", probe: &["--version"], package: "util-linux", purpose: "namespaces of the CLI test" },
    Tool {
        program: "clang-22",
        probe: &["--version"],
        package: "clang-22",
        purpose: "compiles the C protocol driver ndis-host's tests load (crates/ndis-host/tests/c_driver.rs)",
    },
    Tool {
        program: "tshark",
        probe: &["--version"],
        package: "tshark",
        purpose: "reads back the pcapng files the rawlink CLI writes",
    },
];

/// Debian's wine64 (the loader; `/usr/bin/wine64` is only a wrapper script around it).
pub const WINE64: &str = "/usr/lib/wine/wine64";

/// What building rawlink.exe and running it under Wine take (`cargo xtask test`, `cargo xtask wine`): the
/// mingw-w64 linker, its dlltool (raw-dylib import libraries) and wine64. Debian 12's packages; wine64 8.0
/// runs 64-bit programs without the 32-bit wine32.
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
    Tool { program: WINE64, probe: &["--version"], package: "wine64", purpose: "runs rawlink.exe in the tests" },
];

/// What `cargo xtask bench` runs besides the benchmark itself: callgrind counts the driver's instructions.
pub const BENCH_TOOLS: &[Tool<'static>] = &[Tool {
    program: "valgrind",
    probe: &["--version"],
    package: "valgrind",
    purpose: "counts the driver's own instructions per frame (callgrind) in `cargo xtask bench`",
}];

/// Checks (and as root installs) the bench's tools.
pub fn ensure_bench_tools() -> Result<()> {
    ensure_with(|| check_all(BENCH_TOOLS).map(drop))
}

/// The Debian package of libclang for `cargo xtask wdk-check` (bindgen loads it at run time), with clang's own
/// headers (stddef.h, ...) that the WDK headers include. Only that subcommand checks it; `test` does not need it.
pub const LIBCLANG_PACKAGE: &str = "libclang-dev";

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

/// One thing that keeps a tool from working, and the packages that would mend it (none: no package is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub packages: Vec<String>,
    /// The missing file a dangling link points at, whose provider is still to be looked up.
    pub dangling: Option<PathBuf>,
}

impl Problem {
    fn new(message: String, package: &str) -> Self {
        Self { message, packages: vec![package.to_owned()], dangling: None }
    }

    fn without_package(message: String) -> Self {
        Self { message, packages: Vec::new(), dangling: None }
    }
}

/// Finds the driver toolchain; installs what is missing when running as root, otherwise prints the exact command.
impl Toolchain {
    /// `cargo build` with Debian's cargo and rustc in `root`, into `target_dir`, with build-std allowed
    /// (RUSTC_BOOTSTRAP is confined to this one command) and none of the calling cargo's host-toolchain
    /// settings leaking in.
    pub fn build_std_cargo(&self, root: &Path, target_dir: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(&self.cargo);
        c.current_dir(root)
            .arg("build")
            .arg("--target-dir")
            .arg(target_dir)
            .env("RUSTC", &self.rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        c
    }
}

pub fn ensure() -> Result<Toolchain> {
    ensure_with(probe_toolchain)
}

/// Checks the programs the tests run (with the rawlink.exe cross tools and wine64: one install round for
/// all); installs what is missing when running as root.
pub fn ensure_test_tools() -> Result<()> {
    let all: Vec<Tool<'static>> = TEST_TOOLS.iter().chain(WINE_TOOLS).copied().collect();
    ensure_with(|| check_all(&all).map(drop))
}

/// Checks that libclang and clang's resource headers are installed (for bindgen in `wdk-check`); installs
/// libclang-dev when running as root.
pub fn ensure_libclang() -> Result<()> {
    ensure_with(check_libclang)
}

/// A `libclang*.so*` where clang-sys looks for it (`LIBCLANG_PATH`, the multiarch lib folder, `/usr/lib/llvm-*`),
/// and a clang resource folder with `stddef.h` (`/usr/lib/llvm-*/lib/clang/*/include`).
fn check_libclang() -> Result<(), Vec<Problem>> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LIBCLANG_PATH").map(PathBuf::from).into_iter().collect();
    dirs.push(PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    let llvm: Vec<PathBuf> = read_dir_names(Path::new("/usr/lib"))
        .into_iter()
        .filter(|n| n.starts_with("llvm-"))
        .map(|n| Path::new("/usr/lib").join(n).join("lib"))
        .collect();
    dirs.extend(llvm.iter().cloned());
    let library = dirs.iter().any(|d| {
        read_dir_names(d)
            .iter()
            .any(|n| n.starts_with("libclang") && n.contains(".so") && !n.starts_with("libclang-cpp"))
    });
    let headers = llvm.iter().any(|lib| {
        read_dir_names(&lib.join("clang")).iter().any(|v| lib.join("clang").join(v).join("include/stddef.h").is_file())
    });
    let mut problems = Vec::new();
    if !library {
        problems.push(Problem::new(
            format!("libclang (bindgen, for wdk-check) is not installed (package {LIBCLANG_PACKAGE})"),
            LIBCLANG_PACKAGE,
        ));
    }
    if !headers {
        problems.push(Problem::new(
            format!(
                "clang's resource headers (stddef.h, for wdk-check) are not installed (package {LIBCLANG_PACKAGE})"
            ),
            LIBCLANG_PACKAGE,
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Checks `tools`; installs what is missing when running as root.
pub fn ensure_tools(tools: &'static [Tool<'static>]) -> Result<()> {
    ensure_with(|| check_all(tools).map(drop))
}

/// Runs `probe`; on problems installs their packages (as root) and runs it again. An install can uncover the next
/// problem (installing rust-web-llvm brings the link that dangles), so this goes a few rounds while each one
/// installs something new.
fn ensure_with<T>(probe: impl Fn() -> Result<T, Vec<Problem>>) -> Result<T> {
    let mut installed: Vec<String> = Vec::new();
    loop {
        let problems = match probe() {
            Ok(found) => return Ok(found),
            Err(problems) => problems,
        };
        for p in &problems {
            eprintln!("xtask: {}", p.message);
        }
        // A dangling link's provider is looked up in apt's lists, which a new machine may not have yet.
        if is_root() {
            apt_update()?;
        }
        let problems = refine(problems);
        if let Some(p) = problems.iter().find(|p| p.packages.is_empty()) {
            bail!("{}", p.message);
        }
        let mut packages: Vec<String> = problems.iter().flat_map(|p| p.packages.iter().cloned()).collect();
        packages.sort();
        packages.dedup();
        if packages.iter().all(|p| installed.contains(p)) {
            let lines: Vec<String> = problems.iter().map(|p| format!("  - {}", p.message)).collect();
            bail!("still not usable after installing {}:\n{}", installed.join(" "), lines.join("\n"));
        }
        apt_install(&packages)?;
        installed.extend(packages);
    }
}

/// Adds the provider of every dangling link's target (known only after `apt-get update` on a new machine).
fn refine(problems: Vec<Problem>) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|mut p| match p.dangling.take() {
            Some(target) => {
                match provider_of(&target) {
                    Some(pkg) => {
                        p.message.push_str(&format!("; package {pkg} provides {}", target.display()));
                        p.packages = vec![pkg];
                    }
                    None => p.message.push_str(&format!(
                        "; no Debian package named after {} was found: install the package that provides it \
                         (`apt-file search {}`)",
                        target.display(),
                        target.display()
                    )),
                }
                p
            }
            None => p,
        })
        .collect()
}

fn probe_toolchain() -> Result<Toolchain, Vec<Problem>> {
    let found = check_all(BUILD_TOOLS).map_err(|mut problems| {
        // Without rustc the source's version cannot be matched yet, but a machine with no source at all needs
        // the package either way: one install round instead of two.
        if installed_library_sources().is_empty() {
            problems.push(Problem::new(
                format!("the standard library source is missing (package {LIBRARY_SOURCE_PACKAGE})"),
                LIBRARY_SOURCE_PACKAGE,
            ));
        }
        problems
    })?;
    let [rustc, cargo, linker] = <[PathBuf; 3]>::try_from(found).map_err(|_| Vec::new())?;
    let fail = |message: String, package: &str| vec![Problem::new(message, package)];
    let vv = output(&rustc, &["-vV"]).map_err(|e| fail(format!("{e:#}"), "rustc-web"))?;
    let version = vv
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .map(str::trim)
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("`{} -vV` printed no `release:` line", rustc.display()), "rustc-web"))?;
    let cargo_v = output(&cargo, &["--version"]).map_err(|e| fail(format!("{e:#}"), "cargo-web"))?;
    let cargo_release = cargo_v.split_whitespace().nth(1).unwrap_or_default();
    if !same_minor(cargo_release, &version) {
        return Err(fail(
            format!(
                "{} is {cargo_release} but {} is {version}: rustc-web and cargo-web must match",
                cargo.display(),
                rustc.display()
            ),
            "cargo-web",
        ));
    }
    check_library_source(&rustc, &version).map_err(|p| vec![p])?;
    Ok(Toolchain { rustc, cargo, linker, version })
}

/// Checks every tool; all problems at once, so that one install mends them all.
pub fn check_all(tools: &[Tool]) -> Result<Vec<PathBuf>, Vec<Problem>> {
    let (found, problems): (Vec<_>, Vec<_>) = tools.iter().map(check).partition(Result::is_ok);
    if problems.is_empty() {
        Ok(found.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(problems.into_iter().filter_map(Result::err).collect())
    }
}

/// Finds `tool`, follows its links and runs its version query.
pub fn check(tool: &Tool) -> Result<PathBuf, Problem> {
    let need = |message: String| Problem::new(message, tool.package);
    let Some(path) = locate(tool.program) else {
        return Err(need(format!("{} ({}) is not installed (package {})", tool.program, tool.purpose, tool.package)));
    };
    if let Some((link, target)) = first_dangling_link(&path) {
        let owner = owner_of(&link).map(|o| format!(" (from package {o})")).unwrap_or_default();
        // No package yet: `refine` looks up the provider of the missing target.
        return Err(Problem {
            message: format!(
                "{} ({}) is a link{owner} whose hop {} -> {} is missing",
                path.display(),
                tool.purpose,
                link.display(),
                target.display()
            ),
            packages: Vec::new(),
            dangling: Some(target),
        });
    }
    match Command::new(&path).args(tool.probe).output() {
        Ok(out) if out.status.success() => Ok(path),
        Ok(out) => Err(need(format!(
            "{} ({}) is installed but `{} {}` failed ({}): {}; reinstall package {}",
            path.display(),
            tool.purpose,
            path.display(),
            tool.probe.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            tool.package
        ))),
        Err(e) => Err(need(format!(
            "{} ({}) cannot be run: {e}; reinstall package {}",
            path.display(),
            tool.purpose,
            tool.package
        ))),
    }
}

/// An absolute path as it is, or the first `PATH` entry holding `program` — a dangling link counts as found, so
/// that it can be reported as such.
fn locate(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.symlink_metadata().is_ok().then_some(p);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.symlink_metadata().is_ok())
}

/// Follows `path`'s chain of symbolic links; the first link whose target does not exist, with that target.
pub fn first_dangling_link(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        let meta = at.symlink_metadata().ok()?;
        if !meta.file_type().is_symlink() {
            return None;
        }
        let to = std::fs::read_link(&at).ok()?;
        let target = match at.parent() {
            Some(dir) if to.is_relative() => dir.join(&to),
            _ => to,
        };
        if target.symlink_metadata().is_err() {
            return Some((at, target));
        }
        at = target;
    }
    None
}

/// The installed package that owns `path`, from dpkg's file lists.
fn owner_of(path: &Path) -> Option<String> {
    let out = Command::new("dpkg-query").arg("-S").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let owner = text.lines().next()?.split_once(':')?.0.trim().to_owned();
    (out.status.success() && !owner.is_empty()).then_some(owner)
}

/// The package that provides a missing file. dpkg knows only installed packages' files, so the missing file can
/// be none of theirs; Debian names the packages of versioned tools after the file they install (`lld-22` installs
/// `/usr/bin/lld-22`), so the file's name is asked of apt. The install is then checked by probing again.
fn provider_of(missing: &Path) -> Option<String> {
    let name = missing.file_name()?.to_str()?;
    let out = Command::new("apt-cache").args(["show", "--no-all-versions", name]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let package = text.lines().find_map(|l| l.strip_prefix("Package: "))?.trim().to_owned();
    (out.status.success() && package == name).then_some(package)
}

/// `1.96.0` and `1.96.2` are one pair; Debian ships rustc-web and cargo-web from one source package.
fn same_minor(a: &str, b: &str) -> bool {
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    !a.is_empty() && minor(a) == minor(b)
}

/// build-std reads `$(rustc --print sysroot)/lib/rustlib/src/rust/library`; it must be the source of exactly
/// this rustc. Debian installs the source as /usr/src/rustc-<version>; recent packages also add the symlink.
fn check_library_source(rustc: &Path, version: &str) -> Result<(), Problem> {
    let problem = |message: String| Problem::new(message, LIBRARY_SOURCE_PACKAGE);
    let sysroot = output(rustc, &["--print", "sysroot"]).map_err(|e| problem(format!("{e:#}")))?;
    let link = PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust");
    let expected = PathBuf::from(format!("/usr/src/rustc-{version}"));
    if !expected.join("library/core").is_dir() {
        let found = installed_library_sources();
        if found.is_empty() {
            return Err(problem(format!(
                "the standard library source for rustc {version} is missing (package {LIBRARY_SOURCE_PACKAGE})"
            )));
        }
        return Err(problem(format!(
            "rustc is {version} but the installed library source is {}: rustc-web and rust-web-src must be the \
             same version (apt-get install --only-upgrade rustc-web cargo-web rust-web-src)",
            found.join(", ")
        )));
    }
    let no_package = Problem::without_package;
    let canonical_expected = std::fs::canonicalize(expected.join("library")).map_err(|e| no_package(e.to_string()))?;
    match std::fs::canonicalize(link.join("library")) {
        Ok(p) if p == canonical_expected => Ok(()),
        Ok(p) => Err(no_package(format!(
            "{} points at {} but rustc is {version}; it must point at {}",
            link.display(),
            p.display(),
            expected.display()
        ))),
        Err(_) => {
            if !is_root() {
                return Err(no_package(format!(
                    "{} is missing; create it with: sudo ln -s {} {}",
                    link.display(),
                    expected.display(),
                    link.display()
                )));
            }
            eprintln!("xtask: linking {} -> {}", link.display(), expected.display());
            let made = link
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::os::unix::fs::symlink(&expected, &link));
            made.map_err(|e| no_package(format!("creating {}: {e}", link.display())))
        }
    }
}

/// The `rustc-<version>` folders of /usr/src (what rust-web-src installs).
fn installed_library_sources() -> Vec<String> {
    std::fs::read_dir("/usr/src")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("rustc-"))
                .collect()
        })
        .unwrap_or_default()
}

fn is_root() -> bool {
    output(Path::new("id"), &["-u"]).map(|s| s.trim() == "0").unwrap_or(false)
}

/// `apt-get update`, at most once per xtask run.
fn apt_update() -> Result<()> {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    eprintln!("xtask: apt-get update");
    run_quiet(Command::new("apt-get").arg("update"), "apt-get update")
}

/// Installs `packages` as root, or says how to.
fn apt_install(packages: &[String]) -> Result<()> {
    let cmd = format!("apt-get update && apt-get install -y --no-install-recommends {}", packages.join(" "));
    if !is_root() {
        bail!("these come from Debian packages; as root run:\n    {cmd}");
    }
    apt_update()?;
    eprintln!("xtask: installing from Debian: {}", packages.join(" "));
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
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
    use super::*;

    #[test]
    fn version_pairs() {
        assert!(same_minor("1.96.0", "1.96.0"));
        assert!(same_minor("1.96.1", "1.96.0"));
        assert!(!same_minor("1.95.0", "1.96.0"));
        assert!(!same_minor("", "1.96.0"));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-toolchain-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// The rust-web-llvm case: a relative link to a file that no package installed.
    #[test]
    fn a_dangling_link_is_reported_with_its_missing_target() {
        let dir = scratch("dangling");
        let link = dir.join("rust-lld");
        std::os::unix::fs::symlink("lld-99", &link).expect("link");
        let program = link.to_string_lossy();
        let tool = Tool { program: &program, probe: &["--version"], package: "rust-web-llvm", purpose: "links" };
        let p = check(&tool).expect_err("a dangling link is not a tool");
        assert!(p.packages.is_empty(), "the provider is looked up later: {p:?}");
        assert_eq!(p.dangling, Some(dir.join("lld-99")), "{}", p.message);
        assert_eq!(first_dangling_link(&link), Some((link.clone(), dir.join("lld-99"))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A chain of links whose last hop dangles names that hop.
    #[test]
    fn the_last_hop_of_a_chain_is_named() {
        let dir = scratch("chain");
        std::os::unix::fs::symlink("b", dir.join("a")).expect("link a");
        std::os::unix::fs::symlink(dir.join("c"), dir.join("b")).expect("link b");
        assert_eq!(first_dangling_link(&dir.join("a")), Some((dir.join("b"), dir.join("c"))));
        std::fs::write(dir.join("c"), b"").expect("file c");
        assert_eq!(first_dangling_link(&dir.join("a")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A program that exists but fails its version query is named with its package.
    #[test]
    fn a_failing_program_is_reported_with_its_package() {
        let tool = Tool { program: "false", probe: &[], package: "coreutils", purpose: "nothing" };
        let p = check(&tool).expect_err("false fails");
        assert_eq!(p.packages, vec!["coreutils".to_owned()]);
        assert!(p.message.contains("failed"), "{}", p.message);
        let tool = Tool { program: "no-such-program-rawlink", probe: &[], package: "nothing", purpose: "nothing" };
        let p = check(&tool).expect_err("absent");
        assert!(p.message.contains("not installed (package nothing)"), "{}", p.message);
    }
}
