//! The subcommands.

use crate::pcap::{self, Clock, INBOUND, OUTBOUND};
use crate::Session;
use clap::{Subcommand, ValueEnum};
use rawlink::packet::{self, Arp, Echo};
use rawlink::{abi, Error, Filter, Link, ReadMode, RecvBuffer, SendBatch};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the adapters the driver is bound to.
    Adapters,
    /// Capture frames: to a pcapng file (`-w FILE`, `-w -` for stdout) or one line per frame.
    Capture {
        /// Adapter: index, name, GUID, friendly name or MAC (default: the first).
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// Write pcapng here (`-` = stdout) instead of printing a line per frame.
        #[arg(short = 'w', long)]
        write: Option<String>,
        /// Stop after this many frames.
        #[arg(short = 'c', long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(short = 'd', long)]
        duration: Option<f64>,
        /// Only these EtherTypes (arp, ipv4, ipv6, vlan or a number), comma-separated; at most 16.
        #[arg(long, value_delimiter = ',')]
        ethertype: Vec<String>,
        /// Destination classes: directed, multicast, all-multicast, broadcast, promiscuous (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "promiscuous")]
        dst: Vec<String>,
        /// Keep at most this many bytes of each frame (0 = whole frames).
        #[arg(short = 's', long, default_value_t = 0)]
        snaplen: u32,
        /// The driver's receive queue for this capture, in KiB (with a ring: the ring's data area, at most 8 MiB).
        #[arg(long, default_value_t = 4096)]
        queue_kib: u32,
        /// How frames come up: `auto` uses the driver's mapped ring when it has one and reads otherwise,
        /// `ring` insists on the ring, `read` uses batched reads.
        #[arg(long, value_enum, default_value_t = RxPath::Auto)]
        rx: RxPath,
    },
    /// Send frames given as hex (`ffffffffffff0252...`) or read from a file of raw bytes (one frame).
    Send {
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// Frames as hex, one per argument (spaces, `:` and `-` are ignored).
        hex: Vec<String>,
        /// A file holding one raw frame.
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// Send this many copies.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Allow source MACs other than the adapter's.
        #[arg(long)]
        any_source: bool,
    },
    /// Send the frames of a pcap/pcapng file: at its own timing, at a rate, or flat out.
    Replay {
        #[arg(short, long, default_value = "0")]
        interface: String,
        file: PathBuf,
        /// Frames per second (instead of the file's timing).
        #[arg(long, conflicts_with = "flat_out")]
        rate: Option<f64>,
        /// As fast as the driver takes them, in batches.
        #[arg(long)]
        flat_out: bool,
        /// Allow source MACs other than the adapter's (frames from other hosts' captures).
        #[arg(long)]
        any_source: bool,
    },
    /// Resolve an IPv4 address with ARP, built and sent in user space through the driver.
    Arp {
        target: Ipv4Addr,
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// Our IPv4 address (the ARP sender).
        #[arg(long, default_value = "192.0.2.2")]
        source: Ipv4Addr,
        #[arg(short = 'c', long, default_value_t = 3)]
        count: u32,
        /// Also write the exchange (sent and received frames) to this pcapng file.
        #[arg(short = 'w', long)]
        write: Option<PathBuf>,
    },
    /// ICMP echo (ping) built in user space: ARP first, then echo requests, with round-trip times.
    Ping {
        target: Ipv4Addr,
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// Our IPv4 address (answered for in ARP while pinging).
        #[arg(long, default_value = "192.0.2.2")]
        source: Ipv4Addr,
        #[arg(short = 'c', long, default_value_t = 3)]
        count: u16,
        /// Seconds between requests.
        #[arg(long, default_value_t = 0.2)]
        interval: f64,
        /// ICMP payload bytes.
        #[arg(long, default_value_t = 56)]
        size: usize,
        /// Also write the exchange (ARP and echo, both directions) to this pcapng file.
        #[arg(short = 'w', long)]
        write: Option<PathBuf>,
    },
    /// Counters of the binding (and of a fresh handle).
    Stats {
        #[arg(short, long, default_value = "0")]
        interface: String,
    },
    /// Query or set an OID of the adapter.
    Oid {
        #[command(subcommand)]
        op: OidOp,
    },
    /// Wait for adapter events (link, power, removal) and print them.
    Events {
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// Stop after this many events.
        #[arg(short = 'c', long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(short = 'd', long)]
        duration: Option<f64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OidOp {
    /// Query: prints the value as hex (and as a number when it is 4 or 8 bytes).
    Get {
        /// Name (OID_GEN_MAXIMUM_FRAME_SIZE, gen_link_speed ...) or number (0x00010106).
        oid: String,
        #[arg(short, long, default_value = "0")]
        interface: String,
        /// The most bytes expected.
        #[arg(long, default_value_t = 256)]
        len: usize,
    },
    /// Set: the value as hex bytes, or `u32:N`.
    Set {
        oid: String,
        value: String,
        #[arg(short, long, default_value = "0")]
        interface: String,
    },
}

type Res = Result<(), Error>;

fn arg(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// Set by Ctrl-C; long-running commands stop and print their summary.
fn interrupted() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
    stop
}

pub fn run(s: &Session, cmd: &Command) -> Res {
    match cmd {
        Command::Adapters => adapters(s),
        Command::Capture { interface, write, count, duration, ethertype, dst, snaplen, queue_kib, rx } => {
            capture(s, interface, write.as_deref(), *count, *duration, ethertype, dst, *snaplen, *queue_kib, *rx)
        }
        Command::Send { interface, hex, file, repeat, any_source } => {
            send(s, interface, hex, file.as_ref(), *repeat, *any_source)
        }
        Command::Replay { interface, file, rate, flat_out, any_source } => {
            replay(s, interface, file, *rate, *flat_out, *any_source)
        }
        Command::Arp { target, interface, source, count, write } => {
            let link = open(s, interface)?;
            let mut x = Exchange::new(&link, write.as_ref())?;
            let mut answered = 0;
            for i in 0..*count {
                let t0 = Instant::now();
                match x.resolve(*source, *target, Duration::from_secs(1))? {
                    Some(mac) => {
                        answered += 1;
                        println!(
                            "ARP reply from {target} [{}]  {:.3} ms",
                            rawlink::mac_text(&mac),
                            t0.elapsed().as_secs_f64() * 1e3
                        );
                    }
                    None => println!("no ARP reply from {target} (request {})", i + 1),
                }
            }
            x.finish()?;
            println!("{count} ARP request(s) sent, {answered} reply(ies)");
            if answered == 0 {
                return Err(Error::Backend(format!("{target} did not answer ARP")));
            }
            Ok(())
        }
        Command::Ping { target, interface, source, count, interval, size, write } => {
            ping(s, interface, *source, *target, *count, *interval, *size, write.as_ref())
        }
        Command::Stats { interface } => {
            let link = open(s, interface)?;
            let b = link.binding_statistics()?;
            let h = link.statistics()?;
            println!("binding {} ({}):", link.info().index, link.info().friendly_name);
            println!("  received {}  delivered {}  filtered {}", b.received, b.delivered, b.filtered);
            println!(
                "  dropped: queue full {}  too large {}  resources {}",
                b.dropped_queue_full, b.dropped_too_large, b.dropped_resources
            );
            println!("  sent {}  send failed {}", b.sent, b.send_failed);
            println!("this handle: received {}  queued {}  pending {}", h.received, h.queued, h.pending);
            Ok(())
        }
        Command::Oid { op } => oid(s, op),
        Command::Events { interface, count, duration } => {
            let link = open(s, interface)?;
            let stop = interrupted();
            let end = duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
            let mut n = 0u64;
            println!("waiting for events on {} (Ctrl-C stops)", link.info().friendly_name);
            while !stop.load(Ordering::SeqCst) && count.is_none_or(|c| n < c) && end.is_none_or(|e| Instant::now() < e)
            {
                if let Some(e) = link.wait_event(Some(Duration::from_millis(200)))? {
                    n += 1;
                    println!("{} {e}", clock_text(SystemTime::now()));
                }
            }
            println!("{n} event(s)");
            Ok(())
        }
    }
}

fn open(s: &Session, interface: &str) -> Result<Link, Error> {
    s.rl.open_adapter(interface)
}

fn adapters(s: &Session) -> Res {
    let all = s.rl.adapters()?;
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|a| {
            [
                a.index.to_string(),
                a.name.clone(),
                a.friendly_name.clone(),
                a.mac_text(),
                a.mtu.to_string(),
                a.speed_text(),
                if a.link_up { "up".into() } else { "down".into() },
                a.state.to_string(),
            ]
        })
        .collect();
    let head = ["#", "NAME", "FRIENDLY NAME", "MAC", "MTU", "SPEED", "LINK", "STATE"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    if rows.is_empty() {
        println!("(the driver is bound to no adapter)");
    }
    Ok(())
}

fn parse_classes(dst: &[String]) -> Result<u32, Error> {
    let mut c = 0;
    for d in dst {
        c |= match d.trim().to_ascii_lowercase().as_str() {
            "directed" => abi::class::DIRECTED,
            "multicast" => abi::class::MULTICAST,
            "all-multicast" => abi::class::ALL_MULTICAST,
            "broadcast" => abi::class::BROADCAST,
            "promiscuous" | "all" => abi::class::PROMISCUOUS | abi::class::ALL_MULTICAST | abi::class::DEFAULT,
            other => {
                return Err(arg(format!(
                    "--dst {other}: expected directed, multicast, all-multicast, broadcast or promiscuous"
                )))
            }
        };
    }
    Ok(c)
}

fn parse_types(types: &[String]) -> Result<Vec<u16>, Error> {
    types
        .iter()
        .map(|t| {
            packet::parse_ethertype(t)
                .ok_or_else(|| arg(format!("--ethertype {t}: not arp, ipv4, ipv6, vlan or a number")))
        })
        .collect()
}

fn clock_text(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, d.subsec_micros())
}

