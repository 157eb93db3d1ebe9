//! Just enough Ethernet, ARP, IPv4 and ICMP to resolve and ping a neighbour from user space, and to print a
//! one-line summary of any frame. Parsers take any bytes and never panic: a short or foreign frame is `None`.

use std::net::Ipv4Addr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const BROADCAST: [u8; 6] = [0xFF; 6];

/// The shortest Ethernet frame without its FCS; shorter ones are padded with zeros.
pub const MIN_FRAME: usize = 60;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn mac_at(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

fn ip_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

/// An EtherType by name (`arp`, `ipv4`, `ipv6`, `vlan`) or number (`0x0806`).
pub fn parse_ethertype(s: &str) -> Option<u16> {
    match s.trim().to_ascii_lowercase().as_str() {
        "arp" => Some(ETHERTYPE_ARP),
        "ip" | "ipv4" => Some(ETHERTYPE_IPV4),
        "ipv6" => Some(ETHERTYPE_IPV6),
        "vlan" => Some(ETHERTYPE_VLAN),
        t => match t.strip_prefix("0x") {
            Some(h) => u16::from_str_radix(h, 16).ok(),
            None => t.parse().ok(),
        },
    }
}

/// An Ethernet frame's header: destination, source and the EtherType (the inner one behind 802.1Q/802.1ad
/// tags), and where the payload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: u16,
    pub vlan: Option<u16>,
    pub payload_at: usize,
}

impl Ethernet {
    pub fn parse(f: &[u8]) -> Option<Self> {
        let (dst, src) = (mac_at(f, 0)?, mac_at(f, 6)?);
        let mut at = 12;
        let mut ethertype = be16(f, at)?;
        let mut vlan = None;
        while ethertype == ETHERTYPE_VLAN || ethertype == 0x88A8 {
            vlan = Some(be16(f, at + 2)? & 0x0FFF);
            at += 4;
            ethertype = be16(f, at)?;
        }
        Some(Self { dst, src, ethertype, vlan, payload_at: at + 2 })
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

/// An ARP packet (Ethernet/IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Arp {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;

    /// Who has `target`? Tell `sender_ip` (at `sender_mac`); broadcast.
    pub fn request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target: Ipv4Addr) -> Self {
        Self { op: Self::REQUEST, sender_mac, sender_ip, target_mac: [0; 6], target_ip: target }
    }

    /// The answer to `req` from `mac`.
    pub fn reply_to(req: &Arp, mac: [u8; 6]) -> Self {
        Self {
            op: Self::REPLY,
            sender_mac: mac,
            sender_ip: req.target_ip,
            target_mac: req.sender_mac,
            target_ip: req.sender_ip,
        }
    }

    /// The whole frame: requests go to broadcast, replies to the asker.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
        p.extend_from_slice(&self.op.to_be_bytes());
        p.extend_from_slice(&self.sender_mac);
        p.extend_from_slice(&self.sender_ip.octets());
        p.extend_from_slice(&self.target_mac);
        p.extend_from_slice(&self.target_ip.octets());
        let dst = if self.op == Self::REQUEST { BROADCAST } else { self.target_mac };
        ethernet(dst, self.sender_mac, ETHERTYPE_ARP, &p)
    }

    pub fn parse(f: &[u8]) -> Option<Self> {
        let e = Ethernet::parse(f)?;
        if e.ethertype != ETHERTYPE_ARP {
            return None;
        }
        let p = f.get(e.payload_at..)?;
        if p.get(0..6)? != [0, 1, 0x08, 0x00, 6, 4] {
            return None;
        }
        Some(Self {
            op: be16(p, 6)?,
            sender_mac: mac_at(p, 8)?,
            sender_ip: ip_at(p, 14)?,
            target_mac: mac_at(p, 18)?,
            target_ip: ip_at(p, 24)?,
        })
    }
}

/// The Internet checksum (RFC 1071) of `b`.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // Folded to 16 bits above.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// An ICMP echo request or reply in IPv4 in Ethernet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// 8 request, 0 reply.
    pub icmp_type: u8,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub seq: u16,
    pub payload: Vec<u8>,
}

impl Echo {
    pub const REQUEST: u8 = 8;
    pub const REPLY: u8 = 0;

