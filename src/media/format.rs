//! A track's format, typed: what the bitstream itself says about a track,
//! which is all the containers and decoders need. Video: the parameter
//! sets (H.265's VPS, the SPS and the PPS) and the picture they describe
//! (size, chroma format, bit depth, read from the SPS); AAC: the
//! AudioSpecificConfig. Every [`super::AccessUnit`] points at its track's
//! format (shared, one allocation per format change), so that a format
//! change is a comparison of typed values, and GStreamer caps are made
//! from it only where a GStreamer pipeline needs them.
//!
//! [`FormatFollower`] keeps a track's format as its units go by: it reads
//! the parameter sets in front of every keyframe (the parsers put them
//! there) and the header of every ADTS frame, and makes a new format only
//! when they change.

use std::sync::Arc;

use bytes::Bytes;

use super::aac::{AdtsHeader, RATES};
use super::nal::{h264_nal_type, h265_nal_type, nals, H265_PPS, H265_SPS, H265_VPS};
use super::sps::{self, PictureFormat};
use super::Codec;

const H264_SPS: u8 = 7;
const H264_PPS: u8 = 8;

/// The format of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackFormat {
    H264(VideoFormat),
    H265(VideoFormat),
    Aac(AacFormat),
}

/// An H.264 or H.265 track: its parameter sets (Annex-B NAL units with
/// their headers, no start codes) and the pictures they describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFormat {
    /// H.265 only.
    pub vps: Option<Bytes>,
    pub sps: Bytes,
    pub pps: Bytes,
    pub picture: PictureFormat,
}

/// An AAC track: its AudioSpecificConfig, as MP4's `esds` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacFormat {
    /// The audio object type (2: AAC LC).
    pub object: u8,
    pub rate_index: u8,
    pub channels: u8,
}

impl TrackFormat {
    /// A video format from its parameter sets; `None` when the SPS does
    /// not parse or a set is missing (H.265 needs a VPS).
    pub fn video(
        codec: Codec,
        vps: Option<Bytes>,
        sps: Bytes,
        pps: Bytes,
    ) -> Option<Arc<TrackFormat>> {
        let picture = match codec {
            Codec::H264 => sps::h264(&sps)?,
            Codec::H265 => {
                vps.as_ref()?;
                sps::h265(&sps)?
            }
            Codec::Aac => return None,
        };
        let video = VideoFormat {
            vps,
            sps,
            pps,
            picture,
        };
        Some(Arc::new(match codec {
            Codec::H265 => TrackFormat::H265(video),
            _ => TrackFormat::H264(video),
        }))
    }

    /// The video format of the parameter sets in front of a keyframe
    /// (Annex-B), if all of them are there.
    pub fn of_keyframe(codec: Codec, data: &[u8]) -> Option<Arc<TrackFormat>> {
        let ParameterSets { vps, sps, pps } = parameter_sets(codec, data);
        let copy = |nal: Option<&[u8]>| nal.map(Bytes::copy_from_slice);
        TrackFormat::video(codec, copy(vps), copy(sps)?, copy(pps)?)
    }

    /// An AAC format from an ADTS header.
    pub fn of_adts(header: &AdtsHeader) -> Option<Arc<TrackFormat>> {
        header.rate()?;
        Some(Arc::new(TrackFormat::Aac(AacFormat {
            object: header.object,
            rate_index: header.rate_index,
            channels: header.channels,
        })))
    }

    /// An AAC format from an AudioSpecificConfig (raw AAC's codec data).
    pub fn of_audio_specific_config(config: &[u8]) -> Option<Arc<TrackFormat>> {
        let [a, b, ..] = *config else {
            return None;
        };
        let format = AacFormat {
            object: a >> 3,
            rate_index: ((a & 7) << 1) | (b >> 7),
            channels: (b >> 3) & 0xf,
        };
        format.rate()?;
        Some(Arc::new(TrackFormat::Aac(format)))
    }

    pub fn codec(&self) -> Codec {
        match self {
            TrackFormat::H264(_) => Codec::H264,
            TrackFormat::H265(_) => Codec::H265,
            TrackFormat::Aac(_) => Codec::Aac,
        }
    }

    /// The video part, for H.264 and H.265.
    pub fn as_video(&self) -> Option<&VideoFormat> {
        match self {
            TrackFormat::H264(v) | TrackFormat::H265(v) => Some(v),
            TrackFormat::Aac(_) => None,
        }
    }

    /// The AAC part.
    pub fn as_aac(&self) -> Option<&AacFormat> {
        match self {
            TrackFormat::Aac(a) => Some(a),
            _ => None,
        }
    }

    /// The picture size (video).
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        let p = self.as_video()?.picture;
        (p.width > 0 && p.height > 0).then_some((p.width, p.height))
    }
}

impl AacFormat {
    /// The sample rate.
    pub fn rate(&self) -> Option<u32> {
        RATES.get(usize::from(self.rate_index)).copied()
    }

    /// The two-byte AudioSpecificConfig.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        [
            (self.object << 3) | (self.rate_index >> 1),
            ((self.rate_index & 1) << 7) | (self.channels << 3),
        ]
    }
}

/// The parameter sets found among a unit's NAL units.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParameterSets<'a> {
    pub vps: Option<&'a [u8]>,
    pub sps: Option<&'a [u8]>,
    pub pps: Option<&'a [u8]>,
}

