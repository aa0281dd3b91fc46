//! A GOP as a replay segment, made once per GOP on first request and
//! shared by every subscriber: MPEG-TS ([`crate::container::ts`]) or
//! fragmented MP4 split into the init segment and the GOP's fragment
//! ([`crate::container::fmp4`]), both written directly from the access
//! units. Timestamps are kept as they were received, so consecutive
//! segments concatenate into one continuous, playable stream.

use bytes::Bytes;

use super::buffer::Gop;
use super::parts::{Part, PartedGop};
use crate::container::boxes::children;
use crate::container::fmp4::{self, Fmp4Writer, Layout};
use crate::container::ts;
use crate::media::AccessUnit;
use crate::media::{MediaError, MediaResult};

/// The GOP's MPEG-TS bytes (blocking on first use).
pub fn mpeg_ts(gop: &Gop) -> MediaResult<Bytes> {
    gop.mpeg_ts(|| mux(gop))
}

/// The GOP as fragmented MP4: (init segment, fragment) (blocking on
/// first use).
pub fn fmp4(gop: &Gop) -> MediaResult<(Bytes, Bytes)> {
    gop.fmp4(|| fmp4_parts(gop))
}

fn fmp4_parts(gop: &Gop) -> MediaResult<(Bytes, Bytes)> {
    let units = gop.units().map_err(MediaError::io("reading replay"))?;
    let video = units.iter().find(|u| u.codec.is_video());
    let audio = units.iter().find(|u| !u.codec.is_video());
    match video.filter(|v| fmp4::supported(v, audio)) {
        Some(video) => direct_fmp4(&units, video, audio, gop.sequence as u32),
        None => Err(MediaError::Unsupported(
            "an fMP4 segment needs H.264 or H.265 video (and AAC audio)".into(),
        )),
    }
}

/// A low-latency part of `gop` as one fMP4 fragment on the stream's
/// timeline (numbered after its GOP and place), made once.
pub fn part_fmp4(gop: &PartedGop, part: &Part, index: usize) -> MediaResult<Bytes> {
    part.fmp4(|units| {
        let sequence = (gop.sequence as u32)
            .wrapping_mul(64)
            .wrapping_add(index as u32);
        let (_, fragment) = direct_fmp4(units, &gop.keyframe, gop.audio.as_ref(), sequence)?;
        Ok(fragment)
    })
}

/// The init segment (`ftyp` + `moov`) of the tracks of `keyframe` and
/// `audio`.
pub fn init_fmp4(keyframe: &AccessUnit, audio: Option<&AccessUnit>) -> MediaResult<Bytes> {
    if !fmp4::supported(keyframe, audio) {
        return Err(MediaError::Unsupported(
            "an fMP4 segment needs H.264 or H.265 video (and AAC audio)".into(),
        ));
    }
    let out = std::io::Cursor::new(Vec::new());
    let writer = Fmp4Writer::with_layout(out, keyframe, audio, Layout::segment(1))?;
    let init = writer
        .finish()
        .map_err(MediaError::io("writing fMP4"))?
        .into_inner();
    Ok(Bytes::from(init))
}

/// Written directly, on the stream's timeline.
fn direct_fmp4(
    units: &[AccessUnit],
    video: &AccessUnit,
    audio: Option<&AccessUnit>,
    sequence: u32,
) -> MediaResult<(Bytes, Bytes)> {
    let out = std::io::Cursor::new(Vec::new());
    let mut writer = Fmp4Writer::with_layout(out, video, audio, Layout::segment(sequence))?;
    for unit in units {
        writer.push(unit).map_err(MediaError::io("writing fMP4"))?;
    }
    let file = writer
        .finish()
        .map_err(MediaError::io("writing fMP4"))?
        .into_inner();
    split_init(&Bytes::from(file))
}

/// Splits a fragmented MP4 into what comes before the first `moof` (the
/// init segment: `ftyp` + `moov`) and the `moof` + `mdat` boxes.
fn split_init(file: &Bytes) -> MediaResult<(Bytes, Bytes)> {
    let top = children(file, 0, file.len());
    let moof = top
        .iter()
        .find(|b| &b.kind == b"moof")
        .ok_or_else(|| MediaError::Unsupported("no fragment in the MP4".into()))?;
    let end = top
        .iter()
        .find(|b| &b.kind == b"mfra")
        .map_or(file.len(), |b| b.start);
    Ok((file.slice(..moof.start), file.slice(moof.start..end)))
}

fn mux(gop: &Gop) -> MediaResult<Bytes> {
    let units = gop.units().map_err(MediaError::io("reading replay"))?;
    if !units.iter().any(|u| u.codec.is_video()) {
        return Err(MediaError::Unsupported(
            "a replay segment needs video".into(),
        ));
    }
    Ok(Bytes::from(ts::write(&units)))
}
