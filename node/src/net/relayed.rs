//! Counting the bytes of relayed connections: every byte this node sends
//! or receives on a connection through a member's relay (Noise and Yamux
//! framing included), as `/metrics` reports them
//! (`convene_relayed_sent_bytes`, `convene_relayed_received_bytes`). The
//! relay client's raw stream is wrapped before the connection is secured,
//! so nothing passes uncounted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// Bytes through relayed connections, both ways.
#[derive(Debug, Default)]
pub struct RelayedBytes {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

impl RelayedBytes {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// A stream whose bytes are added to [`RelayedBytes`].
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    counters: Arc<RelayedBytes>,
}

impl<S> Counted<S> {
    pub fn new(inner: S, counters: Arc<RelayedBytes>) -> Self {
        Self { inner, counters }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counters
                .received
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
