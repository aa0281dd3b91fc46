//! The format of replay GOPs spilled from the memory of an
//! `entire_stream` buffer ([`super::spill_store`] says where they go): the
//! format of each track (typed: parameter sets, AudioSpecificConfig), then
//! each unit (codec, flags, timestamps, bytes). Read back whole, each
//! unit's bytes a slice of the one buffer read. Files of the first
//! version, which held GStreamer caps strings, are still read: their
//! formats come from the units themselves (the parameter sets in front of
//! each keyframe, ADTS headers) and raw AAC's from the caps' `codec_data`.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::media::format::FormatFollower;
use crate::media::{AccessUnit, Codec, TrackFormat};

/// Version 2: typed track formats.
const MAGIC: &[u8; 8] = b"LPGOP\x00\x00\x02";
/// Version 1: GStreamer caps strings.
const MAGIC_V1: &[u8; 8] = b"LPGOP\x00\x00\x01";

fn codec_byte(codec: Codec) -> u8 {
    match codec {
        Codec::H264 => 1,
        Codec::H265 => 2,
        Codec::Aac => 3,
    }
}

fn codec_of(byte: u8) -> std::io::Result<Codec> {
    match byte {
        1 => Ok(Codec::H264),
        2 => Ok(Codec::H265),
        3 => Ok(Codec::Aac),
        _ => Err(std::io::Error::other("unknown codec in a replay file")),
    }
}

fn time(t: Option<Duration>) -> u64 {
    t.map_or(0, |t| t.as_nanos() as u64 + 1)
}

fn untime(v: u64) -> Option<Duration> {
    (v != 0).then(|| Duration::from_nanos(v - 1))
}

/// Writes `units` to `path` (atomically: temp file, then rename).
pub fn write(path: &Path, units: &[AccessUnit]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut out = BufWriter::new(std::fs::File::create(&tmp)?);
        encode_into(&mut out, units)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    }
    std::fs::rename(tmp, path)
}

/// `units` in the file format, in memory (for the object store).
pub fn encode(units: &[AccessUnit]) -> Vec<u8> {
    let size = units.iter().map(|u| u.data.len() + 40).sum::<usize>() + 256;
    let mut out = Vec::with_capacity(size);
    encode_into(&mut out, units).expect("writing to memory does not fail");
    out
}

fn encode_into(out: &mut impl Write, units: &[AccessUnit]) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    // The format of each track, once.
    let format_of = |video: bool| {
        units
            .iter()
            .find(|u| u.codec.is_video() == video)
            .and_then(|u| u.format.as_deref())
    };
    for format in [format_of(true), format_of(false)] {
        write_format(out, format)?;
    }
    out.write_all(&(units.len() as u32).to_le_bytes())?;
    for u in units {
        out.write_all(&[codec_byte(u.codec), u8::from(u.keyframe)])?;
        for v in [time(u.pts), time(u.dts), time(u.duration)] {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(&u.received_ms.to_le_bytes())?;
        out.write_all(&(u.data.len() as u32).to_le_bytes())?;
        out.write_all(&u.data)?;
    }
    Ok(())
}

fn read_exact<const N: usize>(r: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(bytes)
}

fn read_bytes(r: &mut impl Read) -> std::io::Result<Bytes> {
    let len = u32::from_le_bytes(read_exact(r)?) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::other("a damaged replay file"));
    }
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes)?;
    Ok(Bytes::from(bytes))
}

/// A track format: a tag (0 none, then the codec byte), then the video
/// parameter sets (VPS empty for H.264) or the AAC config's three fields.
fn write_format(out: &mut impl Write, format: Option<&TrackFormat>) -> std::io::Result<()> {
    let Some(format) = format else {
        return out.write_all(&[0]);
    };
    out.write_all(&[codec_byte(format.codec())])?;
    match format {
        TrackFormat::H264(video) | TrackFormat::H265(video) => {
            write_bytes(out, video.vps.as_deref().unwrap_or_default())?;
            write_bytes(out, &video.sps)?;
            write_bytes(out, &video.pps)
        }
        TrackFormat::Aac(aac) => out.write_all(&[aac.object, aac.rate_index, aac.channels]),
    }
}

fn read_format(r: &mut impl Read) -> std::io::Result<Option<Arc<TrackFormat>>> {
    let [tag] = read_exact::<1>(r)?;
    if tag == 0 {
        return Ok(None);
    }
    let codec = codec_of(tag)?;
    let format = if codec.is_video() {
        let vps = read_bytes(r)?;
        let (sps, pps) = (read_bytes(r)?, read_bytes(r)?);
        TrackFormat::video(codec, (!vps.is_empty()).then_some(vps), sps, pps)
    } else {
        let [object, rate_index, channels] = read_exact::<3>(r)?;
        let config = crate::media::format::AacFormat {
            object,
            rate_index,
            channels,
        };
        TrackFormat::of_audio_specific_config(&config.audio_specific_config())
    };
    Ok(format)
}

/// The track formats of a version 1 file: its caps strings are read only
/// for raw AAC's `codec_data` (hex); the rest comes from the units.
fn read_v1_formats(r: &mut impl Read) -> std::io::Result<[Option<Arc<TrackFormat>>; 2]> {
    let mut formats = [None, None];
    for slot in &mut formats {
        let text = read_bytes(r)?;
        let text = String::from_utf8_lossy(&text);
        *slot = text
            .split_once("codec_data=(buffer)")
            .map(|(_, rest)| rest.split([',', ';', ' ']).next().unwrap_or_default())
            .and_then(|hex| hex::decode(hex).ok())
            .and_then(|config| TrackFormat::of_audio_specific_config(&config));
    }
    Ok(formats)
}

