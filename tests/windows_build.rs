//! The Windows build's wiring, checked on Linux against wdk-build 0.6 itself.
//!
//! * A feature-less `cargo metadata` — what wdk-build's `load_rust_driver_makefile()` (cargo-make's load_script)
//!   and `get_rust_edition()` (inside `wdk_default`, in wdk-sys's build script and ours) run — must list exactly
//!   one wdk-build. Without it the first Windows user stops at `NoWdkBuildCrateDetected`.
//! * `Makefile.toml` extends wdk-build's `rust-driver-makefile.toml`: every task it overrides or depends on, every
//!   path it builds from the stock flow's variables and every environment variable it reads must be the ones that
//!   file and wdk-build's `cargo_make` module define. Both are read at test time from the wdk-build source that
//!   `cargo metadata` points at (its `manifest_path` in cargo's registry; `cargo metadata` downloads the crate when
//!   `cargo fetch` has not), never copied into this repository.
//!
//! The test runs `cargo metadata`, which needs the crates of `Cargo.lock` (crates.io) on a fresh machine.

#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test that cannot set up fails loudly"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use toml::Value as Toml;

/// Tasks of Makefile.toml that are rawlink's own: they must not collide with a stock task.
const RAWLINK_TASKS: &[&str] = &["rawlink-package"];

/// cargo-make's built-in tasks that Makefile.toml overrides for Linux. wdk-build does not define them (it only
/// depends on `build`), which the test checks, so they cannot be checked against wdk-build either.
const CARGO_MAKE_BUILTIN_TASKS: &[&str] = &["build", "test"];

/// cargo-make variables Makefile.toml reads that wdk-build's files do not mention (cargo-make's own, documented
/// in its README, "Global" environment variables). Every other `CARGO_MAKE_*` variable it reads must be one
/// wdk-build reads or sets too.
const CARGO_MAKE_BUILTIN_VARIABLES: &[&str] = &["CARGO_MAKE_RUST_TARGET_OS"];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A text file with `\n` line ends (the crate's files are published with CRLF).
fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .replace("\r\n", "\n")
}

/// `cargo metadata --format-version 1`, no features and no platform filter: what wdk-build runs.
fn metadata() -> Json {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1"])
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

fn packages<'a>(meta: &'a Json, name: &str) -> Vec<&'a Json> {
    meta["packages"].as_array().expect("packages").iter().filter(|p| p["name"] == name).collect()
}

fn single_package<'a>(meta: &'a Json, name: &str) -> &'a Json {
    match packages(meta, name).as_slice() {
        [one] => one,
        other => panic!("a feature-less cargo metadata lists {} packages named {name}, not one", other.len()),
    }
}

/// wdk-build's source folder, from the `manifest_path` cargo metadata reports.
fn wdk_build_dir(meta: &Json) -> PathBuf {
    let manifest = single_package(meta, "wdk-build")["manifest_path"].as_str().expect("manifest_path");
    Path::new(manifest).parent().expect("manifest folder").to_path_buf()
}

/// What the tests compare: both makefiles, and wdk-build's `cargo_make` module (the variables it sets).
struct Flow {
    ours: Toml,
    stock: Toml,
    stock_path: PathBuf,
    cargo_make_rs: String,
    meta: Json,
}

fn flow() -> Flow {
    let meta = metadata();
    let dir = wdk_build_dir(&meta);
    let cargo_make_rs = read(&dir.join("src").join("cargo_make.rs"));
    let name = string_const(&cargo_make_rs, "RUST_DRIVER_MAKEFILE_NAME");
    let stock_path = dir.join(&name);
    let stock = toml::from_str(&read(&stock_path)).expect("wdk-build's makefile is TOML");
    let ours = toml::from_str(&read(&workspace_root().join("Makefile.toml"))).expect("Makefile.toml is TOML");
    Flow { ours, stock, stock_path, cargo_make_rs, meta }
}

/// The value of `const NAME: &str = "...";` in Rust source.
fn string_const(source: &str, name: &str) -> String {
    let prefix = format!("const {name}: &str = \"");
    let line = source
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub ").unwrap_or(l.trim()).strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("wdk-build's cargo_make.rs has no `const {name}: &str`"));
    line.split('"').next().expect("string literal").to_owned()
}

fn table<'a>(value: &'a Toml, key: &str) -> &'a toml::Table {
    value.get(key).and_then(Toml::as_table).unwrap_or_else(|| panic!("no [{key}] table"))
}

