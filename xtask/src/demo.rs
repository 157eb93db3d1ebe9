//! `cargo xtask demo`: the driver talking to a real Linux peer through the `rawlink` CLI.
//!
//! As root: a network namespace of the demo's own with a persistent TAP `rl0` whose Linux side is
//! 192.0.2.1/24 (a documentation range, only inside that namespace); the CLI runs rawlink.sys in ndis-host on
//! the other side of the TAP and, through the driver, lists the adapter, ARPs the Linux peer and pings it,
//! writing the exchange to `target/demo/demo.pcapng`, which tshark (when installed) then reads back. Each CLI
//! run ends with the driver's unload and the verifier's report. Without root the same commands run on the
//! in-process wire against the CLI's simulated peer, and the demo says so. The namespace is removed on
//! success, on failure and on Ctrl-C.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const PEER: &str = "192.0.2.1";
const TAP: &str = "rl0";

/// The demo's network namespace, deleted on drop (also after a failure or Ctrl-C).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip").args(["netns", "del", &self.0]).output().is_ok_and(|o| o.status.success());
        println!("xtask: network namespace {} {}", self.0, if ok { "removed" } else { "could not be removed" });
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running `ip` (iproute2)")?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Runs the demo with the `rawlink` binary at `cli` and the driver at `sys`.
pub fn run(root: &Path, cli: &Path, sys: &Path) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        // The children get Ctrl-C themselves and stop; xtask stays to clean up.
        let s = Arc::clone(&stop);
        let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
    }
    let out_dir = root.join("target").join("demo");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let pcap = out_dir.join("demo.pcapng");
    let _ = std::fs::remove_file(&pcap);
    let tap_ok = is_root() && Path::new("/dev/net/tun").exists() && Command::new("ip").arg("-V").output().is_ok();
    let ns = if tap_ok {
        let name = format!("rl-demo-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ip(&["-n", &ns.0, "tuntap", "add", "dev", TAP, "mode", "tap"])?;
        ip(&["-n", &ns.0, "addr", "add", &format!("{PEER}/24"), "dev", TAP])?;
        ip(&["-n", &ns.0, "link", "set", TAP, "up"])?;
        println!(
            "\n== network namespace {}: TAP {TAP}, Linux side {PEER}/24; rawlink.sys in ndis-host on the other side ==",
            ns.0
        );
        Some(ns)
    } else {
        println!(
            "\n== not root (or no /dev/net/tun): falling back to the in-process wire; the peer at {PEER} is the CLI's \
             simulated host, not the Linux kernel =="
        );
        None
    };
    let rawlink = |args: &[&str]| -> Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let mut cmd = match &ns {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &n.0]).arg(cli).args(["--tap", TAP]);
                c
            }
            None => Command::new(cli),
        };
        cmd.arg("--driver").arg(sys).args(args);
        println!(
            "\n$ rawlink {}{}",
            if ns.is_some() { format!("--tap {TAP} ") } else { String::new() },
            args.join(" ")
        );
        let status = cmd.status().context("running rawlink")?;
        if !status.success() {
            bail!("rawlink {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let pcap_s = pcap.to_string_lossy().into_owned();
    rawlink(&["adapters"])?;
    rawlink(&["arp", PEER, "-c", "1"])?;
    rawlink(&["ping", PEER, "-c", "3", "-w", &pcap_s])?;
    println!("\n== {} ==", pcap.display());
    match Command::new("tshark").args(["-r", &pcap_s]).output() {
        Ok(o) if o.status.success() => {
            print!("$ tshark -r target/demo/demo.pcapng\n{}", String::from_utf8_lossy(&o.stdout))
        }
        Ok(o) => bail!("tshark could not read {}: {}", pcap.display(), String::from_utf8_lossy(&o.stderr).trim()),
        Err(_) => {
            println!("(tshark is not installed: `apt-get install tshark` to read it back; the CLI's summary is above)")
        }
    }
    drop(ns);
    Ok(())
}

/// Builds the `rawlink` binary with the cargo that runs xtask; returns its path.
pub fn build_cli(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--package", "rawlink", "--bin", "rawlink"])
        .status()
        .context("building the rawlink CLI")?;
    if !status.success() {
        bail!("building the rawlink CLI failed ({status})");
    }
    Ok(root.join("target").join("debug").join("rawlink"))
}
