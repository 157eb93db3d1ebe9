//! The NDIS half of the `wdk` layout proof: bindgen over `ntddk.h` + `ndis.h` (with `NDIS_WDM` and `NDIS630`),
//! producing the plain `#[repr(C)]` types `src/wdk_check.rs` compares ndis-sys with.
//!
//! Shared by the build script on Windows (`build/wdk.rs`, with the builder of `wdk_build::BuilderExt::wdk_default`)
//! and by `cargo xtask wdk-check` on Linux (xtask spells wdk-build's default settings out), so that both run the
//! same generation.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// ndis.h needs `NDIS_WDM` and one `NDIS6xx` protocol define; 6.30 is the oldest contract the driver registers.
pub const NDIS_DEFINES: &str = "#define NDIS_WDM 1\n#define NDIS630 1\n";

/// The NDIS types, and what they pull in. Anchored by bindgen.
const ALLOWLIST: &[&str] = &["_?(NDIS|NET)_.*", "_?LOCK_STATE_EX"];

/// Helper types bindgen emits with `unsafe` accessors; a struct using one is generated opaque instead (its size and
/// alignment stay exact, its fields are not compared).
const UNSAFE_HELPERS: &[&str] = &["__BindgenBitfieldUnit", "__IncompleteArrayField", "__BindgenUnionField"];

/// The generated text of `wdk_ndis.rs`, and the WDK's ndis.h it was read from. `new_builder` gives a builder with
/// the WDK's include paths, defines and clang flags (wdk-build's `wdk_default`); `include_dirs` are the same
/// include directories, searched for ndis.h; a patched copy of it is written under `scratch`.
pub fn generate(
    new_builder: &dyn Fn() -> Result<bindgen::Builder, Box<dyn Error>>,
    include_dirs: &[PathBuf],
    scratch: &Path,
) -> Result<(String, PathBuf), Box<dyn Error>> {
    let (original, ndis_h) = patched_ndis_header(include_dirs, scratch)?;
    // Included by absolute path so that the patched copy, not the WDK's, is the one parsed; its own #includes
    // still resolve through the WDK include directories.
    let header =
        format!("{NDIS_DEFINES}#include <ntddk.h>\n#include \"{}\"\n", ndis_h.display().to_string().replace('\\', "/"));

    let mut opaque: Vec<String> = Vec::new();
    for _ in 0..4 {
        let mut builder = new_builder()?
            .header_contents("rawlink_wdk_ndis.h", &header)
            .derive_default(false)
            .derive_debug(false)
            .layout_tests(false)
            .generate_comments(false)
            .wrap_unsafe_ops(true);
        for pattern in ALLOWLIST {
            builder = builder.allowlist_type(pattern);
        }
        for name in &opaque {
            builder = builder.opaque_type(name);
        }
        let text = builder.generate()?.to_string();
        let more = types_using_unsafe_helpers(&text);
        if more.is_empty() {
            if let Some(line) = text.lines().find(|l| l.contains("unsafe {") || l.contains("unsafe fn ")) {
                return Err(
                    format!("the NDIS bindings contain unsafe code (`{}`); make its type opaque", line.trim()).into()
                );
            }
            return Ok((text, original));
        }
        opaque.extend(more);
    }
    Err(format!("bindgen kept emitting unsafe helper types; opaque so far: {opaque:?}").into())
}

/// Names of the structs and unions in `text` that have a field of an [`UNSAFE_HELPERS`] type.
fn types_using_unsafe_helpers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub struct ").or_else(|| line.strip_prefix("pub union ")) {
            current = rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next();
        } else if line.starts_with("pub ") && line.contains(':') && UNSAFE_HELPERS.iter().any(|h| line.contains(h)) {
            if let Some(name) = current {
                if !found.iter().any(|f| f == name) {
                    found.push(name.to_owned());
                }
            }
        }
    }
    found
}

/// A copy of the WDK's ndis.h in which `NDIS_API_VERSION_AVAILABLE(major, minor)` expands its arguments before
/// pasting them with `0x ## major`: MSVC's preprocessor does that, clang's (standard C) does not, so ndis.h's own
/// `NDIS_API_VERSION_AVAILABLE(NDIS_PROTOCOL_MAJOR_VERSION, ...)` would not compile. One extra macro level fixes it
/// without changing the result. Returns the original's path and the copy's.
fn patched_ndis_header(include_dirs: &[PathBuf], scratch: &Path) -> Result<(PathBuf, PathBuf), Box<dyn Error>> {
    let original = include_dirs
        .iter()
        .map(|dir| dir.join("ndis.h"))
        .find(|path| path.is_file())
        .ok_or("ndis.h is not in any WDK include directory")?;
    let text = String::from_utf8_lossy(&fs::read(&original)?).into_owned();

    const DEFINE: &str = "#define NDIS_API_VERSION_AVAILABLE(";
    let mut patched = String::with_capacity(text.len() + 200);
    for line in text.lines() {
        if line.trim_start().starts_with(DEFINE) {
            if line.trim_end().ends_with('\\') {
                return Err(format!(
                    "{}: NDIS_API_VERSION_AVAILABLE spans lines; update build/ndis_bindings.rs",
                    original.display()
                )
                .into());
            }
            patched.push_str(&line.replacen("NDIS_API_VERSION_AVAILABLE(", "RAWLINK_NDIS_API_VERSION_PASTE(", 1));
            patched.push('\n');
            patched.push_str(
                "#define NDIS_API_VERSION_AVAILABLE(major, minor) RAWLINK_NDIS_API_VERSION_PASTE(major, minor)\n",
            );
        } else {
            patched.push_str(line);
            patched.push('\n');
        }
    }
    let dir = scratch.join("wdk-include");
    fs::create_dir_all(&dir)?;
    let path = dir.join("ndis.h");
    fs::write(&path, patched)?;
    Ok((original, path))
}
