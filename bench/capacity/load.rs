//! The load: publishers that push the media file in real time, paced by its
//! PCR, over SRT (one 1316-byte message per chunk, all publishers on one
//! thread: [`crate::srt_load`]) or gRPC `PushMedia` (one message per tick,
//! a zero-copy slice of the file). Each
//! publisher records when every keyframe was fully sent, how many bytes it
//! sent and how late its sends ran against the schedule.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use liveproc::proto::v1 as pb;
use liveproc::proto::v1::live_processing_client::LiveProcessingClient;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::media::Media;
use crate::srt_load::{self, SrtPublish};

/// How often a publisher wakes to send what is due.
const TICK: Duration = Duration::from_millis(5);
/// SRT latency the publishers ask for (the receiver's jitter buffer).
pub const SRT_LATENCY: Duration = Duration::from_millis(120);

/// Where a publisher sends.
#[derive(Clone, Debug)]
pub enum Target {
    Srt {
        addr: SocketAddr,
        stream_id: Option<String>,
    },
    Push {
        grpc: SocketAddr,
        stream_id: String,
        stream_key: String,
    },
}

impl Target {
    pub fn protocol(&self) -> &'static str {
        match self {
            Target::Srt { .. } => "srt",
            Target::Push { .. } => "grpc",
        }
    }
}

/// What a publisher observed.
#[derive(Default)]
pub struct PublisherStats {
    pub bytes_sent: AtomicU64,
    /// Media time (µs from the file's start) of the last chunk sent.
    pub media_sent_us: AtomicU64,
    /// Wall-clock time each keyframe's last byte was sent, by keyframe index.
    pub keyframe_sent: Mutex<Vec<Option<SystemTime>>>,
    /// Most a send ran behind its schedule, µs.
    pub max_lateness_us: AtomicU64,
    pub error: Mutex<Option<String>>,
}

impl PublisherStats {
    /// Notes that chunks `sent` went out `elapsed` after the first: how
    /// late, how far into the media, how many bytes, and when each
    /// keyframe they complete (from `next_keyframe` on) went.
    pub fn note_sent(
        &self,
        media: &Media,
        sent: std::ops::Range<usize>,
        elapsed: Duration,
        next_keyframe: &mut usize,
    ) {
        let (first, last) = (&media.chunks[sent.start], &media.chunks[sent.end - 1]);
        let late = elapsed.saturating_sub(first.at).as_micros() as u64;
        self.max_lateness_us.fetch_max(late, Ordering::Relaxed);
        self.media_sent_us
            .store(last.at.as_micros() as u64, Ordering::Relaxed);
        self.bytes_sent
            .fetch_add((last.end - first.start) as u64, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut keyframe_sent = self.keyframe_sent.lock().unwrap();
        while *next_keyframe < media.keyframes.len()
            && media.keyframes[*next_keyframe].last_chunk < sent.end
        {
            keyframe_sent[*next_keyframe] = Some(now);
            *next_keyframe += 1;
        }
    }

    pub fn keyframe_sent_at(&self, index: usize) -> Option<SystemTime> {
        self.keyframe_sent
            .lock()
            .unwrap()
            .get(index)
            .copied()
            .flatten()
    }
}

/// A running publisher.
pub struct Publisher {
    pub target: Target,
    pub stats: Arc<PublisherStats>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connects, then pushes `media` from `start` on, paced in real time.
    pub fn start(media: Arc<Media>, target: Target, start: Instant) -> Publisher {
        let stats = Arc::new(PublisherStats {
            keyframe_sent: Mutex::new(vec![None; media.keyframes.len()]),
            ..Default::default()
        });
        let stop = CancellationToken::new();
        let task = match &target {
            Target::Srt { addr, stream_id } => {
                let finished = srt_load::start(SrtPublish {
                    media,
                    addr: *addr,
                    stream_id: stream_id.clone(),
                    stats: stats.clone(),
                    start: start.into_std(),
                    stop: stop.clone(),
                });
                let stats = stats.clone();
                tokio::spawn(async move {
                    let result = finished
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the load's SRT thread ended")));
                    if let Err(e) = result {
                        *stats.error.lock().unwrap() = Some(format!("{e:#}"));
                    }
                })
            }
            Target::Push {
                grpc,
                stream_id,
                stream_key,
            } => tokio::spawn({
                let (grpc, stream_id, stream_key) = (*grpc, stream_id.clone(), stream_key.clone());
                let (stats, stop) = (stats.clone(), stop.clone());
                async move {
                    let call = (grpc, stream_id.as_str(), stream_key.as_str());
                    if let Err(e) = push(&media, call, &stats, start, &stop).await {
                        *stats.error.lock().unwrap() = Some(format!("{e:#}"));
                    }
                }
            }),
        };
        Publisher {
            target,
            stats,
            stop,
            task,
        }
    }

    /// Stops sending and closes the connection.
    pub async fn stop(self) -> Arc<PublisherStats> {
        self.stop.cancel();
        let _ = self.task.await;
        self.stats
    }
}

/// A `PushMedia` call under way.
struct PushSender {
    tx: mpsc::Sender<pb::PushMediaRequest>,
    call: tokio::task::JoinHandle<Result<tonic::Response<pb::PushMediaResponse>, tonic::Status>>,
}

impl PushSender {
    async fn connect(grpc: SocketAddr, stream_id: &str, stream_key: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))?
            .connect()
            .await?;
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::PushMediaRequest {
            stream_id: stream_id.to_string(),
            stream_key: stream_key.to_string(),
            data: Default::default(),
        })
        .await?;
        let mut client = LiveProcessingClient::new(channel);
        let call = tokio::spawn(async move { client.push_media(ReceiverStream::new(rx)).await });
        Ok(PushSender { tx, call })
    }

    async fn send(&mut self, media: &Media, from: usize, to: usize) -> anyhow::Result<()> {
        self.tx
            .send(pb::PushMediaRequest {
                data: media.span(from, to),
                ..Default::default()
            })
            .await
            .map_err(|_| anyhow::anyhow!("the server ended the push"))
    }

    async fn close(self) -> anyhow::Result<()> {
        drop(self.tx);
        self.call.await??;
        Ok(())
    }
}

/// Pushes `media` over gRPC, paced by its PCR.
async fn push(
    media: &Media,
    (grpc, stream_id, stream_key): (SocketAddr, &str, &str),
    stats: &PublisherStats,
    start: Instant,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    tokio::select! {
        _ = tokio::time::sleep_until(start) => {}
        _ = stop.cancelled() => return Ok(()),
    }
    let mut sender = PushSender::connect(grpc, stream_id, stream_key).await?;
    // Time runs from the first send, whenever the connection was made.
    let origin = Instant::now();
    let mut ticker = tokio::time::interval_at(origin, TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next = 0;
    let mut next_keyframe = 0;
    while next < media.chunks.len() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        let elapsed = origin.elapsed();
        let from = next;
        while next < media.chunks.len() && media.chunks[next].at <= elapsed {
            next += 1;
        }
        if from == next {
            continue;
        }
        sender.send(media, from, next).await?;
        stats.note_sent(media, from..next, elapsed, &mut next_keyframe);
    }
    sender.close().await
}
