//! What MP4 files need to know of each track, taken from the access units
//! themselves: the video decoder configuration (H.264 `avcC` from the SPS
//! and PPS, H.265 `hvcC` from the VPS, SPS and PPS, which the parser puts
//! in front of every keyframe; chroma format and bit depth from the
//! track's format) and the AAC AudioSpecificConfig (from the ADTS header,
//! or the track's format for raw AAC); the sample entries
//! (`avc1`, `hvc1`, `mp4a`) built from them; and the rewrite of each unit
//! into an MP4 sample (Annex-B start codes become 4-byte lengths,
//! parameter sets and delimiters leave the sample, ADTS headers are
//! dropped).
//!
//! ```text
//! avc1 (visual sample entry: size, resolution)      hvc1 (the same fields)
//!  └─ avcC  profile, level, SPS, PPS                 └─ hvcC  profile/tier/level,
//!                                                             chroma, bit depth,
//!                                                             VPS, SPS, PPS arrays
//! mp4a └─ esds ─ ES_Descriptor ─ DecoderConfig ─ AudioSpecificConfig
//! ```

use super::boxes::{descriptor, Boxes};
pub(crate) use crate::media::aac::raw_aac;
use crate::media::aac::{self, AdtsHeader};
use crate::media::nal::{
    h264_nal_type, h265_nal_type, nals, rbsp, sample_nals, H265_PPS, H265_SPS, H265_VPS,
};
use crate::media::{AccessUnit, Codec};
use crate::media::{MediaError, MediaResult};

/// The size of a video unit as an MP4 sample.
pub(crate) fn video_sample_size(unit: &AccessUnit) -> u32 {
    sample_nals(unit.codec, &unit.data)
        .map(|n| n.len() as u32 + 4)
        .sum()
}

/// Appends a video unit as an MP4 sample to `out`.
pub(crate) fn write_video_sample(
    unit: &AccessUnit,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    for nal in sample_nals(unit.codec, &unit.data) {
        out.write_all(&(nal.len() as u32).to_be_bytes())?;
        out.write_all(nal)?;
    }
    Ok(())
}

/// Video as an MP4 sample entry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    /// The AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord.
    pub config: Vec<u8>,
}

impl VideoConfig {
    /// From a keyframe carrying its parameter sets.
    pub fn from_keyframe(first: &AccessUnit) -> MediaResult<VideoConfig> {
        let (width, height) = first
            .picture_size()
            .ok_or_else(|| MediaError::Unsupported("video without size".into()))?;
        let config = match first.codec {
            Codec::H264 => avc_config(first)?,
            Codec::H265 => hevc_config(first)?,
            Codec::Aac => {
                return Err(MediaError::Unsupported("AAC is not a video codec".into()));
            }
        };
        Ok(VideoConfig {
            codec: first.codec,
            width,
            height,
            config,
        })
    }

    /// The `avc1` or `hvc1` sample entry.
    pub fn write_entry(&self, b: &mut Boxes) {
        let (entry, config) = match self.codec {
            Codec::H265 => (b"hvc1", b"hvcC"),
            _ => (b"avc1", b"avcC"),
        };
        b.bx(entry, |b| {
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
            b.bx(config, |b| b.bytes(&self.config));
        });
    }
}

fn missing(what: &str) -> MediaError {
    MediaError::Unsupported(format!("keyframe without {what}"))
}

/// The AVCDecoderConfigurationRecord of an H.264 keyframe.
fn avc_config(first: &AccessUnit) -> MediaResult<Vec<u8>> {
    let (mut sps, mut pps) = (None, None);
    for nal in nals(&first.data) {
        match h264_nal_type(nal) {
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            _ => {}
        }
    }
    let (sps, pps) = (
        sps.ok_or_else(|| missing("SPS"))?,
        pps.ok_or_else(|| missing("PPS"))?,
    );
    if sps.len() < 4 {
        return Err(MediaError::Unsupported("SPS too short".into()));
    }
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps);
    Ok(avcc)
}

