//! Sending a media file (recording, replay clip) as a stream of
//! `DataChunk`s, resumable from any byte offset.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::error::{Error, Result};
use crate::proto::v1 as pb;

/// Bytes per `DataChunk`.
pub const CHUNK_BYTES: usize = 256 * 1024;

pub type Chunks = ReceiverStream<Result<pb::DataChunk, Status>>;

/// Streams `path` from `offset` to its current end.
pub async fn stream(path: PathBuf, offset: u64) -> Result<Chunks> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Storage(format!("opening {}: {e}", path.display())))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
        .len();
    if offset > size {
        return Err(Error::invalid(
            "offset",
            format!("must be at most the file size ({size} bytes)"),
        ));
    }
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| Error::Storage(e.to_string()))?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut offset = offset;
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    let chunk = pb::DataChunk {
                        offset,
                        data: bytes::Bytes::copy_from_slice(&buf[..n]),
                    };
                    offset += n as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let error = Error::Storage(format!("reading {}: {e}", path.display()));
                    let _ = tx.send(Err(error.into())).await;
                    return;
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