#[allow(clippy::too_many_arguments)]
/// How `capture` takes frames from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RxPath {
    Auto,
    Ring,
    Read,
}

/// The ring `capture` asks for: slots that hold `snaplen` bytes (whole frames of the adapter's MTU when 0),
/// as many as fit `queue_bytes` (a power of two, at least 2).
fn ring_shape(snaplen: u32, mtu: u32, queue_bytes: u32) -> (u32, u32) {
    let frame = if snaplen == 0 { mtu.saturating_add(18) } else { snaplen };
    let slot = frame
        .saturating_add(u32::try_from(abi::FrameHeader::LEN).unwrap_or(u32::MAX))
        .checked_next_power_of_two()
        .unwrap_or(abi::ring::SLOT_MAX)
        .clamp(abi::ring::SLOT_MIN, abi::ring::SLOT_MAX);
    let data = queue_bytes.clamp(abi::QUEUE_MIN, u32::try_from(abi::ring::DATA_MAX).unwrap_or(abi::QUEUE_MIN));
    let slots = (data / slot).max(2);
    // Round down to a power of two so the ring stays within the queue size asked for.
    (1 << (31 - slots.leading_zeros()), slot)
}

#[allow(clippy::too_many_arguments)]
pub fn capture(
    s: &Session,
    interface: &str,
    write: Option<&str>,
    count: Option<u64>,
    duration: Option<f64>,
    ethertype: &[String],
    dst: &[String],
    snaplen: u32,
    queue_kib: u32,
    rx: RxPath,
) -> Res {
    let filter = Filter { classes: parse_classes(dst)?, ethertypes: parse_types(ethertype)? };
    let link = open(s, interface)?;
    link.set_filter(&filter)?;
    link.set_capture_length(snaplen)?;
    let queue_bytes = queue_kib.saturating_mul(1024);
    let ring = match rx {
        RxPath::Read => false,
        RxPath::Auto | RxPath::Ring => {
            let (slots, slot) = ring_shape(snaplen, link.info().mtu, queue_bytes);
            match link.attach_ring(slots, slot) {
                Ok(l) => {
                    eprintln!(
                        "receiving through the driver's mapped ring ({} slots of {} bytes, locked once)",
                        l.slot_count, l.slot_size
                    );
                    true
                }
                Err(e) if rx == RxPath::Auto => {
                    eprintln!("no mapped ring ({e}); using batched reads");
                    false
                }
                Err(e) => return Err(e),
            }
        }
    };
    if !ring {
        link.set_queue_size(queue_bytes)?;
        link.set_read_mode(ReadMode::Blocking { min_bytes: 1, timeout_ms: 100 })?;
    }
    let mut out: Option<pcap::Writer<Box<dyn Write>>> = match write {
        None => None,
        Some(path) => {
            let w: Box<dyn Write> = if path == "-" {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(std::fs::File::create(path).map_err(|e| arg(format!("-w {path}: {e}")))?)
            };
            Some(pcap::Writer::new(w, link.info(), snaplen).map_err(Error::Backend)?)
        }
    };
    let to_stdout = write == Some("-");
    eprintln!("capturing on {} ({}); Ctrl-C stops", link.info().friendly_name, link.info().mac_text());
    let status = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    status.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let stop = interrupted();
    let start = Instant::now();
    let end = duration.map(|d| start + Duration::from_secs_f64(d));
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut clock = Clock::default();
    let mut buf = RecvBuffer::new(1 << 20);
    let mut last_status = Instant::now();
    type Out = Option<pcap::Writer<Box<dyn Write>>>;
    let take = |f: rawlink::Frame<'_>, out: &mut Out, clock: &mut Clock, frames: &mut u64, bytes: &mut u64| -> Res {
        *frames += 1;
        *bytes += u64::from(f.header.original_length);
        let at = clock.wall(f.header.timestamp);
        match out {
            Some(w) => w.frame(at, f.data, f.header.original_length, INBOUND).map_err(Error::Backend)?,
            None => {
                let cut = if f.truncated() { format!(" (captured {})", f.data.len()) } else { String::new() };
                status.suspend(|| println!("{} {}{cut}", clock_text(at), packet::summary(f.data)));
            }
        }
        Ok(())
    };
    while !stop.load(Ordering::SeqCst) && end.is_none_or(|e| Instant::now() < e) {
        if ring {
            let max = count.map_or(usize::MAX, |c| usize::try_from(c.saturating_sub(frames)).unwrap_or(usize::MAX));
            let mut failed = None;
            link.recv_ring(max, Some(Duration::from_millis(250)), |f| {
                if failed.is_none() {
                    failed = take(f, &mut out, &mut clock, &mut frames, &mut bytes).err();
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        } else {
            let batch = link.recv_timeout(&mut buf, Duration::from_millis(250))?;
            for f in batch {
                if count.is_some_and(|c| frames >= c) {
                    break;
                }
                take(f, &mut out, &mut clock, &mut frames, &mut bytes)?;
            }
        }
        if let Some(w) = &mut out {
            w.flush().map_err(Error::Backend)?;
        }
        if let Some(w) = &mut out {
            w.flush().map_err(Error::Backend)?;
        }
        if count.is_some_and(|c| frames >= c) {
            break;
        }
        if !to_stdout && last_status.elapsed() > Duration::from_millis(200) {
            last_status = Instant::now();
            let dropped = link.statistics().map(|s| s.dropped_queue_full + s.dropped_too_large).unwrap_or(0);
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            status.set_message(format!("{frames} frames, {:.1} frames/s, {dropped} dropped", frames as f64 / secs));
            status.tick();
        }
    }
    status.finish_and_clear();
    let st = link.statistics()?;
    eprintln!(
        "{frames} frame(s), {bytes} byte(s) captured in {:.1} s; driver: {} received, {} filtered, {} dropped (queue full {}, too large {}, resources {})",
        start.elapsed().as_secs_f64(),
        st.received,
        st.filtered,
        st.dropped_queue_full + st.dropped_too_large + st.dropped_resources,
        st.dropped_queue_full,
        st.dropped_too_large,
        st.dropped_resources
    );
    Ok(())
}

fn parse_hex(s: &str) -> Result<Vec<u8>, Error> {
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | ':' | '-' | '\n' | '\t')).collect();
    if digits.len() % 2 != 0 {
        return Err(arg(format!("hex frame `{s}`: an odd number of hex digits ({})", digits.len())));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(digits.get(i..i + 2).unwrap_or(""), 16).map_err(|_| {
                arg(format!("hex frame: `{}` at digit {i} is not hex", digits.get(i..i + 2).unwrap_or("")))
            })
        })
        .collect()
}

