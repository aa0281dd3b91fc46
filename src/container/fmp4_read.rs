//! Reading recordings back: the fragmented MP4 files [`super::fmp4`]
//! writes (and others of the same shape: one `moov` without samples, then
//! `moof` + `mdat` pairs). [`Tracks::parse`] reads the init segment's
//! tracks (time scale and format, from `avcC`, `hvcC` or `esds`);
//! [`Fragment::parse`] reads a `moof`'s samples (decode time, composition
//! offset, size, sync, where the bytes are); [`Tracks::access_unit`]
//! turns a sample's bytes back into the access unit the parsers make
//! (Annex-B, the parameter sets in front of a keyframe; raw AAC), which
//! is what the still makers and the container writers take.
//!
//! A reader of a long file does not walk every box: [`fragment_start`]
//! finds the first `moof` in any window of bytes, so a search by time
//! can read a few small ranges ([`Fragment::video_time`] of each).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::boxes::{child, children, read_u32, read_u64, BoxRef};
use crate::media::{ticks_to_duration, AccessUnit, Codec, MediaError, MediaResult, TrackFormat};

/// A track of the file.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u32,
    pub timescale: u32,
    pub format: Arc<TrackFormat>,
    /// Bytes of each NAL unit's length in a sample (video).
    length_size: usize,
}

/// The tracks of a file, from its init segment.
#[derive(Debug, Clone)]
pub struct Tracks {
    pub video: Track,
    pub audio: Option<Track>,
}

/// A sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's time scale, from the file's time zero.
    pub decode: u64,
    /// Presentation time minus decode time.
    pub composition_offset: i64,
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    /// Where its bytes start, from the start of the `moof`.
    pub offset: u64,
}

impl Sample {
    /// Presentation time in the track's time scale.
    pub fn presentation(&self) -> u64 {
        self.decode.saturating_add_signed(self.composition_offset)
    }
}

/// One fragment's samples, per track.
#[derive(Debug, Clone, Default)]
pub struct Fragment {
    pub video: Vec<Sample>,
    pub audio: Vec<Sample>,
}

fn malformed(what: &str) -> MediaError {
    MediaError::Malformed(format!("recording file: {what}"))
}

impl Tracks {
    /// The tracks of the init segment at the start of `init` (`ftyp` and
    /// `moov`; anything after the `moov` is ignored).
    pub fn parse(init: &[u8]) -> MediaResult<Tracks> {
        let top = children(init, 0, init.len());
        let moov = top
            .iter()
            .find(|b| &b.kind == b"moov")
            .ok_or_else(|| malformed("no moov"))?;
        let (mut video, mut audio) = (None, None);
        for trak in children(init, moov.body, moov.end)
            .iter()
            .filter(|b| &b.kind == b"trak")
        {
            match track(init, trak)? {
                Some(t) if t.format.codec().is_video() => video = video.or(Some(t)),
                Some(t) => audio = audio.or(Some(t)),
                None => {}
            }
        }
        Ok(Tracks {
            video: video.ok_or_else(|| malformed("no H.264 or H.265 track"))?,
            audio,
        })
    }

    /// The access unit of `sample` of `track` (video or audio), whose
    /// bytes are `data`. `time_zero` is where the file's time zero is on
    /// the stream's timeline.
    pub fn access_unit(
        &self,
        track: &Track,
        sample: &Sample,
        data: Bytes,
        time_zero: Duration,
    ) -> MediaResult<AccessUnit> {
        let at = |ticks: u64| time_zero + ticks_to_duration(ticks, track.timescale);
        let codec = track.format.codec();
        let data = if codec.is_video() {
            annex_b(track, &data, sample.sync)?
        } else {
            data
        };
        Ok(AccessUnit {
            codec,
            pts: Some(at(sample.presentation())),
            dts: Some(at(sample.decode)),
            duration: Some(ticks_to_duration(
                u64::from(sample.duration),
                track.timescale,
            )),
            keyframe: sample.sync,
            data,
            format: Some(Arc::clone(&track.format)),
            received_ms: 0,
            discontinuity: false,
        })
    }
}

