//! A request-response codec of length-prefixed postcard frames, with caps
//! of its own, for the node's small protocols (`/convene/files/1`,
//! `/convene/addrs/1`): the same frames as sync. A request is read up to
//! [`Frames::MAX_REQUEST`] from anyone, growing its buffer as bytes
//! arrive; an answer, only ever read from a peer this node asked, is read
//! up to [`Frames::MAX_RESPONSE`] into a buffer of its declared length. A
//! frame that does not decode is an `InvalidData` error, which the event
//! loop treats as a protocol violation.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Counters, read_answer_frame, read_frame, write_frame, write_frame_parts};

/// What a protocol's frames carry, and how large they may be.
pub trait Frames: Send + 'static {
    type Request: Serialize + DeserializeOwned + Send;
    type Response: Serialize + DeserializeOwned + Send;
    /// The largest request read from anyone.
    const MAX_REQUEST: usize;
    /// The largest answer read (or sent).
    const MAX_RESPONSE: usize;

    /// An answer's frame in two parts (the encoding is their
    /// concatenation), so that a large payload is written as it is.
    fn response_frame(res: &Self::Response) -> Result<(Vec<u8>, &[u8]), postcard::Error> {
        Ok((postcard::to_stdvec(res)?, &[]))
    }

    /// Decodes an answer's frame (which it may keep, rather than copy).
    fn response_from(frame: Vec<u8>) -> Result<Self::Response, postcard::Error> {
        let res = postcard::from_bytes(&frame);
        super::spare::give(frame);
        res
    }

    /// An answer written: its buffers may be reused.
    fn written(res: Self::Response) {
        drop(res);
    }
}

/// The codec for `M`'s frames; clones share their byte counters.
pub struct Framed<M> {
    pub counters: Arc<Counters>,
    frames: PhantomData<fn() -> M>,
}

impl<M> Default for Framed<M> {
    fn default() -> Self {
        Self {
            counters: Arc::default(),
            frames: PhantomData,
        }
    }
}

impl<M> Clone for Framed<M> {
    fn clone(&self) -> Self {
        Self {
            counters: self.counters.clone(),
            frames: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Framed<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framed")
            .field("counters", &self.counters)
            .finish()
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<M: Frames> libp2p::request_response::Codec for Framed<M> {
    type Protocol = StreamProtocol;
    type Request = M::Request;
    type Response = M::Response;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<M::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, M::MAX_REQUEST, &self.counters).await?;
        postcard::from_bytes(&bytes).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<M::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_answer_frame(io, M::MAX_RESPONSE, &self.counters).await?;
        M::response_from(bytes).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: M::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = postcard::to_stdvec(&req).map_err(invalid)?;
        write_frame(io, &bytes, &self.counters).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: M::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let (head, tail) = M::response_frame(&res).map_err(invalid)?;
        if head.len() + tail.len() > M::MAX_RESPONSE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to send an answer over the protocol's limit",
            ));
        }
        write_frame_parts(io, [&head, tail], &self.counters).await?;
        M::written(res);
        Ok(())
    }
}
