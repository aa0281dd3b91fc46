//! A GOP as a replay segment, made once per GOP on first request and
//! shared by every subscriber: MPEG-TS (written directly by
//! [`super::ts_mux`]; `mpegtsmux` for AAC that is not ADTS), or fragmented MP4
//! split into the init segment and the GOP's fragment (written directly by
//! [`crate::container::fmp4`] for H.264; `mp4mux` for H.265). Timestamps are kept as they were received, so
//! consecutive segments concatenate into one continuous, playable stream.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::buffer::Gop;
use super::fmp4_boxes;
use super::ts_mux;
use crate::container::fmp4::{self, Fmp4Writer, Layout};
use crate::pipeline::gst_util::element;
use crate::pipeline::{earliest_decode_time, AccessUnit};
use crate::processing::gst_job::{self, JobResult};

/// The GOP's MPEG-TS bytes (blocking on first use).
pub fn mpeg_ts(gop: &Gop) -> JobResult<Bytes> {
    gop.mpeg_ts(|| mux(gop))
}

/// The GOP as fragmented MP4: (init segment, fragment) (blocking on
/// first use).
pub fn fmp4(gop: &Gop) -> JobResult<(Bytes, Bytes)> {
    gop.fmp4(|| fmp4_parts(gop))
}

fn fmp4_parts(gop: &Gop) -> JobResult<(Bytes, Bytes)> {
    let units = gop.units().map_err(|e| format!("reading replay: {e}"))?;
    let video = units.iter().find(|u| u.codec.is_video());
    let audio = units.iter().find(|u| !u.codec.is_video());
    if let Some(video) = video.filter(|v| fmp4::supported(v, audio)) {
        return direct_fmp4(&units, video, audio, gop.sequence as u32);
    }
    muxed_fmp4(gop, &units)
}

/// H.264 (+ AAC): written directly, on the stream's timeline.
fn direct_fmp4(
    units: &[AccessUnit],
    video: &AccessUnit,
    audio: Option<&AccessUnit>,
    sequence: u32,
) -> JobResult<(Bytes, Bytes)> {
    let out = std::io::Cursor::new(Vec::new());
    let mut writer = Fmp4Writer::with_layout(out, video, audio, Layout::segment(sequence))?;
    for unit in units {
        writer
            .push(unit)
            .map_err(|e| format!("writing fMP4: {e}"))?;
    }
    let file = writer
        .finish()
        .map_err(|e| format!("writing fMP4: {e}"))?
        .into_inner();
    split_init(&Bytes::from(file))
}

/// Other codecs (H.265): `mp4mux`, retimed onto the stream's timeline.
fn muxed_fmp4(gop: &Gop, units: &[AccessUnit]) -> JobResult<(Bytes, Bytes)> {
    let muxer = gst::ElementFactory::make("mp4mux")
        .property("fragment-duration", 3_600_000u32)
        .property("streamable", true)
        .build()
        .map_err(|_| "mp4mux is missing".to_string())?;
    let file = mux_with(units, muxer, true)?;
    let (init, fragment) = split_init(&file)?;
    // The muxer started this GOP's decode times at zero: put them back on
    // the stream's timeline so that fragments follow one another.
    let scales = fmp4_boxes::timescales(&init);
    let mut fragment = fragment.to_vec();
    let first_of =
        |video: bool| earliest_decode_time(units.iter().filter(|u| u.codec.is_video() == video));
    // mp4mux numbers tracks in the order their pads were linked: video
    // first, then audio.
    let has_video = units.iter().any(|u| u.codec.is_video());
    fmp4_boxes::retime(
        &mut fragment,
        &scales,
        gop.sequence as u32,
        |track| match (track, has_video) {
            (1, true) => first_of(true),
            _ => first_of(false),
        },
    );
    Ok((init, Bytes::from(fragment)))
}

/// Splits a fragmented MP4 into what comes before the first `moof` (the
/// init segment: `ftyp` + `moov`) and the `moof` + `mdat` boxes.
fn split_init(file: &Bytes) -> JobResult<(Bytes, Bytes)> {
    let mut at = 0;
    let mut first_moof = None;
    let mut end = file.len();
    while at + 8 <= file.len() {
        let size = u32::from_be_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &file[at + 4..at + 8];
        if size < 8 || at + size > file.len() {
            return Err("malformed MP4 box".into());
        }
        match kind {
            b"moof" if first_moof.is_none() => first_moof = Some(at),
            b"mfra" => {
                end = at;
                break;
            }
            _ => {}
        }
        at += size;
    }
    let moof = first_moof.ok_or("no fragment in the MP4")?;
    Ok((file.slice(..moof), file.slice(moof..end)))
}

fn mux(gop: &Gop) -> JobResult<Bytes> {
    let units = gop.units().map_err(|e| format!("reading replay: {e}"))?;
    if ts_mux::supported(&units) {
        return Ok(Bytes::from(ts_mux::write(&units)));
    }
    mux_with(&units, element("mpegtsmux")?, false)
}

/// Muxes the GOP's units with `mux`; `parse` puts parsers in front (MP4
/// needs the stream formats converted).
fn mux_with(units: &[AccessUnit], mux: gst::Element, parse: bool) -> JobResult<Bytes> {
    let pipeline = gst::Pipeline::new();
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many([&mux, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    mux.link(&sink).map_err(|e| e.to_string())?;
    let mut inputs = vec![];
    for video in [true, false] {
        let units: Vec<_> = units
            .iter()
            .filter(|u| u.codec.is_video() == video)
            .collect();
        let Some(caps) = units.first().and_then(|u| u.caps.clone()) else {
            continue;
        };
        let src = gst_job::unit_source(&caps);
        pipeline.add(&src).map_err(|e| e.to_string())?;
        if parse {
            let parser = element(units[0].codec.parser().0)?;
            pipeline.add(&parser).map_err(|e| e.to_string())?;
            src.link(&parser).map_err(|e| e.to_string())?;
            parser.link(&mux).map_err(|e| e.to_string())?;
        } else {
            src.link(&mux).map_err(|e| e.to_string())?;
        }
        inputs.push((src, units));
    }
    for (src, units) in &inputs {
        gst_job::feed(src, units, Duration::ZERO)?;
    }
    let samples = gst_job::collect(&pipeline, &sink)?;
    Ok(Bytes::from(gst_job::concat(&samples)?))
}
