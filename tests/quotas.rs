//! Quotas per organization against the real server: the operator sets
//! them, the organization reads them and its usage, and each is enforced
//! where it is reached (a stream created, a publisher over SRT or gRPC,
//! a recording written and a clip cut, replay held in memory) with
//! `RESOURCE_EXHAUSTED` and a `QuotaFailure` naming it. Another
//! organization is never limited by them.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;
use tonic::{Code, Status};
use tonic_types::StatusExt;

async fn set_quotas(
    server: &Server,
    key: &str,
    org_id: &str,
    quotas: pb::Quotas,
) -> Result<pb::Organization, Status> {
    server
        .admin()
        .await
        .set_quotas(authed(
            pb::SetQuotasRequest {
                organization_id: org_id.into(),
                quotas: Some(quotas),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn usage(server: &Server, key: &str, org_id: &str) -> Result<pb::Usage, Status> {
    server
        .admin()
        .await
        .get_usage(authed(
            pb::GetUsageRequest {
                organization_id: org_id.into(),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner().usage.unwrap())
}

/// The status is `RESOURCE_EXHAUSTED` for `quota` of `org_id`, with its
/// `QuotaFailure` and `ErrorInfo`.
fn assert_quota(status: &Status, org_id: &str, quota: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let failure = status.get_details_quota_failure().expect("a QuotaFailure");
    assert_eq!(
        failure.violations[0].subject,
        format!("organizations/{org_id}/quotas/{quota}"),
        "{status:?}"
    );
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "QUOTA_EXCEEDED");
    assert_eq!(info.metadata["quota"], quota);
    assert!(status.message().contains(quota), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sets_quotas_and_the_organization_reads_its_usage() {
    let server = Server::start();
    let a = server.create_org("a", true).await;
    let b = server.create_org("b", true).await;
    let streams_2 = pb::Quotas {
        streams: 2,
        ..Default::default()
    };
    // Only the operator sets them.
    let status = set_quotas(&server, &a.api_key, &a.id, streams_2)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let set = set_quotas(&server, ADMIN_KEY, &a.id, streams_2)
        .await
        .unwrap();
    assert_eq!(set.quotas, Some(streams_2));

    for id in ["s1", "s2"] {
        create_stream(&server, &a.api_key, id, None).await.unwrap();
    }
    let status = create_stream(&server, &a.api_key, "s3", None)
        .await
        .unwrap_err();
    assert_quota(&status, &a.id, "streams");
    let failure = status.get_details_quota_failure().unwrap();
    assert_eq!(failure.violations[0].description, "2 of 2 used");
    // Another organization is not limited by it.
    for id in ["s1", "s2", "s3"] {
        create_stream(&server, &b.api_key, id, None).await.unwrap();
    }

    // The organization reads its own quotas and usage, not another's.
    let own = usage(&server, &a.api_key, "").await.unwrap();
    assert_eq!(
        (own.streams, own.live_sessions, own.stored_bytes),
        (2, 0, 0)
    );
    let org = server
        .admin()
        .await
        .get_organization(authed(
            pb::GetOrganizationRequest { id: String::new() },
            &a.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(org.quotas, Some(streams_2));
    let status = usage(&server, &a.api_key, &b.id).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(usage(&server, ADMIN_KEY, &b.id).await.unwrap().streams, 3);

    // A stream deleted frees its place.
    delete_stream(&server, &a.api_key, "s1").await;
    create_stream(&server, &a.api_key, "s3", None)
        .await
        .unwrap();
    // No limit again: a third one.
    set_quotas(&server, ADMIN_KEY, &a.id, pb::Quotas::default())
        .await
        .unwrap();
    create_stream(&server, &a.api_key, "s4", None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_the_live_sessions_quota_is_refused() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    set_quotas(
        &server,
        ADMIN_KEY,
        &org.id,
        pb::Quotas {
            live_sessions: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let one = create_stream(&server, key, "one", None).await.unwrap();
    let two = create_stream(&server, key, "two", None).await.unwrap();
    let mut watch_one = Watcher::start(&server, key, "one").await;
    let first = srt_publish(&server.srt_url(&one), test_ts());
    watch_one.until_state(StreamState::Live, 20).await;
    assert_eq!(usage(&server, key, "").await.unwrap().live_sessions, 1);

    // Over SRT: refused, the log says why.
    let refused = srt_publish(&server.srt_url(&two), test_ts());
    let exit = within(30, "the SRT caller to be refused", wait_child(refused)).await;
    assert!(!exit.success(), "a publisher past the quota was taken");
    server
        .until_log(&["SRT caller rejected", "live_sessions quota"], 5)
        .await;
    // Over gRPC: the status names the quota.
    let push = Push::open(&server, &two, None).await;
    let _ = push
        .send(&std::fs::read(test_ts()).unwrap()[..188 * 100])
        .await;
    let status = within(10, "the push to be refused", push.outcome())
        .await
        .unwrap_err();
    assert_quota(&status, &org.id, "live_sessions");

    // Once the first session ends, the second stream publishes.
    assert!(within(40, "ffmpeg", wait_child(first)).await.success());
    watch_one.until_state(StreamState::Ended, 20).await;
    let mut watch_two = Watcher::start(&server, key, "two").await;
    let second = srt_publish(&server.srt_url(&two), test_ts());
    watch_two.until_state(StreamState::Live, 20).await;
    let _ = within(40, "ffmpeg", wait_child(second)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_and_clips_stop_at_the_stored_bytes_quota() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let media = std::fs::metadata(test_ts()).unwrap().len();
    // About a third of the session's media.
    let quota = media / 3;
    set_quotas(
        &server,
        ADMIN_KEY,
        &org.id,
        pb::Quotas {
            stored_bytes: quota,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let processing = pb::ProcessingOptions {
        replay: replay_options(30).replay,
        ..recording_options(2)
    };
    let stream = create_stream(&server, key, "cam", Some(processing))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let publisher = srt_publish(&server.srt_url(&stream), test_ts());
    let stopped = watch
        .until_kind(pb::stream_event::Kind::FeatureError, 30)
        .await;
    assert!(
        stopped.message.contains("recording") && stopped.message.contains("stored_bytes quota"),
        "{}",
        stopped.message
    );
    // A clip is refused as well, while the session goes on.
    let status = server
        .live()
        .await
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: "cam".into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(2)),
                duration_seconds: 2,
                title: "over".into(),
                end_time: None,
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_quota(&status, &org.id, "stored_bytes");
    assert!(within(40, "ffmpeg", wait_child(publisher)).await.success());
    watch.until_state(StreamState::Ended, 20).await;

    // What was recorded reached the quota and stopped there: past it by
    // at most what one keyframe interval (1 s) adds.
    let recordings = until_all_complete(&server, key, "cam", 30, |_| true).await;
    let recorded: u64 = recordings.iter().map(|r| r.size_bytes).sum();
    assert!(recorded >= quota, "{recorded} < {quota}");
    assert!(
        recorded <= quota + media / 5,
        "{recorded} recorded, quota {quota}"
    );
    assert!(
        recordings
            .iter()
            .all(|r| r.state() == pb::RecordingState::Complete),
        "{recordings:?}"
    );
    let used = usage(&server, key, "").await.unwrap().stored_bytes;
    assert_eq!(used, recorded);

    // Space freed, recording starts again on the next session.
    for recording in &recordings {
        server
            .live()
            .await
            .delete_recording(authed(
                pb::DeleteRecordingRequest {
                    recording_id: recording.id.clone(),
                },
                key,
            ))
            .await
            .unwrap();
    }
    assert_eq!(usage(&server, key, "").await.unwrap().stored_bytes, 0);
    let publisher = srt_publish(&server.srt_url(&stream), test_ts());
    let first = recordings_until(&server, key, "cam", |r| !r.is_empty()).await;
    assert!(!first.is_empty());
    let _ = within(40, "ffmpeg", wait_child(publisher)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_buffers_keep_within_the_replay_memory_quota() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let media = std::fs::metadata(test_ts()).unwrap().len();
    // Two 10 s sessions would hold twice the media; the quota is half of
    // one.
    let quota = media / 2;
    set_quotas(
        &server,
        ADMIN_KEY,
        &org.id,
        pb::Quotas {
            replay_memory_bytes: quota,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut publishers = Vec::new();
    let mut watchers = Vec::new();
    for id in ["a", "b"] {
        let stream = create_stream(&server, key, id, Some(replay_options(60)))
            .await
            .unwrap();
        watchers.push(Watcher::start(&server, key, id).await);
        publishers.push(srt_publish(&server.srt_url(&stream), test_ts()));
    }
    for publisher in publishers {
        assert!(within(40, "ffmpeg", wait_child(publisher)).await.success());
    }
    for watch in &mut watchers {
        watch.until_state(StreamState::Ended, 20).await;
    }
    let held = usage(&server, key, "").await.unwrap().replay_memory_bytes;
    // Each buffer may be over by the GOP it just took (1 s of media).
    assert!(
        held > 0 && held <= quota + media / 5,
        "{held} held, quota {quota}"
    );
    let mut durations = Vec::new();
    for id in ["a", "b"] {
        let window = get_stream(&server, key, id)
            .await
            .unwrap()
            .replay_window
            .expect("a replay window");
        durations.push(secs(&window.duration));
    }
    // Without the quota each would hold its 10 s.
    assert!(
        durations.iter().sum::<f64>() < 12.0,
        "replay windows {durations:?} s"
    );

    // At the quota, replay cannot be turned on for another stream.
    set_quotas(
        &server,
        ADMIN_KEY,
        &org.id,
        pb::Quotas {
            replay_memory_bytes: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    create_stream(&server, key, "c", None).await.unwrap();
    let status = server
        .live()
        .await
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "c".into(),
                processing: Some(replay_options(60)),
            },
            key,
        ))
        .await
        .unwrap_err();
    assert_quota(&status, &org.id, "replay_memory_bytes");
}
