//! `/convene/addrs/1`: members share signed address records, so that a
//! node finds the others without its bootstrap node.
//!
//! A record is libp2p's [`PeerRecord`]: a node's addresses and a sequence
//! number, in an envelope signed with the node's own key (its peer id).
//! Nobody can make or alter another node's record; a relaying member can
//! only pass it on or drop it. A record names the addresses the node
//! listens on and, for a node that cannot be dialled (behind NAT, or
//! started with `--no-listen`), its relayed addresses through members
//! (`…/p2p/RELAY/p2p-circuit`).
//!
//! When two members connect, each asks the other with its own record in
//! the request and gets the other's and those it keeps of other members
//! in the answer (after the first answer to a member, only the records
//! that arrived since the last one: see the event loop's `reach`); they
//! ask again every few minutes, and not again on a reconnect sooner. A record a node had
//! not seen (or a newer one) is passed on in its next requests to the
//! members it is connected to, so a new address crosses the community in
//! a few hops and the flood stops where every node already has it. Every record is opened and its
//! signature checked ([`open`]) before it is believed, and kept only if
//! its signer is a current member (the event loop checks) and it is newer
//! than the one kept. A stranger's request gets an empty answer: it learns
//! no member's address.

use libp2p::core::{PeerRecord, SignedEnvelope};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::framed::{Framed, Frames};

/// The protocol's name.
pub const PROTOCOL: &str = "/convene/addrs/1";
/// The largest record accepted, in bytes (an envelope of a dozen
/// addresses is a few hundred).
pub const MAX_RECORD_BYTES: usize = 2048;
/// The most addresses a record may carry.
pub const MAX_ADDRESSES: usize = 16;
/// The most records in one answer (and kept: one per member node).
pub const MAX_RECORDS: usize = 1024;
/// The most records of others one request passes on.
pub const MAX_PUSH: usize = 8;

/// A request: the asker's own record first, then up to [`MAX_PUSH`]
/// records of other members it learned of since it last asked (so news of
/// an address travels on at once, not only when the next member asks).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddrsRequest {
    pub records: Vec<Vec<u8>>,
}

/// An answer: the answerer's record and those it keeps of other members.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddrsResponse {
    pub records: Vec<Vec<u8>>,
}

/// The frames of `/convene/addrs/1`.
#[derive(Debug)]
pub enum AddrsFrames {}

impl Frames for AddrsFrames {
    type Request = AddrsRequest;
    type Response = AddrsResponse;
    const MAX_REQUEST: usize = (MAX_PUSH + 1) * (MAX_RECORD_BYTES + 4) + 16;
    const MAX_RESPONSE: usize = MAX_RECORDS * (MAX_RECORD_BYTES + 4) + 16;
}

/// The codec of `/convene/addrs/1`.
pub type AddrsCodec = Framed<AddrsFrames>;

/// A record whose signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub peer: PeerId,
    pub seq: u64,
    pub addresses: Vec<Multiaddr>,
    /// The signed envelope, to pass on as it is.
    pub bytes: Vec<u8>,
}

/// Why a record was not believed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("the record is larger than {MAX_RECORD_BYTES} bytes")]
    TooLarge,
    #[error("the record is not a signed envelope: {0}")]
    Malformed(String),
    #[error("the record's signature or contents do not hold: {0}")]
    Invalid(String),
    #[error("the record names more than {MAX_ADDRESSES} addresses")]
    TooManyAddresses,
}

/// The signed envelope's domain and payload type of a libp2p peer record
/// (the format `PeerRecord::new` makes and `from_signed_envelope` opens).
const RECORD_DOMAIN: &str = "libp2p-routing-state";
const RECORD_PAYLOAD_TYPE: &[u8] = b"/libp2p/routing-state-record";

/// Signs a record of `addresses` with `key` (at most [`MAX_ADDRESSES`],
/// the first ones kept), numbered after `after` (the node's previous
/// record's number, if it made one).
///
/// A record's number is the time in seconds, as libp2p numbers them, but
/// always above the previous one: members keep a record only if it is
/// numbered above the one they hold, so two records signed within one
/// second (a relay slot lost and another gained) would otherwise leave
/// them with the first until the next refresh, minutes later.
pub fn seal(key: &Keypair, addresses: &[Multiaddr], after: Option<u64>) -> Option<Record> {
    let addresses: Vec<Multiaddr> = addresses.iter().take(MAX_ADDRESSES).cloned().collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seq = after.map_or(now, |a| now.max(a.saturating_add(1)));
    let peer = key.public().to_peer_id();
    let envelope = SignedEnvelope::new(
        key,
        RECORD_DOMAIN.into(),
        RECORD_PAYLOAD_TYPE.to_vec(),
        encode_record(&peer, seq, &addresses),
    )
    .ok()?;
    // Opened as any member opens it, so what is sent is what they read.
    let record = PeerRecord::from_signed_envelope(envelope).ok()?;
    let bytes = record.to_signed_envelope().into_protobuf_encoding();
    (bytes.len() <= MAX_RECORD_BYTES).then(|| Record {
        peer: record.peer_id(),
        seq: record.seq(),
        addresses: record.addresses().to_vec(),
        bytes,
    })
}

