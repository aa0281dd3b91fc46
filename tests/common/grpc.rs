//! gRPC helpers: authenticated requests, stream and clip creation,
//! recordings, a `PushMedia` publisher and a `WatchStream` follower.

use std::path::Path;

use liveproc::proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

use super::{ffprobe_video, probe_av, srt_publish, wait_child, within, Server};

/// A request carrying `authorization: Bearer <key>`.
pub fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// An open gRPC `PushMedia` call: send chunks, then `finish`.
pub struct Push {
    tx: mpsc::Sender<pb::PushMediaRequest>,
    call: tokio::task::JoinHandle<Result<pb::PushMediaResponse, Status>>,
}

impl Push {
    pub async fn open(server: &Server, stream: &pb::Stream, api_key: Option<&str>) -> Push {
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::PushMediaRequest {
            stream_id: stream.id.clone(),
            stream_key: stream.ingest.as_ref().unwrap().stream_key.clone(),
            data: Default::default(),
        })
        .await
        .unwrap();
        let mut client = server.live().await;
        let mut request = Request::new(ReceiverStream::new(rx));
        if let Some(key) = api_key {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        let call =
            tokio::spawn(async move { client.push_media(request).await.map(|r| r.into_inner()) });
        Push { tx, call }
    }

    /// Sends bytes in 64 KiB chunks; false once the server ended the call.
    pub async fn send(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(64 * 1024) {
            let message = pb::PushMediaRequest {
                data: bytes::Bytes::copy_from_slice(chunk),
                ..Default::default()
            };
            if self.tx.send(message).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Closes the request stream and returns the server's answer.
    pub async fn finish(self) -> Result<pb::PushMediaResponse, Status> {
        drop(self.tx);
        self.call.await.unwrap()
    }

    /// The answer, without closing (for calls the server ends itself).
    pub async fn outcome(self) -> Result<pb::PushMediaResponse, Status> {
        let Push { tx, call } = self;
        let result = call.await.unwrap();
        drop(tx);
        result
    }
}

/// Follows `WatchStream` and remembers every event.
pub struct Watcher {
    events: Streaming<pb::StreamEvent>,
    pub seen: Vec<pb::StreamEvent>,
}

impl Watcher {
    pub async fn start(server: &Server, api_key: &str, stream_id: &str) -> Watcher {
        let events = server
            .live()
            .await
            .watch_stream(authed(
                pb::WatchStreamRequest {
                    stream_id: stream_id.into(),
                },
                api_key,
            ))
            .await
            .expect("watch stream")
            .into_inner();
        Watcher {
            events,
            seen: vec![],
        }
    }

    /// The next event, whatever it is.
    pub async fn next(&mut self) -> pb::StreamEvent {
        let event = self
            .events
            .message()
            .await
            .expect("watch stream")
            .unwrap_or_else(|| panic!("watch ended after {:?}", self.seen));
        self.seen.push(event.clone());
        event
    }

    /// Waits (up to `secs`) for an event in `state`; returns it.
    pub async fn until_state(&mut self, state: pb::StreamState, secs: u64) -> pb::StreamEvent {
        let what = format!("stream state {state:?}");
        within(secs, &what, async {
            loop {
                let event = self.next().await;
                if event.state == state as i32 {
                    return event;
                }
            }
        })
        .await
    }

    /// Waits (up to `secs`) for an event of `kind`; returns it.
    pub async fn until_kind(&mut self, kind: pb::stream_event::Kind, secs: u64) -> pb::StreamEvent {
        let what = format!("a {kind:?} event");
        within(secs, &what, async {
            loop {
                let event = self.next().await;
                if event.kind() == kind {
                    return event;
                }
            }
        })
        .await
    }

    pub fn states(&self) -> Vec<pb::StreamState> {
        self.seen
            .iter()
            .map(|e| pb::StreamState::try_from(e.state).unwrap())
            .collect()
    }
}

/// Recording in segments of `seconds` (0: one file per session).
pub fn recording_options(seconds: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: seconds,
            entire_stream: seconds == 0,
        }),
        ..Default::default()
    }
}

/// A thumbnail every 10 s.
pub fn thumbnails_every_10s() -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: 10,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `SubscribeReplay` of `stream_id` from its oldest GOP, as MPEG-TS.
pub async fn subscribe_replay_ts(
    server: &Server,
    key: &str,
    stream_id: &str,
) -> tonic::Streaming<pb::ReplaySegment> {
    subscribe_replay(
        server,
        key,
        stream_id,
        pb::replay_start::Start::Earliest(true),
        pb::SegmentFormat::MpegTs,
    )
    .await
}

