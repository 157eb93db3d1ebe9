//! Wireshark's extcap protocol: placed in Wireshark's extcap folder (or `WIRESHARK_EXTCAP_DIR`), `rawlink`
//! lists every adapter the driver is bound to as a capture interface, and captures through the driver into
//! the FIFO Wireshark/tshark reads.
//!
//! Wireshark calls: `--extcap-interfaces`, `--extcap-dlts --extcap-interface IF`, `--extcap-config
//! --extcap-interface IF`, `--capture --extcap-interface IF --fifo PATH [--extcap-capture-filter F] [options]`.
//! Options of ours: `--ethertype LIST`, `--snaplen N`, and on Linux `--tap NAME` / `--driver PATH` (also from
//! the environment: `RAWLINK_TAP`, `RAWLINK_PACKAGE_DIR`), since Wireshark passes only what it was told.

use std::process::ExitCode;

/// Interface values: `rawlink<binding index>`.
const PREFIX: &str = "rawlink";

fn value<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let eq = format!("{name}=");
    argv.iter().enumerate().find_map(
        |(i, a)| {
            if a == name {
                argv.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix(&eq)
            }
        },
    )
}

fn has(argv: &[String], name: &str) -> bool {
    argv.iter().any(|a| a == name)
}

pub fn run(argv: &[String]) -> ExitCode {
    match serve(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Wireshark shows what an extcap program writes to stderr.
            eprintln!("rawlink: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
fn options(argv: &[String]) -> crate::Options {
    crate::Options {
        tap: value(argv, "--tap")
            .map(str::to_owned)
            .or_else(|| std::env::var("RAWLINK_TAP").ok().filter(|t| !t.is_empty())),
        driver: value(argv, "--driver").map(std::path::PathBuf::from),
        ..crate::Options::default()
    }
}

#[cfg(not(target_os = "linux"))]
fn options(_argv: &[String]) -> crate::Options {
    crate::Options {}
}

fn serve(argv: &[String]) -> Result<(), String> {
    if has(argv, "--extcap-interfaces") {
        println!(
            "extcap {{version={}}}{{help=https://example.invalid/rawlink}}{{display=rawlink: capture through the rawlink NDIS driver}}",
            env!("CARGO_PKG_VERSION")
        );
        let s = crate::connect_quietly(&options(argv)).map_err(|e| e.to_string())?;
        let all = s.rl.adapters().map_err(|e| e.to_string());
        let ok = s.finish_quietly();
        for a in all? {
            println!(
                "interface {{value={PREFIX}{}}}{{display=rawlink: {} ({})}}",
                a.index,
                a.friendly_name,
                a.mac_text()
            );
        }
        return if ok { Ok(()) } else { Err("the hosted driver's verifier reported findings".into()) };
    }
    let iface = value(argv, "--extcap-interface");
    let index = |i: Option<&str>| -> Result<String, String> {
        let i = i.ok_or("--extcap-interface is missing")?;
        i.strip_prefix(PREFIX)
            .filter(|n| n.parse::<u32>().is_ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("--extcap-interface {i}: not a rawlink interface (rawlink<N>)"))
    };
    if has(argv, "--extcap-dlts") {
        index(iface)?;
        println!("dlt {{number=1}}{{name=EN10MB}}{{display=Ethernet}}");
        return Ok(());
    }
    if has(argv, "--extcap-config") {
        println!(
            "arg {{number=0}}{{call=--ethertype}}{{display=EtherTypes}}{{type=string}}{{tooltip=Only these EtherTypes: arp, ipv4, ipv6, vlan or numbers, comma-separated (empty: all)}}"
        );
        println!(
            "arg {{number=1}}{{call=--snaplen}}{{display=Bytes per frame}}{{type=unsigned}}{{default=0}}{{tooltip=Keep at most this many bytes of each frame (0: whole frames)}}"
        );
        #[cfg(target_os = "linux")]
        println!(
            "arg {{number=2}}{{call=--tap}}{{display=TAP interface (hosted driver)}}{{type=string}}{{tooltip=Linux: the hosted driver's adapter on this TAP interface (root)}}"
        );
        return Ok(());
    }
    if has(argv, "--capture") {
        let index = index(iface)?;
        let fifo = value(argv, "--fifo").ok_or("--capture needs --fifo PATH")?;
        if let Some(f) = value(argv, "--extcap-capture-filter").filter(|f| !f.trim().is_empty()) {
            return Err(format!(
                "capture filter `{f}`: rawlink filters in the driver by EtherType; use the EtherTypes option instead"
            ));
        }
        let types: Vec<String> = value(argv, "--ethertype")
            .map(|t| t.split(',').filter(|s| !s.trim().is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let snaplen: u32 = match value(argv, "--snaplen") {
            Some(s) => s.parse().map_err(|_| format!("--snaplen {s}: not a number"))?,
            None => 0,
        };
        let s = crate::connect_quietly(&options(argv)).map_err(|e| e.to_string())?;
        let r = crate::commands::capture(
            &s,
            &index,
            Some(fifo),
            None,
            None,
            &types,
            &["promiscuous".to_owned()],
            snaplen,
            4096,
            crate::commands::RxPath::Auto,
        );
        let ok = s.finish_quietly();
        return match r {
            Ok(()) => ok.then_some(()).ok_or_else(|| "the hosted driver's verifier reported findings".into()),
            // Wireshark closing the FIFO ends the capture.
            Err(e) if e.to_string().contains("Broken pipe") => Ok(()),
            Err(e) => Err(e.to_string()),
        };
    }
    Err("unknown extcap request (expected --extcap-interfaces, --extcap-dlts, --extcap-config or --capture)".into())
}
