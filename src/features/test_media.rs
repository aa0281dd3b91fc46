//! Synthetic media for the features' in-process tests: H.264 access
//! units (real parameter sets, 25 fps, one keyframe a second) and AAC
//! frames (ADTS, 48 kHz), interleaved the way a muxer sends them, with no
//! encoder and no server.

use std::time::Duration;

use bytes::Bytes;

use crate::media::{AccessUnit, Codec, TrackFormat};

/// An H.264 SPS (640x360) and PPS as x264 writes them.
pub const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
];
pub const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// The same picture size with another PPS: another format.
pub const OTHER_PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
/// 25 fps: a GOP of 25 frames is exactly one second.
pub const FRAME_MS: u64 = 40;
pub const FPS: u64 = 25;
/// An AAC frame at 48 kHz: 1024 samples.
pub const AAC_FRAME: Duration = Duration::from_nanos(1024 * 1_000_000_000 / 48_000);

fn annex_b(nals: &[&[u8]]) -> Bytes {
    let mut out = vec![];
    for nal in nals {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

/// Video frame `n` (25 fps, a keyframe every `gop` frames) at `base_ms`.
pub fn video(n: u64, gop: u64, base_ms: u64, pps: &[u8]) -> AccessUnit {
    let keyframe = n.is_multiple_of(gop);
    let data = if keyframe {
        annex_b(&[SPS, pps, &[0x65, 0x88, n as u8]])
    } else {
        annex_b(&[&[0x41, 0x9a, n as u8]])
    };
    let pts = Duration::from_millis(base_ms + n * FRAME_MS);
    AccessUnit {
        codec: Codec::H264,
        pts: Some(pts),
        dts: Some(pts),
        duration: Some(Duration::from_millis(FRAME_MS)),
        keyframe,
        format: TrackFormat::video(
            Codec::H264,
            None,
            Bytes::from_static(SPS),
            Bytes::copy_from_slice(pps),
        ),
        data,
        received_ms: 0,
        discontinuity: false,
    }
}

/// AAC frame `k` (ADTS, 48 kHz stereo) starting at `base`.
pub fn audio(k: u32, base: Duration) -> AccessUnit {
    let payload = [0x21, 0x10, k as u8, 0, 0, 0];
    let len = payload.len() + 7;
    let mut frame = vec![
        0xff,
        0xf1,
        0x4c,
        0x80 | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ];
    frame.extend_from_slice(&payload);
    let pts = base + AAC_FRAME * k;
    let data = Bytes::from(frame);
    AccessUnit {
        codec: Codec::Aac,
        pts: Some(pts),
        dts: Some(pts),
        duration: Some(AAC_FRAME),
        keyframe: true,
        format: crate::media::aac::AdtsHeader::parse(&data).and_then(|h| TrackFormat::of_adts(&h)),
        data,
        received_ms: 0,
        discontinuity: false,
    }
}

/// `seconds` of video (1 s GOPs) and audio from `base_ms`, interleaved in
/// arrival order with the audio `audio_lead_ms` ahead of the video (a
/// muxer's interleaving; negative: behind).
pub fn media(seconds: u64, base_ms: u64, audio_lead_ms: i64, with_audio: bool) -> Vec<AccessUnit> {
    let frames = seconds * FPS;
    let mut units: Vec<(i64, AccessUnit)> = (0..frames)
        .map(|n| {
            let unit = video(n, FPS, base_ms, PPS);
            (unit.pts.unwrap().as_millis() as i64, unit)
        })
        .collect();
    if with_audio {
        let base = Duration::from_millis(base_ms);
        let count = (Duration::from_secs(seconds).as_nanos() / AAC_FRAME.as_nanos()) as u32;
        units.extend((0..count).map(|k| {
            let unit = audio(k, base);
            (unit.pts.unwrap().as_millis() as i64 - audio_lead_ms, unit)
        }));
    }
    units.sort_by_key(|(arrival, _)| *arrival);
    units.into_iter().map(|(_, u)| u).collect()
}
