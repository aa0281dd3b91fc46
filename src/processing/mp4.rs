//! MP4 files written directly from parsed access units (H.264 + AAC), with
//! the index (`moov`) in front: the remux of clips without a GStreamer
//! pipeline. Each video unit's Annex-B NAL units get 4-byte lengths instead
//! of start codes (parameter sets and access unit delimiters go into the
//! `avcC` record instead); each ADTS frame loses its header. That rewrite
//! is the only work: one pass over the bytes, into the output.
//!
//! Layout: `ftyp`, `moov` (one track per kind, one chunk per track), `mdat`
//! (all video samples, then all audio samples). Timestamps keep the
//! units' decode times (90 kHz for video, the sample rate for audio); an
//! edit list starts each track where the clip starts.

use std::time::Duration;

use crate::pipeline::{adts_header_len, ticks, AccessUnit, Codec};

pub type Mp4Result<T> = Result<T, String>;

const VIDEO_TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 1000;

/// Whether [`write`] handles these tracks (else: the GStreamer muxer).
pub fn supported(video: &[&AccessUnit], audio: &[&AccessUnit]) -> bool {
    video.first().is_some_and(|u| u.codec == Codec::H264)
        && audio.iter().all(|u| u.codec == Codec::Aac)
}

/// The MP4 file of `video` (decode order, first a keyframe) and `audio`.
/// `out` receives the bytes in order.
pub fn write(
    video: &[&AccessUnit],
    audio: &[&AccessUnit],
    out: &mut impl std::io::Write,
) -> Mp4Result<u64> {
    let video_track = VideoTrack::new(video)?;
    let audio_track = AudioTrack::new(audio)?;
    let start = video_track.start_pts;
    let ftyp = ftyp();
    // The moov's size does not depend on the chunk offsets it holds, so
    // build it once to learn its size, then again with the offsets.
    let header_len = |moov: &[u8]| (ftyp.len() + moov.len() + 16) as u64;
    let draft = moov(&video_track, audio_track.as_ref(), start, [0, 0]);
    let video_at = header_len(&draft);
    let audio_at = video_at + video_track.bytes;
    let moov = moov(
        &video_track,
        audio_track.as_ref(),
        start,
        [video_at, audio_at],
    );
    debug_assert_eq!(moov.len(), draft.len());
    let payload = video_track.bytes + audio_track.as_ref().map_or(0, |a| a.bytes);

    let io = |e: std::io::Error| format!("writing MP4: {e}");
    out.write_all(&ftyp).map_err(io)?;
    out.write_all(&moov).map_err(io)?;
    // mdat with a 64-bit size: the header length is the same whatever the size.
    let mut mdat = Vec::with_capacity(16);
    mdat.extend_from_slice(&1u32.to_be_bytes());
    mdat.extend_from_slice(b"mdat");
    mdat.extend_from_slice(&(16 + payload).to_be_bytes());
    out.write_all(&mdat).map_err(io)?;
    for unit in video {
        for nal in sample_nals(&unit.data) {
            out.write_all(&(nal.len() as u32).to_be_bytes())
                .map_err(io)?;
            out.write_all(nal).map_err(io)?;
        }
    }
    for unit in audio {
        out.write_all(raw_aac(&unit.data)).map_err(io)?;
    }
    Ok(header_len(&moov) + payload)
}

/// The NAL units of an Annex-B access unit (start codes removed). Start
/// codes are found with a vectorised search: a slice is most of a frame
/// and holds none.
fn nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
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
fn sample_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    nals(data).filter(|n| !matches!(nal_type(n), 7..=9))
}

struct VideoTrack {
    width: u32,
    height: u32,
    avcc: Vec<u8>,
    /// Per sample: (size, duration, composition offset, keyframe).
    samples: Vec<(u32, u32, u32, bool)>,
    bytes: u64,
    start_pts: Duration,
    /// First PTS minus first DTS, in the track's timescale.
    lead: u32,
    duration: u64,
}

