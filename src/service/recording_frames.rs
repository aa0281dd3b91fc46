//! Frames of a recording found by time, wherever its file is (a local
//! file, or parts in object storage), reading small byte ranges: the init
//! segment, then a bisection over the file's fragments by their video
//! decode time (each probe reads up to one fragment's bytes from where it
//! lands to the next `moof`), then the keyframe's own bytes. An hour of
//! recording (3600 fragments) takes about a dozen probes, never a read of
//! the whole file.

use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;

use super::media::Media;
use crate::container::fmp4::whole_fragments;
use crate::container::fmp4_read::{box_size, fragment_start, Fragment, Sample, Track, Tracks};
use crate::error::{Error, Result};
use crate::media::{ticks_to_duration, AccessUnit, MediaError};

/// Bytes read at a time while looking for the next fragment.
const PROBE: u64 = 128 * 1024;
/// Most bytes an init segment may take.
const MOST_INIT: u64 = 1024 * 1024;
/// Fragments walked back from the one holding a time to find a keyframe
/// (one a second: a GOP of up to this many seconds).
const MOST_FRAGMENTS_BACK: usize = 20;

/// A recording opened for reading frames.
pub struct RecordingFrames {
    media: Media,
    tracks: Tracks,
    /// Where the first fragment starts.
    first_fragment: u64,
    /// The first video sample's presentation time, in the video's time
    /// scale (the recording's start).
    first_presentation: u64,
}

fn malformed(what: impl Into<String>) -> Error {
    Error::from(MediaError::Malformed(what.into()))
}

impl RecordingFrames {
    /// Reads the init segment and the first fragment's header of `media`.
    pub async fn open(media: Media) -> Result<Self> {
        let head = read(&media, 0..media.len.min(MOST_INIT)).await?;
        let first_fragment = crate::container::fmp4::init_segment_end(&head)
            .ok_or_else(|| malformed("the recording has no init segment"))?
            as u64;
        let tracks = Tracks::parse(&head[..first_fragment as usize])?;
        let mut frames = Self {
            media,
            tracks,
            first_fragment,
            first_presentation: 0,
        };
        let (_, moof) = frames
            .fragment_from(first_fragment, u64::MAX)
            .await?
            .ok_or_else(|| malformed("the recording has no media yet"))?;
        let fragment = Fragment::parse(&moof, &frames.tracks)?;
        frames.first_presentation = fragment
            .video
            .iter()
            .map(|s| s.presentation())
            .min()
            .ok_or_else(|| malformed("the recording's first fragment has no video"))?;
        Ok(frames)
    }

