//! Which members a node keeps connections to: a sans-IO policy, with no
//! libp2p types, so that the daemon and the simulation at scale
//! (`cargo bench -p convene-node --bench spread`) run the same rules.
//!
//! A node's news goes to every member it is connected to (see
//! [`crate::sync::service`]), so the number of connections *is* the
//! fan-out of every announcement. The policy keeps it between two bounds:
//!
//! - **Dial up to `min`.** While fewer than `min` members are connected,
//!   members are dialled from their address records: first those in the
//!   audience of restricted entries this node holds (an entry only some
//!   organisations may see travels only between their nodes, so they are
//!   dialled whatever the count says); then, for a node that cannot be
//!   dialled itself (`--no-listen`), as many members with a direct address
//!   as it still wants relay slots on; then members heard from recently (a
//!   record that arrived lately means a node that is probably online);
//!   within each group in an order particular to this node (a hash of
//!   both ids), so that members do not all dial the same few.
//! - **Close down to `max`.** Past `max`, the youngest inbound connections
//!   to members not in any restricted entry's audience are closed, once
//!   they are older than [`GRACE_MS`] (long enough for a full session and
//!   an exchange of address records, so the closed peer leaves knowing
//!   where else to go). Connections this node dialled stay: it dialled at
//!   most `min` of them (and its relays). A member is dialled again after
//!   a wait that doubles with each dial, reset only by a connection that
//!   lasted [`STABLE_MS`]: one closed for the bound soon after it opened
//!   is not dialled again and again.
//!
//! Every member thus has at most `max` + (its audience) connections, and
//! at least `min` whenever that many members are online and reachable:
//! random graphs of that degree are connected, with a diameter of a few
//! hops, so a push reaches every online member in a few round trips and
//! each node sends each piece of news at most once per connection.

use std::cmp::Reverse;

/// How long a new inbound connection is safe from being closed for the
/// upper bound (ms).
pub const GRACE_MS: i64 = 20_000;

/// A connection that lasted this long resets its member's dial backoff
/// (ms).
pub const STABLE_MS: i64 = 2 * GRACE_MS;

/// How recently a member's address record must have arrived for the
/// member to count as probably online (ms).
pub const FRESH_MS: i64 = 15 * 60 * 1000;

/// The bounds on a node's member connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Degree {
    /// Dial members until this many are connected.
    pub min: usize,
    /// Close inbound connections past this many.
    pub max: usize,
}

impl Default for Degree {
    fn default() -> Self {
        Self { min: 8, max: 32 }
    }
}

/// A member that could be dialled (not connected, not in dial backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<P> {
    pub peer: P,
    /// In the audience of a restricted entry held here.
    pub needed: bool,
    /// Its address record arrived within [`FRESH_MS`].
    pub fresh: bool,
    /// It has a direct address, so it could relay for this node.
    pub relay: bool,
    /// This node's own order of members ([`spread`]).
    pub order: u64,
}

/// A connected member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<P> {
    pub peer: P,
    /// The member dialled this node.
    pub inbound: bool,
    /// In the audience of a restricted entry held here.
    pub needed: bool,
    /// When the connection opened (ms, any clock the caller keeps).
    pub since: i64,
}

impl Degree {
    /// The members to dial now, in order, given how many are connected
    /// and how many more relay slots this node wants.
    pub fn dials<P: Copy>(
        &self,
        connected: usize,
        relays: usize,
        mut candidates: Vec<Candidate<P>>,
    ) -> Vec<P> {
        candidates.sort_by_key(|c| (!c.needed, !c.fresh, c.order));
        let mut wanted = self.min.saturating_sub(connected);
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for c in candidates {
            if c.needed {
                out.push(c.peer);
                wanted = wanted.saturating_sub(1);
            } else {
                rest.push(c);
            }
        }
        let mut relays = relays;
        rest.retain(|c| {
            if relays > 0 && c.relay {
                out.push(c.peer);
                relays -= 1;
                wanted = wanted.saturating_sub(1);
                false
            } else {
                true
            }
        });
        out.extend(rest.into_iter().take(wanted).map(|c| c.peer));
        out
    }

