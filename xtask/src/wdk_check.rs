//! `cargo xtask wdk-check --wdk-include DIR`: the `wdk` feature's layout proof on Linux.
//!
//! On Windows, `cargo make` builds with `--features wdk`: wdk-sys's build script generates the kernel types and
//! `build/wdk.rs` the NDIS types, both with `wdk_build::BuilderExt::wdk_default`, and `src/wdk_check.rs` compares
//! ndis-sys's layouts with them at compile time. wdk-build does not compile on Linux, so this command spells its
//! default settings out (wdk-build 0.6.0, `src/bindgen.rs` and `Config::{include_paths, preprocessor_definitions,
//! wdk_bindgen_compiler_flags}` for a WDM driver on x86-64) and runs the same generation with Debian's libclang over
//! a WDK `Include/<version>` folder:
//! * `wdk-sys.rs`: the types of `ntifs.h`, `ntddk.h`, `ntstrsafe.h` (wdk-sys 0.5's `generate_types` for WDM);
//! * `wdk_ndis.rs`: `build/ndis_bindings.rs`, the code `build/wdk.rs` runs.
//!
//! Then it writes a scratch workspace under `target/wdk-check/` (a `wdk-sys` crate holding the first file, and a
//! `proof` crate that compiles `src/wdk_check.rs` with ndis-sys) and checks it for `x86_64-pc-windows-msvc` with
//! the driver's toolchain (Debian rustc, build-std core), so that `c_long` and friends are Windows's. Every failed
//! assertion and every missing type or field is reported.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::toolchain;

#[path = "../../build/ndis_bindings.rs"]
#[allow(dead_code, reason = "shared with the build script")]
mod ndis_bindings;

/// wdk-build 0.6's `Config::preprocessor_definitions` for `CpuArchitecture::Amd64` + `DriverConfig::Wdm`.
const DEFINES: &[&str] = &["_WIN64", "_AMD64_", "AMD64", "_KERNEL_MODE"];

/// wdk-build 0.6's `Config::wdk_bindgen_compiler_flags`, and `-fno-builtin` from `wdk_default`.
const CLANG_FLAGS: &[&str] = &[
    "-fms-compatibility",
    "-fms-extensions",
    "-fdelayed-template-parsing",
    "--warn-=no-nonportable-include-path",
    "--warn-=no-pragma-pack",
    "--warn-=no-ignored-attributes",
    "--warn-=no-ignored-pragma-intrinsic",
    "--warn-=no-visibility",
    "--warn-=no-switch",
    "--warn-=no-comment",
    "--warn-=no-deprecated-declarations",
    "--warn-=no-invalid-token-paste",
    "--warn-=no-microsoft",
    "-fno-builtin",
];

/// The target bindgen passes to clang in a build script for the driver (`TARGET`).
const TARGET: &str = "x86_64-pc-windows-msvc";

/// wdk-sys 0.5's base headers for WDM (wdk-build `Config::base_headers`).
const WDK_SYS_HEADERS: &[&str] = &["ntifs.h", "ntddk.h", "ntstrsafe.h"];

/// wdk-build 0.6's `rust-version` (1.91.0) is what `get_rust_target` hands bindgen; its edition is 2024.
const RUST_TARGET_MINOR: u64 = 91;

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let include = match args {
        [flag, dir] if flag == "--wdk-include" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask wdk-check --wdk-include <WDK Include/10.0.x.y folder, holding km and shared>"),
    };
    toolchain::ensure_libclang()?;
    let out = root.join("target").join("wdk-check");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut include_dirs = include_dirs(&include)?;
    include_dirs.push(case_aliases(&include_dirs, &out.join("case-aliases"))?);

    println!("xtask: bindgen (wdk-build 0.6 defaults, {TARGET}) over {}", include.display());
    let new_builder = || -> Result<bindgen::Builder, Box<dyn std::error::Error>> { Ok(wdk_default(&include_dirs)?) };
    let headers: String = WDK_SYS_HEADERS.iter().map(|h| format!("#include \"{h}\"\n")).collect();
    let wdk_sys = new_builder()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_codegen_config(bindgen::CodegenConfig::TYPES)
        .header_contents("types-input.h", &headers)
        .generate()
        .context("bindgen over ntifs.h/ntddk.h/ntstrsafe.h (the wdk-sys types)")?
        .to_string();
    let (wdk_ndis, ndis_h) = ndis_bindings::generate(&new_builder, &include_dirs, &out)
        .map_err(|e| anyhow::anyhow!("bindgen over ndis.h: {e}"))?;
    println!("xtask: NDIS types from {}", ndis_h.display());

    write_workspace(root, &out, &wdk_sys, &wdk_ndis)?;
    check(&out)
}

