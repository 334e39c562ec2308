//! The request-response codec for `/convene/files/1`
//! ([`crate::blobs::transfer`]): the same length-prefixed postcard frames
//! as sync, with their own caps. A request is a hash and a range, at most
//! [`MAX_REQUEST_BYTES`] from anyone (a stranger's request costs what a
//! member's does: a few dozen bytes); an answer, only ever read from a
//! peer this node asked, is at most [`MAX_RESPONSE_BYTES`], read into a
//! buffer of its declared length (so at most the fetcher's window of them
//! at once). An answer that does not
//! decode is an `InvalidData` error, which the event loop treats as a
//! protocol violation.

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;

use super::codec::{Counters, read_answer_frame, read_frame, write_frame};
use crate::blobs::transfer::{FileRequest, FileResponse, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// The codec; clones share their byte counters.
#[derive(Debug, Clone, Default)]
pub struct FilesCodec {
    pub counters: Arc<Counters>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for FilesCodec {
    type Protocol = StreamProtocol;
    type Request = FileRequest;
    type Response = FileResponse;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<FileRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_REQUEST_BYTES, &self.counters).await?;
        postcard::from_bytes(&bytes).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<FileResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_answer_frame(io, MAX_RESPONSE_BYTES, &self.counters).await?;
        postcard::from_bytes(&bytes).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: FileRequest,
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
        res: FileResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = postcard::to_stdvec(&res).map_err(invalid)?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "refusing to send an answer over the files protocol's limit",
            ));
        }
        write_frame(io, &bytes, &self.counters).await
    }
}