/// A `trak`: its id, time scale and format; `None` for a track of
/// another kind (text, a codec we do not read).
fn track(data: &[u8], trak: &BoxRef) -> MediaResult<Option<Track>> {
    let tkhd = child(data, trak, b"tkhd", 0).ok_or_else(|| malformed("trak without tkhd"))?;
    let version = data.get(tkhd.body).copied().unwrap_or(0);
    let id_at = tkhd.body + if version == 1 { 20 } else { 12 };
    let id = read_u32(data, id_at).ok_or_else(|| malformed("tkhd"))?;
    let mdia = child(data, trak, b"mdia", 0).ok_or_else(|| malformed("trak without mdia"))?;
    let mdhd = child(data, &mdia, b"mdhd", 0).ok_or_else(|| malformed("mdia without mdhd"))?;
    let version = data.get(mdhd.body).copied().unwrap_or(0);
    let scale_at = mdhd.body + if version == 1 { 20 } else { 12 };
    let timescale = read_u32(data, scale_at)
        .filter(|&s| s > 0)
        .ok_or_else(|| malformed("mdhd"))?;
    let entry = child(data, &mdia, b"minf", 0)
        .and_then(|minf| child(data, &minf, b"stbl", 0))
        .and_then(|stbl| child(data, &stbl, b"stsd", 0))
        // stsd: version and flags, entry count.
        .and_then(|stsd| children(data, stsd.body + 8, stsd.end).into_iter().next())
        .ok_or_else(|| malformed("track without a sample entry"))?;
    // Sample entries: 8 bytes (reserved, data reference), then 70 more of
    // a visual entry or 20 of an audio entry before their boxes.
    let (format, length_size) = match &entry.kind {
        b"avc1" | b"avc3" => {
            let avcc = child(data, &entry, b"avcC", 78).ok_or_else(|| malformed("avc1"))?;
            avc_config(&data[avcc.body..avcc.end])?
        }
        b"hvc1" | b"hev1" => {
            let hvcc = child(data, &entry, b"hvcC", 78).ok_or_else(|| malformed("hvc1"))?;
            hevc_config(&data[hvcc.body..hvcc.end])?
        }
        b"mp4a" => {
            let esds = child(data, &entry, b"esds", 28).ok_or_else(|| malformed("mp4a"))?;
            (audio_config(&data[esds.body..esds.end])?, 0)
        }
        _ => return Ok(None),
    };
    Ok(Some(Track {
        id,
        timescale,
        format,
        length_size,
    }))
}

/// `avcC`: the first SPS and PPS, and the NAL length size.
fn avc_config(c: &[u8]) -> MediaResult<(Arc<TrackFormat>, usize)> {
    let bad = || malformed("avcC");
    let length_size = usize::from(c.get(4).ok_or_else(bad)? & 3) + 1;
    let sps_count = c.get(5).ok_or_else(bad)? & 0x1f;
    let mut at = 6;
    let sets = |count: u8, at: &mut usize| -> MediaResult<Option<Bytes>> {
        let mut first = None;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(
                c.get(*at..*at + 2).ok_or_else(bad)?.try_into().expect("2"),
            ));
            let nal = c.get(*at + 2..*at + 2 + len).ok_or_else(bad)?;
            first = first.or_else(|| Some(Bytes::copy_from_slice(nal)));
            *at += 2 + len;
        }
        Ok(first)
    };
    let sps = sets(sps_count, &mut at)?.ok_or_else(bad)?;
    let pps_count = *c.get(at).ok_or_else(bad)?;
    at += 1;
    let pps = sets(pps_count, &mut at)?.ok_or_else(bad)?;
    let format = TrackFormat::video(Codec::H264, None, sps, pps).ok_or_else(bad)?;
    Ok((format, length_size))
}

/// `hvcC`: the first VPS, SPS and PPS, and the NAL length size.
fn hevc_config(c: &[u8]) -> MediaResult<(Arc<TrackFormat>, usize)> {
    let bad = || malformed("hvcC");
    let length_size = usize::from(c.get(21).ok_or_else(bad)? & 3) + 1;
    let arrays = *c.get(22).ok_or_else(bad)?;
    let (mut vps, mut sps, mut pps) = (None, None, None);
    let mut at = 23;
    for _ in 0..arrays {
        let kind = c.get(at).ok_or_else(bad)? & 0x3f;
        let count = u16::from_be_bytes(
            c.get(at + 1..at + 3)
                .ok_or_else(bad)?
                .try_into()
                .expect("2"),
        );
        at += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(
                c.get(at..at + 2).ok_or_else(bad)?.try_into().expect("2"),
            ));
            let nal = Bytes::copy_from_slice(c.get(at + 2..at + 2 + len).ok_or_else(bad)?);
            at += 2 + len;
            let slot = match kind {
                32 => &mut vps,
                33 => &mut sps,
                34 => &mut pps,
                _ => continue,
            };
            slot.get_or_insert(nal);
        }
    }
    let format = TrackFormat::video(Codec::H265, vps, sps.ok_or_else(bad)?, pps.ok_or_else(bad)?)
        .ok_or_else(bad)?;
    Ok((format, length_size))
}

