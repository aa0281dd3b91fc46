//! Recording: the stream saved as VOD files while it is live, without
//! re-encoding. A new file starts at the first keyframe at or after each
//! `duration_seconds` (or one file per session with `entire_stream`),
//! when options change on a live stream, when the video format changes,
//! after a jump of the publisher's clock, and when audio starts in a
//! stream that began without it (a file's tracks are fixed when it opens). Files are fragmented MP4 written
//! fragment by fragment ([`writer`]), catalogued in the registry as they
//! open (RECORDING) and close (COMPLETE), through a writer task that never
//! makes the stream wait for the registry ([`catalogue`]); with object
//! storage the files are its spool (`service::uploads`). After a crash the
//! unfinished ones
//! are found and catalogued RECOVERED ([`recovery`]), never deleted. A
//! failing disk stops the recording, not the stream: the stream gets an
//! event saying why, and the files already written stay.

mod catalogue;
pub mod recovery;
#[cfg(test)]
mod tests;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::features::driver::Feature;
use crate::features::handover::{late_audio, EarlyAudio, LateAudio};
use crate::features::usage::{OrgUsage, UsageLedger};
use crate::features::video_required::VideoRequired;
use crate::ids::{self, StreamRef};
use crate::media::{now_millis, AccessUnit, MediaError, MediaResult, TrackFormat};
use crate::options::{Processing, Recording as Settings, Span};
use crate::proto::v1 as pb;
use crate::registry::webhooks::WebhookEvent;
use crate::registry::{RecordingRecord, RecordingState, Registry};
use crate::runtime::blocking;
use crate::store::DataDir;
use crate::streams::LiveStream;
use catalogue::CatalogueWriter;
use writer::SegmentWriter;

/// How long the first file waits for the audio track to show up.
const AUDIO_WAIT: Duration = Duration::from_secs(2);
/// Audio frames kept while no video can take them (about 2.7 s at
/// 48 kHz): before the first keyframe, or for a file with audio to come.
const AUDIO_PREROLL: usize = 128;

/// Where recordings live ([`DataDir::recordings_dir`]) and their
/// catalogue.
pub struct RecordingStore {
    data: DataDir,
    registry: Arc<Registry>,
    /// No new file is started with less free space than this (bytes).
    min_free: u64,
    /// Files being closed, awaited at shutdown.
    pub closing: TaskTracker,
    /// Catalogue writes, off the media path.
    pub catalogue: CatalogueWriter,
    /// Whether a recording is ready (downloadable from every node) once
    /// it is closed, and reports `recording.ready` then; false with
    /// object storage, where it is ready once uploaded (the uploader
    /// reports it), and where nothing is to be reported (a migration).
    ready_on_close: bool,
    /// What each organization stores (its `stored_bytes` quota), and
    /// holds in replay memory.
    pub usage: Arc<UsageLedger>,
}

impl RecordingStore {
    /// Starts the catalogue's writer on the current tokio runtime.
    /// `ready_on_close`: see the field.
    pub fn new(
        data: DataDir,
        registry: Arc<Registry>,
        min_free: u64,
        ready_on_close: bool,
    ) -> Self {
        Self {
            data,
            catalogue: CatalogueWriter::start(Arc::clone(&registry), ready_on_close),
            registry,
            min_free,
            closing: TaskTracker::new(),
            ready_on_close,
            usage: Arc::default(),
        }
    }

    /// Whether recordings are ready once closed (see the field).
    pub fn ready_on_close(&self) -> bool {
        self.ready_on_close
    }

    pub fn dir(&self, stream: &StreamRef) -> PathBuf {
        self.data.recordings_dir(stream)
    }