    /// The members whose connections to close now for the upper bound.
    pub fn surplus<P: Copy>(&self, now: i64, links: &[Link<P>]) -> Vec<P> {
        let mut over = links.len().saturating_sub(self.max);
        if over == 0 {
            return Vec::new();
        }
        let mut closable: Vec<&Link<P>> = links
            .iter()
            .filter(|l| l.inbound && !l.needed && now - l.since >= GRACE_MS)
            .collect();
        closable.sort_by_key(|l| Reverse(l.since));
        let mut out = Vec::new();
        for l in closable {
            if over == 0 {
                break;
            }
            out.push(l.peer);
            over -= 1;
        }
        out
    }
}

/// An order of members particular to node `me` (a hash of both ids): the
/// same on every run, different from every other node's.
pub fn spread(me: &[u8], peer: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"convene overlay order");
    h.update(&(me.len() as u64).to_le_bytes());
    h.update(me);
    h.update(peer);
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(peer: u32, needed: bool, fresh: bool, order: u64) -> Candidate<u32> {
        Candidate {
            peer,
            needed,
            fresh,
            relay: peer >= 10,
            order,
        }
    }

    #[test]
    fn dials_the_audience_whatever_the_count_then_fresh_members_up_to_min() {
        let d = Degree { min: 3, max: 6 };
        let candidates = vec![
            c(1, false, false, 1),
            c(2, false, true, 9),
            c(3, true, false, 5),
            c(4, false, true, 2),
            c(5, true, false, 7),
        ];
        // Two connected: one more wanted, but both audience members go.
        assert_eq!(d.dials(2, 0, candidates.clone()), vec![3, 5]);
        // None connected: the audience, then the freshest in own order.
        assert_eq!(d.dials(0, 0, candidates.clone()), vec![3, 5, 4]);
        // Enough connected: only the audience.
        assert_eq!(d.dials(9, 0, candidates), vec![3, 5]);
    }

    #[test]
    fn a_node_that_cannot_be_dialled_first_dials_as_many_relays_as_it_wants() {
        let d = Degree { min: 3, max: 6 };
        let candidates = vec![
            c(1, false, true, 1),
            c(2, false, true, 2),
            c(10, false, false, 9),
            c(11, false, true, 8),
            c(12, false, true, 3),
        ];
        // Wanting two relays: the two first relays in order, then one more.
        assert_eq!(d.dials(0, 2, candidates.clone()), vec![12, 11, 1]);
        // Wanting none: the fresh ones in order.
        assert_eq!(d.dials(0, 0, candidates), vec![1, 2, 12]);
    }

    #[test]
    fn closes_the_youngest_inbound_past_max_but_not_within_grace_or_needed() {
        let d = Degree { min: 1, max: 2 };
        let now = 100_000;
        let l = |peer, inbound, needed, since| Link {
            peer,
            inbound,
            needed,
            since,
        };
        let links = [
            l(1, false, false, 0),          // dialled by this node
            l(2, true, false, 10_000),      // old inbound
            l(3, true, false, 50_000),      // young inbound
            l(4, true, true, 60_000),       // needed
            l(5, true, false, now - 1_000), // within grace
            l(6, true, false, 40_000),      // older than 3
        ];
        // Six links, max two: four to close, but only 3, 6 and 2 may go.
        assert_eq!(d.surplus(now, &links), vec![3, 6, 2]);
        assert!(d.surplus(now, &links[..2]).is_empty());
    }

    #[test]
    fn orders_differ_between_nodes_and_hold_between_runs() {
        let a = spread(b"node a", b"peer");
        assert_eq!(a, spread(b"node a", b"peer"));
        assert_ne!(a, spread(b"node b", b"peer"));
    }
}
