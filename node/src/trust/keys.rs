//! The node's identity: one Ed25519 key pair, stored in the home.
//!
//! The same key signs changes and identifies the node to libp2p, so a
//! node's [`NodeId`] (its PeerId, `12D3KooW…`) is what other members see in
//! the charter, in signatures and on the wire.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libp2p_identity::{Keypair, PeerId, ed25519};

/// A problem with the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the node key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the node key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the node key {0} is damaged or not an Ed25519 key")]
    Invalid(PathBuf),
}

/// A node's public identity: its libp2p PeerId, derived from its Ed25519
/// public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(PeerId);

impl NodeId {
    pub fn from_public(key: &ed25519::PublicKey) -> Self {
        Self(PeerId::from_public_key(&key.clone().into()))
    }

    /// The node id of a raw 32-byte Ed25519 public key (as stored with changes).
    pub fn from_public_bytes(bytes: &[u8]) -> Option<Self> {
        ed25519::PublicKey::try_from_bytes(bytes)
            .ok()
            .map(|k| Self::from_public(&k))
    }

    pub fn peer_id(&self) -> PeerId {
        self.0
    }

    /// The raw 32-byte Ed25519 public key the id holds (`None` for an id
    /// that does not inline an Ed25519 key).
    pub fn public_bytes(&self) -> Option<[u8; 32]> {
        // An identity multihash (code 0, then the length) holds the key
        // itself, protobuf-encoded.
        let bytes = self.0.to_bytes();
        let key = match bytes.as_slice() {
            [0, len, key @ ..] if usize::from(*len) == key.len() => key,
            _ => return None,
        };
        libp2p_identity::PublicKey::try_decode_protobuf(key)
            .ok()?
            .try_into_ed25519()
            .ok()
            .map(|k| k.to_bytes())
    }
}

impl From<PeerId> for NodeId {
    fn from(p: PeerId) -> Self {
        Self(p)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl FromStr for NodeId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PeerId>()
            .map(Self)
            .map_err(|_| format!("{s:?} is not a node id"))
    }
}

/// The node's key pair.
#[derive(Clone)]
pub struct Identity {
    keypair: ed25519::Keypair,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node", &self.node_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn generate() -> Self {
        Self {
            keypair: ed25519::Keypair::generate(),
        }
    }

    /// Reads the key from `path` (libp2p's protobuf key encoding).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let keypair = Keypair::from_protobuf_encoding(&bytes)
            .ok()
            .and_then(|k| k.try_into_ed25519().ok())
            .ok_or_else(|| KeyError::Invalid(path.to_path_buf()))?;
        Ok(Self { keypair })
    }

    /// Writes the key to a new file at `path`, readable by its owner only.
    /// Refuses to overwrite an existing file.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        let err = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let bytes = self
            .libp2p_keypair()
            .to_protobuf_encoding()
            .expect("ed25519 keys always encode");
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(err)?;
        file.write_all(&bytes).map_err(err)?;
        file.sync_all().map_err(err)
    }

    pub fn node_id(&self) -> NodeId {
        NodeId::from_public(&self.keypair.public())
    }

    /// The raw 32-byte public key, as stored beside every change.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.keypair.public().to_bytes()
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.keypair
            .sign(msg)
            .try_into()
            .expect("ed25519 signatures are 64 bytes")
    }

    /// The key in the form libp2p's swarm takes.
    pub fn libp2p_keypair(&self) -> Keypair {
        self.keypair.clone().into()
    }
}

#[cfg(test)]
mod public_bytes_tests {
    #[test]
    fn a_node_id_gives_back_its_key() {
        let me = super::Identity::generate();
        assert_eq!(me.node_id().public_bytes(), Some(me.public_bytes()));
    }
}