/// The HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3) of an
/// H.265 keyframe: profile, tier and level from the SPS's
/// `profile_tier_level`, chroma format and bit depths from the parsed
/// caps, and the VPS, SPS and PPS as complete arrays.
fn hevc_config(first: &AccessUnit) -> MediaResult<Vec<u8>> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in nals(&first.data) {
        match h265_nal_type(nal) {
            H265_VPS => vps = vps.or(Some(nal)),
            H265_SPS => sps = sps.or(Some(nal)),
            H265_PPS => pps = pps.or(Some(nal)),
            _ => {}
        }
    }
    let (vps, sps, pps) = (
        vps.ok_or_else(|| missing("VPS"))?,
        sps.ok_or_else(|| missing("SPS"))?,
        pps.ok_or_else(|| missing("PPS"))?,
    );
    // sps_video_parameter_set_id(4) sps_max_sub_layers_minus1(3)
    // sps_temporal_id_nesting_flag(1), then the general profile_tier_level:
    // profile space, tier and profile (1 byte), compatibility flags (4),
    // constraint flags (6), level (1).
    let head = rbsp(sps, 2, 13);
    if head.len() < 13 {
        return Err(MediaError::Unsupported("SPS too short".into()));
    }
    let sub_layers = ((head[0] >> 1) & 0x07) + 1;
    let temporal_id_nested = head[0] & 1;
    let picture = first
        .format
        .as_ref()
        .and_then(|f| f.as_video())
        .map(|v| v.picture);
    let chroma_format = picture.map_or(1, |p| p.chroma_format.min(3) as u8);
    let depth = |bits: Option<u32>| bits.unwrap_or(8).clamp(8, 15) as u8 - 8;
    let mut hvcc = vec![1];
    hvcc.extend_from_slice(&head[1..13]);
    hvcc.extend_from_slice(&[
        0xf0,
        0x00, // min_spatial_segmentation_idc: 0
        0xfc, // parallelismType: unknown
        0xfc | chroma_format,
        0xf8 | depth(picture.map(|p| p.bit_depth_luma)),
        0xf8 | depth(picture.map(|p| p.bit_depth_chroma)),
        0x00,
        0x00, // avgFrameRate: unknown
        // constantFrameRate 0, numTemporalLayers, temporalIdNested,
        // lengthSizeMinusOne 3.
        (sub_layers << 3) | (temporal_id_nested << 2) | 3,
        3, // arrays: VPS, SPS, PPS
    ]);
    for (kind, nal) in [(H265_VPS, vps), (H265_SPS, sps), (H265_PPS, pps)] {
        hvcc.push(0x80 | kind); // array_completeness
        hvcc.extend_from_slice(&1u16.to_be_bytes());
        hvcc.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        hvcc.extend_from_slice(nal);
    }
    Ok(hvcc)
}

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
    pub fn from_unit(first: &AccessUnit) -> MediaResult<AudioConfig> {
        if first.codec != Codec::Aac {
            return Err(MediaError::Unsupported(format!(
                "{:?} is not AAC",
                first.codec
            )));
        }
        let h = &first.data;
        let (object, rate_index, channels) = if let Some(adts) = AdtsHeader::parse(h) {
            (adts.object, adts.rate_index, adts.channels)
        } else {
            // Raw AAC: the AudioSpecificConfig is the track's.
            let aac = first
                .format
                .as_ref()
                .and_then(|f| f.as_aac())
                .ok_or_else(|| MediaError::Unsupported("raw AAC without its config".into()))?;
            (aac.object, aac.rate_index, aac.channels)
        };
        let rate = *aac::RATES
            .get(rate_index as usize)
            .ok_or_else(|| MediaError::Unsupported("unknown AAC sample rate".into()))?;
        let config =
            (u16::from(object) << 11) | (u16::from(rate_index) << 7) | (u16::from(channels) << 3);
        Ok(AudioConfig {
            rate,
            channels: u16::from(channels.max(1)),
            config: config.to_be_bytes(),
        })
    }

    /// The 7-byte ADTS header (no CRC) of a raw frame of `payload_len`
    /// bytes, for containers that carry AAC in ADTS (MPEG-TS).
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let object = self.config[0] >> 3;
        let rate_index = ((self.config[0] & 7) << 1) | (self.config[1] >> 7);
        let channels = (self.config[1] >> 3) & 0xf;
        let len = payload_len + 7;
        [
            0xff,
            0xf1,
            ((object.saturating_sub(1) & 3) << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f,
            0xfc,
        ]
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
        let kept: Vec<&[u8]> = sample_nals(Codec::H264, &au).collect();
        assert_eq!(kept, vec![&[0x65, 5, 6, 0, 7][..]]);
    }

    #[test]
    fn adts_headers_round_trip() {
        // AAC LC, 48 kHz (index 3), stereo.
        let config = AudioConfig {
            rate: 48_000,
            channels: 2,
            config: [0x11, 0x90],
        };
        let header = config.adts_header(100);
        assert_eq!(crate::media::aac::adts_header_len(&header), Some(7));
        let mut frame = header.to_vec();
        frame.extend_from_slice(&[0; 100]);
        let unit = AccessUnit {
            codec: Codec::Aac,
            pts: None,
            dts: None,
            duration: None,
            keyframe: true,
            data: bytes::Bytes::from(frame.clone()),
            format: None,
            received_ms: 0,
            discontinuity: false,
        };
        assert_eq!(AudioConfig::from_unit(&unit).unwrap(), config);
        // frame_length covers header and payload.
        let len = (usize::from(frame[3] & 3) << 11)
            | (usize::from(frame[4]) << 3)
            | usize::from(frame[5] >> 5);
        assert_eq!(len, 107);
    }

    #[test]
    fn strips_adts_headers() {
        let frame = [0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0xaa, 0xbb];
        assert_eq!(raw_aac(&frame), &[0xaa, 0xbb]);
        assert_eq!(raw_aac(&[1, 2, 3]), &[1, 2, 3]);
    }
}
