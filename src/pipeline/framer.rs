//! PES payloads to access units, as the features take them (what the
//! GStreamer parsers did for pushed streams, without a thread or a copy):
//!
//! - video: one access unit per PES (encoders send one picture per PES);
//!   keyframes are IDR (H.264) or IRAP (H.265) pictures; the newest
//!   parameter sets (VPS, SPS, PPS) are put in front of a keyframe that
//!   lacks them, so every GOP decodes alone; nothing goes out before the
//!   first keyframe with its parameter sets; the picture size comes from
//!   the SPS; trailing zero bytes are cut off (shared bytes, no copy);
//! - audio: each ADTS frame of a PES is an access unit (a slice of the
//!   PES's bytes), timed from the PES's PTS at 1024 samples a frame.
//!
//! Timestamps: the session's timeline from the encoder's clock
//! ([`super::clock`]): unwrapped, counted from one second before the
//! first timestamp, and continued across jumps of the clock, the first
//! unit after a jump marked as a discontinuity.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::clock::{Jump, SessionClock};
use super::ts_demux::Pes;
use crate::media::aac::AdtsHeader;
use crate::media::nal::{
    h264_nal_type, h265_nal_type, len_without_trailing_zeros, nal_at, nal_starts, H265_PPS,
    H265_SPS, H265_VPS,
};
use crate::media::sps::PictureFormat;
use crate::media::{now_millis, AccessUnit, Codec, TrackFormat};

/// The parameter sets of a video track, as last seen.
#[derive(Default)]
struct ParameterSets {
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

#[derive(Default)]
struct Video {
    codec: Option<Codec>,
    params: ParameterSets,
    /// The parameter sets changed since the format was made.
    params_changed: bool,
    /// The track's format, made from the parameter sets.
    format: Option<Arc<TrackFormat>>,
    /// A keyframe with its parameter sets has gone out.
    ready: bool,
    last_dts: Option<Duration>,
}

#[derive(Default)]
struct Audio {
    /// (object type, rate index, channels) of the format.
    config: Option<(u8, u8, u8)>,
    format: Option<Arc<TrackFormat>>,
    /// Where the last raw frame ended (raw frames are timed in whole
    /// milliseconds; one within [`RAW_AUDIO_SNAP`] of this is put here).
    next: Option<Duration>,
}

/// Raw AAC frames this close to where the previous one ended follow it
/// exactly (their times are rounded to milliseconds by RTMP).
const RAW_AUDIO_SNAP: Duration = Duration::from_millis(2);

/// Turns one session's PES payloads into access units.
#[derive(Default)]
pub struct Framer {
    clock: SessionClock,
    /// A jump of the clock not yet taken by [`Framer::take_jump`].
    jump: Option<Jump>,
    video: Video,
    audio: Audio,
}

impl Framer {
    /// The programme changed: a video track of another codec starts over.
    pub fn programme(&mut self, video: Option<Codec>) {
        if video != self.video.codec {
            self.video = Video {
                codec: video,
                ..Video::default()
            };
        }
    }

    /// The video codec of the programme.
    pub fn video_codec(&self) -> Option<Codec> {
        self.video.codec
    }

    /// The video's parameter sets, given apart from its pictures (RTMP's
    /// sequence header): they go in front of every keyframe, and a change
    /// makes a new format.
    pub fn set_parameter_sets(&mut self, vps: Option<Bytes>, sps: Bytes, pps: Bytes) {
        let params = &mut self.video.params;
        for (slot, set) in [
            (&mut params.vps, vps),
            (&mut params.sps, Some(sps)),
            (&mut params.pps, Some(pps)),
        ] {
            if set.is_some() && *slot != set {
                *slot = set;
                self.video.params_changed = true;
            }
        }
    }

    /// The audio's format, given apart from its frames (RTMP's AAC
    /// sequence header).
    pub fn set_audio_format(&mut self, format: Arc<TrackFormat>) {
        if self.audio.format.as_ref() != Some(&format) {
            self.audio.format = Some(format);
            self.audio.config = None;
        }
    }

