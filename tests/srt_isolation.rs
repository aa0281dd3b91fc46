//! Streams sharing the SRT port do not hold each other up. In a binary of
//! its own, so that no other test's load runs beside it: what it measures
//! is time.

mod common;

use common::*;
use liveproc::proto::v1 as pb;

/// One SRT publisher that bursts (25 s of media sent as fast as the
/// network takes it, as a misbehaving encoder or a restream would) must
/// not delay the others sharing the SRT port: every second of the burst,
/// each real-time stream keeps receiving its ~30 frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bursting_srt_publisher_does_not_delay_the_others() {
    const STEADY: usize = 5;
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let all = pb::ProcessingOptions {
        replay: replay_options(30).replay,
        recording: recording_options(0).recording,
        ..Default::default()
    };
    let mut steady = vec![];
    for i in 0..STEADY {
        let stream = create_stream(&server, key, &format!("s{i}"), Some(all))
            .await
            .unwrap();
        steady.push(srt_publish(&server.srt_url(&stream), test_ts_25s()));
    }
    let burst = create_stream(&server, key, "burst", Some(all))
        .await
        .unwrap();
    let frames = |id: String| {
        let server = &server;
        async move { video_frames(server, key, &id).await }
    };
    // Let the steady streams settle, then burst.
    within(30, "the steady streams to go live", async {
        loop {
            let mut live = 0;
            for i in 0..STEADY {
                if frames(format!("s{i}")).await > 60 {
                    live += 1;
                }
            }
            if live == STEADY {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    let burster = srt_publish_fast(&server.srt_url(&burst), test_ts_25s());
    // Frames of every steady stream, sampled through the burst.
    let started = std::time::Instant::now();
    let mut samples: Vec<(f64, Vec<u64>)> = vec![];
    while started.elapsed() < std::time::Duration::from_secs(6) {
        let mut counts = vec![];
        for i in 0..STEADY {
            counts.push(frames(format!("s{i}")).await);
        }
        samples.push((started.elapsed().as_secs_f64(), counts));
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let burst_frames = frames("burst".into()).await;
    // Over every span of at least 1 s, each steady stream gained at least
    // two thirds of real time (30 fps).
    for (a, (ta, ca)) in samples.iter().enumerate() {
        let Some((tb, cb)) = samples[a..].iter().find(|(tb, _)| tb - ta >= 1.0) else {
            break;
        };
        for i in 0..STEADY {
            let rate = (cb[i] - ca[i]) as f64 / (tb - ta);
            assert!(
                rate >= 20.0,
                "stream s{i} got {rate:.1} frames/s between {ta:.2} s and {tb:.2} s of the burst"
            );
        }
    }
    assert!(
        burst_frames > 300,
        "the burst came in fast: {burst_frames} frames"
    );
    let _ = wait_child(burster).await;
    for child in steady {
        assert!(within(60, "ffmpeg", wait_child(child)).await.success());
    }
}
