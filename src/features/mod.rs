//! The live processing features that hang off a stream's access units:
//! thumbnails ([`thumbnail`]), motion clips ([`motion_clip`]), recording
//! ([`recording`]) and replay ([`replay`]). Recording and replay cut the
//! media at video keyframes, with one rule for the audio around a cut
//! ([`handover`]).
//!
//! The features of a live session run in one task ([`driver`]) that
//! follows the stream's processing options (so `UpdateProcessing` applies
//! in place) and subscribes to the session's access units only while a
//! feature is on.
//! Decoding and encoding run as short jobs ([`still`], [`clip`], MP4 files
//! written directly by [`crate::container::mp4`]) on job threads of a
//! lower priority than ingest ([`job_threads`]), at most one per CPU per
//! [`JobLane`] across all streams, so a burst of work queues instead of
//! starving ingest. What the features produce for a
//! stream ([`StreamOutputs`]: feeds of thumbnails and motion clips, the
//! replay buffer) is kept here, by stream, and shared by every subscriber.

mod cadence;
pub(crate) mod clip;
pub(crate) mod driver;
pub(crate) mod feed;
pub(crate) mod geometry;
pub(crate) mod handover;
mod jfif;
mod job_threads;
pub(crate) mod motion_clip;
mod periodic;
pub(crate) mod recording;
pub(crate) mod replay;
pub(crate) mod still;
pub(crate) mod still_makers;
pub(crate) mod storyboard;
#[cfg(test)]
pub(crate) mod test_media;
pub(crate) mod thumbnail;
mod thumbnail_store;
pub mod usage;
pub(crate) mod video_required;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::ids::StreamRef;
use crate::media::{AccessUnit, MediaError, MediaResult};
use crate::proto::v1 as pb;
use crate::registry::Registry;
use crate::store::DataDir;
use crate::streams::LiveStream;
use crate::webhooks::sink::EventSink;
use driver::FeatureSlot;
use feed::Feed;
use job_threads::{JobFailure, JobThreads};
use motion_clip::MotionClips;
use recording::{Recorder, RecordingStore};
use replay::buffer::ReplayBuffer;
use replay::spill_store::SpillStore;
use replay::ReplayFeature;
use thumbnail::Thumbnails;
use thumbnail_store::ThumbnailStore;

/// Which slots a job takes. Live thumbnails (one decoded keyframe, tens
/// of ms) have slots of their own so they never wait behind clip remuxes,
/// segment muxes or GOP decodes (`Bulk`); the OS shares the cores between
/// the two lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobLane {
    Still,
    Bulk,
}

/// Memory limits of each stream's replay buffer.
#[derive(Debug, Clone, Copy)]
pub struct ReplayBudget {
    /// Most media bytes in memory.
    pub bytes: usize,
    /// With `entire_stream`: how much of the newest media stays in memory
    /// (older GOPs go to disk).
    pub memory_horizon: Duration,
}

/// What the features of one stream produce, shared by its subscribers.
pub struct StreamOutputs {
    pub thumbnails: Feed<pb::Thumbnail>,
    pub motion_clips: Feed<pb::MotionClip>,
    /// The rewind buffer (empty unless replay is on).
    pub replay: ReplayBuffer,
    /// Thumbnails re-encoded in another format on request (HTTP).
    pub conversions: Conversions,
    /// Tiles of the replay window for hover previews, made on request.
    pub storyboard: storyboard::Storyboard,
    /// Sheets of the storyboards of its finished sessions.
    pub session_sheets: storyboard::SessionSheets,
    /// Low-latency HLS parts of the newest GOPs of the replay window.
    pub parts: replay::parts::LiveParts,
}

/// The few most recent image conversions of a stream, by a key naming the
/// image and the format, so that many viewers asking for another format
/// of the same thumbnail cost one conversion.
#[derive(Default)]
pub struct Conversions(std::sync::Mutex<std::collections::VecDeque<(String, bytes::Bytes)>>);

impl Conversions {
    /// Images kept: the latest thumbnail in both other formats, and a
    /// little more.
    const KEPT: usize = 4;

    pub fn get(&self, key: &str) -> Option<bytes::Bytes> {
        let kept = self.0.lock().expect("conversions lock");
        kept.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: String, image: bytes::Bytes) {
        let mut kept = self.0.lock().expect("conversions lock");
        if kept.iter().any(|(k, _)| *k == key) {
            return;
        }
        if kept.len() == Self::KEPT {
            kept.pop_front();
        }
        kept.push_back((key, image));
    }
}