/// Reads the units written by [`write`].
pub fn read(path: &Path) -> std::io::Result<Vec<AccessUnit>> {
    decode(Bytes::from(std::fs::read(path)?))
}

/// The units of a file's bytes; each unit's data is a slice of `file`
/// (no copy).
pub fn decode(file: Bytes) -> std::io::Result<Vec<AccessUnit>> {
    let mut r: &[u8] = &file;
    let magic = read_exact::<8>(&mut r)?;
    let v1 = &magic == MAGIC_V1;
    if !v1 && &magic != MAGIC {
        return Err(std::io::Error::other("not a replay file"));
    }
    let formats = if v1 {
        read_v1_formats(&mut r)?
    } else {
        [read_format(&mut r)?, read_format(&mut r)?]
    };
    let mut followers = [FormatFollower::default(), FormatFollower::default()];
    let count = u32::from_le_bytes(read_exact(&mut r)?) as usize;
    // Each unit takes at least its 38-byte header.
    let mut units = Vec::with_capacity(count.min(r.len() / 38));
    for _ in 0..count {
        let [codec, key] = read_exact::<2>(&mut r)?;
        let codec = codec_of(codec)?;
        let pts = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let dts = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let duration = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let received_ms = i64::from_le_bytes(read_exact(&mut r)?);
        let len = u32::from_le_bytes(read_exact(&mut r)?) as usize;
        if r.len() < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a truncated replay file",
            ));
        }
        let start = file.len() - r.len();
        let data = file.slice(start..start + len);
        r = &r[len..];
        let track = usize::from(!codec.is_video());
        let keyframe = key == 1;
        let format = if v1 {
            followers[track].follow(codec, keyframe, &data, formats[track].as_ref())
        } else {
            formats[track].clone()
        };
        units.push(AccessUnit {
            codec,
            pts,
            dts,
            duration,
            keyframe,
            data,
            format,
            received_ms,
            discontinuity: false,
        });
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
    /// An ADTS header: LC, 48 kHz, stereo, 17 bytes.
    const ADTS: &[u8] = &[0xff, 0xf1, 0x4c, 0x80, 0x02, 0x3f, 0xfc];

    fn unit(codec: Codec, keyframe: bool, data: Vec<u8>) -> AccessUnit {
        let format = match codec {
            Codec::Aac => None,
            _ => TrackFormat::of_keyframe(codec, &data),
        };
        AccessUnit {
            codec,
            pts: Some(Duration::from_millis(40)),
            dts: None,
            duration: Some(Duration::from_millis(33)),
            keyframe,
            data: Bytes::from(data),
            format,
            received_ms: 7,
            discontinuity: false,
        }
    }

    fn gop() -> Vec<AccessUnit> {
        let mut key = vec![];
        for nal in [SPS, PPS, &[0x65, 0x88][..]] {
            key.extend_from_slice(&[0, 0, 0, 1]);
            key.extend_from_slice(nal);
        }
        let mut audio = unit(Codec::Aac, true, [ADTS, &[0u8; 10]].concat());
        audio.format = TrackFormat::of_audio_specific_config(&[0x11, 0x90]);
        let keyframe = unit(Codec::H264, true, key);
        // Every unit of a track points at its format.
        let mut delta = unit(Codec::H264, false, vec![0, 0, 0, 1, 0x41, 9]);
        delta.format = keyframe.format.clone();
        vec![keyframe, audio, delta]
    }

    #[test]
    fn units_and_their_formats_come_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.gop");
        let units = gop();
        write(&path, &units).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), units.len());
        for (a, b) in units.iter().zip(&back) {
            assert_eq!(
                (a.codec, a.keyframe, &a.data),
                (b.codec, b.keyframe, &b.data)
            );
            assert_eq!((a.pts, a.dts, a.duration), (b.pts, b.dts, b.duration));
            assert_eq!(a.received_ms, b.received_ms);
            assert_eq!(a.format, b.format, "{:?}", a.codec);
        }
    }

    #[test]
    fn encoded_units_decode_the_same_and_truncation_is_an_error() {
        let units = gop();
        let bytes = Bytes::from(encode(&units));
        let back = decode(bytes.clone()).unwrap();
        assert_eq!(back.len(), units.len());
        for (a, b) in units.iter().zip(&back) {
            assert_eq!((&a.data, a.pts, &a.format), (&b.data, b.pts, &b.format));
        }
        for cut in [4, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn files_of_the_first_version_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.gop");
        let units = gop();
        // Version 1: caps strings, then the units as today.
        let mut v1 = MAGIC_V1.to_vec();
        for caps in [
            "video/x-h264, stream-format=(string)byte-stream, width=(int)640",
            "audio/mpeg, mpegversion=(int)4, stream-format=(string)raw, codec_data=(buffer)1190",
        ] {
            v1.extend_from_slice(&(caps.len() as u32).to_le_bytes());
            v1.extend_from_slice(caps.as_bytes());
        }
        write(&path, &units).unwrap();
        let v2 = std::fs::read(&path).unwrap();
        // The units part starts after the two format records.
        let mut r = &v2[8..];
        read_format(&mut r).unwrap();
        read_format(&mut r).unwrap();
        v1.extend_from_slice(r);
        std::fs::write(&path, v1).unwrap();
        let back = read(&path).unwrap();
        for (a, b) in units.iter().zip(&back) {
            assert_eq!(a.data, b.data);
            assert_eq!(a.format, b.format, "{:?}", a.codec);
        }
    }
}
