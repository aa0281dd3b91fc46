//! FLV tag bodies (RTMP audio and video messages) to [`Elementary`]
//! media, in the session's task:
//!
//! - video: the AVC sequence header (AVCDecoderConfigurationRecord)
//!   gives H.264's parameter sets; Enhanced RTMP's `hvc1` sequence start
//!   (HEVCDecoderConfigurationRecord) gives H.265's; coded frames are
//!   length-prefixed (AVCC) NAL units, rewritten to Annex-B in place
//!   (4-byte lengths become start codes: no copy), timed by the message's
//!   time (DTS) plus the composition time (PTS);
//! - audio: the AAC sequence header gives the AudioSpecificConfig; raw
//!   AAC frames follow (legacy tags, and Enhanced RTMP's `mp4a`);
//! - other codecs are named once, and their tags dropped.
//!
//! A truncated or malformed tag is refused with a reason and costs
//! nothing else: the session drops it and goes on.

use bytes::{Bytes, BytesMut};

use crate::media::{Codec, TrackFormat};
use crate::pipeline::elementary::Elementary;

/// Times are 90 kHz ticks on 33 bits (RTMP's 32-bit milliseconds wrap
/// onto it exactly: 2^32 × 90 is a multiple of 2^33).
const TICKS_WRAP: i64 = 1 << 33;

/// Why a tag was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TagError(pub &'static str);

/// One session's FLV state: the NAL length size of its video, what it
/// has been told, and the codecs already named as unsupported.
#[derive(Default)]
pub struct FlvReader {
    /// Bytes of each NAL unit's length prefix (from the video's
    /// decoder configuration).
    nal_length_size: Option<usize>,
    video: Option<Codec>,
    has_audio_config: bool,
    named: Vec<String>,
}

fn ticks(ms: i64) -> u64 {
    (ms * 90).rem_euclid(TICKS_WRAP) as u64
}

/// A signed 24-bit composition time.
fn i24(b: &[u8]) -> i64 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    i64::from((v << 8) >> 8)
}

impl FlvReader {
    /// Names an unsupported codec the first time it is seen.
    fn unsupported(&mut self, name: String) -> Option<Elementary> {
        if self.named.contains(&name) {
            return None;
        }
        self.named.push(name.clone());
        Some(Elementary::Unsupported(name))
    }

    /// The body of a video message at `timestamp` (ms).
    pub fn video(
        &mut self,
        timestamp: u32,
        mut tag: BytesMut,
    ) -> Result<Option<Elementary>, TagError> {
        let Some(&first) = tag.first() else {
            return Ok(None);
        };
        let frame_type = (first >> 4) & 7;
        if frame_type == 5 {
            // A video info/command frame: no picture.
            return Ok(None);
        }
        let (codec, packet, header) = if first & 0x80 != 0 {
            // Enhanced RTMP: packet type, FourCC.
            if tag.len() < 5 {
                return Err(TagError("a truncated Enhanced RTMP video header"));
            }
            let fourcc = &tag[1..5];
            let codec = match fourcc {
                b"avc1" => Codec::H264,
                b"hvc1" => Codec::H265,
                other => {
                    let name = String::from_utf8_lossy(other).into_owned();
                    return Ok(self.unsupported(format!("video {name}")));
                }
            };
            match first & 0x0f {
                0 => (codec, Packet::Config, 5),
                1 if tag.len() >= 8 => (codec, Packet::Frame(i24(&tag[5..8])), 8),
                1 => return Err(TagError("a truncated coded frame header")),
                3 => (codec, Packet::Frame(0), 5),
                6 => return Ok(self.unsupported("multitrack video".into())),
                // Sequence end, metadata, MPEG-TS sequence start, ModEx.
                _ => return Ok(None),
            }
        } else {
            let codec = match first & 0x0f {
                7 => Codec::H264,
                // The HEVC extension of legacy FLV some encoders use.
                12 => Codec::H265,
                id => return Ok(self.unsupported(format!("video codec id {id}"))),
            };
            if tag.len() < 5 {
                return Err(TagError("a truncated AVC video header"));
            }
            match tag[1] {
                0 => (codec, Packet::Config, 5),
                1 => (codec, Packet::Frame(i24(&tag[2..5])), 5),
                _ => return Ok(None),
            }
        };
        let body = tag.split_off(header);
        match packet {
            Packet::Config => self.video_config(codec, body.freeze()).map(Some),
            Packet::Frame(cts) => {
                if self.video != Some(codec) {
                    // Frames before their configuration cannot be read.
                    return Ok(None);
                }
                let size = self.nal_length_size.unwrap_or(4);
                let Some(data) = annex_b(body, size)? else {
                    return Ok(None);
                };
                let dts = i64::from(timestamp);
                Ok(Some(Elementary::Video {
                    codec,
                    pts: ticks(dts + cts),
                    dts: ticks(dts),
                    data,
                }))
            }
        }
    }