fn task<'a>(file: &'a Toml, name: &str) -> &'a Toml {
    table(file, "tasks").get(name).unwrap_or_else(|| panic!("no task {name}"))
}

fn strings(value: &Toml) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Toml::as_str).collect()).unwrap_or_default()
}

/// Every string anywhere in `value`.
fn all_strings<'a>(value: &'a Toml, out: &mut Vec<&'a str>) {
    match value {
        Toml::String(s) => out.push(s),
        Toml::Array(a) => a.iter().for_each(|v| all_strings(v, out)),
        Toml::Table(t) => t.values().for_each(|v| all_strings(v, out)),
        _ => {}
    }
}

/// The environment variables a cargo-make string reads: `${NAME}`, `@@split(NAME,...)`, duckscript's `get_env NAME`.
/// A duckscript's own variables (`name = ...` lines) are not environment variables.
fn variables_read(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut found = BTreeSet::new();
    for marker in ["${", "@@split(", "get_env "] {
        for (at, _) in text.match_indices(marker) {
            let name: String = text[at + marker.len()..].chars().take_while(|&c| is_name(c)).collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    for line in text.lines() {
        if let Some((name, _)) = line.trim().split_once(" = ") {
            found.remove(name);
        }
    }
    found
}

/// Every name the stock flow defines as a variable: its `[env]` keys and every task's `env` keys.
fn stock_variables(stock: &Toml) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = table(stock, "env").keys().cloned().collect();
    for task in table(stock, "tasks").values() {
        if let Some(env) = task.get("env").and_then(Toml::as_table) {
            names.extend(env.keys().cloned());
        }
    }
    names
}

#[test]
fn a_featureless_cargo_metadata_lists_one_wdk_build() {
    let meta = metadata();
    let wdk_build = single_package(&meta, "wdk-build");
    let version = wdk_build["version"].as_str().expect("version");
    assert!(version.starts_with("0.6."), "wdk-build is {version}; Makefile.toml and build/wdk.rs are written for 0.6");

    // It is there through rawlink-driver itself, as a non-optional build-dependency of Windows hosts: not behind a
    // feature (a feature-less metadata would not list it) and never built on Linux (wdk-build refuses to).
    let driver = single_package(&meta, "rawlink-driver");
    let deps: Vec<&Json> =
        driver["dependencies"].as_array().expect("dependencies").iter().filter(|d| d["name"] == "wdk-build").collect();
    assert_eq!(deps.len(), 1, "rawlink-driver must name wdk-build once: {deps:?}");
    let dep = deps[0];
    assert_eq!(dep["kind"], "build", "{dep}");
    assert_eq!(dep["optional"], false, "an optional wdk-build is invisible to a feature-less cargo metadata: {dep}");
    assert_eq!(dep["target"], "cfg(windows)", "{dep}");
    assert!(dep["req"].as_str().is_some_and(|r| r.contains("0.6")), "wdk-build requirement {} is not 0.6", dep["req"]);

    // The workspace's rust-version is the Linux side's; the Windows prerequisites name wdk-build's.
    let needs = wdk_build["rust_version"].as_str().expect("wdk-build declares a rust-version");
    let minor: String = needs.split('.').take(2).collect::<Vec<_>>().join(".");
    let docs = read(&workspace_root().join("docs").join("WINDOWS.md"));
    assert!(
        docs.contains(&format!("**{minor} or newer**")) && docs.contains(&format!("`rust-version = \"{needs}\"`")),
        "docs/WINDOWS.md's prerequisites must say that a Windows host needs Rust {minor} (wdk-build {version})"
    );

    // The manifest cargo metadata points at is there to read (the makefile test below reads it).
    let dir = wdk_build_dir(&meta);
    assert!(dir.join("Cargo.toml").is_file(), "{} has no Cargo.toml", dir.display());
}

#[test]
fn makefile_extends_the_makefile_the_load_script_links() {
    let f = flow();
    // The load_script calls load_rust_driver_makefile(), which links <workspace>/target/RUST_DRIVER_MAKEFILE_NAME.
    let config = table(&f.ours, "config");
    let script = config.get("load_script").and_then(Toml::as_str).expect("config.load_script");
    assert!(script.contains("wdk_build::cargo_make::load_rust_driver_makefile()"), "{script}");
    assert!(
        f.cargo_make_rs.contains("pub fn load_rust_driver_makefile()")
            && f.cargo_make_rs.contains("load_wdk_build_makefile(RUST_DRIVER_MAKEFILE_NAME)")
            && f.cargo_make_rs.contains(".join(\"target\")\n        .join(&makefile_name)"),
        "wdk-build's load_rust_driver_makefile no longer links target/<makefile>"
    );
    let name = f.stock_path.file_name().and_then(|n| n.to_str()).expect("file name");
    let extend = f.ours.get("extend").and_then(Toml::as_array).expect("extend = [...]");
    let paths: Vec<&str> = extend.iter().filter_map(|e| e.get("path").and_then(Toml::as_str)).collect();
    assert_eq!(paths, [format!("target/{name}")], "Makefile.toml must extend what the load_script links");

    // The load_script's wdk-build is the locked one.
    let version = single_package(&f.meta, "wdk-build")["version"].as_str().expect("version").to_owned();
    assert!(script.contains(&format!("wdk-build = \"{version}\"")), "load_script does not ask for wdk-build {version}");

    // cargo-make must be new enough for the stock file.
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().expect("numeric version")).collect() };
    let ours_min = config.get("min_version").and_then(Toml::as_str).expect("config.min_version");
    let stock_min = table(&f.stock, "config").get("min_version").and_then(Toml::as_str).expect("stock min_version");
    assert!(parse(ours_min) >= parse(stock_min), "min_version {ours_min} is below wdk-build's {stock_min}");
}

