//! Test helpers: start the real `liveproc` binary on free ports with a
//! temporary data dir, connect gRPC clients with API keys, make real
//! H.264/AAC MPEG-TS with ffmpeg, and publish it over SRT or gRPC.

#![allow(dead_code)]

mod av;
#[allow(unused_imports)]
pub use av::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use liveproc::proto::v1 as pb;
use liveproc::proto::v1::live_processing_client::LiveProcessingClient;
use liveproc::proto::v1::organizations_client::OrganizationsClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

/// The log filter of servers under test.
const DEBUG_LOG: &str = "info,liveproc=debug";

pub const ADMIN_KEY: &str = "lpadmin_test_admin_key_0123456789";

/// A running `liveproc serve` process.
pub struct Server {
    child: Child,
    /// What the server printed to stdout before it was ready.
    pub printed: Vec<String>,
    pub data_dir: PathBuf,
    pub grpc: SocketAddr,
    pub srt: SocketAddr,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl Server {
    /// Starts a server with a new temporary data dir.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Server::start_in(&data_dir);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server on `data_dir` (kept as it is: restarts use this).
    pub fn start_in(data_dir: &Path) -> Server {
        Server::start_with(data_dir, Some(ADMIN_KEY))
    }

    /// Starts a server on `data_dir`, with `LIVEPROC_ADMIN_KEY` set to
    /// `admin_key` or unset.
    pub fn start_with(data_dir: &Path, admin_key: Option<&str>) -> Server {
        Server::start_full(data_dir, admin_key, &[], DEBUG_LOG)
    }

    /// Starts a server on `data_dir` with extra flags.
    pub fn start_in_with_flags(data_dir: &Path, flags: &[&str]) -> Server {
        Server::start_full(data_dir, Some(ADMIN_KEY), flags, DEBUG_LOG)
    }

    /// Starts a server with a new temporary data dir and extra flags.
    pub fn start_with_flags(flags: &[&str]) -> Server {
        Server::start_logging(flags, DEBUG_LOG)
    }

    /// Starts a server with a new temporary data dir, extra flags and the
    /// log filter `log_filter` (the benchmark runs at `info`).
    pub fn start_logging(flags: &[&str], log_filter: &str) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Server::start_full(&data_dir, Some(ADMIN_KEY), flags, log_filter);
        server._tmp = Some(tmp);
        server
    }

    fn start_full(
        data_dir: &Path,
        admin_key: Option<&str>,
        flags: &[&str],
        log_filter: &str,
    ) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.with_extension(format!("log.{}", rand_suffix()));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_liveproc"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--srt-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env_remove("LIVEPROC_ADMIN_KEY")
            .env("LIVEPROC_LOG", log_filter)
            // Test machines may have little free space; a flag overrides it.
            .env("LIVEPROC_MIN_FREE_DISK_MB", "16");
        if let Some(key) = admin_key {
            command.env("LIVEPROC_ADMIN_KEY", key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start liveproc");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = vec![];
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("liveproc ready:") => break line,
                Some(Ok(line)) => printed.push(line),
                _ => {
                    let _ = child.kill();
                    panic!(
                        "liveproc exited before it was ready:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| -> SocketAddr {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {ready:?}"))
                .parse()
                .unwrap()
        };
        Server {
            printed,
            grpc: field("grpc"),
            srt: field("srt"),
            child,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "liveproc exit {exit:?}\n{}", self.log());
        self._tmp.take()
    }

    /// Kills with SIGKILL (no chance to clean up).
    pub fn kill9(mut self) -> Option<tempfile::TempDir> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self._tmp.take()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn admin(&self) -> OrganizationsClient<Channel> {
        OrganizationsClient::new(self.channel().await)
    }

    pub async fn live(&self) -> LiveProcessingClient<Channel> {
        LiveProcessingClient::new(self.channel().await)
    }

    /// Creates an organization; returns it with its API key.
    pub async fn create_org(&self, name: &str, live_processing: bool) -> pb::Organization {
        self.admin()
            .await
            .create_organization(authed(
                pb::CreateOrganizationRequest {
                    name: name.into(),
                    live_processing,
                },
                ADMIN_KEY,
            ))
            .await
            .expect("create organization")
            .into_inner()
    }

