//! Recordings to object storage as they are written, so that losing the
//! machine loses only the last seconds of a live recording.
//!
//! The recorder writes each recording to a local file, one whole
//! fragment (1 s) per write; that file is the spool. Every
//! [`UPLOAD_EVERY`], the uploader takes the recordings the registry lists
//! as not yet uploaded and, for each whose file is on this node, uploads
//! what is new: the init segment (`ftyp` + `moov`) once, then each whole
//! fragment as an object of its own, recording each part in the registry
//! after its object is written. Once a recording is closed and all of it
//! is up, the init segment is uploaded again (its duration is written at
//! close), the recording is marked `uploaded`, and the local file goes.
//!
//! While the store cannot be reached, files stay in the spool and are
//! uploaded when it returns (the free-space floor keeps the spool from
//! filling the disk: new recordings stop with a FEATURE_ERROR); the health
//! service says NOT_SERVING for object storage meanwhile. After a crash,
//! the next start goes on from the last part the registry lists.
//!
//! A recording whose node was lost (no local file anywhere) is finished
//! from what was uploaded: [`recover_from_objects`].

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use crate::container::fmp4;
use crate::error::{Error, Result};
use crate::features::recording::RecordingStore;
use crate::objects::ObjectStorage;
use crate::registry::{RecordingPart, RecordingRecord, RecordingState, Registry};

/// How often new fragments are looked for.
pub const UPLOAD_EVERY: Duration = Duration::from_secs(1);
/// How often the uploads' throughput and lag are logged.
const REPORT_EVERY: Duration = Duration::from_secs(30);
/// Recordings uploaded at once.
const CONCURRENT_RECORDINGS: usize = 8;

/// Where a recording's upload stands (the next part to write).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    next_seq: u32,
    next_offset: u64,
}

/// What one pass did for a recording.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Parts may still come.
    Pending,
    /// All of it is in object storage.
    Done,
    /// Its file is not on this node.
    NotHere,
}

/// Uploads recordings from the local spool.
pub struct Uploader {
    registry: Arc<Registry>,
    objects: ObjectStorage,
    recordings: Arc<RecordingStore>,
    progress: Mutex<HashMap<String, Progress>>,
    healthy: watch::Sender<bool>,
    /// Keep the local file once uploaded (`liveproc migrate` copies).
    keep_local: bool,
    stats: std::sync::Mutex<Stats>,
}

/// Uploads since the last report.
#[derive(Debug)]
struct Stats {
    since: std::time::Instant,
    parts: u64,
    bytes: u64,
    /// Longest time from a recording's last write to the end of its
    /// upload (when all of its file was up).
    max_lag: Duration,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            since: std::time::Instant::now(),
            parts: 0,
            bytes: 0,
            max_lag: Duration::ZERO,
        }
    }
}

