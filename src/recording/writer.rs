//! One recording file being written, as fragmented MP4 with one-second
//! fragments. Every fragment reaches the file (the kernel's page cache) in
//! one write as soon as it is complete, so a crash or `kill -9` of the
//! server loses at most the last second. Nothing is decoded or re-encoded.
//!
//! H.264 (+ AAC) is written directly from the access units by
//! [`crate::container::fmp4`]: no pipeline, no thread, no copy beyond the
//! rewrite into MP4 samples. Other codecs (H.265) go through GStreamer:
//! `appsrc(video) ! parse` and `appsrc(audio) ! aacparse` into `mp4mux`
//! with one-second fragments, into an unbuffered `filesink`, with units
//! handed over in 200 ms batches (which a crash can lose as well).

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::container::fmp4::{self, Fmp4Writer};
use crate::pipeline::gst_util::{element, first_error, wait_for_end};
use crate::pipeline::AccessUnit;

/// A recording file being written.
pub enum SegmentWriter {
    /// H.264 (+ AAC), written directly.
    Direct(Box<Fmp4Writer<std::fs::File>>),
    /// Other codecs, through `mp4mux`.
    Muxer(MuxerWriter),
}

impl SegmentWriter {
    /// Creates `path` and starts writing; `keyframe` is the first video
    /// unit, `audio` a unit of the audio track if there is one.
    pub fn open(
        path: &Path,
        keyframe: &AccessUnit,
        audio: Option<&AccessUnit>,
    ) -> Result<Self, String> {
        if !fmp4::supported(keyframe, audio) {
            let audio_caps = audio.and_then(|a| a.caps.as_ref());
            return MuxerWriter::open(path, keyframe, audio_caps).map(SegmentWriter::Muxer);
        }
        let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
        let writer = Fmp4Writer::create(file, keyframe, audio)?;
        Ok(SegmentWriter::Direct(Box::new(writer)))
    }

    /// PTS of the first frame.
    pub fn start_pts(&self) -> Duration {
        match self {
            SegmentWriter::Direct(w) => w.start_pts(),
            SegmentWriter::Muxer(w) => w.start_pts,
        }
    }

    /// PTS just past the last video frame written.
    pub fn end_pts(&self) -> Duration {
        match self {
            SegmentWriter::Direct(w) => w.end_pts(),
            SegmentWriter::Muxer(w) => w.end_pts,
        }
    }

    /// Writes one unit (audio before the first frame, or without an audio
    /// track in the file, is skipped).
    pub fn write(&mut self, unit: &AccessUnit) -> Result<(), String> {
        match self {
            SegmentWriter::Direct(w) => w.push(unit).map_err(|e| format!("writing: {e}")),
            SegmentWriter::Muxer(w) => w.write(unit),
        }
    }

    /// The writer's error, if it has failed (e.g. disk full) on its own
    /// threads; the direct writer reports its errors from [`Self::write`].
    pub fn failure(&self) -> Option<String> {
        match self {
            SegmentWriter::Direct(_) => None,
            SegmentWriter::Muxer(w) => w.failure(),
        }
    }

    /// Ends the file: the last fragment, the index or duration, and the
    /// data on disk. Blocking.
    pub fn close(self) -> Result<(), String> {
        match self {
            SegmentWriter::Direct(w) => {
                let file = w.finish().map_err(|e| format!("closing: {e}"))?;
                file.sync_data().map_err(|e| format!("closing: {e}"))
            }
            SegmentWriter::Muxer(w) => w.close(),
        }
    }
}

/// Length of each MP4 fragment: the most a crash can lose.
pub const FRAGMENT_MS: u32 = 1000;
/// How long closing a file may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Units are handed to the muxer in batches this long (stream time): the
/// writer's threads wake once per batch, not once per frame. A crash can
/// lose this much on top of the last fragment.
const BATCH: Duration = Duration::from_millis(200);

/// Units waiting to be handed over, per track.
#[derive(Default)]
struct Pending {
    video: Vec<gst::Buffer>,
    audio: Vec<gst::Buffer>,
    since: Option<Duration>,
}

fn list(buffers: Vec<gst::Buffer>) -> gst::BufferList {
    let mut list = gst::BufferList::new_sized(buffers.len());
    {
        let list = list.get_mut().expect("a new list is writable");
        for buffer in buffers {
            list.add(buffer);
        }
    }
    list
}