    /// An SRT URL for publishing `stream` from this host.
    pub fn srt_url(&self, stream: &pb::Stream) -> String {
        let key = &stream.ingest.as_ref().unwrap().stream_key;
        format!(
            "srt://{}?streamid=publish:{}:{}&mode=caller",
            self.srt, stream.id, key
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{n:x}{}", std::process::id())
}

/// A request carrying `authorization: Bearer <key>`.
pub fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// Runs `future` with a deadline; a timeout fails the test with `what`.
pub async fn within<T>(secs: u64, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s waiting for {what}"))
}

/// Makes `seconds` of 640x360 30 fps test video + a sine tone in MPEG-TS
/// with ffmpeg, GOP 1 s, encoded with `codec_args`.
fn make_ts(name: &str, seconds: u32, codec_args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liveproc-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p"])
        .args(codec_args)
        .args(["-f", "mpegts"])
        .arg(&path)
        .status()
        .expect("ffmpeg is installed");
    assert!(status.success(), "ffmpeg failed to make {name}");
    path
}

/// `seconds` of H.264 + AAC (GOP 1 s), the test pattern with a tone.
fn h264_aac_ts(seconds: u32) -> PathBuf {
    make_ts(
        &format!("h264_aac_{seconds}s.ts"),
        seconds,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-b:a", "96k",
        ],
    )
}

/// 10 s of H.264 + AAC, made once per test binary.
pub fn test_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(10))
}

/// 25 s of H.264 + AAC, made once per test binary.
pub fn test_ts_25s() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(25))
}

/// 45 s of H.264 + AAC, made once per test binary: a session long
/// enough to rewind in while a browser looks at it.
pub fn test_ts_45s() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(45))
}

/// 6 s of H.264 (noise, near-lossless: about 70 MB) + AAC, made once per
/// test binary: a recording far larger than socket buffers.
pub fn heavy_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "h264_aac_heavy_6s.ts",
            6,
            &[
                "-vf",
                "noise=alls=80:allf=t+u",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-qp",
                "4",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
            ],
        )
    })
}

/// 5 s of H.265 + AAC, made once per test binary.
pub fn test_hevc_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "h265_aac_5s.ts",
            5,
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
            ],
        )
    })
}

/// `seconds` of H.264 + AAC at `size`, timestamps from `offset` s.
pub fn ts_part(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
) -> Vec<u8> {
    ts_part_of(dir, name, size, seconds, offset, true)
}

/// `seconds` of H.264 alone at `size`, timestamps from `offset` s.
pub fn video_ts_part(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
) -> Vec<u8> {
    ts_part_of(dir, name, size, seconds, offset, false)
}

fn ts_part_of(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
    audio: bool,
) -> Vec<u8> {
    let path = dir.join(name);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ]);
    if audio {
        ffmpeg.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    let status = ffmpeg
        .args([
            "-t",
            &seconds.to_string(),
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:v", "libx264", "-preset", "veryfast"])
        .args(if audio {
            ["-c:a", "aac"]
        } else {
            ["-an", "-sn"]
        })
        .args(["-output_ts_offset", &offset.to_string(), "-f", "mpegts"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// 10 s of AAC audio alone (no video track).
pub fn audio_only_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("liveproc-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("aac_only_10s.ts");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "10", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts"])
            .arg(&path)
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success(), "ffmpeg failed to make aac_only_10s.ts");
        path
    })
}

/// 20 s of MPEG-2 video + MP2 audio: valid MPEG-TS that liveproc does not
/// take (no H.264/H.265/AAC).
pub fn unsupported_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "mpeg2_mp2_20s.ts",
            20,
            &["-c:v", "mpeg2video", "-b:v", "500k", "-c:a", "mp2"],
        )
    })
}

/// Publishes a file over SRT in real time (`ffmpeg -re`), as an encoder would.
/// The caller lingers at the end until the server has every packet (in
/// live mode libsrt drops what is unacknowledged when it closes).
pub fn srt_publish(url: &str, file: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "mpegts", &format!("{url}&linger=2")])
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// Publishes a file over SRT as fast as it reads (no `-re`): far ahead of
/// real time.
pub fn srt_publish_fast(url: &str, file: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "quiet", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "mpegts", &format!("{url}&linger=5")])
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// Waits for a child process in a blocking thread.
pub async fn wait_child(mut child: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
}

/// An open gRPC `PushMedia` call: send chunks, then `finish`.
pub struct Push {
    tx: mpsc::Sender<pb::PushMediaRequest>,
    call: tokio::task::JoinHandle<Result<pb::PushMediaResponse, Status>>,
}

