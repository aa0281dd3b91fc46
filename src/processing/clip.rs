//! A motion clip from a run of access units that starts at a keyframe:
//! - `MP4`: remuxed, video and audio, nothing decoded: H.264 + AAC by
//!   [`crate::container::mp4`] directly, H.265 through `parse ! mp4mux`;
//! - `MP4_PREVIEW`: decoded, scaled, re-encoded as low-bitrate H.264
//!   without audio;
//! - `GIF`: decoded, scaled, 5 frames per second, encoded by the `gif`
//!   crate.
//!
//! Only the preview formats decode, and only the frames of the clip.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::gst_job::{self, even, JobResult};
use crate::container::mp4;
use crate::options::ClipFormat;
use crate::pipeline::gst_util::{element, play_to_end};
use crate::pipeline::{earliest_decode_time, AccessUnit};

/// Frames per second of GIF clips.
pub const GIF_FPS: i32 = 5;
/// Bitrate of MP4_PREVIEW clips, kbit/s.
pub const PREVIEW_KBPS: u32 = 300;

pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub data: Bytes,
}

/// Builds a clip of `format` from `units` (decode order, first one a video
/// keyframe). Blocking.
pub fn build(units: &[AccessUnit], format: ClipFormat, preview_width: u32) -> JobResult<Clip> {
    let first = units
        .iter()
        .find(|u| u.codec.is_video())
        .ok_or("clip without video")?;
    let size = first.picture_size().ok_or("video caps without size")?;
    let offset = earliest_decode_time(units).unwrap_or_default();
    let (video, audio) = split_tracks(units);
    match format {
        ClipFormat::Mp4 => Ok(Clip {
            width: size.0,
            height: size.1,
            data: remux_mp4(&video, &audio, offset)?,
        }),
        ClipFormat::Mp4Preview => {
            let (w, h) = scaled(size, preview_width);
            Ok(Clip {
                width: w,
                height: h,
                data: preview_mp4(&video, offset, (w, h))?,
            })
        }
        ClipFormat::Gif => {
            let (w, h) = scaled(size, preview_width);
            Ok(Clip {
                width: w,
                height: h,
                data: gif(&video, offset, (w, h))?,
            })
        }
    }
}

/// The video units and the audio units, each in order.
fn split_tracks(units: &[AccessUnit]) -> (Vec<&AccessUnit>, Vec<&AccessUnit>) {
    units.iter().partition(|u| u.codec.is_video())
}

fn scaled(size: (u32, u32), width: u32) -> (u32, u32) {
    let width = width.min(size.0);
    (
        even(width as f64),
        even(width as f64 * size.1 as f64 / size.0 as f64),
    )
}

fn caps_of(units: &[&AccessUnit]) -> JobResult<gst::Caps> {
    units
        .first()
        .and_then(|u| u.caps.clone())
        .ok_or_else(|| "units without caps".to_string())
}

fn mp4_muxer() -> JobResult<gst::Element> {
    gst::ElementFactory::make("mp4mux")
        .property("faststart", true)
        .build()
        .map_err(|_| "mp4mux is missing".to_string())
}

fn remux_mp4(video: &[&AccessUnit], audio: &[&AccessUnit], offset: Duration) -> JobResult<Bytes> {
    if mp4::supported(video, audio) {
        let mut out = Vec::new();
        mp4::write(video, audio, &mut out)?;
        return Ok(Bytes::from(out));
    }
    let sink = gst_app::AppSink::builder().sync(false).build();
    let pipeline = mp4_pipeline(video, audio, offset, mp4_muxer()?, sink.upcast_ref())?;
    let samples = gst_job::collect(&pipeline, &sink)?;
    Ok(Bytes::from(gst_job::concat(&samples)?))
}

/// Remuxes `units` (decode order, first a video keyframe) into an MP4 file
/// at `path` with its index at the front: the muxer reserves room for the
/// index when it starts and fills it in at the end, so the file is written
/// once, with no faststart copy. Blocking; returns the file size.
pub fn write_mp4(units: &[AccessUnit], path: &std::path::Path) -> JobResult<u64> {
    let (video, audio) = split_tracks(units);
    if mp4::supported(&video, &audio) {
        let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let size = mp4::write(&video, &audio, &mut out)?;
        let file = out.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        return Ok(size);
    }
    let offset = earliest_decode_time(units).unwrap_or_default();
    let span = units
        .iter()
        .filter_map(|u| u.pts)
        .max()
        .unwrap_or_default()
        .saturating_sub(offset);
    let mux = gst::ElementFactory::make("mp4mux")
        .property(
            "reserved-max-duration",
            (span + Duration::from_secs(10)).as_nanos() as u64,
        )
        .build()
        .map_err(|_| "mp4mux is missing".to_string())?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .map_err(|_| "filesink is missing".to_string())?;
    let pipeline = mp4_pipeline(&video, &audio, offset, mux, &sink)?;
    play_to_end(&pipeline, gst_job::JOB_TIMEOUT)?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(file.metadata().map_err(|e| e.to_string())?.len())
}

