//! The replay feature driven in-process with synthetic access units: GOPs
//! start at keyframes and hold the audio that plays in them, whichever
//! side of the keyframe the muxer sent it; a window evicts by time; with
//! `entire_stream` old GOPs go to disk and come back as they were.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::buffer::{Gop, Lookup, ReplayBuffer};
use super::spill_store::SessionSpill;
use super::ReplayFeature;
use crate::features::driver::Feature;
use crate::features::test_media::{media, video, FPS, OTHER_PPS};
use crate::features::{Conversions, StreamOutputs};
use crate::ids::StreamRef;
use crate::options::{Processing, Replay, Span};
use crate::streams::StreamHub;

struct Rig {
    dir: tempfile::TempDir,
    outputs: Arc<StreamOutputs>,
    spills: TaskTracker,
    feature: ReplayFeature,
}

/// A replay feature of `window` over a buffer of `budget` bytes that keeps
/// `memory` of media in memory (older is spilled with `entire_stream`).
fn rig(window: Span, budget: usize, memory: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let hub = StreamHub::default();
    let (stream, _) = hub.add(StreamRef::new("org", "cam"), Processing::default());
    let outputs = Arc::new(StreamOutputs {
        thumbnails: Default::default(),
        motion_clips: Default::default(),
        conversions: Conversions::default(),
        storyboard: crate::features::storyboard::Storyboard::new(
            crate::features::storyboard::Layout::DEFAULT,
        ),
        session_sheets: Default::default(),
        parts: Default::default(),
        replay: ReplayBuffer::new(budget, memory, "org/cam".into()),
    });
    let spills = TaskTracker::new();
    let feature = ReplayFeature::new(
        stream,
        Arc::clone(&outputs),
        Replay { buffer: window },
        SessionSpill::in_folder(dir.path().join("spill")),
        spills.clone(),
    );
    Rig {
        dir,
        outputs,
        spills,
        feature,
    }
}

/// Every GOP the buffer holds, oldest first.
fn gops(replay: &ReplayBuffer) -> Vec<Arc<Gop>> {
    (replay.earliest()..replay.next_sequence())
        .filter_map(|sequence| match replay.get(sequence) {
            Lookup::Found(gop) => Some(gop),
            _ => None,
        })
        .collect()
}

#[test]
fn gops_start_at_keyframes_and_hold_the_audio_that_plays_in_them() {
    for lead_ms in [400, -400] {
        let mut rig = rig(Span::Seconds(60), 1 << 30, Duration::from_secs(600));
        let units = media(5, 1000, lead_ms, true);
        let sent_audio = units.iter().filter(|u| !u.codec.is_video()).count();
        for unit in units {
            rig.feature.on_unit(unit);
        }
        rig.feature.end();
        let held = gops(&rig.outputs.replay);
        assert_eq!(held.len(), 5, "audio lead {lead_ms} ms");
        let mut audio = 0;
        for gop in &held {
            let units = gop.units().unwrap();
            assert!(units[0].codec.is_video() && units[0].keyframe);
            let video = units.iter().filter(|u| u.codec.is_video()).count();
            assert_eq!(video as u64, FPS, "GOP {}", gop.sequence);
            for unit in units.iter().filter(|u| !u.codec.is_video()) {
                let pts = unit.pts.unwrap();
                assert!(
                    pts >= gop.start_pts && pts < gop.end_pts,
                    "lead {lead_ms} ms: audio at {pts:?} in GOP {:?}..{:?}",
                    gop.start_pts,
                    gop.end_pts
                );
                audio += 1;
            }
        }
        assert_eq!(audio, sent_audio, "lead {lead_ms} ms: audio frames held");
    }
}