/// Shared by every stream: the job slots, the stores and each stream's
/// outputs.
pub struct FeatureEngine {
    still_jobs: Semaphore,
    bulk_jobs: Semaphore,
    /// Where jobs of both lanes run (one thread per slot).
    job_threads: JobThreads,
    thumbnail_store: ThumbnailStore,
    recordings: Arc<RecordingStore>,
    data: DataDir,
    replay_budget: ReplayBudget,
    /// Where replay buffers spill their older media.
    replay_spill: SpillStore,
    /// How each stream's storyboard is cut ([`Self::with_storyboard`]).
    storyboard: storyboard::Layout,
    outputs: DashMap<StreamRef, Arc<StreamOutputs>>,
    /// Where thumbnails and motion clips are reported (webhooks).
    events: Arc<EventSink>,
    /// Feature tasks, awaited at shutdown with the recorder's closing
    /// work (`recordings.closing`). Thumbnail and motion-clip jobs are not
    /// tracked: an image still being made when the server stops is of no
    /// use to anyone, and is dropped.
    tasks: TaskTracker,
}

/// The feature tasks of one session. Dropping it (when the session has
/// ended) tells them to finish what the session's last units allow.
pub struct FeatureTasks {
    ended: CancellationToken,
}

impl Drop for FeatureTasks {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

impl FeatureEngine {
    /// `min_free_disk` is the free space below which no new recording file
    /// is started; `recordings_ready_on_close` says that a closed
    /// recording can be downloaded (no object storage to wait for).
    pub fn new(
        data: DataDir,
        registry: Arc<Registry>,
        min_free_disk: u64,
        replay_budget: ReplayBudget,
        replay_spill: SpillStore,
        events: Arc<EventSink>,
        recordings_ready_on_close: bool,
    ) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            still_jobs: Semaphore::new(cpus),
            bulk_jobs: Semaphore::new(cpus),
            job_threads: JobThreads::start(2 * cpus, still_makers::drop_unused)
                .expect("starting the job threads"),
            thumbnail_store: ThumbnailStore::new(data.clone()),
            recordings: Arc::new(RecordingStore::new(
                data.clone(),
                registry,
                min_free_disk,
                recordings_ready_on_close,
            )),
            data,
            replay_budget,
            replay_spill,
            storyboard: storyboard::Layout::DEFAULT,
            outputs: DashMap::new(),
            events,
            tasks: TaskTracker::new(),
        }
    }

    /// How storyboards are cut.
    pub fn storyboard_layout(&self) -> storyboard::Layout {
        self.storyboard
    }

    /// Cuts storyboards as `layout` says (default [`storyboard::Layout::DEFAULT`]).
    pub fn with_storyboard(mut self, layout: storyboard::Layout) -> Self {
        self.storyboard = layout;
        self
    }

    /// Where events the features make are reported.
    pub fn events(&self) -> &Arc<EventSink> {
        &self.events
    }

    /// What each organization stores and holds in replay memory here.
    pub fn usage(&self) -> &Arc<usage::UsageLedger> {
        &self.recordings.usage
    }

    pub fn recordings(&self) -> &Arc<RecordingStore> {
        &self.recordings
    }

    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// Removes spilled replay GOPs left by an earlier run (the buffers they
    /// belonged to are gone).
    pub fn clear_replay_spill(&self) {
        self.replay_spill.clear_all();
    }

    /// Waits (up to `grace`) for the features of ended sessions to finish
    /// their last work: files closed and catalogued.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        self.recordings.closing.close();
        let all = async {
            self.tasks.wait().await;
            self.recordings.closing.wait().await;
            self.recordings.catalogue.flush(grace).await;
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some processing work did not finish within {grace:?}");
        }
    }

    /// Gives a registered stream its outputs, with what it had produced
    /// before a restart; a stream that has them keeps them.
    pub fn attach(&self, stream: &StreamRef) -> Arc<StreamOutputs> {
        if let Some(outputs) = self.outputs.get(stream) {
            return Arc::clone(&outputs);
        }
        let outputs = Arc::new(StreamOutputs {
            thumbnails: Feed::default(),
            motion_clips: Feed::default(),
            conversions: Conversions::default(),
            storyboard: storyboard::Storyboard::new(self.storyboard),
            session_sheets: Default::default(),
            parts: Default::default(),
            replay: ReplayBuffer::new(
                self.replay_budget.bytes,
                self.replay_budget.memory_horizon,
                stream.to_string(),
            )
            .counted_in(self.recordings.usage.of(&stream.organization_id)),
        });
        if let Some(latest) = self.thumbnail_store.load(stream) {
            outputs.thumbnails.restore(latest.sequence, latest);
        }
        Arc::clone(
            &self
                .outputs
                .entry(stream.clone())
                .or_insert_with(|| outputs),
        )
    }

    /// The outputs of a registered stream.
    pub fn outputs(&self, stream: &StreamRef) -> Result<Arc<StreamOutputs>> {
        self.outputs
            .get(stream)
            .map(|o| Arc::clone(&o))
            .ok_or_else(|| Error::stream_not_found(&stream.stream_id))
    }

    /// Forgets what a deleted stream had produced (its thumbnail and
    /// spilled replay; recordings and clips stay until deleted).
    pub fn forget(&self, stream: &StreamRef) {
        self.outputs.remove(stream);
        self.thumbnail_store.remove(stream);
        self.replay_spill.forget(stream);
    }

    /// Starts the features of a new session of `stream`, fed from `units`.
    pub fn start(
        self: &Arc<Self>,
        stream: &Arc<LiveStream>,
        units: &broadcast::Sender<AccessUnit>,
    ) -> Result<FeatureTasks> {
        let outputs = self.outputs(&stream.stream_ref)?;
        let tasks = FeatureTasks {
            ended: CancellationToken::new(),
        };
        let (engine, live, out) = (Arc::clone(self), Arc::clone(stream), Arc::clone(&outputs));
        let thumbnails = FeatureSlot::boxed(move |settings| {
            Thumbnails::new(
                Arc::clone(&engine),
                Arc::clone(&live),
                Arc::clone(&out),
                settings,
            )
        });
        let (engine, live, out) = (Arc::clone(self), Arc::clone(stream), Arc::clone(&outputs));
        let motion_clips = FeatureSlot::boxed(move |settings| {
            MotionClips::new(
                Arc::clone(&engine),
                Arc::clone(&live),
                Arc::clone(&out),
                settings,
            )
        });
        let (engine, live, out) = (Arc::clone(self), Arc::clone(stream), Arc::clone(&outputs));
        let replay = FeatureSlot::boxed(move |settings| {
            ReplayFeature::new(
                Arc::clone(&live),
                Arc::clone(&out),
                settings,
                engine.replay_spill.session(&live.stream_ref),
                engine.tasks.clone(),
            )
        });
        let (store, live) = (Arc::clone(&self.recordings), Arc::clone(stream));
        let recording = FeatureSlot::boxed(move |settings| {
            Recorder::new(Arc::clone(&store), Arc::clone(&live), settings)
        });
        let mut slots = vec![thumbnails, motion_clips, replay, recording];
        let first = driver::first_subscription(stream, units, &mut slots);
        self.tasks.spawn(driver::drive(
            Arc::clone(stream),
            units.clone(),
            first,
            tasks.ended.clone(),
            slots,
        ));
        Ok(tasks)
    }

    /// Runs a blocking job when a slot of its lane is free.
    pub async fn run_job<T: Send + 'static>(
        &self,
        lane: JobLane,
        job: impl FnOnce() -> MediaResult<T> + Send + 'static,
    ) -> Result<T> {
        let (slots, name) = match lane {
            JobLane::Still => (&self.still_jobs, "still"),
            JobLane::Bulk => (&self.bulk_jobs, "bulk"),
        };
        let metrics = crate::metrics::get();
        let label = crate::metrics::LaneLabel { lane: name };
        let asked = std::time::Instant::now();
        let waiting = metrics.job_queue.get_or_create(&label).clone();
        waiting.inc();
        let slot = slots.acquire().await;
        waiting.dec();
        let _slot = slot.map_err(|_| Error::ShuttingDown)?;
        let ran = self.job_threads.run(job).await;
        metrics
            .job_seconds
            .get_or_create(&label)
            .observe(asked.elapsed().as_secs_f64());
        match ran {
            Ok(result) => Ok(result?),
            Err(JobFailure::Stopped) => Err(Error::ShuttingDown),
            Err(JobFailure::Panicked(e)) => {
                Err(MediaError::Pipeline(format!("job panicked: {e}")).into())
            }
        }
    }
}
