//! Per-handle receive filters and the adapter packet filter they add up to. Pure logic, no FFI.
//!
//! A handle asks for destination classes (the `NDIS_PACKET_TYPE_*` bits: directed, multicast,
//! all-multicast, broadcast, promiscuous) and optionally a list of EtherTypes. NDIS filters per binding
//! with one packet filter, so the binding sets the union of its handles' classes and each handle's filter
//! then picks its own frames out of what arrives.

use rawlink_abi::{class, FilterRequest};

/// Ethernet header length (destination, source, EtherType).
pub const ETHERNET_HEADER: usize = 14;
/// Bytes of a frame the filter looks at: the header plus one VLAN tag.
pub const HEAD: usize = 18;

/// EtherTypes of VLAN tags whose inner EtherType is matched instead (802.1Q, 802.1ad).
const TAGS: [u16; 2] = [0x8100, 0x88A8];

/// The classes of a destination address, relative to the adapter's MAC and multicast list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Directed,
    Broadcast,
    /// In the multicast list the binding set.
    ListedMulticast,
    OtherMulticast,
    /// Addressed to another station (seen only in promiscuous mode).
    Other,
}

impl Destination {
    pub const COUNT: usize = 5;
    /// Every destination, in discriminant order (`d as usize` indexes this).
    pub const ALL: [Destination; Self::COUNT] =
        [Self::Directed, Self::Broadcast, Self::ListedMulticast, Self::OtherMulticast, Self::Other];
}

/// Classifies a destination MAC.
pub fn destination(dst: &[u8; 6], mac: &[u8; 6], multicast: &[[u8; 6]]) -> Destination {
    if dst == &[0xFF; 6] {
        Destination::Broadcast
    } else if dst[0] & 1 != 0 {
        if multicast.contains(dst) {
            Destination::ListedMulticast
        } else {
            Destination::OtherMulticast
        }
    } else if dst == mac {
        Destination::Directed
    } else {
        Destination::Other
    }
}

/// Whether the classes in `classes` take a frame for `d`.
pub fn class_accepts(classes: u32, d: Destination) -> bool {
    if classes & class::PROMISCUOUS != 0 {
        return true;
    }
    match d {
        Destination::Directed => classes & class::DIRECTED != 0,
        Destination::Broadcast => classes & class::BROADCAST != 0,
        Destination::ListedMulticast => classes & (class::MULTICAST | class::ALL_MULTICAST) != 0,
        Destination::OtherMulticast => classes & class::ALL_MULTICAST != 0,
        Destination::Other => false,
    }
}

/// The EtherType of a frame, looking inside one VLAN tag; `None` if the frame is too short to have one.
pub fn ethertype(head: &[u8]) -> Option<u16> {
    let outer = u16::from_be_bytes([*head.get(12)?, *head.get(13)?]);
    if TAGS.contains(&outer) {
        return Some(u16::from_be_bytes([*head.get(16)?, *head.get(17)?]));
    }
    Some(outer)
}

/// Whether the frame starting with `head` carries a VLAN tag.
pub fn vlan_tagged(head: &[u8]) -> bool {
    matches!((head.get(12), head.get(13)), (Some(&a), Some(&b)) if TAGS.contains(&u16::from_be_bytes([a, b])))
}

/// One handle's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter(FilterRequest);

impl Default for Filter {
    fn default() -> Self {
        Self(FilterRequest { classes: class::DEFAULT, count: 0, types: [0; FilterRequest::MAX_TYPES] })
    }
}

impl Filter {
    pub fn new(request: FilterRequest) -> Self {
        Self(request)
    }

    /// The destination classes this handle wants (its share of the adapter's packet filter).
    pub fn classes(&self) -> u32 {
        self.0.classes
    }

    /// A filter with other classes and the same EtherTypes.
    pub fn with_classes(mut self, classes: u32) -> Self {
        self.0.classes = classes;
        self
    }

    /// Whether the handle takes a frame for destination `d` whose first bytes are `head`.
    pub fn accepts(&self, d: Destination, head: &[u8]) -> bool {
        class_accepts(self.0.classes, d) && self.types_accept(head)
    }

    /// Whether the filter lists EtherTypes (else every EtherType passes).
    pub fn typed(&self) -> bool {
        !self.0.types().is_empty()
    }

    /// Whether the EtherType part of the filter takes a frame whose first bytes are `head`.
    pub fn types_accept(&self, head: &[u8]) -> bool {
        let types = self.0.types();
        types.is_empty() || ethertype(head).is_some_and(|t| types.contains(&t))
    }
}

