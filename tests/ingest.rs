//! Ingest through the real paths into the real server: ffmpeg over SRT and
//! gRPC PushMedia at the same time, one publisher per stream, garbage that
//! only hurts its own stream, and URI pull.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_and_grpc_push_go_live_together_and_end() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let via_srt = create_stream(&server, key, "via-srt", None).await.unwrap();
    let via_push = create_stream(&server, key, "via-push", None).await.unwrap();
    let mut watch_srt = Watcher::start(&server, key, "via-srt").await;
    let mut watch_push = Watcher::start(&server, key, "via-push").await;

    let media = std::fs::read(test_ts()).unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&via_srt), test_ts());
    let push = Push::open(&server, &via_push, Some(key)).await;
    assert!(push.send(&media).await);

    watch_srt.until_state(StreamState::Live, 20).await;
    watch_push.until_state(StreamState::Live, 20).await;

    // Both are LIVE at once, and each refuses a second publisher.
    let live = server.live().await;
    for id in ["via-srt", "via-push"] {
        let stream = live
            .clone()
            .get_stream(authed(
                pb::GetStreamRequest {
                    stream_id: id.into(),
                },
                key,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stream.state(), StreamState::Live, "{id}");
    }
    let second = Push::open(&server, &via_srt, None).await;
    let status = second.finish().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "PUBLISHER_ACTIVE"
    );

    let answer = within(20, "push to finish", push.finish()).await.unwrap();
    assert_eq!(answer.bytes_received, media.len() as u64);
    let ended = watch_push.until_state(StreamState::Ended, 20).await;
    assert!(ended.message.contains("PushMedia"), "{ended:?}");
    // Every frame of the 10 s file (30 fps, GOP 1 s) went through demux
    // and parse, with the codecs and picture size the encoder used.
    let stats = get_stats(&server, key, "via-push").await;
    assert_eq!(stats.video_codec, "H264");
    assert_eq!(stats.audio_codec, "AAC");
    assert_eq!((stats.width, stats.height), (640, 360));
    assert_eq!(stats.video_frames, 300);
    assert_eq!(stats.video_keyframes, 10);
    assert!(stats.audio_frames >= 460, "{stats:?}"); // 10 s of 1024-sample frames at 48 kHz
    assert_eq!(stats.bytes_received, media.len() as u64);

    let exit = within(30, "ffmpeg to finish", wait_child(ffmpeg)).await;
    assert!(exit.success(), "ffmpeg {exit:?}");
    watch_srt.until_state(StreamState::Ended, 20).await;
    assert!(
        !watch_srt.states().contains(&StreamState::Error),
        "{:?}",
        watch_srt.seen
    );
    // Event sequence numbers have no gaps.
    let seqs: Vec<u64> = watch_srt.seen.iter().map(|e| e.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_fails_only_its_own_stream() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let good = create_stream(&server, key, "good", None).await.unwrap();
    let bad = create_stream(&server, key, "bad", None).await.unwrap();
    let mut watch_good = Watcher::start(&server, key, "good").await;
    let mut watch_bad = Watcher::start(&server, key, "bad").await;

    let ffmpeg = srt_publish(&server.srt_url(&good), test_ts());
    watch_good.until_state(StreamState::Live, 20).await;

    // Deterministic pseudo-random bytes: not MPEG-TS.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let garbage: Vec<u8> = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let push = Push::open(&server, &bad, None).await;
    push.send(&garbage).await;
    let status = within(20, "garbage push to be refused", push.outcome())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("not MPEG-TS"), "{status:?}");
    let error = watch_bad.until_state(StreamState::Error, 20).await;
    assert!(error.message.contains("not MPEG-TS"), "{error:?}");

    // The good stream kept running and ends normally.
    assert!(within(30, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch_good.until_state(StreamState::Ended, 20).await;
    assert!(
        !watch_good.states().contains(&StreamState::Error),
        "{:?}",
        watch_good.seen
    );

    // The failed stream takes a good publisher again.
    let media = std::fs::read(test_ts()).unwrap();
    let again = Push::open(&server, &bad, None).await;
    assert!(again.send(&media).await);
    watch_bad.until_state(StreamState::Live, 20).await;
    again.finish().await.unwrap();
    watch_bad.until_state(StreamState::Ended, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_of_packets_that_only_look_like_mpeg_ts_ends_with_an_error() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    // 2 MB of 188-byte packets with the sync byte, random otherwise.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut fake = vec![];
    for _ in 0..(2_000_000 / 188) {
        fake.push(0x47);
        fake.extend((1..188).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
    }
    let push = Push::open(&server, &stream, None).await;
    assert!(push.send(&fake).await);
    let status = within(30, "the push's answer", push.finish())
        .await
        .expect_err("media that was refused must not be answered OK");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("no supported media"),
        "{status:?}"
    );
    let error = watch.until_state(StreamState::Error, 20).await;
    assert!(error.message.contains("no supported media"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_stream_is_told_recording_and_replay_need_video() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let processing = pb::ProcessingOptions {
        replay: replay_options(60).replay,
        ..recording_options(0)
    };
    let stream = create_stream(&server, key, "radio", Some(processing))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "radio").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), audio_only_ts());
    let mut told = vec![];
    for _ in 0..2 {
        let event = watch
            .until_kind(pb::stream_event::Kind::FeatureError, 30)
            .await;
        told.push(event.message);
    }
    told.sort();
    assert!(told[0].starts_with("recording needs video"), "{told:?}");
    assert!(told[1].starts_with("replay needs video"), "{told:?}");
    assert!(within(30, "ffmpeg", wait_child(ffmpeg)).await.success());
    let stats = get_stats(&server, key, "radio").await;
    assert_eq!(stats.audio_codec, "AAC");
    assert_eq!(stats.video_frames, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_pushed_at_once_is_paced_and_nothing_is_skipped() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let processing = pb::ProcessingOptions {
        replay: replay_options(60).replay,
        ..recording_options(0)
    };
    let stream = create_stream(&server, key, "cam", Some(processing))
        .await
        .unwrap();
    // 10 s of media sent as fast as the connection takes it.
    let started = std::time::Instant::now();
    let response = push_file(&server, &stream, test_ts()).await;
    let took = started.elapsed();
    assert!(response.bytes_received > 0);
    assert!(
        took >= std::time::Duration::from_secs(8),
        "10 s of media were taken in {took:?}"
    );
    let stats = get_stats(&server, key, "cam").await;
    assert_eq!(stats.video_frames, 300, "{stats:?}");
    let window = get_stream(&server, key, "cam")
        .await
        .unwrap()
        .replay_window
        .unwrap();
    assert_eq!(window.gops, 10, "{window:?}");
    assert!(
        !server.log().contains("fell behind"),
        "a feature skipped media"
    );
}

/// Audio alone is paced as video is (a probe of the server found 20 s of
/// AAC taken in 0.9 s), and nothing "falls behind".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only_pushed_at_once_is_paced() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "radio", Some(thumbnails_every_10s()))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = push_file(&server, &stream, audio_only_ts()).await;
    let took = started.elapsed();
    assert!(response.bytes_received > 0);
    assert!(
        took >= std::time::Duration::from_secs(8),
        "10 s of audio were taken in {took:?}: {}",
        server.log()
    );
    let log = server.log();
    assert!(!log.contains("fell behind"), "misleading warnings: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srt_caller_far_ahead_of_real_time_is_refused() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(1)))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let ffmpeg = srt_publish_fast(&server.srt_url(&stream), test_ts_25s());
    let error = watch.until_state(StreamState::Error, 30).await;
    assert!(error.message.contains("faster than real time"), "{error:?}");
    let _ = within(30, "ffmpeg", wait_child(ffmpeg)).await;
    // What came before the refusal is recorded in whole segments, never a
    // pile of tiny files.
    let recordings = list_recordings(&server, key, "cam").await;
    assert!(
        !recordings.is_empty() && recordings.len() <= 25,
        "{} recordings",
        recordings.len()
    );
    let mut durations: Vec<f64> = recordings.iter().map(|r| secs(&r.duration)).collect();
    durations.sort_by(f64::total_cmp);
    // Sorted: all but the shortest (the last, cut by the refusal) are
    // whole 1 s segments.
    assert!(durations.iter().skip(1).all(|&d| d >= 0.9), "{durations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srt_caller_that_hangs_up_at_once_ends_its_session() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    // Sends everything into its buffer and closes without waiting.
    let url = server.srt_url(&stream);
    let ffmpeg = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "quiet", "-i"])
        .arg(test_ts())
        .args(["-c", "copy", "-f", "mpegts", &url])
        .spawn()
        .unwrap();
    let _ = within(30, "ffmpeg", wait_child(ffmpeg)).await;
    within(30, "the session to end", async {
        loop {
            let event = watch.next().await;
            if matches!(event.state(), StreamState::Ended | StreamState::Error) {
                return;
            }
        }
    })
    .await;
    // The stream takes a publisher again.
    push_file(&server, &stream, test_ts()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_caller_with_wrong_key_is_rejected() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let mut stream = create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    stream.ingest.as_mut().unwrap().stream_key = "sk_wrong".into();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    let exit = within(30, "ffmpeg to give up", wait_child(ffmpeg)).await;
    assert!(!exit.success(), "ffmpeg should be refused");
    let now = server
        .live()
        .await
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            &org.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.state(), StreamState::Idle);
}

/// A caller that encrypts (ffmpeg's `passphrase=`) to a stream that takes
/// no passphrase is refused with SRT's reason, and the SRT listener goes
/// on serving: srt-protocol's handshake used to panic on it, which ended
/// the receive thread of every publisher on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypting_srt_caller_is_refused_and_the_listener_goes_on() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    let encrypted = format!(
        "{}&passphrase=0123456789abcdef&pbkeylen=16",
        server.srt_url(&stream)
    );
    let refused = srt_publish(&encrypted, test_ts());
    let exit = within(
        30,
        "the encrypting caller to be refused",
        wait_child(refused),
    )
    .await;
    assert!(!exit.success(), "an encrypting caller was taken");
    let said = server
        .until_log(&["SRT caller rejected", "the caller encrypts"], 5)
        .await;
    assert!(
        !said.contains("0123456789abcdef"),
        "the passphrase was logged: {said}"
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    // The same port still takes a plain publisher.
    let mut watch = Watcher::start(&server, &org.api_key, "cam").await;
    let publisher = srt_publish(&server.srt_url(&stream), test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let _ = within(30, "the publisher to end", wait_child(publisher)).await;
}

/// `CreateStream` of a stream whose SRT publishers must encrypt.
async fn create_encrypted_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    passphrase: &str,
    key_length: u32,
    source_uri: &str,
) -> Result<pb::Stream, tonic::Status> {
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: stream_id.into(),
                source_uri: source_uri.into(),
                srt_encryption: Some(pb::SrtEncryption {
                    passphrase: passphrase.into(),
                    key_length,
                }),
                ..Default::default()
            },
            api_key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Streams that require SRT's AES encryption take callers with their