    pub fn path(&self, record: &RecordingRecord) -> PathBuf {
        self.dir(&StreamRef::new(&record.organization_id, &record.stream_id))
            .join(&record.file_name)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Refuses a new file when the disk holding `dir` has less free space
    /// than the floor: a full disk would break the registry and every
    /// stream's files, not just this one.
    fn check_free_space(&self, dir: &Path) -> MediaResult<()> {
        let Ok(stats) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < self.min_free {
            return Err(MediaError::DiskFull(format!(
                "{} MiB free, under the {} MiB floor (--min-free-disk-mb)",
                free >> 20,
                self.min_free >> 20
            )));
        }
        Ok(())
    }
}

/// An open file and its catalogue entry.
struct Open {
    writer: SegmentWriter,
    record: RecordingRecord,
    /// The video format the file was started with: a keyframe of another
    /// format (new parameter sets: resolution, codec, profile) starts a
    /// new file, whose header describes it.
    video_format: Option<Arc<TrackFormat>>,
    /// Whether the file has an audio track.
    has_audio: bool,
    /// Its bytes counted in the organization's stored bytes so far.
    counted: u64,
}

pub struct Recorder {
    store: Arc<RecordingStore>,
    stream: Arc<LiveStream>,
    settings: Settings,
    open: Option<Open>,
    /// Units from the first keyframe while waiting for the audio track.
    pending: Vec<AccessUnit>,
    /// A unit of the audio track (its codec configuration), once seen.
    audio_sample: Option<AccessUnit>,
    /// The file just cut: it takes the audio stamped before the cut that
    /// arrives after the cut's keyframe (tracks are interleaved a little
    /// apart in the stream), until audio passes the cut.
    finishing: Option<Open>,
    /// Start a new file at the next keyframe.
    split: bool,
    /// Set after a failure: no new file before this PTS.
    retry_at: Option<Duration>,
    /// Audio ahead of the newest video ([`handover::EarlyAudio`]).
    early: EarlyAudio,
    /// A file without audio keeps its newest GOP back (from its keyframe):
    /// when audio starts, the file with it starts at that keyframe, so no
    /// audio is lost waiting for the next one.
    deferred: Vec<AccessUnit>,
    video_required: VideoRequired,
    /// The organization's use, against its `stored_bytes` quota.
    usage: Arc<OrgUsage>,
}

impl Recorder {
    pub fn new(store: Arc<RecordingStore>, stream: Arc<LiveStream>, settings: Settings) -> Self {
        let usage = store.usage.of(&stream.stream_ref.organization_id);
        Self {
            store,
            stream,
            settings,
            open: None,
            pending: Vec::new(),
            audio_sample: None,
            finishing: None,
            split: false,
            retry_at: None,
            early: EarlyAudio::default(),
            deferred: Vec::new(),
            video_required: VideoRequired::new("recording"),
            usage,
        }
    }

    fn segment_length(&self) -> Option<Duration> {
        match self.settings.segment {
            Span::Seconds(s) => Some(Duration::from_secs(s.into())),
            Span::EntireStream => None,
        }
    }

    fn fail(&mut self, what: &str, reason: impl std::fmt::Display, pts: Duration) {
        let message = format!("recording {what}: {reason}");
        tracing::error!(stream = %self.stream.stream_ref, "{message}");
        self.stream.report_feature_error(message);
        self.retry_at = Some(pts + Duration::from_secs(10));
    }

    /// Opens a new file starting with `keyframe`. Opening (folder, free
    /// space, file, catalogue entry) blocks on the disk, so it runs as
    /// blocking work.
    fn open_file(&mut self, keyframe: &AccessUnit) {
        let pts = keyframe.pts.unwrap_or_default();
        let opened = blocking(|| self.create_file(keyframe));
        let (mut writer, record) = match opened {
            Ok(opened) => opened,
            Err((what, e)) => return self.fail(what, e, pts),
        };
        tracing::info!(stream = %self.stream.stream_ref, recording = %record.id, "recording file opened");
        if let Err(e) = writer.write(keyframe) {
            tracing::warn!(stream = %self.stream.stream_ref, error = %e, "recording write failed");
        }
        self.open = Some(Open {
            writer,
            record,
            video_format: keyframe.format.clone(),
            has_audio: self.audio_sample.is_some(),
            counted: 0,
        });
        self.retry_at = None;
    }

