//! Sending a media file (recording, replay clip) as a stream of
//! `DataChunk`s, resumable from any byte offset, from wherever the file
//! is kept ([`Media`]).

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::service::media::Media;

/// Bytes per `DataChunk` at most.
pub const CHUNK_BYTES: usize = 256 * 1024;

pub type Chunks = ReceiverStream<Result<pb::DataChunk, Status>>;

/// Streams `media` from `offset` to its end (a file still being recorded:
/// as far as it is written now).
pub async fn stream(media: Media, offset: u64) -> Result<Chunks> {
    if offset > media.len {
        return Err(Error::invalid(
            "offset",
            format!("must be at most the file size ({} bytes)", media.len),
        ));
    }
    let mut bytes = media.read(offset..media.len).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut offset = offset;
        while let Some(read) = bytes.next().await {
            let chunk = match read {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            // Shared slices of what was read: no copy.
            for piece in chunk.chunks(CHUNK_BYTES) {
                let data = chunk.slice_ref(piece);
                let message = pb::DataChunk { offset, data };
                offset += piece.len() as u64;
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
