//! The bytes of a recording or clip, wherever they are kept: a local file
//! (being written, or without object storage), or objects in the store
//! (a recording's init segment and fragments joined in order, or a clip's
//! one object). Both read any byte range as a stream of chunks, so a file
//! is never held whole in memory. A file made for one request (a clip
//! URL's cut) is served from memory the same way.

use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::objects::ObjectStorage;
use crate::registry::{RecordingPart, RecordingRecord};

/// Bytes read from a file at a time.
const FILE_CHUNK: usize = 64 * 1024;

/// A recording's or clip's bytes.
pub struct Media {
    /// Total length in bytes.
    pub len: u64,
    source: Source,
}

enum Source {
    File(PathBuf),
    /// Objects joined in order: each with its key and length.
    Objects {
        storage: ObjectStorage,
        pieces: Vec<(object_store::path::Path, u64)>,
    },
    Memory(Bytes),
}

impl Media {
    /// A local file (an error when it is missing).
    pub async fn file(path: PathBuf) -> Result<Self> {
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| Error::NotFound {
                kind: "file",
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            })?;
        Ok(Self {
            len: meta.len(),
            source: Source::File(path),
        })
    }

    /// A recording's parts in object storage.
    pub fn objects(
        storage: ObjectStorage,
        record: RecordingRecord,
        parts: Vec<RecordingPart>,
    ) -> Self {
        let pieces: Vec<_> = parts
            .iter()
            .map(|p| (storage.recording_part(&record, p.seq), p.size))
            .collect();
        Self::pieces(storage, pieces)
    }

    /// Objects joined in order.
    pub fn pieces(storage: ObjectStorage, pieces: Vec<(object_store::path::Path, u64)>) -> Self {
        Self {
            len: pieces.iter().map(|(_, len)| len).sum(),
            source: Source::Objects { storage, pieces },
        }
    }

    /// Bytes in memory.
    pub fn memory(bytes: Bytes) -> Self {
        Self {
            len: bytes.len() as u64,
            source: Source::Memory(bytes),
        }
    }

    /// The local file, when the bytes are in one.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.source {
            Source::File(path) => Some(path),
            Source::Objects { .. } | Source::Memory(_) => None,
        }
    }

    /// The bytes of `range` (within `0..len`), in chunks.
    pub async fn read(&self, range: Range<u64>) -> Result<BoxStream<'static, Result<Bytes>>> {
        if range.start > range.end || range.end > self.len {
            return Err(Error::invalid(
                "range",
                format!("must be within the {} bytes", self.len),
            ));
        }
        match &self.source {
            Source::File(path) => {
                let mut file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::Storage(format!("opening {}: {e}", path.display())))?;
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(|e| Error::Storage(e.to_string()))?;
                let limited = file.take(range.end - range.start);
                Ok(ReaderStream::with_capacity(limited, FILE_CHUNK)
                    .map_err(|e| Error::Storage(format!("reading: {e}")))
                    .boxed())
            }
            Source::Memory(bytes) => {
                let range = range.start as usize..range.end as usize;
                let chunks: Vec<Result<Bytes>> = (range.start..range.end)
                    .step_by(FILE_CHUNK)
                    .map(|at| Ok(bytes.slice(at..(at + FILE_CHUNK).min(range.end))))
                    .collect();
                Ok(futures::stream::iter(chunks).boxed())
            }
            Source::Objects { storage, pieces } => {
                // The pieces the range touches, each with its own range.
                let mut wanted = vec![];
                let mut at = 0u64;
                for (key, len) in pieces {
                    let (start, end) = (at, at + len);
                    at = end;
                    if end <= range.start || start >= range.end {
                        continue;
                    }
                    let from = range.start.max(start) - start;
                    let to = range.end.min(end) - start;
                    wanted.push((key.clone(), from..to));
                }
                let storage = storage.clone();
                Ok(futures::stream::iter(wanted)
                    .then(move |(key, range)| {
                        let storage = storage.clone();
                        async move { storage.read(&key, range).await }
                    })
                    .try_flatten()
                    .boxed())
            }
        }
    }
}
