//! `rawlink`: raw Ethernet from the command line through the rawlink.sys driver.
//!
//! On Windows it talks to `\\.\RawLink`. On Linux it runs the real rawlink.sys in ndis-host inside this
//! process (the hosted backend): its first adapter on a TAP interface (`--tap NAME`, root) or, by default, on
//! an in-process wire with a simulated peer at 192.0.2.1 that answers ARP and ping.

mod commands;
mod pcap;

use clap::Parser;
use rawlink::{Backend, Error, Rawlink};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "rawlink", version, about = "Raw Ethernet send, receive and capture through the rawlink driver")]
pub struct Cli {
    /// Linux: connect the hosted driver's first adapter to this TAP interface (created if missing; an
    /// existing persistent TAP keeps its addresses). Needs root. Without it: the in-process wire.
    #[cfg(target_os = "linux")]
    #[arg(long, global = true, value_name = "NAME")]
    tap: Option<String>,
    /// Linux: the driver image to host (default: $RAWLINK_PACKAGE_DIR/rawlink.sys, else target/rawlink-package).
    #[cfg(target_os = "linux")]
    #[arg(long, global = true, value_name = "PATH")]
    driver: Option<std::path::PathBuf>,
    /// Linux: print every call across the hosted driver's boundary.
    #[cfg(target_os = "linux")]
    #[arg(long, global = true)]
    trace: bool,
    #[command(subcommand)]
    command: commands::Command,
}

/// The driver connection and, when hosted, the machine to unload at the end.
#[derive(Debug)]
pub struct Session {
    pub rl: Rawlink,
    #[cfg(target_os = "linux")]
    hosted: Arc<rawlink::hosted::Hosted>,
}

#[cfg(target_os = "linux")]
fn connect(cli: &Cli) -> Result<Session, Error> {
    use rawlink::hosted::{default_driver_path, Cable, Hosted, HostedOptions};
    let cable = match &cli.tap {
        Some(name) => Cable::Tap(name.clone()),
        None => Cable::Wire,
    };
    let mut o = HostedOptions::new(cli.driver.clone().unwrap_or_else(default_driver_path), cable.clone());
    o.trace = cli.trace;
    let mut hosted = Hosted::start(o)?;
    if cable == Cable::Wire {
        hosted.start_responder(std::net::Ipv4Addr::new(192, 0, 2, 1))?;
    }
    let hosted = Arc::new(hosted);
    eprintln!("rawlink: {}", hosted.describe());
    let backend: Arc<dyn Backend> = hosted.clone();
    Ok(Session { rl: Rawlink::new(backend)?, hosted })
}

#[cfg(windows)]
fn connect(_cli: &Cli) -> Result<Session, Error> {
    Ok(Session { rl: Rawlink::open_windows()? })
}

#[cfg(not(any(windows, target_os = "linux")))]
fn connect(_cli: &Cli) -> Result<Session, Error> {
    Err(Error::Backend("rawlink runs on Windows (the driver) or Linux (the hosted driver)".into()))
}

impl Session {
    /// Unloads a hosted driver and prints the verifier's report; false if it found anything.
    fn finish(self) -> bool {
        #[cfg(target_os = "linux")]
        {
            drop(self.rl);
            match self.hosted.shutdown() {
                Ok(r) if r.clean() => {
                    eprintln!("rawlink: hosted driver unloaded; verifier: no violations, no leaks");
                    true
                }
                Ok(r) => {
                    for v in &r.violations {
                        eprintln!("rawlink: verifier: {v}");
                    }
                    if r.pool_left != 0 {
                        eprintln!("rawlink: verifier: {} pool block(s) left after unload", r.pool_left);
                    }
                    false
                }
                Err(e) => {
                    eprintln!("rawlink: error: {e}");
                    false
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(self);
            true
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let session = match connect(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rawlink: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = commands::run(&session, &cli.command);
    if let Err(e) = &result {
        eprintln!("rawlink: error: {e}");
    }
    let clean = session.finish();
    if result.is_ok() && clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