/// passphrase at AES-128, -192 and -256 (the media decrypted: every frame
/// counted), and refuse, each with its reason and before any session
/// starts, a caller without a passphrase, a wrong passphrase and a key
/// shorter than the stream requires. No passphrase reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_srt_streams_take_their_passphrase_and_refuse_the_rest() {
    const FIXED: &str = "correct-horse-battery-staple";
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = &org.api_key;
    // The server makes a passphrase when none is given; the URL carries
    // it, and the key length when one is required.
    let aes128 = create_encrypted_stream(&server, key, "aes128", "", 16, "")
        .await
        .unwrap();
    let any = create_encrypted_stream(&server, key, "any", "", 0, "")
        .await
        .unwrap();
    let aes256 = create_encrypted_stream(&server, key, "aes256", FIXED, 32, "")
        .await
        .unwrap();
    let ingest = |stream: &pb::Stream| stream.ingest.clone().unwrap();
    let made = ingest(&any).srt_encryption.unwrap().passphrase;
    assert_eq!(made.len(), 32, "a made passphrase: {made}");
    assert_ne!(made, ingest(&aes128).srt_encryption.unwrap().passphrase);
    assert!(ingest(&any)
        .srt_url
        .ends_with(&format!("&passphrase={made}")));
    assert!(ingest(&aes128).srt_url.ends_with("&pbkeylen=16"));
    assert!(
        ingest(&aes256)
            .srt_url
            .ends_with("&passphrase=correct-horse-battery-staple&pbkeylen=32"),
        "{}",
        ingest(&aes256).srt_url
    );
    let got = get_stream(&server, key, "aes256").await.unwrap();
    assert_eq!(ingest(&got).srt_encryption, ingest(&aes256).srt_encryption);

    // Refused: no passphrase, a wrong one, a key too short.
    let plain = srt_publish(&server.srt_url(&any), test_ts());
    let wrong = srt_publish(
        &format!("{}&passphrase=not-the-passphrase", server.srt_url(&aes128)),
        test_ts(),
    );
    let short = srt_publish(
        &format!(
            "{}&passphrase=correct-horse-battery-staple&pbkeylen=16",
            server.srt_url(&aes256)
        ),
        test_ts(),
    );
    for (refused, what) in [(plain, "plain"), (wrong, "wrong"), (short, "short")] {
        let exit = within(30, "a caller to be refused", wait_child(refused)).await;
        assert!(!exit.success(), "the {what} caller was taken");
    }
    for why in [
        "the caller has no passphrase",
        "wrong SRT passphrase",
        "the caller encrypts with a 16-byte key, the stream requires 32",
    ] {
        server.until_log(&["SRT caller rejected", why], 5).await;
    }
    for id in ["aes128", "any", "aes256"] {
        let stream = get_stream(&server, key, id).await.unwrap();
        assert_eq!(
            stream.state(),
            StreamState::Idle,
            "{id}: no session started"
        );
    }

    // Taken: AES-128, -192 (the caller's choice) and -256, at once.
    let mut watchers = Vec::new();
    for id in ["aes128", "any", "aes256"] {
        watchers.push(Watcher::start(&server, key, id).await);
    }
    let publishers = [
        srt_publish(&ingest(&aes128).srt_url, test_ts()),
        srt_publish(&format!("{}&pbkeylen=24", ingest(&any).srt_url), test_ts()),
        srt_publish(&ingest(&aes256).srt_url, test_ts()),
    ];
    for publisher in publishers {
        let exit = within(40, "an encrypted publisher", wait_child(publisher)).await;
        assert!(exit.success(), "an encrypted publisher failed");
    }
    for (watch, id) in watchers.iter_mut().zip(["aes128", "any", "aes256"]) {
        watch.until_state(StreamState::Ended, 20).await;
        assert_eq!(
            watch.states(),
            [StreamState::Idle, StreamState::Live, StreamState::Ended],
            "{id}: {:?}",
            watch.seen
        );
        let stats = get_stats(&server, key, id).await;
        assert_eq!(stats.video_frames, 300, "{id}: {stats:?}");
        assert_eq!(stats.audio_codec, "AAC", "{id}: {stats:?}");
    }
    let log = server.log();
    for secret in [FIXED, made.as_str(), "not-the-passphrase"] {
        assert!(!log.contains(secret), "a passphrase was logged: {secret}");
    }
}

