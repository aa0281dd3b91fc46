//! The demo of `make run` (`serve --demo`): its stream, fed by the built-in
//! test pattern, must give what a real encoder's stream gives. Its
//! recordings, replay clips, replay segments and motion clips are checked
//! track by track, audio as well as video, for their whole length.

mod common;

use std::time::Duration;

use common::*;
use liveproc::proto::v1 as pb;
use pb::replay_start::Start;

/// The test pattern's GOP (x264enc key-int-max=60 at 30 fps).
const PATTERN_GOP_S: f64 = 2.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_streams_outputs_keep_their_audio() {
    let server = Server::builder().flags(&["--demo"]).start();
    let key = std::fs::read_to_string(server.data_dir.join("demo.key"))
        .expect("the demo writes its organization's key")
        .trim()
        .to_string();
    let mut live = server.live().await;

    // Short recording segments, so that one completes soon; everything
    // else as the demo sets it.
    let stream = get_stream(&server, &key, "demo").await.unwrap();
    let mut processing = stream.processing.expect("demo processing");
    processing.recording = Some(pb::RecordingOptions {
        enabled: true,
        duration_seconds: 4,
        entire_stream: false,
    });
    live.update_processing(authed(
        pb::UpdateProcessingRequest {
            stream_id: "demo".into(),
            processing: Some(processing),
        },
        &key,
    ))
    .await
    .expect("update the demo's recording");

    // Replay segments from the oldest GOP: each decodes alone, with audio.
    let mut replay = live
        .subscribe_replay(authed(
            pb::SubscribeReplayRequest {
                stream_id: "demo".into(),
                start: Some(pb::ReplayStart {
                    start: Some(Start::Earliest(true)),
                }),
                format: pb::SegmentFormat::MpegTs as i32,
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut buffered = 0.0;
    let mut joined = vec![];
    while buffered < 10.0 {
        let segment = within(30, "a replay segment", replay.message())
            .await
            .unwrap()
            .expect("replay ended");
        let seconds = secs(&segment.duration);
        probe_av(&segment.data, "gop.ts").assert_audio_and_video(
            &format!("demo replay segment {}", segment.sequence),
            seconds,
            0.25,
        );
        buffered += seconds;
        joined.extend_from_slice(&segment.data);
    }
    probe_av(&joined, "joined.ts").assert_audio_and_video(
        "demo replay segments joined",
        buffered,
        PATTERN_GOP_S,
    );

    // "The last 6 seconds" as a clip.
    let clip = live
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: "demo".into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(6)),
                duration_seconds: 6,
                title: "demo".into(),
                end_time: None,
            },
            &key,
        ))
        .await
        .expect("a replay clip of the demo")
        .into_inner();
    let data = download_clip(&server, &key, &clip.id).await;
    probe_av(&data, "clip.mp4").assert_audio_and_video(
        "demo replay clip",
        secs(&clip.duration),
        PATTERN_GOP_S,
    );

    // A motion clip (the demo's: MP4, 3 s every 10 s).
    let mut clips = live
        .subscribe_motion_clips(authed(
            pb::SubscribeMotionClipsRequest {
                stream_id: "demo".into(),
                send_latest: true,
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let motion = within(30, "a motion clip", clips.message())
        .await
        .unwrap()
        .expect("motion clips ended");
    probe_av(&motion.data, "motion.mp4").assert_audio_and_video(
        "demo motion clip",
        secs(&motion.duration),
        PATTERN_GOP_S,
    );

    // A whole recording segment.
    let recording = within(60, "a complete recording", async {
        loop {
            let recordings = list_recordings(&server, &key, "demo").await;
            // The first file may have been cut short by the option change.
            if let Some(r) = recordings
                .into_iter()
                .find(|r| r.state() == pb::RecordingState::Complete && secs(&r.duration) >= 3.5)
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let data = download_recording(&server, &key, &recording.id, 0).await;
    probe_av(&data, "recording.mp4").assert_audio_and_video(
        "demo recording",
        secs(&recording.duration),
        PATTERN_GOP_S,
    );
}
