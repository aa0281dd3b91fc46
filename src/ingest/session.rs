//! A publisher session on a stream for pushed MPEG-TS bytes (SRT or gRPC):
//! holds the stream's publisher slot, guards against non-TS input, keeps
//! the media near real time ([`super::pacing`]), feeds the stream's
//! pipeline, and ends the session with the right state (ENDED when
//! the publisher leaves, ERROR when its media was unusable).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::batch::Batch;
use super::pacing::{Pacer, PUSH_LEAD, SRT_LEAD};
use super::ts_sync::TsSync;
use crate::error::{Error, Result};
use crate::features::{FeatureEngine, FeatureTasks};
use crate::pipeline::{Outcome, Source, StreamPipeline};
use crate::proto::v1::StreamState;
use crate::streams::{LiveStream, PublisherGuard, PublisherKind};

/// Pushed messages larger than this are taken in pieces of this size.
const PIECE_BYTES: usize = 64 * 1024;
/// How long a leaving publisher's last media may take to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PublishSession {
    stream: Arc<LiveStream>,
    kind: PublisherKind,
    pipeline: StreamPipeline,
    _features: FeatureTasks,
    ts: TsSync,
    pacer: Pacer,
    batch: Batch,
    bytes_received: u64,
    _publisher: PublisherGuard,
}

impl PublishSession {
    /// Claims the stream for this publisher and starts its pipeline.
    pub fn start(
        engine: &Arc<FeatureEngine>,
        stream: Arc<LiveStream>,
        kind: PublisherKind,
    ) -> Result<Self> {
        let publisher = stream.claim_publisher(kind)?;
        let pipeline = super::start_pipeline(
            &stream,
            &Source::PushedTs,
            format!("receiving media via {kind}"),
        )?;
        let features = engine.start(&stream, &pipeline.units())?;
        tracing::info!(stream = %stream.stream_ref, publisher = %kind, "publisher connected");
        Ok(Self {
            stream,
            kind,
            pipeline,
            _features: features,
            ts: TsSync::default(),
            pacer: Pacer::default(),
            batch: Batch::default(),
            bytes_received: 0,
            _publisher: publisher,
        })
    }

    pub fn stream(&self) -> &Arc<LiveStream> {
        &self.stream
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Takes one chunk of MPEG-TS; it reaches the pipeline with the next
    /// batch (at once when the batch is full, else at [`Self::batch_due`]).
    /// Fails when the bytes are not MPEG-TS or the pipeline has failed; the
    /// stream is then in ERROR.
    pub async fn push(&mut self, data: Bytes) -> Result<()> {
        // A large message (a whole file in one) is taken a piece at a
        // time, so that pacing applies inside it too. Pieces share the
        // message's bytes.
        let mut at = 0;
        while at < data.len() {
            let end = (at + PIECE_BYTES).min(data.len());
            self.push_piece(data.slice(at..end)).await?;
            at = end;
        }
        Ok(())
    }

    async fn push_piece(&mut self, data: Bytes) -> Result<()> {
        self.bytes_received += data.len() as u64;
        self.pipeline.stats().add_bytes(data.len() as u64);
        if let Err(reason) = self.ts.check(&data) {
            self.stream.set_state(StreamState::Error, reason.clone());
            tracing::warn!(stream = %self.stream.stream_ref, publisher = %self.kind, %reason, "rejecting publisher");
            return Err(Error::InvalidMedia {
                stream_id: self.stream.stream_ref.stream_id.clone(),
                reason,
            });
        }
        if self.batch.add(data) {
            self.flush().await?;
        }
        if let Some(pcr) = self.ts.take_pcr() {
            self.keep_real_time(pcr).await?;
        }
        Ok(())
    }

    /// Holds a pushed publisher back to real time, or refuses an SRT
    /// caller that is far ahead of it ([`super::pacing`]).
    async fn keep_real_time(&mut self, pcr: u64) -> Result<()> {
        let lead = self.pacer.lead(pcr, tokio::time::Instant::now());
        match self.kind {
            PublisherKind::GrpcPush if lead > PUSH_LEAD => {
                // What came so far goes on; the rest waits for its time.
                self.flush().await?;
                tokio::time::sleep(lead - PUSH_LEAD).await;
                Ok(())
            }
            PublisherKind::Srt if lead > SRT_LEAD => {
                let reason = format!(
                    "publishing faster than real time ({:.0} s of media ahead of the clock): publish at real-time pace (e.g. ffmpeg -re)",
                    lead.as_secs_f64()
                );
                self.stream.set_state(StreamState::Error, reason.clone());
                tracing::warn!(stream = %self.stream.stream_ref, publisher = %self.kind, %reason, "rejecting publisher");
                Err(Error::InvalidMedia {
                    stream_id: self.stream.stream_ref.stream_id.clone(),
                    reason,
                })
            }
            _ => Ok(()),
        }
    }

    /// Resolves when the waiting batch must go: call [`Self::flush`] then.
    /// Never resolves while nothing waits.
    pub async fn batch_due(&self) {
        match self.batch.deadline() {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    /// Hands the waiting batch to the pipeline.
    pub async fn flush(&mut self) -> Result<()> {
        let chunks = self.batch.take();
        if chunks.is_empty() {
            return Ok(());
        }
        self.pipeline.push(chunks).await
    }

    /// Resolves when the pipeline has failed by itself (bus error, no
    /// supported media): the publisher should then be let go.
    pub async fn failed(&self) -> Error {
        match self.pipeline.ended().await {
            Outcome::Failed(reason) => Error::InvalidMedia {
                stream_id: self.stream.stream_ref.stream_id.clone(),
                reason,
            },
            // A clean end of stream only follows our own end of input.
            Outcome::EndOfStream => std::future::pending().await,
        }
    }

    /// Ends the session. After a clean end of input the pipeline drains and
    /// the stream is ENDED; after a failure it stays in ERROR. Fails when
    /// the media turned out unusable while draining (the publisher is told).
    pub async fn finish(mut self, failure: Option<&Error>) -> Result<()> {
        let flushed = match failure {
            Some(_) => Ok(()),
            None => self.flush().await,
        };
        let failure = failure.or(flushed.as_ref().err());
        let stream = Arc::clone(&self.stream);
        let kind = self.kind;
        let bytes = self.bytes_received;
        let result = match failure {
            Some(e) => {
                if stream.state() != StreamState::Error {
                    stream.set_state(StreamState::Error, e.to_string());
                }
                drop(self.pipeline);
                Ok(())
            }
            None => match self.pipeline.finish(DRAIN_TIMEOUT).await {
                Outcome::EndOfStream => {
                    stream.set_state(StreamState::Ended, format!("{kind} publisher left"));
                    Ok(())
                }
                Outcome::Failed(reason) => {
                    if stream.state() != StreamState::Error {
                        stream.set_state(StreamState::Error, reason.clone());
                    }
                    Err(Error::InvalidMedia {
                        stream_id: stream.stream_ref.stream_id.clone(),
                        reason,
                    })
                }
            },
        };
        tracing::info!(stream = %stream.stream_ref, publisher = %kind, bytes, "publisher session ended");
        result
    }
}
