//! The frames of `/convene/files/1` ([`crate::blobs::transfer`]): a
//! request is a hash and a range, at most [`MAX_REQUEST_BYTES`] from
//! anyone (a stranger's request costs what a member's does: a few dozen
//! bytes); an answer is at most [`MAX_RESPONSE_BYTES`], read into a buffer
//! of its declared length (so at most the fetcher's window of them at
//! once). The codec is [`super::framed::Framed`].

use super::framed::{Framed, Frames};
use crate::blobs::transfer::{FileRequest, FileResponse, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// The files protocol's frames.
#[derive(Debug)]
pub enum FilesFrames {}

impl Frames for FilesFrames {
    type Request = FileRequest;
    type Response = FileResponse;
    const MAX_REQUEST: usize = MAX_REQUEST_BYTES;
    const MAX_RESPONSE: usize = MAX_RESPONSE_BYTES;

    fn response_frame(res: &FileResponse) -> Result<(Vec<u8>, &[u8]), postcard::Error> {
        res.to_frame()
    }

    fn response_from(frame: Vec<u8>) -> Result<FileResponse, postcard::Error> {
        FileResponse::from_frame(frame)
    }

    fn written(res: FileResponse) {
        if let FileResponse::Range { encoded, .. } = res {
            super::spare::give(encoded.into_buffer());
        }
    }
}

/// The codec of `/convene/files/1`.
pub type FilesCodec = Framed<FilesFrames>;