    fn video_config(&mut self, codec: Codec, record: Bytes) -> Result<Elementary, TagError> {
        let config = match codec {
            Codec::H265 => hevc_config(&record)?,
            _ => avc_config(&record)?,
        };
        self.nal_length_size = Some(config.length_size);
        self.video = Some(codec);
        Ok(Elementary::VideoConfig {
            codec,
            vps: config.vps,
            sps: config.sps,
            pps: config.pps,
        })
    }

    /// The body of an audio message at `timestamp` (ms).
    pub fn audio(
        &mut self,
        timestamp: u32,
        mut tag: BytesMut,
    ) -> Result<Option<Elementary>, TagError> {
        let Some(&first) = tag.first() else {
            return Ok(None);
        };
        let (config, header) = match first >> 4 {
            10 => match tag.get(1) {
                Some(0) => (true, 2),
                Some(1) => (false, 2),
                Some(_) => return Ok(None),
                None => return Err(TagError("a truncated AAC header")),
            },
            9 => {
                // Enhanced RTMP audio: packet type, FourCC.
                if tag.len() < 5 {
                    return Err(TagError("a truncated Enhanced RTMP audio header"));
                }
                if &tag[1..5] != b"mp4a" {
                    let name = String::from_utf8_lossy(&tag[1..5]).into_owned();
                    return Ok(self.unsupported(format!("audio {name}")));
                }
                match first & 0x0f {
                    0 => (true, 5),
                    1 => (false, 5),
                    _ => return Ok(None),
                }
            }
            format => {
                let name = match format {
                    2 | 14 => "MP3",
                    7 => "G.711 A-law",
                    8 => "G.711 mu-law",
                    11 => "Speex",
                    4..=6 => "Nellymoser",
                    _ => "PCM or ADPCM",
                };
                return Ok(self.unsupported(format!("audio {name}")));
            }
        };
        let body = tag.split_off(header).freeze();
        if config {
            // ffmpeg copying AAC from ADTS sends an empty configuration
            // first, then the real one once it has read the first frame.
            if body.is_empty() {
                return Ok(None);
            }
            let format = TrackFormat::of_audio_specific_config(&body)
                .ok_or(TagError("an AudioSpecificConfig that does not parse"))?;
            self.has_audio_config = true;
            return Ok(Some(Elementary::AudioConfig(format)));
        }
        if !self.has_audio_config || body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Elementary::Audio {
            pts: ticks(i64::from(timestamp)),
            data: body,
        }))
    }
}

enum Packet {
    Config,
    /// A coded frame, with its composition time (ms).
    Frame(i64),
}

/// What a decoder configuration record holds.
struct VideoConfig {
    length_size: usize,
    vps: Option<Bytes>,
    sps: Bytes,
    pps: Bytes,
}