/// `appsrc ! parse` per track into `mux ! sink`, fed and ready to play.
fn mp4_pipeline(
    video: &[&AccessUnit],
    audio: &[&AccessUnit],
    offset: Duration,
    mux: gst::Element,
    sink: &gst::Element,
) -> JobResult<gst::Pipeline> {
    let pipeline = gst::Pipeline::new();
    pipeline.add_many([&mux, sink]).map_err(|e| e.to_string())?;
    mux.link(sink).map_err(|e| e.to_string())?;
    let mut inputs = vec![];
    for (units, parser) in [(video, video_parser(video)?), (audio, "aacparse")] {
        if units.is_empty() {
            continue;
        }
        let src = gst_job::unit_source(&caps_of(units)?);
        let parse = element(parser)?;
        pipeline
            .add_many([src.upcast_ref(), &parse])
            .map_err(|e| e.to_string())?;
        src.link(&parse).map_err(|e| e.to_string())?;
        parse.link(&mux).map_err(|e| e.to_string())?;
        inputs.push((src, units));
    }
    for (src, units) in &inputs {
        gst_job::feed(src, units, offset)?;
    }
    Ok(pipeline)
}

fn video_parser(video: &[&AccessUnit]) -> JobResult<&'static str> {
    Ok(video.first().ok_or("clip without video")?.codec.parser().0)
}

/// `appsrc ! parse ! decode ! videorate? ! scale ! <tail>`, fed with the
/// clip's video.
fn decoded_pipeline(
    video: &[&AccessUnit],
    offset: Duration,
    raw_caps: gst::Caps,
    tail: &[gst::Element],
) -> JobResult<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink)> {
    let pipeline = gst::Pipeline::new();
    let src = gst_job::unit_source(&caps_of(video)?);
    let (parse, decode) = gst_job::video_decoder(video[0].codec)?;
    let rate = element("videorate")?;
    let scale = element("videoscale")?;
    let convert = element("videoconvert")?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", raw_caps)
        .build()
        .map_err(|e| e.to_string())?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut elements: Vec<&gst::Element> = vec![
        src.upcast_ref(),
        &parse,
        &decode,
        &rate,
        &scale,
        &convert,
        &filter,
    ];
    elements.extend(tail.iter());
    elements.push(sink.upcast_ref());
    pipeline
        .add_many(elements.iter().copied())
        .map_err(|e| e.to_string())?;
    gst::Element::link_many(elements.iter().copied()).map_err(|e| e.to_string())?;
    gst_job::feed(&src, video, offset)?;
    Ok((pipeline, src, sink))
}

fn preview_mp4(video: &[&AccessUnit], offset: Duration, (w, h): (u32, u32)) -> JobResult<Bytes> {
    let raw = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    let encode = gst::ElementFactory::make("x264enc")
        .property("bitrate", PREVIEW_KBPS)
        .property_from_str("speed-preset", "veryfast")
        .property("key-int-max", 60u32)
        .build()
        .map_err(|_| "x264enc is missing (gst-plugins-ugly)")?;
    let parse = element("h264parse")?;
    let mux = mp4_muxer()?;
    let (pipeline, _src, sink) = decoded_pipeline(video, offset, raw, &[encode, parse, mux])?;
    let samples = gst_job::collect(&pipeline, &sink)?;
    Ok(Bytes::from(gst_job::concat(&samples)?))
}

fn gif(video: &[&AccessUnit], offset: Duration, (w, h): (u32, u32)) -> JobResult<Bytes> {
    let raw = gst::Caps::builder("video/x-raw")
        .field("format", "RGBA")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(GIF_FPS, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    let (pipeline, _src, sink) = decoded_pipeline(video, offset, raw, &[])?;
    let samples = gst_job::collect(&pipeline, &sink)?;
    if samples.is_empty() {
        return Err("the clip decoded to no frames".into());
    }
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w as u16, h as u16, &[])
            .map_err(|e| format!("gif: {e}"))?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(|e| format!("gif: {e}"))?;
        for sample in &samples {
            let buffer = sample.buffer().ok_or("frame without buffer")?;
            let map = buffer.map_readable().map_err(|_| "unreadable frame")?;
            let mut rgba = map.to_vec();
            let mut frame = gif::Frame::from_rgba_speed(w as u16, h as u16, &mut rgba, 10);
            frame.delay = (100 / GIF_FPS) as u16;
            encoder
                .write_frame(&frame)
                .map_err(|e| format!("gif: {e}"))?;
        }
    }
    Ok(Bytes::from(out))
}