/// `SubscribeReplay` of `stream_id` from `start`, in `format`.
pub async fn subscribe_replay(
    server: &Server,
    key: &str,
    stream_id: &str,
    start: pb::replay_start::Start,
    format: pb::SegmentFormat,
) -> tonic::Streaming<pb::ReplaySegment> {
    server
        .live()
        .await
        .subscribe_replay(authed(
            pb::SubscribeReplayRequest {
                stream_id: stream_id.into(),
                start: Some(pb::ReplayStart { start: Some(start) }),
                format: format as i32,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A replay buffer of `seconds` (0: the entire stream).
pub fn replay_options(seconds: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: seconds,
            entire_stream: seconds == 0,
        }),
        ..Default::default()
    }
}

/// `CreateReplayClip` of the last `seconds` of the stream.
pub async fn create_clip(
    server: &Server,
    key: &str,
    stream_id: &str,
    seconds: u32,
    title: &str,
) -> pb::ReplayClip {
    server
        .live()
        .await
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: stream_id.into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(
                    seconds,
                )),
                duration_seconds: seconds,
                title: title.into(),
                end_time: None,
            },
            key,
        ))
        .await
        .expect("CreateReplayClip")
        .into_inner()
}

/// The recording catalogue of a stream (first page).
pub async fn list_recordings(server: &Server, key: &str, stream_id: &str) -> Vec<pb::Recording> {
    server
        .live()
        .await
        .list_recordings(authed(
            pb::ListRecordingsRequest {
                stream_id: stream_id.into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .recordings
}

/// Creates a stream with the given processing (org key).
pub async fn create_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    processing: Option<pb::ProcessingOptions>,
) -> Result<pb::Stream, Status> {
    create_stream_from(server, api_key, stream_id, "", processing).await
}

/// The recordings of `stream_id` that `keep` selects, once there are some
/// and every one of them is COMPLETE.
pub async fn until_all_complete(
    server: &Server,
    key: &str,
    stream_id: &str,
    secs: u64,
    keep: impl Fn(&pb::Recording) -> bool,
) -> Vec<pb::Recording> {
    within(
        secs,
        &format!("the recordings of {stream_id} to be complete"),
        async {
            loop {
                let listed: Vec<_> = list_recordings(server, key, stream_id)
                    .await
                    .into_iter()
                    .filter(&keep)
                    .collect();
                if !listed.is_empty()
                    && listed
                        .iter()
                        .all(|r| r.state() == pb::RecordingState::Complete)
                {
                    return listed;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        },
    )
    .await
}

/// `CreateStream` of a stream pulled from `source_uri`.
pub async fn create_pulled_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    source_uri: &str,
    processing: Option<pb::ProcessingOptions>,
) -> pb::Stream {
    create_stream_from(server, api_key, stream_id, source_uri, processing)
        .await
        .expect("create a pulled stream")
}

async fn create_stream_from(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    source_uri: &str,
    processing: Option<pb::ProcessingOptions>,
) -> Result<pb::Stream, Status> {
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: stream_id.into(),
                name: format!("stream {stream_id}"),
                processing,
                source_uri: source_uri.into(),
                srt_encryption: None,
            },
            api_key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// `DeleteStream` with an org key.
pub async fn delete_stream(server: &Server, api_key: &str, stream_id: &str) {
    server
        .live()
        .await
        .delete_stream(authed(
            pb::DeleteStreamRequest {
                stream_id: stream_id.into(),
            },
            api_key,
        ))
        .await
        .expect("delete the stream");
}

/// `GetStream` with an org key.
pub async fn get_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
) -> Result<pb::Stream, Status> {
    server
        .live()
        .await
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: stream_id.into(),
            },
            api_key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Video frames the stream's current (or last) session received.
pub async fn video_frames(server: &Server, api_key: &str, stream_id: &str) -> u64 {
    get_stream(server, api_key, stream_id)
        .await
        .unwrap()
        .ingest_stats
        .map_or(0, |s| s.video_frames)
}

/// Pushes a whole file through gRPC as fast as the server takes it.
pub async fn push_file(server: &Server, stream: &pb::Stream, file: &Path) -> pb::PushMediaResponse {
    push_media(server, stream, &std::fs::read(file).unwrap()).await
}

/// Pushes `media` (MPEG-TS) over gRPC in one session and ends it.
pub async fn push_media(
    server: &Server,
    stream: &pb::Stream,
    media: &[u8],
) -> pb::PushMediaResponse {
    let push = Push::open(server, stream, None).await;
    assert!(push.send(media).await);
    push.finish().await.expect("push")
}

/// Seconds of a `google.protobuf.Duration`.
pub fn secs(d: &Option<pbjson_types::Duration>) -> f64 {
    let d = d.as_ref().expect("duration");
    d.seconds as f64 + d.nanos as f64 / 1e9
}

/// Creates `stream_id` with `processing`, publishes `file` over SRT in real
/// time as an encoder would, and returns once the stream has ENDED.
pub async fn publish_session(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    processing: Option<pb::ProcessingOptions>,
    file: &Path,
) -> pb::Stream {
    let stream = create_stream(server, api_key, stream_id, processing)
        .await
        .expect("create stream");
    let mut watch = Watcher::start(server, api_key, stream_id).await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), file);
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(pb::StreamState::Ended, 20).await;
    stream
}

