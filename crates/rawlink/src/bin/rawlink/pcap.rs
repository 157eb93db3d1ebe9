//! pcapng out (capture, ping/arp --write) and pcap/pcapng in (replay), through the pcap-file crate.

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// pcapng EPB flags: direction.
pub const INBOUND: u32 = 1;
pub const OUTBOUND: u32 = 2;

/// A pcapng file with one Ethernet interface (the adapter), nanosecond timestamps.
pub struct Writer<W: Write> {
    w: PcapNgWriter<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, adapter: &rawlink::AdapterInfo, snaplen: u32) -> Result<Self, String> {
        let mut w = PcapNgWriter::new(out).map_err(|e| format!("writing the pcapng header: {e}"))?;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: if snaplen == 0 { 0xFFFF } else { snaplen },
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(adapter.name.clone())),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(adapter.friendly_name.clone())),
                InterfaceDescriptionOption::IfMacAddr(Cow::Owned(adapter.mac.to_vec())),
                InterfaceDescriptionOption::IfSpeed(adapter.link_speed),
                // pcap-file writes EPB timestamps in nanoseconds.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        w.write_pcapng_block(idb).map_err(|e| format!("writing the interface block: {e}"))?;
        Ok(Self { w })
    }

    /// Appends one frame (`original_len` before any capture-length cut) with its direction.
    pub fn frame(&mut self, at: SystemTime, data: &[u8], original_len: u32, direction: u32) -> Result<(), String> {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: at.duration_since(UNIX_EPOCH).unwrap_or_default(),
            original_len,
            data: Cow::Borrowed(data),
            options: vec![EnhancedPacketOption::Flags(direction)],
        };
        self.w.write_pcapng_block(epb).map_err(|e| match e {
            pcap_file::PcapError::IoError(io) => format!("writing a frame: {io}"),
            other => format!("writing a frame: {other}"),
        })?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), String> {
        self.w.get_mut().flush().map_err(|e| format!("flushing the capture: {e}"))
    }
}

/// Maps the driver's monotonic 100 ns timestamps to wall-clock time, anchored at the first frame seen.
#[derive(Debug, Default)]
pub struct Clock {
    anchor: Option<(u64, SystemTime)>,
}

impl Clock {
    pub fn wall(&mut self, ts: u64) -> SystemTime {
        let (t0, w0) = *self.anchor.get_or_insert((ts, SystemTime::now()));
        if ts >= t0 {
            w0 + Duration::from_nanos((ts - t0).saturating_mul(100))
        } else {
            w0 - Duration::from_nanos((t0 - ts).saturating_mul(100))
        }
    }
}

/// The frames of a pcap or pcapng file, with their time offsets from the first.
pub fn read_frames(mut input: impl Read, name: &str) -> Result<Vec<(Duration, Vec<u8>)>, String> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
    let magic = bytes.get(..4).ok_or_else(|| format!("{name}: empty or shorter than a capture header"))?;
    let mut out: Vec<(Duration, Vec<u8>)> = Vec::new();
    if magic == [0x0A, 0x0D, 0x0D, 0x0A] {
        let mut r = PcapNgReader::new(&bytes[..]).map_err(|e| format!("{name}: not a valid pcapng file: {e}"))?;
        let mut resolutions: Vec<u8> = Vec::new();
        while let Some(b) = r.next_block() {
            let b = b.map_err(|e| format!("{name}: block {}: {e}", out.len() + 1))?;
            if let Block::InterfaceDescription(i) = &b {
                let resol = i.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfTsResol(v) => Some(*v),
                    _ => None,
                });
                resolutions.push(resol.unwrap_or(6));
            }
            if let Block::EnhancedPacket(p) = b {
                // pcap-file reads the raw timestamp as nanoseconds; scale by the interface's resolution.
                let resol = resolutions.get(p.interface_id as usize).copied().unwrap_or(6);
                let raw = p.timestamp.as_nanos();
                let ns = if resol & 0x80 == 0 && resol <= 9 {
                    raw.saturating_mul(10u128.pow(9 - u32::from(resol)))
                } else {
                    raw
                };
                out.push((Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)), p.data.into_owned()));
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).map_err(|e| format!("{name}: neither pcap nor pcapng: {e}"))?;
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| format!("{name}: packet {}: {e}", out.len() + 1))?;
            out.push((p.timestamp, p.data.into_owned()));
        }
    }
    let first = out.first().map(|f| f.0).unwrap_or_default();
    Ok(out.into_iter().map(|(t, d)| (t.saturating_sub(first), d)).collect())
}