/// A recording file written by `mp4mux`.
pub struct MuxerWriter {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
    path: PathBuf,
    /// Timestamps in the file are relative to this.
    offset: Duration,
    pub start_pts: Duration,
    /// PTS just past the last video frame written.
    pub end_pts: Duration,
    pending: Pending,
}

fn source(caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        .max_bytes(0)
        .build()
}

impl MuxerWriter {
    /// Creates `path` and starts writing; `keyframe` is the first video
    /// unit, `audio_caps` the audio track's caps if there is one.
    fn open(
        path: &Path,
        keyframe: &AccessUnit,
        audio_caps: Option<&gst::Caps>,
    ) -> Result<Self, String> {
        let video_caps = keyframe.caps.as_ref().ok_or("video without caps")?;
        let pipeline = gst::Pipeline::new();
        let mux = gst::ElementFactory::make("mp4mux")
            .property("fragment-duration", FRAGMENT_MS)
            .build()
            .map_err(|_| "mp4mux is missing")?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path.to_string_lossy().as_ref())
            .property_from_str("buffer-mode", "unbuffered")
            .property("async", false)
            .property("sync", false)
            .build()
            .map_err(|_| "filesink is missing")?;
        pipeline
            .add_many([&mux, &sink])
            .map_err(|e| e.to_string())?;
        mux.link(&sink).map_err(|e| e.to_string())?;

        let video = source(video_caps);
        let vparse = element(keyframe.codec.parser().0)?;
        pipeline
            .add_many([video.upcast_ref(), &vparse])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([video.upcast_ref(), &vparse, &mux]).map_err(|e| e.to_string())?;

        let audio = match audio_caps {
            Some(caps) => {
                let src = source(caps);
                let aparse = element("aacparse")?;
                pipeline
                    .add_many([src.upcast_ref(), &aparse])
                    .map_err(|e| e.to_string())?;
                gst::Element::link_many([src.upcast_ref(), &aparse, &mux])
                    .map_err(|e| e.to_string())?;
                Some(src)
            }
            None => None,
        };

        if pipeline.set_state(gst::State::Playing).is_err() {
            let reason = first_error(&pipeline).unwrap_or_else(|| "cannot start writer".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(reason);
        }
        let start_pts = keyframe.pts.unwrap_or_default();
        Ok(Self {
            pipeline,
            video,
            audio,
            path: path.to_path_buf(),
            offset: keyframe.decode_time().unwrap_or_default(),
            start_pts,
            end_pts: start_pts,
            pending: Pending::default(),
        })
    }

    /// Writes one unit (audio before the first frame, or without an audio
    /// track in the file, is skipped).
    fn write(&mut self, unit: &AccessUnit) -> Result<(), String> {
        let Some(pts) = unit.pts else { return Ok(()) };
        if unit.decode_time().unwrap_or_default() < self.offset {
            return Ok(());
        }
        let buffer = unit.to_buffer(self.offset);
        if unit.codec.is_video() {
            self.end_pts = self.end_pts.max(pts + unit.duration.unwrap_or_default());
            self.pending.video.push(buffer);
        } else if self.audio.is_some() && pts >= self.start_pts {
            self.pending.audio.push(buffer);
        } else {
            return Ok(());
        }
        let since = *self.pending.since.get_or_insert(pts);
        if pts.saturating_sub(since) >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the waiting units to the muxer.
    fn flush(&mut self) -> Result<(), String> {
        let pending = std::mem::take(&mut self.pending);
        let tracks = [
            (Some(&self.video), pending.video),
            (self.audio.as_ref(), pending.audio),
        ];
        for (src, buffers) in tracks {
            if let Some(src) = src.filter(|_| !buffers.is_empty()) {
                src.push_buffer_list(list(buffers))
                    .map_err(|e| format!("writing {}: {e:?}", self.path.display()))?;
            }
        }
        Ok(())
    }

    /// The writer's error, if it has failed (e.g. disk full).
    fn failure(&self) -> Option<String> {
        first_error(&self.pipeline)
    }

    /// Ends the file: the muxer writes its last fragment and index. Blocking.
    fn close(mut self) -> Result<(), String> {
        let flushed = self.flush();
        let _ = self.video.end_of_stream();
        if let Some(audio) = &self.audio {
            let _ = audio.end_of_stream();
        }
        let result = wait_for_end(&self.pipeline, CLOSE_TIMEOUT);
        let _ = self.pipeline.set_state(gst::State::Null);
        flushed.and(result)
    }
}