impl VideoTrack {
    fn new(video: &[&AccessUnit]) -> Mp4Result<VideoTrack> {
        let first = video.first().ok_or("clip without video")?;
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

        let dts = |u: &AccessUnit| ticks(u.decode_time().unwrap_or_default(), VIDEO_TIMESCALE);
        let pts = |u: &AccessUnit| u.pts.map(|p| ticks(p, VIDEO_TIMESCALE)).unwrap_or(dts(u));
        let mut samples = Vec::with_capacity(video.len());
        let mut bytes = 0u64;
        for (i, unit) in video.iter().enumerate() {
            let size: usize = sample_nals(&unit.data).map(|n| n.len() + 4).sum();
            let duration = match video.get(i + 1) {
                Some(next) => dts(next).saturating_sub(dts(unit)),
                None => unit
                    .duration
                    .map(|d| ticks(d, VIDEO_TIMESCALE))
                    .or_else(|| samples.last().map(|s: &(u32, u32, u32, bool)| s.1 as u64))
                    .unwrap_or(3000),
            };
            let offset = pts(unit).saturating_sub(dts(unit));
            samples.push((size as u32, duration as u32, offset as u32, unit.keyframe));
            bytes += size as u64;
        }
        let duration = samples.iter().map(|s| s.1 as u64).sum();
        Ok(VideoTrack {
            width,
            height,
            avcc,
            samples,
            bytes,
            start_pts: first.pts.unwrap_or_default(),
            lead: (pts(first).saturating_sub(dts(first))) as u32,
            duration,
        })
    }
}

struct AudioTrack {
    rate: u32,
    channels: u16,
    config: [u8; 2],
    sizes: Vec<u32>,
    bytes: u64,
    start_pts: Duration,
}

/// An ADTS frame's payload (the raw AAC frame); raw frames as they are.
fn raw_aac(frame: &[u8]) -> &[u8] {
    match adts_header_len(frame) {
        Some(header) => &frame[header.min(frame.len())..],
        None => frame,
    }
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AudioTrack {
    fn new(audio: &[&AccessUnit]) -> Mp4Result<Option<AudioTrack>> {
        let Some(first) = audio.first() else {
            return Ok(None);
        };
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
        let sizes: Vec<u32> = audio
            .iter()
            .map(|u| raw_aac(&u.data).len() as u32)
            .collect();
        Ok(Some(AudioTrack {
            rate,
            channels: u16::from(channels.max(1)),
            config: config.to_be_bytes(),
            bytes: sizes.iter().map(|&s| s as u64).sum(),
            sizes,
            start_pts: first.pts.unwrap_or_default(),
        }))
    }

    fn duration(&self) -> u64 {
        self.sizes.len() as u64 * 1024
    }
}

/// Box writer: `bx(kind, |b| ...)` appends a box with its size filled in.
#[derive(Default)]
struct Boxes(Vec<u8>);

impl Boxes {
    fn bx(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Boxes)) {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.0.extend_from_slice(kind);
        body(self);
        let size = (self.0.len() - at) as u32;
        self.0[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    /// A full box: version and flags first.
    fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Boxes)) {
        self.bx(kind, |b| {
            b.u32((u32::from(version) << 24) | flags);
            body(b);
        });
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// The unity matrix of mvhd and tkhd.
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

fn ftyp() -> Vec<u8> {
    let mut b = Boxes::default();
    b.bx(b"ftyp", |b| {
        b.bytes(b"isom");
        b.u32(0x200);
        for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
            b.bytes(brand);
        }
    });
    b.0
}

fn to_movie(ticks: u64, scale: u32) -> u64 {
    ticks * u64::from(MOVIE_TIMESCALE) / u64::from(scale)
}

fn moov(
    video: &VideoTrack,
    audio: Option<&AudioTrack>,
    start: Duration,
    offsets: [u64; 2],
) -> Vec<u8> {
    let video_duration = to_movie(video.duration, VIDEO_TIMESCALE);
    let audio_delay = audio.map_or(0, |a| {
        ticks(a.start_pts.saturating_sub(start), MOVIE_TIMESCALE)
    });
    let audio_duration = audio.map_or(0, |a| audio_delay + to_movie(a.duration(), a.rate));
    let duration = video_duration.max(audio_duration);
    let mut b = Boxes::default();
    b.bx(b"moov", |b| {
        b.full(b"mvhd", 1, 0, |b| {
            b.u64(0);
            b.u64(0);
            b.u32(MOVIE_TIMESCALE);
            b.u64(duration);
            b.u32(0x0001_0000);
            b.u16(0x0100);
            b.zeros(10);
            b.matrix();
            b.zeros(24);
            b.u32(if audio.is_some() { 3 } else { 2 });
        });
        video_trak(b, video, offsets[0]);
        if let Some(audio) = audio {
            audio_trak(b, audio, start, audio_delay, offsets[1]);
        }
    });
    b.0
}

fn tkhd(b: &mut Boxes, id: u32, duration: u64, audio: bool, size: (u32, u32)) {
    b.full(b"tkhd", 1, 3, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(id);
        b.u32(0);
        b.u64(duration);
        b.zeros(8);
        b.u16(0);
        b.u16(if audio { 1 } else { 0 });
        b.u16(if audio { 0x0100 } else { 0 });
        b.u16(0);
        b.matrix();
        b.u32(size.0 << 16);
        b.u32(size.1 << 16);
    });
}

