//! The request-response codec for `/convene/sync/1`.
//!
//! A frame is a 4-byte big-endian length and a postcard-encoded message.
//! A length over [`MAX_MESSAGE_BYTES`] is refused before any of the body is
//! read, and bytes that do not decode are refused too; the event loop
//! disconnects a peer that sends either.
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

use crate::sync::wire::{self, MAX_MESSAGE_BYTES, Request, Response};

/// Bytes of sync messages sent and received (frames included).
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

impl Counters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
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
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    pub counters: Arc<Counters>,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    counters: &Counters,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    counters
        .received
        .fetch_add(4 + len as u64, Ordering::Relaxed);
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    counters: &Counters,
) -> io::Result<()> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to send a message of {} bytes", bytes.len()),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await?;
    counters
        .sent
        .fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
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
        match read_frame(io, &self.counters).await {
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
        let bytes = read_frame(io, &self.counters).await?;
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