/// Out-of-range SRT encryption is `INVALID_ARGUMENT` naming each field;
/// a pulled stream takes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_encryption_out_of_range_names_its_fields() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let status = create_encrypted_stream(
        &server,
        &org.api_key,
        "cam",
        "spaces are not url-safe",
        20,
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        ["srt_encryption.passphrase", "srt_encryption.key_length"]
    );
    let status = create_encrypted_stream(&server, &org.api_key, "pulled", "", 0, "test://pattern")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("srt_encryption"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_srt_publisher_is_rejected_and_the_first_goes_on() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, &org.api_key, "cam").await;
    let first = srt_publish(&server.srt_url(&stream), test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let frames_then = get_stats(&server, &org.api_key, "cam").await.video_frames;

    let second = srt_publish(&server.srt_url(&stream), test_ts());
    let exit = within(30, "the second publisher to be refused", wait_child(second)).await;
    assert!(!exit.success(), "a second publisher was accepted");

    // The first one publishes to its end, undisturbed.
    assert!(within(40, "ffmpeg", wait_child(first)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    let stats = get_stats(&server, &org.api_key, "cam").await;
    assert!(stats.video_frames > frames_then);
    assert_eq!(stats.video_frames, 300, "{stats:?}");
    assert_eq!(
        watch.states(),
        [StreamState::Idle, StreamState::Live, StreamState::Ended],
        "{:?}",
        watch.seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_with_wrong_stream_key_is_unauthenticated() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let mut stream = create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    stream.ingest.as_mut().unwrap().stream_key = "sk_wrong".into();
    let status = Push::open(&server, &stream, None)
        .await
        .finish()
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_retries_until_the_source_exists_then_plays_it() {
    // The operator allows file sources from one folder.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .flags(&["--pull-allow-file-dir", dir.path().to_str().unwrap()])
        .start();
    let org = server.create_org("acme", true).await;
    let target = dir.path().join("late.ts");
    let uri = format!("file://{}", target.display());
    let stream = server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: "pulled".into(),
                name: "pulled file".into(),
                processing: None,
                source_uri: uri.clone(),
                srt_encryption: None,
            },
            &org.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.source_uri, uri);
    let mut watch = Watcher::start(&server, &org.api_key, "pulled").await;

    // The source is missing: the stream reports the error and retries.
    let error = watch.until_state(StreamState::Error, 20).await;
    assert!(!error.message.is_empty(), "{error:?}");

    // The file appears (atomically): the next retry plays it to the end.
    let partial = dir.path().join("late.ts.part");
    std::fs::copy(test_ts(), &partial).unwrap();
    std::fs::rename(&partial, &target).unwrap();
    watch.until_state(StreamState::Live, 30).await;
    let ended = watch.until_state(StreamState::Ended, 30).await;
    assert!(ended.message.contains("ended"), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_pattern_source_goes_live_and_stops_on_delete() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let mut live = server.live().await;
    live.create_stream(authed(
        pb::CreateStreamRequest {
            stream_id: "pattern".into(),
            name: "test pattern".into(),
            processing: None,
            source_uri: "test://pattern".into(),
            srt_encryption: None,
        },
        &org.api_key,
    ))
    .await
    .unwrap();
    let mut watch = Watcher::start(&server, &org.api_key, "pattern").await;
    watch.until_state(StreamState::Live, 30).await;
    live.delete_stream(authed(
        pb::DeleteStreamRequest {
            stream_id: "pattern".into(),
        },
        &org.api_key,
    ))
    .await
    .unwrap();
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "pattern".into(),
            },
            &org.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_over_srt_goes_live() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "hevc", None)
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, &org.api_key, "hevc").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_hevc_ts());
    watch.until_state(StreamState::Live, 20).await;
    assert!(within(30, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    assert!(
        !watch.states().contains(&StreamState::Error),
        "{:?}",
        watch.seen
    );
    let stats = get_stats(&server, &org.api_key, "hevc").await;
    assert_eq!(stats.video_codec, "H265");
    assert_eq!((stats.width, stats.height), (640, 360));
    assert!(stats.video_frames >= 145, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_mid_stream_still_yields_video() {
    // A publisher that (re)connects mid-stream: the first bytes are the
    // middle of a GOP. The parser must resync at the next keyframe.
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "late", None)
        .await
        .unwrap();
    let media = std::fs::read(test_ts()).unwrap();
    let offset = (media.len() / 3) / 188 * 188 + 188 * 5;
    let push = Push::open(&server, &stream, None).await;
    assert!(push.send(&media[offset..]).await);
    push.finish().await.unwrap();
    let stats = get_stats(&server, &org.api_key, "late").await;
    assert_eq!(stats.video_codec, "H264");
    assert!(stats.video_keyframes >= 5, "{stats:?}");
    assert!(stats.video_frames >= 180, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpeg_ts_without_supported_codecs_is_an_error() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "mpeg2", None)
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, &org.api_key, "mpeg2").await;
    let push = Push::open(&server, &stream, None).await;
    push.send(&std::fs::read(unsupported_ts()).unwrap()).await;
    // The call stays open: the server must end it by itself.
    let error = watch.until_state(StreamState::Error, 30).await;
    assert!(error.message.contains("no supported media"), "{error:?}");
    let status = within(10, "push to be ended", push.outcome())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        !watch.states().contains(&StreamState::Live),
        "{:?}",
        watch.seen
    );
}