#[test]
fn makefile_tasks_are_the_stock_flows() {
    let f = flow();
    let stock_tasks = table(&f.stock, "tasks");
    let ours_tasks = table(&f.ours, "tasks");
    for (name, task) in ours_tasks {
        if RAWLINK_TASKS.contains(&name.as_str()) {
            assert!(!stock_tasks.contains_key(name), "rawlink's task {name} collides with wdk-build's");
        } else if CARGO_MAKE_BUILTIN_TASKS.contains(&name.as_str()) {
            assert!(!stock_tasks.contains_key(name), "{name} is now a wdk-build task; check the override");
        } else {
            assert!(stock_tasks.contains_key(name), "Makefile.toml overrides {name}, which wdk-build does not define");
        }
        for dep in strings(task.get("dependencies").unwrap_or(&Toml::Array(Vec::new()))) {
            assert!(
                stock_tasks.contains_key(dep) || ours_tasks.contains_key(dep),
                "task {name} depends on {dep}, which neither file defines"
            );
        }
    }
    // `build` is the task the stock flow starts from (cargo-make's, which Makefile.toml overrides on Linux only).
    assert!(strings(&task(&f.stock, "package-driver-flow")["dependencies"]).contains(&"build"));
    assert_eq!(task(&f.ours, "default").get("alias").and_then(Toml::as_str), Some("rawlink-package"));
    assert!(strings(&task(&f.ours, "rawlink-package")["dependencies"]).contains(&"package-driver-flow"));
    assert!(strings(&task(&f.ours, "test")["dependencies"]).contains(&"package-driver-flow"));
}