    /// Creates a file starting with `keyframe` and its catalogue entry;
    /// on failure, what failed and why.
    fn create_file(
        &self,
        keyframe: &AccessUnit,
    ) -> Result<(SegmentWriter, RecordingRecord), (&'static str, crate::error::Error)> {
        let pts = keyframe.pts.unwrap_or_default();
        let dir = self.store.dir(&self.stream.stream_ref);
        let id = ids::new_recording_id(now_millis());
        let file_name = format!("{id}.mp4");
        self.usage
            .check_stored()
            .map_err(|e| ("refuses a new file", e))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ("cannot create its folder", MediaError::from(e).into()))?;
        self.store
            .check_free_space(&dir)
            .map_err(|e| ("refuses a new file", e.into()))?;
        let writer =
            SegmentWriter::open(&dir.join(&file_name), keyframe, self.audio_sample.as_ref())
                .map_err(|e| ("cannot open a file", e.into()))?;
        let session = self.stream.session_stats();
        let record = RecordingRecord {
            id,
            organization_id: self.stream.stream_ref.organization_id.clone(),
            stream_id: self.stream.stream_ref.stream_id.clone(),
            file_name,
            state: RecordingState::Recording,
            start_time_ms: keyframe.received_ms,
            end_time_ms: keyframe.received_ms,
            start_pts_ns: pts.as_nanos() as u64,
            duration_ns: 0,
            size_bytes: 0,
            session_id: session
                .as_ref()
                .map(|s| s.id().to_string())
                .unwrap_or_default(),
            uploaded: false,
            writer: session.map(|s| s.fence().clone()).unwrap_or_default(),
        };
        self.store.catalogue.submit(record.clone());
        Ok((writer, record))
    }

    /// Closes the open file and the one finishing (in the background) and
    /// catalogues them.
    fn close_file(&mut self, last_time_ms: i64) {
        self.close_finishing(last_time_ms);
        if let Some(open) = self.open.take() {
            self.close(open, last_time_ms);
        }
    }

    fn close_finishing(&mut self, last_time_ms: i64) {
        if let Some(open) = self.finishing.take() {
            self.close(open, last_time_ms);
        }
    }

    /// Cuts the open file at `keyframe`, which starts the next one; the
    /// cut file finishes with the audio from before the cut.
    fn cut(&mut self, keyframe: &AccessUnit) {
        self.close_finishing(keyframe.received_ms);
        self.finishing = self.open.take();
        self.open_file(keyframe);
    }

    /// Routes an audio unit stamped before the last cut to the file that
    /// was cut ([`handover`]); returns whether it went there.
    fn hand_over(&mut self, unit: &AccessUnit, pts: Duration) -> bool {
        let Some(finishing) = &mut self.finishing else {
            return false;
        };
        match late_audio(finishing.writer.end_pts(), unit, pts) {
            LateAudio::Take => {
                if let Err(e) = finishing.writer.write(unit) {
                    tracing::warn!(stream = %self.stream.stream_ref, error = %e, "recording write failed");
                }
                true
            }
            LateAudio::Close => {
                self.close_finishing(unit.received_ms);
                false
            }
            LateAudio::Pass => false,
        }
    }

    /// Writes the held audio that plays before `until` (all with `None`)
    /// to the open file, in order.
    fn release_held(&mut self, until: Option<Duration>) {
        let go = self.early.take(until);
        self.write_to_open(go);
    }

    fn close(&self, open: Open, last_time_ms: i64) {
        let Open {
            writer,
            mut record,
            counted,
            ..
        } = open;
        // Catalogued with its size once closed: counted as such until the
        // next refresh counts the catalogue.
        self.usage.add_recording(-(counted as i64));
        self.usage.add_catalogued(counted);
        let store = Arc::clone(&self.store);
        let stream = Arc::clone(&self.stream);
        record.duration_ns = writer
            .end_pts()
            .saturating_sub(writer.start_pts())
            .as_nanos() as u64;
        record.end_time_ms = last_time_ms;
        let closing = store.closing.clone();
        closing.spawn_blocking(move || {
            let path = store.path(&record);
            record.state = match writer.close() {
                Ok(()) => RecordingState::Complete,
                Err(e) => {
                    stream.report_feature_error(format!("recording {}: closing: {e}", record.id));
                    // Keep what was written, as after a crash, if it can
                    // be made playable; else say it failed.
                    match recovery::finalize(&path) {
                        Ok(duration) => {
                            record.duration_ns = duration.as_nanos() as u64;
                            RecordingState::Recovered
                        }
                        Err(e) => {
                            tracing::warn!(recording = %record.id, error = %e, "cannot finalize a recording that failed to close");
                            RecordingState::Failed
                        }
                    }
                }
            };
            record.size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            // The registry may be failing for the same reason the file did
            // (a full disk): the writer retries until it takes the record.
            store.catalogue.submit(record.clone());
            tracing::info!(recording = %record.id, bytes = record.size_bytes, state = ?record.state, "recording file closed");
        });
    }
}

