//! The live processing features that hang off a stream's parsed media:
//! thumbnails ([`thumbnail`]), motion clips ([`motion_clip`]) and
//! recording ([`crate::recording`]).
//!
//! Each feature is a task per live session that follows the stream's
//! processing options (so `UpdateProcessing` applies in place) and
//! subscribes to the session's access units only while it is enabled.
//! Decoding and encoding run as short jobs ([`still`], [`clip`], MP4 files
//! written directly by [`crate::container::mp4`]) on blocking threads, at most one per CPU
//! per [`JobLane`] across all streams, so a burst of work queues instead
//! of starving ingest. Outputs go to the stream's
//! [`feed::Feed`]s, which subscribers share.

mod cadence;
pub mod clip;
pub(crate) mod driver;
pub mod feed;
pub(crate) mod gst_job;
pub mod motion_clip;
pub mod still;
mod store;
pub mod thumbnail;
pub mod video_required;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::pipeline::StreamPipeline;
use crate::recording::{Recorder, RecordingStore};
use crate::registry::Registry;
use crate::replay::ReplayFeature;
use crate::streams::LiveStream;
use motion_clip::MotionClips;
use store::ThumbnailStore;
use thumbnail::Thumbnails;

/// Which slots a job takes. Live thumbnails (one decoded keyframe, tens
/// of ms) have slots of their own so they never wait behind clip remuxes,
/// segment muxes or GOP decodes (`Bulk`); the OS shares the cores between
/// the two lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobLane {
    Still,
    Bulk,
}

/// Shared by every stream: the job slots, the thumbnail store and the
/// recordings.
pub struct ProcessingEngine {
    still_jobs: Semaphore,
    bulk_jobs: Semaphore,
    store: ThumbnailStore,
    pub recordings: Arc<RecordingStore>,
    /// Feature tasks and their last jobs, awaited at shutdown.
    tasks: TaskTracker,
    /// `<data_dir>/replay`: spilled replay GOPs.
    replay_spill_root: std::path::PathBuf,
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

impl ProcessingEngine {
    /// `min_free_disk` is the free space below which no new recording file
    /// is started.
    pub fn new(data_dir: &Path, registry: Arc<Registry>, min_free_disk: u64) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            still_jobs: Semaphore::new(cpus),
            bulk_jobs: Semaphore::new(cpus),
            store: ThumbnailStore::new(data_dir),
            recordings: Arc::new(RecordingStore::new(data_dir, registry, min_free_disk)),
            tasks: TaskTracker::new(),
            replay_spill_root: data_dir.join("replay"),
        }
    }

    /// Removes spilled replay GOPs left by an earlier run (the buffers they
    /// belonged to are gone).
    pub fn clear_replay_spill(&self) {
        let _ = std::fs::remove_dir_all(&self.replay_spill_root);
    }

    /// Waits (up to `grace`) for the features of ended sessions to finish
    /// their last work: files closed and catalogued.
    pub async fn drain(&self, grace: std::time::Duration) {
        self.tasks.close();
        self.recordings.closing.close();
        let all = async {
            self.tasks.wait().await;
            self.recordings.closing.wait().await;
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some processing work did not finish within {grace:?}");
        }
    }

    /// Starts the features of a new session of `stream`.
    pub fn start(
        self: &Arc<Self>,
        stream: &Arc<LiveStream>,
        pipeline: &StreamPipeline,
    ) -> FeatureTasks {
        let ended = CancellationToken::new();
        let (engine, live) = (Arc::clone(self), Arc::clone(stream));
        self.tasks.spawn(driver::drive(
            Arc::clone(stream),
            pipeline.units(),
            ended.clone(),
            move |settings| Thumbnails::new(Arc::clone(&engine), Arc::clone(&live), settings),
        ));
        let (engine, live) = (Arc::clone(self), Arc::clone(stream));
        self.tasks.spawn(driver::drive(
            Arc::clone(stream),
            pipeline.units(),
            ended.clone(),
            move |settings| MotionClips::new(Arc::clone(&engine), Arc::clone(&live), settings),
        ));
        let (live, spill_root, spills) = (
            Arc::clone(stream),
            self.replay_spill_root.clone(),
            self.tasks.clone(),
        );
        self.tasks.spawn(driver::drive(
            Arc::clone(stream),
            pipeline.units(),
            ended.clone(),
            move |settings| {
                ReplayFeature::new(Arc::clone(&live), settings, &spill_root, spills.clone())
            },
        ));
        let (store, live) = (Arc::clone(&self.recordings), Arc::clone(stream));
        self.tasks.spawn(driver::drive(
            Arc::clone(stream),
            pipeline.units(),
            ended.clone(),
            move |settings| Recorder::new(Arc::clone(&store), Arc::clone(&live), settings),
        ));
        FeatureTasks { ended }
    }

    /// Loads what a stream had produced before a restart.
    pub fn restore(&self, stream: &LiveStream) {
        if let Some(latest) = self.store.load(&stream.stream_ref) {
            stream.thumbnails.restore(latest.sequence, latest);
        }
    }

    /// Forgets what a deleted stream had produced (its thumbnail and
    /// spilled replay; recordings and clips stay until deleted).
    pub fn forget(&self, stream: &LiveStream) {
        self.store.remove(&stream.stream_ref);
        let _ = std::fs::remove_dir_all(self.replay_spill_root.join(stream.replay.label()));
    }

    /// Runs a blocking job when a slot of its lane is free.
    pub async fn run_job<T: Send + 'static>(
        &self,
        lane: JobLane,
        job: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let slots = match lane {
            JobLane::Still => &self.still_jobs,
            JobLane::Bulk => &self.bulk_jobs,
        };
        let _slot = slots.acquire().await.map_err(|_| Error::ShuttingDown)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::Pipeline(format!("job panicked: {e}")))?
            .map_err(Error::Pipeline)
    }
}