#[test]
fn makefile_paths_are_the_stock_flows() {
    let f = flow();
    let ours_env = table(&f.ours, "env");
    let fs_name = ours_env.get("CARGO_MAKE_CRATE_FS_NAME").and_then(Toml::as_str).expect("CARGO_MAKE_CRATE_FS_NAME");

    // The stock flow names every file after CARGO_MAKE_CRATE_FS_NAME, read by get_current_package_name(); cargo
    // writes the lib target's name, so the two must be equal for `<name>.dll` -> `<name>.sys` to find the DLL.
    assert_eq!(string_const(&f.cargo_make_rs, "CARGO_MAKE_CRATE_FS_NAME_ENV_VAR"), "CARGO_MAKE_CRATE_FS_NAME");
    assert!(f.cargo_make_rs.contains("env::var(CARGO_MAKE_CRATE_FS_NAME_ENV_VAR)"));
    let driver = single_package(&f.meta, "rawlink-driver");
    let lib = driver["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .expect("a cdylib target");
    assert_eq!(lib["name"], fs_name, "CARGO_MAKE_CRATE_FS_NAME must be the cdylib's name");
    let generate = task(&f.stock, "generate-driver-binary-file")["script"].as_str().expect("script");
    assert!(generate.contains("\"{}.dll\"") && generate.contains("\"{}.sys\""), "the stock .dll -> .sys copy changed");

    // The driver model the stock flow keys on.
    let driver_type = driver["metadata"]["wdk"]["driver-model"]["driver-type"].as_str().expect("driver-type");
    let extension = &task(&f.stock, "copy-driver-binary-to-package")["env"]["WDK_BUILD_DRIVER_EXTENSION"]["mapping"];
    assert_eq!(extension.get(driver_type).and_then(Toml::as_str), Some("sys"), "driver-type {driver_type}");

    // The package folder: the stock inf2cat catalogues `/driver:<folder>`; `cargo make test` reads the same one.
    let inf2cat = strings(&task(&f.stock, "inf2cat")["args"]);
    let folder = inf2cat.iter().find_map(|a| a.strip_prefix("/driver:")).expect("inf2cat /driver:");
    let test_env = task(&f.ours, "test")["env"]["RAWLINK_PACKAGE_DIR"].as_str().expect("RAWLINK_PACKAGE_DIR");
    assert_eq!(test_env, folder);
    assert!(f.cargo_make_rs.contains("format!(\"{}_package\", get_current_package_name())"));

    // The stamped INF: stampinf reads `-f <file>`, infverif checks the same file last.
    let stampinf = strings(&task(&f.stock, "stampinf")["args"]);
    let inf = stampinf.iter().position(|a| *a == "-f").map(|i| stampinf[i + 1]).expect("stampinf -f");
    let stock_infverif = strings(&task(&f.stock, "infverif")["args"]);
    let ours_infverif = strings(&task(&f.ours, "infverif")["args"]);
    assert_eq!(stock_infverif.last(), Some(&inf));
    assert_eq!(ours_infverif.last(), Some(&inf), "Makefile.toml's infverif checks another file");

    // copy-inx-to-output: the stock task reads `<package>.inx` beside Cargo.toml (CARGO_MAKE_WORKING_DIRECTORY);
    // rawlink's INX is inf/rawlink.inx, so the override copies that to what stampinf reads.
    let stock_copy = task(&f.stock, "copy-inx-to-output")["script"].as_str().expect("script");
    assert!(stock_copy.contains("CARGO_MAKE_WORKING_DIRECTORY") && stock_copy.contains("\"{}.inx\""));
    let ours_copy = task(&f.ours, "copy-inx-to-output");
    assert_eq!(ours_copy.get("clear").and_then(Toml::as_bool), Some(true), "the override must replace the script");
    let script = ours_copy["script"].as_str().expect("script");
    assert!(script.contains("out = get_env WDK_BUILD_OUTPUT_DIRECTORY"), "{script}");
    assert!(script.contains("root = get_env CARGO_MAKE_WORKING_DIRECTORY"), "{script}");
    let expected =
        inf.replace("${WDK_BUILD_OUTPUT_DIRECTORY}", "${out}").replace("${CARGO_MAKE_CRATE_FS_NAME}", fs_name);
    assert!(
        script.contains(&format!("cp ${{root}}/inf/{fs_name}.inx {expected}")),
        "{script} does not write {expected}"
    );
    assert!(workspace_root().join("inf").join(format!("{fs_name}.inx")).is_file());

    // The certificate the docs tell the user to trust is the one the stock flow makes.
    let certificate = strings(&task(&f.stock, "generate-certificate")["args"]);
    let docs = read(&workspace_root().join("docs").join("WINDOWS.md"));
    for name in ["WDRTestCertStore", "CN=WDRLocalTestCert"] {
        assert!(certificate.contains(&name), "the stock certificate is no longer {name}");
        assert!(docs.contains(name), "docs/WINDOWS.md does not name {name}");
    }
}

#[test]
fn makefile_variables_are_the_stock_flows() {
    let f = flow();
    let ours_env: BTreeSet<String> = table(&f.ours, "env").keys().cloned().collect();
    let mut task_env = BTreeSet::new();
    for task in table(&f.ours, "tasks").values() {
        if let Some(env) = task.get("env").and_then(Toml::as_table) {
            task_env.extend(env.keys().cloned());
        }
    }
    let stock_vars = stock_variables(&f.stock);
    let mut stock_strings = Vec::new();
    all_strings(&f.stock, &mut stock_strings);
    let stock_text = stock_strings.join("\n");

    let mut ours_strings = Vec::new();
    all_strings(&f.ours, &mut ours_strings);
    let mut read_vars = BTreeSet::new();
    for s in &ours_strings {
        read_vars.extend(variables_read(s));
    }
    assert!(read_vars.contains("WDK_BUILD_OUTPUT_DIRECTORY"), "{read_vars:?}");

    for var in &read_vars {
        let set_by_wdk_build = f.cargo_make_rs.contains(&format!("\"{var}\""));
        let known_to_stock = stock_vars.contains(var) || variables_read(&stock_text).contains(var);
        if ours_env.contains(var) || task_env.contains(var) {
            // rawlink's own, or an override of a stock/cargo-make variable: RAWLINK_ for our own names.
            assert!(
                var.starts_with("RAWLINK_") || var.starts_with("CARGO_MAKE_"),
                "{var} is set by Makefile.toml but is neither rawlink's nor cargo-make's"
            );
        } else if var.starts_with("WDK_BUILD_") {
            assert!(set_by_wdk_build || known_to_stock, "{var} is neither set by wdk-build nor in its makefile");
        } else if var.starts_with("CARGO_MAKE_") {
            assert!(
                known_to_stock || set_by_wdk_build || CARGO_MAKE_BUILTIN_VARIABLES.contains(&var.as_str()),
                "{var}: wdk-build never reads it; add it to CARGO_MAKE_BUILTIN_VARIABLES only if cargo-make sets it"
            );
        } else {
            panic!("Makefile.toml reads {var}, which nothing defines");
        }
    }
    // WDK_BUILD_OUTPUT_DIRECTORY is set by wdk-build-init (cargo_make.rs), not by the makefile.
    assert_eq!(string_const(&f.cargo_make_rs, "WDK_BUILD_OUTPUT_DIRECTORY_ENV_VAR"), "WDK_BUILD_OUTPUT_DIRECTORY");
    // Variables Makefile.toml overrides that the stock flow defines or reads must exist there.
    for var in ours_env.iter().filter(|v| v.starts_with("CARGO_MAKE_")) {
        let known = stock_vars.contains(var) || f.cargo_make_rs.contains(&format!("\"{var}\""));
        assert!(known, "Makefile.toml overrides {var}, which wdk-build neither defines nor reads");
    }
    // The stock flow resets the build flags (cargo-make's default is --all-features); Makefile.toml sets them
    // itself, and wdk-build-init appends the command line's flags to the same variable.
    assert!(stock_vars.contains("CARGO_MAKE_CARGO_BUILD_TEST_FLAGS"));
    assert_eq!(
        string_const(&f.cargo_make_rs, "CARGO_MAKE_CARGO_BUILD_TEST_FLAGS_ENV_VAR"),
        "CARGO_MAKE_CARGO_BUILD_TEST_FLAGS"
    );
}

#[test]
fn variables_are_found_in_each_form() {
    let found = variables_read("a ${ONE}/${TWO_2} @@split(THREE, ,remove-empty)\nx = get_env FOUR\necho ${x}\n");
    let expected: BTreeSet<String> = ["ONE", "TWO_2", "THREE", "FOUR"].into_iter().map(String::from).collect();
    assert_eq!(found, expected);
    assert!(variables_read("no variables $ here").is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// The PowerShell scripts. There is no PowerShell on the build machine, so these are static checks of the rules the
// scripts follow, and of docs/WINDOWS.md listing the same native commands in the same order.

/// The values the scripts' variables stand for in docs/WINDOWS.md's commands.
const SCRIPT_VALUES: &[(&str, &str)] = &[
    ("$ComponentId", "RL_RAWLINK"),
    ("$ServiceName", "RAWLINK"),
    ("$inf", "<package>\\rawlink.inf"),
    ("$oem", "oemNN.inf"),
];

/// `Invoke-Native <code> '<program>' @('<arg>', $var, ...) [+ $forceFlag]` calls, in script order, as the command
/// line docs/WINDOWS.md shows.
fn native_calls(script: &str) -> Vec<String> {
    let mut calls = Vec::new();
    for line in script.lines() {
        let Some(at) = line.find("Invoke-Native ") else { continue };
        let call = &line[at + "Invoke-Native ".len()..];
        if call.starts_with('[') || call.starts_with("@") {
            continue; // the function's own definition
        }
        let mut parts = call.splitn(2, " '");
        let code = parts.next().expect("exit code");
        assert!(code.parse::<u8>().is_ok(), "Invoke-Native without a numeric failure code: {line}");
        let rest = parts.next().unwrap_or_else(|| panic!("Invoke-Native without a quoted program: {line}"));
        let (program, rest) = rest.split_once('\'').expect("closing quote");
        let list_start = rest.find("@(").unwrap_or_else(|| panic!("arguments are not an @(...) list: {line}"));
        let list_end = rest[list_start..].find(')').expect("closing )") + list_start;
        let mut command = vec![program.to_owned()];
        for arg in rest[list_start + 2..list_end].split(',').map(str::trim) {
            let value = if let Some(quoted) = arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')) {
                quoted.to_owned()
            } else {
                let (_, value) = SCRIPT_VALUES
                    .iter()
                    .find(|(var, _)| *var == arg)
                    .unwrap_or_else(|| panic!("no documented value for {arg} in: {line}"));
                (*value).to_owned()
            };
            command.push(value);
        }
        if rest[list_end..].contains("+ $forceFlag") {
            command.push("[/force]".to_owned());
        }
        calls.push(command.join(" "));
    }
    calls
}

/// The native command lines (`<name>.exe ...`) of the fenced block after `marker` in docs/WINDOWS.md.
fn documented_commands(docs: &str, marker: &str) -> Vec<String> {
    let at = docs.find(marker).unwrap_or_else(|| panic!("docs/WINDOWS.md has no {marker}"));
    let block = docs[at..].split("```").nth(1).expect("a fenced block after the marker");
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().next().is_some_and(|w| w.ends_with(".exe")))
        .map(str::to_owned)
        .collect()
}

fn script(name: &str) -> String {
    read(&workspace_root().join("scripts").join(name))
}

#[test]
fn the_docs_list_the_scripts_native_commands_in_order() {
    let docs = read(&workspace_root().join("docs").join("WINDOWS.md"));
    let install = native_calls(&script("install.ps1"));
    assert_eq!(
        install,
        ["netcfg.exe -v -l <package>\\rawlink.inf -c p -i RL_RAWLINK", "sc.exe start RAWLINK"],
        "install.ps1's native calls"
    );
    assert_eq!(documented_commands(&docs, "package folder). `install.ps1`:"), install);
    let uninstall = native_calls(&script("uninstall.ps1"));
    assert_eq!(
        uninstall,
        ["sc.exe stop RAWLINK", "netcfg.exe -v -u RL_RAWLINK", "pnputil.exe /delete-driver oemNN.inf [/force]"],
        "uninstall.ps1's native calls"
    );
    assert_eq!(documented_commands(&docs, "`uninstall.ps1`:\n"), uninstall);
}

#[test]
fn the_scripts_follow_their_rules() {
    for name in ["install.ps1", "uninstall.ps1"] {
        let text = script(name);
        let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        assert!(text.contains("\nSet-StrictMode -Version 3\n$ErrorActionPreference = 'Stop'\n"), "{name}");
        assert!(text.contains("\n$PSNativeCommandUseErrorActionPreference = $false\n"), "{name}");
        // Native programs run only through Invoke-Native, whose error preference is local and 'Continue'.
        let invocations: Vec<&&str> = code.iter().filter(|l| l.trim_start().starts_with("& ")).collect();
        assert_eq!(invocations.len(), 1, "{name}: programs are started only in Invoke-Native: {invocations:?}");
        let function = text.split("function Invoke-Native(").nth(1).expect("Invoke-Native");
        let body = function.split("\n}\n").next().expect("its body");
        assert!(body.contains("$ErrorActionPreference = 'Continue'"), "{name}: {body}");
        assert!(body.contains("& $command[0].Path @Arguments 2>&1 |"), "{name}: {body}");
        assert!(body.contains("return [int] $LASTEXITCODE"), "{name}: {body}");
        // Each call's exit code is used: assigned to $code and compared.
        for line in code.iter().filter(|l| l.contains("Invoke-Native ") && !l.contains("function ")) {
            assert!(line.trim_start().starts_with("$code = Invoke-Native "), "{name}: exit code not kept: {line}");
        }
        // No program output is parsed: no capture into text, no netcfg -q, no bcdedit.
        for banned in ["Out-String", "netcfg.exe -q", "'-q'", "bcdedit.exe /enum", "-match 'is installed'"] {
            assert!(!code.iter().any(|l| l.contains(banned)), "{name} uses {banned}");
        }
    }
    // The [string] parameter is never assigned (StrictMode 3 + a type-constrained variable).
    let install = script("install.ps1");
    assert!(install.contains("[string] $PackageDir"), "install.ps1's parameter");
    assert!(!install.contains("$PackageDir ="), "install.ps1 assigns its [string] parameter");
}
