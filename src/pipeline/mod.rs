//! The pipeline of one live session of a stream: demux + parse once,
//! access units out to a broadcast every feature takes them from.
//!
//! - Pushed MPEG-TS (SRT, gRPC push): [`pushed`], in Rust, in the
//!   session's task ([`ts_demux`] then [`framer`]); RTMP's FLV tags come
//!   to the same [`pushed`] pipeline already demultiplexed
//!   ([`elementary`]).
//! - Pulled sources (srt/rtsp/rtmp/hls/file URIs) and the test pattern:
//!   [`StreamPipeline`], one GStreamer pipeline:
//!
//! ```text
//! source stage (urisourcebin ! parsebin | test pattern)
//!   └─ per track: parser ! capsfilter ! tap (appsink → AccessUnit broadcast)
//! ```
//!
//! A pipeline lives as long as one publisher session. It knows nothing
//! of the stream it serves beyond a name for its logs: it reports what
//! happens ([`PipelineEvent`]: first media, an ignored track, failure) to
//! the [`EventSink`] its owner gives it. Its bus is watched by a task of
//! its own: an error ends this pipeline only — every stream has its own
//! pipeline, so one stream's failure never reaches another.

mod clock;
pub(crate) mod elementary;
mod framer;
pub(crate) mod pushed;
pub(crate) mod source;
mod stats;
mod timeline;
mod tracks;
mod ts_demux;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};
use std::time::Duration;

use futures::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::{broadcast, watch};

use crate::error::Result;
use crate::gst_util;
use crate::ids::StreamRef;
use crate::media::{AccessUnit, MediaError};
use crate::redact;
pub use source::Source;
pub use stats::SessionStats;
use timeline::TimelineGuard;
use tracks::TrackContext;

/// Access units kept for in-process consumers that are a little behind
/// (about 3 s of 30 fps video with its audio). Kept small: the ring holds
/// references to media buffers.
pub(crate) const UNIT_BUFFER: usize = 256;

/// A session that has produced no supported track by then has failed.
pub const NO_MEDIA_TIMEOUT: Duration = Duration::from_secs(15);

/// Initializes GStreamer once per process.
pub fn init() -> Result<()> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| {
        result =
            gst::init().map_err(|e| MediaError::Pipeline(format!("GStreamer init: {e}")).into());
        if result.is_ok() {
            // Off the start-up path, so the first stream's first thumbnail
            // or clip does not pay for loading the plugins (~0.4 s).
            std::thread::spawn(gst_util::preload_plugins);
        }
    });
    result
}

/// What a pipeline reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineEvent {
    /// The first supported media came through.
    Live,
    /// A track of an unsupported codec is ignored; the message says which.
    TrackIgnored(String),
    /// The publisher's clock jumped; the message says by how much and
    /// what follows.
    Discontinuity(String),
    /// The pipeline failed (an element's error, or no supported media);
    /// the message says why. Its [`Outcome`] follows.
    Failed(String),
}

/// Where a pipeline's events go: called on the thread that saw the event,
/// in order, before the pipeline's [`Outcome`] is set.
pub type EventSink = Arc<dyn Fn(PipelineEvent) + Send + Sync>;

/// How a pipeline ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// All media was processed after the source ended.
    EndOfStream,
    /// An element failed; the message says which and why.
    Failed(String),
}

/// A running pipeline of one stream session. Stops (state NULL) on drop.
pub struct StreamPipeline {
    pipeline: gst::Pipeline,
    outcome: watch::Receiver<Option<Outcome>>,
    units: broadcast::Sender<AccessUnit>,
    tracks: Arc<TrackContext>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StreamPipeline {
    /// Builds and starts the pipeline of `stream` fed by `source`,
    /// counting into `stats` and reporting to `events`.
    pub fn start(
        stream: &StreamRef,
        source: &Source,
        stats: Arc<SessionStats>,
        events: EventSink,
    ) -> Result<Self> {
        init()?;
        let pipeline = gst::Pipeline::with_name(&format!("stream:{stream}"));
        let stage = source::build(&pipeline, source)?;
        let (units, _) = broadcast::channel(UNIT_BUFFER);
        let ctx = Arc::new(TrackContext {
            stream: stream.clone(),
            stats,
            units: units.clone(),
            events,
            paced: source.needs_pacing(),
            attached: Default::default(),
            went_live: AtomicBool::new(false),
            timeline: TimelineGuard::new(stream.to_string()),
        });

        for element in &stage.dynamic {
            let added = Arc::clone(&ctx);
            let pipeline_weak = pipeline.downgrade();
            element.connect_pad_added(move |_, pad| {
                let Some(pipeline) = pipeline_weak.upgrade() else {
                    return;
                };
                if let Err(e) = tracks::attach_pad(&pipeline, pad, &added) {
                    tracing::error!(stream = %added.stream, error = %e, "cannot attach track");
                }
            });
            let complete = Arc::clone(&ctx);
            element.connect_no_more_pads(move |_| {
                complete
                    .attached
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .programme_complete();
            });
        }
        for pad in &stage.static_pads {
            tracks::attach_pad(&pipeline, pad, &ctx)?;
        }

        let (outcome_tx, outcome) = watch::channel(None);
        let outcome_tx = Arc::new(outcome_tx);
        let bus = pipeline
            .bus()
            .ok_or_else(|| MediaError::pipeline("pipeline without bus"))?;
        // Started before the bus is watched: an element that refuses to
        // start posts its error on the bus, where `start` finds it to say
        // why (a watcher would take it first). Messages of a pipeline that
        // did start wait on the bus for the watcher's stream.
        gst_util::start(&pipeline)?;
        let tasks = vec![
            tokio::spawn(watch_bus(bus, Arc::clone(&ctx), Arc::clone(&outcome_tx))),
            tokio::spawn(no_media_watchdog(Arc::clone(&ctx), outcome_tx)),
        ];
        Ok(Self {
            pipeline,
            outcome,
            units,
            tracks: ctx,
            tasks,
        })
    }

    /// A handle to subscribe to access units later (features that start
    /// and stop during the session).
    pub fn units(&self) -> broadcast::Sender<AccessUnit> {
        self.units.clone()
    }

    /// How the pipeline ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.borrow().clone()
    }

