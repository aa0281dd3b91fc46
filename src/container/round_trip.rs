//! Round trips of the container writers through parsers written by others:
//! the `mp4` crate reads the MP4 and fragmented MP4 files, `mpeg2ts-reader`
//! the MPEG-TS packets and PES headers. Every sample is checked: its bytes
//! (the access unit as the container must carry it), its decode time, its
//! composition offset and whether it is a sync sample. Golden hashes of the
//! same fixed input catch any change of the bytes written; a deliberate
//! change updates them.

use std::collections::HashMap;
use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::fmp4::{Fmp4Writer, Layout};
use super::sample_entry::AudioConfig;
use super::{mp4, ts};
use crate::media::{ticks_to_duration, AccessUnit, Codec, TrackFormat};

/// An SPS and PPS of a 640×360 High-profile stream (x264).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
    0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// A frame is 3000 ticks of 90 kHz (30 fps).
const FRAME: u64 = 3000;
/// Presentation runs two frames after decoding (B-frame reordering).
const REORDER: u64 = 2 * FRAME;
/// The stream's timeline does not start at zero.
const START: u64 = 900_000;
const FRAMES: u64 = 60;
const GOP: u64 = 30;
/// AAC frames of 1024 samples at 48 kHz over the same two seconds.
const AUDIO_FRAMES: u64 = 94;

/// The slice data of frame `i`: its bytes differ from every other frame's.
fn slice(i: u64) -> Vec<u8> {
    let nal_type = if i.is_multiple_of(GOP) { 0x65 } else { 0x41 };
    let mut nal = vec![nal_type];
    nal.extend((0..(100 + i * 7)).map(|b| (b * 31 + i) as u8 | 1));
    nal
}

fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
        .collect()
}

/// The raw AAC payload of frame `k`.
fn aac_payload(k: u64) -> Vec<u8> {
    (0..(200 + k % 13)).map(|b| (b + k) as u8).collect()
}

const AUDIO_CONFIG: AudioConfig = AudioConfig {
    rate: 48_000,
    channels: 2,
    config: [0x11, 0x90],
};

/// Two GOPs of H.264 (parameter sets in front of each keyframe, B-frame
/// timing) and AAC in ADTS, interleaved in decode order.
fn units() -> Vec<AccessUnit> {
    let format = TrackFormat::video(
        Codec::H264,
        None,
        Bytes::from_static(SPS),
        Bytes::from_static(PPS),
    );
    let mut video: Vec<AccessUnit> = (0..FRAMES)
        .map(|i| {
            let keyframe = i % GOP == 0;
            let data = if keyframe {
                annex_b(&[SPS, PPS, &slice(i)])
            } else {
                annex_b(&[&slice(i)])
            };
            let dts = START + i * FRAME;
            AccessUnit {
                codec: Codec::H264,
                pts: Some(ticks_to_duration(dts + REORDER, 90_000)),
                dts: Some(ticks_to_duration(dts, 90_000)),
                duration: Some(ticks_to_duration(FRAME, 90_000)),
                keyframe,
                data: Bytes::from(data),
                format: format.clone(),
                received_ms: 0,
                discontinuity: false,
            }
        })
        .collect();
    let audio_start = START + REORDER;
    let audio: Vec<AccessUnit> = (0..AUDIO_FRAMES)
        .map(|k| {
            let payload = aac_payload(k);
            let mut frame = AUDIO_CONFIG.adts_header(payload.len()).to_vec();
            frame.extend_from_slice(&payload);
            let t = ticks_to_duration(audio_start, 90_000) + ticks_to_duration(k * 1024, 48_000);
            AccessUnit {
                codec: Codec::Aac,
                pts: Some(t),
                dts: Some(t),
                duration: Some(ticks_to_duration(1024, 48_000)),
                keyframe: true,
                data: Bytes::from(frame),
                format: None,
                received_ms: 0,
                discontinuity: false,
            }
        })
        .collect();
    // Interleave by decode time, as a demuxer delivers them.
    video.extend(audio);
    video.sort_by_key(|u| u.decode_time());
    video
}

