//! Just enough ISO-BMFF box reading to join per-GOP fragmented MP4s into
//! one stream: each GOP is muxed on its own, so its fragment's decode times
//! (`tfdt`) start at zero; they are rewritten here to the GOP's real decode
//! time on each track, using the track time scales of the init segment.

use std::time::Duration;

/// (start, size, type) of each box in `data[from..to]`.
fn boxes(data: &[u8], from: usize, to: usize) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        if size < 8 || at + size > to {
            break;
        }
        out.push((at, size, data[at + 4..at + 8].try_into().expect("4 bytes")));
        at += size;
    }
    out
}

fn child(
    data: &[u8],
    parent: (usize, usize),
    kind: &[u8; 4],
    header: usize,
) -> Option<(usize, usize)> {
    boxes(data, parent.0 + header, parent.0 + parent.1)
        .into_iter()
        .find(|(_, _, k)| k == kind)
        .map(|(at, size, _)| (at, size))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

/// Track id → time scale, from an init segment's `moov`.
pub fn timescales(init: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Some((moov, size, _)) = boxes(init, 0, init.len())
        .into_iter()
        .find(|b| &b.2 == b"moov")
    else {
        return out;
    };
    for (trak, trak_size, kind) in boxes(init, moov + 8, moov + size) {
        if &kind != b"trak" {
            continue;
        }
        let tkhd = child(init, (trak, trak_size), b"tkhd", 8);
        let mdhd = child(init, (trak, trak_size), b"mdia", 8)
            .and_then(|mdia| child(init, mdia, b"mdhd", 8));
        if let (Some((tkhd, _)), Some((mdhd, _))) = (tkhd, mdhd) {
            // tkhd: version 1 has 64-bit times before the track id.
            let id_at = if init[tkhd + 8] == 1 {
                tkhd + 8 + 4 + 16
            } else {
                tkhd + 8 + 4 + 8
            };
            let scale_at = if init[mdhd + 8] == 1 {
                mdhd + 8 + 4 + 16
            } else {
                mdhd + 8 + 4 + 8
            };
            out.push((u32_at(init, id_at), u32_at(init, scale_at)));
        }
    }
    out
}

/// Rewrites every `tfdt` of `fragment` to `start(track_id)` in that
/// track's time scale, and the `mfhd` sequence number to `sequence`.
pub fn retime(
    fragment: &mut [u8],
    scales: &[(u32, u32)],
    sequence: u32,
    start: impl Fn(u32) -> Option<Duration>,
) {
    let len = fragment.len();
    for (moof, size, kind) in boxes(fragment, 0, len) {
        if &kind != b"moof" {
            continue;
        }
        if let Some((mfhd, _)) = child(fragment, (moof, size), b"mfhd", 8) {
            fragment[mfhd + 12..mfhd + 16].copy_from_slice(&sequence.to_be_bytes());
        }
        for (traf, traf_size, kind) in boxes(fragment, moof + 8, moof + size) {
            if &kind != b"traf" {
                continue;
            }
            let Some((tfhd, _)) = child(fragment, (traf, traf_size), b"tfhd", 8) else {
                continue;
            };
            let track = u32_at(fragment, tfhd + 12);
            let (Some((tfdt, _)), Some(&(_, scale)), Some(at)) = (
                child(fragment, (traf, traf_size), b"tfdt", 8),
                scales.iter().find(|(id, _)| *id == track),
                start(track),
            ) else {
                continue;
            };
            let ticks = (at.as_nanos() * u128::from(scale) / 1_000_000_000) as u64;
            if fragment[tfdt + 8] == 1 {
                fragment[tfdt + 12..tfdt + 20].copy_from_slice(&ticks.to_be_bytes());
            } else {
                fragment[tfdt + 12..tfdt + 16].copy_from_slice(&(ticks as u32).to_be_bytes());
            }
        }
    }
}
