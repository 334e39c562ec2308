//! What a connected peer may make this node hold in memory, by its
//! standing: a member (or a peer this node dialled on purpose) may send
//! frames up to [`MAX_MESSAGE_BYTES`] on as many streams as request-response
//! allows; a stranger gets [`STRANGER_MAX_FRAME`] bytes a frame and
//! [`STRANGER_MAX_STREAMS`] inbound streams a connection.
//!
//! The event loop decides standings (it holds the membership) and writes
//! them here; the codec, which runs in each connection's task, reads them.
//! A request that arrives before the event loop has classified its peer
//! waits for it (at most [`CLASSIFY_WAIT`]; then the stream is dropped
//! unread, so that a member is never taken for a stranger and banned), so a
//! member's first request is never cut short and a stranger's is never
//! buffered in full.
//!
//! libp2p's request-response `Codec` is not told which peer it reads from.
//! It is, however, cloned exactly once per connection, inside
//! `handle_established_{inbound,outbound}_connection` (which know the
//! peer), to make that connection's handler; every stream of the
//! connection then clones the handler's copy. [`super::guard::Guarded`]
//! puts the peer in [`Gate::set_next`] just before it delegates to those hooks,
//! and [`SyncCodec`]'s `Clone` takes it from there: the handler's codec
//! knows its peer, and so does every stream's.
//!
//! [`MAX_MESSAGE_BYTES`]: crate::sync::wire::MAX_MESSAGE_BYTES
//! [`SyncCodec`]: super::codec::SyncCodec

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;

use crate::sync::wire::MAX_MESSAGE_BYTES;

/// The largest frame a stranger may send: enough for a join request (an
/// invite claim and a profile) and for a new member's first announcement,
/// far too little to fill memory.
pub const STRANGER_MAX_FRAME: usize = 64 * 1024;

/// Inbound streams a stranger may hold open on one connection (an honest
/// newcomer has one or two requests in flight).
pub const STRANGER_MAX_STREAMS: usize = 8;

/// How long a request waits for the event loop to classify its peer.
pub const CLASSIFY_WAIT: Duration = Duration::from_secs(5);

/// What a peer may ask of this node's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A member of this node's community, or a peer it dialled on purpose.
    Member,
    /// Anyone else.
    Stranger,
}

impl Standing {
    /// The largest frame this peer may send.
    pub fn max_frame(self) -> usize {
        match self {
            Standing::Member => MAX_MESSAGE_BYTES,
            Standing::Stranger => STRANGER_MAX_FRAME,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The peer whose connection handler is being built (see the module
    /// docs).
    next: Option<PeerId>,
    /// Connected peers, as the event loop classified them.
    standing: HashMap<PeerId, Standing>,
}

/// Standings shared between the event loop and the connections' codecs.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
    changed: tokio::sync::Notify,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection about to get a handler is with `peer`.
    pub fn set_next(&self, peer: PeerId) {
        self.lock().next = Some(peer);
    }

    pub(crate) fn take_next(&self) -> Option<PeerId> {
        self.lock().next.take()
    }

    /// Records `peer`'s standing (and wakes requests waiting for it).
    pub fn set(&self, peer: PeerId, standing: Standing) {
        self.lock().standing.insert(peer, standing);
        self.changed.notify_waiters();
    }

    /// Forgets a peer that has no connection left.
    pub fn forget(&self, peer: &PeerId) {
        self.lock().standing.remove(peer);
    }

    /// `peer`'s standing, if it has been classified.
    pub fn get(&self, peer: &PeerId) -> Option<Standing> {
        self.lock().standing.get(peer).copied()
    }

    /// `peer`'s standing, waiting up to [`CLASSIFY_WAIT`] for the event
    /// loop to classify it (`None` if it does not).
    pub async fn standing(&self, peer: &PeerId) -> Option<Standing> {
        let deadline = tokio::time::Instant::now() + CLASSIFY_WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self.get(peer) {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.get(peer);
            }
        }
    }
}

/// One connection as its codecs see it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) peer: PeerId,
    /// Inbound streams of a stranger being read or answered.
    open: AtomicUsize,
}

impl Connection {
    pub(crate) fn new(peer: PeerId) -> Arc<Self> {
        Arc::new(Self {
            peer,
            open: AtomicUsize::new(0),
        })
    }

    /// Takes one of the stranger's stream slots, if one is free.
    pub(crate) fn open_stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= STRANGER_MAX_STREAMS {
            self.open.fetch_sub(1, Ordering::AcqRel);
            None
        } else {
            Some(StreamSlot(self.clone()))
        }
    }
}

/// A stranger's stream slot, given back when the stream's codec is dropped
/// (answered, failed or timed out).
#[derive(Debug)]
pub(crate) struct StreamSlot(Arc<Connection>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strangers_streams_are_counted_and_given_back() {
        let c = Connection::new(PeerId::random());
        let slots: Vec<_> = (0..STRANGER_MAX_STREAMS)
            .map(|_| c.open_stream().expect("a free slot"))
            .collect();
        assert!(c.open_stream().is_none());
        drop(slots);
        assert!(c.open_stream().is_some());
    }

    #[tokio::test]
    async fn a_request_waits_for_its_peer_to_be_classified() {
        let gate = Arc::new(Gate::default());
        let peer = PeerId::random();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.standing(&peer).await }
        });
        tokio::task::yield_now().await;
        gate.set(peer, Standing::Member);
        assert_eq!(waiting.await.unwrap(), Some(Standing::Member));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_a_standing_ends() {
        let gate = Gate::default();
        assert_eq!(gate.standing(&PeerId::random()).await, None);
    }
}