fn mdhd_hdlr(b: &mut Boxes, scale: u32, duration: u64, handler: &[u8; 4], name: &str) {
    b.full(b"mdhd", 1, 0, |b| {
        b.u64(0);
        b.u64(0);
        b.u32(scale);
        b.u64(duration);
        b.u16(0x55c4); // "und"
        b.u16(0);
    });
    b.full(b"hdlr", 0, 0, |b| {
        b.u32(0);
        b.bytes(handler);
        b.zeros(12);
        b.bytes(name.as_bytes());
        b.u8(0);
    });
}

fn dinf(b: &mut Boxes) {
    b.bx(b"dinf", |b| {
        b.full(b"dref", 0, 0, |b| {
            b.u32(1);
            b.full(b"url ", 0, 1, |_| {});
        });
    });
}

/// An edit list: `empty` movie ticks of nothing, then the media from
/// `media_time` (its own timescale) for `duration` movie ticks.
fn edts(b: &mut Boxes, empty: u64, media_time: u64, duration: u64) {
    b.bx(b"edts", |b| {
        b.full(b"elst", 1, 0, |b| {
            b.u32(if empty > 0 { 2 } else { 1 });
            if empty > 0 {
                b.u64(empty);
                b.u64(u64::MAX); // -1: empty edit
                b.u32(0x0001_0000);
            }
            b.u64(duration);
            b.u64(media_time);
            b.u32(0x0001_0000);
        });
    });
}

/// stsc, stsz and co64 of one chunk holding every sample.
fn one_chunk(b: &mut Boxes, sizes: impl ExactSizeIterator<Item = u32>, offset: u64) {
    let count = sizes.len() as u32;
    b.full(b"stsc", 0, 0, |b| {
        b.u32(1);
        b.u32(1);
        b.u32(count);
        b.u32(1);
    });
    b.full(b"stsz", 0, 0, |b| {
        b.u32(0);
        b.u32(count);
        for size in sizes {
            b.u32(size);
        }
    });
    b.full(b"co64", 0, 0, |b| {
        b.u32(1);
        b.u64(offset);
    });
}