impl Recorder {
    /// Where a unit goes: the file that was cut (late audio), held until
    /// video passes it (audio ahead), the open file (cut first at a
    /// keyframe when one is due), or the units waiting for a first file.
    fn route(&mut self, unit: AccessUnit) {
        let Some(pts) = unit.pts else { return };
        let keyframe = unit.codec.is_video() && unit.keyframe;
        if self.hand_over(&unit, pts) {
            return;
        }
        let audio_without_track =
            !unit.codec.is_video() && self.open.as_ref().is_some_and(|open| !open.has_audio);
        if audio_without_track && !self.split {
            tracing::info!(stream = %self.stream.stream_ref, "audio started: new recording file with it at the next keyframe");
            self.split = true;
        }

        if audio_without_track && !self.deferred.is_empty() {
            self.cut_at_deferred();
            return self.route(unit);
        }
        let segment_length = self.segment_length();
        if let Some(open) = &mut self.open {
            if !unit.codec.is_video() {
                let unit = if audio_without_track {
                    // Audio the open file has no track for waits for the
                    // keyframe that starts a file with it.
                    self.early.hold_anyway(unit);
                    None
                } else {
                    self.early.hold(unit, pts)
                };
                match unit {
                    None => self.held_bounded(),
                    Some(unit) => {
                        if let Err(e) = open.writer.write(&unit) {
                            self.close_file(unit.received_ms);
                            self.fail("stopped", e, pts);
                        }
                    }
                }
                return;
            }
            self.early.video(pts);
            let due = segment_length.is_some_and(|len| pts >= open.writer.start_pts() + len);
            let changed = keyframe && unit.format != open.video_format;
            if changed {
                let size = unit.picture_size();
                tracing::info!(stream = %self.stream.stream_ref, codec = ?unit.codec, ?size, "video format changed: new recording file");
            }
            if keyframe {
                let written = open.writer.written();
                self.usage.add_recording((written - open.counted) as i64);
                open.counted = written;
                if let Err(e) = self.usage.check_stored() {
                    self.close_file(unit.received_ms);
                    self.fail("stopped", e, pts);
                    return;
                }
            }
            if keyframe && (due || self.split || changed) {
                self.split = false;
                self.flush_deferred();
                // Held audio before the cut ends the file being cut; the
                // rest starts the new one, after its keyframe.
                self.release_held(Some(pts));
                self.cut(&unit);
                self.release_held(None);
                return;
            }
            if !open.has_audio {
                if keyframe {
                    self.flush_deferred();
                }
                self.deferred.push(unit);
                return;
            }
            if let Err(e) = open.writer.write(&unit) {
                self.close_file(unit.received_ms);
                self.fail("stopped", e, pts);
                return;
            }
            let has_audio = open.has_audio;
            if has_audio {
                self.release_held(Some(pts + Duration::from_nanos(1)));
            }
            return;
        }

        // No file open: start at a keyframe, once the audio's format is
        // known (or the audio is late enough to go without).
        if self.retry_at.is_some_and(|at| pts < at) {
            return;
        }
        let waiting = self.pending.iter().any(|u| u.codec.is_video());
        if !waiting {
            if keyframe {
                // Audio that came first but plays from this keyframe on
                // belongs to the file; older audio does not.
                self.pending.retain(|u| u.pts.is_some_and(|p| p >= pts));
                self.pending.insert(0, unit);
            } else if !unit.codec.is_video() {
                self.pending.push(unit);
                if self.pending.len() > AUDIO_PREROLL {
                    self.pending.remove(0);
                }
            }
            return;
        }
        let first_pts = self.pending[0].pts.unwrap_or_default();
        self.pending.push(unit);
        if self.audio_sample.is_some() || pts >= first_pts + AUDIO_WAIT {
            self.open_pending();
        }
    }

