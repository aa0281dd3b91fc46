//! A motion clip from a run of access units that starts at a keyframe:
//! - `MP4`: remuxed, video and audio, nothing decoded, by
//!   [`crate::container::mp4`] directly;
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

use super::geometry::even;
use crate::container::mp4;
use crate::gst_util;
use crate::gst_util::element;
use crate::media::{earliest_decode_time, AccessUnit};
use crate::media::{MediaError, MediaResult};
use crate::options::ClipFormat;

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
pub fn build(units: &[AccessUnit], format: ClipFormat, preview_width: u32) -> MediaResult<Clip> {
    let first = units
        .iter()
        .find(|u| u.codec.is_video())
        .ok_or_else(|| MediaError::Unsupported("clip without video".into()))?;
    let size = first
        .picture_size()
        .ok_or_else(|| MediaError::Unsupported("video format without size".into()))?;
    let offset = earliest_decode_time(units).unwrap_or_default();
    let (video, audio) = split_tracks(units);
    match format {
        ClipFormat::Mp4 => Ok(Clip {
            width: size.0,
            height: size.1,
            data: remux_mp4(&video, &audio)?,
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

fn caps_of(units: &[&AccessUnit]) -> MediaResult<gst::Caps> {
    units
        .first()
        .and_then(|u| crate::gst_format::caps_of_unit(u))
        .ok_or_else(|| MediaError::Unsupported("units without a track format".into()))
}

fn mp4_muxer() -> MediaResult<gst::Element> {
    gst::ElementFactory::make("mp4mux")
        .property("faststart", true)
        .build()
        .map_err(|_| MediaError::MissingElement("mp4mux".into()))
}

fn remux_mp4(video: &[&AccessUnit], audio: &[&AccessUnit]) -> MediaResult<Bytes> {
    check_supported(video, audio)?;
    let mut out = Vec::new();
    mp4::write(video, audio, &mut out)?;
    Ok(Bytes::from(out))
}

fn check_supported(video: &[&AccessUnit], audio: &[&AccessUnit]) -> MediaResult<()> {
    if mp4::supported(video, audio) {
        Ok(())
    } else {
        Err(MediaError::Unsupported(
            "an MP4 clip needs H.264 or H.265 video (and AAC audio)".into(),
        ))
    }
}

/// Remuxes `units` (decode order, first a video keyframe) into an MP4 file
/// at `path` with its index at the front: the muxer reserves room for the
/// index when it starts and fills it in at the end, so the file is written
/// once, with no faststart copy. Blocking; returns the file size.
pub fn write_mp4(
    units: &[AccessUnit],
    span: Option<mp4::Span>,
    path: &std::path::Path,
) -> MediaResult<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let size = write_span(units, span, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(size)
}

/// [`write_mp4`] into memory.
pub fn mp4_bytes(units: &[AccessUnit], span: Option<mp4::Span>) -> MediaResult<Bytes> {
    let mut out = Vec::new();
    write_span(units, span, &mut out)?;
    Ok(Bytes::from(out))
}

fn write_span(
    units: &[AccessUnit],
    span: Option<mp4::Span>,
    out: &mut impl std::io::Write,
) -> MediaResult<u64> {
    let (video, audio) = split_tracks(units);
    check_supported(&video, &audio)?;
    mp4::write_span(&video, &audio, span, out)
}

/// `appsrc ! parse ! decode ! videorate? ! scale ! <tail>`, fed with the
/// clip's video.
fn decoded_pipeline(
    video: &[&AccessUnit],
    offset: Duration,
    raw_caps: gst::Caps,
    tail: &[gst::Element],
) -> MediaResult<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink)> {
    let pipeline = gst::Pipeline::new();
    let src = gst_util::unit_source(&caps_of(video)?);
    let (parse, decode) = gst_util::video_decoder(video[0].codec)?;
    let rate = element("videorate")?;
    let scale = element("videoscale")?;
    let convert = element("videoconvert")?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", raw_caps)
        .build()?;
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
    pipeline.add_many(elements.iter().copied())?;
    gst::Element::link_many(elements.iter().copied())?;
    gst_util::feed(&src, video, offset)?;
    Ok((pipeline, src, sink))
}

fn preview_mp4(video: &[&AccessUnit], offset: Duration, (w, h): (u32, u32)) -> MediaResult<Bytes> {
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
        .map_err(|_| MediaError::MissingElement("x264enc".into()))?;
    let parse = element("h264parse")?;
    let mux = mp4_muxer()?;
    let (pipeline, _src, sink) = decoded_pipeline(video, offset, raw, &[encode, parse, mux])?;
    let samples = gst_util::collect(&pipeline, &sink)?;
    Ok(Bytes::from(gst_util::concat(&samples)?))
}

fn gif(video: &[&AccessUnit], offset: Duration, (w, h): (u32, u32)) -> MediaResult<Bytes> {
    let raw = gst::Caps::builder("video/x-raw")
        .field("format", "RGBA")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(GIF_FPS, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    let (pipeline, _src, sink) = decoded_pipeline(video, offset, raw, &[])?;
    let samples = gst_util::collect(&pipeline, &sink)?;
    if samples.is_empty() {
        return Err(MediaError::Unsupported(
            "the clip decoded to no frames".into(),
        ));
    }
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, w as u16, h as u16, &[]).map_err(MediaError::pipeline)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(MediaError::pipeline)?;
        for sample in &samples {
            let buffer = sample
                .buffer()
                .ok_or_else(|| MediaError::Unsupported("frame without buffer".into()))?;
            let map = buffer
                .map_readable()
                .map_err(|_| MediaError::pipeline("unreadable frame"))?;
            let mut rgba = map.to_vec();
            let mut frame = gif::Frame::from_rgba_speed(w as u16, h as u16, &mut rgba, 10);
            frame.delay = (100 / GIF_FPS) as u16;
            encoder.write_frame(&frame).map_err(MediaError::pipeline)?;
        }
    }
    Ok(Bytes::from(out))
}
