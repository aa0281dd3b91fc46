//! A publisher session on a stream for pushed media (MPEG-TS bytes over
//! SRT or gRPC, FLV tags over RTMP):
//! holds the stream's publisher slot, guards against non-TS input, keeps
//! the media near real time ([`super::pacing`]), demultiplexes each chunk
//! as it arrives ([`PushedPipeline`], in this task) and ends the session
//! with the right state (ENDED when the publisher leaves, ERROR when its
//! media was unusable).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::pacing::{Pacer, PUSH_LEAD, SRT_LEAD};
use super::ts_sync::{Clock, TsSync};
use crate::cluster::lease::SessionLease;
use crate::error::{Error, Result};
use crate::features::{FeatureEngine, FeatureTasks};
use crate::pipeline::elementary::Elementary;
use crate::pipeline::pushed::PushedPipeline;
use crate::pipeline::Outcome;
use crate::proto::v1::StreamState;
use crate::streams::{LetGo, LiveStream, PublisherGuard, PublisherKind};

/// Pushed messages larger than this are taken in pieces of this size.
const PIECE_BYTES: usize = 64 * 1024;
/// A burst (a publisher ahead of real time) waits while the slowest
/// feature has more access units than this to take (a quarter of the
/// broadcast it reads from, which would drop the oldest past its size)...
const FEATURE_BACKLOG: usize = crate::pipeline::UNIT_BUFFER / 4;
/// ... for at most this long per chunk: a stuck feature does not stop the
/// stream (it then misses units and says so).
const BACKLOG_WAIT: Duration = Duration::from_secs(1);

pub struct PublishSession {
    stream: Arc<LiveStream>,
    kind: PublisherKind,
    pipeline: PushedPipeline,
    _features: FeatureTasks,
    ts: TsSync,
    /// The PCRs of the piece being taken (kept to reuse its allocation).
    clocks: Vec<Clock>,
    pacer: Pacer,
    bytes_received: u64,
    publisher: PublisherGuard,
    /// This node's hold on the session (given up when it ends).
    lease: SessionLease,
    /// Bytes received over this session's protocol (metrics).
    bytes_in: prometheus_client::metrics::counter::Counter,
}

impl PublishSession {
    /// Starts the pipeline of a session this node holds (`publisher`,
    /// `lease`).
    pub fn start(
        engine: &Arc<FeatureEngine>,
        stream: Arc<LiveStream>,
        kind: PublisherKind,
        publisher: PublisherGuard,
        lease: SessionLease,
    ) -> Result<Self> {
        let pipeline = PushedPipeline::start(
            &stream.stream_ref,
            stream.new_session_stats(lease.fence().clone()),
            super::pipeline_events(&stream, format!("receiving media via {kind}")),
        );
        let features = engine.start(&stream, &pipeline.units())?;
        tracing::info!(stream = %stream.stream_ref, publisher = %kind, "publisher connected");
        Ok(Self {
            stream,
            kind,
            pipeline,
            _features: features,
            ts: TsSync::default(),
            clocks: Vec::new(),
            pacer: Pacer::default(),
            bytes_received: 0,
            publisher,
            lease,
            bytes_in: crate::metrics::get().ingest_bytes(kind.label()),
        })
    }

