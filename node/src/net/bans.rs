//! Peers (and strangers' addresses) that broke the protocol, refused for a
//! while.
//!
//! A peer id costs nothing to make, so a stranger that breaks the protocol
//! is banned by its IP address as well; members are refused by peer id
//! only, as other members may share their address (an office behind one
//! NAT, or every node of a test on loopback). The list is bounded: when
//! it is full the ban closest to its end makes room.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a peer that broke the protocol is refused.
pub const PEER_BAN: Duration = Duration::from_secs(10 * 60);
/// How long a stranger's address is refused (shorter: it may be shared).
pub const IP_BAN: Duration = Duration::from_secs(2 * 60);
/// How many bans of each kind are kept.
pub const MAX_BANS: usize = 4096;

/// Time-limited bans of peer ids and of strangers' IP addresses.
#[derive(Debug)]
pub struct Bans {
    peers: Expiring<PeerId>,
    ips: Expiring<IpAddr>,
}

impl Default for Bans {
    fn default() -> Self {
        Self::with_capacity(MAX_BANS)
    }
}

impl Bans {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            peers: Expiring::new(capacity),
            ips: Expiring::new(capacity),
        }
    }

    pub fn ban_peer(&mut self, peer: PeerId, now: Instant) {
        self.peers.insert(peer, now + PEER_BAN, now);
    }

    pub fn ban_ip(&mut self, ip: IpAddr, now: Instant) {
        self.ips.insert(ip, now + IP_BAN, now);
    }

    pub fn peer_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers.contains(peer, now)
    }

    pub fn ip_banned(&self, ip: &IpAddr, now: Instant) -> bool {
        self.ips.contains(ip, now)
    }

    /// How many bans (of peers, of addresses) are held, expired or not.
    pub fn len(&self) -> (usize, usize) {
        (self.peers.0.len(), self.ips.0.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[derive(Debug)]
struct Expiring<K>(HashMap<K, Instant>, usize);

impl<K: Hash + Eq + Copy> Expiring<K> {
    fn new(capacity: usize) -> Self {
        Self(HashMap::new(), capacity.max(1))
    }

    fn insert(&mut self, key: K, until: Instant, now: Instant) {
        if !self.0.contains_key(&key) && self.0.len() >= self.1 {
            self.0.retain(|_, t| *t > now);
            if self.0.len() >= self.1
                && let Some(first) = self.0.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
            {
                self.0.remove(&first);
            }
        }
        let t = self.0.entry(key).or_insert(until);
        *t = (*t).max(until);
    }

    fn contains(&self, key: &K, now: Instant) -> bool {
        self.0.get(key).is_some_and(|t| *t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_end_and_the_list_stays_bounded() {
        let now = Instant::now();
        let mut bans = Bans::with_capacity(3);
        let first = PeerId::random();
        bans.ban_peer(first, now);
        assert!(bans.peer_banned(&first, now + PEER_BAN / 2));
        assert!(!bans.peer_banned(&first, now + PEER_BAN));
        for i in 1..10u64 {
            bans.ban_peer(PeerId::random(), now + Duration::from_secs(i));
        }
        assert_eq!(bans.len().0, 3);
        // The oldest bans made room for the newest.
        assert!(!bans.peer_banned(&first, now));
        let ip: IpAddr = [192, 0, 2, 1].into();
        bans.ban_ip(ip, now);
        assert!(bans.ip_banned(&ip, now + IP_BAN / 2));
        assert!(!bans.ip_banned(&ip, now + IP_BAN));
    }
}