/// `esds` (a full box): the AudioSpecificConfig in its descriptors.
fn audio_config(esds: &[u8]) -> MediaResult<Arc<TrackFormat>> {
    let bad = || malformed("esds");
    let mut at = 4;
    // ES_Descriptor (3) holds DecoderConfigDescriptor (4) holds
    // DecoderSpecificInfo (5).
    let (tag, len) = descriptor_header(esds, &mut at).ok_or_else(bad)?;
    if tag != 3 || at + len > esds.len() {
        return Err(bad());
    }
    let flags = *esds.get(at + 2).ok_or_else(bad)?;
    at += 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*esds.get(at).ok_or_else(bad)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, _) = descriptor_header(esds, &mut at).ok_or_else(bad)?;
    if tag != 4 {
        return Err(bad());
    }
    at += 13;
    let (tag, len) = descriptor_header(esds, &mut at).ok_or_else(bad)?;
    if tag != 5 {
        return Err(bad());
    }
    let config = esds.get(at..at + len).ok_or_else(bad)?;
    TrackFormat::of_audio_specific_config(config).ok_or_else(bad)
}

/// An MPEG-4 descriptor's tag and length (1 to 4 length bytes); `at`
/// moves to its body.
fn descriptor_header(data: &[u8], at: &mut usize) -> Option<(u8, usize)> {
    let tag = *data.get(*at)?;
    *at += 1;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = *data.get(*at)?;
        *at += 1;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((tag, len));
        }
    }
    None
}

/// A video sample (NAL units with `length_size`-byte lengths) as Annex-B,
/// with the track's parameter sets in front of a keyframe.
fn annex_b(track: &Track, sample: &[u8], keyframe: bool) -> MediaResult<Bytes> {
    const START: [u8; 4] = [0, 0, 0, 1];
    let mut out = BytesMut::with_capacity(sample.len() + 64);
    if keyframe {
        if let Some(video) = track.format.as_video() {
            for set in [video.vps.as_ref(), Some(&video.sps), Some(&video.pps)]
                .into_iter()
                .flatten()
            {
                out.put_slice(&START);
                out.put_slice(set);
            }
        }
    }
    let mut at = 0;
    while at < sample.len() {
        let len_bytes = sample
            .get(at..at + track.length_size)
            .ok_or_else(|| malformed("a NAL unit's length is cut"))?;
        let len = len_bytes
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        at += track.length_size;
        let nal = sample
            .get(at..at + len)
            .ok_or_else(|| malformed("a NAL unit is cut"))?;
        out.put_slice(&START);
        out.put_slice(nal);
        at += len;
    }
    Ok(out.freeze())
}

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_FIRST_FLAGS: u32 = 0x004;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION: u32 = 0x800;
/// Sample flags: not a sync sample.
const NON_SYNC_FLAG: u32 = 0x0001_0000;

impl Fragment {
    /// The samples of the `moof` at the start of `moof` (the whole box;
    /// its `mdat` need not follow). Data offsets count from the `moof`
    /// (`default-base-is-moof`, or no base given).
    pub fn parse(moof: &[u8], tracks: &Tracks) -> MediaResult<Fragment> {
        let boxes = children(moof, 0, moof.len());
        let top = boxes
            .first()
            .filter(|b| &b.kind == b"moof")
            .ok_or_else(|| malformed("no moof"))?;
        let mut fragment = Fragment::default();
        for traf in children(moof, top.body, top.end)
            .iter()
            .filter(|b| &b.kind == b"traf")
        {
            let Some((track_id, samples)) = traf_samples(moof, traf)? else {
                continue;
            };
            if track_id == tracks.video.id {
                fragment.video = samples;
            } else if tracks.audio.as_ref().is_some_and(|a| a.id == track_id) {
                fragment.audio = samples;
            }
        }
        Ok(fragment)
    }

    /// The decode time of the fragment's first video sample (the video
    /// `tfdt`), from the `moof` at the start of `moof`.
    pub fn video_time(moof: &[u8], tracks: &Tracks) -> Option<u64> {
        let top = children(moof, 0, moof.len()).into_iter().next()?;
        children(moof, top.body, top.end)
            .iter()
            .filter(|b| &b.kind == b"traf")
            .find_map(|traf| {
                let tfhd = child(moof, traf, b"tfhd", 0)?;
                (read_u32(moof, tfhd.body + 4)? == tracks.video.id)
                    .then(|| decode_time(moof, traf))
                    .flatten()
            })
    }
}