    pub fn stream(&self) -> &Arc<LiveStream> {
        &self.stream
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Takes one chunk of MPEG-TS: its access units reach the features
    /// before this returns. Fails when the bytes are not MPEG-TS; the
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

    /// Takes one piece: demuxes it, pausing at the PCR where the media
    /// gets ahead of real time. Pacing follows every PCR, not the end of
    /// the piece: a piece of low-bitrate media (audio alone) holds
    /// seconds of it.
    async fn push_piece(&mut self, data: Bytes) -> Result<()> {
        self.count_bytes(data.len() as u64);
        let mut clocks = std::mem::take(&mut self.clocks);
        clocks.clear();
        if let Err(reason) = self.ts.check(&data, &mut clocks) {
            tracing::warn!(stream = %self.stream.stream_ref, publisher = %self.kind, %reason, "rejecting publisher");
            return Err(Error::InvalidMedia {
                stream_id: self.stream.stream_ref.stream_id.clone(),
                reason,
            });
        }
        let mut sent = 0;
        let mut result = Ok(());
        for clock in &clocks {
            match self.ahead_of_real_time(clock.pcr) {
                Ok(None) => {}
                Ok(Some(wait)) => {
                    // What is due has gone on; the rest waits for its time.
                    self.pipeline.push(&data[sent..clock.end]);
                    sent = clock.end;
                    self.let_features_catch_up().await;
                    tokio::time::sleep(wait).await;
                }
                Err(refused) => {
                    // What came before the refusal is kept.
                    self.pipeline.push(&data[sent..clock.end]);
                    sent = data.len();
                    result = Err(refused);
                    break;
                }
            }
        }
        if sent < data.len() {
            self.pipeline.push(&data[sent..]);
            self.let_features_catch_up().await;
        }
        self.clocks = clocks;
        result
    }

    /// Takes one item of media demultiplexed by its protocol (RTMP): its
    /// access units reach the features before this returns. A publisher
    /// ahead of real time waits here, which TCP turns into backpressure.
    pub async fn push_elementary(&mut self, media: Elementary) {
        self.count_bytes(media.media_bytes() as u64);
        if let Some(ticks) = media.decode_ticks() {
            if let Ok(Some(wait)) = self.ahead_of_real_time(ticks) {
                self.let_features_catch_up().await;
                tokio::time::sleep(wait).await;
            }
        }
        self.pipeline.push_elementary(media);
        self.let_features_catch_up().await;
    }

    /// Counts `bytes` received in the session's stats and the metrics.
    fn count_bytes(&mut self, bytes: u64) {
        self.bytes_received += bytes;
        self.pipeline.stats().add_bytes(bytes);
        self.bytes_in.inc_by(bytes);
    }

    /// Waits (briefly) while the slowest feature is behind: the units of a
    /// burst go out faster than real time, and the features read them
    /// from a bounded broadcast. Only a gRPC push or RTMP waits (flow
    /// control per call or per TCP connection); an SRT session that
    /// stopped reading would lose its own payloads (its receive thread never waits for it, see the SRT
    /// shard's tests and `a_bursting_srtpublisher_does_not_delay_the_others`),
    /// and an SRT publisher cannot get far ahead ([`SRT_LEAD`]).
    async fn let_features_catch_up(&self) {
        if !self.kind.has_flow_control() {
            return;
        }
        let deadline = tokio::time::Instant::now() + BACKLOG_WAIT;
        while self.pipeline.backlog() > FEATURE_BACKLOG && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How long a pushed publisher must wait at media time `pcr` to stay
    /// near real time, or the refusal of an SRT caller that is far ahead
    /// of it ([`super::pacing`]).
    fn ahead_of_real_time(&mut self, pcr: u64) -> Result<Option<Duration>> {
        let lead = self.pacer.lead(pcr, tokio::time::Instant::now());
        match self.kind {
            PublisherKind::GrpcPush | PublisherKind::Rtmp if lead > PUSH_LEAD => {
                Ok(Some(lead - PUSH_LEAD))
            }
            PublisherKind::Srt if lead > SRT_LEAD => {
                let reason = format!(
                    "publishing faster than real time ({:.0} s of media ahead of the clock): publish at real-time pace (e.g. ffmpeg -re)",
                    lead.as_secs_f64()
                );
                tracing::warn!(stream = %self.stream.stream_ref, publisher = %self.kind, %reason, "rejecting publisher");
                Err(Error::InvalidMedia {
                    stream_id: self.stream.stream_ref.stream_id.clone(),
                    reason,
                })
            }
            _ => Ok(None),
        }
    }

    /// Resolves when the session has failed by itself (no supported
    /// media in time), this node lost its hold on it, or lets it go (a
    /// rotated key, an overloaded node): the publisher should then go.
    pub async fn failed(&self) -> Error {
        let stream_id = self.stream.stream_ref.stream_id.clone();
        tokio::select! {
            reason = self.pipeline.no_media() => Error::InvalidMedia { stream_id, reason },
            _ = self.lease.lost().cancelled() => Error::TakenOver { stream_id },
            let_go = self.publisher.let_go() => match let_go {
                LetGo::KeyRotated => Error::KeyRotated { stream_id },
                LetGo::Shed(reason) => Error::Shed {
                    stream_id,
                    node_id: self.lease.fence().node_id.clone(),
                    reason,
                },
            },
        }
    }

    /// Ends the session. After a clean end of input the last media goes
    /// out and the stream is ENDED; after a failure it is in ERROR, with
    /// the failure's reason. The publisher slot is free before the new
    /// state is announced, so a publisher that reacts to it at once is
    /// not refused as a second one. Fails when the input turned out to
    /// hold no usable media (the publisher is told).
    pub async fn finish(self, failure: Option<&Error>) -> Result<()> {
        let PublishSession {
            stream,
            kind,
            pipeline,
            _features,
            bytes_received: bytes,
            publisher,
            ..
        } = self;
        let (state, message, result) = match failure {
            Some(Error::InvalidMedia { reason, .. }) => {
                (StreamState::Error, reason.clone(), Ok(()))
            }
            Some(e) => (StreamState::Error, e.to_string(), Ok(())),
            None => match pipeline.finish() {
                Outcome::EndOfStream => {
                    (StreamState::Ended, format!("{kind} publisher left"), Ok(()))
                }
                Outcome::Failed(reason) => (
                    StreamState::Error,
                    reason.clone(),
                    Err(Error::InvalidMedia {
                        stream_id: stream.stream_ref.stream_id.clone(),
                        reason,
                    }),
                ),
            },
        };
        drop(_features);
        drop(publisher);
        // An ERROR already reported (no media in time) keeps its message.
        if !(state == StreamState::Error && stream.state() == StreamState::Error) {
            stream.set_state(state, message);
        }
        tracing::info!(stream = %stream.stream_ref, publisher = %kind, bytes, "publisher session ended");
        result
    }
}
