//! One organization never sees another's media: with organization b's key,
//! every id of organization a (recordings, replay clips) and every
//! per-stream call on a's stream (thumbnails, replay, clips, push) answers
//! NOT_FOUND, exactly as a missing one does, and leaves a's media as it
//! was. Nor can it make the server read local files or reach internal
//! addresses through a pulled `source_uri`.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use tonic::Code;

fn everything() -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: 10,
            ..Default::default()
        }),
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: 0,
            entire_stream: true,
        }),
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: 60,
            entire_stream: false,
        }),
        ..Default::default()
    }
}

/// The status of a call that streams its answer: the call's own error,
/// or the first message's.
async fn first_error<T>(
    call: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> tonic::Status {
    match call {
        Err(status) => status,
        Ok(response) => match response.into_inner().message().await {
            Err(status) => status,
            Ok(_) => panic!("a message instead of an error"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_media_is_not_found() {
    let server = Server::start();
    let a = server.create_org("a", true).await;
    let b = server.create_org("b", true).await;
    let stream = create_stream(&server, &a.api_key, "cam", Some(everything()))
        .await
        .unwrap();
    let mut live = server.live().await;

    // a publishes 10 s and keeps 3 s of it as a clip.
    let mut watch = Watcher::start(&server, &a.api_key, "cam").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    let mut thumbnails = live
        .subscribe_thumbnails(authed(
            pb::SubscribeThumbnailsRequest {
                stream_id: "cam".into(),
                send_latest: true,
            },
            &a.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    within(30, "a's first thumbnail", thumbnails.message())
        .await
        .unwrap()
        .expect("a thumbnail");
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(pb::StreamState::Ended, 20).await;
    let clip = live
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: "cam".into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(3)),
                duration_seconds: 3,
                title: String::new(),
                end_time: None,
            },
            &a.api_key,
        ))
        .await
        .expect("a's clip")
        .into_inner();
    let recording = within(30, "a's recording", async {
        loop {
            let listed = list_recordings(&server, &a.api_key, "cam").await;
            if let Some(r) = listed
                .into_iter()
                .find(|r| r.state() == pb::RecordingState::Complete)
            {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;

    // b asks for all of it, by a's ids and a's stream id.
    let key = b.api_key.as_str();
    let rec = || recording.id.clone();
    let cam = || "cam".to_string();
    let statuses = vec![
        (
            "GetRecording",
            live.get_recording(authed(
                pb::GetRecordingRequest {
                    recording_id: rec(),
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "DownloadRecording",
            first_error(
                live.download_recording(authed(
                    pb::DownloadRecordingRequest {
                        recording_id: rec(),
                        offset: 0,
                    },
                    key,
                ))
                .await,
            )
            .await,
        ),
        (
            "DeleteRecording",
            live.delete_recording(authed(
                pb::DeleteRecordingRequest {
                    recording_id: rec(),
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "ListRecordings",
            live.list_recordings(authed(
                pb::ListRecordingsRequest {
                    stream_id: cam(),
                    ..Default::default()
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "GetReplayClip",
            live.get_replay_clip(authed(
                pb::GetReplayClipRequest {
                    clip_id: clip.id.clone(),
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "DownloadReplayClip",
            first_error(
                live.download_replay_clip(authed(
                    pb::DownloadReplayClipRequest {
                        clip_id: clip.id.clone(),
                        offset: 0,
                    },
                    key,
                ))
                .await,
            )
            .await,
        ),
        (
            "DeleteReplayClip",
            live.delete_replay_clip(authed(
                pb::DeleteReplayClipRequest {
                    clip_id: clip.id.clone(),
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "GetThumbnail",
            live.get_thumbnail(authed(
                pb::GetThumbnailRequest {
                    stream_id: cam(),
                    at: None,
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        (
            "SubscribeThumbnails",
            first_error(
                live.subscribe_thumbnails(authed(
                    pb::SubscribeThumbnailsRequest {
                        stream_id: cam(),
                        send_latest: true,
                    },
                    key,
                ))
                .await,
            )
            .await,
        ),
        (
            "SubscribeReplay",
            first_error(
                live.subscribe_replay(authed(
                    pb::SubscribeReplayRequest {
                        stream_id: cam(),
                        start: Some(pb::ReplayStart {
                            start: Some(pb::replay_start::Start::Earliest(true)),
                        }),
                        format: pb::SegmentFormat::MpegTs as i32,
                    },
                    key,
                ))
                .await,
            )
            .await,
        ),
        (
            "CreateReplayClip",
            live.create_replay_clip(authed(
                pb::CreateReplayClipRequest {
                    stream_id: cam(),
                    start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(3)),
                    duration_seconds: 3,
                    title: String::new(),
                    end_time: None,
                },
                key,
            ))
            .await
            .unwrap_err(),
        ),
        ("PushMedia", {
            let push = Push::open(&server, &stream, Some(key)).await;
            push.outcome().await.unwrap_err()
        }),
    ];
    for (call, status) in &statuses {
        assert_eq!(status.code(), Code::NotFound, "{call}: {status:?}");
    }

    // The same calls with ids that exist nowhere answer the same code.
    let missing = live
        .get_recording(authed(
            pb::GetRecordingRequest {
                recording_id: "rec_000000000000000000".into(),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // a's media is untouched.
    let still = live
        .get_recording(authed(
            pb::GetRecordingRequest {
                recording_id: recording.id.clone(),
            },
            &a.api_key,
        ))
        .await
        .expect("a's recording is still there")
        .into_inner();
    assert_eq!(still.size_bytes, recording.size_bytes);
    live.get_replay_clip(authed(
        pb::GetReplayClipRequest {
            clip_id: clip.id.clone(),
        },
        &a.api_key,
    ))
    .await
    .expect("a's clip is still there");
}

/// CreateStream with `source_uri`.
async fn create_pulled(
    server: &Server,
    key: &str,
    id: &str,
    uri: &str,
) -> Result<pb::Stream, tonic::Status> {
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: id.into(),
                name: String::new(),
                processing: None,
                source_uri: uri.into(),
                srt_encryption: None,
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_sources_cannot_reach_files_or_internal_addresses() {
    let server = Server::start();
    let org = server.create_org("b", true).await;
    let key = org.api_key.as_str();
    // Something internal that must never be reached, on loopback.
    let internal = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    internal.set_nonblocking(true).unwrap();
    let port = internal.local_addr().unwrap().port();

    let data = server.data_dir.display().to_string();
    let refused = [
        "file:///etc/passwd".to_string(),
        "file:///etc".to_string(),
        format!("file://{data}/registry.redb"),
        format!("http://127.0.0.1:{port}/internal/admin?token=abc"),
        format!("rtsp://[::1]:{port}/live"),
        "srt://169.254.169.254:9000".to_string(),
        "rtmp://10.0.0.1/live".to_string(),
        "gopher://example.com/".to_string(),
        // A public host, but the server would bind the port it names.
        "srt://1.1.1.1:56999?mode=listener&localaddress=0.0.0.0&localport=56996".to_string(),
        "srt://1.1.1.1:56999?mode=rendezvous&localport=56997".to_string(),
        "srt://1.1.1.1:56999?localport=56998".to_string(),
    ];
    let mut messages = vec![];
    for (i, uri) in refused.iter().enumerate() {
        let status = create_pulled(&server, key, &format!("s{i}"), uri)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{uri}: {status:?}");
        let details = tonic_types::StatusExt::get_error_details(&status);
        let violations = &details
            .bad_request()
            .expect("field violations")
            .field_violations;
        assert_eq!(violations[0].field, "source_uri", "{uri}");
        messages.push(status.message().to_string());
    }
    // A file that exists and one that does not are refused alike.
    assert_eq!(messages[0], messages[1]);
    // HLS is the operator's choice: its playlists lead to URLs no policy
    // sees first.
    let hls = create_pulled(&server, key, "hls", "https://cdn.example.com/live.m3u8")
        .await
        .unwrap_err();
    assert!(hls.message().contains("--pull-allow-http"), "{hls:?}");

    // A name that resolves to loopback passes creation, and is refused
    // before anything is sent to it.
    let stream = create_pulled(
        &server,
        key,
        "sneaky",
        &format!("rtsp://localhost:{port}/internal/admin?token=abc"),
    )
    .await
    .expect("a host name is checked when pulled");
    // (The snapshot at the start of a watch carries the state already set.)
    let mut watch = Watcher::start(&server, key, &stream.id).await;
    let error = watch.until_state(pb::StreamState::Error, 20).await;
    assert!(error.message.contains("source_uri"), "{error:?}");
    assert!(
        matches!(internal.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the server connected to an internal address"
    );
    // The token never reaches the logs.
    assert!(
        !server.log().contains("token=abc"),
        "a query string was logged"
    );
}

/// The server's UDP ports, from /proc (what `ss -lunp` shows).
fn udp_ports_of(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_string(),
            )
        })
        .collect();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            inodes.contains(&fields.get(9)?.to_string()).then_some(port)
        })
        .collect()
}

/// A pulled source never makes the server bind a port, and its
/// credentials reach neither the log nor the stream's state, not even
/// inside GStreamer's own messages, which quote the URI they failed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_sources_bind_nothing_and_their_secrets_stay_out_of_the_log() {
    let server = Server::start();
    let org = server.create_org("b", true).await;
    let key = org.api_key.as_str();
    let before = udp_ports_of(server.pid());
    for (i, uri) in [
        "srt://1.1.1.1:56999?mode=listener&localaddress=0.0.0.0&localport=56996",
        "srt://1.1.1.1:56999?mode=rendezvous&localport=56997",
    ]
    .iter()
    .enumerate()
    {
        let status = create_pulled(&server, key, &format!("bind{i}"), uri)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{uri}: {status:?}");
        assert!(status.message().contains("mode=caller"), "{status:?}");
    }
    // A caller-mode source that is accepted binds no port of its choosing.
    let caller = create_pulled(
        &server,
        key,
        "caller",
        "srt://1.1.1.1:56999?mode=caller&streamid=read:cam&passphrase=hunter2hunter2",
    )
    .await
    .expect("a caller-mode SRT source is allowed");
    let _ = caller;
    let after = udp_ports_of(server.pid());
    for port in [56996, 56997, 56998] {
        assert!(
            !after.contains(&port),
            "bound {port}: {before:?} -> {after:?}"
        );
    }

    // GStreamer refuses this URI at once, quoting it in its message.
    let stream = create_pulled(&server, key, "creds", "rtsp://SECRET%23@1.1.1.1:554/x")
        .await
        .expect("a public RTSP source is allowed");
    let mut watch = Watcher::start(&server, key, &stream.id).await;
    let error = watch.until_state(pb::StreamState::Error, 20).await;
    assert!(!error.message.contains("SECRET"), "{error:?}");
    let log = server.log();
    assert!(
        log.contains("No element accepted URI"),
        "GStreamer's message is logged (redacted): {log}"
    );
    for secret in ["SECRET", "hunter2hunter2"] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}
