//! The crate's GStreamer helpers, in one place: making elements, reading
//! a pipeline's errors, playing a pipeline to its end, and the parts of
//! the job pipelines that decode or encode (thumbnails and other stills,
//! motion-clip previews and GIFs): `appsrc`s fed with encoded access units
//! and an `appsink` collecting the result. They run on the job threads.
//! Recordings, replay segments and clips are written by our own
//! containers ([`crate::container`]), with no pipeline; only the start-up
//! repair of files that earlier versions wrote with `mp4mux` still plays
//! one (`qtdemux ! mp4mux`).

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::media::{AccessUnit, Codec, MediaError, MediaResult};

/// How long one job may take before it is abandoned.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A new element of `factory`; the error names the missing element.
pub fn element(factory: &str) -> MediaResult<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::MissingElement(factory.to_string()))
}

/// A new element of `factory` named `name` (names show in logs and
/// errors).
pub fn named_element(factory: &str, name: &str) -> MediaResult<gst::Element> {
    let e = element(factory)?;
    e.set_property("name", name);
    Ok(e)
}

fn describe(err: &gst::message::Error) -> String {
    let text = match err.src() {
        Some(src) => format!("{}: {}", src.name(), err.error()),
        None => err.error().to_string(),
    };
    crate::redact::text(&text)
}

/// Loads the plugins of every element liveproc uses.
pub fn preload_plugins() {
    const USED: &[&str] = &[
        "appsrc",
        "appsink",
        "tsdemux",
        "h264parse",
        "h265parse",
        "aacparse",
        "avdec_h264",
        "avdec_h265",
        "videoconvert",
        "videoscale",
        "capsfilter",
        "jpegenc",
        "pngenc",
        "webpenc",
        "mp4mux",
        "filesink",
        "urisourcebin",
        "parsebin",
    ];
    for name in USED {
        if let Some(factory) = gst::ElementFactory::find(name) {
            let _ = factory.load();
        }
    }
}

/// The first error posted on the pipeline's bus, if any (other messages
/// stay queued).
pub fn first_error(pipeline: &gst::Pipeline) -> Option<MediaError> {
    let msg = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(MediaError::Pipeline(describe(err))),
        _ => None,
    }
}

/// Waits (up to `timeout`) for the playing pipeline to reach end-of-stream;
/// an error on the bus ends the wait with its message.
pub fn wait_for_end(pipeline: &gst::Pipeline, timeout: Duration) -> MediaResult<()> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| MediaError::pipeline("pipeline without bus"))?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(err)) => Err(MediaError::Pipeline(describe(err))),
        _ => Err(MediaError::TimedOut),
    }
}

/// How long a pipeline that failed to start is given to post why (an
/// element may post its error just after the state change returns).
const START_ERROR_WAIT: Duration = Duration::from_millis(500);

/// Starts `pipeline`; a failure carries the failing element's message,
/// and the element's debug text goes to the log (both redacted: they may
/// quote a URI with its credentials).
pub fn start(pipeline: &gst::Pipeline) -> MediaResult<()> {
    pipeline
        .set_state(gst::State::Playing)
        .map(|_| ())
        .map_err(|_| {
            let posted = pipeline.bus().and_then(|bus| {
                bus.timed_pop_filtered(
                    gst::ClockTime::from_nseconds(START_ERROR_WAIT.as_nanos() as u64),
                    &[gst::MessageType::Error],
                )
            });
            match posted.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(err)) => {
                    tracing::warn!(
                        error = %describe(err),
                        debug = ?err.debug().map(|d| crate::redact::text(&d)),
                        "pipeline failed to start"
                    );
                    MediaError::Pipeline(describe(err))
                }
                _ => MediaError::pipeline("pipeline failed to start"),
            }
        })
}

/// Plays `pipeline` until end-of-stream (at most `timeout`), then stops it.
pub fn play_to_end(pipeline: &gst::Pipeline, timeout: Duration) -> MediaResult<()> {
    let result = start(pipeline).and_then(|_| wait_for_end(pipeline, timeout));
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// An `appsrc` for units of one track, in time format.
pub fn unit_source(caps: &gst::Caps) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        .max_bytes(0)
        .build()
}

/// The parser and decoder elements of a video codec.
pub fn video_decoder(codec: Codec) -> MediaResult<(gst::Element, gst::Element)> {
    match codec {
        Codec::H264 => Ok((element("h264parse")?, single_threaded("avdec_h264")?)),
        Codec::H265 => Ok((element("h265parse")?, single_threaded("avdec_h265")?)),
        Codec::Aac => Err(MediaError::Unsupported("AAC is not a video codec".into())),
    }
}

/// A libav decoder on the job's own thread: a job decodes a few frames,
/// for which decoder threads are only start-up cost and latency (jobs run
/// in parallel instead).
fn single_threaded(name: &str) -> MediaResult<gst::Element> {
    gst::ElementFactory::make(name)
        .property("max-threads", 1i32)
        .build()
        .map_err(|_| MediaError::MissingElement(name.to_string()))
}

/// Pushes `units` (timestamps shifted by `-offset`) then end-of-stream.
pub fn feed(src: &gst_app::AppSrc, units: &[&AccessUnit], offset: Duration) -> MediaResult<()> {
    for unit in units {
        src.push_buffer(crate::gst_format::buffer_of(unit, offset))?;
    }
    src.end_of_stream()?;
    Ok(())
}

/// Plays `pipeline` until end-of-stream and returns every sample `sink`
/// received. Errors carry the failing element's message.
pub fn collect(pipeline: &gst::Pipeline, sink: &gst_app::AppSink) -> MediaResult<Vec<gst::Sample>> {
    let result = (|| {
        start(pipeline)?;
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        let mut samples = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match sink.try_pull_sample(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) {
                Some(sample) => samples.push(sample),
                None if sink.is_eos() => return Ok(samples),
                None => return Err(first_error(pipeline).unwrap_or(MediaError::TimedOut)),
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Joins the bytes of every sample (an encoder's or muxer's output).
pub fn concat(samples: &[gst::Sample]) -> MediaResult<Vec<u8>> {
    let mut out = Vec::new();
    for sample in samples {
        let buffer = sample
            .buffer()
            .ok_or_else(|| MediaError::pipeline("sample without buffer"))?;
        let map = buffer
            .map_readable()
            .map_err(|_| MediaError::pipeline("unreadable buffer"))?;
        out.extend_from_slice(&map);
    }
    Ok(out)
}