    /// Waits until the pipeline ends by itself (end of stream or error).
    pub async fn ended(&self) -> Outcome {
        let mut rx = self.outcome.clone();
        let ended = match rx.wait_for(|o| o.is_some()).await {
            Ok(o) => o.clone().unwrap_or(Outcome::EndOfStream),
            Err(_) => Outcome::Failed("pipeline bus closed".into()),
        };
        ended
    }

    /// Ends the session cleanly: signals end of stream so every branch can
    /// finish its output, waits up to `timeout` for it, then stops.
    pub async fn finish(self, timeout: Duration) -> Outcome {
        if self.outcome().is_none() {
            self.pipeline.send_event(gst::event::Eos::new());
        }
        let drained = tokio::time::timeout(timeout, self.ended()).await;
        // Whether any supported media came, once all of it has gone through.
        let went_live = self
            .tracks
            .went_live
            .load(std::sync::atomic::Ordering::SeqCst);
        match drained {
            Ok(Outcome::EndOfStream) if !went_live => Outcome::Failed(NO_MEDIA.to_string()),
            Ok(outcome) => outcome,
            Err(_) if !went_live => Outcome::Failed(NO_MEDIA.to_string()),
            Err(_) => Outcome::Failed(format!(
                "pipeline did not drain within {} s",
                timeout.as_secs()
            )),
        }
    }
}

impl Drop for StreamPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Why a session whose input ended without any supported media failed.
pub(crate) const NO_MEDIA: &str =
    "no supported media (H.264 or H.265 video, AAC audio) in what was received";

/// Fails a session whose input has shown no supported track (H.264, H.265,
/// AAC) within [`NO_MEDIA_TIMEOUT`]: MPEG-TS with other codecs, or a source
/// that never delivers.
async fn no_media_watchdog(ctx: Arc<TrackContext>, outcome: Arc<watch::Sender<Option<Outcome>>>) {
    tokio::time::sleep(NO_MEDIA_TIMEOUT).await;
    if ctx.went_live.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let message = format!(
        "no supported media (H.264 or H.265 video, AAC audio) within {} s",
        NO_MEDIA_TIMEOUT.as_secs()
    );
    let failed = outcome.send_if_modified(|o| {
        if o.is_some() {
            return false;
        }
        *o = Some(Outcome::Failed(message.clone()));
        true
    });
    if failed {
        tracing::warn!(stream = %ctx.stream, "{message}");
        (ctx.events)(PipelineEvent::Failed(message));
    }
}

/// Turns bus messages into the pipeline's outcome and the stream's state.
async fn watch_bus(
    bus: gst::Bus,
    ctx: Arc<TrackContext>,
    outcome: Arc<watch::Sender<Option<Outcome>>>,
) {
    let stream = &ctx.stream;
    let mut messages = bus.stream();
    while let Some(msg) = messages.next().await {
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => {
                outcome.send_replace(Some(Outcome::EndOfStream));
                break;
            }
            // GStreamer's messages quote the URI they failed on, secrets
            // and all: only their redacted text is logged or shown.
            MessageView::Error(err) => {
                let element = err
                    .src()
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| "pipeline".into());
                let error = redact::text(&err.error().to_string());
                let message = format!("{element}: {error}");
                tracing::error!(
                    stream = %stream,
                    element = %element,
                    error = %error,
                    debug = ?err.debug().map(|d| redact::text(&d)),
                    "pipeline error"
                );
                (ctx.events)(PipelineEvent::Failed(message.clone()));
                outcome.send_replace(Some(Outcome::Failed(message)));
                break;
            }
            MessageView::Warning(w) => {
                tracing::warn!(
                    stream = %stream,
                    element = ?w.src().map(|s| s.name()),
                    warning = %redact::text(&w.error().to_string()),
                    debug = ?w.debug().map(|d| redact::text(&d)),
                    "pipeline warning"
                );
            }
            _ => {}
        }
    }
}
