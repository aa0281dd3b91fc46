//! Coalesces small pushed chunks (an SRT message is 1316 bytes) into one
//! pipeline buffer, so the pipeline's streaming thread wakes once per batch
//! rather than once per packet. A batch goes as soon as it is full, or
//! `MAX_DELAY` after its first chunk arrived; chunks are kept as they came
//! (one `GstMemory` each, no copy).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// Most chunks in one buffer: a `GstBuffer` holds 16 memories before it
/// merges (copies) them.
const MAX_CHUNKS: usize = 16;
/// A batch this large goes at once (gRPC clients usually send such chunks).
const MAX_BYTES: usize = 64 * 1024;
/// Most time the first chunk of a batch waits for the others.
const MAX_DELAY: Duration = Duration::from_millis(15);

#[derive(Default)]
pub struct Batch {
    chunks: Vec<Bytes>,
    bytes: usize,
    since: Option<Instant>,
}

impl Batch {
    /// Adds a chunk; true when the batch should go now.
    pub fn add(&mut self, chunk: Bytes) -> bool {
        self.since.get_or_insert_with(Instant::now);
        self.bytes += chunk.len();
        self.chunks.push(chunk);
        self.chunks.len() >= MAX_CHUNKS || self.bytes >= MAX_BYTES
    }

    /// When the batch must go (`None` while it is empty).
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + MAX_DELAY)
    }

    /// Empties the batch, returning its chunks in order.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_batches_go_at_once_and_keep_order() {
        let mut batch = Batch::default();
        assert!(batch.deadline().is_none());
        for i in 0..MAX_CHUNKS - 1 {
            assert!(!batch.add(Bytes::from(vec![i as u8; 1316])));
        }
        assert!(batch.deadline().is_some());
        assert!(batch.add(Bytes::from(vec![15u8; 1316])));
        let chunks = batch.take();
        assert_eq!(chunks.len(), MAX_CHUNKS);
        assert!(chunks.iter().enumerate().all(|(i, c)| c[0] == i as u8));
        assert!(batch.deadline().is_none());
        assert!(
            batch.add(Bytes::from(vec![0u8; MAX_BYTES])),
            "a big chunk goes alone"
        );
    }
}