impl Push {
    pub async fn open(server: &Server, stream: &pb::Stream, api_key: Option<&str>) -> Push {
        let (tx, rx) = mpsc::channel(64);
        tx.send(pb::PushMediaRequest {
            stream_id: stream.id.clone(),
            stream_key: stream.ingest.as_ref().unwrap().stream_key.clone(),
            data: Default::default(),
        })
        .await
        .unwrap();
        let mut client = server.live().await;
        let mut request = Request::new(ReceiverStream::new(rx));
        if let Some(key) = api_key {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        let call =
            tokio::spawn(async move { client.push_media(request).await.map(|r| r.into_inner()) });
        Push { tx, call }
    }

    /// Sends bytes in 64 KiB chunks; false once the server ended the call.
    pub async fn send(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(64 * 1024) {
            let message = pb::PushMediaRequest {
                data: bytes::Bytes::copy_from_slice(chunk),
                ..Default::default()
            };
            if self.tx.send(message).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Closes the request stream and returns the server's answer.
    pub async fn finish(self) -> Result<pb::PushMediaResponse, Status> {
        drop(self.tx);
        self.call.await.unwrap()
    }

    /// The answer, without closing (for calls the server ends itself).
    pub async fn outcome(self) -> Result<pb::PushMediaResponse, Status> {
        let Push { tx, call } = self;
        let result = call.await.unwrap();
        drop(tx);
        result
    }
}

/// Follows `WatchStream` and remembers every event.
pub struct Watcher {
    events: Streaming<pb::StreamEvent>,
    pub seen: Vec<pb::StreamEvent>,
}

impl Watcher {
    pub async fn start(server: &Server, api_key: &str, stream_id: &str) -> Watcher {
        let events = server
            .live()
            .await
            .watch_stream(authed(
                pb::WatchStreamRequest {
                    stream_id: stream_id.into(),
                },
                api_key,
            ))
            .await
            .expect("watch stream")
            .into_inner();
        Watcher {
            events,
            seen: vec![],
        }
    }

    /// The next event, whatever it is.
    pub async fn next(&mut self) -> pb::StreamEvent {
        let event = self
            .events
            .message()
            .await
            .expect("watch stream")
            .unwrap_or_else(|| panic!("watch ended after {:?}", self.seen));
        self.seen.push(event.clone());
        event
    }

    /// Waits (up to `secs`) for an event in `state`; returns it.
    pub async fn until_state(&mut self, state: pb::StreamState, secs: u64) -> pb::StreamEvent {
        let what = format!("stream state {state:?}");
        within(secs, &what, async {
            loop {
                let event = self.next().await;
                if event.state == state as i32 {
                    return event;
                }
            }
        })
        .await
    }

    /// Waits (up to `secs`) for an event of `kind`; returns it.
    pub async fn until_kind(&mut self, kind: pb::stream_event::Kind, secs: u64) -> pb::StreamEvent {
        let what = format!("a {kind:?} event");
        within(secs, &what, async {
            loop {
                let event = self.next().await;
                if event.kind() == kind {
                    return event;
                }
            }
        })
        .await
    }

    pub fn states(&self) -> Vec<pb::StreamState> {
        self.seen
            .iter()
            .map(|e| pb::StreamState::try_from(e.state).unwrap())
            .collect()
    }
}

/// Recording in segments of `seconds` (0: one file per session).
pub fn recording_options(seconds: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        recording: Some(pb::RecordingOptions {
            enabled: true,
            duration_seconds: seconds,
            entire_stream: seconds == 0,
        }),
        ..Default::default()
    }
}

/// A replay buffer of `seconds` (0: the entire stream).
pub fn replay_options(seconds: u32) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: seconds,
            entire_stream: seconds == 0,
        }),
        ..Default::default()
    }
}

/// `CreateReplayClip` of the last `seconds` of the stream.
pub async fn create_clip(
    server: &Server,
    key: &str,
    stream_id: &str,
    seconds: u32,
    title: &str,
) -> pb::ReplayClip {
    server
        .live()
        .await
        .create_replay_clip(authed(
            pb::CreateReplayClipRequest {
                stream_id: stream_id.into(),
                start: Some(pb::create_replay_clip_request::Start::SecondsBeforeLive(
                    seconds,
                )),
                duration_seconds: seconds,
                title: title.into(),
            },
            key,
        ))
        .await
        .expect("CreateReplayClip")
        .into_inner()
}

