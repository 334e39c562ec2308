//! How much one peer may ask of this node: a token bucket per peer for
//! requests, and a stricter one for join attempts (which a node that is not
//! a member may make, and which cost a store write).
//!
//! A peer over its budget is refused (it is answered `Refused`, cheaply);
//! a peer that keeps asking while refused — its debt grows past a second
//! burst — is disconnected. Honest peers stay far below the limits: a
//! session has one request in flight at a time, and announcements come at
//! most once per tick.
//!
//! Peer ids cost nothing, so the requests of peers that are not members
//! are also counted per remote address ([`AddressBudgets`], kept by the
//! event loop, which knows addresses): a stranger that makes a new peer id
//! for every request still draws on one budget per address.

use std::collections::HashMap;
use std::hash::Hash;

/// The budgets, per peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests a peer may make at once.
    pub burst: f64,
    /// Requests per second a peer may keep up.
    pub per_second: f64,
    /// Join attempts a peer may make at once.
    pub join_burst: f64,
    /// Join attempts per second a peer may keep up.
    pub joins_per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            burst: 256.0,
            per_second: 64.0,
            join_burst: 4.0,
            joins_per_second: 0.2,
        }
    }
}

/// The budgets of all strangers at one address together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddressLimits {
    /// Requests strangers at one address may make at once.
    pub burst: f64,
    /// Requests per second they may keep up.
    pub per_second: f64,
    /// Join attempts they may make at once.
    pub join_burst: f64,
    /// Join attempts per second they may keep up.
    pub joins_per_second: f64,
    /// Addresses tracked at once; past this, requests from a new address
    /// are refused until old ones fall idle.
    pub addresses: usize,
    /// How long (ms) an address's budget is kept after its last request.
    pub idle_ms: i64,
}

impl Default for AddressLimits {
    fn default() -> Self {
        Self {
            burst: 64.0,
            per_second: 8.0,
            // Several newcomers behind one address may join at once.
            join_burst: 8.0,
            joins_per_second: 0.5,
            addresses: 4096,
            idle_ms: 10 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct AddressBudget {
    requests: Bucket,
    joins: Bucket,
    last: i64,
}

/// Request and join budgets per remote address, bounded in number.
#[derive(Debug, Clone)]
pub struct AddressBudgets<A> {
    limits: AddressLimits,
    budgets: HashMap<A, AddressBudget>,
}

impl<A: Hash + Eq + Clone> AddressBudgets<A> {
    pub fn new(limits: AddressLimits) -> Self {
        Self {
            limits,
            budgets: HashMap::new(),
        }
    }

    /// Takes one request (and one join, if `join`) from `address`'s budget
    /// at `now` (unix ms).
    pub fn take(&mut self, address: &A, now: i64, join: bool) -> Verdict {
        let l = self.limits;
        if !self.budgets.contains_key(address) && self.budgets.len() >= l.addresses {
            self.budgets.retain(|_, b| now - b.last < l.idle_ms);
            if self.budgets.len() >= l.addresses {
                return Verdict::Refuse;
            }
        }
        let b = self.budgets.entry(address.clone()).or_default();
        b.last = now;
        let mut verdict = b.requests.take(now, l.burst, l.per_second);
        if verdict == Verdict::Allow && join {
            verdict = b.joins.take(now, l.join_burst, l.joins_per_second);
        }
        verdict
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.budgets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the budget: answer `Refused`.
    Refuse,
    /// Still asking after a burst of refusals: disconnect.
    Disconnect,
}

/// A token bucket that may go into debt (one token per refused request).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date (unix ms).
    at: Option<i64>,
}

impl Bucket {
    pub fn new() -> Self {
        Self {
            tokens: f64::INFINITY,
            at: None,
        }
    }

    /// Takes one token at time `now` (unix ms).
    pub fn take(&mut self, now: i64, burst: f64, per_second: f64) -> Verdict {
        let elapsed = self.at.map_or(0, |at| (now - at).max(0));
        self.at = Some(now);
        self.tokens = (self.tokens + elapsed as f64 * per_second / 1000.0).min(burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Verdict::Allow
        } else if self.tokens >= -burst {
            Verdict::Refuse
        } else {
            Verdict::Disconnect
        }
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_then_disconnect_and_time_refills() {
        let mut b = Bucket::new();
        let verdicts: Vec<Verdict> = (0..25).map(|_| b.take(0, 10.0, 1.0)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Allow));
        assert!(verdicts[10..20].iter().all(|v| *v == Verdict::Refuse));
        assert!(verdicts[20..].iter().all(|v| *v == Verdict::Disconnect));
        // A peer that backs off is allowed again once the debt is paid.
        let mut b = Bucket::new();
        for _ in 0..15 {
            b.take(0, 10.0, 1.0);
        }
        assert_eq!(b.take(1_000, 10.0, 1.0), Verdict::Refuse);
        assert_eq!(b.take(8_000, 10.0, 1.0), Verdict::Allow);
        assert_eq!(b.take(1_000_000, 10.0, 1.0), Verdict::Allow);
    }

    #[test]
    fn new_peer_ids_share_their_addresss_budget_and_addresses_are_bounded() {
        let l = AddressLimits {
            addresses: 2,
            ..AddressLimits::default()
        };
        let mut budgets = AddressBudgets::new(l);
        // Joins from one address, whatever peer ids they come with.
        let verdicts: Vec<Verdict> = (0..20).map(|_| budgets.take(&"a", 0, true)).collect();
        assert!(verdicts[..8].iter().all(|v| *v == Verdict::Allow));
        assert!(verdicts[8..].iter().all(|v| *v != Verdict::Allow));
        assert_eq!(budgets.take(&"b", 0, false), Verdict::Allow);
        // A third address waits until one of the two falls idle.
        assert_eq!(budgets.take(&"c", 1, false), Verdict::Refuse);
        assert_eq!(budgets.take(&"c", l.idle_ms + 1, false), Verdict::Allow);
        assert_eq!(budgets.len(), 1);
    }

    #[test]
    fn a_steady_honest_rate_is_never_refused() {
        let mut b = Bucket::new();
        let l = Limits::default();
        for i in 0..100_000 {
            // 50 requests a second, for 2,000 seconds.
            assert_eq!(b.take(i * 20, l.burst, l.per_second), Verdict::Allow);
        }
    }
}
