//! The source stage of a GStreamer stream pipeline: whatever brings
//! encoded elementary streams in. Two kinds, each ending in pads that
//! [`super::tracks::attach_pad`] links (pushed MPEG-TS needs no GStreamer:
//! [`super::pushed`]):
//! - a URI the server pulls (srt, rtsp, rtmp, HLS, file):
//!   `urisourcebin ! parsebin` (a file is played at real-time pace, as a
//!   live stream; HTTP redirects are not followed);
//! - `test://`, a built-in live test pattern encoded on the fly
//!   (for demos and trying the API without an encoder). Its tracks are
//!   stamped with their running time, one timeline for both, as an
//!   encoder's output is.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::gst_util::named_element;
use crate::media::{MediaError, MediaResult};

/// Where the media of one pipeline comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A URI pulled by GStreamer.
    Uri(String),
    /// The built-in test pattern (`test://`).
    TestPattern,
}

impl Source {
    /// Whether the pipeline must pace itself to real time: a file has no
    /// clock of its own and would otherwise be read as fast as it parses,
    /// which is not a live stream.
    pub fn needs_pacing(&self) -> bool {
        matches!(self, Source::Uri(uri) if uri.to_ascii_lowercase().starts_with("file://"))
    }

    pub fn for_uri(uri: &str) -> Source {
        if uri.to_ascii_lowercase().starts_with("test://") {
            Source::TestPattern
        } else {
            Source::Uri(uri.to_string())
        }
    }
}

/// The elements of a built source stage.
pub(crate) struct SourceStage {
    /// Elements whose dynamic pads carry elementary streams.
    pub dynamic: Vec<gst::Element>,
    /// Static pads that carry elementary streams (test pattern).
    pub static_pads: Vec<gst::Pad>,
}

pub(crate) fn build(pipeline: &gst::Pipeline, source: &Source) -> MediaResult<SourceStage> {
    match source {
        Source::Uri(uri) => pulled_uri(pipeline, uri),
        Source::TestPattern => test_pattern(pipeline),
    }
}

fn pulled_uri(pipeline: &gst::Pipeline, uri: &str) -> MediaResult<SourceStage> {
    let src = named_element("urisourcebin", "pull")?;
    src.set_property("uri", uri);
    // A redirect could lead anywhere, past the server's pull policy (which
    // checked the host of `uri`): HTTP sources do not follow them.
    src.connect("source-setup", false, |args| {
        if let Some(source) = args.get(1).and_then(|v| v.get::<gst::Element>().ok()) {
            if source.find_property("automatic-redirect").is_some() {
                source.set_property("automatic-redirect", false);
            }
        }
        None
    });
    let parse = named_element("parsebin", "demux")?;
    pipeline.add_many([&src, &parse])?;
    // urisourcebin exposes its pads once it knows the stream.
    let parse_weak = parse.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(parse) = parse_weak.upgrade() else {
            return;
        };
        if let Some(sink) = parse.static_pad("sink") {
            if !sink.is_linked() {
                if let Err(e) = pad.link(&sink) {
                    tracing::warn!(error = ?e, "cannot link pulled source to parsebin");
                }
            }
        }
    });
    Ok(SourceStage {
        dynamic: vec![parse],
        static_pads: vec![],
    })
}

fn test_pattern(pipeline: &gst::Pipeline) -> MediaResult<SourceStage> {
    let video = gst::parse::bin_from_description(
        "videotestsrc is-live=true pattern=smpte ! \
         video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
         clockoverlay halignment=right valignment=bottom font-desc=\"Sans 24\" ! \
         x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=60 ! \
         h264parse",
        true,
    )
    .or_else(|_| {
        gst::parse::bin_from_description(
            "videotestsrc is-live=true pattern=smpte ! \
             video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
             x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=60 ! \
             h264parse",
            true,
        )
    })
    .map_err(|e| {
        MediaError::Pipeline(format!(
            "test pattern video (needs x264enc from gst-plugins-ugly): {e}"
        ))
    })?;
    let audio = gst::parse::bin_from_description(
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse",
        true,
    )
    .map_err(|e| {
        MediaError::Pipeline(format!(
            "test pattern audio (needs avenc_aac from gst-libav): {e}"
        ))
    })?;
    video.set_property("name", "test_video");
    audio.set_property("name", "test_audio");
    pipeline.add_many([video.upcast_ref::<gst::Element>(), audio.upcast_ref()])?;
    let pads: Vec<gst::Pad> = [&video, &audio]
        .into_iter()
        .filter_map(|b| b.static_pad("src"))
        .collect();
    for pad in &pads {
        stamp_running_time(pad);
    }
    Ok(SourceStage {
        dynamic: vec![],
        static_pads: pads,
    })
}

/// Rewrites the timestamps leaving `pad` to running time, and its segment to
/// a plain one from zero. Encoders stamp their output on timelines of their
/// own (x264enc adds 1000 hours so that decode times never go negative,
/// the AAC encoder starts at zero), with segments that map both to the same
/// running time; writers that read the timestamps need that one timeline.
fn stamp_running_time(pad: &gst::Pad) {
    let segment = std::sync::Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &mut info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let segment = segment.lock().unwrap_or_else(|e| e.into_inner());
                    let pts = buffer.pts().and_then(|t| segment.to_running_time(t));
                    let dts = buffer.dts().and_then(|t| segment.to_running_time(t));
                    let b = buffer.make_mut();
                    b.set_pts(pts);
                    b.set_dts(dts);
                }
                Some(gst::PadProbeData::Event(event)) => {
                    if let gst::EventView::Segment(e) = event.view() {
                        if let Ok(time) = e.segment().clone().downcast::<gst::ClockTime>() {
                            *segment.lock().unwrap_or_else(|e| e.into_inner()) = time;
                            let mut plain = gst::FormattedSegment::<gst::ClockTime>::new();
                            plain.set_start(gst::ClockTime::ZERO);
                            *event = gst::event::Segment::new(&plain);
                        }
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}