/// Run-length (count, value) pairs.
fn runs(values: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = vec![];
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn video_trak(b: &mut Boxes, t: &VideoTrack, offset: u64) {
    let movie_duration = to_movie(t.duration, VIDEO_TIMESCALE);
    b.bx(b"trak", |b| {
        tkhd(b, 1, movie_duration, false, (t.width, t.height));
        edts(b, 0, u64::from(t.lead), movie_duration);
        b.bx(b"mdia", |b| {
            mdhd_hdlr(b, VIDEO_TIMESCALE, t.duration, b"vide", "liveproc video");
            b.bx(b"minf", |b| {
                b.full(b"vmhd", 0, 1, |b| b.zeros(8));
                dinf(b);
                b.bx(b"stbl", |b| {
                    b.full(b"stsd", 0, 0, |b| {
                        b.u32(1);
                        b.bx(b"avc1", |b| {
                            b.zeros(6);
                            b.u16(1);
                            b.zeros(16);
                            b.u16(t.width as u16);
                            b.u16(t.height as u16);
                            b.u32(0x0048_0000);
                            b.u32(0x0048_0000);
                            b.u32(0);
                            b.u16(1);
                            b.zeros(32);
                            b.u16(0x18);
                            b.u16(0xffff);
                            b.bx(b"avcC", |b| b.bytes(&t.avcc));
                        });
                    });
                    let durations = runs(t.samples.iter().map(|s| s.1));
                    b.full(b"stts", 0, 0, |b| {
                        b.u32(durations.len() as u32);
                        for (n, d) in &durations {
                            b.u32(*n);
                            b.u32(*d);
                        }
                    });
                    if t.samples.iter().any(|s| s.2 != 0) {
                        let offsets = runs(t.samples.iter().map(|s| s.2));
                        b.full(b"ctts", 0, 0, |b| {
                            b.u32(offsets.len() as u32);
                            for (n, o) in &offsets {
                                b.u32(*n);
                                b.u32(*o);
                            }
                        });
                    }
                    let keys: Vec<u32> = (1..=t.samples.len() as u32)
                        .filter(|&i| t.samples[i as usize - 1].3)
                        .collect();
                    b.full(b"stss", 0, 0, |b| {
                        b.u32(keys.len() as u32);
                        for k in &keys {
                            b.u32(*k);
                        }
                    });
                    one_chunk(b, t.samples.iter().map(|s| s.0), offset);
                });
            });
        });
    });
}

/// An MPEG-4 descriptor: tag, one-byte length, body.
fn descriptor(b: &mut Boxes, tag: u8, body: impl FnOnce(&mut Boxes)) {
    let mut inner = Boxes::default();
    body(&mut inner);
    b.u8(tag);
    b.u8(inner.0.len() as u8);
    b.bytes(&inner.0);
}

fn audio_trak(b: &mut Boxes, t: &AudioTrack, start: Duration, delay: u64, offset: u64) {
    let media_duration = t.duration();
    let movie_duration = to_movie(media_duration, t.rate);
    // Audio that starts before the video is skipped by the edit list.
    let skip = ticks(start.saturating_sub(t.start_pts), t.rate);
    b.bx(b"trak", |b| {
        tkhd(b, 2, delay + movie_duration, true, (0, 0));
        edts(
            b,
            delay,
            skip,
            movie_duration.saturating_sub(to_movie(skip, t.rate)),
        );
        b.bx(b"mdia", |b| {
            mdhd_hdlr(b, t.rate, media_duration, b"soun", "liveproc audio");
            b.bx(b"minf", |b| {
                b.full(b"smhd", 0, 0, |b| b.zeros(4));
                dinf(b);
                b.bx(b"stbl", |b| {
                    b.full(b"stsd", 0, 0, |b| {
                        b.u32(1);
                        b.bx(b"mp4a", |b| {
                            b.zeros(6);
                            b.u16(1);
                            b.zeros(8);
                            b.u16(t.channels);
                            b.u16(16);
                            b.u32(0);
                            b.u32(t.rate << 16);
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
                                        descriptor(b, 5, |b| b.bytes(&t.config));
                                    });
                                    descriptor(b, 6, |b| b.u8(2));
                                });
                            });
                        });
                    });
                    b.full(b"stts", 0, 0, |b| {
                        b.u32(1);
                        b.u32(t.sizes.len() as u32);
                        b.u32(1024);
                    });
                    one_chunk(b, t.sizes.iter().copied(), offset);
                });
            });
        });
    });
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

    #[test]
    fn boxes_carry_their_size() {
        let mut b = Boxes::default();
        b.bx(b"moov", |b| b.full(b"mvhd", 0, 0, |b| b.u32(7)));
        assert_eq!(&b.0[..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'v']);
        assert_eq!(&b.0[8..16], &[0, 0, 0, 16, b'm', b'v', b'h', b'd']);
    }
}
