//! Storage that outlives one machine: the registry in PostgreSQL and the
//! media in S3 (SeaweedFS), both real servers started by the tests.
//!
//! The machine is lost: a server recording a live stream is killed and
//! its data dir deleted; a fresh node on the same database and bucket
//! lists every recording, and each plays (both tracks) from object
//! storage, the live one short of at most its last seconds. Wrong
//! credentials or a missing bucket stop the server at start, with a
//! clear error and no secret in it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use liveproc::proto::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;

/// The health service of object storage.
const OBJECT_STORAGE: &str = "liveproc.ObjectStorage";

/// Frames the server has taken of the stream `cam`.
async fn frames(server: &Server, key: &str) -> u64 {
    get_stream(server, key, "cam")
        .await
        .unwrap()
        .ingest_stats
        .map_or(0, |s| s.video_frames)
}

/// Waits (at most `secs`) until the server has taken `at_least` frames
/// of `cam`; returns how many it has.
async fn until_frames(server: &Server, key: &str, at_least: u64, secs: u64) -> u64 {
    within(secs, &format!("{at_least} frames"), async {
        loop {
            let frames = frames(server, key).await;
            if frames >= at_least {
                return frames;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_machine_loses_at_most_the_last_seconds_of_a_recording() {
    let database = postgres::shared().new_database().await;
    let store = s3::shared().store_url(&format!("lost-{}", rand_suffix()));
    let lost = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(&lost.path().join("data"))
        .database_url(&database)
        .object_store(&store)
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let stream = create_stream(&server, &key, "cam", Some(recording_options(4)))
        .await
        .unwrap();
    let mut ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    // About 14 s: three whole 4 s files and a live one.
    let received = until_frames(&server, &key, 420, 40).await;
    // The machine and its disk are gone.
    server.kill9();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    std::fs::remove_dir_all(lost.path()).unwrap();

    let node = Server::builder()
        .database_url(&database)
        .object_store(&store)
        .start();
    let recordings = list_recordings(&node, &key, "cam").await;
    assert!(recordings.len() >= 4, "{recordings:?}");
    let mut playable = 0.0;
    for recording in &recordings {
        assert!(
            matches!(
                recording.state(),
                pb::RecordingState::Complete | pb::RecordingState::Recovered
            ),
            "{recording:?}"
        );
        let file = download_recording(&node, &key, &recording.id, 0).await;
        assert_eq!(file.len() as u64, recording.size_bytes, "{recording:?}");
        let listed = secs(&recording.duration);
        let probe = probe_av(&file, &recording.id);
        probe.assert_audio_and_video(&recording.id, listed, 0.5);
        playable += listed;
    }
    let received = received as f64 / 30.0;
    eprintln!(
        "machine lost: {received:.2} s received before the kill, {playable:.2} s playable on the new node"
    );
    assert!(
        playable >= received - 10.0,
        "{playable} s playable of {received} s received"
    );

    // Byte ranges come from the objects too.
    let last = recordings.last().unwrap();
    let whole = download_recording(&node, &key, &last.id, 0).await;
    let tail = download_recording(&node, &key, &last.id, 1000).await;
    assert_eq!(&whole[1000..], &tail[..]);
    let url = format!("http://{}/v1/recordings/{}.mp4", node.grpc, last.id);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&key)
        .header("Range", "bytes=100-4099")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 100-4099/{}", whole.len()).as_str()
    );
    assert_eq!(&response.bytes().await.unwrap()[..], &whole[100..4100]);
}

/// Runs `liveproc serve` with object storage at `store` and `env`, and
/// returns its exit status and log; it must not get ready.
fn serve_expecting_failure(store: &str, env: &[(String, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_liveproc"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--srt-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--object-store", store])
        .env("LIVEPROC_ADMIN_KEY", ADMIN_KEY)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(!stdout.contains("liveproc ready"), "{stdout}");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_or_bucket_stop_the_server_at_start() {
    let s3 = s3::shared();
    let mut wrong_secret = s3.env();
    for (name, value) in &mut wrong_secret {
        if name == "AWS_SECRET_ACCESS_KEY" {
            *value = "not-the-secret-4b1d".into();
        }
    }
    let (ok, log) = serve_expecting_failure(&s3.store_url("x"), &wrong_secret);
    assert!(!ok);
    assert!(log.contains("cannot write"), "{log}");
    assert!(log.contains("credentials"), "{log}");
    assert!(!log.contains("not-the-secret-4b1d"), "{log}");

    let (ok, log) = serve_expecting_failure("s3://no-such-bucket/x", &s3.env());
    assert!(!ok);
    assert!(log.contains("no-such-bucket"), "{log}");
    assert!(!log.contains(s3::S3_SECRET_KEY), "{log}");

    // The same with everything right starts.
    let server = Server::builder()
        .object_store(&s3.store_url(&format!("ok-{}", rand_suffix())))
        .start();
    assert!(
        server.log().contains("object storage checked"),
        "{}",
        server.log()
    );
}

/// `liveproc migrate` on `data`; its output.
fn migrate(data: &std::path::Path, database: &str, store: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liveproc"))
        .arg("migrate")
        .arg("--data-dir")
        .arg(data)
        .args(["--database-url", database, "--object-store", store])
        .envs(s3::shared().env())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_data_dir_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A single node with its own data dir: recordings and a replay clip.
    // (Empty settings: the embedded registry and local files, whatever
    // the run's defaults.)
    let server = Server::builder()
        .data_dir(&data)
        .database_url("")
        .object_store("")
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let mut options = recording_options(4);
    options.replay = replay_options(30).replay;
    let stream = create_stream(&server, &key, "cam", Some(options))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    until_frames(&server, &key, 180, 30).await;
    let clip = create_clip(&server, &key, "cam", 3, "goal").await;
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    let recordings = within(30, "the recordings to close", async {
        loop {
            let listed = list_recordings(&server, &key, "cam").await;
            if !listed.is_empty()
                && listed
                    .iter()
                    .all(|r| r.state() != pb::RecordingState::Recording)
            {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let mut originals = vec![];
    for r in &recordings {
        originals.push(download_recording(&server, &key, &r.id, 0).await);
    }
    let clip_original = download_clip(&server, &key, &clip.id).await;
    server.stop();

    let database = postgres::shared().new_database().await;
    let store = s3::shared().store_url(&format!("migrated-{}", rand_suffix()));
    let first = migrate(&data, &database, &store);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let copied = recordings.len() + 1;
    assert!(
        said.contains(&format!(
            "{} recordings, 1 clips; {copied} files copied and verified",
            recordings.len()
        )),
        "{said}"
    );
    // Again: nothing is copied twice.
    let again = migrate(&data, &database, &store);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "0 files copied and verified (0 bytes), {copied} already in the store"
        )),
        "{said}"
    );

    // A new node with nothing of its own serves everything, with the
    // organization's key as it was.
    let node = Server::builder()
        .database_url(&database)
        .object_store(&store)
        .start();
    let listed = list_recordings(&node, &key, "cam").await;
    assert_eq!(listed.len(), recordings.len());
    for (r, original) in listed.iter().zip(&originals) {
        let copy = download_recording(&node, &key, &r.id, 0).await;
        assert!(
            &copy == original,
            "recording {} differs after the move",
            r.id
        );
    }
    assert!(download_clip(&node, &key, &clip.id).await == clip_original);
    get_stream(&node, &key, "cam").await.unwrap();
}

/// The files in a stream's local recordings folder (the spool).
fn spooled(server: &Server, org: &str) -> usize {
    std::fs::read_dir(server.data_dir.join("recordings").join(org).join("cam"))
        .map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_wait_in_the_spool_while_the_store_is_down() {
    let mut s3 = s3::S3Server::start();
    // Replay keeps the whole stream, its newest 3 s in memory.
    let server = Server::builder()
        .object_store_on(&s3, &s3.store_url("outage"))
        .flags(&["--replay-memory-seconds", "3"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let options = pb::ProcessingOptions {
        replay: replay_options(0).replay,
        ..recording_options(4)
    };
    let stream = create_stream(&server, &key, "cam", Some(options))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    until_frames(&server, &key, 90, 30).await;

    // The store goes away for about 10 s of the stream.
    s3.stop();
    health_until(&server, OBJECT_STORAGE, ServingStatus::NotServing, 20).await;
    until_frames(&server, &key, 390, 40).await;
    let waiting = spooled(&server, &org.id);
    assert!(waiting >= 2, "{waiting} files in the spool");
    // Replay media the store does not take goes to the local disk.
    let local_gops = std::fs::read_dir(server.data_dir.join("replay").join(&org.id).join("cam"))
        .map_or(0, |d| d.count());
    assert!(local_gops >= 1, "{local_gops} replay GOPs spilled locally");
    // The stream itself never noticed.
    let live = get_stream(&server, &key, "cam").await.unwrap();
    assert_eq!(live.state(), pb::StreamState::Live);

    s3.restart();
    health_until(&server, OBJECT_STORAGE, ServingStatus::Serving, 30).await;
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    // Everything goes up, and the spool empties.
    within(60, "the spool to empty", async {
        while spooled(&server, &org.id) > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let recordings = list_recordings(&server, &key, "cam").await;
    let mut total = 0.0;
    for recording in &recordings {
        assert_eq!(
            recording.state(),
            pb::RecordingState::Complete,
            "{recording:?}"
        );
        let file = download_recording(&server, &key, &recording.id, 0).await;
        let listed = secs(&recording.duration);
        probe_av(&file, &recording.id).assert_audio_and_video(&recording.id, listed, 0.5);
        total += listed;
    }
    eprintln!(
        "store down ~10 s: {} files, {total:.2} s of 25 s playable from the store",
        recordings.len()
    );
    assert!((total - 25.0).abs() <= 1.0, "{total} s recorded of 25 s");

    // The replay buffer, spilled partly to the store and partly to the
    // disk, replays the whole stream.
    let replay = replay_from_start(&server, &key).await;
    probe_av(&replay, "replay.ts").assert_audio_and_video("replay across the outage", 25.0, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_answers_unavailable_and_loses_no_recording() {
    let mut pg = postgres::PgServer::start();
    let database = pg.new_database().await;
    let server = Server::builder().database_url(&database).start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.clone();
    let stream = create_stream(&server, &key, "cam", Some(recording_options(4)))
        .await
        .unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    until_frames(&server, &key, 90, 30).await;

    pg.stop();
    let started = std::time::Instant::now();
    let refused = get_stream(&server, &key, "cam").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!refused.message().contains(postgres::PG_PASSWORD));
    health_until(
        &server,
        "liveproc.v1.LiveProcessing",
        ServingStatus::NotServing,
        20,
    )
    .await;
    // Files are cut meanwhile (every 4 s): two close while the database
    // is down, and their catalogue entries wait.
    let closed = |server: &Server| server.log().matches("recording file closed").count();
    let before = closed(&server);
    within(30, "two files closed while the database is down", async {
        while closed(&server) < before + 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;

    pg.restart();
    health_until(
        &server,
        "liveproc.v1.LiveProcessing",
        ServingStatus::Serving,
        30,
    )
    .await;
    get_stream(&server, &key, "cam").await.unwrap();
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    let recordings = until_all_complete(&server, &key, "cam", 30, |_| true).await;
    let total: f64 = recordings.iter().map(|r| secs(&r.duration)).sum();
    eprintln!(
        "database down for two files: {} files, {total:.2} s of 25 s catalogued",
        recordings.len()
    );
    assert!((total - 25.0).abs() <= 1.0, "{total} s catalogued of 25 s");
    for recording in &recordings {
        let file = download_recording(&server, &key, &recording.id, 0).await;
        probe_av(&file, &recording.id).assert_audio_and_video(
            &recording.id,
            secs(&recording.duration),
            0.5,
        );
    }
}

/// `cam`'s whole replay buffer, as joined MPEG-TS segments.
async fn replay_from_start(server: &Server, key: &str) -> Vec<u8> {
    let window = get_stream(server, key, "cam")
        .await
        .unwrap()
        .replay_window
        .unwrap();
    let mut sub = subscribe_replay_ts(server, key, "cam").await;
    let mut joined = vec![];
    // A session's buffer numbers its GOPs from 1.
    for sequence in 1..=u64::from(window.gops) {
        let segment = within(20, "a replay segment", sub.message())
            .await
            .unwrap()
            .expect("a segment");
        assert_eq!(segment.sequence, sequence);
        joined.extend_from_slice(&segment.data);
    }
    joined
}

/// The spilled replay GOPs of `cam` in the bucket, by session folder.
async fn spilled_gops(prefix: &str, org: &str) -> Vec<(String, String)> {
    s3::shared()
        .list(&format!("{prefix}/replay/test-node/{org}/cam"))
        .await
        .into_iter()
        .filter(|key| key.ends_with(".gop"))
        .map(|key| {
            let mut parts = key.rsplit('/');
            let gop = parts.next().unwrap().to_string();
            (parts.next().unwrap().to_string(), gop)
        })
        .collect()
}

/// Waits until the bucket holds `cam`'s spill as `done` says.
async fn until_spilled(
    prefix: &str,
    org: &str,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    within(20, what, async {
        loop {
            let gops = spilled_gops(prefix, org).await;
            if done(&gops) {
                return gops;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entire_stream_replay_spills_to_the_object_store() {
    let prefix = format!("spill-{}", rand_suffix());
    // Only the newest 3 s stay in memory; the rest goes to the bucket.
    let server = Server::builder()
        .object_store(&s3::shared().store_url(&prefix))
        .flags(&["--replay-memory-seconds", "3", "--node-id", "test-node"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let entire = replay_options(0);
    publish_session(&server, key, "cam", Some(entire), test_ts()).await;
    let window = get_stream(&server, key, "cam")
        .await
        .unwrap()
        .replay_window
        .unwrap();
    assert!(window.gops >= 9 && window.disk_bytes > 0, "{window:?}");
    let first = until_spilled(&prefix, &org.id, "GOPs in the bucket", |gops| {
        gops.len() >= 6
    })
    .await;
    let local = server.data_dir.join("replay");
    assert!(
        !local.exists() || std::fs::read_dir(&local).unwrap().count() == 0,
        "nothing spilled to the local disk"
    );

    // From the very start, read back from the bucket: one playable stream
    // of both tracks.
    let joined = replay_from_start(&server, key).await;
    probe_av(&joined, "joined.ts").assert_audio_and_video("replay read back from S3", 10.0, 1.0);

    // A new session starts a new buffer: the old session's objects go.
    let stream = get_stream(&server, key, "cam").await.unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let mut ffmpeg = srt_publish(&server.srt_url(&stream), test_ts_25s());
    watch.until_state(pb::StreamState::Live, 20).await;
    let old_session = first[0].0.clone();
    let second = until_spilled(
        &prefix,
        &org.id,
        "the old session removed, the new one spilling",
        |gops| !gops.is_empty() && gops.iter().all(|(session, _)| *session != old_session),
    )
    .await;
    assert!(second.iter().all(|(session, _)| *session != old_session));
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    // A deleted stream's spill goes with it.
    watch.until_state(pb::StreamState::Ended, 20).await;
    delete_stream(&server, key, "cam").await;
    until_spilled(
        &prefix,
        &org.id,
        "the deleted stream's spill removed",
        |gops| gops.is_empty(),
    )
    .await;
}