/// Reads `count` length-prefixed (16-bit) NAL units at `at`; keeps the
/// first.
fn nal_list(record: &Bytes, at: &mut usize, count: usize) -> Result<Option<Bytes>, TagError> {
    let mut first = None;
    for _ in 0..count {
        let len_bytes = record
            .get(*at..*at + 2)
            .ok_or(TagError("a truncated decoder configuration record"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let nal = record
            .get(*at + 2..*at + 2 + len)
            .ok_or(TagError("a truncated decoder configuration record"))?;
        if first.is_none() && !nal.is_empty() {
            first = Some(record.slice(*at + 2..*at + 2 + len));
        }
        *at += 2 + len;
    }
    Ok(first)
}

/// An AVCDecoderConfigurationRecord.
fn avc_config(record: &Bytes) -> Result<VideoConfig, TagError> {
    if record.len() < 7 || record[0] != 1 {
        return Err(TagError(
            "an AVC decoder configuration record that does not parse",
        ));
    }
    let length_size = usize::from(record[4] & 3) + 1;
    let mut at = 6;
    let sps = nal_list(record, &mut at, usize::from(record[5] & 0x1f))?;
    let count = *record
        .get(at)
        .ok_or(TagError("a truncated decoder configuration record"))?;
    at += 1;
    let pps = nal_list(record, &mut at, usize::from(count))?;
    match (sps, pps) {
        (Some(sps), Some(pps)) => Ok(VideoConfig {
            length_size,
            vps: None,
            sps,
            pps,
        }),
        _ => Err(TagError("an AVC configuration without an SPS and a PPS")),
    }
}

/// An HEVCDecoderConfigurationRecord.
fn hevc_config(record: &Bytes) -> Result<VideoConfig, TagError> {
    if record.len() < 23 || record[0] != 1 {
        return Err(TagError(
            "an HEVC decoder configuration record that does not parse",
        ));
    }
    let length_size = usize::from(record[21] & 3) + 1;
    let (mut vps, mut sps, mut pps) = (None, None, None);
    let mut at = 23;
    for _ in 0..record[22] {
        let head = record
            .get(at..at + 3)
            .ok_or(TagError("a truncated decoder configuration record"))?;
        let (kind, count) = (
            head[0] & 0x3f,
            usize::from(u16::from_be_bytes([head[1], head[2]])),
        );
        at += 3;
        let first = nal_list(record, &mut at, count)?;
        let slot = match kind {
            32 => &mut vps,
            33 => &mut sps,
            34 => &mut pps,
            _ => continue,
        };
        if slot.is_none() {
            *slot = first;
        }
    }
    match (vps, sps, pps) {
        (Some(vps), Some(sps), Some(pps)) => Ok(VideoConfig {
            length_size,
            vps: Some(vps),
            sps,
            pps,
        }),
        _ => Err(TagError(
            "an HEVC configuration without a VPS, an SPS and a PPS",
        )),
    }
}

/// Length-prefixed NAL units as Annex-B: rewritten in place when the
/// prefixes are 4 bytes (start codes are 4 bytes too), else copied once.
/// `None` for a frame with no NAL unit.
fn annex_b(mut data: BytesMut, length_size: usize) -> Result<Option<Bytes>, TagError> {
    let truncated = TagError("a truncated NAL unit");
    let mut at = 0;
    if length_size == 4 {
        while at < data.len() {
            let prefix = data.get(at..at + 4).ok_or(truncated.clone())?;
            let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            if len > data.len() - at - 4 {
                return Err(truncated);
            }
            data[at..at + 4].copy_from_slice(&[0, 0, 0, 1]);
            at += 4 + len;
        }
        return Ok((!data.is_empty()).then(|| data.freeze()));
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    while at < data.len() {
        let prefix = data.get(at..at + length_size).ok_or(truncated.clone())?;
        let len = prefix
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        let nal = data
            .get(at + length_size..at + length_size + len)
            .ok_or(truncated.clone())?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        at += length_size + len;
    }
    Ok((!out.is_empty()).then(|| Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn avc_record() -> Vec<u8> {
        let mut r = vec![1, 0x42, 0xc0, 0x1e, 0xff, 0xe1];
        r.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        r.extend_from_slice(SPS);
        r.push(1);
        r.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        r.extend_from_slice(PPS);
        r
    }

    fn tag(parts: &[&[u8]]) -> BytesMut {
        BytesMut::from(&parts.concat()[..])
    }

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }

    #[test]
    fn avc_header_then_frames_in_annex_b_with_composition_time() {
        let mut flv = FlvReader::default();
        // A frame before the sequence header is dropped.
        let early = tag(&[&[0x17, 1, 0, 0, 0], &avcc(&[&[0x65, 1]])]);
        assert!(flv.video(0, early).unwrap().is_none());
        let Some(Elementary::VideoConfig {
            codec, sps, pps, ..
        }) = flv
            .video(0, tag(&[&[0x17, 0, 0, 0, 0], &avc_record()]))
            .unwrap()
        else {
            panic!("a configuration");
        };
        assert_eq!((codec, &sps[..], &pps[..]), (Codec::H264, SPS, PPS));
        // A B-frame shown 66 ms after it is decoded; two NAL units.
        let frame = tag(&[
            &[0x27, 1, 0, 0, 66],
            &avcc(&[&[0x06, 5, 5], &[0x41, 9, 9, 9]]),
        ]);
        let Some(Elementary::Video { pts, dts, data, .. }) = flv.video(1000, frame).unwrap() else {
            panic!("a frame");
        };
        assert_eq!((dts, pts), (90_000, 90_000 + 66 * 90));
        assert_eq!(&data[..], &[0, 0, 0, 1, 6, 5, 5, 0, 0, 0, 1, 0x41, 9, 9, 9]);
        // A negative composition time, at time 0: the clock's wrap.
        let frame = tag(&[&[0x27, 1, 0xff, 0xff, 0xfe], &avcc(&[&[0x41, 1]])]);
        let Some(Elementary::Video { pts, .. }) = flv.video(0, frame).unwrap() else {
            panic!("a frame");
        };
        assert_eq!(pts, (TICKS_WRAP - 180) as u64);
    }

    #[test]
    fn enhanced_hevc_sequence_start_and_frames() {
        let (vps, sps, pps) = (
            &[0x40, 1, 0xaa][..],
            &[0x42, 1, 0xbb][..],
            &[0x44, 1, 0xcc][..],
        );
        let mut record = vec![1];
        record.extend_from_slice(&[0; 20]);
        record.push(0xf3); // 4-byte lengths
        record.push(3);
        for (kind, nal) in [(32u8, vps), (33, sps), (34, pps)] {
            record.extend_from_slice(&[0x80 | kind, 0, 1]);
            record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            record.extend_from_slice(nal);
        }
        let mut flv = FlvReader::default();
        let config = flv.video(0, tag(&[&[0x90], b"hvc1", &record])).unwrap();
        let Some(Elementary::VideoConfig {
            codec,
            vps: Some(v),
            sps: s,
            pps: p,
        }) = config
        else {
            panic!("a configuration: {config:?}");
        };
        assert_eq!(
            (codec, &v[..], &s[..], &p[..]),
            (Codec::H265, vps, sps, pps)
        );
        // CodedFrames (with a composition time) and CodedFramesX (without).
        let coded = tag(&[&[0x91], b"hvc1", &[0, 0, 40], &avcc(&[&[0x26, 1, 7]])]);
        let Some(Elementary::Video {
            codec,
            pts,
            dts,
            data,
        }) = flv.video(20, coded).unwrap()
        else {
            panic!("a frame");
        };
        assert_eq!((codec, dts, pts), (Codec::H265, 1800, 1800 + 3600));
        assert_eq!(&data[..], &[0, 0, 0, 1, 0x26, 1, 7]);
        let coded_x = tag(&[&[0xa3], b"hvc1", &avcc(&[&[0x02, 1, 8]])]);
        let Some(Elementary::Video { pts, dts, .. }) = flv.video(40, coded_x).unwrap() else {
            panic!("a frame");
        };
        assert_eq!(pts, dts);
        // Another FourCC is named once, then its tags are dropped.
        let av1 = tag(&[&[0x90], b"av01", &[0; 4]]);
        assert!(matches!(
            flv.video(0, av1.clone()).unwrap(),
            Some(Elementary::Unsupported(name)) if name == "video av01"
        ));
        assert!(flv.video(0, av1).unwrap().is_none());
    }

    #[test]
    fn aac_header_then_raw_frames_and_other_codecs_named() {
        let mut flv = FlvReader::default();
        assert!(flv.audio(0, tag(&[&[0xaf, 1, 0x21]])).unwrap().is_none());
        assert!(
            flv.audio(0, tag(&[&[0xaf, 0]])).unwrap().is_none(),
            "an empty configuration (ffmpeg's first) waits for the real one"
        );
        let Some(Elementary::AudioConfig(format)) =
            flv.audio(0, tag(&[&[0xaf, 0, 0x11, 0x90]])).unwrap()
        else {
            panic!("a configuration");
        };
        let aac = format.as_aac().unwrap();
        assert_eq!((aac.rate(), aac.channels), (Some(48_000), 2));
        let Some(Elementary::Audio { pts, data }) =
            flv.audio(21, tag(&[&[0xaf, 1, 0x21, 0x10]])).unwrap()
        else {
            panic!("a frame");
        };
        assert_eq!((pts, &data[..]), (21 * 90, &[0x21, 0x10][..]));
        assert!(matches!(
            flv.audio(0, tag(&[&[0x2f, 0xff]])).unwrap(),
            Some(Elementary::Unsupported(name)) if name == "audio MP3"
        ));
    }

    #[test]
    fn truncated_and_malformed_tags_are_refused() {
        let mut flv = FlvReader::default();
        assert!(flv.video(0, tag(&[&[0x17, 0]])).is_err());
        assert!(flv
            .video(0, tag(&[&[0x17, 0, 0, 0, 0], &[1, 2, 3]]))
            .is_err());
        let mut record = avc_record();
        record.truncate(12);
        assert!(flv.video(0, tag(&[&[0x17, 0, 0, 0, 0], &record])).is_err());
        flv.video(0, tag(&[&[0x17, 0, 0, 0, 0], &avc_record()]))
            .unwrap();
        // A NAL unit longer than the frame.
        let frame = tag(&[&[0x27, 1, 0, 0, 0], &[0, 0, 1, 0, 0x41, 1]]);
        assert_eq!(
            flv.video(0, frame).unwrap_err(),
            TagError("a truncated NAL unit")
        );
        assert!(flv.audio(0, tag(&[&[0xaf]])).is_err());
        assert!(flv.audio(0, tag(&[&[0xaf, 0, 0x10]])).is_err());
        assert!(flv.video(0, tag(&[&[0x90, b'h']])).is_err());
    }

    #[test]
    fn short_length_prefixes_are_copied_once() {
        let data = BytesMut::from(&[0, 2, 0x41, 1, 0, 1, 0x06][..]);
        let out = annex_b(data, 2).unwrap().unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 1, 0x41, 1, 0, 0, 0, 1, 0x06]);
    }
}
