//! Replay through the real server with real H.264/AAC over SRT: segments
//! start at keyframes, are contiguous and concatenate into a playable
//! stream; eviction keeps the window (a reader that falls behind it is
//! told, see the unit tests of `replay::buffer`);
//! clips cut on keyframes match the request, play, and outlive a restart.

mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use common::*;
use liveproc::proto::v1 as pb;
use pb::replay_start::Start;
use tonic::Code;
use tonic_types::StatusExt;

async fn subscribe(
    server: &Server,
    key: &str,
    start: Start,
) -> tonic::Streaming<pb::ReplaySegment> {
    subscribe_as(server, key, start, pb::SegmentFormat::MpegTs).await
}

async fn subscribe_as(
    server: &Server,
    key: &str,
    start: Start,
    format: pb::SegmentFormat,
) -> tonic::Streaming<pb::ReplaySegment> {
    subscribe_replay(server, key, "cam", start, format).await
}

async fn next(sub: &mut tonic::Streaming<pb::ReplaySegment>) -> pb::ReplaySegment {
    within(30, "a replay segment", sub.message())
        .await
        .unwrap()
        .expect("replay stream ended")
}

/// Waits until the stream has received `frames` video frames.
async fn until_frames(server: &Server, key: &str, frames: u64) {
    within(60, "media to arrive", async {
        loop {
            let stats = get_stream(server, key, "cam").await.unwrap().ingest_stats;
            if stats.is_some_and(|s| s.video_frames >= frames) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_whole_gops_that_concatenate() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    publish_session(&server, key, "cam", Some(replay_options(60)), test_ts()).await;

    // The whole 10 s session is in the buffer: 10 GOPs of 1 s.
    let mut sub = subscribe(&server, key, Start::Earliest(true)).await;
    let mut segments = vec![];
    for _ in 0..10 {
        segments.push(next(&mut sub).await);
    }
    // The session has ended: once everything is sent, the call ends, OK.
    let end = within(10, "the end of the replay", sub.message()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    let mut joined = vec![];
    for (i, seg) in segments.iter().enumerate() {
        assert_eq!(seg.skipped, 0);
        assert!(!seg.discontinuity, "GOP {i}");
        assert!(
            (secs(&seg.duration) - 1.0).abs() < 0.1,
            "GOP {i}: {:?}",
            seg.duration
        );
        if i > 0 {
            let prev = &segments[i - 1];
            assert_eq!(seg.sequence, prev.sequence + 1);
            let end = secs(&prev.start_pts) + secs(&prev.duration);
            assert!(
                (end - secs(&seg.start_pts)).abs() < 0.01,
                "gap before GOP {i}"
            );
        }
        // Each decodes alone: all its 30 frames.
        let probe = ffprobe(&seg.data);
        let video = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("video in the segment")
            .clone();
        let frames: u32 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
        if i < 9 {
            assert_eq!(frames, 30, "GOP {i}");
        } else {
            // The caller may lose its very last packets as it hangs up.
            assert!(frames >= 28, "last GOP: {frames} frames");
        }
        if i < 9 {
            // Each GOP holds the audio that plays with it, though the
            // tracks arrive interleaved a little apart.
            probe_av(&seg.data, "gop.ts").assert_audio_and_video(&format!("TS GOP {i}"), 1.0, 0.05);
        }
        joined.extend_from_slice(&seg.data);
    }
    probe_av(&joined, "joined.ts").assert_audio_and_video("joined TS segments", 10.0, 1.0);
    let probe = ffprobe(&joined);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - 10.0).abs() <= 0.5,
        "concatenation plays {duration} s"
    );
    let streams = probe["streams"].as_array().unwrap();
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"));

    // The same GOPs as fragmented MP4: an init segment first, then one
    // fragment per GOP; together one playable file.
    let mut sub = subscribe_as(&server, key, Start::Earliest(true), pb::SegmentFormat::Fmp4).await;
    let mut fmp4 = vec![];
    for (i, ts_segment) in segments.iter().enumerate() {
        let seg = next(&mut sub).await;
        assert_eq!(seg.format(), pb::SegmentFormat::Fmp4);
        assert_eq!(seg.sequence, ts_segment.sequence);
        let kind = &seg.data[4..8];
        assert_eq!(kind, if i == 0 { b"ftyp" } else { b"moof" }, "segment {i}");
        fmp4.extend_from_slice(&seg.data);
    }
    probe_av(&fmp4, "joined.mp4").assert_audio_and_video("joined fMP4 segments", 10.0, 1.0);
    let probe = ffprobe(&fmp4);
    let video = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
        .clone();
    let frames: u32 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(frames >= 298, "fMP4 holds {frames} frames of 300");
    // The fragments keep the stream's timeline (which need not start at 0).
    let number = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let span = number(&probe["format"]["duration"]) - number(&probe["format"]["start_time"]);
    assert!((span - 10.0).abs() <= 0.5, "fMP4 spans {span} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_rewind_by_seconds_and_by_wall_clock() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    until_frames(&server, key, 12 * 30).await;

    // Every GOP held, oldest first.
    let mut earliest = subscribe(&server, key, Start::Earliest(true)).await;
    let mut held = vec![next(&mut earliest).await];
    let mut edge = subscribe(&server, key, Start::LiveEdge(true)).await;
    let next_to_complete = next(&mut edge).await;
    while held.last().unwrap().sequence + 1 < next_to_complete.sequence {
        held.push(next(&mut earliest).await);
    }
    let newest = held.last().unwrap();
    let live_end = secs(&newest.start_pts) + secs(&newest.duration);

    // 5 s before the newest media: the GOP holding that moment (GOPs of
    // 1 s), or a later one if media arrived meanwhile.
    let mut rewound = subscribe(&server, key, Start::SecondsBeforeLive(5)).await;
    let first = next(&mut rewound).await;
    let from_live = live_end - secs(&first.start_pts);
    assert!(
        (4.0..=6.0).contains(&from_live),
        "5 s before live started {from_live} s before the live edge"
    );

    // A wall-clock moment inside a held GOP starts at that GOP.
    let target = &held[held.len() / 2];
    let mut at = target.start_time.unwrap();
    at.nanos += 500_000_000;
    if at.nanos >= 1_000_000_000 {
        at.nanos -= 1_000_000_000;
        at.seconds += 1;
    }
    let mut by_time = subscribe(&server, key, Start::Time(at)).await;
    let first = next(&mut by_time).await;
    assert_eq!(
        first.sequence, target.sequence,
        "the GOP holding {at:?}: {:?}",
        target.start_time
    );
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_subscribers_get_a_new_init_segment_when_the_format_changes() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut media = ts_part(dir.path(), "a.ts", "640x360", 3, 1);
    media.extend(ts_part(dir.path(), "b.ts", "320x180", 3, 4));
    push_media(&server, &stream, &media).await;
    let mut sub = subscribe_as(&server, key, Start::Earliest(true), pb::SegmentFormat::Fmp4).await;
    let mut inits = vec![];
    let mut discontinuities = vec![];
    for i in 0..6 {
        let seg = next(&mut sub).await;
        if &seg.data[4..8] == b"ftyp" {
            inits.push(i);
        }
        if seg.discontinuity {
            discontinuities.push(i);
        }
    }
    // One init at the start, one where 640x360 becomes 320x180, which is
    // flagged as a discontinuity.
    assert_eq!(inits, [0, 3], "init segments at GOPs {inits:?}");
    assert_eq!(discontinuities, [3]);

    // A clip asked across the change ends at it, and plays as one format.
    let clip = create_clip(&server, key, "cam", 5, "").await;
    let bytes = download_clip(&server, key, &clip.id).await;
    let probe = probe_av(&bytes, "clip.mp4");
    probe.assert_audio_and_video("clip across a format change", secs(&clip.duration), 0.5);
    // From the keyframe before the start to the change: part A, 3 s.
    assert!(secs(&clip.duration) <= 3.1, "{:?}", clip.duration);
    let info = ffprobe(&bytes);
    let video = info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
        .clone();
    assert_eq!(video["width"].as_u64(), Some(640));
}

/// The replay window of "cam" as `GetStream` reports it.
async fn held_window(server: &Server, key: &str) -> pb::ReplayWindow {
    get_stream(server, key, "cam")
        .await
        .unwrap()
        .replay_window
        .expect("a replay window")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_keeps_the_window() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(5)))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    // 20 s published: four times the window.
    until_frames(&server, key, 20 * 30).await;

    // Whole GOPs (1 s) are evicted: the window is held to within one.
    let window = held_window(&server, key).await;
    let held = secs(&window.duration);
    assert!(
        (5.0..=6.0).contains(&held),
        "buffer held {held} s for a 5 s window: {window:?}"
    );
    // A new reader from the earliest starts inside the window.
    let mut fresh = subscribe(&server, key, Start::Earliest(true)).await;
    let oldest = next(&mut fresh).await;
    let mut live = subscribe(&server, key, Start::LiveEdge(true)).await;
    let newest = next(&mut live).await;
    let span = secs(&newest.start_pts) + secs(&newest.duration) - secs(&oldest.start_pts);
    assert!(
        span <= 7.0,
        "from the earliest GOP to the live edge: {span} s"
    );
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_memory_budget_evicts_before_the_window() {
    // 1 MiB holds about 8 s of the test media (~118 kB/s).
    let server = Server::builder()
        .flags(&["--replay-memory-mb", "1"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    until_frames(&server, key, 20 * 30).await;
    let window = held_window(&server, key).await;
    let held = secs(&window.duration);
    assert!(window.bytes <= 1 << 20, "{window:?}");
    assert!(
        (4.0..=12.0).contains(&held),
        "a 1 MiB budget held {held} s of 20: {window:?}"
    );
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_seconds_become_a_clip_that_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().data_dir(&data).start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let stream = create_stream(&server, &key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let source = test_ts_25s();
    let ffmpeg = srt_publish(&server.srt_url(&stream), source);
    until_frames(&server, &key, 16 * 30).await;
    let mut sub = subscribe(&server, &key, Start::Earliest(true)).await;
    let session_start = secs(&next(&mut sub).await.start_pts);

    // "The last 10 seconds", in one call.
    let started = Instant::now();
    let clip = server
        .live()
        .await
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: "cam".into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(10)),
                duration_seconds: 10,
                title: "the goal".into(),
                end_time: None,
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    eprintln!(
        "10 s replay clip created in {:?}, {} bytes",
        started.elapsed(),
        clip.size_bytes
    );
    assert_eq!(clip.title, "the goal");
    assert!(
        (secs(&clip.duration) - 10.0).abs() <= 1.0,
        "{:?}",
        clip.duration
    );

    let bytes = download_clip(&server, &key, &clip.id).await;
    assert_eq!(bytes.len() as u64, clip.size_bytes);
    // Faststart: the index comes before the media.
    let at = |kind: &[u8]| bytes.windows(4).position(|w| w == kind).unwrap();
    assert!(at(b"moov") < at(b"mdat"), "moov after mdat");
    probe_av(&bytes, "clip.mp4").assert_audio_and_video("replay clip", secs(&clip.duration), 1.0);
    let probe = ffprobe(&bytes);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - secs(&clip.duration)).abs() <= 0.5,
        "MP4 plays {duration} s"
    );
    let codecs: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"aac"),
        "{codecs:?}"
    );
    // It starts on the keyframe of the requested moment: its first frame
    // is the source frame at that stream time.
    let offset = secs(&clip.start_pts) - session_start;
    assert!(
        (offset - offset.round()).abs() < 0.01,
        "starts on a keyframe (GOP 1 s): {offset}"
    );
    let first_frame = first_frame_rgb(&bytes);
    let reference = source_frame_rgb(source, (offset * 30.0).round() as u32);
    let db = psnr(&first_frame, &reference);
    assert!(db >= 35.0, "clip's first frame vs source: {db:.1} dB");

    // A frame at a chosen moment, decoded on demand from its GOP: 2.5 s
    // into the session, between keyframes.
    let moment = {
        let mut t = clip_start_time(&server, &key).await;
        t.nanos += 500_000_000;
        t.seconds += 2 + i64::from(t.nanos / 1_000_000_000);
        t.nanos %= 1_000_000_000;
        t
    };
    let still = server
        .live()
        .await
        .get_thumbnail(authed(
            pb::GetThumbnailRequest {
                stream_id: "cam".into(),
                at: Some(moment),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let frame = ((secs(&still.pts) - session_start) * 30.0).round() as u32;
    assert!((60..=90).contains(&frame), "frame {frame} for 2.5 s in");
    let image = image::load_from_memory(&still.data).unwrap().to_rgb8();
    assert_picture_is_frame(image.as_raw(), source, frame, "frame at a moment");

    // Out of range requests name the field.
    let mut live = server.live().await;
    let in_future = pbjson_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    };
    for (start, field) in [
        (
            pb::create_replay_clip_request::Start::StartTime(in_future),
            "start_time",
        ),
        (
            pb::create_replay_clip_request::Start::SecondsBeforeLive(3600),
            "seconds_before_live",
        ),
    ] {
        let status = live
            .create_replay_clip(authed(
                pb::CreateReplayClipRequest {
                    stream_id: "cam".into(),
                    start: Some(start),
                    duration_seconds: 5,
                    title: String::new(),
                    end_time: None,
                },
                &key,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());

    // After the stream ended and the server restarted, the clip is there.
    drop(sub);
    server.stop();
    let server = Server::builder().data_dir(&data).start();
    let listed = server
        .live()
        .await
        .list_replay_clips(authed(
            pb::ListReplayClipsRequest {
                stream_id: "cam".into(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .clips;
    assert_eq!(listed, vec![clip.clone()]);
    assert!(download_clip(&server, &key, &clip.id).await == bytes);
}

/// The first video frame of an MP4, as RGB24, decoded by ffmpeg.
fn first_frame_rgb(mp4: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, mp4).unwrap();
    source_frame_rgb(&path, 0)
}

/// Wall-clock start of the oldest GOP held.
async fn clip_start_time(server: &Server, key: &str) -> pbjson_types::Timestamp {
    get_stream(server, key, "cam")
        .await
        .unwrap()
        .replay_window
        .expect("replay window")
        .earliest_time
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entire_stream_spills_to_disk_and_replays_from_the_start() {
    // Only the newest 3 s stay in memory.
    let server = Server::builder()
        .flags(&["--replay-memory-seconds", "3"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let entire = replay_options(0);
    publish_session(&server, key, "cam", Some(entire), test_ts()).await;

    let window = within(20, "older GOPs to reach the disk", async {
        loop {
            let window = get_stream(&server, key, "cam")
                .await
                .unwrap()
                .replay_window
                .unwrap();
            if window.gops >= 9 && window.disk_bytes > 0 && window.bytes < window.disk_bytes {
                return window;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(secs(&window.duration) >= 9.5, "{window:?}");
    // (With LIVEPROC_TEST_OBJECTS=s3 they go to the bucket instead:
    // tests/storage.rs checks that.)
    if !objects_by_default() {
        let spilled = std::fs::read_dir(server.data_dir.join("replay").join(&org.id).join("cam"))
            .unwrap()
            .count();
        assert!(spilled >= 6, "{spilled} GOP files on disk");
    }

    // From the very start, read back transparently: one playable stream.
    let mut sub = subscribe(&server, key, Start::Earliest(true)).await;
    let mut joined = vec![];
    for i in 0..window.gops {
        let seg = next(&mut sub).await;
        assert_eq!(seg.sequence, u64::from(i) + 1);
        if i < 9 {
            // Each GOP holds the audio that plays with it, though the
            // tracks arrive interleaved a little apart.
            probe_av(&seg.data, "gop.ts").assert_audio_and_video(&format!("TS GOP {i}"), 1.0, 0.05);
        }
        joined.extend_from_slice(&seg.data);
    }
    probe_av(&joined, "joined.ts").assert_audio_and_video("joined TS segments", 10.0, 1.0);
    let probe = ffprobe(&joined);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - 10.0).abs() <= 0.5,
        "replayed {duration} s of 10"
    );
}

/// H.265 goes through GStreamer's `mp4mux` for fMP4 (the direct writer
/// handles H.264): each GOP's fragment is muxed alone and moved onto the
/// stream's timeline. Joined, the segments must play as one file of the
/// source's length (fragments left at time zero would overlap), and the
/// recording must hold H.265 and AAC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_replay_segments_and_recording_play() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = &org.api_key;
    let mut processing = replay_options(60);
    processing.recording = recording_options(0).recording;
    publish_session(&server, key, "cam", Some(processing), test_hevc_ts()).await;

    let mut sub = subscribe_as(&server, key, Start::Earliest(true), pb::SegmentFormat::Fmp4).await;
    let mut fmp4 = vec![];
    // The session has ended: the subscription ends after the last GOP.
    while let Some(seg) = within(30, "a replay segment", sub.message())
        .await
        .inspect_err(|_| eprintln!("LOG {}", server.log()))
        .unwrap()
    {
        let kind = &seg.data[4..8];
        assert_eq!(kind, if fmp4.is_empty() { b"ftyp" } else { b"moof" });
        fmp4.extend_from_slice(&seg.data);
    }
    let probe = probe_av(&fmp4, "joined.mp4");
    probe.assert_audio_and_video("joined H.265 fMP4 segments", 5.0, 1.0);
    assert_eq!(probe.video.as_ref().unwrap().codec, "hevc");
    let info = ffprobe(&fmp4);
    let number = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    let span = number(&info["format"]["duration"]) - number(&info["format"]["start_time"]);
    assert!((span - 5.0).abs() <= 0.5, "H.265 fMP4 spans {span} s");

    let recordings = list_recordings(&server, key, "cam").await;
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let bytes = download_recording(&server, key, &recordings[0].id, 0).await;
    let probe = probe_av(&bytes, "recording.mp4");
    probe.assert_audio_and_video("H.265 recording", 5.0, 1.0);
    assert_eq!(probe.video.as_ref().unwrap().codec, "hevc");
}

/// A WebVTT cue: start and end (s) and its text.
fn vtt_cues(vtt: &str) -> Vec<(f64, f64, String)> {
    let time = |t: &str| -> f64 {
        let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    vtt.split("\n\n")
        .filter_map(|block| {
            let (timing, text) = block.split_once('\n')?;
            let (start, end) = timing.split_once(" --> ")?;
            Some((time(start), time(end), text.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storyboard_covers_the_window_with_tiles_of_its_keyframes() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    publish_session(&server, key, "cam", Some(replay_options(60)), test_ts_25s()).await;
    let window = held_window(&server, key).await;

    let response = get(&server, "/v1/streams/cam/storyboard.vtt", Some(key)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/vtt; charset=utf-8"
    );
    let vtt = response.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    let cues = vtt_cues(&vtt);
    // A tile every 5 s of a 25 s window (GOP 1 s): 5 to 7 as the slots
    // fall; without gaps, over the whole window.
    assert!((5..=7).contains(&cues.len()), "{vtt}");
    for (i, pair) in cues.windows(2).enumerate() {
        assert_eq!(pair[0].1, pair[1].0, "a gap or overlap:\n{vtt}");
        // Slots are 5 s of the wall clock from the epoch: the window's
        // first one may hold only its last GOP.
        let step = pair[1].0 - pair[0].0;
        let least = if i == 0 { 0.5 } else { 4.0 };
        assert!(
            (least..=6.5).contains(&step),
            "tiles {step} s apart:\n{vtt}"
        );
    }
    // Cues are timed by the wall clock of arrival (as the playlist's
    // program dates are), which spreads the 25 s of media a little.
    let covered = cues.last().unwrap().1 - cues[0].0;
    assert!(
        (covered - secs(&window.duration)).abs() < 1.0,
        "cues cover {covered} s of a {} s window",
        secs(&window.duration)
    );

    // Each cue's tile is the keyframe at its start: the source frame of
    // that second (30 fps, the first cue is the session's first frame).
    let mut sheets = std::collections::HashMap::new();
    for (start, _, text) in &cues {
        let (url, xywh) = text.split_once("#xywh=").unwrap();
        if !sheets.contains_key(url) {
            let sheet = get(&server, url, Some(key)).await;
            assert_eq!(sheet.status(), 200, "{url}");
            let bytes = sheet.bytes().await.unwrap();
            sheets.insert(
                url.to_string(),
                image::load_from_memory(&bytes).unwrap().to_rgb8(),
            );
        }
        let sheet = &sheets[url];
        let [x, y, w, h]: [u32; 4] = xywh
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        assert_eq!((w, h), (160, 90));
        let tile = image::imageops::crop_imm(sheet, x, y, w, h).to_image();
        let second = (start - cues[0].0).round() as u32;
        assert_tile_is_frame(
            &tile,
            test_ts_25s(),
            second * 30,
            &format!("tile at {start} s"),
        );
    }
}

/// What Chromium's `<video>` shows of a clip: how long it says the clip
/// is, and its picture at 0 and at the last of its `frames` (30 fps), as
/// RGB.
struct InChromium {
    duration: f64,
    first: Vec<u8>,
    last: Vec<u8>,
}

/// Plays the clip `id` in a `<video>` on a page of the server's own
/// origin (so its pictures can be read from a canvas), seeking to its
/// first and last frames.
async fn frames_in_chromium(server: &Server, key: &str, id: &str, frames: u32) -> InChromium {
    let url = sign(server, key, &format!("/v1/clips/{id}.mp4"), 600)
        .await
        .url;
    let browser = Browser::start(800, 600).await;
    browser.open_fresh(&format!("{}/", base(server))).await;
    let last_at = (f64::from(frames) - 1.0) / 30.0 + 0.002;
    browser
        .eval(&format!(
            r#"(() => {{
                const v = document.createElement('video');
                const seen = window.seen = {{}};
                const grab = () => {{
                    const c = document.createElement('canvas');
                    c.width = v.videoWidth;
                    c.height = v.videoHeight;
                    c.getContext('2d').drawImage(v, 0, 0);
                    return c.toDataURL('image/png');
                }};
                v.muted = true;
                v.preload = 'auto';
                v.onerror = () => {{ seen.error = String(v.error && v.error.message); }};
                v.addEventListener('loadeddata', () => {{
                    seen.duration = v.duration;
                    v.addEventListener('seeked', () => {{
                        seen.first = grab();
                        v.addEventListener('seeked', () => {{ seen.last = grab(); }}, {{ once: true }});
                        v.currentTime = Math.min({last_at}, v.duration - 0.0005);
                    }}, {{ once: true }});
                    v.currentTime = 0.001;
                }}, {{ once: true }});
                v.src = {url:?};
                document.body.appendChild(v);
                return true;
            }})()"#
        ))
        .await;
    browser
        .until("both frames", "window.seen.last || window.seen.error")
        .await;
    let seen = browser.eval("window.seen").await;
    browser.close().await;
    assert!(seen["error"].is_null(), "Chromium: {seen}");
    let picture = |name: &str| {
        use base64::Engine as _;
        let url = seen[name].as_str().unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(url.split_once(',').unwrap().1)
            .unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!((image.width(), image.height()), (640, 360));
        image.into_raw()
    };
    InChromium {
        duration: seen["duration"].as_f64().unwrap(),
        first: picture("first"),
        last: picture("last"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_from_start_to_end_time_presents_exactly_those_frames() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let source = test_ts_25s();
    let ffmpeg = srt_publish(&server.srt_url(&stream), source);
    until_frames(&server, key, 12 * 30).await;
    let mut sub = subscribe(&server, key, Start::Earliest(true)).await;
    let first = next(&mut sub).await;
    let session_start = secs(&first.start_pts);
    // 2.5 s to 4.5 s into the session, by the wall clock of the first
    // GOP: between keyframes (GOP 1 s) at both ends.
    let at = |seconds: f64| timestamp_plus(&first.start_time.unwrap(), seconds);
    let started = Instant::now();
    let clip = server
        .live()
        .await
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: "cam".into(),
                start: Some(pb::create_replay_clip_request::Start::StartTime(at(2.5))),
                duration_seconds: 0,
                title: String::new(),
                end_time: Some(at(4.5)),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    eprintln!("a 2 s frame-accurate clip made in {:?}", started.elapsed());
    let first_frame = ((secs(&clip.start_pts) - session_start) * 30.0).round() as u32;
    // Every frame that starts before the end is shown (the last perhaps
    // only for a millisecond): the span starts on a frame, so it holds
    // the frames that start within its duration.
    let frames = (secs(&clip.duration) * 30.0 - 0.001).ceil() as u32;
    // Wall-clock times map to stream times by each GOP's arrival, which
    // SRT's delivery spreads by a few frames; what the clip says it holds
    // is then exact, to the frame.
    assert!(
        (69..=81).contains(&first_frame),
        "starts at frame {first_frame}"
    );
    assert!((54..=66).contains(&frames), "{frames} frames");

    let bytes = download_clip(&server, key, &clip.id).await;
    // The file holds whole GOPs; it plays for the span, both tracks.
    let played = assert_clip_is_frames(&bytes, source, first_frame, frames);
    assert!(
        (played - secs(&clip.duration)).abs() < 0.02,
        "plays {played} s of {:?}",
        clip.duration
    );

    // Chromium's <video> honours the edit list too: at 0 it shows the
    // first frame asked for, at the last frame's time the last one.
    let shown = frames_in_chromium(&server, key, &clip.id, frames).await;
    assert!(
        (shown.duration - secs(&clip.duration)).abs() < 0.02,
        "Chromium plays {} s of {:?}",
        shown.duration,
        clip.duration
    );
    for (picture, frame, which) in [
        (&shown.first, first_frame, "first"),
        (&shown.last, first_frame + frames - 1, "last"),
    ] {
        let db = psnr(picture, &source_frame_rgb(source, frame));
        let before = psnr(picture, &source_frame_rgb(source, frame - 1));
        let after = psnr(picture, &source_frame_rgb(source, frame + 1));
        eprintln!("Chromium's {which} frame: {db:.1} dB against frame {frame}, {before:.1} and {after:.1} its neighbours");
        assert!(
            db >= 30.0 && db > before && db > after,
            "Chromium's {which} frame vs source frame {frame}: {db:.1} dB \
             (the one before {before:.1}, after {after:.1})"
        );
    }

    // The same range as a URL: the same cut, made when asked for.
    let rfc = |seconds: f64| liveproc::proto::timestamp_to_rfc3339(&at(seconds));
    let url = format!(
        "/v1/streams/cam/clip.mp4?start={}&end={}",
        rfc(2.5),
        rfc(4.5)
    );
    let response = get(&server, &url, Some(key)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), bytes, "the URL's cut");
    for (url, status) in [
        (format!("/v1/streams/cam/clip.mp4?start={}", rfc(2.5)), 400),
        (
            format!(
                "/v1/streams/cam/clip.mp4?start={}&end={}",
                rfc(4.5),
                rfc(2.5)
            ),
            400,
        ),
        (
            format!("/v1/streams/cam/clip.mp4?start=noon&end={}", rfc(2.5)),
            400,
        ),
        (
            format!(
                "/v1/streams/nope/clip.mp4?start={}&end={}",
                rfc(2.5),
                rfc(4.5)
            ),
            404,
        ),
    ] {
        assert_eq!(
            get(&server, &url, Some(key)).await.status(),
            status,
            "{url}"
        );
    }

    // end_time needs start_time, and comes after it.
    let mut live = server.live().await;
    for (start, end, field) in [
        (
            Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(5)),
            at(4.5),
            "end_time",
        ),
        (
            Some(pb::create_replay_clip_request::Start::StartTime(at(4.5))),
            at(2.5),
            "end_time",
        ),
    ] {
        let status = live
            .create_replay_clip(authed(
                pb::CreateReplayClipRequest {
                    stream_id: "cam".into(),
                    start,
                    duration_seconds: 0,
                    title: String::new(),
                    end_time: Some(end),
                },
                key,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}

/// Every video frame ffmpeg decodes of an fMP4 (init segment and
/// fragments), as raw RGB.
fn decoded_fmp4(init: &[u8], fragments: &[&[u8]]) -> Vec<u8> {
    let mut file = init.to_vec();
    for fragment in fragments {
        file.extend_from_slice(fragment);
    }
    mp4_frames_rgb(&file, 640, 360).concat()
}

/// The value of `attribute` in a playlist tag's attribute list.
fn attribute<'a>(line: &'a str, attribute: &str) -> Option<&'a str> {
    let list = line.split_once(':')?.1;
    list.split(',').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == attribute).then(|| value.trim_matches('"'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_latency_hls_lists_parts_blocks_and_skips() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(60)))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    until_frames(&server, key, 12 * 30).await;
    let playlist = |query: String| {
        let server = &server;
        async move {
            let started = Instant::now();
            let response = get(
                server,
                &format!("/v1/streams/cam/ll.m3u8{query}"),
                Some(key),
            )
            .await;
            assert_eq!(response.status(), 200, "ll.m3u8{query}");
            (response.text().await.unwrap(), started.elapsed())
        }
    };
    let (text, _) = playlist(String::new()).await;
    let lines: Vec<&str> = text.lines().collect();
    for tag in [
        "#EXT-X-VERSION:9",
        "#EXT-X-PART-INF:PART-TARGET=0.300",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.900,CAN-SKIP-UNTIL=6",
    ] {
        assert!(lines.contains(&tag), "{tag} in {text}");
    }
    assert!(
        lines[lines.len() - 1].starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI="),
        "{text}"
    );
    // The window as whole segments, the newest ones also as parts: at
    // 30 fps, 8 frames (0.267 s) each, the GOP's last shorter, the first
    // of each GOP independent.
    let segments = lines
        .iter()
        .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .count();
    assert!(segments >= 10, "{segments} segments: {text}");
    let parts: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .collect();
    assert!(parts.len() >= 12, "{text}");
    for part in &parts {
        let duration: f64 = attribute(part, "DURATION").unwrap().parse().unwrap();
        let uri = attribute(part, "URI").unwrap();
        let index: usize = uri
            .rsplit('/')
            .next()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(part.ends_with(",INDEPENDENT=YES"), index == 0, "{part}");
        assert!(duration > 0.0 && duration <= 0.3, "{part}");
        if index < 3 {
            assert!((duration - 0.267).abs() < 0.002, "{part}");
        }
    }

    // A complete GOP listed as parts: its parts decode to exactly the
    // frames of its segment, both with the init segment.
    let extinf = lines.iter().position(|l| l.starts_with("#EXTINF")).unwrap();
    let parted_segment = lines
        .iter()
        .enumerate()
        .skip(extinf)
        .find(|(i, l)| l.starts_with("#EXTINF") && lines[i - 1].starts_with("#EXT-X-PART:"))
        .map(|(i, _)| i)
        .expect("a complete GOP with parts");
    let segment_uri = lines[parted_segment + 1];
    let sequence = segment_uri
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".m4s");
    let part_uris: Vec<&str> = parts
        .iter()
        .map(|p| attribute(p, "URI").unwrap())
        .filter(|u| {
            u.rsplit('/')
                .next()
                .unwrap()
                .starts_with(&format!("{sequence}."))
        })
        .collect();
    let listed: f64 = lines[parted_segment]["#EXTINF:".len()..]
        .trim_end_matches(',')
        .parse()
        .unwrap();
    let sum: f64 = parts
        .iter()
        .filter(|p| part_uris.contains(&attribute(p, "URI").unwrap()))
        .map(|p| attribute(p, "DURATION").unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        (listed - sum).abs() < 0.005,
        "parts {sum} s, segment {listed} s"
    );
    let fetch = |uri: String| {
        let server = &server;
        async move {
            let response = get(server, &uri, Some(key)).await;
            assert_eq!(response.status(), 200, "{uri}");
            response.bytes().await.unwrap()
        }
    };
    let map = lines.iter().find(|l| l.starts_with("#EXT-X-MAP:")).unwrap();
    let init = fetch(attribute(map, "URI").unwrap().to_string()).await;
    let whole = fetch(segment_uri.to_string()).await;
    let mut fragments = vec![];
    for uri in &part_uris {
        fragments.push(fetch(uri.to_string()).await);
    }
    let from_parts = decoded_fmp4(&init, &fragments.iter().map(|f| &f[..]).collect::<Vec<_>>());
    let from_segment = decoded_fmp4(&init, &[&whole]);
    assert_eq!(from_parts.len(), 30 * 640 * 360 * 3, "a GOP of 30 frames");
    assert!(from_parts == from_segment, "parts and segment decode alike");
    let mut file = init.to_vec();
    fragments.iter().for_each(|f| file.extend_from_slice(f));
    let codecs: Vec<String> = ffprobe(&file)["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codecs, ["h264", "aac"]);

    // Blocking reload: the hinted part's request waits for it; asking
    // for the playlist with the part after it waits for that one, then
    // lists both.
    let (fresh, _) = playlist(String::new()).await;
    let hint = attribute(fresh.lines().last().unwrap(), "URI")
        .unwrap()
        .to_string();
    let (msn, part) = {
        let name = hint.rsplit('/').next().unwrap();
        let numbers: Vec<usize> = name
            .split('.')
            .take(2)
            .map(|n| n.parse().unwrap())
            .collect();
        (numbers[0], numbers[1])
    };
    let hinted = tokio::spawn({
        let uri = format!("{}{hint}", base(&server));
        let key = key.to_string();
        async move {
            let response = reqwest::Client::new()
                .get(uri)
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    });
    let (blocked, waited) = playlist(format!("?_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
    eprintln!("a blocking reload for the part after the hint waited {waited:?}");
    assert!(
        waited > Duration::from_millis(100) && waited < Duration::from_millis(1500),
        "waited {waited:?}"
    );
    assert!(blocked.contains(&format!("URI=\"{hint}\"")), "{blocked}");
    let (status, bytes) = hinted.await.unwrap();
    assert_eq!(status, 200);
    assert!(bytes.windows(4).any(|w| w == b"moof"));

    // A delta update leaves out what is older than 6 s.
    let (delta, _) = playlist("?_HLS_skip=YES".into()).await;
    let skipped: usize = delta
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
        .expect("EXT-X-SKIP")
        .parse()
        .unwrap();
    let kept = delta.lines().filter(|l| l.starts_with("#EXTINF")).count();
    assert!(
        skipped >= 4 && (6..=8).contains(&kept),
        "skipped {skipped}, kept {kept}: {delta}"
    );

    // Too far ahead is refused at once.
    let response = get(
        &server,
        &format!("/v1/streams/cam/ll.m3u8?_HLS_msn={}", 1_000_000),
        Some(key),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}