/// A peer record's protobuf encoding (libp2p's `peer_record.proto`:
/// `peer_id = 1`, `seq = 2`, `repeated AddressInfo addresses = 3`, each
/// `AddressInfo` a `multiaddr = 1`), which libp2p makes only with the
/// time as its number.
fn encode_record(peer: &PeerId, seq: u64, addresses: &[Multiaddr]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    bytes_field(&mut out, 0x0a, &peer.to_bytes());
    out.push(0x10);
    varint(&mut out, seq);
    for a in addresses {
        let mut info = Vec::new();
        bytes_field(&mut info, 0x0a, &a.to_vec());
        bytes_field(&mut out, 0x1a, &info);
    }
    out
}

/// Opens a record received from anyone: its size first, then the
/// envelope's signature (by the key the record's peer id names).
pub fn open(bytes: &[u8]) -> Result<Record, RecordError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge);
    }
    let envelope = SignedEnvelope::from_protobuf_encoding(bytes)
        .map_err(|e| RecordError::Malformed(e.to_string()))?;
    let record = PeerRecord::from_signed_envelope(envelope)
        .map_err(|e| RecordError::Invalid(e.to_string()))?;
    if record.addresses().len() > MAX_ADDRESSES {
        return Err(RecordError::TooManyAddresses);
    }
    Ok(Record {
        peer: record.peer_id(),
        seq: record.seq(),
        addresses: record.addresses().to_vec(),
        bytes: bytes.to_vec(),
    })
}

/// Where an address leads, as far as whether to dial it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// This machine (127.0.0.0/8, ::1).
    Loopback,
    /// A private network (10/8, 172.16/12, 192.168/16, 100.64/10 shared
    /// address space, fc00::/7).
    Private,
    /// One link (169.254/16, fe80::/10).
    LinkLocal,
    /// The internet (public addresses and DNS names).
    Global,
    /// Nothing to dial (unspecified, broadcast, multicast, no address).
    Unusable,
}

/// The scope of an address: that of its first IP or DNS part (for a
/// relayed address, the relay's).
pub fn scope(addr: &Multiaddr) -> Scope {
    use libp2p::multiaddr::Protocol;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => {
                let [a, b, ..] = ip.octets();
                return if ip.is_loopback() {
                    Scope::Loopback
                } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
                    Scope::Private
                } else if ip.is_link_local() {
                    Scope::LinkLocal
                } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                    Scope::Unusable
                } else {
                    Scope::Global
                };
            }
            Protocol::Ip6(ip) => {
                let first = ip.segments()[0];
                return if ip.is_loopback() {
                    Scope::Loopback
                } else if first & 0xfe00 == 0xfc00 {
                    Scope::Private
                } else if first & 0xffc0 == 0xfe80 {
                    Scope::LinkLocal
                } else if ip.is_unspecified() || ip.is_multicast() {
                    Scope::Unusable
                } else {
                    Scope::Global
                };
            }
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_) => {
                return Scope::Global;
            }
            _ => {}
        }
    }
    Scope::Unusable
}

