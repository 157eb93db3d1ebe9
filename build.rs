//! Link configuration for rawlink.sys.
//!
//! * Linux cross build (`cargo xtask build`): the driver is linked by lld-link with the flags a WDM driver
//!   needs; nothing else is required from the build machine.
//! * Windows with the WDK (`--features wdk`, driven by cargo-make): wdk-build supplies the link configuration
//!   and the bindings are proven against the installed WDK (see `build/wdk.rs`).

#[cfg(all(feature = "wdk", windows))]
#[path = "build/wdk.rs"]
mod wdk;

// wdk-build is a build-dependency of Windows hosts only (Cargo.toml), and refuses to compile anywhere else.
#[cfg(all(feature = "wdk", not(windows)))]
compile_error!(
    "the `wdk` feature needs a Windows host with the WDK (cargo make, docs/WINDOWS.md); on Linux the same layout \
     proof runs as `cargo xtask wdk-check --wdk-include <WDK Include/10.0.x folder>`"
);

/// lld-link flags for a kernel-mode driver image, as link.exe/wdk-build use them, plus `/RELEASE` so that the
/// PE checksum is computed (the Windows loader checks it for boot drivers; tools check it too).
const DRIVER_LINK_ARGS: &[&str] = &[
    "/DRIVER",
    "/SUBSYSTEM:NATIVE,10.0",
    "/OSVERSION:10.0",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/INTEGRITYCHECK",
    "/DYNAMICBASE",
    "/NXCOMPAT",
    "/HIGHENTROPYVA",
    "/OPT:REF,ICF",
    "/RELEASE",
    "/MANIFEST:NO",
    // lld-link marks images terminal-server aware unless told otherwise; link.exe drivers are not.
    "/TSAWARE:NO",
    "/DEBUG:FULL",
    // link.exe marks every resident section of a /DRIVER image IMAGE_SCN_MEM_NOT_PAGED; lld-link does not.
    // `/SECTION` replaces a section's memory attributes, so each one is spelled out in full (E execute,
    // R read, W write, P not paged).
    "/SECTION:.text,ERP",
    "/SECTION:.rdata,RP",
    "/SECTION:.data,RWP",
    "/SECTION:.pdata,RP",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_WDK");

    #[cfg(all(feature = "wdk", windows))]
    {
        if let Err(e) = wdk::configure() {
            println!("cargo:warning=wdk-build configuration failed: {e}");
            std::process::exit(1);
        }
        return;
    }

    #[allow(unreachable_code)]
    {
        let target = std::env::var("TARGET").unwrap_or_default();
        if target == "x86_64-pc-windows-msvc" {
            for arg in DRIVER_LINK_ARGS {
                println!("cargo:rustc-cdylib-link-arg={arg}");
            }
        }
    }
}
