//! How much one peer may ask of this node: a token bucket per peer for
//! requests, and a stricter one for join attempts (which a node that is not
//! a member may make, and which cost a store write).
//!
//! A peer over its budget is refused (it is answered `Refused`, cheaply);
//! a peer that keeps asking while refused — its debt grows past a second
//! burst — is disconnected. Honest peers stay far below the limits: a
//! session has one request in flight at a time, and announcements come at
//! most once per tick.

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
    fn a_steady_honest_rate_is_never_refused() {
        let mut b = Bucket::new();
        let l = Limits::default();
        for i in 0..100_000 {
            // 50 requests a second, for 2,000 seconds.
            assert_eq!(b.take(i * 20, l.burst, l.per_second), Verdict::Allow);
        }
    }
}