    /// The access unit of one raw AAC frame at `pts` (90 kHz), once the
    /// format is known.
    pub fn raw_audio(&mut self, pts: u64, data: Bytes) -> Option<AccessUnit> {
        let format = self.audio.format.clone()?;
        let rate = format.as_aac()?.rate()?;
        let drives = self.video.codec.is_none();
        let (time, discontinuity) = self.time(pts, drives);
        let time = match self.audio.next {
            Some(next) if !discontinuity && time.abs_diff(next) <= RAW_AUDIO_SNAP => next,
            _ => time,
        };
        let step = aac_frame_duration(rate);
        self.audio.next = Some(time + step);
        Some(AccessUnit {
            codec: Codec::Aac,
            pts: Some(time),
            dts: Some(time),
            duration: Some(step),
            keyframe: true,
            data,
            format: Some(format),
            received_ms: now_millis(),
            discontinuity,
        })
    }

    /// The picture format of the video, once known.
    pub fn picture(&self) -> Option<PictureFormat> {
        Some(self.video.format.as_ref()?.as_video()?.picture)
    }

    /// The session time of a timestamp; a jump of the clock is noted for
    /// [`Framer::take_jump`] and returned.
    fn time(&mut self, ticks: u64, drives: bool) -> (Duration, bool) {
        let time = self.clock.time(ticks, drives);
        let jump = self.clock.take_jump();
        if jump.is_some() {
            self.jump = jump;
        }
        (time, jump.is_some())
    }

    /// A jump of the publisher's clock since the last call, if any.
    pub fn take_jump(&mut self) -> Option<Jump> {
        self.jump.take()
    }

    /// The access unit of a video PES, if it can go out.
    pub fn video(&mut self, pes: Pes) -> Option<AccessUnit> {
        let codec = pes.codec;
        let end = len_without_trailing_zeros(&pes.data);
        if end == 0 {
            return None;
        }
        let mut data = pes.data.slice(..end);
        let mut keyframe = false;
        let mut has = (false, false, false); // vps, sps, pps
                                             // Parameter sets come before the picture's first slice, whose type
                                             // says whether it is a keyframe: the slices, most of the bytes,
                                             // are not searched for start codes.
        let mut starts = nal_starts(&data).peekable();
        while let Some(start) = starts.next() {
            let head = &data[start..];
            let (is_slice, is_key, set) = match codec {
                Codec::H265 => {
                    let kind = h265_nal_type(head);
                    let set = match kind {
                        H265_VPS => Some(0),
                        H265_SPS => Some(1),
                        H265_PPS => Some(2),
                        _ => None,
                    };
                    // A slice's second header byte has temporal_id_plus1,
                    // never 0 (zeros here are an empty NAL unit).
                    let slice = kind < 32 && head.get(1).is_some_and(|b| b & 0x07 != 0);
                    (slice, (16..=23).contains(&kind), set)
                }
                _ => {
                    let kind = h264_nal_type(head);
                    let set = match kind {
                        7 => Some(1),
                        8 => Some(2),
                        _ => None,
                    };
                    ((1..=5).contains(&kind), kind == 5, set)
                }
            };
            if is_slice {
                keyframe = is_key;
                break;
            }
            if let Some(set) = set {
                let nal = nal_at(&data, start, starts.peek().copied());
                let slot = match set {
                    0 => {
                        has.0 = true;
                        &mut self.video.params.vps
                    }
                    1 => {
                        has.1 = true;
                        &mut self.video.params.sps
                    }
                    _ => {
                        has.2 = true;
                        &mut self.video.params.pps
                    }
                };
                if slot.as_deref() != Some(nal) {
                    *slot = Some(Bytes::copy_from_slice(nal));
                    self.video.params_changed = true;
                }
            }
        }
        let params = &self.video.params;
        let complete = params.sps.is_some()
            && params.pps.is_some()
            && (codec != Codec::H265 || params.vps.is_some());
        if keyframe {
            if !complete {
                return None;
            }
            let missing = !has.1 || !has.2 || (codec == Codec::H265 && !has.0);
            if missing {
                data = with_parameter_sets(params, codec, &data);
            }
            self.video.ready = true;
        }
        if !self.video.ready {
            return None;
        }
        if self.video.params_changed {
            self.update_format(codec);
        }
        let dts = pes.dts.map(|t| self.time(t, true));
        let pts = pes.pts.map(|t| self.time(t, true));
        let discontinuity = dts.is_some_and(|t| t.1) || pts.is_some_and(|t| t.1);
        let (pts, dts) = (pts.map(|t| t.0), dts.map(|t| t.0));
        let duration = match (dts, self.video.last_dts) {
            (Some(now), Some(last)) if now > last => Some(now - last),
            _ => None,
        };
        self.video.last_dts = dts.or(self.video.last_dts);
        Some(AccessUnit {
            codec,
            pts,
            dts,
            duration,
            keyframe,
            data,
            format: self.video.format.clone(),
            received_ms: now_millis(),
            discontinuity,
        })
    }