/// What an MP4 sample of video frame `i` holds: its slice, length-prefixed
/// (parameter sets live in the sample entry).
fn video_sample(i: u64) -> Vec<u8> {
    let nal = slice(i);
    [&(nal.len() as u32).to_be_bytes()[..], &nal].concat()
}

fn hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn split(units: &[AccessUnit]) -> (Vec<&AccessUnit>, Vec<&AccessUnit>) {
    units.iter().partition(|u| u.codec.is_video())
}

#[test]
fn ticks_round_trip_between_90khz_and_nanoseconds() {
    // Every 90 kHz time that went through nanoseconds comes back exact,
    // across the 33-bit range of MPEG-TS.
    for t in (0..(1u64 << 33))
        .step_by(9_999_991)
        .chain([1, 2, 3, 89_999, (1 << 33) - 1])
    {
        assert_eq!(crate::media::ticks(ticks_to_duration(t, 90_000), 90_000), t);
    }
    // Rounded, not truncated.
    assert_eq!(crate::media::ticks(Duration::from_nanos(11_110), 90_000), 1);
    assert_eq!(crate::media::ticks(Duration::from_nanos(5_555), 90_000), 0);
    assert_eq!(
        crate::media::ticks(Duration::from_millis(1500), 48_000),
        72_000
    );
}

#[test]
fn mp4_samples_read_back_exactly() {
    let units = units();
    let (video, audio) = split(&units);
    let mut out = Vec::new();
    let size = mp4::write(&video, &audio, &mut out).unwrap();
    assert_eq!(size, out.len() as u64);

    let mut reader = ::mp4::Mp4Reader::read_header(Cursor::new(&out), out.len() as u64).unwrap();
    let tracks: HashMap<u32, ::mp4::TrackType> = reader
        .tracks()
        .iter()
        .map(|(id, t)| (*id, t.track_type().unwrap()))
        .collect();
    let video_id = *tracks
        .iter()
        .find(|t| *t.1 == ::mp4::TrackType::Video)
        .unwrap()
        .0;
    let audio_id = *tracks
        .iter()
        .find(|t| *t.1 == ::mp4::TrackType::Audio)
        .unwrap()
        .0;
    assert_eq!(reader.tracks()[&video_id].width(), 640);
    assert_eq!(reader.tracks()[&video_id].timescale(), 90_000);
    assert_eq!(reader.tracks()[&audio_id].timescale(), 48_000);

    assert_eq!(reader.sample_count(video_id).unwrap(), FRAMES as u32);
    for i in 0..FRAMES {
        let sample = reader.read_sample(video_id, i as u32 + 1).unwrap().unwrap();
        assert_eq!(&sample.bytes[..], &video_sample(i)[..], "video sample {i}");
        assert_eq!(sample.start_time, i * FRAME, "video sample {i} decode time");
        assert_eq!(sample.duration, FRAME as u32, "video sample {i} duration");
        assert_eq!(
            sample.rendering_offset, REORDER as i32,
            "video sample {i} offset"
        );
        assert_eq!(sample.is_sync, i % GOP == 0, "video sample {i} sync");
    }
    assert_eq!(reader.sample_count(audio_id).unwrap(), AUDIO_FRAMES as u32);
    for k in 0..AUDIO_FRAMES {
        let sample = reader.read_sample(audio_id, k as u32 + 1).unwrap().unwrap();
        assert_eq!(&sample.bytes[..], &aac_payload(k)[..], "audio sample {k}");
        assert_eq!(sample.start_time, k * 1024, "audio sample {k} time");
        assert_eq!(sample.duration, 1024, "audio sample {k} duration");
    }
    assert_eq!(
        hash(&out),
        "38c63772a56aa045c54f6a16e31bfca384fd7ba259d46e2a5f97013d80d259b1",
        "mp4 bytes changed: if on purpose, update the hash"
    );
}

