//! The request-response codec for `/convene/sync/2`.
//!
//! A frame is a 4-byte big-endian length and a postcard-encoded message.
//! A length over the sender's limit ([`MAX_MESSAGE_BYTES`] for a member, far
//! less for a stranger: see [`super::gate`]) is refused before any of the
//! body is read, and bytes that do not decode are refused too; the event
//! loop disconnects and bans a peer that sends either. The body is read
//! into a buffer that grows as bytes arrive, never allocated from the
//! declared length: a peer that announces a large frame and sends part of
//! it costs what it sent.
//!
//! An inbound *request* that cannot be read arrives as
//! [`Inbound::Invalid`] rather than as an error: libp2p's request-response
//! drops inbound read errors without telling the behaviour, and the node
//! must learn who sent garbage in order to disconnect them. (A bad
//! *response* is an `InvalidData` error, which libp2p does report.)

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::gate::{Connection, Gate, Standing, StreamSlot};
use crate::sync::wire::{self, MAX_MESSAGE_BYTES, Request, Response};

/// How much more buffer a frame's body gets at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes of sync messages sent and received (frames included), and the
/// messages (frames) themselves.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
}

impl Counters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Messages (requests and responses) sent and received.
    pub fn messages(&self) -> (u64, u64) {
        (
            self.messages_sent.load(Ordering::Relaxed),
            self.messages_received.load(Ordering::Relaxed),
        )
    }
}

/// A request as read from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Request(Request),
    /// The peer sent something that is not a valid request (why).
    Invalid(String),
}

/// The codec; clones share their counters.
///
/// A codec made with [`SyncCodec::default`] reads every peer's requests
/// with the members' limit (for tools and tests); the daemon's is made
/// with [`SyncCodec::guarded`], and each connection's copy reads with its
/// peer's standing.
#[derive(Debug, Default)]
pub struct SyncCodec {
    pub counters: Arc<Counters>,
    /// Standings, when the codec is the daemon's.
    gate: Option<Arc<Gate>>,
    /// The connection this copy serves (set on the copy made for a
    /// connection's handler, and inherited by its streams' copies).
    connection: Option<Arc<Connection>>,
    /// The stream slot a stranger's request holds while it is read and
    /// answered.
    slot: Option<StreamSlot>,
}

impl Clone for SyncCodec {
    /// Copies share counters and standings; a copy of the behaviour's codec
    /// made while a connection's handler is built takes that connection's
    /// peer from the gate (see [`super::gate`]).
    fn clone(&self) -> Self {
        let connection = self.connection.clone().or_else(|| {
            self.gate
                .as_ref()
                .and_then(|g| g.take_next())
                .map(Connection::new)
        });
        Self {
            counters: self.counters.clone(),
            gate: self.gate.clone(),
            connection,
            slot: None,
        }
    }
}

impl SyncCodec {
    /// The daemon's codec: requests are read with the sender's standing in
    /// `gate`.
    pub fn guarded(gate: Arc<Gate>) -> Self {
        Self {
            gate: Some(gate),
            ..Self::default()
        }
    }

    /// How large a request this copy may read, and whether it may open
    /// another stream (`Err` when a stranger holds all its slots).
    async fn request_limit(&mut self) -> io::Result<usize> {
        let Some(gate) = &self.gate else {
            return Ok(MAX_MESSAGE_BYTES);
        };
        let standing = match &self.connection {
            Some(c) => gate.standing(&c.peer).await.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the node did not classify the peer in time",
                )
            })?,
            None => Standing::Stranger,
        };
        if standing == Standing::Stranger {
            let slot = self.connection.as_ref().and_then(|c| c.open_stream());
            if slot.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::QuotaExceeded,
                    "too many streams from a peer that is not a member",
                ));
            }
            self.slot = slot;
        }
        Ok(standing.max_frame())
    }
}

/// A frame's declared length, refused over `limit` before anything is
/// allocated for it.
async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes is over the {limit}-byte limit"),
        ));
    }
    Ok(len)
}

/// Counts a received frame of `len` bytes (and its length prefix).
fn counted(counters: &Counters, len: usize) {
    counters
        .received
        .fetch_add(4 + len as u64, Ordering::Relaxed);
    counters.messages_received.fetch_add(1, Ordering::Relaxed);
}

pub(super) async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    counters: &Counters,
) -> io::Result<Vec<u8>> {
    let len = read_len(io, limit).await?;
    // Grow as bytes arrive: the declared length is the sender's word.
    let mut buf = Vec::with_capacity(len.min(READ_CHUNK));
    while buf.len() < len {
        let start = buf.len();
        buf.resize((start + READ_CHUNK).min(len), 0);
        let n = io.read(&mut buf[start..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.truncate(start + n);
    }
    counted(counters, len);
    Ok(buf)
}

/// [`read_frame`] for the answer to a request this node sent, whose size it
/// bounded when it asked: the buffer is made at the declared length (at
/// most `limit`) at once rather than grown 64 KiB at a time, which for a
/// 1 MiB file range meant reallocating and zeroing it piece by piece.
pub(super) async fn read_answer_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
    counters: &Counters,
) -> io::Result<Vec<u8>> {
    let len = read_len(io, limit).await?;
    // Overwritten whole by the read (or dropped if the read fails).
    let mut buf = super::spare::take_filled(len);
    io.read_exact(&mut buf).await?;
    counted(counters, len);
    Ok(buf)
}

pub(super) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    counters: &Counters,
) -> io::Result<()> {
    write_frame_parts(io, [bytes, &[]], counters).await
}