impl Uploader {
    pub fn new(
        registry: Arc<Registry>,
        objects: ObjectStorage,
        recordings: Arc<RecordingStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            registry,
            objects,
            recordings,
            progress: Mutex::default(),
            healthy: watch::channel(true).0,
            keep_local: false,
            stats: Default::default(),
        })
    }

    /// An uploader that leaves the local files in place.
    pub fn copying(
        registry: Arc<Registry>,
        objects: ObjectStorage,
        recordings: Arc<RecordingStore>,
    ) -> Self {
        Self {
            registry,
            objects,
            recordings,
            progress: Mutex::default(),
            healthy: watch::channel(true).0,
            keep_local: true,
            stats: Default::default(),
        }
    }

    /// Uploads all of a closed recording now; says whether it is wholly
    /// in the store.
    pub async fn upload_closed(&self, record: RecordingRecord) -> Result<bool> {
        Ok(self.advance(record).await? == Step::Done)
    }

    /// Whether the last pass could write to the registry and the store.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    /// Uploads until `stop`, then makes one last pass.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(UPLOAD_EVERY) => false,
                _ = stop.cancelled() => true,
            };
            self.pass().await;
            self.report_stats();
            if stopping {
                return;
            }
        }
    }

    /// One pass over every recording still to upload; returns how many
    /// are not done yet.
    pub async fn pass(&self) -> usize {
        let pending = match self.registry.recordings_to_upload().await {
            Ok(pending) => pending,
            Err(e) => {
                self.report(Err(e));
                return 0;
            }
        };
        let results: Vec<(String, Result<Step>)> = futures::stream::iter(pending)
            .map(|record| async move {
                let id = record.id.clone();
                (id, self.advance(record).await)
            })
            .buffer_unordered(CONCURRENT_RECORDINGS)
            .collect()
            .await;
        let mut left = 0;
        let mut failure = None;
        let mut progress = self.progress.lock().await;
        for (id, result) in results {
            match result {
                Ok(Step::Done) => {
                    progress.remove(&id);
                }
                Ok(Step::Pending) => left += 1,
                Ok(Step::NotHere) => {}
                Err(e) => {
                    left += 1;
                    failure.get_or_insert((id, e));
                }
            }
        }
        drop(progress);
        self.report(failure.map_or(Ok(()), |(id, e)| {
            Err(Error::StorageUnavailable(format!("recording {id}: {e}")))
        }));
        left
    }

    /// Logs throughput and lag every [`REPORT_EVERY`] with uploads.
    fn report_stats(&self) {
        let mut stats = self.stats.lock().expect("upload stats");
        let elapsed = stats.since.elapsed();
        if elapsed < REPORT_EVERY {
            return;
        }
        if stats.parts > 0 {
            tracing::info!(
                parts = stats.parts,
                mbit_per_s = format!(
                    "{:.1}",
                    stats.bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6
                ),
                max_lag_ms = stats.max_lag.as_millis() as u64,
                "uploads to object storage"
            );
        }
        *stats = Stats::default();
    }

    fn report(&self, result: Result<()>) {
        let ok = result.is_ok();
        if *self.healthy.borrow() != ok {
            match result {
                Ok(()) => tracing::info!("uploads to object storage work again"),
                Err(e) => {
                    tracing::error!(error = %e, "uploads to object storage fail; recordings wait in the local spool")
                }
            }
            self.healthy.send_replace(ok);
        }
    }

    /// Uploads what is new of `record`.
    async fn advance(&self, mut record: RecordingRecord) -> Result<Step> {
        let path = self.recordings.path(&record);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(Step::NotHere);
        }
        let mut progress = match self.progress.lock().await.get(&record.id).copied() {
            Some(progress) => progress,
            None => self.progress_from_registry(&record.id).await?,
        };
        let result = self.upload_new(&record, &path, &mut progress).await;
        self.progress
            .lock()
            .await
            .insert(record.id.clone(), progress);
        let (whole, uploaded) = result?;
        if whole && uploaded > 0 {
            // Everything written is up: how long after the last write.
            if let Ok(modified) = tokio::fs::metadata(&path).await.and_then(|m| m.modified()) {
                let lag = modified.elapsed().unwrap_or_default();
                let mut stats = self.stats.lock().expect("upload stats");
                stats.max_lag = stats.max_lag.max(lag);
            }
        }
        // A closed file does not grow: once no new whole fragment comes,
        // what follows the last one (after a failed close) was torn.
        if record.state == RecordingState::Recording || !(whole || uploaded == 0) {
            return Ok(Step::Pending);
        }
        // Closed, and every whole fragment is up: the final init segment
        // (with the duration), then the recording is complete in the
        // store.
        let init = read_range(&path, 0, self.init_length(&path).await?).await?;
        self.objects
            .put(&self.objects.recording_part(&record, 0), init)
            .await?;
        record.uploaded = true;
        record.size_bytes = progress.next_offset;
        self.registry.put_recording(&record).await?;
        if !self.keep_local {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(recording = %record.id, error = %e, "cannot remove the spooled file");
            }
        }
        tracing::info!(recording = %record.id, parts = progress.next_seq, bytes = progress.next_offset, "recording uploaded");
        Ok(Step::Done)
    }

    async fn progress_from_registry(&self, recording_id: &str) -> Result<Progress> {
        let parts = self.registry.recording_parts(recording_id).await?;
        Ok(parts.last().map_or(Progress::default(), |last| Progress {
            next_seq: last.seq + 1,
            next_offset: last.offset + last.size,
        }))
    }

    async fn init_length(&self, path: &Path) -> Result<u64> {
        let path = path.to_path_buf();
        Ok(
            tokio::task::spawn_blocking(move || fmp4::init_segment_length(&path))
                .await
                .map_err(|e| Error::Storage(format!("reading the spool: {e}")))??,
        )
    }

    /// Uploads the parts written since `progress`; says whether the file
    /// ends at the last whole fragment (nothing partly written after it),
    /// and how many parts were uploaded.
    async fn upload_new(
        &self,
        record: &RecordingRecord,
        path: &Path,
        progress: &mut Progress,
    ) -> Result<(bool, usize)> {
        let mut uploaded = 0;
        if progress.next_seq == 0 {
            let Ok(length) = self.init_length(path).await else {
                // The file is being created: its header comes next time.
                return Ok((false, 0));
            };
            let init = read_range(path, 0, length).await?;
            self.upload_part(record, progress, init).await?;
            uploaded += 1;
        }
        let from = progress.next_offset;
        let file = path.to_path_buf();
        let (fragments, length) = tokio::task::spawn_blocking(move || {
            let fragments = fmp4::complete_fragments(&file, from)?;
            let length = std::fs::metadata(&file)?.len();
            Ok::<_, crate::media::MediaError>((fragments, length))
        })
        .await
        .map_err(|e| Error::Storage(format!("reading the spool: {e}")))??;
        for (offset, size) in fragments {
            debug_assert_eq!(offset, progress.next_offset);
            let data = read_range(path, offset, size).await?;
            self.upload_part(record, progress, data).await?;
            uploaded += 1;
        }
        Ok((progress.next_offset >= length, uploaded))
    }

    /// Writes the next part's object, then its registry row.
    async fn upload_part(
        &self,
        record: &RecordingRecord,
        progress: &mut Progress,
        data: Bytes,
    ) -> Result<()> {
        let part = RecordingPart {
            recording_id: record.id.clone(),
            seq: progress.next_seq,
            offset: progress.next_offset,
            size: data.len() as u64,
        };
        self.objects
            .put(&self.objects.recording_part(record, part.seq), data)
            .await?;
        self.registry.put_recording_part(&part).await?;
        {
            let mut stats = self.stats.lock().expect("upload stats");
            stats.parts += 1;
            stats.bytes += part.size;
        }
        progress.next_seq += 1;
        progress.next_offset += part.size;
        Ok(())
    }
}

