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
//! in the answer; they ask again every few minutes. A record a node had
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

/// Signs a record of `addresses` with `key` (at most [`MAX_ADDRESSES`],
/// the first ones kept).
pub fn seal(key: &Keypair, addresses: &[Multiaddr]) -> Option<Record> {
    let addresses: Vec<Multiaddr> = addresses.iter().take(MAX_ADDRESSES).cloned().collect();
    let record = PeerRecord::new(key, addresses).ok()?;
    let bytes = record.to_signed_envelope().into_protobuf_encoding();
    (bytes.len() <= MAX_RECORD_BYTES).then(|| Record {
        peer: record.peer_id(),
        seq: record.seq(),
        addresses: record.addresses().to_vec(),
        bytes,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_sealed_record_opens_with_its_signer_and_addresses() {
        let key = Keypair::generate_ed25519();
        let addrs = [addr("/ip4/192.0.2.7/tcp/4040")];
        let r = seal(&key, &addrs).unwrap();
        let opened = open(&r.bytes).unwrap();
        assert_eq!(opened.peer, key.public().to_peer_id());
        assert_eq!(opened.addresses, addrs);
    }

    #[test]
    fn a_record_altered_in_transit_is_refused() {
        let key = Keypair::generate_ed25519();
        let r = seal(&key, &[addr("/ip4/192.0.2.7/tcp/4040")]).unwrap();
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
