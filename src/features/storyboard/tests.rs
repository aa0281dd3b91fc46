//! Slots, cues and sheets of a storyboard over a real replay buffer.

use std::io::Cursor;

use super::*;
use crate::features::replay::buffer::ReplayBuffer;
use crate::features::test_media::{video, PPS};

/// A window of `gops` GOPs of 2 s, received from `start_ms`.
fn window(gops: u64, start_ms: i64) -> (ReplayBuffer, Vec<Arc<Gop>>) {
    let buffer = ReplayBuffer::new(usize::MAX, Duration::MAX, "org/cam".into());
    for g in 0..gops {
        let units: Vec<_> = (0..50)
            .map(|i| {
                let mut unit = video(g * 50 + i, 50, 0, PPS);
                unit.received_ms = start_ms + (g * 2000 + i * 40) as i64;
                unit
            })
            .collect();
        let end = units.last().unwrap().pts.unwrap() + Duration::from_millis(40);
        buffer.push(units, end, start_ms + ((g + 1) * 2000) as i64);
    }
    let held = buffer.range(Duration::ZERO, Duration::MAX);
    (buffer, held)
}

/// A 160×90 JPEG of one colour.
fn tile_of(colour: [u8; 3]) -> Bytes {
    let picture = image::RgbImage::from_pixel(160, 90, image::Rgb(colour));
    let mut out = Cursor::new(vec![]);
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    Bytes::from(out.into_inner())
}

fn fill(storyboard: &Storyboard, gops: &[Arc<Gop>]) -> Vec<i64> {
    let wanted = storyboard.refresh(gops);
    let slots = wanted.iter().map(|w| w.slot).collect();
    for (i, w) in wanted.into_iter().enumerate() {
        storyboard.insert(
            w.slot,
            Tile {
                gop: w.gop.sequence,
                start_ms: w.gop.start_ms,
                width: 160,
                height: 90,
                jpeg: tile_of([(i * 40) as u8, 200, 100]),
            },
        );
    }
    slots
}

#[test]
fn a_slot_takes_its_first_gop_and_cues_cover_the_window() {
    // GOPs of 2 s from 1000 s: slots of 5 s start at 1000, 1005, ...
    let (_buffer, gops) = window(10, 1_000_000);
    let storyboard = Storyboard::new(Layout::DEFAULT);
    let slots = fill(&storyboard, &gops);
    assert_eq!(slots, vec![200, 201, 202, 203]);
    let starts: Vec<i64> = storyboard.tiles().iter().map(|(_, t)| t.start_ms).collect();
    // 1000 (GOP 0), 1006 (GOP 3: the first in 1005-1010), 1010, 1016.
    assert_eq!(starts, vec![1_000_000, 1_006_000, 1_010_000, 1_016_000]);
    // Nothing more to make until the window moves.
    assert!(storyboard.refresh(&gops).is_empty());

    let vtt = storyboard.vtt(1_020_000, 990_000, |n| format!("sheet/{n}.jpg"));
    assert!(vtt.starts_with("WEBVTT\n\nNOTE 00:00:00.000 is 1970-01-01T00:16:30Z"));
    let cues: Vec<&str> = vtt
        .split("\n\n")
        .skip(2)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cues,
        vec![
            // Slot 200 is place 0 of sheet 8 (25 a sheet), 201 place 1.
            "00:00:10.000 --> 00:00:16.000\nsheet/8.jpg#xywh=0,0,160,90",
            "00:00:16.000 --> 00:00:20.000\nsheet/8.jpg#xywh=160,0,160,90",
            "00:00:20.000 --> 00:00:26.000\nsheet/8.jpg#xywh=320,0,160,90",
            "00:00:26.000 --> 00:00:30.000\nsheet/8.jpg#xywh=480,0,160,90",
        ]
    );
}

#[test]
fn a_sheet_puts_each_tile_in_its_place_and_is_kept_until_they_change() {
    let (_buffer, gops) = window(10, 1_000_000);
    let storyboard = Storyboard::new(Layout::DEFAULT);
    fill(&storyboard, &gops);
    let sheet = storyboard.sheet(8).unwrap().unwrap();
    let picture = image::load_from_memory(&sheet).unwrap().to_rgb8();
    assert_eq!((picture.width(), picture.height()), (800, 450));
    for (i, x) in [80u32, 240, 400, 560].into_iter().enumerate() {
        let pixel = picture.get_pixel(x, 45).0;
        let want = [(i * 40) as u8, 200, 100];
        let off: i32 = (0..3)
            .map(|c| (pixel[c] as i32 - want[c] as i32).abs())
            .max()
            .unwrap();
        assert!(off <= 8, "tile {i} at x {x}: {pixel:?} for {want:?}");
    }
    // An empty place stays black.
    assert!(picture.get_pixel(720, 45).0.iter().all(|&c| c < 8));
    // Composed once while its tiles stay.
    let again = storyboard.sheet(8).unwrap().unwrap();
    assert_eq!(again.as_ptr(), sheet.as_ptr());
    assert!(storyboard.sheet(9).unwrap().is_none());
}

#[test]
fn tiles_leave_with_their_gops() {
    let (buffer, gops) = window(10, 1_000_000);
    let storyboard = Storyboard::new(Layout::DEFAULT);
    fill(&storyboard, &gops);
    // The window keeps the newest 3 GOPs (1014-1020 s).
    buffer.set_window(Some(Duration::from_secs(6)));
    let kept = buffer.range(Duration::ZERO, Duration::MAX);
    assert_eq!(kept.first().map(|g| g.start_ms), Some(1_014_000));
    let wanted: Vec<i64> = storyboard.refresh(&kept).iter().map(|w| w.slot).collect();
    // Slot 202's tile (GOP at 1010) left; 1014 is the first GOP of slot
    // 202 now held, so it is wanted again; slot 203's stays.
    assert_eq!(wanted, vec![202]);
    let slots: Vec<i64> = storyboard.tiles().iter().map(|(s, _)| *s).collect();
    assert_eq!(slots, vec![203]);
}