#[test]
fn an_mp4_span_presents_exactly_its_frames() {
    let units = units();
    let (video, audio) = split(&units);
    // Frames 35 to 44 of 60 shown (presentation order); the file holds
    // frames from the keyframe 0 to 44 in decode order.
    let pts = |i: u64| ticks_to_duration(START + i * FRAME + REORDER, 90_000);
    let span = mp4::Span {
        from: pts(35),
        to: pts(45),
    };
    let mut out = Vec::new();
    mp4::write_span(&video, &audio, Some(span), &mut out).unwrap();

    let reader = ::mp4::Mp4Reader::read_header(Cursor::new(&out), out.len() as u64).unwrap();
    let track = |kind: ::mp4::TrackType| {
        reader
            .tracks()
            .values()
            .find(|t| t.track_type().unwrap() == kind)
            .unwrap()
    };
    let edit = |t: &::mp4::Mp4Track| {
        let entries = &t.trak.edts.as_ref().unwrap().elst.as_ref().unwrap().entries;
        assert_eq!(entries.len(), 1, "{entries:?}");
        (entries[0].media_time, entries[0].segment_duration)
    };
    let video_track = track(::mp4::TrackType::Video);
    assert_eq!(video_track.sample_count(), 45);
    // From frame 35's presentation (the composition offset included), for
    // ten frames, in a 90 kHz movie time scale.
    assert_eq!(edit(video_track), (REORDER + 35 * FRAME, 10 * FRAME));
    assert_eq!(reader.moov.mvhd.timescale, 90_000);
    assert_eq!(reader.moov.mvhd.duration, 10 * FRAME);
    // Audio from the frame around the span's start, cut to its length.
    let audio_track = track(::mp4::TrackType::Audio);
    let (skip, shown) = edit(audio_track);
    assert!(skip < 1024, "audio skips {skip} samples of its first frame");
    assert_eq!(shown, 10 * FRAME, "audio shown for {shown} movie ticks");
    let samples = u64::from(audio_track.sample_count()) * 1024;
    assert!(
        samples >= skip + 10 * FRAME * 48_000 / 90_000,
        "{samples} audio samples do not cover the span"
    );
}

/// The top-level boxes of `data`: (start, type).
fn top_level_boxes(data: &[u8]) -> Vec<(usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, data[at + 4..at + 8].try_into().unwrap()));
        assert!(size >= 8, "box at {at} has size {size}");
        at += size;
    }
    assert_eq!(at, data.len(), "boxes do not fill the file");
    out
}

/// One sample read back: decode time, duration, composition offset, sync,
/// bytes.
pub(crate) type Sample = (u64, u32, i32, bool, Vec<u8>);

/// Every sample of a fragmented MP4, per track id, as (decode time in the
/// track's time scale, duration, composition offset, sync, bytes), read
/// through the `mp4` crate's fragment boxes; sample data is found from
/// each `trun`'s data offset relative to its `moof`.
pub(crate) fn fragmented_samples(data: &[u8]) -> HashMap<u32, Vec<Sample>> {
    let reader = ::mp4::Mp4Reader::read_header(Cursor::new(data), data.len() as u64).unwrap();
    let moof_starts: Vec<usize> = top_level_boxes(data)
        .into_iter()
        .filter(|(_, kind)| kind == b"moof")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(moof_starts.len(), reader.moofs.len());
    let mut samples: HashMap<u32, Vec<_>> = HashMap::new();
    for (moof, moof_start) in reader.moofs.iter().zip(moof_starts) {
        for traf in &moof.trafs {
            let trun = traf.trun.as_ref().expect("a trun per traf");
            let mut time = traf
                .tfdt
                .as_ref()
                .expect("a tfdt per traf")
                .base_media_decode_time;
            let mut at = moof_start + trun.data_offset.expect("data offset") as usize;
            for n in 0..trun.sample_count as usize {
                let duration = trun
                    .sample_durations
                    .get(n)
                    .copied()
                    .or(traf.tfhd.default_sample_duration)
                    .expect("a duration");
                let size = trun
                    .sample_sizes
                    .get(n)
                    .copied()
                    .or(traf.tfhd.default_sample_size)
                    .expect("a size") as usize;
                let flags = if n == 0 {
                    trun.first_sample_flags
                } else {
                    None
                }
                .or_else(|| trun.sample_flags.get(n).copied())
                .or(traf.tfhd.default_sample_flags)
                .unwrap_or(0);
                let offset = trun.sample_cts.get(n).copied().unwrap_or(0) as i32;
                let sync = flags & 0x0001_0000 == 0;
                samples.entry(traf.tfhd.track_id).or_default().push((
                    time,
                    duration,
                    offset,
                    sync,
                    data[at..at + size].to_vec(),
                ));
                time += u64::from(duration);
                at += size;
            }
        }
    }
    samples
}