/// The recording catalogue of a stream (first page).
pub async fn list_recordings(server: &Server, key: &str, stream_id: &str) -> Vec<pb::Recording> {
    server
        .live()
        .await
        .list_recordings(authed(
            pb::ListRecordingsRequest {
                stream_id: stream_id.into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .recordings
}

/// Creates a stream with the given processing (org key).
pub async fn create_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    processing: Option<pb::ProcessingOptions>,
) -> Result<pb::Stream, Status> {
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: stream_id.into(),
                name: format!("stream {stream_id}"),
                processing,
                source_uri: String::new(),
            },
            api_key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// `GetStream` with an org key.
pub async fn get_stream(
    server: &Server,
    api_key: &str,
    stream_id: &str,
) -> Result<pb::Stream, Status> {
    server
        .live()
        .await
        .get_stream(authed(
            pb::GetStreamRequest {
                stream_id: stream_id.into(),
            },
            api_key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Pushes a whole file through gRPC as fast as the server takes it.
pub async fn push_file(server: &Server, stream: &pb::Stream, file: &Path) -> pb::PushMediaResponse {
    push_media(server, stream, &std::fs::read(file).unwrap()).await
}

/// Pushes `media` (MPEG-TS) over gRPC in one session and ends it.
pub async fn push_media(
    server: &Server,
    stream: &pb::Stream,
    media: &[u8],
) -> pb::PushMediaResponse {
    let push = Push::open(server, stream, None).await;
    assert!(push.send(media).await);
    push.finish().await.expect("push")
}

/// `ffprobe` of a media file (or bytes written to a temp file) as JSON.
pub fn ffprobe(data: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.bin");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-count_frames",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Frame `index` of a media file decoded by ffmpeg, as RGB24 at its size.
pub fn source_frame_rgb(file: &Path, index: u32) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-vf", &format!("select=eq(n\\,{index})"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Peak signal-to-noise ratio of two RGB24 images of the same size, dB.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = *x as f64 - *y as f64;
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Standard deviation of the bytes of an image: near 0 for a blank one.
pub fn spread(pixels: &[u8]) -> f64 {
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|&p| p as f64).sum::<f64>() / n;
    (pixels
        .iter()
        .map(|&p| (p as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// Seconds of a `google.protobuf.Duration`.
pub fn secs(d: &Option<prost_types::Duration>) -> f64 {
    let d = d.as_ref().expect("duration");
    d.seconds as f64 + d.nanos as f64 / 1e9
}

/// Creates `stream_id` with `processing`, publishes `file` over SRT in real
/// time as an encoder would, and returns once the stream has ENDED.
pub async fn publish_session(
    server: &Server,
    api_key: &str,
    stream_id: &str,
    processing: Option<pb::ProcessingOptions>,
    file: &Path,
) -> pb::Stream {
    let stream = create_stream(server, api_key, stream_id, processing)
        .await
        .expect("create stream");
    let mut watch = Watcher::start(server, api_key, stream_id).await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), file);
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(pb::StreamState::Ended, 20).await;
    stream
}

/// A recording's bytes from `offset` (`DownloadRecording`).
pub async fn download_recording(server: &Server, key: &str, id: &str, offset: u64) -> Vec<u8> {
    let chunks = server
        .live()
        .await
        .download_recording(authed(
            pb::DownloadRecordingRequest {
                recording_id: id.into(),
                offset,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    collect_chunks(chunks, offset).await
}

/// A replay clip's bytes (`DownloadReplayClip`).
pub async fn download_clip(server: &Server, key: &str, id: &str) -> Vec<u8> {
    let chunks = server
        .live()
        .await
        .download_replay_clip(authed(
            pb::DownloadReplayClipRequest {
                clip_id: id.into(),
                offset: 0,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    collect_chunks(chunks, 0).await
}

/// The bytes of a download (`DataChunk` stream), checking the offsets.
pub async fn collect_chunks(mut chunks: Streaming<pb::DataChunk>, offset: u64) -> Vec<u8> {
    let mut data = vec![];
    while let Some(chunk) = chunks.message().await.expect("download") {
        assert_eq!(chunk.offset, offset + data.len() as u64);
        data.extend_from_slice(&chunk.data);
    }
    data
}
