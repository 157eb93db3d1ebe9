//! `rawlink`: raw Ethernet from the command line through the rawlink.sys driver.
//!
//! On Windows it talks to `\\.\RawLink`. On Linux it runs the real rawlink.sys in ndis-host inside this
//! process (the hosted backend): its first adapter on a TAP interface (`--tap NAME`, root) or, by default, on
//! an in-process wire with a simulated peer at 192.0.2.1 that answers ARP and ping.

mod commands;
mod extcap;
mod pcap;

use clap::Parser;
#[cfg(target_os = "linux")]
use rawlink::Backend;
use rawlink::{Error, Rawlink};
use std::process::ExitCode;
#[cfg(target_os = "linux")]
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
    /// Linux: load the hosted driver but do not start it (no DriverEntry), as a stopped RAWLINK service is on
    /// Windows: shows the "not running" error and how to start the driver.
    #[cfg(target_os = "linux")]
    #[arg(long, global = true)]
    driver_stopped: bool,
    /// Linux: who opens \\.\RawLink in the hosted machine: an elevated administrator (the default) or a
    /// standard user, whom the driver's device DACL (SYSTEM and Administrators only) turns away.
    #[cfg(target_os = "linux")]
    #[arg(long, global = true, value_enum, value_name = "USER", default_value = "administrator")]
    as_user: HostedUser,
    #[command(subcommand)]
    command: commands::Command,
}

/// Who opens the hosted driver's device (`--as-user`).
#[cfg(target_os = "linux")]
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostedUser {
    #[default]
    Administrator,
    Standard,
}

/// The driver connection and, when hosted, the machine to unload at the end.
#[derive(Debug)]
pub struct Session {
    pub rl: Rawlink,
    #[cfg(target_os = "linux")]
    hosted: Arc<rawlink::hosted::Hosted>,
    quiet: bool,
}

/// How to reach the driver (the hosted backend's choices on Linux).
#[derive(Debug, Default)]
pub struct Options {
    #[cfg(target_os = "linux")]
    pub tap: Option<String>,
    #[cfg(target_os = "linux")]
    pub driver: Option<std::path::PathBuf>,
    #[cfg(target_os = "linux")]
    pub trace: bool,
    #[cfg(target_os = "linux")]
    pub driver_stopped: bool,
    #[cfg(target_os = "linux")]
    pub as_user: HostedUser,
}

impl Cli {
    fn options(&self) -> Options {
        #[cfg(target_os = "linux")]
        {
            Options {
                tap: self.tap.clone(),
                driver: self.driver.clone(),
                trace: self.trace,
                driver_stopped: self.driver_stopped,
                as_user: self.as_user,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            Options {}
        }
    }
}

#[cfg(target_os = "linux")]
fn connect(o: &Options, quiet: bool) -> Result<Session, Error> {
    use rawlink::hosted::{default_driver_path, Cable, Hosted, HostedOptions};
    let cable = match &o.tap {
        Some(name) => Cable::Tap(name.clone()),
        None => Cable::Wire,
    };
    let mut ho = HostedOptions::new(o.driver.clone().unwrap_or_else(default_driver_path), cable.clone());
    ho.trace = o.trace;
    ho.start = !o.driver_stopped;
    if o.as_user == HostedUser::Standard {
        ho.user = Some(rawlink::hosted::Token::standard_user());
    }
    let mut hosted = Hosted::start(ho)?;
    if cable == Cable::Wire && !o.driver_stopped {
        hosted.start_responder(std::net::Ipv4Addr::new(192, 0, 2, 1))?;
    }
    let hosted = Arc::new(hosted);
    if !quiet {
        eprintln!("rawlink: {}", hosted.describe());
    }
    let backend: Arc<dyn Backend> = hosted.clone();
    Ok(Session { rl: Rawlink::new(backend)?, hosted, quiet })
}

#[cfg(windows)]
fn connect(_o: &Options, _quiet: bool) -> Result<Session, Error> {
    Ok(Session { rl: Rawlink::open_windows()?, quiet: _quiet })
}

#[cfg(not(any(windows, target_os = "linux")))]
fn connect(_o: &Options, _quiet: bool) -> Result<Session, Error> {
    Err(Error::Backend("rawlink runs on Windows (the driver) or Linux (the hosted driver)".into()))
}

/// For extcap: nothing on stderr but errors (Wireshark shows stderr as an error).
pub fn connect_quietly(o: &Options) -> Result<Session, Error> {
    connect(o, true)
}

impl Session {
    /// As [`Session::finish`], printing only findings.
    pub fn finish_quietly(mut self) -> bool {
        self.quiet = true;
        self.finish()
    }

    /// Unloads a hosted driver and prints the verifier's report; false if it found anything.
    fn finish(self) -> bool {
        #[cfg(target_os = "linux")]
        {
            drop(self.rl);
            match self.hosted.shutdown() {
                Ok(r) if r.clean() => {
                    if !self.quiet {
                        eprintln!("rawlink: hosted driver unloaded; verifier: no violations, no leaks");
                    }
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
    let argv: Vec<String> = std::env::args().collect();
    // Wireshark runs extcap programs with its own arguments (no subcommand).
    if argv.iter().skip(1).any(|a| a.starts_with("--extcap-") || a == "--capture") {
        return extcap::run(&argv);
    }
    let cli = Cli::parse();
    let session = match connect(&cli.options(), false) {
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