fn send(s: &Session, interface: &str, hex: &[String], file: Option<&PathBuf>, repeat: u32, any: bool) -> Res {
    let mut frames: Vec<Vec<u8>> = hex.iter().map(|h| parse_hex(h)).collect::<Result<_, _>>()?;
    if let Some(f) = file {
        frames.push(std::fs::read(f).map_err(|e| arg(format!("--file {}: {e}", f.display())))?);
    }
    if frames.is_empty() {
        return Err(arg("nothing to send: give frames as hex arguments or --file".into()));
    }
    let link = open(s, interface)?;
    link.allow_any_source(any)?;
    let mut batch = SendBatch::new();
    for _ in 0..repeat.max(1) {
        for f in &frames {
            batch.push(f);
        }
    }
    let n = link.send(&batch)?.check()?;
    println!("sent {n} frame(s) on {}", link.info().friendly_name);
    Ok(())
}

fn replay(s: &Session, interface: &str, file: &PathBuf, rate: Option<f64>, flat_out: bool, any: bool) -> Res {
    let name = file.display().to_string();
    let f = std::fs::File::open(file).map_err(|e| arg(format!("{name}: {e}")))?;
    let frames = pcap::read_frames(f, &name).map_err(Error::InvalidArgument)?;
    let link = open(s, interface)?;
    link.allow_any_source(any)?;
    let stop = interrupted();
    let start = Instant::now();
    let mut sent = 0usize;
    if flat_out {
        for chunk in frames.chunks(64) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let batch: SendBatch = chunk.iter().map(|(_, d)| d).collect();
            let r = link.send(&batch)?;
            sent += r.sent;
            if let Some(bad) = r.refused {
                return Err(Error::BadFrame { index: sent, len: bad.len, reason: bad.reason });
            }
        }
    } else {
        for (i, (at, data)) in frames.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let due = match rate {
                Some(r) if r > 0.0 => Duration::from_secs_f64(i as f64 / r),
                Some(r) => return Err(arg(format!("--rate {r}: must be above 0"))),
                None => *at,
            };
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            let r = link.send(&std::iter::once(data).collect())?;
            if let Some(bad) = r.refused {
                return Err(Error::BadFrame { index: i, len: bad.len, reason: bad.reason });
            }
            sent += r.sent;
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    println!(
        "replayed {sent} of {} frame(s) from {name} in {secs:.3} s ({:.0} frames/s)",
        frames.len(),
        sent as f64 / secs
    );
    Ok(())
}

