//! The disk tier of an `entire_stream` replay buffer: GOPs older than the
//! memory horizon are written to one file each under
//! `<data_dir>/replay/<org>/<stream>/` and their bytes leave memory; they
//! are read back when a reader or a clip needs them. A file holds the
//! track caps, then each unit (codec, flags, timestamps, bytes).
//! Removed when the buffer is cleared, and at server start.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;

use crate::media::{AccessUnit, Codec};

const MAGIC: &[u8; 8] = b"LPGOP\x00\x00\x01";

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
        out.write_all(MAGIC)?;
        // Caps of each track, once.
        let caps_of = |video: bool| {
            units
                .iter()
                .find(|u| u.codec.is_video() == video)
                .and_then(|u| u.caps.as_ref())
                .map(|c| c.to_string())
                .unwrap_or_default()
        };
        for caps in [caps_of(true), caps_of(false)] {
            out.write_all(&(caps.len() as u32).to_le_bytes())?;
            out.write_all(caps.as_bytes())?;
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
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    }
    std::fs::rename(tmp, path)
}

fn read_exact<const N: usize>(r: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads the units written by [`write`].
pub fn read(path: &Path) -> std::io::Result<Vec<AccessUnit>> {
    let mut r = BufReader::new(std::fs::File::open(path)?);
    if &read_exact::<8>(&mut r)? != MAGIC {
        return Err(std::io::Error::other("not a replay file"));
    }
    let mut caps = Vec::new();
    for _ in 0..2 {
        let len = u32::from_le_bytes(read_exact(&mut r)?) as usize;
        let mut text = vec![0u8; len];
        r.read_exact(&mut text)?;
        let text = String::from_utf8_lossy(&text).to_string();
        caps.push(
            (!text.is_empty())
                .then(|| gst::Caps::from_str(&text).ok())
                .flatten(),
        );
    }
    let count = u32::from_le_bytes(read_exact(&mut r)?) as usize;
    let mut units = Vec::with_capacity(count);
    for _ in 0..count {
        let [codec, key] = read_exact::<2>(&mut r)?;
        let codec = codec_of(codec)?;
        let pts = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let dts = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let duration = untime(u64::from_le_bytes(read_exact(&mut r)?));
        let received_ms = i64::from_le_bytes(read_exact(&mut r)?);
        let len = u32::from_le_bytes(read_exact(&mut r)?) as usize;
        let mut data = vec![0u8; len];
        r.read_exact(&mut data)?;
        units.push(AccessUnit {
            codec,
            pts,
            dts,
            duration,
            keyframe: key == 1,
            data: Bytes::from(data),
            caps: caps[usize::from(!codec.is_video())].clone(),
            received_ms,
        });
    }
    Ok(units)
}
