//! RTMP ingest through the real server: ffmpeg (`-f flv`) and GStreamer
//! (`flvmux ! rtmp2sink`) publishers whose streams get all four features
//! with both tracks; keys checked before media is kept; one publisher per
//! stream; and bad input (garbage handshakes, odd chunk sizes, unknown
//! messages, broken tags, clock jumps, a thousand half-open connections)
//! that costs only its own connection.

mod common;

use std::time::Duration;

use common::rtmp::*;
use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;

/// Thumbnails every 10 s, a 2 s motion clip every 10 s, recording, and
/// 30 s of replay.
fn all_features() -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: thumbnails_every_10s().thumbnail,
        motion_clip: Some(pb::MotionClipOptions {
            enabled: true,
            duration_seconds: 2,
            interval_seconds: 10,
            format: pb::ClipFormat::Mp4 as i32,
            width: 0,
        }),
        recording: recording_options(0).recording,
        replay: replay_options(30).replay,
    }
}

async fn stats(server: &Server, key: &str, id: &str) -> pb::IngestStats {
    get_stream(server, key, id)
        .await
        .unwrap()
        .ingest_stats
        .expect("ingest stats")
}

/// A thumbnail that decodes as a JPEG of `size` and is not blank.
fn assert_thumbnail(thumbnail: &pb::Thumbnail, size: (u32, u32)) {
    let image = image::load_from_memory_with_format(&thumbnail.data, image::ImageFormat::Jpeg)
        .expect("a JPEG that decodes");
    assert_eq!((image.width(), image.height()), size);
    assert!(spread(image.to_rgb8().as_raw()) > 20.0, "a blank thumbnail");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Publishes the 10 s test file with `publisher` (given the stream's
/// `rtmp_url`) to a stream with every feature, and checks each output as
/// the SRT streams are checked.
async fn all_four_features_work(
    name: &str,
    publisher: fn(&str, &std::path::Path) -> std::process::Child,
) {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(all_features()))
        .await
        .unwrap();
    let ingest = stream.ingest.clone().unwrap();
    assert_eq!(
        ingest.rtmp_url,
        format!("rtmp://{}/live/{}", server.rtmp, ingest.stream_key)
    );
    assert_eq!(
        format!("{}/{}", ingest.rtmp_server, ingest.rtmp_stream_key),
        ingest.rtmp_url
    );
    let mut watch = Watcher::start(&server, key, "cam").await;
    let child = publisher(&ingest.rtmp_url, test_ts());
    let live = watch.until_state(StreamState::Live, 20).await;
    assert!(live.message.contains("RTMP"), "{live:?}");

    // A thumbnail at the stream's size, not blank.
    let thumbnail = first_thumbnail(&server, key, "cam").await;
    assert_thumbnail(&thumbnail, (640, 360));

    // A motion clip with both tracks.
    let clip = first_motion_clip(&server, key, "cam").await;
    probe_av(&clip.data, "motion.mp4").assert_audio_and_video(
        &format!("{name} motion clip"),
        secs(&clip.duration),
        1.0,
    );

    // Replay: a clip of the last 3 s once 5 s are in, with both tracks.
    within(20, "5 s of replay", async {
        while stats(&server, key, "cam").await.video_frames < 150 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let replay_clip = create_clip(&server, key, "cam", 3, "rtmp").await;
    let data = download_clip(&server, key, &replay_clip.id).await;
    probe_av(&data, "clip.mp4").assert_audio_and_video(
        &format!("{name} replay clip"),
        secs(&replay_clip.duration),
        1.0,
    );

    let exit = within(40, "the publisher to finish", async {
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap()
    })
    .await;
    assert!(
        exit.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&exit.stderr)
    );
    let ended = watch.until_state(StreamState::Ended, 20).await;
    assert!(ended.message.contains("RTMP"), "{ended:?}");
    assert!(
        !watch.states().contains(&StreamState::Error),
        "{:?}",
        watch.seen
    );

    // Every frame sent went through, with the codecs and size sent.
    let stats = stats(&server, key, "cam").await;
    assert_eq!(
        (stats.video_codec.as_str(), stats.audio_codec.as_str()),
        ("H264", "AAC")
    );
    assert_eq!((stats.width, stats.height), (640, 360));
    assert_eq!(stats.video_frames, 300, "{stats:?}");
    assert_eq!(stats.video_keyframes, 10, "{stats:?}");
    assert!(
        (stats.audio_frames as f64 - 10.0 * SOURCE_AAC_FPS).abs() <= 3.0,
        "{stats:?}"
    );

    // The recording: both tracks, the session's length, every frame.
    let recordings = recordings_until(&server, key, "cam", complete(1)).await;
    let mut video_packets = 0;
    let mut total = 0.0;
    for recording in &recordings {
        let data = download_recording(&server, key, &recording.id, 0).await;
        let probe = probe_av(&data, "recording.mp4");
        probe.assert_audio_and_video(
            &format!("{name} recording {}", recording.id),
            secs(&recording.duration),
            1.0,
        );
        assert_eq!(probe.first_picture_type(), "I");
        video_packets += probe.video.as_ref().unwrap().packets;
        total += secs(&recording.duration);
    }
    assert!((total - 10.0).abs() <= 0.5, "recorded {total} s of 10 s");
    assert_eq!(video_packets, 300, "video frames recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ffmpeg_rtmp_publisher_gets_all_four_features() {
    all_four_features_work("ffmpeg", ffmpeg_rtmp_publish).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_rtmp2sink_publisher_gets_all_four_features() {
    all_four_features_work("rtmp2sink", gst_rtmp_publish).await;
}

/// A wrong key, another application and a second publisher are refused
/// with the reason, logged without the key; the first publisher goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_and_second_publishers_are_refused_with_the_reason() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let stream_key = stream.ingest.clone().unwrap().stream_key;

    let wrong_key = "sk_0123456789abcdef0123456789abcdef";
    let (mut refused, started) = RawRtmp::publish(server.rtmp, "live", wrong_key).await;
    assert!(!started);
    assert!(
        String::from_utf8_lossy(&refused.received).contains("unknown stream key"),
        "the publisher is told why"
    );
    assert!(refused.closed_within(5).await);
    let (mut other_app, started) = RawRtmp::publish(server.rtmp, "vod", &stream_key).await;
    assert!(!started);
    assert!(String::from_utf8_lossy(&other_app.received).contains("unknown application"));
    assert!(other_app.closed_within(5).await);

    let mut watch = Watcher::start(&server, key, "cam").await;
    let first = ffmpeg_rtmp_publish(&stream.ingest.clone().unwrap().rtmp_url, test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let (mut second, started) = RawRtmp::publish(server.rtmp, "live", &stream_key).await;
    assert!(!started);
    assert!(
        String::from_utf8_lossy(&second.received).contains("already has a publisher"),
        "{}",
        String::from_utf8_lossy(&second.received)
    );
    assert!(second.closed_within(5).await);
    let frames_then = stats(&server, key, "cam").await.video_frames;
    assert!(within(30, "ffmpeg", wait_child(first)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    assert!(!watch.states().contains(&StreamState::Error));
    let frames = stats(&server, key, "cam").await.video_frames;
    assert!(frames == 300 && frames > frames_then, "{frames}");

    let log = server.log();
    assert!(log.contains("RTMP publisher refused"), "{log}");
    assert!(log.contains("unknown stream key") && log.contains("unknown application"));
    assert!(!log.contains(wrong_key), "a key in the log");
    assert!(!log.contains(&stream_key), "a key in the log");
}

/// Garbage handshakes, messages past the limits, and broken chunk streams
/// close their own connection with a log line; a stream publishing at
/// the same time loses no frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_garbage_closes_only_its_own_connection() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(replay_options(30)))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let good = ffmpeg_rtmp_publish(&stream.ingest.clone().unwrap().rtmp_url, test_ts());
    watch.until_state(StreamState::Live, 20).await;

    // An HTTP request, and a TLS client hello.
    for (bytes, logged) in [
        (
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            "not an RTMP client",
        ),
        (&[0x16, 0x03, 0x01, 0x02, 0x00][..], "not an RTMP client"),
        (&[6u8; 1537][..], "RTMPE"),
    ] {
        let mut client = RawRtmp::connect(server.rtmp).await;
        use tokio::io::AsyncWriteExt;
        client.io.write_all(bytes).await.unwrap();
        assert!(client.closed_within(5).await, "{logged}");
        assert!(server.log().contains(logged), "{logged}");
    }
    // A 16 MB message announced before publishing.
    let mut client = RawRtmp::connect(server.rtmp).await;
    client.handshake().await;
    use tokio::io::AsyncWriteExt;
    client
        .io
        .write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0, 1, 2, 3])
        .await
        .unwrap();
    assert!(client.closed_within(5).await);
    // A chunk stream that starts without its header.
    let mut client = RawRtmp::connect(server.rtmp).await;
    client.handshake().await;
    client.io.write_all(&[0xc0 | 9, 1, 2, 3]).await.unwrap();
    assert!(client.closed_within(5).await);
    // A chunk size of 0.
    let mut client = RawRtmp::connect(server.rtmp).await;
    client.handshake().await;
    client.send(2, 1, 0, 0, &0u32.to_be_bytes()).await;
    assert!(client.closed_within(5).await);
    // A connection that never gets to publish is closed after 10 s.
    let mut idle = RawRtmp::connect(server.rtmp).await;
    idle.handshake().await;
    assert!(idle.closed_within(15).await);

    let log = server.log();
    for reason in [
        "a message of 16777215 bytes",
        "starts without a message header",
        "a chunk size of 0",
        "no publish in time",
    ] {
        assert!(
            log.contains(reason),
            "no log line with {reason:?}: {}",
            log.lines()
                .filter(|l| l.contains("RTMP"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(within(30, "ffmpeg", wait_child(good)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    assert!(!watch.states().contains(&StreamState::Error));
    assert_eq!(stats(&server, key, "cam").await.video_frames, 300);
}

/// A publisher of our own sends the test file's tags with 1-byte chunks,
/// then a huge chunk size, with unknown messages, truncated tags, and a
/// clock that jumps forward and back: the stream still goes live, drops
/// only the broken tags, follows the jumps (a new recording file each),
/// and every output has both tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_chunks_unknown_messages_broken_tags_and_clock_jumps_cost_only_themselves() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let processing = pb::ProcessingOptions {
        recording: recording_options(0).recording,
        ..all_features()
    };
    let stream = create_stream(&server, key, "cam", Some(processing))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let tags = flv_tags(test_ts());
    // Video frames (not the sequence header).
    let video_frames = tags
        .iter()
        .filter(|t| t.kind == 9 && t.body[1] == 1)
        .count();
    let stream_key = stream.ingest.clone().unwrap().stream_key;
    let (mut client, started) = RawRtmp::publish(server.rtmp, "live", &stream_key).await;
    assert!(started, "{}", String::from_utf8_lossy(&client.received));

    let (first, rest) = tags.split_at(tags.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    // 1-byte chunks, with a message of an unknown type.
    client.set_chunk_size(1).await;
    client.send_tags(first).await;
    client.send(7, 99, 1, 0, &[1, 2, 3]).await;
    // Huge chunks; a video tag cut short (a NAL unit longer than its tag),
    // and a tag too short for its header.
    client.set_chunk_size(0x7fff_ffff).await;
    let broken = second
        .iter()
        .position(|t| t.kind == 9 && t.body[0] >> 4 == 2)
        .unwrap();
    let mut cut = second[broken].clone();
    cut.body.truncate(12);
    client.send_tags(&second[..broken]).await;
    client.send_tags(&[cut]).await;
    client
        .send(6, 9, 1, second[broken].timestamp, &[0x27])
        .await;
    client.send_tags(&second[broken + 1..]).await;
    // The clock jumps an hour ahead, then back to where it was.
    let jumped: Vec<FlvTag> = third
        .iter()
        .take(third.len() / 2)
        .map(|t| FlvTag {
            timestamp: t.timestamp + 3_600_000,
            ..t.clone()
        })
        .collect();
    client.send_tags(&jumped).await;
    client.send_tags(&third[third.len() / 2..]).await;
    client.unpublish().await;
    watch.until_state(StreamState::Ended, 30).await;

    let stats = stats(&server, key, "cam").await;
    assert_eq!(
        stats.video_frames as usize,
        video_frames - 1,
        "all but the cut frame: {stats:?}"
    );
    let log = server.log();
    for line in [
        "dropping a malformed FLV tag",
        "ignoring RTMP messages of this type",
        "clock jumped",
    ] {
        assert!(log.contains(line), "no log line with {line:?}");
    }
    let recordings = recordings_until(&server, key, "cam", complete(2)).await;
    for recording in &recordings {
        let data = download_recording(&server, key, &recording.id, 0).await;
        let probe = probe_av(&data, "recording.mp4");
        assert!(probe.video.is_some() && probe.audio.is_some(), "{probe:?}");
    }
}

/// 1,000 connections that never finish their handshake hold little
/// memory, are closed after the setup timeout, and do not keep a
/// publisher out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_open_connections_cost_little_and_block_no_one() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let before = rss_kib(server.pid());
    let mut half_open = Vec::new();
    for i in 0..1000 {
        let mut client = RawRtmp::connect(server.rtmp).await;
        use tokio::io::AsyncWriteExt;
        // Some send nothing, some half a handshake.
        if i % 2 == 0 {
            client.io.write_all(&[3; 700]).await.unwrap();
        }
        half_open.push(client);
    }
    let mut watch = Watcher::start(&server, key, "cam").await;
    let publisher = ffmpeg_rtmp_publish(&stream.ingest.clone().unwrap().rtmp_url, test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let held = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        held < 64 * 1024,
        "1,000 half-open connections hold {held} KiB"
    );
    // Every one is closed by the server after its setup timeout.
    let mut closed = 0;
    for client in &mut half_open {
        if client.closed_within(15).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000);
    assert!(within(30, "ffmpeg", wait_child(publisher)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    assert_eq!(stats(&server, key, "cam").await.video_frames, 300);
    eprintln!("1,000 half-open RTMP connections: {held} KiB of server RSS");
}

/// A publisher that sends a file as fast as it can is held to real time
/// by TCP backpressure (nothing skipped, no error), and a real-time
/// publisher beside it loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bursting_rtmp_publisher_is_paced_and_delays_no_other_stream() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let steady = create_stream(&server, key, "steady", Some(all_features()))
        .await
        .unwrap();
    let burst = create_stream(&server, key, "burst", Some(all_features()))
        .await
        .unwrap();
    let mut watch_steady = Watcher::start(&server, key, "steady").await;
    let mut watch_burst = Watcher::start(&server, key, "burst").await;
    let steady_publisher = ffmpeg_rtmp_publish(&steady.ingest.unwrap().rtmp_url, test_ts());
    watch_steady.until_state(StreamState::Live, 20).await;
    let started = std::time::Instant::now();
    let burster = ffmpeg_rtmp_publish_fast(&burst.ingest.unwrap().rtmp_url, test_ts());
    // ffmpeg itself may be done at once (the socket buffers take a 10 s
    // file); the session takes the media at real-time pace from them.
    assert!(within(40, "the burst", wait_child(burster)).await.success());
    watch_burst.until_state(StreamState::Ended, 30).await;
    let took = started.elapsed();
    // 10 s of media: held to about real time (the last second may go at
    // once, within the pacing lead).
    assert!(
        took >= Duration::from_secs(8),
        "the burst took only {took:?}"
    );
    assert!(!watch_burst.states().contains(&StreamState::Error));
    assert_eq!(stats(&server, key, "burst").await.video_frames, 300);
    assert!(
        within(40, "the steady publisher", wait_child(steady_publisher))
            .await
            .success()
    );
    watch_steady.until_state(StreamState::Ended, 20).await;
    assert_eq!(stats(&server, key, "steady").await.video_frames, 300);
}

/// H.265 over Enhanced RTMP (`hvc1`), sent by our raw client since
/// Debian's ffmpeg cannot: the stream goes live as H.265, every picture
/// arrives, the thumbnail decodes, and the recording has both tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_over_enhanced_rtmp_gets_its_features() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let processing = pb::ProcessingOptions {
        thumbnail: thumbnails_every_10s().thumbnail,
        recording: recording_options(0).recording,
        ..Default::default()
    };
    let stream = create_stream(&server, key, "cam", Some(processing))
        .await
        .unwrap();
    let tags = enhanced_hevc_tags(test_hevc_ts_without_b_frames());
    let pictures = tags.iter().filter(|t| t.kind == 9).count() - 1;
    let mut watch = Watcher::start(&server, key, "cam").await;
    let (mut client, started) =
        RawRtmp::publish(server.rtmp, "live", &stream.ingest.unwrap().stream_key).await;
    assert!(started);
    client.set_chunk_size(4096).await;
    client.send_tags(&tags).await;
    watch.until_state(StreamState::Live, 20).await;
    let thumbnail = first_thumbnail(&server, key, "cam").await;
    assert_thumbnail(&thumbnail, (640, 360));
    client.unpublish().await;
    watch.until_state(StreamState::Ended, 30).await;
    let stats = stats(&server, key, "cam").await;
    assert_eq!(stats.video_codec, "H265");
    assert_eq!(stats.video_frames as usize, pictures, "{stats:?}");
    let recordings = recordings_until(&server, key, "cam", complete(1)).await;
    let data = download_recording(&server, key, &recordings[0].id, 0).await;
    let probe = probe_av(&data, "recording.mp4");
    probe.assert_audio_and_video("H.265 recording", secs(&recordings[0].duration), 1.0);
    assert_eq!(probe.video.as_ref().unwrap().codec, "hevc");
}

/// A new sequence header mid-session (the encoder's output size changed
/// live) is followed as an SRT track change is: a new recording file at
/// the new size, each file playing with both tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sequence_header_mid_session_starts_a_new_file() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    ts_part(dir.path(), "a.ts", "640x360", 4, 1);
    ts_part(dir.path(), "b.ts", "320x180", 4, 1);
    let mut tags = flv_tags(&dir.path().join("a.ts"));
    let next = tags.iter().map(|t| t.timestamp).max().unwrap() + 33;
    tags.extend(
        flv_tags(&dir.path().join("b.ts"))
            .into_iter()
            .filter(|t| t.kind != 18)
            .map(|t| FlvTag {
                timestamp: t.timestamp + next,
                ..t
            }),
    );
    let mut watch = Watcher::start(&server, key, "cam").await;
    let (mut client, started) =
        RawRtmp::publish(server.rtmp, "live", &stream.ingest.unwrap().stream_key).await;
    assert!(started);
    client.set_chunk_size(4096).await;
    client.send_tags(&tags).await;
    client.unpublish().await;
    watch.until_state(StreamState::Ended, 30).await;
    let recordings = recordings_until(&server, key, "cam", complete(2)).await;
    assert_recordings_at_sizes(&server, key, &recordings, &[(640, 360), (320, 180)]).await;
}