fn check_fragmented(data: &[u8], video_base: u64, audio_base: u64) {
    let samples = fragmented_samples(data);
    let video = &samples[&1];
    assert_eq!(video.len(), FRAMES as usize);
    for (i, (time, duration, offset, sync, bytes)) in video.iter().enumerate() {
        let i = i as u64;
        assert_eq!(bytes, &video_sample(i), "video sample {i}");
        assert_eq!(
            *time,
            video_base + i * FRAME,
            "video sample {i} decode time"
        );
        if i + 1 < FRAMES {
            assert_eq!(*duration, FRAME as u32, "video sample {i} duration");
        }
        assert_eq!(*offset, REORDER as i32, "video sample {i} offset");
        assert_eq!(*sync, i.is_multiple_of(GOP), "video sample {i} sync");
    }
    let audio = &samples[&2];
    assert_eq!(audio.len(), AUDIO_FRAMES as usize);
    for (k, (time, duration, _, _, bytes)) in audio.iter().enumerate() {
        let k = k as u64;
        assert_eq!(bytes, &aac_payload(k), "audio sample {k}");
        assert_eq!(*time, audio_base + k * 1024, "audio sample {k} time");
        assert_eq!(*duration, 1024, "audio sample {k} duration");
    }
}

#[test]
fn fragmented_recording_samples_read_back_exactly() {
    let units = units();
    let (video, audio) = split(&units);
    let mut writer = Fmp4Writer::create(Cursor::new(Vec::new()), video[0], Some(audio[0])).unwrap();
    for unit in &units {
        writer.push(unit).unwrap();
    }
    let out = writer.finish().unwrap().into_inner();
    let moofs = top_level_boxes(&out)
        .iter()
        .filter(|b| &b.1 == b"moof")
        .count();
    assert!(moofs >= 2, "one-second fragments: {moofs}");
    // A recording's time starts at zero: the first frame's decode time;
    // audio two frames (REORDER) later, at 48 kHz.
    check_fragmented(&out, 0, REORDER * 48_000 / 90_000);
    assert_eq!(
        hash(&out),
        "534da29a2f3a06e5110edf9ed306fbdcb8eceffcfe9ea7f6e38e682d9659042e",
        "fMP4 recording bytes changed: if on purpose, update the hash"
    );
}

#[test]
fn fragmented_segment_keeps_the_stream_timeline() {
    let units = units();
    let (video, audio) = split(&units);
    let mut writer = Fmp4Writer::with_layout(
        Cursor::new(Vec::new()),
        video[0],
        Some(audio[0]),
        Layout::segment(7),
    )
    .unwrap();
    for unit in &units {
        writer.push(unit).unwrap();
    }
    let out = writer.finish().unwrap().into_inner();
    check_fragmented(&out, START, (START + REORDER) * 48_000 / 90_000);
}

/// One PES read back: PTS, DTS, payload.
type Pes = (u64, u64, Vec<u8>);

