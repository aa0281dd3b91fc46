//! What MP4 files need to know of each track, taken from the access units
//! themselves: the H.264 decoder configuration (`avcC`, from the SPS and
//! PPS that the parser puts in front of every keyframe) and the AAC
//! AudioSpecificConfig (from the ADTS header, or the caps' `codec_data`
//! for raw AAC); the sample entries (`avc1`, `mp4a`) built from them; and
//! the rewrite of each unit into an MP4 sample (Annex-B start codes become
//! 4-byte lengths, parameter sets and delimiters leave the sample, ADTS
//! headers are dropped).

use super::boxes::{descriptor, Boxes};
use crate::pipeline::{adts_header_len, AccessUnit, Codec};

/// The NAL units of an Annex-B access unit (start codes removed). Start
/// codes are found with a vectorised search: a slice is most of a frame
/// and holds none.
pub(crate) fn nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let starts: Vec<usize> = memchr::memmem::find_iter(data, &[0, 0, 1])
        .map(|at| at + 3)
        .collect();
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // The next start code, with its optional leading zero byte.
            let mut end = s - 3;
            while end > 0 && data[end - 1] == 0 {
                end -= 1;
            }
            end
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| e > s)
        .map(move |(s, e)| &data[s..e])
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units that go into a sample: not SPS (7), PPS (8) or AUD (9).
pub(crate) fn sample_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    nals(data).filter(|n| !matches!(nal_type(n), 7..=9))
}

/// The size of a video unit as an MP4 sample.
pub(crate) fn video_sample_size(unit: &AccessUnit) -> u32 {
    sample_nals(&unit.data).map(|n| n.len() as u32 + 4).sum()
}

/// Appends a video unit as an MP4 sample to `out`.
pub(crate) fn write_video_sample(
    unit: &AccessUnit,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    for nal in sample_nals(&unit.data) {
        out.write_all(&(nal.len() as u32).to_be_bytes())?;
        out.write_all(nal)?;
    }
    Ok(())
}

/// An ADTS frame's payload (the raw AAC frame); raw frames as they are.
pub(crate) fn raw_aac(frame: &[u8]) -> &[u8] {
    match adts_header_len(frame) {
        Some(header) => &frame[header.min(frame.len())..],
        None => frame,
    }
}

/// H.264 video as an MP4 sample entry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    pub width: u32,
    pub height: u32,
    /// The AVCDecoderConfigurationRecord.
    pub avcc: Vec<u8>,
}

impl VideoConfig {
    /// From an H.264 keyframe carrying its SPS and PPS.
    pub fn from_keyframe(first: &AccessUnit) -> Result<VideoConfig, String> {
        if first.codec != Codec::H264 {
            return Err(format!("{:?} has no MP4 sample entry here", first.codec));
        }
        let (width, height) = first.picture_size().ok_or("video without size")?;
        let (mut sps, mut pps) = (None, None);
        for nal in nals(&first.data) {
            match nal_type(nal) {
                7 => sps = sps.or(Some(nal)),
                8 => pps = pps.or(Some(nal)),
                _ => {}
            }
        }
        let (sps, pps) = (
            sps.ok_or("keyframe without SPS")?,
            pps.ok_or("keyframe without PPS")?,
        );
        if sps.len() < 4 {
            return Err("SPS too short".into());
        }
        let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        avcc.extend_from_slice(sps);
        avcc.push(1);
        avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        avcc.extend_from_slice(pps);
        Ok(VideoConfig {
            width,
            height,
            avcc,
        })
    }

    /// The `avc1` sample entry.
    pub fn write_entry(&self, b: &mut Boxes) {
        b.bx(b"avc1", |b| {
            b.zeros(6);
            b.u16(1);
            b.zeros(16);
            b.u16(self.width as u16);
            b.u16(self.height as u16);
            b.u32(0x0048_0000);
            b.u32(0x0048_0000);
            b.u32(0);
            b.u16(1);
            b.zeros(32);
            b.u16(0x18);
            b.u16(0xffff);
            b.bx(b"avcC", |b| b.bytes(&self.avcc));
        });
    }
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Samples in one AAC frame.
pub(crate) const AAC_FRAME_SAMPLES: u32 = 1024;

/// AAC audio as an MP4 sample entry needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioConfig {
    pub rate: u32,
    pub channels: u16,
    /// The AudioSpecificConfig.
    pub config: [u8; 2],
}

impl AudioConfig {
    /// From an AAC unit: its ADTS header, or the caps of raw AAC.
    pub fn from_unit(first: &AccessUnit) -> Result<AudioConfig, String> {
        if first.codec != Codec::Aac {
            return Err(format!("{:?} is not AAC", first.codec));
        }
        let h = &first.data;
        let (object, rate_index, channels) = if adts_header_len(h).is_some() {
            (
                (h[2] >> 6) + 1,
                (h[2] >> 2) & 0xf,
                ((h[2] & 1) << 2) | (h[3] >> 6),
            )
        } else {
            // Raw AAC: the AudioSpecificConfig is the caps' codec_data.
            let config = first
                .caps
                .as_ref()
                .and_then(|c| c.structure(0)?.get::<gstreamer::Buffer>("codec_data").ok())
                .ok_or("raw AAC without codec_data")?;
            let map = config.map_readable().map_err(|_| "unreadable codec_data")?;
            if map.len() < 2 {
                return Err("short codec_data".into());
            }
            (
                map[0] >> 3,
                ((map[0] & 7) << 1) | (map[1] >> 7),
                (map[1] >> 3) & 0xf,
            )
        };
        let rate = *AAC_RATES
            .get(rate_index as usize)
            .ok_or("unknown AAC sample rate")?;
        let config =
            (u16::from(object) << 11) | (u16::from(rate_index) << 7) | (u16::from(channels) << 3);
        Ok(AudioConfig {
            rate,
            channels: u16::from(channels.max(1)),
            config: config.to_be_bytes(),
        })
    }

    /// The `mp4a` sample entry with its `esds`.
    pub fn write_entry(&self, b: &mut Boxes) {
        b.bx(b"mp4a", |b| {
            b.zeros(6);
            b.u16(1);
            b.zeros(8);
            b.u16(self.channels);
            b.u16(16);
            b.u32(0);
            b.u32(self.rate << 16);
            b.full(b"esds", 0, 0, |b| {
                descriptor(b, 3, |b| {
                    b.u16(2);
                    b.u8(0);
                    descriptor(b, 4, |b| {
                        b.u8(0x40);
                        b.u8(0x15);
                        b.bytes(&[0, 0, 0]);
                        b.u32(0);
                        b.u32(0);
                        descriptor(b, 5, |b| b.bytes(&self.config));
                    });
                    descriptor(b, 6, |b| b.u8(2));
                });
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_annex_b_and_drops_parameter_sets() {
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 1, 2, 3, // SPS
            0, 0, 1, 0x68, 4, // PPS
            0, 0, 1, 0x65, 5, 6, 0, 7, // IDR with a zero inside
        ];
        let all: Vec<&[u8]> = nals(&au).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[1], &[0x67, 1, 2, 3]);
        let kept: Vec<&[u8]> = sample_nals(&au).collect();
        assert_eq!(kept, vec![&[0x65, 5, 6, 0, 7][..]]);
    }

    #[test]
    fn strips_adts_headers() {
        let frame = [0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0xaa, 0xbb];
        assert_eq!(raw_aac(&frame), &[0xaa, 0xbb]);
        assert_eq!(raw_aac(&[1, 2, 3]), &[1, 2, 3]);
    }
}
