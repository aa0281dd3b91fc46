//! Small GStreamer helpers shared by the stream pipelines and the
//! short-lived job pipelines (stills, clips, recording files, recovery).

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

/// A new element of `factory`; the error names the missing element.
pub fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is missing (install its plugin package)"))
}

/// A new element of `factory` named `name` (names show in logs and
/// errors).
pub fn named_element(factory: &str, name: &str) -> Result<gst::Element, String> {
    let e = element(factory)?;
    e.set_property("name", name);
    Ok(e)
}

fn describe(err: &gst::message::Error) -> String {
    match err.src() {
        Some(src) => format!("{}: {}", src.name(), err.error()),
        None => err.error().to_string(),
    }
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
        "tee",
        "avdec_h264",
        "avdec_h265",
        "videoconvert",
        "videoscale",
        "capsfilter",
        "jpegenc",
        "pngenc",
        "webpenc",
        "mp4mux",
        "mpegtsmux",
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
pub fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let msg = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(describe(err)),
        _ => None,
    }
}

/// Waits (up to `timeout`) for the playing pipeline to reach end-of-stream;
/// an error on the bus ends the wait with its message.
pub fn wait_for_end(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(err)) => Err(describe(err)),
        _ => Err(format!("did not finish within {} s", timeout.as_secs())),
    }
}

/// Plays `pipeline` until end-of-stream (at most `timeout`), then stops it.
pub fn play_to_end(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), String> {
    let result = pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| first_error(pipeline).unwrap_or_else(|| "pipeline failed to start".into()))
        .and_then(|_| wait_for_end(pipeline, timeout));
    let _ = pipeline.set_state(gst::State::Null);
    result
}
