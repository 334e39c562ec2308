//! A counting TCP proxy: the one yardstick for bytes on the wire.
//!
//! Every system in `--compare` is dialled through one of these, so
//! `wire_bytes` counts the same thing for all of them: every TCP payload
//! byte in both directions, handshakes (multistream-select, Noise, Yamux,
//! identify for Convene; samod's own handshake) included. It runs on plain
//! threads in the parent process and copies bytes as they come.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Counts {
    /// Client to server.
    up: AtomicU64,
    /// Server to client.
    down: AtomicU64,
    /// Connections accepted and not yet closed both ways.
    open: AtomicUsize,
    accepted: AtomicUsize,
}

/// A listening proxy to one target address; lives as long as the bench.
pub struct Proxy {
    pub addr: SocketAddr,
    counts: Arc<Counts>,
}

/// Bytes seen so far, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub up: u64,
    pub down: u64,
}

impl Seen {
    pub fn total(&self) -> u64 {
        self.up + self.down
    }

    pub fn since(&self, before: Seen) -> Seen {
        Seen {
            up: self.up - before.up,
            down: self.down - before.down,
        }
    }
}

impl Proxy {
    /// Listens on a loopback port and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                c.accepted.fetch_add(1, Ordering::SeqCst);
                c.open.fetch_add(2, Ordering::SeqCst);
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &c,
                    true,
                );
                pipe(server, client, &c, false);
            }
        });
        Self { addr, counts }
    }

    pub fn seen(&self) -> Seen {
        Seen {
            up: self.counts.up.load(Ordering::SeqCst),
            down: self.counts.down.load(Ordering::SeqCst),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// Waits until every connection through the proxy has closed (both
    /// directions at end of stream), so nothing is left uncounted.
    pub fn wait_closed(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.counts.open.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "a connection through the proxy stayed open"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until no byte has crossed for `still`, for a protocol that
    /// keeps its connection open after it is done (samod).
    pub fn wait_quiet(&self, still: Duration) {
        let mut last = self.seen();
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.seen();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= still {
                return;
            }
        }
    }
}

/// Copies `from` to `to` on its own thread, counting, until `from` ends.
fn pipe(mut from: TcpStream, mut to: TcpStream, counts: &Arc<Counts>, up: bool) {
    let counts = counts.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            let counter = if up { &counts.up } else { &counts.down };
            counter.fetch_add(n as u64, Ordering::SeqCst);
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
        counts.open.fetch_sub(1, Ordering::SeqCst);
    });
}
