//! What the operator sees: `/metrics` on its own address, checked by
//! Prometheus's own `promtool` and scraped before and after a real
//! session to see the values move; and JSON logs whose session lines
//! carry the stream and organization.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use liveproc::proto::v1 as pb;

/// The samples of a scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(server: &Server) -> String {
    let addr = server.metrics.expect("started with --metrics-listen");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

/// `promtool check metrics` on a scrape: the format and the naming
/// conventions of Prometheus.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package: make deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

/// A scrape before and after a real SRT session with thumbnails and
/// recording: promtool passes both, and ingest, frames, recording bytes,
/// thumbnail latency, streams by state, gRPC and HTTP requests and the
/// process's CPU all moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_move_with_a_session() {
    let server = Server::builder()
        .flags(&["--metrics-listen", "127.0.0.1:0"])
        .start();
    let before_text = scrape(&server).await;
    promtool_check(&before_text);
    // What Prometheus itself asks for.
    let open = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.metrics.unwrap()))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(open.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(open.text().await.unwrap().ends_with("# EOF\n"));
    let before = samples(&before_text);

    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let mut processing = thumbnails_every_10s();
    processing.recording = recording_options(4).recording;
    publish_session(&server, key, "cam", Some(processing), test_ts()).await;
    until_all_complete(&server, key, "cam", 30, |_| true).await;
    let thumbnail = get(&server, "/v1/streams/cam/thumbnail.jpg", Some(key)).await;
    assert_eq!(thumbnail.status(), 200);
    let missing = get(&server, "/v1/streams/nope/thumbnail.jpg", Some(key)).await;
    assert_eq!(missing.status(), 404);

    let after_text = scrape(&server).await;
    promtool_check(&after_text);
    let after = samples(&after_text);
    let grew = |name: &str| {
        assert!(
            value(&after, name) > value(&before, name),
            "{name}: {} → {}\n{after_text}",
            value(&before, name),
            value(&after, name)
        )
    };
    grew("liveproc_ingest_bytes_total{protocol=\"srt\"}");
    grew("liveproc_ingest_frames_total{track=\"video\"}");
    grew("liveproc_ingest_frames_total{track=\"audio\"}");
    grew("liveproc_recording_bytes_written_total");
    grew("liveproc_thumbnail_latency_seconds_count");
    grew("liveproc_ingest_lag_seconds_count");
    grew("liveproc_job_seconds_count{lane=\"still\"}");
    grew("process_cpu_seconds_total");
    grew("liveproc_grpc_requests_total{method=\"/liveproc.v1.LiveProcessing/CreateStream\",code=\"Ok\"}");
    grew("liveproc_http_requests_total{route=\"/v1/streams/{stream_id}/{file}\",status=\"200\"}");
    grew("liveproc_http_requests_total{route=\"/v1/streams/{stream_id}/{file}\",status=\"404\"}");
    assert_eq!(value(&after, "liveproc_streams{state=\"ended\"}"), 1.0);
    assert_eq!(value(&after, "liveproc_sessions{protocol=\"srt\"}"), 0.0);
    assert!(value(&after, "process_resident_memory_bytes") > 10e6);
    assert!(value(&after, "process_open_fds") > 5.0);
    // Ingest is ahead of real time at most by the pacing lead: the lag
    // of a keyframe reaching the features stays under a second.
    let lag_sum = value(&after, "liveproc_ingest_lag_seconds_sum");
    let lag_count = value(&after, "liveproc_ingest_lag_seconds_count");
    assert!(
        lag_sum / lag_count < 1.0,
        "mean ingest lag {lag_sum}/{lag_count}"
    );
    server.stop();
}

/// `--log-format json`: every line is a JSON object, and the lines of a
/// session name its stream and organization as fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_stream_and_organization() {
    let server = Server::builder()
        .flags(&["--log-format", "json"])
        .log_filter("info")
        .start();
    let org = server.create_org("acme", true).await;
    publish_session(
        &server,
        &org.api_key,
        "cam",
        Some(pb::ProcessingOptions::default()),
        test_ts(),
    )
    .await;
    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let connected = lines
        .iter()
        .find(|l| l["message"] == "publisher connected")
        .expect("the session's first line");
    assert_eq!(connected["span"]["organization"], org.id.as_str());
    assert_eq!(connected["span"]["stream"], "cam");
    assert_eq!(connected["span"]["ingest"], "srt");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    server.stop();
}