/// The adapter packet filter for a set of handle filters: the union of their classes.
pub fn union(filters: impl IntoIterator<Item = u32>) -> u32 {
    filters.into_iter().fold(0, |a, c| a | c)
}

/// A set of multicast group addresses, at most [`Groups::CAPACITY`]: one handle's list, or the union a
/// binding sets on the adapter (OID_802_3_MULTICAST_LIST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Groups {
    list: [[u8; 6]; Groups::CAPACITY],
    len: usize,
}

impl Default for Groups {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Groups {
    /// Addresses a binding sets at most (handles share them).
    pub const CAPACITY: usize = 32;
    pub const EMPTY: Groups = Groups { list: [[0; 6]; Groups::CAPACITY], len: 0 };

    /// The distinct addresses of `addresses`, in first-seen order; `None` if there are more than
    /// [`Groups::CAPACITY`].
    pub fn collect(addresses: impl IntoIterator<Item = [u8; 6]>) -> Option<Groups> {
        let mut g = Groups::EMPTY;
        for a in addresses {
            if !g.insert(a) {
                return None;
            }
        }
        Some(g)
    }

    /// The union of several sets; `None` if it holds more than [`Groups::CAPACITY`] addresses.
    pub fn union<'a>(sets: impl IntoIterator<Item = &'a Groups>) -> Option<Groups> {
        Groups::collect(sets.into_iter().flat_map(|g| g.as_slice().iter().copied()))
    }

    /// Adds `a` unless it is already in; false if the set is full.
    fn insert(&mut self, a: [u8; 6]) -> bool {
        if self.contains(&a) {
            return true;
        }
        match self.list.get_mut(self.len) {
            Some(slot) => {
                *slot = a;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, a: &[u8; 6]) -> bool {
        self.as_slice().contains(a)
    }

    pub fn as_slice(&self) -> &[[u8; 6]] {
        self.list.get(..self.len).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The OID_802_3_MULTICAST_LIST value: the addresses back to back, in `out`; returns its length.
    pub fn write_to(&self, out: &mut [u8; Groups::CAPACITY * 6]) -> usize {
        for (chunk, a) in out.chunks_exact_mut(6).zip(self.as_slice()) {
            chunk.copy_from_slice(a);
        }
        self.len * 6
    }
}

/// How a handle sees a frame's destination: a group the binding listed for another handle only is, for
/// this handle, a multicast address it did not ask for (its MULTICAST class does not take it).
pub fn destination_for(d: Destination, dst: Option<&[u8; 6]>, own: &Groups) -> Destination {
    match (d, dst) {
        (Destination::ListedMulticast, Some(a)) if !own.contains(a) => Destination::OtherMulticast,
        _ => d,
    }
}

/// The lookahead a binding asks the adapter for: the largest any of its handles asked for (0: none asked).
pub fn lookahead(values: impl IntoIterator<Item = u32>) -> u32 {
    values.into_iter().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const GROUP: [u8; 6] = [0x01, 0x00, 0x5E, 0, 0, 1];

    #[test]
    fn every_destination_is_listed_at_its_discriminant() {
        for (i, d) in Destination::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "{d:?}");
        }
    }

    fn frame(dst: [u8; 6], ethertype: u16, inner: Option<u16>) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        if let Some(i) = inner {
            f.extend_from_slice(&[0, 5]);
            f.extend_from_slice(&i.to_be_bytes());
        }
        f.resize(60, 0);
        f
    }

    #[test]
    fn destinations_are_classified() {
        let list = [GROUP];
        assert_eq!(destination(&MAC, &MAC, &list), Destination::Directed);
        assert_eq!(destination(&[0xFF; 6], &MAC, &list), Destination::Broadcast);
        assert_eq!(destination(&GROUP, &MAC, &list), Destination::ListedMulticast);
        assert_eq!(destination(&[0x33, 0x33, 0, 0, 0, 1], &MAC, &list), Destination::OtherMulticast);
        assert_eq!(destination(&[2, 0, 0, 0, 0, 2], &MAC, &list), Destination::Other);
    }