/// One handle's conversation with a neighbour: sends, receives, answers ARP for our address, and records
/// both directions for `--write`.
struct Exchange<'l> {
    link: &'l Link,
    buf: RecvBuffer,
    clock: Clock,
    record: Option<pcap::Writer<std::io::BufWriter<std::fs::File>>>,
    source: Option<Ipv4Addr>,
    frames: Vec<(bool, String)>,
}

impl<'l> Exchange<'l> {
    fn new(link: &'l Link, write: Option<&PathBuf>) -> Result<Self, Error> {
        link.set_filter(&Filter::default().with_ethertypes(&[packet::ETHERTYPE_ARP, packet::ETHERTYPE_IPV4]))?;
        link.set_read_mode(ReadMode::Blocking { min_bytes: 1, timeout_ms: 50 })?;
        let record = match write {
            Some(p) => {
                let f = std::fs::File::create(p).map_err(|e| arg(format!("-w {}: {e}", p.display())))?;
                Some(pcap::Writer::new(std::io::BufWriter::new(f), link.info(), 0).map_err(Error::Backend)?)
            }
            None => None,
        };
        Ok(Self {
            link,
            // ARP and echo traffic: 64 KiB holds dozens of full-size frames per read. Every read hands the
            // system a buffer this large (ndis-host allocates and fills it per request), so no larger.
            buf: RecvBuffer::new(64 * 1024),
            clock: Clock::default(),
            record,
            source: None,
            frames: vec![],
        })
    }

