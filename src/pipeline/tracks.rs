//! Attaches each elementary stream that the source stage exposes to the
//! rest of the pipeline: `parser ! capsfilter ! tap`, the tap (an
//! `appsink`) turning access units into [`AccessUnit`]s for the in-process
//! features and marking the stream LIVE on its first frame. When the
//! source announces a new programme (tracks added or removed, a codec
//! switch), its tracks replace the old ones.
//! Audio that is off the video's timeline is held back there
//! ([`super::timeline`]), so no feature ever sees it.
//! Every feature takes its units from that one tap, so the stream is
//! demuxed and parsed exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::broadcast;

use super::stats::SessionStats;
use super::timeline::TimelineGuard;
use super::{EventSink, PipelineEvent};
use crate::gst_format;
use crate::gst_util::named_element;
use crate::ids::StreamRef;
use crate::media::format::FormatFollower;
use crate::media::nal::len_without_trailing_zeros;
use crate::media::{AccessUnit, Codec, MediaError, MediaResult, TrackFormat};

/// What the per-pad callbacks need; shared by all tracks of one pipeline.
pub(crate) struct TrackContext {
    pub stream: StreamRef,
    pub stats: Arc<SessionStats>,
    pub units: broadcast::Sender<AccessUnit>,
    pub events: EventSink,
    /// Sinks synchronize to the clock (paced sources).
    pub paced: bool,
    /// The tracks attached: one per kind, from the newest programme.
    pub attached: Mutex<Attached>,
    pub went_live: AtomicBool,
    /// Keeps audio on the video's timeline.
    pub timeline: TimelineGuard,
}

/// The tracks attached so far.
#[derive(Default)]
pub(crate) struct Attached {
    /// Programmes the source has finished announcing (`no-more-pads`): a
    /// pad that comes later belongs to a new programme, which replaces
    /// the tracks of the old one (an encoder that adds audio, or switches
    /// codec, sends a new programme).
    programme: u64,
    video: Option<Track>,
    audio: Option<Track>,
    /// Chains built, for unique element names.
    chains: u32,
}

impl Attached {
    /// The source has announced all the pads of its current programme.
    pub fn programme_complete(&mut self) {
        self.programme += 1;
    }
}

/// One attached track: the source's pad, and the programme it came with.
struct Track {
    programme: u64,
    pad: gst::Pad,
}

/// Links a new source pad: a supported codec gets `parser ! capsfilter !
/// tap`, replacing the track of its kind if that came with an older
/// programme; a second track of a kind in the same programme, or an
/// unsupported codec, goes to a `fakesink` so it never blocks the demuxer
/// (an unsupported audio or video codec is reported as a FEATURE_ERROR).
pub(crate) fn attach_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    ctx: &Arc<TrackContext>,
) -> MediaResult<()> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(codec) = gst_format::codec_of_caps(&caps) else {
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        tracing::warn!(stream = %ctx.stream, pad = %pad.name(), caps = %caps, "ignoring a track of an unsupported codec");
        if name.starts_with("video/") || name.starts_with("audio/") {
            (ctx.events)(PipelineEvent::TrackIgnored(format!(
                "unsupported codec {name} ignored (video must be H.264 or H.265, audio AAC)"
            )));
        }
        return discard(pipeline, pad);
    };
    let mut attached = ctx.attached.lock().unwrap_or_else(|e| e.into_inner());
    let programme = attached.programme;
    attached.chains += 1;
    let chain = attached.chains;
    let slot = if codec.is_video() {
        &mut attached.video
    } else {
        &mut attached.audio
    };
    if let Some(old) = slot.as_ref() {
        if old.programme == programme {
            tracing::warn!(stream = %ctx.stream, pad = %pad.name(), caps = %caps, "ignoring an extra track");
            return discard(pipeline, pad);
        }
        // A new programme: the old track stays linked until its pad ends
        // (the demuxer pushes the old programme's last frames, then EOS,
        // before the new programme's first ones), then is idle.
        tracing::info!(stream = %ctx.stream, ?codec, old_pad = %old.pad.name(), "new programme: track replaced");
    }

    let track = codec.track_name();
    let (parser_factory, out_caps) = gst_format::parser(codec);
    let parser = named_element(parser_factory, &format!("{track}_parse_{chain}"))?;
    if codec.is_video() {
        parser.set_property("config-interval", -1i32);
    }
    let filter = named_element("capsfilter", &format!("{track}_caps_{chain}"))?;
    if let Some(c) = out_caps {
        let c: gst::Caps = c
            .parse()
            .map_err(|_| MediaError::Pipeline(format!("bad caps {c}")))?;
        filter.set_property("caps", &c);
    }
    let tap = tap_sink(codec, &format!("{track}_tap_{chain}"), ctx);

    let elements = [&parser, &filter, tap.upcast_ref()];
    pipeline.add_many(elements)?;
    gst::Element::link_many(elements)?;
    for e in elements {
        e.sync_state_with_parent()?;
    }
    let sink = parser
        .static_pad("sink")
        .ok_or_else(|| MediaError::pipeline("parser without sink pad"))?;
    if codec.is_video() {
        trim_trailing_zeros(&sink);
    }
    pad.link(&sink)?;
    *slot = Some(Track {
        programme,
        pad: pad.clone(),
    });
    tracing::info!(stream = %ctx.stream, ?codec, "track attached");
    Ok(())
}

