//! Short-lived GStreamer pipelines for one job (one still, one clip):
//! `appsrc`s fed with encoded access units, an `appsink` collecting the
//! result. Run on a blocking worker thread; they exist only while the job
//! runs, so no decoder stays alive between thumbnails.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::pipeline::gst_util::{element, first_error};
use crate::pipeline::{AccessUnit, Codec};

/// How long one job may take before it is abandoned.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub type JobResult<T> = Result<T, String>;

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
pub fn video_decoder(codec: Codec) -> JobResult<(gst::Element, gst::Element)> {
    match codec {
        Codec::H264 => Ok((element("h264parse")?, single_threaded("avdec_h264")?)),
        Codec::H265 => Ok((element("h265parse")?, single_threaded("avdec_h265")?)),
        Codec::Aac => Err("not a video codec".into()),
    }
}

/// A libav decoder on the job's own thread: a job decodes a few frames,
/// for which decoder threads are only start-up cost and latency (jobs run
/// in parallel instead).
fn single_threaded(name: &str) -> JobResult<gst::Element> {
    gst::ElementFactory::make(name)
        .property("max-threads", 1i32)
        .build()
        .map_err(|_| format!("{name} is missing"))
}

/// Pushes `units` (timestamps shifted by `-offset`) then end-of-stream.
pub fn feed(src: &gst_app::AppSrc, units: &[&AccessUnit], offset: Duration) -> JobResult<()> {
    for unit in units {
        src.push_buffer(unit.to_buffer(offset))
            .map_err(|e| format!("feeding job: {e:?}"))?;
    }
    src.end_of_stream()
        .map_err(|e| format!("ending job input: {e:?}"))?;
    Ok(())
}

/// Plays `pipeline` until end-of-stream and returns every sample `sink`
/// received. Errors carry the failing element's message.
pub fn collect(pipeline: &gst::Pipeline, sink: &gst_app::AppSink) -> JobResult<Vec<gst::Sample>> {
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "job pipeline failed to start".to_string())?;
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        let mut samples = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match sink.try_pull_sample(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) {
                Some(sample) => samples.push(sample),
                None if sink.is_eos() => return Ok(samples),
                None => return Err(first_error(pipeline).unwrap_or_else(|| "job timed out".into())),
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Joins the bytes of every sample (an encoder's or muxer's output).
pub fn concat(samples: &[gst::Sample]) -> JobResult<Vec<u8>> {
    let mut out = Vec::new();
    for sample in samples {
        let buffer = sample.buffer().ok_or("sample without buffer")?;
        let map = buffer.map_readable().map_err(|_| "unreadable buffer")?;
        out.extend_from_slice(&map);
    }
    Ok(out)
}

/// An even size (what 4:2:0 video needs), at least 2.
pub fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The output size for a source of `src` scaled to `width` and/or
/// `height`, keeping the aspect ratio (fitting inside when both are set).
pub fn fit(src: (u32, u32), width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    let (sw, sh) = (src.0 as f64, src.1 as f64);
    match (width, height) {
        (None, None) => src,
        (Some(w), None) => (even(w as f64), even(w as f64 * sh / sw)),
        (None, Some(h)) => (even(h as f64 * sw / sh), even(h as f64)),
        (Some(w), Some(h)) => {
            let scale = (w as f64 / sw).min(h as f64 / sh);
            (even(sw * scale), even(sh * scale))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit((1920, 1080), None, None), (1920, 1080));
        assert_eq!(fit((1920, 1080), Some(320), None), (320, 180));
        assert_eq!(fit((1920, 1080), None, Some(360)), (640, 360));
        assert_eq!(fit((1920, 1080), Some(320), Some(320)), (320, 180));
        assert_eq!(fit((640, 360), Some(100), None), (100, 56));
    }
}
