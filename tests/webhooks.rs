//! Webhooks end to end: a real HTTP receiver on loopback (Python, in
//! `tests/support/webhook_receiver.py`), whose deliveries are checked by
//! the reference Standard Webhooks verifier (`standardwebhooks` from
//! PyPI), a real session published over SRT, a receiver that fails and is
//! down while the server restarts.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use liveproc::proto::v1 as pb;
use liveproc::proto::v1::webhooks_client::WebhooksClient;
use tonic::transport::Channel;
use tonic::Code;

/// The test receiver, stopped when dropped.
struct Receiver {
    child: Child,
    port: u16,
}

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python")
}

fn receiver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook_receiver.py")
}

impl Receiver {
    /// Serves on `port`, logging to `log`, answering 500 to the first
    /// `fail_first` requests.
    fn start(port: u16, log: &Path, fail_first: u32) -> Receiver {
        Self::start_with(port, log, fail_first, 0.0)
    }

    /// [`Receiver::start`], answering each request after `delay` s.
    fn start_with(port: u16, log: &Path, fail_first: u32, delay: f64) -> Receiver {
        use std::io::BufRead;
        let mut child = Command::new(python())
            .arg(receiver_script())
            .args(["serve", &port.to_string()])
            .arg(log)
            .args(["--fail-first", &fail_first.to_string()])
            .args(["--delay", &delay.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python in target/py (make test-tools)");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "listening", "the receiver started");
        Receiver { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivery the receiver answered 2xx, as the reference verifier read it.
#[derive(Debug, serde::Deserialize)]
struct Delivered {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    payload: serde_json::Value,
}

/// Every delivery `log` holds, each checked with the reference verifier
/// (which fails on any bad signature).
fn verified(log: &Path, secret: &str) -> Vec<Delivered> {
    if !log.exists() {
        return vec![];
    }
    let out = Command::new(python())
        .arg(receiver_script())
        .arg("verify")
        .arg(log)
        .arg(secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "every delivery verifies: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Statuses the receiver answered, from its log.
fn statuses(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

async fn webhooks(server: &Server) -> WebhooksClient<Channel> {
    WebhooksClient::new(server.channel().await)
}

async fn create_endpoint(
    server: &Server,
    key: &str,
    url: &str,
    types: &[&str],
) -> Result<pb::WebhookEndpoint, tonic::Status> {
    webhooks(server)
        .await
        .create_webhook_endpoint(authed(
            pb::CreateWebhookEndpointRequest {
                url: url.into(),
                event_types: types.iter().map(|t| t.to_string()).collect(),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

const FLAGS: &[&str] = &[
    "--webhook-allow",
    "127.0.0.1",
    "--webhook-first-retry-seconds",
    "1",
    "--webhook-timeout-seconds",
    "2",
];

/// The done-when case of webhooks: a publish → record → clip → end
/// sequence, with a receiver that answers 500 at first and is down while
/// the server restarts, ends with every event delivered exactly once per
/// `webhook-id`, every signature valid, the media URL of a recording
/// playable with both tracks, and nothing sent to another organization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_reported_once_per_event_through_failures_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (log_a, log_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let port_a = port_outside_ephemeral_range();
    // 500 to everything until it goes away: every event waits across the
    // restart.
    let receiver_a = Receiver::start(port_a, &log_a, u32::MAX);
    let receiver_b = Receiver::start(port_outside_ephemeral_range(), &log_b, 0);

    let server = Server::builder().data_dir(&data).flags(FLAGS).start();
    let org = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    let key = org.api_key.as_str();
    let endpoint = create_endpoint(&server, key, &receiver_a.url(), &[])
        .await
        .unwrap();
    assert!(endpoint.secret.starts_with("whsec_"));
    assert!(!endpoint
        .event_types
        .iter()
        .any(|t| t == "thumbnail.created"));
    create_endpoint(&server, &other.api_key, &receiver_b.url(), &[])
        .await
        .unwrap();

    let stream = create_stream(&server, key, "cam", Some(recording_options(4)))
        .await
        .unwrap();
    let mut both = recording_options(4);
    both.replay = replay_options(30).replay;
    server
        .live()
        .await
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "cam".into(),
                processing: Some(both),
            },
            key,
        ))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    watch.until_state(pb::StreamState::Live, 20).await;
    within(20, "3 s in the replay buffer", async {
        loop {
            let stream = get_stream(&server, key, "cam").await.unwrap();
            if stream
                .replay_window
                .is_some_and(|w| secs(&w.duration) >= 3.0)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let clip = create_clip(&server, key, "cam", 3, "goal").await;
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(pb::StreamState::Ended, 20).await;
    let recordings = until_all_complete(&server, key, "cam", 30, |_| true).await;
    assert!(recordings.len() >= 2, "{recordings:?}");

    // The receiver has failed attempts by now; it goes away, the server
    // restarts, then the receiver comes back.
    within(20, "3 failed attempts", async {
        while statuses(&log_a).iter().filter(|s| **s == 500).count() < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    drop(receiver_a);
    server.stop();
    let server = Server::builder().data_dir(&data).flags(FLAGS).start();
    let _receiver_a = Receiver::start(port_a, &log_a, 0);

    let mut expected: BTreeMap<String, usize> = BTreeMap::from([
        ("stream.processing_changed".into(), 1),
        ("stream.live".into(), 1),
        ("stream.ended".into(), 1),
        ("replay_clip.ready".into(), 1),
    ]);
    expected.insert("recording.ready".into(), recordings.len());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let delivered = verified(&log_a, &endpoint.secret);
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for d in &delivered {
            *by_type.entry(d.event_type.clone()).or_default() += 1;
        }
        if by_type == expected {
            break delivered;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every event delivered in 120 s: {by_type:?}, expected {expected:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Exactly once per webhook-id, and the id is what the body reports.
    let ids: BTreeSet<&str> = delivered.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), delivered.len(), "one 2xx per webhook-id");
    for d in &delivered {
        assert_eq!(d.payload["type"], d.event_type.as_str());
        assert!(d.payload["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            !d.payload
                .to_string()
                .contains(&stream.ingest.as_ref().unwrap().stream_key),
            "the publish key is never sent"
        );
    }
    let of = |t: &'static str| delivered.iter().filter(move |d| d.event_type == t);
    let clip_event = of("replay_clip.ready").next().unwrap();
    assert_eq!(clip_event.payload["data"]["id"], clip.id.as_str());
    assert_eq!(clip_event.payload["data"]["title"], "goal");
    let live = of("stream.live").next().unwrap();
    assert_eq!(live.payload["data"]["id"], "cam");
    assert_eq!(live.payload["data"]["state"], "LIVE");
    let changed = of("stream.processing_changed").next().unwrap();
    assert_eq!(
        changed.payload["data"]["processing"]["replay"]["durationSeconds"],
        30
    );
    let listed: BTreeSet<&str> = recordings.iter().map(|r| r.id.as_str()).collect();
    let reported: BTreeSet<&str> = of("recording.ready")
        .map(|d| d.payload["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(reported, listed);

    // The recording's signed URL plays, with both tracks, without a key.
    let first = of("recording.ready").next().unwrap();
    let url = first.payload["data"]["url"].as_str().unwrap();
    let path = url
        .split_once("/v1/")
        .map(|(_, p)| format!("/v1/{p}"))
        .unwrap();
    let response = get(&server, &path, None).await;
    assert_eq!(response.status(), 200, "{url}");
    let probe = probe_av(&response.bytes().await.unwrap(), "recording.mp4");
    assert!(probe.video.is_some() && probe.audio.is_some(), "{probe:?}");

    // Every attempt is listed: the failed ones, and one delivery per
    // event (recorded just after the receiver answered).
    let deliveries = within(20, "every delivery listed", async {
        loop {
            let deliveries = webhooks(&server)
                .await
                .list_webhook_deliveries(authed(
                    pb::ListWebhookDeliveriesRequest {
                        endpoint_id: endpoint.id.clone(),
                        page_size: 1000,
                        ..Default::default()
                    },
                    key,
                ))
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            let done = deliveries
                .iter()
                .filter(|d| d.outcome() == pb::WebhookDeliveryOutcome::Delivered)
                .count();
            assert!(done <= delivered.len(), "delivered twice: {deliveries:?}");
            if done == delivered.len() {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(deliveries
        .iter()
        .any(|d| d.response_status == 500 && d.outcome() == pb::WebhookDeliveryOutcome::Retrying));
    // Events that failed before the restart were delivered after it.
    assert!(deliveries
        .iter()
        .any(|d| d.outcome() == pb::WebhookDeliveryOutcome::Delivered && d.attempt >= 2));

    // The other organization's receiver got nothing.
    assert!(
        statuses(&log_b).is_empty(),
        "another organization's endpoint got events"
    );
    server.stop();
}

/// What an endpoint may be: public addresses only unless the operator
/// allows more, known event types; another organization's endpoint is
/// NOT_FOUND; the secret is shown only when made; a test event arrives
/// signed by both secrets during a rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_checked_scoped_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.jsonl");
    let receiver = Receiver::start(port_outside_ephemeral_range(), &log, 0);
    let strict = Server::builder().start();
    let org = strict.create_org("acme", true).await;
    for (url, types) in [
        (receiver.url(), vec![]),
        ("http://169.254.169.254/latest".to_string(), vec![]),
        ("http://10.0.0.1/hook".to_string(), vec![]),
        ("file:///etc/passwd".to_string(), vec![]),
        ("https://user:pw@hooks.example.com/".to_string(), vec![]),
    ] {
        let refused = create_endpoint(&strict, &org.api_key, &url, &types)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{url}");
        assert!(refused.message().contains("url"), "{}", refused.message());
    }
    let unknown = create_endpoint(
        &strict,
        &org.api_key,
        "https://hooks.example.com/x",
        &["stream.nope"],
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("event_types"));
    strict.stop();

    let server = Server::builder().flags(FLAGS).start();
    let org = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    let endpoint = create_endpoint(
        &server,
        &org.api_key,
        &receiver.url(),
        &["thumbnail.created"],
    )
    .await
    .unwrap();
    assert_eq!(endpoint.event_types, vec!["thumbnail.created".to_string()]);
    let mut client = webhooks(&server).await;
    let listed = client
        .list_webhook_endpoints(authed(pb::ListWebhookEndpointsRequest {}, &org.api_key))
        .await
        .unwrap()
        .into_inner()
        .endpoints;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret.is_empty(), "the secret is shown once");
    let hidden = client
        .get_webhook_endpoint(authed(
            pb::GetWebhookEndpointRequest {
                endpoint_id: endpoint.id.clone(),
            },
            &other.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let rotated = client
        .rotate_webhook_secret(authed(
            pb::RotateWebhookSecretRequest {
                endpoint_id: endpoint.id.clone(),
                keep_previous_for: None,
            },
            &org.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.secret, endpoint.secret);
    assert!(rotated.previous_secret_expire_time.is_some());
    let sent = client
        .send_test_webhook(authed(
            pb::SendTestWebhookRequest {
                endpoint_id: endpoint.id.clone(),
            },
            &org.api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    // Each secret verifies the same delivery alone.
    for secret in [&endpoint.secret, &rotated.secret] {
        let delivered = within(20, "the test event", async {
            loop {
                let delivered = verified(&log, secret);
                if !delivered.is_empty() {
                    return delivered;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].id, sent.event_id);
        assert_eq!(delivered[0].event_type, "webhook.test");
        assert_eq!(
            delivered[0].payload["data"]["endpointId"],
            endpoint.id.as_str()
        );
    }
    server.stop();
}

async fn send_test(server: &Server, key: &str, endpoint_id: &str) -> String {
    webhooks(server)
        .await
        .send_test_webhook(authed(
            pb::SendTestWebhookRequest {
                endpoint_id: endpoint_id.into(),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .event_id
}

/// One organization's slow receiver (1.5 s per answer, 30 events queued:
/// about 12 s of work at 4 in flight) delays no other organization's
/// deliveries: the fast receiver has its event before the slow one has
/// answered its first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_delays_no_other_organization() {
    let dir = tempfile::tempdir().unwrap();
    let (slow_log, fast_log) = (dir.path().join("slow.jsonl"), dir.path().join("fast.jsonl"));
    let slow = Receiver::start_with(port_outside_ephemeral_range(), &slow_log, 0, 1.5);
    let fast = Receiver::start(port_outside_ephemeral_range(), &fast_log, 0);
    // A timeout well above the receiver's 1.5 s: its answers are slow,
    // not failed.
    let server = Server::builder()
        .flags(&[
            "--webhook-allow",
            "127.0.0.1",
            "--webhook-timeout-seconds",
            "10",
        ])
        .start();
    let a = server.create_org("slow", true).await;
    let b = server.create_org("fast", true).await;
    let slow_endpoint = create_endpoint(&server, &a.api_key, &slow.url(), &[])
        .await
        .unwrap();
    let fast_endpoint = create_endpoint(&server, &b.api_key, &fast.url(), &[])
        .await
        .unwrap();
    for _ in 0..30 {
        send_test(&server, &a.api_key, &slow_endpoint.id).await;
    }
    let started = std::time::Instant::now();
    let sent = send_test(&server, &b.api_key, &fast_endpoint.id).await;
    let delivered = within(20, "the fast receiver's event", async {
        loop {
            let delivered = verified(&fast_log, &fast_endpoint.secret);
            if !delivered.is_empty() {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let took = started.elapsed();
    assert_eq!(delivered[0].id, sent);
    let slow_done = verified(&slow_log, &slow_endpoint.secret).len();
    assert!(
        slow_done <= 4,
        "the fast event waited for {slow_done} slow deliveries ({took:?})"
    );
    assert!(
        took < Duration::from_millis(1500),
        "the fast event took {took:?}"
    );
    // The slow organization's events all arrive too, in their time.
    let all_slow = tokio::time::timeout(Duration::from_secs(60), async {
        while verified(&slow_log, &slow_endpoint.secret).len() < 30 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    if all_slow.is_err() {
        let deliveries = webhooks(&server)
            .await
            .list_webhook_deliveries(authed(
                pb::ListWebhookDeliveriesRequest {
                    endpoint_id: slow_endpoint.id.clone(),
                    page_size: 1000,
                    ..Default::default()
                },
                &a.api_key,
            ))
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        let log = server.log();
        let webhook_lines: Vec<&str> = log.lines().filter(|l| l.contains("webhook")).collect();
        panic!(
            "timed out after 60 s waiting for the slow receiver's 30 events; {} verified\n\
             attempts: {deliveries:#?}\nserver log:\n{}",
            verified(&slow_log, &slow_endpoint.secret).len(),
            webhook_lines.join("\n")
        );
    }
    // Concurrent deliveries to one endpoint record their attempts one
    // after the other, never in a deadlock that the registry breaks.
    let log = server.log();
    let deadlocks: Vec<&str> = log.lines().filter(|l| l.contains("deadlock")).collect();
    assert!(deadlocks.is_empty(), "deadlocks: {deadlocks:#?}");
    server.stop();
}

/// `thumbnail.created` (opt-in) and `motion_clip.created`: one event per
/// thumbnail and clip of a real session, whose signed URLs give a JPEG
/// of the stream's size that is not blank, and a clip with video; an
/// endpoint that did not name thumbnails gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_and_motion_clips_are_reported_with_their_media() {
    let dir = tempfile::tempdir().unwrap();
    let (media_log, default_log) = (
        dir.path().join("media.jsonl"),
        dir.path().join("default.jsonl"),
    );
    let media_receiver = Receiver::start(port_outside_ephemeral_range(), &media_log, 0);
    let default_receiver = Receiver::start(port_outside_ephemeral_range(), &default_log, 0);
    let server = Server::builder().flags(FLAGS).start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let media = create_endpoint(
        &server,
        key,
        &media_receiver.url(),
        &["thumbnail.created", "motion_clip.created"],
    )
    .await
    .unwrap();
    let default = create_endpoint(&server, key, &default_receiver.url(), &[])
        .await
        .unwrap();

    let mut processing = thumbnails_every_10s();
    processing.motion_clip = Some(pb::MotionClipOptions {
        enabled: true,
        duration_seconds: 2,
        interval_seconds: 10,
        format: pb::ClipFormat::Mp4 as i32,
        width: 0,
    });
    publish_session(&server, key, "cam", Some(processing), test_ts()).await;
    let wanted = |d: &Vec<Delivered>, t: &str| d.iter().filter(|e| e.event_type == t).count();
    let delivered = within(30, "a thumbnail and a motion clip reported", async {
        loop {
            let delivered = verified(&media_log, &media.secret);
            if wanted(&delivered, "thumbnail.created") >= 1
                && wanted(&delivered, "motion_clip.created") >= 1
            {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(delivered
        .iter()
        .all(|d| d.event_type == "thumbnail.created" || d.event_type == "motion_clip.created"));
    let media_of = |event: &Delivered| {
        let url = event.payload["data"]["url"].as_str().unwrap().to_string();
        assert!(
            event.payload["data"].get("data").is_none(),
            "no media bytes in the payload"
        );
        assert_eq!(event.payload["data"]["streamId"], "cam");
        url.split_once("/v1/")
            .map(|(_, p)| format!("/v1/{p}"))
            .unwrap()
    };
    let thumbnail = delivered
        .iter()
        .find(|d| d.event_type == "thumbnail.created")
        .unwrap();
    let response = get(&server, &media_of(thumbnail), None).await;
    assert_eq!(response.status(), 200);
    let image = image::load_from_memory_with_format(
        &response.bytes().await.unwrap(),
        image::ImageFormat::Jpeg,
    )
    .unwrap()
    .to_rgb8();
    assert_eq!(
        (image.width(), image.height()),
        (
            thumbnail.payload["data"]["width"].as_u64().unwrap() as u32,
            thumbnail.payload["data"]["height"].as_u64().unwrap() as u32
        )
    );
    assert!(spread(image.as_raw()) > 20.0, "the thumbnail looks blank");
    let clip = delivered
        .iter()
        .find(|d| d.event_type == "motion_clip.created")
        .unwrap();
    let response = get(&server, &media_of(clip), None).await;
    assert_eq!(response.status(), 200);
    let probe = probe_av(&response.bytes().await.unwrap(), "motion.mp4");
    assert!(probe.video.is_some(), "{probe:?}");

    // The default endpoint took the session's events but no thumbnail.
    let others = within(20, "the session's events", async {
        loop {
            let delivered = verified(&default_log, &default.secret);
            if delivered.iter().any(|d| d.event_type == "stream.ended") {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(!others.iter().any(|d| d.event_type == "thumbnail.created"));
    assert!(others.iter().any(|d| d.event_type == "motion_clip.created"));
    server.stop();
}

/// An endpoint whose every attempt fails for the retry period is
/// disabled, and `WatchWebhookEndpoints` tells the organization; enabled
/// again, it is told too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_and_its_watchers_told() {
    let server = Server::builder()
        .flags(FLAGS)
        .flags(&["--webhook-retry-for-seconds", "10"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let mut client = webhooks(&server).await;
    let mut watch = client
        .watch_webhook_endpoints(authed(pb::WatchWebhookEndpointsRequest {}, key))
        .await
        .unwrap()
        .into_inner();
    // Nobody listens there.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let endpoint = create_endpoint(&server, key, &url, &[]).await.unwrap();
    let created = next_event(&mut watch).await;
    assert_eq!(created.kind(), pb::webhook_endpoint_event::Kind::Changed);
    assert!(created.endpoint.as_ref().unwrap().enabled);
    assert!(created.endpoint.as_ref().unwrap().secret.is_empty());
    send_test(&server, key, &endpoint.id).await;
    let disabled = loop {
        let event = next_event(&mut watch).await;
        let shown = event.endpoint.unwrap();
        if !shown.enabled {
            break shown;
        }
    };
    assert_eq!(disabled.id, endpoint.id);
    assert!(
        disabled.disabled_reason.contains("every delivery failed"),
        "{}",
        disabled.disabled_reason
    );
    client
        .update_webhook_endpoint(authed(
            pb::UpdateWebhookEndpointRequest {
                endpoint_id: endpoint.id.clone(),
                enabled: Some(true),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap();
    let enabled = next_event(&mut watch).await;
    assert!(enabled.endpoint.unwrap().enabled);
    // Enabled again, its next failure starts a new run: it stays enabled.
    let retest = send_test(&server, key, &endpoint.id).await;
    within(20, "the new event's failed attempt", async {
        loop {
            let deliveries = client
                .list_webhook_deliveries(authed(
                    pb::ListWebhookDeliveriesRequest {
                        endpoint_id: endpoint.id.clone(),
                        ..Default::default()
                    },
                    key,
                ))
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            if deliveries.iter().any(|d| d.event_id == retest) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let after = client
        .get_webhook_endpoint(authed(
            pb::GetWebhookEndpointRequest {
                endpoint_id: endpoint.id.clone(),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        after.enabled,
        "disabled again at once: {}",
        after.disabled_reason
    );
    server.stop();
}

async fn next_event(
    watch: &mut tonic::Streaming<pb::WebhookEndpointEvent>,
) -> pb::WebhookEndpointEvent {
    within(30, "an endpoint event", watch.message())
        .await
        .unwrap()
        .expect("the watch goes on")
}
