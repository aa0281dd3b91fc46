//! One capacity step of the baseline: how streams are handled without
//! liveproc, one ffmpeg per stream listening on SRT, making a thumbnail
//! every 10 s and copying the stream to a recording. Two ways: decoding
//! only keyframes (`-skip_frame nokey`, what an expert runs: the
//! baseline) or every frame (a second, labelled reference).
//! The same load publishes to them. A step holds when every ffmpeg kept up
//! with real time: its output time advanced with the wall clock, it wrote
//! its thumbnails, and they did not drift behind (a thumbnail every 10 s
//! of stream time must also come every 10 s of wall time: `-progress`
//! follows the copy output, which keeps up even when decoding does not).
//! Progress is the copy output's frame count, not `out_time`: ffmpeg
//! reports as `out_time` the furthest end of any output stream, and a
//! thumbnail made every 10 s ends 10 s after its own time, so `out_time`
//! ran up to 10 s ahead of the media and then stood still for seconds.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::liveproc_step::{wait_for, MAX_THUMBNAIL_DRIFT, THUMBNAIL_INTERVAL};
use crate::load::{Publisher, Target, SRT_LATENCY};
use crate::media::Media;
use crate::proc_stats::{rss_mib, CpuWindow};

/// Which frames the baseline's ffmpeg decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    Keyframes,
    Every,
}

