//! Buffers of large frames (file answers: a 1 MiB range and its proof),
//! kept for reuse. A fresh buffer of that size comes from the system's
//! allocator as new pages, each faulted in and zeroed by the kernel on
//! first touch: about a sixth of a fetching node's CPU during a large
//! download. A buffer given back once its frame is used (a served answer
//! written, a received one verified) is handed to the next frame instead.
//!
//! Bounded: at most [`KEEP`] buffers of at most [`LARGEST`] bytes each
//! (about 8.5 MiB), and none once no large frame has come or gone for
//! [`IDLE`] (the daemon's tick calls [`release_if_idle`]), so an idle node
//! holds nothing here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::blobs::transfer::MAX_RESPONSE_BYTES;

/// Most buffers kept (a fetcher has at most 16 answers in flight, a
/// source at most a few per peer; reuse needs only the steady state).
pub const KEEP: usize = 8;
/// Smaller buffers are left to the allocator, which reuses them well.
pub const SMALLEST: usize = 64 * 1024;
/// Larger buffers are not kept (none is made for a frame this node reads
/// or writes).
pub const LARGEST: usize = MAX_RESPONSE_BYTES;
/// How long kept buffers outlive the last large frame.
pub const IDLE: Duration = Duration::from_secs(10);

/// Kept buffers, and when a large frame last came or went.
#[derive(Debug, Default)]
pub struct Spare {
    buffers: Vec<Vec<u8>>,
    used: Option<Instant>,
}

impl Spare {
    pub const fn new() -> Self {
        Self {
            buffers: Vec::new(),
            used: None,
        }
    }

    /// An empty buffer with room for at least `len` bytes: a kept one if
    /// one is large enough, else a new one.
    pub fn take(&mut self, len: usize, now: Instant) -> Vec<u8> {
        let mut buf = self.take_kept(len, now);
        buf.clear();
        buf
    }

    /// A buffer of exactly `len` bytes, to be overwritten whole (a frame
    /// read into it): a kept one keeps the bytes of its last frame rather
    /// than being zeroed again (a 1 MiB `memset` per answer); only bytes
    /// it never held are zeroed.
    pub fn take_filled(&mut self, len: usize, now: Instant) -> Vec<u8> {
        let mut buf = self.take_kept(len, now);
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        buf
    }

    /// A kept buffer with room for `len` bytes, as it was given back, or
    /// a new empty one.
    fn take_kept(&mut self, len: usize, now: Instant) -> Vec<u8> {
        if (SMALLEST..=LARGEST).contains(&len) {
            self.used = Some(now);
            if let Some(i) = self.buffers.iter().position(|b| b.capacity() >= len) {
                return self.buffers.swap_remove(i);
            }
        }
        Vec::with_capacity(len)
    }

    /// Gives a buffer back once its frame is used; kept (with its bytes,
    /// for [`Self::take_filled`]) if there is room.
    pub fn give(&mut self, buf: Vec<u8>, now: Instant) {
        if !(SMALLEST..=LARGEST).contains(&buf.capacity()) {
            return;
        }
        self.used = Some(now);
        if self.buffers.len() < KEEP {
            self.buffers.push(buf);
        }
    }

    /// Every kept buffer, to let go, if none was taken or given for
    /// [`IDLE`] before `now`.
    pub fn idle(&mut self, now: Instant) -> Vec<Vec<u8>> {
        if self
            .used
            .is_some_and(|t| now.saturating_duration_since(t) < IDLE)
        {
            return Vec::new();
        }
        std::mem::take(&mut self.buffers)
    }

    /// Buffers kept, and their bytes.
    pub fn held(&self) -> (usize, usize) {
        (
            self.buffers.len(),
            self.buffers.iter().map(Vec::capacity).sum(),
        )
    }
}

/// The node's buffers (one per process: every daemon in it shares them).
static SPARE: Mutex<Spare> = Mutex::new(Spare::new());

fn spare() -> std::sync::MutexGuard<'static, Spare> {
    SPARE.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`Spare::take`] from the node's buffers.
pub fn take(len: usize) -> Vec<u8> {
    if len < SMALLEST {
        return Vec::with_capacity(len);
    }
    spare().take(len, Instant::now())
}

/// [`Spare::take_filled`] from the node's buffers.
pub fn take_filled(len: usize) -> Vec<u8> {
    if len < SMALLEST {
        return vec![0; len];
    }
    spare().take_filled(len, Instant::now())
}

/// [`Spare::give`] to the node's buffers.
pub fn give(buf: Vec<u8>) {
    if buf.capacity() < SMALLEST {
        return;
    }
    spare().give(buf, Instant::now());
}

/// Lets the node's buffers go if none was used for [`IDLE`].
pub fn release_if_idle() {
    let released = spare().idle(Instant::now());
    // Freed outside the lock.
    drop(released);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused_bounded_and_let_go_when_idle() {
        let mut spare = Spare::new();
        let t = Instant::now();
        let a = spare.take(LARGEST, t);
        let at = a.as_ptr();
        spare.give(a, t);
        let b = spare.take(LARGEST - 1, t);
        assert_eq!(b.as_ptr(), at, "the same buffer, not a new one");
        assert!(b.is_empty() && b.capacity() >= LARGEST);
        spare.give(b, t);
        // A frame read whole into a kept buffer: the buffer is reused at
        // the frame's length, not zeroed again, and what is read into it
        // is all the caller sees.
        let mut c = spare.take_filled(SMALLEST + 100, t);
        c.fill(7);
        let at = c.as_ptr();
        spare.give(c, t);
        let mut d = spare.take_filled(SMALLEST, t);
        assert_eq!((d.as_ptr(), d.len()), (at, SMALLEST));
        assert!(d.iter().all(|&b| b == 7), "kept as it was, not zeroed");
        d.copy_from_slice(&vec![9; SMALLEST]);
        assert!(d.iter().all(|&b| b == 9));
        spare.give(d, t);
        let e = spare.take_filled(SMALLEST + 10, t);
        assert_eq!((e.as_ptr(), e.len()), (at, SMALLEST + 10));
        assert_eq!(
            e[SMALLEST..],
            [0; 10],
            "bytes past its last frame are zeroed"
        );
        // `take` still hands out an empty buffer.
        spare.give(e, t);
        assert!(spare.take(SMALLEST, t).is_empty());
        // Small and oversized buffers are never kept; at most KEEP are.
        spare.give(Vec::with_capacity(SMALLEST - 1), t);
        spare.give(Vec::with_capacity(LARGEST + 1), t);
        for _ in 0..2 * KEEP {
            spare.give(Vec::with_capacity(SMALLEST), t);
        }
        let (kept, bytes) = spare.held();
        assert_eq!(kept, KEEP);
        assert!(bytes <= KEEP * LARGEST);
        // A small frame's buffer is never one of them.
        drop(spare.take(SMALLEST - 1, t));
        assert_eq!(spare.held().0, KEEP);
        // Used within IDLE: kept; then idle: all let go.
        assert!(spare.idle(t + IDLE / 2).is_empty());
        assert_eq!(spare.idle(t + IDLE).len(), KEEP);
        assert_eq!(spare.held(), (0, 0));
    }
}