    /// A new format from the parameter sets; one whose SPS does not
    /// parse keeps the last good format.
    fn update_format(&mut self, codec: Codec) {
        let video = &mut self.video;
        video.params_changed = false;
        let params = &video.params;
        let (Some(sps), Some(pps)) = (params.sps.clone(), params.pps.clone()) else {
            return;
        };
        let vps = params.vps.clone().filter(|_| codec == Codec::H265);
        match TrackFormat::video(codec, vps, sps, pps) {
            Some(format) => video.format = Some(format),
            None => tracing::debug!(?codec, "an SPS that does not parse: format kept"),
        }
    }

    /// The access units of an audio PES (ADTS frames), appended to `out`.
    pub fn audio(&mut self, pes: Pes, out: &mut Vec<AccessUnit>) {
        let data = &pes.data;
        // Audio drives the timeline when there is no video.
        let drives = self.video.codec.is_none();
        let first = pes.pts.map(|t| self.time(t, drives));
        let mut discontinuity = first.is_some_and(|t| t.1);
        let first = first.map(|t| t.0);
        let received_ms = now_millis();
        let mut at = 0;
        let mut frame = 0u32;
        while at + 7 <= data.len() {
            let Some(adts) = AdtsHeader::parse(&data[at..]) else {
                break;
            };
            let len = adts.frame_len;
            if len < 7 || at + len > data.len() {
                break;
            }
            let config = (adts.object, adts.rate_index, adts.channels);
            let Some(rate) = adts.rate() else {
                break;
            };
            if self.audio.config != Some(config) {
                self.audio.config = Some(config);
                self.audio.format = TrackFormat::of_adts(&adts);
            }
            let step = aac_frame_duration(rate);
            let pts = first.map(|t| t + step * frame);
            out.push(AccessUnit {
                codec: Codec::Aac,
                pts,
                dts: pts,
                duration: Some(step),
                keyframe: true,
                data: data.slice(at..at + len),
                format: self.audio.format.clone(),
                received_ms,
                discontinuity: std::mem::take(&mut discontinuity),
            });
            at += len;
            frame += 1;
        }
    }
}

/// How long an AAC frame (1024 samples) lasts at `rate`.
fn aac_frame_duration(rate: u32) -> Duration {
    Duration::from_nanos(1024 * 1_000_000_000 / u64::from(rate))
}

/// `data` with the parameter sets in front (one copy, once per GOP at
/// most: only when the encoder did not repeat them).
fn with_parameter_sets(params: &ParameterSets, codec: Codec, data: &[u8]) -> Bytes {
    let sets = [
        params.vps.as_ref().filter(|_| codec == Codec::H265),
        params.sps.as_ref(),
        params.pps.as_ref(),
    ];
    let size: usize = sets.iter().flatten().map(|s| s.len() + 4).sum();
    let mut out = Vec::with_capacity(size + data.len());
    for set in sets.into_iter().flatten() {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(set);
    }
    out.extend_from_slice(data);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::nal::nals;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];