/// [`write_frame`] of a message given in two parts (written one after the
/// other, never copied into one buffer).
pub(super) async fn write_frame_parts<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    parts: [&[u8]; 2],
    counters: &Counters,
) -> io::Result<()> {
    let len = parts[0].len() + parts[1].len();
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to send a message of {len} bytes"),
        ));
    }
    io.write_all(&(len as u32).to_be_bytes()).await?;
    for part in parts {
        io.write_all(part).await?;
    }
    io.close().await?;
    counters.sent.fetch_add(4 + len as u64, Ordering::Relaxed);
    counters.messages_sent.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn invalid(e: wire::Violation) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Inbound;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Inbound>
    where
        T: AsyncRead + Unpin + Send,
    {
        let limit = self.request_limit().await?;
        match read_frame(io, limit, &self.counters).await {
            Ok(bytes) => Ok(match wire::decode(&bytes) {
                Ok(request) => Inbound::Request(request),
                Err(v) => Inbound::Invalid(v.to_string()),
            }),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Inbound::Invalid(e.to_string())),
            Err(e) => Err(e),
        }
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        // Answers to this node's own requests: as many as it asked for.
        let bytes = read_frame(io, MAX_MESSAGE_BYTES, &self.counters).await?;
        wire::decode(&bytes).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: Inbound,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Inbound::Request(r) => write_frame(io, &wire::encode(&r), &self.counters).await,
            Inbound::Invalid(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why)),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &wire::encode(&res), &self.counters).await
    }
}

#[cfg(test)]
mod tests {
    use libp2p::PeerId;
    use libp2p::request_response::Codec;

    use super::*;
    use crate::net::gate::{STRANGER_MAX_FRAME, STRANGER_MAX_STREAMS};

    fn frame(len: usize) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.resize(4 + len, 0);
        f
    }

    /// The copy a connection's handler gets for `peer` (as libp2p makes it).
    fn connection_codec(gate: &Arc<Gate>, peer: PeerId) -> SyncCodec {
        let behaviours = SyncCodec::guarded(gate.clone());
        gate.set_next(peer);
        behaviours.clone()
    }

    #[tokio::test]
    async fn a_strangers_frames_and_streams_are_small_and_a_members_are_not() {
        let protocol = StreamProtocol::new(wire::PROTOCOL);
        let gate = Arc::new(Gate::default());
        let (stranger, member) = (PeerId::random(), PeerId::random());
        gate.set(stranger, Standing::Stranger);
        gate.set(member, Standing::Member);
        let to_stranger = connection_codec(&gate, stranger);
        let to_member = connection_codec(&gate, member);

        // A frame over a stranger's limit is refused unread...
        let big = frame(STRANGER_MAX_FRAME + 1);
        let read = to_stranger
            .clone()
            .read_request(&protocol, &mut futures::io::Cursor::new(&big))
            .await
            .unwrap();
        assert!(matches!(read, Inbound::Invalid(why) if why.contains("limit")));
        // ...and read from a member (and found not to be a request).
        let mut stream = to_member.clone();
        let read = stream
            .read_request(&protocol, &mut futures::io::Cursor::new(&big))
            .await
            .unwrap();
        assert!(matches!(read, Inbound::Invalid(why) if !why.contains("limit")));

        // A stranger's streams are counted while they are open.
        let mut open = Vec::new();
        for _ in 0..STRANGER_MAX_STREAMS {
            let mut stream = to_stranger.clone();
            let _ = stream
                .read_request(&protocol, &mut futures::io::Cursor::new(frame(1)))
                .await
                .unwrap();
            open.push(stream);
        }
        let mut one_more = to_stranger.clone();
        let err = one_more
            .read_request(&protocol, &mut futures::io::Cursor::new(frame(1)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::QuotaExceeded);
        open.pop();
        let mut now_room = to_stranger.clone();
        assert!(
            now_room
                .read_request(&protocol, &mut futures::io::Cursor::new(frame(1)))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_half_sent_frame_is_an_error_not_a_wait_or_a_large_buffer() {
        let protocol = StreamProtocol::new(wire::PROTOCOL);
        let mut codec = SyncCodec::default();
        // Announces 8 MiB, sends ten bytes and ends.
        let mut half = (MAX_MESSAGE_BYTES as u32).to_be_bytes().to_vec();
        half.extend([0u8; 10]);
        let err = codec
            .read_response(&protocol, &mut futures::io::Cursor::new(half))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
