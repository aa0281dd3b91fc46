//! Recordings written by [`Fmp4Writer`] read back unit for unit.

use std::io::Cursor;
use std::time::Duration;

use super::*;
use crate::container::fmp4::{whole_fragments, Fmp4Writer};
use crate::container::sample_entry::raw_aac;
use crate::features::test_media;
use crate::media::nal::sample_nals;

/// A 5-second recording (1 s GOPs, AAC), its bytes and units.
fn recording() -> (Vec<u8>, Vec<AccessUnit>) {
    let units = test_media::media(5, 10_000, 0, true);
    let first_video = units.iter().find(|u| u.codec.is_video()).unwrap();
    let first_audio = units.iter().find(|u| !u.codec.is_video());
    let mut writer = Fmp4Writer::create(Cursor::new(vec![]), first_video, first_audio).unwrap();
    for unit in &units {
        writer.push(unit).unwrap();
    }
    (writer.finish().unwrap().into_inner(), units)
}

/// Every unit of a file, read fragment by fragment.
fn read_back(file: &[u8]) -> (Tracks, Vec<AccessUnit>) {
    let tracks = Tracks::parse(file).unwrap();
    let init_end = crate::container::fmp4::init_segment_end(file).unwrap();
    let mut out = vec![];
    for range in whole_fragments(&file[init_end..]) {
        let bytes = Bytes::copy_from_slice(&file[init_end + range.start..init_end + range.end]);
        let fragment = Fragment::parse(&bytes, &tracks).unwrap();
        let zero = Duration::from_millis(10_000);
        for (track, samples) in [
            (Some(&tracks.video), &fragment.video),
            (tracks.audio.as_ref(), &fragment.audio),
        ] {
            for sample in samples {
                let at = sample.offset as usize;
                let data = bytes.slice(at..at + sample.size as usize);
                out.push(
                    tracks
                        .access_unit(track.unwrap(), sample, data, zero)
                        .unwrap(),
                );
            }
        }
    }
    (tracks, out)
}

#[test]
fn every_unit_comes_back_with_its_times_and_bytes() {
    let (file, units) = recording();
    let (tracks, read) = read_back(&file);
    assert_eq!(tracks.video.timescale, 90_000);
    assert_eq!(tracks.audio.as_ref().unwrap().timescale, 48_000);
    assert_eq!(tracks.video.format, units[0].format.clone().unwrap());
    let written_video: Vec<_> = units.iter().filter(|u| u.codec.is_video()).collect();
    let read_video: Vec<_> = read.iter().filter(|u| u.codec.is_video()).collect();
    assert_eq!(read_video.len(), written_video.len());
    for (w, r) in written_video.iter().zip(&read_video) {
        assert_eq!(r.pts, w.pts);
        assert_eq!(r.dts, w.dts);
        assert_eq!(r.keyframe, w.keyframe);
        let nals = |u: &AccessUnit| {
            sample_nals(u.codec, &u.data)
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(nals(r), nals(w));
        if r.keyframe {
            // Decodable alone: the parameter sets are in front again.
            assert_eq!(
                crate::media::TrackFormat::of_keyframe(r.codec, &r.data),
                w.format
            );
        }
    }
    let written_audio: Vec<_> = units.iter().filter(|u| !u.codec.is_video()).collect();
    let read_audio: Vec<_> = read.iter().filter(|u| !u.codec.is_video()).collect();
    assert!(
        read_audio.len() >= written_audio.len() - 2,
        "{} of {}",
        read_audio.len(),
        written_audio.len()
    );
    for (w, r) in written_audio.iter().zip(&read_audio) {
        assert_eq!(&r.data[..], raw_aac(&w.data));
        let drift = r.pts.unwrap().as_nanos() as i128 - w.pts.unwrap().as_nanos() as i128;
        assert!(drift.abs() < 25_000, "audio time off by {drift} ns");
    }
}

#[test]
fn a_fragment_is_found_in_any_window_and_says_its_time() {
    let (file, _) = recording();
    let tracks = Tracks::parse(&file).unwrap();
    let init_end = crate::container::fmp4::init_segment_end(&file).unwrap();
    let starts: Vec<usize> = whole_fragments(&file[init_end..])
        .iter()
        .map(|r| init_end + r.start)
        .collect();
    assert!(starts.len() >= 4, "{} fragments", starts.len());
    let mut times = vec![];
    for (i, &start) in starts.iter().enumerate() {
        // From anywhere after the previous fragment's start.
        let from = if i == 0 { 0 } else { starts[i - 1] + 1 };
        assert_eq!(
            fragment_start(&file[from..]).map(|at| from + at),
            Some(start)
        );
        let size = box_size(&file[start..]).unwrap() as usize;
        times.push(Fragment::video_time(&file[start..start + size], &tracks).unwrap());
    }
    assert_eq!(times[0], 0);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert_eq!(fragment_start(&file[starts[starts.len() - 1] + 1..]), None);
}

#[test]
fn a_damaged_init_segment_is_an_error_not_a_panic() {
    let (file, _) = recording();
    let init_end = crate::container::fmp4::init_segment_end(&file).unwrap();
    for cut in (0..init_end).step_by(7) {
        let mut damaged = file[..init_end].to_vec();
        damaged[cut] ^= 0x5a;
        let _ = Tracks::parse(&damaged);
        let _ = Tracks::parse(&file[..cut]);
    }
    assert!(Tracks::parse(b"not an mp4 file").is_err());
}
