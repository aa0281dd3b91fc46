//! Recording through the real server: segments that probe as the expected
//! duration with video and audio, cover the session without gaps, download
//! byte for byte; a kill -9 leaves a playable, recovered file; a failing
//! disk stops the recording, not the stream.

mod common;

use std::time::{Duration, Instant};

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;
use tonic_types::StatusExt;

fn probe_duration(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Publishes 25 s to "cam" recorded in 10 s files; the three files once
/// complete.
async fn record_25s_in_10s_files(server: &Server, key: &str) -> Vec<pb::Recording> {
    publish_session(
        server,
        key,
        "cam",
        Some(recording_options(10)),
        test_ts_25s(),
    )
    .await;
    let recordings = recordings_until(server, key, "cam", |r| {
        !r.is_empty() && r.iter().all(|r| r.state() == pb::RecordingState::Complete)
    })
    .await;
    assert_eq!(recordings.len(), 3, "{recordings:?}");
    recordings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_cover_the_session_and_download_exactly() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let recordings = record_25s_in_10s_files(&server, key).await;
    let durations: Vec<f64> = recordings.iter().map(|r| secs(&r.duration)).collect();
    for (d, want) in durations.iter().zip([10.0, 10.0, 5.0]) {
        assert!((d - want).abs() <= 1.0, "segment durations {durations:?}");
    }
    // Contiguous: each starts where the previous ended.
    for pair in recordings.windows(2) {
        let end = secs(&pair[0].start_pts) + secs(&pair[0].duration);
        let next = secs(&pair[1].start_pts);
        assert!((end - next).abs() < 0.05, "gap or overlap: {end} vs {next}");
    }
    let total: f64 = durations.iter().sum();
    assert!(
        (total - 25.0).abs() <= 1.0,
        "session of 25 s recorded as {total} s"
    );

    // In object storage the local files are only a spool, gone once
    // uploaded; the downloads below come from the objects.
    let local = server.object_store.is_none();
    if local {
        let files = std::fs::read_dir(server.data_dir.join("recordings").join(&org.id).join("cam"))
            .unwrap()
            .count();
        assert_eq!(files, 3);
    }
    let mut audio_packets = 0;
    for recording in &recordings {
        let data = download_recording(&server, key, &recording.id, 0).await;
        assert_eq!(data.len() as u64, recording.size_bytes);
        if local {
            let on_disk = std::fs::read(
                server
                    .data_dir
                    .join("recordings")
                    .join(&org.id)
                    .join("cam")
                    .join(format!("{}.mp4", recording.id)),
            )
            .unwrap();
            assert!(data == on_disk, "download differs from the file");
        }
        let half = data.len() as u64 / 2;
        assert!(
            download_recording(&server, key, &recording.id, half).await == data[half as usize..]
        );

        let probe = probe_av(&data, "recording.mp4");
        audio_packets += probe.audio.as_ref().map_or(0, |a| a.packets);
        // Each file starts on a keyframe: it plays from its first frame.
        assert_eq!(
            probe.first_picture_type(),
            "I",
            "recording {}",
            recording.id
        );
        probe.assert_audio_and_video(
            &format!("recording {}", recording.id),
            secs(&recording.duration),
            1.0,
        );
        let probe = ffprobe(&data);
        let streams = probe["streams"].as_array().unwrap();
        let codecs: Vec<&str> = streams
            .iter()
            .map(|s| s["codec_name"].as_str().unwrap())
            .collect();
        assert!(
            codecs.contains(&"h264") && codecs.contains(&"aac"),
            "{codecs:?}"
        );
        let probed = probe_duration(&probe);
        assert!(
            (probed - secs(&recording.duration)).abs() <= 1.0,
            "probed {probed} s"
        );
    }

    // No audio is lost where one file ends and the next begins (the tracks
    // are interleaved a little apart).
    let sent = 25.0 * SOURCE_AAC_FPS;
    assert!(
        audio_packets as f64 >= sent - 0.1 * SOURCE_AAC_FPS,
        "{audio_packets} audio frames recorded of {sent}"
    );

    // Finished recordings can be deleted, file and all.
    let first = &recordings[0];
    server
        .live()
        .await
        .delete_recording(authed(
            pb::DeleteRecordingRequest {
                recording_id: first.id.clone(),
            },
            key,
        ))
        .await
        .unwrap();
    assert_eq!(list_recordings(&server, key, "cam").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leaves_a_playable_recovered_recording() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().data_dir(&data).start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let stream = create_stream(&server, &key, "cam", Some(recording_options(0)))
        .await
        .unwrap();
    let mut ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());

    // Let about 8 s through, then kill the server without warning.
    let frames = within(30, "8 s of media", async {
        loop {
            let stats = get_stream(&server, &key, "cam").await.unwrap().ingest_stats;
            let frames = stats.map_or(0, |s| s.video_frames);
            if frames >= 240 {
                return frames;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    server.kill9();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    let server = Server::builder().data_dir(&data).start();
    let recordings = list_recordings(&server, &key, "cam").await;
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let recovered = &recordings[0];
    assert_eq!(recovered.state(), pb::RecordingState::Recovered);
    let file = download_recording(&server, &key, &recovered.id, 0).await;
    let probed = probe_duration(&ffprobe(&file));
    let received = frames as f64 / 30.0;
    eprintln!("kill -9: {received:.2} s received before the kill, {probed:.2} s playable after");
    // At most about a second lost (one fragment), plus the frames that
    // arrived between the stats read and the kill, which can only add.
    assert!(
        probed >= received - 1.5,
        "{probed} s playable of {received} s received"
    );
    assert!((secs(&recovered.duration) - probed).abs() <= 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_folder_stops_the_recording_not_the_stream() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(10)))
        .await
        .unwrap();
    // A file where the stream's recordings folder would go.
    let parent = server.data_dir.join("recordings").join(&org.id);
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::write(parent.join("cam"), b"in the way").unwrap();

    let mut watch = Watcher::start(&server, key, "cam").await;
    let push = Push::open(&server, &stream, None).await;
    assert!(push.send(&std::fs::read(test_ts()).unwrap()).await);
    let event = within(20, "a recording error event", async {
        loop {
            let e = watch.next().await;
            if e.kind() == pb::stream_event::Kind::FeatureError {
                return e;
            }
        }
    })
    .await;
    assert!(event.message.contains("recording"), "{event:?}");
    push.finish().await.unwrap();
    watch.until_state(StreamState::Ended, 20).await;
    assert!(
        !watch.states().contains(&StreamState::Error),
        "{:?}",
        watch.seen
    );
    assert_eq!(
        get_stream(&server, key, "cam")
            .await
            .unwrap()
            .ingest_stats
            .unwrap()
            .video_frames,
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_follows_option_changes_on_a_live_stream() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    // The built-in test pattern: live, keyframe every 2 s, never ends.
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: "cam".into(),
                name: String::new(),
                processing: None,
                source_uri: "test://pattern".into(),
                srt_encryption: None,
            },
            key,
        ))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    watch.until_state(StreamState::Live, 30).await;
    assert!(list_recordings(&server, key, "cam").await.is_empty());

    let update = |processing: pb::ProcessingOptions| {
        let server = &server;
        async move {
            server
                .live()
                .await
                .update_processing(authed(
                    pb::UpdateProcessingRequest {
                        stream_id: "cam".into(),
                        processing: Some(processing),
                    },
                    key,
                ))
                .await
                .unwrap();
        }
    };
    // On, with 2 s files: they appear while the stream goes on.
    update(recording_options(2)).await;
    recordings_until(&server, key, "cam", |r| {
        r.iter()
            .filter(|r| r.state() == pb::RecordingState::Complete)
            .count()
            >= 2
    })
    .await;
    // Off: the open file is closed, and no new one starts.
    update(pb::ProcessingOptions::default()).await;
    let done = recordings_until(&server, key, "cam", |r| {
        r.iter().all(|r| r.state() == pb::RecordingState::Complete)
    })
    .await;
    for r in &done {
        let d = secs(&r.duration);
        // The last file ends whenever recording was turned off.
        let last = r.id == done.last().unwrap().id;
        assert!((1.5..=4.5).contains(&d) || last, "{d} s");
        let probe = ffprobe(&download_recording(&server, key, &r.id, 0).await);
        let probed = probe_duration(&probe);
        assert!(
            (probed - d).abs() < 0.5,
            "{} catalogued {d} s, probes {probed} s",
            r.id
        );
    }
    let stream = get_stream(&server, key, "cam").await.unwrap();
    assert_eq!(stream.state(), StreamState::Live, "never re-ingested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_change_starts_a_new_file_that_plays() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(0)))
        .await
        .unwrap();
    // 4 s at 640x360, then 4 s at 320x180 on the same timeline: what an
    // encoder sends when its output size is changed live.
    let dir = tempfile::tempdir().unwrap();
    let mut media = ts_part(dir.path(), "a.ts", "640x360", 4, 1);
    media.extend(ts_part(dir.path(), "b.ts", "320x180", 4, 5));
    push_media(&server, &stream, &media).await;
    let recordings = recordings_until(&server, key, "cam", |r| {
        r.len() == 2 && r.iter().all(|r| r.state() == pb::RecordingState::Complete)
    })
    .await;
    assert_recordings_at_sizes(&server, key, &recordings, &[(640, 360), (320, 180)]).await;
}

/// `seconds` of H.264 (1 s GOPs) at 640x360, timestamps from `offset` s,
/// with AAC audio or without.
fn timeline_part(
    dir: &std::path::Path,
    name: &str,
    seconds: u32,
    offset: u32,
    audio: bool,
) -> Vec<u8> {
    if audio {
        ts_part(dir, name, "640x360", seconds, offset)
    } else {
        video_ts_part(dir, name, "640x360", seconds, offset)
    }
}

/// Pushes `media` to a new stream `id` and returns its finished
/// recordings and whether a timeline discontinuity was announced.
async fn record_pushed(
    server: &Server,
    key: &str,
    id: &str,
    media: Vec<u8>,
) -> (Vec<pb::Recording>, bool) {
    let stream = create_stream(server, key, id, Some(recording_options(0)))
        .await
        .unwrap();
    let mut watch = Watcher::start(server, key, id).await;
    push_media(server, &stream, &media).await;
    watch.until_state(StreamState::Ended, 30).await;
    let announced = watch
        .seen
        .iter()
        .any(|e| e.kind() == pb::stream_event::Kind::TimelineDiscontinuity);
    let recordings = recordings_until(server, key, id, |r| {
        !r.is_empty() && r.iter().all(|r| r.state() == pb::RecordingState::Complete)
    })
    .await;
    (recordings, announced)
}

/// Broken timelines as encoders send them, pushed over gRPC: the clock
/// jumps back two hours, or forward two hours, or audio starts in a
/// stream that began without it. Nothing pushed goes missing: every video
/// frame is in a file, every file lists the duration it plays, a jump is
/// announced and starts a new file, and audio that starts late is
/// recorded from its first frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_timelines_lose_nothing_and_list_true_durations() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let dir = tempfile::tempdir().unwrap();
    let joined = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
    let back = joined(
        timeline_part(dir.path(), "b1.ts", 10, 7300, true),
        timeline_part(dir.path(), "b2.ts", 10, 100, true),
    );
    let forward = joined(
        timeline_part(dir.path(), "f1.ts", 10, 1, true),
        timeline_part(dir.path(), "f2.ts", 10, 7211, true),
    );
    let late_audio = joined(
        timeline_part(dir.path(), "a1.ts", 5, 1, false),
        timeline_part(dir.path(), "a2.ts", 5, 6, true),
    );
    let (back, forward, late_audio) = tokio::join!(
        record_pushed(&server, key, "back", back),
        record_pushed(&server, key, "forward", forward),
        record_pushed(&server, key, "late-audio", late_audio),
    );

    for (name, (recordings, announced)) in [("back", back), ("forward", forward)] {
        assert!(announced, "{name}: the jump was not announced");
        assert_eq!(
            recordings.len(),
            2,
            "{name}: a new file at the jump: {recordings:?}"
        );
        let mut frames = 0;
        for recording in &recordings {
            let data = download_recording(&server, key, &recording.id, 0).await;
            let listed = secs(&recording.duration);
            let plays = probe_duration(&ffprobe(&data));
            assert!(
                (listed - plays).abs() < 0.2 && (listed - 10.0).abs() < 0.3,
                "{name}: listed {listed:.2} s, plays {plays:.2} s"
            );
            let probe = probe_av(&data, "part.mp4");
            probe.assert_audio_and_video(name, 10.0, 0.3);
            frames += probe.video.as_ref().unwrap().packets;
        }
        assert_eq!(frames, 600, "{name}: video frames recorded");
    }

    let (recordings, announced) = late_audio;
    assert!(!announced, "no jump here");
    assert_eq!(
        recordings.len(),
        2,
        "a new file when audio starts: {recordings:?}"
    );
    let first = probe_av(
        &download_recording(&server, key, &recordings[0].id, 0).await,
        "a.mp4",
    );
    let second = probe_av(
        &download_recording(&server, key, &recordings[1].id, 0).await,
        "b.mp4",
    );
    assert!(first.audio.is_none(), "{first:?}");
    let frames = first.video.as_ref().unwrap().packets + second.video.as_ref().unwrap().packets;
    assert_eq!(frames, 300, "video frames recorded");
    // Every AAC frame of the 5 s that had audio.
    let audio = second
        .audio
        .as_ref()
        .expect("audio in the second file")
        .packets as f64;
    assert!(
        audio >= 5.0 * SOURCE_AAC_FPS - 2.0,
        "{audio} AAC frames of {:.0}",
        5.0 * SOURCE_AAC_FPS
    );
}

/// With object storage, waits until the local spool of "cam" is gone, so
/// that what follows reads the objects.
async fn until_uploaded(server: &Server, org_id: &str) {
    if server.object_store.is_none() {
        return;
    }
    let spool = server.data_dir.join("recordings").join(org_id).join("cam");
    within(60, "the recordings to be uploaded", async {
        while std::fs::read_dir(&spool).is_ok_and(|mut d| d.next().is_some()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thumbnail_at_any_time_of_a_recording_is_its_keyframe() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let recordings = record_25s_in_10s_files(&server, key).await;
    until_uploaded(&server, &org.id).await;
    let first = &recordings[0];
    let start = first.start_time.unwrap();
    // The stream is not live: every time comes from the recordings. 12.5 s
    // in is in the second file, between keyframes (GOP 1 s, 30 fps): the
    // keyframe shown there is source frame 360.
    let thumbnail_at = |seconds: f64| {
        let server = &server;
        async move {
            server
                .live()
                .await
                .get_thumbnail(authed(
                    pb::GetThumbnailRequest {
                        stream_id: "cam".into(),
                        at: Some(timestamp_plus(&start, seconds)),
                    },
                    key,
                ))
                .await
        }
    };
    for (seconds, frame) in [(12.5, 360), (0.2, 0), (24.9, 720)] {
        let still = thumbnail_at(seconds).await.unwrap().into_inner();
        let shown = ((secs(&still.pts) - secs(&first.start_pts)) * 30.0).round() as u32;
        assert_eq!(shown, frame, "the keyframe shown {seconds} s in");
        let image = image::load_from_memory(&still.data).unwrap().to_rgb8();
        assert_eq!((image.width(), image.height()), (640, 360));
        assert_picture_is_frame(
            image.as_raw(),
            test_ts_25s(),
            frame,
            &format!("{seconds} s in"),
        );
    }
    // The same over HTTP, by RFC 3339 time.
    let at = liveproc::proto::timestamp_to_rfc3339(&timestamp_plus(&start, 12.5));
    let response = get(
        &server,
        &format!("/v1/streams/cam/thumbnail.jpg?at={at}"),
        Some(key),
    )
    .await;
    assert_eq!(response.status(), 200);
    let image = image::load_from_memory(&response.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_picture_is_frame(image.as_raw(), test_ts_25s(), 360, "over HTTP");
    // Before the first recording there is nothing to show.
    let status = thumbnail_at(-60.0).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_storyboard_covers_its_playlist_with_its_keyframes() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let recordings = record_25s_in_10s_files(&server, key).await;
    until_uploaded(&server, &org.id).await;
    let base = format!("/v1/streams/cam/sessions/{}", recordings[0].session_id);

    let response = get(&server, &format!("{base}/storyboard.vtt"), Some(key)).await;
    assert_eq!(response.status(), 200);
    let vtt = response.text().await.unwrap();
    let cues: Vec<(&str, &str)> = vtt
        .split("\n\n")
        .filter_map(|block| block.split_once('\n'))
        .filter(|(timing, _)| timing.contains(" --> "))
        .collect();
    // A cue every 5 s of the playlist's 25 s, without gaps.
    let timings: Vec<&str> = cues.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        timings[..4],
        [
            "00:00:00.000 --> 00:00:05.000",
            "00:00:05.000 --> 00:00:10.000",
            "00:00:10.000 --> 00:00:15.000",
            "00:00:15.000 --> 00:00:20.000",
        ],
        "{vtt}"
    );
    assert_eq!(cues.len(), 5, "{vtt}");
    assert!(timings[4].starts_with("00:00:20.000 --> 00:00:2"), "{vtt}");

    // Sheet 0 holds the five tiles: the keyframe at each cue's start.
    let sheet_url = cues[0].1.split_once('#').unwrap().0;
    assert!(cues.iter().all(|(_, text)| text.starts_with(sheet_url)));
    let sheet = get(&server, sheet_url, Some(key)).await;
    assert_eq!(sheet.status(), 200);
    let sheet = image::load_from_memory(&sheet.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!((sheet.width(), sheet.height()), (800, 450));
    for (i, (_, text)) in cues.iter().enumerate() {
        let xywh: Vec<u32> = text
            .split_once("#xywh=")
            .unwrap()
            .1
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(xywh, vec![(i as u32 % 5) * 160, 0, 160, 90]);
        let tile = image::imageops::crop_imm(&sheet, xywh[0], xywh[1], 160, 90).to_image();
        assert_tile_is_frame(&tile, test_ts_25s(), i as u32 * 150, &format!("tile {i}"));
    }
    let missing = get(&server, &format!("{base}/storyboard/1.jpg"), Some(key)).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_clip_presents_exactly_its_frames_across_files() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let recordings = record_25s_in_10s_files(&server, key).await;
    until_uploaded(&server, &org.id).await;
    let (first, second) = (&recordings[0], &recordings[1]);
    let session = first.session_id.clone();
    let start = first.start_time.unwrap();
    // 7.51 s to 12.21 s of the session: between keyframes (GOP 1 s) at
    // both ends, across the first file's end. A time maps into the file
    // that holds it from that file's start, so the end is at 12.21 s of
    // the session by the second file's start time.
    let (from, to) = (timestamp_plus(&start, 7.51), timestamp_plus(&start, 12.21));
    let into_second = (liveproc::proto::timestamp_to_millis(&to)
        - liveproc::proto::timestamp_to_millis(&second.start_time.unwrap()))
        as f64
        / 1000.0;
    let end = secs(&second.start_pts) - secs(&first.start_pts) + into_second;
    let last_frame = (end * 30.0).ceil() as u32 - 1;
    let started = Instant::now();
    let clip = server
        .live()
        .await
        .create_session_clip(authed(
            pb::CreateSessionClipRequest {
                stream_id: "cam".into(),
                session_id: session.clone(),
                start_time: Some(from),
                end_time: Some(to),
                title: "the goal".into(),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    eprintln!("a 4.7 s session clip made in {:?}", started.elapsed());
    let first_frame = ((secs(&clip.start_pts) - secs(&first.start_pts)) * 30.0).round() as u32;
    assert_eq!(first_frame, 225, "the frame shown 7.51 s in");
    assert_eq!(clip.title, "the goal");
    let bytes = download_clip(&server, key, &clip.id).await;
    let played = assert_clip_is_frames(&bytes, test_ts_25s(), 225, last_frame - 225 + 1);
    assert!(
        (played - secs(&clip.duration)).abs() < 0.02,
        "plays {played} s of {:?}",
        clip.duration
    );
    // It is a clip of the stream like the replay's.
    let listed = server
        .live()
        .await
        .list_replay_clips(authed(
            pb::ListReplayClipsRequest {
                stream_id: "cam".into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.clips.len(), 1);

    // The same range as a URL, cut when asked for; byte ranges work.
    let rfc = liveproc::proto::timestamp_to_rfc3339;
    let url = format!(
        "/v1/streams/cam/sessions/{session}/clip.mp4?start={}&end={}",
        rfc(&from),
        rfc(&to)
    );
    let response = get(&server, &url, Some(key)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), bytes, "the URL's cut");
    let part = reqwest::Client::new()
        .get(format!("{}{url}", base(&server)))
        .bearer_auth(key)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), bytes[100..200]);

    // Times outside the session's files, and a session that is not there.
    let mut live = server.live().await;
    for (start_time, end_time, field) in [
        (timestamp_plus(&start, -5.0), to, "start_time"),
        (from, timestamp_plus(&start, 60.0), "end_time"),
        (to, from, "end_time"),
    ] {
        let status = live
            .create_session_clip(authed(
                pb::CreateSessionClipRequest {
                    stream_id: "cam".into(),
                    session_id: session.clone(),
                    start_time: Some(start_time),
                    end_time: Some(end_time),
                    title: String::new(),
                },
                key,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    let status = live
        .create_session_clip(authed(
            pb::CreateSessionClipRequest {
                stream_id: "cam".into(),
                session_id: "s_nothere".into(),
                start_time: Some(from),
                end_time: Some(to),
                title: String::new(),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
}