    fn pes(codec: Codec, pts: u64, nals: &[&[u8]]) -> Pes {
        let mut data = Vec::new();
        for nal in nals {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
        data.push(0); // trailing_zero_8bits
        Pes {
            codec,
            pts: Some(pts),
            dts: Some(pts),
            data: Bytes::from(data),
        }
    }

    #[test]
    fn waits_for_a_keyframe_and_repeats_parameter_sets() {
        let mut framer = Framer::default();
        framer.programme(Some(Codec::H264));
        // A delta frame before any keyframe: held back.
        assert!(framer.video(pes(Codec::H264, 0, &[&[0x41, 1]])).is_none());
        let first = framer
            .video(pes(Codec::H264, 3000, &[SPS, &[0x68, 0xce], &[0x65, 2]]))
            .unwrap();
        assert!(first.keyframe);
        assert_eq!(first.picture_size(), Some((640, 360)));
        assert_eq!(*first.data.last().unwrap(), 2, "trailing zero cut off");
        let delta = framer.video(pes(Codec::H264, 6000, &[&[0x41, 3]])).unwrap();
        assert!(!delta.keyframe);
        assert_eq!(delta.duration, Some(Duration::from_nanos(33_333_333)));
        // A keyframe without parameter sets gets the last ones in front.
        let second = framer.video(pes(Codec::H264, 9000, &[&[0x65, 4]])).unwrap();
        let kinds: Vec<u8> = nals(&second.data).map(h264_nal_type).collect();
        assert_eq!(kinds, vec![7, 8, 5]);
        // Times count from a second before the first one that went out.
        assert_eq!(first.pts, Some(Duration::from_secs(1)));
        assert_eq!(second.pts, Some(Duration::from_nanos(1_066_666_666)));
    }

    #[test]
    fn the_first_slice_says_whether_a_unit_is_a_keyframe() {
        let mut framer = Framer::default();
        framer.programme(Some(Codec::H264));
        let (aud, sei, pps): (&[u8], &[u8], &[u8]) =
            (&[0x09, 0xf0], &[0x06, 5, 1, 0x80], &[0x68, 0xce]);
        // Delimiter, SEI and parameter sets before an IDR picture of two
        // slices: a keyframe, its sets taken.
        let key = framer
            .video(pes(
                Codec::H264,
                3000,
                &[aud, sei, SPS, pps, &[0x65, 1], &[0x65, 2]],
            ))
            .unwrap();
        assert!(key.keyframe);
        assert_eq!(key.picture_size(), Some((640, 360)));
        assert_eq!(nals(&key.data).count(), 6, "the unit is left whole");
        // A delta picture after an SEI: not a keyframe.
        let delta = framer
            .video(pes(Codec::H264, 6000, &[aud, sei, &[0x41, 3]]))
            .unwrap();
        assert!(!delta.keyframe);
    }

    #[test]
    fn an_empty_nal_unit_is_not_an_h265_slice() {
        let mut framer = Framer::default();
        framer.programme(Some(Codec::H265));
        // Only the sets' types matter here. An empty NAL unit (two start
        // codes in a row) reads as type 0, a slice type, unless its header
        // is checked: the sets after it would not be looked at.
        let (vps, sps, pps): (&[u8], &[u8], &[u8]) =
            (&[0x40, 1, 0xaa], &[0x42, 1, 0xbb], &[0x44, 1, 0xcc]);
        let unit = pes(Codec::H265, 3000, &[&[], vps, sps, pps, &[0x26, 1, 0xdd]]);
        let _ = framer.video(unit);
        assert!(framer.video.params.vps.is_some() && framer.video.params.pps.is_some());
    }

    #[test]
    fn parameter_sets_given_apart_go_in_front_of_keyframes() {
        let mut framer = Framer::default();
        framer.programme(Some(Codec::H264));
        framer.set_parameter_sets(
            None,
            Bytes::from_static(SPS),
            Bytes::from_static(&[0x68, 0xce]),
        );
        let key = framer.video(pes(Codec::H264, 3000, &[&[0x65, 2]])).unwrap();
        let kinds: Vec<u8> = nals(&key.data).map(h264_nal_type).collect();
        assert_eq!(kinds, vec![7, 8, 5]);
        assert_eq!(key.picture_size(), Some((640, 360)));
        let format = key.format.clone().unwrap();
        // The same sets again: the same format; new ones: a new format.
        framer.set_parameter_sets(
            None,
            Bytes::from_static(SPS),
            Bytes::from_static(&[0x68, 0xce]),
        );
        let next = framer.video(pes(Codec::H264, 6000, &[&[0x65, 3]])).unwrap();
        assert!(Arc::ptr_eq(&format, next.format.as_ref().unwrap()));
        framer.set_parameter_sets(
            None,
            Bytes::from_static(SPS),
            Bytes::from_static(&[0x68, 0xcf]),
        );
        let changed = framer.video(pes(Codec::H264, 9000, &[&[0x65, 4]])).unwrap();
        assert!(!Arc::ptr_eq(&format, changed.format.as_ref().unwrap()));
    }

    #[test]
    fn raw_audio_follows_its_millisecond_times_exactly() {
        let mut framer = Framer::default();
        assert!(
            framer.raw_audio(0, Bytes::from_static(&[0x21])).is_none(),
            "no format yet"
        );
        framer.set_audio_format(TrackFormat::of_audio_specific_config(&[0x11, 0x90]).unwrap());
        // 48 kHz frames are 21.333 ms: RTMP says 0, 21, 43, 64 ms.
        let units: Vec<AccessUnit> = [0u64, 21, 43, 64]
            .iter()
            .map(|ms| {
                framer
                    .raw_audio(ms * 90, Bytes::from_static(&[0x21]))
                    .unwrap()
            })
            .collect();
        let step = Duration::from_nanos(21_333_333);
        for pair in units.windows(2) {
            assert_eq!(pair[1].pts.unwrap() - pair[0].pts.unwrap(), step);
        }
        // A gap of a second is kept as it is.
        let later = framer
            .raw_audio(1064 * 90, Bytes::from_static(&[0x21]))
            .unwrap();
        let gap = later.pts.unwrap() - units[3].pts.unwrap();
        assert!(
            gap.abs_diff(Duration::from_secs(1)) < Duration::from_micros(10),
            "{gap:?}"
        );
    }

    #[test]
    fn splits_adts_frames() {
        let mut data = Vec::new();
        for payload in [10usize, 20] {
            let len = payload + 7;
            data.extend_from_slice(&[
                0xff,
                0xf1,
                0x4c, // LC, 48 kHz, channels high bit 0
                0x80 | ((len >> 11) as u8 & 3),
                (len >> 3) as u8,
                ((len as u8 & 7) << 5) | 0x1f,
                0xfc,
            ]);
            data.extend(std::iter::repeat_n(0xaa, payload));
        }
        let mut framer = Framer::default();
        let mut out = Vec::new();
        framer.audio(
            Pes {
                codec: Codec::Aac,
                pts: Some(90_000),
                dts: None,
                data: Bytes::from(data),
            },
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].data.len(), out[1].data.len()), (17, 27));
        let step = out[1].pts.unwrap() - out[0].pts.unwrap();
        assert_eq!(step, Duration::from_nanos(21_333_333));
        let aac = out[0].format.as_ref().unwrap().as_aac().unwrap().clone();
        assert_eq!((aac.rate(), aac.channels), (Some(48_000), 2));
        assert!(Arc::ptr_eq(
            out[0].format.as_ref().unwrap(),
            out[1].format.as_ref().unwrap()
        ));
    }
}