/// The first VPS, SPS and PPS among the NAL units of `data` (Annex-B).
pub fn parameter_sets(codec: Codec, data: &[u8]) -> ParameterSets<'_> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in nals(data) {
        match codec {
            Codec::H264 => match h264_nal_type(nal) {
                H264_SPS => sps = sps.or(Some(nal)),
                H264_PPS => pps = pps.or(Some(nal)),
                _ => {}
            },
            Codec::H265 => match h265_nal_type(nal) {
                H265_VPS => vps = vps.or(Some(nal)),
                H265_SPS => sps = sps.or(Some(nal)),
                H265_PPS => pps = pps.or(Some(nal)),
                _ => {}
            },
            Codec::Aac => {}
        }
    }
    ParameterSets { vps, sps, pps }
}

/// Follows one track's format as its units go by.
#[derive(Debug, Default)]
pub struct FormatFollower {
    current: Option<Arc<TrackFormat>>,
}

impl FormatFollower {
    /// The format of a unit of this track: a keyframe's parameter sets or
    /// an ADTS header that differ from the current format's make a new
    /// one; anything else keeps the current one. `fallback` is used for
    /// raw AAC, which carries no header (its config comes with the
    /// track, from the container).
    pub fn follow(
        &mut self,
        codec: Codec,
        keyframe: bool,
        data: &[u8],
        fallback: Option<&Arc<TrackFormat>>,
    ) -> Option<Arc<TrackFormat>> {
        match codec {
            Codec::Aac => {
                if let Some(header) = AdtsHeader::parse(data) {
                    let same = self
                        .current
                        .as_ref()
                        .and_then(|f| f.as_aac())
                        .is_some_and(|a| {
                            (a.object, a.rate_index, a.channels)
                                == (header.object, header.rate_index, header.channels)
                        });
                    if !same {
                        self.current = TrackFormat::of_adts(&header).or(self.current.take());
                    }
                } else if let Some(fallback) = fallback {
                    if self.current.as_ref() != Some(fallback) {
                        self.current = Some(Arc::clone(fallback));
                    }
                }
            }
            Codec::H264 | Codec::H265 if keyframe => {
                let ParameterSets { vps, sps, pps } = parameter_sets(codec, data);
                let same = self
                    .current
                    .as_ref()
                    .and_then(|f| f.as_video())
                    .is_some_and(|v| {
                        self.current.as_ref().map(|f| f.codec()) == Some(codec)
                            && Some(v.sps.as_ref()) == sps
                            && Some(v.pps.as_ref()) == pps
                            && v.vps.as_deref() == vps
                    });
                if !same && sps.is_some() {
                    if let Some(format) = TrackFormat::of_keyframe(codec, data) {
                        self.current = Some(format);
                    }
                }
            }
            _ => {}
        }
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An H.264 SPS (High, 640x360, 4:2:0, 8 bit) and PPS as x264 writes
    /// them.
    pub(crate) const SPS_640X360: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn keyframe(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        let mut data = vec![];
        for nal in [sps, pps, &[0x65, 0x88, 0x84][..]] {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
        data
    }

    #[test]
    fn a_keyframe_gives_the_video_format() {
        let format = TrackFormat::of_keyframe(Codec::H264, &keyframe(SPS_640X360, PPS)).unwrap();
        assert_eq!(format.codec(), Codec::H264);
        assert_eq!(format.picture_size(), Some((640, 360)));
        let video = format.as_video().unwrap();
        assert_eq!(video.sps.as_ref(), SPS_640X360);
        assert_eq!(video.pps.as_ref(), PPS);
        assert_eq!(video.picture.chroma_format, 1);
        // No parameter sets: no format.
        assert!(TrackFormat::of_keyframe(Codec::H264, &[0, 0, 0, 1, 0x65, 1]).is_none());
    }

    #[test]
    fn the_follower_makes_a_new_format_only_on_a_change() {
        let mut follower = FormatFollower::default();
        let first = follower
            .follow(Codec::H264, true, &keyframe(SPS_640X360, PPS), None)
            .unwrap();
        // The same parameter sets again: the same shared format.
        let again = follower
            .follow(Codec::H264, true, &keyframe(SPS_640X360, PPS), None)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        // A delta frame keeps it.
        let delta = follower
            .follow(Codec::H264, false, &[0, 0, 1, 0x41, 9], None)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &delta));
        // Another PPS is another format.
        let other_pps = [0x68, 0xee, 0x3c, 0x80];
        let changed = follower
            .follow(Codec::H264, true, &keyframe(SPS_640X360, &other_pps), None)
            .unwrap();
        assert_ne!(first, changed);
    }

    #[test]
    fn aac_formats_from_adts_and_from_the_config() {
        // LC, 48 kHz, stereo.
        let adts = [0xff, 0xf1, 0x4c, 0x80, 0x02, 0x3f, 0xfc];
        let mut follower = FormatFollower::default();
        let format = follower.follow(Codec::Aac, true, &adts, None).unwrap();
        let aac = format.as_aac().unwrap();
        assert_eq!((aac.object, aac.rate(), aac.channels), (2, Some(48_000), 2));
        assert_eq!(aac.audio_specific_config(), [0x11, 0x90]);
        let from_config = TrackFormat::of_audio_specific_config(&[0x11, 0x90]).unwrap();
        assert_eq!(from_config, format);
        // Raw AAC takes the track's config.
        let mut raw = FormatFollower::default();
        let taken = raw
            .follow(Codec::Aac, true, &[0x21, 0x10], Some(&from_config))
            .unwrap();
        assert!(Arc::ptr_eq(&taken, &from_config));
    }
}