impl Decode {
    pub fn name(self) -> &'static str {
        match self {
            Decode::Keyframes => "keyframes",
            Decode::Every => "every_frame",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BaselineResult {
    pub streams: usize,
    /// "keyframes" (`-skip_frame nokey`) or "every_frame".
    #[serde(default)]
    pub decode: String,
    pub held: bool,
    pub fell_behind: Vec<String>,
    /// All the ffmpeg processes together, % of one core.
    pub cpu_percent: f64,
    /// Sum of the ffmpeg processes' resident memory.
    pub rss_mib: f64,
    pub load_cpu_percent: f64,
    /// Slowest ffmpeg: output time gained per wall-clock second in the hold.
    pub min_speed: f64,
    /// Slowest publisher: media time sent per wall-clock second in the
    /// hold. Below real time the load, not ffmpeg, fell behind, and the
    /// step says so.
    #[serde(default)]
    pub min_load_speed: f64,
    pub thumbnails_written: usize,
    pub thumbnails_expected: usize,
    /// Most an ffmpeg's thumbnails fell further behind real time over the
    /// hold: (time between its first and last thumbnail) minus (their
    /// stream-time distance). Decoding slower than real time shows here.
    #[serde(default)]
    pub max_thumbnail_drift_seconds: f64,
}

/// A running ffmpeg and the output times it reported (`-progress`): the
/// recording's video frames so far, in seconds of media.
struct Ffmpeg {
    child: Child,
    dir: tempfile::TempDir,
    progress: Arc<Mutex<Vec<(Instant, f64)>>>,
}

impl Ffmpeg {
    fn start(port: u16, decode: Decode, fps: u32) -> anyhow::Result<Ffmpeg> {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "srt://127.0.0.1:{port}?mode=listener&latency={}",
            SRT_LATENCY.as_micros()
        );
        let mut child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(["-progress", "pipe:1", "-stats_period", "0.5"])
            .args(match decode {
                Decode::Keyframes => &["-skip_frame", "nokey"][..],
                Decode::Every => &[][..],
            })
            .args(["-i", &url])
            // The copy output comes first: `frame=` counts its video.
            .args(["-map", "0", "-c", "copy", "-f", "mpegts"])
            .arg(dir.path().join("recording.ts"))
            .args(["-map", "0:v:0", "-vf"])
            .arg(format!("fps=1/{THUMBNAIL_INTERVAL}"))
            .args(["-q:v", "3", "-f", "image2"])
            .arg(dir.path().join("thumb-%05d.jpg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let progress = Arc::new(Mutex::new(vec![]));
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn({
            let progress = progress.clone();
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let Some(frames) = line.strip_prefix("frame=") else {
                        continue;
                    };
                    if let Ok(frames) = frames.trim().parse::<f64>() {
                        let seconds = frames / f64::from(fps);
                        progress.lock().unwrap().push((Instant::now(), seconds));
                    }
                }
            }
        });
        Ok(Ffmpeg {
            child,
            dir,
            progress,
        })
    }

    /// Output time gained per wall-clock second between `from` and `to`.
    fn speed(&self, from: Instant, to: Instant) -> f64 {
        let progress = self.progress.lock().unwrap();
        let at = |t: Instant| progress.iter().rev().find(|(when, _)| *when <= t).copied();
        match (at(from), at(to)) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Output time reached, by half-second of the hold: what a step that
    /// did not hold shows of where ffmpeg stalled.
    fn progress_during(&self, from: Instant, to: Instant) -> String {
        let progress = self.progress.lock().unwrap();
        progress
            .iter()
            .filter(|(when, _)| *when >= from && *when <= to)
            .map(|(when, out)| format!("{:.1}:{out:.1}", (*when - from).as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// (number, write time) of the thumbnails written between `from` and `to`.
    fn thumbnails_between(&self, from: SystemTime, to: SystemTime) -> Vec<(u64, SystemTime)> {
        let mut thumbs: Vec<(u64, SystemTime)> = std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let number = name
                            .strip_prefix("thumb-")?
                            .strip_suffix(".jpg")?
                            .parse()
                            .ok()?;
                        Some((number, e.metadata().ok()?.modified().ok()?))
                    })
                    .filter(|(_, t)| *t >= from && *t <= to)
                    .collect()
            })
            .unwrap_or_default();
        thumbs.sort();
        thumbs
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// First port tried for the ffmpeg SRT listeners: below Linux's
/// ephemeral range (32768–60999), so no caller's socket (the load binds
/// port 0) can take a listener's port between its check and ffmpeg's bind.
const LISTENER_PORTS: u16 = 20_000;

/// `count` UDP ports free right now below the ephemeral range.
fn listener_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let free = |port: u16| std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
    let ports: Vec<u16> = (LISTENER_PORTS..32_000)
        .filter(|&p| free(p))
        .take(count)
        .collect();
    anyhow::ensure!(
        ports.len() == count,
        "not enough free UDP ports below 32000"
    );
    Ok(ports)
}

pub async fn run(
    media: &Arc<Media>,
    streams: usize,
    decode: Decode,
    hold: Duration,
    stagger: Duration,
) -> anyhow::Result<BaselineResult> {
    let mut result = BaselineResult {
        streams,
        decode: decode.name().into(),
        ..Default::default()
    };
    let mut ffmpegs = vec![];
    let mut publishers = vec![];
    let t0 = tokio::time::Instant::now();
    for (i, port) in listener_ports(streams)?.into_iter().enumerate() {
        ffmpegs.push(Ffmpeg::start(port, decode, media.spec.fps)?);
        let target = Target::Srt {
            addr: ([127, 0, 0, 1], port).into(),
            stream_id: None,
        };
        let at = t0 + stagger.mul_f64(i as f64 / streams as f64);
        publishers.push(Publisher::start(media.clone(), target, at));
    }
    // Hold starts once every ffmpeg reports output.
    let started = wait_for(stagger + Duration::from_secs(30), || {
        ffmpegs
            .iter()
            .all(|f| f.progress.lock().unwrap().iter().any(|(_, t)| *t > 0.0))
    })
    .await;
    if !started {
        result.fell_behind.push("not every ffmpeg started".into());
    }
    // The hold must end before the publishers run out of media, or the
    // ffmpegs would stop gaining output time for want of input.
    let sent = |p: &Publisher| p.stats.media_sent_us.load(Ordering::Relaxed) as f64 / 1e6;
    let media_left = publishers
        .iter()
        .map(|p| media.duration().as_secs_f64() - sent(p))
        .fold(f64::INFINITY, f64::min);
    if media_left < hold.as_secs_f64() + 1.0 {
        result.fell_behind.push(format!(
            "ffmpeg started too late: {media_left:.1} s of media left for a {hold:?} hold \
             ({:.1} s after the first publisher)",
            t0.elapsed().as_secs_f64()
        ));
    }
    let pids: Vec<u32> = ffmpegs.iter().map(|f| f.child.id()).collect();
    let cpu = CpuWindow::start(&pids);
    let load_cpu = CpuWindow::start(&[std::process::id()]);
    let (hold_start, wall_start) = (Instant::now(), SystemTime::now());
    let sent_before: Vec<f64> = publishers.iter().map(sent).collect();
    tokio::time::sleep(hold).await;
    let held_for = hold_start.elapsed().as_secs_f64();
    result.min_load_speed = publishers
        .iter()
        .zip(&sent_before)
        .map(|(p, before)| (sent(p) - before) / held_for)
        .fold(f64::INFINITY, f64::min);
    result.cpu_percent = cpu.percent();
    result.load_cpu_percent = load_cpu.percent();
    result.rss_mib = pids.iter().map(|&p| rss_mib(p)).sum();
    let (hold_end, wall_end) = (Instant::now(), SystemTime::now());
    // ffmpeg writes a thumbnail when the interval after it begins.
    let thumbs_until = wall_end + Duration::from_secs(1);

    result.min_speed = f64::INFINITY;
    let mut slowest_progress = String::new();
    for ffmpeg in &mut ffmpegs {
        let speed = ffmpeg.speed(hold_start, hold_end);
        if speed < result.min_speed {
            slowest_progress = ffmpeg.progress_during(hold_start, hold_end);
        }
        result.min_speed = result.min_speed.min(speed);
        let thumbs = ffmpeg.thumbnails_between(wall_start, thumbs_until);
        result.thumbnails_written += thumbs.len();
        if let (Some(first), Some(last)) = (thumbs.first(), thumbs.last()) {
            let wall = last
                .1
                .duration_since(first.1)
                .unwrap_or_default()
                .as_secs_f64();
            let stream = (last.0 - first.0) as f64 * f64::from(THUMBNAIL_INTERVAL);
            result.max_thumbnail_drift_seconds =
                result.max_thumbnail_drift_seconds.max(wall - stream);
        }
        if let Ok(Some(status)) = ffmpeg.child.try_wait() {
            result
                .fell_behind
                .push(format!("an ffmpeg exited: {status}"));
        }
    }
    if result.min_speed.is_infinite() {
        result.min_speed = 0.0;
    }
    let expected = (hold.as_secs() / u64::from(THUMBNAIL_INTERVAL)) as usize;
    result.thumbnails_expected = expected * streams;
    for publisher in publishers {
        let stats = publisher.stop().await;
        let error = stats.error.lock().unwrap().clone();
        if let Some(error) = error {
            result.fell_behind.push(format!("publisher: {error}"));
        }
    }
    if result.min_load_speed < 0.97 {
        result.fell_behind.push(format!(
            "the load fell behind: a publisher sent {:.2}x real time (load CPU {:.0} %)",
            result.min_load_speed, result.load_cpu_percent
        ));
    }
    if result.min_speed < 0.97 {
        result.fell_behind.push(format!(
            "an ffmpeg ran at {:.2}x real time; its output time by second of the hold: \
             {slowest_progress}",
            result.min_speed
        ));
    }
    if result.max_thumbnail_drift_seconds > MAX_THUMBNAIL_DRIFT {
        result.fell_behind.push(format!(
            "an ffmpeg's thumbnails fell {:.1} s further behind real time",
            result.max_thumbnail_drift_seconds
        ));
    }
    if result.thumbnails_written + streams < result.thumbnails_expected {
        result.fell_behind.push(format!(
            "{} thumbnails of {} expected",
            result.thumbnails_written, result.thumbnails_expected
        ));
    }
    result.held = result.fell_behind.is_empty();
    Ok(result)
}