/// A recording's bytes from `offset` (`DownloadRecording`).
pub async fn download_recording(server: &Server, key: &str, id: &str, offset: u64) -> Vec<u8> {
    let chunks = server
        .live()
        .await
        .download_recording(authed(
            pb::DownloadRecordingRequest {
                recording_id: id.into(),
                offset,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    collect_chunks(chunks, offset).await
}

/// A replay clip's bytes (`DownloadReplayClip`).
pub async fn download_clip(server: &Server, key: &str, id: &str) -> Vec<u8> {
    let chunks = server
        .live()
        .await
        .download_replay_clip(authed(
            pb::DownloadReplayClipRequest {
                clip_id: id.into(),
                offset: 0,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    collect_chunks(chunks, 0).await
}

/// The bytes of a download (`DataChunk` stream), checking the offsets.
pub async fn collect_chunks(mut chunks: Streaming<pb::DataChunk>, offset: u64) -> Vec<u8> {
    let mut data = vec![];
    while let Some(chunk) = chunks.message().await.expect("download") {
        assert_eq!(chunk.offset, offset + data.len() as u64);
        data.extend_from_slice(&chunk.data);
    }
    data
}

/// Waits until the health service `service` says `status`.
pub async fn health_until(
    server: &Server,
    service: &str,
    status: tonic_health::pb::health_check_response::ServingStatus,
    secs: u64,
) {
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    within(secs, &format!("{service} {status:?}"), async {
        loop {
            let answer = watch.message().await.unwrap().expect("health watch");
            if answer.status == status as i32 {
                return;
            }
        }
    })
    .await;
}

/// The latest thumbnail of `stream_id`, or the first one made
/// (`SubscribeThumbnails` with `send_latest`).
pub async fn first_thumbnail(server: &Server, key: &str, stream_id: &str) -> pb::Thumbnail {
    let mut thumbnails = server
        .live()
        .await
        .subscribe_thumbnails(authed(
            pb::SubscribeThumbnailsRequest {
                stream_id: stream_id.into(),
                send_latest: true,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    within(30, "the first thumbnail", thumbnails.message())
        .await
        .unwrap()
        .expect("a thumbnail")
}

/// The latest motion clip of `stream_id`, or the first one made.
pub async fn first_motion_clip(server: &Server, key: &str, stream_id: &str) -> pb::MotionClip {
    let mut clips = server
        .live()
        .await
        .subscribe_motion_clips(authed(
            pb::SubscribeMotionClipsRequest {
                stream_id: stream_id.into(),
                send_latest: true,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    within(30, "the first motion clip", clips.message())
        .await
        .unwrap()
        .expect("a motion clip")
}

/// Polls the catalogue until `done` holds for it (files close in the
/// background after the session ends).
pub async fn recordings_until(
    server: &Server,
    key: &str,
    stream_id: &str,
    done: impl Fn(&[pb::Recording]) -> bool,
) -> Vec<pb::Recording> {
    within(30, "the recording catalogue", async {
        loop {
            let recordings = list_recordings(server, key, stream_id).await;
            if done(&recordings) {
                return recordings;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
}

/// A predicate for [`recordings_until`]: at least `n` recordings, all
/// complete.
pub fn complete(n: usize) -> impl Fn(&[pb::Recording]) -> bool {
    move |r: &[pb::Recording]| {
        r.len() >= n && r.iter().all(|r| r.state() == pb::RecordingState::Complete)
    }
}

/// Each recording, downloaded, has its video at the size given for it,
/// and both tracks over its duration, decoding cleanly.
pub async fn assert_recordings_at_sizes(
    server: &Server,
    key: &str,
    recordings: &[pb::Recording],
    sizes: &[(u64, u64)],
) {
    assert_eq!(recordings.len(), sizes.len(), "{recordings:?}");
    for (recording, size) in recordings.iter().zip(sizes) {
        let data = download_recording(server, key, &recording.id, 0).await;
        let video = ffprobe_video(&data);
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(size.0), Some(size.1))
        );
        probe_av(&data, "part.mp4").assert_audio_and_video(
            &format!("recording at {}x{}", size.0, size.1),
            secs(&recording.duration),
            1.0,
        );
    }
}

/// `ts` moved by `seconds`.
pub fn timestamp_plus(ts: &pbjson_types::Timestamp, seconds: f64) -> pbjson_types::Timestamp {
    let nanos = ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128 + (seconds * 1e9) as i128;
    pbjson_types::Timestamp {
        seconds: (nanos / 1_000_000_000) as i64,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}