/// Whether to dial `addr`, taken from another member's record: global
/// addresses always; loopback, private and link-local ones only where this
/// node itself uses that scope (`in_use`: the scopes of its own listening,
/// bootstrap and connected addresses), so a member cannot make others dial
/// into their own private networks; unusable ones never.
pub fn dialable(addr: &Multiaddr, in_use: &std::collections::HashSet<Scope>) -> bool {
    match scope(addr) {
        Scope::Global => true,
        Scope::Unusable => false,
        s => in_use.contains(&s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_from_a_record_are_dialled_only_where_this_node_uses_them() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        let relay = "/ip4/10.1.2.3/tcp/4040/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
        for (addr, want) in [
            ("/ip4/127.0.0.1/tcp/4040", Scope::Loopback),
            ("/ip4/10.0.0.5/tcp/4040", Scope::Private),
            ("/ip4/172.20.1.1/tcp/4040", Scope::Private),
            ("/ip4/192.168.1.10/udp/4040/quic-v1", Scope::Private),
            ("/ip4/100.72.0.1/tcp/4040", Scope::Private),
            ("/ip4/169.254.3.4/tcp/4040", Scope::LinkLocal),
            ("/ip4/0.0.0.0/tcp/4040", Scope::Unusable),
            ("/ip4/224.0.0.1/tcp/4040", Scope::Unusable),
            ("/ip4/81.2.69.160/tcp/4040", Scope::Global),
            ("/ip6/::1/tcp/4040", Scope::Loopback),
            ("/ip6/fd00::1/tcp/4040", Scope::Private),
            ("/ip6/fe80::1/tcp/4040", Scope::LinkLocal),
            ("/ip6/2a00:1450::1/tcp/4040", Scope::Global),
            ("/dns4/node.example.nhs.uk/tcp/4040", Scope::Global),
            (relay, Scope::Private),
        ] {
            assert_eq!(scope(&a(addr)), want, "{addr}");
        }
        // A node on the internet only: a member naming an address on a
        // private network (or this machine) is not dialled there.
        let internet = [Scope::Global].into();
        assert!(dialable(&a("/ip4/81.2.69.160/tcp/4040"), &internet));
        assert!(!dialable(&a("/ip4/192.168.1.1/tcp/22"), &internet));
        assert!(!dialable(&a("/ip4/127.0.0.1/tcp/5432"), &internet));
        assert!(!dialable(&a(relay), &internet));
        // A community on one private network (or on loopback, as in the
        // tests) dials its members' addresses there.
        let lan = [Scope::Private].into();
        assert!(dialable(&a("/ip4/10.0.0.5/tcp/4040"), &lan));
        assert!(!dialable(&a("/ip4/127.0.0.1/tcp/4040"), &lan));
        assert!(!dialable(&a("/ip4/0.0.0.0/tcp/4040"), &lan));
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_sealed_record_opens_with_its_signer_and_addresses() {
        let key = Keypair::generate_ed25519();
        let addrs = [addr("/ip4/192.0.2.7/tcp/4040")];
        let r = seal(&key, &addrs, None).unwrap();
        let opened = open(&r.bytes).unwrap();
        assert_eq!(opened.peer, key.public().to_peer_id());
        assert_eq!(opened.addresses, addrs);
    }

    #[test]
    fn a_record_altered_in_transit_is_refused() {
        let key = Keypair::generate_ed25519();
        let r = seal(&key, &[addr("/ip4/192.0.2.7/tcp/4040")], None).unwrap();
        // Every single-byte change is refused or still names the signer's
        // own addresses: no one can point a member's id at their address.
        let attacker = addr("/ip4/203.0.113.9/tcp/4040");
        for i in 0..r.bytes.len() {
            let mut bytes = r.bytes.clone();
            bytes[i] ^= 0x01;
            if let Ok(o) = open(&bytes) {
                assert!(!o.addresses.contains(&attacker));
                assert_eq!(
                    (o.peer, o.seq, o.addresses),
                    (r.peer, r.seq, r.addresses.clone()),
                    "byte {i} changed the record"
                );
            }
        }
    }

    #[test]
    fn records_signed_within_one_second_are_numbered_in_order() {
        let key = Keypair::generate_ed25519();
        let first = seal(&key, &[addr("/ip4/192.0.2.7/tcp/4040")], None).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(first.seq.abs_diff(now) <= 1, "numbered by the time");
        let mut prev = first.seq;
        for port in 1..5 {
            let a = addr(&format!("/ip4/192.0.2.7/tcp/{port}"));
            let r = seal(&key, std::slice::from_ref(&a), Some(prev)).unwrap();
            assert!(r.seq > prev, "record {port} is not newer");
            // What a member opens is what was signed.
            let opened = open(&r.bytes).unwrap();
            assert_eq!(
                (opened.peer, opened.seq),
                (key.public().to_peer_id(), r.seq)
            );
            assert_eq!(opened.addresses, vec![a]);
            prev = r.seq;
        }
        // libp2p's own records open the same way (members on an earlier
        // release sign with it).
        let theirs = PeerRecord::new(&key, vec![addr("/ip4/192.0.2.8/tcp/1")]).unwrap();
        let opened = open(&theirs.to_signed_envelope().into_protobuf_encoding()).unwrap();
        assert_eq!(opened.seq, theirs.seq());
    }

    #[test]
    fn oversized_records_are_refused_before_decoding() {
        assert_eq!(
            open(&vec![0u8; MAX_RECORD_BYTES + 1]),
            Err(RecordError::TooLarge)
        );
        assert!(matches!(
            open(b"not an envelope"),
            Err(RecordError::Malformed(_))
        ));
    }
}