/// A `traf`'s track id and samples; `None` for a `traf` without a `tfhd`.
fn traf_samples(data: &[u8], traf: &BoxRef) -> MediaResult<Option<(u32, Vec<Sample>)>> {
    let bad = || malformed("traf");
    let Some(tfhd) = child(data, traf, b"tfhd", 0) else {
        return Ok(None);
    };
    let flags = read_u32(data, tfhd.body).ok_or_else(bad)? & 0xff_ffff;
    let track_id = read_u32(data, tfhd.body + 4).ok_or_else(bad)?;
    let mut at = tfhd.body + 8;
    let mut base = 0u64;
    if flags & TFHD_BASE_DATA_OFFSET != 0 {
        // An absolute base: the bytes are not where we read them from.
        base = read_u64(data, at).ok_or_else(bad)?;
        at += 8;
    }
    if flags & TFHD_DESCRIPTION_INDEX != 0 {
        at += 4;
    }
    let mut default_duration = 0;
    if flags & TFHD_DEFAULT_DURATION != 0 {
        default_duration = read_u32(data, at).ok_or_else(bad)?;
        at += 4;
    }
    let mut default_size = 0;
    if flags & TFHD_DEFAULT_SIZE != 0 {
        default_size = read_u32(data, at).ok_or_else(bad)?;
        at += 4;
    }
    let mut default_flags = NON_SYNC_FLAG;
    if flags & TFHD_DEFAULT_FLAGS != 0 {
        default_flags = read_u32(data, at).ok_or_else(bad)?;
    }
    let mut decode = decode_time(data, traf).unwrap_or(0);
    let mut samples = Vec::new();
    for trun in children(data, traf.body, traf.end)
        .iter()
        .filter(|b| &b.kind == b"trun")
    {
        let version = data[trun.body];
        let flags = read_u32(data, trun.body).ok_or_else(bad)? & 0xff_ffff;
        let count = read_u32(data, trun.body + 4).ok_or_else(bad)?;
        let mut at = trun.body + 8;
        let mut offset = base;
        if flags & TRUN_DATA_OFFSET != 0 {
            let relative = read_u32(data, at).ok_or_else(bad)? as i32;
            offset = base.saturating_add_signed(i64::from(relative));
            at += 4;
        }
        let mut first_flags = None;
        if flags & TRUN_FIRST_FLAGS != 0 {
            first_flags = Some(read_u32(data, at).ok_or_else(bad)?);
            at += 4;
        }
        let mut field = |present: u32, default: u32| -> MediaResult<u32> {
            if flags & present == 0 {
                return Ok(default);
            }
            let v = read_u32(data, at).ok_or_else(bad)?;
            at += 4;
            Ok(v)
        };
        for i in 0..count {
            let duration = field(TRUN_DURATION, default_duration)?;
            let size = field(TRUN_SIZE, default_size)?;
            let sample_flags = field(TRUN_FLAGS, default_flags)?;
            let sample_flags = if i == 0 {
                first_flags.unwrap_or(sample_flags)
            } else {
                sample_flags
            };
            let raw_offset = field(TRUN_COMPOSITION, 0)?;
            let composition_offset = if version == 0 {
                i64::from(raw_offset)
            } else {
                i64::from(raw_offset as i32)
            };
            samples.push(Sample {
                decode,
                composition_offset,
                duration,
                size,
                sync: sample_flags & NON_SYNC_FLAG == 0,
                offset,
            });
            decode += u64::from(duration);
            offset += u64::from(size);
        }
    }
    Ok(Some((track_id, samples)))
}

/// A `traf`'s `tfdt`.
fn decode_time(data: &[u8], traf: &BoxRef) -> Option<u64> {
    let tfdt = child(data, traf, b"tfdt", 0)?;
    match data.get(tfdt.body)? {
        1 => read_u64(data, tfdt.body + 4),
        _ => read_u32(data, tfdt.body + 4).map(u64::from),
    }
}

/// Where the first `moof` starts in `window` (bytes from anywhere in a
/// file): a `moof` header whose first child is an `mfhd`.
pub fn fragment_start(window: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(b"moof");
    let mut from = 0;
    while let Some(found) = finder.find(&window[from..]) {
        let at = from + found;
        if at >= 4 && window.get(at + 8..at + 12) == Some(b"mfhd") {
            return Some(at - 4);
        }
        from = at + 1;
    }
    None
}

/// A `moof`'s whole size, from its header at the start of `bytes`.
pub fn box_size(bytes: &[u8]) -> Option<u64> {
    read_u32(bytes, 0).map(u64::from).filter(|&s| s >= 8)
}

#[cfg(test)]
mod tests;
