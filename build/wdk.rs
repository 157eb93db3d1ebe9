//! The build script's Windows part: only with `--features wdk`, which cargo-make's flow turns on (Makefile.toml).
//!
//! 1. `wdk_build::configure_wdk_binary_build()` emits the WDM link configuration derived from
//!    `[package.metadata.wdk.driver-model]` (wdk-build 0.6, docs.rs `wdk_build::configure_wdk_binary_build`).
//! 2. bindgen, configured by `wdk_build::BuilderExt::wdk_default` (the installed WDK's include paths, `_KERNEL_MODE`,
//!    `_AMD64_`, MSVC-compatible clang flags), reads `ntddk.h` + `ndis.h` with `NDIS_WDM` and `NDIS630` and writes
//!    the NDIS types to `$OUT_DIR/wdk_ndis.rs`. `src/wdk_check.rs` compares ndis-sys's hand-written layouts with
//!    them, and the kernel types with wdk-sys's, at compile time.
//!
//! This file is never compiled on Linux: wdk-build has a `compile_error!` for non-Windows hosts. The generation
//! itself is `build/ndis_bindings.rs`, which `cargo xtask wdk-check` runs on Linux with wdk-build's default
//! settings spelled out; every WDK quirk it handles is named where it is handled.

use std::env;
use std::error::Error;
use std::fs;
use std::path::PathBuf;

use wdk_build::BuilderExt as _;

#[path = "ndis_bindings.rs"]
mod ndis_bindings;

pub fn configure() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build/wdk.rs");
    println!("cargo:rerun-if-changed=build/ndis_bindings.rs");
    wdk_build::configure_wdk_binary_build()?;

    let config = wdk_build::Config::from_env_auto()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let include_dirs: Vec<PathBuf> = config.include_paths()?.collect();
    let new_builder = || -> Result<bindgen::Builder, Box<dyn Error>> { Ok(bindgen::Builder::wdk_default(&config)?) };
    let (text, ndis_h) = ndis_bindings::generate(&new_builder, &include_dirs, &out_dir)?;
    println!("cargo:rerun-if-changed={}", ndis_h.display());
    fs::write(out_dir.join("wdk_ndis.rs"), text)?;
    Ok(())
}
