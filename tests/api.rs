//! The API contract against the real server: option ranges, packages,
//! authentication and organization isolation, listing, reflection and
//! health.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

fn thumbnail(interval: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: interval,
            format: pb::ImageFormat::Jpeg as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn motion_clip(duration: u32, interval: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        motion_clip: Some(pb::MotionClipOptions {
            enabled: true,
            duration_seconds: duration,
            interval_seconds: interval,
            format: pb::ClipFormat::Mp4 as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn recording(duration: u32, entire_stream: bool) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: duration,
            entire_stream,
        }),
        ..Default::default()
    }
}

fn replay(duration: u32, entire_stream: bool) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: duration,
            entire_stream,
        }),
        ..Default::default()
    }
}

/// The field paths of a status's BadRequest violations.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_options_name_the_field() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let cases = [
        (thumbnail(9), "processing.thumbnail.interval_seconds"),
        (thumbnail(3601), "processing.thumbnail.interval_seconds"),
        (thumbnail(0), "processing.thumbnail.interval_seconds"),
        (
            motion_clip(0, 10),
            "processing.motion_clip.duration_seconds",
        ),
        (
            motion_clip(61, 10),
            "processing.motion_clip.duration_seconds",
        ),
        (motion_clip(5, 9), "processing.motion_clip.interval_seconds"),
        (
            motion_clip(5, 3601),
            "processing.motion_clip.interval_seconds",
        ),
        (recording(0, false), "processing.recording.duration_seconds"),
        (replay(0, false), "processing.replay.duration_seconds"),
        (
            pb::ProcessingOptions {
                thumbnail: Some(pb::ThumbnailOptions {
                    enabled: true,
                    interval_seconds: 10,
                    width: 8,
                    ..Default::default()
                }),
                ..Default::default()
            },
            "processing.thumbnail.width",
        ),
        (
            pb::ProcessingOptions {
                thumbnail: Some(pb::ThumbnailOptions {
                    enabled: true,
                    interval_seconds: 10,
                    format: 42,
                    ..Default::default()
                }),
                ..Default::default()
            },
            "processing.thumbnail.format",
        ),
        (
            pb::ProcessingOptions {
                motion_clip: Some(pb::MotionClipOptions {
                    enabled: true,
                    duration_seconds: 3,
                    interval_seconds: 10,
                    format: pb::ClipFormat::Gif as i32,
                    width: 5000,
                }),
                ..Default::default()
            },
            "processing.motion_clip.width",
        ),
        (
            pb::ProcessingOptions {
                thumbnail: Some(pb::ThumbnailOptions {
                    enabled: true,
                    interval_seconds: 10,
                    height: 100_000,
                    ..Default::default()
                }),
                ..Default::default()
            },
            "processing.thumbnail.height",
        ),
        (
            pb::ProcessingOptions {
                motion_clip: Some(pb::MotionClipOptions {
                    enabled: true,
                    duration_seconds: 3,
                    interval_seconds: 10,
                    format: 42,
                    width: 0,
                }),
                ..Default::default()
            },
            "processing.motion_clip.format",
        ),
        (recording(60, true), "processing.recording.duration_seconds"),
        (replay(60, true), "processing.replay.duration_seconds"),
    ];
    // Every case is refused on create, and on update of an existing stream.
    create_stream(&server, key, "existing", None).await.unwrap();
    for (i, (options, field)) in cases.into_iter().enumerate() {
        let status = create_stream(&server, key, &format!("s{i}"), Some(options))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
        let details = status.get_error_details();
        let description = &details.bad_request().unwrap().field_violations[0].description;
        assert!(description.contains("must"), "{description}");

        let status = server
            .live()
            .await
            .update_processing(authed(
                pb::UpdateProcessingRequest {
                    stream_id: "existing".into(),
                    processing: Some(options),
                },
                key,
            ))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), [field], "update: {status:?}");
    }

    // The edges of each range are accepted.
    for (i, options) in [
        thumbnail(10),
        thumbnail(3600),
        motion_clip(1, 10),
        motion_clip(60, 3600),
        recording(1, false),
        recording(0, true),
        replay(1, false),
        replay(0, true),
    ]
    .into_iter()
    .enumerate()
    {
        let stream = create_stream(&server, key, &format!("ok{i}"), Some(options))
            .await
            .unwrap();
        assert_eq!(stream.processing, Some(options));
    }
    // Nothing refused was stored.
    let listed = server
        .live()
        .await
        .list_streams(authed(pb::ListStreamsRequest::default(), key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.streams.len(), 9);

    let status = create_stream(&server, key, "bad/id", None)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["stream_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_needs_the_package_until_it_is_enabled() {
    let server = Server::start();
    let org = server.create_org("basic", false).await;
    assert_eq!(
        org.packages.as_ref().unwrap().live_processing(),
        pb::PackageState::UpgradeNeeded
    );
    let key = org.api_key.as_str();

    let status = create_stream(&server, key, "cam", Some(thumbnail(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("Upgrade needed"), "{status:?}");
    let info = status.get_error_details().error_info().unwrap().clone();
    assert_eq!(info.reason, "UPGRADE_NEEDED");
    assert_eq!(info.metadata["feature"], "thumbnail");

    // Without processing the stream is allowed; adding processing is not.
    create_stream(&server, key, "cam", None).await.unwrap();
    let status = server
        .live()
        .await
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "cam".into(),
                processing: Some(replay(30, false)),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let updated = server
        .admin()
        .await
        .set_packages(authed(
            pb::SetPackagesRequest {
                organization_id: org.id.clone(),
                live_processing: true,
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.packages.unwrap().live_processing(),
        pb::PackageState::Enabled
    );
    assert!(
        updated.api_key.is_empty(),
        "the key is shown only at create/rotate"
    );

    let mut watch = Watcher::start(&server, key, "cam").await;
    let stream = server
        .live()
        .await
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "cam".into(),
                processing: Some(replay(30, false)),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.processing, Some(replay(30, false)));
    // The watcher sees the option change.
    let event = within(10, "processing event", async {
        loop {
            let e = watch.next().await;
            if e.kind() == pb::stream_event::Kind::ProcessingChanged {
                return e;
            }
        }
    })
    .await;
    assert_eq!(event.processing, Some(replay(30, false)));
    create_stream(&server, key, "cam2", Some(thumbnail(10)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decide_who_may_call_what() {
    let server = Server::start();
    let a = server.create_org("a", true).await;
    let b = server.create_org("b", true).await;
    create_stream(&server, &a.api_key, "cam", None)
        .await
        .unwrap();

    let mut live = server.live().await;
    let mut admin = server.admin().await;

    // No key, a malformed header, an unknown key.
    let status = live
        .get_stream(tonic::Request::new(pb::GetStreamRequest {
            stream_id: "cam".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(pb::ListOrganizationsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", ADMIN_KEY.parse().unwrap());
    assert_eq!(
        admin.list_organizations(request).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            "lp_nope",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("lp_nope"), "keys never echoed");

    // Org key on the admin service; admin key on the org service.
    let status = admin
        .list_organizations(authed(pb::ListOrganizationsRequest::default(), &a.api_key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Another organization's stream does not exist for b.
    let missing = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "nope".into(),
            },
            &b.api_key,
        ))
        .await
        .unwrap_err();
    let foreign = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            &b.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(foreign.code(), missing.code());
    assert_eq!(
        foreign
            .get_error_details()
            .resource_info()
            .unwrap()
            .resource_type,
        "stream"
    );
    for status in [
        live.delete_stream(authed(
            pb::DeleteStreamRequest {
                stream_id: "cam".into(),
            },
            &b.api_key,
        ))
        .await
        .unwrap_err(),
        live.update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "cam".into(),
                processing: None,
            },
            &b.api_key,
        ))
        .await
        .unwrap_err(),
        live.watch_stream(authed(
            pb::WatchStreamRequest {
                stream_id: "cam".into(),
            },
            &b.api_key,
        ))
        .await
        .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // b may use the same id for a stream of its own, and lists only its own.
    create_stream(&server, &b.api_key, "cam", None)
        .await
        .unwrap();
    let b_streams = live
        .list_streams(authed(pb::ListStreamsRequest::default(), &b.api_key))
        .await
        .unwrap()
        .into_inner()
        .streams;
    assert_eq!(b_streams.len(), 1);
    assert_eq!(b_streams[0].organization_id, b.id);

    // a's stream is untouched.
    let cam = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            &a.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cam.organization_id, a.id);

    // Rotating a's key retires the old one at once.
    let rotated = admin
        .rotate_api_key(authed(
            pb::RotateApiKeyRequest {
                organization_id: a.id.clone(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.api_key, a.api_key);
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "cam".into(),
            },
            &a.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    live.get_stream(authed(
        pb::GetStreamRequest {
            stream_id: "cam".into(),
        },
        &rotated.api_key,
    ))
    .await
    .unwrap();

    // The server log never contains a key.
    let log = server.log();
    for secret in [
        &a.api_key,
        &b.api_key,
        &rotated.api_key,
        &ADMIN_KEY.to_string(),
    ] {
        assert!(!log.contains(secret.as_str()), "a key leaked into the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_through_everything_once() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let mut ids: Vec<String> = (0..7).map(|i| format!("cam-{i}")).collect();
    for id in &ids {
        create_stream(&server, &org.api_key, id, None)
            .await
            .unwrap();
    }
    let mut live = server.live().await;
    let mut seen = vec![];
    let mut token = String::new();
    loop {
        let page = live
            .list_streams(authed(
                pb::ListStreamsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                },
                &org.api_key,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.streams.len() <= 3);
        seen.extend(page.streams.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ids.sort();
    assert_eq!(seen, ids);

    let status = live
        .list_streams(authed(
            pb::ListStreamsRequest {
                page_size: 5000,
                page_token: String::new(),
            },
            &org.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_requests_on_a_stream_without_media() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    let mut live = server.live().await;
    let clip = |stream_id: &str, duration_seconds: u32| {
        authed(
            pb::CreateReplayClipRequest {
                stream_id: stream_id.into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(30)),
                duration_seconds,
                title: "goal".into(),
                end_time: None,
            },
            &org.api_key,
        )
    };
    let status = live.create_replay_clip(clip("cam", 30)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "STREAM_NOT_LIVE"
    );
    let status = live.create_replay_clip(clip("cam", 0)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["duration_seconds"]);
    let status = live
        .create_replay_clip(clip("other", 30))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = live
        .list_replay_clips(authed(
            pb::ListReplayClipsRequest {
                stream_id: "other".into(),
                ..Default::default()
            },
            &org.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_and_health_need_no_proto_files() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = Server::start();
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "",
        "liveproc.v1.LiveProcessing",
        "liveproc.v1.Organizations",
        "liveproc.v1.Cluster",
    ] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, 1, "{service} SERVING");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "liveproc.v1.LiveProcessing",
        "liveproc.v1.Organizations",
        "liveproc.v1.Cluster",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

/// A codec that sends and receives message bytes as they are, to send
/// what no generated client would.
#[derive(Default, Clone)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Requests no client should send, as an attacker sends them: a 1 MB id
/// is refused before any lookup without being echoed back (a client
/// then fails on the size of the error, not with the error), and bytes
/// that are not protobuf are the caller's error, not the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_bounded_invalid_argument_errors() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let mut live = server.live().await;
    let huge = "s".repeat(1 << 20);
    let bounded = |status: &tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(status), vec![field.to_string()]);
        assert!(
            status.message().len() < 1024,
            "{field}: message echoes input"
        );
    };
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: huge.clone(),
            },
            key,
        ))
        .await
        .unwrap_err();
    bounded(&status, "stream_id");
    let status = live
        .delete_stream(authed(
            pb::DeleteStreamRequest {
                stream_id: huge.clone(),
            },
            key,
        ))
        .await
        .unwrap_err();
    bounded(&status, "stream_id");
    let status = live
        .get_recording(authed(
            pb::GetRecordingRequest {
                recording_id: huge.clone(),
            },
            key,
        ))
        .await
        .unwrap_err();
    bounded(&status, "recording_id");
    let status = server
        .admin()
        .await
        .get_organization(authed(
            pb::GetOrganizationRequest { id: huge.clone() },
            ADMIN_KEY,
        ))
        .await
        .unwrap_err();
    bounded(&status, "id");
    // An id of a valid shape that does not exist is still NOT_FOUND.
    let status = live
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: "nope".into(),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Not protobuf: a field tag with a wire type that does not exist.
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/liveproc.v1.LiveProcessing/GetStream",
    );
    let status = grpc
        .unary::<Vec<u8>, Vec<u8>, _>(authed(vec![0x0f, 0xff, 0xff, 0xff], key), path, RawCodec)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("protobuf"), "{status:?}");
}
