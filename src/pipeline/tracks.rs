//! Attaches each elementary stream that the source stage exposes to the
//! rest of the pipeline: `parser ! capsfilter ! tee`, with a tap on the tee
//! (an `appsink`) that turns access units into [`AccessUnit`]s for the
//! in-process features and marks the stream LIVE on its first frame.
//! Audio that is off the video's timeline is held back there
//! ([`super::timeline`]), so no feature ever sees it.
//! Every feature takes its units from that one tap, so the stream is
//! demuxed and parsed exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::broadcast;

use super::gst_util::named_element;
use super::media::{AccessUnit, Codec};
use super::timeline::TimelineGuard;
use crate::proto::v1::StreamState;
use crate::streams::{LiveStream, SessionStats};

/// What the per-pad callbacks need; shared by all tracks of one pipeline.
pub(crate) struct TrackContext {
    pub stream: Arc<LiveStream>,
    pub stats: Arc<SessionStats>,
    pub units: broadcast::Sender<AccessUnit>,
    pub live_message: String,
    /// Sinks synchronize to the clock (paced sources).
    pub paced: bool,
    pub has_video: AtomicBool,
    pub has_audio: AtomicBool,
    pub went_live: AtomicBool,
    /// Keeps audio on the video's timeline.
    pub timeline: TimelineGuard,
}

/// Links a new source pad: a supported codec gets a parse chain and a tee,
/// anything else (or a second track of a kind) is sent to a `fakesink` so
/// it never blocks the demuxer.
pub(crate) fn attach_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    ctx: &Arc<TrackContext>,
) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let codec = Codec::from_caps(&caps);
    let first_of_kind = match codec {
        Some(c) if c.is_video() => !ctx.has_video.swap(true, Ordering::SeqCst),
        Some(_) => !ctx.has_audio.swap(true, Ordering::SeqCst),
        None => false,
    };
    let Some(codec) = codec.filter(|_| first_of_kind) else {
        tracing::warn!(stream = %ctx.stream.stream_ref, pad = %pad.name(), caps = %caps, "ignoring unsupported or extra track");
        return discard(pipeline, pad);
    };

    let track = codec.track_name();
    let (parser_factory, out_caps) = codec.parser();
    let parser = named_element(parser_factory, &format!("{track}_parse"))?;
    if codec.is_video() {
        parser.set_property("config-interval", -1i32);
    }
    let filter = named_element("capsfilter", &format!("{track}_caps"))?;
    if let Some(c) = out_caps {
        let c: gst::Caps = c.parse().map_err(|_| format!("bad caps {c}"))?;
        filter.set_property("caps", &c);
    }
    let tee = gst::ElementFactory::make("tee")
        .name(format!("{track}_tee"))
        .property("allow-not-linked", true)
        .build()
        .map_err(|e| e.to_string())?;
    let tap = tap_sink(codec, track, ctx);

    let elements = [&parser, &filter, &tee, tap.upcast_ref()];
    pipeline.add_many(elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(elements).map_err(|e| e.to_string())?;
    for e in elements {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sink = parser.static_pad("sink").ok_or("parser without sink pad")?;
    pad.link(&sink)
        .map_err(|e| format!("linking {track}: {e:?}"))?;
    tracing::info!(stream = %ctx.stream.stream_ref, ?codec, "track attached");
    Ok(())
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

fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    let sink_pad = sink.static_pad("sink").ok_or("fakesink without pad")?;
    pad.link(&sink_pad).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// The tap: hands every access unit to in-process consumers as shared
/// bytes, and reports the stream LIVE on the first one.
fn tap_sink(codec: Codec, track: &str, ctx: &Arc<TrackContext>) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(format!("{track}_tap"))
        .sync(ctx.paced)
        .build();
    sink.set_property("async", false);
    let ctx = Arc::clone(ctx);
    let mut first = true;
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
                    ctx.stream
                        .set_state(StreamState::Live, ctx.live_message.clone());
                }
                if on_timeline && ctx.units.receiver_count() > 0 {
                    if let Some(unit) = sample
                        .buffer_owned()
                        .and_then(|b| AccessUnit::from_buffer(codec, b, sample.caps_owned()))
                    {
                        let _ = ctx.units.send(unit);
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}