/// Every PES of an MPEG-TS stream, per PID, as (PTS, DTS, payload), read
/// with `mpeg2ts-reader`; continuity counters are checked on the way.
/// Also returns how many packets carry a PCR.
fn pes_packets(out: &[u8]) -> (HashMap<u16, Vec<Pes>>, u64) {
    use mpeg2ts_reader::packet::Packet;
    use mpeg2ts_reader::pes::{PesContents, PesHeader, PtsDts};

    assert_eq!(out.len() % 188, 0);
    let mut raw: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    let mut counters: HashMap<u16, u8> = HashMap::new();
    let mut pcrs = 0;
    for chunk in out.chunks(188) {
        let packet = Packet::new(chunk);
        let pid = u16::from(packet.pid());
        if let Some(previous) = counters.insert(pid, packet.continuity_counter().count()) {
            assert_eq!(
                packet.continuity_counter().count(),
                (previous + 1) % 16,
                "continuity on PID {pid:#x}"
            );
        }
        if packet.adaptation_field().is_some_and(|a| a.pcr().is_ok()) {
            pcrs += 1;
        }
        let Some(payload) = packet.payload() else {
            continue;
        };
        if pid == 0 || pid == 0x1000 {
            continue;
        }
        let list = raw.entry(pid).or_default();
        if packet.payload_unit_start_indicator() {
            list.push(Vec::new());
        }
        list.last_mut()
            .expect("PES starts with a unit start")
            .extend_from_slice(payload);
    }
    let read = |pes: &Vec<u8>| {
        let header = PesHeader::from_bytes(pes).expect("a PES header");
        let PesContents::Parsed(Some(parsed)) = header.contents() else {
            panic!("PES without parsed header");
        };
        let (pts, dts) = match parsed.pts_dts().unwrap() {
            PtsDts::Both { pts, dts } => (pts.unwrap().value(), dts.unwrap().value()),
            PtsDts::PtsOnly(pts) => {
                let pts = pts.unwrap().value();
                (pts, pts)
            }
            other => panic!("timestamps: {other:?}"),
        };
        (pts, dts, parsed.payload().to_vec())
    };
    let parsed = raw
        .into_iter()
        .map(|(pid, list)| (pid, list.iter().map(read).collect()))
        .collect();
    (parsed, pcrs)
}

#[test]
fn mpeg_ts_packets_read_back_exactly() {
    let units = units();
    let out = ts::write(&units);
    let (pes, pcrs) = pes_packets(&out);
    assert_eq!(pcrs, FRAMES, "a PCR with every video frame");
    let video = &pes[&0x100];
    assert_eq!(video.len(), FRAMES as usize);
    let video_units: Vec<&AccessUnit> = units.iter().filter(|u| u.codec.is_video()).collect();
    for (i, (pts, dts, payload)) in video.iter().enumerate() {
        assert_eq!(&payload[..], &video_units[i].data[..], "video PES {i}");
        assert_eq!(*dts, START + i as u64 * FRAME, "video PES {i} DTS");
        assert_eq!(*pts, dts + REORDER, "video PES {i} PTS");
    }
    let audio = &pes[&0x101];
    assert_eq!(audio.len(), AUDIO_FRAMES as usize);
    let audio_units: Vec<&AccessUnit> = units.iter().filter(|u| !u.codec.is_video()).collect();
    for (k, (pts, _, payload)) in audio.iter().enumerate() {
        assert_eq!(&payload[..], &audio_units[k].data[..], "audio PES {k}");
        let expected = crate::media::ticks(audio_units[k].pts.unwrap(), 90_000);
        assert_eq!(*pts, expected, "audio PES {k} PTS");
    }
    assert_eq!(
        hash(&out),
        "54d811cf62b895633657ddecf401f206cee614cbebac041ca1b6bfcaef1e6306",
        "MPEG-TS bytes changed: if on purpose, update the hash"
    );
}

#[test]
fn raw_aac_gets_adts_headers_in_mpeg_ts() {
    // Raw AAC (its config in the track's format), as a non-TS source
    // delivers it.
    let mut units = units();
    let format = TrackFormat::of_audio_specific_config(&AUDIO_CONFIG.config);
    for unit in units.iter_mut().filter(|u| u.codec == Codec::Aac) {
        unit.data = unit.data.slice(7..);
        unit.format = format.clone();
    }
    let (pes, _) = pes_packets(&ts::write(&units));
    let audio = &pes[&0x101];
    assert_eq!(audio.len(), AUDIO_FRAMES as usize);
    for (k, (_, _, payload)) in audio.iter().enumerate() {
        let raw = aac_payload(k as u64);
        let header = AUDIO_CONFIG.adts_header(raw.len());
        assert_eq!(payload, &[&header[..], &raw].concat(), "audio PES {k}");
    }
}