#[test]
fn the_newest_gops_are_parted_exactly_into_runs_of_a_quarter_second() {
    for lead_ms in [400, -400] {
        let mut rig = rig(Span::Seconds(60), 1 << 30, Duration::from_secs(600));
        for unit in media(6, 1000, lead_ms, true) {
            rig.feature.on_unit(unit);
        }
        rig.feature.end();
        let parted = rig.outputs.parts.gops();
        assert_eq!(parted.len(), 4, "lead {lead_ms} ms: the newest GOPs");
        for gop in &parted {
            assert!(gop.complete);
            let held = match rig.outputs.replay.get(gop.sequence) {
                Lookup::Found(held) => held.units().unwrap(),
                other => panic!("GOP {} is {other:?}", gop.sequence),
            };
            // The parts, one after the other, are the GOP: the late audio
            // the GOP waited for is in its last part.
            let joined: Vec<_> = gop.parts.iter().flat_map(|p| p.units().to_vec()).collect();
            assert_eq!(joined.len(), held.len(), "lead {lead_ms} ms");
            assert!(joined
                .iter()
                .zip(held.iter())
                .all(|(a, b)| a.data == b.data && a.pts == b.pts));
            // At 25 fps 7 frames a part (0.28 s), the last the rest;
            // only the first is independent.
            let frames: Vec<usize> = gop
                .parts
                .iter()
                .map(|p| p.units().iter().filter(|u| u.codec.is_video()).count())
                .collect();
            assert_eq!(FPS, 25);
            assert_eq!(frames, [7, 7, 7, 4], "lead {lead_ms} ms");
            let independent: Vec<bool> = gop.parts.iter().map(|p| p.independent).collect();
            assert_eq!(independent, [true, false, false, false]);
            let total: Duration = gop.parts.iter().map(|p| p.duration).sum();
            assert_eq!(total, Duration::from_secs(1), "lead {lead_ms} ms");
        }
    }
}

#[test]
fn a_window_keeps_the_newest_gops_and_a_format_change_is_seen() {
    let mut rig = rig(Span::Seconds(3), 1 << 30, Duration::from_secs(600));
    for unit in media(6, 1000, 0, true) {
        rig.feature.on_unit(unit);
    }
    for n in 0..2 * FPS {
        rig.feature.on_unit(video(n, FPS, 7000, OTHER_PPS));
    }
    rig.feature.end();
    let held = gops(&rig.outputs.replay);
    let span = held.last().unwrap().end_pts - held[0].start_pts;
    assert!(
        span <= Duration::from_secs(4) && span >= Duration::from_secs(3),
        "{span:?} held of a 3 s window"
    );
    let formats: Vec<_> = held.iter().map(|g| g.format.clone()).collect();
    assert_ne!(
        formats.first(),
        formats.last(),
        "the format change is in the GOPs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entire_stream_spills_old_gops_and_reads_them_back_as_they_were() {
    let mut rig = rig(Span::EntireStream, 1 << 30, Duration::from_secs(2));
    let units = media(8, 1000, 200, true);
    for unit in units.clone() {
        rig.feature.on_unit(unit);
    }
    rig.feature.end();
    rig.spills.close();
    rig.spills.wait().await;
    let held = gops(&rig.outputs.replay);
    assert_eq!(held.len(), 8, "entire_stream keeps every GOP");
    assert!(
        held.iter().filter(|g| !g.in_memory()).count() >= 5,
        "old GOPs spilled"
    );
    let spilled = std::fs::read_dir(rig.dir.path().join("spill"))
        .unwrap()
        .count();
    assert!(spilled >= 5, "{spilled} spill files");
    // Read back, every unit is there as it was sent.
    let mut back: Vec<_> = held
        .iter()
        .flat_map(|g| g.units().unwrap().to_vec())
        .collect();
    let key = |u: &crate::media::AccessUnit| (u.pts, u.codec.is_video());
    back.sort_by_key(key);
    let mut sent = units;
    sent.sort_by_key(key);
    assert_eq!(back.len(), sent.len());
    for (a, b) in sent.iter().zip(&back) {
        assert_eq!((a.pts, a.keyframe, &a.data), (b.pts, b.keyframe, &b.data));
        assert_eq!(a.format, b.format);
    }
}