/// Cuts the trailing zero bytes off every buffer reaching a video parser
/// (sharing the buffer's memory, no copy). An encoder may end each PES
/// with `trailing_zero_8bits`; the parser then leaves that byte in its
/// queue, the next frame starts inside the previous buffer, and takes that
/// buffer's timestamps: every frame after it one frame off (seen with
/// x265 in MPEG-TS). A NAL unit never ends with a zero byte, so only
/// padding goes.
fn trim_trailing_zeros(parser_sink: &gst::Pad) {
    parser_sink.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
            let keep = buffer
                .map_readable()
                .ok()
                .map(|map| len_without_trailing_zeros(&map));
            if let Some(keep) = keep.filter(|&keep| keep > 0 && keep < buffer.size()) {
                let shared = gst::BufferCopyFlags::FLAGS
                    | gst::BufferCopyFlags::TIMESTAMPS
                    | gst::BufferCopyFlags::META
                    | gst::BufferCopyFlags::MEMORY;
                if let Ok(trimmed) = buffer.copy_region(shared, 0..keep) {
                    *buffer = trimmed;
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Notes the codec (and picture size) of a track, from its parsed caps.
fn record_track(codec: Codec, caps: &gst::CapsRef, stats: &SessionStats) {
    if codec.is_video() {
        let s = caps.structure(0);
        let dim = |f: &str| s.and_then(|s| s.get::<i32>(f).ok()).unwrap_or(0).max(0) as u32;
        stats.set_video(codec.name(), dim("width"), dim("height"));
    } else {
        stats.set_audio(codec.name());
    }
}

fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> MediaResult<()> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| MediaError::pipeline("fakesink without pad"))?;
    pad.link(&sink_pad)?;
    Ok(())
}

/// The tap: hands every access unit to in-process consumers as shared
/// bytes, and reports the stream LIVE on the first one.
fn tap_sink(codec: Codec, name: &str, ctx: &Arc<TrackContext>) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(ctx.paced)
        .build();
    sink.set_property("async", false);
    let ctx = Arc::clone(ctx);
    let mut first = true;
    // The track's format, from its units (parameter sets, ADTS headers)
    // or, for raw AAC, from its caps.
    let mut follower = FormatFollower::default();
    let mut last_caps: Option<gst::Caps> = None;
    let mut caps_format: Option<Arc<TrackFormat>> = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if std::mem::take(&mut first) {
                    if let Some(caps) = sample.caps() {
                        record_track(codec, caps, &ctx.stats);
                    }
                }
                let mut on_timeline = true;
                if let Some(buffer) = sample.buffer() {
                    let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
                    if codec.is_video() {
                        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        ctx.stats.add_video_frame(keyframe);
                        if let Some(pts) = pts {
                            ctx.timeline.on_video(pts, keyframe);
                        }
                    } else {
                        ctx.stats.add_audio_frame();
                        on_timeline = pts.is_none_or(|pts| ctx.timeline.admit_audio(pts));
                    }
                }
                if !ctx.went_live.swap(true, Ordering::SeqCst) {
                    (ctx.events)(PipelineEvent::Live);
                }
                if on_timeline && ctx.units.receiver_count() > 0 {
                    if let Some(caps) = sample.caps_owned() {
                        if last_caps.as_ref().map(|c| c.as_ptr()) != Some(caps.as_ptr()) {
                            caps_format = gst_format::raw_aac_format(&caps);
                            last_caps = Some(caps);
                        }
                    }
                    if let Some(mut unit) = sample
                        .buffer_owned()
                        .and_then(|b| gst_format::unit_of(codec, b, None))
                    {
                        unit.format =
                            follower.follow(codec, unit.keyframe, &unit.data, caps_format.as_ref());
                        let _ = ctx.units.send(unit);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}