/// wdk-build 0.6's `Config::include_paths` for WDM: `km/crt`, `km`, `shared` (each must exist).
fn include_dirs(include: &Path) -> Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = ["km/crt", "km", "shared"].iter().map(|d| include.join(d)).collect();
    for dir in &dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder: --wdk-include must name a WDK Include/<version> folder", dir.display());
        }
    }
    dirs.iter().map(|d| d.canonicalize().with_context(|| d.display().to_string())).collect()
}

/// Windows file names are case-insensitive and the WDK relies on it (`sal.h` includes `ConcurrencySal.h`, the file
/// is `concurrencysal.h`): a folder of links under the spellings the headers use, searched last.
fn case_aliases(include_dirs: &[PathBuf], dir: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    let mut headers = Vec::new();
    for inc in include_dirs {
        for entry in std::fs::read_dir(inc).with_context(|| inc.display().to_string())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_file() {
                files.entry(name.to_lowercase()).or_insert_with(|| entry.path());
                headers.push(entry.path());
            }
        }
    }
    let mut made = 0;
    for header in &headers {
        let text = String::from_utf8_lossy(&std::fs::read(header)?).into_owned();
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix('#') else { continue };
            let Some(rest) = rest.trim_start().strip_prefix("include") else { continue };
            let rest = rest.trim();
            let Some(name) = rest.get(1..).and_then(|r| r.split(['"', '>']).next()) else { continue };
            if name.contains('/') || name.contains('\\') || name.is_empty() {
                continue;
            }
            let exact = include_dirs.iter().any(|d| d.join(name).is_file());
            let link = dir.join(name);
            if exact || link.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(target) = files.get(&name.to_lowercase()) {
                std::os::unix::fs::symlink(target, &link).with_context(|| format!("linking {}", link.display()))?;
                made += 1;
            }
        }
    }
    println!("xtask: {made} case aliases for the WDK's #include spellings in {}", dir.display());
    Ok(dir.to_path_buf())
}