/// `size` bytes of `path` from `offset`.
async fn read_range(path: &Path, offset: u64, size: u64) -> Result<Bytes> {
    let path: PathBuf = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok::<_, std::io::Error>(Bytes::from(buf))
    })
    .await
    .map_err(|e| Error::Storage(format!("reading the spool: {e}")))?
    .map_err(|e| Error::Storage(format!("reading the spool: {e}")))
}

/// At start, before the local recovery: every recording not wholly
/// uploaded (being written, or closed just before) whose file is not on
/// this node is finished from what object storage has of it. Returns how
/// many were.
///
/// A node takes this for a lost node's work; with several nodes on one
/// registry, which node owns a recording is the cluster's to say (leases).
pub async fn recover_lost(
    registry: &Registry,
    objects: &ObjectStorage,
    recordings: &RecordingStore,
) -> Result<usize> {
    let mut recovered = 0;
    for record in registry.recordings_to_upload().await? {
        if tokio::fs::try_exists(recordings.path(&record))
            .await
            .unwrap_or(false)
        {
            continue;
        }
        let id = record.id.clone();
        match recover_from_objects(registry, objects, record).await {
            Ok(true) => recovered += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "cannot recover a recording from object storage")
            }
        }
    }
    Ok(recovered)
}

/// Finishes a recording that was being written on a node that is gone
/// (its file is nowhere): what was uploaded is the recording. Its
/// duration is read from the init segment and the last uploaded
/// fragment, the init segment is rewritten with it, and the recording is
/// catalogued RECOVERED. Returns false when nothing was uploaded.
pub async fn recover_from_objects(
    registry: &Registry,
    objects: &ObjectStorage,
    mut record: RecordingRecord,
) -> Result<bool> {
    let parts = registry.recording_parts(&record.id).await?;
    let (Some(init), Some(last)) = (parts.first(), parts.last()) else {
        return Ok(false);
    };
    if last.seq == 0 {
        return Ok(false);
    }
    let read = |seq: u32, size: u64| {
        let key = objects.recording_part(&record, seq);
        async move {
            let chunks: Vec<Bytes> = objects
                .read(&key, 0..size)
                .await?
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            Ok::<_, Error>(chunks.concat())
        }
    };
    let init_bytes = read(0, init.size).await?;
    let last_bytes = read(last.seq, last.size).await?;
    let duration = fmp4::duration_of(&init_bytes, &last_bytes)?;
    let patched = fmp4::init_with_duration(&init_bytes, duration)?;
    objects
        .put(&objects.recording_part(&record, 0), Bytes::from(patched))
        .await?;
    record.duration_ns = duration.as_nanos() as u64;
    record.end_time_ms = record.start_time_ms + duration.as_millis() as i64;
    record.size_bytes = last.offset + last.size;
    record.state = RecordingState::Recovered;
    record.uploaded = true;
    registry.put_recording(&record).await?;
    tracing::warn!(
        recording = %record.id,
        parts = parts.len(),
        duration_ms = duration.as_millis() as u64,
        "recovered a recording from object storage (its node is gone)"
    );
    Ok(true)
}