    fn send(&mut self, frame: &[u8]) -> Res {
        // Stamped when it is handed to the driver: after the send completed, an answer (stamped by the
        // driver when it arrived) could come out earlier than its request in the capture.
        let at = SystemTime::now();
        self.link.send_frames(&[frame])?;
        self.note(at, frame, OUTBOUND)
    }

    fn note(&mut self, at: SystemTime, frame: &[u8], dir: u32) -> Res {
        self.frames.push((dir == OUTBOUND, packet::summary(frame)));
        if let Some(w) = &mut self.record {
            w.frame(at, frame, u32::try_from(frame.len()).unwrap_or(u32::MAX), dir).map_err(Error::Backend)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a frame `want` accepts; answers ARP requests for our address meanwhile.
    fn wait<T>(&mut self, timeout: Duration, mut want: impl FnMut(&[u8]) -> Option<T>) -> Result<Option<T>, Error> {
        let end = Instant::now() + timeout;
        let mut found = None;
        while found.is_none() && Instant::now() < end {
            let got: Vec<(u64, Vec<u8>)> = {
                let batch = self.link.recv_timeout(&mut self.buf, Duration::from_millis(100))?;
                batch.iter().map(|f| (f.header.timestamp, f.data.to_vec())).collect()
            };
            for (ts, data) in got {
                let at = self.clock.wall(ts);
                self.note(at, &data, INBOUND)?;
                if let (Some(a), Some(me)) = (Arp::parse(&data), self.source) {
                    if a.op == Arp::REQUEST && a.target_ip == me {
                        self.send(&Arp::reply_to(&a, self.link.info().mac).to_frame())?;
                    }
                }
                if found.is_none() {
                    found = want(&data);
                }
            }
        }
        Ok(found)
    }

    fn resolve(&mut self, me: Ipv4Addr, target: Ipv4Addr, timeout: Duration) -> Result<Option<[u8; 6]>, Error> {
        self.source = Some(me);
        self.send(&Arp::request(self.link.info().mac, me, target).to_frame())?;
        self.wait(timeout, |f| {
            Arp::parse(f).filter(|a| a.op == Arp::REPLY && a.sender_ip == target).map(|a| a.sender_mac)
        })
    }

    fn finish(mut self) -> Res {
        if let Some(w) = &mut self.record {
            w.flush().map_err(Error::Backend)?;
        }
        if self.record.is_some() {
            let (out, inb) = self.frames.iter().fold((0, 0), |(o, i), f| if f.0 { (o + 1, i) } else { (o, i + 1) });
            println!("capture: {} frame(s) written ({out} sent, {inb} received):", self.frames.len());
            for (sent, what) in &self.frames {
                println!("  {} {what}", if *sent { "->" } else { "<-" });
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn ping(
    s: &Session,
    interface: &str,
    me: Ipv4Addr,
    target: Ipv4Addr,
    count: u16,
    interval: f64,
    size: usize,
    write: Option<&PathBuf>,
) -> Res {
    let link = open(s, interface)?;
    let mut x = Exchange::new(&link, write)?;
    let mut mac = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        if let Some(m) = x.resolve(me, target, Duration::from_secs(1))? {
            println!("ARP: {target} is at {} ({:.3} ms)", rawlink::mac_text(&m), t0.elapsed().as_secs_f64() * 1e3);
            mac = Some(m);
            break;
        }
    }
    let Some(mac) = mac else {
        x.finish()?;
        return Err(Error::Backend(format!(
            "{target} did not answer ARP (3 requests) on {}",
            link.info().friendly_name
        )));
    };
    println!("PING {target} from {me} via {}: {size} data bytes", link.info().friendly_name);
    let id = u16::try_from(std::process::id() & 0xFFFF).unwrap_or(1);
    let stop = interrupted();
    let mut rtts = Vec::new();
    let mut sent = 0u16;
    for seq in 1..=count {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let echo = Echo {
            icmp_type: Echo::REQUEST,
            src_mac: link.info().mac,
            dst_mac: mac,
            src_ip: me,
            dst_ip: target,
            ttl: 64,
            id,
            seq,
            payload: (0..size).map(|i| u8::try_from(i % 256).unwrap_or(0)).collect(),
        };
        let t0 = Instant::now();
        x.send(&echo.to_frame())?;
        sent += 1;
        let reply = x.wait(Duration::from_secs(1), |f| {
            Echo::parse(f).filter(|e| e.icmp_type == Echo::REPLY && e.id == id && e.seq == seq && e.src_ip == target)
        })?;
        match reply {
            Some(r) => {
                let rtt = t0.elapsed().as_secs_f64() * 1e3;
                rtts.push(rtt);
                println!("{} bytes from {target}: icmp_seq={seq} ttl={} time={rtt:.3} ms", r.payload.len() + 8, r.ttl);
            }
            None => println!("no reply from {target}: icmp_seq={seq}"),
        }
        if seq < count {
            std::thread::sleep(Duration::from_secs_f64(interval.max(0.0)));
        }
    }
    println!("--- {target} ping statistics ---");
    let lost = f64::from(sent - u16::try_from(rtts.len()).unwrap_or(sent)) * 100.0 / f64::from(sent.max(1));
    println!("{sent} packets transmitted, {} received, {lost:.0}% packet loss", rtts.len());
    if !rtts.is_empty() {
        let min = rtts.iter().copied().fold(f64::MAX, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        let avg = rtts.iter().sum::<f64>() / rtts.len() as f64;
        println!("rtt min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms");
    }
    x.finish()?;
    if rtts.is_empty() {
        return Err(Error::Backend(format!("no echo reply from {target}")));
    }
    Ok(())
}

fn oid(s: &Session, op: &OidOp) -> Res {
    let parse = |o: &str| {
        rawlink::oid::parse(o).ok_or_else(|| {
            let names: Vec<&str> = rawlink::oid::KNOWN.iter().map(|k| k.0).collect();
            arg(format!("OID `{o}`: not a number or a known name ({})", names.join(", ")))
        })
    };
    match op {
        OidOp::Get { oid, interface, len } => {
            let code = parse(oid)?;
            let link = open(s, interface)?;
            let v = link.query_oid(code, *len)?;
            let name = rawlink::oid::name(code).map(str::to_owned).unwrap_or_else(|| format!("{code:#010x}"));
            let hex: Vec<String> = v.iter().map(|b| format!("{b:02x}")).collect();
            let num = match v.len() {
                4 => format!(" = {}", u32::from_le_bytes(v.as_slice().try_into().unwrap_or([0; 4]))),
                8 => format!(" = {}", u64::from_le_bytes(v.as_slice().try_into().unwrap_or([0; 8]))),
                _ => String::new(),
            };
            println!("{name}: {} byte(s) {}{num}", v.len(), hex.join(" "));
            Ok(())
        }
        OidOp::Set { oid, value, interface } => {
            let code = parse(oid)?;
            let bytes = match value.strip_prefix("u32:") {
                Some(n) => n
                    .parse::<u32>()
                    .or_else(|_| u32::from_str_radix(n.trim_start_matches("0x"), 16))
                    .map_err(|_| arg(format!("`{value}`: not a u32")))?
                    .to_le_bytes()
                    .to_vec(),
                None => parse_hex(value)?,
            };
            let link = open(s, interface)?;
            link.set_oid(code, &bytes)?;
            println!("set {} ({} byte(s))", rawlink::oid::name(code).unwrap_or(oid), bytes.len());
            Ok(())
        }
    }
}