/// `wdk_build::BuilderExt::wdk_default` (wdk-build 0.6.0, src/bindgen.rs) for a WDM driver, minus the callbacks
/// that only matter in a build script (cargo rerun lines) or for WDF (the function table name).
fn wdk_default(include_dirs: &[PathBuf]) -> Result<bindgen::Builder> {
    let mut builder = bindgen::Builder::default()
        .use_core()
        .derive_default(true)
        .generate_cstr(true)
        .detect_include_paths(false)
        .clang_arg(format!("--target={TARGET}"));
    for dir in include_dirs {
        builder = builder.clang_arg(format!("--include-directory={}", dir.display()));
    }
    for define in DEFINES {
        builder = builder.clang_arg(format!("--define-macro={define}"));
    }
    builder = builder.clang_args(CLANG_FLAGS);
    for item in [
        "ExAllocatePoolWithTag",
        "ExAllocatePoolWithQuotaTag",
        "ExAllocatePoolWithTagPriority",
        "ExAllocatePool",
        "USBD_CalculateUsbBandwidth",
        "USBD_CreateConfigurationRequest",
        "USBD_Debug_LogEntry",
        "USBD_GetUSBDIVersion",
        "USBD_ParseConfigurationDescriptor",
        "USBD_QueryBusTime",
        "USBD_RegisterHcFilter",
        "IOCTL_USB_DIAG_IGNORE_HUBS_OFF",
        "IOCTL_USB_DIAG_IGNORE_HUBS_ON",
        "IOCTL_USB_DIAGNOSTIC_MODE_OFF",
        "IOCTL_USB_DIAGNOSTIC_MODE_ON",
        "IOCTL_USB_GET_HUB_CAPABILITIES",
        "IOCTL_USB_HCD_DISABLE_PORT",
        "IOCTL_USB_HCD_ENABLE_PORT",
        "IOCTL_USB_HCD_GET_STATS_1",
        "IOCTL_USB_HCD_GET_STATS_2",
        "IOCTL_USB_RESET_HUB",
        ".*MCG_CAP(?:__bindgen.*)?",
        ".*WHEA_XPF_MCA_SECTION",
        ".*WHEA_ARM_BUS_ERROR(?:__bindgen.*)?",
        ".*WHEA_ARM_PROCESSOR_ERROR",
        ".*WHEA_ARM_CACHE_ERROR",
        ".*ADDRESS0_OWNERSHIP_ACQUIRE",
        ".*USBDEVICE_ABORTIO",
        ".*USBDEVICE_STARTIO",
        ".*USBDEVICE_TREE_PURGEIO",
    ] {
        builder = builder.blocklist_item(item);
    }
    let target = bindgen::RustTarget::stable(RUST_TARGET_MINOR, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(builder
        .opaque_type("_KGDTENTRY64")
        .opaque_type("_KIDTENTRY64")
        .no_default(".*tagMONITORINFOEXA")
        .must_use_type("NTSTATUS")
        .must_use_type("HRESULT")
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .formatter(bindgen::Formatter::Prettyplease)
        .rust_target(target)
        .rust_edition(bindgen::RustEdition::Edition2024))
}

/// `target/wdk-check/`: its own workspace, with the generated files and the proof crate.
fn write_workspace(root: &Path, out: &Path, wdk_sys: &str, wdk_ndis: &str) -> Result<()> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    let ndis_sys = root.join("crates").join("ndis-sys");
    let wdk_check = root.join("src").join("wdk_check.rs");
    write("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"wdk-sys\", \"proof\"]\n")?;
    write(
        "wdk-sys/Cargo.toml",
        "[package]\nname = \"wdk-sys\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\npath = \"lib.rs\"\n",
    )?;
    write(
        "wdk-sys/lib.rs",
        "//! wdk-sys's types as its build script generates them (cargo xtask wdk-check).\n#![no_std]\n\
         #![allow(warnings, clippy::all)]\ninclude!(\"bindings.rs\");\n",
    )?;
    write("wdk-sys/bindings.rs", wdk_sys)?;
    write("proof/wdk_ndis.rs", wdk_ndis)?;
    write(
        "proof/Cargo.toml",
        &format!(
            "[package]\nname = \"wdk-check-proof\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\nbuild = \"build.rs\"\n\n\
             [lib]\npath = \"lib.rs\"\n\n[dependencies]\nndis-sys = {{ path = {:?} }}\nwdk-sys = {{ path = \"../wdk-sys\" }}\n",
            ndis_sys.display().to_string()
        ),
    )?;
    write(
        "proof/build.rs",
        "//! Puts the NDIS bindings where src/wdk_check.rs includes them from ($OUT_DIR/wdk_ndis.rs).\nfn main() {\n    \
         println!(\"cargo:rerun-if-changed=wdk_ndis.rs\");\n    let out = std::env::var(\"OUT_DIR\").expect(\"OUT_DIR\");\n    \
         std::fs::copy(\"wdk_ndis.rs\", std::path::Path::new(&out).join(\"wdk_ndis.rs\")).expect(\"copy\");\n}\n",
    )?;
    write(
        "proof/lib.rs",
        &format!(
            "//! src/wdk_check.rs, compiled against the generated bindings (cargo xtask wdk-check).\n#![no_std]\n\
             #[path = {:?}]\nmod wdk_check;\n",
            wdk_check.display().to_string()
        ),
    )?;
    Ok(())
}

/// `cargo check` of the proof for the Windows target; reports every error.
fn check(out: &Path) -> Result<()> {
    let tc = toolchain::ensure()?;
    println!("xtask: checking src/wdk_check.rs against them ({TARGET}, {})", tc.rustc.display());
    let output = Command::new(&tc.cargo)
        .current_dir(out)
        .args(["check", "--quiet", "--package", "wdk-check-proof", "--target", TARGET, "-Zbuild-std=core"])
        .args(["--message-format", "short"])
        .env("RUSTC", &tc.rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .context("running cargo check on the proof")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("error") || l.contains("warning:"))
        .filter(|l| !l.starts_with("error: could not compile") && !l.contains("warnings emitted"))
        .collect();
    for line in &problems {
        println!("  {line}");
    }
    if !output.status.success() {
        let errors = problems.iter().filter(|l| l.contains("error")).count();
        bail!("the layout proof fails against {}: {errors} errors (listed above)", out.display());
    }
    println!("xtask: wdk-check passed: every layout in src/wdk_check.rs equals the WDK's");
    Ok(())
}