    #[test]
    fn each_class_takes_exactly_its_frames() {
        use Destination as D;
        let all = [D::Directed, D::Broadcast, D::ListedMulticast, D::OtherMulticast, D::Other];
        let want = |c: u32| all.iter().filter(|d| class_accepts(c, **d)).copied().collect::<Vec<_>>();
        assert_eq!(want(class::DIRECTED), [D::Directed]);
        assert_eq!(want(class::BROADCAST), [D::Broadcast]);
        assert_eq!(want(class::MULTICAST), [D::ListedMulticast]);
        assert_eq!(want(class::ALL_MULTICAST), [D::ListedMulticast, D::OtherMulticast]);
        assert_eq!(want(class::PROMISCUOUS), all);
        assert!(want(0).is_empty());
    }

    #[test]
    fn ethertypes_are_matched_inside_vlan_tags() {
        let f = Filter::new(FilterRequest::new(class::ALL, &[0x0806]).unwrap());
        assert!(f.accepts(Destination::Broadcast, &frame([0xFF; 6], 0x0806, None)));
        assert!(!f.accepts(Destination::Broadcast, &frame([0xFF; 6], 0x0800, None)));
        assert!(f.accepts(Destination::Broadcast, &frame([0xFF; 6], 0x8100, Some(0x0806))));
        assert!(f.accepts(Destination::Broadcast, &frame([0xFF; 6], 0x88A8, Some(0x0806))));
        assert!(!f.accepts(Destination::Broadcast, &frame([0xFF; 6], 0x8100, Some(0x0800))));
        // Too short to have an EtherType: only a handle taking every type wants it.
        assert!(!f.accepts(Destination::Broadcast, &[0xFF; 12]));
        assert!(Filter::default().accepts(Destination::Broadcast, &[0xFF; 12]));
        assert_eq!(ethertype(&frame(MAC, 0x8100, None)[..16]), None);
        assert!(vlan_tagged(&frame(MAC, 0x8100, Some(1))));
        assert!(!vlan_tagged(&frame(MAC, 0x0800, None)));
    }

    #[test]
    fn multicast_sets_are_deduplicated_bounded_and_joined() {
        let a = Groups::collect([GROUP, GROUP, [0x33, 0x33, 0, 0, 0, 1]]).unwrap();
        assert_eq!(a.len(), 2);
        let b = Groups::collect([[0x33, 0x33, 0, 0, 0, 1], [0x01, 0x80, 0xC2, 0, 0, 0x0E]]).unwrap();
        let u = Groups::union([&a, &b]).unwrap();
        assert_eq!(u.as_slice(), [GROUP, [0x33, 0x33, 0, 0, 0, 1], [0x01, 0x80, 0xC2, 0, 0, 0x0E]]);
        let mut bytes = [0; Groups::CAPACITY * 6];
        assert_eq!(u.write_to(&mut bytes), 18);
        assert_eq!(bytes[..6], GROUP);
        let many = |base: u8| Groups::collect((0..16u8).map(|i| [1, 0, 0x5E, 0, base, i])).unwrap();
        assert_eq!(Groups::union([&many(1), &many(2)]).map(|g| g.len()), Some(32));
        assert_eq!(Groups::union([&many(1), &many(2), &a]), None);
        assert_eq!(Groups::collect((0..33u8).map(|i| [1, 0, 0x5E, 0, 0, i])), None);
        assert!(Groups::union([]).unwrap().is_empty());
    }

    #[test]
    fn a_handle_takes_only_its_own_groups() {
        let mine = Groups::collect([GROUP]).unwrap();
        let other = [0x01, 0x00, 0x5E, 0, 0, 2];
        assert_eq!(destination_for(Destination::ListedMulticast, Some(&GROUP), &mine), Destination::ListedMulticast);
        assert_eq!(destination_for(Destination::ListedMulticast, Some(&other), &mine), Destination::OtherMulticast);
        assert_eq!(destination_for(Destination::Broadcast, Some(&[0xFF; 6]), &mine), Destination::Broadcast);
        assert_eq!(lookahead([128, 256, 0]), 256);
        assert_eq!(lookahead([]), 0);
    }

    #[test]
    fn the_default_is_ndisprots_and_classes_add_up() {
        let d = Filter::default();
        assert_eq!(d.classes(), class::DIRECTED | class::MULTICAST | class::BROADCAST);
        assert!(!d.accepts(Destination::Other, &frame([2, 0, 0, 0, 0, 2], 0x0800, None)));
        assert_eq!(union([class::DIRECTED, class::BROADCAST, class::DIRECTED]), 0x9);
        assert_eq!(union([]), 0);
        assert_eq!(d.with_classes(class::PROMISCUOUS).classes(), class::PROMISCUOUS);
    }
}