    /// Writes the GOP kept back to the open file.
    fn flush_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        self.write_to_open(deferred);
    }

    /// Writes `units` to the open file, in order (all but the first held
    /// back, or the rest of a GOP).
    fn write_to_open(&mut self, units: impl IntoIterator<Item = AccessUnit>) {
        let Some(open) = &mut self.open else {
            return;
        };
        for unit in units {
            if let Err(e) = open.writer.write(&unit) {
                tracing::warn!(stream = %self.stream.stream_ref, error = %e, "recording write failed");
                break;
            }
        }
    }

    /// Audio started in a file without it: a new file (with an audio
    /// track) starts at the keyframe of the GOP kept back, which goes
    /// there instead.
    fn cut_at_deferred(&mut self) {
        let mut gop = std::mem::take(&mut self.deferred).into_iter();
        let Some(keyframe) = gop.next() else {
            return;
        };
        self.split = false;
        self.cut(&keyframe);
        self.write_to_open(gop);
    }

    /// Opens the first file with the waiting units: the keyframe opens it,
    /// the rest go the way every unit goes (a format change among them
    /// cuts, audio ahead of video is held).
    fn open_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending).into_iter();
        let Some(keyframe) = pending.next() else {
            return;
        };
        self.split = false;
        self.open_file(&keyframe);
        if let Some(pts) = keyframe.pts {
            self.early.video(pts);
        }
        for unit in pending {
            self.route(unit);
        }
    }

    /// Audio held for a file that never comes (the video stopped) is
    /// written where it can go rather than kept without bound.
    fn held_bounded(&mut self) {
        if self.early.len() > AUDIO_PREROLL {
            let oldest = self.early.take_oldest();
            if let (Some(open), Some(oldest)) = (self.open.as_mut().filter(|o| o.has_audio), oldest)
            {
                let _ = open.writer.write(&oldest);
            }
        }
    }
}

impl Feature for Recorder {
    type Settings = Settings;

    fn settings(processing: &Processing) -> Option<Settings> {
        processing.recording
    }

    fn retune(&mut self, settings: Settings) {
        self.settings = settings;
        // The new length applies from a new file, at the next keyframe.
        self.split = true;
    }

    fn on_unit(&mut self, unit: AccessUnit) {
        self.video_required.on_unit(&unit, &self.stream);
        if !unit.codec.is_video() && self.audio_sample.is_none() {
            self.audio_sample = Some(unit.clone());
        }
        if unit.discontinuity && self.open.is_some() {
            tracing::info!(stream = %self.stream.stream_ref, "the publisher's clock jumped: new recording file");
            self.split = true;
        }
        self.route(unit);
    }

    fn on_gap(&mut self, skipped: u64) {
        // A hole in the file would be worse than a new file.
        tracing::warn!(stream = %self.stream.stream_ref, skipped, "recording fell behind; starting a new file");
        self.split = true;
    }

    fn end(mut self) {
        if self.pending.iter().any(|u| u.codec.is_video()) {
            self.open_pending();
        }
        self.flush_deferred();
        if self.open.as_ref().is_some_and(|o| o.has_audio) {
            self.release_held(None);
        }
        self.close_file(now_millis());
    }
}

/// A catalogue entry as the API shows it; a file being written reports
/// its current size.
pub fn to_proto(record: &RecordingRecord, store: &RecordingStore) -> pb::Recording {
    let size = match record.state {
        RecordingState::Recording => std::fs::metadata(store.path(record)).map_or(0, |m| m.len()),
        _ => record.size_bytes,
    };
    to_proto_of_size(record, size)
}

fn to_proto_of_size(record: &RecordingRecord, size_bytes: u64) -> pb::Recording {
    use crate::proto::{timestamp_from_millis, to_duration};
    let state = match record.state {
        RecordingState::Recording => pb::RecordingState::Recording,
        RecordingState::Complete => pb::RecordingState::Complete,
        RecordingState::Recovered => pb::RecordingState::Recovered,
        RecordingState::Failed => pb::RecordingState::Failed,
    };
    pb::Recording {
        id: record.id.clone(),
        stream_id: record.stream_id.clone(),
        start_time: Some(timestamp_from_millis(record.start_time_ms)),
        end_time: Some(timestamp_from_millis(record.end_time_ms)),
        duration: Some(to_duration(Duration::from_nanos(record.duration_ns))),
        size_bytes,
        state: state as i32,
        format: "mp4".to_string(),
        start_pts: Some(to_duration(Duration::from_nanos(record.start_pts_ns))),
        session_id: record.session_id.clone(),
    }
}

/// The `recording.ready` event of a recording that is finished and
/// playable (complete or recovered); none for one still written or that
/// failed.
pub fn ready_event(record: &RecordingRecord) -> Option<WebhookEvent> {
    matches!(
        record.state,
        RecordingState::Complete | RecordingState::Recovered
    )
    .then(|| {
        crate::webhooks::events::recording_ready(
            &record.organization_id,
            &to_proto_of_size(record, record.size_bytes),
        )
    })
}