async fn get_stats(server: &Server, key: &str, id: &str) -> pb::IngestStats {
    get_stream(server, key, id)
        .await
        .unwrap()
        .ingest_stats
        .expect("ingest stats after a session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracks_added_mid_stream_are_followed() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 3 s of video alone, then video and audio (a microphone comes on).
    let mut media = video_ts_part(dir.path(), "v.ts", "320x180", 3, 1);
    media.extend(ts_part(dir.path(), "av.ts", "320x180", 3, 4));
    push_media(&server, &stream, &media).await;
    let stats = get_stats(&server, key, "cam").await;
    assert_eq!(stats.video_frames, 180, "{stats:?}");
    assert!(stats.audio_frames >= 130, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codec_switch_and_audio_removed_are_followed_and_recorded() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let part = |name: &str, offset: u32, args: &[&str]| {
        let path = dir.path().join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "3", "-g", "30", "-pix_fmt", "yuv420p"])
            .args(args)
            .args(["-x265-params", "log-level=error"])
            .args(["-output_ts_offset", &offset.to_string(), "-f", "mpegts"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(path).unwrap()
    };
    // H.264 + AAC, then H.265 + AAC, then H.264 without audio.
    let mut media = part(
        "a.ts",
        1,
        &["-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"],
    );
    media.extend(part(
        "b.ts",
        4,
        &["-c:v", "libx265", "-preset", "ultrafast", "-c:a", "aac"],
    ));
    media.extend(part(
        "c.ts",
        7,
        &["-c:v", "libx264", "-preset", "veryfast", "-an"],
    ));
    push_media(&server, &stream, &media).await;
    let stats = get_stats(&server, key, "cam").await;
    assert_eq!(stats.video_frames, 270, "{stats:?}");
    assert_eq!(stats.video_codec, "H264", "{stats:?}");

    // A file per format, each playing as what it holds.
    let recordings = within(30, "three recordings", async {
        loop {
            let listed = list_recordings(&server, key, "cam").await;
            if listed.len() == 3
                && listed
                    .iter()
                    .all(|r| r.state() == pb::RecordingState::Complete)
            {
                return listed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    for (recording, codec) in recordings.iter().zip(["h264", "hevc", "h264"]) {
        let data = download_recording(&server, key, &recording.id, 0).await;
        let probe = probe_av(&data, "part.mp4");
        let video = probe.video.as_ref().expect("video");
        assert_eq!(video.codec, codec, "{probe:?}");
        assert!((85..=92).contains(&video.packets), "{probe:?}");
        assert!(probe.decode_errors().trim().is_empty(), "{probe:?}");
    }
}
