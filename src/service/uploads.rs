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
//! Uploads are fenced ([`crate::registry::cluster`]): each part's row
//! carries the recording's writer, and is refused once another node took
//! the recording over (this node was paused, or cut off, for longer than
//! its lease). Before writing an object the uploader makes sure that what
//! it knows of the recording is fresh (read within [`FRESH_FOR`], or read
//! again), so that a node waking from a pause does not write objects of a
//! recording another node has finished. A recording whose node was lost
//! is finished from what was uploaded ([`super::rescue`]).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// How long what the registry said of a recording is trusted before an
/// object is written: well within a lease, so that a node that was paused
/// for longer than its lease reads again before writing.
const FRESH_FOR: Duration = Duration::from_secs(2);

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
        Ok(self.advance(record, Instant::now()).await? == Step::Done)
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
        let listed = self.registry.recordings_to_upload().await;
        let listed_at = Instant::now();
        let pending = match listed {
            Ok(pending) => {
                crate::metrics::get()
                    .upload_backlog
                    .set(pending.len() as i64);
                pending
            }
            Err(e) => {
                self.report(Err(e));
                return 0;
            }
        };
        let results: Vec<(String, Result<Step>)> = futures::stream::iter(pending)
            .map(|record| async move {
                let id = record.id.clone();
                (id, self.advance(record, listed_at).await)
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
                Err(Error::Fenced { what }) => {
                    progress.remove(&id);
                    tracing::warn!(recording = %id, %what, "another node took this recording over; its local file stays as it is");
                }
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

    /// Uploads what is new of `record`, as the registry said it was at
    /// `known_at`.
    async fn advance(&self, mut record: RecordingRecord, mut known_at: Instant) -> Result<Step> {
        let path = self.recordings.path(&record);
        let known = self.progress.lock().await.get(&record.id).copied();
        let mut progress = match known {
            Some(progress) => progress,
            None => {
                // First seen here: is its file on this node, and what of
                // it is up already?
                if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    return Ok(Step::NotHere);
                }
                self.progress_from_registry(&record.id).await?
            }
        };
        let new = {
            let (path, from, with_init) =
                (path.clone(), progress.next_offset, progress.next_seq == 0);
            let limit = if *self.healthy.borrow() {
                MAX_READ
            } else {
                MAX_READ_FAILING
            };
            read_spool(path, from, with_init, limit).await?
        };
        let Some(new) = new else {
            self.progress.lock().await.remove(&record.id);
            return Ok(Step::NotHere);
        };
        let result = self
            .upload_new(&record, &new, &mut progress, &mut known_at)
            .await;
        self.progress
            .lock()
            .await
            .insert(record.id.clone(), progress);
        let uploaded = result?;
        let whole = progress.next_seq > 0 && progress.next_offset >= new.length;
        if whole && uploaded > 0 {
            // Everything written is up: how long after the last write.
            if let Some(lag) = new.modified.and_then(|m| m.elapsed().ok()) {
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
        let init = read_spool(path.clone(), 0, true, MAX_READ_FAILING)
            .await?
            .and_then(|new| new.init)
            .ok_or_else(|| Error::Storage(format!("{}: no init segment", path.display())))?;
        self.check_still_writer(&record).await?;
        self.objects
            .put(&self.objects.recording_part(&record, 0), init)
            .await?;
        record.uploaded = true;
        record.size_bytes = progress.next_offset;
        // Downloadable from every node now; a migration's copies are
        // no news.
        let event = (!self.keep_local)
            .then(|| crate::features::recording::ready_event(&record))
            .flatten();
        self.registry.put_recording(&record, event.as_ref()).await?;
        if !self.keep_local {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(recording = %record.id, error = %e, "cannot remove the spooled file");
            }
        }
        self.progress.lock().await.remove(&record.id);
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

    /// `Fenced` unless the registry still names `record`'s writer as its
    /// writer, with the recording not yet finished.
    async fn check_still_writer(&self, record: &RecordingRecord) -> Result<()> {
        let now = self
            .registry
            .recording(&record.organization_id, &record.id)
            .await?;
        match now {
            Some(now) if now.writer == record.writer && !now.uploaded => Ok(()),
            _ => Err(Error::Fenced {
                what: format!("recording {}", record.id),
            }),
        }
    }

    /// Uploads the parts read since `progress`; returns how many.
    async fn upload_new(
        &self,
        record: &RecordingRecord,
        new: &NewParts,
        progress: &mut Progress,
        known_at: &mut Instant,
    ) -> Result<usize> {
        let mut uploaded = 0;
        if progress.next_seq == 0 {
            let Some(init) = &new.init else {
                // The file is being created: its header comes next time.
                return Ok(0);
            };
            self.upload_part(record, progress, init.clone(), known_at)
                .await?;
            uploaded += 1;
        }
        for fragment in &new.fragments {
            self.upload_part(record, progress, fragment.clone(), known_at)
                .await?;
            uploaded += 1;
        }
        Ok(uploaded)
    }

    /// Writes the next part's object, then its registry row (both only
    /// while `record` is still this writer's).
    async fn upload_part(
        &self,
        record: &RecordingRecord,
        progress: &mut Progress,
        data: Bytes,
        known_at: &mut Instant,
    ) -> Result<()> {
        if known_at.elapsed() > FRESH_FOR {
            self.check_still_writer(record).await?;
            *known_at = Instant::now();
        }
        let part = RecordingPart {
            recording_id: record.id.clone(),
            seq: progress.next_seq,
            offset: progress.next_offset,
            size: data.len() as u64,
        };
        self.objects
            .put(&self.objects.recording_part(record, part.seq), data)
            .await?;
        self.registry
            .put_recording_part(&record.writer, &part)
            .await?;
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

/// Most bytes of a spooled file read in one pass: a recording far behind
/// (after a store outage) is caught up over several passes.
const MAX_READ: u64 = 32 << 20;
/// What is read while uploads fail: about one part (the next one up is
/// the probe of whether the store is back), not the whole backlog of
/// every recording every second.
const MAX_READ_FAILING: u64 = 1 << 20;

/// What of a spooled file is new since an upload's progress.
struct NewParts {
    /// The init segment, when asked for and all there.
    init: Option<Bytes>,
    /// The whole fragments from the offset asked for, in order.
    fragments: Vec<Bytes>,
    /// The file's length and last change when read.
    length: u64,
    modified: Option<std::time::SystemTime>,
}

/// [`read_new`] on a blocking thread.
async fn read_spool(
    path: std::path::PathBuf,
    from: u64,
    with_init: bool,
    limit: u64,
) -> Result<Option<NewParts>> {
    tokio::task::spawn_blocking(move || read_new(&path, from, with_init, limit))
        .await
        .map_err(|e| Error::Storage(format!("reading the spool: {e}")))?
        .map_err(|e| Error::Storage(format!("reading the spool: {e}")))
}

/// Reads what `path` holds from `from` (with its init segment first when
/// `with_init`, then `from` is 0), in one open and one read of at most
/// `limit` bytes (more when one part is larger), each part a slice of one
/// buffer; `None` when the file is not there. Blocking.
fn read_new(
    path: &Path,
    from: u64,
    with_init: bool,
    mut limit: u64,
) -> std::io::Result<Option<NewParts>> {
    let mut file = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        opened => opened?,
    };
    let meta = file.metadata()?;
    let (length, modified) = (meta.len(), meta.modified().ok());
    loop {
        let want = length.saturating_sub(from).min(limit);
        let mut buf = Vec::with_capacity(want as usize);
        file.seek(SeekFrom::Start(from))?;
        (&mut file).take(want).read_to_end(&mut buf)?;
        let buf = Bytes::from(buf);
        let (init, at) = match (with_init, fmp4::init_segment_end(&buf)) {
            (false, _) => (None, 0),
            (true, Some(end)) => (Some(buf.slice(..end)), end),
            // The header is still being written.
            (true, None) => (None, buf.len()),
        };
        let fragments: Vec<Bytes> = fmp4::whole_fragments(&buf[at..])
            .into_iter()
            .map(|range| buf.slice(at + range.start..at + range.end))
            .collect();
        let cut_short = fragments.is_empty() && want == limit && from + want < length;
        if cut_short && init.is_some() == with_init {
            // One fragment is larger than the limit: read all of it.
            limit = limit.saturating_mul(2);
            continue;
        }
        return Ok(Some(NewParts {
            init,
            fragments,
            length,
            modified,
        }));
    }
}
