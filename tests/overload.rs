//! A node given more SRT publishers than it can take degrades instead of
//! collapsing: it refuses the publishers past its capacity and may end
//! its newest sessions, each with a reason, and no session it keeps ends
//! by itself. The server is held to a small share of one core by a CPU
//! cgroup, so that a few dozen 360p streams are about twice what fits.
//! In a binary of its own: nothing else may load the machine meanwhile.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cgroup::CpuLimit;
use common::fate::{tally, Fate};
use common::*;
use liveproc::proto::v1 as pb;

/// The server's share of one core.
const QUOTA_PERCENT: u32 = 5;
/// Publishers: about twice what fits in the quota (about 20 streams of
/// 360p with every feature, measured with `bench/overload_probe.sh`).
const PUBLISHERS: usize = 36;
/// One more publisher comes every...
const ARRIVAL: Duration = Duration::from_millis(250);
/// How long the node holds them all once the last has come.
const HOLD: Duration = Duration::from_secs(30);

/// An encoder publishing in real time for as long as it is let.
fn publish_forever(url: &str) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "quiet",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(test_ts_25s())
        .args(["-c", "copy", "-f", "mpegts", url])
        .stdin(Stdio::null())
        // libsrt writes each rejection there, whatever ffmpeg's log level.
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_node_refuses_and_sheds_the_newest_and_keeps_the_rest() {
    let server = Server::builder()
        .flags(&[
            "--srt-receive-threads",
            "1",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .start();
    let Some(_limit) = CpuLimit::hold(server.pid(), QUOTA_PERCENT) else {
        return;
    };
    let org = server.create_org("Acme", true).await;
    let key = org.api_key.as_str();
    let every_feature = pb::ProcessingOptions {
        replay: replay_options(30).replay,
        recording: recording_options(10).recording,
        motion_clip: Some(pb::MotionClipOptions {
            enabled: true,
            duration_seconds: 2,
            interval_seconds: 10,
            ..Default::default()
        }),
        ..thumbnails_every_10s()
    };
    let mut publishers = BTreeMap::new();
    for i in 0..PUBLISHERS {
        let id = format!("s{i:02}");
        let stream = create_stream(&server, key, &id, Some(every_feature))
            .await
            .unwrap();
        publishers.insert(id, publish_forever(&server.srt_url(&stream)));
        tokio::time::sleep(ARRIVAL).await;
    }
    tokio::time::sleep(HOLD - Duration::from_secs(10)).await;
    let mut frames_before = BTreeMap::new();
    for id in publishers.keys() {
        let frames = video_frames(&server, key, id).await;
        frames_before.insert(id.clone(), (frames, std::time::Instant::now()));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;

    // The node may shed one more while the fates are read: its count
    // before and after brackets what they say.
    let shed_before = metric(&server, "liveproc_sessions_shed_total ").await;
    let mut fates = BTreeMap::new();
    for (id, publisher) in &mut publishers {
        let gone = publisher
            .try_wait()
            .unwrap()
            .map(|status| format!("gone ({status})"));
        fates.insert(id.clone(), Fate::of(&server, key, id, gone).await);
    }
    // Frames a second each kept stream received since then (a server
    // held to 5 % of a core answers slowly: each stream's own interval).
    let mut kept_rate = BTreeMap::new();
    for (id, fate) in &fates {
        if *fate == Fate::Kept {
            let (before, at) = frames_before[id];
            let frames = video_frames(&server, key, id).await - before;
            let rate = frames as f64 / at.elapsed().as_secs_f64();
            kept_rate.insert(id.clone(), (rate * 10.0).round() / 10.0);
        }
    }
    let refused_metric = metric(
        &server,
        r#"liveproc_sessions_refused_total{reason="overloaded"}"#,
    )
    .await;
    let shed_metric = metric(&server, "liveproc_sessions_shed_total ").await;
    let dropped = metric(&server, "liveproc_srt_dropped_datagrams_total ").await;
    for publisher in publishers.values_mut() {
        let _ = publisher.kill();
        let _ = publisher.wait();
    }
    let (kept, refused, shed, lost) = tally(fates.values());
    eprintln!(
        "{PUBLISHERS} publishers at {QUOTA_PERCENT} % of a core: {kept} kept, {refused} refused, \
         {shed} shed; kernel drops {dropped}; frames a second of the kept: {kept_rate:?}"
    );

    assert!(
        lost.is_empty(),
        "sessions that ended by themselves: {lost:?}"
    );
    assert!(refused > 0, "the node was never overloaded: {fates:?}");
    assert!(
        kept >= PUBLISHERS / 3,
        "the node kept only {kept} of {PUBLISHERS}: {fates:?}"
    );
    // Every refusal and shedding was said, in the log and the metrics.
    let log = server.log();
    let rejected = log
        .lines()
        .filter(|l| l.contains("SRT caller rejected") && l.contains("overloaded"))
        .count();
    assert!(
        rejected >= refused,
        "{rejected} refusals logged for {refused} refused"
    );
    assert!(refused_metric >= refused as f64, "{refused_metric}");
    let shed_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ended its newest session"))
        .collect();
    assert!(
        (shed_before..=shed_metric).contains(&(shed as f64)),
        "{shed} shed, {shed_before}..{shed_metric} by the metric: {shed_lines:#?} {fates:?}"
    );
    for (id, fate) in &fates {
        if *fate == Fate::Shed {
            assert!(
                log.lines()
                    .any(|l| l.contains("ended its newest session")
                        && l.contains(&format!("/{id} "))),
                "{id} was shed without a log line"
            );
        }
    }
    // The kernel never chose what to drop, and the kept streams kept
    // coming in real time (30 frames a second; measured 29.6 to 30.6).
    assert_eq!(dropped, 0.0, "the kernel dropped SRT datagrams");
    for (id, rate) in &kept_rate {
        assert!(*rate >= 25.0, "{id} received {rate} frames a second");
    }
}
