//! Throughput of the real rawlink.sys in ndis-host (`cargo xtask bench`, or
//! `cargo run --release --example bench -- target/rawlink-package/rawlink.sys [--seconds S] [--frames N]`).
//!
//! Measures, per frame size: receive → read (frames indicated in NBLs of several NET_BUFFERs, read back in
//! 256 KiB batches), write → send (64 frames per WriteFile), and NDISPROT mode (one frame per ReadFile and per
//! WriteFile) for comparison. The numbers include the emulator (thread hand-offs, IRQL bookkeeping, tracing):
//! they compare code paths of the driver, they are not Windows numbers. Nothing here is a pass/fail test; the
//! run only fails if the driver loses frames or the verifier reports a finding.

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = linux::main() {
        eprintln!("bench: error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("bench: ndis-host runs only on Linux");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
mod linux {
    use ndis_host::host::{Host, HostConfig};
    use ndis_host::io::Handle;
    use ndis_host::ndis::{AdapterConfig, ReceiveShape};
    use rawlink_abi::{ndisprot, rawlink, FrameHeader, Frames};
    use std::time::{Duration, Instant};

    type Result<T> = std::result::Result<T, String>;

    /// Frames per indication (several NBLs of `NBS_PER_NBL` NET_BUFFERs); fits the default 1 MiB queue.
    const BURST: usize = 512;
    const NBS_PER_NBL: usize = 8;
    const READ_BATCH: usize = 256 * 1024;
    const WRITE_BATCH: usize = 64;
    const SIZES: [usize; 3] = [64, 512, 1514];

    struct Options {
        sys: std::path::PathBuf,
        /// Time budget per case.
        seconds: f64,
        /// Frame budget per case (whichever of the two runs out first).
        frames: u64,
        /// Where `--json PATH` writes the cases.
        json: Option<std::path::PathBuf>,
    }

    fn options() -> Result<Options> {
        let mut args = std::env::args().skip(1);
        let mut o =
            Options { sys: "target/rawlink-package/rawlink.sys".into(), seconds: 2.0, frames: 1_000_000, json: None };
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "--seconds" => o.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
                "--frames" => o.frames = value("--frames")?.parse().map_err(|e| format!("--frames: {e}"))?,
                "--json" => o.json = Some(value("--json")?.into()),
                "-h" | "--help" => {
                    return Err(
                        "usage: bench [PATH/rawlink.sys] [--seconds S per case] [--frames N per case] [--json PATH]"
                            .into(),
                    )
                }
                path => o.sys = path.into(),
            }
        }
        Ok(o)
    }

    /// One row of the table.
    struct Row {
        /// `receive` or `send` (the JSON's direction).
        direction: &'static str,
        /// `one-frame`, `batched` or `ring` (the JSON's mode).
        mode: &'static str,
        case: String,
        size: usize,
        frames: u64,
        elapsed: Duration,
        calls: u64,
        note: String,
    }

    impl Row {
        /// The case as one object of the `--json` schema. Nothing is dropped by these closed-loop cases
        /// (a lost frame fails the run), and instruction counts are not measured yet: null.
        fn json(&self) -> String {
            let secs = self.elapsed.as_secs_f64().max(1e-9);
            // CAST: counts far below 2^52, exact in f64.
            let fps = self.frames as f64 / secs;
            let gbit = fps * self.size as f64 * 8.0 / 1e9;
            format!(
                "{{\"direction\":\"{}\",\"mode\":\"{}\",\"frame_bytes\":{},\"frames_per_s\":{:.1},\"gbit_per_s\":{:.6},\"drops\":0,\"driver_instructions_per_frame\":null}}",
                self.direction, self.mode, self.size, fps, gbit
            )
        }

        fn print(&self) {
            let secs = self.elapsed.as_secs_f64().max(1e-9);
            // CAST: counts far below 2^52, exact in f64.
            let fps = self.frames as f64 / secs;
            let mbs = fps * self.size as f64 / 1e6;
            let per_call = self.frames as f64 / self.calls.max(1) as f64;
            println!(
                "{:<34} {:>5} {:>9} {:>7.2} {:>12.0} {:>9.1} {:>10.1}  {}",
                self.case, self.size, self.frames, secs, fps, mbs, per_call, self.note
            );
        }
    }

    fn frame(src: [u8; 6], n: usize, len: usize) -> Vec<u8> {
        let mut f = vec![0xFF; 6]; // broadcast
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x88, 0xB5]); // local experimental EtherType
        f.extend((0..len.saturating_sub(14)).map(|i| (i ^ n).to_le_bytes()[0])); // a byte pattern
        f
    }

    /// The rawlink write buffer for `frames`: 8-aligned records, each a FrameHeader and the frame.
    fn batch(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        for f in frames {
            let at = b.len();
            b.resize(at + FrameHeader::record_len(f.len()), 0);
            let _ = rawlink_abi::write_record(&mut b[at..], f); // sized for it just above
        }
        b
    }

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
    }

    fn loaded(bytes: &[u8], adapter: &AdapterConfig) -> Result<Host> {
        let mut h = Host::load(bytes, HostConfig::default()).map_err(|e| format!("loading the driver: {e}"))?;
        h.add_adapter(adapter.clone()).map_err(|e| format!("adding the adapter: {e}"))?;
        match h.driver_entry().map_err(|e| format!("DriverEntry: {e}"))? {
            0 => Ok(h),
            s => Err(format!("DriverEntry returned {s:#x}")),
        }
    }

    /// Opens `\\.\RawLink` and attaches it, rawlink style (by binding index) or NDISPROT style (by name).
    fn attach(h: &Host, adapter: &AdapterConfig, ndisprot_mode: bool) -> Result<Handle> {
        let f = h.open("\\\\.\\RawLink").map_err(|e| format!("opening \\\\.\\RawLink: {e:?}"))?;
        let r = if ndisprot_mode {
            h.device_io_control(f, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &utf16z(&adapter.name), 0)
        } else {
            h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0)
        }
        .map_err(|e| format!("attaching: {e}"))?;
        if r.status != 0 {
            return Err(format!("attaching: status {:#x}", r.status));
        }
        Ok(f)
    }

    /// Closes, unloads, and requires a clean verifier.
    fn finish(mut h: Host, f: Handle) -> Result<()> {
        h.close(f).map_err(|e| format!("closing: {e}"))?;
        h.unload().map_err(|e| format!("unloading: {e}"))?;
        let v = h.violations();
        if !v.is_empty() {
            return Err(format!("verifier findings: {v:#?}"));
        }
        Ok(())
    }

    /// Indicates bursts of `size`-byte frames and drains them with reads of `read_len` bytes; returns the row.
    fn receive(bytes: &[u8], o: &Options, size: usize, ndisprot_mode: bool) -> Result<Row> {
        let adapter = AdapterConfig::ethernet(1);
        let mut h = loaded(bytes, &adapter)?;
        let f = attach(&h, &adapter, ndisprot_mode)?;
        let read_len = if ndisprot_mode { 1514 } else { READ_BATCH };
        let shape = ReceiveShape { nbs_per_nbl: NBS_PER_NBL, ..ReceiveShape::default() };
        let burst: Vec<Vec<u8>> = (0..BURST).map(|i| frame([2, 0, 0, 0, 0, 9], i, size)).collect();
        let (mut frames, mut reads, mut indicate_time) = (0u64, 0u64, Duration::ZERO);
        let budget = Duration::from_secs_f64(o.seconds);
        let start = Instant::now();
        while frames < o.frames && start.elapsed() < budget {
            let chunk = burst.clone();
            let t = Instant::now();
            h.indicate_receive_shaped(0, 1, chunk, false, shape).map_err(|e| format!("indicating: {e}"))?;
            indicate_time += t.elapsed();
            let mut got = 0;
            loop {
                let r = h.read(f, read_len).map_err(|e| format!("reading: {e}"))?;
                if r.status != 0 {
                    return Err(format!("read: status {:#x}", r.status));
                }
                if r.information == 0 {
                    break;
                }
                reads += 1;
                got += if ndisprot_mode { 1 } else { Frames::new(&r.output).count() };
            }
            if got != BURST {
                return Err(format!("indicated {BURST} frames of {size} bytes, read {got}"));
            }
            frames += BURST as u64;
        }
        let elapsed = start.elapsed();
        finish(h, f)?;
        let share = 100.0 * indicate_time.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        let case = if ndisprot_mode {
            "receive→read, NDISPROT 1/read".to_owned()
        } else {
            format!("receive→read, {} KiB reads", READ_BATCH / 1024)
        };
        Ok(Row {
            direction: "receive",
            mode: if ndisprot_mode { "one-frame" } else { "batched" },
            case,
            size,
            frames,
            elapsed,
            calls: reads,
            note: format!("{NBS_PER_NBL} NBs/NBL, indicate {share:.0}% of time"),
        })
    }

    /// The mapped ring (`rawlink_abi::ring`): bursts of `size`-byte frames indicated into a ring the process
    /// maps once, drained by copying each frame out of its slot and publishing the consumer index once per
    /// burst — no read call at all while frames keep coming (RING_WAIT is only for an empty ring).
    fn receive_ring(bytes: &[u8], o: &Options, size: usize) -> Result<Row> {
        use rawlink_abi::ring::{self, RingLayout, RingSetup};
        let adapter = AdapterConfig::ethernet(1);
        let mut h = loaded(bytes, &adapter)?;
        let f = attach(&h, &adapter, false)?;
        let slot = u32::try_from(size + FrameHeader::LEN).unwrap_or(u32::MAX).next_power_of_two().max(ring::SLOT_MIN);
        let layout = RingLayout::with_slots(u32::try_from(2 * BURST).unwrap_or(1024), slot)
            .map_err(|e| format!("ring layout: {e:?}"))?;
        let mem =
            std::sync::Arc::new(ndis_host::io::UserMemory::new(layout.len()).map_err(|e| format!("ring memory: {e}"))?);
        let setup = RingSetup { slot_size: slot, flags: 0 }.to_bytes();
        let p = h
            .submit_ioctl_shared(f, ring::IOCTL_RAWLINK_RING_ATTACH, &setup, &mem)
            .map_err(|e| format!("attaching the ring: {e}"))?;
        if p.is_completed() {
            return Err("the ring's attach request did not pend".into());
        }
        let attach_irp = p.irp();
        drop(p);
        let shape = ReceiveShape { nbs_per_nbl: NBS_PER_NBL, ..ReceiveShape::default() };
        let burst: Vec<Vec<u8>> = (0..BURST).map(|i| frame([2, 0, 0, 0, 0, 9], i, size)).collect();
        let (mut frames, mut batches, mut consumer, mut indicate_time) = (0u64, 0u64, 0u32, Duration::ZERO);
        let mut scratch = vec![0u8; layout.capacity()];
        let mut head = [0u8; FrameHeader::LEN];
        let budget = Duration::from_secs_f64(o.seconds);
        let start = Instant::now();
        while frames < o.frames && start.elapsed() < budget {
            let chunk = burst.clone();
            let t = Instant::now();
            h.indicate_receive_shaped(0, 1, chunk, false, shape).map_err(|e| format!("indicating: {e}"))?;
            indicate_time += t.elapsed();
            let producer = mem.load_u32(ring::PRODUCER_OFFSET);
            let mut got = 0;
            while consumer != producer {
                let at = layout.slot_offset(consumer);
                mem.read_into(at, &mut head);
                let hd = FrameHeader::parse(&head).map_err(|_| "a slot without a header".to_owned())?;
                let data = scratch.get_mut(..hd.captured_length as usize).ok_or("a slot longer than the ring's")?;
                mem.read_into(at + FrameHeader::LEN, data);
                if hd.captured_length as usize != size {
                    return Err(format!("a {size}-byte frame arrived as {} bytes", hd.captured_length));
                }
                consumer = consumer.wrapping_add(1);
                got += 1;
            }
            mem.store_u32(ring::CONSUMER_OFFSET, consumer);
            batches += 1;
            if got != BURST {
                return Err(format!("indicated {BURST} frames of {size} bytes, the ring got {got}"));
            }
            frames += BURST as u64;
        }
        let elapsed = start.elapsed();
        h.close(f).map_err(|e| format!("closing: {e}"))?;
        match h.wait_request(attach_irp, Duration::from_secs(10)) {
            Ok(Some(r)) if r.status == STATUS_CANCELLED => {}
            other => return Err(format!("the ring's attach request at close: {other:?}")),
        }
        h.unload().map_err(|e| format!("unloading: {e}"))?;
        let v = h.violations();
        if !v.is_empty() {
            return Err(format!("verifier findings: {v:#?}"));
        }
        let share = 100.0 * indicate_time.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        Ok(Row {
            direction: "receive",
            mode: "ring",
            case: format!("receive→ring, {} slots of {slot} B", layout.slot_count),
            size,
            frames,
            elapsed,
            calls: batches,
            note: format!("no read calls; indicate {share:.0}% of time"),
        })
    }

    const STATUS_CANCELLED: i32 = 0xC000_0120u32 as i32;

    /// Writes `size`-byte frames, `per_write` per WriteFile (NDISPROT: one raw frame per write).
    fn send(bytes: &[u8], o: &Options, size: usize, ndisprot_mode: bool) -> Result<Row> {
        let adapter = AdapterConfig::ethernet(1);
        let h = loaded(bytes, &adapter)?;
        let f = attach(&h, &adapter, ndisprot_mode)?;
        let per_write = if ndisprot_mode { 1 } else { WRITE_BATCH };
        let frames_of_batch: Vec<Vec<u8>> = (0..per_write).map(|i| frame(adapter.mac, i, size)).collect();
        let buffer = if ndisprot_mode { frames_of_batch.concat() } else { batch(&frames_of_batch) };
        let (mut frames, mut writes) = (0u64, 0u64);
        let budget = Duration::from_secs_f64(o.seconds);
        let start = Instant::now();
        while frames < o.frames && start.elapsed() < budget {
            let r = h.write(f, &buffer).map_err(|e| format!("writing: {e}"))?;
            if r.status != 0 || r.information != per_write * size {
                return Err(format!("write: status {:#x}, {} bytes", r.status, r.information));
            }
            writes += 1;
            frames += per_write as u64;
        }
        let elapsed = start.elapsed();
        let sent = h.sent_count(0);
        if sent != frames {
            return Err(format!("wrote {frames} frames, the adapter sent {sent}"));
        }
        finish(h, f)?;
        let case = if ndisprot_mode {
            "write→send, NDISPROT 1/write".to_owned()
        } else {
            format!("write→send, {WRITE_BATCH} frames/write")
        };
        Ok(Row {
            direction: "send",
            mode: if ndisprot_mode { "one-frame" } else { "batched" },
            case,
            size,
            frames,
            elapsed,
            calls: writes,
            note: "synchronous send completion".into(),
        })
    }

    pub fn main() -> Result<()> {
        let o = options()?;
        let bytes = std::fs::read(&o.sys).map_err(|e| format!("{}: {e}", o.sys.display()))?;
        println!("rawlink bench: {} in ndis-host, ≤ {} s or {} frames per case", o.sys.display(), o.seconds, o.frames);
        println!(
            "{:<34} {:>5} {:>9} {:>7} {:>12} {:>9} {:>10}  note",
            "case", "bytes", "frames", "s", "frames/s", "MB/s", "frames/call"
        );
        let mut rows = Vec::new();
        for ndisprot_mode in [false, true] {
            for size in SIZES {
                let r = receive(&bytes, &o, size, ndisprot_mode)?;
                r.print();
                rows.push(r);
            }
        }
        for size in SIZES {
            let r = receive_ring(&bytes, &o, size)?;
            r.print();
            rows.push(r);
        }
        for ndisprot_mode in [false, true] {
            for size in SIZES {
                let r = send(&bytes, &o, size, ndisprot_mode)?;
                r.print();
                rows.push(r);
            }
        }
        if let Some(path) = &o.json {
            let cases: Vec<String> = rows.iter().map(Row::json).collect();
            let text = format!("{{\"cases\":[\n{}\n]}}\n", cases.join(",\n"));
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("(cases written to {})", path.display());
        }
        println!("(MB = 10^6 bytes of frame data; ndis-host emulation included, so compare rows, not with Windows)");
        Ok(())
    }
}
