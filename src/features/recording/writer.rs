//! One recording file being written, as fragmented MP4 with one-second
//! fragments ([`crate::container::fmp4`]), straight from the access units:
//! no pipeline, no thread, no copy beyond the rewrite into MP4 samples,
//! nothing decoded or re-encoded. Every fragment reaches the file (the
//! kernel's page cache) in one write as soon as it is complete, so a crash
//! or `kill -9` of the server loses at most the last second.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use crate::container::fmp4::{self, Fmp4Writer};
use crate::media::{AccessUnit, MediaError, MediaResult};

/// A recording file being written.
pub struct SegmentWriter {
    mp4: Box<Fmp4Writer<File>>,
    /// Media bytes written.
    written: u64,
}

impl SegmentWriter {
    /// Creates `path` and starts writing; `keyframe` is the first video
    /// unit, `audio` a unit of the audio track if there is one.
    pub fn open(
        path: &Path,
        keyframe: &AccessUnit,
        audio: Option<&AccessUnit>,
    ) -> MediaResult<Self> {
        if !fmp4::supported(keyframe, audio) {
            return Err(MediaError::Unsupported(
                "a recording needs H.264 or H.265 video (and AAC audio)".into(),
            ));
        }
        let file = File::create(path).map_err(MediaError::io("creating the file"))?;
        Ok(Self {
            mp4: Box::new(Fmp4Writer::create(file, keyframe, audio)?),
            written: 0,
        })
    }

    /// PTS of the first frame.
    pub fn start_pts(&self) -> Duration {
        self.mp4.start_pts()
    }

    /// PTS just past the last video frame written.
    pub fn end_pts(&self) -> Duration {
        self.mp4.end_pts()
    }

    /// Writes one unit (audio before the first frame, or without an audio
    /// track in the file, is skipped).
    pub fn write(&mut self, unit: &AccessUnit) -> MediaResult<()> {
        self.mp4.push(unit).map_err(MediaError::io("writing"))?;
        let bytes = unit.data.len() as u64;
        self.written += bytes;
        crate::metrics::get().recording_bytes.inc_by(bytes);
        Ok(())
    }

    /// Media bytes written so far (the file's size, but for its headers).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the file: the last fragment, the duration, and the data on
    /// disk. Blocking.
    pub fn close(self) -> MediaResult<()> {
        let file = self.mp4.finish().map_err(MediaError::io("closing"))?;
        file.sync_data().map_err(MediaError::io("closing"))
    }
}
