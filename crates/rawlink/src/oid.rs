//! Names of the OIDs a user is likely to ask for, so `rawlink oid get` takes them by name.

/// (name, value) of well-known NDIS OIDs.
pub const KNOWN: &[(&str, u32)] = &[
    ("OID_GEN_HARDWARE_STATUS", 0x0001_0102),
    ("OID_GEN_MAXIMUM_FRAME_SIZE", 0x0001_0106),
    ("OID_GEN_LINK_SPEED", 0x0001_0107),
    ("OID_GEN_VENDOR_ID", 0x0001_010C),
    ("OID_GEN_VENDOR_DESCRIPTION", 0x0001_010D),
    ("OID_GEN_CURRENT_PACKET_FILTER", 0x0001_010E),
    ("OID_GEN_CURRENT_LOOKAHEAD", 0x0001_010F),
    ("OID_GEN_MAXIMUM_TOTAL_SIZE", 0x0001_0111),
    ("OID_GEN_MEDIA_CONNECT_STATUS", 0x0001_0114),
    ("OID_GEN_LINK_STATE", 0x0001_0207),
    ("OID_GEN_XMIT_OK", 0x0002_0101),
    ("OID_GEN_RCV_OK", 0x0002_0102),
    ("OID_GEN_STATISTICS", 0x0002_0106),
    ("OID_802_3_PERMANENT_ADDRESS", 0x0101_0101),
    ("OID_802_3_CURRENT_ADDRESS", 0x0101_0102),
    ("OID_802_3_MULTICAST_LIST", 0x0101_0103),
    ("OID_802_3_MAXIMUM_LIST_SIZE", 0x0101_0104),
];

/// The name of `oid`, if it is a known one.
pub fn name(oid: u32) -> Option<&'static str> {
    KNOWN.iter().find(|(_, v)| *v == oid).map(|(n, _)| *n)
}

/// An OID by name (with or without `OID_`, any case) or number (`0x00010106` or decimal).
pub fn parse(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if let Ok(v) = t.parse::<u32>() {
        return Some(v);
    }
    let up = t.to_ascii_uppercase();
    let full = if up.starts_with("OID_") { up } else { format!("OID_{up}") };
    KNOWN.iter().find(|(n, _)| *n == full).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn oids_parse_by_name_or_number() {
        assert_eq!(super::parse("OID_GEN_MAXIMUM_FRAME_SIZE"), Some(0x0001_0106));
        assert_eq!(super::parse("gen_maximum_frame_size"), Some(0x0001_0106));
        assert_eq!(super::parse("0x01010102"), Some(0x0101_0102));
        assert_eq!(super::parse("65798"), Some(65798));
        assert_eq!(super::parse("OID_NOPE"), None);
        assert_eq!(super::name(0x0101_0102), Some("OID_802_3_CURRENT_ADDRESS"));
    }
}