    pub fn to_frame(&self) -> Vec<u8> {
        let mut icmp = vec![self.icmp_type, 0, 0, 0];
        icmp.extend_from_slice(&self.id.to_be_bytes());
        icmp.extend_from_slice(&self.seq.to_be_bytes());
        icmp.extend_from_slice(&self.payload);
        let c = checksum(&icmp);
        if let Some(d) = icmp.get_mut(2..4) {
            d.copy_from_slice(&c.to_be_bytes());
        }
        let total = u16::try_from(20 + icmp.len()).unwrap_or(u16::MAX);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&self.seq.to_be_bytes()); // identification
        ip.extend_from_slice(&[0x40, 0, self.ttl, 1, 0, 0]); // don't fragment, TTL, ICMP
        ip.extend_from_slice(&self.src_ip.octets());
        ip.extend_from_slice(&self.dst_ip.octets());
        let c = checksum(&ip);
        if let Some(d) = ip.get_mut(10..12) {
            d.copy_from_slice(&c.to_be_bytes());
        }
        ip.extend_from_slice(&icmp);
        ethernet(self.dst_mac, self.src_mac, ETHERTYPE_IPV4, &ip)
    }

    /// An echo request or reply, with both checksums verified.
    pub fn parse(f: &[u8]) -> Option<Self> {
        let e = Ethernet::parse(f)?;
        if e.ethertype != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = f.get(e.payload_at..)?;
        let ihl = usize::from(ip.first()? & 0x0F) * 4;
        let total = usize::from(be16(ip, 2)?);
        if ip.first()? >> 4 != 4 || ihl < 20 || total < ihl || ip.len() < total || *ip.get(9)? != 1 {
            return None;
        }
        if checksum(ip.get(..ihl)?) != 0 {
            return None;
        }
        let icmp = ip.get(ihl..total)?;
        if icmp.len() < 8 || checksum(icmp) != 0 {
            return None;
        }
        let icmp_type = *icmp.first()?;
        if icmp_type != Self::REQUEST && icmp_type != Self::REPLY {
            return None;
        }
        Some(Self {
            icmp_type,
            src_mac: e.src,
            dst_mac: e.dst,
            src_ip: ip_at(ip, 12)?,
            dst_ip: ip_at(ip, 16)?,
            ttl: *ip.get(8)?,
            id: be16(icmp, 4)?,
            seq: be16(icmp, 6)?,
            payload: icmp.get(8..)?.to_vec(),
        })
    }

    /// The reply a host at the request's destination sends.
    pub fn reply(&self) -> Self {
        Self {
            icmp_type: Self::REPLY,
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            ttl: 64,
            id: self.id,
            seq: self.seq,
            payload: self.payload.clone(),
        }
    }
}

/// One line describing a frame: addresses, type, and what ARP/ICMP/IP say.
pub fn summary(f: &[u8]) -> String {
    let Some(e) = Ethernet::parse(f) else { return format!("{} bytes, shorter than an Ethernet header", f.len()) };
    let addrs = format!("{} > {}", crate::mac_text(&e.src), crate::mac_text(&e.dst));
    let vlan = e.vlan.map(|v| format!(" vlan {v}")).unwrap_or_default();
    let what = if let Some(a) = Arp::parse(f) {
        match a.op {
            Arp::REQUEST => format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip),
            Arp::REPLY => format!("ARP {} is-at {}", a.sender_ip, crate::mac_text(&a.sender_mac)),
            op => format!("ARP op {op}"),
        }
    } else if let Some(p) = Echo::parse(f) {
        let kind = if p.icmp_type == Echo::REQUEST { "request" } else { "reply" };
        format!("IPv4 {} > {}: ICMP echo {kind}, id {}, seq {}", p.src_ip, p.dst_ip, p.id, p.seq)
    } else {
        match e.ethertype {
            ETHERTYPE_IPV4 => match (f.get(e.payload_at + 9), ip_at(f, e.payload_at + 12), ip_at(f, e.payload_at + 16))
            {
                (Some(proto), Some(s), Some(d)) => format!("IPv4 {s} > {d}: protocol {proto}"),
                _ => "IPv4 (truncated)".into(),
            },
            ETHERTYPE_IPV6 => "IPv6".into(),
            t if t < 0x0600 => format!("802.3 length {t}"),
            t => format!("EtherType {t:#06x}"),
        }
    };
    format!("{addrs}{vlan} {what}, {} bytes", f.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0x52, 0x4c, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0x5e, 0, 0, 1];

    #[test]
    fn arp_requests_and_replies_round_trip() {
        let req = Arp::request(A, Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 1));
        let f = req.to_frame();
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &BROADCAST);
        assert_eq!(Arp::parse(&f), Some(req));
        let rep = Arp::reply_to(&req, B);
        let g = rep.to_frame();
        assert_eq!(&g[0..6], &A);
        assert_eq!(Arp::parse(&g), Some(rep));
        assert!(summary(&g).contains("ARP 192.0.2.1 is-at 02:00:5e:00:00:01"));
        for n in 0..f.len() {
            let _ = Arp::parse(&f[..n]);
        }
    }

    #[test]
    fn echo_round_trips_with_valid_checksums_and_corruption_is_refused() {
        let e = Echo {
            icmp_type: Echo::REQUEST,
            src_mac: A,
            dst_mac: B,
            src_ip: Ipv4Addr::new(192, 0, 2, 2),
            dst_ip: Ipv4Addr::new(192, 0, 2, 1),
            ttl: 64,
            id: 0x1234,
            seq: 7,
            payload: (0..56).collect(),
        };
        let f = e.to_frame();
        assert_eq!(f.len(), 14 + 20 + 8 + 56);
        assert_eq!(Echo::parse(&f), Some(e.clone()));
        let r = e.reply();
        assert_eq!(Echo::parse(&r.to_frame()).map(|p| (p.icmp_type, p.seq)), Some((Echo::REPLY, 7)));
        let mut bad = f.clone();
        bad[50] ^= 1;
        assert_eq!(Echo::parse(&bad), None, "a payload bit flip fails the ICMP checksum");
        for n in 0..f.len() {
            let _ = Echo::parse(&f[..n]);
            let _ = summary(&f[..n]);
        }
        assert!(summary(&f).contains("ICMP echo request, id 4660, seq 7"));
    }

    #[test]
    fn ethertypes_by_name_and_vlan_tags_are_looked_through() {
        assert_eq!(parse_ethertype("arp"), Some(0x0806));
        assert_eq!(parse_ethertype("0x88b5"), Some(0x88B5));
        assert_eq!(parse_ethertype("nope"), None);
        let mut f = Arp::request(A, Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)).to_frame();
        f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        let e = Ethernet::parse(&f).unwrap();
        assert_eq!((e.ethertype, e.vlan, e.payload_at), (ETHERTYPE_ARP, Some(5), 18));
    }
}
