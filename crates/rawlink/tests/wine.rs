//! rawlink.exe — the CLI cross-built for Windows by `cargo xtask test` / `cargo xtask wine` — under Debian's
//! wine64: `--help` works, and `adapters` says the driver is not installed (Wine has no rawlink driver and no
//! RAWLINK service) and exits non-zero.
//!
//! xtask hands the exe in through `RAWLINK_WINE_EXE` (and wine64 through `RAWLINK_WINE64`). Without them the
//! test is skipped with a note — unless `CI=true`, where a missing exe is a failure. Wine runs in a prefix of
//! the test's own in a temporary folder, without a display (no `DISPLAY`, `WINEDEBUG=-all`, no Mono/Gecko
//! installers), and every run has a deadline: a hang is killed and reported.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first run creates the prefix (wineboot), which takes a while on a loaded machine.
const FIRST_RUN: Duration = Duration::from_secs(240);
const LATER_RUN: Duration = Duration::from_secs(120);

/// rawlink.exe and wine64 from xtask; `None`: not handed in (and not on CI).
fn from_xtask() -> Option<(PathBuf, PathBuf)> {
    let exe = std::env::var_os("RAWLINK_WINE_EXE").map(PathBuf::from);
    let wine = std::env::var_os("RAWLINK_WINE64").map_or_else(|| PathBuf::from("/usr/lib/wine/wine64"), PathBuf::from);
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match exe {
        Some(exe) => {
            assert!(exe.is_file(), "RAWLINK_WINE_EXE={} does not exist", exe.display());
            assert!(wine.is_file(), "{} does not exist: install the Debian package wine64", wine.display());
            Some((exe, wine))
        }
        None if ci => panic!(
            "CI=true but RAWLINK_WINE_EXE is not set: `cargo xtask test` builds rawlink.exe and hands it to this test"
        ),
        None => {
            eprintln!("skipped: RAWLINK_WINE_EXE is not set (`cargo xtask test` or `cargo xtask wine` sets it)");
            None
        }
    }
}

/// A Wine prefix in a temporary folder; its wineserver is stopped and the folder removed on drop.
struct Prefix {
    dir: PathBuf,
    wineserver: PathBuf,
}

impl Prefix {
    fn new(wine: &Path) -> Self {
        let dir = std::env::temp_dir().join(format!("rawlink-wine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("prefix folder");
        let wineserver = wine.with_file_name("wineserver");
        Prefix { dir, wineserver }
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", &self.dir)
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installer dialogs when wineboot makes the prefix.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        if let Ok(mut child) = self.command(&self.wineserver).arg("-k").spawn() {
            let _ = wait_until(&mut child, Instant::now() + Duration::from_secs(30));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The child's exit (`None`: killed at the deadline).
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// `wine64 rawlink.exe ARGS` in `prefix`: (exited successfully, stdout + stderr). Panics when it outlives
/// `limit`.
fn run(prefix: &Prefix, wine: &Path, exe: &Path, args: &[&str], limit: Duration) -> (bool, String) {
    let mut child = prefix.command(wine).arg(exe).args(args).spawn().expect("wine64 starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().expect("piped")), Box::new(child.stderr.take().expect("piped"))];
    for (i, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            let _ = tx.send((i, s));
        });
    }
    let status = wait_until(&mut child, Instant::now() + limit);
    // Wine's helper processes (wineserver, services) may hold the pipes open after the exe ended: give them
    // a while, then stop the prefix's server so the pipes close.
    let mut parts = [String::new(), String::new()];
    let mut got = 0;
    let mut killed = false;
    while got < 2 {
        match rx.recv_timeout(Duration::from_secs(if status.is_some() { 20 } else { 1 })) {
            Ok((i, s)) => {
                if let Some(p) = parts.get_mut(i) {
                    *p = s;
                }
                got += 1;
            }
            Err(_) if !killed => {
                killed = true;
                if let Ok(mut k) = prefix.command(&prefix.wineserver).arg("-k").spawn() {
                    let _ = wait_until(&mut k, Instant::now() + Duration::from_secs(30));
                }
            }
            Err(_) => break,
        }
    }
    let text = parts.concat();
    let Some(status) = status else {
        panic!("`wine64 rawlink.exe {}` did not end within {} s; its output:\n{text}", args.join(" "), limit.as_secs());
    };
    (status.success(), text)
}

#[test]
fn rawlink_exe_runs_under_wine_and_reports_the_missing_driver() {
    let Some((exe, wine)) = from_xtask() else { return };
    let prefix = Prefix::new(&wine);

    let (ok, text) = run(&prefix, &wine, &exe, &["--help"], FIRST_RUN);
    assert!(ok, "rawlink.exe --help failed under wine64:\n{text}");
    assert!(text.contains("Usage: rawlink.exe <COMMAND>"), "{text}");
    for command in ["adapters", "capture", "send", "replay", "arp", "ping", "stats", "oid", "events"] {
        assert!(text.contains(&format!("\n  {command} ")), "--help lists `{command}`:\n{text}");
    }
    // The Windows build has none of the hosted backend's options.
    assert!(!text.contains("--tap") && !text.contains("--driver"), "{text}");

    let (ok, text) = run(&prefix, &wine, &exe, &["adapters"], LATER_RUN);
    assert!(!ok, "`adapters` without the driver must exit non-zero:\n{text}");
    assert!(
        text.contains("rawlink: error: the rawlink driver is not installed: there is no RAWLINK service")
            && text.contains("install.ps1")
            && text.contains("sc.exe start RAWLINK"),
        "{text}"
    );
}