    /// The video's picture size.
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        self.tracks.video.format.picture_size()
    }

    /// The keyframe shown at `offset` from the recording's first frame,
    /// timed from that frame: the last one presented at or before it (the first one, before the
    /// recording's start; the last one, past its end).
    pub async fn keyframe_at(&self, offset: Duration) -> Result<AccessUnit> {
        let video = &self.tracks.video;
        let (at, sample) = self.keyframe_fragment(offset).await?;
        let start = at + sample.offset;
        let data = read(&self.media, start..start + u64::from(sample.size)).await?;
        self.unit(video, &sample, data, Duration::ZERO)
    }

    /// Every access unit (video and audio, each in decode order) from the
    /// keyframe shown at `from` through the fragment that holds `to`
    /// (offsets from the recording's first frame), timed from `origin`:
    /// the recording's first frame is at `origin`. Read in one range.
    pub async fn units_between(
        &self,
        from: Duration,
        to: Duration,
        origin: Duration,
    ) -> Result<Vec<AccessUnit>> {
        let (start, keyframe) = self.keyframe_fragment(from).await?;
        let target = self.first_presentation + crate::media::ticks(to, self.tracks.video.timescale);
        let (last, moof) = self.fragment_holding(target).await?;
        let last = last.max(start);
        let mdat = read(
            &self.media,
            last + moof.len() as u64..(last + moof.len() as u64 + 8).min(self.media.len),
        )
        .await?;
        let end = (last + moof.len() as u64 + box_size(&mdat).unwrap_or(0)).min(self.media.len);
        let bytes = read(&self.media, start..end).await?;
        let mut units = Vec::new();
        for fragment_range in whole_fragments(&bytes) {
            let at = fragment_range.start;
            let fragment = Fragment::parse(&bytes[fragment_range], &self.tracks)?;
            let video = fragment
                .video
                .iter()
                .filter(|s| s.decode >= keyframe.decode)
                .map(|s| (&self.tracks.video, s));
            let audio = self
                .tracks
                .audio
                .iter()
                .flat_map(|track| fragment.audio.iter().map(move |s| (track, s)));
            for (track, sample) in video.chain(audio) {
                let from = at + sample.offset as usize;
                let data = bytes
                    .get(from..from + sample.size as usize)
                    .ok_or_else(|| malformed("a sample runs past its fragment"))?;
                units.push(self.unit(track, sample, bytes.slice_ref(data), origin)?);
            }
        }
        Ok(units)
    }

    /// The access unit of `sample`, timed from the recording's first
    /// frame at `origin`.
    fn unit(
        &self,
        track: &Track,
        sample: &Sample,
        data: Bytes,
        origin: Duration,
    ) -> Result<AccessUnit> {
        let mut unit = self.tracks.access_unit(track, sample, data, origin)?;
        let start = ticks_to_duration(self.first_presentation, self.tracks.video.timescale);
        unit.pts = unit.pts.map(|t| t.saturating_sub(start));
        unit.dts = unit.dts.map(|t| t.saturating_sub(start));
        Ok(unit)
    }

    /// The keyframe shown at `offset` from the recording's first frame:
    /// where its fragment is, and its sample.
    async fn keyframe_fragment(&self, offset: Duration) -> Result<(u64, Sample)> {
        let video = &self.tracks.video;
        let target = self.first_presentation + crate::media::ticks(offset, video.timescale);
        let mut before = target;
        for _ in 0..MOST_FRAGMENTS_BACK {
            let (at, moof) = self.fragment_holding(before).await?;
            let fragment = Fragment::parse(&moof, &self.tracks)?;
            let keyframe = fragment
                .video
                .iter()
                .filter(|s| s.sync && s.presentation() <= target)
                .max_by_key(|s| s.presentation())
                .or_else(|| {
                    (at == self.first_fragment)
                        .then(|| fragment.video.iter().find(|s| s.sync))
                        .flatten()
                })
                .copied();
            if let Some(sample) = keyframe {
                return Ok((at, sample));
            }
            match fragment.video.first() {
                Some(first) if first.decode > 0 && at > self.first_fragment => {
                    before = first.decode - 1;
                }
                _ => break,
            }
        }
        Err(malformed(format!(
            "no keyframe within {MOST_FRAGMENTS_BACK} fragments before that time"
        )))
    }

    /// The last fragment whose video starts at or before `time` (video
    /// time scale; the first fragment if none): where it is, and its
    /// `moof`.
    async fn fragment_holding(&self, time: u64) -> Result<(u64, Bytes)> {
        let (mut low, mut high) = (self.first_fragment, self.media.len);
        let mut best = None;
        while low < high {
            let middle = low + (high - low) / 2;
            match self.fragment_from(middle, high).await? {
                Some((at, moof)) => {
                    let starts = Fragment::video_time(&moof, &self.tracks).unwrap_or(0);
                    if starts <= time {
                        low = at + moof.len() as u64;
                        best = Some((at, moof));
                    } else {
                        high = middle;
                    }
                }
                None => high = middle,
            }
        }
        match best {
            Some(found) => Ok(found),
            None => self
                .fragment_from(self.first_fragment, self.media.len)
                .await?
                .ok_or_else(|| malformed("the recording has no fragment")),
        }
    }

    /// The first fragment starting in `from..until`: where, and its
    /// whole `moof`.
    async fn fragment_from(&self, from: u64, until: u64) -> Result<Option<(u64, Bytes)>> {
        let until = until.min(self.media.len);
        let mut at = from;
        while at < until {
            // A window overlapping the last by a header, so that a `moof`
            // cut at its edge is found in the next.
            let end = (at + PROBE).min(self.media.len);
            let window = read(&self.media, at..end).await?;
            if let Some(found) = fragment_start(&window) {
                let start = at + found as u64;
                if start >= until {
                    return Ok(None);
                }
                let size = box_size(&window[found..])
                    .or(read(&self.media, start..start + 8)
                        .await
                        .ok()
                        .and_then(|h| box_size(&h)))
                    .ok_or_else(|| malformed("a moof header is cut"))?;
                let end = start + size;
                let moof = if end <= at + window.len() as u64 {
                    window.slice(found..found + size as usize)
                } else {
                    read(&self.media, start..end.min(self.media.len)).await?
                };
                return Ok(Some((start, moof)));
            }
            if end >= self.media.len {
                break;
            }
            at = end - 16;
        }
        Ok(None)
    }
}

/// The bytes of `range` of `media`, in one buffer.
async fn read(media: &Media, range: Range<u64>) -> Result<Bytes> {
    let mut chunks = media.read(range.clone()).await?;
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    while let Some(chunk) = chunks.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::container::fmp4::Fmp4Writer;
    use crate::features::test_media::{self, FPS, PPS};

    /// A minute of video with a keyframe every 4 s (fragments of 1 s:
    /// most hold no keyframe), in a file.
    async fn minute_with_long_gops() -> (tempfile::TempDir, Media) {
        let units: Vec<_> = (0..60 * FPS)
            .map(|n| test_media::video(n, 4 * FPS, 5_000, PPS))
            .collect();
        let mut writer = Fmp4Writer::create(Cursor::new(vec![]), &units[0], None).unwrap();
        for unit in &units {
            writer.push(unit).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recording.mp4");
        std::fs::write(&path, writer.finish().unwrap().into_inner()).unwrap();
        let media = Media::file(path).await.unwrap();
        (dir, media)
    }

    #[tokio::test]
    async fn the_keyframe_shown_at_any_offset_is_found() {
        let (_dir, media) = minute_with_long_gops().await;
        let frames = RecordingFrames::open(media).await.unwrap();
        for (offset_ms, keyframe_s) in [
            (0, 0),
            (500, 0),
            (3_999, 0),
            (4_000, 4),
            (30_100, 28),
            (59_900, 56),
            (600_000, 56),
        ] {
            let unit = frames
                .keyframe_at(Duration::from_millis(offset_ms))
                .await
                .unwrap();
            assert!(unit.keyframe);
            assert_eq!(
                unit.pts,
                Some(Duration::from_secs(keyframe_s)),
                "{offset_ms} ms in"
            );
            // Decodable alone: its parameter sets are in front.
            assert!(crate::media::TrackFormat::of_keyframe(unit.codec, &unit.data).is_some());
        }
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_recording_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mp4");
        std::fs::write(&path, vec![7u8; 300_000]).unwrap();
        let media = Media::file(path).await.unwrap();
        assert!(RecordingFrames::open(media).await.is_err());
    }
}
