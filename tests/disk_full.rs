//! A full disk breaks nothing for good: while it is full, recordings stop
//! with a FEATURE_ERROR and are catalogued as far as they were written,
//! registry writes fail with RESOURCE_EXHAUSTED or UNAVAILABLE (never
//! INTERNAL) and the health check says NOT_SERVING; once space is freed,
//! writes work again without a restart. A free-space floor keeps new
//! recordings from filling the disk at all.
//!
//! Needs a small tmpfs, so runs as root (as CI does); elsewhere it is
//! skipped with a notice, under CI it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use liveproc::proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A tmpfs of a few MiB, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "CI must be able to mount a tmpfs (run as root)");
            eprintln!("### SKIPPING: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills `dir`'s disk with a file until writes fail; returns the file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    path
}

/// Waits (through Health/Watch) for `status` of the LiveProcessing service.
async fn health_until(server: &Server, status: ServingStatus, secs: u64) {
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "liveproc.v1.LiveProcessing".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let reached = tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        loop {
            let answer = watch.message().await.unwrap().expect("health watch");
            if answer.status == status as i32 {
                return;
            }
        }
    })
    .await;
    if reached.is_err() {
        // What the registry said meanwhile, for a failure to be read.
        let log = server.log();
        let all: Vec<&str> = log.lines().collect();
        let lines: Vec<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                l.contains("registry")
                    || l.contains("ERROR")
                    || l.contains("WARN")
                    || l.contains("panicked")
                    || (*i > 0 && all[i - 1].contains("panicked"))
            })
            .map(|(_, l)| *l)
            .collect();
        panic!(
            "timed out after {secs} s waiting for health {status:?}; server log:\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_and_recovers_without_a_restart() {
    let Some(disk) = Tmpfs::mount(24) else { return };
    let data = disk.path.join("data");
    // No floor here: the disk really fills, and so can the log on it (a
    // log line that cannot be written must cost nothing but itself).
    let server = Server::builder()
        .data_dir(&data)
        .log_dir(&disk.path)
        .flags(&["--min-free-disk-mb", "0"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(5)))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    health_until(&server, ServingStatus::Serving, 10).await;

    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    // A recording is being written when the disk fills up.
    within(20, "a recording to start", async {
        while list_recordings(&server, key, "cam").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let filler = fill(&disk.path);
    let stopped = watch
        .until_kind(pb::stream_event::Kind::FeatureError, 30)
        .await;
    assert!(stopped.message.starts_with("recording"), "{stopped:?}");
    health_until(&server, ServingStatus::NotServing, 15).await;
    // Registry writes that need room fail with a code that says so (small
    // ones may still fit in the database file's free pages).
    let filler_2 = fill(&disk.path.join("data"));
    let mut refused = None;
    for i in 0..200 {
        if let Err(status) = create_stream(&server, key, &format!("x{i}"), None).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("a registry write failed on a full disk");
    assert!(
        matches!(refused.code(), Code::ResourceExhausted | Code::Unavailable),
        "{refused:?}"
    );
    // The stream itself goes on.
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(pb::StreamState::Ended, 20).await;

    // Space comes back: everything works again, no restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler_2).unwrap();
    health_until(&server, ServingStatus::Serving, 15).await;
    create_stream(&server, key, "other", None)
        .await
        .expect("the registry writes again");
    let listed = within(30, "the catalogue to settle", async {
        loop {
            let listed = list_recordings(&server, key, "cam").await;
            if listed
                .iter()
                .all(|r| r.state() != pb::RecordingState::Recording)
            {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(!listed.is_empty());
    for r in &listed {
        assert!(
            matches!(
                r.state(),
                pb::RecordingState::Complete
                    | pb::RecordingState::Recovered
                    | pb::RecordingState::Failed
            ),
            "{r:?}"
        );
    }
    // No file is left outside the catalogue.
    let dir = data.join("recordings").join(&org.id).join("cam");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, listed.len(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_recordings_stop_at_the_free_space_floor() {
    let Some(disk) = Tmpfs::mount(24) else { return };
    let data = disk.path.join("data");
    // A 20 MiB floor on a 24 MiB disk: no room for a recording.
    let server = Server::builder()
        .data_dir(&data)
        .flags(&["--min-free-disk-mb", "20"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(recording_options(5)))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    std::fs::write(disk.path.join("filler"), vec![0u8; 6 << 20]).unwrap();
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    let refused = watch
        .until_kind(pb::stream_event::Kind::FeatureError, 30)
        .await;
    assert!(refused.message.contains("floor"), "{refused:?}");
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
    assert!(list_recordings(&server, key, "cam").await.is_empty());
    // The registry was never starved.
    create_stream(&server, key, "other", None).await.unwrap();
}
